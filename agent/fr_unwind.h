/* Stack unwinding without frame pointers: compact unwind tables built from
 * each loaded object's .eh_frame (fr_unwind_table.c, off the signal path) and
 * an async-signal-safe walker that reads them (fr_unwind.c).
 *
 * Users of the walker: the SIGPROF handler (from its ucontext), the crash
 * handler (from the faulting ucontext), and the advancer unwinding a blocked
 * thread from registers saved at the blocking call (another thread's stack,
 * read through process_vm_readv so that a stack unmapped under it cannot
 * fault). See docs/agent-design.md, "Unwinding". */
#ifndef FR_UNWIND_H
#define FR_UNWIND_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* ---- rows ------------------------------------------------------------------ */
enum fr_uw_kind {
        FR_UW_GAP = 0,  /* no CFI covers this code: the frame-pointer rule */
        FR_UW_SP = 1,   /* CFA = RSP + cfa_off */
        FR_UW_FP = 2,   /* CFA = RBP + cfa_off */
        FR_UW_PLT = 3,  /* PLT entry: CFA = RSP + 8, + 8 when (RIP & 15) >= cfa_off */
        FR_UW_STOP = 4, /* a rule the table cannot express (expression, realignment) */
        FR_UW_ROOT = 5, /* the return address is undefined: the outermost frame */
};
enum fr_uw_fp_rule {
        FR_UW_FP_SAME = 0,  /* the caller's RBP is the current RBP */
        FR_UW_FP_CFA = 1,   /* the caller's RBP is saved at CFA + fp_off */
};

/* One row: from code offset `off` (from the object's text start) to the next
 * row's offset. The return address is always at CFA - 8 (other RA rules make
 * a STOP row); the caller's RSP is the CFA. 12 bytes. */
struct fr_uw_row {
        uint32_t off;
        int32_t cfa_off;
        uint8_t kind;   /* enum fr_uw_kind */
        uint8_t fp;     /* enum fr_uw_fp_rule */
        int16_t fp_off;
};

/* Rows of one object, sorted by off. page[i] is the index of the row that
 * covers byte (i << FR_UW_PAGE_SHIFT) of the text: the handler's search
 * starts there and ends before page[i + 1] + 1. */
#define FR_UW_PAGE_SHIFT 12
struct fr_uw_table {
        uint32_t nrows, npages;
        size_t bytes;             /* this allocation */
        const uint32_t *page;     /* npages + 1 entries */
        struct fr_uw_row rows[];  /* nrows, then the page index */
};

/* One loaded object's executable range. */
struct fr_uw_object {
        uintptr_t lo, hi;                /* code: [lo, hi) (all PF_X segments) */
        const struct fr_uw_table *table; /* NULL: not built (yet), or rejected */
        _Atomic uint8_t *wanted;         /* the builder's flag: sampled, build me */
        bool pinned;                     /* never unloaded (main program, libc, vdso,
                                          * ld.so, the agent): its code may be read */
};

/* The published set: every loaded object, sorted by lo. */
struct fr_uw_set {
        uint32_t nobjects;
        uintptr_t restorer[4];           /* signal trampolines found (sa_restorer) */
        struct fr_uw_object objects[];
};

/* ---- the walker (fr_unwind.c: async-signal-safe) --------------------------- */
/* Registers to start from: the innermost frame's pc, sp and fp. */
struct fr_uw_regs {
        uintptr_t pc, sp, fp;
};

/* Memory the walker may read: up to three ranges (the thread's stack, the
 * alternate signal stack, and one more), each [lo, hi). A frame's reads must
 * lie in one of them; anything else ends the walk. */
#define FR_UW_MAX_RANGES 3
struct fr_uw_bounds {
        uintptr_t lo[FR_UW_MAX_RANGES], hi[FR_UW_MAX_RANGES];
        unsigned n;
};

/* FLIGHTREC_UNWIND, as the trace records it (enum fr_unwind_kind). */
enum fr_uw_mode {
        FR_UW_MODE_FP = 0,    /* fp: frame pointers only (the walk of round 1) */
        FR_UW_MODE_AUTO = 1,  /* auto: tables where they cover the pc, else frame pointers */
        FR_UW_MODE_DWARF = 2, /* dwarf: tables only, no frame-pointer fallback */
};

/* Flags of fr__unwind_regs. */
#define FR_UW_REMOTE 1u /* another thread's stack: read with process_vm_readv
                         * (cannot fault even if the stack goes away) */

/* Why the walk ended (struct fr_uw_result.stop). */
enum fr_uw_stop {
        FR_UW_END_ROOT = 0,     /* a frame with an undefined return address (_start,
                                 * clone3) or a zero frame pointer in FP mode */
        FR_UW_END_MAX = 1,      /* the caller's array is full */
        FR_UW_END_BOUNDS = 2,   /* a read outside the known stack */
        FR_UW_END_RULE = 3,     /* a STOP row (rule not expressible) */
        FR_UW_END_NOCFI = 4,    /* no row and no usable frame pointer */
        FR_UW_END_BADPC = 5,    /* a return address outside every known object */
        FR_UW_END_KINDS = 6,
};

struct fr_uw_result {
        uint32_t n;          /* frames stored */
        uint8_t stop;        /* enum fr_uw_stop */
        uint32_t dwarf, fp;  /* frames found through a table / a frame pointer */
        uintptr_t sp;        /* the stack pointer of the frame the walk ended at */
};

/* fr__unwind_regs - walk from r, storing the pc of each frame (the first is
 * r->pc itself, the callers' return addresses as they are: the symbolizer
 * subtracts 1) into pcs[0..max). Async-signal-safe: no lock, no allocation;
 * reads only inside b (through process_vm_readv with FR_UW_REMOTE). A signal
 * frame met on the way (the kernel's __restore_rt) continues from the
 * registers saved in its ucontext, which may lie in another of b's ranges.
 * Returns the number of frames stored; ret (may be NULL) says why it ended. */
uint32_t fr__unwind_regs(const struct fr_uw_regs *r, const struct fr_uw_bounds *b, unsigned flags,
                         uint64_t *pcs, uint32_t max, struct fr_uw_result *ret);

/* fr__unwind_ucontext - the same from a signal handler's ucontext (a
 * ucontext_t *): the interrupted registers, and the bounds b plus the
 * alternate signal stack the ucontext names (uc_stack), if any. */
uint32_t fr__unwind_ucontext(const void *uc, const struct fr_uw_bounds *b, uint64_t *pcs, uint32_t max,
                             struct fr_uw_result *ret);

/* fr__unwind_mode - FLIGHTREC_UNWIND (enum fr_uw_mode), set by fr__unwind_init. */
extern unsigned fr__unwind_mode;

/* ---- the tables (fr_unwind_table.c: not from a signal handler) ------------- */
/* Why an object has no table. */
enum fr_uw_reject {
        FR_UW_OK = 0,
        FR_UW_REJ_NOHDR,      /* no PT_GNU_EH_FRAME */
        FR_UW_REJ_HDR,        /* .eh_frame_hdr malformed (version, encodings, bounds) */
        FR_UW_REJ_TRUNCATED,  /* a CIE or FDE runs past its segment */
        FR_UW_REJ_CIE,        /* a CIE malformed (version, augmentation, pointer) */
        FR_UW_REJ_FDE,        /* an FDE malformed (range, CIE pointer, encoding) */
        FR_UW_REJ_OPCODE,     /* an unknown or malformed call-frame instruction */
        FR_UW_REJ_BUDGET,     /* the memory bound of all tables is reached */
        FR_UW_REJ_NOMEM,
        FR_UW_REJ_KINDS,
};
extern const char *const fr__uw_reject_names[FR_UW_REJ_KINDS];

struct dl_phdr_info;
/* fr__uw_build - the table of one loaded object (as dl_iterate_phdr names it).
 * Returns 0 with *ret_table (free() it), or a negative errno with
 * *ret_reason (enum fr_uw_reject). Reads only the object's own loaded
 * segments. *ret_lo is the text start the rows' offsets count from. */
int fr__uw_build(const struct dl_phdr_info *info, struct fr_uw_table **ret_table, uintptr_t *ret_lo,
                 unsigned *ret_reason);

/* fr__uw_lookup - the row covering pc in the table (NULL: none). Safe in a
 * signal handler. */
const struct fr_uw_row *fr__uw_lookup(const struct fr_uw_table *t, uintptr_t lo, uintptr_t pc);

/* fr__unwind_parse - FLIGHTREC_UNWIND (NULL or "": auto) into *ret_mode;
 * -EINVAL (said on stderr) for anything else. */
int fr__unwind_parse(const char *s, unsigned *ret_mode);
/* fr__unwind_init - set the mode and build the first set (the main program,
 * libc and the agent at once). */
void fr__unwind_init(unsigned mode);
/* fr__unwind_update - advancer, each period: rebuild the set when objects
 * were loaded or unloaded or a sampled object wants a table; free retired
 * sets no handler can still read. */
void fr__unwind_update(void);
/* fr__unwind_poll - whether the advancer should look for wanted tables
 * every 20 ms: a handler asked for one, or the objects changed less than 2 s
 * ago and some have no table yet. */
bool fr__unwind_poll(void);
/* fr__unwind_shutdown - free everything (no handler may be running). */
void fr__unwind_shutdown(void);

/* The publication (fr_unwind.c): the current set, and the handlers in it
 * counted by epoch parity. */
struct fr_uw_pub {
        _Atomic(struct fr_uw_set *) current;
        _Atomic unsigned epoch;
        _Atomic long readers[2];
        _Atomic uint64_t stops[FR_UW_END_KINDS];
        _Atomic uint64_t frames;  /* frames stored by all walks (mean depth) */
        _Atomic uint8_t want;     /* some object's wanted flag was set */
        /* The last walk that ended early, for FLIGHTREC_DEBUG: frame index,
         * pc, sp, cfa, stop (racy by design: a hint, not a record). */
        _Atomic uint64_t last_bad[5];
};
extern struct fr_uw_pub fr__uw_pub;

/* Reading the set from a handler: enter, load, use, leave. Lock-free; the
 * builder frees a retired set only after every handler that could have
 * loaded it has left. */
unsigned fr__uw_enter(void);
const struct fr_uw_set *fr__uw_current(void);
void fr__uw_leave(unsigned token);

struct fr_uw_stats {
        uint64_t table_bytes, objects, tables, rejected;
        uint64_t rejected_by[FR_UW_REJ_KINDS];
        uint64_t stops[FR_UW_END_KINDS];
};
void fr__unwind_stats(struct fr_uw_stats *ret);
/* fr__unwind_count_stop - the walker's end reasons, for stats (relaxed). */
void fr__unwind_count_stop(unsigned stop);

#endif
