/* The flightrec wire protocol (wire.proto): framing, decoding and validation,
 * shared by the agent's client thread, flightrecd and flightrecctl.
 *
 * A frame is a 4-byte little-endian length followed by that many bytes of a
 * serialized Flightrec__Wire__Frame. A receiver enforces its own maximum
 * (never above FR_WIRE_MAX_FRAME) before allocating anything, and validates
 * every field of a decoded frame (fr_wire_check) before using it. */
#ifndef FR_WIRE_H
#define FR_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "wire.pb-c.h"

typedef Flightrec__Wire__Frame fr_frame;

#define FR_WIRE_VERSION 1u
#define FR_WIRE_MAX_FRAME (16u << 20)      /* absolute bound, any direction */
#define FR_WIRE_DEFAULT_MAX_FRAME 65536u   /* what the daemon accepts from peers */
#define FR_WIRE_MAX_COMM 255u
#define FR_WIRE_MAX_PATH 4095u
#define FR_WIRE_MAX_REASON 4095u
#define FR_WIRE_MAX_TRIGGER_NAME 63u /* [trigger NAME] (issue 15) */
#define FR_WIRE_MAX_BUILD_ID 64u
#define FR_WIRE_MAX_FDS 8u                 /* fds a reader keeps queued */

/* fr_wire_pack - f as one frame (length prefix + payload) in a malloc'd
 * buffer. Returns 0, -ENOMEM, or -EMSGSIZE beyond FR_WIRE_MAX_FRAME. */
int fr_wire_pack(const fr_frame *f, uint8_t **ret, size_t *ret_len);

/* fr_wire_decode - look for one frame at buf[0..len).
 * Returns the frame's total size (> 0) with the unpacked, validated frame in
 * *ret (fr_wire_free it), 0 when more bytes are needed, -EMSGSIZE when the
 * length prefix exceeds max_frame (or is 0), -EBADMSG when the payload does not
 * parse or a field is invalid; err then says why. */
long fr_wire_decode(const uint8_t *buf, size_t len, size_t max_frame, fr_frame **ret, char *err,
                    size_t errlen);
void fr_wire_free(fr_frame *f);

/* fr_wire_check - field validation of a decoded frame: a message is set,
 * strings within their bounds and free of control characters where they are
 * names, ids non-zero where required. Returns 0 or -EBADMSG with err. */
int fr_wire_check(const fr_frame *f, char *err, size_t errlen);

/* fr_wire_name - the message's name ("hello", ...), for logs. */
const char *fr_wire_name(const fr_frame *f);

/* An incremental reader over a stream socket: bytes and passed fds. */
struct fr_wire_reader {
        uint8_t *buf;
        size_t len, cap;
        size_t max_frame;
        int accept_fds;                  /* 0: passed fds are closed at once */
        int fds[FR_WIRE_MAX_FDS];
        unsigned nfds;
        unsigned dropped_fds;            /* beyond the queue or not accepted */
};
void fr_wire_reader_init(struct fr_wire_reader *r, size_t max_frame, int accept_fds);
/* fr_wire_reader_fill - one recvmsg (non-blocking if sock is). Returns the
 * bytes read, 0 at end of stream, or a negative errno (-EAGAIN included). */
long fr_wire_reader_fill(struct fr_wire_reader *r, int sock);
/* fr_wire_reader_next - the next complete frame: 1 with *ret, 0 when more
 * bytes are needed, or a negative errno (fr_wire_decode's) with err. */
int fr_wire_reader_next(struct fr_wire_reader *r, fr_frame **ret, char *err, size_t errlen);
/* fr_wire_reader_take_fd - the oldest passed fd not yet taken, or -1. */
int fr_wire_reader_take_fd(struct fr_wire_reader *r);
void fr_wire_reader_free(struct fr_wire_reader *r);

/* fr_wire_send - send one frame on a blocking socket (MSG_NOSIGNAL), with
 * pass_fd (>= 0) attached by SCM_RIGHTS. Returns 0 or a negative errno. */
int fr_wire_send(int sock, const fr_frame *f, int pass_fd);

/* fr_wire_sendmsg - one sendmsg of buf[0..len) with pass_fd attached when
 * >= 0; for non-blocking senders. Returns bytes sent or a negative errno. */
long fr_wire_sendmsg(int sock, const uint8_t *buf, size_t len, int pass_fd);

#endif
