/* The one reader of the flightrec trace format: see trace_reader.h and
 * docs/trace-format.md.
 *
 * A generation is read in two steps. scan_generation() frames its batches up
 * to END (sizes, generation numbers, the END count); decode_generation() then
 * loads the tables first (they may sit anywhere in the generation), reads
 * CLOCK and STATUS, decodes the events and samples, sorts them by time and
 * replays the events against the thread/task state.
 *
 * All input is read through a cursor whose getters check bounds. Every count
 * read from the input is checked against the bytes left before anything is
 * allocated for it, so memory stays proportional to the input. Names in the
 * carried state point into the input itself (which outlives the read), so the
 * state can outlive the generation whose tables defined it. */
#include "trace_reader.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace_encode.h"
#include "fr_err.h"
#include "fr_u64map.h"
#include "fr_vec.h"
#include "trace_format.h"


/* ------------------------------------------------------------------------ */
/* Cursor: bounds-checked reads of data[pos..end); offsets are into the input */

struct cursor {
        const uint8_t *data;
        size_t pos, end;
};

static size_t cur_left(const struct cursor *c) { return c->end - c->pos; }

/* Getters return 0, -ENODATA when the bytes run out, or -EOVERFLOW for a
 * varint longer than 10 bytes or above 2^64-1. */
static int cur_u8(struct cursor *c, uint8_t *ret) {
        if (c->pos >= c->end)
                return -ENODATA;
        *ret = c->data[c->pos++];
        return 0;
}

static int cur_uvarint(struct cursor *c, uint64_t *ret) {
        uint64_t v = 0;
        for (unsigned i = 0; i < FR_VARINT_MAX; i++) {
                if (c->pos >= c->end)
                        return -ENODATA;
                uint8_t b = c->data[c->pos++];
                if (i == FR_VARINT_MAX - 1 && b > 1)
                        return -EOVERFLOW;
                v |= (uint64_t)(b & 0x7f) << (7 * i);
                if (!(b & 0x80)) {
                        *ret = v;
                        return 0;
                }
        }
        return -EOVERFLOW;
}

static int cur_bytes(struct cursor *c, size_t n, const uint8_t **ret) {
        if (n > cur_left(c))
                return -ENODATA;
        *ret = c->data + c->pos;
        c->pos += n;
        return 0;
}

/* ------------------------------------------------------------------------ */
/* Reader state                                                              */

/* A string from a table: raw points into the input (valid for the whole read,
 * used for comparisons), c is the NUL-terminated copy in the generation's
 * arena (valid for that generation only). raw == NULL: none (id 0). */
struct str {
        const uint8_t *raw;
        size_t len;
        const char *c;
};

struct stack {
        const uint64_t *frames;
        uint32_t nframes;
};

struct region {
        uint64_t task;
        struct str name;
};

struct thread {
        uint64_t tid;
        size_t off; /* where it was first seen in this generation */
        struct str name;
        FR_VEC(struct region) regions;
        bool alive;
        bool has_time;
        uint64_t last_time;
};

struct task {
        uint64_t id, parent;
        size_t off;
        struct str name;
        bool open;
};

/* Threads and tasks as the events leave them. Only raw names are used once
 * the generation that defined them is gone. */
struct state {
        FR_VEC(struct thread) threads;
        struct fr_u64map thread_index;
        FR_VEC(struct task) tasks;
        struct fr_u64map task_index;
};

struct batch {
        uint8_t kind;
        uint64_t tid, base;
        size_t off; /* of the batch header */
        struct cursor payload;
};

struct xevent {
        struct fr_event ev;
        struct str name; /* for content comparisons (ev.name is name.c) */
        size_t off;
};

/* An event's sort key (decode_events), made as it is decoded. */
struct evkey {
        uint64_t time;
        size_t idx; /* into xevents; insertion order, so it breaks ties stably */
};


struct xsample {
        struct fr_sample s;
        size_t seq;
};

struct gen {
        uint64_t num;
        size_t off; /* of its first batch */
        FR_VEC(struct batch) batches; /* all but END */
        struct batch end;
        const struct batch *clock, *status, *blocked;
        struct fr_arena arena;
        FR_VEC(struct str) strings;
        struct fr_u64map string_index;
        FR_VEC(struct stack) stacks;
        struct fr_u64map stack_index;
        FR_VEC(struct fr_map) maps;
        FR_VEC(struct xevent) xevents;
        FR_VEC(struct xsample) xsamples;
        struct fr_thread_state *status_threads;
        size_t nstatus_threads;
        struct fr_task_state *status_tasks;
        size_t nstatus_tasks;
        struct fr_event *events;
        struct fr_sample *samples;
        const struct batch *crash_batch;
        struct fr_crash crash;
        FR_VEC(struct fr_blocked) blocked_list;
        struct fr_generation pub;
};

struct reader {
        const uint8_t *data;
        size_t len;
        unsigned flags;
        char *err;
        size_t errlen;
        uint64_t gen;      /* generation being read, for messages; 0: none */
        uint64_t prev_gen; /* last complete generation, 0: none yet */
        struct fr_arena hdr_arena;
        struct fr_trace_header hdr;
        struct state state; /* valid when prev_gen != 0 */
        /* The biggest per-generation arrays, kept from one generation to the
         * next: fresh memory for each would be page-faulted in again every
         * time (most of a big trace's read, on our VMs). */
        struct {
                struct xevent *xevents;
                size_t xevents_cap;
                struct evkey *order; /* keys and the sort's scratch */
                size_t order_cap;
                struct fr_event *events;
                size_t events_cap;
        } spare;
};

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */

static __attribute__((format(printf, 3, 4))) int fail(struct reader *r, size_t off,
                                                      const char *fmt, ...) {
        if (!r->err || !r->errlen)
                return -EINVAL;
        int n;
        if (r->gen)
                n = snprintf(r->err, r->errlen, "offset %zu: generation %" PRIu64 ": ", off, r->gen);
        else
                n = snprintf(r->err, r->errlen, "offset %zu: ", off);
        if (n >= 0 && (size_t)n < r->errlen) {
                va_list ap;
                va_start(ap, fmt);
                fr_verrf(r->err + n, r->errlen - (size_t)n, -EINVAL, fmt, ap);
                va_end(ap);
        }
        return -EINVAL;
}

static int nomem(struct reader *r) {
        if (r->err && r->errlen)
                snprintf(r->err, r->errlen, "out of memory");
        return -ENOMEM;
}

/* quote - s as 'text' for a message, escaped, cut at 60 bytes; none as "(none)". */
static const char *quote(char *buf, size_t size, struct str s) {
        if (!s.raw)
                return "(none)";
        size_t o = 0;
        buf[o++] = '\'';
        for (size_t i = 0; i < s.len && o + 8 < size; i++) {
                uint8_t ch = s.raw[i];
                if (i == 60) {
                        o += (size_t)snprintf(buf + o, size - o, "...");
                        break;
                }
                if (ch < 0x20 || ch >= 0x7f || ch == '\'' || ch == '\\')
                        o += (size_t)snprintf(buf + o, size - o, "\\x%02x", ch);
                else
                        buf[o++] = (char)ch;
        }
        buf[o++] = '\'';
        buf[o] = 0;
        return buf;
}

#define QBUF 300 /* room for quote(): 60 bytes escaped to 4 each, and more */

static const char *batch_name(uint8_t kind) {
        static const char *const names[] = {
                [FR_BATCH_CLOCK] = "CLOCK",     [FR_BATCH_STATUS] = "STATUS",
                [FR_BATCH_EVENTS] = "EVENTS",   [FR_BATCH_SAMPLES] = "SAMPLES",
                [FR_BATCH_STACKS] = "STACKS",   [FR_BATCH_STRINGS] = "STRINGS",
                [FR_BATCH_MAPS] = "MAPS",       [FR_BATCH_END] = "END",
                [FR_BATCH_CRASH] = "CRASH",
                [FR_BATCH_BLOCKED] = "BLOCKED",
        };
        return kind <= FR_BATCH_KIND_MAX && names[kind] ? names[kind] : "unknown";
}

const char *fr_event_type_name(uint8_t type) {
        static const char *const names[] = {
                [FR_EV_TASK_BEGIN] = "TASK_BEGIN",     [FR_EV_TASK_END] = "TASK_END",
                [FR_EV_REGION_BEGIN] = "REGION_BEGIN", [FR_EV_REGION_END] = "REGION_END",
                [FR_EV_LOG] = "LOG",                   [FR_EV_THREAD_NAME] = "THREAD_NAME",
                [FR_EV_THREAD_START] = "THREAD_START", [FR_EV_THREAD_EXIT] = "THREAD_EXIT",
                [FR_EV_LOST] = "LOST",                 [FR_EV_BLOCK] = "BLOCK",
        };
        return type <= FR_EV_TYPE_MAX && names[type] ? names[type] : "unknown";
}

/* Field getters: on failure they describe the field and return -EINVAL. */
static int get_u8(struct reader *r, struct cursor *c, const char *what, uint8_t *ret) {
        size_t off = c->pos;
        if (cur_u8(c, ret) < 0)
                return fail(r, off, "truncated %s", what);
        return 0;
}

static int get_uv(struct reader *r, struct cursor *c, const char *what, uint64_t *ret) {
        size_t off = c->pos;
        int e = cur_uvarint(c, ret);
        if (e == -ENODATA)
                return fail(r, off, "truncated %s", what);
        if (e < 0)
                return fail(r, off, "malformed varint for %s (longer than 10 bytes or above 2^64-1)",
                            what);
        return 0;
}

/* get_count - a count of entries that each take at least one more byte, so
 * it can never exceed the bytes left (this bounds what callers allocate). */
static int get_count(struct reader *r, struct cursor *c, const char *what, uint64_t max,
                     uint64_t *ret) {
        size_t off = c->pos;
        int e = get_uv(r, c, what, ret);
        if (e < 0)
                return e;
        if (*ret > max)
                return fail(r, off, "%s %" PRIu64 " exceeds the limit of %" PRIu64, what, *ret, max);
        if (*ret > cur_left(c))
                return fail(r, off, "%s %" PRIu64 " exceeds the %zu bytes left in the %s", what,
                            *ret, cur_left(c), r->gen ? "batch" : "header");
        return 0;
}

/* get_bytes - a length-prefixed byte string of at most max bytes. */
static int get_bytes(struct reader *r, struct cursor *c, const char *what, size_t max,
                     const uint8_t **ret, size_t *ret_len) {
        size_t off = c->pos;
        uint64_t n;
        int e = get_uv(r, c, what, &n);
        if (e < 0)
                return e;
        if (n > max)
                return fail(r, off, "%s of %" PRIu64 " bytes exceeds the limit of %zu", what, n, max);
        if (cur_bytes(c, (size_t)n, ret) < 0)
                return fail(r, off, "truncated %s: %" PRIu64 " bytes, %zu left", what, n,
                            cur_left(c));
        *ret_len = (size_t)n;
        return 0;
}

static int expect_end(struct reader *r, const struct cursor *c, const char *what) {
        if (cur_left(c))
                return fail(r, c->pos, "%zu trailing bytes in the %s payload", cur_left(c), what);
        return 0;
}

static bool str_eq(struct str a, struct str b) {
        if (!a.raw || !b.raw)
                return !a.raw && !b.raw;
        return a.len == b.len && memcmp(a.raw, b.raw, a.len) == 0;
}

/* ------------------------------------------------------------------------ */
/* State                                                                     */

static void state_free(struct state *s) {
        for (size_t i = 0; i < s->threads.n; i++)
                free(s->threads.v[i].regions.v);
        free(s->threads.v);
        free(s->tasks.v);
        fr_u64map_free(&s->thread_index);
        fr_u64map_free(&s->task_index);
        *s = (struct state){0};
}

static struct thread *state_thread(struct state *s, uint64_t tid) {
        size_t i;
        return fr_u64map_get(&s->thread_index, tid, &i) ? &s->threads.v[i] : NULL;
}

static struct task *state_task(struct state *s, uint64_t id) {
        size_t i;
        return fr_u64map_get(&s->task_index, id, &i) ? &s->tasks.v[i] : NULL;
}

/* state_del_task - forget task t (ended): the state holds the open tasks
 * only, so that it stays small however many tasks a generation runs. */
static void state_del_task(struct state *s, struct task *t) {
        size_t i = (size_t)(t - s->tasks.v), last = s->tasks.n - 1;
        fr_u64map_del(&s->task_index, t->id);
        if (i != last) {
                s->tasks.v[i] = s->tasks.v[last];
                size_t *v = fr_u64map_find(&s->task_index, s->tasks.v[i].id);
                *v = i;
        }
        s->tasks.n--;
}

/* state_add_thread - a new, not yet alive thread. Returns 0 or -ENOMEM. */
static int state_add_thread(struct state *s, uint64_t tid, size_t off, struct thread **ret) {
        if (FR_VEC_RESERVE(s->threads, s->threads.n + 1) < 0 ||
            fr_u64map_put(&s->thread_index, tid, s->threads.n) < 0)
                return -ENOMEM;
        struct thread *t = &s->threads.v[s->threads.n++];
        *t = (struct thread){.tid = tid, .off = off};
        *ret = t;
        return 0;
}

static int state_add_task(struct state *s, uint64_t id, size_t off, struct task **ret) {
        if (FR_VEC_RESERVE(s->tasks, s->tasks.n + 1) < 0 || fr_u64map_put(&s->task_index, id, s->tasks.n) < 0)
                return -ENOMEM;
        struct task *t = &s->tasks.v[s->tasks.n++];
        *t = (struct task){.id = id, .off = off};
        *ret = t;
        return 0;
}

static int push_region(struct thread *t, uint64_t task, struct str name) {
        if (FR_VEC_RESERVE(t->regions, t->regions.n + 1) < 0)
                return -ENOMEM;
        t->regions.v[t->regions.n++] = (struct region){task, name};
        return 0;
}

/* ------------------------------------------------------------------------ */
/* Header                                                                    */

static int get_header_string(struct reader *r, struct cursor *c, const char *what, size_t max,
                             const char **ret) {
        const uint8_t *p = NULL;
        size_t n = 0;
        int e = get_bytes(r, c, what, max, &p, &n);
        if (e < 0)
                return e;
        *ret = fr_arena_strndup(&r->hdr_arena, p, n);
        return *ret ? 0 : nomem(r);
}

static int read_header(struct reader *r, struct cursor *c) {
        size_t n = r->len < FR_TRACE_MAGIC_LEN ? r->len : FR_TRACE_MAGIC_LEN;
        const uint8_t *magic;
        if (memcmp(r->data, FR_TRACE_MAGIC, n) != 0)
                return fail(r, 0, "bad magic: not a flightrec trace");
        if (cur_bytes(c, FR_TRACE_MAGIC_LEN, &magic) < 0)
                return fail(r, 0, "truncated header: %zu bytes", r->len);
        size_t off = c->pos;
        int e = get_uv(r, c, "header version", &r->hdr.version);
        if (e < 0)
                return e;
        if (r->hdr.version != FR_TRACE_VERSION)
                return fail(r, off, "unsupported trace version %" PRIu64 " (this reader knows %d)",
                            r->hdr.version, FR_TRACE_VERSION);
        if ((e = get_uv(r, c, "header pid", &r->hdr.pid)) < 0 ||
            (e = get_header_string(r, c, "header comm", FR_MAX_COMM_BYTES, &r->hdr.comm)) < 0 ||
            (e = get_header_string(r, c, "header exe", FR_MAX_PATH_BYTES, &r->hdr.exe)) < 0 ||
            (e = get_header_string(r, c, "header reason", FR_MAX_STRING_BYTES, &r->hdr.reason)) <
                    0 ||
            (e = get_uv(r, c, "header flags", &r->hdr.flags)) < 0)
                return e;
        return 0;
}

/* ------------------------------------------------------------------------ */
/* Framing: one generation's batches up to its END                           */

/* read_batch - one batch header and its payload. Sets *ret_truncated when
 * the input ends inside the batch (the message is set all the same). */
static int read_batch(struct reader *r, struct cursor *c, struct batch *ret, uint64_t *ret_gen,
                      bool *ret_truncated) {
        size_t off = c->pos;
        uint64_t size;
        int e;
        *ret = (struct batch){.off = off};
        if (cur_u8(c, &ret->kind) < 0)
                goto truncated;
        /* Kinds without a name (0, beyond the last, a number reserved for a
         * kind this reader does not know yet) are refused. */
        if (strcmp(batch_name(ret->kind), "unknown") == 0)
                return fail(r, off, "unknown batch kind %u", ret->kind);
        if ((e = cur_uvarint(c, ret_gen)) < 0 || (e = cur_uvarint(c, &ret->tid)) < 0 ||
            (e = cur_uvarint(c, &ret->base)) < 0 || (e = cur_uvarint(c, &size)) < 0) {
                if (e == -ENODATA)
                        goto truncated;
                return fail(r, off, "%s batch header: malformed varint", batch_name(ret->kind));
        }
        if (*ret_gen == 0)
                return fail(r, off, "%s batch with generation number 0", batch_name(ret->kind));
        if (size > FR_MAX_BATCH_BYTES)
                return fail(r, off, "%s batch payload of %" PRIu64 " bytes exceeds the limit of %u",
                            batch_name(ret->kind), size, FR_MAX_BATCH_BYTES);
        if (size > cur_left(c)) {
                *ret_truncated = true;
                return fail(r, off, "truncated %s batch: payload of %" PRIu64 " bytes, %zu left",
                            batch_name(ret->kind), size, cur_left(c));
        }
        ret->payload = (struct cursor){c->data, c->pos, c->pos + (size_t)size};
        c->pos += (size_t)size;
        return 0;
truncated:
        *ret_truncated = true;
        return fail(r, off, "truncated batch header: the input ends %zu bytes into it",
                    c->end - off);
}


/* incomplete - the input ends inside the current generation: a quiet stop
 * when the caller allows an incomplete tail, else the error e (described). */
static int incomplete(struct reader *r, int e, bool *ret_partial) {
        if (!(r->flags & FR_READ_ALLOW_PARTIAL_TAIL))
                return e;
        if (r->err && r->errlen)
                r->err[0] = 0;
        *ret_partial = true;
        return 0;
}

static int check_end(struct reader *r, const struct cursor *c, struct gen *g, bool *ret_partial) {
        struct cursor p = g->end.payload;
        uint64_t count;
        int e;
        if (g->end.tid != 0)
                return fail(r, g->end.off, "END batch with thread id %" PRIu64 " (must be 0)",
                            g->end.tid);
        if ((e = get_uv(r, &p, "END batch count", &count)) < 0)
                return e;
        if (cur_left(&p)) { /* optional flags */
                uint64_t flags;
                size_t off = p.pos;
                if ((e = get_uv(r, &p, "END flags", &flags)) < 0)
                        return e;
                if (flags & ~(uint64_t)FR_END_PARTIAL)
                        return fail(r, off, "unknown END flags 0x%" PRIx64, flags);
                g->pub.partial = (flags & FR_END_PARTIAL) != 0;
        }
        if ((e = expect_end(r, &p, "END")) < 0)
                return e;
        if (count != g->batches.n) {
                e = fail(r, g->end.off,
                         "END counts %" PRIu64 " batches but the generation has %zu: incomplete "
                         "generation",
                         count, g->batches.n);
                /* The last generation of a salvaged trace may have lost some. */
                return cur_left(c) == 0 ? incomplete(r, e, ret_partial) : e;
        }
        return 0;
}

/* scan_generation - frame the batches of the next generation, up to and
 * including its END. Sets *ret_partial (and returns 0) when it is an
 * incomplete last generation and the caller allowed that. */
static int scan_generation(struct reader *r, struct cursor *c, struct gen *g, bool *ret_partial) {
        g->off = c->pos;
        r->gen = 0;
        for (;;) {
                struct batch b;
                uint64_t num;
                bool truncated = false;
                int e;
                if (cur_left(c) == 0)
                        return incomplete(r, fail(r, c->pos, "input ends before the END batch"),
                                          ret_partial);
                if ((e = read_batch(r, c, &b, &num, &truncated)) < 0)
                        return truncated ? incomplete(r, e, ret_partial) : e;
                if (g->num == 0) {
                        if (r->prev_gen && num != r->prev_gen + 1)
                                return fail(r, b.off,
                                            "generation %" PRIu64 " follows generation %" PRIu64
                                            " (generations must be consecutive)",
                                            num, r->prev_gen);
                        g->num = r->gen = num;
                } else if (num != g->num) {
                        return fail(r, b.off,
                                    "%s batch of generation %" PRIu64 " before this generation's END",
                                    batch_name(b.kind), num);
                }
                if (b.kind == FR_BATCH_END) {
                        g->end = b;
                        return check_end(r, c, g, ret_partial);
                }
                if (FR_VEC_RESERVE(g->batches, g->batches.n + 1) < 0)
                        return nomem(r);
                g->batches.v[g->batches.n++] = b;
        }
}

/* check_batches - thread ids of the batches, exactly one CLOCK and STATUS. */
static int check_batches(struct reader *r, struct gen *g) {
        for (size_t i = 0; i < g->batches.n; i++) {
                const struct batch *b = &g->batches.v[i];
                bool per_thread = b->kind == FR_BATCH_EVENTS || b->kind == FR_BATCH_SAMPLES ||
                                  b->kind == FR_BATCH_CRASH;
                const struct batch **slot = b->kind == FR_BATCH_CLOCK     ? &g->clock
                                            : b->kind == FR_BATCH_STATUS  ? &g->status
                                            : b->kind == FR_BATCH_CRASH   ? &g->crash_batch
                                            : b->kind == FR_BATCH_BLOCKED ? &g->blocked
                                                                          : NULL;
                if (b->kind == FR_BATCH_CRASH && !g->pub.partial)
                        return fail(r, b->off, "CRASH batch in a generation that is not partial");
                if (per_thread && b->tid == 0)
                        return fail(r, b->off, "%s batch with thread id 0", batch_name(b->kind));
                if (!per_thread && b->tid != 0)
                        return fail(r, b->off, "%s batch with thread id %" PRIu64 " (must be 0)",
                                    batch_name(b->kind), b->tid);
                if (slot && *slot)
                        return fail(r, b->off, "second %s batch (the first is at offset %zu)",
                                    batch_name(b->kind), (*slot)->off);
                if (slot)
                        *slot = b;
        }
        if (!g->clock)
                return fail(r, g->off, "no CLOCK batch");
        if (!g->status)
                return fail(r, g->off, "no STATUS batch");
        return 0;
}

static int read_clock(struct reader *r, struct gen *g) {
        struct cursor c = g->clock->payload;
        struct fr_generation *p = &g->pub;
        size_t off;
        int e;
        p->gen = g->num;
        p->start = g->clock->base;
        p->end = g->end.base;
        off = c.pos;
        if ((e = get_uv(r, &c, "CLOCK ticks_per_second", &p->ticks_per_second)) < 0)
                return e;
        if (p->ticks_per_second == 0)
                return fail(r, off, "CLOCK ticks_per_second is 0");
        if ((e = get_uv(r, &c, "CLOCK mono_ns", &p->mono_ns)) < 0 ||
            (e = get_uv(r, &c, "CLOCK real_ns", &p->real_ns)) < 0)
                return e;
        off = c.pos;
        if ((e = get_uv(r, &c, "CLOCK sampler", &p->sampler)) < 0)
                return e;
        if (p->sampler > FR_SAMPLER_TIMER)
                return fail(r, off, "unknown CLOCK sampler kind %" PRIu64, p->sampler);
        if ((e = get_uv(r, &c, "CLOCK sample_hz", &p->sample_hz)) < 0)
                return e;
        p->unwind = FR_UNWIND_FP; /* traces from before the field */
        off = c.pos;
        if (c.pos < c.end && (e = get_uv(r, &c, "CLOCK unwind", &p->unwind)) < 0)
                return e;
        if (p->unwind > FR_UNWIND_KIND_MAX)
                return fail(r, off, "unknown CLOCK unwind kind %" PRIu64, p->unwind);
        if ((e = expect_end(r, &c, "CLOCK")) < 0)
                return e;
        if (p->end < p->start)
                return fail(r, g->end.off,
                            "END time %" PRIu64 " is before the generation start %" PRIu64, p->end,
                            p->start);
        return 0;
}

/* ------------------------------------------------------------------------ */
/* Tables: strings, stacks, maps                                             */

/* get_table_id - an id defining a table entry: >= 1 and not yet in index. */
static int get_table_id(struct reader *r, struct cursor *c, const char *what,
                        const struct fr_u64map *index, uint64_t *ret) {
        size_t off = c->pos, i;
        int e = get_uv(r, c, what, ret);
        if (e < 0)
                return e;
        if (*ret == 0)
                return fail(r, off, "%s 0 (ids start at 1)", what);
        if (fr_u64map_get(index, *ret, &i))
                return fail(r, off, "%s %" PRIu64 " defined twice", what, *ret);
        return 0;
}

static int load_strings(struct reader *r, struct gen *g, const struct batch *b) {
        struct cursor c = b->payload;
        while (cur_left(&c)) {
                uint64_t id;
                struct str s;
                int e;
                if ((e = get_table_id(r, &c, "string id", &g->string_index, &id)) < 0 ||
                    (e = get_bytes(r, &c, "string", FR_MAX_STRING_BYTES, &s.raw, &s.len)) < 0)
                        return e;
                s.c = fr_arena_strndup(&g->arena, s.raw, s.len);
                if (!s.c || FR_VEC_RESERVE(g->strings, g->strings.n + 1) < 0 ||
                    fr_u64map_put(&g->string_index, id, g->strings.n) < 0)
                        return nomem(r);
                g->strings.v[g->strings.n++] = s;
        }
        return 0;
}

static int load_stacks(struct reader *r, struct gen *g, const struct batch *b) {
        struct cursor c = b->payload;
        while (cur_left(&c)) {
                uint64_t frames[FR_MAX_STACK_FRAMES], id, n, v;
                size_t off = c.pos;
                int e;
                if ((e = get_table_id(r, &c, "stack id", &g->stack_index, &id)) < 0 ||
                    (e = get_count(r, &c, "stack frame count", FR_MAX_STACK_FRAMES, &n)) < 0)
                        return e;
                if (n == 0)
                        return fail(r, off, "stack %" PRIu64 " has no frames", id);
                for (uint64_t i = 0; i < n; i++) {
                        if ((e = get_uv(r, &c, "stack frame", &v)) < 0)
                                return e;
                        /* Unsigned wrap-around is the intended arithmetic. */
                        frames[i] = i ? frames[i - 1] + (uint64_t)fr_unzigzag(v) : v;
                }
                uint64_t *copy = fr_arena_alloc(&g->arena, n * sizeof *copy);
                if (!copy || FR_VEC_RESERVE(g->stacks, g->stacks.n + 1) < 0 ||
                    fr_u64map_put(&g->stack_index, id, g->stacks.n) < 0)
                        return nomem(r);
                memcpy(copy, frames, n * sizeof *copy);
                g->stacks.v[g->stacks.n++] = (struct stack){copy, (uint32_t)n};
        }
        return 0;
}

static int load_maps(struct reader *r, struct gen *g, const struct batch *b) {
        struct cursor c = b->payload;
        while (cur_left(&c)) {
                struct fr_map m;
                const uint8_t *path, *bid;
                size_t off = c.pos, path_len;
                int e;
                if ((e = get_uv(r, &c, "map start", &m.start)) < 0 ||
                    (e = get_uv(r, &c, "map limit", &m.limit)) < 0 ||
                    (e = get_uv(r, &c, "map offset", &m.offset)) < 0 ||
                    (e = get_bytes(r, &c, "map path", FR_MAX_PATH_BYTES, &path, &path_len)) < 0 ||
                    (e = get_bytes(r, &c, "map build id", FR_MAX_BUILD_ID_BYTES, &bid,
                                   &m.build_id_len)) < 0)
                        return e;
                if (m.limit <= m.start)
                        return fail(r, off,
                                    "map limit 0x%" PRIx64 " is not above its start 0x%" PRIx64,
                                    m.limit, m.start);
                uint8_t *bid_copy = fr_arena_alloc(&g->arena, m.build_id_len);
                m.path = fr_arena_strndup(&g->arena, path, path_len);
                m.build_id = bid_copy;
                if (!m.path || !bid_copy || FR_VEC_RESERVE(g->maps, g->maps.n + 1) < 0)
                        return nomem(r);
                memcpy(bid_copy, bid, m.build_id_len);
                g->maps.v[g->maps.n++] = m;
        }
        return 0;
}

static int load_tables(struct reader *r, struct gen *g) {
        for (size_t i = 0; i < g->batches.n; i++) {
                const struct batch *b = &g->batches.v[i];
                int e = 0;
                if (b->kind == FR_BATCH_STRINGS)
                        e = load_strings(r, g, b);
                else if (b->kind == FR_BATCH_STACKS)
                        e = load_stacks(r, g, b);
                else if (b->kind == FR_BATCH_MAPS)
                        e = load_maps(r, g, b);
                if (e < 0)
                        return e;
        }
        return 0;
}

/* get_string_ref - a string id referring to the table; 0 is none. */
static int get_string_ref(struct reader *r, const struct gen *g, struct cursor *c,
                          const char *what, struct str *ret) {
        size_t off = c->pos, i;
        uint64_t id;
        int e = get_uv(r, c, what, &id);
        if (e < 0)
                return e;
        *ret = (struct str){0};
        if (id == 0)
                return 0;
        if (!fr_u64map_get(&g->string_index, id, &i))
                return fail(r, off, "%s: undefined string id %" PRIu64, what, id);
        *ret = g->strings.v[i];
        return 0;
}

/* get_task_id - a task id that must not be 0 (0 means "no task"). */
static int get_task_id(struct reader *r, struct cursor *c, const char *what, uint64_t *ret) {
        size_t off = c->pos;
        int e = get_uv(r, c, what, ret);
        if (e < 0)
                return e;
        if (*ret == 0)
                return fail(r, off, "%s is 0 (task ids start at 1)", what);
        return 0;
}

/* ------------------------------------------------------------------------ */
/* STATUS                                                                    */

static int read_status_thread(struct reader *r, struct gen *g, struct cursor *c, struct state *s,
                              struct fr_thread_state *ret) {
        size_t off = c->pos;
        uint64_t tid, n;
        struct str name;
        struct thread *t;
        int e;
        if ((e = get_uv(r, c, "STATUS thread id", &tid)) < 0 ||
            (e = get_string_ref(r, g, c, "STATUS thread name", &name)) < 0 ||
            (e = get_count(r, c, "STATUS region count", FR_MAX_REGION_DEPTH, &n)) < 0)
                return e;
        if (tid == 0)
                return fail(r, off, "STATUS thread id 0");
        if (state_thread(s, tid))
                return fail(r, off, "thread %" PRIu64 " listed twice in STATUS", tid);
        struct fr_region_state *regions = fr_arena_alloc(&g->arena, n * sizeof *regions);
        if (!regions || state_add_thread(s, tid, off, &t) < 0)
                return nomem(r);
        t->alive = true;
        t->name = name;
        for (uint64_t i = 0; i < n; i++) {
                uint64_t task;
                struct str rname;
                if ((e = get_uv(r, c, "STATUS region task", &task)) < 0 ||
                    (e = get_string_ref(r, g, c, "STATUS region name", &rname)) < 0)
                        return e;
                if (push_region(t, task, rname) < 0)
                        return nomem(r);
                regions[i] = (struct fr_region_state){task, rname.c};
        }
        *ret = (struct fr_thread_state){tid, name.c, (uint32_t)n, n ? regions : NULL};
        return 0;
}

static int read_status_task(struct reader *r, struct gen *g, struct cursor *c, struct state *s,
                            struct fr_task_state *ret) {
        size_t off = c->pos;
        uint64_t id, parent;
        struct str name;
        struct task *t;
        int e;
        if ((e = get_task_id(r, c, "STATUS task id", &id)) < 0 ||
            (e = get_uv(r, c, "STATUS task parent", &parent)) < 0 ||
            (e = get_string_ref(r, g, c, "STATUS task name", &name)) < 0)
                return e;
        if (state_task(s, id))
                return fail(r, off, "task %" PRIu64 " listed twice in STATUS", id);
        if (state_add_task(s, id, off, &t) < 0)
                return nomem(r);
        t->open = true;
        t->parent = parent;
        t->name = name;
        *ret = (struct fr_task_state){id, parent, name.c};
        return 0;
}

/* read_status - the STATUS batch, into the public arrays and into s. */
static int read_status(struct reader *r, struct gen *g, struct state *s) {
        struct cursor c = g->status->payload;
        uint64_t n;
        int e;
        if ((e = get_count(r, &c, "STATUS thread count", UINT64_MAX, &n)) < 0)
                return e;
        g->status_threads = fr_arena_alloc(&g->arena, n * sizeof *g->status_threads);
        if (!g->status_threads)
                return nomem(r);
        for (; g->nstatus_threads < n; g->nstatus_threads++)
                if ((e = read_status_thread(r, g, &c, s,
                                            &g->status_threads[g->nstatus_threads])) < 0)
                        return e;
        if ((e = get_count(r, &c, "STATUS task count", UINT64_MAX, &n)) < 0)
                return e;
        g->status_tasks = fr_arena_alloc(&g->arena, n * sizeof *g->status_tasks);
        if (!g->status_tasks)
                return nomem(r);
        for (; g->nstatus_tasks < n; g->nstatus_tasks++)
                if ((e = read_status_task(r, g, &c, s, &g->status_tasks[g->nstatus_tasks])) < 0)
                        return e;
        return expect_end(r, &c, "STATUS");
}

static int compare_regions(struct reader *r, const struct thread *t, const struct thread *o) {
        char qa[QBUF], qb[QBUF];
        if (t->regions.n != o->regions.n)
                return fail(r, t->off,
                            "STATUS gives thread %" PRIu64 " %zu open regions, but it had %zu at "
                            "the end of generation %" PRIu64,
                            t->tid, t->regions.n, o->regions.n, r->prev_gen);
        for (size_t i = 0; i < t->regions.n; i++) {
                const struct region *a = &t->regions.v[i], *b = &o->regions.v[i];
                if (a->task != b->task || !str_eq(a->name, b->name))
                        return fail(r, t->off,
                                    "STATUS region %zu of thread %" PRIu64 " is %s (task %" PRIu64
                                    "), but it was %s (task %" PRIu64
                                    ") at the end of generation %" PRIu64,
                                    i, t->tid, quote(qa, sizeof qa, a->name), a->task,
                                    quote(qb, sizeof qb, b->name), b->task, r->prev_gen);
        }
        return 0;
}

/* compare_status - the STATUS (cur) must equal the state the previous
 * generation ended with (prev): same live threads, names, region stacks and
 * open tasks, compared by id and string content, in any order. */
static int compare_status(struct reader *r, const struct gen *g, struct state *prev,
                          struct state *cur) {
        char qa[QBUF], qb[QBUF];
        uint64_t pg = r->prev_gen;
        int e;
        for (size_t i = 0; i < cur->threads.n; i++) {
                const struct thread *t = &cur->threads.v[i], *o = state_thread(prev, t->tid);
                if (!o || !o->alive)
                        return fail(r, t->off,
                                    "STATUS lists thread %" PRIu64
                                    ", which was not alive at the end of generation %" PRIu64,
                                    t->tid, pg);
                if (!str_eq(t->name, o->name))
                        return fail(r, t->off,
                                    "STATUS names thread %" PRIu64 " %s, but it was %s at the end "
                                    "of generation %" PRIu64,
                                    t->tid, quote(qa, sizeof qa, t->name),
                                    quote(qb, sizeof qb, o->name), pg);
                if ((e = compare_regions(r, t, o)) < 0)
                        return e;
        }
        for (size_t i = 0; i < prev->threads.n; i++) {
                const struct thread *o = &prev->threads.v[i];
                if (o->alive && !state_thread(cur, o->tid))
                        return fail(r, g->status->off,
                                    "STATUS omits thread %" PRIu64
                                    ", alive at the end of generation %" PRIu64,
                                    o->tid, pg);
        }
        for (size_t i = 0; i < cur->tasks.n; i++) {
                const struct task *t = &cur->tasks.v[i], *o = state_task(prev, t->id);
                if (!o || !o->open)
                        return fail(r, t->off,
                                    "STATUS lists task %" PRIu64
                                    ", which was not open at the end of generation %" PRIu64,
                                    t->id, pg);
                if (t->parent != o->parent || !str_eq(t->name, o->name))
                        return fail(r, t->off,
                                    "STATUS gives task %" PRIu64 " parent %" PRIu64 " name %s, but "
                                    "it had parent %" PRIu64 " name %s at the end of generation "
                                    "%" PRIu64,
                                    t->id, t->parent, quote(qa, sizeof qa, t->name), o->parent,
                                    quote(qb, sizeof qb, o->name), pg);
        }
        for (size_t i = 0; i < prev->tasks.n; i++) {
                const struct task *o = &prev->tasks.v[i];
                if (o->open && !state_task(cur, o->id))
                        return fail(r, g->status->off,
                                    "STATUS omits task %" PRIu64 " %s, open at the end of "
                                    "generation %" PRIu64,
                                    o->id, quote(qa, sizeof qa, o->name), pg);
        }
        return 0;
}

/* ------------------------------------------------------------------------ */
/* Events                                                                    */

/* get_frames - a frame count (0..FR_MAX_STACK_FRAMES) and the frames (the
 * first absolute, then zigzag deltas), copied into the generation's arena. */
static int get_frames(struct reader *r, struct gen *g, struct cursor *c, const char *what,
                      const uint64_t **ret, uint64_t *ret_n) {
        uint64_t n, v;
        int e;
        if ((e = get_count(r, c, what, FR_MAX_STACK_FRAMES, &n)) < 0)
                return e;
        uint64_t *frames = n ? fr_arena_alloc(&g->arena, n * sizeof *frames) : NULL;
        if (n && !frames)
                return nomem(r);
        for (uint64_t i = 0; i < n; i++) {
                if ((e = get_uv(r, c, what, &v)) < 0)
                        return e;
                frames[i] = i ? frames[i - 1] + (uint64_t)fr_unzigzag(v) : v;
        }
        *ret = frames;
        *ret_n = n;
        return 0;
}

static int decode_args(struct reader *r, struct gen *g, struct cursor *c, struct xevent *x) {
        struct fr_event *ev = &x->ev;
        struct str s;
        const uint8_t *msg;
        int e = 0;
        switch (ev->type) {
        case FR_EV_TASK_BEGIN:
                if ((e = get_task_id(r, c, "TASK_BEGIN task id", &ev->task)) < 0 ||
                    (e = get_uv(r, c, "TASK_BEGIN parent", &ev->parent)) < 0)
                        return e;
                e = get_string_ref(r, g, c, "TASK_BEGIN name", &x->name);
                break;
        case FR_EV_TASK_END:
                e = get_task_id(r, c, "TASK_END task id", &ev->task);
                break;
        case FR_EV_REGION_BEGIN:
        case FR_EV_REGION_END:
                if ((e = get_uv(r, c, "region task", &ev->task)) < 0)
                        return e;
                e = get_string_ref(r, g, c, "region name", &x->name);
                break;
        case FR_EV_LOG:
                if ((e = get_uv(r, c, "LOG task", &ev->task)) < 0 ||
                    (e = get_string_ref(r, g, c, "LOG category", &s)) < 0 ||
                    (e = get_bytes(r, c, "LOG message", FR_MAX_LOG_BYTES, &msg,
                                   &ev->message_len)) < 0)
                        return e;
                ev->category = s.c;
                if (r->flags & FR_READ_THREAD_EVENTS_ONLY)
                        break; /* not delivered: no copy */
                ev->message = fr_arena_strndup(&g->arena, msg, ev->message_len);
                if (!ev->message)
                        return nomem(r);
                break;
        case FR_EV_THREAD_NAME:
                e = get_string_ref(r, g, c, "THREAD_NAME name", &x->name);
                break;
        case FR_EV_LOST: {
                size_t off = c->pos;
                if ((e = get_uv(r, c, "LOST kind", &ev->lost_kind)) < 0)
                        return e;
                if (ev->lost_kind == 0 || ev->lost_kind > FR_LOST_KIND_MAX)
                        return fail(r, off, "unknown LOST kind %" PRIu64, ev->lost_kind);
                e = get_uv(r, c, "LOST count", &ev->count);
                break;
        }
        case FR_EV_BLOCK: {
                uint64_t call, n = 0;
                struct str region;
                size_t off = c->pos;
                if ((e = get_uv(r, c, "BLOCK call", &call)) < 0)
                        return e;
                if (call == 0 || call > FR_WAIT_CALL_MAX)
                        return fail(r, off, "unknown BLOCK call %" PRIu64, call);
                if ((e = get_uv(r, c, "BLOCK object", &ev->wait_object)) < 0 ||
                    (e = get_uv(r, c, "BLOCK duration", &ev->wait_ns)) < 0 ||
                    (e = get_uv(r, c, "BLOCK task", &ev->task)) < 0 ||
                    (e = get_string_ref(r, g, c, "BLOCK region", &region)) < 0 ||
                    (e = get_frames(r, g, c, "BLOCK", &ev->frames, &n)) < 0)
                        return e;
                ev->wait_call = (unsigned)call;
                ev->region = region.c;
                ev->nframes = (uint32_t)n;
                break;
        }
        default: /* THREAD_START, THREAD_EXIT: no arguments */
                break;
        }
        ev->name = x->name.c;
        return e;
}

/* delivered - whether an event of this type reaches the callback. */
static bool delivered(const struct reader *r, uint8_t type) {
        return !(r->flags & FR_READ_THREAD_EVENTS_ONLY) || type == FR_EV_THREAD_START ||
               type == FR_EV_THREAD_NAME || type == FR_EV_THREAD_EXIT ||
               type == FR_EV_TASK_BEGIN || type == FR_EV_BLOCK;
}

/* check_event_time - strictly after the thread's previous event in this
 * generation (whatever batch it came in), and inside the generation. */
static int check_event_time(struct reader *r, const struct gen *g, struct thread *t,
                            const struct xevent *x) {
        const struct fr_event *ev = &x->ev;
        if (t->has_time && ev->time <= t->last_time)
                return fail(r, x->off,
                            "%s at time %" PRIu64 " on thread %" PRIu64
                            " is not after the thread's previous event at %" PRIu64,
                            fr_event_type_name(ev->type), ev->time, ev->tid, t->last_time);
        if (ev->time < g->pub.start || ev->time > g->pub.end)
                return fail(r, x->off,
                            "%s at time %" PRIu64 " is outside the generation's span [%" PRIu64
                            ", %" PRIu64 "]",
                            fr_event_type_name(ev->type), ev->time, g->pub.start, g->pub.end);
        t->has_time = true;
        t->last_time = ev->time;
        return 0;
}

static int decode_event_batch(struct reader *r, struct gen *g, const struct batch *b) {
        struct cursor c = b->payload;
        uint64_t time = b->base;
        size_t ti;
        struct thread *t = state_thread(&r->state, b->tid);
        if (!t && state_add_thread(&r->state, b->tid, b->off, &t) < 0)
                return nomem(r);
        ti = (size_t)(t - r->state.threads.v);
        while (cur_left(&c)) {
                struct xevent x = {.off = c.pos};
                uint8_t type = 0;
                uint64_t delta;
                int e;
                if ((e = get_u8(r, &c, "event type", &type)) < 0)
                        return e;
                if (type == 0 || type > FR_EV_TYPE_MAX)
                        return fail(r, x.off, "unknown event type %u", type);
                if ((e = get_uv(r, &c, "event time delta", &delta)) < 0)
                        return e;
                if (delta > UINT64_MAX - time)
                        return fail(r, x.off, "%s time overflows 2^64", fr_event_type_name(type));
                time += delta;
                x.ev = (struct fr_event){.time = time, .tid = b->tid, .type = type};
                if ((e = check_event_time(r, g, &r->state.threads.v[ti], &x)) < 0 ||
                    (e = decode_args(r, g, &c, &x)) < 0)
                        return e;
                if (!delivered(r, type))
                        continue;
                size_t n = g->xevents.n;
                if (FR_VEC_RESERVE(g->xevents, n + 1) < 0 ||
                    fr_vec_grow(&r->spare.order, &r->spare.order_cap, n + 1,
                                sizeof *r->spare.order) < 0)
                        return nomem(r);
                r->spare.order[n] = (struct evkey){x.ev.time, n};
                g->xevents.v[g->xevents.n++] = x;
        }
        return 0;
}

static int end_region(struct reader *r, const struct xevent *x, struct thread *t) {
        char qa[QBUF], qb[QBUF];
        const struct region *top;
        if (t->regions.n == 0)
                return fail(r, x->off,
                            "region end %s (task %" PRIu64 ") on thread %" PRIu64
                            ", which has no open region",
                            quote(qa, sizeof qa, x->name), x->ev.task, t->tid);
        top = &t->regions.v[t->regions.n - 1];
        if (top->task != x->ev.task || !str_eq(top->name, x->name))
                return fail(r, x->off,
                            "region end %s (task %" PRIu64 ") does not match innermost open "
                            "region %s (task %" PRIu64 ") of thread %" PRIu64,
                            quote(qa, sizeof qa, x->name), x->ev.task,
                            quote(qb, sizeof qb, top->name), top->task, t->tid);
        t->regions.n--;
        return 0;
}

static int begin_task(struct reader *r, const struct xevent *x) {
        struct task *k = state_task(&r->state, x->ev.task);
        if (k && k->open)
                return fail(r, x->off,
                            "TASK_BEGIN of task %" PRIu64 ", which is already open (since offset %zu)",
                            x->ev.task, k->off);
        if (!k && state_add_task(&r->state, x->ev.task, x->off, &k) < 0)
                return nomem(r);
        k->open = true;
        k->off = x->off;
        k->parent = x->ev.parent;
        k->name = x->name;
        return 0;
}

/* apply_event - replay one event (in time order) on the threads and tasks. */
static int apply_event(struct reader *r, const struct xevent *x) {
        const struct fr_event *ev = &x->ev;
        struct thread *t = state_thread(&r->state, ev->tid); /* added by decode */
        char qa[QBUF];
        if (!t->alive && ev->type != FR_EV_THREAD_START)
                return fail(r, x->off,
                            "%s on thread %" PRIu64 ", which is not alive (absent from STATUS or "
                            "exited): its batch must begin with THREAD_START",
                            fr_event_type_name(ev->type), ev->tid);
        switch (ev->type) {
        case FR_EV_THREAD_START:
                if (t->alive)
                        return fail(r, x->off,
                                    "THREAD_START of thread %" PRIu64
                                    ", which is already alive (no THREAD_EXIT before it)",
                                    ev->tid);
                t->alive = true;
                t->name = (struct str){0};
                t->regions.n = 0;
                break;
        case FR_EV_THREAD_EXIT:
                t->alive = false;
                t->name = (struct str){0};
                t->regions.n = 0;
                break;
        case FR_EV_THREAD_NAME:
                t->name = x->name;
                break;
        case FR_EV_REGION_BEGIN:
                if (t->regions.n >= FR_MAX_REGION_DEPTH)
                        return fail(r, x->off,
                                    "region begin %s takes thread %" PRIu64
                                    " past the region depth limit of %d",
                                    quote(qa, sizeof qa, x->name), t->tid, FR_MAX_REGION_DEPTH);
                if (push_region(t, ev->task, x->name) < 0)
                        return nomem(r);
                break;
        case FR_EV_REGION_END:
                return end_region(r, x, t);
        case FR_EV_TASK_BEGIN:
                return begin_task(r, x);
        case FR_EV_TASK_END: {
                /* An unknown task was begun before the oldest generation. */
                struct task *k = state_task(&r->state, ev->task);
                if (k)
                        state_del_task(&r->state, k);
                break;
        }
        default:
                break;
        }
        return 0;
}

/* Events in time order, stable (per-thread order and file order kept). The
 * events come as runs already sorted (a batch is one thread's, in time
 * order), so a merge of runs over compact (time, index) keys: log2(runs)
 * sequential passes instead of a general sort's log2(n) that would copy or
 * chase every event (over 100 bytes each) each time. */

static bool evkey_le(const struct evkey *x, const struct evkey *y) {
        return x->time < y->time || (x->time == y->time && x->idx <= y->idx);
}

/* sort_events - keys[0..n) sorted, with tmp[0..n) as scratch; returns the
 * array holding the result (keys or tmp). */
static struct evkey *sort_events(struct evkey *keys, struct evkey *tmp, size_t n) {
        for (;;) {
                size_t i = 0, out = 0, runs = 0;
                while (i < n) {
                        /* Two consecutive runs, merged into tmp. */
                        size_t a = i, am = a + 1;
                        while (am < n && evkey_le(&keys[am - 1], &keys[am]))
                                am++;
                        size_t b = am, bm = b < n ? b + 1 : b;
                        while (bm < n && evkey_le(&keys[bm - 1], &keys[bm]))
                                bm++;
                        while (a < am && b < bm)
                                tmp[out++] = evkey_le(&keys[a], &keys[b]) ? keys[a++] : keys[b++];
                        while (a < am)
                                tmp[out++] = keys[a++];
                        while (b < bm)
                                tmp[out++] = keys[b++];
                        i = bm;
                        runs++;
                }
                struct evkey *t = keys;
                keys = tmp;
                tmp = t;
                if (runs <= 1)
                        return keys;
        }
}

static int decode_events(struct reader *r, struct gen *g) {
        int e;
        for (size_t i = 0; i < g->batches.n; i++)
                if (g->batches.v[i].kind == FR_BATCH_EVENTS &&
                    (e = decode_event_batch(r, g, &g->batches.v[i])) < 0)
                        return e;
        if (g->xevents.n == 0)
                return 0;
        size_t n = g->xevents.n;
        if (n > SIZE_MAX / 2 || fr_vec_grow(&r->spare.order, &r->spare.order_cap, 2 * n,
                                            sizeof *r->spare.order) < 0 ||
            fr_vec_grow(&r->spare.events, &r->spare.events_cap, n, sizeof *r->spare.events) < 0)
                return nomem(r);
        /* The keys, made by decode_event_batch, are order[0..n); the sort's
         * scratch follows them. */
        const struct evkey *order = sort_events(r->spare.order, r->spare.order + n, n);
        g->events = r->spare.events; /* the reader's: not freed with g */
        bool replay = !(r->flags & FR_READ_THREAD_EVENTS_ONLY);
        for (size_t i = 0; i < n; i++) {
                struct xevent *x = &g->xevents.v[order[i].idx];
                if (replay && (e = apply_event(r, x)) < 0)
                        return e;
                g->events[i] = x->ev;
        }
        return 0;
}

/* ------------------------------------------------------------------------ */
/* Samples                                                                   */

static int decode_sample(struct reader *r, struct gen *g, struct cursor *c, const struct batch *b,
                         uint64_t *time) {
        size_t off = c->pos, i;
        uint64_t delta, stack_id;
        struct xsample x = {.s.tid = b->tid};
        struct str region;
        int e;
        if ((e = get_uv(r, c, "sample time delta", &delta)) < 0 ||
            (e = get_uv(r, c, "sample weight", &x.s.weight)) < 0 ||
            (e = get_uv(r, c, "sample task", &x.s.task)) < 0 ||
            (e = get_string_ref(r, g, c, "sample region", &region)) < 0 ||
            (e = get_uv(r, c, "sample stack id", &stack_id)) < 0)
                return e;
        if (delta > UINT64_MAX - *time)
                return fail(r, off, "sample time overflows 2^64");
        *time += delta;
        if (*time < g->pub.start || *time > g->pub.end)
                return fail(r, off,
                            "sample at time %" PRIu64 " is outside the generation's span [%" PRIu64
                            ", %" PRIu64 "]",
                            *time, g->pub.start, g->pub.end);
        if (x.s.weight == 0)
                return fail(r, off, "sample weight 0");
        if (stack_id == 0) { /* lost samples: weight counts them */
                g->pub.lost_samples = g->pub.lost_samples > UINT64_MAX - x.s.weight
                                              ? UINT64_MAX
                                              : g->pub.lost_samples + x.s.weight;
                return 0;
        }
        if (!fr_u64map_get(&g->stack_index, stack_id, &i))
                return fail(r, off, "sample: undefined stack id %" PRIu64, stack_id);
        x.s.time = *time;
        x.s.region = region.c;
        x.s.frames = g->stacks.v[i].frames;
        x.s.nframes = g->stacks.v[i].nframes;
        if (FR_VEC_RESERVE(g->xsamples, g->xsamples.n + 1) < 0)
                return nomem(r);
        x.seq = g->xsamples.n;
        g->xsamples.v[g->xsamples.n++] = x;
        return 0;
}

static int cmp_xsample(const void *a, const void *b) {
        const struct xsample *x = a, *y = b;
        if (x->s.time != y->s.time)
                return x->s.time < y->s.time ? -1 : 1;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int decode_samples(struct reader *r, struct gen *g) {
        for (size_t i = 0; i < g->batches.n; i++) {
                const struct batch *b = &g->batches.v[i];
                struct cursor c = b->payload;
                uint64_t time = b->base;
                int e;
                if (b->kind != FR_BATCH_SAMPLES)
                        continue;
                /* The state holds exactly the STATUS threads and those with
                 * an EVENTS batch in this generation. */
                if (!state_thread(&r->state, b->tid))
                        return fail(r, b->off,
                                    "SAMPLES batch of thread %" PRIu64 ", which is neither in STATUS "
                                    "nor has an EVENTS batch in this generation",
                                    b->tid);
                while (cur_left(&c))
                        if ((e = decode_sample(r, g, &c, b, &time)) < 0)
                                return e;
        }
        if (g->xsamples.n == 0)
                return 0;
        qsort(g->xsamples.v, g->xsamples.n, sizeof *g->xsamples.v, cmp_xsample);
        g->samples = malloc(g->xsamples.n * sizeof *g->samples);
        if (!g->samples)
                return nomem(r);
        for (size_t i = 0; i < g->xsamples.n; i++)
                g->samples[i] = g->xsamples.v[i].s;
        return 0;
}

/* ------------------------------------------------------------------------ */
/* BLOCKED                                                                   */

static int decode_blocked(struct reader *r, struct gen *g) {
        const struct batch *b = g->blocked;
        if (!b)
                return 0;
        if (b->base < g->pub.start || b->base > g->pub.end)
                return fail(r, b->off,
                            "BLOCKED time %" PRIu64 " is outside the generation's span [%" PRIu64
                            ", %" PRIu64 "]",
                            b->base, g->pub.start, g->pub.end);
        struct cursor c = b->payload;
        struct fr_u64map seen = {0};
        int e = 0;
        while (e == 0 && cur_left(&c)) {
                struct fr_blocked x = {0};
                uint64_t call, stack_id;
                struct str region;
                size_t off = c.pos, i;
                if ((e = get_uv(r, &c, "BLOCKED thread id", &x.tid)) < 0 ||
                    (e = get_uv(r, &c, "BLOCKED call", &call)) < 0)
                        break;
                if (!state_thread(&r->state, x.tid)) {
                        e = fail(r, off,
                                 "BLOCKED thread %" PRIu64 ", which is neither in STATUS nor has "
                                 "an EVENTS batch in this generation",
                                 x.tid);
                        break;
                }
                if (fr_u64map_get(&seen, x.tid, &i)) {
                        e = fail(r, off, "thread %" PRIu64 " listed twice in BLOCKED", x.tid);
                        break;
                }
                if (call == 0 || call > FR_WAIT_CALL_MAX) {
                        e = fail(r, off, "unknown BLOCKED call %" PRIu64, call);
                        break;
                }
                if ((e = get_uv(r, &c, "BLOCKED object", &x.object)) < 0 ||
                    (e = get_uv(r, &c, "BLOCKED holder", &x.holder)) < 0 ||
                    (e = get_uv(r, &c, "BLOCKED waited", &x.waited_ns)) < 0 ||
                    (e = get_uv(r, &c, "BLOCKED task", &x.task)) < 0 ||
                    (e = get_string_ref(r, g, &c, "BLOCKED region", &region)) < 0)
                        break;
                off = c.pos;
                if ((e = get_uv(r, &c, "BLOCKED stack id", &stack_id)) < 0)
                        break;
                if (stack_id && !fr_u64map_get(&g->stack_index, stack_id, &i)) {
                        e = fail(r, off, "BLOCKED: undefined stack id %" PRIu64, stack_id);
                        break;
                }
                if (stack_id) {
                        x.frames = g->stacks.v[i].frames;
                        x.nframes = g->stacks.v[i].nframes;
                }
                x.call = (unsigned)call;
                x.region = region.c;
                if (fr_u64map_put(&seen, x.tid, 0) < 0 ||
                    FR_VEC_RESERVE(g->blocked_list, g->blocked_list.n + 1) < 0) {
                        e = nomem(r);
                        break;
                }
                g->blocked_list.v[g->blocked_list.n++] = x;
        }
        fr_u64map_free(&seen);
        g->pub.blocked_time = b->base;
        return e;
}

const char *fr_wait_call_name(unsigned call) {
        static const char *const names[FR_WAIT_CALL_MAX + 1] = {
                [FR_WAIT_MUTEX_LOCK] = "pthread_mutex_lock",
                [FR_WAIT_MUTEX_TIMEDLOCK] = "pthread_mutex_timedlock",
                [FR_WAIT_COND_WAIT] = "pthread_cond_wait",
                [FR_WAIT_COND_TIMEDWAIT] = "pthread_cond_timedwait",
                [FR_WAIT_RWLOCK_RDLOCK] = "pthread_rwlock_rdlock",
                [FR_WAIT_RWLOCK_WRLOCK] = "pthread_rwlock_wrlock",
                [FR_WAIT_RWLOCK_TIMEDRDLOCK] = "pthread_rwlock_timedrdlock",
                [FR_WAIT_RWLOCK_TIMEDWRLOCK] = "pthread_rwlock_timedwrlock",
                [FR_WAIT_JOIN] = "pthread_join",
                [FR_WAIT_SEM_WAIT] = "sem_wait",
                [FR_WAIT_SEM_TIMEDWAIT] = "sem_timedwait",
                [FR_WAIT_POLL] = "poll",
                [FR_WAIT_PPOLL] = "ppoll",
                [FR_WAIT_SELECT] = "select",
                [FR_WAIT_PSELECT] = "pselect",
                [FR_WAIT_EPOLL_WAIT] = "epoll_wait",
                [FR_WAIT_EPOLL_PWAIT] = "epoll_pwait",
                [FR_WAIT_NANOSLEEP] = "nanosleep",
                [FR_WAIT_CLOCK_NANOSLEEP] = "clock_nanosleep",
                [FR_WAIT_USLEEP] = "usleep",
                [FR_WAIT_SLEEP] = "sleep",
                [FR_WAIT_READ] = "read",
                [FR_WAIT_READV] = "readv",
                [FR_WAIT_RECV] = "recv",
                [FR_WAIT_RECVFROM] = "recvfrom",
                [FR_WAIT_RECVMSG] = "recvmsg",
                [FR_WAIT_ACCEPT] = "accept",
                [FR_WAIT_ACCEPT4] = "accept4",
                [FR_WAIT_CONNECT] = "connect",
                [FR_WAIT_WRITE] = "write",
                [FR_WAIT_WRITEV] = "writev",
                [FR_WAIT_SEND] = "send",
                [FR_WAIT_SENDTO] = "sendto",
                [FR_WAIT_SENDMSG] = "sendmsg",
                [FR_WAIT_WAITPID] = "waitpid",
                [FR_WAIT_WAIT4] = "wait4",
                [FR_WAIT_FLOCK] = "flock",
                [FR_WAIT_FCNTL_SETLKW] = "fcntl(F_SETLKW)",
                [FR_WAIT_FUTEX] = "futex",
        };
        return call <= FR_WAIT_CALL_MAX && names[call] ? names[call] : "unknown";
}

/* ------------------------------------------------------------------------ */
/* Generations                                                               */

static void gen_free(struct gen *g) {
        fr_arena_free(&g->arena);
        free(g->batches.v);
        free(g->strings.v);
        free(g->stacks.v);
        free(g->maps.v);
        free(g->xevents.v);
        free(g->xsamples.v);
        free(g->samples);
        free(g->blocked_list.v);
        fr_u64map_free(&g->string_index);
        fr_u64map_free(&g->stack_index);
}

/* read_crash - the CRASH batch: signo, code (zigzag), addr, flags, thread
 * name, nregs and the registers, nframes and the frames (as in STACKS). */
static int read_crash(struct reader *r, struct gen *g) {
        const struct batch *b = g->crash_batch;
        struct fr_crash *x = &g->crash;
        struct cursor c = b->payload;
        uint64_t code, n, v, regs[64], frames[FR_MAX_STACK_FRAMES];
        const uint8_t *name;
        size_t name_len, off;
        int e;
        x->tid = b->tid;
        x->time = b->base;
        if (x->time < g->pub.start || x->time > g->pub.end)
                return fail(r, b->off, "CRASH at time %" PRIu64 " is outside the generation's span",
                            x->time);
        off = c.pos;
        if ((e = get_uv(r, &c, "CRASH signal", &x->signo)) < 0)
                return e;
        if (x->signo == 0 || x->signo > 64)
                return fail(r, off, "CRASH signal %" PRIu64 " is not a signal", x->signo);
        if ((e = get_uv(r, &c, "CRASH code", &code)) < 0 ||
            (e = get_uv(r, &c, "CRASH address", &x->addr)) < 0 ||
            (e = get_uv(r, &c, "CRASH flags", &x->flags)) < 0 ||
            (e = get_bytes(r, &c, "CRASH thread name", 64, &name, &name_len)) < 0 ||
            (e = get_count(r, &c, "CRASH register count", 64, &n)) < 0)
                return e;
        x->code = fr_unzigzag(code);
        x->thread_name = fr_arena_strndup(&g->arena, name, name_len);
        x->nregs = (uint32_t)n;
        for (uint64_t i = 0; i < n; i++)
                if ((e = get_uv(r, &c, "CRASH register", &regs[i])) < 0)
                        return e;
        if ((e = get_count(r, &c, "CRASH frame count", FR_MAX_STACK_FRAMES, &n)) < 0)
                return e;
        x->nframes = (uint32_t)n;
        for (uint64_t i = 0; i < n; i++) {
                if ((e = get_uv(r, &c, "CRASH frame", &v)) < 0)
                        return e;
                frames[i] = i ? frames[i - 1] + (uint64_t)fr_unzigzag(v) : v;
        }
        if ((e = expect_end(r, &c, "CRASH")) < 0)
                return e;
        uint64_t *rc = fr_arena_alloc(&g->arena, (x->nregs + 1) * sizeof *rc);
        uint64_t *fc = fr_arena_alloc(&g->arena, (x->nframes + 1) * sizeof *fc);
        if (!rc || !fc || !x->thread_name)
                return nomem(r);
        memcpy(rc, regs, x->nregs * sizeof *rc);
        memcpy(fc, frames, x->nframes * sizeof *fc);
        x->regs = rc;
        x->frames = fc;
        g->pub.crash = x;
        return 0;
}

static int decode_generation(struct reader *r, struct gen *g) {
        struct state cur = {0};
        struct fr_generation *p = &g->pub;
        int e;
        if ((e = check_batches(r, g)) < 0 || (e = read_clock(r, g)) < 0 ||
            (e = load_tables(r, g)) < 0 || (g->crash_batch && (e = read_crash(r, g)) < 0))
                return e;
        if ((e = read_status(r, g, &cur)) < 0 ||
            (r->prev_gen && !(r->flags & FR_READ_THREAD_EVENTS_ONLY) &&
             (e = compare_status(r, g, &r->state, &cur)) < 0)) {
                state_free(&cur);
                return e;
        }
        /* From here on the state is this generation's, replayed by its events. */
        state_free(&r->state);
        r->state = cur;
        if ((e = decode_events(r, g)) < 0 || (e = decode_samples(r, g)) < 0 ||
            (e = decode_blocked(r, g)) < 0)
                return e;
        p->nthreads = g->nstatus_threads;
        p->threads = g->status_threads;
        p->ntasks = g->nstatus_tasks;
        p->tasks = g->status_tasks;
        p->nevents = g->xevents.n;
        p->events = g->events;
        p->nsamples = g->xsamples.n;
        p->samples = g->samples;
        p->nmaps = g->maps.n;
        p->maps = g->maps.v;
        p->nblocked = g->blocked_list.n;
        p->blocked = g->blocked_list.v;
        return 0;
}

int fr_trace_read(const uint8_t *data, size_t len, unsigned flags, fr_generation_cb cb,
                  void *userdata, size_t *ret_ngens, char *err, size_t errlen) {
        static const uint8_t empty[1];
        struct reader r = {
                .data = data ? data : empty,
                .len = data ? len : 0,
                .flags = flags,
                .err = err,
                .errlen = errlen,
        };
        struct cursor c = {r.data, 0, r.len};
        size_t ngens = 0;
        int ret;

        if (err && errlen)
                err[0] = 0;
        ret = read_header(&r, &c);
        while (ret == 0 && cur_left(&c) > 0) {
                struct gen g = {0};
                bool partial = false;
                /* The previous generation's event array, emptied. */
                g.xevents.v = r.spare.xevents;
                g.xevents.cap = r.spare.xevents_cap;
                r.spare.xevents = NULL;
                ret = scan_generation(&r, &c, &g, &partial);
                if (ret == 0 && !partial && g.pub.partial && cur_left(&c) > 0)
                        ret = fail(&r, c.pos, "generation %" PRIu64 " is partial (salvaged from a "
                                              "dead process) but not the last one",
                                   g.num);
                if (ret == 0 && !partial)
                        ret = decode_generation(&r, &g);
                if (ret == 0 && !partial) {
                        r.prev_gen = g.num;
                        ngens++;
                        if (cb)
                                ret = cb(&r.hdr, &g.pub, userdata);
                }
                r.spare.xevents = g.xevents.v;
                r.spare.xevents_cap = g.xevents.cap;
                g.xevents.v = NULL;
                gen_free(&g);
                if (partial)
                        break;
        }
        free(r.spare.xevents);
        free(r.spare.order);
        free(r.spare.events);
        state_free(&r.state);
        fr_arena_free(&r.hdr_arena);
        if (ret_ngens)
                *ret_ngens = ngens;
        return ret;
}

uint64_t fr_ticks_to_ns(const struct fr_generation *g, uint64_t ticks) {
        if (!g || g->ticks_per_second == 0)
                return 0;
        /* 128 bits: ticks * 1e9 overflows 64 bits after about 18 s at 1 GHz. */
        unsigned __int128 ns = (unsigned __int128)ticks * 1000000000u / g->ticks_per_second;
        return ns > UINT64_MAX ? UINT64_MAX : (uint64_t)ns;
}
