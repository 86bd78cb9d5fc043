/* flightrecctl subcommands, one per file (ctl_<name>.c).
 *
 * Each gets the options that come before the subcommand name and its own
 * arguments (argv[0] is the subcommand name), and returns the exit status:
 * 0 success, 1 failure, 2 usage error (after printing its usage). */
#ifndef FR_CTL_H
#define FR_CTL_H

struct ctl_options {
        const char *socket; /* --socket, FLIGHTREC_SOCKET, or the default */
};

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CTL_EXIT_FAILURE 1
#define CTL_EXIT_USAGE 2

int ctl_crash(const struct ctl_options *opts, int argc, char **argv);
/* ctl_output_path - TRACE without .trace.lz4 / .trace, plus suffix
 * (ctl_file.c). Returns a malloc'd string or NULL. */
char *ctl_output_path(const char *trace, const char *suffix);

/* ctl_convert_fn - one offline conversion of a loaded trace (arg is the
 * caller's): 0 with a malloc'd *out of *out_len bytes, or a negative errno
 * with a message in err (or err[0] == 0: strerror is printed). */
typedef int (*ctl_convert_fn)(void *arg, const uint8_t *data, size_t len, uint8_t **out,
                              size_t *out_len, char *err, size_t errlen);
/* ctl_export_trace - what the offline exports (perfetto, pprof) share
 * (ctl_file.c): load TRACE (at most max_bytes decoded), convert it, and write
 * the result through fr_write_file_atomic (mode) to output, or when output is
 * NULL to ctl_output_path(trace, suffix); never over the trace itself. Every
 * failure is printed. Returns 0 with the output's path in *ret_path (free()
 * it) and its size in *ret_len, or CTL_EXIT_FAILURE. */
int ctl_export_trace(const char *trace, const char *output, const char *suffix, size_t max_bytes,
                     mode_t mode, ctl_convert_fn convert, void *arg, char **ret_path,
                     size_t *ret_len);

int ctl_dump(const struct ctl_options *opts, int argc, char **argv);
int ctl_perfetto(const struct ctl_options *opts, int argc, char **argv);
int ctl_pprof(const struct ctl_options *opts, int argc, char **argv);
int ctl_threads(const struct ctl_options *opts, int argc, char **argv);
int ctl_status(const struct ctl_options *opts, int argc, char **argv);  /* ctl_daemon.c */
int ctl_trigger(const struct ctl_options *opts, int argc, char **argv); /* ctl_daemon.c */

/* Named triggers (ctl_trigger.c). */
#include <stdbool.h>
#include <stdint.h>
#include "wire.h"
/* ctl_parse_duration_ms - "2", "2s", "500ms", "1.5s", "1m", "1h" (<= 1 h). */
int ctl_parse_duration_ms(const char *s, unsigned *ret);
void ctl_named_trigger_frame(fr_frame *f, Flightrec__Wire__CtlNamedTrigger *m, const char *name,
                             bool has_after, unsigned after_ms, uint32_t pid, char *reason);
/* ctl_print_triggers - status: hooks and trigger lines. */
void ctl_print_triggers(const Flightrec__Wire__StatusReply *s);

#endif
