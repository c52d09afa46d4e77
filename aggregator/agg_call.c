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

static void book_visit(struct agg_call *c, struct agg_visit *v, struct agg_sink *s)
{
    struct agg_qi *q;
    if (!v->queue || !v->t_enter)
        return; /* no queue, or a placeholder made by an early event: wait for the entry */
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
            if (u != v && u->queue && ut && ut <= v->t_enter && strcmp(u->queue, v->queue) != 0) {
                v->transfer_in = true;
                /* Booked at the transfer, like transferred_out (schema/README.md). */
                if ((q = qi(c, s, v->queue, ut)))
                    q->transferred_in++;
                break;
            }
        }
    }
}

/* ---- holds: matched as sorted pairs inside a segment, so arrival order does not matter ---- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Hold time of one agent segment: the holds that started after its connect and
 * the unholds up to its end (or open-ended while it is still talking). */
static void hold_sum(const struct agg_call *c, const struct agg_visit *v, int64_t *total_us,
                     bool *closed)
{
    if (v->cdr_hold_us >= 0) {
        *total_us = v->cdr_hold_us;
        *closed = true;
        return;
    }
    int64_t end = v->t_complete ? v->t_complete : INT64_MAX;
    int64_t on[16], off[16];
    int n_on = 0, n_off = 0;
    for (int i = 0; i < c->n_hold_on; i++)
        if (c->hold_on[i] >= v->t_connect && c->hold_on[i] < end)
            on[n_on++] = c->hold_on[i];
    for (int i = 0; i < c->n_hold_off; i++)
        if (c->hold_off[i] > v->t_connect && c->hold_off[i] <= end)
            off[n_off++] = c->hold_off[i];
    qsort(on, (size_t)n_on, sizeof on[0], cmp_i64);
    qsort(off, (size_t)n_off, sizeof off[0], cmp_i64);
    int64_t total = 0;
    int n = n_on < n_off ? n_on : n_off;
    for (int i = 0; i < n; i++)
        if (off[i] > on[i])
            total += off[i] - on[i];
    *total_us = total;
    *closed = n_off >= n_on;
}

static int64_t segment_talk_ms(const struct agg_call *c, const struct agg_visit *v,
                               int64_t *hold_ms)
{
    int64_t hold_us;
    bool closed;
    hold_sum(c, v, &hold_us, &closed);
    *hold_ms = hold_us / 1000;
    int64_t t = ms_between(v->t_connect, v->t_complete) - *hold_ms;
    return t < 0 ? 0 : t;
}

/* ---- agent segments ---- */

static void book_talk(struct agg_call *c, struct agg_visit *v, struct agg_sink *s)
{
    v->b_talk = true;
    int64_t hold;
    int64_t talk = segment_talk_ms(c, v, &hold);
    struct agg_qi *q = qi(c, s, v->queue, v->t_complete);
    if (q) {
        q->talk_ms += talk;
        q->hold_ms += hold;
        if (hold > 0)
            q->held++;
    }
}

static void book_handle(struct agg_call *c, struct agg_visit *v, struct agg_sink *s,
                        int64_t acw_ms, int64_t at)
{
    v->b_handle = true;
    int64_t hold;
    int64_t talk = segment_talk_ms(c, v, &hold);
    struct agg_qi *q = qi(c, s, v->queue, at);
    if (q) {
        q->handled++;
        q->acw_ms += acw_ms;
        q->handle_ms += talk + hold + acw_ms;
    }
}

static void book(struct agg_call *c, struct agg_sink *s)
{
    for (uint32_t i = 0; i < c->n_visits; i++) {
        struct agg_visit *v = &c->visits[i];
        book_visit(c, v, s);
        if (!v->b_talk && v->t_connect && v->t_complete) {
            int64_t hold_us;
            bool closed;
            hold_sum(c, v, &hold_us, &closed);
            if (closed)
                book_talk(c, v, s);
        }
        if (v->b_talk && !v->b_handle && v->t_wrapup)
            book_handle(c, v, s, ms_between(v->t_complete, v->t_wrapup), v->t_wrapup);
    }
}

/* ---- applying events ---- */

static struct agg_visit *new_visit(struct agg_call *c, const char *queue)
{
    if (c->n_visits >= AGG_MAX_VISITS)
        return NULL;
    struct agg_visit *v = &c->visits[c->n_visits];
    memset(v, 0, sizeof *v);
    v->cdr_hold_us = -1;
    if (queue && !(v->queue = keep(c, queue)))
        return NULL;
    c->n_visits++;
    return v;
}

static bool same_queue(const struct agg_visit *v, const char *queue)
{
    return !queue || (v->queue && strcmp(v->queue, queue) == 0);
}

static struct agg_visit *find_visit(struct agg_call *c, const char *queue, int64_t ts,
                                    bool create)
{
    struct agg_visit *best = NULL;
    for (uint32_t i = 0; i < c->n_visits; i++) {
        struct agg_visit *v = &c->visits[i];
        if (!same_queue(v, queue))
            continue;
        /* The latest visit that had entered by ts, else a placeholder. */
        if (v->t_enter && v->t_enter > ts)
            continue;
        if (!best || v->t_enter > best->t_enter)
            best = v;
    }
    if (best || !create)
        return best;
    /* No queue named and none visited: the segment of a call without a queue. */
    if (!queue && c->n_visits > 0)
        return NULL;
    return new_visit(c, queue);
}

static struct agg_visit *enter_visit(struct agg_call *c, const char *queue, int64_t ts)
{
    /* A placeholder (made by an event that arrived before the entry) takes the entry time. */
    for (uint32_t i = 0; i < c->n_visits; i++) {
        struct agg_visit *v = &c->visits[i];
        if (v->queue && strcmp(v->queue, queue) == 0 && v->t_enter == 0 &&
            (!v->t_connect || v->t_connect >= ts) && (!v->t_leave || v->t_leave >= ts)) {
            v->t_enter = ts;
            return v;
        }
    }
    struct agg_visit *v = new_visit(c, queue);
    if (v)
        v->t_enter = ts;
    return v;
}

/* The segment an agent_complete at `ts` ends: the latest connected and not yet
 * completed one (of `queue` when named), else a placeholder for an early complete. */
static struct agg_visit *segment_for_complete(struct agg_call *c, const char *queue, int64_t ts)
{
    struct agg_visit *best = NULL;
    for (uint32_t i = 0; i < c->n_visits; i++) {
        struct agg_visit *v = &c->visits[i];
        if (same_queue(v, queue) && v->t_connect && v->t_connect <= ts && !v->t_complete &&
            (!best || v->t_connect > best->t_connect))
            best = v;
    }
    return best ? best : find_visit(c, queue, ts, true);
}

static struct agg_visit *segment_for_wrapup(struct agg_call *c, const char *queue, int64_t ts)
{
    struct agg_visit *best = NULL;
    for (uint32_t i = 0; i < c->n_visits; i++) {
        struct agg_visit *v = &c->visits[i];
        if (same_queue(v, queue) && v->t_complete && v->t_complete <= ts && !v->t_wrapup &&
            (!best || v->t_complete > best->t_complete))
            best = v;
    }
    return best ? best : find_visit(c, queue, ts, true);
}

static void set_str(struct agg_call *c, const char **dst, const char *src)
{
    if (!*dst && src)
        *dst = keep(c, src);
}

static bool has_segments(const struct agg_call *c)
{
    for (uint32_t i = 0; i < c->n_visits; i++)
        if (c->visits[i].t_connect || c->visits[i].t_complete)
            return true;
    return false;
}

static void apply_cdr(struct agg_call *c, const struct cp_event *ev)
{
    /* A PBX that sends CTI events sends its whole-call summary too (AMI's Cdr
     * event, FreeSWITCH's JSON CDR next to ESL): then the live events are the
     * truth and the summary only fills what they did not say.  A summary that
     * comes BEFORE the live events of the same call is not merged (documented). */
    if (c->n_visits || c->t_connect || has_segments(c) || c->n_hold_on) {
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
    bool answered = ev->answer && (ev->qout == CP_QOUT_ANSWERED ||
                                   (ev->qout == CP_QOUT_UNKNOWN && ev->disp == CP_DISP_ANSWERED));
    struct agg_visit *v = NULL;
    if (ev->queue) {
        int64_t ref = answered ? ev->answer : c->t_end;
        int64_t t_enter = ev->wait >= 0 ? ref - (int64_t)ev->wait * 1000000
                                        : (ev->start ? ev->start : ref);
        v = enter_visit(c, ev->queue, t_enter);
        if (v) {
            v->qout = ev->qout;
            if (!answered)
                v->t_leave = c->t_end;
        }
    } else if (answered) {
        v = new_visit(c, NULL);
    }
    if (answered && v) {
        c->t_connect = ev->answer;
        v->t_connect = ev->answer;
        v->cdr_hold_us = ev->hold > 0 ? (int64_t)ev->hold * 1000000 : 0;
        c->n_holds = ev->hold > 0;
        if (ev->talk >= 0) {
            v->t_complete = ev->answer + ((int64_t)ev->talk + (ev->hold > 0 ? ev->hold : 0)) * 1000000;
            if (ev->acw >= 0)
                v->t_wrapup = v->t_complete + (int64_t)ev->acw * 1000000;
        } else {
            v->t_complete = c->t_end;
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
    /* A transfer's `to` is where the call went (queue_log's BLINDTRANSFER exten), not the
     * number the caller dialled. */
    if (ev->kind != CP_KIND_TRANSFER)
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
        if (ev->queue && (v = find_visit(c, ev->queue, ts, true))) {
            /* app_queue sends QueueCallerAbandon and then QueueCallerLeave, which gives no
             * reason: a leave that says nothing never replaces one that said why, and a
             * booked exit stays as booked. */
            if (v->b_leave || (ev->qout == CP_QOUT_UNKNOWN && v->t_leave && v->qout != CP_QOUT_UNKNOWN))
                break;
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
        if (!c->t_connect || ts < c->t_connect)
            c->t_connect = ts;
        /* The row names the agent of the latest segment. */
        if (ev->agent && ts >= c->t_agent) {
            c->t_agent = ts;
            c->agent = keep(c, ev->agent);
            c->agent_name = ev->agent_name ? keep(c, ev->agent_name) : NULL;
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
        if ((v = segment_for_complete(c, ev->queue, ts)) && !v->t_complete)
            v->t_complete = ts;
        /* A summary of the segment's hold (Amazon Connect's CustomerHoldDuration) counts
         * when no hold events came for it. */
        if (v && ev->hold > 0 && v->cdr_hold_us < 0 && !c->n_hold_on)
            v->cdr_hold_us = (int64_t)ev->hold * 1000000;
        if (ev->side)
            c->side = ev->side;
        break;
    case CP_KIND_WRAPUP_END:
        if ((v = segment_for_wrapup(c, ev->queue, ts)) && !v->t_wrapup)
            v->t_wrapup = ts;
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

bool agg_call_settled(const struct agg_call *c)
{
    if (c->t_end || c->n_visits == 0)
        return false;
    for (uint32_t i = 0; i < c->n_visits; i++) {
        const struct agg_visit *v = &c->visits[i];
        if (v->queue && v->t_enter && !v->t_connect && !v->t_leave)
            return false; /* still waiting */
        if (v->t_connect && !v->t_complete)
            return false; /* still talking */
    }
    return true;
}

bool agg_call_complete(const struct agg_call *c)
{
    if (!c->t_end)
        return false;
    for (uint32_t i = 0; i < c->n_visits; i++) {
        const struct agg_visit *v = &c->visits[i];
        if (v->queue) {
            /* A caller still waiting when the call ended hung up in the queue:
             * agg_call_finish books that abandon, so nothing is left to wait for. */
            bool waiting_at_end = v->t_enter && !v->t_connect && !v->t_leave;
            if (!v->b_offer || !(v->b_answer || v->b_leave || waiting_at_end))
                return false;
        }
        /* An agent segment is settled once its handle time is booked (wrap-up ended). */
        if ((v->t_connect || v->t_complete) && !(v->b_talk && v->b_handle))
            return false;
    }
    return true;
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
        if (v->queue && v->t_enter && !v->t_connect && !v->b_leave && !v->t_leave) {
            v->t_leave = end;
            v->qout = c->t_end ? CP_QOUT_ABANDONED : CP_QOUT_UNKNOWN;
        }
    }
    book(c, s);
    int64_t talk = -1, hold = -1, acw = -1, handle = -1, last_talk_end = 0;
    for (uint32_t i = 0; i < c->n_visits; i++) {
        struct agg_visit *v = &c->visits[i];
        if (v->queue && v->t_enter && !v->b_answer && !v->b_leave && v->t_leave) {
            /* Left without a known outcome: a flow-out of unknown kind. */
            v->b_leave = true;
            struct agg_qi *q = qi(c, s, v->queue, v->t_leave);
            if (q)
                q->other_flowout++;
        }
        if (!v->t_connect)
            continue;
        if (!v->b_talk) {
            /* Still talking when the call ended (or was forced closed). */
            if (!v->t_complete)
                v->t_complete = end;
            book_talk(c, v, s);
        }
        int64_t seg_acw = 0;
        if (!v->b_handle) {
            /* Wrap-up never ended (the source sends none, or a forced close):
             * handle = talk + hold, booked when talk ended. */
            book_handle(c, v, s, 0, v->t_complete);
        } else {
            seg_acw = v->t_wrapup ? ms_between(v->t_complete, v->t_wrapup) : 0;
        }
        int64_t h;
        int64_t t = segment_talk_ms(c, v, &h);
        talk = (talk < 0 ? 0 : talk) + t;
        hold = (hold < 0 ? 0 : hold) + h;
        acw = (acw < 0 ? 0 : acw) + seg_acw;
        handle = (handle < 0 ? 0 : handle) + t + h + seg_acw;
        if (v->t_complete > last_talk_end)
            last_talk_end = v->t_complete;
    }
    /* The last queue the call visited names the row and its outcome (schema/README.md). */
    const struct agg_visit *last = NULL;
    for (uint32_t i = 0; i < c->n_visits; i++) {
        const struct agg_visit *v = &c->visits[i];
        if (v->queue && (!last || v->t_enter >= last->t_enter))
            last = v;
    }
    const char *queue = last ? last->queue : NULL;
    /* The disposition goes to the queue that handled the call (its last answered
     * visit), else the last queue it visited. */
    const struct agg_visit *handled = NULL;
    for (uint32_t i = 0; i < c->n_visits; i++) {
        const struct agg_visit *v = &c->visits[i];
        if (v->queue && v->t_connect && (!handled || v->t_connect >= handled->t_connect))
            handled = v;
    }
    if (s) {
        /* Calls that never met a queue are booked under queue "" (schema/README.md). */
        const char *dq = handled ? handled->queue : queue ? queue : "";
        s->disposition(s, c->org, dq, interval_of(end), disposition_name(c),
                       handle > 0 ? handle : 0);
        if (c->wrapup) {
            int64_t wrap_at = 0;
            for (uint32_t i = 0; i < c->n_visits; i++)
                if (c->visits[i].t_wrapup > wrap_at)
                    wrap_at = c->visits[i].t_wrapup;
            int64_t at = wrap_at ? wrap_at : (last_talk_end ? last_talk_end : end);
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
    row->queue = queue;
    row->agent = c->agent;
    row->agent_name = c->agent_name;
    row->started_us = c->t_start ? c->t_start : c->t_first;
    row->queued_us = 0;
    for (uint32_t i = 0; i < c->n_visits; i++)
        if (c->visits[i].queue && c->visits[i].t_enter &&
            (!row->queued_us || c->visits[i].t_enter < row->queued_us))
            row->queued_us = c->visits[i].t_enter;
    row->answered_us = c->t_answer ? c->t_answer : c->t_connect;
    row->ended_us = end;
    row->wait_ms = -1;
    row->qout = CP_QOUT_UNKNOWN;
    if (last) {
        if (last->t_enter && (last->t_connect || last->t_leave))
            row->wait_ms = ms_between(last->t_enter, last->t_connect ? last->t_connect : last->t_leave);
        row->qout = last->t_connect ? CP_QOUT_ANSWERED : last->qout;
    }
    row->talk_ms = talk;
    row->hold_ms = hold;
    row->acw_ms = acw;
    row->handle_ms = handle;
    row->disp = c->disp;
    row->wrapup = c->wrapup;
    row->side = c->side;
    row->q850 = c->q850;
    row->forced = forced;
}
