/* prom_parse.c - strict Prometheus text format 0.0.4 parser used by tests to check /metrics output. */
#include "prom_parse.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ctx {
    struct prom_doc *doc;
    char *err;
    size_t errcap;
    int line;
    struct prom_family *open; /* family whose samples are being read */
};

static int fail(struct ctx *c, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(c->err, c->errcap, "line %d: ", c->line);
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < c->errcap)
        vsnprintf(c->err + n, c->errcap - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static bool is_name_start(char ch, bool colon)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || (colon && ch == ':');
}

static bool is_name_char(char ch, bool colon)
{
    return is_name_start(ch, colon) || (ch >= '0' && ch <= '9');
}

/* Reads a metric (colon=true) or label name at *p; returns a malloc'd copy or NULL. */
static char *read_name(const char **p, const char *end, bool colon)
{
    const char *s = *p;
    if (s >= end || !is_name_start(*s, colon))
        return NULL;
    while (s < end && is_name_char(*s, colon))
        s++;
    char *out = strndup(*p, (size_t)(s - *p));
    *p = s;
    return out;
}

/* Unescapes help text (quote=false) or a quoted label value (quote=true, stops at '"'). */
static char *read_escaped(struct ctx *c, const char **p, const char *end, bool quote)
{
    size_t cap = (size_t)(end - *p) + 1, n = 0;
    char *out = malloc(cap);
    const char *s = *p;
    for (; s < end; s++) {
        if (quote && *s == '"')
            break;
        if (quote && *s == '\n')
            break;
        if (*s == '\\') {
            if (s + 1 >= end) {
                free(out);
                fail(c, "dangling backslash");
                return NULL;
            }
            s++;
            if (*s == '\\')
                out[n++] = '\\';
            else if (*s == 'n')
                out[n++] = '\n';
            else if (quote && *s == '"')
                out[n++] = '"';
            else {
                free(out);
                fail(c, "invalid escape \\%c", *s);
                return NULL;
            }
            continue;
        }
        out[n++] = *s;
    }
    if (quote && (s >= end || *s != '"')) {
        free(out);
        fail(c, "unterminated label value");
        return NULL;
    }
    out[n] = '\0';
    *p = quote ? s + 1 : s;
    return out;
}

static bool parse_float(const char *s, size_t len, double *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (!strcmp(buf, "+Inf") || !strcmp(buf, "Inf")) {
        *out = INFINITY;
        return true;
    }
    if (!strcmp(buf, "-Inf")) {
        *out = -INFINITY;
        return true;
    }
    if (!strcmp(buf, "NaN")) {
        *out = NAN;
        return true;
    }
    /* strtod would also take "inf", "nan", hex and spaces: the format does not. */
    for (size_t i = 0; i < len; i++)
        if (!strchr("0123456789+-.eE", buf[i]))
            return false;
    char *e;
    *out = strtod(buf, &e);
    return *e == '\0';
}

static struct prom_family *find_fam(struct prom_doc *doc, const char *name)
{
    for (size_t i = 0; i < doc->n_fams; i++)
        if (!strcmp(doc->fams[i].name, name))
            return &doc->fams[i];
    return NULL;
}

static struct prom_family *add_fam(struct prom_doc *doc, const char *name)
{
    doc->fams = realloc(doc->fams, (doc->n_fams + 1) * sizeof *doc->fams);
    struct prom_family *f = &doc->fams[doc->n_fams++];
    memset(f, 0, sizeof *f);
    f->name = strdup(name);
    return f;
}

static int parse_comment(struct ctx *c, const char *s, const char *end)
{
    const char *p = s + 1;
    if (p < end && *p == ' ')
        p++;
    bool help = (size_t)(end - p) >= 5 && !memcmp(p, "HELP ", 5);
    bool type = (size_t)(end - p) >= 5 && !memcmp(p, "TYPE ", 5);
    if (!help && !type)
        return 0; /* a plain comment */
    p += 5;
    char *name = read_name(&p, end, true);
    if (!name)
        return fail(c, "invalid metric name after %s", help ? "HELP" : "TYPE");
    struct prom_family *f = find_fam(c->doc, name);
    if (f && f != c->open) {
        free(name);
        return fail(c, "%s for %s after its samples or in another group", help ? "HELP" : "TYPE",
                    f->name);
    }
    if (!f)
        f = add_fam(c->doc, name);
    free(name);
    if (f->n_samples)
        return fail(c, "%s for %s after its samples", help ? "HELP" : "TYPE", f->name);
    c->open = f;
    if (help) {
        if (f->help)
            return fail(c, "second HELP for %s", f->name);
        if (p < end && *p != ' ')
            return fail(c, "HELP name not followed by a space");
        if (p < end)
            p++;
        f->help = read_escaped(c, &p, end, false);
        return f->help ? 0 : -1;
    }
    if (f->type)
        return fail(c, "second TYPE for %s", f->name);
    if (p >= end || *p != ' ')
        return fail(c, "TYPE name not followed by a space");
    p++;
    static const char *const types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
    for (size_t i = 0; i < 5; i++)
        if ((size_t)(end - p) == strlen(types[i]) && !memcmp(p, types[i], (size_t)(end - p)))
            f->type = strdup(types[i]);
    if (!f->type)
        return fail(c, "unknown TYPE '%.*s'", (int)(end - p), p);
    return 0;
}

static bool has_suffix(const char *s, const char *base, const char *suffix)
{
    size_t n = strlen(base);
    return !strncmp(s, base, n) && !strcmp(s + n, suffix);
}

static bool labels_equal(const struct prom_sample *a, const struct prom_sample *b, bool skip_le)
{
    size_t na = 0, nb = 0;
    for (size_t i = 0; i < a->n_labels; i++)
        na += !(skip_le && !strcmp(a->labels[i].name, "le"));
    for (size_t i = 0; i < b->n_labels; i++)
        nb += !(skip_le && !strcmp(b->labels[i].name, "le"));
    if (na != nb)
        return false;
    for (size_t i = 0; i < a->n_labels; i++) {
        if (skip_le && !strcmp(a->labels[i].name, "le"))
            continue;
        size_t j;
        for (j = 0; j < b->n_labels; j++)
            if (!strcmp(a->labels[i].name, b->labels[j].name) &&
                !strcmp(a->labels[i].value, b->labels[j].value))
                break;
        if (j == b->n_labels)
            return false;
    }
    return true;
}

static const char *label_value(const struct prom_sample *s, const char *name)
{
    for (size_t i = 0; i < s->n_labels; i++)
        if (!strcmp(s->labels[i].name, name))
            return s->labels[i].value;
    return NULL;
}

static int parse_sample(struct ctx *c, const char *s, const char *end)
{
    const char *p = s;
    struct prom_sample smp = {0};
    smp.line = c->line;
    smp.name = read_name(&p, end, true);
    if (!smp.name)
        return fail(c, "invalid sample name");
    int rc = -1;
    if (p < end && *p == '{') {
        p++;
        while (p < end && *p != '}') {
            struct prom_label l;
            l.name = read_name(&p, end, false);
            if (!l.name) {
                fail(c, "invalid label name");
                goto out;
            }
            if (p >= end || *p != '=' || p + 1 >= end || p[1] != '"') {
                fail(c, "label %s not followed by =\"", l.name);
                free(l.name);
                goto out;
            }
            p += 2;
            l.value = read_escaped(c, &p, end, true);
            if (!l.value) {
                free(l.name);
                goto out;
            }
            for (size_t i = 0; i < smp.n_labels; i++)
                if (!strcmp(smp.labels[i].name, l.name)) {
                    fail(c, "duplicate label %s", l.name);
                    free(l.name);
                    free(l.value);
                    goto out;
                }
            smp.labels = realloc(smp.labels, (smp.n_labels + 1) * sizeof *smp.labels);
            smp.labels[smp.n_labels++] = l;
            if (p < end && *p == ',')
                p++;
            else if (p < end && *p != '}') {
                fail(c, "expected , or } after a label");
                goto out;
            }
        }
        if (p >= end) {
            fail(c, "unterminated label set");
            goto out;
        }
        p++;
    }
    if (p >= end || *p != ' ') {
        fail(c, "sample name not followed by a space");
        goto out;
    }
    p++;
    const char *v = p;
    while (p < end && *p != ' ')
        p++;
    if (!parse_float(v, (size_t)(p - v), &smp.value)) {
        fail(c, "invalid value '%.*s'", (int)(p - v), v);
        goto out;
    }
    if (p < end) { /* optional integer timestamp */
        p++;
        const char *t = p;
        if (p < end && *p == '-')
            p++;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == t || p != end) {
            fail(c, "invalid timestamp");
            goto out;
        }
    }
    /* Which family does it belong to? */
    struct prom_family *f = c->open;
    bool ok = f && (!strcmp(smp.name, f->name) ||
                    (f->type && !strcmp(f->type, "histogram") &&
                     (has_suffix(smp.name, f->name, "_bucket") ||
                      has_suffix(smp.name, f->name, "_sum") ||
                      has_suffix(smp.name, f->name, "_count"))));
    if (!ok) {
        fail(c, "sample %s outside its family's HELP/TYPE group", smp.name);
        goto out;
    }
    if (!f->type) {
        fail(c, "sample %s before its TYPE", smp.name);
        goto out;
    }
    if (!strcmp(f->type, "counter") && (smp.value < 0 || isnan(smp.value))) {
        fail(c, "counter %s is negative or NaN", smp.name);
        goto out;
    }
    bool is_bucket = has_suffix(smp.name, f->name, "_bucket");
    if (!is_bucket && label_value(&smp, "le") && !strcmp(f->type, "histogram")) {
        fail(c, "le label outside a bucket");
        goto out;
    }
    if (is_bucket) {
        double le;
        const char *lv = label_value(&smp, "le");
        if (!lv || !parse_float(lv, strlen(lv), &le) || isnan(le)) {
            fail(c, "bucket without a numeric le");
            goto out;
        }
    }
    for (size_t i = 0; i < f->n_samples; i++)
        if (!strcmp(f->samples[i].name, smp.name) && labels_equal(&f->samples[i], &smp, false)) {
            fail(c, "duplicate series %s", smp.name);
            goto out;
        }
    f->samples = realloc(f->samples, (f->n_samples + 1) * sizeof *f->samples);
    f->samples[f->n_samples++] = smp;
    return 0;
out:
    for (size_t i = 0; i < smp.n_labels; i++) {
        free(smp.labels[i].name);
        free(smp.labels[i].value);
    }
    free(smp.labels);
    free(smp.name);
    return rc;
}

/* Histogram rules, per label set (minus le). */
static int check_histogram(struct ctx *c, const struct prom_family *f)
{
    char bucket[256], sum[256], count[256];
    snprintf(bucket, sizeof bucket, "%s_bucket", f->name);
    snprintf(sum, sizeof sum, "%s_sum", f->name);
    snprintf(count, sizeof count, "%s_count", f->name);
    for (size_t i = 0; i < f->n_samples; i++) {
        const struct prom_sample *first = &f->samples[i];
        if (strcmp(first->name, bucket) != 0)
            continue;
        /* Only start at the first bucket of each label set. */
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = !strcmp(f->samples[k].name, bucket) && labels_equal(&f->samples[k], first, true);
        if (seen)
            continue;
        c->line = first->line;
        double prev_le = -INFINITY, prev_count = 0, inf_count = -1;
        for (size_t k = i; k < f->n_samples; k++) {
            const struct prom_sample *b = &f->samples[k];
            if (strcmp(b->name, bucket) != 0 || !labels_equal(b, first, true))
                continue;
            double le;
            const char *lv = label_value(b, "le");
            parse_float(lv, strlen(lv), &le);
            c->line = b->line;
            if (!(le > prev_le))
                return fail(c, "%s le=\"%s\" not above the previous bucket", bucket, lv);
            if (b->value < prev_count)
                return fail(c, "%s le=\"%s\" count decreases", bucket, lv);
            prev_le = le;
            prev_count = b->value;
            if (isinf(le))
                inf_count = b->value;
        }
        if (inf_count < 0)
            return fail(c, "%s has no +Inf bucket", bucket);
        const struct prom_sample *s = NULL, *n = NULL;
        for (size_t k = 0; k < f->n_samples; k++) {
            if (!labels_equal(&f->samples[k], first, true))
                continue;
            if (!strcmp(f->samples[k].name, sum))
                s = &f->samples[k];
            if (!strcmp(f->samples[k].name, count))
                n = &f->samples[k];
        }
        if (!s || !n)
            return fail(c, "%s lacks _sum or _count", f->name);
        if (n->value != inf_count) {
            c->line = n->line;
            return fail(c, "%s_count %g differs from +Inf bucket %g", f->name, n->value, inf_count);
        }
    }
    return 0;
}

int prom_parse(const char *text, size_t len, struct prom_doc *doc, char *err, size_t errcap)
{
    struct ctx c = {doc, err, errcap, 0, NULL};
    memset(doc, 0, sizeof *doc);
    if (errcap)
        err[0] = '\0';
    const char *p = text, *end = text + len;
    if (len && text[len - 1] != '\n')
        return c.line = 0, fail(&c, "last line does not end in \\n");
    while (p < end) {
        c.line++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if (memchr(p, '\0', (size_t)(le - p)))
            return fail(&c, "NUL byte");
        if (le > p && le[-1] == '\r')
            return fail(&c, "CR before newline");
        int rc;
        if (le == p)
            rc = 0; /* empty lines are allowed */
        else if (*p == '#')
            rc = parse_comment(&c, p, le);
        else
            rc = parse_sample(&c, p, le);
        if (rc)
            return rc;
        p = le + 1;
    }
    for (size_t i = 0; i < doc->n_fams; i++) {
        struct prom_family *f = &doc->fams[i];
        if (f->type && !strcmp(f->type, "counter")) {
            size_t n = strlen(f->name);
            if (n < 6 || strcmp(f->name + n - 6, "_total") != 0)
                return c.line = 0, fail(&c, "counter %s does not end in _total", f->name);
        }
        if (f->type && !strcmp(f->type, "histogram") && check_histogram(&c, f))
            return -1;
    }
    return 0;
}

void prom_doc_free(struct prom_doc *doc)
{
    for (size_t i = 0; i < doc->n_fams; i++) {
        struct prom_family *f = &doc->fams[i];
        for (size_t k = 0; k < f->n_samples; k++) {
            struct prom_sample *s = &f->samples[k];
            for (size_t j = 0; j < s->n_labels; j++) {
                free(s->labels[j].name);
                free(s->labels[j].value);
            }
            free(s->labels);
            free(s->name);
        }
        free(f->samples);
        free(f->name);
        free(f->help);
        free(f->type);
    }
    free(doc->fams);
    memset(doc, 0, sizeof *doc);
}

const struct prom_family *prom_find_family(const struct prom_doc *doc, const char *name)
{
    return find_fam((struct prom_doc *)doc, name);
}

const struct prom_sample *prom_find_sample(const struct prom_doc *doc, const char *name,
                                           const char *const *labels)
{
    size_t n = 0;
    while (labels && labels[n])
        n += 2;
    for (size_t i = 0; i < doc->n_fams; i++) {
        const struct prom_family *f = &doc->fams[i];
        for (size_t k = 0; k < f->n_samples; k++) {
            const struct prom_sample *s = &f->samples[k];
            if (strcmp(s->name, name) != 0 || s->n_labels != n / 2)
                continue;
            size_t j;
            for (j = 0; j < n; j += 2) {
                const char *v = label_value(s, labels[j]);
                if (!v || strcmp(v, labels[j + 1]) != 0)
                    break;
            }
            if (j == n)
                return s;
        }
    }
    return NULL;
}
