/* prom_parse.h - strict parser/validator of the Prometheus text format 0.0.4, for tests. */
#ifndef PROM_PARSE_H
#define PROM_PARSE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Checks what a scraper would: every line's grammar, '\n' after every line,
 * HELP/TYPE at most once per family and before its samples, samples of one
 * family contiguous, no duplicate series, label escaping (only \\ \" \n),
 * histogram buckets with increasing `le`, non-decreasing cumulative counts,
 * a final +Inf bucket equal to `_count`, and `_sum`; counters >= 0 and named
 * *_total.  Samples without a TYPE are rejected (callpipe always writes one).
 * Strings in the result are unescaped.
 */

struct prom_label {
    char *name;
    char *value;
};

struct prom_sample {
    char *name; /* full sample name, e.g. x_bucket */
    struct prom_label *labels;
    size_t n_labels;
    double value;
    int line;
};

struct prom_family {
    char *name;
    char *help; /* NULL when absent */
    char *type; /* "counter", "gauge", "histogram", "summary", "untyped" */
    struct prom_sample *samples;
    size_t n_samples;
};

struct prom_doc {
    struct prom_family *fams;
    size_t n_fams;
};

/* 0 on success; -1 with a "line N: why" message in err. The doc is filled either way. */
int prom_parse(const char *text, size_t len, struct prom_doc *doc, char *err, size_t errcap);
void prom_doc_free(struct prom_doc *doc);
const struct prom_family *prom_find_family(const struct prom_doc *doc, const char *name);
/* Sample by name and exact label set given as NULL-terminated name, value pairs (NULL = none). */
const struct prom_sample *prom_find_sample(const struct prom_doc *doc, const char *name,
                                           const char *const *labels);

#endif
