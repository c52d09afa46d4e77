/* fuzz_source_twilio_taskrouter.c - libFuzzer: twilio-taskrouter emits only valid events. */
#include "../../ingest/sources/twilio/twilio.h"
#include "fuzz_source.h"

/* The whole input is one webhook body; the properties are in fuzz_source.h. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct fuzz_source_opts opts = {
        .fmt = &cp_source_twilio_taskrouter,
        .mode = FUZZ_WHOLE,
        .indexed = true,
    };
    return fuzz_source_run(&opts, data, size);
}
