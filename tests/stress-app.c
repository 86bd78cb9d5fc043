/* An application that tries to break the agent it runs under (LD_PRELOAD,
 * no flightrec header): for SECONDS it runs at once
 *  - a storm of short-lived threads (created and joined as fast as it can),
 *  - fork + exec of /bin/true, and plain fork + _exit,
 *  - a thread blocked in read() on a pipe, and one in a sleep loop, checking
 *    that no system call fails with EINTR it would not have seen otherwise,
 *  - signals of its own (a queued real-time signal to itself, counted by its
 *    handler; only the main thread takes it, so the other threads' system
 *    calls see EINTR only if the agent causes it),
 *  - deep recursion with CPU work at the bottom, some frames compiled
 *    without frame pointers, and 2000-deep recursion with none at all,
 *  - CPU work with garbage in RBP and the other registers (inline asm),
 *  - CPU work inside a signal handler running on an alternate signal stack
 *    (the unwinder walks from it through the kernel's signal frame),
 * then asks the agent for a snapshot (fr_snapshot through dlsym, when
 * loaded) and prints its counters. Exit status 0 only when every check held.
 * Usage: stress-app SECONDS */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static atomic_int stop;
static atomic_long threads_made, forks_made, eintr_seen, usr2_sent, recursions;
static volatile sig_atomic_t usr2_got;
static int pipefd[2];

#define APP_SIGNAL (SIGRTMIN + 1)

static void on_usr2(int sig) {
        (void)sig;
        usr2_got++;
}

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *tiny(void *arg) {
        volatile uint64_t x = (uintptr_t)arg;
        for (int i = 0; i < 1000; i++)
                x = x * 31 + 7;
        return NULL;
}

static void *thread_storm(void *arg) {
        (void)arg;
        while (!atomic_load(&stop)) {
                pthread_t t[8];
                int n = 0;
                for (int i = 0; i < 8; i++)
                        if (pthread_create(&t[n], NULL, tiny, (void *)(uintptr_t)i) == 0)
                                n++;
                for (int i = 0; i < n; i++)
                        pthread_join(t[i], NULL);
                atomic_fetch_add(&threads_made, n);
        }
        return NULL;
}

static void *fork_storm(void *arg) {
        (void)arg;
        if (getenv("STRESS_NO_FORK"))
                return NULL; /* see tests/test-stress-app.sh */
        for (unsigned i = 0; !atomic_load(&stop); i++) {
                pid_t pid = fork();
                if (pid == 0) {
                        if (i % 2)
                                execl("/bin/true", "true", (char *)NULL);
                        _exit(0);
                }
                if (pid > 0) {
                        int status;
                        while (waitpid(pid, &status, 0) < 0)
                                if (errno == EINTR)
                                        atomic_fetch_add(&eintr_seen, 1);
                                else
                                        break;
                        atomic_fetch_add(&forks_made, 1);
                }
                usleep(2000);
        }
        return NULL;
}

/* Blocked in read(): SA_RESTART handlers must not make it fail. */
static void *blocked_reader(void *arg) {
        (void)arg;
        char c;
        for (;;) {
                ssize_t r = read(pipefd[0], &c, 1);
                if (r == 1)
                        return NULL;
                if (r < 0 && errno == EINTR)
                        atomic_fetch_add(&eintr_seen, 1);
                else if (r <= 0)
                        return NULL;
        }
}

/* Sleeps between bursts of CPU work: a sampler that fires while the thread
 * sleeps would interrupt nanosleep (which is never restarted). */
static void *sleeper(void *arg) {
        (void)arg;
        while (!atomic_load(&stop)) {
                volatile uint64_t x = 1;
                for (int i = 0; i < 200000; i++)
                        x = x * 33 + 1;
                struct timespec ts = {0, 1000000};
                if (nanosleep(&ts, NULL) < 0 && errno == EINTR)
                        atomic_fetch_add(&eintr_seen, 1);
        }
        return NULL;
}

__attribute__((noinline, optimize("omit-frame-pointer"))) static uint64_t no_fp_frame(uint64_t x,
                                                                                     int depth);

__attribute__((noinline)) static uint64_t recurse(uint64_t x, int depth) {
        if (depth == 0) {
                for (int i = 0; i < 100000; i++)
                        x = x * 6364136223846793005ull + 1;
                return x;
        }
        return (depth % 7 ? recurse(x + 1, depth - 1) : no_fp_frame(x + 1, depth - 1)) + 1;
}

static uint64_t no_fp_frame(uint64_t x, int depth) {
        volatile uint64_t pad[4] = {x, x, x, x}; /* a frame of its own, no frame pointer */
        return recurse(pad[depth & 3], depth) ^ pad[0];
}

static void *deep(void *arg) {
        (void)arg;
        volatile uint64_t sink = 0;
        while (!atomic_load(&stop)) {
                sink += recurse(sink, 2000);
                atomic_fetch_add(&recursions, 1);
        }
        return NULL;
}

/* 2000 frames, none with a frame pointer (only .eh_frame finds the callers). */
__attribute__((noipa, optimize("omit-frame-pointer"))) static uint64_t recurse_nofp(uint64_t x, int depth) {
        volatile uint64_t pad[2] = {x, x};
        if (depth == 0) {
                for (int i = 0; i < 100000; i++)
                        x = x * 6364136223846793005ull + 1;
                return x;
        }
        uint64_t r = recurse_nofp(pad[depth & 1] + 1, depth - 1);
        return r ^ pad[1]; /* a volatile read after the call: no tail call, no loop */
}

static void *deep_nofp(void *arg) {
        (void)arg;
        volatile uint64_t sink = 0;
        while (!atomic_load(&stop)) {
                sink += recurse_nofp(sink, 2000);
                atomic_fetch_add(&recursions, 1);
        }
        return NULL;
}

/* Garbage registers: RBP and the scratch registers hold random values while
 * the loop runs (a frame-pointer walk from here would read wild memory). */
__attribute__((noinline, optimize("omit-frame-pointer"))) static void garbage_spin(uint64_t seed) {
#if defined(__x86_64__)
        for (int k = 0; k < 2000; k++) {
                __asm__ volatile("mov %0, %%rbp\n\t"
                                 "mov %0, %%rax\n\t"
                                 "mov $200000, %%ecx\n"
                                 "1:\n\t"
                                 "imul $0x5851f42d, %%rbp, %%rbp\n\t"
                                 "xor %%rbp, %%rax\n\t"
                                 "dec %%ecx\n\t"
                                 "jnz 1b\n\t"
                                 :
                                 : "r"(seed + (uint64_t)k)
                                 : "rax", "rcx", "rbp", "cc");
                if (atomic_load(&stop))
                        break;
        }
#else
        (void)seed;
#endif
}

static void *garbage(void *arg) {
        (void)arg;
        while (!atomic_load(&stop))
                garbage_spin(0x81712cef928f42ffull);
        return NULL;
}

/* A handler on an alternate signal stack that burns CPU: SIGPROF lands on
 * the altstack; the walk goes through __restore_rt into altstack_main. */
static atomic_long altstack_runs;
__attribute__((noinline)) static void altstack_work(int sig) {
        (void)sig;
        volatile uint64_t x = 1;
        for (int i = 0; i < 2000000; i++)
                x = x * 6364136223846793005ull + 1;
        atomic_fetch_add(&altstack_runs, 1);
}

static void *altstack_main(void *arg) {
        (void)arg;
        static char mem[1 << 16] __attribute__((aligned(16)));
        stack_t ss = {.ss_sp = mem, .ss_size = sizeof mem};
        if (sigaltstack(&ss, NULL) < 0)
                return NULL;
        sigset_t urg;
        sigemptyset(&urg);
        sigaddset(&urg, SIGURG);
        pthread_sigmask(SIG_UNBLOCK, &urg, NULL);
        while (!atomic_load(&stop))
                pthread_kill(pthread_self(), SIGURG);
        ss.ss_flags = SS_DISABLE;
        sigaltstack(&ss, NULL);
        return NULL;
}

static void *signaller(void *arg) {
        (void)arg;
        while (!atomic_load(&stop)) {
                if (sigqueue(getpid(), APP_SIGNAL, (union sigval){0}) == 0)
                        atomic_fetch_add(&usr2_sent, 1);
                usleep(1000);
        }
        return NULL;
}

int main(int argc, char **argv) {
        double seconds = argc > 1 ? atof(argv[1]) : 10;
        struct sigaction a = {.sa_handler = on_usr2, .sa_flags = SA_RESTART};
        sigemptyset(&a.sa_mask);
        sigaction(APP_SIGNAL, &a, NULL);
        struct sigaction onstack = {.sa_handler = altstack_work, .sa_flags = SA_ONSTACK | SA_RESTART};
        sigemptyset(&onstack.sa_mask);
        sigaction(SIGURG, &onstack, NULL);
        if (pipe(pipefd) < 0)
                return 1;
        /* Worker threads inherit a mask blocking the application's signal. */
        sigset_t app, saved;
        sigemptyset(&app);
        sigaddset(&app, APP_SIGNAL);
        pthread_sigmask(SIG_BLOCK, &app, &saved);
        void *(*fns[])(void *) = {thread_storm, fork_storm, blocked_reader, sleeper, deep, signaller,
                                  deep_nofp, garbage, altstack_main};
        enum { NT = sizeof fns / sizeof fns[0] };
        pthread_t t[NT];
        for (int i = 0; i < NT; i++)
                if (pthread_create(&t[i], NULL, fns[i], NULL) != 0)
                        return 1;
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
        double end = now() + seconds;
        while (now() < end)
                usleep(50000);
        atomic_store(&stop, 1);
        if (write(pipefd[1], "x", 1) != 1)
                return 1;
        for (int i = 0; i < NT; i++)
                pthread_join(t[i], NULL);
        /* Queued signals are all delivered; give the last ones a moment
         * (sanitizers deliver them late). */
        for (int i = 0; i < 200 && usr2_got != atomic_load(&usr2_sent); i++)
                usleep(10000);
        int ok = atomic_load(&eintr_seen) == 0 && usr2_got == atomic_load(&usr2_sent);
        int (*snapshot)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "fr_snapshot");
        int snap = snapshot ? snapshot("stress") : 0;
        printf("threads %ld forks %ld recursions %ld altstack handlers %ld own signals sent %ld got %ld "
               "eintr %ld snapshot %d: %s\n",
               atomic_load(&threads_made), atomic_load(&forks_made), atomic_load(&recursions),
               atomic_load(&altstack_runs),
               atomic_load(&usr2_sent), (long)usr2_got, atomic_load(&eintr_seen), snap,
               ok && snap == 0 ? "ok" : "FAILED");
        return ok && snap == 0 ? 0 : 1;
}
