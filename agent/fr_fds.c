/* The agent's descriptors: a budget, where they live, and whether they are
 * still ours.
 *
 * Budget. The per-thread perf events are the only descriptors the agent
 * holds in numbers (the daemon socket, the ring's memfd and the short-lived
 * /proc reads are a fixed handful). They take at most FR_FD_BUDGET_DIVISOR-th
 * of the RLIMIT_NOFILE soft limit, read again at every arm and period, so an
 * application that raises its limit raises the budget; beyond it threads are
 * sampled with the CPU timer, which needs no descriptor.
 *
 * Placement. A new descriptor takes the lowest free number, which select()
 * users need below FD_SETSIZE (1024). Ours move up: to FD_SETSIZE or above
 * when the limit leaves room for the budget there, else to the top of the
 * table (soft limit minus budget), away from the numbers the application
 * fills first.
 *
 * Identity. The application may close our descriptors (the close-everything
 * loop of daemons, close_range) or put its own file on one of our numbers
 * (dup2). Before we touch a number again we check it: a perf event is ours
 * when the number is an anonymous-inode file like our events and its
 * PERF_EVENT_IOC_ID is the id we recorded (ids are unique per event; the
 * ioctl is read-only, and no other anonymous-inode file type answers that
 * request number).
 *
 * Transient descriptors. A /proc read, a connection attempt or a descriptor
 * the daemon sent holds a low number for a moment, the lowest free one:
 * the number an application's start puts its own files on (dup2 onto 3).
 * Each is closed only while it still holds the file it was opened as; one
 * the application replaced meanwhile is the application's. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fr_internal.h"

static struct {
        _Atomic dev_t dev; /* the anonymous inode every perf event file shares */
        _Atomic ino_t ino;
        _Atomic bool known;
} perf_inode;

static uint64_t soft_limit(void) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return 1024;
        return rl.rlim_cur == RLIM_INFINITY ? (1u << 20) : (uint64_t)rl.rlim_cur;
}

unsigned fr__fd_budget(void) {
        uint64_t b = soft_limit() / FR_FD_BUDGET_DIVISOR;
        return b > FR_FD_BUDGET_MAX ? FR_FD_BUDGET_MAX : (unsigned)b;
}

/* same_file - fd holds the file of that dev and ino. */
static bool same_file(int fd, dev_t dev, ino_t ino) {
        struct stat now;
        return fd >= 0 && fstat(fd, &now) == 0 && now.st_dev == dev && now.st_ino == ino;
}

int fr__fd_move_high(int fd) {
        uint64_t soft = soft_limit(), budget = soft / FR_FD_BUDGET_DIVISOR;
        if (budget > FR_FD_BUDGET_MAX)
                budget = FR_FD_BUDGET_MAX;
        /* Room for the budget and our few others (socket, pipe, memfd). */
        budget += FR_FD_OTHERS;
        uint64_t floor = soft >= FD_SETSIZE + budget ? FD_SETSIZE : soft > budget ? soft - budget : 0;
        if (floor <= (uint64_t)fd || floor > INT32_MAX)
                return fd;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return fd;
        int high = fcntl(fd, F_DUPFD_CLOEXEC, (int)floor);
        if (high < 0)
                return fd; /* nothing free up there: keep the number we have */
        if (!same_file(high, st.st_dev, st.st_ino)) { /* the application put its file on fd meanwhile */
                close(high);
                errno = EBADF;
                return -1;
        }
        if (same_file(fd, st.st_dev, st.st_ino))
                close(fd);
        return high;
}

int fr__perf_fd_id(int fd, uint64_t *ret_id) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (ioctl(fd, PERF_EVENT_IOC_ID, ret_id) < 0)
                return -errno;
        if (!atomic_load_explicit(&perf_inode.known, memory_order_acquire)) {
                atomic_store(&perf_inode.dev, st.st_dev);
                atomic_store(&perf_inode.ino, st.st_ino);
                atomic_store_explicit(&perf_inode.known, true, memory_order_release);
        }
        return 0;
}

bool fr__perf_fd_intact(int fd, uint64_t id) {
        struct stat st;
        uint64_t now;
        if (fd < 0 || fstat(fd, &st) < 0)
                return false;
        if (!atomic_load_explicit(&perf_inode.known, memory_order_acquire) ||
            st.st_dev != atomic_load(&perf_inode.dev) || st.st_ino != atomic_load(&perf_inode.ino))
                return false; /* closed and reused for a file of the application's */
        return ioctl(fd, PERF_EVENT_IOC_ID, &now) == 0 && now == id;
}

int fr__fd_keep(struct fr_fd_id *id, int fd) {
        id->fd = -1;
        if (fd < 0)
                return fd;
        return fr__fd_transient(id, fr__fd_move_high(fd));
}

bool fr__fd_ours(const struct fr_fd_id *id) { return same_file(id->fd, id->dev, id->ino); }

int fr__fd_transient(struct fr_fd_id *id, int fd) {
        struct stat st;
        id->fd = -1;
        if (fd < 0 || fstat(fd, &st) < 0)
                return fd; /* id->fd -1: never taken for ours */
        *id = (struct fr_fd_id){fd, st.st_dev, st.st_ino};
        return fd;
}

void fr__fd_close(struct fr_fd_id *id) {
        if (fr__fd_ours(id))
                close(id->fd);
        id->fd = -1;
}

/* read_more - fd read on into buf from *len, up to cap - 1 bytes in all,
 * NUL-ended: 0 at the end of the file, 1 when buf is full, or -errno. */
static int read_more(int fd, char *buf, size_t cap, size_t *len) {
        int r = 1;
        while (*len + 1 < cap) {
                ssize_t k = read(fd, buf + *len, cap - 1 - *len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        r = k < 0 ? -errno : 0;
                        break;
                }
                *len += (size_t)k;
        }
        buf[*len] = '\0';
        return r;
}

ssize_t fr__read_file(const char *path, char *buf, size_t cap) {
        struct fr_fd_id id;
        size_t len = 0;
        if (cap == 0)
                return -EINVAL;
        if (fr__fd_transient(&id, open(path, O_RDONLY | O_CLOEXEC)) < 0)
                return -errno;
        int r = read_more(id.fd, buf, cap, &len);
        fr__fd_close(&id);
        return r < 0 ? r : (ssize_t)len;
}

char *fr__read_file_all(const char *path, size_t *ret_len) {
        struct fr_fd_id id;
        if (fr__fd_transient(&id, open(path, O_RDONLY | O_CLOEXEC)) < 0)
                return NULL;
        size_t cap = 16384, len = 0;
        char *buf = NULL;
        int r;
        for (;; cap *= 2) {
                char *nb = realloc(buf, cap);
                if (!nb) {
                        r = -ENOMEM;
                        break;
                }
                buf = nb;
                if ((r = read_more(id.fd, buf, cap, &len)) <= 0)
                        break; /* the whole file, or an error */
        }
        fr__fd_close(&id);
        if (r < 0) {
                free(buf);
                errno = -r;
                return NULL;
        }
        *ret_len = len;
        return buf;
}
