/* Blocking calls, seen from inside: wrappers of the libc entry points where
 * threads wait (docs/agent-design.md "Blocking calls" has the list and why).
 *
 * Each wrapper calls the real function found by dlsym(RTLD_NEXT) and returns
 * exactly what it returned, with its errno. Around the call it keeps, in the
 * thread's record, what the thread waits on (struct fr_wait): the call, the
 * object, the start time and the caller's pc, sp and frame pointer, so that
 *  - the advancer can list the thread as blocked at a generation's end and
 *    unwind its stack from the saved registers while it sleeps, never
 *    signalling it (fr_blocked.c);
 *  - a wait of at least FLIGHTREC_BLOCK_MS becomes a BLOCK event, written by
 *    the thread itself when the call returns, with the stack walked then.
 *
 * The hot path stays small: no unwinding, no event and no lock on a call
 * that does not wait long. Mutexes, rwlocks and semaphores are tried first
 * and only a failed try takes the slow path. Calls that always wait
 * (condition variables, sleeps, the slow paths) read CLOCK_MONOTONIC; calls
 * that usually return at once (fds, poll, waitpid, futex) read its coarse
 * variant (a few ns here, against ~40 ns; 4 ms resolution), so their BLOCK
 * durations are good to one kernel tick.
 *
 * Cancellation: a wrapper stays a cancellation point, since the real call is
 * one. A thread cancelled inside read or pthread_cond_wait unwinds through
 * the wrapper without running its cleanup (this file is not built with
 * -fexceptions, which would make every host load libgcc_s): its wait stays
 * open through its cleanup handlers and is closed at its exit
 * (fr__wait_close_at_exit), before the advancer could report it.
 *
 * Signal handlers: a wrapped call made by a handler while the thread is
 * already in a wrapped call, or inside the wrapper's own bookkeeping (busy),
 * goes straight to the real function. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fr_internal.h"

_Atomic uint64_t fr__wait_ns; /* 0: not recording waits */

/* Set by the thread around its own bookkeeping: a handler's wrapped call
 * then passes through. Only this thread writes it. */
static __thread uint32_t busy FR_TLS;

void fr__wait_set(uint64_t ns) { atomic_store(&fr__wait_ns, ns); }

/* ---- the real functions ------------------------------------------------------ */

/* Resolved by fr__wait_resolve() when this process starts recording (before
 * its signal handlers exist), else at each function's first call: a process
 * that does not record passes every call through and pays for no lookup at
 * its start (the 50 dlsym cost ~0.1 ms here, bench/run-hostwide.sh). */
static void *lookup(const char *name) {
        /* The condition variable functions have an old version (GLIBC_2.2.5)
         * that plain dlsym may return: ask for the current one. */
        void *f = NULL;
        if (strncmp(name, "pthread_cond_", 13) == 0)
                f = dlvsym(RTLD_NEXT, name, "GLIBC_2.3.2");
        return f ? f : dlsym(RTLD_NEXT, name);
}

/* The cached pointer, and a typed accessor of it. */
#define REAL_FN(name, ret, args)                                                                   \
        typedef ret(*real_##name##_t) args;                                                        \
        static void *real_##name;                                                                  \
        static inline real_##name##_t get_##name(void) {                                           \
                return (real_##name##_t)fr__real_fn(&real_##name, lookup, #name);                  \
        }
#define REAL_LIST(X)                                                                               \
        X(pthread_mutex_lock, int, (pthread_mutex_t *))                                            \
        X(pthread_mutex_trylock, int, (pthread_mutex_t *))                                         \
        X(pthread_mutex_timedlock, int, (pthread_mutex_t *, const struct timespec *))              \
        X(pthread_cond_wait, int, (pthread_cond_t *, pthread_mutex_t *))                           \
        X(pthread_cond_timedwait, int, (pthread_cond_t *, pthread_mutex_t *, const struct timespec *)) \
        X(pthread_rwlock_rdlock, int, (pthread_rwlock_t *))                                        \
        X(pthread_rwlock_tryrdlock, int, (pthread_rwlock_t *))                                     \
        X(pthread_rwlock_wrlock, int, (pthread_rwlock_t *))                                        \
        X(pthread_rwlock_trywrlock, int, (pthread_rwlock_t *))                                     \
        X(pthread_rwlock_timedrdlock, int, (pthread_rwlock_t *, const struct timespec *))          \
        X(pthread_rwlock_timedwrlock, int, (pthread_rwlock_t *, const struct timespec *))          \
        X(pthread_join, int, (pthread_t, void **))                                                 \
        X(sem_wait, int, (sem_t *))                                                                \
        X(sem_trywait, int, (sem_t *))                                                             \
        X(sem_timedwait, int, (sem_t *, const struct timespec *))                                  \
        X(poll, int, (struct pollfd *, nfds_t, int))                                               \
        X(__poll_chk, int, (struct pollfd *, nfds_t, int, size_t))                                 \
        X(ppoll, int, (struct pollfd *, nfds_t, const struct timespec *, const sigset_t *))        \
        X(select, int, (int, fd_set *, fd_set *, fd_set *, struct timeval *))                      \
        X(pselect, int, (int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *)) \
        X(epoll_wait, int, (int, struct epoll_event *, int, int))                                  \
        X(epoll_pwait, int, (int, struct epoll_event *, int, int, const sigset_t *))               \
        X(nanosleep, int, (const struct timespec *, struct timespec *))                            \
        X(clock_nanosleep, int, (clockid_t, int, const struct timespec *, struct timespec *))      \
        X(usleep, int, (useconds_t))                                                               \
        X(sleep, unsigned, (unsigned))                                                             \
        X(read, ssize_t, (int, void *, size_t))                                                    \
        X(__read_chk, ssize_t, (int, void *, size_t, size_t))                                      \
        X(readv, ssize_t, (int, const struct iovec *, int))                                        \
        X(recv, ssize_t, (int, void *, size_t, int))                                               \
        X(__recv_chk, ssize_t, (int, void *, size_t, size_t, int))                                 \
        X(recvfrom, ssize_t, (int, void *, size_t, int, struct sockaddr *, socklen_t *))           \
        X(__recvfrom_chk, ssize_t, (int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *)) \
        X(recvmsg, ssize_t, (int, struct msghdr *, int))                                           \
        X(accept, int, (int, struct sockaddr *, socklen_t *))                                      \
        X(accept4, int, (int, struct sockaddr *, socklen_t *, int))                                \
        X(connect, int, (int, const struct sockaddr *, socklen_t))                                 \
        X(write, ssize_t, (int, const void *, size_t))                                             \
        X(writev, ssize_t, (int, const struct iovec *, int))                                       \
        X(send, ssize_t, (int, const void *, size_t, int))                                         \
        X(sendto, ssize_t, (int, const void *, size_t, int, const struct sockaddr *, socklen_t))   \
        X(sendmsg, ssize_t, (int, const struct msghdr *, int))                                     \
        X(waitpid, pid_t, (pid_t, int *, int))                                                     \
        X(wait4, pid_t, (pid_t, int *, int, struct rusage *))                                      \
        X(flock, int, (int, int))                                                                  \
        X(fcntl, int, (int, int, ...))                                                             \
        X(fcntl64, int, (int, int, ...))                                                           \
        X(syscall, long, (long, ...))
REAL_LIST(REAL_FN)

#define RESOLVE(name, ret, args) (void)get_##name();
void fr__wait_resolve(void) { REAL_LIST(RESOLVE) }

/* REAL(name) - the real function, looked up now if this is its first call
 * in a process that does not record. */
#define REAL(name) get_##name()

/* ---- the wait ---------------------------------------------------------------- */

struct scope {
        struct fr_thread *t; /* NULL: nothing recorded */
        bool coarse;
};

static inline uint64_t mono_ns(bool coarse) {
        struct timespec ts;
        clock_gettime(coarse ? CLOCK_MONOTONIC_COARSE : CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* wait_thread - the calling thread's record when this call is to be
 * recorded: waits recorded, a registered thread, not nested. */
static inline struct fr_thread *wait_thread(void) {
        if (!atomic_load_explicit(&fr__wait_ns, memory_order_relaxed))
                return NULL;
        struct fr_thread *t = fr__self;
        if (!t || busy || (atomic_load_explicit(&t->wait.seq, memory_order_relaxed) & 1))
                return NULL;
        return t;
}

/* A thread that existed before the agent started (the main thread and the
 * early threads under a deferred start, FLIGHTREC_START_DELAY_MS) has no
 * record of its own: the sampler adopted it from /proc. It registers at its
 * first wrapped call of a function that is not async-signal-safe (locks,
 * condition variables, joins, semaphores, epoll, usleep, futex): such a call
 * is never made by a signal handler, so the registration (malloc, the
 * registry lock) cannot interrupt one. The calls a handler may make (read,
 * write, poll, sleeps...) never register. One try per thread; never the
 * agent's own threads. */
static __thread bool adopt_tried FR_TLS;

static __attribute__((noinline)) struct fr_thread *adopt_self(void) {
        if (fr__thread_registering())
                return NULL; /* a lock taken by the registration itself */
        adopt_tried = true;
        /* Not under a sanitizer runtime: TSan calls our usleep, pthread_join,
         * ... from its blocking-call interceptors, where it models no lock and
         * delivers signals at once; a registration there deadlocked inside
         * TSan's allocator with our registry lock held (test-guest). */
        if (fr__runtime_kind() & FR_RUNTIME_SANITIZER)
                return NULL;
        if (fr__thread_is_internal(gettid()))
                return NULL;
        busy = 1; /* the registry lock's own wrapped call passes through */
        atomic_signal_fence(memory_order_seq_cst);
        struct fr_thread *t = fr__thread_register();
        atomic_signal_fence(memory_order_seq_cst);
        busy = 0;
        return t ? wait_thread() : NULL;
}

/* wait_thread_adopt - wait_thread(), registering the calling thread first
 * when it has no record (only from the wrappers named above). */
static inline struct fr_thread *wait_thread_adopt(void) {
        struct fr_thread *t = wait_thread();
        if (__builtin_expect(t != NULL || adopt_tried || busy || fr__self != NULL, 1) ||
            !atomic_load_explicit(&fr__wait_ns, memory_order_relaxed) ||
            !atomic_load_explicit(&fr__running, memory_order_relaxed))
                return t;
        return adopt_self();
}

void fr__wait_after_fork(void) { adopt_tried = false; }

void fr__wait_close_at_exit(struct fr_thread *t) {
        uint32_t s = atomic_load_explicit(&t->wait.seq, memory_order_relaxed);
        if (s & 1) /* cancelled inside a wrapped call: its cleanup never ran */
                atomic_store_explicit(&t->wait.seq, s + 1, memory_order_release);
}

static inline void wait_enter(struct scope *sc, struct fr_thread *t, unsigned call, uint64_t object,
                              bool coarse, uintptr_t pc, uintptr_t sp, uintptr_t fp) {
        struct fr_wait *w = &t->wait;
        busy = 1;
        atomic_signal_fence(memory_order_seq_cst);
        uint32_t d = t->depth;
        uint64_t task = 0;
        uint32_t region = 0;
        if (d && d <= FR_MAX_REGION_DEPTH) {
                task = t->regions[d - 1].task;
                region = t->regions[d - 1].name;
        }
        atomic_store_explicit(&w->call, call, memory_order_relaxed);
        atomic_store_explicit(&w->object, object, memory_order_relaxed);
        atomic_store_explicit(&w->pc, pc, memory_order_relaxed);
        atomic_store_explicit(&w->sp, sp, memory_order_relaxed);
        atomic_store_explicit(&w->fp, fp, memory_order_relaxed);
        atomic_store_explicit(&w->task, task, memory_order_relaxed);
        atomic_store_explicit(&w->region, region, memory_order_relaxed);
        atomic_store_explicit(&w->start_ns, mono_ns(coarse), memory_order_relaxed);
        /* Release: an advancer that sees seq odd sees the fields above. */
        uint32_t s = atomic_load_explicit(&w->seq, memory_order_relaxed);
        atomic_store_explicit(&w->seq, s + 1, memory_order_release);
        atomic_signal_fence(memory_order_seq_cst);
        busy = 0;
        sc->t = t;
        sc->coarse = coarse;
}

#ifdef __SANITIZE_THREAD__
/* GCC 12's TSan calls our wrappers from its interceptors of blocking calls,
 * and runs a signal handler at once when the signal comes during such a call.
 * A race report begun in wait_record (a false one, race:wait_record in
 * tests/tsan.supp) that such a handler interrupts with a race report of its
 * own deadlocks inside TSan (ReportRace takes its racy_mtx twice; the test
 * program of docs/agent-design.md "Sanitizer builds" shows it without
 * flightrec): in the TSan build, the asynchronous signals wait until the
 * record is written. */
static void hold_signals(sigset_t *old) {
        static const int faults[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGABRT, SIGSYS};
        sigset_t async;
        sigfillset(&async); /* glibc's own signals (cancellation, setxid) excluded */
        for (size_t i = 0; i < sizeof faults / sizeof *faults; i++)
                sigdelset(&async, faults[i]);
        syscall(SYS_rt_sigprocmask, SIG_BLOCK, &async, old, _NSIG / 8);
}
static void release_signals(const sigset_t *old) {
        syscall(SYS_rt_sigprocmask, SIG_SETMASK, old, NULL, _NSIG / 8);
}
#else
static inline void hold_signals(sigset_t *old) { (void)old; }
static inline void release_signals(const sigset_t *old) { (void)old; }
#endif

/* wait_record - the slow end of a long wait: its stack and BLOCK event. */
static __attribute__((noinline)) void wait_record(struct fr_thread *t, uint64_t ns) {
        int saved = errno;
        sigset_t held;
        hold_signals(&held);
        struct fr_wait *w = &t->wait;
        unsigned call = atomic_load_explicit(&w->call, memory_order_relaxed);
        uint64_t pcs[FR_MAX_STACK_FRAMES];
        uint32_t n = fr__wait_stack(t, call, atomic_load_explicit(&w->pc, memory_order_relaxed),
                                    atomic_load_explicit(&w->sp, memory_order_relaxed),
                                    atomic_load_explicit(&w->fp, memory_order_relaxed), false, pcs,
                                    FR_MAX_STACK_FRAMES);
        fr__write_block(t, call, atomic_load_explicit(&w->object, memory_order_relaxed), ns,
                        atomic_load_explicit(&w->task, memory_order_relaxed),
                        atomic_load_explicit(&w->region, memory_order_relaxed), pcs, n);
        release_signals(&held);
        errno = saved;
}

/* wait_leave - the end of the call (a cleanup attribute: every return).
 * errno is the real call's. */
static void wait_leave(struct scope *sc) {
        struct fr_thread *t = sc->t;
        if (!t)
                return;
        struct fr_wait *w = &t->wait;
        busy = 1;
        atomic_signal_fence(memory_order_seq_cst);
        uint64_t start = atomic_load_explicit(&w->start_ns, memory_order_relaxed);
        uint32_t s = atomic_load_explicit(&w->seq, memory_order_relaxed);
        atomic_store_explicit(&w->seq, s + 1, memory_order_relaxed);
        /* The even seq before any later write to the stack the advancer may
         * be walking: it then sees the change and drops the walk. */
        atomic_thread_fence(memory_order_release);
        int saved = errno;
        uint64_t now = mono_ns(sc->coarse);
        errno = saved;
        uint64_t min = atomic_load_explicit(&fr__wait_ns, memory_order_relaxed);
        if (__builtin_expect(min && now >= start && now - start >= min, 0))
                wait_record(t, now - start);
        atomic_signal_fence(memory_order_seq_cst);
        busy = 0;
}

/* WAIT(call, object, coarse) - record the rest of the calling wrapper as a
 * wait (when t, the wait_thread() of the caller, is set). The caller's
 * registers come from the wrapper's own frame (built with frame pointers):
 * [fp] is the caller's frame pointer, fp + 16 the caller's stack pointer
 * after the return. */
#define WAIT(t, call, object, coarse)                                                              \
        struct scope sc_ __attribute__((cleanup(wait_leave))) = {0};                               \
        do {                                                                                       \
                if (t) {                                                                           \
                        uintptr_t *fp_ = __builtin_frame_address(0);                               \
                        wait_enter(&sc_, t, call, (uint64_t)(object), coarse,                     \
                                   (uintptr_t)__builtin_return_address(0), (uintptr_t)(fp_ + 2),   \
                                   fp_[0]);                                                        \
                }                                                                                  \
        } while (0)

static inline uint64_t ts_ns(const struct timespec *ts) {
        return ts && ts->tv_sec >= 0 && ts->tv_nsec >= 0
                       ? (uint64_t)ts->tv_sec * 1000000000ull + (uint64_t)ts->tv_nsec
                       : 0;
}

/* ---- locks: a failed try first ------------------------------------------------- */

/* LOCK_WRAPPER - a lock call tried first when waits are recorded: try(obj)
 * gives 0 or an error, returned as the lock would have, or EBUSY when it
 * would wait; only then the wait is recorded around the real call. A macro,
 * not a shared helper: WAIT must read the exported wrapper's own frame. */
#define LOCK_WRAPPER(name, call, try, obj, params, args)                                           \
        int name params {                                                                          \
                if (!atomic_load_explicit(&fr__wait_ns, memory_order_relaxed))                     \
                        return REAL(name) args;                                                    \
                int r = try(obj);                                                                  \
                if (__builtin_expect(r != EBUSY, 1))                                               \
                        return r; /* taken (or the error the lock would give too) */               \
                struct fr_thread *t = wait_thread_adopt();                                         \
                WAIT(t, call, obj, false);                                                         \
                return REAL(name) args;                                                            \
        }

LOCK_WRAPPER(pthread_mutex_lock, FR_WAIT_MUTEX_LOCK, REAL(pthread_mutex_trylock), m,
             (pthread_mutex_t *m), (m))
LOCK_WRAPPER(pthread_mutex_timedlock, FR_WAIT_MUTEX_TIMEDLOCK, REAL(pthread_mutex_trylock), m,
             (pthread_mutex_t *m, const struct timespec *abstime), (m, abstime))
LOCK_WRAPPER(pthread_rwlock_rdlock, FR_WAIT_RWLOCK_RDLOCK, REAL(pthread_rwlock_tryrdlock), l,
             (pthread_rwlock_t *l), (l))
LOCK_WRAPPER(pthread_rwlock_wrlock, FR_WAIT_RWLOCK_WRLOCK, REAL(pthread_rwlock_trywrlock), l,
             (pthread_rwlock_t *l), (l))
LOCK_WRAPPER(pthread_rwlock_timedrdlock, FR_WAIT_RWLOCK_TIMEDRDLOCK, REAL(pthread_rwlock_tryrdlock),
             l, (pthread_rwlock_t *l, const struct timespec *abstime), (l, abstime))
LOCK_WRAPPER(pthread_rwlock_timedwrlock, FR_WAIT_RWLOCK_TIMEDWRLOCK, REAL(pthread_rwlock_trywrlock),
             l, (pthread_rwlock_t *l, const struct timespec *abstime), (l, abstime))

/* sem_try - sem_trywait as a LOCK_WRAPPER try: 0 taken, -1 the error the
 * wait would give too (its errno), EBUSY it would wait (errno as it came).
 * sem_wait is a cancellation point even when it does not block (glibc
 * checks first): so is the wrapper, before its try. */
static inline int sem_try(sem_t *s) {
        pthread_testcancel();
        int saved = errno;
        if (REAL(sem_trywait)(s) == 0)
                return 0;
        if (errno != EAGAIN)
                return -1;
        errno = saved;
        return EBUSY;
}

LOCK_WRAPPER(sem_wait, FR_WAIT_SEM_WAIT, sem_try, s, (sem_t *s), (s))
LOCK_WRAPPER(sem_timedwait, FR_WAIT_SEM_TIMEDWAIT, sem_try, s,
             (sem_t *s, const struct timespec *abstime), (s, abstime))

/* ---- calls that always wait ------------------------------------------------------ */

int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m) {
        struct fr_thread *t = wait_thread_adopt();
        WAIT(t, FR_WAIT_COND_WAIT, c, false);
        return REAL(pthread_cond_wait)(c, m);
}

int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *abstime) {
        struct fr_thread *t = wait_thread_adopt();
        WAIT(t, FR_WAIT_COND_TIMEDWAIT, c, false);
        return REAL(pthread_cond_timedwait)(c, m, abstime);
}

int nanosleep(const struct timespec *req, struct timespec *rem) {
        struct fr_thread *t = wait_thread();
        WAIT(t, FR_WAIT_NANOSLEEP, ts_ns(req), false);
        return REAL(nanosleep)(req, rem);
}

int clock_nanosleep(clockid_t clock, int flags, const struct timespec *req, struct timespec *rem) {
        struct fr_thread *t = wait_thread();
        WAIT(t, FR_WAIT_CLOCK_NANOSLEEP, flags & TIMER_ABSTIME ? 0 : ts_ns(req), false);
        return REAL(clock_nanosleep)(clock, flags, req, rem);
}

int usleep(useconds_t us) {
        struct fr_thread *t = us ? wait_thread_adopt() : NULL;
        WAIT(t, FR_WAIT_USLEEP, (uint64_t)us * 1000u, false);
        return REAL(usleep)(us);
}

unsigned sleep(unsigned s) {
        struct fr_thread *t = s ? wait_thread() : NULL;
        WAIT(t, FR_WAIT_SLEEP, (uint64_t)s * 1000000000u, false);
        return REAL(sleep)(s);
}

/* ---- calls that may return at once: the coarse clock --------------------------- */

int pthread_join(pthread_t th, void **ret) {
        struct fr_thread *t = wait_thread_adopt();
        WAIT(t, FR_WAIT_JOIN, th, true);
        return REAL(pthread_join)(th, ret);
}

/* glibc declares poll's fds write-only (access attribute): reading the
 * first fd is not a read of uninitialized memory. */
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

int poll(struct pollfd *fds, nfds_t n, int timeout) {
        struct fr_thread *t = timeout ? wait_thread() : NULL;
        WAIT(t, FR_WAIT_POLL, n ? (uint64_t)(int64_t)fds[0].fd : UINT64_MAX, true);
        return REAL(poll)(fds, n, timeout);
}

int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen) {
        struct fr_thread *t = timeout && n <= fdslen / sizeof *fds ? wait_thread() : NULL;
        WAIT(t, FR_WAIT_POLL, n ? (uint64_t)(int64_t)fds[0].fd : UINT64_MAX, true);
        return REAL(__poll_chk)(fds, n, timeout, fdslen);
}

int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *tmo, const sigset_t *mask) {
        struct fr_thread *t = !tmo || tmo->tv_sec || tmo->tv_nsec ? wait_thread() : NULL;
        WAIT(t, FR_WAIT_PPOLL, n ? (uint64_t)(int64_t)fds[0].fd : UINT64_MAX, true);
        return REAL(ppoll)(fds, n, tmo, mask);
}

int select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv) {
        struct fr_thread *t = !tv || tv->tv_sec || tv->tv_usec ? wait_thread() : NULL;
        WAIT(t, FR_WAIT_SELECT, n, true);
        return REAL(select)(n, r, w, e, tv);
}

int pselect(int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *tmo,
            const sigset_t *mask) {
        struct fr_thread *t = !tmo || tmo->tv_sec || tmo->tv_nsec ? wait_thread() : NULL;
        WAIT(t, FR_WAIT_PSELECT, n, true);
        return REAL(pselect)(n, r, w, e, tmo, mask);
}

int epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout) {
        struct fr_thread *t = timeout ? wait_thread_adopt() : NULL;
        WAIT(t, FR_WAIT_EPOLL_WAIT, epfd, true);
        return REAL(epoll_wait)(epfd, ev, max, timeout);
}

int epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout, const sigset_t *mask) {
        struct fr_thread *t = timeout ? wait_thread_adopt() : NULL;
        WAIT(t, FR_WAIT_EPOLL_PWAIT, epfd, true);
        return REAL(epoll_pwait)(epfd, ev, max, timeout, mask);
}

#define FD_WRAPPER(ret, name, call, params, args)                                                  \
        ret name params {                                                                          \
                struct fr_thread *t = wait_thread();                                               \
                WAIT(t, call, fd, true);                                                           \
                return REAL(name) args;                                                            \
        }

FD_WRAPPER(ssize_t, read, FR_WAIT_READ, (int fd, void *buf, size_t n), (fd, buf, n))
FD_WRAPPER(ssize_t, __read_chk, FR_WAIT_READ, (int fd, void *buf, size_t n, size_t buflen),
           (fd, buf, n, buflen))
FD_WRAPPER(ssize_t, readv, FR_WAIT_READV, (int fd, const struct iovec *iov, int n), (fd, iov, n))
FD_WRAPPER(ssize_t, recv, FR_WAIT_RECV, (int fd, void *buf, size_t n, int flags),
           (fd, buf, n, flags))
FD_WRAPPER(ssize_t, __recv_chk, FR_WAIT_RECV, (int fd, void *buf, size_t n, size_t buflen, int flags),
           (fd, buf, n, buflen, flags))
FD_WRAPPER(ssize_t, recvfrom, FR_WAIT_RECVFROM,
           (int fd, void *buf, size_t n, int flags, struct sockaddr *a, socklen_t *alen),
           (fd, buf, n, flags, a, alen))
FD_WRAPPER(ssize_t, __recvfrom_chk, FR_WAIT_RECVFROM,
           (int fd, void *buf, size_t n, size_t buflen, int flags, struct sockaddr *a, socklen_t *alen),
           (fd, buf, n, buflen, flags, a, alen))
FD_WRAPPER(ssize_t, recvmsg, FR_WAIT_RECVMSG, (int fd, struct msghdr *m, int flags), (fd, m, flags))
FD_WRAPPER(int, accept, FR_WAIT_ACCEPT, (int fd, struct sockaddr *a, socklen_t *alen), (fd, a, alen))
FD_WRAPPER(int, accept4, FR_WAIT_ACCEPT4, (int fd, struct sockaddr *a, socklen_t *alen, int flags),
           (fd, a, alen, flags))
FD_WRAPPER(int, connect, FR_WAIT_CONNECT, (int fd, const struct sockaddr *a, socklen_t alen),
           (fd, a, alen))
FD_WRAPPER(ssize_t, write, FR_WAIT_WRITE, (int fd, const void *buf, size_t n), (fd, buf, n))
FD_WRAPPER(ssize_t, writev, FR_WAIT_WRITEV, (int fd, const struct iovec *iov, int n), (fd, iov, n))
FD_WRAPPER(ssize_t, send, FR_WAIT_SEND, (int fd, const void *buf, size_t n, int flags),
           (fd, buf, n, flags))
FD_WRAPPER(ssize_t, sendto, FR_WAIT_SENDTO,
           (int fd, const void *buf, size_t n, int flags, const struct sockaddr *a, socklen_t alen),
           (fd, buf, n, flags, a, alen))
FD_WRAPPER(ssize_t, sendmsg, FR_WAIT_SENDMSG, (int fd, const struct msghdr *m, int flags),
           (fd, m, flags))

pid_t waitpid(pid_t pid, int *status, int options) {
        struct fr_thread *t = options & WNOHANG ? NULL : wait_thread();
        WAIT(t, FR_WAIT_WAITPID, (uint64_t)(int64_t)pid, true);
        return REAL(waitpid)(pid, status, options);
}

pid_t wait4(pid_t pid, int *status, int options, struct rusage *ru) {
        struct fr_thread *t = options & WNOHANG ? NULL : wait_thread();
        WAIT(t, FR_WAIT_WAIT4, (uint64_t)(int64_t)pid, true);
        return REAL(wait4)(pid, status, options, ru);
}

int flock(int fd, int op) {
        struct fr_thread *t = op & LOCK_NB ? NULL : wait_thread();
        WAIT(t, FR_WAIT_FLOCK, fd, true);
        return REAL(flock)(fd, op);
}

/* fcntl's third argument is an int or a pointer: both travel in one
 * register, and glibc itself reads it as a pointer. fcntl64 is the same
 * call under its other name. */
static inline bool fcntl_waits(int cmd) { return cmd == F_SETLKW || cmd == F_OFD_SETLKW; }

#define FCNTL_WRAPPER(name)                                                                        \
        int name(int fd, int cmd, ...) {                                                           \
                va_list ap;                                                                        \
                va_start(ap, cmd);                                                                 \
                void *arg = va_arg(ap, void *);                                                    \
                va_end(ap);                                                                        \
                struct fr_thread *t = fcntl_waits(cmd) ? wait_thread() : NULL;                     \
                WAIT(t, FR_WAIT_FCNTL_SETLKW, fd, true);                                           \
                return REAL(name)(fd, cmd, arg);                                                   \
        }

FCNTL_WRAPPER(fcntl)
FCNTL_WRAPPER(fcntl64)

/* syscall(SYS_futex, ...): the waiting operations only. The six argument
 * registers are passed on as they came. */
static inline bool futex_waits(long op) {
        switch (op & FUTEX_CMD_MASK) {
        case FUTEX_WAIT:
        case FUTEX_WAIT_BITSET:
        case FUTEX_LOCK_PI:
        case FUTEX_WAIT_REQUEUE_PI:
                return true;
        }
        return false;
}

/* syscall_slow - a futex wait (or a call before the real syscall was
 * found): recorded, then passed on. Six arguments as the kernel takes them;
 * like glibc's own syscall, the sixth is read whether the caller gave it or
 * not. */
__attribute__((visibility("hidden"), used)) long fr__syscall_slow(long nr, long a1, long a2, long a3,
                                                                  long a4, long a5, long a6) {
        struct fr_thread *t = nr == SYS_futex && futex_waits(a2) ? wait_thread_adopt() : NULL;
        WAIT(t, FR_WAIT_FUTEX, a1, true);
        return REAL(syscall)(nr, a1, a2, a3, a4, a5, a6);
}

#if defined(__x86_64__)
/* Any other call goes on to the real syscall untouched, registers and stack
 * as the caller left them: a C body would have to read six variadic
 * arguments the caller may not have passed (AddressSanitizer sees that). */
__attribute__((naked)) long syscall(long nr __attribute__((unused)), ...) {
        __asm__ volatile("cmpq %[futex], %%rdi\n\t"
                         "je fr__syscall_slow\n\t"
                         "movq real_syscall(%%rip), %%rax\n\t"
                         "testq %%rax, %%rax\n\t"
                         "jz fr__syscall_slow\n\t"
                         "jmpq *%%rax\n\t"
                         :
                         : [futex] "i"((long)SYS_futex));
}
#else
long syscall(long nr, ...) {
        va_list ap;
        va_start(ap, nr);
        long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
        long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
        va_end(ap);
        return fr__syscall_slow(nr, a1, a2, a3, a4, a5, a6);
}
#endif

/* ---- stacks ------------------------------------------------------------------------ */

/* Our wrappers, each symbolized under the name of the call it wraps, by
 * hidden aliases: their addresses are fixed at link time, where the exported
 * names would cost a symbol lookup each at every process's start. */
#define LEAF_LIST(X)                                              \
        X(FR_WAIT_MUTEX_LOCK, pthread_mutex_lock)                 \
        X(FR_WAIT_MUTEX_TIMEDLOCK, pthread_mutex_timedlock)       \
        X(FR_WAIT_COND_WAIT, pthread_cond_wait)                   \
        X(FR_WAIT_COND_TIMEDWAIT, pthread_cond_timedwait)         \
        X(FR_WAIT_RWLOCK_RDLOCK, pthread_rwlock_rdlock)           \
        X(FR_WAIT_RWLOCK_WRLOCK, pthread_rwlock_wrlock)           \
        X(FR_WAIT_RWLOCK_TIMEDRDLOCK, pthread_rwlock_timedrdlock) \
        X(FR_WAIT_RWLOCK_TIMEDWRLOCK, pthread_rwlock_timedwrlock) \
        X(FR_WAIT_JOIN, pthread_join)                             \
        X(FR_WAIT_SEM_WAIT, sem_wait)                             \
        X(FR_WAIT_SEM_TIMEDWAIT, sem_timedwait)                   \
        X(FR_WAIT_POLL, poll)                                     \
        X(FR_WAIT_PPOLL, ppoll)                                   \
        X(FR_WAIT_SELECT, select)                                 \
        X(FR_WAIT_PSELECT, pselect)                               \
        X(FR_WAIT_EPOLL_WAIT, epoll_wait)                         \
        X(FR_WAIT_EPOLL_PWAIT, epoll_pwait)                       \
        X(FR_WAIT_NANOSLEEP, nanosleep)                           \
        X(FR_WAIT_CLOCK_NANOSLEEP, clock_nanosleep)               \
        X(FR_WAIT_USLEEP, usleep)                                 \
        X(FR_WAIT_SLEEP, sleep)                                   \
        X(FR_WAIT_READ, read)                                     \
        X(FR_WAIT_READV, readv)                                   \
        X(FR_WAIT_RECV, recv)                                     \
        X(FR_WAIT_RECVFROM, recvfrom)                             \
        X(FR_WAIT_RECVMSG, recvmsg)                               \
        X(FR_WAIT_ACCEPT, accept)                                 \
        X(FR_WAIT_ACCEPT4, accept4)                               \
        X(FR_WAIT_CONNECT, connect)                               \
        X(FR_WAIT_WRITE, write)                                   \
        X(FR_WAIT_WRITEV, writev)                                 \
        X(FR_WAIT_SEND, send)                                     \
        X(FR_WAIT_SENDTO, sendto)                                 \
        X(FR_WAIT_SENDMSG, sendmsg)                               \
        X(FR_WAIT_WAITPID, waitpid)                               \
        X(FR_WAIT_WAIT4, wait4)                                   \
        X(FR_WAIT_FLOCK, flock)                                   \
        X(FR_WAIT_FCNTL_SETLKW, fcntl)                            \
        X(FR_WAIT_FUTEX, syscall)
#define LEAF_ALIAS(call, name)                                                                     \
        extern __typeof__(name) fr__leaf_##name                                                    \
                __attribute__((alias(#name), copy(name), visibility("hidden")));
LEAF_LIST(LEAF_ALIAS)

uintptr_t fr__wait_leaf(unsigned call) {
#define LEAF_ENTRY(call, name) [call] = fr__leaf_##name,
        static const void *const leaf[FR_WAIT_CALL_MAX + 1] = {LEAF_LIST(LEAF_ENTRY)};
        return call <= FR_WAIT_CALL_MAX ? (uintptr_t)leaf[call] : 0;
}
