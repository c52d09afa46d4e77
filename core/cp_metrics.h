/* cp_metrics.h - Prometheus metrics registry: counters, gauges, histograms with labels, text format 0.0.4. */
#ifndef CP_METRICS_H
#define CP_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "cp_err.h"

/*
 * A registry holds metric families in registration order.  A family has a
 * name, help text, a type and a fixed list of label names; its children are
 * one time series each, created once per label-value combination and kept
 * by pointer in the code that updates them, so the hot path is one relaxed
 * atomic operation with no lookup and no lock.  Several loop threads may
 * update the same child.  Creating families/children and rendering take the
 * registry mutex (cold path).
 *
 * Naming conventions (reliability.md B6), checked where cheap:
 *   - one prefix `callpipe_`, base units as plural suffix (`_seconds`, `_bytes`);
 *   - counters end in `_total` (enforced);
 *   - no label names inside metric names; low-cardinality label values only
 *     (queue id yes, call id never): children are never freed.
 * Names must match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*
 * without a leading "__"; histograms may not use the label "le".
 * Children live until cp_metrics_destroy(); their memory never moves.
 */

enum cp_metric_type { CP_METRIC_COUNTER, CP_METRIC_GAUGE, CP_METRIC_HISTOGRAM };

struct cp_metrics;
struct cp_metric_family;

/* Monotonic integer counter. */
struct cp_counter {
    _Atomic uint64_t value;
};

/* Gauge holding a double (bit pattern stored atomically). */
struct cp_gauge {
    _Atomic uint64_t bits;
};

/* Fixed-bucket histogram; `counts[i]` is NOT cumulative (the renderer sums). */
struct cp_histogram {
    const double *bounds; /* upper bounds, strictly increasing, owned by the family */
    size_t n_bounds;      /* the +Inf bucket is counts[n_bounds] */
    _Atomic uint64_t *counts;
    _Atomic uint64_t sum_bits;
};

/* Value computed at scrape time; runs on the scraping thread under the registry lock. */
typedef double (*cp_metric_value_fn)(void *arg);

struct cp_metrics *cp_metrics_create(void);
void cp_metrics_destroy(struct cp_metrics *reg);

/*
 * Registers a family.  `label_names` is a NULL-terminated array (NULL = no
 * labels).  `bounds`/`n_bounds` are for histograms only (copied; +Inf is
 * implicit and must not be listed).  Registering the same name again with
 * the same type and labels returns the existing family (so every loop can
 * call this); any other conflict, an invalid name or bounds return NULL and
 * log why.
 */
struct cp_metric_family *cp_metrics_family(struct cp_metrics *reg, enum cp_metric_type type,
                                           const char *name, const char *help,
                                           const char *const *label_names, const double *bounds,
                                           size_t n_bounds);

/*
 * The child for these label values (NULL-terminated, as many as the family
 * has label names), created on first use.  NULL on a type mismatch, a wrong
 * number of values, or out of memory.  Call once and keep the pointer.
 */
struct cp_counter *cp_metrics_counter_child(struct cp_metric_family *fam,
                                            const char *const *label_values);
struct cp_gauge *cp_metrics_gauge_child(struct cp_metric_family *fam,
                                        const char *const *label_values);
struct cp_histogram *cp_metrics_histogram_child(struct cp_metric_family *fam,
                                                const char *const *label_values);
/*
 * A child of a counter or gauge family whose value is fn(arg) at scrape time
 * (Kafka queue depth, spool size).  fn must be thread-safe with respect to
 * the scraping thread.  Returns 0, CP_ERR_EXISTS (values already used),
 * CP_ERR_TYPE (histogram family) or CP_ERR_INVAL/CP_ERR_NOMEM.
 */
int cp_metrics_child_fn(struct cp_metric_family *fam, const char *const *label_values,
                        cp_metric_value_fn fn, void *arg);

/* Shorthands for families without labels: register and return the only child. */
struct cp_counter *cp_metrics_counter(struct cp_metrics *reg, const char *name, const char *help);
struct cp_gauge *cp_metrics_gauge(struct cp_metrics *reg, const char *name, const char *help);
struct cp_histogram *cp_metrics_histogram(struct cp_metrics *reg, const char *name,
                                          const char *help, const double *bounds,
                                          size_t n_bounds);
int cp_metrics_gauge_fn(struct cp_metrics *reg, const char *name, const char *help,
                        cp_metric_value_fn fn, void *arg);

/* Hot path: lock-free, safe from any thread. NULL pointers are ignored. */
static inline void cp_counter_add(struct cp_counter *c, uint64_t n)
{
    if (c)
        atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}
static inline void cp_counter_inc(struct cp_counter *c)
{
    cp_counter_add(c, 1);
}
static inline uint64_t cp_counter_get(const struct cp_counter *c)
{
    return c ? atomic_load_explicit(&((struct cp_counter *)c)->value, memory_order_relaxed) : 0;
}
void cp_gauge_set(struct cp_gauge *g, double v);
void cp_gauge_add(struct cp_gauge *g, double delta);
double cp_gauge_get(const struct cp_gauge *g);
static inline void cp_gauge_inc(struct cp_gauge *g)
{
    cp_gauge_add(g, 1.0);
}
static inline void cp_gauge_dec(struct cp_gauge *g)
{
    cp_gauge_add(g, -1.0);
}
/* Counts v in the first bucket whose bound is >= v (Prometheus `le`); NaN goes to +Inf only. */
void cp_histogram_observe(struct cp_histogram *h, double v);
uint64_t cp_histogram_count(const struct cp_histogram *h);
double cp_histogram_sum(const struct cp_histogram *h);

/* Bucket helpers: `n` bounds start, start*factor, ... / start, start+width, ... */
void cp_metrics_exp_buckets(double start, double factor, size_t n, double *out);
void cp_metrics_linear_buckets(double start, double width, size_t n, double *out);

/*
 * Renders every family in the text exposition format 0.0.4: "# HELP", "# TYPE",
 * then samples; label values escaped (\\ \" \n), help escaped (\\ \n), every
 * line ends in '\n'.  Histogram `_count` always equals the `+Inf` bucket even
 * while other threads observe.  Returns a malloc'd NUL-terminated buffer the
 * caller frees with free(), length in *len; NULL when out of memory.
 */
char *cp_metrics_render(struct cp_metrics *reg, size_t *len);

/* Formats a sample value the way the renderer does ("+Inf", "NaN", shortest round-trip). */
size_t cp_metrics_format_value(double v, char *buf, size_t cap);

#define CP_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
