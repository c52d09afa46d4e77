/* test_http.c - HTTP/1.1 server: the pure connection layer, and the libuv server over raw sockets. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <cmocka.h>
#include <uv.h>

#include "cp_admin.h"
#include "cp_http.h"
#include "cp_metrics.h"
#include "../lib/prom_parse.h"

/* ======================================================================== */
/* Pure layer                                                               */
/* ======================================================================== */

struct pure {
    struct cp_http_conn *conn;
    struct cp_http_req *held[8];
    int n_held;
    int n_requests;
    char last_path[64];
    char last_body[256];
    bool hold_all;
};

static void pure_on_request(struct cp_http_conn *conn, struct cp_http_req *req, void *user)
{
    struct pure *p = user;
    p->n_requests++;
    snprintf(p->last_path, sizeof p->last_path, "%s", req->path);
    snprintf(p->last_body, sizeof p->last_body, "%.*s", (int)req->body_len, (const char *)req->body);
    if (p->hold_all || strcmp(req->path, "/hold") == 0) {
        p->held[p->n_held++] = req;
        return;
    }
    cp_http_respond_text(req, 200, req->path);
}

static const struct cp_http_conn_ops pure_ops = {pure_on_request, NULL};

static char *take(struct cp_http_conn *conn)
{
    size_t n;
    char *out = cp_http_conn_take_output(conn, &n);
    if (!out)
        return strdup("");
    char *s = malloc(n + 1);
    memcpy(s, out, n);
    s[n] = '\0';
    free(out);
    return s;
}

static int count_str(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void test_pure_pipeline_order(void **state)
{
    (void)state;
    struct pure p = {0};
    p.conn = cp_http_conn_create(NULL, &pure_ops, &p);
    const char *in = "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /two?a=1&b=2 HTTP/1.1\r\nHost: x\r\nX-Mixed-Case: Yes\r\n\r\n"
                     "GET /three HTTP/1.1\r\nHost: x\r\n\r\n";
    cp_http_conn_feed(p.conn, in, strlen(in));
    assert_int_equal(p.n_requests, 3);
    assert_int_equal(p.n_held, 1);
    /* /two and /three are answered but must wait behind /hold. */
    char *out = take(p.conn);
    assert_string_equal(out, "");
    free(out);
    assert_int_equal(cp_http_conn_phase(p.conn), CP_HTTP_PHASE_BUSY);
    assert_string_equal(p.held[0]->method, "GET");
    assert_string_equal(cp_http_req_header(p.held[0], "HOST"), "x");
    assert_int_equal(cp_http_respond_text(p.held[0], 202, "late"), 0);
    out = take(p.conn);
    const char *a = strstr(out, "HTTP/1.1 202 Accepted\r\n");
    const char *b = strstr(out, "\r\n\r\n/two");
    const char *c = strstr(out, "\r\n\r\n/three");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_true(a < b && b < c);
    assert_int_equal(count_str(out, "HTTP/1.1 "), 3);
    assert_null(strstr(out, "Connection: close"));
    free(out);
    assert_int_equal(cp_http_conn_phase(p.conn), CP_HTTP_PHASE_IDLE);
    assert_false(cp_http_conn_done(p.conn));
    cp_http_conn_destroy(p.conn);
}

static void test_pure_request_fields(void **state)
{
    (void)state;
    struct pure p = {0};
    p.hold_all = true;
    p.conn = cp_http_conn_create(NULL, &pure_ops, &p);
    cp_http_conn_set_peer(p.conn, "10.0.0.1:555");
    const char *in = "POST /ingest/x?org=a%20b HTTP/1.1\r\nHost: h\r\nX-Empty:\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n"
                     "4\r\nabcd\r\n3;ext=1\r\nefg\r\n0\r\nTrailer: t\r\n\r\n";
    /* One byte at a time: every split point must give the same request. */
    for (size_t i = 0; in[i]; i++)
        cp_http_conn_feed(p.conn, in + i, 1);
    assert_int_equal(p.n_held, 1);
    struct cp_http_req *r = p.held[0];
    assert_string_equal(r->method, "POST");
    assert_string_equal(r->path, "/ingest/x");
    assert_string_equal(r->query, "org=a%20b");
    assert_string_equal(r->target, "/ingest/x?org=a%20b");
    assert_string_equal(r->peer, "10.0.0.1:555");
    assert_int_equal(r->body_len, 7);
    assert_memory_equal(r->body, "abcdefg", 8); /* NUL-terminated */
    assert_int_equal(r->n_headers, 3); /* the chunked trailer is not a header */
    assert_null(cp_http_req_header(r, "Trailer"));
    assert_string_equal(cp_http_req_header(r, "x-empty"), "");
    assert_null(cp_http_req_header(r, "X-Missing"));
    /* The connection goes away before the answer: the request is "gone", respond frees it. */
    cp_http_conn_destroy(p.conn);
    assert_true(cp_http_req_gone(r));
    assert_int_equal(cp_http_respond_text(r, 200, "nobody listens"), 0);
}

static void test_pure_limits(void **state)
{
    (void)state;
    struct cp_http_limits lim = {.max_header_bytes = 256, .max_headers = 4, .max_body_bytes = 10};
    struct {
        const char *in;
        const char *status;
    } cases[] = {
        {"GET / HTTP/1.1\r\nX-Big: ", "431"}, /* value completed below */
        {"GET / HTTP/1.1\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\n\r\n", "431"},
        {"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", "413"},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\nabcdef\r\n", "413"},
        {"GET / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\nX: y\r\n\r\n", NULL},
        {"POST / HTTP/1.1\r\nExpect: something-else\r\nContent-Length: 3\r\n\r\nabc", "417"},
        {"\x16\x03\x01garbage\r\n\r\n", "400"},
        {"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "400"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct pure p = {0};
        p.conn = cp_http_conn_create(&lim, &pure_ops, &p);
        cp_http_conn_feed(p.conn, cases[i].in, strlen(cases[i].in));
        if (i == 0) {
            char big[300];
            memset(big, 'v', sizeof big);
            cp_http_conn_feed(p.conn, big, sizeof big);
        }
        char *out = take(p.conn);
        if (!cases[i].status) {
            /* Expect with a body we will accept: 100 Continue, no final answer yet. */
            assert_string_equal(out, "HTTP/1.1 100 Continue\r\n\r\n");
            free(out);
            cp_http_conn_destroy(p.conn);
            continue;
        }
        char want[32];
        snprintf(want, sizeof want, "HTTP/1.1 %s ", cases[i].status);
        if (strncmp(out, want, strlen(want)) != 0)
            fail_msg("case %zu: want %s got %s", i, want, out);
        assert_non_null(strstr(out, "Connection: close\r\n"));
        assert_int_equal(count_str(out, "HTTP/1.1 "), 1);
        assert_true(cp_http_conn_done(p.conn));
        assert_int_equal(cp_http_conn_errors(p.conn), 1);
        assert_int_equal(p.n_requests, 0);
        /* Anything after the error is ignored. */
        cp_http_conn_feed(p.conn, "GET / HTTP/1.1\r\n\r\n", 18);
        free(out);
        out = take(p.conn);
        assert_string_equal(out, "");
        free(out);
        cp_http_conn_destroy(p.conn);
    }
}

static void test_pure_pipeline_limit_and_close(void **state)
{
    (void)state;
    struct cp_http_limits lim = {.max_pipelined = 2};
    struct pure p = {0};
    p.hold_all = true;
    p.conn = cp_http_conn_create(&lim, &pure_ops, &p);
    const char *one = "GET /a HTTP/1.1\r\n\r\n";
    const char *last = "GET /z HTTP/1.1\r\nConnection: close\r\n\r\nGET /ignored HTTP/1.1\r\n\r\n";
    for (int i = 0; i < 4; i++)
        cp_http_conn_feed(p.conn, one, strlen(one));
    cp_http_conn_feed(p.conn, last, strlen(last));
    /* Only two were parsed; the rest waits inside, and the caller should stop reading. */
    assert_int_equal(p.n_requests, 2);
    assert_false(cp_http_conn_wants_read(p.conn));
    for (int i = 0; i < 5; i++) {
        assert_true(i < p.n_held);
        cp_http_respond_text(p.held[i], 200, "ok");
    }
    assert_int_equal(p.n_requests, 5);
    assert_string_equal(p.last_path, "/z");
    char *out = take(p.conn);
    assert_int_equal(count_str(out, "HTTP/1.1 200 OK"), 5);
    assert_int_equal(count_str(out, "Connection: close"), 1);
    assert_non_null(strstr(strstr(out, "Connection: close"), "ok\n"));
    assert_true(cp_http_conn_done(p.conn));
    free(out);
    cp_http_conn_destroy(p.conn);
}

static void test_pure_timeout_and_eof(void **state)
{
    (void)state;
    struct pure p = {0};
    p.conn = cp_http_conn_create(NULL, &pure_ops, &p);
    cp_http_conn_feed(p.conn, "GET / HTTP/1.1\r\nHos", 19);
    assert_int_equal(cp_http_conn_phase(p.conn), CP_HTTP_PHASE_HEAD);
    cp_http_conn_timeout(p.conn);
    char *out = take(p.conn);
    assert_true(strncmp(out, "HTTP/1.1 408 ", 13) == 0);
    assert_true(cp_http_conn_done(p.conn));
    free(out);
    cp_http_conn_destroy(p.conn);

    /* EOF after a complete pipelined request: it is still answered, then done. */
    struct pure q = {0};
    q.conn = cp_http_conn_create(NULL, &pure_ops, &q);
    cp_http_conn_feed(q.conn, "GET /hold HTTP/1.1\r\n\r\nGET /partial HT", 36);
    cp_http_conn_feed_eof(q.conn);
    assert_false(cp_http_conn_done(q.conn));
    cp_http_respond_text(q.held[0], 200, "x");
    out = take(q.conn);
    assert_int_equal(count_str(out, "HTTP/1.1 "), 1);
    assert_non_null(strstr(out, "Connection: close"));
    assert_true(cp_http_conn_done(q.conn));
    free(out);
    cp_http_conn_destroy(q.conn);
}

static void test_pure_head_and_bad_header(void **state)
{
    (void)state;
    struct pure p = {0};
    p.hold_all = true;
    p.conn = cp_http_conn_create(NULL, &pure_ops, &p);
    const char *in = "HEAD /x HTTP/1.1\r\n\r\nGET /y HTTP/1.1\r\n\r\nGET /w HTTP/1.1\r\n\r\n";
    cp_http_conn_feed(p.conn, in, strlen(in));
    const char *const evil[] = {"X-Evil", "a\r\nSet-Cookie: b", NULL};
    cp_http_respond(p.held[0], 200, NULL, "body", 4);
    cp_http_respond(p.held[1], 200, evil, "b", 1);
    assert_int_equal(cp_http_respond_unavailable(p.held[2], 7, "kafka queue full"), 0);
    char *out = take(p.conn);
    /* HEAD: the length of the body that GET would have, and no body. */
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nHTTP/1.1 500"));
    assert_null(strstr(out, "Set-Cookie"));
    assert_non_null(strstr(out, "HTTP/1.1 503 Service Unavailable\r\n"));
    assert_non_null(strstr(out, "Retry-After: 7\r\n"));
    assert_non_null(strstr(out, "\r\n\r\nkafka queue full\n"));
    free(out);
    cp_http_conn_destroy(p.conn);
}

/* ======================================================================== */
/* libuv server over raw sockets                                            */
/* ======================================================================== */

#define BODY_LIMIT 1000
#define HEADER_TIMEOUT_MS 300

struct fixture {
    uv_loop_t loop;
    uv_async_t stop;
    pthread_t thread;
    struct cp_http_server *srv, *small;
    struct cp_admin *admin;
    struct cp_metrics *reg;
    struct cp_counter *requests;
    int port, small_port, admin_port;
    atomic_int ready;
    atomic_int closed;
};

struct delayed {
    uv_timer_t timer;
    struct cp_http_req *req;
};

static void on_delay_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_delay(uv_timer_t *t)
{
    struct delayed *d = t->data;
    cp_http_respond_text(d->req, 200, "delayed");
    uv_close((uv_handle_t *)&d->timer, on_delay_closed);
}

static void test_handler(struct cp_http_req *req, void *arg)
{
    struct fixture *fx = arg;
    cp_counter_inc(fx->requests);
    if (strcmp(req->path, "/delay") == 0) {
        /* Answered on a later loop iteration, like ingest waiting for Kafka acks. */
        struct delayed *d = calloc(1, sizeof *d);
        d->req = req;
        uv_timer_init(&fx->loop, &d->timer);
        d->timer.data = d;
        uv_timer_start(&d->timer, on_delay, 150, 0);
        return;
    }
    if (strcmp(req->path, "/echo") == 0) {
        cp_http_respond(req, 200, NULL, req->body, req->body_len);
        return;
    }
    if (strcmp(req->path, "/busy") == 0) {
        cp_http_respond_unavailable(req, 3, "spool above high watermark");
        return;
    }
    cp_http_respond_text(req, 200, req->path);
}

static bool test_ready(void *arg, char *reason, size_t cap)
{
    struct fixture *fx = arg;
    if (atomic_load(&fx->ready))
        return true;
    snprintf(reason, cap, "kafka not connected");
    return false;
}

static void on_one_closed(void *arg)
{
    struct fixture *fx = arg;
    atomic_fetch_add(&fx->closed, 1);
}

static void on_stop(uv_async_t *a)
{
    struct fixture *fx = a->data;
    cp_http_server_shutdown(fx->srv, 5000, on_one_closed, fx);
    cp_http_server_shutdown(fx->small, 5000, on_one_closed, fx);
    cp_admin_stop(fx->admin, on_one_closed, fx);
    uv_close((uv_handle_t *)a, NULL);
}

static void *loop_thread(void *arg)
{
    struct fixture *fx = arg;
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    return NULL;
}

static struct fixture *fixture_start(void)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    fx->reg = cp_metrics_create();
    fx->requests = cp_metrics_counter(fx->reg, "callpipe_test_requests_total", "Requests seen.");
    const char *const l[] = {"queue", NULL};
    const char *const v[] = {"sales \"eu\"\n2", NULL};
    cp_counter_add(cp_metrics_counter_child(cp_metrics_family(fx->reg, CP_METRIC_COUNTER,
                                                              "callpipe_test_labeled_total", "L.",
                                                              l, NULL, 0),
                                            v),
                   5);
    struct cp_http_config cfg = {
        .limits = {.max_body_bytes = BODY_LIMIT},
        .header_timeout_ms = HEADER_TIMEOUT_MS,
        .idle_timeout_ms = 10000,
        .ident = "test:http",
    };
    fx->srv = cp_http_server_create(&fx->loop, &cfg, test_handler, fx);
    assert_non_null(fx->srv);
    assert_int_equal(cp_http_server_listen(fx->srv, "127.0.0.1", 0), 0);
    fx->port = cp_http_server_port(fx->srv);
    assert_true(fx->port > 0);
    struct cp_http_config small_cfg = {.max_connections = 1, .reuseport = true};
    fx->small = cp_http_server_create(&fx->loop, &small_cfg, test_handler, fx);
    assert_int_equal(cp_http_server_listen(fx->small, "127.0.0.1", 0), 0);
    fx->small_port = cp_http_server_port(fx->small);
    struct cp_admin_config acfg = {.host = "127.0.0.1", .port = 0};
    fx->admin = cp_admin_start(&fx->loop, &acfg, fx->reg, test_ready, fx);
    assert_non_null(fx->admin);
    fx->admin_port = cp_admin_port(fx->admin);
    uv_async_init(&fx->loop, &fx->stop, on_stop);
    fx->stop.data = fx;
    assert_int_equal(pthread_create(&fx->thread, NULL, loop_thread, fx), 0);
    return fx;
}

static void fixture_stop(struct fixture *fx)
{
    uv_async_send(&fx->stop);
    pthread_join(fx->thread, NULL);
    assert_int_equal(atomic_load(&fx->closed), 3); /* every server reported closed */
    assert_int_equal(uv_loop_close(&fx->loop), 0); /* and left no handle behind */
    cp_metrics_destroy(fx->reg);
    free(fx);
}

/* ---- a tiny blocking HTTP client ----------------------------------------- */

struct client {
    int fd;
    char buf[65536];
    size_t len;
};

struct resp {
    int status;
    char head[4096];
    char body[8192];
    size_t body_len;
};

static struct client *client_connect(int port)
{
    struct client *c = calloc(1, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->fd >= 0);
    /* Only a safety net against hangs; nothing asserts on time. */
    struct timeval tv = {10, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&sin, sizeof sin), 0);
    return c;
}

static void client_close(struct client *c)
{
    close(c->fd);
    free(c);
}

static void client_send(struct client *c, const char *data, size_t len)
{
    while (len) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        data += n;
        len -= (size_t)n;
    }
}

static void client_send_str(struct client *c, const char *s)
{
    client_send(c, s, strlen(s));
}

/* 1 = got bytes, 0 = EOF, -1 = error (reset or timeout). */
static int client_fill(struct client *c)
{
    if (c->len >= sizeof c->buf)
        return -1;
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    if (n > 0) {
        c->len += (size_t)n;
        return 1;
    }
    return n == 0 ? 0 : -1;
}

static size_t content_length(const char *head)
{
    const char *p = head;
    while ((p = strchr(p, '\n')) != NULL) {
        p++;
        if (strncasecmp(p, "Content-Length:", 15) == 0)
            return strtoul(p + 15, NULL, 10);
    }
    return 0;
}

/* Reads one response (an interim 1xx counts as one). 0 or -1 when the connection ended first. */
static int client_read(struct client *c, struct resp *r, bool head_request)
{
    char *end;
    memset(r, 0, sizeof *r);
    while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL)
        if (client_fill(c) <= 0)
            return -1;
    size_t head_len = (size_t)(end - c->buf) + 4;
    assert_true(head_len < sizeof r->head);
    memcpy(r->head, c->buf, head_len);
    assert_int_equal(sscanf(r->head, "HTTP/1.1 %d ", &r->status), 1);
    size_t body_len = (r->status < 200 || head_request) ? 0 : content_length(r->head);
    assert_true(body_len < sizeof r->body);
    while (c->len < head_len + body_len)
        if (client_fill(c) <= 0)
            return -1;
    memcpy(r->body, c->buf + head_len, body_len);
    r->body_len = body_len;
    memmove(c->buf, c->buf + head_len + body_len, c->len - head_len - body_len);
    c->len -= head_len + body_len;
    return 0;
}

/* True when the server closed the connection (EOF or reset) with nothing more to read. */
static bool client_closed_by_peer(struct client *c)
{
    if (c->len)
        return false;
    return client_fill(c) <= 0 && errno != EAGAIN;
}

static struct fixture *fx;

static int group_setup(void **state)
{
    (void)state;
    fx = fixture_start();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    fixture_stop(fx);
    return 0;
}

static void test_keep_alive(void **state)
{
    (void)state;
    struct client *c = client_connect(fx->port);
    struct resp r;
    client_send_str(c, "GET /first HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(client_read(c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "/first\n");
    assert_null(strstr(r.head, "Connection: close"));
    client_send_str(c, "GET /second HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(client_read(c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "/second\n");
    client_close(c);
}

static void test_pipelined_async_first(void **state)
{
    (void)state;
    struct client *c = client_connect(fx->port);
    client_send_str(c, "GET /delay HTTP/1.1\r\nHost: t\r\n\r\n"
                       "GET /p2 HTTP/1.1\r\nHost: t\r\n\r\n"
                       "GET /p3 HTTP/1.1\r\nHost: t\r\n\r\n");
    const char *want[] = {"delayed\n", "/p2\n", "/p3\n"};
    for (int i = 0; i < 3; i++) {
        struct resp r;
        assert_int_equal(client_read(c, &r, false), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, want[i]);
    }
    client_close(c);
}

static void test_chunked_body(void **state)
{
    (void)state;
    struct client *c = client_connect(fx->port);
    client_send_str(c, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "5\r\nhello\r\n");
    client_send_str(c, "6\r\n world\r\n0\r\n\r\n");
    struct resp r;
    assert_int_equal(client_read(c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 11);
    assert_string_equal(r.body, "hello world");
    client_close(c);
}

static void test_expect_continue(void **state)
{
    (void)state;
    struct client *c = client_connect(fx->port);
    client_send_str(c, "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                       "Content-Length: 5\r\n\r\n");
    struct resp r;
    /* The interim answer arrives although no body byte was sent. */
    assert_int_equal(client_read(c, &r, false), 0);
    assert_int_equal(r.status, 100);
    client_send_str(c, "12345");
    assert_int_equal(client_read(c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "12345");
    client_close(c);
}

static void test_body_limit(void **state)
{
    (void)state;
    /* With Expect: refused before the body is sent. */
    struct client *c = client_connect(fx->port);
    char req[256];
    snprintf(req, sizeof req,
             "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n",
             BODY_LIMIT + 1);
    client_send_str(c, req);
    struct resp r;
    assert_int_equal(client_read(c, &r, false), 0);
    assert_int_equal(r.status, 413);
    assert_non_null(strstr(r.head, "Connection: close"));
    assert_true(client_closed_by_peer(c));
    client_close(c);

    /* Chunked past the limit while the body streams in. */
    c = client_connect(fx->port);
    client_send_str(c, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    char chunk[600];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 2; i++) {
        client_send_str(c, "258\r\n"); /* 600 */
        client_send(c, chunk, sizeof chunk);
        client_send_str(c, "\r\n");
    }
    assert_int_equal(client_read(c, &r, false), 0);
    assert_int_equal(r.status, 413);
    assert_true(client_closed_by_peer(c));
    client_close(c);
}

static void test_garbage_400_and_close(void **state)
{
    (void)state;
    struct client *c = client_connect(fx->port);
    client_send_str(c, "GET /ok HTTP/1.1\r\n\r\n\x01\x02 not http at all\r\n\r\n");
    struct resp r;
    assert_int_equal(client_read(c, &r, false), 0);
    assert_int_equal(r.status, 200); /* the good request before the garbage is still answered */
    assert_int_equal(client_read(c, &r, false), 0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.head, "Connection: close"));
    assert_true(client_closed_by_peer(c));
    client_close(c);
}

static void test_header_timeout(void **state)
{
    (void)state;
    struct client *c = client_connect(fx->port);
    client_send_str(c, "GET /slow HTTP/1.1\r\nHost: t\r\nX-Trickle: a");
    struct resp r;
    /* Headers never complete: 408, then the server closes. */
    assert_int_equal(client_read(c, &r, false), 0);
    assert_int_equal(r.status, 408);
    assert_true(client_closed_by_peer(c));
    client_close(c);

    /* A client that connects and sends nothing is closed too. */
    c = client_connect(fx->port);
    assert_true(client_closed_by_peer(c));
    client_close(c);
}

static void test_unavailable_and_conn_limit(void **state)
{
    (void)state;
    struct client *c = client_connect(fx->port);
    client_send_str(c, "GET /busy HTTP/1.1\r\n\r\n");
    struct resp r;
    assert_int_equal(client_read(c, &r, false), 0);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.head, "Retry-After: 3\r\n"));
    client_close(c);

    /* The small server takes one connection; the second gets 503 and is closed. */
    struct client *first = client_connect(fx->small_port);
    client_send_str(first, "GET /x HTTP/1.1\r\n\r\n");
    assert_int_equal(client_read(first, &r, false), 0); /* surely accepted by now */
    assert_int_equal(r.status, 200);
    struct client *second = client_connect(fx->small_port);
    assert_int_equal(client_read(second, &r, false), 0);
    assert_int_equal(r.status, 503);
    assert_true(client_closed_by_peer(second));
    client_close(second);
    client_close(first);
}

static void admin_get(const char *request, struct resp *r, bool head)
{
    struct client *c = client_connect(fx->admin_port);
    client_send_str(c, request);
    assert_int_equal(client_read(c, r, head), 0);
    client_close(c);
}

static void test_admin_endpoints(void **state)
{
    (void)state;
    struct resp r;
    admin_get("GET /nope HTTP/1.1\r\n\r\n", &r, false);
    assert_int_equal(r.status, 404);
    admin_get("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r, false);
    assert_int_equal(r.status, 405);
    assert_non_null(strstr(r.head, "Allow: GET, HEAD\r\n"));
    admin_get("DELETE /healthz HTTP/1.1\r\n\r\n", &r, false);
    assert_int_equal(r.status, 405);
    admin_get("GET /healthz HTTP/1.1\r\n\r\n", &r, false);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok\n");

    atomic_store(&fx->ready, 0);
    admin_get("GET /readyz HTTP/1.1\r\n\r\n", &r, false);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "kafka not connected\n");
    atomic_store(&fx->ready, 1);
    admin_get("GET /readyz HTTP/1.1\r\n\r\n", &r, false);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ready\n");

    admin_get("HEAD /metrics HTTP/1.1\r\n\r\n", &r, true);
    assert_int_equal(r.status, 200);
    assert_true(content_length(r.head) > 0);
    assert_int_equal(r.body_len, 0);

    admin_get("GET /metrics HTTP/1.1\r\n\r\n", &r, false);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    struct prom_doc doc;
    char err[256];
    if (prom_parse(r.body, r.body_len, &doc, err, sizeof err) != 0)
        fail_msg("/metrics does not parse: %s\n%s", err, r.body);
    const struct prom_sample *s = prom_find_sample(&doc, "callpipe_test_requests_total", NULL);
    assert_non_null(s);
    assert_true(s->value >= 1); /* earlier tests made requests; exact count depends on order */
    const char *const lv[] = {"queue", "sales \"eu\"\n2", NULL};
    s = prom_find_sample(&doc, "callpipe_test_labeled_total", lv);
    assert_non_null(s);
    assert_true(s->value == 5);
    prom_doc_free(&doc);
}

/* Shutdown with a request in flight: it is still answered (with close), then everything ends. */
static void test_graceful_shutdown(void **state)
{
    (void)state;
    struct fixture *own = fixture_start();
    struct client *c = client_connect(own->port);
    client_send_str(c, "GET /delay HTTP/1.1\r\nHost: t\r\n\r\n");
    /* Make sure the request reached the handler before stopping: ask /readyz via admin. */
    struct client *idle = client_connect(own->port);
    client_send_str(idle, "GET /warm HTTP/1.1\r\n\r\n");
    struct resp r;
    assert_int_equal(client_read(idle, &r, false), 0);
    uv_async_send(&own->stop);
    assert_int_equal(client_read(c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "delayed\n");
    assert_non_null(strstr(r.head, "Connection: close"));
    assert_true(client_closed_by_peer(c));
    assert_true(client_closed_by_peer(idle)); /* idle keep-alive connection closed by drain */
    client_close(c);
    client_close(idle);
    pthread_join(own->thread, NULL);
    assert_int_equal(atomic_load(&own->closed), 3);
    assert_int_equal(uv_loop_close(&own->loop), 0);
    cp_metrics_destroy(own->reg);
    free(own);
}

int main(void)
{
    const struct CMUnitTest pure_tests[] = {
        cmocka_unit_test(test_pure_pipeline_order),
        cmocka_unit_test(test_pure_request_fields),
        cmocka_unit_test(test_pure_limits),
        cmocka_unit_test(test_pure_pipeline_limit_and_close),
        cmocka_unit_test(test_pure_timeout_and_eof),
        cmocka_unit_test(test_pure_head_and_bad_header),
        cmocka_unit_test(test_graceful_shutdown),
    };
    const struct CMUnitTest server_tests[] = {
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_pipelined_async_first),
        cmocka_unit_test(test_chunked_body),
        cmocka_unit_test(test_expect_continue),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_garbage_400_and_close),
        cmocka_unit_test(test_header_timeout),
        cmocka_unit_test(test_unavailable_and_conn_limit),
        cmocka_unit_test(test_admin_endpoints),
    };
    int failed = cmocka_run_group_tests_name("http_pure", pure_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("http_server", server_tests, group_setup, group_teardown);
    return failed;
}
