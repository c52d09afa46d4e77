/* asterisk_cdr_csv.c - the asterisk-cdr-csv source format: one Master.csv line = one cdr event. */
#include "asterisk_cdr_csv.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cp_err.h"
#include "../asterisk_common/ast_common.h"

#define SRC_NAME  "asterisk-cdr-csv"
#define BASE_COLS 16
#define MAX_COLS  32

enum {
    C_ACCOUNT,
    C_SRC,
    C_DST,
    C_DCONTEXT,
    C_CLID,
    C_CHANNEL,
    C_DSTCHANNEL,
    C_LASTAPP,
    C_LASTDATA,
    C_START,
    C_ANSWER,
    C_END,
    C_DURATION,
    C_BILLSEC,
    C_DISP,
    C_AMA
};

enum layout { L_AUTO = -1, L_NONE = 0, L_UNIQUEID = 1, L_USERFIELD = 2, L_BOTH = 3 };

struct csv_state {
    int layout;
};

static void *csv_state_create(void)
{
    struct csv_state *st = calloc(1, sizeof *st);
    if (st) st->layout = L_AUTO;
    return st;
}

static void csv_state_destroy(void *state)
{
    free(state);
}

int cp_ast_cdr_csv_set_columns(void *state, const char *spec)
{
    static const struct {
        const char *name;
        int layout;
    } specs[] = {{"auto", L_AUTO},
                 {"none", L_NONE},
                 {"uniqueid", L_UNIQUEID},
                 {"userfield", L_USERFIELD},
                 {"uniqueid,userfield", L_BOTH}};
    struct csv_state *st = state;
    for (size_t i = 0; spec && i < CP_ARRAY_LEN(specs); i++)
        if (strcmp(spec, specs[i].name) == 0) {
            if (st) st->layout = specs[i].layout;
            return 0;
        }
    return CP_ERR_CONFIG;
}

struct col {
    const char *s; /* raw bytes (inside the quotes for a quoted field) */
    size_t n;
    bool quoted, esc; /* esc: holds doubled quotes, unescape before use */
};

/* Splits one line; returns the column count or a negative code with *why. */
static int split(const char *p, size_t len, struct col *c, const char **why)
{
    int n = 0;
    size_t i = 0;
    for (;;) {
        if (n == MAX_COLS) {
            *why = "too many columns";
            return CP_ERR_TOOBIG;
        }
        struct col *f = &c[n++];
        memset(f, 0, sizeof *f);
        if (i < len && p[i] == '"') {
            f->quoted = true;
            size_t start = ++i;
            for (;;) {
                if (i >= len) {
                    *why = "unterminated quote";
                    return CP_ERR_PARSE;
                }
                if (p[i] == '"') {
                    if (i + 1 < len && p[i + 1] == '"') {
                        f->esc = true;
                        i += 2;
                        continue;
                    }
                    break;
                }
                i++;
            }
            f->s = p + start;
            f->n = i - start;
            i++; /* the closing quote */
            if (i < len && p[i] != ',') {
                *why = "malformed csv";
                return CP_ERR_PARSE;
            }
        } else {
            const char *comma = memchr(p + i, ',', len - i);
            size_t e = comma ? (size_t)(comma - p) : len;
            f->s = p + i;
            f->n = e - i;
            i = e;
        }
        if (i >= len) return n;
        i++; /* the comma */
    }
}

struct cv {
    const struct cp_source_ctx *ctx;
    struct col *c;
    int nc;
    bool oom;
    const char *reason;
    int code;
};

static void bad(struct cv *v, int code, const char *reason)
{
    if (!v->reason) {
        v->reason = reason;
        v->code = code;
    }
}

/* The column's text with doubled quotes undone, in the arena (NUL-terminated). */
static struct col text(struct cv *v, int i)
{
    struct col f = v->c[i];
    if (!f.esc) return f;
    char *d = cp_arena_alloc(v->ctx->arena, f.n + 1);
    if (!d) {
        v->oom = true;
        return (struct col){f.s, 0, true, false};
    }
    size_t o = 0;
    for (size_t k = 0; k < f.n; k++) {
        d[o++] = f.s[k];
        if (f.s[k] == '"') k++;
    }
    d[o] = '\0';
    return (struct col){d, o, true, false};
}

static const char *str(struct cv *v, int i, size_t max)
{
    if (i < 0) return NULL;
    struct col f = text(v, i);
    return cp_ast_str(v->ctx->arena, f.s, f.n, max, &v->oom);
}

static void x(struct cv *v, struct cp_event *ev, const char *key, int i)
{
    if (i < 0) return;
    struct col f = text(v, i);
    if (!cp_ast_x(ev, v->ctx->arena, key, f.s, f.n)) v->oom = true;
}

static void time_col(struct cv *v, int i, int64_t *dst, bool required, const char *missing)
{
    struct col f = v->c[i];
    if (f.n == 0) {
        if (required) bad(v, CP_ERR_MISSING, missing);
        return;
    }
    const char *why = "bad time";
    int rc = cp_ast_local_time(f.s, f.n, v->ctx->tz, dst, &why);
    if (rc) bad(v, rc, why);
}

static int csv_parse(void *state, const struct cp_source_ctx *ctx, const char *rec, size_t len,
                     struct cp_emit *out)
{
    struct csv_state *st = state;
    while (len > 0 && (rec[len - 1] == '\n' || rec[len - 1] == '\r'))
        len--;
    if (len == 0) return 0;
    struct col c[MAX_COLS];
    const char *why = NULL;
    int nc = split(rec, len, c, &why);
    if (nc < 0) {
        out->reject(out, 0, rec, len, why);
        return nc;
    }
    /* Optional columns after amaflags: [uniqueid] [userfield] [peeraccount linkedid sequence] */
    int layout = st ? st->layout : L_AUTO;
    int extra = nc - BASE_COLS;
    if (layout == L_AUTO) {
        switch (extra) {
        case 0:
            layout = L_NONE;
            break;
        case 2:
            layout = L_BOTH;
            break;
        case 3:
            layout = L_NONE;
            break;
        case 5:
            layout = L_BOTH;
            break;
        case 1:
        case 4:
            out->reject(out, 0, rec, len,
                        "ambiguous column count (uniqueid or userfield): set cdr_columns");
            return CP_ERR_CONFIG;
        default:
            break;
        }
    }
    int nopt = layout == L_AUTO ? -1 : (layout & 1) + ((layout >> 1) & 1);
    bool newcols = extra == nopt + 3;
    if (layout == L_AUTO || (extra != nopt && !newcols)) {
        out->reject(out, 0, rec, len, "unexpected column count");
        return CP_ERR_PARSE;
    }
    int i_uid = -1, i_user = -1, i_peer = -1, i_link = -1, i_seq = -1, k = BASE_COLS;
    if (layout & L_UNIQUEID) i_uid = k++;
    if (layout & L_USERFIELD) i_user = k++;
    if (newcols) {
        i_peer = k++;
        i_link = k++;
        i_seq = k++;
    }

    struct cv v = {ctx, c, nc, false, NULL, 0};
    struct cp_event ev;
    cp_event_init(&ev);
    ev.kind = CP_KIND_CDR;
    time_col(&v, C_START, &ev.start, true, "missing: start");
    time_col(&v, C_ANSWER, &ev.answer, false, NULL);
    time_col(&v, C_END, &ev.end, true, "missing: end");
    ev.ts = ev.end;
    for (int id = 0; id < 2; id++) {
        int i = id ? i_link : i_uid;
        if (i >= 0 && c[i].n > CP_EVENT_STR_MAX)
            bad(&v, CP_ERR_TOOBIG, id ? "too long: linkedid" : "too long: uniqueid");
    }
    ev.leg = str(&v, i_uid, CP_EVENT_STR_MAX);
    ev.call = str(&v, i_link, CP_EVENT_STR_MAX);
    if (!ev.call) ev.call = ev.leg;
    if (!ev.call && c[C_CHANNEL].n > 0 && c[C_START].n > 0) {
        /* Without loguniqueid nothing native names the call: channel + start time is unique
         * per PBX and stable across re-reads of the file (it correlates with nothing else). */
        struct col ch = text(&v, C_CHANNEL);
        size_t n = ch.n + 1 + c[C_START].n;
        char *id = cp_arena_alloc(ctx->arena, n + 1);
        if (id) {
            memcpy(id, ch.s, ch.n);
            id[ch.n] = '@';
            memcpy(id + ch.n + 1, c[C_START].s, c[C_START].n);
            ev.call = cp_ast_str(ctx->arena, id, n, CP_EVENT_STR_MAX, &v.oom);
        } else {
            v.oom = true;
        }
    }
    if (!ev.call) bad(&v, CP_ERR_MISSING, "missing: uniqueid");
    int64_t dur = -1;
    if (c[C_DURATION].n && cp_ast_int(c[C_DURATION].s, c[C_DURATION].n, &dur) != 0)
        bad(&v, CP_ERR_PARSE, "bad duration");
    if (cp_ast_secs(c[C_BILLSEC].s, c[C_BILLSEC].n, &ev.talk) != 0)
        bad(&v, CP_ERR_PARSE, "bad billsec");
    struct col dp = text(&v, C_DISP);
    if (cp_ast_disp(dp.s, dp.n, &ev.disp) != 0)
        ev.disp = CP_DISP_UNKNOWN; /* kept verbatim in native, not guessed */
    ev.native = str(&v, C_DISP, CP_EVENT_NATIVE_MAX);
    ev.from = str(&v, C_SRC, CP_EVENT_STR_MAX);
    ev.to = str(&v, C_DST, CP_EVENT_STR_MAX);
    struct col cl = text(&v, C_CLID);
    const char *name, *num;
    size_t nl, ul;
    cp_ast_clid(cl.s, cl.n, &name, &nl, &num, &ul);
    ev.from_name = cp_ast_str(ctx->arena, name, nl, CP_EVENT_STR_MAX, &v.oom);
    if (!ev.from) ev.from = cp_ast_str(ctx->arena, num, ul, CP_EVENT_STR_MAX, &v.oom);
    x(&v, &ev, "duration", C_DURATION);
    x(&v, &ev, "accountcode", C_ACCOUNT);
    x(&v, &ev, "dcontext", C_DCONTEXT);
    x(&v, &ev, "channel", C_CHANNEL);
    x(&v, &ev, "dst_channel", C_DSTCHANNEL);
    x(&v, &ev, "last_app", C_LASTAPP);
    x(&v, &ev, "last_data", C_LASTDATA);
    x(&v, &ev, "amaflags", C_AMA);
    x(&v, &ev, "userfield", i_user);
    x(&v, &ev, "peeraccount", i_peer);
    x(&v, &ev, "sequence", i_seq);
    if (v.oom) bad(&v, CP_ERR_NOMEM, "out of memory");
    if (v.reason) {
        out->reject(out, 0, rec, len, v.reason);
        return v.code;
    }
    /* One call can have several CDR rows (one per leg pair): the row is named by its leg,
     * channels, start and sequence; a re-read line gets the same id. */
    const char *ids[6] = {ev.call,
                          ev.leg,
                          str(&v, C_CHANNEL, CP_EVENT_NATIVE_MAX),
                          str(&v, C_DSTCHANNEL, CP_EVENT_NATIVE_MAX),
                          str(&v, C_START, CP_EVENT_NATIVE_MAX),
                          str(&v, i_seq, CP_EVENT_NATIVE_MAX)};
    if (v.oom) {
        out->reject(out, 0, rec, len, "out of memory");
        return CP_ERR_NOMEM;
    }
    return cp_ast_emit(ctx, out, &ev, SRC_NAME, ids, 6, rec, len);
}

const struct cp_source_format cp_source_asterisk_cdr_csv = {
    .name = SRC_NAME,
    .framing = CP_FRAME_LINES,
    .state_create = csv_state_create,
    .state_destroy = csv_state_destroy,
    .parse = csv_parse,
};
