/* agg_config.c - the aggregator's configuration table. */
#include "agg.h"

static const struct cp_config_field route_fields[] = {
    {CP_CFG_AT(struct agg_route_cfg, org), CP_CFG_STRING, .flags = CP_CFG_REQUIRED,
     .help = "org tag of the calls this route takes (\"*\" = every org)"},
    {CP_CFG_AT(struct agg_route_cfg, queues), CP_CFG_STRING,
     .help = "only calls whose last queue is in this comma-separated list (empty = all)"},
    {CP_CFG_AT(struct agg_route_cfg, targets), CP_CFG_STRING, .flags = CP_CFG_REQUIRED,
     .help = "comma-separated Salesforce org names (loader config) that receive the calls"},
};
static const struct cp_config_table route_table = CP_CFG_TABLE(struct agg_route_cfg, route_fields);

static const struct cp_config_field kafka_fields[] = {
    {CP_CFG_AT(struct agg_kafka_cfg, brokers), CP_CFG_STRING, .flags = CP_CFG_REQUIRED,
     .help = "bootstrap servers host:port,..."},
    {CP_CFG_AT(struct agg_kafka_cfg, topic), CP_CFG_STRING, .dflt = "callpipe.events",
     .help = "topic of canonical events"},
    {CP_CFG_AT(struct agg_kafka_cfg, group), CP_CFG_STRING, .dflt = "callpipe-aggregator",
     .help = "consumer group (also the key of the offsets stored in PostgreSQL)"},
    {CP_CFG_AT_KEY("session_timeout", struct agg_kafka_cfg, session_timeout_ms),
     CP_CFG_DURATION, .dflt = "10s", .min = 1000, .max = 300000,
     .help = "group session timeout (a dead member's partitions move after this)"},
    {CP_CFG_AT_KEY("heartbeat", struct agg_kafka_cfg, heartbeat_ms), CP_CFG_DURATION,
     .dflt = "1s", .min = 100, .max = 60000, .help = "group heartbeat interval"},
};
static const struct cp_config_table kafka_table = CP_CFG_TABLE(struct agg_kafka_cfg,
                                                               kafka_fields);

static const struct cp_config_field pg_fields[] = {
    {CP_CFG_AT(struct agg_pg_cfg, dsn), CP_CFG_STRING, .dflt = "",
     .help = "libpq connection string without the password (empty = PG* environment)"},
    {CP_CFG_AT(struct agg_pg_cfg, password), CP_CFG_SECRET,
     .help = "password of the writer role (env:NAME or file:PATH)"},
};
static const struct cp_config_table pg_table = CP_CFG_TABLE(struct agg_pg_cfg, pg_fields);

static const struct cp_config_field agg_fields[] = {
    {CP_CFG_AT(struct agg_cfg, log_level), CP_CFG_STRING, .dflt = "info",
     .help = "debug, info, warn or error"},
    {CP_CFG_AT_KEY("admin", struct agg_cfg, admin_listen), CP_CFG_STRING,
     .dflt = "127.0.0.1:9102", .help = "admin HTTP address for /metrics, /healthz, /readyz"},
    {CP_CFG_AT(struct agg_cfg, kafka), CP_CFG_MAPPING, .sub = &kafka_table,
     .flags = CP_CFG_REQUIRED, .help = "Kafka input"},
    {CP_CFG_AT(struct agg_cfg, postgres), CP_CFG_MAPPING, .sub = &pg_table,
     .help = "PostgreSQL output"},
    {CP_CFG_AT_KEY("flush_interval", struct agg_cfg, flush_interval_ms), CP_CFG_DURATION,
     .dflt = "500ms", .min = 10, .max = 60000,
     .help = "write a transaction at least this often while events arrive (8 times this while "
             "catching up on a backlog)"},
    {CP_CFG_AT(struct agg_cfg, flush_max_events), CP_CFG_INT, .dflt = "200000", .min = 1,
     .max = 10000000, .help = "... or after this many events"},
    {CP_CFG_AT_KEY("wrapup_wait", struct agg_cfg, wrapup_wait_ms), CP_CFG_DURATION,
     .dflt = "10m", .min = 0, .max = 86400000,
     .help = "after a call ends, how long (event time; wall time on a quiet partition) to wait for its wrap-up"},
    {CP_CFG_AT_KEY("unended_wait", struct agg_cfg, unended_wait_ms), CP_CFG_DURATION,
     .dflt = "10m", .min = 0, .max = 86400000,
     .help = "a call whose source never says it ended (Asterisk queue_log) is closed this long (event "
             "time; wall time on a quiet partition) after its last event, once no caller waits in a "
             "queue and no agent talks"},
    {CP_CFG_AT_KEY("late_window", struct agg_cfg, late_window_ms), CP_CFG_DURATION,
     .dflt = "30m", .min = 0, .max = 604800000,
     .help = "how long (event time) a written call is remembered: its later events are dropped "
             "and counted (callpipe_aggregator_late_events_total) instead of opening a second call"},
    {CP_CFG_AT_KEY("open_call_timeout", struct agg_cfg, open_call_timeout_ms), CP_CFG_DURATION,
     .dflt = "4h", .min = 60000, .max = 604800000,
     .help = "event time without news after which a call that never ended is closed (counted)"},
    {CP_CFG_AT_KEY("queue_now_interval", struct agg_cfg, queue_now_interval_ms),
     CP_CFG_DURATION, .dflt = "2s", .min = 100, .max = 600000,
     .help = "how often the live queue snapshot is written"},
    {CP_CFG_AT_KEY("settings_refresh", struct agg_cfg, settings_refresh_ms), CP_CFG_DURATION,
     .dflt = "60s", .min = 1000, .max = 86400000, .help = "how often queue_settings is re-read"},
    {CP_CFG_LIST_AT(struct agg_cfg, routes, n_routes), CP_CFG_LIST, .sub = &route_table,
     .min = 0, .max = 10000,
     .help = "which Salesforce orgs receive which calls (first matching route wins)"},
};

const struct cp_config_table agg_cfg_table = {
    .name = "aggregator",
    .size = sizeof(struct agg_cfg),
    .fields = agg_fields,
    .nfields = CP_ARRAY_LEN(agg_fields),
    .env_prefix = "CALLPIPE_AGGREGATOR",
};
