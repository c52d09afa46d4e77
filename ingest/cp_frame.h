/* cp_frame.h - cuts records out of a TCP byte stream: LF/CRLF lines or RFC 6587 octet counting. */
#ifndef CP_FRAME_H
#define CP_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Pure: bytes in, records out through callbacks; no sockets.  One framer
 * per connection.  Records are handed out as pointers into either the
 * caller's buffer (when a record lies whole inside one read) or the
 * framer's own buffer; they are valid only during the callback.
 *
 * Limits: a record longer than `max_record` is never buffered whole.  Its
 * first `keep_oversize` bytes are reported through `oversize` (for the
 * dead-letter topic) and the rest is skipped; the stream resynchronises at
 * the next LF (lines) or after the announced length (octet counting).  So
 * a 10 MB line costs at most max_record bytes of memory and never closes
 * the connection.
 */
enum cp_frame_mode {
    CP_FRAME_MODE_AUTO = 0, /* decide from the first byte of the stream: '1'-'9' = octet counting */
    CP_FRAME_MODE_LINES,
    CP_FRAME_MODE_OCTET,
};

struct cp_frame_cb {
    void (*record)(void *user, const char *rec, size_t len);
    /* A record cut off at the limit; `head` is its first bytes, `total` how long it was
     * (as far as known: for lines, the count up to the resynchronising LF). */
    void (*oversize)(void *user, const char *head, size_t head_len, uint64_t total);
    /* A framing error (bad octet count): the bytes up to the next LF were skipped. */
    void (*bad_frame)(void *user, const char *reason, const char *head, size_t head_len);
    void *user;
};

struct cp_framer {
    enum cp_frame_mode configured, mode; /* mode is AUTO until the first byte */
    size_t max_record;
    size_t keep_oversize;
    char *buf; /* partial record, at most max_record bytes */
    size_t len;
    /* Skipping the tail of an oversized line, or after a bad octet header. */
    bool skipping;
    uint64_t skipped; /* bytes of the current oversized record seen so far */
    /* Octet counting: digits of the current length prefix, then bytes still owed. */
    uint64_t octet_want; /* 0 = reading a length prefix */
    uint32_t octet_digits;
    uint64_t octet_len;
    bool octet_skip; /* the announced frame is oversized: skip octet_want bytes */
    bool octet_committed; /* auto mode: a "<length> " prefix was seen, so this stream is octet counted */
    uint64_t records, oversized, bad_frames;
};

int cp_framer_init(struct cp_framer *f, enum cp_frame_mode mode, size_t max_record,
                   size_t keep_oversize);
void cp_framer_close(struct cp_framer *f);
/* Feeds bytes; callbacks fire synchronously for every complete record. */
void cp_framer_feed(struct cp_framer *f, const char *data, size_t len, const struct cp_frame_cb *cb);
/* End of stream: a final line without LF is still a record (PBXs often omit it). */
void cp_framer_finish(struct cp_framer *f, const struct cp_frame_cb *cb);
/* Bytes currently buffered (for memory accounting). */
static inline size_t cp_framer_buffered(const struct cp_framer *f)
{
    return f->len;
}

#endif
