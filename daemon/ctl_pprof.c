/* flightrecctl pprof TRACE [-o OUT.pb.gz] [--no-symbolize] [--root DIR]:
 * convert a trace's CPU samples (or, with --offcpu, its waits) to a gzip'd
 * pprof profile, offline.
 *
 * The output is written to a temporary file in the target's directory,
 * synced and renamed over the target (ctl_export_trace), so that a reader
 * never sees a partial profile and a failed conversion leaves nothing behind. */
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "ctl.h"
#include "pprof.h"

#define PPROF_MAX_BYTES ((size_t)1 << 30) /* decoded trace size we accept */
#define PPROF_FILE_MODE 0640

static void pprof_usage(FILE *f) {
        fprintf(f, "usage: flightrecctl pprof TRACE [-o OUT.pb.gz] [--offcpu] [--no-symbolize] [--root DIR]\n"
                   "\n"
                   "  -o, --output FILE  where to write (default: TRACE with .trace[.lz4]\n"
                   "                     replaced by .pb.gz, or .offcpu.pb.gz)\n"
                   "  --offcpu           the off-CPU profile: time blocked in waits\n"
                   "  --no-symbolize     leave frames unresolved (read no object file)\n"
                   "  --root DIR         read the recorded objects under DIR (e.g. a\n"
                   "                     container's root, /proc/PID/root)\n");
}

/* What pprof_convert needs, behind ctl_export_trace's one pointer. */
struct pprof_job {
        const struct fr_pprof_options *opts;
        struct fr_pprof_stats *st;
};

static int pprof_convert(void *arg, const uint8_t *data, size_t len, uint8_t **out,
                         size_t *out_len, char *err, size_t errlen) {
        struct pprof_job *j = arg;
        return fr_pprof_from_trace(data, len, j->opts, out, out_len, j->st, err, errlen);
}

int ctl_pprof(const struct ctl_options *opts, int argc, char **argv) {
        enum { OPT_NO_SYMBOLIZE = 256, OPT_ROOT, OPT_OFFCPU };
        static const struct option longopts[] = {
                {"output", required_argument, NULL, 'o'},
                {"no-symbolize", no_argument, NULL, OPT_NO_SYMBOLIZE},
                {"root", required_argument, NULL, OPT_ROOT},
                {"offcpu", no_argument, NULL, OPT_OFFCPU},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        struct fr_pprof_options popts = {0};
        struct fr_pprof_stats st;
        struct pprof_job job = {&popts, &st};
        const char *output = NULL;
        char *out_path;
        size_t gzlen;
        int c;

        (void)opts;
        while ((c = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1) {
                switch (c) {
                case 'o':
                        output = optarg;
                        break;
                case OPT_NO_SYMBOLIZE:
                        popts.flags |= FR_PPROF_NO_SYMBOLIZE;
                        break;
                case OPT_ROOT:
                        popts.root = optarg;
                        break;
                case OPT_OFFCPU:
                        popts.flags |= FR_PPROF_OFFCPU;
                        break;
                case 'h':
                        pprof_usage(stdout);
                        return 0;
                default:
                        pprof_usage(stderr);
                        return CTL_EXIT_USAGE;
                }
        }
        if (argc - optind != 1 || (output && !*output)) {
                pprof_usage(stderr);
                return CTL_EXIT_USAGE;
        }
        const char *path = argv[optind];
        if (ctl_export_trace(path, output,
                             popts.flags & FR_PPROF_OFFCPU ? ".offcpu.pb.gz" : ".pb.gz",
                             PPROF_MAX_BYTES, PPROF_FILE_MODE, pprof_convert, &job, &out_path,
                             &gzlen))
                return CTL_EXIT_FAILURE;
        fprintf(stderr,
                "flightrecctl: wrote %s: %" PRIu64 " %s (%zu distinct) in %zu generations, "
                "%zu locations, %zu unresolved, %zu mappings\n",
                out_path, st.nsamples, popts.flags & FR_PPROF_OFFCPU ? "waits" : "samples",
                st.nprofile_samples, st.ngens, st.nlocations, st.nunresolved,
                st.nmappings);
        free(out_path);
        return 0;
}
