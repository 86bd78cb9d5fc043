/* fr_errf (fr_err.h). */
#include "fr_err.h"

#include <stdio.h>

int fr_verrf(char *err, size_t errlen, int code, const char *fmt, va_list ap) {
        if (err && errlen)
                vsnprintf(err, errlen, fmt, ap);
        return code;
}

int fr_errf(char *err, size_t errlen, int code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fr_verrf(err, errlen, code, fmt, ap);
        va_end(ap);
        return code;
}
