/* agg_call.h - per-call state machine: canonical events in, interval deltas and finished-call rows out. */
#ifndef CP_AGG_CALL_H
#define CP_AGG_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cp_arena.h"
#include "cp_event.h"

/*
 * Pure: no clock, no I/O.  A call's state is a function of the SET of its
 * events (deduplicated by event_id), not of their order: every metric is
 * "booked" once, at the moment its inputs are all known, into the interval
 * of its own event time (metrics.md section 3, Genesys style):
 *   offered            at queue entry          answered, its wait   at agent connect
 *   abandoned/flow-out at queue leave          talk, hold, held     at agent complete
 *   ACW, handle, handled, wrap-up code         when wrap-up ends
 *   transfers          at the transfer         disposition          at the call's end
 * So an out-of-order end, a duplicate, or a replay after a crash books
 * nothing twice and nothing differently.  The caller persists a call as the
 * list of its raw encoded events (agg_call_events) and restores it by
 * replaying them with booking switched off: the same bookings come out as
 * "already done".
 */

#define AGG_INTERVAL_S 900  /* the 15-minute UTC base interval */
#define AGG_MAX_VISITS 8    /* queue visits per call (transfers between queues) */
#define AGG_MAX_EVENTS 256  /* events kept per call; beyond, the call is force-closed */
#define AGG_WAIT_BUCKETS 17 /* wait histogram: 5,8,10,15,20,25,30,45,60,90,120,180,240,300,600,1200,+Inf s */

extern const int agg_wait_bounds_s[AGG_WAIT_BUCKETS - 1];

/* Per-queue settings in force (queue_settings), looked up by the caller. */
struct agg_settings {
    int64_t sl_threshold_ms; /* default 20 s */
    bool sl_strict;          /* true: wait < T counts as within; false (default): wait <= T */
    int64_t short_abandon_ms; /* abandons with wait <= this are also "short"; 0 = off */
};

/* Additive contribution to one queue_interval row. */
struct agg_qi {
    int64_t offered, answered, abandoned, short_abandoned;
    int64_t timed_out, key_exit, queue_full, callback, voicemail, transferred_out_of_queue,
        other_flowout;
    int64_t transferred_in, transferred_out, agent_noanswer, handled;
    int64_t answered_within_sl, abandoned_within_sl;
    int64_t answered_wait_ms, abandoned_wait_ms, talk_ms, hold_ms, acw_ms, handle_ms;
    int64_t held; /* handled calls with hold time */
    int64_t answered_wait_max_ms, abandoned_wait_max_ms; /* maxima, not sums */
    int64_t answered_hist[AGG_WAIT_BUCKETS], abandoned_hist[AGG_WAIT_BUCKETS];
};

/* A finished call, one `calls` row.  Strings point into the call's arena. */
struct agg_call_row {
    const char *org, *pbx, *call, *src;
    enum cp_dir dir;
    const char *from, *from_name, *to, *final_to, *queue, *agent, *agent_name;
    int64_t started_us, queued_us, answered_us, ended_us; /* 0 = did not happen / unknown */
    int64_t wait_ms, talk_ms, hold_ms, acw_ms, handle_ms; /* -1 = unknown */
    enum cp_disp disp;
    enum cp_qout qout;
    const char *wrapup;
    enum cp_side side;
    int32_t q850;
    bool forced; /* closed by the open-call timeout, not by its own end */
};

/* Where bookings go (the flush batch).  NULL sink = restore mode: track, book nothing. */
struct agg_sink {
    /* The row accumulator for (org, queue, interval start); NULL = out of memory. */
    struct agg_qi *(*interval)(struct agg_sink *s, const char *org, const char *queue,
                               int64_t interval_us);
    void (*disposition)(struct agg_sink *s, const char *org, const char *queue,
                        int64_t interval_us, const char *disposition, int64_t handle_ms);
    void (*wrapup)(struct agg_sink *s, const char *org, const char *queue, int64_t interval_us,
                   const char *wrapup, int64_t handle_ms);
    const struct agg_settings *(*settings)(struct agg_sink *s, const char *org,
                                           const char *queue, int64_t at_us);
};

/*
 * One queue visit and the agent segment that answered it.  A call transferred
 * from queue to queue has several visits, each with its own agent, talk, hold
 * and wrap-up.  A call that never met a queue (a direct or outbound call) gets
 * one visit with queue NULL, for its agent segment only.
 */
struct agg_visit {
    const char *queue; /* NULL: the agent segment of a call without a queue */
    int64_t t_enter, t_connect, t_leave, t_transfer;
    int64_t t_complete, t_wrapup; /* end of talk, end of wrap-up of this segment */
    int64_t cdr_hold_us;          /* hold from a cdr summary (-1: use hold events) */
    enum cp_qout qout; /* from queue_leave */
    bool transfer_in;  /* this visit came from a transfer out of another queue */
    bool b_offer, b_answer, b_leave, b_transfer, b_talk, b_handle;
};

struct agg_call {
    struct cp_arena arena; /* every string of this call; reset never, freed with the call */
    const char *org, *pbx, *call, *src;
    /* Raw events (encoded v1 msgpack) for persistence; ids for dedupe. */
    uint32_t n_events;
    struct agg_raw {
        const char *buf;
        uint32_t len;
        uint64_t id_hash;
    } events[AGG_MAX_EVENTS];

    enum cp_dir dir;
    const char *from, *from_name, *to, *final_to, *agent, *agent_name, *wrapup;
    enum cp_disp disp;
    enum cp_side side;
    int32_t q850;
    int64_t t_first, t_last; /* min / max event time */
    int64_t t_start, t_answer, t_end;
    int64_t t_connect; /* first agent connect of the call (answered_at) */
    int64_t t_agent;   /* connect time of the agent named on the row (the latest) */
    int32_t n_holds;
    int32_t n_hold_on, n_hold_off;
    int64_t hold_on[16], hold_off[16]; /* hold / unhold times, matched as sorted pairs */
    bool has_cdr;
    uint32_t n_visits;
    struct agg_visit visits[AGG_MAX_VISITS];
};

struct agg_call *agg_call_create(const char *org, const char *pbx, const char *call);
void agg_call_destroy(struct agg_call *c);

enum agg_apply_result { AGG_APPLIED = 0, AGG_DUPLICATE = 1, AGG_FULL = 2 };
/*
 * Adds one event (already decoded; `raw` is its encoding, kept for
 * persistence) and books whatever became known.  Returns AGG_APPLIED,
 * AGG_DUPLICATE (same event_id seen before: ignored) or AGG_FULL (too many
 * events: the caller force-closes the call), or a negative code.
 */
int agg_call_apply(struct agg_call *c, const struct cp_event *ev, const char *raw, size_t raw_len,
                   struct agg_sink *sink);

/* True once the call has ended and every booking that can happen has happened. */
bool agg_call_complete(const struct agg_call *c);
/*
 * True when a call that never ended has nothing in progress: it met a queue or an agent, no
 * caller is waiting in a queue and no agent is talking.  Sources that never send a call's end
 * (Asterisk queue_log) leave such calls; the caller closes them after `unended_wait`.
 */
bool agg_call_settled(const struct agg_call *c);
/* True once the call has ended (call_end or cdr) even if wrap-up may still follow. */
bool agg_call_ended(const struct agg_call *c);
/*
 * Closes the call: books what can still be booked (handle without ACW when
 * wrap-up never came) and fills its `calls` row.  `forced`: the open-call
 * timeout closed it.  The row's strings live until agg_call_destroy.
 */
void agg_call_finish(struct agg_call *c, struct agg_sink *sink, bool forced,
                     struct agg_call_row *row);

/* Index of a wait (ms) in the histogram. */
int agg_wait_bucket(int64_t wait_ms);
/* FNV-1a 64 of an event id, the dedupe key. */
uint64_t agg_id_hash(const char *id);

#endif
