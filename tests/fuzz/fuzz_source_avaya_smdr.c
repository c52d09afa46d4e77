/* fuzz_source_avaya_smdr.c - libFuzzer: avaya-smdr emits only valid events and well-formed rejects.
 */
#include "../../ingest/sources/avaya_smdr/avaya_smdr.h"
#include "fuzz_source.h"

/*
 * The input is a stream of lines through one connection state, as the engine
 * would feed it (stitching is exercised across lines); the properties are in
 * fuzz_source.h.  Odd sizes get a configured zone; even sizes none (every
 * record is then rejected).
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct fuzz_source_opts opts = {
        .fmt = &cp_source_avaya_smdr,
        .mode = FUZZ_LINES,
        .tz = "Europe/London",
    };
    return fuzz_source_run(&opts, data, size);
}
