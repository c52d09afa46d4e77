/* golden.c - the shared golden-file runner for source-format tests. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cp_err.h"
#include "cp_event.h"
#include "golden.h"

struct text {
    char *p;
    size_t len, cap;
};

static void put(struct text *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->p = realloc(t->p, t->cap);
        assert_non_null(t->p);
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

struct collect {
    struct cp_emit emit;
    struct text out;
};

static int on_event(struct cp_emit *e, struct cp_event *ev)
{
    struct collect *c = e->user;
    const char *why = NULL;
    if (cp_event_validate(ev, &why) != 0)
        fail_msg("parser emitted an invalid event: %s", why ? why : "?");
    static char line[CP_EVENT_JSON_MAX];
    int n = cp_event_to_json(ev, line, sizeof line);
    assert_true(n > 0);
    put(&c->out, line, (size_t)n);
    put(&c->out, "\n", 1);
    return 0;
}

static void on_reject(struct cp_emit *e, uint32_t index, const char *rec, size_t len,
                      const char *reason)
{
    struct collect *c = e->user;
    char line[512];
    int n = snprintf(line, sizeof line, "reject index=%u reason=%s\n", index, reason);
    put(&c->out, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct text t = {0};
    char buf[65536];
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, f)) > 0)
        put(&t, buf, r);
    fclose(f);
    if (!t.p)
        put(&t, "", 0);
    *len = t.len;
    return t.p;
}

const char *cp_golden_dir(const char *sub)
{
    static char dir[4096];
    const char *root = getenv("CALLPIPE_ROOT");
    snprintf(dir, sizeof dir, "%s/tests/golden/%s", root && *root ? root : ".", sub);
    return dir;
}

static void feed(const struct cp_source_format *fmt, void *state, struct cp_source_ctx *ctx,
                 struct collect *c, const char *rec, size_t len)
{
    int rc = fmt->parse(state, ctx, rec, len, &c->emit);
    char tail[64];
    int n = rc >= 0 ? snprintf(tail, sizeof tail, "rc=%d\n", rc)
                    : snprintf(tail, sizeof tail, "rc=%s\n", cp_err_name(rc));
    put(&c->out, tail, (size_t)n);
    cp_arena_reset(ctx->arena);
}

void cp_golden_case(const struct cp_source_format *fmt, const char *dir, const char *name,
                    enum cp_golden_mode mode)
{
    char path[4300];
    size_t inlen, tzlen, wantlen;
    snprintf(path, sizeof path, "%s/%s.in", dir, name);
    char *in = read_file(path, &inlen);
    if (!in)
        fail_msg("cannot read %s", path);
    snprintf(path, sizeof path, "%s/%s.tz", dir, name);
    char *tz = read_file(path, &tzlen);
    if (tz)
        tz[strcspn(tz, "\r\n")] = '\0';

    struct cp_arena arena;
    cp_arena_init(&arena, 4096, 0);
    struct cp_source_ctx ctx = {
        .org = "acme", .pbx = "pbx-1", .tz = tz, .recv_us = CP_GOLDEN_RECV_US, .arena = &arena};
    struct collect c = {{on_event, on_reject, NULL}, {0}};
    c.emit.user = &c;
    void *state = fmt->state_create ? fmt->state_create() : NULL;

    if (mode == CP_GOLDEN_WHOLE) {
        feed(fmt, state, &ctx, &c, in, inlen);
    } else if (mode == CP_GOLDEN_LINES) {
        for (size_t i = 0; i < inlen;) {
            const char *nl = memchr(in + i, '\n', inlen - i);
            size_t n = nl ? (size_t)(nl - (in + i)) : inlen - i;
            size_t rl = n && in[i + n - 1] == '\r' ? n - 1 : n;
            if (rl)
                feed(fmt, state, &ctx, &c, in + i, rl);
            i += n + 1;
        }
    } else if (mode == CP_GOLDEN_BLOCKS) {
        size_t start = 0;
        for (size_t i = 0; i <= inlen;) {
            const char *nl = i < inlen ? memchr(in + i, '\n', inlen - i) : NULL;
            size_t n = nl ? (size_t)(nl - (in + i)) : inlen - i;
            bool sep = n >= 2 && memcmp(in + i, "%%", 2) == 0 && (n == 2 || in[i + 2] == '\r');
            if (sep || i + n >= inlen) {
                size_t end = sep ? i : inlen;
                if (end > start)
                    feed(fmt, state, &ctx, &c, in + start, end - start);
                start = i + n + 1;
            }
            i += n + 1;
        }
    } else {
        assert_non_null(fmt->frame);
        size_t off = 0;
        while (off < inlen) {
            long r = fmt->frame(state, in + off, inlen - off);
            if (r == 0)
                break; /* an incomplete tail: not a record */
            if (r < 0) {
                put(&c.out, "frame error\n", 12);
                const char *nl = memchr(in + off, '\n', inlen - off);
                off = nl ? (size_t)(nl - in) + 1 : inlen;
                continue;
            }
            feed(fmt, state, &ctx, &c, in + off, (size_t)r);
            off += (size_t)r;
        }
    }
    if (fmt->state_destroy)
        fmt->state_destroy(state);

    snprintf(path, sizeof path, "%s/%s.out", dir, name);
    const char *update = getenv("UPDATE_GOLDEN");
    if (update && *update == '1') {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(c.out.p ? c.out.p : "", 1, c.out.len, f), c.out.len);
        fclose(f);
    }
    char *want = read_file(path, &wantlen);
    if (!want)
        fail_msg("missing %s (run with UPDATE_GOLDEN=1 and review it)", path);
    if (wantlen != c.out.len || memcmp(want, c.out.p ? c.out.p : "", wantlen) != 0) {
        print_error("--- want %s\n%s--- got\n%s", path, want, c.out.p ? c.out.p : "");
        fail_msg("golden mismatch: %s", name);
    }
    free(want);
    free(c.out.p);
    free(in);
    free(tz);
    cp_arena_destroy(&arena);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **cp_golden_list(const char *dir, size_t *n)
{
    DIR *d = opendir(dir);
    *n = 0;
    if (!d)
        return NULL;
    char **names = NULL;
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 4 || strcmp(de->d_name + l - 3, ".in") != 0)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            names = realloc(names, cap * sizeof *names);
        }
        names[(*n)++] = strndup(de->d_name, l - 3);
    }
    closedir(d);
    if (*n)
        qsort(names, *n, sizeof *names, by_name);
    return names;
}

void cp_golden_free_list(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* What one golden test needs, as its cmocka state. */
struct golden_test {
    const struct cp_source_format *fmt;
    const char *dir;
    const char *name;
    enum cp_golden_mode mode;
};

static void golden_test(void **state)
{
    const struct golden_test *g = *state;
    cp_golden_case(g->fmt, g->dir, g->name, g->mode);
}

int cp_golden_run(const char *group, const struct cp_source_format *fmt, const char *sub,
                  enum cp_golden_mode mode, size_t min_cases, const struct CMUnitTest *extra,
                  size_t nextra)
{
    char *dir = strdup(cp_golden_dir(sub));
    assert_non_null(dir);
    size_t n = 0;
    char **names = cp_golden_list(dir, &n);
    if (n < min_cases) {
        fprintf(stderr, "only %zu golden cases in %s\n", n, dir);
        cp_golden_free_list(names, n);
        free(dir);
        return 1;
    }
    struct golden_test *cases = calloc(n ? n : 1, sizeof *cases);
    struct CMUnitTest *tests = calloc(n + nextra + 1, sizeof *tests);
    assert_non_null(cases);
    assert_non_null(tests);
    size_t t = 0;
    for (size_t i = 0; i < n; i++) {
        cases[i] = (struct golden_test){fmt, dir, names[i], mode};
        tests[t++] = (struct CMUnitTest){names[i], golden_test, NULL, NULL, &cases[i]};
    }
    for (size_t i = 0; i < nextra; i++)
        tests[t++] = extra[i];
    int failed = _cmocka_run_group_tests(group, tests, t, NULL, NULL);
    free(tests);
    free(cases);
    cp_golden_free_list(names, n);
    free(dir);
    return failed;
}
