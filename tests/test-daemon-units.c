/* Units of flightrecd that only the shell tests reached: output naming and
 * collisions, retention, and the snapshot state machine (daemon/frd_snapshot.c)
 * driven by a fake agent on a socketpair, with the real loop, connection
 * code, workers and pprof conversion. */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "frd.h"
#include "tracegen.h"
#include "wire.h"

static char dir[256];

static void make_dir(const char *tag) {
        snprintf(dir, sizeof dir, "/tmp/frd-units-%s-%d", tag, (int)getpid());
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(mkdir(dir, 0700), 0);
}

static void remove_dir(void) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        assert_int_equal(system(cmd), 0);
}

static unsigned count_files(const char *suffix) {
        DIR *d = opendir(dir);
        assert_non_null(d);
        unsigned n = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
                size_t a = strlen(e->d_name), b = strlen(suffix);
                n += e->d_name[0] != '.' && a >= b && strcmp(e->d_name + a - b, suffix) == 0;
        }
        closedir(d);
        return n;
}

static bool exists(const char *name) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s", dir, name);
        return access(p, F_OK) == 0;
}

/* ---- naming ------------------------------------------------------------------------ */

static void test_names_and_collisions(void **state) {
        (void)state;
        make_dir("names");
        /* Three snapshots of one process in one millisecond: base, -2, -3.
         * Retried until three creations fall in the same millisecond. */
        bool seen = false;
        for (int attempt = 0; attempt < 50 && !seen; attempt++) {
                struct frd_job j[3];
                memset(j, 0, sizeof j);
                for (int i = 0; i < 3; i++) {
                        snprintf(j[i].comm, sizeof j[i].comm, "svc");
                        j[i].pid = 77;
                        j[i].trace_fd = -1;
                        assert_int_equal(frd_output_create(dir, &j[i]), 0);
                        assert_true(j[i].trace_fd >= 0);
                }
                size_t n = strlen(j[0].stem);
                if (strncmp(j[1].stem, j[0].stem, n) == 0 && strncmp(j[2].stem, j[0].stem, n) == 0) {
                        char want[200];
                        snprintf(want, sizeof want, "%s-2", j[0].stem);
                        assert_string_equal(j[1].stem, want);
                        snprintf(want, sizeof want, "%s-3", j[0].stem);
                        assert_string_equal(j[2].stem, want);
                        seen = true;
                }
                /* Every one distinct, its temporary created, in dir. */
                assert_string_not_equal(j[0].stem, j[1].stem);
                assert_string_not_equal(j[1].stem, j[2].stem);
                for (int i = 0; i < 3; i++) {
                        assert_int_equal(access(j[i].trace_tmp, F_OK), 0);
                        assert_int_equal(strncmp(j[i].trace_path, dir, strlen(dir)), 0);
                        frd_output_discard(&j[i]);
                        assert_int_not_equal(access(j[i].trace_tmp, F_OK), 0);
                }
        }
        assert_true(seen);

        /* A hostile comm never leaves the directory nor hides the file. */
        struct frd_job h = {.pid = 5, .trace_fd = -1};
        snprintf(h.comm, sizeof h.comm, "../../etc/.x y");
        assert_int_equal(frd_output_create(dir, &h), 0);
        assert_null(strchr(h.stem, '/'));
        assert_int_not_equal(h.stem[0], '.');
        assert_null(strchr(h.stem, ' '));
        char want[600];
        snprintf(want, sizeof want, "%s/%s.trace.lz4", dir, h.stem);
        assert_string_equal(h.trace_path, want);
        frd_output_discard(&h);

        /* A stem whose .pb.gz exists already is not reused. */
        struct frd_job a = {.pid = 9, .trace_fd = -1}, b = {.pid = 9, .trace_fd = -1};
        snprintf(a.comm, sizeof a.comm, "dup");
        snprintf(b.comm, sizeof b.comm, "dup");
        assert_int_equal(frd_output_create(dir, &a), 0);
        int fd = open(a.pprof_path, O_CREAT | O_WRONLY, 0600);
        assert_true(fd >= 0);
        close(fd);
        frd_output_discard(&a);
        assert_int_equal(frd_output_create(dir, &b), 0);
        assert_string_not_equal(a.stem, b.stem);
        frd_output_discard(&b);
        remove_dir();
}

/* ---- retention ----------------------------------------------------------------------- */

/* A snapshot's two files, of `bytes` each, modified `age` seconds ago. */
static void put_snapshot(const char *stem, time_t age, size_t bytes) {
        static const char *const ext[] = {".trace.lz4", ".pb.gz"};
        char *data = calloc(1, bytes + 1);
        assert_non_null(data);
        for (int i = 0; i < 2; i++) {
                char p[600];
                snprintf(p, sizeof p, "%s/%s%s", dir, stem, ext[i]);
                int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0600);
                assert_true(fd >= 0);
                assert_int_equal(write(fd, data, bytes), (ssize_t)bytes);
                struct timespec t[2] = {{time(NULL) - age, 0}, {time(NULL) - age, 0}};
                assert_int_equal(futimens(fd, t), 0);
                close(fd);
        }
        free(data);
}

static void test_retention(void **state) {
        (void)state;
        make_dir("retention");
        for (int i = 0; i < 5; i++) {
                char stem[32];
                snprintf(stem, sizeof stem, "app-%d", i);
                put_snapshot(stem, 100 - i * 10, 1000); /* app-0 oldest */
        }
        put_snapshot("other", 1, 10); /* newest */
        int fd = open(strcat(strcpy((char[600]){0}, dir), "/notes.txt"), O_CREAT | O_WRONLY, 0600);
        close(fd);

        /* max_files counts files: 12 now, 8 allowed -> the 2 oldest snapshots go. */
        frd_retention(dir, 0, 8, 0);
        assert_false(exists("app-0.trace.lz4"));
        assert_false(exists("app-0.pb.gz"));
        assert_false(exists("app-1.pb.gz"));
        assert_true(exists("app-2.trace.lz4"));
        assert_true(exists("other.pb.gz"));
        assert_true(exists("notes.txt")); /* not a snapshot: never touched */

        /* max_age: older than 75 s (app-2 is 80 s old). */
        frd_retention(dir, 0, 0, 75);
        assert_false(exists("app-2.trace.lz4"));
        assert_true(exists("app-3.trace.lz4"));

        /* max_total_bytes: 2 x 2000 + 20 left; 2100 allowed -> app-3 goes. */
        frd_retention(dir, 2100, 0, 0);
        assert_false(exists("app-3.pb.gz"));
        assert_true(exists("app-4.pb.gz"));
        assert_true(exists("other.trace.lz4"));

        /* No limit: nothing more. */
        frd_retention(dir, 0, 0, 0);
        assert_int_equal(count_files(".pb.gz"), 2);

        /* Temporaries of an interrupted snapshot are removed at start. */
        fd = open(strcat(strcpy((char[600]){0}, dir), "/x-1-2.trace.lz4.tmp"), O_CREAT | O_WRONLY, 0600);
        close(fd);
        frd_output_clean_tmp(dir);
        assert_false(exists("x-1-2.trace.lz4.tmp"));
        assert_true(exists("notes.txt"));
        remove_dir();
}

/* ---- the snapshot state machine, with a fake agent ------------------------------------ */

static int agent_fd = -1;
static struct fr_wire_reader agent_rd;

static void pump_once(void) {
        event_base_loop(D.base, EVLOOP_NONBLOCK);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
}

/* Run the loop until cond() holds (at most 20 s, a generous bound for a
 * loaded machine: this waits, it times nothing). */
#define PUMP_UNTIL(cond)                                                                           \
        do {                                                                                       \
                for (int _i = 0; _i < 20000 && !(cond); _i++)                                      \
                        pump_once();                                                               \
                assert_true(cond);                                                                 \
        } while (0)

/* The next frame the daemon sent the fake agent (pumping the loop). */
static fr_frame *agent_recv(int *ret_fd) {
        for (int i = 0; i < 20000; i++) {
                fr_frame *f;
                char err[256];
                int r = fr_wire_reader_next(&agent_rd, &f, err, sizeof err);
                assert_true(r >= 0);
                if (r > 0) {
                        if (ret_fd)
                                *ret_fd = fr_wire_reader_take_fd(&agent_rd);
                        return f;
                }
                long n = fr_wire_reader_fill(&agent_rd, agent_fd);
                assert_true(n > 0 || n == -EAGAIN);
                pump_once();
        }
        fail_msg("no frame from the daemon");
        return NULL;
}

static void agent_send(fr_frame *f) { assert_int_equal(fr_wire_send(agent_fd, f, -1), 0); }

static void agent_done(uint64_t id, int error) {
        Flightrec__Wire__SnapshotDone d = FLIGHTREC__WIRE__SNAPSHOT_DONE__INIT;
        d.id = id;
        d.error = error;
        fr_frame f = FLIGHTREC__WIRE__FRAME__INIT;
        f.msg_case = FLIGHTREC__WIRE__FRAME__MSG_SNAPSHOT_DONE;
        f.snapshot_done = &d;
        agent_send(&f);
}

/* A connected fake agent: Hello (no ring: the pipe path), Welcome. */
static struct frd_conn *connect_agent(void) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        fcntl(sv[0], F_SETFL, O_NONBLOCK);
        fcntl(sv[1], F_SETFL, O_NONBLOCK);
        assert_int_equal(frd_conn_new(sv[0]), 0);
        agent_fd = sv[1];
        fr_wire_reader_init(&agent_rd, FR_WIRE_DEFAULT_MAX_FRAME, 1);
        Flightrec__Wire__Hello h = FLIGHTREC__WIRE__HELLO__INIT;
        h.version = FR_WIRE_VERSION;
        h.pid = (uint32_t)getpid();
        h.comm = "fake";
        h.exe = "/usr/bin/fake";
        h.period_ms = 1000;
        h.generations = 10;
        fr_frame f = FLIGHTREC__WIRE__FRAME__INIT;
        f.msg_case = FLIGHTREC__WIRE__FRAME__MSG_HELLO;
        f.hello = &h;
        agent_send(&f);
        fr_frame *w = agent_recv(NULL);
        assert_int_equal(w->msg_case, FLIGHTREC__WIRE__FRAME__MSG_WELCOME);
        fr_wire_free(w);
        assert_non_null(D.conns);
        assert_int_equal(D.conns->kind, FRD_PEER_AGENT);
        return D.conns;
}

static void disconnect_agent(void) {
        close(agent_fd);
        agent_fd = -1;
        fr_wire_reader_free(&agent_rd);
        PUMP_UNTIL(D.nagents == 0);
}

/* The snapshot request: returns its id, *ret_pipe the write end. */
static uint64_t expect_request(int *ret_pipe) {
        fr_frame *f = agent_recv(ret_pipe);
        assert_int_equal(f->msg_case, FLIGHTREC__WIRE__FRAME__MSG_SNAPSHOT_REQUEST);
        assert_false(f->snapshot_request->from_ring);
        uint64_t id = f->snapshot_request->id;
        fr_wire_free(f);
        assert_true(*ret_pipe >= 0);
        return id;
}

static void write_trace(int fd) {
        struct tg_trace *t = tg_trace_new();
        tg_trace_header(t, (uint64_t)getpid(), "fake", "/usr/bin/fake", "test", 0);
        tg_gen_new(t, 0, 1000);
        tg_gen_new(t, 1000, 2000);
        uint8_t *data;
        size_t len;
        tg_trace_encode_free(t, &data, &len);
        fcntl(fd, F_SETFL, 0); /* blocking: the trace fits in the pipe */
        assert_int_equal(write(fd, data, len), (ssize_t)len);
        free(data);
}

/* A snapshot under way: the fake agent, the snapshot, the request's id and
 * the write end of its pipe. */
struct snap_run {
        struct frd_conn *c;
        struct frd_snap *s;
        uint64_t id;
        int wfd;
};

/* start_snapshot - a fake agent connected, a snapshot of it started: its
 * request read and, with_trace, a valid trace written into the pipe. */
static struct snap_run start_snapshot(bool with_trace) {
        struct snap_run r = {.c = connect_agent()};
        assert_int_equal(frd_snapshot_agent(r.c, "unit", NULL, 0), 0);
        r.s = r.c->reading;
        assert_non_null(r.s);
        assert_int_equal(r.s->state, FRD_SNAP_READING);
        r.id = expect_request(&r.wfd);
        if (with_trace)
                write_trace(r.wfd);
        return r;
}

static int setup_daemon(void **state) {
        (void)state;
        make_dir("snap");
        frd_config_defaults(&D.cfg);
        snprintf(D.cfg.output_dir, sizeof D.cfg.output_dir, "%s", dir);
        D.cfg.symbolize = false;
        D.cfg.snapshot_timeout_ms = 500;
        D.cfg.max_files = 0;
        D.cfg.max_total_bytes = 0;
        D.cfg.max_age_s = 0;
        D.out_gid = (gid_t)-1;
        D.base = event_base_new();
        D.reaper = event_new(D.base, -1, 0, frd_reap, NULL);
        if (!D.base || !D.reaper)
                return -1;
        frd_output_on_copied(frd_snapshot_copied);
        return frd_output_start(D.base, 1, frd_snapshot_job_done);
}

static int teardown_daemon(void **state) {
        (void)state;
        while (D.conns)
                frd_conn_close(D.conns);
        frd_reap(-1, 0, NULL);
        frd_snapshot_abort_all();
        frd_output_stop();
        event_free(D.reaper);
        event_base_free(D.base);
        remove_dir();
        return 0;
}

/* Pipe at its end first, then SnapshotDone: READING -> DRAINED -> CONVERTING. */
static void test_snap_eof_then_done(void **state) {
        (void)state;
        uint64_t before = D.written;
        struct snap_run r = start_snapshot(true);
        close(r.wfd);
        PUMP_UNTIL(r.s->state == FRD_SNAP_DRAINED);
        assert_ptr_equal(r.c->reading, r.s);
        agent_done(r.id, 0);
        PUMP_UNTIL(D.written == before + 1 && !D.snaps);
        assert_null(r.c->reading);
        assert_int_equal(count_files(".trace.lz4"), (unsigned)D.written);
        assert_int_equal(count_files(".pb.gz"), (unsigned)D.written);
        disconnect_agent();
}

/* SnapshotDone before the pipe's end: READING -> CONFIRMED -> CONVERTING. A
 * second trigger meanwhile joins the snapshot in progress. */
static void test_snap_done_then_eof(void **state) {
        (void)state;
        uint64_t before = D.written;
        struct snap_run r = start_snapshot(true);
        agent_done(r.id, 0);
        PUMP_UNTIL(r.s->state == FRD_SNAP_CONFIRMED);
        assert_int_equal(frd_snapshot_agent(r.c, "joins", NULL, 0), 0);
        assert_ptr_equal(r.c->reading, r.s);
        close(r.wfd);
        PUMP_UNTIL(D.written == before + 1 && !D.snaps);
        disconnect_agent();
}

/* The agent goes away after the pipe's end and before confirming: the data
 * is kept as a partial tail, the snapshot written. */
static void test_snap_agent_gone(void **state) {
        (void)state;
        uint64_t before = D.written;
        struct snap_run r = start_snapshot(true);
        close(r.wfd);
        PUMP_UNTIL(r.s->state == FRD_SNAP_DRAINED);
        disconnect_agent(); /* s->agent becomes NULL: finished as partial */
        PUMP_UNTIL(D.written == before + 1 && !D.snaps);
}

/* The agent fails to write: the snapshot fails, nothing is left behind. */
static void test_snap_agent_error(void **state) {
        (void)state;
        uint64_t failed = D.failed;
        unsigned files = count_files(".trace.lz4");
        struct snap_run r = start_snapshot(false);
        close(r.wfd);
        agent_done(r.id, -ENOSPC);
        PUMP_UNTIL(D.failed == failed + 1 && !D.snaps);
        assert_null(r.c->reading);
        assert_int_equal(count_files(".trace.lz4"), files);
        assert_int_equal(count_files(".tmp"), 0);
        disconnect_agent();
}

/* No answer within snapshot_timeout: failed, temporaries removed. */
static void test_snap_timeout(void **state) {
        (void)state;
        uint64_t failed = D.failed;
        struct snap_run r = start_snapshot(false);
        PUMP_UNTIL(D.failed == failed + 1 && !D.snaps);
        assert_int_equal(count_files(".tmp"), 0);
        close(r.wfd);
        disconnect_agent();
}

/* An invalid trace from the agent fails in the worker (the validating
 * reader), both temporaries removed. */
static void test_snap_invalid_trace(void **state) {
        (void)state;
        uint64_t failed = D.failed;
        struct snap_run r = start_snapshot(false);
        assert_int_equal(write(r.wfd, "not a trace at all", 18), 18);
        close(r.wfd);
        agent_done(r.id, 0);
        PUMP_UNTIL(D.failed == failed + 1 && !D.snaps);
        assert_int_equal(count_files(".tmp"), 0);
        disconnect_agent();
}


int main(void) {
        frd_log_setup(false, getenv("FRD_UNITS_DEBUG") != NULL);
        const struct CMUnitTest output[] = {
                cmocka_unit_test(test_names_and_collisions),
                cmocka_unit_test(test_retention),
        };
        const struct CMUnitTest snap[] = {
                cmocka_unit_test(test_snap_eof_then_done),
                cmocka_unit_test(test_snap_done_then_eof),
                cmocka_unit_test(test_snap_agent_gone),
                cmocka_unit_test(test_snap_agent_error),
                cmocka_unit_test(test_snap_timeout),
                cmocka_unit_test(test_snap_invalid_trace),
        };
        int r = cmocka_run_group_tests(output, NULL, NULL);
        return r | cmocka_run_group_tests(snap, setup_daemon, teardown_daemon);
}
