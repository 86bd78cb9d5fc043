/* The agent's connection to flightrecd (fr_client.c): one thread of its own,
 * blocked in poll, never on an application thread's path. See docs/daemon.md. */
#ifndef FR_CLIENT_H
#define FR_CLIENT_H

#include <stddef.h>

/* fr__client_start - start the client thread (connects to fr__cfg.socket_path,
 * sends HELLO, reconnects with backoff). Called once the recorder runs.
 * Returns 0 or a negative errno (the recorder runs on without a daemon). */
int fr__client_start(void);
/* fr__client_stop - stop and join the client thread, close the socket. */
void fr__client_stop(void);
/* fr__client_forget - in a forked child: drop the parent's client (its thread
 * does not exist here) and close the inherited socket without a word on it. */
void fr__client_forget(void);
/* fr__client_snapshot - ask the daemon for a snapshot of this process (TRIGGER)
 * and wait until the client thread has written it into the daemon's pipe.
 * Returns 0 when the daemon took it, or a negative errno (-ENOTCONN: no
 * daemon; -ETIMEDOUT: no answer in time; the daemon's refusal) so that the
 * caller writes a local snapshot instead. */
int fr__client_snapshot(const char *reason);
/* fr__client_trigger - queue a named trigger for the client thread to send;
 * returns at once: 0, -ENOTCONN (no daemon), -EAGAIN (16 queued already) or
 * -EINVAL (name empty or longer than 63 bytes). */
int fr__client_trigger(const char *name, const char *reason);

/* fr__write_snapshot_reason - fr_write_snapshot(fd) with the reason recorded
 * in the trace header (fr_snapshot.c). */
int fr__write_snapshot_reason(int fd, const char *reason);

#endif
