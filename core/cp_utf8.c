/* cp_utf8.c - strict UTF-8 validator following Unicode table 3-7 (well-formed byte sequences). */
#include "cp_utf8.h"

#include <stdint.h>
#include <string.h>

size_t cp_utf8_check(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        /* ASCII fast path, 8 bytes at a time: most of a call event is ASCII. */
        while (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull)
                break;
            i += 8;
        }
        if (i >= len)
            break;
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c >= 0xC2 && c <= 0xDF) {
            n = 2;
        } else if (c == 0xE0) {
            n = 3;
            lo = 0xA0; /* no overlong 3-byte forms */
        } else if (c >= 0xE1 && c <= 0xEC) {
            n = 3;
        } else if (c == 0xED) {
            n = 3;
            hi = 0x9F; /* no UTF-16 surrogates U+D800..U+DFFF */
        } else if (c >= 0xEE && c <= 0xEF) {
            n = 3;
        } else if (c == 0xF0) {
            n = 4;
            lo = 0x90; /* no overlong 4-byte forms */
        } else if (c >= 0xF1 && c <= 0xF3) {
            n = 4;
        } else if (c == 0xF4) {
            n = 4;
            hi = 0x8F; /* nothing above U+10FFFF */
        } else {
            return i; /* 0x80..0xC1 (continuation or overlong lead), 0xF5..0xFF */
        }
        if (len - i < n)
            return i;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t k = 2; k < n; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
        i += n;
    }
    return len;
}

bool cp_utf8_valid(const char *s, size_t len)
{
    return cp_utf8_check(s, len) == len;
}
