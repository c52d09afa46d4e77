/* cucm.h - the cisco-cucm-cdr source format (CUCM CDR flat files) and its file-ledger helpers. */
#ifndef CP_SOURCE_CUCM_H
#define CP_SOURCE_CUCM_H

#include <stddef.h>

#include "cp_source.h"

/* name "cisco-cucm-cdr", framing CP_FRAME_BODY: one file is one record. */
extern const struct cp_source_format cp_source_cucm_cdr;

/* What a file name in the CDR Repository push directory is (pbx-formats.md section 4). */
enum cp_cucm_file_kind {
    CP_CUCM_FILE_OTHER = 0, /* not a CUCM billing file: leave it alone */
    CP_CUCM_FILE_CDR,       /* cdr_<cluster>_<node>_<YYYYMMDDHHMM>_<seq>: parse it */
    CP_CUCM_FILE_CMR,       /* cmr_...: diagnostic, parse() accepts and ignores it */
    CP_CUCM_FILE_PARTIAL,   /* "_" prefix or a temporary suffix: still being written */
};

/* Classifies a base name (no directory part).  Pure. */
enum cp_cucm_file_kind cp_cucm_file_classify(const char *name);

/* Hex characters of a file identity (SHA-256). */
#define CP_CUCM_FILE_ID_LEN 64

/*
 * A stable identity for the engine's "each file once" ledger: SHA-256 over a
 * version tag, the length-prefixed base name, the size and the content, as 64
 * lowercase hex characters in out[] (NUL-terminated).  A re-pushed copy of the
 * same file (same name, same bytes) gets the same identity across restarts; a
 * file rewritten under the same name gets a new one.
 * Returns 0, CP_ERR_INVAL or CP_ERR_INTERNAL (OpenSSL).
 */
int cp_cucm_file_identity(const char *name, const void *data, size_t len,
                          char out[CP_CUCM_FILE_ID_LEN + 1]);

#endif
