/* The listening socket: the one systemd passed, or one bound here (a stale
 * socket file removed, never one another daemon listens on), and accept. */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "frd.h"

/* ---- the listening socket -------------------------------------------------------------------- */
int frd_listen_open(char *err, size_t errlen) {
        int n = sd_listen_fds(1);
        if (n < 0) {
                snprintf(err, errlen, "sd_listen_fds: %s", strerror(-n));
                return n;
        }
        if (n > 1) {
                snprintf(err, errlen, "%d sockets passed; expected one", n);
                return -EINVAL;
        }
        if (n == 1) {
                int fd = SD_LISTEN_FDS_START;
                if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) <= 0) {
                        snprintf(err, errlen, "the passed socket is not a listening Unix stream "
                                              "socket");
                        return -EINVAL;
                }
                fcntl(fd, F_SETFD, FD_CLOEXEC);
                fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
                D.socket_activated = true;
                D.listen_fd = fd;
                if (D.opt_socket)
                        frd_log(FRD_NOTICE, "socket activation: --socket %s ignored",
                               D.opt_socket);
                return 0;
        }
        const char *path = D.cfg.socket_path;
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof a.sun_path) {
                snprintf(err, errlen, "socket path %s is too long", path);
                return -ENAMETOOLONG;
        }
        strcpy(a.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
                snprintf(err, errlen, "socket: %s", strerror(errno));
                return -errno;
        }
        /* A stale socket file from a daemon that died: remove it, but never
         * take over from a daemon that still listens. */
        struct stat st;
        if (lstat(path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode)) {
                        snprintf(err, errlen, "%s exists and is not a socket", path);
                        close(fd);
                        return -EEXIST;
                }
                int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (probe >= 0 && connect(probe, (struct sockaddr *)&a, sizeof a) == 0) {
                        close(probe);
                        close(fd);
                        snprintf(err, errlen, "another daemon listens on %s", path);
                        return -EADDRINUSE;
                }
                if (probe >= 0)
                        close(probe);
                unlink(path);
        }
        mode_t old = umask(0777 & ~D.cfg.socket_mode);
        int r = bind(fd, (struct sockaddr *)&a, sizeof a);
        umask(old);
        if (r < 0) {
                snprintf(err, errlen, "bind %s: %s", path, strerror(errno));
                close(fd);
                return -errno;
        }
        chmod(path, D.cfg.socket_mode);
        if (D.cfg.socket_group[0]) {
                gid_t g;
                if (frd_resolve_group(D.cfg.socket_group, &g) == 0 && chown(path, (uid_t)-1, g) < 0)
                        frd_log(FRD_WARN, "chown %s to group %s: %s", path, D.cfg.socket_group,
                               strerror(errno));
        }
        if (listen(fd, 512) < 0) {
                snprintf(err, errlen, "listen %s: %s", path, strerror(errno));
                close(fd);
                unlink(path);
                return -errno;
        }
        D.listen_fd = fd;
        D.we_bound = true;
        snprintf(D.bound_path, sizeof D.bound_path, "%s", path);
        return 0;
}

void frd_on_accept(evutil_socket_t lfd, short what, void *arg) {
        (void)what;
        (void)arg;
        for (int k = 0; k < 64; k++) {
                int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (fd < 0) {
                        if (errno == EMFILE || errno == ENFILE) {
                                /* Out of descriptors: stop accepting for a second
                                 * rather than spin on a listener that stays readable. */
                                frd_log(FRD_WARN, "accept: %s; new connections wait 1 s "
                                                "(raise LimitNOFILE or lower max_agents)",
                                       strerror(errno));
                                event_del(D.listen_ev);
                                struct timeval one = {1, 0};
                                evtimer_add(D.accept_pause, &one);
                        } else if (errno != EAGAIN && errno != EINTR) {
                                frd_log(FRD_WARN, "accept: %s", strerror(errno));
                        }
                        return;
                }
                frd_conn_new(fd);
        }
}

void frd_on_accept_pause(evutil_socket_t fd, short what, void *arg) {
        (void)fd;
        (void)what;
        (void)arg;
        if (!D.stopping)
                event_add(D.listen_ev, NULL);
}
