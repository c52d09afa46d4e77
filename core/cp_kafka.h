/* cp_kafka.h - librdkafka helpers shared by the services: configs, constructors, error mapping. */
#ifndef CP_KAFKA_H
#define CP_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <librdkafka/rdkafka.h>

#include "cp_err.h"
#include "cp_log.h"

/*
 * Producer options (DESIGN.md section 4).  Zero / NULL fields take the
 * default shown.  The producer is always idempotent with acks=all: that is
 * what makes "retry after any transient failure" safe (no duplicates, order
 * kept per partition), so it cannot be switched off here; an `extra` line
 * that conflicts with it makes cp_kafka_producer_new() fail.
 */
struct cp_kafka_producer_opts {
    const char *brokers;     /* bootstrap.servers; required */
    const char *client_id;   /* client.id; NULL = "callpipe" */
    const char *compression; /* compression.codec; NULL = "lz4" */
    int linger_ms;           /* linger.ms; 0 = 5, <0 = 0 (no batching delay) */
    int queue_max_msgs;      /* queue.buffering.max.messages; 0 = librdkafka's 100000 */
    int queue_max_kbytes;    /* queue.buffering.max.kbytes; 0 = librdkafka's 1 GiB */
    int message_timeout_ms;  /* message.timeout.ms; 0 = librdkafka's 300000 */
    /* "key=value" librdkafka properties applied last, so they win. */
    const char *const *extra;
    size_t extra_n;
};

/*
 * Consumer options.  Offsets are stored by the application only after its
 * output is durable (enable.auto.offset.store=false, reliability.md A1);
 * whether the stored offsets are then committed automatically is the
 * caller's choice.
 */
struct cp_kafka_consumer_opts {
    const char *brokers;             /* bootstrap.servers; required */
    const char *group_id;            /* group.id; required */
    const char *client_id;           /* client.id; NULL = "callpipe" */
    bool auto_commit;                /* enable.auto.commit */
    const char *assignment_strategy; /* NULL = "cooperative-sticky" */
    int session_timeout_ms;          /* 0 = librdkafka's 45000 */
    int heartbeat_interval_ms;       /* 0 = librdkafka's 3000 */
    const char *auto_offset_reset;   /* NULL = "earliest": a new group reads everything */
    const char *const *extra;        /* "key=value" overrides, applied last */
    size_t extra_n;
};

/* Sets one property; CP_ERR_CONFIG with librdkafka's reason in errstr. */
int cp_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *errstr,
                      size_t errlen) CP_MUSTCHECK;
/* Applies one "key=value" line (surrounding blanks trimmed). */
int cp_kafka_conf_apply(rd_kafka_conf_t *conf, const char *kv, char *errstr,
                        size_t errlen) CP_MUSTCHECK;

/*
 * Route librdkafka's log lines and error events into cp_log (identity
 * "kafka <client name>"); each error is logged once, fatal ones with their
 * reason.  The *_conf builders below already call this; a service that
 * needs its own error_cb sets it afterwards.
 */
void cp_kafka_conf_set_log(rd_kafka_conf_t *conf);
/* syslog level (0 emerg .. 7 debug) as used by librdkafka -> cp_log level. */
enum cp_log_level cp_kafka_log_level(int syslog_level);

/* New configuration objects, or NULL with the reason in errstr. Free with rd_kafka_conf_destroy. */
rd_kafka_conf_t *cp_kafka_producer_conf(const struct cp_kafka_producer_opts *opts, char *errstr,
                                        size_t errlen);
rd_kafka_conf_t *cp_kafka_consumer_conf(const struct cp_kafka_consumer_opts *opts, char *errstr,
                                        size_t errlen);

/*
 * Create a client from `conf`.  The conf is consumed in every case (unlike
 * rd_kafka_new, which keeps it on failure), so callers never leak or double
 * free it.  Returns NULL with the reason in errstr.  The consumer has its
 * main queue redirected to the consumer queue, so rd_kafka_consumer_poll()
 * serves logs, stats and rebalances too.
 */
rd_kafka_t *cp_kafka_producer_new(rd_kafka_conf_t *conf, char *errstr, size_t errlen);
rd_kafka_t *cp_kafka_consumer_new(rd_kafka_conf_t *conf, char *errstr, size_t errlen);

/*
 * Map a librdkafka error code to a cp_err code.  The mapping keeps the one
 * bit the retry loops need: cp_err_is_retriable(result) is true exactly when
 * trying again later (with the same idempotent producer, or a reconnect)
 * can succeed.  RD_KAFKA_RESP_ERR_NO_ERROR -> 0; __FATAL -> CP_ERR_KAFKA_FATAL.
 */
int cp_kafka_err(rd_kafka_resp_err_t err);
/* The same for an rd_kafka_error_t, honouring its fatal and retriable flags. NULL -> 0. */
int cp_kafka_error(const rd_kafka_error_t *error);
/*
 * 0 when the client is healthy; CP_ERR_KAFKA_FATAL (and the underlying
 * reason in errstr) after a fatal error, e.g. an idempotence guarantee
 * that could not be kept.  The instance must then be flushed, destroyed
 * and recreated.
 */
int cp_kafka_fatal(rd_kafka_t *rk, char *errstr, size_t errlen);

#endif
