/* agg_main.c - `callpipe aggregator`: consume events, run call state, flush exactly once to PostgreSQL. */
#include "agg.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "../cmd/commands.h"
#include "cp_admin.h"
#include "cp_kafka.h"
#include "cp_log.h"
#include "cp_time.h"

static volatile sig_atomic_t got_signal;

#define AGG_POLL_BATCH 1000   /* messages handled between two looks at the clock */
#define AGG_BACKLOG_FLUSHES 8 /* flush_intervals a batch may grow while catching up */

static void on_signal(int sig)
{
    got_signal = sig;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* ---- partitions ---- */

static size_t call_key(char *buf, size_t cap, const char *org, const char *pbx, const char *call)
{
    size_t a = strlen(org), b = strlen(pbx), c = strlen(call);
    if (a + b + c + 3 > cap)
        return 0;
    memcpy(buf, org, a + 1);
    memcpy(buf + a + 1, pbx, b + 1);
    memcpy(buf + a + b + 2, call, c + 1);
    return a + b + c + 3;
}

static void drop_partition(struct agg *agg, struct agg_part *pt)
{
    size_t it = 0;
    struct cp_map_slot *s;
    while ((s = cp_map_next(&pt->calls, &it))) {
        struct agg_open *o = s->val;
        agg_call_destroy(o->call);
        free(o);
    }
    cp_map_free(&pt->calls);
    cp_map_init(&pt->calls);
    pt->assigned = false;
    pt->committed = pt->next = -1;
    pt->watermark_us = 0;
}

/*
 * The calls written in the last late_window (twice, for clock skew between event and wall
 * time), so that a restarted aggregator still drops their late events (agg_closed.h).
 */
static int load_closed(struct agg *agg, struct cp_pg_error *err)
{
    char win[32];
    snprintf(win, sizeof win, "%lld", (long long)agg->cfg->late_window_ms * 2);
    const char *params[1] = {win};
    PGresult *res = NULL;
    int rc = cp_pg_exec(agg->pg,
                        "SELECT org, pbx, call_id, floor(extract(epoch FROM ended_at) * "
                        "1000000)::bigint FROM calls WHERE ended_at > now() - $1::bigint * "
                        "interval '1 millisecond'",
                        1, params, &res, err);
    if (rc < 0)
        return rc;
    for (int r = 0; r < PQntuples(res); r++) {
        char key[1024];
        size_t kl = call_key(key, sizeof key, PQgetvalue(res, r, 0), PQgetvalue(res, r, 1),
                            PQgetvalue(res, r, 2));
        if (kl && agg_closed_add(&agg->closed, key, kl, strtoll(PQgetvalue(res, r, 3), NULL, 10)) != 0) {
            PQclear(res);
            return CP_ERR_NOMEM;
        }
    }
    cp_info("aggregator", "remembering %d calls written in the last %lld s (late events)",
            PQntuples(res), (long long)agg->cfg->late_window_ms * 2 / 1000);
    PQclear(res);
    return 0;
}

/* Reads the partition's stored offset and open calls back (retrying while PostgreSQL is away). */
static int load_partition(struct agg *agg, int32_t p, int64_t *offset)
{
    struct agg_part *pt = &agg->parts[p];
    for (int64_t backoff = 100;; backoff = backoff < 5000 ? backoff * 2 : 5000) {
        struct cp_pg_error err = {{0}, {0}, 0};
        if (!agg->pg && (agg->pg_session = false,
                         cp_pg_connect(agg->conninfo, &(struct cp_pg_retry){1, 0, 0}, &agg->pg,
                                       &err) != 0)) {
            cp_warn("postgres", "could not connect to load partition %d: %s", p, err.msg);
            sleep_ms(backoff);
            continue;
        }
        char part[16];
        snprintf(part, sizeof part, "%d", p);
        const char *params[3] = {agg->cfg->kafka.group, agg->cfg->kafka.topic, part};
        PGresult *res = NULL;
        int rc = 0;
        if (!agg->closed_loaded && (rc = load_closed(agg, &err)) == 0)
            agg->closed_loaded = true;
        if (rc >= 0) {
            rc = cp_pg_exec(agg->pg,
                            "SELECT next_offset FROM consumer_offsets WHERE group_id = $1 AND "
                            "topic = $2 AND partition = $3",
                            3, params, &res, &err);
        }
        if (rc >= 0) {
            pt->committed = PQntuples(res) ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
            PQclear(res);
            res = NULL;
            rc = cp_pg_exec(agg->pg,
                            "SELECT org, pbx, call_id, state, floor(extract(epoch FROM "
                            "first_seen) * 1000000)::bigint FROM open_calls WHERE partition = $1",
                            1, params + 2, &res, &err);
        }
        if (rc < 0) {
            cp_warn("postgres", "could not load partition %d: %s", p, err.msg);
            if (res)
                PQclear(res);
            PQfinish(agg->pg);
            agg->pg = NULL;
            sleep_ms(backoff);
            continue;
        }
        int restored = 0;
        for (int r = 0; r < PQntuples(res); r++) {
            size_t blen = 0;
            unsigned char *bytes = PQunescapeBytea((const unsigned char *)PQgetvalue(res, r, 3),
                                                   &blen);
            struct agg_call *c = agg_call_create(PQgetvalue(res, r, 0), PQgetvalue(res, r, 1),
                                                 PQgetvalue(res, r, 2));
            struct agg_open *o = calloc(1, sizeof *o);
            char key[1024];
            size_t kl = c ? call_key(key, sizeof key, c->org, c->pbx, c->call) : 0;
            if (!bytes || !c || !o || !kl ||
                agg_open_restore(c, (const char *)bytes, blen) != 0 ||
                cp_map_put(&pt->calls, key, kl, o) != 0) {
                cp_error("aggregator", "could not restore open call %s/%s/%s",
                         PQgetvalue(res, r, 0), PQgetvalue(res, r, 1), PQgetvalue(res, r, 2));
                agg_call_destroy(c);
                free(o);
            } else {
                o->call = c;
                o->part = pt;
                o->in_db = true;
                o->first_seen_us = strtoll(PQgetvalue(res, r, 4), NULL, 10);
                if (agg_call_ended(c))
                    o->ended_wall_us = cp_time_now_us();
                if (c->t_last > pt->watermark_us)
                    pt->watermark_us = c->t_last;
                restored++;
            }
            PQfreemem(bytes);
        }
        PQclear(res);
        pt->next = pt->committed;
        pt->assigned = true;
        /* Quiet-partition timers count from now: a partition just (re)assigned is not quiet
         * because nothing has arrived yet (its restored calls would close at once). */
        pt->last_event_wall_us = cp_time_now_us();
        *offset = pt->committed;
        cp_info("aggregator", "partition %d: resuming at offset %lld with %d open calls", p,
                (long long)pt->committed, restored);
        return 0;
    }
}

/* ---- flushing ---- */

static void finish_call(struct agg *agg, struct agg_open *o, bool forced)
{
    struct agg_call_row row;
    struct agg_part *pt = o->part;
    agg_call_finish(o->call, &agg->batch.sink, forced, &row);
    agg_batch_add_call(&agg->batch, &row);
    if (o->in_db)
        agg_batch_delete_open(&agg->batch, o->call);
    cp_counter_inc(agg->m.calls);
    if (forced) {
        cp_counter_inc(agg->m.forced);
        cp_info("aggregator", "closed call %s/%s/%s that never ended (open-call timeout)",
                o->call->org, o->call->pbx, o->call->call);
    }
    char key[1024];
    size_t kl = call_key(key, sizeof key, o->call->org, o->call->pbx, o->call->call);
    cp_map_del(&pt->calls, key, kl);
    if (agg_closed_add(&agg->closed, key, kl, o->call->t_last) != 0)
        cp_error("aggregator", "out of memory");
    agg_call_destroy(o->call);
    free(o);
    /* Offsets must move with the finished call even if no event arrived. */
    if (pt->next == pt->committed && pt->committed >= 0)
        pt->committed = pt->committed; /* (nothing consumed: the row goes with the next flush) */
}

static void commit_kafka_offsets(struct agg *agg)
{
    /* For lag monitoring only: PostgreSQL holds the offsets that count. */
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (int32_t i = 0; i < agg->n_parts; i++)
        if (agg->parts[i].assigned && agg->parts[i].next >= 0)
            rd_kafka_topic_partition_list_add(l, agg->cfg->kafka.topic, i)->offset =
                agg->parts[i].next;
    if (l->cnt)
        rd_kafka_commit(agg->rk, l, 1);
    rd_kafka_topic_partition_list_destroy(l);
}

/* Writes the batch; on failure retries the same batch until PostgreSQL takes it. */
static void flush(struct agg *agg, bool with_now)
{
    int64_t t0 = cp_time_mono_us();
    int64_t events = agg->batch.n_events;
    for (int64_t backoff = 100;; backoff = backoff < 5000 ? backoff * 2 : 5000) {
        int rc = agg_batch_commit(&agg->batch, with_now);
        if (rc == 0)
            break;
        atomic_store(&agg->pg_ok, false);
        cp_counter_inc(agg->m.pg_errors);
        if (rc == CP_ERR_STATE) {
            /* Another consumer owns a partition we wrote for: our in-memory state
             * is stale.  Exit; a restart reloads everything from PostgreSQL. */
            cp_error("aggregator", "lost partition ownership while flushing: exiting to resync");
            exit(1);
        }
        if (got_signal == SIGKILL)
            return;
        sleep_ms(backoff);
    }
    atomic_store(&agg->pg_ok, true);
    for (int32_t i = 0; i < agg->n_parts; i++) {
        struct agg_part *pt = &agg->parts[i];
        pt->committed = pt->next;
        size_t it = 0;
        struct cp_map_slot *s;
        while ((s = cp_map_next(&pt->calls, &it))) {
            struct agg_open *o = s->val;
            if (o->dirty) {
                o->dirty = false;
                o->in_db = true;
            }
        }
        if (pt->assigned) {
            int64_t lo = 0, hi = 0;
            if (rd_kafka_get_watermark_offsets(agg->rk, agg->cfg->kafka.topic, i, &lo, &hi) == 0 &&
                hi >= 0) {
                char lbl[16];
                snprintf(lbl, sizeof lbl, "%d", i);
                const char *lv[] = {lbl, NULL};
                cp_gauge_set(cp_metrics_gauge_child(agg->m.lag, lv),
                             (double)(hi > pt->next ? hi - pt->next : 0));
            }
        }
    }
    cp_counter_inc(agg->m.flushes);
    cp_histogram_observe(agg->m.flush_seconds, (double)(cp_time_mono_us() - t0) / 1e6);
    cp_histogram_observe(agg->m.flush_events, (double)events);
    agg_batch_reset(&agg->batch);
    agg->last_flush_us = cp_time_mono_us();
    if (with_now)
        agg->last_queue_now_us = agg->last_flush_us;
    commit_kafka_offsets(agg);
}

/* ---- rebalance ---- */

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct agg *agg = opaque;
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < parts->cnt; i++) {
            int32_t p = parts->elems[i].partition;
            if (p < 0 || p >= AGG_MAX_PARTITIONS)
                continue;
            int64_t off = -1;
            load_partition(agg, p, &off);
            parts->elems[i].offset = off >= 0 ? off : RD_KAFKA_OFFSET_BEGINNING;
            if (p + 1 > agg->n_parts)
                agg->n_parts = p + 1;
        }
        if (coop)
            rd_kafka_incremental_assign(rk, parts);
        else
            rd_kafka_assign(rk, parts);
        atomic_store(&agg->kafka_ok, true);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        /* Everything consumed so far is written before the partitions go. */
        if (agg->batch.n_events || agg->batch.n_calls)
            flush(agg, false);
        for (int i = 0; i < parts->cnt; i++) {
            int32_t p = parts->elems[i].partition;
            if (p >= 0 && p < AGG_MAX_PARTITIONS) {
                cp_info("aggregator", "partition %d revoked", p);
                drop_partition(agg, &agg->parts[p]);
            }
        }
        if (coop)
            rd_kafka_incremental_unassign(rk, parts);
        else
            rd_kafka_assign(rk, NULL);
    } else {
        cp_error("kafka", "rebalance failed: %s", rd_kafka_err2str(err));
        rd_kafka_assign(rk, NULL);
    }
}

/* ---- events ---- */

/* `now_us`: wall time read once per poll batch (the waits it drives are in seconds).
 * Returns 1 when the message was consumed (counted in events_total), 0 when stale. */
static int handle_message(struct agg *agg, rd_kafka_message_t *m, struct cp_arena *arena,
                           int64_t now_us)
{
    if (m->partition < 0 || m->partition >= AGG_MAX_PARTITIONS)
        return 0;
    struct agg_part *pt = &agg->parts[m->partition];
    if (!pt->assigned || m->offset < pt->next)
        return 0; /* stale (revoked, or re-delivered before a seek) */
    pt->next = m->offset + 1;
    pt->events++;
    agg->batch.n_events++;
    struct cp_event ev;
    const char *why = NULL;
    if (cp_event_decode(m->payload, m->len, arena, &ev, &why) != 0) {
        static struct cp_log_limit lim = CP_LOG_LIMIT_INIT(5, 10000);
        cp_counter_inc(agg->m.undecodable);
        cp_log_limited(&lim, CP_LOG_WARN, "aggregator",
                       "skipped an undecodable event at partition %d offset %lld: %s",
                       m->partition, (long long)m->offset, why ? why : "?");
        return 1;
    }
    char key[1024];
    size_t kl = call_key(key, sizeof key, ev.org, ev.pbx, ev.call);
    if (!kl)
        return 1;
    struct agg_open *o = cp_map_get(&pt->calls, key, kl);
    if (!o && agg_closed_has(&agg->closed, key, kl)) {
        /* The call's row is written: a second one would count it twice. */
        static struct cp_log_limit lim = CP_LOG_LIMIT_INIT(5, 60000);
        cp_counter_inc(agg->m.late);
        cp_log_limited(&lim, CP_LOG_WARN, "aggregator",
                       "dropped a late %s event for call %s/%s/%s, already written",
                       cp_kind_name(ev.kind), ev.org, ev.pbx, ev.call);
        return 1;
    }
    if (!o) {
        o = calloc(1, sizeof *o);
        struct agg_call *c = agg_call_create(ev.org, ev.pbx, ev.call);
        if (!o || !c || cp_map_put(&pt->calls, key, kl, o) != 0) {
            free(o);
            agg_call_destroy(c);
            cp_error("aggregator", "out of memory");
            return 1;
        }
        o->call = c;
        o->part = pt;
        o->first_seen_us = now_us;
    }
    int rc = agg_call_apply(o->call, &ev, m->payload, m->len, &agg->batch.sink);
    if (rc == AGG_DUPLICATE) {
        cp_counter_inc(agg->m.duplicates);
        return 1;
    }
    if (ev.ts > pt->watermark_us)
        pt->watermark_us = ev.ts;
    pt->last_event_wall_us = now_us;
    o->dirty = true;
    if (rc == AGG_FULL || rc < 0) {
        finish_call(agg, o, true);
        return 1;
    }
    if (agg_call_ended(o->call) && !o->ended_wall_us)
        o->ended_wall_us = now_us;
    if (agg_call_complete(o->call))
        finish_call(agg, o, false);
    return 1;
}

/* Calls that ended but wait for a wrap-up that never comes, settled calls whose source never
 * ends them, and calls that never end. */
static void sweep(struct agg *agg)
{
    int64_t now = cp_time_now_us();
    int64_t horizon = 0;
    for (int32_t i = 0; i < agg->n_parts; i++)
        if (agg->parts[i].assigned && agg->parts[i].watermark_us > horizon)
            horizon = agg->parts[i].watermark_us;
    if (horizon)
        agg_closed_expire(&agg->closed, horizon - agg->cfg->late_window_ms * 1000);
    for (int32_t i = 0; i < agg->n_parts; i++) {
        struct agg_part *pt = &agg->parts[i];
        if (!pt->assigned)
            continue;
        size_t it = 0;
        struct cp_map_slot *s;
        while ((s = cp_map_next(&pt->calls, &it))) {
            struct agg_open *o = s->val;
            /* The wrap-up wait runs in event time, so a backlog replayed after a
             * restart does not close calls before their wrap-up is read; only a
             * partition that has gone quiet falls back to wall time. */
            int64_t wait_us = agg->cfg->wrapup_wait_ms * 1000;
            bool quiet = now - pt->last_event_wall_us >= wait_us && now - o->ended_wall_us >= wait_us;
            if (o->ended_wall_us &&
                (pt->watermark_us - o->call->t_end >= wait_us || quiet)) {
                o->dirty = true;
                finish_call(agg, o, false);
            } else if (!o->ended_wall_us && agg_call_settled(o->call) &&
                       (pt->watermark_us - o->call->t_last >= agg->cfg->unended_wait_ms * 1000 ||
                        now - pt->last_event_wall_us >= agg->cfg->unended_wait_ms * 1000)) {
                /* Its source never ends calls (queue_log): nothing is in progress and
                 * nothing came for unended_wait, so this is how it ended. */
                o->dirty = true;
                finish_call(agg, o, false);
            } else if (!o->ended_wall_us &&
                       pt->watermark_us - o->call->t_last > agg->cfg->open_call_timeout_ms * 1000) {
                o->dirty = true;
                finish_call(agg, o, true);
            }
        }
    }
}

/* ---- admin thread ---- */

static bool ready_fn(void *arg, char *reason, size_t cap)
{
    struct agg *agg = arg;
    if (!atomic_load(&agg->kafka_ok)) {
        snprintf(reason, cap, "no partitions assigned yet");
        return false;
    }
    if (!atomic_load(&agg->pg_ok)) {
        snprintf(reason, cap, "postgresql unreachable");
        return false;
    }
    return true;
}

/* ---- the command ---- */

static void usage(FILE *f)
{
    fprintf(f, "usage: callpipe aggregator -c aggregator.yaml [--check-config] [--print-config-doc]\n"
               "\n"
               "Consumes callpipe.events in a consumer group and writes queue metrics, finished\n"
               "calls and Salesforce outbox rows to PostgreSQL, exactly once.\n");
}

static void setup_metrics(struct agg *agg)
{
    struct cp_metrics *r = agg->reg;
    agg->m.events = cp_metrics_counter(r, "callpipe_aggregator_events_total", "events consumed");
    agg->m.duplicates = cp_metrics_counter(r, "callpipe_aggregator_duplicate_events_total",
                                           "events dropped as duplicates (same event_id)");
    agg->m.undecodable = cp_metrics_counter(r, "callpipe_aggregator_undecodable_events_total",
                                            "events that did not decode (skipped)");
    agg->m.calls = cp_metrics_counter(r, "callpipe_aggregator_calls_total", "finished calls written");
    agg->m.forced = cp_metrics_counter(r, "callpipe_aggregator_forced_closes_total",
                                       "calls closed by the open-call timeout");
    agg->m.late = cp_metrics_counter(r, "callpipe_aggregator_late_events_total",
                                     "events for a call already written (within late_window): dropped");
    agg->m.pg_errors = cp_metrics_counter(r, "callpipe_aggregator_postgres_errors_total",
                                          "failed flush transactions (retried)");
    agg->m.flushes = cp_metrics_counter(r, "callpipe_aggregator_flushes_total",
                                        "committed flush transactions");
    static const double secs[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
    static const double sizes[] = {1, 10, 100, 1000, 10000, 100000};
    agg->m.flush_seconds = cp_metrics_histogram(r, "callpipe_aggregator_flush_seconds",
                                                "duration of a flush transaction", secs,
                                                CP_ARRAY_LEN(secs));
    agg->m.flush_events = cp_metrics_histogram(r, "callpipe_aggregator_flush_events",
                                               "events per flush", sizes, CP_ARRAY_LEN(sizes));
    agg->m.copy_seconds = cp_metrics_histogram(r, "callpipe_aggregator_calls_copy_seconds",
                                               "duration of the COPY of finished calls in a "
                                               "committed flush", secs, CP_ARRAY_LEN(secs));
    agg->m.copy_rows = cp_metrics_counter(r, "callpipe_aggregator_calls_copy_rows_total",
                                          "finished-call rows written by those COPYs");
    agg->m.open_calls = cp_metrics_gauge(r, "callpipe_aggregator_open_calls", "calls in flight");
    static const char *const plabel[] = {"partition", NULL};
    agg->m.lag = cp_metrics_family(r, CP_METRIC_GAUGE, "callpipe_aggregator_lag_messages",
                                   "messages behind the partition's end", plabel, NULL, 0);
}

int cp_cmd_aggregator(int argc, char **argv)
{
    const char *path;
    bool check;
    int status = cp_config_cli(argc, argv, &agg_cfg_table, usage, &path, &check);
    if (status >= 0)
        return status;
    if (check)
        return cp_config_check_main(&agg_cfg_table, path, stdout, stderr);
    static struct agg_cfg cfg;
    char err[1024];
    if (cp_config_load(&agg_cfg_table, path, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "callpipe aggregator: %s\n", err);
        return 2;
    }
    enum cp_log_level lvl;
    if (cp_log_level_parse(cfg.log_level, &lvl) == 0)
        cp_log_set_level(lvl);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    /* Every call allocates a few KiB that are freed when it is written, and every flush
     * builds COPY buffers of megabytes: keep freed memory in the heap instead of handing it
     * back (trim) or mapping large buffers afresh (mmap), which made the kernel zero new
     * pages for the same memory over and over (~12 % of the aggregator's CPU in perf). */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
    mallopt(M_TOP_PAD, 16 << 20);

    static struct agg agg;
    agg.cfg = &cfg;
    agg.reg = cp_metrics_create();
    setup_metrics(&agg);
    cp_map_init(&agg.settings);
    agg.parts = calloc(AGG_MAX_PARTITIONS, sizeof *agg.parts);
    for (int i = 0; i < AGG_MAX_PARTITIONS; i++) {
        agg.parts[i].partition = i;
        agg.parts[i].committed = agg.parts[i].next = -1;
        cp_map_init(&agg.parts[i].calls);
    }
    agg_batch_init(&agg.batch, &agg);
    agg_closed_init(&agg.closed);
    /* The password travels inside the conninfo only, never in a log line. */
    size_t cl = strlen(cfg.postgres.dsn) + (cfg.postgres.password.value ? cfg.postgres.password.len * 2 + 16 : 0) + 1;
    agg.conninfo = calloc(1, cl);
    strcpy(agg.conninfo, cfg.postgres.dsn);
    if (cfg.postgres.password.value) {
        strcat(agg.conninfo, " password='");
        char *q = agg.conninfo + strlen(agg.conninfo);
        for (const char *p = cfg.postgres.password.value; *p; p++) {
            if (*p == '\'' || *p == '\\')
                *q++ = '\\';
            *q++ = *p;
        }
        *q++ = '\'';
        *q = 0;
    }
    struct cp_pg_error pgerr = {{0}, {0}, 0};
    if (cp_pg_connect(agg.conninfo, &(struct cp_pg_retry)CP_PG_RETRY_DEFAULT, &agg.pg, &pgerr)) {
        cp_error("postgres", "could not connect: %s", pgerr.msg);
        return 1;
    }
    atomic_store(&agg.pg_ok, true);
    agg_settings_load(&agg);

    char kerr[512];
    char sess[16], hb[16];
    snprintf(sess, sizeof sess, "%lld", (long long)cfg.kafka.session_timeout_ms);
    snprintf(hb, sizeof hb, "%lld", (long long)cfg.kafka.heartbeat_ms);
    struct cp_kafka_consumer_opts co = {
        .brokers = cfg.kafka.brokers,
        .group_id = cfg.kafka.group,
        .client_id = "callpipe-aggregator",
        .auto_commit = false,
        .session_timeout_ms = (int)cfg.kafka.session_timeout_ms,
        .heartbeat_interval_ms = (int)cfg.kafka.heartbeat_ms,
    };
    rd_kafka_conf_t *conf = cp_kafka_consumer_conf(&co, kerr, sizeof kerr);
    if (!conf) {
        cp_error("kafka", "could not configure the consumer: %s", kerr);
        return 2;
    }
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_opaque(conf, &agg);
    agg.rk = cp_kafka_consumer_new(conf, kerr, sizeof kerr);
    if (!agg.rk) {
        cp_error("kafka", "could not create the consumer: %s", kerr);
        return 1;
    }
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, cfg.kafka.topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(agg.rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);

    struct cp_admin_thread *admin =
        cp_admin_thread_start(cfg.admin_listen, "aggregator:admin", agg.reg, ready_fn, &agg);
    if (!admin)
        return 1;
    cp_info(NULL, "consuming %s as group %s; admin on %s", cfg.kafka.topic, cfg.kafka.group,
            cfg.admin_listen);

    struct cp_arena arena;
    cp_arena_init(&arena, 16384, 0);
    agg.last_flush_us = agg.last_queue_now_us = agg.last_settings_us = cp_time_mono_us();
    int64_t last_sweep = cp_time_mono_us();
    while (!got_signal) {
        /* Up to AGG_POLL_BATCH messages per round: the clocks are read, the counter
         * bumped and the flush conditions checked once per round, not per message. */
        int64_t wall = cp_time_now_us();
        uint64_t polled = 0;
        int timeout_ms = 50;
        rd_kafka_message_t *m = NULL;
        while (polled < AGG_POLL_BATCH && !got_signal &&
               agg.batch.n_events < cfg.flush_max_events &&
               (m = rd_kafka_consumer_poll(agg.rk, timeout_ms))) {
            timeout_ms = 0;
            if (!m->err)
                polled += (uint64_t)handle_message(&agg, m, &arena, wall);
            else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                cp_warn("kafka", "consumer: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            cp_arena_reset(&arena);
        }
        cp_counter_add(agg.m.events, polled);
        int64_t now = cp_time_mono_us();
        if (now - last_sweep >= 1000000) {
            sweep(&agg);
            last_sweep = now;
            size_t open = 0;
            for (int32_t i = 0; i < agg.n_parts; i++)
                open += agg.parts[i].calls.len;
            cp_gauge_set(agg.m.open_calls, (double)open);
        }
        /* Caught up (the last poll found nothing): flush every flush_interval.  While a
         * backlog keeps every poll busy, let the batch grow towards flush_max_events (or
         * AGG_BACKLOG_FLUSHES intervals): each flush rewrites every open call touched
         * since the last one, so fewer, larger flushes cost less per event. */
        bool caught_up = m == NULL;
        int64_t since = now - agg.last_flush_us;
        bool due = since >= cfg.flush_interval_ms * 1000 *
                                (caught_up ? 1 : AGG_BACKLOG_FLUSHES);
        bool now_due = now - agg.last_queue_now_us >= cfg.queue_now_interval_ms * 1000;
        bool pending = agg.batch.n_events || agg.batch.n_calls;
        if ((pending && (due || agg.batch.n_events >= cfg.flush_max_events)) || (now_due && agg.n_parts))
            flush(&agg, now_due);
        if (now - agg.last_settings_us >= cfg.settings_refresh_ms * 1000) {
            if (agg.pg)
                agg_settings_load(&agg);
            agg.last_settings_us = now;
        }
    }
    cp_info(NULL, "received %s: writing what is pending and leaving the group",
            strsignal(got_signal));
    if (agg.batch.n_events || agg.batch.n_calls)
        flush(&agg, false);
    rd_kafka_consumer_close(agg.rk); /* revokes: the rebalance callback flushes again if needed */
    rd_kafka_destroy(agg.rk);
    cp_admin_thread_stop(admin);
    for (int i = 0; i < AGG_MAX_PARTITIONS; i++)
        drop_partition(&agg, &agg.parts[i]);
    free(agg.parts);
    agg_batch_free(&agg.batch);
    agg_closed_free(&agg.closed);
    cp_arena_destroy(&arena);
    if (agg.pg)
        PQfinish(agg.pg);
    free(agg.conninfo);
    cp_metrics_destroy(agg.reg);
    cp_config_free(&agg_cfg_table, &cfg);
    cp_info(NULL, "stopped cleanly");
    return 0;
}
