/* cp_event_id.h - deterministic event ids: the same source record always maps to the same id. */
#ifndef CP_EVENT_ID_H
#define CP_EVENT_ID_H

#include <stddef.h>

#include "cp_arena.h"
#include "cp_event.h"

/* Hex characters of a derived id (128 bits of SHA-256). */
#define CP_EVENT_ID_LEN 32

/*
 * Sets ev->event_id to the first 32 hex characters of SHA-256 over
 * org, pbx, src, the n native ids (NULL entries allowed: "absent" hashes
 * differently from ""), the kind name and ts.  Every field is length-prefixed,
 * so no two different inputs share an encoding ("ab"+"c" vs "a"+"bc").
 * A source passes the ids that identify its record (call, leg, queue, ...),
 * never bytes that differ between re-sends of the same fact, so a re-sent
 * record gets the same id and the aggregator drops it.
 * ev->org, ev->pbx, ev->src and ev->kind must be set; the id string lives in
 * `arena`.  Returns 0, CP_ERR_INVAL (missing identity), CP_ERR_TOOBIG (a native
 * id over CP_EVENT_NATIVE_MAX), CP_ERR_NOMEM or CP_ERR_INTERNAL (OpenSSL).
 */
int cp_event_derive_id(struct cp_event *ev, struct cp_arena *arena, const char *const *native_ids,
                       size_t n);

#endif
