/* Which language runtimes share this process with the agent, found from the
 * loaded objects alone (no file is opened, no system call beyond what
 * dl_iterate_phdr does): the agent stays out of Go, and its crash handler
 * must leave alone the faults that JVMs and other runtimes take on purpose.
 *  - Go (gc): every Go binary and c-shared library carries a "Go" note
 *    (name "Go\0\0", type 4: the Go build id) in a PT_NOTE segment,
 *    stripped or not, with or without cgo; gccgo programs load libgo.so.
 *  - JVM: the java launcher links libjli.so; libjvm.so comes later (dlopen).
 *  - Others that take SIGSEGV for their own purposes: .NET (libcoreclr),
 *    Mono, V8 in libnode (WebAssembly guard pages), and sanitizer runtimes
 *    (shared: libasan etc.; static: their __*san_init symbols).
 * fr__runtime_kind() is a plain atomic read, safe in a signal handler;
 * fr__runtime_detect() is not (dl_iterate_phdr takes the loader's lock). */
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdatomic.h>
#include <string.h>

#include "fr_internal.h"

static _Atomic unsigned kind;
static char first_go_object[256];

unsigned fr__runtime_kind(void) { return atomic_load_explicit(&kind, memory_order_relaxed); }

const char *fr__runtime_go_object(void) { return first_go_object; }

/* Whether one PT_NOTE segment, in memory, holds a Go build-id note. */
static bool has_go_note(const uint8_t *p, size_t len) {
        size_t off = 0;
        while (off + sizeof(ElfW(Nhdr)) <= len) {
                const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)(p + off);
                size_t name = (n->n_namesz + 3) & ~(size_t)3, desc = (n->n_descsz + 3) & ~(size_t)3;
                const char *nm = (const char *)(n + 1);
                if (name > len || desc > len || off + sizeof *n + name + desc > len)
                        return false;
                if (n->n_type == 4 && (n->n_namesz == 3 || n->n_namesz == 4) && memcmp(nm, "Go", 3) == 0)
                        return true;
                off += sizeof *n + name + desc;
        }
        return false;
}

static const char *base_name(const char *path) {
        const char *s = strrchr(path, '/');
        return s ? s + 1 : path;
}

static bool starts(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

/* Loaded objects whose presence tells the runtime, by file name. */
static unsigned kind_by_name(const char *base) {
        if (starts(base, "libgo.so"))
                return FR_RUNTIME_GO;
        if (starts(base, "libjvm.so") || starts(base, "libjli.so"))
                return FR_RUNTIME_JVM | FR_RUNTIME_SIGSEGV;
        if (starts(base, "libcoreclr.so") || starts(base, "libmonosgen-") ||
            starts(base, "libmono-") || starts(base, "libnode.so"))
                return FR_RUNTIME_SIGSEGV;
        if (starts(base, "libasan.so") || starts(base, "libhwasan.so") ||
            starts(base, "libtsan.so") || starts(base, "liblsan.so") || starts(base, "libubsan.so"))
                return FR_RUNTIME_SANITIZER | FR_RUNTIME_SIGSEGV;
        return 0;
}

static int visit(struct dl_phdr_info *info, size_t size, void *arg) {
        (void)size;
        unsigned *found = arg;
        const char *name = info->dlpi_name && *info->dlpi_name ? info->dlpi_name : "(main program)";
        *found |= kind_by_name(base_name(name));
        for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
                const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
                if (ph->p_type != PT_NOTE || !has_go_note((const uint8_t *)(info->dlpi_addr + ph->p_vaddr),
                                                          ph->p_memsz))
                        continue;
                if (!(*found & FR_RUNTIME_GO)) {
                        size_t n = strlen(name);
                        if (n >= sizeof first_go_object)
                                n = sizeof first_go_object - 1;
                        memcpy(first_go_object, name, n);
                        first_go_object[n] = '\0';
                }
                *found |= FR_RUNTIME_GO;
                break;
        }
        return 0;
}

unsigned fr__runtime_detect(void) {
        unsigned found = 0;
        dl_iterate_phdr(visit, &found);
        /* Sanitizer runtimes linked statically into the program (clang's
         * default) export their entry points. */
        if (dlsym(RTLD_DEFAULT, "__asan_init") || dlsym(RTLD_DEFAULT, "__tsan_init") ||
            dlsym(RTLD_DEFAULT, "__msan_init") || dlsym(RTLD_DEFAULT, "__hwasan_init"))
                found |= FR_RUNTIME_SANITIZER | FR_RUNTIME_SIGSEGV;
        atomic_fetch_or_explicit(&kind, found, memory_order_relaxed);
        return fr__runtime_kind();
}
