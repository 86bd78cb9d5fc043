/* bench_spawn - process start-and-exit cost under different environments.
 * Runs one command under each variant in turn (A B C A B C ...: the VM's
 * speed drifts, so every round compares neighbours), times fork+exec to the
 * reaped exit (wall) and the child's CPU (user+sys from wait4), and prints
 * per variant the median, and the median of the paired differences against
 * the first variant; and the child's minor page faults (ru_minflt), which
 * do not depend on the machine's load (on these VMs a fault costs tens of
 * microseconds, so they explain most of a start-up's cost).
 *
 * usage: bench_spawn [-n ROUNDS] -v LABEL[:VAR=VAL[,VAR=VAL...]] ... -- CMD [ARG...]
 * A VAR with an empty value (VAR=) is removed from the child's environment. */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_VARIANTS 8
#define MAX_ROUNDS 100000

struct variant {
        const char *label;
        char **envp;
        double *wall_us, *cpu_us, *faults;
};

static double now_us(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static double median(const double *v, size_t n) {
        double *c = malloc(n * sizeof *c);
        if (!c)
                abort();
        memcpy(c, v, n * sizeof *c);
        qsort(c, n, sizeof *c, cmp_double);
        double m = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
        free(c);
        return m;
}

/* The parent's environment with the variant's settings applied. */
static char **make_env(char *spec) {
        size_t n = 0;
        while (environ[n])
                n++;
        char **e = calloc(n + 64, sizeof *e);
        if (!e)
                abort();
        memcpy(e, environ, n * sizeof *e);
        for (char *tok = strtok(spec, ","); tok; tok = strtok(NULL, ",")) {
                char *eq = strchr(tok, '=');
                if (!eq) {
                        fprintf(stderr, "bench_spawn: '%s' is not VAR=VAL\n", tok);
                        exit(2);
                }
                size_t klen = (size_t)(eq - tok) + 1;
                size_t j = 0;
                for (size_t i = 0; i < n; i++) /* drop the inherited one */
                        if (strncmp(e[i], tok, klen) != 0)
                                e[j++] = e[i];
                n = j;
                if (eq[1])
                        e[n++] = tok;
                e[n] = NULL;
        }
        return e;
}

int main(int argc, char **argv) {
        struct variant v[MAX_VARIANTS];
        size_t nv = 0, rounds = 200;
        int i = 1;
        for (; i < argc && strcmp(argv[i], "--"); i++) {
                if (!strcmp(argv[i], "-n") && i + 1 < argc) {
                        rounds = strtoul(argv[++i], NULL, 10);
                } else if (!strcmp(argv[i], "-v") && i + 1 < argc && nv < MAX_VARIANTS) {
                        char *spec = argv[++i];
                        char *colon = strchr(spec, ':');
                        if (colon)
                                *colon = '\0';
                        v[nv].label = spec;
                        char empty[] = "";
                        v[nv].envp = make_env(colon ? colon + 1 : empty);
                        nv++;
                } else {
                        fprintf(stderr, "bench_spawn: bad argument %s\n", argv[i]);
                        return 2;
                }
        }
        if (i + 1 >= argc || nv == 0 || rounds < 1 || rounds > MAX_ROUNDS) {
                fprintf(stderr, "usage: bench_spawn [-n ROUNDS] -v LABEL[:VAR=VAL,...] ... -- CMD [ARG...]\n");
                return 2;
        }
        char **cmd = argv + i + 1;
        for (size_t k = 0; k < nv; k++) {
                v[k].wall_us = calloc(rounds, sizeof(double));
                v[k].cpu_us = calloc(rounds, sizeof(double));
                v[k].faults = calloc(rounds, sizeof(double));
        }
        for (size_t r = 0; r <= rounds; r++) { /* round 0 warms up */
                for (size_t k = 0; k < nv; k++) {
                        pid_t pid;
                        double t0 = now_us();
                        int e = posix_spawn(&pid, cmd[0], NULL, NULL, cmd, v[k].envp);
                        if (e) {
                                fprintf(stderr, "bench_spawn: %s: %s\n", cmd[0], strerror(e));
                                return 1;
                        }
                        int st;
                        struct rusage ru;
                        while (wait4(pid, &st, 0, &ru) < 0 && errno == EINTR)
                                ;
                        double t1 = now_us();
                        if (r == 0)
                                continue;
                        v[k].wall_us[r - 1] = t1 - t0;
                        v[k].cpu_us[r - 1] = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
                                             (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
                        v[k].faults[r - 1] = (double)ru.ru_minflt;
                }
        }
        double *d = calloc(rounds, sizeof(double)), *dc = calloc(rounds, sizeof(double));
        printf("%zu rounds, variants interleaved; wall = spawn to reaped exit; cpu = child user+sys\n",
               rounds);
        printf("%-18s %12s %12s %16s %16s %8s\n", "variant", "wall med us", "cpu med us",
               "wall vs 1st (us)", "cpu vs 1st (us)", "faults");
        for (size_t k = 0; k < nv; k++) {
                for (size_t r = 0; r < rounds; r++) {
                        d[r] = v[k].wall_us[r] - v[0].wall_us[r];
                        dc[r] = v[k].cpu_us[r] - v[0].cpu_us[r];
                }
                printf("%-18s %12.0f %12.0f %+16.0f %+16.0f %8.0f\n", v[k].label,
                       median(v[k].wall_us, rounds), median(v[k].cpu_us, rounds), median(d, rounds),
                       median(dc, rounds), median(v[k].faults, rounds));
        }
        return 0;
}
