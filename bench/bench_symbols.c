/* bench_symbols: an agent whose ring holds CPU samples with stacks through
 * its own functions and libc's (qsort, memcpy, snprintf, strtod), for the
 * daemon's symbolization benchmark (bench/run-daemon.sh). Burns CPU_SECONDS
 * of CPU time (at FLIGHTREC_HZ=1000: about 1000 samples per second), prints
 * "ready", then sleeps until killed so that the ring stays as it is.
 * Usage: bench_symbols [CPU_SECONDS] */
#include <flightrec.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile double sink;

static double cpu_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b) {
        int x = *(const int *)a, y = *(const int *)b;
        return (x > y) - (x < y);
}

__attribute__((noinline)) static void sort_some(int *v, size_t n) {
        for (size_t i = 0; i < n; i++)
                v[i] = (int)((i * 2654435761u) >> 7);
        qsort(v, n, sizeof *v, cmp);
}

__attribute__((noinline)) static void format_some(char *buf, size_t len) {
        for (int i = 0; i < 200; i++) {
                snprintf(buf, len, "%d %f %s", i, i * 1.5, "flightrec");
                sink += strtod(buf + 2, NULL);
        }
}

__attribute__((noinline)) static void copy_some(char *dst, const char *src, size_t n) {
        for (int i = 0; i < 50; i++) {
                memcpy(dst, src, n);
                sink += dst[i];
        }
}

__attribute__((noinline)) static void work(int *v, char *a, char *b) {
        sort_some(v, 4096);
        format_some(a, 256);
        copy_some(a, b, 1 << 16);
}

int main(int argc, char **argv) {
        double burn = argc > 1 ? atof(argv[1]) : 1.0;
        int r = fr_start(NULL);
        if (r < 0 && r != -114 /* EALREADY: under LD_PRELOAD */) {
                fprintf(stderr, "bench_symbols: fr_start: %d\n", r);
                return 1;
        }
        int *v = malloc(4096 * sizeof *v);
        char *a = malloc(1 << 16), *b = calloc(1, 1 << 16);
        if (!v || !a || !b)
                return 1;
        double end = cpu_s() + burn;
        while (cpu_s() < end)
                work(v, a, b);
        printf("ready\n");
        fflush(stdout);
        for (;;)
                pause();
}
