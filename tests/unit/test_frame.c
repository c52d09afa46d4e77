/* test_frame.c - the stream framer: lines, CRLF, octet counting, oversize resync, split reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cp_frame.h"

/* Collects everything the framer reports as one text transcript. */
struct sink {
    char out[1 << 16];
    size_t len;
};

static void put(struct sink *s, const char *tag, const char *p, size_t n, uint64_t extra)
{
    s->len += (size_t)snprintf(s->out + s->len, sizeof s->out - s->len, "%s[%.*s]", tag, (int)n, p);
    if (extra)
        s->len += (size_t)snprintf(s->out + s->len, sizeof s->out - s->len, "%llu",
                                   (unsigned long long)extra);
    s->len += (size_t)snprintf(s->out + s->len, sizeof s->out - s->len, "\n");
}
static void on_rec(void *u, const char *p, size_t n)
{
    put(u, "R", p, n, 0);
}
static void on_over(void *u, const char *p, size_t n, uint64_t total)
{
    put(u, "O", p, n, total);
}
static void on_bad(void *u, const char *reason, const char *p, size_t n)
{
    put(u, "B", reason, strlen(reason), 0);
}

/* Runs input through a framer in chunks of `chunk` bytes (0 = all at once). */
static const char *frame(enum cp_frame_mode mode, size_t max, const char *in, size_t len,
                         size_t chunk, struct sink *s)
{
    struct cp_framer f;
    struct cp_frame_cb cb = {on_rec, on_over, on_bad, s};
    s->len = 0;
    s->out[0] = 0;
    assert_int_equal(cp_framer_init(&f, mode, max, 8), 0);
    if (chunk == 0)
        chunk = len ? len : 1;
    for (size_t i = 0; i < len; i += chunk)
        cp_framer_feed(&f, in + i, len - i < chunk ? len - i : chunk, &cb);
    cp_framer_finish(&f, &cb);
    cp_framer_close(&f);
    return s->out;
}

/* The same transcript whatever the read sizes: the property every framer must have. */
static void check_all_splits(enum cp_frame_mode mode, size_t max, const char *in,
                             const char *expect)
{
    static struct sink s;
    size_t len = strlen(in);
    for (size_t chunk = 0; chunk <= len; chunk++)
        assert_string_equal(frame(mode, max, in, len, chunk, &s), expect);
}

static void test_lines(void **state)
{
    check_all_splits(CP_FRAME_MODE_LINES, 64, "a\nbb\r\n\nccc", "R[a]\nR[bb]\nR[ccc]\n");
}

static void test_auto_lines(void **state)
{
    check_all_splits(CP_FRAME_MODE_AUTO, 64, "{\"a\":1}\n<13>x\n", "R[{\"a\":1}]\nR[<13>x]\n");
}

static void test_octet(void **state)
{
    /* RFC 6587 octet counting, frames may contain LF. */
    check_all_splits(CP_FRAME_MODE_AUTO, 64, "5 hello3 a\nb11 <13>x y z w",
                     "R[hello]\nR[a\nb]\nR[<13>x y z w]\n");
}

static void test_auto_lines_starting_with_digits(void **state)
{
    /* SMDR lines start with a date, queue_log lines with an epoch: auto detection must
     * not take them for octet counts (found by the vendor tests: every line was a
     * dead letter). */
    check_all_splits(CP_FRAME_MODE_AUTO, 128, "2024/05/01 09:00:05,00:00:10\n2024/05/01 10:00:00,x\n",
                     "R[2024/05/01 09:00:05,00:00:10]\nR[2024/05/01 10:00:00,x]\n");
    check_all_splits(CP_FRAME_MODE_AUTO, 128, "1714557600|1714557600.1|q1|NONE|ENTERQUEUE||123\n",
                     "R[1714557600|1714557600.1|q1|NONE|ENTERQUEUE||123]\n");
    check_all_splits(CP_FRAME_MODE_AUTO, 128, "7,a\n", "R[7,a]\n");
}

static void test_oversize_line_resyncs(void **state)
{
    /* 20 bytes against a 10-byte limit: the head (8 bytes) is reported with the
     * full length, and the next line arrives intact. */
    check_all_splits(CP_FRAME_MODE_LINES, 10, "ok\n0123456789abcdefghij\nnext\n",
                     "R[ok]\nO[01234567]20\nR[next]\n");
}

static void test_oversize_octet(void **state)
{
    check_all_splits(CP_FRAME_MODE_OCTET, 10, "20 0123456789abcdefghij2 ok",
                     "O[01234567]20\nR[ok]\n");
}

static void test_bad_octet_header(void **state)
{
    /* Garbage where a length should be: skipped to the next LF, then frames resume. */
    check_all_splits(CP_FRAME_MODE_OCTET, 64, "2 ok12x garbage\n3 abc",
                     "R[ok]\nB[malformed octet count]\nR[abc]\n");
    check_all_splits(CP_FRAME_MODE_OCTET, 64, "1234567890 x\n2 ok",
                     "B[octet count too long]\nR[ok]\n");
}

static void test_truncated_octet(void **state)
{
    check_all_splits(CP_FRAME_MODE_OCTET, 64, "2 ok9 abc",
                     "R[ok]\nB[stream ended inside an octet-counted frame]\n");
}

static void test_ten_megabyte_line(void **state)
{
    /* Memory stays at max_record whatever the line length. */
    size_t n = 10u << 20;
    char *big = malloc(n + 8);
    memset(big, 'x', n);
    memcpy(big + n, "\nafter\n", 7);
    big[n + 7] = 0;
    static struct sink s;
    struct cp_framer f;
    struct cp_frame_cb cb = {on_rec, on_over, on_bad, &s};
    s.len = 0;
    assert_int_equal(cp_framer_init(&f, CP_FRAME_MODE_AUTO, 65536, 8), 0);
    for (size_t i = 0; i < n + 7; i += 65536) {
        cp_framer_feed(&f, big + i, n + 7 - i < 65536 ? n + 7 - i : 65536, &cb);
        assert_true(cp_framer_buffered(&f) <= 65536);
    }
    cp_framer_finish(&f, &cb);
    cp_framer_close(&f);
    assert_string_equal(s.out, "O[xxxxxxxx]10485760\nR[after]\n");
    assert_int_equal(f.oversized, 1);
    assert_int_equal(f.records, 1);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_auto_lines),
        cmocka_unit_test(test_octet),
        cmocka_unit_test(test_auto_lines_starting_with_digits),
        cmocka_unit_test(test_oversize_line_resyncs),
        cmocka_unit_test(test_oversize_octet),
        cmocka_unit_test(test_bad_octet_header),
        cmocka_unit_test(test_truncated_octet),
        cmocka_unit_test(test_ten_megabyte_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
