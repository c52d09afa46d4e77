/* fuzz_source.h - the one libFuzzer driver that every fuzz_source_<format>.c target includes. */
#ifndef FUZZ_SOURCE_H
#define FUZZ_SOURCE_H

/*
 * Each target is built from its single .c file (Makefile: build-fuzz/%), so the
 * driver lives in this header as static functions.  A target fills a
 * struct fuzz_source_opts and calls fuzz_source_run() from LLVMFuzzerTestOneInput.
 *
 * Properties checked on arbitrary bytes, for every format:
 *  - frame() (FUZZ_FRAME) returns a length within the bytes it was given, 0 or
 *    a negative code (then the engine skips to the next line, and so do we);
 *  - every emitted event passes cp_event_validate; all its strings are valid
 *    UTF-8 within their bounds (native and x pairs too, at most CP_EVENT_X_MAX
 *    pairs); it renders as JSON and survives a msgpack round trip unchanged;
 *  - every reject has a reason; its index goes up within one parse() call
 *    (indexed) or is 0; its bytes lie inside the record (or, with
 *    reject_copy, are present);
 *  - parse() returns the number of events emitted, or a negative code after
 *    at least one reject and no event.
 * Each record is handed to parse() in an exact-size heap copy that is freed
 * right after, so ASan sees reads past its end and pointers kept across calls.
 * Odd input sizes get a configured time zone; even sizes none.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cp_arena.h"
#include "cp_event.h"
#include "cp_source.h"
#include "cp_utf8.h"

enum fuzz_mode {
    FUZZ_WHOLE = 0, /* the whole input is one record (an HTTP body, a file) */
    FUZZ_LINES,     /* every LF-terminated line is a record, through one state */
    FUZZ_FRAME,     /* the format's frame() cuts the records, through one state */
};

enum fuzz_also_whole {
    FUZZ_ALSO_WHOLE_NO = 0,
    FUZZ_ALSO_WHOLE,          /* after the stream, the whole input as one record, same state */
    FUZZ_ALSO_WHOLE_STATELESS /* after the stream, the whole input as one record, NULL state */
};

struct fuzz_source_opts {
    const struct cp_source_format *fmt;
    enum fuzz_mode mode;
    const char *tz; /* the zone odd sizes get; NULL: Europe/Berlin */
    /* A rejected element may be a re-serialised copy (amazon-connect), so its
     * bytes need not lie inside the record. */
    bool reject_copy;
    /* The body is an array whose rejects carry their element's position, which
     * only goes up; otherwise every reject's index is 0 (cp_source.h). */
    bool indexed;
    enum fuzz_also_whole also_whole;
    /* Optional: configures a fresh state from the input (abort on failure). */
    void (*setup)(void *state, const uint8_t *data, size_t size);
    /* Optional: more checks on a record after parse() saw it. */
    void (*check_record)(void *state, const char *rec, size_t len);
    /* Optional: more checks on each event that passed the common ones. */
    void (*check_event)(const struct cp_source_ctx *ctx, const struct cp_event *ev);
};

struct fuzz_check {
    struct cp_emit emit;
    const struct fuzz_source_opts *opts;
    const struct cp_source_ctx *ctx;
    const char *rec;
    size_t len;
    int events, rejects;
    int64_t last_index;
};

static void fuzz_str_ok(const char *s, size_t max)
{
    if (!s) return;
    size_t n = strlen(s);
    if (n > max || !cp_utf8_valid(s, n)) abort();
}

static int fuzz_on_event(struct cp_emit *out, struct cp_event *ev)
{
    struct fuzz_check *c = out->user;
    const char *why = NULL;
    if (cp_event_validate(ev, &why) != 0) abort();
    const char *const strs[] = {ev->event_id, ev->org,    ev->pbx,   ev->src,        ev->call,
                                ev->leg,      ev->parent, ev->from,  ev->from_name,  ev->to,
                                ev->final_to, ev->queue,  ev->agent, ev->agent_name, ev->wrapup};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        fuzz_str_ok(strs[i], CP_EVENT_STR_MAX);
    fuzz_str_ok(ev->native, CP_EVENT_NATIVE_MAX);
    if (ev->nx > CP_EVENT_X_MAX) abort();
    for (uint32_t i = 0; i < ev->nx; i++) {
        fuzz_str_ok(ev->x[i].key, CP_EVENT_X_STR_MAX);
        fuzz_str_ok(ev->x[i].val, CP_EVENT_X_STR_MAX);
    }
    static char json[CP_EVENT_JSON_MAX];
    if (cp_event_to_json(ev, json, sizeof json) <= 0) abort();
    static char buf[CP_EVENT_MSGPACK_MAX];
    int n = cp_event_encode_to(ev, buf, sizeof buf);
    if (n <= 0) abort();
    struct cp_event back;
    if (cp_event_decode(buf, (size_t)n, c->ctx->arena, &back, &why) != 0 ||
        !cp_event_equal(ev, &back))
        abort();
    if (c->opts->check_event) c->opts->check_event(c->ctx, ev);
    c->events++;
    return 0;
}

static void fuzz_on_reject(struct cp_emit *out, uint32_t index, const char *rec, size_t len,
                           const char *reason)
{
    struct fuzz_check *c = out->user;
    if (!reason || !*reason) abort();
    if (c->opts->reject_copy) {
        if (!rec && len) abort();
    } else if (rec < c->rec || rec + len > c->rec + c->len) {
        abort();
    }
    if (c->opts->indexed ? (int64_t)index <= c->last_index : index != 0) abort();
    c->last_index = index;
    c->rejects++;
}

/* Parses one record from an exact-size copy and checks the result. */
static void fuzz_parse_one(const struct fuzz_source_opts *o, void *state,
                           const struct cp_source_ctx *ctx, const char *rec, size_t len)
{
    char *copy = malloc(len ? len : 1);
    if (!copy) return;
    memcpy(copy, rec, len);
    struct fuzz_check c = {{fuzz_on_event, fuzz_on_reject, NULL}, o, ctx, copy, len, 0, 0, -1};
    c.emit.user = &c;
    int rc = o->fmt->parse(state, ctx, copy, len, &c.emit);
    if (rc >= 0 && rc != c.events) abort();
    if (rc < 0 && (c.events != 0 || c.rejects == 0)) abort();
    if (o->check_record) o->check_record(state, copy, len);
    free(copy);
    cp_arena_reset(ctx->arena);
}

static void fuzz_stream(const struct fuzz_source_opts *o, void *state,
                        const struct cp_source_ctx *ctx, const char *in, size_t size)
{
    size_t off = 0;
    switch (o->mode) {
    case FUZZ_WHOLE:
        fuzz_parse_one(o, state, ctx, in, size);
        break;
    case FUZZ_LINES:
        while (off < size) {
            const char *nl = memchr(in + off, '\n', size - off);
            size_t n = nl ? (size_t)(nl - (in + off)) : size - off;
            fuzz_parse_one(o, state, ctx, in + off, n);
            off += n + 1;
        }
        break;
    case FUZZ_FRAME:
        while (off < size) {
            long r = o->fmt->frame(state, in + off, size - off);
            if (r == 0) break;
            if (r < 0) {
                const char *nl = memchr(in + off, '\n', size - off);
                off = nl ? (size_t)(nl - in) + 1 : size;
                continue;
            }
            if ((size_t)r > size - off) abort(); /* a frame longer than the bytes it was given */
            fuzz_parse_one(o, state, ctx, in + off, (size_t)r);
            off += (size_t)r;
        }
        break;
    }
}

static int fuzz_source_run(const struct fuzz_source_opts *o, const uint8_t *data, size_t size)
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
        .tz = (size & 1) ? (o->tz ? o->tz : "Europe/Berlin") : NULL,
        .recv_us = INT64_C(1764064900000000),
        .arena = &arena,
    };
    /* A private exact-size copy, so frame() reading past the end is caught by ASan. */
    char *in = malloc(size ? size : 1);
    if (!in) return 0;
    memcpy(in, data, size);
    void *state = o->fmt->state_create ? o->fmt->state_create() : NULL;
    if (o->setup) o->setup(state, data, size);
    fuzz_stream(o, state, &ctx, in, size);
    if (o->also_whole == FUZZ_ALSO_WHOLE) fuzz_parse_one(o, state, &ctx, in, size);
    if (o->fmt->state_destroy) o->fmt->state_destroy(state);
    if (o->also_whole == FUZZ_ALSO_WHOLE_STATELESS) fuzz_parse_one(o, NULL, &ctx, in, size);
    free(in);
    return 0;
}

#endif
