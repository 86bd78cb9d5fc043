/* libFuzzer target: fr_timeline_from_trace (proto/timeline.c) without
 * symbolization (no file is opened), protobuf and JSON, strict and with a
 * partial tail allowed, with a small budget so that the dropping paths run. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "timeline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
        static const unsigned flags[] = {
                FR_TIMELINE_NO_SYMBOLIZE,
                FR_TIMELINE_NO_SYMBOLIZE | FR_TIMELINE_JSON | FR_TIMELINE_ALLOW_PARTIAL_TAIL,
        };
        for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
                struct fr_timeline_options o = {.flags = flags[i], .max_events_per_s = 8,
                                                .max_samples_per_s = 4};
                uint8_t *out = NULL;
                size_t n = 0;
                char err[256];
                if (fr_timeline_from_trace(data, len, &o, &out, &n, NULL, err, sizeof err) == 0)
                        free(out);
        }
        return 0;
}
