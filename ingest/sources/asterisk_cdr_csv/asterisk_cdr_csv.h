/* asterisk_cdr_csv.h - the asterisk-cdr-csv source format: cdr_csv Master.csv lines. */
#ifndef CP_SOURCE_ASTERISK_CDR_CSV_H
#define CP_SOURCE_ASTERISK_CDR_CSV_H

#include "../../cp_source.h"

/* Name "asterisk-cdr-csv", framing CP_FRAME_LINES, per-connection state holding the column
 * layout (auto-detected from the column count unless set with cp_ast_cdr_csv_set_columns). */
extern const struct cp_source_format cp_source_asterisk_cdr_csv;

/*
 * Tells a connection's parser which optional columns cdr.conf writes, for the
 * two column counts that cannot be told apart (17: uniqueid OR userfield;
 * 20: the same plus newcdrcolumns).  `spec` is the source's `cdr_columns`
 * setting: "auto" (default: 16/18/19/21 columns are accepted, 17/20 rejected
 * as ambiguous), "none", "uniqueid", "userfield" or "uniqueid,userfield"
 * (cdr.conf loguniqueid / loguserfield); newcdrcolumns is always detected
 * from the count.  Call it right after state_create.
 * Returns 0 or CP_ERR_CONFIG for an unknown spec.
 */
int cp_ast_cdr_csv_set_columns(void *state, const char *spec);

#endif
