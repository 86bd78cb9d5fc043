/* fr_addr_ranges: a generation's loaded objects as [start, limit) address
 * ranges, each naming the caller's entry for the object (idx), sorted by
 * start and searched by address. Ranges may overlap (the union of several
 * generations' maps): the latest start at or below the address is tried
 * first, then the earlier ones. Shared by the pprof and the Perfetto exports;
 * inline, for their per-frame lookups. */
#ifndef FR_ADDR_RANGES_H
#define FR_ADDR_RANGES_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

struct fr_addr_range {
        uint64_t start, limit;
        size_t idx;
};

static inline int fr__addr_range_cmp(const void *a, const void *b) {
        const struct fr_addr_range *x = a, *y = b;
        return x->start < y->start ? -1 : x->start > y->start;
}

/* fr_addr_ranges_sort - v[0..n) by start, for fr_addr_ranges_find. */
static inline void fr_addr_ranges_sort(struct fr_addr_range *v, size_t n) {
        if (n)
                qsort(v, n, sizeof *v, fr__addr_range_cmp);
}

/* fr_addr_ranges_find - the idx of a range of v[0..n) (sorted) holding
 * addr, or SIZE_MAX. */
static inline size_t fr_addr_ranges_find(const struct fr_addr_range *v, size_t n, uint64_t addr) {
        size_t lo = 0, hi = n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (v[mid].start <= addr)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        while (lo-- > 0)
                if (addr >= v[lo].start && addr < v[lo].limit)
                        return v[lo].idx;
        return SIZE_MAX;
}

#endif
