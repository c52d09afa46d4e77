/* asterisk_queue_log.c - the asterisk-queue-log source: epoch|callid|queue|agent|event|data. */
#include "asterisk_queue_log.h"

#include <stdbool.h>
#include <string.h>

#include "cp_err.h"
#include "../asterisk_common/ast_common.h"

#define SRC_NAME "asterisk-queue-log"
/* 5 fixed fields and the longest payload (ATTENDEDTRANSFER LINK: 6), with room to spare */
#define MAX_FIELDS 32

struct field {
    const char *s;
    size_t n;
};

struct ql {
    const struct cp_source_ctx *ctx;
    struct cp_emit *out;
    const char *rec;
    size_t len;
    struct field f[MAX_FIELDS];
    size_t nf;
    struct cp_event ev;
    const char *reason;
    int code;
    bool oom;
};

static void bad(struct ql *q, int code, const char *reason)
{
    if (!q->reason) {
        q->reason = reason;
        q->code = code;
    }
}

/* Payload field i (after the event name); empty when absent. */
static struct field d(const struct ql *q, size_t i)
{
    if (5 + i < q->nf) return q->f[5 + i];
    return (struct field){q->rec, 0};
}

static bool eq(struct field f, const char *lit)
{
    return f.n == strlen(lit) && memcmp(f.s, lit, f.n) == 0;
}

static const char *str(struct ql *q, struct field f)
{
    return cp_ast_str(q->ctx->arena, f.s, f.n, CP_EVENT_STR_MAX, &q->oom);
}

static void x(struct ql *q, const char *key, struct field f)
{
    if (!cp_ast_x(&q->ev, q->ctx->arena, key, f.s, f.n)) q->oom = true;
}

static void secs(struct ql *q, struct field f, int32_t *dst, const char *reason)
{
    if (cp_ast_secs(f.s, f.n, dst) != 0) bad(q, CP_ERR_PARSE, reason);
}

/* "position|original_position|waittime" of the exits */
static void exit_fields(struct ql *q, size_t first)
{
    x(q, "position", d(q, first));
    x(q, "original_position", d(q, first + 1));
    secs(q, d(q, first + 2), &q->ev.wait, "bad waittime");
}

/* Fills q->ev for the line's event.  Returns false for lines that are not call events. */
static bool map(struct ql *q, struct field evn)
{
    struct cp_event *ev = &q->ev;
    if (eq(evn, "ENTERQUEUE")) {
        ev->kind = CP_KIND_QUEUE_ENTER;
        x(q, "url", d(q, 0));
        ev->from = str(q, d(q, 1));
        x(q, "original_position", d(q, 2));
        ev->from_name = str(q, d(q, 3)); /* only with queues.conf log_caller_id_name */
    } else if (eq(evn, "CONNECT")) {
        ev->kind = CP_KIND_AGENT_CONNECT;
        secs(q, d(q, 0), &ev->wait, "bad holdtime");
        x(q, "member_leg", d(q, 1));
        secs(q, d(q, 2), &ev->ring, "bad ringtime");
    } else if (eq(evn, "COMPLETECALLER") || eq(evn, "COMPLETEAGENT")) {
        ev->kind = CP_KIND_AGENT_COMPLETE;
        ev->side = evn.s[8] == 'C' ? CP_SIDE_CALLER : CP_SIDE_AGENT;
        secs(q, d(q, 0), &ev->wait, "bad holdtime");
        secs(q, d(q, 1), &ev->talk, "bad talktime");
        x(q, "original_position", d(q, 2));
    } else if (eq(evn, "ABANDON")) {
        ev->kind = CP_KIND_QUEUE_LEAVE;
        ev->qout = CP_QOUT_ABANDONED;
        ev->side = CP_SIDE_CALLER;
        exit_fields(q, 0);
    } else if (eq(evn, "EXITWITHTIMEOUT") || eq(evn, "EXITEMPTY") || eq(evn, "WITHDRAW")) {
        /* EXITEMPTY (no members, leavewhenempty) and WITHDRAW (QueueWithdrawCaller) have no
         * queue outcome of their own: timeout, as pbx-formats.md section 9 maps them, with
         * the event name in native. */
        ev->kind = CP_KIND_QUEUE_LEAVE;
        ev->qout = CP_QOUT_TIMEOUT;
        exit_fields(q, 0);
        if (evn.n == 8) x(q, "info", d(q, 3));
    } else if (eq(evn, "EXITWITHKEY")) {
        ev->kind = CP_KIND_QUEUE_LEAVE;
        ev->qout = CP_QOUT_KEY_EXIT;
        ev->side = CP_SIDE_CALLER;
        x(q, "key", d(q, 0));
        exit_fields(q, 1);
    } else if (eq(evn, "RINGNOANSWER")) {
        ev->kind = CP_KIND_AGENT_NOANSWER;
        if (cp_ast_ms_to_secs(d(q, 0).s, d(q, 0).n, &ev->ring) != 0)
            bad(q, CP_ERR_PARSE, "bad ringtime");
        x(q, "ring_ms", d(q, 0));
    } else if (eq(evn, "BLINDTRANSFER") || eq(evn, "TRANSFER")) {
        /* TRANSFER is the pre-12 spelling with the same layout (calltime = talk time) */
        ev->kind = CP_KIND_TRANSFER;
        ev->to = str(q, d(q, 0));
        x(q, "context", d(q, 1));
        secs(q, d(q, 2), &ev->wait, "bad holdtime");
        secs(q, d(q, 3), &ev->talk, "bad talktime");
        x(q, "original_position", d(q, 4));
    } else if (eq(evn, "ATTENDEDTRANSFER")) {
        /* The target description itself holds '|' ("BRIDGE|<id>", "APP|<app>",
         * "LINK|<chan>|<chan>"), so the three numbers are taken from the end. */
        ev->kind = CP_KIND_TRANSFER;
        size_t nd = q->nf > 5 ? q->nf - 5 : 0;
        if (nd < 4) {
            bad(q, CP_ERR_PARSE, "too few fields");
            return true;
        }
        struct field first = d(q, 0), last = d(q, nd - 4);
        x(q, "target", (struct field){first.s, (size_t)(last.s + last.n - first.s)});
        secs(q, d(q, nd - 3), &ev->wait, "bad holdtime");
        secs(q, d(q, nd - 2), &ev->talk, "bad talktime");
        x(q, "original_position", d(q, nd - 1));
    } else {
        /* RINGCANCELED, AGENTDUMP, DID, INFO, SYSCOMPAT, custom QueueLog() events */
        return false;
    }
    return true;
}

static int ql_parse(void *state, const struct cp_source_ctx *ctx, const char *rec, size_t len,
                    struct cp_emit *out)
{
    (void)state;
    while (len > 0 && (rec[len - 1] == '\n' || rec[len - 1] == '\r'))
        len--;
    if (len == 0) return 0;
    struct ql q;
    memset(&q, 0, sizeof q);
    q.ctx = ctx;
    q.out = out;
    q.rec = rec;
    q.len = len;
    for (size_t i = 0, start = 0; i <= len; i++) {
        if (i == len || rec[i] == '|') {
            if (q.nf == MAX_FIELDS) {
                out->reject(out, 0, rec, len, "too many fields");
                return CP_ERR_TOOBIG;
            }
            q.f[q.nf++] = (struct field){rec + start, i - start};
            start = i + 1;
        }
    }
    if (q.nf < 5) {
        out->reject(out, 0, rec, len, "too few fields");
        return CP_ERR_PARSE;
    }
    struct field tf = q.f[0], callid = q.f[1], queue = q.f[2], agent = q.f[3], evn = q.f[4];
    /* Queue and member management (QUEUESTART, ADDMEMBER, PAUSE, AGENTLOGIN, CONFIGRELOAD, ...)
     * carry no call; they are not call events. */
    if (eq(callid, "NONE") || eq(callid, "REALTIME") || eq(callid, "MANAGER") || eq(callid, "CLI"))
        return 0;
    cp_event_init(&q.ev);
    if (!map(&q, evn)) return 0;
    struct cp_event *ev = &q.ev;
    const char *why = "bad time";
    int rc;
    if (memchr(tf.s, '-', tf.n)) {
        /* realtime/ODBC rows exported as text: "YYYY-MM-DD HH:MM:SS.uuuuuu", local time */
        rc = cp_ast_local_time(tf.s, tf.n, ctx->tz, &ev->ts, &why);
    } else {
        rc = cp_ast_epoch(tf.s, tf.n, &ev->ts);
        why = "bad time";
    }
    if (rc) bad(&q, rc, why);
    if (callid.n == 0)
        bad(&q, CP_ERR_MISSING, "missing: callid");
    else if (callid.n > CP_EVENT_STR_MAX)
        bad(&q, CP_ERR_TOOBIG, "too long: callid");
    ev->call = ev->leg = str(&q, callid);
    if (queue.n == 0 || eq(queue, "NONE")) bad(&q, CP_ERR_MISSING, "missing: queue");
    ev->queue = str(&q, queue);
    if (!eq(agent, "NONE")) ev->agent = str(&q, agent);
    ev->native = cp_ast_str(ctx->arena, evn.s, evn.n, CP_EVENT_NATIVE_MAX, &q.oom);
    if (q.oom) bad(&q, CP_ERR_NOMEM, "out of memory");
    if (q.reason) {
        out->reject(out, 0, rec, len, q.reason);
        return q.code;
    }
    /* The whole payload identifies the line: two RINGNOANSWERs of one member in one second
     * differ in their ring time, and a re-read line gets the same id. */
    const char *payload_s = evn.s + evn.n;
    size_t payload_n = (size_t)(rec + len - payload_s);
    const char *ids[5] = {
        ev->native, ev->call, ev->queue, ev->agent,
        cp_ast_str(ctx->arena, payload_s, payload_n, CP_EVENT_NATIVE_MAX, &q.oom)};
    if (q.oom) {
        out->reject(out, 0, rec, len, "out of memory");
        return CP_ERR_NOMEM;
    }
    rc = cp_ast_emit(ctx, out, ev, SRC_NAME, ids, 5, rec, len);
    if (rc < 0 || ev->kind != CP_KIND_TRANSFER)
        return rc;
    /* app_queue logs a transfer INSTEAD of COMPLETEAGENT/COMPLETECALLER: the member's part of
     * the call ends there, so the line also completes the agent's segment (same talk time). */
    ev->kind = CP_KIND_AGENT_COMPLETE;
    ev->to = NULL;
    int rc2 = cp_ast_emit(ctx, out, ev, SRC_NAME, ids, 5, rec, len);
    return rc2 < 0 ? rc2 : rc + rc2;
}

const struct cp_source_format cp_source_asterisk_queue_log = {
    .name = SRC_NAME,
    .framing = CP_FRAME_LINES,
    .state_create = NULL,
    .state_destroy = NULL,
    .parse = ql_parse,
};
