/* bench_count.c - count messages on a topic, all partitions, until N are there; print when. */
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 *   bench_count -b BOOTSTRAP -t TOPIC -n N [-T SECONDS] [-w]
 *
 * Assigns every partition from the beginning (no consumer group, so no
 * rebalance wait on the dev broker) and counts messages as they arrive, so it
 * can run while the producer produces: the dev broker keeps only ~5 MB per
 * partition and a consumer that keeps up never loses the oldest.  Exits 0 when
 * N messages were seen, printing
 *   count=N end_us=<CLOCK_MONOTONIC when message N arrived> bytes=B
 * and 1 on timeout (default 600 s, counting from the first message) or error.
 * -w polls the partitions' high watermarks instead of fetching (no decompression
 * cost, for a machine with few cores); end_us is then when the sum reached N.
 */

static volatile sig_atomic_t stop;
static void on_sig(int sig)
{
    (void)sig;
    stop = 1;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int set(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char err[256];
    if (rd_kafka_conf_set(c, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "bench_count: %s: %s\n", k, err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *brokers = NULL, *topic = NULL;
    long want = 0, timeout_s = 600;
    int watermarks = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-w")) {
            watermarks = 1;
            continue;
        }
        if (i + 1 >= argc)
            goto usage;
        if (!strcmp(argv[i], "-b"))
            brokers = argv[++i];
        else if (!strcmp(argv[i], "-t"))
            topic = argv[++i];
        else if (!strcmp(argv[i], "-n"))
            want = atol(argv[++i]);
        else if (!strcmp(argv[i], "-T"))
            timeout_s = atol(argv[++i]);
        else
            goto usage;
    }
    if (!brokers || !topic || want <= 0)
        goto usage;
    signal(SIGINT, on_sig);
    signal(SIGTERM, on_sig);

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[512];
    if (set(conf, "bootstrap.servers", brokers) || set(conf, "group.id", "bench_count") ||
        set(conf, "enable.auto.commit", "false") || set(conf, "fetch.wait.max.ms", "20") ||
        set(conf, "fetch.message.max.bytes", "4194304") ||
        set(conf, "queued.max.messages.kbytes", "262144") || set(conf, "check.crcs", "false"))
        return 1;
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "bench_count: could not create consumer: %s\n", err);
        return 1;
    }
    rd_kafka_poll_set_consumer(rk);

    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int nparts = 0;
    for (int tries = 0; tries < 100 && nparts == 0; tries++) {
        if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (md->topic_cnt == 1 && md->topics[0].err == 0)
                nparts = md->topics[0].partition_cnt;
            rd_kafka_metadata_destroy(md);
        }
        if (nparts == 0) {
            struct timespec ts = {0, 100000000};
            nanosleep(&ts, NULL);
        }
    }
    if (nparts == 0) {
        fprintf(stderr, "bench_count: topic %s not found\n", topic);
        return 1;
    }

    long count = 0;
    long long bytes = 0;
    int64_t end_us = 0, first_us = 0, started = mono_us();
    int rc = 1;
    if (watermarks) {
        while (!stop) {
            long sum = 0;
            for (int p = 0; p < nparts; p++) {
                int64_t lo, hi;
                if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 5000) == 0)
                    sum += (long)hi;
            }
            count = sum;
            if (count > 0 && !first_us)
                first_us = mono_us();
            if (count >= want) {
                end_us = mono_us();
                rc = 0;
                break;
            }
            if (mono_us() - (first_us ? first_us : started) > timeout_s * 1000000)
                break;
            struct timespec ts = {0, 5000000};
            nanosleep(&ts, NULL);
        }
    } else {
        rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(nparts);
        for (int p = 0; p < nparts; p++)
            rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
        if (rd_kafka_assign(rk, parts) != 0) {
            fprintf(stderr, "bench_count: could not assign partitions\n");
            return 1;
        }
        rd_kafka_topic_partition_list_destroy(parts);
        while (!stop) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
            if (!m) {
                if (mono_us() - (first_us ? first_us : started) > timeout_s * 1000000)
                    break;
                continue;
            }
            if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    fprintf(stderr, "bench_count: %s\n", rd_kafka_message_errstr(m));
                /* The oldest messages were evicted before we read them: the count is wrong. */
                if (m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
                    rd_kafka_message_destroy(m);
                    break;
                }
            } else {
                /* Show one payload, so a run can check that the bytes arrived unchanged. */
                if (count++ == 0) {
                    first_us = mono_us();
                    fprintf(stderr, "first: %.*s\n", (int)m->len, (const char *)m->payload);
                }
                bytes += (long long)m->len;
            }
            rd_kafka_message_destroy(m);
            if (count >= want) {
                end_us = mono_us();
                rc = 0;
                break;
            }
        }
    }
    printf("count=%ld end_us=%lld bytes=%lld partitions=%d\n", count, (long long)end_us, bytes,
           nparts);
    if (rc)
        fprintf(stderr, "bench_count: saw %ld of %ld messages\n", count, want);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;

usage:
    fprintf(stderr, "usage: bench_count -b BOOTSTRAP -t TOPIC -n N [-T SECONDS] [-w]\n");
    return 2;
}
