/* The LTTng-UST tracepoint provider for bench_annotate. */
#define TRACEPOINT_CREATE_PROBES
#include "lttng_tp.h"
