/* pprof-lld-prog: a small program linked with lld, for test-pprof. lld does
 * not page-align segments in the file, so in a program this small the
 * read-only, code and data segments all share file page 0 and every mapping
 * of it has file offset 0. It prints the addresses of two of its functions,
 * a return address inside one, its build id and its mappings, and exits:
 * the test symbolizes them after the process is gone, as the daemon does. */
#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static uintptr_t ra;

__attribute__((noinline, noclone, used)) int lld_leaf(int x) {
        ra = (uintptr_t)__builtin_return_address(0);
        return x * 3 + 1;
}

__attribute__((noinline, noclone, used)) int lld_caller(int x) { return lld_leaf(x) ^ 5; }

/* The executable's GNU build id, in hex. */
static int print_build_id(struct dl_phdr_info *info, size_t size, void *ud) {
        (void)size;
        (void)ud;
        for (int i = 0; i < info->dlpi_phnum; i++) {
                const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
                if (ph->p_type != PT_NOTE)
                        continue;
                const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
                const uint8_t *end = p + ph->p_memsz;
                while ((size_t)(end - p) >= sizeof(ElfW(Nhdr))) {
                        const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
                        const uint8_t *desc = p + sizeof *n + ((n->n_namesz + 3) & ~3u);
                        if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 &&
                            memcmp(p + sizeof *n, "GNU", 4) == 0) {
                                printf("buildid ");
                                for (unsigned j = 0; j < n->n_descsz; j++)
                                        printf("%02x", desc[j]);
                                printf("\n");
                                return 1;
                        }
                        p = desc + ((n->n_descsz + 3) & ~3u);
                }
        }
        return 1; /* the first object is the executable */
}

int main(void) {
        char line[4352];
        int v = lld_caller(1);
        printf("fn lld_leaf %#lx\nfn lld_caller %#lx\nra %#lx\n", (unsigned long)(uintptr_t)lld_leaf,
               (unsigned long)(uintptr_t)lld_caller, (unsigned long)ra);
        dl_iterate_phdr(print_build_id, NULL);
        FILE *f = fopen("/proc/self/maps", "r");
        while (f && fgets(line, sizeof line, f))
                printf("map %s", line);
        return v == 0;
}
