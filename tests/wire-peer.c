/* A hostile or odd peer of flightrecd for tests. Connects to SOCKET, sends
 * what MODE says and reports whether the daemon disconnected it.
 *   garbage   random bytes that are no frame
 *   oversize  a length prefix above any limit
 *   badfield  a well-formed HELLO with a pid that is not ours
 *   fd        a CtlStatus frame with a file descriptor attached
 *   silent    nothing at all (the daemon drops it after its hello timeout)
 *   stall     a valid agent that takes the snapshot pipe and never writes
 *             (prints "welcome", then "request" when the request came; the
 *             daemon's snapshot_timeout must end that snapshot)
 *   evilcomm  a valid agent whose comm is "../../etc/passwd"; it answers a
 *             snapshot request with a header-only trace (prints "welcome",
 *             then "written"); exit 0 after the snapshot, 1 after 15 s
 *   many N    N idle connections at once (no HELLO); prints how many the
 *             daemon accepted and how many it had closed after 15 s
 * Exit 0 when the daemon closed the connection within 15 s (printing the
 * reason it gave, if any), 1 otherwise; stall: 0 after 15 s connected.
 * Usage: wire-peer SOCKET MODE */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "trace_encode.h"
#include "trace_out.h"
#include "wire.h"

static int connect_to(const char *path) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s >= 0 && connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
                close(s);
                return -1;
        }
        return s;
}

/* many N: N silent connections; the daemon drops each after its hello timeout. */
static int many(const char *path, int n) {
        int *fds = calloc((size_t)n, sizeof *fds), up = 0, closed = 0;
        for (int i = 0; i < n; i++)
                if ((fds[i] = connect_to(path)) >= 0)
                        up++;
        for (int waited = 0; waited < 15000 && closed < up; waited += 200) {
                usleep(200000);
                for (int i = 0; i < n; i++) {
                        if (fds[i] < 0)
                                continue;
                        char b[512];
                        ssize_t k;
                        while ((k = recv(fds[i], b, sizeof b, MSG_DONTWAIT)) > 0)
                                ; /* a Refused frame comes first */
                        if (k == 0 || (k < 0 && errno != EAGAIN)) {
                                close(fds[i]);
                                fds[i] = -1;
                                closed++;
                        }
                }
        }
        printf("%d connected, %d closed by the daemon\n", up, closed);
        for (int i = 0; i < n; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
        free(fds);
        return 0;
}

static void send_hello(int s, uint32_t pid, const char *comm) {
        Flightrec__Wire__Hello h = FLIGHTREC__WIRE__HELLO__INIT;
        h.version = FR_WIRE_VERSION;
        h.pid = pid;
        h.comm = (char *)comm;
        h.exe = "/bin/false";
        h.period_ms = 1000;
        h.generations = 10;
        fr_frame f = FLIGHTREC__WIRE__FRAME__INIT;
        f.msg_case = FLIGHTREC__WIRE__FRAME__MSG_HELLO;
        f.hello = &h;
        fr_wire_send(s, &f, -1);
}

/* Answer a snapshot request with a header-only trace and SNAPSHOT_DONE. */
static void answer_snapshot(int s, struct fr_wire_reader *rd, const fr_frame *g, const char *comm) {
        int fd = fr_wire_reader_take_fd(rd);
        struct fr_buf b = {0};
        fr_buf_put_header(&b, (uint64_t)getpid(), comm, "/bin/false", g->snapshot_request->reason, 0);
        int r = fd >= 0 ? fr_write_all(fd, b.data, b.len) : -EBADF;
        fr_buf_free(&b);
        if (fd >= 0)
                close(fd);
        Flightrec__Wire__SnapshotDone d = FLIGHTREC__WIRE__SNAPSHOT_DONE__INIT;
        d.id = g->snapshot_request->id;
        d.error = r;
        fr_frame f = FLIGHTREC__WIRE__FRAME__INIT;
        f.msg_case = FLIGHTREC__WIRE__FRAME__MSG_SNAPSHOT_DONE;
        f.snapshot_done = &d;
        fr_wire_send(s, &f, -1);
}

/* A valid agent named comm, for up to 15 s. It prints "welcome", then on a
 * snapshot request either answers it (answer: prints "written", returns 0)
 * or keeps the pipe and writes nothing (prints "request"). Returns 0 after
 * 15 s when not answering, 1 when an answer was due and no request came. */
static int agent_peer(int s, const char *comm, bool answer) {
        send_hello(s, (uint32_t)getpid(), comm);
        setvbuf(stdout, NULL, _IOLBF, 0);
        struct fr_wire_reader rd;
        fr_wire_reader_init(&rd, FR_WIRE_MAX_FRAME, 1);
        int ret = answer ? 1 : 0;
        for (int waited = 0; waited < 15000 && !(answer && ret == 0); waited += 100) {
                struct pollfd p = {s, POLLIN, 0};
                if (poll(&p, 1, 100) <= 0)
                        continue;
                if (fr_wire_reader_fill(&rd, s) <= 0)
                        break;
                fr_frame *g;
                char err[256];
                while (fr_wire_reader_next(&rd, &g, err, sizeof err) > 0) {
                        if (g->msg_case == FLIGHTREC__WIRE__FRAME__MSG_WELCOME)
                                printf("welcome\n");
                        if (g->msg_case == FLIGHTREC__WIRE__FRAME__MSG_SNAPSHOT_REQUEST) {
                                if (answer) {
                                        answer_snapshot(s, &rd, g, comm);
                                        printf("written\n");
                                        ret = 0;
                                } else {
                                        printf("request\n"); /* keep the pipe, write nothing */
                                }
                        }
                        fr_wire_free(g);
                }
        }
        if (answer && ret == 0)
                usleep(500000); /* let the daemon finish before we go */
        fr_wire_reader_free(&rd);
        return ret;
}

int main(int argc, char **argv) {
        if (argc == 4 && strcmp(argv[2], "many") == 0)
                return many(argv[1], atoi(argv[3]));
        if (argc != 3) {
                fprintf(stderr, "usage: wire-peer SOCKET MODE\n");
                return 2;
        }
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof a.sun_path, "%s", argv[1]);
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
                perror("wire-peer: connect");
                return 1;
        }
        const char *mode = argv[2];
        if (strcmp(mode, "evilcomm") == 0)
                return agent_peer(s, "../../etc/passwd", true);
        if (strcmp(mode, "stall") == 0)
                return agent_peer(s, "stall", false);
        if (strcmp(mode, "garbage") == 0) {
                uint8_t junk[4096];
                srand(42);
                for (size_t i = 0; i < sizeof junk; i++)
                        junk[i] = (uint8_t)rand();
                junk[0] = 200; /* a small length so that the payload is parsed */
                junk[1] = junk[2] = junk[3] = 0;
                (void)!send(s, junk, sizeof junk, MSG_NOSIGNAL);
        } else if (strcmp(mode, "oversize") == 0) {
                uint8_t len[4] = {0xff, 0xff, 0xff, 0x7f};
                (void)!send(s, len, sizeof len, MSG_NOSIGNAL);
        } else if (strcmp(mode, "badfield") == 0) {
                send_hello(s, (uint32_t)getpid() + 1, "impostor"); /* not its own pid */
        } else if (strcmp(mode, "fd") == 0) {
                Flightrec__Wire__CtlStatus st = FLIGHTREC__WIRE__CTL_STATUS__INIT;
                fr_frame f = FLIGHTREC__WIRE__FRAME__INIT;
                f.msg_case = FLIGHTREC__WIRE__FRAME__MSG_CTL_STATUS;
                f.ctl_status = &st;
                fr_wire_send(s, &f, STDIN_FILENO);
        } else if (strcmp(mode, "silent") != 0) {
                fprintf(stderr, "wire-peer: unknown mode %s\n", mode);
                return 2;
        }
        struct fr_wire_reader rd;
        fr_wire_reader_init(&rd, FR_WIRE_MAX_FRAME, 0);
        for (int waited = 0; waited < 15000; waited += 100) {
                struct pollfd p = {s, POLLIN, 0};
                if (poll(&p, 1, 100) <= 0)
                        continue;
                long n = fr_wire_reader_fill(&rd, s);
                if (n == 0 || n == -ECONNRESET) {
                        fr_frame *f;
                        char err[256];
                        if (fr_wire_reader_next(&rd, &f, err, sizeof err) > 0) {
                                if (f->msg_case == FLIGHTREC__WIRE__FRAME__MSG_REFUSED)
                                        printf("refused: %s\n", f->refused->reason);
                                fr_wire_free(f);
                        }
                        printf("disconnected\n");
                        fr_wire_reader_free(&rd);
                        close(s);
                        return 0;
                }
                if (n < 0)
                        return 1;
        }
        printf("still connected\n");
        fr_wire_reader_free(&rd);
        return 1;
}
