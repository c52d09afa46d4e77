/* test_source_asterisk_queue_log.c - golden cases of the asterisk-queue-log source. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cp_err.h"
#include "../lib/golden.h"
#include "../../ingest/sources/asterisk_queue_log/asterisk_queue_log.h"

struct count {
    struct cp_emit emit;
    int events, rejects;
};

static int failing_event(struct cp_emit *out, struct cp_event *ev)
{
    (void)ev;
    ((struct count *)out->user)->events++;
    return CP_ERR_FULL;
}

static void count_reject(struct cp_emit *out, uint32_t index, const char *rec, size_t len,
                         const char *reason)
{
    (void)index, (void)rec, (void)len, (void)reason;
    ((struct count *)out->user)->rejects++;
}

/* The emitter's failure is the parse result, and nothing is dead-lettered for it. */
static void emitter_failure_is_returned(void **state)
{
    (void)state;
    const char *line = "1714557600|1714557600.84|sales|NONE|ENTERQUEUE||+15550100|1\n";
    struct cp_arena arena;
    cp_arena_init(&arena, 4096, 0);
    struct cp_source_ctx ctx = {"acme", "pbx-1", NULL, CP_GOLDEN_RECV_US, &arena};
    struct count c = {{failing_event, count_reject, NULL}, 0, 0};
    c.emit.user = &c;
    assert_int_equal(cp_source_asterisk_queue_log.parse(NULL, &ctx, line, strlen(line), &c.emit),
                     CP_ERR_FULL);
    assert_int_equal(c.events, 1);
    assert_int_equal(c.rejects, 0);
    /* an arena at its limit is a reject with a reason, not a crash */
    struct cp_arena tiny;
    cp_arena_init(&tiny, 64, 16);
    ctx.arena = &tiny;
    assert_int_equal(cp_source_asterisk_queue_log.parse(NULL, &ctx, line, strlen(line), &c.emit),
                     CP_ERR_NOMEM);
    assert_int_equal(c.rejects, 1);
    cp_arena_destroy(&tiny);
    cp_arena_destroy(&arena);
}

int main(void)
{
    const struct CMUnitTest extra[] = {
        cmocka_unit_test(emitter_failure_is_returned),
    };
    return cp_golden_run("source_asterisk_queue_log", &cp_source_asterisk_queue_log,
                         "asterisk-queue-log", CP_GOLDEN_LINES, 10, extra, CP_ARRAY_LEN(extra));
}
