/* fr_parse_size (fr_size.h). */
#include "fr_size.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int fr_parse_size(const char *s, int prefixes, uint64_t min, uint64_t max, uint64_t *ret) {
        char *end;
        if (!s || !*s || *s == '-')
                return -EINVAL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, prefixes ? 0 : 10);
        if (errno || end == s)
                return -EINVAL;
        unsigned shift = 0;
        if (*end) {
                static const char units[] = "KMGT";
                const char *u = strchr(units, *end >= 'a' ? *end - 'a' + 'A' : *end);
                if (!u || !*u)
                        return -EINVAL;
                shift = 10 * (unsigned)(u - units + 1);
                end++;
                if (end[0] == 'i' && end[1] == 'B')
                        end += 2;
                else if (end[0] == 'B')
                        end++;
        }
        if (*end)
                return -EINVAL;
        if (shift && v > (UINT64_MAX >> shift))
                return -ERANGE;
        v <<= shift;
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}
