/* The ring of complete generations, bounded by count and by the pool memory
 * they hold (FLIGHTREC_MAX_BYTES): the oldest is
 * dropped whole, after the post-mortem index stopped naming it
 * (fr_pmring.c). A snapshot pins the generations it writes; an evicted
 * generation that is pinned is freed by the last unpin. */
#include <stdlib.h>

#include "fr_internal.h"

static struct {
        pthread_mutex_t lock;
        struct fr_genbytes *head, *tail; /* oldest first */
        size_t count, bytes;
        unsigned max_count;
        size_t max_bytes;
        struct fr_genbytes *live; /* prologue of the generation in progress */
} ring = {.lock = PTHREAD_MUTEX_INITIALIZER};

void fr__genbytes_free(struct fr_genbytes *g) {
        fr__pool_put_chain(g->head);
        free(g);
}

void fr__ring_init(unsigned generations, size_t max_bytes) {
        pthread_mutex_init(&ring.lock, NULL); /* fresh, also in a forked child */
        ring.head = ring.tail = NULL;
        ring.count = ring.bytes = 0;
        ring.max_count = generations;
        ring.max_bytes = max_bytes;
        ring.live = NULL;
}

void fr__ring_set_live(struct fr_genbytes *prologue) {
        pthread_mutex_lock(&ring.lock);
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

void fr__ring_push(struct fr_genbytes *g) {
        pthread_mutex_lock(&ring.lock);
        g->next = NULL;
        if (ring.tail)
                ring.tail->next = g;
        else
                ring.head = g;
        ring.tail = g;
        ring.count++;
        ring.bytes += g->mem;
        /* The newest generation stays even when it alone is over the byte bound. */
        struct fr_genbytes *evicted = NULL, **tail = &evicted;
        while (ring.head != ring.tail &&
               (ring.count > ring.max_count || ring.bytes > ring.max_bytes)) {
                *tail = unlink_oldest_locked();
                tail = &(*tail)->next;
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

size_t fr__ring_bytes(void) {
        pthread_mutex_lock(&ring.lock);
        size_t n = ring.bytes;
        pthread_mutex_unlock(&ring.lock);
        return n;
}

void fr__ring_destroy(void) {
        pthread_mutex_lock(&ring.lock);
        fr__pm_publish(NULL, NULL);
        if (ring.live)
                fr__genbytes_free(ring.live);
        ring.live = NULL;
        struct fr_genbytes *all = ring.head;
        ring.head = ring.tail = NULL;
        ring.count = ring.bytes = 0;
        release_locked(all);
        pthread_mutex_unlock(&ring.lock);
}
