/* fuzz_source_freeswitch_json_cdr.c - libFuzzer: freeswitch-json-cdr emits valid events only. */
#include "../../ingest/sources/freeswitch_json_cdr/freeswitch_json_cdr.h"
#include "fuzz_source.h"

/* The whole input is one HTTP body; the properties are in fuzz_source.h. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct fuzz_source_opts opts = {
        .fmt = &cp_source_freeswitch_json_cdr,
        .mode = FUZZ_WHOLE,
    };
    return fuzz_source_run(&opts, data, size);
}
