#!/usr/bin/env bash
# Annotation cost of flightrec against LTTng-UST in snapshot mode, runs
# interleaved (A B A B ...) because these machines change CPU speed every few
# seconds; prints every run, then medians and the ratio. Then the advance stall.
# Usage: bench/run-annotate.sh [BUILD_DIR] [ROUNDS]
set -euo pipefail
build=${1:-build}
rounds=${2:-5}
bin="$build/bench/bench_annotate"
pairs=5000000
[ -x "$bin" ] || { echo "no $bin: build first" >&2; exit 1; }

have_lttng=0
if command -v lttng >/dev/null && "$bin" events lttng 1 1 >/dev/null 2>&1; then
        pgrep -x lttng-sessiond >/dev/null || lttng-sessiond --daemonize >/dev/null 2>&1 || true
        session="frbench-$$"
        if lttng create "$session" --snapshot >/dev/null 2>&1 &&
           lttng enable-event -u 'frbench:*' -s "$session" >/dev/null 2>&1 &&
           lttng start "$session" >/dev/null 2>&1; then
                have_lttng=1
                trap 'lttng destroy "$session" >/dev/null 2>&1 || true' EXIT
        fi
fi
[ $have_lttng = 1 ] || echo "LTTng-UST not available: flightrec only" >&2

declare -A runs
for ((r = 1; r <= rounds; r++)); do
        for threads in 1 2; do
                for tool in flightrec lttng; do
                        [ $tool = lttng ] && [ $have_lttng = 0 ] && continue
                        line=$("$bin" events $tool $threads $pairs)
                        echo "round $r: $line"
                        runs[$tool-$threads]+="$(sed 's/.*ns_per_event=//' <<<"$line") "
                done
        done
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo
for threads in 1 2; do
        f=$(median <<<"${runs[flightrec-$threads]}")
        if [ $have_lttng = 1 ]; then
                l=$(median <<<"${runs[lttng-$threads]}")
                printf 'median ns per event, %d thread(s): flightrec %.2f  lttng-ust %.2f  ratio lttng/flightrec %.2f\n' \
                        "$threads" "$f" "$l" "$(echo "$l / $f" | bc -l)"
        else
                printf 'median ns per event, %d thread(s): flightrec %.2f\n' "$threads" "$f"
        fi
done
f1=$(median <<<"${runs[flightrec-1]}"); f2=$(median <<<"${runs[flightrec-2]}")
printf 'scaling 2 threads / 1 thread (1.00 = no shared lines): %.2f\n' "$(echo "$f2 / $f1" | bc -l)"
echo
"$bin" stall 1 5
"$bin" stall 1000 5
