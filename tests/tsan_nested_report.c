/* For test-wait-exit (TSan build): GCC 12's TSan deadlocking on itself, with
 * no flightrec code. A thread-directed timer sends SIGPROF every 50 us; the
 * handler, which TSan runs at once while the main thread is inside
 * nanosleep's interceptor (tsan_nested_report_wrap.c), races on a new
 * address in a new function each time the wrapper's own race is being
 * reported. The nested report waits for a lock the outer one holds: the
 * program hangs (docs/agent-design.md "Sanitizer builds").
 * Usage: tsan_nested_report [ITERATIONS] */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

extern int tnr_shared;
extern volatile int tnr_in_report;
static int slots[16];
static volatile int nested;

#define RACER(n)                                                                                   \
        __attribute__((noinline)) static void racer##n(void) { slots[n]++; }
RACER(0) RACER(1) RACER(2) RACER(3) RACER(4) RACER(5) RACER(6) RACER(7)
RACER(8) RACER(9) RACER(10) RACER(11) RACER(12) RACER(13) RACER(14) RACER(15)
static void (*const racers[16])(void) = {racer0, racer1, racer2,  racer3,  racer4,  racer5,
                                         racer6, racer7, racer8,  racer9,  racer10, racer11,
                                         racer12, racer13, racer14, racer15};

static void on_prof(int sig) {
        (void)sig;
        if (tnr_in_report && nested < 16)
                racers[nested++]();
}

static void *other(void *arg) {
        for (unsigned i = 0;; i++) {
                tnr_shared++;
                slots[i & 15]++;
        }
        return arg;
}

int main(int argc, char **argv) {
        long n = argc > 1 ? atol(argv[1]) : 5000;
        struct sigaction sa = {0};
        sa.sa_handler = on_prof;
        sa.sa_flags = SA_RESTART;
        sigaction(SIGPROF, &sa, NULL);
        struct sigevent ev = {0};
        ev.sigev_notify = SIGEV_THREAD_ID;
        ev.sigev_signo = SIGPROF;
        ev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
        timer_t tm;
        timer_create(CLOCK_MONOTONIC, &ev, &tm);
        struct itimerspec every = {{0, 50000}, {0, 50000}};
        timer_settime(tm, 0, &every, NULL);
        pthread_t t;
        pthread_create(&t, NULL, other, NULL);
        for (long i = 0; i < n; i++) {
                struct timespec ts = {0, 10000};
                nanosleep(&ts, NULL);
        }
        printf("no deadlock in %ld sleeps\n", n);
        return 0;
}
