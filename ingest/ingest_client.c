/* ingest_client.c - sources we dial: AMI and the Event Socket (log in, subscribe, keep alive, reconnect). */
#include "ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp_log.h"
#include "cp_time.h"
#include "sources/asterisk_ami/ami_client.h"
#include "sources/freeswitch_esl/esl_client.h"

/*
 * One client per tcp-client source, on loop 0.  Its life: resolve and
 * connect → protocol handshake (AMI banner, challenge, login; ESL
 * auth/request, auth, event subscription) → records go to the format's
 * parser like any stream → on EOF, error or a silent peer: close and
 * reconnect with exponential backoff (0.25 s doubling to 30 s, reset after a
 * successful login).  The PBX keeps no backlog for us, so reconnecting fast
 * is what keeps the loss window small; what it sends once we are back in is
 * never lost (it goes through the same delivery-report path as TCP).
 * Formats without a handshake (SMDR in client mode) just stream lines.
 */

enum proto { PROTO_PLAIN, PROTO_AMI, PROTO_ESL };
enum phase { PH_DOWN, PH_CONNECTING, PH_LOGIN, PH_RUNNING, PH_CLOSING };

#define BUF_MAX (1u << 20)
#define PING_AFTER_MS 20000 /* silence before an AMI Ping */
#define DEAD_AFTER_MS 60000 /* silence before we call the peer dead */

struct ing_client {
    struct ing_client *next;
    struct ing_loop *l;
    struct ing_source *src;
    enum proto proto;
    enum phase phase;
    uv_tcp_t *tcp; /* NULL while down; freed in its close callback */
    uv_connect_t connect_req;
    uv_timer_t timer; /* reconnect backoff and keepalive */
    char peer[80];
    char *buf; /* bytes not yet framed (frame() formats) */
    size_t len;
    struct cp_framer framer; /* line formats */
    void *state;
    int64_t backoff_ms;
    int64_t last_rx_ms;
    bool ping_sent;
    bool esl_subscribed;
    bool stopping;
    unsigned action_seq;
    struct cp_log_limit reconnect_log; /* per source: one noisy PBX must not hide another */
};

static void client_connect(struct ing_client *c);

static void reconnect_cb(uv_timer_t *t)
{
    client_connect(t->data);
}

static int64_t now_ms(void)
{
    return cp_time_mono_us() / 1000;
}

static void write_done(uv_write_t *w, int status)
{
    free(w->data);
    free(w);
}

static void send_bytes(struct ing_client *c, const char *p, size_t n)
{
    if (!c->tcp || n == 0)
        return;
    uv_write_t *w = malloc(sizeof *w);
    char *copy = malloc(n);
    if (!w || !copy) {
        free(w);
        free(copy);
        return;
    }
    memcpy(copy, p, n);
    w->data = copy;
    uv_buf_t b = uv_buf_init(copy, (unsigned)n);
    if (uv_write(w, (uv_stream_t *)c->tcp, &b, 1, write_done) != 0) {
        free(copy);
        free(w);
    }
}

static void tcp_closed(uv_handle_t *h)
{
    free(h);
}

static void schedule_reconnect(struct ing_client *c, const char *why)
{
    if (c->tcp) {
        uv_read_stop((uv_stream_t *)c->tcp);
        uv_close((uv_handle_t *)c->tcp, tcp_closed);
        c->tcp = NULL;
    }
    c->len = 0;
    cp_framer_close(&c->framer);
    cp_framer_init(&c->framer, CP_FRAME_MODE_LINES, (size_t)c->src->cfg->max_record,
                   c->l->ing->cfg->deadletter_cut);
    if (c->state && c->src->fmt->state_destroy) {
        c->src->fmt->state_destroy(c->state);
        c->state = ing_state_create(c->src);
    }
    c->phase = PH_DOWN;
    if (c->stopping)
        return;
    cp_log_limited(&c->reconnect_log, CP_LOG_WARN, c->src->cfg->name, "connection to %s lost (%s); retrying in %lld ms",
                   c->src->cfg->connect, why, (long long)c->backoff_ms);
    uv_timer_start(&c->timer, reconnect_cb, (uint64_t)c->backoff_ms, 0);
    c->backoff_ms = c->backoff_ms * 2 > 30000 ? 30000 : c->backoff_ms * 2;
}

/* ---- protocol handshakes ---- */

static void ami_action_id(struct ing_client *c, char *id, size_t cap)
{
    snprintf(id, cap, "callpipe-%u", ++c->action_seq);
}

static void logged_in(struct ing_client *c)
{
    c->phase = PH_RUNNING;
    c->backoff_ms = 250;
    cp_info(c->src->cfg->name, "logged in to %s", c->src->cfg->connect);
}

/* AMI: returns true when the record was protocol traffic (not an event to parse). */
static bool ami_record(struct ing_client *c, const char *rec, size_t len)
{
    const struct ing_source_cfg *cfg = c->src->cfg;
    char buf[1024], id[32];
    int n;
    if (cp_ami_is_banner(rec, len)) {
        ami_action_id(c, id, sizeof id);
        if (cfg->login_mode == 1)
            n = cp_ami_action_login(buf, sizeof buf, cfg->username, cfg->login_secret.value,
                                    "agent,call,cdr", id);
        else
            n = cp_ami_action_challenge(buf, sizeof buf, id);
        if (n > 0)
            send_bytes(c, buf, (size_t)n);
        c->phase = PH_LOGIN;
        return true;
    }
    struct cp_ami_response r;
    if (cp_ami_response_read(rec, len, &r) != 0)
        return false; /* an event */
    if (c->phase == PH_LOGIN) {
        if (r.challenge) {
            char challenge[128];
            size_t cl = r.challenge_len < sizeof challenge - 1 ? r.challenge_len : sizeof challenge - 1;
            memcpy(challenge, r.challenge, cl);
            challenge[cl] = 0;
            ami_action_id(c, id, sizeof id);
            n = cp_ami_action_login_md5(buf, sizeof buf, cfg->username, challenge,
                                        cfg->login_secret.value, "agent,call,cdr", id);
            if (n > 0)
                send_bytes(c, buf, (size_t)n);
        } else if (r.success) {
            logged_in(c);
        } else {
            cp_error(cfg->name, "AMI login to %s refused: %.*s", cfg->connect,
                     (int)r.message_len, r.message ? r.message : "");
            c->backoff_ms = 30000; /* wrong credentials do not fix themselves quickly */
            schedule_reconnect(c, "login refused");
        }
    }
    /* Pong and other responses only prove the peer is alive. */
    return true;
}

static bool esl_record(struct ing_client *c, const char *rec, size_t len)
{
    const struct ing_source_cfg *cfg = c->src->cfg;
    const char *text;
    size_t tl;
    char buf[512];
    int n;
    switch (cp_esl_classify(rec, len, &text, &tl)) {
    case CP_ESL_MSG_AUTH_REQUEST:
        n = cp_esl_auth_command(cfg->login_secret.value ? cfg->login_secret.value : "", buf,
                                sizeof buf);
        if (n > 0)
            send_bytes(c, buf, (size_t)n);
        c->phase = PH_LOGIN;
        return true;
    case CP_ESL_MSG_REPLY_OK:
        if (c->phase == PH_LOGIN && !c->esl_subscribed) {
            n = cp_esl_event_command(CP_ESL_EVENTS, buf, sizeof buf);
            if (n > 0)
                send_bytes(c, buf, (size_t)n);
            c->esl_subscribed = true;
        } else if (c->phase == PH_LOGIN) {
            logged_in(c);
        }
        return true;
    case CP_ESL_MSG_REPLY_ERR:
        cp_error(cfg->name, "event socket at %s refused: %.*s", cfg->connect, (int)tl,
                 text ? text : "");
        if (c->phase == PH_LOGIN) {
            c->backoff_ms = 30000;
            schedule_reconnect(c, "refused");
        }
        return true;
    case CP_ESL_MSG_DISCONNECT:
        schedule_reconnect(c, "disconnect notice");
        return true;
    case CP_ESL_MSG_EVENT:
        return false;
    default:
        return true;
    }
}

static void deliver(struct ing_client *c, const char *rec, size_t len)
{
    bool protocol = false;
    if (c->proto == PROTO_AMI)
        protocol = ami_record(c, rec, len);
    else if (c->proto == PROTO_ESL)
        protocol = esl_record(c, rec, len);
    if (!protocol && c->tcp)
        ing_handle_record(c->l, c->src, c->state, c->peer, rec, len, NULL, NULL, NULL);
}

/* ---- reading ---- */

static void on_line(void *user, const char *rec, size_t len)
{
    deliver(user, rec, len);
}

static void on_oversize(void *user, const char *head, size_t head_len, uint64_t total)
{
    struct ing_client *c = user;
    ing_reject(c->l, c->src, c->peer, "record longer than max_record", head, head_len);
}

static void on_bad_frame(void *user, const char *reason, const char *head, size_t head_len)
{
    struct ing_client *c = user;
    ing_reject(c->l, c->src, c->peer, reason, head, head_len);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    static _Thread_local char rbuf[65536];
    b->base = rbuf;
    b->len = sizeof rbuf;
}

static void frame_blocks(struct ing_client *c, const char *data, size_t n)
{
    if (c->len + n > BUF_MAX) {
        ing_reject(c->l, c->src, c->peer, "unframed input above 1 MiB", c->buf, c->len > 256 ? 256 : c->len);
        schedule_reconnect(c, "framing lost");
        return;
    }
    char *grown = realloc(c->buf, c->len + n);
    if (!grown)
        return;
    c->buf = grown;
    memcpy(c->buf + c->len, data, n);
    c->len += n;
    size_t off = 0;
    while (off < c->len && c->tcp) {
        long r = c->src->fmt->frame(c->state, c->buf + off, c->len - off);
        if (r == 0)
            break;
        if (r < 0) {
            /* Not a record: skip to the next line and try again. */
            const char *nl = memchr(c->buf + off, '\n', c->len - off);
            size_t skip = nl ? (size_t)(nl - (c->buf + off)) + 1 : c->len - off;
            ing_reject(c->l, c->src, c->peer, "unframeable input", c->buf + off, skip);
            off += skip;
            continue;
        }
        deliver(c, c->buf + off, (size_t)r);
        off += (size_t)r;
    }
    if (!c->tcp)
        return; /* reconnecting: the buffer was reset */
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct ing_client *c = s->data;
    if (nread < 0) {
        schedule_reconnect(c, nread == UV_EOF ? "closed by the peer" : uv_strerror((int)nread));
        return;
    }
    if (nread == 0)
        return;
    c->last_rx_ms = now_ms();
    c->ping_sent = false;
    cp_counter_add(c->src->m.bytes_in, (uint64_t)nread);
    if (c->src->fmt->frame) {
        frame_blocks(c, b->base, (size_t)nread);
    } else {
        struct cp_frame_cb cb = {on_line, on_oversize, on_bad_frame, c};
        cp_framer_feed(&c->framer, b->base, (size_t)nread, &cb);
    }
}

static void keepalive(uv_timer_t *t)
{
    struct ing_client *c = t->data;
    if (c->phase != PH_RUNNING && c->phase != PH_LOGIN)
        return;
    int64_t quiet = now_ms() - c->last_rx_ms;
    if (quiet > DEAD_AFTER_MS) {
        schedule_reconnect(c, "peer silent");
    } else if (quiet > PING_AFTER_MS && !c->ping_sent && c->proto == PROTO_AMI) {
        char buf[256], id[32];
        ami_action_id(c, id, sizeof id);
        int n = cp_ami_action_ping(buf, sizeof buf, id);
        if (n > 0)
            send_bytes(c, buf, (size_t)n);
        c->ping_sent = true;
    }
}

static void on_connect(uv_connect_t *req, int status)
{
    struct ing_client *c = req->data;
    if (status < 0) {
        schedule_reconnect(c, uv_strerror(status));
        return;
    }
    c->phase = c->proto == PROTO_PLAIN ? PH_RUNNING : PH_LOGIN;
    c->last_rx_ms = now_ms();
    c->esl_subscribed = false;
    c->ping_sent = false;
    if (c->proto == PROTO_PLAIN)
        c->backoff_ms = 250;
    uv_read_start((uv_stream_t *)c->tcp, alloc_cb, read_cb);
    uv_timer_start(&c->timer, keepalive, 1000, 1000);
}

static void client_connect(struct ing_client *c)
{
    if (c->stopping)
        return;
    char host[64];
    int port;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    ing_parse_listen(c->src->cfg->connect, host, sizeof host, &port);
    if (strchr(host, ':'))
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
    else
        uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
    c->tcp = calloc(1, sizeof *c->tcp);
    if (!c->tcp)
        return;
    uv_tcp_init(&c->l->loop, c->tcp);
    c->tcp->data = c;
    c->connect_req.data = c;
    c->phase = PH_CONNECTING;
    int rc = uv_tcp_connect(&c->connect_req, c->tcp, (struct sockaddr *)&ss, on_connect);
    if (rc)
        schedule_reconnect(c, uv_strerror(rc)); /* the callback never runs after a failed call */
}

int ing_client_start(struct ing_loop *l, struct ing_source *src, char *err, size_t errcap)
{
    struct ing_client *c = calloc(1, sizeof *c);
    if (!c)
        return CP_ERR_NOMEM;
    c->l = l;
    c->src = src;
    const char *name = src->fmt->name;
    c->proto = strcmp(name, "asterisk-ami") == 0     ? PROTO_AMI
               : strcmp(name, "freeswitch-esl") == 0 ? PROTO_ESL
                                                     : PROTO_PLAIN;
    if (c->proto == PROTO_AMI && (!src->cfg->username || !src->cfg->login_secret.value)) {
        snprintf(err, errcap, "source %s: AMI needs username and login_secret", src->cfg->name);
        free(c);
        return CP_ERR_CONFIG;
    }
    if (c->proto == PROTO_PLAIN && src->fmt->frame) {
        snprintf(err, errcap, "source %s: format %s cannot be used with tcp-client",
                 src->cfg->name, name);
        free(c);
        return CP_ERR_CONFIG;
    }
    snprintf(c->peer, sizeof c->peer, "%s", src->cfg->connect);
    c->state = ing_state_create(src);
    cp_framer_init(&c->framer, CP_FRAME_MODE_LINES, (size_t)src->cfg->max_record,
                   l->ing->cfg->deadletter_cut);
    c->backoff_ms = 250;
    c->reconnect_log = (struct cp_log_limit)CP_LOG_LIMIT_INIT(5, 60000);
    uv_timer_init(&l->loop, &c->timer);
    c->timer.data = c;
    c->next = l->clients;
    l->clients = c;
    client_connect(c);
    return 0;
}

static void timer_closed(uv_handle_t *h)
{
    struct ing_client *c = h->data;
    free(c->buf);
    cp_framer_close(&c->framer);
    if (c->state && c->src->fmt->state_destroy)
        c->src->fmt->state_destroy(c->state);
    free(c);
}

void ing_client_stop(struct ing_loop *l)
{
    struct ing_client *c = l->clients;
    l->clients = NULL;
    while (c) {
        struct ing_client *next = c->next;
        c->stopping = true;
        if (c->tcp) {
            uv_read_stop((uv_stream_t *)c->tcp);
            uv_close((uv_handle_t *)c->tcp, tcp_closed);
            c->tcp = NULL;
        }
        uv_timer_stop(&c->timer);
        uv_close((uv_handle_t *)&c->timer, timer_closed);
        c = next;
    }
}
