/* ld_recon.c - job results reconciliation, job splitting and Sforce-Limit-Info parsing (pure). */
#include "loader.h"

#include <stdlib.h>
#include <string.h>

#include "cp_map.h"

/*
 * Errors that say "not now" rather than "not this row": record locks held by a parallel
 * batch (reference §6.7), Salesforce-side timeouts and outages.  Everything else (validation,
 * required field missing, bad picklist value, duplicate value) fails the same way again, so the
 * row goes dead with Salesforce's message for a person to look at.
 */
static const char *const retry_codes[] = {
    "UNABLE_TO_LOCK_ROW",    "TooManyLockFailure", "TOO_MANY_LOCK_FAILURE",
    "REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION",
    "REQUEST_RUNNING_TOO_LONG", "Timeout", "API_TEMPORARILY_UNAVAILABLE",
};

enum ld_outcome ld_classify_error(const char *sf_error)
{
    if (!sf_error)
        return LD_DEAD;
    size_t n = strcspn(sf_error, ":");
    for (size_t i = 0; i < CP_ARRAY_LEN(retry_codes); i++)
        if (strlen(retry_codes[i]) == n && memcmp(retry_codes[i], sf_error, n) == 0)
            return LD_RETRY;
    return LD_DEAD;
}

/* Applies one result set; returns 0 or CP_ERR_PARSE when it lacks a needed column. */
static int apply(struct ld_job_row *rows, const struct cp_map *idx, const char *key_field,
                 const struct ld_table *t, int kind, size_t *unknown)
{
    if (!t || t->nrows == 0)
        return 0;
    int kc = ld_table_col(t, key_field);
    int idc = ld_table_col(t, "sf__Id");
    int ec = ld_table_col(t, "sf__Error");
    if (kc < 0 || (kind == 0 && idc < 0) || (kind == 1 && ec < 0))
        return CP_ERR_PARSE;
    for (size_t r = 0; r < t->nrows; r++) {
        const char *key = ld_table_cell(t, r, (size_t)kc);
        uintptr_t pi = (uintptr_t)cp_map_get(idx, key, strlen(key));
        if (!pi) {
            (*unknown)++;
            continue;
        }
        struct ld_job_row *row = &rows[pi - 1];
        /* A success wins over anything else reported for the same key. */
        if (row->outcome == LD_DONE)
            continue;
        if (kind == 0) {
            row->outcome = LD_DONE;
            row->sf_id = ld_table_cell(t, r, (size_t)idc);
            row->error = NULL;
        } else if (kind == 1) {
            row->error = ld_table_cell(t, r, (size_t)ec);
            row->outcome = ld_classify_error(row->error);
        } else if (row->outcome == LD_PENDING) {
            row->outcome = LD_RETRY;
            row->error = "unprocessed";
        }
    }
    return 0;
}

int ld_reconcile(struct ld_job_row *rows, size_t n, const char *key_field, bool upsert,
                 const struct ld_table *succ, const struct ld_table *fail,
                 const struct ld_table *unproc, size_t *unknown)
{
    struct cp_map idx;
    cp_map_init(&idx);
    size_t dummy = 0;
    if (!unknown)
        unknown = &dummy;
    *unknown = 0;
    /* Values are 1-based indexes smuggled in the pointer so that no allocation is needed. */
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rows[i].outcome = LD_PENDING;
        rows[i].sf_id = rows[i].error = NULL;
        rc = cp_map_put(&idx, rows[i].key, strlen(rows[i].key), (void *)(uintptr_t)(i + 1));
    }
    if (rc == 0)
        rc = apply(rows, &idx, key_field, succ, 0, unknown);
    if (rc == 0)
        rc = apply(rows, &idx, key_field, fail, 1, unknown);
    if (rc == 0)
        rc = apply(rows, &idx, key_field, unproc, 2, unknown);
    cp_map_free(&idx);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (rows[i].outcome != LD_PENDING)
            continue;
        rows[i].outcome = upsert ? LD_RETRY : LD_DEAD;
        rows[i].error = upsert ? "no result reported for the row"
                               : "no result reported for the row (not re-inserted: it may "
                                 "exist in Salesforce)";
    }
    return 0;
}

int ld_split(const size_t *row_bytes, size_t n, size_t header_bytes, size_t max_records,
             size_t max_bytes, size_t *ends, size_t ends_cap)
{
    size_t jobs = 0, count = 0, bytes = header_bytes;
    for (size_t i = 0; i < n; i++) {
        if (header_bytes + row_bytes[i] > max_bytes)
            return CP_ERR_TOOBIG;
        if (count > 0 && (count + 1 > max_records || bytes + row_bytes[i] > max_bytes)) {
            if (jobs == ends_cap)
                return CP_ERR_FULL;
            ends[jobs++] = i;
            count = 0;
            bytes = header_bytes;
        }
        count++;
        bytes += row_bytes[i];
    }
    if (count > 0) {
        if (jobs == ends_cap)
            return CP_ERR_FULL;
        ends[jobs++] = n;
    }
    return (int)jobs;
}

int ld_parse_limit_info(const char *v, int64_t *used, int64_t *max)
{
    const char *p = v ? strstr(v, "api-usage=") : NULL;
    /* "per-app-api-usage=" contains the same text: take a match at a boundary. */
    while (p && p != v && p[-1] != ' ' && p[-1] != ';' && p[-1] != ',')
        p = strstr(p + 1, "api-usage=");
    if (!p)
        return CP_ERR_PARSE;
    p += strlen("api-usage=");
    char *end;
    long long u = strtoll(p, &end, 10);
    if (end == p || *end != '/')
        return CP_ERR_PARSE;
    const char *q = end + 1;
    long long m = strtoll(q, &end, 10);
    if (end == q || u < 0 || m <= 0)
        return CP_ERR_PARSE;
    *used = u;
    *max = m;
    return 0;
}
