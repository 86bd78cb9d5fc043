/* An unmodified program (no flightrec header) for the daemon's end-to-end
 * tests: two threads burn CPU in two functions, 2:1. Runs SECONDS (default
 * 3600), or until killed; with "idle", only sleeps (many agents at once);
 * with "fork-exit", forks a child that ends with _exit() after SECONDS;
 * with "abort", prints the time (CLOCK_REALTIME, ns) and calls abort() at
 * the end (post-mortem tests).
 * Usage: e2e-burn [SECONDS [idle|abort|fork-exit]] */
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Thread_local volatile double sink; /* per thread: no race */
static double seconds = 3600;

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double thread_cpu(void) {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Each burns CPU for the given CPU time, so that the split is exact whatever
 * the CPU speed does meanwhile. */
__attribute__((noinline)) void burn_two_thirds(double cpu_s) {
        double end = thread_cpu() + cpu_s, x = 0;
        do
                for (int i = 0; i < 20000; i++)
                        x += (double)i * 1e-9;
        while (thread_cpu() < end);
        sink = x;
}

__attribute__((noinline)) void burn_one_third(double cpu_s) {
        double end = thread_cpu() + cpu_s, x = 0;
        do
                for (int i = 0; i < 20000; i++)
                        x += (double)i * 1e-9;
        while (thread_cpu() < end);
        sink = x;
}

/* Each thread alternates: 2 ms of CPU in burn_two_thirds, 1 ms in burn_one_third. */
static void *worker(void *arg) {
        (void)arg;
        double end = now() + seconds;
        while (now() < end) {
                burn_two_thirds(0.002);
                burn_one_third(0.001);
        }
        return NULL;
}

int main(int argc, char **argv) {
        if (argc > 1)
                seconds = atof(argv[1]);
        if (argc > 2 && strcmp(argv[2], "idle") == 0) {
                double end = now() + seconds;
                while (now() < end)
                        usleep(100000);
                return 0;
        }
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
                pthread_create(&t[i], NULL, worker, NULL);
        if (argc > 2 && strcmp(argv[2], "fork-exit") == 0) {
                /* A child that lives SECONDS and ends with _exit(). */
                pid_t c = fork();
                if (c == 0) {
                        double end = now() + seconds;
                        while (now() < end)
                                usleep(10000);
                        _exit(0);
                }
                printf("child %d\n", (int)c);
                fflush(stdout);
                waitpid(c, NULL, 0);
                return 0;
        }
        if (argc > 2 && strcmp(argv[2], "abort") == 0) {
                double end = now() + seconds;
                while (now() < end)
                        usleep(10000);
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                printf("abort at %lld\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
                fflush(stdout);
                abort();
        }
        for (int i = 0; i < 2; i++)
                pthread_join(t[i], NULL);
        return 0;
}
