/* The stack walker: async-signal-safe code only (no lock, no allocation, no
 * libc call but process_vm_readv in remote mode). It reads the tables that
 * fr_unwind_table.c publishes, and memory only inside the bounds it is given.
 *
 * Per frame: the kernel's signal trampoline (rt_sigreturn) continues from the
 * ucontext saved on the stack; else the row covering the pc (the return
 * address minus one for callers, which may end a noreturn function) gives
 * the CFA and where RBP was saved; where no row covers the pc, or the row is
 * a STOP (auto mode), the frame-pointer rule: [RBP] = caller's RBP,
 * [RBP + 8] = return address. Each frame's stack pointer must rise within
 * one range (a signal frame may move to another), so the walk ends. */
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

#include "fr_unwind.h"

struct fr_uw_pub fr__uw_pub;

unsigned fr__uw_enter(void) {
        unsigned e = atomic_load_explicit(&fr__uw_pub.epoch, memory_order_seq_cst) & 1;
        atomic_fetch_add_explicit(&fr__uw_pub.readers[e], 1, memory_order_seq_cst);
        return e;
}
const struct fr_uw_set *fr__uw_current(void) {
        return atomic_load_explicit(&fr__uw_pub.current, memory_order_seq_cst);
}
void fr__uw_leave(unsigned token) {
        atomic_fetch_sub_explicit(&fr__uw_pub.readers[token & 1], 1, memory_order_release);
}
void fr__unwind_count_stop(unsigned stop) {
        if (stop < FR_UW_END_KINDS)
                atomic_fetch_add_explicit(&fr__uw_pub.stops[stop], 1, memory_order_relaxed);
}

const struct fr_uw_row *fr__uw_lookup(const struct fr_uw_table *t, uintptr_t lo, uintptr_t pc) {
        if (pc < lo)
                return NULL;
        uintptr_t off = pc - lo;
        uintptr_t pg = off >> FR_UW_PAGE_SHIFT;
        if (pg >= t->npages)
                return NULL;
        uint32_t a = t->page[pg], b = t->page[pg + 1] + 1; /* the row is in [a, b) */
        if (t->rows[a].off > off)
                return NULL;
        while (b - a > 1) {
                uint32_t m = a + (b - a) / 2;
                if (t->rows[m].off <= off)
                        a = m;
                else
                        b = m;
        }
        return &t->rows[a];
}

static const struct fr_uw_object *find_object(const struct fr_uw_set *s, uintptr_t pc) {
        uint32_t a = 0, b = s->nobjects;
        while (a < b) {
                uint32_t m = (a + b) / 2;
                if (s->objects[m].lo <= pc)
                        a = m + 1;
                else
                        b = m;
        }
        return a && pc < s->objects[a - 1].hi ? &s->objects[a - 1] : NULL;
}

struct walk {
        const struct fr_uw_bounds *b;
        unsigned flags;
};

/* range_of - which range holds [p, p + len), or -1. */
static int range_of(const struct fr_uw_bounds *b, uintptr_t p, size_t len) {
        for (unsigned i = 0; i < b->n; i++)
                if (p >= b->lo[i] && p < b->hi[i] && len <= b->hi[i] - p)
                        return (int)i;
        return -1;
}

/* Stack words are read without the sanitizers' checks: a frame's saved
 * registers sit between another function's redzones, and a frame pointer
 * followed by the fallback may point anywhere inside the stack. */
__attribute__((no_sanitize("address", "thread", "undefined"))) static void copy_words(uint64_t *out,
                                                                                  uintptr_t p, size_t n) {
        for (size_t i = 0; i < n; i++)
                out[i] = ((const volatile uint64_t *)p)[i];
}

static bool rd(const struct walk *w, uintptr_t p, void *out, size_t len) {
        if (range_of(w->b, p, len) < 0)
                return false;
        if (!(w->flags & FR_UW_REMOTE)) {
                if ((p & 7) || (len & 7))
                        return false;
                copy_words(out, p, len / 8);
                return true;
        }
        struct iovec local = {out, len}, remote = {(void *)p, len};
        return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)len;
}

static const uint8_t sigreturn_code[] = {0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05};

/* is_trampoline - pc is the kernel-entered signal return (__restore_rt):
 * one of the restorers found off the signal path, or, where the row cannot
 * say more (libc's CFI for it is expressions: a STOP row), its code bytes
 * inside an object that is never unloaded (so reading them cannot fault).
 * Ordinary frames never read code: one cache miss less per frame. */
static bool is_trampoline(const struct fr_uw_set *s, const struct fr_uw_object *o, unsigned kind, uintptr_t pc) {
        if (!s)
                return false;
        for (unsigned k = 0; k < 4 && s->restorer[k]; k++)
                if (pc == s->restorer[k])
                        return true;
        return (kind == FR_UW_STOP || kind == FR_UW_GAP) && o && o->pinned &&
               pc + sizeof sigreturn_code <= o->hi &&
               memcmp((const void *)pc, sigreturn_code, sizeof sigreturn_code) == 0;
}

static bool canonical(uintptr_t pc) {
        return pc >= 4096 && pc < ((uintptr_t)1 << 47);
}

uint32_t fr__unwind_regs(const struct fr_uw_regs *r, const struct fr_uw_bounds *b, unsigned flags,
                         uint64_t *pcs, uint32_t max, struct fr_uw_result *ret) {
        struct fr_uw_result res = {.stop = FR_UW_END_MAX};
        struct walk w = {b, flags};
        uintptr_t pc = r->pc, sp = r->sp, fp = r->fp;
        bool exact = true; /* pc is where execution is, not a return address */
        uintptr_t dbg_cfa = 0;
        unsigned mode = fr__unwind_mode;
        unsigned token = fr__uw_enter();
        const struct fr_uw_set *s = mode == FR_UW_MODE_FP ? NULL : fr__uw_current();
        if (max)
                pcs[res.n++] = pc;
        const struct fr_uw_object *last = NULL; /* callers are often in the same object */
        while (res.n < max) {
                uintptr_t at = exact ? pc : pc - 1;
                const struct fr_uw_object *o =
                        last && at >= last->lo && at < last->hi ? last : s ? find_object(s, at) : NULL;
                last = o;
                int cur = range_of(b, sp, 1);
                if (cur < 0) {
                        res.stop = FR_UW_END_BOUNDS;
                        break;
                }
                const struct fr_uw_row *row = o && o->table ? fr__uw_lookup(o->table, o->lo, at) : NULL;
                unsigned kind = row ? row->kind : FR_UW_GAP;
                if (is_trampoline(s, o, kind, pc)) {
                        /* sp points at the ucontext of an rt_sigframe. */
                        uintptr_t g = sp + offsetof(ucontext_t, uc_mcontext.gregs);
                        uint64_t regs[NGREG];
                        if (!rd(&w, g, regs, sizeof regs)) {
                                res.stop = FR_UW_END_BOUNDS;
                                break;
                        }
                        pc = regs[REG_RIP];
                        sp = regs[REG_RSP];
                        fp = regs[REG_RBP];
                        exact = true;
                        if (!canonical(pc)) {
                                res.stop = FR_UW_END_BADPC;
                                break;
                        }
                        pcs[res.n++] = pc;
                        continue;
                }
                if (o && !o->table && s && !atomic_load_explicit(o->wanted, memory_order_relaxed)) {
                        atomic_store_explicit(o->wanted, 1, memory_order_relaxed); /* build it */
                        atomic_store_explicit(&fr__uw_pub.want, 1, memory_order_relaxed);
                }
                uintptr_t cfa, ra, nfp = fp;
                if (kind == FR_UW_ROOT) {
                        res.stop = FR_UW_END_ROOT;
                        break;
                }
                if (kind == FR_UW_SP || kind == FR_UW_FP || kind == FR_UW_PLT) {
                        if (kind == FR_UW_SP)
                                cfa = sp + (intptr_t)row->cfa_off;
                        else if (kind == FR_UW_FP)
                                cfa = fp + (intptr_t)row->cfa_off;
                        else
                                cfa = sp + 8 + ((pc & 15) >= (uintptr_t)row->cfa_off ? 8 : 0);
                        dbg_cfa = cfa;
                        if (cfa <= sp || !rd(&w, cfa - 8, &ra, 8) ||
                            (row->fp == FR_UW_FP_CFA && !rd(&w, cfa + row->fp_off, &nfp, 8))) {
                                res.stop = FR_UW_END_BOUNDS;
                                break;
                        }
                        res.dwarf++;
                } else {
                        /* No row, or a rule the table cannot express. */
                        if (mode == FR_UW_MODE_DWARF) {
                                res.stop = kind == FR_UW_STOP ? FR_UW_END_RULE : FR_UW_END_NOCFI;
                                break;
                        }
                        if (fp == 0 && mode == FR_UW_MODE_FP) {
                                res.stop = FR_UW_END_ROOT; /* _start clears RBP */
                                break;
                        }
                        if ((fp & 7) || fp < sp || range_of(b, fp, 16) != cur || !rd(&w, fp, &nfp, 8) ||
                            !rd(&w, fp + 8, &ra, 8)) {
                                res.stop = kind == FR_UW_STOP ? FR_UW_END_RULE
                                           : mode == FR_UW_MODE_FP ? FR_UW_END_BOUNDS
                                                                   : FR_UW_END_NOCFI;
                                break;
                        }
                        cfa = fp + 16;
                        res.fp++;
                }
                if (!canonical(ra)) {
                        res.stop = ra == 0 ? FR_UW_END_ROOT : FR_UW_END_BADPC;
                        break;
                }
                /* A return address in no loaded object: a frame pointer that was
                 * a general register (code without frame pointers and no table
                 * yet), or JIT code, which only the traceback hook can name. */
                if (s && !find_object(s, ra - 1)) {
                        res.stop = FR_UW_END_BADPC;
                        break;
                }
                pcs[res.n++] = ra;
                pc = ra;
                sp = cfa;
                fp = nfp;
                exact = false;
        }
        fr__uw_leave(token);
        res.sp = sp;
        atomic_fetch_add_explicit(&fr__uw_pub.frames, res.n, memory_order_relaxed);
        if (res.stop == FR_UW_END_BOUNDS || res.stop == FR_UW_END_NOCFI || res.stop == FR_UW_END_BADPC) {
                uint64_t v[5] = {res.n, pc, sp, dbg_cfa, res.stop};
                for (int i = 0; i < 5; i++)
                        atomic_store_explicit(&fr__uw_pub.last_bad[i], v[i], memory_order_relaxed);
        }
        if (ret)
                *ret = res;
        return res.n;
}

uint32_t fr__unwind_ucontext(const void *ucv, const struct fr_uw_bounds *b, uint64_t *pcs, uint32_t max,
                             struct fr_uw_result *ret) {
        const ucontext_t *uc = ucv;
        struct fr_uw_regs r = {.pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP],
                               .sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP],
                               .fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP]};
        struct fr_uw_bounds all = *b;
        /* The alternate signal stack the thread had at delivery: the
         * interrupted code may be running on it (the application's handler). */
        const stack_t *ss = &uc->uc_stack;
        if (!(ss->ss_flags & SS_DISABLE) && ss->ss_sp && ss->ss_size >= 4096 && ss->ss_size < (1u << 30) &&
            all.n < FR_UW_MAX_RANGES && range_of(&all, (uintptr_t)ss->ss_sp, ss->ss_size) < 0) {
                all.lo[all.n] = (uintptr_t)ss->ss_sp;
                all.hi[all.n++] = (uintptr_t)ss->ss_sp + ss->ss_size;
        }
        /* Below the interrupted stack pointer lies nothing of the walk's (and
         * maybe no mapped page, for a growing main stack) but the red zone:
         * its 128 bytes are mapped (the kernel wrote the signal frame below
         * them), and an epilogue's CFI may still name a register slot popped
         * into it (GCC does not always restore the rule after `pop %rbp`). */
        for (unsigned i = 0; i < all.n; i++)
                if (r.sp >= all.lo[i] && r.sp < all.hi[i] && r.sp - 128 > all.lo[i])
                        all.lo[i] = r.sp - 128;
        return fr__unwind_regs(&r, &all, 0, pcs, max, ret);
}
