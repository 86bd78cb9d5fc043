/* The advancer's table of open tasks, rebuilt from TASK_BEGIN/TASK_END events
 * so that every generation's STATUS can list them. Open addressing with
 * backward-shift deletion; advancer-private, no locking. */
#include <stdlib.h>

#include "fr_tasks.h"

#define MIN_SLOTS 64

static uint64_t mix(uint64_t x) {
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdull;
        x ^= x >> 33;
        return x;
}

static int grow(struct fr_task_table *tt) {
        size_t n = tt->nslots ? tt->nslots * 2 : MIN_SLOTS;
        struct fr_task_entry *old = tt->slots;
        size_t oldn = tt->nslots;
        struct fr_task_entry *s = calloc(n, sizeof *s);
        if (!s)
                return -1;
        tt->slots = s;
        tt->nslots = n;
        tt->count = 0;
        for (size_t i = 0; i < oldn; i++)
                if (old[i].id)
                        fr_task_table_add(tt, old[i].id, old[i].parent, old[i].name);
        free(old);
        return 0;
}

void fr_task_table_add(struct fr_task_table *tt, uint64_t id, uint64_t parent, uint32_t name) {
        if (id == 0 || tt->count >= FR_TASKS_MAX)
                return; /* beyond the bound a task is not carried across generations */
        if ((tt->count + 1) * 2 > tt->nslots && grow(tt) < 0)
                return;
        size_t mask = tt->nslots - 1;
        for (size_t i = mix(id) & mask;; i = (i + 1) & mask) {
                if (tt->slots[i].id == id)
                        return;
                if (tt->slots[i].id == 0) {
                        tt->slots[i] = (struct fr_task_entry){id, parent, name};
                        tt->count++;
                        return;
                }
        }
}

void fr_task_table_remove(struct fr_task_table *tt, uint64_t id) {
        if (!tt->nslots || id == 0)
                return;
        size_t mask = tt->nslots - 1, i = mix(id) & mask;
        while (tt->slots[i].id != id) {
                if (tt->slots[i].id == 0)
                        return;
                i = (i + 1) & mask;
        }
        /* Shift later entries of the probe run back into the hole. */
        for (size_t j = (i + 1) & mask; tt->slots[j].id; j = (j + 1) & mask) {
                size_t home = mix(tt->slots[j].id) & mask;
                if (((j - home) & mask) >= ((j - i) & mask)) {
                        tt->slots[i] = tt->slots[j];
                        i = j;
                }
        }
        tt->slots[i].id = 0;
        tt->count--;
}

void fr_task_table_free(struct fr_task_table *tt) {
        free(tt->slots);
        *tt = (struct fr_task_table){0};
}
