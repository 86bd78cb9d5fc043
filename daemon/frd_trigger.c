/* Named triggers (issue 15; docs/daemon.md, "Named triggers"): every way of
 * asking for a snapshot - SIGUSR1, flightrecctl snapshot and trigger,
 * fr_snapshot() and fr_trigger() in an agent - goes through a trigger of
 * flightrecd.conf ([trigger NAME]) or the built-in "default" (no delay, no
 * limits, the request's pid else every agent: the behaviour before triggers).
 *
 * A trigger is refused (answered with the reason, logged) during its
 * cooldown or past max_per_hour; taken, it starts a pending snapshot that a
 * libevent timer fires `after` later (never blocking the loop), and the
 * triggers of the same name that arrive meanwhile join it. fr_snapshot() is a
 * synchronous call: it goes through the limits but is taken at once. On the
 * loop's thread only. */
#include <errno.h>
#include <event2/event.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frd.h"

#define RECENT 16
#define MAX_PIDS 64

struct pending {
        struct frd_trigger_def def;
        struct event *timer;
        uint64_t due_ms;
        char reason[FR_WIRE_MAX_REASON + 1];
        bool everyone;                 /* a request named no pid */
        uint32_t pids[MAX_PIDS];
        unsigned npids;
        struct frd_ctl_req **waiters;
        unsigned nwaiters;
        unsigned joined;
};

/* What a trigger name did so far; kept across reloads (by name). */
struct tstate {
        struct tstate *next;
        char name[FRD_TRIGGER_NAME + 1];
        uint64_t fired_ms[FRD_MAX_PER_HOUR]; /* accept times, a ring */
        unsigned nfired, first;
        uint64_t last_ms;
        uint64_t accepted, joined, refused;
        struct pending *pend;
};

struct recent {
        uint64_t real_ns;
        char line[384];
};

static struct {
        struct tstate *states;
        struct recent recent[RECENT];
        unsigned nrecent, next_recent;
        unsigned npending;
} T;

static uint64_t mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const struct frd_trigger_def builtin_default = {.name = "default"};

static const struct frd_trigger_def *find_def(const char *name) {
        const struct frd_trigger_def *d = frd_config_trigger(&D.cfg, name);
        if (!d && strcmp(name, "default") == 0)
                d = &builtin_default;
        return d;
}

static struct tstate *state_of(const char *name) {
        for (struct tstate *s = T.states; s; s = s->next)
                if (strcmp(s->name, name) == 0)
                        return s;
        struct tstate *s = calloc(1, sizeof *s);
        if (!s)
                return NULL;
        snprintf(s->name, sizeof s->name, "%s", name);
        s->next = T.states;
        T.states = s;
        return s;
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...) {
        struct recent *r = &T.recent[T.next_recent];
        T.next_recent = (T.next_recent + 1) % RECENT;
        if (T.nrecent < RECENT)
                T.nrecent++;
        r->real_ns = frd_realtime_ns();
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->line, sizeof r->line, fmt, ap);
        va_end(ap);
}

static const char *scope_text(const struct frd_trigger_def *d, char *buf, size_t len) {
        switch (d->scope) {
        case FRD_SCOPE_CALLER:
                return "caller";
        case FRD_SCOPE_ALL:
                return "all";
        case FRD_SCOPE_COMM:
                snprintf(buf, len, "comm:%s", d->pattern);
                return buf;
        default:
                return "the request's pid, else all";
        }
}

/* Fire times older than an hour leave the ring. */
static void expire(struct tstate *s, uint64_t now) {
        while (s->nfired && now - s->fired_ms[s->first] >= 3600000u) {
                s->first = (s->first + 1) % FRD_MAX_PER_HOUR;
                s->nfired--;
        }
}

static bool targets(const struct pending *p, const struct frd_conn *a) {
        bool by_pid = false;
        for (unsigned i = 0; i < p->npids; i++)
                by_pid |= p->pids[i] == a->pid;
        switch (p->def.scope) {
        case FRD_SCOPE_CALLER:
                return by_pid;
        case FRD_SCOPE_COMM:
                if (fnmatch(p->def.pattern, a->comm, 0) != 0)
                        return false;
                return p->everyone || by_pid;
        default: /* REQUEST, ALL: every agent, unless every request named a pid */
                return p->everyone || by_pid;
        }
}

static void add_pid(struct pending *p, uint32_t pid) {
        if (!pid) {
                p->everyone = true;
                return;
        }
        for (unsigned i = 0; i < p->npids; i++)
                if (p->pids[i] == pid)
                        return;
        if (p->npids < MAX_PIDS)
                p->pids[p->npids++] = pid;
        else
                p->everyone = p->def.scope != FRD_SCOPE_CALLER; /* too many to name */
}

static int add_waiter(struct pending *p, struct frd_conn *c) {
        struct frd_ctl_req *q = frd_ctl_req_new(c);
        if (!q)
                return -ENOMEM;
        struct frd_ctl_req **v = realloc(p->waiters, (p->nwaiters + 1) * sizeof *v);
        if (!v) {
                frd_ctl_req_release(q, "out of memory");
                return -ENOMEM;
        }
        p->waiters = v;
        p->waiters[p->nwaiters++] = q;
        return 0;
}

static void pending_free(struct tstate *s) {
        struct pending *p = s->pend;
        if (!p)
                return;
        if (p->timer)
                event_free(p->timer);
        free(p->waiters);
        free(p);
        s->pend = NULL;
        T.npending--;
}

/* The delay is over (or there was none): snapshot every target agent; the
 * waiters get the results. */
static void fire(struct tstate *s) {
        struct pending *p = s->pend;
        unsigned n = 0;
        char why[160] = "";
        if (D.stopping) {
                snprintf(why, sizeof why, "the daemon is stopping");
        } else {
                for (struct frd_conn *a = D.conns; a; a = a->next) {
                        if (a->kind != FRD_PEER_AGENT || a->closing || !targets(p, a))
                                continue;
                        if (p->nwaiters == 0)
                                frd_snapshot_agent(a, p->reason, NULL, 0);
                        for (unsigned i = 0; i < p->nwaiters; i++) /* each waits (snapshot joined) */
                                frd_snapshot_agent(a, p->reason, p->waiters[i], 0);
                        if (a->reading && !a->reading->trigger[0])
                                snprintf(a->reading->trigger, sizeof a->reading->trigger, "%s",
                                         s->name);
                        n++;
                }
                if (n == 0 && p->npids == 1 && !p->everyone)
                        snprintf(why, sizeof why, "no agent with pid %u is connected", p->pids[0]);
                else if (n == 0)
                        snprintf(why, sizeof why, "no agent is connected%s",
                                 p->def.scope == FRD_SCOPE_COMM ? " whose comm matches the scope"
                                                                : "");
        }
        frd_log(FRD_NOTICE, "trigger %s (%s): snapshot of %u agent%s%s%s%s", s->name, p->reason, n,
                n == 1 ? "" : "s", p->joined ? ", with joined triggers" : "", why[0] ? ": " : "",
                why);
        note("%s fired (%s): %u agent%s, %u joined", s->name, p->reason, n, n == 1 ? "" : "s",
             p->joined);
        for (unsigned i = 0; i < p->nwaiters; i++)
                frd_ctl_req_release(p->waiters[i], why);
        pending_free(s);
        frd_maybe_exit();
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
        (void)fd;
        (void)what;
        fire(arg);
}

/* A refusal: logged, noted, answered to a waiting flightrecctl. */
static int refuse(struct tstate *s, const struct frd_trigger_req *r, int err, char *why,
                  size_t whylen, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int refuse(struct tstate *s, const struct frd_trigger_req *r, int err, char *why,
                  size_t whylen, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
        if (s)
                s->refused++;
        frd_log(FRD_WARN, "%s: trigger refused: %s", r->source, why);
        note("%s from %s refused: %s", r->name && r->name[0] ? r->name : "default", r->source,
             why);
        if (r->ctl)
                frd_ctl_reply_error(r->ctl, why);
        return err;
}

int frd_trigger_request(const struct frd_trigger_req *r, char *ret_why, size_t whylen) {
        const char *name = r->name && r->name[0] ? r->name : "default";
        const char *reason = r->reason && r->reason[0] ? r->reason : r->source;
        ret_why[0] = '\0';
        const struct frd_trigger_def *d = find_def(name);
        if (!d)
                return refuse(NULL, r, -ENOENT, ret_why, whylen,
                              "no trigger named '%s' ([trigger %s] in flightrecd.conf)", name, name);
        struct tstate *s = state_of(name);
        if (!s)
                return refuse(NULL, r, -ENOMEM, ret_why, whylen, "out of memory");
        if (D.stopping)
                return refuse(s, r, -ESHUTDOWN, ret_why, whylen, "the daemon is stopping");
        if (d->scope == FRD_SCOPE_CALLER && !r->pid)
                return refuse(s, r, -EINVAL, ret_why, whylen,
                              "trigger %s has scope = caller: name the process (--pid)", name);
        /* A pending snapshot of this trigger: join it (fr_snapshot waits for
         * nobody's delay: taken at once, below). */
        if (s->pend && !r->agent_trigger_id) {
                struct pending *p = s->pend;
                if (r->ctl && add_waiter(p, r->ctl) < 0)
                        return -ENOMEM;
                add_pid(p, r->pid);
                p->joined++;
                s->joined++;
                uint64_t now = mono_ms();
                frd_log(FRD_INFO, "%s: trigger %s joins the pending snapshot (in %llu ms)",
                        r->source, name,
                        (unsigned long long)(p->due_ms > now ? p->due_ms - now : 0));
                note("%s from %s joined the pending snapshot (%s)", name, r->source, reason);
                return 0;
        }
        uint64_t now = mono_ms();
        if (d->cooldown_ms && s->last_ms && now - s->last_ms < d->cooldown_ms)
                return refuse(s, r, -EBUSY, ret_why, whylen,
                              "trigger %s: cooldown, %llu ms left of %u ms", name,
                              (unsigned long long)(d->cooldown_ms - (now - s->last_ms)),
                              d->cooldown_ms);
        expire(s, now);
        if (d->max_per_hour && s->nfired >= d->max_per_hour)
                return refuse(s, r, -EBUSY, ret_why, whylen,
                              "trigger %s: max_per_hour = %u reached; the next in %llu s", name,
                              d->max_per_hour,
                              (unsigned long long)((3600000u - (now - s->fired_ms[s->first])) /
                                                           1000u +
                                                   1));
        /* Taken: counted now, so that a storm cannot pass the limit. */
        if (s->nfired == FRD_MAX_PER_HOUR) {
                s->first = (s->first + 1) % FRD_MAX_PER_HOUR;
                s->nfired--;
        }
        s->fired_ms[(s->first + s->nfired++) % FRD_MAX_PER_HOUR] = now;
        s->last_ms = now;
        s->accepted++;
        if (r->agent_trigger_id) { /* fr_snapshot(): now, answered to the agent */
                note("%s from %s taken now (fr_snapshot: %s)", name, r->source, reason);
                frd_agent_trigger_now(r->agent, r->agent_trigger_id, reason);
                if (r->agent->reading && !r->agent->reading->trigger[0])
                        snprintf(r->agent->reading->trigger, sizeof r->agent->reading->trigger,
                                 "%s", name);
                return 0;
        }
        struct pending *p = calloc(1, sizeof *p);
        if (!p)
                return refuse(s, r, -ENOMEM, ret_why, whylen, "out of memory");
        p->def = *d;
        snprintf(p->reason, sizeof p->reason, "%s", reason);
        s->pend = p;
        T.npending++;
        add_pid(p, r->pid);
        if (r->ctl && add_waiter(p, r->ctl) < 0) {
                pending_free(s);
                return -ENOMEM;
        }
        unsigned after = r->has_after ? r->after_ms : d->after_ms;
        p->due_ms = now + after;
        if (after == 0) {
                fire(s);
                return 0;
        }
        p->timer = evtimer_new(D.base, on_timer, s);
        struct timeval tv = {after / 1000, (long)(after % 1000) * 1000};
        if (!p->timer || evtimer_add(p->timer, &tv) < 0) {
                frd_log(FRD_ERR, "trigger %s: no timer, snapshot now", name);
                fire(s);
                return 0;
        }
        frd_log(FRD_NOTICE, "%s: trigger %s taken, snapshot in %u ms (%s)", r->source, name, after,
                reason);
        note("%s from %s taken: snapshot in %u ms (%s)", name, r->source, after, reason);
        return 0;
}

void frd_ctl_named_trigger(struct frd_conn *c, const Flightrec__Wire__CtlNamedTrigger *t) {
        char source[96], why[512];
        snprintf(source, sizeof source, "flightrecctl (pid %u uid %u)", c->cred.pid, c->cred.uid);
        struct frd_trigger_req r = {.name = t->name,
                                    .reason = t->reason[0] ? t->reason : "flightrecctl trigger",
                                    .source = source,
                                    .pid = t->pid,
                                    .has_after = t->has_after,
                                    .after_ms = t->after_ms,
                                    .ctl = c};
        frd_trigger_request(&r, why, sizeof why);
}

static int push_line(char ***v, size_t *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int push_line(char ***v, size_t *n, const char *fmt, ...) {
        char buf[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        char **nv = realloc(*v, (*n + 1) * sizeof *nv);
        if (!nv)
                return -ENOMEM;
        *v = nv;
        if (!(nv[*n] = strdup(buf)))
                return -ENOMEM;
        (*n)++;
        return 0;
}

char **frd_trigger_status_lines(size_t *ret_n) {
        char **v = NULL;
        size_t n = 0;
        uint64_t now = mono_ms();
        char sc[300];
        /* The triggers in force, the built-in default first. */
        for (int i = -1; i < (int)D.cfg.ntriggers; i++) {
                const struct frd_trigger_def *d =
                        i < 0 ? find_def("default") : &D.cfg.triggers[i];
                if (i >= 0 && strcmp(d->name, "default") == 0)
                        continue;
                struct tstate *s = NULL;
                for (struct tstate *x = T.states; x; x = x->next)
                        if (strcmp(x->name, d->name) == 0)
                                s = x;
                if (s)
                        expire(s, now);
                push_line(&v, &n,
                          "trigger %s: after %u ms, max_per_hour %u, cooldown %u ms, scope %s; "
                          "taken %llu, joined %llu, refused %llu, %u in the last hour",
                          d->name, d->after_ms, d->max_per_hour, d->cooldown_ms,
                          scope_text(d, sc, sizeof sc), (unsigned long long)(s ? s->accepted : 0),
                          (unsigned long long)(s ? s->joined : 0),
                          (unsigned long long)(s ? s->refused : 0), s ? s->nfired : 0);
        }
        for (struct tstate *s = T.states; s; s = s->next)
                if (s->pend)
                        push_line(&v, &n, "pending %s: snapshot in %llu ms (%s), %u joined, %u waiting",
                                  s->name,
                                  (unsigned long long)(s->pend->due_ms > now ? s->pend->due_ms - now
                                                                             : 0),
                                  s->pend->reason, s->pend->joined, s->pend->nwaiters);
        for (unsigned k = 0; k < T.nrecent; k++) {
                const struct recent *r =
                        &T.recent[(T.next_recent + RECENT - T.nrecent + k) % RECENT];
                time_t sec = (time_t)(r->real_ns / 1000000000u);
                struct tm tm;
                char ts[32];
                gmtime_r(&sec, &tm);
                strftime(ts, sizeof ts, "%H:%M:%S", &tm);
                push_line(&v, &n, "recent %s.%03llu UTC %s", ts,
                          (unsigned long long)(r->real_ns / 1000000u % 1000u), r->line);
        }
        *ret_n = n;
        return v;
}

void frd_trigger_status_free(char **v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

void frd_trigger_reload(void) {
        char sc[300];
        for (unsigned i = 0; i < D.cfg.ntriggers; i++) {
                const struct frd_trigger_def *d = &D.cfg.triggers[i];
                frd_log(FRD_INFO, "trigger %s: after %u ms, max_per_hour %u, cooldown %u ms, scope %s",
                        d->name, d->after_ms, d->max_per_hour, d->cooldown_ms,
                        scope_text(d, sc, sizeof sc));
        }
}

unsigned frd_trigger_pending(void) {
        return T.npending;
}

void frd_trigger_stop(void) {
        while (T.states) {
                struct tstate *s = T.states;
                T.states = s->next;
                if (s->pend) {
                        for (unsigned i = 0; i < s->pend->nwaiters; i++)
                                frd_ctl_req_release(s->pend->waiters[i], "the daemon is stopping");
                        pending_free(s);
                }
                free(s);
        }
}
