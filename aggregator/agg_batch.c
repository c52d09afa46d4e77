/* agg_batch.c - the flush batch: merged deltas per key, call rows, and the one transaction that writes them. */
#include "agg.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp_log.h"
#include "cp_time.h"

/* ---- queue_interval columns: one table drives the COPY row and the upsert ---- */

enum col_kind { COL_SUM, COL_MAX, COL_HIST };
struct qi_col {
    const char *name;
    size_t offset;
    enum col_kind kind;
};
#define QI(name, field, kind) {name, offsetof(struct agg_qi, field), kind}
static const struct qi_col qi_cols[] = {
    QI("offered", offered, COL_SUM),
    QI("answered", answered, COL_SUM),
    QI("abandoned", abandoned, COL_SUM),
    QI("short_abandoned", short_abandoned, COL_SUM),
    QI("timed_out", timed_out, COL_SUM),
    QI("key_exit", key_exit, COL_SUM),
    QI("queue_full", queue_full, COL_SUM),
    QI("callback", callback, COL_SUM),
    QI("voicemail", voicemail, COL_SUM),
    QI("transferred_out_of_queue", transferred_out_of_queue, COL_SUM),
    QI("other_flowout", other_flowout, COL_SUM),
    QI("transferred_in", transferred_in, COL_SUM),
    QI("transferred_out", transferred_out, COL_SUM),
    QI("agent_noanswer", agent_noanswer, COL_SUM),
    QI("handled", handled, COL_SUM),
    QI("held", held, COL_SUM),
    QI("answered_within_sl", answered_within_sl, COL_SUM),
    QI("abandoned_within_sl", abandoned_within_sl, COL_SUM),
    QI("answered_wait_ms", answered_wait_ms, COL_SUM),
    QI("abandoned_wait_ms", abandoned_wait_ms, COL_SUM),
    QI("talk_ms", talk_ms, COL_SUM),
    QI("hold_ms", hold_ms, COL_SUM),
    QI("acw_ms", acw_ms, COL_SUM),
    QI("handle_ms", handle_ms, COL_SUM),
    QI("answered_wait_max_ms", answered_wait_max_ms, COL_MAX),
    QI("abandoned_wait_max_ms", abandoned_wait_max_ms, COL_MAX),
    QI("answered_wait_hist", answered_hist, COL_HIST),
    QI("abandoned_wait_hist", abandoned_hist, COL_HIST),
};

struct qi_entry {
    char *org, *queue;
    int64_t interval;
    struct agg_qi qi;
};

struct count_entry { /* queue_disposition_interval / queue_wrapup_interval */
    char *org, *queue, *name;
    int64_t interval;
    int64_t calls, handle_ms;
};

static char *build_sql_upsert(void)
{
    /* INSERT INTO queue_interval AS t (cols) SELECT cols FROM agg_qi ON CONFLICT ... SET ... */
    static char sql[8192];
    size_t n = 0;
    n += (size_t)snprintf(sql + n, sizeof sql - n,
                          "INSERT INTO queue_interval AS t (org, queue, interval_start");
    for (size_t i = 0; i < CP_ARRAY_LEN(qi_cols); i++)
        n += (size_t)snprintf(sql + n, sizeof sql - n, ", %s", qi_cols[i].name);
    n += (size_t)snprintf(sql + n, sizeof sql - n, ") SELECT org, queue, interval_start");
    for (size_t i = 0; i < CP_ARRAY_LEN(qi_cols); i++)
        n += (size_t)snprintf(sql + n, sizeof sql - n, ", %s", qi_cols[i].name);
    n += (size_t)snprintf(sql + n, sizeof sql - n,
                          " FROM agg_qi ON CONFLICT (org, queue, interval_start) DO UPDATE SET ");
    for (size_t i = 0; i < CP_ARRAY_LEN(qi_cols); i++) {
        const char *c = qi_cols[i].name;
        if (qi_cols[i].kind == COL_SUM)
            n += (size_t)snprintf(sql + n, sizeof sql - n, "%s = t.%s + EXCLUDED.%s, ", c, c, c);
        else if (qi_cols[i].kind == COL_MAX)
            n += (size_t)snprintf(sql + n, sizeof sql - n, "%s = GREATEST(t.%s, EXCLUDED.%s), ", c,
                                  c, c);
        else
            n += (size_t)snprintf(sql + n, sizeof sql - n,
                                  "%s = callpipe_int_array_add(t.%s, EXCLUDED.%s), ", c, c, c);
    }
    snprintf(sql + n, sizeof sql - n, "updated_at = now()");
    return sql;
}

static char *build_copy_qi(void)
{
    static char sql[2048];
    size_t n = (size_t)snprintf(sql, sizeof sql, "COPY agg_qi (org, queue, interval_start");
    for (size_t i = 0; i < CP_ARRAY_LEN(qi_cols); i++)
        n += (size_t)snprintf(sql + n, sizeof sql - n, ", %s", qi_cols[i].name);
    snprintf(sql + n, sizeof sql - n, ") FROM STDIN");
    return sql;
}

/* ---- keys ---- */

static size_t make_key(char *buf, size_t cap, const char *a, const char *b, int64_t interval,
                       const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = c ? strlen(c) : 0;
    if (la + lb + lc + 3 + sizeof interval > cap)
        return 0;
    size_t n = 0;
    memcpy(buf + n, a, la + 1);
    n += la + 1;
    memcpy(buf + n, b, lb + 1);
    n += lb + 1;
    memcpy(buf + n, &interval, sizeof interval);
    n += sizeof interval;
    if (c) {
        memcpy(buf + n, c, lc + 1);
        n += lc + 1;
    }
    return n;
}

/* ---- the sink the call state machine books into ---- */

static struct agg_qi *sink_interval(struct agg_sink *s, const char *org, const char *queue,
                                    int64_t interval)
{
    struct agg_batch *b = (struct agg_batch *)s;
    char key[1024];
    size_t kl = make_key(key, sizeof key, org, queue, interval, NULL);
    if (!kl)
        return NULL;
    struct qi_entry *e = cp_map_get(&b->qi, key, kl);
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e)
            return NULL;
        e->org = strdup(org);
        e->queue = strdup(queue);
        e->interval = interval;
        if (!e->org || !e->queue || cp_map_put(&b->qi, key, kl, e) != 0) {
            free(e->org);
            free(e->queue);
            free(e);
            return NULL;
        }
    }
    return &e->qi;
}

static void count_add(struct cp_map *m, const char *org, const char *queue, int64_t interval,
                      const char *name, int64_t handle_ms)
{
    char key[1024];
    size_t kl = make_key(key, sizeof key, org, queue, interval, name);
    if (!kl)
        return;
    struct count_entry *e = cp_map_get(m, key, kl);
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e)
            return;
        e->org = strdup(org);
        e->queue = strdup(queue);
        e->name = strdup(name);
        e->interval = interval;
        if (cp_map_put(m, key, kl, e) != 0) {
            free(e->org);
            free(e->queue);
            free(e->name);
            free(e);
            return;
        }
    }
    e->calls++;
    e->handle_ms += handle_ms;
}

static void sink_disposition(struct agg_sink *s, const char *org, const char *queue,
                             int64_t interval, const char *d, int64_t handle_ms)
{
    count_add(&((struct agg_batch *)s)->disp, org, queue, interval, d, handle_ms);
}

static void sink_wrapup(struct agg_sink *s, const char *org, const char *queue, int64_t interval,
                        const char *w, int64_t handle_ms)
{
    count_add(&((struct agg_batch *)s)->wrap, org, queue, interval, w, handle_ms);
}

static const struct agg_settings *sink_settings(struct agg_sink *s, const char *org,
                                                const char *queue, int64_t at)
{
    return agg_settings_lookup(((struct agg_batch *)s)->agg, org, queue, at);
}

void agg_batch_init(struct agg_batch *b, struct agg *agg)
{
    memset(b, 0, sizeof *b);
    b->sink = (struct agg_sink){sink_interval, sink_disposition, sink_wrapup, sink_settings};
    b->agg = agg;
    cp_map_init(&b->qi);
    cp_map_init(&b->disp);
    cp_map_init(&b->wrap);
    cp_pg_copybuf_init(&b->calls);
    cp_pg_copybuf_init(&b->outbox);
    cp_pg_copybuf_init(&b->deleted);
    b->pack = msgpack_sbuffer_new();
}

static void free_counts(struct cp_map *m)
{
    size_t it = 0;
    struct cp_map_slot *s;
    while ((s = cp_map_next(m, &it))) {
        struct count_entry *e = s->val;
        free(e->org);
        free(e->queue);
        free(e->name);
        free(e);
    }
    cp_map_free(m);
    cp_map_init(m);
}

void agg_batch_reset(struct agg_batch *b)
{
    size_t it = 0;
    struct cp_map_slot *s;
    while ((s = cp_map_next(&b->qi, &it))) {
        struct qi_entry *e = s->val;
        free(e->org);
        free(e->queue);
        free(e);
    }
    cp_map_free(&b->qi);
    cp_map_init(&b->qi);
    free_counts(&b->disp);
    free_counts(&b->wrap);
    b->calls.len = b->outbox.len = b->deleted.len = 0;
    b->calls.row_fields = b->outbox.row_fields = b->deleted.row_fields = 0;
    b->n_calls = b->n_outbox = b->n_deleted = b->n_events = 0;
    b->min_day = b->max_day = 0;
    b->calls_insert = false;
}

void agg_batch_free(struct agg_batch *b)
{
    agg_batch_reset(b);
    cp_map_free(&b->qi);
    cp_map_free(&b->disp);
    cp_map_free(&b->wrap);
    cp_pg_copybuf_free(&b->calls);
    cp_pg_copybuf_free(&b->outbox);
    cp_pg_copybuf_free(&b->deleted);
    msgpack_sbuffer_free(b->pack);
    b->pack = NULL;
}

/* ---- rows ---- */

static int field_time(struct cp_pg_copybuf *cb, int64_t us)
{
    if (!us)
        return cp_pg_copybuf_field(cb, NULL, 0);
    char buf[40];
    size_t n = cp_time_format_iso(us, buf, sizeof buf);
    return cp_pg_copybuf_field(cb, buf, n);
}

static int field_ms(struct cp_pg_copybuf *cb, int64_t ms)
{
    return ms < 0 ? cp_pg_copybuf_field(cb, NULL, 0) : cp_pg_copybuf_field_i64(cb, ms);
}

static bool list_has(const char *list, const char *item)
{
    if (!list || !*list)
        return true;
    if (!item)
        return false;
    size_t il = strlen(item);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && t[-1] == ' ')
            t--;
        if ((size_t)(t - p) == il && memcmp(p, item, il) == 0)
            return true;
        p = e;
    }
    return false;
}

static int add_outbox(struct agg_batch *b, const struct agg_call_row *r)
{
    const struct agg_cfg *cfg = b->agg->cfg;
    for (size_t i = 0; i < cfg->n_routes; i++) {
        const struct agg_route_cfg *rt = &cfg->routes[i];
        if (strcmp(rt->org, "*") != 0 && strcmp(rt->org, r->org) != 0)
            continue;
        if (!list_has(rt->queues, r->queue))
            continue;
        /* First matching route wins; each of its targets gets one row. */
        for (const char *p = rt->targets; *p;) {
            while (*p == ' ' || *p == ',')
                p++;
            const char *e = p;
            while (*e && *e != ',')
                e++;
            const char *t = e;
            while (t > p && t[-1] == ' ')
                t--;
            if (t > p) {
                struct cp_pg_copybuf *cb = &b->outbox;
                cp_pg_copybuf_field_str(cb, r->org);
                cp_pg_copybuf_field_str(cb, r->pbx);
                cp_pg_copybuf_field_str(cb, r->call);
                field_time(cb, r->ended_us);
                cp_pg_copybuf_field(cb, p, (size_t)(t - p));
                if (cp_pg_copybuf_end_row(cb) != 0)
                    return CP_ERR_NOMEM;
                b->n_outbox++;
            }
            p = e;
        }
        break;
    }
    return 0;
}

int agg_batch_add_call(struct agg_batch *b, const struct agg_call_row *r)
{
    struct cp_pg_copybuf *cb = &b->calls;
    cp_pg_copybuf_field_str(cb, r->org);
    cp_pg_copybuf_field_str(cb, r->pbx);
    cp_pg_copybuf_field_str(cb, r->call);
    field_time(cb, r->ended_us);
    cp_pg_copybuf_field_str(cb, r->dir ? cp_dir_name(r->dir) : NULL);
    cp_pg_copybuf_field_str(cb, r->from);
    cp_pg_copybuf_field_str(cb, r->from_name);
    cp_pg_copybuf_field_str(cb, r->to);
    cp_pg_copybuf_field_str(cb, r->final_to);
    cp_pg_copybuf_field_str(cb, r->queue);
    cp_pg_copybuf_field_str(cb, r->agent);
    field_time(cb, r->started_us);
    field_time(cb, r->queued_us);
    field_time(cb, r->answered_us);
    field_ms(cb, r->wait_ms);
    field_ms(cb, r->talk_ms);
    field_ms(cb, r->hold_ms);
    field_ms(cb, r->acw_ms);
    field_ms(cb, r->handle_ms);
    cp_pg_copybuf_field_str(cb, r->disp ? cp_disp_name(r->disp) : NULL);
    cp_pg_copybuf_field_str(cb, r->qout ? cp_qout_name(r->qout) : NULL);
    cp_pg_copybuf_field_str(cb, r->wrapup);
    cp_pg_copybuf_field_str(cb, r->side ? cp_side_name(r->side) : NULL);
    cp_pg_copybuf_field_str(cb, r->src);
    if (cp_pg_copybuf_end_row(cb) != 0)
        return CP_ERR_NOMEM;
    b->n_calls++;
    int64_t day = cp_time_floor(r->ended_us, 86400);
    if (!b->min_day || day < b->min_day)
        b->min_day = day;
    if (day > b->max_day)
        b->max_day = day;
    return add_outbox(b, r);
}

int agg_batch_delete_open(struct agg_batch *b, const struct agg_call *c)
{
    cp_pg_copybuf_field_str(&b->deleted, c->org);
    cp_pg_copybuf_field_str(&b->deleted, c->pbx);
    cp_pg_copybuf_field_str(&b->deleted, c->call);
    if (cp_pg_copybuf_end_row(&b->deleted) != 0)
        return CP_ERR_NOMEM;
    b->n_deleted++;
    return 0;
}

/* ---- open-call persistence ---- */

int agg_open_encode(const struct agg_call *c, struct msgpack_sbuffer *sb)
{
    if (!sb)
        return CP_ERR_NOMEM;
    msgpack_sbuffer_clear(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int rc = msgpack_pack_array(&pk, c->n_events);
    for (uint32_t i = 0; i < c->n_events && rc == 0; i++)
        rc = msgpack_pack_bin_with_body(&pk, c->events[i].buf, c->events[i].len);
    return rc == 0 ? 0 : CP_ERR_NOMEM;
}

int agg_open_restore(struct agg_call *c, const char *buf, size_t len)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    int rc = 0;
    if (msgpack_unpack_next(&u, buf, len, NULL) != MSGPACK_UNPACK_SUCCESS ||
        u.data.type != MSGPACK_OBJECT_ARRAY) {
        msgpack_unpacked_destroy(&u);
        return CP_ERR_PARSE;
    }
    struct cp_arena scratch;
    cp_arena_init(&scratch, 8192, 0);
    for (uint32_t i = 0; i < u.data.via.array.size && rc == 0; i++) {
        const msgpack_object *o = &u.data.via.array.ptr[i];
        if (o->type != MSGPACK_OBJECT_BIN) {
            rc = CP_ERR_PARSE;
            break;
        }
        struct cp_event ev;
        const char *why;
        rc = cp_event_decode(o->via.bin.ptr, o->via.bin.size, &scratch, &ev, &why);
        if (rc == 0) {
            /* No sink: replaying marks the bookings done, books nothing. */
            int r = agg_call_apply(c, &ev, o->via.bin.ptr, o->via.bin.size, NULL);
            rc = r < 0 ? r : 0;
        }
        cp_arena_reset(&scratch);
    }
    cp_arena_destroy(&scratch);
    msgpack_unpacked_destroy(&u);
    return rc;
}

/* ---- settings ---- */

struct settings_row {
    int64_t valid_from;
    struct agg_settings s;
};
struct settings_list {
    size_t n;
    struct settings_row rows[]; /* newest valid_from first */
};

static void free_settings(struct cp_map *m)
{
    size_t it = 0;
    struct cp_map_slot *s;
    while ((s = cp_map_next(m, &it)))
        free(s->val);
    cp_map_free(m);
    cp_map_init(m);
}

int agg_settings_load(struct agg *agg)
{
    PGresult *res = NULL;
    struct cp_pg_error err;
    int rc = cp_pg_exec(agg->pg,
                        "SELECT org, queue, floor(extract(epoch FROM greatest(valid_from, "
                        "'1970-01-01'::timestamptz)) * 1000000)::bigint, sl_threshold_ms, "
                        "sl_compare = '<', short_abandon_ms FROM queue_settings "
                        "ORDER BY org, queue, valid_from DESC",
                        0, NULL, &res, &err);
    if (rc < 0) {
        cp_warn("postgres", "could not read queue_settings: %s", err.msg);
        return rc;
    }
    free_settings(&agg->settings);
    int n = PQntuples(res);
    for (int i = 0; i < n;) {
        int j = i;
        while (j < n && strcmp(PQgetvalue(res, j, 0), PQgetvalue(res, i, 0)) == 0 &&
               strcmp(PQgetvalue(res, j, 1), PQgetvalue(res, i, 1)) == 0)
            j++;
        struct settings_list *l = malloc(sizeof *l + (size_t)(j - i) * sizeof l->rows[0]);
        if (!l)
            break;
        l->n = (size_t)(j - i);
        for (int k = i; k < j; k++) {
            struct settings_row *r = &l->rows[k - i];
            r->valid_from = strtoll(PQgetvalue(res, k, 2), NULL, 10);
            r->s.sl_threshold_ms = strtoll(PQgetvalue(res, k, 3), NULL, 10);
            r->s.sl_strict = PQgetvalue(res, k, 4)[0] == 't';
            r->s.short_abandon_ms = strtoll(PQgetvalue(res, k, 5), NULL, 10);
        }
        char key[512];
        size_t kl = make_key(key, sizeof key, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), 0, NULL);
        if (!kl || cp_map_put(&agg->settings, key, kl, l) != 0)
            free(l);
        i = j;
    }
    PQclear(res);
    return 0;
}

static const struct agg_settings *settings_in(struct agg *agg, const char *org, const char *queue,
                                              int64_t at)
{
    char key[512];
    size_t kl = make_key(key, sizeof key, org, queue, 0, NULL);
    struct settings_list *l = kl ? cp_map_get(&agg->settings, key, kl) : NULL;
    if (!l)
        return NULL;
    for (size_t i = 0; i < l->n; i++)
        if (l->rows[i].valid_from <= at)
            return &l->rows[i].s;
    return NULL;
}

const struct agg_settings *agg_settings_lookup(struct agg *agg, const char *org, const char *queue,
                                               int64_t at)
{
    /* Most specific first: the queue's own row, the org's default, the global default. */
    const struct agg_settings *s = settings_in(agg, org, queue, at);
    if (!s)
        s = settings_in(agg, org, "*", at);
    if (!s)
        s = settings_in(agg, "*", queue, at);
    if (!s)
        s = settings_in(agg, "*", "*", at);
    return s;
}

/* ---- the transaction ---- */

/* Session-local staging tables: COPY is fast but cannot upsert, so rows are
 * copied here and merged with INSERT ... ON CONFLICT in the same transaction. */
static const char *const staging_sql =
    "SET search_path = public;"
    "CREATE TEMP TABLE IF NOT EXISTS agg_qi (LIKE queue_interval INCLUDING DEFAULTS) "
    "  ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS agg_disp (LIKE queue_disposition_interval INCLUDING "
    "  DEFAULTS) ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS agg_wrap (LIKE queue_wrapup_interval INCLUDING DEFAULTS) "
    "  ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS agg_open (org text, pbx text, call_id text, "
    "  partition int, state bytea) ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS agg_del (org text, pbx text, call_id text) "
    "  ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS agg_outbox (org text, pbx text, call_id text, "
    "  ended_at timestamptz, target_org text) ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS agg_calls (LIKE calls INCLUDING DEFAULTS) "
    "  ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS agg_now (org text, queue text, partition int, "
    "  calls_waiting int, oldest_waiting_since timestamptz, agents_connected int) "
    "  ON COMMIT DELETE ROWS;";

#define CALL_COLS                                                                                  \
    "org, pbx, call_id, ended_at, direction, from_number, from_name, to_number, final_to, "       \
    "queue, agent, started_at, queued_at, answered_at, wait_ms, talk_ms, hold_ms, acw_ms, "       \
    "handle_ms, disposition, queue_outcome, wrapup, hangup_side, source"

struct commit_ctx {
    struct agg_batch *b;
    bool with_now;
    bool already;      /* a lost COMMIT reply: the data is in already */
    int64_t copy_us;   /* time in the last attempt's `COPY calls` (the write-path benchmark) */
};

static int copy_buf(PGconn *pg, const char *sql, struct cp_pg_copybuf *src,
                    struct cp_pg_error *err)
{
    struct cp_pg_copy c;
    int rc = cp_pg_copy_begin(&c, pg, sql, err);
    if (rc)
        return rc;
    /* Hand the prepared rows over in one piece. */
    if (src->len && PQputCopyData(pg, src->data, (int)src->len) != 1) {
        cp_pg_copy_abort(&c, "send failed");
        return CP_ERR_CONN;
    }
    int64_t n = cp_pg_copy_end(&c, err);
    return n < 0 ? (int)n : 0;
}

static int exec0(PGconn *pg, const char *sql, struct cp_pg_error *err)
{
    int rc = cp_pg_exec(pg, sql, 0, NULL, NULL, err);
    return rc < 0 ? rc : 0;
}

static void add_hist(struct cp_pg_copybuf *cb, const int64_t *h)
{
    char buf[AGG_WAIT_BUCKETS * 21 + 4];
    size_t n = 0;
    buf[n++] = '{';
    for (int i = 0; i < AGG_WAIT_BUCKETS; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%lld", i ? "," : "", (long long)h[i]);
    buf[n++] = '}';
    cp_pg_copybuf_field(cb, buf, n);
}

/* Fencing and lost-reply detection: the stored offsets must be where this
 * batch started.  Equal to where it ends means the batch committed already. */
static int check_offsets(PGconn *pg, struct agg *agg, bool *already, struct cp_pg_error *err)
{
    const char *p[2] = {agg->cfg->kafka.group, agg->cfg->kafka.topic};
    PGresult *res = NULL;
    int rc = cp_pg_exec(pg,
                        "SELECT partition, next_offset FROM consumer_offsets WHERE group_id = $1 "
                        "AND topic = $2 FOR UPDATE",
                        2, p, &res, err);
    if (rc < 0)
        return rc;
    int at_start = 0, at_end = 0, dirty = 0, other = 0;
    for (int32_t i = 0; i < agg->n_parts; i++) {
        struct agg_part *pt = &agg->parts[i];
        if (pt->next == pt->committed)
            continue;
        dirty++;
        int64_t stored = -1;
        for (int r = 0; r < PQntuples(res); r++)
            if (atoi(PQgetvalue(res, r, 0)) == pt->partition)
                stored = strtoll(PQgetvalue(res, r, 1), NULL, 10);
        if (stored == pt->committed)
            at_start++;
        else if (stored == pt->next)
            at_end++;
        else {
            other++;
            cp_warn("aggregator", "partition %d: stored offset %lld, expected %lld: moved by "
                    "another consumer", pt->partition, (long long)stored,
                    (long long)pt->committed);
        }
    }
    PQclear(res);
    if (dirty && at_end == dirty) {
        *already = true;
        return 0;
    }
    return other || at_end ? CP_ERR_STATE : 0;
}

static int write_now(PGconn *pg, struct agg *agg, struct cp_pg_error *err)
{
    /* Per partition and queue: callers waiting, the oldest entry, agents talking. */
    struct cp_pg_copybuf cb;
    cp_pg_copybuf_init(&cb);
    struct cp_pg_copybuf parts;
    cp_pg_copybuf_init(&parts);
    char list[16384];
    size_t ln = 0;
    list[ln++] = '{';
    for (int32_t i = 0; i < agg->n_parts; i++) {
        struct agg_part *pt = &agg->parts[i];
        if (!pt->assigned)
            continue;
        if (ln + 16 < sizeof list)
            ln += (size_t)snprintf(list + ln, sizeof list - ln, "%s%d", ln > 1 ? "," : "",
                                   pt->partition);
        struct cp_map per_queue;
        cp_map_init(&per_queue);
        struct nowrow {
            const char *org, *queue;
            int64_t waiting, oldest, agents;
        };
        size_t it = 0;
        struct cp_map_slot *s;
        while ((s = cp_map_next(&pt->calls, &it))) {
            struct agg_open *o = s->val;
            struct agg_call *c = o->call;
            if (c->t_end)
                continue;
            for (uint32_t v = 0; v < c->n_visits; v++) {
                struct agg_visit *vi = &c->visits[v];
                bool waiting = vi->t_enter && !vi->t_connect && !vi->t_leave;
                bool talking = vi->t_connect && !vi->t_complete;
                if (!waiting && !talking)
                    continue;
                char key[512];
                size_t kl = make_key(key, sizeof key, c->org, vi->queue, 0, NULL);
                struct nowrow *r = kl ? cp_map_get(&per_queue, key, kl) : NULL;
                if (!r && kl) {
                    r = calloc(1, sizeof *r);
                    if (!r || cp_map_put(&per_queue, key, kl, r) != 0) {
                        free(r);
                        continue;
                    }
                    r->org = c->org;
                    r->queue = vi->queue;
                }
                if (!r)
                    continue;
                if (waiting) {
                    r->waiting++;
                    if (!r->oldest || vi->t_enter < r->oldest)
                        r->oldest = vi->t_enter;
                } else {
                    r->agents++;
                }
            }
        }
        it = 0;
        while ((s = cp_map_next(&per_queue, &it))) {
            struct nowrow *r = s->val;
            cp_pg_copybuf_field_str(&cb, r->org);
            cp_pg_copybuf_field_str(&cb, r->queue);
            cp_pg_copybuf_field_i64(&cb, pt->partition);
            cp_pg_copybuf_field_i64(&cb, r->waiting);
            field_time(&cb, r->oldest);
            cp_pg_copybuf_field_i64(&cb, r->agents);
            cp_pg_copybuf_end_row(&cb);
            free(r);
        }
        cp_map_free(&per_queue);
    }
    list[ln++] = '}';
    list[ln] = 0;
    const char *p[1] = {list};
    int rc = cp_pg_exec(pg, "DELETE FROM queue_now_part WHERE partition = ANY($1::int[])", 1, p,
                        NULL, err);
    if (rc >= 0)
        rc = copy_buf(pg,
                      "COPY agg_now (org, queue, partition, calls_waiting, oldest_waiting_since, "
                      "agents_connected) FROM STDIN",
                      &cb, err);
    if (rc >= 0)
        rc = exec0(pg,
                   "INSERT INTO queue_now_part (org, queue, partition, calls_waiting, "
                   "oldest_waiting_since, agents_connected) SELECT org, queue, partition, "
                   "calls_waiting, oldest_waiting_since, agents_connected FROM agg_now",
                   err);
    cp_pg_copybuf_free(&cb);
    cp_pg_copybuf_free(&parts);
    return rc < 0 ? rc : 0;
}

static int commit_fn(PGconn *pg, void *arg, struct cp_pg_error *err)
{
    struct commit_ctx *cx = arg;
    struct agg_batch *b = cx->b;
    struct agg *agg = b->agg;
    int rc = check_offsets(pg, agg, &cx->already, err);
    if (rc || cx->already)
        return rc;

    /* Finished calls: straight COPY (the fast path).  A row already there (a late event
     * reopened a call written longer than late_window ago, with the same end) would fail
     * the whole transaction on the primary key, and with it every retry: the aggregator
     * would stall.  So after such a failure the batch goes in through the staging table,
     * keeping the row that is there, and says how many it skipped. */
    if (b->n_calls && !b->calls_insert) {
        int64_t t0 = cp_time_mono_us();
        rc = copy_buf(pg, "COPY calls (" CALL_COLS ") FROM STDIN", &b->calls, err);
        cx->copy_us = cp_time_mono_us() - t0;
        if (rc && strcmp(err->sqlstate, "23505") == 0)
            b->calls_insert = true; /* the retry takes the careful path */
        if (rc)
            return rc;
    } else if (b->n_calls) {
        PGresult *res = NULL;
        if ((rc = copy_buf(pg, "COPY agg_calls (" CALL_COLS ") FROM STDIN", &b->calls, err)) ||
            (rc = cp_pg_exec(pg,
                             "INSERT INTO calls (" CALL_COLS ") SELECT " CALL_COLS
                             " FROM agg_calls ON CONFLICT DO NOTHING",
                             0, NULL, &res, err)) < 0)
            return rc < 0 ? rc : CP_ERR_CONN;
        int64_t kept = res ? strtoll(PQcmdTuples(res), NULL, 10) : 0;
        PQclear(res);
        rc = 0;
        if (kept < b->n_calls)
            cp_warn("aggregator", "%lld finished calls were already in the calls table: kept "
                    "the rows there (raise late_window if late events are this late)",
                    (long long)(b->n_calls - kept));
    }

    /* Interval deltas, merged per key in memory, then one upsert per table. */
    if (b->qi.len) {
        struct cp_pg_copybuf cb;
        cp_pg_copybuf_init(&cb);
        size_t it = 0;
        struct cp_map_slot *s;
        while ((s = cp_map_next(&b->qi, &it))) {
            struct qi_entry *e = s->val;
            cp_pg_copybuf_field_str(&cb, e->org);
            cp_pg_copybuf_field_str(&cb, e->queue);
            field_time(&cb, e->interval);
            for (size_t i = 0; i < CP_ARRAY_LEN(qi_cols); i++) {
                const int64_t *v = (const int64_t *)((const char *)&e->qi + qi_cols[i].offset);
                if (qi_cols[i].kind == COL_HIST)
                    add_hist(&cb, v);
                else
                    cp_pg_copybuf_field_i64(&cb, *v);
            }
            cp_pg_copybuf_end_row(&cb);
        }
        rc = copy_buf(pg, build_copy_qi(), &cb, err);
        cp_pg_copybuf_free(&cb);
        if (rc || (rc = exec0(pg, build_sql_upsert(), err)))
            return rc;
    }
    struct {
        struct cp_map *m;
        const char *copy, *upsert;
    } counts[] = {
        {&b->disp, "COPY agg_disp (org, queue, interval_start, disposition, calls, handle_ms) FROM STDIN",
         "INSERT INTO queue_disposition_interval AS t (org, queue, interval_start, disposition, "
         "calls, handle_ms) SELECT org, queue, interval_start, disposition, calls, handle_ms FROM "
         "agg_disp ON CONFLICT (org, queue, interval_start, disposition) DO UPDATE SET calls = "
         "t.calls + EXCLUDED.calls, handle_ms = t.handle_ms + EXCLUDED.handle_ms, updated_at = now()"},
        {&b->wrap, "COPY agg_wrap (org, queue, interval_start, wrapup, calls, handle_ms) FROM STDIN",
         "INSERT INTO queue_wrapup_interval AS t (org, queue, interval_start, wrapup, calls, "
         "handle_ms) SELECT org, queue, interval_start, wrapup, calls, handle_ms FROM agg_wrap ON "
         "CONFLICT (org, queue, interval_start, wrapup) DO UPDATE SET calls = t.calls + "
         "EXCLUDED.calls, handle_ms = t.handle_ms + EXCLUDED.handle_ms, updated_at = now()"},
    };
    for (size_t k = 0; k < CP_ARRAY_LEN(counts); k++) {
        if (!counts[k].m->len)
            continue;
        struct cp_pg_copybuf cb;
        cp_pg_copybuf_init(&cb);
        size_t it = 0;
        struct cp_map_slot *s;
        while ((s = cp_map_next(counts[k].m, &it))) {
            struct count_entry *e = s->val;
            cp_pg_copybuf_field_str(&cb, e->org);
            cp_pg_copybuf_field_str(&cb, e->queue);
            field_time(&cb, e->interval);
            cp_pg_copybuf_field_str(&cb, e->name);
            cp_pg_copybuf_field_i64(&cb, e->calls);
            cp_pg_copybuf_field_i64(&cb, e->handle_ms);
            cp_pg_copybuf_end_row(&cb);
        }
        rc = copy_buf(pg, counts[k].copy, &cb, err);
        cp_pg_copybuf_free(&cb);
        if (rc || (rc = exec0(pg, counts[k].upsert, err)))
            return rc;
    }

    /* Open calls that changed: their whole event list, replayable after a restart. */
    struct cp_pg_copybuf oc;
    cp_pg_copybuf_init(&oc);
    int64_t n_open = 0;
    for (int32_t i = 0; i < agg->n_parts; i++) {
        struct agg_part *pt = &agg->parts[i];
        size_t it = 0;
        struct cp_map_slot *s;
        while ((s = cp_map_next(&pt->calls, &it))) {
            struct agg_open *o = s->val;
            if (!o->dirty)
                continue;
            if (agg_open_encode(o->call, b->pack) != 0) {
                cp_pg_copybuf_free(&oc);
                return CP_ERR_NOMEM; /* a call left out would be lost on restart */
            }
            cp_pg_copybuf_field_str(&oc, o->call->org);
            cp_pg_copybuf_field_str(&oc, o->call->pbx);
            cp_pg_copybuf_field_str(&oc, o->call->call);
            cp_pg_copybuf_field_i64(&oc, pt->partition);
            if (cp_pg_copybuf_field_bytea(&oc, b->pack->data, b->pack->size) != 0 ||
                cp_pg_copybuf_end_row(&oc) != 0) {
                cp_pg_copybuf_free(&oc);
                return CP_ERR_NOMEM;
            }
            n_open++;
        }
    }
    if (n_open) {
        rc = copy_buf(pg, "COPY agg_open (org, pbx, call_id, partition, state) FROM STDIN", &oc,
                      err);
        if (!rc)
            rc = exec0(pg,
                       "INSERT INTO open_calls AS t (org, pbx, call_id, partition, state) SELECT "
                       "org, pbx, call_id, partition, state FROM agg_open ON CONFLICT (org, pbx, "
                       "call_id) DO UPDATE SET partition = EXCLUDED.partition, state = "
                       "EXCLUDED.state, updated_at = now()",
                       err);
    }
    cp_pg_copybuf_free(&oc);
    if (rc)
        return rc;
    if (b->n_deleted &&
        ((rc = copy_buf(pg, "COPY agg_del (org, pbx, call_id) FROM STDIN", &b->deleted, err)) ||
         (rc = exec0(pg,
                     "DELETE FROM open_calls o USING agg_del d WHERE o.org = d.org AND o.pbx = "
                     "d.pbx AND o.call_id = d.call_id",
                     err))))
        return rc;
    if (b->n_outbox &&
        ((rc = copy_buf(pg, "COPY agg_outbox (org, pbx, call_id, ended_at, target_org) FROM STDIN",
                        &b->outbox, err)) ||
         (rc = exec0(pg,
                     "INSERT INTO sf_outbox (org, pbx, call_id, ended_at, target_org) SELECT org, "
                     "pbx, call_id, ended_at, target_org FROM agg_outbox ON CONFLICT (org, pbx, "
                     "call_id, ended_at, target_org) DO NOTHING",
                     err))))
        return rc;
    if (cx->with_now && (rc = write_now(pg, agg, err)))
        return rc;

    /* The offsets last, in the same transaction: PostgreSQL is the truth. */
    for (int32_t i = 0; i < agg->n_parts; i++) {
        struct agg_part *pt = &agg->parts[i];
        if (pt->next == pt->committed)
            continue;
        char part[16], next[24];
        snprintf(part, sizeof part, "%d", pt->partition);
        snprintf(next, sizeof next, "%lld", (long long)pt->next);
        const char *p[4] = {agg->cfg->kafka.group, agg->cfg->kafka.topic, part, next};
        rc = cp_pg_exec(pg,
                        "INSERT INTO consumer_offsets (group_id, topic, partition, next_offset) "
                        "VALUES ($1, $2, $3, $4) ON CONFLICT (group_id, topic, partition) DO "
                        "UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()",
                        4, p, NULL, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int agg_batch_commit(struct agg_batch *b, bool with_now)
{
    struct agg *agg = b->agg;
    struct cp_pg_error err = {{0}, {0}, 0};
    if (!agg->pg) {
        int rc = cp_pg_connect(agg->conninfo, &(struct cp_pg_retry){1, 0, 0}, &agg->pg, &err);
        if (rc) {
            cp_warn("postgres", "could not connect: %s", err.msg);
            return rc;
        }
        agg->pg_session = false;
    }
    if (!agg->pg_session) {
        int rc;
        if ((rc = cp_pg_exec_script(agg->pg, staging_sql, &err))) {
            cp_warn("postgres", "could not prepare the session: %s", err.msg);
            PQfinish(agg->pg);
            agg->pg = NULL;
            return rc;
        }
        agg->pg_session = true;
    }
    /* Day partitions of `calls` first, each in its own short transaction. */
    for (int64_t day = b->min_day; b->n_calls && day <= b->max_day; day += 86400000000LL) {
        char d[40];
        cp_time_format_iso(day, d, sizeof d);
        d[10] = 0;
        const char *p[1] = {d};
        if (cp_pg_exec(agg->pg, "SELECT callpipe_ensure_calls_partition($1::date)", 1, p, NULL,
                       &err) < 0)
            break; /* not fatal: rows land in calls_default; the transaction below reports */
    }
    struct commit_ctx cx = {b, with_now, false, 0};
    struct cp_pg_retry retry = {2, 50, 200};
    int rc = cp_pg_txn(agg->pg, &retry, commit_fn, &cx, &err);
    if (rc) {
        if (rc != CP_ERR_STATE)
            cp_warn("postgres", "could not write the batch (%s): %s", cp_err_name(rc), err.msg);
        if (cp_err_is_retriable(rc) || PQstatus(agg->pg) != CONNECTION_OK) {
            PQfinish(agg->pg);
            agg->pg = NULL; /* reconnect and re-create the session's staging tables */
        }
        return rc;
    }
    if (cx.already) {
        cp_info("postgres", "the previous commit had succeeded (its reply was lost)");
    } else if (b->n_calls) {
        /* Counted only once committed, so the rate is rows that stayed written. */
        cp_histogram_observe(agg->m.copy_seconds, (double)cx.copy_us / 1e6);
        cp_counter_add(agg->m.copy_rows, (uint64_t)b->n_calls);
    }
    return 0;
}
