/* freeswitch_esl.h - the freeswitch-esl source format: Event Socket plain events (see README.md here). */
#ifndef CP_SOURCE_FREESWITCH_ESL_H
#define CP_SOURCE_FREESWITCH_ESL_H

#include <stdbool.h>
#include <stddef.h>

#include "../../cp_source.h"

/* Name "freeswitch-esl", framing CP_FRAME_CUSTOM (frame() cuts whole outer
 * messages by their Content-Length), stateless. */
extern const struct cp_source_format cp_source_freeswitch_esl;

/* Largest outer header block and body frame() accepts. */
#define CP_ESL_HEADERS_MAX 8192
#define CP_ESL_BODY_MAX (4u << 20)

/*
 * Finds header `name` (case-insensitive) in a block of "Name: value\n" lines
 * that ends at the first empty line or at len.  *val / *vlen get the raw
 * (still URL-encoded) value, trailing CR removed.  False when absent.
 */
bool cp_esl_header(const char *block, size_t len, const char *name, const char **val,
                   size_t *vlen);

/* Length of the header block at buf[0..len) including its terminating empty
 * line ("\n\n", CRLF tolerated); 0 when the empty line has not arrived yet. */
size_t cp_esl_headers_len(const char *buf, size_t len);

#endif
