/* A program that fires a named trigger of the daemon with fr_trigger (issue
 * 15), for test-triggers.sh: records for DELAY seconds, fires NAME with
 * REASON, prints fr_trigger's result, then records on for AFTER seconds.
 * Usage: trigger-app NAME REASON [DELAY [AFTER]] */
#include <errno.h>
#include <flightrec.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void spin(double seconds) {
        struct timespec t0, t;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        volatile double x = 0;
        do {
                for (int i = 0; i < 100000; i++)
                        x += i * 0.5;
                fr_log(0, "app", "tick");
                struct timespec ts = {0, 10000000};
                nanosleep(&ts, NULL);
                clock_gettime(CLOCK_MONOTONIC, &t);
        } while ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 < seconds);
}

int main(int argc, char **argv) {
        if (argc < 3) {
                fprintf(stderr, "usage: trigger-app NAME REASON [DELAY [AFTER]]\n");
                return 2;
        }
        int r = fr_start(NULL);
        if (r < 0 && r != -EALREADY) {
                fprintf(stderr, "fr_start: %s\n", strerror(-r));
                return 1;
        }
        spin(argc > 3 ? atof(argv[3]) : 2);
        r = fr_trigger(argv[1], argv[2]);
        printf("fr_trigger: %d\n", r);
        fflush(stdout);
        spin(argc > 4 ? atof(argv[4]) : 4);
        return r == 0 ? 0 : 1;
}
