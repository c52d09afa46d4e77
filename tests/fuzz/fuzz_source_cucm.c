/* fuzz_source_cucm.c - libFuzzer: cisco-cucm-cdr emits only valid events (msgpack round trip). */
#include "../../ingest/sources/cucm/cucm.h"
#include "fuzz_source.h"

/* The whole input is one CDR file; the properties are in fuzz_source.h. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct fuzz_source_opts opts = {
        .fmt = &cp_source_cucm_cdr,
        .mode = FUZZ_WHOLE,
        .indexed = true,
    };
    return fuzz_source_run(&opts, data, size);
}
