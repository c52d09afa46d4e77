/* ingest_main.c - `callpipe ingest`: configuration, event loops, record handling, shutdown. */
#include "ingest.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../cmd/commands.h"
#include "cp_admin.h"
#include "cp_log.h"
#include "cp_time.h"

/* ---- one record: parse, stamp identity, produce; rejects to the dead letters ---- */

struct emit_ctx {
    struct cp_emit emit;
    struct ing_loop *l;
    struct ing_source *src;
    const char *peer;
    struct ing_waiter *w;
    ing_reject_fn on_reject;
    void *reject_arg;
    int produced;
    int failed;
};

void ing_reject(struct ing_loop *l, struct ing_source *src, const char *peer, const char *reason,
                const void *raw, size_t len)
{
    const char *labels[] = {src->cfg->name, reason, NULL};
    cp_counter_inc(cp_metrics_counter_child(src->m.rejects, labels));
    static _Thread_local struct cp_log_limit lim = CP_LOG_LIMIT_INIT(10, 10000);
    cp_log_limited(&lim, CP_LOG_WARN, src->cfg->name, "rejected a record from %s: %s", peer,
                   reason);
    ing_out_deadletter(&l->ing->out, src, peer, reason, raw, len, cp_time_now_us());
}

static int emit_event(struct cp_emit *e, struct cp_event *ev)
{
    struct emit_ctx *c = (struct emit_ctx *)e;
    /* Identity comes from the configuration, never from the payload. */
    ev->org = c->src->cfg->org;
    ev->pbx = ing_source_pbx(c->src->cfg);
    if (!ev->src)
        ev->src = c->src->fmt->name;
    const char *why;
    int rc = cp_event_validate(ev, &why);
    if (rc == 0)
        rc = ing_out_event(&c->l->ing->out, c->src, ev, c->w);
    else
        why = why ? why : "invalid event";
    if (rc != 0) {
        c->failed++;
        return rc;
    }
    cp_counter_inc(c->src->m.events_in);
    c->produced++;
    return 0;
}

static void emit_reject(struct cp_emit *e, uint32_t index, const char *rec, size_t len,
                        const char *reason)
{
    struct emit_ctx *c = (struct emit_ctx *)e;
    ing_reject(c->l, c->src, c->peer, reason, rec, len);
    if (c->on_reject)
        c->on_reject(c->reject_arg, index, reason);
}

int ing_handle_record(struct ing_loop *l, struct ing_source *src, void *state, const char *peer,
                      const char *rec, size_t len, struct ing_waiter *w, ing_reject_fn on_reject,
                      void *reject_arg)
{
    struct ing_source_ctx_holder {
        struct cp_source_ctx ctx;
    } h = {{
        .org = src->cfg->org,
        .pbx = ing_source_pbx(src->cfg),
        .tz = src->cfg->tz,
        .recv_us = l->read_us ? l->read_us : cp_time_now_us(),
        .arena = &l->arena,
    }};
    struct emit_ctx c = {
        .emit = {emit_event, emit_reject, NULL},
        .l = l,
        .src = src,
        .peer = peer,
        .w = w,
        .on_reject = on_reject,
        .reject_arg = reject_arg,
    };
    cp_counter_inc(src->m.records_in);
    int rc = src->fmt->parse(state, &h.ctx, rec, len, &c.emit);
    if (rc < 0 && c.produced == 0 && c.failed) {
        ing_reject(l, src, peer, "could not produce the record's events", rec, len);
        if (on_reject)
            on_reject(reject_arg, 0, "could not produce the record's events");
    }
    cp_arena_reset(&l->arena);
    return c.produced;
}

/* ---- loops ---- */

void ing_loop_complete(struct ing_waiter *w)
{
    struct ing_loop *l = w->loop;
    pthread_mutex_lock(&l->done_lock);
    w->next_done = l->done;
    l->done = w;
    pthread_mutex_unlock(&l->done_lock);
    uv_async_send(&l->wake);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void loop_wake(uv_async_t *a)
{
    struct ing_loop *l = a->data;
    pthread_mutex_lock(&l->done_lock);
    struct ing_waiter *w = l->done;
    l->done = NULL;
    pthread_mutex_unlock(&l->done_lock);
    while (w) {
        struct ing_waiter *next = w->next_done;
        w->on_done(w);
        w = next;
    }
    int phase = atomic_load(&l->stop_phase);
    if (phase >= 1 && l->stop_done < 1) {
        l->stop_done = 1;
        l->stopping = true;
        ing_net_stop(l, false);
        /* HTTP requests in flight still get their answer, up to the flush bound. */
        ing_http_stop(l, (unsigned)l->ing->cfg->kafka.flush_timeout_ms + 2000);
        ing_client_stop(l);
        ing_files_stop(l);
    }
    if (phase >= 2 && l->stop_done < 2) {
        l->stop_done = 2;
        ing_net_stop(l, true);
    }
    if (phase >= 3 && l->stop_done < 3) {
        l->stop_done = 3;
        uv_walk(&l->loop, close_walk, NULL);
    }
}

static void loop_tick(uv_timer_t *t)
{
    struct ing_loop *l = t->data;
    bool paused = atomic_load(&l->ing->out.paused) && !l->stopping;
    if (paused != l->paused) {
        l->paused = paused;
        ing_net_pause(l, paused);
    }
    ing_net_tick(l);
}

static void loop_main(void *arg)
{
    struct ing_loop *l = arg;
    uv_run(&l->loop, UV_RUN_DEFAULT);
}

/* ---- the controller: signals, admin endpoints, the stop sequence ---- */

struct controller {
    struct ing *ing;
    uv_loop_t *loop;
    uv_signal_t sigterm, sigint;
    uv_timer_t timer;
    struct cp_admin *admin;
    int phase;
    int64_t phase_at_ms;
    int left; /* undelivered at exit */
};

static void set_phase(struct controller *c, int phase)
{
    c->phase = phase;
    c->phase_at_ms = cp_time_mono_us() / 1000;
    for (int i = 0; i < c->ing->n_loops; i++) {
        atomic_store(&c->ing->loops[i].stop_phase, phase);
        uv_async_send(&c->ing->loops[i].wake);
    }
}

static void admin_closed(void *arg)
{
}

static void stop_tick(uv_timer_t *t)
{
    struct controller *c = t->data;
    int64_t now = cp_time_mono_us() / 1000;
    int64_t in_phase = now - c->phase_at_ms;
    struct ing *ing = c->ing;
    if (c->phase == 1 && in_phase >= 1000) {
        /* One second to read what peers already sent, then close the streams. */
        set_phase(c, 2);
    } else if (c->phase == 2) {
        if (ing_out_queued(&ing->out) > 0 && in_phase < ing->cfg->kafka.flush_timeout_ms)
            return;
        c->left = ing_out_stop(&ing->out);
        set_phase(c, 3);
        uv_timer_stop(&c->timer);
        uv_close((uv_handle_t *)&c->timer, NULL);
        uv_close((uv_handle_t *)&c->sigterm, NULL);
        uv_close((uv_handle_t *)&c->sigint, NULL);
        if (c->admin)
            cp_admin_stop(c->admin, admin_closed, NULL);
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct controller *c = s->data;
    if (c->phase != 0)
        return;
    cp_info(NULL, "received %s: stopping (flush bound %lld ms)", strsignal(signum),
            (long long)c->ing->cfg->kafka.flush_timeout_ms);
    atomic_store(&c->ing->stopping, true);
    set_phase(c, 1);
    uv_timer_start(&c->timer, stop_tick, 50, 50);
}

static bool ready_fn(void *arg, char *reason, size_t cap)
{
    struct ing *ing = arg;
    if (atomic_load(&ing->stopping)) {
        snprintf(reason, cap, "stopping");
        return false;
    }
    if (!ing_out_ready(&ing->out)) {
        snprintf(reason, cap, "kafka unreachable");
        return false;
    }
    return true;
}

static int setup_sources(struct ing *ing)
{
    ing->n_sources = ing->cfg->n_sources;
    ing->sources = calloc(ing->n_sources, sizeof *ing->sources);
    if (!ing->sources)
        return CP_ERR_NOMEM;
    static const char *const src_label[] = {"source", NULL};
    static const char *const reject_labels[] = {"source", "reason", NULL};
    static const double latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                            0.1,   0.25,   0.5,   1,    2.5,   5, 10, 30};
    struct cp_metric_family *records = cp_metrics_family(
        ing->reg, CP_METRIC_COUNTER, "callpipe_ingest_records_total",
        "framed records received (lines, frames, bodies, datagrams)", src_label, NULL, 0);
    struct cp_metric_family *events_in = cp_metrics_family(
        ing->reg, CP_METRIC_COUNTER, "callpipe_ingest_events_total",
        "canonical events parsed and handed to Kafka", src_label, NULL, 0);
    struct cp_metric_family *events_out = cp_metrics_family(
        ing->reg, CP_METRIC_COUNTER, "callpipe_ingest_events_delivered_total",
        "events acknowledged by Kafka", src_label, NULL, 0);
    struct cp_metric_family *bytes = cp_metrics_family(ing->reg, CP_METRIC_COUNTER,
                                                       "callpipe_ingest_bytes_total",
                                                       "bytes received", src_label, NULL, 0);
    struct cp_metric_family *conns = cp_metrics_family(
        ing->reg, CP_METRIC_GAUGE, "callpipe_ingest_connections", "open TCP connections",
        src_label, NULL, 0);
    struct cp_metric_family *rejects = cp_metrics_family(
        ing->reg, CP_METRIC_COUNTER, "callpipe_ingest_rejects_total",
        "records dead-lettered, by reason", reject_labels, NULL, 0);
    struct cp_metric_family *latency = cp_metrics_family(
        ing->reg, CP_METRIC_HISTOGRAM, "callpipe_ingest_delivery_seconds",
        "time from produce to Kafka's acknowledgement", src_label, latency_bounds,
        CP_ARRAY_LEN(latency_bounds));
    for (size_t i = 0; i < ing->n_sources; i++) {
        struct ing_source *s = &ing->sources[i];
        s->cfg = &ing->cfg->sources[i];
        s->fmt = cp_source_find(s->cfg->format);
        const char *lv[] = {s->cfg->name, NULL};
        s->m.records_in = cp_metrics_counter_child(records, lv);
        s->m.events_in = cp_metrics_counter_child(events_in, lv);
        s->m.events_out = cp_metrics_counter_child(events_out, lv);
        s->m.bytes_in = cp_metrics_counter_child(bytes, lv);
        s->m.connections = cp_metrics_gauge_child(conns, lv);
        s->m.rejects = rejects;
        s->m.delivery_seconds = cp_metrics_histogram_child(latency, lv);
    }
    return 0;
}

/* After the first loop bound port 0, the others must bind the same port. */
static void pin_port(struct ing_source_cfg *s, int port)
{
    char host[64];
    int old;
    if (ing_parse_listen(s->listen, host, sizeof host, &old) || old != 0)
        return;
    char buf[96];
    snprintf(buf, sizeof buf, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    free(s->listen);
    s->listen = strdup(buf);
}

static int bound_port(uv_handle_t *h)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (h->type == UV_UDP) {
        if (uv_udp_getsockname((uv_udp_t *)h, (struct sockaddr *)&ss, &len))
            return -1;
    } else if (uv_tcp_getsockname((uv_tcp_t *)h, (struct sockaddr *)&ss, &len)) {
        return -1;
    }
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

static int setup_loops(struct ing *ing, char *err, size_t errcap)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    ing->n_loops = ing->cfg->threads > 0 ? (int)ing->cfg->threads : (int)(cores > 0 ? cores : 1);
    ing->loops = calloc((size_t)ing->n_loops, sizeof *ing->loops);
    if (!ing->loops)
        return CP_ERR_NOMEM;
    for (int i = 0; i < ing->n_loops; i++) {
        struct ing_loop *l = &ing->loops[i];
        l->index = i;
        l->ing = ing;
        uv_loop_init(&l->loop);
        pthread_mutex_init(&l->done_lock, NULL);
        uv_async_init(&l->loop, &l->wake, loop_wake);
        l->wake.data = l;
        uv_timer_init(&l->loop, &l->tick);
        l->tick.data = l;
        uv_timer_start(&l->tick, loop_tick, 20, 20);
        cp_arena_init(&l->arena, 64 * 1024, 64u << 20);
        for (size_t s = 0; s < ing->n_sources; s++) {
            struct ing_source *src = &ing->sources[s];
            int rc;
            int t = src->cfg->transport;
            if (t == ING_TCP_CLIENT || t == ING_FILE_DROP || t == ING_FILE_TAIL) {
                /* One dialer or file reader per source: on the first loop only. */
                if (i > 0)
                    continue;
                rc = t == ING_TCP_CLIENT ? ing_client_start(l, src, err, errcap)
                                         : ing_files_start(l, src, err, errcap);
                if (rc)
                    return rc;
                cp_info(src->cfg->name, "%s %s (%s, org %s)",
                        t == ING_TCP_CLIENT ? "connecting to" : t == ING_FILE_DROP ? "watching" : "following",
                        t == ING_TCP_CLIENT ? src->cfg->connect : src->cfg->path, src->cfg->format,
                        src->cfg->org);
                continue;
            }
            if (t == ING_HTTP) {
                rc = ing_http_listen(l, src, err, errcap);
                if (rc >= 0) {
                    pin_port((struct ing_source_cfg *)src->cfg, rc);
                    rc = 0;
                }
            } else {
                rc = ing_net_listen(l, src, err, errcap);
                if (rc == 0)
                    pin_port((struct ing_source_cfg *)src->cfg,
                             bound_port(l->listeners[l->n_listeners - 1]));
            }
            if (rc)
                return rc;
            if (i == 0)
                cp_info(src->cfg->name, "listening on %s (%s, %s, org %s)", src->cfg->listen,
                        ing_transport_name(t),
                        src->cfg->format, src->cfg->org);
        }
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: callpipe ingest -c ingest.yaml [--check-config] [--print-config-doc]\n"
               "\n"
               "Receives call events from PBXs over TCP, HTTP and syslog, maps them to the\n"
               "canonical call event and produces them to Kafka.  SIGTERM drains and exits 0.\n");
}

int cp_cmd_ingest(int argc, char **argv)
{
    const char *path;
    bool check;
    int status = cp_config_cli(argc, argv, &ing_cfg_table, usage, &path, &check);
    if (status >= 0)
        return status;
    struct ing_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    char err[1024];
    if (check) {
        int rc = cp_config_check_main(&ing_cfg_table, path, stdout, stderr);
        if (rc)
            return rc;
    }
    if (cp_config_load(&ing_cfg_table, path, &cfg, err, sizeof err) != 0 ||
        ing_cfg_validate(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "callpipe ingest: %s\n", err);
        return 2;
    }
    if (check) {
        cp_config_free(&ing_cfg_table, &cfg);
        return 0;
    }
    enum cp_log_level lvl;
    if (cp_log_level_parse(cfg.log_level, &lvl) == 0)
        cp_log_set_level(lvl);
    signal(SIGPIPE, SIG_IGN);

    static struct ing ing;
    memset(&ing, 0, sizeof ing);
    ing.cfg = &cfg;
    ing.reg = cp_metrics_create();
    int rc = setup_sources(&ing);
    if (rc == 0)
        rc = ing_out_start(&ing.out, &cfg.kafka, (size_t)cfg.deadletter_cut, ing.reg, err,
                           sizeof err);
    if (rc == 0)
        rc = setup_loops(&ing, err, sizeof err);
    if (rc) {
        cp_error(NULL, "could not start: %s", err);
        return 1;
    }

    uv_loop_t ctl_loop;
    uv_loop_init(&ctl_loop);
    struct controller ctl = {.ing = &ing, .loop = &ctl_loop};
    uv_signal_init(&ctl_loop, &ctl.sigterm);
    uv_signal_init(&ctl_loop, &ctl.sigint);
    ctl.sigterm.data = ctl.sigint.data = &ctl;
    uv_signal_start(&ctl.sigterm, on_signal, SIGTERM);
    uv_signal_start(&ctl.sigint, on_signal, SIGINT);
    uv_timer_init(&ctl_loop, &ctl.timer);
    ctl.timer.data = &ctl;
    char host[64];
    int port;
    if (ing_parse_listen(cfg.admin_listen, host, sizeof host, &port) == 0) {
        struct cp_admin_config ac = {.host = host, .port = port, .ident = "ingest:admin"};
        ctl.admin = cp_admin_start(&ctl_loop, &ac, ing.reg, ready_fn, &ing);
    }
    if (!ctl.admin) {
        cp_error(NULL, "could not start the admin server on %s", cfg.admin_listen);
        return 1;
    }
    cp_info(NULL, "admin on %s:%d; %d loops; kafka %s", host, cp_admin_port(ctl.admin),
            ing.n_loops, cfg.kafka.brokers);
    for (int i = 0; i < ing.n_loops; i++)
        uv_thread_create(&ing.loops[i].thread, loop_main, &ing.loops[i]);

    uv_run(&ctl_loop, UV_RUN_DEFAULT);

    for (int i = 0; i < ing.n_loops; i++) {
        uv_thread_join(&ing.loops[i].thread);
        uv_loop_close(&ing.loops[i].loop);
        cp_arena_destroy(&ing.loops[i].arena);
        free(ing.loops[i].listeners);
        free(ing.loops[i].http);
        free(ing.loops[i].http_args);
    }
    uv_loop_close(&ctl_loop);
    free(ing.loops);
    free(ing.sources);
    cp_metrics_destroy(ing.reg);
    cp_config_free(&ing_cfg_table, &cfg);
    if (ctl.left > 0) {
        cp_error(NULL, "stopped with %d records not acknowledged by Kafka", ctl.left);
        return 1;
    }
    cp_info(NULL, "stopped cleanly");
    return 0;
}
