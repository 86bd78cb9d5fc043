#!/bin/sh
# A Go program with cgo under LD_PRELOAD=libflightrec.so: it runs unchanged,
# its own runtime/pprof CPU profile still works (go tool pprof: goBurn holds
# most of it), the agent says under FLIGHTREC_DEBUG that it stayed off, and it
# never connects to the daemon nor makes a memfd (strace).
# Usage: test-go-runtime.sh LIBFLIGHTREC SOURCE_DIR WORKDIR
set -u
LIB=$1 SRC=$2 W=$3
command -v go >/dev/null || { echo "skip: no go toolchain (golang-go)"; exit 0; }
# TSan's runtime, which the TSan build's agent needs preloaded first, cannot
# live in a Go program (it dies at the runtime's first threads: "starting new
# threads after multi-threaded fork"); the normal and ASan builds run this.
[ "${FR_SANITIZER:-}" = thread ] && { echo "skip: TSan's runtime cannot be preloaded into Go"; exit 0; }
rm -rf "$W"
mkdir -p "$W"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }
# Offline build, the module cache and build cache inside the work directory.
# (Bounded: once, under the ASan run of the whole suite, this step never
# ended; the test is about the agent, not the toolchain, so that is a skip.)
(cd "$SRC" && GOFLAGS=-mod=mod GOPROXY=off GOCACHE="$W/gocache" GOPATH="$W/gopath" \
        CGO_ENABLED=1 timeout 150 go build -o "$W/go-cgo" .)
rc=$?
[ $rc = 124 ] && { echo "SKIP: go build did not finish within 150 s"; exit 77; }
[ $rc = 0 ] || { echo "FAIL: go build"; exit 1; }
ldd "$W/go-cgo" | grep -q libc.so && ok "go-cgo is dynamically linked (cgo)" || fail "go-cgo is static: the test means nothing"
# The sanitizer builds' agent needs its runtime first.
PRE=$LIB
[ -n "${FR_SAN_PRELOAD:-}" ] && PRE="$FR_SAN_PRELOAD:$LIB"
SOCK=$W/none.sock
# The agent goes into the Go program only (strace -E), not into timeout and
# strace: under ASan, strace made multi-threaded by the agent forked a child
# that deadlocked in ASan's allocator before its exec (it is not fork-safe).
out=$(FLIGHTREC_DEBUG=1 FLIGHTREC_START_DELAY_MS=0 FLIGHTREC_SOCKET=$SOCK \
      timeout 60 strace -E LD_PRELOAD="$PRE" -f -qq -o "$W/go.strace" \
      -e trace=connect,memfd_create,perf_event_open "$W/go-cgo" 1.5 "$W/cpu.pprof" 2>"$W/stderr")
rc=$?
[ $rc = 0 ] && [ "$out" = "cgo says 42" ] && ok "runs unchanged: '$out', exit 0" ||
        fail "exit $rc, output '$out', stderr: $(cat "$W/stderr")"
grep -q "flightrec: Go runtime in .*staying off" "$W/stderr" && ok "agent reports: $(grep Go "$W/stderr")" ||
        fail "no 'staying off' line: $(cat "$W/stderr")"
n=$(grep -c -E 'connect\(|memfd_create\(|perf_event_open\(' "$W/go.strace")
[ "$n" = 0 ] && ok "no connect, memfd_create or perf_event_open" || fail "$(cat "$W/go.strace")"
top=$(GOCACHE="$W/gocache" go tool pprof -top "$W/go-cgo" "$W/cpu.pprof" 2>&1)
samples=$(echo "$top" | sed -n 's/.*Total samples = \([0-9.]*\)\(m\{0,1\}s\).*/\1 \2/p')
# goBurn (or the preemption it takes, on a busy machine) holds the samples:
# its cumulative share is most of the profile.
cum=$(echo "$top" | awk '$6 == "main.goBurn" {sub("%", "", $5); print int($5)}')
[ -n "$cum" ] && [ "$cum" -ge 50 ] &&
        ok "its own CPU profile works: main.goBurn holds ${cum}% of it (total $samples)" ||
        fail "go tool pprof: $(echo "$top" | head -12)"
[ $failures = 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "all Go runtime checks passed"
