/* bench_fill: an agent whose ring holds a given amount of data, for the
 * daemon's snapshot benchmarks (bench/run-daemon.sh). Logs 1 KiB messages
 * (FLIGHTREC_MAX_BYTES bounds what the ring keeps) for FILL_SECONDS, prints
 * "ready", then idles until killed so that the ring stays as it is.
 * MIB_PER_S (default: as fast as it can) paces the logging so that the pool
 * is not exhausted and the ring ends up holding about FILL_SECONDS * MIB_PER_S.
 * Usage: bench_fill FILL_SECONDS [MIB_PER_S] */
#include <flightrec.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
        double fill = argc > 1 ? atof(argv[1]) : 2;
        double rate = argc > 2 ? atof(argv[2]) * 1024 : 0; /* messages per second */
        int r = fr_start(NULL);
        if (r < 0 && r != -114 /* EALREADY */) {
                fprintf(stderr, "bench_fill: fr_start: %d\n", r);
                return 1;
        }
        char msg[1024];
        for (size_t i = 0; i < sizeof msg - 1; i++)
                msg[i] = (char)('a' + (i * 7 + i / 13) % 26); /* compresses, not trivially */
        msg[sizeof msg - 1] = '\0';
        double start = now(), end = start + fill;
        unsigned long n = 0;
        for (double t = start; t < end; t = now()) {
                unsigned long due = rate > 0 ? (unsigned long)((t - start) * rate) : n + 64;
                for (; n < due; n++) {
                        msg[n % 1000] = (char)('A' + n % 26);
                        fr_log(0, "bench", msg);
                }
                usleep(rate > 0 ? 1000 : 50);
        }
        printf("ready %lu messages\n", n);
        fflush(stdout);
        for (;;)
                pause();
}
