#!/bin/sh
# flightrecd at host scale (figures, not a test): N agents (default 1024,
# idle programs under LD_PRELOAD, small rings), then
#  - daemon memory per connected agent (VmRSS delta / N) and its peak;
#  - `flightrecctl status --summary` and a `--comm` filter, and their time;
#  - one SIGUSR1: the time until all 2 x N files are in place.
# An idle agent costs about 1.3 ms of CPU per generation (its advancer's
# period), so 1024 of them at the default 1 s period take two thirds of a
# 2-CPU VM and starve the daemon being measured: the agents here run with
# FLIGHTREC_PERIOD_MS=$PERIOD (default 5000).
# Usage: bench/run-hostscale.sh [BUILD_DIR] [N]   (default build, 1024;
# PERIOD=MS; FR_BENCH_LOG=FILE keeps the daemon log)
set -eu
B=$(cd "${1:-build}" && pwd)
N=${2:-1024}
PERIOD=${PERIOD:-5000}
W=$(mktemp -d /tmp/fr-bench-hostscale.XXXXXX)
D=$B/daemon/flightrecd
CTL=$B/daemon/flightrecctl
LIB=$B/agent/libflightrec.so
BURN=$B/tests/e2e-burn
SOCK=$W/s.sock
OUT=$W/out
DPID=""
cleanup() {
        [ -n "$DPID" ] && kill -KILL "$DPID" 2>/dev/null # first: no post-mortems of the agents
        [ -f "$W/pids" ] && xargs kill -KILL <"$W/pids" 2>/dev/null
        wait 2>/dev/null || true
        cp "$W/daemon.log" "${FR_BENCH_LOG:-/dev/null}" 2>/dev/null
        rm -rf "$W"
}
trap cleanup EXIT
trap 'cleanup; exit 1' INT TERM PIPE HUP
mkdir -p "$OUT" "$W/bin"
now_ms() { echo $(($(date +%s%N) / 1000000)); }
rss_kb() { awk -v k="$2" '$1 == k":" {print $2}' /proc/$1/status; }
count() { find "$OUT" -name "*.$1" | wc -l; }
n_agents() { "$CTL" --socket "$SOCK" status --summary | head -1 | awk '{print $3}'; }

printf '[daemon]\nsymbolize = yes\nsnapshot_timeout = 120s\n[retention]\nmax_files = 0\nmax_total_bytes = 0\n' >"$W/conf"
"$D" --config "$W/conf" --socket "$SOCK" --output-dir "$OUT" 2>"$W/daemon.log" &
DPID=$!
while [ ! -S "$SOCK" ]; do sleep 0.05; done
sleep 0.5
r0=$(rss_kb $DPID VmRSS)
# Eight program names, so that the summary has something to sum up.
for k in 0 1 2 3 4 5 6 7; do cp "$BURN" "$W/bin/fr-idle-$k"; done
t0=$(now_ms)
i=0
while [ $i -lt "$N" ]; do
        FLIGHTREC_SOCKET=$SOCK LD_PRELOAD=$LIB FLIGHTREC_HZ=0 FLIGHTREC_MAX_BYTES=1M \
                FLIGHTREC_START_DELAY_MS=0 FLIGHTREC_PERIOD_MS=$PERIOD "$W/bin/fr-idle-$((i % 8))" 3600 idle >/dev/null 2>&1 &
        echo $! >>"$W/pids"
        i=$((i + 1))
done
while [ "$(n_agents)" -lt "$N" ]; do sleep 0.5; done
echo "$N agents started and connected in $(($(now_ms) - t0)) ms"
sleep 3 # their AgentStats
r1=$(rss_kb $DPID VmRSS)
echo "daemon VmRSS: $r0 kB with no agent, $r1 kB with $N: $(((r1 - r0) * 1024 / N)) bytes per agent"
echo "daemon descriptors: $(ls /proc/$DPID/fd | wc -l)"
t0=$(now_ms)
"$CTL" --socket "$SOCK" status --summary
echo "(status --summary in $(($(now_ms) - t0)) ms; full status: $("$CTL" --socket "$SOCK" status | wc -l) lines)"
t0=$(now_ms)
"$CTL" --socket "$SOCK" status --comm 'fr-idle-3' | tail -1
echo "(status --comm in $(($(now_ms) - t0)) ms)"

echo "== one SIGUSR1, $N agents"
t0=$(now_ms)
kill -USR1 $DPID
while [ "$(count pb.gz)" -lt "$N" ] || [ "$(count trace.lz4)" -lt "$N" ]; do
        sleep 0.1
        if [ $(($(now_ms) - t0)) -gt 300000 ]; then echo "timed out"; break; fi
done
t1=$(now_ms)
echo "$N agents -> $(count trace.lz4) traces + $(count pb.gz) profiles in $((t1 - t0)) ms"
echo "daemon VmRSS after: $(rss_kb $DPID VmRSS) kB, peak (VmHWM) $(rss_kb $DPID VmHWM) kB"
grep -c "failed\|error" "$W/daemon.log" | sed 's/^/daemon log lines with failed or error: /'
grep "SIGUSR1" "$W/daemon.log" | tail -1
