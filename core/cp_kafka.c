/* cp_kafka.c - librdkafka helpers: producer/consumer configs, constructors, error mapping, logs. */
#include "cp_kafka.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define E(name) RD_KAFKA_RESP_ERR_##name

/*
 * librdkafka error -> cp_err.  Anything not listed maps to CP_ERR_KAFKA
 * (retriable): the broker errors not listed here are leadership,
 * coordinator and rebalance states that librdkafka or a later retry gets
 * past.  Listed here are the ones where retrying cannot help (the data,
 * the configuration or the credentials are wrong) and the ones a caller
 * handles specially (queue full -> backpressure, fatal -> recreate).
 */
static const struct {
    rd_kafka_resp_err_t rk;
    int cp;
} err_map[] = {
    {E(NO_ERROR), 0},
    /* The instance is unusable: flush, destroy, recreate. */
    {E(_FATAL), CP_ERR_KAFKA_FATAL},
    {E(_FENCED), CP_ERR_KAFKA_FATAL},
    {E(PRODUCER_FENCED), CP_ERR_KAFKA_FATAL},
    {E(INVALID_PRODUCER_EPOCH), CP_ERR_KAFKA_FATAL},
    {E(_GAPLESS_GUARANTEE), CP_ERR_KAFKA_FATAL},
    {E(_INCONSISTENT), CP_ERR_KAFKA_FATAL},
    {E(_CRIT_SYS_RESOURCE), CP_ERR_KAFKA_FATAL},
    /* Backpressure: stop reading input until delivery reports drain the queue. */
    {E(_QUEUE_FULL), CP_ERR_FULL},
    {E(_MSG_TIMED_OUT), CP_ERR_TIMEOUT},
    {E(_TIMED_OUT), CP_ERR_TIMEOUT},
    {E(_TIMED_OUT_QUEUE), CP_ERR_TIMEOUT},
    {E(REQUEST_TIMED_OUT), CP_ERR_TIMEOUT},
    {E(_TRANSPORT), CP_ERR_CONN},
    {E(_ALL_BROKERS_DOWN), CP_ERR_CONN},
    {E(_RESOLVE), CP_ERR_CONN},
    {E(NETWORK_EXCEPTION), CP_ERR_CONN},
    {E(BROKER_NOT_AVAILABLE), CP_ERR_CONN},
    /* Purged from the queue (shutdown or after a fatal error): never sent, send again. */
    {E(_PURGE_QUEUE), CP_ERR_AGAIN},
    {E(_PURGE_INFLIGHT), CP_ERR_AGAIN},
    {E(_DESTROY), CP_ERR_SHUTDOWN},
    {E(_SSL), CP_ERR_TLS},
    {E(_AUTHENTICATION), CP_ERR_AUTH},
    {E(SASL_AUTHENTICATION_FAILED), CP_ERR_AUTH},
    {E(UNSUPPORTED_SASL_MECHANISM), CP_ERR_AUTH},
    {E(ILLEGAL_SASL_STATE), CP_ERR_AUTH},
    {E(TOPIC_AUTHORIZATION_FAILED), CP_ERR_AUTH},
    {E(GROUP_AUTHORIZATION_FAILED), CP_ERR_AUTH},
    {E(CLUSTER_AUTHORIZATION_FAILED), CP_ERR_AUTH},
    {E(TRANSACTIONAL_ID_AUTHORIZATION_FAILED), CP_ERR_AUTH},
    {E(THROTTLING_QUOTA_EXCEEDED), CP_ERR_LIMIT},
    {E(MSG_SIZE_TOO_LARGE), CP_ERR_TOOBIG},
    {E(RECORD_LIST_TOO_LARGE), CP_ERR_TOOBIG},
    {E(INVALID_MSG_SIZE), CP_ERR_TOOBIG},
    {E(INVALID_RECORD), CP_ERR_INVAL},
    {E(INVALID_TIMESTAMP), CP_ERR_INVAL},
    {E(INVALID_REQUIRED_ACKS), CP_ERR_INVAL},
    {E(_INVALID_ARG), CP_ERR_INVAL},
    {E(_INVALID_TYPE), CP_ERR_INVAL},
    {E(_BAD_MSG), CP_ERR_PARSE},
    {E(_BAD_COMPRESSION), CP_ERR_PARSE},
    {E(INVALID_CONFIG), CP_ERR_CONFIG},
    {E(INVALID_GROUP_ID), CP_ERR_CONFIG},
    {E(INVALID_SESSION_TIMEOUT), CP_ERR_CONFIG},
    {E(TOPIC_EXCEPTION), CP_ERR_CONFIG},
    {E(UNSUPPORTED_VERSION), CP_ERR_CONFIG},
    {E(UNSUPPORTED_FOR_MESSAGE_FORMAT), CP_ERR_CONFIG},
    {E(UNSUPPORTED_COMPRESSION_TYPE), CP_ERR_CONFIG},
    {E(_UNSUPPORTED_FEATURE), CP_ERR_CONFIG},
    {E(_NOT_IMPLEMENTED), CP_ERR_CONFIG},
    {E(_NOT_CONFIGURED), CP_ERR_CONFIG},
    {E(_UNKNOWN_TOPIC), CP_ERR_NOTFOUND},
    {E(_UNKNOWN_PARTITION), CP_ERR_NOTFOUND},
    {E(UNKNOWN_TOPIC_OR_PART), CP_ERR_NOTFOUND},
    {E(_NOENT), CP_ERR_NOTFOUND},
    {E(TOPIC_ALREADY_EXISTS), CP_ERR_EXISTS},
    {E(_CONFLICT), CP_ERR_EXISTS},
    {E(_NO_OFFSET), CP_ERR_RANGE},
    {E(OFFSET_OUT_OF_RANGE), CP_ERR_RANGE},
    {E(_STATE), CP_ERR_STATE},
    {E(_PREV_IN_PROGRESS), CP_ERR_STATE},
};

#undef E

int cp_kafka_err(rd_kafka_resp_err_t err)
{
    for (size_t i = 0; i < CP_ARRAY_LEN(err_map); i++) {
        if (err_map[i].rk == err) return err_map[i].cp;
    }
    return CP_ERR_KAFKA;
}

int cp_kafka_error(const rd_kafka_error_t *error)
{
    if (!error) return 0;
    if (rd_kafka_error_is_fatal(error)) return CP_ERR_KAFKA_FATAL;
    int cp = cp_kafka_err(rd_kafka_error_code(error));
    /* librdkafka knows better for the case at hand (e.g. a transactional
     * call that may be repeated); keep the class, lose only the detail. */
    if (rd_kafka_error_is_retriable(error) && !cp_err_is_retriable(cp)) return CP_ERR_KAFKA;
    if (rd_kafka_error_txn_requires_abort(error) && cp_err_is_retriable(cp)) return CP_ERR_STATE;
    return cp;
}

int cp_kafka_fatal(rd_kafka_t *rk, char *errstr, size_t errlen)
{
    char tmp[1];
    if (!errstr || errlen == 0) {
        errstr = tmp;
        errlen = sizeof tmp;
    }
    errstr[0] = '\0';
    if (rd_kafka_fatal_error(rk, errstr, errlen) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return CP_ERR_KAFKA_FATAL;
    return 0;
}

enum cp_log_level cp_kafka_log_level(int syslog_level)
{
    if (syslog_level <= 3) /* emerg, alert, crit, err */
        return CP_LOG_ERROR;
    if (syslog_level == 4) return CP_LOG_WARN;
    if (syslog_level <= 6) /* notice, info */
        return CP_LOG_INFO;
    return CP_LOG_DEBUG;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    enum cp_log_level lvl = cp_kafka_log_level(level);
    if (lvl < cp_log_get_level()) return;
    char ident[160];
    snprintf(ident, sizeof ident, "kafka %s", rk ? rd_kafka_name(rk) : "?");
    cp_log(lvl, ident, "%s: %s", fac ? fac : "", buf ? buf : "");
}

/*
 * Without an error_cb librdkafka logs every error event a second time
 * (facility "ERROR"), doubling each connection failure already logged as
 * "FAIL".  Transport errors are left to that log line; everything else is
 * logged once here, fatal errors with their underlying reason.
 */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    char ident[160];
    snprintf(ident, sizeof ident, "kafka %s", rd_kafka_name(rk));
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, why, sizeof why);
        cp_error(ident, "fatal error: %s: %s", rd_kafka_err2name(orig), why);
    } else if (err == RD_KAFKA_RESP_ERR__TRANSPORT) {
        cp_debug(ident, "%s", reason);
    } else if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        cp_warn(ident, "%s", reason);
    } else {
        cp_error(ident, "%s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
    }
}

void cp_kafka_conf_set_log(rd_kafka_conf_t *conf)
{
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
}

int cp_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *errstr,
                      size_t errlen)
{
    char tmp[256];
    if (!errstr || errlen == 0) {
        errstr = tmp;
        errlen = sizeof tmp;
    }
    if (!key || !value) {
        snprintf(errstr, errlen, "missing key or value");
        return CP_ERR_CONFIG;
    }
    if (rd_kafka_conf_set(conf, key, value, errstr, errlen) != RD_KAFKA_CONF_OK)
        return CP_ERR_CONFIG;
    return 0;
}

int cp_kafka_conf_apply(rd_kafka_conf_t *conf, const char *kv, char *errstr, size_t errlen)
{
    char tmp[256];
    if (!errstr || errlen == 0) {
        errstr = tmp;
        errlen = sizeof tmp;
    }
    const char *eq = kv ? strchr(kv, '=') : NULL;
    if (!eq) {
        snprintf(errstr, errlen, "expected key=value, got \"%s\"", kv ? kv : "(null)");
        return CP_ERR_CONFIG;
    }
    const char *ks = kv, *ke = eq;
    while (ks < ke && isspace((unsigned char)*ks))
        ks++;
    while (ke > ks && isspace((unsigned char)ke[-1]))
        ke--;
    const char *vs = eq + 1, *ve = eq + strlen(eq);
    while (vs < ve && isspace((unsigned char)*vs))
        vs++;
    while (ve > vs && isspace((unsigned char)ve[-1]))
        ve--;
    char key[256], value[1024];
    if (ke == ks || (size_t)(ke - ks) >= sizeof key || (size_t)(ve - vs) >= sizeof value) {
        snprintf(errstr, errlen, "bad key=value line \"%s\"", kv);
        return CP_ERR_CONFIG;
    }
    memcpy(key, ks, (size_t)(ke - ks));
    key[ke - ks] = '\0';
    memcpy(value, vs, (size_t)(ve - vs));
    value[ve - vs] = '\0';
    return cp_kafka_conf_set(conf, key, value, errstr, errlen);
}

/* Set key to an integer when it is non-zero (zero keeps librdkafka's default). */
static int set_int(rd_kafka_conf_t *conf, const char *key, int v, char *errstr, size_t errlen)
{
    if (v == 0) return 0;
    char buf[32];
    snprintf(buf, sizeof buf, "%d", v);
    return cp_kafka_conf_set(conf, key, buf, errstr, errlen);
}

static int apply_extra(rd_kafka_conf_t *conf, const char *const *extra, size_t n, char *errstr,
                       size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        int rc = cp_kafka_conf_apply(conf, extra[i], errstr, errlen);
        if (rc < 0) return rc;
    }
    return 0;
}

rd_kafka_conf_t *cp_kafka_producer_conf(const struct cp_kafka_producer_opts *o, char *errstr,
                                        size_t errlen)
{
    char tmp[256];
    if (!errstr || errlen == 0) {
        errstr = tmp;
        errlen = sizeof tmp;
    }
    if (!o || !o->brokers || !*o->brokers) {
        snprintf(errstr, errlen, "kafka brokers not set");
        return NULL;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    cp_kafka_conf_set_log(conf);
    int linger = o->linger_ms == 0 ? 5 : (o->linger_ms < 0 ? 0 : o->linger_ms);
    int rc = 0;
    if (rc == 0) rc = cp_kafka_conf_set(conf, "bootstrap.servers", o->brokers, errstr, errlen);
    if (rc == 0)
        rc = cp_kafka_conf_set(conf, "client.id", o->client_id ? o->client_id : "callpipe", errstr,
                               errlen);
    if (rc == 0) rc = cp_kafka_conf_set(conf, "enable.idempotence", "true", errstr, errlen);
    if (rc == 0) rc = cp_kafka_conf_set(conf, "acks", "all", errstr, errlen);
    if (rc == 0)
        rc = cp_kafka_conf_set(conf, "compression.codec", o->compression ? o->compression : "lz4",
                               errstr, errlen);
    if (rc == 0) {
        char buf[32];
        snprintf(buf, sizeof buf, "%d", linger);
        rc = cp_kafka_conf_set(conf, "linger.ms", buf, errstr, errlen);
    }
    if (rc == 0)
        rc = set_int(conf, "queue.buffering.max.messages", o->queue_max_msgs, errstr, errlen);
    if (rc == 0)
        rc = set_int(conf, "queue.buffering.max.kbytes", o->queue_max_kbytes, errstr, errlen);
    if (rc == 0) rc = set_int(conf, "message.timeout.ms", o->message_timeout_ms, errstr, errlen);
    if (rc == 0) rc = apply_extra(conf, o->extra, o->extra_n, errstr, errlen);
    if (rc < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

rd_kafka_conf_t *cp_kafka_consumer_conf(const struct cp_kafka_consumer_opts *o, char *errstr,
                                        size_t errlen)
{
    char tmp[256];
    if (!errstr || errlen == 0) {
        errstr = tmp;
        errlen = sizeof tmp;
    }
    if (!o || !o->brokers || !*o->brokers) {
        snprintf(errstr, errlen, "kafka brokers not set");
        return NULL;
    }
    if (!o->group_id || !*o->group_id) {
        snprintf(errstr, errlen, "kafka consumer group not set");
        return NULL;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    cp_kafka_conf_set_log(conf);
    int rc = 0;
    if (rc == 0) rc = cp_kafka_conf_set(conf, "bootstrap.servers", o->brokers, errstr, errlen);
    if (rc == 0) rc = cp_kafka_conf_set(conf, "group.id", o->group_id, errstr, errlen);
    if (rc == 0)
        rc = cp_kafka_conf_set(conf, "client.id", o->client_id ? o->client_id : "callpipe", errstr,
                               errlen);
    if (rc == 0)
        rc = cp_kafka_conf_set(conf, "enable.auto.commit", o->auto_commit ? "true" : "false",
                               errstr, errlen);
    if (rc == 0) rc = cp_kafka_conf_set(conf, "enable.auto.offset.store", "false", errstr, errlen);
    if (rc == 0)
        rc = cp_kafka_conf_set(
            conf, "partition.assignment.strategy",
            o->assignment_strategy ? o->assignment_strategy : "cooperative-sticky", errstr, errlen);
    if (rc == 0)
        rc = cp_kafka_conf_set(conf, "auto.offset.reset",
                               o->auto_offset_reset ? o->auto_offset_reset : "earliest", errstr,
                               errlen);
    if (rc == 0) rc = set_int(conf, "session.timeout.ms", o->session_timeout_ms, errstr, errlen);
    if (rc == 0)
        rc = set_int(conf, "heartbeat.interval.ms", o->heartbeat_interval_ms, errstr, errlen);
    if (rc == 0) rc = apply_extra(conf, o->extra, o->extra_n, errstr, errlen);
    if (rc < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

static rd_kafka_t *client_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *errstr,
                              size_t errlen)
{
    char tmp[256];
    if (!errstr || errlen == 0) {
        errstr = tmp;
        errlen = sizeof tmp;
    }
    if (!conf) {
        snprintf(errstr, errlen, "no kafka configuration");
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, errlen);
    if (!rk) {
        /* rd_kafka_new keeps ownership with the caller on failure. */
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return rk;
}

rd_kafka_t *cp_kafka_producer_new(rd_kafka_conf_t *conf, char *errstr, size_t errlen)
{
    return client_new(RD_KAFKA_PRODUCER, conf, errstr, errlen);
}

rd_kafka_t *cp_kafka_consumer_new(rd_kafka_conf_t *conf, char *errstr, size_t errlen)
{
    rd_kafka_t *rk = client_new(RD_KAFKA_CONSUMER, conf, errstr, errlen);
    if (rk) rd_kafka_poll_set_consumer(rk);
    return rk;
}
