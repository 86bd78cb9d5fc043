/* Symbolization of recorded code addresses with libdw (elfutils), without the
 * process: from the loaded objects a trace's MAPS batches describe.
 *
 * A symbolizer caches one opened object per (path, build id, load bias), so
 * that converting many stacks opens each file once. The file on disk must be
 * the one that was loaded: when its GNU build id differs from the recorded
 * one, or it is missing or unreadable, its addresses stay unresolved (a wrong
 * name is worse than none). Separate debug info is found the usual way
 * (build-id tree and .gnu_debuglink under /usr/lib/debug).
 *
 * Each module also keeps the result of every address it resolved (up to
 * FR_SYM_MAX_CACHED over the symbolizer), so that a long-lived symbolizer
 * (the daemon's, across snapshots of one process) resolves each distinct
 * address once.
 *
 * Not thread-safe: one symbolizer per thread at a time. */
#ifndef FR_SYMBOLIZE_H
#define FR_SYMBOLIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fr_symbolizer;
struct fr_sym_object;

/* A loaded object as recorded: file offset `offset` was mapped at `start`,
 * up to `limit` (exclusive). */
struct fr_object {
        const char *path;
        const uint8_t *build_id; /* NULL or build_id_len 0: not recorded, not checked */
        size_t build_id_len;
        uint64_t start, limit, offset;
};

/* Why an object cannot be symbolized. */
enum fr_sym_status {
        FR_SYM_OK = 0,
        FR_SYM_MISSING,           /* no such file, or it cannot be opened */
        FR_SYM_BUILD_ID_MISMATCH, /* the file is another build than the one loaded */
        FR_SYM_NOT_ELF,           /* not an ELF file libdw can read */
        FR_SYM_NO_SEGMENT,        /* no PT_LOAD segment holds the mapped file offset */
};

/* One source-level frame at an address; several when code was inlined. */
struct fr_sym_frame {
        const char *function;    /* display name (demangled); NULL: unknown */
        const char *system_name; /* linkage name as in the symbol table; NULL: same */
        const char *file;        /* source file of the function; NULL: unknown */
        int64_t line;            /* line at the address (or of the inlined call); 0: unknown */
        int64_t start_line;      /* first line of the function; 0: unknown */
};

#define FR_SYM_MAX_FRAMES 32 /* inline depth kept; deeper inlining is cut at the outermost */

struct fr_sym_result {
        size_t nframes;   /* 0: unresolved */
        struct fr_sym_frame frames[FR_SYM_MAX_FRAMES]; /* innermost first */
        bool has_dwarf;   /* names, files, lines and inlines came from DWARF */
};

/* fr_symbolizer_new - an empty symbolizer. root (may be NULL) is prefixed to
 * every object path, to read the files of another mount namespace (such as
 * /proc/PID/root) or a sysroot. Returns 0 or -ENOMEM. */
int fr_symbolizer_new(const char *root, struct fr_symbolizer **ret);

/* fr_symbolizer_free - close every object; invalidates all handles and every
 * string a result pointed to. NULL is fine. */
void fr_symbolizer_free(struct fr_symbolizer *s);

#define FR_SYM_MAX_CACHED 200000 /* results kept, about 100 bytes each */
/* fr_symbolizer_cached - results cached now (the daemon bounds its memory). */
size_t fr_symbolizer_cached(const struct fr_symbolizer *s);
/* fr_symbolizer_files - files open now: one per path and build id, however
 * many processes (load biases) their handles came from. */
size_t fr_symbolizer_files(const struct fr_symbolizer *s);

/* fr_sym_open - the handle for a loaded object, opened on first use and
 * cached. An object that cannot be symbolized still gets a handle, whose
 * status says why. Returns 0 or -ENOMEM. The handle lives as long as s. */
int fr_sym_open(struct fr_symbolizer *s, const struct fr_object *obj, struct fr_sym_object **ret);

enum fr_sym_status fr_sym_object_status(const struct fr_sym_object *o);
const char *fr_sym_status_text(enum fr_sym_status status);

/* fr_symbolize - the frames at a runtime address of the object (as in the
 * process, inside [start, limit) of the object it was opened with). The
 * address must point into the instruction: for a return address, pass
 * address - 1. Fills *ret (nframes 0 when nothing is known about the
 * address); its strings stay valid until fr_symbolizer_free. Returns 0 or
 * -ENOMEM. */
int fr_symbolize(struct fr_sym_object *o, uint64_t addr, struct fr_sym_result *ret);

#endif
