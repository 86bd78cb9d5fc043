/* Tests of the pprof converter (proto/pprof.c) and the symbolizer
 * (proto/symbolize.c), on traces built with tracegen whose MAPS describe the
 * objects really loaded in this process (this test program and libc) and
 * whose stacks hold real addresses of known functions of this program. The
 * output is decoded with zlib and the protobuf-c code generated from
 * profile.proto, and checked field by field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "pprof.h"
#include "profile.pb-c.h"
#include "selfmaps.h"
#include "symbolize.h"
#include "trace_format.h"
#include "tracegen.h"

typedef Perftools__Profiles__Profile Profile;
typedef Perftools__Profiles__Sample Sample;
typedef Perftools__Profiles__Location Location;
typedef Perftools__Profiles__Function Function;
typedef Perftools__Profiles__Mapping Mapping;

/* ------------------------------------------------------------------------ */
/* Known functions of this program, and return addresses inside them.       */

#define NOINLINE __attribute__((noinline, noclone, used))
#define RA() ((uint64_t)(uintptr_t)__builtin_return_address(0))

volatile int pp_sink; /* side effects after each call: no tail calls */
static uint64_t ra_in_caller, ra_in_outer, ra_at_end, ra_in_inlined;
static jmp_buf jump_back;

NOINLINE void pp_leaf(void) {
        ra_in_caller = RA();
        pp_sink++;
}

NOINLINE void pp_caller(void) {
        ra_in_outer = RA();
        pp_leaf();
        pp_sink++;
}

NOINLINE void pp_outer(void) {
        pp_caller();
        pp_sink++;
}

/* pp_ends_in_call's last instruction is the call: its return address is the
 * first byte after the function, so only pc - 1 lands inside it. */
NOINLINE __attribute__((noreturn)) void pp_jump_back(void) {
        ra_at_end = RA();
        longjmp(jump_back, 1);
}

NOINLINE void pp_ends_in_call(void) { pp_jump_back(); }

/* A call from code inlined into pp_has_inline. */
NOINLINE void pp_inline_callee(void) {
        ra_in_inlined = RA();
        pp_sink++;
}

static inline __attribute__((always_inline)) void pp_inlined(void) {
        pp_inline_callee();
        pp_sink++;
}

NOINLINE void pp_has_inline(void) {
        pp_sink++;
        pp_inlined();
        pp_sink++;
}

static uint64_t fn_addr(void (*f)(void)) { return (uint64_t)(uintptr_t)f; }

/* Run the functions once so that the return addresses are known. */
static void record_return_addresses(void) {
        if (ra_in_caller)
                return;
        pp_outer();
        if (!setjmp(jump_back))
                pp_ends_in_call();
        pp_has_inline();
}

/* ------------------------------------------------------------------------ */
/* Loaded objects: this program and libc, as selfmaps.h reads them.         */

static struct sm_object exe_obj, libc_obj;

static uint64_t libc_getpid(void) { return (uint64_t)(uintptr_t)dlsym(RTLD_DEFAULT, "getpid"); }

static void load_objects(void) {
        char path[PATH_MAX];
        if (exe_obj.nseg)
                return;
        assert_int_equal(sm_load(&exe_obj, (const void *)(uintptr_t)fn_addr(pp_leaf)), 0);
        /* The executable as the kernel names it: the file the trace header names. */
        assert_non_null(realpath("/proc/self/exe", path));
        assert_string_equal(exe_obj.path, path);
        assert_true(exe_obj.nseg >= 2);
        assert_int_equal(sm_load(&libc_obj, (const void *)(uintptr_t)libc_getpid()), 0);
        assert_non_null(strstr(libc_obj.path, "libc.so"));
}

static bool in_object(const struct sm_object *o, uint64_t addr) { return sm_contains(o, addr); }

static void add_object(struct tg_gen *g, const struct sm_object *o, const char *path) {
        sm_add_maps(g, o, path);
}

static void hex(char *buf, const uint8_t *b, size_t n) {
        for (size_t i = 0; i < n; i++)
                sprintf(buf + 2 * i, "%02x", b[i]);
        buf[2 * n] = 0;
}

/* ------------------------------------------------------------------------ */
/* Conversion and decoding                                                   */

struct result {
        Profile *p;
        struct fr_pprof_stats stats;
};

static Profile *decode(const uint8_t *gz, size_t len) {
        z_stream zs = {0};
        size_t cap = 1 << 16, n = 0;
        uint8_t *out = malloc(cap);
        int zr;

        assert_non_null(out);
        /* Two gzip magic bytes: a gzip member, not a bare zlib stream. */
        assert_true(len >= 2 && gz[0] == 0x1f && gz[1] == 0x8b);
        assert_int_equal(inflateInit2(&zs, 16 + 15), Z_OK);
        zs.next_in = (Bytef *)gz;
        zs.avail_in = (uInt)len;
        do {
                if (n == cap) {
                        cap *= 2;
                        out = realloc(out, cap);
                        assert_non_null(out);
                }
                zs.next_out = out + n;
                zs.avail_out = (uInt)(cap - n);
                zr = inflate(&zs, Z_NO_FLUSH);
                n = cap - zs.avail_out;
        } while (zr == Z_OK);
        assert_int_equal(zr, Z_STREAM_END);
        assert_int_equal(zs.avail_in, 0); /* nothing after the member */
        inflateEnd(&zs);
        Profile *p = perftools__profiles__profile__unpack(NULL, n, out);
        free(out);
        assert_non_null(p);
        return p;
}

static const char *str(const Profile *p, int64_t idx) {
        assert_true(idx >= 0 && (size_t)idx < p->n_string_table);
        return p->string_table[idx];
}

static const Location *loc_by_id(const Profile *p, uint64_t id) {
        for (size_t i = 0; i < p->n_location; i++)
                if (p->location[i]->id == id)
                        return p->location[i];
        fail_msg("no location %" PRIu64, id);
        return NULL;
}

static const Function *func_by_id(const Profile *p, uint64_t id) {
        for (size_t i = 0; i < p->n_function; i++)
                if (p->function[i]->id == id)
                        return p->function[i];
        fail_msg("no function %" PRIu64, id);
        return NULL;
}

static const Mapping *map_by_id(const Profile *p, uint64_t id) {
        for (size_t i = 0; i < p->n_mapping; i++)
                if (p->mapping[i]->id == id)
                        return p->mapping[i];
        fail_msg("no mapping %" PRIu64, id);
        return NULL;
}

/* The function name of a location's line i (0: innermost). */
static const char *line_func(const Profile *p, const Location *l, size_t i) {
        assert_true(i < l->n_line);
        return str(p, func_by_id(p, l->line[i]->function_id)->name);
}

static const char *label(const Profile *p, const Sample *s, const char *key) {
        for (size_t i = 0; i < s->n_label; i++)
                if (strcmp(str(p, s->label[i]->key), key) == 0)
                        return str(p, s->label[i]->str);
        return NULL;
}

/* What every profile must satisfy to be read by pprof. */
static void check_invariants(const Profile *p) {
        assert_true(p->n_string_table >= 1);
        assert_string_equal(p->string_table[0], "");
        assert_int_equal(p->n_sample_type, 2);
        assert_string_equal(str(p, p->sample_type[0]->type), "samples");
        assert_string_equal(str(p, p->sample_type[0]->unit), "count");
        assert_string_equal(str(p, p->sample_type[1]->type), "cpu");
        assert_string_equal(str(p, p->sample_type[1]->unit), "nanoseconds");
        assert_non_null(p->period_type);
        assert_string_equal(str(p, p->period_type->type), "cpu");
        assert_string_equal(str(p, p->period_type->unit), "nanoseconds");
        assert_string_equal(str(p, p->default_sample_type), "cpu");
        for (size_t i = 0; i < p->n_mapping; i++) {
                assert_int_equal(p->mapping[i]->id, i + 1);
                assert_true(p->mapping[i]->memory_start < p->mapping[i]->memory_limit);
                str(p, p->mapping[i]->filename);
                str(p, p->mapping[i]->build_id);
        }
        for (size_t i = 0; i < p->n_function; i++) {
                assert_int_not_equal(p->function[i]->id, 0);
                for (size_t j = 0; j < i; j++)
                        assert_int_not_equal(p->function[i]->id, p->function[j]->id);
                assert_true(*str(p, p->function[i]->name));
                str(p, p->function[i]->system_name);
                str(p, p->function[i]->filename);
        }
        for (size_t i = 0; i < p->n_location; i++) {
                const Location *l = p->location[i];
                assert_int_not_equal(l->id, 0);
                for (size_t j = 0; j < i; j++)
                        assert_int_not_equal(l->id, p->location[j]->id);
                if (l->mapping_id) {
                        const Mapping *m = map_by_id(p, l->mapping_id);
                        assert_true(l->address >= m->memory_start && l->address < m->memory_limit);
                }
                /* Every frame keeps a name (speedscope drops line-less locations). */
                assert_true(l->n_line >= 1);
                for (size_t j = 0; j < l->n_line; j++)
                        func_by_id(p, l->line[j]->function_id);
        }
        for (size_t i = 0; i < p->n_sample; i++) {
                const Sample *s = p->sample[i];
                assert_int_equal(s->n_value, 2);
                assert_true(s->value[0] >= 1);
                assert_int_equal(s->value[1], s->value[0] * p->period);
                assert_true(s->n_location_id >= 1);
                for (size_t j = 0; j < s->n_location_id; j++)
                        loc_by_id(p, s->location_id[j]);
                for (size_t j = 0; j < s->n_label; j++) {
                        assert_true(*str(p, s->label[j]->key));
                        assert_true(*str(p, s->label[j]->str));
                        assert_int_equal(s->label[j]->num, 0);
                }
        }
}

static struct result convert_opts(struct tg_trace *t, const struct fr_pprof_options *opts) {
        struct result res = {0};
        uint8_t *data, *gz = NULL;
        size_t len, gzlen = 0;
        char err[512];

        tg_trace_encode_free(t, &data, &len);
        int r = fr_pprof_from_trace(data, len, opts, &gz, &gzlen, &res.stats, err, sizeof err);
        free(data);
        if (r != 0)
                fail_msg("fr_pprof_from_trace: %d: %s", r, err);
        res.p = decode(gz, gzlen);
        free(gz);
        check_invariants(res.p);
        assert_int_equal(res.stats.nmappings, res.p->n_mapping);
        assert_int_equal(res.stats.nlocations, res.p->n_location);
        assert_int_equal(res.stats.nfunctions, res.p->n_function);
        assert_int_equal(res.stats.nprofile_samples, res.p->n_sample);
        return res;
}

static struct result convert(struct tg_trace *t) { return convert_opts(t, NULL); }

static void result_free(struct result *r) { perftools__profiles__profile__free_unpacked(r->p, NULL); }

/* find_sample - the sample whose leaf location's function is leaf and whose
 * labels match (NULL: label absent). */
static const Sample *find_sample(const Profile *p, const char *leaf, const char *tid,
                                 const char *tname, const char *task, const char *region) {
        const char *want[4] = {tid, tname, task, region};
        static const char *const keys[4] = {"thread_id", "thread_name", "task_id", "region"};
        for (size_t i = 0; i < p->n_sample; i++) {
                const Sample *s = p->sample[i];
                if (strcmp(line_func(p, loc_by_id(p, s->location_id[0]), 0), leaf) != 0)
                        continue;
                bool ok = true;
                for (int k = 0; k < 4 && ok; k++) {
                        const char *v = label(p, s, keys[k]);
                        ok = want[k] ? v && strcmp(v, want[k]) == 0 : v == NULL;
                }
                if (ok)
                        return s;
        }
        return NULL;
}

static bool has_comment(const Profile *p, const char *needle) {
        for (size_t i = 0; i < p->n_comment; i++)
                if (strstr(str(p, p->comment[i]), needle))
                        return true;
        return false;
}

static const char *base_name(const char *path) {
        const char *b = strrchr(path, '/');
        return b ? b + 1 : path;
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                     */

#define TPS 1000000ull /* microsecond ticks */

/* A trace of this process: libc listed before the executable in MAPS. */
static struct tg_trace *new_trace(void) {
        struct tg_trace *t = tg_trace_new();
        tg_trace_header(t, (uint64_t)getpid(), "test-pprof", exe_obj.path, "unit test", 0);
        return t;
}

static struct tg_gen *new_gen(struct tg_trace *t, uint64_t start, uint64_t end, uint64_t hz) {
        struct tg_gen *g = tg_gen_new(t, start, end);
        g->ticks_per_second = TPS;
        g->mono_ns = 7000000000ull + (start - 1000) * 1000;
        g->real_ns = 1700000000000000000ull + (start - 1000) * 1000;
        g->sampler = FR_SAMPLER_PERF;
        g->sample_hz = hz;
        return g;
}

/* Sample types, period, times, mappings with build ids, names, lines. */
static void test_profile_basics(void **state) {
        (void)state;
        load_objects();
        record_return_addresses();
        const uint64_t stack[] = {fn_addr(pp_leaf), ra_in_caller, ra_in_outer};
        const uint64_t libc_stack[] = {libc_getpid(), ra_in_outer};
        assert_true(in_object(&exe_obj, stack[0]) && in_object(&exe_obj, stack[1]) &&
                    in_object(&exe_obj, stack[2]));
        assert_true(in_object(&libc_obj, libc_stack[0]));

        struct tg_trace *t = new_trace();
        /* Generation 1: ticks 1000..11000 (10 ms), 250 Hz. */
        struct tg_gen *g = new_gen(t, 1000, 11000, 250);
        tg_status_thread(g, 100, "main");
        add_object(g, &libc_obj, NULL);
        add_object(g, &exe_obj, NULL);
        struct tg_batch *b = tg_samples(g, 100, 1000);
        tg_sample(b, 2000, 1, 0, NULL, stack, 3);
        tg_sample(b, 3000, 1, 0, NULL, libc_stack, 2);
        /* Generation 2: 11000..31000 (20 ms). */
        g = new_gen(t, 11000, 31000, 250);
        add_object(g, &libc_obj, NULL);
        add_object(g, &exe_obj, NULL);
        b = tg_samples(g, 100, 11000);
        tg_sample(b, 12000, 2, 0, NULL, stack, 3);
        struct result r = convert(t);
        const Profile *p = r.p;

        assert_int_equal(p->period, 4000000); /* 1e9 / 250 Hz */
        assert_int_equal(p->time_nanos, 1700000000000000000ll);
        assert_int_equal(p->duration_nanos, 30000000); /* 10 ms + 20 ms */
        assert_int_equal(r.stats.ngens, 2);
        assert_int_equal(r.stats.nsamples, 3);
        assert_int_equal(r.stats.nunresolved, 0);

        /* One mapping per recorded segment; the executable's first. */
        char exe_hex[129], libc_hex[129];
        hex(exe_hex, exe_obj.build_id, exe_obj.build_id_len);
        hex(libc_hex, libc_obj.build_id, libc_obj.build_id_len);
        assert_int_equal(p->n_mapping, exe_obj.nseg + libc_obj.nseg);
        for (size_t i = 0; i < p->n_mapping; i++) {
                const Mapping *m = p->mapping[i];
                bool is_exe = i < exe_obj.nseg;
                const struct sm_object *o = is_exe ? &exe_obj : &libc_obj;
                const struct sm_segment *sg = &o->seg[is_exe ? i : i - exe_obj.nseg];
                assert_string_equal(str(p, m->filename), o->path);
                assert_string_equal(str(p, m->build_id), is_exe ? exe_hex : libc_hex);
                assert_int_equal(m->memory_start, sg->start);
                assert_int_equal(m->memory_limit, sg->limit);
                assert_int_equal(m->file_offset, sg->offset);
        }

        /* The executable's stack: leaf exact, callers at pc - 1, all named. */
        const Sample *s = find_sample(p, "pp_leaf", "100", "main", NULL, NULL);
        assert_non_null(s);
        assert_int_equal(s->value[0], 3); /* 1 + 2, across generations */
        assert_int_equal(s->value[1], 3 * 4000000);
        assert_int_equal(s->n_location_id, 3);
        static const char *const names[] = {"pp_leaf", "pp_caller", "pp_outer"};
        for (size_t i = 0; i < 3; i++) {
                const Location *l = loc_by_id(p, s->location_id[i]);
                assert_int_equal(l->address, i == 0 ? stack[0] : stack[i] - 1);
                assert_int_equal(l->n_line, 1);
                assert_string_equal(line_func(p, l, 0), names[i]);
                const Function *f = func_by_id(p, l->line[0]->function_id);
                assert_string_equal(base_name(str(p, f->filename)), "test-pprof.c");
                assert_true(l->line[0]->line > 0);
                assert_true(f->start_line > 0 && f->start_line <= l->line[0]->line);
                const Mapping *m = map_by_id(p, l->mapping_id);
                assert_string_equal(str(p, m->filename), exe_obj.path);
                /* Resolved from DWARF: the mapping says so. */
                assert_true(m->has_functions && m->has_filenames && m->has_line_numbers &&
                            m->has_inline_frames);
        }
        /* A libc leaf: named from libc's symbol table (or its debug info). */
        s = find_sample(p, "pp_outer", "100", "main", NULL, NULL);
        assert_null(s); /* pp_outer is never a leaf */
        bool found = false;
        for (size_t i = 0; i < p->n_sample; i++) {
                const Location *l = loc_by_id(p, p->sample[i]->location_id[0]);
                if (l->address != libc_stack[0])
                        continue;
                found = true;
                assert_non_null(strstr(line_func(p, l, 0), "getpid"));
                assert_string_equal(str(p, map_by_id(p, l->mapping_id)->filename), libc_obj.path);
                assert_int_equal(p->sample[i]->value[0], 1);
                assert_string_equal(line_func(p, loc_by_id(p, p->sample[i]->location_id[1]), 0),
                                    "pp_outer");
        }
        assert_true(found);
        assert_true(has_comment(p, "flightrec: pid"));
        assert_true(has_comment(p, "reason: unit test"));
        result_free(&r);
}

/* A return address just past its function: only pc - 1 names the caller. */
static void test_caller_pc_minus_one(void **state) {
        (void)state;
        load_objects();
        record_return_addresses();
        /* The test means something only if ra itself is not in the caller. */
        struct fr_symbolizer *sym;
        struct fr_sym_object *o = NULL;
        struct fr_sym_result res;
        assert_int_equal(fr_symbolizer_new(NULL, &sym), 0);
        for (size_t i = 0; i < exe_obj.nseg; i++) {
                const struct sm_segment *sg = &exe_obj.seg[i];
                if (ra_at_end < sg->start || ra_at_end >= sg->limit)
                        continue;
                struct fr_object obj = {exe_obj.path, exe_obj.build_id, exe_obj.build_id_len,
                                        sg->start, sg->limit, sg->offset};
                assert_int_equal(fr_sym_open(sym, &obj, &o), 0);
        }
        assert_non_null(o);
        assert_int_equal(fr_sym_object_status(o), FR_SYM_OK);
        assert_int_equal(fr_symbolize(o, ra_at_end - 1, &res), 0);
        assert_true(res.nframes >= 1);
        assert_string_equal(res.frames[0].function, "pp_ends_in_call");
        assert_int_equal(fr_symbolize(o, ra_at_end, &res), 0);
        assert_true(res.nframes == 0 || strcmp(res.frames[0].function, "pp_ends_in_call") != 0);
        fr_symbolizer_free(sym);

        const uint64_t stack[] = {fn_addr(pp_jump_back), ra_at_end};
        struct tg_trace *t = new_trace();
        struct tg_gen *g = new_gen(t, 1000, 2000, 100);
        tg_status_thread(g, 1, NULL);
        add_object(g, &exe_obj, NULL);
        tg_sample(tg_samples(g, 1, 1000), 1500, 1, 0, NULL, stack, 2);
        struct result r = convert(t);
        const Profile *p = r.p;
        assert_int_equal(p->n_sample, 1);
        const Sample *s = p->sample[0];
        assert_int_equal(s->n_location_id, 2);
        const Location *leaf = loc_by_id(p, s->location_id[0]);
        const Location *caller = loc_by_id(p, s->location_id[1]);
        assert_int_equal(leaf->address, stack[0]);
        assert_string_equal(line_func(p, leaf, 0), "pp_jump_back");
        assert_int_equal(caller->address, ra_at_end - 1);
        assert_string_equal(line_func(p, caller, 0), "pp_ends_in_call");
        /* An unnamed thread: thread_id only. */
        assert_string_equal(label(p, s, "thread_id"), "1");
        assert_null(label(p, s, "thread_name"));
        assert_int_equal(p->period, 10000000);
        result_free(&r);
}

/* The same file loaded at two addresses (two processes, ASLR): one open file
 * serves both, and an address resolved in one is cached for the other. */
static void test_one_file_two_biases(void **state) {
        (void)state;
        load_objects();
        record_return_addresses();
        const uint64_t shift = 0x10000000000ull; /* the second process's placement */
        struct fr_symbolizer *sym;
        struct fr_sym_object *o[2] = {NULL, NULL};
        struct fr_sym_result res;
        assert_int_equal(fr_symbolizer_new(NULL, &sym), 0);
        for (int k = 0; k < 2; k++) {
                for (size_t i = 0; i < exe_obj.nseg; i++) {
                        const struct sm_segment *sg = &exe_obj.seg[i];
                        if (ra_at_end < sg->start || ra_at_end >= sg->limit)
                                continue;
                        struct fr_object obj = {exe_obj.path, exe_obj.build_id,
                                                exe_obj.build_id_len, sg->start + k * shift,
                                                sg->limit + k * shift, sg->offset};
                        assert_int_equal(fr_sym_open(sym, &obj, &o[k]), 0);
                }
                assert_non_null(o[k]);
                assert_int_equal(fr_sym_object_status(o[k]), FR_SYM_OK);
        }
        assert_ptr_not_equal(o[0], o[1]);
        assert_int_equal(fr_symbolizer_files(sym), 1);
        assert_int_equal(fr_symbolize(o[0], ra_at_end - 1, &res), 0);
        assert_true(res.nframes >= 1);
        assert_string_equal(res.frames[0].function, "pp_ends_in_call");
        size_t cached = fr_symbolizer_cached(sym);
        assert_int_equal(fr_symbolize(o[1], ra_at_end - 1 + shift, &res), 0);
        assert_true(res.nframes >= 1);
        assert_string_equal(res.frames[0].function, "pp_ends_in_call");
        assert_int_equal(fr_symbolizer_cached(sym), cached); /* a hit */
        /* Outside the second placement: not this object's address. */
        assert_int_equal(fr_symbolize(o[1], ra_at_end - 1, &res), 0);
        assert_int_equal(res.nframes, 0);
        fr_symbolizer_free(sym);
}

/* A call from inlined code: the inlined function first, then its caller. */
static void test_inline_frames(void **state) {
        (void)state;
        load_objects();
        record_return_addresses();
        const uint64_t stack[] = {fn_addr(pp_inline_callee), ra_in_inlined};
        struct tg_trace *t = new_trace();
        struct tg_gen *g = new_gen(t, 1000, 2000, 100);
        tg_status_thread(g, 1, "t");
        add_object(g, &exe_obj, NULL);
        tg_sample(tg_samples(g, 1, 1000), 1500, 1, 0, NULL, stack, 2);
        struct result r = convert(t);
        const Profile *p = r.p;
        const Location *l = loc_by_id(p, p->sample[0]->location_id[1]);
        assert_int_equal(l->n_line, 2);
        assert_string_equal(line_func(p, l, 0), "pp_inlined");
        assert_string_equal(line_func(p, l, 1), "pp_has_inline");
        /* Each line is inside its function's source. */
        for (size_t i = 0; i < 2; i++) {
                const Function *f = func_by_id(p, l->line[i]->function_id);
                assert_true(f->start_line > 0 && l->line[i]->line >= f->start_line);
        }
        result_free(&r);
}

/* Labels follow the thread's name, task and region; identical samples
 * merge across generations with their weights summed. */
static void test_labels_and_merging(void **state) {
        (void)state;
        load_objects();
        record_return_addresses();
        const uint64_t s1[] = {fn_addr(pp_leaf), ra_in_caller};
        const uint64_t s2[] = {fn_addr(pp_caller), ra_in_outer};
        struct tg_trace *t = new_trace();

        struct tg_gen *g = new_gen(t, 1000, 2000, 1000);
        tg_status_thread(g, 100, "main");
        tg_status_thread(g, 101, "worker");
        add_object(g, &exe_obj, NULL);
        struct tg_batch *e = tg_events(g, 100, 1000);
        tg_task_begin(e, 1100, 7, 0, "request");
        tg_region_begin(e, 1200, 7, "parse");
        struct tg_batch *b = tg_samples(g, 100, 1000);
        tg_sample(b, 1300, 1, 7, "parse", s1, 2);
        tg_sample(b, 1400, 5, 7, "parse", s1, 2); /* merges: weight 6 */
        tg_sample(b, 1500, 1, 7, NULL, s1, 2);    /* no region: apart */
        struct tg_batch *w = tg_events(g, 101, 1000);
        tg_thread_name(w, 1600, "renamed");
        b = tg_samples(g, 101, 1000);
        tg_sample(b, 1550, 2, 0, NULL, s2, 2); /* before the rename */
        tg_sample(b, 1600, 1, 0, NULL, s2, 2); /* at it: the event comes first */
        tg_sample(b, 1700, 1, 0, NULL, s2, 2);

        /* Generation 2 carries no MAPS: the union of the earlier ones serves. */
        g = new_gen(t, 2000, 3000, 1000);
        b = tg_samples(g, 100, 2000);
        tg_sample(b, 2100, 3, 7, "parse", s1, 2); /* merges with generation 1's */
        b = tg_samples(g, 101, 2000);
        tg_sample(b, 2200, 4, 0, NULL, s2, 2);
        struct result r = convert(t);
        const Profile *p = r.p;

        assert_int_equal(r.stats.nsamples, 8);
        assert_int_equal(p->n_sample, 4);
        const Sample *s = find_sample(p, "pp_leaf", "100", "main", "7", "parse");
        assert_non_null(s);
        /* task carries the task's name (TASK_BEGIN), task_id its number. */
        assert_non_null(label(p, s, "task"));
        assert_string_equal(label(p, s, "task"), "request");
        assert_int_equal(s->value[0], 1 + 5 + 3);
        assert_int_equal(s->value[1], 9 * 1000000);
        s = find_sample(p, "pp_leaf", "100", "main", "7", NULL);
        assert_non_null(s);
        assert_int_equal(s->value[0], 1);
        s = find_sample(p, "pp_caller", "101", "worker", NULL, NULL);
        assert_non_null(s);
        assert_int_equal(s->value[0], 2);
        s = find_sample(p, "pp_caller", "101", "renamed", NULL, NULL);
        assert_non_null(s);
        assert_int_equal(s->value[0], 1 + 1 + 4);
        /* The same stack in several samples shares its locations: 2 + 2. */
        assert_int_equal(p->n_location, 4);
        result_free(&r);
}

/* Objects that cannot be symbolized keep their mapping and addresses. */
static void test_unresolved_objects(void **state) {
        (void)state;
        load_objects();
        record_return_addresses();
        /* The executable's text segment, also recorded at made-up addresses
         * as a file that does not exist and as a build that is not this one. */
        const struct sm_segment *text = NULL;
        uint64_t leaf = fn_addr(pp_leaf);
        for (size_t i = 0; i < exe_obj.nseg; i++)
                if (leaf >= exe_obj.seg[i].start && leaf < exe_obj.seg[i].limit)
                        text = &exe_obj.seg[i];
        assert_non_null(text);
        const uint64_t gone_base = 0x10000000, other_base = 0x20000000;
        uint64_t delta = leaf - text->start, size = text->limit - text->start;
        uint8_t wrong_bid[64];
        memcpy(wrong_bid, exe_obj.build_id, exe_obj.build_id_len);
        wrong_bid[0] ^= 0xff;
        const uint64_t gone_stack[] = {gone_base + delta, other_base + delta + 1, 0x1234};
        const uint64_t good_stack[] = {leaf};

        struct tg_trace *t = new_trace();
        struct tg_gen *g = new_gen(t, 1000, 2000, 100);
        tg_status_thread(g, 1, "t");
        add_object(g, &exe_obj, NULL);
        tg_map(g, gone_base, gone_base + size, text->offset, "/nonexistent/libgone.so.1",
               "\x01\x02\x03", 3);
        tg_map(g, other_base, other_base + size, text->offset, exe_obj.path, wrong_bid,
               exe_obj.build_id_len);
        struct tg_batch *b = tg_samples(g, 1, 1000);
        tg_sample(b, 1100, 1, 0, NULL, gone_stack, 3);
        tg_sample(b, 1200, 1, 0, NULL, good_stack, 1);
        struct result r = convert(t);
        const Profile *p = r.p;
        assert_int_equal(r.stats.nunresolved, 3);

        const Sample *s = NULL;
        for (size_t i = 0; i < p->n_sample; i++)
                if (p->sample[i]->n_location_id == 3)
                        s = p->sample[i];
        assert_non_null(s);
        const Location *l0 = loc_by_id(p, s->location_id[0]);
        const Location *l1 = loc_by_id(p, s->location_id[1]);
        const Location *l2 = loc_by_id(p, s->location_id[2]);
        char want[PATH_MAX + 64];

        /* Missing file: named after the object and the file offset. */
        const Mapping *m0 = map_by_id(p, l0->mapping_id);
        assert_string_equal(str(p, m0->filename), "/nonexistent/libgone.so.1");
        assert_string_equal(str(p, m0->build_id), "010203");
        assert_int_equal(m0->memory_start, gone_base);
        assert_int_equal(m0->file_offset, text->offset);
        assert_int_equal(l0->address, gone_stack[0]);
        snprintf(want, sizeof want, "libgone.so.1+0x%" PRIx64, delta + text->offset);
        assert_string_equal(line_func(p, l0, 0), want);
        assert_false(m0->has_functions || m0->has_filenames || m0->has_line_numbers ||
                     m0->has_inline_frames);

        /* Another build of the executable: not named, although the file is here. */
        const Mapping *m1 = map_by_id(p, l1->mapping_id);
        char bidhex[129];
        hex(bidhex, wrong_bid, exe_obj.build_id_len);
        assert_string_equal(str(p, m1->filename), exe_obj.path);
        assert_string_equal(str(p, m1->build_id), bidhex);
        assert_int_equal(m1->memory_start, other_base);
        assert_int_equal(l1->address, other_base + delta); /* a caller: pc - 1 */
        snprintf(want, sizeof want, "%s+0x%" PRIx64, base_name(exe_obj.path),
                 delta + text->offset);
        assert_string_equal(line_func(p, l1, 0), want);
        assert_false(m1->has_functions);

        /* Outside every object: no mapping, the bare address. */
        assert_int_equal(l2->mapping_id, 0);
        assert_int_equal(l2->address, 0x1233);
        assert_string_equal(line_func(p, l2, 0), "[unknown]+0x1233");

        /* The real executable's mapping still resolves. */
        const Location *good = NULL;
        for (size_t i = 0; i < p->n_sample; i++)
                if (p->sample[i]->n_location_id == 1)
                        good = loc_by_id(p, p->sample[i]->location_id[0]);
        assert_non_null(good);
        assert_string_equal(line_func(p, good, 0), "pp_leaf");
        assert_true(map_by_id(p, good->mapping_id)->has_functions);

        assert_true(has_comment(p, "not symbolized: /nonexistent/libgone.so.1: file not found"));
        snprintf(want, sizeof want, "not symbolized: %s: build id differs", exe_obj.path);
        assert_true(has_comment(p, want));
        result_free(&r);
}

/* FR_PPROF_NO_SYMBOLIZE: every frame unresolved, mappings kept. */
static void test_no_symbolize(void **state) {
        (void)state;
        load_objects();
        record_return_addresses();
        const uint64_t stack[] = {fn_addr(pp_leaf), ra_in_caller};
        struct tg_trace *t = new_trace();
        struct tg_gen *g = new_gen(t, 1000, 2000, 100);
        tg_status_thread(g, 1, "t");
        add_object(g, &exe_obj, NULL);
        tg_sample(tg_samples(g, 1, 1000), 1500, 1, 0, NULL, stack, 2);
        struct fr_pprof_options opts = {.flags = FR_PPROF_NO_SYMBOLIZE};
        struct result r = convert_opts(t, &opts);
        const Profile *p = r.p;
        assert_int_equal(r.stats.nunresolved, 2);
        assert_int_equal(p->n_mapping, exe_obj.nseg);
        const Location *l = loc_by_id(p, p->sample[0]->location_id[0]);
        const Mapping *m = map_by_id(p, l->mapping_id);
        char want[PATH_MAX + 64];
        snprintf(want, sizeof want, "%s+0x%" PRIx64, base_name(exe_obj.path),
                 stack[0] - m->memory_start + m->file_offset);
        assert_string_equal(line_func(p, l, 0), want);
        assert_false(m->has_functions);
        assert_true(has_comment(p, "not symbolized (requested)"));
        result_free(&r);
}

/* The files of another root (a container's /proc/PID/root). */
static void test_root(void **state) {
        (void)state;
        load_objects();
        record_return_addresses();
        char root[] = "/tmp/test-pprof-root.XXXXXX", dir[PATH_MAX], file[PATH_MAX];
        const char *inner = "/fr-root-test/bin/prog";
        assert_non_null(mkdtemp(root));
        snprintf(dir, sizeof dir, "%s/fr-root-test", root);
        assert_int_equal(mkdir(dir, 0700), 0);
        snprintf(dir, sizeof dir, "%s/fr-root-test/bin", root);
        assert_int_equal(mkdir(dir, 0700), 0);
        snprintf(file, sizeof file, "%s%s", root, inner);
        /* A copy of this program, at a path that exists only under root. */
        int in = open("/proc/self/exe", O_RDONLY), out = open(file, O_WRONLY | O_CREAT, 0600);
        assert_true(in >= 0 && out >= 0);
        char buf[65536];
        ssize_t n;
        while ((n = read(in, buf, sizeof buf)) > 0)
                assert_int_equal(write(out, buf, (size_t)n), n);
        assert_int_equal(n, 0);
        close(in);
        assert_int_equal(close(out), 0);

        const uint64_t stack[] = {fn_addr(pp_leaf)};
        for (int with_root = 0; with_root < 2; with_root++) {
                struct tg_trace *t = new_trace();
                struct tg_gen *g = new_gen(t, 1000, 2000, 100);
                tg_status_thread(g, 1, "t");
                add_object(g, &exe_obj, inner);
                tg_sample(tg_samples(g, 1, 1000), 1500, 1, 0, NULL, stack, 1);
                struct fr_pprof_options opts = {.root = with_root ? root : NULL};
                struct result r = convert_opts(t, &opts);
                const Location *l = loc_by_id(r.p, r.p->sample[0]->location_id[0]);
                if (with_root)
                        assert_string_equal(line_func(r.p, l, 0), "pp_leaf");
                else
                        assert_non_null(strstr(line_func(r.p, l, 0), "prog+0x"));
                /* The file name stays the one the process saw. */
                assert_string_equal(str(r.p, map_by_id(r.p, l->mapping_id)->filename), inner);
                result_free(&r);
        }
        assert_int_equal(unlink(file), 0);
        assert_int_equal(rmdir(dir), 0);
        snprintf(dir, sizeof dir, "%s/fr-root-test", root);
        assert_int_equal(rmdir(dir), 0);
        assert_int_equal(rmdir(root), 0);
}

/* A trace with no generation, and one with no samples and no rate. */
static void test_empty(void **state) {
        (void)state;
        struct result r = convert(tg_trace_new());
        assert_int_equal(r.p->n_sample, 0);
        assert_int_equal(r.p->n_mapping, 0);
        assert_int_equal(r.p->n_location, 0);
        assert_int_equal(r.p->period, 10000000); /* 100 Hz */
        assert_int_equal(r.p->duration_nanos, 0);
        assert_int_equal(r.stats.ngens, 0);
        result_free(&r);

        struct tg_trace *t = tg_trace_new();
        struct tg_gen *g = new_gen(t, 1000, 3000, 0);
        tg_status_thread(g, 1, "idle");
        tg_map(g, 0x400000, 0x401000, 0, "/usr/bin/tgapp", "\xaa", 1);
        tg_events(g, 1, 1000);
        r = convert(t);
        assert_int_equal(r.p->n_sample, 0);
        assert_int_equal(r.p->n_mapping, 1);
        assert_string_equal(str(r.p, r.p->mapping[0]->build_id), "aa");
        assert_false(r.p->mapping[0]->has_functions); /* nothing resolved: no claim */
        assert_int_equal(r.p->period, 10000000);
        assert_int_equal(r.p->time_nanos, 1700000000000000000ll);
        assert_int_equal(r.p->duration_nanos, 2000000);
        assert_true(has_comment(r.p, "sampling rate not recorded: 100 Hz assumed"));
        assert_int_equal(r.stats.ngens, 1);
        result_free(&r);
}

/* Bad traces: -EINVAL, the reader's message, the output untouched. */
static void test_corrupt(void **state) {
        (void)state;
        load_objects();
        record_return_addresses();
        const uint64_t stack[] = {fn_addr(pp_leaf)};
        struct tg_trace *t = new_trace();
        struct tg_gen *g = new_gen(t, 1000, 2000, 100);
        tg_status_thread(g, 1, "t");
        add_object(g, &exe_obj, NULL);
        tg_sample(tg_samples(g, 1, 1000), 1500, 1, 0, NULL, stack, 1);
        g = new_gen(t, 2000, 3000, 100);
        tg_sample(tg_samples(g, 1, 2000), 2500, 1, 0, NULL, stack, 1);
        uint8_t *data, *gz = (uint8_t *)&state;
        size_t len, gzlen = 12345;
        char err[512];
        tg_trace_encode_free(t, &data, &len);

        /* Cut inside the last generation. */
        memset(err, 0, sizeof err);
        assert_int_equal(fr_pprof_from_trace(data, len - 3, NULL, &gz, &gzlen, NULL, err, sizeof err),
                         -EINVAL);
        assert_non_null(strstr(err, "offset"));
        assert_ptr_equal(gz, (uint8_t *)&state);
        assert_int_equal(gzlen, 12345);

        /* Salvage: the incomplete last generation is dropped. */
        struct fr_pprof_stats st;
        struct fr_pprof_options opts = {.flags = FR_PPROF_ALLOW_PARTIAL_TAIL};
        assert_int_equal(fr_pprof_from_trace(data, len - 3, &opts, &gz, &gzlen, &st, err, sizeof err),
                         0);
        assert_int_equal(st.ngens, 1);
        assert_int_equal(st.nsamples, 1);
        Profile *p = decode(gz, gzlen);
        check_invariants(p);
        assert_int_equal(p->n_sample, 1);
        perftools__profiles__profile__free_unpacked(p, NULL);
        free(gz);
        gz = (uint8_t *)&state;

        /* A flipped byte in the magic, and garbage. */
        data[0] ^= 0x20;
        err[0] = 0;
        assert_int_equal(fr_pprof_from_trace(data, len, NULL, &gz, &gzlen, NULL, err, sizeof err),
                         -EINVAL);
        assert_true(err[0] != 0);
        memset(data, 0xff, len);
        err[0] = 0;
        assert_int_equal(fr_pprof_from_trace(data, len, NULL, &gz, &gzlen, NULL, err, sizeof err),
                         -EINVAL);
        assert_true(err[0] != 0);
        assert_int_equal(fr_pprof_from_trace(data, 0, NULL, &gz, &gzlen, NULL, err, sizeof err),
                         -EINVAL);
        /* Bad options. */
        opts = (struct fr_pprof_options){.gzip_level = 10};
        err[0] = 0;
        assert_int_equal(fr_pprof_from_trace(data, len, &opts, &gz, &gzlen, NULL, err, sizeof err),
                         -EINVAL);
        assert_string_equal(err, "gzip level 10 is not in 1..9");
        assert_ptr_equal(gz, (uint8_t *)&state);
        free(data);
}

/* The caller's symbolizer is used and can be reused across conversions. */
static void test_shared_symbolizer(void **state) {
        (void)state;
        load_objects();
        record_return_addresses();
        struct fr_symbolizer *sym;
        assert_int_equal(fr_symbolizer_new(NULL, &sym), 0);
        const uint64_t stack[] = {fn_addr(pp_leaf), ra_in_caller, ra_in_outer};
        for (int i = 0; i < 2; i++) {
                struct tg_trace *t = new_trace();
                struct tg_gen *g = new_gen(t, 1000, 2000, 100);
                tg_status_thread(g, 1, "t");
                add_object(g, &exe_obj, NULL);
                tg_sample(tg_samples(g, 1, 1000), 1500, 1, 0, NULL, stack, 3);
                struct fr_pprof_options opts = {.symbolizer = sym};
                struct result r = convert_opts(t, &opts);
                const Location *l = loc_by_id(r.p, r.p->sample[0]->location_id[2]);
                assert_string_equal(line_func(r.p, l, 0), "pp_outer");
                result_free(&r);
        }
        fr_symbolizer_free(sym);
}

/* A program linked with lld: its code segment shares file page 0 with the
 * read-only and data segments, so every one of its mappings has offset 0
 * and only the executable segment gives the right load bias. The program
 * has exited by the time its addresses are symbolized. */
static void test_lld_shared_pages(void **state) {
        (void)state;
#ifndef FR_LLD_PROG
        skip();
#else
        char line[PATH_MAX + 256], prog[PATH_MAX], bid_hex[129] = "";
        uint64_t leaf = 0, caller = 0, ra = 0;
        uint8_t bid[64];
        size_t bidlen = 0;
        struct sm_segment seg[16];
        size_t nseg = 0;

        assert_non_null(realpath(FR_LLD_PROG, prog));
        FILE *f = popen(FR_LLD_PROG, "r");
        assert_non_null(f);
        while (fgets(line, sizeof line, f)) {
                uint64_t start, limit, offset, v;
                char name[64];
                int pos = 0;
                if (sscanf(line, "fn %63s %" SCNx64, name, &v) == 2)
                        *(strcmp(name, "lld_leaf") == 0 ? &leaf : &caller) = v;
                else if (sscanf(line, "ra %" SCNx64, &v) == 1)
                        ra = v;
                else if (sscanf(line, "buildid %128s", bid_hex) == 1)
                        continue;
                else if (sscanf(line, "map %" SCNx64 "-%" SCNx64 " %*s %" SCNx64 " %*s %*s %n",
                                &start, &limit, &offset, &pos) >= 3 && pos > 0) {
                        char *path = line + pos;
                        path[strcspn(path, "\n")] = 0;
                        if (strcmp(path, prog) == 0 && nseg < 16)
                                seg[nseg++] = (struct sm_segment){start, limit, offset};
                }
        }
        assert_int_equal(pclose(f), 0);
        assert_true(leaf && caller && ra > caller);
        for (size_t i = 0; bid_hex[2 * i] && bid_hex[2 * i + 1] && i < sizeof bid; i++) {
                unsigned byte;
                assert_int_equal(sscanf(bid_hex + 2 * i, "%2x", &byte), 1);
                bid[bidlen++] = (uint8_t)byte;
        }
        assert_true(bidlen > 0);
        /* The case this test is about: the code's file page mapped twice or more. */
        size_t code = SIZE_MAX, same_offset = 0;
        for (size_t i = 0; i < nseg; i++)
                if (leaf >= seg[i].start && leaf < seg[i].limit)
                        code = i;
        assert_true(code != SIZE_MAX);
        for (size_t i = 0; i < nseg; i++)
                same_offset += seg[i].offset == seg[code].offset;
        if (same_offset < 2)
                print_message("note: %s no longer shares its code page\n", prog);

        const uint64_t stack[] = {leaf, ra};
        struct tg_trace *t = tg_trace_new();
        tg_trace_header(t, 1, "pprof-lld-prog", prog, "test", 0);
        struct tg_gen *g = new_gen(t, 1000, 2000, 100);
        tg_status_thread(g, 1, "main");
        for (size_t i = 0; i < nseg; i++)
                tg_map(g, seg[i].start, seg[i].limit, seg[i].offset, prog, bid, bidlen);
        tg_sample(tg_samples(g, 1, 1000), 1500, 1, 0, NULL, stack, 2);
        struct result r = convert(t);
        const Profile *p = r.p;
        assert_int_equal(r.stats.nunresolved, 0);
        const Location *l0 = loc_by_id(p, p->sample[0]->location_id[0]);
        const Location *l1 = loc_by_id(p, p->sample[0]->location_id[1]);
        assert_string_equal(line_func(p, l0, 0), "lld_leaf");
        assert_string_equal(line_func(p, l1, 0), "lld_caller");
        assert_int_equal(l1->address, ra - 1);
        assert_string_equal(base_name(str(p, func_by_id(p, l0->line[0]->function_id)->filename)),
                            "pprof-lld-prog.c");
        result_free(&r);
#endif
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_profile_basics),
                cmocka_unit_test(test_caller_pc_minus_one),
                cmocka_unit_test(test_one_file_two_biases),
                cmocka_unit_test(test_inline_frames),
                cmocka_unit_test(test_labels_and_merging),
                cmocka_unit_test(test_unresolved_objects),
                cmocka_unit_test(test_no_symbolize),
                cmocka_unit_test(test_root),
                cmocka_unit_test(test_empty),
                cmocka_unit_test(test_corrupt),
                cmocka_unit_test(test_shared_symbolizer),
                cmocka_unit_test(test_lld_shared_pages),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
