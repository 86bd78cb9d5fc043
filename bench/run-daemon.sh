#!/bin/sh
# flightrecd benchmarks (figures for the record, not a pass/fail test):
#  1. snapshot latency, SIGUSR1 to both files renamed into place, for rings
#     holding about 1, 16 and 64 MiB (median of REPS runs, interleaved by size);
#  2. daemon memory (VmRSS) per connected agent (64 idle agents);
#  3. time for one SIGUSR1 to snapshot 64 agents (128 files).
# Usage: bench/run-daemon.sh [BUILD_DIR] [REPS]   (default build-daemon, 5)
set -eu
B=$(cd "${1:-build-daemon}" && pwd)
REPS=${2:-5}
W=$(mktemp -d /tmp/fr-bench-daemon.XXXXXX)
D=$B/daemon/flightrecd
CTL=$B/daemon/flightrecctl
LIB=$B/agent/libflightrec.so
FILL=$B/bench/bench_fill
BURN=$B/tests/e2e-burn
SOCK=$W/s.sock
OUT=$W/out
PIDS=""
cleanup() { for p in $PIDS; do kill -KILL $p 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT
trap 'cleanup; exit 1' INT TERM PIPE HUP
mkdir -p "$OUT"
now_ms() { echo $(($(date +%s%N) / 1000000)); }
npb() { ls "$OUT" | grep -c '\.pb\.gz$' || true; }
rss_kb() { awk '/^VmRSS/ {print $2}' /proc/$1/status; }

printf '[daemon]\nsymbolize = yes\n[retention]\nmax_files = 0\nmax_total_bytes = 0\n' >"$W/conf"
"$D" --config "$W/conf" --socket "$SOCK" --output-dir "$OUT" 2>"$W/daemon.log" &
DPID=$!
PIDS="$PIDS $DPID"
while [ ! -S "$SOCK" ]; do sleep 0.05; done

echo "== snapshot latency (trigger -> .trace.lz4 and .pb.gz in place)"
touch "$W/fill1.txt" "$W/fill16.txt" "$W/fill64.txt"
for mib in 1 16 64; do
        # Log about 1.1 x the size over 4 s into a ring allowed 1.5 x + 2 MiB.
        FLIGHTREC_SOCKET=$SOCK FLIGHTREC_MAX_BYTES=$((mib * 3 / 2 + 2))M FLIGHTREC_PERIOD_MS=100 \
                FLIGHTREC_GENERATIONS=100000 FLIGHTREC_HZ=0 \
                "$FILL" 4 "$(awk -v m=$mib 'BEGIN {print m * 1.1 / 4}')" >"$W/fill$mib.txt" &
        eval "F$mib=$!"
        PIDS="$PIDS $!"
done
for mib in 1 16 64; do
        while ! grep -q ready "$W/fill$mib.txt"; do sleep 0.1; done
done
sleep 0.5
# One agent at a time: stop the others (SIGSTOP) so only one is snapshotted?
# No: SIGUSR1 covers all; use flightrecctl trigger --pid for per-size figures
# and one SIGUSR1 for the combined figure.
for rep in $(seq "$REPS"); do
        for mib in 1 16 64; do
                eval "p=\$F$mib"
                t0=$(now_ms)
                "$CTL" --socket "$SOCK" trigger --pid "$p" >"$W/paths" || true
                t1=$(now_ms)
                bytes=$(grep -o "$p.*(\([0-9]*\) bytes of trace" "$W/daemon.log" | tail -1 | sed 's/.*(\([0-9]*\) bytes.*/\1/')
                echo "$mib $((t1 - t0)) $bytes" >>"$W/lat.txt"
        done
done
for mib in 1 16 64; do
        med=$(awk -v m=$mib '$1 == m {print $2}' "$W/lat.txt" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
        all=$(awk -v m=$mib '$1 == m {printf "%s ", $2}' "$W/lat.txt")
        bytes=$(awk -v m=$mib '$1 == m {b=$3} END {print b}' "$W/lat.txt")
        echo "ring ~${mib} MiB (trace ${bytes} bytes): median ${med} ms  [runs: ${all}]"
done
echo "daemon's own figure (request to rename), last runs:"
grep -o "snapshot of bench_fill.*ms)" "$W/daemon.log" | tail -3 | sed 's/.*(\([0-9]*\) bytes.* in \([0-9]*\) ms (\(.*\))/  \1 bytes: \2 ms (\3)/'
t0=$(now_ms); before=$(npb)
kill -USR1 $DPID
while [ "$(npb)" -lt $((before + 3)) ]; do sleep 0.005; done
echo "one SIGUSR1, the three agents together: $(($(now_ms) - t0)) ms"
for mib in 1 16 64; do eval "kill \$F$mib"; done

echo "== daemon memory per connected agent"
sleep 1
r0=$(rss_kb $DPID)
MANY=""
for i in $(seq 64); do
        FLIGHTREC_SOCKET=$SOCK LD_PRELOAD=$LIB FLIGHTREC_HZ=0 "$BURN" 600 idle &
        MANY="$MANY $!"
        PIDS="$PIDS $!"
done
while [ "$("$CTL" --socket "$SOCK" status | head -1 | awk '{print $3}')" -lt 64 ]; do sleep 0.2; done
sleep 2.5 # stats messages
r1=$(rss_kb $DPID)
echo "VmRSS: $r0 kB with no agent, $r1 kB with 64: $(((r1 - r0) * 1024 / 64)) bytes per agent"

echo "== one SIGUSR1, 64 agents"
rm -f "$OUT"/*
t0=$(now_ms)
kill -USR1 $DPID
while [ "$(npb)" -lt 64 ]; do sleep 0.01; done
t1=$(now_ms)
echo "64 agents -> $(ls "$OUT" | wc -l) files in $((t1 - t0)) ms"
r2=$(rss_kb $DPID)
echo "VmRSS after: $r2 kB"
