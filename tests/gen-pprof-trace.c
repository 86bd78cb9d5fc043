/* gen-pprof-trace OUT: write a trace of this very process (for
 * test-pprof-cli.sh) whose samples land in two functions of this program,
 * cpuHog and otherWork, with weights 2:1: cpuHog 200 periods in region
 * "hot", otherWork 100 in region "cold", over two generations and two
 * threads, with samples of weight 1 and more. Its MAPS are this program's
 * mappings with the real build id, so the file symbolizes as long as this
 * executable stays where it is. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "selfmaps.h"
#include "tracegen.h"

#define NOINLINE __attribute__((noinline, noclone, used))
#define RA() ((uint64_t)(uintptr_t)__builtin_return_address(0))

volatile unsigned long sink; /* side effects: no tail calls, nothing folded */
static uint64_t ra_hog, ra_other;

NOINLINE void cpuHog(void) {
        ra_hog = RA();
        for (int i = 0; i < 1000; i++)
                sink += (unsigned long)i * 7;
}

NOINLINE void otherWork(void) {
        ra_other = RA();
        for (int i = 0; i < 500; i++)
                sink ^= (unsigned long)i;
}

/* The caller both are sampled under. */
NOINLINE void driver(void) {
        cpuHog();
        sink++;
        otherWork();
        sink++;
}

static uint64_t addr_of(void (*f)(void)) { return (uint64_t)(uintptr_t)f; }

int main(int argc, char **argv) {
        struct sm_object self;
        char exe[PATH_MAX];
        int r;

        if (argc != 2) {
                fprintf(stderr, "usage: gen-pprof-trace OUT\n");
                return 2;
        }
        driver();
        r = sm_load(&self, (const void *)(uintptr_t)addr_of(cpuHog));
        if (r < 0 || !realpath("/proc/self/exe", exe)) {
                fprintf(stderr, "gen-pprof-trace: cannot describe this program: %s\n",
                        strerror(r < 0 ? -r : errno));
                return 1;
        }
        /* Leaves a little inside the functions, as an interrupted PC is. */
        const uint64_t hog[] = {addr_of(cpuHog) + 4, ra_hog};
        const uint64_t other[] = {addr_of(otherWork) + 4, ra_other};

        struct tg_trace *t = tg_trace_new();
        tg_trace_header(t, (uint64_t)getpid(), "gen-pprof-trace", exe, "test", 0);
        /* Generation 1: 1 s at 1 GHz ticks, 100 Hz. cpuHog 60x1 + 20x2 = 100
         * on thread 10; otherWork 50x1 on thread 11. */
        struct tg_gen *g = tg_gen_new(t, 1000000000, 2000000000);
        g->sampler = FR_SAMPLER_PERF;
        g->sample_hz = 100;
        tg_status_thread(g, 10, "main");
        tg_status_thread(g, 11, "worker");
        sm_add_maps(g, &self, NULL);
        struct tg_batch *b = tg_samples(g, 10, 1000000000);
        uint64_t time = 1000000000;
        for (int i = 0; i < 80; i++)
                tg_sample(b, time += 10000000, i < 60 ? 1 : 2, 0, "hot", hog, 2);
        b = tg_samples(g, 11, 1000000000);
        time = 1000000000;
        for (int i = 0; i < 50; i++)
                tg_sample(b, time += 10000000, 1, 0, "cold", other, 2);
        /* Generation 2: cpuHog 100x1, otherWork 10x5. */
        g = tg_gen_new(t, 2000000000, 3000000000);
        g->sampler = FR_SAMPLER_PERF;
        g->sample_hz = 100;
        sm_add_maps(g, &self, NULL);
        b = tg_samples(g, 10, 2000000000);
        time = 2000000000;
        for (int i = 0; i < 100; i++)
                tg_sample(b, time += 5000000, 1, 0, "hot", hog, 2);
        b = tg_samples(g, 11, 2000000000);
        time = 2000000000;
        for (int i = 0; i < 10; i++)
                tg_sample(b, time += 50000000, 5, 0, "cold", other, 2);

        r = tg_trace_write_file(t, argv[1]);
        tg_trace_free(t);
        if (r < 0) {
                fprintf(stderr, "gen-pprof-trace: %s: %s\n", argv[1], strerror(-r));
                return 1;
        }
        return 0;
}
