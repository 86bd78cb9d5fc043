/* fr_trace_load_file: a trace file into memory, raw or in an LZ4 frame
 * (see trace_reader.h). The file is streamed, so a compressed file is never
 * held whole next to its decoded form, and max_bytes caps what is kept. */
#include "trace_reader.h"
#include "fr_err.h"
#include "fr_io.h"

#include <errno.h>
#include <fcntl.h>
#include <lz4frame.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LZ4F_MAGIC 0x184D2204u
#define CHUNK (64u * 1024)

struct out {
        uint8_t *data;
        size_t len, cap;
        size_t limit; /* max_bytes */
};

/* out_room - make room for up to CHUNK more bytes, but never more than one
 * byte past the limit: that byte is how an oversize input is noticed. */
static int out_room(struct out *o) {
        size_t want = o->limit == SIZE_MAX ? SIZE_MAX : o->limit + 1;
        if (want - o->len > CHUNK)
                want = o->len + CHUNK;
        if (want <= o->cap)
                return 0;
        size_t cap = o->cap ? o->cap : CHUNK;
        while (cap < want)
                cap = cap > SIZE_MAX / 2 ? want : cap * 2;
        if (o->limit != SIZE_MAX && cap > o->limit + 1)
                cap = o->limit + 1;
        uint8_t *p = realloc(o->data, cap);
        if (!p)
                return -ENOMEM;
        o->data = p;
        o->cap = cap;
        return 0;
}

static int load_raw(int fd, const uint8_t *head, size_t nhead, struct out *o, char *err,
                    size_t errlen) {
        int e;
        if (nhead > o->limit)
                return fr_errf(err, errlen, -EFBIG, "file is larger than the limit of %zu bytes",
                            o->limit);
        if ((e = out_room(o)) < 0)
                return fr_errf(err, errlen, e, "out of memory");
        memcpy(o->data, head, nhead); /* nhead <= 4 and room for limit + 1 */
        o->len = nhead;
        for (;;) {
                if (o->len > o->limit)
                        return fr_errf(err, errlen, -EFBIG, "file is larger than the limit of %zu bytes",
                                    o->limit);
                if ((e = out_room(o)) < 0)
                        return fr_errf(err, errlen, e, "out of memory");
                ssize_t k = fr_read_full(fd, o->data + o->len, o->cap - o->len);
                if (k < 0)
                        return fr_errf(err, errlen, (int)k, "read error: %s", strerror((int)-k));
                if (k == 0)
                        return 0;
                o->len += (size_t)k;
        }
}

static int inflate(int fd, LZ4F_dctx *dctx, const uint8_t *head, size_t nhead, struct out *o,
                   char *err, size_t errlen) {
        uint8_t in[CHUNK];
        size_t in_len = nhead, in_pos = 0, hint = 1;
        memcpy(in, head, nhead);
        for (;;) {
                if (in_pos == in_len) {
                        ssize_t k = fr_read_full(fd, in, sizeof in);
                        if (k < 0)
                                return fr_errf(err, errlen, (int)k, "read error: %s",
                                            strerror((int)-k));
                        if (k == 0)
                                break;
                        in_len = (size_t)k;
                        in_pos = 0;
                }
                int e = out_room(o);
                if (e < 0)
                        return fr_errf(err, errlen, e, "out of memory");
                size_t src = in_len - in_pos, dst = o->cap - o->len;
                hint = LZ4F_decompress(dctx, o->data + o->len, &dst, in + in_pos, &src, NULL);
                if (LZ4F_isError(hint))
                        return fr_errf(err, errlen, -EINVAL, "corrupt LZ4 frame: %s",
                                    LZ4F_getErrorName(hint));
                in_pos += src;
                o->len += dst;
                if (o->len > o->limit)
                        return fr_errf(err, errlen, -EFBIG,
                                    "decompressed trace is larger than the limit of %zu bytes",
                                    o->limit);
                /* hint == 0: a frame ended; another one may follow. */
        }
        if (hint != 0)
                return fr_errf(err, errlen, -EINVAL, "truncated LZ4 frame: the file ends inside it");
        return 0;
}

static int load_lz4(int fd, const uint8_t *head, size_t nhead, struct out *o, char *err,
                    size_t errlen) {
        LZ4F_dctx *dctx;
        if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
                return fr_errf(err, errlen, -ENOMEM, "out of memory");
        int e = inflate(fd, dctx, head, nhead, o, err, errlen);
        LZ4F_freeDecompressionContext(dctx);
        return e;
}

int fr_trace_load_file(const char *path, size_t max_bytes, uint8_t **ret_data, size_t *ret_len,
                       char *err, size_t errlen) {
        struct out o = {.limit = max_bytes};
        uint8_t head[4];
        ssize_t nhead;
        int fd, e;

        if (err && errlen)
                err[0] = 0;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return fr_errf(err, errlen, -errno, "cannot open: %s", strerror(errno));
        nhead = fr_read_full(fd, head, sizeof head);
        if (nhead < 0) {
                e = fr_errf(err, errlen, (int)nhead, "read error: %s", strerror((int)-nhead));
                goto out;
        }
        if (nhead == 4 && (head[0] | head[1] << 8 | head[2] << 16 | (uint32_t)head[3] << 24) ==
                                  LZ4F_MAGIC)
                e = load_lz4(fd, head, 4, &o, err, errlen);
        else
                e = load_raw(fd, head, (size_t)nhead, &o, err, errlen);
out:
        close(fd);
        if (e < 0) {
                free(o.data);
                return e;
        }
        *ret_data = o.data;
        *ret_len = o.len;
        return 0;
}
