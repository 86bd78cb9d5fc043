/* Growable arrays and the bump arena (fr_vec.h). */
#include "fr_vec.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK 65536

int fr_vec_grow(void *pp, size_t *cap, size_t need, size_t elem) {
        if (need <= *cap)
                return 0;
        size_t n = *cap ? *cap : 16;
        while (n < need) {
                if (n > SIZE_MAX / 2 / elem)
                        return -ENOMEM;
                n *= 2;
        }
        void *old, *p;
        memcpy(&old, pp, sizeof old);
        p = realloc(old, n * elem);
        if (!p)
                return -ENOMEM;
        memcpy(pp, &p, sizeof p);
        *cap = n;
        return 0;
}

struct fr_arena_block {
        struct fr_arena_block *next;
        size_t used, cap;
        _Alignas(16) unsigned char data[];
};

void *fr_arena_alloc(struct fr_arena *a, size_t n) {
        if (n > SIZE_MAX - 64)
                return NULL;
        n = (n + 15) & ~(size_t)15;
        if (n == 0)
                n = 16; /* a distinct non-NULL pointer even for an empty key */
        struct fr_arena_block *b = a->head;
        if (!b || b->cap - b->used < n) {
                size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
                b = malloc(sizeof *b + cap);
                if (!b)
                        return NULL;
                b->next = a->head;
                b->used = 0;
                b->cap = cap;
                a->head = b;
        }
        void *p = b->data + b->used;
        b->used += n;
        return p;
}

char *fr_arena_strndup(struct fr_arena *a, const void *p, size_t n) {
        char *s = n < SIZE_MAX ? fr_arena_alloc(a, n + 1) : NULL;
        if (s) {
                memcpy(s, p, n);
                s[n] = 0;
        }
        return s;
}

void fr_arena_free(struct fr_arena *a) {
        while (a->head) {
                struct fr_arena_block *next = a->head->next;
                free(a->head);
                a->head = next;
        }
}

char *fr_arena_strdup(struct fr_arena *a, const char *s) { return fr_arena_strndup(a, s, strlen(s)); }
