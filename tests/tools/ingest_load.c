/* ingest_load.c - load generator for the collector: numbered events over TCP and HTTP, idle and slow clients. */
#include <errno.h>
#include <http_parser.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <uv.h>

#include "cp_time.h"

/*
 * Three modes, one per kind of client a collector meets:
 *
 *   send  numbered callpipe-json events over -t TCP connections and -h HTTP
 *         keep-alive connections.  Event number n (FIRST .. FIRST+TOTAL-1) has
 *         event_id "n<n>"; sender s sends n = FIRST + s + i*S for its i-th event
 *         (S senders), and groups its events PER_CALL at a time into one call
 *         ("L<FIRST>-<s>-<j>") in lifecycle order with ts growing with n, so a
 *         verifier can check per-call order from the ids alone.  HTTP bodies are
 *         JSON arrays; a 503 is retried after its Retry-After, a request whose
 *         connection broke is re-sent on a new connection.  TCP writes wait for
 *         their completion before the next chunk, so collector backpressure
 *         stalls the sender instead of growing its memory.
 *   idle  open K TCP connections and hold them until SIGTERM/SIGINT.
 *   slow  send one line a byte at a time (a slowloris), optionally stopping
 *         mid-line and waiting for the collector to cut the connection off.
 *
 * The last stdout line is a summary ending in OK (exit 0) or FAIL (exit 1).
 */

static const char usage[] =
    "usage: ingest_load send [-a HOST] [-p TCP_PORT -t N] [-P HTTP_PORT -h M] -n TOTAL [-f FIRST]\n"
    "                        [-b BATCH] [-k PER_CALL] [-r RATE] [-e TOKEN_ENV] [-m COUNT:FILE]\n"
    "                        [-T SECONDS]\n"
    "       ingest_load idle [-a HOST] -p PORT -k K [-m FILE] [-T SECONDS]\n"
    "       ingest_load slow [-a HOST] -p PORT [-d MS] [-s STOP_AFTER] [-T SECONDS] LINE\n"
    "  send: TOTAL numbered events (ids n<FIRST>..) over N TCP and M HTTP connections;\n"
    "        BATCH events per HTTP body (default 100), PER_CALL events per call (2..10,\n"
    "        default 5), RATE events/s at most (0 = unlimited), bearer token from the\n"
    "        environment variable TOKEN_ENV (default ING_TOKEN); FILE is created once\n"
    "        COUNT events were written (TCP) or confirmed by a 200 (HTTP).\n"
    "  idle: open K connections, create FILE when all are open, hold them until SIGTERM;\n"
    "        fails if the collector closed any.\n"
    "  slow: send LINE and a LF one byte every MS ms (default 100); with -s, stop after\n"
    "        STOP_AFTER bytes and wait until the collector closes the connection.\n"
    "  -T bounds the run (default 300 s); the last stdout line is the summary.\n";

static uv_loop_t *loop;
static int64_t start_us;
static struct sockaddr_in peer_tcp, peer_http;

static double elapsed_s(void)
{
    return (double)(cp_time_mono_us() - start_us) / 1e6;
}

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static void touch(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* ======================= send ======================= */

struct sender;

static struct {
    const char *host;
    long tcp_port, http_port;
    long n_tcp, n_http;
    long total, first;
    long batch, per_call, rate;
    const char *token;
    long mark_at;
    const char *mark_file;
    bool marked;
    /* counters */
    long tcp_written;
    long http_confirmed;
    long http_503;
    long http_resent;
    long reconnects;
    long errors;
    long finished;
    /* rate limit: a token bucket refilled by a 10 ms tick */
    double tokens;
    uv_timer_t tick;
    long rr; /* where the next tick starts handing out tokens */
    struct sender **senders;
    long n_senders;
} g;

enum sstate { S_CONNECTING, S_READY, S_WRITING, S_WAITING, S_RETRY, S_CLOSING, S_DONE };

struct sender {
    long idx;
    bool http;
    enum sstate state;
    uv_tcp_t tcp;
    bool tcp_open; /* the handle is initialised and not closed */
    uv_connect_t connect;
    uv_write_t write;
    uv_shutdown_t shutdown;
    uv_timer_t timer;
    long count;  /* events this sender owns */
    long next_i; /* next of them to format */
    bool wants_tokens;
    bool write_busy;  /* s->write is in use until on_write */
    bool pump_later;  /* pump once the write completes */
    long reconnect_ms;
    char *buf;
    size_t len, cap;
    /* HTTP: the request in flight (re-sent until answered with 200 or a hard error) */
    bool pending;
    long pending_n;
    http_parser parser;
    bool hdr_retry_after;
    long retry_after;
    char body[256];
    size_t body_len;
    bool response_done;
    bool shutdown_sent;
};

static const char *const lifecycle[] = {"call_start",   "ringing", "queue_enter",
                                        "agent_offer",  "agent_connect", "hold",
                                        "unhold",       "agent_complete", "wrapup_end"};

static void buf_need(struct sender *s, size_t more)
{
    if (s->len + more <= s->cap)
        return;
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < s->len + more)
        cap *= 2;
    char *p = realloc(s->buf, cap);
    if (!p) {
        fprintf(stderr, "ingest_load: out of memory\n");
        exit(1);
    }
    s->buf = p;
    s->cap = cap;
}

/* Appends this sender's i-th event as one JSON object. */
static void append_event(struct sender *s, long i)
{
    long n = g.first + s->idx + i * g.n_senders;
    long call = i / g.per_call;
    long pos = i % g.per_call;
    const char *kind = pos == g.per_call - 1 ? "call_end" : lifecycle[pos];
    buf_need(s, 512);
    s->len += (size_t)snprintf(s->buf + s->len, s->cap - s->len,
                               "{\"event_id\":\"n%ld\",\"call\":\"L%ld-%ld-%ld\",\"kind\":\"%s\","
                               "\"ts\":%lld,\"dir\":\"inbound\",\"from\":\"+1555%07ld\","
                               "\"to\":\"+15550100\",\"queue\":\"q%ld\",\"agent\":\"a%ld\"}",
                               n, g.first, s->idx, call, kind, 1700000000000000LL + n * 1000LL,
                               n % 10000000, call % 8, s->idx % 50);
}

static void check_mark(void)
{
    if (g.mark_file && !g.marked && g.tcp_written + g.http_confirmed >= g.mark_at) {
        g.marked = true;
        char text[64];
        snprintf(text, sizeof text, "%ld\n", g.tcp_written + g.http_confirmed);
        touch(g.mark_file, text);
    }
}

/* How many of `want` events the rate limit allows now (0 = wait for the tick). */
static long take_tokens(struct sender *s, long want)
{
    if (g.rate <= 0)
        return want;
    if (g.tokens < 1) {
        s->wants_tokens = true;
        return 0;
    }
    long n = (long)g.tokens < want ? (long)g.tokens : want;
    g.tokens -= (double)n;
    return n;
}

static void sender_pump(struct sender *s);
static void sender_connect(struct sender *s);

static void sender_finish(struct sender *s)
{
    if (s->state == S_DONE)
        return;
    s->state = S_DONE;
    g.finished++;
    if (g.finished == g.n_senders) {
        uv_timer_stop(&g.tick);
        uv_stop(loop);
    }
}

static void reconnect_timer(uv_timer_t *t)
{
    sender_connect(t->data);
}

static void on_closed(uv_handle_t *h)
{
    struct sender *s = h->data;
    s->tcp_open = false;
    s->write_busy = false;
    s->pump_later = false;
    if (s->state == S_CLOSING) {
        sender_finish(s);
    } else if (s->state == S_RETRY) {
        /* HTTP only: a new connection re-sends the unanswered request. */
        g.reconnects++;
        long ms = s->reconnect_ms > 0 ? s->reconnect_ms : 100;
        s->reconnect_ms = 0;
        uv_timer_start(&s->timer, reconnect_timer, (uint64_t)ms, 0);
    }
}

static void sender_close(struct sender *s, enum sstate next)
{
    s->state = next;
    if (s->tcp_open && !uv_is_closing((uv_handle_t *)&s->tcp))
        uv_close((uv_handle_t *)&s->tcp, on_closed);
}

/* The connection broke: HTTP reconnects and re-sends; a TCP sender has lost bytes. */
static void broken(struct sender *s, const char *what, int err)
{
    if (!s->http) {
        fprintf(stderr, "ingest_load: tcp sender %ld: %s: %s\n", s->idx, what, uv_strerror(err));
        g.errors++;
    }
    sender_close(s, s->http ? S_RETRY : S_CLOSING);
}

/* ---- HTTP responses ---- */

static int on_hdr_field(http_parser *p, const char *at, size_t len)
{
    struct sender *s = p->data;
    s->hdr_retry_after = len == 11 && strncasecmp(at, "Retry-After", 11) == 0;
    return 0;
}

static int on_hdr_value(http_parser *p, const char *at, size_t len)
{
    struct sender *s = p->data;
    if (s->hdr_retry_after) {
        char v[16];
        size_t n = len < sizeof v - 1 ? len : sizeof v - 1;
        memcpy(v, at, n);
        v[n] = 0;
        s->retry_after = atol(v);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct sender *s = p->data;
    size_t room = sizeof s->body - 1 - s->body_len;
    size_t n = len < room ? len : room;
    memcpy(s->body + s->body_len, at, n);
    s->body_len += n;
    s->body[s->body_len] = 0;
    return 0;
}

static int on_complete(http_parser *p)
{
    struct sender *s = p->data;
    s->response_done = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings resp_settings = {
    .on_header_field = on_hdr_field,
    .on_header_value = on_hdr_value,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

static void response_begin(struct sender *s)
{
    http_parser_init(&s->parser, HTTP_RESPONSE);
    s->parser.data = s;
    s->retry_after = 1;
    s->body_len = 0;
    s->body[0] = 0;
    s->response_done = false;
}

static void retry_timer(uv_timer_t *t)
{
    struct sender *s = t->data;
    g.http_resent++;
    s->state = S_READY;
    sender_pump(s);
}

/* One whole response to the pending request. */
static void response_handle(struct sender *s)
{
    int status = s->parser.status_code;
    bool keep = http_should_keep_alive(&s->parser);
    if (status == 200) {
        long accepted = -1;
        const char *a = strstr(s->body, "\"accepted\":");
        if (a)
            accepted = atol(a + 11);
        if (accepted != s->pending_n) {
            fprintf(stderr, "ingest_load: http sender %ld: 200 for %ld events said: %s\n", s->idx,
                    s->pending_n, s->body);
            g.errors++;
        } else {
            g.http_confirmed += s->pending_n;
        }
        s->pending = false;
        check_mark();
        s->state = S_READY;
    } else if (status == 503) {
        g.http_503++;
        s->state = S_WAITING;
        long ms = (s->retry_after > 0 ? s->retry_after : 1) * 1000;
        if (keep) {
            uv_timer_start(&s->timer, retry_timer, (uint64_t)ms, 0);
        } else {
            g.http_resent++;
            s->reconnect_ms = ms;
        }
    } else {
        fprintf(stderr, "ingest_load: http sender %ld: answer %d: %s\n", s->idx, status, s->body);
        g.errors++;
        s->pending = false;
        s->state = S_READY;
    }
    response_begin(s);
    if (!keep) {
        sender_close(s, S_RETRY); /* reconnects for what is left */
        return;
    }
    if (s->state == S_READY)
        sender_pump(s);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    static char rbuf[65536];
    b->base = rbuf;
    b->len = sizeof rbuf;
}

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    struct sender *s = st->data;
    if (nread < 0) {
        if (s->state == S_CLOSING || (s->shutdown_sent && nread == UV_EOF)) {
            sender_close(s, S_CLOSING);
            return;
        }
        if (s->http && !s->pending && s->next_i == s->count) {
            sender_close(s, S_CLOSING);
            return;
        }
        broken(s, "connection closed by the collector", (int)nread);
        return;
    }
    if (!s->http || nread == 0)
        return; /* the collector never writes on a TCP source */
    size_t off = 0;
    while (off < (size_t)nread && s->tcp_open && !uv_is_closing((uv_handle_t *)&s->tcp)) {
        size_t used = http_parser_execute(&s->parser, &resp_settings, b->base + off,
                                          (size_t)nread - off);
        off += used;
        if (s->response_done) {
            http_parser_pause(&s->parser, 0);
            response_handle(s);
            continue;
        }
        if (HTTP_PARSER_ERRNO(&s->parser) != HPE_OK) {
            fprintf(stderr, "ingest_load: http sender %ld: bad response: %s\n", s->idx,
                    http_errno_description(HTTP_PARSER_ERRNO(&s->parser)));
            g.errors++;
            sender_close(s, S_RETRY);
            return;
        }
        if (used == 0)
            break;
    }
}

/* ---- writing ---- */

static void on_shutdown(uv_shutdown_t *req, int status)
{
    /* The collector closes its side once it has read everything: read_cb sees EOF. */
}

static void on_write(uv_write_t *w, int status)
{
    struct sender *s = w->data;
    s->write_busy = false;
    if (status < 0) {
        if (status != UV_ECANCELED)
            broken(s, "write", status);
        return;
    }
    if (s->http) {
        /* The answer may have been read before this callback ran. */
        if (s->pump_later) {
            s->pump_later = false;
            sender_pump(s);
        }
        return;
    }
    g.tcp_written += s->pending_n;
    s->pending_n = 0;
    check_mark();
    s->state = S_READY;
    sender_pump(s);
}

static void write_buf(struct sender *s)
{
    uv_buf_t b = uv_buf_init(s->buf, (unsigned)s->len);
    s->write.data = s;
    s->state = s->http ? S_WAITING : S_WRITING; /* HTTP: until the answer */
    s->write_busy = true;
    int rc = uv_write(&s->write, (uv_stream_t *)&s->tcp, &b, 1, on_write);
    if (rc) {
        s->write_busy = false;
        broken(s, "write", rc);
    }
}

static void http_build(struct sender *s, long n)
{
    /* Body first, after room for the head; then the head is moved in front. */
    char head[512];
    s->len = 0;
    buf_need(s, 1);
    s->buf[s->len++] = '[';
    for (long k = 0; k < n; k++) {
        if (k)
            s->buf[s->len++] = ',';
        append_event(s, s->next_i + k);
        buf_need(s, 2);
    }
    s->buf[s->len++] = ']';
    int hl = snprintf(head, sizeof head,
                      "POST /events HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                      g.host, g.token, s->len);
    buf_need(s, (size_t)hl);
    memmove(s->buf + hl, s->buf, s->len);
    memcpy(s->buf, head, (size_t)hl);
    s->len += (size_t)hl;
    s->next_i += n;
    s->pending_n = n;
    s->pending = true;
}

static void sender_pump(struct sender *s)
{
    if (s->state != S_READY)
        return;
    if (s->write_busy) {
        s->pump_later = true;
        return;
    }
    if (s->http) {
        if (!s->pending) {
            if (s->next_i == s->count) {
                sender_close(s, S_CLOSING);
                return;
            }
            long want = g.batch < s->count - s->next_i ? g.batch : s->count - s->next_i;
            /* A whole batch at once: the limiter lends what the bucket lacks. */
            if (g.rate > 0 && g.tokens < 1) {
                s->wants_tokens = true;
                return;
            }
            if (g.rate > 0)
                g.tokens -= (double)want;
            http_build(s, want);
        }
        write_buf(s);
        return;
    }
    if (s->next_i == s->count) {
        s->state = S_CLOSING;
        s->shutdown_sent = true;
        s->shutdown.data = s;
        if (uv_shutdown(&s->shutdown, (uv_stream_t *)&s->tcp, on_shutdown) != 0)
            sender_close(s, S_CLOSING);
        return;
    }
    long want = s->count - s->next_i < 64 ? s->count - s->next_i : 64;
    long n = take_tokens(s, want);
    if (n == 0)
        return;
    s->len = 0;
    for (long k = 0; k < n; k++) {
        append_event(s, s->next_i + k);
        buf_need(s, 1);
        s->buf[s->len++] = '\n';
    }
    s->next_i += n;
    s->pending_n = n;
    write_buf(s);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct sender *s = req->data;
    if (status < 0) {
        fprintf(stderr, "ingest_load: %s sender %ld: could not connect: %s\n",
                s->http ? "http" : "tcp", s->idx, uv_strerror(status));
        if (!s->http)
            g.errors++;
        sender_close(s, s->http ? S_RETRY : S_CLOSING);
        return;
    }
    uv_read_start((uv_stream_t *)&s->tcp, alloc_cb, read_cb);
    if (s->http)
        response_begin(s);
    s->state = S_READY;
    sender_pump(s);
}

static void sender_connect(struct sender *s)
{
    uv_tcp_init(loop, &s->tcp);
    s->tcp.data = s;
    s->tcp_open = true;
    s->shutdown_sent = false;
    s->state = S_CONNECTING;
    s->connect.data = s;
    const struct sockaddr *addr =
        (const struct sockaddr *)(s->http ? &peer_http : &peer_tcp);
    int rc = uv_tcp_connect(&s->connect, &s->tcp, addr, on_connect);
    if (rc) {
        fprintf(stderr, "ingest_load: could not connect: %s\n", uv_strerror(rc));
        if (!s->http)
            g.errors++;
        sender_close(s, s->http ? S_RETRY : S_CLOSING);
    }
}

static void tick_cb(uv_timer_t *t)
{
    if (g.rate > 0) {
        g.tokens += (double)g.rate / 100.0;
        double cap = (double)g.rate / 10.0 + (double)g.batch;
        if (g.tokens > cap)
            g.tokens = cap;
    }
    /* Round robin: the next tick starts at the first sender this one could not serve. */
    long from = g.rr;
    for (long k = 0; k < g.n_senders; k++) {
        long i = (from + k) % g.n_senders;
        struct sender *s = g.senders[i];
        if (!s->wants_tokens)
            continue;
        if (g.rate > 0 && g.tokens < 1) {
            g.rr = i;
            break;
        }
        s->wants_tokens = false;
        sender_pump(s);
    }
}

static void deadline_cb(uv_timer_t *t)
{
    fprintf(stderr, "ingest_load: deadline reached\n");
    g.errors++;
    uv_stop(loop);
}

static int resolve(const char *host, long port, struct sockaddr_in *out)
{
    if (uv_ip4_addr(host, (int)port, out) != 0) {
        fprintf(stderr, "ingest_load: bad IPv4 address %s\n", host);
        return -1;
    }
    return 0;
}

static int cmd_send(int argc, char **argv)
{
    long timeout_s = 300;
    const char *token_env = "ING_TOKEN";
    g.host = "127.0.0.1";
    g.batch = 100;
    g.per_call = 5;
    g.total = -1;
    int o;
    while ((o = getopt(argc, argv, "a:p:P:t:h:n:f:b:k:r:e:m:T:")) != -1) {
        int bad = 0;
        switch (o) {
        case 'a': g.host = optarg; break;
        case 'p': bad = parse_long(optarg, 1, 65535, &g.tcp_port); break;
        case 'P': bad = parse_long(optarg, 1, 65535, &g.http_port); break;
        case 't': bad = parse_long(optarg, 0, 100000, &g.n_tcp); break;
        case 'h': bad = parse_long(optarg, 0, 100000, &g.n_http); break;
        case 'n': bad = parse_long(optarg, 1, 1000000000, &g.total); break;
        case 'f': bad = parse_long(optarg, 0, 1000000000, &g.first); break;
        case 'b': bad = parse_long(optarg, 1, 100000, &g.batch); break;
        case 'k': bad = parse_long(optarg, 2, 10, &g.per_call); break;
        case 'r': bad = parse_long(optarg, 0, 100000000, &g.rate); break;
        case 'e': token_env = optarg; break;
        case 'm': {
            char *colon = strchr(optarg, ':');
            if (!colon)
                bad = 1;
            else {
                *colon = 0;
                bad = parse_long(optarg, 0, 1000000000, &g.mark_at);
                g.mark_file = colon + 1;
            }
            break;
        }
        case 'T': bad = parse_long(optarg, 1, 86400, &timeout_s); break;
        default: bad = 1;
        }
        if (bad) {
            fputs(usage, stderr);
            return 2;
        }
    }
    g.n_senders = g.n_tcp + g.n_http;
    if (g.total < 0 || g.n_senders == 0 || (g.n_tcp && !g.tcp_port) ||
        (g.n_http && !g.http_port)) {
        fputs(usage, stderr);
        return 2;
    }
    g.token = getenv(token_env);
    if (g.n_http && !g.token) {
        fprintf(stderr, "ingest_load: no bearer token in $%s\n", token_env);
        return 2;
    }
    if ((g.n_tcp && resolve(g.host, g.tcp_port, &peer_tcp)) ||
        (g.n_http && resolve(g.host, g.http_port, &peer_http)))
        return 2;
    loop = uv_default_loop();
    start_us = cp_time_mono_us();
    g.senders = calloc((size_t)g.n_senders, sizeof *g.senders);
    long http_events = 0;
    for (long i = 0; i < g.n_senders; i++) {
        struct sender *s = calloc(1, sizeof *s);
        if (!s || !g.senders)
            return 1;
        s->idx = i;
        s->http = i >= g.n_tcp;
        s->count = g.total > i ? (g.total - i + g.n_senders - 1) / g.n_senders : 0;
        if (s->http)
            http_events += s->count;
        uv_timer_init(loop, &s->timer);
        s->timer.data = s;
        g.senders[i] = s;
    }
    uv_timer_init(loop, &g.tick);
    uv_timer_start(&g.tick, tick_cb, 10, 10);
    uv_timer_t deadline;
    uv_timer_init(loop, &deadline);
    uv_timer_start(&deadline, deadline_cb, (uint64_t)timeout_s * 1000, 0);
    uv_unref((uv_handle_t *)&deadline);
    for (long i = 0; i < g.n_senders; i++) {
        if (g.senders[i]->count == 0)
            sender_finish(g.senders[i]);
        else
            sender_connect(g.senders[i]);
    }
    if (g.finished < g.n_senders)
        uv_run(loop, UV_RUN_DEFAULT);
    double secs = elapsed_s();
    bool ok = g.errors == 0 && g.tcp_written == g.total - http_events &&
              g.http_confirmed == http_events;
    printf("ingest_load: events=%ld tcp_written=%ld http_confirmed=%ld/%ld http_503=%ld "
           "http_resent=%ld reconnects=%ld errors=%ld seconds=%.1f rate=%.0f/s %s\n",
           g.total, g.tcp_written, g.http_confirmed, http_events, g.http_503, g.http_resent,
           g.reconnects, g.errors, secs, secs > 0 ? (double)g.total / secs : 0.0,
           ok ? "OK" : "FAIL");
    fflush(stdout);
    /* Exit without tearing the loop down: handles may still be open after a deadline. */
    _exit(ok ? 0 : 1);
}

/* ======================= idle ======================= */

struct idle_conn {
    uv_tcp_t tcp;
    uv_connect_t connect;
    int attempts;
    bool open;
};

static struct {
    long want, connected, in_flight, next, closed_by_peer, failed;
    struct idle_conn *conns;
    const char *mark_file;
    bool holding;
    uv_signal_t sigterm, sigint;
} idl;

static void idle_start_more(void);

static void idle_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    struct idle_conn *c = st->data;
    if (nread < 0 && c->open) {
        c->open = false;
        idl.closed_by_peer++;
        uv_close((uv_handle_t *)&c->tcp, NULL);
    }
}

static void idle_retry_closed(uv_handle_t *h);

static void idle_on_connect(uv_connect_t *req, int status)
{
    struct idle_conn *c = req->data;
    idl.in_flight--;
    if (status < 0) {
        if (++c->attempts < 5) {
            uv_close((uv_handle_t *)&c->tcp, idle_retry_closed);
            return;
        }
        fprintf(stderr, "ingest_load: idle connection: %s\n", uv_strerror(status));
        idl.failed++;
        uv_close((uv_handle_t *)&c->tcp, NULL);
    } else {
        c->open = true;
        idl.connected++;
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, idle_read);
    }
    idle_start_more();
}

static void idle_connect_one(struct idle_conn *c)
{
    uv_tcp_init(loop, &c->tcp);
    c->tcp.data = c;
    c->connect.data = c;
    idl.in_flight++;
    int rc = uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&peer_tcp,
                            idle_on_connect);
    if (rc) {
        idl.in_flight--;
        fprintf(stderr, "ingest_load: idle connect: %s\n", uv_strerror(rc));
        idl.failed++;
        uv_close((uv_handle_t *)&c->tcp, NULL);
    }
}

static void idle_retry_closed(uv_handle_t *h)
{
    idle_connect_one(h->data);
}

static void idle_start_more(void)
{
    /* At most 256 handshakes at once: the listen backlog stays far from full. */
    while (idl.next < idl.want && idl.in_flight < 256)
        idle_connect_one(&idl.conns[idl.next++]);
    if (!idl.holding && idl.in_flight == 0 && idl.next == idl.want) {
        idl.holding = true;
        printf("idle: %ld connections open after %.1f s (%ld failed)\n", idl.connected,
               elapsed_s(), idl.failed);
        fflush(stdout);
        if (idl.mark_file) {
            char text[64];
            snprintf(text, sizeof text, "%ld\n", idl.connected);
            touch(idl.mark_file, text);
        }
    }
}

static void idle_signal(uv_signal_t *sg, int signum)
{
    uv_stop(loop);
}

static void stop_timer(uv_timer_t *t)
{
    uv_stop(loop);
}

static int cmd_idle(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    long port = 0, timeout_s = 3600;
    int o;
    while ((o = getopt(argc, argv, "a:p:k:m:T:")) != -1) {
        int bad = 0;
        switch (o) {
        case 'a': host = optarg; break;
        case 'p': bad = parse_long(optarg, 1, 65535, &port); break;
        case 'k': bad = parse_long(optarg, 1, 1000000, &idl.want); break;
        case 'm': idl.mark_file = optarg; break;
        case 'T': bad = parse_long(optarg, 1, 86400, &timeout_s); break;
        default: bad = 1;
        }
        if (bad) {
            fputs(usage, stderr);
            return 2;
        }
    }
    if (!port || !idl.want || resolve(host, port, &peer_tcp)) {
        fputs(usage, stderr);
        return 2;
    }
    loop = uv_default_loop();
    start_us = cp_time_mono_us();
    idl.conns = calloc((size_t)idl.want, sizeof *idl.conns);
    if (!idl.conns)
        return 1;
    uv_signal_init(loop, &idl.sigterm);
    uv_signal_init(loop, &idl.sigint);
    uv_signal_start(&idl.sigterm, idle_signal, SIGTERM);
    uv_signal_start(&idl.sigint, idle_signal, SIGINT);
    uv_timer_t deadline;
    uv_timer_init(loop, &deadline);
    uv_timer_start(&deadline, stop_timer, (uint64_t)timeout_s * 1000, 0);
    idle_start_more();
    uv_run(loop, UV_RUN_DEFAULT);
    long open = 0;
    for (long i = 0; i < idl.want; i++)
        open += idl.conns[i].open;
    bool ok = idl.connected == idl.want && idl.closed_by_peer == 0 && idl.failed == 0;
    printf("idle: wanted=%ld connected=%ld still_open=%ld closed_by_peer=%ld failed=%ld %s\n",
           idl.want, idl.connected, open, idl.closed_by_peer, idl.failed, ok ? "OK" : "FAIL");
    fflush(stdout);
    _exit(ok ? 0 : 1);
}

/* ======================= slow ======================= */

static struct {
    const char *line;
    size_t len, sent, stop_after;
    long delay_ms;
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    uv_shutdown_t shutdown;
    uv_timer_t timer;
    char byte;
    bool done_sending, closed, ok;
    int64_t last_byte_us;
} sl;

static void slow_send_next(uv_timer_t *t);

static void slow_on_write(uv_write_t *w, int status)
{
    if (status < 0) {
        fprintf(stderr, "ingest_load: slow write: %s\n", uv_strerror(status));
        uv_stop(loop);
        return;
    }
    sl.sent++;
    sl.last_byte_us = cp_time_mono_us();
    if (sl.stop_after && sl.sent == sl.stop_after) {
        sl.done_sending = true; /* now wait for the collector to give up on us */
        return;
    }
    if (sl.sent == sl.len) {
        sl.done_sending = true;
        uv_shutdown(&sl.shutdown, (uv_stream_t *)&sl.tcp, NULL);
        return;
    }
    uv_timer_start(&sl.timer, slow_send_next, (uint64_t)sl.delay_ms, 0);
}

static void slow_send_next(uv_timer_t *t)
{
    sl.byte = sl.line[sl.sent];
    uv_buf_t b = uv_buf_init(&sl.byte, 1);
    if (uv_write(&sl.write, (uv_stream_t *)&sl.tcp, &b, 1, slow_on_write) != 0)
        uv_stop(loop);
}

static void slow_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    if (nread >= 0)
        return;
    sl.closed = true;
    /* Cut off mid-line is what -s waits for; a whole line ends with our shutdown. */
    sl.ok = sl.done_sending;
    uv_stop(loop);
}

static void slow_on_connect(uv_connect_t *req, int status)
{
    if (status < 0) {
        fprintf(stderr, "ingest_load: slow connect: %s\n", uv_strerror(status));
        uv_stop(loop);
        return;
    }
    uv_read_start((uv_stream_t *)&sl.tcp, alloc_cb, slow_read);
    slow_send_next(&sl.timer);
}

static int cmd_slow(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    long port = 0, timeout_s = 300, stop = 0;
    sl.delay_ms = 100;
    int o;
    while ((o = getopt(argc, argv, "a:p:d:s:T:")) != -1) {
        int bad = 0;
        switch (o) {
        case 'a': host = optarg; break;
        case 'p': bad = parse_long(optarg, 1, 65535, &port); break;
        case 'd': bad = parse_long(optarg, 0, 60000, &sl.delay_ms); break;
        case 's': bad = parse_long(optarg, 1, 1000000, &stop); break;
        case 'T': bad = parse_long(optarg, 1, 86400, &timeout_s); break;
        default: bad = 1;
        }
        if (bad) {
            fputs(usage, stderr);
            return 2;
        }
    }
    if (!port || optind + 1 != argc || resolve(host, port, &peer_tcp)) {
        fputs(usage, stderr);
        return 2;
    }
    size_t n = strlen(argv[optind]);
    char *line = malloc(n + 2);
    memcpy(line, argv[optind], n);
    line[n++] = '\n';
    line[n] = 0;
    sl.line = line;
    sl.len = n;
    sl.stop_after = (size_t)stop;
    if (sl.stop_after >= sl.len) {
        fprintf(stderr, "ingest_load: -s must stop before the end of the line\n");
        return 2;
    }
    loop = uv_default_loop();
    start_us = cp_time_mono_us();
    uv_tcp_init(loop, &sl.tcp);
    uv_timer_init(loop, &sl.timer);
    uv_timer_t deadline;
    uv_timer_init(loop, &deadline);
    uv_timer_start(&deadline, stop_timer, (uint64_t)timeout_s * 1000, 0);
    uv_tcp_connect(&sl.connect, &sl.tcp, (const struct sockaddr *)&peer_tcp, slow_on_connect);
    uv_run(loop, UV_RUN_DEFAULT);
    double idle = sl.last_byte_us ? (double)(cp_time_mono_us() - sl.last_byte_us) / 1e6 : 0;
    printf("slow: sent=%zu/%zu bytes in %.1f s, %s after %.1f s without a byte %s\n", sl.sent,
           sl.len, elapsed_s(), sl.closed ? "closed by the collector" : "still open", idle,
           sl.ok ? "OK" : "FAIL");
    fflush(stdout);
    _exit(sl.ok ? 0 : 1);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *mode = argv[1];
    argv++;
    argc--;
    if (strcmp(mode, "send") == 0)
        return cmd_send(argc, argv);
    if (strcmp(mode, "idle") == 0)
        return cmd_idle(argc, argv);
    if (strcmp(mode, "slow") == 0)
        return cmd_slow(argc, argv);
    fputs(usage, stderr);
    return 2;
}
