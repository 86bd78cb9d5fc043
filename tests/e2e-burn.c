/* An unmodified program (no flightrec header) for the daemon's end-to-end
 * tests: two threads burn CPU in two functions, 2:1. Runs SECONDS (default
 * 3600), or until killed. Usage: e2e-burn [SECONDS] */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static volatile double sink;
static double seconds = 3600;

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

__attribute__((noinline)) void burn_two_thirds(void) {
        double x = 0;
        for (int i = 0; i < 200000; i++)
                x += (double)i * 1e-9;
        sink = x;
}

__attribute__((noinline)) void burn_one_third(void) {
        double x = 0;
        for (int i = 0; i < 200000; i++)
                x += (double)i * 1e-9;
        sink = x;
}

/* Each thread runs 3 slices in turn: 2 in burn_two_thirds, 1 in burn_one_third. */
static void *worker(void *arg) {
        (void)arg;
        double end = now() + seconds;
        while (now() < end) {
                burn_two_thirds();
                burn_two_thirds();
                burn_one_third();
        }
        return NULL;
}

int main(int argc, char **argv) {
        if (argc > 1)
                seconds = atof(argv[1]);
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
                pthread_create(&t[i], NULL, worker, NULL);
        for (int i = 0; i < 2; i++)
                pthread_join(t[i], NULL);
        return 0;
}
