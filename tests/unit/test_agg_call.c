/* test_agg_call.c - golden event sequences through the call state machine: deltas and call rows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "agg_call.h"
#include "cp_time.h"

/* ---- a sink that keeps every booking ---- */

#define MAXROWS 16
struct test_sink {
    struct agg_sink sink;
    struct agg_settings st;
    int n;
    struct {
        char queue[32];
        int64_t interval;
        struct agg_qi qi;
    } rows[MAXROWS];
    int n_disp;
    char disp[8][64];
    int64_t disp_handle[8];
    int n_wrap;
    char wrap[8][64];
};

static struct agg_qi *sink_interval(struct agg_sink *s, const char *org, const char *queue,
                                    int64_t interval)
{
    struct test_sink *t = (struct test_sink *)s;
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->rows[i].queue, queue) == 0 && t->rows[i].interval == interval)
            return &t->rows[i].qi;
    assert_true(t->n < MAXROWS);
    snprintf(t->rows[t->n].queue, 32, "%s", queue);
    t->rows[t->n].interval = interval;
    memset(&t->rows[t->n].qi, 0, sizeof(struct agg_qi));
    return &t->rows[t->n++].qi;
}

static void sink_disp(struct agg_sink *s, const char *org, const char *queue, int64_t interval,
                      const char *d, int64_t handle)
{
    struct test_sink *t = (struct test_sink *)s;
    snprintf(t->disp[t->n_disp], 64, "%s/%s@%lld", queue, d, (long long)(interval / 1000000));
    t->disp_handle[t->n_disp++] = handle;
}

static void sink_wrap(struct agg_sink *s, const char *org, const char *queue, int64_t interval,
                      const char *w, int64_t handle)
{
    struct test_sink *t = (struct test_sink *)s;
    snprintf(t->wrap[t->n_wrap++], 64, "%s/%s", queue, w);
}

static const struct agg_settings *sink_settings(struct agg_sink *s, const char *org,
                                                const char *queue, int64_t at)
{
    return &((struct test_sink *)s)->st;
}

static void sink_init(struct test_sink *t)
{
    memset(t, 0, sizeof *t);
    t->sink = (struct agg_sink){sink_interval, sink_disp, sink_wrap, sink_settings};
    t->st = (struct agg_settings){20000, false, 5000};
}

static struct agg_qi *row(struct test_sink *t, const char *queue, int64_t interval_s)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->rows[i].queue, queue) == 0 && t->rows[i].interval == interval_s * 1000000)
            return &t->rows[i].qi;
    fail_msg("no row for %s at %lld", queue, (long long)interval_s);
    return NULL;
}

/* ---- building events ---- */

#define T0 1700000100LL /* 22:15:00 UTC, the start of an interval */
static int seq;

static struct cp_event mk(enum cp_kind kind, int64_t at_s_frac_ms, const char *queue)
{
    struct cp_event ev;
    cp_event_init(&ev);
    static char ids[512][16];
    snprintf(ids[seq % 512], 16, "e%d", seq);
    ev.event_id = ids[seq++ % 512];
    ev.org = "acme";
    ev.pbx = "pbx";
    ev.src = "test";
    ev.call = "c1";
    ev.kind = kind;
    ev.ts = T0 * 1000000 + at_s_frac_ms * 1000;
    ev.queue = queue;
    return ev;
}

static int apply(struct agg_call *c, struct cp_event ev, struct test_sink *t)
{
    return agg_call_apply(c, &ev, "x", 1, t ? &t->sink : NULL);
}

static struct agg_call *newcall(void)
{
    return agg_call_create("acme", "pbx", "c1");
}

/* ---- cases ---- */

static void test_answered(void **state)
{
    struct test_sink t;
    sink_init(&t);
    struct agg_call *c = newcall();
    struct cp_event e = mk(CP_KIND_CALL_START, 0, NULL);
    e.from = "+4930123";
    e.dir = CP_DIR_INBOUND;
    apply(c, e, &t);
    apply(c, mk(CP_KIND_QUEUE_ENTER, 1000, "sales"), &t);
    apply(c, mk(CP_KIND_AGENT_OFFER, 5000, "sales"), &t);
    e = mk(CP_KIND_AGENT_CONNECT, 13000, "sales"); /* waited 12 s */
    e.agent = "a7";
    apply(c, e, &t);
    apply(c, mk(CP_KIND_AGENT_COMPLETE, 73000, "sales"), &t); /* talked 60 s */
    e = mk(CP_KIND_CALL_END, 73500, NULL);
    e.disp = CP_DISP_ANSWERED;
    apply(c, e, &t);
    assert_false(agg_call_complete(c)); /* wrap-up still to come */
    e = mk(CP_KIND_WRAPUP_END, 88000, "sales"); /* 15 s ACW */
    e.wrapup = "sale";
    apply(c, e, &t);
    assert_true(agg_call_complete(c));
    struct agg_call_row r;
    agg_call_finish(c, &t.sink, false, &r);

    assert_int_equal(t.n, 1);
    struct agg_qi *q = row(&t, "sales", T0);
    assert_int_equal(q->offered, 1);
    assert_int_equal(q->answered, 1);
    assert_int_equal(q->answered_wait_ms, 12000);
    assert_int_equal(q->answered_wait_max_ms, 12000);
    assert_int_equal(q->answered_within_sl, 1);
    assert_int_equal(q->answered_hist[agg_wait_bucket(12000)], 1);
    assert_int_equal(agg_wait_bucket(12000), 3); /* (10, 15] */
    assert_int_equal(q->talk_ms, 60000);
    assert_int_equal(q->hold_ms, 0);
    assert_int_equal(q->acw_ms, 15000);
    assert_int_equal(q->handled, 1);
    assert_int_equal(q->handle_ms, 75000);
    assert_int_equal(q->abandoned, 0);
    assert_string_equal(t.disp[0], "sales/answered@1700000100"); /* at the end, 22:16:13 */
    assert_int_equal(t.disp_handle[0], 75000);
    assert_string_equal(t.wrap[0], "sales/sale");

    assert_string_equal(r.queue, "sales");
    assert_string_equal(r.agent, "a7");
    assert_string_equal(r.from, "+4930123");
    assert_int_equal(r.dir, CP_DIR_INBOUND);
    assert_int_equal(r.started_us, T0 * 1000000);
    assert_int_equal(r.queued_us, T0 * 1000000 + 1000000);
    assert_int_equal(r.answered_us, T0 * 1000000 + 13000000);
    assert_int_equal(r.ended_us, T0 * 1000000 + 73500000);
    assert_int_equal(r.wait_ms, 12000);
    assert_int_equal(r.talk_ms, 60000);
    assert_int_equal(r.acw_ms, 15000);
    assert_int_equal(r.handle_ms, 75000);
    assert_int_equal(r.qout, CP_QOUT_ANSWERED);
    assert_string_equal(r.wrapup, "sale");
    assert_false(r.forced);
    agg_call_destroy(c);
}

static void abandon_after(int64_t wait_ms, int64_t *abandoned, int64_t *short_ab, int64_t *within)
{
    struct test_sink t;
    sink_init(&t);
    struct agg_call *c = newcall();
    apply(c, mk(CP_KIND_QUEUE_ENTER, 0, "q"), &t);
    struct cp_event e = mk(CP_KIND_QUEUE_LEAVE, wait_ms, "q");
    e.qout = CP_QOUT_ABANDONED;
    apply(c, e, &t);
    e = mk(CP_KIND_CALL_END, wait_ms, NULL);
    e.disp = CP_DISP_CANCELED;
    apply(c, e, &t);
    assert_true(agg_call_complete(c));
    struct agg_call_row r;
    agg_call_finish(c, &t.sink, false, &r);
    struct agg_qi *q = row(&t, "q", T0);
    assert_int_equal(q->offered, 1);
    assert_int_equal(q->answered, 0);
    assert_int_equal(q->abandoned_wait_ms, wait_ms);
    assert_int_equal(q->handled, 0);
    assert_int_equal(r.qout, CP_QOUT_ABANDONED);
    assert_int_equal(r.talk_ms, -1);
    *abandoned = q->abandoned;
    *short_ab = q->short_abandoned;
    *within = q->abandoned_within_sl;
    agg_call_destroy(c);
}

static void test_abandoned_and_short(void **state)
{
    int64_t ab, sh, in;
    abandon_after(30000, &ab, &sh, &in);
    assert_int_equal(ab, 1);
    assert_int_equal(sh, 0);
    assert_int_equal(in, 0); /* 30 s > 20 s threshold */
    abandon_after(4000, &ab, &sh, &in);
    assert_int_equal(ab, 1);
    assert_int_equal(sh, 1); /* <= 5 s short-abandon threshold */
    assert_int_equal(in, 1);
    abandon_after(5000, &ab, &sh, &in); /* exactly at the threshold: short (<=) */
    assert_int_equal(sh, 1);
}

static void test_caller_hangs_up_in_queue_without_leave(void **state)
{
    /* Some PBXs send no queue-leave: the call's end closes the visit as abandoned. */
    struct test_sink t;
    sink_init(&t);
    struct agg_call *c = newcall();
    apply(c, mk(CP_KIND_QUEUE_ENTER, 0, "q"), &t);
    apply(c, mk(CP_KIND_CALL_END, 25000, NULL), &t);
    assert_true(agg_call_complete(c)); /* nothing left to wait for: finish books the abandon */
    struct agg_call_row r;
    agg_call_finish(c, &t.sink, false, &r);
    assert_int_equal(row(&t, "q", T0)->abandoned, 1);
    assert_int_equal(row(&t, "q", T0)->abandoned_wait_ms, 25000);
    agg_call_destroy(c);
}

static void test_timeout(void **state)
{
    struct test_sink t;
    sink_init(&t);
    struct agg_call *c = newcall();
    apply(c, mk(CP_KIND_QUEUE_ENTER, 0, "q"), &t);
    apply(c, mk(CP_KIND_AGENT_NOANSWER, 15000, "q"), &t);
    apply(c, mk(CP_KIND_AGENT_NOANSWER, 30000, "q"), &t);
    struct cp_event e = mk(CP_KIND_QUEUE_LEAVE, 120000, "q");
    e.qout = CP_QOUT_TIMEOUT;
    apply(c, e, &t);
    apply(c, mk(CP_KIND_CALL_END, 121000, NULL), &t);
    assert_true(agg_call_complete(c));
    struct agg_call_row r;
    agg_call_finish(c, &t.sink, false, &r);
    struct agg_qi *q = row(&t, "q", T0);
    assert_int_equal(q->timed_out, 1);
    assert_int_equal(q->abandoned, 0);
    assert_int_equal(q->agent_noanswer, 2);
    assert_int_equal(q->abandoned_wait_ms, 0);
    assert_int_equal(r.qout, CP_QOUT_TIMEOUT);
    agg_call_destroy(c);
}

static void test_transfer_between_queues(void **state)
{
    struct test_sink t;
    sink_init(&t);
    struct agg_call *c = newcall();
    apply(c, mk(CP_KIND_QUEUE_ENTER, 0, "sales"), &t);
    apply(c, mk(CP_KIND_AGENT_CONNECT, 10000, "sales"), &t);
    apply(c, mk(CP_KIND_TRANSFER, 40000, "sales"), &t);
    apply(c, mk(CP_KIND_AGENT_COMPLETE, 40000, "sales"), &t);
    apply(c, mk(CP_KIND_WRAPUP_END, 40000, "sales"), &t);
    apply(c, mk(CP_KIND_QUEUE_ENTER, 41000, "support"), &t);
    apply(c, mk(CP_KIND_AGENT_CONNECT, 71000, "support"), &t);
    apply(c, mk(CP_KIND_CALL_END, 100000, NULL), &t);
    struct agg_call_row r;
    agg_call_finish(c, &t.sink, false, &r);
    struct agg_qi *s = row(&t, "sales", T0), *u = row(&t, "support", T0);
    assert_int_equal(s->offered, 1);
    assert_int_equal(s->answered, 1);
    assert_int_equal(s->transferred_out, 1);
    assert_int_equal(s->transferred_in, 0);
    assert_int_equal(s->handled, 1);
    assert_int_equal(s->talk_ms, 30000);
    assert_int_equal(u->offered, 1); /* counted once in each queue */
    assert_int_equal(u->answered, 1);
    assert_int_equal(u->answered_wait_ms, 30000);
    assert_int_equal(u->transferred_in, 1);
    assert_int_equal(u->answered_within_sl, 0);
    agg_call_destroy(c);
}

/* A call answered in sales, transferred, and answered again in support: each queue
 * gets its own agent's talk, hold and handle time; the row adds them up. */
static void test_second_agent_segment(void **state)
{
    struct test_sink t;
    sink_init(&t);
    struct agg_call *c = newcall();
    struct cp_event e;
    apply(c, mk(CP_KIND_QUEUE_ENTER, 0, "sales"), &t);
    e = mk(CP_KIND_AGENT_CONNECT, 10000, "sales");
    e.agent = "a1";
    apply(c, e, &t);
    apply(c, mk(CP_KIND_HOLD, 20000, NULL), &t);
    apply(c, mk(CP_KIND_UNHOLD, 25000, NULL), &t); /* 5 s hold in the first segment */
    apply(c, mk(CP_KIND_TRANSFER, 40000, "sales"), &t);
    apply(c, mk(CP_KIND_AGENT_COMPLETE, 40000, "sales"), &t);
    apply(c, mk(CP_KIND_WRAPUP_END, 45000, "sales"), &t);
    apply(c, mk(CP_KIND_QUEUE_ENTER, 41000, "support"), &t);
    e = mk(CP_KIND_AGENT_CONNECT, 51000, "support");
    e.agent = "a2";
    apply(c, e, &t);
    apply(c, mk(CP_KIND_HOLD, 60000, NULL), &t);
    apply(c, mk(CP_KIND_UNHOLD, 62000, NULL), &t); /* 2 s hold in the second */
    apply(c, mk(CP_KIND_AGENT_COMPLETE, 111000, "support"), &t);
    apply(c, mk(CP_KIND_CALL_END, 111000, NULL), &t);
    assert_false(agg_call_complete(c)); /* the second wrap-up is still to come */
    apply(c, mk(CP_KIND_WRAPUP_END, 121000, "support"), &t);
    assert_true(agg_call_complete(c));
    struct agg_call_row r;
    agg_call_finish(c, &t.sink, false, &r);
    struct agg_qi *s1 = row(&t, "sales", T0), *s2 = row(&t, "support", T0);
    assert_int_equal(s1->talk_ms, 25000);
    assert_int_equal(s1->hold_ms, 5000);
    assert_int_equal(s1->acw_ms, 5000);
    assert_int_equal(s1->handle_ms, 35000);
    assert_int_equal(s1->handled, 1);
    assert_int_equal(s2->answered, 1);
    assert_int_equal(s2->answered_wait_ms, 10000);
    assert_int_equal(s2->talk_ms, 58000);
    assert_int_equal(s2->hold_ms, 2000);
    assert_int_equal(s2->held, 1);
    assert_int_equal(s2->acw_ms, 10000);
    assert_int_equal(s2->handle_ms, 70000);
    assert_int_equal(s2->handled, 1);
    assert_string_equal(r.queue, "support");
    assert_string_equal(r.agent, "a2");
    assert_int_equal(r.talk_ms, 83000);
    assert_int_equal(r.hold_ms, 7000);
    assert_int_equal(r.acw_ms, 15000);
    assert_int_equal(r.handle_ms, 105000);
    agg_call_destroy(c);
}

static void test_held_twice(void **state)
{
    struct test_sink t;
    sink_init(&t);
    struct agg_call *c = newcall();
    apply(c, mk(CP_KIND_QUEUE_ENTER, 0, "q"), &t);
    apply(c, mk(CP_KIND_AGENT_CONNECT, 2000, "q"), &t);
    apply(c, mk(CP_KIND_HOLD, 10000, NULL), &t);
    apply(c, mk(CP_KIND_UNHOLD, 25000, NULL), &t); /* 15 s */
    /* The second unhold arrives before its hold. */
    apply(c, mk(CP_KIND_UNHOLD, 45000, NULL), &t);
    apply(c, mk(CP_KIND_HOLD, 40000, NULL), &t); /* 5 s */
    apply(c, mk(CP_KIND_AGENT_COMPLETE, 62000, "q"), &t);
    apply(c, mk(CP_KIND_WRAPUP_END, 70000, "q"), &t);
    apply(c, mk(CP_KIND_CALL_END, 62000, NULL), &t);
    assert_true(agg_call_complete(c));
    struct agg_call_row r;
    agg_call_finish(c, &t.sink, false, &r);
    struct agg_qi *q = row(&t, "q", T0);
    assert_int_equal(q->hold_ms, 20000);
    assert_int_equal(q->held, 1);
    assert_int_equal(q->talk_ms, 40000); /* 60 s connected minus 20 s hold */
    assert_int_equal(q->acw_ms, 8000);
    assert_int_equal(q->handle_ms, 68000);
    assert_int_equal(r.hold_ms, 20000);
    agg_call_destroy(c);
}

static void test_duplicates(void **state)
{
    struct test_sink t;
    sink_init(&t);
    struct agg_call *c = newcall();
    struct cp_event enter = mk(CP_KIND_QUEUE_ENTER, 0, "q");
    struct cp_event conn = mk(CP_KIND_AGENT_CONNECT, 3000, "q");
    assert_int_equal(apply(c, enter, &t), AGG_APPLIED);
    assert_int_equal(apply(c, enter, &t), AGG_DUPLICATE);
    assert_int_equal(apply(c, conn, &t), AGG_APPLIED);
    assert_int_equal(apply(c, conn, &t), AGG_DUPLICATE);
    struct agg_qi *q = row(&t, "q", T0);
    assert_int_equal(q->offered, 1);
    assert_int_equal(q->answered, 1);
    assert_int_equal(q->answered_wait_ms, 3000);
    agg_call_destroy(c);
}

/* The same events in every order give the same bookings and the same row. */
static void run_order(const int *order, int n, struct cp_event *evs, struct test_sink *t,
                      struct agg_call_row *r, struct agg_call **out)
{
    sink_init(t);
    struct agg_call *c = newcall();
    for (int i = 0; i < n; i++)
        apply(c, evs[order[i]], t);
    assert_true(agg_call_complete(c));
    agg_call_finish(c, &t->sink, false, r);
    *out = c;
}

static void test_out_of_order_end(void **state)
{
    struct cp_event evs[6];
    evs[0] = mk(CP_KIND_QUEUE_ENTER, 0, "q");
    evs[1] = mk(CP_KIND_AGENT_CONNECT, 8000, "q");
    evs[2] = mk(CP_KIND_AGENT_COMPLETE, 50000, "q");
    evs[3] = mk(CP_KIND_WRAPUP_END, 60000, "q");
    evs[4] = mk(CP_KIND_CALL_END, 50000, NULL);
    evs[4].disp = CP_DISP_ANSWERED;
    evs[5] = mk(CP_KIND_HOLD, 20000, NULL);
    struct cp_event unhold = mk(CP_KIND_UNHOLD, 30000, NULL);
    (void)unhold;
    int in_order[] = {0, 1, 2, 3, 4};
    int end_first[] = {4, 3, 2, 1, 0};
    int mixed[] = {2, 4, 0, 3, 1};
    struct test_sink a, b, m;
    struct agg_call_row ra, rb, rm;
    struct agg_call *ca, *cb, *cm;
    run_order(in_order, 5, evs, &a, &ra, &ca);
    run_order(end_first, 5, evs, &b, &rb, &cb);
    run_order(mixed, 5, evs, &m, &rm, &cm);
    assert_int_equal(a.n, 1);
    assert_int_equal(b.n, 1);
    assert_memory_equal(&a.rows[0].qi, &b.rows[0].qi, sizeof(struct agg_qi));
    assert_memory_equal(&a.rows[0].qi, &m.rows[0].qi, sizeof(struct agg_qi));
    assert_int_equal(ra.talk_ms, 42000);
    assert_int_equal(rb.talk_ms, 42000);
    assert_int_equal(rm.handle_ms, 52000);
    assert_int_equal(rb.wait_ms, 8000);
    agg_call_destroy(ca);
    agg_call_destroy(cb);
    agg_call_destroy(cm);
}

static void test_cdr_only(void **state)
{
    struct test_sink t;
    sink_init(&t);
    struct agg_call *c = newcall();
    struct cp_event e = mk(CP_KIND_CDR, 200000, "billing");
    e.start = T0 * 1000000;
    e.answer = T0 * 1000000 + 30000000;
    e.end = T0 * 1000000 + 200000000;
    e.wait = 25; /* queued from 5 s to 30 s */
    e.talk = 160;
    e.hold = 10;
    e.acw = 20;
    e.disp = CP_DISP_ANSWERED;
    e.qout = CP_QOUT_ANSWERED;
    e.agent = "a1";
    apply(c, e, &t);
    assert_true(agg_call_complete(c));
    struct agg_call_row r;
    agg_call_finish(c, &t.sink, false, &r);
    struct agg_qi *q = row(&t, "billing", T0);
    assert_int_equal(q->offered, 1);
    assert_int_equal(q->answered, 1);
    assert_int_equal(q->answered_wait_ms, 25000);
    assert_int_equal(q->talk_ms, 160000);
    assert_int_equal(q->hold_ms, 10000);
    assert_int_equal(q->acw_ms, 20000);
    assert_int_equal(q->handle_ms, 190000);
    assert_int_equal(q->handled, 1);
    assert_int_equal(r.wait_ms, 25000);
    assert_int_equal(r.acw_ms, 20000);
    assert_int_equal(r.queued_us, T0 * 1000000 + 5000000);

    /* An unanswered cdr with a queue: abandoned at its end. */
    sink_init(&t);
    struct agg_call *c2 = newcall();
    e = mk(CP_KIND_CDR, 40000, "billing");
    e.start = T0 * 1000000;
    e.end = T0 * 1000000 + 40000000;
    e.wait = 38;
    e.disp = CP_DISP_CANCELED;
    e.qout = CP_QOUT_ABANDONED;
    apply(c2, e, &t);
    assert_true(agg_call_complete(c2));
    agg_call_finish(c2, &t.sink, false, &r);
    q = row(&t, "billing", T0);
    assert_int_equal(q->abandoned, 1);
    assert_int_equal(q->abandoned_wait_ms, 38000);
    assert_int_equal(q->answered, 0);
    agg_call_destroy(c);
    agg_call_destroy(c2);
}

static void test_cdr_after_cti_only_fills_gaps(void **state)
{
    /* AMI sends queue events and, at hangup, a Cdr summary of the same call: the
     * bookings must equal those of the live events alone. */
    struct test_sink a, b;
    sink_init(&a);
    sink_init(&b);
    struct agg_call *live = newcall(), *both = newcall();
    struct cp_event evs[5];
    evs[0] = mk(CP_KIND_QUEUE_ENTER, 0, "q");
    evs[1] = mk(CP_KIND_AGENT_CONNECT, 9000, "q");
    evs[2] = mk(CP_KIND_AGENT_COMPLETE, 69000, "q");
    evs[3] = mk(CP_KIND_CALL_END, 69000, NULL);
    evs[4] = mk(CP_KIND_WRAPUP_END, 80000, "q");
    for (int i = 0; i < 5; i++) {
        apply(live, evs[i], &a);
        apply(both, evs[i], &b);
    }
    struct cp_event cdr = mk(CP_KIND_CDR, 69000, NULL);
    cdr.start = T0 * 1000000;
    cdr.answer = T0 * 1000000 + 1000000; /* the PBX answered the caller into the queue */
    cdr.end = T0 * 1000000 + 69000000;
    cdr.talk = 68;
    cdr.disp = CP_DISP_ANSWERED;
    apply(both, cdr, &b);
    struct agg_call_row ra, rb;
    agg_call_finish(live, &a.sink, false, &ra);
    agg_call_finish(both, &b.sink, false, &rb);
    assert_int_equal(a.n, 1);
    assert_int_equal(b.n, 1);
    assert_memory_equal(&a.rows[0].qi, &b.rows[0].qi, sizeof(struct agg_qi));
    assert_int_equal(rb.talk_ms, 60000);
    assert_int_equal(rb.wait_ms, 9000);
    assert_int_equal(rb.disp, CP_DISP_ANSWERED); /* filled from the summary */
    agg_call_destroy(live);
    agg_call_destroy(both);
}

static void test_spans_two_intervals(void **state)
{
    struct test_sink t;
    sink_init(&t);
    struct agg_call *c = newcall();
    apply(c, mk(CP_KIND_QUEUE_ENTER, 890000, "q"), &t);    /* 22:29:50 */
    apply(c, mk(CP_KIND_AGENT_CONNECT, 905000, "q"), &t);  /* 22:30:05 */
    apply(c, mk(CP_KIND_AGENT_COMPLETE, 1805000, "q"), &t); /* 22:45:05 */
    apply(c, mk(CP_KIND_WRAPUP_END, 1810000, "q"), &t);
    apply(c, mk(CP_KIND_CALL_END, 1805000, NULL), &t);
    struct agg_call_row r;
    agg_call_finish(c, &t.sink, false, &r);
    assert_int_equal(t.n, 3);
    assert_int_equal(row(&t, "q", T0)->offered, 1);
    assert_int_equal(row(&t, "q", T0)->answered, 0);
    assert_int_equal(row(&t, "q", T0 + 900)->answered, 1);
    assert_int_equal(row(&t, "q", T0 + 900)->answered_wait_ms, 15000);
    assert_int_equal(row(&t, "q", T0 + 900)->offered, 0);
    assert_int_equal(row(&t, "q", T0 + 1800)->talk_ms, 900000);
    assert_int_equal(row(&t, "q", T0 + 1800)->handled, 1);
    agg_call_destroy(c);
}

static void test_restore_books_nothing_twice(void **state)
{
    /* Replaying the persisted events without a sink marks bookings done, so the
     * events that arrive after a restart book only what is new. */
    struct cp_event enter = mk(CP_KIND_QUEUE_ENTER, 0, "q");
    struct cp_event conn = mk(CP_KIND_AGENT_CONNECT, 4000, "q");
    struct cp_event done = mk(CP_KIND_AGENT_COMPLETE, 34000, "q");
    struct cp_event wrap = mk(CP_KIND_WRAPUP_END, 40000, "q");
    struct cp_event end = mk(CP_KIND_CALL_END, 34000, NULL);
    struct agg_call *c = newcall();
    apply(c, enter, NULL);
    apply(c, conn, NULL);
    struct test_sink t;
    sink_init(&t);
    assert_int_equal(apply(c, conn, &t), AGG_DUPLICATE);
    apply(c, done, &t);
    apply(c, end, &t);
    apply(c, wrap, &t);
    struct agg_call_row r;
    agg_call_finish(c, &t.sink, false, &r);
    struct agg_qi *q = row(&t, "q", T0);
    assert_int_equal(q->offered, 0);
    assert_int_equal(q->answered, 0);
    assert_int_equal(q->talk_ms, 30000);
    assert_int_equal(q->handled, 1);
    assert_int_equal(r.wait_ms, 4000);
    agg_call_destroy(c);
}

static void test_forced_close(void **state)
{
    /* Connected, never completed: the open-call timeout closes it at its last event. */
    struct test_sink t;
    sink_init(&t);
    struct agg_call *c = newcall();
    apply(c, mk(CP_KIND_QUEUE_ENTER, 0, "q"), &t);
    apply(c, mk(CP_KIND_AGENT_CONNECT, 6000, "q"), &t);
    assert_false(agg_call_ended(c));
    struct agg_call_row r;
    agg_call_finish(c, &t.sink, true, &r);
    assert_true(r.forced);
    assert_int_equal(row(&t, "q", T0)->handled, 1);
    assert_int_equal(row(&t, "q", T0)->talk_ms, 0);
    agg_call_destroy(c);
}

/* The threshold in force at the answer counts, not the one at the queue entry
 * (schema/README.md: "settings in force at the event"). */
static struct agg_settings changing[2] = {{20000, false, 0}, {5000, false, 0}};
static const struct agg_settings *settings_changing(struct agg_sink *s, const char *org,
                                                    const char *queue, int64_t at)
{
    return &changing[at >= (T0 + 60) * 1000000];
}

static void test_settings_at_the_answer(void **state)
{
    struct test_sink t;
    sink_init(&t);
    t.sink.settings = settings_changing; /* 20 s until T0+60 s, then 5 s */
    struct agg_call *c = newcall();
    apply(c, mk(CP_KIND_QUEUE_ENTER, 50000, "q"), &t);
    apply(c, mk(CP_KIND_AGENT_CONNECT, 65000, "q"), &t); /* waited 15 s, answered under 5 s */
    struct agg_call *d = agg_call_create("acme", "pbx", "c2");
    apply(d, mk(CP_KIND_QUEUE_ENTER, 55000, "q"), &t);
    struct cp_event e = mk(CP_KIND_QUEUE_LEAVE, 61000, "q"); /* abandoned after 6 s */
    e.qout = CP_QOUT_ABANDONED;
    apply(d, e, &t);
    struct agg_qi *q = row(&t, "q", T0);
    assert_int_equal(q->answered, 1);
    assert_int_equal(q->answered_within_sl, 0);
    assert_int_equal(q->abandoned, 1);
    assert_int_equal(q->abandoned_within_sl, 0);
    agg_call_destroy(c);
    agg_call_destroy(d);
}

/* After an agent transfer the call's row names its last queue and that visit's wait and
 * outcome (schema/README.md calls: "last queue and agent"; routes match on it); the
 * disposition stays with the queue that handled the call. */
static void test_row_names_the_last_queue(void **state)
{
    struct test_sink t;
    sink_init(&t);
    struct agg_call *c = newcall();
    apply(c, mk(CP_KIND_QUEUE_ENTER, 0, "sales"), &t);
    apply(c, mk(CP_KIND_AGENT_CONNECT, 10000, "sales"), &t);
    apply(c, mk(CP_KIND_TRANSFER, 40000, "sales"), &t);
    apply(c, mk(CP_KIND_AGENT_COMPLETE, 40000, "sales"), &t);
    apply(c, mk(CP_KIND_WRAPUP_END, 50000, "sales"), &t);
    apply(c, mk(CP_KIND_QUEUE_ENTER, 41000, "support"), &t);
    struct cp_event e = mk(CP_KIND_QUEUE_LEAVE, 61000, "support");
    e.qout = CP_QOUT_ABANDONED;
    apply(c, e, &t);
    e = mk(CP_KIND_CALL_END, 61000, NULL);
    e.disp = CP_DISP_ANSWERED;
    apply(c, e, &t);
    assert_true(agg_call_complete(c));
    struct agg_call_row r;
    agg_call_finish(c, &t.sink, false, &r);
    assert_string_equal(r.queue, "support");
    assert_int_equal(r.wait_ms, 20000);
    assert_int_equal(r.qout, CP_QOUT_ABANDONED);
    assert_int_equal(r.talk_ms, 30000);
    assert_string_equal(t.disp[0], "sales/answered@1700000100");
    agg_call_destroy(c);
}

/* transferred_in is booked at the transfer, not at the next queue's entry: here the
 * transfer happens at 22:29:59 and the caller enters the next queue at 22:30:01. */
static void test_transferred_in_at_the_transfer(void **state)
{
    struct test_sink t;
    sink_init(&t);
    struct agg_call *c = newcall();
    apply(c, mk(CP_KIND_QUEUE_ENTER, 0, "sales"), &t);
    apply(c, mk(CP_KIND_AGENT_CONNECT, 10000, "sales"), &t);
    apply(c, mk(CP_KIND_TRANSFER, 899000, "sales"), &t);
    apply(c, mk(CP_KIND_QUEUE_ENTER, 901000, "support"), &t);
    assert_int_equal(row(&t, "sales", T0)->transferred_out, 1);
    assert_int_equal(row(&t, "support", T0)->transferred_in, 1);
    assert_int_equal(row(&t, "support", T0 + 900)->transferred_in, 0);
    assert_int_equal(row(&t, "support", T0 + 900)->offered, 1);
    agg_call_destroy(c);
}

/* queue_log never says a call ended: settled once nobody waits and nobody talks. */
static void test_settled_without_end(void **state)
{
    struct test_sink t;
    sink_init(&t);
    struct agg_call *c = newcall();
    assert_false(agg_call_settled(c)); /* nothing known yet */
    apply(c, mk(CP_KIND_QUEUE_ENTER, 0, "sales"), &t);
    assert_false(agg_call_settled(c)); /* waiting */
    struct cp_event e = mk(CP_KIND_AGENT_CONNECT, 10000, "sales");
    e.agent = "a7";
    apply(c, e, &t);
    assert_false(agg_call_settled(c)); /* talking */
    e = mk(CP_KIND_TRANSFER, 70000, "sales");
    e.to = "care"; /* where the call went: not the number dialled */
    apply(c, e, &t);
    apply(c, mk(CP_KIND_AGENT_COMPLETE, 70000, "sales"), &t);
    assert_true(agg_call_settled(c)); /* between the transfer and the next queue */
    apply(c, mk(CP_KIND_QUEUE_ENTER, 71000, "care"), &t);
    assert_false(agg_call_settled(c)); /* waiting again */
    e = mk(CP_KIND_QUEUE_LEAVE, 90000, "care");
    e.qout = CP_QOUT_ABANDONED;
    apply(c, e, &t);
    assert_true(agg_call_settled(c));
    assert_false(agg_call_complete(c)); /* never ended: only the caller's wait closes it */
    struct agg_call_row r;
    agg_call_finish(c, &t.sink, false, &r);
    assert_int_equal(r.ended_us, (T0 + 90) * 1000000);
    assert_null(r.to);
    assert_int_equal(r.talk_ms, 60000);
    assert_int_equal(row(&t, "care", T0)->abandoned, 1);
    assert_int_equal(row(&t, "sales", T0)->handled, 1);
    agg_call_destroy(c);

    /* A call that ended is never "settled": the wrap-up wait applies instead. */
    c = newcall();
    apply(c, mk(CP_KIND_QUEUE_ENTER, 0, "sales"), &t);
    e = mk(CP_KIND_CALL_END, 5000, NULL);
    apply(c, e, &t);
    assert_false(agg_call_settled(c));
    agg_call_destroy(c);
}

/* AMI: QueueCallerAbandon, then QueueCallerLeave (no reason), in either order: abandoned. */
static void test_leave_without_reason_keeps_abandon(void **state)
{
    for (int order = 0; order < 2; order++) {
        struct test_sink t;
        sink_init(&t);
        struct agg_call *c = newcall();
        apply(c, mk(CP_KIND_QUEUE_ENTER, 0, "sales"), &t);
        struct cp_event ab = mk(CP_KIND_QUEUE_LEAVE, 40000, "sales");
        ab.qout = CP_QOUT_ABANDONED;
        struct cp_event lv = mk(CP_KIND_QUEUE_LEAVE, 40000, "sales");
        apply(c, order ? lv : ab, &t);
        apply(c, order ? ab : lv, &t);
        struct cp_event e = mk(CP_KIND_CALL_END, 40000, NULL);
        e.disp = CP_DISP_CANCELED;
        apply(c, e, &t);
        assert_true(agg_call_complete(c));
        struct agg_call_row r;
        agg_call_finish(c, &t.sink, false, &r);
        assert_int_equal(r.qout, CP_QOUT_ABANDONED);
        assert_int_equal(r.wait_ms, 40000);
        assert_int_equal(row(&t, "sales", T0)->abandoned, 1);
        assert_int_equal(row(&t, "sales", T0)->other_flowout, 0);
        agg_call_destroy(c);
    }
}

/* Amazon Connect: hold only as CustomerHoldDuration on the agent's complete. */
static void test_hold_summary_on_complete(void **state)
{
    struct test_sink t;
    sink_init(&t);
    struct agg_call *c = newcall();
    apply(c, mk(CP_KIND_QUEUE_ENTER, 0, "sales"), &t);
    struct cp_event e = mk(CP_KIND_AGENT_CONNECT, 10000, "sales");
    e.agent = "a7";
    apply(c, e, &t);
    e = mk(CP_KIND_AGENT_COMPLETE, 130000, "sales"); /* 120 s connected, 30 s of it on hold */
    e.hold = 30;
    apply(c, e, &t);
    e = mk(CP_KIND_CALL_END, 130000, NULL);
    e.disp = CP_DISP_ANSWERED;
    apply(c, e, &t);
    struct agg_call_row r;
    agg_call_finish(c, &t.sink, false, &r);
    assert_int_equal(r.hold_ms, 30000);
    assert_int_equal(r.talk_ms, 90000);
    assert_int_equal(row(&t, "sales", T0)->held, 1);
    assert_int_equal(row(&t, "sales", T0)->hold_ms, 30000);
    agg_call_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answered),
        cmocka_unit_test(test_abandoned_and_short),
        cmocka_unit_test(test_caller_hangs_up_in_queue_without_leave),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_transfer_between_queues),
        cmocka_unit_test(test_held_twice),
        cmocka_unit_test(test_second_agent_segment),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_out_of_order_end),
        cmocka_unit_test(test_cdr_only),
        cmocka_unit_test(test_spans_two_intervals),
        cmocka_unit_test(test_cdr_after_cti_only_fills_gaps),
        cmocka_unit_test(test_restore_books_nothing_twice),
        cmocka_unit_test(test_forced_close),
        cmocka_unit_test(test_settings_at_the_answer),
        cmocka_unit_test(test_row_names_the_last_queue),
        cmocka_unit_test(test_transferred_in_at_the_transfer),
        cmocka_unit_test(test_settled_without_end),
        cmocka_unit_test(test_leave_without_reason_keeps_abandon),
        cmocka_unit_test(test_hold_summary_on_complete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
