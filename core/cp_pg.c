/* cp_pg.c - libpq helpers: connect with backoff, SQLSTATE classes, exec, transactions, COPY. */
#include "cp_pg.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cp_log.h"

#define PG_IDENT "pg"
/* COPY rows are sent in chunks of about this size: large enough to amortise calls, small enough to
 * bound memory. */
#define COPY_FLUSH_BYTES (64 * 1024)

static void sleep_ms(int ms)
{
    if (ms <= 0) return;
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int next_delay(int delay, const struct cp_pg_retry *r)
{
    if (delay <= 0) return r->first_ms;
    return delay > r->max_ms / 2 ? r->max_ms : delay * 2;
}

static struct cp_pg_retry retry_or_default(const struct cp_pg_retry *retry)
{
    struct cp_pg_retry r = CP_PG_RETRY_DEFAULT;
    if (retry) r = *retry;
    if (r.attempts < 1) r.attempts = 1;
    if (r.first_ms < 0) r.first_ms = 0;
    if (r.max_ms < r.first_ms) r.max_ms = r.first_ms;
    return r;
}

/* Copies a libpq message as one line: newlines and tabs become spaces, trailing space is dropped.
 */
static void set_msg(struct cp_pg_error *err, const char *msg)
{
    if (!err) return;
    if (!msg) msg = "";
    size_t n = 0;
    for (const char *p = msg; *p && n + 1 < sizeof(err->msg); p++) {
        char c = (*p == '\n' || *p == '\t' || *p == '\r') ? ' ' : *p;
        if (c == ' ' && (n == 0 || err->msg[n - 1] == ' ')) continue;
        err->msg[n++] = c;
    }
    while (n > 0 && err->msg[n - 1] == ' ')
        n--;
    err->msg[n] = '\0';
}

static void set_err(struct cp_pg_error *err, const char *sqlstate, const char *msg, int position)
{
    if (!err) return;
    snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", sqlstate ? sqlstate : "");
    set_msg(err, msg);
    err->position = position;
}

int cp_pg_classify_sqlstate(const char *s)
{
    if (!s || strlen(s) != 5) return CP_ERR_CONN;
    /* Connection exceptions and the server going away: reconnect, then replay. */
    if (strncmp(s, "08", 2) == 0 || strcmp(s, "57P01") == 0 || strcmp(s, "57P02") == 0 ||
        strcmp(s, "57P03") == 0 || strcmp(s, "40003") == 0)
        return CP_ERR_CONN;
    /* Lost a race with another transaction: replay on the same connection. */
    if (strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0 || strcmp(s, "55P03") == 0)
        return CP_ERR_AGAIN;
    if (strcmp(s, "57014") == 0) /* query_canceled, e.g. statement_timeout */
        return CP_ERR_TIMEOUT;
    /* Out of connections, memory or disk, or an I/O error on the server: later may work. */
    if (strncmp(s, "53", 2) == 0 || strncmp(s, "58", 2) == 0) return CP_ERR_PG;
    if (strncmp(s, "22", 2) == 0 || strncmp(s, "23", 2) == 0 || strcmp(s, "40002") == 0)
        return CP_ERR_PG_DATA;
    if (strncmp(s, "28", 2) == 0 || strcmp(s, "42501") == 0) return CP_ERR_AUTH;
    if (strncmp(s, "XX", 2) == 0) return CP_ERR_INTERNAL;
    return CP_ERR_PG_SQL;
}

int cp_pg_classify_result(PGconn *conn, const PGresult *res, struct cp_pg_error *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (state && *state) {
        const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        const char *pos = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
        set_err(err, state, msg ? msg : PQresultErrorMessage(res), pos ? atoi(pos) : 0);
        return cp_pg_classify_sqlstate(state);
    }
    /* No SQLSTATE: libpq itself failed, most often because the connection broke. */
    const char *msg = res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res)
                                                        : (conn ? PQerrorMessage(conn) : "");
    set_err(err, "", *msg ? msg : "no result from server", 0);
    if (!conn || PQstatus(conn) == CONNECTION_BAD || !res) return CP_ERR_CONN;
    return CP_ERR_INTERNAL;
}

static void notice_to_log(void *arg, const char *message)
{
    (void)arg;
    struct cp_pg_error e;
    set_msg(&e, message);
    cp_info(PG_IDENT, "server: %s", e.msg);
}

/*
 * libpq reports connection failures only as text (no SQLSTATE), so this is
 * the one place that looks at message words: it only decides whether to retry.
 */
static int classify_connect_failure(PGconn *conn, struct cp_pg_error *err)
{
    const char *msg = conn ? PQerrorMessage(conn) : "out of memory";
    set_err(err, "", msg, 0);
    if (!conn) return CP_ERR_NOMEM;
    if (strstr(msg, "authentication failed") || strstr(msg, "no pg_hba.conf entry") ||
        strstr(msg, "password") || strstr(msg, "permission denied"))
        return CP_ERR_AUTH;
    if (strstr(msg, "does not exist")) /* database or role missing: configuration */
        return CP_ERR_CONFIG;
    return CP_ERR_CONN;
}

int cp_pg_connect(const char *conninfo, const struct cp_pg_retry *retry, PGconn **out,
                  struct cp_pg_error *err)
{
    struct cp_pg_retry r = retry_or_default(retry);
    *out = NULL;
    if (!conninfo) conninfo = "";
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
    if (!opts) {
        set_err(err, "", perr ? perr : "invalid connection string", 0);
        PQfreemem(perr);
        return CP_ERR_CONFIG;
    }
    PQconninfoFree(opts);

    int delay = 0, rc = CP_ERR_CONN;
    for (int attempt = 1; attempt <= r.attempts; attempt++) {
        PGconn *conn = PQconnectdb(conninfo);
        if (conn && PQstatus(conn) == CONNECTION_OK) {
            PQsetNoticeProcessor(conn, notice_to_log, NULL);
            *out = conn;
            if (err) set_err(err, "", "", 0);
            return 0;
        }
        struct cp_pg_error local;
        struct cp_pg_error *e = err ? err : &local;
        rc = classify_connect_failure(conn, e);
        PQfinish(conn);
        if (!cp_err_is_retriable(rc) || attempt == r.attempts) break;
        delay = next_delay(delay, &r);
        cp_warn(PG_IDENT, "could not connect (attempt %d of %d, next in %d ms): %s", attempt,
                r.attempts, delay, e->msg);
        sleep_ms(delay);
    }
    return rc;
}

int cp_pg_reconnect(PGconn *conn, const struct cp_pg_retry *retry, struct cp_pg_error *err)
{
    struct cp_pg_retry r = retry_or_default(retry);
    int delay = 0;
    for (int attempt = 1; attempt <= r.attempts; attempt++) {
        PQreset(conn);
        if (PQstatus(conn) == CONNECTION_OK) return 0;
        struct cp_pg_error local;
        struct cp_pg_error *e = err ? err : &local;
        int rc = classify_connect_failure(conn, e);
        if (!cp_err_is_retriable(rc) || attempt == r.attempts) return rc;
        delay = next_delay(delay, &r);
        cp_warn(PG_IDENT, "could not reconnect (attempt %d of %d, next in %d ms): %s", attempt,
                r.attempts, delay, e->msg);
        sleep_ms(delay);
    }
    return CP_ERR_CONN;
}

/* Result of a successful command as a count: rows returned, or rows affected. */
static int result_count(const PGresult *res)
{
    if (PQresultStatus(res) == PGRES_TUPLES_OK) return PQntuples(res);
    long n = strtol(PQcmdTuples((PGresult *)res), NULL, 10);
    return n > INT_MAX ? INT_MAX : (int)n;
}

int cp_pg_exec(PGconn *conn, const char *sql, int nparams, const char *const *params,
               PGresult **out, struct cp_pg_error *err)
{
    if (out) *out = NULL;
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        int n = result_count(res);
        if (out)
            *out = res;
        else
            PQclear(res);
        return n;
    }
    int rc;
    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
        /* COPY goes through cp_pg_copy_*; end it so the connection stays usable. */
        if (st == PGRES_COPY_IN) PQputCopyEnd(conn, "COPY is not supported by cp_pg_exec");
        PGresult *r;
        while ((r = PQgetResult(conn)) != NULL)
            PQclear(r);
        set_err(err, "", "COPY must use cp_pg_copy_begin", 0);
        rc = CP_ERR_INVAL;
    } else {
        rc = cp_pg_classify_result(conn, res, err);
    }
    PQclear(res);
    return rc;
}

int cp_pg_exec_script(PGconn *conn, const char *sql, struct cp_pg_error *err)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    int rc = 0;
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && st != PGRES_EMPTY_QUERY)
        rc = cp_pg_classify_result(conn, res, err);
    PQclear(res);
    return rc;
}

static void rollback_quietly(PGconn *conn)
{
    if (PQstatus(conn) != CONNECTION_OK) return;
    PGTransactionStatusType ts = PQtransactionStatus(conn);
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) PQclear(PQexec(conn, "ROLLBACK"));
}

int cp_pg_txn(PGconn *conn, const struct cp_pg_retry *retry, cp_pg_txn_fn fn, void *arg,
              struct cp_pg_error *err)
{
    struct cp_pg_retry r = retry_or_default(retry);
    int delay = 0, rc = 0;
    for (int attempt = 1; attempt <= r.attempts; attempt++) {
        rc = cp_pg_exec(conn, "BEGIN", 0, NULL, NULL, err);
        if (rc >= 0) rc = fn(conn, arg, err);
        if (rc >= 0 && PQtransactionStatus(conn) != PQTRANS_INTRANS) {
            /* A failed statement inside fn was ignored: COMMIT would silently roll back. */
            if (PQstatus(conn) == CONNECTION_BAD)
                rc = CP_ERR_CONN;
            else {
                set_err(err, "", "transaction was not open at commit (ignored error?)", 0);
                rc = CP_ERR_STATE;
            }
        }
        if (rc >= 0) {
            PGresult *res = NULL;
            rc = cp_pg_exec(conn, "COMMIT", 0, NULL, &res, err);
            if (rc >= 0) {
                /* COMMIT of a transaction that failed answers "ROLLBACK" without an error. */
                int committed = strcmp(PQcmdStatus(res), "COMMIT") == 0;
                PQclear(res);
                if (committed) return 0;
                set_err(err, "", "transaction rolled back at commit", 0);
                rc = CP_ERR_STATE;
            }
        }
        if (PQstatus(conn) == CONNECTION_BAD) rc = CP_ERR_CONN;
        rollback_quietly(conn);
        if ((rc != CP_ERR_AGAIN && rc != CP_ERR_CONN) || attempt == r.attempts) break;
        delay = next_delay(delay, &r);
        cp_warn(PG_IDENT, "transaction failed (attempt %d of %d, replay in %d ms): %s%s%s", attempt,
                r.attempts, delay, err ? err->sqlstate : "", err ? " " : "",
                err ? err->msg : cp_err_str(rc));
        sleep_ms(delay);
        if (rc == CP_ERR_CONN) {
            int rrc = cp_pg_reconnect(conn, &r, err);
            if (rrc < 0) return rrc;
        }
    }
    return rc;
}

/* ---- COPY text format ---- */

void cp_pg_copybuf_init(struct cp_pg_copybuf *b)
{
    memset(b, 0, sizeof(*b));
}

void cp_pg_copybuf_free(struct cp_pg_copybuf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

static int copybuf_reserve(struct cp_pg_copybuf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1) return CP_ERR_TOOBIG;
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p) return CP_ERR_NOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

long cp_pg_copy_escape(const char *s, size_t len, char *out)
{
    char *o = out;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        switch (c) {
        case '\\':
            *o++ = '\\';
            *o++ = '\\';
            break;
        case '\n':
            *o++ = '\\';
            *o++ = 'n';
            break;
        case '\r':
            *o++ = '\\';
            *o++ = 'r';
            break;
        case '\t':
            *o++ = '\\';
            *o++ = 't';
            break;
        case '\0':
            return CP_ERR_INVAL;
        default:
            *o++ = c;
        }
    }
    return (long)(o - out);
}

int cp_pg_copybuf_field(struct cp_pg_copybuf *b, const char *s, size_t len)
{
    if (s && len > (SIZE_MAX - 4) / 2) return CP_ERR_TOOBIG;
    int rc = copybuf_reserve(b, s ? 2 * len + 1 : 3);
    if (rc < 0) return rc;
    size_t start = b->len;
    if (b->row_fields > 0) b->data[b->len++] = '\t';
    if (!s) {
        memcpy(b->data + b->len, "\\N", 2);
        b->len += 2;
    } else {
        long n = cp_pg_copy_escape(s, len, b->data + b->len);
        if (n < 0) {
            b->len = start; /* leave the row as it was */
            b->data[b->len] = '\0';
            return (int)n;
        }
        b->len += (size_t)n;
    }
    b->data[b->len] = '\0';
    b->row_fields++;
    return 0;
}

int cp_pg_copybuf_field_str(struct cp_pg_copybuf *b, const char *s)
{
    return cp_pg_copybuf_field(b, s, s ? strlen(s) : 0);
}

int cp_pg_copybuf_field_i64(struct cp_pg_copybuf *b, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%" PRId64, v);
    return cp_pg_copybuf_field(b, tmp, (size_t)n);
}

int cp_pg_copybuf_field_bytea(struct cp_pg_copybuf *b, const void *p, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    if (len > (SIZE_MAX - 8) / 2) return CP_ERR_TOOBIG;
    int rc = copybuf_reserve(b, 2 * len + 4);
    if (rc < 0) return rc;
    char *o = b->data + b->len;
    if (b->row_fields > 0) *o++ = '\t';
    *o++ = '\\'; /* COPY's escaped backslash, then bytea's own \x prefix */
    *o++ = '\\';
    *o++ = 'x';
    const unsigned char *in = p;
    for (size_t i = 0; i < len; i++) {
        *o++ = digits[in[i] >> 4];
        *o++ = digits[in[i] & 15];
    }
    *o = '\0';
    b->len = (size_t)(o - b->data);
    b->row_fields++;
    return 0;
}

int cp_pg_copybuf_end_row(struct cp_pg_copybuf *b)
{
    int rc = copybuf_reserve(b, 1);
    if (rc < 0) return rc;
    b->data[b->len++] = '\n';
    b->data[b->len] = '\0';
    b->row_fields = 0;
    return 0;
}

int cp_pg_copy_begin(struct cp_pg_copy *c, PGconn *conn, const char *copy_sql,
                     struct cp_pg_error *err)
{
    memset(c, 0, sizeof(*c));
    c->conn = conn;
    cp_pg_copybuf_init(&c->buf);
    PGresult *res = PQexec(conn, copy_sql);
    ExecStatusType st = PQresultStatus(res);
    int rc = 0;
    if (st != PGRES_COPY_IN) {
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_COPY_OUT) {
            set_err(err, "", "statement is not COPY ... FROM STDIN", 0);
            rc = CP_ERR_INVAL;
            PGresult *r;
            while ((r = PQgetResult(conn)) != NULL)
                PQclear(r);
        } else {
            rc = cp_pg_classify_result(conn, res, err);
        }
    }
    PQclear(res);
    return rc;
}

static void copy_flush(struct cp_pg_copy *c)
{
    if (c->failed || c->buf.len == 0) return;
    if (PQputCopyData(c->conn, c->buf.data, (int)c->buf.len) != 1) c->failed = CP_ERR_CONN;
    c->buf.len = 0;
}

int cp_pg_copy_end_row(struct cp_pg_copy *c)
{
    if (c->failed) return c->failed;
    int rc = cp_pg_copybuf_end_row(&c->buf);
    if (rc < 0) return c->failed = rc;
    c->rows++;
    if (c->buf.len >= COPY_FLUSH_BYTES) copy_flush(c);
    return c->failed;
}

/* Reads results until libpq says the COPY is over; returns the classified outcome. */
static int64_t copy_finish(struct cp_pg_copy *c, struct cp_pg_error *err)
{
    int64_t rc = 0;
    int first = 1;
    PGresult *res;
    while ((res = PQgetResult(c->conn)) != NULL) {
        if (first) {
            if (PQresultStatus(res) == PGRES_COMMAND_OK)
                rc = strtoll(PQcmdTuples(res), NULL, 10);
            else
                rc = cp_pg_classify_result(c->conn, res, err);
            first = 0;
        }
        PQclear(res);
    }
    if (first) /* no result at all: the connection went away */
        rc = cp_pg_classify_result(c->conn, NULL, err);
    return rc;
}

int64_t cp_pg_copy_end(struct cp_pg_copy *c, struct cp_pg_error *err)
{
    int64_t rc;
    if (c->buf.row_fields > 0 && !c->failed) {
        set_err(err, "", "COPY ended inside a row", 0);
        c->failed = CP_ERR_STATE;
    }
    copy_flush(c);
    if (c->failed) {
        rc = c->failed;
        if (PQputCopyEnd(c->conn, "client failed while sending rows") == 1)
            (void)copy_finish(c, NULL);
        if (rc == CP_ERR_CONN) (void)cp_pg_classify_result(c->conn, NULL, err);
    } else if (PQputCopyEnd(c->conn, NULL) != 1) {
        rc = cp_pg_classify_result(c->conn, NULL, err);
    } else {
        rc = copy_finish(c, err);
    }
    cp_pg_copybuf_free(&c->buf);
    return rc;
}

void cp_pg_copy_abort(struct cp_pg_copy *c, const char *why)
{
    if (PQputCopyEnd(c->conn, why ? why : "aborted by client") == 1) (void)copy_finish(c, NULL);
    cp_pg_copybuf_free(&c->buf);
}
