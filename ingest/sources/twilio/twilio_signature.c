/* twilio_signature.c - X-Twilio-Signature: HMAC over the URL and the sorted POST parameters. */
#include "twilio_signature.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cp_arena.h"
#include "cp_err.h"
#include "twilio_form.h"

static int by_name_then_value(const void *a, const void *b)
{
    const struct cp_twilio_pair *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    if (c || x->name_len != y->name_len) return c ? c : (x->name_len < y->name_len ? -1 : 1);
    n = x->val_len < y->val_len ? x->val_len : y->val_len;
    c = memcmp(x->val, y->val, n);
    if (c || x->val_len != y->val_len) return c ? c : (x->val_len < y->val_len ? -1 : 1);
    return 0;
}

int cp_twilio_signature(const char *key, enum cp_twilio_sig_alg alg, const char *url,
                        const char *body, size_t body_len, char out[CP_TWILIO_SIG_MAX + 1])
{
    if (!key || !url || (!body && body_len)) return CP_ERR_INVAL;
    struct cp_arena arena;
    cp_arena_init(&arena, 4096 + body_len * 2, 0);
    struct cp_twilio_form *form = malloc(sizeof *form);
    int rc = form ? 0 : CP_ERR_NOMEM;
    const char *why, *bad;
    if (rc == 0 && body_len &&
        (rc = cp_twilio_form_parse(body, body_len, false, &arena, form, &why, &bad)) < 0)
        rc = rc == CP_ERR_NOMEM ? rc : CP_ERR_PARSE;
    if (rc == 0 && !body_len) form->n = 0;
    char *msg = NULL;
    size_t mlen = 0;
    if (rc == 0) {
        qsort(form->p, form->n, sizeof form->p[0], by_name_then_value);
        size_t cap = strlen(url) + 1;
        for (size_t i = 0; i < form->n; i++)
            cap += form->p[i].name_len + form->p[i].val_len;
        if (!(msg = malloc(cap))) rc = CP_ERR_NOMEM;
    }
    if (rc == 0) {
        size_t ul = strlen(url);
        memcpy(msg, url, ul);
        mlen = ul;
        for (size_t i = 0; i < form->n; i++) {
            memcpy(msg + mlen, form->p[i].name, form->p[i].name_len);
            mlen += form->p[i].name_len;
            memcpy(msg + mlen, form->p[i].val, form->p[i].val_len);
            mlen += form->p[i].val_len;
        }
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int maclen = 0;
        const EVP_MD *md = alg == CP_TWILIO_SIG_SHA256 ? EVP_sha256() : EVP_sha1();
        if (!HMAC(md, key, (int)strlen(key), (const unsigned char *)msg, mlen, mac, &maclen))
            rc = CP_ERR_INTERNAL;
        else
            rc = EVP_EncodeBlock((unsigned char *)out, mac, (int)maclen);
    }
    free(msg);
    free(form);
    cp_arena_destroy(&arena);
    return rc;
}

/* The same URL with the scheme's default port added or removed; false when
 * there is no such variant. */
static bool port_variant(const char *url, char *buf, size_t cap)
{
    const char *port = NULL;
    size_t skip;
    if (strncmp(url, "https://", 8) == 0) {
        port = ":443";
        skip = 8;
    } else if (strncmp(url, "http://", 7) == 0) {
        port = ":80";
        skip = 7;
    } else {
        return false;
    }
    const char *host = url + skip;
    size_t hl = strcspn(host, "/?#");
    size_t pl = strlen(port);
    size_t ul = strlen(url);
    if (hl >= pl && memcmp(host + hl - pl, port, pl) == 0) {
        if (ul - pl + 1 > cap) return false;
        memcpy(buf, url, skip + hl - pl);
        memcpy(buf + skip + hl - pl, host + hl, ul - skip - hl + 1);
        return true;
    }
    if (memchr(host, ':', hl) || ul + pl + 1 > cap)
        return false; /* another explicit port: no variant */
    memcpy(buf, url, skip + hl);
    memcpy(buf + skip + hl, port, pl);
    memcpy(buf + skip + hl + pl, host + hl, ul - skip - hl + 1);
    return true;
}

static int check_one(const char *key, enum cp_twilio_sig_alg alg, const char *url, const char *body,
                     size_t body_len, const char *header, size_t hlen)
{
    char want[CP_TWILIO_SIG_MAX + 1];
    int n = cp_twilio_signature(key, alg, url, body, body_len, want);
    if (n < 0) return n;
    /* the length of a MAC's base64 is public; its content is compared in constant time */
    if ((size_t)n != hlen || CRYPTO_memcmp(want, header, hlen) != 0) return CP_ERR_AUTH;
    return 0;
}

int cp_twilio_signature_check(const char *key, enum cp_twilio_sig_alg alg, const char *url,
                              const char *body, size_t body_len, const char *header)
{
    if (!header || !*header) return CP_ERR_AUTH;
    if (!url) return CP_ERR_INVAL;
    size_t hlen = strlen(header);
    int rc = check_one(key, alg, url, body, body_len, header, hlen);
    if (rc != CP_ERR_AUTH) return rc;
    size_t cap = strlen(url) + 8;
    char *alt = malloc(cap);
    if (!alt) return CP_ERR_NOMEM;
    if (port_variant(url, alt, cap)) rc = check_one(key, alg, alt, body, body_len, header, hlen);
    free(alt);
    return rc;
}
