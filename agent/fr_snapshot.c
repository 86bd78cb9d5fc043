/* Snapshots: the retained generations written to a file descriptor, or to a
 * local .trace.lz4 file when no daemon takes them. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fr_client.h"
#include "fr_internal.h"
#include "trace_out.h"

#define MAX_PINNED 100000

typedef int (*sink_fn)(void *sink, const void *p, size_t n);

/* Force an advance, then stream header + retained generations to the sink. */
static int write_retained(const char *reason, sink_fn put, void *sink) {
        if (!atomic_load(&fr__running))
                return -EINVAL;
        int r = fr__advance_now();
        if (r < 0)
                return r;
        struct fr_buf hdr = {0};
        fr_buf_put_header(&hdr, (uint64_t)getpid(), fr__comm, fr__exe, reason, 0);
        if (hdr.failed)
                return -ENOMEM;
        static struct fr_genbytes *pinned[MAX_PINNED];
        static pthread_mutex_t pin_lock = PTHREAD_MUTEX_INITIALIZER;
        pthread_mutex_lock(&pin_lock); /* one snapshot at a time shares `pinned` */
        size_t n = fr__ring_pin(pinned, MAX_PINNED);
        r = put(sink, hdr.data, hdr.len);
        for (size_t i = 0; i < n && r == 0; i++)
                for (struct fr_block *b = pinned[i]->head; b && r == 0; b = b->next)
                        r = put(sink, (uint8_t *)b + b->out_start, b->pos - b->out_start);
        fr__ring_unpin(pinned, n);
        pthread_mutex_unlock(&pin_lock);
        fr_buf_free(&hdr);
        return r;
}

static int put_fd(void *sink, const void *p, size_t n) { return fr_write_all(*(int *)sink, p, n); }

int fr_write_snapshot(int fd) { return fr__write_snapshot_reason(fd, "fr_write_snapshot"); }

int fr__write_snapshot_reason(int fd, const char *reason) {
        if (fd < 0)
                return -EBADF;
        return write_retained(reason, put_fd, &fd);
}

static int put_lz4(void *sink, const void *p, size_t n) { return fr_lz4_out_write(sink, p, n); }

static int mkdir_p(const char *dir) {
        char path[4096];
        if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
                return -ENAMETOOLONG;
        for (char *s = path + 1;; s++) {
                if (*s == '/' || *s == '\0') {
                        char c = *s;
                        *s = '\0';
                        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                                return -errno;
                        *s = c;
                        if (!c)
                                return 0;
                }
        }
}

int fr__snapshot_local(const char *dir, const char *reason, char *ret_path, size_t pathlen) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        char stem[128], tmp[4200];
        int r = fr_trace_stem(fr__comm, getpid(),
                              (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec, stem,
                              sizeof stem);
        if (r < 0)
                return r;
        if (snprintf(ret_path, pathlen, "%s/%s.trace.lz4", dir, stem) >= (int)pathlen ||
            snprintf(tmp, sizeof tmp, "%s/.%s.trace.lz4.tmp", dir, stem) >= (int)sizeof tmp)
                return -ENAMETOOLONG;
        r = mkdir_p(dir);
        if (r < 0)
                return r;
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        struct fr_lz4_out *out;
        r = fr_lz4_out_open(fd, &out);
        if (r == 0) {
                r = write_retained(reason, put_lz4, out);
                int rc = fr_lz4_out_close(out, r < 0);
                if (r == 0)
                        r = rc;
        }
        if (r < 0) {
                close(fd);
                unlink(tmp); /* never leave a partial file */
                return r;
        }
        return fr_file_commit(fd, tmp, ret_path, 0, NULL);
}

int fr_trigger(const char *name, const char *reason) {
        if (!atomic_load(&fr__running) || !name)
                return -EINVAL;
        return fr__client_trigger(name, reason ? reason : "fr_trigger");
}

int fr_snapshot(const char *reason) {
        if (!atomic_load(&fr__running))
                return -EINVAL;
        /* The daemon first (its client thread writes the snapshot into the
         * daemon's pipe); whenever no daemon answers in time, a local file. */
        if (fr__client_snapshot(reason ? reason : "fr_snapshot") == 0)
                return 0;
        /* A setuid program writes nothing where its user could point it, nor
         * anywhere else: only the daemon's configured socket takes it. */
        if (fr__secure())
                return -ECONNREFUSED;
        char path[4200];
        int r = fr__snapshot_local(fr__cfg.dir, reason ? reason : "fr_snapshot", path, sizeof path);
        if (r < 0)
                fr__log_error("snapshot into %s failed: %s", fr__cfg.dir, strerror(-r));
        return r;
}
