/* ingest_kafka.c - the collector's one shared producer: events, dead letters, delivery reports. */
#include "ingest.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp_kafka.h"
#include "cp_log.h"
#include "cp_time.h"

/*
 * Ownership: librdkafka copies each payload (RD_KAFKA_MSG_F_COPY) and owns
 * the copy until the delivery report; the report is the only place a record
 * counts as delivered, and the only place an HTTP request learns it may
 * answer 200 (Fluent Bit's Kafka data-loss bugs all came from releasing
 * earlier).  The message opaque says whom a report concerns without an
 * allocation on the hot path: NULL for a dead letter, the source's address with
 * its low bit set for a stream event, or a `struct dr_ctx` (malloc'd, freed in
 * the report) for an event an HTTP request waits for.  The delivery latency
 * comes from librdkafka (rd_kafka_message_latency), the topic from the message.
 *
 * message.timeout.ms is 0 (infinite): while Kafka is down, records wait in
 * librdkafka's queue instead of timing out; the queue's watermarks pause the
 * inputs, so memory stays bounded and nothing is dropped.
 */

struct dr_ctx {
    struct ing_waiter *w;
    struct ing_source *src;
};

#define OPAQUE_SRC ((uintptr_t)1) /* struct ing_source is pointer-aligned: bit 0 is free */

static void opaque_decode(void *opaque, struct ing_waiter **w, struct ing_source **src)
{
    uintptr_t v = (uintptr_t)opaque;
    *w = NULL;
    *src = NULL;
    if (v & OPAQUE_SRC) {
        *src = (struct ing_source *)(v & ~OPAQUE_SRC);
    } else if (opaque) {
        struct dr_ctx *ctx = opaque;
        *w = ctx->w;
        *src = ctx->src;
    }
}

static void opaque_free(void *opaque)
{
    if (opaque && !((uintptr_t)opaque & OPAQUE_SRC))
        free(opaque);
}

static void ing_waiter_release(struct ing_waiter *w)
{
    if (atomic_fetch_sub(&w->pending, 1) == 1)
        ing_loop_complete(w);
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct ing_out *out = opaque;
    struct ing_waiter *w;
    struct ing_source *src;
    opaque_decode(m->_private, &w, &src);
    if (m->err) {
        cp_counter_inc(out->dr_errors);
        if (atomic_load(&out->down_since_us) == 0)
            atomic_store(&out->down_since_us, cp_time_mono_us());
        /* With an infinite message timeout a report only fails on a fatal
         * producer error or a purge at shutdown.  A stream source cannot be
         * asked to resend, so the record goes back into the queue; an HTTP
         * request is told (503) and its client resends (event ids dedupe). */
        if (!w && !atomic_load(&out->stop)) {
            if (rd_kafka_produce(m->rkt, m->partition, RD_KAFKA_MSG_F_COPY, m->payload, m->len,
                                 m->key, m->key_len, m->_private) == 0) {
                cp_counter_inc(out->redelivered);
                return;
            }
        }
        cp_warn("kafka", "could not deliver a record to %s: %s", rd_kafka_topic_name(m->rkt),
                rd_kafka_err2str(m->err));
        if (w)
            atomic_fetch_add(&w->failed, 1);
    } else {
        /* Reports come in batches: one clock read serves a batch's worth of
         * them within the same microseconds, so only store when it moved. */
        int64_t now = cp_time_mono_us();
        if (atomic_load_explicit(&out->last_ok_us, memory_order_relaxed) != now)
            atomic_store(&out->last_ok_us, now);
        if (atomic_load_explicit(&out->down_since_us, memory_order_relaxed) != 0)
            atomic_store(&out->down_since_us, 0);
        if (src) {
            cp_counter_inc(src->m.events_out);
            int64_t lat = rd_kafka_message_latency(m);
            cp_histogram_observe(src->m.delivery_seconds, lat > 0 ? (double)lat / 1e6 : 0.0);
        }
    }
    if (w)
        ing_waiter_release(w);
    opaque_free(m->_private);
}

static void *poller_main(void *arg)
{
    struct ing_out *out = arg;
    while (!atomic_load(&out->stop)) {
        rd_kafka_poll(out->rk, 50);
        /* Backpressure with hysteresis: pause above the high mark, resume below the low. */
        long q = rd_kafka_outq_len(out->rk);
        if (!atomic_load(&out->paused) && q > out->cfg->high_watermark) {
            if (!atomic_exchange(&out->paused, true))
                cp_warn("kafka", "%ld records queued: pausing inputs", q);
        } else if (atomic_load(&out->paused) && q < out->cfg->low_watermark) {
            atomic_store(&out->paused, false);
            cp_info("kafka", "%ld records queued: resuming inputs", q);
        }
        static struct cp_log_limit fatal_limit = CP_LOG_LIMIT_INIT(1, 10000);
        char errstr[256];
        if (cp_kafka_fatal(out->rk, errstr, sizeof errstr))
            cp_log_limited(&fatal_limit, CP_LOG_ERROR, "kafka", "fatal producer error: %s",
                           errstr);
    }
    return NULL;
}

static double queued_fn(void *arg)
{
    return (double)ing_out_queued(arg);
}

int ing_out_start(struct ing_out *out, const struct ing_kafka_cfg *cfg, size_t deadletter_cut,
                  struct cp_metrics *reg, char *err, size_t errcap)
{
    memset(out, 0, sizeof *out);
    out->cfg = cfg;
    out->deadletter_cut = deadletter_cut;
    const char *extra[] = {"message.timeout.ms=0"};
    struct cp_kafka_producer_opts o = {
        .brokers = cfg->brokers,
        .client_id = "callpipe-ingest",
        .compression = cfg->compression,
        .linger_ms = cfg->linger_ms > 0 ? (int)cfg->linger_ms : -1,
        .queue_max_msgs = (int)cfg->queue_max_messages,
        .queue_max_kbytes = (int)(cfg->queue_max_bytes / 1024),
        .extra = extra,
        .extra_n = 1,
    };
    rd_kafka_conf_t *conf = cp_kafka_producer_conf(&o, err, errcap);
    if (!conf)
        return CP_ERR_CONFIG;
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_opaque(conf, out);
    out->rk = cp_kafka_producer_new(conf, err, errcap);
    if (!out->rk)
        return CP_ERR_KAFKA;
    out->events = rd_kafka_topic_new(out->rk, cfg->topic, NULL);
    out->deadletter = rd_kafka_topic_new(out->rk, cfg->deadletter_topic, NULL);
    atomic_store(&out->last_ok_us, cp_time_mono_us());
    out->redelivered = cp_metrics_counter(reg, "callpipe_ingest_kafka_redelivered_total",
                                          "records produced again after a failed delivery report");
    out->dr_errors = cp_metrics_counter(reg, "callpipe_ingest_kafka_delivery_errors_total",
                                        "failed delivery reports");
    cp_metrics_gauge_fn(reg, "callpipe_ingest_kafka_queue_messages",
                        "records waiting in the producer queue", queued_fn, out);
    if (pthread_create(&out->poller, NULL, poller_main, out) != 0) {
        snprintf(err, errcap, "could not start the kafka poller thread");
        return CP_ERR_INTERNAL;
    }
    return 0;
}

int ing_out_stop(struct ing_out *out)
{
    if (!out->rk)
        return 0;
    /* Flush while the poller still serves reports, then stop it. */
    rd_kafka_resp_err_t e = rd_kafka_flush(out->rk, (int)out->cfg->flush_timeout_ms);
    int left = rd_kafka_outq_len(out->rk);
    if (e)
        cp_error("kafka", "could not flush within %lld ms: %d records undelivered",
                 (long long)out->cfg->flush_timeout_ms, left);
    atomic_store(&out->stop, true);
    pthread_join(out->poller, NULL);
    rd_kafka_purge(out->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(out->rk, 0); /* frees the contexts of purged records */
    rd_kafka_topic_destroy(out->events);
    rd_kafka_topic_destroy(out->deadletter);
    rd_kafka_destroy(out->rk);
    out->rk = NULL;
    return left;
}

static int produce(struct ing_out *out, rd_kafka_topic_t *topic, const char *key, size_t key_len,
                   const void *payload, size_t len, struct ing_source *src, struct ing_waiter *w)
{
    void *opaque = NULL;
    if (w) {
        struct dr_ctx *ctx = malloc(sizeof *ctx);
        if (!ctx)
            return CP_ERR_NOMEM;
        ctx->w = w;
        ctx->src = src;
        opaque = ctx;
        atomic_fetch_add(&w->pending, 1);
    } else if (src) {
        opaque = (void *)((uintptr_t)src | OPAQUE_SRC);
    }
    /* F_BLOCK: the watermarks pause inputs well before the queue is full; if a
     * burst still fills it, this loop waits for room rather than dropping. */
    if (rd_kafka_produce(topic, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY | RD_KAFKA_MSG_F_BLOCK,
                         (void *)payload, len, key, key_len, opaque) != 0) {
        int rc = cp_kafka_err(rd_kafka_last_error());
        if (w)
            atomic_fetch_sub(&w->pending, 1);
        opaque_free(opaque);
        return rc;
    }
    return 0;
}

/* Appends s (at most CP_EVENT_STR_MAX bytes) without its NUL; NULL when longer. */
static char *put(char *d, const char *s)
{
    size_t n = strnlen(s, CP_EVENT_STR_MAX + 1);
    if (n > CP_EVENT_STR_MAX)
        return NULL;
    memcpy(d, s, n);
    return d + n;
}

int ing_out_event(struct ing_out *out, struct ing_source *src, const struct cp_event *ev,
                  struct ing_waiter *w)
{
    char buf[CP_EVENT_MSGPACK_MAX];
    int n = cp_event_encode_to(ev, buf, sizeof buf);
    if (n < 0)
        return n;
    /* key = org/pbx/call: every event of one call lands in one partition. */
    char key[3 * CP_EVENT_STR_MAX + 3];
    char *k = put(key, ev->org);
    if (k) {
        *k++ = '/';
        k = put(k, ev->pbx);
    }
    if (k) {
        *k++ = '/';
        k = put(k, ev->call);
    }
    if (!k)
        return CP_ERR_TOOBIG;
    return produce(out, out->events, key, (size_t)(k - key), buf, (size_t)n, src, w);
}

void ing_out_deadletter(struct ing_out *out, struct ing_source *src, const char *peer,
                        const char *reason, const void *raw, size_t len, int64_t recv_us)
{
    /* A msgpack map any consumer can read: where it came from, why, and the bytes. */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    size_t cut = len > out->deadletter_cut ? out->deadletter_cut : len;
    struct {
        const char *k, *v;
    } strs[] = {
        {"org", src->cfg->org},
        {"pbx", ing_source_pbx(src->cfg)},
        {"src", src->cfg->format},
        {"transport", ing_transport_name(src->cfg->transport)},
        {"peer", peer ? peer : ""},
        {"reason", reason},
    };
    msgpack_pack_map(&pk, CP_ARRAY_LEN(strs) + 4);
    msgpack_pack_str_with_body(&pk, "v", 1);
    msgpack_pack_uint32(&pk, 1);
    for (size_t i = 0; i < CP_ARRAY_LEN(strs); i++) {
        msgpack_pack_str_with_body(&pk, strs[i].k, strlen(strs[i].k));
        msgpack_pack_str_with_body(&pk, strs[i].v, strlen(strs[i].v));
    }
    msgpack_pack_str_with_body(&pk, "recv", 4);
    msgpack_pack_int64(&pk, recv_us);
    msgpack_pack_str_with_body(&pk, "raw_len", 7);
    msgpack_pack_uint64(&pk, len);
    msgpack_pack_str_with_body(&pk, "raw", 3);
    msgpack_pack_bin_with_body(&pk, raw, cut);
    char key[2 * CP_EVENT_STR_MAX + 2];
    int kl = snprintf(key, sizeof key, "%s/%s", src->cfg->org, src->cfg->name);
    if (produce(out, out->deadletter, key, (size_t)kl, sb.data, sb.size, NULL, NULL) != 0)
        cp_error(src->cfg->name, "could not produce a dead letter (%s)", reason);
    msgpack_sbuffer_destroy(&sb);
}

bool ing_out_ready(const struct ing_out *out)
{
    long long down = atomic_load(&out->down_since_us);
    if (down == 0) {
        /* No failed report; but with an infinite timeout an outage shows as a
         * queue that stops draining: count from the last good report. */
        if (rd_kafka_outq_len(out->rk) == 0)
            return true;
        down = atomic_load(&out->last_ok_us);
    }
    return cp_time_mono_us() - down < out->cfg->unready_after_ms * 1000;
}

bool ing_out_check_pause(struct ing_out *out)
{
    if (atomic_load(&out->paused))
        return true;
    long q = rd_kafka_outq_len(out->rk);
    if (q <= out->cfg->high_watermark)
        return false;
    if (!atomic_exchange(&out->paused, true))
        cp_warn("kafka", "%ld records queued: pausing inputs", q);
    return true;
}

size_t ing_out_queued(const struct ing_out *out)
{
    return out->rk ? (size_t)rd_kafka_outq_len(out->rk) : 0;
}
