/* fs_reader.c - reading FreeSWITCH values (ESL headers, JSON CDR variables): decoding, ids,
 * numbers, reject reasons. */
#include "fs_reader.h"

#include <stdio.h>
#include <string.h>

#include "cp_err.h"
#include "cp_event.h"
#include "srcutil.h"

void cp_fs_reader_bad(struct cp_fs_reader *r, int code, const char *what, const char *field)
{
    if (r->reason) return;
    r->code = code;
    if (field) {
        snprintf(r->reason_buf, sizeof r->reason_buf, "%s: %s", what, field);
        r->reason = r->reason_buf;
    } else {
        r->reason = what;
    }
}

bool cp_fs_reader_decode(struct cp_fs_reader *r, const char *raw, size_t rlen, const char **s,
                         size_t *len)
{
    if (!memchr(raw, '%', rlen)) {
        *s = raw;
        *len = rlen;
        return true;
    }
    char *d = cp_srcutil_urldecode(r->arena, raw, rlen, false, len);
    if (!d) {
        r->oom = true;
        return false;
    }
    *s = d;
    return *len > 0;
}

const char *cp_fs_reader_id(struct cp_fs_reader *r, const char *name, const char *s, size_t len)
{
    bool bad_id = false;
    const char *id = cp_srcutil_id(r->arena, s, len, CP_EVENT_STR_MAX, &bad_id, &r->oom);
    if (bad_id) cp_fs_reader_bad(r, CP_ERR_PARSE, "bad id", name);
    return id;
}

bool cp_fs_reader_u64(struct cp_fs_reader *r, const char *name, const char *s, size_t len,
                      uint64_t max, uint64_t *out)
{
    if (!cp_srcutil_u64(s, len, max, out)) {
        cp_fs_reader_bad(r, CP_ERR_RANGE, "bad number", name);
        return false;
    }
    return true;
}
