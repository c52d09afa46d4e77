/* cp_config.c - loads YAML service configuration from a field table via libcyaml; secrets. */
#include "cp_config.h"

#include <ctype.h>
#include <cyaml/cyaml.h>
#include <errno.h>
#include <getopt.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "cp_log.h"

/*
 * How a load works:
 *  1. The field table is turned into a libcyaml schema at runtime.  Every scalar is loaded
 *     as a string into a "raw slot" array (one slot per field), so that libcyaml enforces
 *     the shape of the document (unknown keys, duplicate keys, scalar vs mapping vs list)
 *     and we do the typed conversion ourselves, with our own messages and bounds.
 *  2. libcyaml reports problems through its log callback with a backtrace whose marks point
 *     at where the parser stood, not at the offending key (an unknown key in sources[0] is
 *     reported at the previous value).  So we also read the file with libyaml's event
 *     parser: that pass knows the table, finds the exact line and column of every key and
 *     value, and explains structural errors itself.  libcyaml's own text is the fallback.
 *  3. Raw strings are converted into the caller's struct: environment overrides, defaults,
 *     required keys, bounds, enums, secrets.  Errors name file:line:column from pass 2.
 */

#define CFG_PATH_MAX 256
#define CFG_DEPTH_MAX 16
#define SECRET_FILE_MAX (1024 * 1024)
#define ECHO_MAX 60

#define MS_SECOND INT64_C(1000)
#define MS_MINUTE (60 * MS_SECOND)
#define MS_HOUR (60 * MS_MINUTE)
#define MS_DAY (24 * MS_HOUR)

/* libcyaml fills one of these per field; which member depends on the field type. */
struct raw_slot {
    char *str;      /* scalars */
    void *ptr;      /* MAPPING: struct raw_slot[sub->nfields]; LIST: array of those */
    uint32_t count; /* LIST entries */
};

struct loc {
    char *path;
    int kline, kcol; /* 1-based; 0 when the node has no key (root, list entries) */
    int vline, vcol;
    bool is_null; /* `key:`, `key: ~`, `key: null` */
};

enum origin { ORIGIN_FILE, ORIGIN_ENV, ORIGIN_DEFAULT };

struct load_ctx {
    const struct cp_config_table *top;
    const char *file;
    char *err;
    size_t errcap;
    struct loc *locs;
    size_t nlocs, caplocs;
    /* libcyaml's log lines, kept for the fallback message */
    char cy_msg[256];
    char cy_trace[160];
    int cy_state; /* 0 nothing yet, 1 have message, 2 have trace */
};

/* ---------------------------------------------------------------- small helpers */

static void set_err(char *err, size_t cap, const char *fmt, ...) CP_PRINTF(3, 4);
static void set_err(char *err, size_t cap, const char *fmt, ...)
{
    if (!err || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

/* Paths longer than CFG_PATH_MAX are cut; they only label messages and locations. */
static void join_path(char *dst, size_t cap, const char *parent, const char *key)
{
    int n = parent[0] ? snprintf(dst, cap, "%s.%s", parent, key) : snprintf(dst, cap, "%s", key);
    if (n < 0 || (size_t)n >= cap)
        dst[cap - 1] = '\0';
}

static void index_path(char *dst, size_t cap, const char *parent, size_t i)
{
    int n = snprintf(dst, cap, "%s[%zu]", parent, i);
    if (n < 0 || (size_t)n >= cap)
        dst[cap - 1] = '\0';
}

/* "sources[0].listen" -> "sources[0]" -> "sources" -> "" */
static void parent_path(char *path)
{
    char *dot = strrchr(path, '.');
    char *br = strrchr(path, '[');
    char *cut = dot > br ? dot : br;
    if (cut)
        *cut = '\0';
    else
        path[0] = '\0';
}

static const char *where(const char *path, char *buf, size_t cap)
{
    if (!path[0])
        return "at top level";
    snprintf(buf, cap, "in %s", path);
    return buf;
}

static void valid_keys(const struct cp_config_table *t, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < t->nfields && n < cap; i++) {
        int w = snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", t->fields[i].key);
        if (w < 0)
            break;
        n += (size_t)w;
    }
}

static void enum_list(const char *const *names, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; names && names[i] && n < cap; i++) {
        int w = snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", names[i]);
        if (w < 0)
            break;
        n += (size_t)w;
    }
}

static const char *type_name(enum cp_config_type type)
{
    switch (type) {
    case CP_CFG_STRING: return "string";
    case CP_CFG_INT: return "integer";
    case CP_CFG_BOOL: return "boolean";
    case CP_CFG_DURATION: return "duration";
    case CP_CFG_SIZE: return "size";
    case CP_CFG_ENUM: return "enum";
    case CP_CFG_SECRET: return "secret";
    case CP_CFG_MAPPING: return "mapping";
    case CP_CFG_LIST: return "list of mappings";
    }
    return "?";
}

static bool is_scalar_type(enum cp_config_type type)
{
    return type != CP_CFG_MAPPING && type != CP_CFG_LIST;
}

static bool has_bounds(const struct cp_config_field *f)
{
    return f->min < f->max;
}

/* Copies s for an error message: at most ECHO_MAX bytes, control bytes shown as '?'. */
static void echo_value(const char *s, char *buf, size_t cap)
{
    size_t n = 0;
    for (; *s && n + 1 < cap && n < ECHO_MAX; s++)
        buf[n++] = (unsigned char)*s < 0x20 ? '?' : *s;
    buf[n] = '\0';
    if (*s && n + 4 < cap)
        memcpy(buf + n, "...", 4);
}

/* ---------------------------------------------------------------- value parsers */

static int parse_int(const char *s, int64_t *v)
{
    if (!*s || isspace((unsigned char)*s))
        return CP_ERR_PARSE;
    errno = 0;
    char *end;
    long long x = strtoll(s, &end, 10);
    if (*end)
        return CP_ERR_PARSE;
    if (errno == ERANGE)
        return CP_ERR_RANGE;
    *v = x;
    return 0;
}

/* Parses "<digits><unit>" terms; returns the number of chars used or -1. */
static int parse_units(const char *s, const char *const *units, const int64_t *mult, size_t nunits,
                       bool allow_bare, bool repeat, int64_t *out)
{
    int64_t total = 0;
    const char *p = s;
    if (!*p)
        return CP_ERR_PARSE;
    if (strcmp(p, "0") == 0) {
        *out = 0;
        return 0;
    }
    while (*p) {
        if (!isdigit((unsigned char)*p))
            return CP_ERR_PARSE;
        int64_t n = 0;
        while (isdigit((unsigned char)*p)) {
            if (n > (INT64_MAX - 9) / 10)
                return CP_ERR_RANGE;
            n = n * 10 + (*p++ - '0');
        }
        size_t best = nunits, bestlen = 0;
        for (size_t i = 0; i < nunits; i++) {
            size_t l = strlen(units[i]);
            if (l > bestlen && strncmp(p, units[i], l) == 0) {
                best = i;
                bestlen = l;
            }
        }
        int64_t m;
        if (best == nunits) {
            if (!allow_bare || *p)
                return CP_ERR_PARSE;
            m = 1;
        } else {
            m = mult[best];
            p += bestlen;
        }
        if (n > INT64_MAX / m || total > INT64_MAX - n * m)
            return CP_ERR_RANGE;
        total += n * m;
        if (!repeat && *p)
            return CP_ERR_PARSE;
    }
    *out = total;
    return 0;
}

int cp_config_parse_duration(const char *s, int64_t *ms)
{
    static const char *const units[] = {"ms", "s", "m", "h", "d"};
    static const int64_t mult[] = {1, MS_SECOND, MS_MINUTE, MS_HOUR, MS_DAY};
    return parse_units(s, units, mult, CP_ARRAY_LEN(units), false, true, ms);
}

int cp_config_parse_size(const char *s, int64_t *bytes)
{
    static const char *const units[] = {"B", "KB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB"};
    static const int64_t mult[] = {1,
                                   INT64_C(1000),
                                   INT64_C(1000000),
                                   INT64_C(1000000000),
                                   INT64_C(1000000000000),
                                   INT64_C(1) << 10,
                                   INT64_C(1) << 20,
                                   INT64_C(1) << 30,
                                   INT64_C(1) << 40};
    return parse_units(s, units, mult, CP_ARRAY_LEN(units), true, false, bytes);
}

int cp_config_parse_bool(const char *s, bool *v)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    for (size_t i = 0; i < CP_ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *v = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *v = false;
            return 0;
        }
    }
    return CP_ERR_PARSE;
}

static void fmt_duration(int64_t ms, char *buf, size_t cap)
{
    if (ms != 0 && ms % MS_DAY == 0)
        snprintf(buf, cap, "%" PRId64 "d", ms / MS_DAY);
    else if (ms != 0 && ms % MS_HOUR == 0)
        snprintf(buf, cap, "%" PRId64 "h", ms / MS_HOUR);
    else if (ms != 0 && ms % MS_MINUTE == 0)
        snprintf(buf, cap, "%" PRId64 "m", ms / MS_MINUTE);
    else if (ms != 0 && ms % MS_SECOND == 0)
        snprintf(buf, cap, "%" PRId64 "s", ms / MS_SECOND);
    else
        snprintf(buf, cap, "%" PRId64 "ms", ms);
}

static void fmt_size(int64_t b, char *buf, size_t cap)
{
    if (b != 0 && b % (INT64_C(1) << 30) == 0)
        snprintf(buf, cap, "%" PRId64 "GiB", b >> 30);
    else if (b != 0 && b % (INT64_C(1) << 20) == 0)
        snprintf(buf, cap, "%" PRId64 "MiB", b >> 20);
    else if (b != 0 && b % (INT64_C(1) << 10) == 0)
        snprintf(buf, cap, "%" PRId64 "KiB", b >> 10);
    else
        snprintf(buf, cap, "%" PRId64, b);
}

static void fmt_number(const struct cp_config_field *f, int64_t v, char *buf, size_t cap)
{
    if (f->type == CP_CFG_DURATION)
        fmt_duration(v, buf, cap);
    else if (f->type == CP_CFG_SIZE)
        fmt_size(v, buf, cap);
    else
        snprintf(buf, cap, "%" PRId64, v);
}

/*
 * Parses a scalar of an INT/BOOL/DURATION/SIZE/ENUM field into *v, checking bounds.
 * On failure writes the reason (without location) to why.
 */
static int parse_scalar(const struct cp_config_field *f, const char *text, int64_t *v, char *why,
                        size_t whycap)
{
    char shown[ECHO_MAX + 8], a[32], b[32];
    echo_value(text, shown, sizeof(shown));
    int rc = 0;
    bool bv;
    switch (f->type) {
    case CP_CFG_BOOL:
        if (cp_config_parse_bool(text, &bv) < 0) {
            set_err(why, whycap, "expected a boolean (true/false), got \"%s\"", shown);
            return CP_ERR_TYPE;
        }
        *v = bv;
        return 0;
    case CP_CFG_ENUM:
        for (size_t i = 0; f->enum_names && f->enum_names[i]; i++) {
            if (strcmp(text, f->enum_names[i]) == 0) {
                *v = (int64_t)i;
                return 0;
            }
        }
        {
            char list[512];
            enum_list(f->enum_names, list, sizeof(list));
            set_err(why, whycap, "\"%s\" is not one of the allowed values: %s", shown, list);
        }
        return CP_ERR_TYPE;
    case CP_CFG_INT:
        rc = parse_int(text, v);
        if (rc == CP_ERR_PARSE) {
            set_err(why, whycap, "expected an integer, got \"%s\"", shown);
            return CP_ERR_TYPE;
        }
        break;
    case CP_CFG_DURATION:
        rc = cp_config_parse_duration(text, v);
        if (rc == CP_ERR_PARSE) {
            set_err(why, whycap,
                    "expected a duration such as 250ms, 5s, 2m, 1h or 1m30s, got \"%s\"", shown);
            return CP_ERR_TYPE;
        }
        break;
    case CP_CFG_SIZE:
        rc = cp_config_parse_size(text, v);
        if (rc == CP_ERR_PARSE) {
            set_err(why, whycap, "expected a size such as 512, 64KiB or 10MB, got \"%s\"", shown);
            return CP_ERR_TYPE;
        }
        break;
    default:
        return 0;
    }
    if (rc == 0 && f->type == CP_CFG_INT && f->size == sizeof(int32_t) &&
        (*v < INT32_MIN || *v > INT32_MAX))
        rc = CP_ERR_RANGE;
    if (rc == 0 && has_bounds(f) && (*v < f->min || *v > f->max))
        rc = CP_ERR_RANGE;
    if (rc == CP_ERR_RANGE) {
        if (has_bounds(f)) {
            fmt_number(f, f->min, a, sizeof(a));
            fmt_number(f, f->max, b, sizeof(b));
            set_err(why, whycap, "\"%s\" is out of range [%s, %s]", shown, a, b);
        } else {
            set_err(why, whycap, "\"%s\" is out of range", shown);
        }
    }
    return rc;
}

static void store_int(void *dst, size_t size, int64_t v)
{
    if (size == sizeof(int32_t)) {
        int32_t x = (int32_t)v;
        memcpy(dst, &x, sizeof(x));
    } else {
        memcpy(dst, &v, sizeof(v));
    }
}

static int64_t load_int(const void *src, size_t size)
{
    if (size == sizeof(int32_t)) {
        int32_t x;
        memcpy(&x, src, sizeof(x));
        return x;
    }
    int64_t v;
    memcpy(&v, src, sizeof(v));
    return v;
}

/* ---------------------------------------------------------------- secrets */

bool cp_secret_is_ref(const char *s)
{
    return s && (strncmp(s, "env:", 4) == 0 || strncmp(s, "file:", 5) == 0);
}

static void wipe_free(char *p, size_t n)
{
    if (!p)
        return;
    explicit_bzero(p, n);
    free(p);
}

/* Returns a malloc'd NUL-terminated value; `why` names the variable or file, never the value. */
static int secret_fetch(const char *ref, char **val, size_t *len, char *why, size_t whycap)
{
    *val = NULL;
    *len = 0;
    if (strncmp(ref, "env:", 4) == 0) {
        const char *name = ref + 4;
        if (!*name) {
            set_err(why, whycap, "secret reference \"env:\" names no variable");
            return CP_ERR_INVAL;
        }
        const char *v = getenv(name);
        if (!v) {
            set_err(why, whycap, "environment variable %s is not set", name);
            return CP_ERR_SECRET;
        }
        if (!*v) {
            set_err(why, whycap, "environment variable %s is empty", name);
            return CP_ERR_SECRET;
        }
        *len = strlen(v);
        *val = strdup(v);
        return *val ? 0 : CP_ERR_NOMEM;
    }
    if (strncmp(ref, "file:", 5) != 0) {
        set_err(why, whycap, "not a secret reference (expected env:NAME or file:PATH)");
        return CP_ERR_INVAL;
    }
    const char *path = ref + 5;
    if (!*path) {
        set_err(why, whycap, "secret reference \"file:\" names no file");
        return CP_ERR_INVAL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        set_err(why, whycap, "could not open secret file \"%s\": %s", path, strerror(errno));
        return CP_ERR_SECRET;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        set_err(why, whycap, "secret file \"%s\" is not a regular file", path);
        close(fd);
        return CP_ERR_SECRET;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        cp_warn(NULL, "secret file \"%s\" is accessible by group or others (mode %03o); chmod 600 it",
                path, (unsigned)(st.st_mode & 0777));
    if (st.st_size > SECRET_FILE_MAX) {
        set_err(why, whycap, "secret file \"%s\" is larger than %d bytes", path, SECRET_FILE_MAX);
        close(fd);
        return CP_ERR_TOOBIG;
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return CP_ERR_NOMEM;
    }
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            set_err(why, whycap, "could not read secret file \"%s\": %s", path, strerror(errno));
            close(fd);
            wipe_free(buf, cap);
            return CP_ERR_SECRET;
        }
        if (r == 0 || (n += (size_t)r) == cap - 1)
            break;
    }
    close(fd);
    /* one trailing newline is how editors and `echo` end files; it is not part of the secret */
    if (n > 0 && buf[n - 1] == '\n') {
        n--;
        if (n > 0 && buf[n - 1] == '\r')
            n--;
    }
    buf[n] = '\0';
    if (n == 0) {
        set_err(why, whycap, "secret file \"%s\" is empty", path);
        wipe_free(buf, cap);
        return CP_ERR_SECRET;
    }
    *val = buf;
    *len = n;
    return 0;
}

int cp_secret_resolve(const char *ref, char *out, size_t cap, size_t *len, char *err,
                      size_t errcap)
{
    char *v;
    size_t n;
    if (!ref || !out || cap == 0) {
        set_err(err, errcap, "invalid argument");
        return CP_ERR_INVAL;
    }
    out[0] = '\0';
    if (!cp_secret_is_ref(ref)) {
        set_err(err, errcap, "not a secret reference (expected env:NAME or file:PATH)");
        return CP_ERR_INVAL;
    }
    int rc = secret_fetch(ref, &v, &n, err, errcap);
    if (rc < 0)
        return rc;
    if (n + 1 > cap) {
        set_err(err, errcap, "secret %s does not fit in %zu bytes", ref, cap);
        wipe_free(v, n);
        return CP_ERR_TOOBIG;
    }
    memcpy(out, v, n + 1);
    wipe_free(v, n);
    if (len)
        *len = n;
    return 0;
}

/* ---------------------------------------------------------------- table checks */

static int check_table(const struct cp_config_table *t, const char *path, int depth, char *err,
                       size_t errcap)
{
    char fpath[CFG_PATH_MAX], why[256];
    if (!t || !t->fields || t->nfields == 0 || depth > CFG_DEPTH_MAX) {
        set_err(err, errcap, "config table %s: empty or nested too deep", path[0] ? path : "top");
        return CP_ERR_INTERNAL;
    }
    for (size_t i = 0; i < t->nfields; i++) {
        const struct cp_config_field *f = &t->fields[i];
        if (!f->key || !f->key[0]) {
            set_err(err, errcap, "config table %s: field %zu has no key", t->name, i);
            return CP_ERR_INTERNAL;
        }
        join_path(fpath, sizeof(fpath), path, f->key);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(t->fields[j].key, f->key) == 0) {
                set_err(err, errcap, "config table: key %s defined twice", fpath);
                return CP_ERR_INTERNAL;
            }
        }
        size_t want = 0;
        switch (f->type) {
        case CP_CFG_STRING: want = sizeof(char *); break;
        case CP_CFG_INT: want = f->size == sizeof(int32_t) ? sizeof(int32_t) : sizeof(int64_t); break;
        case CP_CFG_BOOL: want = sizeof(bool); break;
        case CP_CFG_DURATION:
        case CP_CFG_SIZE: want = sizeof(int64_t); break;
        case CP_CFG_ENUM: want = sizeof(int); break;
        case CP_CFG_SECRET: want = sizeof(struct cp_secret); break;
        case CP_CFG_MAPPING: want = f->sub ? f->sub->size : 0; break;
        case CP_CFG_LIST: want = sizeof(void *); break;
        default:
            set_err(err, errcap, "config table: key %s has an unknown type", fpath);
            return CP_ERR_INTERNAL;
        }
        if (f->size != want || f->offset + f->size > t->size) {
            set_err(err, errcap, "config table: key %s: C member has the wrong size for a %s",
                    fpath, type_name(f->type));
            return CP_ERR_INTERNAL;
        }
        if (f->type == CP_CFG_ENUM && (!f->enum_names || !f->enum_names[0])) {
            set_err(err, errcap, "config table: enum key %s has no names", fpath);
            return CP_ERR_INTERNAL;
        }
        if ((f->flags & CP_CFG_REQUIRED) && f->dflt) {
            set_err(err, errcap, "config table: key %s is required and has a default", fpath);
            return CP_ERR_INTERNAL;
        }
        if (f->type == CP_CFG_LIST) {
            if (f->count_offset + sizeof(size_t) > t->size) {
                set_err(err, errcap, "config table: list %s has a bad count offset", fpath);
                return CP_ERR_INTERNAL;
            }
        }
        if (f->type == CP_CFG_MAPPING || f->type == CP_CFG_LIST) {
            if (f->dflt) {
                set_err(err, errcap, "config table: %s %s cannot have a default", type_name(f->type),
                        fpath);
                return CP_ERR_INTERNAL;
            }
            int rc = check_table(f->sub, fpath, depth + 1, err, errcap);
            if (rc < 0)
                return rc;
            continue;
        }
        if (f->dflt) {
            int64_t v;
            if (f->type == CP_CFG_SECRET && !cp_secret_is_ref(f->dflt)) {
                set_err(err, errcap, "config table: default of secret %s is not a reference",
                        fpath);
                return CP_ERR_INTERNAL;
            }
            if (parse_scalar(f, f->dflt, &v, why, sizeof(why)) < 0) {
                set_err(err, errcap, "config table: default of %s: %s", fpath, why);
                return CP_ERR_INTERNAL;
            }
        }
    }
    return 0;
}

int cp_config_table_check(const struct cp_config_table *t, char *err, size_t errcap)
{
    return check_table(t, "", 0, err, errcap);
}

/* ---------------------------------------------------------------- libcyaml schema */

struct schema_pool {
    void **ptrs;
    size_t n, cap;
};

static void *pool_alloc(struct schema_pool *p, size_t size)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        void **np = realloc(p->ptrs, cap * sizeof(*np));
        if (!np)
            return NULL;
        p->ptrs = np;
        p->cap = cap;
    }
    void *m = calloc(1, size);
    if (m)
        p->ptrs[p->n++] = m;
    return m;
}

static void pool_free(struct schema_pool *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->ptrs[i]);
    free(p->ptrs);
    memset(p, 0, sizeof(*p));
}

static uint32_t raw_size(const struct cp_config_table *t)
{
    return (uint32_t)(t->nfields * sizeof(struct raw_slot));
}

/* Every field is optional to libcyaml: required keys are checked after env overrides. */
static const cyaml_schema_field_t *build_fields(struct schema_pool *p,
                                                const struct cp_config_table *t)
{
    cyaml_schema_field_t *cf = pool_alloc(p, (t->nfields + 1) * sizeof(*cf));
    if (!cf)
        return NULL;
    for (size_t i = 0; i < t->nfields; i++) {
        const struct cp_config_field *f = &t->fields[i];
        size_t slot = i * sizeof(struct raw_slot);
        cf[i].key = f->key;
        cyaml_schema_value_t *v = &cf[i].value;
        v->flags = (enum cyaml_flag)(CYAML_FLAG_POINTER_NULL_STR | CYAML_FLAG_OPTIONAL);
        if (f->type == CP_CFG_MAPPING) {
            cf[i].data_offset = (uint32_t)(slot + offsetof(struct raw_slot, ptr));
            v->type = CYAML_MAPPING;
            v->data_size = raw_size(f->sub);
            v->mapping.fields = build_fields(p, f->sub);
            if (!v->mapping.fields)
                return NULL;
        } else if (f->type == CP_CFG_LIST) {
            cf[i].data_offset = (uint32_t)(slot + offsetof(struct raw_slot, ptr));
            cf[i].count_offset = (uint32_t)(slot + offsetof(struct raw_slot, count));
            cf[i].count_size = sizeof(uint32_t);
            cyaml_schema_value_t *entry = pool_alloc(p, sizeof(*entry));
            if (!entry)
                return NULL;
            entry->type = CYAML_MAPPING;
            entry->flags = CYAML_FLAG_DEFAULT;
            entry->data_size = raw_size(f->sub);
            entry->mapping.fields = build_fields(p, f->sub);
            if (!entry->mapping.fields)
                return NULL;
            v->type = CYAML_SEQUENCE;
            v->data_size = raw_size(f->sub);
            v->sequence.entry = entry;
            v->sequence.min = 0;
            v->sequence.max = CYAML_UNLIMITED;
        } else {
            cf[i].data_offset = (uint32_t)(slot + offsetof(struct raw_slot, str));
            v->type = CYAML_STRING;
            v->data_size = sizeof(char);
            v->string.min = 0;
            v->string.max = CYAML_UNLIMITED;
        }
    }
    return cf; /* calloc'd, so the last entry is CYAML_FIELD_END */
}

/* Keeps libcyaml's first error line and first backtrace line; nothing reaches stderr. */
static void cyaml_log_capture(cyaml_log_t level, void *vctx, const char *fmt, va_list args)
{
    struct load_ctx *ctx = vctx;
    char line[256];
    if (level < CYAML_LOG_WARNING)
        return;
    vsnprintf(line, sizeof(line), fmt, args);
    line[strcspn(line, "\n")] = '\0';
    const char *s = line;
    if (strncmp(s, "Load: ", 6) == 0)
        s += 6;
    if (ctx->cy_state == 0 && strncmp(s, "Backtrace:", 10) != 0) {
        snprintf(ctx->cy_msg, sizeof(ctx->cy_msg), "%s", s);
        ctx->cy_state = 1;
    } else if (ctx->cy_state == 1 && strncmp(s, "  in ", 5) == 0) {
        snprintf(ctx->cy_trace, sizeof(ctx->cy_trace), "%s", s + 5);
        ctx->cy_state = 2;
    }
}

/* ---------------------------------------------------------------- libyaml locator pass */

enum { FR_MAP, FR_SEQ };

struct frame {
    int kind;
    const struct cp_config_table *t;
    const struct cp_config_field *f; /* SEQ: the list field; MAP: field awaiting its value */
    char path[CFG_PATH_MAX];
    size_t index;
    bool want_value;
    int keyline, keycol;
    int *seen; /* MAP: line where each field was first seen */
};

static bool is_null_scalar(const yaml_event_t *ev);

static int add_loc(struct load_ctx *ctx, const char *path, int kl, int kc, const yaml_event_t *ev)
{
    yaml_mark_t v = ev->start_mark;
    if (ctx->nlocs == ctx->caplocs) {
        size_t cap = ctx->caplocs ? ctx->caplocs * 2 : 32;
        struct loc *nl = realloc(ctx->locs, cap * sizeof(*nl));
        if (!nl)
            return CP_ERR_NOMEM;
        ctx->locs = nl;
        ctx->caplocs = cap;
    }
    struct loc *l = &ctx->locs[ctx->nlocs];
    l->path = strdup(path);
    if (!l->path)
        return CP_ERR_NOMEM;
    l->kline = kl;
    l->kcol = kc;
    l->vline = (int)v.line + 1;
    l->vcol = (int)v.column + 1;
    l->is_null = is_null_scalar(ev);
    ctx->nlocs++;
    return 0;
}

static void free_locs(struct load_ctx *ctx)
{
    for (size_t i = 0; i < ctx->nlocs; i++)
        free(ctx->locs[i].path);
    free(ctx->locs);
    ctx->locs = NULL;
    ctx->nlocs = ctx->caplocs = 0;
}

static bool is_null_scalar(const yaml_event_t *ev)
{
    if (ev->type != YAML_SCALAR_EVENT || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)ev->data.scalar.value;
    return !v[0] || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
           strcmp(v, "NULL") == 0;
}

static const char *node_kind(const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_MAPPING_START_EVENT: return "a mapping";
    case YAML_SEQUENCE_START_EVENT: return "a list";
    case YAML_SCALAR_EVENT: return is_null_scalar(ev) ? "nothing" : "a scalar";
    default: return "something else";
    }
}

#define LOCERR(ev, ...)                                                                            \
    do {                                                                                           \
        char msg_[768];                                                                            \
        snprintf(msg_, sizeof(msg_), __VA_ARGS__);                                                 \
        set_err(ctx->err, ctx->errcap, "%s:%d:%d: %s", ctx->file,                                  \
                (int)(ev)->start_mark.line + 1, (int)(ev)->start_mark.column + 1, msg_);           \
        rc = CP_ERR_CONFIG;                                                                        \
    } while (0)

static int push_frame(struct frame *st, int *depth, int kind, const struct cp_config_table *t,
                      const struct cp_config_field *f, const char *path)
{
    if (*depth >= CFG_DEPTH_MAX)
        return CP_ERR_CONFIG;
    struct frame *fr = &st[(*depth)++];
    memset(fr, 0, sizeof(*fr));
    fr->kind = kind;
    fr->t = t;
    fr->f = f;
    snprintf(fr->path, sizeof(fr->path), "%s", path);
    if (kind == FR_MAP) {
        fr->seen = calloc(t->nfields, sizeof(int));
        if (!fr->seen) {
            (*depth)--;
            return CP_ERR_NOMEM;
        }
    }
    return 0;
}

/*
 * One event of the locator pass.  Records where every key and value is and explains
 * structural errors (unknown, duplicate, wrong kind of node) with their exact position.
 */
static int locate_event(struct load_ctx *ctx, struct frame *st, int *depth, bool *root_seen,
                        const yaml_event_t *ev)
{
    int rc = 0;
    char buf[CFG_PATH_MAX + 8], keys[512], path[CFG_PATH_MAX];
    if (ev->type == YAML_MAPPING_END_EVENT || ev->type == YAML_SEQUENCE_END_EVENT) {
        if (*depth > 0) {
            free(st[*depth - 1].seen);
            (*depth)--;
        }
        return 0;
    }
    if (ev->type == YAML_ALIAS_EVENT) {
        LOCERR(ev, "yaml aliases are not supported in configuration files");
        return rc;
    }
    if (*depth == 0) {
        if (*root_seen) {
            LOCERR(ev, "only one yaml document is allowed");
            return rc;
        }
        *root_seen = true;
        if (ev->type == YAML_MAPPING_START_EVENT) {
            if ((rc = add_loc(ctx, "", 0, 0, ev)) < 0)
                return rc;
            return push_frame(st, depth, FR_MAP, ctx->top, NULL, "");
        }
        if (is_null_scalar(ev))
            return 0;
        LOCERR(ev, "the configuration must be a mapping of keys, got %s", node_kind(ev));
        return rc;
    }
    struct frame *fr = &st[*depth - 1];
    if (fr->kind == FR_SEQ) {
        index_path(path, sizeof(path), fr->path, fr->index++);
        if (ev->type != YAML_MAPPING_START_EVENT) {
            LOCERR(ev, "each entry of %s must be a mapping, got %s", fr->path, node_kind(ev));
            return rc;
        }
        if ((rc = add_loc(ctx, path, 0, 0, ev)) < 0)
            return rc;
        rc = push_frame(st, depth, FR_MAP, fr->f->sub, NULL, path);
        if (rc == CP_ERR_CONFIG)
            LOCERR(ev, "configuration nested too deep");
        return rc;
    }
    if (!fr->want_value) {
        if (ev->type != YAML_SCALAR_EVENT) {
            LOCERR(ev, "keys must be plain strings, got %s %s", node_kind(ev),
                   where(fr->path, buf, sizeof(buf)));
            return rc;
        }
        const char *key = (const char *)ev->data.scalar.value;
        size_t i;
        for (i = 0; i < fr->t->nfields; i++)
            if (strcmp(fr->t->fields[i].key, key) == 0)
                break;
        valid_keys(fr->t, keys, sizeof(keys));
        char shown[ECHO_MAX + 8];
        echo_value(key, shown, sizeof(shown));
        if (i == fr->t->nfields) {
            LOCERR(ev, "unknown key \"%s\" %s; valid keys: %s", shown,
                   where(fr->path, buf, sizeof(buf)), keys);
            return rc;
        }
        if (fr->seen[i]) {
            LOCERR(ev, "duplicate key \"%s\" %s (first at line %d); valid keys: %s", shown,
                   where(fr->path, buf, sizeof(buf)), fr->seen[i], keys);
            return rc;
        }
        fr->seen[i] = (int)ev->start_mark.line + 1;
        fr->f = &fr->t->fields[i];
        fr->want_value = true;
        fr->keyline = (int)ev->start_mark.line + 1;
        fr->keycol = (int)ev->start_mark.column + 1;
        return 0;
    }
    const struct cp_config_field *f = fr->f;
    fr->want_value = false;
    join_path(path, sizeof(path), fr->path, f->key);
    if ((rc = add_loc(ctx, path, fr->keyline, fr->keycol, ev)) < 0)
        return rc;
    if (is_scalar_type(f->type)) {
        if (ev->type != YAML_SCALAR_EVENT) {
            LOCERR(ev, "key \"%s\" %s expects a %s value, got %s", f->key,
                   where(fr->path, buf, sizeof(buf)), type_name(f->type), node_kind(ev));
        }
        return rc;
    }
    if (is_null_scalar(ev))
        return 0;
    if (f->type == CP_CFG_MAPPING && ev->type == YAML_MAPPING_START_EVENT)
        rc = push_frame(st, depth, FR_MAP, f->sub, NULL, path);
    else if (f->type == CP_CFG_LIST && ev->type == YAML_SEQUENCE_START_EVENT)
        rc = push_frame(st, depth, FR_SEQ, f->sub, f, path);
    else {
        LOCERR(ev, "key \"%s\" %s expects a %s, got %s", f->key,
               where(fr->path, buf, sizeof(buf)), type_name(f->type), node_kind(ev));
        return rc;
    }
    if (rc == CP_ERR_CONFIG)
        LOCERR(ev, "configuration nested too deep");
    return rc;
}

static int locate_file(struct load_ctx *ctx)
{
    FILE *fp = fopen(ctx->file, "rb");
    if (!fp) {
        set_err(ctx->err, ctx->errcap, "could not open config file \"%s\": %s", ctx->file,
                strerror(errno));
        return CP_ERR_CONFIG;
    }
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        fclose(fp);
        return CP_ERR_NOMEM;
    }
    yaml_parser_set_input_file(&parser, fp);
    struct frame st[CFG_DEPTH_MAX];
    int depth = 0, rc = 0;
    bool root_seen = false, done = false;
    while (!done && rc == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            set_err(ctx->err, ctx->errcap, "%s:%d:%d: yaml syntax error: %s%s%s", ctx->file,
                    (int)parser.problem_mark.line + 1, (int)parser.problem_mark.column + 1,
                    parser.problem ? parser.problem : "unknown problem",
                    parser.context ? " " : "", parser.context ? parser.context : "");
            rc = CP_ERR_CONFIG;
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT: done = true; break;
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
        case YAML_NO_EVENT: break;
        default: rc = locate_event(ctx, st, &depth, &root_seen, &ev); break;
        }
        yaml_event_delete(&ev);
    }
    while (depth > 0)
        free(st[--depth].seen);
    yaml_parser_delete(&parser);
    fclose(fp);
    return rc;
}

static const struct loc *find_loc(const struct load_ctx *ctx, const char *path)
{
    for (size_t i = 0; i < ctx->nlocs; i++)
        if (strcmp(ctx->locs[i].path, path) == 0)
            return &ctx->locs[i];
    return NULL;
}

/* ---------------------------------------------------------------- conversion */

struct src {
    enum origin origin;
    char env[CFG_PATH_MAX + 64];
};

/* Error at the value of `path` (or, for a missing key, at its nearest present ancestor). */
static void conv_err(struct load_ctx *ctx, const char *path, const struct src *src,
                     const char *fmt, ...) CP_PRINTF(4, 5);
static void conv_err(struct load_ctx *ctx, const char *path, const struct src *src,
                     const char *fmt, ...)
{
    char msg[768], p[CFG_PATH_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (src && src->origin == ORIGIN_ENV) {
        set_err(ctx->err, ctx->errcap, "%s (environment %s): %s", ctx->file, src->env, msg);
        return;
    }
    if (src && src->origin == ORIGIN_DEFAULT) {
        set_err(ctx->err, ctx->errcap, "%s: default value: %s", ctx->file, msg);
        return;
    }
    snprintf(p, sizeof(p), "%s", path);
    for (;;) {
        const struct loc *l = find_loc(ctx, p);
        if (l) {
            set_err(ctx->err, ctx->errcap, "%s:%d:%d: %s", ctx->file, l->vline, l->vcol, msg);
            return;
        }
        if (!p[0])
            break;
        parent_path(p);
    }
    set_err(ctx->err, ctx->errcap, "%s: %s", ctx->file, msg);
}

static void env_name(const char *prefix, const char *path, char *out, size_t cap)
{
    size_t n = (size_t)snprintf(out, cap, "%s_", prefix);
    for (const char *p = path; *p && n + 1 < cap; p++)
        out[n++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
    if (n < cap)
        out[n] = '\0';
}

static int set_scalar(struct load_ctx *ctx, const struct cp_config_field *f, const char *text,
                      char *dst, const char *path, const struct src *src)
{
    char why[640];
    int64_t v = 0;
    int rc;
    switch (f->type) {
    case CP_CFG_STRING: {
        char *s = strdup(text);
        if (!s)
            return CP_ERR_NOMEM;
        memcpy(dst, &s, sizeof(s));
        return 0;
    }
    case CP_CFG_SECRET: {
        struct cp_secret sec = {0};
        if (!cp_secret_is_ref(text)) {
            /* never echo `text`: it is probably the secret itself */
            conv_err(ctx, path, src,
                     "%s is a secret: write env:NAME or file:PATH, literal values are refused",
                     path);
            return CP_ERR_SECRET;
        }
        rc = secret_fetch(text, &sec.value, &sec.len, why, sizeof(why));
        if (rc < 0) {
            conv_err(ctx, path, src, "could not resolve secret %s: %s", path, why);
            return rc == CP_ERR_NOMEM ? rc : CP_ERR_SECRET;
        }
        sec.ref = strdup(text);
        if (!sec.ref) {
            wipe_free(sec.value, sec.len);
            return CP_ERR_NOMEM;
        }
        memcpy(dst, &sec, sizeof(sec));
        return 0;
    }
    default: break;
    }
    rc = parse_scalar(f, text, &v, why, sizeof(why));
    if (rc < 0) {
        conv_err(ctx, path, src, "invalid value for %s: %s", path, why);
        return CP_ERR_CONFIG;
    }
    switch (f->type) {
    case CP_CFG_BOOL: {
        bool b = v != 0;
        memcpy(dst, &b, sizeof(b));
        break;
    }
    case CP_CFG_ENUM: {
        int e = (int)v;
        memcpy(dst, &e, sizeof(e));
        break;
    }
    default: store_int(dst, f->size, v); break;
    }
    return 0;
}

static int convert_table(struct load_ctx *ctx, const struct cp_config_table *t,
                         const struct raw_slot *raw, char *base, const char *path, bool in_list)
{
    char fpath[CFG_PATH_MAX], ipath[CFG_PATH_MAX], buf[CFG_PATH_MAX + 8];
    int rc;
    for (size_t i = 0; i < t->nfields; i++) {
        const struct cp_config_field *f = &t->fields[i];
        const struct raw_slot *slot = raw ? &raw[i] : NULL;
        join_path(fpath, sizeof(fpath), path, f->key);
        if (f->type == CP_CFG_MAPPING) {
            rc = convert_table(ctx, f->sub, slot ? slot->ptr : NULL, base + f->offset, fpath,
                               in_list);
            if (rc < 0)
                return rc;
            continue;
        }
        if (f->type == CP_CFG_LIST) {
            size_t n = slot && slot->ptr ? slot->count : 0;
            /* an explicit `[]` is present-but-empty: the entry bounds below explain it */
            const struct loc *present = find_loc(ctx, fpath);
            bool absent = !present || present->is_null;
            if (absent && (f->flags & CP_CFG_REQUIRED)) {
                conv_err(ctx, path, NULL, "missing required key \"%s\" %s (a list of mappings)",
                         f->key, where(path, buf, sizeof(buf)));
                return CP_ERR_CONFIG;
            }
            if ((!absent && f->min > 0 && (int64_t)n < f->min) ||
                (has_bounds(f) && (int64_t)n > f->max)) {
                conv_err(ctx, fpath, NULL, "%s has %zu entries; allowed %" PRId64 "..%" PRId64,
                         fpath, n, f->min, f->max);
                return CP_ERR_CONFIG;
            }
            if (n == 0)
                continue;
            char *items = calloc(n, f->sub->size);
            if (!items)
                return CP_ERR_NOMEM;
            memcpy(base + f->offset, &items, sizeof(items));
            memcpy(base + f->count_offset, &n, sizeof(n));
            const struct raw_slot *entries = slot->ptr;
            for (size_t j = 0; j < n; j++) {
                index_path(ipath, sizeof(ipath), fpath, j);
                rc = convert_table(ctx, f->sub, entries + j * f->sub->nfields,
                                   items + j * f->sub->size, ipath, true);
                if (rc < 0)
                    return rc;
            }
            continue;
        }
        struct src src = {.origin = ORIGIN_FILE};
        const char *text = slot ? slot->str : NULL;
        if (!in_list && ctx->top->env_prefix) {
            env_name(ctx->top->env_prefix, fpath, src.env, sizeof(src.env));
            const char *ov = getenv(src.env);
            if (ov) {
                text = ov;
                src.origin = ORIGIN_ENV;
            }
        }
        if (!text) {
            if (f->flags & CP_CFG_REQUIRED) {
                conv_err(ctx, path, NULL, "missing required key \"%s\" %s", f->key,
                         where(path, buf, sizeof(buf)));
                return CP_ERR_CONFIG;
            }
            if (!f->dflt)
                continue;
            text = f->dflt;
            src.origin = ORIGIN_DEFAULT;
        }
        rc = set_scalar(ctx, f, text, base + f->offset, fpath, &src);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* A literal typed into a secret field must not linger in freed heap memory. */
static void wipe_raw(const struct cp_config_table *t, struct raw_slot *raw)
{
    if (!raw)
        return;
    for (size_t i = 0; i < t->nfields; i++) {
        const struct cp_config_field *f = &t->fields[i];
        if (f->type == CP_CFG_SECRET && raw[i].str)
            explicit_bzero(raw[i].str, strlen(raw[i].str));
        else if (f->type == CP_CFG_MAPPING)
            wipe_raw(f->sub, raw[i].ptr);
        else if (f->type == CP_CFG_LIST && raw[i].ptr)
            for (uint32_t j = 0; j < raw[i].count; j++)
                wipe_raw(f->sub, (struct raw_slot *)raw[i].ptr + (size_t)j * f->sub->nfields);
    }
}

int cp_config_load(const struct cp_config_table *t, const char *path, void *out, char *err,
                   size_t errcap)
{
    if (err && errcap)
        err[0] = '\0';
    if (!t || !path || !out) {
        set_err(err, errcap, "invalid argument");
        return CP_ERR_INVAL;
    }
    memset(out, 0, t->size);
    int rc = cp_config_table_check(t, err, errcap);
    if (rc < 0)
        return rc;

    struct load_ctx ctx = {.top = t, .file = path, .err = err, .errcap = errcap};
    struct schema_pool pool = {0};
    cyaml_schema_value_t *top = pool_alloc(&pool, sizeof(*top));
    const cyaml_schema_field_t *fields = top ? build_fields(&pool, t) : NULL;
    if (!fields) {
        pool_free(&pool);
        set_err(err, errcap, "out of memory");
        return CP_ERR_NOMEM;
    }
    top->type = CYAML_MAPPING;
    top->flags = CYAML_FLAG_POINTER;
    top->data_size = raw_size(t);
    top->mapping.fields = fields;
    cyaml_config_t cyc = {
        .log_fn = cyaml_log_capture,
        .log_ctx = &ctx,
        .mem_fn = cyaml_mem,
        .log_level = CYAML_LOG_WARNING,
        .flags = CYAML_CFG_NO_ALIAS,
    };

    struct raw_slot *raw = NULL;
    cyaml_err_t cerr = cyaml_load_file(path, &cyc, top, (cyaml_data_t **)&raw, NULL);
    /* the locator pass gives exact positions for cyaml's errors and for our own */
    rc = locate_file(&ctx);
    if (rc == 0 && cerr != CYAML_OK) {
        if (cerr == CYAML_ERR_OOM) {
            set_err(err, errcap, "out of memory");
            rc = CP_ERR_NOMEM;
        } else {
            set_err(err, errcap, "%s: could not load configuration: %s%s%s%s", path,
                    ctx.cy_state ? ctx.cy_msg : cyaml_strerror(cerr),
                    ctx.cy_state == 2 ? " (" : "", ctx.cy_state == 2 ? ctx.cy_trace : "",
                    ctx.cy_state == 2 ? ")" : "");
            rc = CP_ERR_CONFIG;
        }
    }
    if (rc == 0)
        rc = convert_table(&ctx, t, raw, out, "", false);
    if (rc == CP_ERR_NOMEM && err && !err[0])
        set_err(err, errcap, "out of memory");
    if (cerr == CYAML_OK && raw) {
        wipe_raw(t, raw);
        cyaml_free(&cyc, top, raw, 0);
    }
    free_locs(&ctx);
    pool_free(&pool);
    if (rc < 0)
        cp_config_free(t, out);
    return rc;
}

/* ---------------------------------------------------------------- free, dump, docs */

static void free_table(const struct cp_config_table *t, char *base)
{
    for (size_t i = 0; i < t->nfields; i++) {
        const struct cp_config_field *f = &t->fields[i];
        char *p = base + f->offset;
        switch (f->type) {
        case CP_CFG_STRING: {
            char *s;
            memcpy(&s, p, sizeof(s));
            free(s);
            break;
        }
        case CP_CFG_SECRET: {
            struct cp_secret sec;
            memcpy(&sec, p, sizeof(sec));
            wipe_free(sec.value, sec.len);
            free(sec.ref);
            break;
        }
        case CP_CFG_MAPPING: free_table(f->sub, p); break;
        case CP_CFG_LIST: {
            char *items;
            size_t n;
            memcpy(&items, p, sizeof(items));
            memcpy(&n, base + f->count_offset, sizeof(n));
            for (size_t j = 0; items && j < n; j++)
                free_table(f->sub, items + j * f->sub->size);
            free(items);
            break;
        }
        default: break;
        }
    }
}

void cp_config_free(const struct cp_config_table *t, void *cfg)
{
    if (!t || !cfg)
        return;
    free_table(t, cfg);
    memset(cfg, 0, t->size);
}

static void dump_string(const char *s, FILE *out)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20)
            fprintf(out, "\\x%02x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static void dump_table(const struct cp_config_table *t, const char *base, int indent,
                       bool dash_first, FILE *out)
{
    char num[32];
    for (size_t i = 0; i < t->nfields; i++) {
        const struct cp_config_field *f = &t->fields[i];
        const char *p = base + f->offset;
        if (i == 0 && dash_first)
            fprintf(out, "%*s- %s:", indent - 2, "", f->key);
        else
            fprintf(out, "%*s%s:", indent, "", f->key);
        switch (f->type) {
        case CP_CFG_STRING: {
            const char *s;
            memcpy(&s, p, sizeof(s));
            fputc(' ', out);
            if (s)
                dump_string(s, out);
            else
                fputs("~", out);
            break;
        }
        case CP_CFG_INT: fprintf(out, " %" PRId64, load_int(p, f->size)); break;
        case CP_CFG_BOOL: {
            bool b;
            memcpy(&b, p, sizeof(b));
            fputs(b ? " true" : " false", out);
            break;
        }
        case CP_CFG_DURATION:
        case CP_CFG_SIZE:
            fmt_number(f, load_int(p, f->size), num, sizeof(num));
            fprintf(out, " %s", num);
            break;
        case CP_CFG_ENUM: {
            int e;
            memcpy(&e, p, sizeof(e));
            fprintf(out, " %s", f->enum_names[e]);
            break;
        }
        case CP_CFG_SECRET: {
            struct cp_secret sec;
            memcpy(&sec, p, sizeof(sec));
            if (sec.ref)
                fprintf(out, " <secret %s>", sec.ref);
            else
                fputs(" ~", out);
            break;
        }
        case CP_CFG_MAPPING:
            fputc('\n', out);
            dump_table(f->sub, p, indent + 2, false, out);
            continue;
        case CP_CFG_LIST: {
            const char *items;
            size_t n;
            memcpy(&items, p, sizeof(items));
            memcpy(&n, base + f->count_offset, sizeof(n));
            if (n == 0) {
                fputs(" []\n", out);
                continue;
            }
            fputc('\n', out);
            for (size_t j = 0; j < n; j++)
                dump_table(f->sub, items + j * f->sub->size, indent + 4, true, out);
            continue;
        }
        }
        fputc('\n', out);
    }
}

void cp_config_dump(const struct cp_config_table *t, const void *cfg, FILE *out)
{
    if (t && cfg && out)
        dump_table(t, cfg, 0, false, out);
}

static void md_text(const char *s, FILE *out)
{
    for (; s && *s; s++) {
        if (*s == '|')
            fputs("\\|", out);
        else if (*s == '\n')
            fputc(' ', out);
        else
            fputc(*s, out);
    }
}

static void doc_table(const struct cp_config_table *t, const char *path, FILE *out)
{
    char fpath[CFG_PATH_MAX], a[32], b[32], list[512];
    for (size_t i = 0; i < t->nfields; i++) {
        const struct cp_config_field *f = &t->fields[i];
        join_path(fpath, sizeof(fpath), path, f->key);
        if (f->type == CP_CFG_LIST)
            strncat(fpath, "[]", sizeof(fpath) - strlen(fpath) - 1);
        fprintf(out, "| `%s` | ", fpath);
        if (f->type == CP_CFG_ENUM) {
            enum_list(f->enum_names, list, sizeof(list));
            fputs("enum: ", out);
            md_text(list, out);
        } else if (f->type == CP_CFG_SECRET) {
            fputs("secret (`env:NAME` or `file:PATH`)", out);
        } else {
            fputs(type_name(f->type), out);
        }
        fputs(" | ", out);
        if (f->flags & CP_CFG_REQUIRED)
            fputs("**required**", out);
        else if (f->dflt)
            fprintf(out, "`%s`", f->dflt);
        else if (f->type == CP_CFG_LIST)
            fputs("empty", out);
        else if (f->type != CP_CFG_MAPPING)
            fputs("unset", out);
        fputs(" | ", out);
        if (f->type == CP_CFG_LIST && (f->min > 0 || has_bounds(f))) {
            if (has_bounds(f))
                fprintf(out, "%" PRId64 "..%" PRId64 " entries", f->min, f->max);
            else
                fprintf(out, "at least %" PRId64 " entries", f->min);
        } else if (f->type != CP_CFG_LIST && has_bounds(f)) {
            fmt_number(f, f->min, a, sizeof(a));
            fmt_number(f, f->max, b, sizeof(b));
            fprintf(out, "%s..%s", a, b);
        }
        fputs(" | ", out);
        md_text(f->help, out);
        fputs(" |\n", out);
        if (f->type == CP_CFG_MAPPING || f->type == CP_CFG_LIST)
            doc_table(f->sub, fpath, out);
    }
}

void cp_config_doc_markdown(const struct cp_config_table *t, FILE *out)
{
    if (!t || !out)
        return;
    fputs("| key | type | default | bounds | description |\n", out);
    fputs("|---|---|---|---|---|\n", out);
    doc_table(t, "", out);
    fputs("\nDurations: `250ms`, `5s`, `2m`, `1h`, `1d`, combined as `1m30s`. "
          "Sizes: bytes, or `KB`/`MB`/`GB` (1000) and `KiB`/`MiB`/`GiB` (1024). "
          "Secrets are references only: `env:NAME` or `file:PATH` (one trailing newline "
          "is dropped); literal values are refused.\n",
          out);
    if (t->env_prefix) {
        char example[CFG_PATH_MAX + 64];
        env_name(t->env_prefix, t->fields[0].key, example, sizeof(example));
        fprintf(out,
                "Every key outside lists can be overridden from the environment as "
                "`%s_<KEY>`, the key path in upper case with `.` written as `_` "
                "(e.g. `%s`).\n",
                t->env_prefix, example);
    }
}

int cp_config_check_main(const struct cp_config_table *t, const char *path, FILE *out,
                         FILE *errout)
{
    char err[1024];
    void *cfg = t ? calloc(1, t->size) : NULL;
    if (!cfg) {
        fprintf(errout, "could not check config: out of memory\n");
        return 2;
    }
    int rc = cp_config_load(t, path, cfg, err, sizeof(err));
    if (rc < 0) {
        fprintf(errout, "%s\n", err);
        free(cfg);
        return 2;
    }
    fprintf(out, "config ok: %s\n", path);
    cp_config_dump(t, cfg, out);
    cp_config_free(t, cfg);
    free(cfg);
    return 0;
}

int cp_config_cli(int argc, char **argv, const struct cp_config_table *t, void (*usage)(FILE *),
                  const char **path, bool *check)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check-config", no_argument, NULL, 'k'},
                                         {"print-config-doc", no_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    bool doc = false;
    int o;
    *path = NULL;
    *check = false;
    optind = 1;
    while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (o) {
        case 'c': *path = optarg; break;
        case 'k': *check = true; break;
        case 'd': doc = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (doc) {
        cp_config_doc_markdown(t, stdout);
        return 0;
    }
    if (!*path) {
        usage(stderr);
        return 2;
    }
    return -1;
}
