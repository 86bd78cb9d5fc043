/* flightrecctl trigger --name NAME [--after DURATION] (issue 15): a named
 * trigger of flightrecd.conf (wire.proto: CtlNamedTrigger -> TriggerReply),
 * and the trigger lines of flightrecctl status. The option parsing and the
 * answer's printing stay with the plain trigger in ctl_daemon.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "wire.h"

int ctl_parse_duration_ms(const char *s, unsigned *ret) {
        char *end;
        if (!*s || *s == '-')
                return -EINVAL;
        errno = 0;
        double v = strtod(s, &end);
        if (errno || end == s)
                return -EINVAL;
        double mul;
        if (!*end || strcmp(end, "s") == 0)
                mul = 1000;
        else if (strcmp(end, "ms") == 0)
                mul = 1;
        else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
                mul = 60000;
        else if (strcmp(end, "h") == 0)
                mul = 3600000;
        else
                return -EINVAL;
        v *= mul;
        if (v < 0 || v > 3600000)
                return -ERANGE;
        *ret = (unsigned)(v + 0.5);
        return 0;
}

void ctl_named_trigger_frame(fr_frame *f, Flightrec__Wire__CtlNamedTrigger *m, const char *name,
                             bool has_after, unsigned after_ms, uint32_t pid, char *reason) {
        flightrec__wire__ctl_named_trigger__init(m);
        m->name = (char *)(name ? name : "default");
        m->pid = pid;
        m->reason = reason;
        m->has_after = has_after;
        m->after_ms = after_ms;
        f->msg_case = FLIGHTREC__WIRE__FRAME__MSG_CTL_NAMED_TRIGGER;
        f->ctl_named_trigger = m;
}

void ctl_print_triggers(const Flightrec__Wire__StatusReply *s) {
        if (s->hooks_run || s->hooks_running)
                printf("on_snapshot hooks: %llu run, %llu failed, %u running\n",
                       (unsigned long long)s->hooks_run, (unsigned long long)s->hooks_failed,
                       s->hooks_running);
        for (size_t i = 0; i < s->n_triggers; i++)
                printf("%s\n", s->triggers[i]);
}
