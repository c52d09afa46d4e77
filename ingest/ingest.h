/* ingest.h - the collector's internal pieces: configuration, loops, sources, Kafka output. */
#ifndef CP_INGEST_H
#define CP_INGEST_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>
#include <uv.h>

#include "cp_config.h"
#include "cp_frame.h"
#include "cp_http.h"
#include "cp_metrics.h"
#include "cp_source.h"

/* ---- configuration (ingest_config.c) ---- */

enum ing_transport {
    ING_TCP = 0,    /* we listen, the PBX connects and streams records */
    ING_HTTP,       /* we listen, the PBX POSTs records */
    ING_SYSLOG_UDP, /* syslog datagrams carrying records */
    ING_SYSLOG_TCP, /* syslog over TCP (LF or octet-counted) carrying records */
    ING_TCP_CLIENT, /* we connect to the PBX (AMI, ESL, SMDR in client mode) */
    ING_FILE_DROP,  /* files dropped into a directory (CUCM CDR), each processed once */
    ING_FILE_TAIL,  /* a file that grows (queue_log), followed across rotation */
};

struct ing_source_cfg {
    char *name; /* the source id (metrics, logs); also `pbx` of its events unless pbx is set */
    char *pbx;  /* `pbx` of every event (ing_source_pbx): shared by a PBX's CTI and CDR feeds */
    char *org;
    char *format;
    int transport;
    char *listen; /* "host:port" */
    int framing;  /* enum cp_frame_mode */
    char *tz;
    struct cp_secret token;       /* HTTP bearer token */
    struct cp_secret hmac_secret; /* HTTP HMAC-SHA256 of the body */
    char *allow;                  /* TCP peer ranges "127.0.0.0/8,::1/128"; NULL = anyone */
    int64_t max_record;
    int64_t max_body;
    char *connect;                 /* tcp-client: "host:port" of the PBX */
    char *username;                /* tcp-client: AMI user name */
    struct cp_secret login_secret; /* tcp-client: AMI secret / ESL password */
    int login_mode;                /* tcp-client AMI: 0 md5 challenge, 1 plain */
    char *path;                    /* file-drop: directory; file-tail: file */
    char *done_dir;                /* file-drop: where processed files are moved */
    char *ledger;                  /* file-drop: file recording processed files (survives restarts) */
    struct cp_secret access_key;   /* HTTP: X-Amz-Firehose-Access-Key (Amazon Connect via Firehose) */
    struct cp_secret twilio_token; /* HTTP: Twilio auth token for X-Twilio-Signature */
    char *public_url;              /* HTTP: the URL Twilio posts to (part of the signature) */
    char *cdr_columns;             /* asterisk-cdr-csv: auto|none|uniqueid|userfield|uniqueid,userfield */
};

/* The `pbx` stamped on a source's events: its `pbx` key, else its name. */
static inline const char *ing_source_pbx(const struct ing_source_cfg *c)
{
    return c->pbx && c->pbx[0] ? c->pbx : c->name;
}

struct ing_kafka_cfg {
    char *brokers;
    char *topic;
    char *deadletter_topic;
    char *compression;
    int64_t linger_ms;
    int64_t queue_max_messages;
    int64_t queue_max_bytes;
    int64_t high_watermark; /* queued messages above which inputs pause */
    int64_t low_watermark;  /* ... and below which they resume */
    int64_t flush_timeout_ms;
    int64_t unready_after_ms;
};

struct ing_cfg {
    char *log_level;
    int64_t threads;
    char *admin_listen;
    int64_t idle_timeout_ms;
    int64_t header_timeout_ms;
    int64_t max_connections;
    int64_t deadletter_cut;
    struct ing_kafka_cfg kafka;
    struct ing_source_cfg *sources;
    size_t n_sources;
};

extern const struct cp_config_table ing_cfg_table;
/* "tcp", "http", ... as written in the configuration. */
const char *ing_transport_name(int transport);
/* Cross-field checks the table cannot express (formats exist, listen parses, ...). */
int ing_cfg_validate(const struct ing_cfg *cfg, char *err, size_t errcap);
/* "host:port" → parts; 0 or CP_ERR_PARSE. */
int ing_parse_listen(const char *listen, char *host, size_t hostcap, int *port);

/* ---- Kafka output (ingest_kafka.c) ---- */

/*
 * A completion owner: something waiting for the delivery reports of the
 * events it produced (an HTTP request).  `on_done` runs on the owner's loop
 * thread once every produced event has its report.
 */
struct ing_waiter {
    struct ing_loop *loop;
    atomic_int pending; /* events produced and not yet reported, +1 while producing */
    atomic_int failed;
    void (*on_done)(struct ing_waiter *w);
    struct ing_waiter *next_done; /* loop's completion list */
};

/* Per-source metric children, created once. */
struct ing_source_metrics {
    struct cp_counter *records_in;
    struct cp_counter *events_in;
    struct cp_counter *events_out;
    struct cp_counter *bytes_in;
    struct cp_gauge *connections;
    struct cp_metric_family *rejects; /* labels: source, reason */
    struct cp_histogram *delivery_seconds;
};

struct ing_source {
    const struct ing_source_cfg *cfg;
    const struct cp_source_format *fmt;
    struct ing_source_metrics m;
    uint32_t allow_n;
    struct ing_cidr {
        int family;
        uint8_t addr[16];
        int prefix;
    } allow[16];
};

struct ing_out {
    rd_kafka_t *rk;
    rd_kafka_topic_t *events, *deadletter;
    const struct ing_kafka_cfg *cfg;
    size_t deadletter_cut;
    pthread_t poller;
    atomic_bool stop;
    atomic_bool paused; /* backpressure: inputs stop reading */
    atomic_llong last_ok_us; /* last successful delivery (or start) */
    atomic_llong down_since_us; /* first failure since the last success, 0 = none */
    struct cp_counter *redelivered;
    struct cp_counter *dr_errors;
};

int ing_out_start(struct ing_out *out, const struct ing_kafka_cfg *cfg, size_t deadletter_cut,
                  struct cp_metrics *reg, char *err, size_t errcap);
/* Flushes within the configured bound; returns the number of messages left undelivered. */
int ing_out_stop(struct ing_out *out);
/* Encodes and produces one event; `w` (may be NULL) waits for its report. */
int ing_out_event(struct ing_out *out, struct ing_source *src, const struct cp_event *ev,
                  struct ing_waiter *w);
/* Dead-letters one record with its reason (raw cut at the configured bound). */
void ing_out_deadletter(struct ing_out *out, struct ing_source *src, const char *peer,
                        const char *reason, const void *raw, size_t len, int64_t recv_us);
bool ing_out_ready(const struct ing_out *out);
size_t ing_out_queued(const struct ing_out *out);
/* Pauses the inputs at once when the queue is above the high watermark (the poller only
 * looks every 50 ms); returns whether they are paused. Any thread. */
bool ing_out_check_pause(struct ing_out *out);

/* ---- loops (ingest_main.c, ingest_net.c, ingest_http.c) ---- */

struct ing_conn;

struct ing_loop {
    int index;
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t wake;   /* completions and stop requests from other threads */
    uv_timer_t tick;   /* backpressure and timeouts */
    struct ing *ing;
    pthread_mutex_t done_lock;
    struct ing_waiter *done; /* completed waiters to finish on this loop */
    bool stopping;
    bool listeners_closed;
    bool paused; /* this loop's view of backpressure */
    struct ing_conn *conns; /* TCP connections, for pause/resume and drain */
    struct cp_arena arena;  /* per-record scratch, reset after each record */
    int64_t read_us;        /* wall time of the TCP read being handled, else 0: the records of
                             * one read share one receive time and one clock call */
    uv_handle_t **listeners;
    size_t n_listeners;
    struct cp_http_server **http;
    void **http_args;
    void *clients; /* ingest_client.c's list */
    void *files;   /* ingest_files.c's list */
    size_t n_http;
    size_t http_open;       /* servers still draining after ing_http_stop */
    atomic_int stop_phase;  /* requested by the controller: 1 stop accepting, 2 close streams, 3 exit */
    int stop_done;          /* phases carried out on this loop */
};

struct ing {
    struct ing_cfg *cfg;
    struct ing_source *sources;
    size_t n_sources;
    struct ing_out out;
    struct cp_metrics *reg;
    struct ing_loop *loops;
    int n_loops;
    atomic_bool stopping;
};

/* The format's per-connection state, configured from the source (NULL for stateless formats). */
void *ing_state_create(const struct ing_source *src);

/* Parses one framed record of `src` and produces its events; rejects go to the dead letters. */
typedef void (*ing_reject_fn)(void *arg, uint32_t index, const char *reason);
/* Returns the number of events produced. `state` is the format's per-connection state (or NULL);
 * `on_reject` (may be NULL) hears each rejected element. */
int ing_handle_record(struct ing_loop *l, struct ing_source *src, void *state, const char *peer,
                      const char *rec, size_t len, struct ing_waiter *w, ing_reject_fn on_reject,
                      void *reject_arg);
void ing_reject(struct ing_loop *l, struct ing_source *src, const char *peer, const char *reason,
                const void *raw, size_t len);

int ing_net_listen(struct ing_loop *l, struct ing_source *src, char *err, size_t errcap);
void ing_net_pause(struct ing_loop *l, bool pause);
/* Stops accepting; with `close_conns` also closes every TCP connection (after the grace). */
void ing_net_stop(struct ing_loop *l, bool close_conns);
void ing_net_tick(struct ing_loop *l);
/* Returns the bound port or a negative code. */
int ing_http_listen(struct ing_loop *l, struct ing_source *src, char *err, size_t errcap);
void ing_http_stop(struct ing_loop *l, unsigned drain_ms);
/* Outbound sources (ingest_client.c): connect, log in, reconnect with backoff. Loop 0 only. */
int ing_client_start(struct ing_loop *l, struct ing_source *src, char *err, size_t errcap);
void ing_client_stop(struct ing_loop *l);
/* File sources (ingest_files.c): a drop directory or a followed file. Loop 0 only. */
int ing_files_start(struct ing_loop *l, struct ing_source *src, char *err, size_t errcap);
void ing_files_stop(struct ing_loop *l);
/* Queues a finished waiter for its loop (any thread). */
void ing_loop_complete(struct ing_waiter *w);

/* Opens a listening socket with SO_REUSEPORT (every loop listens, the kernel spreads peers). */
int ing_socket_listen(const char *addr, int type, char *err, size_t errcap);

#endif
