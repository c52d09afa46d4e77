/* twilio_form.h - form-urlencoded bodies as decoded name/value pairs (Twilio webhooks). */
#ifndef CP_TWILIO_FORM_H
#define CP_TWILIO_FORM_H

#include <stdbool.h>
#include <stddef.h>

#include "cp_arena.h"

#define CP_TWILIO_FORM_MAX 256 /* pairs in one body; Twilio sends about 20 */

struct cp_twilio_pair {
    const char *name, *val; /* decoded, NUL-terminated */
    size_t name_len, val_len;
};

struct cp_twilio_form {
    struct cp_twilio_pair p[CP_TWILIO_FORM_MAX];
    size_t n;
};

/*
 * Decodes body[0..len): pairs separated by '&', name and value by the first
 * '=', '+' is a space, %XX a byte.  Strings go into `arena`.  Empty segments
 * are skipped.  Returns 0 or a negative code with a short static *why:
 * CP_ERR_PARSE "bad percent-encoding", CP_ERR_TOOBIG "too many fields",
 * CP_ERR_NOMEM.  With `strict`, names and values must also be valid UTF-8
 * without NUL (CP_ERR_UTF8 "invalid utf-8") and names unique (CP_ERR_PARSE
 * "duplicate key"); *bad_name then points at the offending name (or NULL).
 */
int cp_twilio_form_parse(const char *body, size_t len, bool strict, struct cp_arena *arena,
                         struct cp_twilio_form *form, const char **why, const char **bad_name);

/* The value of `name`, or NULL. */
const struct cp_twilio_pair *cp_twilio_form_get(const struct cp_twilio_form *form,
                                                const char *name);

#endif
