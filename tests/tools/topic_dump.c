/* topic_dump.c - reads a topic from the beginning and prints each record as one JSON line (tests). */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <librdkafka/rdkafka.h>

#include "cp_arena.h"
#include "cp_event.h"
#include "cp_time.h"

/*
 *   topic_dump -b BOOTSTRAP -t TOPIC [-n COUNT] [-i IDLE_MS] [-d]
 *
 * Assigns every partition from offset 0 (no consumer group), prints events
 * as cp_event_to_json lines (with -d: dead letters as {"reason":..,"raw":..}),
 * and stops after COUNT records, or after IDLE_MS without a new record.
 * Exit 0 when COUNT was reached (or no COUNT given), 1 otherwise.  A record
 * that does not decode is printed as {"undecodable":"<reason>"} and fails the run.
 */

static void print_json_str(const char *p, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static int print_deadletter(const char *buf, size_t len)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, buf, len, NULL) != MSGPACK_UNPACK_SUCCESS ||
        u.data.type != MSGPACK_OBJECT_MAP) {
        msgpack_unpacked_destroy(&u);
        return -1;
    }
    putchar('{');
    for (uint32_t i = 0; i < u.data.via.map.size; i++) {
        msgpack_object_kv *kv = &u.data.via.map.ptr[i];
        if (i)
            putchar(',');
        print_json_str(kv->key.via.str.ptr, kv->key.via.str.size);
        putchar(':');
        if (kv->val.type == MSGPACK_OBJECT_STR)
            print_json_str(kv->val.via.str.ptr, kv->val.via.str.size);
        else if (kv->val.type == MSGPACK_OBJECT_BIN)
            print_json_str(kv->val.via.bin.ptr, kv->val.via.bin.size);
        else if (kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            printf("%llu", (unsigned long long)kv->val.via.u64);
        else if (kv->val.type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            printf("%lld", (long long)kv->val.via.i64);
        else
            printf("null");
    }
    printf("}\n");
    msgpack_unpacked_destroy(&u);
    return 0;
}

int main(int argc, char **argv)
{
    const char *brokers = NULL, *topic = NULL;
    long count = -1, idle_ms = 5000;
    int dead = 0, o;
    while ((o = getopt(argc, argv, "b:t:n:i:d")) != -1) {
        switch (o) {
        case 'b': brokers = optarg; break;
        case 't': topic = optarg; break;
        case 'n': count = atol(optarg); break;
        case 'i': idle_ms = atol(optarg); break;
        case 'd': dead = 1; break;
        default: return 2;
        }
    }
    if (!brokers || !topic) {
        fprintf(stderr, "usage: topic_dump -b BOOTSTRAP -t TOPIC [-n COUNT] [-i IDLE_MS] [-d]\n");
        return 2;
    }
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err);
    rd_kafka_conf_set(conf, "group.id", "topic_dump", err, sizeof err);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
    rd_kafka_conf_set(conf, "enable.partition.eof", "false", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "topic_dump: %s\n", err);
        return 2;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) || md->topic_cnt != 1 ||
        md->topics[0].partition_cnt == 0) {
        fprintf(stderr, "topic_dump: no metadata for %s\n", topic);
        return 2;
    }
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(0);
    for (int p = 0; p < md->topics[0].partition_cnt; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);

    struct cp_arena arena;
    cp_arena_init(&arena, 1 << 16, 0);
    char *json = malloc(CP_EVENT_JSON_MAX);
    long seen = 0;
    int bad = 0;
    int64_t last = cp_time_mono_us();
    while (count < 0 || seen < count) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            if ((cp_time_mono_us() - last) / 1000 > idle_ms)
                break;
            continue;
        }
        if (m->err) {
            rd_kafka_message_destroy(m);
            continue;
        }
        last = cp_time_mono_us();
        seen++;
        if (dead) {
            if (print_deadletter(m->payload, m->len) != 0) {
                printf("{\"undecodable\":\"dead letter\"}\n");
                bad++;
            }
        } else {
            struct cp_event ev;
            const char *why = NULL;
            if (cp_event_decode(m->payload, m->len, &arena, &ev, &why) != 0) {
                printf("{\"undecodable\":\"%s\"}\n", why ? why : "?");
                bad++;
            } else if (cp_event_to_json(&ev, json, CP_EVENT_JSON_MAX) >= 0) {
                printf("%s\n", json);
            }
            cp_arena_reset(&arena);
        }
        rd_kafka_message_destroy(m);
    }
    fflush(stdout);
    free(json);
    cp_arena_destroy(&arena);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (bad)
        return 1;
    return count < 0 || seen >= count ? 0 : 1;
}
