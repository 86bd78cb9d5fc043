/* A program that knows nothing of flightrec (no header, no link): the CPU
 * workloads of the sampling acceptance tests, run under
 * LD_PRELOAD=libflightrec.so.
 *
 *   sample-target hog SECONDS     spin in cpuHog (seed 003 in our terms)
 *   sample-target split SECONDS   two threads, each spending 2/3 of its CPU
 *                                 time in exeWork (here) and 1/3 in libWork
 *                                 (libsplitwork.so)
 *   sample-target region SECONDS  cpuHog inside region "hot", then coldWork
 *                                 outside any region (the region API is found
 *                                 with dlsym, as an optional integration)
 *
 * When the agent is loaded it asks for a snapshot at the end through
 * fr_snapshot (found with dlsym): without a daemon it lands in FLIGHTREC_DIR. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void libWork(double seconds); /* libsplitwork.so */

static volatile uint64_t sink;

static double thread_cpu(void) {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

__attribute__((noinline)) void cpuHog(double seconds) {
        double end = thread_cpu() + seconds;
        while (thread_cpu() < end)
                for (int i = 0; i < 100000; i++)
                        sink = sink * 31 + (uint64_t)i;
}

__attribute__((noinline)) void exeWork(double seconds) {
        double end = thread_cpu() + seconds;
        while (thread_cpu() < end)
                for (int i = 0; i < 100000; i++)
                        sink = sink * 17 + (uint64_t)i;
}

__attribute__((noinline)) void coldWork(double seconds) {
        cpuHog(seconds);
        sink++;
}

static double seconds;

static void *split_thread(void *arg) {
        (void)arg;
        /* Slices of 20 ms of CPU: 2 in exeWork, 1 in libWork. */
        for (double done = 0; done < seconds; done += 0.03) {
                exeWork(0.02);
                libWork(0.01);
        }
        return NULL;
}

int main(int argc, char **argv) {
        if (argc != 3) {
                fprintf(stderr, "usage: %s hog|split|region SECONDS\n", argv[0]);
                return 2;
        }
        seconds = atof(argv[2]);
        if (strcmp(argv[1], "hog") == 0) {
                cpuHog(seconds);
        } else if (strcmp(argv[1], "split") == 0) {
                pthread_t t[2];
                for (int i = 0; i < 2; i++)
                        pthread_create(&t[i], NULL, split_thread, NULL);
                for (int i = 0; i < 2; i++)
                        pthread_join(t[i], NULL);
        } else if (strcmp(argv[1], "region") == 0) {
                void (*begin)(uint64_t, const char *) = (void (*)(uint64_t, const char *))dlsym(RTLD_DEFAULT, "fr_region_begin");
                void (*end)(uint64_t, const char *) = (void (*)(uint64_t, const char *))dlsym(RTLD_DEFAULT, "fr_region_end");
                if (begin)
                        begin(0, "hot");
                cpuHog(seconds * 2 / 3);
                if (end)
                        end(0, "hot");
                coldWork(seconds / 3);
        } else {
                fprintf(stderr, "%s: unknown mode %s\n", argv[0], argv[1]);
                return 2;
        }
        int (*snapshot)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "fr_snapshot");
        if (snapshot && snapshot(argv[1]) != 0) {
                fprintf(stderr, "%s: fr_snapshot failed\n", argv[0]);
                return 1;
        }
        return 0;
}
