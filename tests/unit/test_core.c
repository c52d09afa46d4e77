/* test_core.c - unit tests of the small core pieces: errors, arena, time, UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cp_arena.h"
#include "cp_err.h"
#include "cp_map.h"
#include "cp_time.h"
#include "cp_utf8.h"

static void test_err_table(void **state)
{
    assert_string_equal(cp_err_name(CP_ERR_PARSE), "CP_ERR_PARSE");
    assert_string_equal(cp_err_str(CP_ERR_TIMEOUT), "timed out");
    assert_true(cp_err_is_retriable(CP_ERR_CONN));
    assert_true(cp_err_is_retriable(CP_ERR_KAFKA));
    assert_false(cp_err_is_retriable(CP_ERR_PARSE));
    assert_false(cp_err_is_retriable(CP_ERR_KAFKA_FATAL));
    assert_false(cp_err_is_retriable(-9999));
    assert_string_equal(cp_err_name(-9999), "CP_ERR_UNKNOWN");
}

static void test_arena(void **state)
{
    struct cp_arena a;
    cp_arena_init(&a, 64, 1024);
    char *s = cp_arena_strndup(&a, "hello world", 5);
    assert_string_equal(s, "hello");
    assert_int_equal((uintptr_t)s % 16, 0);
    /* Larger than a block: gets its own block. */
    void *big = cp_arena_alloc(&a, 500);
    assert_non_null(big);
    memset(big, 0xab, 500);
    /* Over the limit: NULL, not a crash or an unbounded allocation. */
    assert_null(cp_arena_alloc(&a, 600));
    assert_true(cp_arena_used(&a) <= 1024);
    cp_arena_reset(&a);
    assert_int_equal(cp_arena_used(&a), 0);
    assert_non_null(cp_arena_alloc(&a, 900));
    cp_arena_destroy(&a);
}

static void test_time_format_parse(void **state)
{
    char buf[40];
    cp_time_format_iso(1700000000123456, buf, sizeof buf);
    assert_string_equal(buf, "2023-11-14T22:13:20.123456Z");
    cp_time_format_iso_ms(1700000000123456, buf, sizeof buf);
    assert_string_equal(buf, "2023-11-14T22:13:20.123Z");
    cp_time_format_iso(-1, buf, sizeof buf);
    assert_string_equal(buf, "1969-12-31T23:59:59.999999Z");

    int64_t us;
    assert_int_equal(cp_time_parse_iso("2023-11-14T22:13:20.123456Z", 27, NULL, &us), 0);
    assert_int_equal(us, 1700000000123456);
    const char *off = "2023-11-14T23:13:20+01:00";
    assert_int_equal(cp_time_parse_iso(off, strlen(off), NULL, &us), 0);
    assert_int_equal(us, 1700000000000000);
    const char *sp = "2023-11-14 17:13:20.5-0500";
    assert_int_equal(cp_time_parse_iso(sp, strlen(sp), NULL, &us), 0);
    assert_int_equal(us, 1700000000500000);
    /* No offset and no zone: unknown, never guessed. */
    assert_int_equal(cp_time_parse_iso("2023-11-14T22:13:20", 19, NULL, &us), CP_ERR_PARSE);
    assert_int_equal(cp_time_parse_iso("2023-02-29T00:00:00Z", 20, NULL, &us), CP_ERR_RANGE);
    assert_int_equal(cp_time_parse_iso("2023-11-14T22:13:20Zjunk", 24, NULL, &us), CP_ERR_PARSE);
    assert_int_equal(cp_time_parse_iso("2023-1-14T22:13:20Z", 19, NULL, &us), CP_ERR_PARSE);
}

static void test_time_zones(void **state)
{
    int64_t us;
    /* Summer in Berlin is UTC+2. */
    assert_int_equal(cp_time_local_to_utc("Europe/Berlin", 2026, 7, 1, 12, 0, 0, &us), 0);
    assert_int_equal(us, cp_time_days_from_civil(2026, 7, 1) * 86400000000LL + 10 * 3600000000LL);
    /* Winter: UTC+1. */
    assert_int_equal(cp_time_local_to_utc("Europe/Berlin", 2026, 1, 15, 8, 30, 0, &us), 0);
    assert_int_equal(us, cp_time_days_from_civil(2026, 1, 15) * 86400000000LL +
                             (7 * 3600 + 30 * 60) * 1000000LL);
    /* 2026-03-29 02:30 does not exist in Berlin. */
    assert_int_equal(cp_time_local_to_utc("Europe/Berlin", 2026, 3, 29, 2, 30, 0, &us),
                     CP_ERR_RANGE);
    /* 2026-10-25 02:30 happens twice: the first (summer time, UTC+2) wins. */
    assert_int_equal(cp_time_local_to_utc("Europe/Berlin", 2026, 10, 25, 2, 30, 0, &us), 0);
    assert_int_equal(us, cp_time_days_from_civil(2026, 10, 25) * 86400000000LL +
                             30 * 60 * 1000000LL);
    /* New York, EST in January: UTC-5. */
    assert_int_equal(cp_time_local_to_utc("America/New_York", 2026, 1, 2, 23, 0, 0, &us), 0);
    assert_int_equal(us, cp_time_days_from_civil(2026, 1, 3) * 86400000000LL + 4 * 3600000000LL);
    assert_int_equal(cp_time_local_to_utc("Nowhere/Atlantis", 2026, 1, 2, 23, 0, 0, &us),
                     CP_ERR_NOTFOUND);
    assert_int_equal(cp_time_local_to_utc("../../etc/passwd", 2026, 1, 2, 23, 0, 0, &us),
                     CP_ERR_NOTFOUND);
    /* Local string without offset, with a configured zone. */
    assert_int_equal(cp_time_parse_iso("2026-07-01 12:00:00.25", 22, "Europe/Berlin", &us), 0);
    assert_int_equal(us, cp_time_days_from_civil(2026, 7, 1) * 86400000000LL +
                             10 * 3600000000LL + 250000);
}

static void test_time_floor(void **state)
{
    assert_int_equal(cp_time_floor(1700000000123456, 900), 1699999200000000);
    assert_int_equal(cp_time_floor(-1, 900), -900000000);
    assert_int_equal(cp_time_floor(0, 900), 0);
}

static void test_utf8(void **state)
{
    assert_true(cp_utf8_valid("plain ascii text that is long", 29));
    assert_true(cp_utf8_valid("Zo\xc3\xab \xe5\xb1\xb1\xe7\x94\xb0 \xf0\x9f\x93\x9e", 16));
    assert_false(cp_utf8_valid("\xc0\xaf", 2));             /* overlong '/' */
    assert_false(cp_utf8_valid("\xe0\x80\xaf", 3));         /* overlong 3-byte */
    assert_false(cp_utf8_valid("\xed\xa0\x80", 3));         /* surrogate U+D800 */
    assert_false(cp_utf8_valid("\xf4\x90\x80\x80", 4));     /* above U+10FFFF */
    assert_false(cp_utf8_valid("ok\xff", 3));               /* never valid */
    assert_false(cp_utf8_valid("abcdefgh\xc3", 9));         /* truncated after the fast path */
    assert_false(cp_utf8_valid("\x80", 1));                 /* lone continuation */
    assert_true(cp_utf8_valid("\xef\xbf\xbd", 3));          /* U+FFFD */
    assert_true(cp_utf8_valid("\xf4\x8f\xbf\xbf", 4));      /* U+10FFFF */
    assert_int_equal(cp_utf8_check("abcdefghij\xed\xa0\x80", 13), 10);
}

static void test_map(void **state)
{
    struct cp_map m;
    cp_map_init(&m);
    static int vals[5000];
    char key[32];
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(key, sizeof key, "org/pbx/call-%d", i);
        assert_int_equal(cp_map_put(&m, key, (size_t)n, &vals[i]), 0);
    }
    assert_int_equal(m.len, 5000);
    for (int i = 0; i < 5000; i += 2) {
        int n = snprintf(key, sizeof key, "org/pbx/call-%d", i);
        assert_ptr_equal(cp_map_del(&m, key, (size_t)n), &vals[i]);
    }
    assert_int_equal(m.len, 2500);
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(key, sizeof key, "org/pbx/call-%d", i);
        assert_ptr_equal(cp_map_get(&m, key, (size_t)n), i % 2 ? &vals[i] : NULL);
    }
    /* Re-inserting after deletes reuses tombstones and keeps every key findable. */
    for (int round = 0; round < 20; round++)
        for (int i = 0; i < 5000; i += 2) {
            int n = snprintf(key, sizeof key, "org/pbx/call-%d", i);
            assert_int_equal(cp_map_put(&m, key, (size_t)n, &vals[i]), 0);
            assert_ptr_equal(cp_map_del(&m, key, (size_t)n), &vals[i]);
        }
    size_t it = 0, count = 0;
    while (cp_map_next(&m, &it))
        count++;
    assert_int_equal(count, 2500);
    cp_map_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_table),        cmocka_unit_test(test_arena),
        cmocka_unit_test(test_time_format_parse), cmocka_unit_test(test_time_zones),
        cmocka_unit_test(test_time_floor),       cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
