/* Encoding helpers for the flightrec trace format (docs/trace-format.md).
 *
 * The varint writers are inline so that the agent's hot path can use them on
 * raw memory; fr_buf is a growable buffer for everything that is not hot
 * (the agent's advancer, the test generator, the tools). */
#ifndef FR_TRACE_ENCODE_H
#define FR_TRACE_ENCODE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "trace_format.h"

/* Largest encoding of one varint. */
#define FR_VARINT_MAX 10

/* fr_put_uvarint - write v as unsigned LEB128 at p.
 * Returns the pointer just past the encoding (at most FR_VARINT_MAX bytes). */
static inline uint8_t *fr_put_uvarint(uint8_t *p, uint64_t v) {
        while (v >= 0x80) {
                *p++ = (uint8_t)(v | 0x80);
                v >>= 7;
        }
        *p++ = (uint8_t)v;
        return p;
}

/* fr_uvarint_len - number of bytes fr_put_uvarint writes for v. */
static inline size_t fr_uvarint_len(uint64_t v) {
        size_t n = 1;
        while (v >= 0x80) {
                v >>= 7;
                n++;
        }
        return n;
}

/* fr_get_uvarint - decode a varint from [p, end) into *v. Returns the byte
 * after it, or NULL when the input ends first or it is longer than 64 bits. */
static inline const uint8_t *fr_get_uvarint(const uint8_t *p, const uint8_t *end, uint64_t *v) {
        uint64_t x = 0;
        for (unsigned shift = 0; p < end && shift < 64; shift += 7) {
                uint8_t c = *p++;
                x |= (uint64_t)(c & 0x7f) << shift;
                if (!(c & 0x80)) {
                        *v = x;
                        return p;
                }
        }
        return NULL;
}

/* Zigzag mapping of signed deltas (stack frames) onto unsigned varints. */
static inline uint64_t fr_zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t fr_unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

/* fr_buf - a growable byte buffer.  After an allocation failure every append
 * becomes a no-op and `failed` stays set, so callers check once at the end. */
struct fr_buf {
        uint8_t *data;
        size_t len;
        size_t cap;
        int failed;
};

/* fr_buf_reserve - make room for n more bytes.  Returns 0 or -ENOMEM. */
int fr_buf_reserve(struct fr_buf *b, size_t n);
/* fr_buf_free - release the memory and reset b to empty. */
void fr_buf_free(struct fr_buf *b);
void fr_buf_put_bytes(struct fr_buf *b, const void *p, size_t n);
void fr_buf_put_uvarint(struct fr_buf *b, uint64_t v);
void fr_buf_put_u8(struct fr_buf *b, uint8_t v);
/* fr_buf_put_string - length varint then the bytes (no terminator). */
void fr_buf_put_string(struct fr_buf *b, const char *s, size_t n);

/* fr_buf_put_header - the file header: magic, version, pid, comm, exe,
 * reason and flags (FR_HEADER_POSTMORTEM). */
#define FR_HEADER_POSTMORTEM 1u
void fr_buf_put_header(struct fr_buf *b, uint64_t pid, const char *comm, const char *exe,
                       const char *reason, uint64_t flags);

/* fr_buf_put_batch - a batch header followed by its payload. */
void fr_buf_put_batch(struct fr_buf *b, enum fr_batch_kind kind, uint64_t gen, uint64_t tid,
                      uint64_t base_time, const void *payload, size_t size);

/* fr_encode_batch_header - write a batch header ending exactly at `end`
 * (the payload follows it in memory).  Returns where the header starts;
 * at most FR_BATCH_HEADER_MAX bytes before end are used. */
uint8_t *fr_encode_batch_header(uint8_t *end, enum fr_batch_kind kind, uint64_t gen, uint64_t tid,
                                uint64_t base_time, uint64_t size);

#endif
