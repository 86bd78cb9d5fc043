/* Salvaging the generation a process was recording when it died (pm_ring.h,
 * fr_pm_salvage): the daemon turns what the dead agent left in its ring into
 * one last, partial generation.
 *
 * Sources, all untrusted and read with pread only:
 *  - the prologue the advancer published at the generation's start: CLOCK,
 *    STATUS, MAPS, STRINGS (already trace batches);
 *  - every pool block tagged with the live generation and a thread id: that
 *    thread's events, committed up to the block's pos (the agent stores pos
 *    after the bytes). Each event is decoded; the first one that does not
 *    decode ends the block (a torn tail is dropped, never passed on);
 *  - the samples the crash handler copied (raw records, fr_sample.c), turned
 *    into SAMPLES and STACKS batches, one stack per sample;
 *  - the committed crash record, as the CRASH batch.
 * Names interned after the prologue get placeholder strings. The result is
 * read back with the trace reader behind the complete generations; if it is
 * not valid, it is rebuilt without samples, then without events. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fr_io.h"
#include "pm_ring.h"
#include "trace_encode.h"
#include "trace_format.h"
#include "trace_reader.h"

#define MAX_IDS (1u << 20) /* string ids tracked for placeholders */

/* A growable set of string ids (sorted at the end, for lookups). */
struct ids {
        uint64_t *v;
        size_t n, cap;
};
static void ids_add(struct ids *s, uint64_t id) {
        if (id == 0 || s->n >= MAX_IDS)
                return;
        if (s->n == s->cap) {
                size_t cap = s->cap ? 2 * s->cap : 256;
                uint64_t *v = realloc(s->v, cap * sizeof *v);
                if (!v)
                        return;
                s->v = v;
                s->cap = cap;
        }
        s->v[s->n++] = id;
}
static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return (x > y) - (x < y);
}
static bool ids_has(const struct ids *s, uint64_t id) {
        return s->n && bsearch(&id, s->v, s->n, sizeof *s->v, cmp_u64) != NULL;
}

/* One batch of the prologue. */
struct pbatch {
        uint8_t kind;
        uint64_t gen, tid, base;
        const uint8_t *payload;
        uint64_t size;
};
static const uint8_t *get_batch(const uint8_t *p, const uint8_t *end, struct pbatch *b) {
        if (p >= end)
                return NULL;
        b->kind = *p++;
        if (!(p = fr_get_uvarint(p, end, &b->gen)) || !(p = fr_get_uvarint(p, end, &b->tid)) ||
            !(p = fr_get_uvarint(p, end, &b->base)) || !(p = fr_get_uvarint(p, end, &b->size)) ||
            b->size > (uint64_t)(end - p))
                return NULL;
        b->payload = p;
        return p + b->size;
}

/* decode_events - the length of the prefix of data[0..n) made of whole,
 * well-formed events (types and argument counts as fr_write.c writes them;
 * a new event type must be added here), their string ids added to used and
 * the last event's time in *ret_last. */
static size_t decode_events(const uint8_t *data, size_t n, uint64_t base, struct ids *used,
                            uint64_t *ret_last) {
        static const uint8_t nargs[FR_EV_TYPE_MAX + 1] = {
                [FR_EV_TASK_BEGIN] = 3, [FR_EV_TASK_END] = 1, [FR_EV_REGION_BEGIN] = 2,
                [FR_EV_REGION_END] = 2, [FR_EV_LOG] = 3,      [FR_EV_THREAD_NAME] = 1,
                [FR_EV_LOST] = 2,
        };
        /* Which argument is a string id (1-based; 0: none). */
        static const uint8_t name_arg[FR_EV_TYPE_MAX + 1] = {
                [FR_EV_TASK_BEGIN] = 3, [FR_EV_REGION_BEGIN] = 2, [FR_EV_REGION_END] = 2,
                [FR_EV_LOG] = 2,        [FR_EV_THREAD_NAME] = 1,
        };
        const uint8_t *p = data, *end = data + n, *good = data;
        uint64_t time = base, a[3];
        while (p < end) {
                uint8_t type = *p++;
                uint64_t delta;
                if (type == 0 || type > FR_EV_TYPE_MAX || !(p = fr_get_uvarint(p, end, &delta)))
                        break;
                unsigned i;
                if (type == FR_EV_BLOCK) {
                        /* call, object, duration, task, region (string id),
                         * nframes (<= FR_MAX_STACK_FRAMES), the frames */
                        uint64_t v[6], f;
                        for (i = 0; i < 6 && p; i++)
                                p = fr_get_uvarint(p, end, &v[i]);
                        if (!p || v[5] > FR_MAX_STACK_FRAMES)
                                break;
                        for (uint64_t k = 0; k < v[5] && p; k++)
                                p = fr_get_uvarint(p, end, &f);
                        if (!p || delta > UINT64_MAX - time)
                                break;
                        time += delta;
                        ids_add(used, v[4]);
                        good = p;
                        *ret_last = time;
                        continue;
                }
                for (i = 0; i < nargs[type] && p; i++)
                        p = fr_get_uvarint(p, end, &a[i]);
                if (!p)
                        break;
                if (type == FR_EV_LOG) {
                        if (a[2] > FR_MAX_LOG_BYTES || a[2] > (uint64_t)(end - p))
                                break;
                        p += a[2];
                }
                if (delta > UINT64_MAX - time)
                        break;
                time += delta;
                if (name_arg[type])
                        ids_add(used, a[name_arg[type] - 1]);
                good = p;
                *ret_last = time;
        }
        return (size_t)(good - data);
}

struct blk {
        uint64_t tid, base, off;
        uint32_t start, pos;
};
static int cmp_blk(const void *a, const void *b) {
        const struct blk *x = a, *y = b;
        if (x->tid != y->tid)
                return x->tid < y->tid ? -1 : 1;
        return (x->base > y->base) - (x->base < y->base);
}

/* status_tids - the threads of a STATUS payload (nthreads, then per thread
 * tid, name, nregions and the regions' task and name). False when it does not
 * parse: the caller then does not filter. */
static bool status_tids(const uint8_t *p, const uint8_t *end, struct ids *ret) {
        uint64_t n, v, nr;
        if (!(p = fr_get_uvarint(p, end, &n)))
                return false;
        for (uint64_t i = 0; i < n; i++) {
                if (!(p = fr_get_uvarint(p, end, &v)))
                        return false;
                ids_add(ret, v);
                if (!(p = fr_get_uvarint(p, end, &v)) || !(p = fr_get_uvarint(p, end, &nr)) ||
                    nr > FR_MAX_REGION_DEPTH)
                        return false;
                for (uint64_t k = 0; k < 2 * nr; k++)
                        if (!(p = fr_get_uvarint(p, end, &v)))
                                return false;
        }
        return true;
}

/* put_events - EVENTS batches of every thread's live blocks; their thread
 * ids are added to known. */
static int put_events(int fd, const struct fr_pm_plan *plan, struct fr_buf *out, size_t *nb,
                      struct ids *used, struct ids *known, uint64_t *max_time) {
        struct blk *v = NULL;
        size_t n = 0, cap = 0;
        uint8_t *data = malloc(plan->block_size);
        int r = data ? 0 : -ENOMEM;
        for (uint64_t i = 0; r == 0 && i < plan->carved; i++) {
                struct fr_pm_block h;
                uint64_t off = plan->blocks_off + i * plan->block_size;
                if (fr_pread_exact(fd, &h, sizeof h, off) < 0)
                        break;
                if (h.gen != plan->live_gen || h.tid == 0 || h.data_start < sizeof h ||
                    h.pos <= h.data_start || h.pos > plan->block_size)
                        continue;
                if (n == cap) {
                        cap = cap ? 2 * cap : 64;
                        struct blk *nv = realloc(v, cap * sizeof *v);
                        if (!nv) {
                                r = -ENOMEM;
                                break;
                        }
                        v = nv;
                }
                v[n++] = (struct blk){h.tid, h.base_time, off, h.data_start, h.pos};
        }
        if (r == 0 && n)
                qsort(v, n, sizeof *v, cmp_blk);
        for (size_t i = 0; r == 0 && i < n; i++) {
                size_t len = v[i].pos - v[i].start;
                if (fr_pread_exact(fd, data, len, v[i].off + v[i].start) < 0)
                        continue;
                uint64_t last = v[i].base;
                size_t keep = decode_events(data, len, v[i].base, used, &last);
                if (keep == 0)
                        continue;
                fr_buf_put_batch(out, FR_BATCH_EVENTS, plan->live_gen, v[i].tid, v[i].base, data, keep);
                (*nb)++;
                ids_add(known, v[i].tid);
                if (last > *max_time)
                        *max_time = last;
        }
        free(v);
        free(data);
        return r;
}

/* put_samples - the crash handler's copies: one SAMPLES batch per thread,
 * one stack per sample; only threads the generation knows (known sorted; NULL:
 * all), so that one thread adopted after the prologue costs only its own. */
static int put_samples(int fd, const struct fr_pm_plan *plan, uint64_t start, struct fr_buf *out,
                       size_t *nb, struct ids *used, const struct ids *known, uint64_t *max_time) {
        if (!plan->csamples_off || !plan->has_crash)
                return 0;
        size_t cap = plan->csamples_len;
        uint8_t *area = malloc(cap);
        if (!area)
                return -ENOMEM;
        if (fr_pread_exact(fd, area, cap, plan->csamples_off) < 0) {
                free(area);
                return 0;
        }
        struct fr_buf stacks = {0}, payload = {0};
        uint64_t next_stack = 1;
        size_t pos = 0;
        while (pos + sizeof(struct fr_pm_csample) <= cap) {
                struct fr_pm_csample h;
                memcpy(&h, area + pos, sizeof h);
                pos += sizeof h;
                if (h.tid == 0 || h.len > cap - pos)
                        break;
                const uint8_t *q = area + pos, *end = q + h.len;
                pos += (h.len + 7u) & ~7u;
                if (h.gen != plan->live_gen || (known && !ids_has(known, h.tid)))
                        continue;
                uint64_t base = 0, last = 0;
                payload.len = 0;
                while (q + 8 <= end && payload.len < FR_MAX_BATCH_BYTES / 2 &&
                       stacks.len < FR_MAX_BATCH_BYTES / 2) {
                        uint64_t time, weight, task, region, nf, pcs[FR_MAX_STACK_FRAMES], d;
                        memcpy(&time, q, 8);
                        q += 8;
                        if (!(q = fr_get_uvarint(q, end, &weight)) || !(q = fr_get_uvarint(q, end, &task)) ||
                            !(q = fr_get_uvarint(q, end, &region)) || !(q = fr_get_uvarint(q, end, &nf)) ||
                            nf == 0 || nf > FR_MAX_STACK_FRAMES || !(q = fr_get_uvarint(q, end, &pcs[0])))
                                break;
                        for (uint64_t i = 1; i < nf && q; i++) {
                                q = fr_get_uvarint(q, end, &d);
                                pcs[i] = pcs[i - 1] + (uint64_t)fr_unzigzag(d);
                        }
                        if (!q)
                                break;
                        if (time < start)
                                time = start;
                        if (time < last)
                                time = last;
                        if (payload.len == 0)
                                base = last = time;
                        fr_buf_put_uvarint(&stacks, next_stack);
                        fr_buf_put_uvarint(&stacks, nf);
                        fr_buf_put_uvarint(&stacks, pcs[0]);
                        for (uint64_t i = 1; i < nf; i++)
                                fr_buf_put_uvarint(&stacks, fr_zigzag((int64_t)(pcs[i] - pcs[i - 1])));
                        fr_buf_put_uvarint(&payload, time - last);
                        fr_buf_put_uvarint(&payload, weight ? weight : 1);
                        fr_buf_put_uvarint(&payload, task);
                        fr_buf_put_uvarint(&payload, region);
                        fr_buf_put_uvarint(&payload, next_stack++);
                        ids_add(used, region);
                        last = time;
                }
                if (payload.len) {
                        fr_buf_put_batch(out, FR_BATCH_SAMPLES, plan->live_gen, h.tid, base,
                                         payload.data, payload.len);
                        (*nb)++;
                        if (last > *max_time)
                                *max_time = last;
                }
        }
        if (stacks.len) {
                fr_buf_put_batch(out, FR_BATCH_STACKS, plan->live_gen, 0, 0, stacks.data, stacks.len);
                (*nb)++;
        }
        int r = stacks.failed || payload.failed ? -ENOMEM : 0;
        fr_buf_free(&stacks);
        fr_buf_free(&payload);
        free(area);
        return r;
}

static void put_crash(const struct fr_pm_plan *plan, uint64_t start, struct fr_buf *out, size_t *nb,
                      uint64_t *max_time) {
        const struct fr_pm_crash *c = &plan->crash;
        struct fr_buf p = {0};
        uint64_t time = c->tick < start ? start : c->tick;
        fr_buf_put_uvarint(&p, (uint64_t)c->signo);
        fr_buf_put_uvarint(&p, fr_zigzag(c->code));
        fr_buf_put_uvarint(&p, c->addr);
        fr_buf_put_uvarint(&p, c->flags & (FR_PM_CRASH_OVERFLOW | FR_PM_CRASH_SCANNED));
        fr_buf_put_string(&p, c->thread_name, strnlen(c->thread_name, sizeof c->thread_name));
        fr_buf_put_uvarint(&p, c->nregs);
        for (uint32_t i = 0; i < c->nregs; i++)
                fr_buf_put_uvarint(&p, c->regs[i]);
        fr_buf_put_uvarint(&p, c->nframes);
        for (uint32_t i = 0; i < c->nframes; i++)
                fr_buf_put_uvarint(&p, i ? fr_zigzag((int64_t)(c->frames[i] - c->frames[i - 1]))
                                         : c->frames[0]);
        fr_buf_put_batch(out, FR_BATCH_CRASH, plan->live_gen, c->tid ? c->tid : 1, time, p.data, p.len);
        if (p.failed)
                out->failed = 1;
        fr_buf_free(&p);
        (*nb)++;
        if (time > *max_time)
                *max_time = time;
}

enum { WITH_SAMPLES = 1, WITH_EVENTS = 2 };

/* build - one attempt at the partial generation. */
static int build(int fd, const struct fr_pm_plan *plan, const uint8_t *pro, size_t pro_len,
                 unsigned what, struct fr_buf *out) {
        struct ids defined = {0}, used = {0}, known = {0};
        bool status_ok = false;
        size_t nb = 0;
        uint64_t start = 0, max_time = 0;
        bool clock = false;
        int r = 0;
        /* The prologue: its batches as they are, after checking they frame. */
        for (const uint8_t *p = pro, *end = pro + pro_len; p < end;) {
                struct pbatch b;
                if (!(p = get_batch(p, end, &b)) || b.gen != plan->live_gen) {
                        r = -EBADMSG;
                        break;
                }
                nb++;
                if (b.kind == FR_BATCH_CLOCK) {
                        clock = true;
                        start = max_time = b.base;
                } else if (b.kind == FR_BATCH_STATUS) {
                        status_ok = status_tids(b.payload, b.payload + b.size, &known);
                } else if (b.kind == FR_BATCH_STRINGS) {
                        const uint8_t *q = b.payload, *qe = b.payload + b.size;
                        uint64_t id, len;
                        while (q < qe && (q = fr_get_uvarint(q, qe, &id)) &&
                               (q = fr_get_uvarint(q, qe, &len)) && len <= (uint64_t)(qe - q)) {
                                ids_add(&defined, id);
                                q += len;
                        }
                }
        }
        if (r == 0 && !clock)
                r = -EBADMSG;
        if (r == 0)
                fr_buf_put_bytes(out, pro, pro_len);
        if (r == 0 && (what & WITH_EVENTS))
                r = put_events(fd, plan, out, &nb, &used, &known, &max_time);
        if (known.n)
                qsort(known.v, known.n, sizeof *known.v, cmp_u64);
        if (r == 0 && (what & WITH_SAMPLES))
                r = put_samples(fd, plan, start, out, &nb, &used, status_ok ? &known : NULL,
                                &max_time);
        if (r == 0 && plan->has_crash)
                put_crash(plan, start, out, &nb, &max_time);
        if (r == 0) {
                /* Names interned after the prologue was written. */
                if (defined.n)
                        qsort(defined.v, defined.n, sizeof *defined.v, cmp_u64);
                if (used.n)
                        qsort(used.v, used.n, sizeof *used.v, cmp_u64);
                struct fr_buf s = {0};
                for (size_t i = 0; i < used.n; i++) {
                        if ((i && used.v[i] == used.v[i - 1]) || ids_has(&defined, used.v[i]))
                                continue;
                        char name[64];
                        int k = snprintf(name, sizeof name, "<name %llu, not salvaged>",
                                         (unsigned long long)used.v[i]);
                        fr_buf_put_uvarint(&s, used.v[i]);
                        fr_buf_put_string(&s, name, (size_t)k);
                }
                if (s.len) {
                        fr_buf_put_batch(out, FR_BATCH_STRINGS, plan->live_gen, 0, 0, s.data, s.len);
                        nb++;
                }
                if (s.failed)
                        out->failed = 1;
                fr_buf_free(&s);
                struct fr_buf e = {0};
                fr_buf_put_uvarint(&e, nb);
                fr_buf_put_uvarint(&e, FR_END_PARTIAL);
                fr_buf_put_batch(out, FR_BATCH_END, plan->live_gen, 0, max_time, e.data, e.len);
                if (e.failed)
                        out->failed = 1;
                fr_buf_free(&e);
        }
        free(defined.v);
        free(used.v);
        free(known.v);
        return r < 0 ? r : out->failed ? -ENOMEM : 0;
}

long fr_pm_salvage(int fd, const struct fr_pm_plan *plan, const uint8_t *prev, size_t prev_len,
                   struct fr_buf *out, char *err, size_t errlen) {
        if (errlen)
                err[0] = '\0';
        if (!plan->live_gen || !plan->live_n || (plan->last_gen && plan->live_gen != plan->last_gen + 1)) {
                snprintf(err, errlen, "no generation in progress in the ring");
                return 0;
        }
        uint8_t *pro = malloc(plan->live_total ? plan->live_total : 1);
        if (!pro)
                return -ENOMEM;
        uint8_t *q = pro;
        for (uint32_t i = 0; i < plan->live_n; i++) {
                if (fr_pread_exact(fd, q, plan->live_ext[i].len, plan->live_ext[i].off) < 0) {
                        snprintf(err, errlen, "reading the live generation's prologue failed");
                        free(pro);
                        return 0;
                }
                q += plan->live_ext[i].len;
        }
        static const unsigned tries[] = {WITH_EVENTS | WITH_SAMPLES, WITH_EVENTS, 0};
        struct fr_buf all = {0};
        long ret = 0;
        for (unsigned t = 0; t < sizeof tries / sizeof tries[0]; t++) {
                all.len = 0;
                all.failed = 0;
                fr_buf_put_bytes(&all, prev, prev_len);
                int r = build(fd, plan, pro, plan->live_total, tries[t], &all);
                if (r == -ENOMEM) {
                        ret = r;
                        break;
                }
                if (r < 0) {
                        snprintf(err, errlen, "the live generation's prologue is malformed");
                        break;
                }
                char why[256];
                if (fr_trace_read(all.data, all.len, 0, NULL, NULL, NULL, why, sizeof why) == 0) {
                        size_t n = all.len - prev_len;
                        fr_buf_put_bytes(out, all.data + prev_len, n);
                        ret = out->failed ? -ENOMEM : (long)n;
                        if (t > 0)
                                snprintf(err, errlen, "salvaged without %s", t == 1 ? "samples" : "events or samples");
                        break;
                }
                snprintf(err, errlen, "the salvaged generation is not valid: %s", why);
        }
        fr_buf_free(&all);
        free(pro);
        return ret;
}
