/* fuzz_http.c - libFuzzer target: the pure HTTP connection layer is split-invariant, in-order and well-formed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp_http.h"

/*
 * Input: byte 0 seeds where the bytes are split, byte 1 picks the answer
 * mode (and bit 7 a graceful drain half-way), the rest goes to the connection.  Checks:
 *   - the output is a clean sequence of responses (status line, headers,
 *     Content-Length bodies), at most one "Connection: close" and only last;
 *   - answers appear in request order whatever order handlers answer in;
 *   - with answers deferred to the end, the output does not depend on how
 *     the input was split, nor on the order the handlers answered (up to the
 *     timing-dependent "Connection: close" and "100 Continue", see strip_close,
 *     and which error a bad head gets, see error_start).
 */

#define MAX_HELD 512

struct run {
    struct cp_http_conn *conn;
    struct cp_http_req *held[MAX_HELD];
    int n_held;
    int seq;
    int sync; /* answer inside on_request */
    size_t drain_at; /* 0 = never */
    char *out;
    size_t out_len;
};

static void answer(struct cp_http_req *req, int seq)
{
    char body[128];
    if (strcmp(req->method, "HEAD") == 0) {
        cp_http_respond(req, 204, NULL, NULL, 0);
        return;
    }
    int n = snprintf(body, sizeof body, "seq=%d len=%zu", seq, req->body_len);
    const char *const hdrs[] = {"X-Seq", "1", NULL};
    cp_http_respond(req, 200, hdrs, body, (size_t)n);
}

static void on_request(struct cp_http_conn *conn, struct cp_http_req *req, void *user)
{
    struct run *r = user;
    /* Touch every field: ASan checks they are valid strings. */
    size_t sum = strlen(req->method) + strlen(req->path) + strlen(req->query) +
                 strlen(req->target) + strlen(req->peer) + strlen((const char *)req->body);
    for (size_t i = 0; i < req->n_headers; i++)
        sum += strlen(req->headers[i].name) + strlen(req->headers[i].value);
    (void)cp_http_req_header(req, "content-type");
    if (sum == (size_t)-1)
        abort();
    /* HEAD is answered 204 without a body: only the others carry a sequence number. */
    req->user = (void *)(intptr_t)(strcmp(req->method, "HEAD") == 0 ? -1 : r->seq++);
    if (r->sync || r->n_held >= MAX_HELD) {
        answer(req, (int)(intptr_t)req->user);
        return;
    }
    r->held[r->n_held++] = req;
}

static void collect(struct run *r)
{
    size_t n;
    char *o = cp_http_conn_take_output(r->conn, &n);
    if (!o)
        return;
    r->out = realloc(r->out, r->out_len + n);
    memcpy(r->out + r->out_len, o, n);
    r->out_len += n;
    free(o);
}

static void answer_held(struct run *r, int reverse)
{
    /* Answering may release more pipelined requests: loop until quiet. */
    while (r->n_held) {
        int n = r->n_held;
        struct cp_http_req *batch[MAX_HELD];
        memcpy(batch, r->held, (size_t)n * sizeof *batch);
        r->n_held = 0;
        for (int i = 0; i < n; i++) {
            struct cp_http_req *req = batch[reverse ? n - 1 - i : i];
            answer(req, (int)(intptr_t)req->user);
        }
        collect(r);
    }
}

static uint32_t rng(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 16;
}

/* mode: 0 = answer at the end, 1 = after every chunk, 2 = synchronously. */
static void run(const uint8_t *data, size_t size, uint32_t split_seed, int mode, int reverse,
                size_t drain_at, struct run *r)
{
    static const struct cp_http_conn_ops ops = {on_request, NULL};
    const struct cp_http_limits lim = {.max_header_bytes = 512,
                                       .max_headers = 8,
                                       .max_body_bytes = 256,
                                       .max_pipelined = 4};
    memset(r, 0, sizeof *r);
    r->sync = mode == 2;
    r->drain_at = drain_at;
    r->conn = cp_http_conn_create(&lim, &ops, r);
    if (!r->conn)
        abort();
    cp_http_conn_set_peer(r->conn, "127.0.0.1:1");
    size_t off = 0;
    while (off < size) {
        size_t chunk = split_seed ? 1 + rng(&split_seed) % 64 : size - off;
        if (chunk > size - off)
            chunk = size - off;
        cp_http_conn_feed(r->conn, data + off, chunk);
        off += chunk;
        collect(r);
        if (mode == 1)
            answer_held(r, reverse);
        if (r->drain_at && off >= r->drain_at) {
            cp_http_conn_drain(r->conn); /* graceful shutdown in the middle of the input */
            r->drain_at = 0;
        }
        (void)cp_http_conn_phase(r->conn);
        (void)cp_http_conn_wants_read(r->conn);
    }
    cp_http_conn_feed_eof(r->conn);
    collect(r);
    answer_held(r, reverse);
    collect(r);
    if (!cp_http_conn_done(r->conn))
        abort(); /* after EOF and every answer, the connection must be finished */
    cp_http_conn_feed(r->conn, "GET / HTTP/1.1\r\n\r\n", 18);
    size_t before = r->out_len;
    collect(r);
    if (r->out_len != before)
        abort(); /* output after done */
}

static void check_output(const struct run *r)
{
    if (!r->out_len)
        return;
    const char *p = r->out, *end = r->out + r->out_len;
    int last_seq = -1;
    int closes = 0;
    while (p < end) {
        if ((size_t)(end - p) < 12 || memcmp(p, "HTTP/1.1 ", 9) != 0)
            abort();
        const char *he = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!he)
            abort();
        int status = atoi(p + 9);
        if (status < 100 || status > 599)
            abort();
        if (closes)
            abort(); /* something after Connection: close */
        const char *cl = memmem(p, (size_t)(he - p), "\r\nConnection: close\r\n", 21);
        if (cl || memmem(p, (size_t)(he + 2 - p), "\r\nConnection: close\r\n", 21))
            closes++;
        size_t body = 0;
        const char *len = memmem(p, (size_t)(he - p), "\r\nContent-Length: ", 18);
        if (status >= 200 && status != 204 && status != 304) {
            if (!len)
                abort();
            body = strtoul(len + 18, NULL, 10);
        } else if (len) {
            abort();
        }
        p = he + 4;
        /* The layer's own error answers close and come last; for HEAD they carry no body. */
        if (status >= 400 && closes && p == end)
            body = 0;
        if ((size_t)(end - p) < body)
            abort();
        if (status == 200) {
            int seq = -1;
            if (body < 4 || memcmp(p, "seq=", 4) != 0)
                abort();
            seq = atoi(p + 4);
            if (seq != last_seq + 1)
                abort(); /* answers out of request order, or one missing */
            last_seq = seq;
        }
        p += body;
    }
}

/*
 * "Connection: close" on the last answer is advisory once the peer sent EOF:
 * whether the last answer is written before or after the EOF is noticed
 * depends on the answer order.  Compare without it.
 */
static size_t strip_close(const char *in, size_t n, char *out)
{
    /* Likewise "100 Continue" is sent only if the body has not arrived yet (split-dependent). */
    static const char *const drop[] = {"Connection: close\r\n", "HTTP/1.1 100 Continue\r\n\r\n"};
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k;
        for (k = 0; k < 2; k++) {
            size_t len = strlen(drop[k]);
            if (n - i >= len && memcmp(in + i, drop[k], len) == 0) {
                i += len;
                break;
            }
        }
        if (k == 2)
            out[o++] = in[i++];
    }
    return o;
}

/*
 * Where the layer's own error answer (the handlers here only answer 200/204)
 * starts, or n.  Which error a bad head gets depends on where it was split:
 * libhttp-parser reports a URL or header chunk to us (size limit, 431) only
 * at the end of each buffer, but a bad byte (400) as soon as it sees it.
 */
static size_t error_start(const char *out, size_t n)
{
    for (size_t i = 0; i + 10 <= n; i++)
        if (!memcmp(out + i, "HTTP/1.1 ", 9) && (out[i + 9] == '4' || out[i + 9] == '5'))
            return i; /* bodies here never contain "HTTP/1.1 " */
    return n;
}

static int same_output(const struct run *a, const struct run *b)
{
    char *x = malloc(a->out_len + 1), *y = malloc(b->out_len + 1);
    size_t nx = strip_close(a->out ? a->out : "", a->out_len, x);
    size_t ny = strip_close(b->out ? b->out : "", b->out_len, y);
    size_t ex = error_start(x, nx), ey = error_start(y, ny);
    if ((ex == nx) != (ey == ny)) {
        free(x);
        free(y);
        return 0; /* one split ended in an error answer, the other did not */
    }
    nx = ex;
    ny = ey;
    int same = nx == ny && memcmp(x, y, nx) == 0;
    free(x);
    free(y);
    return same;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint32_t seed = data[0] | 1u;
    int mode = data[1] % 3;
    int drain = data[1] & 0x80;
    data += 2;
    size -= 2;

    struct run a, b;
    size_t drain_at = drain ? 1 + size / 2 : 0; /* only in runs whose output is not compared */
    run(data, size, 0, mode == 2 ? 2 : 0, 0, 0, &a);
    check_output(&a);
    if (mode == 2) {
        /* Synchronous answers: only well-formedness (timing of EOF changes close flags). */
        run(data, size, seed, 2, 0, drain_at, &b);
        check_output(&b);
    } else {
        /* Deferred answers: another split and the reverse answer order give the same bytes. */
        run(data, size, seed, mode, 1, 0, &b);
        check_output(&b);
        if (mode == 0 && !same_output(&a, &b))
            abort();
    }
    cp_http_conn_destroy(a.conn);
    cp_http_conn_destroy(b.conn);
    free(a.out);
    free(b.out);
    return 0;
}
