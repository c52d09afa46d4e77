/* cp_syslog.c - RFC 5424 / RFC 3164 header parser; lenient where relays differ, strict on PRI. */
#include "cp_syslog.h"
#include "cp_err.h"

#include <string.h>

/* Next space-delimited token starting at *i; advances past one following space. */
static int token(const char *b, size_t len, size_t *i, const char **tok, size_t *tok_len)
{
    size_t s = *i;
    while (*i < len && b[*i] != ' ')
        (*i)++;
    if (*i == s)
        return -1;
    *tok = b + s;
    *tok_len = *i - s;
    if (*i < len)
        (*i)++;
    return 0;
}

static int nil_or(const char *tok, size_t n, const char **out, size_t *out_len)
{
    if (n == 1 && tok[0] == '-') {
        *out = NULL;
        *out_len = 0;
    } else {
        *out = tok;
        *out_len = n;
    }
    return 0;
}

/* STRUCTURED-DATA: "-" or one or more [id param="value"...] with \" \\ \] escapes. */
static int skip_sd(const char *b, size_t len, size_t *i)
{
    if (*i < len && b[*i] == '-') {
        (*i)++;
        return 0;
    }
    if (*i >= len || b[*i] != '[')
        return -1;
    while (*i < len && b[*i] == '[') {
        int in_quote = 0;
        (*i)++;
        for (;;) {
            if (*i >= len)
                return -1;
            char c = b[*i];
            if (in_quote && c == '\\') {
                *i += 2;
                continue;
            }
            (*i)++;
            if (c == '"')
                in_quote = !in_quote;
            else if (c == ']' && !in_quote)
                break;
        }
    }
    return 0;
}

static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* "Mmm dd hh:mm:ss" (day space-padded), as RFC 3164 section 4.1.2 writes it. */
static int bsd_timestamp(const char *b, size_t len, size_t i)
{
    if (len - i < 15)
        return 0;
    int m = 0;
    for (int k = 0; k < 12; k++)
        if (memcmp(b + i, months[k], 3) == 0)
            m = 1;
    const char *t = b + i;
    return m && t[3] == ' ' && (t[4] == ' ' || (t[4] >= '0' && t[4] <= '3')) && t[5] >= '0' &&
           t[5] <= '9' && t[6] == ' ' && t[9] == ':' && t[12] == ':';
}

int cp_syslog_parse(const char *b, size_t len, struct cp_syslog_msg *out, const char **why)
{
    memset(out, 0, sizeof *out);
    size_t i = 0;
    if (len < 3 || b[0] != '<') {
        *why = "syslog message does not start with <PRI>";
        return CP_ERR_PARSE;
    }
    i = 1;
    int pri = 0, nd = 0;
    while (i < len && b[i] >= '0' && b[i] <= '9' && nd < 4) {
        pri = pri * 10 + (b[i++] - '0');
        nd++;
    }
    if (nd == 0 || nd > 3 || i >= len || b[i] != '>' || pri > 191 || (nd > 1 && b[1] == '0')) {
        *why = "invalid syslog PRI";
        return CP_ERR_PARSE;
    }
    i++;
    out->facility = pri / 8;
    out->severity = pri % 8;
    if (len - i >= 2 && b[i] == '1' && b[i + 1] == ' ') {
        /* RFC 5424: VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG] */
        out->version = 1;
        i += 2;
        const char *tok;
        size_t n;
        const char *procid, *msgid;
        size_t procid_len, msgid_len;
        if (token(b, len, &i, &tok, &n) || nil_or(tok, n, &out->timestamp, &out->timestamp_len) ||
            token(b, len, &i, &tok, &n) || nil_or(tok, n, &out->hostname, &out->hostname_len) ||
            token(b, len, &i, &tok, &n) || nil_or(tok, n, &out->app, &out->app_len) ||
            token(b, len, &i, &procid, &procid_len) || token(b, len, &i, &msgid, &msgid_len)) {
            *why = "truncated RFC 5424 header";
            return CP_ERR_PARSE;
        }
        if (skip_sd(b, len, &i)) {
            *why = "malformed RFC 5424 structured data";
            return CP_ERR_PARSE;
        }
        if (i < len && b[i] == ' ')
            i++;
        else if (i < len) {
            *why = "no space after RFC 5424 structured data";
            return CP_ERR_PARSE;
        }
        if (len - i >= 3 && memcmp(b + i, "\xEF\xBB\xBF", 3) == 0)
            i += 3; /* the optional BOM that marks a UTF-8 MSG */
    } else {
        /* RFC 3164: [TIMESTAMP SP HOSTNAME SP] TAG[pid]: MSG, all of it optional in practice. */
        if (bsd_timestamp(b, len, i)) {
            out->timestamp = b + i;
            out->timestamp_len = 15;
            i += 15;
            if (i < len && b[i] == ' ')
                i++;
            const char *tok;
            size_t n;
            /* A hostname is a token not ending in ':' (else it is the tag). */
            size_t save = i;
            if (token(b, len, &i, &tok, &n) == 0 && tok[n - 1] != ':' && !memchr(tok, '[', n)) {
                out->hostname = tok;
                out->hostname_len = n;
            } else {
                i = save;
            }
        }
        /* TAG: up to 32 alphanumerics, then '[' pid ']' and/or ':' */
        size_t t = i;
        while (t < len && t - i < 48 &&
               ((b[t] >= 'a' && b[t] <= 'z') || (b[t] >= 'A' && b[t] <= 'Z') ||
                (b[t] >= '0' && b[t] <= '9') || b[t] == '_' || b[t] == '-' || b[t] == '.' ||
                b[t] == '/'))
            t++;
        if (t > i && t < len && (b[t] == ':' || b[t] == '[')) {
            out->app = b + i;
            out->app_len = t - i;
            if (b[t] == '[') {
                const char *close = memchr(b + t, ']', len - t);
                t = close ? (size_t)(close - b) + 1 : t;
            }
            if (t < len && b[t] == ':')
                t++;
            if (t < len && b[t] == ' ')
                t++;
            i = t;
        }
    }
    out->msg = b + i;
    out->msg_len = len - i;
    /* Relays append the LF of the original line; it is not part of the payload. */
    while (out->msg_len > 0 &&
           (out->msg[out->msg_len - 1] == '\n' || out->msg[out->msg_len - 1] == '\r'))
        out->msg_len--;
    return 0;
}
