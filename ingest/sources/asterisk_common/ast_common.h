/* ast_common.h - helpers shared by the Asterisk formats (AMI, queue_log, cdr_csv). */
#ifndef CP_SOURCE_AST_COMMON_H
#define CP_SOURCE_AST_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../cp_source.h"

/*
 * Every string a Asterisk source emits goes through cp_ast_str: Asterisk
 * passes caller-ID names and channel variables through byte for byte (old
 * phones send Latin-1), and rejecting a whole queue event for one such byte
 * would lose a metric.  So strings are SANITISED, not rejected: each byte that
 * is not part of well-formed UTF-8 (and each NUL) becomes U+FFFD, and the
 * result is cut at a character boundary to `max` bytes.  The same input
 * always gives the same output, so ids stay stable.
 * Returns NULL for an empty value (absent) or out of memory (*oom set).
 */
char *cp_ast_str(struct cp_arena *arena, const char *s, size_t len, size_t max, bool *oom);

/* Exact decimal integer (optional leading '-'), 0 or CP_ERR_PARSE / CP_ERR_RANGE. */
int cp_ast_int(const char *s, size_t len, int64_t *out);

/* A duration in whole seconds from decimal seconds text: "" = -1 (unknown). 0 or negative code. */
int cp_ast_secs(const char *s, size_t len, int32_t *out);
/* The same from milliseconds, rounded to the nearest second (half up). */
int cp_ast_ms_to_secs(const char *s, size_t len, int32_t *out);

/* "1700000000.123456" (AMI Timestamp) or "1700000000" (queue_log epoch) to UTC microseconds. */
int cp_ast_epoch(const char *s, size_t len, int64_t *out_us);

/*
 * "YYYY-MM-DD HH:MM:SS[.ffffff]" in the IANA zone `tz` to UTC microseconds.
 * Returns 0, CP_ERR_CONFIG when tz is NULL (no zone configured: never guess),
 * CP_ERR_NOTFOUND for an unknown zone, CP_ERR_RANGE for a skipped local hour
 * or impossible date, CP_ERR_PARSE for anything else.  *why gets a reason.
 */
int cp_ast_local_time(const char *s, size_t len, const char *tz, int64_t *out_us, const char **why);

/* CDR disposition text (ANSWERED, NO ANSWER, BUSY, FAILED, CONGESTION, CANCEL) to the enum;
 * CP_ERR_PARSE for anything else. */
int cp_ast_disp(const char *s, size_t len, enum cp_disp *out);

/* Splits a caller ID `"Name" <number>` (or `Name <number>`, or a bare number) into its parts;
 * either may come back empty (len 0). */
void cp_ast_clid(const char *s, size_t len, const char **name, size_t *name_len, const char **num,
                 size_t *num_len);

/* Appends an x pair when the value is non-empty and there is room; false only when out of memory.
 */
bool cp_ast_x(struct cp_event *ev, struct cp_arena *arena, const char *key, const char *val,
              size_t len);

/*
 * Stamps identity (org, pbx, src, recv), derives event_id from ids[0..n),
 * validates and emits.  Returns 1 when emitted, or a negative code: the
 * emitter's own failure, or (after out->reject with a reason) an event that
 * could not be completed.
 */
int cp_ast_emit(const struct cp_source_ctx *ctx, struct cp_emit *out, struct cp_event *ev,
                const char *src, const char *const *ids, size_t n, const char *rec, size_t len);

#endif
