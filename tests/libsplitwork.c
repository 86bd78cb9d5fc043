/* The shared-library half of sample-target's split workload. */
#include <stdint.h>
#include <time.h>

static volatile uint64_t sink;

__attribute__((noinline)) void libWork(double seconds) {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        double end = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9 + seconds;
        for (;;) {
                clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
                if ((double)ts.tv_sec + (double)ts.tv_nsec * 1e-9 >= end)
                        break;
                for (int i = 0; i < 100000; i++)
                        sink = sink * 13 + (uint64_t)i;
        }
}
