/* Internal structures of the flightrec agent. Names starting with fr__ are
 * private to agent/. See docs/agent-design.md for the protocol. */
#ifndef FR_INTERNAL_H
#define FR_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "flightrec.h"
#include "trace_encode.h"
#include "trace_format.h"

#define FR_CACHELINE 64
#define FR_TLS __attribute__((tls_model("initial-exec")))
/* Code that every process runs, chosen or not (the constructor's decision,
 * the destructor, the interposed libc functions): kept together, next to the
 * constructors, so that a process not chosen faults in as few pages of the
 * library as it can (each fault costs about 25 us on these VMs). */
#define FR_EVERY_PROCESS __attribute__((section(".text.hot.flightrec")))
/* ... and the variables that code touches, on one data page. */
#define FR_EVERY_PROCESS_DATA __attribute__((section(".data.flightrec")))

/* ---- clock (fr_clock.c) ------------------------------------------------ */
/* fr__now - the trace clock in ticks: the TSC on x86-64 (about 11 ns a read
 * here, against 26 ns for clock_gettime through the vDSO), CLOCK_MONOTONIC in
 * nanoseconds elsewhere. Async-signal-safe. */
static inline uint64_t fr__now(void) {
#if defined(__x86_64__)
        uint32_t lo, hi;
        __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
        return ((uint64_t)hi << 32) | lo;
#else
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
#endif
}
struct fr_clock_anchor {
        uint64_t tick, mono_ns, real_ns;
};
void fr__clock_init(void);
/* fr__clock_anchor - read the three clocks as close together as possible. */
void fr__clock_anchor(struct fr_clock_anchor *ret);
/* fr__clock_ticks_per_second - measured since fr__clock_init. */
uint64_t fr__clock_ticks_per_second(void);

/* ---- block pool (fr_pool.c) ------------------------------------------- */
#define FR_BLOCK_SIZE (32u * 1024u)

/* A block: thread event buffers while a generation is live, packed generation
 * bytes once it is complete. The header lives at the start of the block. */
struct fr_block {
        struct fr_block *next;
        uint64_t gen;        /* generation the events belong to */
        uint64_t base_time;  /* EVENTS/SAMPLES batch base time */
        uint64_t last_time;  /* time of the last event written */
        uint32_t pos;        /* write offset from the block start */
        uint32_t data_start; /* start of the payload (after the reserved header) */
        uint32_t out_start;  /* in a complete generation: first byte of trace data */
        uint32_t tid;        /* a thread's event block: its tid (for post-mortem salvage) */
};
#define FR_BLOCK_DATA_START ((uint32_t)(sizeof(struct fr_block) + FR_BATCH_HEADER_MAX))

int fr__pool_init(size_t max_bytes);
void fr__pool_destroy(void);
/* fr__pool_get - a fresh block for a writer, or NULL when the pool is at its
 * limit (a few blocks stay reserved for the advancer). */
struct fr_block *fr__pool_get(void);
/* fr__pool_get_reserve - the advancer's: may take the reserved blocks. */
struct fr_block *fr__pool_get_reserve(void);
/* fr__pool_put_chain - return a chain of blocks linked by next. */
void fr__pool_put_chain(struct fr_block *b);
size_t fr__pool_blocks_in_use(void);

/* ---- post-mortem ring (fr_pmring.c, proto/pm_ring.h) -------------------- */
/* fr__pm_map - memory for nblocks pool blocks (block_bytes in all) behind the
 * ring's header and index, in a memfd when possible. NULL when out of memory. */
uint8_t *fr__pm_map(size_t block_bytes, size_t nblocks);
void fr__pm_unmap(void);
/* fr__pm_dup_readonly - a new read-only descriptor of the memfd for the
 * daemon, or -ENOENT (no memfd) / -errno. */
int fr__pm_dup_readonly(void);
struct fr_genbytes;
/* fr__pm_publish - rewrite the index to name the generations from oldest on
 * and the prologue of the generation in progress, live->gen (NULL: none)
 * (ring lock held). Blocks it no longer names may be freed after it returns. */
void fr__pm_publish(const struct fr_genbytes *oldest, const struct fr_genbytes *live);
/* fr__pm_mark - how this process ends, for the daemon (FR_PM_OPEN, or
 * FR_PM_CLOSED_EXIT / _EXEC: no post-mortem wanted). Ignored in a vfork
 * child, which shares the ring's owner's memory. */
void fr__pm_mark(uint32_t how);
/* fr__pm_index_gen - the index's publish count (fr_pm_header.publishes), 0
 * without a ring (ring lock held). */
uint64_t fr__pm_index_gen(void);
/* fr__pm_crash - the ring's crash record (NULL: no ring, or not this
 * process's); fr__pm_csamples - the area for the crash-time sample copies.
 * Async-signal-safe. */
struct fr_pm_crash *fr__pm_crash(void);
uint8_t *fr__pm_csamples(size_t *ret_cap);
/* fr__pm_carved - the pool has handed out n blocks (the daemon's scan bound). */
void fr__pm_carved(size_t n);

/* ---- crashes (fr_crash.c) --------------------------------------------------- */
/* fr__crash_init - put the crash handler in front of SIGSEGV, SIGBUS, SIGILL,
 * SIGFPE, SIGABRT, SIGTRAP and SIGSYS (once per process). */
void fr__crash_init(void);
/* fr__crash_exiting - the process is ending from inside a crash handler (the
 * application's calls _exit or exit): commits the crash record and returns
 * true; the ring must then not be marked closed. */
bool fr__crash_exiting(void);

/* ---- names (fr_names.c) ----------------------------------------------- */
/* Names (tasks, regions, categories, thread names) are interned once per
 * process into an append-only table; the id is stable and the generation's
 * STRINGS batch lists the names marked as used in it. */
struct fr_name_slot {
        _Atomic(const char *) str; /* NULL: empty; else the interned copy */
        uint32_t hash;
        uint32_t len;
        _Atomic uint64_t used[2]; /* generation last used, per parity */
};
extern struct fr_name_slot *fr__name_slots;

int fr__names_init(void);
/* fr__name_intern - id (>= 1) of the name; lock-free when already known. */
uint32_t fr__name_intern(const char *s);
/* fr__names_emit - append STRINGS batches of every name used in gen to out. */
void fr__names_emit(uint64_t gen, struct fr_buf *out, size_t *nbatches);
/* fr__names_emit_all - STRINGS batches of every name interned so far (up to
 * about max_bytes), for the live generation's prologue. */
void fr__names_emit_all(uint64_t gen, struct fr_buf *out, size_t *nbatches, size_t max_bytes);

/* fr__name_str - the interned copy of id. */
static inline const char *fr__name_str(uint32_t id) {
        return atomic_load_explicit(&fr__name_slots[id - 1].str, memory_order_relaxed);
}
/* fr__name_mark - mark id as used in generation gen. Read first: the common
 * case (already marked) stays a load of a line other threads only read. */
static inline void fr__name_mark(uint32_t id, uint64_t gen) {
        _Atomic uint64_t *u = &fr__name_slots[id - 1].used[gen & 1];
        if (atomic_load_explicit(u, memory_order_relaxed) != gen)
                atomic_store_explicit(u, gen, memory_order_relaxed);
}

/* ---- threads (fr_thread.c) -------------------------------------------- */
struct fr_region {
        uint64_t task;
        uint32_t name;
};

/* A thread's CPU-sample state. Raw records, in buf[gen % 2]: the time (8
 * bytes), then varints weight, task, region name id, frame count, the leaf pc
 * and zigzag deltas between frames. See fr_sample.c. */
struct fr_samples {
        uint8_t *mem;              /* 2 * cap bytes, mmap'd; NULL: no sampler yet */
        uint32_t cap;
        uint32_t pos[2];           /* bytes written per parity */
        uint32_t touched[2];       /* advancer: bytes of each parity in memory (pages) */
        uint64_t lost[2];          /* samples dropped (buffer full) per parity */
        _Atomic uint64_t taken;    /* samples the handler handled (recorded or lost) */
        _Atomic int perf_fd;       /* -1: none; stored after perf_id (the advancer checks it) */
        uint64_t perf_id;          /* PERF_EVENT_IOC_ID of it: its identity (fr_fds.c) */
        uint64_t perf_count;       /* event count (ns) accounted for by samples */
        int timer_slot;            /* -1: none; else index in the timer table */
        void *timer;               /* timer_t of the fallback sampler */
        _Atomic uintptr_t stack_lo, stack_hi; /* 0: unknown (leaf-only samples) */
        _Atomic uintptr_t first_sp;           /* a stack pointer seen, to find the bounds */
        bool arm_failed;                      /* reported; not retried until restart */
        /* What the trace should say about this thread's sampler (FR_NOTE_*),
         * written as a LOG event (category "flightrec") by the advancer. */
        _Atomic uint32_t note;
        int lost_fd;                          /* FR_NOTE_REARMED: the number we lost */
};
enum {
        FR_NOTE_PERF = 1,           /* sampled by its perf event */
        FR_NOTE_TIMER_BUDGET = 2,   /* by the CPU timer: descriptor budget reached */
        FR_NOTE_TIMER_SECCOMP = 4,  /* by the CPU timer: under a seccomp filter */
        FR_NOTE_TIMER_REFUSED = 8,  /* by the CPU timer: perf_event_open refused */
        FR_NOTE_REARMED = 16,       /* its perf descriptor was closed or replaced */
};

/* What a thread waits on while it is inside a wrapped blocking call
 * (fr_wait.c), read by the advancer at each generation's end (fr_blocked.c).
 * seq is odd while the thread is inside the call; the other fields are
 * written before it turns odd and stay put until it turns even again, so a
 * reader that sees the same odd seq before and after its reads (the stack
 * walk included) saw one consistent wait. Relaxed atomics: plain moves. */
struct fr_wait {
        _Atomic uint32_t seq __attribute__((aligned(FR_CACHELINE)));
        _Atomic uint32_t call;      /* enum fr_wait_call */
        _Atomic uint64_t object;
        _Atomic uint64_t start_ns;  /* CLOCK_MONOTONIC (or its coarse variant) */
        _Atomic uintptr_t pc, sp, fp; /* the caller's: return address, stack and frame pointers */
        _Atomic uint64_t task;      /* innermost open region's task and name at entry */
        _Atomic uint32_t region;
};

struct fr_thread {
        /* Written by the owning thread on every event: one cache line of its own. */
        _Atomic uint64_t seq __attribute__((aligned(FR_CACHELINE))); /* odd: inside a write */
        struct fr_block *buf[2];        /* current block per generation parity */
        struct fr_block *full_head[2];  /* filled blocks waiting for the advancer */
        struct fr_block *full_tail[2];
        uint64_t last_time;             /* times strictly increase per thread */
        /* Per generation parity, like the buffers: counted by this thread,
         * written as LOST events by the advancer when it packs the generation
         * (or by fr__write_thread_exit, before the exit). */
        uint64_t lost_events[2];
        uint64_t lost_regions[2];
        uint32_t depth;                 /* open regions, including unrecorded ones */
        uint64_t next_task, task_limit; /* block of task ids */
        struct fr_region regions[FR_MAX_REGION_DEPTH];
        struct {
                const char *ptr; /* caller's pointer last seen in this slot */
                uint32_t id;
        } name_cache[16];

        /* CPU samples (fr_sample.c): written by this thread's SIGPROF handler
         * inside the seqlock above, drained by the advancer. */
        struct fr_samples samples;

        /* The blocking call it is in (fr_wait.c): a cache line of its own. */
        struct fr_wait wait;

        /* Set once. */
        pid_t tid;
        bool adopted; /* found in /proc/self/task, not registered by the thread */
        bool owned;   /* its thread holds it in fr__self (registered itself) */
        /* An adopted thread writes no THREAD_START / THREAD_EXIT of its own:
         * the advancer writes them for it, in the generation it was found
         * in (found_gen) and the one it was seen gone in (gone_gen). */
        uint64_t found_gen, found_time, gone_gen, gone_time;
        uint32_t found_name;
        _Atomic(void *) altstack;       /* fr_altstack.c: our alternate signal stack; NULL: none */
        _Atomic uint64_t exit_gen;      /* 0 while alive; else generation of THREAD_EXIT */

        /* Owned by the advancer: the thread's state at the end of the last complete
         * generation, rebuilt from its events (see fr_advance.c). */
        struct fr_thread *next;
        bool shadow_alive;
        uint32_t shadow_name;
        uint32_t shadow_depth;
        struct fr_region shadow_regions[FR_MAX_REGION_DEPTH];
};

extern __thread struct fr_thread *fr__self FR_TLS;
struct fr_thread *fr__thread_register(void);
/* fr__thread_registering - the calling thread is inside fr__thread_register. */
bool fr__thread_registering(void);
/* fr__thread_self - the calling thread's record, registering it on first use;
 * NULL when not recording or when out of memory. */
static inline struct fr_thread *fr__thread_self(void) {
        struct fr_thread *t = fr__self;
        return __builtin_expect(t != NULL, 1) ? t : fr__thread_register();
}
/* fr__threads_lock / unlock - the registry list (advancer walks it). */
void fr__threads_lock(void);
void fr__threads_unlock(void);
struct fr_thread *fr__threads_head(void);
/* fr__threads_reap - free records of threads that exited before generation gen
 * ended and whose data was flushed. Called by the advancer with the lock held. */
void fr__threads_reap(uint64_t completed_gen);
/* fr__thread_comm - the kernel's name of thread tid ("" when gone). */
void fr__thread_comm(pid_t tid, char *ret_name, size_t len);
/* fr__thread_exists - whether tid is (still) a thread of this process. */
bool fr__thread_exists(pid_t tid);
/* fr__threads_add_locked - link a record made by the sampler (lock held). */
void fr__threads_add_locked(struct fr_thread *t);
void fr__threads_destroy(void);
void fr__thread_forget_self(void);

/* ---- alternate signal stacks (fr_altstack.c) ---------------------------- */
/* Our handlers run with SA_ONSTACK on a per-thread alternate stack of
 * getauxval(AT_MINSIGSTKSZ) + FR_ALTSTACK_MARGIN bytes (rounded to pages, a
 * guard page below). The margin is for our handlers and the unwinder they
 * call; FR_SIGPROF_STACK_NEED is what the SIGPROF handler is allowed to use
 * below its entry (measured: test-guest test_handler_stack_use). */
#define FR_ALTSTACK_MARGIN (32u * 1024u)
#define FR_SIGPROF_STACK_NEED (8u * 1024u)
/* fr__altstack_size - usable bytes of our stacks (computed on the first call,
 * which must not be in a handler: fr__altstack_ensure makes it). */
size_t fr__altstack_size(void);
/* fr__altstack_ensure - in the calling thread (not a handler): install ours
 * unless the thread has an alternate stack already (ours or the
 * application's, which is left alone). t (may be NULL): the thread's record,
 * which remembers the mapping. Returns 0 or -errno. */
int fr__altstack_ensure(struct fr_thread *t);
/* fr__altstack_room - in a handler installed with SA_ONSTACK: true when it
 * runs on an alternate stack with at least need bytes below its frame, or
 * when it cannot tell (a sanitizer calling it outside the kernel's delivery);
 * false when it runs on the thread's own stack (it then installs ours for the
 * next signal, through uc, the handler's ucontext_t, whose uc_stack sigreturn
 * restores) or on an application's stack with too little room: do no deep
 * work then. No system call once the stack is known. */
bool fr__altstack_room(struct fr_thread *t, void *uc, size_t need);
/* fr__altstack_release - the calling thread exits: disable and free ours
 * (kept when a handler is running on it); never install again here. */
void fr__altstack_release(struct fr_thread *t);
/* fr__altstack_free_record - free the stack t's thread used; only once the
 * thread is gone (adopted record reaped), or in a forked child. */
void fr__altstack_free_record(struct fr_thread *t);

/* ---- descriptors (fr_fds.c) -------------------------------------------- */
/* Perf events take at most soft RLIMIT_NOFILE / FR_FD_BUDGET_DIVISOR
 * descriptors, never more than FR_FD_BUDGET_MAX. */
#define FR_FD_BUDGET_DIVISOR 16u
#define FR_FD_BUDGET_MAX 4096u
#define FR_FD_OTHERS 8u /* socket, wake pipe, memfd, and transient /proc reads */
/* fr__fd_budget - the budget now (the limit read again). */
unsigned fr__fd_budget(void);
/* fr__fd_move_high - fd moved up, out of the low numbers (see fr_fds.c);
 * the same fd when there is no room up there. */
int fr__fd_move_high(int fd);
/* fr__perf_fd_id - record the identity of our new perf event fd. */
int fr__perf_fd_id(int fd, uint64_t *ret_id);
/* fr__perf_fd_intact - fd is still the perf event whose id is id. */
bool fr__perf_fd_intact(int fd, uint64_t id);

/* The identity of one of our other descriptors (socket, pipe, memfd: files
 * with an inode of their own, unlike perf events). */
struct fr_fd_id {
        int fd; /* -1: none */
        dev_t dev;
        ino_t ino;
};
/* fr__fd_keep - fd moved high and its identity recorded in id; returns the
 * descriptor to use (id->fd). */
int fr__fd_keep(struct fr_fd_id *id, int fd);
/* fr__fd_ours - id's number still holds that file (else the application
 * closed it, and may own the number now: never touch it). */
bool fr__fd_ours(const struct fr_fd_id *id);
/* fr__fd_transient - fd's identity recorded in id, where it is (a
 * descriptor for a moment: a /proc read, a connection attempt, one the
 * daemon sent); returns fd. */
int fr__fd_transient(struct fr_fd_id *id, int fd);
/* fr__fd_close - close id's descriptor if it is still that file (else the
 * application put its own there); id->fd is -1 after. */
void fr__fd_close(struct fr_fd_id *id);
/* fr__read_file - up to cap - 1 bytes of the file at path (a /proc file),
 * NUL-ended, through a transient descriptor: the length, or -errno. */
ssize_t fr__read_file(const char *path, char *buf, size_t cap);
/* fr__read_file_all - the whole file, NUL-ended, in a malloc'd buffer the
 * caller frees, its length in ret_len; NULL with errno on failure. */
char *fr__read_file_all(const char *path, size_t *ret_len);

/* ---- seccomp (fr_seccomp.c) ---------------------------------------------- */
/* fr__seccomp_mode - Seccomp: of the calling thread (0 none, 1 strict, 2
 * filter; -1 unreadable). */
int fr__seccomp_mode(void);
/* fr__seccomp_filtered - the calling thread (process_too: or the main
 * thread) is under a filter, now or ever before (sticky). */
bool fr__seccomp_filtered(bool process_too);
/* fr__seccomp_seen - a filter was seen (no system call). */
bool fr__seccomp_seen(void);

/* ---- event writing (fr_write.c) --------------------------------------- */
/* fr__acquire - enter the thread's seqlock; returns the generation to write
 * into. fr__release leaves it. See docs/agent-design.md. */
static inline uint64_t fr__acquire(struct fr_thread *t);
static inline void fr__release(struct fr_thread *t);
extern _Atomic uint64_t fr__gen;
/* membarrier available: see fr__acquire. Atomic (relaxed: a plain load)
 * because signal handlers read it on threads the start did not order. */
extern _Atomic bool fr__asymmetric;

static inline uint64_t fr__acquire(struct fr_thread *t) {
        /* The seq store must be ordered before the generation load, so that an
         * advancer that stores gen+1 and then sees seq even knows that no write
         * into the old generation can still be in progress (Dekker).
         *
         * Fast path: a plain store and a compiler barrier. The advancer pays
         * for the fence instead: after storing gen+1 it calls membarrier(2),
         * which runs a full barrier on every thread of the process, before it
         * reads any seq. That saves a locked instruction (~6 ns here) per
         * event. A signal handler on this thread may run between the load and
         * the store below; it leaves seq even again, and the reasoning holds
         * with the values it writes (docs/agent-design.md). */
        if (__builtin_expect(atomic_load_explicit(&fr__asymmetric, memory_order_relaxed), 1)) {
                uint64_t s = atomic_load_explicit(&t->seq, memory_order_relaxed);
                atomic_store_explicit(&t->seq, s + 1, memory_order_relaxed);
                atomic_signal_fence(memory_order_seq_cst);
                /* acquire (a plain load on x86): the advancer's reset of this
                 * parity's buffers happens before it publishes the generation. */
                return atomic_load_explicit(&fr__gen, memory_order_acquire);
        }
        atomic_fetch_add_explicit(&t->seq, 1, memory_order_seq_cst);
        return atomic_load_explicit(&fr__gen, memory_order_seq_cst);
}
/* fr__fence_all_threads - the advancer's half of the barrier above. */
void fr__fence_all_threads(void);
static inline void fr__release(struct fr_thread *t) {
        /* A plain store, no locked instruction: seq is odd here, and a signal
         * handler on this thread leaves an odd seq alone, so nobody else can
         * change it between this load and store. */
        uint64_t s = atomic_load_explicit(&t->seq, memory_order_relaxed);
        atomic_store_explicit(&t->seq, s + 1, memory_order_release);
}
/* fr__write_block - a BLOCK event (a wait of ns nanoseconds that ended now)
 * with its stack pcs[0..n). Skipped when the thread is inside an event write
 * already (a wrapped call made by a signal handler). */
void fr__write_block(struct fr_thread *t, unsigned call, uint64_t object, uint64_t ns,
                     uint64_t task, uint32_t region, const uint64_t *pcs, uint32_t n);
/* fr__write_thread_start - THREAD_START and THREAD_NAME for a new record. */
void fr__write_thread_start(struct fr_thread *t, const char *name);
void fr__write_thread_exit(struct fr_thread *t);

/* ---- advancer and ring (fr_advance.c, fr_ring.c) ----------------------- */
struct fr_genbytes {
        struct fr_genbytes *next;
        uint64_t gen;
        uint64_t start, end;  /* ticks */
        size_t bytes;         /* trace bytes */
        size_t mem;           /* pool memory held */
        struct fr_block *head, *tail; /* trace bytes are [out_start, pos) of each block */
        int refs;             /* snapshots writing it; freed at 0 once evicted */
        bool evicted;
};

int fr__advancer_start(void);
void fr__advancer_stop(void);
/* fr__advancer_forget - in a forked child: drop the parent's advancer state. */
void fr__advancer_forget(void);
/* Counters for FLIGHTREC_DEBUG and the daemon's status. Read by the advancer's
 * own thread or after it stopped. */
void fr__advancer_stats(struct fr_stats *ret);
/* fr__advancer_poke - have the advancer scan for new threads now. */
void fr__advancer_poke(void);
/* fr__advance_now - force an advance and wait until it completed.
 * Returns 0 or a negative errno. */
int fr__advance_now(void);

/* fr__ring_init - bounds: generations (a count), max_bytes, and min_age_ms
 * (0: none), the history kept in whole generations even over the count; the
 * byte bound wins over it (docs/agent-design.md, "Retention"). */
void fr__ring_init(unsigned generations, size_t max_bytes, unsigned min_age_ms);
/* fr__ring_push - add a complete generation, evicting the oldest beyond the
 * bounds; ticks_per_second converts min_age to g's clock. */
void fr__ring_push(struct fr_genbytes *g, uint64_t ticks_per_second);
/* fr__ring_age_cuts - pushes so far where the byte bound left less than
 * min_age; the generations and ticks the last one kept (either may be NULL). */
uint64_t fr__ring_age_cuts(unsigned *ret_kept, uint64_t *ret_kept_ticks);
/* fr__ring_pin - the retained generations, oldest first, each pinned; release
 * with fr__ring_unpin. Returns the count (at most max). */
size_t fr__ring_pin(struct fr_genbytes **ret, size_t max);
void fr__ring_unpin(struct fr_genbytes **gens, size_t n);
/* fr__ring_hold - a ring snapshot: pin every retained generation and keep the
 * post-mortem index naming exactly them (no publish) until fr__ring_release.
 * *ret_index_gen: the index generation the daemon checks. Returns 0, -EBUSY
 * (held already) or -ENOMEM. O(generations): nothing copies trace bytes. */
int fr__ring_hold(uint64_t *ret_index_gen);
/* fr__ring_release - publish the ring as it is now, then unpin. */
void fr__ring_release(void);
void fr__ring_destroy(void);
/* fr__ring_set_live - publish the prologue (CLOCK, STATUS, MAPS, STRINGS) of
 * the generation in progress for post-mortem salvage; the ring owns it. */
void fr__ring_set_live(struct fr_genbytes *prologue);
size_t fr__ring_bytes(void);
void fr__genbytes_free(struct fr_genbytes *g);

/* ---- CPU sampling (fr_sample.c, fr_stacks.c, fr_maps.c) ------------------ */
/* fr__sampler_init - install the SIGPROF handler (once per process) and
 * choose the sampler: the perf task-clock event, or the CPU timer where
 * perf_event_open is refused. hz 0: no sampling. Returns 0 or -errno. */
int fr__sampler_init(unsigned hz);
/* fr__sampler_kind - enum fr_sampler_kind in use (NONE when off). */
unsigned fr__sampler_kind(void);
/* fr__sampler_arm - start sampling thread t (not from a signal handler);
 * self: t is the calling thread (its stack bounds are read now). */
void fr__sampler_arm(struct fr_thread *t, bool self);
/* fr__sampler_disarm - stop sampling t; its pending signals are ignored. */
void fr__sampler_disarm(struct fr_thread *t);
/* fr__sampler_disarm_all - stop sampling every thread (fr_stop). */
void fr__sampler_disarm_all(void);
/* fr__sampler_forget - in a forked child: close the parent's samplers. */
void fr__sampler_forget(void);
/* fr__sampler_rescan - advancer: adopt threads in /proc/self/task that have
 * no record (registry lock NOT held), retire adopted ones that are gone, and
 * learn stack bounds. gen: the generation now current. */
void fr__sampler_rescan(uint64_t gen);
/* fr__sampler_bounds_wanted - a handler met a thread whose stack bounds are
 * unknown; fr__sampler_learn_bounds (advancer, registry lock NOT held) looks
 * them up in /proc/self/maps, so an adopted thread's samples are leaf-only for
 * tens of milliseconds, not a whole period. */
bool fr__sampler_bounds_wanted(void);
void fr__sampler_learn_bounds(void);
/* fr__samples_free - unmap t's sample memory (record being freed; its
 * sampler is disarmed already). */
void fr__samples_free(struct fr_thread *t);

/* fr__sampler_note_text - the LOG message of one FR_NOTE_* bit. */
int fr__sampler_note_text(struct fr_thread *t, uint32_t bit, char *buf, size_t len);
/* fr__sampler_counts - threads per sampler now, re-arms, identity checks and
 * their cost since the sampler started (for fr_stats). */
void fr__sampler_counts(struct fr_stats *ret);
/* fr__sampler_fill_stats - the unwinder's and the handler's figures into
 * ret (advancer thread: the tables are its own). */
void fr__sampler_fill_stats(struct fr_stats *ret);
/* fr__sampler_debug_report - FLIGHTREC_DEBUG lines: unwinder, handler time by depth. */
void fr__sampler_debug_report(const struct fr_stats *st);
/* fr__samples_salvage - copy every thread's samples of gen into the ring
 * (the crash handler's). */
void fr__samples_salvage(uint64_t gen);

/* fr__samples_taken - sum of the handlers' counts since the sampler started. */
uint64_t fr__samples_taken(void);

struct fr_stack_table;
/* fr__samples_drain - advancer: append t's samples of generation gen as
 * SAMPLES batches to out (interning stacks in st), reset the parity and
 * return the time of the last sample (0: none); lost samples are added to
 * *ret_lost. */
uint64_t fr__samples_drain(struct fr_thread *t, uint64_t gen, uint64_t start,
                           struct fr_stack_table *st, struct fr_buf *out, size_t *nbatches,
                           uint64_t *ret_lost, uint64_t *ret_samples);

/* Stack table of one generation (fr_stacks.c). */
struct fr_stack_table *fr__stacks_new(void);
void fr__stacks_free(struct fr_stack_table *st);
/* fr__stacks_intern - id (>= 1) of the stack pcs[0..n), 0 when out of memory. */
uint64_t fr__stacks_intern(struct fr_stack_table *st, const uint64_t *pcs, uint32_t n);
/* fr__stacks_begin - start the table of generation gen (empty). */
void fr__stacks_begin(struct fr_stack_table *st, uint64_t gen);
/* fr__stacks_emit - append the generation's STACKS batches to out; empties st. */
void fr__stacks_emit(struct fr_stack_table *st, struct fr_buf *out, size_t *nbatches);

/* fr__stack_bounds - the calling thread's stack, learnt once into t. */
void fr__stack_bounds(struct fr_thread *t);

/* ---- blocking calls (fr_wait.c, fr_blocked.c) --------------------------- */
/* fr__wait_set - record waits of at least ns nanoseconds (0: none), from now on. */
void fr__wait_set(uint64_t ns);
extern _Atomic uint64_t fr__wait_ns;
/* fr__wait_after_fork - in a fork child: its thread may register again. */
void fr__wait_after_fork(void);
/* fr__real_fn - the real function cached in *slot, or lookup(name) cached
 * there now: for the wrappers' lazy lookups (relaxed, a plain load here:
 * threads may race to store the same value). */
static inline void *fr__real_fn(void **slot, void *(*lookup)(const char *), const char *name) {
        void *f = __atomic_load_n(slot, __ATOMIC_RELAXED);
        if (__builtin_expect(f == NULL, 0)) {
                f = lookup(name);
                __atomic_store_n(slot, f, __ATOMIC_RELAXED);
        }
        return f;
}
/* fr__wait_resolve, fr__exit_resolve - look up every real function our
 * wrappers call, once the process records (fr_agent.c): from then on no
 * wrapper calls dlsym, not even from a signal handler or a fork child. */
void fr__wait_resolve(void);
void fr__exit_resolve(void);
/* fr__wait_close_at_exit - close the wait of thread t (the caller, at its
 * exit) if it is still open: it was cancelled inside a wrapped call. */
void fr__wait_close_at_exit(struct fr_thread *t);
/* fr__wait_stack - the frames of t's current wait: the wrapped function,
 * the caller's return address, then the frame-pointer walk from the saved
 * registers. stack_copy: read t's stack through a copy (another thread's
 * stack, which may change under the walk); else directly (t is the caller).
 * Returns the frame count (0: nothing usable). */
uint32_t fr__wait_stack(struct fr_thread *t, unsigned call, uintptr_t pc, uintptr_t sp,
                        uintptr_t fp, bool stack_copy, uint64_t *pcs, uint32_t max);
/* fr__wait_leaf - the address of our wrapper of call (frame 0 of its stacks). */
uintptr_t fr__wait_leaf(unsigned call);
/* fr__blocked_emit - advancer, at the end of generation gen (observed at
 * tick/mono_ns): a BLOCKED batch of the threads in a wrapped call for at
 * least fr__wait_ns, stacks interned in st. Appends to out. */
void fr__blocked_emit(struct fr_thread *head, uint64_t gen, uint64_t tick, uint64_t mono_ns,
                      uint64_t ticks_per_second, struct fr_stack_table *st, struct fr_buf *out,
                      size_t *nbatches);
/* fr__blocked_stats - time spent in fr__blocked_emit and threads walked. */
void fr__blocked_stats(uint64_t *ret_ns, uint64_t *ret_threads);

/* fr__maps_emit - append a MAPS batch of the loaded objects (code segments,
 * with build ids) to out. */
void fr__maps_emit(uint64_t gen, struct fr_buf *out, size_t *nbatches);

/* fr__thread_create - start one of the agent's own threads: not seen by the
 * pthread_create interposer (fr_interpose.c), all signals blocked. */
int fr__thread_create(pthread_t *thread, void *(*fn)(void *), void *arg);
/* fr__thread_is_internal - tid is one of the agent's own threads. */
bool fr__thread_is_internal(pid_t tid);

/* ---- the agent (fr_agent.c) ------------------------------------------- */
struct fr_agent_config {
        char socket_path[108];
        unsigned hz, period_ms, generations;
        size_t max_bytes;
        unsigned min_age_ms; /* FLIGHTREC_MIN_AGE_MS: 0 none */
        char dir[4096];
        bool sampling_off;
        bool force_timer; /* FLIGHTREC_SAMPLER=timer: skip the perf event */
        bool seccomp_off; /* FLIGHTREC_SECCOMP=off: under a filter, no agent */
        unsigned unwind;  /* FLIGHTREC_UNWIND: enum fr_unwind_kind */
        unsigned block_ms; /* FLIGHTREC_BLOCK_MS: waits recorded from this long on, 0 = off */
};
extern struct fr_agent_config fr__cfg;
extern _Atomic int fr__running;
extern char fr__comm[FR_MAX_COMM_BYTES];
extern char fr__exe[FR_MAX_PATH_BYTES];

/* fr__log_error - one line on stderr, "flightrec: ...". Not for the hot path. */
void fr__log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- snapshots (fr_snapshot.c) ---------------------------------------- */
/* fr__snapshot_local - write a .trace.lz4 into dir (temporary name, then
 * rename). Returns 0 with the final path in ret_path, or a negative errno. */
int fr__snapshot_local(const char *dir, const char *reason, char *ret_path, size_t pathlen);

/* fr__thread_create_async - fr__thread_create without waiting for the new
 * thread to run (for the deferred start, when no scan can race with it). */
int fr__thread_create_async(pthread_t *thread, void *(*fn)(void *), void *arg);

/* ---- runtimes in the process (fr_runtime.c) ---------------------------- */
#define FR_RUNTIME_GO 0x1        /* Go (gc or gccgo): owns SIGPROF and its threads; we stay off */
#define FR_RUNTIME_JVM 0x2       /* a JVM (libjli / libjvm loaded) */
#define FR_RUNTIME_SIGSEGV 0x4   /* some runtime takes SIGSEGV/SIGBUS on purpose (JVM, .NET,
                                  * Mono, V8, sanitizers): a crash handler must chain to it */
#define FR_RUNTIME_SANITIZER 0x8 /* ASan, TSan, MSan, HWASan, LSan or UBSan runtime */
/* fr__runtime_kind - FR_RUNTIME_* bits seen so far. Async-signal-safe. */
unsigned fr__runtime_kind(void);
/* fr__runtime_detect - look at the loaded objects again (not in a signal
 * handler: dl_iterate_phdr); returns the bits. Called by the constructor
 * and by the deferred start (a JVM loads libjvm after start-up). */
unsigned fr__runtime_detect(void);
/* fr__runtime_go_object - the object carrying the Go note, "" if none. */
const char *fr__runtime_go_object(void);

/* ---- which processes record (fr_select.c) ------------------------------- */
#define FR_SELECT_LIST_BYTES 1024
#define FR_SELECT_FILE_BYTES 8192
#define FR_DEFAULT_START_DELAY_MS 1000
enum fr_loaded { FR_LOADED_LINKED, FR_LOADED_EXPLICIT, FR_LOADED_HOSTWIDE };
struct fr_agent_conf { /* /etc/flightrec/agent.conf, section [agent] */
        char include[FR_SELECT_LIST_BYTES], exclude[FR_SELECT_LIST_BYTES];
        bool has_include, children, has_start_delay, setuid_record;
        unsigned start_delay_ms;
        char socket_path[108];
};
struct fr_choice {
        enum fr_loaded how;
        bool secure;   /* AT_SECURE: FLIGHTREC_* ignored, no local snapshot */
        bool chosen;   /* this process records */
        bool children; /* exec'd children keep the agent in LD_PRELOAD */
        unsigned start_delay_ms;
        char socket_path[108]; /* agent.conf's socket, "" for the default */
};
extern struct fr_choice fr__choice;
/* fr__choose - the constructor's decision (see fr_select.c). 0 or -errno
 * (a bad setting: not chosen). */
int fr__choose(struct fr_choice *ret);
/* fr__secure - secure-execution mode (setuid, setgid, capabilities). */
bool fr__secure(void);
/* fr__getenv - getenv for FLIGHTREC_* and the like: NULL in secure mode. */
const char *fr__getenv(const char *name);
bool fr__glob_list_match(const char *list, const char *comm, const char *exe);
int fr__agent_conf_parse(const char *text, struct fr_agent_conf *ret, char *err, size_t errlen);
/* fr__child_env - envp without our LD_PRELOAD entry and FLIGHTREC_AUTOSTART,
 * into out[cap] (preload: room for the rewritten LD_PRELOAD). Returns the
 * count, or -E2BIG when it does not fit (then pass envp as it is). */
ssize_t fr__child_env(char *const envp[], char **out, size_t cap, char *preload, size_t preload_len);

/* ---- the deferred start (fr_lazy.c) -------------------------------------- */
/* fr__lazy_start - start the recorder with cfg once the process has lived
 * start_delay_ms, from a thread of ours; nothing waits for it. */
int fr__lazy_start(const struct fr_agent_config *cfg, unsigned start_delay_ms);
/* fr__lazy_cancel - an explicit fr_start/fr_stop or exit came first. */
void fr__lazy_cancel(void);
/* fr__lazy_pending - a deferred start is waiting (fork: the child makes its own). */
bool fr__lazy_pending(void);
/* fr__lazy_after_fork - in a fork child: a start still waiting in the
 * parent gets its own starter thread here (the age counts from the fork). */
int fr__lazy_after_fork(void);
/* fr__start_config - fr_start with an already validated configuration. */
int fr__start_config(const struct fr_agent_config *cfg);

#endif
