/* fuzz_frame.c - libFuzzer target: the framer never overruns its limit and is split-invariant. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cp_frame.h"

#define MAX_REC 256

struct digest {
    uint64_t hash;
    uint64_t events;
};

static void mix(struct digest *d, int tag, const char *p, size_t n, uint64_t extra)
{
    if (n > MAX_REC)
        abort(); /* a record above the limit escaped the framer */
    uint64_t h = d->hash ^ (uint64_t)tag * 0x9E3779B97F4A7C15ull ^ extra;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001B3ull;
    d->hash = h * 31 + n;
    d->events++;
}
static void on_rec(void *u, const char *p, size_t n)
{
    mix(u, 1, p, n, 0);
}
static void on_over(void *u, const char *p, size_t n, uint64_t total)
{
    if (total <= MAX_REC)
        abort(); /* reported as oversized but it was not */
    mix(u, 2, p, n, total);
}
static void on_bad(void *u, const char *reason, const char *p, size_t n)
{
    mix(u, 3, reason, strlen(reason), 0);
}

static struct digest run(enum cp_frame_mode mode, const uint8_t *data, size_t size, size_t chunk)
{
    struct digest d = {0, 0};
    struct cp_framer f;
    struct cp_frame_cb cb = {on_rec, on_over, on_bad, &d};
    if (cp_framer_init(&f, mode, MAX_REC, 16) != 0)
        abort();
    for (size_t i = 0; i < size; i += chunk) {
        cp_framer_feed(&f, (const char *)data + i, size - i < chunk ? size - i : chunk, &cb);
        if (cp_framer_buffered(&f) > MAX_REC)
            abort();
    }
    cp_framer_finish(&f, &cb);
    cp_framer_close(&f);
    return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    /* First byte picks the mode and the read size for the split run. */
    enum cp_frame_mode mode = (enum cp_frame_mode)(data[0] % 3);
    size_t chunk = (size_t)(data[1] % 17) + 1;
    data += 2;
    size -= 2;
    struct digest whole = run(mode, data, size, size ? size : 1);
    struct digest split = run(mode, data, size, chunk);
    if (whole.hash != split.hash || whole.events != split.events)
        abort(); /* framing depends on how the bytes were split into reads */
    return 0;
}
