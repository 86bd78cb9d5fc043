/* Ends that are no death. flightrecd writes a post-mortem snapshot of a
 * process that goes away without a clean stop; these calls are clean ways to
 * go, so they mark the post-mortem ring first (fr_pmring.c):
 *  - _exit and _Exit (a forked child's normal end, the parent of a daemon's
 *    double fork): the ring is marked closed;
 *  - the exec family: marked "exec'd" just before the real call, unmarked if
 *    it returns (failed). glibc's execvp and execl* call execve internally,
 *    not through the PLT, so each entry point is wrapped.
 * exit() itself is covered by the destructor in fr_agent.c. Like the
 * pthread_create wrapper, these work with LD_PRELOAD and when the application
 * links libflightrec before libc. */
#include <dlfcn.h>
#include <errno.h>
#include <alloca.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include "fr_internal.h"
#include "pm_ring.h"

extern char **environ;

#define REAL(name, type)                                                                           \
        static type real_##name(void) {                                                            \
                static type f;                                                                     \
                if (!f)                                                                            \
                        f = (type)dlsym(RTLD_NEXT, #name);                                         \
                return f;                                                                          \
        }

typedef void (*exit_fn)(int);
typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*execvpe_fn)(const char *, char *const[], char *const[]);
typedef int (*fexecve_fn)(int, char *const[], char *const[]);
REAL(_exit, exit_fn)
REAL(_Exit, exit_fn)
REAL(execve, execve_fn)
REAL(execvpe, execvpe_fn)
REAL(fexecve, fexecve_fn)

void _exit(int status) {
        if (!fr__crash_exiting()) /* a crash handler's _exit is a crash */
                fr__pm_mark(FR_PM_CLOSED_EXIT);
        exit_fn f = real__exit();
        if (f)
                f(status);
        abort(); /* unreachable: no libc _exit */
}

void _Exit(int status) {
        if (!fr__crash_exiting())
                fr__pm_mark(FR_PM_CLOSED_EXIT);
        exit_fn f = real__Exit();
        if (f)
                f(status);
        abort();
}

/* Mark, call, and unmark when the call came back (the exec failed). */
static int exec_marked(int r) {
        int e = errno;
        fr__pm_mark(FR_PM_OPEN);
        errno = e;
        return r;
}

int execve(const char *path, char *const argv[], char *const envp[]) {
        execve_fn f = real_execve();
        if (!f)
                return errno = ENOSYS, -1;
        fr__pm_mark(FR_PM_CLOSED_EXEC);
        return exec_marked(f(path, argv, envp));
}

int execvpe(const char *file, char *const argv[], char *const envp[]) {
        execvpe_fn f = real_execvpe();
        if (!f)
                return errno = ENOSYS, -1;
        fr__pm_mark(FR_PM_CLOSED_EXEC);
        return exec_marked(f(file, argv, envp));
}

int fexecve(int fd, char *const argv[], char *const envp[]) {
        fexecve_fn f = real_fexecve();
        if (!f)
                return errno = ENOSYS, -1;
        fr__pm_mark(FR_PM_CLOSED_EXEC);
        return exec_marked(f(fd, argv, envp));
}

int execv(const char *path, char *const argv[]) { return execve(path, argv, environ); }

int execvp(const char *file, char *const argv[]) { return execvpe(file, argv, environ); }

/* The list forms: collect the arguments into an array on the stack. */
#define COLLECT_ARGS(first, ap, argv)                                                               \
        do {                                                                                       \
                size_t n_ = 1;                                                                     \
                va_list c_;                                                                        \
                va_copy(c_, ap);                                                                   \
                while (va_arg(c_, const char *))                                                   \
                        n_++;                                                                      \
                va_end(c_);                                                                        \
                argv = alloca((n_ + 1) * sizeof *argv);                                            \
                argv[0] = (char *)(first);                                                         \
                for (size_t i_ = 1; i_ <= n_; i_++)                                                \
                        argv[i_] = va_arg(ap, char *);                                             \
        } while (0)

int execl(const char *path, const char *arg, ...) {
        va_list ap;
        char **argv;
        va_start(ap, arg);
        COLLECT_ARGS(arg, ap, argv);
        va_end(ap);
        return execve(path, argv, environ);
}

int execlp(const char *file, const char *arg, ...) {
        va_list ap;
        char **argv;
        va_start(ap, arg);
        COLLECT_ARGS(arg, ap, argv);
        va_end(ap);
        return execvpe(file, argv, environ);
}

int execle(const char *path, const char *arg, ...) {
        va_list ap;
        char **argv, **envp;
        va_start(ap, arg);
        COLLECT_ARGS(arg, ap, argv);
        envp = va_arg(ap, char **); /* after the NULL that ends the arguments */
        va_end(ap);
        return execve(path, argv, envp);
}

/* Resolve the real functions at load, not at the first call: that call may
 * come in the child of a multi-threaded fork, where dlsym is not safe. */
__attribute__((constructor)) static void fr__exit_resolve(void) {
        (void)real__exit();
        (void)real__Exit();
        (void)real_execve();
        (void)real_execvpe();
        (void)real_fexecve();
}
