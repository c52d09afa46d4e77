/* agg_closed.h - calls written recently: a late event for one is dropped instead of opening a second call. */
#ifndef CP_AGG_CLOSED_H
#define CP_AGG_CLOSED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cp_map.h"

/*
 * Once a call's row is written, an event that still arrives for it (a Firehose or Twilio
 * re-delivery, a contact record updated after wrap-up, an AMI Cdr after the call closed)
 * would open a new call with the same key: a second row, its bookings counted twice.  The
 * aggregator remembers the calls it wrote for `late_window` of event time (and reloads the
 * recent ones from PostgreSQL when it starts) and drops such events, counted.
 * Keys are kept as 64-bit hashes (a false match needs ~2^32 calls inside one window).
 */
struct agg_closed {
    struct cp_map set; /* 8-byte key hash -> (void *)(intptr_t) event time of the entry */
    struct {
        uint64_t h;
        int64_t t;
    } *fifo; /* in insertion order, for expiry */
    size_t head, len, cap;
};

void agg_closed_init(struct agg_closed *s);
void agg_closed_free(struct agg_closed *s);
/* Remembers the call `key` (agg_main's "org\0pbx\0call") written at event time t_us. */
int agg_closed_add(struct agg_closed *s, const char *key, size_t key_len, int64_t t_us);
bool agg_closed_has(const struct agg_closed *s, const char *key, size_t key_len);
/* Forgets entries older than `before_us` (event time); entries are visited in insertion order. */
void agg_closed_expire(struct agg_closed *s, int64_t before_us);
size_t agg_closed_len(const struct agg_closed *s);

#endif
