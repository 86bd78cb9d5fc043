/* Retention by age in the agent's ring (issue 15): FLIGHTREC_MIN_AGE_MS keeps
 * whole generations beyond FLIGHTREC_GENERATIONS until they span the minimum
 * age; FLIGHTREC_MAX_BYTES still wins, and each time it does the cut is
 * counted (fr_stats.min_age_cuts) and noted in the trace (a LOG event of
 * category "flightrec"). Snapshots are checked by the one reader. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <flightrec.h>

#include "agent_helpers.h"
#include "trace_format.h"

static struct ah_trace tr;

static int teardown(void **state) {
        (void)state;
        fr_stop();
        ah_free(&tr);
        unsetenv("FLIGHTREC_MIN_AGE_MS");
        return 0;
}

static uint64_t mono_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms) {
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
        }
}

/* A short period (100 ms), 2 generations by count, 1 s of minimum age, a
 * byte cap that allows it: once the recorder has run longer than the minimum
 * age, every snapshot spans at least 1 s, in more generations than the count. */
static void test_min_age_keeps_history(void **state) {
        (void)state;
        struct fr_config c = {.period_ms = 100, .generations = 2, .max_bytes = 64u << 20,
                              .sampling_off = 1, .min_age_ms = 1000};
        assert_int_equal(fr_start(&c), 0);
        uint64_t t0 = mono_ns();
        int checked = 0;
        for (int i = 0; i < 60; i++) {
                fr_log(0, "tick", "x");
                sleep_ms(40);
                if (mono_ns() - t0 < 1300000000ull || i % 5)
                        continue;
                assert_int_equal(ah_snapshot(&tr), 0);
                assert_int_equal(tr.err, 0);
                assert_true(tr.ngens > 2);
                uint64_t span = tr.gen_end_ns[tr.ngens - 1] - tr.gen_start_ns[0];
                if (span < 1000000000ull)
                        fail_msg("snapshot %d spans %llu ms in %zu generations, < 1000 ms", checked,
                                 (unsigned long long)(span / 1000000), tr.ngens);
                /* And no more than needed: without its oldest generation the
                 * snapshot would span less than the age. */
                assert_true(tr.gen_end_ns[tr.ngens - 1] - tr.gen_start_ns[1] < 1000000000ull);
                ah_free(&tr);
                checked++;
        }
        assert_true(checked >= 3);
        struct fr_stats st;
        assert_int_equal(fr_get_stats(&st), 0);
        assert_int_equal(st.min_age_cuts, 0);
}

/* Without a minimum age the count bounds the ring as before. */
static void test_no_min_age_count_bounds(void **state) {
        (void)state;
        struct fr_config c = {.period_ms = 100000, .generations = 3, .sampling_off = 1};
        assert_int_equal(fr_start(&c), 0);
        for (int i = 0; i < 5; i++) {
                fr_log(0, "tick", "x");
                assert_int_equal(ah_snapshot(&tr), 0);
                assert_int_equal(tr.err, 0);
                if (i < 4)
                        ah_free(&tr);
        }
        assert_int_equal(tr.ngens, 3);
}

/* The byte cap wins over the minimum age: generations of ~400 KB under a
 * 1 MiB cap cannot hold an hour. Counted, and noted in the trace. */
static void test_bytes_cap_wins_counted_and_noted(void **state) {
        (void)state;
        const size_t max = 1u << 20;
        struct fr_config c = {.period_ms = 100000, .generations = 2, .max_bytes = max,
                              .sampling_off = 1, .min_age_ms = 3600000};
        assert_int_equal(fr_start(&c), 0);
        char msg[4000];
        memset(msg, 'x', sizeof msg - 1);
        msg[sizeof msg - 1] = '\0';
        for (int i = 0; i < 8; i++) {
                for (int j = 0; j < 100; j++)
                        fr_log(0, "bulk", msg);
                assert_int_equal(ah_snapshot(&tr), 0);
                assert_int_equal(tr.err, 0);
                if (i < 7)
                        ah_free(&tr);
        }
        assert_true(tr.rawlen <= max);
        struct fr_stats st;
        assert_int_equal(fr_get_stats(&st), 0);
        assert_true(st.min_age_cuts >= 4);
        size_t notes = 0;
        for (size_t i = 0; i < tr.nevents; i++)
                if (tr.events[i].type == FR_EV_LOG &&
                    strcmp(tr.events[i].category, "flightrec") == 0 &&
                    strncmp(tr.events[i].message, "min age cut by max bytes", 24) == 0)
                        notes++;
        assert_true(notes >= 1);
}

/* The environment variable, validated like the others. */
static void test_env(void **state) {
        (void)state;
        struct fr_config c = {.period_ms = 100000, .sampling_off = 1};
        setenv("FLIGHTREC_MIN_AGE_MS", "soon", 1);
        assert_int_equal(fr_start(&c), -EINVAL);
        setenv("FLIGHTREC_MIN_AGE_MS", "5000", 1);
        assert_int_equal(fr_start(&c), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_min_age_keeps_history, teardown),
                cmocka_unit_test_teardown(test_no_min_age_count_bounds, teardown),
                cmocka_unit_test_teardown(test_bytes_cap_wins_counted_and_noted, teardown),
                cmocka_unit_test_teardown(test_env, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
