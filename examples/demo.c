/* fr-demo: a small service under the recorder. Two worker threads take
 * "requests" (tasks) through regions and logs, and burn CPU in two functions
 * in a 2:1 ratio; after SECONDS it asks for a snapshot (fr_snapshot), which
 * goes to the daemon or, when none answers, into FLIGHTREC_DIR.
 * Usage: fr-demo [SECONDS] */
#include <errno.h>
#include <flightrec.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile double sink;

__attribute__((noinline)) static void render_page(int units) {
        double x = 0;
        for (int i = 0; i < units * 20000; i++)
                x += (double)i * 1e-9;
        sink = x;
}

__attribute__((noinline)) static void compress_reply(int units) {
        /* Not the same code as render_page, or the compiler folds the two. */
        double x = 1;
        for (int i = 0; i < units * 20000; i++)
                x = x * 0.999999 + (double)i * 3e-9;
        sink = x;
}

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double deadline;

static void *worker(void *arg) {
        char name[16];
        snprintf(name, sizeof name, "worker-%d", (int)(long)arg);
        fr_thread_name(name);
        for (long n = 0; now() < deadline; n++) {
                uint64_t req = fr_task_begin(0, "request");
                fr_region_begin(req, "render");
                render_page(2);
                fr_region_end(req, "render");
                fr_region_begin(req, "compress");
                compress_reply(1);
                fr_region_end(req, "compress");
                if (n % 100 == 0)
                        fr_log(req, "progress", "100 more requests served");
                fr_task_end(req);
        }
        return NULL;
}

int main(int argc, char **argv) {
        double seconds = argc > 1 ? atof(argv[1]) : 3;
        int r = fr_start(NULL); /* -EALREADY under LD_PRELOAD: fine */
        if (r < 0 && r != -EALREADY) {
                fprintf(stderr, "fr-demo: recorder not started (%d); running without\n", r);
        }
        deadline = now() + seconds;
        pthread_t th[2];
        for (long i = 0; i < 2; i++)
                pthread_create(&th[i], NULL, worker, (void *)i);
        for (int i = 0; i < 2; i++)
                pthread_join(th[i], NULL);
        r = fr_snapshot("fr-demo finished");
        printf("fr-demo: snapshot %s\n", r == 0 ? "taken" : "failed");
        fr_stop();
        return r == 0 ? 0 : 1;
}
