#!/usr/bin/env bash
# Costs of the blocking-call wrappers (issue 11): an uncontended mutex
# lock/unlock pair and a 1-byte read from a ready pipe, each without and with
# LD_PRELOAD=libflightrec.so, runs interleaved (A B A B ...) because these
# machines change CPU speed every few seconds; prints every run, then the
# medians, the difference and the ratio. Then the advancer's time per blocked
# thread per generation.
# Usage: bench/run-wait.sh [BUILD_DIR] [ROUNDS]
set -euo pipefail
build=${1:-build}
rounds=${2:-7}
bin="$build/bench/bench_wait"
lib="$build/agent/libflightrec.so"
[ -x "$bin" ] && [ -f "$lib" ] || { echo "no $bin or $lib: build first" >&2; exit 1; }
export FLIGHTREC_SOCKET=/nonexistent/flightrec.sock FLIGHTREC_HZ=0

median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
declare -A runs
for ((r = 1; r <= rounds; r++)); do
        for what in "mutex 20000000" "read 655360"; do
                set -- $what
                for agent in none agent; do
                        if [ $agent = agent ]; then
                                line=$(LD_PRELOAD=$lib "$bin" $what)
                        else
                                line=$("$bin" $what)
                        fi
                        echo "round $r $agent: $line"
                        runs[$1-$agent]+="$(sed 's/.*=//' <<<"$line") "
                done
        done
done
echo
for what in mutex read; do
        a=$(median <<<"${runs[$what-none]}")
        b=$(median <<<"${runs[$what-agent]}")
        awk -v w=$what -v a=$a -v b=$b 'BEGIN {printf "%-6s median without %.2f ns, with the agent %.2f ns: %+.2f ns, ratio %.3f\n", w, a, b, b - a, b / a}'
done
echo
for spec in "1 1" "16 1" "16 32" "128 8"; do
        LD_PRELOAD=$lib FLIGHTREC_PERIOD_MS=50 "$bin" advancer $spec
done
