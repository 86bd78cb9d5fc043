/* libFuzzer target: flightrecd's configuration parser (daemon/frd_config.c)
 * on arbitrary INI text, through frd_config_parse_string, then the id lists
 * it produced through frd_config_allows. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frd.h"

void frd_log(int level, const char *fmt, ...) {
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
        struct frd_config c;
        char err[512];
        err[0] = '\0';
        if (frd_config_parse_string(text, &c, err, sizeof err) == 0) {
                sink += strlen(c.socket_path) + strlen(c.socket_group) + strlen(c.output_dir) +
                        strlen(c.output_group);
                if (c.agent_users.n > FRD_MAX_IDS || c.agent_groups.n > FRD_MAX_IDS ||
                    c.control_users.n > FRD_MAX_IDS || c.control_groups.n > FRD_MAX_IDS)
                        abort();
                sink += frd_config_allows(&c.agent_users, &c.agent_groups, 1000, 1000);
                sink += frd_config_allows(&c.control_users, &c.control_groups, 0, 0);
        } else {
                sink += strlen(err);
        }
        free(text);
        return 0;
}
