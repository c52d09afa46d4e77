/* cucm.c - the cisco-cucm-cdr source format: Cisco Unified CM CDR flat files to cdr events. */
#include "cucm.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "cp_event_id.h"
#include "cp_utf8.h"

/*
 * A CUCM CDR file (pbx-formats.md section 4) is CSV: line 1 the quoted field
 * names, line 2 their types, then one row per record.  Columns are appended
 * across releases, so every column is found by its header name; unknown
 * columns are ignored.  One file is one record for the engine; each data row
 * is one element (index = data row, 0 = the file's third line), accepted or
 * rejected on its own.
 */

#define SRC_NAME "cisco-cucm-cdr"
#define MAX_COLS 1024 /* CUCM 15 has about 140 */

enum col {
    C_TYPE,
    C_CMID,
    C_CALLID,
    C_CLUSTER,
    C_ORIGLEG,
    C_DESTLEG,
    C_ORIG,
    C_CONNECT,
    C_DISC,
    C_CALLING,
    C_OCALLED,
    C_FINAL,
    C_LASTREDIR,
    C_OCAUSE,
    C_DCAUSE,
    C_DURATION,
    C_ODEV,
    C_DDEV,
    C_OIP,
    C_DIP,
    C_PKID,
    C_HUNT,
    C_FINALUSER,
    C_QUEUED,
    C_QWAIT,
    C__COUNT
};

/* Header names (matched without regard to case: CUCM itself mixes "ID" and "Id").
 * The second name is an alias seen in third-party exports. */
static const char *const col_names[C__COUNT][2] = {
    [C_TYPE] = {"cdrRecordType", NULL},
    [C_CMID] = {"globalCallID_callManagerId", NULL},
    [C_CALLID] = {"globalCallID_callId", NULL},
    [C_CLUSTER] = {"globalCallId_ClusterID", NULL},
    [C_ORIGLEG] = {"origLegCallIdentifier", NULL},
    [C_DESTLEG] = {"destLegIdentifier", "destLegCallIdentifier"},
    [C_ORIG] = {"dateTimeOrigination", NULL},
    [C_CONNECT] = {"dateTimeConnect", NULL},
    [C_DISC] = {"dateTimeDisconnect", NULL},
    [C_CALLING] = {"callingPartyNumber", NULL},
    [C_OCALLED] = {"originalCalledPartyNumber", NULL},
    [C_FINAL] = {"finalCalledPartyNumber", NULL},
    [C_LASTREDIR] = {"lastRedirectDn", NULL},
    [C_OCAUSE] = {"origCause_value", NULL},
    [C_DCAUSE] = {"destCause_value", NULL},
    [C_DURATION] = {"duration", NULL},
    [C_ODEV] = {"origDeviceName", NULL},
    [C_DDEV] = {"destDeviceName", NULL},
    [C_OIP] = {"origIpAddr", NULL},
    [C_DIP] = {"destIpAddr", NULL},
    [C_PKID] = {"pkid", NULL},
    [C_HUNT] = {"huntPilotDN", NULL},
    [C_FINALUSER] = {"finalCalledPartyUnicodeLoginUserID", NULL},
    [C_QUEUED] = {"wasCallQueued", NULL},
    [C_QWAIT] = {"totalWaitTimeInQueue", NULL},
};

/* Without these a row cannot become an event. */
static const enum col required[] = {C_CMID, C_CALLID, C_ORIG, C_CONNECT, C_DISC};

/* ---- CSV ------------------------------------------------------------------ */

struct fld {
    const char *p;
    size_t len;
    bool esc; /* quoted and holds "" pairs to collapse */
};

struct csv {
    const char *s;
    size_t len, pos;
};

static void skip_line(struct csv *c)
{
    const char *nl = c->pos < c->len ? memchr(c->s + c->pos, '\n', c->len - c->pos) : NULL;
    c->pos = nl ? (size_t)(nl - c->s) + 1 : c->len;
}

/*
 * Reads the next non-blank record into f[0..*nf).  Returns 1, 0 at the end,
 * or CP_ERR_PARSE with *why set (the reader then stands after the bad line).
 * start and rlen give the record's raw bytes either way.  Quoted fields may hold
 * commas, "" and line breaks.
 */
static int csv_next(struct csv *c, struct fld *f, size_t max, size_t *nf, const char **start,
                    size_t *rlen, const char **why)
{
    const char *s = c->s;
    for (;;) { /* blank lines are not records */
        if (c->pos >= c->len) return 0;
        if (s[c->pos] == '\n')
            c->pos++;
        else if (s[c->pos] == '\r' && c->pos + 1 < c->len && s[c->pos + 1] == '\n')
            c->pos += 2;
        else
            break;
    }
    size_t begin = c->pos, n = 0;
    int rc = 1;
    for (;;) {
        if (n == max) {
            *why = "too many columns";
            rc = CP_ERR_PARSE;
            skip_line(c);
            break;
        }
        struct fld *x = &f[n++];
        size_t i = c->pos;
        if (i < c->len && s[i] == '"') {
            bool esc = false;
            i++;
            while (i < c->len) {
                if (s[i] == '"') {
                    if (i + 1 < c->len && s[i + 1] == '"') {
                        esc = true;
                        i += 2;
                        continue;
                    }
                    break;
                }
                i++;
            }
            if (i >= c->len) {
                *why = "unterminated quote";
                c->pos = c->len;
                rc = CP_ERR_PARSE;
                break;
            }
            *x = (struct fld){s + c->pos + 1, i - c->pos - 1, esc};
            i++;
            if (i < c->len && s[i] != ',' && s[i] != '\n' && s[i] != '\r') {
                *why = "text after closing quote";
                c->pos = i;
                skip_line(c);
                rc = CP_ERR_PARSE;
                break;
            }
        } else {
            while (i < c->len && s[i] != ',' && s[i] != '\n' && s[i] != '\r')
                i++;
            *x = (struct fld){s + c->pos, i - c->pos, false};
        }
        c->pos = i;
        if (i < c->len && s[i] == ',') {
            c->pos++;
            continue;
        }
        if (i < c->len && s[i] == '\r') c->pos++;
        if (c->pos < c->len && s[c->pos] == '\n')
            c->pos++;
        else if (c->pos < c->len) {
            *why = "stray carriage return";
            skip_line(c);
            rc = CP_ERR_PARSE;
        }
        break;
    }
    *nf = n;
    *start = s + begin;
    size_t end = c->pos;
    while (end > begin && (s[end - 1] == '\n' || s[end - 1] == '\r'))
        end--;
    *rlen = end - begin;
    return rc;
}

/* ---- one parse ---------------------------------------------------------------- */

struct cp {
    const struct cp_source_ctx *ctx;
    struct cp_emit *out;
    int idx[C__COUNT]; /* column of each known field, -1 absent */
    size_t ncols;
    struct fld f[MAX_COLS];
    size_t nf;
    char reason[96];
    int emitted, rejected, first_code;
};

static const struct fld empty_fld = {"", 0, false};

static const struct fld *get(const struct cp *p, enum col c)
{
    return p->idx[c] >= 0 ? &p->f[p->idx[c]] : &empty_fld;
}

static int fail(struct cp *p, int code, const char *what, enum col c)
{
    snprintf(p->reason, sizeof p->reason, "%s: %s", what, col_names[c][0]);
    return code;
}

/* Unsigned decimal; an empty field is 0 (CUCM writes 0, exports sometimes nothing). */
static int get_u64(struct cp *p, enum col c, uint64_t max, uint64_t *out)
{
    const struct fld *x = get(p, c);
    uint64_t v = 0;
    for (size_t i = 0; i < x->len; i++) {
        unsigned d = (unsigned)(x->p[i] - '0');
        if (d > 9) return fail(p, CP_ERR_PARSE, "bad value", c);
        if (v > (max - d) / 10) return fail(p, CP_ERR_RANGE, "out of range", c);
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* A text column as an arena string; empty = NULL.  Invalid UTF-8 rejects the row. */
static int get_str(struct cp *p, enum col c, const char **out)
{
    const struct fld *x = get(p, c);
    *out = NULL;
    if (x->len == 0) return 0;
    if (x->len > CP_EVENT_STR_MAX) return fail(p, CP_ERR_TOOBIG, "too long", c);
    if (memchr(x->p, '\0', x->len)) return fail(p, CP_ERR_UTF8, "nul in string", c);
    if (!cp_utf8_valid(x->p, x->len)) return fail(p, CP_ERR_UTF8, "invalid utf-8", c);
    char *s = cp_arena_alloc(p->ctx->arena, x->len + 1);
    if (!s) {
        snprintf(p->reason, sizeof p->reason, "out of memory");
        return CP_ERR_NOMEM;
    }
    size_t n = 0;
    for (size_t i = 0; i < x->len; i++) {
        s[n++] = x->p[i];
        if (x->esc && x->p[i] == '"' && i + 1 < x->len && x->p[i + 1] == '"') i++;
    }
    s[n] = '\0';
    *out = s;
    return 0;
}

static void add_x(struct cp_event *ev, const char *key, const char *val)
{
    if (val && ev->nx < CP_EVENT_X_MAX) ev->x[ev->nx++] = (struct cp_kv){key, val};
}

static const char *num_text(struct cp *p, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    return cp_arena_strdup(p->ctx->arena, buf);
}

/*
 * CUCM writes IPv4 addresses as signed 32-bit decimals whose bytes are in
 * little-endian order: -1139627840 = 0xBC12A8C0 -> 192.168.18.188.  A value
 * that is not such a number is left out (it is only kept for audit).
 */
static const char *ip_text(struct cp *p, enum col c)
{
    const struct fld *x = get(p, c);
    if (x->len == 0 || x->len > 11) return NULL;
    size_t i = 0;
    bool neg = x->p[0] == '-';
    i = neg;
    if (i == x->len) return NULL;
    int64_t v = 0;
    for (; i < x->len; i++) {
        unsigned d = (unsigned)(x->p[i] - '0');
        if (d > 9) return NULL;
        v = v * 10 + d;
    }
    if (neg) v = -v;
    if (v < INT32_MIN || v > (int64_t)UINT32_MAX || v == 0) return NULL;
    uint32_t u = (uint32_t)v;
    char buf[16];
    snprintf(buf, sizeof buf, "%u.%u.%u.%u", u & 0xff, (u >> 8) & 0xff, (u >> 16) & 0xff, u >> 24);
    return cp_arena_strdup(p->ctx->arena, buf);
}

/*
 * Disposition of a record from its connect time and Q.850 causes (pbx-formats.md
 * section 9).  origCause_value is set when the caller cleared, destCause_value
 * when the callee cleared or refused.  Values above 127 are Cisco-specific
 * (393216 call split, ...) and are not Q.850.
 */
static void disposition(bool connected, uint64_t oc, uint64_t dc, enum cp_disp *disp, int32_t *q850)
{
    uint64_t clearing = oc ? oc : dc;
    if (connected) {
        *disp = CP_DISP_ANSWERED;
        *q850 = clearing >= 1 && clearing <= CP_EVENT_Q850_MAX ? (int32_t)clearing : 0;
        return;
    }
    /* The callee's refusal says more than the caller's normal clearing that follows it. */
    uint64_t cause = dc && dc != 16 ? dc : clearing;
    *q850 = cause >= 1 && cause <= CP_EVENT_Q850_MAX ? (int32_t)cause : 0;
    switch (cause) {
    case 0:
        *disp = CP_DISP_UNKNOWN;
        break;
    case 16:
        *disp = oc ? CP_DISP_CANCELED : CP_DISP_UNKNOWN;
        break;
    case 17: /* user busy */
    case 21: /* call rejected: the callee declined */
        *disp = CP_DISP_BUSY;
        break;
    case 18: /* no user responding */
    case 19: /* no answer from user */
        *disp = CP_DISP_NO_ANSWER;
        break;
    case 34: /* no circuit/channel available */
    case 42: /* switching equipment congestion */
        *disp = CP_DISP_CONGESTION;
        break;
    default:
        *disp = cause <= CP_EVENT_Q850_MAX ? CP_DISP_FAILED : CP_DISP_UNKNOWN;
        break;
    }
}

/* One data row to one cdr event; 0 = emitted, 1 = skipped quietly, < 0 = rejected
 * (p->reason set) or the emitter failed (p->reason empty). */
/*
 * A CDR has no direction field, but CUCM's device names follow a rule the system enforces:
 * an IP phone registers as "SEP" + its MAC, a Jabber client as CSF / BOT / TCT / TAB + a
 * name.  Any other device (gateway, SIP trunk, CTI port) is not a user's phone.  So a call
 * from a non-phone device to anything came in from outside the phone estate (inbound), a
 * phone calling a non-phone went out (outbound), phone to phone is internal.  Without an
 * originating device name we do not know.
 */
static bool is_phone(const char *dev)
{
    static const char *const prefix[] = {"SEP", "CSF", "BOT", "TCT", "TAB"};
    if (!dev)
        return false;
    for (size_t i = 0; i < sizeof prefix / sizeof prefix[0]; i++)
        if (strncmp(dev, prefix[i], 3) == 0 && dev[3] != '\0')
            return true;
    return false;
}

static enum cp_dir direction(const char *odev, const char *ddev)
{
    if (!odev || !*odev)
        return CP_DIR_UNKNOWN;
    if (!is_phone(odev))
        return CP_DIR_INBOUND;
    if (!ddev || !*ddev)
        return CP_DIR_UNKNOWN;
    return is_phone(ddev) ? CP_DIR_INTERNAL : CP_DIR_OUTBOUND;
}

static int row_event(struct cp *p)
{
    struct cp_event ev;
    cp_event_init(&ev);
    int rc;
    uint64_t type = 1, cmid, callid, t_orig, t_conn, t_disc, dur, oc, dc, queued, qwait;

    if (p->nf != p->ncols) {
        snprintf(p->reason, sizeof p->reason, "column count %zu, header has %zu", p->nf, p->ncols);
        return CP_ERR_PARSE;
    }
    if (p->idx[C_TYPE] >= 0 && (rc = get_u64(p, C_TYPE, 255, &type)) < 0) return rc;
    if (type != 1) return 1; /* 0 = start record (old releases), 2 = CMR: not billing records */
    if (get(p, C_CMID)->len == 0) return fail(p, CP_ERR_MISSING, "missing", C_CMID);
    if (get(p, C_CALLID)->len == 0) return fail(p, CP_ERR_MISSING, "missing", C_CALLID);
    if ((rc = get_u64(p, C_CMID, UINT32_MAX, &cmid)) < 0 ||
        (rc = get_u64(p, C_CALLID, UINT32_MAX, &callid)) < 0 ||
        (rc = get_u64(p, C_ORIG, UINT32_MAX, &t_orig)) < 0 ||
        (rc = get_u64(p, C_CONNECT, UINT32_MAX, &t_conn)) < 0 ||
        (rc = get_u64(p, C_DISC, UINT32_MAX, &t_disc)) < 0 ||
        (rc = get_u64(p, C_DURATION, INT32_MAX, &dur)) < 0 ||
        (rc = get_u64(p, C_OCAUSE, UINT32_MAX, &oc)) < 0 ||
        (rc = get_u64(p, C_DCAUSE, UINT32_MAX, &dc)) < 0 ||
        (rc = get_u64(p, C_QUEUED, 1, &queued)) < 0 ||
        (rc = get_u64(p, C_QWAIT, INT32_MAX, &qwait)) < 0)
        return rc;
    if (t_orig == 0) return fail(p, CP_ERR_MISSING, "missing", C_ORIG);
    if (t_disc == 0) return fail(p, CP_ERR_MISSING, "missing", C_DISC);
    if (t_disc < t_orig || (t_conn && (t_conn < t_orig || t_conn > t_disc))) {
        snprintf(p->reason, sizeof p->reason, "times out of order");
        return CP_ERR_RANGE;
    }

    const char *cluster, *orig_leg, *dest_leg;
    if ((rc = get_str(p, C_CLUSTER, &cluster)) < 0 || (rc = get_str(p, C_ORIGLEG, &orig_leg)) < 0 ||
        (rc = get_str(p, C_DESTLEG, &dest_leg)) < 0 || (rc = get_str(p, C_CALLING, &ev.from)) < 0 ||
        (rc = get_str(p, C_OCALLED, &ev.to)) < 0 || (rc = get_str(p, C_FINAL, &ev.final_to)) < 0 ||
        (rc = get_str(p, C_HUNT, &ev.queue)) < 0)
        return rc;
    const char *last_redir, *odev, *ddev, *pkid, *final_user;
    if ((rc = get_str(p, C_LASTREDIR, &last_redir)) < 0 || (rc = get_str(p, C_ODEV, &odev)) < 0 ||
        (rc = get_str(p, C_DDEV, &ddev)) < 0 || (rc = get_str(p, C_PKID, &pkid)) < 0 ||
        (rc = get_str(p, C_FINALUSER, &final_user)) < 0)
        return rc;

    ev.dir = direction(odev, ddev);

    /* The global call id is unique per cluster: cluster:callManagerId:callId. */
    char call[CP_EVENT_STR_MAX + 48];
    if (cluster)
        snprintf(call, sizeof call, "%s:%llu:%llu", cluster, (unsigned long long)cmid,
                 (unsigned long long)callid);
    else
        snprintf(call, sizeof call, "%llu:%llu", (unsigned long long)cmid,
                 (unsigned long long)callid);
    if (strlen(call) > CP_EVENT_STR_MAX) return fail(p, CP_ERR_TOOBIG, "too long", C_CLUSTER);
    ev.call = cp_arena_strdup(p->ctx->arena, call);
    ev.leg = orig_leg;
    ev.org = p->ctx->org;
    ev.pbx = p->ctx->pbx;
    ev.src = SRC_NAME;
    ev.kind = CP_KIND_CDR;
    ev.recv = p->ctx->recv_us;
    ev.start = (int64_t)t_orig * 1000000;
    ev.answer = (int64_t)t_conn * 1000000;
    ev.end = (int64_t)t_disc * 1000000;
    ev.ts = ev.end;
    bool connected = t_conn != 0;
    disposition(connected, oc, dc, &ev.disp, &ev.q850);
    ev.talk = connected ? (int32_t)dur : 0;
    ev.ring = connected && !queued ? (int32_t)(t_conn - t_orig) : -1;
    /* CUCM native call queuing (hunt pilots, release 9+) reports the wait itself;
     * ring is then unknown, since connect - origination includes the wait. */
    if (queued) ev.wait = (int32_t)qwait;
    /* A hunt pilot is CUCM's queue: its answering user is the agent. */
    if (ev.queue && connected) ev.agent = final_user;
    /* Who cleared, from Q.850 causes only: Cisco-specific values (393216 call
     * split, ...) mean the feature ended the record, not a party. */
    bool oq = oc >= 1 && oc <= CP_EVENT_Q850_MAX, dq = dc >= 1 && dc <= CP_EVENT_Q850_MAX;
    if (connected && oq && !dc)
        ev.side = CP_SIDE_CALLER;
    else if (connected && dq && !oc && ev.queue)
        ev.side = CP_SIDE_AGENT;
    else if (ev.disp == CP_DISP_CANCELED)
        ev.side = CP_SIDE_CALLER;
    /* A call held in a hunt pilot's queue: answered there, or abandoned when the
     * caller hung up before any member answered. */
    if (queued && ev.queue) {
        if (connected)
            ev.qout = CP_QOUT_ANSWERED;
        else if (ev.disp == CP_DISP_CANCELED)
            ev.qout = CP_QOUT_ABANDONED;
    }

    char native[64];
    snprintf(native, sizeof native, "orig=%llu dest=%llu", (unsigned long long)oc,
             (unsigned long long)dc);
    ev.native = cp_arena_strdup(p->ctx->arena, native);
    add_x(&ev, "cluster", cluster);
    add_x(&ev, "dest_leg", dest_leg);
    add_x(&ev, "orig_cause", num_text(p, oc));
    add_x(&ev, "dest_cause", num_text(p, dc));
    add_x(&ev, "last_redirect_dn", last_redir);
    add_x(&ev, "orig_device", odev);
    add_x(&ev, "dest_device", ddev);
    add_x(&ev, "orig_ip", ip_text(p, C_OIP));
    add_x(&ev, "dest_ip", ip_text(p, C_DIP));
    add_x(&ev, "pkid", pkid);
    if (!ev.call || !ev.native) {
        snprintf(p->reason, sizeof p->reason, "out of memory");
        return CP_ERR_NOMEM;
    }
    /* The call id plus both leg ids name one record of one call; a re-pushed file
     * yields the same ids. */
    const char *ids[] = {ev.call, orig_leg, dest_leg};
    if ((rc = cp_event_derive_id(&ev, p->ctx->arena, ids, 3)) < 0) {
        snprintf(p->reason, sizeof p->reason, "could not derive id: %s", cp_err_str(rc));
        return rc;
    }
    const char *why = NULL;
    if ((rc = cp_event_validate(&ev, &why)) < 0) {
        snprintf(p->reason, sizeof p->reason, "invalid event: %s", why ? why : "?");
        return rc;
    }
    p->reason[0] = '\0';
    rc = p->out->event(p->out, &ev);
    return rc < 0 ? rc : 0;
}

/* A CMR file: diagnostic records, no dateTimeOrigination, but per-call media metrics. */
static bool header_is_cmr(const struct cp *p)
{
    if (p->idx[C_ORIG] >= 0) return false;
    for (size_t i = 0; i < p->ncols; i++) {
        const struct fld *x = &p->f[i];
        if ((x->len == 12 && strncasecmp(x->p, "varVQMetrics", 12) == 0) ||
            (x->len == 17 && strncasecmp(x->p, "numberPacketsSent", 17) == 0))
            return true;
    }
    return false;
}

static bool types_row_ok(const struct fld *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (f[i].len == 0) return false;
        bool letter = false;
        for (size_t j = 0; j < f[i].len; j++) {
            char ch = f[i].p[j];
            if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z'))
                letter = true;
            else if (!((ch >= '0' && ch <= '9') || ch == '(' || ch == ')' || ch == ' ' ||
                       ch == '_'))
                return false;
        }
        if (!letter) return false;
    }
    return true;
}

static int file_reject(struct cp *p, const char *rec, size_t len, int code, const char *why)
{
    p->out->reject(p->out, 0, rec, len, why);
    return code;
}

static int cucm_parse(void *state, const struct cp_source_ctx *ctx, const char *rec, size_t len,
                      struct cp_emit *out)
{
    (void)state;
    static _Thread_local struct cp p; /* MAX_COLS fields: too big for every stack */
    memset(p.idx, -1, sizeof p.idx);
    p.ctx = ctx;
    p.out = out;
    p.emitted = p.rejected = p.first_code = 0;
    p.reason[0] = '\0';

    /* A UTF-8 byte order mark, which Windows-side tools add when they copy files. */
    if (len >= 3 && memcmp(rec, "\xEF\xBB\xBF", 3) == 0) {
        rec += 3;
        len -= 3;
    }
    struct csv c = {rec, len, 0};
    const char *start, *why = NULL;
    size_t rlen;
    int rc = csv_next(&c, p.f, MAX_COLS, &p.nf, &start, &rlen, &why);
    if (rc == 0) return 0; /* an empty file */
    if (rc < 0) return file_reject(&p, rec, len, CP_ERR_PARSE, "bad header");
    p.ncols = p.nf;
    for (size_t i = 0; i < p.ncols; i++)
        for (int k = 0; k < C__COUNT; k++)
            for (int a = 0; a < 2; a++) {
                const char *nm = col_names[k][a];
                if (nm && p.idx[k] < 0 && strlen(nm) == p.f[i].len &&
                    strncasecmp(nm, p.f[i].p, p.f[i].len) == 0)
                    p.idx[k] = (int)i;
            }
    if (header_is_cmr(&p)) return 0; /* CMR files are recognised and ignored (README) */
    for (size_t i = 0; i < CP_ARRAY_LEN(required); i++)
        if (p.idx[required[i]] < 0) {
            snprintf(p.reason, sizeof p.reason, "missing column: %s", col_names[required[i]][0]);
            return file_reject(&p, rec, len, CP_ERR_MISSING, p.reason);
        }
    rc = csv_next(&c, p.f, MAX_COLS, &p.nf, &start, &rlen, &why);
    if (rc <= 0 || !types_row_ok(p.f, p.nf))
        return file_reject(&p, rec, len, CP_ERR_PARSE, "missing types row");
    if (p.nf != p.ncols)
        return file_reject(&p, rec, len, CP_ERR_PARSE, "types row does not match header");

    for (uint32_t index = 0;; index++) {
        rc = csv_next(&c, p.f, MAX_COLS, &p.nf, &start, &rlen, &why);
        if (rc == 0) break;
        if (rc > 0)
            rc = row_event(&p);
        else
            snprintf(p.reason, sizeof p.reason, "%s", why);
        if (rc == 0) {
            p.emitted++;
            continue;
        }
        if (rc == 1) continue;
        if (p.reason[0] == '\0') return rc; /* the emitter failed: stop */
        out->reject(out, index, start, rlen, p.reason);
        if (p.rejected++ == 0) p.first_code = rc;
        if (rc == CP_ERR_NOMEM) return rc;
    }
    if (p.emitted == 0 && p.rejected > 0) return p.first_code;
    return p.emitted;
}

/* ---- file ledger helpers ---------------------------------------------------------- */

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n > k && strcmp(s + n - k, suffix) == 0;
}

enum cp_cucm_file_kind cp_cucm_file_classify(const char *name)
{
    size_t n = strlen(name);
    if (n == 0) return CP_CUCM_FILE_OTHER;
    /* CUCM writes in-flight files with a "_" prefix; (S)FTP servers commonly
     * upload to a temporary name first. */
    if (name[0] == '_' || name[0] == '.' || ends_with(name, n, ".tmp") ||
        ends_with(name, n, ".part") || ends_with(name, n, ".filepart"))
        return CP_CUCM_FILE_PARTIAL;
    if (strncmp(name, "cdr_", 4) == 0) return CP_CUCM_FILE_CDR;
    if (strncmp(name, "cmr_", 4) == 0) return CP_CUCM_FILE_CMR;
    return CP_CUCM_FILE_OTHER;
}

static void put_u64be(unsigned char *b, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        b[i] = (unsigned char)v;
        v >>= 8;
    }
}

int cp_cucm_file_identity(const char *name, const void *data, size_t len,
                          char out[CP_CUCM_FILE_ID_LEN + 1])
{
    if (!name || (!data && len)) return CP_ERR_INVAL;
    static const char tag[] = "callpipe-cucm-file-v1";
    unsigned char nlen[8], size[8], md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    put_u64be(nlen, strlen(name));
    put_u64be(size, len);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    int ok = m && EVP_DigestInit_ex(m, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(m, tag, sizeof tag) == 1 && EVP_DigestUpdate(m, nlen, 8) == 1 &&
             EVP_DigestUpdate(m, name, strlen(name)) == 1 && EVP_DigestUpdate(m, size, 8) == 1 &&
             (len == 0 || EVP_DigestUpdate(m, data, len) == 1) &&
             EVP_DigestFinal_ex(m, md, &mdlen) == 1 && mdlen == 32;
    EVP_MD_CTX_free(m);
    if (!ok) return CP_ERR_INTERNAL;
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[CP_CUCM_FILE_ID_LEN] = '\0';
    return 0;
}

const struct cp_source_format cp_source_cucm_cdr = {
    .name = SRC_NAME,
    .framing = CP_FRAME_BODY,
    .state_create = NULL,
    .state_destroy = NULL,
    .parse = cucm_parse,
};
