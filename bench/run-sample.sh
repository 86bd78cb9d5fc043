#!/usr/bin/env bash
# Sampling overhead and fidelity: the same CPU-bound workload (bench_sample,
# 2 threads) with no profiler, with flightrec (LD_PRELOAD, perf sampler) and
# with gperftools' CPU profiler (LD_PRELOAD of libprofiler, setitimer), at 100
# and 1000 Hz. Runs are interleaved round by round (none, fr, gperf, ...), so
# CPU speed changes hit every variant alike; figures are medians over rounds,
# overheads are ratios to the no-profiler median of the same run.
# Fidelity: samples / (CPU seconds x rate); "weighted" counts flightrec's
# sample weights (periods elapsed, see agent/fr_sample.c).
# Usage: bench/run-sample.sh [ROUNDS] [WORK]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5} work=${2:-400000} threads=2
build=${BUILD:-build}
cmake -S . -B "$build" >/dev/null && cmake --build "$build" -j"$(nproc)" >/dev/null
bin=$build/bench/bench_sample ctl=$build/daemon/flightrecctl agent=$PWD/$build/agent/libflightrec.so
gperf=$(ls /usr/lib/*/libprofiler.so.0 2>/dev/null | head -1 || true)
[ -n "$gperf" ] || { echo "libprofiler.so.0 missing: apt-get install libgoogle-perftools4" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run VARIANT HZ: one run; appends "variant wall cpu samples weighted" to $tmp/results.
run() {
        local v=$1 hz=$2 out samples=0 weighted=0
        case $v in
        none) out=$("$bin" $threads "$work") ;;
        flightrec)
                rm -rf "$tmp/fr" && mkdir "$tmp/fr"
                out=$(FLIGHTREC_HZ=$hz FLIGHTREC_DIR="$tmp/fr" FLIGHTREC_SOCKET="$tmp/none.sock" \
                        LD_PRELOAD="$agent" "$bin" $threads "$work")
                read -r samples weighted < <("$ctl" dump "$tmp"/fr/*.trace.lz4 |
                        awk '$4 == "SAMPLE" { n++; w += $6 } END { print n + 0, w + 0 }')
                ;;
        gperftools)
                out=$(CPUPROFILE="$tmp/gperf.prof" CPUPROFILE_FREQUENCY=$hz LD_PRELOAD="$gperf" \
                        "$bin" $threads "$work" 2>/dev/null)
                samples=$("$build/bench/gperf_count" "$tmp/gperf.prof")
                weighted=$samples
                ;;
        esac
        read -r _ wall _ cpu <<<"$out"
        echo "$v@$hz $wall $cpu $samples $weighted" >>"$tmp/results"
}

echo "workload: $threads threads x $work units, $rounds interleaved rounds"
for ((r = 1; r <= rounds; r++)); do
        for hz in 100 1000; do
                run none $hz
                run flightrec $hz
                run gperftools $hz
        done
        echo "round $r done"
done

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -v k="$1" -v c="$2" '$1 == k { print $c }' "$tmp/results"; }
printf "\n%-16s %9s %9s %9s %9s %10s %10s\n" variant wall_s cpu_s wall_ovh cpu_ovh fidelity weighted
for hz in 100 1000; do
        base_wall=$(col none@$hz 2 | median) base_cpu=$(col none@$hz 3 | median)
        for v in none flightrec gperftools; do
                k=$v@$hz
                wall=$(col "$k" 2 | median) cpu=$(col "$k" 3 | median)
                fid=$(awk -v k="$k" -v hz=$hz '$1 == k { print $4 / ($3 * hz) }' "$tmp/results" | median)
                wfid=$(awk -v k="$k" -v hz=$hz '$1 == k { print $5 / ($3 * hz) }' "$tmp/results" | median)
                [ $v = none ] && fid=- && wfid=-
                printf "%-16s %9.3f %9.3f %8.2f%% %8.2f%% %10s %10s\n" "$k" "$wall" "$cpu" \
                        "$(echo "($wall / $base_wall - 1) * 100" | bc -l)" \
                        "$(echo "($cpu / $base_cpu - 1) * 100" | bc -l)" "$fid" "$wfid"
        done
done
