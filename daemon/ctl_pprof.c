/* flightrecctl pprof TRACE [-o OUT.pb.gz] [--no-symbolize] [--root DIR]:
 * convert a trace's CPU samples (or, with --offcpu, its waits) to a gzip'd
 * pprof profile, offline.
 *
 * The output is written to a temporary file in the target's directory,
 * synced and renamed over the target, so that a reader never sees a partial
 * profile and a failed conversion leaves nothing behind. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "fr_io.h"
#include "pprof.h"
#include "trace_reader.h"

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
        const char *output = NULL, *what = NULL;
        char *out_path = NULL, err[512];
        uint8_t *data = NULL, *gz = NULL;
        size_t len, gzlen;
        int c, r, ret = CTL_EXIT_FAILURE;

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
        out_path = output ? strdup(output)
                          : ctl_output_path(path, popts.flags & FR_PPROF_OFFCPU ? ".offcpu.pb.gz" : ".pb.gz");
        if (!out_path) {
                fprintf(stderr, "flightrecctl: out of memory\n");
                return CTL_EXIT_FAILURE;
        }
        /* Never replace the input with its own conversion. */
        if (strcmp(out_path, path) == 0) {
                fprintf(stderr, "flightrecctl: %s: the output would overwrite the trace\n", path);
                goto out;
        }
        if (fr_trace_load_file(path, PPROF_MAX_BYTES, &data, &len, err, sizeof err) < 0) {
                fprintf(stderr, "flightrecctl: %s: %s\n", path, err);
                goto out;
        }
        r = fr_pprof_from_trace(data, len, &popts, &gz, &gzlen, &st, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "flightrecctl: %s: %s\n", path, err[0] ? err : strerror(-r));
                goto out;
        }
        r = fr_write_file_atomic(out_path, gz, gzlen, PPROF_FILE_MODE, &what);
        if (r < 0) {
                fprintf(stderr, "flightrecctl: %s: %s: %s\n", out_path, what, strerror(-r));
                goto out;
        }
        fprintf(stderr,
                "flightrecctl: wrote %s: %" PRIu64 " %s (%zu distinct) in %zu generations, "
                "%zu locations, %zu unresolved, %zu mappings\n",
                out_path, st.nsamples, popts.flags & FR_PPROF_OFFCPU ? "waits" : "samples",
                st.nprofile_samples, st.ngens, st.nlocations, st.nunresolved,
                st.nmappings);
        ret = 0;
out:
        free(gz);
        free(data);
        free(out_path);
        return ret;
}
