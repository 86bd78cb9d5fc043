/* The block pool: fixed-size blocks carved from one reserved mapping, with a
 * free list. Taken under a mutex, once per FR_BLOCK_SIZE bytes of events. */
#include <errno.h>
#include <stdbool.h>

#include "fr_internal.h"

static struct {
        pthread_mutex_t lock;
        uint8_t *base;
        size_t nblocks;      /* capacity */
        size_t carved;       /* blocks handed out at least once */
        size_t in_use;
        struct fr_block *free;
        /* Set while writers are refused, so that failing writers skip the
         * mutex (a storm of them would contend on it while the pool is dry). */
        _Atomic bool dry __attribute__((aligned(FR_CACHELINE)));
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Blocks only the advancer may take, so it can always finish a generation. */
#define ADVANCER_RESERVE 64

int fr__pool_init(size_t max_bytes) {
        /* Live buffers and retained generations share the pool: twice the ring
         * bound leaves room for the generations being written. Pages are
         * touched only when a block is first used. */
        size_t nblocks = 2 * max_bytes / FR_BLOCK_SIZE + ADVANCER_RESERVE;
        /* In the post-mortem ring's memfd (fr_pmring.c), so that what is
         * recorded survives this process. */
        uint8_t *p = fr__pm_map(nblocks * FR_BLOCK_SIZE, nblocks);
        if (!p)
                return -ENOMEM;
        pthread_mutex_init(&pool.lock, NULL); /* fresh, also in a forked child */
        atomic_store(&pool.dry, false);
        pool.base = p;
        pool.nblocks = nblocks;
        pool.carved = 0;
        pool.in_use = 0;
        pool.free = NULL;
        return 0;
}

void fr__pool_destroy(void) {
        if (pool.base)
                fr__pm_unmap();
        pool.base = NULL;
        pool.nblocks = pool.carved = pool.in_use = 0;
        pool.free = NULL;
}

static struct fr_block *get(size_t limit) {
        struct fr_block *b = NULL;
        pthread_mutex_lock(&pool.lock);
        if (pool.in_use < limit) {
                if (pool.free) {
                        b = pool.free;
                        pool.free = b->next;
                } else if (pool.carved < pool.nblocks) {
                        b = (struct fr_block *)(pool.base + pool.carved * FR_BLOCK_SIZE);
                        pool.carved++;
                        fr__pm_carved(pool.carved);
                }
        }
        if (b)
                pool.in_use++;
        if (pool.in_use + ADVANCER_RESERVE >= pool.nblocks)
                atomic_store_explicit(&pool.dry, true, memory_order_relaxed);
        pthread_mutex_unlock(&pool.lock);
        if (b) {
                b->next = NULL;
                b->gen = 0;
                b->tid = 0;
                b->base_time = b->last_time = 0;
                b->data_start = b->out_start = FR_BLOCK_DATA_START;
                b->pos = FR_BLOCK_DATA_START;
        }
        return b;
}

struct fr_block *fr__pool_get(void) {
        if (atomic_load_explicit(&pool.dry, memory_order_relaxed))
                return NULL;
        return get(pool.nblocks - ADVANCER_RESERVE);
}

struct fr_block *fr__pool_get_reserve(void) { return get(pool.nblocks); }

void fr__pool_put_chain(struct fr_block *b) {
        if (!b)
                return;
        pthread_mutex_lock(&pool.lock);
        while (b) {
                struct fr_block *next = b->next;
                b->next = pool.free;
                pool.free = b;
                pool.in_use--;
                b = next;
        }
        if (pool.in_use + ADVANCER_RESERVE < pool.nblocks)
                atomic_store_explicit(&pool.dry, false, memory_order_relaxed);
        pthread_mutex_unlock(&pool.lock);
}

size_t fr__pool_blocks_in_use(void) {
        pthread_mutex_lock(&pool.lock);
        size_t n = pool.in_use;
        pthread_mutex_unlock(&pool.lock);
        return n;
}
