/* Byte-key hash map: see fr_keymap.h. */
#include "fr_keymap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

uint64_t fr_hash_bytes(const void *p, size_t n) {
        const uint8_t *b = p;
        uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then a final mix */
        for (size_t i = 0; i < n; i++)
                h = (h ^ b[i]) * 0x100000001b3ull;
        h ^= h >> 31;
        h *= 0xbf58476d1ce4e5b9ull;
        return h ^ (h >> 29);
}

static struct fr_kslot *keymap_slot(const struct fr_keymap *m, const void *key, size_t len,
                                    uint64_t h) {
        for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
                struct fr_kslot *s = &m->slots[i];
                if (!s->key || (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0))
                        return s;
        }
}

bool fr_keymap_get(const struct fr_keymap *m, const void *key, size_t len, size_t *ret) {
        if (!m->cap)
                return false;
        struct fr_kslot *s = keymap_slot(m, key, len, fr_hash_bytes(key, len));
        if (!s->key)
                return false;
        *ret = s->val;
        return true;
}

int fr_keymap_put(struct fr_keymap *m, struct fr_arena *a, const void *key, size_t len, size_t val) {
        if ((m->n + 1) * 2 > m->cap) {
                size_t cap = m->cap ? m->cap * 2 : 256;
                struct fr_keymap bigger = {calloc(cap, sizeof(struct fr_kslot)), cap, m->n};
                if (!bigger.slots)
                        return -ENOMEM;
                for (size_t i = 0; i < m->cap; i++)
                        if (m->slots[i].key)
                                *keymap_slot(&bigger, m->slots[i].key, m->slots[i].len,
                                             m->slots[i].hash) = m->slots[i];
                free(m->slots);
                *m = bigger;
        }
        uint8_t *copy = fr_arena_alloc(a, len);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, key, len);
        uint64_t h = fr_hash_bytes(key, len);
        *keymap_slot(m, key, len, h) = (struct fr_kslot){copy, len, h, val};
        m->n++;
        return 0;
}

void fr_keymap_free(struct fr_keymap *m) {
        free(m->slots);
        *m = (struct fr_keymap){0};
}
