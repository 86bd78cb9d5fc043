/* libFuzzer target: the daemon's reader of a dead agent's post-mortem ring
 * (proto/pm_ring.c, proto/pm_salvage.c) as flightrecd drives it. The input
 * becomes a memfd: its first sizeof(struct fr_pm_header) bytes are the
 * header, the next sizeof(struct fr_pm_crash) the crash record (at
 * FR_PM_CRASH_OFF), the rest is placed after the header page (index slots,
 * blocks, crash-time samples), so that short inputs reach past the header
 * checks. Whatever the plan accepts is copied out, the live generation is
 * salvaged, and the result is read by the trace reader, as the daemon's
 * worker does: it must always be valid. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pm_ring.h"
#include "trace_encode.h"
#include "trace_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
        static int fd = -1;
        if (fd < 0)
                fd = memfd_create("fuzz-ring", MFD_CLOEXEC);
        if (fd < 0 || ftruncate(fd, 0) < 0)
                abort();
        size_t h = len < sizeof(struct fr_pm_header) ? len : sizeof(struct fr_pm_header);
        if (pwrite(fd, data, h, 0) != (ssize_t)h)
                abort();
        size_t k = len - h < sizeof(struct fr_pm_crash) ? len - h : sizeof(struct fr_pm_crash);
        if (k && pwrite(fd, data + h, k, FR_PM_CRASH_OFF) != (ssize_t)k)
                abort();
        h += k;
        if (len > h) {
                if (pwrite(fd, data + h, len - h, FR_PM_HEADER_SIZE) != (ssize_t)(len - h))
                        abort();
        } else if (ftruncate(fd, FR_PM_HEADER_SIZE) < 0) {
                abort();
        }
        struct fr_pm_plan plan;
        char err[256];
        (void)fr_pm_closed(fd);
        if (fr_pm_plan(fd, 1u << 20, &plan, err, sizeof err) < 0)
                return 0;
        struct fr_buf b = {0};
        fr_buf_put_header(&b, 1, "fuzz", "fuzz", "post-mortem", FR_HEADER_POSTMORTEM);
        size_t hl = b.len;
        if (fr_buf_reserve(&b, plan.total) == 0 &&
            fr_pm_copy(fd, &plan, b.data + hl, err, sizeof err) == 0) {
                b.len = hl + plan.total;
                int complete = fr_trace_read(b.data, b.len, 0, NULL, NULL, NULL, err, sizeof err);
                long n = fr_pm_salvage(fd, &plan, b.data, b.len, &b, err, sizeof err);
                /* Salvage never turns a valid trace into an invalid one. */
                if (complete == 0 && n >= 0 &&
                    fr_trace_read(b.data, b.len, 0, NULL, NULL, NULL, err, sizeof err) != 0)
                        abort();
                (void)fr_trace_read(b.data, b.len, FR_READ_ALLOW_PARTIAL_TAIL, NULL, NULL, NULL, err,
                                    sizeof err);
        }
        fr_buf_free(&b);
        fr_pm_plan_free(&plan);
        return 0;
}
