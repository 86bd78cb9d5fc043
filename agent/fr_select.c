/* Whether this process records: decided first, in the constructor, before
 * anything costs (no thread, no descriptor kept, no allocation but inih's
 * parse on the stack). Host-wide use puts the agent in /etc/ld.so.preload, so
 * every process on the machine asks this question at start.
 *  - Who is chosen: FLIGHTREC_INCLUDE / FLIGHTREC_EXCLUDE, else the same keys
 *    of /etc/flightrec/agent.conf (host-wide loading only); globs (fnmatch)
 *    on the comm and the executable's path (docs/agent-design.md).
 *  - Secure-execution mode (AT_SECURE: setuid, setgid, file capabilities):
 *    every FLIGHTREC_* variable is ignored and removed from the environment;
 *    the agent stays off unless agent.conf says `setuid = record`, and then
 *    takes its settings from agent.conf alone and writes nothing locally.
 *  - Children: with FLIGHTREC_CHILDREN=no a recording process's exec'd
 *    children lose our entry of LD_PRELOAD (fr_exit.c calls fr__child_env). */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "fr_internal.h"

#define AGENT_CONF "/etc/flightrec/agent.conf"
#define LD_SO_PRELOAD "/etc/ld.so.preload"
#define LIB_NAME "libflightrec"

FR_EVERY_PROCESS_DATA struct fr_choice fr__choice = {.children = true};

FR_EVERY_PROCESS bool fr__secure(void) { return fr__choice.secure; }

FR_EVERY_PROCESS const char *fr__getenv(const char *name) { return fr__choice.secure ? NULL : getenv(name); }

/* ---- globs ---------------------------------------------------------------- */

/* One pattern: with a '/', against the executable's path; without, against
 * the comm and the executable's base name (the comm is cut at 15 bytes). */
FR_EVERY_PROCESS static bool glob_one(const char *pat, const char *comm, const char *exe) {
        if (strchr(pat, '/'))
                return fnmatch(pat, exe, 0) == 0;
        const char *base = strrchr(exe, '/');
        base = base ? base + 1 : exe;
        return fnmatch(pat, comm, 0) == 0 || (*base && fnmatch(pat, base, 0) == 0);
}

FR_EVERY_PROCESS bool fr__glob_list_match(const char *list, const char *comm, const char *exe) {
        char pat[FR_SELECT_LIST_BYTES];
        for (const char *s = list; *s;) {
                s += strspn(s, " \t,");
                size_t n = strcspn(s, " \t,");
                if (n == 0)
                        break;
                if (n < sizeof pat) {
                        memcpy(pat, s, n);
                        pat[n] = '\0';
                        if (glob_one(pat, comm, exe))
                                return true;
                }
                s += n;
        }
        return false;
}

/* ---- agent.conf ------------------------------------------------------------ */

FR_EVERY_PROCESS static int parse_bool(const char *v, bool *ret) {
        if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "on"))
                return *ret = true, 0;
        if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "off"))
                return *ret = false, 0;
        return -EINVAL;
}

static int copy_value(char *dst, size_t len, const char *v) {
        if (strlen(v) >= len)
                return -ENAMETOOLONG;
        strcpy(dst, v);
        return 0;
}

struct conf_state {
        struct fr_agent_conf *c;
        char *err;
        size_t errlen;
};

static int conf_key(void *user, const char *section, const char *key, const char *value) {
        struct conf_state *st = user;
        struct fr_agent_conf *c = st->c;
        int r = -ENOENT;
        if (strcmp(section, "agent") == 0) {
                if (!strcmp(key, "include"))
                        r = copy_value(c->include, sizeof c->include, value), c->has_include = r == 0;
                else if (!strcmp(key, "exclude"))
                        r = copy_value(c->exclude, sizeof c->exclude, value);
                else if (!strcmp(key, "children"))
                        r = parse_bool(value, &c->children);
                else if (!strcmp(key, "socket"))
                        r = *value == '/' ? copy_value(c->socket_path, sizeof c->socket_path, value)
                                          : -EINVAL;
                else if (!strcmp(key, "start_delay_ms")) {
                        char *end;
                        errno = 0;
                        unsigned long v = strtoul(value, &end, 10);
                        r = (*value && !*end && !errno && v <= 3600000 && *value != '-') ? 0 : -EINVAL;
                        if (r == 0)
                                c->start_delay_ms = (unsigned)v, c->has_start_delay = true;
                } else if (!strcmp(key, "setuid")) {
                        r = !strcmp(value, "off") || !strcmp(value, "record") ? 0 : -EINVAL;
                        c->setuid_record = r == 0 && !strcmp(value, "record");
                }
        }
        if (r < 0)
                snprintf(st->err, st->errlen, "[%s] %s = %s: %s", section, key, value,
                         r == -ENOENT ? "unknown key" : "bad value");
        return r == 0;
}

int fr__agent_conf_parse(const char *text, struct fr_agent_conf *ret, char *err, size_t errlen) {
        *ret = (struct fr_agent_conf){.children = true};
        struct conf_state st = {ret, err, errlen};
        err[0] = '\0';
        int line = ini_parse_string(text, conf_key, &st);
        if (line != 0) {
                if (!err[0])
                        snprintf(err, errlen, "syntax error");
                char where[32];
                snprintf(where, sizeof where, "line %d: ", line);
                size_t wl = strlen(where), el = strlen(err);
                if (wl + el < errlen) {
                        memmove(err + wl, err, el + 1);
                        memcpy(err, where, wl);
                }
                return -EINVAL;
        }
        return 0;
}

/* A small root-owned text file into buf: -ENOENT when absent. */
FR_EVERY_PROCESS static int read_small(const char *path, char *buf, size_t len) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        size_t n = 0;
        for (;;) {
                ssize_t k = read(fd, buf + n, len - 1 - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                n += (size_t)k;
                if (n == len - 1) {
                        close(fd);
                        return -EFBIG;
                }
        }
        close(fd);
        buf[n] = '\0';
        return 0;
}

/* ---- the decision ---------------------------------------------------------- */

FR_EVERY_PROCESS static void debug(const struct fr_choice *c, const char *fmt, const char *a, const char *b) {
        if (c->secure || !getenv("FLIGHTREC_DEBUG"))
                return;
        fr__log_error(fmt, a, b);
}

/* glibc removes the loader's unsafe variables in secure mode; ours go too, so
 * that a root child of a setuid program never reads them either. */
static void scrub_environment(void) {
        extern char **environ;
        for (size_t i = 0; environ && environ[i];) {
                if (strncmp(environ[i], "FLIGHTREC_", 10) == 0) {
                        char name[128];
                        size_t n = strcspn(environ[i], "=");
                        if (n < sizeof name) {
                                memcpy(name, environ[i], n);
                                name[n] = '\0';
                                unsetenv(name);
                                continue; /* the array moved down */
                        }
                }
                i++;
        }
}

FR_EVERY_PROCESS int fr__choose(struct fr_choice *ret) {
        struct fr_choice *c = ret;
        *c = (struct fr_choice){.children = true};
        c->secure = getauxval(AT_SECURE) != 0;
        if (c->secure)
                scrub_environment();
        /* How we were loaded: explicitly (LD_PRELOAD names us, or
         * FLIGHTREC_AUTOSTART=1), host-wide (/etc/ld.so.preload names us), or
         * linked by a program that calls fr_start itself. */
        const char *pre = fr__getenv("LD_PRELOAD"), *autostart = fr__getenv("FLIGHTREC_AUTOSTART");
        char buf[FR_SELECT_FILE_BYTES];
        if ((pre && strstr(pre, LIB_NAME)) || (autostart && !strcmp(autostart, "1")))
                c->how = FR_LOADED_EXPLICIT;
        else if (read_small(LD_SO_PRELOAD, buf, sizeof buf) == 0 && strstr(buf, LIB_NAME))
                c->how = FR_LOADED_HOSTWIDE;
        else
                return 0; /* linked: not ours to start */

        struct fr_agent_conf conf;
        const char *path = fr__getenv("FLIGHTREC_AGENT_CONF"); /* tests; never in secure mode */
        if (!path)
                path = AGENT_CONF;
        int r = read_small(path, buf, sizeof buf);
        if (r == -ENOENT) {
                conf = (struct fr_agent_conf){.children = true};
        } else if (r < 0) {
                debug(c, "%s: %s; not starting", path, strerror(-r));
                return r;
        } else {
                char err[256];
                r = fr__agent_conf_parse(buf, &conf, err, sizeof err);
                if (r < 0) {
                        debug(c, "%s: %s; not starting", path, err);
                        return r;
                }
        }
        if (c->secure && !conf.setuid_record)
                return 0; /* the default: setuid and setgid programs are not recorded */

        const char *include = fr__getenv("FLIGHTREC_INCLUDE"), *exclude = fr__getenv("FLIGHTREC_EXCLUDE");
        if (!include)
                include = c->how == FR_LOADED_HOSTWIDE ? conf.include : "*";
        if (!exclude)
                exclude = c->how == FR_LOADED_HOSTWIDE ? conf.exclude : "";
        const char *children = fr__getenv("FLIGHTREC_CHILDREN");
        c->children = conf.children;
        if (children && parse_bool(children, &c->children) < 0) {
                fr__log_error("FLIGHTREC_CHILDREN='%s' is neither 'yes' nor 'no'; not starting",
                              children);
                return -EINVAL;
        }
        const char *age = fr__getenv("FLIGHTREC_START_DELAY_MS");
        c->start_delay_ms = conf.has_start_delay ? conf.start_delay_ms : FR_DEFAULT_START_DELAY_MS;
        if (age) {
                char *end;
                errno = 0;
                unsigned long v = strtoul(age, &end, 10);
                if (!*age || *end || errno || v > 3600000 || *age == '-') {
                        fr__log_error("FLIGHTREC_START_DELAY_MS='%s' is not a number in 0..3600000; "
                                      "not starting", age);
                        return -EINVAL;
                }
                c->start_delay_ms = (unsigned)v;
        }
        memcpy(c->socket_path, conf.socket_path, sizeof c->socket_path);

        if (!*include) {
                debug(c, "not chosen (%s%s): no include pattern; staying off", "", "");
                return 0;
        }
        /* The comm without a descriptor; the path with one readlink. */
        char comm[17] = "", exe[FR_MAX_PATH_BYTES];
        (void)prctl(PR_GET_NAME, comm, 0, 0, 0);
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[n > 0 ? n : 0] = '\0';
        if (!fr__glob_list_match(include, comm, exe) || fr__glob_list_match(exclude, comm, exe)) {
                debug(c, "not chosen (comm %s, exe %s): staying off", comm, exe);
                return 0;
        }
        c->chosen = true;
        return 0;
}

/* ---- children ------------------------------------------------------------- */

/* LD_PRELOAD without our entries; separators are ':' and ' '. */
static void strip_preload(const char *v, char *out, size_t len) {
        size_t o = 0;
        for (const char *s = v; *s;) {
                size_t sep = strspn(s, ": ");
                s += sep;
                size_t n = strcspn(s, ": ");
                if (n == 0)
                        break;
                bool ours = false;
                for (size_t i = 0; i + sizeof LIB_NAME - 1 <= n && !ours; i++)
                        ours = memcmp(s + i, LIB_NAME, sizeof LIB_NAME - 1) == 0;
                if (!ours && o + n + 2 < len) {
                        if (o)
                                out[o++] = ':';
                        memcpy(out + o, s, n);
                        o += n;
                }
                s += n;
        }
        out[o] = '\0';
}

ssize_t fr__child_env(char *const envp[], char **out, size_t cap, char *preload, size_t preload_len) {
        size_t o = 0;
        for (size_t i = 0; envp[i]; i++) {
                if (o + 1 >= cap)
                        return -E2BIG;
                if (strncmp(envp[i], "FLIGHTREC_AUTOSTART=", 20) == 0)
                        continue;
                if (strncmp(envp[i], "LD_PRELOAD=", 11) == 0) {
                        if (preload_len < 12)
                                return -E2BIG;
                        memcpy(preload, "LD_PRELOAD=", 11);
                        strip_preload(envp[i] + 11, preload + 11, preload_len - 11);
                        if (!preload[11])
                                continue;
                        out[o++] = preload;
                        continue;
                }
                out[o++] = envp[i];
        }
        out[o] = NULL;
        return (ssize_t)o;
}
