/* The daemon's state (struct frd_daemon D, one instance on the loop's
 * thread) and the small helpers every part of the daemon shares. */
#include <errno.h>
#include <event2/event.h>
#include <grp.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "frd.h"

struct frd_daemon D = {.listen_fd = -1};

double frd_ms_since(const struct timespec *t0) {
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

uint64_t frd_realtime_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void frd_notify_status(void) {
        sd_notifyf(0, "STATUS=%u agents connected, %llu snapshots written, %llu failed%s",
                   D.nagents, (unsigned long long)D.written, (unsigned long long)D.failed,
                   D.stopping ? ", stopping" : "");
}

void frd_maybe_exit(void) {
        static bool said;
        if (!D.stopping || D.snaps || frd_pm_watching() || said)
                return;
        said = true;
        frd_log(FRD_NOTICE, "no snapshot in progress: exiting");
        event_base_loopexit(D.base, NULL);
}

int frd_resolve_group(const char *name, gid_t *ret) {
        if (!name[0]) {
                *ret = (gid_t)-1;
                return 0;
        }
        struct group *g = getgrnam(name);
        if (!g)
                return -ENOENT;
        *ret = g->gr_gid;
        return 0;
}
