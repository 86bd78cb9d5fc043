/* Ends that are no death. flightrecd writes a post-mortem snapshot of a
 * process that goes away without a clean stop; these calls are clean ways to
 * go, so they mark the post-mortem ring first (fr_pmring.c):
 *  - _exit and _Exit (a forked child's normal end, the parent of a daemon's
 *    double fork): the ring is marked closed;
 *  - the exec family: marked "exec'd" just before the real call, unmarked if
 *    it returns (failed). glibc's execvp and execl* call execve internally,
 *    not through the PLT, so each entry point is wrapped.
 * With FLIGHTREC_CHILDREN=no, a recording process's children lose our entry
 * of LD_PRELOAD here (the exec family and posix_spawn; system() and popen()
 * spawn inside libc, out of our reach).
 * exit() itself is covered by the destructor in fr_agent.c. Like the
 * pthread_create wrapper, these work with LD_PRELOAD and when the application
 * links libflightrec before libc. */
#include <dlfcn.h>
#include <errno.h>
#include <alloca.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fr_internal.h"
#include "pm_ring.h"

extern char **environ;

FR_EVERY_PROCESS static void *next_fn(const char *name) { return dlsym(RTLD_NEXT, name); }

#define REAL(name, type)                                                                           \
        FR_EVERY_PROCESS static type real_##name(void) {                                           \
                FR_EVERY_PROCESS_DATA static void *f;                                              \
                return (type)fr__real_fn(&f, next_fn, #name);                                      \
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
typedef int (*spawn_fn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
                        const posix_spawnattr_t *, char *const[], char *const[]);
REAL(posix_spawn, spawn_fn)
REAL(posix_spawnp, spawn_fn)

/* The environment a child gets: as given, or without our LD_PRELOAD entry.
 * On the caller's stack: an exec may come in a vfork child, no malloc. */
#define MAX_CHILD_ENV 65536
#define CHILD_ENV(envp)                                                                            \
        do {                                                                                       \
                if (!fr__choice.chosen || fr__choice.children || !(envp))                          \
                        break;                                                                     \
                size_t n_ = 0, pl_ = 12;                                                           \
                while ((envp)[n_] && n_ < MAX_CHILD_ENV) {                                         \
                        if (!strncmp((envp)[n_], "LD_PRELOAD=", 11))                               \
                                pl_ = strlen((envp)[n_]) + 1;                                      \
                        n_++;                                                                      \
                }                                                                                  \
                if (n_ >= MAX_CHILD_ENV || pl_ > 65536)                                            \
                        break;                                                                     \
                char **out_ = alloca((n_ + 1) * sizeof *out_);                                     \
                char *pre_ = alloca(pl_);                                                          \
                if (fr__child_env((envp), out_, n_ + 1, pre_, pl_) >= 0)                           \
                        (envp) = out_;                                                             \
        } while (0)

FR_EVERY_PROCESS void _exit(int status) {
        if (!fr__crash_exiting()) /* a crash handler's _exit is a crash */
                fr__pm_mark(FR_PM_CLOSED_EXIT);
        exit_fn f = real__exit();
        if (f)
                f(status);
        abort(); /* unreachable: no libc _exit */
}

FR_EVERY_PROCESS void _Exit(int status) {
        if (!fr__crash_exiting())
                fr__pm_mark(FR_PM_CLOSED_EXIT);
        exit_fn f = real__Exit();
        if (f)
                f(status);
        abort();
}

/* Mark, call, and unmark when the call came back (the exec failed). */
FR_EVERY_PROCESS static int exec_marked(int r) {
        int e = errno;
        fr__pm_mark(FR_PM_OPEN);
        errno = e;
        return r;
}

FR_EVERY_PROCESS int execve(const char *path, char *const argv[], char *const envp[]) {
        execve_fn f = real_execve();
        if (!f)
                return errno = ENOSYS, -1;
        CHILD_ENV(envp);
        fr__pm_mark(FR_PM_CLOSED_EXEC);
        return exec_marked(f(path, argv, envp));
}

FR_EVERY_PROCESS int execvpe(const char *file, char *const argv[], char *const envp[]) {
        execvpe_fn f = real_execvpe();
        if (!f)
                return errno = ENOSYS, -1;
        CHILD_ENV(envp);
        fr__pm_mark(FR_PM_CLOSED_EXEC);
        return exec_marked(f(file, argv, envp));
}

FR_EVERY_PROCESS int fexecve(int fd, char *const argv[], char *const envp[]) {
        fexecve_fn f = real_fexecve();
        if (!f)
                return errno = ENOSYS, -1;
        CHILD_ENV(envp);
        fr__pm_mark(FR_PM_CLOSED_EXEC);
        return exec_marked(f(fd, argv, envp));
}

FR_EVERY_PROCESS int execv(const char *path, char *const argv[]) { return execve(path, argv, environ); }

FR_EVERY_PROCESS int execvp(const char *file, char *const argv[]) { return execvpe(file, argv, environ); }

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

FR_EVERY_PROCESS int execl(const char *path, const char *arg, ...) {
        va_list ap;
        char **argv;
        va_start(ap, arg);
        COLLECT_ARGS(arg, ap, argv);
        va_end(ap);
        return execve(path, argv, environ);
}

FR_EVERY_PROCESS int execlp(const char *file, const char *arg, ...) {
        va_list ap;
        char **argv;
        va_start(ap, arg);
        COLLECT_ARGS(arg, ap, argv);
        va_end(ap);
        return execvpe(file, argv, environ);
}

FR_EVERY_PROCESS int execle(const char *path, const char *arg, ...) {
        va_list ap;
        char **argv, **envp;
        va_start(ap, arg);
        COLLECT_ARGS(arg, ap, argv);
        envp = va_arg(ap, char **); /* after the NULL that ends the arguments */
        va_end(ap);
        return execve(path, argv, envp);
}

/* posix_spawn's child never runs our code: only its environment changes. */
FR_EVERY_PROCESS int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
        spawn_fn f = real_posix_spawn();
        if (!f)
                return ENOSYS;
        CHILD_ENV(envp);
        return f(pid, path, fa, attr, argv, envp);
}

FR_EVERY_PROCESS int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                 const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
        spawn_fn f = real_posix_spawnp();
        if (!f)
                return ENOSYS;
        CHILD_ENV(envp);
        return f(pid, file, fa, attr, argv, envp);
}

/* Resolve the real functions when the process starts recording, not at the
 * first call: that call may come in the child of a multi-threaded fork, where
 * another thread may have left the loader's data half-changed. A process that
 * does not record looks each up at its first call (glibc resets the loader's
 * lock in a fork child), and pays nothing at its start. */
void fr__exit_resolve(void) {
        (void)real__exit();
        (void)real__Exit();
        (void)real_execve();
        (void)real_execvpe();
        (void)real_fexecve();
        (void)real_posix_spawn();
        (void)real_posix_spawnp();
}
