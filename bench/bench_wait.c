/* Costs of the blocking-call wrappers (issue 11), in one unmodified program
 * run with and without LD_PRELOAD=libflightrec.so by bench/run-wait.sh:
 *   mutex N     ns per uncontended pthread_mutex_lock/unlock pair
 *   read N      ns per 1-byte read from a pipe that is always ready
 *   advancer T D  T threads blocked in pthread_cond_wait at stack depth D
 *               for 3 s with short generations; prints the advancer's time
 *               per blocked thread per generation (fr_get_stats, found with
 *               dlsym: only under the agent). */
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int bench_mutex(long n) {
        static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
        for (long i = 0; i < n / 10; i++) { /* warm up */
                pthread_mutex_lock(&m);
                pthread_mutex_unlock(&m);
        }
        double t0 = now_ns();
        for (long i = 0; i < n; i++) {
                pthread_mutex_lock(&m);
                pthread_mutex_unlock(&m);
        }
        printf("mutex ns_per_pair=%.2f\n", (now_ns() - t0) / (double)n);
        return 0;
}

static int bench_read(long n) {
        int p[2];
        if (pipe(p) < 0)
                return 1;
        enum { FILL = 65536 };
        fcntl(p[1], F_SETPIPE_SZ, FILL);
        static char buf[FILL];
        double spent = 0;
        long done = 0;
        while (done < n) {
                if (write(p[1], buf, FILL) != FILL)
                        return 1;
                char c;
                double t0 = now_ns();
                for (int i = 0; i < FILL; i++)
                        if (read(p[0], &c, 1) != 1)
                                return 1;
                spent += now_ns() - t0;
                done += FILL;
        }
        printf("read ns_per_read=%.1f\n", spent / (double)done);
        return 0;
}

static pthread_mutex_t cm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int stop;

static __attribute__((noinline)) int deep(int d) {
        if (d > 0)
                return deep(d - 1) + 1;
        pthread_mutex_lock(&cm);
        while (!stop)
                pthread_cond_wait(&cv, &cm);
        pthread_mutex_unlock(&cm);
        return 0;
}

static void *blocked(void *arg) {
        deep((int)(intptr_t)arg);
        return NULL;
}

struct fr_stats_prefix { /* flightrec.h's struct fr_stats, read by position */
        uint64_t generations, lost_generations, lost_events, lost_regions, samples_taken, samples,
                lost_samples;
        unsigned sampler, hz;
        uint64_t blocked_walked, blocked_walk_ns;
};

static int bench_advancer(int nthreads, int depth) {
        int (*get_stats)(struct fr_stats_prefix *) =
                (int (*)(struct fr_stats_prefix *))dlsym(RTLD_DEFAULT, "fr_get_stats");
        if (!get_stats) {
                fprintf(stderr, "advancer: run under LD_PRELOAD=libflightrec.so\n");
                return 1;
        }
        pthread_t *t = calloc((size_t)nthreads, sizeof *t);
        for (int i = 0; i < nthreads; i++)
                pthread_create(&t[i], NULL, blocked, (void *)(intptr_t)depth);
        struct fr_stats_prefix a, b;
        sleep(1); /* all blocked, past FLIGHTREC_BLOCK_MS */
        get_stats(&a);
        sleep(3);
        get_stats(&b);
        pthread_mutex_lock(&cm);
        stop = 1;
        pthread_cond_broadcast(&cv);
        pthread_mutex_unlock(&cm);
        for (int i = 0; i < nthreads; i++)
                pthread_join(t[i], NULL);
        free(t);
        uint64_t walked = b.blocked_walked - a.blocked_walked;
        uint64_t gens = b.generations - a.generations;
        printf("advancer threads=%d depth=%d generations=%llu walked=%llu ns_per_thread=%.0f\n",
               nthreads, depth, (unsigned long long)gens, (unsigned long long)walked,
               walked ? (double)(b.blocked_walk_ns - a.blocked_walk_ns) / (double)walked : 0.0);
        return 0;
}

static void *idle(void *arg) {
        (void)arg;
        for (;;)
                pause();
        return NULL;
}

int main(int argc, char **argv) {
        /* Always a second thread: glibc locks a mutex without an atomic
         * instruction while a process has a single thread, and the agent's
         * own threads would otherwise make the comparison one of single- vs
         * multi-threaded glibc rather than of the wrapper. */
        pthread_t t;
        pthread_create(&t, NULL, idle, NULL);
        if (argc >= 3 && strcmp(argv[1], "mutex") == 0)
                return bench_mutex(atol(argv[2]));
        if (argc >= 3 && strcmp(argv[1], "read") == 0)
                return bench_read(atol(argv[2]));
        if (argc >= 4 && strcmp(argv[1], "advancer") == 0)
                return bench_advancer(atoi(argv[2]), atoi(argv[3]));
        fprintf(stderr, "usage: bench_wait mutex N | read N | advancer THREADS DEPTH\n");
        return 2;
}
