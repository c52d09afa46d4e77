/* admin.c - the emulator's /__emu/ endpoints: stored records, job history, reset, faults, usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sfemu.h"

static int strptrcmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void faults_from_config(void)
{
    for (size_t i = 0; i < G.cfg.nfaults; i++) {
        char err[256];
        if (fault_add(&G.cfg.faults[i], err, sizeof err) < 0)
            cp_error(NULL, "could not add fault %zu from the config: %s", i, err);
    }
}

static void org_reset(struct emu_org *o)
{
    for (size_t i = 0; i < o->njobs; i++)
        job_free(o->jobs[i]);
    free(o->jobs);
    o->jobs = NULL;
    o->njobs = 0;
    for (size_t i = 0; i < o->ntokens; i++)
        free(o->tokens[i].token);
    free(o->tokens);
    o->tokens = NULL;
    o->ntokens = 0;
    for (int k = 0; k < 2; k++) {
        json_object_clear(o->objects[k].records);
        json_object_clear(o->objects[k].ext_index);
        o->objects[k].next_id = 1;
        o->objects[k].autonum = 0;
    }
    o->api_used = 0;
    o->api_quota = o->cfg->daily_api_quota;
}

static struct emu_org *org_by_name(const char *name, size_t len)
{
    for (size_t i = 0; i < G.norgs; i++)
        if (strlen(G.orgs[i].cfg->name) == len && strncmp(G.orgs[i].cfg->name, name, len) == 0)
            return &G.orgs[i];
    return NULL;
}

static json_t *org_json(struct emu_org *o)
{
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(o->cfg->name));
    json_object_set_new(j, "org_id", json_string(o->org_id));
    json_object_set_new(j, "instance_url", json_string(o->url));
    json_object_set_new(j, "login_url", json_string(G.login_url));
    json_object_set_new(j, "audience", json_string(o->cfg->audience));
    json_object_set_new(j, "api_usage", json_integer(o->api_used));
    json_object_set_new(j, "api_quota", json_integer(o->api_quota));
    json_object_set_new(j, "jobs", json_integer((json_int_t)o->njobs));
    json_t *us = json_array();
    for (size_t i = 0; i < o->cfg->nusers; i++) {
        json_t *u = json_object();
        json_object_set_new(u, "username", json_string(o->cfg->users[i].username));
        json_object_set_new(u, "id", json_string(o->user_ids[i]));
        json_array_append_new(us, u);
    }
    json_object_set_new(j, "users", us);
    for (int k = 0; k < 2; k++) {
        char key[64];
        snprintf(key, sizeof key, "%s_records", o->objects[k].name);
        json_object_set_new(j, key, json_integer((json_int_t)json_object_size(o->objects[k].records)));
    }
    return j;
}

static json_t *job_history_json(struct emu_job *j)
{
    json_t *o = job_json(j, true);
    json_object_set_new(o, "deleted", json_boolean(j->deleted));
    json_object_set_new(o, "uploads", json_integer(j->uploads));
    json_object_set_new(o, "uploadBytes", json_integer((json_int_t)j->data_len));
    json_object_set_new(o, "rows", json_integer((json_int_t)j->csv.nrows));
    json_object_set_new(o, "numberRecordsSucceeded",
                        json_integer((json_int_t)(j->nresults - j->failed)));
    json_object_set_new(o, "numberRecordsUnprocessed",
                        json_integer((json_int_t)(j->parsed ? j->csv.nrows - j->pos : 0)));
    return o;
}

static void handle_admin(struct cp_http_req *req)
{
    const char *p = req->path + strlen("/__emu");
    const char *m = req->method;
    char err[512];
    if (strcmp(p, "/healthz") == 0) {
        respond_body(req, 200, "text/plain", NULL, NULL, NULL, "ok\n", 3);
    } else if (strcmp(p, "/orgs") == 0 && strcmp(m, "GET") == 0) {
        json_t *a = json_array();
        for (size_t i = 0; i < G.norgs; i++)
            json_array_append_new(a, org_json(&G.orgs[i]));
        respond_json(req, 200, NULL, a);
    } else if (strcmp(p, "/reset") == 0 && strcmp(m, "POST") == 0) {
        for (size_t i = 0; i < G.norgs; i++)
            org_reset(&G.orgs[i]);
        faults_clear();
        faults_from_config();
        cp_info(NULL, "reset");
        respond_json(req, 200, NULL, json_pack("{s:b}", "reset", 1));
    } else if (strcmp(p, "/faults") == 0 && strcmp(m, "GET") == 0) {
        json_t *a = json_array();
        for (size_t i = 0; i < G.nfaults; i++)
            json_array_append_new(a, fault_json(&G.faults[i]));
        respond_json(req, 200, NULL, a);
    } else if (strcmp(p, "/faults") == 0 && strcmp(m, "DELETE") == 0) {
        faults_clear();
        respond_json(req, 200, NULL, json_pack("{s:b}", "cleared", 1));
    } else if (strncmp(p, "/faults/", 8) == 0 && strcmp(m, "DELETE") == 0) {
        if (fault_delete(atoi(p + 8)))
            respond_json(req, 200, NULL, json_pack("{s:b}", "deleted", 1));
        else
            respond_error(req, 404, NULL, "NOT_FOUND", "no fault %s", p + 8);
    } else if (strcmp(p, "/faults") == 0 && strcmp(m, "POST") == 0) {
        json_error_t je;
        json_t *b = json_loadb((const char *)req->body, req->body_len, 0, &je);
        if (!b) {
            respond_error(req, 400, NULL, "JSON_PARSER_ERROR", "%s", je.text);
            return;
        }
        json_t *ids = json_array();
        size_t i;
        json_t *v;
        bool ok = true;
        if (json_is_array(b)) {
            json_array_foreach(b, i, v)
            {
                int id = fault_from_json(v, err, sizeof err);
                if (id < 0) {
                    ok = false;
                    break;
                }
                json_array_append_new(ids, json_integer(id));
            }
        } else {
            int id = fault_from_json(b, err, sizeof err);
            ok = id >= 0;
            json_array_append_new(ids, json_integer(id));
        }
        json_decref(b);
        if (!ok) {
            json_decref(ids);
            respond_error(req, 400, NULL, "INVALID_FAULT", "%s", err);
            return;
        }
        respond_json(req, 200, NULL, json_pack("{s:o}", "ids", ids));
    } else if (strncmp(p, "/orgs/", 6) == 0) {
        const char *name = p + 6;
        const char *sl = strchr(name, '/');
        struct emu_org *o = org_by_name(name, sl ? (size_t)(sl - name) : strlen(name));
        const char *sub = sl ? sl : "";
        if (!o) {
            respond_error(req, 404, NULL, "NOT_FOUND", "no such org");
        } else if (sub[0] == 0 && strcmp(m, "GET") == 0) {
            respond_json(req, 200, NULL, org_json(o));
        } else if (strcmp(sub, "/reset") == 0 && strcmp(m, "POST") == 0) {
            org_reset(o);
            respond_json(req, 200, NULL, json_pack("{s:b}", "reset", 1));
        } else if (strcmp(sub, "/expire_tokens") == 0 && strcmp(m, "POST") == 0) {
            for (size_t i = 0; i < o->ntokens; i++)
                o->tokens[i].expires_ms = 0;
            respond_json(req, 200, NULL, json_pack("{s:i}", "expired", (int)o->ntokens));
        } else if (strcmp(sub, "/usage") == 0 && strcmp(m, "POST") == 0) {
            json_t *b = json_loadb((const char *)req->body, req->body_len, 0, NULL);
            if (json_is_integer(json_object_get(b, "used")))
                o->api_used = json_integer_value(json_object_get(b, "used"));
            if (json_is_integer(json_object_get(b, "quota")))
                o->api_quota = json_integer_value(json_object_get(b, "quota"));
            json_decref(b);
            respond_json(req, 200, NULL, org_json(o));
        } else if (strcmp(sub, "/jobs") == 0 && strcmp(m, "GET") == 0) {
            json_t *a = json_array();
            for (size_t i = 0; i < o->njobs; i++)
                json_array_append_new(a, job_history_json(o->jobs[i]));
            respond_json(req, 200, NULL, a);
        } else if (strncmp(sub, "/records/", 9) == 0 && strcmp(m, "GET") == 0) {
            struct emu_object *obj = org_object(o, sub + 9);
            if (!obj) {
                respond_error(req, 404, NULL, "NOT_FOUND", "no such object");
                return;
            }
            /* JSON array in creation order (ids grow with creation). */
            json_t *a = json_array();
            const char **keys = xmalloc((json_object_size(obj->records) + 1) * sizeof *keys);
            size_t n = 0;
            const char *k;
            json_t *v;
            json_object_foreach(obj->records, k, v) keys[n++] = k;
            qsort(keys, n, sizeof *keys, strptrcmp);
            for (size_t i = 0; i < n; i++)
                json_array_append(a, json_object_get(obj->records, keys[i]));
            free(keys);
            respond_json(req, 200, NULL, a);
        } else {
            respond_error(req, 404, NULL, "NOT_FOUND", "unknown admin resource");
        }
    } else {
        respond_error(req, 404, NULL, "NOT_FOUND", "unknown admin resource");
    }
}
