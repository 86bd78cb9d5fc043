/* gperf_count PROFILE: the number of samples in a gperftools CPU profile
 * (the legacy binary format: a 5-word header, records of count, depth and
 * pcs, a 3-word trailer, then the text of /proc/self/maps). */
#include <stdint.h>
#include <stdio.h>

int main(int argc, char **argv) {
        if (argc != 2) {
                fprintf(stderr, "usage: %s PROFILE\n", argv[0]);
                return 2;
        }
        FILE *f = fopen(argv[1], "rb");
        if (!f) {
                perror(argv[1]);
                return 1;
        }
        uintptr_t hdr[5], count, depth, pc;
        if (fread(hdr, sizeof hdr[0], 5, f) != 5 || hdr[0] != 0 || hdr[1] != 3) {
                fprintf(stderr, "%s: not a gperftools CPU profile\n", argv[1]);
                return 1;
        }
        uint64_t total = 0;
        while (fread(&count, sizeof count, 1, f) == 1 && fread(&depth, sizeof depth, 1, f) == 1) {
                if (count == 0 && depth == 1)
                        break; /* trailer */
                for (uintptr_t i = 0; i < depth; i++)
                        if (fread(&pc, sizeof pc, 1, f) != 1)
                                return 1;
                total += count;
        }
        printf("%llu\n", (unsigned long long)total);
        return 0;
}
