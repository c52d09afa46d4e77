/* cp_http.c - HTTP/1.1 connection state machine on libhttp-parser, and its libuv server glue. */
#include "cp_http.h"

#include <errno.h>
#include <http_parser.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include "cp_log.h"

/* ======================================================================== */
/* Layer 1: the pure connection.                                            */
/* ======================================================================== */

enum seg { SEG_URL, SEG_FIELD, SEG_VALUE };

struct req {
    struct cp_http_req pub; /* first: the handler's pointer is ours */
    struct req *next;
    struct cp_http_conn *conn; /* NULL once the connection is gone */

    /* Request head as "url\0name\0value\0...", offsets until finalized. */
    char *head;
    size_t head_len, head_cap;
    size_t (*hdr_off)[2]; /* name, value offsets */
    size_t n_hdr, hdr_cap;
    enum seg seg;
    struct cp_http_header *hdrs;
    uint8_t *body;
    size_t body_len, body_cap;
    size_t trailer_len;

    bool headers_done, dispatched, answered, want_continue, continue_sent, close, is_head;

    /* The answer, serialized into the output when this request reaches the head. */
    int status;
    char *resp_hdrs; /* "Name: value\r\n"... */
    size_t resp_hdrs_len;
    char *resp_body;
    size_t resp_body_len;
};

struct cp_http_conn {
    http_parser parser;
    struct cp_http_limits lim;
    struct cp_http_conn_ops ops;
    void *user;
    char *peer;
    struct req *q_head, *q_tail; /* every request in arrival order, incl. the partial one */
    struct req *cur;             /* request being parsed (the tail), or NULL */
    size_t n_waiting;            /* dispatched, not yet written out */
    char *in;                    /* input not parsed yet (pipeline limit) */
    size_t in_off, in_len, in_cap;
    char *out;
    size_t out_len, out_cap;
    bool input_closed; /* parse nothing more: error, close, eof, drain, timeout */
    bool drop_pending; /* a "close" answer went out while the parser ran */
    bool eof, draining, in_execute, in_flush, broken;
    int err_status; /* set by a callback before it fails the parse */
    uint64_t errors;
};

#define DEFAULT_MAX_HEADER (16 * 1024)
#define DEFAULT_MAX_HEADERS 64
#define DEFAULT_MAX_BODY (1024 * 1024)
#define DEFAULT_MAX_PIPELINED 16

static const char CONTINUE_LINE[] = "HTTP/1.1 100 Continue\r\n\r\n";

static bool grow(void *pp, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t ncap = *cap ? *cap : 64;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*(void **)pp, ncap * elem);
    if (!p)
        return false;
    *(void **)pp = p;
    *cap = ncap;
    return true;
}

static bool out_put(struct cp_http_conn *c, const void *data, size_t len)
{
    if (!grow(&c->out, &c->out_cap, c->out_len + len, 1))
        return false;
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    return true;
}

static void req_free(struct req *r)
{
    free(r->head);
    free(r->hdr_off);
    free(r->hdrs);
    free(r->body);
    free(r->resp_hdrs);
    free(r->resp_body);
    free(r);
}

static bool head_put(struct req *r, const char *data, size_t len)
{
    if (!grow(&r->head, &r->head_cap, r->head_len + len + 1, 1))
        return false;
    memcpy(r->head + r->head_len, data, len);
    r->head_len += len;
    return true;
}

static void queue_push(struct cp_http_conn *c, struct req *r)
{
    r->next = NULL;
    if (c->q_tail)
        c->q_tail->next = r;
    else
        c->q_head = r;
    c->q_tail = r;
}

/* Drops every queued request: unanswered dispatched ones become "gone". */
static void drop_queue_from(struct cp_http_conn *c, struct req *first)
{
    struct req *prev = NULL;
    for (struct req *r = c->q_head; r && r != first; r = r->next)
        prev = r;
    if (prev) {
        prev->next = NULL;
        c->q_tail = prev;
    } else {
        c->q_head = c->q_tail = NULL;
    }
    while (first) {
        struct req *next = first->next;
        if (first->dispatched)
            c->n_waiting--;
        if (first->dispatched && !first->answered) {
            first->conn = NULL;
            first->next = NULL;
        } else {
            req_free(first);
        }
        first = next;
    }
    c->cur = NULL;
}

static void discard_input(struct cp_http_conn *c)
{
    c->in_off = c->in_len = 0;
}

/* Stops parsing; while the parser runs, the partial request is dropped after it returns. */
static void close_input(struct cp_http_conn *c)
{
    c->input_closed = true;
    if (c->in_execute) {
        http_parser_pause(&c->parser, 1);
        return;
    }
    discard_input(c);
}

static void set_answer_text(struct req *r, int status, const char *text)
{
    free(r->resp_hdrs);
    free(r->resp_body);
    r->resp_hdrs = NULL;
    r->resp_hdrs_len = 0;
    r->resp_body = NULL;
    r->resp_body_len = 0;
    r->status = status;
    static const char ct[] = "Content-Type: text/plain; charset=utf-8\r\n";
    size_t n = strlen(text);
    r->resp_hdrs = strdup(ct);
    r->resp_body = malloc(n + 1);
    if (r->resp_hdrs && r->resp_body) {
        r->resp_hdrs_len = sizeof ct - 1;
        memcpy(r->resp_body, text, n);
        r->resp_body[n] = '\n';
        r->resp_body_len = n + 1;
    }
    r->answered = true;
}

static bool serialize(struct cp_http_conn *c, struct req *r, bool close)
{
    char line[128];
    const char *reason = http_status_str((enum http_status)r->status);
    bool no_body = r->status < 200 || r->status == 204 || r->status == 304;
    int n = snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\n", r->status, reason);
    if (!out_put(c, line, (size_t)n) || !out_put(c, r->resp_hdrs, r->resp_hdrs_len))
        return false;
    if (!no_body) {
        n = snprintf(line, sizeof line, "Content-Length: %zu\r\n", r->resp_body_len);
        if (!out_put(c, line, (size_t)n))
            return false;
    }
    if (close && !out_put(c, "Connection: close\r\n", 19))
        return false;
    if (!out_put(c, "\r\n", 2))
        return false;
    if (!no_body && !r->is_head && !out_put(c, r->resp_body, r->resp_body_len))
        return false;
    return true;
}

static void conn_process(struct cp_http_conn *c);

/* Writes out every answer that is next in line; the heart of in-order pipelining. */
static void conn_flush(struct cp_http_conn *c)
{
    if (c->in_flush || c->broken)
        return;
    c->in_flush = true;
    bool produced = false;
    struct req *r;
    while ((r = c->q_head) != NULL) {
        if (r->want_continue && !r->continue_sent && !r->answered) {
            if (!out_put(c, CONTINUE_LINE, sizeof CONTINUE_LINE - 1))
                goto broken;
            r->continue_sent = true;
            produced = true;
        }
        if (!r->answered)
            break;
        bool close = r->close || (c->input_closed && !r->next && !c->cur);
        if (!serialize(c, r, close))
            goto broken;
        produced = true;
        c->q_head = r->next;
        if (!c->q_head)
            c->q_tail = NULL;
        if (r == c->cur)
            c->cur = NULL;
        if (r->dispatched)
            c->n_waiting--;
        req_free(r);
        if (close) {
            close_input(c);
            if (c->in_execute)
                c->drop_pending = true;
            else if (c->q_head)
                drop_queue_from(c, c->q_head);
            break;
        }
    }
    c->in_flush = false;
    if (!c->in_execute && !c->input_closed && c->in_len > c->in_off)
        conn_process(c); /* an answer may have lifted the pipeline limit */
    if (produced && c->ops.on_output)
        c->ops.on_output(c, c->user);
    return;
broken:
    /* Out of memory while writing: nothing sane can follow on this connection. */
    c->broken = true;
    c->in_flush = false;
    close_input(c);
    if (!c->in_execute)
        drop_queue_from(c, c->q_head);
    if (c->ops.on_output)
        c->ops.on_output(c, c->user);
}

static bool can_parse(const struct cp_http_conn *c)
{
    return !c->input_closed && c->n_waiting < c->lim.max_pipelined;
}

/* ---- libhttp-parser callbacks ------------------------------------------ */

static int fail(struct cp_http_conn *c, int status)
{
    if (!c->err_status)
        c->err_status = status;
    return -1;
}

static int on_message_begin(http_parser *p)
{
    struct cp_http_conn *c = p->data;
    struct req *r = calloc(1, sizeof *r);
    if (!r)
        return fail(c, 503);
    r->conn = c;
    r->seg = SEG_URL;
    queue_push(c, r);
    c->cur = r;
    return 0;
}

static bool head_room(struct cp_http_conn *c, struct req *r, size_t len)
{
    return r->head_len + len <= c->lim.max_header_bytes;
}

/* Chunked trailers arrive after the head is final: bounded, then dropped (never moved into it). */
static int trailer_bytes(struct cp_http_conn *c, struct req *r, size_t len)
{
    if (len > c->lim.max_header_bytes - r->trailer_len)
        return fail(c, 431);
    r->trailer_len += len;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct cp_http_conn *c = p->data;
    struct req *r = c->cur;
    if (!r)
        return fail(c, 400);
    if (!head_room(c, r, len))
        return fail(c, 431);
    return head_put(r, at, len) ? 0 : fail(c, 503);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct cp_http_conn *c = p->data;
    struct req *r = c->cur;
    if (!r)
        return fail(c, 400);
    if (r->headers_done)
        return trailer_bytes(c, r, len);
    if (r->seg != SEG_FIELD) {
        if (r->n_hdr >= c->lim.max_headers)
            return fail(c, 431);
        if (!head_room(c, r, len + 1) || !head_put(r, "", 1))
            return fail(c, 431);
        if (!grow(&r->hdr_off, &r->hdr_cap, r->n_hdr + 1, sizeof *r->hdr_off))
            return fail(c, 503);
        r->hdr_off[r->n_hdr][0] = r->head_len;
        r->hdr_off[r->n_hdr][1] = SIZE_MAX;
        r->n_hdr++;
        r->seg = SEG_FIELD;
    }
    if (!head_room(c, r, len))
        return fail(c, 431);
    return head_put(r, at, len) ? 0 : fail(c, 503);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct cp_http_conn *c = p->data;
    struct req *r = c->cur;
    if (!r || r->n_hdr == 0)
        return fail(c, 400);
    if (r->headers_done)
        return trailer_bytes(c, r, len);
    if (r->seg != SEG_VALUE) {
        if (!head_room(c, r, len + 1) || !head_put(r, "", 1))
            return fail(c, 431);
        r->hdr_off[r->n_hdr - 1][1] = r->head_len;
        r->seg = SEG_VALUE;
    }
    if (!head_room(c, r, len))
        return fail(c, 431);
    return head_put(r, at, len) ? 0 : fail(c, 503);
}

/* Appends a NUL-terminated copy and returns its offset. */
static size_t head_add_str(struct req *r, const char *s, size_t len, bool *ok)
{
    size_t off = r->head_len;
    if (!head_put(r, s, len) || !head_put(r, "", 1))
        *ok = false;
    return off;
}

/* Turns the offsets into the public pointers once the head will not grow any more. */
static bool finalize_head(struct cp_http_conn *c, struct req *r)
{
    bool ok = head_put(r, "", 1); /* ends the url or the last value */
    size_t url_len = strnlen(r->head ? r->head : "", r->head_len);
    const char *url = r->head ? r->head : "";
    const char *path = url, *query = "";
    size_t path_len = url_len, query_len = 0;
    if (url_len && url[0] != '/' && url[0] != '*') {
        struct http_parser_url u;
        http_parser_url_init(&u);
        if (http_parser_parse_url(url, url_len, r->pub.method && !strcmp(r->pub.method, "CONNECT"),
                                  &u) == 0 &&
            (u.field_set & (1 << UF_PATH))) {
            path = url + u.field_data[UF_PATH].off;
            path_len = u.field_data[UF_PATH].len;
            if (u.field_set & (1 << UF_QUERY)) {
                query = url + u.field_data[UF_QUERY].off;
                query_len = u.field_data[UF_QUERY].len;
            }
        }
    } else {
        const char *q = memchr(url, '?', url_len);
        if (q) {
            path_len = (size_t)(q - url);
            query = q + 1;
            query_len = url_len - path_len - 1;
        }
        const char *hash = memchr(query_len ? query : path, '#', query_len ? query_len : path_len);
        if (hash && query_len)
            query_len = (size_t)(hash - query);
        else if (hash)
            path_len = (size_t)(hash - path);
    }
    /* Copy path/query/peer through a temporary: head_put may move `url`. */
    char *tmp = malloc(path_len + query_len + 2);
    if (!tmp)
        return false;
    size_t path_src = path_len ? (size_t)(path - url) : 0;
    size_t query_src = query_len ? (size_t)(query - url) : 0;
    memcpy(tmp, url + path_src, path_len);
    memcpy(tmp + path_len, url + query_src, query_len);
    size_t path_off = head_add_str(r, tmp, path_len, &ok);
    size_t query_off = head_add_str(r, tmp + path_len, query_len, &ok);
    free(tmp);
    const char *peer = c->peer ? c->peer : "";
    size_t peer_off = head_add_str(r, peer, strlen(peer), &ok);
    if (!ok)
        return false;
    r->hdrs = calloc(r->n_hdr ? r->n_hdr : 1, sizeof *r->hdrs);
    if (!r->hdrs)
        return false;
    for (size_t i = 0; i < r->n_hdr; i++) {
        r->hdrs[i].name = r->head + r->hdr_off[i][0];
        /* libhttp-parser may skip the value callback for an empty value. */
        r->hdrs[i].value = r->hdr_off[i][1] == SIZE_MAX ? "" : r->head + r->hdr_off[i][1];
    }
    r->pub.target = r->head;
    r->pub.path = r->head + path_off;
    r->pub.query = r->head + query_off;
    r->pub.peer = r->head + peer_off;
    r->pub.headers = r->hdrs;
    r->pub.n_headers = r->n_hdr;
    return true;
}

static int on_headers_complete(http_parser *p)
{
    struct cp_http_conn *c = p->data;
    struct req *r = c->cur;
    if (!r)
        return fail(c, 400);
    r->pub.method = http_method_str((enum http_method)p->method);
    r->pub.http_major = p->http_major;
    r->pub.http_minor = p->http_minor;
    if (!finalize_head(c, r))
        return fail(c, 503);
    r->headers_done = true;
    r->is_head = p->method == HTTP_HEAD;
    r->close = !http_should_keep_alive(p) || c->draining;
    bool has_length = p->content_length != ULLONG_MAX;
    if (has_length && p->content_length > c->lim.max_body_bytes)
        return fail(c, 413); /* before any body byte, including instead of 100 Continue */
    bool body_expected = (p->flags & F_CHUNKED) || (has_length && p->content_length > 0);
    const char *expect = cp_http_req_header(&r->pub, "Expect");
    if (expect && body_expected && (p->http_major > 1 || (p->http_major == 1 && p->http_minor >= 1))) {
        if (strcasecmp(expect, "100-continue") != 0)
            return fail(c, 417);
        r->want_continue = true;
        conn_flush(c); /* sent now if this request is next in line */
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct cp_http_conn *c = p->data;
    struct req *r = c->cur;
    if (!r)
        return fail(c, 400);
    if (len > c->lim.max_body_bytes - r->body_len)
        return fail(c, 413);
    if (!grow(&r->body, &r->body_cap, r->body_len + len + 1, 1))
        return fail(c, 503);
    memcpy(r->body + r->body_len, at, len);
    r->body_len += len;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct cp_http_conn *c = p->data;
    struct req *r = c->cur;
    if (!r)
        return fail(c, 400);
    c->cur = NULL;
    if (!r->body && !grow(&r->body, &r->body_cap, 1, 1))
        return fail(c, 503);
    r->body[r->body_len] = '\0';
    r->pub.body = r->body;
    r->pub.body_len = r->body_len;
    r->want_continue = r->want_continue && r->continue_sent; /* the body came anyway */
    r->dispatched = true;
    c->n_waiting++;
    if (p->upgrade || c->draining)
        r->close = true; /* no protocol switch here; a draining server takes no more */
    if (r->close)
        close_input(c); /* the last request on this connection */
    if (c->ops.on_request)
        c->ops.on_request(c, &r->pub, c->user);
    else
        cp_http_respond_text(&r->pub, 404, "not found");
    if (!can_parse(c))
        http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static const char *status_text(int status)
{
    switch (status) {
    case 408:
        return "request timeout";
    case 413:
        return "request body too large";
    case 417:
        return "expectation failed";
    case 431:
        return "request header fields too large";
    case 503:
        return "service unavailable";
    default:
        return "bad request";
    }
}

/* Answers the partial (or a fresh) request with an error and stops reading. */
static void answer_error(struct cp_http_conn *c, int status)
{
    struct req *r = c->cur;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) {
            c->broken = true;
            close_input(c);
            return;
        }
        queue_push(c, r);
    }
    c->cur = NULL;
    set_answer_text(r, status, status_text(status));
    r->close = true;
    c->errors++;
    close_input(c);
    conn_flush(c);
}

/* Parses [data, data+len); returns how many bytes were consumed. */
static size_t parse_span(struct cp_http_conn *c, const char *data, size_t len)
{
    size_t used = 0;
    c->in_execute = true;
    while (used < len && can_parse(c)) {
        if (HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED)
            http_parser_pause(&c->parser, 0);
        size_t n = http_parser_execute(&c->parser, &settings, data + used, len - used);
        used += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED) {
            if (n == 0 && !c->input_closed && can_parse(c))
                break; /* no progress: never spin */
            continue;
        }
        if (e != HPE_OK) {
            int status = c->err_status ? c->err_status : 400;
            c->err_status = 0;
            c->in_execute = false;
            if (!c->input_closed)
                answer_error(c, status);
            c->in_execute = true;
            used = len;
            break;
        }
        if (c->parser.upgrade) {
            /* No protocol switch here: whatever follows is not ours to parse. */
            close_input(c);
            used = len;
            break;
        }
        if (n == 0)
            break;
    }
    c->in_execute = false;
    if (c->input_closed) {
        used = len;
        discard_input(c);
        if (c->cur && !c->cur->answered) {
            struct req *partial = c->cur;
            drop_queue_from(c, partial);
        }
        if (c->drop_pending) {
            c->drop_pending = false;
            if (c->q_head)
                drop_queue_from(c, c->q_head);
        }
        conn_flush(c);
    }
    return used;
}

/* After the peer's EOF, once every buffered byte is parsed, nothing more can come. */
static void maybe_finish_eof(struct cp_http_conn *c)
{
    if (!c->eof || c->in_execute || c->in_len > c->in_off || c->input_closed)
        return;
    c->input_closed = true;
    if (c->cur && !c->cur->answered)
        drop_queue_from(c, c->cur); /* a request cut off mid-way cannot be answered */
    conn_flush(c);
}

static void conn_process(struct cp_http_conn *c)
{
    if (c->in_execute)
        return;
    if (c->in_len > c->in_off) {
        size_t n = parse_span(c, c->in + c->in_off, c->in_len - c->in_off);
        c->in_off += n;
        if (c->in_off >= c->in_len)
            c->in_off = c->in_len = 0;
    }
    maybe_finish_eof(c);
}

struct cp_http_conn *cp_http_conn_create(const struct cp_http_limits *limits,
                                         const struct cp_http_conn_ops *ops, void *user)
{
    struct cp_http_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (limits)
        c->lim = *limits;
    if (!c->lim.max_header_bytes)
        c->lim.max_header_bytes = DEFAULT_MAX_HEADER;
    if (!c->lim.max_headers)
        c->lim.max_headers = DEFAULT_MAX_HEADERS;
    if (!c->lim.max_body_bytes)
        c->lim.max_body_bytes = DEFAULT_MAX_BODY;
    if (!c->lim.max_pipelined)
        c->lim.max_pipelined = DEFAULT_MAX_PIPELINED;
    if (ops)
        c->ops = *ops;
    c->user = user;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    return c;
}

void cp_http_conn_destroy(struct cp_http_conn *c)
{
    if (!c)
        return;
    c->ops.on_output = NULL;
    if (c->q_head)
        drop_queue_from(c, c->q_head);
    free(c->in);
    free(c->out);
    free(c->peer);
    free(c);
}

void cp_http_conn_set_peer(struct cp_http_conn *c, const char *peer)
{
    free(c->peer);
    c->peer = peer ? strdup(peer) : NULL;
}

void cp_http_conn_feed(struct cp_http_conn *c, const void *data, size_t len)
{
    if (c->input_closed || c->eof || len == 0)
        return;
    const char *p = data;
    if (!c->in_execute && c->in_len == c->in_off) {
        size_t n = parse_span(c, p, len); /* common case: no copy */
        p += n;
        len -= n;
        if (len == 0 || c->input_closed)
            return;
    }
    if (!grow(&c->in, &c->in_cap, c->in_len + len, 1)) {
        answer_error(c, 503);
        return;
    }
    memcpy(c->in + c->in_len, p, len);
    c->in_len += len;
    conn_process(c);
}

void cp_http_conn_feed_eof(struct cp_http_conn *c)
{
    if (c->eof)
        return;
    c->eof = true;
    /* Buffered requests (pipeline limit) still get parsed and answered first. */
    conn_process(c);
}

void cp_http_conn_timeout(struct cp_http_conn *c)
{
    if (c->in_execute)
        return;
    if (c->cur && !c->cur->answered) {
        answer_error(c, 408);
        return;
    }
    close_input(c);
    conn_flush(c);
}

void cp_http_conn_drain(struct cp_http_conn *c)
{
    c->draining = true;
    if (c->in_execute)
        return;
    /* The request being received may finish; nothing after it is parsed. */
    if (!c->cur && !c->input_closed) {
        close_input(c);
        conn_flush(c);
    }
}

char *cp_http_conn_take_output(struct cp_http_conn *c, size_t *len)
{
    if (c->out_len == 0)
        return NULL;
    char *out = c->out;
    *len = c->out_len;
    c->out = NULL;
    c->out_len = c->out_cap = 0;
    return out;
}

size_t cp_http_conn_output_len(const struct cp_http_conn *c)
{
    return c->out_len;
}

bool cp_http_conn_wants_read(const struct cp_http_conn *c)
{
    return can_parse(c) && !c->eof && c->in_len == c->in_off;
}

bool cp_http_conn_done(const struct cp_http_conn *c)
{
    return (c->input_closed || c->broken) && !c->q_head;
}

enum cp_http_phase cp_http_conn_phase(const struct cp_http_conn *c)
{
    if (c->cur)
        return c->cur->headers_done ? CP_HTTP_PHASE_BODY : CP_HTTP_PHASE_HEAD;
    if (c->q_head || c->in_len > c->in_off)
        return CP_HTTP_PHASE_BUSY;
    return CP_HTTP_PHASE_IDLE;
}

uint64_t cp_http_conn_errors(const struct cp_http_conn *c)
{
    return c->errors;
}

/* ---- answering ------------------------------------------------------------ */

static bool header_safe(const char *s)
{
    return s && !strpbrk(s, "\r\n");
}

int cp_http_respond(struct cp_http_req *req, int status, const char *const *headers,
                    const void *body, size_t body_len)
{
    struct req *r = (struct req *)req;
    if (r->answered)
        return CP_ERR_STATE;
    if (!r->conn) {
        req_free(r);
        return 0;
    }
    struct cp_http_conn *c = r->conn;
    int rc = 0;
    size_t hlen = 0;
    bool ok = status >= 100 && status <= 999;
    for (size_t i = 0; ok && headers && headers[i]; i += 2) {
        ok = headers[i + 1] && header_safe(headers[i]) && header_safe(headers[i + 1]) &&
             headers[i][0] && !strpbrk(headers[i], " :");
        if (ok)
            hlen += strlen(headers[i]) + strlen(headers[i + 1]) + 4;
    }
    char *hbuf = ok ? malloc(hlen + 1) : NULL;
    char *bbuf = ok ? malloc(body_len + 1) : NULL;
    if (!ok || !hbuf || !bbuf) {
        free(hbuf);
        free(bbuf);
        if (ok) {
            rc = CP_ERR_NOMEM;
            cp_error("http", "could not answer request: %s", cp_err_str(rc));
        } else {
            cp_error("http", "could not answer request: invalid status or header");
        }
        set_answer_text(r, 500, "internal error");
        conn_flush(c);
        return rc;
    }
    size_t off = 0;
    for (size_t i = 0; headers && headers[i]; i += 2) {
        if (!strcasecmp(headers[i], "Content-Length") ||
            !strcasecmp(headers[i], "Transfer-Encoding"))
            continue;
        if (!strcasecmp(headers[i], "Connection")) {
            if (!strcasecmp(headers[i + 1], "close"))
                r->close = true;
            continue; /* the serializer writes the one Connection header */
        }
        off += (size_t)sprintf(hbuf + off, "%s: %s\r\n", headers[i], headers[i + 1]);
    }
    if (body_len)
        memcpy(bbuf, body, body_len);
    r->status = status;
    r->resp_hdrs = hbuf;
    r->resp_hdrs_len = off;
    r->resp_body = bbuf;
    r->resp_body_len = body_len;
    r->answered = true;
    conn_flush(c);
    return 0;
}

int cp_http_respond_text(struct cp_http_req *req, int status, const char *text)
{
    static const char *const hdrs[] = {"Content-Type", "text/plain; charset=utf-8", NULL};
    size_t n = strlen(text);
    if (n && text[n - 1] == '\n')
        return cp_http_respond(req, status, hdrs, text, n);
    char small[256];
    char *body = n < sizeof small ? small : malloc(n + 1);
    if (!body)
        return cp_http_respond(req, status, hdrs, text, n);
    memcpy(body, text, n);
    body[n] = '\n';
    int rc = cp_http_respond(req, status, hdrs, body, n + 1);
    if (body != small)
        free(body);
    return rc;
}

int cp_http_respond_unavailable(struct cp_http_req *req, unsigned retry_after_s,
                                const char *reason)
{
    char secs[16];
    snprintf(secs, sizeof secs, "%u", retry_after_s);
    const char *const hdrs[] = {"Content-Type", "text/plain; charset=utf-8", "Retry-After", secs,
                                NULL};
    const char *text = reason ? reason : "service unavailable";
    size_t n = strlen(text);
    if (n && text[n - 1] == '\n')
        return cp_http_respond(req, 503, hdrs, text, n);
    char *body = malloc(n + 2);
    if (!body)
        return cp_http_respond(req, 503, hdrs, text, n);
    memcpy(body, text, n);
    body[n] = '\n';
    int rc = cp_http_respond(req, 503, hdrs, body, n + 1);
    free(body);
    return rc;
}

const char *cp_http_req_header(const struct cp_http_req *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

bool cp_http_req_gone(const struct cp_http_req *req)
{
    return ((const struct req *)req)->conn == NULL;
}

/* ======================================================================== */
/* Layer 2: libuv glue.                                                     */
/* ======================================================================== */

#define READ_BUF_SIZE (64 * 1024)
#define LINGER_MS 2000

struct client {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct cp_http_server *srv;
    struct cp_http_conn *conn;
    struct client *prev, *next;
    size_t write_bytes;
    unsigned writes;
    int open_handles;
    bool reading, closing, shutdown_sent, shutdown_done, eof, got_bytes, rejected;
    enum cp_http_phase phase;
    uint64_t accepted_at, phase_start, last_read, last_write, linger_start;
    uv_shutdown_t shutdown_req;
    char peer[64];
};

struct write_req {
    uv_write_t req;
    uv_buf_t buf;
    struct client *client;
};

struct cp_http_server {
    uv_loop_t *loop;
    struct cp_http_config cfg;
    cp_http_handler_fn handler;
    void *handler_arg;
    uv_tcp_t listener;
    uv_timer_t drain_timer;
    int open_handles; /* listener + drain timer */
    bool listening, shutting_down, finishing;
    int port;
    struct client *clients;
    unsigned n_clients;
    void (*on_closed)(void *arg);
    void *closed_arg;
    char readbuf[READ_BUF_SIZE];
};

static void client_sync(struct client *cl);
static void client_close(struct client *cl);

static void server_maybe_finish(struct cp_http_server *srv);

static void on_client_handle_closed(uv_handle_t *h)
{
    struct client *cl = h->data;
    if (--cl->open_handles > 0)
        return;
    struct cp_http_server *srv = cl->srv;
    cp_http_conn_destroy(cl->conn);
    if (cl->prev)
        cl->prev->next = cl->next;
    else
        srv->clients = cl->next;
    if (cl->next)
        cl->next->prev = cl->prev;
    srv->n_clients--;
    free(cl);
    server_maybe_finish(srv);
}

static void client_close(struct client *cl)
{
    if (cl->closing)
        return;
    cl->closing = true;
    uv_read_stop((uv_stream_t *)&cl->tcp);
    uv_close((uv_handle_t *)&cl->timer, on_client_handle_closed);
    uv_close((uv_handle_t *)&cl->tcp, on_client_handle_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct client *cl = h->data;
    /* One buffer per loop is enough: the pure layer copies what it keeps. */
    *buf = uv_buf_init(cl->srv->readbuf, READ_BUF_SIZE);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct client *cl = s->data;
    if (cl->closing)
        return;
    if (nread > 0) {
        cl->last_read = uv_now(cl->srv->loop);
        cl->got_bytes = true;
        if (!cl->shutdown_sent)
            cp_http_conn_feed(cl->conn, buf->base, (size_t)nread);
        client_sync(cl);
    } else if (nread == UV_EOF) {
        cl->eof = true;
        uv_read_stop(s);
        cl->reading = false;
        if (cl->shutdown_sent) {
            client_close(cl);
            return;
        }
        cp_http_conn_feed_eof(cl->conn);
        client_sync(cl);
    } else if (nread < 0) {
        if (nread != UV_ECONNRESET)
            cp_debug(cl->srv->cfg.ident, "could not read from %s: %s", cl->peer,
                     uv_strerror((int)nread));
        client_close(cl);
    }
}

static void on_write(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct client *cl = w->client;
    cl->writes--;
    cl->write_bytes -= w->buf.len;
    free(w->buf.base);
    free(w);
    if (cl->closing)
        return;
    cl->last_write = uv_now(cl->srv->loop);
    if (status < 0) {
        cp_debug(cl->srv->cfg.ident, "could not write to %s: %s", cl->peer, uv_strerror(status));
        client_close(cl);
        return;
    }
    client_sync(cl);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct client *cl = req->data;
    cl->shutdown_done = true;
    if (cl->closing)
        return;
    if (status < 0 || cl->eof)
        client_close(cl);
    /* otherwise linger: read and discard until EOF or the linger timer, so the
     * peer receives our last answer instead of a reset */
}

enum deadline_action { DL_NONE, DL_CLOSE, DL_TIMEOUT };

static uint64_t client_deadline(struct client *cl, enum deadline_action *action)
{
    const struct cp_http_config *cfg = &cl->srv->cfg;
    uint64_t best = UINT64_MAX;
    *action = DL_NONE;
#define CONSIDER(t, a)                                                                             \
    do {                                                                                           \
        uint64_t t_ = (t);                                                                         \
        if (t_ < best) {                                                                           \
            best = t_;                                                                             \
            *action = (a);                                                                         \
        }                                                                                          \
    } while (0)
    if (cl->shutdown_sent) {
        CONSIDER(cl->linger_start + LINGER_MS, DL_CLOSE);
        return best;
    }
    if (cl->writes > 0)
        CONSIDER(cl->last_write + cfg->idle_timeout_ms, DL_CLOSE); /* peer not reading */
    switch (cl->phase) {
    case CP_HTTP_PHASE_HEAD:
        /* Absolute from the first byte: a trickling slowloris gains nothing. */
        CONSIDER(cl->phase_start + cfg->header_timeout_ms, DL_TIMEOUT);
        break;
    case CP_HTTP_PHASE_BODY:
        CONSIDER(cl->last_read + cfg->idle_timeout_ms, DL_TIMEOUT);
        break;
    case CP_HTTP_PHASE_IDLE:
        if (!cl->got_bytes)
            CONSIDER(cl->accepted_at + cfg->header_timeout_ms, DL_CLOSE);
        else
            CONSIDER((cl->last_read > cl->phase_start ? cl->last_read : cl->phase_start) +
                         cfg->idle_timeout_ms,
                     DL_CLOSE);
        break;
    case CP_HTTP_PHASE_BUSY:
        break; /* the handler owns the time; the server's drain deadline bounds it */
    }
#undef CONSIDER
    return best;
}

static void on_client_timer(uv_timer_t *t)
{
    struct client *cl = t->data;
    if (cl->closing)
        return;
    enum deadline_action action;
    uint64_t when = client_deadline(cl, &action);
    if (when > uv_now(cl->srv->loop)) {
        client_sync(cl);
        return;
    }
    if (action == DL_TIMEOUT) {
        cp_debug(cl->srv->cfg.ident, "could not finish request from %s: timed out", cl->peer);
        cp_http_conn_timeout(cl->conn);
        client_sync(cl);
    } else {
        client_close(cl);
    }
}

static void client_set_reading(struct client *cl, bool want)
{
    if (want == cl->reading)
        return;
    if (want) {
        if (uv_read_start((uv_stream_t *)&cl->tcp, on_alloc, on_read) != 0) {
            client_close(cl);
            return;
        }
    } else {
        uv_read_stop((uv_stream_t *)&cl->tcp);
    }
    cl->reading = want;
}

/* Brings the socket in line with the pure connection: write, read, close, timers. */
static void client_sync(struct client *cl)
{
    if (cl->closing)
        return;
    struct cp_http_server *srv = cl->srv;
    uint64_t now = uv_now(srv->loop);
    size_t len;
    char *out;
    while ((out = cp_http_conn_take_output(cl->conn, &len)) != NULL) {
        struct write_req *w = malloc(sizeof *w);
        if (!w) {
            free(out);
            client_close(cl);
            return;
        }
        w->buf = uv_buf_init(out, (unsigned)len);
        w->client = cl;
        if (cl->writes == 0)
            cl->last_write = now;
        int rc = uv_write(&w->req, (uv_stream_t *)&cl->tcp, &w->buf, 1, on_write);
        if (rc != 0) {
            free(out);
            free(w);
            client_close(cl);
            return;
        }
        cl->writes++;
        cl->write_bytes += len;
    }
    if (cp_http_conn_done(cl->conn) && cl->writes == 0 && !cl->shutdown_sent) {
        if (cl->eof) {
            client_close(cl);
            return;
        }
        cl->shutdown_sent = true;
        cl->linger_start = now;
        cl->shutdown_req.data = cl;
        if (uv_shutdown(&cl->shutdown_req, (uv_stream_t *)&cl->tcp, on_shutdown) != 0) {
            client_close(cl);
            return;
        }
    }
    bool want;
    if (cl->shutdown_sent)
        want = !cl->eof;
    else {
        size_t high = srv->cfg.write_high_watermark;
        size_t limit = cl->reading ? high : high / 2; /* hysteresis */
        want = !cl->eof && cp_http_conn_wants_read(cl->conn) && cl->write_bytes <= limit;
    }
    client_set_reading(cl, want);
    if (cl->closing)
        return;
    enum cp_http_phase phase = cp_http_conn_phase(cl->conn);
    if (phase != cl->phase) {
        cl->phase = phase;
        cl->phase_start = now;
    }
    enum deadline_action action;
    uint64_t when = client_deadline(cl, &action);
    if (action == DL_NONE)
        uv_timer_stop(&cl->timer);
    else
        uv_timer_start(&cl->timer, on_client_timer, when > now ? when - now : 0, 0);
}

static void client_on_request(struct cp_http_conn *conn, struct cp_http_req *req, void *user)
{
    struct client *cl = user;
    cl->srv->handler(req, cl->srv->handler_arg);
}

static void client_on_output(struct cp_http_conn *conn, void *user)
{
    client_sync(user);
}

static const struct cp_http_conn_ops client_ops = {client_on_request, client_on_output};

static void format_peer(uv_tcp_t *tcp, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    out[0] = '\0';
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) != 0)
        return;
    char ip[INET6_ADDRSTRLEN] = "";
    int port = 0;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        uv_ip4_name(sin, ip, sizeof ip);
        port = ntohs(sin->sin_port);
        snprintf(out, cap, "%s:%d", ip, port);
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        uv_ip6_name(sin6, ip, sizeof ip);
        port = ntohs(sin6->sin6_port);
        snprintf(out, cap, "[%s]:%d", ip, port);
    }
}

static struct client *client_new(struct cp_http_server *srv)
{
    struct client *cl = calloc(1, sizeof *cl);
    if (!cl)
        return NULL;
    cl->srv = srv;
    cl->conn = cp_http_conn_create(&srv->cfg.limits, &client_ops, cl);
    if (!cl->conn) {
        free(cl);
        return NULL;
    }
    uv_tcp_init(srv->loop, &cl->tcp);
    uv_timer_init(srv->loop, &cl->timer);
    cl->tcp.data = cl;
    cl->timer.data = cl;
    cl->open_handles = 2;
    cl->next = srv->clients;
    if (srv->clients)
        srv->clients->prev = cl;
    srv->clients = cl;
    srv->n_clients++;
    cl->accepted_at = cl->phase_start = uv_now(srv->loop);
    cl->phase = CP_HTTP_PHASE_IDLE;
    return cl;
}

static void client_start(struct cp_http_server *srv, struct client *cl)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
                               "Content-Length: 0\r\nConnection: close\r\n\r\n";
    uv_tcp_nodelay(&cl->tcp, 1);
    format_peer(&cl->tcp, cl->peer, sizeof cl->peer);
    cp_http_conn_set_peer(cl->conn, cl->peer);
    if (cl->rejected) {
        uv_buf_t b = uv_buf_init((char *)busy, sizeof busy - 1);
        (void)uv_try_write((uv_stream_t *)&cl->tcp, &b, 1); /* best effort */
        client_close(cl);
        return;
    }
    if (srv->shutting_down)
        cp_http_conn_drain(cl->conn);
    client_sync(cl);
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct cp_http_server *srv = listener->data;
    if (status < 0) {
        cp_warn(srv->cfg.ident, "could not accept connection: %s", uv_strerror(status));
        return;
    }
    bool reject = srv->n_clients >= srv->cfg.max_connections;
    struct client *cl = client_new(srv);
    if (!cl) {
        cp_error(srv->cfg.ident, "could not accept connection: %s", cp_err_str(CP_ERR_NOMEM));
        return;
    }
    if (uv_accept(listener, (uv_stream_t *)&cl->tcp) != 0) {
        client_close(cl);
        return;
    }
    if (reject) {
        static struct cp_log_limit lim = CP_LOG_LIMIT_INIT(5, 10000);
        cp_log_limited(&lim, CP_LOG_WARN, srv->cfg.ident,
                       "could not accept connection: limit of %u reached",
                       srv->cfg.max_connections);
        cl->rejected = true;
    }
    client_start(srv, cl);
}

struct cp_http_server *cp_http_server_create(uv_loop_t *loop, const struct cp_http_config *cfg,
                                             cp_http_handler_fn handler, void *handler_arg)
{
    if (!loop || !handler)
        return NULL;
    struct cp_http_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return NULL;
    if (cfg)
        srv->cfg = *cfg;
    if (!srv->cfg.max_connections)
        srv->cfg.max_connections = 1024;
    if (!srv->cfg.header_timeout_ms)
        srv->cfg.header_timeout_ms = 10000;
    if (!srv->cfg.idle_timeout_ms)
        srv->cfg.idle_timeout_ms = 60000;
    if (!srv->cfg.write_high_watermark)
        srv->cfg.write_high_watermark = 1024 * 1024;
    if (!srv->cfg.ident)
        srv->cfg.ident = "http";
    srv->loop = loop;
    srv->handler = handler;
    srv->handler_arg = handler_arg;
    srv->port = -1;
    uv_tcp_init(loop, &srv->listener);
    uv_timer_init(loop, &srv->drain_timer);
    srv->listener.data = srv;
    srv->drain_timer.data = srv;
    srv->open_handles = 2;
    return srv;
}

int cp_http_server_listen(struct cp_http_server *srv, const char *host, int port)
{
    struct sockaddr_storage ss;
    const char *h = host ? host : "0.0.0.0";
    if (port < 0 || port > 65535 || srv->listening || srv->shutting_down)
        return CP_ERR_INVAL;
    if (uv_ip4_addr(h, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(h, port, (struct sockaddr_in6 *)&ss) != 0) {
        cp_error(srv->cfg.ident, "could not listen on %s: not a numeric address", h);
        return CP_ERR_INVAL;
    }
    int rc;
    if (srv->cfg.reuseport) {
        /* libuv 1.44 cannot set SO_REUSEPORT itself: create the socket here. */
        int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
            rc = -errno;
            if (fd >= 0)
                close(fd);
            cp_error(srv->cfg.ident, "could not listen on %s:%d: %s", h, port, strerror(-rc));
            return CP_ERR_IO;
        }
        rc = uv_tcp_open(&srv->listener, fd);
        if (rc != 0) {
            close(fd);
            cp_error(srv->cfg.ident, "could not listen on %s:%d: %s", h, port, uv_strerror(rc));
            return CP_ERR_IO;
        }
    }
    rc = uv_tcp_bind(&srv->listener, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, 511, on_connection);
    if (rc != 0) {
        cp_error(srv->cfg.ident, "could not listen on %s:%d: %s", h, port, uv_strerror(rc));
        return rc == UV_EADDRINUSE || rc == UV_EACCES ? CP_ERR_CONN : CP_ERR_IO;
    }
    int len = sizeof ss;
    if (uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len) == 0)
        srv->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
    srv->listening = true;
    return 0;
}

int cp_http_server_port(const struct cp_http_server *srv)
{
    return srv->port;
}

unsigned cp_http_server_connections(const struct cp_http_server *srv)
{
    return srv->n_clients;
}

int cp_http_server_adopt_fd(struct cp_http_server *srv, uv_os_sock_t fd)
{
    bool reject = srv->n_clients >= srv->cfg.max_connections;
    struct client *cl = client_new(srv);
    if (!cl) {
        close(fd);
        return CP_ERR_NOMEM;
    }
    int rc = uv_tcp_open(&cl->tcp, fd);
    if (rc != 0) {
        close(fd);
        client_close(cl);
        return CP_ERR_IO;
    }
    cl->rejected = reject;
    client_start(srv, cl);
    return reject ? CP_ERR_LIMIT : 0;
}

static void on_server_handle_closed(uv_handle_t *h)
{
    struct cp_http_server *srv = h->data;
    if (--srv->open_handles > 0)
        return;
    if (srv->on_closed)
        srv->on_closed(srv->closed_arg);
    free(srv);
}

static void server_maybe_finish(struct cp_http_server *srv)
{
    if (!srv->shutting_down || srv->finishing || srv->n_clients > 0)
        return;
    srv->finishing = true;
    uv_close((uv_handle_t *)&srv->drain_timer, on_server_handle_closed);
}

static void on_drain_timeout(uv_timer_t *t)
{
    struct cp_http_server *srv = t->data;
    struct client *cl = srv->clients;
    if (cl)
        cp_warn(srv->cfg.ident, "could not drain %u connections in time: closing them",
                srv->n_clients);
    for (; cl; cl = cl->next)
        client_close(cl);
}

void cp_http_server_shutdown(struct cp_http_server *srv, unsigned drain_timeout_ms,
                             void (*on_closed)(void *arg), void *arg)
{
    if (srv->shutting_down)
        return;
    srv->shutting_down = true;
    srv->on_closed = on_closed;
    srv->closed_arg = arg;
    uv_close((uv_handle_t *)&srv->listener, on_server_handle_closed);
    srv->listening = false;
    struct client *cl = srv->clients, *next;
    for (; cl; cl = next) {
        next = cl->next; /* client_sync never frees synchronously, but be safe */
        if (cl->closing)
            continue;
        cp_http_conn_drain(cl->conn);
        client_sync(cl);
    }
    uv_timer_start(&srv->drain_timer, on_drain_timeout, drain_timeout_ms, 0);
    server_maybe_finish(srv);
}
