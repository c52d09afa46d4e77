/* srcutil.c - small pure helpers shared by vendor source formats (see srcutil.h). */
#include "srcutil.h"

#include <string.h>
#include <strings.h>

#include "cp_utf8.h"

/* Length of the well-formed UTF-8 sequence at s[0..n), 0 when it is not one
 * (or is NUL). */
static size_t seq_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c == 0)
        return 0;
    if (c < 0x80)
        return 1;
    size_t need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < need)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return need;
}

char *cp_srcutil_text(struct cp_arena *arena, const char *s, size_t len, size_t max, bool *oom)
{
    if (len == 0)
        return NULL;
    /* Worst case every byte becomes the 3-byte U+FFFD; the cut at max bounds it. */
    size_t cap = len * 3 < max ? len * 3 : max;
    char *d = cp_arena_alloc(arena, cap + 1);
    if (!d) {
        *oom = true;
        return NULL;
    }
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t k = seq_len(u + i, len - i);
        const char *src = k ? s + i : "\xEF\xBF\xBD";
        size_t n = k ? k : 3;
        if (o + n > cap)
            break;
        memcpy(d + o, src, n);
        o += n;
        i += k ? k : 1;
    }
    d[o] = '\0';
    return o ? d : NULL;
}

char *cp_srcutil_id(struct cp_arena *arena, const char *s, size_t len, size_t max, bool *bad,
                    bool *oom)
{
    if (len == 0)
        return NULL;
    if (len > max || memchr(s, '\0', len) || !cp_utf8_valid(s, len)) {
        *bad = true;
        return NULL;
    }
    char *d = cp_arena_strndup(arena, s, len);
    if (!d)
        *oom = true;
    return d;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

char *cp_srcutil_urldecode(struct cp_arena *arena, const char *s, size_t len, bool plus_space,
                           size_t *out_len)
{
    char *d = cp_arena_alloc(arena, len + 1);
    if (!d)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            d[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else if (c == '+' && plus_space) {
            d[o++] = ' ';
        } else {
            d[o++] = c;
        }
    }
    d[o] = '\0';
    *out_len = o;
    return d;
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

char *cp_srcutil_base64(struct cp_arena *arena, const char *s, size_t len, size_t *out_len)
{
    char *d = cp_arena_alloc(arena, len / 4 * 3 + 4);
    if (!d)
        return NULL;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0, pad = 0, nchars = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = b64val(c);
        if (v < 0 || pad)
            return NULL; /* a bad character, or data after padding */
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        nchars++;
        if (bits >= 8) {
            bits -= 8;
            d[o++] = (char)((acc >> bits) & 0xFF);
        }
    }
    /* 1 leftover character cannot encode a byte; padding only completes a quantum. */
    if (nchars % 4 == 1 || pad > 2 || (pad && (nchars + pad) % 4 != 0))
        return NULL;
    d[o] = '\0';
    *out_len = o;
    return d;
}

bool cp_srcutil_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    if (len == 0 || len > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned dgt = (unsigned)(s[i] - '0');
        if (dgt > 9)
            return false;
        if (v > (UINT64_MAX - dgt) / 10)
            return false;
        v = v * 10 + dgt;
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

bool cp_srcutil_eq(const char *s, size_t len, const char *lit)
{
    return strlen(lit) == len && strncasecmp(s, lit, len) == 0;
}
