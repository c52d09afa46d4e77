/* test_loader.c - the loader's pure parts: CSV writer and parser, JWT, transforms, reconciliation, splitting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "loader.h"

/* ---- CSV writer ---- */

static void test_csv_quoting(void **state)
{
    (void)state;
    struct ld_buf b = {0};
    assert_int_equal(ld_csv_field(&b, "plain", true), 0);
    assert_int_equal(ld_csv_field(&b, "a,b", false), 0);
    assert_int_equal(ld_csv_field(&b, "say \"hi\"", false), 0);
    assert_int_equal(ld_csv_field(&b, "two\r\nlines\rthree\nfour", false), 0);
    assert_int_equal(ld_csv_field(&b, "", false), 0);
    assert_int_equal(ld_csv_field(&b, NULL, false), 0);
    assert_int_equal(ld_csv_field(&b, " spaced ", false), 0);
    assert_int_equal(ld_csv_end_row(&b), 0);
    assert_string_equal(b.data, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\nthree\nfour\",,#N/A,"
                                " spaced \n");
    ld_buf_free(&b);
}

static void test_csv_utf8(void **state)
{
    (void)state;
    struct ld_buf b = {0};
    /* UTF-8 passes through byte for byte, no BOM is ever written */
    assert_int_equal(ld_csv_field(&b, "Jürgen Müller, Zürich", true), 0);
    assert_int_equal(ld_csv_field(&b, "日本", false), 0);
    assert_string_equal(b.data, "\"Jürgen Müller, Zürich\",日本");
    assert_int_not_equal((unsigned char)b.data[0], 0xEF);
    size_t before = b.len;
    assert_int_equal(ld_csv_field(&b, "bad \xff byte", false), CP_ERR_UTF8);
    assert_int_equal(b.len, before);
    assert_int_equal(ld_csv_field(&b, "\xc3", false), CP_ERR_UTF8);
    ld_buf_free(&b);
}

/* ---- results parser ---- */

static void test_csv_parse_results(void **state)
{
    (void)state;
    struct cp_arena a;
    cp_arena_init(&a, 4096, 0);
    const char *csv = "\"sf__Id\",\"sf__Created\",Key__c,Description\r\n"
                      "\"0LQ000000000001AAA\",\"true\",\"k1\",\"line one\nline two\"\r\n"
                      "\"0LQ000000000002AAA\",\"false\",\"k2\",\"he said \"\"no\"\", twice\"\r\n"
                      "\"0LQ000000000003AAA\",\"true\",\"k3\",\r\n";
    struct ld_table t;
    assert_int_equal(ld_csv_parse(csv, strlen(csv), &a, &t), 0);
    assert_int_equal(t.ncols, 4);
    assert_int_equal(t.nrows, 3);
    assert_string_equal(t.header[0], "sf__Id");
    assert_string_equal(t.header[2], "Key__c");
    assert_int_equal(ld_table_col(&t, "Description"), 3);
    assert_int_equal(ld_table_col(&t, "description"), -1);
    assert_string_equal(ld_table_cell(&t, 0, 3), "line one\nline two");
    assert_string_equal(ld_table_cell(&t, 1, 1), "false");
    assert_string_equal(ld_table_cell(&t, 1, 3), "he said \"no\", twice");
    assert_string_equal(ld_table_cell(&t, 2, 3), "");
    assert_string_equal(ld_table_cell(&t, 2, 0), "0LQ000000000003AAA");

    /* header only (empty result), LF endings, no final newline */
    const char *empty = "\"sf__Id\",\"sf__Error\",Id,Phone";
    assert_int_equal(ld_csv_parse(empty, strlen(empty), &a, &t), 0);
    assert_int_equal(t.ncols, 4);
    assert_int_equal(t.nrows, 0);
    /* empty body (204 No Content) */
    assert_int_equal(ld_csv_parse("", 0, &a, &t), 0);
    assert_int_equal(t.ncols, 0);
    assert_int_equal(t.nrows, 0);
    /* ragged rows, unterminated quote and stray quotes are errors */
    assert_int_equal(ld_csv_parse("a,b\n1\n", 6, &a, &t), CP_ERR_PARSE);
    assert_int_equal(ld_csv_parse("a\n\"open\n", 8, &a, &t), CP_ERR_PARSE);
    assert_int_equal(ld_csv_parse("a\n\"x\"y\n", 7, &a, &t), CP_ERR_PARSE);
    assert_int_equal(ld_csv_parse("a\nx\"y\n", 6, &a, &t), CP_ERR_PARSE);
    cp_arena_destroy(&a);
}

static void test_csv_roundtrip(void **state)
{
    (void)state;
    const char *vals[] = {"x", "a,b", "q\"q", "nl\nnl", "", "ü"};
    struct ld_buf b = {0};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(ld_csv_field(&b, i == 0 ? "h" : "h", i == 0), 0);
    ld_csv_end_row(&b);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(ld_csv_field(&b, vals[i], i == 0), 0);
    ld_csv_end_row(&b);
    struct cp_arena a;
    cp_arena_init(&a, 4096, 0);
    struct ld_table t;
    assert_int_equal(ld_csv_parse(b.data, b.len, &a, &t), 0);
    assert_int_equal(t.nrows, 1);
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(ld_table_cell(&t, 0, i), vals[i]);
    cp_arena_destroy(&a);
    ld_buf_free(&b);
}

/* ---- JWT ---- */

static size_t b64url_decode(const char *in, size_t n, unsigned char *out)
{
    char tmp[4096] = {0};
    size_t j = 0;
    for (size_t i = 0; i < n; i++)
        tmp[j++] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
    while (j % 4)
        tmp[j++] = '=';
    int len = EVP_DecodeBlock(out, (const unsigned char *)tmp, (int)j);
    assert_true(len >= 0);
    size_t pad = 0;
    for (size_t i = j; i > 0 && tmp[i - 1] == '='; i--)
        pad++;
    return (size_t)len - pad;
}

static void test_b64url(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(ld_b64url((const unsigned char *)"\xfb\xff", 2, out), 3);
    assert_string_equal(out, "-_8");
    assert_int_equal(ld_b64url((const unsigned char *)"abc", 3, out), 4);
    assert_string_equal(out, "YWJj");
    assert_int_equal(ld_b64url((const unsigned char *)"a", 1, out), 2);
    assert_string_equal(out, "YQ");
}

static void test_jwt(void **state)
{
    (void)state;
    EVP_PKEY *key = EVP_RSA_gen(2048);
    assert_non_null(key);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL), 1);
    char *pem = NULL;
    long pem_len = BIO_get_mem_data(bio, &pem);

    char *jwt = NULL;
    assert_int_equal(ld_jwt_build(pem, (size_t)pem_len, "3MVG9consumer", "int@example.com",
                                  "https://login.salesforce.com", 1700000000, &jwt),
                     0);
    char *dot1 = strchr(jwt, '.');
    char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    assert_non_null(dot2);
    assert_null(strchr(dot2 + 1, '.'));
    assert_null(strpbrk(jwt, "+/="));

    unsigned char buf[1024];
    size_t n = b64url_decode(jwt, (size_t)(dot1 - jwt), buf);
    buf[n] = 0;
    assert_string_equal((char *)buf, "{\"alg\":\"RS256\"}");
    n = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), buf);
    buf[n] = 0;
    assert_string_equal((char *)buf, "{\"iss\":\"3MVG9consumer\",\"sub\":\"int@example.com\","
                                     "\"aud\":\"https://login.salesforce.com\",\"exp\":1700000180}");

    unsigned char sig[512];
    size_t sig_len = b64url_decode(dot2 + 1, strlen(dot2 + 1), sig);
    assert_int_equal(sig_len, 256);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key), 1);
    assert_int_equal(EVP_DigestVerify(md, sig, sig_len, (unsigned char *)jwt,
                                      (size_t)(dot2 - jwt)),
                     1);
    /* a changed claim no longer verifies */
    jwt[dot1 - jwt + 3] ^= 1;
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key), 1);
    assert_int_not_equal(EVP_DigestVerify(md, sig, sig_len, (unsigned char *)jwt,
                                          (size_t)(dot2 - jwt)),
                         1);
    EVP_MD_CTX_free(md);
    free(jwt);

    /* garbage key: CP_ERR_SECRET, nothing built */
    jwt = (char *)1;
    assert_int_equal(ld_jwt_build("not a key", 9, "i", "s", "a", 0, &jwt), CP_ERR_SECRET);
    assert_null(jwt);
    BIO_free(bio);
    EVP_PKEY_free(key);
}

/* ---- transforms ---- */

static void check_e164(const char *in, const char *cc, const char *want)
{
    char out[64];
    assert_int_equal(ld_e164(in, cc, out, sizeof out), 0);
    assert_string_equal(out, want);
}

static void test_e164(void **state)
{
    (void)state;
    check_e164("+1 (555) 010-2000", NULL, "+15550102000");
    check_e164("0049 30 1234567", NULL, "+49301234567");
    check_e164("030 1234567", "49", "+49301234567");
    check_e164("5550102000", "1", "+15550102000");
    check_e164("15550102000", "1", "+15550102000");
    check_e164("sip:+442071234567@pbx.example.com", NULL, "+442071234567");
    check_e164("tel:+33-1-23-45-67-89", NULL, "+33123456789");
    check_e164("2001", "49", "2001");          /* extension */
    check_e164("5550102000", NULL, "5550102000"); /* national without a country: kept */
    check_e164("anonymous", "1", "anonymous");
    check_e164("sip:alice@pbx", NULL, "sip:alice@pbx");
    check_e164("+1234", NULL, "+1234");          /* too short to be E.164: kept as is */
    check_e164("+1234567890123456", NULL, "+1234567890123456"); /* 16 digits: kept */
}

static void test_picklist(void **state)
{
    (void)state;
    const char *map = "inbound=Inbound,outbound=Outbound,internal=InternalCall";
    char buf[64];
    assert_string_equal(ld_picklist(map, "outbound", buf, sizeof buf), "Outbound");
    assert_string_equal(ld_picklist(map, "internal", buf, sizeof buf), "InternalCall");
    assert_null(ld_picklist(map, "inbou", buf, sizeof buf));
    assert_null(ld_picklist(map, "other", buf, sizeof buf));
    assert_string_equal(ld_picklist("answered=completed,*=failed", "busy", buf, sizeof buf),
                        "failed");
    assert_int_equal(ld_picklist_check(map), 0);
    assert_int_equal(ld_picklist_check("a=A,,b"), CP_ERR_PARSE);
    assert_int_equal(ld_picklist_check("=A"), CP_ERR_PARSE);
    assert_int_equal(ld_picklist_check(""), CP_ERR_PARSE);
}

static void test_xform_apply(void **state)
{
    (void)state;
    char buf[128];
    const char *out;
    struct ld_field_cfg f = {.field = "CallStartDateTime", .transform = LD_X_DATETIME};
    assert_int_equal(ld_xform_apply(&f, "1764064800123456", buf, sizeof buf, &out), 0);
    assert_string_equal(out, "2025-11-25T10:00:00.123Z");
    f.transform = LD_X_DATE;
    assert_int_equal(ld_xform_apply(&f, "1764064800123456", buf, sizeof buf, &out), 0);
    assert_string_equal(out, "2025-11-25");
    assert_int_equal(ld_xform_apply(&f, NULL, buf, sizeof buf, &out), 0);
    assert_null(out); /* explicit null -> #N/A */
    assert_int_equal(ld_xform_apply(&f, "12x", buf, sizeof buf, &out), CP_ERR_PARSE);

    f.transform = LD_X_SECONDS;
    assert_int_equal(ld_xform_apply(&f, "61499", buf, sizeof buf, &out), 0);
    assert_string_equal(out, "61");
    assert_int_equal(ld_xform_apply(&f, "61500", buf, sizeof buf, &out), 0);
    assert_string_equal(out, "62");
    assert_int_equal(ld_xform_apply(&f, "0", buf, sizeof buf, &out), 0);
    assert_string_equal(out, "0");

    f.transform = LD_X_CONSTANT;
    f.value = "04v000000000001AAA";
    assert_int_equal(ld_xform_apply(&f, NULL, buf, sizeof buf, &out), 0);
    assert_string_equal(out, "04v000000000001AAA");

    f.transform = LD_X_PICKLIST;
    f.map = "answered=completed,no_answer=failed";
    assert_int_equal(ld_xform_apply(&f, "no_answer", buf, sizeof buf, &out), 0);
    assert_string_equal(out, "failed");
    /* default: only for an unknown (NULL) value, sent as configured */
    f.dflt = "Inbound";
    assert_int_equal(ld_xform_apply(&f, NULL, buf, sizeof buf, &out), 0);
    assert_string_equal(out, "Inbound");
    assert_int_equal(ld_xform_apply(&f, "answered", buf, sizeof buf, &out), 0);
    assert_string_equal(out, "completed");
    f.dflt = NULL;
    assert_int_equal(ld_xform_apply(&f, NULL, buf, sizeof buf, &out), 0);
    assert_null(out);
    assert_int_equal(ld_xform_apply(&f, "busy", buf, sizeof buf, &out), 0);
    assert_null(out);

    f.transform = LD_X_TEXT;
    f.max_length = 5;
    assert_int_equal(ld_xform_apply(&f, "abcdü", buf, sizeof buf, &out), 0);
    assert_string_equal(out, "abcd"); /* ü would straddle the limit */
    f.max_length = 0;

    f.transform = LD_X_E164;
    f.country = "44";
    assert_int_equal(ld_xform_apply(&f, "020 7123 4567", buf, sizeof buf, &out), 0);
    assert_string_equal(out, "+442071234567");

    char key[128];
    assert_int_equal(ld_row_key("acme", "eu-1", "c-42", "1764064800123456", key, sizeof key),
                     31);
    assert_string_equal(key, "acme|eu-1|c-42|1764064800123456");
    char longid[200];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = 0;
    assert_int_equal(ld_row_key("acme", "eu-1", longid, "1", key, sizeof key), 71);
    assert_memory_equal(key, "sha256:", 7);
    char key2[128];
    assert_int_equal(ld_row_key("acme", "eu-1", longid, "1", key2, sizeof key2), 71);
    assert_string_equal(key, key2);
}

/* ---- reconciliation ---- */

static void test_classify(void **state)
{
    (void)state;
    assert_int_equal(ld_classify_error("UNABLE_TO_LOCK_ROW:unable to obtain exclusive access "
                                       "to this record or 1 records: 001xx:--"),
                     LD_RETRY);
    assert_int_equal(ld_classify_error("REQUIRED_FIELD_MISSING:Required fields are missing: "
                                       "[CallType]:CallType --"),
                     LD_DEAD);
    assert_int_equal(ld_classify_error("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:bad value:--"),
                     LD_DEAD);
    assert_int_equal(ld_classify_error("UNABLE_TO_LOCK_ROWS:x"), LD_DEAD);
    assert_int_equal(ld_classify_error("SERVER_UNAVAILABLE:try later:--"), LD_RETRY);
    assert_int_equal(ld_classify_error(""), LD_DEAD);
    assert_int_equal(ld_classify_error(NULL), LD_DEAD);
}

static void test_reconcile(void **state)
{
    (void)state;
    struct cp_arena a;
    cp_arena_init(&a, 4096, 0);
    const char *succ_csv = "\"sf__Id\",\"sf__Created\",K__c,CallType\n"
                           "\"0LQ1\",\"true\",\"k3\",\"Inbound\"\n"
                           "\"0LQ2\",\"true\",\"k1\",\"Outbound\"\n"
                           "\"0LQ9\",\"true\",\"stranger\",\"Inbound\"\n";
    const char *fail_csv = "\"sf__Id\",\"sf__Error\",K__c,CallType\n"
                           "\"\",\"UNABLE_TO_LOCK_ROW:unable to obtain exclusive access:--\",\"k2\","
                           "\"Inbound\"\n"
                           "\"\",\"FIELD_CUSTOM_VALIDATION_EXCEPTION:Bad, really: bad:--\",\"k4\","
                           "\"Inbound\"\n";
    const char *unproc_csv = "K__c,CallType\n\"k5\",\"Inbound\"\n";
    struct ld_table succ, fail, unproc;
    assert_int_equal(ld_csv_parse(succ_csv, strlen(succ_csv), &a, &succ), 0);
    assert_int_equal(ld_csv_parse(fail_csv, strlen(fail_csv), &a, &fail), 0);
    assert_int_equal(ld_csv_parse(unproc_csv, strlen(unproc_csv), &a, &unproc), 0);
    struct ld_job_row rows[6];
    static const char *const keys[6] = {"k1", "k2", "k3", "k4", "k5", "k6"};
    for (int i = 0; i < 6; i++)
        rows[i] = (struct ld_job_row){.outbox_id = i + 1, .key = keys[i]};
    size_t unknown = 99;
    assert_int_equal(ld_reconcile(rows, 6, "K__c", false, &succ, &fail, &unproc, &unknown), 0);
    assert_int_equal(unknown, 1);
    assert_int_equal(rows[0].outcome, LD_DONE);
    assert_string_equal(rows[0].sf_id, "0LQ2");
    assert_int_equal(rows[1].outcome, LD_RETRY);
    assert_int_equal(rows[2].outcome, LD_DONE);
    assert_string_equal(rows[2].sf_id, "0LQ1");
    assert_int_equal(rows[3].outcome, LD_DEAD);
    assert_string_equal(rows[3].error, "FIELD_CUSTOM_VALIDATION_EXCEPTION:Bad, really: bad:--");
    assert_int_equal(rows[4].outcome, LD_RETRY);
    assert_int_equal(rows[5].outcome, LD_DEAD); /* no result at all; insert must not repeat */

    /* the same with upsert: a row without result is safe to send again */
    assert_int_equal(ld_reconcile(rows, 6, "K__c", true, &succ, &fail, &unproc, &unknown), 0);
    assert_int_equal(rows[5].outcome, LD_RETRY);
    assert_int_equal(rows[0].outcome, LD_DONE);

    /* key column missing from a non-empty result set */
    assert_int_equal(ld_reconcile(rows, 6, "Other__c", false, &succ, NULL, NULL, &unknown),
                     CP_ERR_PARSE);
    /* empty result sets are fine */
    struct ld_table empty = {0};
    assert_int_equal(ld_reconcile(rows, 2, "K__c", true, &empty, &empty, &empty, &unknown), 0);
    assert_int_equal(rows[0].outcome, LD_RETRY);
    cp_arena_destroy(&a);
}

/* ---- splitting ---- */

static void test_split(void **state)
{
    (void)state;
    size_t sizes[7] = {10, 10, 10, 10, 10, 10, 10};
    size_t ends[8];
    /* by records */
    assert_int_equal(ld_split(sizes, 7, 5, 3, 1000, ends, 8), 3);
    assert_int_equal(ends[0], 3);
    assert_int_equal(ends[1], 6);
    assert_int_equal(ends[2], 7);
    /* by bytes: header 5 + 2 rows = 25 <= 25, a third would be 35 */
    assert_int_equal(ld_split(sizes, 7, 5, 100, 25, ends, 8), 4);
    assert_int_equal(ends[0], 2);
    assert_int_equal(ends[3], 7);
    /* exactly at the limit stays in */
    assert_int_equal(ld_split(sizes, 7, 0, 100, 70, ends, 8), 1);
    assert_int_equal(ends[0], 7);
    /* a row too big for any job */
    size_t big[2] = {10, 100};
    assert_int_equal(ld_split(big, 2, 5, 100, 50, ends, 8), CP_ERR_TOOBIG);
    assert_int_equal(ld_split(sizes, 0, 5, 3, 100, ends, 8), 0);
    assert_int_equal(ld_split(sizes, 7, 5, 1, 100, ends, 3), CP_ERR_FULL);
}

static void test_limit_info(void **state)
{
    (void)state;
    int64_t u = 0, m = 0;
    assert_int_equal(ld_parse_limit_info("api-usage=18/15000", &u, &m), 0);
    assert_int_equal(u, 18);
    assert_int_equal(m, 15000);
    assert_int_equal(ld_parse_limit_info("per-app-api-usage=2/500(appName=x); api-usage=77/5000",
                                         &u, &m),
                     0);
    assert_int_equal(u, 77);
    assert_int_equal(m, 5000);
    assert_int_equal(ld_parse_limit_info("per-app-api-usage=2/500(appName=x)", &u, &m),
                     CP_ERR_PARSE);
    assert_int_equal(ld_parse_limit_info("api-usage=x/1", &u, &m), CP_ERR_PARSE);
    assert_int_equal(ld_parse_limit_info(NULL, &u, &m), CP_ERR_PARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_quoting),  cmocka_unit_test(test_csv_utf8),
        cmocka_unit_test(test_csv_parse_results), cmocka_unit_test(test_csv_roundtrip),
        cmocka_unit_test(test_b64url),       cmocka_unit_test(test_jwt),
        cmocka_unit_test(test_e164),         cmocka_unit_test(test_picklist),
        cmocka_unit_test(test_xform_apply),  cmocka_unit_test(test_classify),
        cmocka_unit_test(test_reconcile),    cmocka_unit_test(test_split),
        cmocka_unit_test(test_limit_info),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
