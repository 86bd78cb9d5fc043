/* The one reader of the flightrec trace format (docs/trace-format.md), used by
 * the daemon, flightrecctl and the tests.
 *
 * fr_trace_read() walks a whole trace in memory, one generation at a time. It
 * validates framing (magic, version, batch kinds, bounded lengths, consecutive
 * generations, END counts) and state (string/stack ids defined, region ends
 * matching the thread's innermost open region, times increasing and inside the
 * generation, thread starts and exits, STATUS agreeing with the previous
 * generation). It never reads outside the input and never crashes, whatever the
 * bytes; on the first failure it stops and describes it. */
#ifndef FR_TRACE_READER_H
#define FR_TRACE_READER_H

#include <stddef.h>
#include <stdint.h>

struct fr_trace_header {
        uint64_t version;
        uint64_t pid;
        const char *comm;   /* NUL-terminated copies, valid during the read */
        const char *exe;
        const char *reason;
        uint64_t flags;     /* FR_HEADER_POSTMORTEM */
};

/* One decoded event; names are resolved (NULL where the id was 0). */
struct fr_event {
        uint64_t time;      /* ticks */
        uint64_t tid;
        uint8_t type;       /* enum fr_event_type */
        uint64_t task;      /* TASK_*: the task; REGION_*, LOG: the task argument */
        uint64_t parent;    /* TASK_BEGIN */
        const char *name;   /* TASK_BEGIN, REGION_*, THREAD_NAME */
        const char *category; /* LOG */
        const char *message;  /* LOG: NUL-terminated copy */
        size_t message_len;
        uint64_t lost_kind; /* LOST */
        uint64_t count;     /* LOST */
        /* BLOCK: a wait that ended at `time`; task is the thread's innermost
         * task at the call (0 = none), region its innermost region. */
        unsigned wait_call;   /* enum fr_wait_call */
        uint64_t wait_object; /* what it waited on (see enum fr_wait_call) */
        uint64_t wait_ns;     /* how long */
        const char *region;   /* NULL: none */
        const uint64_t *frames; /* frames[0] is the wrapped call, then return addresses */
        uint32_t nframes;
};

/* A thread inside a blocking call at the end of a generation (BLOCKED). */
struct fr_blocked {
        uint64_t tid;
        unsigned call;        /* enum fr_wait_call */
        uint64_t object;
        uint64_t holder;      /* tid owning the mutex / writing the rwlock; 0: unknown */
        uint64_t waited_ns;   /* since the call, at the observation */
        uint64_t task;        /* innermost task at the call, 0: none */
        const char *region;   /* NULL: none */
        const uint64_t *frames; /* NULL when the stack could not be taken */
        uint32_t nframes;
};

struct fr_sample {
        uint64_t time;      /* ticks */
        uint64_t tid;
        uint64_t weight;
        uint64_t task;
        const char *region; /* NULL: none */
        const uint64_t *frames; /* frames[0] is the leaf PC; others return addresses */
        uint32_t nframes;
};

struct fr_map {
        uint64_t start, limit, offset;
        const char *path;
        const uint8_t *build_id;
        size_t build_id_len;
};

struct fr_region_state {
        uint64_t task;
        const char *name;
};

struct fr_thread_state {
        uint64_t tid;
        const char *name;   /* NULL: unnamed */
        uint32_t nregions;
        const struct fr_region_state *regions; /* outermost first */
};

struct fr_task_state {
        uint64_t id, parent;
        const char *name;
};

/* The fatal signal of a dead process (CRASH batch of its partial generation). */
struct fr_crash {
        uint64_t time, tid;
        uint64_t signo;
        int64_t code;       /* si_code */
        uint64_t addr;      /* si_addr */
        uint64_t flags;     /* FR_CRASH_OVERFLOW, FR_CRASH_SCANNED */
        const char *thread_name;
        uint32_t nregs, nframes;
        const uint64_t *regs;   /* x86-64: ucontext gregs order (REG_R8 = 0 ... REG_RIP = 16) */
        const uint64_t *frames; /* frames[0] is the faulting pc; others return addresses */
};
#define FR_CRASH_OVERFLOW 1u
#define FR_CRASH_SCANNED 2u /* frames past the first found by scanning the stack */

/* One complete, validated generation. Everything it points to is valid only
 * during the callback. */
struct fr_generation {
        uint64_t gen;
        uint64_t start, end;          /* ticks: the generation's span */
        uint64_t ticks_per_second;
        uint64_t mono_ns, real_ns;    /* clocks at `start` */
        uint64_t sampler, sample_hz;
        uint64_t unwind; /* enum fr_unwind_kind */
        /* State at the start of the generation (its STATUS batch). */
        size_t nthreads;
        const struct fr_thread_state *threads;
        size_t ntasks;
        const struct fr_task_state *tasks;
        /* Events of all threads, sorted by time (stable: per-thread order kept). */
        size_t nevents;
        const struct fr_event *events;
        /* Samples of all threads, sorted by time. */
        size_t nsamples;
        const struct fr_sample *samples;
        uint64_t lost_samples; /* samples the agent dropped (buffer full) */
        size_t nmaps;
        const struct fr_map *maps;
        /* Salvaged from a dead process, cut short at the death: only ever the
         * last generation of a trace. */
        int partial;
        const struct fr_crash *crash; /* NULL: none */
        /* Threads blocked at the generation's end (its BLOCKED batch), seen
         * at tick blocked_time. */
        size_t nblocked;
        const struct fr_blocked *blocked;
        uint64_t blocked_time;
};

/* Called once per generation, in order. Return 0 to go on, non-zero to stop
 * the read (fr_trace_read then returns that value). */
typedef int (*fr_generation_cb)(const struct fr_trace_header *hdr, const struct fr_generation *g,
                                void *userdata);

#define FR_READ_ALLOW_PARTIAL_TAIL 1u /* stop quietly at an incomplete last generation */
/* Deliver only THREAD_START, THREAD_NAME, THREAD_EXIT, TASK_BEGIN and
 * BLOCK events (what a profile's labels and off-CPU samples need). Every event is still parsed and its time
 * checked, but the others are neither kept nor sorted, and the region and task
 * state they imply is not replayed, so STATUS is not compared with the
 * previous generation's end. Several times faster on event-heavy traces. */
#define FR_READ_THREAD_EVENTS_ONLY 2u

/* fr_trace_read - validate and decode the trace in data[0..len).
 * Calls cb for each complete generation (cb may be NULL: validate only).
 * Returns 0 when the whole input was valid, the callback's non-zero value if it
 * stopped the read, or -EINVAL (bad data) / -ENOMEM with a message in err
 * (errlen bytes, always NUL-terminated) naming the byte offset and the fault.
 * ret_ngens (may be NULL) receives the number of generations delivered. */
int fr_trace_read(const uint8_t *data, size_t len, unsigned flags, fr_generation_cb cb,
                  void *userdata, size_t *ret_ngens, char *err, size_t errlen);

/* fr_trace_load_file - read a whole trace file into memory, inflating it if it
 * is an LZ4 frame (.trace.lz4). At most max_bytes of decoded data.
 * Returns 0 with *ret_data (free() it) and *ret_len, or a negative errno with a
 * message in err. */
int fr_trace_load_file(const char *path, size_t max_bytes, uint8_t **ret_data, size_t *ret_len,
                       char *err, size_t errlen);

/* fr_wait_call_name - the function name of an enum fr_wait_call value
 * ("pthread_mutex_lock"), "unknown" when out of range. */
const char *fr_wait_call_name(unsigned call);

/* fr_event_type_name - the name of an enum fr_event_type value
 * ("TASK_BEGIN"), "unknown" when out of range (fr_trace_read delivers none). */
const char *fr_event_type_name(uint8_t type);

/* fr_ticks_to_ns - ticks since the generation start, in nanoseconds. */
uint64_t fr_ticks_to_ns(const struct fr_generation *g, uint64_t ticks);

#endif
