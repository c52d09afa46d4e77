/* cp_utf8.h - strict UTF-8 validation (no overlong forms, no surrogates, nothing above U+10FFFF). */
#ifndef CP_UTF8_H
#define CP_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/*
 * True when s[0..len) is well-formed UTF-8 per RFC 3629 / Unicode table 3-7.
 * PostgreSQL rejects overlong forms and encoded surrogates, so one such byte
 * accepted at ingest would fail the aggregator's whole COPY batch: every
 * string is checked here before it becomes part of an event.
 * NUL bytes are well-formed UTF-8; callers that forbid them check separately.
 */
bool cp_utf8_valid(const char *s, size_t len);

/* Offset of the first invalid byte, or len when valid. */
size_t cp_utf8_check(const char *s, size_t len);

#endif
