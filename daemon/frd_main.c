/* flightrecd: the flightrec daemon. One libevent loop serves agents and
 * flightrecctl on one Unix socket (docs/daemon.md), streams snapshots from
 * agents into <stem>.trace.lz4 and hands them to worker threads that write
 * <stem>.pb.gz and rename both into place. This file: main (arguments,
 * configuration, events, the loop, shutdown), signals and reload.
 *
 * usage: flightrecd [--config FILE] [--socket PATH] [--output-dir DIR] */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "frd.h"

static void on_sigterm(evutil_socket_t sig, short what, void *arg) {
        (void)what;
        (void)arg;
        if (D.stopping) {
                frd_log(FRD_WARN, "second %s: exiting now", strsignal((int)sig));
                event_base_loopexit(D.base, NULL);
                return;
        }
        D.stopping = true;
        sd_notify(0, "STOPPING=1");
        /* The snapshots in progress keep their trace and profile; their
         * timelines (an export of a big trace takes seconds) are given up. */
        frd_output_cancel_timelines();
        unsigned n = 0;
        for (struct frd_snap *s = D.snaps; s; s = s->next)
                n++;
        frd_log(FRD_NOTICE, "%s: stopping%s", strsignal((int)sig),
               n ? " after the snapshots in progress" : "");
        if (D.listen_ev)
                event_del(D.listen_ev);
        evtimer_del(D.accept_pause);
        frd_notify_status();
        frd_maybe_exit();
}

static void on_sigusr1(evutil_socket_t sig, short what, void *arg) {
        (void)sig;
        (void)what;
        (void)arg;
        if (D.stopping)
                return;
        char why[512];
        struct frd_trigger_req r = {.name = "default", .reason = "SIGUSR1", .source = "SIGUSR1"};
        frd_trigger_request(&r, why, sizeof why); /* every agent, unless [trigger default] says */
}

static int prepare_output(const struct frd_config *c, char *err, size_t errlen) {
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

static void apply_overrides(struct frd_config *c) {
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
        struct frd_config c;
        char err[1024];
        gid_t gid = (gid_t)-1;
        int r = frd_config_load(D.config_path, D.config_explicit, &c, err, sizeof err);
        if (r == 0) {
                apply_overrides(&c);
                r = prepare_output(&c, err, sizeof err);
        }
        if (r == 0 && frd_resolve_group(c.output_group, &gid) < 0) {
                snprintf(err, sizeof err, "no group named '%s'", c.output_group);
                r = -EINVAL;
        }
        if (r < 0) {
                frd_log(FRD_ERR, "reload refused, the previous configuration stays in force: %s",
                       err);
        } else {
                if (strcmp(c.socket_path, D.cfg.socket_path) || c.socket_mode != D.cfg.socket_mode ||
                    strcmp(c.socket_group, D.cfg.socket_group) || c.workers != D.cfg.workers)
                        frd_log(FRD_WARN, "reload: socket, socket_mode, socket_group and workers "
                                        "take effect at the next start only");
                strcpy(c.socket_path, D.cfg.socket_path);
                c.socket_mode = D.cfg.socket_mode;
                strcpy(c.socket_group, D.cfg.socket_group);
                c.workers = D.cfg.workers;
                D.cfg = c;
                D.out_gid = gid;
                frd_output_set_inflight(D.cfg.max_inflight_bytes);
                frd_log(FRD_NOTICE, "configuration reloaded from %s", D.config_path);
                frd_trigger_reload();
                frd_retention(D.cfg.output_dir, D.cfg.max_total_bytes, D.cfg.max_files,
                             D.cfg.max_age_s);
        }
        sd_notify(0, "READY=1");
        frd_notify_status();
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
        frd_retention(D.cfg.output_dir, D.cfg.max_total_bytes, D.cfg.max_files, D.cfg.max_age_s);
}

static void usage(FILE *f) {
        fprintf(f, "usage: flightrecd [--config FILE] [--socket PATH] [--output-dir DIR]\n"
                   "  --config FILE      configuration (default %s)\n"
                   "  --socket PATH      listen here (default from the config, %s)\n"
                   "  --output-dir DIR   write snapshots here (default from the config, %s)\n"
                   "  --debug            log debug messages too\n"
                   "  -h, --help         show this help\n"
                   "  -V, --version      show the version\n"
                   "Runs in the foreground; signals: SIGUSR1 snapshots every agent, SIGHUP\n"
                   "reloads the configuration, SIGTERM stops after the snapshots in progress.\n"
                   "See flightrecd(8) and flightrecd.conf(5).\n",
                FRD_DEFAULT_CONFIG, FRD_DEFAULT_SOCKET, FRD_DEFAULT_OUTPUT);
}

/* parse_args - options into D. Returns -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, bool *ret_debug) {
        static const struct option longopts[] = {
                {"config", required_argument, NULL, 'c'},
                {"socket", required_argument, NULL, 's'},
                {"output-dir", required_argument, NULL, 'o'},
                {"debug", no_argument, NULL, 'd'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},
                {0},
        };
        D.config_path = FRD_DEFAULT_CONFIG;
        int opt;
        while ((opt = getopt_long(argc, argv, "c:s:o:dhV", longopts, NULL)) != -1) {
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
                        *ret_debug = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                case 'V':
                        printf("flightrecd %s\n", FR_VERSION);
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
        return -1;
}

/* load_config - the configuration, the overrides, the output directory. */
static int load_config(void) {
        char err[1024];
        int r = frd_config_load(D.config_path, D.config_explicit, &D.cfg, err, sizeof err);
        if (r < 0) {
                frd_log(FRD_ERR, "%s", err);
                return r;
        }
        apply_overrides(&D.cfg);
        if (D.opt_socket && D.opt_socket[0] != '/') {
                frd_log(FRD_ERR, "--socket %s: not an absolute path", D.opt_socket);
                return -EINVAL;
        }
        if ((r = prepare_output(&D.cfg, err, sizeof err)) < 0) {
                frd_log(FRD_ERR, "%s", err);
                return r;
        }
        if (frd_resolve_group(D.cfg.output_group, &D.out_gid) < 0) {
                frd_log(FRD_ERR, "output_group: no group named '%s'", D.cfg.output_group);
                return -ENOENT;
        }
        return 0;
}

static struct event *sig_usr1, *sig_hup, *sig_term, *sig_int;

/* add_events - the listener, signals, timers and the watchdog. */
static int add_events(void) {
        D.listen_ev = event_new(D.base, D.listen_fd, EV_READ | EV_PERSIST, frd_on_accept, NULL);
        sig_usr1 = evsignal_new(D.base, SIGUSR1, on_sigusr1, NULL);
        sig_hup = evsignal_new(D.base, SIGHUP, on_sighup, NULL);
        sig_term = evsignal_new(D.base, SIGTERM, on_sigterm, NULL);
        sig_int = evsignal_new(D.base, SIGINT, on_sigterm, NULL);
        D.retention_ev = event_new(D.base, -1, EV_PERSIST, on_retention, NULL);
        D.reaper = event_new(D.base, -1, 0, frd_reap, NULL);
        D.accept_pause = evtimer_new(D.base, frd_on_accept_pause, NULL);
        struct timeval ten_min = {600, 0};
        if (!D.listen_ev || !sig_usr1 || !sig_hup || !sig_term || !sig_int || !D.retention_ev ||
            !D.reaper || !D.accept_pause || event_add(D.listen_ev, NULL) < 0 ||
            event_add(sig_usr1, NULL) < 0 || event_add(sig_hup, NULL) < 0 ||
            event_add(sig_term, NULL) < 0 || event_add(sig_int, NULL) < 0 ||
            event_add(D.retention_ev, &ten_min) < 0) {
                frd_log(FRD_ERR, "libevent: cannot register events");
                return -ENOMEM;
        }
        if (sd_watchdog_enabled(0, &D.watchdog_usec) > 0) {
                D.watchdog_ev = event_new(D.base, -1, EV_PERSIST, on_watchdog, NULL);
                struct timeval half = {(time_t)(D.watchdog_usec / 2000000),
                                       (suseconds_t)(D.watchdog_usec / 2 % 1000000)};
                if (D.watchdog_ev)
                        event_add(D.watchdog_ev, &half);
                frd_log(FRD_INFO, "watchdog: pinging every %llu ms",
                        (unsigned long long)(D.watchdog_usec / 2000));
        }
        return 0;
}

/* start - the loop, a clean directory, the socket, workers and events. */
static int start(void) {
        char err[1024];
        signal(SIGPIPE, SIG_IGN);
        umask(027);
        D.base = event_base_new();
        if (!D.base) {
                frd_log(FRD_ERR, "libevent: cannot create the event base");
                return -ENOMEM;
        }
        /* Before the socket exists: whoever sees it sees a clean directory. */
        frd_output_clean_tmp(D.cfg.output_dir);
        if (frd_listen_open(err, sizeof err) < 0) {
                frd_log(FRD_ERR, "%s", err);
                return -EINVAL;
        }
        frd_pm_init(frd_snapshot_postmortem, frd_maybe_exit);
        frd_output_on_copied(frd_snapshot_copied);
        frd_output_set_inflight(D.cfg.max_inflight_bytes);
        int r = frd_output_start(D.base, D.cfg.workers, frd_snapshot_job_done);
        if (r < 0) {
                frd_log(FRD_ERR, "cannot start the worker threads: %s", strerror(-r));
                return r;
        }
        return add_events();
}

/* stop - after the loop. Agents are told nothing (they reconnect to the
 * next daemon). */
static void stop(void) {
        while (D.conns)
                frd_conn_close(D.conns);
        frd_reap(-1, 0, NULL);
        frd_trigger_stop();
        frd_hook_stop();
        frd_snapshot_abort_all();
        frd_output_stop();
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
}

/* Each agent holds three descriptors (socket, ring, pidfd) and each running
 * snapshot two more: a host's thousand agents need more than the usual soft
 * limit of 1024. The loop uses epoll, never select, so the hard limit is fine. */
static void raise_nofile(void) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        frd_log(FRD_WARN, "cannot raise the descriptor limit: %s", strerror(errno));
        }
}

int main(int argc, char **argv) {
        const char *js = getenv("JOURNAL_STREAM");
        bool debug = false;
        int status = parse_args(argc, argv, &debug);
        if (status >= 0)
                return status;
        frd_log_setup(js && *js, debug);
        raise_nofile();
        if (load_config() < 0 || start() < 0)
                return 1;
        frd_retention(D.cfg.output_dir, D.cfg.max_total_bytes, D.cfg.max_files, D.cfg.max_age_s);
        frd_log(FRD_NOTICE, "%s listening on %s, writing to %s", FRD_DAEMON_NAME,
                D.socket_activated ? "the socket passed by systemd" : D.cfg.socket_path,
                D.cfg.output_dir);
        sd_notify(0, "READY=1");
        frd_notify_status();
        event_base_dispatch(D.base);
        stop();
        frd_log(FRD_NOTICE, "stopped (%llu snapshots written, %llu failed)",
                (unsigned long long)D.written, (unsigned long long)D.failed);
        return 0;
}
