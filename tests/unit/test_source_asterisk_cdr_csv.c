/* test_source_asterisk_cdr_csv.c - asterisk-cdr-csv golden cases and column settings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cp_err.h"
#include "../lib/golden.h"
#include "../../ingest/sources/asterisk_cdr_csv/asterisk_cdr_csv.h"

struct one {
    struct cp_emit emit;
    int events, rejects;
    char leg[64], x_user[64];
    const char *reason;
};

static int on_event(struct cp_emit *out, struct cp_event *ev)
{
    struct one *o = out->user;
    const char *why = NULL;
    assert_int_equal(cp_event_validate(ev, &why), 0);
    o->events++;
    snprintf(o->leg, sizeof o->leg, "%s", ev->leg ? ev->leg : "(none)");
    o->x_user[0] = '\0';
    for (uint32_t i = 0; i < ev->nx; i++)
        if (strcmp(ev->x[i].key, "userfield") == 0)
            snprintf(o->x_user, sizeof o->x_user, "%s", ev->x[i].val);
    return 0;
}

static void on_reject(struct cp_emit *out, uint32_t index, const char *rec, size_t len,
                      const char *reason)
{
    (void)index, (void)rec, (void)len;
    struct one *o = out->user;
    o->rejects++;
    o->reason = reason;
}

#define LINE16                                                                                     \
    "\"\",\"+15550100\",\"4000\",\"from-trunk\",\"<+15550100>\",\"PJSIP/trunk-0000002a\","         \
    "\"PJSIP/2001-0000002b\",\"Dial\",\"PJSIP/2001\",\"2024-05-01 06:00:00\","                     \
    "\"2024-05-01 06:00:12\",\"2024-05-01 06:03:15\",195,183,\"ANSWERED\",\"DOCUMENTATION\""

static int parse(void *st, struct one *o, const char *line)
{
    struct cp_arena arena;
    cp_arena_init(&arena, 4096, 0);
    struct cp_source_ctx ctx = {"acme", "pbx-1", "America/New_York", CP_GOLDEN_RECV_US, &arena};
    memset(o, 0, sizeof *o);
    o->emit = (struct cp_emit){on_event, on_reject, o};
    int rc = cp_source_asterisk_cdr_csv.parse(st, &ctx, line, strlen(line), &o->emit);
    cp_arena_destroy(&arena);
    return rc;
}

/* 17 columns are uniqueid or userfield: only the configured layout can tell. */
static void configured_columns_resolve_17_and_20(void **state)
{
    (void)state;
    void *st = cp_source_asterisk_cdr_csv.state_create();
    struct one o;
    const char *l17 = LINE16 ",\"1714557600.84\"";
    assert_int_equal(parse(st, &o, l17), CP_ERR_CONFIG);
    assert_string_equal(o.reason,
                        "ambiguous column count (uniqueid or userfield): set cdr_columns");

    assert_int_equal(cp_ast_cdr_csv_set_columns(st, "uniqueid"), 0);
    assert_int_equal(parse(st, &o, l17), 1);
    assert_string_equal(o.leg, "1714557600.84");
    assert_string_equal(o.x_user, "");

    assert_int_equal(cp_ast_cdr_csv_set_columns(st, "userfield"), 0);
    assert_int_equal(parse(st, &o, l17), 1);
    assert_string_equal(o.leg, "(none)");
    assert_string_equal(o.x_user, "1714557600.84");

    /* 20 = one optional column + newcdrcolumns */
    const char *l20 = LINE16 ",\"1714557600.84\",\"\",\"1714557600.80\",7";
    assert_int_equal(cp_ast_cdr_csv_set_columns(st, "uniqueid"), 0);
    assert_int_equal(parse(st, &o, l20), 1);
    assert_string_equal(o.leg, "1714557600.84");
    /* a configured layout rejects a line that does not fit it */
    assert_int_equal(parse(st, &o, LINE16), CP_ERR_PARSE);
    assert_string_equal(o.reason, "unexpected column count");

    assert_int_equal(cp_ast_cdr_csv_set_columns(st, "none"), 0);
    assert_int_equal(parse(st, &o, LINE16), 1);
    assert_int_equal(cp_ast_cdr_csv_set_columns(st, "uniqueid,userfield"), 0);
    assert_int_equal(parse(st, &o, LINE16 ",\"1714557600.84\",\"vip\""), 1);
    assert_string_equal(o.x_user, "vip");
    assert_int_equal(cp_ast_cdr_csv_set_columns(st, "userfield,uniqueid"), CP_ERR_CONFIG);
    assert_int_equal(cp_ast_cdr_csv_set_columns(st, NULL), CP_ERR_CONFIG);
    assert_int_equal(cp_ast_cdr_csv_set_columns(st, "auto"), 0);
    assert_int_equal(parse(st, &o, l17), CP_ERR_CONFIG);
    cp_source_asterisk_cdr_csv.state_destroy(st);
}

int main(void)
{
    const struct CMUnitTest extra[] = {
        cmocka_unit_test(configured_columns_resolve_17_and_20),
    };
    return cp_golden_run("source_asterisk_cdr_csv", &cp_source_asterisk_cdr_csv, "asterisk-cdr-csv",
                         CP_GOLDEN_LINES, 10, extra, CP_ARRAY_LEN(extra));
}
