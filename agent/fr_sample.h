/* State shared by the sampler's setup (fr_sample.c) and its signal handler
 * (fr_sample_signal.c): the tables that map a signal to a thread record, the
 * application's chained handler, the traceback hook, the handler's own time. */
#ifndef FR_SAMPLE_H
#define FR_SAMPLE_H

#include <signal.h>

#include "fr_internal.h"

#define FD_TABLE_MAX (1u << 16)    /* perf fds above this fall back to a timer */
#define TIMER_TABLE_SIZE (1u << 16)
#define TIMER_MAGIC 0x46520000     /* high half of sival_int for our timers */

struct fr_sampler {
        bool installed;             /* our SIGPROF handler (stays for the process) */
        /* The application's handler, chained. Two slots so that replacing it
         * never tears the one a running handler reads. */
        struct sigaction previous[2];
        _Atomic int prev_slot;
        _Atomic unsigned kind;      /* enum fr_sampler_kind (the advancer may switch to timers) */
        unsigned hz;
        uint64_t period_ns;
        _Atomic(struct fr_thread *) *by_fd;    /* perf fd -> record */
        _Atomic(struct fr_thread *) *by_timer; /* timer slot -> record */
        size_t nfd;
        pthread_mutex_t timer_lock;            /* slot allocation */
        _Atomic uint64_t taken_by_gone;        /* samples taken by threads since freed */
        unsigned next_slot;
        _Atomic unsigned perf_fds;             /* perf descriptors held (the budget's count) */
        _Atomic unsigned timers;               /* timer samplers held */
        /* Written by the advancer, read by fr_get_stats. */
        _Atomic uint64_t rearms, checks, check_ns;
        /* A handler met a thread whose stack bounds are unknown (adopted
         * from /proc): the advancer looks them up within 20 ms. */
        _Atomic bool bounds_wanted;
};
extern struct fr_sampler fr__sp;

struct fr_hook {
        fr_traceback_fn fn;
        void *arg;
        struct fr_hook *older; /* every hook ever set stays reachable */
};
extern _Atomic(struct fr_hook *) fr__traceback;

extern __thread pid_t fr__my_tid FR_TLS; /* 0: not known yet (reset in a forked child) */

/* fr__on_sigprof - the SIGPROF handler. */
void fr__on_sigprof(int sig, siginfo_t *si, void *uc);

/* The handler's own time in clock ticks, [FR_HT_HANDLER] entry to exit (with
 * the perf event's read and re-arm syscalls), [FR_HT_UNWIND] the stack walk
 * alone: log-linear histograms (4 buckets per power of two) per depth class
 * (1-4, 5-8, 9-16, 17-32, 33-64, 65+ frames). Relaxed counters. */
#define FR_HT_HANDLER 0
#define FR_HT_UNWIND 1
#define FR_HT_DEPTHS 6
#define FR_HT_BUCKETS 192
extern _Atomic uint64_t fr__handler_hist[2][FR_HT_DEPTHS][FR_HT_BUCKETS];
/* fr__ht_bucket_ticks - the upper bound (ticks) of bucket b. */
uint64_t fr__ht_bucket_ticks(unsigned b);

#endif
