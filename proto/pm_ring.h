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
#define FR_PM_VERSION 1u
#define FR_PM_HEADER_SIZE 4096u

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

#endif
