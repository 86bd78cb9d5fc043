#!/bin/sh
# The list of system calls the agent makes (docs/agent-design.md, between
# the "syscalls" markers) is true: every call a program makes with the agent
# and not without it is listed, and every listed call but perf_event_open is
# in systemd's @system-service set.
# Usage: test-syscalls.sh LIBFLIGHTREC E2E_BURN DOC WORKDIR
set -eu
lib=$1 burn=$2 doc=$3 work=$4
here=$(dirname "$0")
command -v strace >/dev/null || { echo "SKIP: no strace"; exit 77; }
command -v systemd-analyze >/dev/null || { echo "SKIP: no systemd-analyze"; exit 77; }
[ -z "${FR_SANITIZER:-}" ] || { echo "SKIP: the sanitizer runtime's own calls"; exit 77; }
mkdir -p "$work"
calls() { # strace -c summary -> names
        awk 'NF >= 5 && $NF ~ /^[a-z_0-9]+$/ && $NF != "total" && $NF != "syscall" { print $NF }' "$1" | sort -u
}
strace -f -qq -c -o "$work/without.txt" "$burn" 2 >/dev/null
LD_PRELOAD=$lib FLIGHTREC_HZ=1000 FLIGHTREC_PERIOD_MS=100 FLIGHTREC_SOCKET=/nonexistent/agent.sock \
        FLIGHTREC_DIR="$work" strace -f -qq -c -o "$work/with.txt" "$burn" 2 >/dev/null 2>&1
calls "$work/without.txt" >"$work/without.lst"
calls "$work/with.txt" >"$work/with.lst"
comm -23 "$work/with.lst" "$work/without.lst" >"$work/agent.lst"
sed -n '/<!-- syscalls -->/,/<!-- \/syscalls -->/p' "$doc" | grep -o '^| `[a-z_0-9]*`' |
        tr -d '|` ' | sort -u >"$work/doc.lst"
sh "$here/syscall-set.sh" @system-service >"$work/service.lst"
fail=0
missing=$(comm -23 "$work/agent.lst" "$work/doc.lst")
if [ -n "$missing" ]; then
        echo "FAIL: the agent made calls the docs do not list: $missing"
        fail=1
fi
outside=$(comm -23 "$work/doc.lst" "$work/service.lst" | grep -vx perf_event_open || true)
if [ -n "$outside" ]; then
        echo "FAIL: listed calls outside @system-service: $outside"
        fail=1
fi
echo "agent-only calls in this run: $(tr '\n' ' ' <"$work/agent.lst")"
echo "listed: $(wc -l <"$work/doc.lst"), all in @system-service but perf_event_open"
exit $fail
