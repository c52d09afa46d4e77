/* fuzz_source_amazon_connect.c - libFuzzer: amazon-connect-ctr emits only valid events. */
#include "../../ingest/sources/amazon_connect/amazon_connect.h"
#include "fuzz_source.h"

/*
 * The whole input is one Firehose body; the properties are in fuzz_source.h.
 * A rejected element's bytes may be a re-serialised copy (README), so only
 * their presence is checked.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct fuzz_source_opts opts = {
        .fmt = &cp_source_amazon_connect_ctr,
        .mode = FUZZ_WHOLE,
        .indexed = true,
        .reject_copy = true,
    };
    return fuzz_source_run(&opts, data, size);
}
