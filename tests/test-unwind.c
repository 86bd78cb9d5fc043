/* The unwind tables against a well-kept reference: for every row of our
 * table of libc.so.6, libstdc++.so.6, the agent (libflightrec.so) and this
 * test program, libdw's dwarf_cfi_addrframe at the row's first, middle and
 * last byte must give the same CFA rule, return-address location and saved
 * RBP (or a rule we cannot express, where ours is a STOP row). Then objects
 * with a hand-damaged .eh_frame are rejected with the right reason, and the
 * walker reads nothing outside the bounds it is given. */

#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <gelf.h>
#include <link.h>
#include <pthread.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <ucontext.h>
#include <unistd.h>

#include <cmocka.h>

#include "fr_unwind.h"

struct found {
        const char *want; /* substring of the path ("" : the main program) */
        struct dl_phdr_info info;
        char path[4096];
        bool ok;
};

static int find_cb(struct dl_phdr_info *info, size_t size, void *data) {
        (void)size;
        struct found *f = data;
        const char *name = info->dlpi_name ? info->dlpi_name : "";
        if (f->ok || (f->want[0] ? !strstr(name, f->want) : name[0] != '\0'))
                return 0;
        f->info = *info;
        if (name[0])
                snprintf(f->path, sizeof f->path, "%s", name);
        else if (readlink("/proc/self/exe", f->path, sizeof f->path - 1) < 0)
                return 0;
        f->ok = true;
        return 1;
}

static bool find(const char *want, struct found *ret) {
        memset(ret, 0, sizeof *ret);
        ret->want = want;
        dl_iterate_phdr(find_cb, ret);
        return ret->ok;
}

/* What libdw says at one file address, in our row's terms. */
struct ref {
        bool covered;     /* an FDE covers it */
        bool expressible; /* CFA = RSP|RBP + n, RA at CFA - 8, RBP same or at CFA + n */
        bool plt;         /* the PLT expression */
        int plt_n;
        bool root;        /* RA undefined */
        unsigned kind;    /* FR_UW_SP / FR_UW_FP */
        int64_t cfa_off;
        unsigned fp;
        int64_t fp_off;
};

static bool loc_offset(const Dwarf_Op *ops, size_t n, int64_t *ret) {
        if (n == 1 && ops[0].atom == DW_OP_call_frame_cfa) {
                *ret = 0;
                return true;
        }
        if (n == 2 && ops[0].atom == DW_OP_call_frame_cfa && ops[1].atom == DW_OP_plus_uconst) {
                *ret = (int64_t)ops[1].number;
                return true;
        }
        return false;
}

static struct ref reference(Dwarf_CFI *cfi, Dwarf_Addr a) {
        struct ref r = {0};
        Dwarf_Frame *f = NULL;
        if (dwarf_cfi_addrframe(cfi, a, &f) != 0)
                return r;
        r.covered = true;
        Dwarf_Op *ops, mem[3];
        size_t n;
        Dwarf_Op *ra_ops;
        size_t ra_n;
        if (dwarf_frame_register(f, 16, mem, &ra_ops, &ra_n) == 0 && ra_n == 0 && ra_ops == mem) {
                r.root = true;
                free(f);
                return r;
        }
        int64_t ra_off = 0;
        bool ra_ok = dwarf_frame_register(f, 16, mem, &ra_ops, &ra_n) == 0 &&
                     loc_offset(ra_ops, ra_n, &ra_off) && ra_off == -8;
        Dwarf_Op fp_mem[3], *fp_ops;
        size_t fp_n;
        bool fp_ok = false;
        if (dwarf_frame_register(f, 6, fp_mem, &fp_ops, &fp_n) == 0) {
                if (fp_n == 0 && fp_ops == NULL) {
                        r.fp = FR_UW_FP_SAME, fp_ok = true;
                } else if (loc_offset(fp_ops, fp_n, &r.fp_off)) {
                        r.fp = FR_UW_FP_CFA;
                        fp_ok = r.fp_off >= INT16_MIN && r.fp_off <= INT16_MAX;
                }
        }
        if (dwarf_frame_cfa(f, &ops, &n) == 0) {
                if (n == 1 && ops[0].atom == DW_OP_bregx && (ops[0].number == 6 || ops[0].number == 7)) {
                        r.kind = ops[0].number == 7 ? FR_UW_SP : FR_UW_FP;
                        r.cfa_off = (int64_t)ops[0].number2;
                        r.expressible = ra_ok && fp_ok;
                } else if (n == 9 && ops[0].atom == DW_OP_breg7 && ops[0].number == 8 &&
                           ops[1].atom == DW_OP_breg16 && ops[2].atom == DW_OP_lit15 &&
                           ops[3].atom == DW_OP_and && ops[4].atom >= DW_OP_lit0 &&
                           ops[4].atom <= DW_OP_lit31 && ops[5].atom == DW_OP_ge &&
                           ops[6].atom == DW_OP_lit3 && ops[7].atom == DW_OP_shl && ops[8].atom == DW_OP_plus) {
                        r.plt = true;
                        r.plt_n = ops[4].atom - DW_OP_lit0;
                        r.expressible = ra_ok && fp_ok;
                }
        }
        free(f);
        return r;
}

struct tally {
        size_t rows, addrs, stop, gap, plt, root;
};

/* check_row - one address of one row; returns false (and prints) on a mismatch. */
static bool check_addr(const char *obj, const struct fr_uw_row *w, Dwarf_CFI *cfi, Dwarf_Addr file_addr,
                       struct tally *t) {
        struct ref r = reference(cfi, file_addr);
        t->addrs++;
        bool ok;
        switch (w->kind) {
        case FR_UW_GAP: ok = !r.covered; break;
        case FR_UW_ROOT: ok = r.covered && r.root; break;
        case FR_UW_STOP: ok = r.covered && !r.root && !r.expressible; break;
        case FR_UW_PLT:
                ok = r.covered && r.expressible && r.plt && r.plt_n == w->cfa_off && r.fp == w->fp &&
                     (w->fp == FR_UW_FP_SAME || r.fp_off == w->fp_off);
                break;
        default:
                ok = r.covered && r.expressible && !r.plt && r.kind == w->kind && r.cfa_off == w->cfa_off &&
                     r.fp == w->fp && (w->fp == FR_UW_FP_SAME || r.fp_off == w->fp_off);
        }
        if (!ok)
                fprintf(stderr,
                        "%s +%#lx: ours kind %u cfa %d fp %u/%d; libdw covered %d root %d expressible %d "
                        "plt %d kind %u cfa %lld fp %u/%lld\n",
                        obj, (unsigned long)file_addr, w->kind, w->cfa_off, w->fp, w->fp_off, r.covered, r.root,
                        r.expressible, r.plt, r.kind, (long long)r.cfa_off, r.fp, (long long)r.fp_off);
        return ok;
}

static void compare_object(const char *want) {
        struct found f;
        assert_true(find(want, &f));
        struct fr_uw_table *tab = NULL;
        uintptr_t lo;
        unsigned why = 99;
        int r = fr__uw_build(&f.info, &tab, &lo, &why);
        if (r != 0)
                fprintf(stderr, "%s: rejected: %s\n", f.path, fr__uw_reject_names[why]);
        assert_int_equal(r, 0);
        assert_non_null(tab);
        assert_true(tab->nrows > 1);

        int fd = open(f.path, O_RDONLY);
        assert_true(fd >= 0);
        elf_version(EV_CURRENT);
        Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
        assert_non_null(elf);
        Dwarf_CFI *cfi = dwarf_getcfi_elf(elf);
        assert_non_null(cfi);

        struct tally t = {0};
        size_t bad = 0;
        uintptr_t text_end = lo + (uintptr_t)tab->npages * 4096;
        for (uint32_t i = 0; i < tab->nrows; i++) {
                const struct fr_uw_row *w = &tab->rows[i];
                uintptr_t start = lo + w->off;
                uintptr_t end = i + 1 < tab->nrows ? lo + tab->rows[i + 1].off : text_end;
                t.rows++;
                t.stop += w->kind == FR_UW_STOP;
                t.gap += w->kind == FR_UW_GAP;
                t.plt += w->kind == FR_UW_PLT;
                t.root += w->kind == FR_UW_ROOT;
                if (end <= start) {
                        bad++;
                        fprintf(stderr, "%s: row %u empty or out of order\n", want, i);
                        continue;
                }
                uintptr_t at[3] = {start, start + (end - start) / 2, end - 1};
                for (int k = 0; k < 3; k++) {
                        if (w->kind == FR_UW_GAP && k)
                                break; /* a gap's end may be padding that libdw's search rounds */
                        /* The handler's lookup finds this very row. */
                        const struct fr_uw_row *got = fr__uw_lookup(tab, lo, at[k]);
                        if (got != w) {
                                bad++;
                                fprintf(stderr, "%s +%#lx: lookup found row %ld, want %u\n", want,
                                        (unsigned long)(at[k] - f.info.dlpi_addr),
                                        got ? (long)(got - tab->rows) : -1L, i);
                        }
                        if (!check_addr(want, w, cfi, at[k] - f.info.dlpi_addr, &t))
                                bad++;
                        if (bad > 20)
                                break;
                }
        }
        fprintf(stderr, "%s: %zu rows (%zu stop, %zu gap, %zu plt, %zu root), %zu addresses checked, "
                        "%zu bytes, %zu mismatches\n",
                f.path, t.rows, t.stop, t.gap, t.plt, t.root, t.addrs, tab->bytes, bad);
        assert_int_equal(bad, 0);
        /* Most of the code is walkable: STOP rows are rare. */
        assert_true(t.stop * 20 < t.rows);
        dwarf_cfi_end(cfi);
        elf_end(elf);
        close(fd);
        free(tab);
}

static void test_libc(void **state) {
        (void)state;
        compare_object("/libc.so.6");
}

static void test_libstdcxx(void **state) {
        (void)state;
        void *h = dlopen("libstdc++.so.6", RTLD_NOW | RTLD_LOCAL);
        assert_non_null(h);
        compare_object("/libstdc++.so.6");
        dlclose(h);
}

static void test_agent(void **state) {
        (void)state;
        void *h = dlopen(FR_AGENT_SO, RTLD_NOW | RTLD_LOCAL);
        assert_non_null(h);
        compare_object("libflightrec.so");
        dlclose(h);
}

static void test_program(void **state) {
        (void)state;
        compare_object("");
}

/* ---- hand-damaged .eh_frame ------------------------------------------------- */
struct sect {
        off_t off;
        size_t size;
};

static bool section(const char *path, const char *name, struct sect *ret) {
        int fd = open(path, O_RDONLY);
        if (fd < 0)
                return false;
        Elf *e = elf_begin(fd, ELF_C_READ, NULL);
        size_t shstrndx;
        bool ok = false;
        if (e && elf_getshdrstrndx(e, &shstrndx) == 0) {
                for (Elf_Scn *scn = NULL; (scn = elf_nextscn(e, scn));) {
                        GElf_Shdr sh;
                        if (!gelf_getshdr(scn, &sh))
                                continue;
                        const char *n = elf_strptr(e, shstrndx, sh.sh_name);
                        if (n && strcmp(n, name) == 0) {
                                *ret = (struct sect){(off_t)sh.sh_offset, sh.sh_size};
                                ok = true;
                        }
                }
        }
        elf_end(e);
        close(fd);
        return ok;
}

/* damaged - a copy of the victim with bytes at [off, off + n) replaced,
 * dlopen'ed; returns the builder's verdict. */
static int damaged(const char *tag, off_t off, const void *bytes, size_t n, unsigned *ret_reason) {
        char path[256];
        snprintf(path, sizeof path, "/tmp/fr-uw-victim-%d-%s.so", (int)getpid(), tag);
        FILE *in = fopen(FR_VICTIM_SO, "rb"), *out = fopen(path, "wb");
        assert_non_null(in);
        assert_non_null(out);
        char buf[65536];
        size_t k;
        while ((k = fread(buf, 1, sizeof buf, in)) > 0)
                assert_int_equal(fwrite(buf, 1, k, out), k);
        fclose(in);
        assert_int_equal(fseeko(out, off, SEEK_SET), 0);
        assert_int_equal(fwrite(bytes, 1, n, out), n);
        fclose(out);
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        assert_non_null(h);
        struct found f;
        assert_true(find(path, &f));
        struct fr_uw_table *t = NULL;
        uintptr_t lo;
        int r = fr__uw_build(&f.info, &t, &lo, ret_reason);
        free(t);
        dlclose(h);
        unlink(path);
        fprintf(stderr, "%s: %d (%s)\n", tag, r, fr__uw_reject_names[*ret_reason]);
        return r;
}

static void test_damaged(void **state) {
        (void)state;
        elf_version(EV_CURRENT);
        struct sect eh, hdr;
        assert_true(section(FR_VICTIM_SO, ".eh_frame", &eh));
        assert_true(section(FR_VICTIM_SO, ".eh_frame_hdr", &hdr));
        /* The intact copy builds. */
        unsigned why = 99;
        uint8_t v1 = 1;
        assert_int_equal(damaged("intact", hdr.off, &v1, 1, &why), 0);
        assert_int_equal(why, FR_UW_OK);
        /* .eh_frame_hdr version 2. */
        uint8_t v2 = 2;
        assert_int_equal(damaged("hdr-version", hdr.off, &v2, 1, &why), -EINVAL);
        assert_int_equal(why, FR_UW_REJ_HDR);
        /* An FDE count far past the segment. */
        uint8_t count[4] = {0xff, 0xff, 0x3f, 0x00};
        assert_int_equal(damaged("hdr-count", hdr.off + 8, count, 4, &why), -EINVAL);
        assert_int_equal(why, FR_UW_REJ_HDR);
        /* The first FDE (after the CIE) claims 256 MiB: truncated. */
        FILE *f = fopen(FR_VICTIM_SO, "rb");
        assert_non_null(f);
        uint8_t head[64];
        assert_int_equal(fseeko(f, eh.off, SEEK_SET), 0);
        assert_int_equal(fread(head, 1, sizeof head, f), sizeof head);
        fclose(f);
        uint32_t cie_len;
        memcpy(&cie_len, head, 4);
        off_t fde = eh.off + 4 + cie_len;
        uint8_t huge[4] = {0x00, 0x00, 0x00, 0x10};
        assert_int_equal(damaged("fde-length", fde, huge, 4, &why), -EINVAL);
        assert_int_equal(why, FR_UW_REJ_TRUNCATED);
        /* The CIE's version 9. */
        uint8_t v9 = 9;
        assert_int_equal(damaged("cie-version", eh.off + 8, &v9, 1, &why), -EINVAL);
        assert_int_equal(why, FR_UW_REJ_CIE);
        /* An undefined call-frame instruction (0x3f) in the CIE's initial
         * instructions: just after its augmentation "zR", code and data
         * alignment, RA column, augmentation length and the 'R' encoding. */
        assert_true(memcmp(head + 9, "zR", 3) == 0);
        uint8_t bad_op = 0x3f;
        assert_int_equal(damaged("opcode", eh.off + 9 + 3 + 3 + 1 + 1, &bad_op, 1, &why), -EINVAL);
        assert_int_equal(why, FR_UW_REJ_OPCODE);
}

/* ---- the walker inside its bounds ----------------------------------------------- */
static void stack_bounds(uintptr_t *lo, uintptr_t *hi) {
        pthread_attr_t a;
        void *addr;
        size_t size;
        assert_int_equal(pthread_getattr_np(pthread_self(), &a), 0);
        assert_int_equal(pthread_attr_getstack(&a, &addr, &size), 0);
        pthread_attr_destroy(&a);
        *lo = (uintptr_t)addr;
        *hi = (uintptr_t)addr + size;
}

__attribute__((noinline, optimize("omit-frame-pointer"))) static uint32_t walk_here(
        const struct fr_uw_bounds *b, uint64_t *pcs, uint32_t max, struct fr_uw_result *res) {
        struct fr_uw_regs r;
        __asm__ volatile("lea (%%rip), %0\n\tmov %%rsp, %1\n\tmov %%rbp, %2"
                         : "=r"(r.pc), "=r"(r.sp), "=r"(r.fp));
        return fr__unwind_regs(&r, b, 0, pcs, max, res);
}

__attribute__((noinline, optimize("omit-frame-pointer"))) static uint32_t nofp_chain(
        int depth, const struct fr_uw_bounds *b, uint64_t *pcs, uint32_t max, struct fr_uw_result *res) {
        volatile int pad = depth;
        uint32_t n = depth ? nofp_chain(depth - 1, b, pcs, max, res) : walk_here(b, pcs, max, res);
        return n + (uint32_t)pad * 0;
}

static void test_walker(void **state) {
        (void)state;
        fr__unwind_init(FR_UW_MODE_DWARF);
        uintptr_t lo, hi;
        stack_bounds(&lo, &hi);
        uint64_t pcs[128];
        struct fr_uw_result res;
        struct fr_uw_bounds b = {.lo = {lo}, .hi = {hi}, .n = 1};
        /* Through 10 frames without frame pointers to the root (_start). The
         * first walk meets libcmocka, which has no table yet: it ends there,
         * asks for the table, and the next update builds it. */
        uint32_t n = nofp_chain(10, &b, pcs, 128, &res);
        assert_int_equal(res.stop, FR_UW_END_NOCFI);
        assert_true(fr__unwind_poll());
        fr__unwind_update();
        n = nofp_chain(10, &b, pcs, 128, &res);
        fprintf(stderr, "walk: %u frames, stop %u, %u by tables\n", n, res.stop, res.dwarf);
        assert_int_equal(res.stop, FR_UW_END_ROOT);
        assert_true(n >= 14); /* walk_here, 11 nofp_chain, the test, cmocka, main, libc */
        /* Frames 1 to 11 return into nofp_chain (a static function: by address). */
        for (int i = 1; i <= 11; i++)
                assert_true(pcs[i] > (uintptr_t)nofp_chain && pcs[i] < (uintptr_t)nofp_chain + 512);
        /* Bounds ending 64 bytes above the stack pointer: the walk stops at
         * them instead of reading on. */
        uintptr_t sp;
        __asm__ volatile("mov %%rsp, %0" : "=r"(sp));
        struct fr_uw_bounds tight = {.lo = {lo}, .hi = {sp - 4096}, .n = 1};
        n = nofp_chain(10, &tight, pcs, 128, &res);
        assert_int_equal(res.stop, FR_UW_END_BOUNDS);
        /* Garbage registers: a pc in no object and a stack of random words. */
        uint64_t junk[512];
        for (int i = 0; i < 512; i++)
                junk[i] = (uint64_t)rand() * 0x9e3779b97f4a7c15ull;
        struct fr_uw_bounds jb = {.lo = {(uintptr_t)junk}, .hi = {(uintptr_t)(junk + 512)}, .n = 1};
        unsigned modes[] = {FR_UW_MODE_AUTO, FR_UW_MODE_DWARF, FR_UW_MODE_FP};
        for (int m = 0; m < 3; m++) {
                fr__unwind_mode = modes[m];
                for (int i = 0; i < 2000; i++) {
                        struct fr_uw_regs r = {junk[i % 512], (uintptr_t)&junk[i % 500], junk[(i * 7) % 512]};
                        if (i & 1) /* a real pc, garbage stack */
                                r.pc = (uintptr_t)walk_here + (uintptr_t)(i % 64);
                        n = fr__unwind_regs(&r, &jb, 0, pcs, 128, &res);
                        assert_true(n >= 1 && n <= 128);
                }
                /* The same through process_vm_readv. */
                struct fr_uw_regs r = {(uintptr_t)walk_here, (uintptr_t)junk, junk[3]};
                n = fr__unwind_regs(&r, &jb, FR_UW_REMOTE, pcs, 128, &res);
                assert_true(n >= 1);
        }
        fr__unwind_shutdown();
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_libc),
                cmocka_unit_test(test_libstdcxx),
                cmocka_unit_test(test_agent),
                cmocka_unit_test(test_program),
                cmocka_unit_test(test_damaged),
                cmocka_unit_test(test_walker),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
