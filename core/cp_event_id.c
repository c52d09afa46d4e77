/* cp_event_id.c - event_id = SHA-256 over a length-prefixed encoding of a record's identity. */
#include "cp_event_id.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

/* Bumping this changes every derived id: only with a schema version change. */
static const char domain[] = "callpipe-event-id-v1";

/*
 * OpenSSL 3 looks the algorithm up in its provider table on every implicit
 * EVP_sha256() use and EVP_Digest() allocates a context per call: together
 * they cost more than the hash of a few hundred bytes.  So the digest is
 * fetched once per process and each thread keeps one context for reuse,
 * freed by a thread-specific-data destructor when the thread ends (ingest
 * loop threads come and go with the service; LeakSanitizer checks this).
 */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static pthread_key_t md_key;
static _Thread_local EVP_MD_CTX *tl_md_ctx;

static void md_ctx_free(void *ctx)
{
    EVP_MD_CTX_free(ctx);
}

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    pthread_key_create(&md_key, md_ctx_free);
}

static EVP_MD_CTX *md_ctx(void)
{
    pthread_once(&sha256_once, sha256_fetch);
    if (!sha256_md)
        return NULL;
    if (!tl_md_ctx) {
        tl_md_ctx = EVP_MD_CTX_new();
        /* The key's destructor frees it at thread exit; the main thread's
         * context stays reachable until exit, which LeakSanitizer accepts. */
        if (tl_md_ctx)
            pthread_setspecific(md_key, tl_md_ctx);
    }
    return tl_md_ctx;
}

/* Real identities are a few hundred bytes; longer inputs are streamed. */
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
    if (m->cap - m->len < n) {
        m->err = CP_ERR_INTERNAL; /* encoded_size() was wrong: never overrun */
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
        sz += strlen(id3[i]);
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

    EVP_MD_CTX *md = md_ctx();
    if (!md)
        return CP_ERR_INTERNAL;
    if (EVP_DigestInit_ex2(md, sha256_md, NULL) != 1)
        return CP_ERR_INTERNAL;

    unsigned char stack[MSG_STACK];
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    struct msg m = {stack, 0, sizeof stack, NULL, 0};
    /* Short identities (all real ones) are encoded on the stack and hashed
     * in one update; longer ones are streamed into the digest. */
    if (encoded_size(ev, native_ids, n) > sizeof stack)
        m.md = md;
    encode(&m, ev, native_ids, n);
    if (!m.err && !m.md && EVP_DigestUpdate(md, m.buf, m.len) != 1)
        m.err = CP_ERR_INTERNAL;
    if (!m.err && EVP_DigestFinal_ex(md, digest, &dlen) != 1)
        m.err = CP_ERR_INTERNAL;
    if (m.err)
        return m.err;
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
    return 0;
}
