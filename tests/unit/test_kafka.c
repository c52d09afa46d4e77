/* test_kafka.c - unit tests of cp_kafka: config builders, constructors and error mapping (no
 * broker). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cp_err.h"
#include "cp_kafka.h"
#include "cp_log.h"

/* Nothing listens on port 1, so clients created here never reach a broker. */
#define NOBROKER "127.0.0.1:1"

static void assert_prop(rd_kafka_conf_t *conf, const char *key, const char *want)
{
    char val[512];
    size_t len = sizeof val;
    if (rd_kafka_conf_get(conf, key, val, &len) != RD_KAFKA_CONF_OK)
        fail_msg("property %s not readable", key);
    if (strcmp(val, want) != 0) fail_msg("property %s: got \"%s\", want \"%s\"", key, val, want);
}

static void test_producer_conf_defaults(void **state)
{
    char errstr[256];
    struct cp_kafka_producer_opts o = {.brokers = "k1:9092,k2:9092"};
    rd_kafka_conf_t *conf = cp_kafka_producer_conf(&o, errstr, sizeof errstr);
    assert_non_null(conf);
    assert_prop(conf, "bootstrap.servers", "k1:9092,k2:9092");
    assert_prop(conf, "client.id", "callpipe");
    assert_prop(conf, "enable.idempotence", "true");
    assert_prop(conf, "acks", "-1");
    assert_prop(conf, "compression.codec", "lz4");
    assert_prop(conf, "linger.ms", "5");
    assert_prop(conf, "queue.buffering.max.messages", "100000");
    assert_prop(conf, "message.timeout.ms", "300000");
    rd_kafka_conf_destroy(conf);
}

static void test_producer_conf_options_and_extra(void **state)
{
    char errstr[256];
    const char *extra[] = {"  linger.ms =  20 ", "statistics.interval.ms=1000"};
    struct cp_kafka_producer_opts o = {
        .brokers = "k1:9092",
        .client_id = "ingest-eu-1",
        .compression = "zstd",
        .linger_ms = 50,
        .queue_max_msgs = 5000,
        .queue_max_kbytes = 2048,
        .message_timeout_ms = 30000,
        .extra = extra,
        .extra_n = 2,
    };
    rd_kafka_conf_t *conf = cp_kafka_producer_conf(&o, errstr, sizeof errstr);
    assert_non_null(conf);
    assert_prop(conf, "client.id", "ingest-eu-1");
    assert_prop(conf, "compression.codec", "zstd");
    assert_prop(conf, "linger.ms", "20"); /* extra wins over the option */
    assert_prop(conf, "queue.buffering.max.messages", "5000");
    assert_prop(conf, "queue.buffering.max.kbytes", "2048");
    assert_prop(conf, "message.timeout.ms", "30000");
    assert_prop(conf, "statistics.interval.ms", "1000");
    rd_kafka_conf_destroy(conf);

    struct cp_kafka_producer_opts nolinger = {.brokers = "k1:9092", .linger_ms = -1};
    conf = cp_kafka_producer_conf(&nolinger, errstr, sizeof errstr);
    assert_non_null(conf);
    assert_prop(conf, "linger.ms", "0");
    rd_kafka_conf_destroy(conf);
}

static void test_producer_conf_errors(void **state)
{
    char errstr[256];
    struct cp_kafka_producer_opts none = {0};
    assert_null(cp_kafka_producer_conf(&none, errstr, sizeof errstr));
    assert_string_equal(errstr, "kafka brokers not set");
    assert_null(cp_kafka_producer_conf(NULL, errstr, sizeof errstr));

    const char *nokv[] = {"linger.ms"};
    struct cp_kafka_producer_opts o = {.brokers = "k1:9092", .extra = nokv, .extra_n = 1};
    assert_null(cp_kafka_producer_conf(&o, errstr, sizeof errstr));
    assert_string_equal(errstr, "expected key=value, got \"linger.ms\"");

    const char *nokey[] = {" =5"};
    o.extra = nokey;
    assert_null(cp_kafka_producer_conf(&o, errstr, sizeof errstr));
    assert_string_equal(errstr, "bad key=value line \" =5\"");

    const char *unknown[] = {"no.such.property=1"};
    o.extra = unknown;
    assert_null(cp_kafka_producer_conf(&o, errstr, sizeof errstr));
    assert_non_null(strstr(errstr, "no.such.property"));

    struct cp_kafka_producer_opts badcodec = {.brokers = "k1:9092", .compression = "bogus"};
    assert_null(cp_kafka_producer_conf(&badcodec, errstr, sizeof errstr));
    assert_non_null(strstr(errstr, "bogus"));

    /* A NULL errstr is allowed everywhere. */
    assert_null(cp_kafka_producer_conf(&none, NULL, 0));
}

static void test_conf_apply(void **state)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(cp_kafka_conf_apply(conf, "\tclient.id = a b ", errstr, sizeof errstr), 0);
    assert_prop(conf, "client.id", "a b");
    assert_int_equal(cp_kafka_conf_apply(conf, "socket.timeout.ms=abc", errstr, sizeof errstr),
                     CP_ERR_CONFIG);
    assert_int_equal(cp_kafka_conf_apply(conf, NULL, errstr, sizeof errstr), CP_ERR_CONFIG);
    assert_int_equal(cp_kafka_conf_set(conf, "linger.ms", "7", NULL, 0), 0);
    assert_prop(conf, "linger.ms", "7");
    assert_int_equal(cp_kafka_conf_set(conf, "linger.ms", NULL, errstr, sizeof errstr),
                     CP_ERR_CONFIG);
    rd_kafka_conf_destroy(conf);
}

static void test_consumer_conf(void **state)
{
    char errstr[256];
    struct cp_kafka_consumer_opts o = {
        .brokers = "k1:9092",
        .group_id = "callpipe-aggregator",
        .session_timeout_ms = 6000,
        .heartbeat_interval_ms = 500,
    };
    rd_kafka_conf_t *conf = cp_kafka_consumer_conf(&o, errstr, sizeof errstr);
    assert_non_null(conf);
    assert_prop(conf, "group.id", "callpipe-aggregator");
    assert_prop(conf, "enable.auto.commit", "false");
    assert_prop(conf, "enable.auto.offset.store", "false");
    assert_prop(conf, "partition.assignment.strategy", "cooperative-sticky");
    assert_prop(conf, "auto.offset.reset", "smallest"); /* librdkafka's name for earliest */
    assert_prop(conf, "session.timeout.ms", "6000");
    assert_prop(conf, "heartbeat.interval.ms", "500");
    rd_kafka_conf_destroy(conf);

    const char *extra[] = {"enable.auto.offset.store=true"};
    struct cp_kafka_consumer_opts o2 = {
        .brokers = "k1:9092",
        .group_id = "g",
        .auto_commit = true,
        .assignment_strategy = "range",
        .auto_offset_reset = "latest",
        .extra = extra,
        .extra_n = 1,
    };
    conf = cp_kafka_consumer_conf(&o2, errstr, sizeof errstr);
    assert_non_null(conf);
    assert_prop(conf, "enable.auto.commit", "true");
    assert_prop(conf, "enable.auto.offset.store", "true");
    assert_prop(conf, "partition.assignment.strategy", "range");
    assert_prop(conf, "auto.offset.reset", "largest");
    assert_prop(conf, "session.timeout.ms", "45000");
    rd_kafka_conf_destroy(conf);

    struct cp_kafka_consumer_opts nogroup = {.brokers = "k1:9092"};
    assert_null(cp_kafka_consumer_conf(&nogroup, errstr, sizeof errstr));
    assert_string_equal(errstr, "kafka consumer group not set");
    struct cp_kafka_consumer_opts nobrokers = {.group_id = "g"};
    assert_null(cp_kafka_consumer_conf(&nobrokers, errstr, sizeof errstr));
    assert_string_equal(errstr, "kafka brokers not set");
}

static void test_producer_new(void **state)
{
    char errstr[512];
    struct cp_kafka_producer_opts o = {.brokers = NOBROKER};
    rd_kafka_conf_t *conf = cp_kafka_producer_conf(&o, errstr, sizeof errstr);
    assert_non_null(conf);
    rd_kafka_t *rk = cp_kafka_producer_new(conf, errstr, sizeof errstr);
    assert_non_null(rk);
    assert_int_equal(cp_kafka_fatal(rk, errstr, sizeof errstr), 0);
    assert_string_equal(errstr, "");
    rd_kafka_destroy(rk);

    /* Idempotence allows at most 5 requests in flight: creation must fail,
     * and the conf is consumed anyway (ASan builds would report a leak). */
    const char *extra[] = {"max.in.flight=10"};
    o.extra = extra;
    o.extra_n = 1;
    conf = cp_kafka_producer_conf(&o, errstr, sizeof errstr);
    assert_non_null(conf);
    assert_null(cp_kafka_producer_new(conf, errstr, sizeof errstr));
    assert_non_null(strstr(errstr, "max.in.flight"));

    assert_null(cp_kafka_producer_new(NULL, errstr, sizeof errstr));
    assert_string_equal(errstr, "no kafka configuration");
}

static void test_consumer_new(void **state)
{
    char errstr[512];
    struct cp_kafka_consumer_opts o = {.brokers = NOBROKER, .group_id = "g"};
    rd_kafka_conf_t *conf = cp_kafka_consumer_conf(&o, errstr, sizeof errstr);
    assert_non_null(conf);
    rd_kafka_t *rk = cp_kafka_consumer_new(conf, errstr, sizeof errstr);
    assert_non_null(rk);
    assert_int_equal(rd_kafka_type(rk), RD_KAFKA_CONSUMER);
    rd_kafka_destroy(rk);

    /* A conflict librdkafka only finds at creation: the conf is consumed anyway. */
    const char *extra[] = {"fetch.max.bytes=200000000", "receive.message.max.bytes=100000000"};
    struct cp_kafka_consumer_opts bad = {
        .brokers = NOBROKER, .group_id = "g", .extra = extra, .extra_n = 2};
    conf = cp_kafka_consumer_conf(&bad, errstr, sizeof errstr);
    assert_non_null(conf);
    assert_null(cp_kafka_consumer_new(conf, errstr, sizeof errstr));
    assert_non_null(strstr(errstr, "fetch.max.bytes"));
}

static void test_err_map(void **state)
{
    static const struct {
        rd_kafka_resp_err_t rk;
        int cp;
        bool retriable;
    } cases[] = {
        {RD_KAFKA_RESP_ERR_NO_ERROR, 0, false},
        {RD_KAFKA_RESP_ERR__FATAL, CP_ERR_KAFKA_FATAL, false},
        {RD_KAFKA_RESP_ERR_PRODUCER_FENCED, CP_ERR_KAFKA_FATAL, false},
        {RD_KAFKA_RESP_ERR__FENCED, CP_ERR_KAFKA_FATAL, false},
        {RD_KAFKA_RESP_ERR__GAPLESS_GUARANTEE, CP_ERR_KAFKA_FATAL, false},
        {RD_KAFKA_RESP_ERR__QUEUE_FULL, CP_ERR_FULL, true},
        {RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, CP_ERR_TIMEOUT, true},
        {RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, CP_ERR_TIMEOUT, true},
        {RD_KAFKA_RESP_ERR__TRANSPORT, CP_ERR_CONN, true},
        {RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, CP_ERR_CONN, true},
        {RD_KAFKA_RESP_ERR__PURGE_QUEUE, CP_ERR_AGAIN, true},
        {RD_KAFKA_RESP_ERR__PURGE_INFLIGHT, CP_ERR_AGAIN, true},
        {RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, CP_ERR_KAFKA, true},
        {RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, CP_ERR_KAFKA, true},
        {RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, CP_ERR_KAFKA, true},
        {RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE, CP_ERR_KAFKA, true},
        {RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, CP_ERR_AUTH, false},
        {RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED, CP_ERR_AUTH, false},
        {RD_KAFKA_RESP_ERR__SSL, CP_ERR_TLS, false},
        {RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, CP_ERR_TOOBIG, false},
        {RD_KAFKA_RESP_ERR_INVALID_RECORD, CP_ERR_INVAL, false},
        {RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, CP_ERR_NOTFOUND, false},
        {RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, CP_ERR_NOTFOUND, false},
        {RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION, CP_ERR_CONFIG, false},
        {RD_KAFKA_RESP_ERR__DESTROY, CP_ERR_SHUTDOWN, false},
        {RD_KAFKA_RESP_ERR_THROTTLING_QUOTA_EXCEEDED, CP_ERR_LIMIT, true},
        {RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE, CP_ERR_RANGE, false},
    };
    for (size_t i = 0; i < CP_ARRAY_LEN(cases); i++) {
        int got = cp_kafka_err(cases[i].rk);
        if (got != cases[i].cp)
            fail_msg("%s: got %s, want %s", rd_kafka_err2name(cases[i].rk), cp_err_name(got),
                     cp_err_name(cases[i].cp));
        if (got != 0 && cp_err_is_retriable(got) != cases[i].retriable)
            fail_msg("%s: retriable is %d", rd_kafka_err2name(cases[i].rk), !cases[i].retriable);
    }
}

static void test_error_object_map(void **state)
{
    assert_int_equal(cp_kafka_error(NULL), 0);
    rd_kafka_error_t *e = rd_kafka_error_new(RD_KAFKA_RESP_ERR_NOT_COORDINATOR, "moved");
    assert_int_equal(cp_kafka_error(e), CP_ERR_KAFKA);
    rd_kafka_error_destroy(e);
    e = rd_kafka_error_new(RD_KAFKA_RESP_ERR__FATAL, "gone");
    assert_int_equal(cp_kafka_error(e), CP_ERR_KAFKA_FATAL);
    rd_kafka_error_destroy(e);
    e = rd_kafka_error_new(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, "denied");
    assert_int_equal(cp_kafka_error(e), CP_ERR_AUTH);
    rd_kafka_error_destroy(e);
}

static void test_log_level(void **state)
{
    static const enum cp_log_level want[8] = {CP_LOG_ERROR, CP_LOG_ERROR, CP_LOG_ERROR,
                                              CP_LOG_ERROR, CP_LOG_WARN,  CP_LOG_INFO,
                                              CP_LOG_INFO,  CP_LOG_DEBUG};
    for (int i = 0; i < 8; i++)
        assert_int_equal(cp_kafka_log_level(i), want[i]);
}

int main(void)
{
    /* Clients created here log connection failures to 127.0.0.1:1; keep the output quiet. */
    cp_log_set_level(CP_LOG_FATAL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_producer_conf_defaults),
        cmocka_unit_test(test_producer_conf_options_and_extra),
        cmocka_unit_test(test_producer_conf_errors),
        cmocka_unit_test(test_conf_apply),
        cmocka_unit_test(test_consumer_conf),
        cmocka_unit_test(test_producer_new),
        cmocka_unit_test(test_consumer_new),
        cmocka_unit_test(test_err_map),
        cmocka_unit_test(test_error_object_map),
        cmocka_unit_test(test_log_level),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
