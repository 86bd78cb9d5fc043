/* Writing trace files: the file name stem and an LZ4-frame writer, shared by
 * the agent (local snapshots) and the daemon. */
#ifndef FR_TRACE_OUT_H
#define FR_TRACE_OUT_H

#include <stddef.h>
#include <stdint.h>

#include "fr_io.h" /* fr_write_all */
#include <sys/types.h>

/* fr_trace_stem - "<comm>-<pid>-<UTC time>" for snapshot files, e.g.
 * "myserver-1234-20261123T091530.123Z". comm is made safe for a file name:
 * only [A-Za-z0-9._-] are kept (others become '_'), at most 64 bytes, never
 * starting with '.', never empty. realtime_ns: ns since the epoch.
 * Returns 0, or -ENAMETOOLONG if len is too small. */
int fr_trace_stem(const char *comm, pid_t pid, uint64_t realtime_ns, char *buf, size_t len);

/* An LZ4 frame (content checksum on) written to a file descriptor as data
 * comes in, so memory stays bounded whatever the trace size. */
struct fr_lz4_out;
/* fr_lz4_out_open - start a frame on fd. Returns 0 or -ENOMEM / -EIO. */
int fr_lz4_out_open(int fd, struct fr_lz4_out **ret);
/* fr_lz4_out_write - compress and write n bytes. Returns 0 or negative errno
 * (the write's, e.g. -ENOSPC); after an error, further calls fail too. */
int fr_lz4_out_write(struct fr_lz4_out *o, const void *p, size_t n);
/* fr_lz4_out_close - end the frame (unless abort), free o. Returns 0 or a
 * negative errno. Does not close fd. */
int fr_lz4_out_close(struct fr_lz4_out *o, int abort);

/* fr_lz4_frame - n bytes as one whole, independent LZ4 frame (the same
 * settings) in a malloc'd buffer: frames of parts compressed in parallel,
 * concatenated, read back as the whole (`lz4 -d` reads concatenated frames).
 * Returns 0 or -ENOMEM / -EIO. */
int fr_lz4_frame(const void *src, size_t n, uint8_t **ret, size_t *ret_len);


#endif
