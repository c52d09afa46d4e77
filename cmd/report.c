/* report.c - `callpipe report`: queue KPIs from the reporting views, as an aligned table or CSV. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "cp_log.h"
#include "cp_pg.h"

/*
 * Reads only the `reporting.*` views (schema/README.md), as the read-only role
 * callpipe_reader: it needs no right on any base table.  Rates are computed from the summed
 * counters in SQL, never by averaging rates (metrics.md), also for --by queue totals.
 */

#define MAX_QUEUES 64

static void usage(FILE *f)
{
    fprintf(f,
            "usage: callpipe report [--dsn CONNINFO] [--since DURATION | --from T --to T]\n"
            "                       [--grain 15m|30m|1h|1d] [--org ORG] [--queue [ORG/]QUEUE]...\n"
            "                       [--by interval|queue] [--format table|csv]\n"
            "       callpipe report --live [--dsn CONNINFO] [--org ORG] [--queue [ORG/]QUEUE]...\n\n"
            "Queue KPIs per interval (or per queue over the range with --by queue): offered,\n"
            "answered, abandoned, service level (the queue's headline: threshold and abandon\n"
            "mode from queue_settings), ASA, AHT and abandon rate.  --live shows the live\n"
            "queue state (reporting.queue_now).\n\n"
            "  --dsn CONNINFO   libpq connection string (default: $CALLPIPE_PG_READER_DSN, else\n"
            "                   the PG* environment with user=callpipe_reader)\n"
            "  --since D        the last D before now: 90m, 2h, 1d (default 2h)\n"
            "  --from/--to T    a range of interval starts, e.g. 2026-11-25T10:00Z (UTC unless\n"
            "                   an offset is given); --to is exclusive\n"
            "  --grain G        interval length (default 15m)\n"
            "  --org ORG        only this org\n"
            "  --queue Q        only these queues (repeatable; QUEUE or ORG/QUEUE)\n"
            "  --by B           interval (default) or queue: one row per queue over the range\n"
            "  --format F       table (default, aligned) or csv (RFC 4180, header row)\n");
}

static const char *const grain_views[][2] = {
    {"15m", "reporting.queue_interval_15m"},
    {"30m", "reporting.queue_interval_30m"},
    {"1h", "reporting.queue_interval_1h"},
    {"1d", "reporting.queue_interval_1d"},
};

/* Postgres text array literal of the queue filters: {"a","b/c"}. */
static char *queue_array(char **queues, int n)
{
    size_t cap = 3;
    for (int i = 0; i < n; i++)
        cap += strlen(queues[i]) * 2 + 3;
    char *s = malloc(cap), *p = s;
    if (!s)
        return NULL;
    *p++ = '{';
    for (int i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        *p++ = '"';
        for (const char *q = queues[i]; *q; q++) {
            if (*q == '"' || *q == '\\')
                *p++ = '\\';
            *p++ = *q;
        }
        *p++ = '"';
    }
    *p++ = '}';
    *p = 0;
    return s;
}

static bool is_numeric_col(const char *name)
{
    return strcmp(name, "interval") != 0 && strcmp(name, "org") != 0 &&
           strcmp(name, "queue") != 0 && strcmp(name, "updated") != 0 &&
           strcmp(name, "oldest_since") != 0;
}

static void csv_cell(FILE *out, const char *v)
{
    if (!strpbrk(v, ",\"\r\n")) {
        fputs(v, out);
        return;
    }
    fputc('"', out);
    for (; *v; v++) {
        if (*v == '"')
            fputc('"', out);
        fputc(*v, out);
    }
    fputc('"', out);
}

/* Display width of a UTF-8 string (code points; queue names may be non-ASCII). */
static int width_of(const char *s)
{
    int w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

static void print_result(PGresult *r, bool csv, FILE *out)
{
    int nf = PQnfields(r), nt = PQntuples(r);
    if (csv) {
        for (int c = 0; c < nf; c++) {
            if (c)
                fputc(',', out);
            csv_cell(out, PQfname(r, c));
        }
        fputc('\n', out);
        for (int i = 0; i < nt; i++) {
            for (int c = 0; c < nf; c++) {
                if (c)
                    fputc(',', out);
                if (!PQgetisnull(r, i, c))
                    csv_cell(out, PQgetvalue(r, i, c));
            }
            fputc('\n', out);
        }
        return;
    }
    int *w = calloc((size_t)nf, sizeof *w);
    if (!w)
        return;
    for (int c = 0; c < nf; c++) {
        w[c] = width_of(PQfname(r, c));
        for (int i = 0; i < nt; i++) {
            int x = PQgetisnull(r, i, c) ? 1 : width_of(PQgetvalue(r, i, c));
            if (x > w[c])
                w[c] = x;
        }
    }
    for (int c = 0; c < nf; c++) {
        const char *h = PQfname(r, c);
        int pad = w[c] - width_of(h);
        if (is_numeric_col(h))
            fprintf(out, "%s%*s%s", c ? "  " : "", pad, "", h);
        else
            fprintf(out, "%s%s%*s", c ? "  " : "", h, c + 1 < nf ? pad : 0, "");
    }
    fputc('\n', out);
    for (int c = 0; c < nf; c++)
        for (int k = 0; k < w[c] + (c ? 2 : 0); k++)
            fputc(c && k < 2 ? ' ' : '-', out);
    fputc('\n', out);
    for (int i = 0; i < nt; i++) {
        for (int c = 0; c < nf; c++) {
            const char *v = PQgetisnull(r, i, c) ? "-" : PQgetvalue(r, i, c);
            int pad = w[c] - width_of(v);
            if (is_numeric_col(PQfname(r, c)))
                fprintf(out, "%s%*s%s", c ? "  " : "", pad, "", v);
            else
                fprintf(out, "%s%s%*s", c ? "  " : "", v, c + 1 < nf ? pad : 0, "");
        }
        fputc('\n', out);
    }
    if (nt == 0)
        fprintf(out, "(no rows)\n");
    free(w);
}

/* The common filter: $1 from, $2 to, $3 org (NULL = all), $4 queue array (NULL = all). */
#define FILTER                                                                                     \
    " WHERE interval_start >= $1::timestamptz AND interval_start < $2::timestamptz"                \
    " AND ($3::text IS NULL OR org = $3)"                                                          \
    " AND ($4::text[] IS NULL OR queue = ANY($4::text[]) OR org || '/' || queue = ANY($4::text[]))"

static const char sql_by_interval[] =
    "SELECT to_char(interval_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS interval,"
    " org, queue, offered, answered, abandoned,"
    " round(service_level * 100, 1) AS sl_pct,"
    " sl_threshold_ms / 1000 AS sl_s,"
    " round(asa_ms / 1000, 1) AS asa_s,"
    " round(aht_ms / 1000, 1) AS aht_s,"
    " round(abandon_rate * 100, 1) AS abandon_pct"
    " FROM %s" FILTER " ORDER BY interval_start, org, queue";

/* Totals over the range: sums first, then the formulas of the views (abandon mode of the
 * latest interval). */
static const char sql_by_queue[] =
    "SELECT org, queue, sum(offered) AS offered, sum(answered) AS answered,"
    " sum(abandoned) AS abandoned,"
    " round(100 * CASE (array_agg(abandon_mode ORDER BY interval_start DESC))[1]"
    "   WHEN 'ignore' THEN sum(answered_within_sl)::numeric / NULLIF(sum(answered), 0)"
    "   WHEN 'positive' THEN (sum(answered_within_sl) + sum(abandoned_within_sl))::numeric"
    "                        / NULLIF(sum(answered) + sum(abandoned), 0)"
    "   ELSE sum(answered_within_sl)::numeric / NULLIF(sum(answered) + sum(abandoned), 0)"
    " END, 1) AS sl_pct,"
    " (array_agg(sl_threshold_ms ORDER BY interval_start DESC))[1] / 1000 AS sl_s,"
    " round(sum(answered_wait_ms)::numeric / NULLIF(sum(answered), 0) / 1000, 1) AS asa_s,"
    " round(sum(handle_ms)::numeric / NULLIF(sum(handled), 0) / 1000, 1) AS aht_s,"
    " round(100 * sum(abandoned)::numeric / NULLIF(sum(offered), 0), 1) AS abandon_pct"
    " FROM %s" FILTER " GROUP BY org, queue ORDER BY org, queue";

static const char sql_live[] =
    "SELECT org, queue, calls_waiting AS waiting,"
    " to_char(oldest_waiting_since AT TIME ZONE 'UTC', 'HH24:MI:SS') AS oldest_since,"
    " round(greatest(longest_wait_ms, 0) / 1000.0, 1) AS longest_wait_s,"
    " agents_connected AS agents_talking,"
    " to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS updated"
    " FROM reporting.queue_now"
    " WHERE ($1::text IS NULL OR org = $1)"
    " AND ($2::text[] IS NULL OR queue = ANY($2::text[]) OR org || '/' || queue = ANY($2::text[]))"
    " ORDER BY org, queue";

int cp_cmd_report(int argc, char **argv)
{
    const char *dsn = getenv("CALLPIPE_PG_READER_DSN");
    const char *since = NULL, *from = NULL, *to = NULL, *grain = "15m", *org = NULL;
    const char *by = "interval", *format = "table";
    char *queues[MAX_QUEUES];
    int nq = 0;
    bool live = false;
    static const struct option opts[] = {
        {"dsn", required_argument, NULL, 'd'},   {"since", required_argument, NULL, 's'},
        {"from", required_argument, NULL, 'f'},  {"to", required_argument, NULL, 't'},
        {"grain", required_argument, NULL, 'g'}, {"org", required_argument, NULL, 'o'},
        {"queue", required_argument, NULL, 'q'}, {"by", required_argument, NULL, 'b'},
        {"format", required_argument, NULL, 'F'}, {"live", no_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'd': dsn = optarg; break;
        case 's': since = optarg; break;
        case 'f': from = optarg; break;
        case 't': to = optarg; break;
        case 'g': grain = optarg; break;
        case 'o': org = optarg; break;
        case 'q':
            if (nq == MAX_QUEUES) {
                fprintf(stderr, "callpipe report: at most %d --queue\n", MAX_QUEUES);
                return 2;
            }
            queues[nq++] = optarg;
            break;
        case 'b': by = optarg; break;
        case 'F': format = optarg; break;
        case 'l': live = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "callpipe report: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    const char *view = NULL;
    for (size_t i = 0; i < CP_ARRAY_LEN(grain_views); i++)
        if (strcmp(grain, grain_views[i][0]) == 0)
            view = grain_views[i][1];
    bool csv = strcmp(format, "csv") == 0;
    if (!view || (!csv && strcmp(format, "table") != 0) ||
        (strcmp(by, "interval") != 0 && strcmp(by, "queue") != 0) ||
        (since && (from || to)) || (!from != !to)) {
        usage(stderr);
        return 2;
    }
    if (!dsn)
        dsn = "user=callpipe_reader";

    struct cp_pg_error perr = {{0}, {0}, 0};
    struct cp_pg_retry retry = CP_PG_RETRY_NONE;
    PGconn *pg = NULL;
    if (cp_pg_connect(dsn, &retry, &pg, &perr) != 0) {
        cp_error(NULL, "could not connect to PostgreSQL: %s", perr.msg);
        return 1;
    }
    char *qarr = nq ? queue_array(queues, nq) : NULL;
    char sql[4096];
    PGresult *res = NULL;
    int rc;
    char since_buf[64];
    if (live) {
        const char *params[2] = {org, qarr};
        rc = cp_pg_exec(pg, sql_live, 2, params, &res, &perr);
    } else {
        /* --since: the range is [now - D, now + 1 day), computed by the server. */
        PGresult *rr = NULL;
        const char *p1[1] = {since ? since : "2h"};
        rc = 0;
        if (!from) {
            rc = cp_pg_exec(pg,
                            "SELECT to_char((now() - $1::interval) AT TIME ZONE 'UTC', "
                            "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
                            1, p1, &rr, &perr);
            if (rc >= 0) {
                snprintf(since_buf, sizeof since_buf, "%s", PQgetvalue(rr, 0, 0));
                from = since_buf;
                to = "infinity";
            }
            PQclear(rr);
        }
        if (rc >= 0) {
            snprintf(sql, sizeof sql, strcmp(by, "queue") == 0 ? sql_by_queue : sql_by_interval,
                     view);
            const char *params[4] = {from, to, org, qarr};
            rc = cp_pg_exec(pg, sql, 4, params, &res, &perr);
        }
    }
    free(qarr);
    if (rc < 0) {
        cp_error(NULL, "could not read the report: %s", perr.msg);
        PQfinish(pg);
        return rc == CP_ERR_PG_DATA || rc == CP_ERR_PG_SQL ? 2 : 1;
    }
    print_result(res, csv, stdout);
    PQclear(res);
    PQfinish(pg);
    return fflush(stdout) == 0 ? 0 : 1;
}
