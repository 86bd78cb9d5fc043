/* flightrecd internals, one section per file: logging (frd_log.c),
 * configuration (frd_config.c), the daemon's state (frd_state.c), main,
 * signals and reload (frd_main.c), the listening socket (frd_listen.c), connections and framing
 * (frd_conn.c), agents (frd_agent.c), snapshots (frd_snapshot.c), control
 * requests (frd_control.c), output and retention (frd_output.c), post-mortem
 * watches (frd_postmortem.c). See docs/daemon.md and docs/life-of-a-snapshot.md. */
#ifndef FR_FRD_H
#define FR_FRD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <event2/util.h>

#define FRD_DEFAULT_CONFIG "/etc/flightrec/flightrecd.conf"
#define FRD_DEFAULT_SOCKET "/run/flightrec/agent.sock"
#define FRD_DEFAULT_OUTPUT "/var/lib/flightrec"
#define FRD_MAX_IDS 64

/* ---- configuration (frd_config.c; [trigger NAME] and on_snapshot keys in
 * frd_config_ext.c) ------------------------------------------------------- */
#define FRD_MAX_TRIGGERS 32
#define FRD_TRIGGER_NAME 63
#define FRD_MAX_PER_HOUR 3600
enum frd_scope { FRD_SCOPE_REQUEST, FRD_SCOPE_CALLER, FRD_SCOPE_ALL, FRD_SCOPE_COMM };
/* A [trigger NAME] section (docs/daemon.md, "Named triggers"). */
struct frd_trigger_def {
        char name[FRD_TRIGGER_NAME + 1];
        unsigned after_ms;     /* the snapshot is taken this long after the trigger */
        unsigned max_per_hour; /* 0: no limit */
        unsigned cooldown_ms;  /* 0: none */
        enum frd_scope scope;  /* REQUEST (unset): the request's pid, else all agents */
        char pattern[256];     /* scope = comm:PATTERN (fnmatch) */
};

struct frd_idlist {
        bool any;           /* "*" */
        unsigned n;
        uint32_t ids[FRD_MAX_IDS];
};

struct frd_config {
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
        bool ring_snapshots;        /* snapshot_path = ring: read live rings from the memfd */
        uint64_t max_inflight_bytes; /* ring bytes copied and not yet written out, all snapshots */
        bool symbolize;
        bool timeline;              /* write <stem>.pftrace too */
        bool post_mortem;           /* snapshot a process that dies without a clean stop */
        /* [access] */
        struct frd_idlist agent_users, agent_groups;
        struct frd_idlist control_users, control_groups;
        /* [retention] */
        uint64_t max_total_bytes;   /* 0: no limit */
        unsigned max_files;         /* 0: no limit */
        uint64_t max_age_s;         /* 0: no limit */
        /* [trigger NAME] sections */
        struct frd_trigger_def triggers[FRD_MAX_TRIGGERS];
        unsigned ntriggers;
        /* [daemon] on_snapshot hook (frd_hook.c) */
        char on_snapshot[4096];     /* "": none */
        bool on_snapshot_shell;     /* run it with /bin/sh -c */
        unsigned on_snapshot_timeout_ms;
};

void frd_config_defaults(struct frd_config *c);
/* frd_config_load - defaults, then the INI file at path. A missing file is an
 * error only when must_exist. Returns 0 or -errno with a message naming the
 * file, line and key in err. */
int frd_config_load(const char *path, bool must_exist, struct frd_config *c, char *err,
                   size_t errlen);
/* frd_config_parse_string - the same on INI text (tests). */
int frd_config_parse_string(const char *text, struct frd_config *c, char *err, size_t errlen);
/* frd_config_allows - does the id list pair admit a peer with uid/gid (its
 * primary group and supplementary groups are looked up)? */
bool frd_config_allows(const struct frd_idlist *users, const struct frd_idlist *groups, uid_t uid,
                      gid_t gid);
/* frd_parse_num - a number (kind 0), size (1), duration in ms (2) or in s (3)
 * within min..max: 0, -EINVAL or -ERANGE. */
int frd_parse_num(const char *s, int kind, uint64_t min, uint64_t max, uint64_t *ret);
/* frd_config_ext_key - the keys frd_config.c leaves to frd_config_ext.c:
 * [trigger NAME] sections and [daemon] on_snapshot*. -ENOENT: not one of
 * them; else 0 or -EINVAL with why. */
int frd_config_ext_key(struct frd_config *c, const char *section, const char *name,
                       const char *value, char *why, size_t whylen);
/* frd_config_trigger - the section named name, or NULL. */
const struct frd_trigger_def *frd_config_trigger(const struct frd_config *c, const char *name);

/* ---- logging (frd_log.c) --------------------------------------------------- */
enum { FRD_ERR = 3, FRD_WARN = 4, FRD_NOTICE = 5, FRD_INFO = 6, FRD_DEBUG = 7 };
void frd_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* frd_log_setup - journal: "<N>" priority prefixes; debug: log FRD_DEBUG too. */
void frd_log_setup(bool journal, bool debug);

/* ---- snapshot output (frd_output.c) --------------------------------------- */
struct event_base;

/* One snapshot of one process on its way to the output directory. The loop
 * fills the trace (lz4, streamed into trace_tmp) and the raw bytes; a worker
 * thread converts to pprof and renames both files into place. */
struct frd_job {
        struct frd_job *next;
        uint64_t id;
        pid_t pid;
        char comm[256];
        char stem[160];
        int trace_fd;
        char trace_tmp[4300], trace_path[4300], pprof_tmp[4300], pprof_path[4300];
        char timeline_tmp[4300], timeline_path[4300];
        char offcpu_tmp[4300], offcpu_path[4300]; /* <stem>.offcpu.pb.gz: when there were waits */
        uint8_t *raw;      /* frd_raw_reserve / frd_raw_free */
        size_t raw_len, raw_cap;
        bool partial;      /* the agent never confirmed the end: accept a partial tail */
        int ring_fd;       /* >= 0: the worker appends the ring's extents to raw */
        bool postmortem;
        bool live_ring;    /* a live ring snapshot: the agent holds index_gen */
        uint64_t index_gen;
        uint64_t snap_id;  /* for frd_output's copied callback */
        uint64_t inflight; /* bytes counted against max_inflight_bytes */
        char exe[4100];    /* post-mortem: for the header the worker writes */
        char crash_tmp[4300], crash_path[4300]; /* <stem>.crash.txt, with a crash record */
        bool crashed;      /* set by the worker: the ring held a crash record */
        char pm_reason[2048]; /* set by the worker: how the process ended */
        char pm_salvage[300]; /* set by the worker: what salvage of the live generation said */
        uint64_t max_trace_bytes;
        bool symbolize;
        bool timeline;     /* also the Perfetto timeline, <stem>.pftrace */
        gid_t gid;         /* (gid_t)-1: leave the group */
        /* Results, set by the worker. */
        int error;
        char errmsg[512];
        uint64_t trace_bytes, pprof_bytes, nsamples;
        uint64_t timeline_bytes; /* 0: none written (off, or its conversion failed) */
        char timeline_err[256];  /* why it failed, the snapshot itself succeeding */
        uint64_t offcpu_bytes, nwaits; /* offcpu_bytes 0: no off-CPU profile written */
        double convert_ms, copy_ms, lz4_ms, pprof_ms, timeline_ms;
        void *owner;
};

/* The raw trace buffer: anonymous memory asking for transparent huge pages,
 * so that receiving 64 MiB costs tens of page faults rather than 16000 (each
 * costly on a VM). frd_raw_reserve - make room for at least cap bytes. */
int frd_raw_reserve(struct frd_job *j, size_t cap);
void frd_raw_free(struct frd_job *j);

/* frd_output_start - workers threads; done(job) runs on the loop once a job
 * is finished (files in place, or error set and temporaries removed). */
int frd_output_start(struct event_base *base, unsigned workers, void (*done)(struct frd_job *));
/* frd_output_on_copied - copied(snap_id) runs on the loop as soon as a ring
 * job's extents are copied (the agent may unpin them then). */
void frd_output_on_copied(void (*copied)(uint64_t snap_id));
/* frd_output_set_inflight - the bound on ring bytes held by all jobs. */
void frd_output_set_inflight(uint64_t max_bytes);
void frd_output_submit(struct frd_job *j);
/* frd_output_busy - jobs queued or converting. */
unsigned frd_output_busy(void);
void frd_output_stop(void);
/* frd_output_cancel_timelines - at SIGTERM: the timeline exports running stop
 * (their snapshots keep the trace and the profile), later ones are skipped. */
void frd_output_cancel_timelines(void);
/* frd_output_create - choose a free stem in dir for (comm, pid, now) and create
 * the trace temporary (O_EXCL, mode 0640). Returns 0 or -errno. */
int frd_output_create(const char *dir, struct frd_job *j);
/* frd_output_discard - close and unlink the temporaries. */
void frd_output_discard(struct frd_job *j);
/* frd_output_clean_tmp - remove *.tmp left in dir by a daemon killed mid-write. */
void frd_output_clean_tmp(const char *dir);
/* frd_retention - delete the oldest snapshots of dir beyond the limits. */
void frd_retention(const char *dir, uint64_t max_total_bytes, unsigned max_files, uint64_t max_age_s);

/* ---- post-mortem (frd_postmortem.c) -------------------------------------- */
/* A process that died without a clean stop, and its ring (proto/pm_ring.h). */
struct frd_pm_dead {
        int ring_fd;
        pid_t pid;
        char comm[256];
        char exe[4096];
};
/* frd_pm_init - died(d) runs on the loop for each death found (it owns
 * d->ring_fd); ended() after a watch that ends without one. */
void frd_pm_init(void (*died)(struct frd_pm_dead *), void (*ended)(void));
/* frd_pm_check_ring - NULL when fd is a usable ring (a sealed memfd with a
 * valid header), else why not. */
const char *frd_pm_check_ring(int fd);
/* frd_pm_pidfd - a pidfd for pid, or a negative errno (old kernel, seccomp). */
int frd_pm_pidfd(pid_t pid);
/* frd_pm_watch - an agent's connection ended: watch for up to 1 s whether the
 * process died without a clean stop. Takes ring_fd and pidfd (may be -1).
 * Returns 0 or -ENOMEM (both descriptors closed). */
int frd_pm_watch(struct event_base *base, int ring_fd, int pidfd, pid_t pid, const char *comm,
                const char *exe);
/* frd_pm_forget - pid said HELLO again (it exec'd): stop watching it. */
void frd_pm_forget(pid_t pid);
/* frd_pm_watching - ended agents still being watched. */
unsigned frd_pm_watching(void);


/* ---- the daemon's state (frd_state.c) ------------------------------------ */
#include <sys/socket.h>
#include <time.h>

#include "wire.h"

#define FRD_DAEMON_NAME "flightrecd " FR_VERSION
#define FRD_HELLO_TIMEOUT_S 10
#define FRD_MAX_OUTQ (32u << 20)
#define FRD_PIPE_CHUNK (1u << 20)

enum frd_peer_kind { FRD_PEER_NEW, FRD_PEER_AGENT, FRD_PEER_CTL };

struct frd_conn;
struct frd_ctl_req;

/* Where one snapshot is (frd_snapshot.c). Reading ends once the pipe is at
 * its end and the agent confirmed (or went away: a partial tail). */
enum frd_snap_state {
        FRD_SNAP_READING,    /* the pipe is open, the agent has not answered */
        FRD_SNAP_CONFIRMED,  /* SnapshotDone{0} came; the pipe is still being read */
        FRD_SNAP_DRAINED,    /* the pipe is at its end; waiting for SnapshotDone */
        FRD_SNAP_CONVERTING, /* the data is complete: with a worker */
        /* Ring snapshots (from_ring): */
        FRD_SNAP_REQUESTED,  /* waiting for the agent to hold its ring */
        FRD_SNAP_COPYING,    /* a worker copies the held extents; then Release */
};

/* One snapshot of one agent (or of a dead process's ring). */
struct frd_snap {
        struct frd_snap *next;    /* all snapshots in progress */
        uint64_t id;
        enum frd_snap_state state;
        struct frd_conn *agent;   /* NULL once the agent disconnected */
        int pipe_fd;
        struct event *rev, *timer;
        struct fr_lz4_out *lz;
        struct frd_job *job;
        struct timespec t0;
        double transfer_ms;       /* request to the data's end */
        double lz4_ms;            /* of which compressing */
        double first_ms;          /* request to the first byte */
        size_t expect;            /* bytes the agent last said it holds, + slack */
        struct frd_ctl_req **waiters;
        unsigned nwaiters;
        uint64_t trigger_id;      /* the agent's own TRIGGER, answered by the agent side */
        bool from_ring;           /* read from the agent's ring memfd, not a pipe */
        char reason[FR_WIRE_MAX_REASON + 1];
        double answer_ms;         /* ring: request to SnapshotDone */
        uint64_t agent_cpu_ns, advance_ns; /* as the agent reported them */
        char trigger[FRD_TRIGGER_NAME + 1]; /* the named trigger that took it ("" default) */
};

/* A flightrecctl trigger waiting for its snapshots (frd_control.c). */
struct frd_ctl_req {
        struct frd_conn *c;       /* NULL once the client went away */
        unsigned pending;
        Flightrec__Wire__SnapshotResult **results;
        unsigned nresults;
};

struct frd_outbuf {
        struct frd_outbuf *next;
        uint8_t *data;
        size_t len, off;
        int fd;                   /* passed with the first byte, then closed */
};

/* One peer on the socket (frd_conn.c): an agent or flightrecctl. */
struct frd_conn {
        struct frd_conn *next;
        int fd;
        enum frd_peer_kind kind;
        struct ucred cred;
        struct event *rev, *wev, *hello_timer;
        struct fr_wire_reader rd;
        struct frd_outbuf *outq, **outq_tail;
        size_t outq_bytes;
        bool closing;             /* close once the output queue is flushed */
        bool dead;                /* closed; freed from the loop later */
        struct frd_conn *next_dead;
        /* agent */
        uint32_t pid;
        char comm[FR_WIRE_MAX_COMM + 1];
        char exe[FR_WIRE_MAX_PATH + 1];
        char build_id[2 * FR_WIRE_MAX_BUILD_ID + 1];
        uint32_t hz, period_ms, generations, sampler, unwind;
        bool ring_snapshots;      /* Hello.ring_snapshots and a usable ring */
        uint64_t max_bytes, stat_gens, stat_bytes;
        Flightrec__Wire__AgentStats unwind_stats; /* the last AgentStats (unwinder figures) */
        uint64_t since_ns;
        int ring_fd, pidfd;       /* post-mortem: the agent's ring, its process (or -1) */
        struct frd_snap *reading; /* the snapshot whose pipe is being read */
        uint64_t queued_trigger;  /* TRIGGER that came after `reading` was written */
        char queued_reason[FR_WIRE_MAX_REASON + 1];
        /* ctl */
        struct frd_ctl_req *req;
};

/* The daemon: one instance, on the loop's thread only. */
struct frd_daemon {
        struct event_base *base;
        struct frd_config cfg;
        const char *config_path;
        bool config_explicit;
        const char *opt_socket, *opt_output;
        int listen_fd;
        bool socket_activated, we_bound;
        char bound_path[108];
        struct event *listen_ev, *watchdog_ev, *retention_ev, *accept_pause;
        struct frd_conn *conns, *dead;
        struct event *reaper;
        struct frd_snap *snaps;
        unsigned nagents;
        uint64_t next_snap_id;
        uint64_t written, failed;
        bool stopping;
        gid_t out_gid;
        uint64_t watchdog_usec;
};
extern struct frd_daemon D;

/* frd_notify_status - STATUS= for systemd. */
void frd_notify_status(void);
/* frd_maybe_exit - when stopping and nothing is in progress, leave the loop. */
void frd_maybe_exit(void);
/* frd_resolve_group - name ("" : (gid_t)-1) to a gid: 0 or -ENOENT. */
int frd_resolve_group(const char *name, gid_t *ret);
uint64_t frd_realtime_ns(void);
/* frd_ms_since - milliseconds from t0 to now (CLOCK_MONOTONIC). */
double frd_ms_since(const struct timespec *t0);

/* ---- the listening socket (frd_listen.c) --------------------------------- */
/* frd_listen_open - the socket passed by systemd, or bind cfg.socket_path. */
int frd_listen_open(char *err, size_t errlen);
void frd_on_accept(evutil_socket_t lfd, short what, void *arg);
void frd_on_accept_pause(evutil_socket_t fd, short what, void *arg);

/* ---- connections and framing (frd_conn.c) -------------------------------- */
/* frd_conn_new - a peer just accepted: 0 or -errno (fd closed). */
int frd_conn_new(int fd);
/* frd_conn_send - queue a frame (and pass_fd, which the queue then owns).
 * Returns 0 or -errno (pass_fd closed). */
int frd_conn_send(struct frd_conn *c, const fr_frame *f, int pass_fd);
/* frd_refuse - tell the peer why, then disconnect it. */
void frd_refuse(struct frd_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* frd_conn_close - close now; freed from the loop (frd_reap), so that a
 * caller up the stack may still look at c->dead. */
void frd_conn_close(struct frd_conn *c);
void frd_reap(evutil_socket_t fd, short what, void *arg);

/* ---- agents (frd_agent.c) ------------------------------------------------- */
void frd_agent_hello(struct frd_conn *c, const Flightrec__Wire__Hello *h);
void frd_agent_trigger(struct frd_conn *c, const Flightrec__Wire__Trigger *t);
void frd_agent_stats(struct frd_conn *c, const Flightrec__Wire__AgentStats *s);
/* frd_agent_gone - an agent's connection closed: watch for its death. */
void frd_agent_gone(struct frd_conn *c);

/* ---- snapshots (frd_snapshot.c) ------------------------------------------- */
/* frd_snapshot_agent - snapshot agent c; q (may be NULL) waits for the
 * result. A snapshot already reading from that agent is joined. */
int frd_snapshot_agent(struct frd_conn *c, const char *reason, struct frd_ctl_req *q,
                       uint64_t trigger_id);
/* frd_snapshot_postmortem - a process died without a clean stop. */
void frd_snapshot_postmortem(struct frd_pm_dead *d);
/* frd_snapshot_done - the agent's SnapshotDone. */
void frd_snapshot_done(struct frd_conn *c, const Flightrec__Wire__SnapshotDone *d);
/* frd_snapshot_detach - agent c went away: its snapshots go on without it. */
void frd_snapshot_detach(struct frd_conn *c);
/* frd_snapshot_job_done - a worker finished (frd_output_start's callback). */
void frd_snapshot_job_done(struct frd_job *j);
/* frd_snapshot_copied - a worker copied ring snapshot snap_id: release it. */
void frd_snapshot_copied(uint64_t snap_id);
/* frd_snapshot_abort_all - at exit: discard every snapshot in progress. */
void frd_snapshot_abort_all(void);

/* ---- control requests (frd_control.c) ------------------------------------- */
void frd_ctl_status(struct frd_conn *c);
void frd_ctl_trigger(struct frd_conn *c, const Flightrec__Wire__CtlTrigger *t);
/* frd_ctl_add_result - one snapshot of q finished (q answers after the last). */
void frd_ctl_add_result(struct frd_ctl_req *q, uint32_t pid, const char *comm, const char *trace,
                        const char *pprof, const char *error);
/* frd_ctl_req_new - c waits for snapshots: a request held once (pending 1);
 * NULL when out of memory or c waits already (c refused). */
struct frd_ctl_req *frd_ctl_req_new(struct frd_conn *c);
/* frd_ctl_req_release - drop the hold; answers q once nothing is pending,
 * with error (may be "") when no snapshot was started. */
void frd_ctl_req_release(struct frd_ctl_req *q, const char *error);
/* frd_ctl_reply_error - answer a trigger request at once with error. */
void frd_ctl_reply_error(struct frd_conn *c, const char *error);
/* frd_ctl_named_trigger - flightrecctl trigger --name (frd_trigger.c). */
void frd_ctl_named_trigger(struct frd_conn *c, const Flightrec__Wire__CtlNamedTrigger *t);

/* ---- named triggers (frd_trigger.c) --------------------------------------- */
struct frd_trigger_req {
        const char *name;      /* NULL or "": "default" */
        const char *reason;    /* "" : the source */
        const char *source;    /* for the log: "SIGUSR1", "flightrecctl (pid 1 uid 0)" ... */
        uint32_t pid;          /* the caller, or --pid; 0: none */
        bool has_after;        /* after_ms overrides the section's after */
        unsigned after_ms;
        struct frd_conn *ctl;  /* flightrecctl waiting for the results, or NULL */
        struct frd_conn *agent; /* fr_snapshot (agent_trigger_id) of this agent */
        uint64_t agent_trigger_id; /* fr_snapshot: taken now, answered to the agent */
};
/* frd_trigger_request - one trigger: refused (rate, cooldown, unknown name:
 * -EBUSY / -ENOENT, why logged and in ret_why; a ctl requester is answered),
 * joined to the trigger's pending snapshot, started after its delay (a
 * libevent timer), or now. Returns 0 when taken. */
int frd_trigger_request(const struct frd_trigger_req *r, char *ret_why, size_t whylen);
/* frd_trigger_status_lines - pending and recent triggers, one line each
 * (malloc'd array of malloc'd strings, freed by frd_trigger_status_free). */
char **frd_trigger_status_lines(size_t *ret_n);
void frd_trigger_status_free(char **v, size_t n);
/* frd_trigger_reload - the configuration changed: log what is in force. */
void frd_trigger_reload(void);
/* frd_trigger_stop - at exit: pending triggers are dropped (answered). */
void frd_trigger_stop(void);
/* frd_trigger_pending - triggers waiting for their delay. */
unsigned frd_trigger_pending(void);
/* frd_agent_trigger_now - the agent path of fr_snapshot() (frd_agent.c),
 * once the default trigger took it. */
void frd_agent_trigger_now(struct frd_conn *c, uint64_t id, const char *reason);

/* ---- the on_snapshot hook (frd_hook.c) ------------------------------------ */
/* frd_hook_run - a snapshot's files are in place: start on_snapshot (if set)
 * in a child, watched by the loop, killed at on_snapshot_timeout. Never waits. */
void frd_hook_run(const struct frd_job *j, const char *reason, const char *trigger);
/* frd_hook_counts - hooks started, failed (exit != 0, signal, timeout, exec). */
void frd_hook_counts(uint64_t *ret_run, uint64_t *ret_failed, unsigned *ret_running);
/* frd_hook_stop - at exit: kill the hooks still running. */
void frd_hook_stop(void);

#endif
