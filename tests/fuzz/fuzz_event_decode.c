/* fuzz_event_decode.c - libFuzzer target: msgpack event decoder; a decoded event must survive
 * re-encoding. */
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp_arena.h"
#include "cp_event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct cp_arena arena1, arena2;
    static msgpack_sbuffer sb;
    static char json[CP_EVENT_JSON_MAX];
    static int ready;
    if (!ready) {
        cp_arena_init(&arena1, 16384, 1 << 20);
        cp_arena_init(&arena2, 16384, 1 << 20);
        msgpack_sbuffer_init(&sb);
        ready = 1;
    }
    cp_arena_reset(&arena1);
    cp_arena_reset(&arena2);
    msgpack_sbuffer_clear(&sb);

    struct cp_event ev, ev2;
    const char *why = NULL;
    if (cp_event_decode((const char *)data, size, &arena1, &ev, &why) < 0) {
        if (!why) abort(); /* every rejection names its reason */
        return 0;
    }
    if (cp_event_validate(&ev, &why) != 0) abort(); /* decode promised a valid event */

    int n = cp_event_encode(&ev, (struct msgpack_sbuffer *)&sb);
    if (n <= 0 || n > CP_EVENT_MSGPACK_MAX) abort();
    if (cp_event_decode(sb.data, sb.size, &arena2, &ev2, &why) != 0) {
        fprintf(stderr, "re-decode failed: %s\n", why);
        abort();
    }
    if (!cp_event_equal(&ev, &ev2)) {
        fprintf(stderr, "round trip changed the event\n");
        abort();
    }
    /* The fixed-buffer encoder agrees byte for byte. */
    static char fixed[CP_EVENT_MSGPACK_MAX];
    if (cp_event_encode_to(&ev, fixed, sizeof fixed) != n || memcmp(fixed, sb.data, (size_t)n))
        abort();
    if (cp_event_to_json(&ev, json, sizeof json) <= 0) abort();
    return 0;
}
