/* freeswitch_json_cdr.c - mod_json_cdr POST bodies (raw, cdr=<url-encoded>, cdr=<base64>) to cdr events. */
#include "freeswitch_json_cdr.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cp_event_id.h"
#include "../srcutil/fs_cause.h"
#include "../srcutil/fs_reader.h"
#include "../srcutil/srcutil.h"

/*
 * jansson, not yajl: one CDR per call leg is control-plane traffic
 * (libraries.md: jansson is the strict parser, fine off the hot path), a
 * FreeSWITCH CDR is a deep document we need only a dozen values of, and
 * jansson rejects invalid or overlong UTF-8, surrogates, \u0000 and integer
 * overflow by itself and bounds nesting (2048 levels).  Bodies are bounded by
 * the engine's max_body before they reach us.
 */

#define SRC_NAME "freeswitch-json-cdr"
#define US_PER_S INT64_C(1000000)
#define MAX_SECONDS (CP_EVENT_TIME_MAX / US_PER_S)

struct fj {
    const struct cp_source_ctx *ctx;
    struct cp_emit *out;
    const char *rec;
    size_t len;
    json_t *vars;
    json_t *cf_orig; /* caller_profile of the oldest callflow entry (the original call) */
    json_t *cf_cur;  /* caller_profile of the newest one */
    struct cp_fs_reader r; /* oom, the reject reason and its code */
};

/* ---- body decoding ------------------------------------------------------------ */

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * Finds the `cdr` field of a form body ("cdr=..." possibly among other
 * fields separated by '&').  FreeSWITCH escapes '&' inside the JSON, so the
 * field ends at the next '&'.
 */
static bool form_cdr(const char *s, size_t len, const char **v, size_t *vlen)
{
    size_t i = 0;
    while (i < len) {
        const char *amp = memchr(s + i, '&', len - i);
        size_t end = amp ? (size_t)(amp - s) : len;
        if (end - i >= 4 && memcmp(s + i, "cdr=", 4) == 0) {
            *v = s + i + 4;
            *vlen = end - i - 4;
            return true;
        }
        i = end + 1;
    }
    return false;
}

/*
 * The JSON text of a body, by its first bytes (the HTTP content type is not
 * passed to parsers, and FreeSWITCH's three encodings are told apart by
 * content alone):
 *   '{'                  raw JSON (encode=false, application/json)
 *   "cdr=" then '{' or "%7B"   url-encoded JSON (encode=true); '+' is a space
 *   "cdr=" then anything else  base64 JSON (encode=base64); a %XX escape
 *                        (%2B, %2F, %3D from a re-encoding proxy) is decoded
 *                        first, a literal '+' stays a base64 digit
 */
static const char *body_json(struct fj *p, const char *s, size_t len, size_t *out_len)
{
    if (len > 0 && s[0] == '{') {
        *out_len = len;
        return s;
    }
    const char *v;
    size_t vlen;
    if (len < 4 || memcmp(s, "cdr=", 4) != 0 || !form_cdr(s, len, &v, &vlen)) {
        cp_fs_reader_bad(&p->r, CP_ERR_PARSE, "unrecognised body", NULL);
        return NULL;
    }
    while (vlen > 0 && is_ws(v[vlen - 1]))
        vlen--;
    size_t dlen;
    if ((vlen > 0 && v[0] == '{') || (vlen >= 3 && v[0] == '%' && v[1] == '7' &&
                                      (v[2] == 'B' || v[2] == 'b'))) {
        char *d = cp_srcutil_urldecode(p->ctx->arena, v, vlen, true, &dlen);
        if (!d)
            p->r.oom = true;
        *out_len = dlen;
        return d;
    }
    char *e = cp_srcutil_urldecode(p->ctx->arena, v, vlen, false, &dlen);
    if (!e) {
        p->r.oom = true;
        return NULL;
    }
    char *d = cp_srcutil_base64(p->ctx->arena, e, dlen, out_len);
    if (!d) {
        cp_fs_reader_bad(&p->r, CP_ERR_PARSE, "bad base64", NULL);
        return NULL;
    }
    size_t i = 0;
    while (i < *out_len && is_ws(d[i]))
        i++;
    if (i == *out_len || d[i] != '{') {
        cp_fs_reader_bad(&p->r, CP_ERR_PARSE, "unrecognised body", NULL);
        return NULL;
    }
    return d;
}

/* ---- values ---------------------------------------------------------------------- */

/* A string member of `obj` as raw bytes (variables values are JSON strings;
 * an integer is tolerated, as its decimal text, for hand-made replays). */
static bool member(struct fj *p, json_t *obj, const char *key, const char **s, size_t *len)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (json_is_string(v)) {
        *s = json_string_value(v);
        *len = json_string_length(v);
        return *len > 0;
    }
    if (json_is_integer(v)) {
        char tmp[32];
        int n = snprintf(tmp, sizeof tmp, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        char *c = cp_arena_strndup(p->ctx->arena, tmp, (size_t)n);
        if (!c) {
            p->r.oom = true;
            return false;
        }
        *s = c;
        *len = (size_t)n;
        return true;
    }
    return false;
}

/* A `variables` value, %XX-decoded (encode-values defaults to true; with it
 * off a literal '%' followed by two hex digits would be decoded too, which
 * FreeSWITCH's own readers accept as well).  '+' is never a space here:
 * switch_url_encode escapes '+', so a literal '+' is a real one (E.164). */
static bool var(struct fj *p, const char *key, const char **s, size_t *len)
{
    const char *raw;
    size_t rlen;
    if (!member(p, p->vars, key, &raw, &rlen))
        return false;
    return cp_fs_reader_decode(&p->r, raw, rlen, s, len);
}

static const char *text(struct fj *p, const char *s, size_t len, size_t max)
{
    return cp_srcutil_text(p->ctx->arena, s, len, max, &p->r.oom);
}

/* First present variable among `keys` as display text. */
static const char *var_text(struct fj *p, const char *const *keys, size_t n)
{
    const char *s;
    size_t len;
    for (size_t i = 0; i < n; i++)
        if (var(p, keys[i], &s, &len))
            return text(p, s, len, CP_EVENT_STR_MAX);
    return NULL;
}

static const char *profile_text(struct fj *p, json_t *prof, const char *key)
{
    const char *s;
    size_t len;
    if (member(p, prof, key, &s, &len))
        return text(p, s, len, CP_EVENT_STR_MAX);
    return NULL;
}

static const char *id_var(struct fj *p, const char *key)
{
    const char *s;
    size_t len;
    if (!var(p, key, &s, &len))
        return NULL;
    return cp_fs_reader_id(&p->r, key, s, len);
}

/* Unsigned integer variable; absent → false with *out untouched, garbage → reject. */
static bool num_var(struct fj *p, const char *key, uint64_t max, uint64_t *out)
{
    const char *s;
    size_t len;
    return var(p, key, &s, &len) && cp_fs_reader_u64(&p->r, key, s, len, max, out);
}

/* A time from `<name>_uepoch` (µs, preferred: it keeps sub-second order),
 * else `<name>_epoch` (s); 0 = did not happen. */
static int64_t var_time(struct fj *p, const char *name)
{
    char key[64];
    uint64_t v;
    snprintf(key, sizeof key, "%s_uepoch", name);
    if (num_var(p, key, (uint64_t)CP_EVENT_TIME_MAX, &v))
        return (int64_t)v;
    snprintf(key, sizeof key, "%s_epoch", name);
    if (num_var(p, key, (uint64_t)MAX_SECONDS, &v))
        return (int64_t)v * US_PER_S;
    return 0;
}

/* A µs time from the newest callflow entry's `times` (fallback when the
 * variables carry no epochs). */
static int64_t callflow_time(struct fj *p, json_t *times, const char *key)
{
    const char *s;
    size_t len;
    uint64_t v;
    if (!member(p, times, key, &s, &len))
        return 0;
    if (!cp_srcutil_u64(s, len, (uint64_t)CP_EVENT_TIME_MAX, &v)) {
        cp_fs_reader_bad(&p->r, CP_ERR_RANGE, "bad number", key);
        return 0;
    }
    return (int64_t)v;
}

static int32_t dur_var(struct fj *p, const char *key)
{
    uint64_t v;
    if (num_var(p, key, INT32_MAX, &v))
        return (int32_t)v;
    return -1;
}

static void x_add(struct fj *p, struct cp_event *ev, const char *key, const char *var_name)
{
    const char *s;
    size_t len;
    if (ev->nx >= CP_EVENT_X_MAX || !var(p, var_name, &s, &len))
        return;
    const char *v = text(p, s, len, CP_EVENT_X_STR_MAX);
    if (v) {
        ev->x[ev->nx].key = key;
        ev->x[ev->nx].val = v;
        ev->nx++;
    }
}

/* ---- mapping -------------------------------------------------------------------- */

/* The callflow entries: an array in current FreeSWITCH (newest profile first,
 * as switch_ivr_generate_json_cdr walks caller_profile->next), or one
 * "callflow" object repeated per profile in older builds, of which jansson
 * keeps the last one (the oldest). */
static void find_callflow(struct fj *p, json_t *root, json_t **times)
{
    json_t *cf = json_object_get(root, "callflow");
    json_t *first = NULL, *last = NULL;
    if (json_is_array(cf) && json_array_size(cf) > 0) {
        first = json_array_get(cf, 0);
        last = json_array_get(cf, json_array_size(cf) - 1);
    } else if (json_is_object(cf)) {
        first = last = cf;
    }
    p->cf_cur = json_is_object(first) ? json_object_get(first, "caller_profile") : NULL;
    p->cf_orig = json_is_object(last) ? json_object_get(last, "caller_profile") : NULL;
    if (!json_is_object(p->cf_cur))
        p->cf_cur = NULL;
    if (!json_is_object(p->cf_orig))
        p->cf_orig = NULL;
    *times = json_is_object(first) ? json_object_get(first, "times") : NULL;
    if (!json_is_object(*times))
        *times = NULL;
}

/* The callee the current profile bridged to (originatee), if any. */
static const char *originatee_number(struct fj *p)
{
    json_t *o = p->cf_cur ? json_object_get(p->cf_cur, "originatee") : NULL;
    json_t *a = json_is_object(o) ? json_object_get(o, "originatee_caller_profiles") : NULL;
    json_t *prof = json_is_array(a) ? json_array_get(a, 0) : NULL;
    return json_is_object(prof) ? profile_text(p, prof, "destination_number") : NULL;
}

static uint64_t epoch_var(struct fj *p, const char *key)
{
    uint64_t v = 0;
    return num_var(p, key, (uint64_t)MAX_SECONDS, &v) ? v : 0;
}

/*
 * mod_callcenter's member variables on the caller's leg.  That leg was answered by the
 * dialplan (IVR, queue music) long before an agent took the call, so answer_epoch and billsec
 * say nothing about the agent: the queue's own epochs do.  The variables describe the
 * member's latest queue visit (a caller transferred to another queue keeps the stale
 * cc_queue_answered_epoch of the first one, older than the new cc_queue_joined_epoch).
 *   answered by an agent: answer = cc_queue_answered_epoch, wait = answered - joined,
 *                         talk = cc_queue_terminated_epoch - answered - hold, qout answered
 *   cancelled:            wait = cc_queue_canceled_epoch - joined, qout by cc_cancel_reason
 */
static void cc_member(struct fj *p, struct cp_event *ev)
{
    uint64_t joined = epoch_var(p, "cc_queue_joined_epoch");
    if (joined == 0)
        return;
    uint64_t answered = epoch_var(p, "cc_queue_answered_epoch");
    uint64_t canceled = epoch_var(p, "cc_queue_canceled_epoch");
    if (answered >= joined && answered - joined <= INT32_MAX) {
        ev->qout = CP_QOUT_ANSWERED;
        ev->wait = (int32_t)(answered - joined);
        ev->answer = (int64_t)answered * US_PER_S;
        uint64_t term = epoch_var(p, "cc_queue_terminated_epoch");
        if (term >= answered && term - answered <= INT32_MAX) {
            int32_t t = (int32_t)(term - answered);
            int32_t h = ev->hold > 0 ? ev->hold : 0;
            ev->talk = t > h ? t - h : 0;
        }
        return;
    }
    if (canceled >= joined && canceled - joined <= INT32_MAX) {
        /* No agent took this visit: a cc_agent left from an earlier visit is not its agent. */
        ev->agent = NULL;
        ev->wait = (int32_t)(canceled - joined);
        const char *r;
        size_t rl;
        ev->qout = CP_QOUT_UNKNOWN;
        if (var(p, "cc_cancel_reason", &r, &rl)) {
            if (cp_srcutil_eq(r, rl, "BREAK_OUT"))
                ev->qout = CP_QOUT_ABANDONED;
            else if (cp_srcutil_eq(r, rl, "TIMEOUT") || cp_srcutil_eq(r, rl, "NO_AGENT_TIMEOUT"))
                ev->qout = CP_QOUT_TIMEOUT;
            else if (cp_srcutil_eq(r, rl, "EXIT_WITH_KEY"))
                ev->qout = CP_QOUT_KEY_EXIT;
        }
    }
}

static int map_cdr(struct fj *p, json_t *root, struct cp_event *ev)
{
    p->vars = json_object_get(root, "variables");
    if (!json_is_object(p->vars)) {
        cp_fs_reader_bad(&p->r, CP_ERR_MISSING, "missing", "variables");
        return p->r.code;
    }
    json_t *times;
    find_callflow(p, root, &times);

    cp_event_init(ev);
    ev->org = p->ctx->org;
    ev->pbx = p->ctx->pbx;
    ev->src = SRC_NAME;
    ev->recv = p->ctx->recv_us;
    ev->kind = CP_KIND_CDR;

    const char *uuid = id_var(p, "uuid");
    if (!uuid && !p->r.reason && p->cf_cur) {
        const char *s;
        size_t len;
        if (member(p, p->cf_cur, "uuid", &s, &len))
            uuid = cp_fs_reader_id(&p->r, "uuid", s, len);
    }
    const char *call_uuid = id_var(p, "call_uuid");
    ev->leg = uuid;
    ev->call = call_uuid ? call_uuid : uuid;
    if (!ev->call)
        cp_fs_reader_bad(&p->r, CP_ERR_MISSING, "missing", "uuid");

    ev->start = var_time(p, "start");
    ev->answer = var_time(p, "answer");
    ev->end = var_time(p, "end");
    if (!ev->start && !ev->end && times) {
        ev->start = callflow_time(p, times, "created_time");
        ev->answer = callflow_time(p, times, "answered_time");
        ev->end = callflow_time(p, times, "hangup_time");
    }
    ev->ts = ev->end ? ev->end : ev->start;
    if (!ev->ts)
        cp_fs_reader_bad(&p->r, CP_ERR_MISSING, "missing", "end_epoch");

    const char *dir;
    size_t dlen;
    if (var(p, "direction", &dir, &dlen)) {
        if (cp_srcutil_eq(dir, dlen, "inbound"))
            ev->dir = CP_DIR_INBOUND;
        else if (cp_srcutil_eq(dir, dlen, "outbound"))
            ev->dir = CP_DIR_OUTBOUND;
    }

    static const char *const from_keys[] = {"caller_id_number", "effective_caller_id_number",
                                            "sip_from_user"};
    static const char *const name_keys[] = {"caller_id_name", "effective_caller_id_name"};
    static const char *const to_keys[] = {"destination_number", "dialed_extension",
                                          "sip_req_user"};
    ev->from = profile_text(p, p->cf_orig, "caller_id_number");
    if (!ev->from)
        ev->from = var_text(p, from_keys, 3);
    ev->from_name = profile_text(p, p->cf_orig, "caller_id_name");
    if (!ev->from_name)
        ev->from_name = var_text(p, name_keys, 2);
    ev->to = profile_text(p, p->cf_orig, "destination_number");
    if (!ev->to)
        ev->to = var_text(p, to_keys, 3);
    ev->final_to = originatee_number(p);

    static const char *const queue_keys[] = {"cc_queue"};
    static const char *const agent_keys[] = {"cc_agent"};
    ev->queue = var_text(p, queue_keys, 1);
    ev->agent = var_text(p, agent_keys, 1);

    /* billsec runs from the channel's answer to its end with hold time inside it; the
     * canonical talk leaves hold out (hold is its own duration). */
    ev->talk = dur_var(p, "billsec");
    ev->hold = dur_var(p, "hold_accum_seconds");
    if (ev->talk >= 0 && ev->hold > 0)
        ev->talk = ev->talk > ev->hold ? ev->talk - ev->hold : 0;
    cc_member(p, ev);

    const char *s;
    size_t len;
    const char *cause = NULL;
    size_t clen = 0;
    if (var(p, "hangup_cause", &cause, &clen))
        ev->native = text(p, cause, clen, CP_EVENT_NATIVE_MAX);
    /* A q850 outside 1..127 is not a Q.850 cause: fall back to the name. */
    uint64_t q850 = 0;
    if (var(p, "hangup_cause_q850", &s, &len) && cp_srcutil_u64(s, len, CP_EVENT_Q850_MAX, &q850))
        ev->q850 = (int32_t)q850;
    else if (cause)
        ev->q850 = cp_fs_cause_q850(cause, clen);
    ev->disp = cp_fs_cause_disp(cause, clen, ev->answer > 0);

    /* Audit extras: which switch, how the SIP side ended, the other leg, and
     * mod_callcenter's own verdict. */
    if (ev->nx < CP_EVENT_X_MAX && member(p, root, "switchname", &s, &len)) {
        ev->x[ev->nx].key = "switchname";
        if ((ev->x[ev->nx].val = text(p, s, len, CP_EVENT_X_STR_MAX)))
            ev->nx++;
    }
    if (ev->nx < CP_EVENT_X_MAX && member(p, root, "core-uuid", &s, &len)) {
        ev->x[ev->nx].key = "core_uuid";
        if ((ev->x[ev->nx].val = text(p, s, len, CP_EVENT_X_STR_MAX)))
            ev->nx++;
    }
    x_add(p, ev, "billmsec", "billmsec");
    x_add(p, ev, "sip_hangup_disposition", "sip_hangup_disposition");
    x_add(p, ev, "last_bridge_to", "last_bridge_to");
    x_add(p, ev, "originating_leg_uuid", "originating_leg_uuid");
    x_add(p, ev, "cc_cause", "cc_cause");
    x_add(p, ev, "cc_cancel_reason", "cc_cancel_reason");
    x_add(p, ev, "cc_side", "cc_side");

    if (p->r.oom)
        return CP_ERR_NOMEM;
    if (p->r.reason)
        return p->r.code;
    const char *ids[] = {ev->call, ev->leg};
    int rc = cp_event_derive_id(ev, p->ctx->arena, ids, 2);
    if (rc < 0)
        return rc;
    const char *why = NULL;
    if (cp_event_validate(ev, &why) != 0) {
        cp_fs_reader_bad(&p->r, CP_ERR_PARSE, "invalid event", NULL);
        return p->r.code;
    }
    return 0;
}

static int fj_parse(void *state, const struct cp_source_ctx *ctx, const char *rec, size_t len,
                    struct cp_emit *out)
{
    (void)state;
    struct fj p;
    memset(&p, 0, sizeof p);
    p.ctx = ctx;
    p.r.arena = ctx->arena;
    p.out = out;
    p.rec = rec;
    p.len = len;

    const char *s = rec;
    size_t n = len;
    while (n > 0 && is_ws(s[0])) {
        s++;
        n--;
    }
    while (n > 0 && is_ws(s[n - 1]))
        n--;
    if (n == 0)
        return 0;

    size_t jlen = 0;
    const char *js = body_json(&p, s, n, &jlen);
    if (p.r.oom) {
        out->reject(out, 0, rec, len, "out of memory");
        return CP_ERR_NOMEM;
    }
    if (!js) {
        out->reject(out, 0, rec, len, p.r.reason);
        return p.r.code;
    }
    json_error_t jerr;
    json_t *root = json_loadb(js, jlen, 0, &jerr);
    if (!root) {
        out->reject(out, 0, rec, len, "malformed json");
        return CP_ERR_PARSE;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        out->reject(out, 0, rec, len, "not a json object");
        return CP_ERR_TYPE;
    }
    struct cp_event ev;
    int rc = map_cdr(&p, root, &ev);
    json_decref(root);
    if (p.r.oom || (rc == CP_ERR_NOMEM && !p.r.reason)) {
        out->reject(out, 0, rec, len, "out of memory");
        return CP_ERR_NOMEM;
    }
    if (rc < 0 && p.r.reason) {
        out->reject(out, 0, rec, len, p.r.reason);
        return p.r.code;
    }
    if (rc < 0) {
        out->reject(out, 0, rec, len, "internal error");
        return rc;
    }
    rc = out->event(out, &ev);
    return rc < 0 ? rc : 1;
}

const struct cp_source_format cp_source_freeswitch_json_cdr = {
    .name = SRC_NAME,
    .framing = CP_FRAME_BODY,
    .state_create = NULL,
    .state_destroy = NULL,
    .parse = fj_parse,
    .frame = NULL,
};
