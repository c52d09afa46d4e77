/* pbxsim.c - PBX simulator: many PBXs with queues and agents, paced in (accelerated) real time through the collector, plus a ground truth. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "cp_event.h"
#include "cp_time.h"
#include "../lib/pbxwire.h"
#include "../lib/simrng.h"

/*
 *   pbxsim wires
 *   pbxsim plan [-P NPBX] [-s SEED] [-F WIRES] [-D DROP_DIR] -o PLAN [-y SOURCES.yaml]
 *               [-k TOKEN_ENV]
 *   pbxsim run  --plan PLAN [-P NPBX] [-s SEED] [-x SPEED] [-d SECONDS] [-r CALLS_PER_PBX_HOUR]
 *               [-E EVENTS_PER_S] [-B BASE_US] [-g TRUTH.jsonl] [-k TOKEN_ENV] [--no-drain]
 *               [--latency-dsn DSN] [--latency-sample K] [--latency-wait S] [-n] [-q]
 *
 * The world (orgs, PBXs, queues, agents) is a function of NPBX and SEED; which wire each PBX
 * speaks (a vendor format and its transport, tests/lib/pbxwire.h) comes from -F: PBX i
 * speaks the (i mod n)-th wire of the list.  `plan` picks a free loopback port per PBX (and a
 * drop directory for file-drop wires) and writes PLAN (one line "pbx org wire port dir") and
 * the collector's `sources:` list for it.
 *
 * `run` simulates inbound calls as a discrete-event model: Poisson arrivals per PBX, each
 * call picks a queue, waits for the queue's earliest free agent (FIFO) or gives up when its
 * patience runs out (some callers are impatient: short abandons) or the queue's maximum wait
 * is reached (timeout); an offered agent may ring without answering (RONA, then the next
 * agent); answered calls talk with holds, end, and the agent wraps up with a code (the agent
 * is busy until then); some answered calls are transferred by the agent to another queue of
 * the PBX (where the caller then abandons or times out); and some calls are outbound (one
 * CDR record at their end).  Same seed, same calls.  Each finished call goes to its PBX's
 * wire, which writes the vendor's records and rewrites the call's ground truth to what those
 * records say.
 *
 * Time: record times are the simulated clock, which runs SPEED times faster than the wall
 * clock.  By default (-B absent) the simulated clock is placed in the past so that the last
 * record is sent exactly at the real "now"; with -B BASE_US the first arrival window starts
 * at BASE_US (then the output bytes are fully reproducible).  Arrivals happen during the
 * first SECONDS of wall time; then the calls in progress finish (unless --no-drain, which
 * stops at SECONDS and writes only the calls that were completely sent to the ground truth).
 *
 * Output: each wire's records over its transport (TCP lines, HTTP requests resent after a
 * 503, RFC 5424 syslog, a listening socket the collector dials for AMI and ESL, files in a
 * drop directory); secrets from $TOKEN_ENV.  -g writes the ground truth read by
 * tests/tools/agg_check.py (callgen's format).  --latency-dsn (callpipe-json wires) polls
 * PostgreSQL for every K-th call's `calls` row and reports the time from its last event
 * leaving the simulator to the row being visible.  Last stdout lines:
 *   pbxsim: pbxs=P calls=N events=E sent=S http_requests=H http_503=R reconnects=C files=F
 *           elapsed_s=T events_per_s=X                       (events/sent count records)
 *   pbxsim-latency: n=N missing=M p50_ms=A p90_ms=B p99_ms=C max_ms=D      (with --latency-dsn)
 */

static void die(const char *what)
{
    fprintf(stderr, "pbxsim: %s\n", what);
    exit(2);
}

/* ---- the world ---- */

struct org_def {
    const char *org;
    int weight; /* share of the PBXs */
    const char *queues[3];
    int n_queues;
};
static const struct org_def orgs[] = {
    {"acme", 5, {"sales", "support", "billing"}, 3},
    {"globex", 3, {"care", "sales", NULL}, 2},
    {"initech", 2, {"helpdesk", "it", NULL}, 2},
};
#define N_ORGS ((int)(sizeof orgs / sizeof orgs[0]))

static const char *const wrapups[] = {"sale", "no_sale", "callback", "resolved", "escalated",
                                      "info", "complaint"};
static const char *const names[] = {"Jürgen Müller", "Ana López", "Zoë Smith", "李雷",
                                    "Olga Ivanova", NULL, "Bob O'Neil", "Søren Kierkegaard"};

#define MAX_AGENTS 256
struct queue_st {
    const char *name;
    int n_agents;
    int64_t free_at[MAX_AGENTS]; /* ms, relative */
    int64_t max_wait_ms;
    double patience_ms;
};

struct pbx_def {
    char name[32];
    const struct org_def *org;
    const struct pw_wire *wire;
    int port;
    char dir[256];   /* file-drop */
    struct pw_pbx pw; /* what the wire sees */
    int n_q;
    struct queue_st q[3];
    double calls_per_ms;
};

static struct pbx_def *pbxs;
static int n_pbx = 40;

/* The wires of the fleet: PBX p speaks fleet[p % n_fleet] (pbxsim plan -F). */
#define MAX_FLEET 64
static const struct pw_wire *fleet[MAX_FLEET];
static int n_fleet;

/* Mean handling of one answered call (ms): ring + talk + holds + ACW, for staffing. */
#define MEAN_HANDLE_MS 250000.0

static void build_world(uint64_t seed, double calls_per_pbx_hour)
{
    rng_state = seed ^ 0x77;
    pbxs = calloc((size_t)n_pbx, sizeof *pbxs);
    if (!pbxs)
        die("out of memory");
    int wsum = 0;
    for (int i = 0; i < N_ORGS; i++)
        wsum += orgs[i].weight;
    int per_org[N_ORGS] = {0};
    for (int p = 0; p < n_pbx; p++) {
        /* Round-robin by weight, so every org has PBXs even with few of them. */
        int slot = p % wsum, o = 0;
        while (slot >= orgs[o].weight)
            slot -= orgs[o++].weight;
        struct pbx_def *d = &pbxs[p];
        d->org = &orgs[o];
        snprintf(d->name, sizeof d->name, "%s-pbx%02d", orgs[o].org, ++per_org[o]);
        d->wire = fleet[p % n_fleet];
        /* Busy and quiet sites: 0.5x .. 1.5x the mean rate. */
        d->calls_per_ms = calls_per_pbx_hour / 3600000.0 * (0.5 + uniform01());
        d->n_q = orgs[o].n_queues;
        for (int k = 0; k < d->n_q; k++) {
            struct queue_st *q = &d->q[k];
            q->name = orgs[o].queues[k];
            /* Offered load in Erlangs for this queue (inbound share ~85 %), staffed for 62-87 %
             * occupancy: most queues keep up, some fall behind at busy moments. */
            double erl = d->calls_per_ms * 0.85 / d->n_q * MEAN_HANDLE_MS;
            double occ = 0.62 + 0.25 * uniform01();
            int n = (int)ceil(erl / occ);
            q->n_agents = n < 1 ? 1 : n > MAX_AGENTS ? MAX_AGENTS : n;
            q->max_wait_ms = chance(50) ? 300000 : 180000;
            q->patience_ms = 90000.0 + 150000.0 * uniform01();
        }
    }
}

/* ---- events ---- */

struct sim_event {
    int64_t ts; /* ms, absolute */
    uint64_t order;
    uint32_t call;
    uint16_t pbx;
    bool last; /* the call's last event */
    uint32_t off, len; /* JSON in jbuf */
};

static char *jbuf;
static size_t jbuf_len, jbuf_cap;
static struct sim_event *events;
static size_t n_events, cap_events;
static uint64_t n_order;
static int64_t base_ms; /* added to every relative time */
static bool dry;        /* counting pass: no JSON, no truth */

struct call_ctx {
    int pbx;
    uint32_t idx;
    char call[24];
    int seq;
    size_t first_event;
};

/* The call being generated: its canonical events (strings live until the call is rendered). */
#define MAX_CALL_EV 64
static struct cp_event call_ev[MAX_CALL_EV];
static char call_ev_id[MAX_CALL_EV][64];
static size_t n_call_ev;

static void emit(struct call_ctx *cc, struct cp_event *ev)
{
    const struct pbx_def *d = &pbxs[cc->pbx];
    if (n_call_ev == MAX_CALL_EV)
        die("too many events in one call");
    char *id = call_ev_id[n_call_ev];
    snprintf(id, sizeof call_ev_id[0], "%s/%s/%d", d->name, cc->call, cc->seq++);
    ev->event_id = id;
    ev->org = d->org->org;
    ev->pbx = d->name;
    ev->call = cc->call;
    ev->src = d->wire->format;
    if (!dry) {
        const char *why = NULL;
        if (cp_event_validate(ev, &why) != 0) {
            fprintf(stderr, "pbxsim: invalid event %s: %s\n", id, why);
            exit(2);
        }
    }
    call_ev[n_call_ev++] = *ev;
}

/* ---- records: what the wires write (pw_record), in send order after the sort ---- */

struct pw_out {
    struct call_ctx *cc;
    int n; /* records of this call */
};

/* Copies kept until the call's truth line is written (pw_strdup). */
static char *dup_pool[64];
static int n_dup;

const char *pw_strdup(struct pw_out *o, const char *s)
{
    (void)o;
    if (!s)
        return NULL;
    if (n_dup == (int)(sizeof dup_pool / sizeof dup_pool[0]))
        die("pw_strdup: too many strings in one call");
    if (!(dup_pool[n_dup] = strdup(s)))
        die("out of memory");
    return dup_pool[n_dup++];
}

static void dup_pool_free(void)
{
    for (int i = 0; i < n_dup; i++)
        free(dup_pool[i]);
    n_dup = 0;
}

void pw_record(struct pw_out *o, int64_t ts_us, const void *bytes, size_t len)
{
    struct call_ctx *cc = o->cc;
    if (n_events == cap_events) {
        cap_events = cap_events ? cap_events * 2 : (1u << 16);
        if (!(events = realloc(events, cap_events * sizeof *events)))
            die("out of memory");
    }
    struct sim_event *se = &events[n_events++];
    *se = (struct sim_event){.ts = ts_us / 1000, .order = n_order++, .call = cc->idx,
                             .pbx = (uint16_t)cc->pbx};
    o->n++;
    if (dry)
        return;
    if (jbuf_len + len > jbuf_cap) {
        jbuf_cap = jbuf_cap ? jbuf_cap * 2 : (16u << 20);
        while (jbuf_len + len > jbuf_cap)
            jbuf_cap *= 2;
        if (!(jbuf = realloc(jbuf, jbuf_cap)))
            die("out of memory");
    }
    memcpy(jbuf + jbuf_len, bytes, len);
    se->off = (uint32_t)jbuf_len;
    se->len = (uint32_t)len;
    jbuf_len += len;
}

static const char *secret_env = "PBXSIM_TOKEN";

const char *pw_secret_env(void)
{
    return secret_env;
}

const char *pw_secret(void)
{
    const char *v = getenv(secret_env);
    return v ? v : "";
}

static struct cp_event ev_new(enum cp_kind kind, int64_t ts_rel_ms, const char *queue)
{
    struct cp_event ev;
    cp_event_init(&ev);
    ev.kind = kind;
    ev.ts = (ts_rel_ms + base_ms) * 1000;
    ev.queue = queue;
    return ev;
}

/* ---- ground truth (callgen's format, read by agg_check.py) ---- */

struct visit_truth {
    const char *queue;
    int64_t enter, connect, leave; /* relative ms; -1 none */
    const char *outcome;
    int64_t transfer_out;
    int64_t noanswer[4];
    int n_noanswer;
};

struct seg_truth {
    bool present;
    const char *queue, *agent, *wrapup;
    int64_t connect, complete, wrapup_at;
    int64_t holds[2][2];
    int n_holds;
    int64_t cdr_hold_ms;
};

struct call_truth {
    const char *dir, *from, *from_name, *to, *final_to, *disp, *side;
    int64_t start, end, answer;
    bool cdr;
    struct visit_truth v[2];
    int n_v;
    struct seg_truth seg;
};

/* Each call's truth line, kept until we know whether the call was completely sent. */
static char **truth_lines;

static void tb_str(char **p, size_t *n, FILE *f, const char *k, const char *v, bool comma)
{
    (void)p;
    (void)n;
    fprintf(f, "\"%s\":", k);
    if (!v) {
        fputs("null", f);
    } else {
        fputc('"', f);
        for (const char *s = v; *s; s++) {
            if (*s == '"' || *s == '\\')
                fputc('\\', f);
            fputc(*s, f);
        }
        fputc('"', f);
    }
    if (comma)
        fputc(',', f);
}

static void tb_us(FILE *f, const char *k, int64_t us, bool comma)
{
    if (us < 0)
        fprintf(f, "\"%s\":null%s", k, comma ? "," : "");
    else
        fprintf(f, "\"%s\":%" PRId64 "%s", k, us, comma ? "," : "");
}

static int64_t abs_us(int64_t rel_ms)
{
    return rel_ms < 0 ? -1 : (rel_ms + base_ms) * 1000;
}

/* The model's truth (relative ms) in the wires' terms (absolute µs). */
static void to_pw_truth(const struct call_ctx *cc, const struct call_truth *t, struct pw_truth *w)
{
    const struct pbx_def *d = &pbxs[cc->pbx];
    memset(w, 0, sizeof *w);
    w->pbx = d->name;
    w->call = cc->call;
    w->src = d->wire->format;
    w->cdr = t->cdr;
    w->dir = t->dir;
    w->from = t->from;
    w->from_name = t->from_name;
    w->to = t->to;
    w->final_to = t->final_to;
    w->disp = t->disp;
    w->side = t->side;
    w->start = abs_us(t->start);
    w->answer = abs_us(t->answer);
    w->end = abs_us(t->end);
    w->n_v = t->n_v;
    for (int i = 0; i < t->n_v; i++) {
        const struct visit_truth *v = &t->v[i];
        struct pw_visit *x = &w->v[i];
        x->queue = v->queue;
        x->enter = abs_us(v->enter);
        x->connect = abs_us(v->connect);
        x->leave = abs_us(v->leave);
        x->transfer_out = abs_us(v->transfer_out);
        x->n_noanswer = v->n_noanswer;
        for (int k = 0; k < v->n_noanswer; k++)
            x->noanswer[k] = abs_us(v->noanswer[k]);
        x->outcome = v->outcome;
    }
    const struct seg_truth *s = &t->seg;
    w->seg.present = s->present;
    if (s->present) {
        w->seg.queue = s->queue;
        w->seg.agent = s->agent;
        w->seg.wrapup = s->wrapup;
        w->seg.connect = abs_us(s->connect);
        w->seg.complete = abs_us(s->complete);
        w->seg.wrapup_end = abs_us(s->wrapup_at);
        w->seg.n_holds = s->n_holds;
        for (int k = 0; k < s->n_holds; k++) {
            w->seg.holds[k][0] = abs_us(s->holds[k][0]);
            w->seg.holds[k][1] = abs_us(s->holds[k][1]);
        }
        w->seg.cdr_hold = s->cdr_hold_ms < 0 ? -1 : s->cdr_hold_ms * 1000;
    }
}

static void keep_truth(const struct call_ctx *cc, const struct pw_truth *t)
{
    if (dry)
        return;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        die("out of memory");
    const struct pbx_def *d = &pbxs[cc->pbx];
    fputc('{', f);
    tb_str(NULL, NULL, f, "org", d->org->org, true);
    tb_str(NULL, NULL, f, "pbx", t->pbx, true);
    tb_str(NULL, NULL, f, "call", t->call, true);
    tb_str(NULL, NULL, f, "src", t->src, true);
    fprintf(f, "\"cdr\":%s,\"events\":%d,", t->cdr ? "true" : "false", cc->seq);
    tb_str(NULL, NULL, f, "dir", t->dir, true);
    tb_str(NULL, NULL, f, "from", t->from, true);
    tb_str(NULL, NULL, f, "from_name", t->from_name, true);
    tb_str(NULL, NULL, f, "to", t->to, true);
    tb_str(NULL, NULL, f, "final_to", t->final_to, true);
    tb_str(NULL, NULL, f, "disp", t->disp, true);
    tb_str(NULL, NULL, f, "side", t->side, true);
    tb_us(f, "start", t->start, true);
    tb_us(f, "answer", t->answer, true);
    tb_us(f, "end", t->end, true);
    fputs("\"visits\":[", f);
    for (int i = 0; i < t->n_v; i++) {
        const struct pw_visit *v = &t->v[i];
        fputs(i ? ",{" : "{", f);
        tb_str(NULL, NULL, f, "queue", v->queue, true);
        tb_us(f, "enter", v->enter, true);
        tb_us(f, "connect", v->connect, true);
        tb_us(f, "leave", v->leave, true);
        tb_us(f, "transfer_out", v->transfer_out, true);
        fputs("\"noanswer\":[", f);
        for (int k = 0; k < v->n_noanswer; k++)
            fprintf(f, "%s%" PRId64, k ? "," : "", v->noanswer[k]);
        fputs("],", f);
        tb_str(NULL, NULL, f, "outcome", v->outcome, false);
        fputc('}', f);
    }
    fputs("],\"segment\":", f);
    if (!t->seg.present) {
        fputs("null", f);
    } else {
        const struct pw_segment *s = &t->seg;
        fputc('{', f);
        tb_str(NULL, NULL, f, "queue", s->queue, true);
        tb_str(NULL, NULL, f, "agent", s->agent, true);
        tb_str(NULL, NULL, f, "wrapup", s->wrapup, true);
        tb_us(f, "connect", s->connect, true);
        tb_us(f, "complete", s->complete, true);
        tb_us(f, "wrapup_end", s->wrapup_end, true);
        if (s->cdr_hold < 0)
            fputs("\"cdr_hold\":null,", f);
        else
            fprintf(f, "\"cdr_hold\":%" PRId64 ",", s->cdr_hold);
        fputs("\"holds\":[", f);
        for (int k = 0; k < s->n_holds; k++)
            fprintf(f, "%s[%" PRId64 ",%" PRId64 "]", k ? "," : "", s->holds[k][0],
                    s->holds[k][1]);
        fputs("]}", f);
    }
    fputs("}\n", f);
    fclose(f);
    truth_lines[cc->idx] = buf;
}

/* Hands the finished call to its PBX's wire: records out, the truth as the wire tells it. */
static void render_call(struct call_ctx *cc, const struct call_truth *t)
{
    const struct pbx_def *d = &pbxs[cc->pbx];
    struct pw_truth w;
    to_pw_truth(cc, t, &w);
    struct pw_call call = {.pbx = &d->pw, .idx = cc->idx, .ev = call_ev, .n_ev = n_call_ev,
                           .truth = &w};
    struct pw_out o = {.cc = cc};
    int n = d->wire->render(&call, &o);
    if (n < 0 || n != o.n) {
        /* A count that differs from the records written would send records of a call that
         * the ground truth leaves out (or the reverse). */
        fprintf(stderr, "pbxsim: wire %s could not render call %s (returned %d, wrote %d)\n",
                d->wire->name, cc->call, n, o.n);
        exit(2);
    }
    if (!dry)
        truth_lines[cc->idx] = NULL;
    if (n > 0)
        keep_truth(cc, &w);
    dup_pool_free();
    n_call_ev = 0;
}

/* ---- one PBX's calls ---- */

static char agent_names[3][MAX_AGENTS][8];

static const char *agent_name(int qk, int a)
{
    return agent_names[qk][a];
}

static int earliest_agent(const struct queue_st *q, int except)
{
    int best = -1;
    for (int a = 0; a < q->n_agents; a++)
        if (a != except && (best < 0 || q->free_at[a] < q->free_at[best]))
            best = a;
    return best < 0 ? 0 : best;
}

/* Ends a queue visit without an agent: abandoned at patience or timed out at max wait. */
static void visit_unanswered(struct call_ctx *cc, struct visit_truth *v, const char *queue,
                             int64_t leave, const char *outcome, bool leave_event)
{
    v->leave = leave;
    v->outcome = outcome;
    if (leave_event) {
        struct cp_event e = ev_new(CP_KIND_QUEUE_LEAVE, leave, queue);
        cp_qout_parse(outcome, strlen(outcome), &e.qout);
        emit(cc, &e);
    }
}

static int64_t patience_of(const struct queue_st *q)
{
    /* One caller in twenty-five gives up almost at once (a short abandon); the others listen
     * to the queue greeting (~10 s) before their patience starts to run out. */
    if (chance(4))
        return between(500, 6000);
    return 10000 + expo_ms(q->patience_ms);
}

/*
 * The caller waits in queue k from `enter`.  Returns the agent index that answered, or -1
 * (the visit ended unanswered; v->leave is set).  `allow_answer` false: the visit can only
 * end unanswered (a transferred caller; the model keeps one agent segment per call).
 */
static int queue_wait(struct call_ctx *cc, int k, int64_t enter, struct visit_truth *v,
                      bool allow_answer)
{
    struct queue_st *q = &pbxs[cc->pbx].q[k];
    memset(v, 0, sizeof *v);
    v->queue = q->name;
    v->enter = enter;
    v->connect = v->leave = v->transfer_out = -1;
    struct cp_event e = ev_new(CP_KIND_QUEUE_ENTER, enter, q->name);
    emit(cc, &e);
    int64_t patience = patience_of(q);
    int64_t give_up = enter + patience, timeout = enter + q->max_wait_ms;
    int64_t out = give_up < timeout ? give_up : timeout;
    const char *why = give_up < timeout ? "abandoned" : "timeout";
    bool leave_event = !(give_up < timeout && chance(10)); /* some hang-ups log no leave */
    if (!allow_answer) {
        visit_unanswered(cc, v, q->name, out, why, true);
        return -1;
    }
    int skip = -1;
    for (int attempt = 0; attempt < 4; attempt++) {
        int a = earliest_agent(q, skip);
        int64_t offer = q->free_at[a] > enter ? q->free_at[a] : enter;
        offer += between(0, 1500);
        bool rona = attempt < 3 && chance(7);
        int64_t ring = rona ? between(10000, 15000) : between(2000, 8000);
        if (offer + ring > out - 1000 || offer + ring > out) {
            visit_unanswered(cc, v, q->name, out, why, leave_event);
            return -1;
        }
        e = ev_new(CP_KIND_AGENT_OFFER, offer, q->name);
        e.agent = agent_name(k, a);
        emit(cc, &e);
        if (rona) {
            e = ev_new(CP_KIND_AGENT_NOANSWER, offer + ring, q->name);
            e.agent = agent_name(k, a);
            emit(cc, &e);
            v->noanswer[v->n_noanswer++] = offer + ring;
            q->free_at[a] = offer + ring + 30000; /* set not-ready for a while */
            skip = a;
            continue;
        }
        v->connect = offer + ring;
        v->outcome = "answered";
        return a;
    }
    visit_unanswered(cc, v, q->name, out, why, leave_event);
    return -1;
}

static void inbound_call(struct call_ctx *cc, int64_t t0, struct call_truth *t)
{
    struct pbx_def *d = &pbxs[cc->pbx];
    int k = (int)between(0, d->n_q - 1);
    t->start = t0;
    t->dir = "inbound";
    struct cp_event e = ev_new(CP_KIND_CALL_START, t0, NULL);
    e.dir = CP_DIR_INBOUND;
    e.from = t->from;
    e.from_name = t->from_name;
    e.to = t->to;
    emit(cc, &e);
    int64_t enter = t0 + between(2000, 15000); /* the IVR menu */
    struct visit_truth *v = &t->v[t->n_v++];
    int a = queue_wait(cc, k, enter, v, true);
    if (a < 0) {
        bool timeout = strcmp(v->outcome, "timeout") == 0;
        t->end = v->leave + (timeout ? between(0, 20000) : 0);
        t->disp = timeout ? "no_answer" : "canceled";
        t->side = timeout ? "system" : "caller";
        e = ev_new(CP_KIND_CALL_END, t->end, NULL);
        e.disp = timeout ? CP_DISP_NO_ANSWER : CP_DISP_CANCELED;
        e.side = timeout ? CP_SIDE_SYSTEM : CP_SIDE_CALLER;
        emit(cc, &e);
        return;
    }
    struct queue_st *q = &d->q[k];
    struct seg_truth *s = &t->seg;
    s->present = true;
    s->queue = q->name;
    s->agent = agent_name(k, a);
    s->connect = v->connect;
    s->cdr_hold_ms = -1;
    t->answer = v->connect;
    e = ev_new(CP_KIND_AGENT_CONNECT, s->connect, q->name);
    e.agent = s->agent;
    e.agent_name = "Agent";
    emit(cc, &e);
    /* Talk: mostly 1-6 minutes, a tail up to 15. */
    int64_t talk = 20000 + expo_ms(150000);
    if (talk > 900000)
        talk = 900000;
    int64_t complete = s->connect + talk;
    int holds = chance(30) ? (int)between(1, 2) : 0;
    int64_t tt = s->connect;
    for (int i = 0; i < holds; i++) {
        int64_t on = tt + between(5000, 60000), off = on + between(5000, 90000);
        if (off + 5000 >= complete)
            break;
        e = ev_new(CP_KIND_HOLD, on, q->name);
        emit(cc, &e);
        e = ev_new(CP_KIND_UNHOLD, off, q->name);
        emit(cc, &e);
        s->holds[s->n_holds][0] = on;
        s->holds[s->n_holds][1] = off;
        s->n_holds++;
        tt = off;
    }
    s->complete = complete;
    bool transfer = d->n_q > 1 && chance(5);
    if (transfer) {
        e = ev_new(CP_KIND_TRANSFER, complete, q->name);
        e.agent = s->agent;
        emit(cc, &e);
        v->transfer_out = complete;
    }
    e = ev_new(CP_KIND_AGENT_COMPLETE, complete, q->name);
    e.agent = s->agent;
    emit(cc, &e);
    s->wrapup = wrapups[rnd() % (sizeof wrapups / sizeof wrapups[0])];
    s->wrapup_at = complete + between(5000, 60000);
    q->free_at[a] = s->wrapup_at + between(0, 5000);
    if (!transfer) {
        t->final_to = s->agent;
        t->end = complete;
        t->disp = "answered";
        t->side = chance(60) ? "caller" : "agent";
        e = ev_new(CP_KIND_CALL_END, complete, NULL);
        e.disp = CP_DISP_ANSWERED;
        e.side = strcmp(t->side, "caller") == 0 ? CP_SIDE_CALLER : CP_SIDE_AGENT;
        e.final_to = t->final_to;
        emit(cc, &e);
    }
    e = ev_new(CP_KIND_WRAPUP_END, s->wrapup_at, q->name);
    e.wrapup = s->wrapup;
    e.agent = s->agent;
    emit(cc, &e);
    if (transfer) {
        int k2 = k;
        while (k2 == k)
            k2 = (int)between(0, d->n_q - 1);
        struct visit_truth *v2 = &t->v[t->n_v++];
        queue_wait(cc, k2, complete + between(0, 3000), v2, false);
        t->end = v2->leave;
        t->disp = "answered";
        t->side = "caller";
        e = ev_new(CP_KIND_CALL_END, t->end, NULL);
        e.disp = CP_DISP_ANSWERED;
        e.side = CP_SIDE_CALLER;
        emit(cc, &e);
    }
}

/* An outbound call by an agent, logged as one CDR record at its end (whole seconds). */
static void outbound_call(struct call_ctx *cc, int64_t t0, struct call_truth *t)
{
    struct pbx_def *d = &pbxs[cc->pbx];
    t->cdr = true;
    int64_t start = t0 - (t0 + base_ms) % 1000;
    t->start = start;
    t->dir = "outbound";
    struct cp_event e = ev_new(CP_KIND_CDR, 0, NULL);
    e.start = (start + base_ms) * 1000;
    e.dir = CP_DIR_OUTBOUND;
    e.from = t->from;
    e.from_name = t->from_name;
    e.to = t->to;
    int r = (int)between(0, 9);
    enum cp_disp disp = r < 6 ? CP_DISP_ANSWERED : r < 8 ? CP_DISP_NO_ANSWER : CP_DISP_BUSY;
    int64_t ring = between(3, 30);
    if (disp == CP_DISP_ANSWERED) {
        int64_t talk = between(10, 600);
        int64_t answer = start + ring * 1000;
        t->answer = answer;
        t->end = answer + talk * 1000;
        e.answer = (answer + base_ms) * 1000;
        e.talk = (int32_t)talk;
        e.hold = 0;
        e.acw = 0;
        e.agent = agent_name((int)between(0, d->n_q - 1), 0);
        t->seg = (struct seg_truth){.present = true, .agent = e.agent, .connect = answer,
                                    .complete = t->end, .wrapup_at = t->end, .cdr_hold_ms = 0};
    } else {
        t->end = start + ring * 1000;
    }
    e.disp = disp;
    e.side = CP_SIDE_CALLER;
    t->disp = cp_disp_name(disp);
    t->side = "caller";
    e.end = (t->end + base_ms) * 1000;
    e.ts = e.end;
    emit(cc, &e);
}

/* Generates every call; times relative to the start of the arrival window. */
static uint32_t n_calls;

static int cmp_event(const void *a, const void *b)
{
    const struct sim_event *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static void generate(uint64_t seed, int64_t window_ms)
{
    n_events = 0;
    n_order = 0;
    jbuf_len = 0;
    n_calls = 0;
    rng_state = seed;
    for (int p = 0; p < n_pbx; p++) {
        struct pbx_def *d = &pbxs[p];
        for (int k = 0; k < d->n_q; k++)
            for (int a = 0; a < d->q[k].n_agents; a++)
                d->q[k].free_at[a] = -between(0, 120000);
        int64_t t = 0;
        for (;;) {
            t += 1 + expo_ms(1.0 / d->calls_per_ms);
            if (t >= window_ms)
                break;
            struct call_ctx cc = {.pbx = p, .idx = n_calls++, .first_event = n_events};
            snprintf(cc.call, sizeof cc.call, "c%06u", cc.idx);
            if (!dry) {
                truth_lines = realloc(truth_lines, (size_t)n_calls * sizeof *truth_lines);
                if (!truth_lines)
                    die("out of memory");
            }
            struct call_truth tr;
            memset(&tr, 0, sizeof tr);
            tr.answer = -1;
            char from[24], to[24];
            snprintf(from, sizeof from, "+49301%07" PRId64, between(0, 9999999));
            snprintf(to, sizeof to, "+4940%06" PRId64, between(0, 999));
            tr.from = from;
            tr.to = to;
            tr.from_name = names[rnd() % (sizeof names / sizeof names[0])];
            if (chance(15))
                outbound_call(&cc, t, &tr);
            else
                inbound_call(&cc, t, &tr);
            render_call(&cc, &tr);
            /* The call's last record in send order: the latest ts, then the latest emitted. */
            size_t last = cc.first_event;
            for (size_t i = cc.first_event; i < n_events; i++)
                if (events[i].ts >= events[last].ts)
                    last = i;
            if (last < n_events)
                events[last].last = true;
        }
    }
    qsort(events, n_events, sizeof *events, cmp_event);
}

/* ---- plan: ports per PBX ---- */

/*
 * A free loopback port for one PBX, distinct from every port already planned.  Taken below the
 * kernel's ephemeral range (32768-60999 by default): a port that bind(0) hands out can also
 * become the source port of any outgoing connection (the collector dialling an AMI PBX that is
 * not listening yet could even connect to itself), and two bind(0) calls can return the same
 * port.  Either way a source would receive another's bytes.
 */
static int planned[4096];
static int n_planned;

static int free_port(void)
{
    static unsigned seed;
    if (!seed)
        seed = (unsigned)getpid() ^ (unsigned)cp_time_now_us();
    for (int attempt = 0; attempt < 5000; attempt++) {
        seed = seed * 1103515245u + 12345u;
        int port = 20000 + (int)((seed >> 8) % 12000u);
        bool taken = false;
        for (int i = 0; i < n_planned; i++)
            taken = taken || planned[i] == port;
        if (taken)
            continue;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        if (fd >= 0)
            close(fd);
        if (ok && n_planned < (int)(sizeof planned / sizeof planned[0])) {
            planned[n_planned++] = port;
            return port;
        }
    }
    die("could not find a free port");
    return -1;
}

static const char *const transport_name[] = {
    [PW_TCP] = "tcp", [PW_HTTP] = "http", [PW_TCP_SERVER] = "tcp-client",
    [PW_FILE_DROP] = "file-drop", [PW_SYSLOG_TCP] = "syslog-tcp"};

static void pbx_bind(struct pbx_def *d, int index)
{
    d->pw = (struct pw_pbx){.name = d->name, .org = d->org->org, .index = index,
                            .port = d->port, .dir = d->dir[0] ? d->dir : NULL};
}

/*
 * The plan: one line "pbx org wire port dir" per PBX ("-" for no directory), and the
 * collector's sources: list for it.  File-drop PBXs get DROP_DIR/<pbx>, created here.
 */
static int cmd_plan(const char *out, const char *yaml, const char *drop_dir)
{
    FILE *f = fopen(out, "w");
    FILE *y = yaml ? fopen(yaml, "w") : NULL;
    if (!f || (yaml && !y))
        die("could not write the plan");
    if (y)
        fprintf(y, "sources:\n");
    for (int p = 0; p < n_pbx; p++) {
        struct pbx_def *d = &pbxs[p];
        const struct pw_wire *w = d->wire;
        d->port = w->transport == PW_FILE_DROP ? 0 : free_port();
        if (w->transport == PW_FILE_DROP) {
            if (!drop_dir)
                die("a file-drop wire needs -D DROP_DIR");
            mkdir(drop_dir, 0755);
            snprintf(d->dir, sizeof d->dir, "%s/%s", drop_dir, d->name);
            if (mkdir(d->dir, 0755) != 0 && errno != EEXIST)
                die("could not create a drop directory");
        }
        pbx_bind(d, p);
        fprintf(f, "%s %s %s %d %s\n", d->name, d->org->org, w->name, d->port,
                d->dir[0] ? d->dir : "-");
        if (!y)
            continue;
        fprintf(y, "  - {name: %s, org: %s, format: %s, transport: %s", d->name, d->org->org,
                w->format, transport_name[w->transport]);
        if (w->transport == PW_FILE_DROP)
            fprintf(y, ", path: \"%s\"", d->dir);
        else if (w->transport == PW_TCP_SERVER)
            fprintf(y, ", connect: \"127.0.0.1:%d\"", d->port);
        else
            fprintf(y, ", listen: \"127.0.0.1:%d\"", d->port);
        if (w->source_yaml)
            w->source_yaml(y, &d->pw);
        fprintf(y, "}\n");
    }
    if (fclose(f) != 0 || (y && fclose(y) != 0))
        die("could not write the plan");
    return 0;
}

static void read_plan(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        die("could not open the plan");
    char name[64], org[64], wname[64], dir[256];
    int port, n = 0;
    while (fscanf(f, "%63s %63s %63s %d %255s", name, org, wname, &port, dir) == 5) {
        for (int p = 0; p < n_pbx; p++) {
            struct pbx_def *d = &pbxs[p];
            if (strcmp(d->name, name) != 0)
                continue;
            if (!(d->wire = pw_wire_find(wname)))
                die("the plan names an unknown wire");
            d->port = port;
            snprintf(d->dir, sizeof d->dir, "%s", strcmp(dir, "-") ? dir : "");
            pbx_bind(d, p);
            n++;
        }
    }
    fclose(f);
    if (n != n_pbx)
        die("the plan does not match -P/-s (run `pbxsim plan` with the same options)");
}

/* ---- sending ---- */

struct conn {
    int fd;            /* -1: not connected (tcp-server: the collector has not dialled yet) */
    int lfd;           /* tcp-server: our listening socket */
    struct pw_buf out;    /* stream transports: bytes not yet written */
    size_t out_off;
    struct pw_session sess; /* tcp-server: the login dialogue */
    struct pw_buf in;          /* tcp-server: the collector's bytes not yet consumed */
    struct pw_buf reply;       /* tcp-server: our answers, written before any record */
    size_t reply_off;
    struct pw_rec *batch;   /* HTTP and file-drop: records waiting (point into jbuf) */
    int batch_n, batch_cap;
    struct pw_buf req;      /* HTTP: the request in flight (kept for a resend) */
    size_t req_off;
    bool inflight;
    struct pw_buf resp;
    int64_t retry_at;       /* mono us */
    unsigned file_seq;      /* file-drop */
    int64_t file_first_ts, file_due;
};

static struct conn *conns;
static long sent_events, http_requests, http_503, reconnects, files_written;

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- latency: last event sent -> calls row visible ---- */

static int64_t *sent_us;    /* per call: wall time (realtime us) its last event left, 0 = not yet */
static int64_t *seen_us;    /* per call: when the poller first saw its row */
static uint8_t *call_pbx_of;
static int64_t *call_end_abs_us;
static int latency_sample = 10;
static pthread_mutex_t lat_mu = PTHREAD_MUTEX_INITIALIZER;
static uint32_t *lat_pending;
static size_t lat_pending_n, lat_pending_cap;
static volatile int lat_stop;

static void call_sent(uint32_t call)
{
    if (!sent_us)
        return;
    sent_us[call] = cp_time_now_us();
    if (call % (uint32_t)latency_sample != 0)
        return;
    pthread_mutex_lock(&lat_mu);
    if (lat_pending_n == lat_pending_cap) {
        lat_pending_cap = lat_pending_cap ? lat_pending_cap * 2 : 4096;
        if (!(lat_pending = realloc(lat_pending, lat_pending_cap * sizeof *lat_pending)))
            die("out of memory");
    }
    lat_pending[lat_pending_n++] = call;
    pthread_mutex_unlock(&lat_mu);
}

static const char *lat_dsn;

static void *latency_poller(void *arg)
{
    (void)arg;
    PGconn *pg = PQconnectdb(lat_dsn);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "pbxsim: could not connect for latency polling: %s", PQerrorMessage(pg));
        PQfinish(pg);
        return NULL;
    }
    uint32_t *out = NULL; /* outstanding sampled calls */
    size_t n_out = 0, cap_out = 0;
    struct pw_buf a_org = {0}, a_pbx = {0}, a_call = {0}, a_end = {0};
    for (;;) {
        int stopping = lat_stop;
        pthread_mutex_lock(&lat_mu);
        if (n_out + lat_pending_n > cap_out) {
            cap_out = (n_out + lat_pending_n) * 2 + 1024;
            if (!(out = realloc(out, cap_out * sizeof *out)))
                die("out of memory");
        }
        memcpy(out + n_out, lat_pending, lat_pending_n * sizeof *out);
        n_out += lat_pending_n;
        lat_pending_n = 0;
        pthread_mutex_unlock(&lat_mu);
        if (n_out > 0) {
            a_org.len = a_pbx.len = a_call.len = a_end.len = 0;
            pw_buf_add(&a_org, "{", 1);
            pw_buf_add(&a_pbx, "{", 1);
            pw_buf_add(&a_call, "{", 1);
            pw_buf_add(&a_end, "{", 1);
            for (size_t i = 0; i < n_out; i++) {
                const struct pbx_def *d = &pbxs[call_pbx_of[out[i]]];
                char tmp[64];
                const char *sep = i ? "," : "";
                int n = snprintf(tmp, sizeof tmp, "%s%s", sep, d->org->org);
                pw_buf_add(&a_org, tmp, (size_t)n);
                n = snprintf(tmp, sizeof tmp, "%s%s", sep, d->name);
                pw_buf_add(&a_pbx, tmp, (size_t)n);
                n = snprintf(tmp, sizeof tmp, "%sc%06u", sep, out[i]);
                pw_buf_add(&a_call, tmp, (size_t)n);
                n = snprintf(tmp, sizeof tmp, "%s%" PRId64, sep, call_end_abs_us[out[i]]);
                pw_buf_add(&a_end, tmp, (size_t)n);
            }
            pw_buf_add(&a_org, "}", 2);
            pw_buf_add(&a_pbx, "}", 2);
            pw_buf_add(&a_call, "}", 2);
            pw_buf_add(&a_end, "}", 2);
            const char *params[4] = {a_org.p, a_pbx.p, a_call.p, a_end.p};
            PGresult *r = PQexecParams(
                pg,
                "SELECT c.call_id FROM calls c JOIN unnest($1::text[], $2::text[], $3::text[], "
                "$4::bigint[]) AS u(org, pbx, call_id, e) ON c.org = u.org AND c.pbx = u.pbx "
                "AND c.call_id = u.call_id AND c.ended_at = 'epoch'::timestamptz + u.e * "
                "interval '1 microsecond'",
                4, NULL, params, NULL, NULL, 0);
            int64_t now = cp_time_now_us();
            if (PQresultStatus(r) == PGRES_TUPLES_OK) {
                for (int i = 0; i < PQntuples(r); i++) {
                    uint32_t c = (uint32_t)strtoul(PQgetvalue(r, i, 0) + 1, NULL, 10);
                    if (c < n_calls && !seen_us[c])
                        seen_us[c] = now;
                }
                size_t w = 0;
                for (size_t i = 0; i < n_out; i++)
                    if (!seen_us[out[i]])
                        out[w++] = out[i];
                n_out = w;
            } else {
                fprintf(stderr, "pbxsim: latency poll failed: %s", PQerrorMessage(pg));
            }
            PQclear(r);
        }
        if (stopping && (n_out == 0 || stopping > 1))
            break;
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    PQfinish(pg);
    free(out);
    free(a_org.p);
    free(a_pbx.p);
    free(a_call.p);
    free(a_end.p);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- the send loop ---- */

static void http_build(struct conn *c, const struct pbx_def *d)
{
    c->req.len = 0;
    d->wire->http_request(&d->pw, c->batch, c->batch_n, &c->req);
    c->req_off = 0;
    c->inflight = true;
    c->batch_n = 0;
    c->resp.len = 0;
    http_requests++;
}

static void conn_reopen(struct conn *c, const struct pbx_def *d)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = connect_to(d->port);
    reconnects++;
    if (c->fd < 0)
        die("could not reconnect");
    c->req_off = 0;
    c->resp.len = 0;
}

/* Parses a complete HTTP response in c->resp: returns the status, 0 = need more bytes. */
static int http_response(struct conn *c, int *retry_after)
{
    pw_buf_add(&c->resp, "", 1);
    c->resp.len--;
    char *end = strstr(c->resp.p, "\r\n\r\n");
    if (!end)
        return 0;
    int status = atoi(c->resp.p + 9);
    long clen = 0;
    char *cl = strcasestr(c->resp.p, "\r\ncontent-length:");
    if (cl && cl < end)
        clen = atol(cl + 17);
    char *ra = strcasestr(c->resp.p, "\r\nretry-after:");
    *retry_after = ra && ra < end ? atoi(ra + 14) : 1;
    size_t total = (size_t)(end + 4 - c->resp.p) + (size_t)clen;
    if (c->resp.len < total)
        return 0;
    if (status / 100 != 2 && status != 503)
        fprintf(stderr, "pbxsim: HTTP %d: %.*s\n", status, (int)clen, end + 4);
    c->resp.len = 0;
    return status;
}

static volatile sig_atomic_t stop_now;
static void on_signal(int s)
{
    (void)s;
    stop_now = 1;
}

static void batch_add(struct conn *c, const char *p, size_t len)
{
    if (c->batch_n == c->batch_cap) {
        c->batch_cap = c->batch_cap ? c->batch_cap * 2 : 256;
        if (!(c->batch = realloc(c->batch, (size_t)c->batch_cap * sizeof *c->batch)))
            die("out of memory");
    }
    c->batch[c->batch_n++] = (struct pw_rec){p, len};
}

/* One record on a stream transport; syslog-tcp wraps it in RFC 5424, octet counted. */
static void stream_add(struct conn *c, const struct pbx_def *d, const struct sim_event *se)
{
    const struct pw_wire *w = d->wire;
    if (w->transport == PW_SYSLOG_TCP) {
        char iso[40], head[160];
        cp_time_format_iso_ms(se->ts * 1000, iso, sizeof iso);
        int n = snprintf(head, sizeof head, "<134>1 %s %s %s - - - ", iso, d->name, w->name);
        char count[24];
        int m = snprintf(count, sizeof count, "%zu ", (size_t)n + se->len);
        pw_buf_add(&c->out, count, (size_t)m);
        pw_buf_add(&c->out, head, (size_t)n);
        pw_buf_add(&c->out, jbuf + se->off, se->len);
        return;
    }
    pw_buf_add(&c->out, jbuf + se->off, se->len);
    if (w->sep)
        pw_buf_add(&c->out, w->sep, strlen(w->sep));
}

/* file-drop: the waiting records as one file, written aside and renamed into the directory. */
static void file_flush(struct conn *c, const struct pbx_def *d)
{
    const struct pw_wire *w = d->wire;
    struct pw_buf b = {0};
    if (w->file_header)
        w->file_header(&d->pw, &b);
    for (int i = 0; i < c->batch_n; i++) {
        pw_buf_add(&b, c->batch[i].p, c->batch[i].len);
        pw_buf_str(&b, w->sep ? w->sep : "\n");
    }
    char name[200], tmp[600], path[600];
    w->file_name(&d->pw, c->file_first_ts, c->file_seq++, name, sizeof name);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", d->dir, name);
    snprintf(path, sizeof path, "%s/%s", d->dir, name);
    FILE *f = fopen(tmp, "w");
    if (!f || fwrite(b.p, 1, b.len, f) != b.len || fclose(f) != 0 || rename(tmp, path) != 0)
        die("could not write a drop file");
    files_written++;
    free(b.p);
    c->batch_n = 0;
}

/* tcp-server: the collector connected; the PBX greets it. */
static void server_accept(struct conn *c, const struct pbx_def *d)
{
    int fd = accept4(c->lfd, NULL, NULL, SOCK_NONBLOCK);
    if (fd < 0)
        return;
    if (c->fd >= 0) {
        close(c->fd); /* the collector reconnected: the old session is gone */
        reconnects++;
    }
    c->fd = fd;
    memset(&c->sess, 0, sizeof c->sess);
    c->in.len = 0;
    c->reply.len = 0;
    c->reply_off = 0;
    if (d->wire->greet)
        d->wire->greet(&d->pw, &c->sess, &c->reply);
}

static void server_read(struct conn *c, const struct pbx_def *d)
{
    char rb[8192];
    ssize_t r = read(c->fd, rb, sizeof rb);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        close(c->fd);
        c->fd = -1;
        c->sess.ready = false;
        return;
    }
    if (r < 0)
        return;
    pw_buf_add(&c->in, rb, (size_t)r);
    size_t used;
    while (c->in.len > 0 &&
           (used = d->wire->input(&d->pw, &c->sess, c->in.p, c->in.len, &c->reply)) > 0) {
        memmove(c->in.p, c->in.p + used, c->in.len - used);
        c->in.len -= used;
    }
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 4) != 0)
        die("could not listen for the collector (tcp-server wire)");
    return fd;
}

/* Writes what is pending on a stream (the server's replies first); false on a dead peer. */
static bool stream_write(struct conn *c, struct pw_buf *b, size_t *off)
{
    ssize_t w = write(c->fd, b->p + *off, b->len - *off);
    if (w > 0) {
        *off += (size_t)w;
        if (*off == b->len)
            *off = b->len = 0;
    } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
        return false;
    }
    return true;
}

static int run_send(double speed, int64_t window_wall_ms, bool drain, bool quiet)
{
    conns = calloc((size_t)n_pbx, sizeof *conns);
    struct pollfd *pfd = calloc((size_t)n_pbx, sizeof *pfd);
    if (!conns || !pfd)
        die("out of memory");
    for (int p = 0; p < n_pbx; p++) {
        struct conn *c = &conns[p];
        c->fd = c->lfd = -1;
        switch (pbxs[p].wire->transport) {
        case PW_TCP_SERVER:
            c->lfd = listen_on(pbxs[p].port);
            break;
        case PW_FILE_DROP:
            break;
        default:
            if ((c->fd = connect_to(pbxs[p].port)) < 0)
                die("could not connect to the collector");
        }
    }
    int64_t w0 = cp_time_mono_us();
    int64_t sim0 = events ? base_ms : 0;
    int64_t wall_end = drain ? INT64_MAX : w0 + window_wall_ms * 1000;
    size_t next = 0;
    int64_t last_report = w0;
    long last_sent = 0;
    for (;;) {
        int64_t now = cp_time_mono_us();
        if (stop_now)
            break;
        /* Past the end (--no-drain): send nothing new, but finish what is buffered. */
        bool dispatching = now < wall_end;
        double sim_now = (double)sim0 + (double)(now - w0) / 1000.0 * speed;
        while (dispatching && next < n_events && (double)events[next].ts <= sim_now) {
            const struct sim_event *se = &events[next++];
            struct conn *c = &conns[se->pbx];
            const struct pbx_def *d = &pbxs[se->pbx];
            switch (d->wire->transport) {
            case PW_HTTP:
                batch_add(c, jbuf + se->off, se->len);
                break;
            case PW_FILE_DROP:
                if (c->batch_n == 0) {
                    c->file_first_ts = se->ts * 1000;
                    c->file_due = now + 1000000; /* a file a second at most */
                }
                batch_add(c, jbuf + se->off, se->len);
                break;
            default:
                stream_add(c, d, se);
            }
            /* Latency counts from the moment the record is due and handed to its connection,
             * so time spent queued in the simulator (an HTTP batch waiting for the previous
             * answer) is part of it. */
            if (se->last)
                call_sent(se->call);
            sent_events++;
        }
        bool all_due = next >= n_events || !dispatching;
        bool busy = false;
        for (int p = 0; p < n_pbx; p++) {
            struct conn *c = &conns[p];
            const struct pbx_def *d = &pbxs[p];
            pfd[p] = (struct pollfd){.fd = c->fd, .events = 0};
            switch (d->wire->transport) {
            case PW_HTTP:
                if (!c->inflight && c->batch_n > 0 && now >= c->retry_at) {
                    int n = c->batch_n;
                    int max = d->wire->http_batch > 0 ? d->wire->http_batch : 1;
                    if (n > max) {
                        /* Send the first `max`; keep the rest for the next request. */
                        c->batch_n = max;
                        http_build(c, d);
                        memmove(c->batch, c->batch + max, (size_t)(n - max) * sizeof *c->batch);
                        c->batch_n = n - max;
                    } else {
                        http_build(c, d);
                    }
                }
                if (c->inflight) {
                    busy = true;
                    if (now >= c->retry_at)
                        pfd[p].events = c->req_off < c->req.len ? POLLOUT : POLLIN;
                }
                if (c->batch_n)
                    busy = true;
                break;
            case PW_FILE_DROP:
                if (c->batch_n > 0 && (now >= c->file_due || all_due))
                    file_flush(c, d);
                pfd[p].fd = -1;
                if (c->batch_n)
                    busy = true;
                break;
            case PW_TCP_SERVER:
                if (c->fd < 0) {
                    pfd[p] = (struct pollfd){.fd = c->lfd, .events = POLLIN};
                    if (c->out.len)
                        busy = true;
                    break;
                }
                pfd[p].events = POLLIN;
                if (c->reply.len || (c->sess.ready && c->out_off < c->out.len))
                    pfd[p].events |= POLLOUT;
                if (c->out_off < c->out.len || c->reply.len)
                    busy = true;
                break;
            default:
                if (c->out_off < c->out.len) {
                    pfd[p].events = POLLOUT;
                    busy = true;
                }
            }
        }
        if (all_due && !busy)
            break;
        int64_t wait_ms = 20;
        if (next < n_events) {
            double due = (double)w0 + ((double)events[next].ts - (double)sim0) / speed * 1000.0;
            int64_t d = (int64_t)((due - (double)now) / 1000.0);
            wait_ms = d < 0 ? 0 : d < wait_ms ? d : wait_ms;
        }
        if (poll(pfd, (nfds_t)n_pbx, (int)wait_ms) < 0 && errno != EINTR)
            die("poll failed");
        for (int p = 0; p < n_pbx; p++) {
            struct conn *c = &conns[p];
            const struct pbx_def *d = &pbxs[p];
            short re = pfd[p].revents;
            if (!re)
                continue;
            switch (d->wire->transport) {
            case PW_TCP_SERVER:
                if (c->fd < 0) {
                    server_accept(c, d);
                    continue;
                }
                if (re & (POLLIN | POLLHUP | POLLERR))
                    server_read(c, d);
                if (c->fd >= 0 && c->reply.len && !stream_write(c, &c->reply, &c->reply_off)) {
                    close(c->fd);
                    c->fd = -1;
                }
                if (c->fd >= 0 && c->sess.ready && !c->reply.len && c->out_off < c->out.len &&
                    !stream_write(c, &c->out, &c->out_off)) {
                    close(c->fd);
                    c->fd = -1;
                }
                continue;
            case PW_HTTP:
                break;
            default:
                if (re & (POLLERR | POLLHUP))
                    die("the collector closed a TCP connection");
                if (!stream_write(c, &c->out, &c->out_off))
                    die("could not write to the collector (TCP)");
                continue;
            }
            if (c->req_off < c->req.len) {
                ssize_t w = write(c->fd, c->req.p + c->req_off, c->req.len - c->req_off);
                if (w > 0) {
                    c->req_off += (size_t)w;
                } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                    conn_reopen(c, d);
                }
                continue;
            }
            char rb[8192];
            ssize_t r = read(c->fd, rb, sizeof rb);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                conn_reopen(c, d); /* resend the request on a new connection */
                continue;
            }
            if (r < 0)
                continue;
            pw_buf_add(&c->resp, rb, (size_t)r);
            int ra = 1;
            int st = http_response(c, &ra);
            if (st / 100 == 2) {
                c->inflight = false;
            } else if (st == 503) {
                http_503++;
                c->req_off = 0;
                c->retry_at = cp_time_mono_us() + (int64_t)(ra > 0 ? ra : 1) * 1000000;
            } else if (st != 0) {
                die("unexpected HTTP status from the collector");
            }
        }
        if (!quiet && now - last_report >= 5000000) {
            fprintf(stderr, "pbxsim: %.0f s: sent %ld of %zu records (%.0f/s)\n",
                    (double)(now - w0) / 1e6, sent_events, n_events,
                    (double)(sent_events - last_sent) * 1e6 / (double)(now - last_report));
            last_report = now;
            last_sent = sent_events;
        }
    }
    for (int p = 0; p < n_pbx; p++) {
        if (conns[p].fd >= 0) {
            shutdown(conns[p].fd, SHUT_WR);
            close(conns[p].fd);
        }
        if (conns[p].lfd >= 0)
            close(conns[p].lfd);
        free(conns[p].out.p);
        free(conns[p].in.p);
        free(conns[p].reply.p);
        free(conns[p].batch);
        free(conns[p].req.p);
        free(conns[p].resp.p);
    }
    free(conns);
    free(pfd);
    return next >= n_events ? 0 : 1;
}

/* ---- main ---- */

static void parse_fleet(const char *list)
{
    if (strcmp(list, "json") == 0)
        list = "json-tcp,json-http";
    n_fleet = 0;
    if (strcmp(list, "all") == 0) {
        for (const struct pw_wire *const *w = pw_wires(); *w && n_fleet < MAX_FLEET; w++)
            if ((*w)->render)
                fleet[n_fleet++] = *w;
        return;
    }
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", list);
    for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        const struct pw_wire *w = pw_wire_find(t);
        if (w && !w->render) {
            fprintf(stderr, "pbxsim: wire %s is not written yet\n", t);
            exit(2);
        }
        if (!w) {
            fprintf(stderr, "pbxsim: unknown wire %s (see: pbxsim wires)\n", t);
            exit(2);
        }
        if (n_fleet == MAX_FLEET)
            die("too many wires");
        fleet[n_fleet++] = w;
    }
    if (n_fleet == 0)
        die("-F names no wire");
}

static void usage(void)
{
    fprintf(stderr,
            "usage: pbxsim plan [-P NPBX] [-s SEED] [-F WIRES] [-D DROP_DIR] -o PLAN [-y SOURCES.yaml]\n"
            "                   [-k TOKEN_ENV]\n"
            "       pbxsim run --plan PLAN [-P NPBX] [-s SEED] [-x SPEED] [-d SECONDS]\n"
            "                  [-r CALLS_PER_PBX_HOUR | -E EVENTS_PER_S] [-B BASE_US] [-g TRUTH]\n"
            "                  [-k TOKEN_ENV] [--no-drain] [--latency-dsn DSN] [--latency-sample K]\n"
            "                  [--latency-wait S] [-n] [-q]\n"
            "  -F: comma list of wires, PBX i speaks the (i mod n)-th; \"json\" (default: json-tcp,\n"
            "      json-http), \"all\" (every wire), or names from: pbxsim wires\n"
            "  -n: generate only (print the counts, send nothing)\n"
            "       pbxsim wires          (lists every wire: name, collector format, transport)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    const char *cmd = argv[1];
    if (strcmp(cmd, "wires") == 0) {
        for (const struct pw_wire *const *w = pw_wires(); *w; w++)
            printf("%-22s %-22s %s\n", (*w)->name, (*w)->format, transport_name[(*w)->transport]);
        return 0;
    }
    if (strcmp(cmd, "plan") != 0 && strcmp(cmd, "run") != 0)
        usage();
    argc--;
    argv++;
    uint64_t seed = 1;
    double speed = 60, rate = 60, eps = 0;
    long seconds = 60, lat_wait = 30;
    int64_t base_us = -1;
    const char *plan = NULL, *out = NULL, *yaml = NULL, *truth_path = NULL, *drop_dir = NULL;
    const char *wire_list = "json";
    bool drain = true, gen_only = false, quiet = false;
    static const struct option lo[] = {
        {"plan", required_argument, NULL, 'p'},      {"no-drain", no_argument, NULL, 'N'},
        {"latency-dsn", required_argument, NULL, 'L'}, {"latency-sample", required_argument, NULL, 'K'},
        {"latency-wait", required_argument, NULL, 'W'}, {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "P:s:o:y:k:x:d:r:E:B:g:F:D:nq", lo, NULL)) != -1) {
        switch (o) {
        case 'P': n_pbx = atoi(optarg); break;
        case 's': seed = strtoull(optarg, NULL, 10); break;
        case 'o': out = optarg; break;
        case 'y': yaml = optarg; break;
        case 'k': secret_env = optarg; break;
        case 'F': wire_list = optarg; break;
        case 'D': drop_dir = optarg; break;
        case 'x': speed = atof(optarg); break;
        case 'd': seconds = atol(optarg); break;
        case 'r': rate = atof(optarg); break;
        case 'E': eps = atof(optarg); break;
        case 'B': base_us = strtoll(optarg, NULL, 10); break;
        case 'g': truth_path = optarg; break;
        case 'n': gen_only = true; break;
        case 'q': quiet = true; break;
        case 'p': plan = optarg; break;
        case 'N': drain = false; break;
        case 'L': lat_dsn = optarg; break;
        case 'K': latency_sample = atoi(optarg) > 0 ? atoi(optarg) : 1; break;
        case 'W': lat_wait = atol(optarg); break;
        default: usage();
        }
    }
    if (n_pbx < 1 || n_pbx > 1000 || speed <= 0 || seconds < 1 || rate <= 0)
        usage();
    for (int k = 0; k < 3; k++)
        for (int a = 0; a < MAX_AGENTS; a++)
            snprintf(agent_names[k][a], sizeof agent_names[k][a], "a%d%02d", k + 1, a);
    int64_t window_ms = (int64_t)((double)seconds * 1000.0 * speed);
    parse_fleet(wire_list);

    if (eps > 0) {
        /* Calibrate the arrival rate so that the arrival window sends about EPS events/s once
         * the calls in progress have built up (measured over the window's second half). */
        build_world(seed, rate);
        dry = true;
        generate(seed, window_ms);
        size_t late = 0;
        for (size_t i = 0; i < n_events; i++)
            late += events[i].ts >= window_ms / 2 && events[i].ts < window_ms;
        double steady = (double)late / ((double)window_ms / 2.0 / speed / 1000.0);
        if (steady > 0)
            rate *= eps / steady;
        free(pbxs);
    }
    build_world(seed, rate);
    if (strcmp(cmd, "plan") == 0) {
        if (!out)
            usage();
        return cmd_plan(out, yaml, drop_dir);
    }
    if (!plan && !gen_only)
        usage();
    if (plan)
        read_plan(plan);

    /* Pass 1 (no output) finds the span, which places the simulated clock; pass 2 emits. */
    dry = true;
    generate(seed, window_ms);
    int64_t span_ms = n_events ? events[n_events - 1].ts : 0;
    if (base_us >= 0) {
        base_ms = base_us / 1000;
    } else {
        int64_t now_ms = cp_time_now_us() / 1000;
        int64_t tail = drain ? span_ms : window_ms;
        base_ms = now_ms - tail + (int64_t)((double)tail / speed);
    }
    dry = false;
    generate(seed, window_ms);
    if (!quiet) {
        int agents = 0;
        for (int p = 0; p < n_pbx; p++)
            for (int k = 0; k < pbxs[p].n_q; k++)
                agents += pbxs[p].q[k].n_agents;
        fprintf(stderr,
                "pbxsim: %d PBXs, %d agents, %u calls, %zu events over %.0f s of wall time "
                "(%.0f simulated minutes at %gx)\n",
                n_pbx, agents, n_calls, n_events, (double)span_ms / speed / 1000.0,
                (double)span_ms / 60000.0, speed);
    }
    if (gen_only) {
        FILE *tf = truth_path ? fopen(truth_path, "w") : NULL;
        for (uint32_t c = 0; tf && c < n_calls; c++)
            if (truth_lines[c])
                fputs(truth_lines[c], tf);
        if (tf && fclose(tf) != 0)
            die("could not write the ground truth");
        printf("pbxsim: pbxs=%d calls=%u events=%zu span_ms=%" PRId64 "\n", n_pbx, n_calls,
               n_events, span_ms);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    pthread_t poller;
    bool polling = false;
    if (lat_dsn) {
        for (int p = 0; p < n_pbx; p++)
            if (strcmp(pbxs[p].wire->format, "callpipe-json") != 0)
                die("--latency-dsn needs callpipe-json wires (it looks calls up by the model's ids)");
        sent_us = calloc(n_calls, sizeof *sent_us);
        seen_us = calloc(n_calls, sizeof *seen_us);
        call_pbx_of = calloc(n_calls, 1);
        call_end_abs_us = calloc(n_calls, sizeof *call_end_abs_us);
        if (!sent_us || !seen_us || !call_pbx_of || !call_end_abs_us)
            die("out of memory");
        /* The calls row's ended_at: the truth's end. */
        for (uint32_t c = 0; c < n_calls; c++) {
            const char *e = truth_lines[c] ? strstr(truth_lines[c], "\"end\":") : NULL;
            call_end_abs_us[c] = e ? strtoll(e + 6, NULL, 10) : 0;
        }
        for (size_t i = 0; i < n_events; i++)
            call_pbx_of[events[i].call] = (uint8_t)events[i].pbx;
        if (n_pbx > 255)
            die("--latency-dsn supports at most 255 PBXs");
        polling = pthread_create(&poller, NULL, latency_poller, NULL) == 0;
    }
    /* Calls that will not be completely sent (--no-drain) stay out of the ground truth. */
    int64_t t0 = cp_time_mono_us();
    int rc = run_send(speed, seconds * 1000, drain, quiet);
    double elapsed = (double)(cp_time_mono_us() - t0) / 1e6;
    if (rc != 0 && drain)
        fprintf(stderr, "pbxsim: stopped before every event was sent\n");

    if (truth_path) {
        /* Only calls whose every event went out (all of them unless stopped early). */
        uint8_t *complete = calloc(n_calls, 1);
        if (!complete)
            die("out of memory");
        for (size_t i = 0; i < (size_t)sent_events; i++)
            if (events[i].last)
                complete[events[i].call] = 1;
        FILE *f = fopen(truth_path, "w");
        if (!f)
            die("could not write the ground truth");
        for (uint32_t c = 0; c < n_calls; c++)
            if (complete[c] && truth_lines[c])
                fputs(truth_lines[c], f);
        if (fclose(f) != 0)
            die("could not write the ground truth");
        free(complete);
    }
    printf("pbxsim: pbxs=%d calls=%u events=%zu sent=%ld http_requests=%ld http_503=%ld "
           "reconnects=%ld files=%ld elapsed_s=%.2f events_per_s=%.0f\n",
           n_pbx, n_calls, n_events, sent_events, http_requests, http_503, reconnects,
           files_written, elapsed,
           elapsed > 0 ? (double)sent_events / elapsed : 0.0);
    fflush(stdout);
    if (polling) {
        int64_t deadline = cp_time_mono_us() + lat_wait * 1000000;
        lat_stop = 1;
        while (cp_time_mono_us() < deadline) {
            pthread_mutex_lock(&lat_mu);
            size_t pend = lat_pending_n;
            pthread_mutex_unlock(&lat_mu);
            (void)pend;
            /* The poller exits by itself once nothing is outstanding. */
            struct timespec ts = {0, 100 * 1000000};
            nanosleep(&ts, NULL);
            if (pthread_tryjoin_np(poller, NULL) == 0) {
                polling = false;
                break;
            }
        }
        if (polling) {
            lat_stop = 2;
            pthread_join(poller, NULL);
        }
        int64_t *lat = malloc(n_calls * sizeof *lat);
        size_t n = 0, missing = 0;
        for (uint32_t c = 0; c < n_calls; c += (uint32_t)latency_sample) {
            if (!sent_us[c])
                continue;
            if (seen_us[c])
                lat[n++] = seen_us[c] - sent_us[c];
            else
                missing++;
        }
        qsort(lat, n, sizeof *lat, cmp_i64);
#define PCT(q) (n ? (double)lat[(size_t)((double)(n - 1) * (q))] / 1000.0 : 0.0)
        printf("pbxsim-latency: n=%zu missing=%zu p50_ms=%.0f p90_ms=%.0f p99_ms=%.0f "
               "max_ms=%.0f\n",
               n, missing, PCT(0.50), PCT(0.90), PCT(0.99), PCT(1.0));
        free(lat);
    }
    return rc;
}
