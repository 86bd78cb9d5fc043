/* The deferred start: a process that the LD_PRELOAD constructor chose
 * records only once it has lived FLIGHTREC_START_DELAY_MS (1 s by default), so
 * the shell commands, compilers and cron jobs that live less pay one thread
 * creation and nothing else: no pool, no memfd, no thread scan, no
 * connection, no unwind tables. Nothing waits for the starter thread: not
 * the constructor (the thread is created without waiting for it to run), not
 * exit() (the destructor only cancels it, and exit_group ends it), not exec.
 * A fork child of a process still waiting gets its own starter. */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "fr_internal.h"

static struct fr_agent_config lazy_cfg;
static struct timespec deadline;
static unsigned lazy_delay_ms;
FR_EVERY_PROCESS_DATA static _Atomic int state; /* 0 none, 1 waiting, 2 cancelled */

static void *starter_main(void *arg) {
        (void)arg;
        (void)prctl(PR_SET_NAME, "flightrec-start", 0, 0, 0);
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL) == EINTR)
                ;
        if (atomic_load(&state) != 1)
                return NULL;
        /* A JVM has loaded libjvm by now; Go stays off for good (fr_agent.c
         * checked at the constructor, and its runtime cannot appear later
         * except as a c-shared library, checked here). */
        if (fr__runtime_detect() & FR_RUNTIME_GO) {
                if (fr__getenv("FLIGHTREC_DEBUG"))
                        fr__log_error("Go runtime in %s: staying off", fr__runtime_go_object());
                return NULL;
        }
        int expected = 1;
        if (!atomic_compare_exchange_strong(&state, &expected, 0))
                return NULL;
        int r = fr__start_config(&lazy_cfg);
        if (r < 0 && r != -EALREADY)
                fr__log_error("not started: %s", strerror(-r));
        return NULL;
}

static int arm(void) {
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += lazy_delay_ms / 1000;
        deadline.tv_nsec += (long)(lazy_delay_ms % 1000) * 1000000;
        if (deadline.tv_nsec >= 1000000000) {
                deadline.tv_sec++;
                deadline.tv_nsec -= 1000000000;
        }
        atomic_store(&state, 1);
        pthread_t t;
        int r = fr__thread_create_async(&t, starter_main, NULL);
        if (r) {
                atomic_store(&state, 0);
                return -r;
        }
        pthread_detach(t);
        return 0;
}

int fr__lazy_start(const struct fr_agent_config *cfg, unsigned start_delay_ms) {
        lazy_cfg = *cfg;
        lazy_delay_ms = start_delay_ms;
        return arm();
}

FR_EVERY_PROCESS void fr__lazy_cancel(void) {
        int expected = 1;
        atomic_compare_exchange_strong(&state, &expected, 2);
}

bool fr__lazy_pending(void) { return atomic_load(&state) == 1; }

/* In a fork child: the parent's starter thread is not here. */
int fr__lazy_after_fork(void) { return atomic_load(&state) == 1 ? arm() : 0; }
