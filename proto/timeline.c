/* Trace to timeline: see timeline.h. This file follows the trace's state
 * generation by generation (threads and their incarnations, open regions,
 * open tasks and the tracks they sit on, the clock, the budget) and calls a
 * writer (timeline_sink.h) in time order. One switch on the event type
 * (timeline_event) decides what each recorded event becomes: new event
 * types add a case there. */
#include "timeline.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crash_report.h"
#include "fr_keymap.h"
#include "fr_u64map.h"
#include "fr_vec.h"
#include "timeline_sink.h"
#include "trace_format.h"
#include "trace_reader.h"

#define NS_PER_SEC 1000000000ull

/* ------------------------------------------------------------------------ */
/* State                                                                     */

struct thr {
        struct tl_track track;
        char *name;     /* malloc'd; NULL: unnamed */
        bool alive;
        uint32_t depth; /* open regions */
        bool emitted[FR_MAX_REGION_DEPTH]; /* per open region: its begin was written */
        const char *names[FR_MAX_REGION_DEPTH]; /* interned (struct tl.names) */
};

struct task {
        uint64_t id;
        size_t lane;  /* SIZE_MAX: not emitted (over the budget) */
        const char *name; /* interned */
};

struct lane {
        struct tl_track track;
        char name[32];
        uint64_t task; /* open task on it, 0: free */
        const char *task_name;
};

struct tl {
        const struct tl_sink_ops *ops;
        void *sink;
        const struct fr_timeline_options *opts;
        char *err;
        size_t errlen;
        int failed;

        uint64_t pid;
        char *comm;
        struct tl_track process;
        bool started;
        uint64_t next_uuid;
        uint64_t last_ts; /* timestamps never go back */
        uint64_t end_ts;  /* end of the last generation */

        FR_VEC(struct thr *) threads; /* every incarnation, in creation order */
        struct fr_u64map by_tid;      /* tid -> threads index of the current incarnation */
        FR_VEC(struct task) tasks;    /* slots, reused through free_tasks */
        FR_VEC(size_t) free_tasks;
        struct fr_u64map by_task;     /* task id -> tasks index */
        FR_VEC(struct lane) lanes;
        FR_VEC(size_t) free_lanes;

        /* Budget per second of trace. */
        uint64_t t0, second;
        uint64_t ev_in_second, smp_in_second;
        bool limit_marked;

        /* Region and task names outlive the reader's generation: kept once. */
        struct fr_arena arena;
        struct fr_keymap names;

        struct fr_timeline_stats st;
};

static __attribute__((format(printf, 3, 4))) int tl_fail(struct tl *t, int r, const char *fmt, ...) {
        if (t->err && t->errlen) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(t->err, t->errlen, fmt, ap);
                va_end(ap);
        }
        t->failed = r;
        return r;
}

static int oom(struct tl *t) {
        return tl_fail(t, -ENOMEM, "out of memory");
}

/* cancelled - opts->cancel is set: fail with -ECANCELED. */
static bool cancelled(struct tl *t) {
        if (!t->opts->cancel || !atomic_load_explicit(t->opts->cancel, memory_order_relaxed))
                return false;
        tl_fail(t, -ECANCELED, "cancelled");
        return true;
}

/* wall - a tick of generation g as wall-clock ns, never before the last one
 * written (a clock step between generations must not reorder the output). */
static uint64_t wall(struct tl *t, const struct fr_generation *g, uint64_t tick) {
        uint64_t ns = g->real_ns + fr_ticks_to_ns(g, tick >= g->start ? tick - g->start : 0);
        if (ns < t->last_ts)
                ns = t->last_ts;
        t->last_ts = ns;
        return ns;
}

/* budget - may one more event (or sample) at ts be written? */
static bool budget(struct tl *t, uint64_t ts, bool sample) {
        uint64_t sec = (ts - t->t0) / NS_PER_SEC;
        if (sec != t->second) {
                t->second = sec;
                t->ev_in_second = t->smp_in_second = 0;
                t->limit_marked = false;
        }
        uint64_t *n = sample ? &t->smp_in_second : &t->ev_in_second;
        uint64_t max = sample ? t->st.max_samples_per_s : t->st.max_events_per_s;
        if (*n < max) {
                (*n)++;
                return true;
        }
        if (sample)
                t->st.dropped_samples++;
        else
                t->st.dropped_events++;
        if (!t->limit_marked) {
                t->limit_marked = true;
                struct tl_event e = {
                        .ts = ts, .track = &t->process, .tid = t->pid,
                        .name = "export limit reached", .nargs = 2,
                        .args = {{.key = "max_events_per_s", .type = TL_ARG_UINT,
                                  .u = t->st.max_events_per_s},
                                 {.key = "max_samples_per_s", .type = TL_ARG_UINT,
                                  .u = t->st.max_samples_per_s}}};
                int r = t->ops->instant(t->sink, &e);
                if (r < 0)
                        return tl_fail(t, r, "out of memory"), false;
                t->st.ninstants++;
        }
        return false;
}

/* intern - a copy of s that lives as long as the conversion (NULL: oom). */
static const char *intern(struct tl *t, const char *s) {
        size_t n = strlen(s), v;
        if (fr_keymap_get(&t->names, s, n, &v))
                return (const char *)(uintptr_t)v;
        char *copy = fr_arena_strdup(&t->arena, s);
        if (!copy || fr_keymap_put(&t->names, &t->arena, s, n, (size_t)(uintptr_t)copy) < 0)
                return oom(t), NULL;
        return copy;
}

static int emit(struct tl *t, int (*fn)(void *, const struct tl_event *), const struct tl_event *e,
                uint64_t *count) {
        int r = fn(t->sink, e);
        if (r < 0)
                return oom(t);
        if (count)
                (*count)++;
        return 0;
}

static int describe(struct tl *t, uint64_t ts, const struct tl_track *track) {
        int r = t->ops->track(t->sink, ts, track);
        return r < 0 ? oom(t) : 0;
}

/* ------------------------------------------------------------------------ */
/* Threads                                                                   */

static struct thr *thread_find(struct tl *t, uint64_t tid) {
        size_t i;
        return fr_u64map_get(&t->by_tid, tid, &i) ? t->threads.v[i] : NULL;
}

/* thread_new - a new incarnation of tid, described at ts. */
static struct thr *thread_new(struct tl *t, uint64_t ts, uint64_t tid, const char *name) {
        struct thr *th = calloc(1, sizeof *th), **slot;
        if (!th)
                return oom(t), NULL;
        th->name = name ? strdup(name) : NULL;
        if ((name && !th->name) || !(slot = FR_VEC_PUSH(t->threads))) {
                free(th->name);
                free(th);
                return oom(t), NULL;
        }
        *slot = th;
        th->alive = true;
        th->track = (struct tl_track){.uuid = t->next_uuid++, .kind = TL_TRACK_THREAD,
                                      .pid = t->pid, .tid = tid, .name = th->name};
        t->st.nthreads++;
        if (fr_u64map_put(&t->by_tid, tid, t->threads.n - 1) < 0)
                return oom(t), NULL;
        if (describe(t, ts, &th->track) < 0)
                return NULL;
        return th;
}

/* thread_get - the live incarnation of tid, created if the trace names a
 * thread we have not seen (the reader guarantees it is known to the trace). */
static struct thr *thread_get(struct tl *t, uint64_t ts, uint64_t tid) {
        struct thr *th = thread_find(t, tid);
        if (th && th->alive)
                return th;
        return thread_new(t, ts, tid, th ? th->name : NULL);
}

static int thread_rename(struct tl *t, uint64_t ts, struct thr *th, const char *name) {
        if ((!name && !th->name) || (name && th->name && strcmp(name, th->name) == 0))
                return 0;
        char *copy = name ? strdup(name) : NULL;
        if (name && !copy)
                return oom(t);
        free(th->name);
        th->name = copy;
        th->track.name = copy;
        return describe(t, ts, &th->track);
}

/* ------------------------------------------------------------------------ */
/* Regions and tasks                                                         */

static int region_begin(struct tl *t, uint64_t ts, struct thr *th, uint64_t task, const char *name,
                        bool before_trace) {
        if (th->depth >= FR_MAX_REGION_DEPTH)
                return 0; /* the reader enforces the depth; stay safe */
        bool ok = budget(t, ts, false);
        if (t->failed)
                return t->failed;
        const char *iname = ok ? intern(t, name ? name : "(unnamed region)") : NULL;
        if (ok && !iname)
                return t->failed;
        th->names[th->depth] = iname;
        th->emitted[th->depth++] = ok;
        if (!ok)
                return 0;
        struct tl_event e = {.ts = ts, .track = &th->track, .tid = th->track.tid, .name = iname};
        if (task)
                e.args[e.nargs++] = (struct tl_arg){.key = "task", .type = TL_ARG_UINT, .u = task};
        if (before_trace)
                e.args[e.nargs++] = (struct tl_arg){.key = "begun_before_trace", .type = TL_ARG_BOOL,
                                                    .u = 1};
        return emit(t, t->ops->begin, &e, &t->st.nslices);
}

static int region_end(struct tl *t, uint64_t ts, struct thr *th) {
        if (th->depth == 0)
                return 0; /* the reader matches every end; stay safe */
        if (!th->emitted[--th->depth])
                return 0;
        /* The name again: Chrome JSON readers match an E with its B by name. */
        struct tl_event e = {.ts = ts, .track = &th->track, .tid = th->track.tid,
                             .name = th->names[th->depth]};
        return emit(t, t->ops->end, &e, NULL);
}

static struct task *task_find(struct tl *t, uint64_t id) {
        size_t i;
        return fr_u64map_get(&t->by_task, id, &i) ? &t->tasks.v[i] : NULL;
}

/* lane_take - a free "tasks" track, described when it is new. */
static int lane_take(struct tl *t, uint64_t ts, uint64_t task, size_t *ret) {
        if (t->free_lanes.n) {
                *ret = t->free_lanes.v[--t->free_lanes.n];
        } else {
                struct lane *l = FR_VEC_PUSH(t->lanes);
                if (!l)
                        return oom(t);
                *ret = t->lanes.n - 1;
                if (*ret == 0)
                        snprintf(l->name, sizeof l->name, "tasks");
                else
                        snprintf(l->name, sizeof l->name, "tasks %zu", *ret + 1);
                l->track = (struct tl_track){.uuid = t->next_uuid++, .kind = TL_TRACK_TASKS,
                                             .pid = t->pid, .parent_uuid = t->process.uuid};
                t->st.ntask_tracks++;
                /* VEC_PUSH may move the array: names are set where they stay. */
                for (size_t i = 0; i < t->lanes.n; i++)
                        t->lanes.v[i].track.name = t->lanes.v[i].name;
                if (describe(t, ts, &t->lanes.v[*ret].track) < 0)
                        return t->failed;
        }
        t->lanes.v[*ret].task = task;
        return 0;
}

static int task_begin(struct tl *t, uint64_t ts, uint64_t tid, uint64_t id, uint64_t parent,
                      const char *name, bool before_trace) {
        if (!id || task_find(t, id))
                return 0; /* the agent never reuses an open id; stay safe */
        size_t idx;
        if (t->free_tasks.n) {
                idx = t->free_tasks.v[--t->free_tasks.n];
        } else {
                struct task *slot = FR_VEC_PUSH(t->tasks);
                if (!slot)
                        return oom(t);
                idx = t->tasks.n - 1;
        }
        t->tasks.v[idx] = (struct task){.id = id, .lane = SIZE_MAX};
        if (fr_u64map_put(&t->by_task, id, idx) < 0)
                return oom(t);
        bool ok = budget(t, ts, false);
        if (t->failed)
                return t->failed;
        if (!ok)
                return 0;
        size_t lane = 0;
        const char *iname = intern(t, name ? name : "(unnamed task)");
        if (!iname || lane_take(t, ts, id, &lane) < 0)
                return t->failed;
        t->tasks.v[idx].lane = lane;
        t->tasks.v[idx].name = iname;
        t->lanes.v[lane].task_name = iname;
        const struct task *pt = parent ? task_find(t, parent) : NULL;
        bool flow = pt && pt->lane != SIZE_MAX;
        if (flow) {
                /* The arrow starts at a mark on the parent's slice. */
                struct tl_event m = {.ts = ts, .track = &t->lanes.v[pt->lane].track, .tid = tid,
                                     .name = "spawn", .task = parent, .flow = id, .nargs = 1,
                                     .args = {{.key = "child", .type = TL_ARG_UINT, .u = id}}};
                if (emit(t, t->ops->instant, &m, &t->st.ninstants) < 0)
                        return t->failed;
                t->st.nflows++;
        }
        struct tl_event e = {.ts = ts, .track = &t->lanes.v[lane].track, .tid = tid,
                             .name = iname, .task = id, .flow = flow ? id : 0};
        e.args[e.nargs++] = (struct tl_arg){.key = "task", .type = TL_ARG_UINT, .u = id};
        if (parent)
                e.args[e.nargs++] = (struct tl_arg){.key = "parent", .type = TL_ARG_UINT, .u = parent};
        e.args[e.nargs++] = (struct tl_arg){.key = "begun_on_thread", .type = TL_ARG_UINT, .u = tid};
        if (before_trace)
                e.args[e.nargs++] = (struct tl_arg){.key = "begun_before_trace", .type = TL_ARG_BOOL,
                                                    .u = 1};
        return emit(t, t->ops->begin, &e, &t->st.nslices);
}

static int task_end(struct tl *t, uint64_t ts, uint64_t tid, uint64_t id) {
        size_t idx;
        if (!fr_u64map_get(&t->by_task, id, &idx)) {
                /* Begun before the oldest generation kept and not in its STATUS. */
                if (!budget(t, ts, false))
                        return t->failed;
                struct tl_event e = {.ts = ts, .track = &t->process, .tid = tid,
                                     .name = "end of a task begun before the trace", .nargs = 1,
                                     .args = {{.key = "task", .type = TL_ARG_UINT, .u = id}}};
                return emit(t, t->ops->instant, &e, &t->st.ninstants);
        }
        size_t lane = t->tasks.v[idx].lane;
        const char *name = t->tasks.v[idx].name;
        fr_u64map_del(&t->by_task, id);
        size_t *f = FR_VEC_PUSH(t->free_tasks);
        if (!f)
                return oom(t);
        *f = idx;
        if (lane == SIZE_MAX)
                return 0;
        struct tl_event e = {.ts = ts, .track = &t->lanes.v[lane].track, .tid = tid, .task = id,
                             .name = name};
        if (emit(t, t->ops->end, &e, NULL) < 0)
                return t->failed;
        t->lanes.v[lane].task = 0;
        size_t *fl = FR_VEC_PUSH(t->free_lanes);
        if (!fl)
                return oom(t);
        *fl = lane;
        return 0;
}

static int instant(struct tl *t, uint64_t ts, const struct tl_track *track, uint64_t tid,
                   const char *name, const struct tl_arg *args, size_t nargs) {
        bool ok = budget(t, ts, false);
        if (t->failed)
                return t->failed;
        if (!ok)
                return 0;
        struct tl_event e = {.ts = ts, .track = track, .tid = tid, .name = name, .nargs = nargs};
        if (nargs)
                memcpy(e.args, args, nargs * sizeof *args);
        return emit(t, t->ops->instant, &e, &t->st.ninstants);
}

static const char *lost_name(uint64_t kind) {
        switch (kind) {
        case FR_LOST_EVENTS:
                return "lost events";
        case FR_LOST_SAMPLES:
                return "lost samples";
        case FR_LOST_REGIONS:
                return "lost regions";
        default:
                return "lost (unknown kind)";
        }
}

/* timeline_crash - the fatal signal: an instant on the crashing thread,
 * named after the signal, with its code and address (the stack is in the
 * crash report and the profile). */
static int timeline_crash(struct tl *t, const struct fr_generation *g, const struct fr_crash *c) {
        uint64_t ts = wall(t, g, c->time);
        struct thr *th = thread_get(t, ts, c->tid);
        if (!th)
                return t->failed;
        char sig[32], code[32], name[48];
        snprintf(name, sizeof name, "crash: %s", fr_signal_name(c->signo, sig, sizeof sig));
        const char *cs = fr_sicode_name(c->signo, c->code, code, sizeof code);
        struct tl_arg a[3] = {
                {.key = "si_code", .type = TL_ARG_STR, .s = cs, .slen = strlen(cs)},
                {.key = "address", .type = TL_ARG_UINT, .u = c->addr},
                {.key = "stack overflow", .type = TL_ARG_UINT, .u = (c->flags & FR_CRASH_OVERFLOW) != 0},
        };
        return instant(t, ts, &th->track, c->tid, name, a, 3);
}

/* ------------------------------------------------------------------------ */
/* Events                                                                    */

/* timeline_event - what one recorded event becomes. */
static int timeline_event(struct tl *t, const struct fr_generation *g, const struct fr_event *ev) {
        uint64_t ts = wall(t, g, ev->time);
        struct thr *th;

        if (ev->type == FR_EV_THREAD_START) {
                /* A new thread under this id: a new track if the id was used before. */
                th = thread_new(t, ts, ev->tid, NULL);
                if (!th)
                        return t->failed;
                return instant(t, ts, &th->track, ev->tid, "thread start", NULL, 0);
        }
        th = thread_get(t, ts, ev->tid);
        if (!th)
                return t->failed;
        switch (ev->type) {
        case FR_EV_TASK_BEGIN:
                return task_begin(t, ts, ev->tid, ev->task, ev->parent, ev->name, false);
        case FR_EV_TASK_END:
                return task_end(t, ts, ev->tid, ev->task);
        case FR_EV_REGION_BEGIN:
                return region_begin(t, ts, th, ev->task, ev->name, false);
        case FR_EV_REGION_END:
                return region_end(t, ts, th);
        case FR_EV_LOG: {
                struct tl_arg a[3] = {
                        {.key = "category", .type = TL_ARG_STR, .s = ev->category ? ev->category : "",
                         .slen = ev->category ? strlen(ev->category) : 0},
                        {.key = "message", .type = TL_ARG_STR, .s = ev->message ? ev->message : "",
                         .slen = ev->message ? ev->message_len : 0},
                        {.key = "task", .type = TL_ARG_UINT, .u = ev->task},
                };
                const char *name = ev->category && *ev->category ? ev->category : "log";
                return instant(t, ts, &th->track, ev->tid, name, a, ev->task ? 3 : 2);
        }
        case FR_EV_THREAD_NAME: {
                int r = thread_rename(t, ts, th, ev->name);
                if (r < 0)
                        return r;
                struct tl_arg a = {.key = "name", .type = TL_ARG_STR, .s = ev->name ? ev->name : "",
                                   .slen = ev->name ? strlen(ev->name) : 0};
                return instant(t, ts, &th->track, ev->tid, "thread name", &a, 1);
        }
        case FR_EV_THREAD_EXIT: {
                while (th->depth > 0)
                        if (region_end(t, ts, th) < 0)
                                return t->failed;
                th->alive = false;
                return instant(t, ts, &th->track, ev->tid, "thread exit", NULL, 0);
        }
        case FR_EV_LOST: {
                struct tl_arg a = {.key = "count", .type = TL_ARG_UINT, .u = ev->count};
                if (ev->lost_kind == FR_LOST_SAMPLES)
                        t->st.lost_samples += ev->count;
                else if (ev->lost_kind == FR_LOST_EVENTS)
                        t->st.lost_events += ev->count;
                return instant(t, ts, &th->track, ev->tid, lost_name(ev->lost_kind), &a, 1);
        }
        default:
                return 0; /* a type this converter does not know: not shown */
        }
}

static int timeline_sample(struct tl *t, const struct fr_generation *g, const struct fr_sample *s) {
        uint64_t ts = wall(t, g, s->time);
        if (!t->ops->sample)
                return 0;
        struct thr *th = thread_get(t, ts, s->tid);
        if (!th)
                return t->failed;
        bool ok = budget(t, ts, true);
        if (t->failed)
                return t->failed;
        if (!ok)
                return 0;
        if (t->ops->sample(t->sink, ts, &th->track, s) < 0)
                return oom(t);
        t->st.nsamples++;
        return 0;
}

/* sync_status - the generation's STATUS: threads, names, open regions and
 * tasks. The first generation opens what was open before the trace; later
 * ones agree with what we followed (the reader checks it), except for a
 * thread we have not seen yet. */
static int sync_status(struct tl *t, const struct fr_generation *g, uint64_t ts) {
        for (size_t i = 0; i < g->nthreads; i++) {
                const struct fr_thread_state *s = &g->threads[i];
                struct thr *th = thread_find(t, s->tid);
                if (th && th->alive) {
                        if (thread_rename(t, ts, th, s->name) < 0)
                                return t->failed;
                        continue;
                }
                th = thread_new(t, ts, s->tid, s->name);
                if (!th)
                        return t->failed;
                for (uint32_t j = 0; j < s->nregions; j++)
                        if (region_begin(t, ts, th, s->regions[j].task, s->regions[j].name, true) < 0)
                                return t->failed;
        }
        for (size_t i = 0; i < g->ntasks; i++) {
                const struct fr_task_state *s = &g->tasks[i];
                if (!task_find(t, s->id) &&
                    task_begin(t, ts, t->pid, s->id, s->parent, s->name, true) < 0)
                        return t->failed;
        }
        return 0;
}

static int on_generation(const struct fr_trace_header *h, const struct fr_generation *g, void *ud) {
        struct tl *t = ud;
        uint64_t ts;
        int r;

        if (!t->started) {
                t->started = true;
                t->pid = h->pid;
                t->comm = strdup(h->comm && *h->comm ? h->comm : "process");
                if (!t->comm)
                        return oom(t);
                t->t0 = t->last_ts = g->real_ns;
                t->process = (struct tl_track){.uuid = t->next_uuid++, .kind = TL_TRACK_PROCESS,
                                               .pid = h->pid, .tid = h->pid, .name = t->comm};
                if (describe(t, g->real_ns, &t->process) < 0)
                        return t->failed;
        }
        if (cancelled(t))
                return t->failed;
        t->st.ngens++;
        ts = wall(t, g, g->start);
        if ((r = t->ops->generation(t->sink, g)) < 0)
                return oom(t);
        if (sync_status(t, g, ts) < 0)
                return t->failed;
        /* Events and samples, merged by time (each list is sorted). */
        size_t i = 0, j = 0;
        while (i < g->nevents || j < g->nsamples) {
                if (j >= g->nsamples || (i < g->nevents && g->events[i].time <= g->samples[j].time))
                        r = timeline_event(t, g, &g->events[i++]);
                else
                        r = timeline_sample(t, g, &g->samples[j++]);
                if (r < 0)
                        return t->failed ? t->failed : r;
                if (((i + j) & 4095) == 0 && cancelled(t))
                        return t->failed;
        }
        if (g->crash && timeline_crash(t, g, g->crash) < 0)
                return t->failed;
        ts = wall(t, g, g->end);
        t->end_ts = ts;
        if (g->lost_samples) {
                /* The reader does not say which thread: on the process track. */
                struct tl_arg a = {.key = "count", .type = TL_ARG_UINT, .u = g->lost_samples};
                t->st.lost_samples += g->lost_samples;
                if (instant(t, ts, &t->process, t->pid, "lost samples", &a, 1) < 0)
                        return t->failed;
        }
        return 0;
}

/* close_all - end what is still open at the end of the trace. */
static int close_all(struct tl *t) {
        uint64_t ts = t->end_ts > t->last_ts ? t->end_ts : t->last_ts;
        for (size_t i = 0; i < t->threads.n; i++) {
                struct thr *th = t->threads.v[i];
                while (th->alive && th->depth > 0)
                        if (region_end(t, ts, th) < 0)
                                return t->failed;
        }
        for (size_t i = 0; i < t->lanes.n; i++) {
                if (!t->lanes.v[i].task)
                        continue;
                struct tl_event e = {.ts = ts, .track = &t->lanes.v[i].track, .tid = t->pid,
                                     .task = t->lanes.v[i].task, .name = t->lanes.v[i].task_name};
                if (emit(t, t->ops->end, &e, NULL) < 0)
                        return t->failed;
        }
        return 0;
}

static void tl_free(struct tl *t) {
        for (size_t i = 0; i < t->threads.n; i++) {
                free(t->threads.v[i]->name);
                free(t->threads.v[i]);
        }
        free(t->threads.v);
        fr_u64map_free(&t->by_tid);
        free(t->tasks.v);
        free(t->free_tasks.v);
        fr_u64map_free(&t->by_task);
        free(t->lanes.v);
        free(t->free_lanes.v);
        free(t->comm);
        fr_keymap_free(&t->names);
        fr_arena_free(&t->arena);
}

int fr_timeline_from_trace(const uint8_t *trace, size_t len, const struct fr_timeline_options *opts,
                           uint8_t **ret_out, size_t *ret_len, struct fr_timeline_stats *ret_stats,
                           char *err, size_t errlen) {
        static const struct fr_timeline_options defaults;
        struct tl t = {.opts = opts ? opts : &defaults, .err = err, .errlen = errlen, .next_uuid = 1};
        uint8_t *out = NULL;
        size_t out_len = 0;
        int r;

        if (err && errlen)
                err[0] = '\0';
        t.st.max_events_per_s = t.opts->max_events_per_s ? t.opts->max_events_per_s
                                                         : FR_TIMELINE_DEFAULT_EVENTS_PER_S;
        t.st.max_samples_per_s = t.opts->max_samples_per_s ? t.opts->max_samples_per_s
                                                           : FR_TIMELINE_DEFAULT_SAMPLES_PER_S;
        r = (t.opts->flags & FR_TIMELINE_JSON) ? tl_json_new(t.opts, err, errlen, &t.ops, &t.sink)
                                               : tl_pb_new(t.opts, err, errlen, &t.ops, &t.sink);
        if (r < 0) {
                if (err && errlen && !err[0])
                        snprintf(err, errlen, "out of memory");
                return r;
        }
        unsigned rflags = t.opts->flags & FR_TIMELINE_ALLOW_PARTIAL_TAIL ? FR_READ_ALLOW_PARTIAL_TAIL : 0;
        r = fr_trace_read(trace, len, rflags, on_generation, &t, NULL, err, errlen);
        if (r == 0 && !t.started) {
                /* A trace with no generation still opens: just the process. */
                r = tl_fail(&t, -EINVAL, "the trace holds no complete generation");
        }
        if (r == 0)
                r = close_all(&t);
        if (r == 0 && (r = t.ops->finish(t.sink, &out, &out_len)) < 0)
                tl_fail(&t, r, "out of memory");
        if (r != 0 && t.failed)
                r = t.failed;
        else if (r > 0)
                r = -EINVAL;
        t.ops->free(t.sink);
        tl_free(&t);
        if (r < 0) {
                free(out);
                return r;
        }
        *ret_out = out;
        *ret_len = out_len;
        if (ret_stats)
                *ret_stats = t.st;
        return 0;
}

/* ------------------------------------------------------------------------ */
/* Helpers of the writers (timeline_sink.h)                                  */

bool tl_buf_reserve(struct tl_buf *b, size_t more) {
        if (b->oom)
                return false;
        if (b->cap - b->len >= more)
                return true;
        if (fr_vec_grow(&b->p, &b->cap, b->len + more, 1) < 0) {
                b->oom = true;
                return false;
        }
        return true;
}

size_t tl_utf8_valid_prefix(const uint8_t *s, size_t n) {
        size_t i = 0;
        while (i < n) {
                uint8_t c = s[i];
                if (c < 0x80) {
                        i++;
                        continue;
                }
                size_t len;
                uint32_t min, cp;
                if ((c & 0xe0) == 0xc0)
                        len = 2, min = 0x80, cp = c & 0x1f;
                else if ((c & 0xf0) == 0xe0)
                        len = 3, min = 0x800, cp = c & 0x0f;
                else if ((c & 0xf8) == 0xf0)
                        len = 4, min = 0x10000, cp = c & 0x07;
                else
                        return i;
                if (n - i < len)
                        return i;
                for (size_t k = 1; k < len; k++) {
                        if ((s[i + k] & 0xc0) != 0x80)
                                return i;
                        cp = cp << 6 | (s[i + k] & 0x3f);
                }
                if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return i;
                i += len;
        }
        return i;
}
