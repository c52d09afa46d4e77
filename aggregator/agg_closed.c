/* agg_closed.c - the set of recently written calls, with expiry in event time. */
#include "agg_closed.h"

#include <stdlib.h>
#include <string.h>

#include "cp_err.h"

void agg_closed_init(struct agg_closed *s)
{
    memset(s, 0, sizeof *s);
    cp_map_init(&s->set);
}

void agg_closed_free(struct agg_closed *s)
{
    cp_map_free(&s->set);
    free(s->fifo);
    memset(s, 0, sizeof *s);
}

int agg_closed_add(struct agg_closed *s, const char *key, size_t key_len, int64_t t_us)
{
    uint64_t h = cp_map_hash(key, key_len);
    if (s->len == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        void *p = malloc(cap * sizeof *s->fifo);
        if (!p)
            return CP_ERR_NOMEM;
        /* Unroll the ring into the new array. */
        for (size_t i = 0; i < s->len; i++)
            memcpy((char *)p + i * sizeof *s->fifo, &s->fifo[(s->head + i) % s->cap],
                   sizeof *s->fifo);
        free(s->fifo);
        s->fifo = p;
        s->cap = cap;
        s->head = 0;
    }
    size_t tail = (s->head + s->len) % s->cap;
    s->fifo[tail].h = h;
    s->fifo[tail].t = t_us;
    s->len++;
    return cp_map_put(&s->set, &h, sizeof h, (void *)(intptr_t)t_us);
}

bool agg_closed_has(const struct agg_closed *s, const char *key, size_t key_len)
{
    uint64_t h = cp_map_hash(key, key_len);
    return cp_map_get(&s->set, &h, sizeof h) != NULL;
}

void agg_closed_expire(struct agg_closed *s, int64_t before_us)
{
    while (s->len > 0 && s->fifo[s->head].t < before_us) {
        uint64_t h = s->fifo[s->head].h;
        /* The same call written again later has a newer entry: keep that one. */
        void *v = cp_map_get(&s->set, &h, sizeof h);
        if (v && (int64_t)(intptr_t)v == s->fifo[s->head].t)
            cp_map_del(&s->set, &h, sizeof h);
        s->head = (s->head + 1) % s->cap;
        s->len--;
    }
}

size_t agg_closed_len(const struct agg_closed *s)
{
    return s->set.len;
}
