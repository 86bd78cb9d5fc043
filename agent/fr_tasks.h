/* Open-task table of the advancer (fr_tasks.c). */
#ifndef FR_TASKS_H
#define FR_TASKS_H

#include <stddef.h>
#include <stdint.h>

/* Open tasks carried from one generation's STATUS to the next, at most. */
#define FR_TASKS_MAX 16384

struct fr_task_entry {
        uint64_t id; /* 0: empty slot */
        uint64_t parent;
        uint32_t name;
};

struct fr_task_table {
        struct fr_task_entry *slots;
        size_t nslots, count;
};

/* fr_task_table_add - remember an open task (ignored past FR_TASKS_MAX). */
void fr_task_table_add(struct fr_task_table *tt, uint64_t id, uint64_t parent, uint32_t name);
/* fr_task_table_remove - forget a task; unknown ids are ignored. */
void fr_task_table_remove(struct fr_task_table *tt, uint64_t id);
void fr_task_table_free(struct fr_task_table *tt);

#endif
