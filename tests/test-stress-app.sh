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
timeout $((seconds + 60)) env FLIGHTREC_HZ=1000 FLIGHTREC_PERIOD_MS=10 FLIGHTREC_DIR="$work" \
        FLIGHTREC_SOCKET="$work/none.sock" LD_PRELOAD="${FR_SAN_PRELOAD:+$FR_SAN_PRELOAD }$agent" \
        "$app" "$seconds"
n=$(ls "$work"/stress-app-*.trace.lz4 | wc -l)
[ "$n" -ge 1 ] || { echo "FAIL: no snapshot"; exit 1; }
for f in "$work"/stress-app-*.trace.lz4; do
        "$ctl" dump "$f" >"$work/dump.txt" || { echo "FAIL: $f does not read back"; exit 1; }
done
echo "snapshot reads back: $(grep -c SAMPLE "$work/dump.txt") samples, $(grep -c THREAD_START "$work/dump.txt") thread starts"
echo PASS
