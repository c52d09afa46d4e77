/* twilio_webhook.c - what the twilio-voice and twilio-taskrouter parsers share around their
 * mapping. */
#include "twilio_webhook.h"

#include <stdio.h>

#include "cp_err.h"
#include "cp_event_id.h"

int cp_twilio_bad(struct cp_twilio_req *t, int code, const char *what, const char *field)
{
    if (field)
        snprintf(t->reason, sizeof t->reason, "%s: %.60s", what, field);
    else
        snprintf(t->reason, sizeof t->reason, "%s", what);
    return code;
}

int cp_twilio_str(struct cp_twilio_req *t, const char *name, const char **out)
{
    const struct cp_twilio_pair *p = cp_twilio_form_get(&t->form, name);
    *out = NULL;
    if (!p || p->val_len == 0) return 0;
    if (p->val_len > CP_EVENT_STR_MAX) return cp_twilio_bad(t, CP_ERR_TOOBIG, "too long", name);
    *out = p->val;
    return 0;
}

void cp_twilio_add_x(struct cp_event *ev, const char *key, const char *val)
{
    if (val && ev->nx < CP_EVENT_X_MAX) ev->x[ev->nx++] = (struct cp_kv){key, val};
}

int cp_twilio_begin(struct cp_twilio_req *t, const struct cp_source_ctx *ctx, const char *src,
                    const char *rec, size_t *len, struct cp_event *ev, struct cp_emit *out)
{
    t->ctx = ctx;
    t->reason[0] = '\0';
    while (*len > 0 && (rec[*len - 1] == '\n' || rec[*len - 1] == '\r'))
        (*len)--;
    const char *why = NULL, *bad_name = NULL;
    int rc = cp_twilio_form_parse(rec, *len, true, ctx->arena, &t->form, &why, &bad_name);
    if (rc < 0) {
        cp_twilio_bad(t, rc, why, bad_name);
        out->reject(out, 0, rec, *len, t->reason);
        return rc;
    }
    if (t->form.n == 0) return 0;
    cp_event_init(ev);
    ev->org = ctx->org;
    ev->pbx = ctx->pbx;
    ev->src = src;
    ev->recv = ctx->recv_us;
    return 1;
}

int cp_twilio_finish(struct cp_twilio_req *t, struct cp_event *ev, const char *const *ids, size_t n,
                     const char *rec, size_t len, struct cp_emit *out)
{
    int rc = cp_event_derive_id(ev, t->ctx->arena, ids, n);
    if (rc < 0) {
        out->reject(out, 0, rec, len, rc == CP_ERR_NOMEM ? "out of memory" : "could not derive id");
        return rc;
    }
    const char *vwhy = NULL;
    if ((rc = cp_event_validate(ev, &vwhy)) < 0) {
        cp_twilio_bad(t, rc, "invalid event", vwhy);
        out->reject(out, 0, rec, len, t->reason);
        return rc;
    }
    rc = out->event(out, ev);
    return rc < 0 ? rc : 1;
}
