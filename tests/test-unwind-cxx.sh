#!/bin/sh
# Full stacks in C++ built -O2 without frame pointers (tests/unwind-cxx.cc),
# under LD_PRELOAD=libflightrec.so at 1000 Hz, read back by the real
# `go tool pprof -symbolize=none -traces`:
#  - the comparator by_digits, with its callers through the std::sort frames
#    (libstdc++'s templates) up to main and the thread's root;
#  - the comparator's direct caller (a leaf's caller: GCC omits the frame
#    pointer in by_digits, so a frame-pointer walk skips it) is a std:: frame;
#  - map lookups on a std::thread reach start_thread through libstdc++.so's
#    execute_native_thread_routine;
#  - with FLIGHTREC_UNWIND=fp (the old walk) the first check fails: the test
#    can tell the unwinders apart.
# Usage: test-unwind-cxx.sh FLIGHTRECCTL LIBFLIGHTREC UNWIND_CXX WORKDIR
set -eu
ctl=$1 agent=$2 prog=$3 work=$4
rm -rf "$work" && mkdir -p "$work"
if ! command -v go >/dev/null 2>&1; then
        echo "SKIP: go (golang-go) is not installed"
        exit 77
fi
if [ "${FR_SANITIZER:-}" = thread ]; then
        echo "SKIP: TSan's runtime preloaded into an uninstrumented program"
        exit 77
fi
export HOME="$work/home" GOCACHE="$work/gocache"
mkdir -p "$HOME"
fail() { echo "FAIL: $*"; exit 1; }

# run MODE: the program under the agent; leaves $work/MODE/stacks.txt, one
# stack a line, innermost first.
run() {
        d="$work/$1"
        mkdir -p "$d"
        FLIGHTREC_UNWIND=$1 FLIGHTREC_HZ=1000 FLIGHTREC_GENERATIONS=100 FLIGHTREC_DIR="$d" \
                FLIGHTREC_SOCKET="$work/none.sock" \
                LD_PRELOAD="${FR_SAN_PRELOAD:+$FR_SAN_PRELOAD }$agent" "$prog" 2 >"$d/out.txt" || fail "$1: program failed"
        "$ctl" pprof "$d"/*.trace.lz4 -o "$d/p.pb.gz" 2>"$d/pprof.log" || fail "$1: $(cat "$d/pprof.log")"
        go tool pprof -symbolize=none -traces "$d/p.pb.gz" >"$d/traces.txt" 2>&1 || fail "$1: go tool pprof"
        awk '/^-----/ { print s; s = ""; next } /:/ && !/::/ { next }
             { sub(/^ *[0-9.]+m?s +/, ""); sub(/^ +/, ""); s = s "|" $0 } END { print s }' \
                "$d/traces.txt" >"$d/stacks.txt"
}
run auto
s="$work/auto/stacks.txt"
n=$(grep -c '^|by_digits(' "$s" || true)
full=$(grep '^|by_digits(' "$s" | grep -c '|void std::sort<.*|sort_round(.*|main|__libc_start_call_main|__libc_start_main_impl|_start$' || true)
echo "auto: $n distinct stacks in by_digits, $full through std:: frames and sort_round up to main"
[ "$n" -ge 5 ] || fail "too few distinct stacks in the comparator ($n)"
[ $((full * 100)) -ge $((n * 90)) ] || fail "only $full of $n comparator stacks reach main"
# The comparator's direct caller: the sort's comparison wrapper (inlined into
# the std:: partition or insertion step that called by_digits).
caller=$(grep '^|by_digits(' "$s" | awk -F'|' '{ c = $3; sub(/\(.*/, "", c); print c }' | sort | uniq -c | sort -rn | head -3)
echo "comparator's direct callers:"; echo "$caller"
# (A one-frame stack is a sample taken before the advancer knew the stack of
# a thread adopted at the deferred start: its first ~20 ms are leaf-only.)
grep '^|by_digits(' "$s" | awk -F'|' '$3 != "" && $3 !~ /__gnu_cxx::__ops::_(Iter|Val)_comp_iter|^void std::|std::__/ { bad++ } END { exit bad > 0 }' ||
        fail "a comparator stack whose direct caller is not a std::sort frame"
# (execute_native_thread_routine is a local symbol: named only with libstdc++'s
# debug symbols, else libstdc++.so.6+offset.)
grep '^|std::_Rb_tree' "$s" |
        grep -Eq '\|map_round\(.*\|(execute_native_thread_routine|libstdc\+\+\.so\.6\+0x[0-9a-f]+)\|start_thread\|__clone3$' ||
        fail "no map lookup on the std::thread reaching start_thread through libstdc++.so"
grep -m1 '^|by_digits(' "$s" | tr '|' '\n' | cut -c1-100 | sed 's/^/    /'

run fp
f=$(grep '^|by_digits(' "$work/fp/stacks.txt" | grep -c '|sort_round(.*|main|' || true)
echo "fp: $f comparator stacks reach main"
[ "$f" -lt "$full" ] || fail "the frame-pointer walk did as well as .eh_frame: the check cannot tell them apart"
echo PASS
