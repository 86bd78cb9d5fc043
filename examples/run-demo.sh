#!/usr/bin/env bash
# The main job, end to end: install what is missing, build, start the daemon
# (flightrecd) on a private socket and output directory, run the example
# service (fr-demo) under LD_PRELOAD=libflightrec.so, trigger a snapshot with
# `flightrecctl trigger` while it runs, then show where the files went, check
# the trace with lz4 and flightrecctl dump, print the top of the profile
# with go tool pprof, and where the timeline for ui.perfetto.dev is.
# Usage: examples/run-demo.sh [SECONDS]   (default 4; the trigger comes at 2/3)
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/deps.sh
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
seconds=${1:-4}
work=$(mktemp -d /tmp/flightrec-demo.XXXXXX)
sock=$work/agent.sock out=$work/snapshots
mkdir -p "$out"
echo "== flightrecd --socket $sock --output-dir $out"
build/daemon/flightrecd --config /dev/null --socket "$sock" --output-dir "$out" 2>"$work/flightrecd.log" &
daemon=$!
trap 'kill $daemon 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done

echo "== fr-demo ${seconds}s under LD_PRELOAD=build/agent/libflightrec.so, CPU sampling at 1000 Hz"
FLIGHTREC_SOCKET="$sock" FLIGHTREC_HZ=1000 FLIGHTREC_DIR="$work/local" \
        LD_PRELOAD="$PWD/build/agent/libflightrec.so" build/examples/fr-demo "$seconds" >"$work/demo.log" &
demo=$!
sleep "$(echo "$seconds * 2 / 3" | bc -l)"
echo "== flightrecctl trigger --reason demo"
build/daemon/flightrecctl --socket "$sock" trigger --reason demo
wait $demo
# fr-demo's own fr_snapshot at exit is a second snapshot: let the daemon finish it.
for _ in $(seq 200); do ls "$out"/*.tmp >/dev/null 2>&1 || break; sleep 0.05; done
echo
echo "== files written (to $out):"
ls -l "$out"
trace=$(ls "$out"/*.trace.lz4 | head -1)
profile=${trace%.trace.lz4}.pb.gz
timeline=${trace%.trace.lz4}.pftrace
echo
lz4 -t -q "$trace" && echo "lz4 -t $(basename "$trace"): ok"
echo
echo "== build/daemon/flightrecctl dump $(basename "$trace") | head"
{ build/daemon/flightrecctl dump "$trace" || true; } | head -n 12
echo "..."
echo
echo "== go tool pprof -symbolize=none -top $(basename "$profile")"
export HOME=${HOME:-$work} GOCACHE=${GOCACHE:-$work/gocache}
{ go tool pprof -symbolize=none -top -nodecount=12 "$profile" 2>&1 || true; } | head -n 24
kill -TERM $daemon && wait $daemon || true
trap - EXIT
echo
echo "== timeline: $timeline"
echo "open it in https://ui.perfetto.dev (Open trace file; it is read in your browser, not uploaded)"
echo
echo "daemon log: $work/flightrecd.log; snapshots kept in $out"
