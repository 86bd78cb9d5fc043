/* fr_build_id (fr_build_id.h). Reads only the object's own mapped notes. */
#include "fr_build_id.h"

#include <elf.h>
#include <string.h>

size_t fr_build_id(const struct dl_phdr_info *info, size_t max, const uint8_t **ret) {
        for (int i = 0; i < info->dlpi_phnum; i++) {
                const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
                if (ph->p_type != PT_NOTE)
                        continue;
                const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
                const uint8_t *end = p + ph->p_memsz;
                while (p + sizeof(ElfW(Nhdr)) <= end) {
                        const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
                        size_t nsz = (n->n_namesz + 3) & ~3u, dsz = (n->n_descsz + 3) & ~3u;
                        const uint8_t *name = p + sizeof *n, *desc = name + nsz;
                        if (desc + dsz > end)
                                break;
                        if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 &&
                            memcmp(name, "GNU", 4) == 0 && n->n_descsz <= max) {
                                *ret = desc;
                                return n->n_descsz;
                        }
                        p = desc + dsz;
                }
        }
        return 0;
}
