/* fs_reader.h - reading FreeSWITCH values (ESL headers, JSON CDR variables): decoding, ids,
 * numbers, reject reasons. */
#ifndef CP_SRCUTIL_FS_READER_H
#define CP_SRCUTIL_FS_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cp_arena.h"

/* What reading one record's values found wrong; the parser rejects the record
 * with it once mapping is done. */
struct cp_fs_reader {
    struct cp_arena *arena; /* decoded values and ids live here */
    bool oom;               /* an allocation failed: "out of memory" */
    const char *reason;     /* the first reason to reject, or NULL */
    char reason_buf[96];
    int code; /* the error code that goes with `reason` */
};

/* Keeps the first reason only: "what: field", or `what` (static) without a field. */
void cp_fs_reader_bad(struct cp_fs_reader *r, int code, const char *what, const char *field);

/*
 * A raw value raw[0..rlen) %XX-decoded into *s / *len ('+' stays literal:
 * FreeSWITCH escapes a real '+').  Without a '%' the raw bytes are used as they
 * are (and true is returned even when rlen is 0).  A decoded value is false
 * when nothing is left, or when memory runs out (r->oom).
 */
bool cp_fs_reader_decode(struct cp_fs_reader *r, const char *raw, size_t rlen, const char **s,
                         size_t *len);

/* An identifier (cp_srcutil_id, CP_EVENT_STR_MAX): NULL with reason "bad id:
 * <name>" when it is not valid UTF-8 within the bound. */
const char *cp_fs_reader_id(struct cp_fs_reader *r, const char *name, const char *s, size_t len);

/* An unsigned decimal up to `max` into *out; false with reason "bad number:
 * <name>" (CP_ERR_RANGE) otherwise. */
bool cp_fs_reader_u64(struct cp_fs_reader *r, const char *name, const char *s, size_t len,
                      uint64_t max, uint64_t *out);

#endif
