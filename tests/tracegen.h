/* tracegen: build flightrec traces programmatically, for tests.
 *
 * trace -> generation -> batch -> event, like Go's internal/trace testgen.
 * By default the result is valid: generation numbers count up from 1, each
 * generation gets a CLOCK, a STATUS (the state the generator's model reached
 * at the end of the previous generation), STRINGS/STACKS tables with ids
 * assigned per generation, and an END with the right count. Each of these can
 * be left out or overridden through the knobs of struct tg_gen, and raw
 * batches and raw event arguments can carry any bytes, to build broken traces.
 *
 * The model that feeds the automatic STATUS follows the events in the order
 * they are added (not sorted by time), so add them in time order, and create
 * a generation only once the previous one has all its events.
 * Allocation failures abort: this is test code. */
#ifndef FR_TRACEGEN_H
#define FR_TRACEGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace_encode.h"

struct tg_trace;
struct tg_batch;
struct tg_gen_priv;

struct tg_gen {
        /* Knobs, preset by tg_gen_new(); change them before encoding. */
        uint64_t num;            /* generation number: previous + 1, the first 1 */
        uint64_t start, end;     /* span in ticks: CLOCK and END base_time */
        uint64_t ticks_per_second; /* default 1e9 */
        uint64_t mono_ns, real_ns; /* default: start, and 1.7e18 + start */
        uint64_t sampler, sample_hz; /* default FR_SAMPLER_NONE, 0 */
        bool no_clock, no_status, no_end; /* leave the batch out */
        bool extra_clock, extra_status;   /* write the batch twice */
        bool tables_first;       /* STRINGS/STACKS/MAPS before the other batches */
        int64_t end_count_delta; /* added to the END batch count */
        uint64_t end_flags;      /* END flags (FR_END_PARTIAL); 0: none written */
        struct tg_gen_priv *priv;
};

/* Trace */
struct tg_trace *tg_trace_new(void);
void tg_trace_free(struct tg_trace *t);
/* Header fields (defaults: pid 4242, "tgapp", "/usr/bin/tgapp", "test", 0). */
void tg_trace_header(struct tg_trace *t, uint64_t pid, const char *comm, const char *exe,
                     const char *reason, uint64_t flags);
/* Leave the header out: the test writes its own with tg_trace_raw_header(). */
void tg_trace_raw_header(struct tg_trace *t, const void *bytes, size_t len);
/* Encode into a malloc'd buffer (free() it). */
void tg_trace_encode(struct tg_trace *t, uint8_t **ret_data, size_t *ret_len);
/* The same, then tg_trace_free(t): for a test done building it. */
void tg_trace_encode_free(struct tg_trace *t, uint8_t **ret_data, size_t *ret_len);
/* Encode and write to path. Returns 0 or -errno. */
int tg_trace_write_file(struct tg_trace *t, const char *path);

/* Generation: appended to the trace, span [start, end]. Its STATUS starts as
 * the model's state; tg_status_*() replace it (call them before any event). */
struct tg_gen *tg_gen_new(struct tg_trace *t, uint64_t start, uint64_t end);
void tg_status_clear(struct tg_gen *g);
void tg_status_thread(struct tg_gen *g, uint64_t tid, const char *name);
void tg_status_region(struct tg_gen *g, uint64_t tid, uint64_t task, const char *name);
void tg_status_task(struct tg_gen *g, uint64_t id, uint64_t parent, const char *name);
/* String ids: tg_string_id() interns s in the generation's table (NULL: 0).
 * tg_string_raw() adds a table entry as given (any id, even 0 or a duplicate). */
uint64_t tg_string_id(struct tg_gen *g, const char *s);
void tg_string_raw(struct tg_gen *g, uint64_t id, const void *bytes, size_t len);
uint64_t tg_stack_id(struct tg_gen *g, const uint64_t *pcs, size_t n);
void tg_map(struct tg_gen *g, uint64_t start, uint64_t limit, uint64_t offset, const char *path,
            const void *build_id, size_t build_id_len);

/* Batches, in the order created (between the automatic CLOCK/STATUS and the
 * tables/END). base_time is where the first delta counts from. */
struct tg_batch *tg_events(struct tg_gen *g, uint64_t tid, uint64_t base_time);
struct tg_batch *tg_samples(struct tg_gen *g, uint64_t tid, uint64_t base_time);
/* Any batch, payload written with tg_put_*(). */
struct tg_batch *tg_raw(struct tg_gen *g, enum fr_batch_kind kind, uint64_t tid,
                        uint64_t base_time);
/* Write another generation number in the batch header (0: the generation's). */
void tg_batch_gen(struct tg_batch *b, uint64_t gen);

/* Events at absolute times (the delta is taken from the batch's previous
 * event, or base_time; an earlier time wraps around). */
void tg_task_begin(struct tg_batch *b, uint64_t time, uint64_t id, uint64_t parent,
                   const char *name);
void tg_task_end(struct tg_batch *b, uint64_t time, uint64_t id);
void tg_region_begin(struct tg_batch *b, uint64_t time, uint64_t task, const char *name);
void tg_region_end(struct tg_batch *b, uint64_t time, uint64_t task, const char *name);
void tg_log(struct tg_batch *b, uint64_t time, uint64_t task, const char *category,
            const char *message);
void tg_thread_name(struct tg_batch *b, uint64_t time, const char *name);
void tg_thread_start(struct tg_batch *b, uint64_t time);
void tg_thread_exit(struct tg_batch *b, uint64_t time);
void tg_lost(struct tg_batch *b, uint64_t time, uint64_t what, uint64_t count);
/* An event's type and delta only; the test writes the arguments with tg_put_*(). */
void tg_event_head(struct tg_batch *b, uint8_t type, uint64_t time);

/* A sample; region NULL: none. */
void tg_sample(struct tg_batch *b, uint64_t time, uint64_t weight, uint64_t task,
               const char *region, const uint64_t *pcs, size_t npcs);

/* Raw payload bytes. */
void tg_put_u8(struct tg_batch *b, uint8_t v);
void tg_put_uvarint(struct tg_batch *b, uint64_t v);
void tg_put_bytes(struct tg_batch *b, const void *p, size_t n);
void tg_put_string(struct tg_batch *b, const void *p, size_t n);

#endif
