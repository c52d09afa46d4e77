/* fuzz_source_asterisk_ami.c - libFuzzer: the AMI framer and parser emit only valid events. */
#include "../../ingest/sources/asterisk_ami/ami_client.h"
#include "../../ingest/sources/asterisk_ami/asterisk_ami.h"
#include "fuzz_source.h"

/*
 * The input is fed as a stream through frame(), then as one record straight to
 * parse() without connection state; the properties are in fuzz_source.h.
 * Each record is also read as an action response, whose ActionID must point
 * inside the record.
 */
static void check_response(void *state, const char *rec, size_t len)
{
    (void)state;
    struct cp_ami_response r;
    if (cp_ami_response_read(rec, len, &r) == 0 && r.action_id &&
        (r.action_id < rec || r.action_id + r.action_id_len > rec + len))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct fuzz_source_opts opts = {
        .fmt = &cp_source_asterisk_ami,
        .mode = FUZZ_FRAME,
        .also_whole = FUZZ_ALSO_WHOLE_STATELESS,
        .check_record = check_response,
    };
    return fuzz_source_run(&opts, data, size);
}
