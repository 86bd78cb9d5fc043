/* flightrecctl dump TRACE: a trace as text, one event or sample per line.
 *
 * Times are seconds.nanoseconds since the start of the first generation in
 * the file (CLOCK_MONOTONIC based); each generation's header line also gives
 * its wall-clock start. Strings are quoted and escaped so that a line is
 * always one line. The whole trace is validated before anything is printed,
 * so a bad file prints only the error. */
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "trace_format.h"
#include "crash_report.h"
#include "trace_reader.h"

#define DUMP_MAX_BYTES ((size_t)1 << 30) /* decoded trace size we accept */

/* Names as they evolve through one generation, looked up by id. */
struct name_entry {
        uint64_t id;
        const char *name;
};

struct name_table {
        struct name_entry *v;
        size_t n;
};

struct dump {
        FILE *out;
        bool started;
        uint64_t first_mono; /* mono_ns of the first generation */
        struct name_table threads, tasks;
};

/* ------------------------------------------------------------------------ */
/* Formatting                                                                */

/* put_quoted - s in double quotes, with C escapes for quotes, backslashes
 * and control bytes; NULL as "-". */
static void put_quoted(FILE *f, const char *s, size_t n) {
        if (!s) {
                fputc('-', f);
                return;
        }
        fputc('"', f);
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                switch (c) {
                case '"':
                        fputs("\\\"", f);
                        break;
                case '\\':
                        fputs("\\\\", f);
                        break;
                case '\n':
                        fputs("\\n", f);
                        break;
                case '\t':
                        fputs("\\t", f);
                        break;
                case '\r':
                        fputs("\\r", f);
                        break;
                default:
                        if (c < 0x20 || c == 0x7f)
                                fprintf(f, "\\x%02x", c);
                        else
                                fputc(c, f);
                }
        }
        fputc('"', f);
}

static void put_str(FILE *f, const char *s) { put_quoted(f, s, s ? strlen(s) : 0); }

/* put_seconds - signed nanoseconds as [-]S.NNNNNNNNN. */
static void put_seconds(FILE *f, uint64_t ns) {
        const char *sign = "";
        if ((int64_t)ns < 0) {
                sign = "-";
                ns = -ns;
        }
        fprintf(f, "%s%" PRIu64 ".%09" PRIu64, sign, ns / 1000000000, ns % 1000000000);
}

static void put_wall(FILE *f, uint64_t real_ns) {
        time_t secs = (time_t)(real_ns / 1000000000);
        struct tm tm;
        char buf[64];
        if (!gmtime_r(&secs, &tm) || !strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm)) {
                fprintf(f, "@%" PRIu64, real_ns);
                return;
        }
        fprintf(f, "%s.%09" PRIu64 "Z", buf, real_ns % 1000000000);
}

static const char *lost_name(uint64_t kind) {
        switch (kind) {
        case FR_LOST_EVENTS:
                return "events";
        case FR_LOST_SAMPLES:
                return "samples";
        case FR_LOST_REGIONS:
                return "regions";
        }
        return "unknown";
}

static const char *sampler_name(uint64_t kind) {
        switch (kind) {
        case FR_SAMPLER_PERF:
                return "perf";
        case FR_SAMPLER_TIMER:
                return "timer";
        }
        return "none";
}

/* ------------------------------------------------------------------------ */
/* Name tables                                                               */

static int cmp_entry(const void *a, const void *b) {
        const struct name_entry *x = a, *y = b;
        return x->id < y->id ? -1 : x->id > y->id;
}

static struct name_entry *table_find(struct name_table *t, uint64_t id) {
        struct name_entry key = {id, NULL};
        return t->n ? bsearch(&key, t->v, t->n, sizeof *t->v, cmp_entry) : NULL;
}

static const char *table_name(struct name_table *t, uint64_t id) {
        struct name_entry *e = table_find(t, id);
        return e ? e->name : NULL;
}

/* table_finish - sort and drop duplicate ids, keeping the first given. */
static void table_finish(struct name_table *t) {
        size_t n = 0;
        /* qsort is not stable: a name-less duplicate must not win. */
        qsort(t->v, t->n, sizeof *t->v, cmp_entry);
        for (size_t i = 0; i < t->n; i++) {
                if (n && t->v[n - 1].id == t->v[i].id) {
                        if (!t->v[n - 1].name)
                                t->v[n - 1].name = t->v[i].name;
                        continue;
                }
                t->v[n++] = t->v[i];
        }
        t->n = n;
}

/* build_tables - thread ids with their names at the generation start, and
 * task names from STATUS and this generation's TASK_BEGINs. */
static int build_tables(struct dump *d, const struct fr_generation *g) {
        size_t nthreads = g->nthreads + g->nevents + g->nsamples;
        size_t ntasks = g->ntasks + g->nevents;
        struct name_table *th = &d->threads, *tk = &d->tasks;
        th->v = malloc((nthreads ? nthreads : 1) * sizeof *th->v);
        tk->v = malloc((ntasks ? ntasks : 1) * sizeof *tk->v);
        th->n = tk->n = 0;
        if (!th->v || !tk->v)
                return -1;
        for (size_t i = 0; i < g->nthreads; i++)
                th->v[th->n++] = (struct name_entry){g->threads[i].tid, g->threads[i].name};
        for (size_t i = 0; i < g->nevents; i++)
                th->v[th->n++] = (struct name_entry){g->events[i].tid, NULL};
        for (size_t i = 0; i < g->nsamples; i++)
                th->v[th->n++] = (struct name_entry){g->samples[i].tid, NULL};
        for (size_t i = 0; i < g->ntasks; i++)
                tk->v[tk->n++] = (struct name_entry){g->tasks[i].id, g->tasks[i].name};
        for (size_t i = 0; i < g->nevents; i++)
                if (g->events[i].type == FR_EV_TASK_BEGIN)
                        tk->v[tk->n++] = (struct name_entry){g->events[i].task, g->events[i].name};
        table_finish(th);
        table_finish(tk);
        return 0;
}

static void free_tables(struct dump *d) {
        free(d->threads.v);
        free(d->tasks.v);
        d->threads = d->tasks = (struct name_table){0};
}

/* ------------------------------------------------------------------------ */
/* Lines                                                                     */

/* put_task - "task ID" and its name when known. */
static void put_task(struct dump *d, const char *label, uint64_t id) {
        fprintf(d->out, " %s %" PRIu64, label, id);
        const char *name = id ? table_name(&d->tasks, id) : NULL;
        if (name) {
                fputc(' ', d->out);
                put_str(d->out, name);
        }
}

/* put_prefix - time, thread id and the thread's current name. */
static void put_prefix(struct dump *d, const struct fr_generation *g, uint64_t time, uint64_t tid) {
        put_seconds(d->out, g->mono_ns - d->first_mono + fr_ticks_to_ns(g, time - g->start));
        fprintf(d->out, " %" PRIu64 " ", tid);
        put_str(d->out, table_name(&d->threads, tid));
}

/* put_wait - a wait: the call, its object, how long, where. */
static void put_wait(struct dump *d, unsigned call, uint64_t object, uint64_t holder, uint64_t ns,
                     uint64_t task, const char *region, const uint64_t *frames, uint32_t n) {
        fprintf(d->out, " call %s object 0x%" PRIx64, fr_wait_call_name(call), object);
        if (holder)
                fprintf(d->out, " holder %" PRIu64, holder);
        fputs(" waited ", d->out);
        put_seconds(d->out, ns);
        put_task(d, "task", task);
        fputs(" region ", d->out);
        put_str(d->out, region);
        fputs(" stack", d->out);
        if (!n)
                fputs(" -", d->out);
        for (uint32_t i = 0; i < n; i++)
                fprintf(d->out, " 0x%" PRIx64, frames[i]);
}

static void put_event(struct dump *d, const struct fr_generation *g, const struct fr_event *e) {
        struct name_entry *thread = table_find(&d->threads, e->tid);
        put_prefix(d, g, e->time, e->tid);
        fprintf(d->out, " %s", fr_event_type_name(e->type));
        switch (e->type) {
        case FR_EV_TASK_BEGIN:
                put_task(d, "task", e->task);
                put_task(d, "parent", e->parent);
                break;
        case FR_EV_TASK_END:
                put_task(d, "task", e->task);
                break;
        case FR_EV_REGION_BEGIN:
        case FR_EV_REGION_END:
                put_task(d, "task", e->task);
                fputs(" region ", d->out);
                put_str(d->out, e->name);
                break;
        case FR_EV_LOG:
                put_task(d, "task", e->task);
                fputs(" category ", d->out);
                put_str(d->out, e->category);
                fputs(" message ", d->out);
                put_quoted(d->out, e->message, e->message_len);
                break;
        case FR_EV_THREAD_NAME:
                fputs(" name ", d->out);
                put_str(d->out, e->name);
                break;
        case FR_EV_LOST:
                fprintf(d->out, " what %s count %" PRIu64, lost_name(e->lost_kind), e->count);
                break;
        case FR_EV_BLOCK:
                put_wait(d, e->wait_call, e->wait_object, 0, e->wait_ns, e->task, e->region,
                         e->frames, e->nframes);
                break;
        }
        fputc('\n', d->out);
        /* The line shows the name before the event; later lines after it. */
        if (thread && e->type == FR_EV_THREAD_NAME)
                thread->name = e->name;
        else if (thread && (e->type == FR_EV_THREAD_START || e->type == FR_EV_THREAD_EXIT))
                thread->name = NULL;
}

static void put_sample(struct dump *d, const struct fr_generation *g, const struct fr_sample *s) {
        put_prefix(d, g, s->time, s->tid);
        fprintf(d->out, " SAMPLE weight %" PRIu64, s->weight);
        put_task(d, "task", s->task);
        fputs(" region ", d->out);
        put_str(d->out, s->region);
        fputs(" stack", d->out);
        for (uint32_t i = 0; i < s->nframes; i++)
                fprintf(d->out, " 0x%" PRIx64, s->frames[i]);
        fputc('\n', d->out);
}

static void put_header(struct dump *d, const struct fr_trace_header *h) {
        fprintf(d->out, "trace version %" PRIu64 " pid %" PRIu64 " comm ", h->version, h->pid);
        put_str(d->out, h->comm);
        fputs(" exe ", d->out);
        put_str(d->out, h->exe);
        fputs(" reason ", d->out);
        put_str(d->out, h->reason);
        fprintf(d->out, " flags 0x%" PRIx64 "%s\n", h->flags,
                h->flags & 1 ? " (post-mortem)" : "");
}

static void put_generation(struct dump *d, const struct fr_generation *g) {
        fprintf(d->out, "gen %" PRIu64 " start ", g->gen);
        put_seconds(d->out, g->mono_ns - d->first_mono);
        fputs(" span ", d->out);
        put_seconds(d->out, fr_ticks_to_ns(g, g->end - g->start));
        fputs(" wall ", d->out);
        put_wall(d->out, g->real_ns);
        fprintf(d->out,
                " threads %zu tasks %zu events %zu samples %zu maps %zu sampler %s %" PRIu64 " Hz%s%s%s\n",
                d->threads.n, g->ntasks, g->nevents, g->nsamples, g->nmaps,
                sampler_name(g->sampler), g->sample_hz, g->unwind ? " unwind " : "",
                g->unwind == FR_UNWIND_AUTO ? "auto" : g->unwind == FR_UNWIND_DWARF ? "dwarf" : "",
                g->partial ? " partial (salvaged, cut short by the death)" : "");
        if (g->lost_samples)
                fprintf(d->out, "  lost samples %" PRIu64 "\n", g->lost_samples);
        for (size_t i = 0; i < g->nthreads; i++) {
                const struct fr_thread_state *t = &g->threads[i];
                fprintf(d->out, "  thread %" PRIu64 " ", t->tid);
                put_str(d->out, t->name);
                for (uint32_t j = 0; j < t->nregions; j++) {
                        fputs(j ? " >" : " regions", d->out);
                        put_task(d, "task", t->regions[j].task);
                        fputs(" region ", d->out);
                        put_str(d->out, t->regions[j].name);
                }
                fputc('\n', d->out);
        }
        for (size_t i = 0; i < g->ntasks; i++) {
                fprintf(d->out, "  task %" PRIu64 " ", g->tasks[i].id);
                put_str(d->out, g->tasks[i].name);
                put_task(d, "parent", g->tasks[i].parent);
                fputc('\n', d->out);
        }
        for (size_t i = 0; i < g->nmaps; i++) {
                const struct fr_map *m = &g->maps[i];
                fprintf(d->out, "  map 0x%" PRIx64 "-0x%" PRIx64 " offset 0x%" PRIx64 " ", m->start,
                        m->limit, m->offset);
                put_str(d->out, m->path);
                fputs(" build-id ", d->out);
                if (!m->build_id_len)
                        fputc('-', d->out);
                for (size_t j = 0; j < m->build_id_len; j++)
                        fprintf(d->out, "%02x", m->build_id[j]);
                fputc('\n', d->out);
        }
        if (g->crash) {
                const struct fr_crash *c = g->crash;
                char b1[32], b2[32];
                fputs("  crash at ", d->out);
                put_seconds(d->out, g->mono_ns + fr_ticks_to_ns(g, c->time - g->start) - d->first_mono);
                fprintf(d->out, " %s (%s) addr 0x%" PRIx64 " thread %" PRIu64 " ",
                        fr_signal_name(c->signo, b1, sizeof b1),
                        fr_sicode_name(c->signo, c->code, b2, sizeof b2), c->addr, c->tid);
                put_str(d->out, c->thread_name);
                fprintf(d->out, "%s stack", c->flags & FR_CRASH_OVERFLOW ? " stack-overflow" : "");
                for (uint32_t i = 0; i < c->nframes; i++)
                        fprintf(d->out, " 0x%" PRIx64, c->frames[i]);
                fputc('\n', d->out);
        }
}

static int dump_generation(const struct fr_trace_header *h, const struct fr_generation *g,
                           void *userdata) {
        struct dump *d = userdata;
        size_t i = 0, j = 0;
        if (!d->started) {
                d->started = true;
                d->first_mono = g->mono_ns;
                put_header(d, h);
        }
        if (build_tables(d, g) < 0) {
                free_tables(d);
                return -1;
        }
        put_generation(d, g);
        /* Events and samples merged by time; an event first on a tie. */
        while (i < g->nevents || j < g->nsamples) {
                if (j == g->nsamples || (i < g->nevents && g->events[i].time <= g->samples[j].time))
                        put_event(d, g, &g->events[i++]);
                else
                        put_sample(d, g, &g->samples[j++]);
        }
        /* Threads still blocked at the end of the generation. */
        for (size_t k = 0; k < g->nblocked; k++) {
                const struct fr_blocked *b = &g->blocked[k];
                put_prefix(d, g, g->blocked_time, b->tid);
                fputs(" BLOCKED", d->out);
                put_wait(d, b->call, b->object, b->holder, b->waited_ns, b->task, b->region,
                         b->frames, b->nframes);
                fputc('\n', d->out);
        }
        free_tables(d);
        return 0;
}

/* ------------------------------------------------------------------------ */

static void dump_usage(FILE *f) { fprintf(f, "usage: flightrecctl dump TRACE\n"); }

int ctl_dump(const struct ctl_options *opts, int argc, char **argv) {
        static const struct option longopts[] = {{"help", no_argument, NULL, 'h'}, {0}};
        struct dump d = {.out = stdout};
        char err[512];
        uint8_t *data;
        size_t len, ngens;
        int c, r;

        (void)opts;
        while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
                if (c == 'h') {
                        dump_usage(stdout);
                        return 0;
                }
                dump_usage(stderr);
                return CTL_EXIT_USAGE;
        }
        if (argc - optind != 1) {
                dump_usage(stderr);
                return CTL_EXIT_USAGE;
        }
        const char *path = argv[optind];
        if (fr_trace_load_file(path, DUMP_MAX_BYTES, &data, &len, err, sizeof err) < 0) {
                fprintf(stderr, "flightrecctl: %s: %s\n", path, err);
                return CTL_EXIT_FAILURE;
        }
        /* Validate first, so that a bad trace prints nothing but the error. */
        r = fr_trace_read(data, len, 0, NULL, NULL, &ngens, err, sizeof err);
        if (r == 0)
                r = fr_trace_read(data, len, 0, dump_generation, &d, NULL, err, sizeof err);
        free(data);
        if (r != 0) {
                fprintf(stderr, "flightrecctl: %s: %s\n", path, r == -1 ? "out of memory" : err);
                return CTL_EXIT_FAILURE;
        }
        if (ngens == 0)
                fprintf(stdout, "trace holds no complete generation\n");
        if (fflush(stdout) != 0 || ferror(stdout)) {
                fprintf(stderr, "flightrecctl: write error on standard output\n");
                return CTL_EXIT_FAILURE;
        }
        return 0;
}
