/* Conversion of a trace's CPU samples to a pprof profile (profile.proto,
 * gzip'd: the .pb.gz that go tool pprof, speedscope and Parca open).
 *
 * What the profile holds:
 *  - sample types samples/count and cpu/nanoseconds, cpu last (consumers
 *    default to the last type, and it is also the default_sample_type);
 *    period_type cpu/nanoseconds, period 1e9 / sample_hz of the trace's
 *    CLOCK batches (100 Hz assumed, and said in a comment, when the trace
 *    gives 0). A sample of weight w has the values [w, w * period].
 *  - time_nanos: the wall-clock start of the first generation;
 *    duration_nanos: from there to the end of the last one.
 *  - one mapping per loaded object of the MAPS batches (the union over the
 *    generations), the trace header's exe first (mapping 1), with its file
 *    name and its build id in lowercase hex.
 *  - locations symbolized from the files on this machine (symbolize.h):
 *    function, source file, line and inlined frames (innermost first). The
 *    leaf frame's address is exact; every caller's return address gets -1
 *    so that it lands in the call. A frame that cannot be symbolized (file
 *    missing or another build) still gets a function, named
 *    "<object basename>+0x<file offset>", and its mapping then does not
 *    claim has_functions / has_filenames / has_line_numbers /
 *    has_inline_frames, which a mapping only claims when every one of its
 *    locations was resolved so.
 *  - string labels on each sample: thread_id (decimal), thread_name (when
 *    the thread has one), task (the task's name, when the sample has a task
 *    and the trace names it) and task_id (its number, decimal), region
 *    (when set). Samples with the same stack and labels are merged, across
 *    generations too.
 *  - with FR_PPROF_OFFCPU, the off-CPU profile instead: sample types
 *    waits/count and blocked/nanoseconds (last), from the waits of the
 *    trace: every BLOCK event (a wait that ended), and the threads still
 *    blocked at the end of the last generation (its BLOCKED batch), each
 *    counted once for the part of it inside the trace's window; its stack
 *    starts at the wrapped call; an extra label wait names the call
 *    (pthread_mutex_lock, read, ...). Same mappings, locations and
 *    symbolization as the CPU profile.
 *  - comments: the process and the snapshot reason, and each object that
 *    could not be symbolized with the reason.
 */
#ifndef FR_PPROF_H
#define FR_PPROF_H

#include <stddef.h>
#include <stdint.h>

struct fr_symbolizer;

/* Flags of struct fr_pprof_options. */
#define FR_PPROF_NO_SYMBOLIZE 1u /* leave every frame unresolved (no file is read) */
#define FR_PPROF_ALLOW_PARTIAL_TAIL 2u /* accept an incomplete last generation (post-mortem) */
#define FR_PPROF_OFFCPU 4u /* the off-CPU profile (blocked time) instead of the CPU profile */

struct fr_pprof_options {
        unsigned flags;
        /* Cache of opened objects to reuse across conversions (the daemon);
         * NULL: a private one for this call. */
        struct fr_symbolizer *symbolizer;
        /* Prefix for object paths when there is no symbolizer given, e.g.
         * "/proc/PID/root" for a process in another mount namespace; NULL: none. */
        const char *root;
        int gzip_level; /* zlib level 1..9; 0: the default (6) */
};

/* Counts of what was converted, for messages and tests. */
struct fr_pprof_stats {
        size_t ngens;        /* generations read */
        uint64_t nsamples;   /* trace samples (off-CPU: waits) */
        size_t nprofile_samples; /* distinct (stack, labels) in the profile */
        size_t nmappings, nlocations, nfunctions;
        size_t nunresolved;  /* locations left without symbols */
};

/* fr_pprof_from_trace - convert the trace in trace[0..len) (as read by
 * fr_trace_read: a raw trace, already inflated if it came as .trace.lz4).
 * opts may be NULL (all defaults). On success returns 0 with the gzip'd
 * profile in *ret_gz (free() it) and its size in *ret_len, and, when
 * ret_stats is not NULL, the counts. A trace with no samples gives a valid
 * profile with none. On failure returns -EINVAL (bad trace: err holds the
 * reader's message, naming the offset) or another negative errno (-ENOMEM,
 * a zlib failure as -EIO) with a message in err (errlen bytes, always
 * NUL-terminated when errlen > 0); *ret_gz is then left untouched. */
int fr_pprof_from_trace(const uint8_t *trace, size_t len, const struct fr_pprof_options *opts,
                        uint8_t **ret_gz, size_t *ret_len, struct fr_pprof_stats *ret_stats,
                        char *err, size_t errlen);

#endif
