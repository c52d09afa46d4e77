/* pbxwire_asterisk.c - the Asterisk wires: AMI events (tcp-server), queue_log lines (tcp, syslog) and Master.csv rows (tcp). */
#include "pbxwire.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sources/asterisk_ami/ami_client.h"

/*
 * One Asterisk 16-20 with app_queue per PBX.  The dialplan answers the caller in an IVR at
 * once (Answer(), menu), then Queue(); agents are PJSIP endpoints named by their member name.
 * The caller channel's Uniqueid (= the call's Linkedid) is "<start second>.<call idx>".
 */

#define TZ "Europe/Berlin"

static const char *fmt_us(char *b, size_t n, int64_t us)
{
    snprintf(b, n, "%" PRId64 ".%06" PRId64, us / 1000000, us % 1000000);
    return b;
}

/* The caller channel's Uniqueid, the call id every Asterisk format names the call by. */
static const char *call_uid(const struct pw_call *c, struct pw_out *o)
{
    int64_t start = c->n_ev ? c->ev[0].ts : 0;
    if (c->n_ev && c->ev[0].kind == CP_KIND_CDR)
        start = c->ev[0].start;
    char b[48];
    snprintf(b, sizeof b, "%" PRId64 ".%u", start / 1000000, c->idx);
    return pw_strdup(o, b);
}

/* The member channel of the k-th agent attempt. */
static void member_uid(char *b, size_t n, const struct pw_call *c, int64_t ts, int k)
{
    snprintf(b, n, "%" PRId64 ".%u", ts / 1000000, 100000000u + c->idx * 8u + (unsigned)k);
}

static void local_time(char *b, size_t n, int64_t us)
{
    int y, mo, d, h, mi, s;
    if (pw_local_time(us, TZ, &y, &mo, &d, &h, &mi, &s) != 0)
        y = mo = d = h = mi = s = 0;
    snprintf(b, n, "%04d-%02d-%02d %02d:%02d:%02d", y, mo, d, h, mi, s);
}

static bool streq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* The visit of the truth that entered `queue` last at or before ts. */
static struct pw_visit *visit_of(const struct pw_call *c, const char *queue, int64_t ts)
{
    struct pw_visit *best = NULL;
    for (int i = 0; i < c->truth->n_v; i++) {
        struct pw_visit *v = &c->truth->v[i];
        if (streq(v->queue, queue) && v->enter <= ts && (!best || v->enter >= best->enter))
            best = v;
    }
    return best;
}

/* ======================================================================== AMI ==== */

struct snap {
    const char *chan, *num, *name, *cnum, *cname, *ctx, *exten, *uid, *lid;
    int state; /* 4 Ring, 5 Ringing, 6 Up */
};

static const char *state_desc(int s)
{
    return s == 6 ? "Up" : s == 5 ? "Ringing" : "Ring";
}

static void ami_snap(struct pw_buf *b, const char *pre, const struct snap *s)
{
    pw_buf_printf(b,
                  "%sChannel: %s\r\n%sChannelState: %d\r\n%sChannelStateDesc: %s\r\n"
                  "%sCallerIDNum: %s\r\n%sCallerIDName: %s\r\n%sConnectedLineNum: %s\r\n"
                  "%sConnectedLineName: %s\r\n%sLanguage: en\r\n%sAccountCode: \r\n"
                  "%sContext: %s\r\n%sExten: %s\r\n%sPriority: 1\r\n%sUniqueid: %s\r\n"
                  "%sLinkedid: %s\r\n",
                  pre, s->chan, pre, s->state, pre, state_desc(s->state), pre,
                  s->num ? s->num : "<unknown>", pre, s->name ? s->name : "<unknown>", pre,
                  s->cnum ? s->cnum : "<unknown>", pre, s->cname ? s->cname : "<unknown>", pre,
                  pre, pre, s->ctx, pre, s->exten, pre, pre, s->uid, pre, s->lid);
}

static void ami_head(struct pw_buf *b, const char *event, const char *priv, int64_t ts)
{
    char t[40];
    b->len = 0;
    pw_buf_printf(b, "Event: %s\r\nPrivilege: %s\r\nTimestamp: %s\r\n", event, priv,
                  fmt_us(t, sizeof t, ts));
}

static void ami_send(struct pw_out *o, struct pw_buf *b, int64_t ts, int *n)
{
    pw_buf_str(b, "\r\n");
    pw_record(o, ts, b->p, b->len);
    (*n)++;
}

struct ami_ctx {
    const struct pw_call *c;
    struct pw_out *o;
    struct pw_buf b;
    int n;
    char uid[48], chan[48];
    struct snap caller;
    char m_uid[48], m_chan[48], m_if[40];
    struct snap member;
    const char *agent;
    int64_t offer_ts, enter_ts, connect_ts;
};

static void ami_member(struct ami_ctx *a, const char *agent, int64_t ts, int k)
{
    a->agent = agent;
    member_uid(a->m_uid, sizeof a->m_uid, a->c, ts, k);
    snprintf(a->m_chan, sizeof a->m_chan, "PJSIP/%s-%08x", agent, a->c->idx * 8u + (unsigned)k);
    snprintf(a->m_if, sizeof a->m_if, "PJSIP/%s", agent);
    a->member = (struct snap){.chan = a->m_chan, .num = agent, .name = "Agent",
                              .cnum = a->caller.num, .cname = a->caller.name,
                              .ctx = "from-queue", .exten = agent, .uid = a->m_uid,
                              .lid = a->uid, .state = 5};
}

/* A queue event with the caller's snapshot, the member's (Dest*) and the member fields. */
static void ami_agent_event(struct ami_ctx *a, const char *event, int64_t ts, const char *queue)
{
    ami_head(&a->b, event, "agent,all", ts);
    ami_snap(&a->b, "", &a->caller);
    ami_snap(&a->b, "Dest", &a->member);
    pw_buf_printf(&a->b, "Queue: %s\r\nMemberName: %s\r\nInterface: %s\r\n", queue, a->agent,
                  a->m_if);
}

static void ami_leg_hangup(struct ami_ctx *a, const struct snap *s, int64_t ts, int cause,
                           const char *txt)
{
    ami_head(&a->b, "Hangup", "call,all", ts);
    ami_snap(&a->b, "", s);
    pw_buf_printf(&a->b, "Cause: %d\r\nCause-txt: %s\r\n", cause, txt);
    ami_send(a->o, &a->b, ts, &a->n);
}

/* The caller leaves a queue without an agent: abandon (AMI says why) or timeout (it does not). */
static void ami_leave(struct ami_ctx *a, struct pw_visit *v, bool *done)
{
    if (*done || !v || v->connect >= 0 || v->leave < 0)
        return;
    *done = true;
    int64_t wait_s = v->leave / 1000000 - v->enter / 1000000;
    /* app_queue publishes QueueCallerAbandon, then QueueCallerLeave (same moment). */
    if (streq(v->outcome, "abandoned")) {
        ami_head(&a->b, "QueueCallerAbandon", "agent,all", v->leave);
        ami_snap(&a->b, "", &a->caller);
        pw_buf_printf(&a->b, "Queue: %s\r\nPosition: 1\r\nOriginalPosition: 1\r\nHoldTime: %" PRId64
                             "\r\n",
                      v->queue, wait_s);
        ami_send(a->o, &a->b, v->leave, &a->n);
    }
    ami_head(&a->b, "QueueCallerLeave", "agent,all", v->leave);
    ami_snap(&a->b, "", &a->caller);
    pw_buf_printf(&a->b, "Queue: %s\r\nPosition: 1\r\nCount: 0\r\n", v->queue);
    ami_send(a->o, &a->b, v->leave, &a->n);
    if (!streq(v->outcome, "abandoned")) {
        v->outcome = NULL; /* QueueCallerLeave alone: the reader cannot tell a timeout */
    }
}

static int ami_render(const struct pw_call *c, struct pw_out *o)
{
    struct pw_truth *t = c->truth;
    struct ami_ctx a = {.c = c, .o = o};
    const char *uid = call_uid(c, o);
    snprintf(a.uid, sizeof a.uid, "%s", uid);
    t->call = uid;
    t->dir = NULL;      /* Newchannel does not say which way the call goes */
    t->final_to = NULL; /* nor does anything else */
    t->disp = NULL;     /* Hangup carries a Q.850 cause, no disposition (cdr_manager is off) */

    if (c->n_ev == 1 && c->ev[0].kind == CP_KIND_CDR) {
        /* An agent's outbound call: the agent's channel is created and hangs up. */
        const struct cp_event *e = &c->ev[0];
        const char *agent = e->agent ? e->agent : "a100";
        snprintf(a.chan, sizeof a.chan, "PJSIP/%s-%08x", agent, c->idx * 8u + 7u);
        a.caller = (struct snap){.chan = a.chan, .num = e->from, .name = e->from_name,
                                 .ctx = "from-internal", .exten = e->to, .uid = a.uid,
                                 .lid = a.uid, .state = 4};
        ami_head(&a.b, "Newchannel", "call,all", e->start);
        ami_snap(&a.b, "", &a.caller);
        ami_send(o, &a.b, e->start, &a.n);
        a.caller.state = e->disp == CP_DISP_ANSWERED ? 6 : 5;
        int cause = e->disp == CP_DISP_ANSWERED ? 16 : e->disp == CP_DISP_BUSY ? 17 : 19;
        const char *txt = cause == 16   ? "Normal Clearing"
                          : cause == 17 ? "User busy"
                                        : "No answer";
        ami_leg_hangup(&a, &a.caller, e->end, cause, txt);
        t->cdr = false;
        t->start = e->start;
        t->end = e->end;
        t->answer = -1;
        t->side = NULL;
        t->n_v = 0;
        t->seg.present = false;
        free(a.b.p);
        return a.n;
    }

    snprintf(a.chan, sizeof a.chan, "PJSIP/trunk-%08x", c->idx);
    bool transferring = false, left[2] = {false, false};
    int k = 0;
    for (size_t i = 0; i < c->n_ev; i++) {
        const struct cp_event *e = &c->ev[i];
        struct pw_visit *v = e->queue ? visit_of(c, e->queue, e->ts) : NULL;
        int vi = v ? (int)(v - t->v) : 0;
        switch (e->kind) {
        case CP_KIND_CALL_START:
            a.caller = (struct snap){.chan = a.chan, .num = e->from, .name = e->from_name,
                                     .ctx = "from-trunk", .exten = e->to, .uid = a.uid,
                                     .lid = a.uid, .state = 4};
            ami_head(&a.b, "Newchannel", "call,all", e->ts);
            ami_snap(&a.b, "", &a.caller);
            ami_send(o, &a.b, e->ts, &a.n);
            a.caller.state = 6; /* the IVR answers */
            a.caller.ctx = "ivr";
            break;
        case CP_KIND_QUEUE_ENTER:
            a.enter_ts = e->ts;
            a.caller.ctx = "queues";
            ami_head(&a.b, "QueueCallerJoin", "agent,all", e->ts);
            ami_snap(&a.b, "", &a.caller);
            pw_buf_printf(&a.b, "Queue: %s\r\nPosition: 1\r\nCount: 1\r\n", e->queue);
            ami_send(o, &a.b, e->ts, &a.n);
            break;
        case CP_KIND_AGENT_OFFER:
            ami_member(&a, e->agent, e->ts, k++);
            a.offer_ts = e->ts;
            /* The member's channel: not the call's originating leg, the parser skips it. */
            ami_head(&a.b, "Newchannel", "call,all", e->ts);
            ami_snap(&a.b, "", &a.member);
            ami_send(o, &a.b, e->ts, &a.n);
            ami_agent_event(&a, "AgentCalled", e->ts, e->queue);
            ami_send(o, &a.b, e->ts, &a.n);
            break;
        case CP_KIND_AGENT_NOANSWER:
            ami_agent_event(&a, "AgentRingNoAnswer", e->ts, e->queue);
            pw_buf_printf(&a.b, "RingTime: %" PRId64 "\r\n", (e->ts - a.offer_ts) / 1000);
            ami_send(o, &a.b, e->ts, &a.n);
            ami_leg_hangup(&a, &a.member, e->ts, 19, "No answer");
            break;
        case CP_KIND_AGENT_CONNECT:
            a.connect_ts = e->ts;
            a.member.state = 6;
            ami_head(&a.b, "QueueCallerLeave", "agent,all", e->ts);
            ami_snap(&a.b, "", &a.caller);
            pw_buf_printf(&a.b, "Queue: %s\r\nPosition: 1\r\nCount: 0\r\n", e->queue);
            ami_send(o, &a.b, e->ts, &a.n);
            ami_agent_event(&a, "AgentConnect", e->ts, e->queue);
            pw_buf_printf(&a.b, "HoldTime: %" PRId64 "\r\nRingTime: %" PRId64 "\r\n",
                          e->ts / 1000000 - a.enter_ts / 1000000, (e->ts - a.offer_ts) / 1000000);
            ami_send(o, &a.b, e->ts, &a.n);
            break;
        case CP_KIND_HOLD:
        case CP_KIND_UNHOLD:
            /* The agent's phone puts the caller on hold: the event names the agent's
             * channel, which shares the call's Linkedid. */
            ami_head(&a.b, e->kind == CP_KIND_HOLD ? "Hold" : "Unhold", "call,all", e->ts);
            ami_snap(&a.b, "", &a.member);
            if (e->kind == CP_KIND_HOLD)
                pw_buf_str(&a.b, "MusicClass: default\r\n");
            ami_send(o, &a.b, e->ts, &a.n);
            break;
        case CP_KIND_TRANSFER: {
            transferring = true;
            const char *to = NULL;
            for (int j = 0; j < t->n_v; j++)
                if (t->v[j].enter >= e->ts)
                    to = t->v[j].queue;
            ami_head(&a.b, "BlindTransfer", "call,all", e->ts);
            pw_buf_str(&a.b, "Result: Success\r\n");
            ami_snap(&a.b, "Transferer", &a.member);
            ami_snap(&a.b, "Transferee", &a.caller);
            pw_buf_printf(&a.b, "IsExternal: No\r\nContext: queues\r\nExtension: %s\r\n",
                          to ? to : "s");
            ami_send(o, &a.b, e->ts, &a.n);
            if (v)
                v->transfer_out = -1; /* the parser does not map BlindTransfer */
            break;
        }
        case CP_KIND_AGENT_COMPLETE: {
            const char *reason = transferring ? "transfer" : t->side ? t->side : "caller";
            ami_agent_event(&a, "AgentComplete", e->ts, e->queue);
            pw_buf_printf(&a.b, "HoldTime: %" PRId64 "\r\nTalkTime: %" PRId64 "\r\nReason: %s\r\n",
                          a.connect_ts / 1000000 - a.enter_ts / 1000000,
                          (e->ts - a.connect_ts) / 1000000, reason);
            ami_send(o, &a.b, e->ts, &a.n);
            ami_leg_hangup(&a, &a.member, e->ts, 16, "Normal Clearing");
            break;
        }
        case CP_KIND_QUEUE_LEAVE:
            if (v)
                ami_leave(&a, v, &left[vi]);
            break;
        case CP_KIND_CALL_END:
            /* A caller who hangs up in the queue: app_queue reports the abandon first. */
            for (int j = 0; j < t->n_v; j++)
                if (t->v[j].leave >= 0 && t->v[j].leave <= e->ts)
                    ami_leave(&a, &t->v[j], &left[j]);
            ami_leg_hangup(&a, &a.caller, e->ts, 16, "Normal Clearing");
            break;
        default:
            break; /* wrap-up: app_queue's wrapuptime sends no event */
        }
    }
    /* What the events tell: AgentComplete's Reason is the only hang-up side; no wrap-up. */
    if (!t->seg.present || transferring)
        t->side = NULL;
    t->answer = t->seg.present ? t->seg.connect : -1;
    if (t->seg.present) {
        t->seg.wrapup = NULL;
        t->seg.wrapup_end = t->seg.complete;
    }
    free(a.b.p);
    return a.n;
}

static void ami_yaml(FILE *f, const struct pw_pbx *p)
{
    fprintf(f, ", username: callpipe, login_secret: \"env:%s\", login: %s", pw_secret_env(),
            p->index % 2 ? "plain" : "md5");
}

static void ami_greet(const struct pw_pbx *p, struct pw_session *s, struct pw_buf *reply)
{
    static const char *const versions[] = {"5.0.4", "7.0.3", "9.0.0"};
    s->state[0] = '\0';
    pw_buf_printf(reply, "Asterisk Call Manager/%s\r\n", versions[p->index % 3]);
}

/* The value of header `key` in the block [blk, end), copied into v (empty when absent). */
static void ami_hdr(const char *blk, const char *end, const char *key, char *v, size_t cap)
{
    size_t kl = strlen(key);
    v[0] = '\0';
    for (const char *l = blk; l < end;) {
        const char *nl = memchr(l, '\n', (size_t)(end - l));
        const char *le = nl ? nl : end;
        if ((size_t)(le - l) > kl && strncasecmp(l, key, kl) == 0 && l[kl] == ':') {
            const char *s = l + kl + 1;
            while (s < le && *s == ' ')
                s++;
            const char *e = le;
            while (e > s && (e[-1] == '\r' || e[-1] == ' '))
                e--;
            size_t n = (size_t)(e - s) < cap - 1 ? (size_t)(e - s) : cap - 1;
            memcpy(v, s, n);
            v[n] = '\0';
            return;
        }
        l = nl ? nl + 1 : end;
    }
}

static size_t ami_input(const struct pw_pbx *p, struct pw_session *s, const char *in, size_t len,
                        struct pw_buf *reply)
{
    /* One action block: header lines up to an empty line (CRLF or bare LF). */
    size_t end = 0;
    bool found = false;
    for (size_t i = 0; i + 1 < len && !found; i++) {
        if (in[i] == '\n' && in[i + 1] == '\n') {
            end = i + 2;
            found = true;
        } else if (in[i] == '\n' && in[i + 1] == '\r' && i + 2 < len && in[i + 2] == '\n') {
            end = i + 3;
            found = true;
        }
    }
    if (!found)
        return 0;
    const char *blk = in, *be = in + end;
    while (blk < be && (*blk == '\r' || *blk == '\n'))
        blk++;
    if (blk == be)
        return end;
    char action[64], id[128], user[128], secret[256], key[64], auth[16];
    ami_hdr(blk, be, "Action", action, sizeof action);
    ami_hdr(blk, be, "ActionID", id, sizeof id);
    char aid[160] = "";
    if (id[0])
        snprintf(aid, sizeof aid, "ActionID: %s\r\n", id);
    if (!strcasecmp(action, "Challenge")) {
        ami_hdr(blk, be, "AuthType", auth, sizeof auth);
        if (strcasecmp(auth, "md5") != 0) {
            pw_buf_printf(reply, "Response: Error\r\n%sMessage: Must specify AuthType\r\n\r\n", aid);
        } else {
            snprintf(s->state, sizeof s->state, "%09u", 104729u * (unsigned)(p->index + 1) % 1000000000u);
            pw_buf_printf(reply, "Response: Success\r\n%sChallenge: %s\r\n\r\n", aid, s->state);
        }
    } else if (!strcasecmp(action, "Login")) {
        ami_hdr(blk, be, "Username", user, sizeof user);
        ami_hdr(blk, be, "AuthType", auth, sizeof auth);
        bool ok = strcmp(user, "callpipe") == 0;
        if (!strcasecmp(auth, "md5")) {
            char want[33];
            ami_hdr(blk, be, "Key", key, sizeof key);
            ok = ok && s->state[0] && cp_ami_md5_key(s->state, pw_secret(), want) == 0 &&
                 strcasecmp(want, key) == 0;
        } else {
            ami_hdr(blk, be, "Secret", secret, sizeof secret);
            ok = ok && strcmp(secret, pw_secret()) == 0;
        }
        if (ok) {
            pw_buf_printf(reply, "Response: Success\r\n%sMessage: Authentication accepted\r\n\r\n",
                          aid);
            pw_buf_str(reply, "Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 86400\r\n"
                              "LastReload: 86400\r\nStatus: Fully Booted\r\n\r\n");
            s->ready = true;
        } else {
            pw_buf_printf(reply, "Response: Error\r\n%sMessage: Authentication failed\r\n\r\n", aid);
        }
    } else if (!strcasecmp(action, "Ping")) {
        pw_buf_printf(reply, "Response: Success\r\n%sPing: Pong\r\nTimestamp: 0.000000\r\n\r\n",
                      aid);
    } else if (!strcasecmp(action, "Events")) {
        ami_hdr(blk, be, "EventMask", key, sizeof key);
        pw_buf_printf(reply, "Response: Success\r\n%sEvents: %s\r\n\r\n", aid,
                      strcasecmp(key, "off") ? "On" : "Off");
    } else if (!strcasecmp(action, "Filter")) {
        pw_buf_printf(reply, "Response: Success\r\n%sMessage: Filter Added Successfully\r\n\r\n",
                      aid);
    } else if (!strcasecmp(action, "Logoff")) {
        pw_buf_printf(reply, "Response: Goodbye\r\n%sMessage: Thanks for all the fish.\r\n\r\n",
                      aid);
        s->ready = false;
    } else {
        pw_buf_printf(reply, "Response: Error\r\n%sMessage: Invalid/unknown command\r\n\r\n", aid);
    }
    return end;
}

const struct pw_wire pw_wire_ami = {
    .name = "ami",
    .format = "asterisk-ami",
    .transport = PW_TCP_SERVER,
    .sep = "",
    .render = ami_render,
    .source_yaml = ami_yaml,
    .greet = ami_greet,
    .input = ami_input,
};

/* ================================================================== queue_log ==== */

static void ql_line(struct pw_out *o, struct pw_buf *b, int64_t ts, const char *uid,
                    const char *queue, const char *agent, const char *event, int *n)
{
    /* b holds the payload; the line is written with whole-second epoch, as ast_queue_log does. */
    char line[1024];
    int l = snprintf(line, sizeof line, "%" PRId64 "|%s|%s|%s|%s|%s", ts / 1000000, uid, queue,
                     agent ? agent : "NONE", event, b->len ? b->p : "");
    if (l > 0 && (size_t)l < sizeof line) {
        pw_record(o, ts, line, (size_t)l);
        (*n)++;
    }
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

static int ql_render(const struct pw_call *c, struct pw_out *o)
{
    if (c->n_ev && c->ev[0].kind == CP_KIND_CDR)
        return 0; /* an outbound call never meets app_queue */
    struct pw_truth *t = c->truth;
    const char *uid = call_uid(c, o);
    /* queues.conf log_caller_id_name=yes on every other PBX (Asterisk 13+). */
    bool log_name = c->pbx->index % 2 == 0;
    struct pw_buf b = {0};
    int n = 0, k = 0;
    int64_t enter = 0, offer = 0, connect = 0, last = 0;
    bool transferring = false, left[2] = {false, false};
    const char *side = NULL;
    for (size_t i = 0; i < c->n_ev; i++) {
        const struct cp_event *e = &c->ev[i];
        struct pw_visit *v = e->queue ? visit_of(c, e->queue, e->ts) : NULL;
        switch (e->kind) {
        case CP_KIND_QUEUE_ENTER:
            enter = e->ts;
            pw_buf_printf(&b, "|%s|1", t->from ? t->from : "");
            if (log_name)
                pw_buf_printf(&b, "|%s", t->from_name ? t->from_name : "");
            ql_line(o, &b, e->ts, uid, e->queue, NULL, "ENTERQUEUE", &n);
            last = e->ts;
            break;
        case CP_KIND_AGENT_OFFER:
            offer = e->ts;
            break;
        case CP_KIND_AGENT_NOANSWER:
            pw_buf_printf(&b, "%" PRId64, (e->ts - offer) / 1000);
            ql_line(o, &b, e->ts, uid, e->queue, e->agent, "RINGNOANSWER", &n);
            last = e->ts;
            break;
        case CP_KIND_AGENT_CONNECT: {
            char m[48];
            connect = e->ts;
            member_uid(m, sizeof m, c, offer, k++);
            pw_buf_printf(&b, "%" PRId64 "|%s|%" PRId64, e->ts / 1000000 - enter / 1000000, m,
                          (e->ts - offer) / 1000000);
            ql_line(o, &b, e->ts, uid, e->queue, e->agent, "CONNECT", &n);
            last = e->ts;
            break;
        }
        case CP_KIND_TRANSFER: {
            const char *to = "s";
            for (int j = 0; j < t->n_v; j++)
                if (t->v[j].enter >= e->ts)
                    to = t->v[j].queue;
            pw_buf_printf(&b, "%s|queues|%" PRId64 "|%" PRId64 "|1", to,
                          connect / 1000000 - enter / 1000000, (e->ts - connect) / 1000000);
            ql_line(o, &b, e->ts, uid, e->queue, e->agent, "BLINDTRANSFER", &n);
            transferring = true;
            if (v)
                v->transfer_out = pw_floor_s(e->ts);
            last = e->ts;
            break;
        }
        case CP_KIND_AGENT_COMPLETE:
            if (transferring)
                break; /* app_queue logs the transfer instead */
            side = t->side && strcmp(t->side, "agent") == 0 ? "agent" : "caller";
            pw_buf_printf(&b, "%" PRId64 "|%" PRId64 "|1", connect / 1000000 - enter / 1000000,
                          (e->ts - connect) / 1000000);
            ql_line(o, &b, e->ts, uid, e->queue, e->agent,
                    side[0] == 'a' ? "COMPLETEAGENT" : "COMPLETECALLER", &n);
            last = e->ts;
            break;
        case CP_KIND_QUEUE_LEAVE:
        case CP_KIND_CALL_END:
            for (int j = 0; j < t->n_v; j++) {
                struct pw_visit *u = &t->v[j];
                if (left[j] || u->connect >= 0 || u->leave < 0 || u->leave > e->ts)
                    continue;
                left[j] = true;
                bool ab = streq(u->outcome, "abandoned");
                pw_buf_printf(&b, "1|1|%" PRId64, u->leave / 1000000 - u->enter / 1000000);
                ql_line(o, &b, u->leave, uid, u->queue, NULL, ab ? "ABANDON" : "EXITWITHTIMEOUT",
                        &n);
                last = u->leave;
            }
            break;
        default:
            break; /* call start/end, holds, wrap-up: queue_log has no such lines */
        }
    }
    free(b.p);
    /* What the lines tell: whole seconds, no call start or end, no holds, no wrap-up; the
     * call is known from its first to its last line. */
    t->call = uid;
    t->dir = NULL;
    t->to = NULL;
    t->final_to = NULL;
    t->disp = NULL;
    t->side = side; /* COMPLETECALLER/COMPLETEAGENT */
    if (!log_name)
        t->from_name = NULL;
    t->start = pw_floor_s(t->v[0].enter);
    t->end = pw_floor_s(last);
    for (int j = 0; j < t->n_v; j++) {
        struct pw_visit *u = &t->v[j];
        u->enter = pw_floor_s(u->enter);
        u->connect = pw_floor_s(u->connect);
        u->leave = pw_floor_s(u->leave);
        for (int r = 0; r < u->n_noanswer; r++)
            u->noanswer[r] = pw_floor_s(u->noanswer[r]);
    }
    if (t->seg.present) {
        t->seg.connect = pw_floor_s(t->seg.connect);
        /* a transfer line ends the member's segment as COMPLETE* would (app_queue logs it
         * instead of them) */
        t->seg.complete = pw_floor_s(t->seg.complete);
        t->seg.wrapup = NULL;
        t->seg.wrapup_end = t->seg.complete;
        t->seg.n_holds = 0;
    }
    t->answer = t->seg.present ? t->seg.connect : -1;
    return n;
}

const struct pw_wire pw_wire_queue_log = {
    .name = "queue-log",
    .format = "asterisk-queue-log",
    .transport = PW_TCP,
    .sep = "\n",
    .render = ql_render,
};

const struct pw_wire pw_wire_queue_log_syslog = {
    .name = "queue-log-syslog",
    .format = "asterisk-queue-log",
    .transport = PW_SYSLOG_TCP,
    .sep = "\n",
    .render = ql_render,
};

/* =================================================================== Master.csv ==== */

/* A quoted CSV string, quotes doubled (cdr_csv's append_string). */
static void csv_str(struct pw_buf *b, const char *s, bool comma)
{
    pw_buf_add(b, "\"", 1);
    for (const char *p = s ? s : ""; *p; p++) {
        pw_buf_add(b, p, 1);
        if (*p == '"')
            pw_buf_add(b, "\"", 1);
    }
    pw_buf_add(b, comma ? "\"," : "\"", comma ? 2 : 1);
}

static void csv_time(struct pw_buf *b, int64_t us)
{
    char t[32];
    if (us < 0) {
        pw_buf_add(b, ",", 1); /* an unset answer time: empty and unquoted */
        return;
    }
    local_time(t, sizeof t, us);
    csv_str(b, t, true);
}

static int csv_render(const struct pw_call *c, struct pw_out *o)
{
    struct pw_truth *t = c->truth;
    const char *uid = call_uid(c, o);
    bool outbound = c->n_ev && c->ev[0].kind == CP_KIND_CDR;
    const struct cp_event *e0 = &c->ev[0];
    int64_t start, answer, end;
    const char *disp, *agent = NULL, *queue = NULL;
    if (outbound) {
        start = e0->start;
        answer = e0->answer ? e0->answer : -1;
        end = e0->end;
        disp = e0->disp == CP_DISP_ANSWERED ? "ANSWERED" : e0->disp == CP_DISP_BUSY ? "BUSY"
                                                                                     : "NO ANSWER";
        agent = e0->agent ? e0->agent : "a100";
    } else {
        /* The IVR answers the caller at once: to Asterisk every inbound call is ANSWERED,
         * from the start to the caller's hang-up, whatever happened in the queue. */
        start = t->start;
        answer = t->start;
        end = t->end;
        disp = "ANSWERED";
        agent = t->seg.present ? t->seg.agent : NULL;
        queue = t->n_v ? t->v[0].queue : NULL;
    }
    int64_t duration = (end - start) / 1000000, billsec = answer >= 0 ? (end - answer) / 1000000 : 0;
    char clid[320], chan[64], dchan[64], ldata[96];
    if (t->from_name)
        snprintf(clid, sizeof clid, "\"%s\" <%s>", t->from_name, t->from ? t->from : "");
    else
        snprintf(clid, sizeof clid, "\"\" <%s>", t->from ? t->from : "");
    if (outbound) {
        snprintf(chan, sizeof chan, "PJSIP/%s-%08x", agent, c->idx * 8u + 7u);
        snprintf(dchan, sizeof dchan, "PJSIP/trunk-%08x", c->idx);
        snprintf(ldata, sizeof ldata, "PJSIP/%s@trunk,30", t->to ? t->to : "");
    } else {
        snprintf(chan, sizeof chan, "PJSIP/trunk-%08x", c->idx);
        if (agent)
            snprintf(dchan, sizeof dchan, "PJSIP/%s-%08x", agent, c->idx * 8u);
        else
            dchan[0] = '\0';
        snprintf(ldata, sizeof ldata, "%s", queue ? queue : "");
    }
    struct pw_buf b = {0};
    csv_str(&b, "", true); /* accountcode */
    csv_str(&b, t->from, true);
    csv_str(&b, t->to, true);
    csv_str(&b, outbound ? "from-internal" : "from-trunk", true);
    csv_str(&b, clid, true);
    csv_str(&b, chan, true);
    csv_str(&b, dchan, true);
    csv_str(&b, outbound ? "Dial" : "Queue", true);
    csv_str(&b, ldata, true);
    csv_time(&b, start);
    csv_time(&b, answer);
    csv_time(&b, end);
    pw_buf_printf(&b, "%" PRId64 ",%" PRId64 ",", duration, billsec);
    csv_str(&b, disp, true);
    csv_str(&b, "DOCUMENTATION", true);
    /* loguniqueid on every PBX, loguserfield on every other one (cdr_columns says which). */
    bool userfield = c->pbx->index % 2 == 0;
    csv_str(&b, uid, userfield);
    if (userfield)
        csv_str(&b, "", false);
    pw_record(o, end, b.p, b.len);
    free(b.p);

    /* What the row tells: one summary, whole seconds, no queue, no agent, no side. */
    t->call = uid;
    t->cdr = true;
    t->dir = NULL;
    t->final_to = NULL;
    t->side = NULL;
    t->disp = outbound ? t->disp : "answered";
    t->start = pw_floor_s(start);
    t->end = pw_floor_s(end);
    t->answer = pw_floor_s(answer);
    t->n_v = 0;
    memset(&t->seg, 0, sizeof t->seg);
    if (answer >= 0 && strcmp(disp, "ANSWERED") == 0) {
        t->seg.present = true;
        t->seg.connect = t->answer;
        t->seg.complete = t->answer + billsec * 1000000;
        t->seg.wrapup_end = t->seg.complete;
        t->seg.cdr_hold = 0;
    } else {
        t->answer = -1;
        t->seg.cdr_hold = -1;
    }
    return 1;
}

static void csv_yaml(FILE *f, const struct pw_pbx *p)
{
    fprintf(f, ", tz: %s, cdr_columns: \"%s\"", TZ,
            p->index % 2 == 0 ? "uniqueid,userfield" : "uniqueid");
}

const struct pw_wire pw_wire_cdr_csv = {
    .name = "cdr-csv",
    .format = "asterisk-cdr-csv",
    .transport = PW_TCP,
    .sep = "\n",
    .render = csv_render,
    .source_yaml = csv_yaml,
};
