/* Snapshot output: file names, the worker threads that read a ring (live or
 * post-mortem), compress it in parallel LZ4 frames, convert the trace to
 * pprof and rename both files into place, and retention of the directory. */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "frd.h"
#include "fr_io.h"
#include "crash_report.h"
#include "pm_ring.h"
#include "pprof.h"
#include "symbolize.h"
#include "trace_encode.h"
#include "timeline.h"
#include "trace_out.h"

static struct {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        struct frd_job *queue, **queue_tail; /* to the workers */
        struct frd_job *done;                /* back to the loop */
        unsigned busy;                      /* submitted, not yet handed back */
        bool stop;
        atomic_bool timeline_cancel;        /* set at SIGTERM: timeline exports stop */
        unsigned nthreads;
        pthread_t threads[64];
        int efd;
        struct event *ev;
        void (*done_cb)(struct frd_job *);
        void (*copied_cb)(uint64_t);
        struct copied *copied;              /* ring jobs whose extents are copied */
        struct lz_task *lz, **lz_tail;      /* parts to compress, for any worker */
        uint64_t inflight, max_inflight;    /* ring bytes held by jobs */
        pthread_cond_t room;                /* inflight went down */
} out = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER,
         .room = PTHREAD_COND_INITIALIZER, .efd = -1, .max_inflight = 256u << 20};

struct copied {
        struct copied *next;
        uint64_t snap_id;
};

/* One part of a trace compressed as an independent LZ4 frame. The job's own
 * worker takes the parts no other worker took (so a job never waits for an
 * idle worker), then waits for the rest. */
#define LZ_PART (4u << 20)
struct lz_group {
        unsigned left;                      /* parts not yet compressed (out.lock) */
        pthread_cond_t done;
};
struct lz_task {
        struct lz_task *next;
        struct lz_group *grp;
        const uint8_t *src;
        size_t len;
        uint8_t *dst;
        size_t dst_len;
        int err;
        double ms;
};

static void wake_loop(void) {
        uint64_t one = 1;
        (void)!write(out.efd, &one, sizeof one);
}

void frd_output_on_copied(void (*copied)(uint64_t)) { out.copied_cb = copied; }

void frd_output_set_inflight(uint64_t max_bytes) {
        pthread_mutex_lock(&out.lock);
        out.max_inflight = max_bytes;
        pthread_cond_broadcast(&out.room);
        pthread_mutex_unlock(&out.lock);
}

/* Wait until n more ring bytes fit under max_inflight (alone, always). */
static void inflight_take(struct frd_job *j, uint64_t n) {
        pthread_mutex_lock(&out.lock);
        while (out.inflight && out.inflight + n > out.max_inflight && !out.stop)
                pthread_cond_wait(&out.room, &out.lock);
        out.inflight += n;
        j->inflight = n;
        pthread_mutex_unlock(&out.lock);
}

static void inflight_give(struct frd_job *j) {
        if (!j->inflight)
                return;
        pthread_mutex_lock(&out.lock);
        out.inflight -= j->inflight;
        j->inflight = 0;
        pthread_cond_broadcast(&out.room);
        pthread_mutex_unlock(&out.lock);
}

/* Tell the loop that a live ring's extents are copied: it releases the
 * agent's pins at once, not after the conversion. */
static void post_copied(uint64_t snap_id) {
        struct copied *c = malloc(sizeof *c);
        if (!c)
                return; /* the release then comes with the job's end */
        c->snap_id = snap_id;
        pthread_mutex_lock(&out.lock);
        c->next = out.copied;
        out.copied = c;
        pthread_mutex_unlock(&out.lock);
        wake_loop();
}

int frd_raw_reserve(struct frd_job *j, size_t cap) {
        /* Huge pages for a trace of megabytes; a small one (a header, an idle
         * agent's ring) gets pages: with a huge page each, the headers of a
         * snapshot of 256 agents, all made at once, held 404 MB. */
        const size_t huge = 2u << 20, small = 64u << 10;
        const size_t unit = cap >= huge ? huge : small;
        cap = (cap + unit - 1) & ~(unit - 1);
        if (cap <= j->raw_cap)
                return 0;
        void *p = j->raw ? mremap(j->raw, j->raw_cap, cap, MREMAP_MAYMOVE)
                         : mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                return -ENOMEM;
        if (unit == huge)
                madvise(p, cap, MADV_HUGEPAGE); /* best effort */
        j->raw = p;
        j->raw_cap = cap;
        return 0;
}

void frd_raw_free(struct frd_job *j) {
        if (j->raw)
                munmap(j->raw, j->raw_cap);
        j->raw = NULL;
        j->raw_cap = j->raw_len = 0;
}

static double mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The profile's temporary, written and handed to its group; fr_file_commit
 * makes it durable. Returns the descriptor or -errno (nothing left). */
static int write_tmp(const char *path, const uint8_t *p, size_t n, gid_t gid) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (fd < 0)
                return -errno;
        int r = fr_write_all(fd, p, n);
        if (r == 0 && gid != (gid_t)-1 && fchown(fd, (uid_t)-1, gid) < 0)
                r = -errno;
        if (r < 0) {
                close(fd);
                unlink(path);
                return r;
        }
        return fd;
}

/* replace_header - the post-mortem header, now with the reason. */
static int replace_header(struct frd_job *j, size_t old_len, const char *reason) {
        struct fr_buf h = {0};
        fr_buf_put_header(&h, (uint64_t)j->pid, j->comm, j->exe, reason, FR_HEADER_POSTMORTEM);
        int r = h.failed ? -ENOMEM : frd_raw_reserve(j, j->raw_len - old_len + h.len);
        if (r == 0) {
                memmove(j->raw + h.len, j->raw + old_len, j->raw_len - old_len);
                memcpy(j->raw, h.data, h.len);
                j->raw_len = j->raw_len - old_len + h.len;
        }
        fr_buf_free(&h);
        return r;
}

/* salvage - the generation the process was recording when it died, and how
 * it died, into raw (after the complete generations) and the header. */
static void salvage(struct frd_job *j, const struct fr_pm_plan *plan, size_t hdr_len,
                    struct fr_symbolizer *sym) {
        struct fr_buf part = {0};
        long n = fr_pm_salvage(j->ring_fd, plan, j->raw, j->raw_len, &part, j->pm_salvage,
                               sizeof j->pm_salvage);
        if (n > 0 && frd_raw_reserve(j, j->raw_len + (size_t)n) == 0) {
                memcpy(j->raw + j->raw_len, part.data, (size_t)n);
                j->raw_len += (size_t)n;
        }
        fr_buf_free(&part);
        char reason[sizeof j->pm_reason];
        int r = fr_crash_reason(j->raw, j->raw_len, j->symbolize ? sym : NULL, reason, sizeof reason);
        j->crashed = r == 1;
        if (r != 1 && plan->has_crash) {
                /* A crash record, but no generation to put it in: say it
                 * anyway, unsymbolized. */
                char b1[32], b2[32];
                snprintf(reason, sizeof reason, "crash: %s (%s) at 0x%llx in thread %u \"%s\"",
                         fr_signal_name((uint64_t)plan->crash.signo, b1, sizeof b1),
                         fr_sicode_name((uint64_t)plan->crash.signo, plan->crash.code, b2, sizeof b2),
                         (unsigned long long)plan->crash.addr, plan->crash.tid, plan->crash.thread_name);
        } else if (r != 1) {
                snprintf(reason, sizeof reason, "%s", FR_NO_CRASH_REASON);
        }
        snprintf(j->pm_reason, sizeof j->pm_reason, "%s", reason);
        if (replace_header(j, hdr_len, reason) < 0)
                snprintf(j->pm_salvage, sizeof j->pm_salvage, "out of memory for the header");
}


/* Append the ring's extents to the header in raw: a dead agent's ring, or a
 * live one whose agent holds index_gen (the index must not move while we
 * read, else the agent has released and may reuse the blocks). Every extent
 * is untrusted and checked against the file (fr_pm_plan). A post-mortem
 * also gets the generation in progress and how the process ended (salvage). */
static int copy_ring(struct frd_job *j, struct fr_symbolizer *sym) {
        double t0 = mono_ms();
        struct fr_pm_plan plan;
        char err[256];
        uint64_t after = 0;
        size_t hdr_len = j->raw_len;
        int r = fr_pm_plan(j->ring_fd, j->max_trace_bytes, &plan, err, sizeof err);
        if (r == 0 && j->live_ring && plan.publishes != j->index_gen) {
                snprintf(err, sizeof err, "the ring's index moved before it was read (%llu, the "
                                          "agent answered %llu)",
                         (unsigned long long)plan.publishes, (unsigned long long)j->index_gen);
                r = -ESTALE;
        }
        /* A post-mortem may hold only the generation in progress (salvaged). */
        if (r == 0 && plan.n == 0 && (j->live_ring || !plan.live_gen)) {
                snprintf(err, sizeof err, "the ring holds no complete generation yet");
                r = -ENODATA;
        }
        if (r == 0)
                inflight_take(j, plan.total);
        if (r == 0 && frd_raw_reserve(j, j->raw_len + plan.total) < 0) {
                snprintf(err, sizeof err, "out of memory for %llu bytes",
                         (unsigned long long)plan.total);
                r = -ENOMEM;
        }
        if (r == 0)
                r = fr_pm_copy(j->ring_fd, &plan, j->raw + j->raw_len, err, sizeof err);
        if (r == 0 && j->live_ring && (fr_pm_publishes(j->ring_fd, &after) < 0 || after != j->index_gen)) {
                snprintf(err, sizeof err, "the agent released its ring while it was read (hold "
                                          "time too short?)");
                r = -ESTALE;
        }
        if (r == 0) {
                j->raw_len += plan.total;
                if (j->postmortem)
                        salvage(j, &plan, hdr_len, sym);
        }
        fr_pm_plan_free(&plan);
        close(j->ring_fd);
        j->ring_fd = -1;
        if (j->live_ring)
                post_copied(j->snap_id);
        j->copy_ms = mono_ms() - t0;
        if (r < 0) {
                snprintf(j->errmsg, sizeof j->errmsg, "%s ring of pid %d: %s",
                         j->live_ring ? "live" : "post-mortem", (int)j->pid, err);
                return r;
        }
        j->trace_bytes = j->raw_len;
        return 0;
}

static void lz_run(struct lz_task *t) {
        double t0 = mono_ms();
        t->err = fr_lz4_frame(t->src, t->len, &t->dst, &t->dst_len);
        t->ms = mono_ms() - t0;
        pthread_mutex_lock(&out.lock);
        if (--t->grp->left == 0)
                pthread_cond_broadcast(&t->grp->done);
        pthread_mutex_unlock(&out.lock);
}

/* Compress raw into the trace file as independent frames of LZ_PART bytes,
 * the parts shared with idle workers; `meanwhile` (the conversion) runs on
 * this worker in between. Returns 0 or -errno (errmsg set). */
static int compress_parallel(struct frd_job *j, void (*meanwhile)(void *), void *arg) {
        size_t nparts = (j->raw_len + LZ_PART - 1) / LZ_PART;
        struct lz_task *tasks = calloc(nparts ? nparts : 1, sizeof *tasks);
        struct lz_group grp = {.left = (unsigned)nparts};
        if (!tasks) {
                snprintf(j->errmsg, sizeof j->errmsg, "out of memory");
                return -ENOMEM;
        }
        pthread_cond_init(&grp.done, NULL);
        pthread_mutex_lock(&out.lock);
        for (size_t i = 0; i < nparts; i++) {
                struct lz_task *t = &tasks[i];
                t->grp = &grp;
                t->src = j->raw + i * LZ_PART;
                t->len = i + 1 < nparts ? LZ_PART : j->raw_len - i * LZ_PART;
                *out.lz_tail = t;
                out.lz_tail = &t->next;
        }
        pthread_cond_broadcast(&out.cond);
        pthread_mutex_unlock(&out.lock);
        if (meanwhile)
                meanwhile(arg);
        /* Take what is left of ours, then wait for the parts others took. */
        pthread_mutex_lock(&out.lock);
        for (;;) {
                struct lz_task **p = &out.lz;
                while (*p && (*p)->grp != &grp)
                        p = &(*p)->next;
                if (!*p)
                        break;
                struct lz_task *t = *p;
                *p = t->next;
                if (!*p)
                        out.lz_tail = p;
                pthread_mutex_unlock(&out.lock);
                lz_run(t);
                pthread_mutex_lock(&out.lock);
        }
        while (grp.left)
                pthread_cond_wait(&grp.done, &out.lock);
        pthread_mutex_unlock(&out.lock);
        pthread_cond_destroy(&grp.done);
        int r = 0;
        j->lz4_ms = 0;
        for (size_t i = 0; i < nparts; i++) {
                j->lz4_ms += tasks[i].ms; /* summed over the parts: the work, not the wait */
                if (r == 0)
                        r = tasks[i].err ? tasks[i].err
                                         : fr_write_all(j->trace_fd, tasks[i].dst, tasks[i].dst_len);
                free(tasks[i].dst);
        }
        free(tasks);
        if (r < 0)
                snprintf(j->errmsg, sizeof j->errmsg, "writing %s: %s", j->trace_tmp, strerror(-r));
        return r;
}

struct convert {
        struct frd_job *j;
        struct fr_symbolizer *sym;
        uint8_t *gz, *off_gz; /* the CPU profile; the off-CPU one (NULL: no waits) */
        size_t gzlen, off_gzlen;
        int r;
};

static void convert(void *arg) {
        struct convert *cv = arg;
        struct frd_job *j = cv->j;
        double t0 = mono_ms();
        struct fr_pprof_options opts = {
                .flags = (j->partial ? FR_PPROF_ALLOW_PARTIAL_TAIL : 0) |
                         (j->symbolize ? 0 : FR_PPROF_NO_SYMBOLIZE),
                .symbolizer = cv->sym,
        };
        struct fr_pprof_stats st = {0};
        char err[400];
        cv->r = fr_pprof_from_trace(j->raw, j->raw_len, &opts, &cv->gz, &cv->gzlen, &st, err,
                                    sizeof err);
        if (cv->r < 0)
                snprintf(j->errmsg, sizeof j->errmsg, "trace from pid %d is not valid: %s",
                         (int)j->pid, err);
        j->nsamples = st.nsamples;
        /* The off-CPU profile, when the trace has waits (same symbolizer). */
        if (cv->r == 0) {
                opts.flags |= FR_PPROF_OFFCPU;
                st = (struct fr_pprof_stats){0};
                cv->r = fr_pprof_from_trace(j->raw, j->raw_len, &opts, &cv->off_gz, &cv->off_gzlen,
                                            &st, err, sizeof err);
                if (cv->r < 0)
                        snprintf(j->errmsg, sizeof j->errmsg, "off-CPU profile of pid %d: %s",
                                 (int)j->pid, err);
                j->nwaits = st.nsamples;
                if (cv->r < 0 || !st.nsamples) {
                        free(cv->off_gz);
                        cv->off_gz = NULL;
                }
        }
        j->pprof_ms = mono_ms() - t0;
}

/* write_timeline - <stem>.pftrace from the trace (the reader already
 * accepted it for the pprof), after the trace and the profile are in place.
 * A failure here (memory, disk, or the daemon stopping: the export is
 * cancelled, frd_output_cancel_timelines) costs the timeline only; the reason
 * is in j->timeline_err, logged by the loop. */
static void write_timeline(struct frd_job *j, struct fr_symbolizer *sym) {
        if (!j->timeline || !j->timeline_tmp[0])
                return;
        double t0 = mono_ms();
        struct fr_timeline_options opts = {
                .flags = (j->partial ? FR_TIMELINE_ALLOW_PARTIAL_TAIL : 0) |
                         (j->symbolize ? 0 : FR_TIMELINE_NO_SYMBOLIZE),
                .symbolizer = sym,
                .cancel = &out.timeline_cancel,
        };
        uint8_t *buf = NULL;
        size_t len = 0;
        char err[200];
        int r = fr_timeline_from_trace(j->raw, j->raw_len, &opts, &buf, &len, NULL, err, sizeof err);
        if (r < 0) {
                snprintf(j->timeline_err, sizeof j->timeline_err, "%s",
                         r == -ECANCELED ? "cancelled, the daemon is stopping" : err);
                return;
        }
        int fd = write_tmp(j->timeline_tmp, buf, len, j->gid);
        free(buf);
        if (fd < 0) {
                snprintf(j->timeline_err, sizeof j->timeline_err, "writing %s: %s", j->timeline_tmp,
                         strerror(-fd));
                return;
        }
        const char *step = "";
        r = fr_file_commit(fd, j->timeline_tmp, j->timeline_path, 0, &step);
        if (r < 0) {
                snprintf(j->timeline_err, sizeof j->timeline_err, "%s: %s: %s", j->timeline_path,
                         step, strerror(-r));
                return;
        }
        j->timeline_bytes = len;
        j->timeline_ms = mono_ms() - t0;
}

void frd_output_cancel_timelines(void) {
        atomic_store(&out.timeline_cancel, true);
}

static void run_job(struct frd_job *j, struct fr_symbolizer *sym) {
        double t0 = mono_ms();
        int r = 0;
        /* A ring (live or post-mortem): copy it, then compress it here while
         * converting; a pipe's trace was compressed on the loop already. */
        bool from_ring = j->ring_fd >= 0;
        if (from_ring && (r = copy_ring(j, sym)) < 0)
                goto fail;
        if (j->gid != (gid_t)-1 && fchown(j->trace_fd, (uid_t)-1, j->gid) < 0) {
                r = -errno;
                snprintf(j->errmsg, sizeof j->errmsg, "writing %s: %s", j->trace_tmp, strerror(-r));
                goto fail;
        }
        struct convert cv = {.j = j, .sym = sym};
        if (from_ring) {
                r = compress_parallel(j, convert, &cv);
                if (r < 0) {
                        free(cv.gz);
                        free(cv.off_gz);
                        goto fail;
                }
        } else {
                convert(&cv);
        }
        r = cv.r;
        if (r < 0) {
                free(cv.gz);
                free(cv.off_gz);
                goto fail;
        }
        uint8_t *gz = cv.gz;
        size_t gzlen = cv.gzlen;
        int pfd = write_tmp(j->pprof_tmp, gz, gzlen, j->gid);
        free(gz);
        if (pfd < 0) {
                free(cv.off_gz);
                r = pfd;
                snprintf(j->errmsg, sizeof j->errmsg, "writing %s: %s", j->pprof_tmp, strerror(-r));
                goto fail;
        }
        j->pprof_bytes = gzlen;
        int cfd = -1; /* <stem>.crash.txt, with a crash record */
        if (j->crashed) {
                char err[256];
                struct fr_buf rep = {0};
                r = fr_crash_report(j->raw, j->raw_len, j->symbolize ? sym : NULL, &rep, err, sizeof err);
                if (r == 0)
                        r = cfd = write_tmp(j->crash_tmp, rep.data, rep.len, j->gid);
                fr_buf_free(&rep);
                if (r < 0) {
                        close(pfd);
                        free(cv.off_gz);
                        snprintf(j->errmsg, sizeof j->errmsg, "writing %s: %s", j->crash_tmp,
                                 r == -ENOENT ? err : strerror(-r));
                        goto fail;
                }
        }
        j->offcpu_bytes = 0;
        int ofd = -1;
        if (cv.off_gz) {
                ofd = write_tmp(j->offcpu_tmp, cv.off_gz, cv.off_gzlen, j->gid);
                free(cv.off_gz);
                if (ofd < 0) {
                        close(pfd);
                        if (cfd >= 0)
                                close(cfd);
                        r = ofd;
                        snprintf(j->errmsg, sizeof j->errmsg, "writing %s: %s", j->offcpu_tmp,
                                 strerror(-r));
                        goto fail;
                }
                j->offcpu_bytes = cv.off_gzlen;
        }
        /* The trace first: a pprof in place always has its trace beside it. */
        const char *step = "";
        int tfd = j->trace_fd;
        j->trace_fd = -1;
        /* One directory sync, after the last rename, covers them all. */
        r = fr_file_commit(tfd, j->trace_tmp, j->trace_path, FR_COMMIT_NO_DIRSYNC, &step);
        if (r < 0) {
                close(pfd);
                if (cfd >= 0)
                        close(cfd);
                if (ofd >= 0)
                        close(ofd);
                snprintf(j->errmsg, sizeof j->errmsg, "%s: %s: %s", j->trace_path, step,
                         strerror(-r));
                goto fail;
        }
        r = fr_file_commit(pfd, j->pprof_tmp, j->pprof_path,
                           ofd >= 0 || cfd >= 0 ? FR_COMMIT_NO_DIRSYNC : 0, &step);
        if (r < 0) {
                if (cfd >= 0)
                        close(cfd);
                if (ofd >= 0)
                        close(ofd);
                snprintf(j->errmsg, sizeof j->errmsg, "%s: %s: %s", j->pprof_path, step,
                         strerror(-r));
                unlink(j->trace_path);
                goto fail;
        }
        if (ofd >= 0 && (r = fr_file_commit(ofd, j->offcpu_tmp, j->offcpu_path,
                                            cfd >= 0 ? FR_COMMIT_NO_DIRSYNC : 0, &step)) < 0) {
                if (cfd >= 0)
                        close(cfd);
                snprintf(j->errmsg, sizeof j->errmsg, "%s: %s: %s", j->offcpu_path, step,
                         strerror(-r));
                unlink(j->pprof_path);
                unlink(j->trace_path);
                goto fail;
        }
        if (cfd >= 0 && (r = fr_file_commit(cfd, j->crash_tmp, j->crash_path, 0, &step)) < 0) {
                snprintf(j->errmsg, sizeof j->errmsg, "%s: %s: %s", j->crash_path, step,
                         strerror(-r));
                unlink(j->trace_path);
                unlink(j->pprof_path);
                if (ofd >= 0)
                        unlink(j->offcpu_path);
                goto fail;
        }
        /* Then the timeline: the trace and the profile do not wait for it. */
        write_timeline(j, sym);
        j->convert_ms = mono_ms() - t0;
        j->error = 0;
        return;
fail:
        j->error = r;
        frd_output_discard(j);
}

/* The symbolizers, shared by the workers and kept across snapshots: what
 * one learned about an object (by path, build id and load bias) and each
 * address it resolved serves the next snapshot of the same process. The
 * most recently used is taken first. Bounded: one is dropped when it holds
 * FR_SYM_MAX_CACHED results, and all after SYM_IDLE_S without a snapshot
 * (so that an object without a build id that was replaced on disk is read
 * afresh). */
#define SYM_IDLE_S 120
static struct {
        struct fr_symbolizer *idle[64];
        unsigned n;
        time_t last_use;
} syms;

static struct fr_symbolizer *sym_take(void) {
        struct fr_symbolizer *s = NULL;
        pthread_mutex_lock(&out.lock);
        if (syms.n)
                s = syms.idle[--syms.n];
        pthread_mutex_unlock(&out.lock);
        if (!s && fr_symbolizer_new(NULL, &s) < 0)
                s = NULL;
        return s;
}

static void sym_give(struct fr_symbolizer *s) {
        if (!s)
                return;
        if (fr_symbolizer_cached(s) >= FR_SYM_MAX_CACHED) {
                fr_symbolizer_free(s); /* full: start afresh */
                return;
        }
        pthread_mutex_lock(&out.lock);
        if (syms.n < sizeof syms.idle / sizeof *syms.idle) {
                syms.idle[syms.n++] = s;
                s = NULL;
        }
        syms.last_use = time(NULL);
        pthread_mutex_unlock(&out.lock);
        fr_symbolizer_free(s);
}

/* Idle for SYM_IDLE_S (out.lock held): drop every symbolizer. */
static void sym_drop_idle_locked(void) {
        if (!syms.n || time(NULL) - syms.last_use < SYM_IDLE_S)
                return;
        struct fr_symbolizer *v[64];
        unsigned n = syms.n;
        memcpy(v, syms.idle, n * sizeof *v);
        syms.n = 0;
        pthread_mutex_unlock(&out.lock);
        for (unsigned i = 0; i < n; i++)
                fr_symbolizer_free(v[i]);
        pthread_mutex_lock(&out.lock);
}

static void *worker(void *arg) {
        (void)arg;
        pthread_mutex_lock(&out.lock);
        for (;;) {
                while (out.lz) { /* parts of a job in progress come first */
                        struct lz_task *t = out.lz;
                        out.lz = t->next;
                        if (!out.lz)
                                out.lz_tail = &out.lz;
                        pthread_mutex_unlock(&out.lock);
                        lz_run(t);
                        pthread_mutex_lock(&out.lock);
                }
                while (!out.queue && !out.lz && !out.stop) {
                        struct timespec until;
                        clock_gettime(CLOCK_REALTIME, &until);
                        until.tv_sec += SYM_IDLE_S;
                        if (pthread_cond_timedwait(&out.cond, &out.lock, &until) == ETIMEDOUT)
                                sym_drop_idle_locked();
                }
                if (out.lz)
                        continue;
                if (!out.queue)
                        break; /* stop, queue drained */
                struct frd_job *j = out.queue;
                out.queue = j->next;
                if (!out.queue)
                        out.queue_tail = &out.queue;
                pthread_mutex_unlock(&out.lock);
                struct fr_symbolizer *sym = j->symbolize ? sym_take() : NULL;
                run_job(j, sym);
                sym_give(sym);
                frd_raw_free(j);
                inflight_give(j);
                pthread_mutex_lock(&out.lock);
                j->next = out.done;
                out.done = j;
                pthread_mutex_unlock(&out.lock);
                wake_loop();
                pthread_mutex_lock(&out.lock);
        }
        pthread_mutex_unlock(&out.lock);
        return NULL;
}

static void on_done(evutil_socket_t fd, short what, void *arg) {
        (void)what;
        (void)arg;
        uint64_t v;
        (void)!read(fd, &v, sizeof v);
        pthread_mutex_lock(&out.lock);
        struct frd_job *list = out.done;
        out.done = NULL;
        struct copied *cp = out.copied;
        out.copied = NULL;
        pthread_mutex_unlock(&out.lock);
        while (cp) {
                struct copied *n = cp->next;
                if (out.copied_cb)
                        out.copied_cb(cp->snap_id);
                free(cp);
                cp = n;
        }
        /* Oldest first. */
        struct frd_job *rev = NULL;
        while (list) {
                struct frd_job *n = list->next;
                list->next = rev;
                rev = list;
                list = n;
        }
        bool idle = false;
        while (rev) {
                struct frd_job *n = rev->next;
                pthread_mutex_lock(&out.lock);
                idle = --out.busy == 0;
                pthread_mutex_unlock(&out.lock);
                out.done_cb(rev);
                rev = n;
        }
        /* The last job of a burst (a snapshot of every agent): give back what
         * the conversions freed, which malloc keeps in each thread's arena
         * (256 agents: 58 MB kept after, against 7 MB before). */
        if (idle)
                malloc_trim(0);
}

int frd_output_start(struct event_base *base, unsigned workers, void (*done)(struct frd_job *)) {
        out.queue_tail = &out.queue;
        out.lz_tail = &out.lz;
        out.done_cb = done;
        out.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (out.efd < 0)
                return -errno;
        out.ev = event_new(base, out.efd, EV_READ | EV_PERSIST, on_done, NULL);
        if (!out.ev || event_add(out.ev, NULL) < 0)
                return -ENOMEM;
        if (workers > 64)
                workers = 64;
        for (unsigned i = 0; i < workers; i++) {
                int r = pthread_create(&out.threads[i], NULL, worker, NULL);
                if (r)
                        return -r;
                out.nthreads++;
        }
        return 0;
}

void frd_output_submit(struct frd_job *j) {
        pthread_mutex_lock(&out.lock);
        j->next = NULL;
        *out.queue_tail = j;
        out.queue_tail = &j->next;
        out.busy++;
        pthread_cond_signal(&out.cond);
        pthread_mutex_unlock(&out.lock);
}

unsigned frd_output_busy(void) {
        pthread_mutex_lock(&out.lock);
        unsigned n = out.busy;
        pthread_mutex_unlock(&out.lock);
        return n;
}

void frd_output_stop(void) {
        pthread_mutex_lock(&out.lock);
        out.stop = true;
        pthread_cond_broadcast(&out.cond);
        pthread_cond_broadcast(&out.room);
        pthread_mutex_unlock(&out.lock);
        for (unsigned i = 0; i < out.nthreads; i++)
                pthread_join(out.threads[i], NULL);
        out.nthreads = 0;
        while (syms.n)
                fr_symbolizer_free(syms.idle[--syms.n]);
        if (out.ev)
                event_free(out.ev);
        out.ev = NULL;
        if (out.efd >= 0)
                close(out.efd);
        out.efd = -1;
}

int frd_output_create(const char *dir, struct frd_job *j) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        char base[128];
        int r = fr_trace_stem(j->comm, j->pid,
                              (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec, base,
                              sizeof base);
        if (r < 0)
                return r;
        /* Two snapshots of one process in the same millisecond: -2, -3, ... */
        for (int k = 1; k < 1000; k++) {
                if (k == 1)
                        snprintf(j->stem, sizeof j->stem, "%s", base);
                else
                        snprintf(j->stem, sizeof j->stem, "%s-%d", base, k);
                snprintf(j->trace_path, sizeof j->trace_path, "%s/%s.trace.lz4", dir, j->stem);
                snprintf(j->trace_tmp, sizeof j->trace_tmp, "%s.tmp", j->trace_path);
                snprintf(j->pprof_path, sizeof j->pprof_path, "%s/%s.pb.gz", dir, j->stem);
                snprintf(j->pprof_tmp, sizeof j->pprof_tmp, "%s.tmp", j->pprof_path);
                snprintf(j->timeline_path, sizeof j->timeline_path, "%s/%s.pftrace", dir, j->stem);
                snprintf(j->timeline_tmp, sizeof j->timeline_tmp, "%s.tmp", j->timeline_path);
                snprintf(j->crash_path, sizeof j->crash_path, "%s/%s.crash.txt", dir, j->stem);
                snprintf(j->crash_tmp, sizeof j->crash_tmp, "%s.tmp", j->crash_path);
                snprintf(j->offcpu_path, sizeof j->offcpu_path, "%s/%s.offcpu.pb.gz", dir, j->stem);
                snprintf(j->offcpu_tmp, sizeof j->offcpu_tmp, "%s.tmp", j->offcpu_path);
                if (access(j->trace_path, F_OK) == 0 || access(j->pprof_path, F_OK) == 0 ||
                    access(j->pprof_tmp, F_OK) == 0 || access(j->timeline_path, F_OK) == 0 ||
                    access(j->timeline_tmp, F_OK) == 0 || access(j->crash_path, F_OK) == 0 ||
                    access(j->offcpu_path, F_OK) == 0 || access(j->offcpu_tmp, F_OK) == 0)
                        continue;
                j->trace_fd = open(j->trace_tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
                if (j->trace_fd >= 0)
                        return 0;
                if (errno != EEXIST)
                        return -errno;
        }
        return -EEXIST;
}

void frd_output_discard(struct frd_job *j) {
        if (j->trace_fd >= 0)
                close(j->trace_fd);
        j->trace_fd = -1;
        if (j->trace_tmp[0])
                unlink(j->trace_tmp);
        if (j->pprof_tmp[0])
                unlink(j->pprof_tmp);
        if (j->crash_tmp[0])
                unlink(j->crash_tmp);
        if (j->timeline_tmp[0])
                unlink(j->timeline_tmp);
        if (j->offcpu_tmp[0])
                unlink(j->offcpu_tmp);
}

static bool ends_with(const char *s, const char *suffix) {
        size_t n = strlen(s), k = strlen(suffix);
        return n >= k && strcmp(s + n - k, suffix) == 0;
}

void frd_output_clean_tmp(const char *dir) {
        DIR *d = opendir(dir);
        if (!d)
                return;
        struct dirent *e;
        while ((e = readdir(d)))
                if (ends_with(e->d_name, ".trace.lz4.tmp") || ends_with(e->d_name, ".pb.gz.tmp") ||
                    ends_with(e->d_name, ".crash.txt.tmp") || ends_with(e->d_name, ".pftrace.tmp")) {
                        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
                                frd_log(FRD_NOTICE, "removed %s/%s left by an interrupted snapshot",
                                       dir, e->d_name);
                }
        closedir(d);
}

/* Retention works on snapshots (a stem with its .trace.lz4, .pb.gz,
 * .offcpu.pb.gz, .crash.txt and .pftrace). */
struct snapfile {
        char stem[256];
        time_t mtime;
        uint64_t bytes;
        unsigned nfiles;
};

static int by_age(const void *a, const void *b) {
        const struct snapfile *x = a, *y = b;
        if (x->mtime != y->mtime)
                return x->mtime < y->mtime ? -1 : 1;
        return strcmp(x->stem, y->stem);
}

static int by_stem(const void *a, const void *b) {
        return strcmp(((const struct snapfile *)a)->stem, ((const struct snapfile *)b)->stem);
}

void frd_retention(const char *dir, uint64_t max_total_bytes, unsigned max_files, uint64_t max_age_s) {
        DIR *d = opendir(dir);
        if (!d)
                return;
        struct snapfile *v = NULL;
        size_t n = 0, cap = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
                size_t len = strlen(e->d_name), k;
                if (ends_with(e->d_name, ".trace.lz4"))
                        k = len - strlen(".trace.lz4");
                else if (ends_with(e->d_name, ".offcpu.pb.gz"))
                        k = len - strlen(".offcpu.pb.gz");
                else if (ends_with(e->d_name, ".pb.gz"))
                        k = len - strlen(".pb.gz");
                else if (ends_with(e->d_name, ".crash.txt"))
                        k = len - strlen(".crash.txt");
                else if (ends_with(e->d_name, ".pftrace"))
                        k = len - strlen(".pftrace");
                else
                        continue;
                if (k == 0 || k >= sizeof v->stem)
                        continue;
                struct stat st;
                if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                    !S_ISREG(st.st_mode))
                        continue;
                if (n == cap) {
                        cap = cap ? cap * 2 : 256;
                        struct snapfile *nv = realloc(v, cap * sizeof *v);
                        if (!nv)
                                break;
                        v = nv;
                }
                memcpy(v[n].stem, e->d_name, k);
                v[n].stem[k] = '\0';
                v[n].mtime = st.st_mtime;
                v[n].bytes = (uint64_t)st.st_blocks * 512 > (uint64_t)st.st_size
                                     ? (uint64_t)st.st_size
                                     : (uint64_t)st.st_size;
                v[n].nfiles = 1;
                n++;
        }
        if (n == 0) {
                free(v);
                closedir(d);
                return;
        }
        /* Merge the two files of each snapshot. */
        qsort(v, n, sizeof *v, by_stem);
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
                if (m && strcmp(v[m - 1].stem, v[i].stem) == 0) {
                        v[m - 1].bytes += v[i].bytes;
                        v[m - 1].nfiles += v[i].nfiles;
                        if (v[i].mtime > v[m - 1].mtime)
                                v[m - 1].mtime = v[i].mtime;
                } else {
                        v[m++] = v[i];
                }
        }
        qsort(v, m, sizeof *v, by_age);
        uint64_t total = 0, files = 0;
        for (size_t i = 0; i < m; i++) {
                total += v[i].bytes;
                files += v[i].nfiles;
        }
        time_t now = time(NULL);
        for (size_t i = 0; i < m; i++) {
                bool old = max_age_s && (uint64_t)(now - v[i].mtime) > max_age_s;
                bool big = max_total_bytes && total > max_total_bytes;
                bool many = max_files && files > max_files;
                if (!old && !big && !many)
                        break;
                char name[300];
                snprintf(name, sizeof name, "%s.trace.lz4", v[i].stem);
                unlinkat(dirfd(d), name, 0);
                snprintf(name, sizeof name, "%s.pb.gz", v[i].stem);
                unlinkat(dirfd(d), name, 0);
                snprintf(name, sizeof name, "%s.crash.txt", v[i].stem);
                unlinkat(dirfd(d), name, 0);
                snprintf(name, sizeof name, "%s.pftrace", v[i].stem);
                unlinkat(dirfd(d), name, 0);
                snprintf(name, sizeof name, "%s.offcpu.pb.gz", v[i].stem);
                unlinkat(dirfd(d), name, 0);
                frd_log(FRD_INFO, "retention: removed snapshot %s (%s)", v[i].stem,
                       old ? "older than max_age" : big ? "max_total_bytes reached" : "max_files reached");
                total -= v[i].bytes;
                files -= v[i].nfiles;
        }
        free(v);
        closedir(d);
}
