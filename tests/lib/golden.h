/* golden.h - golden-file runner for source formats: <case>.in through a parser, compared with
 * <case>.out. */
#ifndef CP_TEST_GOLDEN_H
#define CP_TEST_GOLDEN_H

#include "cp_source.h"

/*
 * A case is files in one folder:
 *   <case>.in    the input
 *   <case>.out   the expected transcript (write it with UPDATE_GOLDEN=1, then review it by hand)
 *   <case>.tz    optional: the source's configured IANA zone (one line)
 * The input becomes records by `mode`; all records of a case go through ONE
 * parser state (state_create/destroy), in order, so stitching formats (SMDR
 * continuations, AMI) are tested as a stream.  The transcript lists, per
 * record, every event as cp_event_to_json, every reject as
 * "reject index=<i> reason=<reason>", then "rc=<n|CP_ERR_NAME>".
 * The context is org "acme", pbx "pbx-1", recv 2025-11-25T10:01:40Z.
 */
enum cp_golden_mode {
    CP_GOLDEN_WHOLE,  /* the whole file is one record (HTTP bodies, files) */
    CP_GOLDEN_LINES,  /* each line is a record (LF, a trailing CR removed; blank lines skipped) */
    CP_GOLDEN_BLOCKS, /* records are separated by a line holding only "%%" (multi-line records) */
    CP_GOLDEN_FRAME,  /* the format's own frame() cuts the file */
};

#define CP_GOLDEN_RECV_US INT64_C(1764064900000000)

/* Runs one case with cmocka assertions; fails the test on a mismatch. */
void cp_golden_case(const struct cp_source_format *fmt, const char *dir, const char *name,
                    enum cp_golden_mode mode);
/* Case names (without .in) in `dir`, sorted; *n gets the count. Free with cp_golden_free_list. */
char **cp_golden_list(const char *dir, size_t *n);
void cp_golden_free_list(char **names, size_t n);
/* "$CALLPIPE_ROOT/tests/golden/<sub>" (or relative to the working directory). */
const char *cp_golden_dir(const char *sub);

/*
 * The whole main() of a source test: every case in cp_golden_dir(sub) through
 * `fmt` by `mode` (at least `min_cases` of them, else it fails), then the
 * `extra` tests, as one cmocka group named `group`.  Returns the number of
 * failed tests (1 when there are too few cases).
 */
struct CMUnitTest;
int cp_golden_run(const char *group, const struct cp_source_format *fmt, const char *sub,
                  enum cp_golden_mode mode, size_t min_cases, const struct CMUnitTest *extra,
                  size_t nextra);

#endif
