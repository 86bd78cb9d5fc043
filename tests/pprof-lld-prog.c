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

#include "fr_build_id.h"

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
        const uint8_t *bid;
        size_t n = fr_build_id(info, 64, &bid);
        if (n) {
                printf("buildid ");
                for (size_t j = 0; j < n; j++)
                        printf("%02x", bid[j]);
                printf("\n");
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
