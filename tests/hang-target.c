/* An unmodified program (no flightrec header) that hangs or waits in the
 * ways issue 11 is about, run under LD_PRELOAD=libflightrec.so by
 * test-hangs.sh:
 *   deadlock   two workers spin for a second, then take two mutexes in
 *              opposite orders and deadlock; main joins them (forever)
 *   epoll MS   a worker waits MS ms in epoll_wait on an idle eventfd
 *   pipe S     a worker reads a pipe fed one byte every 200 ms for S s
 *   semantics  the wrapped calls keep their results, errno, timeouts and
 *              cancellation points (pthread_cancel in read and in
 *              pthread_cond_wait); exits 0 when all hold
 * It prints "ready" once the interesting state is reached. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>

static pthread_mutex_t ma = PTHREAD_MUTEX_INITIALIZER, mb = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t both_hold;
static volatile unsigned long sink;

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static __attribute__((noinline)) void spin(double s) {
        double end = now_s() + s;
        while (now_s() < end)
                for (int i = 0; i < 10000; i++)
                        sink += (unsigned long)i * i;
}

static __attribute__((noinline)) void lock_ab(void) {
        pthread_mutex_lock(&ma);
        pthread_barrier_wait(&both_hold);
        pthread_mutex_lock(&mb); /* never returns */
        sink++;                  /* not a tail call: lock_ab stays on the stack */
}

static __attribute__((noinline)) void lock_ba(void) {
        pthread_mutex_lock(&mb);
        pthread_barrier_wait(&both_hold);
        pthread_mutex_lock(&ma);
        sink++;
}

static void *worker_ab(void *arg) {
        (void)arg;
        pthread_setname_np(pthread_self(), "worker-ab");
        spin(1.0);
        lock_ab();
        return NULL;
}

static void *worker_ba(void *arg) {
        (void)arg;
        pthread_setname_np(pthread_self(), "worker-ba");
        spin(1.0);
        lock_ba();
        return NULL;
}

static int deadlock(void) {
        pthread_t a, b;
        pthread_barrier_init(&both_hold, NULL, 3);
        pthread_create(&a, NULL, worker_ab, NULL);
        pthread_create(&b, NULL, worker_ba, NULL);
        pthread_barrier_wait(&both_hold);
        printf("ready\n");
        fflush(stdout);
        pthread_join(a, NULL);
        return 1;
}

static int epoll_ms;

static __attribute__((noinline)) int wait_for_events(int ep) {
        struct epoll_event ev;
        return epoll_wait(ep, &ev, 1, epoll_ms);
}

static void *epoll_waiter(void *arg) {
        (void)arg;
        pthread_setname_np(pthread_self(), "epoller");
        int ep = epoll_create1(EPOLL_CLOEXEC), efd = eventfd(0, EFD_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN};
        epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
        printf("ready\n");
        fflush(stdout);
        int r = wait_for_events(ep);
        printf("epoll_wait returned %d\n", r);
        fflush(stdout);
        return NULL;
}

static int epoll_mode(int ms) {
        pthread_t t;
        epoll_ms = ms;
        pthread_create(&t, NULL, epoll_waiter, NULL);
        pthread_join(t, NULL);
        sleep(1); /* the generation holding the end of the wait completes */
        printf("done\n");
        fflush(stdout);
        pause();
        return 0;
}

static int pipefd[2];
static volatile int reading = 1;

static __attribute__((noinline)) ssize_t read_slowly(char *c) {
        ssize_t r = read(pipefd[0], c, 1);
        sink++; /* not a tail call: read_slowly stays on the stack */
        return r;
}

static void *pipe_reader(void *arg) {
        (void)arg;
        pthread_setname_np(pthread_self(), "reader");
        char c;
        while (read_slowly(&c) == 1)
                ;
        reading = 0;
        return NULL;
}

static int pipe_mode(int seconds) {
        pthread_t t;
        if (pipe(pipefd) < 0)
                return 1;
        pthread_create(&t, NULL, pipe_reader, NULL);
        printf("ready\n");
        fflush(stdout);
        for (int i = 0; i < seconds * 5; i++) {
                usleep(200000);
                if (write(pipefd[1], "x", 1) != 1)
                        return 1;
        }
        close(pipefd[1]);
        pthread_join(t, NULL);
        printf("done\n");
        fflush(stdout);
        pause();
        return 0;
}

/* ---- semantics ---------------------------------------------------------------- */

static int failures;
#define CHECK(cond, ...)                                                                           \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        printf("FAIL %s:%d: ", __FILE__, __LINE__);                                \
                        printf(__VA_ARGS__);                                                       \
                        printf("\n");                                                              \
                        failures++;                                                                \
                }                                                                                  \
        } while (0)

static pthread_mutex_t cm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static _Atomic int in_wait; /* set by the waiter, polled by cancel_in */

static void unlock_cm(void *arg) {
        (void)arg;
        pthread_mutex_unlock(&cm);
}

static void *cond_waiter(void *arg) {
        (void)arg;
        pthread_mutex_lock(&cm);
        pthread_cleanup_push(unlock_cm, NULL);
        in_wait = 1;
        for (;;)
                pthread_cond_wait(&cv, &cm);
        pthread_cleanup_pop(1);
        return NULL;
}

static void *read_waiter(void *arg) {
        int fd = *(int *)arg;
        char c;
        in_wait = 1;
        for (;;)
                if (read(fd, &c, 1) <= 0)
                        return (void *)1;
        return NULL;
}

static void cancel_in(void *(*fn)(void *), void *arg, const char *what) {
        pthread_t t;
        void *ret = NULL;
        in_wait = 0;
        pthread_create(&t, NULL, fn, arg);
        while (!in_wait)
                usleep(1000);
        usleep(50000); /* blocked in the call by now, for longer than FLIGHTREC_BLOCK_MS */
        CHECK(pthread_cancel(t) == 0, "pthread_cancel (%s)", what);
        CHECK(pthread_join(t, &ret) == 0, "pthread_join (%s)", what);
        CHECK(ret == PTHREAD_CANCELED, "thread in %s not cancelled (returned %p)", what, ret);
}

static struct timespec in_ms(int ms) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)ms * 1000000;
        ts.tv_sec += ts.tv_nsec / 1000000000;
        ts.tv_nsec %= 1000000000;
        return ts;
}

static void *hold_then_exit(void *arg) {
        pthread_mutex_lock((pthread_mutex_t *)arg);
        return NULL;
}

static int semantics(void) {
        int p[2];
        CHECK(pipe(p) == 0, "pipe");

        /* Cancellation points stay cancellation points. */
        cancel_in(read_waiter, &p[0], "read");
        cancel_in(cond_waiter, NULL, "pthread_cond_wait");
        CHECK(pthread_mutex_trylock(&cm) == 0, "the cancelled cond waiter left cm locked");
        pthread_mutex_unlock(&cm);

        /* Results and errno. */
        char c;
        errno = 0;
        CHECK(read(-1, &c, 1) == -1 && errno == EBADF, "read(-1): errno %d", errno);
        errno = 0;
        CHECK(write(-1, &c, 1) == -1 && errno == EBADF, "write(-1): errno %d", errno);
        CHECK(write(p[1], "ab", 2) == 2, "write 2 bytes");
        CHECK(read(p[0], &c, 1) == 1 && c == 'a', "read 1 byte");
        struct pollfd pf = {.fd = p[0], .events = POLLIN};
        CHECK(poll(&pf, 1, 100) == 1 && (pf.revents & POLLIN), "poll on a ready pipe");
        CHECK(read(p[0], &c, 1) == 1 && c == 'b', "read the second byte");
        double t0 = now_s();
        CHECK(poll(&pf, 1, 60) == 0, "poll timeout returns 0");
        CHECK(now_s() - t0 >= 0.055, "poll waited its timeout (%.3f s)", now_s() - t0);

        pthread_mutex_t em;
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
        pthread_mutex_init(&em, &a);
        CHECK(pthread_mutex_lock(&em) == 0, "errorcheck lock");
        CHECK(pthread_mutex_lock(&em) == EDEADLK, "errorcheck relock gives EDEADLK");
        pthread_mutex_unlock(&em);

        pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
        pthread_t h;
        pthread_mutex_lock(&held);
        struct timespec until = in_ms(50);
        pthread_create(&h, NULL, hold_then_exit, &held);
        pthread_mutex_unlock(&held);
        pthread_join(h, NULL); /* h exits holding it */
        until = in_ms(50);
        CHECK(pthread_mutex_timedlock(&held, &until) == ETIMEDOUT, "timedlock times out");

        sem_t s;
        sem_init(&s, 0, 1);
        CHECK(sem_wait(&s) == 0, "sem_wait on 1");
        until = in_ms(40);
        errno = 0;
        CHECK(sem_timedwait(&s, &until) == -1 && errno == ETIMEDOUT, "sem_timedwait times out");

        struct timespec bad = {0, 2000000000};
        errno = 0;
        CHECK(nanosleep(&bad, NULL) == -1 && errno == EINVAL, "nanosleep EINVAL");
        CHECK(clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, NULL) == EINVAL,
              "clock_nanosleep returns EINVAL (not -1)");
        t0 = now_s();
        CHECK(usleep(30000) == 0 && now_s() - t0 >= 0.029, "usleep");

        errno = 0;
        CHECK(waitpid(-1, NULL, 0) == -1 && errno == ECHILD, "waitpid ECHILD");
        pid_t child = fork();
        if (child == 0)
                _exit(7);
        int st = 0;
        CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 7,
              "waitpid of a child");

        int fl = fcntl(p[0], F_GETFL);
        CHECK(fl >= 0 && fcntl(p[0], F_SETFL, fl | O_NONBLOCK) == 0, "fcntl F_SETFL");
        errno = 0;
        CHECK(read(p[0], &c, 1) == -1 && errno == EAGAIN, "non-blocking read: EAGAIN");
        CHECK(flock(p[0], LOCK_EX) == 0 && flock(p[0], LOCK_UN) == 0, "flock");

        int futex_word = 1;
        struct timespec ft = {0, 20000000};
        errno = 0;
        CHECK(syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 1, &ft, NULL, 0) == -1 &&
                      errno == ETIMEDOUT,
              "futex wait times out");
        errno = 0;
        CHECK(syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 2, &ft, NULL, 0) == -1 &&
                      errno == EAGAIN,
              "futex wait on another value: EAGAIN");
        CHECK(syscall(SYS_getpid) == getpid(), "syscall(SYS_getpid)");

        printf(failures ? "semantics: %d failure(s)\n" : "semantics ok\n", failures);
        return failures != 0;
}

int main(int argc, char **argv) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        const char *mode = argc > 1 ? argv[1] : "";
        if (strcmp(mode, "deadlock") == 0)
                return deadlock();
        if (strcmp(mode, "epoll") == 0 && argc > 2)
                return epoll_mode(atoi(argv[2]));
        if (strcmp(mode, "pipe") == 0 && argc > 2)
                return pipe_mode(atoi(argv[2]));
        if (strcmp(mode, "semantics") == 0)
                return semantics();
        fprintf(stderr, "usage: hang-target deadlock | epoll MS | pipe S | semantics\n");
        return 2;
}
