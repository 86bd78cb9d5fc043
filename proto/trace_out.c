/* Writing trace files: see trace_out.h. */
#include "trace_out.h"

#include <errno.h>
#include <lz4frame.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int fr_trace_stem(const char *comm, pid_t pid, uint64_t realtime_ns, char *buf, size_t len) {
        char safe[65];
        size_t n = 0;
        for (const char *c = comm ? comm : ""; *c && n < sizeof safe - 1; c++) {
                int ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                         (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-';
                safe[n++] = ok ? *c : '_';
        }
        safe[n] = '\0';
        if (n == 0)
                strcpy(safe, "unknown");
        if (safe[0] == '.')
                safe[0] = '_';
        time_t secs = (time_t)(realtime_ns / 1000000000u);
        struct tm tm;
        gmtime_r(&secs, &tm);
        int k = snprintf(buf, len, "%s-%d-%04d%02d%02dT%02d%02d%02d.%03uZ", safe, (int)pid,
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                         tm.tm_sec, (unsigned)(realtime_ns / 1000000u % 1000u));
        return k < 0 || (size_t)k >= len ? -ENAMETOOLONG : 0;
}

#define CHUNK (64u * 1024u)

struct fr_lz4_out {
        int fd;
        int err;
        LZ4F_cctx *cctx;
        LZ4F_preferences_t prefs;
        size_t cap;
        uint8_t *dst;
};

static void frame_prefs(LZ4F_preferences_t *p) {
        memset(p, 0, sizeof *p);
        p->frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
        p->frameInfo.blockSizeID = LZ4F_max256KB;
}

int fr_lz4_frame(const void *src, size_t n, uint8_t **ret, size_t *ret_len) {
        LZ4F_preferences_t prefs;
        frame_prefs(&prefs);
        prefs.frameInfo.contentSize = n;
        size_t cap = LZ4F_compressFrameBound(n, &prefs);
        uint8_t *dst = malloc(cap);
        if (!dst)
                return -ENOMEM;
        size_t w = LZ4F_compressFrame(dst, cap, src, n, &prefs);
        if (LZ4F_isError(w)) {
                free(dst);
                return -EIO;
        }
        *ret = dst;
        *ret_len = w;
        return 0;
}

int fr_lz4_out_open(int fd, struct fr_lz4_out **ret) {
        struct fr_lz4_out *o = calloc(1, sizeof *o);
        if (!o)
                return -ENOMEM;
        o->fd = fd;
        frame_prefs(&o->prefs);
        o->cap = LZ4F_compressBound(CHUNK, &o->prefs);
        if (o->cap < LZ4F_HEADER_SIZE_MAX)
                o->cap = LZ4F_HEADER_SIZE_MAX;
        o->dst = malloc(o->cap);
        if (!o->dst || LZ4F_isError(LZ4F_createCompressionContext(&o->cctx, LZ4F_VERSION))) {
                free(o->dst);
                free(o);
                return -ENOMEM;
        }
        size_t n = LZ4F_compressBegin(o->cctx, o->dst, o->cap, &o->prefs);
        int r = LZ4F_isError(n) ? -EIO : fr_write_all(fd, o->dst, n);
        if (r < 0) {
                fr_lz4_out_close(o, 1);
                return r;
        }
        *ret = o;
        return 0;
}

int fr_lz4_out_write(struct fr_lz4_out *o, const void *p, size_t n) {
        const uint8_t *c = p;
        while (n && !o->err) {
                size_t k = n < CHUNK ? n : CHUNK;
                size_t w = LZ4F_compressUpdate(o->cctx, o->dst, o->cap, c, k, NULL);
                if (LZ4F_isError(w))
                        o->err = -EIO;
                else
                        o->err = fr_write_all(o->fd, o->dst, w);
                c += k;
                n -= k;
        }
        return o->err;
}

int fr_lz4_out_close(struct fr_lz4_out *o, int abort) {
        int r = o->err;
        if (!abort && r == 0) {
                size_t w = LZ4F_compressEnd(o->cctx, o->dst, o->cap, NULL);
                r = LZ4F_isError(w) ? -EIO : fr_write_all(o->fd, o->dst, w);
        }
        LZ4F_freeCompressionContext(o->cctx);
        free(o->dst);
        free(o);
        return r;
}
