/* Reading a dead agent's post-mortem ring (pm_ring.h), as untrusted input:
 * every offset is checked against the file before it is used, and the file is
 * only ever pread (never mapped, so a peer that truncates it cannot fault us). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fr_io.h"
#include "pm_ring.h"

#define MAX_EXTENTS (1u << 24) /* 512 GiB of 32 KiB blocks: beyond any real pool */

static int read_header(int fd, struct fr_pm_header *ret, uint64_t *ret_size, char *err,
                       size_t errlen) {
        struct stat st;
        if (fstat(fd, &st) < 0) {
                int e = errno;
                snprintf(err, errlen, "fstat: %s", strerror(e));
                return -e;
        }
        if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < FR_PM_HEADER_SIZE) {
                snprintf(err, errlen, "not a ring: %s of %lld bytes",
                         S_ISREG(st.st_mode) ? "file" : "not a regular file", (long long)st.st_size);
                return -EBADMSG;
        }
        int r = fr_pread_exact(fd, ret, sizeof *ret, 0);
        if (r < 0) {
                snprintf(err, errlen, "reading the header: %s", strerror(-r));
                return r;
        }
        if (memcmp(ret->magic, FR_PM_MAGIC, FR_PM_MAGIC_LEN) || ret->version != FR_PM_VERSION) {
                snprintf(err, errlen, "not a ring: bad magic or version %u", ret->version);
                return -EBADMSG;
        }
        *ret_size = (uint64_t)st.st_size;
        return 0;
}

int fr_pm_closed(int fd) {
        struct fr_pm_header h;
        uint64_t size;
        char err[160];
        int r = read_header(fd, &h, &size, err, sizeof err);
        return r < 0 ? r : (int)(h.closed > FR_PM_CLOSED_EXEC ? FR_PM_CLOSED_EXIT : h.closed);
}

int fr_pm_plan(int fd, uint64_t max_bytes, struct fr_pm_plan *ret, char *err, size_t errlen) {
        memset(ret, 0, sizeof *ret);
        struct fr_pm_header h;
        uint64_t size;
        int r = read_header(fd, &h, &size, err, errlen);
        if (r < 0)
                return r;
        if (h.active > 1 || h.index_cap == 0 || h.index_cap > MAX_EXTENTS) {
                snprintf(err, errlen, "bad ring header: active slot %u, index of %u entries",
                         h.active, h.index_cap);
                return -EBADMSG;
        }
        uint32_t s = h.active, n = h.count[s], nlive = h.live_count[s];
        uint64_t slot_bytes = (uint64_t)h.index_cap * sizeof(struct fr_pm_extent);
        if (n > h.index_cap || nlive > h.index_cap - n || h.index_off[s] < FR_PM_HEADER_SIZE ||
            h.index_off[s] > size ||
            slot_bytes > size - h.index_off[s]) {
                snprintf(err, errlen, "bad ring index: slot %u at %llu with %u of %u entries in a "
                                      "file of %llu bytes",
                         s, (unsigned long long)h.index_off[s], n, h.index_cap,
                         (unsigned long long)size);
                return -EBADMSG;
        }
        struct fr_pm_extent *ext = calloc(n + nlive + 1, sizeof *ext);
        if (!ext) {
                snprintf(err, errlen, "out of memory for %u extents", n + nlive);
                return -ENOMEM;
        }
        r = fr_pread_exact(fd, ext, (size_t)(n + nlive) * sizeof *ext, h.index_off[s]);
        if (r < 0) {
                snprintf(err, errlen, "reading the index: %s", strerror(-r));
                free(ext);
                return r;
        }
        uint64_t total = 0, live_total = 0;
        for (uint32_t i = 0; i < n + nlive; i++) {
                if (ext[i].off < FR_PM_HEADER_SIZE || ext[i].off > size || ext[i].len == 0 ||
                    ext[i].len > size - ext[i].off) {
                        snprintf(err, errlen, "bad ring extent %u: %llu bytes at %llu in a file of "
                                              "%llu bytes",
                                 i, (unsigned long long)ext[i].len, (unsigned long long)ext[i].off,
                                 (unsigned long long)size);
                        free(ext);
                        return -EBADMSG;
                }
                if (i >= n) {
                        live_total += ext[i].len;
                        continue;
                }
                total += ext[i].len; /* no overflow: each len <= size */
                if (total > max_bytes) {
                        snprintf(err, errlen, "ring holds more than %llu bytes",
                                 (unsigned long long)max_bytes);
                        free(ext);
                        return -EFBIG;
                }
        }
        ret->ext = ext;
        ret->n = n;
        ret->total = total;
        ret->last_gen = h.last_gen;
        ret->publishes = h.publishes;
        ret->closed = h.closed != FR_PM_OPEN;
        /* The generation in progress: what fr_pm_salvage needs, bounded. */
        if (nlive && h.live_gen[s] && live_total <= max_bytes - total && h.blocks_off <= size &&
            h.blocks_off >= FR_PM_HEADER_SIZE && h.block_size >= 4096 &&
            h.block_size <= (1u << 20) && h.carved <= (size - h.blocks_off) / h.block_size) {
                ret->live_gen = h.live_gen[s];
                ret->live_ext = ext + n;
                ret->live_n = nlive;
                ret->live_total = live_total;
                ret->carved = h.carved;
                ret->blocks_off = h.blocks_off;
                ret->block_size = h.block_size;
        }
        ret->file_size = size;
        if (h.csamples_off >= FR_PM_HEADER_SIZE && h.csamples_off < size) {
                ret->csamples_off = h.csamples_off;
                ret->csamples_len = size - h.csamples_off < FR_PM_CSAMPLES_BYTES
                                            ? size - h.csamples_off
                                            : FR_PM_CSAMPLES_BYTES;
        }
        struct fr_pm_crash *c = &ret->crash;
        if (fr_pread_exact(fd, c, sizeof *c, FR_PM_CRASH_OFF) == 0 &&
            c->state == FR_PM_CRASH_COMMITTED && c->signo > 0 && c->signo <= 64) {
                if (c->nregs > FR_PM_CRASH_REGS)
                        c->nregs = FR_PM_CRASH_REGS;
                if (c->nframes > FR_PM_CRASH_FRAMES)
                        c->nframes = FR_PM_CRASH_FRAMES;
                c->thread_name[sizeof c->thread_name - 1] = '\0';
                ret->has_crash = true;
        }
        return 0;
}

int fr_pm_copy(int fd, const struct fr_pm_plan *plan, uint8_t *dst, char *err, size_t errlen) {
        for (uint32_t i = 0; i < plan->n; i++) {
                int r = fr_pread_exact(fd, dst, plan->ext[i].len, plan->ext[i].off);
                if (r < 0) {
                        snprintf(err, errlen, "reading ring extent %u: %s", i, strerror(-r));
                        return r;
                }
                dst += plan->ext[i].len;
        }
        return 0;
}

void fr_pm_plan_free(struct fr_pm_plan *plan) {
        free(plan->ext);
        plan->ext = NULL;
        plan->n = 0;
}

int fr_pm_publishes(int fd, uint64_t *ret) {
        struct fr_pm_header h;
        int r = fr_pread_exact(fd, &h, sizeof h, 0);
        if (r == 0)
                *ret = __atomic_load_n(&h.publishes, __ATOMIC_RELAXED);
        return r;
}
