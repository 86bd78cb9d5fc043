/* The agent's half of the post-mortem ring (proto/pm_ring.h): the memory
 * behind the block pool, and the index of retained generations the daemon
 * reads when this process dies.
 *
 * The pool is one memfd mapping: a header page, two index slots, then the
 * blocks. Where memfd_create is refused (old kernel, seccomp), the pool falls
 * back to anonymous memory and there is simply no post-mortem. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fr_internal.h"
#include "pm_ring.h"

_Static_assert(sizeof(struct fr_pm_crash) <= FR_PM_HEADER_SIZE - FR_PM_CRASH_OFF &&
                       sizeof(struct fr_pm_header) <= FR_PM_CRASH_OFF,
               "the crash record fits in the header page");
_Static_assert(offsetof(struct fr_block, gen) == offsetof(struct fr_pm_block, gen) &&
                       offsetof(struct fr_block, base_time) == offsetof(struct fr_pm_block, base_time) &&
                       offsetof(struct fr_block, pos) == offsetof(struct fr_pm_block, pos) &&
                       offsetof(struct fr_block, data_start) == offsetof(struct fr_pm_block, data_start) &&
                       offsetof(struct fr_block, tid) == offsetof(struct fr_pm_block, tid),
               "pool blocks start as the daemon reads them");

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010 /* Linux 5.1 */
#endif

FR_EVERY_PROCESS_DATA static struct {
        uint8_t *map;
        size_t map_len;
        int fd;                 /* -1: anonymous memory, no ring to share */
        dev_t dev;              /* the memfd's identity: the application may */
        ino_t ino;              /* have closed fd and reused the number */
        pid_t owner;            /* the process whose ring it is */
        struct fr_pm_header *hdr;
        struct fr_pm_extent *slot[2];
        uint8_t *blocks;
} pm = {.fd = -1};

static size_t page_round(size_t n) {
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        return (n + page - 1) / page * page;
}

uint8_t *fr__pm_map(size_t block_bytes, size_t nblocks) {
        size_t slot_bytes = page_round(nblocks * sizeof(struct fr_pm_extent));
        size_t blocks_off = FR_PM_HEADER_SIZE + 2 * slot_bytes;
        size_t csamples_off = blocks_off + block_bytes;
        size_t len = csamples_off + FR_PM_CSAMPLES_BYTES; /* sparse: touched at a crash only */
        /* A memfd counts as a file: growing it past RLIMIT_FSIZE would raise
         * SIGXFSZ, which kills the process. Use anonymous memory then. */
        struct rlimit fsize;
        bool fits = getrlimit(RLIMIT_FSIZE, &fsize) < 0 || fsize.rlim_cur == RLIM_INFINITY ||
                    (uint64_t)len <= (uint64_t)fsize.rlim_cur;
        int fd = fits ? memfd_create("flightrec-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING) : -1;
        uint8_t *p = MAP_FAILED;
        struct stat st;
        if (fd >= 0 && ftruncate(fd, (off_t)len) == 0 && fstat(fd, &st) == 0) {
                p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
                /* Fixed size from now on, and writable only through this
                 * mapping: a descriptor reopened from the read-only one the
                 * daemon gets can neither write nor map for writing. Without
                 * these seals (old kernel) the daemon refuses the ring. */
                if (p != MAP_FAILED &&
                    fcntl(fd, F_ADD_SEALS,
                          F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) < 0)
                        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
                pm.dev = st.st_dev;
                pm.ino = st.st_ino;
        }
        if (p == MAP_FAILED) {
                if (fd >= 0)
                        close(fd);
                fd = -1;
                p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
                if (p == MAP_FAILED)
                        return NULL;
        }
        pm.map = p;
        pm.map_len = len;
        pm.fd = fd >= 0 ? fr__fd_move_high(fd) : -1; /* out of the low numbers */
        pm.owner = getpid();
        struct fr_pm_header *h = (struct fr_pm_header *)p;
        memcpy(h->magic, FR_PM_MAGIC, FR_PM_MAGIC_LEN);
        h->version = FR_PM_VERSION;
        h->index_cap = (uint32_t)nblocks;
        h->index_off[0] = FR_PM_HEADER_SIZE;
        h->index_off[1] = FR_PM_HEADER_SIZE + slot_bytes;
        h->blocks_off = blocks_off;
        h->block_size = FR_BLOCK_SIZE;
        h->csamples_off = csamples_off;
        h->live_gen[0] = h->live_gen[1] = 0;
        h->carved = 0;
        pm.slot[0] = (struct fr_pm_extent *)(p + h->index_off[0]);
        pm.slot[1] = (struct fr_pm_extent *)(p + h->index_off[1]);
        pm.blocks = p + blocks_off;
        /* Last, with release: the exec and exit wrappers and the crash handler
         * of other threads (fr__pm_mark, fr__pm_crash) may look at any time
         * once the deferred start is under way. */
        __atomic_store_n(&pm.hdr, h, __ATOMIC_RELEASE);
        return pm.blocks;
}

/* Is pm.fd still our memfd? */
static bool fd_is_ours(void) {
        struct fr_fd_id id = {pm.fd, pm.dev, pm.ino};
        return fr__fd_ours(&id);
}

/* reopen - the application closed our memfd (a close-everything loop): get
 * it back from our own mapping of it, to hand it to the daemon again. The
 * kernel allows this with CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE only;
 * without, the connection goes on without a post-mortem ring. */
static bool reopen(void) {
        if (!pm.map || pm.dev == 0 || getpid() != pm.owner)
                return false;
        /* The name is the range of the first area of the mapping (it may be
         * split by protections): look it up. */
        size_t len;
        char *maps = fr__read_file_all("/proc/self/maps", &len);
        unsigned long lo = 0, hi = 0, want = (unsigned long)pm.map;
        for (char *line = maps, *next; maps && line < maps + len; line = next) {
                next = strchr(line, '\n');
                next = next ? next + 1 : maps + len;
                if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo == want)
                        break;
        }
        free(maps);
        if (hi == 0 || lo != want)
                return false;
        char path[96];
        snprintf(path, sizeof path, "/proc/self/map_files/%lx-%lx", lo, hi);
        struct fr_fd_id id;
        int fd = fr__fd_keep(&id, open(path, O_RDONLY | O_CLOEXEC));
        if (fd < 0)
                return false;
        if (id.dev != pm.dev || id.ino != pm.ino) {
                close(fd);
                return false;
        }
        pm.fd = fd;
        return true;
}

void fr__pm_unmap(void) {
        if (pm.map)
                munmap(pm.map, pm.map_len);
        if (fd_is_ours())
                close(pm.fd);
        memset(&pm, 0, sizeof pm);
        pm.fd = -1;
}

int fr__pm_dup_readonly(void) {
        if (!fd_is_ours() && !reopen())
                return -ENOENT;
        /* A fresh open of the same memfd, read-only: the daemon gets no way to
         * write into this process's memory. */
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", pm.fd);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        return fd >= 0 ? fd : -errno;
}

/* put_extents - the trace bytes of g's blocks into slot s from entry n on. */
static uint32_t put_extents(uint32_t s, uint32_t n, const struct fr_genbytes *g) {
        for (const struct fr_block *b = g->head; b && n < pm.hdr->index_cap; b = b->next) {
                if (b->pos == b->out_start)
                        continue;
                pm.slot[s][n].off = (uint64_t)((const uint8_t *)b - pm.map) + b->out_start;
                pm.slot[s][n].len = b->pos - b->out_start;
                n++;
        }
        return n;
}

void fr__pm_publish(const struct fr_genbytes *oldest, const struct fr_genbytes *live) {
        if (!pm.hdr)
                return;
        uint32_t s = pm.hdr->active ^ 1u, n = 0;
        uint64_t last_gen = 0;
        for (const struct fr_genbytes *g = oldest; g; g = g->next) {
                n = put_extents(s, n, g);
                last_gen = g->gen;
        }
        pm.hdr->count[s] = n;
        pm.hdr->live_count[s] = live ? put_extents(s, n, live) - n : 0;
        pm.hdr->live_gen[s] = live && pm.hdr->live_count[s] ? live->gen : 0;
        pm.hdr->last_gen = last_gen;
        pm.hdr->publishes++;
        /* The slot's contents before the flip (release); the blocks it no
         * longer names are freed by the caller only after this store. */
        __atomic_store_n(&pm.hdr->active, s, __ATOMIC_RELEASE);
}

uint64_t fr__pm_index_gen(void) { return pm.hdr && pm.fd >= 0 ? pm.hdr->publishes : 0; }

FR_EVERY_PROCESS void fr__pm_mark(uint32_t how) {
        struct fr_pm_header *h = __atomic_load_n(&pm.hdr, __ATOMIC_ACQUIRE);
        if (h && getpid() == pm.owner)
                __atomic_store_n(&h->closed, how, __ATOMIC_RELEASE);
}

struct fr_pm_crash *fr__pm_crash(void) {
        struct fr_pm_header *h = __atomic_load_n(&pm.hdr, __ATOMIC_ACQUIRE);
        if (!h || pm.fd < 0 || (pid_t)syscall(SYS_getpid) != pm.owner)
                return NULL;
        return (struct fr_pm_crash *)((uint8_t *)h + FR_PM_CRASH_OFF);
}

uint8_t *fr__pm_csamples(size_t *ret_cap) {
        if (!fr__pm_crash())
                return NULL;
        *ret_cap = FR_PM_CSAMPLES_BYTES;
        return pm.map + pm.hdr->csamples_off;
}

void fr__pm_carved(size_t n) {
        if (pm.hdr)
                __atomic_store_n(&pm.hdr->carved, (uint64_t)n, __ATOMIC_RELEASE);
}
