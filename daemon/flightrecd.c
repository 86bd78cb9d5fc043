/* flightrecd: the flightrec daemon. One libevent loop serves agents and
 * flightrecctl on one Unix socket (docs/daemon.md), streams snapshots from
 * agents' pipes into <stem>.trace.lz4 and hands them to worker threads that
 * write <stem>.pb.gz and rename both into place.
 *
 * usage: flightrecd [--config FILE] [--socket PATH] [--output-dir DIR] */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "fd.h"
#include "pm_ring.h"
#include "trace_encode.h"
#include "trace_out.h"
#include "wire.h"

#define DAEMON_NAME "flightrecd " FR_VERSION
#define HELLO_TIMEOUT_S 10
#define MAX_OUTQ (32u << 20)
#define PIPE_CHUNK (1u << 20)

/* ---- logging -------------------------------------------------------------- */
static bool log_prefix; /* "<N>" priority prefixes for the journal */
static int log_max = FD_INFO;

void fd_log(int level, const char *fmt, ...) {
        if (level > log_max)
                return;
        char line[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        static const char *const names[] = {"", "", "", "error: ", "warning: ", "", "", "debug: "};
        if (log_prefix)
                fprintf(stderr, "<%d>%s%s\n", level, names[level], line);
        else
                fprintf(stderr, "flightrecd: %s%s\n", names[level], line);
}

/* ---- state ---------------------------------------------------------------- */
enum peer_kind { PEER_NEW, PEER_AGENT, PEER_CTL };

struct conn;
struct ctl_req;

/* One snapshot of one agent: reading the pipe (job != NULL, pipe_fd >= 0),
 * then with a worker, then finished. */
struct snap {
        struct snap *next;        /* all snapshots in progress */
        uint64_t id;
        struct conn *agent;       /* NULL once the agent disconnected */
        int pipe_fd;
        struct event *rev, *timer;
        struct fr_lz4_out *lz;
        struct fd_job *job;
        bool eof, confirmed, with_worker, orphaned;
        int agent_error;
        struct timespec t0;
        double transfer_ms;       /* request to the data's end */
        double lz4_ms;            /* of which compressing */
        double first_ms;          /* request to the first byte */
        size_t expect;            /* bytes the agent last said it holds, + slack */
        struct ctl_req **waiters;
        unsigned nwaiters;
        uint64_t trigger_id;      /* the agent's own TRIGGER, answered by the agent side */
};

/* A flightrecctl trigger waiting for its snapshots. */
struct ctl_req {
        struct conn *c;           /* NULL once the client went away */
        unsigned pending;
        Flightrec__Wire__SnapshotResult **results;
        unsigned nresults;
};

struct outbuf {
        struct outbuf *next;
        uint8_t *data;
        size_t len, off;
        int fd;                   /* passed with the first byte, then closed */
};

struct conn {
        struct conn *next;
        int fd;
        enum peer_kind kind;
        struct ucred cred;
        struct event *rev, *wev, *hello_timer;
        struct fr_wire_reader rd;
        struct outbuf *outq, **outq_tail;
        size_t outq_bytes;
        bool closing;             /* close once the output queue is flushed */
        bool dead;                /* closed; freed from the loop later */
        struct conn *next_dead;
        /* agent */
        uint32_t pid;
        char comm[FR_WIRE_MAX_COMM + 1];
        char exe[FR_WIRE_MAX_PATH + 1];
        char build_id[2 * FR_WIRE_MAX_BUILD_ID + 1];
        uint32_t hz, period_ms, generations, sampler;
        uint64_t max_bytes, stat_gens, stat_bytes;
        uint64_t since_ns;
        int ring_fd, pidfd;       /* post-mortem: the agent's ring, its process (or -1) */
        struct snap *reading;     /* the snapshot whose pipe is being read */
        uint64_t queued_trigger;  /* TRIGGER that came after `reading` was written */
        char queued_reason[FR_WIRE_MAX_REASON + 1];
        /* ctl */
        struct ctl_req *req;
};

static struct {
        struct event_base *base;
        struct fd_config cfg;
        const char *config_path;
        bool config_explicit;
        const char *opt_socket, *opt_output;
        int listen_fd;
        bool socket_activated, we_bound;
        char bound_path[108];
        struct event *listen_ev, *watchdog_ev, *retention_ev, *accept_pause;
        struct conn *conns, *dead;
        struct event *reaper;
        struct snap *snaps;
        unsigned nagents;
        uint64_t next_snap_id;
        uint64_t written, failed;
        bool stopping;
        gid_t out_gid;
        uint64_t watchdog_usec;
} D = {.listen_fd = -1};

static uint64_t realtime_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void notify_status(void) {
        sd_notifyf(0, "STATUS=%u agents connected, %llu snapshots written, %llu failed%s",
                   D.nagents, (unsigned long long)D.written, (unsigned long long)D.failed,
                   D.stopping ? ", stopping" : "");
}

/* ---- connections: output ----------------------------------------------------- */
static void conn_close(struct conn *c);

static void on_writable(evutil_socket_t fd, short what, void *arg);

static void flush(struct conn *c) {
        while (c->outq) {
                struct outbuf *o = c->outq;
                long n = fr_wire_sendmsg(c->fd, o->data + o->off, o->len - o->off,
                                         o->off == 0 ? o->fd : -1);
                if (n == -EAGAIN) {
                        event_add(c->wev, NULL);
                        return;
                }
                if (n < 0) {
                        fd_log(FD_DEBUG, "send to pid %u: %s", c->cred.pid, strerror((int)-n));
                        conn_close(c);
                        return;
                }
                if (o->off == 0 && o->fd >= 0) {
                        close(o->fd);
                        o->fd = -1;
                }
                o->off += (size_t)n;
                if (o->off < o->len)
                        continue;
                c->outq = o->next;
                if (!c->outq)
                        c->outq_tail = &c->outq;
                c->outq_bytes -= o->len;
                free(o->data);
                free(o);
        }
        event_del(c->wev);
        if (c->closing)
                conn_close(c);
}

static void on_writable(evutil_socket_t fd, short what, void *arg) {
        (void)fd;
        (void)what;
        flush(arg);
}

/* Queue a frame (and pass_fd, which the queue then owns). Returns 0 or -errno
 * (pass_fd closed). */
static int conn_send(struct conn *c, const fr_frame *f, int pass_fd) {
        if (c->dead) {
                if (pass_fd >= 0)
                        close(pass_fd);
                return -EPIPE;
        }
        struct outbuf *o = calloc(1, sizeof *o);
        int r = o ? fr_wire_pack(f, &o->data, &o->len) : -ENOMEM;
        if (r == 0 && c->outq_bytes + o->len > MAX_OUTQ)
                r = -ENOBUFS;
        if (r < 0) {
                if (o)
                        free(o->data);
                free(o);
                if (pass_fd >= 0)
                        close(pass_fd);
                fd_log(FD_WARN, "dropping peer pid %u: cannot queue %s (%s)", c->cred.pid,
                       fr_wire_name(f), strerror(-r));
                c->closing = true;
                return r;
        }
        o->fd = pass_fd;
        *c->outq_tail = o;
        c->outq_tail = &o->next;
        c->outq_bytes += o->len;
        if (c->outq == o)
                flush(c);
        return 0;
}

/* Tell the peer why, then disconnect it. */
static void refuse(struct conn *c, const char *fmt, ...) {
        char why[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof why, fmt, ap);
        va_end(ap);
        fd_log(FD_WARN, "refusing peer pid %u uid %u: %s", c->cred.pid, c->cred.uid, why);
        for (char *p = why; *p; p++)
                if ((unsigned char)*p < 0x20)
                        *p = '?';
        Flightrec__Wire__Refused m = FLIGHTREC__WIRE__REFUSED__INIT;
        m.reason = why;
        fr_frame f = FLIGHTREC__WIRE__FRAME__INIT;
        f.msg_case = FLIGHTREC__WIRE__FRAME__MSG_REFUSED;
        f.refused = &m;
        event_del(c->rev); /* read nothing more from it */
        c->closing = true;
        conn_send(c, &f, -1);
        if (!c->outq)
                conn_close(c);
}

/* ---- snapshots -------------------------------------------------------------------- */
static void snap_finish_reading(struct snap *s, const char *error);
static void maybe_exit(void);

static struct snap **snap_link(struct snap *s) {
        struct snap **p = &D.snaps;
        while (*p && *p != s)
                p = &(*p)->next;
        return p;
}

static void ctl_req_add_result(struct ctl_req *q, Flightrec__Wire__SnapshotResult *res);

static Flightrec__Wire__SnapshotResult *make_result(uint32_t pid, const char *comm,
                                                    const char *trace, const char *pprof,
                                                    const char *error) {
        Flightrec__Wire__SnapshotResult *r = malloc(sizeof *r);
        flightrec__wire__snapshot_result__init(r);
        r->pid = pid;
        r->comm = strdup(comm);
        r->trace_path = strdup(trace);
        r->pprof_path = strdup(pprof);
        r->error = strdup(error);
        return r;
}

static void snap_free(struct snap *s) {
        *snap_link(s) = s->next;
        if (s->rev)
                event_free(s->rev);
        if (s->timer)
                event_free(s->timer);
        if (s->pipe_fd >= 0)
                close(s->pipe_fd);
        if (s->agent && s->agent->reading == s)
                s->agent->reading = NULL;
        free(s->waiters);
        free(s);
}

/* Report the outcome to every waiter and free the snapshot. */
static void snap_complete(struct snap *s, const char *trace, const char *pprof, const char *error) {
        struct fd_job *j = s->job;
        uint32_t pid = j ? (uint32_t)j->pid : 0;
        const char *comm = j ? j->comm : "?";
        for (unsigned i = 0; i < s->nwaiters; i++)
                ctl_req_add_result(s->waiters[i], make_result(pid, comm, trace, pprof, error));
        s->nwaiters = 0;
        if (error[0])
                D.failed++;
        else
                D.written++;
        notify_status();
        free(j);
        s->job = NULL;
        snap_free(s);
        maybe_exit();
}

static void on_job_done(struct fd_job *j) {
        struct snap *s = j->owner;
        double total = 0;
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        total = (double)(t1.tv_sec - s->t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - s->t0.tv_nsec) / 1e6;
        if (j->error) {
                fd_log(FD_ERR, "snapshot of %s[%d] failed: %s", j->comm, (int)j->pid, j->errmsg);
                snap_complete(s, "", "", j->errmsg);
        } else {
                fd_log(FD_NOTICE,
                       "%ssnapshot of %s[%d]%s: %s (%llu bytes of trace, %llu samples) and %s in "
                       "%.0f ms (first byte %.0f ms, transfer %.0f ms incl. lz4 %.0f ms, worker %.0f ms)",
                       j->postmortem ? "post-mortem " : "", j->comm, (int)j->pid,
                       j->partial ? " (unconfirmed end)" : "", j->trace_path,
                       (unsigned long long)j->trace_bytes, (unsigned long long)j->nsamples,
                       j->pprof_path, total, s->first_ms, s->transfer_ms, s->lz4_ms, j->convert_ms);
                char tp[sizeof j->trace_path], pp[sizeof j->pprof_path];
                snprintf(tp, sizeof tp, "%s", j->trace_path);
                snprintf(pp, sizeof pp, "%s", j->pprof_path);
                snap_complete(s, tp, pp, "");
        }
        fd_retention(D.cfg.output_dir, D.cfg.max_total_bytes, D.cfg.max_files, D.cfg.max_age_s);
}

/* The pipe is at its end (or failed): hand the data to a worker. */
static void snap_finish_reading_(struct snap *s, const char *error);
static int snapshot_agent(struct conn *c, const char *reason, struct ctl_req *q,
                          uint64_t trigger_id);

static void snap_finish_reading(struct snap *s, const char *error) {
        struct conn *a = s->agent;
        snap_finish_reading_(s, error);
        if (a && !a->dead && !a->reading && a->queued_trigger && !D.stopping) {
                uint64_t id = a->queued_trigger;
                a->queued_trigger = 0;
                snapshot_agent(a, a->queued_reason, NULL, id);
        }
}

static void snap_finish_reading_(struct snap *s, const char *error) {
        if (s->rev)
                event_del(s->rev);
        if (s->timer)
                event_del(s->timer);
        if (s->pipe_fd >= 0)
                close(s->pipe_fd);
        s->pipe_fd = -1;
        if (s->agent && s->agent->reading == s)
                s->agent->reading = NULL;
        struct fd_job *j = s->job;
        int r = 0;
        if (s->lz) {
                r = fr_lz4_out_close(s->lz, error != NULL);
                s->lz = NULL;
        }
        char msg[512];
        if (!error && r < 0) {
                snprintf(msg, sizeof msg, "writing %s: %s", j->trace_tmp, strerror(-r));
                error = msg;
        }
        if (!error && j->raw_len == 0)
                error = "the agent sent no data";
        if (error) {
                fd_log(FD_ERR, "snapshot of %s[%d] failed: %s", j->comm, (int)j->pid, error);
                fd_output_discard(j);
                fd_raw_free(j);
                snap_complete(s, "", "", error);
                return;
        }
        j->partial = !s->confirmed;
        j->trace_bytes = j->raw_len;
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        s->transfer_ms = (double)(t1.tv_sec - s->t0.tv_sec) * 1e3 +
                         (double)(t1.tv_nsec - s->t0.tv_nsec) / 1e6;
        s->with_worker = true;
        fd_output_submit(j);
}

static void snap_check_complete(struct snap *s) {
        if (!s->eof || s->with_worker || s->pipe_fd < 0)
                return;
        if (s->agent_error) {
                char msg[128];
                snprintf(msg, sizeof msg, "the agent could not write the snapshot: %s",
                         strerror(-s->agent_error));
                snap_finish_reading(s, msg);
        } else if (s->confirmed || !s->agent) {
                snap_finish_reading(s, NULL);
        }
        /* else: wait for SNAPSHOT_DONE, which follows the pipe's end at once */
}

static void on_pipe(evutil_socket_t fd, short what, void *arg) {
        (void)what;
        struct snap *s = arg;
        struct fd_job *j = s->job;
        for (int rounds = 0; rounds < 4; rounds++) {
                if (j->raw_len + PIPE_CHUNK > j->raw_cap) {
                        /* First guess: what the agent said its ring holds. */
                        size_t cap = j->raw_cap ? j->raw_cap * 2 : 4 * PIPE_CHUNK;
                        if (!j->raw_cap && s->expect > cap)
                                cap = s->expect;
                        if (fd_raw_reserve(j, cap) < 0) {
                                snap_finish_reading(s, "out of memory");
                                return;
                        }
                }
                ssize_t n = read(fd, j->raw + j->raw_len, PIPE_CHUNK);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return;
                        char msg[128];
                        snprintf(msg, sizeof msg, "reading the pipe: %s", strerror(errno));
                        snap_finish_reading(s, msg);
                        return;
                }
                if (n > 0 && j->raw_len == 0) {
                        struct timespec t;
                        clock_gettime(CLOCK_MONOTONIC, &t);
                        s->first_ms = (double)(t.tv_sec - s->t0.tv_sec) * 1e3 +
                                      (double)(t.tv_nsec - s->t0.tv_nsec) / 1e6;
                }
                if (n == 0) {
                        s->eof = true;
                        event_del(s->rev);
                        snap_check_complete(s);
                        return;
                }
                /* Compress as it comes: at most 1 MiB per step keeps the loop
                 * responsive for other agents. */
                struct timespec c0, c1;
                clock_gettime(CLOCK_MONOTONIC, &c0);
                int r = fr_lz4_out_write(s->lz, j->raw + j->raw_len, (size_t)n);
                clock_gettime(CLOCK_MONOTONIC, &c1);
                s->lz4_ms += (double)(c1.tv_sec - c0.tv_sec) * 1e3 +
                             (double)(c1.tv_nsec - c0.tv_nsec) / 1e6;
                j->raw_len += (size_t)n;
                if (r < 0) {
                        char msg[256];
                        snprintf(msg, sizeof msg, "writing %s: %s", j->trace_tmp, strerror(-r));
                        snap_finish_reading(s, msg);
                        return;
                }
                if (j->raw_len > D.cfg.max_trace_bytes) {
                        snap_finish_reading(s, "trace larger than max_trace_bytes");
                        return;
                }
        }
}

static void on_snap_timeout(evutil_socket_t fd, short what, void *arg) {
        (void)fd;
        (void)what;
        struct snap *s = arg;
        char msg[128];
        snprintf(msg, sizeof msg, "no complete snapshot within %u ms (snapshot_timeout)",
                 D.cfg.snapshot_timeout_ms);
        snap_finish_reading(s, msg);
}

static bool snap_add_waiter(struct snap *s, struct ctl_req *q) {
        if (!q)
                return true;
        struct ctl_req **w = realloc(s->waiters, (s->nwaiters + 1) * sizeof *w);
        if (!w)
                return false;
        s->waiters = w;
        s->waiters[s->nwaiters++] = q;
        q->pending++;
        return true;
}

/* Snapshot agent c; q (may be NULL) waits for the result. A snapshot already
 * reading from that agent is joined instead of starting another. */
static int snapshot_agent(struct conn *c, const char *reason, struct ctl_req *q,
                          uint64_t trigger_id) {
        if (c->reading) {
                snap_add_waiter(c->reading, q);
                return 0;
        }
        struct snap *s = calloc(1, sizeof *s);
        struct fd_job *j = calloc(1, sizeof *j);
        int pfd[2] = {-1, -1};
        char msg[512] = "";
        if (!s || !j) {
                free(s);
                free(j);
                return -ENOMEM;
        }
        s->pipe_fd = -1;
        j->trace_fd = -1;
        j->ring_fd = -1;
        j->pid = (pid_t)c->pid;
        snprintf(j->comm, sizeof j->comm, "%s", c->comm);
        j->symbolize = D.cfg.symbolize;
        j->gid = D.out_gid;
        j->owner = s;
        s->job = j;
        s->id = ++D.next_snap_id;
        s->agent = c;
        s->trigger_id = trigger_id;
        if (c->stat_bytes && c->stat_bytes < D.cfg.max_trace_bytes)
                s->expect = (size_t)c->stat_bytes + c->stat_bytes / 8 + 4 * PIPE_CHUNK;
        clock_gettime(CLOCK_MONOTONIC, &s->t0);
        s->next = D.snaps;
        D.snaps = s;
        snap_add_waiter(s, q);
        int r = fd_output_create(D.cfg.output_dir, j);
        if (r < 0) {
                snprintf(msg, sizeof msg, "cannot create a file in %s: %s", D.cfg.output_dir,
                         strerror(-r));
                goto fail;
        }
        r = fr_lz4_out_open(j->trace_fd, &s->lz);
        if (r < 0) {
                snprintf(msg, sizeof msg, "lz4: %s", strerror(-r));
                goto fail;
        }
        if (pipe2(pfd, O_CLOEXEC) < 0) {
                snprintf(msg, sizeof msg, "pipe: %s", strerror(errno));
                goto fail;
        }
        fcntl(pfd[0], F_SETPIPE_SZ, 1 << 20); /* fewer wakeups; best effort */
        fcntl(pfd[0], F_SETFL, O_NONBLOCK);
        s->pipe_fd = pfd[0];
        s->rev = event_new(D.base, pfd[0], EV_READ | EV_PERSIST, on_pipe, s);
        s->timer = evtimer_new(D.base, on_snap_timeout, s);
        struct timeval tv = {D.cfg.snapshot_timeout_ms / 1000,
                             (D.cfg.snapshot_timeout_ms % 1000) * 1000};
        if (!s->rev || !s->timer || event_add(s->rev, NULL) < 0 || evtimer_add(s->timer, &tv) < 0) {
                close(pfd[1]);
                snprintf(msg, sizeof msg, "out of memory");
                goto fail;
        }
        c->reading = s;
        char rs[FR_WIRE_MAX_REASON + 1];
        snprintf(rs, sizeof rs, "%s", reason);
        Flightrec__Wire__SnapshotRequest m = FLIGHTREC__WIRE__SNAPSHOT_REQUEST__INIT;
        m.id = s->id;
        m.reason = rs;
        m.trigger_id = trigger_id;
        fr_frame f = FLIGHTREC__WIRE__FRAME__INIT;
        f.msg_case = FLIGHTREC__WIRE__FRAME__MSG_SNAPSHOT_REQUEST;
        f.snapshot_request = &m;
        conn_send(c, &f, pfd[1]); /* the queue owns the write end now */
        fd_log(FD_INFO, "snapshot of %s[%u] started (%s)", c->comm, c->pid, reason);
        return 0;
fail:
        if (pfd[0] >= 0 && s->pipe_fd < 0)
                close(pfd[0]);
        if (pfd[1] >= 0 && !s->rev)
                close(pfd[1]);
        if (s->lz)
                fr_lz4_out_close(s->lz, 1);
        s->lz = NULL;
        fd_output_discard(j);
        fd_log(FD_ERR, "snapshot of %s[%u] failed: %s", c->comm, c->pid, msg);
        snap_complete(s, "", "", msg);
        return -EIO;
}

/* A process died without a clean stop: write what its ring holds, marked as
 * post-mortem. The worker reads the ring (untrusted) and writes both files. */
static void snapshot_postmortem(struct fd_pm_dead *d) {
        struct snap *s = calloc(1, sizeof *s);
        struct fd_job *j = calloc(1, sizeof *j);
        struct fr_buf hdr = {0};
        char msg[512] = "";
        if (!s || !j) {
                free(s);
                free(j);
                close(d->ring_fd);
                fd_log(FD_ERR, "post-mortem of %s[%d]: out of memory", d->comm, (int)d->pid);
                return;
        }
        s->pipe_fd = -1;
        s->id = ++D.next_snap_id;
        s->job = j;
        s->with_worker = true;
        clock_gettime(CLOCK_MONOTONIC, &s->t0);
        s->next = D.snaps;
        D.snaps = s;
        j->owner = s;
        j->trace_fd = -1;
        j->ring_fd = d->ring_fd;
        j->postmortem = true;
        j->pid = d->pid;
        snprintf(j->comm, sizeof j->comm, "%s", d->comm);
        j->symbolize = D.cfg.symbolize;
        j->gid = D.out_gid;
        j->max_trace_bytes = D.cfg.max_trace_bytes;
        fr_buf_put_header(&hdr, (uint64_t)d->pid, d->comm, d->exe,
                          "post-mortem: the process died without a clean stop",
                          FR_HEADER_POSTMORTEM);
        int r = hdr.failed ? -ENOMEM : fd_raw_reserve(j, hdr.len);
        if (r == 0) {
                memcpy(j->raw, hdr.data, hdr.len);
                j->raw_len = hdr.len;
                r = fd_output_create(D.cfg.output_dir, j);
                if (r < 0)
                        snprintf(msg, sizeof msg, "cannot create a file in %s: %s",
                                 D.cfg.output_dir, strerror(-r));
        } else {
                snprintf(msg, sizeof msg, "out of memory");
        }
        fr_buf_free(&hdr);
        if (r < 0) {
                close(j->ring_fd);
                j->ring_fd = -1;
                fd_raw_free(j);
                fd_output_discard(j);
                fd_log(FD_ERR, "post-mortem of %s[%d] failed: %s", d->comm, (int)d->pid, msg);
                snap_complete(s, "", "", msg);
                return;
        }
        fd_log(FD_NOTICE, "agent %s[%d] died without a clean stop: writing a post-mortem snapshot",
               d->comm, (int)d->pid);
        fd_output_submit(j);
}

static void snapshot_all(const char *reason) {
        unsigned n = 0;
        for (struct conn *c = D.conns; c; c = c->next)
                if (c->kind == PEER_AGENT && !c->closing) {
                        snapshot_agent(c, reason, NULL, 0);
                        n++;
                }
        fd_log(FD_NOTICE, "%s: snapshot of %u agent%s", reason, n, n == 1 ? "" : "s");
}

/* ---- flightrecctl requests ------------------------------------------------------------- */
static void free_results(Flightrec__Wire__SnapshotResult **v, unsigned n) {
        for (unsigned i = 0; i < n; i++) {
                free(v[i]->comm);
                free(v[i]->trace_path);
                free(v[i]->pprof_path);
                free(v[i]->error);
                free(v[i]);
        }
        free(v);
}

static void ctl_req_reply(struct ctl_req *q, const char *error) {
        if (q->c) {
                Flightrec__Wire__TriggerReply m = FLIGHTREC__WIRE__TRIGGER_REPLY__INIT;
                m.results = q->results;
                m.n_results = q->nresults;
                m.error = (char *)error;
                fr_frame f = FLIGHTREC__WIRE__FRAME__INIT;
                f.msg_case = FLIGHTREC__WIRE__FRAME__MSG_TRIGGER_REPLY;
                f.trigger_reply = &m;
                q->c->req = NULL;
                conn_send(q->c, &f, -1);
        }
        free_results(q->results, q->nresults);
        free(q);
}

static void ctl_req_add_result(struct ctl_req *q, Flightrec__Wire__SnapshotResult *res) {
        Flightrec__Wire__SnapshotResult **v = realloc(q->results, (q->nresults + 1) * sizeof *v);
        if (v) {
                q->results = v;
                q->results[q->nresults++] = res;
        }
        if (--q->pending == 0)
                ctl_req_reply(q, "");
}

static void handle_ctl_trigger(struct conn *c, const Flightrec__Wire__CtlTrigger *t) {
        if (c->req) {
                refuse(c, "one trigger at a time per connection");
                return;
        }
        char reason[FR_WIRE_MAX_REASON + 1];
        snprintf(reason, sizeof reason, "%s", t->reason[0] ? t->reason : "flightrecctl trigger");
        struct ctl_req *q = calloc(1, sizeof *q);
        if (!q) {
                refuse(c, "out of memory");
                return;
        }
        q->c = c;
        c->req = q;
        q->pending = 1; /* held while starting */
        unsigned n = 0;
        if (!D.stopping)
                for (struct conn *a = D.conns; a; a = a->next)
                        if (a->kind == PEER_AGENT && !a->closing && (!t->pid || a->pid == t->pid)) {
                                snapshot_agent(a, reason, q, 0);
                                n++;
                        }
        fd_log(FD_NOTICE, "flightrecctl (pid %u uid %u): snapshot of %u agent%s%s", c->cred.pid,
               c->cred.uid, n, n == 1 ? "" : "s", t->pid ? " (by pid)" : "");
        if (--q->pending == 0) {
                char err[128] = "";
                if (D.stopping)
                        snprintf(err, sizeof err, "the daemon is stopping");
                else if (n == 0 && t->pid)
                        snprintf(err, sizeof err, "no agent with pid %u is connected", t->pid);
                else if (n == 0)
                        snprintf(err, sizeof err, "no agent is connected");
                ctl_req_reply(q, err);
        }
}

static void handle_ctl_status(struct conn *c) {
        unsigned n = 0;
        for (struct conn *a = D.conns; a; a = a->next)
                n += a->kind == PEER_AGENT;
        Flightrec__Wire__AgentInfo *infos = calloc(n ? n : 1, sizeof *infos);
        Flightrec__Wire__AgentInfo **ptrs = calloc(n ? n : 1, sizeof *ptrs);
        if (!infos || !ptrs) {
                free(infos);
                free(ptrs);
                refuse(c, "out of memory");
                return;
        }
        unsigned i = 0;
        for (struct conn *a = D.conns; a; a = a->next) {
                if (a->kind != PEER_AGENT)
                        continue;
                Flightrec__Wire__AgentInfo *x = &infos[i];
                flightrec__wire__agent_info__init(x);
                x->pid = a->pid;
                x->comm = a->comm;
                x->exe = a->exe;
                x->connected_since_ns = a->since_ns;
                x->generations = a->stat_gens;
                x->bytes = a->stat_bytes;
                x->uid = a->cred.uid;
                x->hz = a->hz;
                x->sampler = a->sampler;
                x->period_ms = a->period_ms;
                x->snapshot_in_progress = a->reading != NULL;
                ptrs[i++] = x;
        }
        Flightrec__Wire__StatusReply m = FLIGHTREC__WIRE__STATUS_REPLY__INIT;
        m.agents = ptrs;
        m.n_agents = n;
        m.snapshots_written = D.written;
        m.snapshots_failed = D.failed;
        m.output_dir = D.cfg.output_dir;
        m.daemon = DAEMON_NAME;
        fr_frame f = FLIGHTREC__WIRE__FRAME__INIT;
        f.msg_case = FLIGHTREC__WIRE__FRAME__MSG_STATUS_REPLY;
        f.status_reply = &m;
        conn_send(c, &f, -1);
        free(infos);
        free(ptrs);
}

/* ---- agents ---------------------------------------------------------------------------- */
static void handle_hello(struct conn *c, const Flightrec__Wire__Hello *h) {
        if (!fd_config_allows(&D.cfg.agent_users, &D.cfg.agent_groups, c->cred.uid, c->cred.gid)) {
                refuse(c, "uid %u gid %u may not connect as an agent ([access] agent_users, "
                          "agent_groups)",
                       c->cred.uid, c->cred.gid);
                return;
        }
        if (h->pid != (uint32_t)c->cred.pid) {
                refuse(c, "hello.pid %u does not match the connecting process %u (another pid "
                          "namespace?)",
                       h->pid, c->cred.pid);
                return;
        }
        if (D.nagents >= D.cfg.max_agents) {
                refuse(c, "%u agents connected already (max_agents)", D.nagents);
                return;
        }
        if (D.stopping) {
                refuse(c, "the daemon is stopping");
                return;
        }
        if (h->ring) {
                /* A ring we cannot use costs the agent its post-mortem, not
                 * its connection. */
                c->ring_fd = fr_wire_reader_take_fd(&c->rd);
                const char *why = fd_pm_check_ring(c->ring_fd);
                if (why) {
                        fd_log(FD_WARN, "agent pid %u: no post-mortem: hello.ring: %s", h->pid, why);
                        if (c->ring_fd >= 0)
                                close(c->ring_fd);
                        c->ring_fd = -1;
                } else {
                        c->pidfd = fd_pm_pidfd((pid_t)h->pid);
                }
        }
        fd_pm_forget((pid_t)h->pid);
        c->kind = PEER_AGENT;
        c->pid = h->pid;
        snprintf(c->comm, sizeof c->comm, "%s", h->comm);
        snprintf(c->exe, sizeof c->exe, "%s", h->exe);
        for (size_t i = 0; i < h->build_id.len; i++)
                snprintf(c->build_id + 2 * i, 3, "%02x", h->build_id.data[i]);
        c->hz = h->hz;
        c->sampler = h->sampler;
        c->period_ms = h->period_ms;
        c->generations = h->generations;
        c->max_bytes = h->max_bytes;
        c->since_ns = realtime_ns();
        D.nagents++;
        if (c->hello_timer)
                event_del(c->hello_timer);
        fd_log(FD_INFO,
               "agent %s[%u] connected (uid %u, exe %s, build id %s, %u Hz, %u ms x %u, %s)",
               c->comm, c->pid, c->cred.uid, c->exe, c->build_id[0] ? c->build_id : "none", c->hz,
               c->period_ms, c->generations,
               c->ring_fd >= 0 ? "post-mortem ring" : "no post-mortem ring");
        notify_status();
        Flightrec__Wire__Welcome w = FLIGHTREC__WIRE__WELCOME__INIT;
        w.version = FR_WIRE_VERSION;
        w.daemon = DAEMON_NAME;
        fr_frame f = FLIGHTREC__WIRE__FRAME__INIT;
        f.msg_case = FLIGHTREC__WIRE__FRAME__MSG_WELCOME;
        f.welcome = &w;
        conn_send(c, &f, -1);
}

static void handle_agent_trigger(struct conn *c, const Flightrec__Wire__Trigger *t) {
        if (D.stopping) {
                Flightrec__Wire__TriggerReply m = FLIGHTREC__WIRE__TRIGGER_REPLY__INIT;
                m.error = "the daemon is stopping";
                fr_frame f = FLIGHTREC__WIRE__FRAME__INIT;
                f.msg_case = FLIGHTREC__WIRE__FRAME__MSG_TRIGGER_REPLY;
                f.trigger_reply = &m;
                conn_send(c, &f, -1);
                return;
        }
        if (c->reading && !c->reading->confirmed)
                return; /* the agent counts its trigger into the snapshot it is writing */
        if (c->reading) {
                /* Written before the trigger: take another one right after. */
                c->queued_trigger = t->id;
                snprintf(c->queued_reason, sizeof c->queued_reason, "%s", t->reason);
                return;
        }
        snapshot_agent(c, t->reason, NULL, t->id);
}

static void handle_snapshot_done(struct conn *c, const Flightrec__Wire__SnapshotDone *d) {
        struct snap *s = c->reading;
        if (!s || s->id != d->id) {
                fd_log(FD_DEBUG, "agent %s[%u]: snapshot_done for %llu, not in progress", c->comm,
                       c->pid, (unsigned long long)d->id);
                return;
        }
        s->confirmed = d->error == 0;
        s->agent_error = d->error;
        if (d->error)
                s->eof = true; /* nothing more is coming */
        snap_check_complete(s);
}

static void dispatch(struct conn *c, fr_frame *f) {
        int m = f->msg_case;
        switch (c->kind) {
        case PEER_NEW:
                if (m == FLIGHTREC__WIRE__FRAME__MSG_HELLO) {
                        handle_hello(c, f->hello);
                        return;
                }
                if (m == FLIGHTREC__WIRE__FRAME__MSG_CTL_STATUS ||
                    m == FLIGHTREC__WIRE__FRAME__MSG_CTL_TRIGGER) {
                        if (c->cred.uid != 0 && c->cred.uid != geteuid() &&
                            !fd_config_allows(&D.cfg.control_users, &D.cfg.control_groups,
                                              c->cred.uid, c->cred.gid)) {
                                refuse(c, "uid %u may not control the daemon ([access] "
                                          "control_users, control_groups)",
                                       c->cred.uid);
                                return;
                        }
                        c->kind = PEER_CTL;
                        if (c->hello_timer)
                                event_del(c->hello_timer);
                        dispatch(c, f);
                        return;
                }
                break;
        case PEER_AGENT:
                if (m == FLIGHTREC__WIRE__FRAME__MSG_SNAPSHOT_DONE) {
                        handle_snapshot_done(c, f->snapshot_done);
                        return;
                }
                if (m == FLIGHTREC__WIRE__FRAME__MSG_AGENT_STATS) {
                        c->stat_gens = f->agent_stats->generations;
                        c->stat_bytes = f->agent_stats->bytes;
                        return;
                }
                if (m == FLIGHTREC__WIRE__FRAME__MSG_TRIGGER) {
                        handle_agent_trigger(c, f->trigger);
                        return;
                }
                break;
        case PEER_CTL:
                if (m == FLIGHTREC__WIRE__FRAME__MSG_CTL_STATUS) {
                        handle_ctl_status(c);
                        return;
                }
                if (m == FLIGHTREC__WIRE__FRAME__MSG_CTL_TRIGGER) {
                        handle_ctl_trigger(c, f->ctl_trigger);
                        return;
                }
                break;
        }
        refuse(c, "unexpected %s message", fr_wire_name(f));
}

static void on_readable(evutil_socket_t fd, short what, void *arg) {
        (void)what;
        struct conn *c = arg;
        long n = fr_wire_reader_fill(&c->rd, fd);
        if (n == -EAGAIN)
                return;
        if (n <= 0) {
                if (n < 0 && n != -ECONNRESET)
                        fd_log(FD_WARN, "reading from pid %u: %s", c->cred.pid, strerror((int)-n));
                conn_close(c);
                return;
        }
        if (c->rd.dropped_fds) {
                refuse(c, "file descriptors are not accepted here");
                return;
        }
        for (;;) {
                fr_frame *f;
                char err[512];
                int r = fr_wire_reader_next(&c->rd, &f, err, sizeof err);
                if (r == 0)
                        return;
                if (r < 0) {
                        refuse(c, "bad frame: %s", err);
                        return;
                }
                dispatch(c, f);
                fr_wire_free(f);
                if (c->closing || c->dead)
                        return;
                if (c->rd.nfds) {
                        refuse(c, "a file descriptor came with a message that takes none");
                        return;
                }
        }
}

static void on_hello_timeout(evutil_socket_t fd, short what, void *arg) {
        (void)fd;
        (void)what;
        struct conn *c = arg;
        if (c->kind == PEER_NEW)
                refuse(c, "nothing received within %d s", HELLO_TIMEOUT_S);
}

static void reap(evutil_socket_t fd, short what, void *arg) {
        (void)fd;
        (void)what;
        (void)arg;
        while (D.dead) {
                struct conn *c = D.dead;
                D.dead = c->next_dead;
                free(c);
        }
}

/* Close now; the memory is freed from the loop, so that a caller up the
 * stack (a message handler) may still look at c->dead. */
static void conn_close(struct conn *c) {
        if (c->dead)
                return;
        c->dead = true;
        struct conn **p = &D.conns;
        while (*p && *p != c)
                p = &(*p)->next;
        if (*p)
                *p = c->next;
        if (c->kind == PEER_AGENT) {
                D.nagents--;
                fd_log(FD_INFO, "agent %s[%u] disconnected", c->comm, c->pid);
                notify_status();
                /* Did it die? fd_pm_watch takes both descriptors. */
                if (c->ring_fd >= 0 && !D.stopping && D.cfg.post_mortem) {
                        fd_pm_watch(D.base, c->ring_fd, c->pidfd, (pid_t)c->pid, c->comm, c->exe);
                        c->ring_fd = c->pidfd = -1;
                }
        }
        if (c->ring_fd >= 0)
                close(c->ring_fd);
        if (c->pidfd >= 0)
                close(c->pidfd);
        for (struct snap *s = D.snaps; s; s = s->next)
                if (s->agent == c) {
                        s->agent = NULL;
                        s->orphaned = true;
                }
        for (struct snap *s = D.snaps, *next; s; s = next) {
                next = s->next; /* only s itself may be freed */
                if (s->orphaned) {
                        s->orphaned = false;
                        snap_check_complete(s);
                }
        }
        if (c->req)
                c->req->c = NULL;
        event_free(c->rev);
        event_free(c->wev);
        if (c->hello_timer)
                event_free(c->hello_timer);
        while (c->outq) {
                struct outbuf *o = c->outq;
                c->outq = o->next;
                if (o->fd >= 0)
                        close(o->fd);
                free(o->data);
                free(o);
        }
        fr_wire_reader_free(&c->rd);
        close(c->fd);
        c->fd = -1;
        c->next_dead = D.dead;
        D.dead = c;
        event_active(D.reaper, EV_TIMEOUT, 0);
        maybe_exit();
}

static void on_accept(evutil_socket_t lfd, short what, void *arg) {
        (void)what;
        (void)arg;
        for (int k = 0; k < 64; k++) {
                int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (fd < 0) {
                        if (errno == EMFILE || errno == ENFILE) {
                                /* Out of descriptors: stop accepting for a second
                                 * rather than spin on a listener that stays readable. */
                                fd_log(FD_WARN, "accept: %s; new connections wait 1 s "
                                                "(raise LimitNOFILE or lower max_agents)",
                                       strerror(errno));
                                event_del(D.listen_ev);
                                struct timeval one = {1, 0};
                                evtimer_add(D.accept_pause, &one);
                        } else if (errno != EAGAIN && errno != EINTR) {
                                fd_log(FD_WARN, "accept: %s", strerror(errno));
                        }
                        return;
                }
                struct conn *c = calloc(1, sizeof *c);
                socklen_t len = sizeof c->cred;
                if (!c || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0) {
                        fd_log(FD_WARN, "new peer without credentials: dropped");
                        free(c);
                        close(fd);
                        continue;
                }
                c->fd = fd;
                c->outq_tail = &c->outq;
                c->ring_fd = c->pidfd = -1;
                /* One descriptor is taken: the ring that comes with HELLO. */
                fr_wire_reader_init(&c->rd, D.cfg.max_frame_bytes, 1);
                c->rev = event_new(D.base, fd, EV_READ | EV_PERSIST, on_readable, c);
                c->wev = event_new(D.base, fd, EV_WRITE, on_writable, c);
                c->hello_timer = evtimer_new(D.base, on_hello_timeout, c);
                struct timeval tv = {HELLO_TIMEOUT_S, 0};
                c->next = D.conns;
                D.conns = c;
                if (!c->rev || !c->wev || !c->hello_timer || event_add(c->rev, NULL) < 0 ||
                    evtimer_add(c->hello_timer, &tv) < 0) {
                        fd_log(FD_ERR, "out of memory for a new peer");
                        conn_close(c);
                }
        }
}

static void on_accept_pause(evutil_socket_t fd, short what, void *arg) {
        (void)fd;
        (void)what;
        (void)arg;
        if (!D.stopping)
                event_add(D.listen_ev, NULL);
}

/* ---- shutdown, reload, signals ------------------------------------------------------------ */
static void maybe_exit(void) {
        static bool said;
        if (!D.stopping || D.snaps || fd_pm_watching() || said)
                return;
        said = true;
        fd_log(FD_NOTICE, "no snapshot in progress: exiting");
        event_base_loopexit(D.base, NULL);
}

static void on_sigterm(evutil_socket_t sig, short what, void *arg) {
        (void)what;
        (void)arg;
        if (D.stopping) {
                fd_log(FD_WARN, "second %s: exiting now", strsignal((int)sig));
                event_base_loopexit(D.base, NULL);
                return;
        }
        D.stopping = true;
        sd_notify(0, "STOPPING=1");
        unsigned n = 0;
        for (struct snap *s = D.snaps; s; s = s->next)
                n++;
        fd_log(FD_NOTICE, "%s: stopping%s", strsignal((int)sig),
               n ? " after the snapshots in progress" : "");
        if (D.listen_ev)
                event_del(D.listen_ev);
        evtimer_del(D.accept_pause);
        notify_status();
        maybe_exit();
}

static void on_sigusr1(evutil_socket_t sig, short what, void *arg) {
        (void)sig;
        (void)what;
        (void)arg;
        if (D.stopping)
                return;
        snapshot_all("SIGUSR1");
}

static int resolve_group(const char *name, gid_t *ret) {
        if (!name[0]) {
                *ret = (gid_t)-1;
                return 0;
        }
        struct group *g = getgrnam(name);
        if (!g)
                return -ENOENT;
        *ret = g->gr_gid;
        return 0;
}

static int prepare_output(const struct fd_config *c, char *err, size_t errlen) {
        if (mkdir(c->output_dir, 0750) < 0 && errno != EEXIST) {
                snprintf(err, errlen, "cannot create output directory %s: %s", c->output_dir,
                         strerror(errno));
                return -errno;
        }
        if (access(c->output_dir, W_OK | X_OK) < 0) {
                snprintf(err, errlen, "output directory %s is not writable: %s", c->output_dir,
                         strerror(errno));
                return -errno;
        }
        return 0;
}

static void apply_overrides(struct fd_config *c) {
        if (D.opt_socket)
                snprintf(c->socket_path, sizeof c->socket_path, "%s", D.opt_socket);
        if (D.opt_output)
                snprintf(c->output_dir, sizeof c->output_dir, "%s", D.opt_output);
}

static void on_sighup(evutil_socket_t sig, short what, void *arg) {
        (void)sig;
        (void)what;
        (void)arg;
        sd_notify(0, "RELOADING=1");
        struct fd_config c;
        char err[1024];
        gid_t gid = (gid_t)-1;
        int r = fd_config_load(D.config_path, D.config_explicit, &c, err, sizeof err);
        if (r == 0) {
                apply_overrides(&c);
                r = prepare_output(&c, err, sizeof err);
        }
        if (r == 0 && resolve_group(c.output_group, &gid) < 0) {
                snprintf(err, sizeof err, "no group named '%s'", c.output_group);
                r = -EINVAL;
        }
        if (r < 0) {
                fd_log(FD_ERR, "reload refused, the previous configuration stays in force: %s",
                       err);
        } else {
                if (strcmp(c.socket_path, D.cfg.socket_path) || c.socket_mode != D.cfg.socket_mode ||
                    strcmp(c.socket_group, D.cfg.socket_group) || c.workers != D.cfg.workers)
                        fd_log(FD_WARN, "reload: socket, socket_mode, socket_group and workers "
                                        "take effect at the next start only");
                strcpy(c.socket_path, D.cfg.socket_path);
                c.socket_mode = D.cfg.socket_mode;
                strcpy(c.socket_group, D.cfg.socket_group);
                c.workers = D.cfg.workers;
                D.cfg = c;
                D.out_gid = gid;
                fd_log(FD_NOTICE, "configuration reloaded from %s", D.config_path);
                fd_retention(D.cfg.output_dir, D.cfg.max_total_bytes, D.cfg.max_files,
                             D.cfg.max_age_s);
        }
        sd_notify(0, "READY=1");
        notify_status();
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg) {
        (void)fd;
        (void)what;
        (void)arg;
        sd_notify(0, "WATCHDOG=1");
}

static void on_retention(evutil_socket_t fd, short what, void *arg) {
        (void)fd;
        (void)what;
        (void)arg;
        fd_retention(D.cfg.output_dir, D.cfg.max_total_bytes, D.cfg.max_files, D.cfg.max_age_s);
}

/* ---- the listening socket -------------------------------------------------------------------- */
static int open_listener(char *err, size_t errlen) {
        int n = sd_listen_fds(1);
        if (n < 0) {
                snprintf(err, errlen, "sd_listen_fds: %s", strerror(-n));
                return n;
        }
        if (n > 1) {
                snprintf(err, errlen, "%d sockets passed; expected one", n);
                return -EINVAL;
        }
        if (n == 1) {
                int fd = SD_LISTEN_FDS_START;
                if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) <= 0) {
                        snprintf(err, errlen, "the passed socket is not a listening Unix stream "
                                              "socket");
                        return -EINVAL;
                }
                fcntl(fd, F_SETFD, FD_CLOEXEC);
                fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
                D.socket_activated = true;
                D.listen_fd = fd;
                if (D.opt_socket)
                        fd_log(FD_NOTICE, "socket activation: --socket %s ignored",
                               D.opt_socket);
                return 0;
        }
        const char *path = D.cfg.socket_path;
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof a.sun_path) {
                snprintf(err, errlen, "socket path %s is too long", path);
                return -ENAMETOOLONG;
        }
        strcpy(a.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
                snprintf(err, errlen, "socket: %s", strerror(errno));
                return -errno;
        }
        /* A stale socket file from a daemon that died: remove it, but never
         * take over from a daemon that still listens. */
        struct stat st;
        if (lstat(path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode)) {
                        snprintf(err, errlen, "%s exists and is not a socket", path);
                        close(fd);
                        return -EEXIST;
                }
                int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (probe >= 0 && connect(probe, (struct sockaddr *)&a, sizeof a) == 0) {
                        close(probe);
                        close(fd);
                        snprintf(err, errlen, "another daemon listens on %s", path);
                        return -EADDRINUSE;
                }
                if (probe >= 0)
                        close(probe);
                unlink(path);
        }
        mode_t old = umask(0777 & ~D.cfg.socket_mode);
        int r = bind(fd, (struct sockaddr *)&a, sizeof a);
        umask(old);
        if (r < 0) {
                snprintf(err, errlen, "bind %s: %s", path, strerror(errno));
                close(fd);
                return -errno;
        }
        chmod(path, D.cfg.socket_mode);
        if (D.cfg.socket_group[0]) {
                gid_t g;
                if (resolve_group(D.cfg.socket_group, &g) == 0 && chown(path, (uid_t)-1, g) < 0)
                        fd_log(FD_WARN, "chown %s to group %s: %s", path, D.cfg.socket_group,
                               strerror(errno));
        }
        if (listen(fd, 512) < 0) {
                snprintf(err, errlen, "listen %s: %s", path, strerror(errno));
                close(fd);
                unlink(path);
                return -errno;
        }
        D.listen_fd = fd;
        D.we_bound = true;
        snprintf(D.bound_path, sizeof D.bound_path, "%s", path);
        return 0;
}

static void usage(FILE *f) {
        fprintf(f, "usage: flightrecd [--config FILE] [--socket PATH] [--output-dir DIR]\n"
                   "  --config FILE      configuration (default %s)\n"
                   "  --socket PATH      listen here (default from the config, %s)\n"
                   "  --output-dir DIR   write snapshots here (default from the config, %s)\n"
                   "  --debug            log debug messages too\n"
                   "Runs in the foreground; signals: SIGUSR1 snapshots every agent, SIGHUP\n"
                   "reloads the configuration, SIGTERM stops after the snapshots in progress.\n",
                FD_DEFAULT_CONFIG, FD_DEFAULT_SOCKET, FD_DEFAULT_OUTPUT);
}

int main(int argc, char **argv) {
        static const struct option longopts[] = {
                {"config", required_argument, NULL, 'c'},
                {"socket", required_argument, NULL, 's'},
                {"output-dir", required_argument, NULL, 'o'},
                {"debug", no_argument, NULL, 'd'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        const char *js = getenv("JOURNAL_STREAM");
        log_prefix = js && *js;
        D.config_path = FD_DEFAULT_CONFIG;
        int opt;
        while ((opt = getopt_long(argc, argv, "c:s:o:dh", longopts, NULL)) != -1) {
                switch (opt) {
                case 'c':
                        D.config_path = optarg;
                        D.config_explicit = true;
                        break;
                case 's':
                        D.opt_socket = optarg;
                        break;
                case 'o':
                        D.opt_output = optarg;
                        break;
                case 'd':
                        log_max = FD_DEBUG;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "flightrecd: unexpected argument '%s'\n", argv[optind]);
                usage(stderr);
                return 2;
        }
        char err[1024];
        int r = fd_config_load(D.config_path, D.config_explicit, &D.cfg, err, sizeof err);
        if (r < 0) {
                fd_log(FD_ERR, "%s", err);
                return 1;
        }
        apply_overrides(&D.cfg);
        if (D.opt_socket && D.opt_socket[0] != '/') {
                fd_log(FD_ERR, "--socket %s: not an absolute path", D.opt_socket);
                return 1;
        }
        if (prepare_output(&D.cfg, err, sizeof err) < 0) {
                fd_log(FD_ERR, "%s", err);
                return 1;
        }
        if (resolve_group(D.cfg.output_group, &D.out_gid) < 0) {
                fd_log(FD_ERR, "output_group: no group named '%s'", D.cfg.output_group);
                return 1;
        }
        signal(SIGPIPE, SIG_IGN);
        umask(027);
        D.base = event_base_new();
        if (!D.base) {
                fd_log(FD_ERR, "libevent: cannot create the event base");
                return 1;
        }
        /* Before the socket exists: whoever sees it sees a clean directory. */
        fd_output_clean_tmp(D.cfg.output_dir);
        if (open_listener(err, sizeof err) < 0) {
                fd_log(FD_ERR, "%s", err);
                return 1;
        }
        fd_pm_init(snapshot_postmortem, maybe_exit);
        r = fd_output_start(D.base, D.cfg.workers, on_job_done);
        if (r < 0) {
                fd_log(FD_ERR, "cannot start the worker threads: %s", strerror(-r));
                return 1;
        }
        D.listen_ev = event_new(D.base, D.listen_fd, EV_READ | EV_PERSIST, on_accept, NULL);
        struct event *sig_usr1 = evsignal_new(D.base, SIGUSR1, on_sigusr1, NULL);
        struct event *sig_hup = evsignal_new(D.base, SIGHUP, on_sighup, NULL);
        struct event *sig_term = evsignal_new(D.base, SIGTERM, on_sigterm, NULL);
        struct event *sig_int = evsignal_new(D.base, SIGINT, on_sigterm, NULL);
        D.retention_ev = event_new(D.base, -1, EV_PERSIST, on_retention, NULL);
        D.reaper = event_new(D.base, -1, 0, reap, NULL);
        D.accept_pause = evtimer_new(D.base, on_accept_pause, NULL);
        struct timeval hour = {600, 0};
        if (!D.listen_ev || !sig_usr1 || !sig_hup || !sig_term || !sig_int || !D.retention_ev || !D.reaper || !D.accept_pause ||
            event_add(D.listen_ev, NULL) < 0 || event_add(sig_usr1, NULL) < 0 ||
            event_add(sig_hup, NULL) < 0 || event_add(sig_term, NULL) < 0 ||
            event_add(sig_int, NULL) < 0 || event_add(D.retention_ev, &hour) < 0) {
                fd_log(FD_ERR, "libevent: cannot register events");
                return 1;
        }
        if (sd_watchdog_enabled(0, &D.watchdog_usec) > 0) {
                D.watchdog_ev = event_new(D.base, -1, EV_PERSIST, on_watchdog, NULL);
                struct timeval half = {(time_t)(D.watchdog_usec / 2000000),
                                       (suseconds_t)(D.watchdog_usec / 2 % 1000000)};
                if (D.watchdog_ev)
                        event_add(D.watchdog_ev, &half);
                fd_log(FD_INFO, "watchdog: pinging every %llu ms",
                       (unsigned long long)(D.watchdog_usec / 2000));
        }
        fd_retention(D.cfg.output_dir, D.cfg.max_total_bytes, D.cfg.max_files, D.cfg.max_age_s);
        fd_log(FD_NOTICE, "%s listening on %s%s, writing to %s", DAEMON_NAME,
               D.socket_activated ? "the socket passed by systemd" : D.cfg.socket_path,
               D.socket_activated ? "" : "", D.cfg.output_dir);
        sd_notify(0, "READY=1");
        notify_status();
        event_base_dispatch(D.base);

        /* Stop: agents are told nothing (they reconnect to the next daemon). */
        while (D.conns)
                conn_close(D.conns);
        reap(-1, 0, NULL);
        while (D.snaps) {
                struct snap *s = D.snaps;
                if (s->job) {
                        if (s->lz)
                                fr_lz4_out_close(s->lz, 1);
                        fd_output_discard(s->job);
                        fd_raw_free(s->job);
                        free(s->job);
                }
                s->job = NULL;
                snap_free(s);
        }
        fd_output_stop();
        if (D.we_bound)
                unlink(D.bound_path);
        event_free(D.listen_ev);
        event_free(sig_usr1);
        event_free(sig_hup);
        event_free(sig_term);
        event_free(sig_int);
        event_free(D.retention_ev);
        event_free(D.reaper);
        event_free(D.accept_pause);
        if (D.watchdog_ev)
                event_free(D.watchdog_ev);
        close(D.listen_fd);
        event_base_free(D.base);
        fd_log(FD_NOTICE, "stopped (%llu snapshots written, %llu failed)",
               (unsigned long long)D.written, (unsigned long long)D.failed);
        return 0;
}
