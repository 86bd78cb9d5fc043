/* flightrecctl status / trigger: requests to flightrecd over its socket
 * (wire.proto: CtlStatus -> StatusReply, CtlTrigger -> TriggerReply). */
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "wire.h"

static int connect_daemon(const char *path) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof a.sun_path) {
                fprintf(stderr, "flightrecctl: socket path %s is too long\n", path);
                return -1;
        }
        strcpy(a.sun_path, path);
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
                fprintf(stderr, "flightrecctl: cannot connect to flightrecd at %s: %s\n", path,
                        strerror(errno));
                if (s >= 0)
                        close(s);
                return -1;
        }
        return s;
}

/* Send f, wait (at most timeout_s) for one answer frame. */
static fr_frame *request(const char *path, const fr_frame *f, int timeout_s) {
        int s = connect_daemon(path);
        if (s < 0)
                return NULL;
        int r = fr_wire_send(s, f, -1);
        if (r < 0) {
                fprintf(stderr, "flightrecctl: sending to flightrecd: %s\n", strerror(-r));
                close(s);
                return NULL;
        }
        struct fr_wire_reader rd;
        fr_wire_reader_init(&rd, FR_WIRE_MAX_FRAME, 0);
        fr_frame *ans = NULL;
        struct timespec t0, t;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (;;) {
                char err[512];
                int k = fr_wire_reader_next(&rd, &ans, err, sizeof err);
                if (k > 0)
                        break;
                if (k < 0) {
                        fprintf(stderr, "flightrecctl: bad answer from flightrecd: %s\n", err);
                        break;
                }
                clock_gettime(CLOCK_MONOTONIC, &t);
                long left = (long)timeout_s * 1000 - ((t.tv_sec - t0.tv_sec) * 1000 +
                                                      (t.tv_nsec - t0.tv_nsec) / 1000000);
                struct pollfd p = {s, POLLIN, 0};
                if (left <= 0 || poll(&p, 1, (int)left) == 0) {
                        fprintf(stderr, "flightrecctl: no answer from flightrecd within %d s\n",
                                timeout_s);
                        break;
                }
                long n = fr_wire_reader_fill(&rd, s);
                if (n == -EINTR || n == -EAGAIN)
                        continue;
                if (n <= 0) {
                        fprintf(stderr, "flightrecctl: flightrecd closed the connection%s%s\n",
                                n < 0 ? ": " : "", n < 0 ? strerror((int)-n) : "");
                        break;
                }
        }
        fr_wire_reader_free(&rd);
        close(s);
        if (ans && ans->msg_case == FLIGHTREC__WIRE__FRAME__MSG_REFUSED) {
                fprintf(stderr, "flightrecctl: flightrecd refused: %s\n", ans->refused->reason);
                fr_wire_free(ans);
                return NULL;
        }
        return ans;
}

#define STATUS_USAGE "usage: flightrecctl [--socket PATH] status [--pid PID] [--comm GLOB] [--summary]\n"

struct comm_count {
        const char *comm;
        unsigned n;
};

static int by_count(const void *a, const void *b) {
        const struct comm_count *x = a, *y = b;
        return x->n != y->n ? (x->n < y->n ? 1 : -1) : strcmp(x->comm, y->comm);
}

/* One line that stays readable with a thousand agents: the counts by comm,
 * most first, the first 8 named. */
static void print_summary(const Flightrec__Wire__StatusReply *s) {
        struct comm_count *v = calloc(s->n_agents ? s->n_agents : 1, sizeof *v);
        size_t nv = 0, busy = 0, sampling = 0;
        if (!v)
                return;
        for (size_t i = 0; i < s->n_agents; i++) {
                const Flightrec__Wire__AgentInfo *a = s->agents[i];
                busy += a->snapshot_in_progress;
                sampling += a->sampler != 0;
                size_t k = 0;
                while (k < nv && strcmp(v[k].comm, a->comm))
                        k++;
                if (k == nv)
                        v[nv++] = (struct comm_count){a->comm, 0};
                v[k].n++;
        }
        qsort(v, nv, sizeof *v, by_count);
        printf("summary: %zu processes of %zu programs (by comm), %zu sampling, %zu snapshots in progress",
               s->n_agents, nv, sampling, busy);
        for (size_t k = 0; k < nv && k < 8; k++)
                printf("%s %s %u", k ? "," : ":", v[k].comm, v[k].n);
        if (nv > 8)
                printf(", ... %zu more", nv - 8);
        printf("\n");
        free(v);
}

int ctl_status(const struct ctl_options *opts, int argc, char **argv) {
        static const struct option longopts[] = {
                {"pid", required_argument, NULL, 'p'},
                {"comm", required_argument, NULL, 'c'},
                {"summary", no_argument, NULL, 's'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        unsigned long pid = 0;
        const char *comm = NULL;
        bool summary_only = false;
        int c;
        char *end;
        while ((c = getopt_long(argc, argv, "p:c:sh", longopts, NULL)) != -1) {
                switch (c) {
                case 'p':
                        pid = strtoul(optarg, &end, 10);
                        if (*end || !*optarg || pid == 0 || pid > 0x7fffffff) {
                                fprintf(stderr, "flightrecctl status: --pid %s: not a pid\n", optarg);
                                return CTL_EXIT_USAGE;
                        }
                        break;
                case 'c':
                        comm = optarg;
                        break;
                case 's':
                        summary_only = true;
                        break;
                case 'h':
                        printf(STATUS_USAGE
                               "Lists the agents connected to flightrecd: a line of counts, a summary by\n"
                               "comm, then one line per agent (only those of PID, or whose comm matches\n"
                               "the glob, with the filters; none with --summary).\n");
                        return 0;
                default:
                        fprintf(stderr, STATUS_USAGE);
                        return CTL_EXIT_USAGE;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "flightrecctl status: unexpected argument '%s'\n" STATUS_USAGE,
                        argv[optind]);
                return CTL_EXIT_USAGE;
        }
        Flightrec__Wire__CtlStatus m = FLIGHTREC__WIRE__CTL_STATUS__INIT;
        fr_frame f = FLIGHTREC__WIRE__FRAME__INIT;
        f.msg_case = FLIGHTREC__WIRE__FRAME__MSG_CTL_STATUS;
        f.ctl_status = &m;
        fr_frame *ans = request(opts->socket, &f, 10);
        if (!ans)
                return CTL_EXIT_FAILURE;
        if (ans->msg_case != FLIGHTREC__WIRE__FRAME__MSG_STATUS_REPLY) {
                fprintf(stderr, "flightrecctl: unexpected %s from flightrecd\n", fr_wire_name(ans));
                fr_wire_free(ans);
                return CTL_EXIT_FAILURE;
        }
        const Flightrec__Wire__StatusReply *s = ans->status_reply;
        printf("%s: %zu agent%s connected, %llu snapshots written, %llu failed, output in %s\n",
               s->daemon, s->n_agents, s->n_agents == 1 ? "" : "s",
               (unsigned long long)s->snapshots_written, (unsigned long long)s->snapshots_failed,
               s->output_dir);
        if (s->n_agents)
                print_summary(s);
        if (!summary_only)
                ctl_print_triggers(s);
        size_t shown = 0;
        for (size_t i = 0; i < s->n_agents && !summary_only; i++) {
                const Flightrec__Wire__AgentInfo *a = s->agents[i];
                if ((pid && a->pid != pid) || (comm && fnmatch(comm, a->comm, 0) != 0))
                        continue;
                if (shown++ == 0)
                        printf("%-8s %-16s %-20s %5s %10s %6s %-7s %7s  %s\n", "PID", "COMM",
                               "CONNECTED (UTC)", "GENS", "BYTES", "HZ", "SAMPLER", "PERIOD", "EXE");
                time_t t = (time_t)(a->connected_since_ns / 1000000000u);
                struct tm tm;
                char when[32];
                gmtime_r(&t, &tm);
                strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
                static const char *const samplers[] = {"off", "perf", "timer"};
                printf("%-8u %-16s %-20s %5llu %10llu %6u %-7s %5ums  %s%s\n", a->pid, a->comm,
                       when, (unsigned long long)a->generations, (unsigned long long)a->bytes, a->hz,
                       a->sampler < 3 ? samplers[a->sampler] : "?", a->period_ms, a->exe,
                       a->snapshot_in_progress ? " (snapshot in progress)" : "");
                static const char *const unwinds[] = {"fp", "auto", "dwarf"};
                const Flightrec__Wire__AgentStats *u = a->unwind_stats;
                if (a->sampler && u && u->unwind_walks)
                        printf("         unwind %s: %llu of %llu objects with tables (%llu KiB), %llu rejected; "
                               "%.1f%% of %llu stacks reach the thread root; handler p50 %.1f us, p99 %.1f us\n",
                               a->unwind < 3 ? unwinds[a->unwind] : "?", (unsigned long long)u->unwind_tables,
                               (unsigned long long)u->unwind_objects,
                               (unsigned long long)(u->unwind_table_bytes >> 10),
                               (unsigned long long)u->unwind_rejected,
                               100.0 * (double)u->unwind_root / (double)u->unwind_walks,
                               (unsigned long long)u->unwind_walks, (double)u->handler_p50_ns / 1000.0,
                               (double)u->handler_p99_ns / 1000.0);
        }
        int rc = 0;
        if ((pid || comm) && !summary_only) {
                char pids[32] = "";
                if (pid)
                        snprintf(pids, sizeof pids, " --pid %lu", pid);
                printf("%zu of %zu agents match%s%s%s\n", shown, s->n_agents, pids,
                       comm ? " --comm " : "", comm ? comm : "");
                rc = shown ? 0 : CTL_EXIT_FAILURE; /* scripts: "is PID connected?" */
        }
        fr_wire_free(ans);
        return rc;
}

int ctl_trigger(const struct ctl_options *opts, int argc, char **argv) {
        static const struct option longopts[] = {
                {"pid", required_argument, NULL, 'p'},
                {"reason", required_argument, NULL, 'r'},
                {"timeout", required_argument, NULL, 't'},
                {"name", required_argument, NULL, 'n'},
                {"after", required_argument, NULL, 'a'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        unsigned long pid = 0;
        const char *reason = "flightrecctl trigger", *name = NULL;
        bool has_after = false;
        unsigned after_ms = 0;
        int timeout = 120, c;
        char *end;
        while ((c = getopt_long(argc, argv, "p:r:t:n:a:h", longopts, NULL)) != -1) {
                switch (c) {
                case 'n':
                        name = optarg;
                        if (!*name || strlen(name) > FR_WIRE_MAX_TRIGGER_NAME) {
                                fprintf(stderr, "flightrecctl trigger: --name must be 1..%u bytes\n",
                                        FR_WIRE_MAX_TRIGGER_NAME);
                                return CTL_EXIT_USAGE;
                        }
                        break;
                case 'a':
                        if (ctl_parse_duration_ms(optarg, &after_ms) < 0) {
                                fprintf(stderr, "flightrecctl trigger: --after %s: not a duration "
                                                "(500ms, 2s, 1m; at most 1h)\n", optarg);
                                return CTL_EXIT_USAGE;
                        }
                        has_after = true;
                        break;
                case 'p':
                        pid = strtoul(optarg, &end, 10);
                        if (*end || !*optarg || pid == 0 || pid > 0x7fffffff) {
                                fprintf(stderr, "flightrecctl trigger: --pid %s: not a pid\n", optarg);
                                return CTL_EXIT_USAGE;
                        }
                        break;
                case 'r':
                        reason = optarg;
                        if (strlen(reason) > FR_WIRE_MAX_REASON) {
                                fprintf(stderr, "flightrecctl trigger: --reason longer than %u bytes\n",
                                        FR_WIRE_MAX_REASON);
                                return CTL_EXIT_USAGE;
                        }
                        break;
                case 't':
                        timeout = atoi(optarg);
                        if (timeout <= 0) {
                                fprintf(stderr, "flightrecctl trigger: --timeout %s: not a number of seconds\n",
                                        optarg);
                                return CTL_EXIT_USAGE;
                        }
                        break;
                case 'h':
                        printf("usage: flightrecctl [--socket PATH] trigger [--name NAME] [--after DURATION]\n"
                               "                                    [--pid PID] [--reason TEXT] [--timeout S]\n"
                               "Asks flightrecd for a snapshot of every connected agent (or of PID), waits\n"
                               "until the files are written and prints their paths, two per process.\n"
                               "--name fires the [trigger NAME] of flightrecd.conf instead (its after,\n"
                               "max_per_hour, cooldown and scope; \"default\" is the built-in one); --after\n"
                               "overrides its delay: the snapshot is taken that long after now. A refused\n"
                               "trigger (cooldown, max_per_hour) prints why and exits 1.\n");
                        return 0;
                default:
                        fprintf(stderr, "usage: flightrecctl [--socket PATH] trigger [--name NAME] [--after DURATION] [--pid PID] [--reason TEXT] [--timeout S]\n");
                        return CTL_EXIT_USAGE;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "flightrecctl trigger: unexpected argument '%s'\n", argv[optind]);
                return CTL_EXIT_USAGE;
        }
        char rs[FR_WIRE_MAX_REASON + 1];
        snprintf(rs, sizeof rs, "%s", reason);
        for (char *p = rs; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        *p = '?';
        Flightrec__Wire__CtlTrigger m = FLIGHTREC__WIRE__CTL_TRIGGER__INIT;
        m.pid = (uint32_t)pid;
        m.reason = rs;
        fr_frame f = FLIGHTREC__WIRE__FRAME__INIT;
        f.msg_case = FLIGHTREC__WIRE__FRAME__MSG_CTL_TRIGGER;
        f.ctl_trigger = &m;
        Flightrec__Wire__CtlNamedTrigger nm;
        if (name || has_after) {
                ctl_named_trigger_frame(&f, &nm, name, has_after, after_ms, (uint32_t)pid, rs);
                timeout += (int)(after_ms / 1000u);
        }
        fr_frame *ans = request(opts->socket, &f, timeout);
        if (!ans)
                return CTL_EXIT_FAILURE;
        if (ans->msg_case != FLIGHTREC__WIRE__FRAME__MSG_TRIGGER_REPLY) {
                fprintf(stderr, "flightrecctl: unexpected %s from flightrecd\n", fr_wire_name(ans));
                fr_wire_free(ans);
                return CTL_EXIT_FAILURE;
        }
        const Flightrec__Wire__TriggerReply *t = ans->trigger_reply;
        int rc = 0;
        if (t->error[0]) {
                fprintf(stderr, "flightrecctl: %s\n", t->error);
                rc = CTL_EXIT_FAILURE;
        }
        for (size_t i = 0; i < t->n_results; i++) {
                const Flightrec__Wire__SnapshotResult *s = t->results[i];
                if (s->error[0]) {
                        fprintf(stderr, "flightrecctl: snapshot of %s[%u] failed: %s\n", s->comm,
                                s->pid, s->error);
                        rc = CTL_EXIT_FAILURE;
                        continue;
                }
                printf("%s\n%s\n", s->trace_path, s->pprof_path);
                /* The off-CPU profile beside it, when the snapshot had waits. */
                size_t n = strlen(s->pprof_path);
                char off[4400];
                if (n > 6 && n < sizeof off - 16 && strcmp(s->pprof_path + n - 6, ".pb.gz") == 0) {
                        snprintf(off, sizeof off, "%.*s.offcpu.pb.gz", (int)(n - 6), s->pprof_path);
                        if (access(off, F_OK) == 0)
                                printf("%s\n", off);
                }
        }
        fr_wire_free(ans);
        return rc;
}
