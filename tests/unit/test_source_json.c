/* test_source_json.c - golden cases of the callpipe-json source plus its contract tests. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cp_arena.h"
#include "cp_err.h"
#include "cp_event.h"
#include "cp_event_id.h"
#include "cp_utf8.h"
#include "../../ingest/sources/json/json.h"

#define RECV_US INT64_C(1764064900000000) /* 2025-11-25T10:01:40Z */
#define MAX_CASES 256

/* ---- a collecting emitter ---------------------------------------------------- */

struct collect {
    struct cp_emit emit;
    char *events; /* rendered events, one per line */
    size_t elen, ecap;
    char *rejects; /* "reject index=.. reason=.." lines */
    size_t rlen, rcap;
    int fail_event_at; /* >0: the n-th event call fails */
    int nevents;
    /* raw bytes of the last reject, for boundary checks */
    char last_raw[256];
    size_t last_raw_len;
};

static void append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *buf = realloc(*buf, *cap);
        assert_non_null(*buf);
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static int on_event(struct cp_emit *out, struct cp_event *ev)
{
    struct collect *c = out->user;
    c->nevents++;
    if (c->fail_event_at && c->nevents == c->fail_event_at)
        return CP_ERR_FULL;
    const char *why = NULL;
    assert_int_equal(cp_event_validate(ev, &why), 0);
    static char line[CP_EVENT_JSON_MAX];
    int n = cp_event_to_json(ev, line, sizeof line);
    assert_true(n > 0);
    append(&c->events, &c->elen, &c->ecap, line, (size_t)n);
    append(&c->events, &c->elen, &c->ecap, "\n", 1);
    return 0;
}

static void on_reject(struct cp_emit *out, uint32_t index, const char *rec, size_t len,
                      const char *reason)
{
    struct collect *c = out->user;
    char line[256];
    int n = snprintf(line, sizeof line, "reject index=%u reason=%s\n", index, reason);
    append(&c->rejects, &c->rlen, &c->rcap, line, (size_t)n);
    c->last_raw_len = len < sizeof c->last_raw ? len : sizeof c->last_raw - 1;
    memcpy(c->last_raw, rec, c->last_raw_len);
    c->last_raw[c->last_raw_len] = '\0';
}

static void collect_init(struct collect *c)
{
    memset(c, 0, sizeof *c);
    c->emit.event = on_event;
    c->emit.reject = on_reject;
    c->emit.user = c;
}

static void collect_free(struct collect *c)
{
    free(c->events);
    free(c->rejects);
}

static int run_parse(struct collect *c, struct cp_arena *arena, const char *tz, const char *rec,
                     size_t len)
{
    struct cp_source_ctx ctx = {
        .org = "acme", .pbx = "pbx-1", .tz = tz, .recv_us = RECV_US, .arena = arena};
    return cp_source_json.parse(NULL, &ctx, rec, len, &c->emit);
}

/* ---- files ------------------------------------------------------------------- */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    buf = realloc(buf, n + 1);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static const char *golden_dir(void)
{
    static char dir[4096];
    const char *root = getenv("CALLPIPE_ROOT");
    snprintf(dir, sizeof dir, "%s/tests/golden/json", root && *root ? root : ".");
    return dir;
}

/* ---- golden cases -------------------------------------------------------------- */

static void golden_case(void **state)
{
    const char *name = *state; /* "01_minimal" */
    char path[4200];
    size_t inlen, outlen, tzlen;

    snprintf(path, sizeof path, "%s/%s.in", golden_dir(), name);
    char *in = read_file(path, &inlen);
    assert_non_null(in);
    snprintf(path, sizeof path, "%s/%s.tz", golden_dir(), name);
    char *tz = read_file(path, &tzlen);
    if (tz)
        tz[strcspn(tz, "\r\n")] = '\0';

    struct cp_arena arena;
    cp_arena_init(&arena, 4096, 0);
    struct collect c;
    collect_init(&c);
    int rc = run_parse(&c, &arena, tz, in, inlen);

    /* events, then rejects, then the parse result */
    char *got = NULL;
    size_t glen = 0, gcap = 0;
    if (c.events)
        append(&got, &glen, &gcap, c.events, c.elen);
    if (c.rejects)
        append(&got, &glen, &gcap, c.rejects, c.rlen);
    char tail[64];
    int n = rc >= 0 ? snprintf(tail, sizeof tail, "rc=%d\n", rc)
                    : snprintf(tail, sizeof tail, "rc=%s\n", cp_err_name(rc));
    append(&got, &glen, &gcap, tail, (size_t)n);

    snprintf(path, sizeof path, "%s/%s.out", golden_dir(), name);
    const char *update = getenv("UPDATE_GOLDEN");
    if (update && *update == '1') {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(got, 1, glen, f), glen);
        fclose(f);
    }
    char *want = read_file(path, &outlen);
    if (!want)
        fail_msg("missing %s (run with UPDATE_GOLDEN=1 and review it)", path);
    if (outlen != glen || memcmp(want, got, glen) != 0) {
        print_error("--- want %s\n%s--- got\n%s", path, want, got);
        fail_msg("golden mismatch: %s", name);
    }
    free(want);
    free(got);
    free(in);
    free(tz);
    collect_free(&c);
    cp_arena_destroy(&arena);
}

/* ---- contract tests -------------------------------------------------------------- */

#define T0 "1764064800000000"

/* An array element is rejected with exactly its own bytes. */
static void array_reject_carries_element_bytes(void **state)
{
    (void)state;
    const char *body = "[ {\"call\":\"a\",\"kind\":\"ringing\",\"ts\":" T0 "} ,"
                       " {\"call\":\"b\",\"kind\":\"nope\",\"ts\":1}  , 7 ]";
    struct cp_arena arena;
    cp_arena_init(&arena, 4096, 0);
    struct collect c;
    collect_init(&c);
    assert_int_equal(run_parse(&c, &arena, NULL, body, strlen(body)), 1);
    assert_string_equal(c.rejects, "reject index=1 reason=bad value: kind\n"
                                   "reject index=2 reason=not an object\n");
    assert_string_equal(c.last_raw, "7");

    collect_free(&c);
    collect_init(&c);
    const char *one = "[{\"call\":\"b\",\"kind\":\"nope\",\"ts\":1}]";
    assert_int_equal(run_parse(&c, &arena, NULL, one, strlen(one)), CP_ERR_PARSE);
    assert_string_equal(c.last_raw, "{\"call\":\"b\",\"kind\":\"nope\",\"ts\":1}");
    collect_free(&c);
    cp_arena_destroy(&arena);
}

/* A failing emitter stops the parse with its own code, and no reject is invented. */
static void emitter_failure_aborts(void **state)
{
    (void)state;
    const char *body = "{\"call\":\"a\",\"kind\":\"ringing\",\"ts\":" T0 "}\n"
                       "{\"call\":\"b\",\"kind\":\"ringing\",\"ts\":" T0 "}\n"
                       "{\"call\":\"c\",\"kind\":\"ringing\",\"ts\":" T0 "}\n";
    struct cp_arena arena;
    cp_arena_init(&arena, 4096, 0);
    struct collect c;
    collect_init(&c);
    c.fail_event_at = 2;
    assert_int_equal(run_parse(&c, &arena, NULL, body, strlen(body)), CP_ERR_FULL);
    assert_int_equal(c.nevents, 2);
    assert_null(c.rejects);
    collect_free(&c);

    const char *arr = "[{\"call\":\"a\",\"kind\":\"ringing\",\"ts\":" T0 "},"
                      "{\"call\":\"b\",\"kind\":\"ringing\",\"ts\":" T0 "}]";
    collect_init(&c);
    c.fail_event_at = 1;
    assert_int_equal(run_parse(&c, &arena, NULL, arr, strlen(arr)), CP_ERR_FULL);
    assert_int_equal(c.nevents, 1);
    collect_free(&c);
    cp_arena_destroy(&arena);
}

/* An arena at its limit turns into CP_ERR_NOMEM, never a crash or a partial event. */
static void arena_limit_is_nomem(void **state)
{
    (void)state;
    const char *rec = "{\"call\":\"a\",\"kind\":\"ringing\",\"ts\":" T0 ",\"from\":\"+1\"}";
    struct cp_arena arena;
    cp_arena_init(&arena, 64, 8);
    struct collect c;
    collect_init(&c);
    assert_int_equal(run_parse(&c, &arena, NULL, rec, strlen(rec)), CP_ERR_NOMEM);
    assert_int_equal(c.nevents, 0);
    assert_string_equal(c.rejects, "reject index=0 reason=out of memory\n");
    collect_free(&c);
    cp_arena_destroy(&arena);
}

static void blank_record_is_nothing(void **state)
{
    (void)state;
    struct cp_arena arena;
    cp_arena_init(&arena, 4096, 0);
    struct collect c;
    collect_init(&c);
    assert_int_equal(run_parse(&c, &arena, NULL, " \r\n\t", 4), 0);
    assert_int_equal(run_parse(&c, &arena, NULL, "", 0), 0);
    assert_null(c.rejects);
    collect_free(&c);
    cp_arena_destroy(&arena);
}

static const char *derive(struct cp_arena *arena, const char *org, const char *const *ids,
                          size_t n, enum cp_kind kind, int64_t ts)
{
    struct cp_event ev;
    cp_event_init(&ev);
    ev.org = org;
    ev.pbx = "pbx-1";
    ev.src = "callpipe-json";
    ev.kind = kind;
    ev.ts = ts;
    assert_int_equal(cp_event_derive_id(&ev, arena, ids, n), 0);
    assert_int_equal(strlen(ev.event_id), CP_EVENT_ID_LEN);
    return ev.event_id;
}

/* Length prefixes keep ids apart that plain concatenation would merge. */
static void derive_id_is_unambiguous(void **state)
{
    (void)state;
    struct cp_arena arena;
    cp_arena_init(&arena, 4096, 0);
    const char *ab_c[] = {"ab", "c"}, *a_bc[] = {"a", "bc"};
    const char *with_null[] = {"a", NULL}, *with_empty[] = {"a", ""};
    const char *id1 = derive(&arena, "acme", ab_c, 2, CP_KIND_ANSWER, 1);
    assert_string_equal(id1, derive(&arena, "acme", ab_c, 2, CP_KIND_ANSWER, 1));
    assert_string_not_equal(id1, derive(&arena, "acme", a_bc, 2, CP_KIND_ANSWER, 1));
    assert_string_not_equal(id1, derive(&arena, "acm", ab_c, 2, CP_KIND_ANSWER, 1));
    assert_string_not_equal(id1, derive(&arena, "acme", ab_c, 2, CP_KIND_HOLD, 1));
    assert_string_not_equal(id1, derive(&arena, "acme", ab_c, 2, CP_KIND_ANSWER, 2));
    assert_string_not_equal(derive(&arena, "acme", with_null, 2, CP_KIND_ANSWER, 1),
                            derive(&arena, "acme", with_empty, 2, CP_KIND_ANSWER, 1));
    assert_string_not_equal(derive(&arena, "acme", with_null, 1, CP_KIND_ANSWER, 1),
                            derive(&arena, "acme", with_null, 2, CP_KIND_ANSWER, 1));
    /* a long native id takes the streamed path and still hashes deterministically */
    static char big[CP_EVENT_NATIVE_MAX + 1];
    memset(big, 'z', CP_EVENT_NATIVE_MAX);
    const char *bigs[] = {big, big, big, big, big};
    const char *idb = derive(&arena, "acme", bigs, 5, CP_KIND_ANSWER, 1);
    assert_string_equal(idb, derive(&arena, "acme", bigs, 5, CP_KIND_ANSWER, 1));

    struct cp_event ev;
    cp_event_init(&ev);
    ev.kind = CP_KIND_ANSWER;
    assert_int_equal(cp_event_derive_id(&ev, &arena, NULL, 0), CP_ERR_INVAL);
    cp_arena_destroy(&arena);
}

/* ---- main: one cmocka test per golden case, then the contract tests -------------- */

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
    static char *names[MAX_CASES];
    size_t n = 0;
    DIR *d = opendir(golden_dir());
    if (!d) {
        fprintf(stderr, "could not open %s: %s\n", golden_dir(), strerror(errno));
        return 1;
    }
    struct dirent *e;
    while ((e = readdir(d)) && n < MAX_CASES) {
        size_t l = strlen(e->d_name);
        if (l > 3 && strcmp(e->d_name + l - 3, ".in") == 0)
            names[n++] = strndup(e->d_name, l - 3);
    }
    closedir(d);
    qsort(names, n, sizeof names[0], by_name);
    if (n < 20) {
        fprintf(stderr, "only %zu golden cases in %s\n", n, golden_dir());
        return 1;
    }

    static struct CMUnitTest tests[MAX_CASES + 8];
    size_t t = 0;
    for (size_t i = 0; i < n; i++)
        tests[t++] = (struct CMUnitTest){names[i], golden_case, NULL, NULL, names[i]};
    const struct CMUnitTest extra[] = {
        cmocka_unit_test(array_reject_carries_element_bytes),
        cmocka_unit_test(emitter_failure_aborts),
        cmocka_unit_test(arena_limit_is_nomem),
        cmocka_unit_test(blank_record_is_nothing),
        cmocka_unit_test(derive_id_is_unambiguous),
    };
    for (size_t i = 0; i < CP_ARRAY_LEN(extra); i++)
        tests[t++] = extra[i];
    int failed = _cmocka_run_group_tests("source_json", tests, t, NULL, NULL);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    return failed;
}
