/* cp_log.c - stderr logger: one atomic line per message, identity prefix, rate limits. */
#include "cp_log.h"
#include "cp_time.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static enum cp_log_level log_level = CP_LOG_INFO;
static const char *log_service = "callpipe";

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR", "FATAL"};

void cp_log_set_level(enum cp_log_level level)
{
    log_level = level;
}

enum cp_log_level cp_log_get_level(void)
{
    return log_level;
}

void cp_log_set_service(const char *service)
{
    log_service = service ? service : "callpipe";
}

int cp_log_level_parse(const char *s, enum cp_log_level *out)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (unsigned i = 0; i < CP_ARRAY_LEN(names); i++) {
        if (strcasecmp(s, names[i]) == 0) {
            *out = (enum cp_log_level)i;
            return 0;
        }
    }
    return CP_ERR_INVAL;
}

static void vlog(enum cp_log_level level, const char *ident, const char *fmt, va_list ap)
{
    /* Build the whole line first and write it with one write(2), so lines
     * from several loop threads never interleave mid-line. */
    char line[2048];
    char ts[32];
    cp_time_format_iso(cp_time_now_us(), ts, sizeof ts);
    int n = snprintf(line, sizeof line, "%s %s [%s%s%s] ", ts, level_names[level], log_service,
                     ident ? ":" : "", ident ? ident : "");
    if (n < 0)
        return;
    if ((size_t)n < sizeof line)
        n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    if ((size_t)n >= sizeof line - 1)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void cp_log(enum cp_log_level level, const char *ident, const char *fmt, ...)
{
    if (level < log_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, ident, fmt, ap);
    va_end(ap);
}

void cp_log_limited(struct cp_log_limit *lim, enum cp_log_level level, const char *ident,
                    const char *fmt, ...)
{
    if (level < log_level)
        return;
    int64_t now = cp_time_mono_us() / 1000;
    if (now - lim->window_start_ms >= (int64_t)lim->period_ms) {
        if (lim->suppressed > 0)
            cp_log(level, ident, "%llu similar messages suppressed in the last %u ms",
                   (unsigned long long)lim->suppressed, lim->period_ms);
        lim->window_start_ms = now;
        lim->in_window = 0;
        lim->suppressed = 0;
    }
    if (lim->in_window >= lim->burst) {
        lim->suppressed++;
        return;
    }
    lim->in_window++;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, ident, fmt, ap);
    va_end(ap);
}
