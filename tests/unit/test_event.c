/* test_event.c - unit tests of the canonical event: validation, msgpack codec, JSON rendering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <msgpack.h>

#include "cp_arena.h"
#include "cp_err.h"
#include "cp_event.h"

/* 2025-11-25T10:00:00Z */
#define T0 INT64_C(1764064800000000)

static void full_event(struct cp_event *ev)
{
    cp_event_init(ev);
    ev->event_id = "01JDQ8Z6X0000000000000000A";
    ev->org = "acme";
    ev->pbx = "eu-1";
    ev->src = "asterisk-ami";
    ev->call = "1764064800.42";
    ev->leg = "SIP/100-00000001";
    ev->parent = "1764064800.41";
    ev->kind = CP_KIND_CDR;
    ev->ts = T0 + 123456;
    ev->recv = T0 + 200000;
    ev->start = T0;
    ev->answer = T0 + 5000000;
    ev->end = T0 + 65000000;
    ev->dir = CP_DIR_INBOUND;
    ev->from = "+4930123456";
    ev->from_name = "Zoë Ünal";
    ev->to = "+498001234";
    ev->final_to = "100";
    ev->queue = "support";
    ev->agent = "agent/100";
    ev->agent_name = "山田太郎";
    ev->disp = CP_DISP_ANSWERED;
    ev->qout = CP_QOUT_ANSWERED;
    ev->wrapup = "sale";
    ev->side = CP_SIDE_CALLER;
    ev->q850 = 16;
    ev->native = "ANSWERED";
    ev->ring = 5;
    ev->wait = 3;
    ev->talk = 60;
    ev->hold = 0;
    ev->acw = 30;
    ev->nx = 2;
    ev->x[0] = (struct cp_kv){"uniqueid", "1764064800.42"};
    ev->x[1] = (struct cp_kv){"mood", "😀"};
}

static void minimal_event(struct cp_event *ev)
{
    cp_event_init(ev);
    ev->event_id = "e1";
    ev->org = "acme";
    ev->pbx = "eu-1";
    ev->src = "callpipe-json";
    ev->call = "c1";
    ev->kind = CP_KIND_CALL_START;
    ev->ts = T0;
}

struct fix {
    struct cp_arena arena;
    msgpack_sbuffer sb;
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof *f);
    cp_arena_init(&f->arena, 4096, 1 << 20);
    msgpack_sbuffer_init(&f->sb);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    cp_arena_destroy(&f->arena);
    msgpack_sbuffer_destroy(&f->sb);
    free(f);
    return 0;
}

static int encode(struct fix *f, const struct cp_event *ev)
{
    msgpack_sbuffer_clear(&f->sb);
    int n = cp_event_encode(ev, &f->sb);
    assert_true(n > 0);
    assert_int_equal((size_t)n, f->sb.size);
    return n;
}

static int decode_sb(struct fix *f, struct cp_event *out, const char **why)
{
    cp_arena_reset(&f->arena);
    return cp_event_decode(f->sb.data, f->sb.size, &f->arena, out, why);
}

static void test_enum_names(void **state)
{
    static const char *kinds[] = {
        "call_start",     "ringing",       "answer", "queue_enter", "queue_leave", "agent_offer",
        "agent_noanswer", "agent_connect", "hold",   "unhold",      "transfer",    "agent_complete",
        "wrapup_end",     "call_end",      "cdr",    "agent_state"};
    assert_int_equal(CP_ARRAY_LEN(kinds), CP_KIND__COUNT - 1);
    for (unsigned i = 0; i < CP_ARRAY_LEN(kinds); i++) {
        enum cp_kind k;
        assert_string_equal(cp_kind_name((enum cp_kind)(i + 1)), kinds[i]);
        assert_int_equal(cp_kind_parse(kinds[i], strlen(kinds[i]), &k), 0);
        assert_int_equal(k, i + 1);
    }
    assert_null(cp_kind_name(CP_KIND_NONE));
    assert_null(cp_kind_name(CP_KIND__COUNT));
    enum cp_kind k = CP_KIND_HOLD;
    assert_int_equal(cp_kind_parse("hol", 3, &k), CP_ERR_PARSE);
    assert_int_equal(cp_kind_parse("holdx", 5, &k), CP_ERR_PARSE);
    assert_int_equal(cp_kind_parse("HOLD", 4, &k), CP_ERR_PARSE);
    assert_int_equal(k, CP_KIND_HOLD); /* untouched on failure */
    /* Length is honoured: "hold" inside a longer buffer. */
    assert_int_equal(cp_kind_parse("holdover", 4, &k), 0);
    assert_int_equal(k, CP_KIND_HOLD);

    static const char *dirs[] = {"inbound", "outbound", "internal"};
    for (unsigned i = 0; i < 3; i++) {
        enum cp_dir d;
        assert_string_equal(cp_dir_name((enum cp_dir)(i + 1)), dirs[i]);
        assert_int_equal(cp_dir_parse(dirs[i], strlen(dirs[i]), &d), 0);
        assert_int_equal(d, i + 1);
    }
    static const char *disps[] = {"answered", "no_answer",  "busy",
                                  "failed",   "congestion", "canceled"};
    assert_int_equal(CP_ARRAY_LEN(disps), CP_DISP__COUNT - 1);
    for (unsigned i = 0; i < CP_ARRAY_LEN(disps); i++) {
        enum cp_disp d;
        assert_string_equal(cp_disp_name((enum cp_disp)(i + 1)), disps[i]);
        assert_int_equal(cp_disp_parse(disps[i], strlen(disps[i]), &d), 0);
        assert_int_equal(d, i + 1);
    }
    static const char *qouts[] = {"answered", "abandoned",   "timeout",  "key_exit",
                                  "full",     "transferred", "callback", "voicemail"};
    assert_int_equal(CP_ARRAY_LEN(qouts), CP_QOUT__COUNT - 1);
    for (unsigned i = 0; i < CP_ARRAY_LEN(qouts); i++) {
        enum cp_qout q;
        assert_string_equal(cp_qout_name((enum cp_qout)(i + 1)), qouts[i]);
        assert_int_equal(cp_qout_parse(qouts[i], strlen(qouts[i]), &q), 0);
        assert_int_equal(q, i + 1);
    }
    static const char *sides[] = {"caller", "agent", "system"};
    for (unsigned i = 0; i < 3; i++) {
        enum cp_side s;
        assert_string_equal(cp_side_name((enum cp_side)(i + 1)), sides[i]);
        assert_int_equal(cp_side_parse(sides[i], strlen(sides[i]), &s), 0);
        assert_int_equal(s, i + 1);
    }
    enum cp_side s;
    assert_int_equal(cp_side_parse("unknown", 7, &s), CP_ERR_PARSE);
    assert_int_equal(cp_side_parse(NULL, 0, &s), CP_ERR_PARSE);
}

static void test_init_and_validate(void **state)
{
    struct cp_event ev;
    const char *why = NULL;
    cp_event_init(&ev);
    assert_int_equal(ev.v, 1);
    assert_int_equal(ev.ring, -1);
    assert_int_equal(ev.acw, -1);
    assert_null(ev.org);
    assert_int_equal(cp_event_validate(&ev, &why), CP_ERR_MISSING);
    assert_string_equal(why, "missing required field event_id");

    minimal_event(&ev);
    assert_int_equal(cp_event_validate(&ev, &why), 0);
    assert_null(why);
    full_event(&ev);
    assert_int_equal(cp_event_validate(&ev, &why), 0);

    minimal_event(&ev);
    ev.v = 2;
    assert_int_equal(cp_event_validate(&ev, &why), CP_ERR_VERSION);
    minimal_event(&ev);
    ev.pbx = "";
    assert_int_equal(cp_event_validate(&ev, &why), CP_ERR_MISSING);
    assert_string_equal(why, "missing required field pbx");
    minimal_event(&ev);
    ev.call = NULL;
    assert_int_equal(cp_event_validate(&ev, &why), CP_ERR_MISSING);
    assert_string_equal(why, "missing required field call");
    minimal_event(&ev);
    ev.kind = CP_KIND_NONE;
    assert_int_equal(cp_event_validate(&ev, &why), CP_ERR_MISSING);
    assert_string_equal(why, "missing required field kind");
    minimal_event(&ev);
    ev.ts = 0;
    assert_int_equal(cp_event_validate(&ev, &why), CP_ERR_MISSING);
    assert_string_equal(why, "missing required field ts");
    minimal_event(&ev);
    ev.ts = -5;
    assert_int_equal(cp_event_validate(&ev, &why), CP_ERR_RANGE);
    minimal_event(&ev);
    ev.talk = -2;
    assert_int_equal(cp_event_validate(&ev, &why), CP_ERR_RANGE);
    assert_string_equal(why, "field talk is below -1");
    minimal_event(&ev);
    ev.q850 = 128;
    assert_int_equal(cp_event_validate(&ev, &why), CP_ERR_RANGE);
    minimal_event(&ev);
    ev.dir = CP_DIR__COUNT;
    assert_int_equal(cp_event_validate(&ev, &why), CP_ERR_RANGE);
    minimal_event(&ev);
    ev.from_name = "\xc0\xaf";
    assert_int_equal(cp_event_validate(&ev, &why), CP_ERR_UTF8);
    assert_string_equal(why, "field from_name is not valid UTF-8");
    minimal_event(&ev);
    ev.nx = 2;
    ev.x[0] = (struct cp_kv){"a", "1"};
    ev.x[1] = (struct cp_kv){"a", "2"};
    assert_int_equal(cp_event_validate(&ev, &why), CP_ERR_PARSE);
    ev.x[1] = (struct cp_kv){"b", NULL};
    assert_int_equal(cp_event_validate(&ev, &why), CP_ERR_MISSING);
    ev.nx = CP_EVENT_X_MAX + 1;
    assert_int_equal(cp_event_validate(&ev, &why), CP_ERR_TOOBIG);
}

static void test_roundtrip_full(void **state)
{
    struct fix *f = *state;
    struct cp_event ev, out;
    const char *why = NULL;
    full_event(&ev);
    encode(f, &ev);
    assert_int_equal(decode_sb(f, &out, &why), 0);
    assert_null(why);
    assert_true(cp_event_equal(&ev, &out));
    /* Spot checks that do not depend on cp_event_equal being right. */
    assert_string_equal(out.from_name, "Zoë Ünal");
    assert_string_equal(out.agent_name, "山田太郎");
    assert_string_equal(out.x[1].val, "😀");
    assert_ptr_not_equal(out.org, ev.org); /* copied into the arena */
    assert_int_equal(out.kind, CP_KIND_CDR);
    assert_int_equal(out.ts, T0 + 123456);
    assert_int_equal(out.end, T0 + 65000000);
    assert_int_equal(out.hold, 0);
    assert_int_equal(out.q850, 16);
    assert_int_equal(out.side, CP_SIDE_CALLER);
    assert_int_equal(out.nx, 2);
    /* 34 keys: every field of DESIGN.md section 3 is present. */
    assert_int_equal((unsigned char)f->sb.data[0], 0xde);
    assert_int_equal((unsigned char)f->sb.data[1], 0);
    assert_int_equal((unsigned char)f->sb.data[2], 34);

    /* The fixed-buffer variant produces the same bytes. */
    char buf[CP_EVENT_MSGPACK_MAX];
    int n = cp_event_encode_to(&ev, buf, sizeof buf);
    assert_int_equal(n, (int)f->sb.size);
    assert_memory_equal(buf, f->sb.data, (size_t)n);
    assert_int_equal(cp_event_encode_to(&ev, buf, (size_t)n), n);
    assert_int_equal(cp_event_encode_to(&ev, buf, (size_t)n - 1), CP_ERR_TOOBIG);

    /* Appending: two events back to back in one buffer. */
    msgpack_sbuffer_clear(&f->sb);
    assert_int_equal(cp_event_encode(&ev, &f->sb), n);
    assert_int_equal(cp_event_encode(&ev, &f->sb), n);
    assert_int_equal(f->sb.size, 2 * (size_t)n);
    assert_memory_equal(f->sb.data, f->sb.data + n, (size_t)n);

    /* cp_event_equal notices a difference. */
    out.x[1].val = "😁";
    assert_false(cp_event_equal(&ev, &out));
}

static void test_roundtrip_minimal(void **state)
{
    struct fix *f = *state;
    struct cp_event ev, out;
    const char *why = NULL;
    minimal_event(&ev);
    encode(f, &ev);
    /* fixmap of 8: v event_id org pbx src call kind ts, nothing else. */
    assert_int_equal((unsigned char)f->sb.data[0], 0x88);
    assert_int_equal(decode_sb(f, &out, &why), 0);
    assert_true(cp_event_equal(&ev, &out));
    assert_null(out.leg);
    assert_null(out.parent);
    assert_null(out.from);
    assert_null(out.native);
    assert_int_equal(out.recv, 0);
    assert_int_equal(out.start, 0);
    assert_int_equal(out.dir, CP_DIR_UNKNOWN);
    assert_int_equal(out.disp, CP_DISP_UNKNOWN);
    assert_int_equal(out.qout, CP_QOUT_UNKNOWN);
    assert_int_equal(out.side, CP_SIDE_UNKNOWN);
    assert_int_equal(out.q850, 0);
    assert_int_equal(out.ring, -1);
    assert_int_equal(out.wait, -1);
    assert_int_equal(out.talk, -1);
    assert_int_equal(out.hold, -1);
    assert_int_equal(out.acw, -1);
    assert_int_equal(out.nx, 0);

    /* An empty optional string is present, not absent. */
    ev.wrapup = "";
    encode(f, &ev);
    assert_int_equal((unsigned char)f->sb.data[0], 0x89);
    assert_int_equal(decode_sb(f, &out, &why), 0);
    assert_non_null(out.wrapup);
    assert_string_equal(out.wrapup, "");
}

/* Sets string field `i` of the 16 string fields (x handled separately). */
static const char **str_field(struct cp_event *ev, unsigned i)
{
    const char **p[] = {&ev->event_id,  &ev->org,        &ev->pbx,      &ev->src,
                        &ev->call,      &ev->leg,        &ev->parent,   &ev->from,
                        &ev->from_name, &ev->to,         &ev->final_to, &ev->queue,
                        &ev->agent,     &ev->agent_name, &ev->wrapup,   &ev->native};
    return i < CP_ARRAY_LEN(p) ? p[i] : NULL;
}

static void test_max_lengths(void **state)
{
    struct fix *f = *state;
    struct cp_event ev, out;
    const char *why;
    char big[CP_EVENT_NATIVE_MAX + 2];
    for (unsigned i = 0; str_field(&ev, i); i++) {
        size_t max = i == 15 ? CP_EVENT_NATIVE_MAX : CP_EVENT_STR_MAX;
        memset(big, 'a', sizeof big);
        /* Multi-byte characters up to the bound: bytes are counted, not characters. */
        for (size_t k = 0; k + 2 <= max; k += 2)
            memcpy(big + k, "\xc3\xa9", 2);

        big[max] = '\0';
        full_event(&ev);
        *str_field(&ev, i) = big;
        assert_int_equal(cp_event_validate(&ev, &why), 0);
        encode(f, &ev);
        assert_int_equal(decode_sb(f, &out, &why), 0);
        assert_int_equal(strlen(*str_field(&out, i)), max);
        assert_true(cp_event_equal(&ev, &out));

        big[max] = 'a';
        big[max + 1] = '\0';
        assert_int_equal(cp_event_validate(&ev, &why), CP_ERR_TOOBIG);
        encode(f, &ev);
        assert_int_equal(decode_sb(f, &out, &why), CP_ERR_TOOBIG);
        assert_non_null(strstr(why, "too long"));
    }

    /* x keys and values. */
    memset(big, 'k', sizeof big);
    big[CP_EVENT_X_STR_MAX] = '\0';
    for (int which = 0; which < 2; which++) {
        full_event(&ev);
        if (which)
            ev.x[0].val = big;
        else
            ev.x[0].key = big;
        big[CP_EVENT_X_STR_MAX] = '\0';
        assert_int_equal(cp_event_validate(&ev, &why), 0);
        encode(f, &ev);
        assert_int_equal(decode_sb(f, &out, &why), 0);
        assert_true(cp_event_equal(&ev, &out));
        big[CP_EVENT_X_STR_MAX] = 'k';
        big[CP_EVENT_X_STR_MAX + 1] = '\0';
        assert_int_equal(cp_event_validate(&ev, &why), CP_ERR_TOOBIG);
        encode(f, &ev);
        assert_int_equal(decode_sb(f, &out, &why), CP_ERR_TOOBIG);
    }

    /* The largest valid event fits CP_EVENT_MSGPACK_MAX and CP_EVENT_JSON_MAX. */
    static char s[17][CP_EVENT_STR_MAX + 1];
    static char xs[2 * CP_EVENT_X_MAX][CP_EVENT_X_STR_MAX + 1];
    static char nat[CP_EVENT_NATIVE_MAX + 1];
    full_event(&ev);
    for (unsigned i = 0; i < 15; i++) {
        memset(s[i], '\x01', CP_EVENT_STR_MAX); /* worst case for JSON: \u0001 each */
        s[i][CP_EVENT_STR_MAX] = '\0';
        *str_field(&ev, i) = s[i];
    }
    memset(nat, '\x01', CP_EVENT_NATIVE_MAX);
    nat[CP_EVENT_NATIVE_MAX] = '\0';
    ev.native = nat;
    ev.nx = CP_EVENT_X_MAX;
    for (unsigned i = 0; i < 2 * CP_EVENT_X_MAX; i++) {
        memset(xs[i], '\x01', CP_EVENT_X_STR_MAX);
        xs[i][CP_EVENT_X_STR_MAX] = '\0';
        xs[i][0] = (char)('A' + i); /* distinct keys */
        if (i % 2 == 0)
            ev.x[i / 2].key = xs[i];
        else
            ev.x[i / 2].val = xs[i];
    }
    ev.ts = ev.recv = ev.start = ev.answer = ev.end = CP_EVENT_TIME_MAX;
    ev.ring = ev.wait = ev.talk = ev.hold = ev.acw = INT32_MAX;
    assert_int_equal(cp_event_validate(&ev, &why), 0);
    int n = encode(f, &ev);
    assert_true(n <= CP_EVENT_MSGPACK_MAX);
    assert_int_equal(decode_sb(f, &out, &why), 0);
    assert_true(cp_event_equal(&ev, &out));
    char *json = malloc(CP_EVENT_JSON_MAX);
    assert_true(cp_event_to_json(&ev, json, CP_EVENT_JSON_MAX) > 0);
    free(json);
}

static void test_x_pairs(void **state)
{
    struct fix *f = *state;
    struct cp_event ev, out;
    const char *why;
    char keys[CP_EVENT_X_MAX + 1][8];
    full_event(&ev);
    ev.nx = CP_EVENT_X_MAX;
    for (unsigned i = 0; i < CP_EVENT_X_MAX; i++) {
        snprintf(keys[i], sizeof keys[i], "k%u", i);
        ev.x[i] = (struct cp_kv){keys[i], "v"};
    }
    encode(f, &ev);
    assert_int_equal(decode_sb(f, &out, &why), 0);
    assert_int_equal(out.nx, CP_EVENT_X_MAX);
    assert_string_equal(out.x[15].key, "k15");

    /* 17 pairs, built by hand since the struct cannot hold them. */
    msgpack_sbuffer_clear(&f->sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &f->sb, msgpack_sbuffer_write);
    minimal_event(&ev);
    ev.x[0] = (struct cp_kv){"a", "b"};
    ev.nx = 1;
    encode(f, &ev);
    /* Replace the trailing "x" value (0x81 a1 'a' a1 'b', 5 bytes) with a map of 17. */
    f->sb.size -= 5;
    msgpack_pack_map(&pk, CP_EVENT_X_MAX + 1);
    for (unsigned i = 0; i <= CP_EVENT_X_MAX; i++) {
        snprintf(keys[0], sizeof keys[0], "k%u", i);
        msgpack_pack_str_with_body(&pk, keys[0], strlen(keys[0]));
        msgpack_pack_str_with_body(&pk, "v", 1);
    }
    assert_int_equal(decode_sb(f, &out, &why), CP_ERR_TOOBIG);
    assert_string_equal(why, "too many x pairs");
}

static void test_truncation(void **state)
{
    struct fix *f = *state;
    struct cp_event ev, out;
    full_event(&ev);
    int n = encode(f, &ev);
    char *copy = malloc((size_t)n);
    for (int len = 0; len < n; len++) {
        /* A fresh heap copy of exactly `len` bytes, so ASan sees any overread. */
        memcpy(copy, f->sb.data, (size_t)len);
        char *exact = malloc(len ? (size_t)len : 1);
        memcpy(exact, copy, (size_t)len);
        const char *why = NULL;
        cp_arena_reset(&f->arena);
        int rc = cp_event_decode(exact, (size_t)len, &f->arena, &out, &why);
        free(exact);
        assert_true(rc < 0);
        assert_non_null(why);
    }
    free(copy);
}

/* ---- hand-built msgpack ---- */

struct mp {
    msgpack_sbuffer sb;
    msgpack_packer pk;
};

static void mp_init(struct mp *m)
{
    msgpack_sbuffer_init(&m->sb);
    msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
}

static void mp_str(struct mp *m, const char *s)
{
    msgpack_pack_str_with_body(&m->pk, s, strlen(s));
}

static void mp_raw(struct mp *m, const void *b, size_t n)
{
    msgpack_sbuffer_write(&m->sb, b, n);
}

/* The 8 required fields except `omit`, in a map of that many plus `extra` entries. */
static void mp_base(struct mp *m, unsigned extra, const char *omit)
{
    static const char *req[] = {"v", "event_id", "org", "pbx", "src", "call", "kind", "ts"};
    unsigned n = 8 + extra;
    for (unsigned i = 0; i < 8; i++)
        if (omit && strcmp(omit, req[i]) == 0) n--;
    msgpack_pack_map(&m->pk, n);
    for (unsigned i = 0; i < 8; i++) {
        if (omit && strcmp(omit, req[i]) == 0) continue;
        mp_str(m, req[i]);
        if (i == 0)
            msgpack_pack_uint8(&m->pk, 1);
        else if (i == 6)
            mp_str(m, "answer");
        else if (i == 7)
            msgpack_pack_int64(&m->pk, T0);
        else
            mp_str(m, "id");
    }
}

static int mp_decode(struct fix *f, struct mp *m, struct cp_event *out, const char **why)
{
    cp_arena_reset(&f->arena);
    *why = NULL;
    int rc = cp_event_decode(m->sb.data, m->sb.size, &f->arena, out, why);
    if (rc < 0) assert_non_null(*why);
    msgpack_sbuffer_destroy(&m->sb);
    return rc;
}

static void test_hostile_headers(void **state)
{
    struct fix *f = *state;
    struct cp_event out;
    const char *why;
    struct {
        const char *bytes;
        size_t len;
        int rc;
    } cases[] = {
        {"", 0, CP_ERR_PARSE},
        {"\xc1", 1, CP_ERR_PARSE},
        {"\x80", 1, CP_ERR_MISSING},               /* empty map: no v */
        {"\x91\x01", 2, CP_ERR_TYPE},              /* array, not a map */
        {"\xa1v", 2, CP_ERR_TYPE},                 /* string, not a map */
        {"\xdd\x7f\xff\xff\xff", 5, CP_ERR_TYPE},  /* array32 of 2^31-1 */
        {"\xdf\x00\xff\xff\xff", 5, CP_ERR_PARSE}, /* map32 of 16M, no bytes */
        {"\xdf\xff\xff\xff\xff\xa1v\x01", 8, CP_ERR_PARSE},
        {"\xde\xff\xff", 3, CP_ERR_PARSE},
        {"\x81\xc1\x01", 3, CP_ERR_PARSE},  /* reserved tag as a key */
        {"\x81\x01\x01", 3, CP_ERR_TYPE},   /* int key */
        {"\x81\xa1v\xc1", 4, CP_ERR_PARSE}, /* reserved tag as v */
        {"\x81\xa1v\x02", 4, CP_ERR_VERSION},
        {"\x81\xa1v\xa1\x31", 5, CP_ERR_TYPE},         /* v as a string "1" */
        {"\x81\xdb\xff\xff\xff\xff", 6, CP_ERR_PARSE}, /* str32 key of 4 GiB */
    };
    for (unsigned i = 0; i < CP_ARRAY_LEN(cases); i++) {
        cp_arena_reset(&f->arena);
        why = NULL;
        int rc = cp_event_decode(cases[i].bytes, cases[i].len, &f->arena, &out, &why);
        if (rc != cases[i].rc)
            print_error("case %u: rc %d (%s), want %d\n", i, rc, why ? why : "-", cases[i].rc);
        assert_int_equal(rc, cases[i].rc);
        assert_non_null(why);
    }

    struct mp m;
    /* Unknown key whose value announces huge sizes. */
    static const char *huge[] = {"\xdd\x7f\xff\xff\xff", "\xdf\x00\xff\xff\xff",
                                 "\xdb\xff\xff\xff\xff", "\xc6\xff\xff\xff\xff",
                                 "\xc9\xff\xff\xff\xff"};
    for (unsigned i = 0; i < CP_ARRAY_LEN(huge); i++) {
        mp_init(&m);
        mp_base(&m, 1, NULL);
        mp_str(&m, "zz");
        mp_raw(&m, huge[i], 5);
        assert_int_equal(mp_decode(f, &m, &out, &why), CP_ERR_PARSE);
    }
    /* Known string field with a str32 header announcing 4 GiB. */
    mp_init(&m);
    mp_base(&m, 1, NULL);
    mp_str(&m, "from");
    mp_raw(&m,
           "\xdb\xff\xff\xff\xff"
           "abc",
           8);
    assert_int_equal(mp_decode(f, &m, &out, &why), CP_ERR_PARSE);
    /* x as a huge map. */
    mp_init(&m);
    mp_base(&m, 1, NULL);
    mp_str(&m, "x");
    mp_raw(&m, "\xdf\x00\xff\xff\xff", 5);
    assert_int_equal(mp_decode(f, &m, &out, &why), CP_ERR_PARSE);
    /* Trailing bytes. */
    mp_init(&m);
    mp_base(&m, 0, NULL);
    mp_raw(&m, "\xc0", 1);
    assert_int_equal(mp_decode(f, &m, &out, &why), CP_ERR_PARSE);
    assert_string_equal(why, "trailing bytes after the event");
}

static void test_unknown_keys_ignored(void **state)
{
    struct fix *f = *state;
    struct cp_event out;
    const char *why;
    struct mp m;

    /* Deeply nested maps and arrays under an unknown key cost no stack. */
    enum { DEPTH = 100000 };
    mp_init(&m);
    mp_base(&m, 3, NULL);
    mp_str(&m, "future");
    for (int i = 0; i < DEPTH; i++) {
        msgpack_pack_map(&m.pk, 1);
        mp_str(&m, "a");
        msgpack_pack_array(&m.pk, 1);
    }
    msgpack_pack_nil(&m.pk);
    mp_str(&m, "other");
    msgpack_pack_array(&m.pk, 6);
    msgpack_pack_double(&m.pk, 1.5);
    msgpack_pack_true(&m.pk);
    msgpack_pack_bin_with_body(&m.pk, "\x00\x01", 2);
    msgpack_pack_ext_with_body(&m.pk, "abcd", 4, 7);
    msgpack_pack_int64(&m.pk, -5000000000);
    msgpack_pack_float(&m.pk, 2.0f);
    mp_str(&m, "queue");
    mp_str(&m, "sales");
    assert_int_equal(mp_decode(f, &m, &out, &why), 0);
    assert_string_equal(out.queue, "sales");
    assert_string_equal(out.org, "id");
    assert_int_equal(out.kind, CP_KIND_ANSWER);

    /* The same nesting, one byte short: rejected, no crash. */
    mp_init(&m);
    mp_base(&m, 1, NULL);
    mp_str(&m, "future");
    for (int i = 0; i < DEPTH; i++) {
        msgpack_pack_map(&m.pk, 1);
        mp_str(&m, "a");
    }
    assert_int_equal(mp_decode(f, &m, &out, &why), CP_ERR_PARSE);

    /* nil is "absent" for optional fields, "missing" for required ones. */
    mp_init(&m);
    mp_base(&m, 3, NULL);
    mp_str(&m, "leg");
    msgpack_pack_nil(&m.pk);
    mp_str(&m, "ring");
    msgpack_pack_nil(&m.pk);
    mp_str(&m, "x");
    msgpack_pack_nil(&m.pk);
    assert_int_equal(mp_decode(f, &m, &out, &why), 0);
    assert_null(out.leg);
    assert_int_equal(out.ring, -1);
    mp_init(&m);
    mp_base(&m, 1, "org");
    mp_str(&m, "org");
    msgpack_pack_nil(&m.pk);
    assert_int_equal(mp_decode(f, &m, &out, &why), CP_ERR_MISSING);
    assert_string_equal(why, "missing required field org");
}

/* Each known key with a value of a wrong msgpack type. */
static void test_wrong_types(void **state)
{
    struct fix *f = *state;
    struct cp_event out;
    const char *why;
    static const char *keys[] = {
        "v",          "event_id", "org",       "pbx",    "src",      "call",   "leg",
        "parent",     "kind",     "ts",        "recv",   "start",    "answer", "end",
        "dir",        "from",     "from_name", "to",     "final_to", "queue",  "agent",
        "agent_name", "disp",     "qout",      "wrapup", "side",     "q850",   "native",
        "ring",       "wait",     "talk",      "hold",   "acw",      "x"};
    static const char *ints[] = {"v",    "ts",   "recv", "start", "answer", "end",
                                 "q850", "ring", "wait", "talk",  "hold",   "acw"};
    for (unsigned i = 0; i < CP_ARRAY_LEN(keys); i++) {
        bool is_int = false;
        for (unsigned j = 0; j < CP_ARRAY_LEN(ints); j++)
            is_int |= strcmp(keys[i], ints[j]) == 0;
        /* Three wrong values per key: the "other" scalar, a bool, an array. */
        for (int variant = 0; variant < 3; variant++) {
            struct mp m;
            mp_init(&m);
            mp_base(&m, 1, keys[i]);
            mp_str(&m, keys[i]);
            if (variant == 0) {
                if (is_int)
                    mp_str(&m, "5");
                else
                    msgpack_pack_int(&m.pk, 5); /* an int where a string is expected */
            } else if (variant == 1) {
                msgpack_pack_true(&m.pk);
            } else {
                msgpack_pack_array(&m.pk, 1);
                mp_str(&m, "a");
            }
            int rc = mp_decode(f, &m, &out, &why);
            if (rc != CP_ERR_TYPE)
                print_error("key %s variant %d: rc %d (%s)\n", keys[i], variant, rc, why);
            assert_int_equal(rc, CP_ERR_TYPE);
            if (strcmp(keys[i], "x") != 0) {
                char want[64];
                snprintf(want, sizeof want, "wrong type for field %s", keys[i]);
                assert_string_equal(why, want);
            }
        }
    }
    /* Floats are not integers. */
    struct mp m;
    mp_init(&m);
    mp_base(&m, 1, "ts");
    mp_str(&m, "ts");
    msgpack_pack_double(&m.pk, 1764064800.0);
    assert_int_equal(mp_decode(f, &m, &out, &why), CP_ERR_TYPE);
    /* x values must be strings too. */
    mp_init(&m);
    mp_base(&m, 1, NULL);
    mp_str(&m, "x");
    msgpack_pack_map(&m.pk, 1);
    mp_str(&m, "k");
    msgpack_pack_int(&m.pk, 1);
    assert_int_equal(mp_decode(f, &m, &out, &why), CP_ERR_TYPE);
}

static void test_ranges(void **state)
{
    struct fix *f = *state;
    struct cp_event out;
    const char *why;
    struct {
        const char *key;
        int64_t val;
        int rc;
    } cases[] = {
        {"ring", -1, 0},
        {"ring", -2, CP_ERR_RANGE},
        {"acw", INT32_MAX, 0},
        {"acw", (int64_t)INT32_MAX + 1, CP_ERR_RANGE},
        {"wait", INT64_MIN, CP_ERR_RANGE},
        {"q850", 127, 0},
        {"q850", 128, CP_ERR_RANGE},
        {"q850", -1, CP_ERR_RANGE},
        {"recv", -1, CP_ERR_RANGE},
        {"recv", CP_EVENT_TIME_MAX, 0},
        {"end", CP_EVENT_TIME_MAX + 1, CP_ERR_RANGE},
    };
    for (unsigned i = 0; i < CP_ARRAY_LEN(cases); i++) {
        struct mp m;
        mp_init(&m);
        mp_base(&m, 1, NULL);
        mp_str(&m, cases[i].key);
        msgpack_pack_int64(&m.pk, cases[i].val);
        int rc = mp_decode(f, &m, &out, &why);
        if (rc != cases[i].rc)
            print_error("case %u (%s): rc %d (%s)\n", i, cases[i].key, rc, why ? why : "-");
        assert_int_equal(rc, cases[i].rc);
    }
    struct mp m;
    /* uint64 above INT64_MAX. */
    mp_init(&m);
    mp_base(&m, 1, "ts");
    mp_str(&m, "ts");
    msgpack_pack_uint64(&m.pk, UINT64_MAX);
    assert_int_equal(mp_decode(f, &m, &out, &why), CP_ERR_RANGE);
    assert_string_equal(why, "field ts out of range");
    /* ts 0 is "missing". */
    mp_init(&m);
    mp_base(&m, 1, "ts");
    mp_str(&m, "ts");
    msgpack_pack_int(&m.pk, 0);
    assert_int_equal(mp_decode(f, &m, &out, &why), CP_ERR_MISSING);
    /* Unknown enum names. */
    static const char *enums[] = {"kind", "dir", "disp", "qout", "side"};
    for (unsigned i = 0; i < CP_ARRAY_LEN(enums); i++) {
        mp_init(&m);
        mp_base(&m, 1, enums[i]);
        mp_str(&m, enums[i]);
        mp_str(&m, "teleported");
        assert_int_equal(mp_decode(f, &m, &out, &why), CP_ERR_RANGE);
    }
    /* Every integer encoding is accepted for an integer field. */
    mp_init(&m);
    mp_base(&m, 5, NULL);
    mp_str(&m, "ring");
    mp_raw(&m, "\xcc\x05", 2); /* uint8 */
    mp_str(&m, "wait");
    mp_raw(&m, "\xd3\x00\x00\x00\x00\x00\x00\x00\x07", 9); /* int64 */
    mp_str(&m, "talk");
    mp_raw(&m, "\xd1\xff\xff", 3); /* int16 -1 */
    mp_str(&m, "hold");
    mp_raw(&m, "\xff", 1); /* negative fixint -1 */
    mp_str(&m, "acw");
    mp_raw(&m, "\xce\x00\x01\x00\x00", 5); /* uint32 65536 */
    assert_int_equal(mp_decode(f, &m, &out, &why), 0);
    assert_int_equal(out.ring, 5);
    assert_int_equal(out.wait, 7);
    assert_int_equal(out.talk, -1);
    assert_int_equal(out.hold, -1);
    assert_int_equal(out.acw, 65536);
}

static void test_versions(void **state)
{
    struct fix *f = *state;
    struct cp_event out;
    const char *why;
    struct mp m;
    /* v = 2 first. */
    mp_init(&m);
    msgpack_pack_map(&m.pk, 2);
    mp_str(&m, "v");
    msgpack_pack_int(&m.pk, 2);
    mp_str(&m, "org");
    mp_str(&m, "acme");
    assert_int_equal(mp_decode(f, &m, &out, &why), CP_ERR_VERSION);
    assert_string_equal(why, "unsupported schema version v");
    /* v = 2 last, after a field that v1 finds malformed: still a version error. */
    mp_init(&m);
    msgpack_pack_map(&m.pk, 2);
    mp_str(&m, "ts");
    mp_str(&m, "yesterday");
    mp_str(&m, "v");
    msgpack_pack_int(&m.pk, 2);
    assert_int_equal(mp_decode(f, &m, &out, &why), CP_ERR_VERSION);
    /* v = 0 and a huge v. */
    mp_init(&m);
    mp_base(&m, 0, "v");
    assert_int_equal(mp_decode(f, &m, &out, &why), CP_ERR_MISSING);
    assert_string_equal(why, "missing required field v");
    mp_init(&m);
    msgpack_pack_map(&m.pk, 1);
    mp_str(&m, "v");
    msgpack_pack_uint64(&m.pk, (uint64_t)1 << 32 | 1);
    assert_int_equal(mp_decode(f, &m, &out, &why), CP_ERR_VERSION);
}

static void test_bad_strings(void **state)
{
    struct fix *f = *state;
    struct cp_event out;
    const char *why;
    static const struct {
        const char *b;
        size_t n;
    } bad[] = {
        {"\xc0\xaf", 2},     /* overlong '/' */
        {"\xed\xa0\x80", 3}, /* UTF-16 surrogate U+D800 */
        {"ab\0cd", 5},       /* NUL */
        {"\xff", 1},
        {"\xe5\xb1\xb1\xe7", 4}, /* truncated sequence */
        {"\xf4\x90\x80\x80", 4}, /* above U+10FFFF */
    };
    static const char *keys[] = {"from_name", "agent_name", "event_id", "native"};
    for (unsigned i = 0; i < CP_ARRAY_LEN(bad); i++) {
        for (unsigned k = 0; k < CP_ARRAY_LEN(keys); k++) {
            struct mp m;
            mp_init(&m);
            mp_base(&m, 1, keys[k]);
            mp_str(&m, keys[k]);
            msgpack_pack_str_with_body(&m.pk, bad[i].b, bad[i].n);
            assert_int_equal(mp_decode(f, &m, &out, &why), CP_ERR_UTF8);
        }
        /* In x keys and values. */
        for (int which = 0; which < 2; which++) {
            struct mp m;
            mp_init(&m);
            mp_base(&m, 1, NULL);
            mp_str(&m, "x");
            msgpack_pack_map(&m.pk, 1);
            if (which) mp_str(&m, "k");
            msgpack_pack_str_with_body(&m.pk, bad[i].b, bad[i].n);
            if (!which) mp_str(&m, "v");
            assert_int_equal(mp_decode(f, &m, &out, &why), CP_ERR_UTF8);
        }
    }
}

static void test_duplicates(void **state)
{
    struct fix *f = *state;
    struct cp_event out;
    const char *why;
    struct mp m;
    mp_init(&m);
    mp_base(&m, 1, NULL);
    mp_str(&m, "org");
    mp_str(&m, "evil");
    assert_int_equal(mp_decode(f, &m, &out, &why), CP_ERR_PARSE);
    assert_string_equal(why, "duplicate key org");
    mp_init(&m);
    mp_base(&m, 2, NULL);
    mp_str(&m, "ring");
    msgpack_pack_int(&m.pk, 1);
    mp_str(&m, "ring");
    msgpack_pack_nil(&m.pk); /* even a nil repeat */
    assert_int_equal(mp_decode(f, &m, &out, &why), CP_ERR_PARSE);
    mp_init(&m);
    mp_base(&m, 1, NULL);
    mp_str(&m, "x");
    msgpack_pack_map(&m.pk, 2);
    mp_str(&m, "k");
    mp_str(&m, "1");
    mp_str(&m, "k");
    mp_str(&m, "2");
    assert_int_equal(mp_decode(f, &m, &out, &why), CP_ERR_PARSE);
    assert_string_equal(why, "duplicate x key");
}

static void test_json(void **state)
{
    char buf[4096];
    struct cp_event ev;

    minimal_event(&ev);
    int n = cp_event_to_json(&ev, buf, sizeof buf);
    const char *want_min = "{\"v\":1,\"event_id\":\"e1\",\"org\":\"acme\",\"pbx\":\"eu-1\","
                           "\"src\":\"callpipe-json\",\"call\":\"c1\",\"kind\":\"call_start\","
                           "\"ts\":\"2025-11-25T10:00:00.000000Z\"}";
    assert_string_equal(buf, want_min);
    assert_int_equal(n, (int)strlen(want_min));

    full_event(&ev);
    n = cp_event_to_json(&ev, buf, sizeof buf);
    const char *want_full =
        "{\"v\":1,\"event_id\":\"01JDQ8Z6X0000000000000000A\",\"org\":\"acme\",\"pbx\":\"eu-1\","
        "\"src\":\"asterisk-ami\",\"call\":\"1764064800.42\",\"leg\":\"SIP/100-00000001\","
        "\"parent\":\"1764064800.41\",\"kind\":\"cdr\",\"ts\":\"2025-11-25T10:00:00.123456Z\","
        "\"recv\":\"2025-11-25T10:00:00.200000Z\",\"start\":\"2025-11-25T10:00:00.000000Z\","
        "\"answer\":\"2025-11-25T10:00:05.000000Z\",\"end\":\"2025-11-25T10:01:05.000000Z\","
        "\"dir\":\"inbound\",\"from\":\"+4930123456\",\"from_name\":\"Zoë Ünal\","
        "\"to\":\"+498001234\",\"final_to\":\"100\",\"queue\":\"support\","
        "\"agent\":\"agent/100\",\"agent_name\":\"山田太郎\",\"disp\":\"answered\","
        "\"qout\":\"answered\",\"wrapup\":\"sale\",\"side\":\"caller\",\"q850\":16,"
        "\"native\":\"ANSWERED\",\"ring\":5,\"wait\":3,\"talk\":60,\"hold\":0,\"acw\":30,"
        "\"x\":{\"uniqueid\":\"1764064800.42\",\"mood\":\"😀\"}}";
    assert_string_equal(buf, want_full);
    assert_int_equal(n, (int)strlen(want_full));

    /* Escaping: quote, backslash, the short forms, other controls as \u00XX, DEL raw. */
    minimal_event(&ev);
    ev.kind = CP_KIND_QUEUE_LEAVE;
    ev.from_name = "O\"Brien \\ Sons";
    ev.native = "a\nb\tc\rd\be\ff\x01g\x1fh\x7f";
    ev.qout = CP_QOUT_KEY_EXIT;
    ev.wait = 12;
    ev.nx = 1;
    ev.x[0] = (struct cp_kv){"k\"", "\x02"};
    n = cp_event_to_json(&ev, buf, sizeof buf);
    const char *want_esc =
        "{\"v\":1,\"event_id\":\"e1\",\"org\":\"acme\",\"pbx\":\"eu-1\","
        "\"src\":\"callpipe-json\",\"call\":\"c1\",\"kind\":\"queue_leave\","
        "\"ts\":\"2025-11-25T10:00:00.000000Z\",\"from_name\":\"O\\\"Brien \\\\ Sons\","
        "\"qout\":\"key_exit\",\"native\":\"a\\nb\\tc\\rd\\be\\ff\\u0001g\\u001fh\x7f\","
        "\"wait\":12,\"x\":{\"k\\\"\":\"\\u0002\"}}";
    assert_string_equal(buf, want_esc);
    assert_int_equal(n, (int)strlen(want_esc));

    /* Too small: an error and an empty string, never a truncated line. */
    assert_int_equal(cp_event_to_json(&ev, buf, (size_t)n), CP_ERR_TOOBIG);
    assert_string_equal(buf, "");
    assert_int_equal(cp_event_to_json(&ev, buf, (size_t)n + 1), n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enum_names),
        cmocka_unit_test(test_init_and_validate),
        cmocka_unit_test_setup_teardown(test_roundtrip_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip_minimal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_lengths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_x_pairs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_keys_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
