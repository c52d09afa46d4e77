/* util.c - small helpers of the Salesforce emulator: buffers, ids, times, encodings, answers. */
#include <ctype.h>
#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sfemu.h"

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "sfemu: out of memory\n");
        abort();
    }
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) {
        fprintf(stderr, "sfemu: out of memory\n");
        abort();
    }
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s);
    char *d = xmalloc(n + 1);
    memcpy(d, s, n + 1);
    return d;
}

static char *xstrndup(const char *s, size_t n)
{
    char *d = xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static void sb_add(struct sb *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap * 2 : 256;
        while (c < b->len + n + 1)
            c *= 2;
        b->p = xrealloc(b->p, c);
        b->cap = c;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_str(struct sb *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_printf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sb *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        sb_add(b, tmp, (size_t)n);
        return;
    }
    char *big = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_add(b, big, (size_t)n);
    free(big);
}

/* A CSV value always double-quoted, inner quotes doubled (the results' data cells). */
static void sb_csv_quoted(struct sb *b, const char *s)
{
    sb_add(b, "\"", 1);
    for (const char *q = s; *q; q++) {
        if (*q == '"')
            sb_add(b, "\"\"", 2);
        else
            sb_add(b, q, 1);
    }
    sb_add(b, "\"", 1);
}

/* A header name as Salesforce echoes original columns: bare unless it needs quotes. */
static void sb_csv_name(struct sb *b, const char *s)
{
    if (strpbrk(s, ",\"\r\n"))
        sb_csv_quoted(b, s);
    else
        sb_str(b, s);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 2026-01-02T21:33:43.000+0000, the JobInfo and record timestamp shape. */
static void fmt_sf_time(int64_t ms, char out[32])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char b[32];
    strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%.19s.%03d+0000", b, (int)((ms % 1000 + 1000) % 1000));
}

/* Salesforce's 18-character id: 15 case-sensitive characters + a 3-character case checksum. */
static void make_sfid(const char *prefix, uint64_t n, char out[19])
{
    static const char b36[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    static const char sum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    char id[16];
    memcpy(id, prefix, 3);
    memcpy(id + 3, "0Em", 3);
    for (int i = 14; i >= 6; i--) {
        id[i] = b36[n % 36];
        n /= 36;
    }
    id[15] = 0;
    memcpy(out, id, 15);
    for (int i = 0; i < 3; i++) {
        int flags = 0;
        for (int j = 0; j < 5; j++)
            if (id[i * 5 + j] >= 'A' && id[i * 5 + j] <= 'Z')
                flags |= 1 << j;
        out[15 + i] = sum[flags];
    }
    out[18] = 0;
}

static bool is_sfid(const char *s)
{
    size_t n = strlen(s);
    if (n != 15 && n != 18)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]))
            return false;
    return true;
}

/* Compares ids the way Salesforce does: the 15-character case-sensitive part. */
static bool sfid_eq(const char *a, const char *b)
{
    return strlen(a) >= 15 && strlen(b) >= 15 && strncmp(a, b, 15) == 0;
}

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* base64 / base64url decode; NULL on bad input. */
static unsigned char *b64_decode(const char *in, size_t n, bool url, size_t *outlen)
{
    char *s = xmalloc(n + 4);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (url && c == '-')
            c = '+';
        else if (url && c == '_')
            c = '/';
        else if (c == '=')
            break;
        if (!(isalnum((unsigned char)c) || c == '+' || c == '/')) {
            free(s);
            return NULL;
        }
        s[k++] = c;
    }
    if (k % 4 == 1) {
        free(s);
        return NULL;
    }
    size_t pad = (4 - k % 4) % 4;
    for (size_t i = 0; i < pad; i++)
        s[k++] = '=';
    unsigned char *out = xmalloc(k / 4 * 3 + 1);
    int r = EVP_DecodeBlock(out, (unsigned char *)s, (int)k);
    free(s);
    if (r < 0) {
        free(out);
        return NULL;
    }
    *outlen = (size_t)r - pad;
    out[*outlen] = 0;
    return out;
}

static char *b64_encode(const unsigned char *in, size_t n)
{
    char *out = xmalloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    return out;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Finds `key` in an application/x-www-form-urlencoded body; malloc'd decoded value or NULL. */
static char *form_get(const char *body, const char *key)
{
    size_t klen = strlen(key);
    const char *p = body;
    while (p && *p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t nlen = eq ? (size_t)(eq - p) : len;
        if (nlen == klen && memcmp(p, key, klen) == 0) {
            const char *v = eq ? eq + 1 : p + len;
            size_t vlen = eq ? len - nlen - 1 : 0;
            char *out = xmalloc(vlen + 1);
            size_t o = 0;
            for (size_t i = 0; i < vlen; i++) {
                if (v[i] == '+') {
                    out[o++] = ' ';
                } else if (v[i] == '%' && i + 2 < vlen && hexval(v[i + 1]) >= 0 &&
                           hexval(v[i + 2]) >= 0) {
                    out[o++] = (char)(hexval(v[i + 1]) * 16 + hexval(v[i + 2]));
                    i += 2;
                } else {
                    out[o++] = v[i];
                }
            }
            out[o] = 0;
            return out;
        }
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

/* "62.0" -> 620; -1 when malformed. */
static int parse_version(const char *s, size_t n)
{
    int major = 0, minor = 0;
    size_t i = 0;
    if (n == 0 || !isdigit((unsigned char)s[0]))
        return -1;
    while (i < n && isdigit((unsigned char)s[i]) && major < 1000)
        major = major * 10 + (s[i++] - '0');
    if (i + 2 != n || s[i] != '.' || !isdigit((unsigned char)s[i + 1]))
        return -1;
    minor = s[i + 1] - '0';
    return major * 10 + minor;
}

/* ---- answers ----------------------------------------------------------------------------- */

static void respond_body(struct cp_http_req *req, int status, const char *ctype, const char *limit,
                         const char *extra_name, const char *extra_value, const char *body,
                         size_t len)
{
    const char *h[10];
    int k = 0;
    if (ctype) {
        h[k++] = "Content-Type";
        h[k++] = ctype;
    }
    if (limit) {
        h[k++] = "Sforce-Limit-Info";
        h[k++] = limit;
    }
    if (extra_name) {
        h[k++] = extra_name;
        h[k++] = extra_value;
    }
    h[k] = NULL;
    (void)cp_http_respond(req, status, h, body, len);
}

static void respond_json(struct cp_http_req *req, int status, const char *limit, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    respond_body(req, status, "application/json;charset=UTF-8", limit, NULL, NULL, s,
                 s ? strlen(s) : 0);
    free(s);
    json_decref(j);
}

/* The REST error shape: [{"errorCode": ..., "message": ...}]. */
static void respond_error(struct cp_http_req *req, int status, const char *limit,
                          const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void respond_error(struct cp_http_req *req, int status, const char *limit,
                          const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *e = json_object();
    json_object_set_new(e, "errorCode", json_string(code));
    json_object_set_new(e, "message", json_string(msg));
    json_t *a = json_array();
    json_array_append_new(a, e);
    respond_json(req, status, limit, a);
}

/* The OAuth error shape: {"error": ..., "error_description": ...}. */
static void respond_oauth_error(struct cp_http_req *req, int status, const char *error,
                                const char *desc)
{
    json_t *e = json_object();
    json_object_set_new(e, "error", json_string(error));
    json_object_set_new(e, "error_description", json_string(desc));
    respond_json(req, status, NULL, e);
}
