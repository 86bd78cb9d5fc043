/* Tests of the trace reader (proto/trace_reader.c) and of fr_trace_load_file,
 * on traces built with tracegen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <lz4frame.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace_encode.h"
#include "trace_format.h"
#include "trace_reader.h"
#include "tracegen.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */

/* The read trace as text, one line per item, to compare with expectations. */
struct text {
        struct fr_buf buf;
};

static __attribute__((format(printf, 2, 3))) void tprintf(struct text *t, const char *fmt, ...) {
        char line[8192];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        assert_true(n >= 0 && (size_t)n < sizeof line);
        fr_buf_put_bytes(&t->buf, line, (size_t)n);
}

static const char *s_(const char *s) { return s ? s : "-"; }

static void print_event(struct text *t, const struct fr_event *e) {
        static const char *const names[] = {
                "?", "TASK_BEGIN", "TASK_END", "REGION_BEGIN", "REGION_END", "LOG",
                "THREAD_NAME", "THREAD_START", "THREAD_EXIT", "LOST",
        };
        tprintf(t, "ev %" PRIu64 " %" PRIu64 " %s", e->time, e->tid, names[e->type]);
        switch (e->type) {
        case FR_EV_TASK_BEGIN:
                tprintf(t, " task=%" PRIu64 " parent=%" PRIu64 " name=%s", e->task, e->parent,
                        s_(e->name));
                break;
        case FR_EV_TASK_END:
                tprintf(t, " task=%" PRIu64, e->task);
                break;
        case FR_EV_REGION_BEGIN:
        case FR_EV_REGION_END:
                tprintf(t, " task=%" PRIu64 " name=%s", e->task, s_(e->name));
                break;
        case FR_EV_LOG:
                tprintf(t, " task=%" PRIu64 " cat=%s msg=%.*s", e->task, s_(e->category),
                        (int)e->message_len, e->message);
                break;
        case FR_EV_THREAD_NAME:
                tprintf(t, " name=%s", s_(e->name));
                break;
        case FR_EV_LOST:
                tprintf(t, " what=%" PRIu64 " count=%" PRIu64, e->lost_kind, e->count);
                break;
        }
        tprintf(t, "\n");
}

static int collect(const struct fr_trace_header *h, const struct fr_generation *g, void *ud) {
        struct text *t = ud;
        if (t->buf.len == 0)
                tprintf(t, "trace v%" PRIu64 " pid=%" PRIu64 " comm=%s exe=%s reason=%s flags=%" PRIu64
                           "\n",
                        h->version, h->pid, h->comm, h->exe, h->reason, h->flags);
        tprintf(t, "gen %" PRIu64 " [%" PRIu64 ",%" PRIu64 "] tps=%" PRIu64 " sampler=%" PRIu64
                   "/%" PRIu64 "\n",
                g->gen, g->start, g->end, g->ticks_per_second, g->sampler, g->sample_hz);
        for (size_t i = 0; i < g->nthreads; i++) {
                const struct fr_thread_state *th = &g->threads[i];
                tprintf(t, "thread %" PRIu64 " name=%s", th->tid, s_(th->name));
                for (uint32_t j = 0; j < th->nregions; j++)
                        tprintf(t, " [%" PRIu64 " %s]", th->regions[j].task,
                                s_(th->regions[j].name));
                tprintf(t, "\n");
        }
        for (size_t i = 0; i < g->ntasks; i++)
                tprintf(t, "task %" PRIu64 " parent=%" PRIu64 " name=%s\n", g->tasks[i].id,
                        g->tasks[i].parent, s_(g->tasks[i].name));
        for (size_t i = 0; i < g->nmaps; i++)
                tprintf(t, "map %" PRIx64 "-%" PRIx64 " off=%" PRIx64 " %s bid=%zu\n",
                        g->maps[i].start, g->maps[i].limit, g->maps[i].offset, g->maps[i].path,
                        g->maps[i].build_id_len);
        for (size_t i = 0; i < g->nevents; i++)
                print_event(t, &g->events[i]);
        for (size_t i = 0; i < g->nsamples; i++) {
                const struct fr_sample *s = &g->samples[i];
                tprintf(t, "sample %" PRIu64 " %" PRIu64 " w=%" PRIu64 " task=%" PRIu64
                           " region=%s stack=",
                        s->time, s->tid, s->weight, s->task, s_(s->region));
                for (uint32_t j = 0; j < s->nframes; j++)
                        tprintf(t, "%s%" PRIx64, j ? "," : "", s->frames[j]);
                tprintf(t, "\n");
        }
        return 0;
}

/* read_text - read the trace; it must be valid. Returns its text (free it). */
static char *read_text(const uint8_t *data, size_t len, size_t *ret_ngens) {
        struct text t = {0};
        char err[512];
        int r = fr_trace_read(data, len, 0, collect, &t, ret_ngens, err, sizeof err);
        if (r != 0)
                fail_msg("fr_trace_read: %d: %s", r, err);
        fr_buf_put_u8(&t.buf, 0);
        return (char *)t.buf.data;
}

/* trace_text - encode t (and free it), read it back as text. */
static char *trace_text(struct tg_trace *t) {
        uint8_t *data;
        size_t len;
        tg_trace_encode_free(t, &data, &len);
        char *s = read_text(data, len, NULL);
        free(data);
        return s;
}

static void assert_text(char *got, const char *want) {
        if (strcmp(got, want) != 0)
                fail_msg("got:\n%s\nwant:\n%s", got, want);
        free(got);
}

/* expect_error - the read fails with -EINVAL and a message that starts with
 * an offset and contains needle. */
static void expect_error(const uint8_t *data, size_t len, unsigned flags, const char *needle) {
        char err[512] = "";
        int r = fr_trace_read(data, len, flags, NULL, NULL, NULL, err, sizeof err);
        if (r != -EINVAL || strncmp(err, "offset ", 7) != 0 || !strstr(err, needle))
                fail_msg("ret %d, message \"%s\"; want -EINVAL and \"%s\"", r, err, needle);
}

static void trace_error(struct tg_trace *t, const char *needle) {
        uint8_t *data;
        size_t len;
        tg_trace_encode_free(t, &data, &len);
        expect_error(data, len, 0, needle);
        free(data);
}

/* partial_tail_error - encode t (and free it): the read fails with needle,
 * and FR_READ_ALLOW_PARTIAL_TAIL reads the first ngens generations. */
static void partial_tail_error(struct tg_trace *t, const char *needle, size_t ngens) {
        uint8_t *data;
        size_t len, got;
        tg_trace_encode_free(t, &data, &len);
        expect_error(data, len, 0, needle);
        assert_int_equal(fr_trace_read(data, len, FR_READ_ALLOW_PARTIAL_TAIL, NULL, NULL, &got,
                                       NULL, 0),
                         0);
        assert_int_equal(got, ngens);
        free(data);
}

/* read_trace - encode t (and free it), read it with cb. Returns
 * fr_trace_read's result. */
static int read_trace(struct tg_trace *t, unsigned flags, fr_generation_cb cb, void *ud,
                      size_t *ret_ngens) {
        uint8_t *data;
        size_t len;
        tg_trace_encode_free(t, &data, &len);
        int r = fr_trace_read(data, len, flags, cb, ud, ret_ngens, NULL, 0);
        free(data);
        return r;
}

/* thread_gen - a new trace in *ret_t with one generation [start, end] whose
 * STATUS lists thread tid, unnamed. */
static struct tg_gen *thread_gen(struct tg_trace **ret_t, uint64_t tid, uint64_t start,
                                 uint64_t end) {
        *ret_t = tg_trace_new();
        struct tg_gen *g = tg_gen_new(*ret_t, start, end);
        tg_status_thread(g, tid, NULL);
        return g;
}

static const uint64_t pcs[] = {0x400123, 0x400456, 0x400010};

struct lost_count {
        uint64_t lost, samples;
};

static int count_lost(const struct fr_trace_header *h, const struct fr_generation *g, void *ud) {
        (void)h;
        struct lost_count *lc = ud;
        lc->lost += g->lost_samples;
        lc->samples += g->nsamples;
        return 0;
}

/* A trace of n (<= 3) generations using every kind of batch and event. */
static struct tg_trace *sample_trace(int n) {
        struct tg_trace *t = tg_trace_new();
        struct tg_gen *g;
        struct tg_batch *a, *b, *s;
        if (n < 1)
                return t;
        g = tg_gen_new(t, 1000, 2000);
        g->sampler = FR_SAMPLER_PERF;
        g->sample_hz = 100;
        tg_status_thread(g, 7, "main");
        tg_map(g, 0x400000, 0x401000, 0x1000, "/usr/bin/tgapp", "\x01\x02", 2);
        a = tg_events(g, 7, 1000);
        tg_task_begin(a, 1100, 1, 0, "request");
        tg_region_begin(a, 1200, 1, "parse");
        b = tg_events(g, 8, 1000);
        tg_thread_start(b, 1150);
        tg_thread_name(b, 1160, "worker");
        tg_log(b, 1200, 1, "http", "GET /");
        tg_region_begin(b, 1300, 1, "io");
        s = tg_samples(g, 7, 1000);
        tg_sample(s, 1250, 1, 1, "parse", pcs, 3);
        tg_sample(s, 1260, 2, 1, "parse", pcs, 2);
        if (n < 2)
                return t;
        g = tg_gen_new(t, 2000, 3000);
        a = tg_events(g, 7, 2000);
        tg_region_end(a, 2100, 1, "parse");
        tg_lost(a, 2150, FR_LOST_EVENTS, 3);
        b = tg_events(g, 8, 2000);
        tg_region_end(b, 2050, 1, "io");
        tg_thread_exit(b, 2200);
        a = tg_events(g, 7, 2300);
        tg_task_end(a, 2400, 1);
        s = tg_samples(g, 8, 2000);
        tg_sample(s, 2010, 1, 1, "io", pcs + 1, 1);
        if (n < 3)
                return t;
        g = tg_gen_new(t, 3000, 4000);
        g->tables_first = true;
        b = tg_events(g, 8, 3000);
        tg_thread_start(b, 3100);
        tg_task_begin(b, 3200, 2, 0, "batch");
        return t;
}

/* encode_sample - sample_trace(n), encoded. */
static void encode_sample(int n, uint8_t **ret_data, size_t *ret_len) {
        tg_trace_encode_free(sample_trace(n), ret_data, ret_len);
}

static const char sample_text[] =
        "trace v1 pid=4242 comm=tgapp exe=/usr/bin/tgapp reason=test flags=0\n"
        "gen 1 [1000,2000] tps=1000000000 sampler=1/100\n"
        "thread 7 name=main\n"
        "map 400000-401000 off=1000 /usr/bin/tgapp bid=2\n"
        "ev 1100 7 TASK_BEGIN task=1 parent=0 name=request\n"
        "ev 1150 8 THREAD_START\n"
        "ev 1160 8 THREAD_NAME name=worker\n"
        "ev 1200 7 REGION_BEGIN task=1 name=parse\n"
        "ev 1200 8 LOG task=1 cat=http msg=GET /\n"
        "ev 1300 8 REGION_BEGIN task=1 name=io\n"
        "sample 1250 7 w=1 task=1 region=parse stack=400123,400456,400010\n"
        "sample 1260 7 w=2 task=1 region=parse stack=400123,400456\n"
        "gen 2 [2000,3000] tps=1000000000 sampler=0/0\n"
        "thread 7 name=main [1 parse]\n"
        "thread 8 name=worker [1 io]\n"
        "task 1 parent=0 name=request\n"
        "ev 2050 8 REGION_END task=1 name=io\n"
        "ev 2100 7 REGION_END task=1 name=parse\n"
        "ev 2150 7 LOST what=1 count=3\n"
        "ev 2200 8 THREAD_EXIT\n"
        "ev 2400 7 TASK_END task=1\n"
        "sample 2010 8 w=1 task=1 region=io stack=400456\n"
        "gen 3 [3000,4000] tps=1000000000 sampler=0/0\n"
        "thread 7 name=main\n"
        "ev 3100 8 THREAD_START\n"
        "ev 3200 8 TASK_BEGIN task=2 parent=0 name=batch\n";

/* ------------------------------------------------------------------------ */
/* Round trips                                                               */

static void test_roundtrip(void **state) {
        (void)state;
        size_t ngens;
        uint8_t *data;
        size_t len;
        encode_sample(3, &data, &len);
        assert_text(read_text(data, len, &ngens), sample_text);
        assert_int_equal(ngens, 3);
        /* Validation alone, no callback. */
        assert_int_equal(fr_trace_read(data, len, 0, NULL, NULL, &ngens, NULL, 0), 0);
        assert_int_equal(ngens, 3);
        free(data);
}

/* FR_READ_THREAD_EVENTS_ONLY (the pprof converter's mode): the same
 * generations and samples, only the thread events (and TASK_BEGIN and
 * BLOCK, which profiles label and count). */
struct counts {
        size_t gens, samples, thread_events, other_events;
};

static int count_cb(const struct fr_trace_header *h, const struct fr_generation *g, void *ud) {
        (void)h;
        struct counts *c = ud;
        c->gens++;
        c->samples += g->nsamples;
        for (size_t i = 0; i < g->nevents; i++) {
                uint8_t t = g->events[i].type;
                if (t == FR_EV_THREAD_START || t == FR_EV_THREAD_NAME || t == FR_EV_THREAD_EXIT ||
                    t == FR_EV_TASK_BEGIN || t == FR_EV_BLOCK)
                        c->thread_events++;
                else
                        c->other_events++;
                if (i)
                        assert_true(g->events[i - 1].time <= g->events[i].time);
        }
        return 0;
}

/* BLOCK events and the BLOCKED batch (issue 11): decoded, and refused when
 * they name an unknown call, thread or stack. */
struct blocks {
        size_t nblock, nblocked;
        struct fr_event block;
        struct fr_blocked blocked;
        uint64_t block_frames[4], blocked_frames[4];
        char region[16];
};

static int blocks_cb(const struct fr_trace_header *h, const struct fr_generation *g, void *ud) {
        (void)h;
        struct blocks *b = ud;
        for (size_t i = 0; i < g->nevents; i++) {
                if (g->events[i].type != FR_EV_BLOCK)
                        continue;
                b->block = g->events[i];
                assert_true(b->block.nframes <= 4);
                if (b->block.nframes)
                        memcpy(b->block_frames, b->block.frames, b->block.nframes * sizeof(uint64_t));
                snprintf(b->region, sizeof b->region, "%s", s_(b->block.region));
                b->nblock++;
        }
        b->nblocked += g->nblocked;
        if (g->nblocked) {
                b->blocked = g->blocked[0];
                assert_true(b->blocked.nframes <= 4);
                if (b->blocked.nframes)
                        memcpy(b->blocked_frames, b->blocked.frames,
                               b->blocked.nframes * sizeof(uint64_t));
                assert_int_equal(g->blocked_time, 40);
        }
        return 0;
}

/* blocks_trace - thread 1 with one BLOCK event (call `call`) and a BLOCKED
 * entry for thread `btid` with stack `stack` (1: a defined one). */
static struct tg_trace *blocks_trace(uint64_t call, uint64_t btid, uint64_t stack, bool twice) {
        struct tg_trace *t = tg_trace_new();
        struct tg_gen *g = tg_gen_new(t, 0, 50);
        tg_status_thread(g, 1, "waiter");
        struct tg_batch *e = tg_events(g, 1, 0);
        tg_event_head(e, FR_EV_BLOCK, 30);
        tg_put_uvarint(e, call);
        tg_put_uvarint(e, 0x1000);     /* object */
        tg_put_uvarint(e, 25000000);   /* 25 ms */
        tg_put_uvarint(e, 0);          /* task */
        tg_put_uvarint(e, tg_string_id(g, "db"));
        tg_put_uvarint(e, 2);
        tg_put_uvarint(e, 0x400100);
        tg_put_uvarint(e, fr_zigzag(0x10));
        uint64_t sid = tg_stack_id(g, pcs, 3);
        struct tg_batch *b = tg_raw(g, FR_BATCH_BLOCKED, 0, 40);
        for (int k = 0; k < (twice ? 2 : 1); k++) {
                tg_put_uvarint(b, btid);
                tg_put_uvarint(b, FR_WAIT_MUTEX_LOCK);
                tg_put_uvarint(b, 0x2000);
                tg_put_uvarint(b, 7);          /* holder */
                tg_put_uvarint(b, 3000000000); /* waited 3 s */
                tg_put_uvarint(b, 0);
                tg_put_uvarint(b, 0);
                tg_put_uvarint(b, stack == 1 ? sid : stack);
        }
        return t;
}

static void test_blocks(void **state) {
        (void)state;
        uint8_t *data;
        size_t len;
        struct tg_trace *t = blocks_trace(FR_WAIT_READ, 1, 1, false);
        tg_trace_encode_free(t, &data, &len);
        for (int pass = 0; pass < 2; pass++) { /* the profile mode delivers them too */
                struct blocks b = {0};
                assert_int_equal(fr_trace_read(data, len, pass ? FR_READ_THREAD_EVENTS_ONLY : 0,
                                               blocks_cb, &b, NULL, NULL, 0),
                                 0);
                assert_int_equal(b.nblock, 1);
                assert_int_equal(b.block.wait_call, FR_WAIT_READ);
                assert_int_equal(b.block.wait_object, 0x1000);
                assert_int_equal(b.block.wait_ns, 25000000);
                assert_string_equal(b.region, "db");
                assert_int_equal(b.block.nframes, 2);
                assert_int_equal(b.block_frames[1], 0x400110);
                assert_int_equal(b.nblocked, 1);
                assert_int_equal(b.blocked.tid, 1);
                assert_int_equal(b.blocked.call, FR_WAIT_MUTEX_LOCK);
                assert_int_equal(b.blocked.holder, 7);
                assert_int_equal(b.blocked.waited_ns, 3000000000u);
                assert_int_equal(b.blocked.nframes, 3);
                assert_int_equal(b.blocked_frames[2], pcs[2]);
        }
        free(data);
        assert_string_equal(fr_wait_call_name(FR_WAIT_EPOLL_WAIT), "epoll_wait");
        assert_string_equal(fr_wait_call_name(FR_WAIT_CALL_MAX + 1), "unknown");
        trace_error(blocks_trace(0, 1, 1, false), "unknown BLOCK call 0");
        trace_error(blocks_trace(FR_WAIT_CALL_MAX + 1, 1, 1, false), "unknown BLOCK call");
        trace_error(blocks_trace(FR_WAIT_READ, 9, 1, false), "BLOCKED thread 9, which is neither");
        trace_error(blocks_trace(FR_WAIT_READ, 1, 77, false), "BLOCKED: undefined stack id 77");
        trace_error(blocks_trace(FR_WAIT_READ, 1, 1, true), "thread 1 listed twice in BLOCKED");
        /* A stack id of 0: listed without a stack. */
        struct blocks b = {0};
        assert_int_equal(read_trace(blocks_trace(FR_WAIT_READ, 1, 0, false), 0, blocks_cb, &b, NULL),
                         0);
        assert_int_equal(b.blocked.nframes, 0);
}

static void test_thread_events_only(void **state) {
        (void)state;
        uint8_t *data;
        size_t len;
        encode_sample(3, &data, &len);
        struct counts all = {0}, only = {0};
        assert_int_equal(fr_trace_read(data, len, 0, count_cb, &all, NULL, NULL, 0), 0);
        assert_int_equal(fr_trace_read(data, len, FR_READ_THREAD_EVENTS_ONLY, count_cb, &only,
                                       NULL, NULL, 0),
                         0);
        assert_int_equal(only.gens, 3);
        assert_int_equal(only.gens, all.gens);
        assert_int_equal(only.samples, all.samples);
        assert_int_equal(only.thread_events, all.thread_events);
        assert_true(all.thread_events >= 4);
        assert_true(all.other_events > 0);
        assert_int_equal(only.other_events, 0);
        /* Framing and event parsing are still checked: a cut trace fails. */
        char err[256];
        assert_int_equal(fr_trace_read(data, len - 3, FR_READ_THREAD_EVENTS_ONLY, NULL, NULL, NULL,
                                       err, sizeof err),
                         -EINVAL);
        free(data);
}

static void test_header_only(void **state) {
        (void)state;
        struct tg_trace *t = tg_trace_new();
        tg_trace_header(t, 1, "c", "e", "why", FR_HEADER_POSTMORTEM);
        size_t ngens = 9;
        assert_int_equal(read_trace(t, 0, NULL, NULL, &ngens), 0);
        assert_int_equal(ngens, 0);
}

/* Equal times across threads keep the file order; one thread's events may be
 * split over batches; samples are sorted by time across batches. */
static void test_sorted_stable(void **state) {
        (void)state;
        struct tg_trace *t = tg_trace_new();
        struct tg_gen *g = tg_gen_new(t, 0, 100);
        tg_status_thread(g, 1, NULL);
        tg_status_thread(g, 2, NULL);
        tg_status_thread(g, 3, NULL);
        struct tg_batch *b3 = tg_events(g, 3, 0), *b1 = tg_events(g, 1, 0), *b2 = tg_events(g, 2, 0);
        tg_log(b3, 10, 0, "c", "3a");
        tg_log(b1, 10, 0, "c", "1a");
        tg_log(b2, 5, 0, "c", "2a");
        tg_log(b2, 10, 0, "c", "2b");
        tg_log(b1, 20, 0, "c", "1b");
        struct tg_batch *b1b = tg_events(g, 1, 20);
        tg_log(b1b, 21, 0, "c", "1c");
        struct tg_batch *s2 = tg_samples(g, 2, 0), *s1 = tg_samples(g, 1, 0);
        tg_sample(s2, 30, 1, 0, NULL, pcs, 1);
        tg_sample(s2, 30, 1, 0, NULL, pcs + 1, 1);
        tg_sample(s1, 10, 1, 0, NULL, pcs + 2, 1);
        tg_sample(s1, 30, 1, 0, NULL, pcs, 1);
        assert_text(trace_text(t), "trace v1 pid=4242 comm=tgapp exe=/usr/bin/tgapp reason=test flags=0\n"
                                   "gen 1 [0,100] tps=1000000000 sampler=0/0\n"
                                   "thread 1 name=-\n"
                                   "thread 2 name=-\n"
                                   "thread 3 name=-\n"
                                   "ev 5 2 LOG task=0 cat=c msg=2a\n"
                                   "ev 10 3 LOG task=0 cat=c msg=3a\n"
                                   "ev 10 1 LOG task=0 cat=c msg=1a\n"
                                   "ev 10 2 LOG task=0 cat=c msg=2b\n"
                                   "ev 20 1 LOG task=0 cat=c msg=1b\n"
                                   "ev 21 1 LOG task=0 cat=c msg=1c\n"
                                   "sample 10 1 w=1 task=0 region=- stack=400010\n"
                                   "sample 30 2 w=1 task=0 region=- stack=400123\n"
                                   "sample 30 2 w=1 task=0 region=- stack=400456\n"
                                   "sample 30 1 w=1 task=0 region=- stack=400123\n");
}

/* Strings, stacks and maps may sit anywhere in the generation. */
static void test_tables_anywhere(void **state) {
        (void)state;
        for (int first = 0; first < 2; first++) {
                struct tg_trace *t = tg_trace_new();
                struct tg_gen *g = tg_gen_new(t, 0, 100);
                g->tables_first = first;
                tg_status_thread(g, 1, "t1");
                tg_map(g, 0x1000, 0x2000, 0, "/lib/x.so", "", 0);
                struct tg_batch *s = tg_samples(g, 1, 0);
                tg_sample(s, 50, 3, 0, "r", pcs, 3);
                assert_text(trace_text(t),
                            "trace v1 pid=4242 comm=tgapp exe=/usr/bin/tgapp reason=test flags=0\n"
                            "gen 1 [0,100] tps=1000000000 sampler=0/0\n"
                            "thread 1 name=t1\n"
                            "map 1000-2000 off=0 /lib/x.so bid=0\n"
                            "sample 50 1 w=3 task=0 region=r stack=400123,400456,400010\n");
        }
}

static int binary_cb(const struct fr_trace_header *h, const struct fr_generation *g, void *ud) {
        (void)h;
        int *calls = ud;
        (*calls)++;
        assert_int_equal(g->nevents, 1);
        assert_int_equal(g->events[0].message_len, 4);
        assert_memory_equal(g->events[0].message, "a\0b\n", 5); /* NUL-terminated copy */
        assert_null(g->events[0].category);
        return 0;
}

/* A log message may hold any byte, NUL included; the length tells. */
static void test_binary_message(void **state) {
        (void)state;
        struct tg_trace *t;
        struct tg_gen *g = thread_gen(&t, 1, 0, 100);
        struct tg_batch *b = tg_events(g, 1, 0);
        tg_event_head(b, FR_EV_LOG, 10);
        tg_put_uvarint(b, 0);
        tg_put_uvarint(b, 0);
        tg_put_string(b, "a\0b\n", 4);
        int calls = 0;
        assert_int_equal(read_trace(t, 0, binary_cb, &calls, NULL), 0);
        assert_int_equal(calls, 1);
}

static int stop_cb(const struct fr_trace_header *h, const struct fr_generation *g, void *ud) {
        (void)h;
        (void)ud;
        return g->gen == 2 ? 7 : 0;
}

static void test_callback_stops(void **state) {
        (void)state;
        size_t ngens;
        assert_int_equal(read_trace(sample_trace(3), 0, stop_cb, NULL, &ngens), 7);
        assert_int_equal(ngens, 2);
}

static void test_ticks_to_ns(void **state) {
        (void)state;
        struct fr_generation g = {.ticks_per_second = 1000000000};
        assert_int_equal(fr_ticks_to_ns(&g, 12345), 12345);
        g.ticks_per_second = 3;
        assert_int_equal(fr_ticks_to_ns(&g, 1), 333333333);
        assert_int_equal(fr_ticks_to_ns(&g, 3), 1000000000);
        g.ticks_per_second = 3000000000ull; /* a 3 GHz TSC, a day of ticks: no overflow */
        assert_int_equal(fr_ticks_to_ns(&g, 3000000000ull * 86400), 86400ull * 1000000000);
        g.ticks_per_second = 1;
        assert_int_equal(fr_ticks_to_ns(&g, UINT64_MAX), UINT64_MAX); /* saturates */
        g.ticks_per_second = 0;
        assert_int_equal(fr_ticks_to_ns(&g, 5), 0);
}

/* ------------------------------------------------------------------------ */
/* Truncation and framing                                                    */

static size_t encoded_len(int ngens) {
        uint8_t *data;
        size_t len;
        encode_sample(ngens, &data, &len);
        free(data);
        return len;
}

/* Every prefix of a valid trace: an error (never a crash) unless it ends at
 * a generation boundary; with FR_READ_ALLOW_PARTIAL_TAIL, the complete
 * generations before the cut. */
static void test_truncated_everywhere(void **state) {
        (void)state;
        size_t bounds[4], len, ngens;
        uint8_t *data;
        char err[512];
        for (int i = 0; i < 4; i++)
                bounds[i] = encoded_len(i);
        encode_sample(3, &data, &len);
        assert_int_equal(len, bounds[3]);
        for (size_t cut = 0; cut < len; cut++) {
                /* A copy of exactly cut bytes, so ASan sees any overread. */
                uint8_t *p = malloc(cut ? cut : 1);
                memcpy(p, data, cut);
                size_t complete = 0;
                bool boundary = false;
                for (int i = 0; i < 4; i++) {
                        if (cut >= bounds[i])
                                complete = (size_t)i;
                        boundary |= cut == bounds[i];
                }
                int r = fr_trace_read(p, cut, 0, NULL, NULL, &ngens, err, sizeof err);
                if (boundary) {
                        assert_int_equal(r, 0);
                        assert_int_equal(ngens, complete);
                } else {
                        if (r != -EINVAL || strncmp(err, "offset ", 7) ||
                            !(strstr(err, "truncated") || strstr(err, "input ends")))
                                fail_msg("cut %zu: ret %d: %s", cut, r, err);
                }
                r = fr_trace_read(p, cut, FR_READ_ALLOW_PARTIAL_TAIL, NULL, NULL, &ngens, err,
                                  sizeof err);
                if (cut < bounds[0]) {
                        assert_int_equal(r, -EINVAL); /* the header is never optional */
                } else {
                        if (r != 0)
                                fail_msg("cut %zu, partial: ret %d: %s", cut, r, err);
                        assert_int_equal(ngens, complete);
                        assert_string_equal(err, "");
                }
                free(p);
        }
        free(data);
}

/* Random corruption: the reader must never crash or read out of bounds
 * (this is a tiny, deterministic fuzzer; run it under ASan). */
static void test_corrupted_bytes(void **state) {
        (void)state;
        uint8_t *data, *p;
        size_t len;
        encode_sample(3, &data, &len);
        p = malloc(len);
        uint64_t x = 0x9e3779b97f4a7c15ull;
        for (int iter = 0; iter < 20000; iter++) {
                memcpy(p, data, len);
                int nflips = 1 + iter % 4;
                for (int k = 0; k < nflips; k++) {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        p[x % len] = (uint8_t)(x >> 32);
                }
                struct text txt = {0};
                char err[256];
                int r = fr_trace_read(p, len, iter & 1 ? FR_READ_ALLOW_PARTIAL_TAIL : 0, collect,
                                      &txt, NULL, err, sizeof err);
                assert_true(r == 0 || r == -EINVAL);
                if (r)
                        assert_true(strncmp(err, "offset ", 7) == 0);
                fr_buf_free(&txt.buf);
        }
        free(p);
        free(data);
}

static void test_bad_magic_version(void **state) {
        (void)state;
        static const uint8_t bad_magic[] = "FRTRACX\0\1\0\0\0\0\0";
        expect_error(bad_magic, sizeof bad_magic - 1, 0, "offset 0: bad magic");
        expect_error((const uint8_t *)"FRT", 3, 0, "truncated header");
        expect_error((const uint8_t *)"", 0, 0, "truncated header");
        expect_error(NULL, 0, 0, "truncated header");

        struct fr_buf h = {0};
        fr_buf_put_bytes(&h, FR_TRACE_MAGIC, FR_TRACE_MAGIC_LEN);
        fr_buf_put_uvarint(&h, 2);
        expect_error(h.data, h.len, 0, "offset 8: unsupported trace version 2");
        fr_buf_free(&h);

        /* comm longer than 256 bytes */
        char comm[300];
        memset(comm, 'c', sizeof comm);
        fr_buf_put_bytes(&h, FR_TRACE_MAGIC, FR_TRACE_MAGIC_LEN);
        fr_buf_put_uvarint(&h, 1);
        fr_buf_put_uvarint(&h, 1);
        fr_buf_put_string(&h, comm, 257);
        expect_error(h.data, h.len, 0, "header comm of 257 bytes exceeds the limit of 256");
        fr_buf_free(&h);
}

static void test_bad_batch_header(void **state) {
        (void)state;
        uint8_t *data;
        size_t len;
        struct fr_buf b = {0};
        encode_sample(1, &data, &len);

        /* After a valid generation: a batch larger than 1 MiB. */
        fr_buf_put_bytes(&b, data, len);
        fr_buf_put_u8(&b, FR_BATCH_CLOCK);
        fr_buf_put_uvarint(&b, 2);
        fr_buf_put_uvarint(&b, 0);
        fr_buf_put_uvarint(&b, 0);
        fr_buf_put_uvarint(&b, FR_MAX_BATCH_BYTES + 1);
        expect_error(b.data, b.len, FR_READ_ALLOW_PARTIAL_TAIL, "exceeds the limit of 1048576");
        b.len = len;
        /* An unknown kind. */
        fr_buf_put_u8(&b, FR_BATCH_KIND_MAX + 1);
        expect_error(b.data, b.len, FR_READ_ALLOW_PARTIAL_TAIL, "unknown batch kind 11");
        b.len = len;
        /* An 11-byte varint in the header. */
        fr_buf_put_u8(&b, FR_BATCH_CLOCK);
        for (int i = 0; i < 10; i++)
                fr_buf_put_u8(&b, 0x80);
        fr_buf_put_u8(&b, 0);
        expect_error(b.data, b.len, FR_READ_ALLOW_PARTIAL_TAIL, "malformed varint");
        b.len = len;
        /* A 10-byte varint above 2^64-1. */
        fr_buf_put_u8(&b, FR_BATCH_CLOCK);
        for (int i = 0; i < 9; i++)
                fr_buf_put_u8(&b, 0xff);
        fr_buf_put_u8(&b, 0x02);
        expect_error(b.data, b.len, FR_READ_ALLOW_PARTIAL_TAIL, "malformed varint");
        b.len = len;
        /* Generation 0. */
        fr_buf_put_batch(&b, FR_BATCH_CLOCK, 0, 0, 0, NULL, 0);
        expect_error(b.data, b.len, 0, "generation number 0");
        fr_buf_free(&b);
        free(data);
}

static void test_nonconsecutive_generations(void **state) {
        (void)state;
        struct tg_trace *t = sample_trace(2);
        struct tg_gen *g = tg_gen_new(t, 3000, 4000);
        g->num = 4;
        trace_error(t, "generation 4 follows generation 2 (generations must be consecutive)");

        /* Going backwards is no better. */
        t = sample_trace(2);
        g = tg_gen_new(t, 3000, 4000);
        g->num = 1;
        trace_error(t, "generation 1 follows generation 2");

        /* A trace may start at any generation. */
        t = tg_trace_new();
        g = tg_gen_new(t, 0, 10);
        g->num = 1000;
        g = tg_gen_new(t, 10, 20);
        assert_int_equal(g->num, 1001);
        free(trace_text(t));
}

static void test_missing_end(void **state) {
        (void)state;
        /* Generation 1 without END, followed by generation 2. */
        struct tg_trace *t = tg_trace_new();
        struct tg_gen *g = tg_gen_new(t, 0, 10);
        g->no_end = true;
        tg_gen_new(t, 10, 20);
        trace_error(t, "generation 1: CLOCK batch of generation 2 before this generation's END");

        /* The last generation without END. */
        t = sample_trace(2);
        g = tg_gen_new(t, 3000, 4000);
        g->no_end = true;
        partial_tail_error(t, "generation 3: input ends before the END batch", 2);

        /* A batch of the wrong generation inside one. */
        t = tg_trace_new();
        g = tg_gen_new(t, 0, 10);
        tg_batch_gen(tg_events(g, 1, 0), 5);
        trace_error(t, "EVENTS batch of generation 5 before this generation's END");
}

static void test_wrong_end_count(void **state) {
        (void)state;
        for (int delta = -1; delta <= 1; delta += 2) {
                struct tg_trace *t = tg_trace_new();
                struct tg_gen *g = tg_gen_new(t, 0, 10);
                g->end_count_delta = delta;
                tg_gen_new(t, 10, 20);
                trace_error(t, delta < 0 ? "END counts 1 batches but the generation has 2"
                                         : "END counts 3 batches but the generation has 2");
        }
        /* In the last generation: incomplete, so allowed as a partial tail. */
        struct tg_trace *t = sample_trace(2);
        struct tg_gen *g = tg_gen_new(t, 3000, 4000);
        g->end_count_delta = 1;
        partial_tail_error(t, "generation 3: END counts 4 batches but the generation has 3", 2);
}

static void test_clock_status_counts(void **state) {
        (void)state;
        struct tg_trace *t = tg_trace_new();
        tg_gen_new(t, 0, 10)->no_clock = true;
        trace_error(t, "generation 1: no CLOCK batch");
        t = tg_trace_new();
        tg_gen_new(t, 0, 10)->no_status = true;
        trace_error(t, "generation 1: no STATUS batch");
        t = tg_trace_new();
        tg_gen_new(t, 0, 10)->extra_clock = true;
        trace_error(t, "second CLOCK batch");
        t = tg_trace_new();
        tg_gen_new(t, 0, 10)->extra_status = true;
        trace_error(t, "second STATUS batch");
        t = tg_trace_new();
        tg_gen_new(t, 0, 10)->ticks_per_second = 0;
        trace_error(t, "CLOCK ticks_per_second is 0");
        t = tg_trace_new();
        tg_gen_new(t, 0, 10)->sampler = 7;
        trace_error(t, "unknown CLOCK sampler kind 7");
        t = tg_trace_new();
        tg_gen_new(t, 20, 10);
        trace_error(t, "END time 10 is before the generation start 20");
        /* A generation-wide batch with a thread id, an EVENTS batch without. */
        t = tg_trace_new();
        tg_raw(tg_gen_new(t, 0, 10), FR_BATCH_STRINGS, 3, 0);
        trace_error(t, "STRINGS batch with thread id 3 (must be 0)");
        t = tg_trace_new();
        tg_events(tg_gen_new(t, 0, 10), 0, 0);
        trace_error(t, "EVENTS batch with thread id 0");
        /* Trailing bytes in CLOCK (after the optional unwind kind). */
        t = tg_trace_new();
        struct tg_gen *g = tg_gen_new(t, 0, 10);
        g->no_clock = true;
        struct tg_batch *c = tg_raw(g, FR_BATCH_CLOCK, 0, 0);
        for (int i = 0; i < 7; i++)
                tg_put_uvarint(c, 1);
        trace_error(t, "1 trailing bytes in the CLOCK payload");
        /* An unwind kind this reader does not know. */
        t = tg_trace_new();
        g = tg_gen_new(t, 0, 10);
        g->no_clock = true;
        c = tg_raw(g, FR_BATCH_CLOCK, 0, 0);
        for (int i = 0; i < 5; i++)
                tg_put_uvarint(c, 1);
        tg_put_uvarint(c, 9);
        trace_error(t, "unknown CLOCK unwind kind 9");
}

/* ------------------------------------------------------------------------ */
/* Tables                                                                    */

static void test_string_ids(void **state) {
        (void)state;
        struct tg_trace *t = tg_trace_new();
        struct tg_gen *g = tg_gen_new(t, 0, 10);
        tg_string_raw(g, 0, "x", 1);
        trace_error(t, "string id 0 (ids start at 1)");

        t = tg_trace_new();
        g = tg_gen_new(t, 0, 10);
        tg_string_raw(g, 5, "x", 1);
        tg_string_raw(g, 5, "y", 1);
        trace_error(t, "string id 5 defined twice");

        /* A reference to an id not in this generation's table. */
        g = thread_gen(&t, 1, 0, 10);
        struct tg_batch *b = tg_events(g, 1, 0);
        tg_event_head(b, FR_EV_REGION_BEGIN, 1);
        tg_put_uvarint(b, 0);
        tg_put_uvarint(b, 99);
        trace_error(t, "region name: undefined string id 99");

        /* Ids are per generation: generation 2 cannot use generation 1's. */
        g = thread_gen(&t, 1, 0, 10);
        uint64_t id = tg_string_id(g, "cat");
        g = tg_gen_new(t, 10, 20);
        b = tg_events(g, 1, 10);
        tg_event_head(b, FR_EV_LOG, 11);
        tg_put_uvarint(b, 0);
        tg_put_uvarint(b, id);
        tg_put_string(b, "m", 1);
        trace_error(t, "generation 2: LOG category: undefined string id 1");

        /* A string longer than 4096 bytes. */
        char big[5000];
        memset(big, 'x', sizeof big);
        t = tg_trace_new();
        tg_string_raw(tg_gen_new(t, 0, 10), 1, big, 4097);
        trace_error(t, "string of 4097 bytes exceeds the limit of 4096");
        t = tg_trace_new();
        tg_string_raw(tg_gen_new(t, 0, 10), 1, big, 4096);
        free(trace_text(t));

        /* A string length past the end of the batch. */
        t = tg_trace_new();
        b = tg_raw(tg_gen_new(t, 0, 10), FR_BATCH_STRINGS, 0, 0);
        tg_put_uvarint(b, 1);
        tg_put_uvarint(b, 10);
        tg_put_bytes(b, "abc", 3);
        trace_error(t, "truncated string: 10 bytes, 3 left");
}

static void test_stacks_and_samples(void **state) {
        (void)state;
        uint64_t frames[FR_MAX_STACK_FRAMES + 1];
        for (int i = 0; i <= FR_MAX_STACK_FRAMES; i++)
                frames[i] = 0x1000 + 16 * (uint64_t)i;
        /* 128 frames is fine, 129 is not. */
        struct tg_trace *t;
        struct tg_gen *g = thread_gen(&t, 1, 0, 10);
        tg_sample(tg_samples(g, 1, 0), 5, 1, 0, NULL, frames, FR_MAX_STACK_FRAMES);
        free(trace_text(t));
        t = tg_trace_new();
        g = tg_gen_new(t, 0, 10);
        tg_stack_id(g, frames, FR_MAX_STACK_FRAMES + 1);
        trace_error(t, "stack frame count 129 exceeds the limit of 128");

        /* Frames going down as well as up (zigzag deltas), and wrapping. */
        uint64_t odd[] = {0xffffffffffff0000ull, 0x10, 0xffffffffffff0000ull, 0x8};
        g = thread_gen(&t, 1, 0, 10);
        tg_sample(tg_samples(g, 1, 0), 5, 1, 0, NULL, odd, 4);
        char *text = trace_text(t);
        assert_non_null(strstr(text, "stack=ffffffffffff0000,10,ffffffffffff0000,8\n"));
        free(text);

        struct tg_batch *b;
        t = tg_trace_new();
        b = tg_raw(tg_gen_new(t, 0, 10), FR_BATCH_STACKS, 0, 0);
        tg_put_uvarint(b, 1);
        tg_put_uvarint(b, 0);
        trace_error(t, "stack 1 has no frames");
        t = tg_trace_new();
        b = tg_raw(tg_gen_new(t, 0, 10), FR_BATCH_STACKS, 0, 0);
        tg_put_uvarint(b, 0);
        trace_error(t, "stack id 0 (ids start at 1)");

        /* An undefined stack, a zero weight, a thread unknown in the generation. */
        g = thread_gen(&t, 1, 0, 10);
        b = tg_samples(g, 1, 0);
        tg_put_uvarint(b, 1);
        tg_put_uvarint(b, 1);
        tg_put_uvarint(b, 0);
        tg_put_uvarint(b, 0);
        tg_put_uvarint(b, 3);
        trace_error(t, "sample: undefined stack id 3");
        /* Stack id 0 is not a sample but a count of lost ones (its weight). */
        g = thread_gen(&t, 1, 0, 10);
        tg_sample(tg_samples(g, 1, 0), 1, 1, 0, NULL, pcs, 2);
        b = tg_samples(g, 1, 2);
        tg_put_uvarint(b, 0);
        tg_put_uvarint(b, 7);
        tg_put_uvarint(b, 0);
        tg_put_uvarint(b, 0);
        tg_put_uvarint(b, 0);
        struct lost_count lc = {0};
        assert_int_equal(read_trace(t, 0, count_lost, &lc, NULL), 0);
        assert_int_equal(lc.lost, 7);
        assert_int_equal(lc.samples, 1);
        /* ... and a lost count of 0 is refused like any weight 0. */
        g = thread_gen(&t, 1, 0, 10);
        b = tg_samples(g, 1, 0);
        for (int i = 0; i < 5; i++)
                tg_put_uvarint(b, 0);
        trace_error(t, "sample weight 0");
        g = thread_gen(&t, 1, 0, 10);
        tg_sample(tg_samples(g, 1, 0), 5, 0, 0, NULL, pcs, 1);
        trace_error(t, "sample weight 0");
        g = thread_gen(&t, 1, 0, 10);
        tg_sample(tg_samples(g, 2, 0), 5, 1, 0, NULL, pcs, 1);
        trace_error(t, "SAMPLES batch of thread 2, which is neither in STATUS nor has an EVENTS "
                       "batch in this generation");
        /* ... but an EVENTS batch anywhere in the generation makes it known. */
        t = tg_trace_new();
        g = tg_gen_new(t, 0, 10);
        tg_sample(tg_samples(g, 2, 0), 5, 1, 0, NULL, pcs, 1);
        tg_thread_start(tg_events(g, 2, 0), 1);
        free(trace_text(t));
        /* Samples outside the generation's span. */
        g = thread_gen(&t, 1, 100, 200);
        tg_sample(tg_samples(g, 1, 0), 99, 1, 0, NULL, pcs, 1);
        trace_error(t, "sample at time 99 is outside the generation's span [100, 200]");
        g = thread_gen(&t, 1, 100, 200);
        tg_sample(tg_samples(g, 1, 100), 201, 1, 0, NULL, pcs, 1);
        trace_error(t, "sample at time 201 is outside");
}

static void test_maps(void **state) {
        (void)state;
        char big[FR_MAX_PATH_BYTES + 2];
        memset(big, 'p', sizeof big - 1);
        big[sizeof big - 1] = 0;
        struct tg_trace *t = tg_trace_new();
        tg_map(tg_gen_new(t, 0, 10), 0x2000, 0x2000, 0, "/x", "", 0);
        trace_error(t, "map limit 0x2000 is not above its start 0x2000");
        t = tg_trace_new();
        tg_map(tg_gen_new(t, 0, 10), 0x1000, 0x2000, 0, big, "", 0);
        trace_error(t, "map path of 4097 bytes exceeds the limit of 4096");
        t = tg_trace_new();
        tg_map(tg_gen_new(t, 0, 10), 0x1000, 0x2000, 0, "/x", big, 65);
        trace_error(t, "map build id of 65 bytes exceeds the limit of 64");
}

/* ------------------------------------------------------------------------ */
/* Events                                                                    */

static void test_event_encoding(void **state) {
        (void)state;
        struct tg_trace *t;
        struct tg_gen *g = thread_gen(&t, 1, 0, 10);
        tg_event_head(tg_events(g, 1, 0), 0, 1);
        trace_error(t, "unknown event type 0");
        g = thread_gen(&t, 1, 0, 10);
        tg_event_head(tg_events(g, 1, 0), FR_EV_TYPE_MAX + 1, 1);
        trace_error(t, "unknown event type 11");
        g = thread_gen(&t, 1, 0, 10);
        tg_lost(tg_events(g, 1, 0), 1, 4, 1);
        trace_error(t, "unknown LOST kind 4");
        g = thread_gen(&t, 1, 0, 10);
        tg_task_begin(tg_events(g, 1, 0), 1, 0, 0, "t");
        trace_error(t, "TASK_BEGIN task id is 0 (task ids start at 1)");
        /* An event cut short by the end of its batch. */
        g = thread_gen(&t, 1, 0, 10);
        struct tg_batch *b = tg_events(g, 1, 0);
        tg_event_head(b, FR_EV_TASK_BEGIN, 1);
        tg_put_uvarint(b, 1);
        trace_error(t, "truncated TASK_BEGIN parent");
        /* A malformed varint inside an event. */
        g = thread_gen(&t, 1, 0, 10);
        b = tg_events(g, 1, 0);
        tg_event_head(b, FR_EV_TASK_END, 1);
        for (int i = 0; i < 11; i++)
                tg_put_u8(b, 0xff);
        tg_put_u8(b, 0);
        trace_error(t, "malformed varint for TASK_END task id");
        /* Log messages up to 4096 bytes. */
        char big[FR_MAX_LOG_BYTES + 2];
        memset(big, 'm', sizeof big - 1);
        big[sizeof big - 1] = 0;
        g = thread_gen(&t, 1, 0, 10);
        tg_log(tg_events(g, 1, 0), 1, 0, "c", big);
        trace_error(t, "LOG message of 4097 bytes exceeds the limit of 4096");
        big[FR_MAX_LOG_BYTES] = 0;
        g = thread_gen(&t, 1, 0, 10);
        tg_log(tg_events(g, 1, 0), 1, 0, "c", big);
        free(trace_text(t));
}

static void test_region_mismatch(void **state) {
        (void)state;
        struct tg_trace *t;
        struct tg_gen *g = thread_gen(&t, 77, 0, 100);
        struct tg_batch *b = tg_events(g, 77, 0);
        tg_region_begin(b, 1, 0, "bar");
        tg_region_end(b, 2, 0, "foo");
        uint8_t *data;
        size_t len;
        char err[512];
        tg_trace_encode_free(t, &data, &len);
        assert_int_equal(fr_trace_read(data, len, 0, NULL, NULL, NULL, err, sizeof err), -EINVAL);
        /* The offset is that of the REGION_END event (4 bytes), which comes
         * just before the string table ('bar' and 'foo') and the END batch. */
        char want[256];
        size_t end_batch = 5 + 1, strings = 5 + 2 * (1 + 1 + 3);
        snprintf(want, sizeof want,
                 "offset %zu: generation 1: region end 'foo' (task 0) does not match innermost "
                 "open region 'bar' (task 0) of thread 77",
                 len - end_batch - strings - 4);
        assert_string_equal(err, want);
        free(data);

        /* Same name, other task. */
        g = thread_gen(&t, 77, 0, 100);
        b = tg_events(g, 77, 0);
        tg_region_begin(b, 1, 1, "r");
        tg_region_end(b, 2, 2, "r");
        trace_error(t, "region end 'r' (task 2) does not match innermost open region 'r' (task 1)");
        /* Ending the outer one first. */
        g = thread_gen(&t, 77, 0, 100);
        b = tg_events(g, 77, 0);
        tg_region_begin(b, 1, 0, "outer");
        tg_region_begin(b, 2, 0, "inner");
        tg_region_end(b, 3, 0, "outer");
        trace_error(t, "region end 'outer' (task 0) does not match innermost open region 'inner'");
        /* Nothing open. */
        g = thread_gen(&t, 77, 0, 100);
        tg_region_end(tg_events(g, 77, 0), 1, 0, "x");
        trace_error(t, "region end 'x' (task 0) on thread 77, which has no open region");
        /* Names compare by content, whatever their ids. */
        g = thread_gen(&t, 77, 0, 100);
        tg_string_raw(g, 100, "same", 4);
        tg_string_raw(g, 101, "same", 4);
        b = tg_events(g, 77, 0);
        tg_event_head(b, FR_EV_REGION_BEGIN, 1);
        tg_put_uvarint(b, 0);
        tg_put_uvarint(b, 100);
        tg_event_head(b, FR_EV_REGION_END, 2);
        tg_put_uvarint(b, 0);
        tg_put_uvarint(b, 101);
        free(trace_text(t));
}

static void test_region_depth(void **state) {
        (void)state;
        struct tg_trace *t;
        struct tg_gen *g = thread_gen(&t, 1, 0, 1000);
        struct tg_batch *b = tg_events(g, 1, 0);
        for (int i = 0; i < FR_MAX_REGION_DEPTH; i++)
                tg_region_begin(b, 1 + (uint64_t)i, 0, "r");
        /* 64 deep is fine, and carries over to the next generation's STATUS. */
        g = tg_gen_new(t, 1000, 2000);
        tg_region_end(tg_events(g, 1, 1000), 1001, 0, "r");
        free(trace_text(t));

        g = thread_gen(&t, 1, 0, 1000);
        b = tg_events(g, 1, 0);
        for (int i = 0; i <= FR_MAX_REGION_DEPTH; i++)
                tg_region_begin(b, 1 + (uint64_t)i, 0, "r");
        trace_error(t, "region begin 'r' takes thread 1 past the region depth limit of 64");

        t = tg_trace_new();
        g = tg_gen_new(t, 0, 1000);
        for (int i = 0; i <= FR_MAX_REGION_DEPTH; i++)
                tg_status_region(g, 1, 0, "r");
        trace_error(t, "STATUS region count 65 exceeds the limit of 64");
}

static void test_times(void **state) {
        (void)state;
        /* Equal times on one thread. */
        struct tg_trace *t;
        struct tg_gen *g = thread_gen(&t, 1, 0, 100);
        struct tg_batch *b = tg_events(g, 1, 0);
        tg_log(b, 5, 0, "c", "a");
        tg_log(b, 5, 0, "c", "b");
        trace_error(t, "LOG at time 5 on thread 1 is not after the thread's previous event at 5");
        /* Going back in a later batch of the same thread. */
        g = thread_gen(&t, 1, 0, 100);
        tg_log(tg_events(g, 1, 0), 50, 0, "c", "a");
        tg_log(tg_events(g, 1, 0), 40, 0, "c", "b");
        trace_error(t, "LOG at time 40 on thread 1 is not after the thread's previous event at 50");
        /* Before the start, after the end. */
        g = thread_gen(&t, 1, 100, 200);
        tg_log(tg_events(g, 1, 50), 99, 0, "c", "a");
        trace_error(t, "LOG at time 99 is outside the generation's span [100, 200]");
        g = thread_gen(&t, 1, 100, 200);
        tg_thread_name(tg_events(g, 1, 100), 201, "x");
        trace_error(t, "THREAD_NAME at time 201 is outside the generation's span [100, 200]");
        /* At both ends of the span is fine. */
        g = thread_gen(&t, 1, 100, 200);
        b = tg_events(g, 1, 100);
        tg_log(b, 100, 0, "c", "a");
        tg_log(b, 200, 0, "c", "b");
        free(trace_text(t));
        /* A delta that overflows. */
        g = thread_gen(&t, 1, 100, 200);
        b = tg_events(g, 1, 100);
        tg_log(b, 150, 0, "c", "a");
        tg_log(b, 149, 0, "c", "b"); /* delta wraps to 2^64-1 */
        trace_error(t, "LOG time overflows 2^64");
}

/* ------------------------------------------------------------------------ */
/* Threads and tasks                                                         */

static void test_thread_rules(void **state) {
        (void)state;
        /* Events of a thread absent from STATUS that never started. */
        struct tg_trace *t = tg_trace_new();
        struct tg_gen *g = tg_gen_new(t, 0, 100);
        tg_log(tg_events(g, 5, 0), 1, 0, "c", "m");
        trace_error(t, "LOG on thread 5, which is not alive (absent from STATUS or exited): its "
                       "batch must begin with THREAD_START");
        /* Reuse of a tid after its exit without THREAD_START. */
        t = tg_trace_new();
        g = tg_gen_new(t, 0, 100);
        tg_status_thread(g, 5, "old");
        tg_thread_exit(tg_events(g, 5, 0), 10);
        tg_thread_name(tg_events(g, 5, 10), 20, "new");
        trace_error(t, "THREAD_NAME on thread 5, which is not alive");
        /* ... and in the next generation. */
        t = tg_trace_new();
        g = tg_gen_new(t, 0, 100);
        tg_status_thread(g, 5, "old");
        tg_thread_exit(tg_events(g, 5, 0), 10);
        g = tg_gen_new(t, 100, 200);
        tg_log(tg_events(g, 5, 100), 110, 0, "c", "m");
        trace_error(t, "generation 2: LOG on thread 5, which is not alive");
        /* THREAD_START of a live thread. */
        g = thread_gen(&t, 5, 0, 100);
        tg_thread_start(tg_events(g, 5, 0), 1);
        trace_error(t, "THREAD_START of thread 5, which is already alive");
        /* STATUS listing a thread twice, or a task twice. */
        t = tg_trace_new();
        g = tg_gen_new(t, 0, 100);
        g->no_status = true;
        struct tg_batch *b = tg_raw(g, FR_BATCH_STATUS, 0, 0);
        tg_put_uvarint(b, 2);
        for (int i = 0; i < 2; i++) {
                tg_put_uvarint(b, 9);
                tg_put_uvarint(b, 0);
                tg_put_uvarint(b, 0);
        }
        tg_put_uvarint(b, 0);
        trace_error(t, "thread 9 listed twice in STATUS");
        t = tg_trace_new();
        g = tg_gen_new(t, 0, 100);
        g->no_status = true;
        b = tg_raw(g, FR_BATCH_STATUS, 0, 0);
        tg_put_uvarint(b, 0);
        tg_put_uvarint(b, 2);
        for (int i = 0; i < 2; i++) {
                tg_put_uvarint(b, 4);
                tg_put_uvarint(b, 0);
                tg_put_uvarint(b, 0);
        }
        trace_error(t, "task 4 listed twice in STATUS");
        /* A thread count larger than the payload could hold. */
        t = tg_trace_new();
        g = tg_gen_new(t, 0, 100);
        g->no_status = true;
        b = tg_raw(g, FR_BATCH_STATUS, 0, 0);
        tg_put_uvarint(b, 1000000000);
        trace_error(t, "STATUS thread count 1000000000 exceeds the 0 bytes left in the batch");
        /* A task begun twice. */
        g = thread_gen(&t, 1, 0, 100);
        b = tg_events(g, 1, 0);
        tg_task_begin(b, 1, 3, 0, "a");
        tg_task_begin(b, 2, 3, 0, "b");
        trace_error(t, "TASK_BEGIN of task 3, which is already open");
}

/* Generation-boundary edge cases. */

/* A task begun in generation 1, listed open in 2's STATUS, ended in 3; and a
 * TASK_END of a task the reader never saw begin. */
static void test_task_across_generations(void **state) {
        (void)state;
        struct tg_trace *t = tg_trace_new();
        struct tg_gen *g = tg_gen_new(t, 0, 100);
        tg_status_thread(g, 1, "m");
        tg_task_begin(tg_events(g, 1, 0), 10, 42, 7, "long");
        g = tg_gen_new(t, 100, 200);
        g = tg_gen_new(t, 200, 300);
        struct tg_batch *b = tg_events(g, 1, 200);
        tg_task_end(b, 250, 42);
        tg_task_end(b, 260, 1234);
        tg_gen_new(t, 300, 400);
        assert_text(trace_text(t), "trace v1 pid=4242 comm=tgapp exe=/usr/bin/tgapp reason=test flags=0\n"
                                   "gen 1 [0,100] tps=1000000000 sampler=0/0\n"
                                   "thread 1 name=m\n"
                                   "ev 10 1 TASK_BEGIN task=42 parent=7 name=long\n"
                                   "gen 2 [100,200] tps=1000000000 sampler=0/0\n"
                                   "thread 1 name=m\n"
                                   "task 42 parent=7 name=long\n"
                                   "gen 3 [200,300] tps=1000000000 sampler=0/0\n"
                                   "thread 1 name=m\n"
                                   "task 42 parent=7 name=long\n"
                                   "ev 250 1 TASK_END task=42\n"
                                   "ev 260 1 TASK_END task=1234\n"
                                   "gen 4 [300,400] tps=1000000000 sampler=0/0\n"
                                   "thread 1 name=m\n");
        /* A task begun on one thread may end on another. */
        t = tg_trace_new();
        g = tg_gen_new(t, 0, 100);
        tg_status_thread(g, 1, NULL);
        tg_status_thread(g, 2, NULL);
        b = tg_events(g, 2, 0); /* first in the file, later in time */
        struct tg_batch *b1 = tg_events(g, 1, 0);
        tg_task_begin(b1, 10, 5, 0, "x");
        tg_task_end(b, 20, 5);
        tg_gen_new(t, 100, 200);
        free(trace_text(t));
}

/* The trace starts at generation 5, whose STATUS holds a region whose begin
 * was dropped with the older generations; it stays open over 5 and 6 and is
 * ended in 7. */
static void test_region_begin_dropped(void **state) {
        (void)state;
        struct tg_trace *t = tg_trace_new();
        struct tg_gen *g = tg_gen_new(t, 5000, 6000);
        g->num = 5;
        tg_status_thread(g, 9, "loader");
        tg_status_task(g, 3, 0, "boot");
        tg_status_region(g, 9, 3, "load");
        tg_status_region(g, 9, 0, "read");
        tg_region_end(tg_events(g, 9, 5000), 5500, 0, "read");
        g = tg_gen_new(t, 6000, 7000);
        g = tg_gen_new(t, 7000, 8000);
        struct tg_batch *b = tg_events(g, 9, 7000);
        tg_region_end(b, 7100, 3, "load");
        tg_task_end(b, 7200, 3);
        assert_text(trace_text(t), "trace v1 pid=4242 comm=tgapp exe=/usr/bin/tgapp reason=test flags=0\n"
                                   "gen 5 [5000,6000] tps=1000000000 sampler=0/0\n"
                                   "thread 9 name=loader [3 load] [0 read]\n"
                                   "task 3 parent=0 name=boot\n"
                                   "ev 5500 9 REGION_END task=0 name=read\n"
                                   "gen 6 [6000,7000] tps=1000000000 sampler=0/0\n"
                                   "thread 9 name=loader [3 load]\n"
                                   "task 3 parent=0 name=boot\n"
                                   "gen 7 [7000,8000] tps=1000000000 sampler=0/0\n"
                                   "thread 9 name=loader [3 load]\n"
                                   "task 3 parent=0 name=boot\n"
                                   "ev 7100 9 REGION_END task=3 name=load\n"
                                   "ev 7200 9 TASK_END task=3\n");
        /* Ending it with the wrong name is still caught. */
        t = tg_trace_new();
        g = tg_gen_new(t, 5000, 6000);
        g->num = 5;
        tg_status_region(g, 9, 3, "load");
        tg_region_end(tg_events(g, 9, 5000), 5500, 3, "lode");
        trace_error(t, "generation 5: region end 'lode' (task 3) does not match innermost open "
                       "region 'load' (task 3) of thread 9");
}

/* A thread exits in generation 1 (while the advance to 2 is under way) and is
 * absent from generation 2's STATUS. Listing it there is an error. */
static void test_thread_exit_at_advance(void **state) {
        (void)state;
        struct tg_trace *t = tg_trace_new();
        struct tg_gen *g = tg_gen_new(t, 0, 100);
        tg_status_thread(g, 1, "a");
        tg_status_thread(g, 2, "b");
        tg_status_region(g, 2, 0, "work");
        tg_thread_exit(tg_events(g, 2, 0), 100); /* at the very end of the span */
        g = tg_gen_new(t, 100, 200);
        tg_log(tg_events(g, 1, 100), 100, 0, "c", "still here");
        assert_text(trace_text(t), "trace v1 pid=4242 comm=tgapp exe=/usr/bin/tgapp reason=test flags=0\n"
                                   "gen 1 [0,100] tps=1000000000 sampler=0/0\n"
                                   "thread 1 name=a\n"
                                   "thread 2 name=b [0 work]\n"
                                   "ev 100 2 THREAD_EXIT\n"
                                   "gen 2 [100,200] tps=1000000000 sampler=0/0\n"
                                   "thread 1 name=a\n"
                                   "ev 100 1 LOG task=0 cat=c msg=still here\n");

        t = tg_trace_new();
        g = tg_gen_new(t, 0, 100);
        tg_status_thread(g, 1, "a");
        tg_status_thread(g, 2, "b");
        tg_thread_exit(tg_events(g, 2, 0), 90);
        g = tg_gen_new(t, 100, 200);
        tg_status_thread(g, 2, "b"); /* the recorder missed the exit */
        trace_error(t, "generation 2: STATUS lists thread 2, which was not alive at the end of "
                       "generation 1");
}

/* A thread id reused: exit then THREAD_START in the same generation, and
 * exit in one generation then THREAD_START in a later one. */
static void test_tid_reuse(void **state) {
        (void)state;
        struct tg_trace *t = tg_trace_new();
        struct tg_gen *g = tg_gen_new(t, 0, 100);
        tg_status_thread(g, 5, "first");
        tg_status_region(g, 5, 0, "r");
        tg_thread_exit(tg_events(g, 5, 0), 10);
        struct tg_batch *b = tg_events(g, 5, 10);
        tg_thread_start(b, 20);
        tg_thread_name(b, 21, "second");
        tg_thread_exit(b, 30);
        g = tg_gen_new(t, 100, 200);
        g = tg_gen_new(t, 200, 300);
        b = tg_events(g, 5, 200);
        tg_thread_start(b, 210);
        tg_region_begin(b, 220, 0, "again");
        g = tg_gen_new(t, 300, 400);
        assert_text(trace_text(t), "trace v1 pid=4242 comm=tgapp exe=/usr/bin/tgapp reason=test flags=0\n"
                                   "gen 1 [0,100] tps=1000000000 sampler=0/0\n"
                                   "thread 5 name=first [0 r]\n"
                                   "ev 10 5 THREAD_EXIT\n"
                                   "ev 20 5 THREAD_START\n"
                                   "ev 21 5 THREAD_NAME name=second\n"
                                   "ev 30 5 THREAD_EXIT\n"
                                   "gen 2 [100,200] tps=1000000000 sampler=0/0\n"
                                   "gen 3 [200,300] tps=1000000000 sampler=0/0\n"
                                   "ev 210 5 THREAD_START\n"
                                   "ev 220 5 REGION_BEGIN task=0 name=again\n"
                                   "gen 4 [300,400] tps=1000000000 sampler=0/0\n"
                                   "thread 5 name=- [0 again]\n");
}

/* STATUS must equal the state the previous generation ended with.
 * two_gens - a new trace in *ret_t: a generation with two threads, two
 * tasks and two open regions, then the second one, returned. */
static struct tg_gen *two_gens(struct tg_trace **ret_t) {
        struct tg_trace *t = *ret_t = tg_trace_new();
        struct tg_gen *g = tg_gen_new(t, 0, 100);
        tg_status_thread(g, 1, "one");
        tg_status_thread(g, 2, "two");
        tg_status_task(g, 10, 0, "t10");
        tg_status_task(g, 11, 10, "t11");
        struct tg_batch *b = tg_events(g, 1, 0);
        tg_region_begin(b, 5, 10, "outer");
        tg_region_begin(b, 6, 11, "inner");
        return tg_gen_new(t, 100, 200);
}

static void test_status_mismatch(void **state) {
        (void)state;
        struct tg_trace *t;
        two_gens(&t);
        free(trace_text(t)); /* the automatic STATUS agrees */

        /* Listed in another order: still equal. */
        struct tg_gen *g = two_gens(&t);
        tg_status_clear(g);
        tg_status_task(g, 11, 10, "t11");
        tg_status_thread(g, 2, "two");
        tg_status_task(g, 10, 0, "t10");
        tg_status_thread(g, 1, "one");
        tg_status_region(g, 1, 10, "outer");
        tg_status_region(g, 1, 11, "inner");
        free(trace_text(t));

        g = two_gens(&t);
        tg_status_thread(g, 2, "deux");
        trace_error(t, "STATUS names thread 2 'deux', but it was 'two' at the end of generation 1");

        g = two_gens(&t);
        tg_status_thread(g, 3, NULL);
        trace_error(t, "STATUS lists thread 3, which was not alive at the end of generation 1");

        g = two_gens(&t);
        tg_status_clear(g);
        tg_status_thread(g, 1, "one");
        tg_status_region(g, 1, 10, "outer");
        tg_status_region(g, 1, 11, "inner");
        tg_status_task(g, 10, 0, "t10");
        tg_status_task(g, 11, 10, "t11");
        trace_error(t, "STATUS omits thread 2, alive at the end of generation 1");

        g = two_gens(&t);
        tg_status_region(g, 2, 0, "extra");
        trace_error(t, "STATUS gives thread 2 1 open regions, but it had 0 at the end of generation 1");

        t = tg_trace_new();
        g = tg_gen_new(t, 0, 100);
        tg_status_region(g, 1, 10, "outer");
        tg_status_region(g, 1, 11, "inner");
        g = tg_gen_new(t, 100, 200);
        tg_status_clear(g);
        tg_status_region(g, 1, 10, "outer");
        tg_status_region(g, 1, 12, "inner");
        trace_error(t, "STATUS region 1 of thread 1 is 'inner' (task 12), but it was 'inner' "
                       "(task 11) at the end of generation 1");

        g = two_gens(&t);
        tg_status_task(g, 12, 0, "new");
        trace_error(t, "STATUS lists task 12, which was not open at the end of generation 1");

        g = two_gens(&t);
        tg_status_task(g, 11, 0, "t11");
        trace_error(t, "STATUS gives task 11 parent 0 name 't11', but it had parent 10 name 't11'");

        t = tg_trace_new();
        g = tg_gen_new(t, 0, 100);
        tg_status_task(g, 10, 0, "t10");
        g = tg_gen_new(t, 100, 200);
        tg_status_clear(g);
        trace_error(t, "STATUS omits task 10 't10', open at the end of generation 1");
}

/* ------------------------------------------------------------------------ */
/* fr_trace_load_file                                                        */

static char *temp_file(const void *data, size_t len) {
        char *path = strdup("/tmp/test-reader-XXXXXX");
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, len), (ssize_t)len);
        close(fd);
        return path;
}

static void test_load_file(void **state) {
        (void)state;
        uint8_t *trace, *got, *frame;
        size_t len, got_len, frame_len;
        char err[512];
        encode_sample(3, &trace, &len);

        /* Raw. */
        char *raw = temp_file(trace, len);
        assert_int_equal(fr_trace_load_file(raw, 1 << 20, &got, &got_len, err, sizeof err), 0);
        assert_int_equal(got_len, len);
        assert_memory_equal(got, trace, len);
        free(got);
        assert_int_equal(fr_trace_load_file(raw, len - 1, &got, &got_len, err, sizeof err), -EFBIG);
        assert_non_null(strstr(err, "larger than the limit"));
        assert_int_equal(fr_trace_load_file(raw, len, &got, &got_len, err, sizeof err), 0);
        free(got);

        /* LZ4 frame, with a content size and without. */
        for (int with_size = 0; with_size < 2; with_size++) {
                LZ4F_preferences_t prefs = {0};
                prefs.frameInfo.contentSize = with_size ? len : 0;
                frame_len = LZ4F_compressFrameBound(len, &prefs);
                frame = malloc(frame_len);
                frame_len = LZ4F_compressFrame(frame, frame_len, trace, len, &prefs);
                assert_false(LZ4F_isError(frame_len));
                char *lz = temp_file(frame, frame_len);
                assert_int_equal(fr_trace_load_file(lz, 1 << 20, &got, &got_len, err, sizeof err),
                                 0);
                assert_int_equal(got_len, len);
                assert_memory_equal(got, trace, len);
                assert_int_equal(fr_trace_read(got, got_len, 0, NULL, NULL, NULL, err, sizeof err),
                                 0);
                free(got);
                assert_int_equal(
                        fr_trace_load_file(lz, len - 1, &got, &got_len, err, sizeof err), -EFBIG);
                assert_non_null(strstr(err, "decompressed trace is larger than the limit"));
                unlink(lz);
                free(lz);

                /* Truncated frame, and a corrupted one. */
                lz = temp_file(frame, frame_len - 3);
                assert_int_equal(fr_trace_load_file(lz, 1 << 20, &got, &got_len, err, sizeof err),
                                 -EINVAL);
                assert_string_equal(err, "truncated LZ4 frame: the file ends inside it");
                unlink(lz);
                free(lz);
                frame[5] ^= 0x40; /* frame descriptor: its checksum no longer matches */
                lz = temp_file(frame, frame_len);
                assert_int_equal(fr_trace_load_file(lz, 1 << 20, &got, &got_len, err, sizeof err),
                                 -EINVAL);
                assert_non_null(strstr(err, "corrupt LZ4 frame"));
                unlink(lz);
                free(lz);
                free(frame);
        }

        /* Missing file; empty file (loads, then the reader rejects it). */
        assert_int_equal(fr_trace_load_file("/nonexistent/x.trace", 1 << 20, &got, &got_len, err,
                                            sizeof err),
                         -ENOENT);
        assert_string_equal(err, "cannot open: No such file or directory");
        char *empty = temp_file("", 0);
        assert_int_equal(fr_trace_load_file(empty, 1 << 20, &got, &got_len, err, sizeof err), 0);
        assert_int_equal(got_len, 0);
        expect_error(got, got_len, 0, "truncated header");
        free(got);
        unlink(empty);
        free(empty);
        unlink(raw);
        free(raw);
        free(trace);
}

/* A partial generation (salvaged from a dead process): accepted as the last
 * one only, with its CRASH batch; CRASH is refused anywhere else. */
static int crash_cb(const struct fr_trace_header *h, const struct fr_generation *g, void *arg) {
        (void)h;
        const struct fr_generation **last = arg;
        if (g->partial) {
                assert_non_null(g->crash);
                assert_int_equal(g->crash->signo, 11);
                assert_int_equal(g->crash->code, 1);
                assert_int_equal(g->crash->addr, 0x10);
                assert_int_equal(g->crash->tid, 7);
                assert_string_equal(g->crash->thread_name, "worker");
                assert_int_equal(g->crash->nframes, 3);
                assert_int_equal(g->crash->frames[2], 0x401000);
                assert_int_equal(g->crash->nregs, 2);
                assert_int_equal(g->crash->regs[1], 99);
                *last = g;
        }
        return 0;
}

static void put_crash(struct tg_gen *g, uint64_t time, int64_t code) {
        struct tg_batch *c = tg_raw(g, FR_BATCH_CRASH, 7, time);
        tg_put_uvarint(c, 11);
        tg_put_uvarint(c, fr_zigzag(code));
        tg_put_uvarint(c, 0x10);
        tg_put_uvarint(c, 0);
        tg_put_string(c, "worker", 6);
        tg_put_uvarint(c, 2);
        tg_put_uvarint(c, 1);
        tg_put_uvarint(c, 99);
        tg_put_uvarint(c, 3);
        tg_put_uvarint(c, 0x401234);
        tg_put_uvarint(c, fr_zigzag(-0x200));
        tg_put_uvarint(c, fr_zigzag(-0x34));
}

static void test_partial_generation(void **state) {
        (void)state;
        /* Valid: two complete generations, then a partial one with a crash. */
        struct tg_trace *t = tg_trace_new();
        tg_gen_new(t, 0, 10);
        tg_gen_new(t, 10, 20);
        struct tg_gen *g = tg_gen_new(t, 20, 25);
        g->end_flags = FR_END_PARTIAL;
        put_crash(g, 24, 1);
        uint8_t *data;
        size_t len, n = 0;
        tg_trace_encode_free(t, &data, &len);
        char err[512] = "";
        const struct fr_generation *last = NULL;
        assert_int_equal(fr_trace_read(data, len, 0, crash_cb, &last, &n, err, sizeof err), 0);
        assert_int_equal(n, 3);
        assert_non_null(last);
        free(data);

        /* A partial generation followed by another one. */
        t = tg_trace_new();
        tg_gen_new(t, 0, 10)->end_flags = FR_END_PARTIAL;
        tg_gen_new(t, 10, 20);
        trace_error(t, "is partial (salvaged from a dead process) but not the last one");

        /* CRASH in a complete generation. */
        t = tg_trace_new();
        put_crash(tg_gen_new(t, 0, 10), 5, 1);
        trace_error(t, "CRASH batch in a generation that is not partial");

        /* Unknown END flags; CRASH outside the span; a second CRASH. */
        t = tg_trace_new();
        tg_gen_new(t, 0, 10)->end_flags = 4;
        trace_error(t, "unknown END flags 0x4");
        t = tg_trace_new();
        g = tg_gen_new(t, 0, 10);
        g->end_flags = FR_END_PARTIAL;
        put_crash(g, 11, 1);
        trace_error(t, "CRASH at time 11 is outside the generation's span");
        t = tg_trace_new();
        g = tg_gen_new(t, 0, 10);
        g->end_flags = FR_END_PARTIAL;
        put_crash(g, 5, 1);
        put_crash(g, 6, 1);
        trace_error(t, "second CRASH batch");
        /* Truncated CRASH payload. */
        t = tg_trace_new();
        g = tg_gen_new(t, 0, 10);
        g->end_flags = FR_END_PARTIAL;
        struct tg_batch *c = tg_raw(g, FR_BATCH_CRASH, 7, 5);
        tg_put_uvarint(c, 11);
        trace_error(t, "truncated CRASH code");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_roundtrip),
                cmocka_unit_test(test_header_only),
                cmocka_unit_test(test_sorted_stable),
                cmocka_unit_test(test_tables_anywhere),
                cmocka_unit_test(test_binary_message),
                cmocka_unit_test(test_callback_stops),
                cmocka_unit_test(test_ticks_to_ns),
                cmocka_unit_test(test_truncated_everywhere),
                cmocka_unit_test(test_corrupted_bytes),
                cmocka_unit_test(test_bad_magic_version),
                cmocka_unit_test(test_bad_batch_header),
                cmocka_unit_test(test_nonconsecutive_generations),
                cmocka_unit_test(test_missing_end),
                cmocka_unit_test(test_wrong_end_count),
                cmocka_unit_test(test_clock_status_counts),
                cmocka_unit_test(test_string_ids),
                cmocka_unit_test(test_stacks_and_samples),
                cmocka_unit_test(test_maps),
                cmocka_unit_test(test_event_encoding),
                cmocka_unit_test(test_region_mismatch),
                cmocka_unit_test(test_region_depth),
                cmocka_unit_test(test_times),
                cmocka_unit_test(test_thread_rules),
                cmocka_unit_test(test_task_across_generations),
                cmocka_unit_test(test_region_begin_dropped),
                cmocka_unit_test(test_thread_exit_at_advance),
                cmocka_unit_test(test_tid_reuse),
                cmocka_unit_test(test_status_mismatch),
                cmocka_unit_test(test_blocks),
                cmocka_unit_test(test_thread_events_only),
                cmocka_unit_test(test_load_file),
                cmocka_unit_test(test_partial_generation),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
