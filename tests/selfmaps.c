/* selfmaps: see selfmaps.h. */
#include "fr_build_id.h"
#include "selfmaps.h"

#include <elf.h>
#include <errno.h>
#include <inttypes.h>
#include <link.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct note_search {
        uint64_t addr;
        struct sm_object *o;
        bool found;
};

/* The object whose PT_LOAD covers addr: its NT_GNU_BUILD_ID note. */
static int note_cb(struct dl_phdr_info *info, size_t size, void *ud) {
        struct note_search *ns = ud;
        bool mine = false;
        (void)size;
        for (int i = 0; i < info->dlpi_phnum; i++) {
                const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
                uint64_t start = info->dlpi_addr + ph->p_vaddr;
                if (ph->p_type == PT_LOAD && ns->addr >= start && ns->addr < start + ph->p_memsz)
                        mine = true;
        }
        if (!mine)
                return 0;
        const uint8_t *bid;
        size_t n = fr_build_id(info, sizeof ns->o->build_id, &bid);
        if (n) {
                memcpy(ns->o->build_id, bid, n);
                ns->o->build_id_len = n;
                ns->found = true;
        }
        return 1;
}

/* read_maps - with want NULL, the path of the mapping holding addr; else
 * every mapping of the file want. */
static int read_maps(struct sm_object *o, uint64_t addr, const char *want) {
        char line[PATH_MAX + 256];
        int r = -ENOENT;
        FILE *f = fopen("/proc/self/maps", "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof line, f)) {
                uint64_t start, limit, offset;
                int pos = 0;
                if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %*s %" SCNx64 " %*s %*s %n", &start,
                           &limit, &offset, &pos) < 3 || pos == 0)
                        continue;
                char *path = line + pos;
                path[strcspn(path, "\n")] = 0;
                if (path[0] != '/')
                        continue; /* anonymous, [heap], [vdso]... */
                if (!want) {
                        if (addr >= start && addr < limit && strlen(path) < sizeof o->path) {
                                strcpy(o->path, path);
                                r = 0;
                                break;
                        }
                        continue;
                }
                if (strcmp(path, want) != 0)
                        continue;
                if (o->nseg == SM_MAX_SEGMENTS) {
                        r = -E2BIG;
                        break;
                }
                o->seg[o->nseg++] = (struct sm_segment){start, limit, offset};
                r = 0;
        }
        fclose(f);
        return r;
}

int sm_load(struct sm_object *o, const void *addr) {
        uint64_t a = (uint64_t)(uintptr_t)addr;
        int r;
        memset(o, 0, sizeof *o);
        r = read_maps(o, a, NULL);
        if (r < 0)
                return r;
        r = read_maps(o, a, o->path);
        if (r < 0)
                return r;
        struct note_search ns = {a, o, false};
        dl_iterate_phdr(note_cb, &ns);
        return ns.found ? 0 : -ENOENT;
}

int sm_contains(const struct sm_object *o, uint64_t addr) {
        for (size_t i = 0; i < o->nseg; i++)
                if (addr >= o->seg[i].start && addr < o->seg[i].limit)
                        return 1;
        return 0;
}

void sm_add_maps(struct tg_gen *g, const struct sm_object *o, const char *path) {
        for (size_t i = 0; i < o->nseg; i++)
                tg_map(g, o->seg[i].start, o->seg[i].limit, o->seg[i].offset, path ? path : o->path,
                       o->build_id, o->build_id_len);
}
