/* The trace clock and its calibration against CLOCK_MONOTONIC. */
#include <time.h>

#include "fr_internal.h"

static struct fr_clock_anchor origin;

static uint64_t clock_ns(clockid_t id) {
        struct timespec ts;
        clock_gettime(id, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void fr__clock_anchor(struct fr_clock_anchor *ret) {
        /* Take the tick between two monotonic reads and keep the tightest of a
         * few tries, so the pairing is good to a few tens of nanoseconds. */
        uint64_t best = UINT64_MAX;
        for (int i = 0; i < 4; i++) {
                uint64_t m0 = clock_ns(CLOCK_MONOTONIC);
                uint64_t t = fr__now();
                uint64_t m1 = clock_ns(CLOCK_MONOTONIC);
                uint64_t r = clock_ns(CLOCK_REALTIME);
                if (m1 - m0 < best) {
                        best = m1 - m0;
                        ret->tick = t;
                        ret->mono_ns = m0 + (m1 - m0) / 2;
                        ret->real_ns = r - (m1 - ret->mono_ns);
                }
        }
}

void fr__clock_init(void) {
        fr__clock_anchor(&origin);
}

uint64_t fr__clock_ticks_per_second(void) {
#if defined(__x86_64__)
        struct fr_clock_anchor now;
        fr__clock_anchor(&now);
        uint64_t dns = now.mono_ns - origin.mono_ns;
        /* The baseline grows with the process's life, so the estimate sharpens;
         * under 1 ms, wait for it to reach 1 ms. */
        if (dns < 1000000) {
                struct timespec ts = {0, (long)(1000000 - dns)};
                nanosleep(&ts, NULL);
                fr__clock_anchor(&now);
                dns = now.mono_ns - origin.mono_ns;
        }
        return (uint64_t)((unsigned __int128)(now.tick - origin.tick) * 1000000000u / dns);
#else
        return 1000000000ull;
#endif
}
