/* Which processes record (agent/fr_select.c) and which runtimes share them
 * (agent/fr_runtime.c): globs, agent.conf, the constructor's decision from
 * the environment, and the environment exec'd children get. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fr_internal.h"

static void test_globs(void **state) {
        (void)state;
        const char *exe = "/usr/sbin/nginx-debug";
        assert_true(fr__glob_list_match("nginx*", "nginx-debug", exe));
        assert_true(fr__glob_list_match("redis, nginx-*", "x", exe));    /* base name of exe */
        assert_true(fr__glob_list_match("  foo\tbar /usr/sbin/*", "x", exe)); /* path glob */
        assert_false(fr__glob_list_match("/usr/bin/*", "nginx-debug", exe));
        assert_false(fr__glob_list_match("", "nginx-debug", exe));
        assert_false(fr__glob_list_match("nginx", "nginx-debug", exe)); /* whole names only */
        /* The comm is cut at 15 bytes; the executable's name is not. */
        assert_true(fr__glob_list_match("a-very-long-program-name", "a-very-long-pro",
                                        "/opt/a-very-long-program-name"));
        assert_true(fr__glob_list_match("*", "true", "/usr/bin/true"));
}

static void test_agent_conf(void **state) {
        (void)state;
        struct fr_agent_conf c;
        char err[256];
        assert_int_equal(fr__agent_conf_parse("# host-wide\n[agent]\ninclude = nginx /opt/*\n"
                                              "exclude = nginx-debug\nchildren = no\n"
                                              "socket = /run/fr.sock\nstart_delay_ms = 250\n"
                                              "setuid = record\n",
                                              &c, err, sizeof err),
                         0);
        assert_string_equal(c.include, "nginx /opt/*");
        assert_true(c.has_include);
        assert_string_equal(c.exclude, "nginx-debug");
        assert_false(c.children);
        assert_string_equal(c.socket_path, "/run/fr.sock");
        assert_true(c.has_start_delay);
        assert_int_equal(c.start_delay_ms, 250);
        assert_true(c.setuid_record);

        assert_int_equal(fr__agent_conf_parse("", &c, err, sizeof err), 0);
        assert_true(c.children);
        assert_false(c.setuid_record);
        assert_false(c.has_include);

        static const struct {
                const char *text, *what;
        } bad[] = {
                {"[agent]\ninclde = x\n", "line 2: [agent] inclde = x: unknown key"},
                {"[agent]\nchildren = maybe\n", "bad value"},
                {"[agent]\nsocket = relative.sock\n", "bad value"},
                {"[agent]\nstart_delay_ms = -1\n", "bad value"},
                {"[agent]\nstart_delay_ms = 9999999\n", "bad value"},
                {"[agent]\nsetuid = yes\n", "bad value"},
                {"[daemon]\nmax_agents = 3\n", "unknown key"},
                {"[agent\n", "line 1"},
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                assert_int_equal(fr__agent_conf_parse(bad[i].text, &c, err, sizeof err), -EINVAL);
                if (!strstr(err, bad[i].what))
                        fail_msg("'%s': error '%s' does not say '%s'", bad[i].text, err, bad[i].what);
        }
}

/* The shipped config/agent.conf parses, and chooses nothing. */
static void test_shipped_conf(void **state) {
        (void)state;
        const char *path = getenv("FR_SHIPPED_AGENT_CONF");
        if (!path)
                skip();
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        char text[FR_SELECT_FILE_BYTES];
        size_t n = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        text[n] = '\0';
        struct fr_agent_conf c;
        char err[256];
        if (fr__agent_conf_parse(text, &c, err, sizeof err) != 0)
                fail_msg("%s: %s", path, err);
        assert_false(c.has_include);
        assert_true(c.children);
        assert_false(c.setuid_record);
        /* and every key it documents is one the parser knows: uncommented */
        char *out = malloc(n + 1), *o = out;
        for (const char *line = text; *line;) {
                const char *nl = strchr(line, '\n');
                size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);
                bool key = line[0] == '#' && len > 1 && line[1] != ' ' && line[1] != '\n';
                memcpy(o, line + key, len - key); /* "#key = value" -> "key = value" */
                o += len - key;
                line += len;
        }
        *o = '\0';
        if (fr__agent_conf_parse(out, &c, err, sizeof err) != 0)
                fail_msg("%s, keys uncommented: %s", path, err);
        assert_true(c.has_start_delay);
        assert_int_equal(c.start_delay_ms, FR_DEFAULT_START_DELAY_MS);
        free(out);
}

static void clear_env(void) {
        unsetenv("LD_PRELOAD");
        unsetenv("FLIGHTREC_AUTOSTART");
        unsetenv("FLIGHTREC_INCLUDE");
        unsetenv("FLIGHTREC_EXCLUDE");
        unsetenv("FLIGHTREC_CHILDREN");
        unsetenv("FLIGHTREC_START_DELAY_MS");
        unsetenv("FLIGHTREC_AGENT_CONF");
        setenv("FLIGHTREC_AGENT_CONF", "/nonexistent/agent.conf", 1);
}

/* The constructor's decision, from this (non-setuid) test process. */
static void test_choose(void **state) {
        (void)state;
        struct fr_choice c;
        clear_env();
        if (access("/etc/ld.so.preload", F_OK) != 0) { /* else the host preloads us: skip this one */
                assert_int_equal(fr__choose(&c), 0);
                assert_int_equal(c.how, FR_LOADED_LINKED); /* linked: the program starts us */
                assert_false(c.chosen);
        }
        setenv("FLIGHTREC_AUTOSTART", "1", 1);
        assert_int_equal(fr__choose(&c), 0);
        assert_int_equal(c.how, FR_LOADED_EXPLICIT);
        assert_true(c.chosen); /* explicit loading: everything, by default */
        assert_true(c.children);
        assert_int_equal(c.start_delay_ms, FR_DEFAULT_START_DELAY_MS);
        assert_false(c.secure);

        setenv("FLIGHTREC_INCLUDE", "test-sel*", 1);
        assert_int_equal(fr__choose(&c), 0);
        assert_true(c.chosen);
        setenv("FLIGHTREC_EXCLUDE", "*/tests/test-select", 1);
        assert_int_equal(fr__choose(&c), 0);
        assert_false(c.chosen);
        unsetenv("FLIGHTREC_EXCLUDE");
        setenv("FLIGHTREC_INCLUDE", "other", 1);
        assert_int_equal(fr__choose(&c), 0);
        assert_false(c.chosen);
        unsetenv("FLIGHTREC_INCLUDE");

        setenv("FLIGHTREC_CHILDREN", "no", 1);
        setenv("FLIGHTREC_START_DELAY_MS", "0", 1);
        assert_int_equal(fr__choose(&c), 0);
        assert_false(c.children);
        assert_int_equal(c.start_delay_ms, 0);
        setenv("FLIGHTREC_CHILDREN", "sometimes", 1);
        assert_int_equal(fr__choose(&c), -EINVAL);
        assert_false(c.chosen);
        unsetenv("FLIGHTREC_CHILDREN");
        setenv("FLIGHTREC_START_DELAY_MS", "1s", 1);
        assert_int_equal(fr__choose(&c), -EINVAL);
        unsetenv("FLIGHTREC_START_DELAY_MS");

        /* agent.conf: its socket and age apply; a bad file keeps us off. */
        char path[] = "/tmp/fr-test-select-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        const char *conf = "[agent]\nsocket = /run/x.sock\nstart_delay_ms = 7\nchildren = no\n"
                           "include = nothing-here\n";
        assert_int_equal(write(fd, conf, strlen(conf)), (ssize_t)strlen(conf));
        close(fd);
        setenv("FLIGHTREC_AGENT_CONF", path, 1);
        assert_int_equal(fr__choose(&c), 0);
        assert_true(c.chosen); /* include of agent.conf is for host-wide loading only */
        assert_string_equal(c.socket_path, "/run/x.sock");
        assert_int_equal(c.start_delay_ms, 7);
        assert_false(c.children);
        fd = open(path, O_WRONLY | O_TRUNC);
        assert_int_equal(write(fd, "[agent]\nwhat = 1\n", 17), 17);
        close(fd);
        assert_int_equal(fr__choose(&c), -EINVAL);
        assert_false(c.chosen);
        unlink(path);
        clear_env();
}

static void test_child_env(void **state) {
        (void)state;
        char *env[] = {"A=1", "LD_PRELOAD=/x/libasan.so.8:/b/libflightrec.so /c/libother.so",
                       "FLIGHTREC_AUTOSTART=1", "FLIGHTREC_HZ=5", NULL};
        char *out[8], pre[256];
        assert_int_equal(fr__child_env(env, out, 8, pre, sizeof pre), 3);
        assert_string_equal(out[0], "A=1");
        assert_string_equal(out[1], "LD_PRELOAD=/x/libasan.so.8:/c/libother.so");
        assert_string_equal(out[2], "FLIGHTREC_HZ=5");
        assert_null(out[3]);

        char *only[] = {"LD_PRELOAD=libflightrec.so.0", "B=2", NULL};
        assert_int_equal(fr__child_env(only, out, 8, pre, sizeof pre), 1);
        assert_string_equal(out[0], "B=2"); /* no empty LD_PRELOAD left behind */
        assert_int_equal(fr__child_env(env, out, 2, pre, sizeof pre), -E2BIG);
}

static void test_runtime(void **state) {
        (void)state;
        unsigned k = fr__runtime_detect();
        assert_false(k & FR_RUNTIME_GO); /* C */
        assert_false(k & FR_RUNTIME_JVM);
        assert_string_equal(fr__runtime_go_object(), "");
        assert_int_equal(fr__runtime_kind(), k);
        /* The sanitizer builds of this test carry their runtime. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
        assert_true(k & FR_RUNTIME_SANITIZER);
        assert_true(k & FR_RUNTIME_SIGSEGV);
#else
        assert_false(k & FR_RUNTIME_SANITIZER);
#endif
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_globs),      cmocka_unit_test(test_agent_conf),
                cmocka_unit_test(test_shipped_conf),
                cmocka_unit_test(test_choose),     cmocka_unit_test(test_child_env),
                cmocka_unit_test(test_runtime),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
