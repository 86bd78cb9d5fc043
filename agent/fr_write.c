/* The hot path: annotation events written by application threads.
 *
 * Each event is written inside the thread's seqlock (fr__acquire/fr__release)
 * into the block of the current generation's parity, buf[gen % 2]. No lock is
 * taken and no shared cache line is written except when a block fills up (one
 * event in about a thousand) and the thread fetches a fresh block from the
 * pool. The advancer never writes these fields while the thread may: it takes
 * a parity's blocks only after it has seen the thread's seqlock even once after
 * moving the generation on (docs/agent-design.md). */
#include <string.h>

#include "fr_internal.h"

#define EV_FIXED (1 + FR_VARINT_MAX)  /* type byte + time delta */

/* Slow path: the current block of this parity is missing or too full. Queue
 * the full one for the advancer and fetch another; NULL when the pool is dry
 * (the event is then counted as lost). */
static __attribute__((noinline)) struct fr_block *roll_block(struct fr_thread *t, uint64_t g,
                                                            size_t need, bool critical) {
        unsigned p = g & 1;
        struct fr_block *old = t->buf[p];
        if (old && old->pos > old->data_start) {
                if (t->full_tail[p])
                        t->full_tail[p]->next = old;
                else
                        t->full_head[p] = old;
                t->full_tail[p] = old;
                t->buf[p] = NULL;
        }
        struct fr_block *b = old && old->pos == old->data_start ? old : fr__pool_get();
        /* A thread's start and exit may not be lost: readers rebuild who is
         * alive from them. They may take from the advancer's reserve. */
        if (!b && critical)
                b = fr__pool_get_reserve();
        if (!b)
                return NULL;
        b->gen = g;
        b->tid = (uint32_t)t->tid; /* how the daemon finds it after a death */
        t->buf[p] = b;
        if (FR_BLOCK_SIZE - b->pos < need)
                return NULL; /* cannot happen: events are smaller than a block */
        return b;
}

/* name_id - the id of a name, through a small per-thread cache keyed by the
 * caller's pointer (names are nearly always literals). A hit is confirmed by
 * comparing the text with the interned copy, so a caller that rewrites its
 * buffer still gets the right name. */
static inline uint32_t name_id(struct fr_thread *t, const char *s) {
        if (!s)
                s = "";
        /* Literals sit a few bytes apart: mix the pointer bits before taking 4. */
        unsigned h = (unsigned)(((uintptr_t)s * 0x9e3779b97f4a7c15ull) >> 60);
        if (t->name_cache[h].ptr == s && strcmp(s, fr__name_str(t->name_cache[h].id)) == 0)
                return t->name_cache[h].id;
        uint32_t id = fr__name_intern(s);
        t->name_cache[h].ptr = s;
        t->name_cache[h].id = id;
        return id;
}

/* ev_start - reserve room for an event of at most `args` argument bytes and
 * write its type and time delta. Returns where the arguments go, or NULL when
 * the event is lost. */
static inline uint8_t *ev_start(struct fr_thread *t, uint64_t g, size_t args, uint8_t type) {
        size_t need = EV_FIXED + args;
        struct fr_block *b = t->buf[g & 1];
        if (__builtin_expect(!b || FR_BLOCK_SIZE - b->pos < need, 0)) {
                b = roll_block(t, g, need + 2 * (EV_FIXED + 2 * FR_VARINT_MAX),
                               type == FR_EV_THREAD_START || type == FR_EV_THREAD_EXIT);
                if (!b) {
                        t->lost_events[g & 1]++;
                        return NULL;
                }
        }
        uint64_t now = fr__now();
        if (now <= t->last_time)
                now = t->last_time + 1;
        t->last_time = now;
        if (b->pos == b->data_start)
                b->base_time = b->last_time = now;
        uint8_t *p = (uint8_t *)b + b->pos;
        *p++ = type;
        p = fr_put_uvarint(p, now - b->last_time);
        b->last_time = now;
        return p;
}

static inline void ev_commit(struct fr_thread *t, uint64_t g, uint8_t *end) {
        struct fr_block *b = t->buf[g & 1];
        /* The bytes before the position that commits them (a crash on this
         * thread, or a kill, leaves no torn event below pos). */
        atomic_signal_fence(memory_order_release);
        b->pos = (uint32_t)(end - (uint8_t *)b);
}

/* write_lost - a LOST event for a count not yet reported (before the
 * thread's exit; the advancer reports the counts of live threads). */
static void write_lost(struct fr_thread *t, uint64_t g, uint8_t kind, uint64_t *count) {
        if (!*count)
                return;
        uint8_t *p = ev_start(t, g, 2 * FR_VARINT_MAX, FR_EV_LOST);
        if (!p)
                return;
        p = fr_put_uvarint(p, kind);
        p = fr_put_uvarint(p, *count);
        ev_commit(t, g, p);
        *count = 0;
}

void fr_region_begin(uint64_t task, const char *name) {
        struct fr_thread *t = fr__thread_self();
        if (!t)
                return;
        uint32_t id = name_id(t, name);
        uint64_t g = fr__acquire(t);
        if (__builtin_expect(g == 0, 0)) { /* stopped */
                fr__release(t);
                return;
        }
        if (t->depth < FR_MAX_REGION_DEPTH) {
                uint8_t *p = ev_start(t, g, 2 * FR_VARINT_MAX, FR_EV_REGION_BEGIN);
                if (p) {
                        t->regions[t->depth] = (struct fr_region){task, id};
                        t->depth++;
                        fr__name_mark(id, g);
                        p = fr_put_uvarint(p, task);
                        p = fr_put_uvarint(p, id);
                        ev_commit(t, g, p);
                }
        } else {
                t->depth++; /* too deep: counted, ended silently */
                t->lost_regions[g & 1]++;
        }
        fr__release(t);
}

/* Close regions[depth-1 .. i], innermost first. */
static void end_regions_down_to(struct fr_thread *t, uint64_t g, uint32_t i) {
        while (t->depth > i) {
                struct fr_region *r = &t->regions[t->depth - 1];
                uint8_t *p = ev_start(t, g, 2 * FR_VARINT_MAX, FR_EV_REGION_END);
                if (!p)
                        return; /* state kept: the end is retried by the next end */
                fr__name_mark(r->name, g);
                p = fr_put_uvarint(p, r->task);
                p = fr_put_uvarint(p, r->name);
                ev_commit(t, g, p);
                t->depth--;
        }
}

void fr_region_end(uint64_t task, const char *name) {
        struct fr_thread *t = fr__thread_self();
        if (!t)
                return;
        /* Fast path: the end closes the innermost region; no lookup needed. */
        uint32_t id = 0;
        if (t->depth && t->depth <= FR_MAX_REGION_DEPTH) {
                struct fr_region *top = &t->regions[t->depth - 1];
                if (top->task == task && strcmp(name ? name : "", fr__name_str(top->name)) == 0)
                        id = top->name;
        }
        if (!id)
                id = name_id(t, name);
        uint64_t g = fr__acquire(t);
        if (__builtin_expect(g == 0, 0)) { /* stopped */
                fr__release(t);
                return;
        }
        if (t->depth > FR_MAX_REGION_DEPTH) {
                t->depth--; /* closes one of the unrecorded deep regions */
        } else {
                uint32_t i = t->depth;
                while (i > 0 && !(t->regions[i - 1].name == id && t->regions[i - 1].task == task))
                        i--;
                if (i > 0)
                        end_regions_down_to(t, g, i - 1);
                else
                        t->lost_regions[g & 1]++; /* matches no open region */
        }
        fr__release(t);
}

uint64_t fr_task_begin(uint64_t parent_task, const char *name) {
        struct fr_thread *t = fr__thread_self();
        if (!t)
                return 0;
        if (t->next_task == t->task_limit) {
                /* Ids come in blocks so threads do not share a counter line. */
                static _Atomic uint64_t next_block = 1;
                uint64_t blk = atomic_fetch_add_explicit(&next_block, 1, memory_order_relaxed);
                t->next_task = blk << 16;
                t->task_limit = t->next_task + (1u << 16);
        }
        uint64_t id = t->next_task++;
        uint32_t nid = name_id(t, name);
        uint64_t g = fr__acquire(t);
        if (__builtin_expect(g == 0, 0)) { /* stopped */
                fr__release(t);
                return 0;
        }
        uint8_t *p = ev_start(t, g, 3 * FR_VARINT_MAX, FR_EV_TASK_BEGIN);
        if (p) {
                fr__name_mark(nid, g);
                p = fr_put_uvarint(p, id);
                p = fr_put_uvarint(p, parent_task);
                p = fr_put_uvarint(p, nid);
                ev_commit(t, g, p);
        }
        fr__release(t);
        return id;
}

void fr_task_end(uint64_t task) {
        struct fr_thread *t = fr__thread_self();
        if (!t || task == 0)
                return;
        uint64_t g = fr__acquire(t);
        if (__builtin_expect(g == 0, 0)) { /* stopped */
                fr__release(t);
                return;
        }
        uint8_t *p = ev_start(t, g, FR_VARINT_MAX, FR_EV_TASK_END);
        if (p) {
                p = fr_put_uvarint(p, task);
                ev_commit(t, g, p);
        }
        fr__release(t);
}

void fr_log(uint64_t task, const char *category, const char *message) {
        struct fr_thread *t = fr__thread_self();
        if (!t)
                return;
        if (!message)
                message = "";
        size_t n = strnlen(message, FR_MAX_LOG_BYTES);
        uint32_t cid = name_id(t, category);
        uint64_t g = fr__acquire(t);
        if (__builtin_expect(g == 0, 0)) { /* stopped */
                fr__release(t);
                return;
        }
        uint8_t *p = ev_start(t, g, 3 * FR_VARINT_MAX + n, FR_EV_LOG);
        if (p) {
                fr__name_mark(cid, g);
                p = fr_put_uvarint(p, task);
                p = fr_put_uvarint(p, cid);
                p = fr_put_uvarint(p, n);
                memcpy(p, message, n);
                ev_commit(t, g, p + n);
        }
        fr__release(t);
}

void fr__write_block(struct fr_thread *t, unsigned call, uint64_t object, uint64_t ns,
                     uint64_t task, uint32_t region, const uint64_t *pcs, uint32_t n) {
        /* Odd: a signal handler's wrapped call interrupted an event write of
         * this thread; writing now would tear it. */
        if (atomic_load_explicit(&t->seq, memory_order_relaxed) & 1)
                return;
        if (n > FR_MAX_STACK_FRAMES)
                n = FR_MAX_STACK_FRAMES;
        uint64_t g = fr__acquire(t);
        if (__builtin_expect(g == 0, 0)) { /* stopped */
                fr__release(t);
                return;
        }
        uint8_t *p = ev_start(t, g, (6 + (size_t)n) * FR_VARINT_MAX, FR_EV_BLOCK);
        if (p) {
                if (region)
                        fr__name_mark(region, g);
                p = fr_put_uvarint(p, call);
                p = fr_put_uvarint(p, object);
                p = fr_put_uvarint(p, ns);
                p = fr_put_uvarint(p, task);
                p = fr_put_uvarint(p, region);
                p = fr_put_uvarint(p, n);
                for (uint32_t i = 0; i < n; i++)
                        p = fr_put_uvarint(p, i ? fr_zigzag((int64_t)(pcs[i] - pcs[i - 1])) : pcs[0]);
                ev_commit(t, g, p);
        }
        fr__release(t);
}

static void write_name(struct fr_thread *t, uint64_t g, uint32_t nid) {
        uint8_t *p = ev_start(t, g, FR_VARINT_MAX, FR_EV_THREAD_NAME);
        if (p) {
                fr__name_mark(nid, g);
                p = fr_put_uvarint(p, nid);
                ev_commit(t, g, p);
        }
}

void fr_thread_name(const char *name) {
        struct fr_thread *t = fr__thread_self();
        if (!t)
                return;
        uint32_t nid = name_id(t, name);
        uint64_t g = fr__acquire(t);
        if (__builtin_expect(g == 0, 0)) { /* stopped */
                fr__release(t);
                return;
        }
        write_name(t, g, nid);
        fr__release(t);
}

void fr__write_thread_start(struct fr_thread *t, const char *name) {
        uint32_t nid = name_id(t, name);
        uint64_t g = fr__acquire(t);
        if (__builtin_expect(g == 0, 0)) { /* stopped */
                fr__release(t);
                return;
        }
        uint8_t *p = ev_start(t, g, 0, FR_EV_THREAD_START);
        if (p)
                ev_commit(t, g, p);
        write_name(t, g, nid);
        fr__release(t);
}

void fr__write_thread_exit(struct fr_thread *t) {
        uint64_t g = fr__acquire(t);
        if (__builtin_expect(g == 0, 0)) { /* stopped */
                fr__release(t);
                return;
        }
        write_lost(t, g, FR_LOST_EVENTS, &t->lost_events[g & 1]);
        write_lost(t, g, FR_LOST_REGIONS, &t->lost_regions[g & 1]);
        uint8_t *p = ev_start(t, g, 0, FR_EV_THREAD_EXIT);
        if (p) {
                ev_commit(t, g, p);
                /* The advancer frees the record once generation g is complete. */
                atomic_store_explicit(&t->exit_gen, g, memory_order_relaxed);
        }
        /* Else (even the reserve is gone) the record stays, alive as far as
         * the trace can tell: never a STATUS that contradicts the events. */
        fr__release(t);
}
