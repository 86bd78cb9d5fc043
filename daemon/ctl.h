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

#endif
