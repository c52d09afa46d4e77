/* kafka_verify.c - produce numbered messages and read them back: no gap, no duplicate, order per
 * partition. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "cp_kafka.h"
#include "cp_log.h"
#include "cp_time.h"

/*
 * The invariant is librdkafka's own message verifier (tests/test.h
 * TEST_MSGVER_ORDER|DUP|RANGE): every sequence number 0..N-1 is in the
 * log exactly once, and within a partition sequence numbers only grow.
 * A consumer that sees an offset again after a rebalance is re-reading,
 * not finding a duplicate, so the consume side tracks offsets and checks
 * sequence numbers only for offsets it has not seen before.
 */

#define MAX_PARTS 4096

static const char usage[] =
    "usage: kafka_verify produce -b BOOTSTRAP -t TOPIC -n N [-r RATE] [-s SIZE]\n"
    "                            [-m COUNT:FILE] [-T SECONDS]\n"
    "       kafka_verify consume -b BOOTSTRAP -t TOPIC -n N [-g GROUP] [-T SECONDS]\n"
    "  -X key=value      extra librdkafka property (repeatable), e.g. to show that the\n"
    "                    checks fail with enable.idempotence=false under faults\n"
    "  produce: N messages \"seq=<i>\" (keys call-<i%%997>) with an idempotent producer,\n"
    "           RATE messages/s at most (0 = unlimited), SIZE-byte values; when COUNT\n"
    "           deliveries have succeeded, FILE is created. Every delivery report\n"
    "           must succeed, offsets and sequence numbers must grow per partition.\n"
    "  consume: read the topic in consumer group GROUP until all N are seen, then to\n"
    "           the end of every partition; no gap, no duplicate, order per partition.\n"
    "  Exit 0 when every check passed; the last stdout line is the summary.\n";

struct opts {
    const char *brokers;
    const char *topic;
    const char *group;
    long n;
    long rate;
    long size;
    long mark_at;
    const char *mark_file;
    long timeout_s;
    const char *extra[16]; /* -X key=value librdkafka overrides */
    size_t extra_n;
};

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) return -1;
    *out = v;
    return 0;
}

static double elapsed_s(int64_t start_us)
{
    return (double)(cp_time_mono_us() - start_us) / 1e6;
}

/* ---- produce ---- */

struct prod_state {
    const struct opts *o;
    long delivered;
    long failed;
    long order_errors;
    int marked;
    int32_t max_part;
    int64_t last_off[MAX_PARTS];
    int64_t last_seq[MAX_PARTS];
    long count[MAX_PARTS];
};

static void write_mark(struct prod_state *st)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", st->o->mark_file);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "delivered=%ld\n", st->delivered) < 0 || fclose(f) != 0 ||
        rename(tmp, st->o->mark_file) != 0) {
        cp_error(NULL, "could not write mark file %s: %s", st->o->mark_file, strerror(errno));
        return;
    }
    cp_info(NULL, "mark: %ld delivered", st->delivered);
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct prod_state *st = opaque;
    int64_t seq = (int64_t)(uintptr_t)m->_private;
    if (m->err) {
        if (st->failed++ < 10)
            cp_error(NULL, "delivery of seq %" PRId64 " failed: %s (%s)", seq,
                     rd_kafka_err2str(m->err), cp_err_name(cp_kafka_err(m->err)));
        return;
    }
    st->delivered++;
    int32_t p = m->partition;
    if (p < 0 || p >= MAX_PARTS) {
        if (st->order_errors++ < 10)
            cp_error(NULL, "seq %" PRId64 ": partition %d out of range", seq, (int)p);
        return;
    }
    if (p > st->max_part) st->max_part = p;
    /* Delivery reports of one partition arrive in produce order. */
    if (m->offset <= st->last_off[p] || seq <= st->last_seq[p]) {
        if (st->order_errors++ < 10)
            cp_error(NULL,
                     "partition %d: seq %" PRId64 " at offset %" PRId64 " after seq %" PRId64
                     " at offset %" PRId64,
                     (int)p, seq, m->offset, st->last_seq[p], st->last_off[p]);
    }
    st->last_off[p] = m->offset;
    st->last_seq[p] = seq;
    st->count[p]++;
    if (st->o->mark_file && !st->marked && st->delivered >= st->o->mark_at) {
        st->marked = 1;
        write_mark(st);
    }
}

static int run_produce(const struct opts *o)
{
    static struct prod_state st;
    st.o = o;
    st.max_part = -1;
    for (int i = 0; i < MAX_PARTS; i++)
        st.last_off[i] = st.last_seq[i] = -1;

    char errstr[512];
    char tmo[64];
    snprintf(tmo, sizeof tmo, "message.timeout.ms=%ld", o->timeout_s * 1000);
    const char *extra[1 + CP_ARRAY_LEN(o->extra)] = {tmo};
    for (size_t i = 0; i < o->extra_n; i++)
        extra[1 + i] = o->extra[i];
    struct cp_kafka_producer_opts po = {
        .brokers = o->brokers,
        .client_id = "kafka_verify",
        .extra = extra,
        .extra_n = 1 + o->extra_n,
    };
    rd_kafka_conf_t *conf = cp_kafka_producer_conf(&po, errstr, sizeof errstr);
    if (!conf) {
        cp_error(NULL, "could not configure the producer: %s", errstr);
        return 2;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_opaque(conf, &st);
    rd_kafka_t *rk = cp_kafka_producer_new(conf, errstr, sizeof errstr);
    if (!rk) {
        cp_error(NULL, "could not create the producer: %s", errstr);
        return 2;
    }

    char *value = malloc((size_t)o->size + 1);
    if (!value) {
        rd_kafka_destroy(rk);
        return 2;
    }
    memset(value, 'x', (size_t)o->size);
    int64_t start = cp_time_mono_us();
    int64_t deadline = start + (int64_t)o->timeout_s * 1000000;
    long produce_errors = 0;
    for (long i = 0; i < o->n && cp_time_mono_us() < deadline; i++) {
        if (o->rate > 0) {
            int64_t due = start + (int64_t)((double)i * 1e6 / (double)o->rate);
            int64_t now = cp_time_mono_us();
            if (due > now) rd_kafka_poll(rk, (int)((due - now) / 1000) + 1);
        }
        if ((i & 255) == 0) rd_kafka_poll(rk, 0);
        char key[32];
        int klen = snprintf(key, sizeof key, "call-%ld", i % 997);
        int hlen = snprintf(value, (size_t)o->size + 1, "seq=%ld ", i);
        if (hlen < o->size) value[hlen] = 'x'; /* snprintf's terminator inside the padding */
        size_t vlen = (size_t)o->size;         /* -s is at least 16, "seq=99999999 " fits */
        for (;;) {
            rd_kafka_resp_err_t err = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(o->topic), RD_KAFKA_V_KEY(key, (size_t)klen),
                RD_KAFKA_V_VALUE(value, vlen), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_OPAQUE((void *)(uintptr_t)i), RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && cp_time_mono_us() < deadline) {
                rd_kafka_poll(rk, 50);
                continue;
            }
            if (err) {
                if (produce_errors++ < 10)
                    cp_error(NULL, "could not produce seq %ld: %s", i, rd_kafka_err2str(err));
            }
            break;
        }
    }
    free(value);
    double enq_s = elapsed_s(start);
    while (rd_kafka_outq_len(rk) > 0 && cp_time_mono_us() < deadline)
        rd_kafka_flush(rk, 200);
    int outq = rd_kafka_outq_len(rk);
    int fatal = cp_kafka_fatal(rk, errstr, sizeof errstr);
    if (fatal < 0) cp_error(NULL, "producer fatal error: %s", errstr);
    rd_kafka_destroy(rk);

    printf("partitions:");
    for (int p = 0; p <= st.max_part; p++)
        printf(" %d=%ld", p, st.count[p]);
    printf("\n");
    int ok = st.delivered == o->n && st.failed == 0 && st.order_errors == 0 &&
             produce_errors == 0 && outq == 0 && fatal == 0;
    printf("kafka_verify produce: n=%ld delivered=%ld failed=%ld order_errors=%ld "
           "produce_errors=%ld undelivered=%d fatal=%d enqueue=%.1fs elapsed=%.1fs: %s\n",
           o->n, st.delivered, st.failed, st.order_errors, produce_errors, outq, fatal ? 1 : 0,
           enq_s, elapsed_s(start), ok ? "OK" : "FAIL");
    return ok ? 0 : 1;
}

/* ---- consume ---- */

struct cons_state {
    long n;
    unsigned char *seen;
    long seen_cnt;
    long dups;
    long order_errors;
    long offset_gaps;
    long bad;
    long redelivered;
    int64_t next_off[MAX_PARTS];
    int64_t last_seq[MAX_PARTS];
};

static void check_message(struct cons_state *st, const rd_kafka_message_t *m)
{
    int32_t p = m->partition;
    if (p < 0 || p >= MAX_PARTS) {
        st->bad++;
        return;
    }
    if (m->offset < st->next_off[p]) {
        st->redelivered++; /* read again after a rebalance: not in the log twice */
        return;
    }
    if (m->offset > st->next_off[p]) {
        if (st->offset_gaps++ < 10)
            cp_error(NULL,
                     "partition %d: offset %" PRId64 " follows %" PRId64
                     " (messages missing from the log)",
                     (int)p, m->offset, st->next_off[p] - 1);
    }
    st->next_off[p] = m->offset + 1;

    long seq;
    char buf[32];
    size_t len = m->len < sizeof buf - 1 ? m->len : sizeof buf - 1;
    memcpy(buf, m->payload ? m->payload : "", len);
    buf[len] = '\0';
    char *sp = strchr(buf, ' ');
    if (sp) *sp = '\0';
    if (strncmp(buf, "seq=", 4) != 0 || parse_long(buf + 4, 0, st->n - 1, &seq) < 0) {
        if (st->bad++ < 10)
            cp_error(NULL, "partition %d offset %" PRId64 ": unexpected value \"%s\"", (int)p,
                     m->offset, buf);
        return;
    }
    if (st->seen[seq]) {
        if (st->dups++ < 10)
            cp_error(NULL, "partition %d offset %" PRId64 ": duplicate seq %ld", (int)p, m->offset,
                     seq);
    } else {
        st->seen[seq] = 1;
        st->seen_cnt++;
    }
    if (seq <= st->last_seq[p]) {
        if (st->order_errors++ < 10)
            cp_error(NULL, "partition %d offset %" PRId64 ": seq %ld after seq %" PRId64, (int)p,
                     m->offset, seq, st->last_seq[p]);
    }
    st->last_seq[p] = seq;
}

/* True when every partition has been read up to its high watermark. */
static int at_end(rd_kafka_t *rk, const char *topic, int nparts, struct cons_state *st)
{
    for (int p = 0; p < nparts && p < MAX_PARTS; p++) {
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 2000)) return 0;
        if (hi > (st->next_off[p] < 0 ? 0 : st->next_off[p])) return 0;
    }
    return 1;
}

static int topic_partitions(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int n = -1;
    if (rkt && rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
            n = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
    }
    if (rkt) rd_kafka_topic_destroy(rkt);
    return n;
}

static int run_consume(const struct opts *o)
{
    static struct cons_state st;
    st.n = o->n;
    st.seen = calloc((size_t)o->n, 1);
    if (!st.seen) return 2;
    for (int i = 0; i < MAX_PARTS; i++) {
        st.next_off[i] = 0;
        st.last_seq[i] = -1;
    }

    char errstr[512];
    struct cp_kafka_consumer_opts co = {
        .brokers = o->brokers,
        .group_id = o->group,
        .client_id = "kafka_verify",
        .auto_commit = true,
        /* The mock's rebalances wait for the session timeout (DESIGN.md section 4). */
        .session_timeout_ms = 6000,
        .heartbeat_interval_ms = 500,
        .extra = o->extra,
        .extra_n = o->extra_n,
    };
    rd_kafka_conf_t *conf = cp_kafka_consumer_conf(&co, errstr, sizeof errstr);
    rd_kafka_t *rk = conf ? cp_kafka_consumer_new(conf, errstr, sizeof errstr) : NULL;
    if (!rk) {
        cp_error(NULL, "could not create the consumer: %s", errstr);
        free(st.seen);
        return 2;
    }
    int64_t start = cp_time_mono_us();
    int64_t deadline = start + (int64_t)o->timeout_s * 1000000;
    int nparts = topic_partitions(rk, o->topic);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, o->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (err || nparts <= 0) {
        cp_error(NULL, "could not subscribe to %s: %s", o->topic,
                 err ? rd_kafka_err2str(err) : "no metadata for the topic");
        rd_kafka_destroy(rk);
        free(st.seen);
        return 2;
    }

    struct cp_log_limit lim = CP_LOG_LIMIT_INIT(5, 5000);
    double first_s = -1;
    int64_t next_end_check = 0;
    int done = 0;
    while (!done && cp_time_mono_us() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m) {
            if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    cp_log_limited(&lim, CP_LOG_WARN, NULL, "consumer error: %s",
                                   rd_kafka_message_errstr(m));
            } else {
                if (first_s < 0) first_s = elapsed_s(start);
                check_message(&st, m);
                rd_kafka_offset_store(m->rkt, m->partition, m->offset);
            }
            rd_kafka_message_destroy(m);
        }
        /* Once all N are in, read on to each partition's end so a duplicate
         * written after the last new number is still caught. */
        if (st.seen_cnt == o->n && cp_time_mono_us() >= next_end_check) {
            done = at_end(rk, o->topic, nparts, &st);
            next_end_check = cp_time_mono_us() + 500000;
        }
    }
    int fatal = cp_kafka_fatal(rk, errstr, sizeof errstr);
    if (fatal < 0) cp_error(NULL, "consumer fatal error: %s", errstr);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);

    long missing = o->n - st.seen_cnt;
    if (missing > 0) {
        printf("missing:");
        int shown = 0;
        for (long i = 0; i < o->n && shown < 20; i++) {
            if (!st.seen[i]) {
                printf(" %ld", i);
                shown++;
            }
        }
        printf("%s\n", missing > shown ? " ..." : "");
    }
    free(st.seen);
    int ok = missing == 0 && st.dups == 0 && st.order_errors == 0 && st.offset_gaps == 0 &&
             st.bad == 0 && done && fatal == 0;
    printf("kafka_verify consume: n=%ld seen=%ld missing=%ld dup=%ld order_errors=%ld "
           "offset_gaps=%ld bad=%ld redelivered=%ld partitions=%d first=%.1fs elapsed=%.1fs: %s\n",
           o->n, st.seen_cnt, missing, st.dups, st.order_errors, st.offset_gaps, st.bad,
           st.redelivered, nparts, first_s, elapsed_s(start), ok ? "OK" : "FAIL");
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "produce") != 0 && strcmp(argv[1], "consume") != 0)) {
        fputs(usage, stderr);
        return 2;
    }
    const char *mode = argv[1];
    cp_log_set_service("kafka_verify");
    struct opts o = {.group = "kafka_verify", .n = 0, .rate = 0, .size = 64, .timeout_s = 90};
    int opt;
    optind = 2;
    while ((opt = getopt(argc, argv, "b:t:n:g:r:s:m:T:X:")) != -1) {
        int bad = 0;
        switch (opt) {
        case 'b':
            o.brokers = optarg;
            break;
        case 't':
            o.topic = optarg;
            break;
        case 'g':
            o.group = optarg;
            break;
        case 'n':
            bad = parse_long(optarg, 1, 100000000, &o.n);
            break;
        case 'r':
            bad = parse_long(optarg, 0, 100000000, &o.rate);
            break;
        case 's':
            bad = parse_long(optarg, 16, 1000000, &o.size);
            break;
        case 'T':
            bad = parse_long(optarg, 1, 86400, &o.timeout_s);
            break;
        case 'X':
            if (o.extra_n == CP_ARRAY_LEN(o.extra))
                bad = 1;
            else
                o.extra[o.extra_n++] = optarg;
            break;
        case 'm': {
            char *colon = strchr(optarg, ':');
            if (!colon) {
                bad = 1;
                break;
            }
            *colon = '\0';
            bad = parse_long(optarg, 1, 100000000, &o.mark_at);
            o.mark_file = colon + 1;
            break;
        }
        default:
            bad = 1;
        }
        if (bad) {
            fputs(usage, stderr);
            return 2;
        }
    }
    if (!o.brokers || !o.topic || o.n <= 0) {
        fputs(usage, stderr);
        return 2;
    }
    return strcmp(mode, "produce") == 0 ? run_produce(&o) : run_consume(&o);
}
