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
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fr_internal.h"
#include "pm_ring.h"

static struct {
        uint8_t *map;
        size_t map_len;
        int fd;                 /* -1: anonymous memory, no ring to share */
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
        size_t len = blocks_off + block_bytes;
        int fd = memfd_create("flightrec-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        uint8_t *p = MAP_FAILED;
        if (fd >= 0 && ftruncate(fd, (off_t)len) == 0) {
                p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
                /* Fixed size from now on: the daemon may rely on it. */
                if (p != MAP_FAILED)
                        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
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
        pm.fd = fd;
        pm.hdr = (struct fr_pm_header *)p;
        memcpy(pm.hdr->magic, FR_PM_MAGIC, FR_PM_MAGIC_LEN);
        pm.hdr->version = FR_PM_VERSION;
        pm.hdr->index_cap = (uint32_t)nblocks;
        pm.hdr->index_off[0] = FR_PM_HEADER_SIZE;
        pm.hdr->index_off[1] = FR_PM_HEADER_SIZE + slot_bytes;
        pm.hdr->blocks_off = blocks_off;
        pm.slot[0] = (struct fr_pm_extent *)(p + pm.hdr->index_off[0]);
        pm.slot[1] = (struct fr_pm_extent *)(p + pm.hdr->index_off[1]);
        pm.blocks = p + blocks_off;
        return pm.blocks;
}

void fr__pm_unmap(void) {
        if (pm.map)
                munmap(pm.map, pm.map_len);
        if (pm.fd >= 0)
                close(pm.fd);
        memset(&pm, 0, sizeof pm);
        pm.fd = -1;
}

int fr__pm_dup_readonly(void) {
        if (pm.fd < 0)
                return -ENOENT;
        /* A fresh open of the same memfd, read-only: the daemon gets no way to
         * write into this process's memory. */
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", pm.fd);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        return fd >= 0 ? fd : -errno;
}

void fr__pm_publish(const struct fr_genbytes *oldest) {
        if (!pm.hdr)
                return;
        uint32_t s = pm.hdr->active ^ 1u, n = 0;
        uint64_t last_gen = 0;
        for (const struct fr_genbytes *g = oldest; g; g = g->next) {
                for (const struct fr_block *b = g->head; b && n < pm.hdr->index_cap; b = b->next) {
                        if (b->pos == b->out_start)
                                continue;
                        pm.slot[s][n].off = (uint64_t)((const uint8_t *)b - pm.map) + b->out_start;
                        pm.slot[s][n].len = b->pos - b->out_start;
                        n++;
                }
                last_gen = g->gen;
        }
        pm.hdr->count[s] = n;
        pm.hdr->last_gen = last_gen;
        pm.hdr->publishes++;
        /* The slot's contents before the flip (release); the blocks it no
         * longer names are freed by the caller only after this store. */
        __atomic_store_n(&pm.hdr->active, s, __ATOMIC_RELEASE);
}

void fr__pm_mark_closed(void) {
        if (pm.hdr)
                __atomic_store_n(&pm.hdr->closed, 1u, __ATOMIC_RELEASE);
}
