/* migrate.c - `callpipe migrate`: apply the numbered SQL files in schema/ once each, in order. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "commands.h"
#include "cp_log.h"
#include "cp_pg.h"
#include "cp_time.h"

#define IDENT              NULL /* process-wide lines: "[migrate]" is already the service name */
#define DEFAULT_SCHEMA_DIR "/usr/share/callpipe/schema"
#define MAX_FILE_BYTES     (16 * 1024 * 1024)
/* pg_advisory_lock key shared by every migrator: the bytes of "callpipe" as a bigint. */
#define LOCK_KEY "7161124095494025317"

struct migration {
    int version;
    char *file; /* "001_consumer_offsets.sql" */
    char *sql;
    char checksum[65]; /* hex SHA-256 of the file's bytes */
};

struct applied {
    int version;
    char *name;
    char *checksum;
    char *applied_at;
};

struct plan {
    struct migration *files;
    size_t nfiles;
    struct applied *rows;
    size_t nrows;
};

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: callpipe migrate [--dsn CONNINFO] [--dir DIR] [--status]\n"
        "\n"
        "Applies each schema file NNN_name.sql not yet recorded in schema_migrations, in\n"
        "version order, each in its own transaction together with its record.\n"
        "\n"
        "  --dsn CONNINFO  libpq connection string (default: PGHOST, PGDATABASE, ... from the\n"
        "                  environment)\n"
        "  --dir DIR       migration files (default: $CALLPIPE_SCHEMA_DIR, else schema/ next to\n"
        "                  the binary or in its parent, else " DEFAULT_SCHEMA_DIR ")\n"
        "  --status        list applied, pending and edited migrations; change nothing\n"
        "  -h, --help      this text\n"
        "\n"
        "Exit status: 0 done (or nothing to do), 1 failure (database, edited or failing\n"
        "migration), 2 usage or configuration error.\n");
}

static void plan_free(struct plan *p)
{
    for (size_t i = 0; i < p->nfiles; i++) {
        free(p->files[i].file);
        free(p->files[i].sql);
    }
    for (size_t i = 0; i < p->nrows; i++) {
        free(p->rows[i].name);
        free(p->rows[i].checksum);
        free(p->rows[i].applied_at);
    }
    free(p->files);
    free(p->rows);
    memset(p, 0, sizeof(*p));
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The schema directory when --dir is not given; the result is static or from getenv. */
static const char *find_schema_dir(void)
{
    const char *env = getenv("CALLPIPE_SCHEMA_DIR");
    if (env && *env) return env;
    static char found[PATH_MAX];
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        const char *bindir = dirname(exe);
        /* build dir in a checkout, next to the binary, or an installed prefix/bin */
        static const char *const rel[] = {"../schema", "schema", "../share/callpipe/schema"};
        for (unsigned i = 0; i < CP_ARRAY_LEN(rel); i++) {
            char cand[PATH_MAX];
            if (snprintf(cand, sizeof(cand), "%s/%s", bindir, rel[i]) < (int)sizeof(cand) &&
                is_dir(cand) && realpath(cand, found))
                return found;
        }
    }
    return DEFAULT_SCHEMA_DIR;
}

/* "NNN_name.sql" → version NNN; -1 when the name does not follow the pattern. */
static int parse_file_name(const char *name)
{
    size_t digits = strspn(name, "0123456789");
    size_t len = strlen(name);
    if (digits == 0 || digits > 9 || name[digits] != '_' || len < digits + 1 + 1 + 4 ||
        strcmp(name + len - 4, ".sql") != 0)
        return -1;
    return atoi(name);
}

static int sha256_hex(const char *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        return CP_ERR_INTERNAL;
    for (unsigned i = 0; i < mdlen; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
    out[64] = '\0';
    return 0;
}

static int read_file(const char *path, char **out)
{
    FILE *f = fopen(path, "rb");
    if (!f) return CP_ERR_IO;
    char *buf = malloc(MAX_FILE_BYTES + 1);
    if (!buf) {
        fclose(f);
        return CP_ERR_NOMEM;
    }
    size_t n = fread(buf, 1, MAX_FILE_BYTES + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > MAX_FILE_BYTES || memchr(buf, '\0', n)) {
        free(buf);
        return bad ? CP_ERR_IO : CP_ERR_INVAL;
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

static int cmp_migration(const void *a, const void *b)
{
    const struct migration *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

/* Loads and checksums every NNN_name.sql in dir, sorted by version.  Returns 0 or exit code 2. */
static int load_files(const char *dir, struct plan *p)
{
    DIR *d = opendir(dir);
    if (!d) {
        cp_error(IDENT, "could not open schema directory \"%s\": %s", dir, strerror(errno));
        return 2;
    }
    struct dirent *de;
    size_t cap = 0;
    int rc = 0;
    while ((de = readdir(d)) != NULL && rc == 0) {
        int version = parse_file_name(de->d_name);
        if (version < 0) {
            size_t len = strlen(de->d_name);
            if (len >= 4 && strcmp(de->d_name + len - 4, ".sql") == 0)
                cp_warn(IDENT, "ignoring \"%s\": name is not NNN_name.sql", de->d_name);
            continue;
        }
        if (p->nfiles == cap) {
            cap = cap ? cap * 2 : 16;
            struct migration *nf = realloc(p->files, cap * sizeof(*nf));
            if (!nf) {
                rc = 1;
                break;
            }
            p->files = nf;
        }
        struct migration *m = &p->files[p->nfiles];
        memset(m, 0, sizeof(*m));
        m->version = version;
        m->file = strdup(de->d_name);
        if (!m->file) {
            rc = 1;
            break;
        }
        p->nfiles++;
        char path[PATH_MAX];
        int plen = snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        int err =
            plen > 0 && (size_t)plen < sizeof(path) ? read_file(path, &m->sql) : CP_ERR_TOOBIG;
        if (err == CP_ERR_TOOBIG) {
            cp_error(IDENT, "could not read \"%s/%s\": path too long", dir, de->d_name);
            rc = 2;
        } else if (err < 0) {
            cp_error(IDENT, "could not read \"%s\": %s", path,
                     err == CP_ERR_INVAL ? "file has NUL bytes or is over 16 MiB"
                                         : strerror(errno));
            rc = 2;
        } else if (sha256_hex(m->sql, strlen(m->sql), m->checksum) < 0) {
            cp_error(IDENT, "could not checksum \"%s\"", path);
            rc = 1;
        }
    }
    closedir(d);
    if (rc) return rc;
    qsort(p->files, p->nfiles, sizeof(*p->files), cmp_migration);
    for (size_t i = 1; i < p->nfiles; i++) {
        if (p->files[i].version == p->files[i - 1].version) {
            cp_error(IDENT, "two migrations have version %d: \"%s\" and \"%s\"",
                     p->files[i].version, p->files[i - 1].file, p->files[i].file);
            return 2;
        }
    }
    return 0;
}

static void log_pg_error(const char *what, const struct cp_pg_error *e, int rc)
{
    cp_error(IDENT, "could not %s: %s%s%s%s", what, e->msg[0] ? e->msg : cp_err_str(rc),
             e->sqlstate[0] ? " (SQLSTATE " : "", e->sqlstate, e->sqlstate[0] ? ")" : "");
}

/* Reads schema_migrations (absent table = nothing applied). Returns 0 or -1. */
static int load_applied(PGconn *conn, struct plan *p)
{
    struct cp_pg_error e = {0};
    PGresult *res = NULL;
    int n = cp_pg_exec(conn, "SELECT to_regclass('public.schema_migrations') IS NOT NULL", 0, NULL,
                       &res, &e);
    if (n < 0) {
        log_pg_error("look for schema_migrations", &e, n);
        return -1;
    }
    int exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!exists) return 0;
    n = cp_pg_exec(conn,
                   "SELECT version, name, checksum, "
                   "to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                   "FROM public.schema_migrations ORDER BY version",
                   0, NULL, &res, &e);
    if (n < 0) {
        log_pg_error("read schema_migrations", &e, n);
        return -1;
    }
    p->rows = calloc((size_t)n + 1, sizeof(*p->rows));
    if (!p->rows) {
        PQclear(res);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        struct applied *a = &p->rows[p->nrows++];
        a->version = atoi(PQgetvalue(res, i, 0));
        a->name = strdup(PQgetvalue(res, i, 1));
        a->checksum = strdup(PQgetvalue(res, i, 2));
        a->applied_at = strdup(PQgetvalue(res, i, 3));
        if (!a->name || !a->checksum || !a->applied_at) {
            PQclear(res);
            return -1;
        }
    }
    PQclear(res);
    return 0;
}

static const struct applied *find_applied(const struct plan *p, int version)
{
    for (size_t i = 0; i < p->nrows; i++)
        if (p->rows[i].version == version) return &p->rows[i];
    return NULL;
}

static const struct migration *find_file(const struct plan *p, int version)
{
    for (size_t i = 0; i < p->nfiles; i++)
        if (p->files[i].version == version) return &p->files[i];
    return NULL;
}

/* Every applied migration must still have the bytes it had when applied.  Returns the count of
 * edited ones. */
static int check_edited(const struct plan *p, int quiet)
{
    int edited = 0;
    for (size_t i = 0; i < p->nfiles; i++) {
        const struct migration *m = &p->files[i];
        const struct applied *a = find_applied(p, m->version);
        if (!a) continue;
        if (strcmp(a->checksum, m->checksum) != 0) {
            edited++;
            if (!quiet)
                cp_error(IDENT,
                         "migration \"%s\" was edited after it was applied on %s "
                         "(checksum %.12s in the database, %.12s on disk): restore the file and "
                         "put the change in a new migration",
                         m->file, a->applied_at, a->checksum, m->checksum);
        } else if (strcmp(a->name, m->file) != 0 && !quiet) {
            cp_warn(IDENT, "migration %d was applied as \"%s\" and is now named \"%s\"", m->version,
                    a->name, m->file);
        }
    }
    for (size_t i = 0; i < p->nrows && !quiet; i++)
        if (!find_file(p, p->rows[i].version))
            cp_warn(IDENT, "applied migration \"%s\" has no file in the schema directory",
                    p->rows[i].name);
    return edited;
}

static int print_status(const struct plan *p)
{
    int edited = 0;
    printf("%-8s %-8s %-20s %s\n", "version", "state", "applied_at", "file");
    /* Merge files and rows by version; both are sorted. */
    size_t i = 0, j = 0;
    while (i < p->nfiles || j < p->nrows) {
        const struct migration *m = i < p->nfiles ? &p->files[i] : NULL;
        const struct applied *a = j < p->nrows ? &p->rows[j] : NULL;
        if (m && (!a || m->version < a->version)) {
            printf("%03d      %-8s %-20s %s\n", m->version, "pending", "-", m->file);
            i++;
        } else if (a && (!m || a->version < m->version)) {
            printf("%03d      %-8s %-20s %s (no file)\n", a->version, "applied", a->applied_at,
                   a->name);
            j++;
        } else {
            int same = strcmp(m->checksum, a->checksum) == 0;
            edited += !same;
            printf("%03d      %-8s %-20s %s\n", m->version, same ? "applied" : "EDITED",
                   a->applied_at, m->file);
            i++;
            j++;
        }
    }
    return edited;
}

/* Line number of a 1-based character position (UTF-8) in sql, for error messages. */
static int line_of_position(const char *sql, int position)
{
    int line = 1, chars = 0;
    for (const unsigned char *s = (const unsigned char *)sql; *s; s++) {
        if ((*s & 0xC0) == 0x80) continue;
        if (++chars >= position) break;
        if (*s == '\n') line++;
    }
    return line;
}

struct apply_ctx {
    const struct migration *m;
    int ended_txn; /* the file itself said COMMIT or ROLLBACK */
};

static int apply_fn(PGconn *conn, void *arg, struct cp_pg_error *e)
{
    struct apply_ctx *ctx = arg;
    int rc = cp_pg_exec_script(conn, ctx->m->sql, e);
    if (rc < 0) return rc;
    if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
        ctx->ended_txn = 1;
        return CP_ERR_STATE;
    }
    char version[16];
    snprintf(version, sizeof(version), "%d", ctx->m->version);
    const char *params[] = {version, ctx->m->file, ctx->m->checksum};
    rc = cp_pg_exec(conn,
                    "INSERT INTO public.schema_migrations (version, name, checksum, applied_at) "
                    "VALUES ($1, $2, $3, now())",
                    3, params, NULL, e);
    return rc < 0 ? rc : 0;
}

static int apply_one(PGconn *conn, const struct migration *m)
{
    struct apply_ctx ctx = {m, 0};
    struct cp_pg_error e = {0};
    struct cp_pg_retry once = CP_PG_RETRY_NONE; /* a reconnect would drop the advisory lock */
    int64_t start = cp_time_mono_us();
    int rc = cp_pg_txn(conn, &once, apply_fn, &ctx, &e);
    if (rc < 0) {
        if (ctx.ended_txn)
            cp_error(IDENT,
                     "could not apply \"%s\": the file ends the transaction itself (COMMIT or "
                     "ROLLBACK); migrations must not, and this one may be partly applied",
                     m->file);
        else if (e.position > 0)
            cp_error(IDENT, "could not apply \"%s\" (line %d): %s (SQLSTATE %s)", m->file,
                     line_of_position(m->sql, e.position), e.msg, e.sqlstate);
        else
            cp_error(IDENT, "could not apply \"%s\": %s%s%s%s", m->file,
                     e.msg[0] ? e.msg : cp_err_str(rc), e.sqlstate[0] ? " (SQLSTATE " : "",
                     e.sqlstate, e.sqlstate[0] ? ")" : "");
        return -1;
    }
    cp_info(IDENT, "applied %s in %lld ms", m->file,
            (long long)((cp_time_mono_us() - start) / 1000));
    return 0;
}

static int migrate(PGconn *conn, struct plan *p)
{
    struct cp_pg_error e = {0};
    const char *key[] = {LOCK_KEY};
    PGresult *res = NULL;
    int n = cp_pg_exec(conn, "SELECT pg_try_advisory_lock($1::bigint)", 1, key, &res, &e);
    if (n < 0) {
        log_pg_error("take the migration lock", &e, n);
        return 1;
    }
    int got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!got) {
        cp_info(IDENT, "another migrator holds the lock; waiting for it");
        n = cp_pg_exec(conn, "SELECT pg_advisory_lock($1::bigint)", 1, key, NULL, &e);
        if (n < 0) {
            log_pg_error("take the migration lock", &e, n);
            return 1;
        }
    }
    /* Under the lock, so "does it exist" cannot race; plain CREATE avoids a NOTICE each run. */
    n = cp_pg_exec(conn, "SELECT to_regclass('public.schema_migrations') IS NULL", 0, NULL, &res,
                   &e);
    if (n < 0) {
        log_pg_error("look for schema_migrations", &e, n);
        return 1;
    }
    int missing = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (missing)
        n = cp_pg_exec(conn,
                       "CREATE TABLE public.schema_migrations ("
                       " version int PRIMARY KEY,"
                       " name text NOT NULL,"
                       " checksum text NOT NULL,"
                       " applied_at timestamptz NOT NULL DEFAULT now())",
                       0, NULL, NULL, &e);
    if (n < 0) {
        log_pg_error("create schema_migrations", &e, n);
        return 1;
    }
    /* Read what is applied only now, under the lock, so a concurrent run's work is seen. */
    if (load_applied(conn, p) < 0) return 1;
    if (check_edited(p, 0) > 0) return 1;
    int done = 0, latest = 0;
    for (size_t i = 0; i < p->nfiles; i++) {
        const struct migration *m = &p->files[i];
        if (find_applied(p, m->version)) continue;
        if (apply_one(conn, m) < 0) return 1;
        done++;
    }
    for (size_t i = 0; i < p->nfiles; i++)
        latest = p->files[i].version > latest ? p->files[i].version : latest;
    for (size_t i = 0; i < p->nrows; i++)
        latest = p->rows[i].version > latest ? p->rows[i].version : latest;
    if (done)
        cp_info(IDENT, "applied %d migration%s; schema is at version %d", done,
                done == 1 ? "" : "s", latest);
    else
        cp_info(IDENT, "nothing to apply; schema is at version %d", latest);
    (void)cp_pg_exec(conn, "SELECT pg_advisory_unlock($1::bigint)", 1, key, NULL, NULL);
    return 0;
}

int cp_cmd_migrate(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"dsn", required_argument, NULL, 'd'},
        {"dir", required_argument, NULL, 'D'},
        {"status", no_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dsn = "", *dir = NULL;
    int status_only = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dsn = optarg;
            break;
        case 'D':
            dir = optarg;
            break;
        case 's':
            status_only = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            fprintf(stderr, "callpipe migrate: unknown or incomplete option \"%s\"\n",
                    argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "callpipe migrate: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!dir) dir = find_schema_dir();

    struct plan p = {0};
    int rc = load_files(dir, &p);
    if (rc) {
        plan_free(&p);
        return rc;
    }
    if (p.nfiles == 0) {
        cp_error(IDENT, "no migrations (NNN_name.sql) in \"%s\"", dir);
        plan_free(&p);
        return 2;
    }

    PGconn *conn = NULL;
    struct cp_pg_error e = {0};
    struct cp_pg_retry retry = CP_PG_RETRY_DEFAULT;
    int crc = cp_pg_connect(dsn, &retry, &conn, &e);
    if (crc < 0) {
        log_pg_error("connect to postgresql", &e, crc);
        plan_free(&p);
        return crc == CP_ERR_CONFIG ? 2 : 1;
    }
    /* Unqualified names in migrations land in public, whatever the role's search_path. */
    int n =
        cp_pg_exec(conn, "SELECT set_config('search_path', 'public', false)", 0, NULL, NULL, &e);
    if (n < 0) {
        log_pg_error("set search_path", &e, n);
        rc = 1;
    } else if (status_only) {
        if (load_applied(conn, &p) < 0)
            rc = 1;
        else
            rc = print_status(&p) > 0 ? 1 : 0;
    } else {
        cp_info(IDENT, "migrating database \"%s\" on %s as \"%s\" from %s (%zu files)", PQdb(conn),
                PQhost(conn), PQuser(conn), dir, p.nfiles);
        rc = migrate(conn, &p);
    }
    PQfinish(conn);
    plan_free(&p);
    return rc;
}
