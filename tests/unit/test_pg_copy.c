/* test_pg_copy.c - COPY text-format encoder and SQLSTATE classification (pure, no server). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cp_err.h"
#include "cp_pg.h"

/* Escapes a NUL-terminated string and compares with the expected COPY text. */
static void check_escape(const char *in, const char *want)
{
    size_t len = strlen(in);
    char *out = malloc(2 * len + 1);
    assert_non_null(out);
    long n = cp_pg_copy_escape(in, len, out);
    assert_int_equal(n, (long)strlen(want));
    out[n] = '\0';
    assert_string_equal(out, want);
    free(out);
}

static void escape_plain_text_unchanged(void **state)
{
    (void)state;
    check_escape("", "");
    check_escape("queue-1 sales", "queue-1 sales");
    /* UTF-8 passes byte for byte; the server checks the encoding. */
    check_escape("M\xc3\xbcller \xe2\x82\xac", "M\xc3\xbcller \xe2\x82\xac");
    /* Other control characters need no escape in text format. */
    check_escape("a\bb\fc\vd", "a\bb\fc\vd");
}

static void escape_specials(void **state)
{
    (void)state;
    check_escape("\t", "\\t");
    check_escape("\n", "\\n");
    check_escape("\r", "\\r");
    check_escape("\\", "\\\\");
    check_escape("a\tb\nc\\d\re", "a\\tb\\nc\\\\d\\re");
    /* The two-character string \N must not read back as NULL, nor \. as end of data. */
    check_escape("\\N", "\\\\N");
    check_escape("\\.", "\\\\.");
    check_escape("C:\\calls\\2024\n", "C:\\\\calls\\\\2024\\n");
}

static void escape_rejects_nul(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(cp_pg_copy_escape("ab\0cd", 5, out), CP_ERR_INVAL);
    assert_int_equal(cp_pg_copy_escape("\0", 1, out), CP_ERR_INVAL);
}

static void row_fields_and_nulls(void **state)
{
    (void)state;
    struct cp_pg_copybuf b;
    cp_pg_copybuf_init(&b);
    assert_int_equal(cp_pg_copybuf_field_str(&b, "grp"), 0);
    assert_int_equal(cp_pg_copybuf_field_str(&b, NULL), 0);
    assert_int_equal(cp_pg_copybuf_field_str(&b, ""), 0); /* empty string is not NULL */
    assert_int_equal(cp_pg_copybuf_field_i64(&b, -42), 0);
    assert_int_equal(cp_pg_copybuf_end_row(&b), 0);
    assert_int_equal(cp_pg_copybuf_field(&b, "x\ty", 3), 0);
    assert_int_equal(cp_pg_copybuf_field_i64(&b, INT64_MIN), 0);
    assert_int_equal(cp_pg_copybuf_end_row(&b), 0);
    const char *want = "grp\t\\N\t\t-42\n"
                       "x\\ty\t-9223372036854775808\n";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    assert_int_equal(b.row_fields, 0);
    cp_pg_copybuf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}

/* bytea fields are hex (\\x in COPY text, \x to the server) for every byte, NUL and specials too,
 * and equal to the generic escape of the same hex string. */
static void row_bytea_hex(void **state)
{
    (void)state;
    struct cp_pg_copybuf b;
    cp_pg_copybuf_init(&b);
    const unsigned char bytes[] = {0x00, 0x09, 0x0a, 0x5c, 0xff, 0x7f, 0x80, 0x0d};
    assert_int_equal(cp_pg_copybuf_field_str(&b, "k"), 0);
    assert_int_equal(cp_pg_copybuf_field_bytea(&b, bytes, sizeof bytes), 0);
    assert_int_equal(cp_pg_copybuf_field_bytea(&b, "", 0), 0); /* empty, not NULL */
    assert_int_equal(cp_pg_copybuf_end_row(&b), 0);
    assert_int_equal(cp_pg_copybuf_field_bytea(&b, "A", 1), 0); /* first field: no tab */
    assert_int_equal(cp_pg_copybuf_end_row(&b), 0);
    const char *want = "k\t\\\\x00090a5cff7f800d\t\\\\x\n"
                       "\\\\x41\n";
    assert_int_equal(b.len, strlen(want));
    assert_string_equal(b.data, want);

    /* The same bytes through the generic path: a "\x..." string escaped. */
    struct cp_pg_copybuf g;
    cp_pg_copybuf_init(&g);
    assert_int_equal(cp_pg_copybuf_field_str(&g, "k"), 0);
    assert_int_equal(cp_pg_copybuf_field_str(&g, "\\x00090a5cff7f800d"), 0);
    assert_int_equal(cp_pg_copybuf_field_str(&g, "\\x"), 0);
    assert_int_equal(cp_pg_copybuf_end_row(&g), 0);
    assert_int_equal(cp_pg_copybuf_field_str(&g, "\\x41"), 0);
    assert_int_equal(cp_pg_copybuf_end_row(&g), 0);
    assert_string_equal(g.data, b.data);
    cp_pg_copybuf_free(&g);
    cp_pg_copybuf_free(&b);
}

/* A large bytea grows the buffer in one step and keeps every byte. */
static void row_bytea_large(void **state)
{
    (void)state;
    struct cp_pg_copybuf b;
    cp_pg_copybuf_init(&b);
    size_t n = 100000;
    unsigned char *in = malloc(n);
    assert_non_null(in);
    for (size_t i = 0; i < n; i++)
        in[i] = (unsigned char)(i * 7);
    assert_int_equal(cp_pg_copybuf_field_bytea(&b, in, n), 0);
    assert_int_equal(b.len, 3 + 2 * n);
    assert_int_equal(b.row_fields, 1);
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(b.data[3 + 2 * i], digits[in[i] >> 4]);
        assert_int_equal(b.data[4 + 2 * i], digits[in[i] & 15]);
    }
    assert_int_equal(b.data[b.len], '\0');
    free(in);
    cp_pg_copybuf_free(&b);
}

static void row_single_null_field(void **state)
{
    (void)state;
    struct cp_pg_copybuf b;
    cp_pg_copybuf_init(&b);
    assert_int_equal(cp_pg_copybuf_field(&b, NULL, 0), 0);
    assert_int_equal(cp_pg_copybuf_end_row(&b), 0);
    assert_string_equal(b.data, "\\N\n");
    cp_pg_copybuf_free(&b);
}

static void row_nul_field_leaves_row_intact(void **state)
{
    (void)state;
    struct cp_pg_copybuf b;
    cp_pg_copybuf_init(&b);
    assert_int_equal(cp_pg_copybuf_field_str(&b, "ok"), 0);
    assert_int_equal(cp_pg_copybuf_field(&b, "bad\0byte", 8), CP_ERR_INVAL);
    assert_int_equal(b.len, 2);
    assert_int_equal(b.row_fields, 1);
    assert_int_equal(cp_pg_copybuf_field_str(&b, "next"), 0);
    assert_int_equal(cp_pg_copybuf_end_row(&b), 0);
    assert_string_equal(b.data, "ok\tnext\n");
    cp_pg_copybuf_free(&b);
}

static void row_grows_for_large_fields(void **state)
{
    (void)state;
    size_t n = 100000;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, '\\', n);
    struct cp_pg_copybuf b;
    cp_pg_copybuf_init(&b);
    assert_int_equal(cp_pg_copybuf_field(&b, big, n), 0);
    assert_int_equal(cp_pg_copybuf_field_str(&b, "end"), 0);
    assert_int_equal(cp_pg_copybuf_end_row(&b), 0);
    assert_int_equal(b.len, 2 * n + 5);
    for (size_t i = 0; i < 2 * n; i++)
        if (b.data[i] != '\\')
            fail_msg("byte %zu is 0x%02x, not a backslash", i, (unsigned char)b.data[i]);
    assert_memory_equal(b.data + 2 * n, "\tend\n", 5);
    cp_pg_copybuf_free(&b);
    free(big);
}

static void sqlstate_classes(void **state)
{
    (void)state;
    /* reconnect, then replay */
    assert_int_equal(cp_pg_classify_sqlstate("08006"), CP_ERR_CONN);
    assert_int_equal(cp_pg_classify_sqlstate("08001"), CP_ERR_CONN);
    assert_int_equal(cp_pg_classify_sqlstate("57P01"), CP_ERR_CONN); /* admin_shutdown */
    assert_int_equal(cp_pg_classify_sqlstate("57P02"), CP_ERR_CONN); /* crash_shutdown */
    assert_int_equal(cp_pg_classify_sqlstate("57P03"), CP_ERR_CONN); /* cannot_connect_now */
    assert_int_equal(cp_pg_classify_sqlstate(NULL), CP_ERR_CONN);
    assert_int_equal(cp_pg_classify_sqlstate(""), CP_ERR_CONN);
    /* replay on the same connection */
    assert_int_equal(cp_pg_classify_sqlstate("40001"), CP_ERR_AGAIN);
    assert_int_equal(cp_pg_classify_sqlstate("40P01"), CP_ERR_AGAIN);
    assert_int_equal(cp_pg_classify_sqlstate("55P03"), CP_ERR_AGAIN);
    assert_int_equal(cp_pg_classify_sqlstate("57014"), CP_ERR_TIMEOUT);
    assert_int_equal(cp_pg_classify_sqlstate("53300"), CP_ERR_PG);
    /* the data is wrong: never retried */
    assert_int_equal(cp_pg_classify_sqlstate("22P02"), CP_ERR_PG_DATA);
    assert_int_equal(cp_pg_classify_sqlstate("22021"), CP_ERR_PG_DATA);
    assert_int_equal(cp_pg_classify_sqlstate("23505"), CP_ERR_PG_DATA);
    assert_int_equal(cp_pg_classify_sqlstate("23514"), CP_ERR_PG_DATA);
    assert_int_equal(cp_pg_classify_sqlstate("28P01"), CP_ERR_AUTH);
    assert_int_equal(cp_pg_classify_sqlstate("42501"), CP_ERR_AUTH);
    assert_int_equal(cp_pg_classify_sqlstate("42601"), CP_ERR_PG_SQL); /* syntax error */
    assert_int_equal(cp_pg_classify_sqlstate("42P01"), CP_ERR_PG_SQL); /* undefined table */
    assert_int_equal(cp_pg_classify_sqlstate("XX000"), CP_ERR_INTERNAL);

    assert_true(cp_err_is_retriable(cp_pg_classify_sqlstate("40001")));
    assert_true(cp_err_is_retriable(cp_pg_classify_sqlstate("57P01")));
    assert_true(cp_err_is_retriable(cp_pg_classify_sqlstate("08006")));
    assert_false(cp_err_is_retriable(cp_pg_classify_sqlstate("22001")));
    assert_false(cp_err_is_retriable(cp_pg_classify_sqlstate("23503")));
    assert_false(cp_err_is_retriable(cp_pg_classify_sqlstate("42601")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(escape_plain_text_unchanged),
        cmocka_unit_test(escape_specials),
        cmocka_unit_test(escape_rejects_nul),
        cmocka_unit_test(row_fields_and_nulls),
        cmocka_unit_test(row_single_null_field),
        cmocka_unit_test(row_bytea_hex),
        cmocka_unit_test(row_bytea_large),
        cmocka_unit_test(row_nul_field_leaves_row_intact),
        cmocka_unit_test(row_grows_for_large_fields),
        cmocka_unit_test(sqlstate_classes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
