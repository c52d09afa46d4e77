/* fuzz_source_asterisk_ami.c - libFuzzer: the AMI framer and parser emit only valid events. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cp_arena.h"
#include "cp_event.h"
#include "cp_utf8.h"
#include "../../ingest/sources/asterisk_ami/ami_client.h"
#include "../../ingest/sources/asterisk_ami/asterisk_ami.h"

/*
 * Properties checked on arbitrary bytes, fed as a stream through frame() and
 * as one record straight to parse():
 *  - frame() returns a length within the buffer, 0 or a negative code;
 *  - every emitted event passes cp_event_validate, with valid UTF-8 strings;
 *  - every reject has a reason and bytes inside the record;
 *  - a negative parse result comes with a reject and no event.
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
    for (uint32_t i = 0; i < ev->nx; i++) {
        str_ok(ev->x[i].key, CP_EVENT_X_STR_MAX);
        str_ok(ev->x[i].val, CP_EVENT_X_STR_MAX);
    }
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

static void parse_one(void *st, const struct cp_source_ctx *ctx, const char *rec, size_t len)
{
    char *copy = malloc(len ? len : 1); /* exact size, so ASan sees reads past the end */
    if (!copy) return;
    memcpy(copy, rec, len);
    struct check c = {{on_event, on_reject, NULL}, copy, len, 0, 0};
    c.emit.user = &c;
    int rc = cp_source_asterisk_ami.parse(st, ctx, copy, len, &c.emit);
    if (rc >= 0 && rc != c.events) abort();
    if (rc < 0 && (c.events != 0 || c.rejects == 0)) abort();
    struct cp_ami_response r;
    if (cp_ami_response_read(copy, len, &r) == 0) {
        if (r.action_id && (r.action_id < copy || r.action_id + r.action_id_len > copy + len))
            abort();
    }
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
    void *st = cp_source_asterisk_ami.state_create();
    size_t off = 0;
    while (off < size) {
        long r = cp_source_asterisk_ami.frame(st, in + off, size - off);
        if (r == 0) break;
        if (r < 0) {
            const char *nl = memchr(in + off, '\n', size - off);
            off = nl ? (size_t)(nl - in) + 1 : size;
            continue;
        }
        if ((size_t)r > size - off) abort();
        parse_one(st, &ctx, in + off, (size_t)r);
        off += (size_t)r;
        cp_arena_reset(&arena);
    }
    cp_source_asterisk_ami.state_destroy(st);
    parse_one(NULL, &ctx, in, size);
    return 0;
}
