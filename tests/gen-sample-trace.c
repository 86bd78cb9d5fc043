/* gen-sample-trace VALID BAD: write a small valid trace to VALID, and the same
 * trace cut inside its last batch to BAD (for test-dump-cli.sh). */
#include <stdio.h>
#include <stdlib.h>

#include "tracegen.h"

static struct tg_trace *build(void) {
        static const uint64_t leaf[] = {0x401136, 0x401180, 0x7f0000021000};
        struct tg_trace *t = tg_trace_new();
        struct tg_gen *g;
        struct tg_batch *b, *w, *s;

        tg_trace_header(t, 4242, "demo", "/usr/bin/demo", "SIGUSR1", 0);
        /* Generation 1: 1 ms from tick 1000000 (1 GHz ticks). */
        g = tg_gen_new(t, 1000000, 2000000);
        g->real_ns = 1700000000000000000ull;
        g->mono_ns = 5000000000ull;
        g->sampler = FR_SAMPLER_PERF;
        g->sample_hz = 100;
        tg_status_thread(g, 100, "main");
        tg_map(g, 0x400000, 0x402000, 0, "/usr/bin/demo", "\xab\xcd", 2);
        b = tg_events(g, 100, 1000000);
        tg_task_begin(b, 1000100, 1, 0, "request");
        tg_region_begin(b, 1000200, 1, "parse");
        w = tg_events(g, 101, 1000000);
        tg_thread_start(w, 1000150);
        tg_thread_name(w, 1000160, "worker \"1\"");
        tg_log(w, 1000300, 1, "http", "GET /index\nHost: x");
        s = tg_samples(g, 100, 1000000);
        tg_sample(s, 1000250, 1, 1, "parse", leaf, 3);
        /* Generation 2: the region and task end, the worker exits. */
        g = tg_gen_new(t, 2000000, 3000000);
        g->real_ns = 1700000000001000000ull;
        g->mono_ns = 5001000000ull;
        g->sampler = FR_SAMPLER_PERF;
        g->sample_hz = 100;
        b = tg_events(g, 100, 2000000);
        tg_region_end(b, 2000100, 1, "parse");
        tg_task_end(b, 2000200, 1);
        w = tg_events(g, 101, 2000000);
        tg_lost(w, 2000050, FR_LOST_EVENTS, 2);
        tg_thread_exit(w, 2000400);
        s = tg_samples(g, 101, 2000000);
        tg_sample(s, 2000060, 3, 0, NULL, leaf + 1, 1);
        return t;
}

int main(int argc, char **argv) {
        uint8_t *data;
        size_t len;
        FILE *f;

        if (argc != 3) {
                fprintf(stderr, "usage: gen-sample-trace VALID BAD\n");
                return 2;
        }
        struct tg_trace *t = build();
        tg_trace_encode_free(t, &data, &len);
        for (int i = 1; i <= 2; i++) {
                size_t n = i == 1 ? len : len - 3;
                f = fopen(argv[i], "wb");
                if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
                        perror(argv[i]);
                        return 1;
                }
        }
        free(data);
        return 0;
}
