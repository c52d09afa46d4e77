/* srcutil.h - small pure helpers shared by vendor source formats: text sanitising, %XX decoding, integers. */
#ifndef CP_SRCUTIL_H
#define CP_SRCUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cp_arena.h"

/*
 * Display text (names, numbers, queue names) from a vendor: copies s[0..len)
 * into `arena` as a NUL-terminated string that is valid UTF-8 without NUL
 * bytes.  Each byte that is not part of a well-formed UTF-8 sequence (and
 * each NUL) becomes U+FFFD, and the result is cut at a character boundary so
 * that it holds at most `max` bytes.  Vendors send what their users typed (an
 * IP Office name in a legacy code page, a %FF in a FreeSWITCH variable): the
 * record is still worth keeping, so display text is sanitised, not rejected.
 * Leading and trailing spaces are kept.  Returns NULL when len == 0 (absent)
 * or out of memory (*oom set).
 */
char *cp_srcutil_text(struct cp_arena *arena, const char *s, size_t len, size_t max, bool *oom);

/*
 * Identifier text (call ids, uuids): copied as is when it is 1..max bytes of
 * valid UTF-8 without NUL; otherwise NULL with *bad set (the caller rejects
 * the record: an id we altered would no longer correlate).
 * NULL without *bad for len == 0; NULL with *oom for out of memory.
 */
char *cp_srcutil_id(struct cp_arena *arena, const char *s, size_t len, size_t max, bool *bad,
                    bool *oom);

/*
 * %XX decoding into `arena` (NUL-terminated; *out_len gets the decoded
 * length, which may contain NUL bytes and invalid UTF-8: pass the result
 * through cp_srcutil_text/_id).  `plus_space`: '+' decodes to ' '
 * (application/x-www-form-urlencoded).  A '%' not followed by two hex digits
 * is kept literally, as FreeSWITCH's own switch_url_decode does.
 */
char *cp_srcutil_urldecode(struct cp_arena *arena, const char *s, size_t len, bool plus_space,
                           size_t *out_len);

/* Standard base64 (RFC 4648 alphabet, '=' padding optional, ASCII whitespace
 * ignored) into `arena`.  NULL on a bad character, bad padding or oom. */
char *cp_srcutil_base64(struct cp_arena *arena, const char *s, size_t len, size_t *out_len);

/* Unsigned decimal s[0..len) (digits only, no sign, no spaces) into *out,
 * false when empty, not digits or above `max`. */
bool cp_srcutil_u64(const char *s, size_t len, uint64_t max, uint64_t *out);

/* Case-insensitive equality of s[0..len) with the NUL-terminated `lit`. */
bool cp_srcutil_eq(const char *s, size_t len, const char *lit);

#endif
