/* pthread_create interposition: a thread created while the agent records is
 * registered (and its CPU sampler armed) before its start routine runs, so
 * its very first instructions are sampled. Threads created otherwise (raw
 * clone, or before the agent started) are found by the advancer's scan of
 * /proc/self/task within one period. Works with LD_PRELOAD and when the
 * application links libflightrec before libc. */
#include <dlfcn.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "fr_internal.h"

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

struct start {
        void *(*fn)(void *);
        void *arg;
};

static void *trampoline(void *p) {
        struct start s = *(struct start *)p;
        free(p);
        fr__thread_self(); /* registers: THREAD_START, sampler armed */
        return s.fn(s.arg);
}

FR_EVERY_PROCESS static create_fn real_create(void) {
        FR_EVERY_PROCESS_DATA static _Atomic(create_fn) real;
        create_fn f = atomic_load_explicit(&real, memory_order_acquire);
        if (!f) {
                f = (create_fn)dlsym(RTLD_NEXT, "pthread_create");
                atomic_store_explicit(&real, f, memory_order_release);
        }
        return f;
}

/* first_is_ours - whether the application's calls reach our pthread_create
 * first. When another interposer comes first (a sanitizer runtime), it calls
 * us as its "real" pthread_create with a start routine that must run before
 * any code of ours on the new thread: then we pass through, and the new
 * thread is found by the scan of /proc/self/task instead. */
static bool first_is_ours(void) {
        static _Atomic int known; /* 0 unknown, 1 yes, 2 no */
        int k = atomic_load_explicit(&known, memory_order_relaxed);
        if (k == 0) {
                Dl_info found, self;
                void *f = dlsym(RTLD_DEFAULT, "pthread_create");
                k = f && dladdr(f, &found) && dladdr((void *)real_create, &self) &&
                                    found.dli_fbase == self.dli_fbase
                            ? 1
                            : 2;
                atomic_store_explicit(&known, k, memory_order_relaxed);
        }
        return k == 1;
}

FR_EVERY_PROCESS int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*fn)(void *), void *arg) {
        create_fn create = real_create();
        if (!create)
                return EAGAIN;
        /* Registered even when not sampling: its blocking calls are recorded. */
        if (atomic_load_explicit(&fr__running, memory_order_relaxed) && first_is_ours()) {
                struct start *s = malloc(sizeof *s);
                if (s) {
                        *s = (struct start){fn, arg};
                        int r = create(thread, attr, trampoline, s);
                        if (r)
                                free(s);
                        return r;
                }
        }
        int r = create(thread, attr, fn, arg);
        if (r == 0 && atomic_load_explicit(&fr__running, memory_order_relaxed) && fr__sampler_kind())
                fr__advancer_poke(); /* not wrapped: the advancer adopts it at once */
        return r;
}

/* pthread_setname_np on the calling thread is also a THREAD_NAME event, so
 * that an unmodified program's thread names reach the trace (another
 * thread's new name is seen when that thread is adopted or names itself). */
typedef int (*setname_fn)(pthread_t, const char *);

int pthread_setname_np(pthread_t thread, const char *name) {
        static _Atomic(setname_fn) real;
        setname_fn f = atomic_load_explicit(&real, memory_order_acquire);
        if (!f) {
                f = (setname_fn)dlsym(RTLD_NEXT, "pthread_setname_np");
                atomic_store_explicit(&real, f, memory_order_release);
        }
        if (!f)
                return ENOSYS;
        int r = f(thread, name);
        if (r == 0 && atomic_load_explicit(&fr__running, memory_order_relaxed) &&
            pthread_equal(thread, pthread_self()) && fr__self)
                fr_thread_name(name);
        return r;
}

/* The agent's own threads, by tid, so the scan of /proc/self/task never
 * adopts them (even before they are named). */
#define MAX_INTERNAL 8
static _Atomic pid_t internal_tids[MAX_INTERNAL];

bool fr__thread_is_internal(pid_t tid) {
        for (int i = 0; i < MAX_INTERNAL; i++)
                if (atomic_load_explicit(&internal_tids[i], memory_order_relaxed) == tid)
                        return true;
        return false;
}

struct internal_start {
        void *(*fn)(void *);
        void *arg;
        _Atomic int registered; /* the new thread's tid is in internal_tids */
        bool async;             /* nobody waits: the thread frees this */
};

static void *internal_trampoline(void *p) {
        struct internal_start *start = p;
        void *(*fn)(void *) = start->fn;
        void *arg = start->arg;
        bool async = start->async;
        pid_t tid = gettid();
        int slot = -1;
        for (int i = 0; i < MAX_INTERNAL && slot < 0; i++) {
                pid_t none = 0;
                if (atomic_compare_exchange_strong(&internal_tids[i], &none, tid))
                        slot = i;
        }
        if (async)
                free(start);
        else
                atomic_store_explicit(&start->registered, 1, memory_order_release); /* creator frees it */
        void *r = fn(arg);
        if (slot >= 0)
                atomic_store(&internal_tids[slot], 0);
        return r;
}

static int create_internal(pthread_t *thread, void *(*fn)(void *), void *arg, bool async) {
        /* The first pthread_create in the lookup order, unless it is ours: a
         * sanitizer runtime loaded before us must see every thread start. */
        create_fn create = (create_fn)dlsym(RTLD_DEFAULT, "pthread_create");
        Dl_info found, self;
        if (!create || !dladdr((void *)create, &found) || !dladdr((void *)fr__thread_create, &self) ||
            found.dli_fbase == self.dli_fbase)
                create = real_create();
        if (!create)
                return EAGAIN;
        /* The agent's threads take no signals (SIGPROF included): block them
         * all across the creation, the new thread inherits the mask. */
        struct internal_start *s = malloc(sizeof *s);
        if (!s)
                return ENOMEM;
        *s = (struct internal_start){fn, arg, 0, async};
        sigset_t all, saved;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &saved);
        if (async) {
                int r = create(thread, NULL, internal_trampoline, s);
                pthread_sigmask(SIG_SETMASK, &saved, NULL);
                if (r)
                        free(s);
                return r;
        }
        /* The registry lock keeps the sampler's scan from adopting the new
         * thread between its birth and the registration of its tid. */
        fr__threads_lock();
        int r = create(thread, NULL, internal_trampoline, s);
        while (r == 0 && !atomic_load_explicit(&s->registered, memory_order_acquire))
                sched_yield();
        fr__threads_unlock();
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
        free(s);
        return r;
}

int fr__thread_create(pthread_t *thread, void *(*fn)(void *), void *arg) {
        return create_internal(thread, fn, arg, false);
}

int fr__thread_create_async(pthread_t *thread, void *(*fn)(void *), void *arg) {
        return create_internal(thread, fn, arg, true);
}
