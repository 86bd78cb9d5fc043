/* flightrecctl's output files: the default names (the trace's name with
 * .trace.lz4 or .trace replaced) and the offline exports' common path, from
 * the trace file to the converted file written through fr_write_file_atomic
 * (a failed conversion leaves no file). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "fr_io.h"
#include "trace_reader.h"

static bool has_suffix(const char *s, size_t n, const char *suffix) {
        size_t l = strlen(suffix);
        return n >= l && memcmp(s + n - l, suffix, l) == 0;
}

char *ctl_output_path(const char *trace, const char *suffix) {
        size_t n = strlen(trace);
        char *out;
        if (has_suffix(trace, n, ".trace.lz4"))
                n -= strlen(".trace.lz4");
        else if (has_suffix(trace, n, ".trace"))
                n -= strlen(".trace");
        if (asprintf(&out, "%.*s%s", (int)n, trace, suffix) < 0)
                return NULL;
        return out;
}

int ctl_export_trace(const char *trace, const char *output, const char *suffix, size_t max_bytes,
                     mode_t mode, ctl_convert_fn convert, void *arg, char **ret_path,
                     size_t *ret_len) {
        const char *what = NULL;
        char *out_path, err[512];
        uint8_t *data = NULL, *out = NULL;
        size_t len, out_len;
        int r, ret = CTL_EXIT_FAILURE;

        out_path = output ? strdup(output) : ctl_output_path(trace, suffix);
        if (!out_path) {
                fprintf(stderr, "flightrecctl: out of memory\n");
                return CTL_EXIT_FAILURE;
        }
        /* Never replace the input with its own conversion. */
        if (strcmp(out_path, trace) == 0) {
                fprintf(stderr, "flightrecctl: %s: the output would overwrite the trace\n", trace);
                goto out;
        }
        if (fr_trace_load_file(trace, max_bytes, &data, &len, err, sizeof err) < 0) {
                fprintf(stderr, "flightrecctl: %s: %s\n", trace, err);
                goto out;
        }
        r = convert(arg, data, len, &out, &out_len, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "flightrecctl: %s: %s\n", trace, err[0] ? err : strerror(-r));
                goto out;
        }
        r = fr_write_file_atomic(out_path, out, out_len, mode, &what);
        if (r < 0) {
                fprintf(stderr, "flightrecctl: %s: %s: %s\n", out_path, what, strerror(-r));
                goto out;
        }
        *ret_path = out_path;
        *ret_len = out_len;
        out_path = NULL;
        ret = 0;
out:
        free(out);
        free(data);
        free(out_path);
        return ret;
}
