/* pbxwire.h - the PBX simulator's wires: one simulated call told in a vendor's own format, and the ground truth of what that format says. */
#ifndef CP_PBXWIRE_H
#define CP_PBXWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cp_event.h"

/*
 * tests/tools/pbxsim.c runs one model of a contact center (queues, agents, RONA, holds,
 * transfers, wrap-up, outbound calls) and hands every finished call to the wire of the PBX
 * that "made" it.  The wire writes the vendor's records for the call (AMI blocks, queue_log
 * lines, Master.csv rows, SMDR lines, CUCM CDR rows, Connect contact records, Twilio
 * callbacks...) and rewrites the call's ground truth to exactly what those records tell a
 * reader who follows the vendor's documentation: whole seconds where the vendor logs whole
 * seconds, no queue where a CDR names none, no wrap-up where the vendor has none, the vendor's
 * own call id.  tests/tools/agg_check.py then computes every expected database row from that
 * truth alone, so a format that loses information is checked exactly for what it keeps.
 *
 * Everything is deterministic: the same call gives the same bytes (no clock, no random).
 */

/* A growable byte buffer (pw_buf_* never fail: out of memory exits). */
struct pw_buf {
    char *p;
    size_t len, cap;
};
void pw_buf_add(struct pw_buf *b, const void *s, size_t n);
void pw_buf_str(struct pw_buf *b, const char *s);
void pw_buf_printf(struct pw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * The ground truth of one call in agg_check.py's terms.  Times are absolute microseconds
 * since the Unix epoch, -1 = did not happen / not known.  Strings must live until the wire's
 * render() returns (use pw_strdup for built ones).
 */
struct pw_visit {
    const char *queue;
    int64_t enter, connect, leave; /* connect: an agent answered; leave: left unanswered */
    int64_t transfer_out;          /* the agent transferred the caller out of this queue */
    int64_t noanswer[4];           /* RONA times */
    int n_noanswer;
    const char *outcome; /* answered, abandoned, timeout, key_exit, full, ... (cp_qout names) */
};

struct pw_segment {
    bool present;      /* an agent talked to the caller */
    const char *queue; /* NULL: the agent segment of a call without a queue (direct, outbound) */
    const char *agent, *wrapup;
    int64_t connect, complete; /* talk from connect to complete (hold included) */
    int64_t wrapup_end;        /* ACW = wrapup_end - complete; == complete when no wrap-up is known */
    int64_t holds[2][2];       /* hold on/off pairs, when hold comes as events */
    int n_holds;
    int64_t cdr_hold; /* µs of hold from a summary record; -1: use holds[] */
};

struct pw_truth {
    const char *pbx, *call; /* the calls row key the collector will produce (org is the PBX's) */
    const char *src;        /* the collector's format name (calls.source) */
    bool cdr;               /* the call is known from one summary record */
    const char *dir;        /* inbound, outbound, internal */
    const char *from, *from_name, *to, *final_to;
    const char *disp; /* cp_disp name: answered, no_answer, busy, failed, canceled, ... */
    const char *side; /* cp_side name: caller, agent, system, unknown; NULL = none */
    int64_t start, answer, end;
    struct pw_visit v[2];
    int n_v;
    struct pw_segment seg;
};

/* One PBX of the simulated fleet. */
struct pw_pbx {
    const char *name, *org;
    int index;       /* 0..n-1 in the fleet */
    int port;        /* tcp, http, syslog-tcp: the collector's port; tcp-server: our port */
    const char *dir; /* file-drop: the directory the collector watches */
};

/*
 * One finished simulated call: the canonical events the model made for it (generation order;
 * absolute µs in ts, start, answer, end; agent, queue, from... as the model set them), and its
 * truth, which render() may rewrite.  ev[i].event_id, org, pbx, call, src are the model's.
 */
struct pw_call {
    const struct pw_pbx *pbx;
    uint32_t idx; /* unique in the run: build vendor ids from it (and the PBX index) */
    const struct cp_event *ev;
    size_t n_ev;
    struct pw_truth *truth;
};

/* Where render() puts records (implemented by pbxsim). */
struct pw_out;
/*
 * One record due at simulated time ts_us.  A PBX's records leave in ts order (ties in the
 * order given); the bytes are one stream record without the wire's `sep`, one HTTP body
 * element, or one file row.
 */
void pw_record(struct pw_out *o, int64_t ts_us, const void *bytes, size_t len);
/* A copy of s that lives until the call's truth is written. */
const char *pw_strdup(struct pw_out *o, const char *s);

/* The shared secret of the run (bearer token, AMI secret, ESL password, access key, Twilio
 * auth token): the value of $PBXSIM_TOKEN (or of the variable named by pbxsim -k). */
const char *pw_secret(void);
/* Its environment variable's name, for the collector's `env:NAME` references. */
const char *pw_secret_env(void);

enum pw_transport {
    PW_TCP,        /* we connect to the collector and write records + sep */
    PW_HTTP,       /* we POST to the collector: http_request() builds each request */
    PW_TCP_SERVER, /* the collector connects to us (AMI, ESL): greet() and input() run the login */
    PW_FILE_DROP,  /* we write files into the collector's drop directory */
    PW_SYSLOG_TCP, /* we send each record as an RFC 5424 message, octet counted (RFC 6587) */
};

/* A record handed to http_request(). */
struct pw_rec {
    const char *p;
    size_t len;
};

/* The PBX side of one tcp-server connection. */
struct pw_session {
    bool ready;       /* logged in and subscribed: records may flow */
    char state[256];  /* the wire's own (challenge, ...) */
};

struct pw_wire {
    const char *name;   /* pbxsim -F name */
    const char *format; /* the collector's `format:` */
    enum pw_transport transport;
    const char *sep; /* stream transports: written after each record ("\n", "\r\n", "") */
    /*
     * Writes the call's records with pw_record and rewrites *c->truth.  Returns the number of
     * records (0: the format never shows this call, e.g. an outbound call in queue_log; it is
     * left out of the ground truth), or < 0 on a bug.
     */
    int (*render)(const struct pw_call *c, struct pw_out *o);
    /* Extra keys of the collector's source entry, each written as ", key: value". */
    void (*source_yaml)(FILE *f, const struct pw_pbx *p);
    /* PW_TCP_SERVER: what the PBX says when the collector connects (may be empty) ... */
    void (*greet)(const struct pw_pbx *p, struct pw_session *s, struct pw_buf *reply);
    /* ... and its answer to the collector's bytes: returns the bytes consumed (0: need more),
     * appends the replies, sets s->ready once records may flow. */
    size_t (*input)(const struct pw_pbx *p, struct pw_session *s, const char *in, size_t len,
                    struct pw_buf *reply);
    /* PW_HTTP: at most http_batch records per request; builds the whole request (request
     * line, headers with Content-Length, body) into req. */
    int http_batch;
    void (*http_request)(const struct pw_pbx *p, const struct pw_rec *recs, int n,
                         struct pw_buf *req);
    /* PW_FILE_DROP: the rows that start every file, and the name of file number seq. */
    void (*file_header)(const struct pw_pbx *p, struct pw_buf *b);
    void (*file_name)(const struct pw_pbx *p, int64_t first_ts_us, unsigned seq, char *name,
                      size_t cap);
};

/* Every wire, NULL-terminated; and one by name. */
const struct pw_wire *const *pw_wires(void);
const struct pw_wire *pw_wire_find(const char *name);

/* ---- helpers for wires ---- */

/* Whole seconds: floor to the second (vendors that log whole seconds truncate). */
static inline int64_t pw_floor_s(int64_t us)
{
    return us < 0 ? us : us - us % 1000000;
}
/* Local civil time of us in IANA zone tz (NULL or "UTC": UTC). Returns 0 or < 0. */
int pw_local_time(int64_t us, const char *tz, int *year, int *mon, int *day, int *hour, int *min,
                  int *sec);
/* The first canonical event of `kind` (at or after index from), or NULL. */
const struct cp_event *pw_find(const struct pw_call *c, enum cp_kind kind, size_t from);

#endif
