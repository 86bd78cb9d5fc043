/* flightrecctl: command-line tool for flightrec. Parses the global options
 * and hands the rest to a subcommand (ctl.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define DEFAULT_SOCKET "/run/flightrec/agent.sock"

struct command {
        const char *name;
        int (*run)(const struct ctl_options *opts, int argc, char **argv);
        const char *args, *help;
};

static const struct command commands[] = {
        {"crash", ctl_crash, "[--no-symbolize] [--root DIR] TRACE",
         "print the crash report of a post-mortem trace"},
        {"dump", ctl_dump, "TRACE", "print a trace, one event per line, names resolved"},
        {"perfetto", ctl_perfetto, "[--json] TRACE [-o OUT]",
         "export the timeline for ui.perfetto.dev (.pftrace) or as Chrome JSON"},
        {"pprof", ctl_pprof, "TRACE [-o OUT.pb.gz] [--offcpu] [--no-symbolize] [--root DIR]",
         "convert a trace's CPU samples (or waits) to a gzip'd pprof profile"},
        {"status", ctl_status, "[--pid PID] [--comm GLOB] [--summary]",
         "the agents connected to the daemon: counts, a summary by comm, one line each"},
        {"threads", ctl_threads, "[--no-symbolize] [--root DIR] SNAPSHOT",
         "thread dump at the end of a snapshot: blocked in what, stacks, deadlocks"},
        {"trigger", ctl_trigger, "[--name NAME] [--after DURATION] [--pid PID] [--reason TEXT]",
         "snapshot every agent (or one, or a named trigger's), print the files written"},
};

static void usage(FILE *f) {
        fprintf(f, "usage: flightrecctl [--socket PATH] COMMAND [ARGS...]\n\ncommands:\n");
        for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
                const struct command *c = &commands[i];
                int n = (int)(strlen(c->name) + 1 + strlen(c->args));
                /* A long argument list gets its help on the next line. */
                if (n <= 25)
                        fprintf(f, "  %s %s%*s %s\n", c->name, c->args, 25 - n, "", c->help);
                else
                        fprintf(f, "  %s %s\n%28s%s\n", c->name, c->args, "", c->help);
        }
        fprintf(f, "\noptions:\n"
                   "  --socket PATH   the daemon's socket (default $FLIGHTREC_SOCKET or %s)\n"
                   "  -h, --help      show this help\n"
                   "  -V, --version   show the version\n"
                   "\nEvery command takes --help and --version. See flightrecctl(1).\n",
                DEFAULT_SOCKET);
}

static const struct command *find_command(const char *name) {
        for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
                if (strcmp(commands[i].name, name) == 0)
                        return &commands[i];
        return NULL;
}

int main(int argc, char **argv) {
        static const struct option longopts[] = {
                {"socket", required_argument, NULL, 's'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},
                {0},
        };
        struct ctl_options opts = {.socket = getenv("FLIGHTREC_SOCKET")};
        const struct command *cmd;
        int c;

        if (!opts.socket || !*opts.socket)
                opts.socket = DEFAULT_SOCKET;
        /* "+": stop at the subcommand name; what follows is its business. */
        while ((c = getopt_long(argc, argv, "+hV", longopts, NULL)) != -1) {
                switch (c) {
                case 's':
                        opts.socket = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                case 'V':
                        printf("flightrecctl %s\n", FR_VERSION);
                        return 0;
                default:
                        usage(stderr);
                        return CTL_EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                usage(stderr);
                return CTL_EXIT_USAGE;
        }
        cmd = find_command(argv[optind]);
        if (!cmd) {
                fprintf(stderr, "flightrecctl: unknown command '%s'\n", argv[optind]);
                usage(stderr);
                return CTL_EXIT_USAGE;
        }
        /* --version among a command's arguments (up to "--"), for every
         * command alike. */
        for (int i = optind + 1; i < argc && strcmp(argv[i], "--") != 0; i++)
                if (strcmp(argv[i], "--version") == 0) {
                        printf("flightrecctl %s\n", FR_VERSION);
                        return 0;
                }
        argc -= optind;
        argv += optind;
        optind = 0; /* glibc: start afresh for the subcommand's own getopt */
        return cmd->run(&opts, argc, argv);
}
