/* esl_client.c - pure pieces of the engine's outbound ESL client (see esl_client.h). */
#include "esl_client.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cp_err.h"
#include "freeswitch_esl.h"
#include "../srcutil/srcutil.h"

int cp_esl_auth_command(const char *password, char *buf, size_t cap)
{
    if (!password || !*password || strpbrk(password, "\r\n"))
        return CP_ERR_INVAL;
    int n = snprintf(buf, cap, "auth %s\n\n", password);
    if (n < 0 || (size_t)n >= cap)
        return CP_ERR_TOOBIG;
    return n;
}

int cp_esl_event_command(const char *events, char *buf, size_t cap)
{
    if (!events)
        events = CP_ESL_EVENTS;
    if (!*events)
        return CP_ERR_INVAL;
    for (const char *c = events; *c; c++)
        if (*c != ' ' && (*c < 0x21 || *c > 0x7e))
            return CP_ERR_INVAL;
    int n = snprintf(buf, cap, "event plain %s\n\n", events);
    if (n < 0 || (size_t)n >= cap)
        return CP_ERR_TOOBIG;
    return n;
}

int cp_esl_classify(const char *msg, size_t len, const char **text, size_t *text_len)
{
    *text = NULL;
    *text_len = 0;
    size_t hl = cp_esl_headers_len(msg, len);
    if (hl == 0)
        hl = len;
    const char *ct;
    size_t ctl;
    if (!cp_esl_header(msg, hl, "Content-Type", &ct, &ctl))
        return CP_ERR_PARSE;
    if (cp_srcutil_eq(ct, ctl, "auth/request"))
        return CP_ESL_MSG_AUTH_REQUEST;
    if (cp_srcutil_eq(ct, ctl, "command/reply")) {
        if (!cp_esl_header(msg, hl, "Reply-Text", text, text_len))
            return CP_ESL_MSG_REPLY_ERR;
        return *text_len >= 3 && memcmp(*text, "+OK", 3) == 0 ? CP_ESL_MSG_REPLY_OK
                                                               : CP_ESL_MSG_REPLY_ERR;
    }
    if (cp_srcutil_eq(ct, ctl, "text/disconnect-notice") ||
        cp_srcutil_eq(ct, ctl, "text/rude-rejection"))
        return CP_ESL_MSG_DISCONNECT;
    if (ctl > 11 && strncasecmp(ct, "text/event-", 11) == 0)
        return CP_ESL_MSG_EVENT;
    return CP_ESL_MSG_OTHER;
}
