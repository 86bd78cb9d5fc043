/* Seccomp: under a filter the agent makes only the system calls of systemd's
 * @system-service set (docs/agent-design.md lists them), so that the usual
 * hardening (SystemCallFilter=@system-service, whose default action kills)
 * never kills the application because of us. perf_event_open is the one call
 * of ours outside that set: under a filter, threads are sampled with the CPU
 * timer instead, or, with FLIGHTREC_SECCOMP=off, the agent does not start
 * (and stops sampling if a filter comes later).
 *
 * Filters are per thread, and one installed later (by the thread, or with
 * SECCOMP_FILTER_FLAG_TSYNC for all) is never removed: the mode is read from
 * the calling thread's /proc/thread-self/status before every perf call, and
 * by the advancer at every period; once seen, the process stays on timers. */
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "fr_internal.h"

static _Atomic bool seen;

static int mode_of(const char *path) {
        char buf[4096];
        if (fr__read_file(path, buf, sizeof buf) <= 0)
                return -1;
        const char *p = strstr(buf, "\nSeccomp:");
        if (!p)
                return 0; /* kernel without seccomp */
        p += 9;
        while (*p == ' ' || *p == '\t')
                p++;
        return *p >= '0' && *p <= '9' ? *p - '0' : -1;
}

int fr__seccomp_mode(void) { return mode_of("/proc/thread-self/status"); }

bool fr__seccomp_filtered(bool process_too) {
        if (atomic_load_explicit(&seen, memory_order_relaxed))
                return true;
        /* The calling thread's (it is about to make the call), then, at start
         * and every period, the main thread's (what /proc/self/status shows,
         * and what a daemon's hardening set). 1 strict, 2 filter, -1
         * unreadable: the worst. */
        if (fr__seccomp_mode() == 0 && (!process_too || mode_of("/proc/self/status") == 0))
                return false;
        atomic_store(&seen, true);
        return true;
}

bool fr__seccomp_seen(void) { return atomic_load_explicit(&seen, memory_order_relaxed); }
