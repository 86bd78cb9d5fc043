/* The SIGPROF handler: async-signal-safe code only (no allocation, no lock, no
 * stdio; errno saved). It finds the thread's record from the signal, joins
 * the generation barrier, unwinds the interrupted stack (fr_unwind.c) and
 * writes one sample record into the thread's buffer of the current parity.
 * The setup and the drain are in fr_sample.c; the design is in
 * docs/agent-design.md ("CPU samples", "Unwinding").
 *
 * Joining the generation barrier (seed 004): if the thread's seqlock is even
 * the handler takes it; if it is odd, the signal interrupted this thread
 * inside an event write and the advancer is already waiting for it, so the
 * handler writes under that section. Either way it then loads the generation
 * and writes into samples.buf[gen % 2], which the advancer drains only after
 * it has seen the seqlock even after the generation moved on. */
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "fr_sample.h"
#include "pm_ring.h"
#include "fr_unwind.h"

_Atomic uint64_t fr__handler_hist[2][FR_HT_DEPTHS][FR_HT_BUCKETS];

/* The counter's read and re-arm are raw system calls: the interposed read
 * (our wrapper, which would book it as a wait; a sanitizer's, which models it
 * as an access to the descriptor that races with the advancer's close once
 * the thread is gone) has no business in a handler. */
static ssize_t sys_read(int fd, void *buf, size_t n) { return (ssize_t)syscall(SYS_read, fd, buf, n); }

static void note_time(unsigned which, uint64_t ticks, uint32_t frames) {
        unsigned d = frames <= 4 ? 0 : frames <= 8 ? 1 : frames <= 16 ? 2 : frames <= 32 ? 3 : frames <= 64 ? 4 : 5;
        unsigned b = 0;
        if (ticks >= 4) {
                unsigned l = 63u - (unsigned)__builtin_clzll(ticks);
                b = 4 * (l - 1) + (unsigned)((ticks >> (l - 2)) & 3);
        } else {
                b = (unsigned)ticks;
        }
        if (b >= FR_HT_BUCKETS)
                b = FR_HT_BUCKETS - 1;
        atomic_fetch_add_explicit(&fr__handler_hist[which][d][b], 1, memory_order_relaxed);
}

static inline uint8_t *put_u64le(uint8_t *p, uint64_t v) {
        memcpy(p, &v, 8);
        return p + 8;
}

/* unwind - the interrupted pc and its callers, inside the thread's stack
 * (and the alternate signal stack). A thread whose stack bounds are not
 * known yet (found in /proc, never run our code) is walked on the alternate
 * stack only, so its samples are leaf-only unless the application's handler
 * was running there; where the walk stopped is the thread's own stack
 * pointer (past that handler's signal frame), which the advancer then looks
 * up in /proc/self/maps. */
static uint32_t unwind(struct fr_thread *t, const ucontext_t *uc, uint64_t *pcs, uint32_t max) {
        if (max == 0)
                return 0;
        uintptr_t lo = atomic_load_explicit(&t->samples.stack_lo, memory_order_relaxed);
        uintptr_t hi = atomic_load_explicit(&t->samples.stack_hi, memory_order_acquire);
        struct fr_uw_bounds b = {.lo = {lo}, .hi = {hi}, .n = hi != 0};
        struct fr_uw_result res;
        uint64_t t0 = fr__now();
        uint32_t n = fr__unwind_ucontext(uc, &b, pcs, max, &res);
        note_time(FR_HT_UNWIND, fr__now() - t0, n);
        fr__unwind_count_stop(res.stop); /* its frames are counted too: the mean depth */
        if (hi == 0) {
                /* Not a stack pointer on an alternate stack: that mapping is
                 * not the thread's stack. */
                uintptr_t alt = (uintptr_t)uc->uc_stack.ss_sp;
                bool on_alt = !(uc->uc_stack.ss_flags & SS_DISABLE) &&
                              res.sp - alt < uc->uc_stack.ss_size;
                if (!on_alt && atomic_load_explicit(&t->samples.first_sp, memory_order_relaxed) == 0) {
                        atomic_store_explicit(&t->samples.first_sp, res.sp, memory_order_relaxed);
                        atomic_store_explicit(&fr__sp.bounds_wanted, true, memory_order_relaxed);
                }
        }
        return n;
}

static uint32_t record_sample(struct fr_thread *t, uint64_t g, const ucontext_t *uc, uint64_t weight) {
        uint64_t pcs[FR_MAX_STACK_FRAMES];
        uint32_t n = 0;
        struct fr_hook *h = atomic_load_explicit(&fr__traceback, memory_order_acquire);
        if (h)
                n = (uint32_t)h->fn(uc, (uintptr_t *)pcs, FR_MAX_STACK_FRAMES / 2, h->arg);
        if (n > FR_MAX_STACK_FRAMES / 2)
                n = FR_MAX_STACK_FRAMES / 2;
        n += unwind(t, uc, pcs + n, FR_MAX_STACK_FRAMES - n);
        if (n == 0)
                return 0;

        /* Attribution: the innermost open region and its task. The region
         * stack may be mid-update under us (same thread); any entry read is
         * a valid name id or 0. */
        uint32_t depth = t->depth < FR_MAX_REGION_DEPTH ? t->depth : FR_MAX_REGION_DEPTH;
        uint64_t task = 0, region = 0;
        if (depth) {
                task = t->regions[depth - 1].task;
                region = t->regions[depth - 1].name;
        }

        unsigned p = g & 1;
        struct fr_samples *s = &t->samples;
        size_t need = 8 + 4 * FR_VARINT_MAX + (size_t)n * FR_VARINT_MAX;
        if (s->cap - s->pos[p] < need) {
                s->lost[p]++;
                return n;
        }
        uint8_t *start = s->mem + (size_t)p * s->cap + s->pos[p];
        uint8_t *q = put_u64le(start, fr__now());
        q = fr_put_uvarint(q, weight);
        q = fr_put_uvarint(q, task);
        q = fr_put_uvarint(q, region);
        q = fr_put_uvarint(q, n);
        q = fr_put_uvarint(q, pcs[0]);
        for (uint32_t i = 1; i < n; i++)
                q = fr_put_uvarint(q, fr_zigzag((int64_t)(pcs[i] - pcs[i - 1])));
        s->pos[p] += (uint32_t)(q - start);
        return n;
}

static void chain(int sig, siginfo_t *si, void *uc) {
        const struct sigaction *a =
                &fr__sp.previous[atomic_load_explicit(&fr__sp.prev_slot, memory_order_acquire)];
        if (a->sa_flags & SA_SIGINFO) {
                if (a->sa_sigaction)
                        a->sa_sigaction(sig, si, uc);
        } else if (a->sa_handler != SIG_DFL && a->sa_handler != SIG_IGN) {
                a->sa_handler(sig);
        }
        /* SIG_DFL would terminate the process: a stray SIGPROF is ignored. */
}

void fr__on_sigprof(int sig, siginfo_t *si, void *uc) {
        uint64_t entry = fr__now();
        int saved_errno = errno;
        struct fr_thread *t = NULL;
        uint64_t weight = 1;
        uint32_t frames = 0;
        int fd = -1;
        if ((si->si_code == POLL_HUP || si->si_code == POLL_IN) && si->si_fd >= 0 &&
            (size_t)si->si_fd < fr__sp.nfd) {
                fd = si->si_fd;
                t = atomic_load_explicit(&fr__sp.by_fd[fd], memory_order_acquire);
                if (!t) /* a late signal of a closed sampler, or not ours at all */
                        goto out;
        } else if (si->si_code == SI_TIMER && (si->si_value.sival_int & 0xffff0000) == TIMER_MAGIC) {
                unsigned slot = (unsigned)si->si_value.sival_int & 0xffff;
                t = atomic_load_explicit(&fr__sp.by_timer[slot], memory_order_acquire);
                if (!t)
                        goto out;
                weight += (uint64_t)(si->si_overrun > 0 ? si->si_overrun : 0);
        } else {
                chain(sig, si, uc);
                goto out;
        }
        if (fr__my_tid == 0)
                fr__my_tid = (pid_t)syscall(SYS_gettid);
        if (t->tid != fr__my_tid)
                goto out;
        if (!fr__altstack_room(t, uc, FR_SIGPROF_STACK_NEED))
                goto out; /* on the thread's own stack: no unwinding there */
        if (fd >= 0) {
                /* The event's count is the thread's CPU time in ns. An
                 * overflow that came while the thread was in the kernel was
                 * not delivered (user-only sampling): weigh this sample by
                 * the periods elapsed since the last one, so time is never
                 * under-counted. */
                uint64_t count;
                if (sys_read(fd, &count, sizeof count) == (ssize_t)sizeof count &&
                    count > t->samples.perf_count) {
                        uint64_t periods = (count - t->samples.perf_count) / fr__sp.period_ns;
                        if (periods > 1)
                                weight = periods;
                        t->samples.perf_count += weight * fr__sp.period_ns;
                }
        }

        uint64_t s = atomic_load_explicit(&t->seq, memory_order_relaxed);
        bool take = !(s & 1);
        if (take) {
                /* Same Dekker pairing as fr__acquire: the advancer's membarrier
                 * orders this store before our load of the generation. */
                atomic_store_explicit(&t->seq, s + 1, memory_order_relaxed);
                atomic_signal_fence(memory_order_seq_cst);
        }
        uint64_t g = atomic_load_explicit(&fr__gen,
                                          atomic_load_explicit(&fr__asymmetric, memory_order_relaxed)
                                                  ? memory_order_acquire
                                                  : memory_order_seq_cst);
        if (g) { /* 0: not recording (yet, or any more) */
                atomic_fetch_add_explicit(&t->samples.taken, 1, memory_order_relaxed);
                frames = record_sample(t, g, uc, weight);
        }
        if (take)
                atomic_store_explicit(&t->seq, s + 2, memory_order_release);
out:
        if (fd >= 0)
                (void)syscall(SYS_ioctl, fd, PERF_EVENT_IOC_REFRESH, 1);
        if (frames)
                note_time(FR_HT_HANDLER, fr__now() - entry, frames);
        errno = saved_errno;
}

/* fr__samples_salvage - the crash handler's: copy every thread's samples of
 * generation gen into the ring, where the daemon finds them after the death
 * (pm_ring.h struct fr_pm_csample). Async-signal-safe; the registry list is
 * read without its lock (records are freed only after their thread exited). */
void fr__samples_salvage(uint64_t gen) {
        size_t cap;
        uint8_t *area = fr__pm_csamples(&cap), *q = area;
        if (!area || gen == 0)
                return;
        unsigned p = gen & 1;
        for (struct fr_thread *t = fr__threads_head(); t; t = t->next) {
                struct fr_samples *s = &t->samples;
                uint32_t len = s->mem ? s->pos[p] : 0;
                if (len == 0 || len > s->cap)
                        continue;
                size_t need = sizeof(struct fr_pm_csample) + ((len + 7u) & ~7u);
                if ((size_t)(q - area) + need + sizeof(struct fr_pm_csample) > cap)
                        break;
                struct fr_pm_csample h = {(uint32_t)t->tid, len, gen};
                memcpy(q + sizeof h, s->mem + (size_t)p * s->cap, len);
                memcpy(q, &h, sizeof h);
                q += need;
        }
        memset(q, 0, sizeof(struct fr_pm_csample)); /* the end */
}
