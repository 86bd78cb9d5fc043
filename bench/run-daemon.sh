#!/bin/sh
# flightrecd benchmarks (figures for the record, not a pass/fail test). The
# two snapshot paths, pipe (the agent writes its ring into a pipe) and ring
# (the daemon reads the agent's ring memfd), are compared in one run,
# interleaved (pipe, ring, pipe, ring, ...; the switch is snapshot_path,
# flipped by SIGHUP), medians of REPS:
#  1. trigger to both files renamed into place, for rings of about 1, 16 and
#     64 MiB of log events (flightrecctl trigger returns then);
#  2. the application's CPU time on a snapshot: from inside the agent (its
#     client thread's CPU time in the snapshot path, reported in SnapshotDone)
#     and from outside (/proc/PID/task/*/schedstat across the snapshot: the
#     client thread, and the advancer, which does the forced advance);
#  3. the daemon's memory for a 64 MiB snapshot (peak VmHWM over VmRSS before);
#  4. a ring with ~1000 CPU samples through libc (its debug info installed),
#     snapshotted repeatedly: the first (cold symbolizer) and the repeats;
#  5. daemon memory per connected agent (64 idle agents), and one SIGUSR1
#     snapshotting all 64 (128 files), both paths.
# Usage: bench/run-daemon.sh [BUILD_DIR] [REPS]   (default build, 5)
set -eu
B=$(cd "${1:-build}" && pwd)
REPS=${2:-5}
W=$(mktemp -d /tmp/fr-bench-daemon.XXXXXX)
D=$B/daemon/flightrecd
CTL=$B/daemon/flightrecctl
LIB=$B/agent/libflightrec.so
FILL=$B/bench/bench_fill
SYMS=$B/bench/bench_symbols
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
hwm_kb() { awk '/^VmHWM/ {print $2}' /proc/$1/status; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "-"}'; }
# CPU ns of the threads of $1 named $2 (all threads: "*").
cpu_ns() {
        t=0
        for d in /proc/$1/task/*; do
                n=$(cat "$d/comm" 2>/dev/null) || continue
                if [ "$2" = "*" ] || [ "$n" = "$2" ]; then
                        t=$((t + $(awk '{print $1}' "$d/schedstat" 2>/dev/null || echo 0)))
                fi
        done
        echo $t
}

conf() {
        printf '[daemon]\nsymbolize = yes\nsnapshot_path = %s\n[retention]\nmax_files = 0\nmax_total_bytes = 0\n' "$1" >"$W/conf"
}
# set_path MODE: rewrite the configuration and reload; wait for the reload.
set_path() {
        conf "$1"
        n=$(grep -c "configuration reloaded" "$W/daemon.log" || true)
        kill -HUP $DPID
        while [ "$(grep -c "configuration reloaded" "$W/daemon.log" || true)" -le "$n" ]; do sleep 0.02; done
}

conf ring
"$D" --config "$W/conf" --socket "$SOCK" --output-dir "$OUT" 2>"$W/daemon.log" &
DPID=$!
PIDS="$PIDS $DPID"
while [ ! -S "$SOCK" ]; do sleep 0.05; done

# snap PID TAG: one triggered snapshot of PID; appends
# "TAG ms agent_cpu_ms cli_cpu_ms adv_cpu_ms app_cpu_ms bytes" to $W/lat.txt.
snap() {
        c0=$(cpu_ns $1 flightrec-cli); a0=$(cpu_ns $1 flightrec); p0=$(cpu_ns $1 "*")
        nl=$(wc -l <"$W/daemon.log")
        t0=$(now_ms)
        "$CTL" --socket "$SOCK" trigger --pid "$1" >"$W/paths" || true
        t1=$(now_ms)
        c1=$(cpu_ns $1 flightrec-cli); a1=$(cpu_ns $1 flightrec); p1=$(cpu_ns $1 "*")
        line=$(tail -n +$((nl + 1)) "$W/daemon.log" | grep "snapshot of .*\[$1\].*bytes of trace" | tail -1)
        acpu=$(echo "$line" | sed -n 's/.*agent CPU \([0-9.]*\) ms.*/\1/p')
        bytes=$(echo "$line" | sed -n 's/.*(\([0-9]*\) bytes of trace.*/\1/p')
        echo "$2 $((t1 - t0)) ${acpu:--} $(((c1 - c0) / 1000))e-3 $(((a1 - a0) / 1000))e-3 $(((p1 - p0) / 1000))e-3 ${bytes:--}" >>"$W/lat.txt"
}
# col TAG N: column N of the rows tagged TAG
col() { awk -v t="$1" -v n="$2" '$1 == t {printf "%.3f\n", $n}' "$W/lat.txt"; }

echo "== snapshot latency and the application's CPU, pipe vs ring (interleaved, median of $REPS)"
for mib in 1 16 64; do
        # Log about 1.1 x the size over 4 s into a ring allowed 1.5 x + 10 MiB:
        # the idle generations after the fill (one a second, one 32 KiB pool
        # block each) must not push the data out during the run.
        FLIGHTREC_SOCKET=$SOCK FLIGHTREC_MAX_BYTES=$((mib * 3 / 2 + 10))M FLIGHTREC_PERIOD_MS=1000 \
                FLIGHTREC_GENERATIONS=100000 FLIGHTREC_HZ=0 \
                "$FILL" 4 "$(awk -v m=$mib 'BEGIN {print m * 1.1 / 4}')" >"$W/fill$mib.txt" &
        eval "F$mib=$!"
        PIDS="$PIDS $!"
done
for mib in 1 16 64; do
        while ! grep -q ready "$W/fill$mib.txt" 2>/dev/null; do sleep 0.1; done
done
sleep 1.2 # the last filled generation complete
: >"$W/mem.txt"
for rep in $(seq "$REPS"); do
        for mode in pipe ring; do
                set_path $mode
                for mib in 1 16 64; do
                        eval "p=\$F$mib"
                        if [ $mib = 64 ]; then
                                r0=$(rss_kb $DPID)
                                echo 5 >/proc/$DPID/clear_refs 2>/dev/null || true
                        fi
                        snap "$p" "$mode-$mib"
                        if [ $mib = 64 ]; then
                                echo "$mode $(( $(hwm_kb $DPID) - r0 ))" >>"$W/mem.txt"
                        fi
                done
        done
done
printf '%-6s %-5s %-11s %-9s %-28s %-34s\n' ring path "trace" "trigger" "app CPU inside the agent" "app CPU from /proc: cli / adv / all"
for mib in 1 16 64; do
        for mode in pipe ring; do
                t="$mode-$mib"
                bytes=$(awk -v t="$t" '$1 == t {b=$7} END {print b}' "$W/lat.txt")
                printf '%-6s %-5s %-11s %6s ms %12s ms %30s ms\n' "${mib}M" $mode "$bytes" \
                        "$(col $t 2 | median)" "$(col $t 3 | median)" \
                        "$(col $t 4 | median) / $(col $t 5 | median) / $(col $t 6 | median)"
        done
        p=$(col "pipe-$mib" 2 | median); r=$(col "ring-$mib" 2 | median)
        echo "       ring/pipe trigger-to-files: $(awk -v p=$p -v r=$r 'BEGIN {printf "%.2f", p ? r / p : 0}')  [pipe runs: $(col "pipe-$mib" 2 | tr '\n' ' ')] [ring runs: $(col "ring-$mib" 2 | tr '\n' ' ')]"
done
for mode in pipe ring; do
        echo "daemon memory for a 64 MiB snapshot, $mode: peak $(awk -v m=$mode '$1 == m {print $2}' "$W/mem.txt" | median) kB over its RSS before (max_inflight_bytes = 256M bounds the ring path's copies)"
done
echo "daemon's own figures, last ring and pipe runs of the 64 MiB ring:"
grep "snapshot of bench_fill\[$F64\].*(ring)" "$W/daemon.log" | tail -1 | sed 's/.* in /  ring: /'
grep "snapshot of bench_fill\[$F64\]:" "$W/daemon.log" | tail -1 | sed 's/.* in /  pipe: /'
for mib in 1 16 64; do eval "kill \$F$mib"; done

echo "== a ring with CPU samples and debug info (1000 Hz, libc6-dbg), repeated snapshots"
FLIGHTREC_SOCKET=$SOCK FLIGHTREC_HZ=1000 FLIGHTREC_PERIOD_MS=1000 FLIGHTREC_GENERATIONS=100 \
        "$SYMS" 1.1 >"$W/syms.txt" &
SP=$!
PIDS="$PIDS $SP"
while ! grep -q ready "$W/syms.txt" 2>/dev/null; do sleep 0.1; done
sleep 1.2 # the last burning generation complete
set_path ring
for i in $(seq $((REPS + 1))); do snap "$SP" "sym$i"; done
line=$(grep "snapshot of bench_symbols\[$SP\]" "$W/daemon.log" | grep "bytes of trace" | head -1)
echo "samples in the ring: $(echo "$line" | sed -n 's/.* \([0-9]*\) samples).*/\1/p')"
echo "first snapshot (cold symbolizer): $(col sym1 2) ms trigger to files ($(echo "$line" | sed 's/.*; worker/worker/; s/)$//'))"
echo "  a repeat: $(grep "snapshot of bench_symbols\[$SP\]" "$W/daemon.log" | grep "bytes of trace" | tail -1 | sed 's/.*; worker/worker/; s/)$//')"
echo "repeats: median $(for i in $(seq 2 $((REPS + 1))); do col sym$i 2; done | median) ms  [runs: $(for i in $(seq 2 $((REPS + 1))); do col sym$i 2; done | tr '\n' ' ')]"
kill $SP

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

echo "== one SIGUSR1, 64 agents (interleaved, median of $REPS)"
for rep in $(seq "$REPS"); do
        for mode in pipe ring; do
                set_path $mode
                rm -f "$OUT"/*
                t0=$(now_ms)
                kill -USR1 $DPID
                while [ "$(npb)" -lt 64 ]; do sleep 0.005; done
                t1=$(now_ms)
                echo "usr1-$mode $((t1 - t0))" >>"$W/lat.txt"
        done
done
for mode in pipe ring; do
        echo "$mode: 64 agents -> 128 files in $(col usr1-$mode 2 | median) ms  [runs: $(col usr1-$mode 2 | tr '\n' ' ')]"
done
echo "VmRSS after: $(rss_kb $DPID) kB"
