#!/usr/bin/env bash
# Fuzzing campaign over the libFuzzer targets of tests/fuzz.
# Usage: tests/fuzz/run-campaign.sh [SECONDS_PER_TARGET] [TARGET...]
#   SECONDS_PER_TARGET  default 600
#   TARGET              reader pprof timeline wire config pmring (default: all)
# Environment: JOBS (targets run at once, default: number of CPUs),
#   BUILD (build directory, default build-fuzz), CC (default clang).
# Configures and builds BUILD with -DFLIGHTREC_FUZZ=ON, then runs every target
# on a working corpus BUILD/campaign/<target>/corpus seeded from
# tests/fuzz/corpus/<target> and tests/fuzz/regressions/<target>. Prints per
# target the executions, exec/s, coverage (cov = edges, ft = features), the
# corpus size and the findings (crash/leak/timeout/oom files written in
# BUILD/campaign/<target>/artifacts). Exit status 1 when anything was found.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
secs=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(reader pprof timeline wire config pmring)
jobs=${JOBS:-$(nproc)}
build=${BUILD:-$root/build-fuzz}
case $build in /*) ;; *) build=$root/$build ;; esac

CC=${CC:-clang} cmake -S "$root" -B "$build" -DFLIGHTREC_FUZZ=ON -DBUILD_TESTING=ON >/dev/null ||
        exit 2
cmake --build "$build" -j"$(nproc)" --target $(printf 'fuzz-%s ' "${targets[@]}") >/dev/null ||
        { echo "build failed" >&2; exit 2; }

max_len() {
        case $1 in
        reader | pprof | timeline | pmring) echo 65536 ;;
        wire) echo 70000 ;;   # one maximal daemon frame (65536) and its prefix, and then some
        config) echo 8192 ;;
        esac
}

run_one() {
        local t=$1 dir=$build/campaign/$1
        rm -rf "$dir/artifacts"
        mkdir -p "$dir/corpus" "$dir/artifacts"
        local seeds=("$here/corpus/$t")
        [ -d "$here/regressions/$t" ] && seeds+=("$here/regressions/$t")
        # UBSan findings abort (print a stack) so libFuzzer records them.
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
                "$build/tests/fuzz/fuzz-$t" "$dir/corpus" "${seeds[@]}" \
                -max_total_time="$secs" -max_len="$(max_len "$t")" -timeout=10 \
                -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$dir/artifacts/" \
                >"$dir/log" 2>&1
        echo $? >"$dir/rc"
}

echo "campaign: ${targets[*]}, ${secs}s each, $jobs at a time, in $build/campaign"
running=0
for t in "${targets[@]}"; do
        run_one "$t" &
        running=$((running + 1))
        if [ "$running" -ge "$jobs" ]; then
                wait -n
                running=$((running - 1))
        fi
done
wait

found=0
printf '%-8s %12s %8s %7s %8s %7s  %s\n' target execs exec/s cov ft corpus findings
for t in "${targets[@]}"; do
        dir=$build/campaign/$t
        log=$dir/log
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
        last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1)
        cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
        ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
        corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$last")
        if [ -z "$execs" ]; then # killed before the final stats: take the last status line
                execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
        fi
        arts=$(cd "$dir/artifacts" && ls 2>/dev/null | tr '\n' ' ')
        [ -n "$arts" ] && found=1
        [ "$(cat "$dir/rc")" = 0 ] || [ -n "$arts" ] || { arts="exit $(cat "$dir/rc"), see $log"; found=1; }
        printf '%-8s %12s %8s %7s %8s %7s  %s\n' "$t" "${execs:-?}" "${eps:-?}" "${cov:-?}" \
                "${ft:-?}" "${corp:-?}" "${arts:-none}"
        if [ -n "$arts" ]; then
                grep -m3 -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" | sed 's/^/    /'
        fi
done
exit $found
