/* The crash report of a post-mortem trace: the one-line reason flightrecd
 * puts in the snapshot (and the pprof comments, and its log), and the text
 * report `<stem>.crash.txt` / `flightrecctl crash TRACE`: the signal and the
 * address, the crashing thread's symbolized stack with file:line, every other
 * thread's last known stack, open tasks and regions and last events, the
 * loaded objects with build ids. */
#ifndef FR_CRASH_REPORT_H
#define FR_CRASH_REPORT_H

#include <stddef.h>
#include <stdint.h>

struct fr_buf;
struct fr_symbolizer;

/* What the daemon says of a death without a crash record. */
#define FR_NO_CRASH_REASON \
        "died without a crash record (SIGKILL, the OOM killer, or a signal the agent cannot catch)"

/* fr_signal_name / fr_sicode_name - "SIGSEGV", "SEGV_MAPERR" (a number
 * when unknown; buf holds it). */
const char *fr_signal_name(uint64_t signo, char *buf, size_t n);
const char *fr_sicode_name(uint64_t signo, int64_t code, char *buf, size_t n);

/* fr_crash_reason - `crash: SIGSEGV (SEGV_MAPERR) at 0x10 in thread 8210
 * "worker": walk_list <- parser_thread <- start_thread` from the trace's
 * CRASH record, symbolized with sym (NULL: addresses only). Returns 1 with
 * the reason in ret, 0 when the trace has no crash, or a negative errno. */
int fr_crash_reason(const uint8_t *trace, size_t len, struct fr_symbolizer *sym, char *ret,
                    size_t n);

/* fr_crash_report - the text report, appended to out. Returns 0, -ENOENT
 * when the trace has no crash record, or a negative errno (with err). */
int fr_crash_report(const uint8_t *trace, size_t len, struct fr_symbolizer *sym,
                    struct fr_buf *out, char *err, size_t errlen);

#endif
