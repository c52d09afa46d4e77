/* fuzz_source_twilio_voice.c - libFuzzer: twilio-voice emits only valid events. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cp_arena.h"
#include "cp_event.h"
#include "cp_utf8.h"
#include "../../ingest/sources/twilio/twilio.h"

#define FMT cp_source_twilio_voice

struct check {
    struct cp_emit emit;
    const char *in;
    size_t in_len;
    int events, rejects;
    int64_t last_index;
    struct cp_arena *arena;
};

static void str_ok(const char *s, size_t max)
{
    if (!s) return;
    size_t n = strlen(s);
    if (n > max || !cp_utf8_valid(s, n)) abort();
}

static int on_event(struct cp_emit *out, struct cp_event *ev)
{
    struct check *c = out->user;
    const char *why = NULL;
    if (cp_event_validate(ev, &why) != 0) abort();
    const char *const strs[] = {ev->event_id, ev->org,    ev->pbx,   ev->src,        ev->call,
                                ev->leg,      ev->parent, ev->from,  ev->from_name,  ev->to,
                                ev->final_to, ev->queue,  ev->agent, ev->agent_name, ev->wrapup};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        str_ok(strs[i], CP_EVENT_STR_MAX);
    str_ok(ev->native, CP_EVENT_NATIVE_MAX);
    if (ev->nx > CP_EVENT_X_MAX) abort();
    for (uint32_t i = 0; i < ev->nx; i++) {
        str_ok(ev->x[i].key, CP_EVENT_X_STR_MAX);
        str_ok(ev->x[i].val, CP_EVENT_X_STR_MAX);
    }
    static char buf[CP_EVENT_MSGPACK_MAX];
    int n = cp_event_encode_to(ev, buf, sizeof buf);
    if (n <= 0) abort();
    struct cp_event back;
    if (cp_event_decode(buf, (size_t)n, c->arena, &back, &why) != 0 || !cp_event_equal(ev, &back))
        abort();
    c->events++;
    return 0;
}

static void on_reject(struct cp_emit *out, uint32_t index, const char *rec, size_t len,
                      const char *reason)
{
    struct check *c = out->user;
    if (!reason || !*reason) abort();
    if (rec < c->in || rec + len > c->in + c->in_len) abort();
    if ((int64_t)index <= c->last_index) abort();
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
    struct cp_source_ctx ctx = {
        .org = "acme",
        .pbx = "pbx-1",
        .tz = (size & 1) ? "Europe/Berlin" : NULL,
        .recv_us = INT64_C(1764064900000000),
        .arena = &arena,
    };
    char *in = malloc(size ? size : 1);
    if (!in) return 0;
    memcpy(in, data, size);
    struct check c = {{on_event, on_reject, NULL}, in, size, 0, 0, -1, &arena};
    c.emit.user = &c;
    void *state = FMT.state_create ? FMT.state_create() : NULL;
    int rc = FMT.parse(state, &ctx, in, size, &c.emit);
    if (FMT.state_destroy) FMT.state_destroy(state);
    if (rc >= 0 && rc != c.events) abort();
    if (rc < 0 && (c.events != 0 || c.rejects == 0)) abort();
    free(in);
    return 0;
}
