/* ingest_verify.c - reads callpipe.events back: numbered events n0..n(N-1) each once, per-call order kept. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <librdkafka/rdkafka.h>

#include "cp_arena.h"
#include "cp_event.h"
#include "cp_time.h"

/*
 *   ingest_verify -b BOOTSTRAP [-t TOPIC] -n TOTAL [-F FOREIGN] [-i IDLE_MS] [-T SECONDS]
 *
 * The counterpart of ingest_load: assigns every partition from the beginning
 * (no consumer group) and decodes each event.  An event_id "n<number>" with
 * number < TOTAL is a numbered event; anything else is foreign (counted, and
 * must equal FOREIGN, default 0).  Checks, as librdkafka's message verifier
 * does for plain messages:
 *   - every number 0..TOTAL-1 was seen exactly once (missing, duplicate);
 *   - within one call (the record key org/pbx/call) numbers and ts only grow
 *     in the order the partition holds them, and every event of the call is
 *     in the same partition (out_of_order).
 * It stops when every number was seen and every partition was read to its
 * end, after IDLE_MS without a record at the end of every partition (default
 * 5000), or after SECONDS (default 120).  The dev broker evicts the oldest
 * records of a partition beyond about 5 MB: a partition that no longer starts
 * at offset 0 is reported, since its lost records would count as missing.
 * The last stdout line is the summary ending in OK (exit 0) or FAIL (exit 1).
 */

#define MAX_PARTS 4096

struct call {
    char *key; /* NULL = free slot */
    long last_n;
    int64_t last_ts;
    int32_t partition;
};

static struct {
    struct call *slots;
    size_t cap, used;
} calls;

static uint64_t hash(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ULL;
    return h;
}

static struct call *call_find(const char *key, size_t n);

static void calls_grow(void)
{
    struct call *old = calls.slots;
    size_t old_cap = calls.cap;
    calls.cap = old_cap ? old_cap * 2 : 1 << 16;
    calls.slots = calloc(calls.cap, sizeof *calls.slots);
    if (!calls.slots) {
        fprintf(stderr, "ingest_verify: out of memory\n");
        exit(2);
    }
    calls.used = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].key) {
            struct call *c = call_find(old[i].key, strlen(old[i].key));
            *c = old[i];
            calls.used++;
        }
    free(old);
}

/* The slot of `key`: its entry, or the free slot where it belongs (key NULL). */
static struct call *call_find(const char *key, size_t n)
{
    size_t i = hash(key, n) & (calls.cap - 1);
    for (;; i = (i + 1) & (calls.cap - 1)) {
        struct call *c = &calls.slots[i];
        if (!c->key || (strlen(c->key) == n && memcmp(c->key, key, n) == 0))
            return c;
    }
}

static struct call *call_get(const char *key, size_t n, bool *fresh)
{
    if (2 * (calls.used + 1) > calls.cap)
        calls_grow();
    struct call *c = call_find(key, n);
    *fresh = !c->key;
    if (!c->key) {
        c->key = strndup(key, n);
        if (!c->key) {
            fprintf(stderr, "ingest_verify: out of memory\n");
            exit(2);
        }
        calls.used++;
    }
    return c;
}

/* "n<digits>" below total → the number; otherwise -1. */
static long numbered(const char *id, long total)
{
    if (!id || id[0] != 'n' || id[1] < '0' || id[1] > '9')
        return -1;
    char *end;
    errno = 0;
    long v = strtol(id + 1, &end, 10);
    if (errno || *end || v >= total || (id[1] == '0' && id[2]))
        return -1;
    return v;
}

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    const char *brokers = NULL, *topic = "callpipe.events";
    long total = -1, foreign_want = 0, idle_ms = 5000, timeout_s = 120;
    int o;
    while ((o = getopt(argc, argv, "b:t:n:F:i:T:")) != -1) {
        int bad = 0;
        switch (o) {
        case 'b': brokers = optarg; break;
        case 't': topic = optarg; break;
        case 'n': bad = parse_long(optarg, 0, 1000000000, &total); break;
        case 'F': bad = parse_long(optarg, 0, 1000000000, &foreign_want); break;
        case 'i': bad = parse_long(optarg, 100, 3600000, &idle_ms); break;
        case 'T': bad = parse_long(optarg, 1, 86400, &timeout_s); break;
        default: bad = 1;
        }
        if (bad) {
            brokers = NULL;
            break;
        }
    }
    if (!brokers || total < 0) {
        fprintf(stderr, "usage: ingest_verify -b BOOTSTRAP [-t TOPIC] -n TOTAL [-F FOREIGN] "
                        "[-i IDLE_MS] [-T SECONDS]\n");
        return 2;
    }
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err) ||
        rd_kafka_conf_set(conf, "group.id", "ingest_verify", err, sizeof err) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof err) ||
        rd_kafka_conf_set(conf, "fetch.message.max.bytes", "4194304", err, sizeof err)) {
        fprintf(stderr, "ingest_verify: %s\n", err);
        return 2;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "ingest_verify: %s\n", err);
        return 2;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) || md->topic_cnt != 1 ||
        md->topics[0].partition_cnt == 0 || md->topics[0].partition_cnt > MAX_PARTS) {
        fprintf(stderr, "ingest_verify: no metadata for %s\n", topic);
        return 2;
    }
    int n_parts = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n_parts);
    for (int p = 0; p < n_parts; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);

    uint8_t *seen = calloc((size_t)total + 1, 1);
    bool at_eof[MAX_PARTS] = {false};
    int64_t first_off[MAX_PARTS];
    for (int p = 0; p < n_parts; p++)
        first_off[p] = -1;
    calls_grow();
    struct cp_arena arena;
    cp_arena_init(&arena, 1 << 16, 0);
    long messages = 0, distinct = 0, dups = 0, ooo = 0, foreign = 0, undecodable = 0;
    int64_t start = cp_time_mono_us(), last = start;
    const char *stop_why = "timeout";
    for (;;) {
        int64_t now = cp_time_mono_us();
        if (now - start > (int64_t)timeout_s * 1000000)
            break;
        int eofs = 0;
        for (int p = 0; p < n_parts; p++)
            eofs += at_eof[p];
        if (eofs == n_parts) {
            if (distinct == total && foreign >= foreign_want) {
                stop_why = "complete";
                break;
            }
            if ((now - last) / 1000 > idle_ms) {
                stop_why = "idle";
                break;
            }
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && m->partition < n_parts)
                at_eof[m->partition] = true;
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->err) {
            fprintf(stderr, "ingest_verify: %s\n", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        last = cp_time_mono_us();
        messages++;
        int32_t part = m->partition;
        if (part >= 0 && part < n_parts) {
            at_eof[part] = false;
            if (first_off[part] < 0)
                first_off[part] = m->offset;
        }
        struct cp_event ev;
        const char *why = NULL;
        if (cp_event_decode(m->payload, m->len, &arena, &ev, &why) != 0) {
            if (undecodable++ < 5)
                fprintf(stderr, "ingest_verify: undecodable record at %d/%" PRId64 ": %s\n", part,
                        m->offset, why ? why : "?");
            rd_kafka_message_destroy(m);
            cp_arena_reset(&arena);
            continue;
        }
        long n = numbered(ev.event_id, total);
        if (n < 0) {
            foreign++;
        } else if (seen[n]) {
            if (dups++ < 10)
                fprintf(stderr, "ingest_verify: duplicate n%ld at %d/%" PRId64 "\n", n, part,
                        m->offset);
            if (seen[n] < 255)
                seen[n]++;
        } else {
            seen[n] = 1;
            distinct++;
            bool fresh;
            struct call *c = call_get(m->key ? m->key : "", m->key ? m->key_len : 0, &fresh);
            if (!fresh && (n <= c->last_n || ev.ts <= c->last_ts || part != c->partition)) {
                if (ooo++ < 10)
                    fprintf(stderr,
                            "ingest_verify: call %s: n%ld (ts %" PRId64 ", partition %d) after "
                            "n%ld (ts %" PRId64 ", partition %d)\n",
                            c->key, n, ev.ts, part, c->last_n, c->last_ts, c->partition);
            }
            c->last_n = n;
            c->last_ts = ev.ts;
            c->partition = part;
        }
        rd_kafka_message_destroy(m);
        cp_arena_reset(&arena);
    }
    long missing = total - distinct;
    if (missing) {
        int shown = 0;
        fprintf(stderr, "ingest_verify: missing:");
        for (long n = 0; n < total && shown < 20; n++)
            if (!seen[n]) {
                fprintf(stderr, " n%ld", n);
                shown++;
            }
        fprintf(stderr, "%s\n", missing > shown ? " ..." : "");
    }
    int evicted = 0;
    for (int p = 0; p < n_parts; p++)
        if (first_off[p] > 0) {
            fprintf(stderr, "ingest_verify: partition %d starts at offset %" PRId64
                            " (the broker evicted older records)\n",
                    p, first_off[p]);
            evicted++;
        }
    bool ok = missing == 0 && dups == 0 && ooo == 0 && undecodable == 0 &&
              foreign == foreign_want && evicted == 0;
    printf("ingest_verify: expected=%ld distinct=%ld missing=%ld duplicate=%ld out_of_order=%ld "
           "foreign=%ld/%ld undecodable=%ld calls=%zu partitions=%d evicted=%d messages=%ld "
           "seconds=%.1f (%s) %s\n",
           total, distinct, missing, dups, ooo, foreign, foreign_want, undecodable, calls.used,
           n_parts, evicted, messages, (double)(cp_time_mono_us() - start) / 1e6, stop_why,
           ok ? "OK" : "FAIL");
    fflush(stdout);
    cp_arena_destroy(&arena);
    for (size_t i = 0; i < calls.cap; i++)
        free(calls.slots[i].key);
    free(calls.slots);
    free(seen);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return ok ? 0 : 1;
}
