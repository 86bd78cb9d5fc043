/* Trace CPU samples to a gzip'd pprof profile: see pprof.h.
 *
 * Two reads of the trace. The first collects the header, the time span, the
 * sampling rate and the union of the loaded objects, so that mapping ids are
 * fixed (the executable first) before any location refers to them. The
 * second turns each sample into location ids, symbolizing each distinct
 * address once, and merges samples by (locations, labels). Then the profile
 * is assembled as protobuf-c structures, packed and gzip'd.
 *
 * Everything that outlives a generation (strings, keys) is copied into an
 * arena, since the reader's data is only valid during its callback. */
#include "pprof.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "profile.pb-c.h"
#include "fr_addr_ranges.h"
#include "symbolize.h"
#include "trace_encode.h"
#include "fr_err.h"
#include "fr_keymap.h"
#include "fr_vec.h"
#include "trace_format.h"
#include "trace_reader.h"

#define DEFAULT_HZ 100
#define NS_PER_SEC 1000000000ull

/* ------------------------------------------------------------------------ */
/* Conversion state                                                          */

struct mapping {
        uint64_t start, limit, offset;
        const char *path; /* in the arena */
        uint8_t build_id[FR_MAX_BUILD_ID_BYTES];
        size_t build_id_len;
        size_t first_seen;  /* order of appearance, for the mapping order */
        uint64_t id;        /* pprof id, fixed after the first read */
        struct fr_sym_object *sym; /* opened on first use */
        bool sym_opened;
        size_t nlocs;
        bool all_functions, all_files, all_lines, all_inline;
};

struct location {
        uint64_t mapping_id; /* 0: none */
        uint64_t address;
        size_t first_line, nlines;
};

struct line {
        uint64_t function_id;
        int64_t line;
};

struct function {
        int64_t name, system_name, filename, start_line;
};

/* Labels of a sample, in this order after its location ids in `keys`
 * (string indexes, 0 = absent). */
enum { L_TID, L_NAME, L_TASK, L_TASK_ID, L_REGION, L_WAIT, NLABELS };

/* A merged sample: key (location ids, then the NLABELS label string
 * indexes) in `keys`, summed values. */
struct psample {
        size_t key_start, nlocs;
        int64_t count, cpu; /* off-CPU: waits and blocked ns */
};

/* Names (string indexes) by id: threads' within one generation, tasks'
 * across the trace. */
struct names {
        struct fr_keymap index; /* tid -> slot in v */
        FR_VEC(int64_t) v;
};

struct conv {
        const struct fr_pprof_options *opts;
        bool offcpu;        /* FR_PPROF_OFFCPU: waits instead of CPU samples */
        struct names tasks; /* task id -> name, from STATUS and TASK_BEGIN */
        size_t gen_index;   /* generations seen by the second read */
        struct fr_symbolizer *sym;
        struct fr_arena arena;
        char *err;
        size_t errlen;
        int failed; /* a negative errno a callback stopped the read with */
        uint8_t *keybuf; /* MAP_KEY_MAX bytes: a loaded object's key */

        /* First read */
        bool have_header;
        char *exe, *comm, *reason; /* in the arena */
        uint64_t pid, hflags;
        size_t ngens;
        uint64_t time_nanos, first_mono, end_mono;
        uint64_t sample_hz; /* first non-zero, for the profile's period */
        bool hz_assumed;
        FR_VEC(struct mapping) maps;
        struct fr_keymap map_index; /* (start, limit, offset, build id, path) -> maps index */
        size_t *by_start;        /* maps indexes sorted by start, for generations without MAPS */

        /* Second read */
        FR_VEC(char *) strings;
        struct fr_keymap string_index;
        FR_VEC(struct location) locs;
        struct fr_keymap loc_index; /* (mapping id, address) -> locs index */
        FR_VEC(struct line) lines;
        FR_VEC(struct function) funcs;
        struct fr_keymap func_index; /* (name, filename) -> funcs index */
        FR_VEC(struct psample) samples;
        FR_VEC(uint64_t) keys;
        struct fr_keymap sample_index;
        FR_VEC(struct fr_addr_range) gmaps; /* this generation's, idx: its mapping */
        uint64_t nsamples_in;
        size_t nunresolved;
};

static __attribute__((format(printf, 2, 3))) int conv_fail(struct conv *c, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = fr_verrf(c->err, c->errlen, -1, fmt, ap);
        va_end(ap);
        return r;
}

static int oom(struct conv *c) {
        conv_fail(c, "out of memory");
        c->failed = -ENOMEM;
        return -ENOMEM;
}

/* intern - the string table index of s (NULL: 0, the empty string).
 * Returns the index, or -ENOMEM. */
static int64_t intern(struct conv *c, const char *s) {
        size_t idx, n;
        if (!s || !*s)
                return 0;
        n = strlen(s);
        if (fr_keymap_get(&c->string_index, s, n, &idx))
                return (int64_t)idx;
        idx = c->strings.n;
        char **slot = FR_VEC_PUSH(c->strings);
        if (!slot || fr_keymap_put(&c->string_index, &c->arena, s, n, idx) < 0)
                return -ENOMEM;
        *slot = fr_arena_strdup(&c->arena, s);
        if (!*slot)
                return -ENOMEM;
        return (int64_t)idx;
}

static __attribute__((format(printf, 2, 3))) int64_t internf(struct conv *c, const char *fmt, ...) {
        char buf[FR_MAX_PATH_BYTES + 256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        return intern(c, buf);
}

/* ------------------------------------------------------------------------ */
/* First read: header, span, rate, objects                                   */

#define MAP_KEY_MAX (4 * 8 + FR_MAX_BUILD_ID_BYTES + FR_MAX_PATH_BYTES)

/* map_key - the identity of a loaded object entry, as bytes. */
static size_t map_key(uint8_t *buf, uint64_t start, uint64_t limit, uint64_t offset,
                      const uint8_t *bid, size_t bidlen, const char *path) {
        size_t n = 0, pl = strlen(path);
        uint64_t v[4] = {start, limit, offset, bidlen};
        memcpy(buf, v, sizeof v);
        n += sizeof v;
        if (bidlen) /* bid may be NULL when there is none */
                memcpy(buf + n, bid, bidlen);
        n += bidlen;
        memcpy(buf + n, path, pl);
        return n + pl;
}

static int add_map(struct conv *c, const struct fr_map *m) {
        uint8_t *key = c->keybuf;
        size_t bidlen = m->build_id_len > FR_MAX_BUILD_ID_BYTES ? FR_MAX_BUILD_ID_BYTES
                                                                : m->build_id_len;
        const char *path = m->path ? m->path : "";
        size_t idx;

        if (strlen(path) > FR_MAX_PATH_BYTES)
                return 0; /* the reader enforces this; stay safe anyway */
        size_t n = map_key(key, m->start, m->limit, m->offset, m->build_id, bidlen, path);
        if (fr_keymap_get(&c->map_index, key, n, &idx))
                return 0;
        idx = c->maps.n;
        struct mapping *mp = FR_VEC_PUSH(c->maps);
        if (!mp)
                return -ENOMEM;
        *mp = (struct mapping){.start = m->start, .limit = m->limit, .offset = m->offset,
                               .build_id_len = bidlen, .first_seen = idx};
        if (bidlen)
                memcpy(mp->build_id, m->build_id, bidlen);
        mp->path = fr_arena_strdup(&c->arena, path);
        if (!mp->path || fr_keymap_put(&c->map_index, &c->arena, key, n, idx) < 0)
                return -ENOMEM;
        return 0;
}

static int first_pass(const struct fr_trace_header *h, const struct fr_generation *g, void *ud) {
        struct conv *c = ud;
        if (!c->have_header) {
                c->have_header = true;
                c->pid = h->pid;
                c->hflags = h->flags;
                c->exe = fr_arena_strdup(&c->arena, h->exe ? h->exe : "");
                c->comm = fr_arena_strdup(&c->arena, h->comm ? h->comm : "");
                c->reason = fr_arena_strdup(&c->arena, h->reason ? h->reason : "");
                if (!c->exe || !c->comm || !c->reason)
                        return oom(c);
        }
        if (c->ngens++ == 0) {
                c->time_nanos = g->real_ns;
                c->first_mono = g->mono_ns;
        }
        c->end_mono = g->mono_ns + fr_ticks_to_ns(g, g->end - g->start);
        if (!c->sample_hz && g->sample_hz)
                c->sample_hz = g->sample_hz;
        for (size_t i = 0; i < g->nmaps; i++)
                if (add_map(c, &g->maps[i]) < 0)
                        return oom(c);
        return 0;
}

/* The executable's entries first (mapping 1 is the main binary), by start;
 * the others in the order they first appeared. */
static int cmp_mapping_order(const void *a, const void *b, void *ud) {
        const struct conv *c = ud;
        const struct mapping *x = a, *y = b;
        bool xe = strcmp(x->path, c->exe) == 0, ye = strcmp(y->path, c->exe) == 0;
        if (xe != ye)
                return xe ? -1 : 1;
        if (xe && x->start != y->start)
                return x->start < y->start ? -1 : 1;
        return x->first_seen < y->first_seen ? -1 : x->first_seen > y->first_seen;
}

static int cmp_by_start(const void *a, const void *b, void *ud) {
        const struct mapping *m = ((const struct conv *)ud)->maps.v;
        size_t x = *(const size_t *)a, y = *(const size_t *)b;
        if (m[x].start != m[y].start)
                return m[x].start < m[y].start ? -1 : 1;
        return x < y ? -1 : x > y;
}

static int order_mappings(struct conv *c) {
        if (!c->exe)
                c->exe = ""; /* no generation, no header seen */
        /* qsort with a NULL base is undefined even for 0 elements. */
        if (c->maps.n)
                qsort_r(c->maps.v, c->maps.n, sizeof *c->maps.v, cmp_mapping_order, c);
        /* The index must follow the new order: rebuild it. */
        fr_keymap_free(&c->map_index);
        c->by_start = malloc((c->maps.n ? c->maps.n : 1) * sizeof *c->by_start);
        if (!c->by_start)
                return -ENOMEM;
        for (size_t i = 0; i < c->maps.n; i++) {
                struct mapping *m = &c->maps.v[i];
                m->id = i + 1;
                m->all_functions = m->all_files = m->all_lines = m->all_inline = true;
                size_t n = map_key(c->keybuf, m->start, m->limit, m->offset, m->build_id,
                                   m->build_id_len, m->path);
                if (fr_keymap_put(&c->map_index, &c->arena, c->keybuf, n, i) < 0)
                        return -ENOMEM;
                c->by_start[i] = i;
        }
        if (c->maps.n)
                qsort_r(c->by_start, c->maps.n, sizeof *c->by_start, cmp_by_start, c);
        return 0;
}

/* ------------------------------------------------------------------------ */
/* Second read: locations and samples                                        */

/* gen_maps - this generation's objects by start address; a generation that
 * carries no MAPS uses the union. */
static int gen_maps(struct conv *c, const struct fr_generation *g) {
        uint8_t *key = c->keybuf;
        c->gmaps.n = 0;
        for (size_t i = 0; i < g->nmaps; i++) {
                const struct fr_map *m = &g->maps[i];
                size_t bidlen = m->build_id_len > FR_MAX_BUILD_ID_BYTES ? FR_MAX_BUILD_ID_BYTES
                                                                        : m->build_id_len;
                const char *path = m->path ? m->path : "";
                size_t idx;
                if (strlen(path) > FR_MAX_PATH_BYTES)
                        continue;
                size_t n = map_key(key, m->start, m->limit, m->offset, m->build_id, bidlen, path);
                if (!fr_keymap_get(&c->map_index, key, n, &idx))
                        continue; /* cannot happen: the first read saw the same trace */
                struct fr_addr_range *gm = FR_VEC_PUSH(c->gmaps);
                if (!gm)
                        return -ENOMEM;
                *gm = (struct fr_addr_range){m->start, m->limit, idx};
        }
        if (g->nmaps == 0) {
                for (size_t i = 0; i < c->maps.n; i++) {
                        const struct mapping *m = &c->maps.v[c->by_start[i]];
                        struct fr_addr_range *gm = FR_VEC_PUSH(c->gmaps);
                        if (!gm)
                                return -ENOMEM;
                        *gm = (struct fr_addr_range){m->start, m->limit, c->by_start[i]};
                }
        }
        fr_addr_ranges_sort(c->gmaps.v, c->gmaps.n);
        return 0;
}

/* function_id - the function (name, file), created on first use. */
static int function_id(struct conv *c, const char *name, const char *system_name,
                       const char *file, int64_t start_line, uint64_t *ret) {
        int64_t n = intern(c, name), f = intern(c, file), sn;
        int64_t key[2] = {n, f};
        size_t idx;
        if (n < 0 || f < 0)
                return -ENOMEM;
        if (fr_keymap_get(&c->func_index, key, sizeof key, &idx)) {
                *ret = idx + 1;
                return 0;
        }
        sn = system_name ? intern(c, system_name) : n;
        if (sn < 0)
                return -ENOMEM;
        idx = c->funcs.n;
        struct function *fn = FR_VEC_PUSH(c->funcs);
        if (!fn || fr_keymap_put(&c->func_index, &c->arena, key, sizeof key, idx) < 0)
                return -ENOMEM;
        *fn = (struct function){n, sn, f, start_line};
        *ret = idx + 1;
        return 0;
}

static const char *basename_of(const char *path) {
        const char *b = strrchr(path, '/');
        return b && b[1] ? b + 1 : path;
}

/* add_unresolved_line - a function named after the object and file offset
 * (or the bare address outside any object), so viewers keep the frame. */
static int add_unresolved_line(struct conv *c, const struct mapping *m, uint64_t addr,
                               struct location *loc) {
        char name[FR_MAX_PATH_BYTES + 32];
        uint64_t fid;
        if (m)
                snprintf(name, sizeof name, "%s+0x%" PRIx64, basename_of(m->path),
                         addr - m->start + m->offset);
        else
                snprintf(name, sizeof name, "[unknown]+0x%" PRIx64, addr);
        if (function_id(c, name, NULL, NULL, 0, &fid) < 0)
                return -ENOMEM;
        struct line *l = FR_VEC_PUSH(c->lines);
        if (!l)
                return -ENOMEM;
        *l = (struct line){fid, 0};
        loc->first_line = c->lines.n - 1;
        loc->nlines = 1;
        return 0;
}

/* symbolize_location - lines for a location in mapping m; the mapping's
 * claims drop when this location is not resolved as fully. */
static int symbolize_location(struct conv *c, struct mapping *m, uint64_t addr,
                              struct location *loc) {
        struct fr_sym_result res = {0};
        bool files = true, lines = true;
        int r;

        m->nlocs++;
        if (!(c->opts->flags & FR_PPROF_NO_SYMBOLIZE) && !m->sym_opened) {
                struct fr_object obj = {m->path, m->build_id, m->build_id_len,
                                        m->start, m->limit, m->offset};
                r = fr_sym_open(c->sym, &obj, &m->sym);
                if (r < 0)
                        return r;
                m->sym_opened = true;
        }
        if (m->sym) {
                r = fr_symbolize(m->sym, addr, &res);
                if (r < 0)
                        return r;
        }
        if (res.nframes == 0) {
                m->all_functions = m->all_files = m->all_lines = m->all_inline = false;
                c->nunresolved++;
                return add_unresolved_line(c, m, addr, loc);
        }
        loc->first_line = c->lines.n;
        for (size_t i = 0; i < res.nframes; i++) {
                const struct fr_sym_frame *f = &res.frames[i];
                uint64_t fid;
                char fallback[FR_MAX_PATH_BYTES + 32];
                const char *name = f->function;
                if (!name) {
                        snprintf(fallback, sizeof fallback, "%s+0x%" PRIx64, basename_of(m->path),
                                 addr - m->start + m->offset);
                        name = fallback;
                }
                files &= f->file != NULL;
                lines &= f->line > 0;
                if (function_id(c, name, f->system_name, f->file, f->start_line, &fid) < 0)
                        return -ENOMEM;
                struct line *l = FR_VEC_PUSH(c->lines);
                if (!l)
                        return -ENOMEM;
                *l = (struct line){fid, f->line};
        }
        loc->nlines = res.nframes;
        m->all_functions &= res.frames[0].function != NULL;
        m->all_files &= files;
        m->all_lines &= lines;
        m->all_inline &= res.has_dwarf;
        return 0;
}

/* location_id - the location of a frame address (already adjusted into the
 * instruction), created and symbolized on first use. */
static int location_id(struct conv *c, uint64_t addr, uint64_t *ret) {
        size_t mi = fr_addr_ranges_find(c->gmaps.v, c->gmaps.n, addr), idx;
        struct mapping *m = mi == SIZE_MAX ? NULL : &c->maps.v[mi];
        uint64_t key[2] = {m ? m->id : 0, addr};
        int r;

        if (fr_keymap_get(&c->loc_index, key, sizeof key, &idx)) {
                *ret = idx + 1;
                return 0;
        }
        struct location loc = {.mapping_id = key[0], .address = addr};
        if (m) {
                r = symbolize_location(c, m, addr, &loc);
        } else {
                c->nunresolved++;
                r = add_unresolved_line(c, NULL, addr, &loc);
        }
        if (r < 0)
                return r;
        idx = c->locs.n;
        struct location *slot = FR_VEC_PUSH(c->locs);
        if (!slot || fr_keymap_put(&c->loc_index, &c->arena, key, sizeof key, idx) < 0)
                return -ENOMEM;
        *slot = loc;
        *ret = idx + 1;
        return 0;
}

static int64_t sat_mul(uint64_t a, uint64_t b) {
        unsigned __int128 p = (unsigned __int128)a * b;
        return p > INT64_MAX ? INT64_MAX : (int64_t)p;
}

static int64_t sat_add(int64_t a, int64_t b) { return a > INT64_MAX - b ? INT64_MAX : a + b; }

static int names_set(struct conv *c, struct names *t, uint64_t tid, int64_t name) {
        size_t idx;
        if (fr_keymap_get(&t->index, &tid, sizeof tid, &idx)) {
                t->v.v[idx] = name;
                return 0;
        }
        int64_t *slot = FR_VEC_PUSH(t->v);
        if (!slot || fr_keymap_put(&t->index, &c->arena, &tid, sizeof tid, t->v.n - 1) < 0)
                return -ENOMEM;
        *slot = name;
        return 0;
}

static int64_t names_get(const struct names *t, uint64_t tid) {
        size_t idx;
        return fr_keymap_get(&t->index, &tid, sizeof tid, &idx) ? t->v.v[idx] : 0;
}

/* add_stack_sample - one sample of frames[0..n) (frames[0] exact, the
 * others return addresses) with its labels, merged with an equal one. */
static int add_stack_sample(struct conv *c, const struct names *names, uint64_t tid,
                            const uint64_t *frames, uint32_t n, uint64_t task, const char *region,
                            const char *wait, int64_t count, int64_t value) {
        size_t start = c->keys.n, idx;
        int64_t label[NLABELS];

        for (uint32_t i = 0; i < n; i++) {
                /* A caller's frame is a return address: step back into the call. */
                uint64_t addr = i == 0 ? frames[i] : frames[i] - 1, id;
                uint64_t *k = FR_VEC_PUSH(c->keys);
                if (!k || location_id(c, addr, &id) < 0)
                        return -ENOMEM;
                c->keys.v[c->keys.n - 1] = id;
        }
        label[L_TID] = internf(c, "%" PRIu64, tid);
        label[L_NAME] = names_get(names, tid);
        /* The task's name when the trace gave one, its number always. */
        label[L_TASK] = task ? names_get(&c->tasks, task) : 0;
        label[L_TASK_ID] = task ? internf(c, "%" PRIu64, task) : 0;
        label[L_REGION] = intern(c, region);
        label[L_WAIT] = intern(c, wait);
        for (int i = 0; i < NLABELS; i++) {
                uint64_t *k = FR_VEC_PUSH(c->keys);
                if (!k || label[i] < 0)
                        return -ENOMEM;
                *k = (uint64_t)label[i];
        }
        const uint64_t *key = c->keys.v + start;
        size_t keylen = (c->keys.n - start) * sizeof *key;
        if (fr_keymap_get(&c->sample_index, key, keylen, &idx)) {
                c->keys.n = start; /* the same stack and labels: merge */
        } else {
                idx = c->samples.n;
                struct psample *p = FR_VEC_PUSH(c->samples);
                if (!p || fr_keymap_put(&c->sample_index, &c->arena, key, keylen, idx) < 0)
                        return -ENOMEM;
                *p = (struct psample){start, n, 0, 0};
        }
        struct psample *p = &c->samples.v[idx];
        p->count = sat_add(p->count, count);
        p->cpu = sat_add(p->cpu, value);
        c->nsamples_in++;
        return 0;
}

static int add_sample(struct conv *c, const struct fr_generation *g, const struct names *names,
                      const struct fr_sample *s) {
        uint64_t hz = g->sample_hz ? g->sample_hz : DEFAULT_HZ;
        uint64_t period = NS_PER_SEC / hz ? NS_PER_SEC / hz : 1;
        return add_stack_sample(c, names, s->tid, s->frames, s->nframes, s->task, s->region, NULL,
                                sat_mul(s->weight, 1), sat_mul(s->weight, period));
}

/* clip_ns - the part of a wait of ns that ended at mono (CLOCK_MONOTONIC)
 * inside the profile's window. */
static int64_t clip_ns(const struct conv *c, uint64_t ns, uint64_t mono) {
        uint64_t inside = mono > c->first_mono ? mono - c->first_mono : 0;
        return sat_mul(ns < inside ? ns : inside, 1);
}

/* add_block - a wait that ended in the window (BLOCK event). */
static int add_block(struct conv *c, const struct fr_generation *g, const struct names *names,
                     const struct fr_event *e) {
        uint64_t mono = g->mono_ns + fr_ticks_to_ns(g, e->time - g->start);
        const uint64_t leaf = 0;
        return add_stack_sample(c, names, e->tid, e->nframes ? e->frames : &leaf,
                                e->nframes ? e->nframes : 1, e->task, e->region,
                                fr_wait_call_name(e->wait_call), 1, clip_ns(c, e->wait_ns, mono));
}

static int apply_event(struct conv *c, struct names *names, const struct fr_event *e) {
        switch (e->type) {
        case FR_EV_THREAD_NAME: {
                int64_t n = intern(c, e->name);
                return n < 0 ? -ENOMEM : names_set(c, names, e->tid, n);
        }
        case FR_EV_THREAD_START:
        case FR_EV_THREAD_EXIT:
                return names_set(c, names, e->tid, 0);
        case FR_EV_TASK_BEGIN: {
                int64_t n = intern(c, e->name);
                return n < 0 ? -ENOMEM : names_set(c, &c->tasks, e->task, n);
        }
        }
        return 0;
}

static int second_pass(const struct fr_trace_header *h, const struct fr_generation *g, void *ud) {
        struct conv *c = ud;
        struct names names = {0};
        size_t i = 0, j = 0;
        int r = 0;
        bool last = ++c->gen_index == c->ngens;

        (void)h;
        for (size_t k = 0; k < g->ntasks && r == 0; k++) {
                int64_t n = intern(c, g->tasks[k].name);
                r = n < 0 ? -ENOMEM : names_set(c, &c->tasks, g->tasks[k].id, n);
        }
        if (r < 0)
                return oom(c);
        if (c->offcpu ? g->nevents == 0 && (!last || g->nblocked == 0) : g->nsamples == 0) {
                /* Nothing to add, but the tasks begun here are named later. */
                for (; i < g->nevents && r == 0; i++)
                        if (g->events[i].type == FR_EV_TASK_BEGIN)
                                r = apply_event(c, &names, &g->events[i]);
                fr_keymap_free(&names.index);
                free(names.v.v);
                return r < 0 ? oom(c) : 0;
        }
        if (gen_maps(c, g) < 0)
                return oom(c);
        for (size_t k = 0; k < g->nthreads && r == 0; k++) {
                int64_t n = intern(c, g->threads[k].name);
                r = n < 0 ? -ENOMEM : names_set(c, &names, g->threads[k].tid, n);
        }
        if (c->offcpu) {
                /* Waits that ended here, then (last generation) those still
                 * going on at its end: each wait counted once, for the part
                 * of it inside the window. */
                for (; i < g->nevents && r == 0; i++) {
                        r = apply_event(c, &names, &g->events[i]);
                        if (r == 0 && g->events[i].type == FR_EV_BLOCK)
                                r = add_block(c, g, &names, &g->events[i]);
                }
                uint64_t mono = g->mono_ns + fr_ticks_to_ns(g, g->blocked_time - g->start);
                for (size_t k = 0; last && k < g->nblocked && r == 0; k++) {
                        const struct fr_blocked *b = &g->blocked[k];
                        const uint64_t leaf = 0;
                        r = add_stack_sample(c, &names, b->tid, b->nframes ? b->frames : &leaf,
                                             b->nframes ? b->nframes : 1, b->task, b->region,
                                             fr_wait_call_name(b->call), 1,
                                             clip_ns(c, b->waited_ns, mono));
                }
        }
        /* Events and samples by time, an event first on a tie, so that each
         * sample sees its thread's name at that moment. */
        while (!c->offcpu && r == 0 && j < g->nsamples) {
                if (i < g->nevents && g->events[i].time <= g->samples[j].time)
                        r = apply_event(c, &names, &g->events[i++]);
                else
                        r = add_sample(c, g, &names, &g->samples[j++]);
        }
        for (; r == 0 && i < g->nevents; i++)
                if (g->events[i].type == FR_EV_TASK_BEGIN)
                        r = apply_event(c, &names, &g->events[i]);
        fr_keymap_free(&names.index);
        free(names.v.v);
        return r < 0 ? oom(c) : 0;
}

/* ------------------------------------------------------------------------ */
/* Assembly                                                                  */

static int hex_build_id(char *buf, const uint8_t *bid, size_t n) {
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                buf[2 * i] = digits[bid[i] >> 4];
                buf[2 * i + 1] = digits[bid[i] & 15];
        }
        buf[2 * n] = 0;
        return 0;
}

/* Everything the packed profile points to, freed together. */
struct assembly {
        Perftools__Profiles__Profile p;
        Perftools__Profiles__ValueType vt[3], *vtp[2];
        Perftools__Profiles__Sample *samples, **samplep;
        Perftools__Profiles__Label *labels, **labelp;
        int64_t *values;
        Perftools__Profiles__Mapping *maps, **mapp;
        Perftools__Profiles__Location *locs, **locp;
        Perftools__Profiles__Line *lines, **linep;
        Perftools__Profiles__Function *funcs, **funcp;
        FR_VEC(int64_t) comments;
};

static void assembly_free(struct assembly *a) {
        free(a->samples);
        free(a->samplep);
        free(a->labels);
        free(a->labelp);
        free(a->values);
        free(a->maps);
        free(a->mapp);
        free(a->locs);
        free(a->locp);
        free(a->lines);
        free(a->linep);
        free(a->funcs);
        free(a->funcp);
        free(a->comments.v);
}

static void *xcalloc(size_t n, size_t size, bool *failed) {
        void *p = calloc(n ? n : 1, size);
        if (!p)
                *failed = true;
        return p;
}

static int add_comment(struct assembly *a, int64_t idx) {
        int64_t *slot = FR_VEC_PUSH(a->comments);
        if (idx < 0 || !slot)
                return -ENOMEM;
        *slot = idx;
        return 0;
}

static int add_comments(struct conv *c, struct assembly *a) {
        int r = 0;
        if (c->have_header) {
                r |= add_comment(a, internf(c, "flightrec: pid %" PRIu64 " comm %s exe %s",
                                               c->pid, c->comm, c->exe));
                if (*c->reason)
                        r |= add_comment(a, internf(c, "reason: %s", c->reason));
                if (c->hflags & FR_HEADER_POSTMORTEM)
                        r |= add_comment(a, intern(c, "post-mortem: salvaged from a dead process"));
        }
        if (c->hz_assumed)
                r |= add_comment(a, internf(c, "sampling rate not recorded: %d Hz assumed",
                                               DEFAULT_HZ));
        if (c->opts->flags & FR_PPROF_NO_SYMBOLIZE)
                r |= add_comment(a, intern(c, "not symbolized (requested)"));
        for (size_t i = 0; i < c->maps.n; i++) {
                const struct mapping *m = &c->maps.v[i];
                if (m->sym && fr_sym_object_status(m->sym) != FR_SYM_OK)
                        r |= add_comment(a, internf(c, "not symbolized: %s: %s", m->path,
                                                       fr_sym_status_text(fr_sym_object_status(m->sym))));
        }
        return r ? -ENOMEM : 0;
}

/* The interned value types and label keys of every profile. */
struct keys {
        int64_t samples, count, cpu, ns;
        int64_t label[NLABELS]; /* thread_id, thread_name, task, task_id, region, wait */
};

static int intern_keys(struct conv *c, struct keys *k) {
        /* Off-CPU: waits/count and blocked/nanoseconds. */
        k->samples = intern(c, c->offcpu ? "waits" : "samples");
        k->count = intern(c, "count");
        k->cpu = intern(c, c->offcpu ? "blocked" : "cpu");
        k->ns = intern(c, "nanoseconds");
        k->label[L_TID] = intern(c, "thread_id");
        k->label[L_NAME] = intern(c, "thread_name");
        k->label[L_TASK] = intern(c, "task");
        k->label[L_TASK_ID] = intern(c, "task_id");
        k->label[L_REGION] = intern(c, "region");
        k->label[L_WAIT] = intern(c, "wait");
        if (k->samples < 0 || k->count < 0 || k->cpu < 0 || k->ns < 0)
                return -ENOMEM;
        for (int i = 0; i < NLABELS; i++)
                if (k->label[i] < 0)
                        return -ENOMEM;
        return 0;
}

/* Step 1: mappings (their file names and build ids interned). */
static int assemble_mappings(struct conv *c, struct assembly *a) {
        bool failed = false;
        a->maps = xcalloc(c->maps.n, sizeof *a->maps, &failed);
        a->mapp = xcalloc(c->maps.n, sizeof *a->mapp, &failed);
        if (failed)
                return -ENOMEM;
        for (size_t i = 0; i < c->maps.n; i++) {
                const struct mapping *m = &c->maps.v[i];
                Perftools__Profiles__Mapping *pm = &a->maps[i];
                char hex[2 * FR_MAX_BUILD_ID_BYTES + 1];
                bool resolved = m->nlocs > 0 && m->sym && fr_sym_object_status(m->sym) == FR_SYM_OK;
                perftools__profiles__mapping__init(pm);
                hex_build_id(hex, m->build_id, m->build_id_len);
                pm->id = m->id;
                pm->memory_start = m->start;
                pm->memory_limit = m->limit;
                pm->file_offset = m->offset;
                pm->filename = intern(c, m->path);
                pm->build_id = intern(c, hex);
                if (pm->filename < 0 || pm->build_id < 0)
                        return -ENOMEM;
                pm->has_functions = resolved && m->all_functions;
                pm->has_filenames = resolved && m->all_files;
                pm->has_line_numbers = resolved && m->all_lines;
                pm->has_inline_frames = resolved && m->all_inline;
                a->mapp[i] = pm;
        }
        return 0;
}

/* Step 2: the profile's header: value types, period, times. */
static void assemble_header(struct conv *c, struct assembly *a, const struct keys *k) {
        Perftools__Profiles__Profile *p = &a->p;
        uint64_t hz = c->sample_hz ? c->sample_hz : DEFAULT_HZ;
        int64_t s_samples = k->samples, s_count = k->count, s_cpu = k->cpu, s_ns = k->ns;
        perftools__profiles__profile__init(p);
        for (int i = 0; i < 3; i++)
                perftools__profiles__value_type__init(&a->vt[i]);
        a->vt[0].type = s_samples;
        a->vt[0].unit = s_count;
        a->vt[1].type = s_cpu; /* last: the type consumers show by default */
        a->vt[1].unit = s_ns;
        a->vt[2].type = s_cpu;
        a->vt[2].unit = s_ns;
        a->vtp[0] = &a->vt[0];
        a->vtp[1] = &a->vt[1];
        p->n_sample_type = 2;
        p->sample_type = a->vtp;
        p->period_type = &a->vt[2];
        p->period = c->offcpu ? 1 : (int64_t)(NS_PER_SEC / hz ? NS_PER_SEC / hz : 1);
        p->default_sample_type = s_cpu;
        p->time_nanos = c->time_nanos > INT64_MAX ? INT64_MAX : (int64_t)c->time_nanos;
        p->duration_nanos = c->end_mono > c->first_mono ? (int64_t)(c->end_mono - c->first_mono) : 0;
        p->n_mapping = c->maps.n;
        p->mapping = a->mapp;
        p->n_comment = a->comments.n;
        p->comment = a->comments.v;
}

/* Step 3: samples with their values and labels. */
static int assemble_samples(struct conv *c, struct assembly *a, const struct keys *kk) {
        Perftools__Profiles__Profile *p = &a->p;
        size_t nlabels = 0;
        bool failed = false;
        /* Samples */
        for (size_t i = 0; i < c->samples.n; i++) {
                const uint64_t *labels = c->keys.v + c->samples.v[i].key_start + c->samples.v[i].nlocs;
                for (int k = 0; k < NLABELS; k++)
                        nlabels += labels[k] != 0;
        }
        a->samples = xcalloc(c->samples.n, sizeof *a->samples, &failed);
        a->samplep = xcalloc(c->samples.n, sizeof *a->samplep, &failed);
        a->values = xcalloc(c->samples.n * 2, sizeof *a->values, &failed);
        a->labels = xcalloc(nlabels, sizeof *a->labels, &failed);
        a->labelp = xcalloc(nlabels, sizeof *a->labelp, &failed);
        if (failed)
                return -ENOMEM;
        nlabels = 0;
        for (size_t i = 0; i < c->samples.n; i++) {
                const struct psample *ps = &c->samples.v[i];
                Perftools__Profiles__Sample *s = &a->samples[i];
                const uint64_t *labels = c->keys.v + ps->key_start + ps->nlocs;
                perftools__profiles__sample__init(s);
                s->n_location_id = ps->nlocs;
                s->location_id = c->keys.v + ps->key_start;
                s->n_value = 2;
                s->value = &a->values[2 * i];
                s->value[0] = ps->count;
                s->value[1] = ps->cpu;
                s->label = &a->labelp[nlabels];
                for (int k = 0; k < NLABELS; k++) {
                        if (!labels[k])
                                continue;
                        Perftools__Profiles__Label *l = &a->labels[nlabels];
                        perftools__profiles__label__init(l);
                        l->key = kk->label[k];
                        l->str = (int64_t)labels[k];
                        a->labelp[nlabels++] = l;
                        s->n_label++;
                }
                a->samplep[i] = s;
        }
        p->n_sample = c->samples.n;
        p->sample = a->samplep;

        return 0;
}

/* Step 4: locations and their lines. */
static int assemble_locations(struct conv *c, struct assembly *a) {
        Perftools__Profiles__Profile *p = &a->p;
        bool failed = false;
        /* Locations and their lines */
        a->locs = xcalloc(c->locs.n, sizeof *a->locs, &failed);
        a->locp = xcalloc(c->locs.n, sizeof *a->locp, &failed);
        a->lines = xcalloc(c->lines.n, sizeof *a->lines, &failed);
        a->linep = xcalloc(c->lines.n, sizeof *a->linep, &failed);
        if (failed)
                return -ENOMEM;
        for (size_t i = 0; i < c->lines.n; i++) {
                perftools__profiles__line__init(&a->lines[i]);
                a->lines[i].function_id = c->lines.v[i].function_id;
                a->lines[i].line = c->lines.v[i].line;
                a->linep[i] = &a->lines[i];
        }
        for (size_t i = 0; i < c->locs.n; i++) {
                const struct location *l = &c->locs.v[i];
                Perftools__Profiles__Location *pl = &a->locs[i];
                perftools__profiles__location__init(pl);
                pl->id = i + 1;
                pl->mapping_id = l->mapping_id;
                pl->address = l->address;
                pl->n_line = l->nlines;
                pl->line = &a->linep[l->first_line];
                a->locp[i] = pl;
        }
        p->n_location = c->locs.n;
        p->location = a->locp;

        return 0;
}

/* Step 5: functions. */
static int assemble_functions(struct conv *c, struct assembly *a) {
        Perftools__Profiles__Profile *p = &a->p;
        bool failed = false;
        /* Functions */
        a->funcs = xcalloc(c->funcs.n, sizeof *a->funcs, &failed);
        a->funcp = xcalloc(c->funcs.n, sizeof *a->funcp, &failed);
        if (failed)
                return -ENOMEM;
        for (size_t i = 0; i < c->funcs.n; i++) {
                const struct function *f = &c->funcs.v[i];
                Perftools__Profiles__Function *pf = &a->funcs[i];
                perftools__profiles__function__init(pf);
                pf->id = i + 1;
                pf->name = f->name;
                pf->system_name = f->system_name;
                pf->filename = f->filename;
                pf->start_line = f->start_line;
                a->funcp[i] = pf;
        }
        p->n_function = c->funcs.n;
        p->function = a->funcp;

        return 0;
}

/* assemble - the protobuf message from the conversion's tables. */
static int assemble(struct conv *c, struct assembly *a) {
        struct keys k;
        /* Every string (mapping names, build ids, comments) before the
         * string table is handed over. */
        if (intern_keys(c, &k) < 0 || assemble_mappings(c, a) < 0 || add_comments(c, a) < 0)
                return -ENOMEM;
        assemble_header(c, a, &k);
        if (assemble_samples(c, a, &k) < 0 || assemble_locations(c, a) < 0 ||
            assemble_functions(c, a) < 0)
                return -ENOMEM;
        /* Last: nothing is interned after this. */
        a->p.n_string_table = c->strings.n;
        a->p.string_table = c->strings.v;
        return 0;
}

/* gzip - data as a gzip member (zlib's gzip wrapper: windowBits 15 + 16). */
static int gzip(const uint8_t *data, size_t len, int level, uint8_t **ret, size_t *ret_len) {
        z_stream zs = {0};
        uint8_t *out;
        size_t cap;
        int zr;

        if (deflateInit2(&zs, level ? level : Z_DEFAULT_COMPRESSION, Z_DEFLATED, 31, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK)
                return -ENOMEM;
        cap = deflateBound(&zs, len) + 64;
        out = malloc(cap);
        if (!out) {
                deflateEnd(&zs);
                return -ENOMEM;
        }
        zs.next_in = (Bytef *)data;
        zs.next_out = out;
        /* Fed in pieces: avail_in/avail_out are 32-bit. */
        do {
                size_t in_left = len - zs.total_in, out_left = cap - zs.total_out;
                zs.avail_in = in_left > UINT32_MAX ? UINT32_MAX : (uInt)in_left;
                zs.avail_out = out_left > UINT32_MAX ? UINT32_MAX : (uInt)out_left;
                zr = deflate(&zs, zs.avail_in == in_left ? Z_FINISH : Z_NO_FLUSH);
        } while (zr == Z_OK);
        *ret_len = zs.total_out;
        deflateEnd(&zs);
        if (zr != Z_STREAM_END) {
                free(out);
                return -EIO;
        }
        *ret = out;
        return 0;
}

static void conv_free(struct conv *c) {
        fr_keymap_free(&c->map_index);
        fr_keymap_free(&c->string_index);
        fr_keymap_free(&c->loc_index);
        fr_keymap_free(&c->func_index);
        fr_keymap_free(&c->sample_index);
        free(c->maps.v);
        free(c->by_start);
        free(c->strings.v);
        free(c->locs.v);
        free(c->lines.v);
        free(c->funcs.v);
        free(c->samples.v);
        free(c->keys.v);
        free(c->gmaps.v);
        free(c->keybuf);
        fr_keymap_free(&c->tasks.index);
        free(c->tasks.v.v);
        fr_arena_free(&c->arena);
}

int fr_pprof_from_trace(const uint8_t *trace, size_t len, const struct fr_pprof_options *opts,
                        uint8_t **ret_gz, size_t *ret_len, struct fr_pprof_stats *ret_stats,
                        char *err, size_t errlen) {
        static const struct fr_pprof_options defaults = {0};
        struct conv c = {.opts = opts ? opts : &defaults, .err = err, .errlen = errlen};
        c.offcpu = c.opts->flags & FR_PPROF_OFFCPU;
        /* A profile needs the samples and the threads' names, not the other
         * events: the reader skips them (most of a busy trace). */
        unsigned rflags = FR_READ_THREAD_EVENTS_ONLY |
                          (c.opts->flags & FR_PPROF_ALLOW_PARTIAL_TAIL ? FR_READ_ALLOW_PARTIAL_TAIL : 0);
        struct fr_symbolizer *own = NULL;
        struct assembly a = {0};
        uint8_t *packed = NULL;
        int r;

        if (err && errlen)
                err[0] = 0;
        /* zlib would refuse it only at the end, as if memory had run out. */
        if (c.opts->gzip_level < 0 || c.opts->gzip_level > 9) {
                conv_fail(&c, "gzip level %d is not in 1..9", c.opts->gzip_level);
                return -EINVAL;
        }
        static char empty_string[] = "";
        char **empty = FR_VEC_PUSH(c.strings); /* string_table[0] must be "" */
        c.keybuf = malloc(MAP_KEY_MAX);
        if (!empty || !c.keybuf || fr_keymap_put(&c.string_index, &c.arena, "", 0, 0) < 0) {
                r = -ENOMEM;
                goto out;
        }
        *empty = empty_string;

        r = fr_trace_read(trace, len, rflags, first_pass, &c, NULL, err, errlen);
        if (r != 0)
                goto read_failed;
        c.hz_assumed = c.ngens > 0 && c.sample_hz == 0;
        if (order_mappings(&c) < 0) {
                r = -ENOMEM;
                goto out;
        }
        c.sym = c.opts->symbolizer;
        if (!c.sym && !(c.opts->flags & FR_PPROF_NO_SYMBOLIZE)) {
                r = fr_symbolizer_new(c.opts->root, &own);
                if (r < 0)
                        goto out;
                c.sym = own;
        }
        r = fr_trace_read(trace, len, rflags, second_pass, &c, NULL, err, errlen);
        if (r != 0)
                goto read_failed;

        r = assemble(&c, &a);
        if (r < 0)
                goto out;
        size_t plen = perftools__profiles__profile__get_packed_size(&a.p);
        packed = malloc(plen ? plen : 1);
        if (!packed) {
                r = -ENOMEM;
                goto out;
        }
        if (perftools__profiles__profile__pack(&a.p, packed) != plen) {
                conv_fail(&c, "protobuf packing gave an unexpected size");
                r = -EIO;
                goto out_msg;
        }
        r = gzip(packed, plen, c.opts->gzip_level, ret_gz, ret_len);
        if (r == -EIO) {
                conv_fail(&c, "zlib compression failed");
                goto out_msg;
        }
        if (r == 0 && ret_stats)
                *ret_stats = (struct fr_pprof_stats){
                        .ngens = c.ngens,
                        .nsamples = c.nsamples_in,
                        .nprofile_samples = c.samples.n,
                        .nmappings = c.maps.n,
                        .nlocations = c.locs.n,
                        .nfunctions = c.funcs.n,
                        .nunresolved = c.nunresolved,
                };
        goto out;

read_failed:
        /* The reader wrote its own message; a callback's failure wrote ours. */
        if (c.failed)
                r = c.failed;
        else if (r > 0)
                r = -EIO;
        goto out_msg;
out:
        if (r == -ENOMEM)
                conv_fail(&c, "out of memory");
out_msg:
        free(packed);
        assembly_free(&a);
        fr_symbolizer_free(own);
        conv_free(&c);
        return r;
}
