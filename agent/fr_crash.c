/* The crash handler: SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP and
 * SIGSYS write a crash record into the post-mortem ring (proto/pm_ring.h:
 * signal, si_code, si_addr, thread, registers, the stack unwound from the
 * signal context), then hand over to the application's handler, or restore
 * the default action so the process dies exactly as it would without us
 * (same signal, same exit status, same core dump).
 *
 * Decisions (docs/agent-design.md, "Crashes"):
 *  - Our handler stays in front for the life of the process. sigaction() and
 *    signal() are interposed for these signals: a handler the application
 *    installs later is stored and chained, and sigaction() reports to the
 *    application what it would have seen without us.
 *  - Order: ours first, but the record stays PENDING while the application's
 *    handler runs. A handler that recovers (siglongjmp out of a deliberate
 *    fault, as JVM-style runtimes do) never comes back to us and nothing is
 *    reported. The record is COMMITTED only when the signal is going to kill:
 *    no application handler (default action), a fault the application
 *    ignores, a handler that ends the process (_exit, exit: see
 *    fr__crash_exiting), that returns from SIGABRT (abort() kills next), or
 *    that returns from a fault which then faults again with the default
 *    action in place.
 *  - Async-signal-safe: no allocation, no lock, no stdio; only syscalls and
 *    reads of our own memory. The live samples of every thread are copied
 *    into the ring at the commit (the events already are there).
 *  - SA_ONSTACK: with a per-thread alternate signal stack a stack overflow is
 *    caught too; without one the overflow kills the process with no record. */
/* This file defines longjmp, siglongjmp and __longjmp_chk themselves: the
 * fortified <setjmp.h> would rename the first two to the third (Debian's
 * package build defines _FORTIFY_SOURCE). */
#undef _FORTIFY_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "fr_internal.h"
#include "fr_unwind.h"
#include "pm_ring.h"

static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS};
#define NSIG_CRASH (sizeof crash_signals / sizeof crash_signals[0])

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);

static struct {
        _Atomic bool installed;
        /* The application's action per signal, two slots so that replacing
         * it never tears the one a running handler reads. */
        struct sigaction app[NSIG_CRASH][2];
        _Atomic int slot[NSIG_CRASH];
        sigaction_fn real;
} cr;

static __thread int in_crash FR_TLS; /* nesting of our handler on this thread */

static int index_of(int sig) {
        for (unsigned i = 0; i < NSIG_CRASH; i++)
                if (crash_signals[i] == sig)
                        return (int)i;
        return -1;
}

static sigaction_fn real_sigaction(void) {
        if (!cr.real)
                cr.real = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
        return cr.real;
}

static void handler(int sig, siginfo_t *si, void *uc);

static bool is_ours(const struct sigaction *a) {
        return (a->sa_flags & SA_SIGINFO) && a->sa_sigaction == handler;
}

/* ---- the record ------------------------------------------------------------- */

static struct fr_thread *find_thread(pid_t tid) {
        struct fr_thread *t = fr__self;
        if (t && t->tid == tid)
                return t;
        /* Adopted threads have no fr__self. The list is read without its
         * lock: records are freed only by the advancer, after they exited. */
        for (t = fr__threads_head(); t; t = t->next)
                if (t->tid == tid && !atomic_load_explicit(&t->exit_gen, memory_order_relaxed))
                        return t;
        return NULL;
}

/* ---- stack scanning ------------------------------------------------------------ */
/* Where the frame-pointer walk stops early (code without frame pointers, as
 * libc's abort and raise), the crash stack is completed by scanning the
 * interrupted stack for return addresses: words that point into executable
 * mappings (/proc/self/maps, read with open and read only) just after a call
 * instruction. Stale return addresses left on the stack may show up; the
 * record says how many frames came from the walk. Only on the crash path. */
#define MAX_RANGES 256
static struct {
        uintptr_t lo[MAX_RANGES], hi[MAX_RANGES];
        unsigned n;
        char buf[8192];
} scan; /* used by the one thread writing the record */

static uintptr_t hex(const char **p, const char *end) {
        uintptr_t v = 0;
        for (; *p < end; (*p)++) {
                char ch = **p;
                unsigned d = ch >= '0' && ch <= '9' ? (unsigned)(ch - '0')
                             : ch >= 'a' && ch <= 'f' ? (unsigned)(ch - 'a' + 10)
                                                      : 16u;
                if (d == 16)
                        break;
                v = v * 16 + d;
        }
        return v;
}

static void load_ranges(void) {
        scan.n = 0;
        int fd = (int)syscall(SYS_open, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        size_t have = 0;
        for (;;) {
                ssize_t k = read(fd, scan.buf + have, sizeof scan.buf - have);
                if (k <= 0 && have == 0)
                        break;
                have += k > 0 ? (size_t)k : 0;
                const char *p = scan.buf, *end = scan.buf + have, *nl;
                while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
                        const char *q = p;
                        uintptr_t lo = hex(&q, nl), hi = (q < nl && *q == '-') ? (q++, hex(&q, nl)) : 0;
                        if (q + 3 < nl && q[3] == 'x' && hi > lo && scan.n < MAX_RANGES) {
                                scan.lo[scan.n] = lo;
                                scan.hi[scan.n++] = hi;
                        }
                        p = nl + 1;
                }
                have = (size_t)(end - p);
                memmove(scan.buf, p, have);
                if (k <= 0 || have == sizeof scan.buf)
                        break;
        }
        close(fd);
}

static bool executable(uintptr_t a, uintptr_t before) {
        for (unsigned i = 0; i < scan.n; i++)
                if (a >= scan.lo[i] + before && a < scan.hi[i])
                        return true;
        return false;
}

/* after_call - a call instruction ends just before a: call rel32 (e8), or
 * an indirect call (ff /2) through a register or memory operand. */
static bool after_call(uintptr_t a) {
        if (!executable(a, 7))
                return false;
        const uint8_t *p = (const uint8_t *)a;
        if (p[-5] == 0xe8)
                return true;
        for (int len = 2; len <= 7; len++)
                if (p[-len] == 0xff && ((p[-len + 1] >> 3) & 7) == 2)
                        return true;
        return false;
}

/* Reads every word of the stack, sanitizer redzones included: not checked. */
__attribute__((no_sanitize_address)) static uint32_t scan_stack(uintptr_t sp, uintptr_t hi,
                                                                uint64_t *pcs, uint32_t n,
                                                                uint32_t max) {
        load_ranges();
        uintptr_t end = hi && hi > sp && hi - sp < (64u << 10) ? hi : sp + (32u << 10);
        if (hi && end > hi)
                end = hi;
        for (uintptr_t a = (sp + 7) & ~(uintptr_t)7; a + 8 <= end && n < max; a += 8) {
                uintptr_t w = *(const uintptr_t *)a;
                if (after_call(w))
                        pcs[n++] = w;
        }
        return n;
}

/* crash_unwind - the crashing thread's stack, by the sampler's unwinder
 * (.eh_frame and frame pointers), from the fault's context: inside the
 * thread's stack when its bounds are known (a stack pointer below them, an
 * overflow into the guard page, still walks the frames above), and the
 * alternate stack the context names. Bounds unknown: the pc alone. */
__attribute__((no_sanitize("address"))) static uint32_t crash_unwind(struct fr_thread *t, const ucontext_t *uc, uint64_t *pcs, uint32_t max) {
        struct fr_uw_bounds b = {.n = 0};
        uintptr_t hi = t ? atomic_load_explicit(&t->samples.stack_hi, memory_order_acquire) : 0;
        if (hi) {
                b.lo[0] = atomic_load_explicit(&t->samples.stack_lo, memory_order_relaxed);
                b.hi[0] = hi;
                b.n = 1;
        }
        struct fr_uw_result res;
        uint32_t n = fr__unwind_ucontext(uc, &b, pcs, max, &res);
#if defined(__x86_64__)
        uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP], fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
        if (n < 3 && b.n && sp < b.lo[0] && fp >= b.lo[0] && fp <= b.hi[0] - 16 && !(fp & 7) && max > 1) {
                /* A stack overflow: the faulting frame's own slots lie in the
                 * guard page, below the stack. Its caller is found through
                 * the frame pointer where it keeps one, and the walk goes on
                 * from there. */
                const uintptr_t *f = (const uintptr_t *)fp;
                struct fr_uw_regs r = {.pc = f[1], .sp = fp + 16, .fp = f[0]};
                pcs[0] = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
                n = 1 + fr__unwind_regs(&r, &b, 0, pcs + 1, max - 1, &res);
        }
        if (n == 0 && max > 0) {
                pcs[0] = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
                n = 1;
        }
#endif
        return n;
}

static void write_record(struct fr_pm_crash *c, int sig, const siginfo_t *si, const ucontext_t *uc) {
        pid_t tid = (pid_t)syscall(SYS_gettid);
        uint32_t none = 0;
        if (!__atomic_compare_exchange_n(&c->writer, &none, (uint32_t)tid, false, __ATOMIC_ACQUIRE,
                                         __ATOMIC_RELAXED))
                return; /* another thread is writing one */
        if (__atomic_load_n(&c->state, __ATOMIC_ACQUIRE) == FR_PM_CRASH_COMMITTED) {
                __atomic_store_n(&c->writer, 0, __ATOMIC_RELEASE);
                return; /* the first death wins */
        }
        __atomic_store_n(&c->state, FR_PM_CRASH_NONE, __ATOMIC_RELAXED);
        c->signo = sig;
        c->code = si->si_code;
        c->addr = (uint64_t)(uintptr_t)si->si_addr;
        c->tick = fr__now();
        c->gen = atomic_load_explicit(&fr__gen, memory_order_acquire);
        c->tid = (uint32_t)tid;
        c->flags = 0;
        c->walked = 0;
        memset(c->thread_name, 0, sizeof c->thread_name);
        prctl(PR_GET_NAME, c->thread_name, 0, 0, 0);
        c->thread_name[sizeof c->thread_name - 1] = '\0';
        c->nregs = 0;
#if defined(__x86_64__)
        for (int i = 0; i < NGREG && i < FR_PM_CRASH_REGS; i++)
                c->regs[i] = (uint64_t)uc->uc_mcontext.gregs[i];
        c->nregs = NGREG < FR_PM_CRASH_REGS ? NGREG : FR_PM_CRASH_REGS;
#endif
        struct fr_thread *t = find_thread(tid);
        c->nframes = crash_unwind(t, uc, c->frames, FR_PM_CRASH_FRAMES);
#if defined(__x86_64__)
        if (c->nframes < 3 && t && atomic_load_explicit(&t->samples.stack_hi, memory_order_relaxed)) {
                uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
                uintptr_t lo = atomic_load_explicit(&t->samples.stack_lo, memory_order_relaxed);
                uintptr_t hi = atomic_load_explicit(&t->samples.stack_hi, memory_order_relaxed);
                if (sp >= lo && sp < hi) {
                        c->walked = c->nframes;
                        c->flags |= FR_PM_CRASH_SCANNED;
                        c->nframes = 1 + scan_stack(sp, hi, c->frames + 1, 0, FR_PM_CRASH_FRAMES - 1);
                }
        }
#endif
        if (t && (sig == SIGSEGV || sig == SIGBUS)) {
                /* A fault just below the thread's stack, or a stack pointer
                 * outside it: the stack overflowed. */
                uintptr_t lo = atomic_load_explicit(&t->samples.stack_lo, memory_order_relaxed);
                uintptr_t hi = atomic_load_explicit(&t->samples.stack_hi, memory_order_relaxed);
                uintptr_t a = (uintptr_t)si->si_addr;
                if (hi && a < lo + 4096 && a + (1u << 20) >= lo)
                        c->flags |= FR_PM_CRASH_OVERFLOW;
        }
        __atomic_store_n(&c->state, FR_PM_CRASH_PENDING, __ATOMIC_RELEASE);
        __atomic_store_n(&c->writer, 0, __ATOMIC_RELEASE);
}

/* commit - the signal kills: make the record count, and copy every thread's
 * live samples next to the events already in the ring. */
static void commit(void) {
        struct fr_pm_crash *c = fr__pm_crash();
        if (!c || __atomic_load_n(&c->state, __ATOMIC_ACQUIRE) != FR_PM_CRASH_PENDING)
                return;
        fr__samples_salvage(c->gen);
        __atomic_store_n(&c->state, FR_PM_CRASH_COMMITTED, __ATOMIC_RELEASE);
}

bool fr__crash_exiting(void) {
        if (in_crash <= 0)
                return false;
        commit();
        return true;
}

/* ---- handing over ----------------------------------------------------------- */

static void set_default(int sig) {
        struct sigaction d = {.sa_handler = SIG_DFL};
        sigemptyset(&d.sa_mask);
        sigaction_fn f = real_sigaction();
        if (f)
                f(sig, &d, NULL);
}

/* The fault is the kernel's (it happens again when we return): SIGSEGV and
 * the others raised by an instruction, not sent by kill, raise or abort. */
static bool refaults(int sig, const siginfo_t *si) {
        return si->si_code > 0 && si->si_code != SI_KERNEL &&
               (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE);
}

/* die - default action, and let the signal come again: the faulting
 * instruction runs again on return, any other signal is sent again (it is
 * blocked until we return). */
static void die(int sig, const siginfo_t *si) {
        commit();
        set_default(sig);
        if (!refaults(sig, si))
                syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig);
}

static void call_app(const struct sigaction *a, int sig, siginfo_t *si, void *uc) {
        sigset_t old, mask = a->sa_mask;
        if (!(a->sa_flags & SA_NODEFER))
                sigaddset(&mask, sig);
        pthread_sigmask(SIG_BLOCK, &mask, &old);
        if (a->sa_flags & SA_NODEFER) {
                sigset_t one;
                sigemptyset(&one);
                sigaddset(&one, sig);
                pthread_sigmask(SIG_UNBLOCK, &one, NULL);
        }
        if (a->sa_flags & SA_SIGINFO)
                a->sa_sigaction(sig, si, uc);
        else
                a->sa_handler(sig);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void handler(int sig, siginfo_t *si, void *uc) {
        int saved_errno = errno;
        int i = index_of(sig);
        struct fr_pm_crash *c = fr__pm_crash();
        in_crash++;
        /* A crash signal inside our handler or the application's (abort()
         * from its handler, a second fault): the first record stands. */
        if (c && in_crash == 1)
                write_record(c, sig, si, uc);
        int s = atomic_load_explicit(&cr.slot[i], memory_order_acquire);
        struct sigaction a = cr.app[i][s];
        if (a.sa_flags & SA_RESETHAND) {
                /* One-shot: what the kernel would have done on delivery. */
                struct sigaction d = {.sa_handler = SIG_DFL};
                sigemptyset(&d.sa_mask);
                cr.app[i][!s] = d;
                atomic_store_explicit(&cr.slot[i], !s, memory_order_release);
        }
        if (a.sa_handler == SIG_DFL) {
                die(sig, si);
        } else if (a.sa_handler == SIG_IGN) {
                /* The kernel does not let a fault be ignored: it kills. */
                if (refaults(sig, si) || sig == SIGSYS)
                        die(sig, si);
        } else {
                call_app(&a, sig, si, uc);
                /* It came back. abort() kills next; a fault runs again and
                 * meets whatever the application left in place: through our
                 * interposer that is our handler again, but an application
                 * that reached libc directly (an agent it dlopen'ed) may have
                 * put the default action back, and then the fault kills. */
                struct sigaction cur;
                if (sig == SIGABRT && si->si_code <= 0)
                        commit();
                else if (refaults(sig, si) && cr.real(sig, NULL, &cur) == 0 && !is_ours(&cur) &&
                         !(cur.sa_flags & SA_SIGINFO) &&
                         (cur.sa_handler == SIG_DFL || cur.sa_handler == SIG_IGN))
                        commit();
        }
        in_crash--;
        errno = saved_errno;
}

/* ---- installing, and the application's later changes --------------------------- */

void fr__crash_init(void) {
        if (atomic_load(&cr.installed) || !real_sigaction())
                return;
        /* A JVM's fault handlers are its own machinery (safepoints, implicit
         * null checks) and it checks they stay installed: keep out of them. */
        if (fr__runtime_kind() & FR_RUNTIME_JVM)
                return;
        for (unsigned i = 0; i < NSIG_CRASH; i++) {
                struct sigaction cur;
                if (cr.real(crash_signals[i], NULL, &cur) < 0 || is_ours(&cur))
                        continue;
                cr.app[i][0] = cur;
                atomic_store(&cr.slot[i], 0);
                struct sigaction a = {.sa_sigaction = handler,
                                      .sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART};
                sigemptyset(&a.sa_mask);
                cr.real(crash_signals[i], &a, NULL);
        }
        atomic_store(&cr.installed, true);
}

int sigaction(int sig, const struct sigaction *act, struct sigaction *oldact) {
        sigaction_fn f = real_sigaction();
        if (!f)
                return errno = ENOSYS, -1;
        int i = index_of(sig);
        if (i < 0 || !atomic_load_explicit(&cr.installed, memory_order_acquire))
                return f(sig, act, oldact);
        /* Ours stays in front; theirs is what they see and what we chain to. */
        int s = atomic_load_explicit(&cr.slot[i], memory_order_acquire);
        struct sigaction old = cr.app[i][s];
        if (act) {
                cr.app[i][!s] = *act;
                atomic_store_explicit(&cr.slot[i], !s, memory_order_release);
        }
        if (oldact)
                *oldact = old;
        return 0;
}

sighandler_t signal(int sig, sighandler_t h) {
        if (index_of(sig) < 0 || !atomic_load_explicit(&cr.installed, memory_order_acquire)) {
                typedef sighandler_t (*signal_fn)(int, sighandler_t);
                static signal_fn real;
                if (!real)
                        real = (signal_fn)dlsym(RTLD_NEXT, "signal");
                return real ? real(sig, h) : (errno = ENOSYS, SIG_ERR);
        }
        /* glibc's BSD semantics: restart, the signal blocked in its handler. */
        struct sigaction a = {.sa_handler = h, .sa_flags = SA_RESTART}, old;
        sigemptyset(&a.sa_mask);
        sigaddset(&a.sa_mask, sig);
        if (sigaction(sig, &a, &old) < 0)
                return SIG_ERR;
        return old.sa_handler;
}

/* A handler that recovers leaves by siglongjmp (or longjmp): it is no longer
 * inside a crash, whatever it does next. */
typedef void (*jump_fn)(struct __jmp_buf_tag *, int);
__attribute__((noreturn)) static void jump(const char *name, struct __jmp_buf_tag *env, int val) {
        in_crash = 0;
        jump_fn f = (jump_fn)dlsym(RTLD_NEXT, name);
        if (f)
                f(env, val);
        abort(); /* no libc longjmp */
}
void siglongjmp(sigjmp_buf env, int val) { jump("siglongjmp", env, val); }
void longjmp(jmp_buf env, int val) { jump("longjmp", env, val); }
void _longjmp(jmp_buf env, int val) { jump("_longjmp", env, val); }
void __longjmp_chk(jmp_buf env, int val);
void __longjmp_chk(jmp_buf env, int val) { jump("__longjmp_chk", env, val); }
