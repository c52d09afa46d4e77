/* json.c - the callpipe-json source format: canonical events as JSON lines, arrays or NDJSON. */
#include "json.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "cp_event_id.h"
#include "cp_time.h"
#include "cp_utf8.h"

/*
 * yajl's callback API does the lexing (libraries.md section 1: 1.15M ev/s
 * against jansson's 194k), and this file adds what yajl lacks: strict UTF-8
 * (yajl accepts overlong forms and surrogates), escaped-surrogate checks (yajl
 * turns a lone \ud800 into '?'), NUL rejection, exact integers with overflow
 * checks (we take numbers as text), a depth limit and duplicate-key rejection.
 *
 * Element boundaries come from yajl_get_bytes_consumed() called inside a
 * callback: in yajl 2.1.0 it is the offset just past the token being
 * reported, because the whole record is handed over in one yajl_parse() call.
 */

#define SRC_NAME "callpipe-json"
#define MAX_DEPTH 3 /* body array, event object, x map */
#define EVENT_ID_MAX 64

enum fclass {
    FC_STR,      /* string field, CP_EVENT_STR_MAX */
    FC_NATIVE,   /* string field, CP_EVENT_NATIVE_MAX */
    FC_EVENT_ID, /* visible ASCII, <= 64 bytes */
    FC_ORG,      /* must equal the configured org */
    FC_IGNORE,   /* pbx, src, recv: set by the collector, payload value ignored */
    FC_V,
    FC_KIND,
    FC_DIR,
    FC_DISP,
    FC_QOUT,
    FC_SIDE,
    FC_TIME,
    FC_DUR,
    FC_Q850,
    FC_X,
};

struct field {
    const char *name;
    unsigned char len;
    unsigned char cls;
    unsigned short off; /* offset in struct cp_event of the value, where there is one */
};

#define F(n, c, member) {n, sizeof(n) - 1, c, offsetof(struct cp_event, member)}
/* Sorted by name length; `bucket` below indexes the first field of each length. */
static const struct field fields[] = {
    F("v", FC_V, v),
    F("x", FC_X, x),
    F("ts", FC_TIME, ts),
    F("to", FC_STR, to),
    F("org", FC_ORG, org),
    F("pbx", FC_IGNORE, pbx),
    F("src", FC_IGNORE, src),
    F("leg", FC_STR, leg),
    F("end", FC_TIME, end),
    F("dir", FC_DIR, dir),
    F("acw", FC_DUR, acw),
    F("recv", FC_IGNORE, recv),
    F("call", FC_STR, call),
    F("kind", FC_KIND, kind),
    F("from", FC_STR, from),
    F("disp", FC_DISP, disp),
    F("qout", FC_QOUT, qout),
    F("side", FC_SIDE, side),
    F("q850", FC_Q850, q850),
    F("ring", FC_DUR, ring),
    F("wait", FC_DUR, wait),
    F("talk", FC_DUR, talk),
    F("hold", FC_DUR, hold),
    F("start", FC_TIME, start),
    F("queue", FC_STR, queue),
    F("agent", FC_STR, agent),
    F("parent", FC_STR, parent),
    F("answer", FC_TIME, answer),
    F("wrapup", FC_STR, wrapup),
    F("native", FC_NATIVE, native),
    F("event_id", FC_EVENT_ID, event_id),
    F("final_to", FC_STR, final_to),
    F("from_name", FC_STR, from_name),
    F("agent_name", FC_STR, agent_name),
};
#undef F
#define FX 1 /* index of "x" in fields[], for reasons about the x map */
/* bucket[n]..bucket[n+1] are the fields whose name has n bytes. */
static const unsigned char bucket[12] = {0, 0, 2, 4, 11, 23, 26, 30, 30, 32, 33, 34};

/* A constant length lets the compiler turn each memcmp into a few loads. */
#define LOOKUP_LEN(N)                                                                              \
    case N:                                                                                        \
        for (int i = bucket[N]; i < bucket[N + 1]; i++)                                            \
            if (memcmp(fields[i].name, k, N) == 0)                                                 \
                return i;                                                                          \
        return -1;

static int field_lookup(const unsigned char *k, size_t n)
{
    switch (n) {
        LOOKUP_LEN(1)
        LOOKUP_LEN(2)
        LOOKUP_LEN(3)
        LOOKUP_LEN(4)
        LOOKUP_LEN(5)
        LOOKUP_LEN(6)
        LOOKUP_LEN(8)
        LOOKUP_LEN(9)
        LOOKUP_LEN(10)
    default: return -1;
    }
}
#undef LOOKUP_LEN

enum vtype { V_NULL, V_BOOL, V_NUM, V_STR };

struct jp {
    const struct cp_source_ctx *ctx;
    struct cp_emit *out;
    yajl_handle h;
    const char *base; /* the bytes handed to yajl; offsets are relative to it */
    size_t len;
    size_t next_bs;   /* offset of the next backslash not yet checked, SIZE_MAX none */
    bool raw_utf8_ok; /* the whole record is valid UTF-8 */
    int elem_depth;   /* depth of an event object: 1 (object/lines) or 2 (array) */
    int depth;
    bool in_elem;
    bool deferred; /* single-value mode: emit only once yajl accepted the whole value */
    bool finished; /* the element ended and awaits emission */
    size_t elem_start;
    size_t last_off; /* end of the last token outside an element (scalar elements) */
    uint32_t index;
    int cur;      /* field of the current top-level key, -1 none */
    bool in_x;    /* inside the x map */
    uint64_t seen;
    struct cp_event ev;
    int code; /* first problem of the current element: code and reason */
    const char *reason;
    char reason_buf[64];
    int emitted, rejected, first_code;
    int abort_code; /* emitter failure or out of memory: stop everything */
    size_t sused;   /* bytes of scratch in use by yajl */
    _Alignas(16) unsigned char scratch[8192];
};

/* ---- problems ---------------------------------------------------------- */

/* Records the first problem of the element; later ones are ignored. */
static void bad(struct jp *p, int code, const char *what, int field)
{
    if (p->reason)
        return;
    p->code = code;
    if (field >= 0) {
        snprintf(p->reason_buf, sizeof p->reason_buf, "%s: %s", what, fields[field].name);
        p->reason = p->reason_buf;
    } else {
        p->reason = what;
    }
}

static void reject(struct jp *p, const char *raw, size_t len, int code, const char *reason)
{
    p->out->reject(p->out, p->index, raw, len, reason);
    if (p->rejected++ == 0)
        p->first_code = code;
    p->index++;
}

static int oom(struct jp *p)
{
    bad(p, CP_ERR_NOMEM, "out of memory", -1);
    p->abort_code = CP_ERR_NOMEM;
    return 0;
}

/* ---- checks on raw bytes and decoded strings ---------------------------- */

static unsigned hex4(const char *s)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

enum esc { ESC_OK = 0, ESC_SURROGATE, ESC_NUL };

/*
 * Checks the \u escapes of the raw text up to the end of the token yajl just
 * reported: a high surrogate must be followed by an escaped low one, a low
 * one must not stand alone, and \u0000 would put a NUL into a C string.
 * Only string tokens contain backslashes in text yajl has accepted, and every
 * string token passes through here, so a forward scan pairs every backslash
 * with its escape correctly.  p->next_bs caches the next backslash, so a
 * record without escapes costs one memchr in all.
 */
static enum esc escapes_check(struct jp *p)
{
    if (p->next_bs == SIZE_MAX)
        return ESC_OK;
    size_t end = yajl_get_bytes_consumed(p->h);
    enum esc r = ESC_OK;
    while (p->next_bs < end) {
        size_t i = p->next_bs;
        const char *b = p->base + i;
        size_t skip = 2;
        if (b[1] == 'u' && i + 6 <= end) {
            unsigned u = hex4(b + 2);
            skip = 6;
            if (u == 0) {
                r = r ? r : ESC_NUL;
            } else if (u >= 0xDC00 && u <= 0xDFFF) {
                r = r ? r : ESC_SURROGATE;
            } else if (u >= 0xD800 && u <= 0xDBFF) {
                if (i + 12 <= end && b[6] == '\\' && b[7] == 'u' && hex4(b + 8) >= 0xDC00 &&
                    hex4(b + 8) <= 0xDFFF)
                    skip = 12;
                else
                    r = r ? r : ESC_SURROGATE;
            }
        }
        const char *n = i + skip < p->len ? memchr(b + skip, '\\', p->len - i - skip) : NULL;
        p->next_bs = n ? (size_t)(n - p->base) : SIZE_MAX;
    }
    return r;
}

/*
 * Every decoded string or key of an element: valid UTF-8 without NUL.  When
 * the raw record is valid UTF-8 (the common case, checked once), decoded
 * strings can only go wrong through escapes, which escapes_check covers.
 */
static bool string_ok(struct jp *p, enum esc e, const unsigned char *s, size_t len, int field)
{
    if (e == ESC_SURROGATE) {
        bad(p, CP_ERR_UTF8, "invalid escape", field);
        return false;
    }
    if (e == ESC_NUL) {
        bad(p, CP_ERR_UTF8, "nul in string", field);
        return false;
    }
    if (p->raw_utf8_ok)
        return true;
    if (!cp_utf8_valid((const char *)s, len)) {
        bad(p, CP_ERR_UTF8, "invalid utf-8", field);
        return false;
    }
    return true;
}

/* Exact integer from the number's text: CP_ERR_TYPE for fractions/exponents,
 * CP_ERR_RANGE beyond int64. */
static int parse_i64(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < len && s[i] == '-') {
        neg = true;
        i++;
    }
    if (i == len)
        return CP_ERR_TYPE;
    uint64_t v = 0;
    const uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < len; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (d > 9)
            return CP_ERR_TYPE;
        if (v > (lim - d) / 10)
            return CP_ERR_RANGE;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* A number kept as text in x: an integer within int64, or a finite double. */
static bool x_number_ok(const char *s, size_t len)
{
    int64_t iv;
    int rc = parse_i64(s, len, &iv);
    if (rc == 0)
        return true;
    if (rc == CP_ERR_RANGE || len >= 64)
        return false;
    char tmp[64];
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    return isfinite(strtod(tmp, NULL));
}

static char *dup_str(struct jp *p, const void *s, size_t len)
{
    return cp_arena_strndup(p->ctx->arena, (const char *)s, len);
}

/* ---- values ------------------------------------------------------------- */

static int set_enum(struct jp *p, int f, const char *s, size_t len)
{
    int rc = CP_ERR_PARSE;
    struct cp_event *ev = &p->ev;
    switch (fields[f].cls) {
    case FC_KIND: rc = cp_kind_parse(s, len, &ev->kind); break;
    case FC_DIR: rc = cp_dir_parse(s, len, &ev->dir); break;
    case FC_DISP: rc = cp_disp_parse(s, len, &ev->disp); break;
    case FC_QOUT: rc = cp_qout_parse(s, len, &ev->qout); break;
    case FC_SIDE: rc = cp_side_parse(s, len, &ev->side); break;
    }
    return rc;
}

static bool event_id_ok(const char *s, size_t len)
{
    if (len == 0 || len > EVENT_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return false;
    return true;
}

/* One value of a top-level key. */
static int field_value(struct jp *p, enum vtype t, const char *s, size_t len)
{
    int f = p->cur;
    const struct field *fd = &fields[f];
    char *ev = (char *)&p->ev;
    int64_t iv = 0;
    int rc;

    if (fd->cls == FC_IGNORE)
        return 1;
    if (t == V_NULL)
        return 1; /* null = absent: the initialised value stays */
    switch (fd->cls) {
    case FC_STR:
    case FC_NATIVE: {
        if (t != V_STR)
            break;
        size_t max = fd->cls == FC_NATIVE ? CP_EVENT_NATIVE_MAX : CP_EVENT_STR_MAX;
        if (len > max) {
            bad(p, CP_ERR_TOOBIG, "too long", f);
            return 1;
        }
        if (len == 0)
            return 1; /* "" = absent, like null */
        char *c = dup_str(p, s, len);
        if (!c)
            return oom(p);
        *(const char **)(ev + fd->off) = c;
        return 1;
    }
    case FC_EVENT_ID: {
        if (t != V_STR)
            break;
        if (!event_id_ok(s, len)) {
            bad(p, CP_ERR_PARSE, "bad value", f);
            return 1;
        }
        char *c = dup_str(p, s, len);
        if (!c)
            return oom(p);
        p->ev.event_id = c;
        return 1;
    }
    case FC_ORG:
        if (t != V_STR)
            break;
        if (!p->ctx->org || strlen(p->ctx->org) != len || memcmp(p->ctx->org, s, len) != 0)
            bad(p, CP_ERR_AUTH, "org mismatch", -1);
        return 1;
    case FC_V:
        if (t != V_NUM)
            break;
        if (parse_i64(s, len, &iv) != 0 || iv != CP_EVENT_VERSION)
            bad(p, CP_ERR_VERSION, "unsupported version", -1);
        return 1;
    case FC_KIND:
    case FC_DIR:
    case FC_DISP:
    case FC_QOUT:
    case FC_SIDE:
        if (t != V_STR)
            break;
        if (set_enum(p, f, s, len) != 0)
            bad(p, CP_ERR_PARSE, "bad value", f);
        return 1;
    case FC_TIME:
        if (t == V_NUM) {
            rc = parse_i64(s, len, &iv);
            if (rc == CP_ERR_TYPE)
                break;
        } else if (t == V_STR) {
            rc = cp_time_parse_iso(s, len, p->ctx->tz, &iv);
        } else {
            break;
        }
        if (rc == 0 && (iv < 0 || iv > CP_EVENT_TIME_MAX))
            rc = CP_ERR_RANGE;
        if (rc != 0) {
            bad(p, rc, rc == CP_ERR_RANGE ? "out of range" : "bad time", f);
            return 1;
        }
        *(int64_t *)(ev + fd->off) = iv;
        return 1;
    case FC_DUR:
    case FC_Q850:
        if (t != V_NUM)
            break;
        rc = parse_i64(s, len, &iv);
        if (rc == CP_ERR_TYPE)
            break;
        if (rc == 0 && fd->cls == FC_DUR && (iv < -1 || iv > INT32_MAX))
            rc = CP_ERR_RANGE;
        if (rc == 0 && fd->cls == FC_Q850 && (iv < 0 || iv > CP_EVENT_Q850_MAX))
            rc = CP_ERR_RANGE;
        if (rc != 0) {
            bad(p, CP_ERR_RANGE, "out of range", f);
            return 1;
        }
        *(int32_t *)(ev + fd->off) = (int32_t)iv;
        return 1;
    case FC_X:
        break; /* a scalar where a map belongs */
    }
    bad(p, CP_ERR_TYPE, "wrong type", f);
    return 1;
}

/* One value inside x: strings, numbers and booleans kept as text; null drops the pair. */
static int x_value(struct jp *p, enum vtype t, const char *s, size_t len)
{
    struct cp_kv *kv = &p->ev.x[p->ev.nx - 1];
    if (t == V_NULL) {
        p->ev.nx--;
        return 1;
    }
    if (t == V_NUM && !x_number_ok(s, len)) {
        bad(p, CP_ERR_RANGE, "out of range", FX);
        return 1;
    }
    if (len > CP_EVENT_X_STR_MAX) {
        bad(p, CP_ERR_TOOBIG, "too long", FX);
        return 1;
    }
    char *c = dup_str(p, s, len);
    if (!c)
        return oom(p);
    kv->val = c;
    return 1;
}

/* ---- element lifecycle --------------------------------------------------- */

static void elem_begin(struct jp *p, size_t start)
{
    p->in_elem = true;
    p->finished = false;
    p->elem_start = start;
    p->cur = -1;
    p->in_x = false;
    p->seen = 0;
    p->reason = NULL;
    p->code = 0;
    cp_event_init(&p->ev);
}

/* Completes the event and checks it; on success p->reason stays NULL. */
static void elem_complete(struct jp *p)
{
    struct cp_event *ev = &p->ev;
    if (p->reason)
        return;
    if (!ev->call) {
        bad(p, CP_ERR_MISSING, "missing: call", -1);
        return;
    }
    if (ev->kind == CP_KIND_NONE) {
        bad(p, CP_ERR_MISSING, "missing: kind", -1);
        return;
    }
    if (ev->ts == 0) {
        bad(p, CP_ERR_MISSING, "missing: ts", -1);
        return;
    }
    ev->org = p->ctx->org;
    ev->pbx = p->ctx->pbx;
    ev->src = SRC_NAME;
    ev->recv = p->ctx->recv_us;
    if (!ev->event_id) {
        /* Identity of a callpipe-json record: what a sender re-sends unchanged. */
        const char *ids[4] = {ev->call, ev->leg, ev->queue, ev->agent};
        int rc = cp_event_derive_id(ev, p->ctx->arena, ids, 4);
        if (rc == CP_ERR_NOMEM) {
            oom(p);
            return;
        }
        if (rc < 0) {
            bad(p, rc, "could not derive event_id", -1);
            return;
        }
    }
    /* Every string this parser set passed its bound and string_ok already;
     * the collector validates the whole event again before producing it. */
    const char *why = NULL;
    int rc = cp_event_validate_opt(ev, false, &why);
    if (rc < 0)
        bad(p, rc, why ? why : "invalid event", -1);
}

/* Emits or rejects the finished element whose raw bytes are raw[0..len). */
static int elem_deliver(struct jp *p, const char *raw, size_t len)
{
    p->in_elem = false;
    p->finished = false;
    if (p->abort_code)
        return 0;
    if (p->reason) {
        reject(p, raw, len, p->code, p->reason);
        return 1;
    }
    int rc = p->out->event(p->out, &p->ev);
    if (rc < 0) {
        p->abort_code = rc;
        return 0;
    }
    p->emitted++;
    p->index++;
    return 1;
}

/* A scalar where an event object belongs. */
static int not_object(struct jp *p)
{
    size_t end = yajl_get_bytes_consumed(p->h);
    size_t start = p->last_off;
    while (start < end && strchr(" \t\r\n,[", p->base[start]))
        start++;
    if (p->deferred) {
        /* The whole value is this scalar; report it once yajl is done. */
        elem_begin(p, start);
        bad(p, CP_ERR_TYPE, "not an object", -1);
        p->finished = true;
        p->in_elem = false;
        p->last_off = end;
        return 1;
    }
    reject(p, p->base + start, end - start, CP_ERR_TYPE, "not an object");
    p->last_off = end;
    return 1;
}

/* ---- yajl callbacks ------------------------------------------------------- */

#define P ((struct jp *)ctx)

static int scalar(struct jp *p, enum vtype t, const char *s, size_t len)
{
    int rc = 1;
    if (!p->in_elem)
        return not_object(p);
    if (p->reason)
        rc = 1;
    else if (p->depth == p->elem_depth && p->cur >= 0)
        rc = field_value(p, t, s, len);
    else if (p->in_x && p->depth == p->elem_depth + 1)
        rc = x_value(p, t, s, len);
    return rc;
}

static int cb_null(void *ctx)
{
    return scalar(P, V_NULL, NULL, 0);
}

static int cb_bool(void *ctx, int b)
{
    return b ? scalar(P, V_BOOL, "true", 4) : scalar(P, V_BOOL, "false", 5);
}

static int cb_number(void *ctx, const char *s, size_t len)
{
    return scalar(P, V_NUM, s, len);
}

static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
    struct jp *p = P;
    /* The escape scan must advance over every string, even in elements that
     * are already rejected, so that a later element is never blamed for it. */
    enum esc e = escapes_check(p);
    if (p->in_elem && !p->reason)
        string_ok(p, e, s, len, p->in_x ? FX : p->cur);
    return scalar(p, V_STR, (const char *)s, len);
}

static int cb_map_key(void *ctx, const unsigned char *k, size_t len)
{
    struct jp *p = P;
    enum esc e = escapes_check(p);
    if (!p->in_elem || p->reason)
        return 1;
    if (p->depth == p->elem_depth) {
        if (e != ESC_OK) {
            bad(p, CP_ERR_PARSE, "unknown key", -1); /* no field name holds an escape */
            return 1;
        }
        int f = field_lookup(k, len);
        p->cur = f;
        if (f < 0) {
            bad(p, CP_ERR_PARSE, "unknown key", -1);
            return 1;
        }
        uint64_t bit = UINT64_C(1) << f;
        if (p->seen & bit) {
            bad(p, CP_ERR_PARSE, "duplicate key", f);
            return 1;
        }
        p->seen |= bit;
        return 1;
    }
    if (p->in_x && p->depth == p->elem_depth + 1) {
        if (!string_ok(p, e, k, len, FX))
            return 1;
        if (len == 0) {
            bad(p, CP_ERR_PARSE, "empty key", FX);
            return 1;
        }
        if (len > CP_EVENT_X_STR_MAX) {
            bad(p, CP_ERR_TOOBIG, "key too long", FX);
            return 1;
        }
        for (uint32_t i = 0; i < p->ev.nx; i++) {
            const char *ok = p->ev.x[i].key;
            if (strlen(ok) == len && memcmp(ok, k, len) == 0) {
                bad(p, CP_ERR_PARSE, "duplicate key", FX);
                return 1;
            }
        }
        if (p->ev.nx >= CP_EVENT_X_MAX) {
            bad(p, CP_ERR_TOOBIG, "too many pairs", FX);
            return 1;
        }
        char *c = dup_str(p, k, len);
        if (!c)
            return oom(p);
        p->ev.x[p->ev.nx].key = c;
        p->ev.x[p->ev.nx].val = NULL;
        p->ev.nx++;
    }
    return 1;
}

/* A container opens at depth d (after counting it). */
static void container_open(struct jp *p, bool is_map)
{
    int d = ++p->depth;
    if (!p->in_elem) {
        /* offsets only at element boundaries: most callbacks never ask yajl */
        size_t off = yajl_get_bytes_consumed(p->h);
        if (d == p->elem_depth) {
            elem_begin(p, off - 1);
            if (!is_map)
                bad(p, CP_ERR_TYPE, "not an object", -1);
        } else {
            p->last_off = off; /* the body array's '[' */
        }
        return;
    }
    /* Relative depth: 1 = the event, 2 = x; nothing may nest deeper, so the
     * absolute depth never exceeds MAX_DEPTH. */
    if (d - p->elem_depth + 1 > MAX_DEPTH - 1) {
        bad(p, CP_ERR_RANGE, "too deep", -1);
        return;
    }
    if (d == p->elem_depth + 1 && is_map && p->cur >= 0 && fields[p->cur].cls == FC_X &&
        !p->in_x) {
        p->in_x = true;
        return;
    }
    if (d == p->elem_depth + 1 && p->cur >= 0)
        bad(p, CP_ERR_TYPE, "wrong type", p->cur);
    else if (p->in_x)
        bad(p, CP_ERR_TYPE, "wrong type", FX);
}

static int container_close(struct jp *p)
{
    int d = p->depth--;
    if (!p->in_elem)
        return 1;
    if (d == p->elem_depth + 1 && p->in_x) {
        p->in_x = false;
        return 1;
    }
    if (d != p->elem_depth)
        return 1;
    elem_complete(p);
    if (p->abort_code)
        return 0;
    if (p->deferred) {
        p->finished = true;
        p->in_elem = false;
        return 1;
    }
    size_t off = yajl_get_bytes_consumed(p->h);
    p->last_off = off;
    return elem_deliver(p, p->base + p->elem_start, off - p->elem_start);
}

static int cb_start_map(void *ctx)
{
    container_open(P, true);
    return 1;
}

static int cb_start_array(void *ctx)
{
    container_open(P, false);
    return 1;
}

static int cb_end(void *ctx)
{
    return container_close(P);
}

#undef P

static const yajl_callbacks callbacks = {
    .yajl_null = cb_null,
    .yajl_boolean = cb_bool,
    .yajl_number = cb_number, /* numbers as text: exact int64, our own overflow check */
    .yajl_string = cb_string,
    .yajl_start_map = cb_start_map,
    .yajl_map_key = cb_map_key,
    .yajl_end_map = cb_end,
    .yajl_start_array = cb_start_array,
    .yajl_end_array = cb_end,
};

static const yajl_callbacks no_callbacks;

/* ---- yajl memory ------------------------------------------------------------- */

/*
 * yajl allocates a handle, a lexer, a state stack and decode buffers for
 * every parse; malloc/free of those was about 10% of the cost of an event.
 * They come from a scratch buffer inside the parse state instead (LIFO, so
 * freeing the newest block gives it back), and from malloc once it is full
 * (deep nesting grows the state stack).  Every block has a 16-byte header
 * holding its size, for realloc.
 */
struct blk {
    size_t size;
    size_t pad;
};

static size_t round16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

static bool in_scratch(const struct jp *p, const void *ptr)
{
    uintptr_t a = (uintptr_t)ptr, lo = (uintptr_t)p->scratch;
    return a >= lo && a < lo + sizeof p->scratch;
}

static void *sa_malloc(void *ctx, size_t n)
{
    struct jp *p = ctx;
    if (n <= sizeof p->scratch && sizeof p->scratch - p->sused >= sizeof(struct blk) + round16(n)) {
        struct blk *b = (struct blk *)(void *)(p->scratch + p->sused);
        b->size = n;
        p->sused += sizeof(struct blk) + round16(n);
        return b + 1;
    }
    return malloc(n);
}

static bool sa_is_last(const struct jp *p, const struct blk *b)
{
    return (const unsigned char *)(b + 1) + round16(b->size) == p->scratch + p->sused;
}

static void sa_free(void *ctx, void *ptr)
{
    struct jp *p = ctx;
    if (!ptr)
        return;
    if (!in_scratch(p, ptr)) {
        free(ptr);
        return;
    }
    struct blk *b = (struct blk *)ptr - 1;
    if (sa_is_last(p, b))
        p->sused = (size_t)((unsigned char *)b - p->scratch);
}

static void *sa_realloc(void *ctx, void *ptr, size_t n)
{
    struct jp *p = ctx;
    if (!ptr)
        return sa_malloc(ctx, n);
    if (!in_scratch(p, ptr))
        return realloc(ptr, n);
    struct blk *b = (struct blk *)ptr - 1;
    size_t start = (size_t)((unsigned char *)ptr - p->scratch);
    if (sa_is_last(p, b) && n <= sizeof p->scratch - start) {
        b->size = n;
        p->sused = start + round16(n);
        return ptr;
    }
    void *q = sa_malloc(ctx, n);
    if (!q)
        return NULL;
    memcpy(q, ptr, b->size < n ? b->size : n);
    sa_free(ctx, ptr);
    return q;
}

/* ---- drivers ---------------------------------------------------------------- */

/* Runs yajl over base[0..len) as exactly one JSON value.  Returns 0, or
 * CP_ERR_PARSE with *why set for a syntax error (including truncation),
 * or -1 when a callback stopped the parse (p->abort_code says why). */
static int run_yajl(struct jp *p, const yajl_callbacks *cb, const char *base, size_t len,
                    const char **why)
{
    p->sused = 0;
    yajl_alloc_funcs afs = {sa_malloc, sa_realloc, sa_free, p};
    yajl_handle h = yajl_alloc(cb, &afs, p);
    if (!h) {
        p->abort_code = CP_ERR_NOMEM;
        return -1;
    }
    /* Comments stay off (the default); strings are checked by string_ok. */
    yajl_config(h, yajl_dont_validate_strings, 1);
    p->h = h;
    p->base = base;
    p->len = len;
    const char *bs = memchr(base, '\\', len);
    p->next_bs = bs ? (size_t)(bs - base) : SIZE_MAX;
    p->raw_utf8_ok = cp_utf8_valid(base, len);
    p->last_off = 0;
    p->depth = 0;
    p->in_elem = false;
    p->finished = false;
    int rc = 0;
    yajl_status st = yajl_parse(h, (const unsigned char *)base, len);
    if (st == yajl_status_ok) {
        st = yajl_complete_parse(h);
        if (st == yajl_status_error) {
            *why = "truncated json";
            rc = CP_ERR_PARSE;
        }
    } else if (st == yajl_status_error) {
        *why = "malformed json";
        rc = CP_ERR_PARSE;
    }
    if (st == yajl_status_client_canceled)
        rc = -1;
    yajl_free(h);
    p->h = NULL;
    return rc;
}

/* One value that is one element: a line, or a whole (pretty-printed) body. */
static void parse_single(struct jp *p, const char *s, size_t len)
{
    const char *why = NULL;
    p->elem_depth = 1;
    p->deferred = true;
    int rc = run_yajl(p, &callbacks, s, len, &why);
    if (rc == -1 || p->abort_code) {
        if (p->abort_code == CP_ERR_NOMEM)
            reject(p, s, len, CP_ERR_NOMEM, "out of memory");
        return;
    }
    if (rc < 0) {
        reject(p, s, len, rc, why);
        return;
    }
    if (p->finished)
        elem_deliver(p, s, len);
}

/* A JSON array of events: each element stands alone, but broken syntax anywhere
 * rejects the whole body, since element boundaries are then unknowable. */
static void parse_array(struct jp *p, const char *s, size_t len)
{
    const char *why = NULL;
    int rc = run_yajl(p, &no_callbacks, s, len, &why);
    if (rc == -1)
        return; /* out of memory */
    if (rc < 0) {
        reject(p, s, len, rc, why);
        return;
    }
    p->elem_depth = 2;
    p->deferred = false;
    run_yajl(p, &callbacks, s, len, &why);
    if (p->abort_code == CP_ERR_NOMEM)
        reject(p, s, len, CP_ERR_NOMEM, "out of memory");
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int json_parse(void *state, const struct cp_source_ctx *ctx, const char *rec, size_t len,
                      struct cp_emit *out)
{
    (void)state;
    struct jp p;
    p.ctx = ctx;
    p.out = out;
    p.h = NULL;
    p.index = 0;
    p.emitted = p.rejected = p.first_code = p.abort_code = 0;
    p.reason = NULL;

    while (len > 0 && is_ws(rec[0])) {
        rec++;
        len--;
    }
    while (len > 0 && is_ws(rec[len - 1]))
        len--;
    if (len == 0)
        return 0;

    const char *nl = memchr(rec, '\n', len);
    if (rec[0] == '[') {
        parse_array(&p, rec, len);
    } else if (!nl) {
        parse_single(&p, rec, len);
    } else {
        /* A first line that is a lone "{" starts a pretty-printed object
         * (every common pretty-printer writes one); otherwise NDJSON. */
        size_t first = (size_t)(nl - rec);
        while (first > 0 && is_ws(rec[first - 1]))
            first--;
        if (first == 1) {
            parse_single(&p, rec, len);
        } else {
            const char *line = rec, *end = rec + len;
            while (line < end && !p.abort_code) {
                const char *e = memchr(line, '\n', (size_t)(end - line));
                if (!e)
                    e = end;
                const char *a = line, *b = e;
                while (a < b && is_ws(*a))
                    a++;
                while (b > a && is_ws(b[-1]))
                    b--;
                if (b > a)
                    parse_single(&p, a, (size_t)(b - a));
                line = e + 1;
            }
        }
    }
    if (p.abort_code)
        return p.abort_code;
    if (p.emitted == 0 && p.rejected > 0)
        return p.first_code;
    return p.emitted;
}

const struct cp_source_format cp_source_json = {
    .name = SRC_NAME,
    .framing = CP_FRAME_LINES,
    .state_create = NULL,
    .state_destroy = NULL,
    .parse = json_parse,
};
