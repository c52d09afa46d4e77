/* ami_client.h - pure helpers for the engine's AMI client: actions to send and replies to read. */
#ifndef CP_SOURCE_AMI_CLIENT_H
#define CP_SOURCE_AMI_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Every builder writes one complete action block ("Key: Value\r\n" lines and
 * the terminating "\r\n") into buf[0..cap) plus a NUL, and returns its length
 * (without the NUL), CP_ERR_TOOBIG when cap is too small, or CP_ERR_INVAL when
 * a value is missing or holds CR/LF (which would inject headers).
 * `action_id` may be NULL (no ActionID header).  No I/O, no clock.
 */

/* Action: Login with a plain Secret.  `events` ("agent,call,cdr", "off", NULL = omit) is the
 * initial event mask. */
int cp_ami_action_login(char *buf, size_t cap, const char *user, const char *secret,
                        const char *events, const char *action_id);

/* Action: Challenge, AuthType: MD5 (step 1 of the MD5 login; the reply carries Challenge:). */
int cp_ami_action_challenge(char *buf, size_t cap, const char *action_id);

/* The MD5 login key: lowercase hex of md5(challenge + secret), 32 characters + NUL into key. */
int cp_ami_md5_key(const char *challenge, const char *secret, char key[33]);

/* Action: Login, AuthType: MD5, Key: md5(challenge + secret) (step 2). */
int cp_ami_action_login_md5(char *buf, size_t cap, const char *user, const char *challenge,
                            const char *secret, const char *events, const char *action_id);

/* Action: Events, EventMask: <mask> ("agent,call,cdr", "on", "off"). */
int cp_ami_action_events(char *buf, size_t cap, const char *mask, const char *action_id);

/* Action: Filter, Operation: Add, Filter: <expr> (e.g. "Event: Queue" or "!Event: VarSet");
 * the manager user needs the system privilege. */
int cp_ami_action_filter(char *buf, size_t cap, const char *filter, const char *action_id);

/* Action: Ping (keepalive; the reply is Response: Success / Ping: Pong). */
int cp_ami_action_ping(char *buf, size_t cap, const char *action_id);

/* True when the record is the server's first line, "Asterisk Call Manager/<version>". */
bool cp_ami_is_banner(const char *rec, size_t len);

/* What a Response block says.  Pointers refer into the record given to cp_ami_response_read. */
struct cp_ami_response {
    bool success;          /* Response: Success (or the legacy Response: Pong / Goodbye) */
    const char *action_id; /* ActionID echo, NULL when absent */
    size_t action_id_len;
    const char *message; /* Message: text, NULL when absent */
    size_t message_len;
    const char *challenge; /* Challenge: value (reply to Action: Challenge), NULL when absent */
    size_t challenge_len;
};

/* Reads one framed block.  0 when it is a Response block, CP_ERR_NOTFOUND when it is something
 * else (an event, the banner), CP_ERR_PARSE when malformed. */
int cp_ami_response_read(const char *rec, size_t len, struct cp_ami_response *r);

#endif
