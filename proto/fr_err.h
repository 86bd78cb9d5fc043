/* Error messages into a caller's buffer: the one helper behind every
 * "err, errlen" parameter of proto/ and the daemon. */
#ifndef FR_ERR_H
#define FR_ERR_H

#include <stdarg.h>
#include <stddef.h>

/* fr_errf - format into err (when err and errlen) and return code, so that a
 * failing path reads `return fr_errf(err, errlen, -EINVAL, "...", ...)`. */
int fr_errf(char *err, size_t errlen, int code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
int fr_verrf(char *err, size_t errlen, int code, const char *fmt, va_list ap)
        __attribute__((format(printf, 4, 0)));

#endif
