#!/usr/bin/env bash
# What does a CPU-time sample cost on this machine whatever the profiler?
# The same 2-thread workload (perf_ring_probe) with no profiler, with the
# kernel writing samples into a perf mmap ring (no signal at all), and under
# `perf record -e task-clock -g`, and under flightrec (LD_PRELOAD, perf
# sampler, a SIGPROF per sample), all at RATE samples per CPU-second; rounds
# interleaved, medians, overhead as a ratio to "none" of the same run. The gap
# between "ring" and "flightrec" is what delivering a signal per sample adds;
# "ring" itself is the timer interrupt's cost, the floor for any sampler.
# Part 2 (below) compares full stacks with frame-pointer-only stacks.
# Usage: bench/run-floor.sh [ROUNDS] [RATE] [WORK_MILLIONS] [unwind]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5} rate=${2:-1000} work=${3:-300}
build=${BUILD:-build}
cmake -S . -B "$build" >/dev/null && cmake --build "$build" -j"$(nproc)" --target perf_ring_probe flightrec >/dev/null
bin=$build/bench/perf_ring_probe agent=$PWD/$build/agent/libflightrec.so
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for r in $(seq "$rounds"); do
        "$bin" none "$rate" "$work" | awk '{print "none", $5}' >>"$tmp/res"
        "$bin" ring "$rate" "$work" | awk '{print "ring", $5}' >>"$tmp/res"
        FLIGHTREC_HZ=$rate FLIGHTREC_SOCKET="$tmp/none.sock" FLIGHTREC_DIR="$tmp" LD_PRELOAD="$agent" \
                "$bin" none "$rate" "$work" | awk '{print "flightrec", $5}' >>"$tmp/res"
        if command -v perf >/dev/null; then
                perf record -q -e task-clock -c $((1000000000 / rate)) -g -o "$tmp/perf.data" \
                        "$bin" none "$rate" "$work" 2>/dev/null | awk '{print "perf-record", $5}' >>"$tmp/res"
        fi
done
median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
base=$(awk '$1 == "none" {print $2}' "$tmp/res" | median)
echo "CPU seconds, median of $rounds rounds, $rate samples per CPU-second, 2 threads:"
for v in none ring perf-record flightrec; do
        m=$(awk -v v=$v '$1 == v {print $2}' "$tmp/res" | median)
        [ -n "$m" ] || continue
        echo "$v $m $base" | awk '{printf "  %-12s %.3f s  (%+.1f%%)\n", $1, $2, 100 * ($2 / $3 - 1)}'
done

# Part 2 (UNWIND=1, or the 4th argument "unwind"): the cost of full stacks on
# a Debian-packaged program without frame pointers (sqlite3, a heavy query),
# CPU seconds of the whole command (perf's own process counted: the shell's
# waited-for children), interleaved rounds, at 100 and 1000 Hz: no profiler,
# flightrec with frame pointers only (FLIGHTREC_UNWIND=fp), flightrec with
# .eh_frame tables (auto), `perf record -g` and `perf record --call-graph dwarf`.
[ "${UNWIND:-${4:-}}" = unwind ] || [ "${UNWIND:-}" = 1 ] || exit 0
command -v sqlite3 >/dev/null || { echo "SKIP part 2: sqlite3 is not installed"; exit 0; }
cat >"$tmp/q.sql" <<'SQL'
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 1000000)
SELECT count(*), sum(length(h)) FROM (SELECT x, hex(randomblob(16)) || printf('%08d', x*7919 % 1000003) AS h
  FROM c ORDER BY h DESC) GROUP BY substr(h, 1, 2) ORDER BY 1 LIMIT 3;
SQL
# cpu CMD...: CPU seconds (user + system) of CMD and everything it waited for.
cpu() {
        local a b me=$BASHPID # this (sub)shell: it waits for CMD
        a=$(awk '{print $16 + $17}' /proc/$me/stat)
        "$@" >/dev/null 2>&1 </dev/null
        b=$(awk '{print $16 + $17}' /proc/$me/stat)
        echo "$a $b $(getconf CLK_TCK)" | awk '{printf "%.3f\n", ($2 - $1) / $3}'
}
q() { sqlite3 :memory: <"$tmp/q.sql"; }
fr() { FLIGHTREC_UNWIND=$1 FLIGHTREC_HZ=$2 FLIGHTREC_SOCKET="$tmp/none.sock" FLIGHTREC_DIR="$tmp" \
        LD_PRELOAD="$agent" sqlite3 :memory: <"$tmp/q.sql"; }
: >"$tmp/res2"
for r in $(seq "$rounds"); do
        for hz in 100 1000; do
                echo "none $hz $(cpu q)" >>"$tmp/res2"
                echo "flightrec-fp $hz $(cpu fr fp $hz)" >>"$tmp/res2"
                echo "flightrec-auto $hz $(cpu fr auto $hz)" >>"$tmp/res2"
                if command -v perf >/dev/null; then
                        echo "perf-g $hz $(cpu perf record -q -e cpu-clock -F $hz -g -o "$tmp/p.data" -- sh -c "sqlite3 :memory: <'$tmp/q.sql'")" >>"$tmp/res2"
                        echo "perf-dwarf $hz $(cpu perf record -q -e cpu-clock -F $hz --call-graph dwarf -o "$tmp/p.data" -- sh -c "sqlite3 :memory: <'$tmp/q.sql'")" >>"$tmp/res2"
                fi
        done
done
echo
echo "sqlite3 (no frame pointers), CPU seconds of the whole command, median of $rounds interleaved rounds:"
for hz in 100 1000; do
        base=$(awk -v h=$hz '$1 == "none" && $2 == h {print $3}' "$tmp/res2" | median)
        fp=$(awk -v h=$hz '$1 == "flightrec-fp" && $2 == h {print $3}' "$tmp/res2" | median)
        for v in none flightrec-fp flightrec-auto perf-g perf-dwarf; do
                m=$(awk -v v=$v -v h=$hz '$1 == v && $2 == h {print $3}' "$tmp/res2" | median)
                [ -n "$m" ] || continue
                echo "$v $hz $m $base $fp" | awk '{printf "  %4d Hz %-15s %.3f s  (%+.1f%% vs none, %.3fx flightrec-fp)\n", $2, $1, $3, 100 * ($3 / $4 - 1), $3 / $5}'
        done
done
