/* amazon_connect.c - the amazon-connect-ctr source format: contact trace records via Firehose. */
#include "amazon_connect.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cp_event_id.h"
#include "cp_time.h"
#include "cp_utf8.h"

/*
 * The record is one HTTP body.  Usually a Kinesis Data Firehose request
 * (pbx-formats.md section 5): {"requestId","timestamp","records":[{"data":
 * base64}]} where each record's data holds one contact trace record (CTR) or
 * several, concatenated or newline-delimited.  Each Firehose record is one
 * element (index = its position in "records") and is accepted or rejected as
 * a whole: its CTRs are all mapped before any event is emitted.  A bare CTR
 * object, or an array of CTR objects, is accepted too (index = array position).
 *
 * One CTR (one contact segment) becomes a cdr event plus the queue and agent
 * events derived from its timestamps (section 9).  jansson does the lexing:
 * CTRs are nested and a few per request, so convenience wins over speed here.
 */

#define SRC_NAME            "amazon-connect-ctr"
#define MAX_CTRS_PER_RECORD 256
#define EVENTS_PER_CTR      6

struct ac {
    const struct cp_source_ctx *ctx;
    struct cp_emit *out;
    char reason[96];
    int code;
    struct cp_event *evs; /* events of the current element, emitted once it all mapped */
    size_t nev, cap;
};

static int bad(struct ac *a, int code, const char *what, const char *field)
{
    if (field)
        snprintf(a->reason, sizeof a->reason, "%s: %s", what, field);
    else
        snprintf(a->reason, sizeof a->reason, "%s", what);
    a->code = code;
    return code;
}

static int oom(struct ac *a)
{
    return bad(a, CP_ERR_NOMEM, "out of memory", NULL);
}

/* ---- typed field access; absent and null are the same ----------------------------- */

static json_t *member(json_t *o, const char *key)
{
    json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    return json_is_null(v) ? NULL : v;
}

/* A nested object ("Queue", "Agent", ...), or NULL; anything else is a type error. */
static int get_obj(struct ac *a, json_t *o, const char *key, json_t **out)
{
    json_t *v = member(o, key);
    *out = NULL;
    if (!v) return 0;
    if (!json_is_object(v)) return bad(a, CP_ERR_TYPE, "wrong type", key);
    *out = v;
    return 0;
}

/* A string field copied into the arena; "" is absent. */
static int get_str(struct ac *a, json_t *o, const char *key, const char *name, const char **out)
{
    json_t *v = member(o, key);
    *out = NULL;
    if (!v) return 0;
    if (!json_is_string(v)) return bad(a, CP_ERR_TYPE, "wrong type", name);
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n == 0) return 0;
    if (n > CP_EVENT_STR_MAX) return bad(a, CP_ERR_TOOBIG, "too long", name);
    /* jansson refuses invalid UTF-8 and \u0000 unless asked; checked again
     * because the event invariants are ours. */
    if (memchr(s, '\0', n) || !cp_utf8_valid(s, n))
        return bad(a, CP_ERR_UTF8, "invalid utf-8", name);
    if (!(*out = cp_arena_strndup(a->ctx->arena, s, n))) return oom(a);
    return 0;
}

/* An ISO-8601 UTC timestamp ("2024-05-01T10:00:00Z", fractions allowed); absent = 0. */
static int get_time(struct ac *a, json_t *o, const char *key, const char *name, int64_t *out)
{
    json_t *v = member(o, key);
    *out = 0;
    if (!v) return 0;
    if (!json_is_string(v)) return bad(a, CP_ERR_TYPE, "wrong type", name);
    int64_t us;
    int rc = cp_time_parse_iso(json_string_value(v), json_string_length(v), NULL, &us);
    if (rc == 0 && (us <= 0 || us > CP_EVENT_TIME_MAX)) rc = CP_ERR_RANGE;
    if (rc < 0) return bad(a, rc, "bad time", name);
    *out = us;
    return 0;
}

/* Whole seconds (-1 absent).  CTR durations are integers; a fraction is rounded. */
static int get_dur(struct ac *a, json_t *o, const char *key, const char *name, int32_t *out)
{
    json_t *v = member(o, key);
    *out = -1;
    if (!v) return 0;
    double d;
    if (json_is_integer(v))
        d = (double)json_integer_value(v);
    else if (json_is_real(v))
        d = round(json_real_value(v));
    else
        return bad(a, CP_ERR_TYPE, "wrong type", name);
    if (!(d >= 0 && d <= INT32_MAX)) return bad(a, CP_ERR_RANGE, "out of range", name);
    *out = (int32_t)d;
    return 0;
}

/* A number kept as text for x. */
static int get_num_text(struct ac *a, json_t *o, const char *key, const char *name,
                        const char **out)
{
    int32_t v;
    int rc = get_dur(a, o, key, name, &v);
    *out = NULL;
    if (rc < 0 || v < 0) return rc;
    char buf[16];
    snprintf(buf, sizeof buf, "%d", v);
    if (!(*out = cp_arena_strdup(a->ctx->arena, buf))) return oom(a);
    return 0;
}

static bool str_eq(const char *s, const char *lit)
{
    return s && strcmp(s, lit) == 0;
}

static void add_x(struct cp_event *ev, const char *key, const char *val)
{
    if (val && ev->nx < CP_EVENT_X_MAX) ev->x[ev->nx++] = (struct cp_kv){key, val};
}

/* ---- one CTR ---------------------------------------------------------------------------- */

struct ctr {
    const char *contact, *initial, *previous, *next, *channel, *method, *reason, *last_update;
    const char *customer, *system, *transferred_to, *queue, *agent, *routing_profile;
    const char *holds, *longest_hold, *attempts, *system_connect_text;
    int64_t t_init, t_system, t_disc, t_last, t_transfer, t_enq, t_deq, t_agent, t_acw_start,
        t_acw_end;
    int32_t wait, talk, hold, acw;
};

static int read_ctr(struct ac *a, json_t *j, struct ctr *c)
{
    json_t *q, *ag, *ep, *rp;
    int rc;
    memset(c, 0, sizeof *c);
    if (!json_is_object(j)) return bad(a, CP_ERR_TYPE, "not an object", NULL);
    if ((rc = get_str(a, j, "ContactId", "ContactId", &c->contact)) < 0 ||
        (rc = get_str(a, j, "InitialContactId", "InitialContactId", &c->initial)) < 0 ||
        (rc = get_str(a, j, "PreviousContactId", "PreviousContactId", &c->previous)) < 0 ||
        (rc = get_str(a, j, "NextContactId", "NextContactId", &c->next)) < 0 ||
        (rc = get_str(a, j, "Channel", "Channel", &c->channel)) < 0 ||
        (rc = get_str(a, j, "InitiationMethod", "InitiationMethod", &c->method)) < 0 ||
        (rc = get_str(a, j, "DisconnectReason", "DisconnectReason", &c->reason)) < 0 ||
        (rc = get_str(a, j, "LastUpdateTimestamp", "LastUpdateTimestamp", &c->last_update)) < 0 ||
        (rc = get_str(a, j, "ConnectedToSystemTimestamp", "ConnectedToSystemTimestamp",
                      &c->system_connect_text)) < 0 ||
        (rc = get_time(a, j, "InitiationTimestamp", "InitiationTimestamp", &c->t_init)) < 0 ||
        (rc = get_time(a, j, "ConnectedToSystemTimestamp", "ConnectedToSystemTimestamp",
                       &c->t_system)) < 0 ||
        (rc = get_time(a, j, "DisconnectTimestamp", "DisconnectTimestamp", &c->t_disc)) < 0 ||
        (rc = get_time(a, j, "LastUpdateTimestamp", "LastUpdateTimestamp", &c->t_last)) < 0 ||
        (rc = get_time(a, j, "TransferCompletedTimestamp", "TransferCompletedTimestamp",
                       &c->t_transfer)) < 0 ||
        (rc = get_num_text(a, j, "AgentConnectionAttempts", "AgentConnectionAttempts",
                           &c->attempts)) < 0)
        return rc;
    if (!c->contact) return bad(a, CP_ERR_MISSING, "missing", "ContactId");
    if ((rc = get_obj(a, j, "CustomerEndpoint", &ep)) < 0 ||
        (rc = get_str(a, ep, "Address", "CustomerEndpoint.Address", &c->customer)) < 0 ||
        (rc = get_obj(a, j, "SystemEndpoint", &ep)) < 0 ||
        (rc = get_str(a, ep, "Address", "SystemEndpoint.Address", &c->system)) < 0 ||
        (rc = get_obj(a, j, "TransferredToEndpoint", &ep)) < 0 ||
        (rc = get_str(a, ep, "Address", "TransferredToEndpoint.Address", &c->transferred_to)) < 0)
        return rc;
    if ((rc = get_obj(a, j, "Queue", &q)) < 0 ||
        (rc = get_str(a, q, "Name", "Queue.Name", &c->queue)) < 0 ||
        (rc = get_time(a, q, "EnqueueTimestamp", "Queue.EnqueueTimestamp", &c->t_enq)) < 0 ||
        (rc = get_time(a, q, "DequeueTimestamp", "Queue.DequeueTimestamp", &c->t_deq)) < 0 ||
        (rc = get_dur(a, q, "Duration", "Queue.Duration", &c->wait)) < 0)
        return rc;
    if ((rc = get_obj(a, j, "Agent", &ag)) < 0 ||
        (rc = get_str(a, ag, "Username", "Agent.Username", &c->agent)) < 0 ||
        (rc = get_time(a, ag, "ConnectedToAgentTimestamp", "Agent.ConnectedToAgentTimestamp",
                       &c->t_agent)) < 0 ||
        (rc = get_time(a, ag, "AfterContactWorkStartTimestamp",
                       "Agent.AfterContactWorkStartTimestamp", &c->t_acw_start)) < 0 ||
        (rc = get_time(a, ag, "AfterContactWorkEndTimestamp", "Agent.AfterContactWorkEndTimestamp",
                       &c->t_acw_end)) < 0 ||
        (rc = get_dur(a, ag, "AgentInteractionDuration", "Agent.AgentInteractionDuration",
                      &c->talk)) < 0 ||
        (rc = get_dur(a, ag, "CustomerHoldDuration", "Agent.CustomerHoldDuration", &c->hold)) < 0 ||
        (rc = get_dur(a, ag, "AfterContactWorkDuration", "Agent.AfterContactWorkDuration",
                      &c->acw)) < 0 ||
        (rc = get_num_text(a, ag, "NumberOfHolds", "Agent.NumberOfHolds", &c->holds)) < 0 ||
        (rc = get_num_text(a, ag, "LongestHoldDuration", "Agent.LongestHoldDuration",
                           &c->longest_hold)) < 0 ||
        (rc = get_obj(a, ag, "RoutingProfile", &rp)) < 0 ||
        (rc = get_str(a, rp, "Name", "Agent.RoutingProfile.Name", &c->routing_profile)) < 0)
        return rc;
    if (c->wait < 0 && c->t_enq && c->t_deq >= c->t_enq)
        c->wait = (int32_t)((c->t_deq - c->t_enq) / 1000000);
    return 0;
}

static struct cp_event *new_event(struct ac *a, const struct ctr *c, enum cp_kind kind, int64_t ts)
{
    if (a->nev == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        struct cp_event *n = realloc(a->evs, cap * sizeof *n);
        if (!n) return NULL;
        a->evs = n;
        a->cap = cap;
    }
    struct cp_event *ev = &a->evs[a->nev++];
    cp_event_init(ev);
    ev->org = a->ctx->org;
    ev->pbx = a->ctx->pbx;
    ev->src = SRC_NAME;
    ev->recv = a->ctx->recv_us;
    ev->call = c->initial ? c->initial : c->contact;
    ev->leg = c->contact;
    ev->parent = c->previous;
    ev->kind = kind;
    ev->ts = ts;
    return ev;
}

/* Identity of a derived event: the contact (and queue), plus the kind and ts that
 * cp_event_derive_id adds; a re-sent or updated CTR names the same facts again. */
static int finish(struct ac *a, struct cp_event *ev, const char *const *ids, size_t n)
{
    int rc = cp_event_derive_id(ev, a->ctx->arena, ids, n);
    if (rc < 0) return rc == CP_ERR_NOMEM ? oom(a) : bad(a, rc, "could not derive id", NULL);
    const char *why = NULL;
    if ((rc = cp_event_validate(ev, &why)) < 0) return bad(a, rc, "invalid event", why);
    return 0;
}

static int map_ctr(struct ac *a, json_t *j)
{
    struct ctr c;
    int rc = read_ctr(a, j, &c);
    if (rc < 0) return rc;
    /* Chat, task and email contacts are not calls. */
    if (c.channel && !str_eq(c.channel, "VOICE")) return 0;
    int64_t ts = c.t_disc ? c.t_disc : c.t_last;
    if (!ts) return bad(a, CP_ERR_MISSING, "missing", "DisconnectTimestamp");

    enum cp_dir dir = CP_DIR_UNKNOWN;
    if (str_eq(c.method, "INBOUND"))
        dir = CP_DIR_INBOUND;
    else if (str_eq(c.method, "OUTBOUND") || str_eq(c.method, "CALLBACK"))
        dir = CP_DIR_OUTBOUND;
    bool out_dir = dir == CP_DIR_OUTBOUND;
    const char *from = out_dir ? c.system : c.customer, *to = out_dir ? c.customer : c.system;

    bool agent = c.t_agent != 0, queued = c.queue && c.t_enq != 0;
    bool transferred = c.transferred_to || c.t_transfer;
    const char *r = c.reason;
    enum cp_qout qout = CP_QOUT_UNKNOWN;
    if (queued) {
        if (agent)
            qout = CP_QOUT_ANSWERED;
        else if (transferred)
            qout = CP_QOUT_TRANSFERRED;
        else if (str_eq(r, "CUSTOMER_DISCONNECT"))
            qout = CP_QOUT_ABANDONED; /* the documented abandon rule */
        else if (str_eq(r, "CONTACT_FLOW_DISCONNECT") || str_eq(r, "EXPIRED"))
            qout = CP_QOUT_TIMEOUT; /* the flow took the caller out of the queue */
    }
    enum cp_disp disp = CP_DISP_UNKNOWN;
    if (str_eq(r, "TELECOM_PROBLEM"))
        disp = CP_DISP_FAILED;
    else if (agent || c.t_system)
        disp = CP_DISP_ANSWERED;
    else if (str_eq(r, "CUSTOMER_DISCONNECT"))
        disp = CP_DISP_CANCELED;
    /* "caller" is the customer, whichever side dialled. */
    enum cp_side side = CP_SIDE_UNKNOWN;
    if (str_eq(r, "CUSTOMER_DISCONNECT"))
        side = CP_SIDE_CALLER;
    else if (str_eq(r, "AGENT_DISCONNECT") || str_eq(r, "BARGED"))
        side = CP_SIDE_AGENT;
    else if (str_eq(r, "CONTACT_FLOW_DISCONNECT") || str_eq(r, "TELECOM_PROBLEM") ||
             str_eq(r, "EXPIRED") || str_eq(r, "API"))
        side = CP_SIDE_SYSTEM;

    const char *id_contact[] = {c.contact};
    const char *id_queue[] = {c.contact, c.queue};
    struct cp_event *ev;
#define NEW(kind, t)                                                                               \
    do {                                                                                           \
        if (!(ev = new_event(a, &c, kind, t))) return oom(a);                                      \
        ev->dir = dir;                                                                             \
        ev->from = from;                                                                           \
        ev->to = to;                                                                               \
    } while (0)

    if (queued) {
        NEW(CP_KIND_QUEUE_ENTER, c.t_enq);
        ev->queue = c.queue;
        if ((rc = finish(a, ev, id_queue, 2)) < 0) return rc;
        /* Left the queue: at the dequeue, or at the disconnect when the caller
         * never left it any other way. */
        int64_t t_leave = c.t_deq ? c.t_deq : (!agent ? c.t_disc : 0);
        if (t_leave) {
            NEW(CP_KIND_QUEUE_LEAVE, t_leave);
            ev->queue = c.queue;
            ev->qout = qout;
            ev->wait = c.wait;
            if (qout == CP_QOUT_ABANDONED) ev->side = CP_SIDE_CALLER;
            /* How the contact ended says why it left unanswered; after an answer it
             * says nothing about the queue. */
            if (!agent) ev->native = c.reason;
            if ((rc = finish(a, ev, id_queue, 2)) < 0) return rc;
        }
    }
    if (agent) {
        NEW(CP_KIND_AGENT_CONNECT, c.t_agent);
        ev->queue = c.queue;
        ev->agent = c.agent;
        ev->wait = c.wait;
        if ((rc = finish(a, ev, id_contact, 1)) < 0) return rc;
        /* Talk ends where after-contact work starts (or at the disconnect). */
        int64_t t_done = c.t_acw_start ? c.t_acw_start : c.t_disc;
        if (t_done) {
            NEW(CP_KIND_AGENT_COMPLETE, t_done);
            ev->queue = c.queue;
            ev->agent = c.agent;
            ev->talk = c.talk;
            ev->hold = c.hold;
            ev->side = side;
            if ((rc = finish(a, ev, id_contact, 1)) < 0) return rc;
        }
    }

    NEW(CP_KIND_CDR, ts);
    ev->start = c.t_init;
    ev->answer = c.t_agent;
    ev->end = c.t_disc;
    ev->final_to = c.transferred_to;
    /* The queue visit travels in the queue events above; naming it here too
     * would count it twice (README). */
    ev->agent = c.agent;
    ev->disp = disp;
    ev->qout = qout;
    ev->side = side;
    ev->native = c.reason;
    ev->wait = c.wait;
    ev->talk = c.talk;
    ev->hold = c.hold;
    ev->acw = c.acw;
    add_x(ev, "queue", c.queue);
    add_x(ev, "initiation_method", c.method);
    add_x(ev, "next_contact", c.next);
    add_x(ev, "system_connect", c.system_connect_text);
    add_x(ev, "holds", c.holds);
    add_x(ev, "longest_hold", c.longest_hold);
    add_x(ev, "agent_attempts", c.attempts);
    add_x(ev, "routing_profile", c.routing_profile);
    add_x(ev, "last_update", c.last_update);
    /* A CTR re-sent unchanged dedupes; one re-sent with more data (a later
     * LastUpdateTimestamp) is a newer summary of the same contact. */
    const char *id_cdr[] = {c.contact, c.last_update};
    if ((rc = finish(a, ev, id_cdr, 2)) < 0) return rc;
    /* The end of after-contact work comes after the summary: it is what completes the call
     * downstream, and an updated CTR's new summary must reach the call while it is still
     * open (a summary after it would open the finished call again: 06_duplicates_and_update). */
    if (agent && c.t_acw_end) {
        NEW(CP_KIND_WRAPUP_END, c.t_acw_end);
        ev->queue = c.queue;
        ev->agent = c.agent;
        ev->acw = c.acw;
        if ((rc = finish(a, ev, id_contact, 1)) < 0) return rc;
    }
#undef NEW
    return 0;
}

/* ---- one element: base64 data with CTRs, or a CTR object ---------------------------------- */

static int b64val(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    return -1;
}

/* Standard base64; padding optional, nothing after it, no other characters. */
static int b64_decode(const char *s, size_t n, unsigned char *out, size_t *outlen)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0, i = 0;
    for (; i < n && s[i] != '='; i++) {
        int v = b64val((unsigned char)s[i]);
        if (v < 0) return CP_ERR_PARSE;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    size_t pad = 0;
    for (; i < n && s[i] == '='; i++)
        pad++;
    if (i != n || pad > 2 || bits >= 6 || (pad && ((n % 4) != 0))) return CP_ERR_PARSE;
    *outlen = o;
    return 0;
}

static bool is_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* The CTRs in one decoded Firehose record: one or several JSON objects, side by side. */
static int map_data(struct ac *a, const char *d, size_t n)
{
    size_t off = 0;
    int count = 0;
    for (;;) {
        while (off < n && is_ws(d[off]))
            off++;
        if (off == n) break;
        if (d[off] != '{') return bad(a, CP_ERR_PARSE, "malformed ctr json", NULL);
        if (++count > MAX_CTRS_PER_RECORD)
            return bad(a, CP_ERR_TOOBIG, "too many ctrs in one record", NULL);
        json_error_t err;
        json_t *j =
            json_loadb(d + off, n - off, JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES, &err);
        if (!j) return bad(a, CP_ERR_PARSE, "malformed ctr json", NULL);
        size_t used = (size_t)err.position;
        int rc = map_ctr(a, j);
        json_decref(j);
        if (rc < 0) return rc;
        if (used == 0 || used > n - off) return bad(a, CP_ERR_PARSE, "malformed ctr json", NULL);
        off += used;
    }
    if (count == 0) return bad(a, CP_ERR_MISSING, "empty record", NULL);
    return 0;
}

static int map_firehose_record(struct ac *a, json_t *r)
{
    json_t *d = json_is_object(r) ? json_object_get(r, "data") : NULL;
    if (!json_is_object(r)) return bad(a, CP_ERR_TYPE, "not an object", NULL);
    if (!d || json_is_null(d)) return bad(a, CP_ERR_MISSING, "missing", "data");
    if (!json_is_string(d)) return bad(a, CP_ERR_TYPE, "wrong type", "data");
    size_t n = json_string_length(d);
    unsigned char *buf = malloc(n / 4 * 3 + 3);
    if (!buf) return oom(a);
    size_t len = 0;
    int rc = b64_decode(json_string_value(d), n, buf, &len);
    if (rc < 0)
        rc = bad(a, CP_ERR_PARSE, "bad base64", "data");
    else
        rc = map_data(a, (const char *)buf, len);
    free(buf);
    return rc;
}

/*
 * Emits the mapped events of one element, or rejects it with raw bytes that
 * stand for the element: a Firehose record's base64 "data" text, an array
 * element re-serialised, or the whole body when there is nothing smaller.
 */
static int settle(struct ac *a, int rc, uint32_t index, json_t *elem, const char *rec, size_t len,
                  int *emitted, int *rejected, int *first_code)
{
    if (rc < 0) {
        json_t *d = json_is_object(elem) ? json_object_get(elem, "data") : NULL;
        char *dump = NULL;
        if (json_is_string(d)) {
            rec = json_string_value(d);
            len = json_string_length(d);
        } else if (elem && (dump = json_dumps(elem, JSON_COMPACT | JSON_ENCODE_ANY))) {
            rec = dump;
            len = strlen(dump);
        }
        a->out->reject(a->out, index, rec, len, a->reason);
        free(dump);
        if ((*rejected)++ == 0) *first_code = rc;
        a->nev = 0;
        return rc == CP_ERR_NOMEM ? rc : 0;
    }
    for (size_t i = 0; i < a->nev; i++) {
        int e = a->out->event(a->out, &a->evs[i]);
        if (e < 0) {
            a->nev = 0;
            return e;
        }
        (*emitted)++;
    }
    a->nev = 0;
    return 0;
}

static int connect_parse(void *state, const struct cp_source_ctx *ctx, const char *rec, size_t len,
                         struct cp_emit *out)
{
    (void)state;
    struct ac a = {.ctx = ctx, .out = out};
    int emitted = 0, rejected = 0, first_code = 0, rc = 0;

    size_t s = 0;
    while (s < len && is_ws(rec[s]))
        s++;
    if (s == len) return 0;
    json_error_t err;
    json_t *root = json_loadb(rec, len, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        out->reject(out, 0, rec, len, "malformed json");
        return CP_ERR_PARSE;
    }
    json_t *records = json_is_object(root) ? json_object_get(root, "records") : NULL;
    if (records) {
        if (!json_is_array(records)) {
            bad(&a, CP_ERR_TYPE, "wrong type", "records");
            rc = settle(&a, CP_ERR_TYPE, 0, NULL, rec, len, &emitted, &rejected, &first_code);
        } else {
            for (size_t i = 0; i < json_array_size(records) && rc == 0; i++) {
                json_t *el = json_array_get(records, i);
                int r = map_firehose_record(&a, el);
                rc = settle(&a, r, (uint32_t)i, el, rec, len, &emitted, &rejected, &first_code);
            }
        }
    } else if (json_is_array(root)) {
        for (size_t i = 0; i < json_array_size(root) && rc == 0; i++) {
            json_t *el = json_array_get(root, i);
            int r = map_ctr(&a, el);
            rc = settle(&a, r, (uint32_t)i, el, rec, len, &emitted, &rejected, &first_code);
        }
    } else if (json_is_object(root) && json_object_get(root, "ContactId")) {
        int r = map_ctr(&a, root);
        rc = settle(&a, r, 0, NULL, rec, len, &emitted, &rejected, &first_code);
    } else {
        bad(&a, CP_ERR_PARSE, "not a firehose request or ctr", NULL);
        rc = settle(&a, CP_ERR_PARSE, 0, NULL, rec, len, &emitted, &rejected, &first_code);
    }
    json_decref(root);
    free(a.evs);
    if (rc < 0) return rc;
    if (emitted == 0 && rejected > 0) return first_code;
    return emitted;
}

const struct cp_source_format cp_source_amazon_connect_ctr = {
    .name = SRC_NAME,
    .framing = CP_FRAME_BODY,
    .state_create = NULL,
    .state_destroy = NULL,
    .parse = connect_parse,
};
