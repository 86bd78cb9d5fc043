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
