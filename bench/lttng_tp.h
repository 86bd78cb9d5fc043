/* LTTng-UST tracepoints with the same payload as a flightrec region event
 * (task id and name), for bench_annotate's comparison. */
#undef TRACEPOINT_PROVIDER
#define TRACEPOINT_PROVIDER frbench

#undef TRACEPOINT_INCLUDE
#define TRACEPOINT_INCLUDE "./lttng_tp.h"

#if !defined(FR_LTTNG_TP_H) || defined(TRACEPOINT_HEADER_MULTI_READ)
#define FR_LTTNG_TP_H

#include <lttng/tracepoint.h>

TRACEPOINT_EVENT(frbench, region_begin,
        TP_ARGS(uint64_t, task, const char *, name),
        TP_FIELDS(ctf_integer(uint64_t, task, task) ctf_string(name, name)))
TRACEPOINT_EVENT(frbench, region_end,
        TP_ARGS(uint64_t, task, const char *, name),
        TP_FIELDS(ctf_integer(uint64_t, task, task) ctf_string(name, name)))

#endif

#include <lttng/tracepoint-event.h>
