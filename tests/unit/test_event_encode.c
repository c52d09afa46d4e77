/* test_event_encode.c - cp_event_encode_to writes exactly the bytes of msgpack-c's packer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <msgpack.h>

#include "cp_err.h"
#include "cp_event.h"

/* Both encoders of one event; the direct one must match byte for byte. */
static void check_same(const struct cp_event *ev)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    int a = cp_event_encode(ev, &sb);
    static char buf[CP_EVENT_MSGPACK_MAX * 2];
    int b = cp_event_encode_to(ev, buf, sizeof buf);
    assert_true(a > 0);
    assert_int_equal(a, b);
    assert_memory_equal(sb.data, buf, (size_t)a);
    /* One byte short must fail, not truncate. */
    assert_int_equal(cp_event_encode_to(ev, buf, (size_t)a - 1), CP_ERR_TOOBIG);
    msgpack_sbuffer_destroy(&sb);
}

static char *str_of(size_t n, char c)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void base(struct cp_event *ev)
{
    cp_event_init(ev);
    ev->event_id = "e1";
    ev->org = "acme";
    ev->pbx = "eu-1";
    ev->src = "callpipe-json";
    ev->call = "c1";
    ev->kind = CP_KIND_CALL_END;
    ev->ts = 1;
}

/* Every boundary of msgpack-c's integer forms, in times, durations and q850. */
static void test_integers(void **state)
{
    const int64_t t[] = {1,          127,           128,           255,
                         256,        65535,         65536,         INT64_C(4294967295),
                         INT64_C(4294967296), INT64_C(1764064800000657), CP_EVENT_TIME_MAX};
    const int32_t d[] = {-1, 0, 1, 31, 127, 128, 255, 256, 65535, 65536, INT32_MAX};
    struct cp_event ev;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        base(&ev);
        ev.ts = t[i];
        ev.recv = t[i];
        ev.end = t[i];
        check_same(&ev);
    }
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) {
        base(&ev);
        ev.ring = ev.wait = ev.talk = ev.hold = ev.acw = d[i];
        ev.q850 = d[i] < 0 ? 0 : d[i] % 128;
        check_same(&ev);
    }
    /* The encoder does not validate: negative values take the signed forms. */
    const int64_t neg[] = {-1, -32, -33, -128, -129, -32768, -32769, INT64_C(-2147483648),
                           INT64_C(-2147483649), INT64_MIN};
    for (size_t i = 0; i < sizeof neg / sizeof neg[0]; i++) {
        base(&ev);
        ev.start = neg[i];
        ev.ring = (int32_t)(neg[i] < INT32_MIN ? INT32_MIN : neg[i]);
        check_same(&ev);
    }
}

/* fixstr / str8 / str16 boundaries, in fields and in x; every optional field present. */
static void test_strings(void **state)
{
    const size_t lens[] = {1, 31, 32, 255, 256, 1024};
    struct cp_event ev;
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char *s = str_of(lens[i], 'a' + (char)i);
        base(&ev);
        ev.leg = ev.parent = ev.from = ev.from_name = ev.to = ev.final_to = s;
        ev.queue = ev.agent = ev.agent_name = ev.wrapup = ev.native = s;
        ev.dir = CP_DIR_INBOUND;
        ev.disp = CP_DISP_ANSWERED;
        ev.qout = CP_QOUT_VOICEMAIL;
        ev.side = CP_SIDE_SYSTEM;
        ev.start = ev.answer = ev.end = ev.recv = 5;
        ev.q850 = 16;
        ev.nx = 2;
        ev.x[0].key = "k";
        ev.x[0].val = s;
        ev.x[1].key = s;
        ev.x[1].val = "";
        check_same(&ev);
        free(s);
    }
}

/* Map sizes: fixmap up to 15 pairs, map16 beyond (a full event has 33 keys). */
static void test_map_sizes(void **state)
{
    struct cp_event ev;
    static const char *keys[CP_EVENT_X_MAX] = {"a", "b", "c", "d", "e", "f", "g", "h",
                                               "i", "j", "k", "l", "m", "n", "o", "p"};
    for (uint32_t nx = 0; nx <= CP_EVENT_X_MAX; nx++) {
        base(&ev);
        ev.nx = nx;
        for (uint32_t i = 0; i < nx; i++) {
            ev.x[i].key = keys[i];
            ev.x[i].val = keys[i];
        }
        check_same(&ev);
        ev.leg = "l";
        ev.from = "f";
        ev.to = "t";
        ev.queue = "q";
        ev.agent = "a";
        ev.native = "n";
        ev.wait = 3;
        ev.talk = 4;
        check_same(&ev); /* 15, 16, 17 ... top-level keys */
        ev.recv = 9;
        check_same(&ev);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_map_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
