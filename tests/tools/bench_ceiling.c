/* bench_ceiling.c - the ingest benchmark's ceiling: a plain librdkafka producer of the same lines. */
#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cp_kafka.h"

/*
 *   bench_ceiling -b BOOTSTRAP -t TOPIC -f FILE
 *
 * Produces every line of FILE (without its LF: the raw canonical JSON, the same
 * bytes the syslog peers forward) with the collector's producer settings
 * (cp_kafka_producer_conf: idempotent, acks=all, lz4, linger 5 ms, the
 * collector's queue limits), no key, no copy (the payloads stay in the file
 * buffer), and waits for every delivery report.  No parsing, no validation,
 * no encoding: the most a librdkafka producer does on this machine.  Prints
 *   events=N elapsed_s=S cpu_s=C rss_mb=R
 * where C is this process's user+system CPU over the produce, and R is peak
 * RSS minus the file buffer.
 */

static long delivered, failed;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err)
        failed++;
    else
        delivered++;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static long status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = 0;
    size_t kl = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl))
            v = atol(line + kl);
    if (f)
        fclose(f);
    return v;
}

int main(int argc, char **argv)
{
    const char *brokers = NULL, *topic = NULL, *path = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-b"))
            brokers = argv[i + 1];
        else if (!strcmp(argv[i], "-t"))
            topic = argv[i + 1];
        else if (!strcmp(argv[i], "-f"))
            path = argv[i + 1];
    }
    if (!brokers || !topic || !path) {
        fprintf(stderr, "usage: bench_ceiling -b BOOTSTRAP -t TOPIC -f FILE\n");
        return 2;
    }
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "bench_ceiling: could not open %s: %s\n", path, strerror(errno));
        return 1;
    }
    size_t len = (size_t)st.st_size;
    char *buf = malloc(len + 1);
    size_t got = 0;
    while (buf && got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r <= 0)
            return 1;
        got += (size_t)r;
    }
    close(fd);
    if (!buf)
        return 1;
    long base_kb = status_kb("VmRSS:");

    /* The same settings as ingest/ingest_kafka.c with ingest.yaml's defaults. */
    const char *extra[] = {"message.timeout.ms=0"};
    struct cp_kafka_producer_opts o = {
        .brokers = brokers,
        .client_id = "bench-ceiling",
        .compression = "lz4",
        .linger_ms = 5,
        .queue_max_msgs = 200000,
        .queue_max_kbytes = 256 * 1024,
        .extra = extra,
        .extra_n = 1,
    };
    char err[512];
    rd_kafka_conf_t *conf = cp_kafka_producer_conf(&o, err, sizeof err);
    if (!conf) {
        fprintf(stderr, "bench_ceiling: %s\n", err);
        return 1;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_t *rk = cp_kafka_producer_new(conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "bench_ceiling: %s\n", err);
        return 1;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    /* Connect and get the producer id before the clock starts, like the services. */
    const rd_kafka_metadata_t *md;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == 0)
        rd_kafka_metadata_destroy(md);

    double c0 = cpu_s();
    int64_t t0 = mono_us();
    long n = 0;
    for (size_t off = 0; off < len;) {
        char *nl = memchr(buf + off, '\n', len - off);
        size_t l = (nl ? (size_t)(nl - buf) : len) - off;
        while (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, 0, buf + off, l, NULL, 0, NULL) != 0) {
            if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "bench_ceiling: could not produce: %s\n",
                        rd_kafka_err2str(rd_kafka_last_error()));
                return 1;
            }
            rd_kafka_poll(rk, 1);
        }
        rd_kafka_poll(rk, 0);
        n++;
        off += l + 1;
    }
    while (delivered + failed < n)
        rd_kafka_poll(rk, 10);
    int64_t t1 = mono_us();
    double c1 = cpu_s();
    long peak_kb = status_kb("VmHWM:");
    printf("events=%ld delivered=%ld failed=%ld elapsed_s=%.3f cpu_s=%.3f rss_mb=%.1f\n", n,
           delivered, failed, (double)(t1 - t0) / 1e6, c1 - c0,
           (double)(peak_kb - base_kb) / 1024.0);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    free(buf);
    return failed ? 1 : 0;
}
