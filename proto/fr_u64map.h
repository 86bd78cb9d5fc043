/* fr_u64map: an open-addressing map from a non-zero u64 key (thread ids,
 * task ids, string and stack ids) to an index, with deletion: linear
 * probing, backward-shift delete (no tombstones), so that tasks coming and
 * going by the million keep it small. Key 0 marks an empty slot. Shared by
 * the trace reader and the timeline export; inline, for the reader's hot
 * loops. */
#ifndef FR_U64MAP_H
#define FR_U64MAP_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

struct fr_u64slot {
        uint64_t key; /* 0: empty */
        size_t val;
};

struct fr_u64map {
        struct fr_u64slot *s;
        size_t cap, n; /* cap: power of two or 0 */
};

static inline size_t fr__u64map_home(uint64_t k, size_t cap) {
        k ^= k >> 30;
        k *= 0xbf58476d1ce4e5b9ull;
        k ^= k >> 27;
        k *= 0x94d049bb133111ebull;
        return (size_t)(k ^ (k >> 31)) & (cap - 1);
}

/* fr__u64map_index - the slot of key, or SIZE_MAX (absent, or key 0). */
static inline size_t fr__u64map_index(const struct fr_u64map *m, uint64_t key) {
        if (!m->cap || key == 0)
                return SIZE_MAX;
        for (size_t i = fr__u64map_home(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
                if (m->s[i].key == key)
                        return i;
                if (m->s[i].key == 0)
                        return SIZE_MAX;
        }
}

/* fr_u64map_find - the value of key, to read or change, or NULL. */
static inline size_t *fr_u64map_find(const struct fr_u64map *m, uint64_t key) {
        size_t i = fr__u64map_index(m, key);
        return i == SIZE_MAX ? NULL : &m->s[i].val;
}

static inline bool fr_u64map_get(const struct fr_u64map *m, uint64_t key, size_t *ret) {
        size_t *v = fr_u64map_find(m, key);
        if (v)
                *ret = *v;
        return v != NULL;
}

/* fr_u64map_put - insert or replace (key != 0). Returns 0 or -ENOMEM. */
static inline int fr_u64map_put(struct fr_u64map *m, uint64_t key, size_t val) {
        if ((m->n + 1) * 2 > m->cap) {
                size_t cap = m->cap ? m->cap * 2 : 64;
                struct fr_u64map big = {calloc(cap, sizeof *big.s), cap, 0};
                if (!big.s)
                        return -ENOMEM;
                for (size_t i = 0; i < m->cap; i++)
                        if (m->s[i].key)
                                (void)fr_u64map_put(&big, m->s[i].key, m->s[i].val);
                free(m->s);
                *m = big;
        }
        size_t i = fr__u64map_home(key, m->cap);
        while (m->s[i].key != 0 && m->s[i].key != key)
                i = (i + 1) & (m->cap - 1);
        m->n += m->s[i].key == 0;
        m->s[i] = (struct fr_u64slot){key, val};
        return 0;
}

/* fr_u64map_del - remove key if present: the later entries of its probe run
 * that may move up into the hole do. */
static inline void fr_u64map_del(struct fr_u64map *m, uint64_t key) {
        size_t hole = fr__u64map_index(m, key);
        if (hole == SIZE_MAX)
                return;
        size_t mask = m->cap - 1;
        for (size_t j = (hole + 1) & mask; m->s[j].key != 0; j = (j + 1) & mask) {
                size_t home = fr__u64map_home(m->s[j].key, m->cap);
                /* j may fill the hole when the hole lies on its probe path. */
                if (((j - home) & mask) >= ((j - hole) & mask)) {
                        m->s[hole] = m->s[j];
                        hole = j;
                }
        }
        m->s[hole].key = 0;
        m->n--;
}

static inline void fr_u64map_free(struct fr_u64map *m) {
        free(m->s);
        *m = (struct fr_u64map){0};
}

#endif
