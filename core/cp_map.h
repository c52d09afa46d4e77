/* cp_map.h - open-addressing hash map from byte-string keys to pointers. */
#ifndef CP_MAP_H
#define CP_MAP_H

#include <stddef.h>
#include <stdint.h>

/*
 * Keys are copied into the map (so callers may pass stack buffers); values
 * are the caller's pointers.  Linear probing with tombstones; grows at 70%
 * load.  Not thread-safe.  Iteration order is unspecified.
 */
struct cp_map_slot {
    char *key; /* NULL = empty, CP_MAP_TOMBSTONE = deleted */
    size_t key_len;
    uint64_t hash;
    void *val;
};

struct cp_map {
    struct cp_map_slot *slots;
    size_t cap; /* power of two */
    size_t len; /* live entries */
    size_t used; /* live + tombstones */
};

void cp_map_init(struct cp_map *m);
/* Frees the map's own memory (keys, slots), not the values. */
void cp_map_free(struct cp_map *m);
void *cp_map_get(const struct cp_map *m, const void *key, size_t key_len);
/* Inserts or replaces; 0 or CP_ERR_NOMEM. */
int cp_map_put(struct cp_map *m, const void *key, size_t key_len, void *val);
/* Removes and returns the value, or NULL. */
void *cp_map_del(struct cp_map *m, const void *key, size_t key_len);
/* Iteration: `i` starts at 0; returns the next live slot or NULL at the end. */
struct cp_map_slot *cp_map_next(const struct cp_map *m, size_t *i);
uint64_t cp_map_hash(const void *key, size_t len);

#endif
