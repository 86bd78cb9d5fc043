/* The agent's recording core: annotations, generations, the ring, the seqlock
 * protocol under stress, thread exit, fork, settings and local snapshots. Every
 * snapshot is checked by the one reader (proto/trace_reader.c). */

#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <flightrec.h>
#include <pthread.h>

#include "agent_helpers.h"
#include "trace_format.h"
#include "trace_reader.h"

static struct ah_trace tr;

static void start_or_fail(unsigned period_ms, unsigned gens, size_t max_bytes) {
        struct fr_config c = {.period_ms = period_ms, .generations = gens, .max_bytes = max_bytes,
                              .sampling_off = 1};
        assert_int_equal(fr_start(&c), 0);
}

static int teardown(void **state) {
        (void)state;
        fr_stop();
        ah_free(&tr);
        return 0;
}

static void test_not_started(void **state) {
        (void)state;
        fr_region_begin(0, "x");
        fr_region_end(0, "x");
        assert_int_equal(fr_task_begin(0, "t"), 0);
        fr_log(0, "c", "m");
        assert_int_equal(fr_write_snapshot(1), -EINVAL);
        assert_int_equal(fr_snapshot("r"), -EINVAL);
}

static void test_annotations_roundtrip(void **state) {
        (void)state;
        start_or_fail(10000, 10, 0);
        fr_thread_name("main-thread");
        uint64_t task = fr_task_begin(0, "request");
        assert_true(task != 0);
        fr_region_begin(task, "parse");
        fr_log(task, "http", "GET /index.html");
        fr_region_end(task, "parse");
        fr_task_end(task);
        assert_int_equal(ah_snapshot(&tr), 0);
        assert_int_equal(tr.err, 0);
        assert_int_equal(ah_count(&tr, FR_EV_TASK_BEGIN, "request"), 1);
        assert_int_equal(ah_count(&tr, FR_EV_REGION_BEGIN, "parse"), 1);
        assert_int_equal(ah_count(&tr, FR_EV_REGION_END, "parse"), 1);
        assert_int_equal(ah_count(&tr, FR_EV_LOG, "http"), 1);
        assert_int_equal(ah_count(&tr, FR_EV_THREAD_NAME, "main-thread"), 1);
        /* In order on this thread: task begin, region begin, log, region end, task end. */
        static const uint8_t order[] = {FR_EV_TASK_BEGIN, FR_EV_REGION_BEGIN, FR_EV_LOG,
                                        FR_EV_REGION_END, FR_EV_TASK_END};
        size_t k = 0;
        for (size_t i = 0; i < tr.nevents && k < sizeof order; i++)
                if (tr.events[i].type == order[k])
                        k++;
        assert_int_equal(k, sizeof order);
        for (size_t i = 0; i < tr.nevents; i++)
                if (tr.events[i].type == FR_EV_LOG)
                        assert_string_equal(tr.events[i].message, "GET /index.html");
}

static void test_ring_evicts_by_count(void **state) {
        (void)state;
        start_or_fail(100000, 3, 0);
        for (int i = 0; i < 6; i++) {
                fr_region_begin(0, "step");
                fr_region_end(0, "step");
                assert_int_equal(ah_snapshot(&tr), 0); /* each forces an advance */
                assert_int_equal(tr.err, 0);
                if (i < 5)
                        ah_free(&tr);
        }
        assert_int_equal(tr.ngens, 3);
        assert_int_equal(tr.first_gen, 4);
        assert_int_equal(tr.last_gen, 6);
        /* Only the events of the retained generations: 3 steps. */
        assert_int_equal(ah_count(&tr, FR_EV_REGION_BEGIN, "step"), 3);
}

static void test_ring_evicts_by_bytes(void **state) {
        (void)state;
        const size_t max = 1u << 20;
        start_or_fail(100000, 10000, max);
        char msg[4000];
        memset(msg, 'x', sizeof msg - 1);
        msg[sizeof msg - 1] = '\0';
        for (int i = 0; i < 20; i++) {
                for (int j = 0; j < 100; j++) /* ~400 KB per generation */
                        fr_log(0, "bulk", msg);
                assert_int_equal(ah_snapshot(&tr), 0);
                assert_int_equal(tr.err, 0);
                if (i < 19)
                        ah_free(&tr);
        }
        assert_true(tr.rawlen <= max);
        assert_true(tr.first_gen > 1);
        assert_int_equal(ah_count(&tr, FR_EV_LOG, "bulk"), 100 * tr.ngens);
}

static void test_region_open_across_generations(void **state) {
        (void)state;
        start_or_fail(100000, 2, 0);
        uint64_t task = fr_task_begin(0, "long-task");
        fr_region_begin(task, "outer");
        fr_region_begin(task, "inner");
        for (int i = 0; i < 4; i++) {
                assert_int_equal(ah_snapshot(&tr), 0);
                ah_free(&tr);
        }
        fr_region_end(task, "inner");
        fr_region_end(task, "outer");
        fr_task_end(task);
        assert_int_equal(ah_snapshot(&tr), 0);
        /* The begins were dropped with their generations; the STATUS carries them. */
        assert_int_equal(tr.err, 0);
        assert_int_equal(ah_count(&tr, FR_EV_REGION_BEGIN, "outer"), 0);
        assert_int_equal(ah_count(&tr, FR_EV_REGION_END, "outer"), 1);
        assert_int_equal(tr.max_status_regions, 2);
        assert_string_equal(tr.status_region, "inner");
}

/* Pool dry: events beyond the memory bound are counted, and the count is
 * in the trace (LOST events); nothing blocks, the trace stays valid. */
static void test_pool_dry_counts_lost_events(void **state) {
        (void)state;
        start_or_fail(100000, 10, 1u << 20); /* pool: 2 MiB + reserve; no advance */
        char msg[1000];
        memset(msg, 'y', sizeof msg - 1);
        msg[sizeof msg - 1] = '\0';
        const size_t written = 8000; /* ~8 MB: four times the pool */
        for (size_t i = 0; i < written; i++)
                fr_log(0, "dry", msg);
        assert_int_equal(ah_snapshot(&tr), 0);
        assert_int_equal(tr.err, 0);
        size_t kept = ah_count(&tr, FR_EV_LOG, "dry");
        uint64_t lost = 0;
        for (size_t i = 0; i < tr.nevents; i++)
                if (tr.events[i].type == FR_EV_LOST && tr.events[i].lost_kind == FR_LOST_EVENTS)
                        lost += tr.events[i].count;
        print_message("pool dry: %zu of %zu events kept, %llu counted lost\n", kept, written,
                      (unsigned long long)lost);
        assert_true(kept > 0 && kept < written);
        assert_int_equal(kept + lost, written);
}

static void test_region_misuse_stays_valid(void **state) {
        (void)state;
        start_or_fail(100000, 10, 0);
        fr_region_end(0, "never-begun");              /* counted, not written */
        fr_region_begin(0, "a");
        fr_region_begin(0, "b");
        fr_region_end(0, "a");                        /* closes b, then a */
        for (int i = 0; i < FR_MAX_REGION_DEPTH + 10; i++)
                fr_region_begin(0, "deep");
        for (int i = 0; i < FR_MAX_REGION_DEPTH + 10; i++)
                fr_region_end(0, "deep");
        fr_region_begin(0, NULL);
        fr_region_end(0, NULL);
        assert_int_equal(ah_snapshot(&tr), 0);
        assert_int_equal(tr.err, 0);
        assert_int_equal(ah_count(&tr, FR_EV_REGION_END, "b"), 1);
        assert_int_equal(ah_count(&tr, FR_EV_REGION_BEGIN, "deep"), FR_MAX_REGION_DEPTH);
        assert_int_equal(ah_count(&tr, FR_EV_REGION_END, "deep"), FR_MAX_REGION_DEPTH);
        assert_true(ah_count(&tr, FR_EV_LOST, NULL) >= 1);
}

/* ---- stress: writers, short-lived threads and snapshots, advancing every ms */

static _Atomic int stop_flag;

static void *stress_writer(void *arg) {
        char name[16];
        snprintf(name, sizeof name, "writer-%d", (int)(intptr_t)arg);
        fr_thread_name(name);
        while (!stop_flag) {
                uint64_t t = fr_task_begin(0, "job");
                fr_region_begin(t, "outer");
                fr_region_begin(t, "inner");
                fr_log(t, "stress", "working");
                fr_region_end(t, "inner");
                fr_region_end(t, "outer");
                fr_task_end(t);
        }
        return NULL;
}

static void *short_lived(void *arg) {
        (void)arg;
        fr_region_begin(0, "brief");
        fr_region_end(0, "brief");
        return NULL;
}

static void test_stress_advancing_every_ms(void **state) {
        (void)state;
        start_or_fail(1, 4, 2u << 20); /* a small ring: each snapshot reads quickly */
        stop_flag = 0;
        pthread_t w[3];
        for (int i = 0; i < 3; i++)
                pthread_create(&w[i], NULL, stress_writer, (void *)(intptr_t)i);
        for (int round = 0; round < 40; round++) {
                pthread_t s;
                pthread_create(&s, NULL, short_lived, NULL);
                pthread_join(s, NULL);
                assert_int_equal(ah_snapshot(&tr), 0);
                assert_int_equal(tr.err, 0);
                assert_true(tr.ngens >= 1);
                for (size_t i = 0; i < tr.nevents; i++) {
                        size_t gi = tr.events[i].gen - tr.first_gen;
                        assert_true(tr.events[i].time >= tr.gen_start[gi]);
                        assert_true(tr.events[i].time <= tr.gen_end[gi]);
                }
                ah_free(&tr);
                usleep(10000);
        }
        stop_flag = 1;
        for (int i = 0; i < 3; i++)
                pthread_join(w[i], NULL);
        assert_int_equal(ah_snapshot(&tr), 0);
        assert_int_equal(tr.err, 0);
}

static void *exiting_thread(void *arg) {
        *(pid_t *)arg = gettid();
        fr_thread_name("exiting");
        fr_region_begin(0, "last-words");
        return NULL; /* exits with the region open */
}

static void test_thread_exit(void **state) {
        (void)state;
        start_or_fail(100000, 10, 0);
        pid_t tid = 0;
        pthread_t th;
        pthread_create(&th, NULL, exiting_thread, &tid);
        pthread_join(th, NULL);
        assert_int_equal(ah_snapshot(&tr), 0);
        assert_int_equal(tr.err, 0);
        size_t exits = 0;
        for (size_t i = 0; i < tr.nevents; i++)
                if (tr.events[i].type == FR_EV_THREAD_EXIT && tr.events[i].tid == (uint64_t)tid)
                        exits++;
        assert_int_equal(exits, 1);
        ah_free(&tr);
        /* Later generations no longer list it, and still decode. */
        assert_int_equal(ah_snapshot(&tr), 0);
        assert_int_equal(tr.err, 0);
        assert_int_equal(tr.max_status_regions, 0);
}

static void test_fork_child_starts_clean(void **state) {
        (void)state;
        start_or_fail(100000, 10, 0);
        fr_region_begin(0, "parent-only");
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                fr_region_begin(0, "child-only");
                fr_region_end(0, "child-only");
                struct ah_trace c;
                int ok = ah_snapshot(&c) == 0 && c.err == 0 &&
                         ah_count(&c, FR_EV_REGION_BEGIN, "parent-only") == 0 &&
                         c.max_status_regions == 0 &&
                         ah_count(&c, FR_EV_REGION_BEGIN, "child-only") == 1;
                _exit(ok ? 0 : 1);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        fr_region_end(0, "parent-only");
        assert_int_equal(ah_snapshot(&tr), 0);
        assert_int_equal(tr.err, 0);
        assert_int_equal(ah_count(&tr, FR_EV_REGION_BEGIN, "parent-only"), 1);
        assert_int_equal(ah_count(&tr, FR_EV_REGION_BEGIN, "child-only"), 0);
}

static void test_bad_environment(void **state) {
        (void)state;
        static const char *bad[][2] = {
                {"FLIGHTREC_HZ", "abc"},         {"FLIGHTREC_HZ", "-5"},
                {"FLIGHTREC_PERIOD_MS", "0"},    {"FLIGHTREC_GENERATIONS", "99999999999"},
                {"FLIGHTREC_MAX_BYTES", "12Q"},  {"FLIGHTREC_DIR", ""},
                {"FLIGHTREC_FORK", "sometimes"}, {"FLIGHTREC_BLOCK_MS", "-1"},
                {"FLIGHTREC_BLOCK_MS", "3600001"},
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                setenv(bad[i][0], bad[i][1], 1);
                assert_int_equal(fr_start(NULL), -EINVAL);
                unsetenv(bad[i][0]);
        }
        setenv("FLIGHTREC_MAX_BYTES", "8M", 1);
        assert_int_equal(fr_start(NULL), 0);
        assert_int_equal(fr_start(NULL), -EALREADY);
        unsetenv("FLIGHTREC_MAX_BYTES");
}

/* Waits (issue 11): a thread in pthread_cond_wait is BLOCKED, with its
 * region and a stack, at the end of every generation while it waits, and
 * one BLOCK event records the wait when it ends. */
static pthread_mutex_t wm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wc = PTHREAD_COND_INITIALIZER;
static int wgo;
static _Atomic pid_t waiter_tid;

static void *cond_waiter(void *arg) {
        (void)arg;
        waiter_tid = gettid();
        uint64_t task = fr_task_begin(0, "job");
        fr_region_begin(task, "waiting");
        pthread_mutex_lock(&wm);
        while (!wgo)
                pthread_cond_wait(&wc, &wm);
        pthread_mutex_unlock(&wm);
        fr_region_end(task, "waiting");
        fr_task_end(task);
        return NULL;
}

struct waits {
        uint64_t tid;
        size_t gens_blocked, blocks, max_frames;
        uint64_t max_waited, block_ns;
        bool region_ok;
};

static int waits_cb(const struct fr_trace_header *h, const struct fr_generation *g, void *ud) {
        (void)h;
        struct waits *w = ud;
        for (size_t i = 0; i < g->nblocked; i++) {
                const struct fr_blocked *b = &g->blocked[i];
                if (b->tid != w->tid || b->call != FR_WAIT_COND_WAIT)
                        continue;
                w->gens_blocked++;
                w->region_ok = b->region && strcmp(b->region, "waiting") == 0 && b->task;
                if (b->nframes > w->max_frames)
                        w->max_frames = b->nframes;
                if (b->waited_ns > w->max_waited)
                        w->max_waited = b->waited_ns;
        }
        for (size_t i = 0; i < g->nevents; i++)
                if (g->events[i].type == FR_EV_BLOCK && g->events[i].tid == w->tid &&
                    g->events[i].wait_call == FR_WAIT_COND_WAIT) {
                        w->blocks++;
                        w->block_ns = g->events[i].wait_ns;
                }
        return 0;
}

static void test_blocked_waits(void **state) {
        (void)state;
#if defined(__SANITIZE_THREAD__)
        /* TSan's pthread_create runs before ours: the thread is adopted from
         * /proc, and adopted threads do not register at waits under a
         * sanitizer runtime (docs/agent-design.md). */
        skip();
#endif
        start_or_fail(50, 100, 0);
        pthread_t th;
        wgo = 0;
        waiter_tid = 0;
        pthread_create(&th, NULL, cond_waiter, NULL);
        usleep(400000);
        assert_int_equal(ah_snapshot(&tr), 0);
        assert_int_equal(tr.err, 0);
        struct waits w = {.tid = (uint64_t)waiter_tid};
        assert_int_equal(fr_trace_read(tr.raw, tr.rawlen, 0, waits_cb, &w, NULL, NULL, 0), 0);
        assert_true(w.gens_blocked >= 4); /* ~8 generations of 50 ms; generous */
        assert_true(w.region_ok);
        assert_true(w.max_frames >= 3);   /* the call, cond_waiter, start_thread */
        assert_true(w.max_waited >= 250000000u);
        assert_int_equal(w.blocks, 0);
        ah_free(&tr);
        pthread_mutex_lock(&wm);
        wgo = 1;
        pthread_cond_broadcast(&wc);
        pthread_mutex_unlock(&wm);
        pthread_join(th, NULL);
        assert_int_equal(ah_snapshot(&tr), 0);
        w = (struct waits){.tid = w.tid};
        assert_int_equal(fr_trace_read(tr.raw, tr.rawlen, 0, waits_cb, &w, NULL, NULL, 0), 0);
        assert_int_equal(w.blocks, 1);
        assert_true(w.block_ns >= 350000000u);
}

static void test_local_snapshot(void **state) {
        (void)state;
        char dir[] = "/tmp/fr-test-XXXXXX";
        assert_non_null(mkdtemp(dir));
        struct fr_config c = {.dir = dir, .sampling_off = 1};
        assert_int_equal(fr_start(&c), 0);
        fr_region_begin(0, "saved");
        fr_region_end(0, "saved");
        assert_int_equal(fr_snapshot("unit test"), 0);
        DIR *d = opendir(dir);
        assert_non_null(d);
        struct dirent *e;
        int files = 0;
        char path[4200] = "";
        while ((e = readdir(d))) {
                if (e->d_name[0] == '.')
                        continue;
                files++;
                assert_non_null(strstr(e->d_name, ".trace.lz4"));
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        }
        closedir(d);
        assert_int_equal(files, 1);
        char err[256];
        memset(&tr, 0, sizeof tr);
        assert_int_equal(fr_trace_load_file(path, 1u << 30, &tr.raw, &tr.rawlen, err, sizeof err), 0);
        ah_read(&tr);
        assert_int_equal(tr.err, 0);
        assert_int_equal(ah_count(&tr, FR_EV_REGION_BEGIN, "saved"), 1);
        unlink(path);
        rmdir(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_not_started, teardown),
                cmocka_unit_test_teardown(test_annotations_roundtrip, teardown),
                cmocka_unit_test_teardown(test_ring_evicts_by_count, teardown),
                cmocka_unit_test_teardown(test_ring_evicts_by_bytes, teardown),
                cmocka_unit_test_teardown(test_region_open_across_generations, teardown),
                cmocka_unit_test_teardown(test_pool_dry_counts_lost_events, teardown),
        cmocka_unit_test_teardown(test_region_misuse_stays_valid, teardown),
                cmocka_unit_test_teardown(test_stress_advancing_every_ms, teardown),
                cmocka_unit_test_teardown(test_thread_exit, teardown),
                cmocka_unit_test_teardown(test_fork_child_starts_clean, teardown),
                cmocka_unit_test_teardown(test_bad_environment, teardown),
                cmocka_unit_test_teardown(test_local_snapshot, teardown),
                cmocka_unit_test_teardown(test_blocked_waits, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
