/* cp_arena.c - block-chained bump allocator. */
#include "cp_arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct cp_arena_block {
    struct cp_arena_block *next; /* older block */
    size_t cap;
    size_t used;
    _Alignas(16) unsigned char data[];
};

void cp_arena_init(struct cp_arena *a, size_t block_size, size_t limit)
{
    a->head = NULL;
    a->block_size = block_size ? block_size : 4096;
    a->used_total = 0;
    a->limit = limit;
}

void cp_arena_reset(struct cp_arena *a)
{
    struct cp_arena_block *b = a->head;
    if (!b)
        return;
    /* Keep the oldest block (the one at the tail): it has the standard size
     * and serves the next batch without a malloc. */
    while (b->next) {
        struct cp_arena_block *next = b->next;
        free(b);
        b = next;
    }
    b->used = 0;
    a->head = b;
    a->used_total = 0;
}

void cp_arena_destroy(struct cp_arena *a)
{
    struct cp_arena_block *b = a->head;
    while (b) {
        struct cp_arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->used_total = 0;
}

void *cp_arena_alloc(struct cp_arena *a, size_t n)
{
    size_t need = (n + 15) & ~(size_t)15;
    if (need < n)
        return NULL;
    if (a->limit && (a->used_total + need > a->limit || a->used_total + need < need))
        return NULL;
    struct cp_arena_block *b = a->head;
    if (!b || b->cap - b->used < need) {
        size_t cap = need > a->block_size ? need : a->block_size;
        struct cp_arena_block *nb = malloc(sizeof *nb + cap);
        if (!nb)
            return NULL;
        nb->cap = cap;
        nb->used = 0;
        nb->next = b;
        a->head = nb;
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += need;
    a->used_total += need;
    return p;
}

char *cp_arena_strndup(struct cp_arena *a, const char *s, size_t len)
{
    char *p = cp_arena_alloc(a, len + 1);
    if (!p)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *cp_arena_strdup(struct cp_arena *a, const char *s)
{
    return cp_arena_strndup(a, s, strlen(s));
}
