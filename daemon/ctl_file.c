/* flightrecctl's default output names: the trace's name with .trace.lz4 or
 * .trace replaced (the files themselves go through fr_write_file_atomic). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

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
