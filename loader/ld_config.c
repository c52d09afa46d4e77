/* ld_config.c - the loader's configuration table and its cross-field checks. */
#include "loader.h"

#include <stdio.h>
#include <string.h>

static const char *const xform_names[] = {"text",     "e164",     "datetime", "date", "seconds",
                                          "picklist", "constant", "key",      NULL};
static const char *const auth_names[] = {"jwt", "client_credentials", "refresh_token", NULL};
static const char *const op_names[] = {"insert", "upsert", NULL};

static const struct cp_config_field field_fields[] = {
    {CP_CFG_AT(struct ld_field_cfg, field), CP_CFG_STRING, .flags = CP_CFG_REQUIRED,
     .help = "Salesforce field API name, exact case (e.g. CallStartDateTime, Callpipe_Key__c)"},
    {CP_CFG_AT(struct ld_field_cfg, source), CP_CFG_STRING,
     .help = "calls column: org, pbx, call_id, ended_at, direction, from_number, from_name, "
             "to_number, final_to, queue, agent, started_at, queued_at, answered_at, wait_ms, "
             "talk_ms, hold_ms, acw_ms, handle_ms, duration_ms, disposition, queue_outcome, "
             "wrapup, hangup_side, source (not for constant/key)"},
    {CP_CFG_AT(struct ld_field_cfg, transform), CP_CFG_ENUM, .enum_names = xform_names,
     .dflt = "text", .help = "text, e164, datetime, date, seconds, picklist, constant, key"},
    {CP_CFG_AT(struct ld_field_cfg, map), CP_CFG_STRING,
     .help = "picklist: \"from=To,...\" with an optional \"*=Default\""},
    {CP_CFG_AT(struct ld_field_cfg, value), CP_CFG_STRING, .help = "constant: the value"},
    {CP_CFG_AT(struct ld_field_cfg, country), CP_CFG_STRING,
     .help = "e164: calling code for national numbers (\"1\", \"44\"); empty = only "
             "international forms are rewritten"},
    {CP_CFG_AT(struct ld_field_cfg, max_length), CP_CFG_INT, .dflt = "0", .min = 0,
     .max = 131072, .help = "text: cut longer values (UTF-8 safe); 0 = no limit"},
    {CP_CFG_AT_KEY("default", struct ld_field_cfg, dflt), CP_CFG_STRING,
     .help = "value sent as is when the source column is NULL (unknown), e.g. CallType Inbound "
             "for VoiceCall (a required field) when a PBX format does not say the direction; "
             "unset = null"},
};
static const struct cp_config_table field_table = CP_CFG_TABLE(struct ld_field_cfg, field_fields);

static const struct cp_config_field org_fields[] = {
    {CP_CFG_AT(struct ld_org_cfg, name), CP_CFG_STRING, .flags = CP_CFG_REQUIRED,
     .help = "org name = sf_outbox.target_org"},
    {CP_CFG_AT(struct ld_org_cfg, login_url), CP_CFG_STRING,
     .dflt = "https://login.salesforce.com",
     .help = "token host: login/test.salesforce.com or the org's My Domain URL"},
    {CP_CFG_AT(struct ld_org_cfg, auth), CP_CFG_ENUM, .enum_names = auth_names, .dflt = "jwt",
     .help = "jwt, client_credentials or refresh_token"},
    {CP_CFG_AT(struct ld_org_cfg, client_id), CP_CFG_STRING, .flags = CP_CFG_REQUIRED,
     .help = "consumer key of the connected / external client app"},
    {CP_CFG_AT(struct ld_org_cfg, username), CP_CFG_STRING, .help = "jwt: the integration user"},
    {CP_CFG_AT(struct ld_org_cfg, audience), CP_CFG_STRING,
     .help = "jwt: aud claim (default: login_url; https://test.salesforce.com for sandboxes)"},
    {CP_CFG_AT(struct ld_org_cfg, private_key), CP_CFG_SECRET,
     .help = "jwt: PEM private key (file:PATH or env:NAME)"},
    {CP_CFG_AT(struct ld_org_cfg, client_secret), CP_CFG_SECRET,
     .help = "client_credentials (and optionally refresh_token): consumer secret"},
    {CP_CFG_AT(struct ld_org_cfg, refresh_token), CP_CFG_SECRET,
     .help = "refresh_token: the refresh token"},
    {CP_CFG_AT(struct ld_org_cfg, api_version), CP_CFG_STRING, .dflt = "62.0",
     .help = "REST API version (VoiceCall phone fields changed at 62.0)"},
    {CP_CFG_AT(struct ld_org_cfg, object), CP_CFG_STRING, .dflt = "VoiceCall",
     .help = "target sObject: VoiceCall or Task"},
    {CP_CFG_AT(struct ld_org_cfg, operation), CP_CFG_ENUM, .enum_names = op_names,
     .dflt = "insert", .help = "insert or upsert"},
    {CP_CFG_AT(struct ld_org_cfg, external_id_field), CP_CFG_STRING,
     .help = "upsert: External ID field (externalIdFieldName)"},
    {CP_CFG_AT(struct ld_org_cfg, key_field), CP_CFG_STRING,
     .help = "field mapped with transform key, used to match results to calls (default: "
             "external_id_field)"},
    {CP_CFG_AT(struct ld_org_cfg, max_records), CP_CFG_INT, .dflt = "10000", .min = 1,
     .max = 150000000, .help = "records per job"},
    {CP_CFG_AT(struct ld_org_cfg, max_bytes), CP_CFG_SIZE, .dflt = "100MB", .min = 1024,
     .max = 100000000, .help = "raw CSV bytes per job (Salesforce: 150 MB after base64)"},
    {CP_CFG_AT(struct ld_org_cfg, max_jobs), CP_CFG_INT, .dflt = "2", .min = 1, .max = 100,
     .help = "jobs of this org open or processing at once (per loader)"},
    {CP_CFG_AT(struct ld_org_cfg, api_share), CP_CFG_INT, .dflt = "50", .min = 1, .max = 100,
     .help = "percent of the org's daily API requests above which the loader pauses"},
    {CP_CFG_AT_KEY("poll_interval", struct ld_org_cfg, poll_interval_ms), CP_CFG_DURATION,
     .dflt = "2s", .min = 10, .max = 600000, .help = "first job status poll delay"},
    {CP_CFG_AT_KEY("poll_max", struct ld_org_cfg, poll_max_ms), CP_CFG_DURATION, .dflt = "30s",
     .min = 10, .max = 3600000, .help = "poll delay grows 1.5x up to this (no poll timeout)"},
    {CP_CFG_AT_KEY("retry_backoff", struct ld_org_cfg, retry_backoff_ms), CP_CFG_DURATION,
     .dflt = "30s", .min = 0, .max = 86400000,
     .help = "first delay before a retried row goes into a new job (doubles per attempt)"},
    {CP_CFG_AT_KEY("retry_max", struct ld_org_cfg, retry_max_ms), CP_CFG_DURATION,
     .dflt = "1h", .min = 0, .max = 604800000, .help = "longest row retry delay"},
    {CP_CFG_AT(struct ld_org_cfg, max_attempts), CP_CFG_INT, .dflt = "10", .min = 1,
     .max = 1000, .help = "jobs a row may go through before it is marked dead"},
    {CP_CFG_AT_KEY("quota_pause", struct ld_org_cfg, quota_pause_ms), CP_CFG_DURATION,
     .dflt = "5m", .min = 10, .max = 86400000,
     .help = "pause after REQUEST_LIMIT_EXCEEDED, 429 or usage above api_share"},
    {CP_CFG_AT(struct ld_org_cfg, ca_file), CP_CFG_STRING,
     .help = "CA bundle for this org's HTTPS (default: the system store)"},
    {CP_CFG_LIST_AT(struct ld_org_cfg, fields, n_fields), CP_CFG_LIST, .sub = &field_table,
     .min = 1, .max = 500, .help = "field mapping, one entry per CSV column"},
};
static const struct cp_config_table org_table = CP_CFG_TABLE(struct ld_org_cfg, org_fields);

static const struct cp_config_field pg_fields[] = {
    {CP_CFG_AT(struct ld_pg_cfg, dsn), CP_CFG_STRING, .dflt = "",
     .help = "libpq connection string without the password (empty = PG* environment)"},
    {CP_CFG_AT(struct ld_pg_cfg, password), CP_CFG_SECRET,
     .help = "password of the writer role (env:NAME or file:PATH)"},
};
static const struct cp_config_table pg_table = CP_CFG_TABLE(struct ld_pg_cfg, pg_fields);

static const struct cp_config_field ld_fields[] = {
    {CP_CFG_AT(struct ld_cfg, log_level), CP_CFG_STRING, .dflt = "info",
     .help = "debug, info, warn or error"},
    {CP_CFG_AT_KEY("admin", struct ld_cfg, admin_listen), CP_CFG_STRING,
     .dflt = "127.0.0.1:9103", .help = "admin HTTP address for /metrics, /healthz, /readyz"},
    {CP_CFG_AT(struct ld_cfg, postgres), CP_CFG_MAPPING, .sub = &pg_table,
     .help = "PostgreSQL (sf_outbox, sf_jobs, calls)"},
    {CP_CFG_AT_KEY("claim_interval", struct ld_cfg, claim_interval_ms), CP_CFG_DURATION,
     .dflt = "1s", .min = 10, .max = 600000, .help = "how often each org looks for new rows"},
    {CP_CFG_AT_KEY("http_timeout", struct ld_cfg, http_timeout_ms), CP_CFG_DURATION,
     .dflt = "120s", .min = 1000, .max = 3600000, .help = "one HTTP request, upload included"},
    {CP_CFG_LIST_AT(struct ld_cfg, orgs, n_orgs), CP_CFG_LIST, .sub = &org_table, .min = 1,
     .max = 1000, .help = "Salesforce orgs"},
};

const struct cp_config_table ld_cfg_table = {
    .name = "loader",
    .size = sizeof(struct ld_cfg),
    .fields = ld_fields,
    .nfields = CP_ARRAY_LEN(ld_fields),
    .env_prefix = "CALLPIPE_LOADER",
};

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, errcap, __VA_ARGS__);                                                        \
        return CP_ERR_CONFIG;                                                                      \
    } while (0)

int ld_config_validate(struct ld_cfg *cfg, char *err, size_t errcap)
{
    for (size_t i = 0; i < cfg->n_orgs; i++) {
        struct ld_org_cfg *o = &cfg->orgs[i];
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->orgs[j].name, o->name) == 0)
                FAIL("orgs[%zu]: duplicate org name \"%s\"", i, o->name);
        if (o->auth == LD_AUTH_JWT && (!o->username || !o->private_key.value))
            FAIL("org %s: auth jwt needs username and private_key", o->name);
        if (o->auth == LD_AUTH_CLIENT_CREDENTIALS && !o->client_secret.value)
            FAIL("org %s: auth client_credentials needs client_secret", o->name);
        if (o->auth == LD_AUTH_REFRESH_TOKEN && !o->refresh_token.value)
            FAIL("org %s: auth refresh_token needs refresh_token", o->name);
        if (o->operation == LD_OP_UPSERT && !o->external_id_field)
            FAIL("org %s: operation upsert needs external_id_field", o->name);
        if (!o->key_field && o->external_id_field)
            o->key_field = strdup(o->external_id_field);
        if (!o->key_field)
            FAIL("org %s: key_field is required (a field mapped with transform key, so results "
                 "can be matched to calls)", o->name);
        if (o->poll_max_ms < o->poll_interval_ms)
            o->poll_max_ms = o->poll_interval_ms;
        bool key_seen = false;
        for (size_t f = 0; f < o->n_fields; f++) {
            struct ld_field_cfg *fc = &o->fields[f];
            for (size_t g = 0; g < f; g++)
                if (strcmp(o->fields[g].field, fc->field) == 0)
                    FAIL("org %s: field %s is mapped twice", o->name, fc->field);
            if (fc->transform == LD_X_KEY) {
                if (strcmp(fc->field, o->key_field) != 0)
                    FAIL("org %s: transform key on %s, but key_field is %s", o->name, fc->field,
                         o->key_field);
                key_seen = true;
                continue;
            }
            if (fc->transform == LD_X_CONSTANT) {
                if (!fc->value)
                    FAIL("org %s: field %s: constant needs value", o->name, fc->field);
                continue;
            }
            const struct ld_source *s = ld_source_find(fc->source);
            if (!s || s->kind == LD_SRC_KEY)
                FAIL("org %s: field %s: unknown source \"%s\"", o->name, fc->field,
                     fc->source ? fc->source : "");
            if ((fc->transform == LD_X_DATETIME || fc->transform == LD_X_DATE) &&
                s->kind != LD_SRC_TIME)
                FAIL("org %s: field %s: %s is not a time column", o->name, fc->field, s->name);
            if (fc->transform == LD_X_SECONDS && s->kind != LD_SRC_MS)
                FAIL("org %s: field %s: %s is not a milliseconds column", o->name, fc->field,
                     s->name);
            if (s->kind == LD_SRC_TIME && fc->transform != LD_X_DATETIME &&
                fc->transform != LD_X_DATE)
                FAIL("org %s: field %s: time column %s needs transform datetime or date",
                     o->name, fc->field, s->name);
            if (fc->transform == LD_X_PICKLIST && ld_picklist_check(fc->map) != 0)
                FAIL("org %s: field %s: picklist map must look like \"a=A,b=B,*=Other\"",
                     o->name, fc->field);
        }
        if (!key_seen)
            FAIL("org %s: no field is mapped with transform key (key_field %s)", o->name,
                 o->key_field);
    }
    return 0;
}
