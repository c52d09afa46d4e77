/* test_source_avaya_smdr.c - golden streams of avaya-smdr (continuation stitching) and its state bound. */
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
#include "../../ingest/sources/avaya_smdr/avaya_smdr.h"

#define GOLDEN_SUB "avaya_smdr"

/* The open-call table is bounded: the oldest open call is forgotten, and a
 * later segment of it then counts as a first segment (no transfer). */
struct count {
    struct cp_emit emit;
    int events, rejects, transfers;
};

static int count_event(struct cp_emit *out, struct cp_event *ev)
{
    struct count *c = out->user;
    c->events++;
    if (ev->kind == CP_KIND_TRANSFER)
        c->transfers++;
    return 0;
}

static void count_reject(struct cp_emit *out, uint32_t index, const char *rec, size_t len,
                         const char *reason)
{
    (void)index, (void)rec, (void)len, (void)reason;
    ((struct count *)out->user)->rejects++;
}

static void open_calls_are_bounded(void **state)
{
    (void)state;
    struct cp_arena a;
    cp_arena_init(&a, 4096, 0);
    struct cp_source_ctx ctx = {"acme", "pbx-1", "Europe/London", CP_GOLDEN_RECV_US, &a};
    struct count c = {{count_event, count_reject, NULL}, 0, 0, 0};
    c.emit.user = &c;
    void *st = cp_source_avaya_smdr.state_create();
    char line[256];
    for (int i = 0; i <= CP_SMDR_OPEN_CALLS; i++) {
        int n = snprintf(line, sizeof line,
                         "2024/05/01 10:00:00,00:01:00,5,0207555%04d,I,4000,4000,,0,%d,1,E201,"
                         "Ann Lee,T9001,Line 1.1,0,0",
                         i, 5000000 + i);
        assert_int_equal(cp_source_avaya_smdr.parse(st, &ctx, line, (size_t)n, &c.emit), 1);
        cp_arena_reset(&a);
    }
    /* Call 5000000 was evicted: its next segment is no transfer; call 5000001's is. */
    static const char evicted[] = "2024/05/01 10:00:00,00:02:00,0,02075550000,I,4000,4000,,0,"
                                  "5000000,0,E205,Raj Patel,T9001,Line 1.1,0,0";
    assert_int_equal(cp_source_avaya_smdr.parse(st, &ctx, evicted, sizeof evicted - 1, &c.emit), 1);
    static const char kept[] = "2024/05/01 10:00:00,00:02:00,0,02075550001,I,4000,4000,,0,"
                               "5000001,0,E205,Raj Patel,T9001,Line 1.1,0,0";
    assert_int_equal(cp_source_avaya_smdr.parse(st, &ctx, kept, sizeof kept - 1, &c.emit), 2);
    assert_int_equal(c.transfers, 1);
    assert_int_equal(c.rejects, 0);
    cp_source_avaya_smdr.state_destroy(st);
    cp_arena_destroy(&a);
}

int main(void)
{
    const struct CMUnitTest extra[] = {
        cmocka_unit_test(open_calls_are_bounded),
    };
    return cp_golden_run("avaya_smdr", &cp_source_avaya_smdr, GOLDEN_SUB, CP_GOLDEN_LINES, 10,
                         extra, CP_ARRAY_LEN(extra));
}
