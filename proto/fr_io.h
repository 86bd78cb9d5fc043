/* Descriptor I/O loops and the atomic file write: the one home of the
 * write-all / read-all loops and of temporary-file-then-rename. */
#ifndef FR_IO_H
#define FR_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* fr_write_all - write n bytes, retrying on EINTR and short writes.
 * Returns 0 or -errno. */
int fr_write_all(int fd, const void *p, size_t n);
/* fr_read_full - read until n bytes or the end of the file. Returns the count
 * or -errno. */
ssize_t fr_read_full(int fd, void *p, size_t n);
/* fr_pread_exact - exactly n bytes at off: 0, -EIO at a short file, or -errno. */
int fr_pread_exact(int fd, void *p, size_t n, uint64_t off);

/* fr_file_commit - make the temporary file tmp (open as fd, which this
 * closes) durable as path: fdatasync, close, rename, then (unless flags has
 * FR_COMMIT_NO_DIRSYNC: a later commit in the same directory syncs it) fsync
 * the directory so that the rename survives a crash. On failure tmp is
 * removed. Returns 0 or -errno; *ret_step (may be NULL) names the step that
 * failed. */
#define FR_COMMIT_NO_DIRSYNC 1u
int fr_file_commit(int fd, const char *tmp, const char *path, unsigned flags,
                   const char **ret_step);
/* fr_write_file_atomic - data to path through a hidden temporary file in the
 * same directory ("<dir>/.<name>.XXXXXX", mode) and fr_file_commit. Nothing
 * is left on failure. Returns 0 or -errno with *ret_step set. */
int fr_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         const char **ret_step);

#endif
