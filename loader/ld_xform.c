/* ld_xform.c - field transforms from calls columns to Salesforce CSV values (pure). */
#include "loader.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cp_time.h"

#define TS(col) "(extract(epoch FROM c." col ") * 1000000)::bigint"

/* Order = column order of the claim query after its fixed outbox columns. */
const struct ld_source ld_sources[] = {
    {"key", LD_SRC_KEY, "NULL"},
    {"org", LD_SRC_TEXT, "o.org"},
    {"pbx", LD_SRC_TEXT, "o.pbx"},
    {"call_id", LD_SRC_TEXT, "o.call_id"},
    {"ended_at", LD_SRC_TIME, "(extract(epoch FROM o.ended_at) * 1000000)::bigint"},
    {"direction", LD_SRC_TEXT, "c.direction"},
    {"from_number", LD_SRC_TEXT, "c.from_number"},
    {"from_name", LD_SRC_TEXT, "c.from_name"},
    {"to_number", LD_SRC_TEXT, "c.to_number"},
    {"final_to", LD_SRC_TEXT, "c.final_to"},
    {"queue", LD_SRC_TEXT, "c.queue"},
    {"agent", LD_SRC_TEXT, "c.agent"},
    {"started_at", LD_SRC_TIME, TS("started_at")},
    {"queued_at", LD_SRC_TIME, TS("queued_at")},
    {"answered_at", LD_SRC_TIME, TS("answered_at")},
    {"wait_ms", LD_SRC_MS, "c.wait_ms"},
    {"talk_ms", LD_SRC_MS, "c.talk_ms"},
    {"hold_ms", LD_SRC_MS, "c.hold_ms"},
    {"acw_ms", LD_SRC_MS, "c.acw_ms"},
    {"handle_ms", LD_SRC_MS, "c.handle_ms"},
    /* whole call, start to end; NULL when the start is unknown */
    {"duration_ms", LD_SRC_MS,
     "(extract(epoch FROM (c.ended_at - c.started_at)) * 1000)::bigint"},
    {"disposition", LD_SRC_TEXT, "c.disposition"},
    {"queue_outcome", LD_SRC_TEXT, "c.queue_outcome"},
    {"wrapup", LD_SRC_TEXT, "c.wrapup"},
    {"hangup_side", LD_SRC_TEXT, "c.hangup_side"},
    {"source", LD_SRC_TEXT, "c.source"},
};
const size_t ld_n_sources = CP_ARRAY_LEN(ld_sources);

const struct ld_source *ld_source_find(const char *name)
{
    for (size_t i = 0; name && i < ld_n_sources; i++)
        if (strcmp(ld_sources[i].name, name) == 0)
            return &ld_sources[i];
    return NULL;
}

static int put(char *out, size_t cap, const char *s, size_t n)
{
    if (n + 1 > cap)
        return CP_ERR_TOOBIG;
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

/*
 * Conservative on purpose ("unknown is unknown: never guess"): a value is rewritten only
 * when it is plainly a phone number; extensions, SIP users and anything with letters pass
 * through unchanged (Salesforce phone fields are free text).
 */
int ld_e164(const char *in, const char *country, char *out, size_t cap)
{
    const char *p = in;
    if (strncmp(p, "tel:", 4) == 0)
        p += 4;
    else if (strncmp(p, "sip:", 4) == 0 || strncmp(p, "sips:", 5) == 0)
        p = strchr(p, ':') + 1;
    size_t user_len = strcspn(p, "@;");
    char digits[32];
    size_t nd = 0;
    bool plus = false;
    for (size_t i = 0; i < user_len; i++) {
        char ch = p[i];
        if (isdigit((unsigned char)ch)) {
            if (nd + 1 >= sizeof digits)
                return put(out, cap, in, strlen(in));
            digits[nd++] = ch;
        } else if (ch == '+' && nd == 0 && !plus) {
            plus = true;
        } else if (ch == ' ' || ch == '-' || ch == '(' || ch == ')' || ch == '.' || ch == '/') {
            continue;
        } else {
            return put(out, cap, in, strlen(in));
        }
    }
    digits[nd] = '\0';
    char buf[40];
    const char *d = digits;
    const char *cc = country && *country ? country : NULL;
    if (plus) {
        /* already international */
    } else if (nd > 2 && d[0] == '0' && d[1] == '0') {
        d += 2; /* 00 international prefix */
    } else if (cc && strcmp(cc, "1") == 0 && nd == 11 && d[0] == '1') {
        /* NANP with the trunk 1 */
    } else if (cc && nd >= 2 && d[0] == '0' && d[1] != '0') {
        snprintf(buf, sizeof buf, "%s%s", cc, d + 1); /* national trunk 0 */
        d = buf;
    } else if (cc && strcmp(cc, "1") == 0 && nd == 10) {
        snprintf(buf, sizeof buf, "1%s", d);
        d = buf;
    } else {
        return put(out, cap, in, strlen(in)); /* extension or ambiguous: keep */
    }
    size_t n = strlen(d);
    if (n < 8 || n > 15 || d[0] == '0')
        return put(out, cap, in, strlen(in));
    if (n + 2 > cap)
        return CP_ERR_TOOBIG;
    out[0] = '+';
    memcpy(out + 1, d, n + 1);
    return 0;
}

int ld_picklist_check(const char *map)
{
    if (!map || !*map)
        return CP_ERR_PARSE;
    const char *p = map;
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *eq = memchr(p, '=', n);
        if (!eq || eq == p)
            return CP_ERR_PARSE;
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

const char *ld_picklist(const char *map, const char *val, char *buf, size_t cap)
{
    const char *dflt = NULL;
    size_t dflt_len = 0;
    size_t vlen = strlen(val);
    const char *p = map;
    while (p && *p) {
        size_t n = strcspn(p, ",");
        const char *eq = memchr(p, '=', n);
        if (eq) {
            size_t kl = (size_t)(eq - p);
            const char *v = eq + 1;
            size_t vl = n - kl - 1;
            if (kl == vlen && memcmp(p, val, kl) == 0) {
                if (vl + 1 > cap)
                    return NULL;
                memcpy(buf, v, vl);
                buf[vl] = '\0';
                return buf;
            }
            if (kl == 1 && *p == '*') {
                dflt = v;
                dflt_len = vl;
            }
        }
        p += n;
        if (*p == ',')
            p++;
    }
    if (!dflt || dflt_len + 1 > cap)
        return NULL;
    memcpy(buf, dflt, dflt_len);
    buf[dflt_len] = '\0';
    return buf;
}

/* Cuts at most max bytes on a UTF-8 character boundary. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

int ld_xform_apply(const struct ld_field_cfg *f, const char *raw, char *buf, size_t cap,
                   const char **out)
{
    *out = NULL;
    if (f->transform == LD_X_CONSTANT) {
        *out = f->value ? f->value : "";
        return 0;
    }
    if (!raw) {
        /* Unknown: the configured default (a required Salesforce field), else null. */
        *out = f->dflt;
        return 0;
    }
    int rc = 0;
    switch (f->transform) {
    case LD_X_TEXT:
    case LD_X_KEY: {
        size_t n = strlen(raw);
        if (f->max_length > 0)
            n = utf8_cut(raw, n, (size_t)f->max_length);
        rc = put(buf, cap, raw, n);
        break;
    }
    case LD_X_E164:
        rc = ld_e164(raw, f->country, buf, cap);
        break;
    case LD_X_DATETIME:
    case LD_X_DATE: {
        char *end;
        long long us = strtoll(raw, &end, 10);
        if (*end || end == raw)
            return CP_ERR_PARSE;
        if (cap < 32)
            return CP_ERR_TOOBIG;
        cp_time_format_iso_ms(us, buf, cap);
        if (f->transform == LD_X_DATE)
            buf[10] = '\0';
        break;
    }
    case LD_X_SECONDS: {
        char *end;
        long long ms = strtoll(raw, &end, 10);
        if (*end || end == raw || ms < 0)
            return CP_ERR_PARSE;
        snprintf(buf, cap, "%lld", (ms + 500) / 1000);
        break;
    }
    case LD_X_PICKLIST:
        *out = ld_picklist(f->map, raw, buf, cap);
        return 0;
    default:
        return CP_ERR_INVAL;
    }
    if (rc == 0)
        *out = buf;
    return rc;
}

/* Text External ID fields hold at most 255 characters; long keys become a digest of themselves. */
#define LD_KEY_MAX 80

int ld_row_key(const char *org, const char *pbx, const char *call_id, const char *ended_us,
               char *buf, size_t cap)
{
    char full[2048];
    int n = snprintf(full, sizeof full, "%s|%s|%s|%s", org, pbx, call_id, ended_us);
    if (n < 0 || (size_t)n >= sizeof full)
        return CP_ERR_TOOBIG;
    if (n <= LD_KEY_MAX) {
        if ((size_t)n >= cap)
            return CP_ERR_TOOBIG;
        memcpy(buf, full, (size_t)n + 1);
        return n;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (EVP_Digest(full, (size_t)n, md, &mdlen, EVP_sha256(), NULL) != 1)
        return CP_ERR_INTERNAL;
    if (cap < 7 + 2 * (size_t)mdlen + 1)
        return CP_ERR_TOOBIG;
    memcpy(buf, "sha256:", 7);
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(buf + 7 + 2 * i, 3, "%02x", md[i]);
    return (int)(7 + 2 * mdlen);
}
