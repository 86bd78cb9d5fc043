/* The GNU build id of a loaded object, from its PT_NOTE segments in memory:
 * the one parser of NT_GNU_BUILD_ID notes (the agent's Hello and MAPS
 * batches, the tests' fixtures). */
#ifndef FR_BUILD_ID_H
#define FR_BUILD_ID_H

#include <link.h>
#include <stddef.h>
#include <stdint.h>

/* fr_build_id - the build id of the object info describes: its length (0:
 * none, or longer than max) and *ret pointing at its bytes in memory. */
size_t fr_build_id(const struct dl_phdr_info *info, size_t max, const uint8_t **ret);

#endif
