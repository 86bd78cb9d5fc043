/* flightrecd's configuration: INI (inih), every key documented with its
 * default in config/flightrecd.conf. Unknown sections or keys, and values out
 * of range, are errors: a reload with a bad file keeps the old configuration. */
#include <errno.h>
#include <grp.h>
#include <ini.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "frd.h"
#include "fr_size.h"

void frd_config_defaults(struct frd_config *c) {
        memset(c, 0, sizeof *c);
        snprintf(c->socket_path, sizeof c->socket_path, "%s", FRD_DEFAULT_SOCKET);
        c->socket_mode = 0666;
        snprintf(c->output_dir, sizeof c->output_dir, "%s", FRD_DEFAULT_OUTPUT);
        c->max_agents = 4096;
        c->max_frame_bytes = 65536;
        c->snapshot_timeout_ms = 30000;
        c->max_trace_bytes = 1ull << 30;
        c->workers = 2;
        c->ring_snapshots = true;
        c->max_inflight_bytes = 256ull << 20;
        c->symbolize = true;
        c->timeline = true;
        c->post_mortem = true;
        c->agent_users.any = true;
        c->max_total_bytes = 1ull << 30;
        c->max_files = 1000;
        c->max_age_s = 7 * 86400;
        c->on_snapshot_timeout_ms = 30000;
}

struct parse_state {
        struct frd_config *c;
        char err[512];
};

/* Unsigned number with an optional suffix: sizes K M G T (1024, fr_parse_size),
 * durations ms s m h d. kind: 0 plain number, 1 size, 2 duration in ms, 3 duration in s. */
static int parse_num(const char *s, int kind, uint64_t min, uint64_t max, uint64_t *ret) {
        if (kind == 1)
                return fr_parse_size(s, 1, min, max, ret);
        char *end;
        if (!*s || *s == '-')
                return -EINVAL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 0);
        if (errno || end == s)
                return -EINVAL;
        uint64_t mul = 1;
        if ((kind == 2 || kind == 3) && *end) {
                uint64_t ms;
                if (strcmp(end, "ms") == 0)
                        ms = 1;
                else if (strcmp(end, "s") == 0)
                        ms = 1000;
                else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
                        ms = 60000;
                else if (strcmp(end, "h") == 0)
                        ms = 3600000;
                else if (strcmp(end, "d") == 0)
                        ms = 86400000;
                else
                        return -EINVAL;
                if (kind == 3) {
                        if (ms < 1000)
                                return -EINVAL;
                        mul = ms / 1000;
                } else {
                        mul = ms;
                }
                end += strlen(end);
        } else if (kind == 3 && !*end) {
                mul = 1;
        }
        if (*end)
                return -EINVAL;
        if (v > UINT64_MAX / mul)
                return -ERANGE;
        v *= mul;
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

int frd_parse_num(const char *s, int kind, uint64_t min, uint64_t max, uint64_t *ret) {
        return parse_num(s, kind, min, max, ret);
}

static int parse_bool(const char *s, bool *ret) {
        if (!strcasecmp(s, "yes") || !strcasecmp(s, "true") || !strcmp(s, "1") ||
            !strcasecmp(s, "on"))
                *ret = true;
        else if (!strcasecmp(s, "no") || !strcasecmp(s, "false") || !strcmp(s, "0") ||
                 !strcasecmp(s, "off"))
                *ret = false;
        else
                return -EINVAL;
        return 0;
}

/* "*" (anyone), empty (nobody), or names / numeric ids separated by spaces or commas. */
static int parse_ids(const char *s, bool groups, struct frd_idlist *l, char *err, size_t errlen) {
        memset(l, 0, sizeof *l);
        char buf[4096];
        if (snprintf(buf, sizeof buf, "%s", s) >= (int)sizeof buf) {
                snprintf(err, errlen, "list too long");
                return -EINVAL;
        }
        char *save;
        for (char *t = strtok_r(buf, " ,\t", &save); t; t = strtok_r(NULL, " ,\t", &save)) {
                if (strcmp(t, "*") == 0) {
                        l->any = true;
                        continue;
                }
                if (l->n >= FRD_MAX_IDS) {
                        snprintf(err, errlen, "more than %d entries", FRD_MAX_IDS);
                        return -EINVAL;
                }
                char *end;
                errno = 0;
                unsigned long v = strtoul(t, &end, 10);
                if (!*end && !errno && end != t && v < UINT32_MAX) {
                        l->ids[l->n++] = (uint32_t)v;
                        continue;
                }
                if (groups) {
                        struct group *g = getgrnam(t);
                        if (!g) {
                                snprintf(err, errlen, "no group named '%s'", t);
                                return -EINVAL;
                        }
                        l->ids[l->n++] = g->gr_gid;
                } else {
                        struct passwd *p = getpwnam(t);
                        if (!p) {
                                snprintf(err, errlen, "no user named '%s'", t);
                                return -EINVAL;
                        }
                        l->ids[l->n++] = p->pw_uid;
                }
        }
        return 0;
}

static int set_string(char *dst, size_t len, const char *v, bool absolute, char *err,
                      size_t errlen) {
        if (strlen(v) >= len) {
                snprintf(err, errlen, "longer than %zu bytes", len - 1);
                return -EINVAL;
        }
        if (absolute && v[0] != '/') {
                snprintf(err, errlen, "'%s' is not an absolute path", v);
                return -EINVAL;
        }
        strcpy(dst, v);
        return 0;
}

static int handler(void *user, const char *section, const char *name, const char *value) {
        struct parse_state *st = user;
        struct frd_config *c = st->c;
        char why[300] = "";
        uint64_t v = 0;
        int r = -ENOENT;
#define IS(sec, key) (strcmp(section, sec) == 0 && strcmp(name, key) == 0)
#define NUM(kind, lo, hi)                                                                          \
        ((r = parse_num(value, kind, lo, hi, &v)) < 0                                              \
                 ? snprintf(why, sizeof why, "'%s' is not a %s in %llu..%llu", value,              \
                            kind == 1 ? "size" : kind >= 2 ? "duration" : "number",                \
                            (unsigned long long)(lo), (unsigned long long)(hi)),                   \
         r : 0)
        if (IS("daemon", "socket")) {
                r = set_string(c->socket_path, sizeof c->socket_path, value, true, why, sizeof why);
        } else if (IS("daemon", "socket_mode")) {
                char *end;
                unsigned long m = strtoul(value, &end, 8);
                r = (*value && !*end && m <= 0777) ? 0 : -EINVAL;
                if (r < 0)
                        snprintf(why, sizeof why, "'%s' is not an octal mode", value);
                c->socket_mode = (unsigned)m;
        } else if (IS("daemon", "socket_group")) {
                r = set_string(c->socket_group, sizeof c->socket_group, value, false, why,
                               sizeof why);
                if (!r && *value && !getgrnam(value)) {
                        snprintf(why, sizeof why, "no group named '%s'", value);
                        r = -EINVAL;
                }
        } else if (IS("daemon", "output_dir")) {
                r = set_string(c->output_dir, sizeof c->output_dir, value, true, why, sizeof why);
        } else if (IS("daemon", "output_group")) {
                r = set_string(c->output_group, sizeof c->output_group, value, false, why,
                               sizeof why);
                if (!r && *value && !getgrnam(value)) {
                        snprintf(why, sizeof why, "no group named '%s'", value);
                        r = -EINVAL;
                }
        } else if (IS("daemon", "max_agents")) {
                if ((r = NUM(0, 1, 1000000)) == 0)
                        c->max_agents = (unsigned)v;
        } else if (IS("daemon", "max_frame_bytes")) {
                if ((r = NUM(1, 4096, 16u << 20)) == 0)
                        c->max_frame_bytes = (uint32_t)v;
        } else if (IS("daemon", "snapshot_timeout")) {
                if ((r = NUM(2, 100, 3600000)) == 0)
                        c->snapshot_timeout_ms = (unsigned)v;
        } else if (IS("daemon", "max_trace_bytes")) {
                if ((r = NUM(1, 1u << 20, 1ull << 40)) == 0)
                        c->max_trace_bytes = v;
        } else if (IS("daemon", "workers")) {
                if ((r = NUM(0, 1, 64)) == 0)
                        c->workers = (unsigned)v;
        } else if (IS("daemon", "snapshot_path")) {
                if (strcmp(value, "ring") == 0 || strcmp(value, "pipe") == 0) {
                        c->ring_snapshots = value[0] == 'r';
                        r = 0;
                } else {
                        snprintf(why, sizeof why, "'%s' is not ring or pipe", value);
                        r = -EINVAL;
                }
        } else if (IS("daemon", "max_inflight_bytes")) {
                if ((r = NUM(1, 1u << 20, 1ull << 40)) == 0)
                        c->max_inflight_bytes = v;
        } else if (IS("daemon", "symbolize") || IS("daemon", "post_mortem") ||
                   IS("daemon", "timeline")) {
                r = parse_bool(value, strcmp(name, "symbolize") == 0   ? &c->symbolize
                                      : strcmp(name, "timeline") == 0 ? &c->timeline
                                                                      : &c->post_mortem);
                if (r < 0)
                        snprintf(why, sizeof why, "'%s' is not yes or no", value);
        } else if (IS("access", "agent_users")) {
                r = parse_ids(value, false, &c->agent_users, why, sizeof why);
        } else if (IS("access", "agent_groups")) {
                r = parse_ids(value, true, &c->agent_groups, why, sizeof why);
        } else if (IS("access", "control_users")) {
                r = parse_ids(value, false, &c->control_users, why, sizeof why);
        } else if (IS("access", "control_groups")) {
                r = parse_ids(value, true, &c->control_groups, why, sizeof why);
        } else if (IS("retention", "max_total_bytes")) {
                if ((r = NUM(1, 0, 1ull << 50)) == 0)
                        c->max_total_bytes = v;
        } else if (IS("retention", "max_files")) {
                if ((r = NUM(0, 0, 10000000)) == 0)
                        c->max_files = (unsigned)v;
        } else if (IS("retention", "max_age")) {
                if ((r = NUM(3, 0, 100ull * 365 * 86400)) == 0)
                        c->max_age_s = v;
        } else if ((r = frd_config_ext_key(c, section, name, value, why, sizeof why)) == -ENOENT) {
                snprintf(why, sizeof why, "unknown key");
        }
#undef IS
#undef NUM
        if (r < 0 && !st->err[0])
                snprintf(st->err, sizeof st->err, "[%s] %s: %s", section, name, why);
        return r < 0 ? 0 : 1;
}

static int finish(int line, const char *where, struct parse_state *st, char *err, size_t errlen) {
        if (line == -1) {
                snprintf(err, errlen, "%s: cannot open: %s", where, strerror(errno));
                return -errno ? -errno : -EIO;
        }
        if (line == -2) {
                snprintf(err, errlen, "%s: out of memory", where);
                return -ENOMEM;
        }
        if (line > 0) {
                if (st->err[0])
                        snprintf(err, errlen, "%s:%d: %s", where, line, st->err);
                else
                        snprintf(err, errlen, "%s:%d: syntax error", where, line);
                return -EINVAL;
        }
        return 0;
}

int frd_config_load(const char *path, bool must_exist, struct frd_config *c, char *err,
                   size_t errlen) {
        frd_config_defaults(c);
        FILE *f = fopen(path, "re");
        if (!f) {
                int e = errno;
                if (e == ENOENT && !must_exist)
                        return 0;
                snprintf(err, errlen, "%s: cannot open: %s", path, strerror(e));
                return -e;
        }
        struct parse_state st = {.c = c};
        int line = ini_parse_file(f, handler, &st);
        fclose(f);
        return finish(line, path, &st, err, errlen);
}

int frd_config_parse_string(const char *text, struct frd_config *c, char *err, size_t errlen) {
        frd_config_defaults(c);
        struct parse_state st = {.c = c};
        if (!*text)
                return 0;
        FILE *f = fmemopen((void *)text, strlen(text), "r");
        if (!f) {
                snprintf(err, errlen, "fmemopen: %s", strerror(errno));
                return -errno;
        }
        int line = ini_parse_file(f, handler, &st);
        fclose(f);
        return finish(line, "(string)", &st, err, errlen);
}

static bool in_list(const struct frd_idlist *l, uint32_t id) {
        for (unsigned i = 0; i < l->n; i++)
                if (l->ids[i] == id)
                        return true;
        return false;
}

bool frd_config_allows(const struct frd_idlist *users, const struct frd_idlist *groups, uid_t uid,
                      gid_t gid) {
        if (users->any || groups->any || in_list(users, uid) || in_list(groups, gid))
                return true;
        if (!groups->n)
                return false;
        /* Supplementary groups of the peer's user. */
        struct passwd *pw = getpwuid(uid);
        if (!pw)
                return false;
        gid_t list[256];
        int n = 256;
        if (getgrouplist(pw->pw_name, gid, list, &n) < 0)
                n = 256;
        for (int i = 0; i < n; i++)
                if (in_list(groups, list[i]))
                        return true;
        return false;
}
