/* Unwind tables: each loaded object's .eh_frame, evaluated ahead of time into
 * compact rows sorted by address (fr_unwind.h), and the lock-free publication
 * of the set of tables to the signal handlers. Runs on the advancer (and at
 * fr_start), never in a signal handler.
 *
 * The builder reads the object's .eh_frame_hdr (PT_GNU_EH_FRAME) and walks
 * its binary-search table to every FDE; every read is checked to lie inside
 * one of the object's loaded segments, and any malformed CIE, FDE or
 * instruction rejects the whole object with a counted reason (the walker then
 * uses frame pointers there). Tables are built for the main program and libc
 * at start and for other objects once a handler met one of their pcs
 * without a table (the object's `wanted` flag), within FR_UW_MAX_BYTES.
 *
 * Publication: one atomic pointer to the current set. A handler enters by
 * counting itself in readers[epoch & 1]; the builder, after storing a new
 * set, flips the epoch and frees the old set (and the tables of objects gone)
 * once the old parity's count has been seen at zero. */
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fr_internal.h"
#include "fr_unwind.h"

#define FR_UW_MAX_BYTES (64u << 20) /* all tables together */
#define MAX_SEGS 16
#define MAX_REMEMBER 8

const char *const fr__uw_reject_names[FR_UW_REJ_KINDS] = {
        "ok", "no PT_GNU_EH_FRAME", "bad .eh_frame_hdr", "truncated CIE/FDE", "bad CIE",
        "bad FDE", "bad instruction", "memory bound", "out of memory",
};

unsigned fr__unwind_mode;

/* ---- bounded reads of the object's own segments ----------------------------- */
struct segs {
        uintptr_t lo[MAX_SEGS], hi[MAX_SEGS];
        unsigned n;
};

static bool in_segs(const struct segs *s, uintptr_t p, size_t len) {
        for (unsigned i = 0; i < s->n; i++)
                if (p >= s->lo[i] && p <= s->hi[i] && len <= s->hi[i] - p)
                        return true;
        return false;
}

struct rd {
        const uint8_t *p, *end; /* end: of the entry (or segment) being read */
        bool bad;
};

static bool need(struct rd *r, size_t n) {
        if (r->bad || (size_t)(r->end - r->p) < n) {
                r->bad = true;
                return false;
        }
        return true;
}
static uint64_t rd_u(struct rd *r, unsigned n) {
        if (!need(r, n))
                return 0;
        uint64_t v = 0;
        memcpy(&v, r->p, n); /* little-endian */
        r->p += n;
        return v;
}
static uint64_t rd_uleb(struct rd *r) {
        uint64_t v = 0;
        for (unsigned shift = 0; need(r, 1); shift += 7) {
                uint8_t b = *r->p++;
                if (shift < 64)
                        v |= (uint64_t)(b & 0x7f) << shift;
                if (!(b & 0x80))
                        return v;
                if (shift > 63) {
                        r->bad = true;
                        break;
                }
        }
        return 0;
}
static int64_t rd_sleb(struct rd *r) {
        uint64_t v = 0;
        unsigned shift = 0;
        uint8_t b = 0x80;
        while ((b & 0x80) && need(r, 1)) {
                b = *r->p++;
                if (shift < 64)
                        v |= (uint64_t)(b & 0x7f) << shift;
                shift += 7;
                if (shift > 70) {
                        r->bad = true;
                        return 0;
                }
        }
        if (shift < 64 && (b & 0x40))
                v |= ~(uint64_t)0 << shift;
        return (int64_t)v;
}

/* A DW_EH_PE-encoded pointer. datarel: the .eh_frame_hdr address. */
static bool rd_enc(struct rd *r, uint8_t enc, uintptr_t datarel, uint64_t *ret) {
        if (enc == 0xff)
                return false; /* DW_EH_PE_omit */
        uintptr_t at = (uintptr_t)r->p;
        uint64_t v;
        switch (enc & 0x0f) {
        case 0x00: v = rd_u(r, 8); break;
        case 0x01: v = rd_uleb(r); break;
        case 0x02: v = rd_u(r, 2); break;
        case 0x03: v = rd_u(r, 4); break;
        case 0x04: v = rd_u(r, 8); break;
        case 0x09: v = (uint64_t)rd_sleb(r); break;
        case 0x0a: v = (uint64_t)(int64_t)(int16_t)rd_u(r, 2); break;
        case 0x0b: v = (uint64_t)(int64_t)(int32_t)rd_u(r, 4); break;
        case 0x0c: v = rd_u(r, 8); break;
        default: return false;
        }
        switch (enc & 0x70) {
        case 0x00: break;
        case 0x10: v += at; break;
        case 0x30: v += datarel; break;
        default: return false; /* textrel, funcrel, aligned: not used on x86-64 */
        }
        *ret = v;
        return !r->bad;
}

/* ---- CIEs --------------------------------------------------------------------- */
struct cie {
        const uint8_t *at;         /* where it starts (cache key) */
        const uint8_t *insns, *end;
        uint64_t code_align;
        int64_t data_align;
        uint8_t fde_enc;
        bool has_z;
};

/* An entry's length: ret_end is where it ends. 0 on a terminator/bad length. */
static bool entry_bounds(const struct segs *s, const uint8_t *p, const uint8_t **ret_body,
                         const uint8_t **ret_end, unsigned *ret_reason) {
        if (!in_segs(s, (uintptr_t)p, 4)) {
                *ret_reason = FR_UW_REJ_TRUNCATED;
                return false;
        }
        uint32_t len32;
        memcpy(&len32, p, 4);
        uint64_t len = len32;
        const uint8_t *body = p + 4;
        if (len32 == 0xffffffffu) {
                if (!in_segs(s, (uintptr_t)p, 12)) {
                        *ret_reason = FR_UW_REJ_TRUNCATED;
                        return false;
                }
                memcpy(&len, p + 4, 8);
                body = p + 12;
        }
        if (len < 4 || len > (1u << 24) || !in_segs(s, (uintptr_t)body, len)) {
                *ret_reason = FR_UW_REJ_TRUNCATED;
                return false;
        }
        *ret_body = body;
        *ret_end = body + len;
        return true;
}

static bool parse_cie(const struct segs *s, const uint8_t *at, uintptr_t datarel, struct cie *ret,
                      unsigned *ret_reason) {
        const uint8_t *body, *end;
        if (!entry_bounds(s, at, &body, &end, ret_reason))
                return false;
        *ret_reason = FR_UW_REJ_CIE;
        struct rd r = {body, end, false};
        if (rd_u(&r, 4) != 0) /* CIE id */
                return false;
        uint8_t version = (uint8_t)rd_u(&r, 1);
        if (version != 1 && version != 3)
                return false;
        const char *aug = (const char *)r.p;
        size_t alen = strnlen(aug, (size_t)(end - r.p));
        if (alen == (size_t)(end - r.p) || alen > 8)
                return false;
        r.p += alen + 1;
        *ret = (struct cie){.at = at, .fde_enc = 0};
        ret->code_align = rd_uleb(&r);
        ret->data_align = rd_sleb(&r);
        uint64_t ra = version == 1 ? rd_u(&r, 1) : rd_uleb(&r);
        if (r.bad || ra != 16 || ret->code_align == 0 || ret->code_align > 16)
                return false;
        const uint8_t *aug_end = NULL;
        if (aug[0] == 'z') {
                ret->has_z = true;
                uint64_t n = rd_uleb(&r);
                if (r.bad || n > (uint64_t)(end - r.p))
                        return false;
                aug_end = r.p + n;
        } else if (alen) {
                return false; /* "eh" and other pre-z augmentations */
        }
        for (size_t i = 1; i < alen; i++) {
                uint64_t v;
                switch (aug[i]) {
                case 'R': ret->fde_enc = (uint8_t)rd_u(&r, 1); break;
                case 'L': rd_u(&r, 1); break;
                case 'P': {
                        uint8_t enc = (uint8_t)rd_u(&r, 1);
                        if (!rd_enc(&r, enc & 0x7f, datarel, &v))
                                return false;
                        break;
                }
                case 'S': break;
                case 'B': break;
                default: return false;
                }
        }
        if (r.bad || (aug_end && r.p > aug_end))
                return false;
        if (aug_end)
                r.p = aug_end;
        ret->insns = r.p;
        ret->end = end;
        return true;
}

/* ---- executing call-frame instructions --------------------------------------- */
enum { R_SAME = 0, R_UNDEF, R_OFFSET, R_OTHER };
struct rule {
        uint8_t how;
        int64_t off;
};
enum { CFA_REG = 0, CFA_PLT, CFA_EXPR };
struct state {
        uint8_t cfa_how;
        uint64_t cfa_reg;
        int64_t cfa_off;
        struct rule rbp, rsp, ra;
};

struct rows {
        struct fr_uw_row *v;
        size_t n, cap;
        bool nomem;
};

static struct fr_uw_row to_row(const struct state *st, uint32_t off) {
        struct fr_uw_row w = {.off = off, .kind = FR_UW_STOP};
        if (st->ra.how == R_UNDEF) {
                w.kind = FR_UW_ROOT;
                return w;
        }
        if (st->ra.how != R_OFFSET || st->ra.off != -8 || st->rsp.how != R_SAME)
                return w;
        if (st->rbp.how == R_OFFSET) {
                if (st->rbp.off < INT16_MIN || st->rbp.off > INT16_MAX)
                        return w;
                w.fp = FR_UW_FP_CFA;
                w.fp_off = (int16_t)st->rbp.off;
        } else if (st->rbp.how != R_SAME) {
                return w;
        }
        if (st->cfa_how == CFA_PLT) {
                w.kind = FR_UW_PLT;
                w.cfa_off = (int32_t)st->cfa_off;
                return w;
        }
        if (st->cfa_how != CFA_REG || (st->cfa_reg != 6 && st->cfa_reg != 7) ||
            st->cfa_off < INT32_MIN || st->cfa_off > INT32_MAX)
                return w;
        w.kind = st->cfa_reg == 7 ? FR_UW_SP : FR_UW_FP;
        w.cfa_off = (int32_t)st->cfa_off;
        return w;
}

static bool same_rule(const struct fr_uw_row *a, const struct fr_uw_row *b) {
        return a->kind == b->kind && a->cfa_off == b->cfa_off && a->fp == b->fp && a->fp_off == b->fp_off;
}

static void emit(struct rows *rs, struct fr_uw_row w) {
        if (rs->n) {
                struct fr_uw_row *last = &rs->v[rs->n - 1];
                if (last->off == w.off) {
                        *last = w;
                        return;
                }
                if (same_rule(last, &w))
                        return;
        }
        if (rs->n == rs->cap) {
                size_t cap = rs->cap ? 2 * rs->cap : 1024;
                struct fr_uw_row *v = realloc(rs->v, cap * sizeof *v);
                if (!v) {
                        rs->nomem = true;
                        return;
                }
                rs->v = v;
                rs->cap = cap;
        }
        rs->v[rs->n++] = w;
}

/* The PLT's CFA: DW_OP_breg7 8; DW_OP_breg16 0; DW_OP_lit15; DW_OP_and;
 * DW_OP_lit<N>; DW_OP_ge; DW_OP_lit3; DW_OP_shl; DW_OP_plus
 * (CFA = RSP + 8 + ((RIP & 15) >= N ? 8 : 0)), as binutils writes it. */
static bool plt_expr(const uint8_t *p, uint64_t len, int64_t *ret_n) {
        static const uint8_t head[] = {0x77, 0x08, 0x80, 0x00, 0x3f, 0x1a};
        static const uint8_t tail[] = {0x2a, 0x33, 0x24, 0x22};
        if (len != sizeof head + 1 + sizeof tail || memcmp(p, head, sizeof head) ||
            memcmp(p + sizeof head + 1, tail, sizeof tail))
                return false;
        uint8_t lit = p[sizeof head];
        if (lit < 0x30 || lit > 0x3f)
                return false;
        *ret_n = lit - 0x30;
        return true;
}

static struct rule *reg_rule(struct state *st, uint64_t reg) {
        switch (reg) {
        case 6: return &st->rbp;
        case 7: return &st->rsp;
        case 16: return &st->ra;
        default: return NULL;
        }
}

struct exec_ctx {
        const struct cie *cie;
        const struct state *initial; /* after the CIE's instructions (restore) */
        uintptr_t lo;                /* offsets count from here */
        uint64_t loc, end;           /* absolute */
        uintptr_t datarel;
        uint8_t enc;
        struct rows *rows;           /* NULL: the CIE's initial instructions */
};

static bool advance_to(struct exec_ctx *x, struct state *st, uint64_t loc) {
        if (!x->rows || loc < x->loc)
                return false;
        if (x->loc < x->end)
                emit(x->rows, to_row(st, (uint32_t)(x->loc - x->lo)));
        x->loc = loc;
        return true;
}

/* exec - run the instructions [p, end) on st. False: malformed. */
static bool exec(struct exec_ctx *x, struct state *st, const uint8_t *p, const uint8_t *end) {
        struct rd r = {p, end, false};
        struct state saved[MAX_REMEMBER];
        unsigned nsaved = 0;
        const int64_t da = x->cie->data_align;
        const uint64_t ca = x->cie->code_align;
        while (r.p < r.end && !r.bad) {
                uint8_t op = *r.p++;
                uint8_t low = op & 0x3f;
                uint64_t reg, v;
                struct rule *ru;
                switch (op & 0xc0) {
                case 0x40: /* advance_loc */
                        if (!advance_to(x, st, x->loc + low * ca))
                                return false;
                        continue;
                case 0x80: /* offset */
                        v = rd_uleb(&r);
                        if ((ru = reg_rule(st, low)))
                                *ru = (struct rule){R_OFFSET, (int64_t)v * da};
                        continue;
                case 0xc0: /* restore */
                        if (!x->rows)
                                return false;
                        if ((ru = reg_rule(st, low)))
                                *ru = *reg_rule((struct state *)x->initial, low);
                        continue;
                }
                switch (op) {
                case 0x00: break; /* nop */
                case 0x01: /* set_loc */
                        if (!rd_enc(&r, x->enc, x->datarel, &v) || !advance_to(x, st, v))
                                return false;
                        break;
                case 0x02:
                        if (!advance_to(x, st, x->loc + rd_u(&r, 1) * ca))
                                return false;
                        break;
                case 0x03:
                        if (!advance_to(x, st, x->loc + rd_u(&r, 2) * ca))
                                return false;
                        break;
                case 0x04:
                        if (!advance_to(x, st, x->loc + rd_u(&r, 4) * ca))
                                return false;
                        break;
                case 0x05: /* offset_extended */
                        reg = rd_uleb(&r);
                        v = rd_uleb(&r);
                        if ((ru = reg_rule(st, reg)))
                                *ru = (struct rule){R_OFFSET, (int64_t)v * da};
                        break;
                case 0x06: /* restore_extended */
                        reg = rd_uleb(&r);
                        if (!x->rows)
                                return false;
                        if ((ru = reg_rule(st, reg)))
                                *ru = *reg_rule((struct state *)x->initial, reg);
                        break;
                case 0x07: /* undefined */
                        if ((ru = reg_rule(st, rd_uleb(&r))))
                                *ru = (struct rule){R_UNDEF, 0};
                        break;
                case 0x08: /* same_value */
                        if ((ru = reg_rule(st, rd_uleb(&r))))
                                *ru = (struct rule){R_SAME, 0};
                        break;
                case 0x09: /* register */
                        reg = rd_uleb(&r);
                        rd_uleb(&r);
                        if ((ru = reg_rule(st, reg)))
                                *ru = (struct rule){R_OTHER, 0};
                        break;
                case 0x0a: /* remember_state */
                        if (nsaved == MAX_REMEMBER)
                                return false;
                        saved[nsaved++] = *st;
                        break;
                case 0x0b: /* restore_state: the CFA rule too, as libdw and libgcc do */
                        if (nsaved == 0)
                                return false;
                        *st = saved[--nsaved];
                        break;
                case 0x0c: /* def_cfa */
                        st->cfa_reg = rd_uleb(&r);
                        st->cfa_off = (int64_t)rd_uleb(&r);
                        st->cfa_how = CFA_REG;
                        break;
                case 0x0d: /* def_cfa_register */
                        st->cfa_reg = rd_uleb(&r);
                        if (st->cfa_how != CFA_REG)
                                st->cfa_how = CFA_EXPR; /* register of an expression: stop */
                        break;
                case 0x0e: /* def_cfa_offset */
                        st->cfa_off = (int64_t)rd_uleb(&r);
                        break;
                case 0x0f: { /* def_cfa_expression */
                        uint64_t len = rd_uleb(&r);
                        if (!need(&r, len))
                                return false;
                        int64_t n;
                        if (plt_expr(r.p, len, &n)) {
                                st->cfa_how = CFA_PLT;
                                st->cfa_off = n;
                        } else {
                                st->cfa_how = CFA_EXPR;
                        }
                        r.p += len;
                        break;
                }
                case 0x10: /* expression */
                case 0x16: { /* val_expression */
                        reg = rd_uleb(&r);
                        uint64_t len = rd_uleb(&r);
                        if (!need(&r, len))
                                return false;
                        r.p += len;
                        if ((ru = reg_rule(st, reg)))
                                *ru = (struct rule){R_OTHER, 0};
                        break;
                }
                case 0x11: /* offset_extended_sf */
                        reg = rd_uleb(&r);
                        v = (uint64_t)(rd_sleb(&r) * da);
                        if ((ru = reg_rule(st, reg)))
                                *ru = (struct rule){R_OFFSET, (int64_t)v};
                        break;
                case 0x12: /* def_cfa_sf */
                        st->cfa_reg = rd_uleb(&r);
                        st->cfa_off = rd_sleb(&r) * da;
                        st->cfa_how = CFA_REG;
                        break;
                case 0x13: /* def_cfa_offset_sf */
                        st->cfa_off = rd_sleb(&r) * da;
                        break;
                case 0x14: /* val_offset */
                case 0x15: /* val_offset_sf */
                        reg = rd_uleb(&r);
                        if (op == 0x14)
                                rd_uleb(&r);
                        else
                                rd_sleb(&r);
                        if ((ru = reg_rule(st, reg)))
                                *ru = (struct rule){R_OTHER, 0};
                        break;
                case 0x2e: /* GNU_args_size */
                        rd_uleb(&r);
                        break;
                case 0x2f: /* GNU_negative_offset_extended */
                        reg = rd_uleb(&r);
                        v = rd_uleb(&r);
                        if ((ru = reg_rule(st, reg)))
                                *ru = (struct rule){R_OFFSET, -(int64_t)v * da};
                        break;
                default:
                        return false;
                }
        }
        return !r.bad;
}

/* ---- one object ---------------------------------------------------------------- */
static int fail(unsigned reason, unsigned *ret_reason, struct rows *rs) {
        free(rs->v);
        *ret_reason = reason;
        return reason == FR_UW_REJ_NOMEM ? -ENOMEM : -EINVAL;
}

int fr__uw_build(const struct dl_phdr_info *info, struct fr_uw_table **ret_table, uintptr_t *ret_lo,
                 unsigned *ret_reason) {
        struct segs segs = {.n = 0};
        uintptr_t lo = UINTPTR_MAX, hi = 0;
        const uint8_t *hdr = NULL;
        struct rows rs = {0};
        for (int i = 0; i < info->dlpi_phnum; i++) {
                const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
                uintptr_t a = info->dlpi_addr + ph->p_vaddr;
                if (ph->p_type == PT_LOAD && ph->p_memsz && segs.n < MAX_SEGS) {
                        segs.lo[segs.n] = a;
                        segs.hi[segs.n++] = a + ph->p_memsz;
                        if ((ph->p_flags & PF_X)) {
                                if (a < lo)
                                        lo = a;
                                if (a + ph->p_memsz > hi)
                                        hi = a + ph->p_memsz;
                        }
                }
                if (ph->p_type == PT_GNU_EH_FRAME)
                        hdr = (const uint8_t *)a;
        }
        *ret_lo = lo;
        if (!hdr || lo >= hi)
                return fail(FR_UW_REJ_NOHDR, ret_reason, &rs);
        if (hi - lo > UINT32_MAX)
                return fail(FR_UW_REJ_HDR, ret_reason, &rs);
        /* .eh_frame_hdr: version 1, eh_frame_ptr encoding, fde_count encoding,
         * table encoding (datarel sdata4), then the pointer, count and table. */
        if (!in_segs(&segs, (uintptr_t)hdr, 4) || hdr[0] != 1 || hdr[3] != 0x3b)
                return fail(FR_UW_REJ_HDR, ret_reason, &rs);
        struct rd r = {hdr + 4, hdr + 4 + 16, false};
        uint64_t eh, count;
        if (!in_segs(&segs, (uintptr_t)hdr, 4 + 16) || !rd_enc(&r, hdr[1], (uintptr_t)hdr, &eh) ||
            !rd_enc(&r, hdr[2], (uintptr_t)hdr, &count) || count > (1u << 22))
                return fail(FR_UW_REJ_HDR, ret_reason, &rs);
        const uint8_t *table = r.p;
        if (!in_segs(&segs, (uintptr_t)table, count * 8))
                return fail(FR_UW_REJ_HDR, ret_reason, &rs);

        struct cie cache[8];
        unsigned ncache = 0, next = 0;
        uint64_t prev_start = 0;
        for (uint64_t i = 0; i < count; i++) {
                int32_t loc_rel, fde_rel;
                memcpy(&loc_rel, table + 8 * i, 4);
                memcpy(&fde_rel, table + 8 * i + 4, 4);
                uint64_t start = (uintptr_t)hdr + (int64_t)loc_rel;
                if (i && start < prev_start)
                        return fail(FR_UW_REJ_HDR, ret_reason, &rs); /* not sorted */
                prev_start = start;
                const uint8_t *fde = hdr + fde_rel, *body, *end;
                unsigned why;
                if (!entry_bounds(&segs, fde, &body, &end, &why))
                        return fail(why, ret_reason, &rs);
                struct rd f = {body, end, false};
                uint32_t cie_rel = (uint32_t)rd_u(&f, 4);
                if (cie_rel == 0 || cie_rel > (uintptr_t)(body - (const uint8_t *)eh))
                        return fail(FR_UW_REJ_FDE, ret_reason, &rs);
                const uint8_t *cie_at = body - cie_rel;
                const struct cie *c = NULL;
                for (unsigned k = 0; k < ncache; k++)
                        if (cache[k].at == cie_at)
                                c = &cache[k];
                if (!c) {
                        struct cie *slot = &cache[next];
                        next = (next + 1) % 8;
                        if (ncache < 8)
                                ncache++;
                        if (!parse_cie(&segs, cie_at, (uintptr_t)hdr, slot, &why))
                                return fail(why, ret_reason, &rs);
                        c = slot;
                }
                uint64_t pc, range;
                if (!rd_enc(&f, c->fde_enc, (uintptr_t)hdr, &pc) ||
                    !rd_enc(&f, c->fde_enc & 0x0f, (uintptr_t)hdr, &range) || pc != start ||
                    range > hi - lo)
                        return fail(FR_UW_REJ_FDE, ret_reason, &rs);
                if (c->has_z) {
                        uint64_t n = rd_uleb(&f);
                        if (f.bad || n > (uint64_t)(end - f.p))
                                return fail(FR_UW_REJ_FDE, ret_reason, &rs);
                        f.p += n;
                }
                if (range == 0)
                        continue;
                if (pc < lo || pc + range > hi)
                        continue; /* code outside the executable segments: not ours to walk */
                /* An FDE starting inside the previous one's range ends it. */
                while (rs.n && rs.v[rs.n - 1].off > pc - lo)
                        rs.n--;
                struct state init = {.cfa_how = CFA_REG};
                struct exec_ctx x = {.cie = c, .initial = &init, .lo = lo, .loc = pc, .end = pc + range,
                                     .datarel = (uintptr_t)hdr, .enc = c->fde_enc, .rows = NULL};
                if (!exec(&x, &init, c->insns, c->end))
                        return fail(FR_UW_REJ_OPCODE, ret_reason, &rs);
                struct state st = init;
                x.rows = &rs;
                if (!exec(&x, &st, f.p, end))
                        return fail(FR_UW_REJ_OPCODE, ret_reason, &rs);
                if (x.loc < x.end)
                        emit(&rs, to_row(&st, (uint32_t)(x.loc - lo)));
                emit(&rs, (struct fr_uw_row){.off = (uint32_t)(pc + range - lo), .kind = FR_UW_GAP});
                if (rs.nomem)
                        return fail(FR_UW_REJ_NOMEM, ret_reason, &rs);
        }
        if (rs.n == 0)
                emit(&rs, (struct fr_uw_row){.off = 0, .kind = FR_UW_GAP});
        uint32_t npages = (uint32_t)((hi - lo + (1u << FR_UW_PAGE_SHIFT) - 1) >> FR_UW_PAGE_SHIFT);
        size_t bytes = sizeof(struct fr_uw_table) + rs.n * sizeof(struct fr_uw_row) +
                       ((size_t)npages + 1) * sizeof(uint32_t);
        struct fr_uw_table *t = rs.nomem ? NULL : malloc(bytes);
        if (!t)
                return fail(FR_UW_REJ_NOMEM, ret_reason, &rs);
        t->nrows = (uint32_t)rs.n;
        t->npages = npages;
        t->bytes = bytes;
        memcpy(t->rows, rs.v, rs.n * sizeof *rs.v);
        free(rs.v);
        uint32_t *page = (uint32_t *)(t->rows + t->nrows);
        uint32_t k = 0;
        for (uint32_t p = 0; p <= npages; p++) {
                uint64_t off = (uint64_t)p << FR_UW_PAGE_SHIFT;
                while (k + 1 < t->nrows && t->rows[k + 1].off <= off)
                        k++;
                page[p] = k;
        }
        t->page = page;
        *ret_table = t;
        *ret_reason = FR_UW_OK;
        return 0;
}

/* ---- the set of objects --------------------------------------------------------- */
/* The builder's record of one object; outlives the sets that point into it. */
struct uw_obj {
        struct uw_obj *next;
        uintptr_t lo, hi, base;
        char name[256];
        struct fr_uw_table *table;
        unsigned reason;      /* why no table (FR_UW_OK: not tried yet) */
        _Atomic uint8_t wanted;
        bool pinned, seen;
};

struct retired {
        struct retired *next;
        struct fr_uw_set *set;
        struct uw_obj *objs; /* gone objects, with their tables */
        unsigned parity;
};

static struct {
        struct uw_obj *objs;
        struct retired *retired;
        unsigned long long adds, subs;
        size_t bytes;
        bool unbuilt;             /* objects without a table, not rejected */
        struct timespec changed;  /* CLOCK_MONOTONIC of the last change of objects */
        uint64_t rejected_by[FR_UW_REJ_KINDS];
        bool debug;
} uw;

static bool name_has(const char *name, const char *part) {
        return strstr(name, part) != NULL;
}

struct scan {
        struct uw_obj *found; /* objects in this dl_iterate_phdr pass, new list */
        bool failed;
};

static int scan_object(struct dl_phdr_info *info, size_t size, void *data) {
        (void)size;
        struct scan *sc = data;
        const char *name = info->dlpi_name && *info->dlpi_name ? info->dlpi_name : fr__exe;
        uintptr_t lo = UINTPTR_MAX, hi = 0;
        for (int i = 0; i < info->dlpi_phnum; i++) {
                const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
                if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && ph->p_memsz) {
                        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
                        if (a < lo)
                                lo = a;
                        if (a + ph->p_memsz > hi)
                                hi = a + ph->p_memsz;
                }
        }
        if (lo >= hi)
                return 0;
        struct uw_obj **pp = &uw.objs, *o;
        for (; (o = *pp); pp = &o->next)
                if (o->lo == lo && o->hi == hi && o->base == info->dlpi_addr &&
                    strncmp(o->name, name, sizeof o->name - 1) == 0)
                        break;
        if (o) {
                *pp = o->next; /* move it to the new list */
        } else {
                o = calloc(1, sizeof *o);
                if (!o) {
                        sc->failed = true;
                        return 0;
                }
                o->lo = lo;
                o->hi = hi;
                o->base = info->dlpi_addr;
                size_t len = strnlen(name, sizeof o->name - 1);
                memcpy(o->name, name, len);
                o->name[len] = '\0';
                bool main_prog = !info->dlpi_name || !*info->dlpi_name;
                bool libc = name_has(name, "/libc.so");
                o->pinned = main_prog || libc || name_has(name, "linux-vdso") ||
                            name_has(name, "/ld-linux") || name_has(name, "libflightrec");
                /* Built at once: the program and libc hold every thread's root. */
                if (main_prog || libc || name_has(name, "libflightrec"))
                        atomic_store(&o->wanted, 1);
        }
        if (!o->table && o->reason == FR_UW_OK && atomic_load(&o->wanted)) {
                struct fr_uw_table *t = NULL;
                uintptr_t tlo;
                unsigned why = FR_UW_OK;
                int r = uw.bytes > FR_UW_MAX_BYTES ? (why = FR_UW_REJ_BUDGET, -ENOSPC)
                                                   : fr__uw_build(info, &t, &tlo, &why);
                if (r == 0 && tlo == lo) {
                        o->table = t;
                        uw.bytes += t->bytes;
                } else {
                        free(t);
                        if (why == FR_UW_OK)
                                why = FR_UW_REJ_HDR;
                        o->reason = why;
                        uw.rejected_by[why]++;
                        if (uw.debug)
                                fr__log_error("unwind: no table for %s: %s (frame pointers there)", name,
                                              fr__uw_reject_names[why]);
                }
        }
        o->next = sc->found;
        sc->found = o;
        return 0;
}

static int cmp_obj(const void *a, const void *b) {
        const struct fr_uw_object *x = a, *y = b;
        return (x->lo > y->lo) - (x->lo < y->lo);
}

/* Signal trampolines: the sa_restorer of every installed handler whose code
 * is the x86-64 rt_sigreturn (mov $15, %rax; syscall). */
static void find_restorers(struct fr_uw_set *s) {
        static const uint8_t code[] = {0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05};
        unsigned n = 0;
        for (int sig = 1; sig < NSIG && n < 4; sig++) {
                struct sigaction a;
                if (sigaction(sig, NULL, &a) < 0 || !a.sa_restorer)
                        continue;
                uintptr_t p = (uintptr_t)a.sa_restorer;
                bool known = false;
                for (unsigned k = 0; k < n; k++)
                        known |= s->restorer[k] == p;
                for (uint32_t i = 0; !known && i < s->nobjects; i++) {
                        const struct fr_uw_object *o = &s->objects[i];
                        if (o->pinned && p >= o->lo && p + sizeof code <= o->hi &&
                            memcmp((const void *)p, code, sizeof code) == 0) {
                                s->restorer[n++] = p;
                                break;
                        }
                }
        }
}

static int count_adds(struct dl_phdr_info *info, size_t size, void *data) {
        (void)size;
        unsigned long long *v = data;
        v[0] = info->dlpi_adds;
        v[1] = info->dlpi_subs;
        return 1;
}

static void free_objs(struct uw_obj *o) {
        while (o) {
                struct uw_obj *n = o->next;
                if (o->table)
                        uw.bytes -= o->table->bytes;
                free(o->table);
                free(o);
                o = n;
        }
}

/* Free what no handler can still read: a retired set's parity seen at 0. */
static void reap(bool wait) {
        for (struct retired **pp = &uw.retired, *r; (r = *pp);) {
                for (int i = 0; wait && i < 2000 && atomic_load(&fr__uw_pub.readers[r->parity]); i++)
                        nanosleep(&(struct timespec){0, 50000}, NULL);
                if (atomic_load(&fr__uw_pub.readers[r->parity]) == 0) {
                        *pp = r->next;
                        free(r->set);
                        free_objs(r->objs);
                        free(r);
                } else {
                        pp = &r->next; /* a handler stuck (stopped thread): later */
                }
        }
}

static void rebuild(void) {
        struct scan sc = {0};
        dl_iterate_phdr(scan_object, &sc);
        struct uw_obj *gone = uw.objs; /* what the scan did not find again */
        uw.objs = sc.found;
        uint32_t n = 0;
        for (struct uw_obj *o = uw.objs; o; o = o->next)
                n++;
        struct fr_uw_set *s = calloc(1, sizeof *s + n * sizeof(struct fr_uw_object));
        if (!s) {
                /* Keep the old set; the gone objects stay allocated until the
                 * next rebuild that succeeds. */
                struct uw_obj **tail = &uw.objs;
                while (*tail)
                        tail = &(*tail)->next;
                *tail = gone;
                return;
        }
        s->nobjects = n;
        uint32_t i = 0;
        uw.unbuilt = false;
        for (struct uw_obj *o = uw.objs; o; o = o->next)
                uw.unbuilt |= !o->table && o->reason == FR_UW_OK;
        for (struct uw_obj *o = uw.objs; o; o = o->next)
                s->objects[i++] = (struct fr_uw_object){
                        .lo = o->lo, .hi = o->hi, .table = o->table, .wanted = &o->wanted, .pinned = o->pinned};
        qsort(s->objects, n, sizeof s->objects[0], cmp_obj);
        find_restorers(s);
        struct fr_uw_set *old = atomic_exchange(&fr__uw_pub.current, s);
        struct retired *r = calloc(1, sizeof *r);
        unsigned e = atomic_fetch_add(&fr__uw_pub.epoch, 1);
        if (!r) { /* cannot track it: wait for it here */
                while (atomic_load(&fr__uw_pub.readers[e & 1]))
                        nanosleep(&(struct timespec){0, 50000}, NULL);
                free(old);
                free_objs(gone);
        } else {
                *r = (struct retired){uw.retired, old, gone, e & 1};
                uw.retired = r;
        }
        reap(true);
}

bool fr__unwind_poll(void) {
        if (atomic_load_explicit(&fr__uw_pub.want, memory_order_relaxed))
                return true;
        if (!uw.unbuilt)
                return false;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        return now.tv_sec - uw.changed.tv_sec < 2;
}

static bool wants_more(void) {
        for (struct uw_obj *o = uw.objs; o; o = o->next)
                if (!o->table && o->reason == FR_UW_OK && atomic_load_explicit(&o->wanted, memory_order_relaxed))
                        return true;
        return false;
}

void fr__unwind_update(void) {
        if (fr__unwind_mode == FR_UW_MODE_FP)
                return;
        unsigned long long v[2] = {0, 0};
        dl_iterate_phdr(count_adds, v);
        if (atomic_load(&fr__uw_pub.current) && v[0] == uw.adds && v[1] == uw.subs && !wants_more()) {
                atomic_store(&fr__uw_pub.want, 0);
                if (uw.retired)
                        reap(false);
                return;
        }
        if (v[0] != uw.adds || v[1] != uw.subs)
                clock_gettime(CLOCK_MONOTONIC, &uw.changed);
        uw.adds = v[0];
        uw.subs = v[1];
        atomic_store(&fr__uw_pub.want, 0); /* before the scan reads the flags */
        rebuild();
}

int fr__unwind_parse(const char *m, unsigned *ret_mode) {
        if (!m || !*m || strcmp(m, "auto") == 0)
                *ret_mode = FR_UW_MODE_AUTO;
        else if (strcmp(m, "dwarf") == 0)
                *ret_mode = FR_UW_MODE_DWARF;
        else if (strcmp(m, "fp") == 0)
                *ret_mode = FR_UW_MODE_FP;
        else {
                fr__log_error("FLIGHTREC_UNWIND='%s' is none of 'auto', 'dwarf', 'fp'; not starting", m);
                return -EINVAL;
        }
        return 0;
}

void fr__unwind_init(unsigned mode) {
        fr__unwind_mode = mode;
        uw.debug = getenv("FLIGHTREC_DEBUG") != NULL;
        for (unsigned k = 0; k < FR_UW_END_KINDS; k++)
                atomic_store(&fr__uw_pub.stops[k], 0);
        atomic_store(&fr__uw_pub.frames, 0);
        fr__unwind_update();
}

void fr__unwind_shutdown(void) {
        struct fr_uw_set *s = atomic_exchange(&fr__uw_pub.current, NULL);
        unsigned e = atomic_fetch_add(&fr__uw_pub.epoch, 1);
        struct retired *r = calloc(1, sizeof *r);
        if (r) {
                *r = (struct retired){uw.retired, s, uw.objs, e & 1};
                uw.retired = r;
                uw.objs = NULL;
        }
        reap(true);
        uw.adds = uw.subs = 0;
        memset(uw.rejected_by, 0, sizeof uw.rejected_by);
}

void fr__unwind_stats(struct fr_uw_stats *ret) {
        *ret = (struct fr_uw_stats){.table_bytes = uw.bytes};
        for (struct uw_obj *o = uw.objs; o; o = o->next) {
                ret->objects++;
                ret->tables += o->table != NULL;
        }
        for (unsigned k = 0; k < FR_UW_REJ_KINDS; k++) {
                ret->rejected_by[k] = uw.rejected_by[k];
                ret->rejected += k ? uw.rejected_by[k] : 0;
        }
        for (unsigned k = 0; k < FR_UW_END_KINDS; k++)
                ret->stops[k] = atomic_load_explicit(&fr__uw_pub.stops[k], memory_order_relaxed);
}
