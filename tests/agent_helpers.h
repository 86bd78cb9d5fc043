/* Helpers for the agent's tests: take a snapshot into memory and read it with
 * the one reader, collecting what the checks need. */
#ifndef FR_AGENT_HELPERS_H
#define FR_AGENT_HELPERS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "trace_reader.h"

/* AH_UNDER_TSAN - 1 in a ThreadSanitizer build: TSan defers signals to its
 * own safe points, so sampling checks that depend on timing are looser. */
#if defined(__SANITIZE_THREAD__)
#define AH_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define AH_UNDER_TSAN 1
#endif
#endif
#ifndef AH_UNDER_TSAN
#define AH_UNDER_TSAN 0
#endif

/* One event, copied out of the reader's callback. */
struct ah_event {
        uint64_t gen, time, tid, task;
        uint64_t lost_kind, count; /* LOST */
        uint8_t type;
        char name[64], category[64], message[128];
};

struct ah_trace {
        int err;               /* fr_trace_read's result */
        char errmsg[256];
        size_t ngens;
        uint64_t first_gen, last_gen;
        uint64_t gen_start[4096], gen_end[4096]; /* per delivered generation */
        uint64_t gen_start_ns[4096], gen_end_ns[4096]; /* the same on CLOCK_MONOTONIC */
        size_t nevents, cap;
        struct ah_event *events;
        size_t max_status_regions; /* deepest region stack in any STATUS */
        char status_region[64];    /* innermost region of that STATUS */
        size_t status_threads_max;
        uint8_t *raw;          /* the snapshot bytes */
        size_t rawlen;
};

/* ah_snapshot - fr_write_snapshot into a memfd, then read and collect it.
 * Returns fr_write_snapshot's result; the reader's in t->err. */
int ah_snapshot(struct ah_trace *t);
/* ah_read - read bytes already in t->raw. */
void ah_read(struct ah_trace *t);
void ah_free(struct ah_trace *t);
/* ah_count - events of a type (0: any) whose name (or category) is name (NULL: any). */
size_t ah_count(const struct ah_trace *t, uint8_t type, const char *name);

/* ah_thread_cpu - the calling thread's CPU time in seconds. Inline, so that
 * the CPU hogs that poll it keep their code (and samples) to themselves. */
static inline double ah_thread_cpu(void) {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A timed piece of work, for ah_work_thread. */
struct ah_work {
        void (*fn)(double seconds); /* e.g. a CPU hog */
        double seconds;
        double cpu; /* out: the CPU seconds fn took */
        pid_t tid;  /* out: the thread that ran it */
};
/* ah_work_thread - a pthread start routine: runs w->fn(w->seconds) on the
 * new thread and measures it. */
void *ah_work_thread(void *w);

#endif
