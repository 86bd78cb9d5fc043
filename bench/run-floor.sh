#!/usr/bin/env bash
# What does a CPU-time sample cost on this machine whatever the profiler?
# The same 2-thread workload (perf_ring_probe) with no profiler, with the
# kernel writing samples into a perf mmap ring (no signal at all), and under
# `perf record -e task-clock -g`, and under flightrec (LD_PRELOAD, perf
# sampler, a SIGPROF per sample), all at RATE samples per CPU-second; rounds
# interleaved, medians, overhead as a ratio to "none" of the same run. The gap
# between "ring" and "flightrec" is what delivering a signal per sample adds;
# "ring" itself is the timer interrupt's cost, the floor for any sampler.
# Usage: bench/run-floor.sh [ROUNDS] [RATE] [WORK_MILLIONS]
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
