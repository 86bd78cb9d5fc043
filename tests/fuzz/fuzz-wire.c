/* libFuzzer target: the wire decoder (proto/wire.c) as the daemon drives it:
 * the input is a byte stream fed to an fr_wire_reader in chunks, each
 * complete frame decoded and validated (fr_wire_decode + fr_wire_check),
 * named and freed, until the stream is exhausted or an error. Also
 * fr_wire_decode directly on the whole input with the absolute maximum, and
 * a re-pack and re-decode of every accepted frame. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

static volatile size_t sink;

static void use(fr_frame *f) {
        sink += strlen(fr_wire_name(f));
        uint8_t *b;
        size_t n;
        if (fr_wire_pack(f, &b, &n) == 0) {
                /* Decode the re-packed frame again. Not required to succeed:
                 * protobuf-c keeps an unknown field of number 0 given as an
                 * overlong tag (80 00) and re-emits it as 00, which it then
                 * rejects (tests/fuzz/regressions/wire/repack-tag0); the
                 * daemon never re-packs what it receives. */
                fr_frame *g = NULL;
                char err[256];
                if (fr_wire_decode(b, n, FR_WIRE_MAX_FRAME, &g, err, sizeof err) > 0)
                        fr_wire_free(g);
                free(b);
        }
        fr_wire_free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
        char err[256];
        fr_frame *f = NULL;
        /* The stream through the reader, in chunks of up to 4096 bytes (what
         * fr_wire_reader_fill receives at a time when idle). */
        struct fr_wire_reader r;
        fr_wire_reader_init(&r, FR_WIRE_DEFAULT_MAX_FRAME, 0);
        size_t off = 0;
        int done = 0;
        while (off < len && !done) {
                size_t chunk = len - off < 4096 ? len - off : 4096;
                if (r.cap - r.len < chunk) {
                        size_t cap = r.len + chunk;
                        uint8_t *nb = realloc(r.buf, cap);
                        if (!nb)
                                break;
                        r.buf = nb;
                        r.cap = cap;
                }
                memcpy(r.buf + r.len, data + off, chunk);
                r.len += chunk;
                off += chunk;
                for (;;) {
                        int k = fr_wire_reader_next(&r, &f, err, sizeof err);
                        if (k < 0)
                                done = 1;
                        if (k != 1)
                                break;
                        use(f);
                }
        }
        fr_wire_reader_free(&r);

        long n = fr_wire_decode(data, len, FR_WIRE_MAX_FRAME, &f, err, sizeof err);
        if (n > 0)
                use(f);
        return 0;
}
