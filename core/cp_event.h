/* cp_event.h - the canonical call event, version 1 (DESIGN.md section 3), and its codecs. */
#ifndef CP_EVENT_H
#define CP_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cp_arena.h"
#include "cp_err.h"

#define CP_EVENT_VERSION 1

/* Bounds that every decoder and parser enforces, so one hostile record cannot
 * make an event (and so a Kafka message or a calls row) arbitrarily large. */
#define CP_EVENT_STR_MAX   256 /* bytes of any string field except `native` */
#define CP_EVENT_NATIVE_MAX 1024
#define CP_EVENT_X_MAX     16  /* pairs in the `x` extras map */
#define CP_EVENT_X_STR_MAX 256
/* Largest time any field may hold: 9999-12-31T23:59:59.999999Z. */
#define CP_EVENT_TIME_MAX INT64_C(253402300799999999)
/* Q.850 cause values are 7 bits (1..127); 0 = unknown. */
#define CP_EVENT_Q850_MAX 127

enum cp_kind {
    CP_KIND_NONE = 0,
    CP_KIND_CALL_START,
    CP_KIND_RINGING,
    CP_KIND_ANSWER,
    CP_KIND_QUEUE_ENTER,
    CP_KIND_QUEUE_LEAVE,
    CP_KIND_AGENT_OFFER,
    CP_KIND_AGENT_NOANSWER,
    CP_KIND_AGENT_CONNECT,
    CP_KIND_HOLD,
    CP_KIND_UNHOLD,
    CP_KIND_TRANSFER,
    CP_KIND_AGENT_COMPLETE,
    CP_KIND_WRAPUP_END,
    CP_KIND_CALL_END,
    CP_KIND_CDR,
    CP_KIND_AGENT_STATE,
    CP_KIND__COUNT
};

enum cp_dir { CP_DIR_UNKNOWN = 0, CP_DIR_INBOUND, CP_DIR_OUTBOUND, CP_DIR_INTERNAL, CP_DIR__COUNT };

/* Telephony disposition: what happened to the call on the network. */
enum cp_disp {
    CP_DISP_UNKNOWN = 0,
    CP_DISP_ANSWERED,
    CP_DISP_NO_ANSWER,
    CP_DISP_BUSY,
    CP_DISP_FAILED,
    CP_DISP_CONGESTION,
    CP_DISP_CANCELED,
    CP_DISP__COUNT
};

/* Queue outcome: how the call left the queue (metrics.md section 7). */
enum cp_qout {
    CP_QOUT_UNKNOWN = 0,
    CP_QOUT_ANSWERED,
    CP_QOUT_ABANDONED,
    CP_QOUT_TIMEOUT,
    CP_QOUT_KEY_EXIT,
    CP_QOUT_FULL,
    CP_QOUT_TRANSFERRED,
    CP_QOUT_CALLBACK,
    CP_QOUT_VOICEMAIL,
    CP_QOUT__COUNT
};

/* Who ended the call. */
enum cp_side { CP_SIDE_UNKNOWN = 0, CP_SIDE_CALLER, CP_SIDE_AGENT, CP_SIDE_SYSTEM, CP_SIDE__COUNT };

struct cp_kv {
    const char *key;
    const char *val;
};

/*
 * A flat event.  Every string is NUL-terminated, valid UTF-8 without NUL
 * bytes, and points into the arena of whoever filled the struct (a parser's
 * batch arena, a decoder's record arena); NULL means "absent".  Enumerations
 * travel as their lowercase names.  Durations are whole seconds, -1 unknown;
 * times are UTC microseconds, 0 = did not happen / unknown.
 */
struct cp_event {
    uint32_t v;             /* schema version, CP_EVENT_VERSION */
    const char *event_id;   /* idempotency key */
    const char *org;        /* from the source's configuration, never the payload */
    const char *pbx;        /* configured source id */
    const char *src;        /* format name, e.g. "callpipe-json", "asterisk-ami" */
    const char *call;       /* correlation id across legs (required) */
    const char *leg;
    const char *parent;

    enum cp_kind kind;
    int64_t ts;    /* event time */
    int64_t recv;  /* receive time at the collector */
    int64_t start; /* cdr only */
    int64_t answer;
    int64_t end;

    enum cp_dir dir;
    const char *from;
    const char *from_name;
    const char *to;
    const char *final_to;
    const char *queue;
    const char *agent;
    const char *agent_name;

    enum cp_disp disp;
    enum cp_qout qout;
    const char *wrapup;
    enum cp_side side;
    int32_t q850; /* 0 unknown */
    const char *native;

    int32_t ring, wait, talk, hold, acw;

    uint32_t nx;
    struct cp_kv x[CP_EVENT_X_MAX];
};

/* Sets every field to its "absent" value (v = 1, durations -1). */
void cp_event_init(struct cp_event *ev);

const char *cp_kind_name(enum cp_kind k);
const char *cp_dir_name(enum cp_dir d);
const char *cp_disp_name(enum cp_disp d);
const char *cp_qout_name(enum cp_qout q);
const char *cp_side_name(enum cp_side s);
/* Name to value; return 0 or CP_ERR_PARSE for an unknown name. */
int cp_kind_parse(const char *s, size_t len, enum cp_kind *out);
int cp_dir_parse(const char *s, size_t len, enum cp_dir *out);
int cp_disp_parse(const char *s, size_t len, enum cp_disp *out);
int cp_qout_parse(const char *s, size_t len, enum cp_qout *out);
int cp_side_parse(const char *s, size_t len, enum cp_side *out);

/* Checks the invariants a consumer may rely on: version, required fields
 * (event_id, org, pbx, src, call, kind, ts), bounds. 0 or a negative code,
 * with a human reason in `why` (a static string). */
int cp_event_validate(const struct cp_event *ev, const char **why);

/* cp_event_validate, optionally without the per-string length and UTF-8 checks,
 * for code that made them itself on every string it set (the msgpack decoder, a
 * parser that checks its input as it reads it).  The collector still runs the
 * full cp_event_validate on every event it produces. */
int cp_event_validate_opt(const struct cp_event *ev, bool check_strings, const char **why);

/* True when both events carry the same values (strings compared by content,
 * NULL only equals NULL; x pairs compared in order). */
bool cp_event_equal(const struct cp_event *a, const struct cp_event *b);

/*
 * msgpack codec (cp_event_msgpack.c).  The wire form is a msgpack map with the
 * short keys of DESIGN.md section 3, in this order: v event_id org pbx src call
 * leg parent kind ts recv start answer end dir from from_name to final_to queue
 * agent agent_name disp qout wrapup side q850 native ring wait talk hold acw x.
 * Absent values (NULL strings, 0 times, -1 durations, unknown enums, q850 0,
 * no x pairs) are omitted; enums travel as their lowercase names.
 *
 * Upper bound of one encoding of an event that passes cp_event_validate.
 */
#define CP_EVENT_MSGPACK_MAX 16384

struct msgpack_sbuffer;

/*
 * Appends the encoding of `ev` to `out` (a caller-owned msgpack_sbuffer that
 * the caller clears and reuses: after warm-up no call allocates).  Does not
 * validate: run cp_event_validate once where the event is built; encoding an
 * invalid event yields bytes that cp_event_decode rejects.
 * Returns the number of bytes appended, or CP_ERR_NOMEM.
 */
int cp_event_encode(const struct cp_event *ev, struct msgpack_sbuffer *out) CP_MUSTCHECK;

/* The same into buf[0..cap): bytes written, or CP_ERR_TOOBIG when cap is too
 * small (cap >= CP_EVENT_MSGPACK_MAX always suffices for a valid event). */
int cp_event_encode_to(const struct cp_event *ev, char *buf, size_t cap) CP_MUSTCHECK;

/*
 * Decodes exactly one encoded event from buf[0..len) into `ev`; strings are
 * copied into `arena` (NUL-terminated).  Walks the bytes itself, so no length
 * announced by a header is ever allocated: hostile input costs O(len).
 * Rejects: other versions (CP_ERR_VERSION), malformed or truncated msgpack and
 * trailing bytes (CP_ERR_PARSE), wrong types (CP_ERR_TYPE), strings that are
 * not UTF-8 or hold NUL (CP_ERR_UTF8), oversize strings or too many x pairs
 * (CP_ERR_TOOBIG), duplicate keys (CP_ERR_PARSE), values out of range
 * (CP_ERR_RANGE), and anything cp_event_validate rejects.  nil is accepted as
 * "absent" for optional fields.  Unknown top-level keys are skipped, whatever
 * their value, so a v1 producer may add fields without breaking older
 * consumers (forward compatibility within v1; incompatible changes bump v).
 * Returns 0 or a negative code, with a static human reason in `why`; after an
 * error *ev holds nothing meaningful (strings may point into `arena`).
 */
int cp_event_decode(const char *buf, size_t len, struct cp_arena *arena, struct cp_event *ev,
                    const char **why) CP_MUSTCHECK;

/*
 * One-line JSON rendering (cp_event_json.c), for golden files and debugging:
 * same keys and order as the msgpack form, absent values omitted, times as
 * ISO-8601 UTC strings with microseconds, non-ASCII passed through raw.
 * Writes at most cap bytes including a terminating NUL; returns the length
 * (without the NUL) or CP_ERR_TOOBIG.  cap >= CP_EVENT_JSON_MAX always
 * suffices for a valid event.
 */
#define CP_EVENT_JSON_MAX 98304
int cp_event_to_json(const struct cp_event *ev, char *buf, size_t cap);

#endif
