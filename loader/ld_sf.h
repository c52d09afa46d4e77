/* ld_sf.h - one Salesforce org session: OAuth token, REST/Bulk API 2.0 calls over libcurl's multi interface. */
#ifndef LD_SF_H
#define LD_SF_H

#include <curl/curl.h>
#include <signal.h>

#include "cp_metrics.h"
#include "loader.h"

struct ld_resp {
    long status;
    struct ld_buf body;
    char error_code[64]; /* errorCode of a JSON error array, or the OAuth "error" */
    char message[256];   /* its message (never contains a secret: Salesforce's text) */
};

struct ld_sf {
    const struct ld_org_cfg *cfg;
    CURLM *multi;
    CURL *easy;
    long timeout_ms;
    char *access_token; /* never logged */
    char *instance_url;
    char ident[96];     /* "loader org=NAME" */
    int64_t api_used, api_max; /* last Sforce-Limit-Info */
    char limit_hdr[256];
    char curl_err[CURL_ERROR_SIZE]; /* libcurl's detail of the last transport failure */
    struct cp_counter *token_refreshes, *http_requests, *http_errors;
    struct cp_gauge *api_used_g, *api_max_g;
};

int ld_sf_init(struct ld_sf *s, const struct ld_org_cfg *cfg, long timeout_ms);
void ld_sf_close(struct ld_sf *s);

/* Gets a new access token with the configured flow. 0, CP_ERR_AUTH, CP_ERR_LIMIT, CP_ERR_HTTP. */
int ld_sf_login(struct ld_sf *s);

/*
 * One REST call to instance_url + path with the bearer token.  A 401 INVALID_SESSION_ID gets a
 * new token once and the call is repeated.  Returns 0 for 2xx; otherwise
 *   CP_ERR_LIMIT     403 REQUEST_LIMIT_EXCEEDED, 429 (back off, report)
 *   CP_ERR_HTTP      5xx, 420, transport failures (retriable)
 *   CP_ERR_AUTH      401 after the refresh, 403 other than limits
 *   CP_ERR_NOTFOUND  404
 *   CP_ERR_STATE     400 (bad request, illegal job state transition)
 *   CP_ERR_TLS       certificate problems
 * r->status and the error fields say more.  Sforce-Limit-Info updates api_used/api_max.
 */
int ld_sf_call(struct ld_sf *s, const char *method, const char *path, const char *ctype,
               const char *body, size_t len, struct ld_resp *r);

void ld_resp_free(struct ld_resp *r);

/* True when usage is at or above the configured share of the daily allocation. */
bool ld_sf_over_share(const struct ld_sf *s);

#endif
