/* flightrecctl crash TRACE: the crash report of a post-mortem trace (what
 * flightrecd writes as <stem>.crash.txt), symbolized here from the files the
 * trace's MAPS name. */
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crash_report.h"
#include "ctl.h"
#include "symbolize.h"
#include "trace_encode.h"
#include "trace_reader.h"

#define CRASH_MAX_BYTES (4ull << 30)

static void crash_usage(FILE *f) {
        fprintf(f, "usage: flightrecctl crash [--no-symbolize] [--root DIR] TRACE\n"
                   "print the crash report of a post-mortem trace (.trace.lz4 or raw)\n");
}

int ctl_crash(const struct ctl_options *opts, int argc, char **argv) {
        enum { OPT_NO_SYMBOLIZE = 256, OPT_ROOT };
        static const struct option longopts[] = {
                {"no-symbolize", no_argument, NULL, OPT_NO_SYMBOLIZE},
                {"root", required_argument, NULL, OPT_ROOT},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        const char *root = NULL;
        bool symbolize = true;
        int c;
        (void)opts;
        while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
                switch (c) {
                case OPT_NO_SYMBOLIZE:
                        symbolize = false;
                        break;
                case OPT_ROOT:
                        root = optarg;
                        break;
                case 'h':
                        crash_usage(stdout);
                        return 0;
                default:
                        crash_usage(stderr);
                        return CTL_EXIT_USAGE;
                }
        }
        if (argc - optind != 1) {
                crash_usage(stderr);
                return CTL_EXIT_USAGE;
        }
        const char *path = argv[optind];
        char err[512];
        uint8_t *data = NULL;
        size_t len;
        if (fr_trace_load_file(path, CRASH_MAX_BYTES, &data, &len, err, sizeof err) < 0) {
                fprintf(stderr, "flightrecctl: %s: %s\n", path, err);
                return CTL_EXIT_FAILURE;
        }
        struct fr_symbolizer *sym = NULL;
        if (symbolize && fr_symbolizer_new(root, &sym) < 0) {
                fprintf(stderr, "flightrecctl: out of memory\n");
                free(data);
                return CTL_EXIT_FAILURE;
        }
        struct fr_buf out = {0};
        int r = fr_crash_report(data, len, sym, &out, err, sizeof err);
        if (r == 0)
                fwrite(out.data, 1, out.len, stdout);
        else
                fprintf(stderr, "flightrecctl: %s: %s\n", path, err[0] ? err : "out of memory");
        fr_buf_free(&out);
        fr_symbolizer_free(sym);
        free(data);
        return r == 0 ? 0 : CTL_EXIT_FAILURE;
}
