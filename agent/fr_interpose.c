/* pthread_create interposition: a thread created while the agent records is
 * registered (and its CPU sampler armed) before its start routine runs, so
 * its very first instructions are sampled. Threads created otherwise (raw
 * clone, or before the agent started) are found by the advancer's scan of
 * /proc/self/task within one period. Works with LD_PRELOAD and when the
 * application links libflightrec before libc. */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>

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

static create_fn real_create(void) {
        static _Atomic(create_fn) real;
        create_fn f = atomic_load_explicit(&real, memory_order_acquire);
        if (!f) {
                f = (create_fn)dlsym(RTLD_NEXT, "pthread_create");
                atomic_store_explicit(&real, f, memory_order_release);
        }
        return f;
}

int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*fn)(void *), void *arg) {
        create_fn create = real_create();
        if (!create)
                return EAGAIN;
        if (atomic_load_explicit(&fr__running, memory_order_relaxed) && fr__sampler_kind()) {
                struct start *s = malloc(sizeof *s);
                if (s) {
                        *s = (struct start){fn, arg};
                        int r = create(thread, attr, trampoline, s);
                        if (r)
                                free(s);
                        return r;
                }
        }
        return create(thread, attr, fn, arg);
}

int fr__thread_create(pthread_t *thread, void *(*fn)(void *), void *arg) {
        create_fn create = real_create();
        if (!create)
                return EAGAIN;
        /* The agent's threads take no signals (SIGPROF included): block them
         * all across the creation, the new thread inherits the mask. */
        sigset_t all, saved;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &saved);
        int r = create(thread, NULL, fn, arg);
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
        return r;
}
