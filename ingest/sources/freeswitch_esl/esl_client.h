/* esl_client.h - pure pieces of the engine's outbound ESL client: commands to send, answers to recognise. */
#ifndef CP_ESL_CLIENT_H
#define CP_ESL_CLIENT_H

#include <stddef.h>

/*
 * The conversation (mod_event_socket, inbound mode; LF line ends):
 *   server: "Content-Type: auth/request\n\n"
 *   client: "auth <password>\n\n"
 *   server: "Content-Type: command/reply\nReply-Text: +OK accepted\n\n"  (or "-ERR invalid")
 *   client: "event plain CHANNEL_CREATE ... CUSTOM callcenter::info\n\n"
 *   server: "Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n"
 *   server: events, each "Content-Length: N\nContent-Type: text/event-plain\n\n" + N bytes
 * Messages are cut with cp_source_freeswitch_esl.frame() and classified here.
 */

/* The subscription callpipe needs (pbx-formats.md section 2b). */
#define CP_ESL_EVENTS "CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE CUSTOM callcenter::info"

/* "auth <password>\n\n" into buf (NUL-terminated).  Returns the length
 * without the NUL, CP_ERR_INVAL for an empty password or one holding a CR,
 * LF or NUL (it would end the command early), CP_ERR_TOOBIG when cap is short. */
int cp_esl_auth_command(const char *password, char *buf, size_t cap);

/* "event plain <events>\n\n"; events NULL = CP_ESL_EVENTS.  Event names are
 * space-separated tokens of visible ASCII.  Returns the length, CP_ERR_INVAL
 * or CP_ERR_TOOBIG. */
int cp_esl_event_command(const char *events, char *buf, size_t cap);

enum cp_esl_msg {
    CP_ESL_MSG_OTHER = 0,   /* api/response, log/data, ... */
    CP_ESL_MSG_AUTH_REQUEST, /* send the auth command now */
    CP_ESL_MSG_REPLY_OK,     /* command/reply with Reply-Text "+OK ..." */
    CP_ESL_MSG_REPLY_ERR,    /* command/reply with "-ERR ..." (or no/odd Reply-Text) */
    CP_ESL_MSG_EVENT,        /* text/event-*: hand to parse() */
    CP_ESL_MSG_DISCONNECT,   /* text/disconnect-notice or text/rude-rejection: close, back off */
};

/* Classifies one framed message (as cut by frame()).  For replies and
 * disconnects, *text / *text_len get the Reply-Text (or nothing) as raw bytes
 * inside msg; they are set to NULL / 0 otherwise.  Negative CP_ERR_PARSE when
 * the message has no Content-Type header. */
int cp_esl_classify(const char *msg, size_t len, const char **text, size_t *text_len);

#endif
