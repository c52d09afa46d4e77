/* cp_err.h - named negative error codes shared by every callpipe module. */
#ifndef CP_ERR_H
#define CP_ERR_H

#include <stdbool.h>

/*
 * Every fallible callpipe function returns 0 (or a non-negative count) on
 * success and one of these negative codes on failure.  The table in cp_err.c
 * gives each a name, a message and whether retrying the same operation later
 * can succeed: that single bit drives every retry loop (Kafka, PostgreSQL,
 * Salesforce), so callers never string-match errors.
 */
#define CP_ERR_LIST(X)                                                                             \
    X(CP_OK, 0, false, "success")                                                                  \
    X(CP_ERR_NOMEM, -1, true, "out of memory")                                                     \
    X(CP_ERR_INVAL, -2, false, "invalid argument")                                                 \
    X(CP_ERR_PARSE, -3, false, "malformed input")                                                  \
    X(CP_ERR_UTF8, -4, false, "invalid UTF-8")                                                     \
    X(CP_ERR_TOOBIG, -5, false, "value too large")                                                 \
    X(CP_ERR_RANGE, -6, false, "value out of range")                                               \
    X(CP_ERR_VERSION, -7, false, "unsupported schema version")                                     \
    X(CP_ERR_MISSING, -8, false, "required field missing")                                         \
    X(CP_ERR_TYPE, -9, false, "wrong type")                                                        \
    X(CP_ERR_CONFIG, -10, false, "configuration error")                                            \
    X(CP_ERR_IO, -11, true, "input/output error")                                                  \
    X(CP_ERR_AGAIN, -12, true, "try again")                                                        \
    X(CP_ERR_TIMEOUT, -13, true, "timed out")                                                      \
    X(CP_ERR_CONN, -14, true, "connection failed")                                                 \
    X(CP_ERR_AUTH, -15, false, "not authorised")                                                   \
    X(CP_ERR_FULL, -16, true, "queue full")                                                        \
    X(CP_ERR_NOTFOUND, -17, false, "not found")                                                    \
    X(CP_ERR_EXISTS, -18, false, "already exists")                                                 \
    X(CP_ERR_STATE, -19, false, "invalid state")                                                   \
    X(CP_ERR_KAFKA, -20, true, "kafka error")                                                      \
    X(CP_ERR_KAFKA_FATAL, -21, false, "fatal kafka error")                                         \
    X(CP_ERR_PG, -22, true, "postgresql error")                                                    \
    X(CP_ERR_PG_DATA, -23, false, "postgresql rejected the data")                                  \
    X(CP_ERR_HTTP, -24, true, "http error")                                                        \
    X(CP_ERR_LIMIT, -25, true, "rate or quota limit reached")                                      \
    X(CP_ERR_SECRET, -26, false, "secret unavailable")                                             \
    X(CP_ERR_SHUTDOWN, -27, false, "shutting down")                                                \
    X(CP_ERR_TLS, -28, false, "tls error")                                                         \
    X(CP_ERR_INTERNAL, -29, false, "internal error")                                               \
    X(CP_ERR_PG_SQL, -30, false, "postgresql rejected the statement")

enum cp_err {
#define CP_ERR_ENUM(name, val, retry, msg) name = val,
    CP_ERR_LIST(CP_ERR_ENUM)
#undef CP_ERR_ENUM
};

/* "CP_ERR_PARSE" for -3; "CP_ERR_UNKNOWN" for codes not in the table. */
const char *cp_err_name(int err);
/* Short lowercase message, suitable after "could not X: ". */
const char *cp_err_str(int err);
/* True when the same operation may succeed if tried again later. */
bool cp_err_is_retriable(int err);

#if defined(__GNUC__)
#define CP_MUSTCHECK __attribute__((warn_unused_result))
#define CP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CP_MUSTCHECK
#define CP_PRINTF(a, b)
#endif

#define CP_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
