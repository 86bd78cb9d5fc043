/* flightrecd internals: configuration (fd_config.c), the event loop and
 * connections (flightrecd.c, fd_conn.c), snapshot output and retention
 * (fd_output.c). See docs/daemon.md. */
#ifndef FR_FD_H
#define FR_FD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FD_DEFAULT_CONFIG "/etc/flightrec/flightrecd.conf"
#define FD_DEFAULT_SOCKET "/run/flightrec/agent.sock"
#define FD_DEFAULT_OUTPUT "/var/lib/flightrec"
#define FD_MAX_IDS 64

/* ---- configuration (fd_config.c) ---------------------------------------- */
struct fd_idlist {
        bool any;           /* "*" */
        unsigned n;
        uint32_t ids[FD_MAX_IDS];
};

struct fd_config {
        /* [daemon] */
        char socket_path[108];
        unsigned socket_mode;
        char socket_group[64];      /* "" : the daemon's own group */
        char output_dir[4096];
        char output_group[64];      /* "" : the daemon's own group */
        unsigned max_agents;
        uint32_t max_frame_bytes;
        unsigned snapshot_timeout_ms;
        uint64_t max_trace_bytes;
        unsigned workers;
        bool symbolize;
        bool post_mortem;           /* snapshot a process that dies without a clean stop */
        /* [access] */
        struct fd_idlist agent_users, agent_groups;
        struct fd_idlist control_users, control_groups;
        /* [retention] */
        uint64_t max_total_bytes;   /* 0: no limit */
        unsigned max_files;         /* 0: no limit */
        uint64_t max_age_s;         /* 0: no limit */
};

void fd_config_defaults(struct fd_config *c);
/* fd_config_load - defaults, then the INI file at path. A missing file is an
 * error only when must_exist. Returns 0 or -errno with a message naming the
 * file, line and key in err. */
int fd_config_load(const char *path, bool must_exist, struct fd_config *c, char *err,
                   size_t errlen);
/* fd_config_parse_string - the same on INI text (tests). */
int fd_config_parse_string(const char *text, struct fd_config *c, char *err, size_t errlen);
/* fd_config_allows - does the id list pair admit a peer with uid/gid (its
 * primary group and supplementary groups are looked up)? */
bool fd_config_allows(const struct fd_idlist *users, const struct fd_idlist *groups, uid_t uid,
                      gid_t gid);

/* ---- logging (flightrecd.c) ---------------------------------------------- */
enum { FD_ERR = 3, FD_WARN = 4, FD_NOTICE = 5, FD_INFO = 6, FD_DEBUG = 7 };
void fd_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- snapshot output (fd_output.c) --------------------------------------- */
struct event_base;

/* One snapshot of one process on its way to the output directory. The loop
 * fills the trace (lz4, streamed into trace_tmp) and the raw bytes; a worker
 * thread converts to pprof and renames both files into place. */
struct fd_job {
        struct fd_job *next;
        uint64_t id;
        pid_t pid;
        char comm[256];
        char stem[160];
        int trace_fd;
        char trace_tmp[4300], trace_path[4300], pprof_tmp[4300], pprof_path[4300];
        uint8_t *raw;      /* fd_raw_reserve / fd_raw_free */
        size_t raw_len, raw_cap;
        bool partial;      /* the agent never confirmed the end: accept a partial tail */
        int ring_fd;       /* >= 0: post-mortem; the worker appends the ring to raw */
        bool postmortem;
        uint64_t max_trace_bytes;
        bool symbolize;
        gid_t gid;         /* (gid_t)-1: leave the group */
        /* Results, set by the worker. */
        int error;
        char errmsg[512];
        uint64_t trace_bytes, pprof_bytes, nsamples;
        double convert_ms;
        void *owner;
};

/* The raw trace buffer: anonymous memory asking for transparent huge pages,
 * so that receiving 64 MiB costs tens of page faults rather than 16000 (each
 * costly on a VM). fd_raw_reserve - make room for at least cap bytes. */
int fd_raw_reserve(struct fd_job *j, size_t cap);
void fd_raw_free(struct fd_job *j);

/* fd_output_start - workers threads; done(job) runs on the loop once a job
 * is finished (files in place, or error set and temporaries removed). */
int fd_output_start(struct event_base *base, unsigned workers, void (*done)(struct fd_job *));
void fd_output_submit(struct fd_job *j);
/* fd_output_busy - jobs queued or converting. */
unsigned fd_output_busy(void);
void fd_output_stop(void);
/* fd_output_create - choose a free stem in dir for (comm, pid, now) and create
 * the trace temporary (O_EXCL, mode 0640). Returns 0 or -errno. */
int fd_output_create(const char *dir, struct fd_job *j);
/* fd_output_discard - close and unlink the temporaries. */
void fd_output_discard(struct fd_job *j);
/* fd_output_clean_tmp - remove *.tmp left in dir by a daemon killed mid-write. */
void fd_output_clean_tmp(const char *dir);
/* fd_retention - delete the oldest snapshots of dir beyond the limits. */
void fd_retention(const char *dir, uint64_t max_total_bytes, unsigned max_files, uint64_t max_age_s);

/* ---- post-mortem (fd_postmortem.c) -------------------------------------- */
/* A process that died without a clean stop, and its ring (proto/pm_ring.h). */
struct fd_pm_dead {
        int ring_fd;
        pid_t pid;
        char comm[256];
        char exe[4096];
};
/* fd_pm_init - died(d) runs on the loop for each death found (it owns
 * d->ring_fd); ended() after a watch that ends without one. */
void fd_pm_init(void (*died)(struct fd_pm_dead *), void (*ended)(void));
/* fd_pm_check_ring - NULL when fd is a usable ring (a sealed memfd with a
 * valid header), else why not. */
const char *fd_pm_check_ring(int fd);
/* fd_pm_pidfd - a pidfd for pid, or a negative errno (old kernel, seccomp). */
int fd_pm_pidfd(pid_t pid);
/* fd_pm_watch - an agent's connection ended: watch for up to 1 s whether the
 * process died without a clean stop. Takes ring_fd and pidfd (may be -1).
 * Returns 0 or -ENOMEM (both descriptors closed). */
int fd_pm_watch(struct event_base *base, int ring_fd, int pidfd, pid_t pid, const char *comm,
                const char *exe);
/* fd_pm_forget - pid said HELLO again (it exec'd): stop watching it. */
void fd_pm_forget(pid_t pid);
/* fd_pm_watching - ended agents still being watched. */
unsigned fd_pm_watching(void);

#endif
