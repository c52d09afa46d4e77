/* auth.c - the emulator's OAuth token endpoint (JWT bearer, client credentials, refresh token). */
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sfemu.h"

static struct emu G;

static EVP_PKEY *load_public_key(const char *path, char *err, size_t errcap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errcap, "could not open public key %s", path);
        return NULL;
    }
    EVP_PKEY *k = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    if (!k) {
        rewind(f);
        X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
        if (x) {
            k = X509_get_pubkey(x);
            X509_free(x);
        }
    }
    fclose(f);
    ERR_clear_error();
    if (!k)
        snprintf(err, errcap, "could not read a PEM public key or certificate from %s", path);
    return k;
}

static int org_user(struct emu_org *o, const char *username)
{
    for (size_t i = 0; i < o->cfg->nusers; i++)
        if (strcasecmp(o->cfg->users[i].username, username) == 0)
            return (int)i;
    return -1;
}

static int org_app(struct emu_org *o, const char *key)
{
    for (size_t i = 0; i < o->cfg->napps; i++)
        if (strcmp(o->cfg->apps[i].consumer_key, key) == 0)
            return (int)i;
    return -1;
}

/* The org a token request is for: the one behind the port (My Domain), else by app and user. */
static struct emu_org *find_org(struct emu_org *here, const char *key, const char *username)
{
    if (here)
        return org_app(here, key) >= 0 ? here : NULL;
    struct emu_org *any = NULL;
    for (size_t i = 0; i < G.norgs; i++) {
        struct emu_org *o = &G.orgs[i];
        if (org_app(o, key) < 0)
            continue;
        if (!username || org_user(o, username) >= 0)
            return o;
        if (!any)
            any = o;
    }
    return any;
}

static const char *token_user_id(struct emu_org *o, int user) { return o->user_ids[user]; }

/* Mints an access token "<orgid>!<random>" and answers with Salesforce's token JSON. */
static void issue_token(struct cp_http_req *req, struct emu_org *o, int user, int app,
                        const char *refresh_token)
{
    unsigned char rnd[48];
    RAND_bytes(rnd, sizeof rnd);
    char *r = b64_encode(rnd, sizeof rnd);
    for (char *p = r; *p; p++)
        if (*p == '+' || *p == '/' || *p == '=')
            *p = 'x';
    struct sb tok = {0};
    sb_printf(&tok, "%.15s!AQEAQ%s", o->org_id, r);
    free(r);
    o->tokens = xrealloc(o->tokens, (o->ntokens + 1) * sizeof *o->tokens);
    o->tokens[o->ntokens].token = tok.p;
    o->tokens[o->ntokens].user = user;
    o->tokens[o->ntokens].expires_ms = wall_ms() + o->cfg->token_lifetime_ms;
    o->ntokens++;

    char idurl[256], issued[32];
    snprintf(idurl, sizeof idurl, "%s/id/%s/%s", G.login_url, o->org_id, token_user_id(o, user));
    int64_t now = wall_ms();
    snprintf(issued, sizeof issued, "%lld", (long long)now);
    /* signature = base64(HMAC-SHA256(client secret, id + issued_at)), as Salesforce documents. */
    const char *secret = o->cfg->apps[app].client_secret ? o->cfg->apps[app].client_secret : "";
    struct sb msg = {0};
    sb_str(&msg, idurl);
    sb_str(&msg, issued);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)msg.p, msg.len, mac, &maclen);
    free(msg.p);
    char *sig = b64_encode(mac, maclen);

    json_t *j = json_object();
    json_object_set_new(j, "access_token", json_string(tok.p));
    if (refresh_token)
        json_object_set_new(j, "refresh_token", json_string(refresh_token));
    json_object_set_new(j, "signature", json_string(sig));
    json_object_set_new(j, "scope", json_string("api"));
    json_object_set_new(j, "instance_url", json_string(o->url));
    json_object_set_new(j, "id", json_string(idurl));
    json_object_set_new(j, "token_type", json_string("Bearer"));
    json_object_set_new(j, "issued_at", json_string(issued));
    free(sig);
    cp_info(o->cfg->name, "token issued to %s", o->cfg->users[user].username);
    respond_json(req, 200, NULL, j);
}

static void grant_jwt(struct cp_http_req *req, struct emu_org *here, const char *assertion)
{
    const char *d1 = strchr(assertion, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d1 || !d2 || strchr(d2 + 1, '.')) {
        respond_oauth_error(req, 400, "invalid_grant", "invalid assertion");
        return;
    }
    size_t hlen, clen, slen;
    unsigned char *hdr = b64_decode(assertion, (size_t)(d1 - assertion), true, &hlen);
    unsigned char *cl = b64_decode(d1 + 1, (size_t)(d2 - d1 - 1), true, &clen);
    unsigned char *sig = b64_decode(d2 + 1, strlen(d2 + 1), true, &slen);
    json_t *jh = hdr ? json_loadb((char *)hdr, hlen, 0, NULL) : NULL;
    json_t *jc = cl ? json_loadb((char *)cl, clen, 0, NULL) : NULL;
    const char *alg = jh ? json_string_value(json_object_get(jh, "alg")) : NULL;
    const char *iss = jc ? json_string_value(json_object_get(jc, "iss")) : NULL;
    const char *sub = jc ? json_string_value(json_object_get(jc, "sub")) : NULL;
    if (!sub && jc)
        sub = json_string_value(json_object_get(jc, "prn")); /* legacy alias */
    json_t *aud = jc ? json_object_get(jc, "aud") : NULL;
    json_t *exp = jc ? json_object_get(jc, "exp") : NULL;
    struct emu_org *o = NULL;
    int app = -1, user = -1;

    if (!jh || !jc || !sig || !alg || strcmp(alg, "RS256") != 0) {
        respond_oauth_error(req, 400, "invalid_grant", "invalid assertion");
        goto out;
    }
    if (!iss || !(o = find_org(here, iss, sub)) || (app = org_app(o, iss)) < 0) {
        respond_oauth_error(req, 400, "invalid_client_id", "client identifier invalid");
        goto out;
    }
    EVP_PKEY *key = o->app_keys[app];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = key && ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
             EVP_DigestVerify(ctx, sig, slen, (const unsigned char *)assertion,
                              (size_t)(d2 - assertion)) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    if (!ok) {
        respond_oauth_error(req, 400, "invalid_grant", "invalid assertion");
        goto out;
    }
    bool aud_ok = false;
    if (json_is_string(aud)) {
        aud_ok = strcmp(json_string_value(aud), o->cfg->audience) == 0;
    } else if (json_is_array(aud)) {
        size_t i;
        json_t *v;
        json_array_foreach(aud, i, v) aud_ok |=
            json_is_string(v) && strcmp(json_string_value(v), o->cfg->audience) == 0;
    }
    if (!aud_ok) {
        respond_oauth_error(req, 400, "invalid_grant", "audience is invalid");
        goto out;
    }
    int64_t now = wall_ms();
    if (!json_is_number(exp)) {
        respond_oauth_error(req, 400, "invalid_grant", "invalid assertion");
        goto out;
    }
    int64_t exp_ms = (int64_t)(json_number_value(exp) * 1000.0);
    if (exp_ms + G.cfg.clock_skew_ms < now) {
        respond_oauth_error(req, 400, "invalid_grant", "expired authorization code");
        goto out;
    }
    if (exp_ms > now + G.cfg.jwt_max_future_ms + G.cfg.clock_skew_ms) {
        respond_oauth_error(req, 400, "invalid_grant", "invalid assertion");
        goto out;
    }
    if (!sub || (user = org_user(o, sub)) < 0) {
        respond_oauth_error(req, 400, "invalid_grant", "user hasn't approved this consumer");
        goto out;
    }
    issue_token(req, o, user, app, NULL);
out:
    json_decref(jh);
    json_decref(jc);
    free(hdr);
    free(cl);
    free(sig);
}

/* client_id/client_secret from the body or from HTTP Basic. Both malloc'd. */
static void client_auth(struct cp_http_req *req, char **id, char **secret)
{
    *id = form_get((const char *)req->body, "client_id");
    *secret = form_get((const char *)req->body, "client_secret");
    const char *a = cp_http_req_header(req, "Authorization");
    if (*id || !a || strncasecmp(a, "Basic ", 6) != 0)
        return;
    size_t n;
    unsigned char *dec = b64_decode(a + 6, strlen(a + 6), false, &n);
    char *colon = dec ? strchr((char *)dec, ':') : NULL;
    if (colon) {
        *colon = 0;
        *id = xstrdup((char *)dec);
        free(*secret);
        *secret = xstrdup(colon + 1);
    }
    free(dec);
}

static void grant_client_credentials(struct cp_http_req *req, struct emu_org *here)
{
    char *id, *secret;
    client_auth(req, &id, &secret);
    struct emu_org *o = id ? find_org(here, id, NULL) : NULL;
    int app = o ? org_app(o, id) : -1;
    if (!here && G.cfg.cc_on_login_host == 0) {
        /* Salesforce wants this flow on the org's My Domain (wording UNCONFIRMED). */
        respond_oauth_error(req, 400, "invalid_grant", "request not supported on this domain");
    } else if (app < 0) {
        respond_oauth_error(req, 400, "invalid_client_id", "client identifier invalid");
    } else if (!secret || !o->cfg->apps[app].client_secret ||
               strcmp(secret, o->cfg->apps[app].client_secret) != 0) {
        respond_oauth_error(req, 400, "invalid_client", "invalid client credentials");
    } else {
        const char *ru = o->cfg->apps[app].run_as;
        int user = ru ? org_user(o, ru) : 0;
        if (user < 0 || o->cfg->nusers == 0)
            respond_oauth_error(req, 400, "invalid_grant", "no client credentials user enabled");
        else
            issue_token(req, o, user, app, NULL);
    }
    free(id);
    free(secret);
}

static void grant_refresh(struct cp_http_req *req, struct emu_org *here)
{
    char *id, *secret;
    client_auth(req, &id, &secret);
    char *rt = form_get((const char *)req->body, "refresh_token");
    struct emu_org *o = id ? find_org(here, id, NULL) : NULL;
    int app = o ? org_app(o, id) : -1;
    if (app < 0) {
        respond_oauth_error(req, 400, "invalid_client_id", "client identifier invalid");
        goto out;
    }
    if (secret && (!o->cfg->apps[app].client_secret ||
                   strcmp(secret, o->cfg->apps[app].client_secret) != 0)) {
        respond_oauth_error(req, 400, "invalid_client", "invalid client credentials");
        goto out;
    }
    /* The refresh token may belong to any org that knows this app (login host case). */
    for (size_t k = 0; rt && k < G.norgs; k++) {
        struct emu_org *oo = here ? here : &G.orgs[k];
        for (size_t i = 0; i < oo->cfg->nrefresh_tokens; i++) {
            struct emu_rt_cfg *r = &oo->cfg->refresh_tokens[i];
            if (strcmp(r->token, rt) != 0 || strcmp(r->consumer_key, id) != 0)
                continue;
            int a = org_app(oo, id);
            int user = org_user(oo, r->username);
            if (a >= 0 && user >= 0) {
                issue_token(req, oo, user, a, NULL);
                goto out;
            }
        }
        if (here)
            break;
    }
    respond_oauth_error(req, 400, "invalid_grant", "expired access/refresh token");
out:
    free(id);
    free(secret);
    free(rt);
}

static void handle_token(struct cp_http_req *req, struct emu_org *here)
{
    if (strcmp(req->method, "POST") != 0) {
        respond_oauth_error(req, 400, "invalid_request", "must use HTTP POST");
        return;
    }
    char *gt = form_get((const char *)req->body, "grant_type");
    if (!gt) {
        respond_oauth_error(req, 400, "unsupported_grant_type", "grant type not supported");
    } else if (strcmp(gt, "urn:ietf:params:oauth:grant-type:jwt-bearer") == 0) {
        char *as = form_get((const char *)req->body, "assertion");
        if (!as)
            respond_oauth_error(req, 400, "invalid_grant", "invalid assertion");
        else
            grant_jwt(req, here, as);
        free(as);
    } else if (strcmp(gt, "client_credentials") == 0) {
        grant_client_credentials(req, here);
    } else if (strcmp(gt, "refresh_token") == 0) {
        grant_refresh(req, here);
    } else {
        respond_oauth_error(req, 400, "unsupported_grant_type", "grant type not supported");
    }
    free(gt);
}

/* Bearer (or the older "OAuth") token of a request; the user index or -1. */
static int check_session(struct cp_http_req *req, struct emu_org *o)
{
    const char *a = cp_http_req_header(req, "Authorization");
    if (!a)
        return -1;
    if (strncasecmp(a, "Bearer ", 7) == 0)
        a += 7;
    else if (strncasecmp(a, "OAuth ", 6) == 0)
        a += 6;
    else
        return -1;
    int64_t now = wall_ms();
    for (size_t i = 0; i < o->ntokens; i++)
        if (strcmp(o->tokens[i].token, a) == 0)
            return o->tokens[i].expires_ms > now ? o->tokens[i].user : -1;
    return -1;
}
