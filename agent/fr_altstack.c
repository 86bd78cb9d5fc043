/* Alternate signal stacks: the agent's signal handlers (SIGPROF now, the
 * crash handler next) never need the application's thread stack.
 *
 * Size. getauxval(AT_MINSIGSTKSZ) (the kernel's signal frame with this CPU's
 * extended state: 3,376 bytes with AVX-512) plus FR_ALTSTACK_MARGIN for our
 * handler and the unwinder it calls (today's frame-pointer walk, tomorrow's
 * .eh_frame one), rounded to pages, with a PROT_NONE guard page below it, so
 * that a handler that outgrows it faults instead of writing into whatever
 * lies below. Mapped MAP_NORESERVE: a thread touches only the pages its
 * signals use (the kernel frame and our handler: 2-3 pages).
 *
 * Policy, per thread:
 * - No alternate stack (SS_DISABLE): we install ours.
 * - The application has its own (set before us, or later: it replaces ours):
 *   we use it and never replace it. A handler that finds less than the room
 *   it needs below its frame does no deep work (fr__altstack_room).
 * - The application disables its stack later: the next signal finds none and
 *   installs ours again (ours is kept mapped for that). A later query by the
 *   application (sigaltstack(NULL, &old)) then shows ours, like any stack
 *   installed by a library it links.
 * - Ours is freed only by its own thread at exit (fr__altstack_release, from
 *   the thread record's key destructor): disabled first, and kept when the
 *   thread is running on it (pthread_exit from a handler). Threads that never
 *   registered (adopted from /proc/self/task) have no destructor: their
 *   stack is freed with their record, once the advancer has seen the thread
 *   gone from /proc (fr__altstack_free_record). No other thread can be on a
 *   thread's alternate stack, and the kernel refuses to replace a stack a
 *   handler is on, so nothing frees a stack in use.
 *
 * Where it is installed: in the thread itself (sigaltstack has no "for that
 * thread" form). Threads created through pthread_create while the agent runs,
 * and threads that call the API, get it before their first sample (their
 * registration). Threads the agent did not create and that never call it
 * (adopted by the /proc scan) get it from their first SIGPROF: that one
 * signal's frame lands on the thread's own stack, so the handler does the
 * install only (into the interrupted context's uc_stack, which sigreturn
 * installs) and drops the sample (the next perf sample's weight covers
 * the period). That first frame on the application's stack is the one gap. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "fr_internal.h"

#ifndef AT_MINSIGSTKSZ
#define AT_MINSIGSTKSZ 51
#endif

static __thread struct {
        uintptr_t lo, hi; /* the alternate stack last found in use here (ours or not) */
        uint8_t *mine;    /* our mapping, guard page first; NULL: none */
        bool exited;      /* released at thread exit: never install again */
} alt FR_TLS;

static _Atomic size_t stack_bytes; /* usable size of ours; 0: not computed yet */
/* Under AddressSanitizer: ASan gives every thread an alternate stack of its
 * own at its start (use_sigaltstack) and, at its exit, unmaps whatever
 * alternate stack is installed. Ours would be unmapped twice (the second
 * time over memory ASan had reused: its allocator crashed, test-stress-app),
 * so the agent installs none and uses ASan's. */
static _Atomic bool asan_owns_altstacks;
/* In a forked child: the forking thread's stack, still in use there, which
 * records copied from the parent may name (the advancer's TLS is not the
 * forking thread's, so alt.mine alone cannot tell). */
static _Atomic(uint8_t *) forked_keep;

static void atfork_child(void) { atomic_store(&forked_keep, alt.mine); }

static size_t page_bytes(void) {
        long p = sysconf(_SC_PAGESIZE);
        return p > 0 ? (size_t)p : 4096;
}

size_t fr__altstack_size(void) {
        size_t n = atomic_load_explicit(&stack_bytes, memory_order_relaxed);
        if (n)
                return n;
        size_t min = (size_t)getauxval(AT_MINSIGSTKSZ);
        if (min < 2048) /* kernels before 5.14 do not say: glibc's dynamic figure */
                min = (size_t)sysconf(_SC_MINSIGSTKSZ);
        if (min < 2048 || min > (1u << 20))
                min = 8192;
        size_t page = page_bytes();
        atomic_store(&asan_owns_altstacks, dlsym(RTLD_DEFAULT, "__asan_init") != NULL);
        n = (min + FR_ALTSTACK_MARGIN + page - 1) & ~(page - 1);
        atomic_store_explicit(&stack_bytes, n, memory_order_relaxed);
        return n;
}

/* The system calls themselves, not libc's functions: install and
 * fr__altstack_room run in signal handlers, where a sanitizer's interceptors
 * of mmap and sigaltstack (its allocator's locks, its shadow updates) are not
 * async-signal-safe: a SIGPROF landing in ASan's allocator at a thread's
 * start crashed it there (test-stress-app under ASan). */
static void *sys_map_stack(size_t len) {
        return (void *)syscall(SYS_mmap, NULL, len, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
}
static int sys_sigaltstack(const stack_t *ss, stack_t *old) {
        return (int)syscall(SYS_sigaltstack, ss, old);
}

static void fr__altstack_atfork(void) { pthread_atfork(NULL, NULL, atfork_child); }

/* install - put ours in place for the calling thread (mapping it first if
 * needed). Async-signal-safe: mmap, mprotect and sigaltstack are system
 * calls. In a handler (uc not NULL) the stack goes into the interrupted
 * context too: sigreturn restores the alternate stack saved in it, and would
 * undo the sigaltstack call alone. Returns 0 or -errno. */
static int install(struct fr_thread *t, ucontext_t *uc) {
        if (alt.exited)
                return -ESRCH;
        size_t n = atomic_load_explicit(&stack_bytes, memory_order_relaxed), page = page_bytes();
        if (n == 0)
                return -EAGAIN; /* fr__altstack_size not called yet: never in a handler */
        if (atomic_load_explicit(&asan_owns_altstacks, memory_order_relaxed))
                return -ENOTSUP;
        if (!alt.mine) {
                void *m = sys_map_stack(page + n);
                if (m == MAP_FAILED)
                        return -errno;
                if (syscall(SYS_mprotect, m, page, PROT_NONE) < 0) {
                        int e = -errno;
                        syscall(SYS_munmap, m, page + n);
                        return e;
                }
                alt.mine = m;
        }
        stack_t ss = {.ss_sp = alt.mine + page, .ss_size = n};
        if (uc)
                uc->uc_stack = ss; /* installed by the kernel at sigreturn */
        /* Also now: for a handler called outside the kernel's delivery (TSan
         * defers signals and passes a copy of the context). */
        if (sys_sigaltstack(&ss, NULL) < 0 && !uc)
                return -errno;
        alt.lo = (uintptr_t)ss.ss_sp;
        alt.hi = alt.lo + n;
        if (t)
                atomic_store_explicit(&t->altstack, alt.mine, memory_order_relaxed);
        return 0;
}

int fr__altstack_ensure(struct fr_thread *t) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, fr__altstack_atfork);
        fr__altstack_size();
        stack_t cur;
        if (sigaltstack(NULL, &cur) < 0)
                return -errno;
        if (!(cur.ss_flags & SS_DISABLE))
                return 0; /* ours already, or the application's: left as it is */
        return install(t, NULL);
}

bool fr__altstack_room(struct fr_thread *t, void *uc, size_t need) {
        uintptr_t here = (uintptr_t)__builtin_frame_address(0);
        if (here - alt.lo < alt.hi - alt.lo)
                return here - alt.lo >= need; /* the stack found last time: no system call */
        stack_t cur;
        if (sys_sigaltstack(NULL, &cur) < 0)
                return true; /* cannot tell: as without the agent */
        uintptr_t lo = (uintptr_t)cur.ss_sp;
        if (cur.ss_flags & SS_ONSTACK) {
                alt.lo = lo;
                alt.hi = lo + cur.ss_size;
                return here - lo >= need;
        }
        if ((cur.ss_flags & SS_DISABLE) && !alt.exited) {
                /* On the thread's own stack, whose room we do not know: install
                 * ours for the next signal and do nothing deep now. */
                install(t, uc);
                return false;
        }
        /* A stack is installed but we are not on it: the handler was called
         * by a sanitizer runtime that defers signals to a safe point on the
         * thread's stack, or after our exit release. As without the agent. */
        return true;
}

void fr__altstack_release(struct fr_thread *t) {
        alt.exited = true;
        if (t)
                atomic_store_explicit(&t->altstack, NULL, memory_order_relaxed);
        if (!alt.mine)
                return;
        size_t page = page_bytes(), n = atomic_load(&stack_bytes);
        stack_t cur;
        if (sigaltstack(NULL, &cur) < 0)
                return; /* cannot tell whether it is in use: keep it */
        if ((uint8_t *)cur.ss_sp == alt.mine + page && !(cur.ss_flags & SS_DISABLE)) {
                if (cur.ss_flags & SS_ONSTACK)
                        return; /* exiting from a handler running on it: keep it */
                stack_t off = {.ss_flags = SS_DISABLE};
                if (sigaltstack(&off, NULL) < 0)
                        return;
        }
        munmap(alt.mine, page + n);
        alt.mine = NULL;
        alt.lo = alt.hi = 0;
}

void fr__altstack_free_record(struct fr_thread *t) {
        uint8_t *m = atomic_exchange_explicit(&t->altstack, NULL, memory_order_relaxed);
        /* In a forked child the calling thread's own stack is still in use
         * (the child inherits it); the records of the parent's other threads
         * name stacks nobody runs on here. */
        if (m && m != alt.mine && m != atomic_load(&forked_keep))
                munmap(m, page_bytes() + atomic_load(&stack_bytes));
}
