/* test_metrics.c - metrics registry and Prometheus text rendering, checked by a strict format parser. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cp_metrics.h"
#include "../lib/prom_parse.h"

static const char *const no_labels[] = {NULL};

/* Renders, parses strictly, and fails the test with the parser's message on error. */
static void render_parse(struct cp_metrics *reg, struct prom_doc *doc, char **text_out)
{
    size_t len = 0;
    char *text = cp_metrics_render(reg, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    char err[256];
    int rc = prom_parse(text, len, doc, err, sizeof err);
    if (rc != 0)
        fail_msg("render does not parse: %s\n---\n%s", err, text);
    if (text_out)
        *text_out = text;
    else
        free(text);
}

static double value_of(const struct prom_doc *doc, const char *name, const char *const *labels)
{
    const struct prom_sample *s = prom_find_sample(doc, name, labels);
    if (!s)
        fail_msg("no sample %s", name);
    return s->value;
}

static double answer_42(void *arg)
{
    (void)arg;
    return 42.5;
}

static void test_render_full_registry(void **state)
{
    (void)state;
    struct cp_metrics *reg = cp_metrics_create();
    assert_non_null(reg);

    struct cp_counter *events = cp_metrics_counter(reg, "callpipe_events_total",
                                                   "Events accepted.\nSecond line with \\ backslash");
    assert_non_null(events);
    cp_counter_add(events, 41);
    cp_counter_inc(events);

    const char *const src_labels[] = {"source", "pbx", NULL};
    struct cp_metric_family *by_src =
        cp_metrics_family(reg, CP_METRIC_COUNTER, "callpipe_ingest_records_total",
                          "Records by source.", src_labels, NULL, 0);
    assert_non_null(by_src);
    const char *const weird[] = {"json", "eu-1 \"main\"\\ \n next\xc3\xa9", NULL};
    const char *const plain[] = {"smdr", "us-2", NULL};
    struct cp_counter *c_weird = cp_metrics_counter_child(by_src, weird);
    struct cp_counter *c_plain = cp_metrics_counter_child(by_src, plain);
    assert_non_null(c_weird);
    assert_non_null(c_plain);
    assert_ptr_not_equal(c_weird, c_plain);
    /* The same label values give the same child: keep-the-pointer is safe to repeat. */
    assert_ptr_equal(cp_metrics_counter_child(by_src, weird), c_weird);
    cp_counter_add(c_weird, 7);
    cp_counter_add(c_plain, 3);

    struct cp_gauge *conns = cp_metrics_gauge(reg, "callpipe_http_connections", "Open connections.");
    cp_gauge_inc(conns);
    cp_gauge_inc(conns);
    cp_gauge_dec(conns);
    cp_gauge_add(conns, -3.5);
    assert_int_equal(cp_metrics_gauge_fn(reg, "callpipe_kafka_queue_messages",
                                         "Messages waiting in librdkafka.", answer_42, NULL),
                     0);

    const double bounds[] = {0.1, 0.5, 1, 5};
    struct cp_histogram *lat = cp_metrics_histogram(reg, "callpipe_ack_latency_seconds",
                                                    "Time to Kafka ack.", bounds, 4);
    assert_non_null(lat);
    const double obs[] = {0.05, 0.1, 0.3, 2, 100};
    for (size_t i = 0; i < 5; i++)
        cp_histogram_observe(lat, obs[i]);

    const char *const q_labels[] = {"queue", NULL};
    struct cp_metric_family *wait =
        cp_metrics_family(reg, CP_METRIC_HISTOGRAM, "callpipe_queue_wait_seconds",
                          "Queue wait.", q_labels, bounds, 4);
    const char *const q1[] = {"sales\"eu\"", NULL};
    struct cp_histogram *w1 = cp_metrics_histogram_child(wait, q1);
    cp_histogram_observe(w1, 0.7);

    struct prom_doc doc;
    char *text;
    render_parse(reg, &doc, &text);

    /* Families in registration order, each with its TYPE and unescaped HELP. */
    assert_int_equal(doc.n_fams, 6);
    assert_string_equal(doc.fams[0].name, "callpipe_events_total");
    assert_string_equal(doc.fams[0].type, "counter");
    assert_string_equal(doc.fams[0].help, "Events accepted.\nSecond line with \\ backslash");
    assert_string_equal(doc.fams[3].type, "gauge");
    assert_string_equal(doc.fams[4].type, "histogram");

    assert_true(value_of(&doc, "callpipe_events_total", NULL) == 42);
    const char *const lw[] = {"source", "json", "pbx", weird[1], NULL};
    const char *const lp[] = {"source", "smdr", "pbx", "us-2", NULL};
    assert_true(value_of(&doc, "callpipe_ingest_records_total", lw) == 7);
    assert_true(value_of(&doc, "callpipe_ingest_records_total", lp) == 3);
    assert_true(value_of(&doc, "callpipe_http_connections", NULL) == -2.5);
    assert_true(value_of(&doc, "callpipe_kafka_queue_messages", NULL) == 42.5);

    /* Cumulative buckets, exact. */
    const char *const le[][3] = {{"le", "0.1", NULL}, {"le", "0.5", NULL}, {"le", "1", NULL},
                                 {"le", "5", NULL},   {"le", "+Inf", NULL}};
    const double want[] = {2, 3, 3, 4, 5};
    for (size_t i = 0; i < 5; i++)
        assert_true(value_of(&doc, "callpipe_ack_latency_seconds_bucket", le[i]) == want[i]);
    assert_true(value_of(&doc, "callpipe_ack_latency_seconds_count", NULL) == 5);
    assert_true(fabs(value_of(&doc, "callpipe_ack_latency_seconds_sum", NULL) - 102.45) < 1e-9);
    const char *const w_inf[] = {"queue", q1[0], "le", "+Inf", NULL};
    const char *const w_05[] = {"queue", q1[0], "le", "0.5", NULL};
    const char *const w_1[] = {"queue", q1[0], "le", "1", NULL};
    assert_true(value_of(&doc, "callpipe_queue_wait_seconds_bucket", w_inf) == 1);
    assert_true(value_of(&doc, "callpipe_queue_wait_seconds_bucket", w_05) == 0);
    assert_true(value_of(&doc, "callpipe_queue_wait_seconds_bucket", w_1) == 1);

    /* The raw escaping itself, for the one line that has every special character. */
    assert_non_null(strstr(text, "pbx=\"eu-1 \\\"main\\\"\\\\ \\n next\xc3\xa9\""));
    assert_non_null(strstr(text, "# HELP callpipe_events_total Events accepted.\\nSecond line "
                                 "with \\\\ backslash\n"));
    assert_int_equal(text[strlen(text) - 1], '\n');

    prom_doc_free(&doc);
    free(text);
    cp_metrics_destroy(reg);
}

/* The validator must be able to say no, or the test above proves nothing. */
static void test_parser_rejects_bad_text(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "# TYPE a_total counter\na_total 1",                             /* no final \n */
        "a_total 1\n",                                                   /* no TYPE */
        "# TYPE a_total counter\na_total{x=\"\\t\"} 1\n",                /* bad escape */
        "# TYPE a_total counter\na_total{x=\"v} 1\n",                    /* unterminated */
        "# TYPE a_total counter\n# TYPE a_total counter\na_total 1\n",   /* second TYPE */
        "# TYPE a_total counter\na_total 1\n# HELP a_total late\n",      /* HELP after */
        "# TYPE a counter\na 1\n",                                       /* no _total */
        "# TYPE a_total counter\na_total -1\n",                          /* negative */
        "# TYPE a_total counter\na_total one\n",                         /* not a number */
        "# TYPE a_total counter\na_total 1\na_total 2\n",                /* duplicate series */
        "# TYPE a_total counter\n# TYPE b gauge\na_total 1\n",           /* outside group */
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", /* no +Inf */
        "# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\n"
        "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",                  /* le order */
        "# TYPE g gauge\ng{a=\"1\",a=\"2\"} 1\n",                         /* duplicate label */
        "# TYPE g gauge\ng 1\r\n",                                       /* CRLF */
        "# TYPE g gauge\ng  1\n",                                        /* two spaces */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct prom_doc doc;
        char err[200];
        int rc = prom_parse(bad[i], strlen(bad[i]), &doc, err, sizeof err);
        if (rc == 0)
            fail_msg("case %zu accepted: %s", i, bad[i]);
        assert_true(err[0] != '\0');
        prom_doc_free(&doc);
    }
    /* And a good hand-written one passes. */
    const char *good = "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\n"
                       "h_bucket{le=\"+Inf\"} 2\nh_sum 3.5\nh_count 2\n";
    struct prom_doc doc;
    char err[200];
    assert_int_equal(prom_parse(good, strlen(good), &doc, err, sizeof err), 0);
    prom_doc_free(&doc);
}

static void test_registration_rules(void **state)
{
    (void)state;
    struct cp_metrics *reg = cp_metrics_create();
    const double bounds[] = {1, 2};
    const double bad_bounds[] = {2, 1};
    const char *const le_label[] = {"le", NULL};
    const char *const dup_label[] = {"a", "a", NULL};
    const char *const reserved[] = {"__x", NULL};
    const char *const one[] = {"a", NULL};

    assert_null(cp_metrics_counter(reg, "callpipe_events", "no _total"));
    assert_null(cp_metrics_gauge(reg, "9bad", "starts with a digit"));
    assert_null(cp_metrics_gauge(reg, "bad-name", "dash"));
    assert_null(cp_metrics_histogram(reg, "callpipe_h_seconds", "bad", bad_bounds, 2));
    assert_null(cp_metrics_family(reg, CP_METRIC_HISTOGRAM, "callpipe_h2_seconds", "le",
                                  le_label, bounds, 2));
    assert_null(cp_metrics_family(reg, CP_METRIC_GAUGE, "callpipe_g", "dup", dup_label, NULL, 0));
    assert_null(cp_metrics_family(reg, CP_METRIC_GAUGE, "callpipe_g", "res", reserved, NULL, 0));

    /* Same shape again: the same family (each loop may register). Other shape: refused. */
    struct cp_counter *a = cp_metrics_counter(reg, "callpipe_x_total", "x");
    assert_ptr_equal(cp_metrics_counter(reg, "callpipe_x_total", "x"), a);
    assert_null(cp_metrics_gauge(reg, "callpipe_x_total", "x as gauge"));
    assert_null(cp_metrics_family(reg, CP_METRIC_COUNTER, "callpipe_x_total", "x", one, NULL, 0));

    /* Children: wrong arity or wrong type give NULL. */
    struct cp_metric_family *fam =
        cp_metrics_family(reg, CP_METRIC_GAUGE, "callpipe_y", "y", one, NULL, 0);
    const char *const two_vals[] = {"1", "2", NULL};
    const char *const one_val[] = {"1", NULL};
    assert_null(cp_metrics_gauge_child(fam, no_labels));
    assert_null(cp_metrics_gauge_child(fam, two_vals));
    assert_null(cp_metrics_counter_child(fam, one_val));
    assert_non_null(cp_metrics_gauge_child(fam, one_val));
    assert_int_equal(cp_metrics_child_fn(fam, one_val, answer_42, NULL), CP_ERR_EXISTS);
    const char *const other[] = {"2", NULL};
    assert_int_equal(cp_metrics_child_fn(fam, other, answer_42, NULL), 0);
    assert_null(cp_metrics_gauge_child(fam, other)); /* a callback child is not updatable */

    /* A labeled family without children still renders valid HELP/TYPE only. */
    assert_non_null(cp_metrics_family(reg, CP_METRIC_COUNTER, "callpipe_empty_total", "none",
                                      one, NULL, 0));
    struct prom_doc doc;
    render_parse(reg, &doc, NULL);
    const struct prom_family *empty = prom_find_family(&doc, "callpipe_empty_total");
    assert_non_null(empty);
    assert_int_equal(empty->n_samples, 0);
    const char *const l2[] = {"a", "2", NULL};
    assert_true(value_of(&doc, "callpipe_y", l2) == 42.5);
    prom_doc_free(&doc);
    cp_metrics_destroy(reg);
}

static void test_format_value(void **state)
{
    (void)state;
    char buf[40];
    struct {
        double v;
        const char *s;
    } cases[] = {{0.1, "0.1"},  {1, "1"},          {0, "0"},           {-2.5, "-2.5"},
                 {1e-9, "1e-09"}, {INFINITY, "+Inf"}, {-INFINITY, "-Inf"}, {NAN, "NaN"},
                 {0.30000000000000004, "0.30000000000000004"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cp_metrics_format_value(cases[i].v, buf, sizeof buf);
        assert_string_equal(buf, cases[i].s);
    }
    double b[4];
    cp_metrics_exp_buckets(0.001, 10, 4, b);
    assert_true(b[0] == 0.001 && b[3] > 0.99 && b[3] < 1.01);
    cp_metrics_linear_buckets(5, 5, 3, b);
    assert_true(b[0] == 5 && b[1] == 10 && b[2] == 15);
}

struct hammer {
    struct cp_counter *c;
    struct cp_histogram *h;
    struct cp_gauge *g;
};

#define THREADS 4
#define PER_THREAD 100000

static void *hammer_run(void *arg)
{
    struct hammer *hm = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        cp_counter_inc(hm->c);
        cp_histogram_observe(hm->h, (double)(i % 4)); /* 0,1,2,3 */
        cp_gauge_add(hm->g, 1.0);
    }
    return NULL;
}

/* Several loop threads update the same children: no lost updates, and scrapes stay consistent. */
static void test_concurrent_updates(void **state)
{
    (void)state;
    struct cp_metrics *reg = cp_metrics_create();
    const double bounds[] = {0.5, 1.5, 2.5};
    struct hammer hm = {
        cp_metrics_counter(reg, "callpipe_hits_total", "hits"),
        cp_metrics_histogram(reg, "callpipe_work_seconds", "work", bounds, 3),
        cp_metrics_gauge(reg, "callpipe_level", "level"),
    };
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer_run, &hm), 0);
    /* Scrape while they run: every render must validate (+Inf == _count). */
    for (int i = 0; i < 50; i++) {
        struct prom_doc doc;
        render_parse(reg, &doc, NULL);
        prom_doc_free(&doc);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(cp_counter_get(hm.c), THREADS * PER_THREAD);
    assert_int_equal(cp_histogram_count(hm.h), THREADS * PER_THREAD);
    assert_true(cp_histogram_sum(hm.h) == (double)THREADS * (PER_THREAD / 4) * 6);
    assert_true(cp_gauge_get(hm.g) == (double)THREADS * PER_THREAD);
    struct prom_doc doc;
    render_parse(reg, &doc, NULL);
    const char *const le1[] = {"le", "0.5", NULL};
    assert_true(value_of(&doc, "callpipe_work_seconds_bucket", le1) == THREADS * PER_THREAD / 4);
    prom_doc_free(&doc);
    cp_metrics_destroy(reg);
}

/* Optional second opinion: Debian's prometheus package ships promtool (96 MB; not a dependency). */
static void test_promtool_if_available(void **state)
{
    (void)state;
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        skip();
        return;
    }
    struct cp_metrics *reg = cp_metrics_create();
    const char *const l[] = {"queue", NULL};
    const char *const v[] = {"a\"b\\c\nd", NULL};
    struct cp_metric_family *f =
        cp_metrics_family(reg, CP_METRIC_COUNTER, "callpipe_x_total", "X.", l, NULL, 0);
    cp_counter_inc(cp_metrics_counter_child(f, v));
    const double b[] = {1, 2};
    cp_histogram_observe(cp_metrics_histogram(reg, "callpipe_y_seconds", "Y.", b, 2), 1.5);
    size_t len;
    char *text = cp_metrics_render(reg, &len);
    FILE *p = popen("promtool check metrics", "w");
    assert_non_null(p);
    fwrite(text, 1, len, p);
    assert_int_equal(pclose(p), 0);
    free(text);
    cp_metrics_destroy(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_full_registry),
        cmocka_unit_test(test_parser_rejects_bad_text),
        cmocka_unit_test(test_registration_rules),
        cmocka_unit_test(test_format_value),
        cmocka_unit_test(test_concurrent_updates),
        cmocka_unit_test(test_promtool_if_available),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
