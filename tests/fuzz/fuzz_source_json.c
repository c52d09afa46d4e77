/* fuzz_source_json.c - libFuzzer: callpipe-json emits only valid events, which round-trip. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cp_arena.h"
#include "cp_event.h"
#include "cp_utf8.h"
#include "../../ingest/sources/json/json.h"

/*
 * Properties checked on arbitrary bytes:
 *  - every emitted event passes cp_event_validate, and all its strings are
 *    valid UTF-8 within their bounds;
 *  - the event rendered by cp_event_to_json parses back to an equal event;
 *  - every reject carries bytes inside the input, indexes only go up, and
 *    the return value agrees with what was emitted and rejected.
 */

static const struct cp_source_ctx *g_ctx;

struct check {
    struct cp_emit emit;
    const char *in;
    size_t in_len;
    int events, rejects;
    int64_t last_index;
};

struct one {
    struct cp_emit emit;
    struct cp_event ev;
    int n;
};

static void str_ok(const char *s, size_t max)
{
    if (!s)
        return;
    size_t n = strlen(s);
    if (n > max || !cp_utf8_valid(s, n))
        abort();
}

static int one_event(struct cp_emit *out, struct cp_event *ev)
{
    struct one *o = out->user;
    o->ev = *ev;
    o->n++;
    return 0;
}

static void one_reject(struct cp_emit *out, uint32_t index, const char *rec, size_t len,
                       const char *reason)
{
    (void)out, (void)index, (void)rec, (void)len, (void)reason;
    abort(); /* the rendering of a valid event must parse */
}

static void roundtrip(const struct cp_event *ev)
{
    static char buf[CP_EVENT_JSON_MAX];
    int n = cp_event_to_json(ev, buf, sizeof buf);
    if (n <= 0)
        abort();
    struct one o = {{one_event, one_reject, NULL}, {0}, 0};
    o.emit.user = &o;
    if (cp_source_json.parse(NULL, g_ctx, buf, (size_t)n, &o.emit) != 1 || o.n != 1)
        abort();
    if (!cp_event_equal(ev, &o.ev))
        abort();
}

static int on_event(struct cp_emit *out, struct cp_event *ev)
{
    struct check *c = out->user;
    const char *why = NULL;
    if (cp_event_validate(ev, &why) != 0)
        abort();
    const char *const strs[] = {ev->event_id, ev->org,    ev->pbx,        ev->src,
                                ev->call,     ev->leg,    ev->parent,     ev->from,
                                ev->from_name, ev->to,    ev->final_to,   ev->queue,
                                ev->agent,    ev->agent_name, ev->wrapup};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        str_ok(strs[i], CP_EVENT_STR_MAX);
    str_ok(ev->native, CP_EVENT_NATIVE_MAX);
    if (ev->nx > CP_EVENT_X_MAX)
        abort();
    for (uint32_t i = 0; i < ev->nx; i++) {
        str_ok(ev->x[i].key, CP_EVENT_X_STR_MAX);
        str_ok(ev->x[i].val, CP_EVENT_X_STR_MAX);
    }
    roundtrip(ev);
    c->events++;
    return 0;
}

static void on_reject(struct cp_emit *out, uint32_t index, const char *rec, size_t len,
                      const char *reason)
{
    struct check *c = out->user;
    if (!reason || !*reason)
        abort();
    if (rec < c->in || rec + len > c->in + c->in_len)
        abort();
    if ((int64_t)index <= c->last_index)
        abort();
    c->last_index = index;
    c->rejects++;
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
    /* Odd sizes get a configured zone, so local times are exercised too. */
    struct cp_source_ctx ctx = {
        .org = "acme",
        .pbx = "pbx-1",
        .tz = (size & 1) ? "Europe/Berlin" : NULL,
        .recv_us = INT64_C(1764064900000000),
        .arena = &arena,
    };
    g_ctx = &ctx;
    /* A private copy, so reads past the end are caught by ASan. */
    char *in = malloc(size ? size : 1);
    if (!in)
        return 0;
    memcpy(in, data, size);
    struct check c = {{on_event, on_reject, NULL}, in, size, 0, 0, -1};
    c.emit.user = &c;
    int rc = cp_source_json.parse(NULL, &ctx, in, size, &c.emit);
    if (rc >= 0 && rc != c.events)
        abort();
    if (rc < 0 && (c.events != 0 || c.rejects == 0))
        abort();
    free(in);
    return 0;
}
