/* The post-mortem ring (proto/pm_ring.h): the agent's memfd read the way
 * flightrecd reads it after a death, and the daemon's reader on hostile rings. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "flightrec.h"
#include "pm_ring.h"
#include "trace_format.h"
#include "trace_encode.h"
#include "trace_reader.h"

/* The ring of process pid, opened read-only through /proc as a second
 * process sees it; -1 when there is none (yet). */
static int open_agent_ring(pid_t pid) {
        char dir[64];
        snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
        DIR *d = opendir(dir);
        int found = -1;
        struct dirent *e;
        while (d && (e = readdir(d))) {
                char path[320], target[300];
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                ssize_t n = readlink(path, target, sizeof target - 1);
                if (n <= 0)
                        continue;
                target[n] = '\0';
                if (strstr(target, "memfd:flightrec-ring")) {
                        found = open(path, O_RDONLY | O_CLOEXEC);
                        break;
                }
        }
        if (d)
                closedir(d);
        return found;
}

/* ring_trace - what flightrecd builds from a planned ring: a post-mortem
 * header (pid, comm as exe too), then the ring's extents; b->len covers both.
 * Returns fr_pm_copy's result. */
static int ring_trace(int fd, const struct fr_pm_plan *plan, uint64_t pid, const char *comm,
                      struct fr_buf *b, char *err, size_t errlen) {
        fr_buf_put_header(b, pid, comm, comm, "post-mortem", FR_HEADER_POSTMORTEM);
        size_t hlen = b->len;
        assert_int_equal(fr_buf_reserve(b, plan->total), 0);
        int r = fr_pm_copy(fd, plan, b->data + hlen, err, errlen);
        b->len = hlen + plan->total;
        return r;
}

/* What flightrecd does: header, then the ring's extents; validated. */
static int read_ring(int fd, size_t *ret_ngens, char *err, size_t errlen) {
        struct fr_pm_plan plan;
        int r = fr_pm_plan(fd, 1u << 30, &plan, err, errlen);
        if (r < 0)
                return r;
        struct fr_buf b = {0};
        r = ring_trace(fd, &plan, (uint64_t)getpid(), "test-pmring", &b, err, errlen);
        if (r == 0)
                r = fr_trace_read(b.data, b.len, 0, NULL, NULL, ret_ngens, err, errlen);
        fr_buf_free(&b);
        fr_pm_plan_free(&plan);
        return r;
}

static void sleep_ms(unsigned ms) {
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

/* child_start - in a forked child: start the agent, no sampling, 3
 * generations of period_ms in 1 MiB, no daemon; exit 2 if it cannot. */
static void child_start(unsigned period_ms) {
        struct fr_config c = {.period_ms = period_ms, .generations = 3, .max_bytes = 1u << 20,
                              .sampling_off = 1, .socket_path = "/nonexistent/flightrec.sock"};
        if (fr_start(&c) < 0)
                _exit(2);
}

/* ring_then_kill - wait (up to 1 s) for child pid's ring to appear and
 * (up to 5 s more) for its first published index, let it run ms more,
 * SIGKILL and reap it. Returns the ring, read-only. The kill comes at a
 * random instant of the recording, not of a start that a sanitizer slows
 * (under TSan, 9 of 20 rings were killed before their first generation). */
static int ring_then_kill(pid_t pid, unsigned ms) {
        int fd = -1;
        for (int i = 0; i < 500 && fd < 0; i++) {
                sleep_ms(2);
                fd = open_agent_ring(pid);
        }
        uint64_t publishes = 0;
        for (int i = 0; i < 2500 && fd >= 0 && fr_pm_publishes(fd, &publishes) == 0 && !publishes; i++)
                sleep_ms(2);
        sleep_ms(ms);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        assert_true(fd >= 0);
        return fd;
}

/* A child records hard, advancing every 2 ms into a ring of 3 generations (so
 * generations are evicted and their blocks reused all the time), and is
 * killed with SIGKILL at a random instant. Its ring, read afterwards as
 * flightrecd reads it, always holds complete, valid generations. */
static void test_ring_after_sigkill(void **state) {
        (void)state;
        srand((unsigned)time(NULL));
        unsigned valid = 0, gens = 0;
        for (int round = 0; round < 20; round++) {
                pid_t pid = fork();
                assert_true(pid >= 0);
                if (pid == 0) {
                        child_start(2);
                        for (unsigned i = 0;; i++) {
                                fr_region_begin(0, "work");
                                fr_log(0, "test", "a message that takes some room in the ring");
                                fr_region_end(0, "work");
                                if (i % 64 == 0)
                                        usleep(20); /* room for the advancer on 2 CPUs */
                        }
                }
                int fd = ring_then_kill(pid, 10 + (unsigned)(rand() % 60));
                assert_int_equal(fr_pm_closed(fd), 0); /* no clean stop */
                size_t ngens = 0;
                char err[256] = "";
                int r = read_ring(fd, &ngens, err, sizeof err);
                if (r != 0)
                        fail_msg("round %d: %s", round, err);
                valid += ngens > 0;
                gens += (unsigned)ngens;
                close(fd);
        }
        print_message("20 children killed: %u rings with generations, %u generations read\n",
                      valid, gens);
        assert_true(valid >= 15);
}

static void write_seed(int fd, const char *name);

/* What flightrecd does after a death, salvage included: the complete
 * generations, then the partial one. Returns the reader's verdict; the
 * partial generation's event count in *ret_events (-1: none salvaged). */
struct partial_info {
        long events;
        uint64_t last_gen;
};
static int partial_cb(const struct fr_trace_header *h, const struct fr_generation *g, void *arg) {
        (void)h;
        struct partial_info *p = arg;
        p->last_gen = g->gen;
        if (g->partial)
                p->events = (long)g->nevents;
        return 0;
}
static int read_salvaged(int fd, struct partial_info *ret, char *err, size_t errlen) {
        struct fr_pm_plan plan;
        int r = fr_pm_plan(fd, 1u << 30, &plan, err, errlen);
        if (r < 0)
                return r;
        struct fr_buf b = {0};
        r = ring_trace(fd, &plan, (uint64_t)getpid(), "test-pmring", &b, err, errlen);
        char why[256] = "";
        if (r == 0 && fr_pm_salvage(fd, &plan, b.data, b.len, &b, why, sizeof why) < 0)
                r = -ENOMEM;
        ret->events = -1;
        ret->last_gen = 0;
        if (r == 0)
                r = fr_trace_read(b.data, b.len, 0, partial_cb, ret, NULL, err, errlen);
        fr_buf_free(&b);
        fr_pm_plan_free(&plan);
        return r;
}

/* Children killed with SIGKILL at random instants while they write events
 * (50 ms generations: some deaths fall while a generation is being packed):
 * every ring, salvage included, reads as a valid trace that ends with the
 * partial generation in most rounds. */
static void test_salvage_after_sigkill(void **state) {
        (void)state;
        unsigned partial = 0;
        long events = 0;
        for (int round = 0; round < 12; round++) {
                pid_t pid = fork();
                assert_true(pid >= 0);
                if (pid == 0) {
                        child_start(50);
                        for (unsigned i = 0;; i++) {
                                uint64_t task = fr_task_begin(0, "job");
                                fr_region_begin(task, "work");
                                fr_log(task, "test", "a message that takes some room in the ring");
                                fr_region_end(task, "work");
                                fr_task_end(task);
                                if (i % 64 == 0)
                                        usleep(20);
                        }
                }
                int fd = ring_then_kill(pid, 60 + (unsigned)(rand() % 100));
                struct partial_info pi;
                char err[256] = "";
                int r = read_salvaged(fd, &pi, err, sizeof err);
                if (r != 0)
                        fail_msg("round %d: %s", round, err);
                partial += pi.events >= 0;
                events += pi.events > 0 ? pi.events : 0;
                close(fd);
        }
        print_message("12 children killed: %u with a partial last generation, %ld events in them\n",
                      partial, events);
        assert_true(partial >= 8);
        assert_true(events > 0);
}

/* copy_ring - a writable copy of a ring (a memfd), to damage. */
static int copy_ring(int fd) {
        struct stat st;
        assert_int_equal(fstat(fd, &st), 0);
        int c = memfd_create("ring-copy", MFD_CLOEXEC);
        assert_true(c >= 0);
        assert_int_equal(ftruncate(c, st.st_size), 0);
        static uint8_t buf[1 << 16];
        for (off_t off = 0; off < st.st_size;) {
                ssize_t k = pread(fd, buf, sizeof buf, off);
                assert_true(k > 0);
                assert_int_equal(pwrite(c, buf, (size_t)k, off), k);
                off += k;
        }
        return c;
}

/* A thread that died mid-event leaves a torn last event: salvage drops it
 * and keeps the events before it. Made here by extending a live block's pos
 * over the start of an event. */
static void test_torn_event(void **state) {
        (void)state;
        int pipefd[2];
        assert_int_equal(pipe(pipefd), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                child_start(60000);
                for (int i = 0; i < 100; i++)
                        fr_log(0, "test", "before the tear");
                if (write(pipefd[1], "x", 1) != 1)
                        _exit(3);
                pause();
                _exit(0);
        }
        char x;
        assert_int_equal(read(pipefd[0], &x, 1), 1);
        int fd = open_agent_ring(pid);
        assert_true(fd >= 0);
        sleep_ms(20); /* the advancer published generation 1's prologue */
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        struct partial_info pi;
        char err[256] = "";
        assert_int_equal(read_salvaged(fd, &pi, err, sizeof err), 0);
        assert_int_equal(pi.events, 102); /* start, name, 100 logs */
        int c = copy_ring(fd);
        struct fr_pm_header h;
        assert_int_equal(pread(c, &h, sizeof h, 0), (ssize_t)sizeof h);
        unsigned torn = 0;
        for (uint64_t i = 0; i < h.carved; i++) {
                struct fr_pm_block b;
                uint64_t off = h.blocks_off + i * h.block_size;
                assert_int_equal(pread(c, &b, sizeof b, (off_t)off), (ssize_t)sizeof b);
                if (b.gen != h.live_gen[h.active] || b.tid == 0)
                        continue;
                /* A LOG whose message runs past pos. */
                uint8_t ev[] = {FR_EV_LOG, 1, 0, 1, 40, 'a', 'b'};
                assert_int_equal(pwrite(c, ev, sizeof ev, (off_t)(off + b.pos)), (ssize_t)sizeof ev);
                b.pos += sizeof ev;
                assert_int_equal(pwrite(c, &b, sizeof b, (off_t)off), (ssize_t)sizeof b);
                torn++;
        }
        assert_int_equal(torn, 1);
        write_seed(c, "torn-event");
        assert_int_equal(read_salvaged(c, &pi, err, sizeof err), 0);
        assert_int_equal(pi.events, 102);
        close(c);
        close(fd);
        close(pipefd[0]);
        close(pipefd[1]);
}

/* write_seed - the ring in fuzz-pmring's input layout (header, crash record,
 * the rest from the header page on, trailing zeros cut) into
 * $FR_WRITE_PMRING_SEEDS/name, when that is set. */
static void write_seed(int fd, const char *name) {
        const char *dir = getenv("FR_WRITE_PMRING_SEEDS");
        if (!dir)
                return;
        struct stat st;
        assert_int_equal(fstat(fd, &st), 0);
        uint8_t *m = malloc((size_t)st.st_size);
        assert_non_null(m);
        assert_int_equal(pread(fd, m, (size_t)st.st_size, 0), st.st_size);
        /* The crash-time samples moved right behind the blocks in use, so
         * that the seed stays small. */
        struct fr_pm_header *h = (struct fr_pm_header *)m;
        uint64_t used = h->blocks_off + h->carved * h->block_size;
        if (h->csamples_off > used && h->csamples_off < (uint64_t)st.st_size) {
                memmove(m + used, m + h->csamples_off, (size_t)((uint64_t)st.st_size - h->csamples_off));
                memset(m + used + ((uint64_t)st.st_size - h->csamples_off), 0,
                       (size_t)(h->csamples_off - used));
                h->csamples_off = used;
        }
        size_t end = (size_t)st.st_size;
        while (end > FR_PM_HEADER_SIZE && m[end - 1] == 0)
                end--;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        fwrite(m, 1, sizeof(struct fr_pm_header), f);
        fwrite(m + FR_PM_CRASH_OFF, 1, sizeof(struct fr_pm_crash), f);
        fwrite(m + FR_PM_HEADER_SIZE, 1, end - FR_PM_HEADER_SIZE, f);
        fclose(f);
        free(m);
}

struct crash_seen {
        int partial;
        struct fr_crash crash;
        long logs, samples;
};
static int crash_seen_cb(const struct fr_trace_header *h, const struct fr_generation *g, void *arg) {
        (void)h;
        struct crash_seen *c = arg;
        if (!g->partial)
                return 0;
        c->partial = 1;
        if (g->crash)
                c->crash = *g->crash;
        for (size_t i = 0; i < g->nevents; i++)
                c->logs += g->events[i].type == FR_EV_LOG;
        c->samples += (long)g->nsamples;
        return 0;
}

/* A child that crashes (SIGSEGV reading 0x10) after writing events: its ring
 * holds a committed crash record, and salvage puts the CRASH batch and every
 * event into the partial generation. */
static void test_crash_record(void **state) {
        (void)state;
        int pipefd[2];
        assert_int_equal(pipe(pipefd), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                /* Not cmocka's handlers, which would go on with the tests here. */
                int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS};
                for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
                        signal(sigs[i], SIG_DFL);
                struct fr_config c = {.period_ms = 60000, .generations = 3, .max_bytes = 1u << 20,
                                      .hz = 1000, .socket_path = "/nonexistent/flightrec.sock"};
                if (fr_start(&c) < 0)
                        _exit(2);
                for (int i = 0; i < 50; i++)
                        fr_log(0, "test", "before the crash");
                volatile double x = 0;
                for (long i = 0; i < 30000000; i++) /* samples to salvage */
                        x += (double)i;
                if (write(pipefd[1], "x", 1) != 1)
                        _exit(3);
                sleep_ms(100);
                volatile uintptr_t addr = 0x10;
                _exit((int)*(volatile long *)addr);
        }
        close(pipefd[1]);
        char x;
        if (read(pipefd[0], &x, 1) != 1) {
                int st;
                waitpid(pid, &st, 0);
                fail_msg("the child ended before its crash: status 0x%x", st);
        }
        int fd = open_agent_ring(pid);
        assert_true(fd >= 0);
        int status;
        waitpid(pid, &status, 0);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGSEGV);
        struct fr_pm_plan plan;
        char err[256] = "";
        assert_int_equal(fr_pm_plan(fd, 1u << 30, &plan, err, sizeof err), 0);
        assert_true(plan.has_crash);
        assert_int_equal(plan.crash.signo, SIGSEGV);
        assert_int_equal(plan.crash.code, SEGV_MAPERR);
        assert_int_equal(plan.crash.addr, 0x10);
        assert_int_equal(plan.crash.tid, (uint32_t)pid);
        struct fr_buf b = {0};
        assert_int_equal(ring_trace(fd, &plan, (uint64_t)pid, "t", &b, err, sizeof err), 0);
        assert_true(fr_pm_salvage(fd, &plan, b.data, b.len, &b, err, sizeof err) > 0);
        struct crash_seen cs = {0};
        assert_int_equal(fr_trace_read(b.data, b.len, 0, crash_seen_cb, &cs, NULL, err, sizeof err), 0);
        assert_true(cs.partial);
        assert_int_equal(cs.crash.signo, SIGSEGV);
        assert_int_equal(cs.crash.addr, 0x10);
        assert_int_equal(cs.logs, 50);
        print_message("partial generation: %ld events, %ld samples, crash at 0x%llx\n", cs.logs,
                      cs.samples, (unsigned long long)cs.crash.addr);
        assert_true(cs.samples > 0); /* copied by the crash handler */
        write_seed(fd, "crash-segv");
        fr_buf_free(&b);
        fr_pm_plan_free(&plan);
        close(fd);
        close(pipefd[0]);
}

/* A clean stop says so in the ring, which outlives the agent's mapping. */
static void test_clean_stop_marks_ring(void **state) {
        (void)state;
        struct fr_config c = {.period_ms = 5, .sampling_off = 1,
                              .socket_path = "/nonexistent/flightrec.sock"};
        assert_int_equal(fr_start(&c), 0);
        int fd = open_agent_ring(getpid());
        assert_true(fd >= 0);
        fr_region_begin(0, "work");
        fr_region_end(0, "work");
        sleep_ms(30);
        size_t ngens = 0;
        char err[256] = "";
        if (read_ring(fd, &ngens, err, sizeof err) != 0)
                fail_msg("%s", err);
        assert_true(ngens >= 1);
        assert_int_equal(fr_pm_closed(fd), 0);
        fr_stop();
        assert_int_equal(fr_pm_closed(fd), 1);
        close(fd);
}

/* The daemon gets the ring read-only, and cannot get write access back by
 * reopening it (F_SEAL_FUTURE_WRITE); its size is sealed. */
static void test_ring_sealed(void **state) {
        (void)state;
        struct fr_config c = {.period_ms = 50, .sampling_off = 1,
                              .socket_path = "/nonexistent/flightrec.sock"};
        assert_int_equal(fr_start(&c), 0);
        int fd = open_agent_ring(getpid());
        assert_true(fd >= 0);
        int seals = fcntl(fd, F_GET_SEALS);
        assert_true(seals >= 0);
        assert_true(seals & F_SEAL_SHRINK);
        assert_true(seals & F_SEAL_GROW);
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        int rw = open(path, O_RDWR | O_CLOEXEC);
        if (seals & 0x0010 /* F_SEAL_FUTURE_WRITE */) {
                if (rw >= 0) {
                        assert_int_equal(pwrite(rw, "x", 1, 0), -1);
                        assert_int_equal(errno, EPERM);
                        close(rw);
                }
        } else {
                print_message("kernel without F_SEAL_FUTURE_WRITE: write protection not checked\n");
                if (rw >= 0)
                        close(rw);
        }
        assert_int_equal(ftruncate(fd, 0), -1);
        close(fd);
        fr_stop();
}

/* Under a file-size limit smaller than the pool, a memfd would raise SIGXFSZ
 * and kill the process: the agent takes anonymous memory instead. */
static void test_fsize_limit(void **state) {
        (void)state;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct rlimit rl = {1u << 20, 1u << 20};
                setrlimit(RLIMIT_FSIZE, &rl);
                struct fr_config c = {.period_ms = 50, .sampling_off = 1,
                                      .socket_path = "/nonexistent/flightrec.sock"};
                if (fr_start(&c) < 0)
                        _exit(2);
                fr_log(0, "t", "still alive");
                _exit(open_agent_ring(getpid()) >= 0 ? 3 : 0); /* no ring expected */
        }
        int status = 0;
        waitpid(pid, &status, 0);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- hostile rings ---------------------------------------------------------------------- */
#define FILE_SIZE (FR_PM_HEADER_SIZE + 2 * 4096 + 65536)

struct ring {
        int fd;
        struct fr_pm_header h;
};

static void ring_new(struct ring *r) {
        r->fd = memfd_create("hostile", MFD_CLOEXEC);
        assert_true(r->fd >= 0);
        assert_int_equal(ftruncate(r->fd, FILE_SIZE), 0);
        memset(&r->h, 0, sizeof r->h);
        memcpy(r->h.magic, FR_PM_MAGIC, FR_PM_MAGIC_LEN);
        r->h.version = FR_PM_VERSION;
        r->h.index_cap = 256;
        r->h.index_off[0] = FR_PM_HEADER_SIZE;
        r->h.index_off[1] = FR_PM_HEADER_SIZE + 4096;
        r->h.blocks_off = FR_PM_HEADER_SIZE + 2 * 4096;
}

static void ring_put(struct ring *r, const struct fr_pm_extent *ext, uint32_t n) {
        r->h.count[r->h.active & 1] = n;
        assert_int_equal(pwrite(r->fd, &r->h, sizeof r->h, 0), (ssize_t)sizeof r->h);
        if (n)
                assert_int_equal(pwrite(r->fd, ext, n * sizeof *ext,
                                        (off_t)r->h.index_off[r->h.active & 1]),
                                 (ssize_t)(n * sizeof *ext));
}

static int plan_of(struct ring *r, uint64_t max, char *err) {
        struct fr_pm_plan p;
        int rc = fr_pm_plan(r->fd, max, &p, err, 256);
        fr_pm_plan_free(&p);
        return rc;
}

static void test_hostile_rings(void **state) {
        (void)state;
        char err[256];
        struct ring r;
        struct fr_pm_extent good[2] = {{FR_PM_HEADER_SIZE + 8192, 100}, {FR_PM_HEADER_SIZE + 9000, 50}};

        ring_new(&r);
        ring_put(&r, good, 2);
        struct fr_pm_plan p;
        assert_int_equal(fr_pm_plan(r.fd, 1u << 20, &p, err, sizeof err), 0);
        assert_int_equal(p.n, 2);
        assert_int_equal(p.total, 150);
        uint8_t buf[150];
        assert_int_equal(fr_pm_copy(r.fd, &p, buf, err, sizeof err), 0);
        fr_pm_plan_free(&p);
        /* Over the daemon's max_trace_bytes. */
        assert_int_equal(plan_of(&r, 149, err), -EFBIG);
        close(r.fd);

        ring_new(&r);
        r.h.magic[0] = 'X';
        ring_put(&r, good, 2);
        assert_int_equal(plan_of(&r, 1u << 20, err), -EBADMSG);
        assert_non_null(strstr(err, "magic"));
        assert_int_equal(fr_pm_closed(r.fd), -EBADMSG);
        close(r.fd);

        ring_new(&r);
        r.h.active = 2;
        ring_put(&r, good, 0);
        assert_int_equal(plan_of(&r, 1u << 20, err), -EBADMSG);
        close(r.fd);

        ring_new(&r); /* count beyond the slot */
        r.h.count[0] = 257;
        assert_int_equal(pwrite(r.fd, &r.h, sizeof r.h, 0), (ssize_t)sizeof r.h);
        assert_int_equal(plan_of(&r, 1u << 20, err), -EBADMSG);
        close(r.fd);

        ring_new(&r); /* slot outside the file */
        r.h.index_off[0] = FILE_SIZE - 16;
        ring_put(&r, NULL, 0);
        assert_int_equal(plan_of(&r, 1u << 20, err), -EBADMSG);
        r.h.index_off[0] = UINT64_MAX - 8; /* and one that overflows */
        ring_put(&r, NULL, 0);
        assert_int_equal(plan_of(&r, 1u << 20, err), -EBADMSG);
        close(r.fd);

        ring_new(&r); /* extents outside the file, overflowing, inside the header */
        struct fr_pm_extent bad[3][1] = {{{FILE_SIZE - 10, 11}}, {{FR_PM_HEADER_SIZE, UINT64_MAX}}, {{0, 10}}};
        for (int i = 0; i < 3; i++) {
                ring_put(&r, bad[i], 1);
                assert_int_equal(plan_of(&r, UINT64_MAX, err), -EBADMSG);
                assert_non_null(strstr(err, "extent 0"));
        }
        close(r.fd);

        /* Too short to be a ring, and not a regular file. */
        int fd = memfd_create("short", MFD_CLOEXEC);
        assert_int_equal(ftruncate(fd, 100), 0);
        assert_int_equal(fr_pm_plan(fd, 1u << 20, &p, err, sizeof err), -EBADMSG);
        close(fd);
        int pfd[2];
        assert_int_equal(pipe(pfd), 0);
        assert_int_equal(fr_pm_plan(pfd[0], 1u << 20, &p, err, sizeof err), -EBADMSG);
        close(pfd[0]);
        close(pfd[1]);

        /* A ring that shrinks between the plan and the copy: an error, no fault. */
        ring_new(&r);
        ring_put(&r, good, 2);
        assert_int_equal(fr_pm_plan(r.fd, 1u << 20, &p, err, sizeof err), 0);
        assert_int_equal(ftruncate(r.fd, FR_PM_HEADER_SIZE + 8192 + 10), 0);
        assert_int_equal(fr_pm_copy(r.fd, &p, buf, err, sizeof err), -EIO);
        fr_pm_plan_free(&p);
        close(r.fd);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ring_after_sigkill),
                cmocka_unit_test(test_salvage_after_sigkill),
                cmocka_unit_test(test_torn_event),
                cmocka_unit_test(test_crash_record),
                cmocka_unit_test(test_clean_stop_marks_ring),
                cmocka_unit_test(test_ring_sealed),
                cmocka_unit_test(test_fsize_limit),
                cmocka_unit_test(test_hostile_rings),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
