#!/bin/sh
# Process start and exit with the agent preloaded, as /etc/ld.so.preload or
# an inherited LD_PRELOAD puts it into every process (figures, not a test):
#  - /bin/true, ROUNDS rounds, variants interleaved in each round;
#  - a shell loop of 1000 /bin/true, the shell and every command under the
#    variant, LOOPS rounds;
# variants: no agent; an empty preloaded library (the floor of any
# LD_PRELOAD on this machine); the agent, process not chosen
# (FLIGHTREC_INCLUDE matches nothing); chosen, deferred start (the default,
# FLIGHTREC_START_DELAY_MS=1000: a short process never starts recording); chosen,
# started in the constructor (FLIGHTREC_START_DELAY_MS=0, what every process paid
# before). Each figure: the median, and the median of the paired differences
# with "no agent" of the same round.
# Usage: bench/run-hostwide.sh [BUILD_DIR] [ROUNDS] [LOOPS]   (default build, 400, 9)
set -eu
B=$(cd "${1:-build}" && pwd)
ROUNDS=${2:-400}
LOOPS=${3:-9}
SPAWN=$B/bench/bench_spawn
LIB=$B/agent/libflightrec.so
EMPTY=$B/bench/libbench_empty_preload.so
SOCK=/nonexistent/flightrec-bench.sock # no daemon: connecting would fail fast anyway
V="-v none:LD_PRELOAD=
   -v empty-preload:LD_PRELOAD=$EMPTY
   -v not-chosen:LD_PRELOAD=$LIB,FLIGHTREC_INCLUDE=nothing-matches,FLIGHTREC_SOCKET=$SOCK
   -v chosen-deferred:LD_PRELOAD=$LIB,FLIGHTREC_INCLUDE=*,FLIGHTREC_SOCKET=$SOCK
   -v chosen-at-once:LD_PRELOAD=$LIB,FLIGHTREC_INCLUDE=*,FLIGHTREC_START_DELAY_MS=0,FLIGHTREC_SOCKET=$SOCK"
echo "== /bin/true (us per process)"
# shellcheck disable=SC2086
"$SPAWN" -n "$ROUNDS" $V -- /bin/true
echo "== sh -c 'loop of 1000 /bin/true' (us per loop; divide by 1000 per command)"
# shellcheck disable=SC2086
"$SPAWN" -n "$LOOPS" $V -- /bin/sh -c 'i=0; while [ $i -lt 1000 ]; do /bin/true; i=$((i + 1)); done'
