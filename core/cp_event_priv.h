/* cp_event_priv.h - internals shared by the event codec files (not for other modules). */
#ifndef CP_EVENT_PRIV_H
#define CP_EVENT_PRIV_H

#include <stdbool.h>

#include "cp_event.h"

/* cp_event_validate, optionally without the per-string length and UTF-8
 * checks: the decoder has already made them on every string it kept, and
 * repeating them costs a fifth of the decode time. */
int cp_event_validate_opt(const struct cp_event *ev, bool check_strings, const char **why);

#endif
