/* Internal interface between the timeline walker (timeline.c), which follows
 * the trace's state (threads, regions, tasks, budget, clocks), and its two
 * writers: Perfetto protobuf (timeline_pb.c) and Chrome JSON
 * (timeline_json.c). The walker calls them in time order, each track
 * described before its first use, slices properly nested per track. */
#ifndef FR_TIMELINE_SINK_H
#define FR_TIMELINE_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "timeline.h"
#include "trace_reader.h"

/* Growable output buffer; `oom` sticks once an allocation failed. */
struct tl_buf {
        uint8_t *p;
        size_t len, cap;
        bool oom;
};

bool tl_buf_reserve(struct tl_buf *b, size_t more);
static inline void tl_buf_put(struct tl_buf *b, const void *p, size_t n) {
        if (!tl_buf_reserve(b, n))
                return;
        __builtin_memcpy(b->p + b->len, p, n);
        b->len += n;
}
/* tl_utf8_clean - the length of the longest valid UTF-8 prefix of s[0..n)
 * up to the first invalid byte; writers replace the bad byte and go on. */
size_t tl_utf8_valid_prefix(const uint8_t *s, size_t n);

enum tl_track_kind { TL_TRACK_PROCESS, TL_TRACK_THREAD, TL_TRACK_TASKS };

struct tl_track {
        uint64_t uuid;
        enum tl_track_kind kind;
        uint64_t pid, tid; /* tid: thread tracks */
        const char *name;  /* thread name (NULL: unnamed), process comm, or lane name */
        uint64_t parent_uuid; /* tasks tracks: the process track */
};

enum tl_arg_type { TL_ARG_STR, TL_ARG_UINT, TL_ARG_BOOL };

struct tl_arg {
        const char *key;
        enum tl_arg_type type;
        const char *s; /* TL_ARG_STR: s[0..slen) */
        size_t slen;
        uint64_t u;
};

#define TL_MAX_ARGS 4

struct tl_event {
        uint64_t ts; /* wall-clock ns */
        const struct tl_track *track;
        uint64_t tid;      /* the thread it happened on (JSON needs one for every event) */
        const char *name;  /* ends too: the begin's name (JSON readers match by name) */
        uint64_t task;     /* tasks tracks: the task id (JSON async id) */
        uint64_t flow;     /* 0: none; else events with the same id are linked */
        size_t nargs;
        struct tl_arg args[TL_MAX_ARGS];
};

struct tl_sink_ops {
        /* A track's descriptor: before its first event, and again when its
         * name changes. */
        int (*track)(void *s, uint64_t ts, const struct tl_track *t);
        int (*begin)(void *s, const struct tl_event *e);
        int (*end)(void *s, const struct tl_event *e);
        int (*instant)(void *s, const struct tl_event *e);
        /* A generation starts: its loaded objects, for the samples' stacks. */
        int (*generation)(void *s, const struct fr_generation *g);
        /* A CPU sample of a thread (NULL: writers without samples). */
        int (*sample)(void *s, uint64_t ts, const struct tl_track *thread,
                      const struct fr_sample *smp);
        /* The whole output, moved to *ret (free() it). */
        int (*finish)(void *s, uint8_t **ret, size_t *ret_len);
        void (*free)(void *s);
};

/* Writers; each returns 0 with its state in *ret, or -ENOMEM. */
int tl_pb_new(const struct fr_timeline_options *opts, char *err, size_t errlen,
              const struct tl_sink_ops **ret_ops, void **ret);
int tl_json_new(const struct fr_timeline_options *opts, char *err, size_t errlen,
                const struct tl_sink_ops **ret_ops, void **ret);

#endif
