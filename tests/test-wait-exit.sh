#!/bin/sh
# wait_exit (daemon-lib.sh), which every end-to-end script uses for the
# programs it waits for: a program that ends gives its status; one that
# hangs is shown with its stacks, killed and reported (124); in the TSan
# build, a program stuck in TSan's own race-report deadlock (a runtime defect
# that tsan_nested_report shows with no flightrec code) is told apart (125).
# Usage: test-wait-exit.sh WORKDIR [TSAN_NESTED_REPORT WRAPPER_LIB]
W=$1
NESTED=${2:-}
WRAP=${3:-}
. "$(dirname "$0")/daemon-lib.sh"
rm -rf "$W"
mkdir -p "$W"

say "a program that ends: its status"
sh -c 'exit 3' &
wait_exit 10 $!
rc=$?
[ $rc -eq 3 ] && ok "status 3 passed on" || fail "status $rc, not 3"

say "a program that hangs: its stacks, killed, 124"
sleep 300 &
S=$!
wait_exit 1 $S >"$W/hung.txt"
rc=$?
[ $rc -eq 124 ] && ok "124" || fail "status $rc for a hung sleep, not 124"
grep -q "^--- stacks of $S" "$W/hung.txt" && grep -q "wchan" "$W/hung.txt" && ok "its threads shown" ||
        fail "no stacks: $(cat "$W/hung.txt")"
kill -0 $S 2>/dev/null && fail "the hung program still runs" || ok "killed"
grep -q "^skip:" "$W/hung.txt" && fail "a plain hang taken for TSan's deadlock"

if [ -n "$NESTED" ]; then
        say "TSan's own deadlock (tsan_nested_report, no flightrec code): 125"
        FR_SANITIZER=thread
        TSAN_OPTIONS="report_signal_unsafe=0 ${TSAN_OPTIONS:-}" LD_PRELOAD="$FR_SAN_PRELOAD $WRAP" \
                "$NESTED" 100000 >"$W/nested.out" 2>&1 &
        wait_exit 20 $! >"$W/nested.txt"
        rc=$?
        if [ $rc -eq 125 ]; then
                ok "told apart: $(grep '^skip:' "$W/nested.txt")"
        elif [ $rc -eq 0 ]; then
                skip "this TSan did not deadlock ($(cat "$W/nested.out")): a fixed runtime"
        else
                fail "status $rc: $(cat "$W/nested.txt" "$W/nested.out" | head -40)"
        fi
else
        skip "TSan's own deadlock: not a TSan build"
fi

[ $failures -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "all wait_exit checks passed"
