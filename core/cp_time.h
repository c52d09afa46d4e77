/* cp_time.h - wall and monotonic clocks in microseconds, ISO-8601 and time-zone helpers. */
#ifndef CP_TIME_H
#define CP_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Wall clock, UTC microseconds since the Unix epoch. */
int64_t cp_time_now_us(void);
/* Monotonic clock in microseconds (for timeouts and latencies only). */
int64_t cp_time_mono_us(void);

/* "2026-11-25T10:00:00.123456Z" (always UTC, microseconds). Returns length. */
size_t cp_time_format_iso(int64_t us, char *buf, size_t cap);
/* "2026-11-25T10:00:00.000Z" (milliseconds, Salesforce dateTime form). */
size_t cp_time_format_iso_ms(int64_t us, char *buf, size_t cap);

/*
 * Parses ISO-8601 / RFC 3339 date-times: "YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm)"
 * (a space may replace 'T').  A value without an offset is rejected unless
 * `tz` is given, in which case it is local time in that IANA zone.
 * Returns 0 or CP_ERR_PARSE / CP_ERR_RANGE.
 */
int cp_time_parse_iso(const char *s, size_t len, const char *tz, int64_t *out_us);

/*
 * Converts a broken-down local time in IANA zone `tz` ("Europe/Berlin") to UTC
 * microseconds.  Ambiguous times (the repeated hour at the end of DST) take
 * the first (DST) occurrence; times in the skipped hour are CP_ERR_RANGE.
 * Thread-safe: does not touch the process TZ.
 */
int cp_time_local_to_utc(const char *tz, int year, int mon, int day, int hour, int min, int sec,
                         int64_t *out_us);

/* UTC civil date to days since epoch, and back (proleptic Gregorian). */
int64_t cp_time_days_from_civil(int y, unsigned m, unsigned d);

/* Floor `us` to a multiple of `interval_s` seconds (UTC interval start). */
static inline int64_t cp_time_floor(int64_t us, int64_t interval_s)
{
    int64_t step = interval_s * 1000000;
    int64_t q = us / step;
    if (us % step < 0)
        q--;
    return q * step;
}

#endif
