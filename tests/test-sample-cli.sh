#!/bin/sh
# Sampling acceptance with the real `go tool pprof`, on a program that knows
# nothing of flightrec, run under LD_PRELOAD=libflightrec.so:
#  - seed 003: spinning in cpuHog, `-top -nodecount=1` prints cpuHog;
#  - two threads splitting CPU 2:1 between exeWork (executable) and libWork
#    (shared library): flat shares 2:1 within 5 points, at 100 and 1000 Hz;
#  - cpuHog inside region "hot": -tagfocus=region=hot keeps only it.
# Usage: test-sample-cli.sh FLIGHTRECCTL LIBFLIGHTREC SAMPLE_TARGET WORKDIR
set -eu
ctl=$1 agent=$2 target=$3 work=$4
rm -rf "$work" && mkdir -p "$work"
if [ -n "${FR_SKIP_PROPORTIONS:-}" ]; then
        echo "SKIP: under $FR_SKIP_PROPORTIONS the sanitizer's runtime dominates every profile"
        exit 77
fi
if ! command -v go >/dev/null 2>&1; then
        echo "SKIP: go (golang-go) is not installed"
        exit 77
fi
export HOME="$work/home" GOCACHE="$work/gocache" GOPATH="$work/gopath"
# Record from the first instruction (no deferred start): the target opens its
# "hot" region at once, and a region begun before the start is not seen.
export FLIGHTREC_START_DELAY_MS=0
mkdir -p "$HOME"
fail() { echo "FAIL: $*"; exit 1; }

# run MODE SECONDS HZ: run the target under the agent, convert, print the profile path.
run() {
        dir="$work/$1-$3"
        mkdir -p "$dir"
        FLIGHTREC_DIR="$dir" FLIGHTREC_HZ=$3 FLIGHTREC_SOCKET="$work/none.sock" \
                LD_PRELOAD="${FR_SAN_PRELOAD:+$FR_SAN_PRELOAD }$agent" "$target" "$1" "$2" || fail "$1: target failed"
        trace=$(ls "$dir"/*.trace.lz4) || fail "$1: no snapshot in $dir"
        "$ctl" pprof "$trace" -o "$dir/profile.pb.gz" 2>"$dir/pprof.log" || fail "$1: $(cat "$dir/pprof.log")"
        echo "$dir/profile.pb.gz"
}

# share FUNC TOPFILE: the flat% of FUNC in a -top listing (0 when absent).
share() { awk -v f="$1" '$NF == f { sub("%", "", $2); print $2; found = 1 } END { if (!found) print 0 }' "$2"; }

p=$(run hog 1.5 1000)
go tool pprof -symbolize=none -top -nodecount=1 "$p" >"$work/hog.top" 2>&1 || fail "go tool pprof: $(cat "$work/hog.top")"
cat "$work/hog.top"
tail -n 1 "$work/hog.top" | grep -q 'cpuHog$' || fail "top entry is not cpuHog"

for hz in 100 1000; do
        p=$(run split 3 $hz)
        go tool pprof -symbolize=none -top "$p" >"$work/split-$hz.top" 2>&1 || fail "go tool pprof: $(cat "$work/split-$hz.top")"
        exe=$(share exeWork "$work/split-$hz.top")
        lw=$(share libWork "$work/split-$hz.top")
        echo "split at $hz Hz: exeWork $exe%, libWork $lw% (want 66.7 and 33.3 within 5 points)"
        awk -v e="$exe" -v l="$lw" 'BEGIN {
                t = e + l; if (t == 0) exit 1
                ee = 100 * e / t; d = ee - 200 / 3; if (d < 0) d = -d
                exit !(d <= 5 && t >= 95) }' || fail "split at $hz Hz is not 2:1 within 5 points"
done

p=$(run region 1.5 1000)
go tool pprof -symbolize=none -top "$p" >"$work/region-all.top" 2>&1
go tool pprof -symbolize=none -tagfocus=region=hot -top "$p" >"$work/region-hot.top" 2>&1 || fail "tagfocus: $(cat "$work/region-hot.top")"
cat "$work/region-hot.top"
grep -q 'cpuHog$' "$work/region-hot.top" || fail "region=hot lost cpuHog"
grep -q 'coldWork$' "$work/region-all.top" || fail "the whole profile lacks coldWork"
if grep -q 'coldWork$' "$work/region-hot.top"; then fail "region=hot kept coldWork"; fi
echo "PASS"
