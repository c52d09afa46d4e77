/* cp_event_msgpack.c - canonical event v1 <-> msgpack: msgpack-c packer out, a bounded byte walker
 * in. */
#include "cp_event.h"

#include <msgpack.h>
#include <stddef.h>
#include <string.h>

#include "cp_event_priv.h"
#include "cp_utf8.h"

/* ---- encoding ------------------------------------------------------------------------------ */

#define KEY(pk, lit) msgpack_pack_str_with_body(pk, lit, sizeof(lit) - 1)

static inline int pack_cstr(msgpack_packer *pk, const char *s)
{
    if (!s) return msgpack_pack_nil(pk);
    return msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* Every field with its presence rule, in wire order; used twice (count, then pack)
 * so that the two can never disagree. */
#define EV_FIELDS(S, T, E, D, I)                                                                   \
    S("event_id", event_id)                                                                        \
    S("org", org)                                                                                  \
    S("pbx", pbx)                                                                                  \
    S("src", src)                                                                                  \
    S("call", call)                                                                                \
    S("leg", leg)                                                                                  \
    S("parent", parent)                                                                            \
    E("kind", kind, cp_kind_name)                                                                  \
    T("ts", ts)                                                                                    \
    T("recv", recv)                                                                                \
    T("start", start)                                                                              \
    T("answer", answer)                                                                            \
    T("end", end)                                                                                  \
    E("dir", dir, cp_dir_name)                                                                     \
    S("from", from)                                                                                \
    S("from_name", from_name)                                                                      \
    S("to", to)                                                                                    \
    S("final_to", final_to)                                                                        \
    S("queue", queue)                                                                              \
    S("agent", agent)                                                                              \
    S("agent_name", agent_name)                                                                    \
    E("disp", disp, cp_disp_name)                                                                  \
    E("qout", qout, cp_qout_name)                                                                  \
    S("wrapup", wrapup)                                                                            \
    E("side", side, cp_side_name)                                                                  \
    I("q850", q850)                                                                                \
    S("native", native)                                                                            \
    D("ring", ring)                                                                                \
    D("wait", wait)                                                                                \
    D("talk", talk)                                                                                \
    D("hold", hold)                                                                                \
    D("acw", acw)

static int pack_event(msgpack_packer *pk, const struct cp_event *ev)
{
    uint32_t nx = ev->nx < CP_EVENT_X_MAX ? ev->nx : CP_EVENT_X_MAX;
    uint32_t n = 1 + (nx > 0);
#define C_S(k, f)       n += ev->f != NULL;
#define C_T(k, f)       n += ev->f != 0;
#define C_E(k, f, name) n += name(ev->f) != NULL;
#define C_D(k, f)       n += ev->f != -1;
#define C_I(k, f)       n += ev->f != 0;
    EV_FIELDS(C_S, C_T, C_E, C_D, C_I)

    int rc = msgpack_pack_map(pk, n);
    rc |= KEY(pk, "v");
    rc |= msgpack_pack_uint32(pk, ev->v);
#define P_S(k, f)                                                                                  \
    if (ev->f) {                                                                                   \
        rc |= KEY(pk, k);                                                                          \
        rc |= pack_cstr(pk, ev->f);                                                                \
    }
#define P_T(k, f)                                                                                  \
    if (ev->f != 0) {                                                                              \
        rc |= KEY(pk, k);                                                                          \
        rc |= msgpack_pack_int64(pk, ev->f);                                                       \
    }
#define P_E(k, f, name)                                                                            \
    if (name(ev->f)) {                                                                             \
        rc |= KEY(pk, k);                                                                          \
        rc |= pack_cstr(pk, name(ev->f));                                                          \
    }
#define P_D(k, f)                                                                                  \
    if (ev->f != -1) {                                                                             \
        rc |= KEY(pk, k);                                                                          \
        rc |= msgpack_pack_int32(pk, ev->f);                                                       \
    }
    EV_FIELDS(P_S, P_T, P_E, P_D, P_T)
    if (nx > 0) {
        rc |= KEY(pk, "x");
        rc |= msgpack_pack_map(pk, nx);
        for (uint32_t i = 0; i < nx; i++) {
            rc |= pack_cstr(pk, ev->x[i].key);
            rc |= pack_cstr(pk, ev->x[i].val);
        }
    }
    return rc;
}

int cp_event_encode(const struct cp_event *ev, struct msgpack_sbuffer *out)
{
    size_t before = out->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    if (pack_event(&pk, ev) != 0) {
        out->size = before;
        return CP_ERR_NOMEM;
    }
    size_t n = out->size - before;
    return n > (size_t)INT32_MAX ? CP_ERR_TOOBIG : (int)n;
}

/*
 * cp_event_encode_to writes the same bytes as pack_event (the smallest msgpack
 * form of each value, as msgpack-c chooses it; test_event_encode compares the
 * two) straight into the caller's buffer: msgpack-c's packer calls its write
 * callback, a bounds check and a memcpy for every tag and key, which cost more
 * than the encoding itself.  Keys are constants copied with fixed lengths.
 */
struct wbuf {
    unsigned char *p, *end;
    bool over;
};

static inline bool w_room(struct wbuf *w, size_t n)
{
    if ((size_t)(w->end - w->p) < n) {
        w->over = true;
        return false;
    }
    return true;
}

static inline void w_be(unsigned char *d, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        d[i] = (unsigned char)(v >> (8 * (n - 1 - i)));
}

static inline void w_tag_be(struct wbuf *w, unsigned char tag, uint64_t v, int n)
{
    if (!w_room(w, 1 + (size_t)n)) return;
    w->p[0] = tag;
    w_be(w->p + 1, v, n);
    w->p += 1 + n;
}

static inline void w_map(struct wbuf *w, uint32_t n)
{
    if (n < 16) {
        if (w_room(w, 1)) *w->p++ = (unsigned char)(0x80 | n);
    } else if (n < 65536) {
        w_tag_be(w, 0xde, n, 2);
    } else {
        w_tag_be(w, 0xdf, n, 4);
    }
}

static inline void w_str(struct wbuf *w, const char *s, size_t n)
{
    if (n < 32) {
        if (!w_room(w, 1 + n)) return;
        *w->p++ = (unsigned char)(0xa0 | n);
    } else if (n < 256) {
        if (!w_room(w, 2 + n)) return;
        *w->p++ = 0xd9;
        *w->p++ = (unsigned char)n;
    } else if (n < 65536) {
        if (!w_room(w, 3 + n)) return;
        w_tag_be(w, 0xda, n, 2);
    } else {
        if (!w_room(w, 5 + n)) return;
        w_tag_be(w, 0xdb, n, 4);
    }
    memcpy(w->p, s, n);
    w->p += n;
}

/* msgpack-c's pack_real_int64: the shortest form, unsigned tags for d >= 128. */
static inline void w_int(struct wbuf *w, int64_t d)
{
    if (d < -(INT64_C(1) << 5)) {
        if (d < -(INT64_C(1) << 15)) {
            if (d < -(INT64_C(1) << 31))
                w_tag_be(w, 0xd3, (uint64_t)d, 8);
            else
                w_tag_be(w, 0xd2, (uint64_t)d & 0xffffffffu, 4);
        } else if (d < -(INT64_C(1) << 7)) {
            w_tag_be(w, 0xd1, (uint64_t)d & 0xffffu, 2);
        } else {
            w_tag_be(w, 0xd0, (uint64_t)d & 0xffu, 1);
        }
    } else if (d < (INT64_C(1) << 7)) {
        if (w_room(w, 1)) *w->p++ = (unsigned char)(int8_t)d;
    } else if (d < (INT64_C(1) << 8)) {
        w_tag_be(w, 0xcc, (uint64_t)d, 1);
    } else if (d < (INT64_C(1) << 16)) {
        w_tag_be(w, 0xcd, (uint64_t)d, 2);
    } else if (d < (INT64_C(1) << 32)) {
        w_tag_be(w, 0xce, (uint64_t)d, 4);
    } else {
        w_tag_be(w, 0xcf, (uint64_t)d, 8);
    }
}

#define W_KEY(w, lit) w_str(w, lit, sizeof(lit) - 1)

static inline void w_cstr(struct wbuf *w, const char *s)
{
    if (!s) {
        if (w_room(w, 1)) *w->p++ = 0xc0;
        return;
    }
    w_str(w, s, strlen(s));
}

int cp_event_encode_to(const struct cp_event *ev, char *buf, size_t cap)
{
    struct wbuf w = {(unsigned char *)buf, (unsigned char *)buf + cap, false};
    uint32_t nx = ev->nx < CP_EVENT_X_MAX ? ev->nx : CP_EVENT_X_MAX;
    uint32_t n = 1 + (nx > 0);
    EV_FIELDS(C_S, C_T, C_E, C_D, C_I)
    w_map(&w, n);
    W_KEY(&w, "v");
    w_int(&w, ev->v);
#define W_S(k, f)                                                                                  \
    if (ev->f) {                                                                                   \
        W_KEY(&w, k);                                                                              \
        w_cstr(&w, ev->f);                                                                         \
    }
#define W_T(k, f)                                                                                  \
    if (ev->f != 0) {                                                                              \
        W_KEY(&w, k);                                                                              \
        w_int(&w, ev->f);                                                                          \
    }
#define W_E(k, f, name)                                                                            \
    if (name(ev->f)) {                                                                             \
        W_KEY(&w, k);                                                                              \
        w_cstr(&w, name(ev->f));                                                                   \
    }
#define W_D(k, f)                                                                                  \
    if (ev->f != -1) {                                                                             \
        W_KEY(&w, k);                                                                              \
        w_int(&w, ev->f);                                                                          \
    }
    EV_FIELDS(W_S, W_T, W_E, W_D, W_T)
    if (nx > 0) {
        W_KEY(&w, "x");
        w_map(&w, nx);
        for (uint32_t i = 0; i < nx; i++) {
            w_cstr(&w, ev->x[i].key);
            w_cstr(&w, ev->x[i].val);
        }
    }
    if (w.over) return CP_ERR_TOOBIG;
    size_t len = (size_t)(w.p - (unsigned char *)buf);
    return len > (size_t)INT32_MAX ? CP_ERR_TOOBIG : (int)len;
}

/* ---- decoding -------------------------------------------------------------------------------- */

/*
 * Why not msgpack_unpack_next: it builds a msgpack_object tree in a zone whose
 * size follows the headers (an array32 announcing 2^31 elements is an
 * allocation attempt), then we would walk the tree and copy the strings a
 * second time.  Walking the bytes directly checks every announced length
 * against the bytes that remain before touching anything, allocates only the
 * strings we keep, and is one pass.
 */
struct rd {
    const unsigned char *p;
    const unsigned char *end;
};

static inline size_t rd_left(const struct rd *r)
{
    return (size_t)(r->end - r->p);
}

static inline uint64_t be(const unsigned char *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Reads an n-byte big-endian length after the tag; 0 or CP_ERR_PARSE (truncated). */
static inline int rd_len(struct rd *r, unsigned n, uint64_t *out)
{
    if (rd_left(r) < n) return CP_ERR_PARSE;
    *out = be(r->p, n);
    r->p += n;
    return 0;
}

/* The tag 0xc1 is reserved: never valid anywhere. */
static inline int bad_tag(unsigned char tag)
{
    return tag == 0xc1 ? CP_ERR_PARSE : CP_ERR_TYPE;
}

static int rd_map(struct rd *r, uint64_t *n)
{
    if (rd_left(r) < 1) return CP_ERR_PARSE;
    unsigned char tag = *r->p;
    int rc;
    if ((tag & 0xf0) == 0x80) {
        r->p++;
        *n = tag & 0x0f;
    } else if (tag == 0xde || tag == 0xdf) {
        r->p++;
        if ((rc = rd_len(r, tag == 0xde ? 2 : 4, n)) < 0) return rc;
    } else {
        return bad_tag(tag);
    }
    /* Every key and value takes at least one byte. */
    if (*n > rd_left(r) / 2) return CP_ERR_PARSE;
    return 0;
}

static int rd_str(struct rd *r, const char **s, size_t *n)
{
    if (rd_left(r) < 1) return CP_ERR_PARSE;
    unsigned char tag = *r->p;
    uint64_t len;
    int rc;
    if ((tag & 0xe0) == 0xa0) {
        r->p++;
        len = tag & 0x1f;
    } else if (tag >= 0xd9 && tag <= 0xdb) {
        r->p++;
        if ((rc = rd_len(r, 1u << (tag - 0xd9), &len)) < 0) return rc;
    } else {
        return bad_tag(tag);
    }
    if (len > rd_left(r)) return CP_ERR_PARSE;
    *s = (const char *)r->p;
    *n = (size_t)len;
    r->p += len;
    return 0;
}

/* Any msgpack integer format as int64; uint64 above INT64_MAX is CP_ERR_RANGE. */
static int rd_int(struct rd *r, int64_t *out)
{
    if (rd_left(r) < 1) return CP_ERR_PARSE;
    unsigned char tag = *r->p;
    if (tag <= 0x7f) {
        r->p++;
        *out = tag;
        return 0;
    }
    if (tag >= 0xe0) {
        r->p++;
        *out = (int8_t)tag;
        return 0;
    }
    if (tag < 0xcc || tag > 0xd3) return bad_tag(tag);
    unsigned n = 1u << ((tag - 0xcc) & 3);
    if (rd_left(r) < 1 + n) return CP_ERR_PARSE;
    uint64_t u = be(r->p + 1, n);
    r->p += 1 + n;
    if (tag <= 0xcf) { /* unsigned */
        if (u > (uint64_t)INT64_MAX) return CP_ERR_RANGE;
        *out = (int64_t)u;
    } else { /* signed: sign-extend from n bytes */
        unsigned shift = 64 - 8 * n;
        *out = shift ? (int64_t)(u << shift) >> shift : (int64_t)u;
    }
    return 0;
}

static inline bool rd_nil(struct rd *r)
{
    if (rd_left(r) >= 1 && *r->p == 0xc0) {
        r->p++;
        return true;
    }
    return false;
}

/*
 * Skips one value of any type.  Iterative: `pending` counts values still to
 * skip, so nesting depth costs no stack, and since each value takes at least
 * one byte a count larger than the bytes left is rejected at once.
 */
static int rd_skip(struct rd *r)
{
    uint64_t pending = 1;
    while (pending > 0) {
        if (rd_left(r) < 1) return CP_ERR_PARSE;
        unsigned char tag = *r->p++;
        pending--;
        uint64_t skip = 0, more = 0, len;
        int rc;
        if (tag <= 0x7f || tag >= 0xe0 || (tag >= 0xc0 && tag <= 0xc3 && tag != 0xc1)) {
            /* fixint, negative fixint, nil, false, true */
        } else if ((tag & 0xf0) == 0x80) {
            more = 2 * (uint64_t)(tag & 0x0f);
        } else if ((tag & 0xf0) == 0x90) {
            more = tag & 0x0f;
        } else if ((tag & 0xe0) == 0xa0) {
            skip = tag & 0x1f;
        } else {
            switch (tag) {
            case 0xc4:
            case 0xc5:
            case 0xc6: /* bin 8/16/32 */
                if ((rc = rd_len(r, 1u << (tag - 0xc4), &len)) < 0) return rc;
                skip = len;
                break;
            case 0xc7:
            case 0xc8:
            case 0xc9: /* ext 8/16/32: length, type byte, data */
                if ((rc = rd_len(r, 1u << (tag - 0xc7), &len)) < 0) return rc;
                skip = len + 1;
                break;
            case 0xca:
                skip = 4;
                break; /* float32 */
            case 0xcb:
                skip = 8;
                break; /* float64 */
            case 0xcc:
            case 0xcd:
            case 0xce:
            case 0xcf:
                skip = 1u << (tag - 0xcc);
                break;
            case 0xd0:
            case 0xd1:
            case 0xd2:
            case 0xd3:
                skip = 1u << (tag - 0xd0);
                break;
            case 0xd4:
            case 0xd5:
            case 0xd6:
            case 0xd7:
            case 0xd8: /* fixext 1..16 + type */
                skip = 1 + (1u << (tag - 0xd4));
                break;
            case 0xd9:
            case 0xda:
            case 0xdb: /* str 8/16/32 */
                if ((rc = rd_len(r, 1u << (tag - 0xd9), &len)) < 0) return rc;
                skip = len;
                break;
            case 0xdc:
            case 0xdd: /* array 16/32 */
                if ((rc = rd_len(r, tag == 0xdc ? 2 : 4, &more)) < 0) return rc;
                break;
            case 0xde:
            case 0xdf: /* map 16/32 */
                if ((rc = rd_len(r, tag == 0xde ? 2 : 4, &len)) < 0) return rc;
                more = 2 * len;
                break;
            default: /* 0xc1 */
                return CP_ERR_PARSE;
            }
        }
        if (skip > rd_left(r)) return CP_ERR_PARSE;
        r->p += skip;
        pending += more;
        if (pending > rd_left(r)) return CP_ERR_PARSE;
    }
    return 0;
}

enum ftype { F_VER, F_STR, F_TIME, F_KIND, F_DIR, F_DISP, F_QOUT, F_SIDE, F_Q850, F_DUR, F_X };

struct field {
    const char *key;
    unsigned char klen;
    unsigned char type;
    unsigned short max; /* strings: byte bound */
    size_t off;
    const char *why_type;
    const char *why_big;
    const char *why_utf8;
    const char *why_range;
    const char *why_dup;
};

#define FLD(k, t, max, off)                                                                        \
    {                                                                                              \
        k, sizeof(k) - 1, t, max, off, "wrong type for field " k, "field " k " too long",          \
            "field " k " is not valid UTF-8 or holds NUL", "field " k " out of range",             \
            "duplicate key " k                                                                     \
    }
#define FS(k) FLD(#k, F_STR, CP_EVENT_STR_MAX, offsetof(struct cp_event, k))
#define FT(k) FLD(#k, F_TIME, 0, offsetof(struct cp_event, k))
#define FD(k) FLD(#k, F_DUR, 0, offsetof(struct cp_event, k))

/* Wire order: the encoder writes keys in this order, so the decoder's guess
 * "the next key is the next field" hits on every key of our own encodings. */
static const struct field fields[] = {
    FLD("v", F_VER, 0, 0),
    FS(event_id),
    FS(org),
    FS(pbx),
    FS(src),
    FS(call),
    FS(leg),
    FS(parent),
    FLD("kind", F_KIND, 0, 0),
    FT(ts),
    FT(recv),
    FT(start),
    FT(answer),
    FT(end),
    FLD("dir", F_DIR, 0, 0),
    FS(from),
    FS(from_name),
    FS(to),
    FS(final_to),
    FS(queue),
    FS(agent),
    FS(agent_name),
    FLD("disp", F_DISP, 0, 0),
    FLD("qout", F_QOUT, 0, 0),
    FS(wrapup),
    FLD("side", F_SIDE, 0, 0),
    FLD("q850", F_Q850, 0, 0),
    FLD("native", F_STR, CP_EVENT_NATIVE_MAX, offsetof(struct cp_event, native)),
    FD(ring),
    FD(wait),
    FD(talk),
    FD(hold),
    FD(acw),
    FLD("x", F_X, CP_EVENT_X_STR_MAX, 0),
};
#define NFIELDS (sizeof fields / sizeof fields[0])
_Static_assert(NFIELDS <= 64, "seen-set is a uint64_t");

static int find_field(const char *k, size_t n, unsigned hint)
{
    if (hint < NFIELDS && fields[hint].klen == n && memcmp(fields[hint].key, k, n) == 0)
        return (int)hint;
    for (unsigned i = 0; i < NFIELDS; i++)
        if (fields[i].klen == n && memcmp(fields[i].key, k, n) == 0) return (int)i;
    return -1;
}

/* A string value we keep: bounded, valid UTF-8, no NUL, copied into the arena. */
static int take_str(struct rd *r, size_t max, struct cp_arena *arena, const char **out,
                    const struct field *f, const char **why)
{
    const char *s;
    size_t n;
    int rc = rd_str(r, &s, &n);
    if (rc < 0) {
        *why = rc == CP_ERR_TYPE ? f->why_type : "truncated or malformed msgpack";
        return rc;
    }
    if (n > max) {
        *why = f->why_big;
        return CP_ERR_TOOBIG;
    }
    if (memchr(s, 0, n) || !cp_utf8_valid(s, n)) {
        *why = f->why_utf8;
        return CP_ERR_UTF8;
    }
    char *copy = cp_arena_strndup(arena, s, n);
    if (!copy) {
        *why = "out of memory in the record arena";
        return CP_ERR_NOMEM;
    }
    *out = copy;
    return 0;
}

/* An enum value: a string naming one of the values. */
static int take_enum(struct rd *r, const struct field *f, unsigned *out, const char **why)
{
    const char *s;
    size_t n;
    int rc = rd_str(r, &s, &n);
    if (rc < 0) {
        *why = rc == CP_ERR_TYPE ? f->why_type : "truncated or malformed msgpack";
        return rc;
    }
    switch (f->type) {
    case F_KIND: {
        enum cp_kind v;
        rc = cp_kind_parse(s, n, &v);
        *out = (unsigned)v;
        break;
    }
    case F_DIR: {
        enum cp_dir v;
        rc = cp_dir_parse(s, n, &v);
        *out = (unsigned)v;
        break;
    }
    case F_DISP: {
        enum cp_disp v;
        rc = cp_disp_parse(s, n, &v);
        *out = (unsigned)v;
        break;
    }
    case F_QOUT: {
        enum cp_qout v;
        rc = cp_qout_parse(s, n, &v);
        *out = (unsigned)v;
        break;
    }
    default: {
        enum cp_side v;
        rc = cp_side_parse(s, n, &v);
        *out = (unsigned)v;
        break;
    }
    }
    if (rc < 0) {
        *why = f->why_range;
        return CP_ERR_RANGE;
    }
    return 0;
}

static int take_int(struct rd *r, const struct field *f, int64_t lo, int64_t hi, int64_t *out,
                    const char **why)
{
    int rc = rd_int(r, out);
    if (rc == CP_ERR_TYPE) {
        *why = f->why_type;
        return rc;
    }
    if (rc == CP_ERR_PARSE) {
        *why = "truncated or malformed msgpack";
        return rc;
    }
    if (rc < 0 || *out < lo || *out > hi) {
        *why = f->why_range;
        return CP_ERR_RANGE;
    }
    return 0;
}

static int take_x(struct rd *r, struct cp_arena *arena, struct cp_event *ev, const struct field *f,
                  const char **why)
{
    uint64_t n;
    int rc = rd_map(r, &n);
    if (rc < 0) {
        *why = rc == CP_ERR_TYPE ? f->why_type : "truncated or malformed msgpack";
        return rc;
    }
    if (n > CP_EVENT_X_MAX) {
        *why = "too many x pairs";
        return CP_ERR_TOOBIG;
    }
    for (uint64_t i = 0; i < n; i++) {
        struct cp_kv *kv = &ev->x[i];
        if ((rc = take_str(r, CP_EVENT_X_STR_MAX, arena, &kv->key, f, why)) < 0) return rc;
        if ((rc = take_str(r, CP_EVENT_X_STR_MAX, arena, &kv->val, f, why)) < 0) return rc;
        for (uint64_t j = 0; j < i; j++) {
            if (strcmp(ev->x[j].key, kv->key) == 0) {
                *why = "duplicate x key";
                return CP_ERR_PARSE;
            }
        }
        ev->nx = (uint32_t)(i + 1);
    }
    return 0;
}

static int decode_value(struct rd *r, const struct field *f, struct cp_arena *arena,
                        struct cp_event *ev, const char **why)
{
    unsigned char *base = (unsigned char *)ev;
    int64_t i;
    unsigned e;
    int rc;

    /* nil = absent, for optional fields only; required ones then fail in validate. */
    if (f->type != F_VER && rd_nil(r)) return 0;
    switch (f->type) {
    case F_VER:
        if ((rc = take_int(r, f, 0, INT64_MAX, &i, why)) < 0) return rc;
        if (i != CP_EVENT_VERSION) {
            *why = "unsupported schema version v";
            return CP_ERR_VERSION;
        }
        ev->v = (uint32_t)i;
        return 0;
    case F_STR:
        return take_str(r, f->max, arena, (const char **)(base + f->off), f, why);
    case F_TIME:
        if ((rc = take_int(r, f, 0, CP_EVENT_TIME_MAX, &i, why)) < 0) return rc;
        memcpy(base + f->off, &i, sizeof i);
        return 0;
    case F_DUR: {
        if ((rc = take_int(r, f, -1, INT32_MAX, &i, why)) < 0) return rc;
        int32_t d = (int32_t)i;
        memcpy(base + f->off, &d, sizeof d);
        return 0;
    }
    case F_Q850:
        if ((rc = take_int(r, f, 0, CP_EVENT_Q850_MAX, &i, why)) < 0) return rc;
        ev->q850 = (int32_t)i;
        return 0;
    case F_X:
        return take_x(r, arena, ev, f, why);
    default:
        if ((rc = take_enum(r, f, &e, why)) < 0) return rc;
        switch (f->type) {
        case F_KIND:
            ev->kind = (enum cp_kind)e;
            break;
        case F_DIR:
            ev->dir = (enum cp_dir)e;
            break;
        case F_DISP:
            ev->disp = (enum cp_disp)e;
            break;
        case F_QOUT:
            ev->qout = (enum cp_qout)e;
            break;
        default:
            ev->side = (enum cp_side)e;
            break;
        }
        return 0;
    }
}

static int decode_map(struct rd *r, struct cp_arena *arena, struct cp_event *ev, bool *seen_v,
                      const char **why)
{
    uint64_t n;
    int rc = rd_map(r, &n);
    if (rc < 0) {
        *why = rc == CP_ERR_TYPE ? "event is not a msgpack map" : "truncated or malformed msgpack";
        return rc;
    }
    uint64_t seen = 0;
    unsigned hint = 0;
    for (uint64_t k = 0; k < n; k++) {
        const char *key;
        size_t klen;
        if ((rc = rd_str(r, &key, &klen)) < 0) {
            *why = rc == CP_ERR_TYPE ? "map key is not a string" : "truncated or malformed msgpack";
            return rc;
        }
        int idx = find_field(key, klen, hint);
        if (idx < 0) {
            /* Forward compatibility: a newer v1 producer's extra field. */
            if ((rc = rd_skip(r)) < 0) {
                *why = "truncated or malformed msgpack";
                return rc;
            }
            continue;
        }
        const struct field *f = &fields[idx];
        if (seen & (UINT64_C(1) << idx)) {
            *why = f->why_dup;
            return CP_ERR_PARSE;
        }
        seen |= UINT64_C(1) << idx;
        hint = (unsigned)idx + 1;
        if ((rc = decode_value(r, f, arena, ev, why)) < 0) return rc;
        if (idx == 0) *seen_v = true;
    }
    if (!(seen & 1)) {
        *why = "missing required field v";
        return CP_ERR_MISSING;
    }
    return 0;
}

/* Cold path after an error: if the map names a version other than ours, that
 * is the error worth reporting, whatever else was wrong with it. */
static bool other_version(const char *buf, size_t len)
{
    struct rd r = {(const unsigned char *)buf, (const unsigned char *)buf + len};
    uint64_t n;
    if (rd_map(&r, &n) < 0) return false;
    for (uint64_t k = 0; k < n; k++) {
        const char *key;
        size_t klen;
        if (rd_str(&r, &key, &klen) < 0) return false;
        if (klen == 1 && key[0] == 'v') {
            int64_t v;
            return rd_int(&r, &v) == CP_OK ? v != CP_EVENT_VERSION : false;
        }
        if (rd_skip(&r) < 0) return false;
    }
    return false;
}

int cp_event_decode(const char *buf, size_t len, struct cp_arena *arena, struct cp_event *ev,
                    const char **why)
{
    const char *dummy;
    if (!why) why = &dummy;
    *why = NULL;
    cp_event_init(ev);
    if (!buf) {
        *why = "no input";
        return CP_ERR_INVAL;
    }
    struct rd r = {(const unsigned char *)buf, (const unsigned char *)buf + len};
    bool seen_v = false;
    int rc = decode_map(&r, arena, ev, &seen_v, why);
    if (rc == 0 && r.p != r.end) {
        *why = "trailing bytes after the event";
        rc = CP_ERR_PARSE;
    }
    if (rc < 0) {
        if (!seen_v && rc != CP_ERR_NOMEM && other_version(buf, len)) {
            *why = "unsupported schema version v";
            rc = CP_ERR_VERSION;
        }
        return rc;
    }
    return cp_event_validate_opt(ev, false, why);
}
