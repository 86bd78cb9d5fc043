/* selfmaps: the objects loaded in this process as a trace's MAPS batch
 * records them (file-backed ranges from /proc/self/maps, GNU build id from
 * the ELF notes), for tests and generators whose traces must point at real
 * code on this machine. */
#ifndef FR_SELFMAPS_H
#define FR_SELFMAPS_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "tracegen.h"

#define SM_MAX_SEGMENTS 32

struct sm_segment {
        uint64_t start, limit, offset; /* as in /proc/self/maps: limit exclusive */
};

struct sm_object {
        char path[PATH_MAX]; /* as the kernel names the file */
        uint8_t build_id[64];
        size_t build_id_len;
        struct sm_segment seg[SM_MAX_SEGMENTS];
        size_t nseg;
};

/* sm_load - the object holding the code at addr: every mapping of its file
 * and its build id. Returns 0, -ENOENT (addr in no file-backed mapping, or
 * no build id) or another negative errno. */
int sm_load(struct sm_object *o, const void *addr);

/* sm_contains - whether addr lies in one of the object's mappings. */
int sm_contains(const struct sm_object *o, uint64_t addr);

/* sm_add_maps - the object's mappings as MAPS entries of g, under path
 * (NULL: its own). */
void sm_add_maps(struct tg_gen *g, const struct sm_object *o, const char *path);

#endif
