/* faults.c - fault rules of the emulator: failing HTTP answers, delays, failing rows and jobs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sfemu.h"

static const char *const fault_kinds[] = {"http", "delay", "row", "job_fail", "slow", NULL};

static char *dup_or_null(const char *s) { return s ? xstrdup(s) : NULL; }

static void fault_free(struct emu_fault *f)
{
    free(f->c.org);
    free(f->c.method);
    free(f->c.path);
    free(f->c.body);
    free(f->c.content_type);
    free(f->c.object);
    free(f->c.code);
    free(f->c.message);
    free(f->c.field);
    free(f->c.value);
    if (f->has_re)
        regfree(&f->re);
    memset(f, 0, sizeof *f);
}

/* Adds a rule (its strings are copied); the new id, or -1 with err set. */
static int fault_add(const struct emu_fault_cfg *c, char *err, size_t errcap)
{
    struct emu_fault f;
    memset(&f, 0, sizeof f);
    f.c = *c;
    f.c.org = dup_or_null(c->org);
    f.c.method = dup_or_null(c->method);
    f.c.path = dup_or_null(c->path);
    f.c.body = dup_or_null(c->body);
    f.c.content_type = dup_or_null(c->content_type);
    f.c.object = dup_or_null(c->object);
    f.c.code = dup_or_null(c->code);
    f.c.message = dup_or_null(c->message);
    f.c.field = dup_or_null(c->field);
    f.c.value = dup_or_null(c->value);
    if (c->path) {
        int rc = regcomp(&f.re, c->path, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            snprintf(err, errcap, "bad path regex: %s", c->path);
            fault_free(&f);
            return -1;
        }
        f.has_re = true;
    }
    if (c->kind == FK_HTTP && (c->status < 100 || c->status > 599)) {
        snprintf(err, errcap, "http fault needs a status between 100 and 599");
        fault_free(&f);
        return -1;
    }
    if (c->org) {
        bool found = false;
        for (size_t i = 0; i < G.norgs; i++)
            found |= strcmp(G.orgs[i].cfg->name, c->org) == 0;
        if (!found) {
            snprintf(err, errcap, "unknown org: %s", c->org);
            fault_free(&f);
            return -1;
        }
    }
    f.left = c->count;
    f.id = ++G.next_fault_id;
    G.faults = xrealloc(G.faults, (G.nfaults + 1) * sizeof *G.faults);
    G.faults[G.nfaults++] = f;
    return f.id;
}

static void faults_clear(void)
{
    for (size_t i = 0; i < G.nfaults; i++)
        fault_free(&G.faults[i]);
    free(G.faults);
    G.faults = NULL;
    G.nfaults = 0;
}

static bool fault_delete(int id)
{
    for (size_t i = 0; i < G.nfaults; i++) {
        if (G.faults[i].id == id) {
            fault_free(&G.faults[i]);
            memmove(&G.faults[i], &G.faults[i + 1], (G.nfaults - i - 1) * sizeof *G.faults);
            G.nfaults--;
            return true;
        }
    }
    return false;
}

/* Takes one use of a rule; false when it is used up. */
static bool fault_take(struct emu_fault *f)
{
    if (f->used_up)
        return false;
    if (f->left > 0 && --f->left == 0)
        f->used_up = true;
    return true;
}

static bool fault_org_matches(const struct emu_fault *f, const struct emu_org *o)
{
    return !f->c.org || (o && strcmp(f->c.org, o->cfg->name) == 0);
}

/* The first live http/delay rule matching this request, its use taken. */
static struct emu_fault *fault_match_request(int kind, const struct cp_http_req *req,
                                             const struct emu_org *o)
{
    for (size_t i = 0; i < G.nfaults; i++) {
        struct emu_fault *f = &G.faults[i];
        if (f->c.kind != kind || f->used_up || !fault_org_matches(f, o))
            continue;
        if (f->c.method && strcasecmp(f->c.method, req->method) != 0)
            continue;
        if (f->has_re && regexec(&f->re, req->path, 0, NULL, 0) != 0)
            continue;
        if (fault_take(f))
            return f;
    }
    return NULL;
}

static struct emu_fault *fault_match_job(int kind, const struct emu_org *o, const char *object)
{
    for (size_t i = 0; i < G.nfaults; i++) {
        struct emu_fault *f = &G.faults[i];
        if (f->c.kind != kind || f->used_up || !fault_org_matches(f, o))
            continue;
        if (f->c.object && strcasecmp(f->c.object, object) != 0)
            continue;
        if (fault_take(f))
            return f;
    }
    return NULL;
}

/* A row fault for this row: a malloc'd sf__Error, or NULL. */
static char *fault_match_row(const struct emu_org *o, const struct emu_object *obj,
                             const struct emu_csv *csv, size_t row)
{
    for (size_t i = 0; i < G.nfaults; i++) {
        struct emu_fault *f = &G.faults[i];
        if (f->c.kind != FK_ROW || f->used_up || !fault_org_matches(f, o))
            continue;
        if (f->c.object && strcasecmp(f->c.object, obj->name) != 0)
            continue;
        bool hit = true;
        if (f->c.field) {
            hit = false;
            for (size_t j = 0; j < csv->ncols && j < csv->nvals[row]; j++)
                if (strcmp(csv->header[j], f->c.field) == 0)
                    hit = !f->c.value || strcmp(csv->rows[row][j], f->c.value) == 0;
        }
        if (hit && (f->c.every > 0 || f->c.percent > 0)) {
            f->seen++;
            if (f->c.every > 0)
                hit = f->seen % (uint64_t)f->c.every == 0;
            else
                hit = splitmix64((uint64_t)f->c.seed * 1000003u + f->seen) % 100 <
                      (uint64_t)f->c.percent;
        }
        if (!hit || !fault_take(f))
            continue;
        const char *code = f->c.code ? f->c.code : "UNABLE_TO_LOCK_ROW";
        char lockid[19];
        make_sfid("001", 4242, lockid);
        struct sb e = {0};
        if (f->c.message)
            sb_printf(&e, "%s:%s:--", code, f->c.message);
        else if (strcmp(code, "UNABLE_TO_LOCK_ROW") == 0)
            sb_printf(&e,
                      "%s:unable to obtain exclusive access to this record or 1 records: %s:--",
                      code, lockid);
        else if (strcmp(code, "FIELD_CUSTOM_VALIDATION_EXCEPTION") == 0)
            sb_printf(&e, "%s:Validation rule failed:--", code);
        else
            sb_printf(&e, "%s:injected failure:--", code);
        return e.p;
    }
    return NULL;
}
/* The fault fields, once: S for strings, I for integers (used to read and to list faults). */
#define FAULT_FIELDS(S, I)                                                                         \
    S(org); S(method); S(path); I(status); S(body); S(content_type); I(retry_after); I(count);     \
    I(delay_ms); S(object); S(code); S(message); S(field); S(value); I(every); I(percent);         \
    I(seed); I(after_rows); I(rows_per_s); I(queue_delay_ms)


static json_t *fault_json(const struct emu_fault *f)
{
    json_t *j = json_object();
    json_object_set_new(j, "id", json_integer(f->id));
    json_object_set_new(j, "kind", json_string(fault_kinds[f->c.kind]));
#define S(k)                                                                                       \
    if (f->c.k)                                                                                    \
    json_object_set_new(j, #k, json_string(f->c.k))
#define I(k)                                                                                       \
    if (f->c.k)                                                                                    \
    json_object_set_new(j, #k, json_integer(f->c.k))
    FAULT_FIELDS(S, I);
#undef S
#undef I
    json_object_set_new(j, "left", json_integer(f->left));
    json_object_set_new(j, "used_up", json_boolean(f->used_up));
    return j;
}

/* Admin JSON -> rule. Unknown keys are errors, like the config file. */
static int fault_from_json(json_t *j, char *err, size_t errcap)
{
    static const char *const keys[] = {
        "kind",  "org",  "method", "path",    "status",  "body",       "content_type",
        "retry_after", "count", "delay_ms", "object", "code", "message", "field", "value",
        "every", "percent", "seed", "after_rows", "rows_per_s", "queue_delay_ms", NULL};
    struct emu_fault_cfg c;
    memset(&c, 0, sizeof c);
    c.count = 1;
    if (!json_is_object(j)) {
        snprintf(err, errcap, "a fault is a JSON object");
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        bool known = false;
        for (int i = 0; keys[i]; i++)
            known |= strcmp(keys[i], k) == 0;
        if (!known) {
            snprintf(err, errcap,
                     "unknown key \"%s\"; valid keys: kind, org, method, path, status, body, "
                     "content_type, retry_after, count, delay_ms, object, code, message, field, "
                     "value, every, percent, seed, after_rows, rows_per_s, queue_delay_ms",
                     k);
            return -1;
        }
    }
    const char *kind = json_string_value(json_object_get(j, "kind"));
    c.kind = -1;
    for (int i = 0; kind && fault_kinds[i]; i++)
        if (strcmp(kind, fault_kinds[i]) == 0)
            c.kind = i;
    if (c.kind < 0) {
        snprintf(err, errcap, "kind must be one of http, delay, row, job_fail, slow");
        return -1;
    }
#define S(k) c.k = (char *)json_string_value(json_object_get(j, #k))
#define I(k)                                                                                       \
    if (json_is_integer(json_object_get(j, #k)))                                                   \
    c.k = json_integer_value(json_object_get(j, #k))
    FAULT_FIELDS(S, I);
#undef S
#undef I
    /* JSON numbers in value are convenient: {"field":"X","value":"7"} and "value":7 both work. */
    char numbuf[32];
    json_t *jv = json_object_get(j, "value");
    if (json_is_integer(jv)) {
        snprintf(numbuf, sizeof numbuf, "%lld", (long long)json_integer_value(jv));
        c.value = numbuf;
    }
    return fault_add(&c, err, errcap);
}

/* The answer of an http rule: Salesforce-shaped bodies by status unless `body` is given. */
static void fault_respond(struct cp_http_req *req, const struct emu_fault *f, const char *limit)
{
    int st = (int)f->c.status;
    const char *ct = f->c.content_type ? f->c.content_type : "application/json;charset=UTF-8";
    char ra[32];
    snprintf(ra, sizeof ra, "%lld", (long long)f->c.retry_after);
    const char *rn = f->c.retry_after ? "Retry-After" : NULL;
    if (f->c.body) {
        respond_body(req, st, ct, limit, rn, ra, f->c.body, strlen(f->c.body));
        return;
    }
    const char *body;
    if (strstr(req->path, "/services/oauth2/") != NULL)
        body = st == 400 ? "{\"error\":\"invalid_grant\",\"error_description\":\"authentication "
                           "failure\"}"
                         : "{\"error\":\"unknown_error\",\"error_description\":\"retry your "
                           "request\"}";
    else if (st == 401)
        body = "[{\"message\":\"Session expired or invalid\",\"errorCode\":\"INVALID_SESSION_ID\"}]";
    else if (st == 403)
        body = "[{\"message\":\"ConcurrentPerOrgLongTxn Limit exceeded.\",\"errorCode\":"
               "\"REQUEST_LIMIT_EXCEEDED\"}]";
    else if (st == 429 || st == 420)
        body = "[{\"message\":\"Too many requests\",\"errorCode\":\"REQUEST_LIMIT_EXCEEDED\"}]";
    else if (st == 503)
        body = "[{\"message\":\"Server temporarily unavailable\",\"errorCode\":"
               "\"SERVER_UNAVAILABLE\"}]";
    else if (st >= 500)
        body = "[{\"message\":\"An unexpected error occurred. Please include this ErrorId if you "
               "contact support: 1234567890-12345 (-123456789)\",\"errorCode\":"
               "\"UNKNOWN_EXCEPTION\"}]";
    else
        body = "[{\"message\":\"injected fault\",\"errorCode\":\"API_ERROR\"}]";
    respond_body(req, st, ct, limit, rn, ra, body, strlen(body));
}
