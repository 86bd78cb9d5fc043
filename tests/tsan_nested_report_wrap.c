/* For test-wait-exit (TSan build): a nanosleep wrapper preloaded after
 * TSan's runtime, so that TSan's blocking-call interceptor calls it, as it
 * calls flightrec's wrappers. Its write races with tsan_nested_report's
 * other thread: TSan reports it from inside its blocking-call scope, where it
 * runs signal handlers at once. No flightrec code here. */
#include <dlfcn.h>
#include <time.h>

int tnr_shared;
volatile int tnr_in_report; /* set around the racy write */

int nanosleep(const struct timespec *req, struct timespec *rem) {
        static int (*real)(const struct timespec *, struct timespec *);
        if (!real)
                real = (int (*)(const struct timespec *, struct timespec *))dlsym(RTLD_NEXT, "nanosleep");
        int r = real(req, rem);
        tnr_in_report = 1;
        tnr_shared++;
        tnr_in_report = 0;
        return r;
}
