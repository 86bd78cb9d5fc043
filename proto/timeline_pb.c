/* Perfetto protobuf writer of the timeline (timeline_sink.h): a .pftrace,
 * that is a Trace message written as one TracePacket (field 1) after the
 * other, with the field numbers of proto/perfetto.proto.
 *
 * A small hand-written encoder rather than protobuf-c: packets are written
 * as they come, straight into the output, without building message structs
 * (a 64 MiB trace makes millions of them). Everything is on one packet
 * sequence: the first packet clears the interned state, names, functions,
 * frames, mappings and callstacks are interned in the packet that first
 * uses them, and every packet has a timestamp, in time order. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fr_addr_ranges.h"
#include "fr_keymap.h"
#include "fr_vec.h"
#include "symbolize.h"
#include "timeline_sink.h"
#include "trace_format.h"

#define SEQ_ID 1
#define SEQ_INCREMENTAL_STATE_CLEARED 1
#define SEQ_NEEDS_INCREMENTAL_STATE 2
#define CLOCK_REALTIME_ID 1
#define CLOCK_BOOTTIME_ID 6

/* Field numbers (proto/perfetto.proto). */
enum {
        F_TRACE_PACKET = 1,
        F_PKT_CLOCK_SNAPSHOT = 6, F_PKT_TIMESTAMP = 8, F_PKT_SEQ_ID = 10, F_PKT_TRACK_EVENT = 11,
        F_PKT_INTERNED = 12, F_PKT_SEQ_FLAGS = 13, F_PKT_TRACK_DESC = 60, F_PKT_PERF_SAMPLE = 66,
        F_CS_CLOCKS = 1, F_CS_PRIMARY = 2, F_CLOCK_ID = 1, F_CLOCK_TS = 2,
        F_TD_UUID = 1, F_TD_NAME = 2, F_TD_PROCESS = 3, F_TD_THREAD = 4, F_TD_PARENT = 5,
        F_PD_PID = 1, F_PD_NAME = 6,
        F_THD_PID = 1, F_THD_TID = 2, F_THD_NAME = 5,
        F_TE_ANNOT = 4, F_TE_TYPE = 9, F_TE_NAME_IID = 10, F_TE_TRACK = 11, F_TE_FLOW = 47,
        F_DA_BOOL = 2, F_DA_UINT = 3, F_DA_STRING = 6, F_DA_NAME = 10,
        F_ID_EVENT_NAMES = 2, F_ID_FUNCTION_NAMES = 5, F_ID_FRAMES = 6, F_ID_CALLSTACKS = 7,
        F_ID_BUILD_IDS = 16, F_ID_MAPPING_PATHS = 17, F_ID_MAPPINGS = 19,
        F_EN_IID = 1, F_EN_NAME = 2, F_IS_IID = 1, F_IS_STR = 2,
        F_MAP_IID = 1, F_MAP_BUILD_ID = 2, F_MAP_START_OFFSET = 3, F_MAP_START = 4, F_MAP_END = 5,
        F_MAP_PATHS = 7, F_MAP_EXACT_OFFSET = 8,
        F_FR_IID = 1, F_FR_FUNCTION = 2, F_FR_MAPPING = 3, F_FR_REL_PC = 4,
        F_CST_IID = 1, F_CST_FRAMES = 2,
        F_PS_PID = 2, F_PS_TID = 3, F_PS_CALLSTACK = 4, F_PS_CPU_MODE = 5,
};
enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2 };
#define TE_SLICE_BEGIN 1
#define TE_SLICE_END 2
#define TE_INSTANT 3
#define CPU_MODE_USER 2

/* ------------------------------------------------------------------------ */
/* Encoding                                                                  */

static size_t vsize(uint64_t v) {
        size_t n = 1;
        while (v >= 0x80) {
                v >>= 7;
                n++;
        }
        return n;
}

static void put_varint(struct tl_buf *b, uint64_t v) {
        if (!tl_buf_reserve(b, 10))
                return;
        uint8_t *p = b->p + b->len;
        while (v >= 0x80) {
                *p++ = (uint8_t)(v | 0x80);
                v >>= 7;
        }
        *p++ = (uint8_t)v;
        b->len = (size_t)(p - b->p);
}

static void put_tag(struct tl_buf *b, unsigned field, unsigned wt) {
        put_varint(b, (uint64_t)field << 3 | wt);
}

static void put_uint(struct tl_buf *b, unsigned field, uint64_t v) {
        put_tag(b, field, WT_VARINT);
        put_varint(b, v);
}

static void put_fixed64(struct tl_buf *b, unsigned field, uint64_t v) {
        uint8_t le[8];
        put_tag(b, field, WT_I64);
        for (int i = 0; i < 8; i++)
                le[i] = (uint8_t)(v >> (8 * i));
        tl_buf_put(b, le, 8);
}

static void put_bytes(struct tl_buf *b, unsigned field, const void *p, size_t n) {
        put_tag(b, field, WT_LEN);
        put_varint(b, n);
        tl_buf_put(b, p, n);
}

/* put_string - a string field in valid UTF-8: each invalid byte becomes
 * U+FFFD, so that every protobuf reader accepts it. */
static void put_string(struct tl_buf *b, unsigned field, const char *s, size_t n) {
        const uint8_t *u = (const uint8_t *)s;
        size_t ok = tl_utf8_valid_prefix(u, n);
        if (ok == n) {
                put_bytes(b, field, s, n);
                return;
        }
        struct tl_buf tmp = {0};
        for (size_t i = 0; i < n;) {
                ok = tl_utf8_valid_prefix(u + i, n - i);
                tl_buf_put(&tmp, u + i, ok);
                i += ok;
                if (i < n) {
                        tl_buf_put(&tmp, "\xef\xbf\xbd", 3);
                        i++;
                }
        }
        put_bytes(b, field, tmp.p, tmp.len);
        if (tmp.oom)
                b->oom = true;
        free(tmp.p);
}

static void put_cstr(struct tl_buf *b, unsigned field, const char *s) {
        put_string(b, field, s, strlen(s));
}

/* A nested message: its tag, one byte kept for the length, fixed at the end
 * (moving the body only when it is 128 bytes or more). */
static size_t msg_begin(struct tl_buf *b, unsigned field) {
        put_tag(b, field, WT_LEN);
        tl_buf_put(b, "", 1);
        return b->len;
}

static void msg_end(struct tl_buf *b, size_t body) {
        if (b->oom)
                return;
        size_t n = b->len - body, extra = vsize(n) - 1;
        if (extra && !tl_buf_reserve(b, extra))
                return;
        uint8_t *p = b->p + body - 1;
        if (extra)
                memmove(p + 1 + extra, p + 1, n);
        for (size_t i = 0; i < extra; i++, n >>= 7)
                *p++ = (uint8_t)(n | 0x80);
        *p = (uint8_t)n;
        b->len += extra;
}

/* ------------------------------------------------------------------------ */
/* State                                                                     */

struct pmap {
        uint64_t start, limit, offset;
        char *path; /* arena */
        uint8_t build_id[FR_MAX_BUILD_ID_BYTES];
        size_t build_id_len;
        uint64_t iid; /* 0: not yet defined in the output */
        struct fr_sym_object *sym;
        bool sym_opened;
};

struct frange {
        size_t first, n; /* in frame_iids */
};

struct pb {
        const struct fr_timeline_options *opts;
        struct fr_symbolizer *sym;
        bool own_sym;
        struct fr_arena arena;
        struct tl_buf out, body, idata, key;
        bool first;

        struct fr_keymap names;     /* event name -> iid */
        uint64_t next_name;
        struct fr_keymap functions; /* function name -> iid */
        uint64_t next_function;
        struct fr_keymap paths;     /* mapping path component -> iid */
        uint64_t next_path;
        uint64_t next_build_id, next_mapping, next_frame, next_callstack;

        FR_VEC(struct pmap) pmaps;
        struct fr_keymap pmap_index; /* object identity -> pmaps index */
        FR_VEC(struct fr_addr_range) gmaps; /* this generation's, idx: its pmap */
        struct fr_keymap frames;     /* (pmap + 1, address) -> franges index */
        FR_VEC(struct frange) franges;
        FR_VEC(uint64_t) frame_iids;
        struct fr_keymap callstacks; /* frame iids -> callstack iid */
        FR_VEC(uint64_t) stack;         /* the sample being built */
};

/* packet - one TracePacket into the output: timestamp, sequence, flags, the
 * interned entries collected in p->idata, and the payload p->body as field
 * `field`. */
static void packet(struct pb *p, uint64_t ts, unsigned field) {
        unsigned flags = SEQ_NEEDS_INCREMENTAL_STATE;
        if (p->first)
                flags |= SEQ_INCREMENTAL_STATE_CLEARED;
        p->first = false;
        size_t n = 1 + vsize(ts) + 2 + 2;
        if (p->idata.len)
                n += 1 + vsize(p->idata.len) + p->idata.len;
        n += vsize((uint64_t)field << 3 | WT_LEN) + vsize(p->body.len) + p->body.len;
        put_tag(&p->out, F_TRACE_PACKET, WT_LEN);
        put_varint(&p->out, n);
        put_uint(&p->out, F_PKT_TIMESTAMP, ts);
        put_uint(&p->out, F_PKT_SEQ_ID, SEQ_ID);
        put_uint(&p->out, F_PKT_SEQ_FLAGS, flags);
        if (p->idata.len)
                put_bytes(&p->out, F_PKT_INTERNED, p->idata.p, p->idata.len);
        put_bytes(&p->out, field, p->body.p, p->body.len);
        if (p->idata.oom || p->body.oom)
                p->out.oom = true;
        p->idata.len = p->body.len = 0;
}

/* intern_str - the iid of s in map m, defining it in p->idata (as
 * `field`: an EventName or InternedString, both {iid = 1, name/str = 2})
 * when new. 0: out of memory. */
static uint64_t intern_str(struct pb *p, struct fr_keymap *m, uint64_t *next, unsigned field,
                           const char *s, size_t n) {
        size_t v;
        if (fr_keymap_get(m, s, n, &v))
                return v;
        uint64_t iid = ++*next;
        if (fr_keymap_put(m, &p->arena, s, n, iid) < 0)
                return 0;
        size_t body = msg_begin(&p->idata, field);
        put_uint(&p->idata, 1, iid);
        put_string(&p->idata, 2, s, n);
        msg_end(&p->idata, body);
        return iid;
}

/* ------------------------------------------------------------------------ */
/* Tracks and events                                                         */

static int pb_track(void *s, uint64_t ts, const struct tl_track *t) {
        struct pb *p = s;
        if (p->first) {
                /* Our timestamps are CLOCK_REALTIME: say so, so that the UI can
                 * show wall-clock time (BOOTTIME is the default trace clock). */
                size_t c;
                c = msg_begin(&p->body, F_CS_CLOCKS);
                put_uint(&p->body, F_CLOCK_ID, CLOCK_BOOTTIME_ID);
                put_uint(&p->body, F_CLOCK_TS, ts);
                msg_end(&p->body, c);
                c = msg_begin(&p->body, F_CS_CLOCKS);
                put_uint(&p->body, F_CLOCK_ID, CLOCK_REALTIME_ID);
                put_uint(&p->body, F_CLOCK_TS, ts);
                msg_end(&p->body, c);
                put_uint(&p->body, F_CS_PRIMARY, CLOCK_BOOTTIME_ID);
                packet(p, ts, F_PKT_CLOCK_SNAPSHOT);
        }
        struct tl_buf *b = &p->body;
        put_uint(b, F_TD_UUID, t->uuid);
        size_t d;
        switch (t->kind) {
        case TL_TRACK_PROCESS:
                d = msg_begin(b, F_TD_PROCESS);
                put_uint(b, F_PD_PID, t->pid);
                if (t->name)
                        put_cstr(b, F_PD_NAME, t->name);
                msg_end(b, d);
                break;
        case TL_TRACK_THREAD:
                d = msg_begin(b, F_TD_THREAD);
                put_uint(b, F_THD_PID, t->pid);
                put_uint(b, F_THD_TID, t->tid);
                if (t->name)
                        put_cstr(b, F_THD_NAME, t->name);
                msg_end(b, d);
                break;
        case TL_TRACK_TASKS:
                put_cstr(b, F_TD_NAME, t->name);
                put_uint(b, F_TD_PARENT, t->parent_uuid);
                break;
        }
        packet(p, ts, F_PKT_TRACK_DESC);
        return p->out.oom ? -ENOMEM : 0;
}

static int track_event(struct pb *p, unsigned type, const struct tl_event *e) {
        struct tl_buf *b = &p->body;
        put_uint(b, F_TE_TYPE, type);
        put_uint(b, F_TE_TRACK, e->track->uuid);
        if (e->name && type != TE_SLICE_END) {
                uint64_t iid = intern_str(p, &p->names, &p->next_name, F_ID_EVENT_NAMES, e->name,
                                          strlen(e->name));
                if (!iid)
                        return -ENOMEM;
                put_uint(b, F_TE_NAME_IID, iid);
        }
        for (size_t i = 0; i < e->nargs; i++) {
                const struct tl_arg *a = &e->args[i];
                size_t d = msg_begin(b, F_TE_ANNOT);
                put_cstr(b, F_DA_NAME, a->key);
                if (a->type == TL_ARG_STR)
                        put_string(b, F_DA_STRING, a->s, a->slen);
                else if (a->type == TL_ARG_BOOL)
                        put_uint(b, F_DA_BOOL, a->u != 0);
                else
                        put_uint(b, F_DA_UINT, a->u);
                msg_end(b, d);
        }
        if (e->flow)
                put_fixed64(b, F_TE_FLOW, e->flow);
        packet(p, e->ts, F_PKT_TRACK_EVENT);
        return p->out.oom ? -ENOMEM : 0;
}

static int pb_begin(void *s, const struct tl_event *e) {
        return track_event(s, TE_SLICE_BEGIN, e);
}
static int pb_end(void *s, const struct tl_event *e) {
        return track_event(s, TE_SLICE_END, e);
}
static int pb_instant(void *s, const struct tl_event *e) {
        return track_event(s, TE_INSTANT, e);
}

/* ------------------------------------------------------------------------ */
/* Samples: mappings, symbolized frames, callstacks                          */

/* pb_generation - the generation's objects, each known once across the trace
 * by (start, limit, offset, build id, path). A generation without MAPS keeps
 * the previous one's. */
static int pb_generation(void *s, const struct fr_generation *g) {
        struct pb *p = s;
        if (g->nmaps == 0)
                return 0;
        p->gmaps.n = 0;
        for (size_t i = 0; i < g->nmaps; i++) {
                const struct fr_map *m = &g->maps[i];
                const char *path = m->path ? m->path : "";
                size_t bidlen = m->build_id_len > FR_MAX_BUILD_ID_BYTES ? FR_MAX_BUILD_ID_BYTES
                                                                        : m->build_id_len;
                uint64_t v[4] = {m->start, m->limit, m->offset, bidlen};
                size_t idx;
                p->key.len = 0;
                tl_buf_put(&p->key, v, sizeof v);
                if (bidlen)
                        tl_buf_put(&p->key, m->build_id, bidlen);
                tl_buf_put(&p->key, path, strlen(path));
                if (p->key.oom)
                        return -ENOMEM;
                if (!fr_keymap_get(&p->pmap_index, p->key.p, p->key.len, &idx)) {
                        struct pmap *pm = FR_VEC_PUSH(p->pmaps);
                        if (!pm)
                                return -ENOMEM;
                        *pm = (struct pmap){.start = m->start, .limit = m->limit,
                                            .offset = m->offset, .build_id_len = bidlen};
                        if (bidlen)
                                memcpy(pm->build_id, m->build_id, bidlen);
                        idx = p->pmaps.n - 1;
                        if (!(pm->path = fr_arena_strdup(&p->arena, path)) ||
                            fr_keymap_put(&p->pmap_index, &p->arena, p->key.p, p->key.len, idx) < 0)
                                return -ENOMEM;
                }
                struct fr_addr_range *gm = FR_VEC_PUSH(p->gmaps);
                if (!gm)
                        return -ENOMEM;
                *gm = (struct fr_addr_range){m->start, m->limit, idx};
        }
        fr_addr_ranges_sort(p->gmaps.v, p->gmaps.n);
        return 0;
}

/* mapping_iid - the object's Mapping, defined at its first use. */
static uint64_t mapping_iid(struct pb *p, struct pmap *m) {
        if (m->iid)
                return m->iid;
        uint64_t bid = 0;
        if (m->build_id_len) {
                bid = ++p->next_build_id; /* raw bytes, one entry per object */
                size_t d = msg_begin(&p->idata, F_ID_BUILD_IDS);
                put_uint(&p->idata, F_IS_IID, bid);
                put_bytes(&p->idata, F_IS_STR, m->build_id, m->build_id_len);
                msg_end(&p->idata, d);
        }
        /* The path as its components, as Perfetto keeps it. */
        FR_VEC(uint64_t) comp = {0};
        for (const char *c = m->path; *c;) {
                while (*c == '/')
                        c++;
                size_t n = strcspn(c, "/");
                if (!n)
                        break;
                uint64_t iid = intern_str(p, &p->paths, &p->next_path, F_ID_MAPPING_PATHS, c, n);
                uint64_t *slot = iid ? FR_VEC_PUSH(comp) : NULL;
                if (!slot) {
                        free(comp.v);
                        return 0;
                }
                *slot = iid;
                c += n;
        }
        m->iid = ++p->next_mapping;
        size_t d = msg_begin(&p->idata, F_ID_MAPPINGS);
        put_uint(&p->idata, F_MAP_IID, m->iid);
        if (bid)
                put_uint(&p->idata, F_MAP_BUILD_ID, bid);
        put_uint(&p->idata, F_MAP_EXACT_OFFSET, m->offset);
        put_uint(&p->idata, F_MAP_START_OFFSET, m->offset);
        put_uint(&p->idata, F_MAP_START, m->start);
        put_uint(&p->idata, F_MAP_END, m->limit);
        for (size_t i = 0; i < comp.n; i++)
                put_uint(&p->idata, F_MAP_PATHS, comp.v[i]);
        msg_end(&p->idata, d);
        free(comp.v);
        return m->iid;
}

static const char *basename_of(const char *path) {
        const char *b = strrchr(path, '/');
        return b && b[1] ? b + 1 : path;
}

static int add_frame(struct pb *p, uint64_t mapping, uint64_t rel_pc, const char *function) {
        uint64_t fn = intern_str(p, &p->functions, &p->next_function, F_ID_FUNCTION_NAMES, function,
                                 strlen(function));
        uint64_t *slot = fn ? FR_VEC_PUSH(p->frame_iids) : NULL;
        if (!slot)
                return -ENOMEM;
        *slot = ++p->next_frame;
        size_t d = msg_begin(&p->idata, F_ID_FRAMES);
        put_uint(&p->idata, F_FR_IID, *slot);
        put_uint(&p->idata, F_FR_FUNCTION, fn);
        if (mapping) {
                put_uint(&p->idata, F_FR_MAPPING, mapping);
                put_uint(&p->idata, F_FR_REL_PC, rel_pc);
        }
        msg_end(&p->idata, d);
        return 0;
}

/* frames_at - the frames (outermost first: inlined functions expand one
 * address into several) at addr, symbolized and defined on first use. */
static int frames_at(struct pb *p, uint64_t addr, struct frange *ret) {
        size_t pi = fr_addr_ranges_find(p->gmaps.v, p->gmaps.n, addr), idx;
        uint64_t key[2] = {pi == SIZE_MAX ? 0 : pi + 1, addr};
        if (fr_keymap_get(&p->frames, key, sizeof key, &idx)) {
                *ret = p->franges.v[idx];
                return 0;
        }
        struct frange fr = {.first = p->frame_iids.n};
        char name[FR_MAX_PATH_BYTES + 32];
        if (pi == SIZE_MAX) {
                snprintf(name, sizeof name, "0x%" PRIx64, addr);
                if (add_frame(p, 0, 0, name) < 0)
                        return -ENOMEM;
        } else {
                struct pmap *m = &p->pmaps.v[pi];
                uint64_t mid = mapping_iid(p, m), rel = addr - m->start + m->offset;
                struct fr_sym_result res = {0};
                if (!mid)
                        return -ENOMEM;
                if (p->sym && !m->sym_opened) {
                        struct fr_object obj = {.path = m->path, .build_id = m->build_id,
                                                .build_id_len = m->build_id_len, .start = m->start,
                                                .limit = m->limit, .offset = m->offset};
                        m->sym_opened = true;
                        if (fr_sym_open(p->sym, &obj, &m->sym) < 0)
                                return -ENOMEM;
                }
                if (m->sym && fr_sym_object_status(m->sym) == FR_SYM_OK &&
                    fr_symbolize(m->sym, addr, &res) < 0)
                        return -ENOMEM;
                for (size_t k = res.nframes; k-- > 0;) {
                        const char *f = res.frames[k].function ? res.frames[k].function : "??";
                        if (add_frame(p, mid, rel, f) < 0)
                                return -ENOMEM;
                }
                if (res.nframes == 0) {
                        snprintf(name, sizeof name, "%s+0x%" PRIx64, basename_of(m->path), rel);
                        if (add_frame(p, mid, rel, name) < 0)
                                return -ENOMEM;
                }
        }
        fr.n = p->frame_iids.n - fr.first;
        struct frange *slot = FR_VEC_PUSH(p->franges);
        if (!slot || fr_keymap_put(&p->frames, &p->arena, key, sizeof key, p->franges.n - 1) < 0)
                return -ENOMEM;
        *slot = fr;
        *ret = fr;
        return 0;
}

static int pb_sample(void *s, uint64_t ts, const struct tl_track *thread,
                     const struct fr_sample *smp) {
        struct pb *p = s;
        size_t cs;
        p->stack.n = 0;
        /* Outermost first; a caller's return address minus one lands in its call. */
        for (uint32_t i = smp->nframes; i-- > 0;) {
                struct frange fr;
                if (frames_at(p, i ? smp->frames[i] - 1 : smp->frames[i], &fr) < 0)
                        return -ENOMEM;
                for (size_t k = 0; k < fr.n; k++) {
                        uint64_t *slot = FR_VEC_PUSH(p->stack);
                        if (!slot)
                                return -ENOMEM;
                        *slot = p->frame_iids.v[fr.first + k];
                }
        }
        size_t klen = p->stack.n * sizeof(uint64_t);
        if (!fr_keymap_get(&p->callstacks, p->stack.v ? (void *)p->stack.v : "", klen, &cs)) {
                cs = ++p->next_callstack;
                if (fr_keymap_put(&p->callstacks, &p->arena, p->stack.v ? (void *)p->stack.v : "",
                                  klen, cs) < 0)
                        return -ENOMEM;
                size_t d = msg_begin(&p->idata, F_ID_CALLSTACKS);
                put_uint(&p->idata, F_CST_IID, cs);
                for (size_t i = 0; i < p->stack.n; i++)
                        put_uint(&p->idata, F_CST_FRAMES, p->stack.v[i]);
                msg_end(&p->idata, d);
        }
        put_uint(&p->body, F_PS_PID, thread->pid);
        put_uint(&p->body, F_PS_TID, thread->tid);
        put_uint(&p->body, F_PS_CALLSTACK, cs);
        put_uint(&p->body, F_PS_CPU_MODE, CPU_MODE_USER);
        packet(p, ts, F_PKT_PERF_SAMPLE);
        return p->out.oom ? -ENOMEM : 0;
}

static int pb_finish(void *s, uint8_t **ret, size_t *ret_len) {
        struct pb *p = s;
        if (p->out.oom)
                return -ENOMEM;
        *ret = p->out.p ? p->out.p : malloc(1);
        if (!*ret)
                return -ENOMEM;
        *ret_len = p->out.len;
        p->out = (struct tl_buf){0};
        return 0;
}

static void pb_free(void *s) {
        struct pb *p = s;
        if (p->own_sym)
                fr_symbolizer_free(p->sym);
        free(p->out.p);
        free(p->body.p);
        free(p->idata.p);
        free(p->key.p);
        fr_keymap_free(&p->names);
        fr_keymap_free(&p->functions);
        fr_keymap_free(&p->paths);
        fr_keymap_free(&p->pmap_index);
        fr_keymap_free(&p->frames);
        fr_keymap_free(&p->callstacks);
        free(p->pmaps.v);
        free(p->gmaps.v);
        free(p->franges.v);
        free(p->frame_iids.v);
        free(p->stack.v);
        fr_arena_free(&p->arena);
        free(p);
}

static const struct tl_sink_ops pb_ops = {
        .track = pb_track, .begin = pb_begin, .end = pb_end, .instant = pb_instant,
        .generation = pb_generation, .sample = pb_sample, .finish = pb_finish, .free = pb_free,
};

int tl_pb_new(const struct fr_timeline_options *opts, char *err, size_t errlen,
              const struct tl_sink_ops **ret_ops, void **ret) {
        struct pb *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->opts = opts;
        p->first = true;
        if (!(opts->flags & FR_TIMELINE_NO_SYMBOLIZE)) {
                p->sym = opts->symbolizer;
                if (!p->sym) {
                        int r = fr_symbolizer_new(opts->root, &p->sym);
                        if (r < 0) {
                                snprintf(err, errlen, "cannot create a symbolizer");
                                free(p);
                                return r;
                        }
                        p->own_sym = true;
                }
        }
        *ret_ops = &pb_ops;
        *ret = p;
        return 0;
}
