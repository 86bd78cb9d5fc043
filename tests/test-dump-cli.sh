#!/bin/sh
# test-dump-cli.sh FLIGHTRECCTL GEN-SAMPLE-TRACE LZ4 WORKDIR
# flightrecctl dump on a generated trace: the expected lines, the same output
# from an lz4-compressed copy, exit 1 and the reader's message on a corrupted
# trace, exit 2 on usage errors.
set -u
ctl=$1 gen=$2 lz4=$3 dir=$4
. "$(dirname "$0")/daemon-lib.sh"

# expect_line FILE LINE: FILE holds exactly this line.
expect_line() {
        grep -Fxq -- "$2" "$1" || fail "missing line in $1: $2"
}

rm -rf "$dir" && mkdir -p "$dir" || exit 1
"$gen" "$dir/valid.trace" "$dir/bad.trace" || exit 1

"$ctl" dump "$dir/valid.trace" >"$dir/out" 2>"$dir/err"
rc=$?
[ "$rc" -eq 0 ] || fail "dump of a valid trace: exit $rc: $(cat "$dir/err")"
[ -s "$dir/err" ] && fail "dump of a valid trace wrote to stderr: $(cat "$dir/err")"

out=$dir/out
expect_line "$out" 'trace version 1 pid 4242 comm "demo" exe "/usr/bin/demo" reason "SIGUSR1" flags 0x0'
expect_line "$out" 'gen 1 start 0.000000000 span 0.001000000 wall 2023-11-14T22:13:20.000000000Z threads 2 tasks 0 events 5 samples 1 maps 1 sampler perf 100 Hz'
expect_line "$out" '  thread 100 "main"'
expect_line "$out" '  map 0x400000-0x402000 offset 0x0 "/usr/bin/demo" build-id abcd'
expect_line "$out" '0.000000100 100 "main" TASK_BEGIN task 1 "request" parent 0'
expect_line "$out" '0.000000150 101 - THREAD_START'
expect_line "$out" '0.000000160 101 - THREAD_NAME name "worker \"1\""'
expect_line "$out" '0.000000200 100 "main" REGION_BEGIN task 1 "request" region "parse"'
expect_line "$out" '0.000000250 100 "main" SAMPLE weight 1 task 1 "request" region "parse" stack 0x401136 0x401180 0x7f0000021000'
expect_line "$out" '0.000000300 101 "worker \"1\"" LOG task 1 "request" category "http" message "GET /index\nHost: x"'
expect_line "$out" 'gen 2 start 0.001000000 span 0.001000000 wall 2023-11-14T22:13:20.001000000Z threads 2 tasks 1 events 4 samples 1 maps 0 sampler perf 100 Hz'
expect_line "$out" '  thread 100 "main" regions task 1 "request" region "parse"'
expect_line "$out" '  thread 101 "worker \"1\""'
expect_line "$out" '  task 1 "request" parent 0'
expect_line "$out" '0.001000050 101 "worker \"1\"" LOST what events count 2'
expect_line "$out" '0.001000060 101 "worker \"1\"" SAMPLE weight 3 task 0 region - stack 0x401180'
expect_line "$out" '0.001000100 100 "main" REGION_END task 1 "request" region "parse"'
expect_line "$out" '0.001000200 100 "main" TASK_END task 1 "request"'
expect_line "$out" '0.001000400 101 "worker \"1\"" THREAD_EXIT'
n=$(wc -l <"$out")
[ "$n" -eq 19 ] || fail "dump printed $n lines, want 19"

# The lz4-compressed copy dumps identically.
"$lz4" -q -f "$dir/valid.trace" "$dir/valid.trace.lz4" || fail "lz4 failed"
"$ctl" dump "$dir/valid.trace.lz4" >"$dir/out.lz4" 2>"$dir/err.lz4"
rc=$?
[ "$rc" -eq 0 ] || fail "dump of the lz4 copy: exit $rc: $(cat "$dir/err.lz4")"
cmp -s "$dir/out" "$dir/out.lz4" || fail "the lz4 copy dumps differently"

# A corrupted trace: exit 1, nothing on stdout, the reader's message.
"$ctl" dump "$dir/bad.trace" >"$dir/out.bad" 2>"$dir/err.bad"
rc=$?
[ "$rc" -eq 1 ] || fail "dump of a corrupted trace: exit $rc, want 1"
[ -s "$dir/out.bad" ] && fail "dump of a corrupted trace printed: $(cat "$dir/out.bad")"
grep -Eq "^flightrecctl: $dir/bad.trace: offset [0-9]+: generation 2: truncated batch header" \
        "$dir/err.bad" || fail "unexpected message: $(cat "$dir/err.bad")"

# A truncated lz4 frame and a missing file fail the same way.
head -c 40 "$dir/valid.trace.lz4" >"$dir/cut.trace.lz4"
"$ctl" dump "$dir/cut.trace.lz4" >/dev/null 2>"$dir/err.cut"
rc=$?
[ "$rc" -eq 1 ] || fail "dump of a cut lz4 frame: exit $rc, want 1"
grep -Fxq "flightrecctl: $dir/cut.trace.lz4: truncated LZ4 frame: the file ends inside it" \
        "$dir/err.cut" || fail "unexpected message: $(cat "$dir/err.cut")"
"$ctl" dump "$dir/missing.trace" >/dev/null 2>"$dir/err.missing"
rc=$?
[ "$rc" -eq 1 ] || fail "dump of a missing file: exit $rc, want 1"
grep -Fxq "flightrecctl: $dir/missing.trace: cannot open: No such file or directory" \
        "$dir/err.missing" || fail "unexpected message: $(cat "$dir/err.missing")"

# Usage errors exit 2 with a usage text.
for args in "" "dump" "dump a b" "frobnicate" "--bogus dump x"; do
        # shellcheck disable=SC2086
        "$ctl" $args >/dev/null 2>"$dir/err.usage"
        rc=$?
        [ "$rc" -eq 2 ] || fail "flightrecctl $args: exit $rc, want 2"
        grep -q "usage: flightrecctl" "$dir/err.usage" || fail "flightrecctl $args: no usage text"
done
"$ctl" --help >"$dir/help" || fail "flightrecctl --help failed"
grep -q "dump TRACE" "$dir/help" || fail "--help does not list dump"

exit_if_failed
echo "ok"
