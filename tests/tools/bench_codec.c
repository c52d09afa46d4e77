/* bench_codec.c - events/s of the canonical event msgpack encoder and decoder on one core. */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>

#include "cp_arena.h"
#include "cp_event.h"
#include "cp_time.h"

/* A typical queue-call CDR of about 300 bytes on the wire, like DESIGN.md's workload. */
static void sample(struct cp_event *ev, char *id, size_t idcap, long i)
{
    cp_event_init(ev);
    snprintf(id, idcap, "01JDQ8Z6X%017ld", i);
    ev->event_id = id;
    ev->org = "acme";
    ev->pbx = "eu-1";
    ev->src = "asterisk-ami";
    ev->call = "1764064800.42";
    ev->leg = "SIP/100-00000001";
    ev->kind = CP_KIND_CDR;
    ev->ts = 1764064800123456 + i;
    ev->recv = ev->ts + 1000;
    ev->start = ev->ts;
    ev->answer = ev->ts + 5000000;
    ev->end = ev->ts + 65000000;
    ev->dir = CP_DIR_INBOUND;
    ev->from = "+4930123456";
    ev->from_name = "Zoë Ünal";
    ev->to = "+498001234";
    ev->queue = "support";
    ev->agent = "agent/100";
    ev->agent_name = "山田太郎";
    ev->disp = CP_DISP_ANSWERED;
    ev->qout = CP_QOUT_ANSWERED;
    ev->side = CP_SIDE_CALLER;
    ev->q850 = 16;
    ev->ring = 5;
    ev->wait = 3;
    ev->talk = 60;
    ev->nx = 1;
    ev->x[0] = (struct cp_kv){"uniqueid", "1764064800.42"};
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    if (n <= 0) n = 1;
    struct cp_event ev, out;
    char id[40];
    sample(&ev, id, sizeof id, 0);

    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    long bytes = 0;
    int64_t t0 = cp_time_mono_us();
    for (long i = 0; i < n; i++) {
        ev.ts++;
        msgpack_sbuffer_clear(&sb);
        int len = cp_event_encode(&ev, &sb);
        if (len < 0) {
            fprintf(stderr, "could not encode: %d\n", len);
            return 1;
        }
        bytes += len;
    }
    int64_t t1 = cp_time_mono_us();
    double enc_s = (double)(t1 - t0) / 1e6;

    struct cp_arena arena;
    cp_arena_init(&arena, 4096, 1 << 20);
    const char *why;
    t0 = cp_time_mono_us();
    for (long i = 0; i < n; i++) {
        cp_arena_reset(&arena);
        int rc = cp_event_decode(sb.data, sb.size, &arena, &out, &why);
        if (rc < 0) {
            fprintf(stderr, "could not decode: %s\n", why);
            return 1;
        }
    }
    t1 = cp_time_mono_us();
    double dec_s = (double)(t1 - t0) / 1e6;

    printf("events %ld, %zu bytes each\n", n, sb.size);
    printf("encode %.0f events/s (%.0f MB/s)\n", (double)n / enc_s, (double)bytes / enc_s / 1e6);
    printf("decode %.0f events/s (%.0f MB/s)\n", (double)n / dec_s,
           (double)n * (double)sb.size / dec_s / 1e6);
    cp_arena_destroy(&arena);
    msgpack_sbuffer_destroy(&sb);
    return 0;
}
