/* The ring of complete generations, bounded by count and by the pool memory
 * they hold (FLIGHTREC_MAX_BYTES), and kept to at least FLIGHTREC_MIN_AGE_MS
 * of history unless the byte bound says otherwise: the oldest is
 * dropped whole, after the post-mortem index stopped naming it
 * (fr_pmring.c). A snapshot pins the generations it writes; an evicted
 * generation that is pinned is freed by the last unpin. A ring snapshot
 * (fr__ring_hold) also keeps the index as it is until it is released, so
 * that the daemon reads the very extents the index names. */
#include <errno.h>
#include <stdlib.h>

#include "fr_internal.h"

static struct {
        pthread_mutex_t lock;
        struct fr_genbytes *head, *tail; /* oldest first */
        size_t count, bytes;
        unsigned max_count;
        size_t max_bytes;
        uint64_t min_age_ms;             /* 0: none */
        uint64_t age_cuts;               /* pushes where the byte bound cut under min_age */
        uint64_t age_cut_kept_ticks;     /* the span the last cut left */
        unsigned age_cut_kept;           /* and its generations */
        bool held;                       /* a ring snapshot: no publish */
        bool held_dirty;                 /* a push happened during the hold */
        struct fr_genbytes **held_gens;  /* pinned by the hold */
        size_t nheld;
        struct fr_genbytes *live; /* prologue of the generation in progress */
        /* During a hold the index is not rewritten, so the prologue it names
         * stays allocated: a newer one waits here, and a push only marks the
         * named one stale; the release publishes and frees. */
        struct fr_genbytes *live_pending;
        bool live_stale;
} ring = {.lock = PTHREAD_MUTEX_INITIALIZER};

void fr__genbytes_free(struct fr_genbytes *g) {
        fr__pool_put_chain(g->head);
        free(g);
}

void fr__ring_init(unsigned generations, size_t max_bytes, unsigned min_age_ms) {
        pthread_mutex_init(&ring.lock, NULL); /* fresh, also in a forked child */
        ring.head = ring.tail = NULL;
        ring.count = ring.bytes = 0;
        ring.max_count = generations;
        ring.max_bytes = max_bytes;
        ring.min_age_ms = min_age_ms;
        ring.age_cuts = ring.age_cut_kept_ticks = 0;
        ring.age_cut_kept = 0;
        ring.held = ring.held_dirty = false; /* a forked child holds nothing for a daemon */
        ring.held_gens = NULL;
        ring.nheld = 0;
        ring.live = ring.live_pending = NULL;
        ring.live_stale = false;
}

void fr__ring_set_live(struct fr_genbytes *prologue) {
        pthread_mutex_lock(&ring.lock);
        if (ring.held) {
                if (ring.live_pending)
                        fr__genbytes_free(ring.live_pending); /* never named */
                ring.live_pending = prologue;
                ring.held_dirty = true;
                pthread_mutex_unlock(&ring.lock);
                return;
        }
        fr__pm_publish(ring.head, prologue);
        struct fr_genbytes *old = ring.live;
        ring.live = prologue;
        if (old)
                fr__genbytes_free(old); /* after the index stopped naming it */
        pthread_mutex_unlock(&ring.lock);
}

/* Unlink the oldest generation; the caller frees it (release_locked)
 * once the post-mortem index no longer names it. */
static struct fr_genbytes *unlink_oldest_locked(void) {
        struct fr_genbytes *g = ring.head;
        ring.head = g->next;
        if (!ring.head)
                ring.tail = NULL;
        ring.count--;
        ring.bytes -= g->mem;
        g->next = NULL;
        return g;
}

static void release_locked(struct fr_genbytes *g) {
        while (g) {
                struct fr_genbytes *next = g->next;
                g->next = NULL;
                if (g->refs)
                        g->evicted = true; /* the last unpin frees it */
                else
                        fr__genbytes_free(g);
                g = next;
        }
}

/* young_locked - dropping the oldest would leave less than min_age of
 * history (from the second oldest's start to the newest's end). */
static bool young_locked(uint64_t min_age_ticks) {
        return min_age_ticks && ring.head->next &&
               ring.tail->end - ring.head->next->start < min_age_ticks;
}

void fr__ring_push(struct fr_genbytes *g, uint64_t ticks_per_second) {
        uint64_t min_age_ticks =
                (uint64_t)((unsigned __int128)ring.min_age_ms * ticks_per_second / 1000u);
        pthread_mutex_lock(&ring.lock);
        g->next = NULL;
        if (ring.tail)
                ring.tail->next = g;
        else
                ring.head = g;
        ring.tail = g;
        ring.count++;
        ring.bytes += g->mem;
        /* The newest generation stays even when it alone is over the byte
         * bound. Over the count, the oldest goes only if what is left still
         * spans min_age; over the bytes, it goes anyway (counted). */
        struct fr_genbytes *evicted = NULL, **tail = &evicted;
        bool cut = false;
        while (ring.head != ring.tail) {
                bool young = young_locked(min_age_ticks);
                if (ring.bytes > ring.max_bytes)
                        cut |= young;
                else if (ring.count <= ring.max_count || young)
                        break;
                *tail = unlink_oldest_locked();
                tail = &(*tail)->next;
        }
        if (cut) {
                ring.age_cuts++;
                ring.age_cut_kept = (unsigned)ring.count;
                ring.age_cut_kept_ticks = ring.tail->end - ring.head->start;
        }
        if (ring.held) {
                ring.held_dirty = true; /* published at the release */
                ring.live_stale = true; /* still named by the index */
                release_locked(evicted);
                pthread_mutex_unlock(&ring.lock);
                return;
        }
        fr__pm_publish(ring.head, NULL); /* the next generation's prologue comes later */
        release_locked(evicted);
        if (ring.live) {
                fr__genbytes_free(ring.live);
                ring.live = NULL;
        }
        pthread_mutex_unlock(&ring.lock);
}

size_t fr__ring_pin(struct fr_genbytes **ret, size_t max) {
        size_t n = 0;
        pthread_mutex_lock(&ring.lock);
        for (struct fr_genbytes *g = ring.head; g && n < max; g = g->next) {
                g->refs++;
                ret[n++] = g;
        }
        pthread_mutex_unlock(&ring.lock);
        return n;
}

void fr__ring_unpin(struct fr_genbytes **gens, size_t n) {
        pthread_mutex_lock(&ring.lock);
        for (size_t i = 0; i < n; i++) {
                struct fr_genbytes *g = gens[i];
                if (--g->refs == 0 && g->evicted)
                        fr__genbytes_free(g);
        }
        pthread_mutex_unlock(&ring.lock);
}

int fr__ring_hold(uint64_t *ret_index_gen) {
        pthread_mutex_lock(&ring.lock);
        if (ring.held) {
                pthread_mutex_unlock(&ring.lock);
                return -EBUSY;
        }
        struct fr_genbytes **v = malloc((ring.count + 1) * sizeof *v);
        if (!v) {
                pthread_mutex_unlock(&ring.lock);
                return -ENOMEM;
        }
        /* The index was last published by a push, under this lock, naming
         * exactly this list: pin it and publish no more. */
        size_t n = 0;
        for (struct fr_genbytes *g = ring.head; g; g = g->next) {
                g->refs++;
                v[n++] = g;
        }
        ring.held = true;
        ring.held_gens = v;
        ring.nheld = n;
        *ret_index_gen = fr__pm_index_gen();
        pthread_mutex_unlock(&ring.lock);
        return 0;
}

void fr__ring_release(void) {
        pthread_mutex_lock(&ring.lock);
        if (!ring.held) {
                pthread_mutex_unlock(&ring.lock);
                return;
        }
        ring.held = false;
        /* The index first: it must stop naming a generation before it is
         * freed. Only when the ring moved: the hold costs no extra publish. */
        if (ring.held_dirty) {
                struct fr_genbytes *live = ring.live_pending ? ring.live_pending
                                           : ring.live_stale  ? NULL
                                                              : ring.live;
                fr__pm_publish(ring.head, live);
                if (ring.live && ring.live != live)
                        fr__genbytes_free(ring.live);
                ring.live = live;
                ring.live_pending = NULL;
                ring.live_stale = false;
        }
        ring.held_dirty = false;
        for (size_t i = 0; i < ring.nheld; i++) {
                struct fr_genbytes *g = ring.held_gens[i];
                if (--g->refs == 0 && g->evicted)
                        fr__genbytes_free(g);
        }
        free(ring.held_gens);
        ring.held_gens = NULL;
        ring.nheld = 0;
        pthread_mutex_unlock(&ring.lock);
}

uint64_t fr__ring_age_cuts(unsigned *ret_kept, uint64_t *ret_kept_ticks) {
        pthread_mutex_lock(&ring.lock);
        uint64_t n = ring.age_cuts;
        if (ret_kept)
                *ret_kept = ring.age_cut_kept;
        if (ret_kept_ticks)
                *ret_kept_ticks = ring.age_cut_kept_ticks;
        pthread_mutex_unlock(&ring.lock);
        return n;
}

size_t fr__ring_bytes(void) {
        pthread_mutex_lock(&ring.lock);
        size_t n = ring.bytes;
        pthread_mutex_unlock(&ring.lock);
        return n;
}

void fr__ring_destroy(void) {
        fr__ring_release();
        pthread_mutex_lock(&ring.lock);
        fr__pm_publish(NULL, NULL);
        if (ring.live)
                fr__genbytes_free(ring.live);
        if (ring.live_pending)
                fr__genbytes_free(ring.live_pending);
        ring.live = ring.live_pending = NULL;
        ring.live_stale = false;
        struct fr_genbytes *all = ring.head;
        ring.head = ring.tail = NULL;
        ring.count = ring.bytes = 0;
        release_locked(all);
        pthread_mutex_unlock(&ring.lock);
}
