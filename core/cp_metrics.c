/* cp_metrics.c - metric families, atomic children and the Prometheus text renderer. */
#include "cp_metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cp_log.h"

struct child {
    struct child *next;
    char **label_values; /* as many as the family has label names */
    cp_metric_value_fn fn;
    void *fn_arg;
    union {
        struct cp_counter counter;
        struct cp_gauge gauge;
        struct cp_histogram hist;
    } u;
};

struct cp_metric_family {
    struct cp_metric_family *next;
    struct cp_metrics *reg;
    enum cp_metric_type type;
    char *name;
    char *help;
    char **label_names;
    size_t n_labels;
    double *bounds;
    size_t n_bounds;
    struct child *children; /* creation order */
    struct child **children_tail;
};

struct cp_metrics {
    pthread_mutex_t lock;
    struct cp_metric_family *families;
    struct cp_metric_family **families_tail;
};

static const char *const type_names[] = {"counter", "gauge", "histogram"};

static inline uint64_t dbits(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

static inline double bitsd(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

struct cp_metrics *cp_metrics_create(void)
{
    struct cp_metrics *reg = calloc(1, sizeof *reg);
    if (!reg)
        return NULL;
    pthread_mutex_init(&reg->lock, NULL);
    reg->families_tail = &reg->families;
    return reg;
}

static void free_strv(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void child_free(struct cp_metric_family *fam, struct child *ch)
{
    free_strv(ch->label_values, fam->n_labels);
    if (fam->type == CP_METRIC_HISTOGRAM)
        free(ch->u.hist.counts);
    free(ch);
}

static void family_free(struct cp_metric_family *fam)
{
    struct child *ch = fam->children;
    while (ch) {
        struct child *next = ch->next;
        child_free(fam, ch);
        ch = next;
    }
    free(fam->name);
    free(fam->help);
    free_strv(fam->label_names, fam->n_labels);
    free(fam->bounds);
    free(fam);
}

void cp_metrics_destroy(struct cp_metrics *reg)
{
    if (!reg)
        return;
    struct cp_metric_family *fam = reg->families;
    while (fam) {
        struct cp_metric_family *next = fam->next;
        family_free(fam);
        fam = next;
    }
    pthread_mutex_destroy(&reg->lock);
    free(reg);
}

static bool valid_metric_name(const char *s)
{
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(p != s && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

static bool valid_label_name(const char *s)
{
    if (!s || !*s || (s[0] == '_' && s[1] == '_'))
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!alpha && !(p != s && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static size_t strv_len(const char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

static char **strv_dup(const char *const *v, size_t n)
{
    char **out = calloc(n ? n : 1, sizeof *out);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        out[i] = strdup(v[i]);
        if (!out[i]) {
            free_strv(out, i);
            return NULL;
        }
    }
    return out;
}

static bool same_family(const struct cp_metric_family *fam, enum cp_metric_type type,
                        const char *const *label_names, size_t n_labels, const double *bounds,
                        size_t n_bounds)
{
    if (fam->type != type || fam->n_labels != n_labels)
        return false;
    for (size_t i = 0; i < n_labels; i++)
        if (strcmp(fam->label_names[i], label_names[i]) != 0)
            return false;
    if (type == CP_METRIC_HISTOGRAM &&
        (fam->n_bounds != n_bounds || memcmp(fam->bounds, bounds, n_bounds * sizeof *bounds)))
        return false;
    return true;
}

static const char *check_family(enum cp_metric_type type, const char *name,
                                const char *const *label_names, size_t n_labels,
                                const double *bounds, size_t n_bounds)
{
    if ((unsigned)type > CP_METRIC_HISTOGRAM)
        return "unknown metric type";
    if (!valid_metric_name(name))
        return "invalid metric name";
    if (type == CP_METRIC_COUNTER && !ends_with(name, "_total"))
        return "counter names must end in _total";
    for (size_t i = 0; i < n_labels; i++) {
        if (!valid_label_name(label_names[i]))
            return "invalid label name";
        if (type == CP_METRIC_HISTOGRAM && strcmp(label_names[i], "le") == 0)
            return "histograms may not use the label le";
        for (size_t j = 0; j < i; j++)
            if (strcmp(label_names[i], label_names[j]) == 0)
                return "duplicate label name";
    }
    if (type == CP_METRIC_HISTOGRAM) {
        if (!bounds && n_bounds)
            return "missing histogram bounds";
        for (size_t i = 0; i < n_bounds; i++) {
            if (isnan(bounds[i]) || isinf(bounds[i]))
                return "histogram bounds must be finite";
            if (i > 0 && !(bounds[i] > bounds[i - 1]))
                return "histogram bounds must increase strictly";
        }
    }
    return NULL;
}

static struct child *child_new(struct cp_metric_family *fam, const char *const *values);

struct cp_metric_family *cp_metrics_family(struct cp_metrics *reg, enum cp_metric_type type,
                                           const char *name, const char *help,
                                           const char *const *label_names, const double *bounds,
                                           size_t n_bounds)
{
    if (!reg || !name)
        return NULL;
    size_t n_labels = strv_len(label_names);
    if (type != CP_METRIC_HISTOGRAM)
        n_bounds = 0;
    const char *why = check_family(type, name, label_names, n_labels, bounds, n_bounds);
    if (why) {
        cp_error("metrics", "could not register metric %s: %s", name, why);
        return NULL;
    }
    pthread_mutex_lock(&reg->lock);
    struct cp_metric_family *fam;
    for (fam = reg->families; fam; fam = fam->next) {
        if (strcmp(fam->name, name) != 0)
            continue;
        if (!same_family(fam, type, label_names, n_labels, bounds, n_bounds)) {
            cp_error("metrics", "could not register metric %s: registered with another shape",
                     name);
            fam = NULL;
        }
        pthread_mutex_unlock(&reg->lock);
        return fam;
    }
    fam = calloc(1, sizeof *fam);
    if (!fam)
        goto nomem;
    fam->reg = reg;
    fam->type = type;
    fam->n_labels = n_labels;
    fam->n_bounds = n_bounds;
    fam->children_tail = &fam->children;
    fam->name = strdup(name);
    fam->help = strdup(help ? help : "");
    fam->label_names = strv_dup(label_names, n_labels);
    if (!fam->name || !fam->help || !fam->label_names)
        goto nomem;
    if (type == CP_METRIC_HISTOGRAM) {
        fam->bounds = malloc((n_bounds ? n_bounds : 1) * sizeof *bounds);
        if (!fam->bounds)
            goto nomem;
        if (n_bounds)
            memcpy(fam->bounds, bounds, n_bounds * sizeof *bounds);
    }
    /* A family without labels has exactly one series, shown as 0 from the start. */
    if (n_labels == 0 && !child_new(fam, NULL))
        goto nomem;
    *reg->families_tail = fam;
    reg->families_tail = &fam->next;
    pthread_mutex_unlock(&reg->lock);
    return fam;
nomem:
    pthread_mutex_unlock(&reg->lock);
    if (fam)
        family_free(fam);
    cp_error("metrics", "could not register metric %s: %s", name, cp_err_str(CP_ERR_NOMEM));
    return NULL;
}

/* Caller holds the registry lock. */
static struct child *child_find(struct cp_metric_family *fam, const char *const *values)
{
    for (struct child *ch = fam->children; ch; ch = ch->next) {
        size_t i;
        for (i = 0; i < fam->n_labels; i++)
            if (strcmp(ch->label_values[i], values[i]) != 0)
                break;
        if (i == fam->n_labels)
            return ch;
    }
    return NULL;
}

/* Caller holds the registry lock (or owns an unpublished family). */
static struct child *child_new(struct cp_metric_family *fam, const char *const *values)
{
    struct child *ch = calloc(1, sizeof *ch);
    if (!ch)
        return NULL;
    ch->label_values = strv_dup(values, fam->n_labels);
    if (!ch->label_values) {
        free(ch);
        return NULL;
    }
    if (fam->type == CP_METRIC_HISTOGRAM) {
        ch->u.hist.bounds = fam->bounds;
        ch->u.hist.n_bounds = fam->n_bounds;
        ch->u.hist.counts = calloc(fam->n_bounds + 1, sizeof *ch->u.hist.counts);
        if (!ch->u.hist.counts) {
            free_strv(ch->label_values, fam->n_labels);
            free(ch);
            return NULL;
        }
        atomic_init(&ch->u.hist.sum_bits, dbits(0.0));
    } else if (fam->type == CP_METRIC_GAUGE) {
        atomic_init(&ch->u.gauge.bits, dbits(0.0));
    }
    *fam->children_tail = ch;
    fam->children_tail = &ch->next;
    return ch;
}

static struct child *child_get(struct cp_metric_family *fam, enum cp_metric_type type,
                               const char *const *values, bool want_fn)
{
    if (!fam || fam->type != type || strv_len(values) != fam->n_labels)
        return NULL;
    pthread_mutex_lock(&fam->reg->lock);
    struct child *ch = child_find(fam, values);
    if (!ch)
        ch = child_new(fam, values);
    else if ((ch->fn != NULL) != want_fn)
        ch = NULL; /* a callback child is not updatable, and vice versa */
    pthread_mutex_unlock(&fam->reg->lock);
    return ch;
}

struct cp_counter *cp_metrics_counter_child(struct cp_metric_family *fam,
                                            const char *const *label_values)
{
    struct child *ch = child_get(fam, CP_METRIC_COUNTER, label_values, false);
    return ch ? &ch->u.counter : NULL;
}

struct cp_gauge *cp_metrics_gauge_child(struct cp_metric_family *fam,
                                        const char *const *label_values)
{
    struct child *ch = child_get(fam, CP_METRIC_GAUGE, label_values, false);
    return ch ? &ch->u.gauge : NULL;
}

struct cp_histogram *cp_metrics_histogram_child(struct cp_metric_family *fam,
                                                const char *const *label_values)
{
    struct child *ch = child_get(fam, CP_METRIC_HISTOGRAM, label_values, false);
    return ch ? &ch->u.hist : NULL;
}

int cp_metrics_child_fn(struct cp_metric_family *fam, const char *const *label_values,
                        cp_metric_value_fn fn, void *arg)
{
    if (!fam || !fn || strv_len(label_values) != fam->n_labels)
        return CP_ERR_INVAL;
    if (fam->type == CP_METRIC_HISTOGRAM)
        return CP_ERR_TYPE;
    int rc = 0;
    pthread_mutex_lock(&fam->reg->lock);
    struct child *ch = child_find(fam, label_values);
    if (ch && (ch->fn || fam->n_labels > 0 || cp_counter_get(&ch->u.counter) != 0))
        rc = CP_ERR_EXISTS; /* the implicit child of an unlabeled family may be taken over */
    else if (!ch && !(ch = child_new(fam, label_values)))
        rc = CP_ERR_NOMEM;
    if (rc == 0) {
        ch->fn = fn;
        ch->fn_arg = arg;
    }
    pthread_mutex_unlock(&fam->reg->lock);
    return rc;
}

struct cp_counter *cp_metrics_counter(struct cp_metrics *reg, const char *name, const char *help)
{
    struct cp_metric_family *fam =
        cp_metrics_family(reg, CP_METRIC_COUNTER, name, help, NULL, NULL, 0);
    return cp_metrics_counter_child(fam, NULL);
}

struct cp_gauge *cp_metrics_gauge(struct cp_metrics *reg, const char *name, const char *help)
{
    struct cp_metric_family *fam =
        cp_metrics_family(reg, CP_METRIC_GAUGE, name, help, NULL, NULL, 0);
    return cp_metrics_gauge_child(fam, NULL);
}

struct cp_histogram *cp_metrics_histogram(struct cp_metrics *reg, const char *name,
                                          const char *help, const double *bounds,
                                          size_t n_bounds)
{
    struct cp_metric_family *fam =
        cp_metrics_family(reg, CP_METRIC_HISTOGRAM, name, help, NULL, bounds, n_bounds);
    return cp_metrics_histogram_child(fam, NULL);
}

int cp_metrics_gauge_fn(struct cp_metrics *reg, const char *name, const char *help,
                        cp_metric_value_fn fn, void *arg)
{
    struct cp_metric_family *fam =
        cp_metrics_family(reg, CP_METRIC_GAUGE, name, help, NULL, NULL, 0);
    if (!fam)
        return CP_ERR_INVAL;
    return cp_metrics_child_fn(fam, NULL, fn, arg);
}

static void atomic_add_double(_Atomic uint64_t *bits, double delta)
{
    uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(bits, &old, dbits(bitsd(old) + delta),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

void cp_gauge_set(struct cp_gauge *g, double v)
{
    if (g)
        atomic_store_explicit(&g->bits, dbits(v), memory_order_relaxed);
}

void cp_gauge_add(struct cp_gauge *g, double delta)
{
    if (g)
        atomic_add_double(&g->bits, delta);
}

double cp_gauge_get(const struct cp_gauge *g)
{
    if (!g)
        return 0.0;
    return bitsd(atomic_load_explicit(&((struct cp_gauge *)g)->bits, memory_order_relaxed));
}

void cp_histogram_observe(struct cp_histogram *h, double v)
{
    if (!h)
        return;
    /* Binary search for the first bound >= v; NaN compares false and lands in +Inf. */
    size_t lo = 0, hi = h->n_bounds;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v <= h->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    if (isnan(v))
        lo = h->n_bounds;
    atomic_fetch_add_explicit(&h->counts[lo], 1, memory_order_relaxed);
    atomic_add_double(&h->sum_bits, v);
}

uint64_t cp_histogram_count(const struct cp_histogram *h)
{
    uint64_t n = 0;
    if (!h)
        return 0;
    for (size_t i = 0; i <= h->n_bounds; i++)
        n += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
    return n;
}

double cp_histogram_sum(const struct cp_histogram *h)
{
    if (!h)
        return 0.0;
    return bitsd(atomic_load_explicit(&((struct cp_histogram *)h)->sum_bits, memory_order_relaxed));
}

void cp_metrics_exp_buckets(double start, double factor, size_t n, double *out)
{
    for (size_t i = 0; i < n; i++, start *= factor)
        out[i] = start;
}

void cp_metrics_linear_buckets(double start, double width, size_t n, double *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = start + width * (double)i;
}

size_t cp_metrics_format_value(double v, char *buf, size_t cap)
{
    int n;
    if (isnan(v))
        n = snprintf(buf, cap, "NaN");
    else if (isinf(v))
        n = snprintf(buf, cap, v > 0 ? "+Inf" : "-Inf");
    else {
        /* Shortest of %.15g/%.17g that reads back exactly: 0.1 stays "0.1". */
        n = snprintf(buf, cap, "%.15g", v);
        if (n > 0 && (size_t)n < cap && strtod(buf, NULL) != v)
            n = snprintf(buf, cap, "%.17g", v);
    }
    if (n < 0)
        n = 0;
    return (size_t)n < cap ? (size_t)n : (cap ? cap - 1 : 0);
}

/* ---- rendering ---------------------------------------------------------- */

struct sbuf {
    char *p;
    size_t len, cap;
    bool failed;
};

static void sb_reserve(struct sbuf *b, size_t extra)
{
    if (b->failed || b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = true;
        return;
    }
    b->p = p;
    b->cap = cap;
}

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    sb_reserve(b, n);
    if (b->failed)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

/* Label values escape \ " and newline; help text escapes \ and newline only. */
static void sb_escaped(struct sbuf *b, const char *s, bool quote)
{
    const char *run = s;
    for (; *s; s++) {
        const char *rep = NULL;
        if (*s == '\\')
            rep = "\\\\";
        else if (*s == '\n')
            rep = "\\n";
        else if (quote && *s == '"')
            rep = "\\\"";
        if (rep) {
            sb_put(b, run, (size_t)(s - run));
            sb_str(b, rep);
            run = s + 1;
        }
    }
    sb_put(b, run, (size_t)(s - run));
}

static void sb_double(struct sbuf *b, double v)
{
    char tmp[40];
    sb_put(b, tmp, cp_metrics_format_value(v, tmp, sizeof tmp));
}

static void sb_u64(struct sbuf *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRIu64, v);
    sb_put(b, tmp, (size_t)n);
}

/* name{l1="v1",l2="v2"[,le="x"]} */
static void sb_series(struct sbuf *b, const struct cp_metric_family *fam, const char *suffix,
                      const struct child *ch, const char *le)
{
    sb_str(b, fam->name);
    sb_str(b, suffix);
    if (fam->n_labels == 0 && !le) {
        sb_put(b, " ", 1);
        return;
    }
    sb_put(b, "{", 1);
    for (size_t i = 0; i < fam->n_labels; i++) {
        if (i)
            sb_put(b, ",", 1);
        sb_str(b, fam->label_names[i]);
        sb_put(b, "=\"", 2);
        sb_escaped(b, ch->label_values[i], true);
        sb_put(b, "\"", 1);
    }
    if (le) {
        if (fam->n_labels)
            sb_put(b, ",", 1);
        sb_str(b, "le=\"");
        sb_str(b, le);
        sb_put(b, "\"", 1);
    }
    sb_put(b, "} ", 2);
}

static void render_histogram(struct sbuf *b, const struct cp_metric_family *fam,
                             const struct child *ch)
{
    const struct cp_histogram *h = &ch->u.hist;
    uint64_t cum = 0;
    char le[40];
    for (size_t i = 0; i <= h->n_bounds; i++) {
        /* _count is the running sum, so it equals +Inf even under concurrent observes. */
        cum += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        if (i < h->n_bounds)
            cp_metrics_format_value(h->bounds[i], le, sizeof le);
        else
            strcpy(le, "+Inf");
        sb_series(b, fam, "_bucket", ch, le);
        sb_u64(b, cum);
        sb_put(b, "\n", 1);
    }
    sb_series(b, fam, "_sum", ch, NULL);
    sb_double(b, cp_histogram_sum(h));
    sb_put(b, "\n", 1);
    sb_series(b, fam, "_count", ch, NULL);
    sb_u64(b, cum);
    sb_put(b, "\n", 1);
}

char *cp_metrics_render(struct cp_metrics *reg, size_t *len)
{
    struct sbuf b = {0};
    sb_reserve(&b, 0);
    pthread_mutex_lock(&reg->lock);
    for (const struct cp_metric_family *fam = reg->families; fam; fam = fam->next) {
        sb_str(&b, "# HELP ");
        sb_str(&b, fam->name);
        sb_put(&b, " ", 1);
        sb_escaped(&b, fam->help, false);
        sb_str(&b, "\n# TYPE ");
        sb_str(&b, fam->name);
        sb_put(&b, " ", 1);
        sb_str(&b, type_names[fam->type]);
        sb_put(&b, "\n", 1);
        for (const struct child *ch = fam->children; ch; ch = ch->next) {
            if (fam->type == CP_METRIC_HISTOGRAM) {
                render_histogram(&b, fam, ch);
                continue;
            }
            sb_series(&b, fam, "", ch, NULL);
            if (ch->fn)
                sb_double(&b, ch->fn(ch->fn_arg));
            else if (fam->type == CP_METRIC_COUNTER)
                sb_u64(&b, cp_counter_get(&ch->u.counter));
            else
                sb_double(&b, cp_gauge_get(&ch->u.gauge));
            sb_put(&b, "\n", 1);
        }
    }
    pthread_mutex_unlock(&reg->lock);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.p;
}
