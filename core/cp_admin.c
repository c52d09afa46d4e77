/* cp_admin.c - /metrics, /healthz and /readyz on the callpipe HTTP server, plus loop heartbeats. */
#include "cp_admin.h"

#include <pthread.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cp_http.h"
#include "cp_log.h"

#define MAX_WATCHED 32

struct cp_heartbeat {
    uv_timer_t timer;
    _Atomic uint64_t last_ns; /* uv_hrtime() of the last beat */
    char name[32];
    void (*on_closed)(void *arg);
    void *closed_arg;
};

struct cp_admin {
    struct cp_http_server *srv;
    struct cp_metrics *reg;
    cp_admin_ready_fn ready;
    void *ready_arg;
    struct cp_admin_config cfg;
    struct cp_heartbeat *own; /* this loop's heartbeat */
    struct cp_heartbeat *watched[MAX_WATCHED];
    size_t n_watched;
    bool stopping;
    void (*on_closed)(void *arg);
    void *closed_arg;
};

static void on_beat(uv_timer_t *t)
{
    struct cp_heartbeat *hb = t->data;
    atomic_store_explicit(&hb->last_ns, uv_hrtime(), memory_order_relaxed);
}

struct cp_heartbeat *cp_heartbeat_start(uv_loop_t *loop, const char *name, unsigned interval_ms)
{
    struct cp_heartbeat *hb = calloc(1, sizeof *hb);
    if (!hb)
        return NULL;
    snprintf(hb->name, sizeof hb->name, "%s", name ? name : "loop");
    atomic_init(&hb->last_ns, uv_hrtime());
    uv_timer_init(loop, &hb->timer);
    hb->timer.data = hb;
    uv_timer_start(&hb->timer, on_beat, interval_ms ? interval_ms : 1000,
                   interval_ms ? interval_ms : 1000);
    uv_unref((uv_handle_t *)&hb->timer); /* a heartbeat alone must not keep the loop running */
    return hb;
}

static void on_heartbeat_closed(uv_handle_t *h)
{
    struct cp_heartbeat *hb = h->data;
    if (hb->on_closed)
        hb->on_closed(hb->closed_arg);
    free(hb);
}

static void heartbeat_close(struct cp_heartbeat *hb, void (*cb)(void *), void *arg)
{
    hb->on_closed = cb;
    hb->closed_arg = arg;
    uv_close((uv_handle_t *)&hb->timer, on_heartbeat_closed);
}

void cp_heartbeat_stop(struct cp_heartbeat *hb)
{
    if (hb)
        heartbeat_close(hb, NULL, NULL);
}

uint64_t cp_heartbeat_age_ms(const struct cp_heartbeat *hb)
{
    uint64_t last = atomic_load_explicit(&((struct cp_heartbeat *)hb)->last_ns,
                                         memory_order_relaxed);
    uint64_t now = uv_hrtime();
    return now > last ? (now - last) / 1000000u : 0;
}

int cp_admin_watch(struct cp_admin *adm, struct cp_heartbeat *hb)
{
    if (!adm || !hb)
        return CP_ERR_INVAL;
    if (adm->n_watched >= MAX_WATCHED)
        return CP_ERR_FULL;
    adm->watched[adm->n_watched++] = hb;
    return 0;
}

static void serve_metrics(struct cp_admin *adm, struct cp_http_req *req)
{
    static const char *const hdrs[] = {"Content-Type", CP_METRICS_CONTENT_TYPE, NULL};
    size_t len = 0;
    char *text = adm->reg ? cp_metrics_render(adm->reg, &len) : calloc(1, 1);
    if (!text) {
        cp_http_respond_text(req, 500, "could not render metrics: out of memory");
        return;
    }
    cp_http_respond(req, 200, hdrs, text, len);
    free(text);
}

static void serve_healthz(struct cp_admin *adm, struct cp_http_req *req)
{
    for (size_t i = 0; i < adm->n_watched; i++) {
        uint64_t age = cp_heartbeat_age_ms(adm->watched[i]);
        if (age > adm->cfg.liveness_max_age_ms) {
            char msg[128];
            snprintf(msg, sizeof msg, "loop %s stalled for %llu ms", adm->watched[i]->name,
                     (unsigned long long)age);
            cp_http_respond_text(req, 503, msg);
            return;
        }
    }
    cp_http_respond_text(req, 200, "ok");
}

static void serve_readyz(struct cp_admin *adm, struct cp_http_req *req)
{
    char reason[256] = "not ready";
    if (adm->stopping) {
        cp_http_respond_text(req, 503, "shutting down");
        return;
    }
    if (adm->ready && !adm->ready(adm->ready_arg, reason, sizeof reason)) {
        reason[sizeof reason - 1] = '\0';
        cp_http_respond_text(req, 503, reason[0] ? reason : "not ready");
        return;
    }
    cp_http_respond_text(req, 200, "ready");
}

static void admin_handler(struct cp_http_req *req, void *arg)
{
    struct cp_admin *adm = arg;
    void (*serve)(struct cp_admin *, struct cp_http_req *) = NULL;
    if (strcmp(req->path, "/metrics") == 0)
        serve = serve_metrics;
    else if (strcmp(req->path, "/healthz") == 0)
        serve = serve_healthz;
    else if (strcmp(req->path, "/readyz") == 0)
        serve = serve_readyz;
    if (!serve) {
        cp_http_respond_text(req, 404, "not found");
        return;
    }
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        static const char *const hdrs[] = {"Content-Type", "text/plain; charset=utf-8", "Allow",
                                           "GET, HEAD", NULL};
        static const char body[] = "method not allowed\n";
        cp_http_respond(req, 405, hdrs, body, sizeof body - 1);
        return;
    }
    serve(adm, req);
}

struct cp_admin *cp_admin_start(uv_loop_t *loop, const struct cp_admin_config *cfg,
                                struct cp_metrics *reg, cp_admin_ready_fn ready, void *ready_arg)
{
    struct cp_admin *adm = calloc(1, sizeof *adm);
    if (!adm)
        return NULL;
    if (cfg)
        adm->cfg = *cfg;
    if (!adm->cfg.host)
        adm->cfg.host = "127.0.0.1";
    if (!adm->cfg.heartbeat_interval_ms)
        adm->cfg.heartbeat_interval_ms = 1000;
    if (!adm->cfg.liveness_max_age_ms)
        adm->cfg.liveness_max_age_ms = 10000;
    if (!adm->cfg.ident)
        adm->cfg.ident = "admin";
    adm->reg = reg;
    adm->ready = ready;
    adm->ready_arg = ready_arg;
    /* Scrapes are small and trusted: tight limits, short timeouts. */
    struct cp_http_config hc = {
        .limits = {.max_header_bytes = 8192, .max_body_bytes = 4096, .max_pipelined = 4},
        .max_connections = 64,
        .header_timeout_ms = 5000,
        .idle_timeout_ms = 30000,
        .ident = adm->cfg.ident,
    };
    adm->srv = cp_http_server_create(loop, &hc, admin_handler, adm);
    if (!adm->srv) {
        free(adm);
        return NULL;
    }
    int rc = cp_http_server_listen(adm->srv, adm->cfg.host, adm->cfg.port);
    if (rc != 0) {
        /* The server frees itself in its close callbacks; adm goes with it. */
        cp_http_server_shutdown(adm->srv, 0, free, adm);
        return NULL;
    }
    adm->own = cp_heartbeat_start(loop, "main", adm->cfg.heartbeat_interval_ms);
    if (adm->own)
        cp_admin_watch(adm, adm->own);
    cp_info(adm->cfg.ident, "serving /metrics /healthz /readyz on %s:%d", adm->cfg.host,
            cp_http_server_port(adm->srv));
    return adm;
}

int cp_admin_port(const struct cp_admin *adm)
{
    return adm ? cp_http_server_port(adm->srv) : -1;
}

static void admin_free(void *arg)
{
    struct cp_admin *adm = arg;
    void (*cb)(void *) = adm->on_closed;
    void *cb_arg = adm->closed_arg;
    free(adm);
    if (cb)
        cb(cb_arg);
}

static void on_server_closed(void *arg)
{
    struct cp_admin *adm = arg;
    if (adm->own)
        heartbeat_close(adm->own, admin_free, adm);
    else
        admin_free(adm);
}

void cp_admin_stop(struct cp_admin *adm, void (*on_closed)(void *arg), void *arg)
{
    if (!adm || adm->stopping)
        return;
    adm->stopping = true;
    adm->on_closed = on_closed;
    adm->closed_arg = arg;
    cp_http_server_shutdown(adm->srv, 2000, on_server_closed, adm);
}

/* ---- the admin server on its own thread ---- */

struct cp_admin_thread {
    uv_loop_t loop;
    uv_async_t stop;
    struct cp_admin *admin;
    pthread_t thread;
};

static void admin_thread_stop_cb(uv_async_t *a)
{
    struct cp_admin_thread *t = a->data;
    cp_admin_stop(t->admin, NULL, NULL);
    uv_close((uv_handle_t *)a, NULL);
}

static void *admin_thread_main(void *arg)
{
    struct cp_admin_thread *t = arg;
    uv_run(&t->loop, UV_RUN_DEFAULT);
    return NULL;
}

struct cp_admin_thread *cp_admin_thread_start(const char *listen, const char *ident,
                                              struct cp_metrics *reg, cp_admin_ready_fn ready,
                                              void *ready_arg)
{
    char host[64];
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof host) {
        cp_error(ident, "admin address \"%s\" is not host:port", listen);
        return NULL;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = 0;
    struct cp_admin_thread *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    uv_loop_init(&t->loop);
    uv_async_init(&t->loop, &t->stop, admin_thread_stop_cb);
    t->stop.data = t;
    struct cp_admin_config ac = {.host = host, .port = atoi(colon + 1), .ident = ident};
    t->admin = cp_admin_start(&t->loop, &ac, reg, ready, ready_arg);
    if (!t->admin || pthread_create(&t->thread, NULL, admin_thread_main, t) != 0) {
        if (t->admin)
            cp_admin_stop(t->admin, NULL, NULL);
        uv_close((uv_handle_t *)&t->stop, NULL);
        uv_run(&t->loop, UV_RUN_DEFAULT);
        uv_loop_close(&t->loop);
        free(t);
        return NULL;
    }
    return t;
}

void cp_admin_thread_stop(struct cp_admin_thread *t)
{
    if (!t)
        return;
    uv_async_send(&t->stop);
    pthread_join(t->thread, NULL);
    uv_loop_close(&t->loop);
    free(t);
}
