/* The advancer thread: every period it moves the generation on and turns the
 * generation just finished into packed trace bytes in the ring.
 *
 * Protocol (docs/agent-design.md): store gen+1; for every registered thread,
 * wait until its seqlock is seen even (or changed) once, which proves no write
 * into the old generation is still in progress; then take that thread's blocks
 * of the old parity. The advancer replays the events it packs to keep each
 * thread's state (alive, name, open regions) and the open tasks, so that the
 * next generation's STATUS batch says exactly what was open at its start.
 *
 * Layout of a generation: CLOCK, STATUS, the EVENTS batches thread by thread
 * (each thread's batches in the order written), STRINGS, END. */
#include <errno.h>
#include <signal.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fr_internal.h"
#include "fr_unwind.h"
#include "fr_tasks.h"

_Atomic uint64_t fr__gen __attribute__((aligned(FR_CACHELINE)));
_Atomic bool fr__asymmetric;

static void asymmetric_init(void) {
        /* Registration makes later MEMBARRIER_CMD_PRIVATE_EXPEDITED calls cheap
         * (IPIs to the CPUs running our threads only). */
        atomic_store_explicit(&fr__asymmetric,
                              syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0,
                              memory_order_relaxed);
}

void fr__fence_all_threads(void) {
        if (!atomic_load_explicit(&fr__asymmetric, memory_order_relaxed) ||
            syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
                atomic_thread_fence(memory_order_seq_cst);
}

static struct {
        pthread_t thread;
        bool started;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool stop;
        uint64_t requested, served; /* forced advances */
        struct fr_clock_anchor gen_start; /* start of the current generation */
        struct fr_task_table tasks;
        uint64_t lost_generations; /* dropped whole: pool exhausted */
        uint64_t lost[FR_LOST_KIND_MAX + 1]; /* totals of the LOST events replayed */
        uint64_t generations;      /* completed */
        uint64_t samples;          /* drained into generations */
        struct fr_stack_table *stacks; /* reused from generation to generation */
        struct fr_stats published;     /* the counters, copied under lock after each advance */
        bool poked;                    /* rescan threads now (fr__advancer_poke) */
        uint64_t age_cuts_noted;       /* fr__ring_age_cuts already noted in the trace */
        char age_note[160];            /* a note for the next generation, "" none */
} adv = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The period is measured on CLOCK_MONOTONIC: wall-clock steps do not move it. */
static void init_cond(void) {
        pthread_condattr_t a;
        pthread_condattr_init(&a);
        pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
        pthread_cond_init(&adv.cond, &a);
        pthread_condattr_destroy(&a);
}

static void publish_stats(void);

/* ---- packed generation bytes ---------------------------------------------- */

/* gen_link - append block b, whose trace bytes are [out_start, pos), to g. */
static void gen_link(struct fr_genbytes *g, struct fr_block *b) {
        b->next = NULL;
        if (g->tail)
                g->tail->next = b;
        else
                g->head = b;
        g->tail = b;
        g->bytes += b->pos - b->out_start;
        g->mem += FR_BLOCK_SIZE;
}

/* gen_append - copy n bytes to the end of g, filling its last block if that
 * one holds copied bytes. Returns 0 or -ENOMEM. */
static int gen_append(struct fr_genbytes *g, const uint8_t *p, size_t n) {
        while (n) {
                struct fr_block *b = g->tail;
                if (!b || b->out_start != b->data_start || b->pos == FR_BLOCK_SIZE) {
                        b = fr__pool_get_reserve();
                        if (!b)
                                return -ENOMEM;
                        gen_link(g, b);
                }
                size_t room = FR_BLOCK_SIZE - b->pos;
                size_t k = n < room ? n : room;
                memcpy((uint8_t *)b + b->pos, p, k);
                b->pos += (uint32_t)k;
                g->bytes += k;
                p += k;
                n -= k;
        }
        return 0;
}

/* ---- replaying a thread's events ----------------------------------------- */

/* Replay one batch written by the agent itself into t's shadow state and the
 * task table; returns the time of its last event. */
static uint64_t replay(struct fr_thread *t, const uint8_t *p, const uint8_t *end, uint64_t time) {
        uint64_t a[3];
        while (p && p < end) {
                uint8_t type = *p++;
                uint64_t delta;
                p = fr_get_uvarint(p, end, &delta);
                if (!p)
                        break;
                time += delta;
                static const uint8_t nargs[FR_EV_TYPE_MAX + 1] = {
                        [FR_EV_TASK_BEGIN] = 3, [FR_EV_TASK_END] = 1, [FR_EV_REGION_BEGIN] = 2,
                        [FR_EV_REGION_END] = 2, [FR_EV_LOG] = 3,      [FR_EV_THREAD_NAME] = 1,
                        [FR_EV_LOST] = 2,
                };
                if (type == 0 || type > FR_EV_TYPE_MAX)
                        break;
                if (type == FR_EV_BLOCK) { /* five arguments, the frame count, the frames */
                        uint64_t v, n = 0;
                        for (unsigned i = 0; i < 6 && p; i++)
                                p = fr_get_uvarint(p, end, i == 5 ? &n : &v);
                        for (uint64_t i = 0; i < n && p; i++)
                                p = fr_get_uvarint(p, end, &v);
                        continue;
                }
                for (unsigned i = 0; i < nargs[type] && p; i++)
                        p = fr_get_uvarint(p, end, &a[i]);
                if (!p)
                        break;
                switch (type) {
                case FR_EV_TASK_BEGIN:
                        fr_task_table_add(&adv.tasks, a[0], a[1], (uint32_t)a[2]);
                        break;
                case FR_EV_TASK_END:
                        fr_task_table_remove(&adv.tasks, a[0]);
                        break;
                case FR_EV_REGION_BEGIN:
                        if (t->shadow_depth < FR_MAX_REGION_DEPTH)
                                t->shadow_regions[t->shadow_depth++] =
                                        (struct fr_region){a[0], (uint32_t)a[1]};
                        break;
                case FR_EV_REGION_END:
                        if (t->shadow_depth)
                                t->shadow_depth--;
                        break;
                case FR_EV_LOG:
                        p = (uint64_t)(end - p) >= a[2] ? p + a[2] : NULL;
                        break;
                case FR_EV_THREAD_NAME:
                        t->shadow_name = (uint32_t)a[0];
                        break;
                case FR_EV_LOST:
                        if (a[0] <= FR_LOST_KIND_MAX)
                                adv.lost[a[0]] += a[1];
                        break;
                case FR_EV_THREAD_START:
                        t->shadow_alive = true;
                        t->shadow_depth = 0;
                        t->shadow_name = 0;
                        break;
                case FR_EV_THREAD_EXIT:
                        t->shadow_alive = false;
                        t->shadow_depth = 0;
                        break;
                }
        }
        return time;
}

/* ---- building a generation ------------------------------------------------ */

static void put_status(struct fr_buf *b, struct fr_thread *head, uint64_t gen) {
        size_t n = 0;
        for (struct fr_thread *t = head; t; t = t->next)
                n += t->shadow_alive;
        fr_buf_put_uvarint(b, n);
        for (struct fr_thread *t = head; t; t = t->next) {
                if (!t->shadow_alive)
                        continue;
                fr_buf_put_uvarint(b, (uint64_t)t->tid);
                fr_buf_put_uvarint(b, t->shadow_name);
                if (t->shadow_name)
                        fr__name_mark(t->shadow_name, gen);
                fr_buf_put_uvarint(b, t->shadow_depth);
                for (uint32_t i = 0; i < t->shadow_depth; i++) {
                        fr_buf_put_uvarint(b, t->shadow_regions[i].task);
                        fr_buf_put_uvarint(b, t->shadow_regions[i].name);
                        fr__name_mark(t->shadow_regions[i].name, gen);
                }
        }
        fr_buf_put_uvarint(b, adv.tasks.count);
        for (size_t i = 0; i < adv.tasks.nslots; i++) {
                struct fr_task_entry *e = &adv.tasks.slots[i];
                if (!e->id)
                        continue;
                fr_buf_put_uvarint(b, e->id);
                fr_buf_put_uvarint(b, e->parent);
                fr_buf_put_uvarint(b, e->name);
                if (e->name)
                        fr__name_mark(e->name, gen);
        }
}

/* Add one thread's blocks of generation gen to g as EVENTS batches (NULL: the
 * generation is being dropped), replaying them either way. Blocks more than
 * half full move into the generation as they are; the rest are copied, so
 * that idle threads do not pin a whole block each per generation. */
static int pack_thread(struct fr_genbytes *g, struct fr_thread *t, uint64_t gen, size_t *nbatches,
                       uint64_t *max_time, uint64_t *ret_last) {
        unsigned p = gen & 1;
        struct fr_block *chain = t->full_head[p];
        if (t->buf[p]) {
                if (t->full_tail[p])
                        t->full_tail[p]->next = t->buf[p];
                else
                        chain = t->buf[p];
        }
        t->full_head[p] = t->full_tail[p] = NULL;
        t->buf[p] = NULL;
        int r = 0;
        while (chain) {
                struct fr_block *b = chain;
                chain = b->next;
                uint8_t *data = (uint8_t *)b + b->data_start;
                size_t size = b->pos - b->data_start;
                if (size == 0) {
                        b->next = NULL;
                        fr__pool_put_chain(b);
                        continue;
                }
                uint8_t *hdr = fr_encode_batch_header(data, FR_BATCH_EVENTS, gen, (uint64_t)t->tid,
                                                      b->base_time, size);
                uint64_t last = replay(t, data, data + size, b->base_time);
                if (last > *max_time)
                        *max_time = last;
                if (last > *ret_last)
                        *ret_last = last;
                (*nbatches)++;
                if (g && r == 0 && size > (FR_BLOCK_SIZE - b->data_start) / 2) {
                        b->out_start = (uint32_t)(hdr - (uint8_t *)b);
                        gen_link(g, b);
                        continue;
                }
                if (g && r == 0)
                        r = gen_append(g, hdr, (size_t)(data + size - hdr));
                b->next = NULL;
                fr__pool_put_chain(b);
        }
        return r;
}

/* put_advancer_events - events the advancer writes for thread t (ev, from
 * `time` on) as an EVENTS batch of their own, replayed like the thread's own;
 * frees ev. g NULL: the generation is being dropped, only replay. */
static int put_advancer_events(struct fr_genbytes *g, struct fr_thread *t, uint64_t gen,
                               uint64_t time, struct fr_buf *ev, size_t *nbatches,
                               uint64_t *max_time) {
        struct fr_buf b = {0};
        int r = ev->failed ? -ENOMEM : 0;
        if (r == 0) {
                uint64_t last = replay(t, ev->data, ev->data + ev->len, time);
                if (last > *max_time)
                        *max_time = last;
                fr_buf_put_batch(&b, FR_BATCH_EVENTS, gen, (uint64_t)t->tid, time, ev->data, ev->len);
                (*nbatches)++;
                r = b.failed ? -ENOMEM : g ? gen_append(g, b.data, b.len) : 0;
        }
        fr_buf_free(ev);
        fr_buf_free(&b);
        return r;
}

/* The THREAD_START (and name) or THREAD_EXIT an adopted thread cannot write
 * itself (fr_sample.c), as an EVENTS batch of its own; replayed like the
 * thread's own. before: the start, which goes before the thread's batches. */
static int put_synthetic(struct fr_genbytes *g, struct fr_thread *t, uint64_t gen, bool before,
                         size_t *nbatches, uint64_t *max_time) {
        struct fr_buf ev = {0};
        uint64_t time;
        if (before) {
                if (t->found_gen != gen)
                        return 0;
                time = t->found_time;
                fr_buf_put_u8(&ev, FR_EV_THREAD_START);
                fr_buf_put_uvarint(&ev, 0);
                fr_buf_put_u8(&ev, FR_EV_THREAD_NAME);
                fr_buf_put_uvarint(&ev, 1); /* times strictly increase per thread */
                fr_buf_put_uvarint(&ev, t->found_name);
                fr__name_mark(t->found_name, gen);
        } else {
                if (t->gone_gen != gen || !t->shadow_alive)
                        return 0;
                time = t->gone_time;
                fr_buf_put_u8(&ev, FR_EV_THREAD_EXIT);
                fr_buf_put_uvarint(&ev, 0);
        }
        return put_advancer_events(g, t, gen, time, &ev, nbatches, max_time);
}

/* put_lost - the thread's events and region ends lost in generation gen
 * (pool dry, regions too deep or unmatched), as a LOST batch after its last
 * event. A thread that exited in gen wrote its own before the exit. */
static int put_lost(struct fr_genbytes *g, struct fr_thread *t, uint64_t gen, uint64_t last,
                    const char *extra, size_t *nbatches, uint64_t *max_time) {
        unsigned p = gen & 1;
        uint64_t counts[2] = {t->lost_events[p], t->lost_regions[p]};
        static const uint8_t kinds[2] = {FR_LOST_EVENTS, FR_LOST_REGIONS};
        t->lost_events[p] = t->lost_regions[p] = 0;
        /* What became of its sampler (fr_sample.c): LOG events of category
         * "flightrec" on its timeline. */
        uint32_t notes = t->shadow_alive ? atomic_exchange(&t->samples.note, 0) : 0;
        if ((!counts[0] && !counts[1] && !notes && !extra) || !t->shadow_alive) {
                adv.lost[FR_LOST_EVENTS] += t->shadow_alive ? 0 : counts[0];
                adv.lost[FR_LOST_REGIONS] += t->shadow_alive ? 0 : counts[1];
                return 0;
        }
        uint64_t time = last + 1; /* strictly after the thread's last event */
        if (t->found_gen == gen && time <= t->found_time + 1)
                time = t->found_time + 2; /* after the synthetic start and name */
        struct fr_buf ev = {0};
        int n = 0;
        for (int k = 0; k < 2; k++) {
                if (!counts[k])
                        continue;
                fr_buf_put_u8(&ev, FR_EV_LOST);
                fr_buf_put_uvarint(&ev, n++ ? 1 : 0); /* time delta: strictly increasing */
                fr_buf_put_uvarint(&ev, kinds[k]);
                fr_buf_put_uvarint(&ev, counts[k]);
        }
        for (uint32_t bit = 1; notes || extra; bit <<= 1) {
                char msg[160];
                int len;
                if (extra && !notes) { /* the ring's note, last (retention by age) */
                        len = snprintf(msg, sizeof msg, "%s", extra);
                        extra = NULL;
                } else {
                        if (!(notes & bit))
                                continue;
                        notes &= ~bit;
                        len = fr__sampler_note_text(t, bit, msg, sizeof msg);
                }
                if (len <= 0 || (size_t)len >= sizeof msg)
                        continue;
                uint32_t cat = fr__name_intern("flightrec");
                if (!cat)
                        continue;
                fr__name_mark(cat, gen);
                fr_buf_put_u8(&ev, FR_EV_LOG);
                fr_buf_put_uvarint(&ev, n++ ? 1 : 0);
                fr_buf_put_uvarint(&ev, 0); /* task */
                fr_buf_put_uvarint(&ev, cat);
                fr_buf_put_string(&ev, msg, (size_t)len);
        }
        if (n == 0) {
                fr_buf_free(&ev);
                return 0;
        }
        return put_advancer_events(g, t, gen, time, &ev, nbatches, max_time);
}

/* publish_live - the prologue of generation gen, now in progress: its CLOCK,
 * its STATUS (the state the advancer reached at the end of the previous
 * generation), MAPS and every name. With the thread's event blocks (tagged
 * with gen and tid) and the samples the crash handler copies, the daemon
 * makes a partial generation of it if the process dies (proto/pm_ring.h). */
static void publish_live(uint64_t gen) {
        struct fr_genbytes *p = calloc(1, sizeof *p);
        if (!p)
                return;
        struct fr_buf meta = {0}, batches = {0};
        size_t nb = 0;
        const struct fr_clock_anchor *a = &adv.gen_start;
        fr_buf_put_uvarint(&meta, fr__clock_ticks_per_second());
        fr_buf_put_uvarint(&meta, a->mono_ns);
        fr_buf_put_uvarint(&meta, a->real_ns);
        fr_buf_put_uvarint(&meta, fr__sampler_kind());
        fr_buf_put_uvarint(&meta, fr__sampler_kind() ? fr__cfg.hz : 0);
        fr_buf_put_batch(&batches, FR_BATCH_CLOCK, gen, 0, a->tick, meta.data, meta.len);
        meta.len = 0;
        fr__threads_lock();
        struct fr_thread *head = fr__threads_head();
        fr__threads_unlock();
        put_status(&meta, head, gen);
        fr_buf_put_batch(&batches, FR_BATCH_STATUS, gen, 0, a->tick, meta.data, meta.len);
        fr__maps_emit(gen, &batches, &nb);
        fr__names_emit_all(gen, &batches, &nb, 1u << 20);
        int r = batches.failed || meta.failed ? -ENOMEM : gen_append(p, batches.data, batches.len);
        fr_buf_free(&batches);
        fr_buf_free(&meta);
        if (r < 0) {
                fr__genbytes_free(p);
                return;
        }
        p->gen = gen;
        p->start = a->tick;
        fr__ring_set_live(p);
}

/* One advance in progress: the generation being closed and what is packed. */
struct packing {
        uint64_t old;                      /* the generation being closed */
        struct fr_clock_anchor start, next;
        struct fr_thread *head;            /* the threads as of the switch */
        struct fr_genbytes *g;             /* NULL: out of memory */
        struct fr_buf batches, meta;
        size_t nb;                         /* batches packed */
        uint64_t max_time;
        uint64_t tps;                      /* ticks per second, as in its CLOCK */
        int r;                             /* the first error: the generation is dropped */
        struct fr_buf blocked;             /* the BLOCKED batch, taken at the switch */
        size_t nblocked;
};

/* Step 1: new records go to generation old + 1; wait for the writers still
 * inside a record of the old one. */
static void switch_generation(struct packing *p) {
        p->old = atomic_load(&fr__gen);
        p->start = adv.gen_start;
        fr__clock_anchor(&p->next);
        atomic_store(&fr__gen, p->old + 1);
        fr__fence_all_threads();
        adv.gen_start = p->next;
        /* New threads found now are sampled from generation old + 1 on. */
        fr__sampler_rescan(p->old + 1);
        fr__unwind_update(); /* objects loaded, unloaded or sampled without a table */

        /* Threads registered after this point write into the new generation. */
        fr__threads_lock();
        p->head = fr__threads_head();
        fr__threads_unlock();
        for (struct fr_thread *t = p->head; t; t = t->next) {
                uint64_t s = atomic_load(&t->seq);
                for (unsigned spins = 0; (s & 1) && atomic_load(&t->seq) == s; spins++) {
                        if (spins < 64)
                                sched_yield();
                        else
                                nanosleep(&(struct timespec){0, 20000}, NULL);
                }
        }
}

/* Step 2: the generation's buffers, then its CLOCK and STATUS batches. */
static void pack_head(struct packing *p) {
        if (!adv.stacks)
                adv.stacks = fr__stacks_new();
        if (adv.stacks)
                fr__stacks_begin(adv.stacks, p->old);
        /* Threads still blocked at this boundary, seen as close to it as
         * possible: listed at the end of the generation that ends here. */
        fr__blocked_emit(p->head, p->old, p->next.tick, p->next.mono_ns, 0, adv.stacks,
                         &p->blocked, &p->nblocked);
        p->g = adv.stacks ? calloc(1, sizeof *p->g) : NULL;
        p->max_time = p->next.tick;
        p->r = p->g ? 0 : -ENOMEM;

        struct fr_buf *meta = &p->meta;
        p->tps = fr__clock_ticks_per_second();
        fr_buf_put_uvarint(meta, p->tps);
        fr_buf_put_uvarint(meta, p->start.mono_ns);
        fr_buf_put_uvarint(meta, p->start.real_ns);
        fr_buf_put_uvarint(meta, fr__sampler_kind());
        fr_buf_put_uvarint(meta, fr__sampler_kind() ? fr__cfg.hz : 0);
        fr_buf_put_uvarint(meta, fr__sampler_kind() ? fr__unwind_mode : FR_UNWIND_FP);
        fr_buf_put_batch(&p->batches, FR_BATCH_CLOCK, p->old, 0, p->start.tick, meta->data,
                         meta->len);
        meta->len = 0;
        put_status(meta, p->head, p->old);
        fr_buf_put_batch(&p->batches, FR_BATCH_STATUS, p->old, 0, p->start.tick, meta->data,
                         meta->len);
        p->nb += 2;
        if (p->r == 0 && !p->batches.failed)
                p->r = gen_append(p->g, p->batches.data, p->batches.len);
        p->batches.len = 0;
}

/* Step 3, one thread: its events (between the adopted thread's synthetic
 * start and exit), then its samples. After a failure the steps still run
 * with no generation, so that the thread's buffers are consumed. */
static void pack_one_thread(struct packing *p, struct fr_thread *t, const char *extra) {
        uint64_t old = p->old;
        int rt = put_synthetic(p->r == 0 ? p->g : NULL, t, old, true, &p->nb, &p->max_time);
        if (p->r == 0)
                p->r = rt;
        uint64_t last = p->start.tick;
        rt = pack_thread(p->r == 0 ? p->g : NULL, t, old, &p->nb, &p->max_time, &last);
        if (p->r == 0)
                p->r = rt;
        rt = put_lost(p->r == 0 ? p->g : NULL, t, old, last, extra, &p->nb, &p->max_time);
        if (p->r == 0)
                p->r = rt;
        rt = put_synthetic(p->r == 0 ? p->g : NULL, t, old, false, &p->nb, &p->max_time);
        if (p->r == 0)
                p->r = rt;
        last = fr__samples_drain(t, old, p->start.tick, adv.stacks, &p->batches, &p->nb,
                                 &adv.lost[FR_LOST_SAMPLES], &adv.samples);
        if (last > p->max_time)
                p->max_time = last;
        if (p->r == 0 && p->batches.len > FR_BLOCK_SIZE)
                p->r = p->batches.failed ? -ENOMEM : gen_append(p->g, p->batches.data, p->batches.len);
        if (p->batches.len > FR_BLOCK_SIZE)
                p->batches.len = 0;
}

/* Step 3: every thread, oldest record first: when a thread id was reused
 * within the generation, the old thread's exit must come before the new
 * one's start. */
static void pack_threads(struct packing *p) {
        size_t nthreads = 0;
        for (struct fr_thread *t = p->head; t; t = t->next)
                nthreads++;
        struct fr_thread **order = malloc((nthreads + 1) * sizeof *order);
        if (!order)
                p->r = -ENOMEM; /* the generation is dropped (counted), its buffers freed */
        else
                for (struct fr_thread *t = p->head, **o = order + nthreads; t; t = t->next)
                        *--o = t;
        for (size_t k = 0; k < nthreads; k++) {
                struct fr_thread *t = order ? order[k] : NULL;
                if (!t) { /* no memory for the order: walk the list as it is */
                        t = p->head;
                        for (size_t i = 0; i < k; i++)
                                t = t->next;
                }
                /* The ring's note goes on the first live thread's timeline. */
                char note[sizeof adv.age_note];
                const char *extra = NULL;
                if (adv.age_note[0] && t->shadow_alive) {
                        extra = strcpy(note, adv.age_note);
                        adv.age_note[0] = '\0';
                }
                pack_one_thread(p, t, extra);
        }
        free(order);
}

/* Step 4: the stacks, maps and names the generation refers to, and END. */
static void pack_tail(struct packing *p) {
        if (p->blocked.failed && p->r == 0)
                p->r = -ENOMEM;
        fr_buf_put_bytes(&p->batches, p->blocked.data, p->blocked.len);
        p->nb += p->nblocked;
        fr_buf_free(&p->blocked);
        fr__stacks_emit(adv.stacks, &p->batches, &p->nb);
        fr__maps_emit(p->old, &p->batches, &p->nb);
        fr__names_emit(p->old, &p->batches, &p->nb);
        p->meta.len = 0;
        fr_buf_put_uvarint(&p->meta, p->nb);
        fr_buf_put_batch(&p->batches, FR_BATCH_END, p->old, 0, p->max_time, p->meta.data,
                         p->meta.len);
        if (p->r == 0)
                p->r = p->batches.failed || p->meta.failed
                               ? -ENOMEM
                               : gen_append(p->g, p->batches.data, p->batches.len);
        fr_buf_free(&p->batches);
        fr_buf_free(&p->meta);
}

/* note_age_cut - after a push where the byte bound kept less than
 * FLIGHTREC_MIN_AGE_MS: a LOG note (category "flightrec") for the next
 * generation, with the count so far. */
static void note_age_cut(uint64_t tps) {
        unsigned kept = 0;
        uint64_t ticks = 0;
        uint64_t cuts = fr__ring_age_cuts(&kept, &ticks);
        if (cuts == adv.age_cuts_noted)
                return;
        adv.age_cuts_noted = cuts;
        uint64_t ms = tps ? (uint64_t)((unsigned __int128)ticks * 1000u / tps) : 0;
        snprintf(adv.age_note, sizeof adv.age_note,
                 "min age cut by max bytes: %u generations (%llu ms) kept of %u ms wanted "
                 "(FLIGHTREC_MAX_BYTES=%zu); %llu cuts so far",
                 kept, (unsigned long long)ms, fr__cfg.min_age_ms, fr__cfg.max_bytes,
                 (unsigned long long)cuts);
}

/* Step 5: the generation into the ring (or dropped, counted), and the
 * threads that ended in it freed. */
static void publish(struct packing *p) {
        if (p->r == 0) {
                p->g->gen = p->old;
                p->g->start = p->start.tick;
                p->g->end = p->max_time;
                fr__ring_push(p->g, p->tps);
                adv.generations++;
                note_age_cut(p->tps);
        } else if (p->g) {
                adv.lost_generations++;
                fr__genbytes_free(p->g);
        }
        fr__threads_lock();
        fr__threads_reap(p->old);
        fr__threads_unlock();
        publish_live(p->old + 1);
}

static void advance(void) {
        struct packing p = {0};
        switch_generation(&p);
        pack_head(&p);
        pack_threads(&p);
        pack_tail(&p);
        publish(&p);
}

/* ---- the thread ------------------------------------------------------------ */

/* slice_before - *t becomes now + ms when that is earlier; true then. */
static bool slice_before(struct timespec *t, unsigned ms) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        uint64_t ns = (uint64_t)now.tv_nsec + (uint64_t)ms * 1000000u;
        now.tv_sec += (time_t)(ns / 1000000000u);
        now.tv_nsec = (long)(ns % 1000000000u);
        if (now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec))
                return false;
        *t = now;
        return true;
}

static void *advancer_main(void *arg) {
        (void)arg;
        pthread_setname_np(pthread_self(), "flightrec");
        publish_live(1);
        pthread_mutex_lock(&adv.lock);
        while (!adv.stop) {
                if (adv.requested == adv.served) {
                        struct timespec until;
                        clock_gettime(CLOCK_MONOTONIC, &until);
                        uint64_t ns = (uint64_t)until.tv_nsec + (uint64_t)fr__cfg.period_ms * 1000000u;
                        until.tv_sec += (time_t)(ns / 1000000000u);
                        until.tv_nsec = (long)(ns % 1000000000u);
                        int r = 0;
                        while (!adv.stop && adv.requested == adv.served && r != ETIMEDOUT) {
                                /* While the unwinder may want a table soon (after
                                 * start or a dlopen), wake every 20 ms to build it
                                 * rather than a period later. */
                                struct timespec slice = until;
                                bool sliced = (fr__unwind_poll() || fr__sampler_bounds_wanted()) &&
                                              slice_before(&slice, 20);
                                if (!adv.poked) /* a poke while advancing is served first */
                                        r = pthread_cond_timedwait(&adv.cond, &adv.lock, &slice);
                                if (sliced && r == ETIMEDOUT) {
                                        r = 0;
                                        pthread_mutex_unlock(&adv.lock);
                                        fr__unwind_update();
                                        fr__sampler_learn_bounds();
                                        pthread_mutex_lock(&adv.lock);
                                }
                                if (adv.poked) {
                                        /* A thread was created behind another
                                         * pthread_create interposer: find it now,
                                         * within the same period. */
                                        adv.poked = false;
                                        pthread_mutex_unlock(&adv.lock);
                                        fr__sampler_rescan(atomic_load(&fr__gen));
                                        pthread_mutex_lock(&adv.lock);
                                }
                        }
                        if (adv.stop)
                                break;
                }
                uint64_t want = adv.requested;
                pthread_mutex_unlock(&adv.lock);
                advance();
                pthread_mutex_lock(&adv.lock);
                publish_stats();
                adv.served = want;
                pthread_cond_broadcast(&adv.cond);
        }
        pthread_mutex_unlock(&adv.lock);
        return NULL;
}

void fr__advancer_poke(void) {
        pthread_mutex_lock(&adv.lock);
        if (adv.started && !adv.stop) {
                adv.poked = true;
                pthread_cond_broadcast(&adv.cond);
        }
        pthread_mutex_unlock(&adv.lock);
}

int fr__advancer_start(void) {
        /* Threads registered in an earlier run of the recorder are alive now. */
        fr__threads_lock();
        for (struct fr_thread *t = fr__threads_head(); t; t = t->next) {
                t->shadow_alive = atomic_load(&t->exit_gen) == 0;
                char name[64];
                fr__thread_comm(t->tid, name, sizeof name);
                t->shadow_name = fr__name_intern(name);
                t->shadow_depth = 0;
        }
        fr__threads_unlock();
        fr__clock_anchor(&adv.gen_start);
        asymmetric_init();
        init_cond();
        adv.stop = false;
        adv.requested = adv.served = 0;
        adv.generations = adv.lost_generations = adv.samples = 0;
        adv.age_cuts_noted = 0;
        adv.age_note[0] = '\0';
        memset(adv.lost, 0, sizeof adv.lost);
        publish_stats();
        atomic_store(&fr__gen, 1);
        int r = -fr__thread_create(&adv.thread, advancer_main, NULL); /* takes no signals */
        if (r == 0)
                adv.started = true;
        else
                atomic_store(&fr__gen, 0);
        return r;
}

void fr__advancer_stop(void) {
        if (!adv.started)
                return;
        pthread_mutex_lock(&adv.lock);
        adv.stop = true;
        pthread_cond_broadcast(&adv.cond);
        pthread_mutex_unlock(&adv.lock);
        pthread_join(adv.thread, NULL);
        adv.started = false;
        /* Close the recording: no writer may be left in any generation. */
        atomic_store(&fr__gen, 0);
        fr__fence_all_threads();
        fr__threads_lock();
        for (struct fr_thread *t = fr__threads_head(); t; t = t->next) {
                uint64_t s = atomic_load(&t->seq);
                while ((s & 1) && atomic_load(&t->seq) == s)
                        sched_yield();
        }
        fr__threads_unlock();
        fr_task_table_free(&adv.tasks);
}

static void publish_stats(void) {
        adv.published = (struct fr_stats){
                .generations = adv.generations,
                .lost_generations = adv.lost_generations,
                .lost_events = adv.lost[FR_LOST_EVENTS],
                .lost_samples = adv.lost[FR_LOST_SAMPLES],
                .lost_regions = adv.lost[FR_LOST_REGIONS],
                .samples = adv.samples,
                .sampler = fr__sampler_kind(),
                .hz = fr__sampler_kind() ? fr__cfg.hz : 0,
        };
        fr__sampler_fill_stats(&adv.published);
        fr__blocked_stats(&adv.published.blocked_walk_ns, &adv.published.blocked_walked);
}

void fr__advancer_stats(struct fr_stats *ret) {
        pthread_mutex_lock(&adv.lock);
        *ret = adv.published;
        pthread_mutex_unlock(&adv.lock);
}

int fr__advance_now(void) {
        pthread_mutex_lock(&adv.lock);
        if (!adv.started || adv.stop) {
                pthread_mutex_unlock(&adv.lock);
                return -EINVAL;
        }
        uint64_t mine = ++adv.requested;
        pthread_cond_broadcast(&adv.cond);
        while (adv.served < mine && !adv.stop)
                pthread_cond_wait(&adv.cond, &adv.lock);
        int r = adv.served >= mine ? 0 : -ECANCELED;
        pthread_mutex_unlock(&adv.lock);
        return r;
}

/* After fork, in the child: the advancer thread does not exist there. */
void fr__advancer_forget(void) {
        adv.started = false;
        adv.stop = false;
        pthread_mutex_init(&adv.lock, NULL);
        adv.tasks = (struct fr_task_table){0}; /* the parent's table leaks once */
        atomic_store(&fr__gen, 0);
}
