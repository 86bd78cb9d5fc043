/* flightrec trace format, version 1: constants shared by the agent (writer),
 * the reader and the tools.  The format is described in docs/trace-format.md. */
#ifndef FR_TRACE_FORMAT_H
#define FR_TRACE_FORMAT_H

#include <stdint.h>

#define FR_TRACE_MAGIC "FRTRACE\0" /* 8 bytes at offset 0 */
#define FR_TRACE_MAGIC_LEN 8
#define FR_TRACE_VERSION 1

/* Batch kinds: one byte at the start of every batch header. */
enum fr_batch_kind {
        FR_BATCH_CLOCK = 1,   /* clock record: units per second, anchors */
        FR_BATCH_STATUS = 2,  /* threads, open regions and open tasks at generation start */
        FR_BATCH_EVENTS = 3,  /* one thread's events */
        FR_BATCH_SAMPLES = 4, /* one thread's CPU samples */
        FR_BATCH_STACKS = 5,  /* stack table */
        FR_BATCH_STRINGS = 6, /* string table */
        FR_BATCH_MAPS = 7,    /* loaded objects */
        FR_BATCH_END = 8,     /* generation end: end time, batch count[, flags] */
        FR_BATCH_CRASH = 9,   /* the fatal signal: only in a partial (last) generation */
        FR_BATCH_BLOCKED = 10, /* threads blocked in a wrapped call at the generation's end */
        FR_BATCH_KIND_MAX = 10,
};

/* Event types inside an FR_BATCH_EVENTS batch: one byte, then the time delta. */
enum fr_event_type {
        FR_EV_TASK_BEGIN = 1,   /* task id, parent task id, name string id */
        FR_EV_TASK_END = 2,     /* task id */
        FR_EV_REGION_BEGIN = 3, /* task id, name string id */
        FR_EV_REGION_END = 4,   /* task id, name string id */
        FR_EV_LOG = 5,          /* task id, category string id, length, bytes */
        FR_EV_THREAD_NAME = 6,  /* name string id */
        FR_EV_THREAD_START = 7, /* (none): a new thread under this id */
        FR_EV_THREAD_EXIT = 8,  /* (none) */
        FR_EV_LOST = 9,         /* what (enum fr_lost_kind), count */
        FR_EV_BLOCK = 10,       /* a wait that ended: call, object, ns, task, region, frames */
        FR_EV_TYPE_MAX = 10,
};

/* The blocking call of a BLOCK event or a BLOCKED entry (docs/trace-format.md
 * lists the object each one names). Names: fr_wait_call_name (trace_reader.h). */
enum fr_wait_call {
        FR_WAIT_MUTEX_LOCK = 1, /* object: the mutex address */
        FR_WAIT_MUTEX_TIMEDLOCK,
        FR_WAIT_COND_WAIT,      /* object: the condition variable address */
        FR_WAIT_COND_TIMEDWAIT,
        FR_WAIT_RWLOCK_RDLOCK,  /* object: the rwlock address */
        FR_WAIT_RWLOCK_WRLOCK,
        FR_WAIT_RWLOCK_TIMEDRDLOCK,
        FR_WAIT_RWLOCK_TIMEDWRLOCK,
        FR_WAIT_JOIN,           /* object: the pthread_t joined */
        FR_WAIT_SEM_WAIT,       /* object: the semaphore address */
        FR_WAIT_SEM_TIMEDWAIT,
        FR_WAIT_POLL,           /* object: the first fd */
        FR_WAIT_PPOLL,
        FR_WAIT_SELECT,         /* object: nfds */
        FR_WAIT_PSELECT,
        FR_WAIT_EPOLL_WAIT,     /* object: the epoll fd */
        FR_WAIT_EPOLL_PWAIT,
        FR_WAIT_NANOSLEEP,      /* object: the time asked for, ns (0: absolute) */
        FR_WAIT_CLOCK_NANOSLEEP,
        FR_WAIT_USLEEP,
        FR_WAIT_SLEEP,
        FR_WAIT_READ,           /* object: the fd */
        FR_WAIT_READV,
        FR_WAIT_RECV,
        FR_WAIT_RECVFROM,
        FR_WAIT_RECVMSG,
        FR_WAIT_ACCEPT,
        FR_WAIT_ACCEPT4,
        FR_WAIT_CONNECT,
        FR_WAIT_WRITE,
        FR_WAIT_WRITEV,
        FR_WAIT_SEND,
        FR_WAIT_SENDTO,
        FR_WAIT_SENDMSG,
        FR_WAIT_WAITPID,        /* object: the pid argument (as a two's complement) */
        FR_WAIT_WAIT4,
        FR_WAIT_FLOCK,          /* object: the fd */
        FR_WAIT_FCNTL_SETLKW,   /* object: the fd */
        FR_WAIT_FUTEX,          /* object: the futex address */
        FR_WAIT_CALL_MAX = FR_WAIT_FUTEX,
};

enum fr_lost_kind {
        FR_LOST_EVENTS = 1,  /* events dropped: no buffer memory */
        FR_LOST_SAMPLES = 2, /* CPU samples dropped: sample buffer full */
        FR_LOST_REGIONS = 3, /* region begins past the depth limit, or ends with no match */
        FR_LOST_KIND_MAX = 3,
};

/* Sampler in use, recorded in the clock batch. */
enum fr_sampler_kind {
        FR_SAMPLER_NONE = 0,
        FR_SAMPLER_PERF = 1,  /* perf_event task-clock */
        FR_SAMPLER_TIMER = 2, /* timer_create(CLOCK_THREAD_CPUTIME_ID) */
};

/* Unwinder in use, recorded in the clock batch (after the sampler). */
enum fr_unwind_kind {
        FR_UNWIND_FP = 0,    /* frame pointers only (and traces written before the field) */
        FR_UNWIND_AUTO = 1,  /* .eh_frame tables where they cover the code, else frame pointers */
        FR_UNWIND_DWARF = 2, /* .eh_frame tables only */
        FR_UNWIND_KIND_MAX = 2,
};

/* Limits the writer keeps and the reader enforces. */
#define FR_MAX_BATCH_BYTES (1u << 20)  /* payload of one batch */
#define FR_MAX_STRING_BYTES 4096       /* one string table entry */
#define FR_MAX_LOG_BYTES 4096          /* one log message */
#define FR_MAX_STACK_FRAMES 128        /* frames in one stack */
#define FR_MAX_REGION_DEPTH 64         /* open regions per thread */
#define FR_MAX_PATH_BYTES 4096         /* loaded object path */
#define FR_MAX_BUILD_ID_BYTES 64       /* build id bytes */
#define FR_MAX_COMM_BYTES 256          /* header comm / exe */

/* END flags (optional second varint of END). */
#define FR_END_PARTIAL 1u /* salvaged from a dead process: the last generation, cut short */

/* Largest batch header: kind byte + four varints. */
#define FR_BATCH_HEADER_MAX (1 + 4 * 10)

#endif
