/* flightrec - a continuous flight recorder for native Linux processes.
 *
 * Link with `pkg-config --cflags --libs flightrec`, or load an unmodified
 * program with LD_PRELOAD=libflightrec.so (the agent then starts itself from the
 * environment). The recorder keeps, per thread, timestamped events in a ring of
 * the last N generations (1 s each by default); a snapshot hands them over.
 *
 * Every function here is safe to call from any thread at any time, before
 * fr_start or after fr_stop too (then it does nothing), and never blocks on the
 * daemon. Names (tasks, regions, categories, thread names) are copied; at most
 * 4096 bytes of each string are kept. */
#ifndef FLIGHTREC_H
#define FLIGHTREC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Recorder settings. A zero field takes the default, which is read from the
 * environment variable named beside it, else the value shown. */
struct fr_config {
        const char *socket_path;  /* FLIGHTREC_SOCKET, "/run/flightrec/agent.sock" */
        unsigned hz;              /* FLIGHTREC_HZ: CPU samples per CPU-second, 100 (0 = off) */
        unsigned period_ms;       /* FLIGHTREC_PERIOD_MS: generation length, 1000 */
        unsigned generations;     /* FLIGHTREC_GENERATIONS: complete generations kept, 10 */
        size_t max_bytes;         /* FLIGHTREC_MAX_BYTES: bytes kept in the ring, 64 MiB */
        const char *dir;          /* FLIGHTREC_DIR: local snapshots, "/var/tmp/flightrec" */
        int sampling_off;         /* 1: no CPU sampling whatever hz says (for tests) */
        /* Appended (issue 15). */
        unsigned min_age_ms;      /* FLIGHTREC_MIN_AGE_MS: history kept at least, in whole
                                   * generations even beyond `generations`; max_bytes wins
                                   * (counted in fr_stats.min_age_cuts). 0 = none */
};

/* fr_start - start recording in this process.
 * cfg NULL: everything from the environment (FLIGHTREC_*), validated.
 * Returns 0, -EALREADY if already started, -EINVAL for a bad setting (a message
 * naming it goes to stderr), or another negative errno (no memory, no thread). */
int fr_start(const struct fr_config *cfg);

/* fr_stop - stop recording and free the recorder. Retained data is dropped;
 * take a snapshot first if you want it. Threads inside an fr_ call finish it. */
void fr_stop(void);

/* fr_task_begin - begin a logical task (a request, a job) that may span
 * threads. parent_task: 0 for none. Returns the task id (never 0 while
 * recording; 0 when the recorder is off). */
uint64_t fr_task_begin(uint64_t parent_task, const char *name);
/* fr_task_end - end a task; any thread may end it. */
void fr_task_end(uint64_t task);

/* fr_region_begin / fr_region_end - a named span of work on this thread,
 * within task (0: none). Regions nest; an end names the region it closes. An
 * end that matches an outer region closes the inner ones too; an end that
 * matches none is counted as lost. At most 64 open regions per thread are
 * recorded, deeper ones are counted. Hot path: tens of nanoseconds. */
void fr_region_begin(uint64_t task, const char *name);
void fr_region_end(uint64_t task, const char *name);

/* fr_log - a timestamped message in a category (both copied; messages longer
 * than 4096 bytes are truncated). */
void fr_log(uint64_t task, const char *category, const char *message);

/* fr_thread_name - name the calling thread in the trace. */
void fr_thread_name(const char *name);

/* fr_snapshot - ask for a snapshot of the retained generations. Without a
 * daemon, it is written to FLIGHTREC_DIR as <comm>-<pid>-<UTC>.trace.lz4.
 * reason: free text kept in the trace header (NULL: "fr_snapshot").
 * Returns 0 or a negative errno. */
int fr_snapshot(const char *reason);

/* fr_trigger - fire the named trigger `name` of the daemon's flightrecd.conf
 * ([trigger NAME]; "default" is the built-in one fr_snapshot uses), for this
 * process: a program says "latency SLO breached" and the snapshot, taken
 * that trigger's `after` later, holds the seconds after the moment too. The
 * trigger's max_per_hour, cooldown and scope apply; a refusal is in the
 * daemon's log and `flightrecctl status`. Returns at once, without waiting
 * for the snapshot: 0 (queued for the daemon), -ENOTCONN (no daemon; no local
 * snapshot is written), -EAGAIN (16 triggers are queued already), -EINVAL
 * (not recording; name NULL, empty or longer than 63 bytes).
 * reason: free text kept in the trace header (NULL: "fr_trigger"). */
int fr_trigger(const char *name, const char *reason);

/* fr_write_snapshot - force a generation advance and write the header and
 * every retained complete generation to fd (uncompressed trace format).
 * Returns 0, -EINVAL when not recording, or the negative errno of the write. */
int fr_write_snapshot(int fd);

/* Counters since fr_start, for status displays and tests. */
struct fr_stats {
        uint64_t generations;      /* completed */
        uint64_t lost_generations; /* dropped whole: out of memory */
        uint64_t lost_events;      /* events dropped: buffer memory exhausted */
        uint64_t lost_regions;     /* region begins too deep, or ends matching none */
        uint64_t samples_taken;    /* CPU-sample signals handled for recorded threads */
        uint64_t samples;          /* of those: recorded into a generation (drained) */
        uint64_t lost_samples;     /* of those: dropped, sample buffer full */
        unsigned sampler;          /* 0 none, 1 perf task-clock, 2 CPU timer */
        unsigned hz;               /* sampling rate asked for */
        /* Being a good guest (issue 16; see docs/promises.md). */
        unsigned threads_perf;     /* threads sampled by a perf event now */
        unsigned threads_timer;    /* threads sampled by a CPU timer now */
        unsigned fd_budget;        /* perf descriptors allowed now (RLIMIT_NOFILE / 16) */
        unsigned seccomp;          /* 1: a seccomp filter was seen (timers from then on) */
        uint64_t sampler_rearms;   /* perf descriptors found closed or replaced, re-armed */
        uint64_t fd_checks;        /* identity checks of our descriptors made */
        uint64_t fd_check_ns;      /* CPU time they took, in all */
        /* Appended in round 2: the unwinder (docs/agent-design.md, "Unwinding"). */
        unsigned unwind;               /* 0 frame pointers, 1 auto, 2 dwarf (FLIGHTREC_UNWIND) */
        uint64_t unwind_table_bytes;   /* memory of the unwind tables built */
        uint64_t unwind_objects;       /* loaded objects known */
        uint64_t unwind_tables;        /* of those: with a table */
        uint64_t unwind_rejected;      /* objects whose .eh_frame was refused (frame pointers there) */
        uint64_t unwind_walks;         /* stacks unwound by the handler */
        uint64_t unwind_root;          /* of those: ended at the thread's root frame */
        uint64_t handler_p50_ns;       /* the SIGPROF handler's own time, entry to exit */
        uint64_t handler_p99_ns;
        uint64_t unwind_p50_ns;        /* of that: the stack walk */
        uint64_t unwind_p99_ns;
        /* Blocking calls (issue 11). */
        uint64_t blocked_walked;   /* blocked threads the advancer listed or tried to, in all */
        uint64_t blocked_walk_ns;  /* time it spent on them (CLOCK_MONOTONIC ns), in all */
        /* Appended (issue 15): retention by age. */
        uint64_t min_age_cuts;         /* generation pushes where max_bytes kept less than
                                        * min_age_ms (each noted in the trace, category
                                        * "flightrec") */
};

/* fr_get_stats - the counters above. samples_taken counts at signal time; the
 * two others when the advancer drains a generation, so after a snapshot of
 * an idle process samples + lost_samples == samples_taken. Returns 0, or
 * -EINVAL when not recording. */
int fr_get_stats(struct fr_stats *ret);

/* A traceback hook: called in the SIGPROF handler with the interrupted
 * context (a ucontext_t *). It may store up to max frames (innermost first:
 * program counters of code the frame-pointer unwinder cannot see, e.g. an
 * interpreter's or a JIT's) in pcs and returns how many it stored. They go
 * before the unwound frames of the sample. It runs in a signal handler: only
 * async-signal-safe code, no locks, no allocation. */
typedef size_t (*fr_traceback_fn)(const void *ucontext, uintptr_t *pcs, size_t max, void *arg);

/* fr_set_traceback - install (fn non-NULL) or remove (NULL) the hook, for
 * every thread. arg is passed to fn. Call it rarely (each call keeps a few
 * bytes for the process lifetime, so that a handler still running the old
 * hook never reads freed memory). Returns 0 or -ENOMEM. */
int fr_set_traceback(fr_traceback_fn fn, void *arg);

#ifdef __cplusplus
}
#endif

#endif
