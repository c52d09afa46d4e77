/* agg_call.c - the call state machine: order-independent booking of queue metrics per event time. */
#include "agg_call.h"

#include <stdlib.h>
#include <string.h>

#include "cp_time.h"

const int agg_wait_bounds_s[AGG_WAIT_BUCKETS - 1] = {5,  8,   10,  15,  20,  25,  30,  45,
                                                     60, 90, 120, 180, 240, 300, 600, 1200};

int agg_wait_bucket(int64_t wait_ms)
{
    for (int i = 0; i < AGG_WAIT_BUCKETS - 1; i++)
        if (wait_ms <= (int64_t)agg_wait_bounds_s[i] * 1000)
            return i;
    return AGG_WAIT_BUCKETS - 1;
}

uint64_t agg_id_hash(const char *id)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    return h;
}

static int64_t interval_of(int64_t us)
{
    return cp_time_floor(us, AGG_INTERVAL_S);
}

static int64_t ms_between(int64_t from_us, int64_t to_us)
{
    int64_t d = (to_us - from_us) / 1000;
    return d < 0 ? 0 : d;
}

static const char *keep(struct agg_call *c, const char *s)
{
    return s ? cp_arena_strdup(&c->arena, s) : NULL;
}

struct agg_call *agg_call_create(const char *org, const char *pbx, const char *call)
{
    struct agg_call *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    cp_arena_init(&c->arena, 2048, 0);
    c->org = keep(c, org);
    c->pbx = keep(c, pbx);
    c->call = keep(c, call);
    c->cdr_acw_ms = -1;
    if (!c->org || !c->pbx || !c->call) {
        agg_call_destroy(c);
        return NULL;
    }
    return c;
}

void agg_call_destroy(struct agg_call *c)
{
    if (!c)
        return;
    cp_arena_destroy(&c->arena);
    free(c);
}

/* ---- bookings ---- */

static const struct agg_settings default_settings = {20000, false, 0};

static const struct agg_settings *settings_for(struct agg_call *c, struct agg_sink *s,
                                               const char *queue, int64_t at)
{
    const struct agg_settings *st = s && s->settings ? s->settings(s, c->org, queue, at) : NULL;
    return st ? st : &default_settings;
}

static struct agg_qi *qi(struct agg_call *c, struct agg_sink *s, const char *queue, int64_t t)
{
    if (!s || !queue)
        return NULL; /* restore mode, or a call that never met a queue */
    return s->interval(s, c->org, queue, interval_of(t));
}

static bool within_sl(const struct agg_settings *st, int64_t wait_ms)
{
    return st->sl_strict ? wait_ms < st->sl_threshold_ms : wait_ms <= st->sl_threshold_ms;
}

/* Transfer time of a visit that was transferred away, or 0. */
static int64_t transfer_time(const struct agg_visit *v)
{
    if (v->t_transfer)
        return v->t_transfer;
    if (v->t_leave && v->qout == CP_QOUT_TRANSFERRED)
        return v->t_leave;
    return 0;
}

static void hold_sum(const struct agg_call *c, int64_t *total_us, bool *closed);

static void book_visit(struct agg_call *c, struct agg_visit *v, struct agg_sink *s)
{
    struct agg_qi *q;
    if (!v->t_enter)
        return; /* a placeholder made by an early event: wait for the queue entry */
    /* Settings in force at the answer or the abandon (schema/README.md, queue_settings),
     * not at the entry: a visit may straddle a change of settings. */
    const struct agg_settings *st;
    if (!v->b_offer) {
        v->b_offer = true;
        if ((q = qi(c, s, v->queue, v->t_enter)))
            q->offered++;
    }
    if (!v->b_answer && v->t_connect && !v->b_leave) {
        v->b_answer = true;
        int64_t wait = ms_between(v->t_enter, v->t_connect);
        st = settings_for(c, s, v->queue, v->t_connect);
        if ((q = qi(c, s, v->queue, v->t_connect))) {
            q->answered++;
            q->answered_wait_ms += wait;
            if (wait > q->answered_wait_max_ms)
                q->answered_wait_max_ms = wait;
            if (within_sl(st, wait))
                q->answered_within_sl++;
            q->answered_hist[agg_wait_bucket(wait)]++;
        }
    }
    if (!v->b_leave && !v->b_answer && !v->t_connect && v->t_leave &&
        v->qout != CP_QOUT_UNKNOWN && v->qout != CP_QOUT_ANSWERED) {
        v->b_leave = true;
        int64_t wait = ms_between(v->t_enter, v->t_leave);
        st = settings_for(c, s, v->queue, v->t_leave);
        if ((q = qi(c, s, v->queue, v->t_leave))) {
            switch (v->qout) {
            case CP_QOUT_ABANDONED:
                q->abandoned++;
                q->abandoned_wait_ms += wait;
                if (wait > q->abandoned_wait_max_ms)
                    q->abandoned_wait_max_ms = wait;
                if (within_sl(st, wait))
                    q->abandoned_within_sl++;
                if (st->short_abandon_ms > 0 && wait <= st->short_abandon_ms)
                    q->short_abandoned++;
                q->abandoned_hist[agg_wait_bucket(wait)]++;
                break;
            case CP_QOUT_TIMEOUT: q->timed_out++; break;
            case CP_QOUT_KEY_EXIT: q->key_exit++; break;
            case CP_QOUT_FULL: q->queue_full++; break;
            case CP_QOUT_CALLBACK: q->callback++; break;
            case CP_QOUT_VOICEMAIL: q->voicemail++; break;
            case CP_QOUT_TRANSFERRED: q->transferred_out_of_queue++; break;
            default: q->other_flowout++; break;
            }
        }
    }
    /* transferred_out counts agent transfers (TRANSFER events); a queue exit
     * by transfer before any answer is a flow-out (above). */
    int64_t tt = v->t_transfer;
    if (!v->b_transfer && tt) {
        v->b_transfer = true;
        if ((q = qi(c, s, v->queue, tt)))
            q->transferred_out++;
    }
    if (!v->transfer_in) {
        /* Transferred in: an earlier visit of another queue was transferred
         * away no later than this visit entered. */
        for (uint32_t i = 0; i < c->n_visits; i++) {
            const struct agg_visit *u = &c->visits[i];
            int64_t ut = transfer_time(u);
            if (u != v && ut && ut <= v->t_enter && strcmp(u->queue, v->queue) != 0) {
                v->transfer_in = true;
                /* Booked at the transfer, like transferred_out (schema/README.md). */
                if ((q = qi(c, s, v->queue, ut)))
                    q->transferred_in++;
                break;
            }
        }
    }
}

static void book_talk(struct agg_call *c, struct agg_sink *s, int64_t t_complete)
{
    int64_t hold_us;
    bool closed;
    hold_sum(c, &hold_us, &closed);
    c->b_talk = true;
    c->t_complete = t_complete;
    int64_t hold = hold_us / 1000;
    int64_t talk = ms_between(c->t_connect, t_complete) - hold;
    if (talk < 0)
        talk = 0;
    struct agg_qi *q = qi(c, s, c->connect_queue, t_complete);
    if (q) {
        q->talk_ms += talk;
        q->hold_ms += hold;
        if (hold > 0)
            q->held++;
    }
}

static int64_t talk_ms(const struct agg_call *c)
{
    int64_t hold_us;
    bool closed;
    hold_sum(c, &hold_us, &closed);
    int64_t t = ms_between(c->t_connect, c->t_complete) - hold_us / 1000;
    return t < 0 ? 0 : t;
}

static void book_handle(struct agg_call *c, struct agg_sink *s, int64_t acw_ms, int64_t at)
{
    c->b_handle = true;
    int64_t hold_us;
    bool closed;
    hold_sum(c, &hold_us, &closed);
    struct agg_qi *q = qi(c, s, c->connect_queue, at);
    if (q) {
        q->handled++;
        q->acw_ms += acw_ms;
        q->handle_ms += talk_ms(c) + hold_us / 1000 + acw_ms;
    }
}

static void book(struct agg_call *c, struct agg_sink *s)
{
    for (uint32_t i = 0; i < c->n_visits; i++)
        book_visit(c, &c->visits[i], s);
    int64_t hold_us;
    bool holds_closed;
    hold_sum(c, &hold_us, &holds_closed);
    if (!c->b_talk && c->t_connect && c->t_complete && holds_closed)
        book_talk(c, s, c->t_complete);
    if (c->b_talk && !c->b_handle && c->t_wrapup)
        book_handle(c, s, ms_between(c->t_complete, c->t_wrapup), c->t_wrapup);
}

/* ---- holds: matched as sorted pairs, so their arrival order does not matter ---- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void hold_sum(const struct agg_call *c, int64_t *total_us, bool *closed)
{
    if (c->has_cdr) {
        *total_us = c->hold_total_us;
        *closed = true;
        return;
    }
    int64_t on[16], off[16];
    memcpy(on, c->hold_on, sizeof on);
    memcpy(off, c->hold_off, sizeof off);
    qsort(on, (size_t)c->n_hold_on, sizeof on[0], cmp_i64);
    qsort(off, (size_t)c->n_hold_off, sizeof off[0], cmp_i64);
    int64_t total = 0;
    int n = c->n_hold_on < c->n_hold_off ? c->n_hold_on : c->n_hold_off;
    for (int i = 0; i < n; i++)
        if (off[i] > on[i])
            total += off[i] - on[i];
    *total_us = total;
    *closed = c->n_hold_off >= c->n_hold_on;
}

/* ---- applying events ---- */

static struct agg_visit *find_visit(struct agg_call *c, const char *queue, int64_t ts,
                                    bool create)
{
    struct agg_visit *best = NULL;
    for (uint32_t i = 0; i < c->n_visits; i++) {
        struct agg_visit *v = &c->visits[i];
        if (queue && strcmp(v->queue, queue) != 0)
            continue;
        /* The latest visit that had entered by ts, else a placeholder. */
        if (v->t_enter && v->t_enter > ts)
            continue;
        if (!best || v->t_enter > best->t_enter)
            best = v;
    }
    if (best || !create || !queue || c->n_visits >= AGG_MAX_VISITS)
        return best;
    best = &c->visits[c->n_visits++];
    memset(best, 0, sizeof *best);
    best->queue = keep(c, queue);
    return best->queue ? best : NULL;
}

static struct agg_visit *enter_visit(struct agg_call *c, const char *queue, int64_t ts)
{
    /* A placeholder (made by an event that arrived before the entry) takes the entry time. */
    for (uint32_t i = 0; i < c->n_visits; i++) {
        struct agg_visit *v = &c->visits[i];
        if (strcmp(v->queue, queue) == 0 && v->t_enter == 0 &&
            (!v->t_connect || v->t_connect >= ts) && (!v->t_leave || v->t_leave >= ts)) {
            v->t_enter = ts;
            return v;
        }
    }
    if (c->n_visits >= AGG_MAX_VISITS)
        return NULL;
    struct agg_visit *v = &c->visits[c->n_visits++];
    memset(v, 0, sizeof *v);
    v->queue = keep(c, queue);
    v->t_enter = ts;
    /* Events of this queue that arrived early may belong to the new visit. */
    return v;
}

static void set_str(struct agg_call *c, const char **dst, const char *src)
{
    if (!*dst && src)
        *dst = keep(c, src);
}

static void apply_cdr(struct agg_call *c, const struct cp_event *ev)
{
    /* A PBX that sends CTI events sends its whole-call summary too (AMI's Cdr
     * event, FreeSWITCH's JSON CDR next to ESL): then the live events are the
     * truth and the summary only fills what they did not say.  A summary that
     * comes BEFORE the live events of the same call is not merged (documented). */
    if (c->n_visits || c->t_connect || c->t_complete || c->n_hold_on) {
        if (!c->t_start && ev->start)
            c->t_start = ev->start;
        if (!c->t_answer && ev->answer)
            c->t_answer = ev->answer;
        if (!c->t_end)
            c->t_end = ev->end ? ev->end : ev->ts;
        if (!c->disp)
            c->disp = ev->disp;
        if (!c->side)
            c->side = ev->side;
        if (!c->q850)
            c->q850 = ev->q850;
        set_str(c, &c->wrapup, ev->wrapup);
        set_str(c, &c->agent, ev->agent);
        set_str(c, &c->agent_name, ev->agent_name);
        return;
    }
    c->has_cdr = true;
    if (ev->start)
        c->t_start = ev->start;
    if (ev->answer)
        c->t_answer = ev->answer;
    c->t_end = ev->end ? ev->end : ev->ts;
    if (ev->disp)
        c->disp = ev->disp;
    if (ev->side)
        c->side = ev->side;
    if (ev->q850)
        c->q850 = ev->q850;
    set_str(c, &c->wrapup, ev->wrapup);
    set_str(c, &c->agent, ev->agent);
    set_str(c, &c->agent_name, ev->agent_name);
    c->hold_total_us = ev->hold > 0 ? (int64_t)ev->hold * 1000000 : 0;
    c->n_holds = ev->hold > 0;
    c->cdr_acw_ms = ev->acw >= 0 ? (int64_t)ev->acw * 1000 : -1;
    bool answered = ev->answer && (ev->qout == CP_QOUT_ANSWERED ||
                                   (ev->qout == CP_QOUT_UNKNOWN && ev->disp == CP_DISP_ANSWERED));
    if (ev->queue && c->n_visits < AGG_MAX_VISITS) {
        int64_t ref = answered ? ev->answer : c->t_end;
        int64_t t_enter = ev->wait >= 0 ? ref - (int64_t)ev->wait * 1000000
                                        : (ev->start ? ev->start : ref);
        struct agg_visit *v = enter_visit(c, ev->queue, t_enter);
        if (v) {
            v->qout = ev->qout;
            if (answered)
                v->t_connect = ev->answer;
            else
                v->t_leave = c->t_end;
        }
    }
    if (answered) {
        c->t_connect = ev->answer;
        c->connect_queue = ev->queue ? keep(c, ev->queue) : NULL;
        if (ev->talk >= 0) {
            c->t_complete = ev->answer + ((int64_t)ev->talk + (ev->hold > 0 ? ev->hold : 0)) * 1000000;
            if (ev->acw >= 0)
                c->t_wrapup = c->t_complete + (int64_t)ev->acw * 1000000;
        } else {
            c->t_complete = c->t_end;
        }
    }
}

int agg_call_apply(struct agg_call *c, const struct cp_event *ev, const char *raw, size_t raw_len,
                   struct agg_sink *s)
{
    uint64_t h = agg_id_hash(ev->event_id);
    for (uint32_t i = 0; i < c->n_events; i++)
        if (c->events[i].id_hash == h)
            return AGG_DUPLICATE;
    if (c->n_events >= AGG_MAX_EVENTS)
        return AGG_FULL;
    char *copy = cp_arena_alloc(&c->arena, raw_len ? raw_len : 1);
    if (!copy)
        return CP_ERR_NOMEM;
    memcpy(copy, raw, raw_len);
    c->events[c->n_events++] = (struct agg_raw){copy, (uint32_t)raw_len, h};

    int64_t ts = ev->ts;
    if (!c->t_first || ts < c->t_first)
        c->t_first = ts;
    if (ts > c->t_last)
        c->t_last = ts;
    set_str(c, &c->src, ev->src);
    if (!c->dir && ev->dir)
        c->dir = ev->dir;
    set_str(c, &c->from, ev->from);
    set_str(c, &c->from_name, ev->from_name);
    set_str(c, &c->to, ev->to);
    if (ev->final_to)
        c->final_to = keep(c, ev->final_to);

    struct agg_visit *v;
    switch (ev->kind) {
    case CP_KIND_CALL_START:
    case CP_KIND_RINGING:
        if (!c->t_start || ts < c->t_start)
            c->t_start = ts;
        break;
    case CP_KIND_ANSWER:
        if (!c->t_answer || ts < c->t_answer)
            c->t_answer = ts;
        break;
    case CP_KIND_QUEUE_ENTER:
        if (ev->queue)
            enter_visit(c, ev->queue, ts);
        break;
    case CP_KIND_QUEUE_LEAVE:
        if ((v = find_visit(c, ev->queue, ts, true))) {
            v->t_leave = ts;
            v->qout = ev->qout;
        }
        break;
    case CP_KIND_AGENT_NOANSWER: {
        /* Counted per attempt, at the attempt (metrics.md 1a). */
        v = find_visit(c, ev->queue, ts, false);
        const char *q = ev->queue ? ev->queue : (v ? v->queue : NULL);
        struct agg_qi *acc = qi(c, s, q, ts);
        if (acc)
            acc->agent_noanswer++;
        break;
    }
    case CP_KIND_AGENT_CONNECT:
        v = find_visit(c, ev->queue, ts, true);
        if (v && !v->t_connect)
            v->t_connect = ts;
        if (!c->t_connect || ts < c->t_connect) {
            c->t_connect = ts;
            c->connect_queue = v ? v->queue : NULL;
            if (ev->agent)
                c->agent = keep(c, ev->agent);
            if (ev->agent_name)
                c->agent_name = keep(c, ev->agent_name);
        }
        break;
    case CP_KIND_HOLD:
        if (c->n_hold_on < 16) {
            c->hold_on[c->n_hold_on++] = ts;
            c->n_holds++;
        }
        break;
    case CP_KIND_UNHOLD:
        if (c->n_hold_off < 16)
            c->hold_off[c->n_hold_off++] = ts;
        break;
    case CP_KIND_TRANSFER:
        if ((v = find_visit(c, ev->queue, ts, false)) && !v->t_transfer)
            v->t_transfer = ts;
        break;
    case CP_KIND_AGENT_COMPLETE:
        if (!c->t_complete || ts < c->t_complete)
            c->t_complete = ts;
        if (ev->side)
            c->side = ev->side;
        break;
    case CP_KIND_WRAPUP_END:
        if (!c->t_wrapup || ts < c->t_wrapup)
            c->t_wrapup = ts;
        if (ev->wrapup)
            c->wrapup = keep(c, ev->wrapup);
        break;
    case CP_KIND_CALL_END:
        c->t_end = ts;
        if (ev->disp)
            c->disp = ev->disp;
        if (ev->side && !c->side)
            c->side = ev->side;
        if (ev->q850)
            c->q850 = ev->q850;
        break;
    case CP_KIND_CDR:
        apply_cdr(c, ev);
        break;
    default:
        break;
    }
    book(c, s);
    return AGG_APPLIED;
}

bool agg_call_ended(const struct agg_call *c)
{
    return c->t_end != 0;
}

bool agg_call_complete(const struct agg_call *c)
{
    if (!c->t_end)
        return false;
    for (uint32_t i = 0; i < c->n_visits; i++) {
        const struct agg_visit *v = &c->visits[i];
        /* A caller still waiting when the call ended hung up in the queue:
         * agg_call_finish books that abandon, so nothing is left to wait for. */
        bool waiting_at_end = v->t_enter && !v->t_connect && !v->t_leave;
        if (!v->b_offer || !(v->b_answer || v->b_leave || waiting_at_end))
            return false;
    }
    /* An agent segment is settled once handle time is booked (wrap-up ended). */
    return !c->t_connect || (c->b_talk && c->b_handle);
}

static const char *disposition_name(const struct agg_call *c)
{
    return c->disp ? cp_disp_name(c->disp) : "unknown";
}

void agg_call_finish(struct agg_call *c, struct agg_sink *s, bool forced, struct agg_call_row *row)
{
    int64_t end = c->t_end ? c->t_end : c->t_last;
    /* A caller still waiting when the call ended hung up in the queue. */
    for (uint32_t i = 0; i < c->n_visits; i++) {
        struct agg_visit *v = &c->visits[i];
        if (v->t_enter && !v->t_connect && !v->b_leave && !v->t_leave) {
            v->t_leave = end;
            v->qout = c->t_end ? CP_QOUT_ABANDONED : CP_QOUT_UNKNOWN;
        }
    }
    book(c, s);
    for (uint32_t i = 0; i < c->n_visits; i++) {
        struct agg_visit *v = &c->visits[i];
        if (v->t_enter && !v->b_answer && !v->b_leave && v->t_leave) {
            /* Left without a known outcome: a flow-out of unknown kind. */
            v->b_leave = true;
            struct agg_qi *q = qi(c, s, v->queue, v->t_leave);
            if (q)
                q->other_flowout++;
        }
    }
    if (c->t_connect && !c->b_talk)
        book_talk(c, s, c->t_complete ? c->t_complete : end);
    int64_t acw = -1;
    if (c->b_talk && !c->b_handle) {
        /* Wrap-up never ended (the source sends none, or the call was forced
         * closed): handle = talk + hold, booked when talk ended. */
        book_handle(c, s, 0, c->t_complete);
    } else if (c->b_handle) {
        acw = c->t_wrapup ? ms_between(c->t_complete, c->t_wrapup) : 0;
    }
    /* Disposition and wrap-up rows go to the queue that handled the call (or
     * the last one it visited), in the interval where the call was settled. */
    const char *queue = c->connect_queue;
    if (!queue && c->n_visits)
        queue = c->visits[c->n_visits - 1].queue;
    int64_t hold_us;
    bool closed;
    hold_sum(c, &hold_us, &closed);
    int64_t talk = c->b_talk ? talk_ms(c) : -1;
    int64_t hold = c->b_talk ? hold_us / 1000 : -1;
    int64_t handle = c->b_handle ? talk + hold + (acw > 0 ? acw : 0) : -1;
    if (s) {
        /* Calls that never met a queue are booked under queue "" (schema/README.md). */
        const char *dq = queue ? queue : "";
        s->disposition(s, c->org, dq, interval_of(end), disposition_name(c),
                       handle > 0 ? handle : 0);
        if (c->wrapup) {
            int64_t at = c->t_wrapup ? c->t_wrapup : (c->t_complete ? c->t_complete : end);
            s->wrapup(s, c->org, dq, interval_of(at), c->wrapup, handle > 0 ? handle : 0);
        }
    }

    memset(row, 0, sizeof *row);
    row->org = c->org;
    row->pbx = c->pbx;
    row->call = c->call;
    row->src = c->src;
    row->dir = c->dir;
    row->from = c->from;
    row->from_name = c->from_name;
    row->to = c->to;
    row->final_to = c->final_to;
    /* The row describes the call's last queue visit (schema/README.md: "last queue and
     * agent"; routes match on it): after a transfer that is not the answering queue. */
    const struct agg_visit *last = NULL;
    for (uint32_t i = 0; i < c->n_visits; i++)
        if (!last || c->visits[i].t_enter >= last->t_enter)
            last = &c->visits[i];
    row->queue = last ? last->queue : NULL;
    row->agent = c->agent;
    row->agent_name = c->agent_name;
    row->started_us = c->t_start ? c->t_start : c->t_first;
    row->queued_us = c->n_visits ? c->visits[0].t_enter : 0;
    row->answered_us = c->t_answer ? c->t_answer : c->t_connect;
    row->ended_us = end;
    row->wait_ms = -1;
    if (last && last->t_enter && (last->t_connect || last->t_leave))
        row->wait_ms = ms_between(last->t_enter, last->t_connect ? last->t_connect : last->t_leave);
    row->talk_ms = talk;
    row->hold_ms = hold;
    row->acw_ms = c->has_cdr && c->cdr_acw_ms >= 0 ? c->cdr_acw_ms : acw;
    row->handle_ms = handle;
    row->disp = c->disp;
    row->qout = last ? (last->t_connect ? CP_QOUT_ANSWERED : last->qout) : CP_QOUT_UNKNOWN;
    row->wrapup = c->wrapup;
    row->side = c->side;
    row->q850 = c->q850;
    row->forced = forced;
}
