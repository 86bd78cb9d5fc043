/* Framing, decoding and validation of the wire protocol (wire.h). */
#include "wire.h"
#include "fr_err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

const char *fr_wire_name(const fr_frame *f) {
        static const char *const names[] = {
                "unset", "hello", "welcome", "refused", "snapshot_request", "snapshot_done",
                "trigger", "agent_stats", "ctl_status", "status_reply", "ctl_trigger",
                "trigger_reply", "snapshot_release", "ctl_named_trigger",
        };
        unsigned c = (unsigned)f->msg_case;
        return c < sizeof names / sizeof *names ? names[c] : "unknown";
}

int fr_wire_pack(const fr_frame *f, uint8_t **ret, size_t *ret_len) {
        size_t n = flightrec__wire__frame__get_packed_size(f);
        if (n > FR_WIRE_MAX_FRAME)
                return -EMSGSIZE;
        uint8_t *b = malloc(n + 4);
        if (!b)
                return -ENOMEM;
        b[0] = (uint8_t)n;
        b[1] = (uint8_t)(n >> 8);
        b[2] = (uint8_t)(n >> 16);
        b[3] = (uint8_t)(n >> 24);
        flightrec__wire__frame__pack(f, b + 4);
        *ret = b;
        *ret_len = n + 4;
        return 0;
}

/* A name: 1..max bytes, no control characters. */
static int check_name(const char *what, const char *s, size_t max, int allow_empty, char *err,
                      size_t errlen) {
        size_t n = strlen(s);
        if (n == 0 && !allow_empty)
                return fr_errf(err, errlen, -EBADMSG, "%s is empty", what);
        if (n > max)
                return fr_errf(err, errlen, -EBADMSG, "%s is %zu bytes long (at most %zu)", what, n,
                            max);
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                        return fr_errf(err, errlen, -EBADMSG,
                                    "%s holds control character 0x%02x at byte %zu", what,
                                    (unsigned char)s[i], i);
        return 0;
}

#define CHECK(e)                                                                                   \
        do {                                                                                       \
                int r_ = (e);                                                                      \
                if (r_ < 0)                                                                        \
                        return r_;                                                                 \
        } while (0)

static int check_range(const char *what, uint64_t v, uint64_t lo, uint64_t hi, char *err,
                       size_t errlen) {
        if (v < lo || v > hi)
                return fr_errf(err, errlen, -EBADMSG, "%s = %llu is outside %llu..%llu", what,
                            (unsigned long long)v, (unsigned long long)lo,
                            (unsigned long long)hi);
        return 0;
}

int fr_wire_check(const fr_frame *f, char *err, size_t errlen) {
        switch (f->msg_case) {
        case FLIGHTREC__WIRE__FRAME__MSG_HELLO: {
                const Flightrec__Wire__Hello *h = f->hello;
                CHECK(check_range("hello.version", h->version, FR_WIRE_VERSION, FR_WIRE_VERSION,
                                  err, errlen));
                CHECK(check_range("hello.pid", h->pid, 1, 0x7fffffff, err, errlen));
                CHECK(check_name("hello.comm", h->comm, FR_WIRE_MAX_COMM, 0, err, errlen));
                CHECK(check_name("hello.exe", h->exe, FR_WIRE_MAX_PATH, 1, err, errlen));
                CHECK(check_range("hello.build_id length", h->build_id.len, 0,
                                  FR_WIRE_MAX_BUILD_ID, err, errlen));
                CHECK(check_range("hello.hz", h->hz, 0, 100000, err, errlen));
                CHECK(check_range("hello.sampler", h->sampler, 0, 2, err, errlen));
                CHECK(check_range("hello.unwind", h->unwind, 0, 2, err, errlen)); /* enum fr_unwind_kind */
                CHECK(check_range("hello.period_ms", h->period_ms, 1, 3600000, err, errlen));
                CHECK(check_range("hello.generations", h->generations, 1, 1000000, err, errlen));
                CHECK(check_range("hello.max_bytes", h->max_bytes, 0, 1ull << 40, err, errlen));
                return 0;
        }
        case FLIGHTREC__WIRE__FRAME__MSG_WELCOME:
                CHECK(check_range("welcome.version", f->welcome->version, 1, 0xffffffffu, err,
                                  errlen));
                return check_name("welcome.daemon", f->welcome->daemon, 255, 1, err, errlen);
        case FLIGHTREC__WIRE__FRAME__MSG_REFUSED:
                return check_name("refused.reason", f->refused->reason, FR_WIRE_MAX_REASON, 0,
                                  err, errlen);
        case FLIGHTREC__WIRE__FRAME__MSG_SNAPSHOT_REQUEST:
                CHECK(check_range("snapshot_request.id", f->snapshot_request->id, 1, UINT64_MAX,
                                  err, errlen));
                CHECK(check_range("snapshot_request.hold_ms", f->snapshot_request->hold_ms, 0,
                                  600000, err, errlen));
                return check_name("snapshot_request.reason", f->snapshot_request->reason,
                                  FR_WIRE_MAX_REASON, 1, err, errlen);
        case FLIGHTREC__WIRE__FRAME__MSG_SNAPSHOT_DONE:
                CHECK(check_range("snapshot_done.id", f->snapshot_done->id, 1, UINT64_MAX, err,
                                  errlen));
                if (f->snapshot_done->error > 0 || f->snapshot_done->error < -4095)
                        return fr_errf(err, errlen, -EBADMSG, "snapshot_done.error = %d is no -errno",
                                    (int)f->snapshot_done->error);
                return 0;
        case FLIGHTREC__WIRE__FRAME__MSG_SNAPSHOT_RELEASE:
                return check_range("snapshot_release.id", f->snapshot_release->id, 1, UINT64_MAX,
                                   err, errlen);
        case FLIGHTREC__WIRE__FRAME__MSG_TRIGGER:
                CHECK(check_range("trigger.id", f->trigger->id, 1, UINT64_MAX, err, errlen));
                CHECK(check_name("trigger.name", f->trigger->name, FR_WIRE_MAX_TRIGGER_NAME, 1, err,
                                 errlen));
                return check_name("trigger.reason", f->trigger->reason, FR_WIRE_MAX_REASON, 1, err,
                                  errlen);
        case FLIGHTREC__WIRE__FRAME__MSG_CTL_NAMED_TRIGGER:
                CHECK(check_name("ctl_named_trigger.name", f->ctl_named_trigger->name,
                                 FR_WIRE_MAX_TRIGGER_NAME, 0, err, errlen));
                CHECK(check_range("ctl_named_trigger.after_ms", f->ctl_named_trigger->after_ms, 0,
                                  3600000, err, errlen));
                return check_name("ctl_named_trigger.reason", f->ctl_named_trigger->reason,
                                  FR_WIRE_MAX_REASON, 1, err, errlen);
        case FLIGHTREC__WIRE__FRAME__MSG_AGENT_STATS:
        case FLIGHTREC__WIRE__FRAME__MSG_CTL_STATUS:
                return 0;
        case FLIGHTREC__WIRE__FRAME__MSG_STATUS_REPLY: {
                const Flightrec__Wire__StatusReply *s = f->status_reply;
                for (size_t i = 0; i < s->n_agents; i++) {
                        CHECK(check_name("agent.comm", s->agents[i]->comm, FR_WIRE_MAX_COMM, 1,
                                         err, errlen));
                        CHECK(check_name("agent.exe", s->agents[i]->exe, FR_WIRE_MAX_PATH, 1, err,
                                         errlen));
                }
                CHECK(check_name("status_reply.output_dir", s->output_dir, FR_WIRE_MAX_PATH, 1,
                                 err, errlen));
                for (size_t i = 0; i < s->n_triggers; i++)
                        CHECK(check_name("status_reply.triggers", s->triggers[i],
                                         FR_WIRE_MAX_REASON, 1, err, errlen));
                return check_name("status_reply.daemon", s->daemon, 255, 1, err, errlen);
        }
        case FLIGHTREC__WIRE__FRAME__MSG_CTL_TRIGGER:
                return check_name("ctl_trigger.reason", f->ctl_trigger->reason, FR_WIRE_MAX_REASON,
                                  1, err, errlen);
        case FLIGHTREC__WIRE__FRAME__MSG_TRIGGER_REPLY: {
                const Flightrec__Wire__TriggerReply *t = f->trigger_reply;
                for (size_t i = 0; i < t->n_results; i++) {
                        const Flightrec__Wire__SnapshotResult *s = t->results[i];
                        CHECK(check_name("result.comm", s->comm, FR_WIRE_MAX_COMM, 1, err, errlen));
                        CHECK(check_name("result.trace_path", s->trace_path, FR_WIRE_MAX_PATH, 1,
                                         err, errlen));
                        CHECK(check_name("result.pprof_path", s->pprof_path, FR_WIRE_MAX_PATH, 1,
                                         err, errlen));
                        CHECK(check_name("result.error", s->error, FR_WIRE_MAX_REASON, 1, err,
                                         errlen));
                }
                return check_name("trigger_reply.error", t->error, FR_WIRE_MAX_REASON, 1, err,
                                  errlen);
        }
        default:
                return fr_errf(err, errlen, -EBADMSG, "frame holds no known message (case %d)",
                            (int)f->msg_case);
        }
}

long fr_wire_decode(const uint8_t *buf, size_t len, size_t max_frame, fr_frame **ret, char *err,
                    size_t errlen) {
        if (max_frame > FR_WIRE_MAX_FRAME)
                max_frame = FR_WIRE_MAX_FRAME;
        if (len < 4)
                return 0;
        uint32_t n = (uint32_t)buf[0] | (uint32_t)buf[1] << 8 | (uint32_t)buf[2] << 16 |
                     (uint32_t)buf[3] << 24;
        if (n == 0 || n > max_frame)
                return fr_errf(err, errlen, -EMSGSIZE, "frame length %u is outside 1..%zu", n,
                            max_frame);
        if (len - 4 < n)
                return 0;
        fr_frame *f = flightrec__wire__frame__unpack(NULL, n, buf + 4);
        if (!f)
                return fr_errf(err, errlen, -EBADMSG, "frame of %u bytes is not a valid message", n);
        int r = fr_wire_check(f, err, errlen);
        if (r < 0) {
                fr_wire_free(f);
                return r;
        }
        *ret = f;
        return (long)n + 4;
}

void fr_wire_free(fr_frame *f) {
        if (f)
                flightrec__wire__frame__free_unpacked(f, NULL);
}

void fr_wire_reader_init(struct fr_wire_reader *r, size_t max_frame, int accept_fds) {
        memset(r, 0, sizeof *r);
        r->max_frame = max_frame > FR_WIRE_MAX_FRAME ? FR_WIRE_MAX_FRAME : max_frame;
        r->accept_fds = accept_fds;
}

long fr_wire_reader_fill(struct fr_wire_reader *r, int sock) {
        /* Small while idle (many connections), as large as the frame being
         * received needs (never more than one maximal frame). */
        size_t want = 4096;
        if (r->len >= 4) {
                size_t n = (size_t)r->buf[0] | (size_t)r->buf[1] << 8 | (size_t)r->buf[2] << 16 |
                           (size_t)r->buf[3] << 24;
                if (n > r->max_frame)
                        return -EMSGSIZE;
                if (n + 4 > r->len && n + 4 - r->len > want)
                        want = n + 4 - r->len;
                if (want > 65536)
                        want = 65536;
        }
        if (r->len == 0 && r->cap > 8192) {
                free(r->buf);
                r->buf = NULL;
                r->cap = 0;
        }
        if (r->cap - r->len < want) {
                size_t cap = r->cap ? r->cap : 4096;
                while (cap - r->len < want)
                        cap *= 2;
                uint8_t *b = realloc(r->buf, cap);
                if (!b)
                        return -ENOMEM;
                r->buf = b;
                r->cap = cap;
        }
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * FR_WIRE_MAX_FDS)];
        } ctl;
        struct iovec iov = {r->buf + r->len, r->cap - r->len};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl,
                            .msg_controllen = sizeof ctl};
        ssize_t n;
        do
                n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; i++) {
                        int fd;
                        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                        if (r->accept_fds && r->nfds < FR_WIRE_MAX_FDS) {
                                r->fds[r->nfds++] = fd;
                        } else {
                                close(fd);
                                r->dropped_fds++;
                        }
                }
        }
        if (mh.msg_flags & MSG_CTRUNC)
                r->dropped_fds++;
        r->len += (size_t)n;
        return n;
}

int fr_wire_reader_next(struct fr_wire_reader *r, fr_frame **ret, char *err, size_t errlen) {
        long n = fr_wire_decode(r->buf, r->len, r->max_frame, ret, err, errlen);
        if (n <= 0)
                return (int)n;
        memmove(r->buf, r->buf + n, r->len - (size_t)n);
        r->len -= (size_t)n;
        return 1;
}

int fr_wire_reader_take_fd(struct fr_wire_reader *r) {
        if (!r->nfds)
                return -1;
        int fd = r->fds[0];
        memmove(r->fds, r->fds + 1, (r->nfds - 1) * sizeof(int));
        r->nfds--;
        return fd;
}

void fr_wire_reader_free(struct fr_wire_reader *r) {
        for (unsigned i = 0; i < r->nfds; i++)
                close(r->fds[i]);
        free(r->buf);
        memset(r, 0, sizeof *r);
}

long fr_wire_sendmsg(int sock, const uint8_t *buf, size_t len, int pass_fd) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } ctl;
        struct iovec iov = {(void *)buf, len};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        if (pass_fd >= 0) {
                memset(&ctl, 0, sizeof ctl);
                mh.msg_control = &ctl;
                mh.msg_controllen = sizeof ctl.buf;
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
        }
        ssize_t n;
        do
                n = sendmsg(sock, &mh, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        return n < 0 ? -errno : (long)n;
}

int fr_wire_send(int sock, const fr_frame *f, int pass_fd) {
        uint8_t *b;
        size_t len;
        int r = fr_wire_pack(f, &b, &len);
        if (r < 0)
                return r;
        size_t off = 0;
        while (off < len) {
                long n = fr_wire_sendmsg(sock, b + off, len - off, off ? -1 : pass_fd);
                if (n < 0) {
                        r = (int)n;
                        break;
                }
                off += (size_t)n;
        }
        free(b);
        return r;
}
