/* The configuration keys of named triggers and of the on_snapshot hook
 * (issue 15), kept apart from frd_config.c: [trigger NAME] sections (after,
 * max_per_hour, cooldown, scope) and [daemon] on_snapshot, on_snapshot_shell,
 * on_snapshot_timeout. A bad value refuses the whole file, so a reload keeps
 * the old configuration (frd_main.c). Documented in config/flightrecd.conf. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "frd.h"

static bool good_name(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > FRD_TRIGGER_NAME)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-' || s[i] == '.'))
                        return false;
        return true;
}

const struct frd_trigger_def *frd_config_trigger(const struct frd_config *c, const char *name) {
        for (unsigned i = 0; i < c->ntriggers; i++)
                if (strcmp(c->triggers[i].name, name) == 0)
                        return &c->triggers[i];
        return NULL;
}

static int trigger_key(struct frd_config *c, const char *tname, const char *name,
                       const char *value, char *why, size_t whylen) {
        if (!good_name(tname)) {
                snprintf(why, whylen, "trigger name '%s' is not 1..%d of [A-Za-z0-9_.-]", tname,
                         FRD_TRIGGER_NAME);
                return -EINVAL;
        }
        struct frd_trigger_def *t = (struct frd_trigger_def *)frd_config_trigger(c, tname);
        if (!t) {
                if (c->ntriggers >= FRD_MAX_TRIGGERS) {
                        snprintf(why, whylen, "more than %d trigger sections", FRD_MAX_TRIGGERS);
                        return -EINVAL;
                }
                t = &c->triggers[c->ntriggers++];
                memset(t, 0, sizeof *t);
                snprintf(t->name, sizeof t->name, "%s", tname);
        }
        uint64_t v = 0;
        int r;
        if (strcmp(name, "after") == 0 || strcmp(name, "cooldown") == 0) {
                uint64_t max = name[0] == 'a' ? 3600000 : 86400000;
                r = frd_parse_num(value, 2, 0, max, &v);
                if (r < 0)
                        snprintf(why, whylen, "'%s' is not a duration in 0..%llu ms", value,
                                 (unsigned long long)max);
                else if (name[0] == 'a')
                        t->after_ms = (unsigned)v;
                else
                        t->cooldown_ms = (unsigned)v;
                return r;
        }
        if (strcmp(name, "max_per_hour") == 0) {
                r = frd_parse_num(value, 0, 0, FRD_MAX_PER_HOUR, &v);
                if (r < 0)
                        snprintf(why, whylen, "'%s' is not a number in 0..%d", value,
                                 FRD_MAX_PER_HOUR);
                else
                        t->max_per_hour = (unsigned)v;
                return r;
        }
        if (strcmp(name, "scope") == 0) {
                if (strcmp(value, "caller") == 0) {
                        t->scope = FRD_SCOPE_CALLER;
                } else if (strcmp(value, "all") == 0) {
                        t->scope = FRD_SCOPE_ALL;
                } else if (strncmp(value, "comm:", 5) == 0 && value[5] &&
                           strlen(value + 5) < sizeof t->pattern) {
                        t->scope = FRD_SCOPE_COMM;
                        snprintf(t->pattern, sizeof t->pattern, "%s", value + 5);
                } else {
                        snprintf(why, whylen, "'%s' is not caller, all or comm:PATTERN", value);
                        return -EINVAL;
                }
                return 0;
        }
        snprintf(why, whylen, "unknown key");
        return -EINVAL;
}

int frd_config_ext_key(struct frd_config *c, const char *section, const char *name,
                       const char *value, char *why, size_t whylen) {
        if (strncmp(section, "trigger ", 8) == 0)
                return trigger_key(c, section + 8, name, value, why, whylen);
        if (strcmp(section, "daemon") != 0)
                return -ENOENT;
        if (strcmp(name, "on_snapshot") == 0) {
                if (strlen(value) >= sizeof c->on_snapshot) {
                        snprintf(why, whylen, "longer than %zu bytes", sizeof c->on_snapshot - 1);
                        return -EINVAL;
                }
                snprintf(c->on_snapshot, sizeof c->on_snapshot, "%s", value);
                return 0;
        }
        if (strcmp(name, "on_snapshot_shell") == 0) {
                if (!strcasecmp(value, "yes") || !strcasecmp(value, "true") || !strcmp(value, "1"))
                        c->on_snapshot_shell = true;
                else if (!strcasecmp(value, "no") || !strcasecmp(value, "false") ||
                         !strcmp(value, "0"))
                        c->on_snapshot_shell = false;
                else {
                        snprintf(why, whylen, "'%s' is not yes or no", value);
                        return -EINVAL;
                }
                return 0;
        }
        if (strcmp(name, "on_snapshot_timeout") == 0) {
                uint64_t v;
                int r = frd_parse_num(value, 2, 100, 3600000, &v);
                if (r < 0)
                        snprintf(why, whylen, "'%s' is not a duration in 100..3600000 ms", value);
                else
                        c->on_snapshot_timeout_ms = (unsigned)v;
                return r;
        }
        return -ENOENT;
}
