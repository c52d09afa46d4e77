/* twilio_form.c - application/x-www-form-urlencoded decoding for the Twilio webhook formats. */
#include "twilio_form.h"

#include <string.h>

#include "cp_err.h"
#include "cp_utf8.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes s[0..n) into a fresh arena string; *out_len gets its length. */
static int decode(const char *s, size_t n, struct cp_arena *arena, const char **out,
                  size_t *out_len)
{
    char *d = cp_arena_alloc(arena, n + 1);
    if (!d) return CP_ERR_NOMEM;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            d[o++] = ' ';
        } else if (s[i] == '%') {
            if (i + 2 >= n) return CP_ERR_PARSE; /* a truncated escape */
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0) return CP_ERR_PARSE;
            d[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            d[o++] = s[i];
        }
    }
    d[o] = '\0';
    *out = d;
    *out_len = o;
    return 0;
}

int cp_twilio_form_parse(const char *body, size_t len, bool strict, struct cp_arena *arena,
                         struct cp_twilio_form *form, const char **why, const char **bad_name)
{
    form->n = 0;
    *bad_name = NULL;
    size_t i = 0;
    while (i < len) {
        const char *amp = memchr(body + i, '&', len - i);
        size_t end = amp ? (size_t)(amp - body) : len;
        if (end > i) {
            if (form->n == CP_TWILIO_FORM_MAX) {
                *why = "too many fields";
                return CP_ERR_TOOBIG;
            }
            const char *seg = body + i, *eq = memchr(seg, '=', end - i);
            size_t nlen = eq ? (size_t)(eq - seg) : end - i;
            struct cp_twilio_pair *p = &form->p[form->n];
            int rc = decode(seg, nlen, arena, &p->name, &p->name_len);
            if (rc == 0)
                rc = eq ? decode(eq + 1, end - i - nlen - 1, arena, &p->val, &p->val_len)
                        : decode("", 0, arena, &p->val, &p->val_len);
            if (rc < 0) {
                *why = rc == CP_ERR_NOMEM ? "out of memory" : "bad percent-encoding";
                return rc;
            }
            if (strict) {
                if (memchr(p->name, '\0', p->name_len) || memchr(p->val, '\0', p->val_len) ||
                    !cp_utf8_valid(p->name, p->name_len) || !cp_utf8_valid(p->val, p->val_len)) {
                    *why = "invalid utf-8";
                    *bad_name =
                        cp_utf8_valid(p->name, p->name_len) && !memchr(p->name, '\0', p->name_len)
                            ? p->name
                            : NULL;
                    return CP_ERR_UTF8;
                }
                for (size_t k = 0; k < form->n; k++)
                    if (form->p[k].name_len == p->name_len &&
                        memcmp(form->p[k].name, p->name, p->name_len) == 0) {
                        *why = "duplicate key";
                        *bad_name = p->name;
                        return CP_ERR_PARSE;
                    }
            }
            form->n++;
        }
        i = end + 1;
    }
    return 0;
}

const struct cp_twilio_pair *cp_twilio_form_get(const struct cp_twilio_form *form, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < form->n; i++)
        if (form->p[i].name_len == n && memcmp(form->p[i].name, name, n) == 0) return &form->p[i];
    return NULL;
}
