/* cp_log.h - leveled logging to stderr with identity prefixes and rate limiting. */
#ifndef CP_LOG_H
#define CP_LOG_H

#include <stdint.h>
#include "cp_err.h"

enum cp_log_level { CP_LOG_DEBUG = 0, CP_LOG_INFO, CP_LOG_WARN, CP_LOG_ERROR, CP_LOG_FATAL };

/*
 * One line per call:  2026-11-25T10:00:00.123Z WARN [ingest:asterisk_ami pbx=eu-1] could not X: Y
 * The identity ("ingest:asterisk_ami pbx=eu-1") names the source, org or
 * connection the line is about; pass NULL for process-wide messages.
 * Messages follow PostgreSQL's style: short, lowercase, "could not X: reason".
 * Never pass a secret to these functions: nothing here can redact it.
 */
void cp_log_set_level(enum cp_log_level level);
enum cp_log_level cp_log_get_level(void);
/* Parses "debug"/"info"/"warn"/"error"; returns CP_ERR_INVAL otherwise. */
int cp_log_level_parse(const char *s, enum cp_log_level *out);
/* Process name shown before the identity, e.g. "ingest". Kept by pointer. */
void cp_log_set_service(const char *service);

void cp_log(enum cp_log_level level, const char *ident, const char *fmt, ...) CP_PRINTF(3, 4);

/*
 * Rate-limited logging for errors that can repeat per record (a PBX sending
 * garbage 10,000 times a second must not flood the log).  Each call site
 * owns one cp_log_limit; at most `burst` lines pass per `period_ms`, and the
 * first line after a quiet period reports how many were suppressed.
 */
struct cp_log_limit {
    uint32_t burst;
    uint32_t period_ms;
    int64_t window_start_ms;
    uint32_t in_window;
    uint64_t suppressed;
};
#define CP_LOG_LIMIT_INIT(burst, period_ms) {(burst), (period_ms), 0, 0, 0}

void cp_log_limited(struct cp_log_limit *lim, enum cp_log_level level, const char *ident,
                    const char *fmt, ...) CP_PRINTF(4, 5);

#define cp_debug(ident, ...)                                                                       \
    do {                                                                                           \
        if (cp_log_get_level() <= CP_LOG_DEBUG)                                                    \
            cp_log(CP_LOG_DEBUG, ident, __VA_ARGS__);                                              \
    } while (0)
#define cp_info(ident, ...) cp_log(CP_LOG_INFO, ident, __VA_ARGS__)
#define cp_warn(ident, ...) cp_log(CP_LOG_WARN, ident, __VA_ARGS__)
#define cp_error(ident, ...) cp_log(CP_LOG_ERROR, ident, __VA_ARGS__)

#endif
