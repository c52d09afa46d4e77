/* twilio_webhook.h - what the twilio-voice and twilio-taskrouter parsers share around their
 * mapping. */
#ifndef CP_TWILIO_WEBHOOK_H
#define CP_TWILIO_WEBHOOK_H

#include <stddef.h>

#include "cp_event.h"
#include "cp_source.h"
#include "twilio_form.h"

/* One callback being parsed.  256 pairs: callers keep it off the stack. */
struct cp_twilio_req {
    const struct cp_source_ctx *ctx;
    struct cp_twilio_form form;
    char reason[96]; /* why the record is rejected */
};

/* Sets t->reason to "what: field" (or "what") and returns `code`. */
int cp_twilio_bad(struct cp_twilio_req *t, int code, const char *what, const char *field);

/* A string parameter (already UTF-8 checked by the strict form parse); "" is
 * absent (*out = NULL).  0, or CP_ERR_TOOBIG over CP_EVENT_STR_MAX. */
int cp_twilio_str(struct cp_twilio_req *t, const char *name, const char **out);

/* Adds key=val to the event's extras when val is set and there is room. */
void cp_twilio_add_x(struct cp_event *ev, const char *key, const char *val);

/*
 * Starts one record: drops a trailing line break from *len (a raw one cannot
 * occur in a form body; curl --data @file adds one), decodes the form into
 * t->form and fills ev's org, pbx, src and recv.  Returns 1 to go on, 0 for an
 * empty body, or a negative code after rejecting the record.
 */
int cp_twilio_begin(struct cp_twilio_req *t, const struct cp_source_ctx *ctx, const char *src,
                    const char *rec, size_t *len, struct cp_event *ev, struct cp_emit *out);

/* Ends one record: derives ev's id from ids[0..n), validates and emits it.
 * Returns 1, or a negative code (after rejecting, unless the emitter failed). */
int cp_twilio_finish(struct cp_twilio_req *t, struct cp_event *ev, const char *const *ids, size_t n,
                     const char *rec, size_t len, struct cp_emit *out);

#endif
