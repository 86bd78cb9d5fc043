#!/usr/bin/env bash
# The main job, end to end: build, run the example service (fr-demo) under the
# agent with LD_PRELOAD, take a snapshot, show where it went and its first lines.
# Usage: examples/run-demo.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/deps.sh
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
out=$(mktemp -d /tmp/flightrec-demo.XXXXXX)
echo "running build/examples/fr-demo ${1:-3}s under LD_PRELOAD=libflightrec.so, FLIGHTREC_DIR=$out"
FLIGHTREC_DIR="$out" LD_PRELOAD="$PWD/build/agent/libflightrec.so" build/examples/fr-demo "${1:-3}"
trace=$(ls "$out"/*.trace.lz4)
echo
echo "snapshot written: $trace ($(stat -c %s "$trace") bytes, lz4 frame)"
lz4 -t "$trace" && echo "lz4 -t: ok"
echo
echo "first lines of: build/daemon/flightrecctl dump $trace"
build/daemon/flightrecctl dump "$trace" | head -n 25
echo "..."
echo "events per type:"
build/daemon/flightrecctl dump "$trace" | awk '{print $4}' | sort | uniq -c | sort -rn | head
