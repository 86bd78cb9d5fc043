/* The one parser of sizes written by people: the agent's FLIGHTREC_* sizes
 * and the daemon's configuration. */
#ifndef FR_SIZE_H
#define FR_SIZE_H

#include <stdint.h>

/* fr_parse_size - an unsigned number (decimal, or 0x hex / 0 octal when
 * `prefixes`) with an optional binary suffix K, M, G or T (either case),
 * optionally followed by "iB" or "B". Returns 0, -EINVAL (not a size) or
 * -ERANGE (outside min..max). */
int fr_parse_size(const char *s, int prefixes, uint64_t min, uint64_t max, uint64_t *ret);

#endif
