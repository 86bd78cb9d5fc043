/* A program that dies, for tests/test-crash.sh. Unmodified as far as the
 * agent goes: it runs under LD_PRELOAD=libflightrec.so, and uses the API only
 * when it finds it (dlsym), to log what its worker does.
 *
 *   crash-app segv SECONDS     two busy threads; at SECONDS the one named
 *                              "worker" follows a bad pointer in walk_list
 *                              (SIGSEGV, SEGV_MAPERR at 0x10)
 *   crash-app abort SECONDS    main calls abort() after SECONDS of work
 *   crash-app recurse SECONDS  the worker recurses until its stack overflows
 *   crash-app handler WHEN WHAT SECONDS
 *                              its own SIGSEGV handler, installed before the
 *                              agent starts (WHEN=before: the agent is
 *                              dlopen'ed from $CRASH_AGENT and started after)
 *                              or after (WHEN=after, under LD_PRELOAD);
 *                              WHAT=print: prints, restores the default and
 *                              returns (the fault kills); WHAT=recover: 100
 *                              deliberate faults, each left with siglongjmp,
 *                              then SECONDS of work and SIGKILL of itself.
 *
 * Before it dies it prints "death at NS" (CLOCK_REALTIME) on stdout. */

#include <dlfcn.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct node {
        long value;
        long pad;
        struct node *next; /* at offset 0x10 */
};

static void (*app_log)(uint64_t, const char *, const char *);
static double seconds = 2.3;
static volatile int go_die;
static volatile long last_log = -1; /* the last "walk N" logged */

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void say_death(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        printf("death at %lld last log walk %ld\n", (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec,
               last_log);
        fflush(stdout);
}

__attribute__((noinline)) static long weigh(const struct node *n) { return n->value & 7; }

/* The list ends with a node that points to itself. Not a leaf: GCC gives
 * leaf functions no frame pointer, and its caller would be missing. */
__attribute__((noinline)) static long walk_list(struct node *n) {
        long sum = 0;
        while (n->next != n) {
                sum += weigh(n);
                n = n->next;
                __asm__ volatile("" ::: "memory");
        }
        return sum + n->value;
}

__attribute__((noinline)) static long recurse(long depth) {
        volatile char pad[256];
        pad[0] = (char)depth;
        long r = depth > 0 ? recurse(depth + 1) : 0;
        return r + pad[0];
}

static void *parser_thread(void *arg) {
        (void)arg;
        pthread_setname_np(pthread_self(), "worker");
        struct node nodes[64];
        for (int i = 0; i < 64; i++)
                nodes[i] = (struct node){i, 0, i < 63 ? &nodes[i + 1] : &nodes[i]};
        double t0 = now_s(), next_log = 0;
        long n = 0, sum = 0;
        for (;;) {
                sum += walk_list(nodes);
                double t = now_s() - t0;
                if (app_log && t >= next_log) {
                        char msg[64];
                        snprintf(msg, sizeof msg, "walk %ld", n);
                        app_log(0, "parser", msg);
                        last_log = n++;
                        next_log = t + 0.001;
                }
                if (go_die == 1 && t >= seconds) {
                        say_death();
                        nodes[40].next = NULL; /* the bad pointer: walk_list reads NULL->next, 0x10 */
                        sum += walk_list(nodes);
                }
                if (go_die == 2 && t >= seconds) {
                        say_death();
                        sum += recurse(1);
                }
                if (sum == 42)
                        printf("unlikely\n");
        }
        return NULL;
}

static sigjmp_buf recover_point;
static volatile int handled;

static void on_segv(int sig, siginfo_t *si, void *uc) {
        (void)si, (void)uc;
        handled++;
        if (go_die == 3) { /* recover */
                siglongjmp(recover_point, 1);
        }
        static const char msg[] = "crash-app: own SIGSEGV handler ran\n";
        if (write(2, msg, sizeof msg - 1) < 0) {
        }
        signal(sig, SIG_DFL); /* returning faults again, now fatally */
}

static void busy(double until) {
        volatile double x = 0;
        while (now_s() < until)
                for (int i = 0; i < 10000; i++)
                        x += i * 0.5;
}

static int usage(void) {
        fprintf(stderr, "usage: crash-app segv|abort|recurse SECONDS | handler before|after print|recover SECONDS\n");
        return 2;
}

int main(int argc, char **argv) {
        if (argc < 3)
                return usage();
        if (getenv("CRASH_APP_PID")) {
                fprintf(stderr, "pid %d\n", (int)getpid());
                fflush(stderr);
        }
        const char *mode = argv[1];
        bool with_handler = strcmp(mode, "handler") == 0;
        if (with_handler && argc < 5)
                return usage();
        seconds = atof(argv[with_handler ? 4 : 2]);
        if (with_handler) {
                bool before = strcmp(argv[2], "before") == 0;
                struct sigaction a = {.sa_sigaction = on_segv, .sa_flags = SA_SIGINFO | SA_NODEFER};
                sigemptyset(&a.sa_mask);
                if (before) {
                        sigaction(SIGSEGV, &a, NULL);
                        const char *agent = getenv("CRASH_AGENT");
                        void *h = agent ? dlopen(agent, RTLD_NOW | RTLD_GLOBAL) : NULL;
                        int (*start)(const void *) = h ? (int (*)(const void *))dlsym(h, "fr_start") : NULL;
                        if (!start || start(NULL) != 0) {
                                fprintf(stderr, "crash-app: cannot start the agent from %s\n", agent ? agent : "(CRASH_AGENT unset)");
                                return 1;
                        }
                } else {
                        sigaction(SIGSEGV, &a, NULL);
                }
                /* What sigaction says after the agent started: our own
                 * handler (the agent's interposer answers; a dlopen'ed agent
                 * cannot interpose, so only checked after). */
                struct sigaction cur;
                sigaction(SIGSEGV, NULL, &cur);
                if (!before && cur.sa_sigaction != on_segv) {
                        fprintf(stderr, "crash-app: sigaction does not report our own handler\n");
                        return 1;
                }
        }
        app_log = (void (*)(uint64_t, const char *, const char *))dlsym(RTLD_DEFAULT, "fr_log");
        if (with_handler && strcmp(argv[3], "recover") == 0) {
                go_die = 3;
                for (volatile int i = 0; i < 100; i++) {
                        if (sigsetjmp(recover_point, 1) == 0) {
                                volatile int *bad = (int *)(uintptr_t)0x8;
                                (void)*bad;
                        }
                }
                printf("recovered %d faults\n", handled);
                fflush(stdout);
                busy(now_s() + seconds);
                say_death();
                raise(SIGKILL);
        }
        if (strcmp(mode, "segv") == 0 || with_handler)
                go_die = 1;
        else if (strcmp(mode, "recurse") == 0)
                go_die = 2;
        else if (strcmp(mode, "abort") != 0)
                return usage();
        pthread_t t;
        if (go_die && pthread_create(&t, NULL, parser_thread, NULL) != 0)
                return 1;
        /* The second busy thread: main. */
        double t0 = now_s();
        busy(t0 + (go_die ? 1e9 : seconds));
        say_death();
        abort();
}
