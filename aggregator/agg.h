/* agg.h - the aggregator service's internal types: configuration, partitions, the flush batch. */
#ifndef CP_AGG_H
#define CP_AGG_H

#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "agg_call.h"
#include "agg_closed.h"
#include "cp_config.h"
#include "cp_map.h"
#include "cp_metrics.h"
#include "cp_pg.h"

/* ---- configuration (agg_config.c) ---- */

struct agg_route_cfg {
    char *org;     /* calls of this org tag ("*" = every org) ... */
    char *queues;  /* ... optionally only these queues (comma list; empty = all) ... */
    char *targets; /* ... go to these Salesforce orgs (comma list of loader org names) */
};

struct agg_kafka_cfg {
    char *brokers;
    char *topic;
    char *group;
    int64_t session_timeout_ms;
    int64_t heartbeat_ms;
};

struct agg_pg_cfg {
    char *dsn;
    struct cp_secret password;
};

struct agg_cfg {
    char *log_level;
    char *admin_listen;
    struct agg_kafka_cfg kafka;
    struct agg_pg_cfg postgres;
    int64_t flush_interval_ms;
    int64_t flush_max_events;
    int64_t wrapup_wait_ms;      /* after a call ends, how long to wait for its wrap-up */
    int64_t open_call_timeout_ms; /* event time without news after which a call is force-closed */
    int64_t unended_wait_ms;      /* a settled call whose source never ends it closes after this */
    int64_t late_window_ms;       /* written calls are remembered this long (event time) */
    int64_t queue_now_interval_ms;
    int64_t settings_refresh_ms;
    struct agg_route_cfg *routes;
    size_t n_routes;
};

extern const struct cp_config_table agg_cfg_table;

/* ---- per-partition state (agg_main.c) ---- */

#define AGG_MAX_PARTITIONS 1024

struct agg_part {
    int32_t partition;
    bool assigned;
    int64_t committed; /* next offset as committed in PostgreSQL (-1 = none yet) */
    int64_t next;      /* next offset after what this batch has consumed */
    int64_t watermark_us; /* max event time seen: drives the wrap-up wait and the open-call timeout */
    int64_t last_event_wall_us; /* wall time of the partition's last event (idle detection) */
    struct cp_map calls;  /* "org\0pbx\0call" -> struct agg_open */
    uint64_t events;
};

/* One open call with its bookkeeping. */
struct agg_open {
    struct agg_call *call;
    struct agg_part *part;
    int64_t ended_wall_us; /* wall time when its end was first seen (0 = not ended) */
    bool dirty;            /* changed since the last flush */
    bool in_db;            /* has a row in open_calls */
    int64_t first_seen_us;
};

/* ---- the flush batch (agg_batch.c) ---- */

struct msgpack_sbuffer;

struct agg_batch {
    struct agg_sink sink;
    struct agg *agg;
    struct cp_map qi;   /* "org\0queue\0interval" -> struct agg_qi_entry */
    struct cp_map disp; /* "org\0queue\0interval\0disposition" -> entry */
    struct cp_map wrap;
    struct cp_pg_copybuf calls;   /* COPY rows for calls */
    struct cp_pg_copybuf outbox;  /* COPY rows for sf_outbox */
    struct cp_pg_copybuf deleted; /* open calls finished */
    struct msgpack_sbuffer *pack; /* reused to encode each open call's event list */
    int64_t n_calls, n_outbox, n_deleted, n_events;
    int64_t min_day, max_day;     /* calls' ended days (for partitions) */
    bool calls_insert;            /* a calls row exists already: insert around it (agg_batch.c) */
};

struct agg {
    struct agg_cfg *cfg;
    rd_kafka_t *rk;
    PGconn *pg;
    bool pg_session; /* staging tables created on this connection */
    char *conninfo;
    struct agg_batch batch;
    struct agg_part *parts; /* AGG_MAX_PARTITIONS entries, indexed by partition number */
    int32_t n_parts; /* highest partition seen + 1 */
    atomic_bool stop;
    atomic_bool pg_ok, kafka_ok;
    int64_t last_flush_us, last_queue_now_us, last_settings_us;
    struct cp_map settings; /* "org\0queue" -> struct agg_settings_list */
    struct agg_closed closed; /* calls written recently (late events for them are dropped) */
    bool closed_loaded;       /* the recent calls were read back from PostgreSQL */
    struct cp_metrics *reg;
    struct {
        struct cp_counter *events, *duplicates, *undecodable, *calls, *forced, *pg_errors,
            *flushes, *late;
        struct cp_histogram *flush_seconds, *flush_events;
        struct cp_histogram *copy_seconds; /* the `COPY calls` statement of each flush */
        struct cp_counter *copy_rows;      /* rows that statement wrote */
        struct cp_gauge *open_calls;
        struct cp_metric_family *lag;
    } m;
};

void agg_batch_init(struct agg_batch *b, struct agg *agg);
void agg_batch_reset(struct agg_batch *b);
void agg_batch_free(struct agg_batch *b);
/* Adds a finished call: its row, and one outbox row per routed target org. */
int agg_batch_add_call(struct agg_batch *b, const struct agg_call_row *row);
/* Marks an open call for deletion from open_calls in this flush. */
int agg_batch_delete_open(struct agg_batch *b, const struct agg_call *c);
/*
 * Writes the batch, the dirty open calls, queue_now (when `with_now`) and the
 * partitions' offsets in ONE transaction.  0 on commit; CP_ERR_STATE when a
 * partition's stored offset shows another consumer moved it (this instance
 * lost the partition: drop the batch); other negative codes: retry the same
 * batch after reconnecting.
 */
int agg_batch_commit(struct agg_batch *b, bool with_now);

/* Settings in force for (org, queue) at `at` (agg_batch.c). */
const struct agg_settings *agg_settings_lookup(struct agg *agg, const char *org, const char *queue,
                                               int64_t at);
int agg_settings_load(struct agg *agg);

/* Open-call persistence: a msgpack array of the call's raw events (replaces sb's contents). */
int agg_open_encode(const struct agg_call *c, struct msgpack_sbuffer *sb);
int agg_open_restore(struct agg_call *c, const char *buf, size_t len);

#endif
