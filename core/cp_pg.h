/* cp_pg.h - PostgreSQL helpers: connect with backoff, error classes, params, transactions, COPY. */
#ifndef CP_PG_H
#define CP_PG_H

#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>

#include "cp_err.h"

/*
 * Conventions: every function returns 0 (or a non-negative count) on success
 * and a negative cp_err code on failure.  The code says what to do next
 * (reliability.md A6):
 *   CP_ERR_CONN     connection lost or server shutting down (08xxx, 57P01-03): reconnect with
 *                   backoff, then replay the whole transaction;
 *   CP_ERR_AGAIN    serialization failure or deadlock (40001, 40P01, 55P03): roll back and
 *                   replay the whole transaction on the same connection;
 *   CP_ERR_TIMEOUT  statement cancelled (57014), CP_ERR_PG resources or I/O (53xxx, 58xxx):
 *                   retriable later;
 *   CP_ERR_PG_DATA  the data was rejected (22xxx, 23xxx): retrying the same rows cannot help;
 *   CP_ERR_AUTH     authentication or privileges (28xxx, 42501);
 *   CP_ERR_PG_SQL   anything else: our statement or schema is wrong (syntax, missing table).
 * SQL is never built by formatting data into it: data travels as parameters or COPY rows.
 */

/* Detail of the last failure, filled when the caller passes one (may be NULL everywhere). */
struct cp_pg_error {
    char sqlstate[6]; /* "" when there was no server error (e.g. connection refused) */
    char msg[512];    /* primary message from the server or libpq, one line */
    int position;     /* 1-based character in the statement the error points at, 0 = none */
};

/* Backoff for connecting and for replaying transactions. */
struct cp_pg_retry {
    int attempts; /* total tries, >= 1 */
    int first_ms; /* first sleep, doubled after each failure ... */
    int max_ms;   /* ... up to this */
};
#define CP_PG_RETRY_DEFAULT                                                                        \
    {                                                                                              \
        8, 100, 5000                                                                               \
    }
#define CP_PG_RETRY_NONE                                                                           \
    {                                                                                              \
        1, 0, 0                                                                                    \
    }

/* Maps a five-character SQLSTATE to a cp_err code (table above). NULL or "" is CP_ERR_CONN. */
int cp_pg_classify_sqlstate(const char *sqlstate);
/* Classifies a failed result (or NULL result) on `conn`; fills `err` when not NULL. */
int cp_pg_classify_result(PGconn *conn, const PGresult *res, struct cp_pg_error *err);

/*
 * Connects to `conninfo` ("" or NULL: libpq's PG* environment variables),
 * retrying with backoff while the failure looks transient (refused, starting
 * up, too many connections).  Bad credentials fail at once with CP_ERR_AUTH.
 * Notices from the server go to cp_log at info level.  On success *out
 * owns the connection: release it with PQfinish().
 */
int cp_pg_connect(const char *conninfo, const struct cp_pg_retry *retry, PGconn **out,
                  struct cp_pg_error *err) CP_MUSTCHECK;

/* Sends PQreset until the connection is back, with the given backoff. */
int cp_pg_reconnect(PGconn *conn, const struct cp_pg_retry *retry, struct cp_pg_error *err);

/*
 * Runs one statement with `nparams` text parameters ($1..$n; a NULL entry is
 * SQL NULL).  Returns the number of rows returned (SELECT ... / RETURNING) or
 * affected (INSERT/UPDATE/DELETE), or a negative code.  When `out` is not NULL
 * and the call succeeded, *out receives the result: free it with PQclear().
 */
int cp_pg_exec(PGconn *conn, const char *sql, int nparams, const char *const *params,
               PGresult **out, struct cp_pg_error *err);

/* Runs a string of one or more statements without parameters (DDL, migrations). */
int cp_pg_exec_script(PGconn *conn, const char *sql, struct cp_pg_error *err);

/*
 * BEGIN, fn(conn, arg), COMMIT.  When fn or COMMIT fails with CP_ERR_AGAIN the
 * transaction is rolled back and replayed; with CP_ERR_CONN the connection is
 * reset first.  fn must therefore be idempotent: a COMMIT whose reply was lost
 * may have committed (write upserts, or re-read state at the start of fn).
 * fn returns 0 to commit, a negative cp_err to roll back (retried only if that
 * code is CP_ERR_AGAIN or CP_ERR_CONN).  Returns 0 or the last error.
 */
typedef int (*cp_pg_txn_fn)(PGconn *conn, void *arg, struct cp_pg_error *err);
int cp_pg_txn(PGconn *conn, const struct cp_pg_retry *retry, cp_pg_txn_fn fn, void *arg,
              struct cp_pg_error *err);

/*
 * COPY text-format row encoder (pure, no connection): fields are separated by
 * tabs, rows end with '\n', backslash, tab, newline and carriage return are
 * escaped, and a NULL field is written as \N.  PostgreSQL text cannot hold a
 * NUL byte, so a field containing one is CP_ERR_INVAL.
 */
struct cp_pg_copybuf {
    char *data;
    size_t len, cap;
    unsigned row_fields; /* fields in the row being built */
};
void cp_pg_copybuf_init(struct cp_pg_copybuf *b);
void cp_pg_copybuf_free(struct cp_pg_copybuf *b);
/* Escapes s[0..len) into out (room for 2*len bytes); returns bytes written or CP_ERR_INVAL. */
long cp_pg_copy_escape(const char *s, size_t len, char *out);
/* Appends one field; s == NULL means SQL NULL. */
int cp_pg_copybuf_field(struct cp_pg_copybuf *b, const char *s, size_t len);
int cp_pg_copybuf_field_str(struct cp_pg_copybuf *b, const char *s);
int cp_pg_copybuf_field_i64(struct cp_pg_copybuf *b, int64_t v);
/*
 * Appends a bytea field in hex form (text COPY `\\x0a1b...`, which the server reads as
 * bytea `\x0a1b...`).  Any bytes, NUL included: the hex digits never need escaping, so
 * this writes them straight into the buffer instead of escaping an intermediate string.
 */
int cp_pg_copybuf_field_bytea(struct cp_pg_copybuf *b, const void *p, size_t len);
/* Ends the current row. */
int cp_pg_copybuf_end_row(struct cp_pg_copybuf *b);

/*
 * COPY ... FROM STDIN over a connection.  Rows are buffered and sent in
 * chunks of about 64 KiB.  COPY is not allowed in pipeline mode; to make a
 * COPY idempotent, copy into a staging table and INSERT ... ON CONFLICT from
 * it in the same transaction (reliability.md A6).
 *
 *     struct cp_pg_copy c;
 *     if (cp_pg_copy_begin(&c, conn, "COPY t (a, b) FROM STDIN", err) == 0) {
 *         cp_pg_copybuf_field_str(&c.buf, a); cp_pg_copybuf_field_str(&c.buf, b);
 *         cp_pg_copy_end_row(&c);   ...
 *         n = cp_pg_copy_end(&c, err);     // rows copied, or < 0 (COPY already ended)
 *     }
 */
struct cp_pg_copy {
    PGconn *conn;
    struct cp_pg_copybuf buf;
    int64_t rows;
    int failed; /* first error while sending, reported by end */
};
int cp_pg_copy_begin(struct cp_pg_copy *c, PGconn *conn, const char *copy_sql,
                     struct cp_pg_error *err);
/* Ends the row being built in c->buf and flushes when the buffer is large. */
int cp_pg_copy_end_row(struct cp_pg_copy *c);
/* Sends the rest, ends the COPY and returns the row count the server reports. */
int64_t cp_pg_copy_end(struct cp_pg_copy *c, struct cp_pg_error *err);
/* Ends the COPY with an error (the server discards everything); frees the buffer. */
void cp_pg_copy_abort(struct cp_pg_copy *c, const char *why);

#endif
