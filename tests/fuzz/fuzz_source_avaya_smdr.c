/* fuzz_source_avaya_smdr.c - libFuzzer: avaya-smdr emits only valid events and well-formed rejects. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cp_arena.h"
#include "cp_event.h"
#include "cp_utf8.h"
#include "../../ingest/sources/avaya_smdr/avaya_smdr.h"

/*
 * Properties checked on arbitrary bytes:
 *  - every emitted event passes cp_event_validate and renders as JSON;
 *  - every reject has a reason and carries bytes inside the record;
 *  - parse returns the number of events, or a negative code after a reject.
 * Odd sizes get a configured zone; even sizes none (every record is then rejected).
 */

#define FMT cp_source_avaya_smdr

struct check {
    struct cp_emit emit;
    const char *rec;
    size_t rec_len;
    int events, rejects;
};

static int on_event(struct cp_emit *out, struct cp_event *ev)
{
    struct check *c = out->user;
    const char *why = NULL;
    if (cp_event_validate(ev, &why) != 0)
        abort();
    static char buf[CP_EVENT_JSON_MAX];
    if (cp_event_to_json(ev, buf, sizeof buf) <= 0)
        abort();
    c->events++;
    return 0;
}

static void on_reject(struct cp_emit *out, uint32_t index, const char *rec, size_t len,
                      const char *reason)
{
    struct check *c = out->user;
    (void)index;
    if (!reason || !*reason)
        abort();
    if (len && (rec < c->rec || rec + len > c->rec + c->rec_len))
        abort();
    c->rejects++;
}

static void one(void *state, const struct cp_source_ctx *ctx, const char *rec, size_t len)
{
    struct check c = {{on_event, on_reject, NULL}, rec, len, 0, 0};
    c.emit.user = &c;
    int rc = FMT.parse(state, ctx, rec, len, &c.emit);
    if (rc >= 0 && rc != c.events)
        abort();
    if (rc < 0 && c.rejects == 0)
        abort();
    cp_arena_reset(ctx->arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct cp_arena arena;
    static int init;
    if (!init) {
        cp_arena_init(&arena, 64 * 1024, 64u << 20);
        init = 1;
    }
    cp_arena_reset(&arena);
    struct cp_source_ctx ctx = {
        .org = "acme",
        .pbx = "pbx-1",
        .tz = (size & 1) ? "Europe/London" : NULL,
        .recv_us = INT64_C(1764064900000000),
        .arena = &arena,
    };
    /* A private copy, so reads past the end are caught by ASan. */
    char *in = malloc(size ? size : 1);
    if (!in)
        return 0;
    memcpy(in, data, size);
    void *state = FMT.state_create ? FMT.state_create() : NULL;
    /* The input is a stream of lines through one connection state, as the
     * engine would feed it (stitching is exercised across lines). */
    for (size_t off = 0; off < size;) {
        const char *nl = memchr(in + off, '\n', size - off);
        size_t n = nl ? (size_t)(nl - (in + off)) : size - off;
        if (n)
            one(state, &ctx, in + off, n);
        off += n + 1;
    }

    if (FMT.state_destroy)
        FMT.state_destroy(state);
    free(in);
    return 0;
}
