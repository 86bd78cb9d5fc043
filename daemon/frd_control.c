/* flightrecctl's requests: status, and triggers that wait for the results of
 * every snapshot they started (docs/daemon.md, wire protocol). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frd.h"

static Flightrec__Wire__SnapshotResult *make_result(uint32_t pid, const char *comm,
                                                    const char *trace, const char *pprof,
                                                    const char *error) {
        Flightrec__Wire__SnapshotResult *r = malloc(sizeof *r);
        flightrec__wire__snapshot_result__init(r);
        r->pid = pid;
        r->comm = strdup(comm);
        r->trace_path = strdup(trace);
        r->pprof_path = strdup(pprof);
        r->error = strdup(error);
        return r;
}

static void free_results(Flightrec__Wire__SnapshotResult **v, unsigned n) {
        for (unsigned i = 0; i < n; i++) {
                free(v[i]->comm);
                free(v[i]->trace_path);
                free(v[i]->pprof_path);
                free(v[i]->error);
                free(v[i]);
        }
        free(v);
}

static void ctl_req_reply(struct frd_ctl_req *q, const char *error) {
        if (q->c) {
                Flightrec__Wire__TriggerReply m = FLIGHTREC__WIRE__TRIGGER_REPLY__INIT;
                m.results = q->results;
                m.n_results = q->nresults;
                m.error = (char *)error;
                fr_frame f = FLIGHTREC__WIRE__FRAME__INIT;
                f.msg_case = FLIGHTREC__WIRE__FRAME__MSG_TRIGGER_REPLY;
                f.trigger_reply = &m;
                q->c->req = NULL;
                frd_conn_send(q->c, &f, -1);
        }
        free_results(q->results, q->nresults);
        free(q);
}

void frd_ctl_add_result(struct frd_ctl_req *q, uint32_t pid, const char *comm, const char *trace,
                        const char *pprof, const char *error) {
        Flightrec__Wire__SnapshotResult *res = make_result(pid, comm, trace, pprof, error);
        Flightrec__Wire__SnapshotResult **v = realloc(q->results, (q->nresults + 1) * sizeof *v);
        if (v) {
                q->results = v;
                q->results[q->nresults++] = res;
        }
        if (--q->pending == 0)
                ctl_req_reply(q, "");
}

struct frd_ctl_req *frd_ctl_req_new(struct frd_conn *c) {
        if (c->req) {
                frd_refuse(c, "one trigger at a time per connection");
                return NULL;
        }
        struct frd_ctl_req *q = calloc(1, sizeof *q);
        if (!q) {
                frd_refuse(c, "out of memory");
                return NULL;
        }
        q->c = c;
        c->req = q;
        q->pending = 1; /* held while starting */
        return q;
}

void frd_ctl_req_release(struct frd_ctl_req *q, const char *error) {
        if (--q->pending == 0)
                ctl_req_reply(q, q->nresults ? "" : error);
}

void frd_ctl_reply_error(struct frd_conn *c, const char *error) {
        struct frd_ctl_req *q = frd_ctl_req_new(c);
        if (q)
                frd_ctl_req_release(q, error);
}

/* flightrecctl snapshot [--pid]: the default trigger (frd_trigger.c). */
void frd_ctl_trigger(struct frd_conn *c, const Flightrec__Wire__CtlTrigger *t) {
        char source[96], why[512];
        snprintf(source, sizeof source, "flightrecctl (pid %u uid %u)", c->cred.pid, c->cred.uid);
        struct frd_trigger_req r = {.name = "default",
                                    .reason = t->reason[0] ? t->reason : "flightrecctl trigger",
                                    .source = source,
                                    .pid = t->pid,
                                    .ctl = c};
        frd_trigger_request(&r, why, sizeof why);
}

void frd_ctl_status(struct frd_conn *c) {
        unsigned n = 0;
        for (struct frd_conn *a = D.conns; a; a = a->next)
                n += a->kind == FRD_PEER_AGENT;
        Flightrec__Wire__AgentInfo *infos = calloc(n ? n : 1, sizeof *infos);
        Flightrec__Wire__AgentInfo **ptrs = calloc(n ? n : 1, sizeof *ptrs);
        if (!infos || !ptrs) {
                free(infos);
                free(ptrs);
                frd_refuse(c, "out of memory");
                return;
        }
        unsigned i = 0;
        for (struct frd_conn *a = D.conns; a; a = a->next) {
                if (a->kind != FRD_PEER_AGENT)
                        continue;
                Flightrec__Wire__AgentInfo *x = &infos[i];
                flightrec__wire__agent_info__init(x);
                x->pid = a->pid;
                x->comm = a->comm;
                x->exe = a->exe;
                x->connected_since_ns = a->since_ns;
                x->generations = a->stat_gens;
                x->bytes = a->stat_bytes;
                x->uid = a->cred.uid;
                x->hz = a->hz;
                x->sampler = a->sampler;
                x->unwind = a->unwind;
                x->unwind_stats = &a->unwind_stats;
                x->period_ms = a->period_ms;
                x->snapshot_in_progress = a->reading != NULL;
                ptrs[i++] = x;
        }
        Flightrec__Wire__StatusReply m = FLIGHTREC__WIRE__STATUS_REPLY__INIT;
        m.agents = ptrs;
        m.n_agents = n;
        m.snapshots_written = D.written;
        m.snapshots_failed = D.failed;
        m.output_dir = D.cfg.output_dir;
        m.daemon = FRD_DAEMON_NAME;
        size_t ntrig = 0;
        char **trig = frd_trigger_status_lines(&ntrig);
        m.triggers = trig;
        m.n_triggers = trig ? ntrig : 0;
        unsigned running = 0;
        frd_hook_counts(&m.hooks_run, &m.hooks_failed, &running);
        m.hooks_running = running;
        fr_frame f = FLIGHTREC__WIRE__FRAME__INIT;
        f.msg_case = FLIGHTREC__WIRE__FRAME__MSG_STATUS_REPLY;
        f.status_reply = &m;
        frd_conn_send(c, &f, -1);
        frd_trigger_status_free(trig, ntrig);
        free(infos);
        free(ptrs);
}
