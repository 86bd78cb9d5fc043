/* Encoding helpers for the flightrec trace format: see trace_encode.h. */
#include "trace_encode.h"

#include <errno.h>
#include <stdlib.h>

int fr_buf_reserve(struct fr_buf *b, size_t n) {
        if (b->failed)
                return -ENOMEM;
        if (b->cap - b->len >= n)
                return 0;
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n) {
                if (cap > SIZE_MAX / 2)
                        goto fail;
                cap *= 2;
        }
        uint8_t *p = realloc(b->data, cap);
        if (!p)
                goto fail;
        b->data = p;
        b->cap = cap;
        return 0;
fail:
        b->failed = 1;
        return -ENOMEM;
}

void fr_buf_free(struct fr_buf *b) {
        free(b->data);
        *b = (struct fr_buf){0};
}

void fr_buf_put_bytes(struct fr_buf *b, const void *p, size_t n) {
        if (n == 0 || fr_buf_reserve(b, n) < 0)
                return;
        memcpy(b->data + b->len, p, n);
        b->len += n;
}

void fr_buf_put_uvarint(struct fr_buf *b, uint64_t v) {
        if (fr_buf_reserve(b, FR_VARINT_MAX) < 0)
                return;
        b->len = (size_t)(fr_put_uvarint(b->data + b->len, v) - b->data);
}

void fr_buf_put_u8(struct fr_buf *b, uint8_t v) { fr_buf_put_bytes(b, &v, 1); }

void fr_buf_put_string(struct fr_buf *b, const char *s, size_t n) {
        fr_buf_put_uvarint(b, n);
        fr_buf_put_bytes(b, s, n);
}

static void put_cstring(struct fr_buf *b, const char *s, size_t max) {
        size_t n = s ? strnlen(s, max) : 0;
        fr_buf_put_string(b, s ? s : "", n);
}

void fr_buf_put_header(struct fr_buf *b, uint64_t pid, const char *comm, const char *exe,
                       const char *reason, uint64_t flags) {
        fr_buf_put_bytes(b, FR_TRACE_MAGIC, FR_TRACE_MAGIC_LEN);
        fr_buf_put_uvarint(b, FR_TRACE_VERSION);
        fr_buf_put_uvarint(b, pid);
        put_cstring(b, comm, FR_MAX_COMM_BYTES);
        put_cstring(b, exe, FR_MAX_PATH_BYTES);
        put_cstring(b, reason, FR_MAX_STRING_BYTES);
        fr_buf_put_uvarint(b, flags);
}

void fr_buf_put_batch(struct fr_buf *b, enum fr_batch_kind kind, uint64_t gen, uint64_t tid,
                      uint64_t base_time, const void *payload, size_t size) {
        uint8_t hdr[FR_BATCH_HEADER_MAX];
        uint8_t *start = fr_encode_batch_header(hdr + sizeof hdr, kind, gen, tid, base_time, size);
        fr_buf_put_bytes(b, start, (size_t)(hdr + sizeof hdr - start));
        fr_buf_put_bytes(b, payload, size);
}

uint8_t *fr_encode_batch_header(uint8_t *end, enum fr_batch_kind kind, uint64_t gen, uint64_t tid,
                                uint64_t base_time, uint64_t size) {
        size_t n = 1 + fr_uvarint_len(gen) + fr_uvarint_len(tid) + fr_uvarint_len(base_time) +
                   fr_uvarint_len(size);
        uint8_t *start = end - n, *p = start;
        *p++ = (uint8_t)kind;
        p = fr_put_uvarint(p, gen);
        p = fr_put_uvarint(p, tid);
        p = fr_put_uvarint(p, base_time);
        fr_put_uvarint(p, size);
        return start;
}
