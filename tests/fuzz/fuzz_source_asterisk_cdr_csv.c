/* fuzz_source_asterisk_cdr_csv.c - libFuzzer: the Master.csv parser emits only valid events. */
#include "../../ingest/sources/asterisk_cdr_csv/asterisk_cdr_csv.h"
#include "fuzz_source.h"

/*
 * Every input line goes to parse() as one record (as LF framing would cut it),
 * then the whole input as one record; the properties are in fuzz_source.h.
 */

/* The first byte picks the configured column layout, so every layout is explored. */
static void set_columns(void *state, const uint8_t *data, size_t size)
{
    static const char *const specs[] = {"auto", "none", "uniqueid", "userfield",
                                        "uniqueid,userfield"};
    if (size > 0 && cp_ast_cdr_csv_set_columns(state, specs[data[0] % 5]) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct fuzz_source_opts opts = {
        .fmt = &cp_source_asterisk_cdr_csv,
        .mode = FUZZ_LINES,
        .also_whole = FUZZ_ALSO_WHOLE,
        .setup = set_columns,
    };
    return fuzz_source_run(&opts, data, size);
}
