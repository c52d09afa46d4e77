/* twilio.h - the twilio-voice and twilio-taskrouter source formats (form-encoded webhooks). */
#ifndef CP_SOURCE_TWILIO_H
#define CP_SOURCE_TWILIO_H

#include <stddef.h>
#include <stdint.h>

#include "cp_source.h"

/* name "twilio-voice", CP_FRAME_BODY: Programmable Voice status callbacks. */
extern const struct cp_source_format cp_source_twilio_voice;
/* name "twilio-taskrouter", CP_FRAME_BODY: TaskRouter workspace event callbacks. */
extern const struct cp_source_format cp_source_twilio_taskrouter;

/* "Tue, 25 Nov 2025 10:00:00 +0000" (RFC 2822 date-time; numeric zones, UT,
 * GMT, UTC, Z and the US zone names) to UTC microseconds.  0, CP_ERR_PARSE or
 * CP_ERR_RANGE.  Pure; exposed for tests. */
int cp_twilio_parse_rfc2822(const char *s, size_t len, int64_t *out_us);

#endif
