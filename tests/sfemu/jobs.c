/* jobs.c - Bulk API 2.0 ingest jobs of the emulator: resources, asynchronous processing, results. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "sfemu.h"

static const char *const state_names[] = {"Open",        "UploadComplete", "InProgress",
                                          "JobComplete", "Failed",         "Aborted"};
static const char *const operations[] = {"insert", "update", "upsert", "delete", "hardDelete",
                                         NULL};

static bool is_terminal(enum emu_state s)
{
    return s == JS_COMPLETE || s == JS_FAILED || s == JS_ABORTED;
}

static void job_free(struct emu_job *j)
{
    free(j->ext_field);
    free(j->error_message);
    free(j->data);
    csv_free(&j->csv);
    free(j->colfield);
    for (size_t i = 0; i < j->nresults; i++)
        free(j->results[i].error);
    free(j->results);
    json_decref(j->chunk_ext);
    free(j->fail_msg);
    free(j);
}

static json_t *job_json(const struct emu_job *j, bool full)
{
    char t[32];
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(j->id));
    json_object_set_new(o, "operation", json_string(j->operation));
    json_object_set_new(o, "object", json_string(j->obj->name));
    json_object_set_new(o, "createdById", json_string(j->created_by));
    fmt_sf_time(j->created_ms, t);
    json_object_set_new(o, "createdDate", json_string(t));
    fmt_sf_time(j->modstamp_ms, t);
    json_object_set_new(o, "systemModstamp", json_string(t));
    json_object_set_new(o, "state", json_string(state_names[j->state]));
    if (j->ext_field)
        json_object_set_new(o, "externalIdFieldName", json_string(j->ext_field));
    json_object_set_new(o, "concurrencyMode", json_string("Parallel"));
    json_object_set_new(o, "contentType", json_string("CSV"));
    json_object_set_new(o, "apiVersion", json_real(j->api_major / 10.0));
    if (full)
        json_object_set_new(o, "jobType", json_string("V2Ingest"));
    char url[128];
    snprintf(url, sizeof url, "services/data/v%d.%d/jobs/ingest/%s/batches", j->api_major / 10,
             j->api_major % 10, j->id);
    json_object_set_new(o, "contentUrl", json_string(url));
    json_object_set_new(o, "lineEnding", json_string(j->crlf ? "CRLF" : "LF"));
    json_object_set_new(o, "columnDelimiter", json_string(j->delim_name));
    if (full) {
        int64_t total = j->started_ms ? (j->ended_ms ? j->ended_ms : wall_ms()) - j->started_ms : 0;
        json_object_set_new(o, "numberRecordsProcessed", json_integer((json_int_t)j->nresults));
        json_object_set_new(o, "numberRecordsFailed", json_integer((json_int_t)j->failed));
        json_object_set_new(o, "retries", json_integer(0));
        json_object_set_new(o, "totalProcessingTime", json_integer(total));
        json_object_set_new(o, "apiActiveProcessingTime", json_integer(total));
        json_object_set_new(o, "apexProcessingTime", json_integer(0));
        if (j->error_message)
            json_object_set_new(o, "errorMessage", json_string(j->error_message));
    }
    return o;
}

static struct emu_object *org_object(struct emu_org *o, const char *name)
{
    for (int i = 0; i < 2; i++)
        if (strcasecmp(o->objects[i].name, name) == 0)
            return &o->objects[i];
    return NULL;
}

static struct emu_job *org_job(struct emu_org *o, const char *id, size_t idlen)
{
    for (size_t i = 0; i < o->njobs; i++)
        if (!o->jobs[i]->deleted && strlen(o->jobs[i]->id) >= 15 && (idlen == 15 || idlen == 18) &&
            strncmp(o->jobs[i]->id, id, 15) == 0)
            return o->jobs[i];
    return NULL;
}

static void job_finish(struct emu_job *j, enum emu_state st, const char *msg)
{
    j->state = st;
    j->ended_ms = j->modstamp_ms = wall_ms();
    if (msg) {
        free(j->error_message);
        j->error_message = xstrdup(msg);
    }
    cp_info(j->org->cfg->name, "job %s %s: %zu processed, %llu failed%s%s", j->id,
            state_names[st], j->nresults, (unsigned long long)j->failed, msg ? ": " : "",
            msg ? msg : "");
}

/* ---- create / upload / state changes ------------------------------------------------------ */

static void job_create(struct cp_http_req *req, struct emu_org *o, int user, int ver,
                       const char *limit)
{
    json_error_t jerr;
    json_t *b = json_loadb((const char *)req->body, req->body_len, 0, &jerr);
    if (!json_is_object(b)) {
        respond_error(req, 400, limit, "JSON_PARSER_ERROR", "%s at [line:%d, column:%d]",
                      jerr.text, jerr.line, jerr.column);
        json_decref(b);
        return;
    }
    static const char *const keys[] = {"object",          "operation",   "externalIdFieldName",
                                       "contentType",     "columnDelimiter", "lineEnding",
                                       "assignmentRuleId", NULL};
    const char *k;
    json_t *v;
    json_object_foreach(b, k, v)
    {
        bool known = false;
        for (int i = 0; keys[i]; i++)
            known |= strcmp(k, keys[i]) == 0;
        if (!known) {
            respond_error(req, 400, limit, "JSON_PARSER_ERROR",
                          "Unrecognized field \"%s\" at [line:1, column:1]", k);
            json_decref(b);
            return;
        }
    }
    const char *object = json_string_value(json_object_get(b, "object"));
    const char *op = json_string_value(json_object_get(b, "operation"));
    const char *ext = json_string_value(json_object_get(b, "externalIdFieldName"));
    const char *ctype = json_string_value(json_object_get(b, "contentType"));
    const char *delim = json_string_value(json_object_get(b, "columnDelimiter"));
    const char *le = json_string_value(json_object_get(b, "lineEnding"));
    struct emu_object *obj = object ? org_object(o, object) : NULL;
    int opi = -1;
    for (int i = 0; op && operations[i]; i++)
        if (strcmp(op, operations[i]) == 0)
            opi = i;
    static const char *const dnames[] = {"COMMA", "TAB", "PIPE", "SEMICOLON", "CARET",
                                         "BACKQUOTE", NULL};
    static const char dchars[] = {',', '\t', '|', ';', '^', '`'};
    int di = delim ? -1 : 0;
    for (int i = 0; delim && dnames[i]; i++)
        if (strcmp(delim, dnames[i]) == 0)
            di = i;
    struct emu_field *ef = NULL;
    if (!object || !op) {
        respond_error(req, 400, limit, "INVALIDJOB", "InvalidJob : %s is required",
                      !object ? "object" : "operation");
    } else if (opi < 0) {
        respond_error(req, 400, limit, "JSON_PARSER_ERROR",
                      "Cannot deserialize value of type OperationEnum from String \"%s\"", op);
    } else if (!obj) {
        respond_error(req, 400, limit, "INVALIDJOB", "InvalidJob : Unable to find object: %s",
                      object);
    } else if (ctype && strcmp(ctype, "CSV") != 0) {
        respond_error(req, 400, limit, "INVALIDJOB",
                      "InvalidJob : Unsupported content type: %s", ctype);
    } else if (di < 0) {
        respond_error(req, 400, limit, "JSON_PARSER_ERROR",
                      "Cannot deserialize value of type ColumnDelimiterEnum from String \"%s\"",
                      delim);
    } else if (le && strcmp(le, "LF") != 0 && strcmp(le, "CRLF") != 0) {
        respond_error(req, 400, limit, "JSON_PARSER_ERROR",
                      "Cannot deserialize value of type LineEndingEnum from String \"%s\"", le);
    } else if (opi == 2 && !ext) {
        respond_error(req, 400, limit, "INVALIDJOB",
                      "InvalidJob : External ID field name is required for upsert");
    } else if (opi == 2 && (!(ef = obj_field(obj, ext)) || !(ef->external_id || ef->id_lookup))) {
        respond_error(req, 400, limit, "INVALIDJOB",
                      "InvalidJob : The field %s is not an External ID or indexed field for %s",
                      ext, obj->name);
    } else if (!obj->createable && (opi == 0 || opi == 2)) {
        respond_error(req, 400, limit, "INVALIDJOB",
                      "InvalidJob : Entity '%s' is not api createable", obj->name);
    } else {
        struct emu_job *j = xmalloc(sizeof *j);
        memset(j, 0, sizeof *j);
        make_sfid("750", (uint64_t)o->idx * 1000000 + ++o->next_job, j->id);
        j->org = o;
        j->obj = obj;
        snprintf(j->operation, sizeof j->operation, "%s", op);
        j->ext_field = opi == 2 ? xstrdup(ef->name) : NULL;
        j->crlf = le && strcmp(le, "CRLF") == 0;
        j->delim = dchars[di];
        j->delim_name = dnames[di];
        j->state = JS_OPEN;
        snprintf(j->created_by, sizeof j->created_by, "%s", o->user_ids[user]);
        j->created_ms = j->modstamp_ms = wall_ms();
        j->api_major = ver;
        j->fail_after = -1;
        j->rows_per_s = (double)G.cfg.rows_per_s;
        j->seed = splitmix64(G.seed ^ (o->next_job * 7919));
        o->jobs = xrealloc(o->jobs, (o->njobs + 1) * sizeof *o->jobs);
        o->jobs[o->njobs++] = j;
        cp_info(o->cfg->name, "job %s created: %s %s", j->id, op, obj->name);
        respond_json(req, 200, limit, job_json(j, false));
    }
    json_decref(b);
}

static int gunzip(const uint8_t *in, size_t n, char **out, size_t *outlen)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
        return -1;
    struct sb b = {0};
    char buf[65536];
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n;
    int rc;
    do {
        zs.next_out = (Bytef *)buf;
        zs.avail_out = sizeof buf;
        rc = inflate(&zs, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END) {
            inflateEnd(&zs);
            free(b.p);
            return -1;
        }
        sb_add(&b, buf, sizeof buf - zs.avail_out);
    } while (rc != Z_STREAM_END);
    inflateEnd(&zs);
    *out = b.p ? b.p : xstrdup("");
    *outlen = b.len;
    return 0;
}

static void job_upload(struct cp_http_req *req, struct emu_job *j, const char *limit)
{
    const char *ce = cp_http_req_header(req, "Content-Encoding");
    const char *data = (const char *)req->body;
    size_t len = req->body_len;
    char *inflated = NULL;
    if (j->state != JS_OPEN) {
        respond_error(req, 400, limit, "INVALIDJOBSTATE",
                      "Job with id %s is not in the Open state; data can only be uploaded to an "
                      "Open job", j->id);
        return;
    }
    if (j->uploads > 0 && G.cfg.second_upload == 0) {
        respond_error(req, 400, limit, "BULK_API_ERROR",
                      "Found multiple contents for job: <%s>, please 'Close' / 'Abort' / 'Delete' "
                      "the current Job then create a new Job and make sure you only do 'PUT' once "
                      "on a given Job.",
                      j->id);
        return;
    }
    if (ce && strcasecmp(ce, "gzip") == 0) {
        if (!G.cfg.gzip_upload || gunzip(req->body, req->body_len, &inflated, &len) != 0) {
            respond_error(req, 400, limit, "INVALID_CONTENT_ENCODING",
                          "the request body could not be decompressed as gzip");
            return;
        }
        data = inflated;
    }
    if (j->data_len + len > (size_t)G.cfg.max_upload_bytes) {
        respond_error(req, 400, limit, "EXCEEDED_QUOTA",
                      "ExceededQuota : the upload exceeds %lld bytes (150 MB base64-encoded)",
                      (long long)G.cfg.max_upload_bytes);
        free(inflated);
        return;
    }
    j->data = xrealloc(j->data, j->data_len + len + 1);
    memcpy(j->data + j->data_len, data, len);
    j->data_len += len;
    j->data[j->data_len] = 0;
    j->uploads++;
    j->modstamp_ms = wall_ms();
    free(inflated);
    respond_body(req, 201, NULL, limit, NULL, NULL, "", 0);
}

static void job_patch(struct cp_http_req *req, struct emu_job *j, const char *limit)
{
    json_t *b = json_loadb((const char *)req->body, req->body_len, 0, NULL);
    const char *st = json_string_value(json_object_get(b, "state"));
    if (!st) {
        respond_error(req, 400, limit, "JSON_PARSER_ERROR", "state is required");
    } else if (strcmp(st, "UploadComplete") == 0) {
        if (j->state != JS_OPEN) {
            respond_error(req, 400, limit, "INVALIDJOBSTATE",
                          "Job with id %s is not in the Open state (state: %s)", j->id,
                          state_names[j->state]);
        } else {
            j->state = JS_UPLOAD_COMPLETE;
            j->modstamp_ms = wall_ms();
            int64_t delay = G.cfg.queue_delay_ms;
            struct emu_fault *f = fault_match_job(FK_SLOW, j->org, j->obj->name);
            if (f) {
                if (f->c.rows_per_s)
                    j->rows_per_s = (double)f->c.rows_per_s;
                if (f->c.queue_delay_ms)
                    delay = f->c.queue_delay_ms;
            }
            f = fault_match_job(FK_JOB_FAIL, j->org, j->obj->name);
            if (f) {
                j->fail_after = f->c.after_rows;
                j->fail_msg = xstrdup(f->c.message ? f->c.message
                                                   : "InternalServerError : injected job failure");
            }
            j->start_at = (int64_t)uv_now(G.loop) + delay;
            respond_json(req, 200, limit, job_json(j, false));
        }
    } else if (strcmp(st, "Aborted") == 0) {
        if (is_terminal(j->state)) {
            respond_error(req, 400, limit, "INVALIDJOBSTATE",
                          "Aborting already %s Job not allowed",
                          j->state == JS_COMPLETE ? "Completed"
                          : j->state == JS_FAILED ? "Failed"
                                                  : "Aborted");
        } else {
            job_finish(j, JS_ABORTED, NULL);
            respond_json(req, 200, limit, job_json(j, false));
        }
    } else {
        respond_error(req, 400, limit, "INVALIDJOBSTATE", "Invalid state change to %s", st);
    }
    json_decref(b);
}

static void job_delete(struct cp_http_req *req, struct emu_org *o, struct emu_job *j,
                       const char *limit)
{
    if (j->state == JS_OPEN || j->state == JS_IN_PROGRESS) {
        respond_error(req, 400, limit, "INVALIDJOBSTATE",
                      "Job with id %s can not be deleted in state %s", j->id,
                      state_names[j->state]);
        return;
    }
    j->deleted = true;
    j->modstamp_ms = wall_ms();
    cp_info(o->cfg->name, "job %s deleted", j->id);
    respond_body(req, 204, NULL, limit, NULL, NULL, "", 0);
}

/* ---- results ------------------------------------------------------------------------------ */

static void csv_row_out(struct sb *b, const struct emu_csv *c, size_t r)
{
    for (size_t k = 0; k < c->nvals[r]; k++) {
        if (k)
            sb_add(b, ",", 1);
        sb_csv_quoted(b, c->rows[r][k]);
    }
}

static void job_results(struct cp_http_req *req, struct emu_job *j, int kind, const char *limit)
{
    struct sb b = {0};
    const struct emu_csv *c = &j->csv;
    if (kind == 2 && !j->parsed) {
        /* Never parsed (job-level failure or not processed yet): the upload as it came. */
        if (j->data)
            sb_add(&b, j->data, j->data_len);
    } else {
        if (kind == 0)
            sb_str(&b, "\"sf__Id\",\"sf__Created\"");
        else if (kind == 1)
            sb_str(&b, "\"sf__Id\",\"sf__Error\"");
        for (size_t k = 0; k < c->ncols; k++) {
            if (k || kind != 2)
                sb_add(&b, ",", 1);
            sb_csv_name(&b, c->header[k]);
        }
        if (c->ncols || kind != 2)
            sb_add(&b, "\n", 1);
        if (kind == 2) {
            size_t from = j->parsed ? j->pos : 0;
            for (size_t r = from; r < c->nrows; r++) {
                csv_row_out(&b, c, r);
                sb_add(&b, "\n", 1);
            }
        } else {
            /* Salesforce does not keep input order (parallel internal batches). */
            size_t *idx = xmalloc((j->nresults + 1) * sizeof *idx);
            for (size_t i = 0; i < j->nresults; i++)
                idx[i] = i;
            if (G.cfg.result_order == 0) {
                uint64_t s = j->seed;
                for (size_t i = j->nresults; i > 1; i--) {
                    s = splitmix64(s);
                    size_t k = (size_t)(s % i);
                    size_t t = idx[i - 1];
                    idx[i - 1] = idx[k];
                    idx[k] = t;
                }
            }
            for (size_t i = 0; i < j->nresults; i++) {
                const struct emu_result *r = &j->results[idx[i]];
                if ((kind == 0) != (r->error == NULL))
                    continue;
                sb_csv_quoted(&b, r->id);
                sb_add(&b, ",", 1);
                sb_csv_quoted(&b, kind == 0 ? (r->created ? "true" : "false") : r->error);
                if (c->nvals[r->row])
                    sb_add(&b, ",", 1);
                csv_row_out(&b, c, r->row);
                sb_add(&b, "\n", 1);
            }
            free(idx);
        }
    }
    respond_body(req, 200, "text/csv", limit, NULL, NULL, b.p ? b.p : "", b.len);
    free(b.p);
}

static void job_list(struct cp_http_req *req, struct emu_org *o, int ver, const char *limit)
{
    size_t from = 0;
    const char *q = strstr(req->query, "queryLocator=");
    if (q)
        from = (size_t)strtoull(q + 13, NULL, 10);
    size_t page = (size_t)G.cfg.list_page_size, n = 0;
    json_t *recs = json_array();
    size_t i;
    for (i = from; i < o->njobs && n < page; i++) {
        if (o->jobs[i]->deleted)
            continue;
        json_array_append_new(recs, job_json(o->jobs[i], false));
        n++;
    }
    while (i < o->njobs && o->jobs[i]->deleted)
        i++;
    json_t *r = json_object();
    bool done = i >= o->njobs;
    json_object_set_new(r, "done", json_boolean(done));
    json_object_set_new(r, "records", recs);
    if (done) {
        json_object_set_new(r, "nextRecordsUrl", json_null());
    } else {
        char u[128];
        snprintf(u, sizeof u, "/services/data/v%d.%d/jobs/ingest?queryLocator=%zu", ver / 10,
                 ver % 10, i);
        json_object_set_new(r, "nextRecordsUrl", json_string(u));
    }
    respond_json(req, 200, limit, r);
}

/* rest: the path after ".../jobs/ingest". */
static void handle_ingest(struct cp_http_req *req, struct emu_org *o, int user, int ver,
                          const char *rest, const char *limit)
{
    const char *m = req->method;
    if (rest[0] == 0 || strcmp(rest, "/") == 0) {
        if (strcmp(m, "POST") == 0)
            job_create(req, o, user, ver, limit);
        else if (strcmp(m, "GET") == 0)
            job_list(req, o, ver, limit);
        else
            respond_error(req, 405, limit, "METHOD_NOT_ALLOWED",
                          "HTTP Method '%s' not allowed. Allowed are GET,POST", m);
        return;
    }
    const char *id = rest + 1;
    const char *slash = strchr(id, '/');
    size_t idlen = slash ? (size_t)(slash - id) : strlen(id);
    struct emu_job *j = org_job(o, id, idlen);
    if (!j) {
        respond_error(req, 404, limit, "NOT_FOUND", "The requested resource does not exist");
        return;
    }
    const char *sub = slash ? slash + 1 : "";
    size_t sublen = strlen(sub);
    if (sublen && sub[sublen - 1] == '/')
        sublen--;
    if (sublen == 0) {
        if (strcmp(m, "GET") == 0)
            respond_json(req, 200, limit, job_json(j, true));
        else if (strcmp(m, "PATCH") == 0)
            job_patch(req, j, limit);
        else if (strcmp(m, "DELETE") == 0)
            job_delete(req, o, j, limit);
        else
            respond_error(req, 405, limit, "METHOD_NOT_ALLOWED",
                          "HTTP Method '%s' not allowed. Allowed are DELETE,GET,PATCH", m);
        return;
    }
    int kind = -1;
    if (sublen == 7 && strncmp(sub, "batches", 7) == 0)
        kind = 3;
    else if (sublen == 17 && strncasecmp(sub, "successfulResults", 17) == 0)
        kind = 0;
    else if (sublen == 13 && strncasecmp(sub, "failedResults", 13) == 0)
        kind = 1;
    else if (sublen == 18 && strncasecmp(sub, "unprocessedrecords", 18) == 0)
        kind = 2;
    if (kind < 0) {
        respond_error(req, 404, limit, "NOT_FOUND", "The requested resource does not exist");
    } else if (kind == 3) {
        if (strcmp(m, "PUT") == 0)
            job_upload(req, j, limit);
        else
            respond_error(req, 405, limit, "METHOD_NOT_ALLOWED",
                          "HTTP Method '%s' not allowed. Allowed are PUT", m);
    } else if (strcmp(m, "GET") != 0) {
        respond_error(req, 405, limit, "METHOD_NOT_ALLOWED",
                      "HTTP Method '%s' not allowed. Allowed are GET", m);
    } else {
        job_results(req, j, kind, limit);
    }
}

/* ---- processing ------------------------------------------------------------------------- */

static char *ext_key(const char *field, const char *value)
{
    struct sb b = {0};
    sb_str(&b, field);
    sb_add(&b, "\x1f", 1);
    sb_str(&b, value);
    return b.p;
}

static const char *json_text(json_t *v, char buf[64])
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, 64, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    return NULL;
}

static void index_record(struct emu_object *obj, json_t *rec, const char *id, bool add)
{
    for (size_t i = 0; i < obj->nfields; i++) {
        struct emu_field *f = &obj->fields[i];
        if (!f->external_id)
            continue;
        char buf[64];
        const char *t = json_text(json_object_get(rec, f->name), buf);
        if (!t)
            continue;
        char *k = ext_key(f->name, t);
        if (add)
            json_object_set_new(obj->ext_index, k, json_string(id));
        else
            json_object_del(obj->ext_index, k);
        free(k);
    }
}

static bool user_known(struct emu_org *o, const char *id)
{
    for (size_t i = 0; i < o->cfg->nusers; i++)
        if (sfid_eq(o->user_ids[i], id))
            return true;
    return false;
}

/* Applies one row; NULL on success (res filled), else a malloc'd sf__Error. */
static char *apply_row(struct emu_job *j, size_t r, struct emu_result *res)
{
    struct emu_object *obj = j->obj;
    struct emu_csv *c = &j->csv;
    char **vals = c->rows[r];
    struct sb e = {0};
    bool del = strcmp(j->operation, "delete") == 0 || strcmp(j->operation, "hardDelete") == 0;
    bool upd = strcmp(j->operation, "update") == 0;
    bool ups = strcmp(j->operation, "upsert") == 0;
    int idcol = -1, extcol = -1;
    for (size_t k = 0; k < c->ncols; k++) {
        if (j->colfield[k] >= 0 && strcmp(obj->fields[j->colfield[k]].name, "Id") == 0)
            idcol = (int)k;
        if (ups && j->colfield[k] >= 0 &&
            strcmp(obj->fields[j->colfield[k]].name, j->ext_field) == 0)
            extcol = (int)k;
    }
    json_t *existing = NULL;
    const char *existing_id = NULL;
    char eid[19]; /* a copy: re-indexing frees the index's own string */
    if (del || upd) {
        const char *idv = vals[idcol];
        if (!idv[0]) {
            sb_printf(&e, "MISSING_ARGUMENT:Id not specified in an %s call:--",
                      del ? "delete" : "update");
            return e.p;
        }
        if (!is_sfid(idv)) {
            sb_printf(&e, "MALFORMED_ID:Invalid id: %.100s:--", idv);
            return e.p;
        }
        const char *k;
        json_t *v;
        json_object_foreach(obj->records, k, v)
        {
            if (sfid_eq(k, idv)) {
                existing = v;
                snprintf(eid, sizeof eid, "%s", k);
                existing_id = eid;
                break;
            }
        }
        if (!existing) {
            if (del)
                sb_printf(&e, "ENTITY_IS_DELETED:entity is deleted:--");
            else
                sb_printf(&e, "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--");
            return e.p;
        }
        snprintf(res->id, sizeof res->id, "%s", existing_id);
        if (del) {
            index_record(obj, existing, existing_id, false);
            json_object_del(obj->records, res->id);
            res->created = false;
            return NULL;
        }
    }
    if (ups) {
        const char *xv = vals[extcol];
        if (!xv[0] || strcmp(xv, "#N/A") == 0) {
            sb_printf(&e, "MISSING_ARGUMENT:%s not specified:--", j->ext_field);
            return e.p;
        }
        if (r / 10000 != (r ? (r - 1) / 10000 : 0) || !j->chunk_ext) {
            json_decref(j->chunk_ext);
            j->chunk_ext = json_object();
        }
        if (json_object_get(j->chunk_ext, xv)) {
            sb_printf(&e, "DUPLICATE_VALUE:Duplicate external id specified: %.100s:%s --", xv,
                      j->ext_field);
            return e.p;
        }
        json_object_set_new(j->chunk_ext, xv, json_true());
        char *k = ext_key(j->ext_field, xv);
        const char *id = json_string_value(json_object_get(obj->ext_index, k));
        free(k);
        if (id) {
            snprintf(eid, sizeof eid, "%s", id);
            existing = json_object_get(obj->records, eid);
            existing_id = eid;
            snprintf(res->id, sizeof res->id, "%s", id);
        }
    }
    /* Collect the new values; validate every cell first, then check the row as a whole. */
    json_t *set = json_object();
    struct sb noupd = {0}, noupd_f = {0};
    for (size_t k = 0; k < c->ncols; k++) {
        struct emu_field *f = &obj->fields[j->colfield[k]];
        const char *raw = vals[k];
        if (strcmp(f->name, "Id") == 0) {
            if (!existing && !ups && raw[0]) {
                sb_printf(&noupd, "%s%s", noupd.len ? ", " : "", f->name);
                sb_printf(&noupd_f, "%s%s", noupd_f.len ? " " : "", f->name);
            }
            continue;
        }
        if (!raw[0])
            continue; /* empty = no value on insert, unchanged on update */
        bool allowed = existing ? (f->updateable || !G.cfg.createonly_update_error)
                                : f->createable;
        if (existing && ups && k == (size_t)extcol)
            allowed = true;
        if (!allowed) {
            sb_printf(&noupd, "%s%s", noupd.len ? ", " : "", f->name);
            sb_printf(&noupd_f, "%s%s", noupd_f.len ? " " : "", f->name);
            continue;
        }
        if (existing && !f->updateable)
            continue; /* create-only field, switch off: ignored on update */
        if (strcmp(raw, "#N/A") == 0) {
            json_object_set_new(set, f->name, json_null());
            continue;
        }
        json_t *v;
        char *err = convert_value(f, raw, G.cfg.booleans, &v);
        if (err) {
            json_decref(set);
            free(noupd.p);
            free(noupd_f.p);
            return err;
        }
        if (f->type == FT_REFERENCE && f->ref_to && strcmp(f->ref_to, "User") == 0 &&
            !user_known(j->org, raw)) {
            json_decref(v);
            json_decref(set);
            free(noupd.p);
            free(noupd_f.p);
            sb_printf(&e, "INVALID_CROSS_REFERENCE_KEY:%s: id value of incorrect type: %.100s:%s --",
                      f->label, raw, f->name);
            return e.p;
        }
        json_object_set_new(set, f->name, v);
    }
    if (noupd.len) {
        sb_printf(&e,
                  "INVALID_FIELD_FOR_INSERT_UPDATE:Unable to create/update fields: %s. Please "
                  "check the security settings of this field and verify that it is read/write "
                  "for your profile or permission set.:%s --",
                  noupd.p, noupd_f.p);
        json_decref(set);
        free(noupd.p);
        free(noupd_f.p);
        return e.p;
    }
    free(noupd.p);
    free(noupd_f.p);
    /* Required fields: absent on insert, or nulled on update. */
    struct sb miss = {0}, miss_f = {0};
    for (size_t i = 0; i < obj->nfields; i++) {
        struct emu_field *f = &obj->fields[i];
        if (f->nillable || f->defaulted || !f->createable)
            continue;
        json_t *v = json_object_get(set, f->name);
        bool missing = existing ? (v && json_is_null(v)) : (!v || json_is_null(v));
        if (missing) {
            sb_printf(&miss, "%s%s", miss.len ? ", " : "", f->name);
            sb_printf(&miss_f, "%s%s", miss_f.len ? " " : "", f->name);
        }
    }
    if (miss.len) {
        sb_printf(&e, "REQUIRED_FIELD_MISSING:Required fields are missing: [%s]:%s --", miss.p,
                  miss_f.p);
        free(miss.p);
        free(miss_f.p);
        json_decref(set);
        return e.p;
    }
    /* Unique external ids. */
    const char *fk;
    json_t *fv;
    json_object_foreach(set, fk, fv)
    {
        struct emu_field *f = obj_field(obj, fk);
        char buf[64];
        const char *t = json_text(fv, buf);
        if (!f->external_id || !f->unique || !t)
            continue;
        char *k = ext_key(f->name, t);
        const char *other = json_string_value(json_object_get(obj->ext_index, k));
        free(k);
        if (other && (!existing_id || strcmp(other, existing_id) != 0)) {
            sb_printf(&e,
                      "DUPLICATE_VALUE:duplicate value found: %s duplicates value on record with "
                      "id: %s:--",
                      f->name, other);
            json_decref(set);
            return e.p;
        }
    }
    char now[32];
    fmt_sf_time(wall_ms(), now);
    const char *uid = j->created_by;
    if (existing) {
        index_record(obj, existing, existing_id, false);
        json_object_update(existing, set);
        json_object_set_new(existing, "LastModifiedDate", json_string(now));
        json_object_set_new(existing, "SystemModstamp", json_string(now));
        json_object_set_new(existing, "LastModifiedById", json_string(uid));
        index_record(obj, existing, existing_id, true);
        res->created = false;
    } else {
        json_t *rec = json_object();
        for (size_t i = 0; i < obj->nfields; i++)
            json_object_set_new(rec, obj->fields[i].name, json_null());
        make_sfid(obj->key_prefix, (uint64_t)j->org->idx * 100000000 + obj->next_id++, res->id);
        json_object_set_new(rec, "Id", json_string(res->id));
        json_object_set_new(rec, "IsDeleted", json_false());
        json_object_set_new(rec, "CreatedDate", json_string(now));
        json_object_set_new(rec, "LastModifiedDate", json_string(now));
        json_object_set_new(rec, "SystemModstamp", json_string(now));
        json_object_set_new(rec, "CreatedById", json_string(uid));
        json_object_set_new(rec, "LastModifiedById", json_string(uid));
        json_object_set_new(rec, "OwnerId", json_string(uid));
        if (strcmp(obj->name, "VoiceCall") == 0) {
            char name[32];
            snprintf(name, sizeof name, "VC-%08llu", (unsigned long long)++obj->autonum);
            json_object_set_new(rec, "Name", json_string(name));
            json_object_set_new(rec, "IsRecorded", json_false());
            json_object_set_new(rec, "IsDiarizationOptIn", json_false());
            json_object_set_new(rec, "CallResolution", json_string("Resolved"));
        } else {
            json_object_set_new(rec, "Status", json_string("Not Started"));
            json_object_set_new(rec, "Priority", json_string("Normal"));
        }
        for (size_t i = 0; i < obj->nfields; i++)
            if (obj->fields[i].custom && obj->fields[i].type == FT_BOOLEAN)
                json_object_set_new(rec, obj->fields[i].name, json_false());
        json_object_update(rec, set);
        index_record(obj, rec, res->id, true);
        json_object_set_new(obj->records, res->id, rec);
        res->created = true;
    }
    json_decref(set);
    return NULL;
}

static void process_row(struct emu_job *j, size_t r)
{
    struct emu_result res;
    memset(&res, 0, sizeof res);
    res.row = r;
    char *err = NULL;
    if (j->csv.row_error[r]) {
        struct sb e = {0};
        sb_printf(&e, "%s:--", j->csv.row_error[r]);
        err = e.p;
    }
    if (!err)
        err = fault_match_row(j->org, j->obj, &j->csv, r);
    if (!err)
        err = apply_row(j, r, &res);
    if (err) {
        res.error = err;
        res.created = false;
        /* sf__Id is empty for failed inserts; from API 53.0 failed updates carry the id. */
        if (j->api_major < 530 || strcmp(j->operation, "insert") == 0)
            res.id[0] = 0;
        j->failed++;
    }
    j->results = xrealloc(j->results, (j->nresults + 1) * sizeof *j->results);
    j->results[j->nresults++] = res;
}

/* UploadComplete -> InProgress: parse and check the header; job-level errors fail here. */
static void job_start(struct emu_job *j)
{
    const char *data = j->data ? j->data : "";
    size_t len = j->data_len;
    if (G.cfg.bom == 1 && len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) {
        data += 3;
        len -= 3;
    }
    j->started_ms = wall_ms();
    char *err = csv_parse(data, len, j->delim, j->crlf, G.cfg.strict_quoted_newlines,
                          G.cfg.require_final_newline, &j->csv);
    if (err) {
        csv_free(&j->csv);
        job_finish(j, JS_FAILED, err);
        free(err);
        return;
    }
    struct emu_csv *c = &j->csv;
    j->colfield = xmalloc((c->ncols + 1) * sizeof *j->colfield);
    bool del = strcmp(j->operation, "delete") == 0 || strcmp(j->operation, "hardDelete") == 0;
    bool need_id = del || strcmp(j->operation, "update") == 0;
    bool have_id = false, have_ext = false;
    struct sb e = {0};
    for (size_t k = 0; k < c->ncols && !e.len; k++) {
        /* Header names match fields case-insensitively (Salesforce blanks result columns then,
         * a known issue not emulated). */
        int fi = -1;
        for (size_t i = 0; i < j->obj->nfields; i++)
            if (strcasecmp(j->obj->fields[i].name, c->header[k]) == 0)
                fi = (int)i;
        if (fi < 0) {
            sb_printf(&e, "InvalidBatch : Field name not found : %s", c->header[k]);
            break;
        }
        for (size_t p = 0; p < k; p++)
            if (j->colfield[p] == fi)
                sb_printf(&e, "InvalidBatch : Duplicate field name: %s", c->header[k]);
        j->colfield[k] = fi;
        have_id |= strcmp(j->obj->fields[fi].name, "Id") == 0;
        have_ext |= j->ext_field && strcmp(j->obj->fields[fi].name, j->ext_field) == 0;
    }
    if (!e.len && del && (c->ncols != 1 || !have_id))
        sb_printf(&e, "InvalidBatch : The '%s' batch must contain only ids", j->operation);
    else if (!e.len && need_id && !have_id)
        sb_printf(&e, "InvalidBatch : Field name not found : Id");
    else if (!e.len && j->ext_field && !have_ext)
        sb_printf(&e, "InvalidBatch : External ID field %s not found in the header",
                  j->ext_field);
    if (e.len) {
        csv_free(&j->csv);
        job_finish(j, JS_FAILED, e.p);
        free(e.p);
        return;
    }
    j->parsed = true;
    j->state = JS_IN_PROGRESS;
    j->modstamp_ms = wall_ms();
    j->last_tick = (int64_t)uv_now(G.loop);
    j->budget = 0;
}

static void job_step(struct emu_job *j, int64_t now)
{
    if (j->state == JS_UPLOAD_COMPLETE && now >= j->start_at) {
        job_start(j);
        if (j->state != JS_IN_PROGRESS)
            return;
    }
    if (j->state != JS_IN_PROGRESS)
        return;
    size_t n;
    if (j->rows_per_s <= 0) {
        n = j->csv.nrows;
    } else {
        j->budget += j->rows_per_s * (double)(now - j->last_tick) / 1000.0;
        n = (size_t)j->budget;
        j->budget -= (double)n;
    }
    j->last_tick = now;
    while (j->pos < j->csv.nrows || j->fail_after >= 0) {
        if (j->fail_after >= 0 && j->pos >= (size_t)j->fail_after) {
            job_finish(j, JS_FAILED, j->fail_msg);
            return;
        }
        if (j->pos >= j->csv.nrows || n == 0)
            break;
        process_row(j, j->pos++);
        n--;
    }
    if (j->pos >= j->csv.nrows)
        job_finish(j, JS_COMPLETE, NULL);
    else
        j->modstamp_ms = wall_ms();
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
    int64_t now = (int64_t)uv_now(G.loop);
    for (size_t i = 0; i < G.norgs; i++)
        for (size_t k = 0; k < G.orgs[i].njobs; k++)
            if (!G.orgs[i].jobs[k]->deleted)
                job_step(G.orgs[i].jobs[k], now);
}
