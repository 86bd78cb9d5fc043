/* The MAPS batch: the executable code segments of every loaded object, with
 * the object's path and GNU build id, so that a trace can be symbolized
 * without the process. Built with dl_iterate_phdr by the advancer; the
 * encoded list is cached and rebuilt only when objects were loaded or
 * unloaded since (dlpi_adds / dlpi_subs). */
#include <elf.h>
#include <link.h>
#include <string.h>

#include "fr_build_id.h"
#include "fr_internal.h"

static struct {
        unsigned long long adds, subs;
        struct fr_buf payload;
        bool valid;
} cache;

static int add_object(struct dl_phdr_info *info, size_t size, void *data) {
        (void)size;
        struct fr_buf *b = data;
        const char *path = info->dlpi_name;
        if (!path || !*path)
                path = fr__exe; /* the main program */
        const uint8_t *bid = NULL;
        size_t nbid = fr_build_id(info, FR_MAX_BUILD_ID_BYTES, &bid);
        size_t plen = strnlen(path, FR_MAX_PATH_BYTES);
        for (int i = 0; i < info->dlpi_phnum; i++) {
                const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
                if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X) || ph->p_memsz == 0)
                        continue;
                /* Page-align as the kernel maps it: start and offset move together. */
                uint64_t start = info->dlpi_addr + ph->p_vaddr;
                uint64_t align = start & 4095;
                fr_buf_put_uvarint(b, start - align);
                fr_buf_put_uvarint(b, start + ph->p_memsz);
                fr_buf_put_uvarint(b, ph->p_offset - align);
                fr_buf_put_string(b, path, plen);
                fr_buf_put_string(b, bid ? (const char *)bid : "", nbid);
        }
        return 0;
}

static int count_changes(struct dl_phdr_info *info, size_t size, void *data) {
        (void)size;
        unsigned long long *v = data;
        v[0] = info->dlpi_adds;
        v[1] = info->dlpi_subs;
        return 1; /* the counters are the same in every entry: one is enough */
}

void fr__maps_emit(uint64_t gen, struct fr_buf *out, size_t *nbatches) {
        unsigned long long v[2] = {0, 0};
        dl_iterate_phdr(count_changes, v);
        if (!cache.valid || v[0] != cache.adds || v[1] != cache.subs || cache.payload.failed) {
                cache.payload.len = 0;
                cache.payload.failed = 0;
                dl_iterate_phdr(add_object, &cache.payload);
                cache.adds = v[0];
                cache.subs = v[1];
                cache.valid = !cache.payload.failed;
        }
        if (!cache.valid || cache.payload.len == 0 || cache.payload.len > FR_MAX_BATCH_BYTES)
                return;
        fr_buf_put_batch(out, FR_BATCH_MAPS, gen, 0, 0, cache.payload.data, cache.payload.len);
        (*nbatches)++;
}
