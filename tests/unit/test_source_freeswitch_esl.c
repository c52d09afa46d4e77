/* test_source_freeswitch_esl.c - golden streams of freeswitch-esl, its framer, and the ESL client helpers. */
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
#include "../../ingest/sources/freeswitch_esl/esl_client.h"
#include "../../ingest/sources/freeswitch_esl/freeswitch_esl.h"

#define GOLDEN_SUB "freeswitch_esl"

static void frame_needs_whole_message(void **state)
{
    (void)state;
    static const char m[] = "Content-Length: 5\nContent-Type: text/event-plain\n\nabcde"
                            "Content-Type: auth/request\n\n";
    const struct cp_source_format *f = &cp_source_freeswitch_esl;
    size_t first = sizeof "Content-Length: 5\nContent-Type: text/event-plain\n\nabcde" - 1;
    /* Every proper prefix of the first message needs more bytes. */
    for (size_t i = 0; i < first; i++)
        assert_int_equal(f->frame(NULL, m, i), 0);
    assert_int_equal(f->frame(NULL, m, sizeof m - 1), (long)first);
    assert_int_equal(f->frame(NULL, m + first, sizeof m - 1 - first), 28);
    /* Lengths beyond the bound and garbage lengths never become records. */
    static const char big[] = "Content-Length: 99999999\nContent-Type: text/event-plain\n\n";
    assert_int_equal(f->frame(NULL, big, sizeof big - 1), CP_ERR_TOOBIG);
    static const char neg[] = "Content-Length: -1\n\n";
    assert_int_equal(f->frame(NULL, neg, sizeof neg - 1), CP_ERR_PARSE);
    /* A header block that never ends within the bound. */
    char *junk = malloc(CP_ESL_HEADERS_MAX + 10);
    memset(junk, 'a', CP_ESL_HEADERS_MAX + 10);
    assert_int_equal(f->frame(NULL, junk, CP_ESL_HEADERS_MAX + 10), CP_ERR_TOOBIG);
    free(junk);
}

static void client_commands(void **state)
{
    (void)state;
    char buf[256];
    assert_int_equal(cp_esl_auth_command("ClueCon", buf, sizeof buf), 14);
    assert_string_equal(buf, "auth ClueCon\n\n");
    assert_int_equal(cp_esl_auth_command("bad\npass", buf, sizeof buf), CP_ERR_INVAL);
    assert_int_equal(cp_esl_auth_command("", buf, sizeof buf), CP_ERR_INVAL);
    assert_int_equal(cp_esl_auth_command("ClueCon", buf, 10), CP_ERR_TOOBIG);
    int n = cp_esl_event_command(NULL, buf, sizeof buf);
    assert_string_equal(buf, "event plain CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE "
                             "CUSTOM callcenter::info\n\n");
    assert_int_equal(n, (int)strlen(buf));
    assert_int_equal(cp_esl_event_command("ALL\n", buf, sizeof buf), CP_ERR_INVAL);
}

static void client_classify(void **state)
{
    (void)state;
    const char *t;
    size_t tl;
    static const char auth[] = "Content-Type: auth/request\n\n";
    assert_int_equal(cp_esl_classify(auth, sizeof auth - 1, &t, &tl), CP_ESL_MSG_AUTH_REQUEST);
    static const char ok[] = "Content-Type: command/reply\nReply-Text: +OK accepted\n\n";
    assert_int_equal(cp_esl_classify(ok, sizeof ok - 1, &t, &tl), CP_ESL_MSG_REPLY_OK);
    assert_int_equal(tl, 12);
    assert_memory_equal(t, "+OK accepted", 12);
    static const char err[] = "Content-Type: command/reply\nReply-Text: -ERR invalid\n\n";
    assert_int_equal(cp_esl_classify(err, sizeof err - 1, &t, &tl), CP_ESL_MSG_REPLY_ERR);
    assert_memory_equal(t, "-ERR invalid", 12);
    static const char ev[] = "Content-Length: 3\nContent-Type: text/event-plain\n\nx\n\n";
    assert_int_equal(cp_esl_classify(ev, sizeof ev - 1, &t, &tl), CP_ESL_MSG_EVENT);
    static const char bye[] = "Content-Type: text/disconnect-notice\nContent-Length: 0\n\n";
    assert_int_equal(cp_esl_classify(bye, sizeof bye - 1, &t, &tl), CP_ESL_MSG_DISCONNECT);
    static const char rude[] = "Content-Type: text/rude-rejection\nContent-Length: 0\n\n";
    assert_int_equal(cp_esl_classify(rude, sizeof rude - 1, &t, &tl), CP_ESL_MSG_DISCONNECT);
    static const char api[] = "Content-Type: api/response\nContent-Length: 3\n\n+OK";
    assert_int_equal(cp_esl_classify(api, sizeof api - 1, &t, &tl), CP_ESL_MSG_OTHER);
    static const char none[] = "Reply-Text: +OK\n\n";
    assert_int_equal(cp_esl_classify(none, sizeof none - 1, &t, &tl), CP_ERR_PARSE);
}

int main(void)
{
    const struct CMUnitTest extra[] = {
        cmocka_unit_test(frame_needs_whole_message),
        cmocka_unit_test(client_commands),
        cmocka_unit_test(client_classify),
    };
    return cp_golden_run("freeswitch_esl", &cp_source_freeswitch_esl, GOLDEN_SUB, CP_GOLDEN_FRAME,
                         10, extra, CP_ARRAY_LEN(extra));
}
