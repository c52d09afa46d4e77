/* test_source_twilio.c - twilio-voice/-taskrouter golden cases, dates, X-Twilio-Signature. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cp_err.h"
#include "../lib/golden.h"
#include "../../ingest/sources/twilio/twilio.h"
#include "../../ingest/sources/twilio/twilio_form.h"
#include "../../ingest/sources/twilio/twilio_signature.h"

static void voice_case(void **state)
{
    cp_golden_case(&cp_source_twilio_voice, cp_golden_dir("twilio-voice"), *state,
                   CP_GOLDEN_BLOCKS);
}

static void taskrouter_case(void **state)
{
    cp_golden_case(&cp_source_twilio_taskrouter, cp_golden_dir("twilio-taskrouter"), *state,
                   CP_GOLDEN_BLOCKS);
}

/* ---- X-Twilio-Signature ------------------------------------------------------------------ */

/* Twilio's documented example (auth token 12345, five POST parameters), which
 * `openssl dgst -sha1 -hmac 12345 -binary | openssl base64` reproduces over
 * "https://mycompany.com/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDECaller+12349013030
 *  Digits1234From+12349013030To+18005551212". */
#define DOC_URL "https://mycompany.com/myapp.php?foo=1&bar=2"
#define DOC_BODY                                                                                   \
    "CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030"              \
    "&To=%2B18005551212"

static void signature_doc_vector(void **state)
{
    (void)state;
    char sig[CP_TWILIO_SIG_MAX + 1];
    assert_int_equal(
        cp_twilio_signature("12345", CP_TWILIO_SIG_SHA1, DOC_URL, DOC_BODY, strlen(DOC_BODY), sig),
        28);
    assert_string_equal(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    /* parameter order in the body does not matter: they are sorted */
    const char *shuffled = "To=%2B18005551212&From=%2B12349013030&Digits=1234"
                           "&Caller=%2B12349013030&CallSid=CA1234567890ABCDE";
    assert_int_equal(cp_twilio_signature_check("12345", CP_TWILIO_SIG_SHA1, DOC_URL, shuffled,
                                               strlen(shuffled), "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
                     0);
    /* same string, HMAC-SHA256 (openssl dgst -sha256 -hmac 12345) */
    assert_int_equal(cp_twilio_signature("12345", CP_TWILIO_SIG_SHA256, DOC_URL, DOC_BODY,
                                         strlen(DOC_BODY), sig),
                     44);
    assert_string_equal(sig, "Rmm4Vzj+Ky7JGoWXMCsZDZuHDszLr9xvdbvitrDr4/M=");
}

static void signature_rejects(void **state)
{
    (void)state;
    const char *good = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";
    assert_int_equal(cp_twilio_signature_check("12346", CP_TWILIO_SIG_SHA1, DOC_URL, DOC_BODY,
                                               strlen(DOC_BODY), good),
                     CP_ERR_AUTH);
    assert_int_equal(cp_twilio_signature_check("12345", CP_TWILIO_SIG_SHA1, DOC_URL "&x=1",
                                               DOC_BODY, strlen(DOC_BODY), good),
                     CP_ERR_AUTH);
    const char *tampered = "CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1235"
                           "&From=%2B12349013030&To=%2B18005551212";
    assert_int_equal(cp_twilio_signature_check("12345", CP_TWILIO_SIG_SHA1, DOC_URL, tampered,
                                               strlen(tampered), good),
                     CP_ERR_AUTH);
    assert_int_equal(cp_twilio_signature_check("12345", CP_TWILIO_SIG_SHA1, DOC_URL, DOC_BODY,
                                               strlen(DOC_BODY), "0/KCTR6DLpKmkAf8muzZqo1nDgQ"),
                     CP_ERR_AUTH);
    assert_int_equal(cp_twilio_signature_check("12345", CP_TWILIO_SIG_SHA1, DOC_URL, DOC_BODY,
                                               strlen(DOC_BODY), ""),
                     CP_ERR_AUTH);
    assert_int_equal(cp_twilio_signature_check("12345", CP_TWILIO_SIG_SHA1, DOC_URL, DOC_BODY,
                                               strlen(DOC_BODY), NULL),
                     CP_ERR_AUTH);
    assert_int_equal(
        cp_twilio_signature_check("12345", CP_TWILIO_SIG_SHA1, DOC_URL, "a=%zz", 5, good),
        CP_ERR_PARSE);
}

/* Vectors computed with openssl over the strings in the comments. */
static void signature_sorting_and_ports(void **state)
{
    (void)state;
    char sig[CP_TWILIO_SIG_MAX + 1];
    /* repeated names sort by value: "https://example.com/cb?x=1" + "aaaa1" + "aaaa2" + "b" */
    const char *dup = "b=&a=aaa2&a=aaa1";
    assert_int_equal(cp_twilio_signature("tok", CP_TWILIO_SIG_SHA1, "https://example.com/cb?x=1",
                                         dup, strlen(dup), sig),
                     28);
    assert_string_equal(sig, "l79c0ZJ9ZvRGCHVrA4SJC3EixGg=");
    /* an empty body signs the URL alone: "https://example.com/cb" */
    assert_int_equal(
        cp_twilio_signature("tok", CP_TWILIO_SIG_SHA1, "https://example.com/cb", "", 0, sig), 28);
    assert_string_equal(sig, "VWaLYH6M1fgoySBu6ILG/sRBNJA=");
    /* signed as "https://example.com:443/cb" + "A" + "b c": accepted without the port too,
     * and '+' decodes to a space before signing */
    const char *body = "A=b+c";
    assert_int_equal(cp_twilio_signature_check("tok", CP_TWILIO_SIG_SHA1, "https://example.com/cb",
                                               body, 5, "oYYY7JQ6Xz96mFxUHAwqZSGk3Bs="),
                     0);
    assert_int_equal(cp_twilio_signature_check("tok", CP_TWILIO_SIG_SHA1,
                                               "https://example.com:443/cb", body, 5,
                                               "oYYY7JQ6Xz96mFxUHAwqZSGk3Bs="),
                     0);
    assert_int_equal(cp_twilio_signature_check("tok", CP_TWILIO_SIG_SHA1,
                                               "https://example.com:8443/cb", body, 5,
                                               "oYYY7JQ6Xz96mFxUHAwqZSGk3Bs="),
                     CP_ERR_AUTH);
    assert_int_equal(cp_twilio_signature_check("tok", CP_TWILIO_SIG_SHA1, "http://example.com/cb",
                                               body, 5, "oYYY7JQ6Xz96mFxUHAwqZSGk3Bs="),
                     CP_ERR_AUTH);
    /* "VWaLYH6M1fgoySBu6ILG/sRBNJA=" signs "https://example.com/cb"; a body of only "+" spaces
     * is one pair " " = "" and changes the string */
    assert_int_equal(cp_twilio_signature_check("tok", CP_TWILIO_SIG_SHA1, "https://example.com/cb",
                                               "+", 1, "VWaLYH6M1fgoySBu6ILG/sRBNJA="),
                     CP_ERR_AUTH);
}

/* ---- RFC 2822 dates and form decoding ---------------------------------------------------- */

static int64_t rfc(const char *s)
{
    int64_t us = -1;
    int rc = cp_twilio_parse_rfc2822(s, strlen(s), &us);
    return rc < 0 ? rc : us;
}

static void rfc2822_dates(void **state)
{
    (void)state;
    assert_int_equal(rfc("Wed, 01 May 2024 10:00:01 +0000"), INT64_C(1714557601000000));
    assert_int_equal(rfc("Wed, 01 May 2024 06:00:01 -0400"), INT64_C(1714557601000000));
    assert_int_equal(rfc("1 may 2024 10:00:01 GMT"), INT64_C(1714557601000000));
    assert_int_equal(rfc("  Wed,  1 May 2024 10:00 UT  "), INT64_C(1714557600000000));
    assert_int_equal(rfc("Thu, 29 Feb 2024 00:00:00 +0000"), INT64_C(1709164800000000));
    assert_int_equal(rfc("Wed, 01 May 2024 10:00:01"), CP_ERR_PARSE);
    assert_int_equal(rfc("Wed, 01 May 24 10:00:01 +0000"), CP_ERR_PARSE);
    assert_int_equal(rfc("Wed, 01 Mai 2024 10:00:01 +0000"), CP_ERR_PARSE);
    assert_int_equal(rfc("Wed, 01 May 2024 10:00:01 +000"), CP_ERR_PARSE);
    assert_int_equal(rfc("Wed, 01 May 2024 10:00:01 +0000 x"), CP_ERR_PARSE);
    assert_int_equal(rfc("Wednesday, 01 May 2024 10:00:01 +0000"), CP_ERR_PARSE);
    assert_int_equal(rfc("Wed, 29 Feb 2023 10:00:01 +0000"), CP_ERR_RANGE);
    assert_int_equal(rfc("Wed, 01 May 2024 24:00:01 +0000"), CP_ERR_RANGE);
    assert_int_equal(rfc("Wed, 01 May 1969 10:00:01 +0000"), CP_ERR_RANGE);
    assert_int_equal(rfc(""), CP_ERR_PARSE);
}

static void form_decoding(void **state)
{
    (void)state;
    struct cp_arena arena;
    cp_arena_init(&arena, 4096, 0);
    static struct cp_twilio_form form;
    const char *why = NULL, *name = NULL;
    const char *body = "a=1&&b=x+y%2Bz&c&d=%C3%BC&=e";
    assert_int_equal(cp_twilio_form_parse(body, strlen(body), true, &arena, &form, &why, &name), 0);
    assert_int_equal(form.n, 5);
    assert_string_equal(cp_twilio_form_get(&form, "b")->val, "x y+z");
    assert_string_equal(cp_twilio_form_get(&form, "c")->val, "");
    assert_string_equal(cp_twilio_form_get(&form, "d")->val, "\xc3\xbc");
    assert_string_equal(cp_twilio_form_get(&form, "")->val, "e");
    assert_null(cp_twilio_form_get(&form, "e"));
    assert_int_equal(cp_twilio_form_parse("a=%4", 4, true, &arena, &form, &why, &name),
                     CP_ERR_PARSE);
    assert_string_equal(why, "bad percent-encoding");
    assert_int_equal(cp_twilio_form_parse("a=1&a=2", 7, true, &arena, &form, &why, &name),
                     CP_ERR_PARSE);
    assert_string_equal(name, "a");
    assert_int_equal(cp_twilio_form_parse("a=1&a=2", 7, false, &arena, &form, &why, &name), 0);
    assert_int_equal(cp_twilio_form_parse("a=%ff", 5, true, &arena, &form, &why, &name),
                     CP_ERR_UTF8);
    cp_arena_destroy(&arena);
}

static int add_cases(struct CMUnitTest *tests, size_t *t, const char *sub, void (*fn)(void **),
                     char ***names, size_t *n)
{
    *names = cp_golden_list(cp_golden_dir(sub), n);
    if (*n < 10) {
        fprintf(stderr, "only %zu golden cases in %s\n", *n, cp_golden_dir(sub));
        return -1;
    }
    for (size_t i = 0; i < *n; i++)
        tests[(*t)++] = (struct CMUnitTest){(*names)[i], fn, NULL, NULL, (*names)[i]};
    return 0;
}

int main(void)
{
    static struct CMUnitTest tests[1024];
    size_t t = 0, nv = 0, nt = 0;
    char **v = NULL, **tr = NULL;
    if (add_cases(tests, &t, "twilio-voice", voice_case, &v, &nv) < 0 ||
        add_cases(tests, &t, "twilio-taskrouter", taskrouter_case, &tr, &nt) < 0)
        return 1;
    const struct CMUnitTest extra[] = {
        cmocka_unit_test(signature_doc_vector),
        cmocka_unit_test(signature_rejects),
        cmocka_unit_test(signature_sorting_and_ports),
        cmocka_unit_test(rfc2822_dates),
        cmocka_unit_test(form_decoding),
    };
    for (size_t i = 0; i < CP_ARRAY_LEN(extra); i++)
        tests[t++] = extra[i];
    int failed = _cmocka_run_group_tests("source_twilio", tests, t, NULL, NULL);
    cp_golden_free_list(v, nv);
    cp_golden_free_list(tr, nt);
    return failed;
}
