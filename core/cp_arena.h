/* cp_arena.h - bump allocator whose whole content is released at once (per record, batch, connection). */
#ifndef CP_ARENA_H
#define CP_ARENA_H

#include <stddef.h>

/*
 * An arena hands out memory from a chain of blocks and frees it all in
 * cp_arena_reset() or cp_arena_destroy().  Owners name the lifespan in the
 * variable: `batch_arena`, `conn_arena`.  Individual allocations are never
 * freed.  Not thread-safe: one arena belongs to one thread at a time.
 * `limit` (0 = none) bounds the total bytes the arena may hold, so a hostile
 * input fails with NULL instead of exhausting memory.
 */
struct cp_arena_block;
struct cp_arena {
    struct cp_arena_block *head; /* current block (newest) */
    size_t block_size;
    size_t used_total; /* bytes handed out since the last reset */
    size_t limit;
};

void cp_arena_init(struct cp_arena *a, size_t block_size, size_t limit);
/* Frees every block but the first, which is kept for reuse. */
void cp_arena_reset(struct cp_arena *a);
void cp_arena_destroy(struct cp_arena *a);

/* Memory aligned to 16 bytes, or NULL when out of memory or over the limit. */
void *cp_arena_alloc(struct cp_arena *a, size_t n);
/* A NUL-terminated copy of s[0..len). */
char *cp_arena_strndup(struct cp_arena *a, const char *s, size_t len);
char *cp_arena_strdup(struct cp_arena *a, const char *s);
/* Bytes handed out since the last reset. */
static inline size_t cp_arena_used(const struct cp_arena *a)
{
    return a->used_total;
}

#endif
