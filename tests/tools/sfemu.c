/* sfemu.c - the Salesforce emulator: OAuth token endpoint, Bulk API 2.0 ingest, describe, faults. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cp_config.h"
#include "cp_http.h"
#include "cp_log.h"

/* One binary, several readable pieces (see tests/sfemu/README.md for the reading order). */
#include "../sfemu/sfemu.h"
#include "../sfemu/util.c"
#include "../sfemu/schema.c"
#include "../sfemu/csv.c"
#include "../sfemu/auth.c"
#include "../sfemu/faults.c"
#include "../sfemu/jobs.c"
#include "../sfemu/admin.c"

/* ---- configuration table ---------------------------------------------------------------- */

static const char *const phone_names[] = {"from_to", "contact_info", NULL};
static const char *const upload_modes[] = {"reject", "append", NULL};
static const char *const bom_modes[] = {"keep", "strip", NULL};
static const char *const order_modes[] = {"shuffled", "input", NULL};
static const char *const bool_modes[] = {"strict", "lenient", NULL};
static const char *const cc_modes[] = {"reject", "allow", NULL};

static const struct cp_config_field user_fields[] = {
    {CP_CFG_AT(struct emu_user_cfg, username), CP_CFG_STRING, .flags = CP_CFG_REQUIRED,
     .help = "Salesforce username (the JWT sub)"},
};
static const struct cp_config_table user_table = CP_CFG_TABLE(struct emu_user_cfg, user_fields);

static const struct cp_config_field app_fields[] = {
    {CP_CFG_AT(struct emu_app_cfg, consumer_key), CP_CFG_STRING, .flags = CP_CFG_REQUIRED,
     .help = "consumer key: JWT iss, client_id"},
    {CP_CFG_AT(struct emu_app_cfg, client_secret), CP_CFG_STRING,
     .help = "client secret (test data) for client credentials and refresh tokens"},
    {CP_CFG_AT(struct emu_app_cfg, public_key_file), CP_CFG_STRING,
     .help = "PEM public key or certificate verifying RS256 JWTs"},
    {CP_CFG_AT(struct emu_app_cfg, run_as), CP_CFG_STRING,
     .help = "client credentials run-as username (default: first user)"},
};
static const struct cp_config_table app_table = CP_CFG_TABLE(struct emu_app_cfg, app_fields);

static const struct cp_config_field rt_fields[] = {
    {CP_CFG_AT(struct emu_rt_cfg, token), CP_CFG_STRING, .flags = CP_CFG_REQUIRED,
     .help = "refresh token value"},
    {CP_CFG_AT(struct emu_rt_cfg, username), CP_CFG_STRING, .flags = CP_CFG_REQUIRED,
     .help = "user it logs in"},
    {CP_CFG_AT(struct emu_rt_cfg, consumer_key), CP_CFG_STRING, .flags = CP_CFG_REQUIRED,
     .help = "app it was issued to"},
};
static const struct cp_config_table rt_table = CP_CFG_TABLE(struct emu_rt_cfg, rt_fields);

static const struct cp_config_field cfield_fields[] = {
    {CP_CFG_AT(struct emu_cfield_cfg, object), CP_CFG_STRING, .flags = CP_CFG_REQUIRED,
     .help = "VoiceCall or Task"},
    {CP_CFG_AT(struct emu_cfield_cfg, name), CP_CFG_STRING, .flags = CP_CFG_REQUIRED,
     .help = "API name, e.g. Callpipe_Id__c"},
    {CP_CFG_AT(struct emu_cfield_cfg, label), CP_CFG_STRING, .help = "label (default: name)"},
    {CP_CFG_AT(struct emu_cfield_cfg, type), CP_CFG_ENUM, .enum_names = ftype_names,
     .dflt = "string", .help = "field type"},
    {CP_CFG_AT(struct emu_cfield_cfg, length), CP_CFG_INT, .dflt = "255", .min = 1,
     .max = 131072, .help = "max characters for text types"},
    {CP_CFG_AT(struct emu_cfield_cfg, external_id), CP_CFG_BOOL, .dflt = "false",
     .help = "External ID (usable for upsert)"},
    {CP_CFG_AT(struct emu_cfield_cfg, unique), CP_CFG_BOOL, .dflt = "false",
     .help = "unique: inserts of an existing value fail with DUPLICATE_VALUE"},
    {CP_CFG_AT(struct emu_cfield_cfg, required), CP_CFG_BOOL, .dflt = "false",
     .help = "not nillable: required on insert"},
    {CP_CFG_AT(struct emu_cfield_cfg, updateable), CP_CFG_BOOL, .dflt = "true",
     .help = "updateable"},
    {CP_CFG_AT(struct emu_cfield_cfg, values), CP_CFG_STRING,
     .help = "picklist values, comma separated"},
    {CP_CFG_AT(struct emu_cfield_cfg, restricted), CP_CFG_BOOL, .dflt = "false",
     .help = "restricted picklist"},
};
static const struct cp_config_table cfield_table =
    CP_CFG_TABLE(struct emu_cfield_cfg, cfield_fields);

static const struct cp_config_field pick_fields[] = {
    {CP_CFG_AT(struct emu_pick_cfg, object), CP_CFG_STRING, .flags = CP_CFG_REQUIRED,
     .help = "VoiceCall or Task"},
    {CP_CFG_AT(struct emu_pick_cfg, field), CP_CFG_STRING, .flags = CP_CFG_REQUIRED,
     .help = "picklist field"},
    {CP_CFG_AT(struct emu_pick_cfg, values), CP_CFG_STRING, .flags = CP_CFG_REQUIRED,
     .help = "this org's values, comma separated"},
};
static const struct cp_config_table pick_table = CP_CFG_TABLE(struct emu_pick_cfg, pick_fields);

static const struct cp_config_field fault_fields[] = {
    {CP_CFG_AT(struct emu_fault_cfg, kind), CP_CFG_ENUM, .enum_names = fault_kinds,
     .flags = CP_CFG_REQUIRED, .help = "http, delay, row, job_fail or slow"},
    {CP_CFG_AT(struct emu_fault_cfg, org), CP_CFG_STRING, .help = "only this org"},
    {CP_CFG_AT(struct emu_fault_cfg, method), CP_CFG_STRING, .help = "http/delay: only this method"},
    {CP_CFG_AT(struct emu_fault_cfg, path), CP_CFG_STRING,
     .help = "http/delay: only paths matching this extended regex"},
    {CP_CFG_AT(struct emu_fault_cfg, status), CP_CFG_INT, .dflt = "0", .help = "http: status"},
    {CP_CFG_AT(struct emu_fault_cfg, body), CP_CFG_STRING,
     .help = "http: body (default: Salesforce's for the status)"},
    {CP_CFG_AT(struct emu_fault_cfg, content_type), CP_CFG_STRING, .help = "http: Content-Type"},
    {CP_CFG_AT(struct emu_fault_cfg, retry_after), CP_CFG_INT, .dflt = "0",
     .help = "http: Retry-After seconds (0 = none)"},
    {CP_CFG_AT(struct emu_fault_cfg, count), CP_CFG_INT, .dflt = "1", .min = 0,
     .max = INT64_MAX, .help = "uses (requests, rows, jobs); 0 = unlimited"},
    {CP_CFG_AT(struct emu_fault_cfg, delay_ms), CP_CFG_INT, .dflt = "0",
     .help = "delay: answer this much later"},
    {CP_CFG_AT(struct emu_fault_cfg, object), CP_CFG_STRING, .help = "row/job: only this object"},
    {CP_CFG_AT(struct emu_fault_cfg, code), CP_CFG_STRING,
     .help = "row: error code (default UNABLE_TO_LOCK_ROW)"},
    {CP_CFG_AT(struct emu_fault_cfg, message), CP_CFG_STRING,
     .help = "row: error message; job_fail: errorMessage"},
    {CP_CFG_AT(struct emu_fault_cfg, field), CP_CFG_STRING, .help = "row: CSV column to match"},
    {CP_CFG_AT(struct emu_fault_cfg, value), CP_CFG_STRING,
     .help = "row: value the column must have"},
    {CP_CFG_AT(struct emu_fault_cfg, every), CP_CFG_INT, .dflt = "0",
     .help = "row: every k-th matching row"},
    {CP_CFG_AT(struct emu_fault_cfg, percent), CP_CFG_INT, .dflt = "0", .min = 0, .max = 100,
     .help = "row: this share of matching rows (seeded)"},
    {CP_CFG_AT(struct emu_fault_cfg, seed), CP_CFG_INT, .dflt = "1", .help = "row: percent seed"},
    {CP_CFG_AT(struct emu_fault_cfg, after_rows), CP_CFG_INT, .dflt = "0",
     .help = "job_fail: rows processed before the job fails"},
    {CP_CFG_AT(struct emu_fault_cfg, rows_per_s), CP_CFG_INT, .dflt = "0",
     .help = "slow: processing speed"},
    {CP_CFG_AT(struct emu_fault_cfg, queue_delay_ms), CP_CFG_INT, .dflt = "0",
     .help = "slow: time in UploadComplete"},
};
static const struct cp_config_table fault_table = CP_CFG_TABLE(struct emu_fault_cfg, fault_fields);

static const struct cp_config_field org_fields[] = {
    {CP_CFG_AT(struct emu_org_cfg, name), CP_CFG_STRING, .flags = CP_CFG_REQUIRED,
     .help = "org name (admin paths, logs)"},
    {CP_CFG_AT(struct emu_org_cfg, org_id), CP_CFG_STRING,
     .help = "18-character org id (default: generated 00D...)"},
    {CP_CFG_AT(struct emu_org_cfg, port), CP_CFG_INT, .dflt = "0", .min = 0, .max = 65535,
     .help = "port of this org's instance (My Domain); 0 = ephemeral"},
    {CP_CFG_AT(struct emu_org_cfg, audience), CP_CFG_STRING,
     .dflt = "https://login.salesforce.com", .help = "JWT aud the org accepts"},
    {CP_CFG_AT(struct emu_org_cfg, api_min), CP_CFG_STRING, .dflt = "41.0",
     .help = "oldest API version served (older: 410)"},
    {CP_CFG_AT(struct emu_org_cfg, api_max), CP_CFG_STRING, .dflt = "66.0",
     .help = "newest API version served (newer: 404)"},
    {CP_CFG_AT(struct emu_org_cfg, daily_api_quota), CP_CFG_INT, .dflt = "100000", .min = 0,
     .max = INT64_MAX, .help = "daily API requests before 403 REQUEST_LIMIT_EXCEEDED"},
    {CP_CFG_AT_KEY("token_lifetime", struct emu_org_cfg, token_lifetime_ms), CP_CFG_DURATION,
     .dflt = "2h", .help = "access token lifetime"},
    {CP_CFG_AT(struct emu_org_cfg, phone_fields), CP_CFG_ENUM, .enum_names = phone_names,
     .dflt = "from_to",
     .help = "VoiceCall phone field names: FromPhoneNumber/ToPhoneNumber or the API 62.0 "
             "RecipientContactInfo/CallerContactInfo (UNCONFIRMED)"},
    {CP_CFG_AT(struct emu_org_cfg, voicecall_createable), CP_CFG_BOOL, .dflt = "true",
     .help = "VoiceCall createable (older orgs: false)"},
    {CP_CFG_LIST_AT(struct emu_org_cfg, users, nusers), CP_CFG_LIST, .sub = &user_table,
     .min = 1, .max = 1000, .help = "users"},
    {CP_CFG_LIST_AT(struct emu_org_cfg, apps, napps), CP_CFG_LIST, .sub = &app_table,
     .help = "connected apps"},
    {CP_CFG_LIST_AT(struct emu_org_cfg, refresh_tokens, nrefresh_tokens), CP_CFG_LIST,
     .sub = &rt_table, .help = "valid refresh tokens"},
    {CP_CFG_LIST_AT(struct emu_org_cfg, custom_fields, ncustom_fields), CP_CFG_LIST,
     .sub = &cfield_table, .help = "custom fields of VoiceCall / Task"},
    {CP_CFG_LIST_AT(struct emu_org_cfg, picklists, npicklists), CP_CFG_LIST, .sub = &pick_table,
     .help = "per-org picklist values of standard fields"},
};
static const struct cp_config_table org_table = CP_CFG_TABLE(struct emu_org_cfg, org_fields);

static const struct cp_config_field emu_fields[] = {
    {CP_CFG_AT(struct emu_cfg, host), CP_CFG_STRING, .dflt = "127.0.0.1",
     .help = "listen address (numeric)"},
    {CP_CFG_AT(struct emu_cfg, advertise_host), CP_CFG_STRING,
     .help = "host used in instance_url / id URLs (default: host)"},
    {CP_CFG_AT(struct emu_cfg, port), CP_CFG_INT, .dflt = "0", .min = 0, .max = 65535,
     .help = "login host port (token endpoint + /__emu admin); 0 = ephemeral"},
    {CP_CFG_AT(struct emu_cfg, log_level), CP_CFG_STRING, .dflt = "info", .help = "log level"},
    {CP_CFG_AT(struct emu_cfg, rows_per_s), CP_CFG_INT, .dflt = "50000", .min = 0,
     .max = INT64_MAX, .help = "processing speed per job; 0 = all at once"},
    {CP_CFG_AT_KEY("queue_delay", struct emu_cfg, queue_delay_ms), CP_CFG_DURATION,
     .dflt = "200ms", .help = "time a closed job stays UploadComplete"},
    {CP_CFG_AT_KEY("tick", struct emu_cfg, tick_ms), CP_CFG_DURATION, .dflt = "20ms",
     .help = "processing timer period"},
    {CP_CFG_AT(struct emu_cfg, list_page_size), CP_CFG_INT, .dflt = "1000", .min = 1,
     .max = 100000, .help = "jobs per page of GET /jobs/ingest"},
    {CP_CFG_AT_KEY("max_upload", struct emu_cfg, max_upload_bytes), CP_CFG_SIZE, .dflt = "100MB",
     .help = "raw CSV bytes per job (150 MB base64)"},
    {CP_CFG_AT_KEY("jwt_max_future", struct emu_cfg, jwt_max_future_ms), CP_CFG_DURATION,
     .dflt = "5m", .help = "latest JWT exp accepted, from now"},
    {CP_CFG_AT_KEY("clock_skew", struct emu_cfg, clock_skew_ms), CP_CFG_DURATION, .dflt = "0",
     .help = "tolerance on JWT exp"},
    {CP_CFG_AT(struct emu_cfg, second_upload), CP_CFG_ENUM, .enum_names = upload_modes,
     .dflt = "reject", .help = "a second PUT to an Open job: 400 or append (UNCONFIRMED)"},
    {CP_CFG_AT(struct emu_cfg, bom), CP_CFG_ENUM, .enum_names = bom_modes, .dflt = "keep",
     .help = "UTF-8 BOM: part of the first header name (Salesforce) or stripped"},
    {CP_CFG_AT(struct emu_cfg, result_order), CP_CFG_ENUM, .enum_names = order_modes,
     .dflt = "shuffled", .help = "result row order (Salesforce does not keep input order)"},
    {CP_CFG_AT(struct emu_cfg, booleans), CP_CFG_ENUM, .enum_names = bool_modes,
     .dflt = "strict", .help = "boolean cells: true/false only, or also 1/0/yes/no (UNCONFIRMED)"},
    {CP_CFG_AT(struct emu_cfg, cc_on_login_host), CP_CFG_ENUM, .enum_names = cc_modes,
     .dflt = "reject", .help = "client credentials on the login host (UNCONFIRMED)"},
    {CP_CFG_AT(struct emu_cfg, require_final_newline), CP_CFG_BOOL, .dflt = "false",
     .help = "CSV must end with a line ending (UNCONFIRMED)"},
    {CP_CFG_AT(struct emu_cfg, strict_quoted_newlines), CP_CFG_BOOL, .dflt = "false",
     .help = "line breaks inside quotes must match lineEnding too (UNCONFIRMED)"},
    {CP_CFG_AT(struct emu_cfg, createonly_update_error), CP_CFG_BOOL, .dflt = "true",
     .help = "update/upsert of a non-updateable field fails the row (UNCONFIRMED)"},
    {CP_CFG_AT(struct emu_cfg, gzip_upload), CP_CFG_BOOL, .dflt = "true",
     .help = "accept Content-Encoding: gzip uploads (UNCONFIRMED)"},
    {CP_CFG_LIST_AT(struct emu_cfg, orgs, norgs), CP_CFG_LIST, .sub = &org_table, .min = 1,
     .max = 100, .help = "orgs"},
    {CP_CFG_LIST_AT(struct emu_cfg, faults, nfaults), CP_CFG_LIST, .sub = &fault_table,
     .help = "faults active from the start (and after /__emu/reset)"},
};
static const struct cp_config_table emu_table = {
    .name = "sfemu",
    .size = sizeof(struct emu_cfg),
    .fields = emu_fields,
    .nfields = CP_ARRAY_LEN(emu_fields),
    .env_prefix = "SFEMU",
};

/* ---- request routing ---------------------------------------------------------------------- */

static const char *release_label(int v, char buf[32])
{
    /* 66.0 = Spring '26; three releases a year. */
    int d = v - 66, k = d >= 0 ? d / 3 : -((-d + 2) / 3), r = d - 3 * k;
    static const char *const season[] = {"Spring", "Summer", "Winter"};
    snprintf(buf, 32, "%s '%02d", season[r], (26 + k + (r == 2)) % 100);
    return buf;
}

static void handle_versions(struct cp_http_req *req, struct emu_org *o)
{
    int lo = o ? o->api_min : 410, hi = o ? o->api_max : 660;
    json_t *a = json_array();
    for (int v = (lo + 9) / 10; v * 10 <= hi; v++) {
        char ver[16], url[48], lab[32];
        snprintf(ver, sizeof ver, "%d.0", v);
        snprintf(url, sizeof url, "/services/data/v%d.0", v);
        json_array_append_new(a, json_pack("{s:s,s:s,s:s}", "label", release_label(v, lab), "url",
                                           url, "version", ver));
    }
    respond_json(req, 200, NULL, a);
}

static void handle_limits(struct cp_http_req *req, struct emu_org *o, const char *limit)
{
    json_t *j = json_object();
    json_object_set_new(j, "DailyApiRequests",
                        json_pack("{s:I,s:I}", "Max", (json_int_t)o->api_quota, "Remaining",
                                  (json_int_t)(o->api_quota > o->api_used
                                                   ? o->api_quota - o->api_used
                                                   : 0)));
    size_t batches = 0;
    for (size_t i = 0; i < o->njobs; i++)
        batches += (o->jobs[i]->csv.nrows + 9999) / 10000;
    json_object_set_new(j, "DailyBulkApiBatches",
                        json_pack("{s:i,s:I}", "Max", 15000, "Remaining",
                                  (json_int_t)(batches < 15000 ? 15000 - batches : 0)));
    json_object_set_new(j, "DailyBulkV2QueryJobs",
                        json_pack("{s:i,s:i}", "Max", 10000, "Remaining", 10000));
    respond_json(req, 200, limit, j);
}

static void handle_data(struct cp_http_req *req, struct emu_org *o)
{
    const char *seg = req->path + strlen("/services/data/v");
    const char *sl = strchr(seg, '/');
    size_t seglen = sl ? (size_t)(sl - seg) : strlen(seg);
    int ver = parse_version(seg, seglen);
    const char *rest = seg + seglen;
    if (ver < 0 || ver > o->api_max) {
        respond_error(req, 404, NULL, "NOT_FOUND", "The requested resource does not exist");
        return;
    }
    if (ver < o->api_min) {
        respond_error(req, 410, NULL, "API_DISABLED_FOR_ORG",
                      "This API version (%d.%d) is retired and no longer available", ver / 10,
                      ver % 10);
        return;
    }
    int user = check_session(req, o);
    if (user < 0) {
        respond_error(req, 401, NULL, "INVALID_SESSION_ID", "Session expired or invalid");
        return;
    }
    char limit[64];
    if (o->api_used >= o->api_quota) {
        snprintf(limit, sizeof limit, "api-usage=%lld/%lld", (long long)o->api_used,
                 (long long)o->api_quota);
        respond_error(req, 403, limit, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.");
        return;
    }
    o->api_used++;
    snprintf(limit, sizeof limit, "api-usage=%lld/%lld", (long long)o->api_used,
             (long long)o->api_quota);
    const char *m = req->method;
    if (strcmp(rest, "") == 0 || strcmp(rest, "/") == 0) {
        char b[64];
        json_t *j = json_object();
        snprintf(b, sizeof b, "/services/data/v%d.%d/jobs", ver / 10, ver % 10);
        json_object_set_new(j, "jobs", json_string(b));
        snprintf(b, sizeof b, "/services/data/v%d.%d/limits", ver / 10, ver % 10);
        json_object_set_new(j, "limits", json_string(b));
        snprintf(b, sizeof b, "/services/data/v%d.%d/sobjects", ver / 10, ver % 10);
        json_object_set_new(j, "sobjects", json_string(b));
        respond_json(req, 200, limit, j);
    } else if (strcmp(rest, "/limits") == 0 || strcmp(rest, "/limits/") == 0) {
        handle_limits(req, o, limit);
    } else if (strncmp(rest, "/sobjects/", 10) == 0) {
        const char *name = rest + 10;
        const char *s2 = strchr(name, '/');
        char obj[64];
        snprintf(obj, sizeof obj, "%.*s", s2 ? (int)(s2 - name) : (int)strlen(name), name);
        struct emu_object *ob = org_object(o, obj);
        if (!ob || !s2 || (strcmp(s2, "/describe") != 0 && strcmp(s2, "/describe/") != 0)) {
            respond_error(req, 404, limit, "NOT_FOUND", "The requested resource does not exist");
        } else if (strcmp(m, "GET") != 0) {
            respond_error(req, 405, limit, "METHOD_NOT_ALLOWED",
                          "HTTP Method '%s' not allowed. Allowed are GET,HEAD", m);
        } else {
            respond_json(req, 200, limit, describe_object(ob));
        }
    } else if (strncmp(rest, "/jobs/ingest", 12) == 0 && (rest[12] == 0 || rest[12] == '/')) {
        handle_ingest(req, o, user, ver, rest + 12, limit);
    } else {
        respond_error(req, 404, limit, "NOT_FOUND", "The requested resource does not exist");
    }
}

static void dispatch(struct cp_http_req *req, struct emu_org *o)
{
    struct emu_fault *f = fault_match_request(FK_HTTP, req, o);
    if (f) {
        cp_info(o ? o->cfg->name : "login", "fault %d: %s %s -> %lld", f->id, req->method,
                req->path, (long long)f->c.status);
        fault_respond(req, f, NULL);
        return;
    }
    const char *p = req->path;
    if (strcmp(p, "/services/oauth2/token") == 0)
        handle_token(req, o);
    else if (strcmp(p, "/services/data") == 0 || strcmp(p, "/services/data/") == 0)
        handle_versions(req, o);
    else if (o && strncmp(p, "/services/data/v", 16) == 0)
        handle_data(req, o);
    else
        respond_error(req, 404, NULL, "NOT_FOUND", "The requested resource does not exist");
}

struct delayed {
    uv_timer_t timer;
    struct cp_http_req *req;
    struct emu_org *org;
};

static void on_delayed_closed(uv_handle_t *h) { free(h->data); }

static void on_delayed(uv_timer_t *t)
{
    struct delayed *d = t->data;
    dispatch(d->req, d->org);
    uv_close((uv_handle_t *)&d->timer, on_delayed_closed);
}

static void on_request(struct cp_http_req *req, void *arg)
{
    struct emu_org *o = arg;
    if (strncmp(req->path, "/__emu/", 7) == 0) {
        handle_admin(req);
        return;
    }
    struct emu_fault *f = fault_match_request(FK_DELAY, req, o);
    if (f) {
        struct delayed *d = xmalloc(sizeof *d);
        d->req = req;
        d->org = o;
        uv_timer_init(G.loop, &d->timer);
        d->timer.data = d;
        uv_timer_start(&d->timer, on_delayed, (uint64_t)f->c.delay_ms, 0);
        return;
    }
    dispatch(req, o);
}

/* ---- start-up ----------------------------------------------------------------------------- */

static int org_init(struct emu_org *o, struct emu_org_cfg *oc, int idx, char *err, size_t errcap)
{
    memset(o, 0, sizeof *o);
    o->cfg = oc;
    o->idx = idx;
    if (oc->org_id) {
        if (strlen(oc->org_id) != 18) {
            snprintf(err, errcap, "org %s: org_id must have 18 characters", oc->name);
            return -1;
        }
        snprintf(o->org_id, sizeof o->org_id, "%s", oc->org_id);
    } else {
        make_sfid("00D", (uint64_t)idx + 1, o->org_id);
    }
    o->api_min = parse_version(oc->api_min, strlen(oc->api_min));
    o->api_max = parse_version(oc->api_max, strlen(oc->api_max));
    if (o->api_min < 0 || o->api_max < o->api_min) {
        snprintf(err, errcap, "org %s: bad api_min/api_max", oc->name);
        return -1;
    }
    o->user_ids = xmalloc((oc->nusers + 1) * sizeof *o->user_ids);
    for (size_t i = 0; i < oc->nusers; i++) {
        o->user_ids[i] = xmalloc(19);
        make_sfid("005", (uint64_t)idx * 10000 + i + 1, o->user_ids[i]);
    }
    o->app_keys = xmalloc((oc->napps + 1) * sizeof *o->app_keys);
    for (size_t i = 0; i < oc->napps; i++) {
        o->app_keys[i] = NULL;
        if (oc->apps[i].public_key_file) {
            o->app_keys[i] = load_public_key(oc->apps[i].public_key_file, err, errcap);
            if (!o->app_keys[i])
                return -1;
        }
    }
    for (size_t i = 0; i < oc->ncustom_fields; i++) {
        if (strcasecmp(oc->custom_fields[i].object, "VoiceCall") != 0 &&
            strcasecmp(oc->custom_fields[i].object, "Task") != 0) {
            snprintf(err, errcap, "org %s: custom field %s: object must be VoiceCall or Task",
                     oc->name, oc->custom_fields[i].name);
            return -1;
        }
    }
    object_build(&o->objects[0], oc, 0);
    object_build(&o->objects[1], oc, 1);
    o->api_quota = oc->daily_api_quota;
    return 0;
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s;
    cp_info(NULL, "received %s: exiting", strsignal(signum));
    fflush(stdout);
    exit(0);
}

static const char usage[] =
    "usage: sfemu -c CONFIG.yaml [--check-config] [--config-doc]\n"
    "  The Salesforce emulator (see tests/sfemu/README.md). Prints on stdout:\n"
    "    login http://HOST:PORT          token endpoint (login host) and /__emu admin\n"
    "    org NAME http://HOST:PORT       one line per org: its instance_url (My Domain)\n"
    "    ready\n"
    "  SIGINT / SIGTERM exit 0.\n";

int main(int argc, char **argv)
{
    const char *path = NULL;
    bool check = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "--check-config") == 0) {
            check = true;
        } else if (strcmp(argv[i], "--config-doc") == 0) {
            cp_config_doc_markdown(&emu_table, stdout);
            return 0;
        } else {
            fputs(usage, stderr);
            return 2;
        }
    }
    if (!path) {
        fputs(usage, stderr);
        return 2;
    }
    if (check)
        return cp_config_check_main(&emu_table, path, stdout, stderr);
    cp_log_set_service("sfemu");
    char err[512];
    if (cp_config_load(&emu_table, path, &G.cfg, err, sizeof err) != 0) {
        fprintf(stderr, "sfemu: %s\n", err);
        return 2;
    }
    enum cp_log_level lvl;
    if (cp_log_level_parse(G.cfg.log_level, &lvl) == 0)
        cp_log_set_level(lvl);
    signal(SIGPIPE, SIG_IGN);
    G.loop = uv_default_loop();
    G.seed = 0x5f3759df;
    const char *adv = G.cfg.advertise_host ? G.cfg.advertise_host : G.cfg.host;
    struct cp_http_config hc;
    memset(&hc, 0, sizeof hc);
    hc.limits.max_body_bytes = (size_t)G.cfg.max_upload_bytes + (1u << 20);
    hc.limits.max_header_bytes = 16384;
    hc.ident = "sfemu:http";
    hc.idle_timeout_ms = 300000;

    G.login_srv = cp_http_server_create(G.loop, &hc, on_request, NULL);
    if (!G.login_srv || cp_http_server_listen(G.login_srv, G.cfg.host, (int)G.cfg.port) != 0) {
        fprintf(stderr, "sfemu: could not listen on %s:%lld\n", G.cfg.host, (long long)G.cfg.port);
        return 1;
    }
    G.login_port = cp_http_server_port(G.login_srv);
    snprintf(G.login_url, sizeof G.login_url, "http://%s:%d", adv, G.login_port);

    G.norgs = G.cfg.norgs;
    G.orgs = xmalloc(G.norgs * sizeof *G.orgs);
    for (size_t i = 0; i < G.norgs; i++) {
        struct emu_org *o = &G.orgs[i];
        if (org_init(o, &G.cfg.orgs[i], (int)i, err, sizeof err) != 0) {
            fprintf(stderr, "sfemu: %s\n", err);
            return 2;
        }
        o->srv = cp_http_server_create(G.loop, &hc, on_request, o);
        if (!o->srv ||
            cp_http_server_listen(o->srv, G.cfg.host, (int)G.cfg.orgs[i].port) != 0) {
            fprintf(stderr, "sfemu: could not listen for org %s\n", o->cfg->name);
            return 1;
        }
        o->port = cp_http_server_port(o->srv);
        snprintf(o->url, sizeof o->url, "http://%s:%d", adv, o->port);
    }
    faults_from_config();
    uv_timer_init(G.loop, &G.tick);
    uv_timer_start(&G.tick, on_tick, (uint64_t)G.cfg.tick_ms, (uint64_t)G.cfg.tick_ms);
    static uv_signal_t sigterm, sigint;
    uv_signal_init(G.loop, &sigterm);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_init(G.loop, &sigint);
    uv_signal_start(&sigint, on_signal, SIGINT);

    printf("login %s\n", G.login_url);
    for (size_t i = 0; i < G.norgs; i++)
        printf("org %s %s\n", G.orgs[i].cfg->name, G.orgs[i].url);
    printf("ready\n");
    fflush(stdout);
    cp_info(NULL, "listening: login %s, %zu orgs", G.login_url, G.norgs);
    return uv_run(G.loop, UV_RUN_DEFAULT);
}
