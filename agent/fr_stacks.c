/* The stack table of one generation, built by the advancer while it drains
 * the sample buffers: each distinct stack gets an id (1, 2, ...) and is
 * written once into the generation's STACKS batches. */
#include <stdlib.h>
#include <string.h>

#include "fr_internal.h"

struct slot {
        uint64_t hash;
        uint64_t id;    /* 0: empty */
        size_t off;     /* frames[off .. off + n) */
        uint32_t n;
};

struct fr_stack_table {
        struct slot *slots;
        size_t nslots, count;
        uint64_t *frames;
        size_t nframes, frames_cap;
        struct fr_buf payload; /* STACKS entries not yet in a batch */
        struct fr_buf batches; /* complete STACKS batches */
        size_t nbatches;
        uint64_t gen;
};

struct fr_stack_table *fr__stacks_new(void) { return calloc(1, sizeof(struct fr_stack_table)); }

void fr__stacks_free(struct fr_stack_table *st) {
        if (!st)
                return;
        free(st->slots);
        free(st->frames);
        fr_buf_free(&st->payload);
        fr_buf_free(&st->batches);
        free(st);
}

static uint64_t hash_pcs(const uint64_t *pcs, uint32_t n) {
        uint64_t h = 0xcbf29ce484222325ull ^ n;
        for (uint32_t i = 0; i < n; i++)
                h = (h ^ pcs[i]) * 0x100000001b3ull;
        return h ^ (h >> 29);
}

static int grow(struct fr_stack_table *st) {
        size_t n = st->nslots ? 2 * st->nslots : 1024;
        struct slot *s = calloc(n, sizeof *s);
        if (!s)
                return -1;
        for (size_t i = 0; i < st->nslots; i++) {
                struct slot *o = &st->slots[i];
                if (!o->id)
                        continue;
                size_t j = o->hash & (n - 1);
                while (s[j].id)
                        j = (j + 1) & (n - 1);
                s[j] = *o;
        }
        free(st->slots);
        st->slots = s;
        st->nslots = n;
        return 0;
}

static void seal_batch(struct fr_stack_table *st) {
        if (st->payload.len == 0)
                return;
        fr_buf_put_batch(&st->batches, FR_BATCH_STACKS, st->gen, 0, 0, st->payload.data,
                         st->payload.len);
        st->nbatches++;
        st->payload.len = 0;
}

uint64_t fr__stacks_intern(struct fr_stack_table *st, const uint64_t *pcs, uint32_t n) {
        if (n == 0 || n > FR_MAX_STACK_FRAMES)
                return 0;
        if ((st->count + 1) * 2 > st->nslots && grow(st) < 0)
                return 0;
        uint64_t h = hash_pcs(pcs, n);
        size_t i = h & (st->nslots - 1);
        for (; st->slots[i].id; i = (i + 1) & (st->nslots - 1)) {
                struct slot *s = &st->slots[i];
                if (s->hash == h && s->n == n && memcmp(st->frames + s->off, pcs, n * sizeof *pcs) == 0)
                        return s->id;
        }
        if (st->nframes + n > st->frames_cap) {
                size_t cap = st->frames_cap ? 2 * st->frames_cap : 4096;
                while (cap < st->nframes + n)
                        cap *= 2;
                uint64_t *f = realloc(st->frames, cap * sizeof *f);
                if (!f)
                        return 0;
                st->frames = f;
                st->frames_cap = cap;
        }
        /* The entry: id, frame count, the leaf, then signed deltas. */
        size_t entry_max = (size_t)(n + 2) * FR_VARINT_MAX;
        if (st->payload.len + entry_max > FR_MAX_BATCH_BYTES)
                seal_batch(st);
        uint64_t id = st->count + 1;
        fr_buf_put_uvarint(&st->payload, id);
        fr_buf_put_uvarint(&st->payload, n);
        fr_buf_put_uvarint(&st->payload, pcs[0]);
        for (uint32_t k = 1; k < n; k++)
                fr_buf_put_uvarint(&st->payload, fr_zigzag((int64_t)(pcs[k] - pcs[k - 1])));
        if (st->payload.failed)
                return 0;
        memcpy(st->frames + st->nframes, pcs, n * sizeof *pcs);
        st->slots[i] = (struct slot){.hash = h, .id = id, .off = st->nframes, .n = n};
        st->nframes += n;
        st->count++;
        return id;
}

void fr__stacks_begin(struct fr_stack_table *st, uint64_t gen) { st->gen = gen; }

void fr__stacks_emit(struct fr_stack_table *st, struct fr_buf *out, size_t *nbatches) {
        seal_batch(st);
        fr_buf_put_bytes(out, st->batches.data, st->batches.len);
        *nbatches += st->nbatches;
        st->batches.len = 0;
        st->nbatches = 0;
        st->count = st->nframes = 0;
        if (st->slots)
                memset(st->slots, 0, st->nslots * sizeof *st->slots);
}
