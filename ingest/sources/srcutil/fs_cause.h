/* fs_cause.h - FreeSWITCH hangup cause names to the canonical disposition and Q.850 code. */
#ifndef CP_SRCUTIL_FS_CAUSE_H
#define CP_SRCUTIL_FS_CAUSE_H

#include <stdbool.h>
#include <stddef.h>

#include "cp_event.h"

/*
 * pbx-formats.md section 9: an answered leg is answered (whatever cause ended
 * it: NORMAL_CLEARING, a transfer, a media timeout); otherwise USER_BUSY →
 * busy, NO_ANSWER / NO_USER_RESPONSE → no_answer, ORIGINATOR_CANCEL (and
 * LOSE_RACE / PICKED_OFF: another phone took the call) → canceled,
 * NORMAL_CIRCUIT_CONGESTION / SWITCH_CONGESTION → congestion, anything else
 * → failed.  No cause at all → unknown.
 */
enum cp_disp cp_fs_cause_disp(const char *cause, size_t len, bool answered);

/* The Q.850 code FreeSWITCH gives a cause name (switch_types.h), 0 when the
 * name is not a Q.850 cause (ORIGINATOR_CANCEL is 487, a SIP-ish value). */
int cp_fs_cause_q850(const char *cause, size_t len);

#endif
