/* test_syslog.c - RFC 5424 and RFC 3164 header splitting, as logger(1), rsyslog and PBXs send it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "cp_err.h"
#include "cp_syslog.h"

static struct cp_syslog_msg parse_ok(const char *s)
{
    struct cp_syslog_msg m;
    const char *why = NULL;
    int rc = cp_syslog_parse(s, strlen(s), &m, &why);
    if (rc != 0)
        fail_msg("parse failed: %s", why);
    return m;
}

#define assert_field(p, n, want)                                                                   \
    do {                                                                                           \
        assert_int_equal((n), strlen(want));                                                       \
        assert_memory_equal((p), (want), (n));                                                     \
    } while (0)

static void test_rfc5424(void **state)
{
    struct cp_syslog_msg m = parse_ok("<134>1 2026-11-26T10:00:00.123Z pbx1 cdr 42 CDR "
                                      "[meta x=\"a\\\"]b\"][y z=\"1\"] {\"kind\":\"cdr\"}\n");
    assert_int_equal(m.version, 1);
    assert_int_equal(m.facility, 16);
    assert_int_equal(m.severity, 6);
    assert_field(m.timestamp, m.timestamp_len, "2026-11-26T10:00:00.123Z");
    assert_field(m.hostname, m.hostname_len, "pbx1");
    assert_field(m.app, m.app_len, "cdr");
    assert_field(m.msg, m.msg_len, "{\"kind\":\"cdr\"}");
}

static void test_rfc5424_nil_and_bom(void **state)
{
    struct cp_syslog_msg m = parse_ok("<13>1 - - - - - - \xEF\xBB\xBFhello");
    assert_null(m.timestamp);
    assert_null(m.hostname);
    assert_field(m.msg, m.msg_len, "hello");
    m = parse_ok("<13>1 - host app - - -");
    assert_int_equal(m.msg_len, 0);
}

static void test_rfc3164(void **state)
{
    /* What `logger -n 127.0.0.1 --rfc3164` sends. */
    struct cp_syslog_msg m = parse_ok("<13>Nov 26 19:00:05 pbx-eu-1 asterisk[1234]: a,b,c");
    assert_int_equal(m.version, 0);
    assert_field(m.timestamp, m.timestamp_len, "Nov 26 19:00:05");
    assert_field(m.hostname, m.hostname_len, "pbx-eu-1");
    assert_field(m.app, m.app_len, "asterisk");
    assert_field(m.msg, m.msg_len, "a,b,c");
    /* Day padded with a space, no hostname, tag without pid. */
    m = parse_ok("<13>Nov  6 09:00:05 smdr: 2026/11/06 09:00:05,00:00:10");
    assert_null(m.hostname);
    assert_field(m.app, m.app_len, "smdr");
    assert_field(m.msg, m.msg_len, "2026/11/06 09:00:05,00:00:10");
    /* Nothing after PRI but the payload. */
    m = parse_ok("<14>{\"a\":1}");
    assert_null(m.app);
    assert_field(m.msg, m.msg_len, "{\"a\":1}");
}

static void test_rejects(void **state)
{
    struct cp_syslog_msg m;
    const char *why = NULL;
    const char *bad[] = {"no pri", "<>x", "<192>x", "<1234>x", "<013>x", "<13", "<13>1 a b",
                         "<13>1 - h a p m [unterminated"};
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        assert_int_equal(cp_syslog_parse(bad[i], strlen(bad[i]), &m, &why), CP_ERR_PARSE);
        assert_non_null(why);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc5424),
        cmocka_unit_test(test_rfc5424_nil_and_bom),
        cmocka_unit_test(test_rfc3164),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
