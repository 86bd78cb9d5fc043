/* flightrecctl perfetto [--json] TRACE [-o OUT] [--no-symbolize] [--root DIR]
 * [--max-events-per-s N] [--max-samples-per-s N]: export a trace's timeline
 * to Perfetto's protobuf format (.pftrace, for ui.perfetto.dev) or Chrome
 * Trace Event JSON (.json), offline (proto/timeline.h). The output goes
 * through ctl_export_trace (fr_write_file_atomic): a damaged trace leaves no
 * file. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "ctl.h"
#include "timeline.h"

#define PERFETTO_MAX_BYTES ((size_t)1 << 30) /* decoded trace size we accept */
#define PERFETTO_FILE_MODE 0640

static void perfetto_usage(FILE *f) {
        fprintf(f,
                "usage: flightrecctl perfetto [--json] TRACE [-o OUT] [--no-symbolize] [--root DIR]\n"
                "                             [--max-events-per-s N] [--max-samples-per-s N]\n"
                "\n"
                "  --json                 Chrome Trace Event JSON instead of Perfetto protobuf\n"
                "  -o, --output FILE      where to write (default: TRACE with .trace[.lz4]\n"
                "                         replaced by .pftrace, or .json with --json)\n"
                "  --no-symbolize         leave sampled frames unresolved (read no object file)\n"
                "  --root DIR             read the recorded objects under DIR\n"
                "  --max-events-per-s N   slices and instants kept per second of trace\n"
                "                         (default %d; 0: no limit)\n"
                "  --max-samples-per-s N  CPU samples kept per second of trace (default %d;\n"
                "                         0: no limit)\n",
                FR_TIMELINE_DEFAULT_EVENTS_PER_S, FR_TIMELINE_DEFAULT_SAMPLES_PER_S);
}

/* parse_limit - N >= 0 (0: unlimited, kept as UINT64_MAX). */
static int parse_limit(const char *s, uint64_t *ret) {
        char *end;
        errno = 0;
        if (!*s || *s == '-')
                return -EINVAL;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || *end)
                return -EINVAL;
        *ret = v ? (uint64_t)v : UINT64_MAX;
        return 0;
}

/* What perfetto_convert needs, behind ctl_export_trace's one pointer. */
struct perfetto_job {
        const struct fr_timeline_options *opts;
        struct fr_timeline_stats *st;
};

static int perfetto_convert(void *arg, const uint8_t *data, size_t len, uint8_t **out,
                            size_t *out_len, char *err, size_t errlen) {
        struct perfetto_job *j = arg;
        return fr_timeline_from_trace(data, len, j->opts, out, out_len, j->st, err, errlen);
}

int ctl_perfetto(const struct ctl_options *opts, int argc, char **argv) {
        enum { OPT_JSON = 256, OPT_NO_SYMBOLIZE, OPT_ROOT, OPT_MAX_EVENTS, OPT_MAX_SAMPLES };
        static const struct option longopts[] = {
                {"output", required_argument, NULL, 'o'},
                {"json", no_argument, NULL, OPT_JSON},
                {"no-symbolize", no_argument, NULL, OPT_NO_SYMBOLIZE},
                {"root", required_argument, NULL, OPT_ROOT},
                {"max-events-per-s", required_argument, NULL, OPT_MAX_EVENTS},
                {"max-samples-per-s", required_argument, NULL, OPT_MAX_SAMPLES},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        struct fr_timeline_options topts = {0};
        struct fr_timeline_stats st;
        struct perfetto_job job = {&topts, &st};
        const char *output = NULL;
        char *out_path;
        size_t out_len;
        int c;

        (void)opts;
        while ((c = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1) {
                switch (c) {
                case 'o':
                        output = optarg;
                        break;
                case OPT_JSON:
                        topts.flags |= FR_TIMELINE_JSON;
                        break;
                case OPT_NO_SYMBOLIZE:
                        topts.flags |= FR_TIMELINE_NO_SYMBOLIZE;
                        break;
                case OPT_ROOT:
                        topts.root = optarg;
                        break;
                case OPT_MAX_EVENTS:
                case OPT_MAX_SAMPLES:
                        if (parse_limit(optarg, c == OPT_MAX_EVENTS ? &topts.max_events_per_s
                                                                    : &topts.max_samples_per_s) < 0) {
                                fprintf(stderr, "flightrecctl: bad limit '%s': a number >= 0\n",
                                        optarg);
                                return CTL_EXIT_USAGE;
                        }
                        break;
                case 'h':
                        perfetto_usage(stdout);
                        return 0;
                default:
                        perfetto_usage(stderr);
                        return CTL_EXIT_USAGE;
                }
        }
        if (argc - optind != 1 || (output && !*output)) {
                perfetto_usage(stderr);
                return CTL_EXIT_USAGE;
        }
        const char *path = argv[optind];
        bool json = topts.flags & FR_TIMELINE_JSON;
        if (ctl_export_trace(path, output, json ? ".json" : ".pftrace", PERFETTO_MAX_BYTES,
                             PERFETTO_FILE_MODE, perfetto_convert, &job, &out_path, &out_len))
                return CTL_EXIT_FAILURE;
        fprintf(stderr,
                "flightrecctl: wrote %s (%zu bytes): %zu generations, %" PRIu64 " threads, %" PRIu64
                " slices, %" PRIu64 " instants, %" PRIu64 " flows, %" PRIu64 " samples\n",
                out_path, out_len, st.ngens, st.nthreads, st.nslices, st.ninstants, st.nflows,
                st.nsamples);
        if (st.dropped_events || st.dropped_samples)
                fprintf(stderr,
                        "flightrecctl: export limit: dropped %" PRIu64 " events and %" PRIu64
                        " samples over %" PRIu64 " events / %" PRIu64
                        " samples per second of trace (--max-events-per-s, --max-samples-per-s; "
                        "0 keeps everything)\n",
                        st.dropped_events, st.dropped_samples, st.max_events_per_s,
                        st.max_samples_per_s);
        if (!json)
                fprintf(stderr, "flightrecctl: open it in https://ui.perfetto.dev (Open trace file)\n");
        free(out_path);
        return 0;
}
