/* I/O loops and the atomic file write (fr_io.h). */
#include "fr_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fr_write_all(int fd, const void *p, size_t n) {
        const char *c = p;
        while (n > 0) {
                ssize_t w = write(fd, c, n);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                c += w;
                n -= (size_t)w;
        }
        return 0;
}

ssize_t fr_read_full(int fd, void *p, size_t n) {
        size_t got = 0;
        while (got < n) {
                ssize_t k = read(fd, (char *)p + got, n - got);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                got += (size_t)k;
        }
        return (ssize_t)got;
}

int fr_pread_exact(int fd, void *p, size_t n, uint64_t off) {
        size_t done = 0;
        while (done < n) {
                ssize_t k = pread(fd, (uint8_t *)p + done, n - done, (off_t)(off + done));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -EIO;
                done += (size_t)k;
        }
        return 0;
}

static void sync_dir_of(const char *path) {
        const char *slash = strrchr(path, '/');
        char dir[4352];
        if (!slash)
                snprintf(dir, sizeof dir, ".");
        else if (slash == path)
                snprintf(dir, sizeof dir, "/");
        else if (snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path) >= (int)sizeof dir)
                return;
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
                (void)fsync(dfd);
                close(dfd);
        }
}

int fr_file_commit(int fd, const char *tmp, const char *path, unsigned flags,
                   const char **ret_step) {
        const char *step = NULL;
        int r = 0;
        if (fdatasync(fd) < 0) {
                r = -errno;
                step = "cannot sync";
        }
        if (close(fd) < 0 && r == 0) {
                r = -errno;
                step = "cannot write";
        }
        if (r == 0 && rename(tmp, path) < 0) {
                r = -errno;
                step = "cannot rename the temporary file";
        }
        if (r < 0) {
                unlink(tmp);
                if (ret_step)
                        *ret_step = step;
                return r;
        }
        if (!(flags & FR_COMMIT_NO_DIRSYNC))
                sync_dir_of(path);
        return 0;
}

int fr_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         const char **ret_step) {
        const char *slash = strrchr(path, '/');
        char *tmp = NULL;
        /* A hidden name, so that a directory scan for the final names skips it. */
        if (asprintf(&tmp, "%.*s.%s.XXXXXX", slash ? (int)(slash - path + 1) : 0, path,
                     slash ? slash + 1 : path) < 0) {
                *ret_step = "cannot allocate";
                return -ENOMEM;
        }
        int r, fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                *ret_step = "cannot create a temporary file";
                free(tmp);
                return r;
        }
        /* mkostemp gives 0600. */
        if (fchmod(fd, mode) < 0) {
                r = -errno;
                *ret_step = "cannot set the mode of the temporary file";
        } else if ((r = fr_write_all(fd, data, len)) < 0) {
                *ret_step = "cannot write";
        }
        if (r < 0) {
                close(fd);
                unlink(tmp);
        } else {
                r = fr_file_commit(fd, tmp, path, 0, ret_step);
        }
        free(tmp);
        return r;
}
