/* fuzz_source_freeswitch_esl.c - libFuzzer: freeswitch-esl emits valid events and sound rejects. */
#include "../../ingest/sources/freeswitch_esl/freeswitch_esl.h"
#include "fuzz_source.h"

/* The input is a stream that frame() cuts, as the engine would; the properties
 * (frame() bounds among them) are in fuzz_source.h. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct fuzz_source_opts opts = {
        .fmt = &cp_source_freeswitch_esl,
        .mode = FUZZ_FRAME,
    };
    return fuzz_source_run(&opts, data, size);
}
