/* ingest_net.c - TCP line/octet streams and syslog over UDP and TCP, on each event loop. */
#include "ingest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cp_log.h"
#include "cp_syslog.h"
#include "cp_time.h"

struct ing_conn {
    uv_tcp_t tcp;
    struct ing_loop *l;
    struct ing_source *src;
    struct cp_framer framer;
    void *state; /* the format's per-connection state (SMDR stitching) */
    char peer[64];
    int64_t last_active_ms;
    bool reading;
    bool closing;
    struct ing_conn *prev, *next;
};

struct ing_listener {
    union {
        uv_tcp_t tcp;
        uv_udp_t udp;
    } h;
    struct ing_loop *l;
    struct ing_source *src;
    void *state; /* syslog-udp: the format's state for this socket's datagrams (SMDR stitching);
                  * SO_REUSEPORT keeps one peer on one socket */
};

/* One read buffer per loop: records are handled synchronously inside the read
 * callback, so idle connections hold no buffer at all (10,000 of them cost
 * their framer struct and the kernel socket, nothing more). */
static _Thread_local char read_buf[65536];

int ing_socket_listen(const char *addr, int type, char *err, size_t errcap)
{
    char host[64];
    int port;
    if (ing_parse_listen(addr, host, sizeof host, &port)) {
        snprintf(err, errcap, "could not parse listen address \"%s\"", addr);
        return CP_ERR_CONFIG;
    }
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    if (strchr(host, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        inet_pton(AF_INET6, host, &a->sin6_addr);
        sl = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, host, &a->sin_addr);
        sl = sizeof *a;
    }
    int fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errcap, "could not create socket: %s", strerror(errno));
        return CP_ERR_IO;
    }
    int one = 1;
    /* SO_REUSEPORT: every loop binds the same port and the kernel spreads peers. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 ||
        (type == SOCK_STREAM && listen(fd, 1024) != 0)) {
        snprintf(err, errcap, "could not listen on %s: %s", addr, strerror(errno));
        close(fd);
        return CP_ERR_IO;
    }
    return fd;
}

/* ---- peer allow-lists ---- */

static bool peer_allowed(const struct ing_source *src, const struct sockaddr_storage *ss)
{
    if (src->allow_n == 0)
        return true;
    uint8_t addr[16];
    int family = ss->ss_family;
    if (family == AF_INET) {
        memcpy(addr, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    } else {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            family = AF_INET;
            memcpy(addr, a6->s6_addr + 12, 4);
        } else {
            memcpy(addr, a6->s6_addr, 16);
        }
    }
    for (uint32_t i = 0; i < src->allow_n; i++) {
        const struct ing_cidr *c = &src->allow[i];
        if (c->family != family)
            continue;
        int bits = c->prefix, k = 0;
        for (; bits >= 8; bits -= 8, k++)
            if (addr[k] != c->addr[k])
                goto next;
        if (bits && (addr[k] ^ c->addr[k]) >> (8 - bits))
            goto next;
        return true;
    next:;
    }
    return false;
}

static void peer_name(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
    }
    snprintf(out, cap, "%s:%d", host, port);
}

/* ---- records out of a stream ---- */

static void stream_record(struct ing_conn *c, const char *rec, size_t len)
{
    struct ing_source *src = c->src;
    if (src->cfg->transport == ING_SYSLOG_TCP) {
        struct cp_syslog_msg m;
        const char *why;
        if (cp_syslog_parse(rec, len, &m, &why) != 0) {
            ing_reject(c->l, src, c->peer, why, rec, len);
            return;
        }
        rec = m.msg;
        len = m.msg_len;
    }
    ing_handle_record(c->l, src, c->state, c->peer, rec, len, NULL, NULL, NULL);
}

static void on_frame(void *user, const char *rec, size_t len)
{
    stream_record(user, rec, len);
}

static void on_oversize(void *user, const char *head, size_t head_len, uint64_t total)
{
    struct ing_conn *c = user;
    ing_reject(c->l, c->src, c->peer, "record longer than max_record", head, head_len);
}

static void on_bad_frame(void *user, const char *reason, const char *head, size_t head_len)
{
    struct ing_conn *c = user;
    ing_reject(c->l, c->src, c->peer, reason, head, head_len);
}

static const struct cp_frame_cb frame_cb_proto = {on_frame, on_oversize, on_bad_frame, NULL};

static void conn_closed(uv_handle_t *h)
{
    struct ing_conn *c = h->data;
    cp_framer_close(&c->framer);
    if (c->state && c->src->fmt->state_destroy)
        c->src->fmt->state_destroy(c->state);
    free(c);
}

static void conn_close(struct ing_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    struct cp_frame_cb cb = frame_cb_proto;
    cb.user = c;
    cp_framer_finish(&c->framer, &cb); /* a last line without LF is still a record */
    cp_gauge_dec(c->src->m.connections);
    if (c->prev)
        c->prev->next = c->next;
    else
        c->l->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    buf->base = read_buf;
    buf->len = sizeof read_buf;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct ing_conn *c = s->data;
    if (nread > 0) {
        c->last_active_ms = cp_time_mono_us() / 1000;
        cp_counter_add(c->src->m.bytes_in, (uint64_t)nread);
        struct cp_frame_cb cb = frame_cb_proto;
        cb.user = c;
        struct ing_loop *l = c->l;
        l->read_us = cp_time_now_us();
        cp_framer_feed(&c->framer, buf->base, (size_t)nread, &cb);
        l->read_us = 0;
        /* Pause after this read, not at the next tick: between ticks a fast peer
         * can fill the queue, and a full queue blocks this loop inside produce
         * (HTTP on it would get no 503, only silence). */
        if (!l->paused && !l->stopping && ing_out_check_pause(&l->ing->out)) {
            l->paused = true;
            ing_net_pause(l, true);
        }
    } else if (nread < 0) {
        if (nread != UV_EOF)
            cp_debug(c->src->cfg->name, "connection from %s: %s", c->peer, uv_strerror((int)nread));
        conn_close(c);
    }
}

static void conn_set_reading(struct ing_conn *c, bool on)
{
    if (c->closing || c->reading == on)
        return;
    if (on)
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    else
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = on;
}

static void on_connection(uv_stream_t *server, int status)
{
    struct ing_listener *ls = server->data;
    struct ing_loop *l = ls->l;
    if (status < 0 || l->stopping)
        return;
    struct ing_conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    uv_tcp_init(&l->loop, &c->tcp);
    c->tcp.data = c;
    c->l = l;
    c->src = ls->src;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
        return;
    }
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    memset(&ss, 0, sizeof ss);
    uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl);
    peer_name(&ss, c->peer, sizeof c->peer);
    if (!peer_allowed(c->src, &ss)) {
        ing_reject(l, c->src, c->peer, "peer address not allowed", "", 0);
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
        return;
    }
    enum cp_frame_mode mode = (enum cp_frame_mode)c->src->cfg->framing;
    cp_framer_init(&c->framer, mode, (size_t)c->src->cfg->max_record, l->ing->cfg->deadletter_cut);
    c->last_active_ms = cp_time_mono_us() / 1000;
    c->state = ing_state_create(c->src);
    c->next = l->conns;
    if (l->conns)
        l->conns->prev = c;
    l->conns = c;
    cp_gauge_inc(c->src->m.connections);
    conn_set_reading(c, !l->paused);
}

/* ---- syslog over UDP: one datagram, one message ---- */

static void udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    buf->base = read_buf;
    buf->len = sizeof read_buf;
}

static void udp_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                     unsigned flags)
{
    struct ing_listener *ls = u->data;
    if (nread <= 0 || !addr)
        return;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    memcpy(&ss, addr, addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                  : sizeof(struct sockaddr_in));
    char peer[64];
    peer_name(&ss, peer, sizeof peer);
    cp_counter_add(ls->src->m.bytes_in, (uint64_t)nread);
    if (!peer_allowed(ls->src, &ss)) {
        ing_reject(ls->l, ls->src, peer, "peer address not allowed", buf->base, (size_t)nread);
        return;
    }
    if (flags & UV_UDP_PARTIAL) {
        ing_reject(ls->l, ls->src, peer, "datagram truncated", buf->base, (size_t)nread);
        return;
    }
    struct cp_syslog_msg m;
    const char *why;
    if (cp_syslog_parse(buf->base, (size_t)nread, &m, &why) != 0) {
        ing_reject(ls->l, ls->src, peer, why, buf->base, (size_t)nread);
        return;
    }
    ing_handle_record(ls->l, ls->src, ls->state, peer, m.msg, m.msg_len, NULL, NULL, NULL);
}

/* ---- listeners ---- */

static int parse_allow(struct ing_source *src, char *err, size_t errcap)
{
    const char *p = src->cfg->allow;
    src->allow_n = 0;
    while (p && *p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char item[64];
        if (n >= sizeof item || src->allow_n >= CP_ARRAY_LEN(src->allow))
            goto bad;
        memcpy(item, p, n);
        item[n] = 0;
        while (n && item[n - 1] == ' ')
            item[--n] = 0;
        struct ing_cidr *c = &src->allow[src->allow_n];
        char *slash = strchr(item, '/');
        if (slash)
            *slash = 0;
        if (inet_pton(AF_INET, item, c->addr) == 1) {
            c->family = AF_INET;
            c->prefix = 32;
        } else if (inet_pton(AF_INET6, item, c->addr) == 1) {
            c->family = AF_INET6;
            c->prefix = 128;
        } else {
            goto bad;
        }
        if (slash) {
            char *e;
            long bits = strtol(slash + 1, &e, 10);
            if (*e || bits < 0 || bits > c->prefix)
                goto bad;
            c->prefix = (int)bits;
        }
        src->allow_n++;
        p += n;
    }
    return 0;
bad:
    snprintf(err, errcap, "source %s: allow \"%s\" is not a list of address ranges", src->cfg->name,
             src->cfg->allow);
    return CP_ERR_CONFIG;
}

int ing_net_listen(struct ing_loop *l, struct ing_source *src, char *err, size_t errcap)
{
    if (l->index == 0 && parse_allow(src, err, errcap))
        return CP_ERR_CONFIG;
    bool udp = src->cfg->transport == ING_SYSLOG_UDP;
    int fd = ing_socket_listen(src->cfg->listen, udp ? SOCK_DGRAM : SOCK_STREAM, err, errcap);
    if (fd < 0)
        return fd;
    struct ing_listener *ls = calloc(1, sizeof *ls);
    if (!ls) {
        close(fd);
        return CP_ERR_NOMEM;
    }
    ls->l = l;
    ls->src = src;
    int rc;
    if (udp) {
        ls->state = ing_state_create(src);
        uv_udp_init(&l->loop, &ls->h.udp);
        ls->h.udp.data = ls;
        rc = uv_udp_open(&ls->h.udp, fd);
        if (rc == 0) {
            /* A deeper kernel buffer rides out bursts while a produce blocks. */
            int size = 4 << 20;
            uv_recv_buffer_size((uv_handle_t *)&ls->h.udp, &size);
            rc = uv_udp_recv_start(&ls->h.udp, udp_alloc, udp_recv);
        }
    } else {
        uv_tcp_init(&l->loop, &ls->h.tcp);
        ls->h.tcp.data = ls;
        rc = uv_tcp_open(&ls->h.tcp, fd);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&ls->h.tcp, 1024, on_connection);
    }
    uv_handle_t **grown = realloc(l->listeners, (l->n_listeners + 1) * sizeof *grown);
    if (grown) {
        l->listeners = grown;
        l->listeners[l->n_listeners++] = (uv_handle_t *)&ls->h;
    }
    if (rc != 0) {
        snprintf(err, errcap, "could not listen on %s: %s", src->cfg->listen, uv_strerror(rc));
        return CP_ERR_IO;
    }
    return 0;
}

void ing_net_pause(struct ing_loop *l, bool pause)
{
    for (struct ing_conn *c = l->conns; c; c = c->next)
        conn_set_reading(c, !pause);
}

/* Idle connections are closed from the loop's tick (one timer per loop, not per connection). */
void ing_net_tick(struct ing_loop *l)
{
    int64_t now = cp_time_mono_us() / 1000;
    int64_t idle = l->ing->cfg->idle_timeout_ms;
    for (struct ing_conn *c = l->conns, *next; c; c = next) {
        next = c->next;
        if (c->reading && now - c->last_active_ms > idle) {
            cp_info(c->src->cfg->name, "closing connection from %s: idle for %lld ms", c->peer,
                    (long long)(now - c->last_active_ms));
            conn_close(c);
        }
    }
}

static void listener_closed(uv_handle_t *h)
{
    struct ing_listener *ls = h->data;
    if (ls->state && ls->src->fmt->state_destroy)
        ls->src->fmt->state_destroy(ls->state);
    free(ls);
}

void ing_net_stop(struct ing_loop *l, bool close_conns)
{
    /* Phase 1 stops accepting and keeps reading, so what peers already sent
     * is framed and produced; phase 2 closes the streams (a partial last line
     * is flushed as a record by conn_close). */
    if (!l->listeners_closed) {
        l->listeners_closed = true;
        for (size_t i = 0; i < l->n_listeners; i++)
            if (!uv_is_closing(l->listeners[i]))
                uv_close(l->listeners[i], listener_closed);
        ing_net_pause(l, false);
    }
    if (close_conns)
        for (struct ing_conn *c = l->conns, *next; c; c = next) {
            next = c->next;
            conn_close(c);
        }
}
