/* Snapshot output: file names, the worker threads that convert a trace to
 * pprof and rename both files into place, and retention of the directory. */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
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
#include "pm_ring.h"
#include "pprof.h"
#include "symbolize.h"
#include "trace_out.h"

static struct {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        struct frd_job *queue, **queue_tail; /* to the workers */
        struct frd_job *done;                /* back to the loop */
        unsigned busy;                      /* submitted, not yet handed back */
        bool stop;
        unsigned nthreads;
        pthread_t threads[64];
        int efd;
        struct event *ev;
        void (*done_cb)(struct frd_job *);
} out = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .efd = -1};

int frd_raw_reserve(struct frd_job *j, size_t cap) {
        const size_t huge = 2u << 20;
        cap = (cap + huge - 1) & ~(huge - 1);
        if (cap <= j->raw_cap)
                return 0;
        void *p = j->raw ? mremap(j->raw, j->raw_cap, cap, MREMAP_MAYMOVE)
                         : mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                return -ENOMEM;
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

/* Post-mortem: append the dead agent's ring to the header in raw, and write
 * the trace file from it (live snapshots stream it from the loop instead). */
static int load_ring(struct frd_job *j) {
        struct fr_pm_plan plan;
        char err[256];
        int r = fr_pm_plan(j->ring_fd, j->max_trace_bytes, &plan, err, sizeof err);
        if (r == 0 && plan.n == 0) {
                snprintf(err, sizeof err, "the ring holds no complete generation yet");
                r = -ENODATA;
        }
        if (r == 0 && frd_raw_reserve(j, j->raw_len + plan.total) < 0) {
                snprintf(err, sizeof err, "out of memory for %llu bytes",
                         (unsigned long long)plan.total);
                r = -ENOMEM;
        }
        if (r == 0)
                r = fr_pm_copy(j->ring_fd, &plan, j->raw + j->raw_len, err, sizeof err);
        if (r == 0)
                j->raw_len += plan.total;
        fr_pm_plan_free(&plan);
        close(j->ring_fd);
        j->ring_fd = -1;
        if (r < 0) {
                snprintf(j->errmsg, sizeof j->errmsg, "post-mortem ring of pid %d: %s", (int)j->pid,
                         err);
                return r;
        }
        j->trace_bytes = j->raw_len;
        struct fr_lz4_out *lz;
        r = fr_lz4_out_open(j->trace_fd, &lz);
        if (r == 0) {
                r = fr_lz4_out_write(lz, j->raw, j->raw_len);
                int c = fr_lz4_out_close(lz, r < 0);
                r = r < 0 ? r : c;
        }
        if (r < 0)
                snprintf(j->errmsg, sizeof j->errmsg, "writing %s: %s", j->trace_tmp, strerror(-r));
        return r;
}

static void run_job(struct frd_job *j, struct fr_symbolizer *sym) {
        double t0 = mono_ms();
        int r = 0;
        if (j->ring_fd >= 0 && (r = load_ring(j)) < 0)
                goto fail;
        if (j->gid != (gid_t)-1 && fchown(j->trace_fd, (uid_t)-1, j->gid) < 0) {
                r = -errno;
                snprintf(j->errmsg, sizeof j->errmsg, "writing %s: %s", j->trace_tmp, strerror(-r));
                goto fail;
        }
        struct fr_pprof_options opts = {
                .flags = (j->partial ? FR_PPROF_ALLOW_PARTIAL_TAIL : 0) |
                         (j->symbolize ? 0 : FR_PPROF_NO_SYMBOLIZE),
                .symbolizer = sym,
        };
        uint8_t *gz = NULL;
        size_t gzlen = 0;
        struct fr_pprof_stats st = {0};
        char err[400];
        r = fr_pprof_from_trace(j->raw, j->raw_len, &opts, &gz, &gzlen, &st, err, sizeof err);
        if (r < 0) {
                snprintf(j->errmsg, sizeof j->errmsg, "trace from pid %d is not valid: %s",
                         (int)j->pid, err);
                goto fail;
        }
        j->nsamples = st.nsamples;
        int pfd = write_tmp(j->pprof_tmp, gz, gzlen, j->gid);
        free(gz);
        if (pfd < 0) {
                r = pfd;
                snprintf(j->errmsg, sizeof j->errmsg, "writing %s: %s", j->pprof_tmp, strerror(-r));
                goto fail;
        }
        j->pprof_bytes = gzlen;
        /* The off-CPU profile, when the trace has waits (same symbolizer). */
        opts.flags |= FR_PPROF_OFFCPU;
        gz = NULL;
        r = fr_pprof_from_trace(j->raw, j->raw_len, &opts, &gz, &gzlen, &st, err, sizeof err);
        if (r < 0) {
                close(pfd);
                snprintf(j->errmsg, sizeof j->errmsg, "off-CPU profile of pid %d: %s", (int)j->pid, err);
                goto fail;
        }
        j->nwaits = st.nsamples;
        j->offcpu_bytes = 0;
        int ofd = -1;
        if (st.nsamples) {
                ofd = write_tmp(j->offcpu_tmp, gz, gzlen, j->gid);
                if (ofd < 0) {
                        free(gz);
                        close(pfd);
                        r = ofd;
                        snprintf(j->errmsg, sizeof j->errmsg, "writing %s: %s", j->offcpu_tmp,
                                 strerror(-r));
                        goto fail;
                }
                j->offcpu_bytes = gzlen;
        }
        free(gz);
        /* The trace first: a pprof in place always has its trace beside it. */
        const char *step = "";
        int tfd = j->trace_fd;
        j->trace_fd = -1;
        r = fr_file_commit(tfd, j->trace_tmp, j->trace_path, &step);
        if (r < 0) {
                close(pfd);
                if (ofd >= 0)
                        close(ofd);
                snprintf(j->errmsg, sizeof j->errmsg, "%s: %s: %s", j->trace_path, step,
                         strerror(-r));
                goto fail;
        }
        r = fr_file_commit(pfd, j->pprof_tmp, j->pprof_path, &step);
        if (r < 0) {
                if (ofd >= 0)
                        close(ofd);
                snprintf(j->errmsg, sizeof j->errmsg, "%s: %s: %s", j->pprof_path, step,
                         strerror(-r));
                unlink(j->trace_path);
                goto fail;
        }
        if (ofd >= 0 && (r = fr_file_commit(ofd, j->offcpu_tmp, j->offcpu_path, &step)) < 0) {
                snprintf(j->errmsg, sizeof j->errmsg, "%s: %s: %s", j->offcpu_path, step,
                         strerror(-r));
                unlink(j->pprof_path);
                unlink(j->trace_path);
                goto fail;
        }
        j->convert_ms = mono_ms() - t0;
        j->error = 0;
        return;
fail:
        j->error = r;
        frd_output_discard(j);
}

static void *worker(void *arg) {
        (void)arg;
        struct fr_symbolizer *sym = NULL;
        pthread_mutex_lock(&out.lock);
        for (;;) {
                while (!out.queue && !out.stop) {
                        /* Idle: drop the cache of opened objects so that a binary
                         * replaced on disk is read afresh next time. */
                        if (sym) {
                                pthread_mutex_unlock(&out.lock);
                                fr_symbolizer_free(sym);
                                sym = NULL;
                                pthread_mutex_lock(&out.lock);
                                continue;
                        }
                        pthread_cond_wait(&out.cond, &out.lock);
                }
                if (!out.queue)
                        break; /* stop, queue drained */
                struct frd_job *j = out.queue;
                out.queue = j->next;
                if (!out.queue)
                        out.queue_tail = &out.queue;
                pthread_mutex_unlock(&out.lock);
                if (!sym && fr_symbolizer_new(NULL, &sym) < 0)
                        sym = NULL;
                run_job(j, sym);
                frd_raw_free(j);
                pthread_mutex_lock(&out.lock);
                j->next = out.done;
                out.done = j;
                uint64_t one = 1;
                (void)!write(out.efd, &one, sizeof one);
        }
        pthread_mutex_unlock(&out.lock);
        if (sym)
                fr_symbolizer_free(sym);
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
        pthread_mutex_unlock(&out.lock);
        /* Oldest first. */
        struct frd_job *rev = NULL;
        while (list) {
                struct frd_job *n = list->next;
                list->next = rev;
                rev = list;
                list = n;
        }
        while (rev) {
                struct frd_job *n = rev->next;
                pthread_mutex_lock(&out.lock);
                out.busy--;
                pthread_mutex_unlock(&out.lock);
                out.done_cb(rev);
                rev = n;
        }
}

int frd_output_start(struct event_base *base, unsigned workers, void (*done)(struct frd_job *)) {
        out.queue_tail = &out.queue;
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
        pthread_mutex_unlock(&out.lock);
        for (unsigned i = 0; i < out.nthreads; i++)
                pthread_join(out.threads[i], NULL);
        out.nthreads = 0;
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
                snprintf(j->offcpu_path, sizeof j->offcpu_path, "%s/%s.offcpu.pb.gz", dir, j->stem);
                snprintf(j->offcpu_tmp, sizeof j->offcpu_tmp, "%s.tmp", j->offcpu_path);
                if (access(j->trace_path, F_OK) == 0 || access(j->pprof_path, F_OK) == 0 ||
                    access(j->pprof_tmp, F_OK) == 0 || access(j->offcpu_path, F_OK) == 0 ||
                    access(j->offcpu_tmp, F_OK) == 0)
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
                if (ends_with(e->d_name, ".trace.lz4.tmp") || ends_with(e->d_name, ".pb.gz.tmp")) {
                        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
                                frd_log(FRD_NOTICE, "removed %s/%s left by an interrupted snapshot",
                                       dir, e->d_name);
                }
        closedir(d);
}

/* Retention works on snapshots (a stem with its .trace.lz4, .pb.gz and
 * .offcpu.pb.gz). */
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
