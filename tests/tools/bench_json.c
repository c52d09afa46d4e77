/* bench_json.c - single-thread throughput of the callpipe-json parser on ~320-byte events. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cp_arena.h"
#include "cp_event.h"
#include "../../ingest/sources/json/json.h"

/*
 * Usage: bench_json [N] [--derive]
 * Generates N (default 1,000,000) NDJSON events in memory (outside the timed
 * loop), then parses each as one TCP line, resetting the batch arena every
 * 1000 records like the ingest engine does.  --derive leaves event_id out so
 * every event pays for the SHA-256 id.  Pin it for a per-core figure:
 *   taskset -c 1 build/tools/bench_json
 */

struct counter {
    struct cp_emit emit;
    uint64_t events, rejects, check;
};

static int on_event(struct cp_emit *out, struct cp_event *ev)
{
    struct counter *c = out->user;
    c->events++;
    c->check += (uint64_t)ev->ts + (uint64_t)ev->talk + (unsigned char)ev->call[0];
    return 0;
}

static void on_reject(struct cp_emit *out, uint32_t index, const char *rec, size_t len,
                      const char *reason)
{
    struct counter *c = out->user;
    (void)index;
    if (c->rejects++ == 0)
        fprintf(stderr, "unexpected reject: %s: %.*s\n", reason, (int)len, rec);
}

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *const kinds[] = {"call_start", "ringing",       "answer",  "queue_enter",
                                    "agent_connect", "call_end",   "hold",    "cdr"};

/* One event line; half the names \u-escaped, half raw UTF-8, like libraries.md's workload. */
static int gen(char *buf, size_t cap, uint64_t i, int with_id)
{
    uint64_t x = i * 6364136223846793005ull + 1442695040888963407ull;
    char id[48] = "";
    if (with_id)
        snprintf(id, sizeof id, "\"event_id\":\"01JD%022" PRIu64 "\",",
                 x % UINT64_C(10000000000000000000));
    const char *name = (i & 1) ? "J\\u00fcrgen M\\u00fcller-\\u0160imek" : "Jürgen Müller-Šimek";
    return snprintf(buf, cap,
                    "{\"v\":1,%s\"call\":\"c-%012" PRIu64 "\",\"leg\":\"l-%" PRIu64 "\","
                    "\"kind\":\"%s\",\"ts\":%" PRId64 ",\"dir\":\"inbound\","
                    "\"from\":\"+4930%08" PRIu64 "\",\"from_name\":\"%s\","
                    "\"to\":\"+4940%07" PRIu64 "\",\"queue\":\"support-de\","
                    "\"agent\":\"agent-%03" PRIu64 "\",\"agent_name\":null,"
                    "\"disp\":\"answered\",\"talk\":%" PRIu64 ","
                    "\"q850\":16}",
                    id, i / 4, i % 4, kinds[i % 8], INT64_C(1764064800000000) + (int64_t)i * 1000,
                    x % 100000000, name, (x >> 20) % 10000000, (x >> 40) % 1000, x % 3600);
}

int main(int argc, char **argv)
{
    size_t n = 1000000;
    int with_id = 1;
    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--derive") == 0)
            with_id = 0;
        else
            n = strtoull(argv[a], NULL, 10);
    }
    size_t stride = 512;
    char *buf = malloc(n * stride);
    uint32_t *lens = malloc(n * sizeof *lens);
    if (!buf || !lens)
        return 1;
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        int l = gen(buf + i * stride, stride, i, with_id);
        if (l <= 0 || (size_t)l >= stride)
            return 1;
        lens[i] = (uint32_t)l;
        bytes += (uint64_t)l;
    }

    struct cp_arena arena;
    cp_arena_init(&arena, 256 * 1024, 0);
    struct counter c = {{on_event, on_reject, NULL}, 0, 0, 0};
    c.emit.user = &c;
    struct cp_source_ctx ctx = {"acme", "pbx-1", NULL, INT64_C(1764064900000000), &arena};

    /* Thread CPU time as well as wall time: on a shared VM other processes
     * steal the core, and CPU time is what one core actually spent. */
    double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    for (size_t i = 0; i < n; i++) {
        if (i % 1000 == 0)
            cp_arena_reset(&arena);
        cp_source_json.parse(NULL, &ctx, buf + i * stride, lens[i], &c.emit);
    }
    double dt = clock_s(CLOCK_MONOTONIC) - t0;
    double ct = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;

    printf("bench_json: %zu events (%s), avg %.1f bytes, %" PRIu64 " rejects, check %" PRIu64 "\n",
           n, with_id ? "event_id given" : "event_id derived", (double)bytes / (double)n,
           c.rejects, c.check);
    printf("bench_json: wall %.3f s, %.0f events/s, %.1f MB/s\n", dt, (double)c.events / dt,
           (double)bytes / dt / 1e6);
    printf("bench_json: cpu  %.3f s, %.0f events/s per core, %.1f MB/s\n", ct,
           (double)c.events / ct, (double)bytes / ct / 1e6);
    cp_arena_destroy(&arena);
    free(buf);
    free(lens);
    return c.rejects || c.events != n ? 1 : 0;
}
