/* Snapshots of agents and of dead processes' rings: the request, reading the
 * agent's pipe into the LZ4 writer, the hand-over to a worker (frd_output.c)
 * and the answer to every waiter. One state (enum frd_snap_state) per
 * snapshot says where it is; see docs/life-of-a-snapshot.md. */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frd.h"
#include "trace_encode.h"
#include "trace_out.h"

static struct frd_snap **snap_link(struct frd_snap *s) {
        struct frd_snap **p = &D.snaps;
        while (*p && *p != s)
                p = &(*p)->next;
        return p;
}

static void snap_free(struct frd_snap *s) {
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

/* A new snapshot, linked into D.snaps, with its job. NULL: out of memory. */
static struct frd_snap *snap_new(pid_t pid, const char *comm) {
        struct frd_snap *s = calloc(1, sizeof *s);
        struct frd_job *j = calloc(1, sizeof *j);
        if (!s || !j) {
                free(s);
                free(j);
                return NULL;
        }
        s->pipe_fd = -1;
        s->id = ++D.next_snap_id;
        s->job = j;
        clock_gettime(CLOCK_MONOTONIC, &s->t0);
        s->next = D.snaps;
        D.snaps = s;
        j->owner = s;
        j->trace_fd = -1;
        j->ring_fd = -1;
        j->pid = pid;
        snprintf(j->comm, sizeof j->comm, "%s", comm);
        j->symbolize = D.cfg.symbolize;
        j->timeline = D.cfg.timeline;
        j->gid = D.out_gid;
        return s;
}

/* Report the outcome to every waiter and free the snapshot. */
static void snap_complete(struct frd_snap *s, const char *trace, const char *pprof, const char *error) {
        struct frd_job *j = s->job;
        uint32_t pid = j ? (uint32_t)j->pid : 0;
        const char *comm = j ? j->comm : "?";
        for (unsigned i = 0; i < s->nwaiters; i++)
                frd_ctl_add_result(s->waiters[i], pid, comm, trace, pprof, error);
        s->nwaiters = 0;
        if (error[0])
                D.failed++;
        else
                D.written++;
        frd_notify_status();
        free(j);
        s->job = NULL;
        snap_free(s);
        frd_maybe_exit();
}

static void snap_release(struct frd_snap *s);
static void send_release(struct frd_conn *c, uint64_t id);

void frd_snapshot_job_done(struct frd_job *j) {
        struct frd_snap *s = j->owner;
        double total = frd_ms_since(&s->t0);
        if (s->state == FRD_SNAP_COPYING)
                snap_release(s); /* the copied notice was lost (no memory) */
        if (j->error) {
                frd_log(FRD_ERR, "snapshot of %s[%d] failed: %s", j->comm, (int)j->pid, j->errmsg);
                snap_complete(s, "", "", j->errmsg);
        } else {
                if (s->from_ring)
                        frd_log(FRD_NOTICE,
                                "snapshot of %s[%d] (ring): %s (%llu bytes of trace, %llu samples) "
                                "and %s in %.1f ms (agent answered %.1f ms: forced advance %.2f ms, "
                                "agent CPU %.3f ms; worker %.1f ms: copy %.1f ms, lz4 %.1f ms, "
                                "pprof %.1f ms)",
                                j->comm, (int)j->pid, j->trace_path,
                                (unsigned long long)j->trace_bytes, (unsigned long long)j->nsamples,
                                j->pprof_path, total, s->answer_ms, (double)s->advance_ns / 1e6,
                                (double)s->agent_cpu_ns / 1e6, j->convert_ms, j->copy_ms, j->lz4_ms,
                                j->pprof_ms);
                else
                        frd_log(FRD_NOTICE,
                                "%ssnapshot of %s[%d]%s: %s (%llu bytes of trace, %llu samples) and %s in "
                                "%.1f ms (first byte %.1f ms, transfer %.1f ms incl. lz4 %.1f ms, worker "
                                "%.1f ms: pprof %.1f ms; agent CPU %.3f ms)",
                                j->postmortem ? "post-mortem " : "", j->comm, (int)j->pid,
                                j->partial ? " (unconfirmed end)" : "", j->trace_path,
                                (unsigned long long)j->trace_bytes, (unsigned long long)j->nsamples,
                                j->pprof_path, total, s->first_ms, s->transfer_ms, s->lz4_ms,
                                j->convert_ms, j->pprof_ms, (double)s->agent_cpu_ns / 1e6);
                if (j->postmortem)
                        frd_log(FRD_NOTICE, "agent %s[%d] %s%s%s%s%s", j->comm, (int)j->pid,
                                j->pm_reason, j->crashed ? "; crash report " : "",
                                j->crashed ? j->crash_path : "", j->pm_salvage[0] ? "; " : "",
                                j->pm_salvage);
                if (j->timeline_bytes)
                        frd_log(FRD_NOTICE, "timeline of %s[%d]: %s (%llu bytes, %.1f ms)",
                                j->comm, (int)j->pid, j->timeline_path,
                                (unsigned long long)j->timeline_bytes, j->timeline_ms);
                else if (j->timeline_err[0])
                        frd_log(FRD_WARN, "timeline of %s[%d] not written: %s", j->comm,
                                (int)j->pid, j->timeline_err);
                if (j->offcpu_bytes)
                        frd_log(FRD_NOTICE, "off-CPU profile of %s[%d]: %s (%llu waits)", j->comm,
                                (int)j->pid, j->offcpu_path, (unsigned long long)j->nwaits);
                char tp[sizeof j->trace_path], pp[sizeof j->pprof_path];
                snprintf(tp, sizeof tp, "%s", j->trace_path);
                snprintf(pp, sizeof pp, "%s", j->pprof_path);
                frd_hook_run(j, j->postmortem ? "post-mortem" : s->reason, s->trigger);
                snap_complete(s, tp, pp, "");
        }
        frd_retention(D.cfg.output_dir, D.cfg.max_total_bytes, D.cfg.max_files, D.cfg.max_age_s);
}

/* Reading ends (the data is complete, or error): stop reading, then hand the
 * data to a worker or fail the snapshot. */
static void snap_end_reading(struct frd_snap *s, const char *error) {
        if (s->rev)
                event_del(s->rev);
        if (s->timer)
                event_del(s->timer);
        if (s->pipe_fd >= 0)
                close(s->pipe_fd);
        s->pipe_fd = -1;
        if (s->agent && s->agent->reading == s)
                s->agent->reading = NULL;
        struct frd_job *j = s->job;
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
                frd_log(FRD_ERR, "snapshot of %s[%d] failed: %s", j->comm, (int)j->pid, error);
                frd_output_discard(j);
                frd_raw_free(j);
                snap_complete(s, "", "", error);
                return;
        }
        j->partial = s->state != FRD_SNAP_CONFIRMED;
        j->trace_bytes = j->raw_len;
        s->transfer_ms = frd_ms_since(&s->t0);
        s->state = FRD_SNAP_CONVERTING;
        frd_output_submit(j);
}

/* snap_finish_reading - end the reading, then start the agent's queued
 * trigger (one that came after this snapshot was written). */
static void start_queued(struct frd_conn *a) {
        if (a && !a->dead && !a->reading && a->queued_trigger && !D.stopping) {
                uint64_t id = a->queued_trigger;
                a->queued_trigger = 0;
                frd_snapshot_agent(a, a->queued_reason, NULL, id);
        }
}

static void snap_finish_reading(struct frd_snap *s, const char *error) {
        struct frd_conn *a = s->agent;
        snap_end_reading(s, error);
        start_queued(a);
}

/* Room in the raw buffer for one more chunk: 0 or -ENOMEM. */
static int snap_raw_room(struct frd_snap *s) {
        struct frd_job *j = s->job;
        if (j->raw_len + FRD_PIPE_CHUNK <= j->raw_cap)
                return 0;
        /* First guess: what the agent said its ring holds. */
        size_t cap = j->raw_cap ? j->raw_cap * 2 : 4 * FRD_PIPE_CHUNK;
        if (!j->raw_cap && s->expect > cap)
                cap = s->expect;
        return frd_raw_reserve(j, cap);
}

/* The pipe is at its end: done when the agent confirmed, or went away. */
static void snap_pipe_end(struct frd_snap *s) {
        event_del(s->rev);
        if (s->state == FRD_SNAP_CONFIRMED || !s->agent)
                snap_finish_reading(s, NULL);
        else
                s->state = FRD_SNAP_DRAINED; /* SnapshotDone follows the pipe's end at once */
}

static void on_pipe(evutil_socket_t fd, short what, void *arg) {
        (void)what;
        struct frd_snap *s = arg;
        struct frd_job *j = s->job;
        for (int rounds = 0; rounds < 4; rounds++) {
                if (snap_raw_room(s) < 0) {
                        snap_finish_reading(s, "out of memory");
                        return;
                }
                ssize_t n = read(fd, j->raw + j->raw_len, FRD_PIPE_CHUNK);
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
                if (n > 0 && j->raw_len == 0)
                        s->first_ms = frd_ms_since(&s->t0);
                if (n == 0) {
                        snap_pipe_end(s);
                        return;
                }
                /* Compress as it comes: at most 1 MiB per step keeps the loop
                 * responsive for other agents. */
                struct timespec c0;
                clock_gettime(CLOCK_MONOTONIC, &c0);
                int r = fr_lz4_out_write(s->lz, j->raw + j->raw_len, (size_t)n);
                s->lz4_ms += frd_ms_since(&c0);
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
        struct frd_snap *s = arg;
        char msg[128];
        snprintf(msg, sizeof msg, "no complete snapshot within %u ms (snapshot_timeout)",
                 D.cfg.snapshot_timeout_ms);
        snap_finish_reading(s, msg);
}

static bool snap_add_waiter(struct frd_snap *s, struct frd_ctl_req *q) {
        if (!q)
                return true;
        struct frd_ctl_req **w = realloc(s->waiters, (s->nwaiters + 1) * sizeof *w);
        if (!w)
                return false;
        s->waiters = w;
        s->waiters[s->nwaiters++] = q;
        q->pending++;
        return true;
}

/* The pipe whose write end goes to the agent, read by on_pipe, and the
 * snapshot_timeout timer. Returns 0 or -errno with *ret_wfd the write end. */
static int snap_open_pipe(struct frd_snap *s, int *ret_wfd, char *msg, size_t msglen) {
        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) < 0) {
                int e = errno;
                snprintf(msg, msglen, "pipe: %s", strerror(e));
                return -e;
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
                snprintf(msg, msglen, "out of memory");
                return -ENOMEM;
        }
        *ret_wfd = pfd[1];
        return 0;
}

static void send_request(struct frd_conn *c, struct frd_snap *s, const char *reason, int wfd) {
        char rs[FR_WIRE_MAX_REASON + 1];
        snprintf(rs, sizeof rs, "%s", reason);
        Flightrec__Wire__SnapshotRequest m = FLIGHTREC__WIRE__SNAPSHOT_REQUEST__INIT;
        m.id = s->id;
        m.reason = rs;
        m.trigger_id = s->trigger_id;
        m.from_ring = s->from_ring;
        m.hold_ms = D.cfg.snapshot_timeout_ms < 600000 ? D.cfg.snapshot_timeout_ms : 600000;
        fr_frame f = FLIGHTREC__WIRE__FRAME__INIT;
        f.msg_case = FLIGHTREC__WIRE__FRAME__MSG_SNAPSHOT_REQUEST;
        f.snapshot_request = &m;
        frd_conn_send(c, &f, wfd); /* the queue owns the write end now */
}

/* The ring path's timer: the agent must answer within snapshot_timeout. */
static int snap_arm_timer(struct frd_snap *s) {
        s->timer = evtimer_new(D.base, on_snap_timeout, s);
        struct timeval tv = {D.cfg.snapshot_timeout_ms / 1000,
                             (D.cfg.snapshot_timeout_ms % 1000) * 1000};
        return s->timer && evtimer_add(s->timer, &tv) == 0 ? 0 : -ENOMEM;
}

int frd_snapshot_agent(struct frd_conn *c, const char *reason, struct frd_ctl_req *q,
                       uint64_t trigger_id) {
        if (c->reading) {
                snap_add_waiter(c->reading, q);
                return 0;
        }
        struct frd_snap *s = snap_new((pid_t)c->pid, c->comm);
        if (!s)
                return -ENOMEM;
        struct frd_job *j = s->job;
        char msg[512] = "";
        int wfd = -1;
        s->state = FRD_SNAP_READING;
        s->agent = c;
        s->trigger_id = trigger_id;
        s->from_ring = D.cfg.ring_snapshots && c->ring_snapshots && c->ring_fd >= 0;
        snprintf(s->reason, sizeof s->reason, "%s", reason);
        if (c->stat_bytes && c->stat_bytes < D.cfg.max_trace_bytes)
                s->expect = (size_t)c->stat_bytes + c->stat_bytes / 8 + 4 * FRD_PIPE_CHUNK;
        snap_add_waiter(s, q);
        int r = frd_output_create(D.cfg.output_dir, j);
        if (r < 0) {
                snprintf(msg, sizeof msg, "cannot create a file in %s: %s", D.cfg.output_dir,
                         strerror(-r));
                goto fail;
        }
        if (s->from_ring) {
                s->state = FRD_SNAP_REQUESTED;
                if (snap_arm_timer(s) < 0) {
                        snprintf(msg, sizeof msg, "out of memory");
                        goto fail;
                }
        } else {
                r = fr_lz4_out_open(j->trace_fd, &s->lz);
                if (r < 0) {
                        snprintf(msg, sizeof msg, "lz4: %s", strerror(-r));
                        goto fail;
                }
                if (snap_open_pipe(s, &wfd, msg, sizeof msg) < 0)
                        goto fail;
        }
        c->reading = s;
        send_request(c, s, reason, wfd);
        frd_log(FRD_INFO, "snapshot of %s[%u] started (%s%s)", c->comm, c->pid, reason,
                s->from_ring ? ", from the ring" : "");
        return 0;
fail:
        if (s->lz)
                fr_lz4_out_close(s->lz, 1);
        s->lz = NULL;
        frd_output_discard(j);
        frd_log(FRD_ERR, "snapshot of %s[%u] failed: %s", c->comm, c->pid, msg);
        snap_complete(s, "", "", msg);
        return -EIO;
}

/* The agent holds its ring at d->index_gen: a worker reads it. */
static void snap_take_ring(struct frd_snap *s, struct frd_conn *c,
                           const Flightrec__Wire__SnapshotDone *d) {
        struct frd_job *j = s->job;
        struct fr_buf hdr = {0};
        s->answer_ms = frd_ms_since(&s->t0);
        if (s->timer)
                event_del(s->timer);
        j->ring_fd = fcntl(c->ring_fd, F_DUPFD_CLOEXEC, 0);
        fr_buf_put_header(&hdr, (uint64_t)c->pid, c->comm, c->exe, s->reason, 0);
        int r = j->ring_fd < 0 ? -errno : hdr.failed ? -ENOMEM : frd_raw_reserve(j, hdr.len);
        if (r < 0) {
                fr_buf_free(&hdr);
                if (j->ring_fd >= 0)
                        close(j->ring_fd);
                j->ring_fd = -1;
                char msg[128];
                snprintf(msg, sizeof msg, "cannot read the ring: %s", strerror(-r));
                snap_release(s);
                snap_finish_reading(s, msg);
                return;
        }
        memcpy(j->raw, hdr.data, hdr.len);
        j->raw_len = hdr.len;
        fr_buf_free(&hdr);
        j->live_ring = true;
        j->index_gen = d->index_gen;
        j->snap_id = s->id;
        j->max_trace_bytes = D.cfg.max_trace_bytes;
        s->state = FRD_SNAP_COPYING;
        frd_output_submit(j);
}

static void send_release(struct frd_conn *c, uint64_t id) {
        Flightrec__Wire__SnapshotRelease m = FLIGHTREC__WIRE__SNAPSHOT_RELEASE__INIT;
        m.id = id;
        fr_frame f = FLIGHTREC__WIRE__FRAME__INIT;
        f.msg_case = FLIGHTREC__WIRE__FRAME__MSG_SNAPSHOT_RELEASE;
        f.snapshot_release = &m;
        frd_conn_send(c, &f, -1);
}

/* SnapshotRelease: the agent may unpin; the agent is free for the next one. */
static void snap_release(struct frd_snap *s) {
        struct frd_conn *a = s->agent;
        if (s->state == FRD_SNAP_COPYING)
                s->state = FRD_SNAP_CONVERTING;
        if (!a)
                return;
        send_release(a, s->id);
        if (a->reading == s)
                a->reading = NULL;
}

void frd_snapshot_copied(uint64_t snap_id) {
        for (struct frd_snap *s = D.snaps; s; s = s->next)
                if (s->id == snap_id && s->state == FRD_SNAP_COPYING) {
                        struct frd_conn *a = s->agent;
                        snap_release(s);
                        start_queued(a);
                        return;
                }
}

/* A process died without a clean stop: write what its ring holds, marked as
 * post-mortem. The worker reads the ring (untrusted) and writes both files. */
void frd_snapshot_postmortem(struct frd_pm_dead *d) {
        struct frd_snap *s = snap_new(d->pid, d->comm);
        struct fr_buf hdr = {0};
        char msg[512] = "";
        if (!s) {
                close(d->ring_fd);
                frd_log(FRD_ERR, "post-mortem of %s[%d]: out of memory", d->comm, (int)d->pid);
                return;
        }
        struct frd_job *j = s->job;
        s->state = FRD_SNAP_CONVERTING;
        j->ring_fd = d->ring_fd;
        j->postmortem = true;
        snprintf(j->exe, sizeof j->exe, "%s", d->exe);
        j->max_trace_bytes = D.cfg.max_trace_bytes;
        fr_buf_put_header(&hdr, (uint64_t)d->pid, d->comm, d->exe,
                          "post-mortem: the process died without a clean stop",
                          FR_HEADER_POSTMORTEM);
        int r = hdr.failed ? -ENOMEM : frd_raw_reserve(j, hdr.len);
        if (r == 0) {
                memcpy(j->raw, hdr.data, hdr.len);
                j->raw_len = hdr.len;
                r = frd_output_create(D.cfg.output_dir, j);
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
                frd_raw_free(j);
                frd_output_discard(j);
                frd_log(FRD_ERR, "post-mortem of %s[%d] failed: %s", d->comm, (int)d->pid, msg);
                snap_complete(s, "", "", msg);
                return;
        }
        frd_log(FRD_NOTICE, "agent %s[%d] died without a clean stop: writing a post-mortem snapshot",
                d->comm, (int)d->pid);
        frd_output_submit(j);
}

void frd_snapshot_done(struct frd_conn *c, const Flightrec__Wire__SnapshotDone *d) {
        struct frd_snap *s = c->reading;
        if (!s || s->id != d->id) {
                frd_log(FRD_DEBUG, "agent %s[%u]: snapshot_done for %llu, not in progress", c->comm,
                        c->pid, (unsigned long long)d->id);
                if (d->index_gen) /* a ring held for a snapshot given up: let it go */
                        send_release(c, d->id);
                return;
        }
        s->agent_cpu_ns = d->agent_cpu_ns;
        s->advance_ns = d->advance_ns;
        if (s->from_ring && s->state != FRD_SNAP_REQUESTED) {
                frd_log(FRD_DEBUG, "agent %s[%u]: a second snapshot_done for %llu", c->comm,
                        c->pid, (unsigned long long)d->id);
                return;
        }
        if (d->error) { /* nothing more is coming */
                char msg[128];
                snprintf(msg, sizeof msg, "the agent could not write the snapshot: %s",
                         strerror(-d->error));
                snap_finish_reading(s, msg);
                return;
        }
        if (s->from_ring) {
                snap_take_ring(s, c, d);
                return;
        }
        bool drained = s->state == FRD_SNAP_DRAINED;
        s->state = FRD_SNAP_CONFIRMED;
        if (drained)
                snap_finish_reading(s, NULL);
}

void frd_snapshot_detach(struct frd_conn *c) {
        for (struct frd_snap *s = D.snaps, *next; s; s = next) {
                next = s->next; /* only s itself may be freed */
                if (s->agent != c)
                        continue;
                s->agent = NULL;
                if (s->state == FRD_SNAP_DRAINED)
                        snap_finish_reading(s, NULL); /* a partial tail */
                else if (s->state == FRD_SNAP_REQUESTED)
                        snap_finish_reading(s, "the agent went away before it held its ring");
        }
}

void frd_snapshot_abort_all(void) {
        while (D.snaps) {
                struct frd_snap *s = D.snaps;
                if (s->job) {
                        if (s->lz)
                                fr_lz4_out_close(s->lz, 1);
                        frd_output_discard(s->job);
                        frd_raw_free(s->job);
                        free(s->job);
                }
                s->job = NULL;
                snap_free(s);
        }
}
