/* fuzz_source_asterisk_queue_log.c - libFuzzer: the queue_log parser emits only valid events. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cp_arena.h"
#include "cp_event.h"
#include "cp_utf8.h"
#include "../../ingest/sources/asterisk_queue_log/asterisk_queue_log.h"

/*
 * Every input line goes to parse() as one record (as LF framing would cut
 * it), then the whole input as one record.  Checked: every event validates
 * with valid UTF-8 strings; every reject has a reason and bytes inside the
 * record; a negative result comes with a reject and no event.
 */

struct check {
    struct cp_emit emit;
    const char *rec;
    size_t len;
    int events, rejects;
};

static void str_ok(const char *s, size_t max)
{
    if (s && (strlen(s) > max || !cp_utf8_valid(s, strlen(s)))) abort();
}

static int on_event(struct cp_emit *out, struct cp_event *ev)
{
    struct check *c = out->user;
    const char *why = NULL;
    if (cp_event_validate(ev, &why) != 0) abort();
    const char *const strs[] = {ev->call, ev->leg,   ev->from, ev->from_name,
                                ev->to,   ev->queue, ev->agent};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        str_ok(strs[i], CP_EVENT_STR_MAX);
    for (uint32_t i = 0; i < ev->nx; i++)
        str_ok(ev->x[i].val, CP_EVENT_X_STR_MAX);
    c->events++;
    return 0;
}

static void on_reject(struct cp_emit *out, uint32_t index, const char *rec, size_t len,
                      const char *reason)
{
    struct check *c = out->user;
    (void)index;
    if (!reason || !*reason || rec < c->rec || rec + len > c->rec + c->len) abort();
    c->rejects++;
}

static void parse_one(const struct cp_source_ctx *ctx, const char *rec, size_t len)
{
    char *copy = malloc(len ? len : 1);
    if (!copy) return;
    memcpy(copy, rec, len);
    struct check c = {{on_event, on_reject, NULL}, copy, len, 0, 0};
    c.emit.user = &c;
    int rc = cp_source_asterisk_queue_log.parse(NULL, ctx, copy, len, &c.emit);
    if (rc >= 0 && rc != c.events) abort();
    if (rc < 0 && (c.events != 0 || c.rejects == 0)) abort();
    free(copy);
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
        .tz = (size & 1) ? "Europe/Berlin" : NULL,
        .recv_us = INT64_C(1764064900000000),
        .arena = &arena,
    };
    const char *in = (const char *)data;
    for (size_t off = 0; off < size;) {
        const char *nl = memchr(in + off, '\n', size - off);
        size_t n = nl ? (size_t)(nl - (in + off)) : size - off;
        parse_one(&ctx, in + off, n);
        off += n + 1;
    }
    parse_one(&ctx, in, size);
    return 0;
}
