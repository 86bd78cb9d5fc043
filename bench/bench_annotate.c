/* Hot-path cost of annotation events, and how long the advancer can stall an
 * application thread.
 *
 *   bench_annotate events flightrec|lttng|none THREADS PAIRS
 *       ns per event (a region begin or end) on each of THREADS threads:
 *       thread CPU time (the cost) and wall time (adds preemption: on a
 *       2-core machine the advancer competes with 2 busy threads)
 *   bench_annotate stall PERIOD_MS SECONDS
 *       latency percentiles of single fr_region_begin/end calls on one
 *       thread while the generation advances every PERIOD_MS
 *
 * bench/run-annotate.sh interleaves the runs it compares (the CPU speed of
 * these machines changes every few seconds) and prints medians and ratios. */
#include <flightrec.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef FR_BENCH_LTTNG
#define TRACEPOINT_DEFINE
#include "lttng_tp.h"
#endif

static uint64_t clock_ns(clockid_t id) {
        struct timespec ts;
        clock_gettime(id, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static uint64_t now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

enum mode { MODE_NONE, MODE_FLIGHTREC, MODE_LTTNG };
struct worker {
        enum mode mode;
        long pairs;
        double ns_per_event; /* thread CPU time: what the thread itself spent */
        double wall_ns_per_event; /* includes being preempted, e.g. by the advancer */
        pthread_barrier_t *go;
} __attribute__((aligned(64)));

static void *run_events(void *arg) {
        struct worker *w = arg;
        static const char *names[4] = {"parse", "lookup", "render", "send"};
        pthread_barrier_wait(w->go);
        if (w->mode == MODE_FLIGHTREC)
                for (uint64_t end = now_ns() + 2500000000u; now_ns() < end;)
                        for (int i = 0; i < 10000; i++) {
                                fr_region_begin(1, names[i & 3]);
                                fr_region_end(1, names[i & 3]);
                        }
        pthread_barrier_wait(w->go);
        uint64_t t0 = now_ns(), c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        for (long i = 0; i < w->pairs; i++) {
                const char *name = names[i & 3];
                switch (w->mode) {
                case MODE_FLIGHTREC:
                        fr_region_begin(1, name);
                        fr_region_end(1, name);
                        break;
#ifdef FR_BENCH_LTTNG
                case MODE_LTTNG:
                        tracepoint(frbench, region_begin, 1, name);
                        tracepoint(frbench, region_end, 1, name);
                        break;
#endif
                default:
                        __asm__ __volatile__("" ::"r"(name) : "memory");
                }
        }
        w->ns_per_event = (double)(clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0) / (2.0 * (double)w->pairs);
        w->wall_ns_per_event = (double)(now_ns() - t0) / (2.0 * (double)w->pairs);
        return NULL;
}

static int cmd_events(const char *mode_s, int nthreads, long pairs) {
        enum mode mode = strcmp(mode_s, "flightrec") == 0 ? MODE_FLIGHTREC
                         : strcmp(mode_s, "lttng") == 0   ? MODE_LTTNG
                                                          : MODE_NONE;
#ifndef FR_BENCH_LTTNG
        if (mode == MODE_LTTNG) {
                fprintf(stderr, "built without LTTng-UST\n");
                return 2;
        }
#endif
        if (mode == MODE_FLIGHTREC) {
                /* Steady state: 100 ms generations keep the live generation
                 * well inside the pool at this event rate (nothing is
                 * dropped), and the untimed warm-up below has the ring full and
                 * recycling blocks, as in a long-running process. */
                struct fr_config c = {.sampling_off = 1, .period_ms = 100, .max_bytes = 256u << 20};
                if (fr_start(&c) < 0)
                        return 1;
        }
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, (unsigned)nthreads);
        struct worker w[8];
        pthread_t th[8];
        for (int i = 0; i < nthreads; i++) {
                w[i] = (struct worker){.mode = mode, .pairs = pairs, .go = &go};
                pthread_create(&th[i], NULL, run_events, &w[i]);
        }
        double sum = 0, wall = 0;
        for (int i = 0; i < nthreads; i++) {
                pthread_join(th[i], NULL);
                sum += w[i].ns_per_event;
                wall += w[i].wall_ns_per_event;
        }
        printf("%s threads=%d wall_ns_per_event=%.2f ns_per_event=%.2f\n", mode_s, nthreads,
               wall / nthreads, sum / nthreads);
        if (mode == MODE_FLIGHTREC)
                fr_stop();
        return 0;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

static int cmd_stall(unsigned period_ms, unsigned seconds) {
        struct fr_config c = {.period_ms = period_ms, .sampling_off = 1};
        if (fr_start(&c) < 0)
                return 1;
        size_t cap = 60u * 1000 * 1000, n = 0;
        uint64_t *lat = malloc(cap * sizeof *lat);
        if (!lat)
                return 1;
        uint64_t end = now_ns() + (uint64_t)seconds * 1000000000u;
        struct timespec a, b;
        while (n < cap) {
                clock_gettime(CLOCK_MONOTONIC, &a);
                fr_region_begin(1, (n & 1) ? "odd" : "even");
                clock_gettime(CLOCK_MONOTONIC, &b);
                lat[n++] = (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000u + (uint64_t)(b.tv_nsec - a.tv_nsec);
                fr_region_end(1, (n & 1) ? "even" : "odd");
                if ((n & 1023) == 0 && now_ns() > end)
                        break;
        }
        fr_stop();
        qsort(lat, n, sizeof *lat, cmp_u64);
        printf("stall period_ms=%u calls=%zu p50_ns=%llu p99_ns=%llu p99.9_ns=%llu p99.99_ns=%llu max_ns=%llu\n",
               period_ms, n, (unsigned long long)lat[n / 2], (unsigned long long)lat[n * 99 / 100],
               (unsigned long long)lat[n * 999 / 1000], (unsigned long long)lat[n * 9999 / 10000],
               (unsigned long long)lat[n - 1]);
        free(lat);
        return 0;
}

int main(int argc, char **argv) {
        if (argc == 5 && strcmp(argv[1], "events") == 0) {
                int nt = atoi(argv[3]);
                if (nt < 1 || nt > 8)
                        return 2;
                return cmd_events(argv[2], nt, atol(argv[4]));
        }
        if (argc == 4 && strcmp(argv[1], "stall") == 0)
                return cmd_stall((unsigned)atoi(argv[2]), (unsigned)atoi(argv[3]));
        fprintf(stderr, "usage: bench_annotate events flightrec|lttng|none THREADS PAIRS\n"
                        "       bench_annotate stall PERIOD_MS SECONDS\n");
        return 2;
}
