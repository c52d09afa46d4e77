/* twilio_taskrouter.c - the twilio-taskrouter source format: TaskRouter callbacks to events. */
#include "twilio.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "cp_utf8.h"
#include "twilio_webhook.h"

/*
 * One record is one form-encoded POST from a Workspace's EventCallbackUrl
 * (pbx-formats.md section 6): one event, which becomes one canonical event,
 * nothing (event types that say nothing about calls), or a reject.  The call
 * is the voice call's SID from the task's attributes, so these events meet the
 * twilio-voice events of the same call; a task without one keeps its TaskSid.
 */

#define SRC_NAME "twilio-taskrouter"

/* Decimal with up to `frac` fraction digits, scaled by 10^frac; absent = -1. */
static int fixed(struct cp_twilio_req *t, const char *name, int frac, int64_t max, int64_t *out)
{
    const struct cp_twilio_pair *p = cp_twilio_form_get(&t->form, name);
    *out = -1;
    if (!p || p->val_len == 0) return 0;
    int64_t v = 0;
    int seen = -1; /* fraction digits read, -1 before the point */
    for (size_t i = 0; i < p->val_len; i++) {
        char c = p->val[i];
        if (c == '.' && seen < 0 && i > 0 && i + 1 < p->val_len) {
            seen = 0;
            continue;
        }
        unsigned d = (unsigned)(c - '0');
        if (d > 9) return cp_twilio_bad(t, CP_ERR_PARSE, "bad value", name);
        if (seen >= frac) continue; /* finer than we keep: truncated */
        if (v > (max - d) / 10) return cp_twilio_bad(t, CP_ERR_RANGE, "out of range", name);
        v = v * 10 + d;
        if (seen >= 0) seen++;
    }
    for (int k = seen < 0 ? 0 : seen; k < frac; k++) {
        if (v > max / 10) return cp_twilio_bad(t, CP_ERR_RANGE, "out of range", name);
        v *= 10;
    }
    *out = v;
    return 0;
}

/* A string member of the attributes object copied into the arena; NULL when
 * absent, not a string, empty, or unusable (too long, not UTF-8). */
static const char *attr_str(struct cp_twilio_req *t, json_t *attrs, const char *key, bool *oom)
{
    json_t *v = json_object_get(attrs, key);
    if (!json_is_string(v)) return NULL;
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n == 0 || n > CP_EVENT_STR_MAX || memchr(s, '\0', n) || !cp_utf8_valid(s, n)) return NULL;
    const char *c = cp_arena_strndup(t->ctx->arena, s, n);
    if (!c) *oom = true;
    return c;
}

struct attrs {
    const char *call_sid, *from, *to, *direction, *name;
};

static int read_attrs(struct cp_twilio_req *t, struct attrs *a)
{
    memset(a, 0, sizeof *a);
    const struct cp_twilio_pair *p = cp_twilio_form_get(&t->form, "TaskAttributes");
    if (!p || p->val_len == 0) return 0;
    json_error_t err;
    json_t *j = json_loadb(p->val, p->val_len, JSON_REJECT_DUPLICATES, &err);
    if (!json_is_object(j)) {
        json_decref(j);
        return cp_twilio_bad(t, CP_ERR_PARSE, "bad value", "TaskAttributes");
    }
    bool oom = false;
    /* Flex and the <Enqueue> verb write call_sid; Twilio's examples also callSid. */
    a->call_sid = attr_str(t, j, "call_sid", &oom);
    if (!a->call_sid) a->call_sid = attr_str(t, j, "callSid", &oom);
    a->from = attr_str(t, j, "from", &oom);
    a->to = attr_str(t, j, "to", &oom);
    a->direction = attr_str(t, j, "direction", &oom);
    a->name = attr_str(t, j, "name", &oom);
    json_decref(j);
    return oom ? cp_twilio_bad(t, CP_ERR_NOMEM, "out of memory", NULL) : 0;
}

static bool contains_ci(const char *s, const char *needle)
{
    return s && strcasestr(s, needle) != NULL;
}

static const struct {
    const char *type;
    enum cp_kind kind;
} types[] = {
    {"task-queue.entered", CP_KIND_QUEUE_ENTER},
    {"reservation.created", CP_KIND_AGENT_OFFER},
    {"reservation.rejected", CP_KIND_AGENT_NOANSWER},
    {"reservation.timeout", CP_KIND_AGENT_NOANSWER},
    {"reservation.accepted", CP_KIND_AGENT_CONNECT},
    {"task.canceled", CP_KIND_QUEUE_LEAVE},
    {"task.wrapup", CP_KIND_AGENT_COMPLETE},
    {"task.completed", CP_KIND_WRAPUP_END},
};

/* 1 = event filled, 0 = nothing to say, < 0 = reject (t->reason set). */
static int map(struct cp_twilio_req *t, struct cp_event *ev, const char **ids)
{
    int rc;
    const char *type, *task, *reservation, *channel, *worker_sid, *cancel_reason, *complete_reason,
        *workspace, *workflow, *queue_sid;
    int64_t ts_ms, ts_s, age;
    if ((rc = cp_twilio_str(t, "EventType", &type)) < 0 ||
        (rc = cp_twilio_str(t, "TaskSid", &task)) < 0 ||
        (rc = cp_twilio_str(t, "ReservationSid", &reservation)) < 0 ||
        (rc = cp_twilio_str(t, "TaskChannelUniqueName", &channel)) < 0 ||
        (rc = cp_twilio_str(t, "TaskQueueName", &ev->queue)) < 0 ||
        (rc = cp_twilio_str(t, "TaskQueueSid", &queue_sid)) < 0 ||
        (rc = cp_twilio_str(t, "WorkerSid", &worker_sid)) < 0 ||
        (rc = cp_twilio_str(t, "WorkerName", &ev->agent_name)) < 0 ||
        (rc = cp_twilio_str(t, "TaskCanceledReason", &cancel_reason)) < 0 ||
        (rc = cp_twilio_str(t, "TaskCompletedReason", &complete_reason)) < 0 ||
        (rc = cp_twilio_str(t, "WorkspaceName", &workspace)) < 0 ||
        (rc = cp_twilio_str(t, "WorkflowName", &workflow)) < 0 ||
        (rc = fixed(t, "TimestampMs", 3, INT64_MAX, &ts_ms)) < 0 ||
        (rc = fixed(t, "Timestamp", 6, INT64_MAX, &ts_s)) < 0 ||
        (rc = fixed(t, "TaskAge", 0, INT32_MAX, &age)) < 0)
        return rc;
    if (!type) return cp_twilio_bad(t, CP_ERR_MISSING, "missing", "EventType");
    size_t i = 0;
    while (i < sizeof types / sizeof types[0] && strcmp(types[i].type, type) != 0)
        i++;
    if (i == sizeof types / sizeof types[0])
        return 0; /* worker, activity, workflow ... events: not about a call */
    /* Chat, SMS and custom tasks are not calls. */
    if (channel && strcmp(channel, "voice") != 0) return 0;
    if (!task) return cp_twilio_bad(t, CP_ERR_MISSING, "missing", "TaskSid");
    /* TimestampMs (added 2018) is exact; Timestamp is seconds.  Both were read
     * scaled to microseconds. */
    if (ts_ms >= 0)
        ev->ts = ts_ms;
    else if (ts_s >= 0)
        ev->ts = ts_s;
    else
        return cp_twilio_bad(t, CP_ERR_MISSING, "missing", "Timestamp");
    if (ev->ts <= 0 || ev->ts > CP_EVENT_TIME_MAX)
        return cp_twilio_bad(t, CP_ERR_RANGE, "out of range",
                             ts_ms >= 0 ? "TimestampMs" : "Timestamp");

    struct attrs a;
    if ((rc = read_attrs(t, &a)) < 0) return rc;
    ev->kind = types[i].kind;
    ev->native = type;
    ev->call = a.call_sid ? a.call_sid : task;
    ev->leg = task;
    ev->from = a.from;
    ev->to = a.to;
    ev->from_name = a.name;
    if (a.direction && strcmp(a.direction, "inbound") == 0)
        ev->dir = CP_DIR_INBOUND;
    else if (a.direction && strncmp(a.direction, "outbound", 8) == 0)
        ev->dir = CP_DIR_OUTBOUND;
    if (ev->kind != CP_KIND_QUEUE_ENTER)
        ev->agent = worker_sid;
    else
        ev->agent_name = NULL; /* no worker is involved yet */
    switch (ev->kind) {
    case CP_KIND_AGENT_CONNECT:
        ev->wait = (int32_t)age;
        break;
    case CP_KIND_QUEUE_LEAVE:
        /* The task's time to live ran out, or the caller hung up (Flex and
         * <Enqueue> cancel the task when the call ends). */
        ev->qout = contains_ci(cancel_reason, "ttl") || contains_ci(cancel_reason, "timeout")
                       ? CP_QOUT_TIMEOUT
                       : CP_QOUT_ABANDONED;
        if (ev->qout == CP_QOUT_ABANDONED) ev->side = CP_SIDE_CALLER;
        ev->wait = (int32_t)age;
        if (cancel_reason) ev->native = cancel_reason;
        break;
    default:
        break;
    }
    cp_twilio_add_x(ev, "event_type", type);
    cp_twilio_add_x(ev, "reservation", reservation);
    cp_twilio_add_x(ev, "task_queue_sid", queue_sid);
    cp_twilio_add_x(ev, "completed_reason", complete_reason);
    cp_twilio_add_x(ev, "workflow", workflow);
    cp_twilio_add_x(ev, "workspace", workspace);
    ids[0] = task;
    ids[1] = reservation;
    ids[2] = type;
    return 1;
}

static int taskrouter_parse(void *state, const struct cp_source_ctx *ctx, const char *rec,
                            size_t len, struct cp_emit *out)
{
    (void)state;
    static _Thread_local struct cp_twilio_req t;
    struct cp_event ev;
    int rc = cp_twilio_begin(&t, ctx, SRC_NAME, rec, &len, &ev, out);
    if (rc <= 0) return rc;
    const char *ids[3];
    if ((rc = map(&t, &ev, ids)) <= 0) {
        if (rc < 0) out->reject(out, 0, rec, len, t.reason);
        return rc;
    }
    /* A retried callback names the same task, reservation, type and time. */
    if ((rc = cp_twilio_finish(&t, &ev, ids, 3, rec, len, out)) < 0) return rc;
    /*
     * The task left the agent (task.wrapup: the call hung up, the worker wraps up) or was
     * canceled: for this source that is the end of the call.  Without it a call known only
     * from TaskRouter would never end downstream (it shares no `pbx` with a twilio-voice
     * source, whose call_end would otherwise close it).
     */
    if (ev.kind != CP_KIND_AGENT_COMPLETE && ev.kind != CP_KIND_QUEUE_LEAVE) return rc;
    struct cp_event end = ev;
    end.kind = CP_KIND_CALL_END;
    end.event_id = NULL;
    end.agent = NULL;
    end.agent_name = NULL;
    end.queue = NULL;
    end.wait = -1;
    end.qout = CP_QOUT_UNKNOWN;
    if (ev.kind == CP_KIND_AGENT_COMPLETE) {
        end.disp = CP_DISP_ANSWERED;
    } else if (ev.qout == CP_QOUT_TIMEOUT) {
        end.disp = CP_DISP_NO_ANSWER;
        end.side = CP_SIDE_SYSTEM;
    } else {
        end.disp = CP_DISP_CANCELED;
        end.side = CP_SIDE_CALLER;
    }
    int rc2 = cp_twilio_finish(&t, &end, ids, 3, rec, len, out);
    return rc2 < 0 ? rc2 : rc + rc2;
}

const struct cp_source_format cp_source_twilio_taskrouter = {
    .name = SRC_NAME,
    .framing = CP_FRAME_BODY,
    .state_create = NULL,
    .state_destroy = NULL,
    .parse = taskrouter_parse,
};
