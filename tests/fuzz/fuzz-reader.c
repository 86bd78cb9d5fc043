/* libFuzzer target: fr_trace_read (proto/trace_reader.c) on arbitrary bytes,
 * strict and with FR_READ_ALLOW_PARTIAL_TAIL; the callback reads every field
 * of every generation so that ASan sees any pointer the reader hands out. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "trace_reader.h"

static volatile uint64_t sink;

static void touch_str(const char *s) {
        if (s)
                sink += strlen(s);
}

static void touch_bytes(const void *p, size_t n) {
        const uint8_t *b = p;
        for (size_t i = 0; i < n; i++)
                sink += b[i];
}

static int on_gen(const struct fr_trace_header *h, const struct fr_generation *g, void *ud) {
        (void)ud;
        sink += h->version + h->pid + h->flags;
        touch_str(h->comm);
        touch_str(h->exe);
        touch_str(h->reason);
        sink += g->gen + g->start + g->end + g->ticks_per_second + g->mono_ns + g->real_ns +
                g->sampler + g->sample_hz + g->lost_samples;
        for (size_t i = 0; i < g->nthreads; i++) {
                const struct fr_thread_state *t = &g->threads[i];
                sink += t->tid + t->nregions;
                touch_str(t->name);
                for (uint32_t r = 0; r < t->nregions; r++) {
                        sink += t->regions[r].task;
                        touch_str(t->regions[r].name);
                }
        }
        for (size_t i = 0; i < g->ntasks; i++) {
                sink += g->tasks[i].id + g->tasks[i].parent;
                touch_str(g->tasks[i].name);
        }
        for (size_t i = 0; i < g->nevents; i++) {
                const struct fr_event *e = &g->events[i];
                sink += e->time + e->tid + e->type + e->task + e->parent + e->lost_kind +
                        e->count + e->message_len;
                touch_str(e->name);
                touch_str(e->category);
                if (e->message)
                        touch_bytes(e->message, e->message_len + 1); /* NUL included */
                sink += fr_ticks_to_ns(g, e->time);
        }
        for (size_t i = 0; i < g->nsamples; i++) {
                const struct fr_sample *s = &g->samples[i];
                sink += s->time + s->tid + s->weight + s->task + s->nframes;
                touch_str(s->region);
                touch_bytes(s->frames, (size_t)s->nframes * sizeof *s->frames);
        }
        for (size_t i = 0; i < g->nmaps; i++) {
                const struct fr_map *m = &g->maps[i];
                sink += m->start + m->limit + m->offset;
                touch_str(m->path);
                touch_bytes(m->build_id, m->build_id_len);
        }
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
        char err[256];
        size_t ngens;
        fr_trace_read(data, len, 0, on_gen, NULL, &ngens, err, sizeof err);
        fr_trace_read(data, len, FR_READ_ALLOW_PARTIAL_TAIL, on_gen, NULL, &ngens, err, sizeof err);
        return 0;
}
