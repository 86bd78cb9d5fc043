/* Helpers for the agent's tests: see agent_helpers.h. */

#include "agent_helpers.h"

#include <flightrec.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void *ah_work_thread(void *arg) {
        struct ah_work *w = arg;
        w->tid = gettid();
        double t0 = ah_thread_cpu();
        w->fn(w->seconds);
        w->cpu = ah_thread_cpu() - t0;
        return NULL;
}

static void copy(char *dst, size_t n, const char *s) { snprintf(dst, n, "%s", s ? s : ""); }

static int on_gen(const struct fr_trace_header *hdr, const struct fr_generation *g, void *ud) {
        (void)hdr;
        struct ah_trace *t = ud;
        if (t->ngens == 0)
                t->first_gen = g->gen;
        t->last_gen = g->gen;
        if (t->ngens < 4096) {
                t->gen_start[t->ngens] = g->start;
                t->gen_end[t->ngens] = g->end;
                t->gen_start_ns[t->ngens] = g->mono_ns;
                t->gen_end_ns[t->ngens] = g->mono_ns + fr_ticks_to_ns(g, g->end - g->start);
        }
        t->ngens++;
        if (g->nthreads > t->status_threads_max)
                t->status_threads_max = g->nthreads;
        for (size_t i = 0; i < g->nthreads; i++) {
                const struct fr_thread_state *th = &g->threads[i];
                if (th->nregions > t->max_status_regions) {
                        t->max_status_regions = th->nregions;
                        copy(t->status_region, sizeof t->status_region,
                             th->regions[th->nregions - 1].name);
                }
        }
        for (size_t i = 0; i < g->nevents; i++) {
                const struct fr_event *e = &g->events[i];
                if (t->nevents == t->cap) {
                        t->cap = t->cap ? 2 * t->cap : 1024;
                        t->events = realloc(t->events, t->cap * sizeof *t->events);
                        if (!t->events)
                                abort();
                }
                struct ah_event *a = &t->events[t->nevents++];
                *a = (struct ah_event){.gen = g->gen, .time = e->time, .tid = e->tid,
                                       .task = e->task, .type = e->type,
                                       .lost_kind = e->lost_kind, .count = e->count};
                copy(a->name, sizeof a->name, e->name);
                copy(a->category, sizeof a->category, e->category);
                copy(a->message, sizeof a->message, e->message);
        }
        return 0;
}

void ah_read(struct ah_trace *t) {
        t->err = fr_trace_read(t->raw, t->rawlen, 0, on_gen, t, NULL, t->errmsg, sizeof t->errmsg);
        if (t->err)
                fprintf(stderr, "reader: %s\n", t->errmsg);
}

int ah_snapshot(struct ah_trace *t) {
        memset(t, 0, sizeof *t);
        int fd = memfd_create("snapshot", MFD_CLOEXEC);
        if (fd < 0)
                return -1;
        int r = fr_write_snapshot(fd);
        if (r == 0) {
                off_t n = lseek(fd, 0, SEEK_END);
                t->raw = malloc((size_t)n + 1);
                t->rawlen = (size_t)n;
                if (!t->raw || pread(fd, t->raw, (size_t)n, 0) != n)
                        r = -1;
                else
                        ah_read(t);
        }
        close(fd);
        return r;
}

void ah_free(struct ah_trace *t) {
        free(t->events);
        free(t->raw);
        memset(t, 0, sizeof *t);
}

size_t ah_count(const struct ah_trace *t, uint8_t type, const char *name) {
        size_t n = 0;
        for (size_t i = 0; i < t->nevents; i++) {
                const struct ah_event *e = &t->events[i];
                if (type && e->type != type)
                        continue;
                if (name && strcmp(e->name, name) != 0 && strcmp(e->category, name) != 0)
                        continue;
                n++;
        }
        return n;
}
