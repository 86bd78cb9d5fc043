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
 * request number). */
#include <errno.h>
#include <fcntl.h>
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

int fr__fd_move_high(int fd) {
        uint64_t soft = soft_limit(), budget = soft / FR_FD_BUDGET_DIVISOR;
        if (budget > FR_FD_BUDGET_MAX)
                budget = FR_FD_BUDGET_MAX;
        /* Room for the budget and our few others (socket, pipe, memfd). */
        budget += FR_FD_OTHERS;
        uint64_t floor = soft >= FD_SETSIZE + budget ? FD_SETSIZE : soft > budget ? soft - budget : 0;
        if (floor <= (uint64_t)fd || floor > INT32_MAX)
                return fd;
        int high = fcntl(fd, F_DUPFD_CLOEXEC, (int)floor);
        if (high < 0)
                return fd; /* nothing free up there: keep the number we have */
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
        struct stat st;
        id->fd = -1;
        if (fd < 0)
                return fd;
        fd = fr__fd_move_high(fd);
        if (fstat(fd, &st) < 0)
                return fd; /* id->fd -1: never taken for ours */
        *id = (struct fr_fd_id){fd, st.st_dev, st.st_ino};
        return fd;
}

bool fr__fd_ours(const struct fr_fd_id *id) {
        struct stat st;
        return id->fd >= 0 && fstat(id->fd, &st) == 0 && st.st_dev == id->dev && st.st_ino == id->ino;
}
