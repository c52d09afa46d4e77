/* cp_event_json.c - deterministic one-line JSON rendering of a canonical event (golden files,
 * debugging). */
#include "cp_event.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cp_time.h"

/* Writes into a fixed buffer; once it overflows every later write is a no-op
 * and the caller sees CP_ERR_TOOBIG at the end (one check instead of many). */
struct jw {
    char *buf;
    size_t cap; /* usable bytes, the NUL excluded */
    size_t len;
    bool full;
};

static void put(struct jw *w, const char *s, size_t n)
{
    if (w->full || w->cap - w->len < n) {
        w->full = true;
        return;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static void put_c(struct jw *w, char c)
{
    put(w, &c, 1);
}

/* RFC 8259 escaping: quote, backslash and C0 controls; DEL and non-ASCII stay raw. */
static void put_jstr(struct jw *w, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    put_c(w, '"');
    const char *run = s;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        put(w, run, (size_t)(p - run));
        run = p + 1;
        switch (c) {
        case '"':
            put(w, "\\\"", 2);
            break;
        case '\\':
            put(w, "\\\\", 2);
            break;
        case '\b':
            put(w, "\\b", 2);
            break;
        case '\f':
            put(w, "\\f", 2);
            break;
        case '\n':
            put(w, "\\n", 2);
            break;
        case '\r':
            put(w, "\\r", 2);
            break;
        case '\t':
            put(w, "\\t", 2);
            break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(w, u, sizeof u);
        }
        }
    }
    put(w, run, strlen(run));
    put_c(w, '"');
}

static void put_key(struct jw *w, bool *first, const char *k)
{
    if (!*first) put_c(w, ',');
    *first = false;
    put_c(w, '"');
    put(w, k, strlen(k));
    put(w, "\":", 2);
}

static void put_int(struct jw *w, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRId64, v);
    put(w, tmp, (size_t)n);
}

static void put_time(struct jw *w, int64_t us)
{
    char tmp[48];
    size_t n = cp_time_format_iso(us, tmp, sizeof tmp);
    if (n == 0 || n >= sizeof tmp) {
        put_int(w, us); /* outside what ISO rendering supports: show the raw number */
        return;
    }
    put_c(w, '"');
    put(w, tmp, n);
    put_c(w, '"');
}

int cp_event_to_json(const struct cp_event *ev, char *buf, size_t cap)
{
    if (!buf || cap == 0) return CP_ERR_TOOBIG;
    struct jw w = {buf, cap - 1, 0, false};
    bool first = true;

    put_c(&w, '{');
    put_key(&w, &first, "v");
    put_int(&w, ev->v);
#define S(f)                                                                                       \
    if (ev->f) {                                                                                   \
        put_key(&w, &first, #f);                                                                   \
        put_jstr(&w, ev->f);                                                                       \
    }
#define T(f)                                                                                       \
    if (ev->f != 0) {                                                                              \
        put_key(&w, &first, #f);                                                                   \
        put_time(&w, ev->f);                                                                       \
    }
#define E(f, name)                                                                                 \
    if (name(ev->f)) {                                                                             \
        put_key(&w, &first, #f);                                                                   \
        put_jstr(&w, name(ev->f));                                                                 \
    }
#define D(f)                                                                                       \
    if (ev->f != -1) {                                                                             \
        put_key(&w, &first, #f);                                                                   \
        put_int(&w, ev->f);                                                                        \
    }
    S(event_id)
    S(org)
    S(pbx)
    S(src)
    S(call)
    S(leg)
    S(parent)
    E(kind, cp_kind_name)
    T(ts)
    T(recv)
    T(start)
    T(answer)
    T(end)
    E(dir, cp_dir_name)
    S(from)
    S(from_name)
    S(to)
    S(final_to)
    S(queue)
    S(agent)
    S(agent_name)
    E(disp, cp_disp_name)
    E(qout, cp_qout_name)
    S(wrapup)
    E(side, cp_side_name)
    if (ev->q850 != 0) {
        put_key(&w, &first, "q850");
        put_int(&w, ev->q850);
    }
    S(native)
    D(ring)
    D(wait)
    D(talk)
    D(hold)
    D(acw)
#undef S
#undef T
#undef E
#undef D
    uint32_t nx = ev->nx < CP_EVENT_X_MAX ? ev->nx : CP_EVENT_X_MAX;
    if (nx > 0) {
        put_key(&w, &first, "x");
        put_c(&w, '{');
        for (uint32_t i = 0; i < nx; i++) {
            if (i) put_c(&w, ',');
            put_jstr(&w, ev->x[i].key ? ev->x[i].key : "");
            put_c(&w, ':');
            if (ev->x[i].val)
                put_jstr(&w, ev->x[i].val);
            else
                put(&w, "null", 4);
        }
        put_c(&w, '}');
    }
    put_c(&w, '}');
    buf[w.full ? 0 : w.len] = '\0';
    if (w.full) return CP_ERR_TOOBIG;
    return (int)w.len;
}
