/* cp_event_id.c - event_id = SHA-256 over a length-prefixed encoding of a record's identity. */
#include "cp_event_id.h"

#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

/* Bumping this changes every derived id: only with a schema version change. */
static const char domain[] = "callpipe-event-id-v1";

/* Enough for domain, org/pbx/src, 8 native ids, kind and ts at their maximum
 * sizes; longer inputs fall back to a streamed digest. */
#define MSG_STACK 4096

struct msg {
    unsigned char *buf;
    size_t len, cap;
    EVP_MD_CTX *md; /* streaming when the stack buffer is too small */
    int err;
};

static void put_raw(struct msg *m, const void *p, size_t n)
{
    if (m->err)
        return;
    if (m->md) {
        if (EVP_DigestUpdate(m->md, p, n) != 1)
            m->err = CP_ERR_INTERNAL;
        return;
    }
    memcpy(m->buf + m->len, p, n);
    m->len += n;
}

/* 4-byte big-endian length, or 0xFFFFFFFF for an absent string. */
static void put_str(struct msg *m, const char *s)
{
    uint32_t n = s ? (uint32_t)strlen(s) : UINT32_MAX;
    unsigned char be[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                           (unsigned char)(n >> 8), (unsigned char)n};
    put_raw(m, be, 4);
    if (s)
        put_raw(m, s, n);
}

static void put_u64(struct msg *m, uint64_t v)
{
    unsigned char be[8];
    for (int i = 0; i < 8; i++)
        be[i] = (unsigned char)(v >> (56 - 8 * i));
    put_raw(m, be, 8);
}

static void encode(struct msg *m, const struct cp_event *ev, const char *const *ids, size_t n)
{
    put_str(m, domain);
    put_str(m, ev->org);
    put_str(m, ev->pbx);
    put_str(m, ev->src);
    put_u64(m, n);
    for (size_t i = 0; i < n; i++)
        put_str(m, ids[i]);
    put_str(m, cp_kind_name(ev->kind));
    put_u64(m, (uint64_t)ev->ts);
}

static size_t encoded_size(const struct cp_event *ev, const char *const *ids, size_t n)
{
    size_t sz = 4 + sizeof domain + 3 * 4 + 8 + 4 + 16 + 8;
    const char *id3[3] = {ev->org, ev->pbx, ev->src};
    for (int i = 0; i < 3; i++)
        sz += strnlen(id3[i], CP_EVENT_STR_MAX + 1);
    for (size_t i = 0; i < n; i++)
        sz += 4 + (ids[i] ? strnlen(ids[i], CP_EVENT_NATIVE_MAX + 1) : 0);
    return sz;
}

int cp_event_derive_id(struct cp_event *ev, struct cp_arena *arena, const char *const *native_ids,
                       size_t n)
{
    if (!ev || !arena || (n && !native_ids) || !ev->org || !ev->pbx || !ev->src ||
        !cp_kind_name(ev->kind))
        return CP_ERR_INVAL;
    for (size_t i = 0; i < n; i++)
        if (native_ids[i] && strnlen(native_ids[i], CP_EVENT_NATIVE_MAX + 1) > CP_EVENT_NATIVE_MAX)
            return CP_ERR_TOOBIG;

    unsigned char stack[MSG_STACK];
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    struct msg m = {stack, 0, sizeof stack, NULL, 0};
    int rc = 0;

    if (encoded_size(ev, native_ids, n) <= sizeof stack) {
        encode(&m, ev, native_ids, n);
        if (EVP_Digest(m.buf, m.len, digest, &dlen, EVP_sha256(), NULL) != 1)
            return CP_ERR_INTERNAL;
    } else {
        m.md = EVP_MD_CTX_new();
        if (!m.md)
            return CP_ERR_NOMEM;
        if (EVP_DigestInit_ex(m.md, EVP_sha256(), NULL) != 1)
            m.err = CP_ERR_INTERNAL;
        encode(&m, ev, native_ids, n);
        if (!m.err && EVP_DigestFinal_ex(m.md, digest, &dlen) != 1)
            m.err = CP_ERR_INTERNAL;
        EVP_MD_CTX_free(m.md);
        if (m.err)
            return m.err;
    }
    if (dlen * 2 < CP_EVENT_ID_LEN)
        return CP_ERR_INTERNAL;

    char *id = cp_arena_alloc(arena, CP_EVENT_ID_LEN + 1);
    if (!id)
        return CP_ERR_NOMEM;
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < CP_EVENT_ID_LEN / 2; i++) {
        id[2 * i] = hex[digest[i] >> 4];
        id[2 * i + 1] = hex[digest[i] & 15];
    }
    id[CP_EVENT_ID_LEN] = '\0';
    ev->event_id = id;
    return rc;
}
