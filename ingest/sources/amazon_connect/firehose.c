/* firehose.c - pure helpers for the Kinesis Data Firehose HTTP endpoint contract. */
#include "firehose.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "cp_err.h"
#include "cp_utf8.h"

static int sha256(const char *s, unsigned char md[32])
{
    unsigned int n = 0;
    if (EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL) != 1 || n != 32)
        return CP_ERR_INTERNAL;
    return 0;
}

int cp_firehose_check_key(const char *configured, const char *header)
{
    if (!configured || !*configured) return CP_ERR_CONFIG;
    if (!header) return CP_ERR_AUTH;
    unsigned char a[32], b[32];
    if (sha256(configured, a) < 0 || sha256(header, b) < 0) return CP_ERR_INTERNAL;
    return CRYPTO_memcmp(a, b, sizeof a) == 0 ? 0 : CP_ERR_AUTH;
}

struct out {
    char *buf;
    size_t cap, len;
    bool over;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->over || o->len + n >= o->cap) {
        o->over = true;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void put_json_str(struct out *o, const char *s)
{
    if (!s) s = "";
    size_t n = strlen(s);
    bool utf8 = cp_utf8_valid(s, n);
    put(o, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(o, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(o, esc, 6);
        } else if (c >= 0x80 && !utf8) {
            put(o, "?", 1);
        } else {
            put(o, (const char *)&c, 1);
        }
    }
    put(o, "\"", 1);
}

int cp_firehose_response(char *buf, size_t cap, const char *request_id, int64_t timestamp_ms,
                         const char *error_message)
{
    struct out o = {buf, cap, 0, false};
    char num[32];
    put(&o, "{\"requestId\":", 13);
    put_json_str(&o, request_id);
    int n = snprintf(num, sizeof num, ",\"timestamp\":%lld", (long long)timestamp_ms);
    put(&o, num, (size_t)n);
    if (error_message) {
        put(&o, ",\"errorMessage\":", 16);
        put_json_str(&o, error_message);
    }
    put(&o, "}", 1);
    if (o.over || cap == 0) return CP_ERR_TOOBIG;
    buf[o.len] = '\0';
    return (int)o.len;
}

int cp_firehose_status(int parse_rc)
{
    if (parse_rc >= 0) return 200;
    return cp_err_is_retriable(parse_rc) ? 503 : 200;
}
