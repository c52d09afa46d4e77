/* fuzz_source_json.c - libFuzzer: callpipe-json emits only valid events, which round-trip. */
#include "../../ingest/sources/json/json.h"
#include "fuzz_source.h"

/*
 * The whole input is one body; the common properties are in fuzz_source.h.
 * On top: the event rendered by cp_event_to_json parses back to an equal event.
 */

struct one {
    struct cp_emit emit;
    struct cp_event ev;
    int n;
};

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

static void roundtrip(const struct cp_source_ctx *ctx, const struct cp_event *ev)
{
    static char buf[CP_EVENT_JSON_MAX];
    int n = cp_event_to_json(ev, buf, sizeof buf);
    if (n <= 0) abort();
    struct one o = {{one_event, one_reject, NULL}, {0}, 0};
    o.emit.user = &o;
    if (cp_source_json.parse(NULL, ctx, buf, (size_t)n, &o.emit) != 1 || o.n != 1) abort();
    if (!cp_event_equal(ev, &o.ev)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct fuzz_source_opts opts = {
        .fmt = &cp_source_json,
        .mode = FUZZ_WHOLE,
        .indexed = true,
        .check_event = roundtrip,
    };
    return fuzz_source_run(&opts, data, size);
}
