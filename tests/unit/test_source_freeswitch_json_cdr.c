/* test_source_freeswitch_json_cdr.c - golden cases of freeswitch-json-cdr, and the srcutil helpers it uses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cp_arena.h"
#include "cp_err.h"
#include "../lib/golden.h"
#include "../../ingest/sources/freeswitch_json_cdr/freeswitch_json_cdr.h"
#include "../../ingest/sources/srcutil/fs_cause.h"
#include "../../ingest/sources/srcutil/srcutil.h"

#define GOLDEN_SUB "freeswitch_json_cdr"

static void text_sanitises(void **state)
{
    (void)state;
    struct cp_arena a;
    cp_arena_init(&a, 1024, 0);
    bool oom = false;
    /* 0xFC (Latin-1 ü), a NUL and an overlong C0 AF each become U+FFFD. */
    char *t = cp_srcutil_text(&a, "M\xfcller\0x\xc0\xaf", 10, 256, &oom);
    assert_string_equal(t, "M\xef\xbf\xbdller\xef\xbf\xbdx\xef\xbf\xbd\xef\xbf\xbd");
    /* The cut never splits a character: "é" is 2 bytes, max 3 keeps "aé" only when it fits. */
    t = cp_srcutil_text(&a, "a\xc3\xa9\xc3\xa9", 5, 4, &oom);
    assert_string_equal(t, "a\xc3\xa9");
    assert_null(cp_srcutil_text(&a, "", 0, 10, &oom));
    assert_false(oom);
    bool bad = false;
    assert_null(cp_srcutil_id(&a, "ab\xff", 3, 256, &bad, &oom));
    assert_true(bad);
    cp_arena_destroy(&a);
}

static void decoders(void **state)
{
    (void)state;
    struct cp_arena a;
    cp_arena_init(&a, 1024, 0);
    size_t n;
    char *d = cp_srcutil_urldecode(&a, "a%20b+c%2Bd%zz%4", 16, true, &n);
    assert_string_equal(d, "a b c+d%zz%4");
    d = cp_srcutil_urldecode(&a, "+1555%40x", 9, false, &n);
    assert_string_equal(d, "+1555@x");
    d = cp_srcutil_base64(&a, "eyJhIjoxfQ==", 12, &n);
    assert_non_null(d);
    assert_int_equal(n, 7);
    assert_memory_equal(d, "{\"a\":1}", 7);
    d = cp_srcutil_base64(&a, "eyJh\r\nIjoxfQ", 12, &n); /* unpadded, wrapped */
    assert_non_null(d);
    assert_int_equal(n, 7);
    assert_null(cp_srcutil_base64(&a, "eyJ=h", 5, &n));  /* data after padding */
    assert_null(cp_srcutil_base64(&a, "eyJhI", 5, &n));  /* a lone 6-bit tail */
    assert_null(cp_srcutil_base64(&a, "ey*h", 4, &n));
    uint64_t v;
    assert_true(cp_srcutil_u64("1714557600", 10, UINT64_MAX, &v));
    assert_int_equal(v, 1714557600);
    assert_false(cp_srcutil_u64("18446744073709551616", 20, UINT64_MAX, &v));
    assert_false(cp_srcutil_u64("12a", 3, UINT64_MAX, &v));
    assert_false(cp_srcutil_u64("128", 3, 127, &v));
    cp_arena_destroy(&a);
}

static void causes(void **state)
{
    (void)state;
    assert_int_equal(cp_fs_cause_disp("NORMAL_CLEARING", 15, true), CP_DISP_ANSWERED);
    assert_int_equal(cp_fs_cause_disp("NORMAL_CLEARING", 15, false), CP_DISP_FAILED);
    assert_int_equal(cp_fs_cause_disp("USER_BUSY", 9, false), CP_DISP_BUSY);
    assert_int_equal(cp_fs_cause_disp("NO_USER_RESPONSE", 16, false), CP_DISP_NO_ANSWER);
    assert_int_equal(cp_fs_cause_disp("ORIGINATOR_CANCEL", 17, false), CP_DISP_CANCELED);
    assert_int_equal(cp_fs_cause_disp("SWITCH_CONGESTION", 17, false), CP_DISP_CONGESTION);
    assert_int_equal(cp_fs_cause_disp(NULL, 0, false), CP_DISP_UNKNOWN);
    assert_int_equal(cp_fs_cause_q850("NO_ANSWER", 9), 19);
    assert_int_equal(cp_fs_cause_q850("ORIGINATOR_CANCEL", 17), 0);
}

struct count {
    struct cp_emit emit;
    int events, rejects;
};

static int count_event(struct cp_emit *out, struct cp_event *ev)
{
    (void)ev;
    ((struct count *)out->user)->events++;
    return CP_ERR_FULL; /* the emitter failing aborts the parse with its code */
}

static void count_reject(struct cp_emit *out, uint32_t index, const char *rec, size_t len,
                         const char *reason)
{
    (void)index, (void)rec, (void)len, (void)reason;
    ((struct count *)out->user)->rejects++;
}

static void emitter_failure_is_returned(void **state)
{
    (void)state;
    static const char body[] =
        "{\"variables\":{\"uuid\":\"u1\",\"end_uepoch\":\"1714557600000000\"}}";
    struct cp_arena a;
    cp_arena_init(&a, 1024, 0);
    struct cp_source_ctx ctx = {"acme", "pbx-1", NULL, CP_GOLDEN_RECV_US, &a};
    struct count c = {{count_event, count_reject, NULL}, 0, 0};
    c.emit.user = &c;
    int rc = cp_source_freeswitch_json_cdr.parse(NULL, &ctx, body, sizeof body - 1, &c.emit);
    assert_int_equal(rc, CP_ERR_FULL);
    assert_int_equal(c.events, 1);
    assert_int_equal(c.rejects, 0);
    cp_arena_destroy(&a);
}


int main(void)
{
    const struct CMUnitTest extra[] = {
        cmocka_unit_test(text_sanitises),
        cmocka_unit_test(decoders),
        cmocka_unit_test(causes),
        cmocka_unit_test(emitter_failure_is_returned),
    };
    return cp_golden_run("freeswitch_json_cdr", &cp_source_freeswitch_json_cdr, GOLDEN_SUB,
                         CP_GOLDEN_WHOLE, 10, extra, CP_ARRAY_LEN(extra));
}
