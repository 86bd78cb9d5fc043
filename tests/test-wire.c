/* Unit tests of the wire protocol codec (proto/wire.c): framing, limits,
 * field validation, and the incremental reader with passed descriptors. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "wire.h"

static void pack_hello(uint32_t pid, const char *comm, uint8_t **buf, size_t *len) {
        Flightrec__Wire__Hello h = FLIGHTREC__WIRE__HELLO__INIT;
        h.version = FR_WIRE_VERSION;
        h.pid = pid;
        h.comm = (char *)comm;
        h.exe = "/usr/bin/app";
        h.hz = 100;
        h.period_ms = 1000;
        h.generations = 10;
        h.max_bytes = 64 << 20;
        fr_frame f = FLIGHTREC__WIRE__FRAME__INIT;
        f.msg_case = FLIGHTREC__WIRE__FRAME__MSG_HELLO;
        f.hello = &h;
        assert_int_equal(fr_wire_pack(&f, buf, len), 0);
}

static void test_roundtrip(void **state) {
        (void)state;
        uint8_t *b;
        size_t n;
        pack_hello(1234, "app", &b, &n);
        uint32_t len = b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24;
        assert_int_equal(len + 4, n);
        fr_frame *f = NULL;
        char err[256];
        /* Every strict prefix asks for more bytes. */
        for (size_t k = 0; k < n; k++)
                assert_int_equal(fr_wire_decode(b, k, 65536, &f, err, sizeof err), 0);
        assert_int_equal(fr_wire_decode(b, n, 65536, &f, err, sizeof err), (long)n);
        assert_int_equal(f->msg_case, FLIGHTREC__WIRE__FRAME__MSG_HELLO);
        assert_int_equal(f->hello->pid, 1234);
        assert_string_equal(f->hello->comm, "app");
        assert_string_equal(fr_wire_name(f), "hello");
        fr_wire_free(f);
        free(b);
}

static void test_length_limits(void **state) {
        (void)state;
        fr_frame *f = NULL;
        char err[256];
        uint8_t zero[8] = {0};
        assert_int_equal(fr_wire_decode(zero, sizeof zero, 65536, &f, err, sizeof err), -EMSGSIZE);
        uint8_t big[4] = {0x01, 0x00, 0x01, 0x00}; /* 65537 */
        assert_int_equal(fr_wire_decode(big, sizeof big, 65536, &f, err, sizeof err), -EMSGSIZE);
        assert_non_null(strstr(err, "65537"));
        uint8_t huge[4] = {0xff, 0xff, 0xff, 0xff};
        assert_int_equal(fr_wire_decode(huge, sizeof huge, SIZE_MAX, &f, err, sizeof err),
                         -EMSGSIZE);
}

static void test_garbage(void **state) {
        (void)state;
        fr_frame *f = NULL;
        char err[256];
        uint8_t b[68] = {64, 0, 0, 0};
        srand(7);
        int bad = 0;
        for (int round = 0; round < 2000; round++) {
                for (size_t i = 4; i < sizeof b; i++)
                        b[i] = (uint8_t)rand();
                long r = fr_wire_decode(b, sizeof b, 65536, &f, err, sizeof err);
                if (r > 0) {
                        /* Parsed and passed validation: then it must be consistent. */
                        assert_int_equal(fr_wire_check(f, err, sizeof err), 0);
                        fr_wire_free(f);
                } else {
                        assert_int_equal(r, -EBADMSG);
                        bad++;
                }
        }
        assert_true(bad > 1900);
        /* A frame holding no message. */
        uint8_t empty[5] = {1, 0, 0, 0, 0};
        assert_int_equal(fr_wire_decode(empty, sizeof empty, 65536, &f, err, sizeof err), -EBADMSG);
}

static void expect_invalid(fr_frame *fr, const char *needle) {
        uint8_t *b;
        size_t n;
        fr_frame *f = NULL;
        char err[256];
        assert_int_equal(fr_wire_pack(fr, &b, &n), 0);
        assert_int_equal(fr_wire_decode(b, n, 65536, &f, err, sizeof err), -EBADMSG);
        assert_non_null(strstr(err, needle));
        free(b);
}

static void test_fields(void **state) {
        (void)state;
        Flightrec__Wire__Hello h = FLIGHTREC__WIRE__HELLO__INIT;
        fr_frame f = FLIGHTREC__WIRE__FRAME__INIT;
        f.msg_case = FLIGHTREC__WIRE__FRAME__MSG_HELLO;
        f.hello = &h;
        h.version = FR_WIRE_VERSION;
        h.pid = 1;
        h.comm = "ok";
        h.exe = "";
        h.period_ms = 1000;
        h.generations = 1;
        h.version = 99;
        expect_invalid(&f, "hello.version");
        h.version = FR_WIRE_VERSION;
        h.pid = 0;
        expect_invalid(&f, "hello.pid");
        h.pid = 1;
        h.comm = "";
        expect_invalid(&f, "hello.comm is empty");
        h.comm = "a\nb";
        expect_invalid(&f, "control character");
        char longc[300];
        memset(longc, 'x', sizeof longc - 1);
        longc[sizeof longc - 1] = '\0';
        h.comm = longc;
        expect_invalid(&f, "hello.comm is 299 bytes");
        h.comm = "ok";
        uint8_t id[65] = {0};
        h.build_id.data = id;
        h.build_id.len = sizeof id;
        expect_invalid(&f, "build_id");
        h.build_id.len = 20;
        h.period_ms = 0;
        expect_invalid(&f, "hello.period_ms");

        Flightrec__Wire__SnapshotDone d = FLIGHTREC__WIRE__SNAPSHOT_DONE__INIT;
        fr_frame g = FLIGHTREC__WIRE__FRAME__INIT;
        g.msg_case = FLIGHTREC__WIRE__FRAME__MSG_SNAPSHOT_DONE;
        g.snapshot_done = &d;
        d.id = 0;
        expect_invalid(&g, "snapshot_done.id");
        d.id = 3;
        d.error = 5;
        expect_invalid(&g, "no -errno");

        /* The ring path's messages. */
        Flightrec__Wire__SnapshotRelease rel = FLIGHTREC__WIRE__SNAPSHOT_RELEASE__INIT;
        fr_frame k = FLIGHTREC__WIRE__FRAME__INIT;
        k.msg_case = FLIGHTREC__WIRE__FRAME__MSG_SNAPSHOT_RELEASE;
        k.snapshot_release = &rel;
        expect_invalid(&k, "snapshot_release.id");
        assert_string_equal(fr_wire_name(&k), "snapshot_release");
        Flightrec__Wire__SnapshotRequest q = FLIGHTREC__WIRE__SNAPSHOT_REQUEST__INIT;
        fr_frame m = FLIGHTREC__WIRE__FRAME__INIT;
        m.msg_case = FLIGHTREC__WIRE__FRAME__MSG_SNAPSHOT_REQUEST;
        m.snapshot_request = &q;
        q.id = 1;
        q.reason = "r";
        q.from_ring = 1;
        q.hold_ms = 600001;
        expect_invalid(&m, "snapshot_request.hold_ms");
}

static void test_reader_fds(void **state) {
        (void)state;
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        int p[2];
        assert_int_equal(pipe(p), 0);
        Flightrec__Wire__SnapshotRequest rq = FLIGHTREC__WIRE__SNAPSHOT_REQUEST__INIT;
        rq.id = 9;
        rq.reason = "test";
        fr_frame f = FLIGHTREC__WIRE__FRAME__INIT;
        f.msg_case = FLIGHTREC__WIRE__FRAME__MSG_SNAPSHOT_REQUEST;
        f.snapshot_request = &rq;
        assert_int_equal(fr_wire_send(sv[0], &f, p[1]), 0);
        assert_int_equal(fr_wire_send(sv[0], &f, -1), 0);
        close(p[1]);
        struct fr_wire_reader rd;
        fr_wire_reader_init(&rd, 65536, 1);
        fr_frame *got;
        char err[256];
        int frames = 0;
        /* A recvmsg stops where data with a descriptor attached begins or ends. */
        for (int reads = 0; reads < 4 && frames < 2; reads++) {
                assert_true(fr_wire_reader_fill(&rd, sv[1]) > 0);
                while (fr_wire_reader_next(&rd, &got, err, sizeof err) == 1) {
                        assert_int_equal(got->snapshot_request->id, 9);
                        fr_wire_free(got);
                        frames++;
                }
        }
        assert_int_equal(frames, 2);
        int fd = fr_wire_reader_take_fd(&rd);
        assert_true(fd >= 0);
        assert_int_equal(fr_wire_reader_take_fd(&rd), -1);
        assert_int_equal(write(fd, "x", 1), 1); /* the pipe's write end came across */
        char c;
        close(fd);
        assert_int_equal(read(p[0], &c, 1), 1);
        assert_int_equal(c, 'x');
        fr_wire_reader_free(&rd);

        /* A reader that does not accept fds closes them. */
        int q[2];
        assert_int_equal(pipe(q), 0);
        assert_int_equal(fr_wire_send(sv[0], &f, q[1]), 0);
        close(q[1]);
        fr_wire_reader_init(&rd, 65536, 0);
        assert_true(fr_wire_reader_fill(&rd, sv[1]) > 0);
        assert_int_equal(rd.dropped_fds, 1);
        assert_int_equal(read(q[0], &c, 1), 0); /* every write end closed: EOF */
        fr_wire_reader_free(&rd);
        close(q[0]);
        close(p[0]);
        close(sv[0]);
        close(sv[1]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_roundtrip),
                cmocka_unit_test(test_length_limits),
                cmocka_unit_test(test_garbage),
                cmocka_unit_test(test_fields),
                cmocka_unit_test(test_reader_fds),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
