/* The timeline export (proto/timeline.h) read back by an independent
 * decoder: protobuf-c code generated from proto/perfetto.proto.
 *
 * check_trace() holds every export to Perfetto's rules: each packet on our
 * sequence with a timestamp that never goes back, the first one clearing the
 * interned state; every track described before use (a parent before its
 * child); slices nested per track and all closed; every interned id defined
 * before use and never redefined. It also flattens the export into sorted
 * text lines (slices, instants, flows, thread tracks), which the round-trip
 * tests compare with exactly what the generated trace holds. */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "perfetto.pb-c.h"
#include "selfmaps.h"
#include "timeline.h"
#include "trace_reader.h"
#include "tracegen.h"

#define BASE 1700000000000000000ull /* tracegen's real_ns at tick 0 */

typedef Flightrec__Perfetto__Trace Trace;
typedef Flightrec__Perfetto__TracePacket Packet;
typedef Flightrec__Perfetto__TrackEvent TrackEvent;

/* ------------------------------------------------------------------------ */
/* A small model of the decoded export                                       */

#define MAXN 16384

struct track {
        uint64_t uuid;
        char label[64]; /* "thread 101#2", "tasks 2", "process" */
        int64_t tid;
        char name[128];
        uint64_t open[64]; /* begin timestamps of open slices */
        char open_name[64][64];
        size_t depth;
};

struct model {
        struct track tracks[256];
        size_t ntracks;
        char *lines[MAXN];
        size_t nlines;
        /* interned ids: defined[kind][iid] */
        char *names[MAXN];
        uint8_t functions[MAXN], frames[MAXN], callstacks[MAXN], mappings[MAXN], paths[MAXN],
                build_ids[MAXN];
        char *function_names[MAXN];
        uint64_t frame_function[MAXN];
        size_t nsamples;
};

static void add_line(struct model *m, const char *fmt, ...) {
        va_list ap;
        char *s;
        va_start(ap, fmt);
        assert_true(vasprintf(&s, fmt, ap) >= 0);
        va_end(ap);
        assert_true(m->nlines < MAXN);
        m->lines[m->nlines++] = s;
}

static struct track *track_of(struct model *m, uint64_t uuid) {
        for (size_t i = 0; i < m->ntracks; i++)
                if (m->tracks[i].uuid == uuid)
                        return &m->tracks[i];
        return NULL;
}

static const char *annot(const TrackEvent *e, const char *key, char *buf, size_t n) {
        for (size_t i = 0; i < e->n_debug_annotations; i++) {
                const Flightrec__Perfetto__DebugAnnotation *a = e->debug_annotations[i];
                if (!a->name || strcmp(a->name, key) != 0)
                        continue;
                if (a->string_value)
                        snprintf(buf, n, "%s", a->string_value);
                else if (a->has_uint_value)
                        snprintf(buf, n, "%" PRIu64, a->uint_value);
                else if (a->has_bool_value)
                        snprintf(buf, n, "%s", a->bool_value ? "true" : "false");
                return buf;
        }
        return NULL;
}

/* define - an interned id: non-zero, defined once. */
static void define(uint8_t *set, uint64_t iid) {
        assert_true(iid > 0 && iid < MAXN);
        assert_int_equal(set[iid], 0);
        set[iid] = 1;
}

static void interned(struct model *m, const Flightrec__Perfetto__InternedData *d) {
        for (size_t i = 0; i < d->n_event_names; i++) {
                uint64_t iid = d->event_names[i]->iid;
                assert_true(iid > 0 && iid < MAXN);
                assert_null(m->names[iid]);
                m->names[iid] = strdup(d->event_names[i]->name);
        }
        for (size_t i = 0; i < d->n_function_names; i++) {
                uint64_t iid = d->function_names[i]->iid;
                define(m->functions, iid);
                m->function_names[iid] = strndup((const char *)d->function_names[i]->str.data,
                                                 d->function_names[i]->str.len);
        }
        for (size_t i = 0; i < d->n_build_ids; i++)
                define(m->build_ids, d->build_ids[i]->iid);
        for (size_t i = 0; i < d->n_mapping_paths; i++)
                define(m->paths, d->mapping_paths[i]->iid);
        for (size_t i = 0; i < d->n_mappings; i++) {
                const Flightrec__Perfetto__Mapping *mp = d->mappings[i];
                if (mp->has_build_id)
                        assert_true(m->build_ids[mp->build_id]);
                for (size_t k = 0; k < mp->n_path_string_ids; k++)
                        assert_true(m->paths[mp->path_string_ids[k]]);
                assert_true(mp->start < mp->end);
                define(m->mappings, mp->iid);
        }
        for (size_t i = 0; i < d->n_frames; i++) {
                const Flightrec__Perfetto__Frame *f = d->frames[i];
                assert_true(m->functions[f->function_name_id]);
                if (f->has_mapping_id && f->mapping_id)
                        assert_true(m->mappings[f->mapping_id]);
                define(m->frames, f->iid);
                m->frame_function[f->iid] = f->function_name_id;
        }
        for (size_t i = 0; i < d->n_callstacks; i++) {
                const Flightrec__Perfetto__Callstack *c = d->callstacks[i];
                for (size_t k = 0; k < c->n_frame_ids; k++)
                        assert_true(m->frames[c->frame_ids[k]]);
                define(m->callstacks, c->iid);
        }
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* check_trace - decode and check an export; fills m (lines sorted). */
static void check_trace(const uint8_t *buf, size_t len, struct model *m) {
        Trace *t = flightrec__perfetto__trace__unpack(NULL, len, buf);
        uint64_t last = 0;
        int incarnations[1024] = {0};

        assert_non_null(t);
        memset(m, 0, sizeof *m);
        assert_true(t->n_packet > 0);
        for (size_t i = 0; i < t->n_packet; i++) {
                const Packet *p = t->packet[i];
                assert_true(p->has_timestamp);
                assert_true(p->timestamp >= last); /* never backwards on the sequence */
                last = p->timestamp;
                assert_int_equal(p->trusted_packet_sequence_id, 1);
                if (i == 0)
                        assert_true(p->sequence_flags & 1);
                if (p->interned_data)
                        interned(m, p->interned_data);
                if (p->track_descriptor) {
                        const Flightrec__Perfetto__TrackDescriptor *d = p->track_descriptor;
                        struct track *tr = track_of(m, d->uuid);
                        if (d->has_parent_uuid)
                                assert_non_null(track_of(m, d->parent_uuid));
                        if (!tr) {
                                assert_true(m->ntracks < 256);
                                tr = &m->tracks[m->ntracks++];
                                tr->uuid = d->uuid;
                                if (d->thread) {
                                        /* A thread track has no parent. */
                                        assert_false(d->has_parent_uuid);
                                        tr->tid = d->thread->tid;
                                        assert_true(tr->tid > 0 && tr->tid < 1024);
                                        snprintf(tr->label, sizeof tr->label, "thread %" PRId64 "#%d",
                                                 tr->tid, ++incarnations[tr->tid]);
                                } else if (d->process) {
                                        snprintf(tr->label, sizeof tr->label, "process");
                                } else {
                                        assert_non_null(d->name);
                                        snprintf(tr->label, sizeof tr->label, "%s", d->name);
                                }
                        }
                        if (d->thread && d->thread->thread_name)
                                snprintf(tr->name, sizeof tr->name, "%s", d->thread->thread_name);
                }
                if (p->perf_sample) {
                        assert_true(m->callstacks[p->perf_sample->callstack_iid]);
                        m->nsamples++;
                }
                if (!p->track_event)
                        continue;
                const TrackEvent *e = p->track_event;
                struct track *tr = track_of(m, e->track_uuid);
                assert_non_null(tr); /* described before use */
                const char *name = NULL;
                if (e->has_name_iid) {
                        assert_true(e->name_iid < MAXN);
                        name = m->names[e->name_iid];
                        assert_non_null(name);
                }
                uint64_t ts = p->timestamp - BASE;
                char a1[256], a2[256];
                switch (e->type) {
                case FLIGHTREC__PERFETTO__TRACK_EVENT__TYPE__TYPE_SLICE_BEGIN:
                        assert_non_null(name);
                        assert_true(tr->depth < 64);
                        tr->open[tr->depth] = ts;
                        snprintf(tr->open_name[tr->depth], 64, "%s", name);
                        tr->depth++;
                        break;
                case FLIGHTREC__PERFETTO__TRACK_EVENT__TYPE__TYPE_SLICE_END:
                        assert_true(tr->depth > 0); /* nesting */
                        tr->depth--;
                        add_line(m, "slice %s %s %" PRIu64 "-%" PRIu64, tr->label,
                                 tr->open_name[tr->depth], tr->open[tr->depth], ts);
                        break;
                case FLIGHTREC__PERFETTO__TRACK_EVENT__TYPE__TYPE_INSTANT:
                        assert_non_null(name);
                        if (annot(e, "message", a1, sizeof a1))
                                add_line(m, "instant %s %s %" PRIu64 " %s/%s", tr->label, name, ts,
                                         annot(e, "category", a2, sizeof a2), a1);
                        else if (annot(e, "count", a1, sizeof a1))
                                add_line(m, "instant %s %s %" PRIu64 " count=%s", tr->label, name,
                                         ts, a1);
                        else if (annot(e, "name", a1, sizeof a1))
                                add_line(m, "instant %s %s %" PRIu64 " name=%s", tr->label, name,
                                         ts, a1);
                        else
                                add_line(m, "instant %s %s %" PRIu64, tr->label, name, ts);
                        break;
                default:
                        fail_msg("unexpected track event type %d", e->type);
                }
                for (size_t k = 0; k < e->n_flow_ids; k++)
                        add_line(m, "flow %" PRIu64 " %s %s %" PRIu64, e->flow_ids[k], tr->label,
                                 name ? name : "-", ts);
        }
        for (size_t i = 0; i < m->ntracks; i++) {
                assert_int_equal(m->tracks[i].depth, 0); /* everything closed */
                if (m->tracks[i].tid)
                        add_line(m, "track %s %s", m->tracks[i].label, m->tracks[i].name);
        }
        qsort(m->lines, m->nlines, sizeof *m->lines, cmp_str);
        flightrec__perfetto__trace__free_unpacked(t, NULL);
}

static char *joined(const struct model *m) {
        size_t n = 1;
        for (size_t i = 0; i < m->nlines; i++)
                n += strlen(m->lines[i]) + 1;
        char *s = calloc(1, n), *p = s;
        for (size_t i = 0; i < m->nlines; i++)
                p += sprintf(p, "%s\n", m->lines[i]);
        return s;
}

static void model_free(struct model *m) {
        for (size_t i = 0; i < m->nlines; i++)
                free(m->lines[i]);
        for (size_t i = 0; i < MAXN; i++) {
                free(m->names[i]);
                free(m->function_names[i]);
        }
}

static void convert(struct tg_trace *t, unsigned flags, uint64_t max_ev, uint8_t **ret,
                    size_t *ret_len, struct fr_timeline_stats *st) {
        uint8_t *data;
        size_t len;
        char err[256];
        struct fr_timeline_options o = {.flags = flags | FR_TIMELINE_NO_SYMBOLIZE,
                                        .max_events_per_s = max_ev};
        tg_trace_encode(t, &data, &len);
        int r = fr_timeline_from_trace(data, len, &o, ret, ret_len, st, err, sizeof err);
        if (r != 0)
                fail_msg("conversion failed: %s", err);
        free(data);
}

/* convert_check - convert t, check_trace the export into m. */
static void convert_check(struct tg_trace *t, unsigned flags, uint64_t max_ev, struct model *m,
                          struct fr_timeline_stats *st) {
        uint8_t *out;
        size_t len;
        convert(t, flags, max_ev, &out, &len, st);
        check_trace(out, len, m);
        free(out);
}

/* convert_json - t as JSON, a string (free it). */
static char *convert_json(struct tg_trace *t, struct fr_timeline_stats *st) {
        uint8_t *out;
        size_t len;
        convert(t, FR_TIMELINE_JSON, 0, &out, &len, st);
        char *js = strndup((const char *)out, len);
        free(out);
        return js;
}

/* assert_lines - m's lines are want; frees m. */
static void assert_lines(struct model *m, const char *want) {
        char *got = joined(m);
        assert_string_equal(got, want);
        free(got);
        model_free(m);
}

/* ------------------------------------------------------------------------ */
/* Round trip                                                                */

/* Tasks crossing threads, a region open across generations, a thread id
 * reused, lost events, a renamed thread, logs. Ticks are nanoseconds.
 * ngens 1: the first generation alone. */
static struct tg_trace *round_trip_trace(int ngens) {
        struct tg_trace *t = tg_trace_new();
        struct tg_gen *g = tg_gen_new(t, 0, 1000000);
        tg_status_thread(g, 100, "main");
        struct tg_batch *m = tg_events(g, 100, 0), *w = tg_events(g, 101, 0);
        tg_task_begin(m, 10, 1, 0, "request");
        tg_task_begin(m, 20, 2, 1, "subrequest");
        tg_region_begin(m, 30, 1, "outer");
        tg_region_begin(m, 40, 1, "inner");
        tg_region_end(m, 50, 1, "inner");
        tg_thread_start(w, 100);
        tg_thread_name(w, 110, "worker");
        tg_log(w, 120, 2, "http", "GET /");
        tg_task_end(w, 130, 2); /* begun on 100, ended on 101 */
        tg_lost(w, 140, FR_LOST_EVENTS, 5);
        tg_thread_exit(w, 150);
        if (ngens < 2)
                return t;

        g = tg_gen_new(t, 1000000, 2000000);
        m = tg_events(g, 100, 1000000);
        w = tg_events(g, 101, 1000000);
        tg_region_end(m, 1000100, 1, "outer");
        tg_task_end(m, 1000200, 1);
        tg_thread_start(w, 1000300); /* the kernel reused the id */
        tg_thread_name(w, 1000310, "worker-2");
        tg_region_begin(w, 1000320, 0, "job");
        tg_region_end(w, 1000330, 0, "job");
        return t;
}

static void test_round_trip(void **state) {
        (void)state;
        struct tg_trace *t = round_trip_trace(2);
        struct fr_timeline_stats st;
        struct model m;
        convert_check(t, 0, 0, &m, &st);
        assert_lines(&m,
                "flow 2 tasks 2 subrequest 20\n"
                "flow 2 tasks spawn 20\n"
                "instant tasks spawn 20\n"
                "instant thread 101#1 http 120 http/GET /\n"
                "instant thread 101#1 lost events 140 count=5\n"
                "instant thread 101#1 thread exit 150\n"
                "instant thread 101#1 thread name 110 name=worker\n"
                "instant thread 101#1 thread start 100\n"
                "instant thread 101#2 thread name 1000310 name=worker-2\n"
                "instant thread 101#2 thread start 1000300\n"
                "slice tasks 2 subrequest 20-130\n"
                "slice tasks request 10-1000200\n"
                "slice thread 100#1 inner 40-50\n"
                "slice thread 100#1 outer 30-1000100\n"
                "slice thread 101#2 job 1000320-1000330\n"
                "track thread 100#1 main\n"
                "track thread 101#1 worker\n"
                "track thread 101#2 worker-2\n");
        assert_int_equal(st.ngens, 2);
        assert_int_equal(st.nthreads, 3);
        assert_int_equal(st.nslices, 5);
        assert_int_equal(st.nflows, 1);
        assert_int_equal(st.lost_events, 5);
        assert_int_equal(st.dropped_events, 0);

        /* The same trace as JSON: the same slices, as B/E and b/e, sorted. */
        char *js = convert_json(t, &st);
        /* B/E: the same name (readers match by it), no args (speedscope would
         * make one frame per task of them). */
        assert_non_null(strstr(js, "{\"ph\":\"B\",\"pid\":4242,\"tid\":100,\"ts\":1700000000000000,"
                                   "\"name\":\"outer\"}"));
        assert_non_null(strstr(js, "{\"ph\":\"E\",\"pid\":4242,\"tid\":100,\"ts\":1700000000001000,"
                                   "\"name\":\"outer\"}"));
        assert_non_null(strstr(js, "{\"ph\":\"b\",\"pid\":4242,\"tid\":100,\"ts\":1700000000000000,"
                                   "\"cat\":\"task\",\"id\":\"0x2\",\"name\":\"subrequest\""));
        assert_non_null(strstr(js, "{\"ph\":\"e\",\"pid\":4242,\"tid\":101,\"ts\":1700000000000000,"
                                   "\"cat\":\"task\",\"id\":\"0x2\",\"name\":\"subrequest\"}"));
        assert_non_null(strstr(js, "\"name\":\"thread_name\",\"args\":{\"name\":\"worker-2\"}"));
        assert_non_null(strstr(js, "\"s\":\"t\",\"name\":\"http\",\"args\":{\"category\":\"http\","
                                   "\"message\":\"GET /\",\"task\":2}"));
        /* Counts by phase, and ts integers in order (M first). */
        int nB = 0, nE = 0, nb = 0, ne = 0, nM = 0;
        unsigned long long prev = 0;
        for (char *p = js; (p = strstr(p, "{\"ph\":\"")); p++) {
                char ph = p[7];
                nB += ph == 'B', nE += ph == 'E', nb += ph == 'b', ne += ph == 'e', nM += ph == 'M';
                char *ts = strstr(p, "\"ts\":");
                assert_non_null(ts);
                char *end;
                unsigned long long v = strtoull(ts + 5, &end, 10);
                assert_true(*end == ',' || *end == '}'); /* an integer, no exponent */
                assert_true(v >= prev);
                prev = v;
        }
        assert_int_equal(nB, 3);
        assert_int_equal(nE, 3);
        assert_int_equal(nb, 2);
        assert_int_equal(ne, 2);
        assert_int_equal(nM, 1 + 5); /* process; main, 101 unnamed, worker, 101 again, worker-2 */
        free(js);
        tg_trace_free(t);
}

/* Regions and tasks open when the trace starts begin at its start; those
 * still open at its end end there. */
static void test_open_at_edges(void **state) {
        (void)state;
        struct tg_trace *t = tg_trace_new();
        struct tg_gen *g = tg_gen_new(t, 0, 1000);
        tg_status_thread(g, 7, "svc");
        tg_status_region(g, 7, 9, "serve");
        tg_status_task(g, 9, 0, "conn");
        struct tg_batch *b = tg_events(g, 7, 0);
        tg_region_begin(b, 100, 9, "read");
        struct fr_timeline_stats st;
        struct model m;
        convert_check(t, 0, 0, &m, &st);
        assert_lines(&m, "slice tasks conn 0-1000\n"
                         "slice thread 7#1 read 100-1000\n"
                         "slice thread 7#1 serve 0-1000\n"
                         "track thread 7#1 svc\n");
        tg_trace_free(t);
}

/* The budget: at most N events per second of trace; a dropped begin drops
 * its end; the place where dropping starts is marked. */
static void test_budget(void **state) {
        (void)state;
        struct tg_trace *t = tg_trace_new();
        /* Two seconds, 3000 logs and 10 regions in each. */
        for (int s = 0; s < 2; s++) {
                uint64_t base = (uint64_t)s * 1000000000ull;
                struct tg_gen *g = tg_gen_new(t, base, base + 1000000000ull);
                if (s == 0)
                        tg_status_thread(g, 5, "busy");
                struct tg_batch *b = tg_events(g, 5, base);
                for (int i = 0; i < 3000; i++)
                        tg_log(b, base + 1000 + (uint64_t)i * 1000, 0, "c", "m");
                for (int i = 0; i < 10; i++) {
                        tg_region_begin(b, base + 10000000 + (uint64_t)i * 1000, 0, "r");
                        tg_region_end(b, base + 10000500 + (uint64_t)i * 1000, 0, "r");
                }
        }
        struct fr_timeline_stats st;
        struct model m;
        convert_check(t, 0, 1000, &m, &st);
        size_t logs = 0, marks = 0, slices = 0;
        for (size_t i = 0; i < m.nlines; i++) {
                logs += strncmp(m.lines[i], "instant thread 5#1 c ", 21) == 0;
                marks += strstr(m.lines[i], "export limit reached") != NULL;
                slices += strncmp(m.lines[i], "slice ", 6) == 0;
        }
        assert_int_equal(logs, 2000); /* 1000 per second */
        assert_int_equal(marks, 2);
        assert_int_equal(slices, 0); /* the logs used each second's budget first */
        assert_int_equal(st.dropped_events, 2 * (2000 + 10));
        model_free(&m);

        /* Without a limit, everything. */
        convert_check(t, 0, UINT64_MAX, &m, &st);
        assert_int_equal(st.dropped_events, 0);
        assert_int_equal(st.ninstants, 6000);
        assert_int_equal(st.nslices, 20);
        model_free(&m);
        tg_trace_free(t);
}

/* Bad input: the reader's message, nothing out. A trace cut at a generation
 * boundary exports the generations it holds. */
static void test_bad_input(void **state) {
        (void)state;
        struct tg_trace *t = round_trip_trace(2);
        uint8_t *data, *out = (uint8_t *)"untouched";
        size_t len, out_len = 0, cut;
        char err[256];
        struct fr_timeline_stats st;
        tg_trace_encode(t, &data, &len);
        /* Where generation 2 starts: the trace of generation 1 alone. */
        uint8_t *d1;
        tg_trace_encode_free(round_trip_trace(1), &d1, &cut);
        assert_memory_equal(d1, data, cut); /* the same bytes up to the boundary */
        free(d1);

        struct fr_timeline_options o = {.flags = FR_TIMELINE_NO_SYMBOLIZE};
        assert_int_equal(fr_timeline_from_trace(data, cut, &o, &out, &out_len, &st, err, sizeof err), 0);
        assert_int_equal(st.ngens, 1);
        struct model m;
        check_trace(out, out_len, &m);
        model_free(&m);
        free(out);

        /* Cut inside generation 2: refused with the reader's message... */
        out = (uint8_t *)"untouched";
        int r = fr_timeline_from_trace(data, len - 3, &o, &out, &out_len, &st, err, sizeof err);
        assert_int_equal(r, -EINVAL);
        assert_non_null(strstr(err, "offset"));
        assert_string_equal((const char *)out, "untouched");
        /* ...or, for a post-mortem, what it holds. */
        o.flags |= FR_TIMELINE_ALLOW_PARTIAL_TAIL;
        assert_int_equal(fr_timeline_from_trace(data, len - 3, &o, &out, &out_len, &st, err, sizeof err), 0);
        assert_int_equal(st.ngens, 1);
        free(out);
        /* Garbage. */
        o.flags = FR_TIMELINE_JSON;
        out = (uint8_t *)"untouched";
        assert_int_equal(fr_timeline_from_trace((const uint8_t *)"FRTRACE", 7, &o, &out, &out_len,
                                                &st, err, sizeof err), -EINVAL);
        assert_true(err[0] != '\0');
        assert_string_equal((const char *)out, "untouched");
        free(data);
        tg_trace_free(t);
}

/* A cancelled export (the daemon stopping) fails with -ECANCELED and leaves
 * no output, protobuf and JSON alike; an unset flag changes nothing. */
static void test_cancel(void **state) {
        (void)state;
        struct tg_trace *t = round_trip_trace(2);
        uint8_t *data, *out;
        size_t len, out_len = 0;
        char err[256];
        tg_trace_encode(t, &data, &len);
        atomic_bool cancel = false;
        struct fr_timeline_options o = {.flags = FR_TIMELINE_NO_SYMBOLIZE, .cancel = &cancel};
        assert_int_equal(fr_timeline_from_trace(data, len, &o, &out, &out_len, NULL, err, sizeof err), 0);
        free(out);
        atomic_store(&cancel, true);
        for (unsigned json = 0; json < 2; json++) {
                o.flags = FR_TIMELINE_NO_SYMBOLIZE | (json ? FR_TIMELINE_JSON : 0);
                out = (uint8_t *)"untouched";
                assert_int_equal(fr_timeline_from_trace(data, len, &o, &out, &out_len, NULL, err,
                                                        sizeof err),
                                 -ECANCELED);
                assert_string_equal(err, "cancelled");
                assert_string_equal((const char *)out, "untouched");
        }
        free(data);
        tg_trace_free(t);
}

/* Strings that are not valid UTF-8 still decode (as U+FFFD). */
static void test_bad_utf8(void **state) {
        (void)state;
        struct tg_trace *t = tg_trace_new();
        struct tg_gen *g = tg_gen_new(t, 0, 1000);
        tg_status_thread(g, 3, "t\xff");
        struct tg_batch *b = tg_events(g, 3, 0);
        tg_log(b, 10, 0, "c\xc3", "m\xe2\x82\"\x01");
        struct fr_timeline_stats st;
        struct model m;
        convert_check(t, 0, 0, &m, &st);
        assert_string_equal(m.lines[0], "instant thread 3#1 c\xef\xbf\xbd 10 c\xef\xbf\xbd/m\xef\xbf\xbd\xef\xbf\xbd\"\x01");
        model_free(&m);
        char *js = convert_json(t, &st);
        assert_non_null(strstr(js, "\"message\":\"m\\ufffd\\ufffd\\\"\\u0001\""));
        free(js);
        tg_trace_free(t);
}

/* ------------------------------------------------------------------------ */
/* CPU samples, symbolized from this very program                            */

__attribute__((noinline)) int tl_hot_leaf(int x) {
        return x * 3 + 1;
}
__attribute__((noinline)) int tl_hot_caller(int x) {
        return tl_hot_leaf(x) + 2;
}

static void test_samples_symbolized(void **state) {
        (void)state;
        static struct sm_object exe;
        assert_int_equal(sm_load(&exe, (const void *)(uintptr_t)tl_hot_leaf), 0);
        struct tg_trace *t = tg_trace_new();
        tg_trace_header(t, 4242, "test-perfetto", exe.path, "test", 0);
        struct tg_gen *g = tg_gen_new(t, 0, 1000000);
        g->sample_hz = 100;
        tg_status_thread(g, 11, "sampled");
        sm_add_maps(g, &exe, NULL);
        /* Leaf PC inside tl_hot_leaf; the caller's return address inside tl_hot_caller. */
        uint64_t pcs[2] = {(uint64_t)(uintptr_t)tl_hot_leaf + 4,
                           (uint64_t)(uintptr_t)tl_hot_caller + 8};
        struct tg_batch *s = tg_samples(g, 11, 0);
        for (int i = 0; i < 5; i++)
                tg_sample(s, 100 + (uint64_t)i * 100, 1, 0, NULL, pcs, 2);
        uint8_t *data, *out;
        size_t len, out_len;
        char err[256];
        struct fr_timeline_stats st;
        tg_trace_encode(t, &data, &len);
        assert_int_equal(fr_timeline_from_trace(data, len, NULL, &out, &out_len, &st, err, sizeof err), 0);
        assert_int_equal(st.nsamples, 5);
        struct model m;
        check_trace(out, out_len, &m);
        assert_int_equal(m.nsamples, 5);
        bool leaf = false, caller = false;
        for (size_t i = 0; i < MAXN; i++) {
                if (!m.function_names[i])
                        continue;
                leaf |= strcmp(m.function_names[i], "tl_hot_leaf") == 0;
                caller |= strcmp(m.function_names[i], "tl_hot_caller") == 0;
        }
        assert_true(leaf);
        assert_true(caller);
        model_free(&m);
        free(out);
        free(data);
        tg_trace_free(t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_open_at_edges),
                cmocka_unit_test(test_budget),
                cmocka_unit_test(test_bad_input),
                cmocka_unit_test(test_cancel),
                cmocka_unit_test(test_bad_utf8),
                cmocka_unit_test(test_samples_symbolized),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
