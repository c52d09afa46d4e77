/* pg_selftest.c - core/cp_pg.c against a live PostgreSQL: errors, COPY round trip, txn replay. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp_err.h"
#include "cp_log.h"
#include "cp_pg.h"

/*
 * usage: pg_selftest CONNINFO      (a scratch database: tables pgst_* are dropped and created)
 * Prints one line per check and "N passed, N failed"; exits 0 only when all passed.
 */

static int passed, failed;
static const char *dsn;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            passed++;                                                                              \
        } else {                                                                                   \
            failed++;                                                                              \
            printf("not ok %s:%d: ", __FILE__, __LINE__);                                          \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)

static int exec0(PGconn *conn, const char *sql)
{
    struct cp_pg_error e = {0};
    int rc = cp_pg_exec(conn, sql, 0, NULL, NULL, &e);
    if (rc < 0) printf("# %s: %s %s\n", sql, e.sqlstate, e.msg);
    return rc;
}

static void check_connect(void)
{
    struct cp_pg_error e = {0};
    struct cp_pg_retry fast = {2, 10, 10};
    PGconn *conn = NULL;
    int rc = cp_pg_connect("host=/nonexistent-callpipe-dir port=5432", &fast, &conn, &e);
    CHECK(rc == CP_ERR_CONN && conn == NULL, "refused connect: %s", cp_err_name(rc));
    CHECK(strstr(e.msg, "nonexistent-callpipe-dir") != NULL, "refused message: %s", e.msg);
    CHECK(strchr(e.msg, '\n') == NULL, "message is one line");
    rc = cp_pg_connect("this is = not valid", &fast, &conn, &e);
    CHECK(rc == CP_ERR_CONFIG, "bad conninfo: %s", cp_err_name(rc));
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s dbname=no_such_db_callpipe", dsn);
    rc = cp_pg_connect(buf, &fast, &conn, &e);
    CHECK(rc == CP_ERR_CONFIG, "missing database: %s (%s)", cp_err_name(rc), e.msg);
}

static void check_exec(PGconn *conn)
{
    struct cp_pg_error e = {0};
    CHECK(exec0(conn, "DROP TABLE IF EXISTS pgst_kv") == 0, "drop");
    CHECK(exec0(conn, "CREATE TABLE pgst_kv (k text PRIMARY KEY, n int)") == 0, "create");
    const char *p1[] = {"a'; DROP TABLE pgst_kv; --", "1"};
    int rc = cp_pg_exec(conn, "INSERT INTO pgst_kv VALUES ($1, $2)", 2, p1, NULL, &e);
    CHECK(rc == 1, "insert count %d", rc);
    const char *p2[] = {"b", NULL};
    rc = cp_pg_exec(conn, "INSERT INTO pgst_kv VALUES ($1, $2)", 2, p2, NULL, &e);
    CHECK(rc == 1, "insert NULL param %d", rc);
    PGresult *res = NULL;
    rc = cp_pg_exec(conn, "SELECT k, n FROM pgst_kv ORDER BY k", 0, NULL, &res, &e);
    CHECK(rc == 2 && res, "select count %d", rc);
    if (res) {
        CHECK(strcmp(PQgetvalue(res, 0, 0), p1[0]) == 0, "parameter kept verbatim");
        CHECK(PQgetisnull(res, 1, 1), "NULL parameter stored as NULL");
        PQclear(res);
    }
    rc = cp_pg_exec(conn, "UPDATE pgst_kv SET n = 5", 0, NULL, NULL, &e);
    CHECK(rc == 2, "update count %d", rc);

    rc = cp_pg_exec(conn, "INSERT INTO pgst_kv VALUES ($1, $2)", 2, p2, NULL, &e);
    CHECK(rc == CP_ERR_PG_DATA && strcmp(e.sqlstate, "23505") == 0, "duplicate: %s %s",
          cp_err_name(rc), e.sqlstate);
    const char *p3[] = {"c", "not a number"};
    rc = cp_pg_exec(conn, "INSERT INTO pgst_kv VALUES ($1, $2)", 2, p3, &res, &e);
    CHECK(rc == CP_ERR_PG_DATA && strcmp(e.sqlstate, "22P02") == 0 && res == NULL, "bad int: %s %s",
          cp_err_name(rc), e.sqlstate);
    rc = cp_pg_exec(conn, "SELECT 1 FROM\n  nowhere_table", 0, NULL, NULL, &e);
    CHECK(rc == CP_ERR_PG_SQL && strcmp(e.sqlstate, "42P01") == 0 && e.position == 17,
          "undefined table: %s %s pos %d", cp_err_name(rc), e.sqlstate, e.position);
    CHECK(strstr(e.msg, "nowhere_table") != NULL, "message names the table: %s", e.msg);
    rc = cp_pg_exec(conn, "COPY pgst_kv FROM STDIN", 0, NULL, NULL, &e);
    CHECK(rc == CP_ERR_INVAL, "COPY through exec refused: %s", cp_err_name(rc));
    CHECK(exec0(conn, "SELECT 1") == 1, "connection usable after refused COPY");
    rc = cp_pg_exec_script(conn, "SELECT 1; SELECT 2;", &e);
    CHECK(rc == 0, "script");
}

static const char *const nasty[] = {
    "plain",
    "tab\there",
    "new\nline",
    "cr\rret",
    "back\\slash",
    "\\N",
    "\\.",
    "",
    "M\xc3\xbcller \xe2\x82\xac",
    "end\\",
    "\\\\t",
    NULL,
};

static void check_copy(PGconn *conn)
{
    struct cp_pg_error e = {0};
    CHECK(exec0(conn, "DROP TABLE IF EXISTS pgst_copy") == 0, "drop copy");
    CHECK(exec0(conn, "CREATE TABLE pgst_copy (i int, s text, n bigint)") == 0, "create copy");
    struct cp_pg_copy c;
    int rc = cp_pg_copy_begin(&c, conn, "COPY pgst_copy (i, s, n) FROM STDIN", &e);
    CHECK(rc == 0, "copy begin: %s", e.msg);
    const int nn = (int)CP_ARRAY_LEN(nasty);
    const int rows = 6000; /* several 64 KiB flushes */
    char big[300];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    for (int i = 0; i < rows && rc == 0; i++) {
        rc |= cp_pg_copybuf_field_i64(&c.buf, i);
        rc |= cp_pg_copybuf_field_str(&c.buf, i < nn ? nasty[i] : big);
        if (i % 7 == 0)
            rc |= cp_pg_copybuf_field(&c.buf, NULL, 0);
        else
            rc |= cp_pg_copybuf_field_i64(&c.buf, INT64_MAX - i);
        rc |= cp_pg_copy_end_row(&c);
    }
    int64_t n = cp_pg_copy_end(&c, &e);
    CHECK(rc == 0 && n == rows, "copy rows %" PRId64 " (%s)", n, e.msg);
    PGresult *res = NULL;
    rc = cp_pg_exec(conn, "SELECT i, s, n FROM pgst_copy WHERE i < 20 ORDER BY i", 0, NULL, &res,
                    &e);
    CHECK(rc == 20, "read back %d", rc);
    for (int i = 0; res && i < nn; i++) {
        if (nasty[i])
            CHECK(!PQgetisnull(res, i, 1) && strcmp(PQgetvalue(res, i, 1), nasty[i]) == 0,
                  "row %d round trip: got \"%s\"", i, PQgetvalue(res, i, 1));
        else
            CHECK(PQgetisnull(res, i, 1), "row %d NULL round trip", i);
    }
    if (res) {
        CHECK(PQgetisnull(res, 7, 2) && !PQgetisnull(res, 8, 2), "NULL bigint column");
        CHECK(strcmp(PQgetvalue(res, 1, 2), "9223372036854775806") == 0, "bigint value");
    }
    PQclear(res);

    /* A bad value fails the whole COPY as a data error; the connection stays usable. */
    rc = cp_pg_copy_begin(&c, conn, "COPY pgst_copy (i, s) FROM STDIN", &e);
    CHECK(rc == 0, "copy2 begin");
    (void)cp_pg_copybuf_field_str(&c.buf, "1");
    (void)cp_pg_copybuf_field_str(&c.buf, "ok");
    (void)cp_pg_copy_end_row(&c);
    (void)cp_pg_copybuf_field_str(&c.buf, "one");
    (void)cp_pg_copybuf_field_str(&c.buf, "bad");
    (void)cp_pg_copy_end_row(&c);
    n = cp_pg_copy_end(&c, &e);
    CHECK(n == CP_ERR_PG_DATA && strcmp(e.sqlstate, "22P02") == 0, "bad copy: %" PRId64 " %s", n,
          e.sqlstate);
    CHECK(exec0(conn, "SELECT 1 FROM pgst_copy") == rows, "nothing of the bad COPY kept");

    /* Abort discards everything. */
    rc = cp_pg_copy_begin(&c, conn, "COPY pgst_copy (i, s) FROM STDIN", &e);
    (void)cp_pg_copybuf_field_str(&c.buf, "99999");
    (void)cp_pg_copybuf_field_str(&c.buf, "aborted");
    (void)cp_pg_copy_end_row(&c);
    cp_pg_copy_abort(&c, "test abort");
    CHECK(rc == 0 && exec0(conn, "SELECT 1 FROM pgst_copy WHERE i = 99999") == 0, "abort");

    /* Not a COPY FROM STDIN. */
    rc = cp_pg_copy_begin(&c, conn, "SELECT 1", &e);
    CHECK(rc == CP_ERR_INVAL, "copy_begin on SELECT: %s", cp_err_name(rc));
    cp_pg_copybuf_free(&c.buf);
    CHECK(exec0(conn, "SELECT 1") == 1, "usable after copy_begin refusal");
}

struct txn_case {
    int calls;
    int fail_times; /* how many attempts fail before one succeeds */
    const char *fail_sql;
    int swallow; /* run a failing statement and return 0 anyway */
};

static int txn_fn(PGconn *conn, void *arg, struct cp_pg_error *e)
{
    struct txn_case *t = arg;
    t->calls++;
    char v[16];
    snprintf(v, sizeof(v), "%d", t->calls);
    const char *p[] = {v};
    int rc = cp_pg_exec(conn, "INSERT INTO pgst_txn (attempt) VALUES ($1)", 1, p, NULL, e);
    if (rc < 0) return rc;
    if (t->swallow) {
        (void)cp_pg_exec(conn, "SELECT 1/0", 0, NULL, NULL, NULL);
        return 0;
    }
    if (t->calls <= t->fail_times) {
        rc = cp_pg_exec(conn, t->fail_sql, 0, NULL, NULL, e);
        return rc < 0 ? rc : 0;
    }
    return 0;
}

static void check_txn(PGconn *conn)
{
    struct cp_pg_error e = {0};
    struct cp_pg_retry r = {4, 10, 50};
    CHECK(exec0(conn, "DROP TABLE IF EXISTS pgst_txn") == 0, "drop txn");
    CHECK(exec0(conn, "CREATE TABLE pgst_txn (attempt int)") == 0, "create txn");

    struct txn_case ok = {0, 0, NULL, 0};
    CHECK(cp_pg_txn(conn, &r, txn_fn, &ok, &e) == 0 && ok.calls == 1, "plain txn");

    /* 40001: rolled back and replayed on the same connection. */
    exec0(conn, "TRUNCATE pgst_txn");
    struct txn_case ser = {0, 2,
                           "DO $$ BEGIN RAISE EXCEPTION 'test' USING ERRCODE = "
                           "'serialization_failure'; END $$",
                           0};
    int rc = cp_pg_txn(conn, &r, txn_fn, &ser, &e);
    CHECK(rc == 0 && ser.calls == 3, "serialization replay: %s calls %d", cp_err_name(rc),
          ser.calls);
    CHECK(exec0(conn, "SELECT 1 FROM pgst_txn WHERE attempt = 3") == 1 &&
              exec0(conn, "SELECT 1 FROM pgst_txn") == 1,
          "only the successful attempt committed");

    /* The session is killed (57P01): reconnect, then replay. */
    exec0(conn, "TRUNCATE pgst_txn");
    struct txn_case kill = {0, 1, "SELECT pg_terminate_backend(pg_backend_pid())", 0};
    rc = cp_pg_txn(conn, &r, txn_fn, &kill, &e);
    CHECK(rc == 0 && kill.calls == 2, "reconnect replay: %s calls %d (%s)", cp_err_name(rc),
          kill.calls, e.msg);
    CHECK(PQstatus(conn) == CONNECTION_OK && exec0(conn, "SELECT 1 FROM pgst_txn") == 1,
          "one row after reconnect");

    /* Data errors are not replayed. */
    exec0(conn, "TRUNCATE pgst_txn");
    struct txn_case data = {0, 9, "SELECT 'x'::int", 0};
    rc = cp_pg_txn(conn, &r, txn_fn, &data, &e);
    CHECK(rc == CP_ERR_PG_DATA && data.calls == 1, "data error not replayed: %s calls %d",
          cp_err_name(rc), data.calls);
    CHECK(exec0(conn, "SELECT 1 FROM pgst_txn") == 0, "data error rolled back");

    /* Retries run out. */
    struct txn_case always = {0, 99, ser.fail_sql, 0};
    rc = cp_pg_txn(conn, &r, txn_fn, &always, &e);
    CHECK(rc == CP_ERR_AGAIN && always.calls == 4, "gives up after 4: %s calls %d", cp_err_name(rc),
          always.calls);

    /* fn ignored a failed statement: never reported as committed. */
    struct txn_case swallow = {0, 0, NULL, 1};
    rc = cp_pg_txn(conn, &r, txn_fn, &swallow, &e);
    CHECK(rc == CP_ERR_STATE, "swallowed error: %s", cp_err_name(rc));
    CHECK(exec0(conn, "SELECT 1 FROM pgst_txn") == 0, "swallowed error rolled back");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: pg_selftest CONNINFO\n");
        return 2;
    }
    dsn = argv[1];
    cp_log_set_service("pg_selftest");
    check_connect();
    PGconn *conn = NULL;
    struct cp_pg_error e = {0};
    if (cp_pg_connect(dsn, NULL, &conn, &e) < 0) {
        printf("not ok: could not connect: %s\n", e.msg);
        return 1;
    }
    exec0(conn, "SET client_min_messages = warning");
    check_exec(conn);
    check_copy(conn);
    check_txn(conn);
    PQfinish(conn);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
