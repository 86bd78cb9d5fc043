/* Connections: the per-peer output queue (with a descriptor passed along a
 * frame), reading and framing, dispatch by peer kind, refusals, closing. */
#include <errno.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frd.h"

static void on_writable(evutil_socket_t fd, short what, void *arg);

static void flush(struct frd_conn *c) {
        while (c->outq) {
                struct frd_outbuf *o = c->outq;
                long n = fr_wire_sendmsg(c->fd, o->data + o->off, o->len - o->off,
                                         o->off == 0 ? o->fd : -1);
                if (n == -EAGAIN) {
                        event_add(c->wev, NULL);
                        return;
                }
                if (n < 0) {
                        frd_log(FRD_DEBUG, "send to pid %u: %s", c->cred.pid, strerror((int)-n));
                        frd_conn_close(c);
                        return;
                }
                if (o->off == 0 && o->fd >= 0) {
                        close(o->fd);
                        o->fd = -1;
                }
                o->off += (size_t)n;
                if (o->off < o->len)
                        continue;
                c->outq = o->next;
                if (!c->outq)
                        c->outq_tail = &c->outq;
                c->outq_bytes -= o->len;
                free(o->data);
                free(o);
        }
        event_del(c->wev);
        if (c->closing)
                frd_conn_close(c);
}

static void on_writable(evutil_socket_t fd, short what, void *arg) {
        (void)fd;
        (void)what;
        flush(arg);
}

int frd_conn_send(struct frd_conn *c, const fr_frame *f, int pass_fd) {
        if (c->dead) {
                if (pass_fd >= 0)
                        close(pass_fd);
                return -EPIPE;
        }
        struct frd_outbuf *o = calloc(1, sizeof *o);
        int r = o ? fr_wire_pack(f, &o->data, &o->len) : -ENOMEM;
        if (r == 0 && c->outq_bytes + o->len > FRD_MAX_OUTQ)
                r = -ENOBUFS;
        if (r < 0) {
                if (o)
                        free(o->data);
                free(o);
                if (pass_fd >= 0)
                        close(pass_fd);
                frd_log(FRD_WARN, "dropping peer pid %u: cannot queue %s (%s)", c->cred.pid,
                       fr_wire_name(f), strerror(-r));
                c->closing = true;
                return r;
        }
        o->fd = pass_fd;
        *c->outq_tail = o;
        c->outq_tail = &o->next;
        c->outq_bytes += o->len;
        if (c->outq == o)
                flush(c);
        return 0;
}

void frd_refuse(struct frd_conn *c, const char *fmt, ...) {
        char why[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof why, fmt, ap);
        va_end(ap);
        frd_log(FRD_WARN, "refusing peer pid %u uid %u: %s", c->cred.pid, c->cred.uid, why);
        for (char *p = why; *p; p++)
                if ((unsigned char)*p < 0x20)
                        *p = '?';
        Flightrec__Wire__Refused m = FLIGHTREC__WIRE__REFUSED__INIT;
        m.reason = why;
        fr_frame f = FLIGHTREC__WIRE__FRAME__INIT;
        f.msg_case = FLIGHTREC__WIRE__FRAME__MSG_REFUSED;
        f.refused = &m;
        event_del(c->rev); /* read nothing more from it */
        c->closing = true;
        frd_conn_send(c, &f, -1);
        if (!c->outq)
                frd_conn_close(c);
}

static void dispatch(struct frd_conn *c, fr_frame *f) {
        int m = f->msg_case;
        switch (c->kind) {
        case FRD_PEER_NEW:
                if (m == FLIGHTREC__WIRE__FRAME__MSG_HELLO) {
                        frd_agent_hello(c, f->hello);
                        return;
                }
                if (m == FLIGHTREC__WIRE__FRAME__MSG_CTL_STATUS ||
                    m == FLIGHTREC__WIRE__FRAME__MSG_CTL_TRIGGER ||
                    m == FLIGHTREC__WIRE__FRAME__MSG_CTL_NAMED_TRIGGER) {
                        if (c->cred.uid != 0 && c->cred.uid != geteuid() &&
                            !frd_config_allows(&D.cfg.control_users, &D.cfg.control_groups,
                                              c->cred.uid, c->cred.gid)) {
                                frd_refuse(c, "uid %u may not control the daemon ([access] "
                                          "control_users, control_groups)",
                                       c->cred.uid);
                                return;
                        }
                        c->kind = FRD_PEER_CTL;
                        if (c->hello_timer)
                                event_del(c->hello_timer);
                        dispatch(c, f);
                        return;
                }
                break;
        case FRD_PEER_AGENT:
                if (m == FLIGHTREC__WIRE__FRAME__MSG_SNAPSHOT_DONE) {
                        frd_snapshot_done(c, f->snapshot_done);
                        return;
                }
                if (m == FLIGHTREC__WIRE__FRAME__MSG_AGENT_STATS) {
                        frd_agent_stats(c, f->agent_stats);
                        return;
                }
                if (m == FLIGHTREC__WIRE__FRAME__MSG_TRIGGER) {
                        frd_agent_trigger(c, f->trigger);
                        return;
                }
                break;
        case FRD_PEER_CTL:
                if (m == FLIGHTREC__WIRE__FRAME__MSG_CTL_STATUS) {
                        frd_ctl_status(c);
                        return;
                }
                if (m == FLIGHTREC__WIRE__FRAME__MSG_CTL_TRIGGER) {
                        frd_ctl_trigger(c, f->ctl_trigger);
                        return;
                }
                if (m == FLIGHTREC__WIRE__FRAME__MSG_CTL_NAMED_TRIGGER) {
                        frd_ctl_named_trigger(c, f->ctl_named_trigger);
                        return;
                }
                break;
        }
        frd_refuse(c, "unexpected %s message", fr_wire_name(f));
}

static void on_readable(evutil_socket_t fd, short what, void *arg) {
        (void)what;
        struct frd_conn *c = arg;
        long n = fr_wire_reader_fill(&c->rd, fd);
        if (n == -EAGAIN)
                return;
        if (n <= 0) {
                if (n < 0 && n != -ECONNRESET)
                        frd_log(FRD_WARN, "reading from pid %u: %s", c->cred.pid, strerror((int)-n));
                frd_conn_close(c);
                return;
        }
        if (c->rd.dropped_fds) {
                frd_refuse(c, "file descriptors are not accepted here");
                return;
        }
        for (;;) {
                fr_frame *f;
                char err[512];
                int r = fr_wire_reader_next(&c->rd, &f, err, sizeof err);
                if (r == 0)
                        return;
                if (r < 0) {
                        frd_refuse(c, "bad frame: %s", err);
                        return;
                }
                dispatch(c, f);
                fr_wire_free(f);
                if (c->closing || c->dead)
                        return;
                if (c->rd.nfds) {
                        frd_refuse(c, "a file descriptor came with a message that takes none");
                        return;
                }
        }
}

static void on_hello_timeout(evutil_socket_t fd, short what, void *arg) {
        (void)fd;
        (void)what;
        struct frd_conn *c = arg;
        if (c->kind == FRD_PEER_NEW)
                frd_refuse(c, "nothing received within %d s", FRD_HELLO_TIMEOUT_S);
}

void frd_reap(evutil_socket_t fd, short what, void *arg) {
        (void)fd;
        (void)what;
        (void)arg;
        while (D.dead) {
                struct frd_conn *c = D.dead;
                D.dead = c->next_dead;
                free(c);
        }
}

void frd_conn_close(struct frd_conn *c) {
        if (c->dead)
                return;
        c->dead = true;
        struct frd_conn **p = &D.conns;
        while (*p && *p != c)
                p = &(*p)->next;
        if (*p)
                *p = c->next;
        if (c->kind == FRD_PEER_AGENT)
                frd_agent_gone(c);
        if (c->ring_fd >= 0)
                close(c->ring_fd);
        if (c->pidfd >= 0)
                close(c->pidfd);
        frd_snapshot_detach(c);
        if (c->req)
                c->req->c = NULL;
        event_free(c->rev);
        event_free(c->wev);
        if (c->hello_timer)
                event_free(c->hello_timer);
        while (c->outq) {
                struct frd_outbuf *o = c->outq;
                c->outq = o->next;
                if (o->fd >= 0)
                        close(o->fd);
                free(o->data);
                free(o);
        }
        fr_wire_reader_free(&c->rd);
        close(c->fd);
        c->fd = -1;
        c->next_dead = D.dead;
        D.dead = c;
        event_active(D.reaper, EV_TIMEOUT, 0);
        frd_maybe_exit();
}

int frd_conn_new(int fd) {
        struct frd_conn *c = calloc(1, sizeof *c);
        socklen_t len = sizeof c->cred;
        if (!c || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0) {
                frd_log(FRD_WARN, "new peer without credentials: dropped");
                free(c);
                close(fd);
                return -EPROTO;
        }
        c->fd = fd;
        c->outq_tail = &c->outq;
        c->ring_fd = c->pidfd = -1;
        /* One descriptor is taken: the ring that comes with HELLO. */
        fr_wire_reader_init(&c->rd, D.cfg.max_frame_bytes, 1);
        c->rev = event_new(D.base, fd, EV_READ | EV_PERSIST, on_readable, c);
        c->wev = event_new(D.base, fd, EV_WRITE, on_writable, c);
        c->hello_timer = evtimer_new(D.base, on_hello_timeout, c);
        struct timeval tv = {FRD_HELLO_TIMEOUT_S, 0};
        c->next = D.conns;
        D.conns = c;
        if (!c->rev || !c->wev || !c->hello_timer || event_add(c->rev, NULL) < 0 ||
            evtimer_add(c->hello_timer, &tv) < 0) {
                frd_log(FRD_ERR, "out of memory for a new peer");
                frd_conn_close(c);
                return -ENOMEM;
        }
        return 0;
}
