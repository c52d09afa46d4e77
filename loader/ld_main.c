/* ld_main.c - `callpipe loader`: sf_outbox -> Bulk API 2.0 ingest jobs -> reconciled outbox rows; --check; backfill. */
#include "ld_sf.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include <jansson.h>

#include "../cmd/commands.h"
#include "cp_admin.h"
#include "cp_log.h"
#include "cp_pg.h"
#include "cp_time.h"

static volatile sig_atomic_t got_signal;
static void on_signal(int sig)
{
    got_signal = sig;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Job states as Salesforce names them; index = gauge child. */
static const char *const job_states[] = {"Open",      "UploadComplete", "InProgress",
                                         "JobComplete", "Failed",        "Aborted"};
#define N_STATES 6

static int state_index(const char *s)
{
    for (int i = 0; i < N_STATES; i++)
        if (strcmp(job_states[i], s) == 0)
            return i;
    return -1;
}

struct ld_job {
    char id[64];
    int state; /* index into job_states, -1 unknown */
    int64_t next_poll_us;
    int64_t delay_ms;
};

struct ld_org {
    struct ld_org_cfg *cfg;
    struct ld_sf sf;
    struct ld_job *jobs;
    size_t n_jobs, cap_jobs;
    int64_t next_claim_us, next_scan_us, paused_until_us, login_retry_us;
    bool logged_in;
    struct cp_counter *sent, *succeeded, *retried, *dead, *jobs_created, *jobs_finished[N_STATES];
    struct cp_gauge *jobs_g[N_STATES], *paused_g;
};

struct ld {
    struct ld_cfg *cfg;
    char *conninfo;
    PGconn *pg;
    struct ld_org *orgs;
    struct cp_metrics *reg;
    _Atomic bool pg_ok;
};

/* ---- PostgreSQL ---- */

static int pg_ensure(struct ld *ld)
{
    if (ld->pg && PQstatus(ld->pg) == CONNECTION_OK)
        return 0;
    if (ld->pg) {
        PQfinish(ld->pg);
        ld->pg = NULL;
    }
    struct cp_pg_error err = {{0}, {0}, 0};
    int rc = cp_pg_connect(ld->conninfo, &(struct cp_pg_retry){1, 0, 0}, &ld->pg, &err);
    if (rc) {
        cp_warn("postgres", "could not connect: %s", err.msg);
        ld->pg = NULL;
        atomic_store(&ld->pg_ok, false);
        return rc;
    }
    atomic_store(&ld->pg_ok, true);
    /* Session advisory locks mark the jobs this loader owns; a new session has none, so
     * take them again and let go of any job another loader adopted in the meantime. */
    for (size_t o = 0; o < ld->cfg->n_orgs; o++) {
        struct ld_org *org = &ld->orgs[o];
        for (size_t j = 0; j < org->n_jobs;) {
            const char *p[1] = {org->jobs[j].id};
            PGresult *res = NULL;
            bool mine = cp_pg_exec(ld->pg, "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
                                   1, p, &res, NULL) == 1 &&
                        PQgetvalue(res, 0, 0)[0] == 't';
            if (res)
                PQclear(res);
            if (mine) {
                j++;
                continue;
            }
            cp_info(org->sf.ident, "job %s is now handled by another loader", org->jobs[j].id);
            org->jobs[j] = org->jobs[--org->n_jobs];
        }
    }
    return 0;
}

static void pg_failed(struct ld *ld, const char *what, const struct cp_pg_error *err)
{
    cp_warn("postgres", "could not %s: %s", what, err->msg);
    if (ld->pg && PQstatus(ld->pg) != CONNECTION_OK) {
        PQfinish(ld->pg);
        ld->pg = NULL;
        atomic_store(&ld->pg_ok, false);
    } else if (ld->pg) {
        PQclear(PQexec(ld->pg, "ROLLBACK"));
    }
}

static int exec1(struct ld *ld, const char *sql, int n, const char *const *p, PGresult **out,
                 const char *what)
{
    struct cp_pg_error err = {{0}, {0}, 0};
    int rc = cp_pg_exec(ld->pg, sql, n, p, out, &err);
    if (rc < 0)
        pg_failed(ld, what, &err);
    return rc;
}

static void unlock_job(struct ld *ld, const char *id)
{
    const char *p[1] = {id};
    if (ld->pg)
        cp_pg_exec(ld->pg, "SELECT pg_advisory_unlock(hashtextextended($1, 0))", 1, p, NULL,
                   NULL);
}

/* PostgreSQL array literal element (quoted, \ and " escaped; NULL unquoted). */
static void arr_add(struct ld_buf *b, const char *v)
{
    ld_buf_append(b, b->len > 1 ? "," : "", b->len > 1 ? 1 : 0);
    if (!v) {
        ld_buf_puts(b, "NULL");
        return;
    }
    ld_buf_append(b, "\"", 1);
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\')
            ld_buf_append(b, "\\", 1);
        ld_buf_append(b, p, 1);
    }
    ld_buf_append(b, "\"", 1);
}

/* ---- jobs ---- */

static void job_add(struct ld_org *org, const char *id, int state)
{
    if (org->n_jobs == org->cap_jobs) {
        size_t cap = org->cap_jobs ? org->cap_jobs * 2 : 8;
        struct ld_job *p = realloc(org->jobs, cap * sizeof *p);
        if (!p)
            abort();
        org->jobs = p;
        org->cap_jobs = cap;
    }
    struct ld_job *j = &org->jobs[org->n_jobs++];
    memset(j, 0, sizeof *j);
    snprintf(j->id, sizeof j->id, "%s", id);
    j->state = state;
    j->delay_ms = org->cfg->poll_interval_ms;
    j->next_poll_us = cp_time_mono_us() + j->delay_ms * 1000;
}

static void update_job_gauges(struct ld_org *org)
{
    int counts[N_STATES] = {0};
    for (size_t i = 0; i < org->n_jobs; i++)
        if (org->jobs[i].state >= 0)
            counts[org->jobs[i].state]++;
    for (int i = 0; i < 3; i++)
        cp_gauge_set(org->jobs_g[i], counts[i]);
}

static void pause_org(struct ld_org *org, const char *why)
{
    org->paused_until_us = cp_time_mono_us() + org->cfg->quota_pause_ms * 1000;
    cp_gauge_set(org->paused_g, 1);
    cp_warn(org->sf.ident, "pausing for %lld s: %s", (long long)(org->cfg->quota_pause_ms / 1000),
            why);
}

/* After every Salesforce call: stop before the org's share of the daily allocation is used. */
static void check_quota(struct ld_org *org, int rc)
{
    if (rc == CP_ERR_LIMIT)
        pause_org(org, "Salesforce reports a request limit (REQUEST_LIMIT_EXCEEDED or 429)");
    else if (ld_sf_over_share(&org->sf)) {
        char why[160];
        snprintf(why, sizeof why, "API usage %lld/%lld is at or above the configured %lld%%",
                 (long long)org->sf.api_used, (long long)org->sf.api_max,
                 (long long)org->cfg->api_share);
        pause_org(org, why);
    }
}

/* Puts the rows of a job that never got processed back into the queue. */
static int requeue_job(struct ld *ld, struct ld_org *org, const char *id, const char *sf_state)
{
    const char *p[2] = {id, sf_state};
    if (exec1(ld, "BEGIN", 0, NULL, NULL, "begin requeue") < 0)
        return CP_ERR_PG;
    int n = exec1(ld,
                  "UPDATE sf_outbox SET state = 'retry', job_id = NULL, next_attempt_at = now(), "
                  "last_error = 'job ' || $1 || ' ' || $2 || ' before processing', "
                  "updated_at = now() WHERE job_id = $1 AND state = 'in_flight'",
                  2, p, NULL, "requeue rows");
    if (n < 0 ||
        exec1(ld,
              "UPDATE sf_jobs SET state = $2, local_state = 'reconciled', updated_at = now() "
              "WHERE job_id = $1",
              2, p, NULL, "mark job") < 0 ||
        exec1(ld, "COMMIT", 0, NULL, NULL, "commit requeue") < 0)
        return CP_ERR_PG;
    cp_info(org->sf.ident, "job %s was %s: %d rows back in the queue", id, sf_state, n);
    cp_counter_add(org->retried, (uint64_t)n);
    return 0;
}

static int fetch_results(struct ld_org *org, const char *id, const char *which, struct ld_buf *out)
{
    char path[160];
    snprintf(path, sizeof path, "/jobs/ingest/%s/%s/", id, which);
    struct ld_resp r = {0};
    int rc = ld_sf_call(&org->sf, "GET", path, NULL, NULL, 0, &r);
    check_quota(org, rc);
    if (rc == 0) {
        *out = r.body;
        r.body = (struct ld_buf){0};
    }
    ld_resp_free(&r);
    return rc;
}

/* Fetches all three result sets and settles every in-flight row of the job in one transaction. */
static int reconcile_job(struct ld *ld, struct ld_org *org, struct ld_job *job, bool purged)
{
    const struct ld_org_cfg *c = org->cfg;
    struct ld_buf bufs[3] = {{0}};
    static const char *const which[3] = {"successfulResults", "failedResults",
                                         "unprocessedrecords"};
    int rc = 0;
    for (int i = 0; i < 3 && !purged && rc == 0; i++)
        rc = fetch_results(org, job->id, which[i], &bufs[i]);
    struct cp_arena a;
    cp_arena_init(&a, 1 << 16, 0);
    struct ld_table t[3] = {{0}};
    for (int i = 0; i < 3 && rc == 0; i++)
        if ((rc = ld_csv_parse(bufs[i].data, bufs[i].len, &a, &t[i])) != 0)
            cp_error(org->sf.ident, "could not parse %s of job %s", which[i], job->id);
    PGresult *res = NULL;
    struct ld_job_row *rows = NULL;
    struct ld_buf ids = {0}, states = {0}, sfids = {0}, errs = {0}, delays = {0};
    if (rc)
        goto out;
    const char *p1[1] = {job->id};
    int n = exec1(ld,
                  "SELECT id, org, pbx, call_id, (extract(epoch FROM ended_at) * 1000000)::bigint, "
                  "attempts FROM sf_outbox WHERE job_id = $1 AND state = 'in_flight'",
                  1, p1, &res, "load job rows");
    if (n < 0) {
        rc = CP_ERR_PG;
        goto out;
    }
    rows = calloc((size_t)n + 1, sizeof *rows);
    for (int i = 0; i < n; i++) {
        char key[160];
        if (ld_row_key(PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
                       PQgetvalue(res, i, 4), key, sizeof key) < 0)
            key[0] = '\0';
        rows[i].outbox_id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        rows[i].key = cp_arena_strdup(&a, key);
    }
    size_t unknown = 0;
    rc = ld_reconcile(rows, (size_t)n, c->key_field, c->operation == LD_OP_UPSERT, &t[0], &t[1],
                      &t[2], &unknown);
    if (rc) {
        cp_error(org->sf.ident, "could not reconcile job %s: results lack the key column %s",
                 job->id, c->key_field);
        goto out;
    }
    if (unknown)
        cp_warn(org->sf.ident, "job %s: %zu result rows match no row of the job", job->id,
                unknown);
    ld_buf_puts(&ids, "{");
    ld_buf_puts(&states, "{");
    ld_buf_puts(&sfids, "{");
    ld_buf_puts(&errs, "{");
    ld_buf_puts(&delays, "{");
    uint64_t nd = 0, nr = 0, nx = 0;
    for (int i = 0; i < n; i++) {
        struct ld_job_row *r = &rows[i];
        int64_t attempts = strtoll(PQgetvalue(res, i, 5), NULL, 10) + 1;
        const char *st = "done";
        const char *err = r->error;
        char ebuf[600];
        int64_t delay = 0;
        if (r->outcome == LD_RETRY && attempts >= c->max_attempts) {
            snprintf(ebuf, sizeof ebuf, "gave up after %lld attempts: %s", (long long)attempts,
                     err ? err : "");
            err = ebuf;
            r->outcome = LD_DEAD;
        }
        if (r->outcome == LD_RETRY) {
            st = "retry";
            delay = c->retry_backoff_ms;
            for (int64_t k = 1; k < attempts && delay < c->retry_max_ms; k++)
                delay *= 2;
            if (delay > c->retry_max_ms)
                delay = c->retry_max_ms;
            delay += delay ? rand() % (delay / 4 + 1) : 0; /* jitter: spread lock retries */
            nr++;
        } else if (r->outcome == LD_DEAD) {
            st = "dead";
            nx++;
        } else {
            nd++;
        }
        char idb[32], db[32];
        snprintf(idb, sizeof idb, "%lld", (long long)r->outbox_id);
        snprintf(db, sizeof db, "%lld", (long long)delay);
        arr_add(&ids, idb);
        arr_add(&states, st);
        arr_add(&sfids, r->outcome == LD_DONE ? r->sf_id : NULL);
        arr_add(&errs, r->outcome == LD_DONE ? NULL : err);
        arr_add(&delays, db);
    }
    ld_buf_puts(&ids, "}");
    ld_buf_puts(&states, "}");
    ld_buf_puts(&sfids, "}");
    ld_buf_puts(&errs, "}");
    ld_buf_puts(&delays, "}");
    const char *final = job->state >= 0 ? job_states[job->state] : "Deleted";
    const char *p6[6] = {ids.data, states.data, sfids.data, errs.data, delays.data, job->id};
    const char *p2[2] = {job->id, final};
    if (exec1(ld, "BEGIN", 0, NULL, NULL, "begin reconcile") < 0 ||
        exec1(ld,
              "UPDATE sf_outbox o SET state = v.st, sf_id = v.sf_id, last_error = v.err, "
              "attempts = o.attempts + 1, next_attempt_at = now() + v.delay * interval '1 ms', "
              "job_id = CASE WHEN v.st = 'retry' THEN NULL ELSE o.job_id END, updated_at = now() "
              "FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[]) "
              "AS v(id, st, sf_id, err, delay) "
              "WHERE o.id = v.id AND o.job_id = $6 AND o.state = 'in_flight'",
              6, p6, NULL, "update reconciled rows") < 0 ||
        exec1(ld,
              "UPDATE sf_jobs SET state = $2, local_state = 'reconciled', updated_at = now() "
              "WHERE job_id = $1",
              2, p2, NULL, "mark job reconciled") < 0 ||
        exec1(ld, "COMMIT", 0, NULL, NULL, "commit reconcile") < 0) {
        rc = CP_ERR_PG;
        goto out;
    }
    cp_counter_add(org->succeeded, nd);
    cp_counter_add(org->retried, nr);
    cp_counter_add(org->dead, nx);
    cp_info(org->sf.ident, "job %s %s: %llu done, %llu to retry, %llu dead", job->id, final,
            (unsigned long long)nd, (unsigned long long)nr, (unsigned long long)nx);
out:
    if (res)
        PQclear(res);
    free(rows);
    for (int i = 0; i < 3; i++)
        ld_buf_free(&bufs[i]);
    ld_buf_free(&ids);
    ld_buf_free(&states);
    ld_buf_free(&sfids);
    ld_buf_free(&errs);
    ld_buf_free(&delays);
    cp_arena_destroy(&a);
    return rc;
}

static int set_job_state(struct ld *ld, const char *id, const char *state, const char *local)
{
    const char *p[3] = {id, state, local};
    return exec1(ld,
                 "UPDATE sf_jobs SET state = $2, local_state = $3, updated_at = now() "
                 "WHERE job_id = $1",
                 3, p, NULL, "update job") < 0
               ? CP_ERR_PG
               : 0;
}

static int abort_job(struct ld_org *org, const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/jobs/ingest/%s", id);
    static const char body[] = "{\"state\":\"Aborted\"}";
    struct ld_resp r = {0};
    int rc = ld_sf_call(&org->sf, "PATCH", path, NULL, body, sizeof body - 1, &r);
    check_quota(org, rc);
    ld_resp_free(&r);
    return rc;
}

/* Returns true when the job is finished with (removed from the active list). */
static bool poll_job(struct ld *ld, struct ld_org *org, struct ld_job *job)
{
    char path[128];
    snprintf(path, sizeof path, "/jobs/ingest/%s", job->id);
    struct ld_resp r = {0};
    int rc = ld_sf_call(&org->sf, "GET", path, NULL, NULL, 0, &r);
    check_quota(org, rc);
    bool finished = false;
    if (rc == CP_ERR_NOTFOUND) {
        /* Purged (terminal jobs go after 7 days): results are gone. */
        cp_warn(org->sf.ident, "job %s no longer exists in Salesforce", job->id);
        job->state = -1;
        finished = reconcile_job(ld, org, job, true) == 0;
        goto out;
    }
    if (rc)
        goto out;
    json_t *j = json_loadb(r.body.data ? r.body.data : "", r.body.len, 0, NULL);
    const char *st = json_string_value(json_object_get(j, "state"));
    int si = st ? state_index(st) : -1;
    if (si < 0) {
        cp_warn(org->sf.ident, "job %s: unexpected job info", job->id);
        json_decref(j);
        goto out;
    }
    if (si != job->state)
        set_job_state(ld, job->id, st, si >= 3 ? "polling" : "polling");
    job->state = si;
    const char *emsg = json_string_value(json_object_get(j, "errorMessage"));
    if (si == 4 && emsg)
        cp_warn(org->sf.ident, "job %s failed: %s", job->id, emsg);
    json_decref(j);
    if (si == 0) {
        /* Open: our upload or close never completed.  Abort, then requeue; never upload to it. */
        if (abort_job(org, job->id) == 0 && requeue_job(ld, org, job->id, "Aborted") == 0) {
            cp_counter_inc(org->jobs_finished[5]);
            finished = true;
        }
    } else if (si >= 3) {
        if (reconcile_job(ld, org, job, false) == 0) {
            cp_counter_inc(org->jobs_finished[si]);
            finished = true;
        }
    }
out:
    ld_resp_free(&r);
    if (!finished) {
        job->next_poll_us = cp_time_mono_us() + job->delay_ms * 1000;
        job->delay_ms = job->delay_ms * 3 / 2;
        if (job->delay_ms > org->cfg->poll_max_ms)
            job->delay_ms = org->cfg->poll_max_ms;
    } else {
        unlock_job(ld, job->id);
    }
    return finished;
}

/* Marks single rows dead while building a job (their data can never load). */
static void row_dead(struct ld *ld, const char *id, const char *why)
{
    const char *p[2] = {id, why};
    exec1(ld,
          "UPDATE sf_outbox SET state = 'dead', last_error = $2, updated_at = now() WHERE id = $1",
          2, p, NULL, "mark row dead");
}

/*
 * Claims rows, writes the CSV, creates the job and records it, all inside one transaction that
 * holds the row locks: if anything fails before COMMIT the rows simply stay pending (the "no
 * job id yet" case of recovery needs no state of its own).  Then uploads and closes.
 * Returns the number of rows sent, 0 when there was nothing to do, or a negative error.
 */
static int start_job(struct ld *ld, struct ld_org *org)
{
    const struct ld_org_cfg *c = org->cfg;
    struct ld_buf sql = {0}, csv = {0}, row = {0}, idarr = {0};
    PGresult *res = NULL;
    size_t *sizes = NULL, *ends = NULL;
    char **rowtext = NULL;
    int rc = 0;

    ld_buf_puts(&sql, "SELECT o.id, c.org IS NULL");
    for (size_t i = 0; i < ld_n_sources; i++)
        ld_buf_printf(&sql, ", %s", ld_sources[i].sql);
    /* Lock the batch first (the partial index on the due rows lets LIMIT stop early),
     * then join `calls` for just those rows: joining first made every claim cost the
     * whole backlog (seen by make bench-loader: 2.5 s per claim at 340,000 pending). */
    ld_buf_puts(&sql, " FROM (SELECT id, org, pbx, call_id, ended_at, next_attempt_at FROM sf_outbox "
                      "WHERE target_org = $1 AND state IN ('pending', 'retry') "
                      "AND next_attempt_at <= now() ORDER BY next_attempt_at, id "
                      "LIMIT $2 FOR UPDATE SKIP LOCKED) o LEFT JOIN calls c ON c.org = o.org "
                      "AND c.pbx = o.pbx AND c.call_id = o.call_id AND c.ended_at = o.ended_at "
                      "ORDER BY o.next_attempt_at, o.id");
    char lim[32];
    snprintf(lim, sizeof lim, "%lld", (long long)c->max_records);
    const char *p[2] = {c->name, lim};
    if (exec1(ld, "BEGIN", 0, NULL, NULL, "begin claim") < 0)
        return CP_ERR_PG;
    int n = exec1(ld, sql.data, 2, p, &res, "claim outbox rows");
    if (n <= 0) {
        rc = n < 0 ? CP_ERR_PG : 0;
        goto rollback;
    }

    /* header */
    for (size_t f = 0; f < c->n_fields; f++)
        ld_csv_field(&csv, c->fields[f].field, f == 0);
    ld_csv_end_row(&csv);
    size_t header = csv.len;

    rowtext = calloc((size_t)n, sizeof *rowtext);
    sizes = calloc((size_t)n, sizeof *sizes);
    ends = calloc((size_t)n, sizeof *ends);
    int src_col[64];
    for (size_t f = 0; f < c->n_fields && f < 64; f++) {
        const struct ld_source *s = ld_source_find(c->fields[f].source);
        src_col[f] = s ? 2 + (int)(s - ld_sources) : -1;
    }
    for (int i = 0; i < n; i++) {
        const char *oid = PQgetvalue(res, i, 0);
        if (PQgetvalue(res, i, 1)[0] == 't') {
            row_dead(ld, oid, "call not found in calls (dropped by retention?)");
            continue;
        }
        char key[160];
        if (ld_row_key(PQgetvalue(res, i, 3), PQgetvalue(res, i, 4), PQgetvalue(res, i, 5),
                       PQgetvalue(res, i, 6), key, sizeof key) < 0) {
            row_dead(ld, oid, "row key too long");
            continue;
        }
        ld_buf_reset(&row);
        int frc = 0;
        const char *bad = NULL;
        for (size_t f = 0; f < c->n_fields && !frc; f++) {
            const struct ld_field_cfg *fc = &c->fields[f];
            const char *raw = NULL;
            if (fc->transform == LD_X_KEY)
                raw = key;
            else if (src_col[f] >= 0 && !PQgetisnull(res, i, src_col[f]))
                raw = PQgetvalue(res, i, src_col[f]);
            char vb[1024];
            const char *out;
            frc = ld_xform_apply(fc, raw, vb, sizeof vb, &out);
            if (frc == CP_ERR_TOOBIG && raw) {
                out = raw; /* long text: the CSV takes it as it is */
                frc = 0;
            }
            if (!frc)
                frc = ld_csv_field(&row, out, f == 0);
            if (frc)
                bad = fc->field;
        }
        if (frc) {
            char why[200];
            snprintf(why, sizeof why, "could not render field %s: %s", bad, cp_err_str(frc));
            row_dead(ld, oid, why);
            continue;
        }
        ld_csv_end_row(&row);
        rowtext[i] = strdup(row.data);
        sizes[i] = row.len;
    }
    /* Only rows that rendered take part; the first job's worth goes now, the rest waits. */
    size_t kept = 0;
    int *kidx = calloc((size_t)n, sizeof *kidx);
    for (int i = 0; i < n; i++)
        if (rowtext[i]) {
            sizes[kept] = strlen(rowtext[i]);
            kidx[kept++] = i;
        }
    int jobs = ld_split(sizes, kept, header, (size_t)c->max_records, (size_t)c->max_bytes, ends,
                        (size_t)n);
    size_t take = 0;
    if (jobs == CP_ERR_TOOBIG) {
        /* a single row larger than a job: mark the offenders dead, the rest waits a round */
        for (size_t k = 0; k < kept; k++)
            if (header + sizes[k] > (size_t)c->max_bytes)
                row_dead(ld, PQgetvalue(res, kidx[k], 0), "row larger than max_bytes");
    } else if (jobs > 0) {
        take = ends[0];
    }
    ld_buf_puts(&idarr, "{");
    for (size_t k = 0; k < take; k++) {
        ld_buf_puts(&csv, rowtext[kidx[k]]);
        arr_add(&idarr, PQgetvalue(res, kidx[k], 0));
    }
    ld_buf_puts(&idarr, "}");
    free(kidx);
    if (take == 0) {
        rc = exec1(ld, "COMMIT", 0, NULL, NULL, "commit dead rows") < 0 ? CP_ERR_PG : 0;
        goto out;
    }

    /* create the job */
    json_t *spec = json_pack("{s:s, s:s, s:s, s:s, s:s}", "object", c->object, "operation",
                             c->operation == LD_OP_UPSERT ? "upsert" : "insert", "contentType",
                             "CSV", "columnDelimiter", "COMMA", "lineEnding", "LF");
    if (c->operation == LD_OP_UPSERT)
        json_object_set_new(spec, "externalIdFieldName", json_string(c->external_id_field));
    char *body = json_dumps(spec, JSON_COMPACT);
    json_decref(spec);
    struct ld_resp r = {0};
    rc = ld_sf_call(&org->sf, "POST", "/jobs/ingest", NULL, body, strlen(body), &r);
    free(body);
    check_quota(org, rc);
    json_t *info = rc ? NULL : json_loadb(r.body.data ? r.body.data : "", r.body.len, 0, NULL);
    const char *jid = json_string_value(json_object_get(info, "id"));
    char job_id[64] = "";
    if (jid && strlen(jid) < sizeof job_id)
        snprintf(job_id, sizeof job_id, "%s", jid);
    json_decref(info);
    ld_resp_free(&r);
    if (!job_id[0]) {
        if (!rc)
            rc = CP_ERR_PARSE;
        cp_warn(org->sf.ident, "could not create a job: %s", cp_err_str(rc));
        goto rollback;
    }
    char cnt[32];
    snprintf(cnt, sizeof cnt, "%zu", take);
    const char *pj[5] = {job_id, c->name, c->object,
                         c->operation == LD_OP_UPSERT ? "upsert" : "insert", cnt};
    const char *pu[2] = {job_id, idarr.data};
    PGresult *lr = NULL;
    if (exec1(ld,
              "INSERT INTO sf_jobs (job_id, org, object, operation, state, local_state, "
              "row_count) VALUES ($1, $2, $3, $4, 'Open', 'created', $5)",
              5, pj, NULL, "record job") < 0 ||
        exec1(ld,
              "UPDATE sf_outbox SET state = 'in_flight', job_id = $1, updated_at = now() "
              "WHERE id = ANY($2::bigint[])",
              2, pu, NULL, "mark rows in flight") < 0 ||
        exec1(ld, "SELECT pg_advisory_lock(hashtextextended($1, 0))", 1, pj, &lr,
              "lock job") < 0 ||
        exec1(ld, "COMMIT", 0, NULL, NULL, "commit job") < 0) {
        if (lr)
            PQclear(lr);
        /* The job exists in Salesforce but not here: it is empty, so abort it and move on. */
        cp_warn(org->sf.ident, "job %s was created but could not be recorded: aborting it",
                job_id);
        abort_job(org, job_id);
        rc = CP_ERR_PG;
        goto out;
    }
    PQclear(lr);
    cp_counter_inc(org->jobs_created);
    job_add(org, job_id, 0);

    /* upload: exactly one PUT per job */
    set_job_state(ld, job_id, "Open", "uploading");
    char path[128];
    snprintf(path, sizeof path, "/jobs/ingest/%s/batches", job_id);
    rc = ld_sf_call(&org->sf, "PUT", path, "text/csv", csv.data, csv.len, &r);
    check_quota(org, rc);
    ld_resp_free(&r);
    if (rc == 0) {
        cp_counter_add(org->sent, take);
        snprintf(path, sizeof path, "/jobs/ingest/%s", job_id);
        static const char close_body[] = "{\"state\":\"UploadComplete\"}";
        rc = ld_sf_call(&org->sf, "PATCH", path, NULL, close_body, sizeof close_body - 1, &r);
        check_quota(org, rc);
        ld_resp_free(&r);
        if (rc == 0) {
            set_job_state(ld, job_id, "UploadComplete", "uploaded");
            org->jobs[org->n_jobs - 1].state = 1;
        }
    }
    /* On any failure the job stays Open; its first poll aborts it and requeues the rows. */
    if (rc == 0)
        cp_info(org->sf.ident, "job %s: %zu rows, %zu bytes uploaded", job_id, take, csv.len);
    rc = (int)take;
    goto out;

rollback:
    if (ld->pg)
        PQclear(PQexec(ld->pg, "ROLLBACK"));
out:
    if (res)
        PQclear(res);
    if (rowtext)
        for (int i = 0; i < n; i++)
            free(rowtext[i]);
    free(rowtext);
    free(sizes);
    free(ends);
    ld_buf_free(&sql);
    ld_buf_free(&csv);
    ld_buf_free(&row);
    ld_buf_free(&idarr);
    return rc;
}

/* Adopts unreconciled jobs of this org that no live loader holds (restart recovery). */
static void scan_jobs(struct ld *ld, struct ld_org *org)
{
    const char *p[1] = {org->cfg->name};
    PGresult *res = NULL;
    int n = exec1(ld,
                  "SELECT job_id, state FROM sf_jobs WHERE org = $1 AND local_state <> "
                  "'reconciled' ORDER BY created_at",
                  1, p, &res, "scan jobs");
    for (int i = 0; i < n; i++) {
        const char *id = PQgetvalue(res, i, 0);
        bool have = false;
        for (size_t j = 0; j < org->n_jobs && !have; j++)
            have = strcmp(org->jobs[j].id, id) == 0;
        if (have)
            continue;
        const char *pid[1] = {id};
        PGresult *lr = NULL;
        bool got = exec1(ld, "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", 1, pid, &lr,
                         "lock job") == 1 &&
                   PQgetvalue(lr, 0, 0)[0] == 't';
        if (lr)
            PQclear(lr);
        if (!got)
            continue;
        cp_info(org->sf.ident, "resuming job %s (last seen %s)", id, PQgetvalue(res, i, 1));
        job_add(org, id, state_index(PQgetvalue(res, i, 1)));
        org->jobs[org->n_jobs - 1].next_poll_us = 0;
    }
    if (res)
        PQclear(res);
}

static void org_step(struct ld *ld, struct ld_org *org)
{
    int64_t now = cp_time_mono_us();
    if (org->paused_until_us > now)
        return;
    cp_gauge_set(org->paused_g, 0);
    if (!org->logged_in) {
        if (org->login_retry_us > now)
            return;
        int rc = ld_sf_login(&org->sf);
        if (rc) {
            org->login_retry_us = now + 30 * 1000000LL;
            check_quota(org, rc);
            return;
        }
        org->logged_in = true;
    }
    if (now >= org->next_scan_us) {
        scan_jobs(ld, org);
        org->next_scan_us = now + 30 * 1000000LL;
    }
    for (size_t j = 0; j < org->n_jobs && !got_signal;) {
        if (org->jobs[j].next_poll_us <= cp_time_mono_us() &&
            org->paused_until_us <= cp_time_mono_us() && ld->pg &&
            poll_job(ld, org, &org->jobs[j])) {
            org->jobs[j] = org->jobs[--org->n_jobs];
            continue;
        }
        j++;
    }
    while (!got_signal && ld->pg && org->n_jobs < (size_t)org->cfg->max_jobs &&
           org->next_claim_us <= cp_time_mono_us() && org->paused_until_us <= cp_time_mono_us()) {
        int n = start_job(ld, org);
        /* A full job means more rows may wait: go again at once. */
        if (n < org->cfg->max_records || n <= 0)
            org->next_claim_us = cp_time_mono_us() + ld->cfg->claim_interval_ms * 1000;
        if (n <= 0)
            break;
    }
    update_job_gauges(org);
}

/* ---- admin thread (as in the aggregator) ---- */

static bool ready_fn(void *arg, char *reason, size_t cap)
{
    struct ld *ld = arg;
    if (!atomic_load(&ld->pg_ok)) {
        snprintf(reason, cap, "postgresql unreachable");
        return false;
    }
    return true;
}


static void setup_metrics(struct ld *ld, struct ld_org *org)
{
    struct cp_metrics *r = ld->reg;
    static const char *const ol[] = {"org", NULL};
    static const char *const osl[] = {"org", "state", NULL};
    const char *v[] = {org->cfg->name, NULL};
#define FAM(type, name, help, labels) cp_metrics_family(r, type, name, help, labels, NULL, 0)
    org->sent = cp_metrics_counter_child(
        FAM(CP_METRIC_COUNTER, "callpipe_loader_records_sent_total", "rows uploaded in jobs", ol), v);
    org->succeeded = cp_metrics_counter_child(
        FAM(CP_METRIC_COUNTER, "callpipe_loader_records_succeeded_total",
            "rows Salesforce stored (outbox state done)", ol), v);
    org->retried = cp_metrics_counter_child(
        FAM(CP_METRIC_COUNTER, "callpipe_loader_records_retried_total",
            "rows put back for a new job (locks, unprocessed, aborted jobs)", ol), v);
    org->dead = cp_metrics_counter_child(
        FAM(CP_METRIC_COUNTER, "callpipe_loader_records_dead_total",
            "rows that will not load (validation errors; outbox state dead)", ol), v);
    org->jobs_created = cp_metrics_counter_child(
        FAM(CP_METRIC_COUNTER, "callpipe_loader_jobs_created_total", "ingest jobs created", ol), v);
    org->sf.token_refreshes = cp_metrics_counter_child(
        FAM(CP_METRIC_COUNTER, "callpipe_loader_token_refreshes_total",
            "access tokens obtained (logins and refreshes)", ol), v);
    org->sf.http_requests = cp_metrics_counter_child(
        FAM(CP_METRIC_COUNTER, "callpipe_loader_api_requests_total",
            "HTTP requests sent to Salesforce", ol), v);
    org->sf.http_errors = cp_metrics_counter_child(
        FAM(CP_METRIC_COUNTER, "callpipe_loader_api_errors_total",
            "Salesforce requests that failed", ol), v);
    org->sf.api_used_g = cp_metrics_gauge_child(
        FAM(CP_METRIC_GAUGE, "callpipe_loader_api_usage",
            "daily API requests used (Sforce-Limit-Info api-usage)", ol), v);
    org->sf.api_max_g = cp_metrics_gauge_child(
        FAM(CP_METRIC_GAUGE, "callpipe_loader_api_limit",
            "daily API request allocation (Sforce-Limit-Info)", ol), v);
    org->paused_g = cp_metrics_gauge_child(
        FAM(CP_METRIC_GAUGE, "callpipe_loader_paused",
            "1 while the org is paused for request limits", ol), v);
    struct cp_metric_family *jg = FAM(CP_METRIC_GAUGE, "callpipe_loader_jobs",
                                      "jobs of this loader by Salesforce state", osl);
    struct cp_metric_family *jf = FAM(CP_METRIC_COUNTER, "callpipe_loader_jobs_finished_total",
                                      "jobs reconciled, by final state", osl);
    for (int i = 0; i < N_STATES; i++) {
        const char *sv[] = {org->cfg->name, job_states[i], NULL};
        if (i < 3)
            org->jobs_g[i] = cp_metrics_gauge_child(jg, sv);
        else
            org->jobs_finished[i] = cp_metrics_counter_child(jf, sv);
    }
    org->jobs_finished[5] = org->jobs_finished[5]; /* Aborted counts requeued Open jobs too */
#undef FAM
}

/* ---- --check: login and describe ---- */

static int check_org(struct ld_org *org)
{
    const struct ld_org_cfg *c = org->cfg;
    int rc = ld_sf_login(&org->sf);
    if (rc) {
        printf("org %s: login FAILED (%s)\n", c->name, cp_err_str(rc));
        return 1;
    }
    char path[256];
    snprintf(path, sizeof path, "/sobjects/%s/describe", c->object);
    struct ld_resp r = {0};
    rc = ld_sf_call(&org->sf, "GET", path, NULL, NULL, 0, &r);
    if (rc) {
        printf("org %s: describe %s FAILED (HTTP %ld %s)\n", c->name, c->object, r.status,
               r.error_code);
        ld_resp_free(&r);
        return 1;
    }
    json_t *j = json_loadb(r.body.data ? r.body.data : "", r.body.len, 0, NULL);
    ld_resp_free(&r);
    json_t *fields = json_object_get(j, "fields");
    int bad = 0;
    if (!json_is_array(fields)) {
        printf("org %s: describe %s returned no field list\n", c->name, c->object);
        json_decref(j);
        return 1;
    }
    if (json_is_false(json_object_get(j, "createable")))
        printf("org %s: WARNING %s is not createable for this user\n", c->name, c->object), bad++;
    for (size_t f = 0; f < c->n_fields; f++) {
        const char *want = c->fields[f].field;
        json_t *hit = NULL, *fj;
        size_t i;
        json_array_foreach(fields, i, fj)
        {
            const char *name = json_string_value(json_object_get(fj, "name"));
            if (name && strcmp(name, want) == 0)
                hit = fj;
        }
        if (!hit) {
            printf("org %s: field %s.%s MISSING\n", c->name, c->object, want);
            bad++;
        } else if (json_is_false(json_object_get(hit, "createable"))) {
            printf("org %s: field %s.%s is not createable\n", c->name, c->object, want);
            bad++;
        } else if (c->operation == LD_OP_UPSERT && strcmp(want, c->external_id_field) == 0 &&
                   !json_is_true(json_object_get(hit, "externalId")) &&
                   !json_is_true(json_object_get(hit, "idLookup"))) {
            printf("org %s: field %s.%s is not an External ID (upsert needs one)\n", c->name,
                   c->object, want);
            bad++;
        } else {
            printf("org %s: field %s.%s ok\n", c->name, c->object, want);
        }
    }
    json_decref(j);
    printf("org %s: %s\n", c->name, bad ? "FAILED" : "ok");
    return bad ? 1 : 0;
}

/* ---- the command ---- */

static void usage(FILE *f)
{
    fprintf(f, "usage: callpipe loader -c loader.yaml [--check] [--check-config] [--print-config-doc]\n"
               "       callpipe loader backfill -c loader.yaml --org NAME --from T1 --to T2\n"
               "\n"
               "Sends finished calls from sf_outbox to Salesforce with Bulk API 2.0 ingest jobs.\n"
               "--check logs in to every org and verifies the object and mapped fields by describe.\n"
               "backfill queues the calls with T1 <= ended_at < T2 (ISO 8601) for org NAME.\n");
}

static char *build_conninfo(const struct ld_cfg *cfg)
{
    struct ld_buf b = {0};
    ld_buf_puts(&b, cfg->postgres.dsn ? cfg->postgres.dsn : "");
    if (cfg->postgres.password.value) {
        ld_buf_puts(&b, " password='");
        for (const char *p = cfg->postgres.password.value; *p; p++) {
            if (*p == '\'' || *p == '\\')
                ld_buf_append(&b, "\\", 1);
            ld_buf_append(&b, p, 1);
        }
        ld_buf_puts(&b, "'");
    }
    if (!b.data)
        ld_buf_puts(&b, "");
    return b.data;
}

static int backfill(struct ld *ld, const char *org, const char *from, const char *to)
{
    bool known = false;
    for (size_t i = 0; i < ld->cfg->n_orgs; i++)
        known |= strcmp(ld->cfg->orgs[i].name, org) == 0;
    if (!known) {
        fprintf(stderr, "callpipe loader backfill: org \"%s\" is not configured\n", org);
        return 2;
    }
    struct cp_pg_error err = {{0}, {0}, 0};
    struct cp_pg_retry retry = CP_PG_RETRY_DEFAULT;
    if (cp_pg_connect(ld->conninfo, &retry, &ld->pg, &err) != 0) {
        fprintf(stderr, "callpipe loader backfill: could not connect: %s\n", err.msg);
        return 1;
    }
    const char *p[3] = {org, from, to};
    int n = cp_pg_exec(ld->pg,
                       "INSERT INTO sf_outbox (org, pbx, call_id, ended_at, target_org) "
                       "SELECT org, pbx, call_id, ended_at, $1 FROM calls "
                       "WHERE ended_at >= $2::timestamptz AND ended_at < $3::timestamptz "
                       "ON CONFLICT (org, pbx, call_id, ended_at, target_org) DO NOTHING",
                       3, p, NULL, &err);
    PQfinish(ld->pg);
    ld->pg = NULL;
    if (n < 0) {
        fprintf(stderr, "callpipe loader backfill: could not queue calls: %s\n", err.msg);
        return 1;
    }
    printf("queued %d calls for org %s (%s <= ended_at < %s)\n", n, org, from, to);
    return 0;
}

int cp_cmd_loader(int argc, char **argv)
{
    const char *path = NULL, *bf_org = NULL, *bf_from = NULL, *bf_to = NULL;
    bool check = false, check_config = false, doc = false, do_backfill = false;
    if (argc > 1 && strcmp(argv[1], "backfill") == 0) {
        do_backfill = true;
        argc--;
        argv++;
    }
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check", no_argument, NULL, 'C'},
                                         {"check-config", no_argument, NULL, 'k'},
                                         {"print-config-doc", no_argument, NULL, 'd'},
                                         {"org", required_argument, NULL, 'o'},
                                         {"from", required_argument, NULL, 'f'},
                                         {"to", required_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (o) {
        case 'c': path = optarg; break;
        case 'C': check = true; break;
        case 'k': check_config = true; break;
        case 'd': doc = true; break;
        case 'o': bf_org = optarg; break;
        case 'f': bf_from = optarg; break;
        case 't': bf_to = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (doc) {
        cp_config_doc_markdown(&ld_cfg_table, stdout);
        return 0;
    }
    if (!path || (do_backfill && (!bf_org || !bf_from || !bf_to))) {
        usage(stderr);
        return 2;
    }
    struct ld_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    char err[1024];
    if (cp_config_load(&ld_cfg_table, path, &cfg, err, sizeof err) != 0 ||
        ld_config_validate(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "callpipe loader: %s\n", err);
        cp_config_free(&ld_cfg_table, &cfg);
        return 2;
    }
    if (check_config) {
        printf("config ok\n");
        cp_config_dump(&ld_cfg_table, &cfg, stdout);
        cp_config_free(&ld_cfg_table, &cfg);
        return 0;
    }
    enum cp_log_level lvl;
    if (cp_log_level_parse(cfg.log_level, &lvl) == 0)
        cp_log_set_level(lvl);

    struct ld ld;
    memset(&ld, 0, sizeof ld);
    ld.cfg = &cfg;
    ld.conninfo = build_conninfo(&cfg);
    int status = 0;
    if (do_backfill) {
        status = backfill(&ld, bf_org, bf_from, bf_to);
        goto done_cfg;
    }
    ld.reg = cp_metrics_create();
    ld.orgs = calloc(cfg.n_orgs, sizeof *ld.orgs);
    for (size_t i = 0; i < cfg.n_orgs; i++) {
        ld.orgs[i].cfg = &cfg.orgs[i];
        ld_sf_init(&ld.orgs[i].sf, &cfg.orgs[i], (long)cfg.http_timeout_ms);
        setup_metrics(&ld, &ld.orgs[i]);
    }
    if (check) {
        for (size_t i = 0; i < cfg.n_orgs; i++)
            status |= check_org(&ld.orgs[i]);
        goto done;
    }

    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    struct cp_admin_thread *admin =
        cp_admin_thread_start(cfg.admin_listen, "loader:admin", ld.reg, ready_fn, &ld);
    if (!admin) {
        status = 1;
        goto done;
    }
    srand((unsigned)time(NULL));
    cp_info(NULL, "loading %zu org(s); admin on %s", cfg.n_orgs, cfg.admin_listen);
    while (!got_signal) {
        if (pg_ensure(&ld) != 0) {
            sleep_ms(1000);
            continue;
        }
        for (size_t i = 0; i < cfg.n_orgs && !got_signal; i++)
            org_step(&ld, &ld.orgs[i]);
        sleep_ms(50);
    }
    cp_info(NULL, "stopping: unfinished jobs are resumed from sf_jobs by the next start");
    cp_admin_thread_stop(admin);
done:
    for (size_t i = 0; i < cfg.n_orgs; i++) {
        ld_sf_close(&ld.orgs[i].sf);
        free(ld.orgs[i].jobs);
    }
    free(ld.orgs);
    if (ld.pg)
        PQfinish(ld.pg);
    cp_metrics_destroy(ld.reg);
done_cfg:
    if (ld.conninfo) {
        memset(ld.conninfo, 0, strlen(ld.conninfo));
        free(ld.conninfo);
    }
    cp_config_free(&ld_cfg_table, &cfg);
    return status;
}
