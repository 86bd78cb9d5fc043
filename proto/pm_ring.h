/* The post-mortem ring: how a dead process's recording reaches flightrecd.
 *
 * The agent keeps its block pool (docs/agent-design.md) in a memfd instead of
 * anonymous memory and passes a read-only descriptor of it to the daemon with
 * its HELLO. The memfd starts with a header page that says which byte ranges
 * of the file hold the retained generations, oldest first. The pages belong
 * to the memfd, not to the process, so they outlive it: when the process dies
 * without a clean stop, the daemon reads those ranges and writes them out as
 * a post-mortem snapshot. The daemon treats every byte of the file as
 * untrusted input, like a socket message.
 *
 * Layout (host byte order: writer and reader share the machine):
 *   [0, FR_PM_HEADER_SIZE)            struct fr_pm_header
 *   [index_off[s], + index_cap * 16)  index slot s (s = 0, 1): struct fr_pm_extent
 *   [blocks_off, ...)                 the pool's blocks
 *
 * Publishing (agent, after each generation, one writer): fill the inactive
 * slot and its count, store `active` with release order, and only then free
 * the blocks of generations that fell out of the ring. A process that dies at
 * any instant therefore leaves an active slot whose ranges hold intact,
 * complete generations. `closed` is set by a clean stop (fr_stop, exit()):
 * no post-mortem snapshot is wanted then. */
#ifndef FR_PM_RING_H
#define FR_PM_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FR_PM_MAGIC "FRPMRING"
#define FR_PM_MAGIC_LEN 8
#define FR_PM_VERSION 2u
#define FR_PM_HEADER_SIZE 4096u
#define FR_PM_CRASH_OFF 2048u           /* struct fr_pm_crash, in the header page */
#define FR_PM_CSAMPLES_BYTES (4u << 20) /* crash-time copy of the live samples */

struct fr_pm_header {
        char magic[FR_PM_MAGIC_LEN];
        uint32_t version;
        uint32_t index_cap;     /* entries per slot */
        uint64_t index_off[2];
        uint64_t blocks_off;
        uint32_t count[2];      /* entries used in each slot */
        uint32_t active;        /* the slot in force: 0 or 1 */
        uint32_t closed;        /* FR_PM_OPEN, or how it ended cleanly */
        uint64_t publishes;     /* times the index was rewritten */
        uint64_t last_gen;      /* newest generation in the active slot */
        /* The generation in progress (format 2): slot s names, after its
         * count[s] extents of complete generations, live_count[s] extents of
         * the live generation's prologue (CLOCK, STATUS, MAPS, STRINGS as the
         * advancer wrote them at its start); its events are in the pool
         * blocks whose header (struct fr_pm_block) says live_gen[s]. */
        uint32_t live_count[2];
        uint64_t live_gen[2];   /* 0: no live generation published */
        uint64_t carved;        /* pool blocks handed out at least once */
        uint32_t block_size;
        uint32_t pad;
        uint64_t csamples_off;  /* FR_PM_CSAMPLES_BYTES for the crash handler */
};

/* The start of every pool block, as the agent writes it (agent/fr_internal.h
 * struct fr_block, checked there). A block holds one thread's events of
 * generation gen in [data_start, pos) while that generation is live. */
struct fr_pm_block {
        uint64_t next;          /* the agent's pointer: meaningless here */
        uint64_t gen;
        uint64_t base_time;
        uint64_t last_time;
        uint32_t pos, data_start, out_start;
        uint32_t tid;           /* 0: not a thread's event block */
};

/* The crash record (at FR_PM_CRASH_OFF), written by the agent's crash
 * handler (agent/fr_crash.c). state goes PENDING while the application's own
 * handler may still recover (siglongjmp), COMMITTED once the signal kills. */
#define FR_PM_CRASH_NONE 0u
#define FR_PM_CRASH_PENDING 1u
#define FR_PM_CRASH_COMMITTED 2u
#define FR_PM_CRASH_REGS 32
#define FR_PM_CRASH_FRAMES 128
#define FR_PM_CRASH_OVERFLOW 1u /* flags: the fault is a stack overflow */
#define FR_PM_CRASH_SCANNED 2u  /* flags: frames found by scanning the stack */
struct fr_pm_crash {
        uint32_t state;
        uint32_t writer;        /* tid writing the record (agent only) */
        int32_t signo, code;
        uint64_t addr;          /* si_addr */
        uint64_t tick;          /* trace clock at the signal */
        uint64_t gen;           /* the generation being recorded */
        uint32_t tid, flags;
        uint32_t nregs, nframes;
        uint32_t walked;        /* 0: every frame from the frame-pointer walk; else
                                 * frames past the first come from stack scanning */
        uint32_t pad;
        char thread_name[16];
        uint64_t regs[FR_PM_CRASH_REGS];   /* x86-64: the gregs of ucontext (REG_R8..) */
        uint64_t frames[FR_PM_CRASH_FRAMES]; /* [0]: the faulting pc */
};

/* Crash-time copies of live sample buffers, at csamples_off: entries of this
 * header and len bytes of raw records (8-aligned), ended by tid 0. */
struct fr_pm_csample {
        uint32_t tid, len;
        uint64_t gen;
};

/* fr_pm_header.closed */
#define FR_PM_OPEN 0u
#define FR_PM_CLOSED_EXIT 1u /* fr_stop, exit(), _exit() */
#define FR_PM_CLOSED_EXEC 2u /* exec'd (a new image, perhaps without the agent) */

struct fr_pm_extent {
        uint64_t off; /* file offset of trace bytes */
        uint64_t len;
};

/* What the daemon needs to copy a dead agent's ring out: the active slot's
 * extents, validated against the file. */
struct fr_pm_plan {
        struct fr_pm_extent *ext;
        uint32_t n;
        uint64_t total;        /* sum of the extents' lengths */
        uint64_t last_gen;
        uint64_t publishes;    /* the index generation the plan was read at */
        bool closed;
        /* The live generation (0: none) and its prologue extents. */
        uint64_t live_gen;
        struct fr_pm_extent *live_ext;
        uint32_t live_n;
        uint64_t live_total;
        uint64_t carved, blocks_off, file_size;
        uint32_t block_size;
        uint64_t csamples_off, csamples_len;
        bool has_crash;          /* a committed crash record */
        struct fr_pm_crash crash;
};

/* fr_pm_plan - read and validate the header and active index of the ring in
 * fd (magic, version, slot bounds inside the file, every extent inside the
 * file, total at most max_bytes). Returns 0 with *ret filled (free with
 * fr_pm_plan_free), or a negative errno (-EBADMSG for a malformed ring,
 * -EFBIG over max_bytes) with err saying why. */
int fr_pm_plan(int fd, uint64_t max_bytes, struct fr_pm_plan *ret, char *err, size_t errlen);

/* fr_pm_closed - how the ring's agent ended cleanly (FR_PM_CLOSED_*), 0 while
 * it has not, or a negative errno when the header cannot be read or is not a
 * ring. */
int fr_pm_closed(int fd);

/* fr_pm_copy - pread the plan's extents, in order, into dst (room for
 * plan->total bytes). Returns 0, or a negative errno (-EIO when the file
 * shrank under us) with err. */
int fr_pm_copy(int fd, const struct fr_pm_plan *plan, uint8_t *dst, char *err, size_t errlen);

void fr_pm_plan_free(struct fr_pm_plan *plan);

/* fr_pm_publishes - the header's publish count now: a live snapshot's check
 * that the index did not move while its extents were read (the agent
 * publishes before it frees any block the index named). 0 or -errno. */
int fr_pm_publishes(int fd, uint64_t *ret);

/* fr_pm_salvage - the live generation as a partial generation (its END
 * batch flagged FR_END_PARTIAL), appended to out: the prologue, every
 * thread's committed events (a torn or undecodable tail is dropped), the
 * samples the crash handler copied, the CRASH batch, placeholder strings for
 * names interned after the prologue, END. Input is untrusted: the result is
 * checked with the trace reader after the complete generations (prev,
 * prev_len: a header and the complete generations), stepping down (no
 * samples, then no events) until it reads as valid. Returns the bytes
 * appended (0: nothing salvageable) or a negative errno. */
struct fr_buf;
long fr_pm_salvage(int fd, const struct fr_pm_plan *plan, const uint8_t *prev, size_t prev_len,
                   struct fr_buf *out, char *err, size_t errlen);

#endif
