/* Growable arrays and a bump arena: the containers of the trace reader and
 * the pprof converter (one home, fr_vec.c). */
#ifndef FR_VEC_H
#define FR_VEC_H

#include <stddef.h>

/* fr_vec_grow - make room for `need` elements in the array whose pointer is at
 * *pp (any element type; read and written with memcpy to stay clear of
 * aliasing rules). Capacity doubles from 16. Returns 0 or -ENOMEM. */
int fr_vec_grow(void *pp, size_t *cap, size_t need, size_t elem);

#define FR_VEC(T)                                                                                  \
        struct {                                                                                   \
                T *v;                                                                              \
                size_t n, cap;                                                                     \
        }
/* FR_VEC_RESERVE - room for `need` elements: 0 or -ENOMEM. */
#define FR_VEC_RESERVE(vec, need) fr_vec_grow(&(vec).v, &(vec).cap, (need), sizeof(*(vec).v))
/* FR_VEC_PUSH - a pointer to a new last element, or NULL (out of memory). */
#define FR_VEC_PUSH(vec)                                                                           \
        (fr_vec_grow(&(vec).v, &(vec).cap, (vec).n + 1, sizeof(*(vec).v)) < 0 ? NULL               \
                                                                               : &(vec).v[(vec).n++])

/* Bump allocator for what lives as long as one pass (a generation, a
 * conversion): 16-byte aligned, freed all at once. */
struct fr_arena_block;
struct fr_arena {
        struct fr_arena_block *head;
};

/* fr_arena_alloc - n bytes (a distinct non-NULL pointer even for n == 0), or NULL. */
void *fr_arena_alloc(struct fr_arena *a, size_t n);
/* fr_arena_strndup - a NUL-terminated copy of n bytes, or NULL. */
char *fr_arena_strndup(struct fr_arena *a, const void *p, size_t n);
/* fr_arena_strdup - a copy of the C string s, or NULL. */
char *fr_arena_strdup(struct fr_arena *a, const char *s);
void fr_arena_free(struct fr_arena *a);

#endif
