/* test_source_amazon_connect.c - amazon-connect-ctr golden cases and Firehose helpers. */
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
#include "../../ingest/sources/amazon_connect/amazon_connect.h"
#include "../../ingest/sources/amazon_connect/firehose.h"

#define GOLDEN_SUB "amazon-connect-ctr"

static void access_key(void **state)
{
    (void)state;
    assert_int_equal(cp_firehose_check_key("s3cr3t-key", "s3cr3t-key"), 0);
    assert_int_equal(cp_firehose_check_key("s3cr3t-key", "s3cr3t-kez"), CP_ERR_AUTH);
    assert_int_equal(cp_firehose_check_key("s3cr3t-key", "s3cr3t-key "), CP_ERR_AUTH);
    assert_int_equal(cp_firehose_check_key("s3cr3t-key", "s3cr3t"), CP_ERR_AUTH);
    assert_int_equal(cp_firehose_check_key("s3cr3t-key", ""), CP_ERR_AUTH);
    assert_int_equal(cp_firehose_check_key("s3cr3t-key", NULL), CP_ERR_AUTH);
    assert_int_equal(cp_firehose_check_key("", ""), CP_ERR_CONFIG);
    assert_int_equal(cp_firehose_check_key(NULL, "x"), CP_ERR_CONFIG);
}

static void response_body(void **state)
{
    (void)state;
    char buf[256];
    int n = cp_firehose_response(buf, sizeof buf, "0b8e7a52-1f0c-4c8e-9d55-3a4f1c2d9e10",
                                 INT64_C(1714557800456), NULL);
    assert_string_equal(buf, "{\"requestId\":\"0b8e7a52-1f0c-4c8e-9d55-3a4f1c2d9e10\","
                             "\"timestamp\":1714557800456}");
    assert_int_equal(n, (int)strlen(buf));
    n = cp_firehose_response(buf, sizeof buf, "r\"1\\", 5, "could not produce: queue full\n");
    assert_string_equal(buf, "{\"requestId\":\"r\\\"1\\\\\",\"timestamp\":5,"
                             "\"errorMessage\":\"could not produce: queue full\\u000a\"}");
    /* bytes that are not UTF-8 never reach the JSON */
    n = cp_firehose_response(buf, sizeof buf,
                             "a\xff"
                             "b",
                             1, NULL);
    assert_string_equal(buf, "{\"requestId\":\"a?b\",\"timestamp\":1}");
    assert_int_equal(cp_firehose_response(buf, sizeof buf, NULL, 1, NULL), 30);
    assert_string_equal(buf, "{\"requestId\":\"\",\"timestamp\":1}");
    assert_int_equal(cp_firehose_response(buf, 20, "0b8e7a52", 1, NULL), CP_ERR_TOOBIG);
    /* the NUL needs a byte too */
    assert_int_equal(cp_firehose_response(buf, 31, NULL, 1, NULL), 30);
    assert_int_equal(cp_firehose_response(buf, 30, NULL, 1, NULL), CP_ERR_TOOBIG);
}

static void status_codes(void **state)
{
    (void)state;
    assert_int_equal(cp_firehose_status(3), 200);
    assert_int_equal(cp_firehose_status(0), 200);
    assert_int_equal(cp_firehose_status(CP_ERR_PARSE), 200);
    assert_int_equal(cp_firehose_status(CP_ERR_FULL), 503);
    assert_int_equal(cp_firehose_status(CP_ERR_NOMEM), 503);
}

int main(void)
{
    const struct CMUnitTest extra[] = {
        cmocka_unit_test(access_key),
        cmocka_unit_test(response_body),
        cmocka_unit_test(status_codes),
    };
    return cp_golden_run("source_amazon_connect", &cp_source_amazon_connect_ctr, GOLDEN_SUB,
                         CP_GOLDEN_WHOLE, 10, extra, CP_ARRAY_LEN(extra));
}
