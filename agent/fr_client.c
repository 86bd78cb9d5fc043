/* The agent's client of flightrecd: one thread, blocked in poll, that
 *  - connects to fr__cfg.socket_path and sends HELLO (pid, comm, exe, build id,
 *    configuration, and the post-mortem ring's memfd), reconnecting with exponential backoff (100 ms .. 2 s)
 *    whenever the daemon is absent or goes away;
 *  - on SNAPSHOT_REQUEST (which carries the write end of a pipe) writes the
 *    retained generations into the pipe, closes it, answers SNAPSHOT_DONE;
 *  - sends AGENT_STATS (retained generations and bytes) every 2 s;
 *  - carries the application's fr_snapshot() as TRIGGER and wakes the caller
 *    once the daemon's snapshot of it is written;
 *  - carries fr_trigger(name, reason) as a TRIGGER naming a trigger of
 *    flightrecd.conf; nobody waits for it (the daemon may take the snapshot
 *    seconds later, or refuse it: its log and status say so).
 * Application threads never touch the socket: they only queue a trigger and
 * wait, bounded, for this thread. */
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fr_build_id.h"
#include "fr_client.h"
#include "fr_internal.h"
#include "wire.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define STATS_EVERY_MS 2000
#define ACCEPT_TIMEOUT_MS 1000   /* daemon must start the snapshot within this */
#define DONE_TIMEOUT_MS 60000    /* and the write must end within this */
#define SEND_TIMEOUT_MS 2000
#define HOLD_DEFAULT_MS 30000    /* a ring snapshot's pins, when the daemon names no time */
#define STOP_HOLD_MS 2000        /* fr_stop waits this long for the daemon to read a held ring */

/* An application thread's fr_snapshot() waiting for the client thread. Lives
 * on the waiter's stack; linked into `waiters` under `lock`. */
enum { TR_QUEUED, TR_SENT, TR_ACCEPTED, TR_DONE };
struct trigger {
        struct trigger *next;
        uint64_t id;
        const char *reason;
        int state;
        int result;
};

static struct {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        pthread_t thread;
        bool started, stop;
        int wake_fd;           /* read end of the wake pipe */
        int sock;
        /* The application may close our descriptors (a daemon's
         * close-everything loop) and reuse the numbers: checked before use. */
        struct fr_fd_id wake_rd, wake_wr, sock_id;
        _Atomic int welcomed;
        struct trigger *waiters;
        uint64_t next_trigger_id;
        char last_refusal[256];
        struct named_trigger {   /* fr_trigger()s not sent yet */
                char name[FR_WIRE_MAX_TRIGGER_NAME + 1];
                char reason[1024];
        } named[16];
        unsigned nnamed;
        uint64_t hold_id;        /* the ring snapshot holding the ring, or 0 */
        uint64_t hold_until_ms;  /* released by itself then */
} cl = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake_fd = -1, .sock = -1, .wake_rd = {-1},
        .wake_wr = {-1}, .sock_id = {-1}};

/* wake - poke the client thread (cl.lock held). */
static void wake(void) {
        uint64_t one = 1;
        if (fr__fd_ours(&cl.wake_wr))
                (void)!write(cl.wake_wr.fd, &one, sizeof one);
}

/* open_wake - the wake pipe (cl.lock held; the client thread not running,
 * or it is the caller). A pipe, not an eventfd: its inode is its own, so
 * fr__fd_ours can tell it from a file the application put on its number. */
static int open_wake(void) {
        int p[2];
        if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        cl.wake_fd = fr__fd_keep(&cl.wake_rd, p[0]);
        fr__fd_keep(&cl.wake_wr, p[1]);
        return 0;
}

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Copy s into dst with control characters replaced, never empty. */
static void sanitize(char *dst, size_t len, const char *s) {
        size_t i = 0;
        for (; s && s[i] && i + 1 < len; i++)
                dst[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
        if (i == 0 && len > 1)
                dst[i++] = '?';
        dst[i] = '\0';
}

/* ---- build id of the executable ------------------------------------------ */
struct build_id {
        uint8_t bytes[FR_WIRE_MAX_BUILD_ID];
        size_t len;
};

static int find_build_id(struct dl_phdr_info *info, size_t size, void *arg) {
        (void)size;
        struct build_id *b = arg;
        const uint8_t *p;
        b->len = fr_build_id(info, sizeof b->bytes, &p);
        memcpy(b->bytes, p, b->len);
        return 1; /* only the first object: the executable */
}

/* ---- sending ------------------------------------------------------------- */
static int send_frame(fr_frame *f, int fd) {
        if (cl.sock < 0)
                return -ENOTCONN;
        return fr_wire_send(cl.sock, f, fd);
}

static int send_hello(void) {
        static struct build_id bid;
        static bool have_bid;
        if (!have_bid) {
                dl_iterate_phdr(find_build_id, &bid);
                have_bid = true;
        }
        char comm[FR_WIRE_MAX_COMM + 1], exe[FR_WIRE_MAX_PATH + 1];
        sanitize(comm, sizeof comm, fr__comm);
        sanitize(exe, sizeof exe, fr__exe[0] ? fr__exe : "?");
        Flightrec__Wire__Hello h = FLIGHTREC__WIRE__HELLO__INIT;
        h.version = FR_WIRE_VERSION;
        h.pid = (uint32_t)getpid();
        h.comm = comm;
        h.exe = exe;
        h.build_id.data = bid.bytes;
        h.build_id.len = bid.len;
        h.hz = fr__cfg.sampling_off ? 0 : fr__cfg.hz;
        h.sampler = fr__sampler_kind();
        h.unwind = fr__sampler_kind() ? fr__cfg.unwind : FR_UNWIND_FP;
        h.period_ms = fr__cfg.period_ms;
        h.generations = fr__cfg.generations;
        h.max_bytes = fr__cfg.max_bytes;
        struct fr_fd_id ring;
        int ring_fd = fr__fd_keep(&ring, fr__pm_dup_readonly()); /* -ENOENT: no memfd, no post-mortem */
        h.ring = ring_fd >= 0;
        h.ring_snapshots = h.ring;
        fr_frame f = FLIGHTREC__WIRE__FRAME__INIT;
        f.msg_case = FLIGHTREC__WIRE__FRAME__MSG_HELLO;
        f.hello = &h;
        int r = send_frame(&f, ring_fd >= 0 ? ring_fd : -1);
        fr__fd_close(&ring);
        return r;
}

static void send_stats(void) {
        static struct fr_genbytes **pins;
        static size_t npins;
        if (!pins) {
                npins = fr__cfg.generations + 1;
                pins = calloc(npins, sizeof *pins);
                if (!pins)
                        return;
        }
        size_t n = fr__ring_pin(pins, npins);
        fr__ring_unpin(pins, n);
        Flightrec__Wire__AgentStats s = FLIGHTREC__WIRE__AGENT_STATS__INIT;
        s.generations = n;
        s.bytes = fr__ring_bytes();
        struct fr_stats st;
        fr__advancer_stats(&st);
        s.unwind_table_bytes = st.unwind_table_bytes;
        s.unwind_objects = st.unwind_objects;
        s.unwind_tables = st.unwind_tables;
        s.unwind_rejected = st.unwind_rejected;
        s.unwind_walks = st.unwind_walks;
        s.unwind_root = st.unwind_root;
        s.handler_p50_ns = st.handler_p50_ns;
        s.handler_p99_ns = st.handler_p99_ns;
        fr_frame f = FLIGHTREC__WIRE__FRAME__INIT;
        f.msg_case = FLIGHTREC__WIRE__FRAME__MSG_AGENT_STATS;
        f.agent_stats = &s;
        send_frame(&f, -1);
}

/* ---- triggers from the application --------------------------------------- */
/* Under cl.lock: finish every trigger not done with result r. */
static void fail_triggers_locked(int r) {
        for (struct trigger *t = cl.waiters; t; t = t->next)
                if (t->state != TR_DONE) {
                        t->state = TR_DONE;
                        t->result = r;
                }
        pthread_cond_broadcast(&cl.cond);
}

static void set_trigger(uint64_t id, int state, int result) {
        if (!id)
                return;
        pthread_mutex_lock(&cl.lock);
        for (struct trigger *t = cl.waiters; t; t = t->next)
                if (t->id == id && t->state < state) {
                        t->state = state;
                        t->result = result;
                }
        pthread_cond_broadcast(&cl.cond);
        pthread_mutex_unlock(&cl.lock);
}

static void send_named_triggers(void) {
        for (;;) {
                struct named_trigger nt;
                pthread_mutex_lock(&cl.lock);
                bool any = cl.nnamed > 0;
                if (any) {
                        nt = cl.named[0];
                        memmove(&cl.named[0], &cl.named[1], --cl.nnamed * sizeof cl.named[0]);
                }
                uint64_t id = any ? ++cl.next_trigger_id : 0;
                pthread_mutex_unlock(&cl.lock);
                if (!any)
                        return;
                Flightrec__Wire__Trigger tr = FLIGHTREC__WIRE__TRIGGER__INIT;
                tr.id = id;
                tr.name = nt.name;
                tr.reason = nt.reason;
                fr_frame f = FLIGHTREC__WIRE__FRAME__INIT;
                f.msg_case = FLIGHTREC__WIRE__FRAME__MSG_TRIGGER;
                f.trigger = &tr;
                if (send_frame(&f, -1) < 0)
                        return; /* the connection is gone: dropped, like the connection */
        }
}

int fr__client_trigger(const char *name, const char *reason) {
        size_t n = strlen(name);
        if (n == 0 || n > FR_WIRE_MAX_TRIGGER_NAME)
                return -EINVAL;
        pthread_mutex_lock(&cl.lock);
        int r = 0;
        if (!cl.started || cl.stop || !atomic_load(&cl.welcomed))
                r = -ENOTCONN;
        else if (cl.nnamed >= sizeof cl.named / sizeof cl.named[0])
                r = -EAGAIN;
        if (r == 0) {
                struct named_trigger *t = &cl.named[cl.nnamed++];
                sanitize(t->name, sizeof t->name, name);
                sanitize(t->reason, sizeof t->reason, reason);
                wake();
        }
        pthread_mutex_unlock(&cl.lock);
        return r;
}

static void send_queued_triggers(void) {
        send_named_triggers();
        for (;;) {
                uint64_t id = 0;
                char reason[FR_WIRE_MAX_REASON + 1];
                pthread_mutex_lock(&cl.lock);
                for (struct trigger *t = cl.waiters; t; t = t->next)
                        if (t->state == TR_QUEUED) {
                                t->state = TR_SENT;
                                id = t->id;
                                sanitize(reason, sizeof reason, t->reason);
                                break;
                        }
                pthread_mutex_unlock(&cl.lock);
                if (!id)
                        return;
                Flightrec__Wire__Trigger tr = FLIGHTREC__WIRE__TRIGGER__INIT;
                tr.id = id;
                tr.reason = reason;
                fr_frame f = FLIGHTREC__WIRE__FRAME__INIT;
                f.msg_case = FLIGHTREC__WIRE__FRAME__MSG_TRIGGER;
                f.trigger = &tr;
                int r = send_frame(&f, -1);
                if (r < 0)
                        set_trigger(id, TR_DONE, r);
        }
}

static int wait_state(struct trigger *t, int state, unsigned ms) {
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += ms / 1000;
        dl.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
                dl.tv_sec++;
                dl.tv_nsec -= 1000000000L;
        }
        while (t->state < state)
                if (pthread_cond_timedwait(&cl.cond, &cl.lock, &dl) == ETIMEDOUT)
                        return t->state >= state ? 0 : -ETIMEDOUT;
        return 0;
}

int fr__client_snapshot(const char *reason) {
        pthread_mutex_lock(&cl.lock);
        if (!cl.started || cl.stop || !atomic_load(&cl.welcomed) ||
            pthread_equal(pthread_self(), cl.thread)) {
                pthread_mutex_unlock(&cl.lock);
                return -ENOTCONN;
        }
        struct trigger t = {.id = ++cl.next_trigger_id, .reason = reason, .state = TR_QUEUED};
        t.next = cl.waiters;
        cl.waiters = &t;
        wake();
        int r = wait_state(&t, TR_ACCEPTED, ACCEPT_TIMEOUT_MS);
        if (r == 0)
                r = wait_state(&t, TR_DONE, DONE_TIMEOUT_MS);
        if (r == 0)
                r = t.result;
        for (struct trigger **p = &cl.waiters; *p; p = &(*p)->next)
                if (*p == &t) {
                        *p = t.next;
                        break;
                }
        pthread_mutex_unlock(&cl.lock);
        return r;
}

/* ---- the connection -------------------------------------------------------- */
static void release_hold(int result);

static void disconnect(void) {
        release_hold(-ECONNRESET); /* nobody is reading the ring any more */
        if (cl.sock >= 0 && fr__fd_ours(&cl.sock_id))
                close(cl.sock);
        cl.sock = -1;
        atomic_store(&cl.welcomed, 0);
        pthread_mutex_lock(&cl.lock);
        fail_triggers_locked(-ECONNRESET);
        pthread_mutex_unlock(&cl.lock);
}

static int try_connect(void) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        size_t n = strlen(fr__cfg.socket_path);
        if (n >= sizeof a.sun_path)
                return -ENAMETOOLONG;
        memcpy(a.sun_path, fr__cfg.socket_path, n);
        /* Up and away from the low numbers before the attempt: a retry comes
         * every few seconds while no daemon listens, maybe in the middle of
         * the application's own start (fr_fds.c). */
        struct fr_fd_id attempt;
        int s = fr__fd_keep(&attempt, socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        if (s < 0)
                return -errno;
        if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
                int e = errno;
                fr__fd_close(&attempt);
                return -e;
        }
        /* Blocking from now on, but a send never waits more than 2 s. */
        int fl = fcntl(s, F_GETFL);
        fcntl(s, F_SETFL, fl & ~O_NONBLOCK);
        struct timeval tv = {SEND_TIMEOUT_MS / 1000, (SEND_TIMEOUT_MS % 1000) * 1000};
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        cl.sock = s;
        cl.sock_id = attempt;
        int r = send_hello();
        if (r < 0)
                disconnect();
        return r;
}

/* A write into a pipe whose reader went away raises SIGPIPE on this thread
 * (blocked here): take it so that it never reaches the application. */
static void drain_sigpipe(void) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        struct timespec zero = {0, 0};
        while (sigtimedwait(&set, NULL, &zero) == SIGPIPE)
                ;
}

/* A snapshot request covers the trigger it names and every trigger already
 * sent: its data is written after they were asked for. */
static void accept_triggers(uint64_t id) {
        pthread_mutex_lock(&cl.lock);
        for (struct trigger *t = cl.waiters; t; t = t->next)
                if (t->state == TR_SENT || (id && t->id == id && t->state < TR_ACCEPTED))
                        t->state = TR_ACCEPTED;
        pthread_cond_broadcast(&cl.cond);
        pthread_mutex_unlock(&cl.lock);
}

static void finish_triggers(int r) {
        pthread_mutex_lock(&cl.lock);
        for (struct trigger *t = cl.waiters; t; t = t->next)
                if (t->state == TR_ACCEPTED) {
                        t->state = TR_DONE;
                        t->result = r;
                }
        pthread_cond_broadcast(&cl.cond);
        pthread_mutex_unlock(&cl.lock);
}

static uint64_t thread_cpu_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The daemon read the ring (result 0), or it went away, or the hold timed
 * out: unpin, and wake the fr_snapshot() callers it covered (they return
 * once the daemon has the data, as they did once the pipe was written). */
static void release_hold(int result) {
        if (!cl.hold_id)
                return;
        fr__ring_release();
        cl.hold_id = 0;
        finish_triggers(result);
}

/* A ring snapshot: the forced advance, then the hold. The client thread
 * copies no trace bytes: the daemon reads them from the memfd it holds. */
static int hold_ring(const Flightrec__Wire__SnapshotRequest *req, Flightrec__Wire__SnapshotDone *d) {
        uint64_t t0 = mono_ns();
        int r = fr__advance_now();
        d->advance_ns = mono_ns() - t0;
        uint64_t c0 = thread_cpu_ns();
        if (r == 0)
                r = fr__ring_hold(&d->index_gen);
        if (r == 0) {
                cl.hold_id = req->id;
                cl.hold_until_ms = now_ms() + (req->hold_ms ? req->hold_ms : HOLD_DEFAULT_MS);
        }
        d->agent_cpu_ns = thread_cpu_ns() - c0;
        return r;
}

static void do_snapshot(const Flightrec__Wire__SnapshotRequest *req, int fd) {
        struct fr_fd_id pipe_id; /* the daemon's pipe: up and away from the low numbers */
        fd = fr__fd_keep(&pipe_id, fd);
        if (req->from_ring)
                release_hold(-ECANCELED); /* one hold at a time: a new request replaces the old */
        accept_triggers(req->trigger_id);
        Flightrec__Wire__SnapshotDone d = FLIGHTREC__WIRE__SNAPSHOT_DONE__INIT;
        int r;
        if (req->from_ring) {
                fr__fd_close(&pipe_id);
                r = hold_ring(req, &d);
        } else {
                uint64_t c0 = thread_cpu_ns();
                r = fd < 0 ? -EBADF : fr__write_snapshot_reason(fd, req->reason);
                d.agent_cpu_ns = thread_cpu_ns() - c0; /* includes waiting for the advance */
                fr__fd_close(&pipe_id);
                drain_sigpipe();
                if (fd < 0)
                        fr__log_error("daemon's snapshot request came without a pipe");
        }
        d.id = req->id;
        d.error = r;
        fr_frame f = FLIGHTREC__WIRE__FRAME__INIT;
        f.msg_case = FLIGHTREC__WIRE__FRAME__MSG_SNAPSHOT_DONE;
        f.snapshot_done = &d;
        send_frame(&f, -1);
        if (!cl.hold_id) /* a held ring finishes its triggers at the release */
                finish_triggers(r);
}

/* Handle one frame from the daemon. Returns 0, or < 0 to disconnect. */
static int handle(struct fr_wire_reader *rd, fr_frame *f) {
        switch (f->msg_case) {
        case FLIGHTREC__WIRE__FRAME__MSG_WELCOME:
                atomic_store(&cl.welcomed, 1);
                cl.last_refusal[0] = '\0';
                return 0;
        case FLIGHTREC__WIRE__FRAME__MSG_REFUSED:
                if (strncmp(cl.last_refusal, f->refused->reason, sizeof cl.last_refusal - 1)) {
                        fr__log_error("flightrecd at %s refused us: %s", fr__cfg.socket_path,
                                      f->refused->reason);
                        snprintf(cl.last_refusal, sizeof cl.last_refusal, "%s", f->refused->reason);
                }
                return -ECONNREFUSED;
        case FLIGHTREC__WIRE__FRAME__MSG_SNAPSHOT_REQUEST:
                do_snapshot(f->snapshot_request, fr_wire_reader_take_fd(rd));
                return 0;
        case FLIGHTREC__WIRE__FRAME__MSG_SNAPSHOT_RELEASE:
                if (f->snapshot_release->id == cl.hold_id)
                        release_hold(0);
                return 0;
        case FLIGHTREC__WIRE__FRAME__MSG_TRIGGER_REPLY:
                /* Only sent for a trigger the daemon could not take. */
                if (f->trigger_reply->error[0])
                        fr__log_error("flightrecd refused a snapshot: %s", f->trigger_reply->error);
                pthread_mutex_lock(&cl.lock);
                fail_triggers_locked(-ECANCELED);
                pthread_mutex_unlock(&cl.lock);
                return 0;
        default:
                fr__log_error("unexpected %s from flightrecd; reconnecting", fr_wire_name(f));
                return -EPROTO;
        }
}

static void *client_main(void *arg) {
        (void)arg;
        struct fr_wire_reader rd;
        fr_wire_reader_init(&rd, FR_WIRE_DEFAULT_MAX_FRAME, 1);
        unsigned backoff = BACKOFF_MIN_MS;
        uint64_t next_try = 0, next_stats = 0, stop_by = 0;
        for (;;) {
                pthread_mutex_lock(&cl.lock);
                bool stop = cl.stop;
                pthread_mutex_unlock(&cl.lock);
                uint64_t now = now_ms();
                /* Stopping with a held ring: give the daemon a moment to read
                 * it (a snapshot taken just before fr_stop), never more. */
                if (stop && !stop_by && cl.hold_id && cl.sock >= 0) {
                        stop_by = now + STOP_HOLD_MS;
                        if (cl.hold_until_ms > stop_by)
                                cl.hold_until_ms = stop_by;
                }
                if (stop && (!cl.hold_id || cl.sock < 0 || now >= stop_by))
                        break;
                /* Closed or replaced by the application: forget the numbers
                 * (never close them), reconnect, hand the ring again. */
                if (cl.sock >= 0 && !fr__fd_ours(&cl.sock_id)) {
                        fr__log_error("the daemon connection's descriptor %d was closed by the "
                                      "application; reconnecting", cl.sock);
                        cl.sock = -1;
                        disconnect();
                        next_try = 0;
                }
                if (!fr__fd_ours(&cl.wake_rd) || !fr__fd_ours(&cl.wake_wr)) {
                        pthread_mutex_lock(&cl.lock);
                        if (fr__fd_ours(&cl.wake_rd))
                                close(cl.wake_rd.fd);
                        if (fr__fd_ours(&cl.wake_wr))
                                close(cl.wake_wr.fd);
                        cl.wake_rd.fd = cl.wake_wr.fd = cl.wake_fd = -1;
                        open_wake();
                        pthread_mutex_unlock(&cl.lock);
                }
                if (cl.sock < 0 && now >= next_try) {
                        fr_wire_reader_free(&rd);
                        fr_wire_reader_init(&rd, FR_WIRE_DEFAULT_MAX_FRAME, 1);
                        if (try_connect() < 0) {
                                next_try = now + backoff;
                                backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
                        }
                }
                if (atomic_load(&cl.welcomed)) {
                        send_queued_triggers();
                        if (now >= next_stats) {
                                send_stats();
                                next_stats = now + STATS_EVERY_MS;
                        }
                }
                struct pollfd p[2] = {{cl.wake_fd, POLLIN, 0}, {cl.sock, POLLIN, 0}};
                if (cl.hold_id && now >= cl.hold_until_ms) {
                        fr__log_error("flightrecd did not read the ring within its hold time; "
                                      "released");
                        release_hold(-ETIMEDOUT);
                }
                int timeout = STATS_EVERY_MS;
                if (cl.sock < 0)
                        timeout = next_try > now ? (int)(next_try - now) : 0;
                if (cl.hold_id && cl.hold_until_ms - now < (uint64_t)timeout)
                        timeout = (int)(cl.hold_until_ms - now);
                int n = poll(p, cl.sock >= 0 ? 2 : 1, timeout);
                if (n < 0)
                        continue; /* EINTR */
                if (p[0].revents & POLLIN) {
                        uint64_t v[8];
                        (void)!read(cl.wake_fd, v, sizeof v);
                }
                if (cl.sock < 0 || !(p[1].revents & (POLLIN | POLLHUP | POLLERR)))
                        continue;
                long got = fr_wire_reader_fill(&rd, cl.sock);
                int r = got > 0 ? 0 : got == 0 ? -ECONNRESET : (int)got;
                while (r == 0) {
                        fr_frame *f;
                        char err[256];
                        int k = fr_wire_reader_next(&rd, &f, err, sizeof err);
                        if (k == 0)
                                break;
                        if (k < 0) {
                                fr__log_error("bad frame from flightrecd (%s); reconnecting", err);
                                r = k;
                                break;
                        }
                        r = handle(&rd, f);
                        fr_wire_free(f);
                }
                if (r == -EAGAIN)
                        continue;
                if (r < 0) {
                        bool was_welcomed = atomic_load(&cl.welcomed);
                        disconnect();
                        if (was_welcomed)
                                backoff = BACKOFF_MIN_MS;
                        else if (r == -ECONNREFUSED)
                                backoff = BACKOFF_MAX_MS;
                        next_try = now_ms() + backoff;
                } else if (atomic_load(&cl.welcomed)) {
                        backoff = BACKOFF_MIN_MS;
                }
        }
        fr_wire_reader_free(&rd);
        disconnect();
        return NULL;
}

int fr__client_start(void) {
        pthread_mutex_lock(&cl.lock);
        if (cl.started) {
                pthread_mutex_unlock(&cl.lock);
                return -EALREADY;
        }
        if (!fr__fd_ours(&cl.wake_rd) || !fr__fd_ours(&cl.wake_wr)) {
                int e = open_wake();
                if (e < 0) {
                        pthread_mutex_unlock(&cl.lock);
                        return e;
                }
        }
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&cl.cond, &ca);
        pthread_condattr_destroy(&ca);
        cl.stop = false;
        /* Every signal blocked in the client thread: the application's
         * handlers run on its own threads, and SIGPIPE is taken here. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        int r = fr__thread_create(&cl.thread, client_main, NULL);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r == 0) {
                cl.started = true;
                pthread_setname_np(cl.thread, "flightrec-cli");
        }
        pthread_mutex_unlock(&cl.lock);
        return -r;
}

void fr__client_stop(void) {
        pthread_mutex_lock(&cl.lock);
        if (!cl.started) {
                pthread_mutex_unlock(&cl.lock);
                return;
        }
        cl.stop = true;
        fail_triggers_locked(-ECANCELED);
        wake();
        pthread_mutex_unlock(&cl.lock);
        pthread_join(cl.thread, NULL);
        pthread_mutex_lock(&cl.lock);
        cl.started = false;
        pthread_mutex_unlock(&cl.lock);
}

void fr__client_forget(void) {
        pthread_mutex_init(&cl.lock, NULL);
        pthread_cond_init(&cl.cond, NULL);
        cl.started = false;
        cl.stop = false;
        cl.waiters = NULL;
        atomic_store(&cl.welcomed, 0);
        cl.hold_id = 0; /* the parent's hold (fr__ring_init forgot its pins) */
        if (cl.sock >= 0 && fr__fd_ours(&cl.sock_id))
                close(cl.sock); /* the parent's connection: not ours to speak on */
        cl.sock = -1;
        if (fr__fd_ours(&cl.wake_rd))
                close(cl.wake_rd.fd);
        if (fr__fd_ours(&cl.wake_wr))
                close(cl.wake_wr.fd);
        cl.wake_fd = cl.wake_rd.fd = cl.wake_wr.fd = -1;
}
