/* ast_common.c - helpers shared by the Asterisk formats: strings, numbers, times, emit. */
#include "ast_common.h"

#include <string.h>

#include "cp_err.h"
#include "cp_event_id.h"
#include "cp_time.h"
#include "cp_utf8.h"

static const char REPL[3] = {(char)0xEF, (char)0xBF, (char)0xBD}; /* U+FFFD */

/* Copies whole characters of a valid run into d while they fit in `room`. */
static size_t copy_valid(char *d, const char *s, size_t n, size_t room)
{
    if (n <= room) {
        memcpy(d, s, n);
        return n;
    }
    size_t k = room;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
        k--; /* s[k] would be a continuation byte: cut before its lead byte */
    memcpy(d, s, k);
    return k;
}

char *cp_ast_str(struct cp_arena *arena, const char *s, size_t len, size_t max, bool *oom)
{
    if (len == 0) return NULL;
    size_t cap = len * 3 < max ? len * 3 : max;
    char *d = cp_arena_alloc(arena, cap + 1);
    if (!d) {
        *oom = true;
        return NULL;
    }
    size_t o = 0, i = 0;
    while (i < len && o < cap) {
        const char *nul = memchr(s + i, '\0', len - i);
        size_t run_end = nul ? (size_t)(nul - s) : len;
        size_t ok = cp_utf8_check(s + i, run_end - i);
        size_t w = copy_valid(d + o, s + i, ok, cap - o);
        o += w;
        if (w < ok) break; /* full */
        i += ok;
        if (i < len) {
            if (cap - o < 3) break;
            memcpy(d + o, REPL, 3);
            o += 3;
            i++; /* one replacement per bad byte: deterministic and simple */
        }
    }
    d[o] = '\0';
    return o ? d : NULL;
}

int cp_ast_int(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (len > 0 && s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == len) return CP_ERR_PARSE;
    uint64_t v = 0;
    for (; i < len; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (d > 9) return CP_ERR_PARSE;
        if (v > (UINT64_C(1) << 62) / 10) return CP_ERR_RANGE;
        v = v * 10 + d;
    }
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

int cp_ast_secs(const char *s, size_t len, int32_t *out)
{
    if (len == 0) {
        *out = -1;
        return 0;
    }
    int64_t v;
    int rc = cp_ast_int(s, len, &v);
    if (rc) return rc;
    if (v < 0 || v > INT32_MAX) return CP_ERR_RANGE;
    *out = (int32_t)v;
    return 0;
}

int cp_ast_ms_to_secs(const char *s, size_t len, int32_t *out)
{
    if (len == 0) {
        *out = -1;
        return 0;
    }
    int64_t v;
    int rc = cp_ast_int(s, len, &v);
    if (rc) return rc;
    if (v < 0 || v / 1000 >= INT32_MAX) return CP_ERR_RANGE;
    *out = (int32_t)((v + 500) / 1000);
    return 0;
}

int cp_ast_epoch(const char *s, size_t len, int64_t *out_us)
{
    const char *dot = memchr(s, '.', len);
    size_t ilen = dot ? (size_t)(dot - s) : len;
    if (ilen == 0 || ilen > 11 || s[0] == '-') return CP_ERR_PARSE;
    int64_t sec;
    if (cp_ast_int(s, ilen, &sec)) return CP_ERR_PARSE;
    int64_t us = 0;
    if (dot) {
        size_t flen = len - ilen - 1;
        if (flen == 0 || flen > 9) return CP_ERR_PARSE;
        int64_t scale = 100000;
        for (size_t i = 0; i < flen; i++) {
            unsigned d = (unsigned)(dot[1 + i] - '0');
            if (d > 9) return CP_ERR_PARSE;
            us += d * scale; /* digits past microseconds add 0 */
            scale /= 10;
        }
    }
    int64_t v = sec * 1000000 + us;
    if (v <= 0 || v > CP_EVENT_TIME_MAX) return CP_ERR_RANGE;
    *out_us = v;
    return 0;
}

static int num(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (d > 9) return -1;
        v = v * 10 + (int)d;
    }
    *out = v;
    return 0;
}

int cp_ast_local_time(const char *s, size_t len, const char *tz, int64_t *out_us, const char **why)
{
    int y, mo, d, h, mi, se;
    /* 0123456789012345678 */
    /* YYYY-MM-DD HH:MM:SS */
    if (len < 19 || s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') || s[13] != ':' ||
        s[16] != ':' || num(s, 4, &y) || num(s + 5, 2, &mo) || num(s + 8, 2, &d) ||
        num(s + 11, 2, &h) || num(s + 14, 2, &mi) || num(s + 17, 2, &se)) {
        *why = "bad time";
        return CP_ERR_PARSE;
    }
    int64_t frac = 0;
    if (len > 19) {
        if (s[19] != '.' || len == 20 || len > 26) {
            *why = "bad time";
            return CP_ERR_PARSE;
        }
        int f;
        if (num(s + 20, len - 20, &f)) {
            *why = "bad time";
            return CP_ERR_PARSE;
        }
        frac = f;
        for (size_t i = len - 20; i < 6; i++)
            frac *= 10;
    }
    if (!tz) {
        *why = "no time zone configured";
        return CP_ERR_CONFIG;
    }
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) {
        *why = "time out of range";
        return CP_ERR_RANGE;
    }
    int64_t base;
    int rc = cp_time_local_to_utc(tz, y, mo, d, h, mi, se, &base);
    if (rc == CP_ERR_NOTFOUND) {
        *why = "unknown time zone";
        return rc;
    }
    if (rc) {
        *why = "local time does not exist in the zone"; /* the hour skipped at DST start */
        return CP_ERR_RANGE;
    }
    int64_t v = base + frac;
    if (v <= 0 || v > CP_EVENT_TIME_MAX) {
        *why = "time out of range";
        return CP_ERR_RANGE;
    }
    *out_us = v;
    return 0;
}

static bool eq(const char *s, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

int cp_ast_disp(const char *s, size_t len, enum cp_disp *out)
{
    static const struct {
        const char *name;
        enum cp_disp d;
    } map[] = {
        {"ANSWERED", CP_DISP_ANSWERED},
        {"NO ANSWER", CP_DISP_NO_ANSWER},
        {"BUSY", CP_DISP_BUSY},
        {"FAILED", CP_DISP_FAILED},
        {"CONGESTION", CP_DISP_CONGESTION},
        {"CANCEL", CP_DISP_CANCELED},
    };
    for (size_t i = 0; i < CP_ARRAY_LEN(map); i++)
        if (eq(s, len, map[i].name)) {
            *out = map[i].d;
            return 0;
        }
    return CP_ERR_PARSE;
}

static void trim(const char **s, size_t *len)
{
    while (*len > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

void cp_ast_clid(const char *s, size_t len, const char **name, size_t *name_len,
                 const char **num_out, size_t *num_len)
{
    *name = s;
    *name_len = 0;
    *num_out = s;
    *num_len = 0;
    trim(&s, &len);
    /* The number is the last <...>; without one, the whole text is the number. */
    if (len >= 2 && s[len - 1] == '>') {
        size_t lt = len - 1;
        while (lt > 0 && s[lt - 1] != '<')
            lt--;
        if (lt > 0) {
            *num_out = s + lt;
            *num_len = len - 1 - lt;
            const char *n = s;
            size_t nl = lt - 1;
            trim(&n, &nl);
            if (nl >= 2 && n[0] == '"' && n[nl - 1] == '"') {
                n++;
                nl -= 2;
            }
            *name = n;
            *name_len = nl;
            return;
        }
    }
    *num_out = s;
    *num_len = len;
}

bool cp_ast_x(struct cp_event *ev, struct cp_arena *arena, const char *key, const char *val,
              size_t len)
{
    if (len == 0 || ev->nx >= CP_EVENT_X_MAX) return true;
    bool oom = false;
    char *v = cp_ast_str(arena, val, len, CP_EVENT_X_STR_MAX, &oom);
    if (oom) return false;
    if (v) {
        ev->x[ev->nx].key = key;
        ev->x[ev->nx].val = v;
        ev->nx++;
    }
    return true;
}

int cp_ast_emit(const struct cp_source_ctx *ctx, struct cp_emit *out, struct cp_event *ev,
                const char *src, const char *const *ids, size_t n, const char *rec, size_t len)
{
    ev->org = ctx->org;
    ev->pbx = ctx->pbx;
    ev->src = src;
    ev->recv = ctx->recv_us;
    int rc = cp_event_derive_id(ev, ctx->arena, ids, n);
    if (rc < 0) {
        out->reject(out, 0, rec, len,
                    rc == CP_ERR_NOMEM ? "out of memory" : "could not derive event_id");
        return rc;
    }
    const char *why = NULL;
    rc = cp_event_validate(ev, &why);
    if (rc < 0) {
        out->reject(out, 0, rec, len, why ? why : "invalid event");
        return rc;
    }
    rc = out->event(out, ev);
    return rc < 0 ? rc : 1;
}
