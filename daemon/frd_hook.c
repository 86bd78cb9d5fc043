/* The on_snapshot hook (issue 15; docs/daemon.md, "The on_snapshot hook"):
 * once a snapshot's files are in place, the configured command runs in a
 * child process, under the daemon's own user and sandbox, with the paths,
 * pid, comm, reason and trigger name in its environment and as its last
 * arguments. The loop never waits for it: posix_spawn (no fork of a threaded
 * daemon's memory), then a pidfd watched by libevent (or, without pidfd, a
 * waitpid poll every 100 ms); at on_snapshot_timeout its process group is
 * killed. Failures are logged and counted (flightrecctl status); a hook
 * never holds up or loses a snapshot. Without on_snapshot_shell the command
 * is split into words here (quotes '...' "..." and backslash), no shell. */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frd.h"

extern char **environ;

#define MAX_WORDS 256

struct hook {
        struct hook *next;
        pid_t pid;
        int pidfd;                /* -1: polled */
        struct event *ev, *timeout;
        bool timed_out;
        char trace[4300];
};

static struct {
        struct hook *running;
        unsigned nrunning;
        uint64_t run, failed;
} H;

/* split - cmd into words (quotes, backslash); ret_v points into buf. */
static int split(const char *cmd, char *buf, size_t buflen, char **v, size_t max, size_t *ret_n) {
        size_t n = 0, o = 0;
        const char *p = cmd;
        for (;;) {
                while (*p == ' ' || *p == '\t' || *p == '\n')
                        p++;
                if (!*p)
                        break;
                if (n + 1 >= max)
                        return -E2BIG;
                v[n++] = buf + o;
                char q = 0;
                while (*p && (q || (*p != ' ' && *p != '\t' && *p != '\n'))) {
                        if (o + 2 >= buflen)
                                return -E2BIG;
                        if (q && *p == q) {
                                q = 0;
                                p++;
                        } else if (!q && (*p == '\'' || *p == '"')) {
                                q = *p++;
                        } else if (*p == '\\' && q != '\'' && p[1]) {
                                buf[o++] = p[1];
                                p += 2;
                        } else {
                                buf[o++] = *p++;
                        }
                }
                if (q)
                        return -EINVAL; /* an unclosed quote */
                buf[o++] = '\0';
        }
        *ret_n = n;
        return n ? 0 : -EINVAL;
}

static void hook_free(struct hook *h) {
        for (struct hook **p = &H.running; *p; p = &(*p)->next)
                if (*p == h) {
                        *p = h->next;
                        break;
                }
        H.nrunning--;
        if (h->ev)
                event_free(h->ev);
        if (h->timeout)
                event_free(h->timeout);
        if (h->pidfd >= 0)
                close(h->pidfd);
        free(h);
}

/* reap - the child ended (or may have, when polled): account for it. */
static void reap(struct hook *h) {
        int st;
        pid_t r = waitpid(h->pid, &st, WNOHANG);
        if (r == 0)
                return; /* polled, still running */
        if (r < 0) {
                frd_log(FRD_WARN, "on_snapshot hook [%d] for %s: waitpid: %s", (int)h->pid,
                        h->trace, strerror(errno));
                H.failed++;
        } else if (h->timed_out) {
                /* counted when killed */
        } else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
                frd_log(FRD_INFO, "on_snapshot hook [%d] for %s done", (int)h->pid, h->trace);
        } else {
                H.failed++;
                if (WIFEXITED(st))
                        frd_log(FRD_WARN, "on_snapshot hook [%d] for %s failed: exit status %d",
                                (int)h->pid, h->trace, WEXITSTATUS(st));
                else
                        frd_log(FRD_WARN, "on_snapshot hook [%d] for %s failed: killed by %s",
                                (int)h->pid, h->trace, strsignal(WTERMSIG(st)));
        }
        hook_free(h);
}

static void on_child(evutil_socket_t fd, short what, void *arg) {
        (void)fd;
        (void)what;
        reap(arg);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg) {
        (void)fd;
        (void)what;
        struct hook *h = arg;
        if (h->timed_out)
                return;
        h->timed_out = true;
        H.failed++;
        frd_log(FRD_WARN, "on_snapshot hook [%d] for %s: still running after %u ms, killed",
                (int)h->pid, h->trace, D.cfg.on_snapshot_timeout_ms);
        kill(-h->pid, SIGKILL); /* its process group: what it started too */
        kill(h->pid, SIGKILL);
}

static int set_env(char **envp, size_t *n, const char *key, const char *val) {
        size_t len = strlen(key) + strlen(val) + 2;
        char *s = malloc(len);
        if (!s)
                return -ENOMEM;
        snprintf(s, len, "%s=%s", key, val);
        envp[(*n)++] = s;
        return 0;
}

void frd_hook_run(const struct frd_job *j, const char *reason, const char *trigger) {
        if (!D.cfg.on_snapshot[0])
                return;
        static char words[sizeof D.cfg.on_snapshot + 16];
        char *argv[MAX_WORDS + 8];
        size_t argc = 0;
        char pid[16];
        snprintf(pid, sizeof pid, "%d", (int)j->pid);
        const char *trig = trigger && trigger[0] ? trigger : "default";
        if (D.cfg.on_snapshot_shell) {
                argv[argc++] = "/bin/sh";
                argv[argc++] = "-c";
                argv[argc++] = (char *)D.cfg.on_snapshot;
                argv[argc++] = "flightrec-hook"; /* $0 */
        } else if (split(D.cfg.on_snapshot, words, sizeof words, argv, MAX_WORDS, &argc) < 0) {
                H.failed++;
                frd_log(FRD_ERR, "on_snapshot = %s: not a command (empty, an unclosed quote or "
                                 "too many words)", D.cfg.on_snapshot);
                return;
        }
        /* The last arguments: trace, pprof, pid, comm, trigger, reason. */
        argv[argc++] = (char *)j->trace_path;
        argv[argc++] = (char *)j->pprof_path;
        argv[argc++] = pid;
        argv[argc++] = (char *)j->comm;
        argv[argc++] = (char *)trig;
        argv[argc++] = (char *)reason;
        argv[argc] = NULL;

        size_t nenv = 0;
        while (environ && environ[nenv])
                nenv++;
        char **envp = calloc(nenv + 8, sizeof *envp);
        size_t ne = 0, mine = 0;
        int r = envp ? 0 : -ENOMEM;
        static const char *const ours[] = {"FLIGHTREC_SNAPSHOT_TRACE=", "FLIGHTREC_SNAPSHOT_PPROF=",
                                           "FLIGHTREC_SNAPSHOT_PID=", "FLIGHTREC_SNAPSHOT_COMM=",
                                           "FLIGHTREC_SNAPSHOT_REASON=",
                                           "FLIGHTREC_SNAPSHOT_TRIGGER="};
        for (size_t i = 0; r == 0 && i < nenv; i++) {
                bool inherited = true; /* the daemon's own copies are replaced */
                for (size_t k = 0; k < sizeof ours / sizeof *ours; k++)
                        inherited &= strncmp(environ[i], ours[k], strlen(ours[k])) != 0;
                if (inherited)
                        envp[ne++] = environ[i];
        }
        mine = ne;
        if (r == 0)
                r = set_env(envp, &ne, "FLIGHTREC_SNAPSHOT_TRACE", j->trace_path);
        if (r == 0)
                r = set_env(envp, &ne, "FLIGHTREC_SNAPSHOT_PPROF", j->pprof_path);
        if (r == 0)
                r = set_env(envp, &ne, "FLIGHTREC_SNAPSHOT_PID", pid);
        if (r == 0)
                r = set_env(envp, &ne, "FLIGHTREC_SNAPSHOT_COMM", j->comm);
        if (r == 0)
                r = set_env(envp, &ne, "FLIGHTREC_SNAPSHOT_REASON", reason);
        if (r == 0)
                r = set_env(envp, &ne, "FLIGHTREC_SNAPSHOT_TRIGGER", trig);

        struct hook *h = r == 0 ? calloc(1, sizeof *h) : NULL;
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t at;
        bool fa_ok = false, at_ok = false;
        if (h) {
                h->pidfd = -1;
                snprintf(h->trace, sizeof h->trace, "%s", j->trace_path);
                fa_ok = posix_spawn_file_actions_init(&fa) == 0;
                at_ok = posix_spawnattr_init(&at) == 0;
        }
        if (fa_ok && at_ok) {
                posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
                sigset_t none, dfl;
                sigemptyset(&none);
                sigemptyset(&dfl);
                sigaddset(&dfl, SIGPIPE);
                sigaddset(&dfl, SIGUSR1);
                sigaddset(&dfl, SIGHUP);
                sigaddset(&dfl, SIGTERM);
                sigaddset(&dfl, SIGINT);
                sigaddset(&dfl, SIGCHLD);
                posix_spawnattr_setsigmask(&at, &none);
                posix_spawnattr_setsigdefault(&at, &dfl);
                posix_spawnattr_setpgroup(&at, 0); /* its own group: killed whole at the timeout */
                posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                                      POSIX_SPAWN_SETPGROUP);
                r = -posix_spawnp(&h->pid, argv[0], &fa, &at, argv, envp);
        } else {
                r = -ENOMEM;
        }
        if (fa_ok)
                posix_spawn_file_actions_destroy(&fa);
        if (at_ok)
                posix_spawnattr_destroy(&at);
        for (size_t i = mine; envp && i < ne; i++)
                free(envp[i]);
        free(envp);
        H.run++;
        if (r < 0) {
                H.failed++;
                frd_log(FRD_ERR, "on_snapshot hook for %s: cannot run %s: %s", j->trace_path,
                        argv[0], strerror(-r));
                free(h);
                return;
        }
        h->next = H.running;
        H.running = h;
        H.nrunning++;
#ifdef SYS_pidfd_open
        h->pidfd = (int)syscall(SYS_pidfd_open, h->pid, 0);
#endif
        struct timeval poll = {0, 100000};
        if (h->pidfd >= 0)
                h->ev = event_new(D.base, h->pidfd, EV_READ | EV_PERSIST, on_child, h);
        else
                h->ev = event_new(D.base, -1, EV_PERSIST, on_child, h);
        h->timeout = evtimer_new(D.base, on_timeout, h);
        unsigned ms = D.cfg.on_snapshot_timeout_ms;
        struct timeval tv = {ms / 1000, (long)(ms % 1000) * 1000};
        if (!h->ev || !h->timeout || event_add(h->ev, h->pidfd >= 0 ? NULL : &poll) < 0 ||
            evtimer_add(h->timeout, &tv) < 0) {
                /* Cannot watch it: no zombie left behind, kill and wait now. */
                frd_log(FRD_ERR, "on_snapshot hook [%d]: cannot watch it, killed", (int)h->pid);
                kill(-h->pid, SIGKILL);
                kill(h->pid, SIGKILL);
                waitpid(h->pid, NULL, 0);
                H.failed++;
                hook_free(h);
                return;
        }
        frd_log(FRD_INFO, "on_snapshot hook [%d] started for %s (trigger %s)", (int)h->pid,
                j->trace_path, trig);
}

void frd_hook_counts(uint64_t *ret_run, uint64_t *ret_failed, unsigned *ret_running) {
        *ret_run = H.run;
        *ret_failed = H.failed;
        *ret_running = H.nrunning;
}

void frd_hook_stop(void) {
        while (H.running) {
                struct hook *h = H.running;
                kill(-h->pid, SIGKILL);
                kill(h->pid, SIGKILL);
                waitpid(h->pid, NULL, 0);
                hook_free(h);
        }
}
