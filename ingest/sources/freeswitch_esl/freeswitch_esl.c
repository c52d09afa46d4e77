/* freeswitch_esl.c - FreeSWITCH Event Socket plain events (channel and mod_callcenter) to canonical events. */
#include "freeswitch_esl.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cp_event_id.h"
#include "../srcutil/fs_cause.h"
#include "../srcutil/fs_reader.h"
#include "../srcutil/srcutil.h"

#define SRC_NAME "freeswitch-esl"
#define US_PER_S INT64_C(1000000)
#define MAX_SECONDS (CP_EVENT_TIME_MAX / US_PER_S)

/* ---- framing ------------------------------------------------------------------- */

size_t cp_esl_headers_len(const char *buf, size_t len)
{
    /* An empty line: "\n\n" or "\n\r\n" (LF is the protocol; CRLF from replays). */
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (i + 1 < len && buf[i + 1] == '\n')
            return i + 2;
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

bool cp_esl_header(const char *block, size_t len, const char *name, const char **val,
                   size_t *vlen)
{
    size_t nlen = strlen(name);
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(block + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - block) : len;
        size_t le = end;
        if (le > i && block[le - 1] == '\r')
            le--;
        if (le == i)
            return false; /* the empty line ends the block */
        const char *line = block + i;
        size_t ll = le - i;
        if (ll > nlen && line[nlen] == ':' && strncasecmp(line, name, nlen) == 0) {
            size_t v = nlen + 1;
            while (v < ll && line[v] == ' ')
                v++;
            *val = line + v;
            *vlen = ll - v;
            return true;
        }
        i = end + 1;
    }
    return false;
}

/*
 * One outer message: its header block, then exactly Content-Length bytes
 * when that header is present (events, api/response, log/data), else
 * nothing more (auth/request, command/reply).  A lone leading newline is a
 * one-byte record that parse ignores, so the stream resynchronises.
 */
static long esl_frame(void *state, const char *buf, size_t len)
{
    (void)state;
    if (len == 0)
        return 0;
    if (buf[0] == '\n')
        return 1;
    if (len >= 2 && buf[0] == '\r' && buf[1] == '\n')
        return 2;
    size_t hl = cp_esl_headers_len(buf, len < CP_ESL_HEADERS_MAX ? len : CP_ESL_HEADERS_MAX);
    if (hl == 0)
        return len >= CP_ESL_HEADERS_MAX ? CP_ERR_TOOBIG : 0;
    const char *v;
    size_t vl;
    if (!cp_esl_header(buf, hl, "Content-Length", &v, &vl))
        return (long)hl;
    uint64_t n;
    if (!cp_srcutil_u64(v, vl, CP_ESL_BODY_MAX, &n))
        return vl > 0 && vl <= 20 && strspn(v, "0123456789") == vl ? CP_ERR_TOOBIG : CP_ERR_PARSE;
    if (len - hl < n)
        return 0;
    return (long)(hl + n);
}

/* ---- parsing ------------------------------------------------------------------- */

struct ep {
    const struct cp_source_ctx *ctx;
    const char *hdr; /* the inner (event) header block */
    size_t hlen;
    struct cp_fs_reader r; /* oom, the reject reason and its code */
};

/* An inner header, %XX-decoded ('+' is literal: FreeSWITCH escapes it). */
static bool hv(struct ep *p, const char *name, const char **s, size_t *len)
{
    const char *raw;
    size_t rl;
    if (!cp_esl_header(p->hdr, p->hlen, name, &raw, &rl) || rl == 0)
        return false;
    return cp_fs_reader_decode(&p->r, raw, rl, s, len);
}

static const char *htext(struct ep *p, const char *name, size_t max)
{
    const char *s;
    size_t len;
    if (!hv(p, name, &s, &len))
        return NULL;
    return cp_srcutil_text(p->ctx->arena, s, len, max, &p->r.oom);
}

static const char *hid(struct ep *p, const char *name)
{
    const char *s;
    size_t len;
    if (!hv(p, name, &s, &len))
        return NULL;
    return cp_fs_reader_id(&p->r, name, s, len);
}

/* Unsigned header; absent → false; garbage → reject. */
static bool hnum(struct ep *p, const char *name, uint64_t max, uint64_t *out)
{
    const char *s;
    size_t len;
    return hv(p, name, &s, &len) && cp_fs_reader_u64(&p->r, name, s, len, max, out);
}

/* b - a for two epoch-second headers, when both are set and in order. */
static int32_t span(struct ep *p, const char *a, const char *b)
{
    uint64_t ta = 0, tb = 0;
    if (!hnum(p, a, MAX_SECONDS, &ta) || !hnum(p, b, MAX_SECONDS, &tb))
        return -1;
    if (ta == 0 || tb < ta || tb - ta > INT32_MAX)
        return -1;
    return (int32_t)(tb - ta);
}

static void x_add(struct ep *p, struct cp_event *ev, const char *key, const char *name)
{
    if (ev->nx >= CP_EVENT_X_MAX)
        return;
    const char *v = htext(p, name, CP_EVENT_X_STR_MAX);
    if (v) {
        ev->x[ev->nx].key = key;
        ev->x[ev->nx].val = v;
        ev->nx++;
    }
}

static int32_t dur(struct ep *p, const char *name)
{
    uint64_t v;
    return hnum(p, name, INT32_MAX, &v) ? (int32_t)v : -1;
}

/* Channel events: CHANNEL_CREATE / CHANNEL_ANSWER / CHANNEL_HANGUP_COMPLETE. */
static void map_channel(struct ep *p, struct cp_event *ev)
{
    ev->leg = hid(p, "Unique-ID");
    ev->call = hid(p, "Channel-Call-UUID");
    if (!ev->call)
        ev->call = ev->leg;
    const char *s;
    size_t len;
    if (hv(p, "Call-Direction", &s, &len)) {
        if (cp_srcutil_eq(s, len, "inbound"))
            ev->dir = CP_DIR_INBOUND;
        else if (cp_srcutil_eq(s, len, "outbound"))
            ev->dir = CP_DIR_OUTBOUND;
    }
    ev->from = htext(p, "Caller-Caller-ID-Number", CP_EVENT_STR_MAX);
    ev->from_name = htext(p, "Caller-Caller-ID-Name", CP_EVENT_STR_MAX);
    ev->to = htext(p, "Caller-Destination-Number", CP_EVENT_STR_MAX);
    ev->queue = htext(p, "variable_cc_queue", CP_EVENT_STR_MAX);
    ev->agent = htext(p, "variable_cc_agent", CP_EVENT_STR_MAX);
    if (ev->kind == CP_KIND_CALL_END) {
        const char *cause = NULL;
        size_t clen = 0;
        if (hv(p, "Hangup-Cause", &cause, &clen))
            ev->native = cp_srcutil_text(p->ctx->arena, cause, clen, CP_EVENT_NATIVE_MAX,
                                         &p->r.oom);
        uint64_t q = 0;
        if (hv(p, "variable_hangup_cause_q850", &s, &len) &&
            cp_srcutil_u64(s, len, CP_EVENT_Q850_MAX, &q))
            ev->q850 = (int32_t)q;
        else if (cause)
            ev->q850 = cp_fs_cause_q850(cause, clen);
        /* Answered: the channel's answer time (µs) or epoch is set. */
        uint64_t at = 0;
        bool answered = (hnum(p, "Caller-Channel-Answered-Time", CP_EVENT_TIME_MAX, &at) &&
                         at > 0) ||
                        (hnum(p, "variable_answer_epoch", MAX_SECONDS, &at) && at > 0);
        ev->disp = cp_fs_cause_disp(cause, clen, answered);
        ev->talk = dur(p, "variable_billsec");
        ev->hold = dur(p, "variable_hold_accum_seconds");
        x_add(p, ev, "sip_hangup_disposition", "variable_sip_hangup_disposition");
    }
    x_add(p, ev, "channel_name", "Channel-Name");
}

/* mod_callcenter CUSTOM callcenter::info.  Returns false for actions that map
 * to nothing (agent and member bookkeeping). */
static bool map_callcenter(struct ep *p, struct cp_event *ev, const char *act, size_t alen)
{
    if (cp_srcutil_eq(act, alen, "member-queue-start")) {
        ev->kind = CP_KIND_QUEUE_ENTER;
    } else if (cp_srcutil_eq(act, alen, "agent-offering")) {
        ev->kind = CP_KIND_AGENT_OFFER;
    } else if (cp_srcutil_eq(act, alen, "bridge-agent-start")) {
        ev->kind = CP_KIND_AGENT_CONNECT;
        ev->wait = span(p, "CC-Member-Joined-Time", "CC-Agent-Answered-Time");
        ev->ring = span(p, "CC-Agent-Called-Time", "CC-Agent-Answered-Time");
    } else if (cp_srcutil_eq(act, alen, "bridge-agent-fail")) {
        ev->kind = CP_KIND_AGENT_NOANSWER;
        ev->ring = span(p, "CC-Agent-Called-Time", "CC-Agent-Aborted-Time");
        ev->native = htext(p, "CC-Hangup-Cause", CP_EVENT_NATIVE_MAX);
    } else if (cp_srcutil_eq(act, alen, "bridge-agent-end")) {
        ev->kind = CP_KIND_AGENT_COMPLETE;
        ev->talk = span(p, "CC-Agent-Answered-Time", "CC-Bridge-Terminated-Time");
        ev->native = htext(p, "CC-Hangup-Cause", CP_EVENT_NATIVE_MAX);
    } else if (cp_srcutil_eq(act, alen, "member-queue-end")) {
        const char *cause, *reason;
        size_t cl = 0, rl = 0;
        if (!hv(p, "CC-Cause", &cause, &cl))
            cause = "";
        ev->kind = CP_KIND_QUEUE_LEAVE;
        ev->wait = span(p, "CC-Member-Joined-Time", "CC-Member-Leaving-Time");
        if (cp_srcutil_eq(cause, cl, "Terminated")) {
            /* The member was bridged and the call is over: the queue was
             * left when the agent answered, so the event is booked then. */
            uint64_t ans = 0;
            ev->qout = CP_QOUT_ANSWERED;
            ev->wait = span(p, "CC-Member-Joined-Time", "CC-Agent-Answered-Time");
            if (hnum(p, "CC-Agent-Answered-Time", MAX_SECONDS, &ans) && ans > 0)
                ev->ts = (int64_t)ans * US_PER_S;
            ev->native = htext(p, "CC-Cause", CP_EVENT_NATIVE_MAX);
        } else {
            if (hv(p, "CC-Cancel-Reason", &reason, &rl)) {
                if (cp_srcutil_eq(reason, rl, "BREAK_OUT"))
                    ev->qout = CP_QOUT_ABANDONED;
                else if (cp_srcutil_eq(reason, rl, "TIMEOUT") ||
                         cp_srcutil_eq(reason, rl, "NO_AGENT_TIMEOUT"))
                    ev->qout = CP_QOUT_TIMEOUT;
                else if (cp_srcutil_eq(reason, rl, "EXIT_WITH_KEY"))
                    ev->qout = CP_QOUT_KEY_EXIT;
                ev->native = cp_srcutil_text(p->ctx->arena, reason, rl, CP_EVENT_NATIVE_MAX,
                                             &p->r.oom);
            } else {
                ev->native = htext(p, "CC-Cause", CP_EVENT_NATIVE_MAX);
            }
            if (ev->qout == CP_QOUT_ABANDONED)
                ev->side = CP_SIDE_CALLER;
        }
    } else {
        return false;
    }
    /* The member's channel is the caller's leg: its uuid correlates the
     * queue events with that channel's CHANNEL_* events. */
    const char *member = hid(p, "CC-Member-Session-UUID");
    const char *chan_call = hid(p, "Channel-Call-UUID");
    const char *uid = hid(p, "Unique-ID");
    ev->call = member ? member : chan_call ? chan_call : uid;
    ev->leg = member ? member : uid;
    ev->queue = htext(p, "CC-Queue", CP_EVENT_STR_MAX);
    ev->agent = htext(p, "CC-Agent", CP_EVENT_STR_MAX);
    ev->from = htext(p, "CC-Member-CID-Number", CP_EVENT_STR_MAX);
    ev->from_name = htext(p, "CC-Member-CID-Name", CP_EVENT_STR_MAX);
    ev->to = htext(p, "CC-Member-DNIS", CP_EVENT_STR_MAX);
    x_add(p, ev, "cc_member_uuid", "CC-Member-UUID");
    x_add(p, ev, "cc_agent_uuid", "CC-Agent-UUID");
    x_add(p, ev, "cc_cause", "CC-Cause");
    return true;
}

static int esl_parse(void *state, const struct cp_source_ctx *ctx, const char *rec, size_t len,
                     struct cp_emit *out)
{
    (void)state;
    size_t hl = cp_esl_headers_len(rec, len);
    if (hl == 0) {
        /* Blank resync bytes are nothing; anything else lacks its end. */
        size_t i = 0;
        while (i < len && (rec[i] == '\n' || rec[i] == '\r'))
            i++;
        if (i == len)
            return 0;
        out->reject(out, 0, rec, len, "truncated message");
        return CP_ERR_PARSE;
    }
    const char *ct;
    size_t ctl;
    if (!cp_esl_header(rec, hl, "Content-Type", &ct, &ctl)) {
        out->reject(out, 0, rec, len, "missing: Content-Type");
        return CP_ERR_MISSING;
    }
    /* Answers to our own commands and log lines: nothing to ingest. */
    if (cp_srcutil_eq(ct, ctl, "auth/request") || cp_srcutil_eq(ct, ctl, "command/reply") ||
        cp_srcutil_eq(ct, ctl, "api/response") || cp_srcutil_eq(ct, ctl, "log/data") ||
        cp_srcutil_eq(ct, ctl, "text/disconnect-notice") ||
        cp_srcutil_eq(ct, ctl, "text/rude-rejection"))
        return 0;
    if (cp_srcutil_eq(ct, ctl, "text/event-json") || cp_srcutil_eq(ct, ctl, "text/event-xml")) {
        out->reject(out, 0, rec, len, "unsupported event format");
        return CP_ERR_PARSE;
    }
    if (!cp_srcutil_eq(ct, ctl, "text/event-plain")) {
        out->reject(out, 0, rec, len, "unknown content type");
        return CP_ERR_PARSE;
    }

    struct ep p;
    memset(&p, 0, sizeof p);
    p.ctx = ctx;
    p.r.arena = ctx->arena;
    p.hdr = rec + hl;
    p.hlen = len - hl;
    if (p.hlen == 0) {
        out->reject(out, 0, rec, len, "empty event");
        return CP_ERR_PARSE;
    }

    const char *name;
    size_t nl;
    if (!hv(&p, "Event-Name", &name, &nl)) {
        out->reject(out, 0, rec, len, p.r.oom ? "out of memory" : "missing: Event-Name");
        return p.r.oom ? CP_ERR_NOMEM : CP_ERR_MISSING;
    }
    struct cp_event ev;
    cp_event_init(&ev);
    ev.org = ctx->org;
    ev.pbx = ctx->pbx;
    ev.src = SRC_NAME;
    ev.recv = ctx->recv_us;
    uint64_t ts = 0;
    if (!hnum(&p, "Event-Date-Timestamp", CP_EVENT_TIME_MAX, &ts) || ts == 0)
        cp_fs_reader_bad(&p.r, CP_ERR_MISSING, "missing", "Event-Date-Timestamp");
    ev.ts = (int64_t)ts;

    const char *what = NULL; /* the native kind, for the event id */
    size_t wl = 0;
    if (cp_srcutil_eq(name, nl, "CHANNEL_CREATE") || cp_srcutil_eq(name, nl, "CHANNEL_ANSWER") ||
        cp_srcutil_eq(name, nl, "CHANNEL_HANGUP_COMPLETE")) {
        if (cp_srcutil_eq(name, nl, "CHANNEL_CREATE"))
            ev.kind = CP_KIND_CALL_START;
        else if (cp_srcutil_eq(name, nl, "CHANNEL_ANSWER"))
            ev.kind = CP_KIND_ANSWER;
        else
            ev.kind = CP_KIND_CALL_END;
        what = name;
        wl = nl;
        map_channel(&p, &ev);
    } else if (cp_srcutil_eq(name, nl, "CUSTOM")) {
        const char *sub, *act;
        size_t sl, al;
        if (!hv(&p, "Event-Subclass", &sub, &sl) || !cp_srcutil_eq(sub, sl, "callcenter::info") ||
            !hv(&p, "CC-Action", &act, &al) || !map_callcenter(&p, &ev, act, al)) {
            if (p.r.oom) {
                out->reject(out, 0, rec, len, "out of memory");
                return CP_ERR_NOMEM;
            }
            return 0; /* other subclasses and actions: not call events */
        }
        what = act;
        wl = al;
    } else {
        return 0; /* HEARTBEAT, RE_SCHEDULE, CHANNEL_STATE, ...: subscribed by someone else */
    }
    if (!ev.call && !p.r.reason)
        cp_fs_reader_bad(&p.r, CP_ERR_MISSING, "missing", "Unique-ID");
    if (p.r.oom) {
        out->reject(out, 0, rec, len, "out of memory");
        return CP_ERR_NOMEM;
    }
    if (p.r.reason) {
        out->reject(out, 0, rec, len, p.r.reason);
        return p.r.code;
    }
    const char *kind_native = cp_arena_strndup(ctx->arena, what, wl);
    const char *core = NULL, *seq = NULL;
    const char *s;
    size_t sl2;
    if (hv(&p, "Core-UUID", &s, &sl2))
        core = cp_arena_strndup(ctx->arena, s, sl2 < 128 ? sl2 : 128);
    if (hv(&p, "Event-Sequence", &s, &sl2))
        seq = cp_arena_strndup(ctx->arena, s, sl2 < 32 ? sl2 : 32);
    const char *ids[] = {ev.call, ev.leg, kind_native, ev.queue, ev.agent, core, seq};
    int rc = kind_native ? cp_event_derive_id(&ev, ctx->arena, ids, 7) : CP_ERR_NOMEM;
    if (rc < 0) {
        out->reject(out, 0, rec, len, rc == CP_ERR_NOMEM ? "out of memory" : "internal error");
        return rc;
    }
    const char *why = NULL;
    if (cp_event_validate(&ev, &why) != 0) {
        out->reject(out, 0, rec, len, "invalid event");
        return CP_ERR_PARSE;
    }
    rc = out->event(out, &ev);
    return rc < 0 ? rc : 1;
}

const struct cp_source_format cp_source_freeswitch_esl = {
    .name = SRC_NAME,
    .framing = CP_FRAME_CUSTOM,
    .state_create = NULL,
    .state_destroy = NULL,
    .parse = esl_parse,
    .frame = esl_frame,
};
