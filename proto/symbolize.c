/* Symbolization with libdw: see symbolize.h.
 *
 * Each distinct recorded mapping (path, build id, start, offset) gets a
 * handle. Opening it reads the file's build id and program headers to find
 * the load bias (runtime address - ELF virtual address), which the mapping
 * fixes: the PT_LOAD segment holding the mapped file offset was placed so
 * that `offset` sits at `start`. Handles of the same file (path and build
 * id: the segments of one loaded object, and the same object in every
 * process, wherever ASLR put it) share one Dwfl session, reported with
 * dwfl_report_elf at its own virtual addresses: a runtime address is looked
 * up less the handle's bias. So the daemon opens libc once for all the
 * processes it converts, and resolves each address of it once (with one
 * session per load bias, a snapshot of 256 processes held 4.4 GB).
 *
 * Names, files, lines and inlined frames come from DWARF when the file (or
 * its separate debug info) has it: the scopes at the address give the chain
 * inlined_subroutine... -> subprogram, the line table gives the innermost
 * line and each inlined_subroutine's DW_AT_call_file/call_line the line in
 * the function around it. Without DWARF, the ELF symbol table gives the name
 * only. C++ names are demangled with the C++ runtime's __cxa_demangle when it
 * can be loaded (dlopen), so no C++ dependency is needed to build.
 *
 * The vdso ("linux-vdso.so.1") has no file: its image is the one the kernel
 * maps into every process, this one included, so it is read from our own
 * memory (AT_SYSINFO_EHDR) into a memfd and used when the recorded build id
 * matches ours (a trace from the same kernel). */
#include "symbolize.h"

#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdlib.h>
#include <string.h>
#include <link.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#include "trace_format.h"

typedef char *(*demangle_fn)(const char *mangled, char *buf, size_t *len, int *status);

/* Results already found, by Dwfl address + 1 (0 marks an empty slot). The
 * strings they point to live as long as the symbolizer. */
struct cached {
        bool has_dwarf;
        size_t nframes;
        struct fr_sym_frame frames[];
};
struct addr_cache {
        uint64_t *keys;
        struct cached **vals;
        size_t cap, n; /* cap: a power of two, or 0 */
};

/* A file opened at its own addresses: shared by the handles of its segments,
 * in every process. */
struct sym_module {
        struct sym_module *next;
        char *path; /* as recorded (root not prefixed) */
        uint8_t build_id[FR_MAX_BUILD_ID_BYTES];
        size_t build_id_len;
        int64_t adjust;    /* Dwfl address - ELF vaddr (0 unless libdw moved it) */
        Dwfl *dwfl;
        Dwfl_Module *mod;
        struct addr_cache cache;  /* results by Dwfl address: each resolved once */
};

struct fr_sym_object {
        struct fr_sym_object *next;
        struct fr_symbolizer *s;
        char *path;
        uint8_t build_id[FR_MAX_BUILD_ID_BYTES];
        size_t build_id_len;
        uint64_t start, limit, offset;
        enum fr_sym_status status;
        struct sym_module *module; /* NULL unless status is FR_SYM_OK */
        int64_t adjust;            /* Dwfl address - runtime address */
};

/* Demangled names, by mangled name: each is demangled once. */
struct demangled {
        struct demangled *next;
        char *mangled, *name;
};

#define DEMANGLE_BUCKETS 1024

struct fr_symbolizer {
        char *root;
        struct fr_sym_object *objects;
        struct sym_module *modules;
        void *cxx;              /* dlopen handle of the C++ runtime */
        demangle_fn demangle;   /* NULL: not available */
        bool demangle_tried;
        struct demangled *names[DEMANGLE_BUCKETS];
        size_t ncached;         /* results cached over all modules */
};

static char *debuginfo_path; /* NULL: libdw's default search path */

static const Dwfl_Callbacks callbacks = {
        .find_elf = dwfl_build_id_find_elf,
        .find_debuginfo = dwfl_standard_find_debuginfo,
        .section_address = dwfl_offline_section_address,
        .debuginfo_path = &debuginfo_path,
};

int fr_symbolizer_new(const char *root, struct fr_symbolizer **ret) {
        struct fr_symbolizer *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        if (root && *root && !(s->root = strdup(root))) {
                free(s);
                return -ENOMEM;
        }
        elf_version(EV_CURRENT);
        *ret = s;
        return 0;
}

void fr_symbolizer_free(struct fr_symbolizer *s) {
        if (!s)
                return;
        while (s->objects) {
                struct fr_sym_object *next = s->objects->next;
                free(s->objects->path);
                free(s->objects);
                s->objects = next;
        }
        while (s->modules) {
                struct sym_module *next = s->modules->next;
                struct addr_cache *c = &s->modules->cache;
                for (size_t i = 0; i < c->cap; i++)
                        if (c->keys[i])
                                free(c->vals[i]);
                free(c->keys);
                free(c->vals);
                if (s->modules->dwfl)
                        dwfl_end(s->modules->dwfl);
                free(s->modules->path);
                free(s->modules);
                s->modules = next;
        }
        for (size_t i = 0; i < DEMANGLE_BUCKETS; i++) {
                while (s->names[i]) {
                        struct demangled *next = s->names[i]->next;
                        free(s->names[i]->mangled);
                        free(s->names[i]->name);
                        free(s->names[i]);
                        s->names[i] = next;
                }
        }
        if (s->cxx)
                dlclose(s->cxx);
        free(s->root);
        free(s);
}

const char *fr_sym_status_text(enum fr_sym_status status) {
        switch (status) {
        case FR_SYM_OK:
                return "ok";
        case FR_SYM_MISSING:
                return "file not found or not readable";
        case FR_SYM_BUILD_ID_MISMATCH:
                return "build id differs from the loaded object's";
        case FR_SYM_NOT_ELF:
                return "not a readable ELF file";
        case FR_SYM_NO_SEGMENT:
                return "no loadable segment at the mapped file offset";
        }
        return "unknown";
}

enum fr_sym_status fr_sym_object_status(const struct fr_sym_object *o) { return o->status; }

/* ------------------------------------------------------------------------ */
/* Opening objects                                                           */

/* load_bias - the bias that puts file offset `offset` at `start`, from the
 * PT_LOAD segment the kernel mapped there. A mapping normally begins at a
 * segment's first page (offset at most a page below p_offset); one split
 * later (mprotect of RELRO) begins inside a segment. Several segments can
 * share the mapped file page: lld and mold do not page-align segments in the
 * file, so a small program's read-only, code and data segments may all sit
 * in file page 0, each mapped at its own address, and the one mapping alone
 * cannot tell which it is. Only code is symbolized, so the executable
 * segment wins, then one beginning in the mapping's first page, then the
 * closest. Returns 0, or -ENOENT when no segment fits. */
static int load_bias(Elf *elf, uint64_t start, uint64_t offset, uint64_t *ret) {
        const uint64_t max_page = 65536; /* largest page size Linux uses */
        size_t phnum;
        GElf_Phdr best = {0}, ph;
        int best_rank = -1;

        if (elf_getphdrnum(elf, &phnum) != 0)
                return -ENOENT;
        for (size_t i = 0; i < phnum; i++) {
                if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
                        continue;
                bool at_start = offset <= ph.p_offset && ph.p_offset - offset < max_page;
                bool inside = offset > ph.p_offset && offset - ph.p_offset < ph.p_filesz;
                if (!at_start && !inside)
                        continue;
                int rank = (ph.p_flags & PF_X ? 2 : 0) + (at_start ? 1 : 0);
                if (rank > best_rank || (rank == best_rank && ph.p_offset < best.p_offset)) {
                        best = ph;
                        best_rank = rank;
                }
        }
        if (best_rank < 0)
                return -ENOENT;
        /* vaddr of `offset` is p_vaddr - (p_offset - offset). */
        *ret = start + best.p_offset - offset - best.p_vaddr;
        return 0;
}

static char *full_path(const struct fr_symbolizer *s, const char *path) {
        size_t rl = s->root ? strlen(s->root) : 0, pl = strlen(path);
        char *p = malloc(rl + pl + 1);
        if (p) {
                if (rl)
                        memcpy(p, s->root, rl);
                memcpy(p + rl, path, pl + 1);
        }
        return p;
}

/* find_module - the open session of this file, or a new one. Takes fd
 * (closed on every path). Returns 0 with *ret (NULL when libdw cannot report
 * the file) or -ENOMEM. */
static int find_module(struct fr_symbolizer *s, const struct fr_sym_object *o, const char *full,
                       int fd, struct sym_module **ret) {
        struct sym_module *m;
        for (m = s->modules; m; m = m->next) {
                if (m->build_id_len == o->build_id_len &&
                    memcmp(m->build_id, o->build_id, o->build_id_len) == 0 &&
                    strcmp(m->path, o->path) == 0) {
                        close(fd);
                        *ret = m->dwfl ? m : NULL;
                        return 0;
                }
        }
        m = calloc(1, sizeof *m);
        if (!m || !(m->path = strdup(o->path))) {
                free(m);
                close(fd);
                return -ENOMEM;
        }
        memcpy(m->build_id, o->build_id, o->build_id_len);
        m->build_id_len = o->build_id_len;
        m->next = s->modules;
        s->modules = m;
        *ret = NULL;

        m->dwfl = dwfl_begin(&callbacks);
        if (!m->dwfl) {
                close(fd);
                return 0;
        }
        const char *base = strrchr(o->path, '/');
        dwfl_report_begin(m->dwfl);
        /* At the file's own addresses (ET_DYN with add_p_vaddr at base 0;
         * ET_EXEC is always there). */
        m->mod = dwfl_report_elf(m->dwfl, base ? base + 1 : o->path, full, fd, 0, true);
        dwfl_report_end(m->dwfl, NULL, NULL);
        if (!m->mod) {
                close(fd); /* only consumed on success */
                dwfl_end(m->dwfl);
                m->dwfl = NULL;
                return 0;
        }
        GElf_Addr modbias = 0;
        if (!dwfl_module_getelf(m->mod, &modbias)) {
                dwfl_end(m->dwfl);
                m->dwfl = NULL;
                m->mod = NULL;
                return 0;
        }
        m->adjust = (int64_t)modbias;
        *ret = m;
        return 0;
}

/* vdso_fd - a descriptor of a copy of this process's vdso image, or -1. The
 * caller checks its build id against the recording's. */
static int vdso_fd(void) {
        const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)getauxval(AT_SYSINFO_EHDR);
        if (!eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64)
                return -1;
        /* The section headers end the image (the kernel builds it so). */
        size_t size = eh->e_shoff + (size_t)eh->e_shnum * eh->e_shentsize;
        if (eh->e_shoff == 0 || size > (1u << 20))
                return -1;
        int fd = memfd_create("vdso", MFD_CLOEXEC);
        if (fd < 0)
                return -1;
        if (write(fd, eh, size) != (ssize_t)size) {
                close(fd);
                return -1;
        }
        return fd;
}

static bool is_vdso(const char *path) {
        return strcmp(path, "linux-vdso.so.1") == 0 || strcmp(path, "[vdso]") == 0;
}

/* open_object - check the file against the recording and attach a module. */
static int open_object(struct fr_symbolizer *s, struct fr_sym_object *o) {
        char *full = full_path(s, o->path);
        const void *bid = NULL;
        ssize_t bidlen;
        uint64_t bias;
        Elf *elf;
        int fd, r;

        if (!full)
                return -ENOMEM;
        fd = open(full, O_RDONLY | O_CLOEXEC);
        if (fd < 0 && is_vdso(o->path) && o->build_id_len)
                fd = vdso_fd(); /* checked against the build id below */
        if (fd < 0) {
                o->status = FR_SYM_MISSING;
                free(full);
                return 0;
        }
        elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
        if (!elf || elf_kind(elf) != ELF_K_ELF) {
                o->status = FR_SYM_NOT_ELF;
                goto fail;
        }
        bidlen = dwelf_elf_gnu_build_id(elf, &bid);
        /* An object recorded without a build id cannot be checked: trust the path. */
        if (o->build_id_len &&
            (bidlen != (ssize_t)o->build_id_len || memcmp(bid, o->build_id, o->build_id_len) != 0)) {
                o->status = FR_SYM_BUILD_ID_MISMATCH;
                goto fail;
        }
        if (load_bias(elf, o->start, o->offset, &bias) < 0) {
                o->status = FR_SYM_NO_SEGMENT;
                goto fail;
        }
        elf_end(elf);
        r = find_module(s, o, full, fd, &o->module);
        free(full);
        if (r < 0)
                return r;
        if (o->module)
                o->adjust = o->module->adjust - (int64_t)bias;
        o->status = o->module ? FR_SYM_OK : FR_SYM_NOT_ELF;
        return 0;
fail:
        if (elf)
                elf_end(elf);
        close(fd);
        free(full);
        return 0;
}

int fr_sym_open(struct fr_symbolizer *s, const struct fr_object *obj, struct fr_sym_object **ret) {
        size_t bidlen = obj->build_id ? obj->build_id_len : 0;
        struct fr_sym_object *o;
        int r;

        if (bidlen > FR_MAX_BUILD_ID_BYTES)
                bidlen = FR_MAX_BUILD_ID_BYTES; /* the reader never gives more */
        for (o = s->objects; o; o = o->next) {
                if (o->start == obj->start && o->limit == obj->limit && o->offset == obj->offset &&
                    o->build_id_len == bidlen &&
                    (bidlen == 0 || memcmp(o->build_id, obj->build_id, bidlen) == 0) &&
                    strcmp(o->path, obj->path) == 0) {
                        *ret = o;
                        return 0;
                }
        }
        o = calloc(1, sizeof *o);
        if (!o || !(o->path = strdup(obj->path))) {
                free(o);
                return -ENOMEM;
        }
        o->s = s;
        if (bidlen)
                memcpy(o->build_id, obj->build_id, bidlen);
        o->build_id_len = bidlen;
        o->start = obj->start;
        o->limit = obj->limit;
        o->offset = obj->offset;
        r = open_object(s, o);
        if (r < 0) {
                free(o->path);
                free(o);
                return r;
        }
        o->next = s->objects;
        s->objects = o;
        *ret = o;
        return 0;
}

/* ------------------------------------------------------------------------ */
/* Names                                                                     */

static size_t hash_str(const char *p) {
        size_t h = 5381;
        while (*p)
                h = h * 33 + (unsigned char)*p++;
        return h;
}

/* demangle - the readable form of a C++ linkage name; the name itself when it
 * is not one or cannot be demangled. NULL only when out of memory. */
static const char *demangle(struct fr_symbolizer *s, const char *mangled) {
        if (strncmp(mangled, "_Z", 2) != 0)
                return mangled;
        if (!s->demangle_tried) {
                s->demangle_tried = true;
                s->cxx = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_LOCAL);
                if (s->cxx)
                        *(void **)&s->demangle = dlsym(s->cxx, "__cxa_demangle");
        }
        if (!s->demangle)
                return mangled;
        size_t b = hash_str(mangled) % DEMANGLE_BUCKETS;
        for (struct demangled *d = s->names[b]; d; d = d->next)
                if (strcmp(d->mangled, mangled) == 0)
                        return d->name ? d->name : mangled;
        struct demangled *d = calloc(1, sizeof *d);
        if (!d || !(d->mangled = strdup(mangled))) {
                free(d);
                return NULL;
        }
        int status = -1;
        d->name = s->demangle(mangled, NULL, NULL, &status); /* NULL: keep the mangled name */
        if (status != 0) {
                free(d->name);
                d->name = NULL;
        }
        d->next = s->names[b];
        s->names[b] = d;
        return d->name ? d->name : mangled;
}

static const char *die_string(Dwarf_Die *die, unsigned name) {
        Dwarf_Attribute attr;
        return dwarf_formstring(dwarf_attr_integrate(die, name, &attr));
}

static bool is_function(Dwarf_Die *die) {
        int tag = dwarf_tag(die);
        return tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine ||
               tag == DW_TAG_entry_point;
}

/* die_frame - name and first line of the function a DIE stands for (an
 * inlined instance names its abstract origin). symname: the ELF symbol,
 * used when DWARF has no name. Returns 0 or -ENOMEM. */
static int die_frame(struct fr_symbolizer *s, Dwarf_Die *die, const char *symname,
                     struct fr_sym_frame *f) {
        const char *linkage = die_string(die, DW_AT_linkage_name);
        const char *name = die_string(die, DW_AT_name);
        int line;

        if (!linkage)
                linkage = die_string(die, DW_AT_MIPS_linkage_name);
        if (!linkage && !name)
                linkage = symname;
        if (linkage) {
                f->system_name = linkage;
                f->function = demangle(s, linkage);
                if (!f->function)
                        return -ENOMEM;
        } else {
                f->function = name;
        }
        if (dwarf_decl_line(die, &line) == 0 && line > 0)
                f->start_line = line;
        return 0;
}

/* call_site - where an inlined instance was called from. */
static void call_site(Dwarf_Die *inl, Dwarf_Files *files, size_t nfiles, const char **ret_file,
                      int64_t *ret_line) {
        Dwarf_Attribute attr;
        Dwarf_Word v;
        *ret_file = NULL;
        *ret_line = 0;
        if (files && dwarf_formudata(dwarf_attr(inl, DW_AT_call_file, &attr), &v) == 0 && v < nfiles)
                *ret_file = dwarf_filesrc(files, v, NULL, NULL);
        if (dwarf_formudata(dwarf_attr(inl, DW_AT_call_line, &attr), &v) == 0)
                *ret_line = (int64_t)v;
}

/* dwarf_frames - the inline chain at a (Dwfl) address; ret->nframes stays 0
 * when DWARF knows no function there. */
static int dwarf_frames(struct fr_symbolizer *s, Dwfl_Module *mod, Dwarf_Addr a,
                        const char *symname, struct fr_sym_result *ret) {
        Dwarf_Addr bias;
        Dwarf_Die *cudie = dwfl_module_addrdie(mod, a, &bias);
        Dwarf_Die *scopes = NULL, *chain = NULL, inner;
        Dwarf_Files *files = NULL;
        size_t nfiles = 0;
        const char *file = NULL;
        int64_t line = 0;
        int n, r = 0;

        if (!cudie)
                return 0;
        n = dwarf_getscopes(cudie, a - bias, &scopes);
        if (n <= 0) {
                free(scopes);
                return 0;
        }
        /* dwarf_getscopes may continue into an inlined function's abstract
         * scopes; walking up from the innermost DIE gives the concrete chain. */
        inner = scopes[0];
        free(scopes);
        n = dwarf_getscopes_die(&inner, &chain);
        if (n <= 0) {
                free(chain);
                return 0;
        }
        Dwfl_Line *dl = dwfl_module_getsrc(mod, a);
        if (dl) {
                int l = 0;
                file = dwfl_lineinfo(dl, NULL, &l, NULL, NULL, NULL);
                line = l;
        }
        if (dwarf_getsrcfiles(cudie, &files, &nfiles) != 0)
                files = NULL;
        for (int i = 0; i < n && ret->nframes < FR_SYM_MAX_FRAMES; i++) {
                if (!is_function(&chain[i]))
                        continue;
                struct fr_sym_frame *f = &ret->frames[ret->nframes];
                *f = (struct fr_sym_frame){.file = file, .line = line};
                if (!f->file)
                        f->file = dwarf_decl_file(&chain[i]);
                bool inlined = dwarf_tag(&chain[i]) == DW_TAG_inlined_subroutine;
                r = die_frame(s, &chain[i], inlined ? NULL : symname, f);
                if (r < 0)
                        break;
                ret->nframes++;
                if (!inlined)
                        break; /* the outermost: the function the code belongs to */
                call_site(&chain[i], files, nfiles, &file, &line);
        }
        free(chain);
        if (r == 0 && ret->nframes)
                ret->has_dwarf = true;
        return r;
}

static uint64_t mix(uint64_t k) {
        k ^= k >> 33;
        k *= 0xff51afd7ed558ccdull;
        return k ^ (k >> 33);
}

static struct cached *cache_get(const struct addr_cache *c, uint64_t key) {
        if (!c->cap)
                return NULL;
        for (size_t i = mix(key) & (c->cap - 1);; i = (i + 1) & (c->cap - 1)) {
                if (c->keys[i] == key)
                        return c->vals[i];
                if (!c->keys[i])
                        return NULL;
        }
}

static void cache_insert(struct addr_cache *c, uint64_t key, struct cached *v) {
        size_t i = mix(key) & (c->cap - 1);
        while (c->keys[i])
                i = (i + 1) & (c->cap - 1);
        c->keys[i] = key;
        c->vals[i] = v;
        c->n++;
}

/* Keep a result (best effort: a full cache or no memory only costs a later
 * lookup its time). */
static void cache_put(struct fr_symbolizer *s, struct addr_cache *c, uint64_t key,
                      const struct fr_sym_result *res) {
        if (s->ncached >= FR_SYM_MAX_CACHED)
                return;
        if ((c->n + 1) * 2 > c->cap) {
                size_t cap = c->cap ? c->cap * 2 : 256;
                struct addr_cache big = {calloc(cap, sizeof *big.keys), calloc(cap, sizeof *big.vals), cap, 0};
                if (!big.keys || !big.vals) {
                        free(big.keys);
                        free(big.vals);
                        return;
                }
                for (size_t i = 0; i < c->cap; i++)
                        if (c->keys[i])
                                cache_insert(&big, c->keys[i], c->vals[i]);
                free(c->keys);
                free(c->vals);
                *c = big;
        }
        struct cached *v = malloc(sizeof *v + res->nframes * sizeof v->frames[0]);
        if (!v)
                return;
        v->has_dwarf = res->has_dwarf;
        v->nframes = res->nframes;
        memcpy(v->frames, res->frames, res->nframes * sizeof v->frames[0]);
        cache_insert(c, key, v);
        s->ncached++;
}

size_t fr_symbolizer_cached(const struct fr_symbolizer *s) { return s->ncached; }

size_t fr_symbolizer_files(const struct fr_symbolizer *s) {
        size_t n = 0;
        for (const struct sym_module *m = s->modules; m; m = m->next)
                n += m->dwfl != NULL;
        return n;
}

static int resolve(struct fr_sym_object *o, Dwfl_Module *mod, Dwarf_Addr a,
                   struct fr_sym_result *ret) {
        GElf_Off off;
        GElf_Sym sym;
        const char *symname = dwfl_module_addrinfo(mod, a, &off, &sym, NULL, NULL, NULL);
        int r = dwarf_frames(o->s, mod, a, symname, ret);
        if (r < 0 || ret->nframes)
                return r;
        if (!symname)
                return 0;
        /* No DWARF here: the symbol table's name, and a line if one is known. */
        struct fr_sym_frame *f = &ret->frames[0];
        *f = (struct fr_sym_frame){.system_name = symname};
        f->function = demangle(o->s, symname);
        if (!f->function)
                return -ENOMEM;
        Dwfl_Line *dl = dwfl_module_getsrc(mod, a);
        if (dl) {
                int l = 0;
                f->file = dwfl_lineinfo(dl, NULL, &l, NULL, NULL, NULL);
                f->line = l;
        }
        ret->nframes = 1;
        return 0;
}

int fr_symbolize(struct fr_sym_object *o, uint64_t addr, struct fr_sym_result *ret) {
        ret->nframes = 0;
        ret->has_dwarf = false;
        if (o->status != FR_SYM_OK || addr < o->start || addr >= o->limit)
                return 0;
        struct sym_module *m = o->module;
        Dwarf_Addr a = addr + (uint64_t)o->adjust;
        struct cached *hit = cache_get(&m->cache, a + 1);
        if (hit) {
                ret->has_dwarf = hit->has_dwarf;
                ret->nframes = hit->nframes;
                memcpy(ret->frames, hit->frames, hit->nframes * sizeof ret->frames[0]);
                return 0;
        }
        int r = resolve(o, m->mod, a, ret);
        if (r == 0)
                cache_put(o->s, &m->cache, a + 1, ret);
        return r;
}
