/* twilio_voice.c - the twilio-voice source format: Voice status callbacks to call events. */
#include "twilio.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "cp_time.h"
#include "twilio_webhook.h"

/*
 * One record is one form-encoded POST body (pbx-formats.md section 6): one
 * callback about one call leg, which becomes exactly one event, or a reject.
 * Callbacks arrive out of order (SequenceNumber says the order); the events
 * carry their own Timestamp, so order does not matter downstream.
 */

#define SRC_NAME "twilio-voice"

/* ---- RFC 2822 date-time: "Tue, 25 Nov 2025 10:00:00 +0000" ---------------------------- */

static void skip_sp(const char **p, const char *e)
{
    while (*p < e && (**p == ' ' || **p == '\t'))
        (*p)++;
}

static int digits(const char **p, const char *e, int min, int max, int *out)
{
    int n = 0, v = 0;
    while (*p < e && **p >= '0' && **p <= '9' && n < max) {
        v = v * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    if (n < min) return -1;
    *out = v;
    return 0;
}

/* Zone names RFC 2822 section 4.3 still allows; military letters mean "unknown" there. */
static const struct {
    const char *name;
    int minutes;
} zones[] = {{"UT", 0},        {"GMT", 0},       {"UTC", 0},       {"Z", 0},
             {"EST", -5 * 60}, {"EDT", -4 * 60}, {"CST", -6 * 60}, {"CDT", -5 * 60},
             {"MST", -7 * 60}, {"MDT", -6 * 60}, {"PST", -8 * 60}, {"PDT", -7 * 60}};

/* Parses an RFC 2822 date-time into UTC microseconds.  The day name is optional
 * and not checked against the date; two-digit years are refused (unknown century). */
int cp_twilio_parse_rfc2822(const char *s, size_t len, int64_t *out_us)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    const char *p = s, *e = s + len;
    skip_sp(&p, e);
    const char *comma = memchr(p, ',', (size_t)(e - p));
    if (comma) {
        if (comma - p != 3) return CP_ERR_PARSE;
        p = comma + 1;
        skip_sp(&p, e);
    }
    int day, year, hour, min, sec = 0, mon = -1;
    if (digits(&p, e, 1, 2, &day) < 0) return CP_ERR_PARSE;
    skip_sp(&p, e);
    if (e - p < 3) return CP_ERR_PARSE;
    for (int m = 0; m < 12; m++)
        if (strncasecmp(p, months + 3 * m, 3) == 0) mon = m + 1;
    if (mon < 0) return CP_ERR_PARSE;
    p += 3;
    skip_sp(&p, e);
    if (digits(&p, e, 4, 4, &year) < 0) return CP_ERR_PARSE;
    skip_sp(&p, e);
    if (digits(&p, e, 2, 2, &hour) < 0 || p >= e || *p++ != ':' || digits(&p, e, 2, 2, &min) < 0)
        return CP_ERR_PARSE;
    if (p < e && *p == ':') {
        p++;
        if (digits(&p, e, 2, 2, &sec) < 0) return CP_ERR_PARSE;
    }
    skip_sp(&p, e);
    int off = 0;
    if (p < e && (*p == '+' || *p == '-')) {
        int sign = *p++ == '-' ? -1 : 1, z;
        const char *z0 = p;
        if (digits(&p, e, 4, 4, &z) < 0 || p - z0 != 4 || z % 100 > 59) return CP_ERR_PARSE;
        off = sign * ((z / 100) * 60 + z % 100);
    } else {
        const char *z0 = p;
        while (p < e && ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')))
            p++;
        size_t zl = (size_t)(p - z0);
        bool found = false;
        for (size_t i = 0; i < sizeof zones / sizeof zones[0] && !found; i++)
            if (strlen(zones[i].name) == zl && strncasecmp(zones[i].name, z0, zl) == 0) {
                off = zones[i].minutes;
                found = true;
            }
        if (!found) return CP_ERR_PARSE; /* no zone or an unknown one: never guess */
    }
    skip_sp(&p, e);
    if (p != e) return CP_ERR_PARSE;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (year < 1970 || day < 1 || day > mdays[mon - 1] || (mon == 2 && day == 29 && !leap) ||
        hour > 23 || min > 59 || sec > 60)
        return CP_ERR_RANGE;
    if (sec == 60) sec = 59; /* a leap second: the event happened in that minute's last second */
    int64_t t = cp_time_days_from_civil(year, (unsigned)mon, (unsigned)day) * 86400 + hour * 3600 +
                min * 60 + sec - (int64_t)off * 60;
    if (t <= 0 || t > CP_EVENT_TIME_MAX / 1000000) return CP_ERR_RANGE;
    *out_us = t * 1000000;
    return 0;
}

/* ---- the callback --------------------------------------------------------------------- */

/* A non-negative integer parameter; absent = -1. */
static int num(struct cp_twilio_req *t, const char *name, int64_t max, int64_t *out)
{
    const struct cp_twilio_pair *p = cp_twilio_form_get(&t->form, name);
    *out = -1;
    if (!p || p->val_len == 0) return 0;
    int64_t v = 0;
    for (size_t i = 0; i < p->val_len; i++) {
        unsigned d = (unsigned)(p->val[i] - '0');
        if (d > 9) return cp_twilio_bad(t, CP_ERR_PARSE, "bad value", name);
        if (v > (max - d) / 10) return cp_twilio_bad(t, CP_ERR_RANGE, "out of range", name);
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static const struct {
    const char *status;
    enum cp_kind kind;
    enum cp_disp disp;
} statuses[] = {
    {"queued", CP_KIND_CALL_START, CP_DISP_UNKNOWN},
    {"initiated", CP_KIND_CALL_START, CP_DISP_UNKNOWN},
    {"ringing", CP_KIND_RINGING, CP_DISP_UNKNOWN},
    {"answered", CP_KIND_ANSWER, CP_DISP_UNKNOWN},
    {"in-progress", CP_KIND_ANSWER, CP_DISP_UNKNOWN},
    {"completed", CP_KIND_CALL_END, CP_DISP_ANSWERED},
    {"busy", CP_KIND_CALL_END, CP_DISP_BUSY},
    {"no-answer", CP_KIND_CALL_END, CP_DISP_NO_ANSWER},
    {"failed", CP_KIND_CALL_END, CP_DISP_FAILED},
    {"canceled", CP_KIND_CALL_END, CP_DISP_CANCELED},
};

static int map(struct cp_twilio_req *t, struct cp_event *ev)
{
    int rc;
    const char *sid, *parent, *status, *stamp, *dir, *account, *seq, *source, *sip, *answered_by,
        *forwarded;
    int64_t duration;
    if ((rc = cp_twilio_str(t, "CallSid", &sid)) < 0 ||
        (rc = cp_twilio_str(t, "ParentCallSid", &parent)) < 0 ||
        (rc = cp_twilio_str(t, "CallStatus", &status)) < 0 ||
        (rc = cp_twilio_str(t, "Timestamp", &stamp)) < 0 ||
        (rc = cp_twilio_str(t, "Direction", &dir)) < 0 ||
        (rc = cp_twilio_str(t, "AccountSid", &account)) < 0 ||
        (rc = cp_twilio_str(t, "SequenceNumber", &seq)) < 0 ||
        (rc = cp_twilio_str(t, "CallbackSource", &source)) < 0 ||
        (rc = cp_twilio_str(t, "SipResponseCode", &sip)) < 0 ||
        (rc = cp_twilio_str(t, "AnsweredBy", &answered_by)) < 0 ||
        (rc = cp_twilio_str(t, "ForwardedFrom", &forwarded)) < 0 ||
        (rc = cp_twilio_str(t, "From", &ev->from)) < 0 ||
        (rc = cp_twilio_str(t, "To", &ev->to)) < 0 ||
        (rc = cp_twilio_str(t, "CallerName", &ev->from_name)) < 0 ||
        (rc = num(t, "CallDuration", INT32_MAX, &duration)) < 0)
        return rc;
    if (!sid) return cp_twilio_bad(t, CP_ERR_MISSING, "missing", "CallSid");
    if (!status) return cp_twilio_bad(t, CP_ERR_MISSING, "missing", "CallStatus");
    /* The Timestamp is when Twilio sent the callback; without it the only time
     * would be our receive time, which differs between retries. */
    if (!stamp) return cp_twilio_bad(t, CP_ERR_MISSING, "missing", "Timestamp");
    if ((rc = cp_twilio_parse_rfc2822(stamp, strlen(stamp), &ev->ts)) < 0)
        return cp_twilio_bad(t, rc, "bad time", "Timestamp");
    size_t i = 0;
    while (i < sizeof statuses / sizeof statuses[0] && strcmp(statuses[i].status, status) != 0)
        i++;
    if (i == sizeof statuses / sizeof statuses[0])
        return cp_twilio_bad(t, CP_ERR_PARSE, "bad value", "CallStatus");
    ev->kind = statuses[i].kind;
    ev->disp = statuses[i].disp;
    ev->native = status;
    /* A dialled leg names the caller's leg as its parent: that is the call. */
    ev->call = parent ? parent : sid;
    ev->leg = sid;
    ev->parent = parent;
    if (dir && strcmp(dir, "inbound") == 0)
        ev->dir = CP_DIR_INBOUND;
    else if (dir && strncmp(dir, "outbound", 8) == 0)
        ev->dir = CP_DIR_OUTBOUND;
    if (ev->kind == CP_KIND_CALL_END && duration >= 0)
        ev->talk = strcmp(status, "completed") == 0 ? (int32_t)duration : 0;
    cp_twilio_add_x(ev, "direction", dir);
    cp_twilio_add_x(ev, "sequence", seq);
    cp_twilio_add_x(ev, "callback_source", source);
    cp_twilio_add_x(ev, "sip_response_code", sip);
    cp_twilio_add_x(ev, "answered_by", answered_by);
    cp_twilio_add_x(ev, "forwarded_from", forwarded);
    cp_twilio_add_x(ev, "account", account);
    return 0;
}

static int voice_parse(void *state, const struct cp_source_ctx *ctx, const char *rec, size_t len,
                       struct cp_emit *out)
{
    (void)state;
    static _Thread_local struct cp_twilio_req t; /* 256 pairs: kept off the stack */
    struct cp_event ev;
    int rc = cp_twilio_begin(&t, ctx, SRC_NAME, rec, &len, &ev, out);
    if (rc <= 0) return rc;
    if ((rc = map(&t, &ev)) < 0) {
        out->reject(out, 0, rec, len, t.reason);
        return rc;
    }
    /* A retried callback carries the same CallSid, status and Timestamp. */
    const char *ids[] = {ev.leg, ev.native};
    return cp_twilio_finish(&t, &ev, ids, 2, rec, len, out);
}

const struct cp_source_format cp_source_twilio_voice = {
    .name = SRC_NAME,
    .framing = CP_FRAME_BODY,
    .state_create = NULL,
    .state_destroy = NULL,
    .parse = voice_parse,
};
