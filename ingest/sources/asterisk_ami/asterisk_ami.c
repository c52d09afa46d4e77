/* asterisk_ami.c - the asterisk-ami source: frames AMI blocks, maps queue/call/CDR events. */
#include "asterisk_ami.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cp_err.h"
#include "../asterisk_common/ast_common.h"

#define SRC_NAME   "asterisk-ami"
#define BANNER     "Asterisk Call Manager/"
#define BANNER_LEN (sizeof BANNER - 1)

/* ---- framing ------------------------------------------------------------------- */

struct ami_state {
    bool skipping; /* inside an oversized block: drop lines up to its blank line */
};

static void *ami_state_create(void)
{
    return calloc(1, sizeof(struct ami_state));
}

static void ami_state_destroy(void *state)
{
    free(state);
}

/* Length of the line at buf[0..len) including its LF, or 0 when no LF yet. */
static size_t line_len(const char *buf, size_t len)
{
    const char *nl = memchr(buf, '\n', len);
    return nl ? (size_t)(nl - buf) + 1 : 0;
}

/* A line holding nothing but its terminator (LF, CRLF, or a stray CR). */
static bool line_blank(const char *l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (l[i] != '\r' && l[i] != '\n') return false;
    return true;
}

/*
 * A record is: any blank lines, then header lines up to and including the
 * blank line that ends the block.  The banner ("Asterisk Call Manager/x.y",
 * one line with no blank line after it) is a record of its own, which parse()
 * ignores.  A block longer than CP_AMI_BLOCK_MAX is refused line by line until
 * its blank line, so memory stays bounded and the stream resynchronises at
 * the next block.
 */
static long ami_frame(void *state, const char *buf, size_t len)
{
    struct ami_state *st = state;
    if (st && st->skipping) {
        size_t n = line_len(buf, len);
        if (n == 0) return len >= CP_AMI_BLOCK_MAX ? CP_ERR_TOOBIG : 0;
        if (line_blank(buf, n)) st->skipping = false;
        return CP_ERR_TOOBIG;
    }
    size_t off = 0;
    bool content = false;
    while (off < len) {
        size_t n = line_len(buf + off, len - off);
        if (n == 0) break;
        const char *l = buf + off;
        off += n;
        if (line_blank(l, n)) {
            if (content) return (long)off;
            continue;
        }
        if (!content && n >= BANNER_LEN && memcmp(l, BANNER, BANNER_LEN) == 0) return (long)off;
        content = true;
        if (off > CP_AMI_BLOCK_MAX) break;
    }
    if (off > CP_AMI_BLOCK_MAX || len > CP_AMI_BLOCK_MAX) {
        if (st) st->skipping = true;
        return CP_ERR_TOOBIG;
    }
    return 0;
}

/* ---- blocks -------------------------------------------------------------------- */

struct hdr {
    const char *k, *v;
    size_t kl, vl;
};

struct block {
    struct hdr h[CP_AMI_HEADERS_MAX];
    size_t n;
    const char *raw; /* the block's bytes, for rejects */
    size_t raw_len;
};

/* Splits header lines from p[0..len) up to the first blank line; *used gets the bytes taken.
 * Returns 0, or a negative code with *why. */
static int block_read(const char *p, size_t len, struct block *b, size_t *used, const char **why)
{
    size_t off = 0;
    b->n = 0;
    b->raw = p;
    int rc = 0;
    while (off < len) {
        const char *nl = memchr(p + off, '\n', len - off);
        size_t n = nl ? (size_t)(nl - (p + off)) : len - off;
        const char *l = p + off;
        off += nl ? n + 1 : n;
        size_t ll = n && l[n - 1] == '\r' ? n - 1 : n;
        if (ll == 0) break; /* the blank line ends the block */
        if (rc) continue;
        const char *colon = memchr(l, ':', ll);
        if (!colon || colon == l) {
            rc = CP_ERR_PARSE;
            *why = "malformed header line";
            continue;
        }
        if (b->n >= CP_AMI_HEADERS_MAX) {
            rc = CP_ERR_TOOBIG;
            *why = "too many headers";
            continue;
        }
        struct hdr *h = &b->h[b->n++];
        h->k = l;
        h->kl = (size_t)(colon - l);
        while (h->kl > 0 && (l[h->kl - 1] == ' ' || l[h->kl - 1] == '\t'))
            h->kl--;
        const char *v = colon + 1;
        const char *e = l + ll;
        while (v < e && (*v == ' ' || *v == '\t'))
            v++;
        while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        h->v = v;
        h->vl = (size_t)(e - v);
    }
    b->raw_len = off;
    *used = off;
    return rc;
}

/* Header names are case-insensitive; the first occurrence wins for single-valued keys. */
static const struct hdr *get(const struct block *b, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i < b->n; i++)
        if (b->h[i].kl == kl && strncasecmp(b->h[i].k, key, kl) == 0) return &b->h[i];
    return NULL;
}

static bool is(const struct hdr *h, const char *lit)
{
    return h && h->vl == strlen(lit) && strncasecmp(h->v, lit, h->vl) == 0;
}

/* ---- mapping ------------------------------------------------------------------- */

struct mp {
    const struct cp_source_ctx *ctx;
    struct cp_emit *out;
    const struct block *b;
    struct cp_event ev;
    const char *reason; /* first problem */
    int code;
    bool oom;
};

static void bad(struct mp *m, int code, const char *reason)
{
    if (!m->reason) {
        m->reason = reason;
        m->code = code;
    }
}

/* The header's value as an event string (sanitised, bounded); NULL when absent or empty. */
static const char *str(struct mp *m, const struct hdr *h, size_t max)
{
    if (!h) return NULL;
    return cp_ast_str(m->ctx->arena, h->v, h->vl, max, &m->oom);
}

/* Caller-ID style values: "<unknown>" is Asterisk's spelling of absent. */
static const char *cid(struct mp *m, const char *key)
{
    const struct hdr *h = get(m->b, key);
    if (!h || is(h, "<unknown>")) return NULL;
    return str(m, h, CP_EVENT_STR_MAX);
}

static void x(struct mp *m, const char *key, const char *hname)
{
    const struct hdr *h = get(m->b, hname);
    if (h && !cp_ast_x(&m->ev, m->ctx->arena, key, h->v, h->vl)) m->oom = true;
}

/* An id that must not be cut (a truncated id would merge different calls). */
static const char *id(struct mp *m, const struct hdr *h, const char *reason_too_long)
{
    if (!h || h->vl == 0) return NULL;
    if (h->vl > CP_EVENT_STR_MAX) {
        bad(m, CP_ERR_TOOBIG, reason_too_long);
        return NULL;
    }
    return str(m, h, CP_EVENT_STR_MAX);
}

static void dur_secs(struct mp *m, const char *key, int32_t *dst, const char *reason)
{
    const struct hdr *h = get(m->b, key);
    if (h && cp_ast_secs(h->v, h->vl, dst) != 0) bad(m, CP_ERR_PARSE, reason);
}

static bool originating(struct mp *m);

/* Identity, time and caller snapshot shared by every call/queue event. */
static void common(struct mp *m, enum cp_kind kind)
{
    struct cp_event *ev = &m->ev;
    ev->kind = kind;
    const struct hdr *uid = get(m->b, "Uniqueid");
    const struct hdr *lid = get(m->b, "Linkedid");
    ev->leg = id(m, uid, "too long: Uniqueid");
    ev->call = id(m, lid, "too long: Linkedid");
    if (!ev->call)
        ev->call = ev->leg; /* pre-12 events carry no Linkedid: the caller's channel is the call */
    if (!ev->call) bad(m, CP_ERR_MISSING, "missing: Linkedid/Uniqueid");
    const struct hdr *t = get(m->b, "Timestamp");
    if (t) {
        if (cp_ast_epoch(t->v, t->vl, &ev->ts) != 0) bad(m, CP_ERR_PARSE, "bad Timestamp");
    } else {
        ev->ts = m->ctx->recv_us; /* timestampevents=no: the receive time is all we know */
    }
    /* An agent's channel (Hold/Unhold, and any event about a non-originating leg) carries the
     * agent's caller ID, not the caller's: only the call's own channel names the caller. */
    if (originating(m)) {
        ev->from = cid(m, "CallerIDNum");
        ev->from_name = cid(m, "CallerIDName");
    }
}

static void queue_fields(struct mp *m, bool agent)
{
    const struct hdr *q = get(m->b, "Queue");
    m->ev.queue = str(m, q, CP_EVENT_STR_MAX);
    if (!m->ev.queue) bad(m, CP_ERR_MISSING, "missing: Queue");
    if (!agent) return;
    const struct hdr *mn = get(m->b, "MemberName");
    const struct hdr *itf = get(m->b, "Interface");
    /* queue_log names members by MemberName too, so both sources agree on agent ids */
    m->ev.agent = str(m, mn && mn->vl ? mn : itf, CP_EVENT_STR_MAX);
    if (!m->ev.agent) bad(m, CP_ERR_MISSING, "missing: MemberName");
    x(m, "interface", "Interface");
    x(m, "dest_leg", "DestUniqueid");
    x(m, "dest_channel", "DestChannel");
}

/* Channel variables (repeated ChanVariable headers, "name=value") go to x as var.<name>. */
static void chan_vars(struct mp *m)
{
    for (size_t i = 0; i < m->b->n && m->ev.nx < CP_EVENT_X_MAX; i++) {
        const struct hdr *h = &m->b->h[i];
        if (h->kl != 12 || strncasecmp(h->k, "ChanVariable", 12) != 0) continue;
        const char *eqs = memchr(h->v, '=', h->vl);
        if (!eqs || eqs == h->v) continue;
        size_t nl = (size_t)(eqs - h->v);
        char key[64];
        if (nl + 4 >= sizeof key) continue;
        memcpy(key, "var.", 4);
        memcpy(key + 4, h->v, nl);
        key[4 + nl] = '\0';
        const char *k = cp_ast_str(m->ctx->arena, key, nl + 4, CP_EVENT_X_STR_MAX, &m->oom);
        if (!k) continue;
        if (!cp_ast_x(&m->ev, m->ctx->arena, k, eqs + 1, h->vl - nl - 1)) m->oom = true;
    }
}

static bool originating(struct mp *m)
{
    const struct hdr *uid = get(m->b, "Uniqueid");
    const struct hdr *lid = get(m->b, "Linkedid");
    if (!lid || lid->vl == 0) return true;
    return uid && uid->vl == lid->vl && memcmp(uid->v, lid->v, uid->vl) == 0;
}

static void map_cdr(struct mp *m)
{
    struct cp_event *ev = &m->ev;
    ev->kind = CP_KIND_CDR;
    const struct hdr *uid = get(m->b, "UniqueID");
    const struct hdr *lid = get(m->b, "Linkedid"); /* only with a cdr_manager.conf mapping */
    ev->leg = id(m, uid, "too long: UniqueID");
    ev->call = id(m, lid, "too long: Linkedid");
    if (!ev->call) ev->call = ev->leg;
    if (!ev->call) bad(m, CP_ERR_MISSING, "missing: UniqueID");
    const char *why = "bad time";
    static const struct {
        const char *key;
        size_t off;
        bool required;
    } times[] = {
        {"StartTime", offsetof(struct cp_event, start), true},
        {"AnswerTime", offsetof(struct cp_event, answer), false},
        {"EndTime", offsetof(struct cp_event, end), true},
    };
    for (size_t i = 0; i < CP_ARRAY_LEN(times); i++) {
        const struct hdr *h = get(m->b, times[i].key);
        int64_t *dst = (int64_t *)((char *)ev + times[i].off);
        if (!h || h->vl == 0) {
            if (times[i].required)
                bad(m, CP_ERR_MISSING,
                    times[i].off == offsetof(struct cp_event, start) ? "missing: StartTime"
                                                                     : "missing: EndTime");
            continue;
        }
        int rc = cp_ast_local_time(h->v, h->vl, m->ctx->tz, dst, &why);
        if (rc) bad(m, rc, why);
    }
    ev->ts = ev->end;
    const struct hdr *d = get(m->b, "Disposition");
    if (d) {
        if (cp_ast_disp(d->v, d->vl, &ev->disp) != 0)
            ev->disp = CP_DISP_UNKNOWN; /* a new spelling is kept in native, not guessed */
        ev->native = str(m, d, CP_EVENT_NATIVE_MAX);
    }
    dur_secs(m, "BillableSeconds", &ev->talk, "bad BillableSeconds");
    ev->from = str(m, get(m->b, "Source"), CP_EVENT_STR_MAX);
    ev->to = str(m, get(m->b, "Destination"), CP_EVENT_STR_MAX);
    const struct hdr *clid = get(m->b, "CallerID");
    if (clid) {
        const char *name, *num;
        size_t nl, ul;
        cp_ast_clid(clid->v, clid->vl, &name, &nl, &num, &ul);
        ev->from_name = cp_ast_str(m->ctx->arena, name, nl, CP_EVENT_STR_MAX, &m->oom);
        if (!ev->from) ev->from = cp_ast_str(m->ctx->arena, num, ul, CP_EVENT_STR_MAX, &m->oom);
    }
    x(m, "duration", "Duration");
    x(m, "channel", "Channel");
    x(m, "dst_channel", "DestinationChannel");
    x(m, "dcontext", "DestinationContext");
    x(m, "last_app", "LastApplication");
    x(m, "last_data", "LastData");
    x(m, "amaflags", "AMAFlags");
    x(m, "accountcode", "AccountCode");
    x(m, "userfield", "UserField");
}

/* Maps one event block.  Returns 1 emitted, 0 ignored, or a negative code. */
static int map_event(struct mp *m, const struct hdr *evh)
{
    struct cp_event *ev = &m->ev;
    cp_event_init(ev);
    char name[40];
    if (evh->vl == 0 || evh->vl >= sizeof name) return 0; /* no event we map has such a name */
    memcpy(name, evh->v, evh->vl);
    name[evh->vl] = '\0';

    if (!strcasecmp(name, "Newchannel")) {
        if (!originating(m))
            return 0; /* agent and outbound legs join the call; they do not start one */
        common(m, CP_KIND_CALL_START);
        const struct hdr *ex = get(m->b, "Exten");
        if (ex && !is(ex, "s")) ev->to = str(m, ex, CP_EVENT_STR_MAX);
        x(m, "channel", "Channel");
        x(m, "context", "Context");
    } else if (!strcasecmp(name, "QueueCallerJoin")) {
        common(m, CP_KIND_QUEUE_ENTER);
        queue_fields(m, false);
        x(m, "position", "Position");
        x(m, "count", "Count");
        x(m, "channel", "Channel");
    } else if (!strcasecmp(name, "QueueCallerLeave")) {
        /* Fires on every exit; AMI does not say why (timeout, key, answered), so qout stays
         * unknown and the abandon/connect events carry the outcome. */
        common(m, CP_KIND_QUEUE_LEAVE);
        queue_fields(m, false);
        x(m, "position", "Position");
        x(m, "count", "Count");
    } else if (!strcasecmp(name, "QueueCallerAbandon")) {
        common(m, CP_KIND_QUEUE_LEAVE);
        queue_fields(m, false);
        ev->qout = CP_QOUT_ABANDONED;
        ev->side = CP_SIDE_CALLER;
        dur_secs(m, "HoldTime", &ev->wait, "bad HoldTime");
        x(m, "position", "Position");
        x(m, "original_position", "OriginalPosition");
    } else if (!strcasecmp(name, "AgentCalled")) {
        common(m, CP_KIND_AGENT_OFFER);
        queue_fields(m, true);
    } else if (!strcasecmp(name, "AgentRingNoAnswer")) {
        common(m, CP_KIND_AGENT_NOANSWER);
        queue_fields(m, true);
        const struct hdr *rt = get(m->b, "RingTime");
        if (rt && cp_ast_ms_to_secs(rt->v, rt->vl, &ev->ring) != 0)
            bad(m, CP_ERR_PARSE, "bad RingTime");
        x(m, "ring_ms", "RingTime");
    } else if (!strcasecmp(name, "AgentConnect")) {
        common(m, CP_KIND_AGENT_CONNECT);
        queue_fields(m, true);
        dur_secs(m, "HoldTime", &ev->wait, "bad HoldTime");
        dur_secs(m, "RingTime", &ev->ring, "bad RingTime");
    } else if (!strcasecmp(name, "AgentComplete")) {
        common(m, CP_KIND_AGENT_COMPLETE);
        queue_fields(m, true);
        dur_secs(m, "HoldTime", &ev->wait, "bad HoldTime");
        dur_secs(m, "TalkTime", &ev->talk, "bad TalkTime");
        const struct hdr *r = get(m->b, "Reason");
        if (is(r, "caller"))
            ev->side = CP_SIDE_CALLER;
        else if (is(r, "agent"))
            ev->side = CP_SIDE_AGENT;
        else if (is(r, "transfer"))
            ev->qout = CP_QOUT_TRANSFERRED;
        ev->native = str(m, r, CP_EVENT_NATIVE_MAX);
    } else if (!strcasecmp(name, "Hold") || !strcasecmp(name, "Unhold")) {
        common(m, name[0] == 'H' || name[0] == 'h' ? CP_KIND_HOLD : CP_KIND_UNHOLD);
        x(m, "channel", "Channel");
        x(m, "music_class", "MusicClass");
    } else if (!strcasecmp(name, "Hangup")) {
        if (!originating(m))
            return 0; /* a ring-no-answer or transferred-away leg ending does not end the call */
        common(m, CP_KIND_CALL_END);
        const struct hdr *c = get(m->b, "Cause");
        int64_t q = 0;
        if (c && c->vl && cp_ast_int(c->v, c->vl, &q) != 0) bad(m, CP_ERR_PARSE, "bad Cause");
        if (q >= 1 && q <= CP_EVENT_Q850_MAX) ev->q850 = (int32_t)q;
        ev->native = str(m, get(m->b, "Cause-txt"), CP_EVENT_NATIVE_MAX);
        x(m, "channel", "Channel");
        x(m, "tech_cause", "TechCause");
    } else if (!strcasecmp(name, "Cdr")) {
        map_cdr(m);
    } else {
        return 0; /* Newstate, VarSet, DialBegin, FullyBooted, ...: not call-level facts */
    }
    if (ev->kind != CP_KIND_CDR) chan_vars(m);
    if (m->oom) bad(m, CP_ERR_NOMEM, "out of memory");
    if (m->reason) {
        m->out->reject(m->out, 0, m->b->raw, m->b->raw_len, m->reason);
        return m->code;
    }
    const struct hdr *dest = get(m->b, "DestUniqueid");
    const char *ids[5] = {name, ev->call, ev->leg, ev->queue, NULL};
    bool oom = false;
    if (dest) ids[4] = cp_ast_str(m->ctx->arena, dest->v, dest->vl, CP_EVENT_NATIVE_MAX, &oom);
    return cp_ast_emit(m->ctx, m->out, ev, SRC_NAME, ids, 5, m->b->raw, m->b->raw_len);
}

static bool starts(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len >= n && memcmp(s, lit, n) == 0;
}

/*
 * One record: normally one block (frame() cuts them), but several blocks, a
 * banner line or stray blank lines are handled too, so replays framed by
 * other means work.  Responses (to Login, Ping, Events) and events that are
 * not call-level facts are ignored quietly; they are AMI working as designed.
 */
static int ami_parse(void *state, const struct cp_source_ctx *ctx, const char *rec, size_t len,
                     struct cp_emit *out)
{
    (void)state;
    struct mp *m = malloc(sizeof *m + sizeof(struct block));
    if (!m) return CP_ERR_NOMEM;
    struct block *b = (struct block *)(m + 1);
    int emitted = 0, first_err = 0;
    size_t off = 0;
    while (off < len) {
        /* skip blank lines */
        size_t n = line_len(rec + off, len - off);
        size_t ll = n ? n : len - off;
        if (line_blank(rec + off, ll)) {
            off += ll;
            continue;
        }
        if (starts(rec + off, len - off, BANNER)) {
            off += ll;
            continue;
        }
        const char *why = NULL;
        size_t used = 0;
        int rc = block_read(rec + off, len - off, b, &used, &why);
        off += used;
        memset(m, 0, sizeof *m);
        m->ctx = ctx;
        m->out = out;
        m->b = b;
        if (rc == 0 && b->n == 0) continue;
        if (rc == 0 && b->h[0].kl == 8 && strncasecmp(b->h[0].k, "Response", 8) == 0) continue;
        if (rc == 0 && !(b->h[0].kl == 5 && strncasecmp(b->h[0].k, "Event", 5) == 0)) {
            rc = CP_ERR_PARSE;
            why = "not an event or response";
        }
        if (rc) {
            out->reject(out, 0, b->raw, b->raw_len, why);
        } else {
            rc = map_event(m, &b->h[0]);
            if (rc > 0) emitted += rc;
        }
        if (rc < 0 && !first_err) first_err = rc;
        if (rc < 0 && rc != CP_ERR_PARSE && rc != CP_ERR_MISSING && rc != CP_ERR_TOOBIG &&
            rc != CP_ERR_CONFIG && rc != CP_ERR_RANGE && rc != CP_ERR_NOTFOUND) {
            first_err = rc; /* the emitter failed or memory ran out: stop here */
            emitted = 0;
            break;
        }
    }
    free(m);
    if (emitted == 0 && first_err) return first_err;
    return emitted;
}

const struct cp_source_format cp_source_asterisk_ami = {
    .name = SRC_NAME,
    .framing = CP_FRAME_CUSTOM,
    .state_create = ami_state_create,
    .state_destroy = ami_state_destroy,
    .parse = ami_parse,
    .frame = ami_frame,
};
