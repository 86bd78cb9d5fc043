/* CPU sampling: one sampler per thread, delivering SIGPROF to that thread
 * after every 1/hz second of its CPU time (the handler, in
 * fr_sample_signal.c, records a stack into the thread's sample buffer of the
 * current generation parity).
 *
 * Samplers. The primary one is a perf_event software task-clock event per
 * thread (user time only), set to signal its own thread (F_SETOWN_EX with
 * F_OWNER_TID, F_SETSIG SIGPROF, O_ASYNC) and re-armed from the handler with
 * PERF_EVENT_IOC_REFRESH: it fires about hz times per CPU-second. Where
 * perf_event_open is refused (seccomp, perf_event_paranoid 3), a POSIX CPU
 * timer per thread (timer_create on the thread's CPU clock, SIGEV_THREAD_ID)
 * does the job; it is checked at the scheduler tick, so its samples carry
 * the weight 1 + si_overrun.
 *
 * Finding the thread's record in the handler. The signal says which sampler
 * fired: si_fd for the perf event (a table indexed by fd), si_value for the
 * timer (a table indexed by slot). The record is accepted only when its tid
 * is the handler's own, so a stale signal after an fd was reused for another
 * thread is dropped. Anything else (the application's own SIGPROF: kill,
 * setitimer) goes to the handler that was installed before ours.
 *
 * The handler itself (fr_sample_signal.c) holds only async-signal-safe
 * code; this file sets samplers up, finds threads and their stack bounds,
 * and drains the samples on the advancer. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "fr_sample.h"
#include "fr_unwind.h"

struct fr_sampler fr__sp = {.timer_lock = PTHREAD_MUTEX_INITIALIZER};
_Atomic(struct fr_hook *) fr__traceback;
static struct fr_hook *all_hooks;
static pthread_mutex_t hooks_lock = PTHREAD_MUTEX_INITIALIZER;
__thread pid_t fr__my_tid FR_TLS;

unsigned fr__sampler_kind(void) { return fr__sp.kind; }

/* ---- samplers ------------------------------------------------------------- */

static long perf_open(pid_t tid, unsigned hz) {
        struct perf_event_attr a = {
                .type = PERF_TYPE_SOFTWARE,
                .size = sizeof a,
                .config = PERF_COUNT_SW_TASK_CLOCK,
                .sample_period = 1000000000ull / hz,
                .disabled = 1,
                .exclude_kernel = 1,
                .exclude_hv = 1,
        };
        return syscall(SYS_perf_event_open, &a, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

static int arm_perf(struct fr_thread *t) {
        long fd = perf_open(t->tid, fr__sp.hz);
        if (fd < 0)
                return -errno;
        fd = fr__fd_move_high((int)fd); /* out of the numbers select() users need */
        struct f_owner_ex owner = {.type = F_OWNER_TID, .pid = t->tid};
        if ((size_t)fd >= fr__sp.nfd || fr__perf_fd_id((int)fd, &t->samples.perf_id) < 0 ||
            fcntl((int)fd, F_SETOWN_EX, &owner) < 0 ||
            fcntl((int)fd, F_SETSIG, SIGPROF) < 0 ||
            fcntl((int)fd, F_SETFL, O_ASYNC | O_NONBLOCK) < 0) {
                close((int)fd);
                return -EMFILE;
        }
        t->samples.perf_count = 0;
        atomic_store_explicit(&fr__sp.by_fd[fd], t, memory_order_release);
        t->samples.perf_fd = (int)fd;
        if (ioctl((int)fd, PERF_EVENT_IOC_REFRESH, 1) < 0) {
                int e = -errno;
                atomic_store(&fr__sp.by_fd[fd], NULL);
                t->samples.perf_fd = -1;
                close((int)fd);
                return e;
        }
        return 0;
}

static int arm_timer(struct fr_thread *t) {
        pthread_mutex_lock(&fr__sp.timer_lock);
        int slot = -1;
        for (unsigned i = 0; i < TIMER_TABLE_SIZE; i++) {
                unsigned k = (fr__sp.next_slot + i) % TIMER_TABLE_SIZE;
                if (!atomic_load(&fr__sp.by_timer[k])) {
                        slot = (int)k;
                        fr__sp.next_slot = k + 1;
                        atomic_store_explicit(&fr__sp.by_timer[k], t, memory_order_release);
                        break;
                }
        }
        pthread_mutex_unlock(&fr__sp.timer_lock);
        if (slot < 0)
                return -EAGAIN;
        /* The CPU clock of another thread of ours: the kernel's encoding of
         * MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED). */
        clockid_t clock = (clockid_t)((~(unsigned)t->tid << 3) | 6);
        struct sigevent ev = {.sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGPROF};
        ev._sigev_un._tid = t->tid;
        ev.sigev_value.sival_int = TIMER_MAGIC | slot;
        timer_t timer;
        if (timer_create(clock, &ev, &timer) < 0) {
                int e = -errno;
                atomic_store(&fr__sp.by_timer[slot], NULL);
                return e;
        }
        /* A random first expiry within one period: short-lived threads are
         * not all sampled at the same point of their run. */
        long period = 1000000000l / (long)fr__sp.hz;
        struct itimerspec it = {.it_interval = {period / 1000000000l, period % 1000000000l}};
        long first = 1 + (long)((unsigned long)random() % (unsigned long)period);
        it.it_value = (struct timespec){first / 1000000000l, first % 1000000000l};
        t->samples.timer = timer;
        t->samples.timer_slot = slot;
        if (timer_settime(timer, 0, &it, NULL) < 0) {
                int e = -errno;
                timer_delete(timer);
                atomic_store(&fr__sp.by_timer[slot], NULL);
                t->samples.timer_slot = -1;
                return e;
        }
        atomic_fetch_add(&fr__sp.timers, 1);
        return 0;
}

static uint32_t buffer_bytes(void) {
        /* About 128 bytes a sample, hz * period samples per CPU-bound thread
         * and generation, and half again for an advancer running late. */
        uint64_t per_gen = (uint64_t)fr__sp.hz * fr__cfg.period_ms / 1000 + 1;
        uint64_t b = per_gen * 192;
        if (b < 16384)
                b = 16384;
        if (b > (8u << 20))
                b = 8u << 20;
        return (uint32_t)((b + 4095) & ~(uint64_t)4095);
}

void fr__stack_bounds(struct fr_thread *t) {
        if (atomic_load(&t->samples.stack_hi))
                return;
        pthread_attr_t a;
        void *addr;
        size_t size;
        if (pthread_getattr_np(pthread_self(), &a) != 0)
                return;
        if (pthread_attr_getstack(&a, &addr, &size) == 0) {
                atomic_store(&t->samples.stack_lo, (uintptr_t)addr);
                atomic_store_explicit(&t->samples.stack_hi, (uintptr_t)addr + size,
                                      memory_order_release);
        }
        pthread_attr_destroy(&a);
}

void fr__sampler_arm(struct fr_thread *t, bool self) {
        if (self)
                fr__altstack_ensure(t); /* before its first signal (fr_altstack.c) */
        if (self) /* also for the stacks of blocked calls, sampling or not */
                fr__stack_bounds(t);
        if (fr__sp.kind == FR_SAMPLER_NONE)
                return;
        if (t->samples.perf_fd >= 0 || t->samples.timer_slot >= 0 || t->samples.arm_failed)
                return;
        if (!t->samples.mem) {
                uint32_t cap = buffer_bytes();
                void *m = mmap(NULL, 2 * (size_t)cap, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
                if (m == MAP_FAILED)
                        return;
                t->samples.mem = m;
                t->samples.cap = cap;
        }
        int r = -ENOSYS;
        uint32_t note = FR_NOTE_TIMER_REFUSED;
        if (fr__sp.kind == FR_SAMPLER_PERF) {
                /* The budget: reserve a descriptor first (threads arm at once). */
                if (atomic_fetch_add(&fr__sp.perf_fds, 1) >= fr__fd_budget())
                        note = FR_NOTE_TIMER_BUDGET;
                /* A filter may have come since the last period: the calling
                 * thread's, before its first perf call (fr_seccomp.c). */
                else if ((self || fr__seccomp_seen()) && fr__seccomp_filtered(false))
                        note = FR_NOTE_TIMER_SECCOMP;
                else if ((r = arm_perf(t)) == 0)
                        note = FR_NOTE_PERF;
                if (r < 0)
                        atomic_fetch_sub(&fr__sp.perf_fds, 1);
        } else if (fr__seccomp_seen()) {
                note = FR_NOTE_TIMER_SECCOMP;
        }
        if (r == -ESRCH)
                return; /* the thread is gone already */
        if (r < 0)
                r = arm_timer(t); /* also for the odd thread perf refuses */
        if (r == 0 && !fr__cfg.force_timer)
                atomic_fetch_or(&t->samples.note, note);
        if (r < 0) {
                t->samples.arm_failed = true; /* said once; not retried every period */
                if (fr__thread_exists(t->tid)) /* a thread exiting under us is no news */
                        fr__log_error("cannot sample thread %d: %s", (int)t->tid, strerror(-r));
        }
}

void fr__sampler_disarm_all(void) {
        fr__threads_lock();
        for (struct fr_thread *t = fr__threads_head(); t; t = t->next) {
                fr__sampler_disarm(t);
                t->samples.arm_failed = false;
        }
        fr__threads_unlock();
}

/* forget_perf - t's perf descriptor is no longer its sampler; closed only if
 * it is still ours (the application may own the number now). */
static void forget_perf(struct fr_thread *t, bool close_it) {
        struct fr_samples *s = &t->samples;
        struct fr_thread *mine = t;
        atomic_compare_exchange_strong(&fr__sp.by_fd[s->perf_fd], &mine, NULL);
        if (close_it && fr__perf_fd_intact(s->perf_fd, s->perf_id))
                close(s->perf_fd);
        s->perf_fd = -1;
        atomic_fetch_sub(&fr__sp.perf_fds, 1);
}

void fr__sampler_disarm(struct fr_thread *t) {
        struct fr_samples *s = &t->samples;
        if (s->perf_fd >= 0)
                forget_perf(t, true);
        if (s->timer_slot >= 0) {
                timer_delete((timer_t)s->timer);
                atomic_store(&fr__sp.by_timer[s->timer_slot], NULL);
                s->timer_slot = -1;
                atomic_fetch_sub(&fr__sp.timers, 1);
        }
}

void fr__samples_free(struct fr_thread *t) {
        atomic_fetch_add(&fr__sp.taken_by_gone, atomic_exchange(&t->samples.taken, 0));
        if (t->samples.mem)
                munmap(t->samples.mem, 2 * (size_t)t->samples.cap);
        t->samples.mem = NULL;
}

static void *table(size_t n) {
        void *p = mmap(NULL, n * sizeof(void *), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        return p == MAP_FAILED ? NULL : p;
}

static bool is_ours(const struct sigaction *a) {
        return (a->sa_flags & SA_SIGINFO) && a->sa_sigaction == fr__on_sigprof;
}

/* install_handler - put our SIGPROF handler in place, chaining to the one
 * found there (the application's) unless it is ours already. Returns 1 when
 * it had to (re)install, 0 when ours was in place, or -errno. */
static int install_handler(void) {
        struct sigaction cur;
        if (sigaction(SIGPROF, NULL, &cur) < 0)
                return -errno;
        if (is_ours(&cur))
                return 0;
        int slot = !atomic_load(&fr__sp.prev_slot);
        fr__sp.previous[slot] = cur;
        atomic_store_explicit(&fr__sp.prev_slot, slot, memory_order_release);
        struct sigaction a = {.sa_sigaction = fr__on_sigprof, .sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK};
        sigemptyset(&a.sa_mask);
        if (sigaction(SIGPROF, &a, NULL) < 0)
                return -errno;
        if ((cur.sa_flags & SA_SIGINFO) || (cur.sa_handler != SIG_DFL && cur.sa_handler != SIG_IGN))
                fr__log_error("%s SIGPROF handler: it keeps receiving its own SIGPROF signals "
                              "(kill, setitimer), the sampler's are filtered out",
                              fr__sp.installed ? "the application replaced our" : "the application has a");
        fr__sp.installed = true;
        return 1;
}

int fr__sampler_init(unsigned hz) {
        fr__sp.kind = FR_SAMPLER_NONE;
        memset((void *)fr__handler_hist, 0, sizeof fr__handler_hist);
        fr__sp.period_ns = hz ? 1000000000ull / hz : 0;
        /* Counts start again with the recorder (records of live threads
         * outlive a stop). */
        atomic_store(&fr__sp.taken_by_gone, 0);
        atomic_store(&fr__sp.rearms, 0);
        atomic_store(&fr__sp.checks, 0);
        atomic_store(&fr__sp.check_ns, 0);
        fr__threads_lock();
        for (struct fr_thread *t = fr__threads_head(); t; t = t->next)
                atomic_store(&t->samples.taken, 0);
        fr__threads_unlock();
        fr__sp.hz = hz;
        if (hz == 0 || fr__cfg.sampling_off)
                return 0;
        /* Its size first: a thread adopted from /proc gets its alternate stack
         * in its first handler, which cannot compute it (fr_altstack.c). */
        fr__altstack_size();
        if (!fr__sp.by_fd) {
                /* The whole range: the limit may be raised later. */
                size_t n = FD_TABLE_MAX;
                fr__sp.by_fd = table(n);
                fr__sp.by_timer = table(TIMER_TABLE_SIZE);
                if (!fr__sp.by_fd || !fr__sp.by_timer)
                        return -ENOMEM;
                fr__sp.nfd = n;
        }
        int r = install_handler();
        if (r < 0)
                return r;
        /* Probe: perf_event_open on ourselves tells which sampler works here
         * (never under a seccomp filter: it is not in @system-service). */
        bool filtered = !fr__cfg.force_timer && fr__seccomp_filtered(true);
        if (filtered)
                fr__log_error("under a seccomp filter: sampling with CPU timers, "
                              "no perf_event_open");
        long fd = fr__cfg.force_timer || filtered ? (errno = EPERM, -1)
                                                  : perf_open((pid_t)syscall(SYS_gettid), hz);
        if (fd >= 0) {
                close((int)fd);
                fr__sp.kind = FR_SAMPLER_PERF;
        } else {
                if (!fr__cfg.force_timer && !filtered)
                        fr__log_error("perf_event_open refused (%s): sampling with CPU timers, "
                                      "which fire at the scheduler tick", strerror(errno));
                fr__sp.kind = FR_SAMPLER_TIMER;
        }
        return 0;
}

int fr_set_traceback(fr_traceback_fn fn, void *arg) {
        struct fr_hook *h = NULL;
        if (fn) {
                h = malloc(sizeof *h);
                if (!h)
                        return -ENOMEM;
                pthread_mutex_lock(&hooks_lock);
                *h = (struct fr_hook){fn, arg, all_hooks};
                all_hooks = h;
                pthread_mutex_unlock(&hooks_lock);
        }
        /* The old hook stays allocated: a handler may still be running it. */
        atomic_store_explicit(&fr__traceback, h, memory_order_release);
        return 0;
}

/* ---- our descriptors, checked every period ----------------------------------- */

static uint64_t cpu_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* check_descriptors - every perf descriptor of ours that the application
 * closed or replaced (close-everything loops, close_range, dup2 onto our
 * number) is dropped without touching the number, and the thread re-armed.
 * All are checked before any is re-armed: a re-arm may take a number just
 * freed, which a later check would otherwise take for a replacement. */
static void check_descriptors(struct fr_thread *head) {
        uint64_t t0 = cpu_ns(), checked = 0;
        bool any = false;
        for (struct fr_thread *t = head; t; t = t->next) {
                if (t->samples.perf_fd < 0)
                        continue;
                checked++;
                if (fr__perf_fd_intact(t->samples.perf_fd, t->samples.perf_id))
                        continue;
                t->samples.lost_fd = t->samples.perf_fd;
                forget_perf(t, false);
                atomic_fetch_or(&t->samples.note, FR_NOTE_REARMED);
                atomic_fetch_add_explicit(&fr__sp.rearms, 1, memory_order_relaxed);
                any = true;
        }
        atomic_fetch_add_explicit(&fr__sp.checks, checked, memory_order_relaxed);
        atomic_fetch_add_explicit(&fr__sp.check_ns, cpu_ns() - t0, memory_order_relaxed);
        if (!any)
                return;
        for (struct fr_thread *t = head; t; t = t->next)
                if ((atomic_load(&t->samples.note) & FR_NOTE_REARMED) && t->samples.perf_fd < 0 &&
                    t->samples.timer_slot < 0 && !atomic_load(&t->exit_gen))
                        fr__sampler_arm(t, false);
}

void fr__sampler_counts(struct fr_stats *ret) {
        ret->threads_perf = atomic_load(&fr__sp.perf_fds);
        ret->threads_timer = atomic_load(&fr__sp.timers);
        ret->fd_budget = fr__fd_budget();
        ret->seccomp = fr__seccomp_seen();
        ret->sampler_rearms = atomic_load_explicit(&fr__sp.rearms, memory_order_relaxed);
        ret->fd_checks = atomic_load_explicit(&fr__sp.checks, memory_order_relaxed);
        ret->fd_check_ns = atomic_load_explicit(&fr__sp.check_ns, memory_order_relaxed);
}

int fr__sampler_note_text(struct fr_thread *t, uint32_t bit, char *buf, size_t len) {
        switch (bit) {
        case FR_NOTE_PERF:
                return snprintf(buf, len, "sampler: perf task-clock event");
        case FR_NOTE_TIMER_BUDGET:
                return snprintf(buf, len, "sampler: CPU timer (descriptor budget of %u reached)",
                                fr__fd_budget());
        case FR_NOTE_TIMER_SECCOMP:
                return snprintf(buf, len, "sampler: CPU timer (seccomp filter)");
        case FR_NOTE_TIMER_REFUSED:
                return snprintf(buf, len, "sampler: CPU timer (perf_event_open refused)");
        case FR_NOTE_REARMED:
                return snprintf(buf, len, "sampler re-armed: descriptor %d was closed or replaced "
                                "by the application", t->samples.lost_fd);
        }
        return 0;
}

/* ---- finding threads --------------------------------------------------------- */

static int cmp_tid(const void *a, const void *b) {
        pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
        return (x > y) - (x < y);
}

/* list_tasks - the tids of /proc/self/task, sorted; NULL on failure.
 * getdents64 on a transient descriptor (fr_fds.c), not opendir: closedir
 * would close the number even after the application put a file there. */
static pid_t *list_tasks(size_t *ret_n) {
        struct fr_fd_id id;
        if (fr__fd_transient(&id, open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
                return NULL;
        size_t n = 0, cap = 64;
        pid_t *v = malloc(cap * sizeof *v);
        char buf[8192] __attribute__((aligned(8)));
        long got;
        while (v && (got = syscall(SYS_getdents64, id.fd, buf, sizeof buf)) > 0) {
                for (long off = 0; off < got;) {
                        const struct dirent64 *e = (const struct dirent64 *)(buf + off);
                        if (e->d_reclen == 0)
                                break;
                        off += e->d_reclen;
                        if (e->d_name[0] < '0' || e->d_name[0] > '9')
                                continue;
                        if (n == cap) {
                                pid_t *nv = realloc(v, 2 * cap * sizeof *v);
                                if (!nv) {
                                        free(v);
                                        v = NULL;
                                        break;
                                }
                                v = nv;
                                cap *= 2;
                        }
                        v[n++] = (pid_t)atoi(e->d_name);
                }
        }
        fr__fd_close(&id);
        if (v)
                qsort(v, n, sizeof *v, cmp_tid);
        *ret_n = n;
        return v;
}

/* The agent's own threads are named "flightrec..." and are not sampled. */
static bool agent_thread(pid_t tid, char *name, size_t len) {
        fr__thread_comm(tid, name, len);
        return strncmp(name, "flightrec", 9) == 0;
}

/* Stack bounds of threads that reported a stack pointer: the mapping that
 * holds it. */
static void learn_stacks(struct fr_thread *head) {
        bool want = false;
        for (struct fr_thread *t = head; t; t = t->next)
                want |= atomic_load(&t->samples.stack_hi) == 0 && atomic_load(&t->samples.first_sp);
        if (!want)
                return;
        size_t len;
        char *maps = fr__read_file_all("/proc/self/maps", &len);
        if (!maps)
                return;
        for (char *line = maps, *next; line < maps + len; line = next) {
                next = strchr(line, '\n');
                next = next ? next + 1 : maps + len;
                unsigned long lo, hi;
                if (sscanf(line, "%lx-%lx", &lo, &hi) != 2)
                        continue;
                for (struct fr_thread *t = head; t; t = t->next) {
                        uintptr_t s = atomic_load(&t->samples.first_sp);
                        if (s && s >= lo && s < hi && atomic_load(&t->samples.stack_hi) == 0) {
                                atomic_store(&t->samples.stack_lo, (uintptr_t)lo);
                                atomic_store_explicit(&t->samples.stack_hi, (uintptr_t)hi,
                                                      memory_order_release);
                        }
                }
        }
        free(maps);
}

bool fr__sampler_bounds_wanted(void) {
        return atomic_load_explicit(&fr__sp.bounds_wanted, memory_order_relaxed);
}

void fr__sampler_learn_bounds(void) {
        if (!atomic_exchange(&fr__sp.bounds_wanted, false))
                return;
        fr__threads_lock();
        learn_stacks(fr__threads_head());
        fr__threads_unlock();
}

static struct fr_thread *new_record(pid_t tid) {
        struct fr_thread *t;
        if (posix_memalign((void **)&t, FR_CACHELINE, sizeof *t))
                return NULL;
        memset(t, 0, sizeof *t);
        t->tid = tid;
        t->adopted = true;
        t->samples.perf_fd = -1;
        t->samples.timer_slot = -1;
        return t;
}

void fr__sampler_rescan(uint64_t gen) {
        if (fr__sp.kind == FR_SAMPLER_NONE)
                return;
        /* An application that installs its own SIGPROF handler after we
         * started takes our samplers' signals (and, not re-arming them, stops
         * them): put ours back in front of it and restart the samplers. */
        bool rearm = install_handler() > 0;
        /* A seccomp filter installed since the last period: new samplers are
         * timers from now on (running perf events only need read and ioctl,
         * which the filter allows); FLIGHTREC_SECCOMP=off: no sampling. */
        if ((fr__sp.kind == FR_SAMPLER_PERF || fr__cfg.seccomp_off) && fr__seccomp_filtered(true)) {
                fr__log_error("a seccomp filter appeared: new threads are sampled with CPU "
                              "timers%s", fr__cfg.seccomp_off ? "; FLIGHTREC_SECCOMP=off: "
                                                               "sampling stops" : "");
                if (fr__sp.kind == FR_SAMPLER_PERF)
                        fr__sp.kind = FR_SAMPLER_TIMER;
                if (fr__cfg.seccomp_off) {
                        fr__sampler_disarm_all();
                        fr__sp.kind = FR_SAMPLER_NONE;
                        return;
                }
        }
        size_t n;
        pid_t *tids = list_tasks(&n);
        if (!tids)
                return;
        fr__threads_lock();
        struct fr_thread *head = fr__threads_head();
        if (rearm)
                for (struct fr_thread *t = head; t; t = t->next)
                        fr__sampler_disarm(t); /* re-armed below */
        check_descriptors(head);
        /* Adopted threads that are gone: no exit event of their own, so the
         * advancer ends them at this generation's start. */
        for (struct fr_thread *t = head; t; t = t->next) {
                if (!t->adopted || t->owned || atomic_load(&t->exit_gen))
                        continue;
                /* readdir of /proc/self/task can skip entries while other
                 * threads exit: confirm with the thread's own entry. */
                if (!bsearch(&t->tid, tids, n, sizeof *tids, cmp_tid) && !fr__thread_exists(t->tid)) {
                        fr__sampler_disarm(t);
                        t->gone_gen = gen;
                        t->gone_time = fr__now();
                        /* Before the first generation (gen 0): no exit to
                         * write, just not alive, freed after generation 1. */
                        atomic_store(&t->exit_gen, gen ? gen : 1);
                }
        }
        /* Threads without a record (created without pthread_create, or before
         * the agent started): adopt them. */
        size_t nrec = 0;
        for (struct fr_thread *t = head; t; t = t->next)
                nrec++;
        pid_t *known = malloc((nrec + 1) * sizeof *known);
        if (known) {
                size_t k = 0;
                for (struct fr_thread *t = head; t; t = t->next)
                        if (!atomic_load(&t->exit_gen))
                                known[k++] = t->tid;
                qsort(known, k, sizeof *known, cmp_tid);
                /* Live records without a sampler: after a restart of the agent. */
                for (struct fr_thread *t = head; t; t = t->next)
                        if (!atomic_load(&t->exit_gen) && t->samples.perf_fd < 0 &&
                            t->samples.timer_slot < 0 && bsearch(&t->tid, tids, n, sizeof *tids, cmp_tid))
                                fr__sampler_arm(t, false);
                for (size_t i = 0; i < n; i++) {
                        char name[64];
                        if (bsearch(&tids[i], known, k, sizeof *known, cmp_tid) ||
                            fr__thread_is_internal(tids[i]) || agent_thread(tids[i], name, sizeof name))
                                continue;
                        struct fr_thread *t = new_record(tids[i]);
                        if (!t)
                                break;
                        /* Alive from now on: in this generation through the
                         * THREAD_START the advancer writes for it; before the
                         * first generation, through its STATUS. */
                        t->found_gen = gen;
                        t->found_time = fr__now();
                        /* Its start and name take two ticks; events of its
                         * own (if it registers) come after them. */
                        t->last_time = t->found_time + 1;
                        t->found_name = fr__name_intern(name);
                        fr__sampler_arm(t, tids[i] == (pid_t)syscall(SYS_gettid));
                        fr__threads_add_locked(t);
                }
                free(known);
        }
        learn_stacks(fr__threads_head());
        fr__threads_unlock();
        free(tids);
}

/* In a forked child: the parent's samplers signal the parent's threads. */
void fr__sampler_forget(void) {
        fr__my_tid = 0;
        /* Handlers of the parent's other threads, counted as readers, do not
         * exist here: their counts would keep retired tables forever. */
        atomic_store(&fr__uw_pub.readers[0], 0);
        atomic_store(&fr__uw_pub.readers[1], 0);
        if (fr__sp.by_fd) {
                for (size_t fd = 0; fd < fr__sp.nfd; fd++) {
                        struct fr_thread *t = atomic_load_explicit(&fr__sp.by_fd[fd], memory_order_relaxed);
                        if (t) {
                                atomic_store(&fr__sp.by_fd[fd], NULL);
                                if (fr__perf_fd_intact((int)fd, t->samples.perf_id))
                                        close((int)fd);
                        }
                }
                atomic_store(&fr__sp.perf_fds, 0);
        }
        if (fr__sp.by_timer)
                memset((void *)fr__sp.by_timer, 0, TIMER_TABLE_SIZE * sizeof(void *));
        atomic_store(&fr__sp.timers, 0);
        pthread_mutex_init(&fr__sp.timer_lock, NULL);
}

uint64_t fr__samples_taken(void) {
        uint64_t n = atomic_load(&fr__sp.taken_by_gone);
        fr__threads_lock();
        for (struct fr_thread *t = fr__threads_head(); t; t = t->next)
                n += atomic_load_explicit(&t->samples.taken, memory_order_relaxed);
        fr__threads_unlock();
        return n;
}

/* ---- the handler's figures --------------------------------------------------- */
uint64_t fr__ht_bucket_ticks(unsigned b) {
        if (b < 4)
                return b + 1;
        unsigned l = b / 4 + 1, sub = b % 4;
        return ((uint64_t)(4 + sub + 1) << (l - 2));
}

/* percentile_ns - the handler time at fraction q of the samples of depth
 * classes [d0, d1); 0 when none. *ret_n: how many. */
static uint64_t percentile_ns(unsigned which, unsigned d0, unsigned d1, double q, uint64_t *ret_n) {
        uint64_t n = 0;
        for (unsigned d = d0; d < d1; d++)
                for (unsigned b = 0; b < FR_HT_BUCKETS; b++)
                        n += atomic_load_explicit(&fr__handler_hist[which][d][b], memory_order_relaxed);
        if (ret_n)
                *ret_n = n;
        if (n == 0)
                return 0;
        uint64_t want = (uint64_t)(q * (double)n), seen = 0;
        uint64_t tps = fr__clock_ticks_per_second();
        for (unsigned b = 0; b < FR_HT_BUCKETS; b++) {
                for (unsigned d = d0; d < d1; d++)
                        seen += atomic_load_explicit(&fr__handler_hist[which][d][b], memory_order_relaxed);
                if (seen > want)
                        return tps ? (uint64_t)((double)fr__ht_bucket_ticks(b) * 1e9 / (double)tps) : 0;
        }
        return 0;
}

void fr__sampler_fill_stats(struct fr_stats *ret) {
        struct fr_uw_stats u;
        fr__unwind_stats(&u);
        ret->unwind = fr__unwind_mode;
        ret->unwind_table_bytes = u.table_bytes;
        ret->unwind_objects = u.objects;
        ret->unwind_tables = u.tables;
        ret->unwind_rejected = u.rejected;
        ret->unwind_walks = 0;
        for (unsigned k = 0; k < FR_UW_END_KINDS; k++)
                ret->unwind_walks += u.stops[k];
        ret->unwind_root = u.stops[FR_UW_END_ROOT];
        ret->handler_p50_ns = percentile_ns(FR_HT_HANDLER, 0, FR_HT_DEPTHS, 0.50, NULL);
        ret->handler_p99_ns = percentile_ns(FR_HT_HANDLER, 0, FR_HT_DEPTHS, 0.99, NULL);
        ret->unwind_p50_ns = percentile_ns(FR_HT_UNWIND, 0, FR_HT_DEPTHS, 0.50, NULL);
        ret->unwind_p99_ns = percentile_ns(FR_HT_UNWIND, 0, FR_HT_DEPTHS, 0.99, NULL);
}

void fr__sampler_debug_report(const struct fr_stats *st) {
        static const char *const stops[FR_UW_END_KINDS] = {"root", "max depth", "stack bounds",
                                                           "rule", "no CFI", "bad pc"};
        static const char *const depths[FR_HT_DEPTHS] = {"1-4", "5-8", "9-16", "17-32", "33-64", "65+"};
        static const char *const modes[] = {"fp", "auto", "dwarf"};
        /* The table figures as the advancer last published them (the
         * builder's own lists are its thread's); the rest are counters. */
        fr__log_error("unwind %s: %llu objects, %llu tables, %llu bytes, %llu rejected",
                      modes[st->unwind % 3], (unsigned long long)st->unwind_objects,
                      (unsigned long long)st->unwind_tables, (unsigned long long)st->unwind_table_bytes,
                      (unsigned long long)st->unwind_rejected);
        char line[512];
        int len = snprintf(line, sizeof line, "unwind: walks ended by");
        for (unsigned k = 0; k < FR_UW_END_KINDS && len > 0 && (size_t)len < sizeof line; k++)
                len += snprintf(line + len, sizeof line - (size_t)len, " %s %llu", stops[k],
                                (unsigned long long)atomic_load(&fr__uw_pub.stops[k]));
        uint64_t walks = 0;
        for (unsigned k = 0; k < FR_UW_END_KINDS; k++)
                walks += atomic_load(&fr__uw_pub.stops[k]);
        if (atomic_load(&fr__uw_pub.last_bad[1]))
                fr__log_error("unwind: last early end: stop %llu after %llu frames at pc %#llx sp %#llx cfa %#llx",
                              (unsigned long long)atomic_load(&fr__uw_pub.last_bad[4]),
                              (unsigned long long)atomic_load(&fr__uw_pub.last_bad[0]),
                              (unsigned long long)atomic_load(&fr__uw_pub.last_bad[1]),
                              (unsigned long long)atomic_load(&fr__uw_pub.last_bad[2]),
                              (unsigned long long)atomic_load(&fr__uw_pub.last_bad[3]));
        fr__log_error("%s; mean depth %.2f", line,
                      walks ? (double)atomic_load(&fr__uw_pub.frames) / (double)walks : 0.0);
        for (unsigned d = 0; d < FR_HT_DEPTHS; d++) {
                uint64_t n;
                uint64_t p50 = percentile_ns(FR_HT_HANDLER, d, d + 1, 0.50, &n);
                if (n)
                        fr__log_error("handler time, %s frames: %llu samples, p50 %llu ns, p99 %llu ns; "
                                      "of which unwinding p50 %llu ns, p99 %llu ns",
                                      depths[d], (unsigned long long)n, (unsigned long long)p50,
                                      (unsigned long long)percentile_ns(FR_HT_HANDLER, d, d + 1, 0.99, NULL),
                                      (unsigned long long)percentile_ns(FR_HT_UNWIND, d, d + 1, 0.50, NULL),
                                      (unsigned long long)percentile_ns(FR_HT_UNWIND, d, d + 1, 0.99, NULL));
        }
}

/* ---- draining a generation (advancer) --------------------------------------- */

/* release_idle - memory of idle threads: the pages of parity p beyond what
 * this generation used go back to the kernel (written in earlier, busier
 * generations). No handler writes into parity p until the advancer moves the
 * generation on again, so this is safe here. */
static void release_idle(struct fr_samples *s, unsigned p) {
        size_t page = 4096, used = ((size_t)s->pos[p] + page - 1) & ~(page - 1);
        if (s->touched[p] > used)
                madvise(s->mem + (size_t)p * s->cap + used, s->touched[p] - used, MADV_DONTNEED);
        s->touched[p] = (uint32_t)used;
}

static void flush_batch(struct fr_buf *out, struct fr_buf *payload, uint64_t gen, pid_t tid,
                        uint64_t base, size_t *nbatches) {
        if (payload->len == 0)
                return;
        fr_buf_put_batch(out, FR_BATCH_SAMPLES, gen, (uint64_t)tid, base, payload->data, payload->len);
        (*nbatches)++;
        payload->len = 0;
}

uint64_t fr__samples_drain(struct fr_thread *t, uint64_t gen, uint64_t start,
                           struct fr_stack_table *st, struct fr_buf *out, size_t *nbatches,
                           uint64_t *ret_lost, uint64_t *ret_samples) {
        struct fr_samples *s = &t->samples;
        unsigned p = gen & 1;
        uint64_t lost = s->lost[p];
        s->lost[p] = 0;
        if (!s->mem)
                return 0;
        if (s->pos[p] == 0 && lost == 0) {
                release_idle(s, p);
                return 0;
        }
        const uint8_t *q = s->mem + (size_t)p * s->cap, *end = q + s->pos[p];
        struct fr_buf payload = {0};
        uint64_t base = 0, last = 0, v = 0, pcs[FR_MAX_STACK_FRAMES];
        while (q + 8 <= end) {
                uint64_t time, weight, task, region, n;
                memcpy(&time, q, 8);
                q += 8;
                if (!(q = fr_get_uvarint(q, end, &weight)) || !(q = fr_get_uvarint(q, end, &task)) ||
                    !(q = fr_get_uvarint(q, end, &region)) || !(q = fr_get_uvarint(q, end, &n)) || n == 0 ||
                    n > FR_MAX_STACK_FRAMES || !(q = fr_get_uvarint(q, end, &pcs[0])))
                        break;
                for (uint64_t i = 1; i < n && q; i++) {
                        q = fr_get_uvarint(q, end, &v);
                        pcs[i] = pcs[i - 1] + (uint64_t)fr_unzigzag(v);
                }
                if (!q)
                        break;
                uint64_t stack = fr__stacks_intern(st, pcs, (uint32_t)n);
                if (!stack) {
                        lost++;
                        continue;
                }
                /* Times never go back within a thread, nor before the generation
                 * (the TSCs of two CPUs may differ by a few ticks). */
                if (time < last)
                        time = last;
                if (time < start)
                        time = start;
                if (payload.len > FR_MAX_BATCH_BYTES - 5 * FR_VARINT_MAX) {
                        flush_batch(out, &payload, gen, t->tid, base, nbatches);
                }
                if (payload.len == 0)
                        base = last = time;
                fr_buf_put_uvarint(&payload, time - last);
                fr_buf_put_uvarint(&payload, weight ? weight : 1);
                fr_buf_put_uvarint(&payload, task);
                fr_buf_put_uvarint(&payload, region);
                fr_buf_put_uvarint(&payload, stack);
                if (region)
                        fr__name_mark((uint32_t)region, gen);
                last = time;
                (*ret_samples)++;
        }
        if (lost) {
                /* The loss, where it happened: after the last sample kept. An
                 * entry with stack id 0 counts `weight` lost samples. */
                if (payload.len == 0)
                        base = last = last ? last : start;
                fr_buf_put_uvarint(&payload, 0);
                fr_buf_put_uvarint(&payload, lost);
                fr_buf_put_uvarint(&payload, 0);
                fr_buf_put_uvarint(&payload, 0);
                fr_buf_put_uvarint(&payload, 0);
                *ret_lost += lost;
        }
        flush_batch(out, &payload, gen, t->tid, base, nbatches);
        fr_buf_free(&payload);
        release_idle(s, p);
        s->pos[p] = 0;
        return last;
}
