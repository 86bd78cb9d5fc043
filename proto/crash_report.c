/* The crash report of a post-mortem trace (crash_report.h). One pass of the
 * validating reader collects, per thread, its name, its last sampled stack,
 * its open regions and its last events, the open tasks, the loaded objects of
 * the last generation and the CRASH record; the report is then written from
 * that, symbolized with libdw through symbolize.h. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crash_report.h"
#include "symbolize.h"
#include "trace_encode.h"
#include "trace_format.h"
#include "trace_reader.h"

#define LAST_EVENTS 8
#define MAX_THREADS 65536

struct th {
        uint64_t tid;
        char name[64];
        bool alive, seen_sample;
        uint64_t frames[FR_MAX_STACK_FRAMES];
        uint32_t nframes;
        uint64_t sample_ns; /* CLOCK_MONOTONIC of the last sample */
        uint32_t depth;
        struct {
                uint64_t task;
                char name[64];
        } regions[FR_MAX_REGION_DEPTH];
        char events[LAST_EVENTS][160];
        uint64_t event_ns[LAST_EVENTS];
        unsigned nevents; /* total seen; the last LAST_EVENTS are kept */
};

struct task {
        uint64_t id, parent;
        char name[64];
};

struct ctx {
        struct th *th;
        size_t nth, cap;
        struct task *tasks;
        size_t ntasks, tcap;
        struct fr_map *maps; /* of the last generation, copied */
        char **paths;
        uint8_t **bids;
        size_t nmaps;
        bool has_crash;
        struct fr_crash crash;
        uint64_t crash_frames[FR_MAX_STACK_FRAMES];
        uint64_t regs[64];
        char crash_name[64];
        uint64_t crash_ns, crash_real_ns;
        int partial;
        char reason[4200], comm[260], exe[4100];
        uint64_t pid;
        int oom;
};

static struct th *thread(struct ctx *c, uint64_t tid) {
        for (size_t i = c->nth; i-- > 0;)
                if (c->th[i].tid == tid)
                        return &c->th[i];
        if (c->nth >= MAX_THREADS)
                return NULL;
        if (c->nth == c->cap) {
                size_t cap = c->cap ? 2 * c->cap : 16;
                struct th *v = realloc(c->th, cap * sizeof *v);
                if (!v) {
                        c->oom = 1;
                        return NULL;
                }
                c->th = v;
                c->cap = cap;
        }
        struct th *t = &c->th[c->nth++];
        memset(t, 0, sizeof *t);
        t->tid = tid;
        return t;
}

static void copy_name(char *dst, size_t n, const char *s) { snprintf(dst, n, "%s", s ? s : ""); }

static uint64_t mono(const struct fr_generation *g, uint64_t t) {
        return g->mono_ns + fr_ticks_to_ns(g, t >= g->start ? t - g->start : 0);
}

static void task_add(struct ctx *c, uint64_t id, uint64_t parent, const char *name) {
        if (c->ntasks == c->tcap) {
                size_t cap = c->tcap ? 2 * c->tcap : 16;
                struct task *v = realloc(c->tasks, cap * sizeof *v);
                if (!v) {
                        c->oom = 1;
                        return;
                }
                c->tasks = v;
                c->tcap = cap;
        }
        struct task *t = &c->tasks[c->ntasks++];
        t->id = id;
        t->parent = parent;
        copy_name(t->name, sizeof t->name, name);
}

static void task_remove(struct ctx *c, uint64_t id) {
        for (size_t i = 0; i < c->ntasks; i++)
                if (c->tasks[i].id == id) {
                        c->tasks[i] = c->tasks[--c->ntasks];
                        return;
                }
}

static const char *event_text(const struct fr_event *e, char *buf, size_t n) {
        switch (e->type) {
        case FR_EV_TASK_BEGIN:
                snprintf(buf, n, "task %" PRIu64 " begins: %s", e->task, e->name ? e->name : "");
                break;
        case FR_EV_TASK_END:
                snprintf(buf, n, "task %" PRIu64 " ends", e->task);
                break;
        case FR_EV_REGION_BEGIN:
                snprintf(buf, n, "region begins: %s (task %" PRIu64 ")", e->name ? e->name : "", e->task);
                break;
        case FR_EV_REGION_END:
                snprintf(buf, n, "region ends: %s (task %" PRIu64 ")", e->name ? e->name : "", e->task);
                break;
        case FR_EV_LOG:
                snprintf(buf, n, "log [%s] %.*s", e->category ? e->category : "",
                         (int)(e->message_len > 100 ? 100 : e->message_len), e->message);
                break;
        case FR_EV_THREAD_NAME:
                snprintf(buf, n, "thread named %s", e->name ? e->name : "");
                break;
        case FR_EV_THREAD_START:
                snprintf(buf, n, "thread starts");
                break;
        case FR_EV_THREAD_EXIT:
                snprintf(buf, n, "thread exits");
                break;
        case FR_EV_LOST:
                snprintf(buf, n, "%" PRIu64 " lost (kind %" PRIu64 ")", e->count, e->lost_kind);
                break;
        default:
                snprintf(buf, n, "event type %u", e->type);
        }
        return buf;
}

static int on_gen(const struct fr_trace_header *h, const struct fr_generation *g, void *arg) {
        struct ctx *c = arg;
        copy_name(c->reason, sizeof c->reason, h->reason);
        copy_name(c->comm, sizeof c->comm, h->comm);
        copy_name(c->exe, sizeof c->exe, h->exe);
        c->pid = h->pid;
        /* The state at the start: STATUS says it all. */
        for (size_t i = 0; i < c->nth; i++)
                c->th[i].alive = false;
        for (size_t i = 0; i < g->nthreads; i++) {
                struct th *t = thread(c, g->threads[i].tid);
                if (!t)
                        continue;
                t->alive = true;
                if (g->threads[i].name)
                        copy_name(t->name, sizeof t->name, g->threads[i].name);
                t->depth = g->threads[i].nregions;
                for (uint32_t k = 0; k < t->depth; k++) {
                        t->regions[k].task = g->threads[i].regions[k].task;
                        copy_name(t->regions[k].name, sizeof t->regions[k].name,
                                  g->threads[i].regions[k].name);
                }
        }
        c->ntasks = 0;
        for (size_t i = 0; i < g->ntasks; i++)
                task_add(c, g->tasks[i].id, g->tasks[i].parent, g->tasks[i].name);
        for (size_t i = 0; i < g->nevents; i++) {
                const struct fr_event *e = &g->events[i];
                struct th *t = thread(c, e->tid);
                if (!t)
                        continue;
                switch (e->type) {
                case FR_EV_THREAD_START:
                        t->alive = true;
                        t->depth = 0;
                        break;
                case FR_EV_THREAD_EXIT:
                        t->alive = false;
                        t->depth = 0;
                        break;
                case FR_EV_THREAD_NAME:
                        copy_name(t->name, sizeof t->name, e->name);
                        break;
                case FR_EV_REGION_BEGIN:
                        if (t->depth < FR_MAX_REGION_DEPTH) {
                                t->regions[t->depth].task = e->task;
                                copy_name(t->regions[t->depth].name, sizeof t->regions[0].name, e->name);
                                t->depth++;
                        }
                        break;
                case FR_EV_REGION_END:
                        if (t->depth)
                                t->depth--;
                        break;
                case FR_EV_TASK_BEGIN:
                        task_add(c, e->task, e->parent, e->name);
                        break;
                case FR_EV_TASK_END:
                        task_remove(c, e->task);
                        break;
                }
                unsigned k = t->nevents++ % LAST_EVENTS;
                event_text(e, t->events[k], sizeof t->events[k]);
                t->event_ns[k] = mono(g, e->time);
        }
        for (size_t i = 0; i < g->nsamples; i++) {
                const struct fr_sample *s = &g->samples[i];
                struct th *t = thread(c, s->tid);
                if (!t)
                        continue;
                t->seen_sample = true;
                t->nframes = s->nframes;
                memcpy(t->frames, s->frames, s->nframes * sizeof *s->frames);
                t->sample_ns = mono(g, s->time);
        }
        /* Loaded objects: the last generation's. */
        for (size_t i = 0; i < c->nmaps; i++) {
                free(c->paths[i]);
                free(c->bids[i]);
        }
        free(c->maps);
        free(c->paths);
        free(c->bids);
        c->maps = calloc(g->nmaps + 1, sizeof *c->maps);
        c->paths = calloc(g->nmaps + 1, sizeof *c->paths);
        c->bids = calloc(g->nmaps + 1, sizeof *c->bids);
        c->nmaps = 0;
        if (!c->maps || !c->paths || !c->bids)
                return c->oom = 1, -ENOMEM;
        for (size_t i = 0; i < g->nmaps; i++) {
                c->maps[i] = g->maps[i];
                c->paths[i] = strdup(g->maps[i].path);
                c->bids[i] = malloc(g->maps[i].build_id_len + 1);
                if (!c->paths[i] || !c->bids[i])
                        return c->oom = 1, -ENOMEM;
                memcpy(c->bids[i], g->maps[i].build_id, g->maps[i].build_id_len);
                c->maps[i].path = c->paths[i];
                c->maps[i].build_id = c->bids[i];
                c->nmaps++;
        }
        c->partial = g->partial;
        if (g->crash) {
                c->has_crash = true;
                c->crash = *g->crash;
                memcpy(c->crash_frames, g->crash->frames, g->crash->nframes * sizeof(uint64_t));
                memcpy(c->regs, g->crash->regs, g->crash->nregs * sizeof(uint64_t));
                copy_name(c->crash_name, sizeof c->crash_name, g->crash->thread_name);
                c->crash.frames = c->crash_frames;
                c->crash.regs = c->regs;
                c->crash.thread_name = c->crash_name;
                c->crash_ns = mono(g, g->crash->time);
                c->crash_real_ns = g->real_ns + fr_ticks_to_ns(g, g->crash->time - g->start);
        }
        return c->oom ? -ENOMEM : 0;
}

static void ctx_free(struct ctx *c) {
        for (size_t i = 0; i < c->nmaps; i++) {
                free(c->paths[i]);
                free(c->bids[i]);
        }
        free(c->maps);
        free(c->paths);
        free(c->bids);
        free(c->th);
        free(c->tasks);
}

static int collect(const uint8_t *trace, size_t len, struct ctx *c, char *err, size_t errlen) {
        memset(c, 0, sizeof *c);
        int r = fr_trace_read(trace, len, 0, on_gen, c, NULL, err, errlen);
        if (r > 0 || c->oom)
                r = -ENOMEM;
        return r;
}

/* ---- names --------------------------------------------------------------------- */

const char *fr_signal_name(uint64_t signo, char *buf, size_t n) {
        static const char *const names[] = {
                [SIGHUP] = "SIGHUP",   [SIGINT] = "SIGINT",   [SIGQUIT] = "SIGQUIT", [SIGILL] = "SIGILL",
                [SIGTRAP] = "SIGTRAP", [SIGABRT] = "SIGABRT", [SIGBUS] = "SIGBUS",   [SIGFPE] = "SIGFPE",
                [SIGKILL] = "SIGKILL", [SIGUSR1] = "SIGUSR1", [SIGSEGV] = "SIGSEGV", [SIGUSR2] = "SIGUSR2",
                [SIGPIPE] = "SIGPIPE", [SIGALRM] = "SIGALRM", [SIGTERM] = "SIGTERM", [SIGSYS] = "SIGSYS",
        };
        if (signo < sizeof names / sizeof names[0] && names[signo])
                return names[signo];
        snprintf(buf, n, "signal %" PRIu64, signo);
        return buf;
}

const char *fr_sicode_name(uint64_t signo, int64_t code, char *buf, size_t n) {
        static const char *const segv[] = {NULL, "SEGV_MAPERR", "SEGV_ACCERR", "SEGV_BNDERR", "SEGV_PKUERR"};
        static const char *const bus[] = {NULL, "BUS_ADRALN", "BUS_ADRERR", "BUS_OBJERR", "BUS_MCEERR_AR",
                                          "BUS_MCEERR_AO"};
        static const char *const ill[] = {NULL,         "ILL_ILLOPC", "ILL_ILLOPN", "ILL_ILLADR", "ILL_ILLTRP",
                                          "ILL_PRVOPC", "ILL_PRVREG", "ILL_COPROC", "ILL_BADSTK"};
        static const char *const fpe[] = {NULL,         "FPE_INTDIV", "FPE_INTOVF", "FPE_FLTDIV", "FPE_FLTOVF",
                                          "FPE_FLTUND", "FPE_FLTRES", "FPE_FLTINV", "FPE_FLTSUB"};
        static const char *const trap[] = {NULL, "TRAP_BRKPT", "TRAP_TRACE", "TRAP_BRANCH", "TRAP_HWBKPT"};
        const char *const *t = NULL;
        size_t nt = 0;
#define TABLE(x) (t = (x), nt = sizeof(x) / sizeof((x)[0]))
        if (signo == SIGSEGV)
                TABLE(segv);
        else if (signo == SIGBUS)
                TABLE(bus);
        else if (signo == SIGILL)
                TABLE(ill);
        else if (signo == SIGFPE)
                TABLE(fpe);
        else if (signo == SIGTRAP)
                TABLE(trap);
#undef TABLE
        if (code > 0 && (uint64_t)code < nt && t[code])
                return t[code];
        if (signo == SIGSYS && code == 1)
                return "SYS_SECCOMP";
        switch (code) {
        case 0: return "SI_USER";
        case 0x80: return "SI_KERNEL";
        case -1: return "SI_QUEUE";
        case -2: return "SI_TIMER";
        case -6: return "SI_TKILL";
        }
        snprintf(buf, n, "code %" PRId64, code);
        return buf;
}

/* A fault at an address (not a signal sent by kill, raise or abort). */
static bool has_address(const struct fr_crash *x) {
        return x->code > 0 && x->code != 0x80 &&
               (x->signo == SIGSEGV || x->signo == SIGBUS || x->signo == SIGILL || x->signo == SIGFPE ||
                x->signo == SIGTRAP);
}

/* ---- symbols ---------------------------------------------------------------------- */

static const struct fr_map *map_of(const struct ctx *c, uint64_t addr) {
        for (size_t i = 0; i < c->nmaps; i++)
                if (addr >= c->maps[i].start && addr < c->maps[i].limit)
                        return &c->maps[i];
        return NULL;
}

/* display - a function's name as users know it: glibc's internal aliases
 * (__GI_abort) without their prefix. */
static const char *display(const char *f) {
        if (!f)
                return "?";
        return strncmp(f, "__GI_", 5) == 0 && f[5] ? f + 5 : f;
}

/* describe - frame i of a stack: "function (file:line)" (full) or
 * "function" (short), else the object and offset, else the address. */
static void describe(const struct ctx *c, struct fr_symbolizer *sym, uint64_t addr, bool ret_addr,
                     bool full, char *out, size_t n) {
        const struct fr_map *m = map_of(c, addr);
        uint64_t a = ret_addr && addr ? addr - 1 : addr;
        struct fr_sym_object *o = NULL;
        struct fr_sym_result res;
        if (m && sym) {
                struct fr_object obj = {m->path, m->build_id, m->build_id_len, m->start, m->limit, m->offset};
                if (fr_sym_open(sym, &obj, &o) < 0 || fr_symbolize(o, a, &res) < 0)
                        res.nframes = 0;
        } else {
                res.nframes = 0;
        }
        if (res.nframes && res.frames[0].function) {
                if (!full) {
                        snprintf(out, n, "%s", display(res.frames[res.nframes - 1].function));
                        return;
                }
                size_t o2 = 0;
                for (size_t k = 0; k < res.nframes && o2 < n; k++) {
                        const struct fr_sym_frame *f = &res.frames[k];
                        const char *file = f->file ? strrchr(f->file, '/') : NULL;
                        file = file ? file + 1 : f->file;
                        int w = file && f->line
                                        ? snprintf(out + o2, n - o2, "%s%s (%s:%" PRId64 ")", k ? " inlined in " : "",
                                                   display(f->function), file, f->line)
                                        : snprintf(out + o2, n - o2, "%s%s", k ? " inlined in " : "",
                                                   display(f->function));
                        if (w < 0)
                                break;
                        o2 += (size_t)w;
                }
                return;
        }
        if (m) {
                const char *base = strrchr(m->path, '/');
                snprintf(out, n, "%s+0x%" PRIx64, base ? base + 1 : m->path, addr - m->start + m->offset);
        } else {
                snprintf(out, n, "0x%" PRIx64, addr);
        }
}

static void put(struct fr_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct fr_buf *b, const char *fmt, ...) {
        char line[8192];
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        if (k > 0)
                fr_buf_put_bytes(b, line, (size_t)k < sizeof line ? (size_t)k : sizeof line - 1);
}

static void reason_of(const struct ctx *c, struct fr_symbolizer *sym, char *ret, size_t n) {
        const struct fr_crash *x = &c->crash;
        char b1[32], b2[32], where[64] = "";
        if (has_address(x))
                snprintf(where, sizeof where, " at 0x%" PRIx64, x->addr);
        int o = snprintf(ret, n, "crash: %s (%s)%s%s in thread %" PRIu64 " \"%s\":",
                         fr_signal_name(x->signo, b1, sizeof b1), fr_sicode_name(x->signo, x->code, b2, sizeof b2),
                         x->flags & FR_CRASH_OVERFLOW ? ", stack overflow," : "", where, x->tid,
                         x->thread_name);
        for (uint32_t i = 0; i < x->nframes && o > 0 && (size_t)o < n; i++) {
                char f[512];
                describe(c, sym, x->frames[i], i > 0, false, f, sizeof f);
                /* A deep recursion says itself once. */
                if (i && x->frames[i] == x->frames[i - 1])
                        continue;
                o += snprintf(ret + o, n - (size_t)o, "%s%s", i ? " <- " : " ", f);
                if (i >= 12) {
                        if ((size_t)o < n)
                                snprintf(ret + o, n - (size_t)o, " <- ...");
                        break;
                }
        }
}

int fr_crash_reason(const uint8_t *trace, size_t len, struct fr_symbolizer *sym, char *ret, size_t n) {
        struct ctx *c = calloc(1, sizeof *c);
        char err[256];
        if (!c)
                return -ENOMEM;
        int r = collect(trace, len, c, err, sizeof err);
        if (r == 0 && c->has_crash) {
                reason_of(c, sym, ret, n);
                r = 1;
        }
        ctx_free(c);
        free(c);
        return r;
}

static void put_stack(struct fr_buf *b, const struct ctx *c, struct fr_symbolizer *sym,
                      const uint64_t *frames, uint32_t n);

static void put_crashing(struct fr_buf *b, const struct ctx *c, struct fr_symbolizer *sym) {
        const struct fr_crash *x = &c->crash;
        put(b, "Crashing thread %" PRIu64 " \"%s\":\n", x->tid, x->thread_name);
        if (x->flags & FR_CRASH_SCANNED)
                put(b, "  (no frame pointers: frames #1 on were found by scanning the stack for return\n"
                       "  addresses, and may include stale ones)\n");
        put_stack(b, c, sym, x->frames, x->nframes);
#if defined(__x86_64__)
        static const char *const regs[] = {"r8",  "r9",  "r10", "r11", "r12", "r13",    "r14", "r15",
                                           "rdi", "rsi", "rbp", "rbx", "rdx", "rax",    "rcx", "rsp",
                                           "rip", "efl", "csgsfs", "err", "trapno", "oldmask", "cr2"};
        if (x->nregs) {
                put(b, "  registers:\n");
                for (uint32_t i = 0; i < x->nregs && i < sizeof regs / sizeof regs[0]; i++)
                        put(b, "    %-7s 0x%016" PRIx64 "%s", regs[i], x->regs[i], i % 3 == 2 ? "\n" : "");
                put(b, "\n");
        }
#endif
}

static void put_stack(struct fr_buf *b, const struct ctx *c, struct fr_symbolizer *sym,
                      const uint64_t *frames, uint32_t n) {
        for (uint32_t i = 0; i < n; i++) {
                char f[2048];
                describe(c, sym, frames[i], i > 0, true, f, sizeof f);
                put(b, "    #%-2u 0x%016" PRIx64 " %s\n", i, frames[i], f);
        }
        if (n == 0)
                put(b, "    (no stack)\n");
}

int fr_crash_report(const uint8_t *trace, size_t len, struct fr_symbolizer *sym, struct fr_buf *b,
                    char *err, size_t errlen) {
        struct ctx *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        int r = collect(trace, len, c, err, errlen);
        if (r == 0 && !c->has_crash) {
                snprintf(err, errlen, "the trace holds no crash record");
                r = -ENOENT;
        }
        if (r < 0) {
                ctx_free(c);
                free(c);
                return r;
        }
        const struct fr_crash *x = &c->crash;
        char reason[2048], b1[32], b2[32], when[64];
        reason_of(c, sym, reason, sizeof reason);
        time_t secs = (time_t)(c->crash_real_ns / 1000000000u);
        struct tm tm;
        gmtime_r(&secs, &tm);
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
        put(b, "flightrec crash report\n\n");
        put(b, "process:  %s[%" PRIu64 "] %s\n", c->comm, c->pid, c->exe);
        put(b, "time:     %s.%06u UTC\n", when, (unsigned)(c->crash_real_ns % 1000000000u / 1000u));
        put(b, "signal:   %s (%s)%s\n", fr_signal_name(x->signo, b1, sizeof b1),
            fr_sicode_name(x->signo, x->code, b2, sizeof b2),
            x->flags & FR_CRASH_OVERFLOW ? ": stack overflow" : "");
        if (has_address(x))
                put(b, "address:  0x%" PRIx64 "\n", x->addr);
        put(b, "thread:   %" PRIu64 " \"%s\"\n", x->tid, x->thread_name);
        put(b, "summary:  %s\n\n", reason);
        bool known = false;
        for (size_t i = 0; i < c->nth; i++)
                known |= c->th[i].tid == x->tid && c->th[i].alive;
        if (!known)
                put_crashing(b, c, sym);
        for (int pass = 0; pass < 2; pass++) {
                for (size_t i = 0; i < c->nth; i++) {
                        const struct th *t = &c->th[i];
                        bool crashing = t->tid == x->tid && t->alive;
                        if ((pass == 0) != crashing || (!t->alive && !crashing))
                                continue;
                        if (crashing)
                                put_crashing(b, c, sym);
                        else
                                put(b, "\nThread %" PRIu64 " \"%s\":\n", t->tid, t->name);
                        if (!crashing) {
                                if (t->seen_sample) {
                                        put(b, "  last sampled stack (%.3f s before the crash):\n",
                                            (double)((int64_t)(c->crash_ns - t->sample_ns)) / 1e9);
                                        put_stack(b, c, sym, t->frames, t->nframes);
                                } else {
                                        put(b, "  no sampled stack (it did not run on a CPU while recorded)\n");
                                }
                        }
                        if (t->depth) {
                                put(b, "  open regions (outermost first):\n");
                                for (uint32_t k = 0; k < t->depth && k < FR_MAX_REGION_DEPTH; k++)
                                        put(b, "    %s (task %" PRIu64 ")\n", t->regions[k].name, t->regions[k].task);
                        }
                        unsigned ne = t->nevents < LAST_EVENTS ? t->nevents : LAST_EVENTS;
                        if (ne)
                                put(b, "  last events:\n");
                        for (unsigned k = 0; k < ne; k++) {
                                unsigned idx = (t->nevents - ne + k) % LAST_EVENTS;
                                put(b, "    %9.3f s  %s\n",
                                    -(double)((int64_t)(c->crash_ns - t->event_ns[idx])) / 1e9, t->events[idx]);
                        }
                }
        }
        if (c->ntasks) {
                put(b, "\nOpen tasks:\n");
                for (size_t i = 0; i < c->ntasks; i++)
                        put(b, "  %" PRIu64 " %s%s\n", c->tasks[i].id, c->tasks[i].name,
                            c->tasks[i].parent ? " (child)" : "");
        }
        put(b, "\nLoaded objects:\n");
        for (size_t i = 0; i < c->nmaps; i++) {
                char bid[2 * FR_MAX_BUILD_ID_BYTES + 1] = "";
                for (size_t k = 0; k < c->maps[i].build_id_len && k < FR_MAX_BUILD_ID_BYTES; k++)
                        snprintf(bid + 2 * k, 3, "%02x", c->maps[i].build_id[k]);
                put(b, "  0x%012" PRIx64 "-0x%012" PRIx64 " %s %s\n", c->maps[i].start, c->maps[i].limit,
                    c->maps[i].path, bid[0] ? bid : "(no build id)");
        }
        if (!c->partial)
                put(b, "\n(the last generation is complete: the events up to the death were not salvaged)\n");
        ctx_free(c);
        free(c);
        return b->failed ? -ENOMEM : 0;
}
