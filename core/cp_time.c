/* cp_time.c - clocks, ISO-8601 formatting and parsing, and local-time conversion from TZif files. */
#include "cp_time.h"
#include "cp_err.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t cp_time_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t cp_time_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Howard Hinnant's days_from_civil: exact for the whole int range, no libc TZ state. */
int64_t cp_time_days_from_civil(int y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static size_t format_iso(int64_t us, char *buf, size_t cap, int frac_digits)
{
    int64_t secs = us / 1000000, frac = us % 1000000;
    if (frac < 0) {
        frac += 1000000;
        secs--;
    }
    int64_t days = secs / 86400, rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    int n;
    if (frac_digits == 6)
        n = snprintf(buf, cap, "%04d-%02u-%02uT%02d:%02d:%02d.%06dZ", y, m, d, (int)(rem / 3600),
                     (int)(rem / 60 % 60), (int)(rem % 60), (int)frac);
    else
        n = snprintf(buf, cap, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", y, m, d, (int)(rem / 3600),
                     (int)(rem / 60 % 60), (int)(rem % 60), (int)(frac / 1000));
    return n < 0 ? 0 : (size_t)n;
}

size_t cp_time_format_iso(int64_t us, char *buf, size_t cap)
{
    return format_iso(us, buf, cap, 6);
}

size_t cp_time_format_iso_ms(int64_t us, char *buf, size_t cap)
{
    return format_iso(us, buf, cap, 3);
}

/* ---- TZif (RFC 8536) zones, loaded once per name and kept for the process lifetime ---- */

struct tz_zone {
    char name[64];
    int n;            /* transitions */
    int64_t *at;      /* UTC seconds of each transition */
    int32_t *off_at;  /* UT offset in effect from at[i] */
    int32_t off_init; /* offset before the first transition */
    struct tz_zone *next;
};

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tz_zone *tz_cache;

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int valid_zone_name(const char *tz)
{
    size_t len = strlen(tz);
    if (len == 0 || len >= 64 || tz[0] == '/' || strstr(tz, ".."))
        return 0;
    for (const char *p = tz; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '/' || *p == '_' || *p == '-' || *p == '+'))
            return 0;
    return 1;
}

static struct tz_zone *tz_parse(const char *name, const unsigned char *d, size_t len)
{
    if (len < 44 || memcmp(d, "TZif", 4) != 0)
        return NULL;
    /* Skip the v1 (32-bit) block and use the v2+ 64-bit block when present. */
    const unsigned char *h = d;
    int v2 = d[4] >= '2';
    size_t hdr_len = 44;
    uint32_t isutcnt = be32(h + 20), isstdcnt = be32(h + 24), leapcnt = be32(h + 28),
             timecnt = be32(h + 32), typecnt = be32(h + 36), charcnt = be32(h + 40);
    size_t tsz = 4;
    if (v2) {
        size_t v1 = timecnt * 5ull + typecnt * 6ull + charcnt + leapcnt * 8ull + isstdcnt + isutcnt;
        if (hdr_len + v1 + 44 > len)
            return NULL;
        h = d + hdr_len + v1;
        if (memcmp(h, "TZif", 4) != 0)
            return NULL;
        isutcnt = be32(h + 20), isstdcnt = be32(h + 24), leapcnt = be32(h + 28);
        timecnt = be32(h + 32), typecnt = be32(h + 36), charcnt = be32(h + 40);
        tsz = 8;
    }
    const unsigned char *p = h + hdr_len;
    size_t need = timecnt * (tsz + 1) + typecnt * 6ull + charcnt;
    if (typecnt == 0 || typecnt > 256 || timecnt > 100000 || (size_t)(p - d) + need > len)
        return NULL;
    struct tz_zone *z = calloc(1, sizeof *z);
    if (!z)
        return NULL;
    z->at = calloc(timecnt + 1, sizeof *z->at);
    z->off_at = calloc(timecnt + 1, sizeof *z->off_at);
    if (!z->at || !z->off_at) {
        free(z->at);
        free(z->off_at);
        free(z);
        return NULL;
    }
    snprintf(z->name, sizeof z->name, "%s", name);
    const unsigned char *times = p, *idx = p + timecnt * tsz, *types = idx + timecnt;
    for (uint32_t i = 0; i < timecnt; i++) {
        int64_t t = tsz == 8 ? (int64_t)((uint64_t)be32(times + i * 8) << 32 | be32(times + i * 8 + 4))
                             : (int32_t)be32(times + i * 4);
        unsigned ti = idx[i] < typecnt ? idx[i] : 0;
        z->at[i] = t;
        z->off_at[i] = (int32_t)be32(types + ti * 6);
    }
    z->n = (int)timecnt;
    /* RFC 8536: local time type 0 applies before the first transition. */
    z->off_init = (int32_t)be32(types);
    return z;
}

static const struct tz_zone *tz_get(const char *name)
{
    if (!valid_zone_name(name))
        return NULL;
    pthread_mutex_lock(&tz_lock);
    struct tz_zone *z;
    for (z = tz_cache; z; z = z->next)
        if (strcmp(z->name, name) == 0)
            break;
    if (!z) {
        char path[128];
        const char *dir = getenv("TZDIR");
        snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
        FILE *f = fopen(path, "rb");
        if (f) {
            unsigned char buf[1 << 16];
            size_t len = fread(buf, 1, sizeof buf, f);
            fclose(f);
            z = tz_parse(name, buf, len);
            if (z) {
                z->next = tz_cache;
                tz_cache = z;
            }
        }
    }
    pthread_mutex_unlock(&tz_lock);
    return z;
}

static int32_t tz_offset_at(const struct tz_zone *z, int64_t utc)
{
    /* Binary search for the last transition at or before utc. */
    int lo = 0, hi = z->n - 1, found = -1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (z->at[mid] <= utc) {
            found = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return found < 0 ? z->off_init : z->off_at[found];
}

int cp_time_local_to_utc(const char *tz, int year, int mon, int day, int hour, int min, int sec,
                         int64_t *out_us)
{
    if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 || min < 0 ||
        min > 59 || sec < 0 || sec > 60)
        return CP_ERR_RANGE;
    const struct tz_zone *z = tz_get(tz);
    if (!z)
        return CP_ERR_NOTFOUND;
    int64_t local = cp_time_days_from_civil(year, (unsigned)mon, (unsigned)day) * 86400 +
                    hour * 3600 + min * 60 + sec;
    /* A local time maps to UTC = local - off for every offset `off` that is
     * actually in force at that UTC instant.  Try the offsets in force a day
     * either side (zones never change offset twice within a day): two
     * matches = the repeated hour (take the earlier instant, i.e. the first
     * occurrence); none = the skipped hour. */
    int32_t cands[2] = {tz_offset_at(z, local - 86400), tz_offset_at(z, local + 86400)};
    int64_t best = 0;
    int found = 0;
    for (int i = 0; i < 2; i++) {
        int64_t utc = local - cands[i];
        if (tz_offset_at(z, utc) == cands[i] && (!found || utc < best)) {
            best = utc;
            found = 1;
        }
    }
    if (!found)
        return CP_ERR_RANGE;
    *out_us = best * 1000000;
    return 0;
}

/* ---- ISO-8601 parsing ---- */

static int digits(const char *s, size_t len, size_t *i, int n, int *out)
{
    int v = 0;
    for (int k = 0; k < n; k++) {
        if (*i >= len || s[*i] < '0' || s[*i] > '9')
            return -1;
        v = v * 10 + (s[(*i)++] - '0');
    }
    *out = v;
    return 0;
}

static int expect(const char *s, size_t len, size_t *i, char c)
{
    if (*i >= len || s[*i] != c)
        return -1;
    (*i)++;
    return 0;
}

int cp_time_parse_iso(const char *s, size_t len, const char *tz, int64_t *out_us)
{
    size_t i = 0;
    int y, mo, d, h, mi, se;
    if (digits(s, len, &i, 4, &y) || expect(s, len, &i, '-') || digits(s, len, &i, 2, &mo) ||
        expect(s, len, &i, '-') || digits(s, len, &i, 2, &d))
        return CP_ERR_PARSE;
    if (i >= len || (s[i] != 'T' && s[i] != 't' && s[i] != ' '))
        return CP_ERR_PARSE;
    i++;
    if (digits(s, len, &i, 2, &h) || expect(s, len, &i, ':') || digits(s, len, &i, 2, &mi) ||
        expect(s, len, &i, ':') || digits(s, len, &i, 2, &se))
        return CP_ERR_PARSE;
    int64_t frac_us = 0;
    if (i < len && (s[i] == '.' || s[i] == ',')) {
        i++;
        int nd = 0;
        int64_t scale = 100000;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (nd < 6) {
                frac_us += (s[i] - '0') * scale;
                scale /= 10;
            }
            nd++;
            i++;
        }
        if (nd == 0 || nd > 9)
            return CP_ERR_PARSE;
    }
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 60)
        return CP_ERR_RANGE;
    if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
        return CP_ERR_RANGE;
    if (se == 60)
        se = 59; /* leap second: clamp, events never land on it exactly */
    int64_t base;
    if (i == len) {
        if (!tz)
            return CP_ERR_PARSE; /* no offset and no configured zone: unknown is unknown */
        int rc = cp_time_local_to_utc(tz, y, mo, d, h, mi, se, &base);
        if (rc)
            return rc;
        *out_us = base + frac_us;
        return 0;
    }
    int64_t off = 0;
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        int sign = s[i] == '-' ? -1 : 1, oh, om;
        i++;
        if (digits(s, len, &i, 2, &oh))
            return CP_ERR_PARSE;
        if (i < len && s[i] == ':')
            i++;
        if (digits(s, len, &i, 2, &om) || oh > 23 || om > 59)
            return CP_ERR_PARSE;
        off = sign * (oh * 3600 + om * 60);
    } else {
        return CP_ERR_PARSE;
    }
    if (i != len)
        return CP_ERR_PARSE;
    base = cp_time_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se -
           off;
    *out_us = base * 1000000 + frac_us;
    return 0;
}
