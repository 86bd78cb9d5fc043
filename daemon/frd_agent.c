/* Agents: the Hello (access, identity, the post-mortem ring), their own
 * triggers and statistics, and what happens when one goes away. */
#include <event2/event.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "frd.h"

/* ---- agents ---------------------------------------------------------------------------- */
void frd_agent_hello(struct frd_conn *c, const Flightrec__Wire__Hello *h) {
        if (!frd_config_allows(&D.cfg.agent_users, &D.cfg.agent_groups, c->cred.uid, c->cred.gid)) {
                frd_refuse(c, "uid %u gid %u may not connect as an agent ([access] agent_users, "
                          "agent_groups)",
                       c->cred.uid, c->cred.gid);
                return;
        }
        if (h->pid != (uint32_t)c->cred.pid) {
                frd_refuse(c, "hello.pid %u does not match the connecting process %u (another pid "
                          "namespace?)",
                       h->pid, c->cred.pid);
                return;
        }
        if (D.nagents >= D.cfg.max_agents) {
                frd_refuse(c, "%u agents connected already (max_agents)", D.nagents);
                return;
        }
        if (D.stopping) {
                frd_refuse(c, "the daemon is stopping");
                return;
        }
        if (h->ring) {
                /* A ring we cannot use costs the agent its post-mortem, not
                 * its connection. */
                c->ring_fd = fr_wire_reader_take_fd(&c->rd);
                const char *why = frd_pm_check_ring(c->ring_fd);
                if (why) {
                        frd_log(FRD_WARN, "agent pid %u: no post-mortem: hello.ring: %s", h->pid, why);
                        if (c->ring_fd >= 0)
                                close(c->ring_fd);
                        c->ring_fd = -1;
                } else {
                        c->pidfd = frd_pm_pidfd((pid_t)h->pid);
                        c->ring_snapshots = h->ring_snapshots;
                }
        }
        frd_pm_forget((pid_t)h->pid);
        c->kind = FRD_PEER_AGENT;
        c->pid = h->pid;
        snprintf(c->comm, sizeof c->comm, "%s", h->comm);
        snprintf(c->exe, sizeof c->exe, "%s", h->exe);
        for (size_t i = 0; i < h->build_id.len; i++)
                snprintf(c->build_id + 2 * i, 3, "%02x", h->build_id.data[i]);
        c->hz = h->hz;
        c->sampler = h->sampler;
        c->unwind = h->unwind;
        flightrec__wire__agent_stats__init(&c->unwind_stats);
        c->period_ms = h->period_ms;
        c->generations = h->generations;
        c->max_bytes = h->max_bytes;
        c->since_ns = frd_realtime_ns();
        D.nagents++;
        if (c->hello_timer)
                event_del(c->hello_timer);
        frd_log(FRD_INFO,
               "agent %s[%u] connected (uid %u, exe %s, build id %s, %u Hz, %u ms x %u, %s)",
               c->comm, c->pid, c->cred.uid, c->exe, c->build_id[0] ? c->build_id : "none", c->hz,
               c->period_ms, c->generations,
               c->ring_fd >= 0 ? "post-mortem ring" : "no post-mortem ring");
        frd_notify_status();
        Flightrec__Wire__Welcome w = FLIGHTREC__WIRE__WELCOME__INIT;
        w.version = FR_WIRE_VERSION;
        w.daemon = FRD_DAEMON_NAME;
        fr_frame f = FLIGHTREC__WIRE__FRAME__INIT;
        f.msg_case = FLIGHTREC__WIRE__FRAME__MSG_WELCOME;
        f.welcome = &w;
        frd_conn_send(c, &f, -1);
}

/* fr_snapshot() (no name): the default trigger, taken now and answered to
 * the agent; fr_trigger() (a name): that trigger, nobody waits. */
void frd_agent_trigger(struct frd_conn *c, const Flightrec__Wire__Trigger *t) {
        char source[FR_WIRE_MAX_COMM + 64], why[512];
        snprintf(source, sizeof source, "agent %s[%u]", c->comm, c->pid);
        struct frd_trigger_req r = {.name = t->name,
                                    .reason = t->reason,
                                    .source = source,
                                    .pid = c->pid,
                                    .agent = c,
                                    .agent_trigger_id = t->name[0] ? 0 : t->id};
        if (frd_trigger_request(&r, why, sizeof why) < 0 && !t->name[0]) {
                Flightrec__Wire__TriggerReply m = FLIGHTREC__WIRE__TRIGGER_REPLY__INIT;
                m.error = why;
                fr_frame f = FLIGHTREC__WIRE__FRAME__INIT;
                f.msg_case = FLIGHTREC__WIRE__FRAME__MSG_TRIGGER_REPLY;
                f.trigger_reply = &m;
                frd_conn_send(c, &f, -1);
        }
}

void frd_agent_trigger_now(struct frd_conn *c, uint64_t id, const char *reason) {
        if (D.stopping) {
                Flightrec__Wire__TriggerReply m = FLIGHTREC__WIRE__TRIGGER_REPLY__INIT;
                m.error = "the daemon is stopping";
                fr_frame f = FLIGHTREC__WIRE__FRAME__INIT;
                f.msg_case = FLIGHTREC__WIRE__FRAME__MSG_TRIGGER_REPLY;
                f.trigger_reply = &m;
                frd_conn_send(c, &f, -1);
                return;
        }
        if (c->reading && (c->reading->state == FRD_SNAP_READING ||
                           c->reading->state == FRD_SNAP_DRAINED ||
                           c->reading->state == FRD_SNAP_REQUESTED))
                return; /* the agent counts its trigger into the snapshot it is writing */
        if (c->reading) {
                /* Written before the trigger: take another one right after. */
                c->queued_trigger = id;
                snprintf(c->queued_reason, sizeof c->queued_reason, "%s", reason);
                return;
        }
        frd_snapshot_agent(c, reason, NULL, id);
}

void frd_agent_stats(struct frd_conn *c, const Flightrec__Wire__AgentStats *s) {
        c->stat_gens = s->generations;
        c->stat_bytes = s->bytes;
        c->unwind_stats = *s;
        c->unwind_stats.base.unknown_fields = NULL; /* freed with the frame */
        c->unwind_stats.base.n_unknown_fields = 0;
}

void frd_agent_gone(struct frd_conn *c) {
        D.nagents--;
        frd_log(FRD_INFO, "agent %s[%u] disconnected", c->comm, c->pid);
        frd_notify_status();
        /* Did it die? frd_pm_watch takes both descriptors. */
        if (c->ring_fd >= 0 && !D.stopping && D.cfg.post_mortem) {
                frd_pm_watch(D.base, c->ring_fd, c->pidfd, (pid_t)c->pid, c->comm, c->exe);
                c->ring_fd = c->pidfd = -1;
        }
}
