/* An open-addressing map from byte-string keys to indexes, its keys copied
 * into an arena (fr_vec.h): the index of the pprof and timeline converters.
 * Not thread-safe; each conversion has its own. */
#ifndef FR_KEYMAP_H
#define FR_KEYMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fr_vec.h"
struct fr_kslot {
        const uint8_t *key; /* NULL: empty slot */
        size_t len;
        uint64_t hash;
        size_t val;
};

struct fr_keymap {
        struct fr_kslot *slots;
        size_t cap, n; /* cap: a power of two, or 0 */
};

uint64_t fr_hash_bytes(const void *p, size_t n);
/* fr_keymap_get - true with *ret set when key is present. */
bool fr_keymap_get(const struct fr_keymap *m, const void *key, size_t len, size_t *ret);
/* fr_keymap_put - add a key not yet present; its bytes are copied into the
 * arena. Returns 0 or -ENOMEM. */
int fr_keymap_put(struct fr_keymap *m, struct fr_arena *a, const void *key, size_t len, size_t val);
void fr_keymap_free(struct fr_keymap *m);

#endif
