/* flightrecctl threads SNAPSHOT: a thread dump at the end of a snapshot, in
 * the spirit of jstack, and the deadlocks it shows.
 *
 * From the last generation of the trace: each thread alive at its end, with
 * its name; blocked (the BLOCKED batch: in what call, on what object, held
 * by whom, since when) or not (its last CPU sample of that generation, if
 * any); its symbolized stack; its open regions and the open tasks. Then
 * every cycle of threads waiting for mutexes the next one holds (glibc keeps
 * the owner's tid in the mutex) is reported as a deadlock, with the threads,
 * the mutexes and the stacks. */
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "symbolize.h"
#include "trace_format.h"
#include "trace_reader.h"

#define THREADS_MAX_BYTES ((size_t)1 << 30) /* decoded trace size we accept */

struct tregion {
        uint64_t task;
        const char *name;
};

struct tthread {
        uint64_t tid;
        const char *name;
        bool alive;
        struct tregion regions[FR_MAX_REGION_DEPTH];
        uint32_t depth;
        const struct fr_blocked *blocked;
        const struct fr_sample *last_sample;
};

struct ttask {
        uint64_t id, parent;
        const char *name;
        bool open;
};

struct dumpstate {
        size_t ngens, seen;
        uint64_t first_mono;
        const char *root;
        bool no_symbolize;
        int error;
        /* The last generation. */
        struct tthread *threads;
        size_t nthreads, cap;
        struct ttask *tasks;
        size_t ntasks, tcap;
        struct fr_symbolizer *sym;
};

static int count_cb(const struct fr_trace_header *h, const struct fr_generation *g, void *ud) {
        struct dumpstate *d = ud;
        (void)h;
        if (d->ngens++ == 0)
                d->first_mono = g->mono_ns;
        return 0;
}

static struct tthread *thread_of(struct dumpstate *d, uint64_t tid, bool add) {
        for (size_t i = d->nthreads; i-- > 0;)
                if (d->threads[i].tid == tid)
                        return &d->threads[i];
        if (!add)
                return NULL;
        if (d->nthreads == d->cap) {
                size_t cap = d->cap ? 2 * d->cap : 64;
                struct tthread *v = realloc(d->threads, cap * sizeof *v);
                if (!v)
                        return NULL;
                d->threads = v;
                d->cap = cap;
        }
        struct tthread *t = &d->threads[d->nthreads++];
        *t = (struct tthread){.tid = tid};
        return t;
}

static struct ttask *task_of(struct dumpstate *d, uint64_t id, bool add) {
        for (size_t i = 0; i < d->ntasks; i++)
                if (d->tasks[i].id == id)
                        return &d->tasks[i];
        if (!add)
                return NULL;
        if (d->ntasks == d->tcap) {
                size_t cap = d->tcap ? 2 * d->tcap : 64;
                struct ttask *v = realloc(d->tasks, cap * sizeof *v);
                if (!v)
                        return NULL;
                d->tasks = v;
                d->tcap = cap;
        }
        struct ttask *k = &d->tasks[d->ntasks++];
        *k = (struct ttask){.id = id};
        return k;
}

/* apply - one event of the last generation on the threads and tasks. */
static int apply(struct dumpstate *d, const struct fr_event *e) {
        struct tthread *t = thread_of(d, e->tid, true);
        if (!t)
                return -1;
        struct ttask *k;
        switch (e->type) {
        case FR_EV_THREAD_START:
                *t = (struct tthread){.tid = e->tid, .alive = true};
                break;
        case FR_EV_THREAD_EXIT:
                t->alive = false;
                break;
        case FR_EV_THREAD_NAME:
                t->name = e->name;
                break;
        case FR_EV_REGION_BEGIN:
                if (t->depth < FR_MAX_REGION_DEPTH)
                        t->regions[t->depth++] = (struct tregion){e->task, e->name};
                break;
        case FR_EV_REGION_END:
                if (t->depth)
                        t->depth--;
                break;
        case FR_EV_TASK_BEGIN:
                if (!(k = task_of(d, e->task, true)))
                        return -1;
                *k = (struct ttask){e->task, e->parent, e->name, true};
                break;
        case FR_EV_TASK_END:
                if ((k = task_of(d, e->task, false)))
                        k->open = false;
                break;
        }
        return 0;
}

static const char *task_name(struct dumpstate *d, uint64_t id) {
        struct ttask *k = task_of(d, id, false);
        return k && k->name ? k->name : NULL;
}

static const char *base_name(const char *p) {
        const char *s = strrchr(p, '/');
        return s ? s + 1 : p;
}

/* put_frame - one line per source frame at addr (return addresses looked
 * up at addr - 1). */
static void put_frame(struct dumpstate *d, const struct fr_generation *g, unsigned i, uint64_t addr) {
        const struct fr_map *m = NULL;
        for (size_t k = 0; k < g->nmaps && !m; k++)
                if (addr >= g->maps[k].start && addr < g->maps[k].limit)
                        m = &g->maps[k];
        uint64_t look = i ? addr - 1 : addr;
        struct fr_sym_result res = {0};
        if (m && d->sym) {
                struct fr_object obj = {m->path, m->build_id, m->build_id_len, m->start, m->limit,
                                        m->offset};
                struct fr_sym_object *o;
                if (fr_sym_open(d->sym, &obj, &o) == 0 && fr_sym_object_status(o) == FR_SYM_OK)
                        fr_symbolize(o, look, &res);
        }
        if (res.nframes == 0) {
                if (m)
                        printf("    #%-2u 0x%016" PRIx64 " %s+0x%" PRIx64 "\n", i, addr,
                               base_name(m->path), look - m->start + m->offset);
                else
                        printf("    #%-2u 0x%016" PRIx64 " ?\n", i, addr);
                return;
        }
        for (size_t f = 0; f < res.nframes; f++) {
                const struct fr_sym_frame *sf = &res.frames[f];
                printf("    #%-2u 0x%016" PRIx64 " %s", i, addr, sf->function ? sf->function : "?");
                if (sf->file)
                        printf(" (%s:%" PRId64 ")", base_name(sf->file), sf->line);
                else if (m)
                        printf(" (%s)", base_name(m->path));
                printf(f + 1 < res.nframes ? " [inlined]\n" : "\n");
        }
}

static void put_stack(struct dumpstate *d, const struct fr_generation *g, const uint64_t *frames,
                      uint32_t n) {
        if (!n)
                printf("    (no stack: the thread woke up while it was being read)\n");
        for (uint32_t i = 0; i < n; i++)
                put_frame(d, g, i, frames[i]);
}

static void put_seconds(uint64_t ns) {
        printf("%" PRIu64 ".%03" PRIu64 " s", ns / 1000000000u, ns / 1000000u % 1000u);
}

static void put_wall(uint64_t real_ns) {
        time_t s = (time_t)(real_ns / 1000000000u);
        struct tm tm;
        char buf[64];
        gmtime_r(&s, &tm);
        strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
        printf("%s.%03" PRIu64 "Z", buf, real_ns / 1000000u % 1000u);
}

static const char *thread_label(struct dumpstate *d, uint64_t tid) {
        struct tthread *t = thread_of(d, tid, false);
        return t && t->name ? t->name : "";
}

static void put_wait_line(struct dumpstate *d, const struct fr_generation *g,
                          const struct fr_blocked *b) {
        const char *what = b->call <= FR_WAIT_MUTEX_TIMEDLOCK ? "mutex"
                           : b->call <= FR_WAIT_COND_TIMEDWAIT ? "condition variable"
                           : b->call <= FR_WAIT_RWLOCK_TIMEDWRLOCK ? "rwlock"
                           : b->call == FR_WAIT_JOIN ? "thread"
                           : b->call <= FR_WAIT_SEM_TIMEDWAIT ? "semaphore"
                           : b->call == FR_WAIT_SELECT || b->call == FR_WAIT_PSELECT ? "nfds"
                           : b->call >= FR_WAIT_NANOSLEEP && b->call <= FR_WAIT_SLEEP ? "ns asked"
                           : b->call == FR_WAIT_WAITPID || b->call == FR_WAIT_WAIT4 ? "pid"
                           : b->call == FR_WAIT_FUTEX ? "futex"
                                                      : "fd";
        printf("BLOCKED in %s on %s ", fr_wait_call_name(b->call), what);
        if (!strcmp(what, "fd") || !strcmp(what, "pid") || !strcmp(what, "nfds") ||
            !strcmp(what, "ns asked"))
                printf("%" PRId64, (int64_t)b->object);
        else
                printf("0x%" PRIx64, b->object);
        if (b->holder)
                printf(" held by tid %" PRIu64 " \"%s\"", b->holder, thread_label(d, b->holder));
        printf(" for ");
        put_seconds(b->waited_ns);
        uint64_t at = g->real_ns + fr_ticks_to_ns(g, g->blocked_time - g->start);
        printf(" (since ");
        put_wall(at > b->waited_ns ? at - b->waited_ns : 0);
        printf(")\n");
}

static void put_thread(struct dumpstate *d, const struct fr_generation *g, struct tthread *t) {
        printf("\"%s\" tid %" PRIu64 ": ", t->name ? t->name : "", t->tid);
        if (t->blocked) {
                put_wait_line(d, g, t->blocked);
        } else if (t->last_sample) {
                printf("running or in an unwrapped call (last CPU sample ");
                put_seconds(fr_ticks_to_ns(g, g->end - t->last_sample->time));
                printf(" before the end)\n");
        } else {
                printf("not blocked in a wrapped call, no CPU sample in the last generation\n");
        }
        for (uint32_t i = 0; i < t->depth; i++) {
                printf(i ? " > " : "    regions: ");
                const char *tn = task_name(d, t->regions[i].task);
                if (t->regions[i].task)
                        printf("[task %" PRIu64 "%s%s] ", t->regions[i].task, tn ? " " : "",
                               tn ? tn : "");
                printf("\"%s\"", t->regions[i].name ? t->regions[i].name : "");
                if (i + 1 == t->depth)
                        printf("\n");
        }
        if (t->blocked)
                put_stack(d, g, t->blocked->frames, t->blocked->nframes);
        else if (t->last_sample)
                put_stack(d, g, t->last_sample->frames, t->last_sample->nframes);
        printf("\n");
}

/* deadlocks - each thread waits for at most one holder: follow the chain
 * from every thread; a chain that comes back to a thread of its own walk is
 * a cycle, reported once (from its smallest tid). */
static size_t deadlocks(struct dumpstate *d, const struct fr_generation *g) {
        size_t found = 0;
        for (size_t i = 0; i < d->nthreads; i++) {
                struct tthread *start = &d->threads[i];
                struct tthread *t = start;
                size_t steps = 0;
                while (t && t->alive && t->blocked && t->blocked->holder && steps <= d->nthreads) {
                        t = thread_of(d, t->blocked->holder, false);
                        steps++;
                        if (t == start)
                                break;
                }
                if (t != start || steps == 0)
                        continue;
                /* start is on a cycle: report it from its smallest tid. */
                uint64_t min = start->tid;
                t = thread_of(d, start->blocked->holder, false);
                for (; t != start; t = thread_of(d, t->blocked->holder, false))
                        if (t->tid < min)
                                min = t->tid;
                if (min != start->tid)
                        continue;
                found++;
                printf("DEADLOCK: a cycle of %zu threads, each waiting for a mutex the next one "
                       "holds:\n",
                       steps);
                t = start;
                do {
                        struct tthread *h = thread_of(d, t->blocked->holder, false);
                        printf("  \"%s\" tid %" PRIu64 " waits in %s for 0x%" PRIx64
                               ", held by \"%s\" tid %" PRIu64 "\n",
                               t->name ? t->name : "", t->tid, fr_wait_call_name(t->blocked->call),
                               t->blocked->object, h->name ? h->name : "", h->tid);
                        put_stack(d, g, t->blocked->frames, t->blocked->nframes);
                        t = h;
                } while (t != start);
                printf("\n");
        }
        return found;
}

static int last_cb(const struct fr_trace_header *h, const struct fr_generation *g, void *ud) {
        struct dumpstate *d = ud;
        if (++d->seen < d->ngens)
                return 0;
        for (size_t i = 0; i < g->nthreads; i++) {
                struct tthread *t = thread_of(d, g->threads[i].tid, true);
                if (!t)
                        return d->error = -1;
                t->alive = true;
                t->name = g->threads[i].name;
                for (uint32_t k = 0; k < g->threads[i].nregions && k < FR_MAX_REGION_DEPTH; k++)
                        t->regions[t->depth++] =
                                (struct tregion){g->threads[i].regions[k].task, g->threads[i].regions[k].name};
        }
        for (size_t i = 0; i < g->ntasks; i++) {
                struct ttask *k = task_of(d, g->tasks[i].id, true);
                if (!k)
                        return d->error = -1;
                *k = (struct ttask){g->tasks[i].id, g->tasks[i].parent, g->tasks[i].name, true};
        }
        for (size_t i = 0; i < g->nevents; i++)
                if (apply(d, &g->events[i]) < 0)
                        return d->error = -1;
        for (size_t i = 0; i < g->nsamples; i++) {
                struct tthread *t = thread_of(d, g->samples[i].tid, false);
                if (t)
                        t->last_sample = &g->samples[i];
        }
        for (size_t i = 0; i < g->nblocked; i++) {
                struct tthread *t = thread_of(d, g->blocked[i].tid, false);
                if (t)
                        t->blocked = &g->blocked[i];
        }
        uint64_t end_ns = g->mono_ns + fr_ticks_to_ns(g, g->end - g->start);
        printf("Thread dump of pid %" PRIu64 " (%s) at ", h->pid, h->comm ? h->comm : "");
        put_wall(g->real_ns + fr_ticks_to_ns(g, g->end - g->start));
        printf(", the end of generation %" PRIu64 ", ", g->gen);
        put_seconds(end_ns - d->first_mono);
        printf(" into the snapshot; reason: %s\n\n", h->reason ? h->reason : "");
        size_t alive = 0, blocked = 0;
        for (size_t i = 0; i < d->nthreads; i++) {
                if (!d->threads[i].alive)
                        continue;
                alive++;
                blocked += d->threads[i].blocked != NULL;
                put_thread(d, g, &d->threads[i]);
        }
        bool any_task = false;
        for (size_t i = 0; i < d->ntasks; i++) {
                if (!d->tasks[i].open)
                        continue;
                if (!any_task)
                        printf("Open tasks:\n");
                any_task = true;
                printf("  task %" PRIu64 " \"%s\"", d->tasks[i].id,
                       d->tasks[i].name ? d->tasks[i].name : "");
                if (d->tasks[i].parent)
                        printf(" (parent %" PRIu64 ")", d->tasks[i].parent);
                printf("\n");
        }
        if (any_task)
                printf("\n");
        size_t n = deadlocks(d, g);
        printf("%zu threads, %zu blocked, %zu deadlock%s\n", alive, blocked, n, n == 1 ? "" : "s");
        return 0;
}

static void threads_usage(FILE *f) {
        fprintf(f, "usage: flightrecctl threads [--no-symbolize] [--root DIR] SNAPSHOT.trace.lz4\n");
}

int ctl_threads(const struct ctl_options *opts, int argc, char **argv) {
        enum { OPT_NO_SYMBOLIZE = 256, OPT_ROOT };
        static const struct option longopts[] = {
                {"no-symbolize", no_argument, NULL, OPT_NO_SYMBOLIZE},
                {"root", required_argument, NULL, OPT_ROOT},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        struct dumpstate d = {0};
        char err[512];
        uint8_t *data = NULL;
        size_t len;
        int c, ret = CTL_EXIT_FAILURE;

        (void)opts;
        while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
                switch (c) {
                case OPT_NO_SYMBOLIZE:
                        d.no_symbolize = true;
                        break;
                case OPT_ROOT:
                        d.root = optarg;
                        break;
                case 'h':
                        threads_usage(stdout);
                        return 0;
                default:
                        threads_usage(stderr);
                        return CTL_EXIT_USAGE;
                }
        }
        if (argc - optind != 1) {
                threads_usage(stderr);
                return CTL_EXIT_USAGE;
        }
        const char *path = argv[optind];
        if (fr_trace_load_file(path, THREADS_MAX_BYTES, &data, &len, err, sizeof err) < 0) {
                fprintf(stderr, "flightrecctl: %s: %s\n", path, err);
                return CTL_EXIT_FAILURE;
        }
        /* The whole trace is validated first; the dump is of its last generation. */
        int r = fr_trace_read(data, len, 0, count_cb, &d, NULL, err, sizeof err);
        if (r != 0) {
                fprintf(stderr, "flightrecctl: %s: %s\n", path, err);
                goto out;
        }
        if (d.ngens == 0) {
                fprintf(stderr, "flightrecctl: %s: no complete generation\n", path);
                goto out;
        }
        if (!d.no_symbolize && fr_symbolizer_new(d.root, &d.sym) < 0) {
                fprintf(stderr, "flightrecctl: out of memory\n");
                goto out;
        }
        r = fr_trace_read(data, len, 0, last_cb, &d, NULL, err, sizeof err);
        if (r != 0 || d.error) {
                fprintf(stderr, "flightrecctl: %s: %s\n", path, r > 0 || d.error ? "out of memory" : err);
                goto out;
        }
        if (fflush(stdout) != 0) {
                fprintf(stderr, "flightrecctl: write error on standard output\n");
                goto out;
        }
        ret = 0;
out:
        fr_symbolizer_free(d.sym);
        free(d.threads);
        free(d.tasks);
        free(data);
        return ret;
}
