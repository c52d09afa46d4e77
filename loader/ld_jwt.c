/* ld_jwt.c - the OAuth 2.0 JWT bearer assertion (RS256) for Salesforce's token endpoint. */
#include "loader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

size_t ld_b64url(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
        out[o++] = tab[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
    }
    out[o] = '\0';
    return o;
}

static char *b64url_dup(const unsigned char *in, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (out)
        ld_b64url(in, n, out);
    return out;
}

int ld_jwt_build(const char *pem, size_t pem_len, const char *iss, const char *sub,
                 const char *aud, int64_t now_s, char **out)
{
    *out = NULL;
    int rc = CP_ERR_NOMEM;
    char *claims_json = NULL, *h64 = NULL, *c64 = NULL, *input = NULL, *s64 = NULL;
    unsigned char *sig = NULL;
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *md = NULL;

    BIO *bio = BIO_new_mem_buf(pem, (int)pem_len);
    if (!bio)
        goto done;
    key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!key || EVP_PKEY_base_id(key) != EVP_PKEY_RSA) {
        rc = CP_ERR_SECRET; /* never say more: the message must not echo key material */
        goto done;
    }
    json_t *claims = json_pack("{s:s, s:s, s:s, s:I}", "iss", iss, "sub", sub, "aud", aud,
                               "exp", (json_int_t)(now_s + 180));
    if (!claims)
        goto done;
    claims_json = json_dumps(claims, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(claims);
    static const char header[] = "{\"alg\":\"RS256\"}";
    if (!claims_json || !(h64 = b64url_dup((const unsigned char *)header, sizeof header - 1)) ||
        !(c64 = b64url_dup((const unsigned char *)claims_json, strlen(claims_json))))
        goto done;
    size_t in_len = strlen(h64) + 1 + strlen(c64);
    if (!(input = malloc(in_len + 1)))
        goto done;
    snprintf(input, in_len + 1, "%s.%s", h64, c64);

    size_t sig_len = 0;
    if (!(md = EVP_MD_CTX_new()) ||
        EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, NULL, &sig_len, (const unsigned char *)input, in_len) != 1 ||
        !(sig = malloc(sig_len)) ||
        EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)input, in_len) != 1) {
        rc = sig ? CP_ERR_SECRET : CP_ERR_NOMEM;
        goto done;
    }
    if (!(s64 = b64url_dup(sig, sig_len)))
        goto done;
    size_t total = in_len + 1 + strlen(s64) + 1;
    char *jwt = malloc(total);
    if (!jwt)
        goto done;
    snprintf(jwt, total, "%s.%s", input, s64);
    *out = jwt;
    rc = 0;
done:
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    free(claims_json);
    free(h64);
    free(c64);
    free(input);
    free(sig);
    free(s64);
    return rc;
}
