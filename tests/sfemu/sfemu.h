/* sfemu.h - shared types of the Salesforce emulator (tests/tools/sfemu.c includes every piece). */
#ifndef SFEMU_H
#define SFEMU_H

#include <jansson.h>
#include <openssl/evp.h>
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cp_http.h"

/* ---- configuration (loaded by cp_config from YAML) ------------------------------------- */

enum emu_ftype {
    FT_ID, FT_REFERENCE, FT_STRING, FT_TEXTAREA, FT_PHONE, FT_PICKLIST, FT_COMBOBOX,
    FT_DATETIME, FT_DATE, FT_INT, FT_DOUBLE, FT_BOOLEAN,
};

enum emu_fault_kind { FK_HTTP, FK_DELAY, FK_ROW, FK_JOB_FAIL, FK_SLOW };

struct emu_user_cfg {
    char *username;
};

struct emu_app_cfg {
    char *consumer_key;    /* iss of JWTs, client_id of the other flows */
    char *client_secret;   /* client credentials / refresh token (test data, not a real secret) */
    char *public_key_file; /* PEM public key or certificate that verifies RS256 JWTs */
    char *run_as;          /* client credentials "run as" user; default: the org's first user */
};

struct emu_rt_cfg {
    char *token;
    char *username;
    char *consumer_key;
};

struct emu_cfield_cfg {
    char *object;
    char *name;
    char *label;
    int type;
    int64_t length;
    bool external_id;
    bool unique;
    bool required;
    bool updateable;
    char *values; /* picklist values, comma separated */
    bool restricted;
};

struct emu_pick_cfg {
    char *object;
    char *field;
    char *values;
};

struct emu_fault_cfg {
    int kind;
    char *org;
    char *method;
    char *path; /* POSIX extended regex on the request path */
    int64_t status;
    char *body;
    char *content_type;
    int64_t retry_after;
    int64_t count; /* uses left; 0 = unlimited */
    int64_t delay_ms;
    char *object;
    char *code;
    char *message;
    char *field;
    char *value;
    int64_t every;
    int64_t percent;
    int64_t seed;
    int64_t after_rows;
    int64_t rows_per_s;
    int64_t queue_delay_ms;
};

struct emu_org_cfg {
    char *name;
    char *org_id;
    int64_t port;
    char *audience;
    char *api_min;
    char *api_max;
    int64_t daily_api_quota;
    int64_t token_lifetime_ms;
    int phone_fields; /* 0 from_to (FromPhoneNumber/ToPhoneNumber), 1 contact_info */
    bool voicecall_createable;
    struct emu_user_cfg *users;
    size_t nusers;
    struct emu_app_cfg *apps;
    size_t napps;
    struct emu_rt_cfg *refresh_tokens;
    size_t nrefresh_tokens;
    struct emu_cfield_cfg *custom_fields;
    size_t ncustom_fields;
    struct emu_pick_cfg *picklists;
    size_t npicklists;
};

struct emu_cfg {
    char *host;
    char *advertise_host;
    int64_t port;
    char *log_level;
    int64_t rows_per_s;
    int64_t queue_delay_ms;
    int64_t tick_ms;
    int64_t list_page_size;
    int64_t max_upload_bytes;
    int64_t jwt_max_future_ms;
    int64_t clock_skew_ms;
    int second_upload;        /* 0 reject, 1 append */
    int bom;                  /* 0 keep (header "not found"), 1 strip */
    int result_order;         /* 0 shuffled, 1 input */
    int booleans;             /* 0 strict true/false, 1 lenient 1/0/yes/no */
    int cc_on_login_host;     /* 0 reject, 1 allow */
    bool require_final_newline;
    bool strict_quoted_newlines;
    bool createonly_update_error;
    bool gzip_upload;
    struct emu_org_cfg *orgs;
    size_t norgs;
    struct emu_fault_cfg *faults;
    size_t nfaults;
};

/* ---- runtime state --------------------------------------------------------------------- */

struct emu_field {
    char *name;
    char *label;
    enum emu_ftype type;
    int length;
    bool nillable, createable, updateable, external_id, unique, id_lookup, defaulted, restricted;
    bool custom, autonumber;
    char **picklist; /* NULL-terminated */
    char *ref_to;    /* comma separated object names */
    char *rel_name;
};

struct emu_object {
    const char *name;
    const char *label;
    const char *key_prefix;
    bool createable;
    struct emu_field *fields;
    size_t nfields;
    json_t *records;   /* Id -> record object (every field) */
    json_t *ext_index; /* "Field\x1fvalue" -> Id */
    uint64_t next_id;
    uint64_t autonum;
};

struct emu_token {
    char *token;
    int user;
    int64_t expires_ms; /* wall clock */
};

enum emu_state { JS_OPEN, JS_UPLOAD_COMPLETE, JS_IN_PROGRESS, JS_COMPLETE, JS_FAILED, JS_ABORTED };

struct emu_result {
    size_t row;     /* index into the parsed rows */
    char id[19];
    bool created;
    char *error;    /* NULL for a success */
};

struct emu_csv {
    char **header;
    size_t ncols;
    char ***rows; /* rows[i][j], j < nvals[i] */
    size_t *nvals;
    char **row_error; /* per row: NULL or "CODE:message" */
    size_t nrows;
};

struct emu_org;

struct emu_job {
    char id[19];
    struct emu_org *org;
    struct emu_object *obj;
    char operation[16];
    char *ext_field;
    bool crlf;
    char delim;
    const char *delim_name;
    enum emu_state state;
    char *error_message;
    char created_by[19];
    int64_t created_ms, modstamp_ms;
    int api_major; /* version * 10 */
    char *data;
    size_t data_len;
    int uploads;
    bool deleted; /* DELETEd: gone from the API, kept for the admin job history */
    bool parsed;
    struct emu_csv csv;
    int *colfield; /* per column: field index or -1 */
    size_t pos;
    struct emu_result *results;
    size_t nresults;
    uint64_t failed;
    json_t *chunk_ext; /* external ids seen in the current 10,000-row internal batch */
    double budget;
    int64_t start_at; /* loop ms when processing may start */
    int64_t last_tick;
    int64_t started_ms, ended_ms;
    double rows_per_s;
    int64_t fail_after; /* -1 none */
    char *fail_msg;
    uint64_t seed;
};

struct emu_org {
    struct emu_org_cfg *cfg;
    int idx;
    char org_id[19];
    char **user_ids; /* parallel to cfg->users */
    EVP_PKEY **app_keys; /* parallel to cfg->apps */
    int api_min, api_max; /* version * 10 */
    struct emu_object objects[2];
    struct emu_token *tokens;
    size_t ntokens;
    struct emu_job **jobs;
    size_t njobs;
    uint64_t next_job;
    uint64_t next_user;
    int64_t api_used;
    int64_t api_quota;
    struct cp_http_server *srv;
    int port;
    char url[128];
};

struct emu_fault {
    int id;
    struct emu_fault_cfg c;
    bool has_re;
    regex_t re;
    uint64_t seen; /* rows seen (row faults) */
    int64_t left;  /* uses left; 0 = unlimited */
    bool used_up;
};

struct emu {
    struct emu_cfg cfg;
    uv_loop_t *loop;
    struct cp_http_server *login_srv;
    int login_port;
    char login_url[128];
    struct emu_org *orgs;
    size_t norgs;
    struct emu_fault *faults;
    size_t nfaults;
    int next_fault_id;
    uv_timer_t tick;
    uint64_t seed;
};

/* A growing byte buffer. */
struct sb {
    char *p;
    size_t len, cap;
};

#endif
