/* Chrome Trace Event JSON writer of the timeline (timeline_sink.h), for
 * chrome://tracing-style tools, Perfetto's legacy importer and speedscope.
 *
 * {"displayTimeUnit":"ms","traceEvents":[...]}: every event in time order,
 * ts in integer microseconds of wall-clock time (never an exponent), the M
 * events (process_name, thread_name) where the track appears or is renamed. Regions are
 * B/E on (pid, tid); tasks are nestable async b/e with cat "task" and the
 * task id as id, a child's spawn an async instant "n" on its parent; logs,
 * lost counts and thread marks are instants "i". JSON has no flows and no
 * CPU samples here (Perfetto ignores JSON samples): the .pftrace and the
 * .pb.gz have them. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timeline_sink.h"

struct js {
        struct tl_buf ev; /* the whole output */
};

#define JSON_PREFIX "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n"
#define JSON_PREFIX_LEN (sizeof JSON_PREFIX - 1)

static void put_str(struct tl_buf *b, const char *s) {
        tl_buf_put(b, s, strlen(s));
}

static void put_u64(struct tl_buf *b, uint64_t v) {
        char tmp[24];
        size_t n = 0;
        do {
                tmp[sizeof tmp - 1 - n++] = (char)('0' + v % 10);
                v /= 10;
        } while (v);
        tl_buf_put(b, tmp + sizeof tmp - n, n);
}

/* put_json_string - s[0..n) quoted and escaped, as valid UTF-8. */
static void put_json_string(struct tl_buf *b, const char *s, size_t n) {
        static const char hex[] = "0123456789abcdef";
        const uint8_t *u = (const uint8_t *)s;
        tl_buf_put(b, "\"", 1);
        for (size_t i = 0; i < n;) {
                size_t run = i;
                while (run < n && u[run] >= 0x20 && u[run] < 0x80 && u[run] != '"' && u[run] != '\\')
                        run++;
                tl_buf_put(b, u + i, run - i);
                i = run;
                if (i >= n)
                        break;
                uint8_t c = u[i];
                if (c == '"' || c == '\\') {
                        char esc[2] = {'\\', (char)c};
                        tl_buf_put(b, esc, 2);
                        i++;
                } else if (c < 0x20) {
                        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                        tl_buf_put(b, esc, 6);
                        i++;
                } else {
                        size_t ok = tl_utf8_valid_prefix(u + i, n - i);
                        /* Copy the valid multibyte run up to the next ASCII byte. */
                        size_t k = 0;
                        while (k < ok && u[i + k] >= 0x80)
                                k++;
                        if (k == 0) {
                                tl_buf_put(b, "\\ufffd", 6);
                                i++;
                        } else {
                                tl_buf_put(b, u + i, k);
                                i += k;
                        }
                }
        }
        tl_buf_put(b, "\"", 1);
}

static void put_cstr(struct tl_buf *b, const char *s) {
        put_json_string(b, s, strlen(s));
}

/* head - {"ph":"X","pid":P,"tid":T,"ts":US */
static void head(struct tl_buf *b, const char *ph, uint64_t pid, uint64_t tid, uint64_t ts_us) {
        put_str(b, b->len > JSON_PREFIX_LEN ? ",\n{\"ph\":\"" : "{\"ph\":\"");
        put_str(b, ph);
        put_str(b, "\",\"pid\":");
        put_u64(b, pid);
        put_str(b, ",\"tid\":");
        put_u64(b, tid);
        put_str(b, ",\"ts\":");
        put_u64(b, ts_us);
}

static void put_args(struct tl_buf *b, const struct tl_arg *a, size_t n) {
        if (!n)
                return;
        put_str(b, ",\"args\":{");
        for (size_t i = 0; i < n; i++) {
                if (i)
                        put_str(b, ",");
                put_cstr(b, a[i].key);
                put_str(b, ":");
                if (a[i].type == TL_ARG_STR)
                        put_json_string(b, a[i].s, a[i].slen);
                else if (a[i].type == TL_ARG_BOOL)
                        put_str(b, a[i].u ? "true" : "false");
                else
                        put_u64(b, a[i].u);
        }
        put_str(b, "}");
}

static void put_task_id(struct tl_buf *b, uint64_t id) {
        char tmp[40];
        snprintf(tmp, sizeof tmp, ",\"cat\":\"task\",\"id\":\"0x%" PRIx64 "\"", id);
        put_str(b, tmp);
}

static int js_track(void *s, uint64_t ts, const struct tl_track *t) {
        struct js *j = s;
        if (t->kind == TL_TRACK_TASKS)
                return 0; /* async events need no track of their own */
        /* In the stream at the time the track appears (or is renamed), so
         * that the events stay sorted and nothing is copied at the end. */
        bool proc = t->kind == TL_TRACK_PROCESS;
        head(&j->ev, "M", t->pid, t->tid, ts / 1000);
        put_str(&j->ev, proc ? ",\"name\":\"process_name\",\"args\":{\"name\":"
                             : ",\"name\":\"thread_name\",\"args\":{\"name\":");
        if (t->name)
                put_cstr(&j->ev, t->name);
        else {
                char tmp[32];
                snprintf(tmp, sizeof tmp, "thread %" PRIu64, t->tid);
                put_cstr(&j->ev, tmp);
        }
        put_str(&j->ev, "}}");
        return j->ev.oom ? -ENOMEM : 0;
}

static int js_event(struct js *j, char ph, const struct tl_event *e) {
        struct tl_buf *b = &j->ev;
        bool tasks = e->track->kind == TL_TRACK_TASKS;
        char phs[2] = {ph, 0};
        if (tasks)
                phs[0] = ph == 'B' ? 'b' : ph == 'E' ? 'e' : 'n';
        head(b, phs, e->track->pid, e->tid, e->ts / 1000);
        if (tasks)
                put_task_id(b, e->task);
        if (ph == 'i' && !tasks)
                put_str(b, e->track->kind == TL_TRACK_PROCESS ? ",\"s\":\"p\"" : ",\"s\":\"t\"");
        if (e->name) {
                put_str(b, ",\"name\":");
                put_cstr(b, e->name);
        }
        /* speedscope keys a frame by name and args: per-region args would
         * split "render" into one frame per task. Regions carry none. */
        if (e->track->kind != TL_TRACK_THREAD || ph == 'i')
                put_args(b, e->args, e->nargs);
        put_str(b, "}");
        return b->oom ? -ENOMEM : 0;
}

static int js_begin(void *s, const struct tl_event *e) {
        return js_event(s, 'B', e);
}
static int js_end(void *s, const struct tl_event *e) {
        return js_event(s, 'E', e);
}
static int js_instant(void *s, const struct tl_event *e) {
        return js_event(s, 'i', e);
}
static int js_generation(void *s, const struct fr_generation *g) {
        (void)s;
        (void)g;
        return 0;
}

static int js_finish(void *s, uint8_t **ret, size_t *ret_len) {
        struct js *j = s;
        put_str(&j->ev, "\n]}\n");
        if (j->ev.oom)
                return -ENOMEM;
        *ret = j->ev.p;
        *ret_len = j->ev.len;
        j->ev = (struct tl_buf){0};
        return 0;
}

static void js_free(void *s) {
        struct js *j = s;
        free(j->ev.p);
        free(j);
}

static const struct tl_sink_ops js_ops = {
        .track = js_track, .begin = js_begin, .end = js_end, .instant = js_instant,
        .generation = js_generation, .sample = NULL, .finish = js_finish, .free = js_free,
};

int tl_json_new(const struct fr_timeline_options *opts, char *err, size_t errlen,
                const struct tl_sink_ops **ret_ops, void **ret) {
        (void)opts;
        (void)err;
        (void)errlen;
        struct js *j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        put_str(&j->ev, JSON_PREFIX);
        if (j->ev.oom) {
                free(j);
                return -ENOMEM;
        }
        *ret_ops = &js_ops;
        *ret = j;
        return 0;
}
