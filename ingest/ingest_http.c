/* ingest_http.c - HTTP sources: auth, one body = one record, 200 only after Kafka acknowledged it all. */
#include "ingest.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp_log.h"
#include "cp_time.h"
#include "sources/amazon_connect/firehose.h"
#include "sources/twilio/twilio_signature.h"

#include <zlib.h>

#define MAX_LISTED_REJECTS 100

struct http_wait {
    struct ing_waiter w; /* first: the waiter is the request's completion */
    struct cp_http_req *req;
    struct ing_source *src;
    uint32_t events;
    uint32_t rejected;
    size_t body_len;
    char *rejects_json; /* ,{"index":i,"reason":"..."} items */
    size_t rj_len, rj_cap;
};

struct http_listener {
    struct ing_loop *l;
    struct ing_source *src;
};

static void rj_append(struct http_wait *hw, const char *s, size_t n, bool escape)
{
    for (size_t i = 0; i < n; i++) {
        if (hw->rj_len + 8 >= hw->rj_cap) {
            size_t cap = hw->rj_cap ? hw->rj_cap * 2 : 256;
            char *p = realloc(hw->rejects_json, cap);
            if (!p)
                return;
            hw->rejects_json = p;
            hw->rj_cap = cap;
        }
        unsigned char c = (unsigned char)s[i];
        if (escape && (c == '"' || c == '\\')) {
            hw->rejects_json[hw->rj_len++] = '\\';
            hw->rejects_json[hw->rj_len++] = (char)c;
        } else if (escape && c < 0x20) {
            hw->rj_len += (size_t)snprintf(hw->rejects_json + hw->rj_len, 8, "\\u%04x", c);
        } else {
            hw->rejects_json[hw->rj_len++] = (char)c;
        }
    }
}

/* Collects the rejects of one request for its answer (the first 100 are listed). */
static void note_reject(void *arg, uint32_t index, const char *reason)
{
    struct http_wait *hw = arg;
    hw->rejected++;
    if (hw->rejected > MAX_LISTED_REJECTS)
        return;
    char head[64];
    int n = snprintf(head, sizeof head, "%s{\"index\":%u,\"reason\":\"", hw->rejected > 1 ? "," : "",
                     index);
    rj_append(hw, head, (size_t)n, false);
    rj_append(hw, reason, strlen(reason), true);
    rj_append(hw, "\"}", 2, false);
}

/* Kinesis Data Firehose wants its own answer: {"requestId":..,"timestamp":..} and 200. */
static void firehose_answer(struct cp_http_req *req, int status, const char *error)
{
    char body[1024];
    int n = cp_firehose_response(body, sizeof body, cp_http_req_header(req, "X-Amz-Firehose-Request-Id"),
                                 cp_time_now_us() / 1000, error);
    const char *hdr[] = {"Content-Type", "application/json", NULL};
    cp_http_respond(req, status, hdr, body, n > 0 ? (size_t)n : 0);
}

static bool is_firehose(const struct ing_source *src)
{
    return src->cfg->access_key.value != NULL;
}

/* Firehose may send Content-Encoding: gzip; inflate up to `limit` bytes (a zip bomb stops there). */
static char *gunzip(const uint8_t *in, size_t len, size_t limit, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        return NULL;
    size_t cap = len * 4 + 1024 < limit ? len * 4 + 1024 : limit;
    char *out = malloc(cap + 1);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    int rc = Z_OK;
    while (out && rc == Z_OK) {
        if (z.total_out == cap) {
            if (cap >= limit)
                break;
            cap = cap * 2 < limit ? cap * 2 : limit;
            char *grown = realloc(out, cap + 1);
            if (!grown)
                break;
            out = grown;
        }
        z.next_out = (Bytef *)out + z.total_out;
        z.avail_out = (uInt)(cap - z.total_out);
        rc = inflate(&z, Z_NO_FLUSH);
    }
    inflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    *out_len = z.total_out;
    out[*out_len] = 0;
    return out;
}

/* Twilio signs the exact public URL it called (with the query) and the form fields. */
static const char *check_twilio(const struct ing_source_cfg *c, struct cp_http_req *req)
{
    char url[4096];
    snprintf(url, sizeof url, "%s%s%s", c->public_url, req->query[0] ? "?" : "", req->query);
    const char *settings = cp_http_req_header(req, "X-Twilio-Webhooks-Signature-Settings");
    enum cp_twilio_sig_alg alg =
        settings && strstr(settings, "HMAC_SHA256") ? CP_TWILIO_SIG_SHA256 : CP_TWILIO_SIG_SHA1;
    if (cp_twilio_signature_check(c->twilio_token.value, alg, url, (const char *)req->body,
                                  req->body_len, cp_http_req_header(req, "X-Twilio-Signature")))
        return "bad X-Twilio-Signature";
    return NULL;
}

static void http_done(struct ing_waiter *w)
{
    struct http_wait *hw = (struct http_wait *)w;
    int failed = atomic_load(&w->failed);
    if (is_firehose(hw->src)) {
        /* Rejected records are in the dead-letter topic: for Firehose the
         * request is delivered unless Kafka failed (then it retries). */
        firehose_answer(hw->req, failed ? 503 : 200, failed ? "kafka unavailable; retry" : NULL);
    } else if (hw->src->cfg->twilio_token.value && !failed) {
        /* Twilio only looks at the status: 204 for TaskRouter, 200 (empty TwiML) for voice. */
        bool tr = strcmp(hw->src->fmt->name, "twilio-taskrouter") == 0;
        const char *hdr[] = {"Content-Type", "application/xml", NULL};
        cp_http_respond(hw->req, tr ? 204 : 200, tr ? NULL : hdr,
                        tr ? "" : "<Response/>", tr ? 0 : 11);
    } else if (failed) {
        cp_http_respond_unavailable(hw->req, 5, "kafka did not acknowledge every event; resend\n");
    } else {
        size_t cap = hw->rj_len + 128;
        char *body = malloc(cap);
        if (body) {
            int n = snprintf(body, cap, "{\"accepted\":%u,\"rejected\":%u,\"rejects\":[%.*s]}\n",
                             hw->events, hw->rejected, (int)hw->rj_len,
                             hw->rejects_json ? hw->rejects_json : "");
            const char *hdr[] = {"Content-Type", "application/json", NULL};
            cp_http_respond(hw->req, 200, hdr, body, (size_t)n);
            free(body);
        } else {
            cp_http_respond_text(hw->req, 500, "out of memory\n");
        }
    }
    free(hw->rejects_json);
    free(hw);
}

static bool const_eq(const char *a, size_t al, const char *b, size_t bl)
{
    return al == bl && CRYPTO_memcmp(a, b, al) == 0;
}

/*
 * HTTP Basic with the token as the password (any user name): what senders that cannot set a
 * bearer header use, e.g. FreeSWITCH mod_json_cdr (`cred` = user:token, auth-scheme basic).
 */
static const char *check_basic(const char *b64, const char *token, size_t token_len)
{
    while (*b64 == ' ')
        b64++;
    size_t n = strlen(b64);
    if (n == 0 || n % 4 != 0 || n > 1024)
        return "bad basic credentials";
    unsigned char dec[800];
    int len = EVP_DecodeBlock(dec, (const unsigned char *)b64, (int)n);
    if (len < 0)
        return "bad basic credentials";
    /* EVP_DecodeBlock counts the padding as output bytes. */
    if (n >= 1 && b64[n - 1] == '=')
        len--;
    if (n >= 2 && b64[n - 2] == '=')
        len--;
    const unsigned char *colon = memchr(dec, ':', (size_t)len);
    if (!colon)
        return "bad basic credentials";
    const char *pw = (const char *)colon + 1;
    size_t pw_len = (size_t)len - (size_t)(colon + 1 - dec);
    if (!const_eq(pw, pw_len, token, token_len))
        return "wrong basic password";
    return NULL;
}

static const char *check_auth(struct ing_source *src, struct cp_http_req *req)
{
    const struct ing_source_cfg *c = src->cfg;
    if (c->token.value) {
        const char *h = cp_http_req_header(req, "Authorization");
        if (h && strncasecmp(h, "Basic ", 6) == 0)
            return check_basic(h + 6, c->token.value, c->token.len);
        if (!h || strncasecmp(h, "Bearer ", 7) != 0)
            return "missing bearer token";
        if (!const_eq(h + 7, strlen(h + 7), c->token.value, c->token.len))
            return "wrong bearer token";
    }
    if (c->twilio_token.value) {
        const char *why = check_twilio(c, req);
        if (why)
            return why;
    }
    if (c->access_key.value &&
        cp_firehose_check_key(c->access_key.value,
                              cp_http_req_header(req, "X-Amz-Firehose-Access-Key")) != 0)
        return "bad X-Amz-Firehose-Access-Key";
    if (c->hmac_secret.value) {
        const char *h = cp_http_req_header(req, "X-Callpipe-Signature");
        if (!h || strncmp(h, "sha256=", 7) != 0)
            return "missing X-Callpipe-Signature";
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int mlen = 0;
        HMAC(EVP_sha256(), c->hmac_secret.value, (int)c->hmac_secret.len, req->body, req->body_len,
             mac, &mlen);
        char hex[2 * EVP_MAX_MD_SIZE + 1];
        for (unsigned i = 0; i < mlen; i++)
            snprintf(hex + 2 * i, 3, "%02x", mac[i]);
        if (!const_eq(h + 7, strlen(h + 7), hex, 2 * mlen))
            return "bad X-Callpipe-Signature";
    }
    return NULL;
}

static void on_request(struct cp_http_req *req, void *arg)
{
    struct http_listener *hl = arg;
    struct ing_loop *l = hl->l;
    struct ing_source *src = hl->src;
    if (strcmp(req->method, "POST") != 0) {
        const char *hdr[] = {"Allow", "POST", NULL};
        cp_http_respond(req, 405, hdr, "use POST\n", 9);
        return;
    }
    const char *why = check_auth(src, req);
    if (why) {
        ing_reject(l, src, req->peer, why, req->body, req->body_len);
        if (is_firehose(src)) {
            firehose_answer(req, 401, why);
            return;
        }
        if (src->cfg->twilio_token.value) {
            cp_http_respond_text(req, 403, "bad signature\n");
            return;
        }
        const char *hdr[] = {"WWW-Authenticate", "Bearer", NULL};
        cp_http_respond(req, 401, hdr, "unauthorised\n", 13);
        return;
    }
    if (atomic_load(&l->ing->out.paused) || atomic_load(&l->ing->stopping)) {
        cp_http_respond_unavailable(req, 1, "busy: kafka queue above its high watermark\n");
        return;
    }
    struct http_wait *hw = calloc(1, sizeof *hw);
    if (!hw) {
        cp_http_respond_text(req, 500, "out of memory\n");
        return;
    }
    hw->w.loop = l;
    hw->w.on_done = http_done;
    atomic_store(&hw->w.pending, 1); /* held while producing, so an early report cannot finish it */
    hw->req = req;
    hw->src = src;
    hw->body_len = req->body_len;
    const char *body = (const char *)req->body;
    size_t body_len = req->body_len;
    char *inflated = NULL;
    const char *enc = cp_http_req_header(req, "Content-Encoding");
    if (enc && strcasecmp(enc, "gzip") == 0) {
        inflated = gunzip(req->body, req->body_len, (size_t)src->cfg->max_body, &body_len);
        if (!inflated) {
            ing_reject(l, src, req->peer, "bad or oversized gzip body", req->body, req->body_len);
            free(hw);
            if (is_firehose(src))
                firehose_answer(req, 400, "bad gzip body");
            else
                cp_http_respond_text(req, 400, "bad or oversized gzip body\n");
            return;
        }
        body = inflated;
    }
    int n = ing_handle_record(l, src, NULL, req->peer, body, body_len, &hw->w, note_reject, hw);
    free(inflated);
    hw->events = n > 0 ? (uint32_t)n : 0;
    /* Release the producing hold: the answer goes out once every report is in. */
    if (atomic_fetch_sub(&hw->w.pending, 1) == 1)
        http_done(&hw->w);
}

int ing_http_listen(struct ing_loop *l, struct ing_source *src, char *err, size_t errcap)
{
    char host[64];
    int port;
    if (ing_parse_listen(src->cfg->listen, host, sizeof host, &port)) {
        snprintf(err, errcap, "could not parse listen address \"%s\"", src->cfg->listen);
        return CP_ERR_CONFIG;
    }
    struct http_listener *hl = calloc(1, sizeof *hl);
    if (!hl)
        return CP_ERR_NOMEM;
    hl->l = l;
    hl->src = src;
    struct cp_http_config hc = {
        .limits = {.max_body_bytes = (size_t)src->cfg->max_body},
        .max_connections = (unsigned)l->ing->cfg->max_connections,
        .header_timeout_ms = (unsigned)l->ing->cfg->header_timeout_ms,
        .idle_timeout_ms = (unsigned)l->ing->cfg->idle_timeout_ms,
        .reuseport = true,
        .ident = src->cfg->name,
    };
    struct cp_http_server *srv = cp_http_server_create(&l->loop, &hc, on_request, hl);
    if (!srv) {
        free(hl);
        return CP_ERR_NOMEM;
    }
    int rc = cp_http_server_listen(srv, host, port);
    if (rc) {
        snprintf(err, errcap, "could not listen on %s: %s", src->cfg->listen, cp_err_str(rc));
        cp_http_server_shutdown(srv, 0, free, hl);
        return rc;
    }
    struct cp_http_server **grown = realloc(l->http, (l->n_http + 1) * sizeof *grown);
    struct http_listener **hls = realloc(l->http_args, (l->n_http + 1) * sizeof *hls);
    if (grown)
        l->http = grown;
    if (hls)
        l->http_args = (void **)hls;
    if (!grown || !hls) {
        cp_http_server_shutdown(srv, 0, free, hl);
        return CP_ERR_NOMEM;
    }
    l->http[l->n_http] = srv;
    l->http_args[l->n_http] = hl;
    l->n_http++;
    return cp_http_server_port(srv);
}

static void http_closed(void *arg)
{
    struct http_listener *hl = arg;
    hl->l->http_open--;
    free(hl);
}

void ing_http_stop(struct ing_loop *l, unsigned drain_ms)
{
    l->http_open = l->n_http;
    for (size_t i = 0; i < l->n_http; i++)
        cp_http_server_shutdown(l->http[i], drain_ms, http_closed, l->http_args[i]);
    l->n_http = 0;
}
