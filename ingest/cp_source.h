/* cp_source.h - the plug-in contract between the ingest engine and one source format's pure parser. */
#ifndef CP_SOURCE_H
#define CP_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "cp_arena.h"
#include "cp_event.h"

/*
 * A source format turns the bytes of ONE framed record (a line, an
 * octet-counted frame, an HTTP body, a file) into zero or more canonical
 * events.  It does no I/O and reads no clock: everything it needs about the
 * outside world arrives in cp_source_ctx.  The engine owns sockets, framing,
 * limits, auth, produce and acknowledgement.
 */

/* What the engine tells the parser about where the record came from. */
struct cp_source_ctx {
    const char *org;        /* from the source's configuration, never from the payload */
    const char *pbx;        /* configured source name */
    const char *tz;         /* IANA zone for sources that log local time; NULL = none configured */
    int64_t recv_us;        /* receive time, stamped on every event as `recv` */
    struct cp_arena *arena; /* batch arena: event strings live here until the batch is produced */
};

/*
 * Where a parser sends its results.  `event` takes a filled event (the
 * engine copies what it needs before returning; the struct may be reused);
 * a negative return aborts the parse with that code.  `reject` reports one
 * bad record (or one bad element of an HTTP array) with a short reason; the
 * engine dead-letters it with the raw bytes and counts it by reason.
 * `index` is the element's position in a multi-record body (0 otherwise).
 */
struct cp_emit {
    int (*event)(struct cp_emit *out, struct cp_event *ev);
    void (*reject)(struct cp_emit *out, uint32_t index, const char *rec, size_t len,
                   const char *reason);
    void *user;
};

/* How a format's records are cut out of a stream, unless the transport decides (HTTP). */
enum cp_framing {
    CP_FRAME_LINES = 0, /* LF or CRLF; RFC 6587 octet counting detected from the first byte */
    CP_FRAME_BODY,      /* one HTTP body or file is one record */
    CP_FRAME_CUSTOM,    /* the format frames itself (AMI/ESL blocks) */
};

struct cp_source_format {
    const char *name; /* "callpipe-json", "asterisk-ami", ... */
    enum cp_framing framing;
    /* Optional per-connection state for formats that stitch records together
     * (SMDR continuation, AMI blocks).  NULL for stateless formats. */
    void *(*state_create)(void);
    void (*state_destroy)(void *state);
    /* Parses one record.  Returns the number of events emitted (>= 0), or a
     * negative code when the whole record was rejected (after calling
     * out->reject) or the emitter failed. */
    int (*parse)(void *state, const struct cp_source_ctx *ctx, const char *rec, size_t len,
                 struct cp_emit *out);
    /* CP_FRAME_CUSTOM only (AMI and ESL blocks): looks for the end of the first
     * record in buf[0..len) and returns its length including any terminator
     * (> 0), 0 when more bytes are needed, or a negative code when the bytes
     * can never form a record (the engine then skips to the next line).  The
     * record handed to parse() is buf[0..returned length).  Pure, like parse. */
    long (*frame)(void *state, const char *buf, size_t len);
};

/* The registry of every compiled-in format (ingest/sources.c). */
const struct cp_source_format *cp_source_find(const char *name);
/* NULL-terminated list, for config validation and docs. */
const struct cp_source_format *const *cp_source_all(void);

#endif
