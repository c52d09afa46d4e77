/* loader.h - the Salesforce loader: configuration, pure parts (CSV, JWT, transforms, reconciliation) and the service. */
#ifndef LD_LOADER_H
#define LD_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cp_arena.h"
#include "cp_config.h"
#include "cp_err.h"

/* ---- configuration (ld_config.c) ---- */

enum ld_auth { LD_AUTH_JWT, LD_AUTH_CLIENT_CREDENTIALS, LD_AUTH_REFRESH_TOKEN };
enum ld_op { LD_OP_INSERT, LD_OP_UPSERT };

/* Transforms from a calls column to one CSV value (ld_xform.c). */
enum ld_xform {
    LD_X_TEXT,     /* the value as it is */
    LD_X_E164,     /* phone number normalised to +<digits> when it clearly is one */
    LD_X_DATETIME, /* yyyy-MM-ddTHH:mm:ss.SSSZ (source: a timestamp column) */
    LD_X_DATE,     /* yyyy-MM-dd (UTC) */
    LD_X_SECONDS,  /* milliseconds -> whole seconds, rounded half up */
    LD_X_PICKLIST, /* value mapped through `map` ("a=A,b=B,*=Other") */
    LD_X_CONSTANT, /* `value` whatever the call (CallCenterId, Status, Subject) */
    LD_X_KEY,      /* callpipe's stable row key org|pbx|call_id|ended_us (see README) */
};

struct ld_field_cfg {
    char *field;     /* Salesforce field API name, exact case */
    char *source;    /* calls column (ld_source_names) */
    int transform;   /* enum ld_xform */
    char *map;       /* picklist map */
    char *value;     /* constant */
    char *country;   /* E.164: default country calling code for national numbers, e.g. "1", "49" */
    int max_length;  /* 0 = no limit; longer text is cut on a UTF-8 boundary */
    char *dflt;      /* sent as is when the source column is NULL; NULL = send null */
};

struct ld_org_cfg {
    char *name;        /* outbox target_org */
    char *login_url;   /* https://login.salesforce.com, a My Domain, or the emulator */
    int auth;          /* enum ld_auth */
    char *client_id;   /* consumer key (not a secret) */
    char *username;    /* JWT sub */
    char *audience;    /* JWT aud; default = login_url */
    struct cp_secret private_key;   /* PEM, JWT */
    struct cp_secret client_secret; /* client credentials, refresh token (optional there) */
    struct cp_secret refresh_token;
    char *api_version; /* "62.0" */
    char *object;      /* VoiceCall, Task */
    int operation;     /* enum ld_op */
    char *external_id_field; /* upsert */
    char *key_field;   /* field carrying the row key; default external_id_field */
    int64_t max_records;
    int64_t max_bytes;
    int64_t max_jobs;
    int64_t api_share; /* percent of the daily API allocation this loader may use */
    int64_t poll_interval_ms, poll_max_ms;
    int64_t retry_backoff_ms, retry_max_ms;
    int64_t max_attempts;
    int64_t quota_pause_ms;
    char *ca_file;
    struct ld_field_cfg *fields;
    size_t n_fields;
};

struct ld_pg_cfg {
    char *dsn;
    struct cp_secret password;
};

struct ld_cfg {
    char *log_level;
    char *admin_listen;
    struct ld_pg_cfg postgres;
    int64_t claim_interval_ms;
    int64_t http_timeout_ms;
    struct ld_org_cfg *orgs;
    size_t n_orgs;
};

extern const struct cp_config_table ld_cfg_table;
/* Cross-field checks the table cannot express; 0 or CP_ERR_CONFIG with a message in err. */
int ld_config_validate(struct ld_cfg *cfg, char *err, size_t errcap);

/* ---- growable byte buffer ---- */

struct ld_buf {
    char *data;
    size_t len, cap;
};
int ld_buf_append(struct ld_buf *b, const void *s, size_t n);
int ld_buf_puts(struct ld_buf *b, const char *s);
int ld_buf_printf(struct ld_buf *b, const char *fmt, ...) CP_PRINTF(2, 3);
void ld_buf_reset(struct ld_buf *b);
void ld_buf_free(struct ld_buf *b);

/* ---- CSV (ld_csv.c), Bulk API 2.0 dialect: comma, LF, UTF-8 without BOM ---- */

#define LD_CSV_NULL "#N/A"

/*
 * Appends one field, preceded by a comma unless it is the first of its row.  val NULL writes
 * the explicit null "#N/A"; "" writes an empty field (no value).  A value with a comma, quote,
 * CR or LF is quoted with inner quotes doubled; CRLF and lone CR become LF (the job's line
 * ending).  Invalid UTF-8 is CP_ERR_UTF8 and nothing is written.
 */
int ld_csv_field(struct ld_buf *b, const char *val, bool first);
int ld_csv_end_row(struct ld_buf *b);

/* A parsed CSV: cells[r * ncols + c], row 0 is the header.  Strings live in the arena. */
struct ld_table {
    size_t ncols, nrows; /* nrows counts data rows, without the header */
    char **header;
    char **cells;
};
/*
 * Parses RFC 4180 CSV (quoted fields, "" escapes, embedded newlines, LF or CRLF, optional
 * final newline).  An empty body gives ncols = nrows = 0.  A row whose field count differs
 * from the header's is CP_ERR_PARSE.
 */
int ld_csv_parse(const char *data, size_t len, struct cp_arena *a, struct ld_table *out);
/* Column index of `name` in the header (exact), or -1. */
int ld_table_col(const struct ld_table *t, const char *name);
static inline const char *ld_table_cell(const struct ld_table *t, size_t row, size_t col)
{
    return t->cells[row * t->ncols + col];
}

/* ---- JWT bearer assertion (ld_jwt.c) ---- */

/* base64url without padding; returns the length written (out needs 4 * ceil(n / 3) + 1). */
size_t ld_b64url(const unsigned char *in, size_t n, char *out);
/*
 * Builds `b64url({"alg":"RS256"}).b64url({"iss","sub","aud","exp"}).b64url(RS256 signature)`
 * with the PEM private key.  exp = now_s + 180.  Returns 0 and a malloc'd string in *out, or
 * CP_ERR_SECRET (key does not load; the key itself is never logged) / CP_ERR_NOMEM.
 */
int ld_jwt_build(const char *pem, size_t pem_len, const char *iss, const char *sub,
                 const char *aud, int64_t now_s, char **out);

/* ---- transforms (ld_xform.c) ---- */

/* Writes the normalised number into out; numbers that are not clearly E.164-able are copied. */
int ld_e164(const char *in, const char *country, char *out, size_t cap);
/* Looks `val` up in "a=A,b=B,*=Default"; NULL when absent without a default.  Pure. */
const char *ld_picklist(const char *map, const char *val, char *buf, size_t cap);
/* Checks a picklist map's syntax; 0 or CP_ERR_PARSE. */
int ld_picklist_check(const char *map);

/* The calls columns a mapping may name, with how they are selected. */
enum ld_src_kind { LD_SRC_TEXT, LD_SRC_TIME, LD_SRC_MS, LD_SRC_KEY };
struct ld_source {
    const char *name;
    enum ld_src_kind kind;
    const char *sql; /* select-list expression over calls aliased c (constant text, no data) */
};
const struct ld_source *ld_source_find(const char *name);
/* Number and names of the columns; index i of ld_sources is column i of the claim query. */
extern const struct ld_source ld_sources[];
extern const size_t ld_n_sources;

/*
 * Renders one field of one call.  raw is the claim query's text for the source column (NULL =
 * SQL NULL; times as epoch microseconds, durations as milliseconds).  *out is NULL for an
 * explicit null, else points into buf or into the configuration.  CP_ERR_TOOBIG if buf is small.
 */
int ld_xform_apply(const struct ld_field_cfg *f, const char *raw, char *buf, size_t cap,
                   const char **out);
/* The row key of a call: org|pbx|call_id|ended_us.  Returns the length or CP_ERR_TOOBIG. */
int ld_row_key(const char *org, const char *pbx, const char *call_id, const char *ended_us,
               char *buf, size_t cap);

/* ---- reconciliation and job splitting (ld_recon.c) ---- */

enum ld_outcome { LD_PENDING = 0, LD_DONE, LD_RETRY, LD_DEAD };

/* From an sf__Error text "CODE:message:fields": lock and transient server errors retry. */
enum ld_outcome ld_classify_error(const char *sf_error);

struct ld_job_row {
    int64_t outbox_id;
    const char *key;
    /* filled by ld_reconcile */
    enum ld_outcome outcome;
    const char *sf_id;
    const char *error;
};

/*
 * Classifies every row of a job from its three result sets, matching rows by the key column:
 * successful -> DONE with sf__Id; failed -> by ld_classify_error with the sf__Error text;
 * unprocessed -> RETRY.  A row found in no result set is RETRY for upsert (idempotent) and
 * DEAD for insert (it may exist in Salesforce; re-inserting could duplicate it).  Result rows
 * whose key matches no job row are ignored and counted in *unknown.  A non-empty result set
 * without the key column is CP_ERR_PARSE.  Strings point into the tables.
 */
int ld_reconcile(struct ld_job_row *rows, size_t n, const char *key_field, bool upsert,
                 const struct ld_table *succ, const struct ld_table *fail,
                 const struct ld_table *unproc, size_t *unknown);

/*
 * Plans jobs over rows of the given CSV sizes: each job holds at most max_records rows and
 * header + its rows <= max_bytes.  Writes the end index (exclusive) of each job to ends and
 * returns the number of jobs; CP_ERR_TOOBIG if one row cannot fit even alone.
 */
int ld_split(const size_t *row_bytes, size_t n, size_t header_bytes, size_t max_records,
             size_t max_bytes, size_t *ends, size_t ends_cap);

/* Parses "api-usage=USED/MAX" out of a Sforce-Limit-Info value; 0 or CP_ERR_PARSE. */
int ld_parse_limit_info(const char *v, int64_t *used, int64_t *max);

/* ---- the command (ld_main.c) ---- */
int cp_cmd_loader(int argc, char **argv);

#endif
