/* firehose.h - pure helpers for the Firehose HTTP endpoint: access key, response body. */
#ifndef CP_FIREHOSE_H
#define CP_FIREHOSE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Checks the X-Amz-Firehose-Access-Key header against the configured key in
 * constant time: both are hashed with SHA-256 and the digests compared with
 * CRYPTO_memcmp, so neither the content nor the length of the key leaks
 * through timing.  `header` NULL (absent) never matches; an empty configured
 * key is a configuration error.  Returns 0, CP_ERR_AUTH, CP_ERR_CONFIG or
 * CP_ERR_INTERNAL.
 */
int cp_firehose_check_key(const char *configured, const char *header);

/*
 * Writes the JSON response body Firehose requires into buf[0..cap):
 *   {"requestId":"<request_id>","timestamp":<timestamp_ms>}
 * or, when error_message is not NULL,
 *   {"requestId":"<request_id>","timestamp":<timestamp_ms>,"errorMessage":"<error_message>"}
 * request_id comes from the X-Amz-Firehose-Request-Id header (the body's
 * "requestId" holds the same value); NULL is written as "".  Strings are JSON
 * escaped; bytes that are not UTF-8 become '?'.  Returns the length (without
 * the NUL written after it) or CP_ERR_TOOBIG.
 */
int cp_firehose_response(char *buf, size_t cap, const char *request_id, int64_t timestamp_ms,
                         const char *error_message);

/*
 * HTTP status for a parse result, once the engine has produced the events and
 * dead-lettered the rejects.  Firehose counts only 200 as delivered, treats
 * 413 as permanent and retries everything else, so: 200 for any result that
 * is final here (events, nothing, or a body rejected into the dead-letter
 * topic: a retry would bring the same bytes), 503 for a retriable code (an
 * emitter failure, out of memory).  A body over the size limit is the HTTP
 * server's 413, which Firehose treats as permanent.
 */
int cp_firehose_status(int parse_rc);

#endif
