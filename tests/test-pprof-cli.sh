#!/bin/sh
# test-pprof-cli.sh FLIGHTRECCTL GEN-PPROF-TRACE LZ4 WORKDIR
# flightrecctl pprof on a trace of the generator itself (cpuHog and otherWork
# sampled 2:1), read back by the real `go tool pprof -symbolize=none`: cpuHog
# on top, shares 2:1, -tagfocus on the region label; the output file's name,
# mode and atomicity; clear failures on bad input, leaving no file behind.
# Exits 77 (skip) when go is not installed, after the checks that need no go.
set -u
ctl=$1 gen=$2 lz4=$3 dir=$4
. "$(dirname "$0")/daemon-lib.sh"

rm -rf "$dir" && mkdir -p "$dir" || exit 1
"$gen" "$dir/app.trace" || exit 1

# Conversion with the default output name, from the lz4 form too.
"$ctl" pprof "$dir/app.trace" 2>"$dir/err"
rc=$?
[ "$rc" -eq 0 ] || fail "pprof of a valid trace: exit $rc: $(cat "$dir/err")"
[ -s "$dir/app.pb.gz" ] || fail "no $dir/app.pb.gz"
grep -Eq "^flightrecctl: wrote $dir/app.pb.gz: 240 samples \(2 distinct\) in 2 generations, 4 locations, 0 unresolved, [0-9]+ mappings$" \
        "$dir/err" || fail "unexpected summary: $(cat "$dir/err")"
[ "$(wc -l <"$dir/err")" -eq 1 ] || fail "more than one line on stderr: $(cat "$dir/err")"
mode=$(stat -c %a "$dir/app.pb.gz")
[ "$mode" = 640 ] || fail "mode of the profile is $mode, want 640"
gzip -t "$dir/app.pb.gz" 2>/dev/null || fail "the profile is not gzip"

"$lz4" -q -f "$dir/app.trace" "$dir/lz.trace.lz4" || fail "lz4 failed"
"$ctl" pprof "$dir/lz.trace.lz4" 2>"$dir/err.lz4" || fail "pprof of the lz4 form: $(cat "$dir/err.lz4")"
cmp -s "$dir/app.pb.gz" "$dir/lz.pb.gz" || fail "the lz4 form converts differently"

"$ctl" pprof --no-symbolize "$dir/app.trace" -o "$dir/nosym.pb.gz" 2>"$dir/err.nosym" ||
        fail "pprof --no-symbolize: $(cat "$dir/err.nosym")"
grep -q ", 4 locations, 4 unresolved," "$dir/err.nosym" ||
        fail "--no-symbolize summary: $(cat "$dir/err.nosym")"

# Bad input: exit 1, the reader's message, no output file, no temporary
# file, and an existing output left as it was.
head -c 300 "$dir/app.trace" >"$dir/cut.trace"
"$ctl" pprof "$dir/cut.trace" 2>"$dir/err.cut"
rc=$?
[ "$rc" -eq 1 ] || fail "pprof of a truncated trace: exit $rc, want 1"
grep -Eq "^flightrecctl: $dir/cut.trace: offset [0-9]+: " "$dir/err.cut" ||
        fail "unexpected message for a truncated trace: $(cat "$dir/err.cut")"
[ -e "$dir/cut.pb.gz" ] && fail "a truncated trace left $dir/cut.pb.gz"

printf 'this is not a trace at all\n' >"$dir/junk.trace"
echo old >"$dir/keep.pb.gz"
"$ctl" pprof "$dir/junk.trace" -o "$dir/keep.pb.gz" 2>"$dir/err.junk"
rc=$?
[ "$rc" -eq 1 ] || fail "pprof of garbage: exit $rc, want 1"
grep -Eq "^flightrecctl: $dir/junk.trace: offset 0: .*magic" "$dir/err.junk" ||
        fail "unexpected message for garbage: $(cat "$dir/err.junk")"
[ "$(cat "$dir/keep.pb.gz")" = old ] || fail "a failed conversion changed the existing output"

head -c 40 "$dir/lz.trace.lz4" >"$dir/cutlz.trace.lz4"
"$ctl" pprof "$dir/cutlz.trace.lz4" 2>"$dir/err.cutlz"
rc=$?
[ "$rc" -eq 1 ] || fail "pprof of a cut lz4 frame: exit $rc, want 1"
grep -Fxq "flightrecctl: $dir/cutlz.trace.lz4: truncated LZ4 frame: the file ends inside it" \
        "$dir/err.cutlz" || fail "unexpected message for a cut lz4 frame: $(cat "$dir/err.cutlz")"
[ -e "$dir/cutlz.pb.gz" ] && fail "a cut lz4 frame left $dir/cutlz.pb.gz"

# An output directory that does not exist: the write fails, nothing is left.
"$ctl" pprof "$dir/app.trace" -o "$dir/nodir/x.pb.gz" 2>"$dir/err.nodir"
rc=$?
[ "$rc" -eq 1 ] || fail "pprof into a missing directory: exit $rc, want 1"
grep -q "cannot create a temporary file: No such file or directory" "$dir/err.nodir" ||
        fail "unexpected message for a missing directory: $(cat "$dir/err.nodir")"

# No temporary file survives any of the above.
leftover=$(find "$dir" -name '.*.pb.gz.*')
[ -z "$leftover" ] || fail "temporary files left: $leftover"

# Usage errors.
for args in "pprof" "pprof a b" "pprof --bogus x" "pprof -o"; do
        # shellcheck disable=SC2086
        "$ctl" $args >/dev/null 2>"$dir/err.usage"
        rc=$?
        [ "$rc" -eq 2 ] || fail "flightrecctl $args: exit $rc, want 2"
        grep -q "usage: flightrecctl pprof" "$dir/err.usage" || fail "flightrecctl $args: no usage text"
done
"$ctl" --help | grep -q "pprof TRACE" || fail "--help does not list pprof"

# The real go tool pprof.
if ! command -v go >/dev/null 2>&1; then
        exit_if_failed
        echo "SKIP: go is not installed (the go tool pprof checks did not run)"
        exit 77
fi
# go wants a writable home, cache and path; keep them out of the user's.
export HOME="$dir/home" GOCACHE="$dir/home/cache" GOPATH="$dir/home/go" PPROF_TMPDIR="$dir/home/pprof"
export GOFLAGS= GOTOOLCHAIN=local GO111MODULE=off
mkdir -p "$HOME" || exit 1

# top_entries FILE: "name flat flat%" per entry of a -top listing.
top_entries() {
        awk 'f && NF >= 6 { sub(/%/, "", $2); print $6, $1, $2 } /flat%/ { f = 1 }' "$1"
}

go tool pprof -symbolize=none -top "$dir/app.pb.gz" >"$dir/top" 2>"$dir/top.err"
rc=$?
[ "$rc" -eq 0 ] || fail "go tool pprof: exit $rc: $(cat "$dir/top.err")"
top_entries "$dir/top" >"$dir/top.entries"
first=$(head -n 1 "$dir/top.entries" | cut -d' ' -f1)
[ "$first" = cpuHog ] || fail "top entry is '$first', want cpuHog: $(cat "$dir/top")"
hog=$(awk '$1 == "cpuHog" { print $3 }' "$dir/top.entries")
other=$(awk '$1 == "otherWork" { print $3 }' "$dir/top.entries")
if [ -z "$hog" ] || [ -z "$other" ]; then
        fail "cpuHog or otherWork missing: $(cat "$dir/top")"
else
        # 2:1 means 66.7% and 33.3%; within 5 points each.
        awk -v h="$hog" -v o="$other" 'BEGIN {
                d1 = h - 200 / 3; d2 = o - 100 / 3
                exit !(d1 < 5 && d1 > -5 && d2 < 5 && d2 > -5) }' ||
                fail "flat shares cpuHog $hog% otherWork $other%, want 2:1: $(cat "$dir/top")"
fi
# 300 periods of 10 ms: 3 s in all.
grep -q "of 3s total" "$dir/top" || fail "total is not 3s: $(cat "$dir/top")"
# Names come from the profile: driver is the caller, named too.
grep -q " driver$" "$dir/top" || fail "the caller 'driver' is not named: $(cat "$dir/top")"

# -tagfocus on the region label keeps only that region's samples (pprof
# still gives shares of the unfiltered total).
# focus_check LABEL=VALUE FUNC SECONDS OTHERFUNC
focus_check() {
        out="$dir/top.$1"
        go tool pprof -symbolize=none -top "-tagfocus=$1" "$dir/app.pb.gz" >"$out" 2>"$out.err" ||
                fail "go tool pprof -tagfocus=$1: $(cat "$out.err")"
        top_entries "$out" >"$out.entries"
        grep -q "^Showing nodes accounting for $3, " "$out" || fail "-tagfocus=$1: not $3: $(cat "$out")"
        grep -q "^$2 $3 " "$out.entries" || fail "-tagfocus=$1: $2 is not $3 flat: $(cat "$out")"
        grep -q "^$4 " "$out.entries" && fail "-tagfocus=$1 kept $4: $(cat "$out")"
}
focus_check region=cold otherWork 1s cpuHog
focus_check region=hot cpuHog 2s otherWork
# The thread labels are there too.
focus_check thread_name=worker otherWork 1s cpuHog
# A bare number would be a numeric filter, which string labels never match.
focus_check "thread_id=^10$" cpuHog 2s otherWork

# Unsymbolized, go still reads it and shows the object+offset names.
go tool pprof -symbolize=none -top "$dir/nosym.pb.gz" >"$dir/top.nosym" 2>"$dir/top.nosym.err" ||
        fail "go tool pprof on the unsymbolized profile: $(cat "$dir/top.nosym.err")"
grep -q "gen-pprof-trace+0x" "$dir/top.nosym" || fail "unsymbolized names: $(cat "$dir/top.nosym")"

exit_if_failed
echo "ok"
