/* avaya_smdr.c - Avaya IP Office SMDR lines to per-segment cdr events, with transfers from Call ID stitching. */
#include "avaya_smdr.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp_event_id.h"
#include "cp_time.h"
#include "cp_utf8.h"
#include "../srcutil/srcutil.h"

#define SRC_NAME "avaya-smdr"
#define NFIELDS_MIN 17
#define NFIELDS_MAX 64
#define ID_MAX 64 /* call id and device names kept in the connection state */

/* Field numbers (1-based in the Avaya documentation, 0-based here). */
enum {
    F_CALL_START = 0,
    F_CONNECTED,
    F_RING,
    F_CALLER,
    F_DIRECTION,
    F_CALLED,
    F_DIALLED,
    F_ACCOUNT,
    F_INTERNAL,
    F_CALL_ID,
    F_CONTINUATION,
    F_P1_DEVICE,
    F_P1_NAME,
    F_P2_DEVICE,
    F_P2_NAME,
    F_HOLD,
    F_PARK,
    F_EXT_TARGET_CAUSE = 27,
    F_CALLER_UCID = 31,
    F_CALLED_UCID = 33,
    F_RECORD_TIME = 34,
};

/* ---- connection state: the open calls ------------------------------------------ */

struct open_call {
    char id[ID_MAX + 1];
    char p1[ID_MAX + 1], p2[ID_MAX + 1]; /* parties of the last segment */
    int64_t last_end;                    /* ts of the last segment */
    uint32_t segments;
    uint64_t used; /* for eviction: the oldest goes first */
};

struct smdr_state {
    uint64_t clock;
    size_t n;
    struct open_call calls[CP_SMDR_OPEN_CALLS];
};

static void *smdr_state_create(void)
{
    return calloc(1, sizeof(struct smdr_state));
}

static void smdr_state_destroy(void *state)
{
    free(state);
}

static struct open_call *call_find(struct smdr_state *st, const char *id)
{
    for (size_t i = 0; i < st->n; i++)
        if (strcmp(st->calls[i].id, id) == 0)
            return &st->calls[i];
    return NULL;
}

static struct open_call *call_add(struct smdr_state *st, const char *id)
{
    struct open_call *c;
    if (st->n < CP_SMDR_OPEN_CALLS) {
        c = &st->calls[st->n++];
    } else {
        c = &st->calls[0];
        for (size_t i = 1; i < st->n; i++)
            if (st->calls[i].used < c->used)
                c = &st->calls[i];
    }
    memset(c, 0, sizeof *c);
    snprintf(c->id, sizeof c->id, "%s", id);
    return c;
}

static void call_remove(struct smdr_state *st, struct open_call *c)
{
    *c = st->calls[--st->n];
}

/* ---- field parsing ------------------------------------------------------------- */

struct field {
    const char *s;
    size_t len;
};

static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return n > 0;
}

/* "YYYY/MM/DD HH:MM:SS" (seconds optional) in zone tz → UTC µs. */
static int local_time(const struct field *f, const char *tz, int64_t *out)
{
    int y, mo, d, h, mi, se = 0;
    const char *s = f->s;
    if (f->len != 19 && f->len != 16)
        return CP_ERR_PARSE;
    if (s[4] != '/' || s[7] != '/' || s[10] != ' ' || s[13] != ':' ||
        (f->len == 19 && s[16] != ':'))
        return CP_ERR_PARSE;
    if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
        !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) ||
        (f->len == 19 && !digits(s + 17, 2, &se)))
        return CP_ERR_PARSE;
    if (y < 1970 || y > 9998)
        return CP_ERR_RANGE;
    return cp_time_local_to_utc(tz, y, mo, d, h, mi, se, out);
}

/* "HH:MM:SS" (hours may exceed 2 digits) → seconds. */
static bool hms(const struct field *f, int32_t *out)
{
    const char *s = f->s;
    size_t n = f->len;
    if (n < 8 || s[n - 3] != ':' || s[n - 6] != ':' || n - 6 > 6)
        return false;
    int h, m, sec;
    if (!digits(s, n - 6, &h) || !digits(s + n - 5, 2, &m) || !digits(s + n - 2, 2, &sec) ||
        m > 59 || sec > 59)
        return false;
    *out = h * 3600 + m * 60 + sec;
    return true;
}

static bool secs(const struct field *f, int32_t *out)
{
    uint64_t v;
    if (f->len == 0) {
        *out = 0;
        return true;
    }
    if (!cp_srcutil_u64(f->s, f->len, INT32_MAX, &v))
        return false;
    *out = (int32_t)v;
    return true;
}

struct sp {
    const struct cp_source_ctx *ctx;
    struct field f[NFIELDS_MAX];
    size_t nf;
    bool oom;
};

static const char *text(struct sp *p, int i, size_t max)
{
    if ((size_t)i >= p->nf)
        return NULL;
    return cp_srcutil_text(p->ctx->arena, p->f[i].s, p->f[i].len, max, &p->oom);
}

static void x_add(struct sp *p, struct cp_event *ev, const char *key, int i)
{
    const char *v = text(p, i, CP_EVENT_X_STR_MAX);
    if (v && ev->nx < CP_EVENT_X_MAX) {
        ev->x[ev->nx].key = key;
        ev->x[ev->nx].val = v;
        ev->nx++;
    }
}

/* A device's extension number: "E201" → "201"; other devices have none. */
static const char *extension(struct sp *p, int i)
{
    const struct field *f = &p->f[i];
    if (f->len < 2 || f->s[0] != 'E')
        return NULL;
    return cp_srcutil_text(p->ctx->arena, f->s + 1, f->len - 1, CP_EVENT_STR_MAX, &p->oom);
}

static int reject(struct cp_emit *out, const char *rec, size_t len, int code, const char *why)
{
    out->reject(out, 0, rec, len, why);
    return code;
}

static int smdr_parse(void *state, const struct cp_source_ctx *ctx, const char *rec, size_t len,
                      struct cp_emit *out)
{
    struct smdr_state *st = state;
    struct sp p;
    p.ctx = ctx;
    p.nf = 0;
    p.oom = false;

    size_t n = len;
    while (n > 0 && (rec[n - 1] == '\r' || rec[n - 1] == '\n' || rec[n - 1] == ' '))
        n--;
    if (n == 0)
        return 0;
    /* No quoting or escaping on the wire: fields never hold commas. */
    for (size_t i = 0, start = 0; i <= n; i++) {
        if (i == n || rec[i] == ',') {
            if (p.nf == NFIELDS_MAX)
                return reject(out, rec, len, CP_ERR_PARSE, "too many fields");
            p.f[p.nf].s = rec + start;
            p.f[p.nf].len = i - start;
            p.nf++;
            start = i + 1;
        }
    }
    /* The SMDR application's log files start with a header line. */
    if (cp_srcutil_eq(p.f[0].s, p.f[0].len, "Call Start"))
        return 0;
    if (p.nf < NFIELDS_MIN)
        return reject(out, rec, len, CP_ERR_PARSE, "too few fields");

    if (!ctx->tz)
        return reject(out, rec, len, CP_ERR_CONFIG, "no time zone configured");
    struct cp_event ev;
    cp_event_init(&ev);
    ev.org = ctx->org;
    ev.pbx = ctx->pbx;
    ev.src = SRC_NAME;
    ev.recv = ctx->recv_us;
    ev.kind = CP_KIND_CDR;

    int rc = local_time(&p.f[F_CALL_START], ctx->tz, &ev.start);
    if (rc == CP_ERR_NOTFOUND)
        return reject(out, rec, len, CP_ERR_CONFIG, "unknown time zone");
    if (rc < 0)
        return reject(out, rec, len, rc, "bad time: Call Start");
    int32_t connected, ring, hold, park;
    if (!hms(&p.f[F_CONNECTED], &connected))
        return reject(out, rec, len, CP_ERR_PARSE, "bad duration: Connected Time");
    if (!secs(&p.f[F_RING], &ring))
        return reject(out, rec, len, CP_ERR_PARSE, "bad duration: Ring Time");
    if (!secs(&p.f[F_HOLD], &hold))
        return reject(out, rec, len, CP_ERR_PARSE, "bad duration: Hold Time");
    if (!secs(&p.f[F_PARK], &park))
        return reject(out, rec, len, CP_ERR_PARSE, "bad duration: Park Time");
    const struct field *cont = &p.f[F_CONTINUATION];
    if (cont->len != 1 || (cont->s[0] != '0' && cont->s[0] != '1'))
        return reject(out, rec, len, CP_ERR_PARSE, "bad field: Continuation");
    bool more = cont->s[0] == '1';

    bool bad_id = false;
    const struct field *cid = &p.f[F_CALL_ID];
    ev.call = cp_srcutil_id(ctx->arena, cid->s, cid->len, ID_MAX, &bad_id, &p.oom);
    if (bad_id)
        return reject(out, rec, len, CP_ERR_PARSE, "bad id: Call ID");
    if (!ev.call && !p.oom)
        return reject(out, rec, len, CP_ERR_MISSING, "missing: Call ID");

    /* Segment end: the SMDR Record Time when the release writes it, else the
     * call start plus this segment's own durations (exact for a call's first
     * segment; later segments started after the earlier ones). */
    int64_t span = ((int64_t)connected + ring + hold + park) * 1000000;
    ev.end = ev.start + span;
    if (p.nf > F_RECORD_TIME && p.f[F_RECORD_TIME].len > 0) {
        int64_t rt;
        if (local_time(&p.f[F_RECORD_TIME], ctx->tz, &rt) == 0 && rt >= ev.start)
            ev.end = rt;
    }
    if (ev.end > CP_EVENT_TIME_MAX)
        return reject(out, rec, len, CP_ERR_RANGE, "bad time: Call Start");
    ev.ts = ev.end;

    const struct field *dir = &p.f[F_DIRECTION];
    bool internal = p.f[F_INTERNAL].len == 1 && p.f[F_INTERNAL].s[0] == '1';
    if (dir->len == 1 && dir->s[0] == 'I')
        ev.dir = CP_DIR_INBOUND;
    else if (dir->len == 1 && dir->s[0] == 'O')
        ev.dir = internal ? CP_DIR_INTERNAL : CP_DIR_OUTBOUND;

    ev.from = text(&p, F_CALLER, CP_EVENT_STR_MAX);
    ev.to = text(&p, F_CALLED, CP_EVENT_STR_MAX);
    if (!ev.to)
        ev.to = text(&p, F_DIALLED, CP_EVENT_STR_MAX);
    const struct field *p1 = &p.f[F_P1_DEVICE], *p2 = &p.f[F_P2_DEVICE];
    bool voicemail = (p2->len > 0 && p2->s[0] == 'V') || (p1->len > 0 && p1->s[0] == 'V');
    ev.talk = connected;
    ev.ring = ring;
    ev.hold = hold;
    ev.disp = connected > 0 ? CP_DISP_ANSWERED : CP_DISP_NO_ANSWER;
    if (voicemail)
        ev.qout = CP_QOUT_VOICEMAIL;
    /* The extension that talked is the agent (one that only rang is not);
     * a voicemail channel is nobody's agent. */
    if (connected > 0 && !voicemail) {
        ev.agent = extension(&p, F_P1_DEVICE);
        if (ev.agent)
            ev.agent_name = text(&p, F_P1_NAME, CP_EVENT_STR_MAX);
    }
    if (connected > 0)
        ev.final_to = ev.dir == CP_DIR_INBOUND ? ev.agent : ev.to;
    x_add(&p, &ev, "party1_device", F_P1_DEVICE);
    x_add(&p, &ev, "party1_name", F_P1_NAME);
    x_add(&p, &ev, "party2_device", F_P2_DEVICE);
    x_add(&p, &ev, "party2_name", F_P2_NAME);
    x_add(&p, &ev, "dialled", F_DIALLED);
    x_add(&p, &ev, "account", F_ACCOUNT);
    x_add(&p, &ev, "park", F_PARK);
    x_add(&p, &ev, "continuation", F_CONTINUATION);
    if (p.nf > F_EXT_TARGET_CAUSE)
        x_add(&p, &ev, "ext_targeting_cause", F_EXT_TARGET_CAUSE);
    if (p.nf > F_CALLER_UCID)
        x_add(&p, &ev, "caller_ucid", F_CALLER_UCID);
    if (p.nf > F_CALLED_UCID)
        x_add(&p, &ev, "called_ucid", F_CALLED_UCID);
    if (p.oom)
        return reject(out, rec, len, CP_ERR_NOMEM, "out of memory");

    /* Stitching: the segment number, and a transfer when the parties change. */
    char p1s[ID_MAX + 1], p2s[ID_MAX + 1];
    snprintf(p1s, sizeof p1s, "%.*s", (int)(p1->len < ID_MAX ? p1->len : ID_MAX), p1->s);
    snprintf(p2s, sizeof p2s, "%.*s", (int)(p2->len < ID_MAX ? p2->len : ID_MAX), p2->s);
    struct open_call *oc = st ? call_find(st, ev.call) : NULL;
    bool transfer = oc && oc->segments > 0 && (strcmp(oc->p1, p1s) != 0 || strcmp(oc->p2, p2s) != 0);
    bool same_as_last = oc && oc->segments > 0 && !transfer && oc->last_end == ev.end;
    uint32_t seg = oc ? oc->segments + (same_as_last ? 0 : 1) : 1;
    if (seg > 1)
        ev.answer = 0; /* only the first segment's answer is known: start + ring */
    else if (connected > 0)
        ev.answer = ev.start + (int64_t)ring * 1000000;
    char legbuf[ID_MAX + 16];
    snprintf(legbuf, sizeof legbuf, "%s.%u", ev.call, seg);
    ev.leg = cp_arena_strdup(ctx->arena, legbuf);
    if (!ev.leg)
        return reject(out, rec, len, CP_ERR_NOMEM, "out of memory");

    int emitted = 0;
    if (transfer) {
        struct cp_event tr;
        cp_event_init(&tr);
        tr.org = ev.org;
        tr.pbx = ev.pbx;
        tr.src = ev.src;
        tr.recv = ev.recv;
        tr.kind = CP_KIND_TRANSFER;
        tr.call = ev.call;
        tr.leg = ev.leg;
        tr.dir = ev.dir;
        tr.from = ev.from;
        tr.to = ev.to;
        tr.agent = ev.agent;
        tr.agent_name = ev.agent_name;
        /* The transfer happened when the previous segment ended. */
        tr.ts = oc->last_end ? oc->last_end : ev.start;
        const char *const xk[4] = {"from_party1", "from_party2", "to_party1", "to_party2"};
        const char *const xv[4] = {oc->p1, oc->p2, p1s, p2s};
        for (int i = 0; i < 4; i++) {
            tr.x[i].key = xk[i];
            tr.x[i].val = cp_arena_strdup(ctx->arena, xv[i][0] ? xv[i] : "-");
            if (!tr.x[i].val || !cp_utf8_valid(tr.x[i].val, strlen(tr.x[i].val)))
                tr.x[i].val = "?"; /* devices are ASCII; never let a stray byte in */
        }
        tr.nx = 4;
        const char *ids[] = {tr.call, oc->p1, oc->p2, p1s, p2s};
        rc = cp_event_derive_id(&tr, ctx->arena, ids, 5);
        const char *why;
        if (rc < 0 || cp_event_validate(&tr, &why) != 0)
            return reject(out, rec, len, rc < 0 ? rc : CP_ERR_INTERNAL, "internal error");
        rc = out->event(out, &tr);
        if (rc < 0)
            return rc;
        emitted++;
    }

    /* The id hashes the record's own identity (not the segment number from
     * this connection's state), so a line IP Office re-sends after a
     * reconnect gets the same id. */
    char durs[64];
    snprintf(durs, sizeof durs, "%d/%d/%d/%d/%c", connected, ring, hold, park, more ? '1' : '0');
    const char *ids[] = {ev.call, p1s, p2s, durs};
    rc = cp_event_derive_id(&ev, ctx->arena, ids, 4);
    if (rc < 0)
        return reject(out, rec, len, rc, rc == CP_ERR_NOMEM ? "out of memory" : "internal error");
    const char *why = NULL;
    if (cp_event_validate(&ev, &why) != 0)
        return reject(out, rec, len, CP_ERR_PARSE, "invalid event");
    rc = out->event(out, &ev);
    if (rc < 0)
        return rc;
    emitted++;

    if (st) {
        if (!more) {
            if (oc)
                call_remove(st, oc);
        } else {
            if (!oc)
                oc = call_add(st, ev.call);
            snprintf(oc->p1, sizeof oc->p1, "%s", p1s);
            snprintf(oc->p2, sizeof oc->p2, "%s", p2s);
            oc->last_end = ev.end;
            oc->segments = seg;
            oc->used = ++st->clock;
        }
    }
    return emitted;
}

const struct cp_source_format cp_source_avaya_smdr = {
    .name = SRC_NAME,
    .framing = CP_FRAME_LINES,
    .state_create = smdr_state_create,
    .state_destroy = smdr_state_destroy,
    .parse = smdr_parse,
    .frame = NULL,
};
