/* Unit tests of flightrecd's configuration parser (daemon/frd_config.c) and of
 * the shipped config/flightrecd.conf. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "frd.h"

static const char *shipped_conf;

void frd_log(int level, const char *fmt, ...) {
        (void)level;
        (void)fmt;
}

/* parse_ok - text parses into c, without an error. */
static void parse_ok(const char *text, struct frd_config *c) {
        char err[512] = "";
        assert_int_equal(frd_config_parse_string(text, c, err, sizeof err), 0);
}

static void test_defaults(void **state) {
        (void)state;
        struct frd_config c;
        parse_ok("", &c);
        assert_string_equal(c.socket_path, FRD_DEFAULT_SOCKET);
        assert_string_equal(c.output_dir, FRD_DEFAULT_OUTPUT);
        assert_int_equal(c.socket_mode, 0666);
        assert_int_equal(c.max_frame_bytes, 65536);
        assert_true(c.agent_users.any);
        assert_false(c.control_users.any);
        assert_int_equal(c.max_files, 1000);
        assert_int_equal(c.max_age_s, 7 * 86400);
}

static void test_values(void **state) {
        (void)state;
        struct frd_config c;
        const char *text = "[daemon]\n"
                           "socket = /tmp/x.sock\n"
                           "socket_mode = 0660\n"
                           "output_dir = /tmp/out\n"
                           "snapshot_timeout = 2s\n"
                           "max_trace_bytes = 16M\n"
                           "workers = 3\n"
                           "symbolize = no\n"
                           "post_mortem = no\n"
                           "[access]\n"
                           "agent_users = root, 1000\n"
                           "control_groups = 0\n"
                           "[retention]\n"
                           "max_total_bytes = 2G\n"
                           "max_files = 10\n"
                           "max_age = 12h\n";
        parse_ok(text, &c);
        assert_string_equal(c.socket_path, "/tmp/x.sock");
        assert_int_equal(c.socket_mode, 0660);
        assert_int_equal(c.snapshot_timeout_ms, 2000);
        assert_int_equal(c.max_trace_bytes, 16u << 20);
        assert_int_equal(c.workers, 3);
        assert_false(c.symbolize);
        assert_false(c.post_mortem);
        assert_false(c.agent_users.any);
        assert_int_equal(c.agent_users.n, 2);
        assert_int_equal(c.agent_users.ids[0], 0);
        assert_int_equal(c.agent_users.ids[1], 1000);
        assert_int_equal(c.max_total_bytes, 2ull << 30);
        assert_int_equal(c.max_age_s, 12 * 3600);
        assert_true(frd_config_allows(&c.agent_users, &c.agent_groups, 1000, 5));
        assert_false(frd_config_allows(&c.agent_users, &c.agent_groups, 1001, 5));
        assert_true(frd_config_allows(&c.control_users, &c.control_groups, 4242, 0));
}

static void expect_error(const char *text, const char *needle) {
        struct frd_config c;
        char err[512] = "";
        assert_int_not_equal(frd_config_parse_string(text, &c, err, sizeof err), 0);
        if (!strstr(err, needle))
                fail_msg("error '%s' does not mention '%s'", err, needle);
}

static void test_errors(void **state) {
        (void)state;
        expect_error("[daemon]\nsockett = /x\n", "(string):2: [daemon] sockett: unknown key");
        expect_error("[nope]\nx = 1\n", "unknown key");
        expect_error("[daemon]\nsocket = relative.sock\n", "not an absolute path");
        expect_error("[daemon]\nworkers = 0\n", "workers");
        expect_error("[daemon]\nworkers = many\n", "not a number");
        expect_error("[daemon]\nsocket_mode = 999\n", "octal");
        expect_error("[daemon]\nsnapshot_timeout = 5 parsecs\n", "duration");
        expect_error("[retention]\nmax_total_bytes = 1X\n", "size");
        expect_error("[access]\nagent_users = no-such-user-here\n", "no user named");
        expect_error("[access]\nagent_groups = no-such-group-here\n", "no group named");
        expect_error("[daemon]\nsymbolize = maybe\n", "yes or no");
        expect_error("this is not ini\n", "syntax error");
        /* The first error is reported, with its line. */
        expect_error("[daemon]\nworkers = 2\nworkers = -1\nmax_agents = 0\n", ":3:");
        /* Named triggers and the hook (issue 15). */
        expect_error("[trigger slo]\nafter = forever\n", "[trigger slo] after: 'forever' is not a duration");
        expect_error("[trigger slo]\nafter = 2h\n", "not a duration in 0..3600000 ms");
        expect_error("[trigger slo]\nmax_per_hour = 3601\n", "0..3600");
        expect_error("[trigger slo]\nscope = everyone\n", "caller, all or comm:PATTERN");
        expect_error("[trigger slo]\nscope = comm:\n", "caller, all or comm:PATTERN");
        expect_error("[trigger sl/o]\nafter = 1s\n", "is not 1..63 of");
        expect_error("[trigger slo]\nbefore = 1s\n", "unknown key");
        expect_error("[daemon]\non_snapshot_shell = perhaps\n", "yes or no");
        expect_error("[daemon]\non_snapshot_timeout = 1ms\n", "100..3600000");
}

static void test_triggers(void **state) {
        (void)state;
        struct frd_config c;
        const char *text = "[trigger slo]\nafter = 2s\nmax_per_hour = 10\nscope = caller\n"
                           "[trigger web]\ncooldown = 1m\nscope = comm:nginx*\n"
                           "[trigger slo]\ncooldown = 500ms\n"
                           "[daemon]\non_snapshot = /bin/push \"a b\"\non_snapshot_shell = yes\n"
                           "on_snapshot_timeout = 5s\n";
        parse_ok(text, &c);
        assert_int_equal(c.ntriggers, 2);
        const struct frd_trigger_def *t = frd_config_trigger(&c, "slo");
        assert_non_null(t);
        assert_int_equal(t->after_ms, 2000);
        assert_int_equal(t->max_per_hour, 10);
        assert_int_equal(t->cooldown_ms, 500);
        assert_int_equal(t->scope, FRD_SCOPE_CALLER);
        t = frd_config_trigger(&c, "web");
        assert_non_null(t);
        assert_int_equal(t->cooldown_ms, 60000);
        assert_int_equal(t->scope, FRD_SCOPE_COMM);
        assert_string_equal(t->pattern, "nginx*");
        assert_null(frd_config_trigger(&c, "default"));
        assert_string_equal(c.on_snapshot, "/bin/push \"a b\"");
        assert_true(c.on_snapshot_shell);
        assert_int_equal(c.on_snapshot_timeout_ms, 5000);
}

static void test_shipped(void **state) {
        (void)state;
        struct frd_config c, d;
        char err[512] = "";
        int r = frd_config_load(shipped_conf, true, &c, err, sizeof err);
        if (r)
                fail_msg("%s", err);
        frd_config_defaults(&d);
        /* Every key there is commented out with its default. */
        assert_memory_equal(&c, &d, sizeof c);
        /* And the values shown are the defaults: uncomment every key. */
        FILE *f = fopen(shipped_conf, "r");
        assert_non_null(f);
        char text[16384] = "", line[1024];
        while (fgets(line, sizeof line, f)) {
                const char *p = line;
                if (line[0] == '#' && line[1] >= 'a' && line[1] <= 'z' && strchr(line, '='))
                        p = line + 1;
                strncat(text, p, sizeof text - strlen(text) - 1);
        }
        fclose(f);
        r = frd_config_parse_string(text, &c, err, sizeof err);
        if (r)
                fail_msg("uncommented %s: %s", shipped_conf, err);
        assert_memory_equal(&c, &d, sizeof c);
        assert_int_not_equal(frd_config_load("/nonexistent/flightrecd.conf", true, &c, err, sizeof err), 0);
        assert_non_null(strstr(err, "cannot open"));
        assert_int_equal(frd_config_load("/nonexistent/flightrecd.conf", false, &c, err, sizeof err), 0);
}

int main(int argc, char **argv) {
        shipped_conf = argc > 1 ? argv[1] : getenv("FR_SHIPPED_CONF");
        if (!shipped_conf)
                shipped_conf = "config/flightrecd.conf";
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_values),
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_triggers),
                cmocka_unit_test(test_shipped),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
