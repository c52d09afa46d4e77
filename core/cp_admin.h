/* cp_admin.h - admin HTTP endpoints every service serves: /metrics, /healthz, /readyz. */
#ifndef CP_ADMIN_H
#define CP_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>
#include "cp_err.h"
#include "cp_metrics.h"

/*
 *   GET /metrics  Prometheus text 0.0.4 from the registry (CP_METRICS_CONTENT_TYPE)
 *   GET /healthz  liveness: 200 "ok" while every watched loop heartbeat is
 *                 fresh, else 503 naming the stalled loop.  Never asks Kafka or
 *                 PostgreSQL (reliability.md B5: that turns outages into
 *                 restart storms).
 *   GET /readyz   readiness: 200 "ready", or 503 with the reason the service's
 *                 callback gives (and 503 "shutting down" once stopping).
 * Other paths 404; other methods than GET/HEAD on these paths 405.
 */

struct cp_admin;
struct cp_heartbeat;

/* Returns true when ready; otherwise writes a short reason ("kafka not connected"). */
typedef bool (*cp_admin_ready_fn)(void *arg, char *reason, size_t cap);

struct cp_admin_config {
    const char *host;               /* default "127.0.0.1" */
    int port;                       /* 0 = ephemeral (see cp_admin_port) */
    unsigned heartbeat_interval_ms; /* default 1000 */
    unsigned liveness_max_age_ms;   /* heartbeat older than this = not live (default 10000) */
    const char *ident;              /* log identity, default "admin" */
};

/*
 * Listens on `loop` and starts that loop's heartbeat.  `reg` and the
 * callback must outlive the admin server.  NULL on failure (logged).
 */
struct cp_admin *cp_admin_start(uv_loop_t *loop, const struct cp_admin_config *cfg,
                                struct cp_metrics *reg, cp_admin_ready_fn ready, void *ready_arg);
int cp_admin_port(const struct cp_admin *adm);
/* Stops listening, finishes in-flight scrapes, frees everything, then on_closed(arg). */
void cp_admin_stop(struct cp_admin *adm, void (*on_closed)(void *arg), void *arg);

/*
 * A heartbeat for another loop (ingest worker loops): a uv_timer on `loop`
 * that stamps a monotonic time every interval.  Create and stop it on that
 * loop's thread (or before the loop runs); watching it from the admin is
 * thread-safe.  Stop the admin before stopping watched heartbeats.
 */
struct cp_heartbeat *cp_heartbeat_start(uv_loop_t *loop, const char *name, unsigned interval_ms);
void cp_heartbeat_stop(struct cp_heartbeat *hb);
/* Milliseconds since the last beat. */
uint64_t cp_heartbeat_age_ms(const struct cp_heartbeat *hb);
int cp_admin_watch(struct cp_admin *adm, struct cp_heartbeat *hb);

/*
 * The admin endpoints on a thread and loop of their own, for services whose main
 * thread blocks (the aggregator's consumer poll, the loader's HTTP calls).
 * `listen` is "host:port".  Returns NULL (with a log line) when it cannot listen.
 * cp_admin_thread_stop() stops the server, joins the thread and frees it.
 */
struct cp_admin_thread;
struct cp_admin_thread *cp_admin_thread_start(const char *listen, const char *ident,
                                              struct cp_metrics *reg, cp_admin_ready_fn ready,
                                              void *ready_arg);
void cp_admin_thread_stop(struct cp_admin_thread *t);

#endif
