#!/bin/sh
# Application safety under load: tests/stress-app (thread and fork/exec storms,
# a read() blocked on a pipe, sleeps, its own SIGUSR2, deep recursion with
# frames lacking frame pointers) under LD_PRELOAD=libflightrec.so at 1000 Hz,
# the generation advancing every 10 ms: the program's own checks (no EINTR, every
# SIGUSR2 handled) hold, it exits cleanly, and the snapshot it asks for reads
# back valid. Usage: test-stress-app.sh FLIGHTRECCTL LIBFLIGHTREC STRESS_APP WORKDIR [SECONDS]
set -eu
ctl=$1 agent=$2 app=$3 work=$4 seconds=${5:-8}
# A sanitizer's allocator is not fork-safe in a threaded program (a child
# forked while another thread holds its lock deadlocks in malloc; glibc's is
# safe): under sanitizers the storm runs without forks.
if [ -n "${FR_SANITIZER:-}" ]; then
        export STRESS_NO_FORK=1
fi
if [ "${FR_SANITIZER:-}" = thread ]; then
        echo "SKIP: TSan defers and merges signals, so the program's own signal count cannot hold"
        exit 77
fi
rm -rf "$work" && mkdir -p "$work"
# (timeout runs without the agent: LD_PRELOAD is set for the program only)
# 1000 generations of 10 ms: the snapshot at the end holds the whole run.
timeout $((seconds + 60)) env FLIGHTREC_HZ=1000 FLIGHTREC_PERIOD_MS=10 FLIGHTREC_GENERATIONS=1000 FLIGHTREC_DIR="$work" \
        FLIGHTREC_SOCKET="$work/none.sock" LD_PRELOAD="${FR_SAN_PRELOAD:+$FR_SAN_PRELOAD }$agent" \
        "$app" "$seconds"
n=$(ls "$work"/stress-app-*.trace.lz4 | wc -l)
[ "$n" -ge 1 ] || { echo "FAIL: no snapshot"; exit 1; }
for f in "$work"/stress-app-*.trace.lz4; do
        "$ctl" dump "$f" >"$work/dump.txt" || { echo "FAIL: $f does not read back"; exit 1; }
done
echo "snapshot reads back: $(grep -c SAMPLE "$work/dump.txt") samples, $(grep -c THREAD_START "$work/dump.txt") thread starts"

# The unwinder (FLIGHTREC_UNWIND=auto): callers found through .eh_frame where
# there are no frame pointers, through the kernel's signal frame from the
# alternate stack, and past garbage in RBP, up to the thread's root.
if [ -n "${FR_SANITIZER:-}" ] || ! command -v go >/dev/null 2>&1; then
        echo "stack checks skipped (${FR_SANITIZER:+sanitizer }${FR_SANITIZER:-no go})"
        echo PASS
        exit 0
fi
export HOME="$work/home" GOCACHE="$work/gocache"
mkdir -p "$HOME"
last=$(ls "$work"/stress-app-*.trace.lz4 | tail -1)
"$ctl" pprof "$last" -o "$work/p.pb.gz" 2>"$work/pprof.log" || { echo "FAIL: pprof: $(cat "$work/pprof.log")"; exit 1; }
go tool pprof -symbolize=none -traces "$work/p.pb.gz" >"$work/traces.txt" 2>&1 || { echo "FAIL: go tool pprof"; exit 1; }
# One line per stack, innermost frame first (label lines skipped).
awk '/^-----/ { print s; s = ""; next } /:/ { next } { s = s " " $NF } END { print s }' \
        "$work/traces.txt" >"$work/stacks.txt"
# has LEAF CALLER...: a stack with LEAF innermost and these callers below it, in order.
has() {
        pat="^ $1"
        shift
        for f in "$@"; do pat="$pat .*$f"; done
        grep -q -- "$pat" "$work/stacks.txt"
}
has altstack_work altstack_main start_thread || { echo "FAIL: no stack from the altstack handler through the signal frame"; exit 1; }
has garbage_spin garbage start_thread || { echo "FAIL: no stack past garbage registers to start_thread"; exit 1; }
nofp=$(awk '{ n = 0; for (i = 1; i <= NF; i++) n += $i == "recurse_nofp"; if (n > m) m = n } END { print m + 0 }' "$work/stacks.txt")
echo "deepest stack in recurse_nofp (no frame pointers): $nofp frames"
[ "$nofp" -ge 100 ] || { echo "FAIL: recursion without frame pointers unwound only $nofp frames"; exit 1; }
echo PASS
