/* ami_client.c - builds AMI actions (Login plain/MD5, Events, Filter, Ping) and reads replies. */
#include "ami_client.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "cp_err.h"

static bool value_ok(const char *v)
{
    return v && *v && !strpbrk(v, "\r\n");
}

/* Writes "k1: v1\r\n...\r\n" from NULL-terminated (key, value) pairs; NULL values are skipped. */
static int block(char *buf, size_t cap, ...)
{
    va_list ap;
    va_start(ap, cap);
    size_t o = 0;
    int rc = 0;
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k) break;
        const char *v = va_arg(ap, const char *);
        if (!v) continue;
        if (!value_ok(v)) {
            rc = CP_ERR_INVAL;
            break;
        }
        int n = snprintf(buf + o, o < cap ? cap - o : 0, "%s: %s\r\n", k, v);
        if (n < 0 || o + (size_t)n >= cap) {
            rc = CP_ERR_TOOBIG;
            break;
        }
        o += (size_t)n;
    }
    va_end(ap);
    if (rc) return rc;
    if (o + 3 > cap) return CP_ERR_TOOBIG;
    memcpy(buf + o, "\r\n", 3);
    return (int)(o + 2);
}

int cp_ami_action_login(char *buf, size_t cap, const char *user, const char *secret,
                        const char *events, const char *action_id)
{
    if (!value_ok(user) || !value_ok(secret)) return CP_ERR_INVAL;
    return block(buf, cap, "Action", "Login", "ActionID", action_id, "Username", user, "Secret",
                 secret, "Events", events, (const char *)NULL);
}

int cp_ami_action_challenge(char *buf, size_t cap, const char *action_id)
{
    return block(buf, cap, "Action", "Challenge", "ActionID", action_id, "AuthType", "MD5",
                 (const char *)NULL);
}

int cp_ami_md5_key(const char *challenge, const char *secret, char key[33])
{
    if (!value_ok(challenge) || !secret) return CP_ERR_INVAL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c) return CP_ERR_NOMEM;
    int ok = EVP_DigestInit_ex(c, EVP_md5(), NULL) &&
             EVP_DigestUpdate(c, challenge, strlen(challenge)) &&
             EVP_DigestUpdate(c, secret, strlen(secret)) && EVP_DigestFinal_ex(c, md, &mdlen);
    EVP_MD_CTX_free(c);
    if (!ok || mdlen != 16) return CP_ERR_INTERNAL;
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < 16; i++) {
        key[2 * i] = hex[md[i] >> 4];
        key[2 * i + 1] = hex[md[i] & 15];
    }
    key[32] = '\0';
    return 0;
}

int cp_ami_action_login_md5(char *buf, size_t cap, const char *user, const char *challenge,
                            const char *secret, const char *events, const char *action_id)
{
    if (!value_ok(user)) return CP_ERR_INVAL;
    char key[33];
    int rc = cp_ami_md5_key(challenge, secret, key);
    if (rc) return rc;
    return block(buf, cap, "Action", "Login", "ActionID", action_id, "AuthType", "MD5", "Username",
                 user, "Key", key, "Events", events, (const char *)NULL);
}

int cp_ami_action_events(char *buf, size_t cap, const char *mask, const char *action_id)
{
    if (!value_ok(mask)) return CP_ERR_INVAL;
    return block(buf, cap, "Action", "Events", "ActionID", action_id, "EventMask", mask,
                 (const char *)NULL);
}

int cp_ami_action_filter(char *buf, size_t cap, const char *filter, const char *action_id)
{
    if (!value_ok(filter)) return CP_ERR_INVAL;
    return block(buf, cap, "Action", "Filter", "ActionID", action_id, "Operation", "Add", "Filter",
                 filter, (const char *)NULL);
}

int cp_ami_action_ping(char *buf, size_t cap, const char *action_id)
{
    return block(buf, cap, "Action", "Ping", "ActionID", action_id, (const char *)NULL);
}

bool cp_ami_is_banner(const char *rec, size_t len)
{
    static const char b[] = "Asterisk Call Manager/";
    return len >= sizeof b - 1 && memcmp(rec, b, sizeof b - 1) == 0;
}

int cp_ami_response_read(const char *rec, size_t len, struct cp_ami_response *r)
{
    memset(r, 0, sizeof *r);
    size_t off = 0;
    bool first = true;
    while (off < len) {
        const char *nl = memchr(rec + off, '\n', len - off);
        size_t n = nl ? (size_t)(nl - (rec + off)) : len - off;
        const char *l = rec + off;
        off += nl ? n + 1 : n;
        if (n && l[n - 1] == '\r') n--;
        if (n == 0) {
            if (first) continue; /* leading blank lines */
            break;
        }
        const char *colon = memchr(l, ':', n);
        if (!colon) return first && cp_ami_is_banner(l, n) ? CP_ERR_NOTFOUND : CP_ERR_PARSE;
        size_t kl = (size_t)(colon - l);
        const char *v = colon + 1;
        while (v < l + n && *v == ' ')
            v++;
        size_t vl = (size_t)(l + n - v);
        if (first) {
            if (kl != 8 || strncasecmp(l, "Response", 8) != 0) return CP_ERR_NOTFOUND;
            r->success = (vl == 7 && !strncasecmp(v, "Success", 7)) ||
                         (vl == 4 && !strncasecmp(v, "Pong", 4)) ||
                         (vl == 7 && !strncasecmp(v, "Goodbye", 7)) ||
                         (vl == 7 && !strncasecmp(v, "Follows", 7));
            first = false;
            continue;
        }
        if (kl == 8 && !strncasecmp(l, "ActionID", 8) && !r->action_id) {
            r->action_id = v;
            r->action_id_len = vl;
        } else if (kl == 7 && !strncasecmp(l, "Message", 7) && !r->message) {
            r->message = v;
            r->message_len = vl;
        } else if (kl == 9 && !strncasecmp(l, "Challenge", 9) && !r->challenge) {
            r->challenge = v;
            r->challenge_len = vl;
        }
    }
    return first ? CP_ERR_NOTFOUND : 0;
}
