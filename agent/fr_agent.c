/* Starting and stopping the recorder: settings from struct fr_config or the
 * environment (validated), the LD_PRELOAD constructor, and fork. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fr_client.h"
#include "fr_internal.h"
#include "fr_size.h"
#include "fr_unwind.h"
#include "pm_ring.h"

struct fr_agent_config fr__cfg;
FR_EVERY_PROCESS_DATA _Atomic int fr__running;
char fr__comm[FR_MAX_COMM_BYTES];
char fr__exe[FR_MAX_PATH_BYTES];

FR_EVERY_PROCESS_DATA static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static bool restart_after_fork = true;
static unsigned restart_delay_ms; /* autostarted: a fork child defers its start too */

/* With FLIGHTREC_DEBUG, a copy of stderr taken at start: programs such as xz
 * close stderr before exit, when the run's figures are written. */
static int log_fd = STDERR_FILENO;

void fr__log_error(const char *fmt, ...) {
        char line[512];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(line, sizeof line - 1, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        if ((size_t)n > sizeof line - 2)
                n = sizeof line - 2;
        line[n++] = '\n';
        (void)!write(log_fd, "flightrec: ", 11);
        (void)!write(log_fd, line, (size_t)n);
}

static int env_number(const char *name, uint64_t min, uint64_t max, uint64_t dflt, uint64_t *ret) {
        const char *s = fr__getenv(name);
        if (!s) {
                *ret = dflt;
                return 0;
        }
        int r = fr_parse_size(s, 0, min, max, ret);
        if (r < 0)
                fr__log_error("%s='%s' is not a number in %llu..%llu; not starting", name, s,
                              (unsigned long long)min, (unsigned long long)max);
        return r;
}

static int env_string(const char *name, const char *dflt, char *dst, size_t len) {
        const char *s = fr__getenv(name);
        if (!s)
                s = dflt;
        if (!*s || strlen(s) >= len) {
                fr__log_error("%s='%s' is empty or longer than %zu bytes; not starting", name, s,
                              len - 1);
                return -EINVAL;
        }
        strcpy(dst, s);
        return 0;
}

static int load_config(const struct fr_config *c, struct fr_agent_config *ret) {
        uint64_t hz, period, gens, bytes, block_ms, min_age;
        int r = 0;
        r |= env_number("FLIGHTREC_BLOCK_MS", 0, 3600000, 10, &block_ms);
        if (c && c->hz)
                hz = c->hz;
        else
                r |= env_number("FLIGHTREC_HZ", 0, 10000, 100, &hz);
        if (c && c->period_ms)
                period = c->period_ms;
        else
                r |= env_number("FLIGHTREC_PERIOD_MS", 1, 3600000, 1000, &period);
        if (c && c->generations)
                gens = c->generations;
        else
                r |= env_number("FLIGHTREC_GENERATIONS", 1, 100000, 10, &gens);
        if (c && c->max_bytes)
                bytes = c->max_bytes;
        else
                r |= env_number("FLIGHTREC_MAX_BYTES", 1u << 20, 1ull << 36, 64u << 20, &bytes);
        if (c && c->min_age_ms)
                min_age = c->min_age_ms;
        else
                r |= env_number("FLIGHTREC_MIN_AGE_MS", 0, 86400000, 0, &min_age);
        if (c && c->socket_path)
                r |= env_string("", c->socket_path, ret->socket_path, sizeof ret->socket_path);
        else
                r |= env_string("FLIGHTREC_SOCKET",
                                fr__choice.socket_path[0] ? fr__choice.socket_path
                                                          : "/run/flightrec/agent.sock",
                                ret->socket_path, sizeof ret->socket_path);
        if (c && c->dir)
                r |= env_string("", c->dir, ret->dir, sizeof ret->dir);
        else
                r |= env_string("FLIGHTREC_DIR", "/var/tmp/flightrec", ret->dir, sizeof ret->dir);
        if (r)
                return -EINVAL;
        if (c && (hz > 10000 || period < 1 || bytes < (1u << 20) || min_age > 86400000)) {
                fr__log_error("fr_config out of range (hz <= 10000, period_ms >= 1, max_bytes >= 1 MiB, "
                              "min_age_ms <= 1 day)");
                return -EINVAL;
        }
        const char *fork_mode = fr__getenv("FLIGHTREC_FORK");
        if (fork_mode && strcmp(fork_mode, "restart") && strcmp(fork_mode, "off")) {
                fr__log_error("FLIGHTREC_FORK='%s' is neither 'restart' nor 'off'; not starting",
                              fork_mode);
                return -EINVAL;
        }
        restart_after_fork = !fork_mode || strcmp(fork_mode, "off") != 0;
        const char *sampler = fr__getenv("FLIGHTREC_SAMPLER");
        if (sampler && strcmp(sampler, "auto") && strcmp(sampler, "timer")) {
                fr__log_error("FLIGHTREC_SAMPLER='%s' is neither 'auto' nor 'timer'; not starting",
                              sampler);
                return -EINVAL;
        }
        ret->force_timer = sampler && strcmp(sampler, "timer") == 0;
        const char *sec = getenv("FLIGHTREC_SECCOMP");
        if (sec && strcmp(sec, "timer") && strcmp(sec, "off")) {
                fr__log_error("FLIGHTREC_SECCOMP='%s' is neither 'timer' nor 'off'; not starting", sec);
                return -EINVAL;
        }
        ret->seccomp_off = sec && strcmp(sec, "off") == 0;
        if (fr__unwind_parse(getenv("FLIGHTREC_UNWIND"), &ret->unwind) < 0)
                return -EINVAL;
        ret->hz = (unsigned)hz;
        ret->block_ms = (unsigned)block_ms;
        ret->period_ms = (unsigned)period;
        ret->generations = (unsigned)gens;
        ret->max_bytes = (size_t)bytes;
        ret->min_age_ms = (unsigned)min_age;
        ret->sampling_off = c && c->sampling_off;
        return 0;
}

static void read_identity(void) {
        if (fr__read_file("/proc/self/comm", fr__comm, sizeof fr__comm) < 0)
                fr__comm[0] = '\0';
        fr__comm[strcspn(fr__comm, "\n")] = '\0';
        ssize_t n = readlink("/proc/self/exe", fr__exe, sizeof fr__exe - 1);
        fr__exe[n > 0 ? n : 0] = '\0';
}

static void atfork_child(void);

/* resolve_real_functions - once the process is to record (chosen at load, or
 * fr_start): from then on our wrappers never look a function up. */
static void resolve_real_functions(void) {
        static atomic_bool done;
        if (atomic_exchange(&done, true))
                return;
        fr__wait_resolve();
        fr__exit_resolve();
}

static int start_locked(const struct fr_agent_config *cfg) {
        static bool once;
        resolve_real_functions();
        if (!once) {
                int r = pthread_atfork(NULL, NULL, atfork_child);
                if (r)
                        return -r;
                once = true;
        }
        fr__cfg = *cfg;
        if (cfg->seccomp_off && fr__seccomp_filtered(true)) {
                fr__log_error("under a seccomp filter and FLIGHTREC_SECCOMP=off: not starting");
                return -EPERM;
        }
        if (fr__getenv("FLIGHTREC_DEBUG") && log_fd == STDERR_FILENO) {
                /* Our own copy, out of the low numbers: the debug lines
                 * survive a program that closes or reuses its stderr. */
                int fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
                if (fd >= 0)
                        log_fd = fr__fd_move_high(fd);
        }
        read_identity();
        fr__clock_init();
        int r = fr__names_init();
        if (r < 0)
                return r;
        r = fr__pool_init(cfg->max_bytes);
        if (r < 0)
                return r;
        fr__ring_init(cfg->generations, cfg->max_bytes, cfg->min_age_ms);
        if (cfg->hz && !cfg->sampling_off)
                fr__unwind_init(cfg->unwind); /* tables before the first sample */
        r = fr__sampler_init(cfg->hz);
        if (r < 0) {
                fr__pool_destroy();
                return r;
        }
        /* Threads that exist already (this one among them) are sampled from
         * the first generation on. */
        fr__sampler_rescan(0);
        r = fr__advancer_start();
        if (r < 0) {
                fr__sampler_disarm_all();
                fr__pool_destroy();
                return r;
        }
        atomic_store(&fr__running, 1);
        fr__crash_init(); /* after the ring exists: a crash from now on is recorded */
        /* The starting thread (the main thread under LD_PRELOAD without a
         * start delay) records its own waits: registered now, not only at
         * its first annotation. Not the deferred start's own thread. */
        if (!fr__thread_is_internal(gettid()))
                fr__thread_self();
        (void)fr__runtime_detect(); /* a sanitizer runtime: no adoption at waits (fr_wait.c) */
        fr__wait_set((uint64_t)cfg->block_ms * 1000000u);
        r = fr__client_start(); /* the daemon connection; recording goes on without it */
        if (r < 0)
                fr__log_error("no daemon client thread: %s", strerror(-r));
        return 0;
}

int fr__start_config(const struct fr_agent_config *cfg) {
        pthread_mutex_lock(&start_lock);
        int r = atomic_load(&fr__running) ? -EALREADY : start_locked(cfg);
        pthread_mutex_unlock(&start_lock);
        return r;
}

int fr_start(const struct fr_config *c) {
        struct fr_agent_config cfg = {0};
        int r = load_config(c, &cfg);
        if (r < 0)
                return r;
        fr__lazy_cancel(); /* the application's own start comes first */
        restart_delay_ms = 0;
        return fr__start_config(&cfg);
}

void fr_stop(void) {
        fr__lazy_cancel();
        pthread_mutex_lock(&start_lock);
        if (atomic_load(&fr__running)) {
                fr__pm_mark(FR_PM_CLOSED_EXIT); /* a clean stop: no post-mortem snapshot */
                fr__wait_set(0); /* waits under way write no event (generation 0) */
                fr__client_stop(); /* first: it may be writing a snapshot */
                fr__sampler_disarm_all();
                fr__advancer_stop();
                if (fr__getenv("FLIGHTREC_DEBUG")) {
                        struct fr_stats st;
                        fr__advancer_stats(&st);
                        fr__sampler_counts(&st);
                        fr__log_error("stop: %u threads on perf events, %u on CPU timers (budget "
                                      "%u descriptors), %llu re-armed; %llu identity checks in "
                                      "%llu us", st.threads_perf, st.threads_timer, st.fd_budget,
                                      (unsigned long long)st.sampler_rearms,
                                      (unsigned long long)st.fd_checks,
                                      (unsigned long long)(st.fd_check_ns / 1000));
                        fr__sampler_debug_report(&st);
                        fr__log_error("stop: sampler %u at %u Hz: %llu samples taken, %llu kept",
                                      st.sampler, st.hz, (unsigned long long)fr__samples_taken(),
                                      (unsigned long long)st.samples);
                        fr__log_error("stop: %llu generations (%llu dropped), lost %llu events, "
                                      "%llu samples, %llu region ends",
                                      (unsigned long long)st.generations,
                                      (unsigned long long)st.lost_generations,
                                      (unsigned long long)st.lost_events,
                                      (unsigned long long)st.lost_samples,
                                      (unsigned long long)st.lost_regions);
                }
                atomic_store(&fr__running, 0);
                fr__unwind_shutdown();
                fr__ring_destroy();
                fr__threads_destroy();
                fr__pool_destroy();
        }
        pthread_mutex_unlock(&start_lock);
}

/* In the child of fork: only the forking thread exists; every lock and list
 * of the parent's recorder may be mid-update. Drop it all without reading it
 * and, unless FLIGHTREC_FORK=off, start a clean recorder. */
static void atfork_child(void) {
        pthread_mutex_init(&start_lock, NULL);
        if (!atomic_load(&fr__running)) {
                int r = restart_after_fork ? fr__lazy_after_fork() : (fr__lazy_cancel(), 0);
                if (r < 0)
                        fr__log_error("deferred start after fork failed: %s", strerror(-r));
                return;
        }
        atomic_store(&fr__running, 0);
        fr__wait_set(0);
        fr__wait_after_fork();
        fr__client_forget();
        fr__sampler_forget();
        fr__advancer_forget();
        fr__thread_forget_self();
        fr__pool_destroy();
        fr__ring_init(fr__cfg.generations, fr__cfg.max_bytes, fr__cfg.min_age_ms); /* parent's list leaks */
        if (restart_after_fork) {
                struct fr_agent_config cfg = fr__cfg;
                int r = restart_delay_ms ? fr__lazy_start(&cfg, restart_delay_ms)
                                           : start_locked(&cfg);
                if (r < 0)
                        fr__log_error("restart after fork failed: %s", strerror(-r));
        }
}

int fr_get_stats(struct fr_stats *ret) {
        pthread_mutex_lock(&start_lock);
        int r = atomic_load(&fr__running) ? 0 : -EINVAL;
        if (r == 0) {
                fr__advancer_stats(ret);
                ret->samples_taken = fr__samples_taken();
                fr__sampler_counts(ret);
                ret->min_age_cuts = fr__ring_age_cuts(NULL, NULL);
        }
        pthread_mutex_unlock(&start_lock);
        return r;
}

/* exit() is a clean stop too: tell the daemon, through the ring, that the
 * end of this connection is no death. Not fr_stop: other threads may still be
 * running, and an exit path must not wait on them. A _exit() or a fatal
 * signal skips this, and the daemon writes a post-mortem snapshot. */
__attribute__((destructor)) FR_EVERY_PROCESS static void fr_at_exit(void) {
        fr__lazy_cancel(); /* no start while the process ends */
        if (pthread_mutex_trylock(&start_lock) != 0)
                return;
        if (atomic_load(&fr__running) && !fr__crash_exiting()) {
                fr__pm_mark(FR_PM_CLOSED_EXIT);
                if (fr__getenv("FLIGHTREC_DEBUG")) { /* the unwinder's figures of the whole run */
                        struct fr_stats st;
                        fr__advancer_stats(&st);
                        fr__sampler_debug_report(&st);
                }
        }
        pthread_mutex_unlock(&start_lock);
}

/* LD_PRELOAD or /etc/ld.so.preload: choose first (fr_select.c), at no cost
 * for a process that is not chosen; stay out of Go; then start once the
 * process has lived FLIGHTREC_START_DELAY_MS (fr_lazy.c), or at once with 0. */
__attribute__((constructor)) static void fr_autostart(void) {
        if (fr__choose(&fr__choice) < 0 || !fr__choice.chosen)
                return;
        if (fr__runtime_detect() & FR_RUNTIME_GO) {
                fr__choice.chosen = false;
                if (fr__getenv("FLIGHTREC_DEBUG"))
                        fr__log_error("Go runtime in %s: staying off (it owns SIGPROF and its threads)",
                                      fr__runtime_go_object());
                return;
        }
        resolve_real_functions(); /* before the delay: no lookup in a handler */
        struct fr_agent_config cfg = {0};
        if (load_config(NULL, &cfg) < 0)
                return; /* reported */
        int r;
        if (fr__choice.start_delay_ms) {
                restart_delay_ms = fr__choice.start_delay_ms;
                r = fr__lazy_start(&cfg, fr__choice.start_delay_ms);
        } else {
                r = fr__start_config(&cfg);
        }
        if (r < 0 && r != -EINVAL)
                fr__log_error("not started: %s", strerror(-r));
}
