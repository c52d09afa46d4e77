/* cp_http.h - HTTP/1.1 server: a pure, fuzzable connection state machine plus libuv socket glue. */
#ifndef CP_HTTP_H
#define CP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "cp_err.h"

/*
 * Two layers.
 *
 * 1. cp_http_conn (pure): bytes in -> request events; responses -> bytes out.
 *    No sockets, no clock.  It runs libhttp-parser, enforces the header and
 *    body limits, answers 100-continue, 400, 408, 413 and 431 itself, and
 *    keeps pipelined responses strictly in request order even when a handler
 *    answers later from another loop iteration.  tests/fuzz/fuzz_http.c
 *    drives this layer alone.
 *
 * 2. cp_http_server (glue): a libuv listener and connections that feed the
 *    pure layer, write its output (buffers live until the write callback),
 *    stop reading under write backpressure, apply the header/idle timeouts
 *    (slowloris), limit the connection count and drain on shutdown.
 *    Handles are freed only in their close callbacks.
 *
 * Threading: everything about one connection, including cp_http_respond(),
 * runs on the thread of the loop that owns it.  A handler answering from
 * another thread must hop back with uv_async first.
 *
 * Several loops: create one server per loop.  Either each listens on the
 * same port with `reuseport` (the kernel spreads connections: SO_REUSEPORT,
 * set on a socket we create because libuv 1.44 has no UV_TCP_REUSEPORT), or
 * one loop accepts and hands the fd to another loop's server with
 * cp_http_server_adopt_fd() (call it on that loop's thread, e.g. from a
 * uv_async callback).  With port 0 and reuseport, start the first server, read
 * cp_http_server_port() and give that port to the others.
 */

/* Request as handed to the handler. Every field is read-only. */
struct cp_http_header {
    const char *name;
    const char *value;
};

struct cp_http_req {
    const char *method; /* "GET", "POST", ... */
    const char *target; /* raw request-target as sent */
    const char *path;   /* target up to '?', not percent-decoded ("/ingest") */
    const char *query;  /* after '?', "" when none */
    const struct cp_http_header *headers;
    size_t n_headers;
    const uint8_t *body; /* de-chunked, NUL-terminated for convenience; never NULL */
    size_t body_len;
    const char *peer; /* "127.0.0.1:51234", or "" if unknown */
    int http_major, http_minor;
    void *user; /* free for the handler */
};

/*
 * Called once per complete request.  The handler must eventually call
 * cp_http_respond() (or a helper below) exactly once for it, now or on a
 * later loop iteration.  If the connection is gone by then, the call only
 * frees the request; cp_http_req_gone() tells whether work is still wanted.
 */
typedef void (*cp_http_handler_fn)(struct cp_http_req *req, void *arg);

struct cp_http_limits {
    size_t max_header_bytes; /* request line + headers; 431 above (default 16 KiB) */
    size_t max_headers;      /* header count; 431 above (default 64) */
    size_t max_body_bytes;   /* 413 and close above (default 1 MiB) */
    size_t max_pipelined;    /* requests awaiting an answer before parsing pauses (default 16) */
};

/*
 * Answers `req`.  `headers` is a NULL-terminated list of name, value pairs
 * ({"Content-Type", "application/json", NULL}) or NULL.  Content-Length is
 * always added; Content-Length/Transfer-Encoding given here are ignored;
 * "Connection: close" closes after this response.  A header with CR/LF turns
 * the answer into a 500.  The body is copied.  For HEAD the body is not sent.
 * Returns 0, CP_ERR_STATE if already answered, CP_ERR_NOMEM (the request is
 * then answered with a 500 internally).
 */
int cp_http_respond(struct cp_http_req *req, int status, const char *const *headers,
                    const void *body, size_t body_len);
/* text/plain; charset=utf-8 body: `text`, plus a final newline unless it ends in one. */
int cp_http_respond_text(struct cp_http_req *req, int status, const char *text);
/* 503 with Retry-After (seconds) and `reason` (+ newline as above) as the body; for backpressure. */
int cp_http_respond_unavailable(struct cp_http_req *req, unsigned retry_after_s,
                                const char *reason);
/* Case-insensitive lookup; the first header with that name, or NULL. */
const char *cp_http_req_header(const struct cp_http_req *req, const char *name);
/* True when the connection closed before the answer: respond() will only free. */
bool cp_http_req_gone(const struct cp_http_req *req);

/* ---- layer 1: pure connection ------------------------------------------ */

struct cp_http_conn;

struct cp_http_conn_ops {
    /* A request is complete (see cp_http_handler_fn). */
    void (*on_request)(struct cp_http_conn *conn, struct cp_http_req *req, void *user);
    /* Output became available or the close state changed, outside of a feed
     * call too (asynchronous respond): take the output and act. May be NULL. */
    void (*on_output)(struct cp_http_conn *conn, void *user);
};

enum cp_http_phase {
    CP_HTTP_PHASE_IDLE, /* nothing partial, no request awaiting an answer */
    CP_HTTP_PHASE_HEAD, /* receiving a request line / headers */
    CP_HTTP_PHASE_BODY, /* receiving a body */
    CP_HTTP_PHASE_BUSY, /* waiting for handlers to answer or for buffered input to be parsed */
};

/* `limits` NULL or zero fields = defaults. NULL when out of memory. */
struct cp_http_conn *cp_http_conn_create(const struct cp_http_limits *limits,
                                         const struct cp_http_conn_ops *ops, void *user);
/* Unanswered requests become "gone"; their handlers still respond, which frees them. */
void cp_http_conn_destroy(struct cp_http_conn *conn);
/* Copied into every later request's `peer`. */
void cp_http_conn_set_peer(struct cp_http_conn *conn, const char *peer);
/*
 * Bytes from the peer.  Whatever cannot be parsed yet (pipeline limit) is
 * buffered inside, so the caller never keeps the bytes.  Bytes after an
 * error or a close decision are discarded.
 */
void cp_http_conn_feed(struct cp_http_conn *conn, const void *data, size_t len);
/* The peer will send nothing more; pending answers are still produced. */
void cp_http_conn_feed_eof(struct cp_http_conn *conn);
/* Header/body timeout: answers the partial request with 408 and closes; an idle conn just closes. */
void cp_http_conn_timeout(struct cp_http_conn *conn);
/* Graceful close: finish the current request and every answer, then close. */
void cp_http_conn_drain(struct cp_http_conn *conn);
/* Bytes ready to send: a malloc'd buffer the caller owns and frees; NULL if none. */
char *cp_http_conn_take_output(struct cp_http_conn *conn, size_t *len);
size_t cp_http_conn_output_len(const struct cp_http_conn *conn);
/* False while the pipeline limit is reached or after input has ended. */
bool cp_http_conn_wants_read(const struct cp_http_conn *conn);
/* No more output will ever come: close once the taken output is written. */
bool cp_http_conn_done(const struct cp_http_conn *conn);
enum cp_http_phase cp_http_conn_phase(const struct cp_http_conn *conn);
/* Requests answered with an error by the layer itself (400/408/413/431), for metrics/tests. */
uint64_t cp_http_conn_errors(const struct cp_http_conn *conn);

/* ---- layer 2: libuv server --------------------------------------------- */

struct cp_http_config {
    struct cp_http_limits limits;
    unsigned max_connections;    /* per server; above it: 503 and close (default 1024) */
    unsigned header_timeout_ms;  /* from first byte (or accept) to end of headers (default 10000) */
    unsigned idle_timeout_ms;    /* keep-alive idle, slow body, stalled write (default 60000) */
    size_t write_high_watermark; /* stop reading above this many queued bytes (default 1 MiB) */
    bool reuseport;              /* SO_REUSEPORT on the listening socket */
    const char *ident;           /* log identity, e.g. "ingest:http" (kept by pointer) */
};

struct cp_http_server;

/* `cfg` NULL or zero fields = defaults. The server does not listen yet. */
struct cp_http_server *cp_http_server_create(uv_loop_t *loop, const struct cp_http_config *cfg,
                                             cp_http_handler_fn handler, void *handler_arg);
/* Binds and listens (numeric IPv4/IPv6 host, port 0 = ephemeral). 0 or a CP_ERR_*. */
int cp_http_server_listen(struct cp_http_server *srv, const char *host, int port) CP_MUSTCHECK;
/* The bound port (after listen), or -1. */
int cp_http_server_port(const struct cp_http_server *srv);
/* Serves an already-accepted socket on this server's loop (loop thread only); takes the fd. */
int cp_http_server_adopt_fd(struct cp_http_server *srv, uv_os_sock_t fd);
unsigned cp_http_server_connections(const struct cp_http_server *srv);
/*
 * Graceful shutdown: stop accepting, close idle connections, let in-flight
 * requests finish and answer (with Connection: close), force-close whatever is
 * left after `drain_timeout_ms`, then call on_closed (may be NULL) and free the
 * server.  The loop must keep running until then.
 */
void cp_http_server_shutdown(struct cp_http_server *srv, unsigned drain_timeout_ms,
                             void (*on_closed)(void *arg), void *arg);

#endif
