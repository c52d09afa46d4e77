/* fuzz_source_asterisk_queue_log.c - libFuzzer: the queue_log parser emits only valid events. */
#include "../../ingest/sources/asterisk_queue_log/asterisk_queue_log.h"
#include "fuzz_source.h"

/* Every input line goes to parse() as one record (as LF framing would cut it),
 * then the whole input as one record; the properties are in fuzz_source.h. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct fuzz_source_opts opts = {
        .fmt = &cp_source_asterisk_queue_log,
        .mode = FUZZ_LINES,
        .also_whole = FUZZ_ALSO_WHOLE,
    };
    return fuzz_source_run(&opts, data, size);
}
