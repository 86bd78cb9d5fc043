/* libFuzzer target: fr_pprof_from_trace (proto/pprof.c) without symbolization
 * (no file is opened), strict and with a partial tail allowed. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "pprof.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
        static const unsigned flags[] = {FR_PPROF_NO_SYMBOLIZE,
                                         FR_PPROF_NO_SYMBOLIZE | FR_PPROF_ALLOW_PARTIAL_TAIL};
        for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
                struct fr_pprof_options o = {.flags = flags[i], .gzip_level = 1};
                struct fr_pprof_stats st;
                uint8_t *gz = NULL;
                size_t n = 0;
                char err[256];
                if (fr_pprof_from_trace(data, len, &o, &gz, &n, &st, err, sizeof err) == 0)
                        free(gz);
        }
        return 0;
}
