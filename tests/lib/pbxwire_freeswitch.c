/* pbxwire_freeswitch.c - the FreeSWITCH wires of pbxsim: Event Socket (ESL) plain events with mod_callcenter, and mod_json_cdr POSTs. */
#include "pbxwire.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * One simulated FreeSWITCH 1.10 per PBX: inbound calls are answered by the dialplan (IVR), then
 * run the `callcenter` application (mod_callcenter, tiers ringing one agent at a time); outbound
 * calls are click-to-dial `originate` commands (the customer's leg first, bridged to the agent
 * once the customer answers), so their first leg is an outbound channel.
 *
 * What the two wires can tell (and the truth keeps):
 *  - ESL: the caller's channel events and the callcenter::info member/agent events.  The
 *    collector subscribes to CHANNEL_CREATE/ANSWER/HANGUP_COMPLETE and callcenter::info only,
 *    so no hold events reach it (no hold time), and no transfer event exists (a transfer to
 *    another queue shows as a new member-queue-start).  mod_callcenter has no wrap-up codes.
 *    The agent legs' own channel events are not rendered: their Channel-Call-UUID is their
 *    own uuid (mod_callcenter originates them without a session), so they would be calls of
 *    their own that the model does not have.  The caller's channel is answered by the IVR, so
 *    every inbound call is `answered` by the Hangup-Cause mapping, answered_at = the IVR's answer.
 *  - JSON CDR: the caller's leg only (log-b-leg false): whole-second queue epochs, the
 *    latest queue visit only, hold as one total, no RONA, no wrap-up; an unanswered visit is
 *    placed by the engine at the call's end (a cdr carries no queue-exit time).
 */

/* ---- shared helpers ---- */

#define MAX_RECS 64

struct rec {
    int64_t ts;
    int ord;
    struct pw_buf b;
};

struct recs {
    struct rec r[MAX_RECS];
    int n;
};

static struct pw_buf *rec_new(struct recs *rs, int64_t ts)
{
    if (rs->n == MAX_RECS) {
        fputs("pbxwire_freeswitch: too many records in one call\n", stderr);
        exit(2);
    }
    struct rec *r = &rs->r[rs->n];
    r->ts = ts;
    r->ord = rs->n;
    r->b = (struct pw_buf){0};
    rs->n++;
    return &r->b;
}

static int rec_cmp(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->ord - y->ord;
}

/* Sends the records in time order (ties in creation order) and frees them. */
static int rec_flush(struct recs *rs, struct pw_out *o)
{
    qsort(rs->r, (size_t)rs->n, sizeof rs->r[0], rec_cmp);
    for (int i = 0; i < rs->n; i++) {
        pw_record(o, rs->r[i].ts, rs->r[i].b.p, rs->r[i].b.len);
        free(rs->r[i].b.p);
        rs->r[i].b = (struct pw_buf){0};
    }
    int n = rs->n;
    rs->n = 0;
    return n;
}

/* A deterministic uuid for (pbx, call, role). */
static void mk_uuid(char *out, size_t cap, const struct pw_call *c, unsigned role)
{
    snprintf(out, cap, "%08x-%04x-4%03x-a%03x-%012" PRIx64, 0x5f000000u + (unsigned)c->pbx->index,
             role & 0xffff, (unsigned)(c->idx >> 12) & 0xfff, (unsigned)c->idx & 0xfff,
             (uint64_t)((uint64_t)c->idx * 2654435761u % 0xffffffffffffu));
}

static void core_uuid(char *out, size_t cap, const struct pw_pbx *p)
{
    snprintf(out, cap, "c0de%04x-1b2c-4d3e-8f90-%012x", (unsigned)p->index, 0xf5u + p->index);
}

/* switch_url_encode: everything but [A-Za-z0-9-_.] as %XX ('+' too, UTF-8 bytewise). */
static void url_enc(struct pw_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char ch = *p;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.') {
            pw_buf_add(b, p, 1);
        } else {
            char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            pw_buf_add(b, e, 3);
        }
    }
}

static void json_str(struct pw_buf *b, const char *s)
{
    pw_buf_add(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            pw_buf_add(b, "\\", 1);
            pw_buf_add(b, p, 1);
        } else if (*p < 0x20) {
            pw_buf_printf(b, "\\u%04x", *p);
        } else {
            pw_buf_add(b, p, 1);
        }
    }
    pw_buf_add(b, "\"", 1);
}

static void fmt_date(char *out, size_t cap, int64_t us, bool gmt)
{
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, gmt ? "%a, %d %b %Y %H:%M:%S GMT" : "%Y-%m-%d %H:%M:%S", &tm);
}

static const char *qname(struct pw_out *o, const char *q)
{
    char tmp[96];
    snprintf(tmp, sizeof tmp, "%s@default", q);
    return pw_strdup(o, tmp);
}

/* The facts of one simulated call, read from the model's canonical events. */
struct fs_call {
    bool outbound;
    char ua[40], core[40];
    const char *from, *from_name, *to;
    int64_t start, ivr_answer, end; /* µs; ivr_answer: the caller's channel answer */
    enum cp_disp disp;              /* outbound: the customer's answer or not */
    int64_t answer;                 /* outbound: answer µs or -1 */
    const char *agent;              /* outbound: the agent bridged */
    bool agent_caller_hangup;       /* who sent BYE */
};

static void fs_call_read(const struct pw_call *c, struct fs_call *f)
{
    memset(f, 0, sizeof *f);
    const struct pw_truth *t = c->truth;
    mk_uuid(f->ua, sizeof f->ua, c, 0xa);
    core_uuid(f->core, sizeof f->core, c->pbx);
    f->from = t->from;
    f->from_name = t->from_name ? t->from_name : t->from; /* sofia: no display name → the user */
    f->to = t->to;
    f->start = t->start;
    f->end = t->end;
    const struct cp_event *cdr = pw_find(c, CP_KIND_CDR, 0);
    if (cdr) {
        f->outbound = true;
        f->disp = cdr->disp;
        f->answer = cdr->answer > 0 ? cdr->answer : -1;
        f->agent = cdr->agent;
        return;
    }
    /* The IVR answers a fraction of a second after the INVITE (the menu starts 2 s later). */
    f->ivr_answer = t->start + 200000 + (int64_t)(c->idx % 8) * 100000;
    f->agent_caller_hangup = t->side && strcmp(t->side, "caller") == 0;
}

/* ================================================================ ESL */

struct esl_ev {
    struct pw_buf *b;
    int64_t ts;
    unsigned seq;
};

static void hdr(struct pw_buf *b, const char *name, const char *val)
{
    pw_buf_str(b, name);
    pw_buf_add(b, ": ", 2);
    url_enc(b, val ? val : "");
    pw_buf_add(b, "\n", 1);
}

static void hdr_i(struct pw_buf *b, const char *name, int64_t v)
{
    pw_buf_printf(b, "%s: %" PRId64 "\n", name, v);
}

/* The headers every event starts with (switch_event_prep_for_delivery). */
static void esl_head(struct pw_buf *b, const struct pw_call *c, const struct fs_call *f,
                     const char *name, int64_t ts, unsigned seq, const char *file,
                     const char *func, int line)
{
    char d[64], host[32];
    snprintf(host, sizeof host, "fs%d", c->pbx->index);
    hdr(b, "Event-Name", name);
    hdr(b, "Core-UUID", f->core);
    hdr(b, "FreeSWITCH-Hostname", host);
    hdr(b, "FreeSWITCH-Switchname", host);
    hdr(b, "FreeSWITCH-IPv4", "10.0.0.5");
    hdr(b, "FreeSWITCH-IPv6", "::1");
    fmt_date(d, sizeof d, ts, false);
    hdr(b, "Event-Date-Local", d);
    fmt_date(d, sizeof d, ts, true);
    hdr(b, "Event-Date-GMT", d);
    hdr_i(b, "Event-Date-Timestamp", ts);
    hdr(b, "Event-Calling-File", file);
    hdr(b, "Event-Calling-Function", func);
    hdr_i(b, "Event-Calling-Line-Number", line);
    hdr_i(b, "Event-Sequence", seq);
}

/* Wraps the inner block into the outer text/event-plain message. */
static void esl_wrap(struct pw_buf *out, struct pw_buf *inner)
{
    pw_buf_add(inner, "\n", 1);
    pw_buf_printf(out, "Content-Length: %zu\nContent-Type: text/event-plain\n\n", inner->len);
    pw_buf_add(out, inner->p, inner->len);
    free(inner->p);
    inner->p = NULL;
    inner->len = inner->cap = 0;
}

enum chan_ev { CH_CREATE, CH_ANSWER, CH_HANGUP };

/* A CHANNEL_* event of the call's first leg (the caller's, or the customer's when outbound). */
static void esl_channel(struct recs *rs, const struct pw_call *c, const struct fs_call *f,
                        enum chan_ev k, int64_t ts, unsigned seq, const char *cc_queue,
                        const char *cc_agent)
{
    static const char *const names[] = {"CHANNEL_CREATE", "CHANNEL_ANSWER",
                                        "CHANNEL_HANGUP_COMPLETE"};
    static const char *const funcs[] = {"switch_core_session_request_uuid",
                                        "switch_channel_perform_mark_answered",
                                        "switch_core_session_reporting_state"};
    static const char *const files[] = {"switch_core_session.c", "switch_channel.c",
                                        "switch_core_state_machine.c"};
    static const int lines[] = {2474, 3996, 944};
    struct pw_buf in = {0};
    esl_head(&in, c, f, names[k], ts, seq, files[k], funcs[k], lines[k]);
    bool answered = f->outbound ? f->answer > 0 : true;
    int64_t answered_at = f->outbound ? (f->answer > 0 ? f->answer : 0) : f->ivr_answer;
    char chan[96];
    if (f->outbound)
        snprintf(chan, sizeof chan, "sofia/gateway/pstn/%s", f->to);
    else
        snprintf(chan, sizeof chan, "sofia/external/%s@203.0.113.10", f->from);
    const char *state = k == CH_CREATE ? "CS_INIT" : k == CH_ANSWER ? "CS_EXECUTE" : "CS_REPORTING";
    const char *cstate = k == CH_CREATE ? (f->outbound ? "DOWN" : "RINGING")
                         : k == CH_ANSWER ? "ACTIVE" : "HANGUP";
    hdr(&in, "Channel-State", state);
    hdr(&in, "Channel-Call-State", cstate);
    hdr_i(&in, "Channel-State-Number", k == CH_CREATE ? 2 : k == CH_ANSWER ? 4 : 11);
    hdr(&in, "Channel-Name", chan);
    hdr(&in, "Unique-ID", f->ua);
    hdr(&in, "Call-Direction", f->outbound ? "outbound" : "inbound");
    hdr(&in, "Presence-Call-Direction", f->outbound ? "outbound" : "inbound");
    hdr(&in, "Channel-HIT-Dialplan", f->outbound ? "false" : "true");
    hdr(&in, "Channel-Call-UUID", f->ua);
    hdr(&in, "Answer-State", k == CH_CREATE ? "ringing" : k == CH_ANSWER ? "answered" : "hangup");
    hdr(&in, "Caller-Direction", f->outbound ? "outbound" : "inbound");
    hdr(&in, "Caller-Logical-Direction", f->outbound ? "outbound" : "inbound");
    hdr(&in, "Caller-Username", f->from);
    hdr(&in, "Caller-Dialplan", "XML");
    hdr(&in, "Caller-Caller-ID-Name", f->from_name);
    hdr(&in, "Caller-Caller-ID-Number", f->from);
    hdr(&in, "Caller-Orig-Caller-ID-Name", f->from_name);
    hdr(&in, "Caller-Orig-Caller-ID-Number", f->from);
    hdr(&in, "Caller-Network-Addr", "203.0.113.10");
    hdr(&in, "Caller-ANI", f->from);
    hdr(&in, "Caller-Destination-Number", f->to);
    hdr(&in, "Caller-Unique-ID", f->ua);
    hdr(&in, "Caller-Source", f->outbound ? "src/switch_ivr_originate.c" : "mod_sofia");
    hdr(&in, "Caller-Context", f->outbound ? "default" : "public");
    hdr(&in, "Caller-Channel-Name", chan);
    hdr_i(&in, "Caller-Profile-Index", 1);
    hdr_i(&in, "Caller-Profile-Created-Time", f->start);
    hdr_i(&in, "Caller-Channel-Created-Time", f->start);
    hdr_i(&in, "Caller-Channel-Answered-Time", k == CH_CREATE ? 0 : answered_at);
    hdr_i(&in, "Caller-Channel-Progress-Time", 0);
    hdr_i(&in, "Caller-Channel-Progress-Media-Time", 0);
    hdr_i(&in, "Caller-Channel-Hangup-Time", k == CH_HANGUP ? f->end : 0);
    hdr_i(&in, "Caller-Channel-Transfer-Time", 0);
    hdr_i(&in, "Caller-Channel-Resurrect-Time", 0);
    hdr_i(&in, "Caller-Channel-Bridged-Time", 0);
    hdr_i(&in, "Caller-Channel-Last-Hold", 0);
    hdr_i(&in, "Caller-Channel-Hold-Accum", 0);
    hdr(&in, "Caller-Screen-Bit", "true");
    hdr(&in, "Caller-Privacy-Hide-Name", "false");
    hdr(&in, "Caller-Privacy-Hide-Number", "false");
    hdr(&in, "variable_direction", f->outbound ? "outbound" : "inbound");
    hdr(&in, "variable_uuid", f->ua);
    hdr(&in, "variable_call_uuid", f->ua);
    if (k == CH_HANGUP) {
        const char *cause = "NORMAL_CLEARING";
        int q850 = 16;
        if (f->outbound && f->disp == CP_DISP_NO_ANSWER) {
            cause = "NO_ANSWER";
            q850 = 19;
        } else if (f->outbound && f->disp == CP_DISP_BUSY) {
            cause = "USER_BUSY";
            q850 = 17;
        }
        hdr(&in, "Hangup-Cause", cause);
        hdr(&in, "variable_hangup_cause", cause);
        hdr_i(&in, "variable_hangup_cause_q850", q850);
        bool recv_bye = f->outbound ? true : f->agent_caller_hangup;
        hdr(&in, "variable_sip_hangup_disposition", recv_bye ? "recv_bye" : "send_bye");
        hdr_i(&in, "variable_start_epoch", f->start / 1000000);
        hdr_i(&in, "variable_start_uepoch", f->start);
        hdr_i(&in, "variable_answer_epoch", answered ? answered_at / 1000000 : 0);
        hdr_i(&in, "variable_answer_uepoch", answered ? answered_at : 0);
        hdr_i(&in, "variable_end_epoch", f->end / 1000000);
        hdr_i(&in, "variable_end_uepoch", f->end);
        hdr_i(&in, "variable_duration", (f->end - f->start) / 1000000);
        hdr_i(&in, "variable_billsec", answered ? (f->end - answered_at) / 1000000 : 0);
        hdr_i(&in, "variable_hold_accum_seconds", 0);
        if (cc_queue)
            hdr(&in, "variable_cc_queue", cc_queue);
        if (cc_agent)
            hdr(&in, "variable_cc_agent", cc_agent);
    }
    esl_wrap(rec_new(rs, ts), &in);
}

struct cc_times {
    int64_t joined, called, answered, aborted, terminated, leaving; /* µs, 0 = unset */
};

static void hdr_s(struct pw_buf *b, const char *name, int64_t us)
{
    if (us > 0)
        hdr_i(b, name, us / 1000000);
}

/* A CUSTOM callcenter::info event about the member (the caller's channel). */
static void esl_cc(struct recs *rs, const struct pw_call *c, const struct fs_call *f,
                   const char *action, int64_t ts, unsigned seq, const char *queue,
                   const char *agent, const struct cc_times *tm, const char *cause,
                   const char *reason, const char *hangup)
{
    struct pw_buf in = {0};
    char member[40], agent_uuid[40];
    mk_uuid(member, sizeof member, c, 0xc);
    esl_head(&in, c, f, "CUSTOM", ts, seq, "mod_callcenter.c", "cc_member_thread_run", 2800);
    hdr(&in, "Event-Subclass", "callcenter::info");
    hdr(&in, "CC-Queue", queue);
    hdr(&in, "CC-Action", action);
    if (agent) {
        /* The agent's leg of this offer: one uuid per (call, agent, offer time). */
        struct pw_call cc = *c;
        cc.idx = c->idx ^ (uint32_t)(tm->called / 1000);
        mk_uuid(agent_uuid, sizeof agent_uuid, &cc, 0xb);
        hdr(&in, "CC-Agent", agent);
        hdr(&in, "CC-Agent-System", "single_box");
        hdr(&in, "CC-Agent-UUID", agent_uuid);
    }
    hdr_s(&in, "CC-Agent-Called-Time", tm->called);
    hdr_s(&in, "CC-Agent-Answered-Time", tm->answered);
    hdr_s(&in, "CC-Agent-Aborted-Time", tm->aborted);
    hdr_s(&in, "CC-Bridge-Terminated-Time", tm->terminated);
    hdr_s(&in, "CC-Member-Joined-Time", tm->joined);
    hdr_s(&in, "CC-Member-Leaving-Time", tm->leaving);
    if (hangup)
        hdr(&in, "CC-Hangup-Cause", hangup);
    if (cause)
        hdr(&in, "CC-Cause", cause);
    if (reason)
        hdr(&in, "CC-Cancel-Reason", reason);
    hdr(&in, "CC-Member-UUID", member);
    hdr(&in, "CC-Member-Session-UUID", f->ua);
    hdr(&in, "CC-Member-CID-Name", f->from_name);
    hdr(&in, "CC-Member-CID-Number", f->from);
    hdr(&in, "CC-Member-DNIS", f->to);
    /* member-queue-* carry the member channel's data too. */
    if (strncmp(action, "member-", 7) == 0) {
        hdr(&in, "Unique-ID", f->ua);
        hdr(&in, "Channel-Call-UUID", f->ua);
        hdr(&in, "Call-Direction", "inbound");
    }
    esl_wrap(rec_new(rs, ts), &in);
}

static const char *cancel_reason(const char *outcome)
{
    return strcmp(outcome, "timeout") == 0 ? "TIMEOUT" : "BREAK_OUT";
}

static int esl_render(const struct pw_call *c, struct pw_out *o)
{
    static struct recs rs;
    struct fs_call f;
    fs_call_read(c, &f);
    struct pw_truth *t = c->truth;
    unsigned seq = 1000u + c->idx * 64u;

    if (f.outbound) {
        esl_channel(&rs, c, &f, CH_CREATE, f.start, seq++, NULL, NULL);
        if (f.answer > 0)
            esl_channel(&rs, c, &f, CH_ANSWER, f.answer, seq++, NULL, NULL);
        esl_channel(&rs, c, &f, CH_HANGUP, f.end, seq++, NULL, NULL);
        t->call = pw_strdup(o, f.ua);
        t->cdr = false;
        t->dir = "outbound";
        t->from_name = f.from_name;
        t->final_to = NULL;
        t->side = NULL;
        t->n_v = 0;
        t->seg.present = false; /* no agent event: the bridge to the agent is not a queue call */
        return rec_flush(&rs, o);
    }

    /* Inbound: the caller's channel, the IVR's answer, then the queue's events. */
    const char *last_queue = NULL, *last_agent = NULL;
    esl_channel(&rs, c, &f, CH_CREATE, f.start, seq++, NULL, NULL);
    esl_channel(&rs, c, &f, CH_ANSWER, f.ivr_answer, seq++, NULL, NULL);
    struct cc_times tm = {0};
    const char *agent = NULL;
    for (size_t i = 0; i < c->n_ev; i++) {
        const struct cp_event *e = &c->ev[i];
        const char *q = e->queue ? qname(o, e->queue) : NULL;
        const char *a = e->agent ? qname(o, e->agent) : NULL;
        switch (e->kind) {
        case CP_KIND_QUEUE_ENTER:
            memset(&tm, 0, sizeof tm);
            tm.joined = e->ts;
            last_queue = q;
            esl_cc(&rs, c, &f, "member-queue-start", e->ts, seq++, q, NULL, &tm, NULL, NULL,
                   NULL);
            break;
        case CP_KIND_AGENT_OFFER:
            tm.called = e->ts;
            tm.aborted = tm.answered = 0;
            esl_cc(&rs, c, &f, "agent-offering", e->ts, seq++, q, a, &tm, NULL, NULL, NULL);
            break;
        case CP_KIND_AGENT_NOANSWER:
            tm.aborted = e->ts;
            esl_cc(&rs, c, &f, "bridge-agent-fail", e->ts, seq++, q, a, &tm, NULL, NULL,
                   "NO_ANSWER");
            tm.aborted = 0;
            break;
        case CP_KIND_AGENT_CONNECT:
            tm.answered = e->ts;
            agent = a;
            last_agent = a;
            esl_cc(&rs, c, &f, "bridge-agent-start", e->ts, seq++, q, a, &tm, NULL, NULL, NULL);
            break;
        case CP_KIND_AGENT_COMPLETE:
            tm.terminated = e->ts;
            esl_cc(&rs, c, &f, "bridge-agent-end", e->ts, seq++, q, agent, &tm, NULL, NULL,
                   "NORMAL_CLEARING");
            tm.leaving = e->ts;
            esl_cc(&rs, c, &f, "member-queue-end", e->ts, seq++, q, agent, &tm, "Terminated",
                   NULL, NULL);
            break;
        default:
            break; /* hold/unhold, transfer, wrap-up: nothing on this subscription */
        }
    }
    /* Every unanswered visit ends with member-queue-end Cancel (also when the caller just
     * hung up: mod_callcenter always reports the member leaving). */
    for (int i = 0; i < t->n_v; i++) {
        struct pw_visit *v = &t->v[i];
        v->queue = qname(o, v->queue);
        v->transfer_out = -1; /* no transfer event on ESL */
        if (v->connect >= 0)
            continue;
        struct cc_times lt = {.joined = v->enter, .leaving = v->leave};
        esl_cc(&rs, c, &f, "member-queue-end", v->leave, seq++, v->queue, NULL, &lt, "Cancel",
               cancel_reason(v->outcome), NULL);
    }
    esl_channel(&rs, c, &f, CH_HANGUP, f.end, seq++, last_queue, last_agent);

    t->call = pw_strdup(o, f.ua);
    t->cdr = false;
    t->from_name = f.from_name;
    t->final_to = NULL;
    t->disp = "answered"; /* the IVR answered the caller's channel */
    t->side = NULL;       /* no event names who hung up */
    t->answer = f.ivr_answer;
    if (t->seg.present) {
        t->seg.queue = qname(o, t->seg.queue);
        t->seg.agent = qname(o, t->seg.agent);
        t->seg.wrapup = NULL;
        t->seg.wrapup_end = t->seg.complete;
        t->seg.n_holds = 0; /* CHANNEL_HOLD is not subscribed */
        t->seg.cdr_hold = -1;
    }
    return rec_flush(&rs, o);
}

static void esl_yaml(FILE *f, const struct pw_pbx *p)
{
    (void)p;
    fprintf(f, ", login_secret: \"env:%s\"", pw_secret_env());
}

static void esl_greet(const struct pw_pbx *p, struct pw_session *s, struct pw_buf *reply)
{
    (void)p;
    s->ready = false;
    s->state[0] = '\0';
    pw_buf_str(reply, "Content-Type: auth/request\n\n");
}

/* One command per blank-line-terminated block: auth, event, anything else +OK / -ERR. */
static size_t esl_input(const struct pw_pbx *p, struct pw_session *s, const char *in, size_t len,
                        struct pw_buf *reply)
{
    (void)p;
    size_t end = 0, skip = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (in[i] == '\n' && in[i + 1] == '\n') {
            end = i;
            skip = i + 2;
            break;
        }
        if (i + 3 < len && memcmp(in + i, "\r\n\r\n", 4) == 0) {
            end = i;
            skip = i + 4;
            break;
        }
    }
    if (!skip)
        return 0;
    char cmd[512];
    size_t n = end < sizeof cmd - 1 ? end : sizeof cmd - 1;
    memcpy(cmd, in, n);
    cmd[n] = '\0';
    char *cr = strpbrk(cmd, "\r\n");
    if (cr)
        *cr = '\0';
    bool authed = strcmp(s->state, "authed") == 0;
    if (strncmp(cmd, "auth ", 5) == 0) {
        if (strcmp(cmd + 5, pw_secret()) == 0) {
            snprintf(s->state, sizeof s->state, "authed");
            pw_buf_str(reply, "Content-Type: command/reply\nReply-Text: +OK accepted\n\n");
        } else {
            pw_buf_str(reply, "Content-Type: command/reply\nReply-Text: -ERR invalid\n\n");
        }
    } else if (!authed) {
        pw_buf_str(reply, "Content-Type: command/reply\nReply-Text: -ERR invalid\n\n");
    } else if (strncmp(cmd, "event plain ", 12) == 0) {
        pw_buf_printf(reply, "Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n");
        s->ready = true;
    } else if (strncmp(cmd, "api ", 4) == 0) {
        pw_buf_str(reply, "Content-Type: api/response\nContent-Length: 3\n\n+OK");
    } else {
        pw_buf_str(reply, "Content-Type: command/reply\nReply-Text: -ERR command not found\n\n");
    }
    return skip;
}

const struct pw_wire pw_wire_fs_esl = {
    .name = "fs-esl",
    .format = "freeswitch-esl",
    .transport = PW_TCP_SERVER,
    .sep = "",
    .render = esl_render,
    .source_yaml = esl_yaml,
    .greet = esl_greet,
    .input = esl_input,
};

/* ================================================================ JSON CDR */

static void jv(struct pw_buf *b, const char *k, const char *v, bool *first)
{
    if (!v)
        return;
    pw_buf_str(b, *first ? "\"" : ",\"");
    *first = false;
    pw_buf_str(b, k);
    pw_buf_add(b, "\":\"", 3);
    url_enc(b, v); /* encode-values: true (the default) */
    pw_buf_add(b, "\"", 1);
}

static void jvi(struct pw_buf *b, const char *k, int64_t v, bool *first)
{
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%" PRId64, v);
    jv(b, k, tmp, first);
}

static void profile(struct pw_buf *b, const char *uuid, const char *num, const char *name,
                    const char *dest, const char *context, const char *chan,
                    const char *originatee_dest)
{
    pw_buf_str(b, "{\"username\":");
    json_str(b, num);
    pw_buf_str(b, ",\"dialplan\":\"XML\",\"caller_id_name\":");
    json_str(b, name);
    pw_buf_str(b, ",\"ani\":");
    json_str(b, num);
    pw_buf_str(b, ",\"aniii\":\"\",\"caller_id_number\":");
    json_str(b, num);
    pw_buf_str(b, ",\"network_addr\":\"203.0.113.10\",\"rdnis\":\"\",\"destination_number\":");
    json_str(b, dest);
    pw_buf_str(b, ",\"uuid\":");
    json_str(b, uuid);
    pw_buf_str(b, ",\"source\":\"mod_sofia\",\"context\":");
    json_str(b, context);
    pw_buf_str(b, ",\"chan_name\":");
    json_str(b, chan);
    if (originatee_dest) {
        pw_buf_str(b, ",\"originatee\":{\"originatee_caller_profiles\":[{\"username\":");
        json_str(b, originatee_dest);
        pw_buf_str(b, ",\"dialplan\":\"XML\",\"caller_id_name\":");
        json_str(b, name);
        pw_buf_str(b, ",\"caller_id_number\":");
        json_str(b, num);
        pw_buf_str(b, ",\"destination_number\":");
        json_str(b, originatee_dest);
        pw_buf_str(b, ",\"source\":\"mod_callcenter\",\"context\":\"default\"}]}");
    }
    pw_buf_str(b, "}");
}

static void cf_times(struct pw_buf *b, int64_t created, int64_t answered, int64_t hangup,
                  int64_t hold_us)
{
    pw_buf_printf(b,
                  "{\"created_time\":\"%" PRId64 "\",\"profile_created_time\":\"%" PRId64
                  "\",\"progress_time\":\"0\",\"progress_media_time\":\"0\",\"answered_time\":\"%" PRId64
                  "\",\"bridged_time\":\"0\",\"last_hold_time\":\"0\",\"hold_accum_time\":\"%" PRId64
                  "\",\"hangup_time\":\"%" PRId64 "\",\"resurrect_time\":\"0\",\"transfer_time\":\"0\"}",
                  created, created, answered, hold_us, hangup);
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void b64(struct pw_buf *out, const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        char q[4] = {b64chars[(v >> 18) & 63], b64chars[(v >> 12) & 63],
                     i + 1 < n ? b64chars[(v >> 6) & 63] : '=', i + 2 < n ? b64chars[v & 63] : '='};
        pw_buf_add(out, q, 4);
    }
}

static int jcdr_render(const struct pw_call *c, struct pw_out *o)
{
    struct fs_call f;
    fs_call_read(c, &f);
    struct pw_truth *t = c->truth;
    char host[32];
    snprintf(host, sizeof host, "fs%d", c->pbx->index);

    /* The facts of the caller's (or customer's) leg at hang-up. */
    int64_t answered = f.outbound ? (f.answer > 0 ? f.answer : 0) : f.ivr_answer;
    const char *cause = "NORMAL_CLEARING";
    int q850 = 16;
    if (f.outbound && f.disp == CP_DISP_NO_ANSWER) {
        cause = "NO_ANSWER";
        q850 = 19;
    } else if (f.outbound && f.disp == CP_DISP_BUSY) {
        cause = "USER_BUSY";
        q850 = 17;
    }
    int64_t hold_us = 0;
    for (int i = 0; i < t->seg.n_holds && t->seg.present && !f.outbound; i++)
        hold_us += t->seg.holds[i][1] - t->seg.holds[i][0];
    int64_t hold_s = hold_us / 1000000;
    /* The latest queue visit (mod_callcenter's cc_* variables describe it), and the answered one. */
    const struct pw_visit *lv = t->n_v ? &t->v[t->n_v - 1] : NULL;
    const struct pw_visit *av = t->n_v && t->v[0].connect >= 0 ? &t->v[0] : NULL;
    const char *lq = lv ? qname(o, lv->queue) : NULL;
    const char *agent = t->seg.present && !f.outbound ? qname(o, t->seg.agent) : NULL;
    bool transferred = t->n_v > 1;

    struct pw_buf b = {0};
    bool first = true;
    pw_buf_str(&b, "{\"core-uuid\":");
    json_str(&b, f.core);
    pw_buf_str(&b, ",\"switchname\":");
    json_str(&b, host);
    pw_buf_printf(&b, ",\"channel_data\":{\"state\":\"CS_REPORTING\",\"direction\":\"%s\","
                      "\"state_number\":\"11\",\"flags\":\"0=1;1=1;38=1;39=1;41=1\","
                      "\"caps\":\"1=1;2=1;3=1;4=1;5=1;6=1\"},\"variables\":{",
                  f.outbound ? "outbound" : "inbound");
    jv(&b, "direction", f.outbound ? "outbound" : "inbound", &first);
    jv(&b, "uuid", f.ua, &first);
    jv(&b, "call_uuid", f.ua, &first);
    jv(&b, "switch_r_sdp", "v=0\r\no=- 3920 3920 IN IP4 203.0.113.10\r\ns=-\r\n", &first);
    jv(&b, "sip_from_user", f.from, &first);
    jv(&b, "sip_to_user", f.to, &first);
    jv(&b, "caller_id_name", f.from_name, &first);
    jv(&b, "caller_id_number", f.from, &first);
    jv(&b, "destination_number", transferred ? "7002" : f.to, &first);
    jv(&b, "hangup_cause", cause, &first);
    jvi(&b, "hangup_cause_q850", q850, &first);
    jv(&b, "sip_hangup_disposition",
       f.outbound || f.agent_caller_hangup || !t->seg.present ? "recv_bye" : "send_bye", &first);
    jvi(&b, "start_epoch", f.start / 1000000, &first);
    jvi(&b, "start_uepoch", f.start, &first);
    jvi(&b, "answer_epoch", answered / 1000000, &first);
    jvi(&b, "answer_uepoch", answered, &first);
    jvi(&b, "end_epoch", f.end / 1000000, &first);
    jvi(&b, "end_uepoch", f.end, &first);
    jvi(&b, "duration", (f.end - f.start) / 1000000, &first);
    int64_t billsec = answered ? (f.end - answered) / 1000000 : 0;
    jvi(&b, "billsec", billsec, &first);
    jvi(&b, "billmsec", answered ? (f.end - answered) / 1000 : 0, &first);
    jvi(&b, "hold_accum_seconds", hold_s, &first);
    jvi(&b, "hold_accum_usec", hold_us, &first);
    if (lv) {
        /* mod_callcenter's member variables; cc_queue_answered/terminated_epoch and cc_agent
         * stay from the answered first visit when the agent transferred the caller on. */
        jv(&b, "cc_queue", lq, &first);
        jv(&b, "cc_member_session_uuid", f.ua, &first);
        jvi(&b, "cc_queue_joined_epoch", lv->enter / 1000000, &first);
        if (av) {
            jvi(&b, "cc_queue_answered_epoch", av->connect / 1000000, &first);
            jvi(&b, "cc_queue_terminated_epoch", t->seg.complete / 1000000, &first);
            jv(&b, "cc_agent", agent, &first);
            jv(&b, "cc_agent_type", "uuid-standby", &first);
        }
        if (lv->connect < 0) {
            jvi(&b, "cc_queue_canceled_epoch", lv->leave / 1000000, &first);
            jv(&b, "cc_cause", "Cancel", &first);
            jv(&b, "cc_cancel_reason", cancel_reason(lv->outcome), &first);
        } else {
            jv(&b, "cc_cause", "Terminated", &first);
            jv(&b, "cc_side", "member", &first);
        }
    }
    pw_buf_str(&b, "},\"app_log\":{\"applications\":[");
    if (f.outbound)
        pw_buf_str(&b, "{\"app_name\":\"bridge\",\"app_data\":\"user/agent\"}");
    else
        pw_buf_str(&b, "{\"app_name\":\"answer\",\"app_data\":\"\"},"
                       "{\"app_name\":\"callcenter\",\"app_data\":\"queue\"}");
    pw_buf_str(&b, "]},\"callflow\":[");
    /* Newest profile first: a transfer made a second one (the other queue's extension). */
    char chan[96];
    snprintf(chan, sizeof chan, f.outbound ? "sofia/gateway/pstn/%s" : "sofia/external/%s",
             f.outbound ? f.to : f.from);
    const char *orig_dest = NULL;
    if (f.outbound && f.answer > 0 && f.agent)
        orig_dest = f.agent;
    else if (!f.outbound && av && !transferred)
        orig_dest = t->seg.agent;
    if (transferred) {
        pw_buf_str(&b, "{\"dialplan\":\"XML\",\"profile_index\":\"2\",\"caller_profile\":");
        profile(&b, f.ua, f.from, f.from_name, "7002", "default", chan, NULL);
        pw_buf_str(&b, ",\"times\":");
        cf_times(&b, t->seg.complete, answered, f.end, hold_us);
        pw_buf_str(&b, "},");
    }
    pw_buf_str(&b, "{\"dialplan\":\"XML\",\"profile_index\":\"1\",\"caller_profile\":");
    profile(&b, f.ua, f.from, f.from_name, f.to, f.outbound ? "default" : "public", chan,
            orig_dest);
    pw_buf_str(&b, ",\"times\":");
    cf_times(&b, f.start, answered, transferred ? t->seg.complete : f.end, hold_us);
    pw_buf_str(&b, "}]}");

    /* mod_json_cdr `encode`: false, true, base64 - one setting per PBX in real life; here
     * rotated per call so that every encoding crosses the collector. */
    struct pw_buf body = {0};
    switch (c->idx % 3) {
    case 0:
        pw_buf_add(&body, b.p, b.len);
        break;
    case 1:
        pw_buf_str(&body, "cdr=");
        url_enc(&body, b.p);
        break;
    default:
        pw_buf_str(&body, "cdr=");
        b64(&body, (const unsigned char *)b.p, b.len);
        break;
    }
    free(b.p);
    pw_record(o, f.end, body.p, body.len);
    free(body.p);

    /* The truth: what this one record says. */
    t->call = pw_strdup(o, f.ua);
    t->cdr = true;
    t->from_name = f.from_name;
    t->side = NULL;
    t->final_to = orig_dest ? pw_strdup(o, orig_dest) : NULL;
    if (f.outbound) {
        t->dir = "outbound";
        t->n_v = 0;
        if (f.answer > 0) {
            t->seg = (struct pw_segment){.present = true, .connect = f.answer,
                                         .complete = f.answer + billsec * 1000000,
                                         .cdr_hold = 0};
            t->seg.wrapup_end = t->seg.complete;
        } else {
            t->seg.present = false;
        }
        return 1;
    }
    t->disp = "answered"; /* answered by the dialplan */
    int64_t joined_s = lv->enter / 1000000;
    if (av && !transferred) {
        int64_t ans_s = av->connect / 1000000, term_s = t->seg.complete / 1000000;
        int64_t talk = term_s - ans_s - hold_s;
        t->answer = ans_s * 1000000;
        t->n_v = 1;
        t->v[0] = (struct pw_visit){.queue = lq, .enter = joined_s * 1000000,
                                    .connect = ans_s * 1000000, .leave = -1, .transfer_out = -1,
                                    .outcome = "answered"};
        t->seg = (struct pw_segment){.present = true, .queue = lq, .agent = agent,
                                     .connect = ans_s * 1000000,
                                     .complete = (ans_s + talk + hold_s) * 1000000,
                                     .cdr_hold = hold_s * 1000000};
        t->seg.wrapup_end = t->seg.complete;
        return 1;
    }
    /* The latest visit was cancelled: the engine places a cdr's queue exit at the call's end
     * and its entry `wait` whole seconds before (a cdr has no queue-exit time). */
    int64_t wait_s = lv->leave / 1000000 - joined_s;
    t->answer = f.ivr_answer;
    t->n_v = 1;
    t->v[0] = (struct pw_visit){.queue = lq, .enter = f.end - wait_s * 1000000, .connect = -1,
                                .leave = f.end, .transfer_out = -1, .outcome = lv->outcome};
    t->seg.present = false;
    return 1;
}

/*
 * mod_json_cdr can only send Basic/Digest credentials (`auth-scheme`, `cred`): the collector
 * takes its source token as the Basic password, so the PBX sends cred=freeswitch:<token>.
 */
static void jcdr_yaml(FILE *f, const struct pw_pbx *p)
{
    (void)p;
    fprintf(f, ", token: \"env:%s\"", pw_secret_env());
}

/* base64("freeswitch:" + token), computed once. */
static const char *basic_cred(void)
{
    static char out[512];
    if (!out[0]) {
        char plain[300];
        int n = snprintf(plain, sizeof plain, "freeswitch:%s", pw_secret());
        if (n < 0 || (size_t)n >= sizeof plain)
            n = 0;
        EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)plain, n);
    }
    return out;
}

static void jcdr_http_request(const struct pw_pbx *p, const struct pw_rec *recs, int n,
                              struct pw_buf *req)
{
    for (int i = 0; i < n; i++) {
        const char *ct = "application/json";
        if (recs[i].len > 7 && memcmp(recs[i].p, "cdr=%7B", 7) == 0)
            ct = "application/x-www-form-urlencoded";
        else if (recs[i].len > 4 && memcmp(recs[i].p, "cdr=", 4) == 0)
            ct = "application/x-www-form-base64-encoded";
        pw_buf_printf(req,
                      "POST /cdr HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: freeswitch-json/1.0\r\n"
                      "Accept: */*\r\nAuthorization: Basic %s\r\nContent-Type: %s\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      p->port, basic_cred(), ct, recs[i].len);
        pw_buf_add(req, recs[i].p, recs[i].len);
    }
}

const struct pw_wire pw_wire_fs_json_cdr = {
    .name = "fs-json-cdr",
    .format = "freeswitch-json-cdr",
    .transport = PW_HTTP,
    .render = jcdr_render,
    .source_yaml = jcdr_yaml,
    .http_batch = 1,
    .http_request = jcdr_http_request,
};
