/* tracegen: build flightrec traces programmatically, for tests (tracegen.h). */
#include "tracegen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Allocation helpers: test code, so failure aborts. */

static void *xrealloc(void *p, size_t n) {
        p = realloc(p, n ? n : 1);
        if (!p) {
                fprintf(stderr, "tracegen: out of memory\n");
                abort();
        }
        return p;
}

static void *xcalloc(size_t n, size_t size) {
        void *p = calloc(n ? n : 1, size ? size : 1);
        if (!p) {
                fprintf(stderr, "tracegen: out of memory\n");
                abort();
        }
        return p;
}

static char *xstrdup(const char *s) {
        if (!s)
                return NULL;
        size_t n = strlen(s) + 1;
        return memcpy(xrealloc(NULL, n), s, n);
}

/* Append one element to a growable array of pointers. */
#define APPEND(arr, n, x)                                                                          \
        do {                                                                                       \
                (arr) = xrealloc((arr), ((n) + 1) * sizeof *(arr));                                \
                (arr)[(n)++] = (x);                                                                \
        } while (0)

/* ------------------------------------------------------------------------ */
/* The model: threads, their regions and the open tasks. */

struct tg_region {
        uint64_t task;
        char *name;
};

struct tg_thread {
        uint64_t tid;
        char *name;
        bool alive;
        struct tg_region *regions;
        size_t nregions;
};

struct tg_task {
        uint64_t id, parent;
        char *name;
};

struct tg_state {
        struct tg_thread *threads;
        size_t nthreads;
        struct tg_task *tasks; /* open ones */
        size_t ntasks;
};

static void thread_clear(struct tg_thread *t) {
        for (size_t i = 0; i < t->nregions; i++)
                free(t->regions[i].name);
        free(t->regions);
        free(t->name);
        t->regions = NULL;
        t->nregions = 0;
        t->name = NULL;
}

static void state_free(struct tg_state *s) {
        for (size_t i = 0; i < s->nthreads; i++)
                thread_clear(&s->threads[i]);
        for (size_t i = 0; i < s->ntasks; i++)
                free(s->tasks[i].name);
        free(s->threads);
        free(s->tasks);
        *s = (struct tg_state){0};
}

/* state_copy - deep copy of the live threads and the open tasks. */
static void state_copy(struct tg_state *dst, const struct tg_state *src) {
        state_free(dst);
        for (size_t i = 0; i < src->nthreads; i++) {
                const struct tg_thread *t = &src->threads[i];
                if (!t->alive)
                        continue;
                struct tg_thread c = {t->tid, xstrdup(t->name), true, NULL, 0};
                c.regions = xcalloc(t->nregions, sizeof *c.regions);
                for (; c.nregions < t->nregions; c.nregions++)
                        c.regions[c.nregions] = (struct tg_region){
                                t->regions[c.nregions].task, xstrdup(t->regions[c.nregions].name)};
                APPEND(dst->threads, dst->nthreads, c);
        }
        for (size_t i = 0; i < src->ntasks; i++) {
                struct tg_task c = src->tasks[i];
                c.name = xstrdup(c.name);
                APPEND(dst->tasks, dst->ntasks, c);
        }
}

static struct tg_thread *state_thread(struct tg_state *s, uint64_t tid) {
        for (size_t i = 0; i < s->nthreads; i++)
                if (s->threads[i].tid == tid)
                        return &s->threads[i];
        struct tg_thread t = {.tid = tid};
        APPEND(s->threads, s->nthreads, t);
        return &s->threads[s->nthreads - 1];
}

static void state_push_region(struct tg_thread *t, uint64_t task, const char *name) {
        struct tg_region r = {task, xstrdup(name)};
        APPEND(t->regions, t->nregions, r);
}

static void state_end_task(struct tg_state *s, uint64_t id) {
        for (size_t i = 0; i < s->ntasks; i++) {
                if (s->tasks[i].id == id) {
                        free(s->tasks[i].name);
                        s->tasks[i] = s->tasks[--s->ntasks];
                        return;
                }
        }
}

static void state_begin_task(struct tg_state *s, uint64_t id, uint64_t parent, const char *name) {
        state_end_task(s, id);
        struct tg_task k = {id, parent, xstrdup(name)};
        APPEND(s->tasks, s->ntasks, k);
}

/* ------------------------------------------------------------------------ */
/* Structures */

struct tg_batch {
        struct tg_gen *g;
        enum fr_batch_kind kind;
        uint64_t tid, base, gen;
        struct fr_buf payload;
        uint64_t last; /* time of the previous event or sample */
};

struct tg_string {
        uint64_t id;
        char *bytes;
        size_t len;
        bool raw; /* added by tg_string_raw: not used for interning */
};

struct tg_stack {
        uint64_t id;
        uint64_t *pcs;
        size_t n;
};

struct tg_gen_priv {
        struct tg_trace *t;
        struct tg_state status;
        struct tg_batch **batches;
        size_t nbatches;
        struct tg_string *strings;
        size_t nstrings;
        uint64_t next_string;
        struct tg_stack *stacks;
        size_t nstacks;
        struct fr_buf maps;
};

struct tg_trace {
        uint64_t pid, flags;
        char *comm, *exe, *reason;
        bool raw_header;
        struct fr_buf header;
        struct tg_gen **gens;
        size_t ngens;
        struct tg_state model;
};

/* ------------------------------------------------------------------------ */
/* Trace */

struct tg_trace *tg_trace_new(void) {
        struct tg_trace *t = xcalloc(1, sizeof *t);
        tg_trace_header(t, 4242, "tgapp", "/usr/bin/tgapp", "test", 0);
        return t;
}

void tg_trace_header(struct tg_trace *t, uint64_t pid, const char *comm, const char *exe,
                     const char *reason, uint64_t flags) {
        free(t->comm);
        free(t->exe);
        free(t->reason);
        t->pid = pid;
        t->comm = xstrdup(comm);
        t->exe = xstrdup(exe);
        t->reason = xstrdup(reason);
        t->flags = flags;
}

void tg_trace_raw_header(struct tg_trace *t, const void *bytes, size_t len) {
        t->raw_header = true;
        fr_buf_free(&t->header);
        fr_buf_put_bytes(&t->header, bytes, len);
}

static void gen_free(struct tg_gen *g) {
        struct tg_gen_priv *p = g->priv;
        for (size_t i = 0; i < p->nbatches; i++) {
                fr_buf_free(&p->batches[i]->payload);
                free(p->batches[i]);
        }
        for (size_t i = 0; i < p->nstrings; i++)
                free(p->strings[i].bytes);
        for (size_t i = 0; i < p->nstacks; i++)
                free(p->stacks[i].pcs);
        free(p->batches);
        free(p->strings);
        free(p->stacks);
        fr_buf_free(&p->maps);
        state_free(&p->status);
        free(p);
        free(g);
}

void tg_trace_free(struct tg_trace *t) {
        if (!t)
                return;
        for (size_t i = 0; i < t->ngens; i++)
                gen_free(t->gens[i]);
        free(t->gens);
        free(t->comm);
        free(t->exe);
        free(t->reason);
        fr_buf_free(&t->header);
        state_free(&t->model);
        free(t);
}

/* ------------------------------------------------------------------------ */
/* Generation */

struct tg_gen *tg_gen_new(struct tg_trace *t, uint64_t start, uint64_t end) {
        struct tg_gen *g = xcalloc(1, sizeof *g);
        g->priv = xcalloc(1, sizeof *g->priv);
        g->priv->t = t;
        g->priv->next_string = 1;
        g->num = t->ngens ? t->gens[t->ngens - 1]->num + 1 : 1;
        g->start = start;
        g->end = end;
        g->ticks_per_second = 1000000000;
        g->mono_ns = start;
        g->real_ns = 1700000000000000000ull + start;
        g->sampler = FR_SAMPLER_NONE;
        state_copy(&g->priv->status, &t->model);
        APPEND(t->gens, t->ngens, g);
        return g;
}

/* The model restarts from an explicitly given STATUS. */
static void status_changed(struct tg_gen *g) {
        state_copy(&g->priv->t->model, &g->priv->status);
}

void tg_status_clear(struct tg_gen *g) {
        state_free(&g->priv->status);
        status_changed(g);
}

void tg_status_thread(struct tg_gen *g, uint64_t tid, const char *name) {
        struct tg_thread *t = state_thread(&g->priv->status, tid);
        thread_clear(t);
        t->alive = true;
        t->name = xstrdup(name);
        status_changed(g);
}

void tg_status_region(struct tg_gen *g, uint64_t tid, uint64_t task, const char *name) {
        struct tg_thread *t = state_thread(&g->priv->status, tid);
        t->alive = true;
        state_push_region(t, task, name);
        status_changed(g);
}

void tg_status_task(struct tg_gen *g, uint64_t id, uint64_t parent, const char *name) {
        state_begin_task(&g->priv->status, id, parent, name);
        status_changed(g);
}

uint64_t tg_string_id(struct tg_gen *g, const char *s) {
        struct tg_gen_priv *p = g->priv;
        if (!s)
                return 0;
        size_t n = strlen(s);
        for (size_t i = 0; i < p->nstrings; i++)
                if (!p->strings[i].raw && p->strings[i].len == n &&
                    memcmp(p->strings[i].bytes, s, n) == 0)
                        return p->strings[i].id;
        struct tg_string e = {p->next_string++, xstrdup(s), n, false};
        APPEND(p->strings, p->nstrings, e);
        return e.id;
}

void tg_string_raw(struct tg_gen *g, uint64_t id, const void *bytes, size_t len) {
        struct tg_gen_priv *p = g->priv;
        struct tg_string e = {id, memcpy(xrealloc(NULL, len), bytes, len), len, true};
        APPEND(p->strings, p->nstrings, e);
}

uint64_t tg_stack_id(struct tg_gen *g, const uint64_t *pcs, size_t n) {
        struct tg_gen_priv *p = g->priv;
        for (size_t i = 0; i < p->nstacks; i++)
                if (p->stacks[i].n == n && memcmp(p->stacks[i].pcs, pcs, n * sizeof *pcs) == 0)
                        return p->stacks[i].id;
        struct tg_stack s = {p->nstacks + 1, memcpy(xrealloc(NULL, n * sizeof *pcs), pcs,
                                                     n * sizeof *pcs), n};
        APPEND(p->stacks, p->nstacks, s);
        return s.id;
}

void tg_map(struct tg_gen *g, uint64_t start, uint64_t limit, uint64_t offset, const char *path,
            const void *build_id, size_t build_id_len) {
        struct fr_buf *b = &g->priv->maps;
        fr_buf_put_uvarint(b, start);
        fr_buf_put_uvarint(b, limit);
        fr_buf_put_uvarint(b, offset);
        fr_buf_put_string(b, path, strlen(path));
        fr_buf_put_string(b, build_id, build_id_len);
}

/* ------------------------------------------------------------------------ */
/* Batches and events */

struct tg_batch *tg_raw(struct tg_gen *g, enum fr_batch_kind kind, uint64_t tid,
                        uint64_t base_time) {
        struct tg_batch *b = xcalloc(1, sizeof *b);
        b->g = g;
        b->kind = kind;
        b->tid = tid;
        b->base = b->last = base_time;
        APPEND(g->priv->batches, g->priv->nbatches, b);
        return b;
}

struct tg_batch *tg_events(struct tg_gen *g, uint64_t tid, uint64_t base_time) {
        return tg_raw(g, FR_BATCH_EVENTS, tid, base_time);
}

struct tg_batch *tg_samples(struct tg_gen *g, uint64_t tid, uint64_t base_time) {
        return tg_raw(g, FR_BATCH_SAMPLES, tid, base_time);
}

void tg_batch_gen(struct tg_batch *b, uint64_t gen) { b->gen = gen; }

void tg_put_u8(struct tg_batch *b, uint8_t v) { fr_buf_put_u8(&b->payload, v); }
void tg_put_uvarint(struct tg_batch *b, uint64_t v) { fr_buf_put_uvarint(&b->payload, v); }
void tg_put_bytes(struct tg_batch *b, const void *p, size_t n) {
        fr_buf_put_bytes(&b->payload, p, n);
}
void tg_put_string(struct tg_batch *b, const void *p, size_t n) {
        fr_buf_put_string(&b->payload, p, n);
}

void tg_event_head(struct tg_batch *b, uint8_t type, uint64_t time) {
        tg_put_u8(b, type);
        tg_put_uvarint(b, time - b->last); /* wraps for an earlier time, on purpose */
        b->last = time;
}

static struct tg_state *model(struct tg_batch *b) { return &b->g->priv->t->model; }
static struct tg_thread *model_thread(struct tg_batch *b) {
        return state_thread(model(b), b->tid);
}

void tg_task_begin(struct tg_batch *b, uint64_t time, uint64_t id, uint64_t parent,
                   const char *name) {
        tg_event_head(b, FR_EV_TASK_BEGIN, time);
        tg_put_uvarint(b, id);
        tg_put_uvarint(b, parent);
        tg_put_uvarint(b, tg_string_id(b->g, name));
        state_begin_task(model(b), id, parent, name);
}

void tg_task_end(struct tg_batch *b, uint64_t time, uint64_t id) {
        tg_event_head(b, FR_EV_TASK_END, time);
        tg_put_uvarint(b, id);
        state_end_task(model(b), id);
}

void tg_region_begin(struct tg_batch *b, uint64_t time, uint64_t task, const char *name) {
        tg_event_head(b, FR_EV_REGION_BEGIN, time);
        tg_put_uvarint(b, task);
        tg_put_uvarint(b, tg_string_id(b->g, name));
        state_push_region(model_thread(b), task, name);
}

void tg_region_end(struct tg_batch *b, uint64_t time, uint64_t task, const char *name) {
        struct tg_thread *t = model_thread(b);
        tg_event_head(b, FR_EV_REGION_END, time);
        tg_put_uvarint(b, task);
        tg_put_uvarint(b, tg_string_id(b->g, name));
        if (t->nregions) {
                t->nregions--;
                free(t->regions[t->nregions].name);
        }
}

void tg_log(struct tg_batch *b, uint64_t time, uint64_t task, const char *category,
            const char *message) {
        tg_event_head(b, FR_EV_LOG, time);
        tg_put_uvarint(b, task);
        tg_put_uvarint(b, tg_string_id(b->g, category));
        tg_put_string(b, message, strlen(message));
}

void tg_thread_name(struct tg_batch *b, uint64_t time, const char *name) {
        struct tg_thread *t = model_thread(b);
        tg_event_head(b, FR_EV_THREAD_NAME, time);
        tg_put_uvarint(b, tg_string_id(b->g, name));
        free(t->name);
        t->name = xstrdup(name);
}

void tg_thread_start(struct tg_batch *b, uint64_t time) {
        struct tg_thread *t = model_thread(b);
        tg_event_head(b, FR_EV_THREAD_START, time);
        thread_clear(t);
        t->alive = true;
}

void tg_thread_exit(struct tg_batch *b, uint64_t time) {
        struct tg_thread *t = model_thread(b);
        tg_event_head(b, FR_EV_THREAD_EXIT, time);
        thread_clear(t);
        t->alive = false;
}

void tg_lost(struct tg_batch *b, uint64_t time, uint64_t what, uint64_t count) {
        tg_event_head(b, FR_EV_LOST, time);
        tg_put_uvarint(b, what);
        tg_put_uvarint(b, count);
}

void tg_sample(struct tg_batch *b, uint64_t time, uint64_t weight, uint64_t task,
               const char *region, const uint64_t *pcs, size_t npcs) {
        tg_put_uvarint(b, time - b->last);
        b->last = time;
        tg_put_uvarint(b, weight);
        tg_put_uvarint(b, task);
        tg_put_uvarint(b, tg_string_id(b->g, region));
        tg_put_uvarint(b, tg_stack_id(b->g, pcs, npcs));
}

/* ------------------------------------------------------------------------ */
/* Encoding */

static void encode_status(struct tg_gen *g, struct fr_buf *out) {
        const struct tg_state *s = &g->priv->status;
        size_t alive = 0;
        for (size_t i = 0; i < s->nthreads; i++)
                alive += s->threads[i].alive;
        fr_buf_put_uvarint(out, alive);
        for (size_t i = 0; i < s->nthreads; i++) {
                const struct tg_thread *t = &s->threads[i];
                if (!t->alive)
                        continue;
                fr_buf_put_uvarint(out, t->tid);
                fr_buf_put_uvarint(out, tg_string_id(g, t->name));
                fr_buf_put_uvarint(out, t->nregions);
                for (size_t j = 0; j < t->nregions; j++) {
                        fr_buf_put_uvarint(out, t->regions[j].task);
                        fr_buf_put_uvarint(out, tg_string_id(g, t->regions[j].name));
                }
        }
        fr_buf_put_uvarint(out, s->ntasks);
        for (size_t i = 0; i < s->ntasks; i++) {
                fr_buf_put_uvarint(out, s->tasks[i].id);
                fr_buf_put_uvarint(out, s->tasks[i].parent);
                fr_buf_put_uvarint(out, tg_string_id(g, s->tasks[i].name));
        }
}

static void encode_strings(const struct tg_gen_priv *p, struct fr_buf *out) {
        for (size_t i = 0; i < p->nstrings; i++) {
                fr_buf_put_uvarint(out, p->strings[i].id);
                fr_buf_put_string(out, p->strings[i].bytes, p->strings[i].len);
        }
}

static void encode_stacks(const struct tg_gen_priv *p, struct fr_buf *out) {
        for (size_t i = 0; i < p->nstacks; i++) {
                const struct tg_stack *s = &p->stacks[i];
                fr_buf_put_uvarint(out, s->id);
                fr_buf_put_uvarint(out, s->n);
                for (size_t j = 0; j < s->n; j++)
                        fr_buf_put_uvarint(out, j ? fr_zigzag((int64_t)(s->pcs[j] - s->pcs[j - 1]))
                                                  : s->pcs[0]);
        }
}

struct gen_writer {
        struct fr_buf *out;
        const struct tg_gen *g;
        size_t nbatches;
};

static void put_batch(struct gen_writer *w, enum fr_batch_kind kind, uint64_t gen, uint64_t tid,
                      uint64_t base, const struct fr_buf *payload) {
        fr_buf_put_batch(w->out, kind, gen ? gen : w->g->num, tid, base, payload->data,
                         payload->len);
        w->nbatches++;
}

static void put_tables(struct gen_writer *w, const struct fr_buf *strings,
                       const struct fr_buf *stacks) {
        if (strings->len)
                put_batch(w, FR_BATCH_STRINGS, 0, 0, 0, strings);
        if (stacks->len)
                put_batch(w, FR_BATCH_STACKS, 0, 0, 0, stacks);
        if (w->g->priv->maps.len)
                put_batch(w, FR_BATCH_MAPS, 0, 0, 0, &w->g->priv->maps);
}

static void encode_gen(struct tg_gen *g, struct fr_buf *out) {
        struct fr_buf clock = {0}, status = {0}, strings = {0}, stacks = {0}, end = {0};
        struct gen_writer w = {out, g, 0};

        /* STATUS first: it interns the names it needs. */
        encode_status(g, &status);
        encode_strings(g->priv, &strings);
        encode_stacks(g->priv, &stacks);
        fr_buf_put_uvarint(&clock, g->ticks_per_second);
        fr_buf_put_uvarint(&clock, g->mono_ns);
        fr_buf_put_uvarint(&clock, g->real_ns);
        fr_buf_put_uvarint(&clock, g->sampler);
        fr_buf_put_uvarint(&clock, g->sample_hz);

        if (g->tables_first)
                put_tables(&w, &strings, &stacks);
        for (int i = 0; !g->no_clock && i < 1 + g->extra_clock; i++)
                put_batch(&w, FR_BATCH_CLOCK, 0, 0, g->start, &clock);
        for (int i = 0; !g->no_status && i < 1 + g->extra_status; i++)
                put_batch(&w, FR_BATCH_STATUS, 0, 0, 0, &status);
        for (size_t i = 0; i < g->priv->nbatches; i++) {
                const struct tg_batch *b = g->priv->batches[i];
                put_batch(&w, b->kind, b->gen, b->tid, b->base, &b->payload);
        }
        if (!g->tables_first)
                put_tables(&w, &strings, &stacks);
        if (!g->no_end) {
                fr_buf_put_uvarint(&end, (uint64_t)((int64_t)w.nbatches + g->end_count_delta));
                if (g->end_flags)
                        fr_buf_put_uvarint(&end, g->end_flags);
                fr_buf_put_batch(out, FR_BATCH_END, g->num, 0, g->end, end.data, end.len);
        }
        fr_buf_free(&clock);
        fr_buf_free(&status);
        fr_buf_free(&strings);
        fr_buf_free(&stacks);
        fr_buf_free(&end);
}

void tg_trace_encode(struct tg_trace *t, uint8_t **ret_data, size_t *ret_len) {
        struct fr_buf out = {0};
        if (t->raw_header)
                fr_buf_put_bytes(&out, t->header.data, t->header.len);
        else
                fr_buf_put_header(&out, t->pid, t->comm, t->exe, t->reason, t->flags);
        for (size_t i = 0; i < t->ngens; i++)
                encode_gen(t->gens[i], &out);
        if (out.failed || fr_buf_reserve(&out, 1) < 0) {
                fprintf(stderr, "tracegen: out of memory\n");
                abort();
        }
        *ret_data = out.data;
        *ret_len = out.len;
}

void tg_trace_encode_free(struct tg_trace *t, uint8_t **ret_data, size_t *ret_len) {
        tg_trace_encode(t, ret_data, ret_len);
        tg_trace_free(t);
}

int tg_trace_write_file(struct tg_trace *t, const char *path) {
        uint8_t *data;
        size_t len;
        int e = 0;
        FILE *f = fopen(path, "wb");
        if (!f)
                return -errno;
        tg_trace_encode(t, &data, &len);
        if (fwrite(data, 1, len, f) != len)
                e = -EIO;
        if (fclose(f) != 0 && !e)
                e = -errno;
        free(data);
        return e;
}
