/* test_source_asterisk_ami.c - asterisk-ami golden cases, its framer and the AMI client. */
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
#include "../../ingest/sources/asterisk_ami/ami_client.h"
#include "../../ingest/sources/asterisk_ami/asterisk_ami.h"

/* ---- frame() ----------------------------------------------------------------------- */

static long frame(void *st, const char *s)
{
    return cp_source_asterisk_ami.frame(st, s, strlen(s));
}

static void frame_cuts_blocks_and_banner(void **state)
{
    (void)state;
    void *st = cp_source_asterisk_ami.state_create();
    assert_non_null(st);
    /* the banner is a record of its own, without a blank line after it */
    assert_int_equal(frame(st, "Asterisk Call Manager/9.0.0\r\nResponse: Success\r\n"), 29);
    /* an incomplete banner or block needs more bytes */
    assert_int_equal(frame(st, "Asterisk Call Man"), 0);
    assert_int_equal(frame(st, "Event: Hold\r\nPrivilege: call,all\r\n"), 0);
    assert_int_equal(frame(st, "Event: Hold\r\nPrivilege: call,all\r\n\r"), 0);
    /* a block ends with its blank line; what follows is the next record */
    assert_int_equal(frame(st, "Event: Hold\r\nX: 1\r\n\r\nEvent: Unhold\r\n"), 21);
    assert_int_equal(frame(st, "Event: Hold\nX: 1\n\nEvent"), 18);
    /* leading blank lines belong to the next block */
    assert_int_equal(frame(st, "\r\n\r\nEvent: Hold\r\n\r\n"), 19);
    assert_int_equal(frame(st, "\r\n\r\n"), 0);
    cp_source_asterisk_ami.state_destroy(st);
}

static void frame_oversize_resynchronises(void **state)
{
    (void)state;
    void *st = cp_source_asterisk_ami.state_create();
    size_t n = CP_AMI_BLOCK_MAX + 100;
    char *buf = malloc(n + 64);
    assert_non_null(buf);
    memset(buf, 'x', n);
    memcpy(buf, "Event: Big\r\nA: ", 15);
    /* no line end anywhere within the bound: refused, and the framer skips to the blank line */
    assert_int_equal(cp_source_asterisk_ami.frame(st, buf, n), CP_ERR_TOOBIG);
    assert_int_equal(frame(st, "tail of the big line\r\n"), CP_ERR_TOOBIG);
    assert_int_equal(frame(st, "More: header\r\n"), CP_ERR_TOOBIG);
    assert_int_equal(frame(st, "\r\nEvent: Hold\r\n\r\n"), CP_ERR_TOOBIG); /* the blank line */
    assert_int_equal(frame(st, "Event: Hold\r\n\r\n"), 15);
    free(buf);
    cp_source_asterisk_ami.state_destroy(st);
}

/* ---- parse() contract --------------------------------------------------------------- */

struct count {
    struct cp_emit emit;
    int events, rejects, fail_at;
};

static int count_event(struct cp_emit *out, struct cp_event *ev)
{
    struct count *c = out->user;
    const char *why = NULL;
    assert_int_equal(cp_event_validate(ev, &why), 0);
    if (++c->events == c->fail_at) return CP_ERR_FULL;
    return 0;
}

static void count_reject(struct cp_emit *out, uint32_t index, const char *rec, size_t len,
                         const char *reason)
{
    (void)index, (void)rec, (void)len, (void)reason;
    ((struct count *)out->user)->rejects++;
}

static void emitter_failure_stops_the_record(void **state)
{
    (void)state;
    const char *rec =
        "Event: Hold\r\nUniqueid: 1.1\r\nLinkedid: 1.1\r\nTimestamp: 1714557650\r\n\r\n"
        "Event: Unhold\r\nUniqueid: 1.1\r\nLinkedid: 1.1\r\nTimestamp: 1714557651\r\n\r\n";
    struct cp_arena arena;
    cp_arena_init(&arena, 4096, 0);
    struct cp_source_ctx ctx = {"acme", "pbx-1", NULL, CP_GOLDEN_RECV_US, &arena};
    struct count c = {{count_event, count_reject, NULL}, 0, 0, 1};
    c.emit.user = &c;
    assert_int_equal(cp_source_asterisk_ami.parse(NULL, &ctx, rec, strlen(rec), &c.emit),
                     CP_ERR_FULL);
    assert_int_equal(c.events, 1);
    assert_int_equal(c.rejects, 0);
    c.fail_at = 0;
    c.events = 0;
    assert_int_equal(cp_source_asterisk_ami.parse(NULL, &ctx, rec, strlen(rec), &c.emit), 2);
    cp_arena_destroy(&arena);
}

/* ---- the AMI client helpers ------------------------------------------------------------ */

static void client_login_plain(void **state)
{
    (void)state;
    char buf[256];
    int n = cp_ami_action_login(buf, sizeof buf, "collector", "s3cret", "agent,call,cdr", "1");
    const char *want = "Action: Login\r\nActionID: 1\r\nUsername: collector\r\nSecret: s3cret\r\n"
                       "Events: agent,call,cdr\r\n\r\n";
    assert_int_equal(n, (int)strlen(want));
    assert_string_equal(buf, want);
    n = cp_ami_action_login(buf, sizeof buf, "collector", "s3cret", NULL, NULL);
    assert_string_equal(buf, "Action: Login\r\nUsername: collector\r\nSecret: s3cret\r\n\r\n");
    /* header injection and missing values are refused */
    assert_int_equal(cp_ami_action_login(buf, sizeof buf, "c", "x\r\nAction: Logoff", NULL, NULL),
                     CP_ERR_INVAL);
    assert_int_equal(cp_ami_action_login(buf, sizeof buf, "", "x", NULL, NULL), CP_ERR_INVAL);
    assert_int_equal(cp_ami_action_login(buf, 20, "collector", "s3cret", NULL, NULL),
                     CP_ERR_TOOBIG);
    /* 54 bytes and a NUL */
    assert_int_equal(cp_ami_action_login(buf, 54, "collector", "s3cret", NULL, NULL),
                     CP_ERR_TOOBIG);
    assert_int_equal(cp_ami_action_login(buf, 55, "collector", "s3cret", NULL, NULL), 54);
}

static void client_login_md5(void **state)
{
    (void)state;
    char buf[256], key[33];
    assert_int_equal(cp_ami_action_challenge(buf, sizeof buf, "c1"), 50);
    assert_string_equal(buf, "Action: Challenge\r\nActionID: c1\r\nAuthType: MD5\r\n\r\n");

    const char *reply = "Response: Success\r\nActionID: c1\r\nChallenge: 840213752\r\n\r\n";
    struct cp_ami_response r;
    assert_int_equal(cp_ami_response_read(reply, strlen(reply), &r), 0);
    assert_true(r.success);
    assert_int_equal(r.challenge_len, 9);
    assert_memory_equal(r.challenge, "840213752", 9);
    assert_int_equal(r.action_id_len, 2);

    assert_int_equal(cp_ami_md5_key("840213752", "s3cret", key), 0);
    assert_string_equal(key, "575cf9cb2c8ea83d6c6872d2e1b8a9c0"); /* python3 hashlib.md5 */
    int n =
        cp_ami_action_login_md5(buf, sizeof buf, "collector", "840213752", "s3cret", "off", NULL);
    assert_true(n > 0);
    assert_string_equal(buf, "Action: Login\r\nAuthType: MD5\r\nUsername: collector\r\n"
                             "Key: 575cf9cb2c8ea83d6c6872d2e1b8a9c0\r\nEvents: off\r\n\r\n");
}

static void client_events_filter_ping(void **state)
{
    (void)state;
    char buf[128];
    assert_true(cp_ami_action_events(buf, sizeof buf, "agent,call,cdr", NULL) > 0);
    assert_string_equal(buf, "Action: Events\r\nEventMask: agent,call,cdr\r\n\r\n");
    assert_true(cp_ami_action_filter(buf, sizeof buf, "!Event: VarSet", "f") > 0);
    assert_string_equal(
        buf, "Action: Filter\r\nActionID: f\r\nOperation: Add\r\nFilter: !Event: VarSet\r\n\r\n");
    assert_true(cp_ami_action_ping(buf, sizeof buf, "p7") > 0);
    assert_string_equal(buf, "Action: Ping\r\nActionID: p7\r\n\r\n");
    assert_int_equal(cp_ami_action_events(buf, sizeof buf, "", NULL), CP_ERR_INVAL);
}

static void client_reads_replies(void **state)
{
    (void)state;
    struct cp_ami_response r;
    const char *err = "Response: Error\r\nMessage: Authentication failed\r\n\r\n";
    assert_int_equal(cp_ami_response_read(err, strlen(err), &r), 0);
    assert_false(r.success);
    assert_int_equal(r.message_len, 21);
    assert_null(r.action_id);
    const char *ev = "Event: FullyBooted\r\nPrivilege: system,all\r\n\r\n";
    assert_int_equal(cp_ami_response_read(ev, strlen(ev), &r), CP_ERR_NOTFOUND);
    const char *banner = "Asterisk Call Manager/13.0.0\r\n";
    assert_true(cp_ami_is_banner(banner, strlen(banner)));
    assert_int_equal(cp_ami_response_read(banner, strlen(banner), &r), CP_ERR_NOTFOUND);
    assert_false(cp_ami_is_banner("Asterisk Call", 13));
    const char *pong = "Response: Success\r\nPing: Pong\r\nTimestamp: 1714557600.000123\r\n\r\n";
    assert_int_equal(cp_ami_response_read(pong, strlen(pong), &r), 0);
    assert_true(r.success);
    assert_int_equal(cp_ami_response_read("garbage\r\n\r\n", 11, &r), CP_ERR_PARSE);
}

int main(void)
{
    const struct CMUnitTest extra[] = {
        cmocka_unit_test(frame_cuts_blocks_and_banner),
        cmocka_unit_test(frame_oversize_resynchronises),
        cmocka_unit_test(emitter_failure_stops_the_record),
        cmocka_unit_test(client_login_plain),
        cmocka_unit_test(client_login_md5),
        cmocka_unit_test(client_events_filter_ping),
        cmocka_unit_test(client_reads_replies),
    };
    return cp_golden_run("source_asterisk_ami", &cp_source_asterisk_ami, "asterisk-ami",
                         CP_GOLDEN_FRAME, 10, extra, CP_ARRAY_LEN(extra));
}
