/* Conversion of a trace to a timeline that Perfetto UI, chrome://tracing and
 * speedscope open: Perfetto's protobuf trace format (.pftrace, a stream of
 * TracePacket, proto/perfetto.proto) or Chrome Trace Event JSON.
 *
 * What the timeline holds (docs/timeline.md has the full mapping):
 *  - a process track, and a track per thread (per incarnation of a reused
 *    thread id) with its name; a rename is an instant and renames the track;
 *  - regions as nested slices on their thread's track;
 *  - tasks as slices on "tasks" tracks under the process (one slice from
 *    begin to end, whatever the threads), with a flow from the parent task;
 *  - logs as instants (category, message), lost events / samples / regions
 *    as instants with their count;
 *  - CPU samples (protobuf only) with symbolized, interned stacks;
 *  - timestamps in wall-clock nanoseconds (CLOCK_REALTIME of the recorded
 *    process), from each generation's clock record; JSON in integer
 *    microseconds.
 * Regions and tasks open at the start of the trace begin at its start; those
 * still open at its end end there.
 *
 * Budget: at most max_events_per_s timeline events (slices and instants)
 * and max_samples_per_s samples per second of trace are emitted, so that a
 * huge trace stays openable in a browser tab. What is over the budget is
 * dropped (a slice whose begin is dropped is dropped whole), counted in the
 * stats, and marked by an instant "export limit reached" on the process
 * track where the dropping starts. */
#ifndef FR_TIMELINE_H
#define FR_TIMELINE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct fr_symbolizer;

#define FR_TIMELINE_JSON 1u               /* Chrome Trace Event JSON instead of protobuf */
#define FR_TIMELINE_NO_SYMBOLIZE 2u       /* leave every frame unresolved (no file is read) */
#define FR_TIMELINE_ALLOW_PARTIAL_TAIL 4u /* accept an incomplete last generation (post-mortem) */

#define FR_TIMELINE_DEFAULT_EVENTS_PER_S 50000
#define FR_TIMELINE_DEFAULT_SAMPLES_PER_S 10000

struct fr_timeline_options {
        unsigned flags;
        /* Cache of opened objects to reuse across conversions (the daemon);
         * NULL: a private one for this call. */
        struct fr_symbolizer *symbolizer;
        const char *root; /* prefix for object paths without a symbolizer given; NULL: none */
        /* Budget per second of trace; 0: the default above; UINT64_MAX: none. */
        uint64_t max_events_per_s, max_samples_per_s;
        /* When not NULL and set (by any thread), the conversion stops soon
         * (at the next generation, or within a few thousand events) and
         * fails with -ECANCELED: the daemon's shutdown does not wait for a
         * long export. */
        const atomic_bool *cancel;
};

struct fr_timeline_stats {
        size_t ngens;
        uint64_t nthreads;     /* thread tracks (incarnations) */
        uint64_t ntask_tracks; /* "tasks" tracks */
        uint64_t nslices, ninstants, nflows, nsamples; /* emitted */
        uint64_t dropped_events, dropped_samples;      /* over the budget */
        uint64_t lost_events, lost_samples;            /* lost by the agent, as recorded */
        uint64_t max_events_per_s, max_samples_per_s;  /* the budget in force */
};

/* fr_timeline_from_trace - convert the trace in trace[0..len) (raw, already
 * inflated if it came as .trace.lz4). opts may be NULL (defaults: protobuf,
 * symbolized). Returns 0 with the output in *ret_out (free() it) and its size
 * in *ret_len, and the counts in *ret_stats when not NULL. On failure returns
 * -EINVAL (bad trace: err holds the reader's message), -ECANCELED (opts->cancel
 * was set) or another negative errno with a message in err (errlen bytes, NUL-terminated when errlen > 0),
 * and *ret_out is left untouched. */
int fr_timeline_from_trace(const uint8_t *trace, size_t len, const struct fr_timeline_options *opts,
                           uint8_t **ret_out, size_t *ret_len, struct fr_timeline_stats *ret_stats,
                           char *err, size_t errlen);

#endif
