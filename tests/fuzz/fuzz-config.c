/* libFuzzer target: flightrecd's configuration parser (daemon/fd_config.c)
 * on arbitrary INI text, through fd_config_parse_string, then the id lists
 * it produced through fd_config_allows. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fd.h"

void fd_log(int level, const char *fmt, ...) {
        (void)level;
        (void)fmt;
}

static volatile size_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
        char *text = malloc(len + 1);
        if (!text)
                return 0;
        memcpy(text, data, len);
        text[len] = '\0';
        struct fd_config c;
        char err[512];
        err[0] = '\0';
        if (fd_config_parse_string(text, &c, err, sizeof err) == 0) {
                sink += strlen(c.socket_path) + strlen(c.socket_group) + strlen(c.output_dir) +
                        strlen(c.output_group);
                if (c.agent_users.n > FD_MAX_IDS || c.agent_groups.n > FD_MAX_IDS ||
                    c.control_users.n > FD_MAX_IDS || c.control_groups.n > FD_MAX_IDS)
                        abort();
                sink += fd_config_allows(&c.agent_users, &c.agent_groups, 1000, 1000);
                sink += fd_config_allows(&c.control_users, &c.control_groups, 0, 0);
        } else {
                sink += strlen(err);
        }
        free(text);
        return 0;
}
