/* The CPU-bound workload of the sampling benchmark (bench/run-sample.sh):
 * THREADS threads each run WORK units of a hash loop through a few frames of
 * calls, then the program prints its wall time and CPU time (user + system,
 * all threads):
 *   wall_s CPU_S cpu_s CPU_S
 * It knows nothing of the profiler under it (flightrec or gperftools by
 * LD_PRELOAD). Under flightrec it asks for a snapshot at the end
 * (fr_snapshot, found with dlsym), so the samples can be counted. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static long work;

__attribute__((noinline)) static uint64_t leaf(uint64_t x) {
        for (int i = 0; i < 1000; i++)
                x = x * 6364136223846793005ull + 1442695040888963407ull;
        return x;
}
__attribute__((noinline)) static uint64_t middle(uint64_t x) { return leaf(x) ^ leaf(x + 1); }
__attribute__((noinline)) static uint64_t outer(uint64_t x) { return middle(x) + middle(x * 3); }

static void *run(void *arg) {
        uint64_t x = (uintptr_t)arg;
        for (long i = 0; i < work; i++)
                x = outer(x);
        return (void *)(uintptr_t)x;
}

static double seconds(struct timeval tv) { return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6; }

int main(int argc, char **argv) {
        if (argc != 3) {
                fprintf(stderr, "usage: %s THREADS WORK\n", argv[0]);
                return 2;
        }
        int n = atoi(argv[1]);
        work = atol(argv[2]);
        if (n < 1 || n > 64 || work < 1) {
                fprintf(stderr, "%s: THREADS in 1..64, WORK >= 1\n", argv[0]);
                return 2;
        }
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        pthread_t t[64];
        for (int i = 0; i < n; i++)
                pthread_create(&t[i], NULL, run, (void *)(uintptr_t)(i + 1));
        for (int i = 0; i < n; i++)
                pthread_join(t[i], NULL);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("wall_s %.6f cpu_s %.6f\n",
               (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9,
               seconds(ru.ru_utime) + seconds(ru.ru_stime));
        fflush(stdout);
        int (*snapshot)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "fr_snapshot");
        if (snapshot)
                snapshot("bench");
        return 0;
}
