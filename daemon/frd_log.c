/* flightrecd's log: one line per event on stderr, with "<N>" priority
 * prefixes under systemd's journal. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#include "frd.h"

static bool log_prefix; /* "<N>" priority prefixes for the journal */
static int log_max = FRD_INFO;

void frd_log_setup(bool journal, bool debug) {
        log_prefix = journal;
        log_max = debug ? FRD_DEBUG : FRD_INFO;
}

void frd_log(int level, const char *fmt, ...) {
        if (level > log_max)
                return;
        char line[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        static const char *const names[] = {"", "", "", "error: ", "warning: ", "", "", "debug: "};
        if (log_prefix)
                fprintf(stderr, "<%d>%s%s\n", level, names[level], line);
        else
                fprintf(stderr, "flightrecd: %s%s\n", names[level], line);
}
