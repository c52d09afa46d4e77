/* cp_event.c - canonical event v1: initialisation, enum names and the validator every producer
 * runs. */
#include "cp_event.h"

#include <string.h>

#include "cp_event_priv.h"
#include "cp_utf8.h"

/* Index = enum value; NULL for the "unknown/none" value, which never travels. */
static const char *const kind_names[CP_KIND__COUNT] = {
    [CP_KIND_NONE] = NULL,
    [CP_KIND_CALL_START] = "call_start",
    [CP_KIND_RINGING] = "ringing",
    [CP_KIND_ANSWER] = "answer",
    [CP_KIND_QUEUE_ENTER] = "queue_enter",
    [CP_KIND_QUEUE_LEAVE] = "queue_leave",
    [CP_KIND_AGENT_OFFER] = "agent_offer",
    [CP_KIND_AGENT_NOANSWER] = "agent_noanswer",
    [CP_KIND_AGENT_CONNECT] = "agent_connect",
    [CP_KIND_HOLD] = "hold",
    [CP_KIND_UNHOLD] = "unhold",
    [CP_KIND_TRANSFER] = "transfer",
    [CP_KIND_AGENT_COMPLETE] = "agent_complete",
    [CP_KIND_WRAPUP_END] = "wrapup_end",
    [CP_KIND_CALL_END] = "call_end",
    [CP_KIND_CDR] = "cdr",
    [CP_KIND_AGENT_STATE] = "agent_state",
};

static const char *const dir_names[CP_DIR__COUNT] = {
    [CP_DIR_UNKNOWN] = NULL,
    [CP_DIR_INBOUND] = "inbound",
    [CP_DIR_OUTBOUND] = "outbound",
    [CP_DIR_INTERNAL] = "internal",
};

static const char *const disp_names[CP_DISP__COUNT] = {
    [CP_DISP_UNKNOWN] = NULL,          [CP_DISP_ANSWERED] = "answered",
    [CP_DISP_NO_ANSWER] = "no_answer", [CP_DISP_BUSY] = "busy",
    [CP_DISP_FAILED] = "failed",       [CP_DISP_CONGESTION] = "congestion",
    [CP_DISP_CANCELED] = "canceled",
};

static const char *const qout_names[CP_QOUT__COUNT] = {
    [CP_QOUT_UNKNOWN] = NULL,
    [CP_QOUT_ANSWERED] = "answered",
    [CP_QOUT_ABANDONED] = "abandoned",
    [CP_QOUT_TIMEOUT] = "timeout",
    [CP_QOUT_KEY_EXIT] = "key_exit",
    [CP_QOUT_FULL] = "full",
    [CP_QOUT_TRANSFERRED] = "transferred",
    [CP_QOUT_CALLBACK] = "callback",
    [CP_QOUT_VOICEMAIL] = "voicemail",
};

static const char *const side_names[CP_SIDE__COUNT] = {
    [CP_SIDE_UNKNOWN] = NULL,
    [CP_SIDE_CALLER] = "caller",
    [CP_SIDE_AGENT] = "agent",
    [CP_SIDE_SYSTEM] = "system",
};

void cp_event_init(struct cp_event *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->v = CP_EVENT_VERSION;
    ev->ring = ev->wait = ev->talk = ev->hold = ev->acw = -1;
}

static const char *name_of(const char *const *names, unsigned count, unsigned v)
{
    return v < count ? names[v] : NULL;
}

const char *cp_kind_name(enum cp_kind k)
{
    return name_of(kind_names, CP_KIND__COUNT, (unsigned)k);
}

const char *cp_dir_name(enum cp_dir d)
{
    return name_of(dir_names, CP_DIR__COUNT, (unsigned)d);
}

const char *cp_disp_name(enum cp_disp d)
{
    return name_of(disp_names, CP_DISP__COUNT, (unsigned)d);
}

const char *cp_qout_name(enum cp_qout q)
{
    return name_of(qout_names, CP_QOUT__COUNT, (unsigned)q);
}

const char *cp_side_name(enum cp_side s)
{
    return name_of(side_names, CP_SIDE__COUNT, (unsigned)s);
}

/* Linear scan: at most 16 short names, cheaper than any hash at this size. */
static int parse_name(const char *const *names, unsigned count, const char *s, size_t len,
                      unsigned *out)
{
    if (!s) return CP_ERR_PARSE;
    for (unsigned i = 1; i < count; i++) {
        const char *n = names[i];
        if (n && strlen(n) == len && memcmp(n, s, len) == 0) {
            *out = i;
            return 0;
        }
    }
    return CP_ERR_PARSE;
}

#define DEFINE_PARSE(fn, type, names, count)                                                       \
    int fn(const char *s, size_t len, type *out)                                                   \
    {                                                                                              \
        unsigned v;                                                                                \
        int rc = parse_name(names, count, s, len, &v);                                             \
        if (rc == 0) *out = (type)v;                                                               \
        return rc;                                                                                 \
    }

DEFINE_PARSE(cp_kind_parse, enum cp_kind, kind_names, CP_KIND__COUNT)
DEFINE_PARSE(cp_dir_parse, enum cp_dir, dir_names, CP_DIR__COUNT)
DEFINE_PARSE(cp_disp_parse, enum cp_disp, disp_names, CP_DISP__COUNT)
DEFINE_PARSE(cp_qout_parse, enum cp_qout, qout_names, CP_QOUT__COUNT)
DEFINE_PARSE(cp_side_parse, enum cp_side, side_names, CP_SIDE__COUNT)

/*
 * Length of the C string s when it is at most max bytes, else max + 1, in one
 * pass that also notes whether any byte is not ASCII, so that the UTF-8 check
 * runs only on strings that need it.  Event strings are short: a byte loop
 * beats strnlen + cp_utf8_valid, whose call and set-up costs dominate there.
 */
static size_t scan_cstr(const char *s, size_t max, bool *ascii)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned char any = 0;
    size_t i = 0;
    for (; i <= max; i++) {
        unsigned char c = u[i];
        if (c == 0)
            break;
        any |= c;
    }
    *ascii = any < 0x80;
    return i;
}

/* A present string must fit its bound and be valid UTF-8 (a C string has no NUL inside). */
static int check_str(const char *s, size_t max, const char *too_long, const char *bad_utf8,
                     const char **why)
{
    if (!s) return 0;
    bool ascii;
    size_t n = scan_cstr(s, max, &ascii);
    if (n > max) {
        *why = too_long;
        return CP_ERR_TOOBIG;
    }
    if (!ascii && !cp_utf8_valid(s, n)) {
        *why = bad_utf8;
        return CP_ERR_UTF8;
    }
    return 0;
}

static int check_required(const char *s, const char *missing, const char **why)
{
    if (!s || !*s) {
        *why = missing;
        return CP_ERR_MISSING;
    }
    return 0;
}

int cp_event_validate(const struct cp_event *ev, const char **why)
{
    return cp_event_validate_opt(ev, true, why);
}

int cp_event_validate_opt(const struct cp_event *ev, bool check_strings, const char **why)
{
    const char *dummy;
    int rc;
    if (!why) why = &dummy;
    *why = NULL;

    if (ev->v != CP_EVENT_VERSION) {
        *why = "unsupported schema version v";
        return CP_ERR_VERSION;
    }

#define REQ(f)                                                                                     \
    if ((rc = check_required(ev->f, "missing required field " #f, why)) < 0) return rc;
    REQ(event_id)
    REQ(org)
    REQ(pbx)
    REQ(src)
    REQ(call)
#undef REQ
    if (ev->kind == CP_KIND_NONE) {
        *why = "missing required field kind";
        return CP_ERR_MISSING;
    }
    if (ev->ts == 0) {
        *why = "missing required field ts";
        return CP_ERR_MISSING;
    }

#define STR(f, max)                                                                                \
    if (check_strings && (rc = check_str(ev->f, max, "field " #f " too long",                      \
                                         "field " #f " is not valid UTF-8", why)) < 0)             \
        return rc;
    STR(event_id, CP_EVENT_STR_MAX)
    STR(org, CP_EVENT_STR_MAX)
    STR(pbx, CP_EVENT_STR_MAX)
    STR(src, CP_EVENT_STR_MAX)
    STR(call, CP_EVENT_STR_MAX)
    STR(leg, CP_EVENT_STR_MAX)
    STR(parent, CP_EVENT_STR_MAX)
    STR(from, CP_EVENT_STR_MAX)
    STR(from_name, CP_EVENT_STR_MAX)
    STR(to, CP_EVENT_STR_MAX)
    STR(final_to, CP_EVENT_STR_MAX)
    STR(queue, CP_EVENT_STR_MAX)
    STR(agent, CP_EVENT_STR_MAX)
    STR(agent_name, CP_EVENT_STR_MAX)
    STR(wrapup, CP_EVENT_STR_MAX)
    STR(native, CP_EVENT_NATIVE_MAX)
#undef STR

    if ((unsigned)ev->kind >= CP_KIND__COUNT) {
        *why = "field kind out of range";
        return CP_ERR_RANGE;
    }
    if ((unsigned)ev->dir >= CP_DIR__COUNT) {
        *why = "field dir out of range";
        return CP_ERR_RANGE;
    }
    if ((unsigned)ev->disp >= CP_DISP__COUNT) {
        *why = "field disp out of range";
        return CP_ERR_RANGE;
    }
    if ((unsigned)ev->qout >= CP_QOUT__COUNT) {
        *why = "field qout out of range";
        return CP_ERR_RANGE;
    }
    if ((unsigned)ev->side >= CP_SIDE__COUNT) {
        *why = "field side out of range";
        return CP_ERR_RANGE;
    }

    /* Times: 0 = absent, else within 1970..9999 so that every consumer (ISO
     * rendering, PostgreSQL timestamptz) can represent them. */
#define TIME(f)                                                                                    \
    if (ev->f < 0 || ev->f > CP_EVENT_TIME_MAX) {                                                  \
        *why = "field " #f " out of range";                                                        \
        return CP_ERR_RANGE;                                                                       \
    }
    TIME(ts)
    TIME(recv)
    TIME(start)
    TIME(answer)
    TIME(end)
#undef TIME

#define DUR(f)                                                                                     \
    if (ev->f < -1) {                                                                              \
        *why = "field " #f " is below -1";                                                         \
        return CP_ERR_RANGE;                                                                       \
    }
    DUR(ring)
    DUR(wait)
    DUR(talk)
    DUR(hold)
    DUR(acw)
#undef DUR

    if (ev->q850 < 0 || ev->q850 > CP_EVENT_Q850_MAX) {
        *why = "field q850 out of range";
        return CP_ERR_RANGE;
    }

    if (ev->nx > CP_EVENT_X_MAX) {
        *why = "too many x pairs";
        return CP_ERR_TOOBIG;
    }
    for (uint32_t i = 0; i < ev->nx; i++) {
        const struct cp_kv *kv = &ev->x[i];
        if (!kv->key || !*kv->key || !kv->val) {
            *why = "x pair with empty key or missing value";
            return CP_ERR_MISSING;
        }
        if (!check_strings) continue; /* the decoder also rejected duplicate keys itself */
        if ((rc = check_str(kv->key, CP_EVENT_X_STR_MAX, "x key too long",
                            "x key is not valid UTF-8", why)) < 0)
            return rc;
        if ((rc = check_str(kv->val, CP_EVENT_X_STR_MAX, "x value too long",
                            "x value is not valid UTF-8", why)) < 0)
            return rc;
        for (uint32_t j = 0; j < i; j++) {
            if (strcmp(ev->x[j].key, kv->key) == 0) {
                *why = "duplicate x key";
                return CP_ERR_PARSE;
            }
        }
    }
    return 0;
}

static bool str_eq(const char *a, const char *b)
{
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

bool cp_event_equal(const struct cp_event *a, const struct cp_event *b)
{
    if (a->v != b->v || a->kind != b->kind || a->ts != b->ts || a->recv != b->recv ||
        a->start != b->start || a->answer != b->answer || a->end != b->end || a->dir != b->dir ||
        a->disp != b->disp || a->qout != b->qout || a->side != b->side || a->q850 != b->q850 ||
        a->ring != b->ring || a->wait != b->wait || a->talk != b->talk || a->hold != b->hold ||
        a->acw != b->acw || a->nx != b->nx)
        return false;
    const char *const sa[] = {
        a->event_id,  a->org, a->pbx,      a->src,   a->call,  a->leg,        a->parent, a->from,
        a->from_name, a->to,  a->final_to, a->queue, a->agent, a->agent_name, a->wrapup, a->native};
    const char *const sb[] = {
        b->event_id,  b->org, b->pbx,      b->src,   b->call,  b->leg,        b->parent, b->from,
        b->from_name, b->to,  b->final_to, b->queue, b->agent, b->agent_name, b->wrapup, b->native};
    for (unsigned i = 0; i < CP_ARRAY_LEN(sa); i++)
        if (!str_eq(sa[i], sb[i])) return false;
    uint32_t nx = a->nx < CP_EVENT_X_MAX ? a->nx : CP_EVENT_X_MAX;
    for (uint32_t i = 0; i < nx; i++)
        if (!str_eq(a->x[i].key, b->x[i].key) || !str_eq(a->x[i].val, b->x[i].val)) return false;
    return true;
}
