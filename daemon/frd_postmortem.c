/* Post-mortem: after an agent's connection ends, find out whether its process
 * died without a clean stop, and if so hand its ring (proto/pm_ring.h) to a
 * snapshot.
 *
 * The end of the connection comes first: a dying process's descriptors are
 * closed before it is reported dead. So each ended agent is watched for up to
 * WATCH_MS: the ring's `closed` flag set means a clean stop (fr_stop, exit());
 * the pidfd readable (or, without pidfd, kill(pid, 0) failing with ESRCH)
 * means death; a process still alive at the end (it exec'd, or closed the
 * connection) gets no snapshot, nor does one whose pid says HELLO again (it
 * exec'd an image that runs the agent too). */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "frd.h"
#include "pm_ring.h"

#define WATCH_MS 1000
#define TICK_MS 20

struct watch {
        struct watch *next;
        struct event *timer;
        unsigned ticks;
        struct frd_pm_dead dead;
        int pidfd;
};

static struct {
        struct watch *list;
        unsigned n;
        void (*died)(struct frd_pm_dead *);
        void (*ended)(void);
} W;

int frd_pm_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
        int fd = (int)syscall(SYS_pidfd_open, pid, 0);
        return fd >= 0 ? fd : -errno;
#else
        (void)pid;
        return -ENOSYS;
#endif
}

const char *frd_pm_check_ring(int fd) {
        if (fd < 0)
                return "no file descriptor came with it";
        /* Only a sealed memfd: its reads never block (a file on a FUSE or NFS
         * mount could stall the loop) and its size is fixed. */
        int seals = fcntl(fd, F_GET_SEALS);
        if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW))
                return "not a memfd sealed against shrinking and growing";
        /* Already marked closed is fine: a forked child that exec'd before
         * its agent said HELLO. The watch will find it so. */
        if (fr_pm_closed(fd) < 0)
                return "not a post-mortem ring (bad header)";
        return NULL;
}

static bool process_gone(const struct watch *w) {
        if (w->pidfd >= 0) {
                struct pollfd p = {w->pidfd, POLLIN, 0};
                return poll(&p, 1, 0) > 0;
        }
        return kill(w->dead.pid, 0) < 0 && errno == ESRCH;
}

static void watch_free(struct watch *w, bool keep_ring) {
        struct watch **p = &W.list;
        while (*p != w)
                p = &(*p)->next;
        *p = w->next;
        W.n--;
        event_free(w->timer);
        if (w->pidfd >= 0)
                close(w->pidfd);
        if (!keep_ring && w->dead.ring_fd >= 0)
                close(w->dead.ring_fd);
        free(w);
}

static void on_tick(evutil_socket_t fd, short what, void *arg) {
        (void)fd;
        (void)what;
        struct watch *w = arg;
        int closed = fr_pm_closed(w->dead.ring_fd);
        if (closed != 0) {
                if (closed < 0)
                        frd_log(FRD_WARN, "agent %s[%d]: its ring is no longer readable (%s): no "
                                        "post-mortem",
                               w->dead.comm, (int)w->dead.pid, strerror(-closed));
                else
                        frd_log(FRD_INFO, "agent %s[%d] %s: no post-mortem", w->dead.comm,
                               (int)w->dead.pid,
                               closed == FR_PM_CLOSED_EXEC ? "exec'd" : "stopped cleanly");
                watch_free(w, false);
                W.ended();
                return;
        }
        if (process_gone(w)) {
                struct frd_pm_dead d = w->dead;
                watch_free(w, true);
                W.died(&d); /* owns d.ring_fd now */
                return;
        }
        if (++w->ticks * TICK_MS >= WATCH_MS) {
                frd_log(FRD_INFO, "agent %s[%d] closed its connection but is still running (exec?): "
                                "no post-mortem",
                       w->dead.comm, (int)w->dead.pid);
                watch_free(w, false);
                W.ended();
        }
}

void frd_pm_init(void (*died)(struct frd_pm_dead *), void (*ended)(void)) {
        W.died = died;
        W.ended = ended;
}

int frd_pm_watch(struct event_base *base, int ring_fd, int pidfd, pid_t pid, const char *comm,
                const char *exe) {
        struct watch *w = calloc(1, sizeof *w);
        if (w)
                w->timer = event_new(base, -1, EV_PERSIST, on_tick, w);
        struct timeval tv = {0, TICK_MS * 1000};
        if (!w || !w->timer || event_add(w->timer, &tv) < 0) {
                if (w && w->timer)
                        event_free(w->timer);
                free(w);
                close(ring_fd);
                if (pidfd >= 0)
                        close(pidfd);
                return -ENOMEM;
        }
        w->pidfd = pidfd;
        w->dead.ring_fd = ring_fd;
        w->dead.pid = pid;
        snprintf(w->dead.comm, sizeof w->dead.comm, "%s", comm);
        snprintf(w->dead.exe, sizeof w->dead.exe, "%s", exe);
        w->next = W.list;
        W.list = w;
        W.n++;
        on_tick(-1, 0, w); /* often decided at once */
        return 0;
}

void frd_pm_forget(pid_t pid) {
        for (struct watch *w = W.list, *next; w; w = next) {
                next = w->next;
                if (w->dead.pid == pid) {
                        frd_log(FRD_DEBUG, "agent %s[%d] exec'd: no post-mortem", w->dead.comm,
                               (int)pid);
                        watch_free(w, false);
                        W.ended();
                }
        }
}

unsigned frd_pm_watching(void) { return W.n; }
