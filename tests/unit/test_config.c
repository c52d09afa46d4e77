/* test_config.c - unit tests of the table-driven config loader, its errors and secret handling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "cp_config.h"
#include "cp_err.h"

#define CANARY "canary-Secret-7f3a91"
#define FILE_SECRET "file-secret-c0ffee"

struct t_src {
    char *name;
    char *org;
    int format;
    char *listen;
    int32_t port;
    int64_t idle_ms;
    int64_t max_frame;
    bool tls;
    struct cp_secret token;
};

struct t_kafka {
    char *brokers;
    int64_t linger_ms;
};

struct t_cfg {
    char *service;
    int log_level;
    int64_t admin_port;
    struct t_kafka kafka;
    struct t_src *sources;
    size_t nsources;
    struct cp_secret db_password;
};

static const char *const formats[] = {"json", "smdr", "csv", NULL};
static const char *const levels[] = {"debug", "info", "warn", "error", NULL};

static const struct cp_config_field src_fields[] = {
    {CP_CFG_AT(struct t_src, name), CP_CFG_STRING, .flags = CP_CFG_REQUIRED, .help = "source id"},
    {CP_CFG_AT(struct t_src, org), CP_CFG_STRING, .flags = CP_CFG_REQUIRED, .help = "org tag"},
    {CP_CFG_AT(struct t_src, format), CP_CFG_ENUM, .enum_names = formats, .dflt = "json",
     .help = "record format"},
    {CP_CFG_AT(struct t_src, listen), CP_CFG_STRING, .dflt = "0.0.0.0", .help = "bind address"},
    {CP_CFG_AT(struct t_src, port), CP_CFG_INT, .dflt = "5000", .min = 1, .max = 65535,
     .help = "TCP port | listener"},
    {CP_CFG_AT_KEY("idle_timeout", struct t_src, idle_ms), CP_CFG_DURATION, .dflt = "30s",
     .min = 100, .max = 3600000, .help = "close idle connections"},
    {CP_CFG_AT(struct t_src, max_frame), CP_CFG_SIZE, .dflt = "16KiB", .help = "largest record"},
    {CP_CFG_AT(struct t_src, tls), CP_CFG_BOOL, .dflt = "false", .help = "require TLS"},
    {CP_CFG_AT(struct t_src, token), CP_CFG_SECRET, .help = "shared token"},
};
static const struct cp_config_table src_table = CP_CFG_TABLE(struct t_src, src_fields);

static const struct cp_config_field kafka_fields[] = {
    {CP_CFG_AT(struct t_kafka, brokers), CP_CFG_STRING, .dflt = "127.0.0.1:9092",
     .help = "bootstrap servers"},
    {CP_CFG_AT_KEY("linger", struct t_kafka, linger_ms), CP_CFG_DURATION, .dflt = "5ms",
     .help = "producer linger"},
};
static const struct cp_config_table kafka_table = CP_CFG_TABLE(struct t_kafka, kafka_fields);

static const struct cp_config_field top_fields[] = {
    {CP_CFG_AT(struct t_cfg, service), CP_CFG_STRING, .flags = CP_CFG_REQUIRED,
     .help = "service name"},
    {CP_CFG_AT(struct t_cfg, log_level), CP_CFG_ENUM, .enum_names = levels, .dflt = "info",
     .help = "log level"},
    {CP_CFG_AT(struct t_cfg, admin_port), CP_CFG_INT, .dflt = "9100", .min = 1, .max = 65535,
     .help = "admin port"},
    {CP_CFG_AT(struct t_cfg, kafka), CP_CFG_MAPPING, .sub = &kafka_table, .help = "Kafka"},
    {CP_CFG_LIST_AT(struct t_cfg, sources, nsources), CP_CFG_LIST, .sub = &src_table,
     .flags = CP_CFG_REQUIRED, .min = 1, .max = 64, .help = "listeners"},
    {CP_CFG_AT(struct t_cfg, db_password), CP_CFG_SECRET, .help = "PostgreSQL password"},
};
static const struct cp_config_table top_table = {
    .name = "test", .size = sizeof(struct t_cfg), .fields = top_fields,
    .nfields = CP_ARRAY_LEN(top_fields), .env_prefix = "CPTEST"};

static char tmp_paths[16][64];
static int ntmp;

static const char *write_tmp(const char *text)
{
    assert_true(ntmp < 16);
    char *p = tmp_paths[ntmp++];
    snprintf(p, 64, "/tmp/cp_config_XXXXXX.yaml");
    int fd = mkstemps(p, 5);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
    return p;
}

static int teardown(void **state)
{
    for (int i = 0; i < ntmp; i++)
        unlink(tmp_paths[i]);
    ntmp = 0;
    unsetenv("CPTEST_CANARY");
    unsetenv("CPTEST_DB_PASS");
    unsetenv("CPTEST_ADMIN_PORT");
    unsetenv("CPTEST_KAFKA_BROKERS");
    unsetenv("CPTEST_LOG_LEVEL");
    return 0;
}

/* Loads `yaml`, expects failure and returns the message (static buffer). */
static const char *load_err(const char *yaml, int want_rc)
{
    static char err[1024];
    struct t_cfg cfg;
    const char *path = write_tmp(yaml);
    int rc = cp_config_load(&top_table, path, &cfg, err, sizeof(err));
    assert_int_equal(rc, want_rc);
    /* a failed load leaves nothing behind */
    assert_null(cfg.service);
    assert_null(cfg.sources);
    assert_int_equal(cfg.nsources, 0);
    assert_non_null(strstr(err, path));
    assert_null(strstr(err, CANARY));
    assert_null(strstr(err, FILE_SECRET));
    return err;
}

static char *dump_to_string(const struct t_cfg *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    assert_non_null(m);
    cp_config_dump(&top_table, cfg, m);
    fclose(m);
    return buf;
}

static void test_valid_defaults(void **state)
{
    char secret_file[64] = "/tmp/cp_secret_XXXXXX", yaml[1024], err[512];
    int fd = mkstemp(secret_file);
    assert_true(fd >= 0);
    fchmod(fd, 0600);
    assert_int_equal(write(fd, FILE_SECRET "\n", strlen(FILE_SECRET) + 1),
                     (ssize_t)strlen(FILE_SECRET) + 1);
    close(fd);
    setenv("CPTEST_CANARY", CANARY, 1);
    snprintf(yaml, sizeof(yaml),
             "# ingest test config\n"
             "service: ingest\n"
             "kafka:\n"
             "  linger: 20ms\n"
             "sources:\n"
             "  - name: pbx1\n"
             "    org: acme\n"
             "    format: smdr\n"
             "    port: 6001\n"
             "    idle_timeout: 1m30s\n"
             "    max_frame: 64KiB\n"
             "    tls: yes\n"
             "    token: file:%s\n"
             "  - {name: pbx2, org: beta, max_frame: 10MB}\n"
             "db_password: env:CPTEST_CANARY\n",
             secret_file);
    struct t_cfg cfg;
    int rc = cp_config_load(&top_table, write_tmp(yaml), &cfg, err, sizeof(err));
    unlink(secret_file);
    assert_int_equal(rc, 0);
    assert_string_equal(cfg.service, "ingest");
    assert_int_equal(cfg.log_level, 1); /* default "info" */
    assert_int_equal(cfg.admin_port, 9100);
    assert_string_equal(cfg.kafka.brokers, "127.0.0.1:9092");
    assert_int_equal(cfg.kafka.linger_ms, 20);
    assert_int_equal(cfg.nsources, 2);
    struct t_src *a = &cfg.sources[0], *b = &cfg.sources[1];
    assert_string_equal(a->name, "pbx1");
    assert_string_equal(a->org, "acme");
    assert_int_equal(a->format, 1);
    assert_string_equal(a->listen, "0.0.0.0");
    assert_int_equal(a->port, 6001);
    assert_int_equal(a->idle_ms, 90000);
    assert_int_equal(a->max_frame, 65536);
    assert_true(a->tls);
    assert_string_equal(a->token.value, FILE_SECRET); /* one trailing newline trimmed */
    assert_int_equal(a->token.len, strlen(FILE_SECRET));
    assert_string_equal(b->name, "pbx2");
    assert_int_equal(b->format, 0);
    assert_int_equal(b->port, 5000);
    assert_int_equal(b->idle_ms, 30000);
    assert_int_equal(b->max_frame, 10000000);
    assert_false(b->tls);
    assert_null(b->token.ref);
    assert_null(b->token.value);
    assert_string_equal(cfg.db_password.value, CANARY);
    assert_string_equal(cfg.db_password.ref, "env:CPTEST_CANARY");

    char *dump = dump_to_string(&cfg);
    assert_non_null(strstr(dump, "db_password: <secret env:CPTEST_CANARY>\n"));
    assert_non_null(strstr(dump, "    token: <secret file:"));
    assert_non_null(strstr(dump, "  - name: \"pbx2\"\n"));
    assert_non_null(strstr(dump, "    idle_timeout: 90s\n"));
    assert_non_null(strstr(dump, "    max_frame: 64KiB\n"));
    assert_non_null(strstr(dump, "  linger: 20ms\n"));
    assert_null(strstr(dump, CANARY));
    assert_null(strstr(dump, FILE_SECRET));
    free(dump);

    cp_config_free(&top_table, &cfg);
    assert_null(cfg.sources);
    assert_null(cfg.db_password.value);
}

static void test_unknown_key(void **state)
{
    const char *err = load_err("service: ingest\n"
                               "kafka:\n"
                               "  brokers: \"k:9092\"\n"
                               "sources:\n"
                               "  - name: a\n"
                               "    org: acme\n"
                               "    listne: x\n",
                               CP_ERR_CONFIG);
    assert_non_null(strstr(err, ":7:5: unknown key \"listne\" in sources[0]; valid keys: "));
    for (size_t i = 0; i < src_table.nfields; i++)
        assert_non_null(strstr(err, src_table.fields[i].key));
    assert_non_null(strstr(err, "valid keys: name, org, format, listen, port, idle_timeout, "
                                "max_frame, tls, token"));

    err = load_err("service: ingest\nsourcse: []\n", CP_ERR_CONFIG);
    assert_non_null(strstr(err, ":2:1: unknown key \"sourcse\" at top level; valid keys: "
                                "service, log_level, admin_port, kafka, sources, db_password"));

    err = load_err("service: ingest\nkafka:\n  brokers: x\n  lingr: 5s\n", CP_ERR_CONFIG);
    assert_non_null(strstr(err, ":4:3: unknown key \"lingr\" in kafka; valid keys: brokers, "
                                "linger"));
}

static void test_duplicate_key(void **state)
{
    const char *err = load_err("service: a\nkafka: {}\nservice: b\n", CP_ERR_CONFIG);
    assert_non_null(strstr(err, ":3:1: duplicate key \"service\" at top level (first at line 1)"));
    assert_non_null(strstr(err, "valid keys: service, log_level"));

    err = load_err("service: a\nsources:\n  - name: a\n    org: b\n  - name: c\n    org: d\n"
                   "    name: e\n",
                   CP_ERR_CONFIG);
    assert_non_null(strstr(err, ":7:5: duplicate key \"name\" in sources[1] (first at line 5)"));
}

static void test_wrong_types(void **state)
{
    const char *err;
    err = load_err("service: a\nadmin_port: abc\nsources: [{name: a, org: b}]\n", CP_ERR_CONFIG);
    assert_non_null(
        strstr(err, ":2:13: invalid value for admin_port: expected an integer, got \"abc\""));

    err = load_err("service: a\nsources:\n  - name: a\n    org: b\n    port: 70000\n",
                   CP_ERR_CONFIG);
    assert_non_null(strstr(err, ":5:11: invalid value for sources[0].port: \"70000\" is out of "
                                "range [1, 65535]"));

    err = load_err("service: a\nsources:\n  - name: a\n    org: b\n    idle_timeout: 5 parsecs\n",
                   CP_ERR_CONFIG);
    assert_non_null(strstr(err, ":5:19: invalid value for sources[0].idle_timeout: expected a "
                                "duration"));
    assert_non_null(strstr(err, "got \"5 parsecs\""));

    err = load_err("service: a\nsources:\n  - name: a\n    org: b\n    idle_timeout: 2h\n",
                   CP_ERR_CONFIG);
    assert_non_null(strstr(err, "\"2h\" is out of range [100ms, 1h]"));

    err = load_err("service: a\nsources:\n  - name: a\n    org: b\n    format: xml\n",
                   CP_ERR_CONFIG);
    assert_non_null(strstr(err, ":5:13: invalid value for sources[0].format: \"xml\" is not one "
                                "of the allowed values: json, smdr, csv"));

    err = load_err("service: a\nsources:\n  - name: a\n    org: b\n    tls: maybe\n",
                   CP_ERR_CONFIG);
    assert_non_null(strstr(err, ":5:10: invalid value for sources[0].tls: expected a boolean"));

    err = load_err("service: a\nkafka: [x]\n", CP_ERR_CONFIG);
    assert_non_null(strstr(err, ":2:8: key \"kafka\" at top level expects a mapping, got a list"));

    err = load_err("service: [a, b]\n", CP_ERR_CONFIG);
    assert_non_null(strstr(err, ":1:10: key \"service\" at top level expects a string value, "
                                "got a list"));

    err = load_err("service: a\nsources:\n  - just-a-string\n", CP_ERR_CONFIG);
    assert_non_null(strstr(err, ":3:5: each entry of sources must be a mapping, got a scalar"));

    err = load_err("service: \"a\nsources: []\n", CP_ERR_CONFIG);
    assert_non_null(strstr(err, "yaml syntax error"));
}

static void test_missing_required(void **state)
{
    const char *err;
    err = load_err("service: a\nsources:\n  - name: a\n    org: b\n  - org: c\n    port: 7\n",
                   CP_ERR_CONFIG);
    assert_non_null(strstr(err, ":5:5: missing required key \"name\" in sources[1]"));

    err = load_err("kafka: {}\nsources: [{name: a, org: b}]\n", CP_ERR_CONFIG);
    assert_non_null(strstr(err, ":1:1: missing required key \"service\" at top level"));

    err = load_err("service: a\n", CP_ERR_CONFIG);
    assert_non_null(strstr(err, "missing required key \"sources\" at top level"));

    err = load_err("service: a\nsources:\n", CP_ERR_CONFIG);
    assert_non_null(strstr(err, "missing required key \"sources\" at top level"));

    err = load_err("service: a\nsources: []\n", CP_ERR_CONFIG);
    assert_non_null(strstr(err, ":2:10: sources has 0 entries; allowed 1..64"));

    err = load_err("", CP_ERR_CONFIG);
    assert_non_null(strstr(err, ": missing required key \"service\" at top level"));

    /* explicit null counts as absent */
    err = load_err("service: ~\nsources: [{name: a, org: b}]\n", CP_ERR_CONFIG);
    assert_non_null(strstr(err, "missing required key \"service\""));
}

static void test_secret_env_unset(void **state)
{
    setenv("CPTEST_CANARY", CANARY, 1);
    unsetenv("CPTEST_NOT_SET_ANYWHERE");
    const char *err = load_err("service: a\n"
                               "sources:\n"
                               "  - name: a\n"
                               "    org: b\n"
                               "    token: env:CPTEST_CANARY\n"
                               "db_password: env:CPTEST_NOT_SET_ANYWHERE\n",
                               CP_ERR_SECRET);
    assert_non_null(strstr(err, ":6:14: could not resolve secret db_password: environment "
                                "variable CPTEST_NOT_SET_ANYWHERE is not set"));
    assert_null(strstr(err, CANARY));
}

static void test_secret_literal_refused(void **state)
{
    const char *err = load_err("service: a\nsources: [{name: a, org: b}]\n"
                               "db_password: hunter2-literal\n",
                               CP_ERR_SECRET);
    assert_non_null(strstr(err, ":3:14: db_password is a secret: write env:NAME or file:PATH"));
    assert_null(strstr(err, "hunter2"));

    err = load_err("service: a\nsources: [{name: a, org: b, token: \"file:/nonexistent/x\"}]\n",
                   CP_ERR_SECRET);
    assert_non_null(strstr(err, "could not open secret file \"/nonexistent/x\""));
}

static void test_env_override(void **state)
{
    char err[512];
    struct t_cfg cfg;
    setenv("CPTEST_ADMIN_PORT", "9999", 1);
    setenv("CPTEST_KAFKA_BROKERS", "kafka-1:9092,kafka-2:9092", 1);
    const char *path = write_tmp("service: a\nadmin_port: 1234\nsources: [{name: a, org: b}]\n");
    assert_int_equal(cp_config_load(&top_table, path, &cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.admin_port, 9999);
    assert_string_equal(cfg.kafka.brokers, "kafka-1:9092,kafka-2:9092");
    cp_config_free(&top_table, &cfg);

    setenv("CPTEST_LOG_LEVEL", "loud", 1);
    assert_int_equal(cp_config_load(&top_table, path, &cfg, err, sizeof(err)), CP_ERR_CONFIG);
    assert_non_null(strstr(err, "(environment CPTEST_LOG_LEVEL): invalid value for log_level: "
                                "\"loud\" is not one of the allowed values: debug, info, warn, "
                                "error"));
}

static void test_secret_resolve(void **state)
{
    char out[16], err[256];
    size_t len = 0;
    setenv("CPTEST_CANARY", CANARY, 1);
    assert_int_equal(cp_secret_resolve("env:CPTEST_CANARY", out, sizeof(out), &len, err,
                                       sizeof(err)),
                     CP_ERR_TOOBIG);
    assert_null(strstr(err, CANARY));
    char big[64];
    assert_int_equal(
        cp_secret_resolve("env:CPTEST_CANARY", big, sizeof(big), &len, err, sizeof(err)), 0);
    assert_string_equal(big, CANARY);
    assert_int_equal(len, strlen(CANARY));
    assert_int_equal(cp_secret_resolve("env:CPTEST_NOPE", big, sizeof(big), &len, err,
                                       sizeof(err)),
                     CP_ERR_SECRET);
    assert_string_equal(err, "environment variable CPTEST_NOPE is not set");
    assert_int_equal(cp_secret_resolve("plain", big, sizeof(big), &len, err, sizeof(err)),
                     CP_ERR_INVAL);
    assert_null(strstr(err, "plain"));
}

static void test_parsers(void **state)
{
    int64_t v;
    assert_int_equal(cp_config_parse_duration("250ms", &v), 0);
    assert_int_equal(v, 250);
    assert_int_equal(cp_config_parse_duration("5s", &v), 0);
    assert_int_equal(v, 5000);
    assert_int_equal(cp_config_parse_duration("2m", &v), 0);
    assert_int_equal(v, 120000);
    assert_int_equal(cp_config_parse_duration("1h30m", &v), 0);
    assert_int_equal(v, 5400000);
    assert_int_equal(cp_config_parse_duration("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(cp_config_parse_duration("5", &v), CP_ERR_PARSE);
    assert_int_equal(cp_config_parse_duration("-5s", &v), CP_ERR_PARSE);
    assert_int_equal(cp_config_parse_duration("", &v), CP_ERR_PARSE);
    assert_int_equal(cp_config_parse_duration("99999999999999999999s", &v), CP_ERR_RANGE);
    assert_int_equal(cp_config_parse_size("64KiB", &v), 0);
    assert_int_equal(v, 65536);
    assert_int_equal(cp_config_parse_size("10MB", &v), 0);
    assert_int_equal(v, 10000000);
    assert_int_equal(cp_config_parse_size("512", &v), 0);
    assert_int_equal(v, 512);
    assert_int_equal(cp_config_parse_size("1GiB", &v), 0);
    assert_int_equal(v, INT64_C(1) << 30);
    assert_int_equal(cp_config_parse_size("1.5MB", &v), CP_ERR_PARSE);
    assert_int_equal(cp_config_parse_size("10MBx", &v), CP_ERR_PARSE);
    bool b;
    assert_int_equal(cp_config_parse_bool("On", &b), 0);
    assert_true(b);
    assert_int_equal(cp_config_parse_bool("no", &b), 0);
    assert_false(b);
    assert_int_equal(cp_config_parse_bool("2", &b), CP_ERR_PARSE);
}

static void test_doc_markdown(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    cp_config_doc_markdown(&top_table, m);
    fclose(m);
    assert_non_null(strstr(buf, "| key | type | default | bounds | description |\n"));
    assert_non_null(strstr(buf, "| `service` | string | **required** |  | service name |\n"));
    assert_non_null(strstr(buf, "| `sources[]` | list of mappings | **required** | 1..64 entries "
                                "| listeners |\n"));
    assert_non_null(strstr(buf, "| `sources[].port` | integer | `5000` | 1..65535 | TCP port \\| "
                                "listener |\n"));
    assert_non_null(strstr(buf, "| `sources[].idle_timeout` | duration | `30s` | 100ms..1h |"));
    assert_non_null(strstr(buf, "| `sources[].format` | enum: json, smdr, csv | `json` |"));
    assert_non_null(strstr(buf, "| `kafka.linger` | duration | `5ms` |"));
    assert_non_null(strstr(buf, "`CPTEST_<KEY>`"));
    free(buf);
}

struct t_bad {
    int64_t x;
    bool s;
};
static const struct cp_config_field bad_fields[] = {
    {CP_CFG_AT(struct t_bad, s), CP_CFG_INT, .help = "wrong C type for an integer"},
};
static const struct cp_config_field bad_dflt_fields[] = {
    {CP_CFG_AT(struct t_bad, x), CP_CFG_DURATION, .dflt = "soon"},
};

static void test_table_check(void **state)
{
    char err[256];
    struct cp_config_table bad = CP_CFG_TABLE(struct t_bad, bad_fields);
    assert_int_equal(cp_config_table_check(&bad, err, sizeof(err)), CP_ERR_INTERNAL);
    assert_non_null(strstr(err, "key s: C member has the wrong size for a integer"));
    struct cp_config_table bad2 = CP_CFG_TABLE(struct t_bad, bad_dflt_fields);
    assert_int_equal(cp_config_table_check(&bad2, err, sizeof(err)), CP_ERR_INTERNAL);
    assert_non_null(strstr(err, "default of x: expected a duration"));
    assert_int_equal(cp_config_table_check(&top_table, err, sizeof(err)), 0);
}

static void test_check_main(void **state)
{
    char *obuf = NULL, *ebuf = NULL;
    size_t olen = 0, elen = 0;
    setenv("CPTEST_CANARY", CANARY, 1);
    const char *good = write_tmp("service: a\nsources: [{name: a, org: b}]\n"
                                 "db_password: env:CPTEST_CANARY\n");
    const char *bad = write_tmp("service: a\nsources: [{name: a, org: b, prot: 1}]\n");
    FILE *o = open_memstream(&obuf, &olen), *e = open_memstream(&ebuf, &elen);
    assert_int_equal(cp_config_check_main(&top_table, good, o, e), 0);
    assert_int_equal(cp_config_check_main(&top_table, bad, o, e), 2);
    fclose(o);
    fclose(e);
    assert_true(strncmp(obuf, "config ok: ", 11) == 0);
    assert_non_null(strstr(obuf, "db_password: <secret env:CPTEST_CANARY>"));
    assert_null(strstr(obuf, CANARY));
    assert_non_null(strstr(ebuf, ":2:29: unknown key \"prot\" in sources[0]"));
    free(obuf);
    free(ebuf);

    char err[256];
    struct t_cfg cfg;
    assert_int_equal(cp_config_load(&top_table, "/nonexistent/cfg.yaml", &cfg, err, sizeof(err)),
                     CP_ERR_CONFIG);
    assert_non_null(strstr(err, "could not open config file \"/nonexistent/cfg.yaml\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_valid_defaults, teardown),
        cmocka_unit_test_teardown(test_unknown_key, teardown),
        cmocka_unit_test_teardown(test_duplicate_key, teardown),
        cmocka_unit_test_teardown(test_wrong_types, teardown),
        cmocka_unit_test_teardown(test_missing_required, teardown),
        cmocka_unit_test_teardown(test_secret_env_unset, teardown),
        cmocka_unit_test_teardown(test_secret_literal_refused, teardown),
        cmocka_unit_test_teardown(test_env_override, teardown),
        cmocka_unit_test_teardown(test_secret_resolve, teardown),
        cmocka_unit_test_teardown(test_parsers, teardown),
        cmocka_unit_test_teardown(test_doc_markdown, teardown),
        cmocka_unit_test_teardown(test_table_check, teardown),
        cmocka_unit_test_teardown(test_check_main, teardown),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
