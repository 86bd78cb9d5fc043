/* bench_timeline: time of `flightrecctl perfetto` on a 64 MiB trace (issue
 * 13: at most 2 s), and the size of what it writes.
 *
 * The trace is generated (tests/tracegen): 8 threads, 10 generations of 1 s,
 * each thread serving requests (a task, two nested regions, a log every 16th
 * request) with CPU samples at 1000 Hz, until the trace is MIB MiB (default
 * 64). Or TRACE: a trace file of your own (.trace or .trace.lz4).
 * Rounds interleave (A B C A B C ...): A the reader alone (validation, the
 * floor under any conversion), B the protobuf export, C the JSON export;
 * each with the default budget, then once without a budget. Prints medians
 * and min..max, the ratio to the reader of the same rounds, and output sizes.
 * Usage: bench_timeline [--mib N | TRACE] [ROUNDS]
 * (BENCH_TIMELINE_SAVE=FILE keeps the generated trace.) */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "timeline.h"
#include "trace_reader.h"
#include "tracegen.h"

static double clock_s(clockid_t id) {
        struct timespec ts;
        clock_gettime(id, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
static double now(void) {
        return clock_s(CLOCK_MONOTONIC);
}
/* CPU time too: on a shared machine the wall time says more about the
 * neighbours than about us. */
static double cpu(void) {
        return clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static struct tg_trace *generate(size_t target) {
        static const uint64_t stacks[4][3] = {{0x401136, 0x401180, 0x4011c0},
                                              {0x401200, 0x401180, 0x4011c0},
                                              {0x401240, 0x401280, 0x4011c0},
                                              {0x4012c0, 0x4011c0, 0}};
        struct tg_trace *t = tg_trace_new();
        const int nthreads = 8, ngens = 10;
        const uint64_t sec = 1000000000ull;
        /* Requests per thread and generation, from the target size (about
         * 45 bytes a request, measured). */
        uint64_t per = target / 45 / (uint64_t)(nthreads * ngens);
        uint64_t task = 1;
        tg_trace_header(t, 4242, "bench", "/usr/bin/bench", "bench", 0);
        for (int gi = 0; gi < ngens; gi++) {
                uint64_t base = (uint64_t)gi * sec;
                struct tg_gen *g = tg_gen_new(t, base, base + sec);
                g->sample_hz = 1000;
                if (gi == 0) {
                        char name[16];
                        for (int i = 0; i < nthreads; i++) {
                                snprintf(name, sizeof name, "worker-%d", i);
                                tg_status_thread(g, 100 + (uint64_t)i, name);
                        }
                }
                tg_map(g, 0x400000, 0x402000, 0, "/usr/bin/bench", "\x01\x02", 2);
                for (int i = 0; i < nthreads; i++) {
                        struct tg_batch *b = tg_events(g, 100 + (uint64_t)i, base);
                        uint64_t step = sec / (per + 1);
                        uint64_t tm = base + 1;
                        for (uint64_t r = 0; r < per; r++) {
                                uint64_t id = task++;
                                if (r && r % 16384 == 0) /* batches stay under 1 MiB */
                                        b = tg_events(g, 100 + (uint64_t)i, tm);
                                tg_task_begin(b, tm, id, 0, "request");
                                tg_region_begin(b, tm + step / 6, id, "render");
                                tg_region_begin(b, tm + 2 * step / 6, id, "layout");
                                tg_region_end(b, tm + 3 * step / 6, id, "layout");
                                tg_region_end(b, tm + 4 * step / 6, id, "render");
                                if (r % 16 == 0)
                                        tg_log(b, tm + 9 * step / 12, id, "progress", "16 more");
                                tg_task_end(b, tm + 5 * step / 6, id);
                                tm += step;
                                if (tm >= base + sec - step)
                                        break;
                        }
                        struct tg_batch *s = tg_samples(g, 100 + (uint64_t)i, base);
                        for (int k = 0; k < 1000; k++)
                                tg_sample(s, base + (uint64_t)k * 1000000 + 7, 1, 0, "render",
                                          stacks[k % 4], k % 4 == 3 ? 2 : 3);
                }
        }
        return t;
}

struct variant {
        const char *name;
        unsigned flags; /* ~0u: the reader alone */
        uint64_t max;   /* budget: 0 default, UINT64_MAX none */
        double *t, *c; /* wall, CPU seconds per round */
        size_t out_len;
        struct fr_timeline_stats st;
};

static int run(struct variant *v, const uint8_t *data, size_t len, int round) {
        char err[256];
        double t0 = now(), c0 = cpu();
        if (v->flags == ~0u) {
                if (fr_trace_read(data, len, 0, NULL, NULL, NULL, err, sizeof err) != 0) {
                        fprintf(stderr, "bench_timeline: %s\n", err);
                        return -1;
                }
        } else {
                struct fr_timeline_options o = {.flags = v->flags | FR_TIMELINE_NO_SYMBOLIZE,
                                                .max_events_per_s = v->max,
                                                .max_samples_per_s = v->max};
                uint8_t *out;
                if (fr_timeline_from_trace(data, len, &o, &out, &v->out_len, &v->st, err,
                                           sizeof err) != 0) {
                        fprintf(stderr, "bench_timeline: %s\n", err);
                        return -1;
                }
                free(out);
        }
        v->t[round] = now() - t0;
        v->c[round] = cpu() - c0;
        return 0;
}

int main(int argc, char **argv) {
        size_t mib = 64, len;
        const char *file = NULL;
        int rounds = 5, a = 1;
        uint8_t *data;
        char err[256];

        if (a < argc && strcmp(argv[a], "--mib") == 0 && a + 1 < argc) {
                mib = (size_t)atol(argv[a + 1]);
                a += 2;
        } else if (a < argc && argv[a][0] != '-' && atoi(argv[a]) == 0) {
                file = argv[a++];
        }
        if (a < argc)
                rounds = atoi(argv[a]);
        if (rounds < 1 || rounds > 50 || mib < 1 || mib > 1024) {
                fprintf(stderr, "usage: bench_timeline [--mib N | TRACE] [ROUNDS]\n");
                return 2;
        }
        if (file) {
                if (fr_trace_load_file(file, (size_t)1 << 31, &data, &len, err, sizeof err) < 0) {
                        fprintf(stderr, "bench_timeline: %s: %s\n", file, err);
                        return 1;
                }
        } else {
                struct tg_trace *t = generate(mib << 20);
                tg_trace_encode(t, &data, &len);
                const char *save = getenv("BENCH_TIMELINE_SAVE"); /* keep it, e.g. for perf */
                if (save && tg_trace_write_file(t, save) < 0)
                        fprintf(stderr, "bench_timeline: cannot write %s\n", save);
                tg_trace_free(t);
        }
        printf("trace: %s, %.1f MiB decoded\n", file ? file : "generated", (double)len / (1 << 20));

        struct variant v[] = {
                {"reader alone (validation)", ~0u, 0, NULL, NULL, 0, {0}},
                {"perfetto .pftrace, default budget", 0, 0, NULL, NULL, 0, {0}},
                {"perfetto --json, default budget", FR_TIMELINE_JSON, 0, NULL, NULL, 0, {0}},
                {"perfetto .pftrace, no budget", 0, UINT64_MAX, NULL, NULL, 0, {0}},
                {"perfetto --json, no budget", FR_TIMELINE_JSON, UINT64_MAX, NULL, NULL, 0, {0}},
        };
        size_t nv = sizeof v / sizeof *v;
        for (size_t i = 0; i < nv; i++)
                v[i].t = calloc((size_t)rounds, sizeof(double)),
                v[i].c = calloc((size_t)rounds, sizeof(double));
        for (int r = 0; r < rounds; r++)
                for (size_t i = 0; i < nv; i++)
                        if (run(&v[i], data, len, r) < 0)
                                return 1;
        double ref[50];
        memcpy(ref, v[0].t, (size_t)rounds * sizeof(double));
        qsort(ref, (size_t)rounds, sizeof(double), cmp_double);
        double ref_med = ref[rounds / 2];
        for (size_t i = 0; i < nv; i++) {
                double ratio[50];
                for (int r = 0; r < rounds; r++)
                        ratio[r] = v[i].t[r] / v[0].t[r]; /* against the reader of the same round */
                qsort(v[i].t, (size_t)rounds, sizeof(double), cmp_double);
                qsort(v[i].c, (size_t)rounds, sizeof(double), cmp_double);
                qsort(ratio, (size_t)rounds, sizeof(double), cmp_double);
                printf("%-34s wall median %6.3f s (%.3f..%.3f), CPU %6.3f s, x%.2f the reader",
                       v[i].name, v[i].t[rounds / 2], v[i].t[0], v[i].t[rounds - 1],
                       v[i].c[rounds / 2], ratio[rounds / 2]);
                if (v[i].flags != ~0u)
                        printf(", output %.1f MiB: %" PRIu64 " slices, %" PRIu64 " instants, %" PRIu64
                               " samples; dropped %" PRIu64 " events, %" PRIu64 " samples",
                               (double)v[i].out_len / (1 << 20), v[i].st.nslices, v[i].st.ninstants,
                               v[i].st.nsamples, v[i].st.dropped_events, v[i].st.dropped_samples);
                printf("\n");
        }
        printf("target: a 64 MiB trace in <= 2 s; reader median %.3f s\n", ref_med);
        for (size_t i = 0; i < nv; i++) {
                free(v[i].t);
                free(v[i].c);
        }
        free(data);
        return 0;
}
