/* Interned names: an open-addressing hash table that is read without locks
 * (an entry is published by a release store of its string pointer and never
 * changes or moves afterwards) and written under a mutex. An id is the slot
 * index + 1, stable for the life of the recorder. Each entry remembers the last
 * generation of each parity it was used in, so the advancer can emit exactly the
 * names a generation needs. Log messages are not interned. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fr_internal.h"

#define NAMES_SLOTS (1u << 16)      /* power of two */
#define NAMES_MAX (NAMES_SLOTS / 2) /* keep probes short */
#define ARENA_CHUNK (256u * 1024u)
#define ARENA_MAX_CHUNKS 32         /* 8 MiB of name bytes at most */

struct fr_name_slot *fr__name_slots;

static struct {
        pthread_mutex_t lock;
        uint32_t count;
        uint32_t overflow_id; /* "<too many names>" */
        char *arena[ARENA_MAX_CHUNKS];
        unsigned narena;
        size_t arena_used;
        /* Slot indexes in insertion order: the advancer walks these, not
         * the whole (mostly empty, 2 MiB) table, every generation. */
        uint32_t order[NAMES_MAX];
        _Atomic uint32_t norder;
} names = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* A short multiply-xorshift hash, 8 bytes at a time: names are short. */
static uint32_t name_hash(const char *s, size_t n) {
        uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
        while (n >= 8) {
                uint64_t w;
                memcpy(&w, s, 8);
                h = (h ^ w) * 0xff51afd7ed558ccdull;
                h ^= h >> 32;
                s += 8;
                n -= 8;
        }
        uint64_t w = 0;
        memcpy(&w, s, n);
        h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
        h ^= h >> 29;
        return (uint32_t)h;
}

static char *arena_copy(const char *s, size_t n) {
        if (names.narena == 0 || names.arena_used + n + 1 > ARENA_CHUNK) {
                if (names.narena == ARENA_MAX_CHUNKS)
                        return NULL;
                char *c = malloc(ARENA_CHUNK);
                if (!c)
                        return NULL;
                names.arena[names.narena++] = c;
                names.arena_used = 0;
        }
        char *d = names.arena[names.narena - 1] + names.arena_used;
        memcpy(d, s, n);
        d[n] = '\0';
        names.arena_used += n + 1;
        return d;
}

static uint32_t lookup(const char *s, size_t n, uint32_t h) {
        for (uint32_t i = h & (NAMES_SLOTS - 1);; i = (i + 1) & (NAMES_SLOTS - 1)) {
                struct fr_name_slot *e = &fr__name_slots[i];
                const char *p = atomic_load_explicit(&e->str, memory_order_acquire);
                if (!p)
                        return 0;
                if (e->hash == h && e->len == n && memcmp(p, s, n) == 0)
                        return i + 1;
        }
}

static uint32_t insert_locked(const char *s, size_t n, uint32_t h) {
        uint32_t i = h & (NAMES_SLOTS - 1);
        for (;; i = (i + 1) & (NAMES_SLOTS - 1)) {
                struct fr_name_slot *e = &fr__name_slots[i];
                const char *p = atomic_load_explicit(&e->str, memory_order_relaxed);
                if (!p)
                        break;
                if (e->hash == h && e->len == n && memcmp(p, s, n) == 0)
                        return i + 1;
        }
        if (names.count >= NAMES_MAX)
                return 0;
        char *copy = arena_copy(s, n);
        if (!copy)
                return 0;
        struct fr_name_slot *e = &fr__name_slots[i];
        e->hash = h;
        e->len = (uint32_t)n;
        atomic_store_explicit(&e->used[0], 0, memory_order_relaxed);
        atomic_store_explicit(&e->used[1], 0, memory_order_relaxed);
        atomic_store_explicit(&e->str, copy, memory_order_release);
        names.count++;
        uint32_t k = atomic_load_explicit(&names.norder, memory_order_relaxed);
        names.order[k] = i;
        atomic_store_explicit(&names.norder, k + 1, memory_order_release);
        return i + 1;
}

int fr__names_init(void) {
        /* The table outlives fr_stop: threads may be interning while it stops. */
        pthread_mutex_init(&names.lock, NULL);
        if (fr__name_slots)
                return 0;
        fr__name_slots = calloc(NAMES_SLOTS, sizeof *fr__name_slots);
        if (!fr__name_slots)
                return -ENOMEM;
        names.count = 0;
        atomic_store(&names.norder, 0);
        names.narena = 0;
        names.arena_used = 0;
        const char *ov = "<too many names>";
        names.overflow_id = insert_locked(ov, strlen(ov), name_hash(ov, strlen(ov)));
        return 0;
}

uint32_t fr__name_intern(const char *s) {
        if (!s)
                s = "";
        size_t n = strnlen(s, FR_MAX_STRING_BYTES);
        uint32_t h = name_hash(s, n);
        uint32_t id = lookup(s, n, h);
        if (id)
                return id;
        pthread_mutex_lock(&names.lock);
        id = insert_locked(s, n, h);
        pthread_mutex_unlock(&names.lock);
        return id ? id : names.overflow_id;
}

/* emit - STRINGS batches of the names marked used in gen (used_only), or of
 * all of them, until about max_bytes. Batches stay under one block's payload
 * so the ring can pack them. */
static void emit(uint64_t gen, bool used_only, size_t max_bytes, struct fr_buf *out,
                 size_t *nbatches) {
        const size_t limit = FR_BLOCK_SIZE / 2;
        struct fr_buf payload = {0};
        size_t total = 0;
        uint32_t n = atomic_load_explicit(&names.norder, memory_order_acquire);
        for (uint32_t k = 0; k < n && total < max_bytes; k++) {
                uint32_t i = names.order[k];
                struct fr_name_slot *e = &fr__name_slots[i];
                const char *p = atomic_load_explicit(&e->str, memory_order_acquire);
                if (!p || (used_only &&
                           atomic_load_explicit(&e->used[gen & 1], memory_order_relaxed) != gen))
                        continue;
                if (payload.len + e->len + 2 * FR_VARINT_MAX > limit) {
                        fr_buf_put_batch(out, FR_BATCH_STRINGS, gen, 0, 0, payload.data, payload.len);
                        (*nbatches)++;
                        total += payload.len;
                        payload.len = 0;
                }
                fr_buf_put_uvarint(&payload, i + 1);
                fr_buf_put_string(&payload, p, e->len);
        }
        if (payload.len) {
                fr_buf_put_batch(out, FR_BATCH_STRINGS, gen, 0, 0, payload.data, payload.len);
                (*nbatches)++;
        }
        if (payload.failed)
                out->failed = 1;
        fr_buf_free(&payload);
}

void fr__names_emit(uint64_t gen, struct fr_buf *out, size_t *nbatches) {
        emit(gen, true, SIZE_MAX, out, nbatches);
}

void fr__names_emit_all(uint64_t gen, struct fr_buf *out, size_t *nbatches, size_t max_bytes) {
        emit(gen, false, max_bytes, out, nbatches);
}
