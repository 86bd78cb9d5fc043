/* Threads blocked at a generation's end: the advancer's BLOCKED batch.
 *
 * At every boundary the advancer looks at each thread's wait record
 * (struct fr_wait, written by the wrappers of fr_wait.c). A thread inside a
 * wrapped call for at least FLIGHTREC_BLOCK_MS is listed with what it waits
 * on, for how long, the holder of the mutex when glibc names it, and its
 * stack, unwound from the registers saved at the call while the thread
 * sleeps. No signal is sent: a signal would make epoll_wait, poll or
 * nanosleep fail with EINTR even under SA_RESTART.
 *
 * The other thread's stack is read through process_vm_readv by the
 * sampler's unwinder (FR_UW_REMOTE): a thread that wakes up and exits cannot
 * make the walk fault. The wait's seq
 * is read before and after (seqlock): a thread that woke up during the walk
 * is dropped rather than listed with a torn stack (its wait, when long,
 * ends as a BLOCK event anyway). */
#include <stddef.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "fr_internal.h"
#include "fr_unwind.h"

static struct {
        uint64_t ns, threads;
} bl;

static uint64_t mono_now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* copy_in - n bytes of this process at src into dst, without faulting.
 * Returns the bytes copied (it stops at the first unreadable page). */
static size_t copy_in(void *dst, uintptr_t src, size_t n) {
        struct iovec local = {dst, n}, remote = {(void *)src, n};
        ssize_t got = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
        return got > 0 ? (size_t)got : 0;
}

uint32_t fr__wait_stack(struct fr_thread *t, unsigned call, uintptr_t pc, uintptr_t sp,
                        uintptr_t fp, bool stack_copy, uint64_t *pcs, uint32_t max) {
        uint32_t n = 0;
        uintptr_t leaf = fr__wait_leaf(call);
        if (max < 2 || !leaf)
                return 0;
        pcs[n++] = leaf;
        if (pc < 4096)
                return n;
        pcs[n++] = pc;
        uintptr_t lo = atomic_load_explicit(&t->samples.stack_lo, memory_order_relaxed);
        uintptr_t hi = atomic_load_explicit(&t->samples.stack_hi, memory_order_acquire);
        if (!hi || sp < lo || sp >= hi)
                return n; /* bounds unknown, or another stack: the call and its caller */
        /* The caller's registers just after the call: the sampler's unwinder
         * (.eh_frame, frame pointers where no table covers the code) goes on
         * from there. Another thread's stack is read through
         * process_vm_readv (FR_UW_REMOTE): a thread that wakes up and exits
         * cannot make the walk fault. */
        struct fr_uw_regs r = {.pc = pc, .sp = sp, .fp = fp};
        struct fr_uw_bounds b = {.lo = {sp}, .hi = {hi}, .n = 1};
        return n - 1 + fr__unwind_regs(&r, &b, stack_copy ? FR_UW_REMOTE : 0, pcs + n - 1, max - (n - 1), NULL);
}

/* holder - the tid glibc keeps as the owner of a mutex (or the writer of
 * an rwlock) the thread waits on; 0 when unknown. */
static uint64_t holder(unsigned call, uint64_t object) {
        int owner = 0;
        size_t off;
        switch (call) {
        case FR_WAIT_MUTEX_LOCK:
        case FR_WAIT_MUTEX_TIMEDLOCK:
                off = offsetof(pthread_mutex_t, __data.__owner);
                break;
        case FR_WAIT_RWLOCK_RDLOCK:
        case FR_WAIT_RWLOCK_WRLOCK:
        case FR_WAIT_RWLOCK_TIMEDRDLOCK:
        case FR_WAIT_RWLOCK_TIMEDWRLOCK:
                off = offsetof(pthread_rwlock_t, __data.__cur_writer);
                break;
        default:
                return 0;
        }
        if (copy_in(&owner, (uintptr_t)object + off, sizeof owner) != sizeof owner || owner <= 0)
                return 0;
        return (uint64_t)owner;
}

void fr__blocked_emit(struct fr_thread *head, uint64_t gen, uint64_t tick, uint64_t mono_ns,
                      uint64_t ticks_per_second, struct fr_stack_table *st, struct fr_buf *out,
                      size_t *nbatches) {
        (void)ticks_per_second;
        uint64_t min = atomic_load_explicit(&fr__wait_ns, memory_order_relaxed);
        if (!min || !st)
                return;
        uint64_t t0 = mono_now();
        struct fr_buf payload = {0};
        uint64_t pcs[FR_MAX_STACK_FRAMES];
        for (struct fr_thread *t = head; t; t = t->next) {
                struct fr_wait *w = &t->wait;
                uint32_t s = atomic_load_explicit(&w->seq, memory_order_acquire);
                if (!(s & 1) || atomic_load_explicit(&t->exit_gen, memory_order_relaxed))
                        continue;
                unsigned call = atomic_load_explicit(&w->call, memory_order_relaxed);
                uint64_t object = atomic_load_explicit(&w->object, memory_order_relaxed);
                uint64_t start = atomic_load_explicit(&w->start_ns, memory_order_relaxed);
                uint64_t task = atomic_load_explicit(&w->task, memory_order_relaxed);
                uint32_t region = atomic_load_explicit(&w->region, memory_order_relaxed);
                uint64_t waited = mono_ns > start ? mono_ns - start : 0;
                if (waited < min || call == 0 || call > FR_WAIT_CALL_MAX)
                        continue;
                uint32_t n = fr__wait_stack(t, call, atomic_load_explicit(&w->pc, memory_order_relaxed),
                                            atomic_load_explicit(&w->sp, memory_order_relaxed),
                                            atomic_load_explicit(&w->fp, memory_order_relaxed), true,
                                            pcs, FR_MAX_STACK_FRAMES);
                uint64_t owner = holder(call, object);
                bl.threads++;
                /* Woke up (and maybe waits again) since we looked: drop it. */
                atomic_thread_fence(memory_order_acquire);
                if (atomic_load_explicit(&w->seq, memory_order_relaxed) != s)
                        continue;
                uint64_t stack = n ? fr__stacks_intern(st, pcs, n) : 0;
                if (region)
                        fr__name_mark(region, gen);
                fr_buf_put_uvarint(&payload, (uint64_t)t->tid);
                fr_buf_put_uvarint(&payload, call);
                fr_buf_put_uvarint(&payload, object);
                fr_buf_put_uvarint(&payload, owner);
                fr_buf_put_uvarint(&payload, waited);
                fr_buf_put_uvarint(&payload, task);
                fr_buf_put_uvarint(&payload, region);
                fr_buf_put_uvarint(&payload, stack);
                if (payload.len > FR_MAX_BATCH_BYTES - 16 * FR_VARINT_MAX)
                        break; /* one batch at most: the rest is not listed */
        }
        if (payload.len && !payload.failed) {
                fr_buf_put_batch(out, FR_BATCH_BLOCKED, gen, 0, tick, payload.data, payload.len);
                (*nbatches)++;
        }
        fr_buf_free(&payload);
        bl.ns += mono_now() - t0;
}

void fr__blocked_stats(uint64_t *ret_ns, uint64_t *ret_threads) {
        *ret_ns = bl.ns;
        *ret_threads = bl.threads;
}
