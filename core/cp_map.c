/* cp_map.c - linear-probing hash map with copied keys and tombstones. */
#include "cp_map.h"
#include "cp_err.h"

#include <stdlib.h>
#include <string.h>

static char tombstone;
#define TOMB (&tombstone)

uint64_t cp_map_hash(const void *key, size_t len)
{
    /* FNV-1a with a final mix: keys are short ("org/pbx/call"), this is plenty. */
    const unsigned char *p = key;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

void cp_map_init(struct cp_map *m)
{
    memset(m, 0, sizeof *m);
}

void cp_map_free(struct cp_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key && m->slots[i].key != TOMB)
            free(m->slots[i].key);
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static struct cp_map_slot *find(const struct cp_map *m, const void *key, size_t len, uint64_t h)
{
    if (!m->cap)
        return NULL;
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        struct cp_map_slot *s = &m->slots[i];
        if (!s->key)
            return NULL;
        if (s->key != TOMB && s->hash == h && s->key_len == len && memcmp(s->key, key, len) == 0)
            return s;
    }
}

static int grow(struct cp_map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    if (m->len * 2 < m->cap)
        cap = m->cap; /* mostly tombstones: rehash in place size */
    struct cp_map_slot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return CP_ERR_NOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        struct cp_map_slot *s = &m->slots[i];
        if (!s->key || s->key == TOMB)
            continue;
        size_t j = s->hash & (cap - 1);
        while (slots[j].key)
            j = (j + 1) & (cap - 1);
        slots[j] = *s;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    m->used = m->len;
    return 0;
}

void *cp_map_get(const struct cp_map *m, const void *key, size_t len)
{
    struct cp_map_slot *s = find(m, key, len, cp_map_hash(key, len));
    return s ? s->val : NULL;
}

int cp_map_put(struct cp_map *m, const void *key, size_t len, void *val)
{
    uint64_t h = cp_map_hash(key, len);
    struct cp_map_slot *s = find(m, key, len, h);
    if (s) {
        s->val = val;
        return 0;
    }
    if ((m->used + 1) * 10 >= m->cap * 7 && grow(m))
        return CP_ERR_NOMEM;
    char *k = malloc(len + 1);
    if (!k)
        return CP_ERR_NOMEM;
    memcpy(k, key, len);
    k[len] = 0;
    size_t i = h & (m->cap - 1);
    while (m->slots[i].key && m->slots[i].key != TOMB)
        i = (i + 1) & (m->cap - 1);
    if (!m->slots[i].key)
        m->used++;
    m->slots[i] = (struct cp_map_slot){k, len, h, val};
    m->len++;
    return 0;
}

void *cp_map_del(struct cp_map *m, const void *key, size_t len)
{
    struct cp_map_slot *s = find(m, key, len, cp_map_hash(key, len));
    if (!s)
        return NULL;
    void *v = s->val;
    free(s->key);
    s->key = TOMB;
    s->val = NULL;
    m->len--;
    return v;
}

struct cp_map_slot *cp_map_next(const struct cp_map *m, size_t *i)
{
    while (*i < m->cap) {
        struct cp_map_slot *s = &m->slots[(*i)++];
        if (s->key && s->key != TOMB)
            return s;
    }
    return NULL;
}
