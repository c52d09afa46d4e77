/* test_source_cucm.c - golden cases of the cisco-cucm-cdr source plus its file-ledger helpers. */
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
#include "../../ingest/sources/cucm/cucm.h"

#define GOLDEN_SUB "cisco-cucm-cdr"

/* The identity is SHA-256 over a tag, the name, the size and the bytes; the
 * expected value was computed independently with Python's hashlib:
 *   sha256(b'callpipe-cucm-file-v1\0' + be64(len(name)) + name + be64(len(data)) + data) */
static void file_identity_vector(void **state)
{
    (void)state;
    const char *name = "cdr_StandAloneCluster_02_202405011000_771";
    const char *data = "\"cdrRecordType\"\nINTEGER\n1\n";
    char id[CP_CUCM_FILE_ID_LEN + 1];
    assert_int_equal(cp_cucm_file_identity(name, data, strlen(data), id), 0);
    assert_string_equal(id, "e3859f9b19baf5d99d37d2de63b75b3d899ab80200cdbdeb749a3e839cf2fff5");

    char other[CP_CUCM_FILE_ID_LEN + 1];
    /* same bytes under another name, or one byte different: another identity */
    assert_int_equal(cp_cucm_file_identity("cdr_StandAloneCluster_02_202405011000_772", data,
                                           strlen(data), other),
                     0);
    assert_string_not_equal(id, other);
    assert_int_equal(cp_cucm_file_identity(name, data, strlen(data) - 1, other), 0);
    assert_string_not_equal(id, other);
    /* an empty file is a file too */
    assert_int_equal(cp_cucm_file_identity(name, NULL, 0, other), 0);
    assert_int_equal(strlen(other), CP_CUCM_FILE_ID_LEN);
    assert_int_equal(cp_cucm_file_identity(NULL, data, 1, other), CP_ERR_INVAL);
}

static void file_classify(void **state)
{
    (void)state;
    assert_int_equal(cp_cucm_file_classify("cdr_StandAloneCluster_01_202405011000_70001"),
                     CP_CUCM_FILE_CDR);
    assert_int_equal(cp_cucm_file_classify("cmr_StandAloneCluster_01_202405011000_70001"),
                     CP_CUCM_FILE_CMR);
    assert_int_equal(cp_cucm_file_classify("_cdr_StandAloneCluster_01_202405011000_70001"),
                     CP_CUCM_FILE_PARTIAL);
    assert_int_equal(cp_cucm_file_classify("cdr_StandAloneCluster_01_202405011000_70001.filepart"),
                     CP_CUCM_FILE_PARTIAL);
    assert_int_equal(cp_cucm_file_classify("cdr_x.part"), CP_CUCM_FILE_PARTIAL);
    assert_int_equal(cp_cucm_file_classify(".cdr_x"), CP_CUCM_FILE_PARTIAL);
    assert_int_equal(cp_cucm_file_classify("README"), CP_CUCM_FILE_OTHER);
    assert_int_equal(cp_cucm_file_classify("tmp"), CP_CUCM_FILE_OTHER);
    assert_int_equal(cp_cucm_file_classify(""), CP_CUCM_FILE_OTHER);
}

/* ---- contract: a failing emitter stops the file, rejects carry the row's bytes ---- */

struct rec {
    struct cp_emit emit;
    int events, fail_at;
    char last_raw[512];
    char reasons[512];
};

static int rec_event(struct cp_emit *out, struct cp_event *ev)
{
    (void)ev;
    struct rec *r = out->user;
    return ++r->events == r->fail_at ? CP_ERR_FULL : 0;
}

static void rec_reject(struct cp_emit *out, uint32_t index, const char *raw, size_t len,
                       const char *reason)
{
    struct rec *r = out->user;
    size_t n = len < sizeof r->last_raw - 1 ? len : sizeof r->last_raw - 1;
    memcpy(r->last_raw, raw, n);
    r->last_raw[n] = '\0';
    size_t l = strlen(r->reasons);
    snprintf(r->reasons + l, sizeof r->reasons - l, "%u:%s;", index, reason);
}

#define HDR                                                                                        \
    "\"globalCallID_callManagerId\",\"globalCallID_callId\",\"dateTimeOrigination\","              \
    "\"dateTimeConnect\",\"dateTimeDisconnect\"\r\n"                                               \
    "INTEGER,INTEGER,INTEGER,INTEGER,INTEGER\r\n"

static int run(struct rec *r, const char *body)
{
    struct cp_arena arena;
    cp_arena_init(&arena, 4096, 0);
    struct cp_source_ctx ctx = {
        .org = "acme", .pbx = "pbx-1", .tz = NULL, .recv_us = CP_GOLDEN_RECV_US, .arena = &arena};
    r->emit = (struct cp_emit){rec_event, rec_reject, r};
    int rc = cp_source_cucm_cdr.parse(NULL, &ctx, body, strlen(body), &r->emit);
    cp_arena_destroy(&arena);
    return rc;
}

static void emitter_failure_stops(void **state)
{
    (void)state;
    struct rec r = {.fail_at = 2};
    const char *body = HDR "1,10,1714557600,0,1714557601\r\n"
                           "1,11,1714557600,0,1714557601\r\n"
                           "1,12,1714557600,0,1714557601\r\n";
    assert_int_equal(run(&r, body), CP_ERR_FULL);
    assert_int_equal(r.events, 2);
    assert_string_equal(r.reasons, "");
}

static void reject_carries_row_bytes(void **state)
{
    (void)state;
    struct rec r = {0};
    const char *body = HDR "1,10,1714557600,0,1714557601\r\n"
                           "1,11,1714557600,9,1714557601\r\n"
                           "1,12,1714557600,0,1714557601\r\n";
    assert_int_equal(run(&r, body), 2);
    assert_string_equal(r.reasons, "1:times out of order;");
    assert_string_equal(r.last_raw, "1,11,1714557600,9,1714557601");
}

int main(void)
{
    const struct CMUnitTest extra[] = {
        cmocka_unit_test(file_identity_vector),
        cmocka_unit_test(file_classify),
        cmocka_unit_test(emitter_failure_stops),
        cmocka_unit_test(reject_carries_row_bytes),
    };
    return cp_golden_run("source_cucm", &cp_source_cucm_cdr, GOLDEN_SUB, CP_GOLDEN_WHOLE, 10, extra,
                         CP_ARRAY_LEN(extra));
}
