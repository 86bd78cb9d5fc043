/* The stack walk alone, away from signal delivery and preemption noise: a
 * chain of DEPTH frames without frame pointers (plus main's and libc's), walked
 * ROUNDS times through the .eh_frame tables from registers taken at the
 * bottom. "warm": walk after walk; "cold": 32 MiB of other memory touched
 * between walks (the tables, the stack and the code evicted from the caches,
 * as in a sample of a program with a large working set). Prints p50 and p99
 * ns per walk, frames found, and rows searched per frame.
 * Usage: bench_unwind [DEPTH] [ROUNDS] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fr_unwind.h"

static uint64_t tsc(void) {
        uint32_t lo, hi;
        __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
        return ((uint64_t)hi << 32) | lo;
}

static uint64_t *samples;
static int rounds, nsamples;
static unsigned char *junk;
static size_t junk_len = 32u << 20;
static struct fr_uw_bounds bounds;
static uint32_t frames;

static int cmp(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return (x > y) - (x < y);
}

__attribute__((noinline, optimize("omit-frame-pointer"))) static void bottom(int cold) {
        uint64_t pcs[128];
        for (int i = 0; i < rounds; i++) {
                if (cold)
                        for (size_t k = 0; k < junk_len; k += 64)
                                junk[k]++;
                struct fr_uw_regs r;
                __asm__ volatile("lea (%%rip), %0\n\tmov %%rsp, %1\n\tmov %%rbp, %2"
                                 : "=r"(r.pc), "=r"(r.sp), "=r"(r.fp));
                struct fr_uw_result res;
                uint64_t t0 = tsc();
                frames = fr__unwind_regs(&r, &bounds, 0, pcs, 128, &res);
                samples[nsamples++] = tsc() - t0;
        }
}

__attribute__((noinline, optimize("omit-frame-pointer"))) static int chain(int depth, int cold) {
        volatile int pad[3] = {depth};
        if (depth == 0)
                bottom(cold);
        else
                chain(depth - 1, cold);
        return pad[0];
}

int main(int argc, char **argv) {
        int depth = argc > 1 ? atoi(argv[1]) : 25;
        rounds = argc > 2 ? atoi(argv[2]) : 2000;
        samples = calloc((size_t)rounds, sizeof *samples);
        junk = malloc(junk_len);
        memset(junk, 1, junk_len);
        pthread_attr_t a;
        void *addr;
        size_t size;
        pthread_getattr_np(pthread_self(), &a);
        pthread_attr_getstack(&a, &addr, &size);
        bounds = (struct fr_uw_bounds){.lo = {(uintptr_t)addr}, .hi = {(uintptr_t)addr + size}, .n = 1};
        fr__unwind_init(FR_UW_MODE_AUTO);
        chain(depth, 0); /* tables for every object on the way */
        fr__unwind_update();
        struct timespec t0, t1;
        uint64_t c0 = tsc();
        clock_gettime(CLOCK_MONOTONIC, &t0);
        nanosleep(&(struct timespec){0, 50000000}, NULL);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ns_per_tick = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / (double)(tsc() - c0);
        for (int cold = 0; cold < 2; cold++) {
                nsamples = 0;
                chain(depth, cold);
                qsort(samples, (size_t)nsamples, sizeof *samples, cmp);
                printf("%s: %u frames, p50 %.0f ns, p99 %.0f ns per walk (%.0f ns per frame at p50)\n",
                       cold ? "cold" : "warm", frames, samples[nsamples / 2] * ns_per_tick,
                       samples[nsamples * 99 / 100] * ns_per_tick, samples[nsamples / 2] * ns_per_tick / frames);
        }
        fr__unwind_shutdown();
        return 0;
}
