/* ld_sf.c - Salesforce HTTPS client for one org: OAuth flows and REST calls, libcurl multi in a simple poll loop. */
#include "ld_sf.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "cp_log.h"

/*
 * Why a plain multi loop and not libuv: the loader does one HTTP step at a time per org and
 * everything else it waits on is PostgreSQL (blocking libpq); curl_multi_poll gives the same
 * timeouts and connection reuse without a second event loop.  Certificate verification is
 * libcurl's default (VERIFYPEER and VERIFYHOST on) and is never turned off; ca_file only
 * replaces the trust store.
 */

static void once_global(void)
{
    static int done;
    if (!done) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        done = 1;
    }
}

int ld_sf_init(struct ld_sf *s, const struct ld_org_cfg *cfg, long timeout_ms)
{
    once_global();
    memset(s, 0, sizeof *s);
    s->cfg = cfg;
    s->timeout_ms = timeout_ms;
    snprintf(s->ident, sizeof s->ident, "org=%s", cfg->name);
    s->multi = curl_multi_init();
    s->easy = curl_easy_init();
    return s->multi && s->easy ? 0 : CP_ERR_NOMEM;
}

void ld_sf_close(struct ld_sf *s)
{
    if (s->easy)
        curl_easy_cleanup(s->easy);
    if (s->multi)
        curl_multi_cleanup(s->multi);
    if (s->access_token) {
        memset(s->access_token, 0, strlen(s->access_token));
        free(s->access_token);
    }
    free(s->instance_url);
    memset(s, 0, sizeof *s);
}

void ld_resp_free(struct ld_resp *r)
{
    ld_buf_free(&r->body);
    memset(r, 0, sizeof *r);
}

bool ld_sf_over_share(const struct ld_sf *s)
{
    return s->api_max > 0 && s->api_used * 100 >= s->cfg->api_share * s->api_max;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct ld_resp *r = arg;
    return ld_buf_append(&r->body, p, size * n) == 0 ? size * n : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct ld_sf *s = arg;
    size_t len = size * n;
    static const char name[] = "Sforce-Limit-Info:";
    if (len > sizeof name && strncasecmp(p, name, sizeof name - 1) == 0) {
        size_t vl = len - (sizeof name - 1);
        const char *v = p + sizeof name - 1;
        while (vl && (*v == ' ' || *v == '\t'))
            v++, vl--;
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
            vl--;
        if (vl >= sizeof s->limit_hdr)
            vl = sizeof s->limit_hdr - 1;
        memcpy(s->limit_hdr, v, vl);
        s->limit_hdr[vl] = '\0';
    }
    return len;
}

/* Runs the prepared easy handle through the multi handle until it is done. */
static CURLcode perform(struct ld_sf *s)
{
    CURLcode res = CURLE_OK;
    if (curl_multi_add_handle(s->multi, s->easy) != CURLM_OK)
        return CURLE_FAILED_INIT;
    int running = 1;
    while (running) {
        if (curl_multi_perform(s->multi, &running) != CURLM_OK) {
            res = CURLE_FAILED_INIT;
            break;
        }
        if (running && curl_multi_poll(s->multi, NULL, 0, 500, NULL) != CURLM_OK) {
            res = CURLE_FAILED_INIT;
            break;
        }
    }
    CURLMsg *m;
    int q;
    while ((m = curl_multi_info_read(s->multi, &q)))
        if (m->msg == CURLMSG_DONE)
            res = m->data.result;
    curl_multi_remove_handle(s->multi, s->easy);
    return res;
}

static void setup(struct ld_sf *s, const char *method, const char *url, struct curl_slist *hdrs,
                  const char *body, size_t len, struct ld_resp *r)
{
    CURL *e = s->easy;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, s->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 15000L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, s);
    s->curl_err[0] = '\0';
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->curl_err);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* gzip responses when offered */
    curl_easy_setopt(e, CURLOPT_USERAGENT, "callpipe-loader/1");
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
    if (s->cfg->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, s->cfg->ca_file);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
    }
}

/* Reads errorCode/message out of a JSON error array or an OAuth error object. */
static void parse_error(struct ld_resp *r)
{
    r->error_code[0] = r->message[0] = '\0';
    if (!r->body.len)
        return;
    json_t *j = json_loadb(r->body.data, r->body.len, 0, NULL);
    if (!j)
        return;
    json_t *o = json_is_array(j) ? json_array_get(j, 0) : j;
    const char *code = json_string_value(json_object_get(o, "errorCode"));
    const char *msg = json_string_value(json_object_get(o, "message"));
    if (!code) {
        code = json_string_value(json_object_get(o, "error"));
        msg = json_string_value(json_object_get(o, "error_description"));
    }
    snprintf(r->error_code, sizeof r->error_code, "%s", code ? code : "");
    snprintf(r->message, sizeof r->message, "%s", msg ? msg : "");
    json_decref(j);
}

static int classify_curl(struct ld_sf *s, CURLcode c)
{
    /* libcurl's own detail ("SSL certificate problem: unable to get local issuer certificate")
     * says what to fix; curl_easy_strerror alone does not.  URLs carry no secret. */
    const char *url = NULL;
    curl_easy_getinfo(s->easy, CURLINFO_EFFECTIVE_URL, &url);
    const char *why = s->curl_err[0] ? s->curl_err : curl_easy_strerror(c);
    cp_counter_inc(s->http_errors);
    switch (c) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CONNECT_ERROR:
        cp_error(s->ident, "could not reach Salesforce at %s: %s (trust store: %s)",
                 url ? url : "?", why, s->cfg->ca_file ? s->cfg->ca_file : "system default");
        return c == CURLE_SSL_CONNECT_ERROR ? CP_ERR_HTTP : CP_ERR_TLS;
    default:
        cp_warn(s->ident, "could not reach Salesforce at %s: %s", url ? url : "?", why);
        return CP_ERR_HTTP;
    }
}

static void form_add(struct ld_buf *b, CURL *e, const char *k, const char *v)
{
    char *ev = curl_easy_escape(e, v, 0);
    ld_buf_printf(b, "%s%s=%s", b->len ? "&" : "", k, ev ? ev : "");
    curl_free(ev);
}

int ld_sf_login(struct ld_sf *s)
{
    const struct ld_org_cfg *c = s->cfg;
    struct ld_buf form = {0};
    char *jwt = NULL;
    int rc;
    switch (c->auth) {
    case LD_AUTH_JWT:
        rc = ld_jwt_build(c->private_key.value, c->private_key.len, c->client_id, c->username,
                          c->audience ? c->audience : c->login_url, (int64_t)time(NULL), &jwt);
        if (rc) {
            cp_error(s->ident, "could not sign the JWT assertion: the private key (%s) does not "
                               "load as an RSA key",
                     c->private_key.ref);
            return rc;
        }
        form_add(&form, s->easy, "grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer");
        form_add(&form, s->easy, "assertion", jwt);
        memset(jwt, 0, strlen(jwt));
        free(jwt);
        break;
    case LD_AUTH_CLIENT_CREDENTIALS:
        form_add(&form, s->easy, "grant_type", "client_credentials");
        form_add(&form, s->easy, "client_id", c->client_id);
        form_add(&form, s->easy, "client_secret", c->client_secret.value);
        break;
    default:
        form_add(&form, s->easy, "grant_type", "refresh_token");
        form_add(&form, s->easy, "refresh_token", c->refresh_token.value);
        form_add(&form, s->easy, "client_id", c->client_id);
        if (c->client_secret.value)
            form_add(&form, s->easy, "client_secret", c->client_secret.value);
        form_add(&form, s->easy, "format", "json");
        break;
    }
    char url[1024];
    size_t ul = strlen(c->login_url);
    snprintf(url, sizeof url, "%.*s/services/oauth2/token",
             (int)(ul && c->login_url[ul - 1] == '/' ? ul - 1 : ul), c->login_url);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
    h = curl_slist_append(h, "Accept: application/json");
    struct ld_resp r = {0};
    setup(s, "POST", url, h, form.data, form.len, &r);
    CURLcode cc = perform(s);
    cp_counter_inc(s->http_requests);
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(h);
    if (form.data)
        memset(form.data, 0, form.len);
    ld_buf_free(&form);
    if (cc != CURLE_OK) {
        ld_resp_free(&r);
        return classify_curl(s, cc);
    }
    rc = 0;
    json_t *j = r.status == 200 ? json_loadb(r.body.data ? r.body.data : "", r.body.len, 0, NULL)
                                : NULL;
    const char *tok = json_string_value(json_object_get(j, "access_token"));
    const char *inst = json_string_value(json_object_get(j, "instance_url"));
    if (tok && inst && strncasecmp(c->login_url, "https://", 8) == 0 &&
        strncasecmp(inst, "https://", 8) != 0) {
        /* Logged in over TLS but sent elsewhere in clear: the token (and every record)
         * would travel unencrypted.  Salesforce never does this; a proxy or an attacker might. */
        cp_error(s->ident, "could not log in: instance_url %.200s is not https although login_url "
                 "is: refusing to send the token there", inst);
        cp_counter_inc(s->http_errors);
        rc = CP_ERR_AUTH;
    } else if (tok && inst) {
        if (s->access_token) {
            memset(s->access_token, 0, strlen(s->access_token));
            free(s->access_token);
        }
        free(s->instance_url);
        s->access_token = strdup(tok);
        size_t il = strlen(inst);
        s->instance_url = strndup(inst, il && inst[il - 1] == '/' ? il - 1 : il);
        cp_counter_inc(s->token_refreshes);
        cp_info(s->ident, "logged in (%s), instance %s",
                c->auth == LD_AUTH_JWT ? "jwt" : c->auth == LD_AUTH_CLIENT_CREDENTIALS
                                                     ? "client_credentials"
                                                     : "refresh_token",
                s->instance_url);
    } else {
        parse_error(&r);
        cp_error(s->ident, "could not log in: HTTP %ld %s %s", r.status, r.error_code, r.message);
        cp_counter_inc(s->http_errors);
        if (r.status == 429 || strcmp(r.error_code, "rate_limit_exceeded") == 0)
            rc = CP_ERR_LIMIT;
        else if (r.status >= 500 || r.status == 0)
            rc = CP_ERR_HTTP;
        else
            rc = CP_ERR_AUTH;
    }
    json_decref(j);
    /* The response body holds the token: wipe it. */
    if (r.body.data)
        memset(r.body.data, 0, r.body.len);
    ld_resp_free(&r);
    return rc;
}

static int call_once(struct ld_sf *s, const char *method, const char *path, const char *ctype,
                     const char *body, size_t len, struct ld_resp *r)
{
    ld_resp_free(r);
    char url[2048];
    snprintf(url, sizeof url, "%s/services/data/v%s%s", s->instance_url, s->cfg->api_version,
             path);
    struct ld_buf auth = {0};
    ld_buf_printf(&auth, "Authorization: Bearer %s", s->access_token);
    struct curl_slist *h = curl_slist_append(NULL, auth.data);
    char ct[128];
    snprintf(ct, sizeof ct, "Content-Type: %s", ctype ? ctype : "application/json; charset=UTF-8");
    if (body)
        h = curl_slist_append(h, ct);
    h = curl_slist_append(h, "Accept: application/json");
    h = curl_slist_append(h, "Sforce-Call-Options: client=callpipe");
    s->limit_hdr[0] = '\0';
    setup(s, method, url, h, body, len, r);
    CURLcode cc = perform(s);
    cp_counter_inc(s->http_requests);
    curl_slist_free_all(h);
    memset(auth.data, 0, auth.len);
    ld_buf_free(&auth);
    if (cc != CURLE_OK)
        return classify_curl(s, cc);
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &r->status);
    int64_t used, max;
    if (s->limit_hdr[0] && ld_parse_limit_info(s->limit_hdr, &used, &max) == 0) {
        s->api_used = used;
        s->api_max = max;
        cp_gauge_set(s->api_used_g, (double)used);
        cp_gauge_set(s->api_max_g, (double)max);
    }
    if (r->status >= 200 && r->status < 300)
        return 0;
    parse_error(r);
    cp_counter_inc(s->http_errors);
    if (r->status == 401)
        return CP_ERR_AUTH;
    if (r->status == 429 || (r->status == 403 && strcmp(r->error_code, "REQUEST_LIMIT_EXCEEDED") == 0))
        return CP_ERR_LIMIT;
    if (r->status == 403)
        return CP_ERR_AUTH;
    if (r->status == 404)
        return CP_ERR_NOTFOUND;
    if (r->status >= 500 || r->status == 420)
        return CP_ERR_HTTP;
    return CP_ERR_STATE;
}

int ld_sf_call(struct ld_sf *s, const char *method, const char *path, const char *ctype,
               const char *body, size_t len, struct ld_resp *r)
{
    if (!s->access_token) {
        int rc = ld_sf_login(s);
        if (rc)
            return rc;
    }
    int rc = call_once(s, method, path, ctype, body, len, r);
    /* Only an expired or revoked session is worth a new token; one try. */
    if (rc == CP_ERR_AUTH && r->status == 401 &&
        (strcmp(r->error_code, "INVALID_SESSION_ID") == 0 || !r->error_code[0])) {
        cp_info(s->ident, "session expired (%s): getting a new token",
                r->error_code[0] ? r->error_code : "401");
        int lrc = ld_sf_login(s);
        if (lrc)
            return lrc;
        rc = call_once(s, method, path, ctype, body, len, r);
    }
    if (rc && rc != CP_ERR_NOTFOUND)
        cp_warn(s->ident, "%s %s: HTTP %ld %s %s", method, path, r->status, r->error_code,
                r->message);
    return rc;
}
