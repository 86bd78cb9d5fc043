/* perf_ring_probe: what would CPU sampling cost without a signal per sample?
 * An experiment for issue 3 (the 1000 Hz overhead), not part of the agent.
 *
 * Two threads do a fixed amount of work (the same loop as bench_sample). In
 * mode "ring" each thread first opens a perf task-clock event on itself with
 * PERF_SAMPLE_IP | TID | TIME | CALLCHAIN (user only) and an mmap'd ring; the
 * kernel writes the samples, with the user stack walked by frame pointers, and
 * the main thread drains the rings every 100 ms. No signal is delivered. Mode
 * "none" does the work alone. Prints the process CPU time and, for "ring",
 * the samples read per CPU-second.
 * Usage: perf_ring_probe none|ring HZ WORK_MILLIONS */
#include <linux/perf_event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define RING_PAGES 64 /* data pages per thread (256 KiB) */

static unsigned hz;
static long work;
static int use_ring;

struct ring {
        struct perf_event_mmap_page *meta;
        uint8_t *data;
        size_t size;
        uint64_t samples, lost;
};
static struct ring rings[2];

__attribute__((noinline)) static uint64_t leaf(uint64_t x) {
        for (int i = 0; i < 1000; i++)
                x = x * 6364136223846793005ull + 1442695040888963407ull;
        return x;
}

__attribute__((noinline)) static uint64_t middle(uint64_t x) { return leaf(x) ^ leaf(x + 1); }

static void *worker(void *arg) {
        struct ring *r = arg;
        if (use_ring) {
                struct perf_event_attr a = {0};
                a.size = sizeof a;
                a.type = PERF_TYPE_SOFTWARE;
                a.config = PERF_COUNT_SW_TASK_CLOCK;
                a.sample_period = 1000000000ull / hz;
                a.sample_type = PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME |
                                PERF_SAMPLE_CALLCHAIN;
                a.exclude_kernel = 1;
                a.exclude_hv = 1;
                a.exclude_callchain_kernel = 1;
                a.use_clockid = 1;
                a.clockid = CLOCK_MONOTONIC;
                int fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
                if (fd < 0) {
                        perror("perf_event_open");
                        exit(2);
                }
                long page = sysconf(_SC_PAGESIZE);
                void *m = mmap(NULL, (size_t)page * (RING_PAGES + 1), PROT_READ | PROT_WRITE,
                               MAP_SHARED, fd, 0);
                if (m == MAP_FAILED) {
                        perror("mmap");
                        exit(2);
                }
                r->meta = m;
                r->data = (uint8_t *)m + page;
                r->size = (size_t)page * RING_PAGES;
        }
        uint64_t x = 1;
        for (long i = 0; i < work; i++)
                x = middle(x);
        if (x == 42)
                puts("");
        return NULL;
}

static void drain(struct ring *r) {
        if (!r->meta)
                return;
        uint64_t head = __atomic_load_n(&r->meta->data_head, __ATOMIC_ACQUIRE);
        uint64_t tail = r->meta->data_tail;
        while (tail < head) {
                struct perf_event_header h;
                size_t off = tail % r->size;
                /* Headers are 8-byte aligned and never split. */
                memcpy(&h, r->data + off, sizeof h);
                if (h.type == PERF_RECORD_SAMPLE)
                        r->samples++;
                else if (h.type == PERF_RECORD_LOST)
                        r->lost++;
                tail += h.size;
        }
        __atomic_store_n(&r->meta->data_tail, tail, __ATOMIC_RELEASE);
}

static double cpu_seconds(void) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
               ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv) {
        if (argc != 4) {
                fprintf(stderr, "usage: perf_ring_probe none|ring HZ WORK_MILLIONS\n");
                return 2;
        }
        use_ring = strcmp(argv[1], "ring") == 0;
        hz = (unsigned)atoi(argv[2]);
        work = atol(argv[3]) * 1000;
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
                pthread_create(&t[i], NULL, worker, &rings[i]);
        /* Drain while they work (the advancer's job in a real agent). */
        for (;;) {
                struct timespec ts = {0, 100000000};
                nanosleep(&ts, NULL);
                drain(&rings[0]);
                drain(&rings[1]);
                if (pthread_tryjoin_np(t[0], NULL) == 0) {
                        pthread_join(t[1], NULL);
                        break;
                }
        }
        drain(&rings[0]);
        drain(&rings[1]);
        double cpu = cpu_seconds();
        uint64_t n = rings[0].samples + rings[1].samples;
        printf("%s %u Hz: cpu %.3f s, samples %llu (%.3f per CPU-s x rate), lost records %llu\n",
               argv[1], hz, cpu, (unsigned long long)n, hz ? (double)n / (cpu * hz) : 0.0,
               (unsigned long long)(rings[0].lost + rings[1].lost));
        return 0;
}
