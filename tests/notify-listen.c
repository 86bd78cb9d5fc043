/* A stand-in for systemd's NOTIFY_SOCKET in tests: binds a Unix datagram
 * socket at PATH and prints every message received, one per line (newlines
 * inside a message become spaces), until SECONDS pass.
 * Usage: notify-listen PATH SECONDS */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
        if (argc != 3) {
                fprintf(stderr, "usage: notify-listen PATH SECONDS\n");
                return 2;
        }
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        if (strlen(argv[1]) >= sizeof a.sun_path)
                return 2;
        strcpy(a.sun_path, argv[1]);
        unlink(argv[1]);
        int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0) {
                perror("notify-listen: bind");
                return 1;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        time_t end = time(NULL) + atoi(argv[2]);
        while (time(NULL) < end) {
                struct pollfd p = {s, POLLIN, 0};
                if (poll(&p, 1, 200) <= 0)
                        continue;
                char buf[4096];
                ssize_t n = recv(s, buf, sizeof buf - 1, 0);
                if (n <= 0)
                        continue;
                buf[n] = '\0';
                for (ssize_t i = 0; i < n; i++)
                        if (buf[i] == '\n')
                                buf[i] = ' ';
                printf("%s\n", buf);
        }
        unlink(argv[1]);
        return 0;
}
