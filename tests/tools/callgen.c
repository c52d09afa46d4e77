/* callgen.c - deterministic call generator: realistic queue-call lifecycles as canonical events, plus a ground truth. */
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp_event.h"
#include "cp_kafka.h"
#include "cp_log.h"
#include "cp_time.h"
#include "../lib/simrng.h"

/*
 *   callgen -n CALLS [-e MAX_EVENTS] [-s SEED] [-B BASE_US] [-S SPAN_MIN]
 *           [-b BOOTSTRAP -t TOPIC] [-r EVENTS_PER_S] [-L LINGER_MS] [-g TRUTH.jsonl]
 *           [-m COUNT:FILE]
 *
 * Generates CALLS calls (or stops adding calls once MAX_EVENTS events are
 * reached) across several orgs, PBXs and queues, starting within SPAN_MIN
 * minutes after BASE_US (event time, UTC microseconds; times are whole
 * milliseconds, cdr-only calls whole seconds).  The same seed gives the same
 * calls, events and event ids.  Lifecycles: answered (0-2 agent_noanswer
 * attempts, 0-2 holds, wrap-up with a code), abandoned (short ones too; some
 * without a queue_leave: the caller hangs up in the queue), queue timeouts,
 * agent transfers to a second queue (whose visit is then abandoned or timed
 * out), cdr-only calls with and without a queue.
 *
 * Events go to Kafka (idempotent producer, key org/pbx/call) in event-time
 * order, optionally rate-limited; -m creates FILE after COUNT deliveries.  -L sets
 * linger.ms (default 5): rate-limited runs want larger batches, because the dev broker
 * answers a fetch with one message set per partition, so a consumer that has fallen behind
 * catches up one batch per partition per round trip.
 * -g writes the ground truth: one JSON line per call with every timestamp and
 * the outcome of each queue visit.  Metrics are NOT computed here: that is the
 * oracle's job (tests/tools/agg_check.py).  The last stdout line is
 *   callgen: calls=N events=E delivered=D failed=F bytes=B elapsed_s=S
 */

/* ---- the world ---- */

struct org_def {
    const char *org;
    const char *pbx[2];
    int n_pbx;
    const char *queues[3];
    int n_queues;
};
static const struct org_def orgs[] = {
    {"acme", {"acme-eu", "acme-us"}, 2, {"sales", "support", "billing"}, 3},
    {"globex", {"globex-1", NULL}, 1, {"sales", "care", NULL}, 2},
    {"initech", {"initech-1", NULL}, 1, {"helpdesk", NULL, NULL}, 1},
};
static const char *const wrapups[] = {"sale", "no_sale", "callback", "resolved", "escalated",
                                      "info", "complaint"};
static const char *const names[] = {"Jürgen Müller", "Ana López", "Zoë Smith", "李雷",
                                    "Olga Ivanova", NULL, "Bob O'Neil", "Søren Kierkegaard"};
/* Waits on the bounds the metrics care about: SL 20 s, histogram edges, short abandons. */
static const int64_t edge_waits_ms[] = {0,     1,     4999,  5000,  5001,  8000,  10000,
                                        15000, 19999, 20000, 20001, 25000, 30000, 60000,
                                        120000, 300000, 1200000, 1200001};

static int64_t pick_wait_ms(int64_t lo, int64_t hi)
{
    if (chance(25)) {
        for (int tries = 0; tries < 8; tries++) {
            int64_t w = edge_waits_ms[rnd() % (sizeof edge_waits_ms / sizeof edge_waits_ms[0])];
            if (w >= lo && w <= hi)
                return w;
        }
    }
    /* Mostly short waits, a tail of long ones. */
    int64_t cap = chance(80) ? (hi < 60000 ? hi : 60000) : hi;
    if (cap < lo)
        cap = lo;
    return between(lo, cap);
}

/* ---- events ---- */

#define MAX_CALL_EVENTS 40

struct gen_event {
    int64_t ts;
    uint64_t order; /* generation order, the tie-break */
    uint32_t off, len;
};

static char *evbuf;
static size_t evbuf_len, evbuf_cap;
static struct gen_event *events;
static size_t n_events, cap_events;
static uint64_t n_order;

struct call_ctx {
    char org[32], pbx[32], call[48];
    int seq;
    struct cp_event base;
};

static void die(const char *what)
{
    fprintf(stderr, "callgen: %s\n", what);
    exit(2);
}

static void emit(struct call_ctx *cc, struct cp_event *ev)
{
    char id[160];
    snprintf(id, sizeof id, "%s/%s/%s/%d", cc->org, cc->pbx, cc->call, cc->seq++);
    ev->event_id = id;
    ev->org = cc->org;
    ev->pbx = cc->pbx;
    ev->call = cc->call;
    ev->src = "callgen";
    ev->recv = ev->ts + 1000;
    const char *why = NULL;
    if (cp_event_validate(ev, &why) != 0) {
        fprintf(stderr, "callgen: invalid event %s: %s\n", id, why);
        exit(2);
    }
    if (evbuf_len + CP_EVENT_MSGPACK_MAX > evbuf_cap) {
        evbuf_cap = evbuf_cap ? evbuf_cap * 2 : (64u << 20);
        if (!(evbuf = realloc(evbuf, evbuf_cap)))
            die("out of memory");
    }
    int n = cp_event_encode_to(ev, evbuf + evbuf_len, evbuf_cap - evbuf_len);
    if (n < 0)
        die("could not encode an event");
    if (n_events == cap_events) {
        cap_events = cap_events ? cap_events * 2 : (1u << 20);
        if (!(events = realloc(events, cap_events * sizeof *events)))
            die("out of memory");
    }
    events[n_events++] = (struct gen_event){ev->ts, n_order++, (uint32_t)evbuf_len, (uint32_t)n};
    evbuf_len += (size_t)n;
}

static struct cp_event ev_new(enum cp_kind kind, int64_t ts_ms, const char *queue)
{
    struct cp_event ev;
    cp_event_init(&ev);
    ev.kind = kind;
    ev.ts = ts_ms * 1000;
    ev.queue = queue;
    return ev;
}

/* ---- ground truth ---- */

static FILE *truth;

static void j_str(const char *k, const char *v, bool comma)
{
    if (!truth)
        return;
    fprintf(truth, "\"%s\":", k);
    if (!v) {
        fputs("null", truth);
    } else {
        fputc('"', truth);
        for (const char *p = v; *p; p++) {
            if (*p == '"' || *p == '\\')
                fputc('\\', truth);
            fputc(*p, truth);
        }
        fputc('"', truth);
    }
    if (comma)
        fputc(',', truth);
}

static void j_us(const char *k, int64_t ms, bool comma)
{
    if (!truth)
        return;
    if (ms < 0)
        fprintf(truth, "\"%s\":null%s", k, comma ? "," : "");
    else
        fprintf(truth, "\"%s\":%" PRId64 "%s", k, ms * 1000, comma ? "," : "");
}

struct visit_truth {
    const char *queue;
    int64_t enter, connect, leave; /* ms; -1 none */
    const char *outcome;           /* answered abandoned timeout */
    int64_t transfer_out;          /* agent transfer out of this visit, ms or -1 */
    int64_t noanswer[3];
    int n_noanswer;
};

struct seg_truth {
    bool present;
    const char *queue, *agent, *wrapup;
    int64_t connect, complete, wrapup_at; /* ms */
    int64_t holds[2][2];
    int n_holds;
    int64_t cdr_hold_ms; /* cdr: total only; -1 for event calls */
};

struct call_truth {
    const char *dir, *from, *from_name, *to, *final_to, *disp, *side;
    int64_t start, end, answer; /* ms; answer -1 = none */
    bool cdr;
    struct visit_truth v[2];
    int n_v;
    struct seg_truth seg;
};

static void write_truth(const struct call_ctx *cc, const struct call_truth *t)
{
    if (!truth)
        return;
    fputc('{', truth);
    j_str("org", cc->org, true);
    j_str("pbx", cc->pbx, true);
    j_str("call", cc->call, true);
    j_str("src", "callgen", true);
    fprintf(truth, "\"cdr\":%s,\"events\":%d,", t->cdr ? "true" : "false", cc->seq);
    j_str("dir", t->dir, true);
    j_str("from", t->from, true);
    j_str("from_name", t->from_name, true);
    j_str("to", t->to, true);
    j_str("final_to", t->final_to, true);
    j_str("disp", t->disp, true);
    j_str("side", t->side, true);
    j_us("start", t->start, true);
    j_us("answer", t->answer, true);
    j_us("end", t->end, true);
    fputs("\"visits\":[", truth);
    for (int i = 0; i < t->n_v; i++) {
        const struct visit_truth *v = &t->v[i];
        fputs(i ? ",{" : "{", truth);
        j_str("queue", v->queue, true);
        j_us("enter", v->enter, true);
        j_us("connect", v->connect, true);
        j_us("leave", v->leave, true);
        j_us("transfer_out", v->transfer_out, true);
        fputs("\"noanswer\":[", truth);
        for (int k = 0; k < v->n_noanswer; k++)
            fprintf(truth, "%s%" PRId64, k ? "," : "", v->noanswer[k] * 1000);
        fputs("],", truth);
        j_str("outcome", v->outcome, false);
        fputc('}', truth);
    }
    fputs("],\"segment\":", truth);
    if (!t->seg.present) {
        fputs("null", truth);
    } else {
        const struct seg_truth *s = &t->seg;
        fputc('{', truth);
        j_str("queue", s->queue, true);
        j_str("agent", s->agent, true);
        j_str("wrapup", s->wrapup, true);
        j_us("connect", s->connect, true);
        j_us("complete", s->complete, true);
        j_us("wrapup_end", s->wrapup_at, true);
        j_us("cdr_hold", s->cdr_hold_ms, true);
        fputs("\"holds\":[", truth);
        for (int k = 0; k < s->n_holds; k++)
            fprintf(truth, "%s[%" PRId64 ",%" PRId64 "]", k ? "," : "", s->holds[k][0] * 1000,
                    s->holds[k][1] * 1000);
        fputs("]}", truth);
    }
    fputs("}\n", truth);
}

/* ---- lifecycles ---- */

static char agent_buf[64][16];

static const char *agent_of(int i)
{
    return agent_buf[i % 64];
}

/* Offers an agent did not take, inside [from, to): returns how many. */
static int ronas(struct call_ctx *cc, const char *queue, int64_t from, int64_t to,
                 struct visit_truth *v)
{
    int n = (int)between(0, 2);
    int done = 0;
    int64_t t = from;
    for (int i = 0; i < n; i++) {
        int64_t offer = t + between(500, 5000), miss = offer + between(8000, 15000);
        if (miss >= to)
            break;
        struct cp_event e = ev_new(CP_KIND_AGENT_OFFER, offer, queue);
        e.agent = agent_of((int)between(0, 63));
        emit(cc, &e);
        e = ev_new(CP_KIND_AGENT_NOANSWER, miss, queue);
        e.agent = agent_of((int)between(0, 63));
        emit(cc, &e);
        v->noanswer[v->n_noanswer++] = miss;
        done++;
        t = miss;
    }
    return done;
}

/* An agent answers at `connect` and talks (with 0-2 holds) until `complete`. */
static void agent_segment(struct call_ctx *cc, const char *queue, int64_t connect,
                          struct seg_truth *s, bool with_complete_at, int64_t complete_at)
{
    s->present = true;
    s->queue = queue;
    s->agent = agent_of((int)between(0, 63));
    s->connect = connect;
    s->cdr_hold_ms = -1;
    struct cp_event e = ev_new(CP_KIND_AGENT_CONNECT, connect, queue);
    e.agent = s->agent;
    e.agent_name = "Agent";
    emit(cc, &e);
    int64_t complete = with_complete_at ? complete_at : connect + between(20000, 900000);
    int holds = (int)between(0, 2);
    int64_t t = connect;
    s->n_holds = 0;
    for (int i = 0; i < holds; i++) {
        int64_t on = t + between(2000, 60000), off = on + between(1000, 120000);
        if (off + 1000 >= complete)
            break;
        e = ev_new(CP_KIND_HOLD, on, queue);
        emit(cc, &e);
        e = ev_new(CP_KIND_UNHOLD, off, queue);
        emit(cc, &e);
        s->holds[s->n_holds][0] = on;
        s->holds[s->n_holds][1] = off;
        s->n_holds++;
        t = off;
    }
    s->complete = complete;
}

static void call_start(struct call_ctx *cc, struct call_truth *t, int64_t t0)
{
    t->start = t0;
    t->dir = "inbound";
    struct cp_event e = ev_new(CP_KIND_CALL_START, t0, NULL);
    e.dir = CP_DIR_INBOUND;
    e.from = t->from;
    e.from_name = t->from_name;
    e.to = t->to;
    emit(cc, &e);
}

static void call_end(struct call_ctx *cc, struct call_truth *t, int64_t at, enum cp_disp disp,
                     enum cp_side side)
{
    t->end = at;
    t->disp = cp_disp_name(disp);
    t->side = cp_side_name(side);
    struct cp_event e = ev_new(CP_KIND_CALL_END, at, NULL);
    e.disp = disp;
    e.side = side;
    e.final_to = t->final_to;
    emit(cc, &e);
}

static void wrapup(struct call_ctx *cc, struct seg_truth *s)
{
    s->wrapup = wrapups[rnd() % (sizeof wrapups / sizeof wrapups[0])];
    s->wrapup_at = s->complete + between(3000, 120000);
    struct cp_event e = ev_new(CP_KIND_WRAPUP_END, s->wrapup_at, s->queue);
    e.wrapup = s->wrapup;
    e.agent = s->agent;
    emit(cc, &e);
}

static void complete_ev(struct call_ctx *cc, struct seg_truth *s)
{
    struct cp_event e = ev_new(CP_KIND_AGENT_COMPLETE, s->complete, s->queue);
    e.agent = s->agent;
    emit(cc, &e);
}

/* Caller waits in `queue` from `enter`; answered / abandoned / timeout. */
static void queue_visit(struct call_ctx *cc, struct call_truth *t, struct visit_truth *v,
                        const char *queue, int64_t enter, const char *outcome, bool leave_event)
{
    memset(v, 0, sizeof *v);
    v->queue = queue;
    v->enter = enter;
    v->connect = v->leave = v->transfer_out = -1;
    v->outcome = outcome;
    struct cp_event e = ev_new(CP_KIND_QUEUE_ENTER, enter, queue);
    e.from = t->from;
    emit(cc, &e);
    int64_t wait;
    if (strcmp(outcome, "answered") == 0)
        wait = pick_wait_ms(0, 400000);
    else if (strcmp(outcome, "timeout") == 0)
        wait = pick_wait_ms(60000, 600000);
    else
        wait = chance(30) ? pick_wait_ms(0, 8000) : pick_wait_ms(0, 400000);
    int64_t out = enter + wait;
    ronas(cc, queue, enter, out - 1000, v);
    if (strcmp(outcome, "answered") == 0) {
        v->connect = out;
        int64_t offer = out - between(0, 3000);
        e = ev_new(CP_KIND_AGENT_OFFER, offer < enter ? enter : offer, queue);
        emit(cc, &e);
        return;
    }
    v->leave = out;
    if (leave_event) {
        e = ev_new(CP_KIND_QUEUE_LEAVE, out, queue);
        cp_qout_parse(outcome, strlen(outcome), &e.qout);
        emit(cc, &e);
    }
}

static void gen_event_call(struct call_ctx *cc, const struct org_def *od, int64_t t0,
                           struct call_truth *t)
{
    const char *q = od->queues[between(0, od->n_queues - 1)];
    call_start(cc, t, t0);
    int64_t enter = t0 + between(2000, 30000);
    int kind = (int)between(0, 99);
    if (od->n_queues < 2 && kind >= 85)
        kind = 0; /* transfers need a second queue */
    if (kind < 60) {
        /* answered */
        queue_visit(cc, t, &t->v[t->n_v++], q, enter, "answered", true);
        agent_segment(cc, q, t->v[0].connect, &t->seg, false, 0);
        t->answer = t->v[0].connect;
        t->final_to = t->seg.agent;
        complete_ev(cc, &t->seg);
        call_end(cc, t, t->seg.complete, CP_DISP_ANSWERED,
                 chance(50) ? CP_SIDE_CALLER : CP_SIDE_AGENT);
        wrapup(cc, &t->seg);
    } else if (kind < 75) {
        /* abandoned: the caller hangs up in the queue */
        queue_visit(cc, t, &t->v[t->n_v++], q, enter, "abandoned", true);
        call_end(cc, t, t->v[0].leave, CP_DISP_CANCELED, CP_SIDE_CALLER);
    } else if (kind < 78) {
        /* abandoned without a queue_leave: only the call's end says so */
        queue_visit(cc, t, &t->v[t->n_v++], q, enter, "abandoned", false);
        call_end(cc, t, t->v[0].leave, CP_DISP_CANCELED, CP_SIDE_CALLER);
    } else if (kind < 85) {
        /* queue timeout, then the caller leaves (voicemail declined) */
        queue_visit(cc, t, &t->v[t->n_v++], q, enter, "timeout", true);
        call_end(cc, t, t->v[0].leave + between(0, 20000), CP_DISP_NO_ANSWER, CP_SIDE_SYSTEM);
    } else {
        /* agent transfer to another queue; the second visit is abandoned or times out */
        const char *q2 = q;
        while (q2 == q)
            q2 = od->queues[between(0, od->n_queues - 1)];
        queue_visit(cc, t, &t->v[t->n_v++], q, enter, "answered", true);
        agent_segment(cc, q, t->v[0].connect, &t->seg, false, 0);
        t->answer = t->v[0].connect;
        int64_t tt = t->seg.complete;
        struct cp_event e = ev_new(CP_KIND_TRANSFER, tt, q);
        e.agent = t->seg.agent;
        emit(cc, &e);
        t->v[0].transfer_out = tt;
        complete_ev(cc, &t->seg);
        wrapup(cc, &t->seg);
        const char *o2 = chance(70) ? "abandoned" : "timeout";
        queue_visit(cc, t, &t->v[t->n_v++], q2, tt + between(0, 3000), o2, true);
        t->final_to = NULL;
        call_end(cc, t, t->v[1].leave, CP_DISP_ANSWERED, CP_SIDE_CALLER);
    }
}

static void gen_cdr_call(struct call_ctx *cc, const struct org_def *od, int64_t t0,
                         struct call_truth *t)
{
    /* A whole-call record in whole seconds, as CDR sources send. */
    t->cdr = true;
    int64_t start = t0 - t0 % 1000;
    t->start = start;
    struct cp_event e = ev_new(CP_KIND_CDR, 0, NULL);
    e.start = start * 1000;
    e.from = t->from;
    e.from_name = t->from_name;
    if (chance(45)) {
        /* outbound, no queue */
        t->dir = "outbound";
        e.dir = CP_DIR_OUTBOUND;
        e.to = t->to = "+13125550100";
        int r = (int)between(0, 9);
        enum cp_disp d = r < 6 ? CP_DISP_ANSWERED : r < 8 ? CP_DISP_NO_ANSWER : CP_DISP_BUSY;
        int64_t ring = between(3, 30);
        if (d == CP_DISP_ANSWERED) {
            int64_t talk = between(10, 600);
            int64_t answer = start + ring * 1000;
            t->answer = answer;
            t->end = answer + talk * 1000;
            e.answer = answer * 1000;
            e.talk = (int32_t)talk;
            e.hold = 0;
            e.acw = 0;
            e.agent = agent_of((int)between(0, 63));
            t->seg = (struct seg_truth){.present = true, .queue = NULL, .agent = e.agent,
                                        .connect = answer, .complete = t->end,
                                        .wrapup_at = t->end, .cdr_hold_ms = 0};
        } else {
            t->end = start + ring * 1000;
        }
        e.disp = d;
        e.side = CP_SIDE_CALLER;
        t->disp = cp_disp_name(d);
        t->side = "caller";
    } else {
        const char *q = od->queues[between(0, od->n_queues - 1)];
        t->dir = "inbound";
        e.dir = CP_DIR_INBOUND;
        e.to = t->to;
        e.queue = q;
        int64_t enter = start + between(2, 20) * 1000;
        struct visit_truth *v = &t->v[t->n_v++];
        memset(v, 0, sizeof *v);
        v->queue = q;
        v->enter = enter;
        v->connect = v->leave = v->transfer_out = -1;
        int64_t wait_s = pick_wait_ms(0, 300000) / 1000;
        e.wait = (int32_t)wait_s;
        if (chance(70)) {
            v->outcome = "answered";
            v->connect = enter + wait_s * 1000;
            int64_t talk = between(10, 900), hold = chance(40) ? between(5, 120) : 0;
            int64_t acw = between(0, 90);
            t->answer = v->connect;
            int64_t complete = v->connect + (talk + hold) * 1000;
            t->end = complete;
            e.answer = v->connect * 1000;
            e.talk = (int32_t)talk;
            e.hold = (int32_t)hold;
            e.acw = (int32_t)acw;
            e.qout = CP_QOUT_ANSWERED;
            e.disp = CP_DISP_ANSWERED;
            e.agent = agent_of((int)between(0, 63));
            e.wrapup = wrapups[rnd() % (sizeof wrapups / sizeof wrapups[0])];
            t->seg = (struct seg_truth){.present = true, .queue = q, .agent = e.agent,
                                        .wrapup = e.wrapup, .connect = v->connect,
                                        .complete = complete, .wrapup_at = complete + acw * 1000,
                                        .cdr_hold_ms = hold * 1000};
            t->disp = "answered";
            t->side = "agent";
            e.side = CP_SIDE_AGENT;
        } else {
            v->outcome = "abandoned";
            v->leave = enter + wait_s * 1000;
            t->end = v->leave;
            e.qout = CP_QOUT_ABANDONED;
            e.disp = CP_DISP_CANCELED;
            t->disp = "canceled";
            t->side = "caller";
            e.side = CP_SIDE_CALLER;
        }
    }
    e.end = t->end * 1000;
    e.ts = t->end * 1000;
    emit(cc, &e);
}

/* ---- producing ---- */

static long delivered, failed;
static long mark_count = -1;
static const char *mark_file;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err) {
        if (failed++ < 5)
            fprintf(stderr, "callgen: delivery failed: %s\n", rd_kafka_err2str(m->err));
        return;
    }
    if (++delivered == mark_count && mark_file) {
        FILE *f = fopen(mark_file, "w");
        if (f)
            fclose(f);
    }
}

static int cmp_event(const void *a, const void *b)
{
    const struct gen_event *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Keys: one per call, indexed by the event's call number. */
static char (*keys)[128];
static uint32_t *event_call;

static const char *call_key(size_t i, size_t *len)
{
    const char *k = keys[event_call[events[i].order]];
    *len = strlen(k);
    return k;
}

static int produce(const char *brokers, const char *topic, double rate, int linger_ms)
{
    char errstr[512];
    struct cp_kafka_producer_opts po = {.brokers = brokers, .client_id = "callgen",
                                        .queue_max_msgs = 500000, .linger_ms = linger_ms};
    rd_kafka_conf_t *conf = cp_kafka_producer_conf(&po, errstr, sizeof errstr);
    if (!conf) {
        fprintf(stderr, "callgen: %s\n", errstr);
        return 1;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_t *rk = cp_kafka_producer_new(conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "callgen: %s\n", errstr);
        return 1;
    }
    int64_t t0 = cp_time_mono_us();
    for (size_t i = 0; i < n_events; i++) {
        if (rate > 0) {
            int64_t due = t0 + (int64_t)((double)i * 1e6 / rate);
            int64_t now;
            while ((now = cp_time_mono_us()) < due)
                rd_kafka_poll(rk, (int)((due - now) / 1000) + 1);
        }
        if ((i & 1023) == 0)
            rd_kafka_poll(rk, 0);
        const char *val = evbuf + events[i].off;
        size_t kl = 0;
        const char *key = call_key(i, &kl);
        for (;;) {
            rd_kafka_resp_err_t err = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, kl),
                RD_KAFKA_V_VALUE((void *)val, events[i].len), RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(rk, 20);
                continue;
            }
            if (err) {
                fprintf(stderr, "callgen: could not produce: %s\n", rd_kafka_err2str(err));
                failed++;
            }
            break;
        }
    }
    while (rd_kafka_outq_len(rk) > 0)
        rd_kafka_flush(rk, 200);
    int fatal = cp_kafka_fatal(rk, errstr, sizeof errstr);
    if (fatal < 0)
        fprintf(stderr, "callgen: producer fatal: %s\n", errstr);
    rd_kafka_destroy(rk);
    return failed || fatal ? 1 : 0;
}

int main(int argc, char **argv)
{
    long n_calls = 1000, max_events = 0;
    uint64_t seed = 1;
    int64_t base_us = INT64_C(1795647600000000); /* 2026-11-25T23:00:00Z: calls cross midnight */
    long span_min = 120;
    const char *brokers = NULL, *topic = "callpipe.events", *truth_path = NULL;
    double rate = 0;
    int linger_ms = 0, o;
    while ((o = getopt(argc, argv, "n:e:s:B:S:b:t:r:L:g:m:")) != -1) {
        switch (o) {
        case 'n': n_calls = atol(optarg); break;
        case 'e': max_events = atol(optarg); break;
        case 's': seed = strtoull(optarg, NULL, 10); break;
        case 'B': base_us = strtoll(optarg, NULL, 10); break;
        case 'S': span_min = atol(optarg); break;
        case 'b': brokers = optarg; break;
        case 't': topic = optarg; break;
        case 'r': rate = atof(optarg); break;
        case 'L': linger_ms = atoi(optarg); break;
        case 'g': truth_path = optarg; break;
        case 'm': {
            char *colon = strchr(optarg, ':');
            if (!colon)
                die("-m COUNT:FILE");
            mark_count = atol(optarg);
            mark_file = colon + 1;
            break;
        }
        default:
            fprintf(stderr, "usage: callgen -n CALLS [-e MAX_EVENTS] [-s SEED] [-B BASE_US] "
                            "[-S SPAN_MIN] [-b BOOTSTRAP -t TOPIC] [-r RATE] [-L LINGER_MS] [-g TRUTH] "
                            "[-m COUNT:FILE]\n");
            return 2;
        }
    }
    if (max_events > 0 && n_calls < max_events)
        n_calls = max_events; /* the event budget decides */
    rng_state = seed;
    for (int i = 0; i < 64; i++)
        snprintf(agent_buf[i], sizeof agent_buf[i], "agent%02d", i);
    if (truth_path && !(truth = fopen(truth_path, "w")))
        die("could not open the ground-truth file");

    /* Start times first, sorted, so call numbers follow event time. */
    int64_t *starts = malloc((size_t)n_calls * sizeof *starts);
    keys = malloc((size_t)n_calls * sizeof *keys);
    if (!starts || !keys)
        die("out of memory");
    for (long i = 0; i < n_calls; i++)
        starts[i] = base_us / 1000 + between(0, span_min * 60000 - 1);
    qsort(starts, (size_t)n_calls, sizeof *starts, cmp_i64);

    size_t call_of_cap = 0;
    long made = 0;
    for (long i = 0; i < n_calls; i++) {
        if (max_events > 0 && (long)n_events >= max_events)
            break;
        const struct org_def *od = &orgs[rnd() % 3 == 0 ? 1 : (chance(80) ? 0 : 2)];
        struct call_ctx cc;
        memset(&cc, 0, sizeof cc);
        snprintf(cc.org, sizeof cc.org, "%s", od->org);
        snprintf(cc.pbx, sizeof cc.pbx, "%s", od->pbx[between(0, od->n_pbx - 1)]);
        snprintf(cc.call, sizeof cc.call, "c%08lx-%ld", (unsigned long)(rnd() & 0xffffffff), i);
        snprintf(keys[i], sizeof keys[i], "%s/%s/%s", cc.org, cc.pbx, cc.call);
        struct call_truth t;
        memset(&t, 0, sizeof t);
        t.answer = -1;
        char from[24], to[24];
        snprintf(from, sizeof from, "+49301%07ld", (long)between(0, 9999999));
        snprintf(to, sizeof to, "+4940%06ld", (long)between(0, 999));
        t.from = from;
        t.to = to;
        t.from_name = names[rnd() % (sizeof names / sizeof names[0])];
        size_t first = n_events;
        if (chance(10))
            gen_cdr_call(&cc, od, starts[i], &t);
        else
            gen_event_call(&cc, od, starts[i], &t);
        if (n_order > call_of_cap) {
            call_of_cap = n_order * 2 + 1024;
            if (!(event_call = realloc(event_call, call_of_cap * sizeof *event_call)))
                die("out of memory");
        }
        for (size_t k = first; k < n_events; k++)
            event_call[events[k].order] = (uint32_t)i;
        write_truth(&cc, &t);
        made++;
    }
    if (truth && fclose(truth) != 0)
        die("could not write the ground truth");
    qsort(events, n_events, sizeof *events, cmp_event);

    int rc = 0;
    int64_t t0 = cp_time_mono_us();
    if (brokers)
        rc = produce(brokers, topic, rate, linger_ms);
    printf("callgen: calls=%ld events=%zu delivered=%ld failed=%ld bytes=%zu elapsed_s=%.2f\n",
           made, n_events, delivered, failed, evbuf_len,
           (double)(cp_time_mono_us() - t0) / 1e6);
    free(starts);
    free(keys);
    free(event_call);
    free(events);
    free(evbuf);
    return rc;
}
