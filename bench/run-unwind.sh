#!/usr/bin/env bash
# Stack fidelity of flightrec's unwinder against `perf record --call-graph
# dwarf` on Debian-packaged programs built without frame pointers:
#  - sqlite3 (one thread) running a heavy query: a recursive CTE, an ORDER BY
#    on computed strings, a GROUP BY;
#  - zstd -T2 -12 compressing a 30 MB file (worker threads: the root is
#    clone3 / start_thread).
# For each: flightrec under LD_PRELOAD at 1000 Hz (FLIGHTREC_UNWIND=auto and
# =fp), counted by where the unwinder stopped (FLIGHTREC_DEBUG: walks ending
# at a frame whose return address is undefined, i.e. _start or clone3), and
# perf (-e cpu-clock:u -F 1000 --call-graph dwarf), counted by its outermost
# frames (_start, __libc_start_main, clone3, start_thread; libc6-dbg names
# the internal ones). Prints % of samples reaching the root, mean depth, and
# the handler's own time by depth (p50/p99, total and unwinding alone).
# Usage: bench/run-unwind.sh [ROUNDS]   (BUILD=build by default)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
build=${BUILD:-build}
cmake -S . -B "$build" >/dev/null && cmake --build "$build" -j2 --target flightrec >/dev/null
agent=$PWD/$build/agent/libflightrec.so
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for p in sqlite3 zstd perf; do
        command -v $p >/dev/null || { echo "SKIP: $p is not installed (apt-get install sqlite3 zstd linux-perf)"; exit 77; }
done
cat >"$tmp/q.sql" <<'SQL'
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 1500000)
SELECT count(*), sum(length(h)) FROM (SELECT x, hex(randomblob(16)) || printf('%08d', x*7919 % 1000003) AS h
  FROM c ORDER BY h DESC) GROUP BY substr(h, 1, 2) ORDER BY 1 LIMIT 3;
SQL
head -c 22500000 /dev/urandom | base64 -w 100 >"$tmp/in.txt"
work_sqlite() { sqlite3 :memory: <"$tmp/q.sql" >/dev/null; }
work_zstd() { zstd -T2 -12 -q -c "$tmp/in.txt" >/dev/null; }

# flightrec WORK MODE TAG: one run; its FLIGHTREC_DEBUG lines in $tmp/TAG.log.
flightrec() {
        FLIGHTREC_UNWIND=$2 FLIGHTREC_DEBUG=1 FLIGHTREC_HZ=1000 FLIGHTREC_SOCKET="$tmp/none.sock" \
                FLIGHTREC_DIR="$tmp" LD_PRELOAD="$agent" "work_$1" 2>"$tmp/$3.log"
        awk '/walks ended by/ { for (i = 1; i <= NF; i++) { if ($i == "root") r = $(i+1); if ($i ~ /^[0-9]+;?$/) n += $i }
                                d = $NF } END { printf "%d %d %s\n", r, n, d }' "$tmp/$3.log"
}
# perf_run WORK TAG COMM STACKBYTES: one run under perf dwarf (STACKBYTES of
# stack copied per sample; perf's default 8192 cuts deep stacks short);
# prints "root samples depth" for the samples of COMM.
perf_run() {
        perf record -q -e cpu-clock:u -F 1000 --call-graph dwarf,$4 -o "$tmp/$2.data" -- bash -c \
                "$(declare -f "work_$1"); tmp=$tmp work_$1" 2>/dev/null
        perf script -i "$tmp/$2.data" -F comm,ip,sym --no-inline 2>/dev/null | awk -v comm="$3" '
                function flush() { if (n && c == comm) { s++; d += n; if (root) r++ } n = 0; root = 0 }
                /^[^ \t]/ { flush(); c = $1; next }
                NF == 0 { flush(); next }
                { n++; if ($2 ~ /^(_start|__libc_start_main.*|__libc_start_call_main|clone3|__clone3|__clone|start_thread)$/) root = 1 }
                END { flush(); printf "%d %d %.2f\n", r, s, s ? d / s : 0 }'
}

# row WORKLOAD UNWINDER: "root samples depth" on stdin -> one tab-separated row.
row() { awk -v w="$1" -v u="$2" -v OFS='\t' '{ print w, u, ($2 ? 100 * $1 / $2 : 0), $2, $3 }'; }
for w in sqlite zstd; do
        comm=$([ $w = sqlite ] && echo sqlite3 || echo zstd)
        for r in $(seq "$rounds"); do
                flightrec $w auto "$w-auto-$r" | row $w "flightrec auto"
                flightrec $w fp "$w-fp-$r" | row $w "flightrec fp"
                perf_run $w "$w-perf-$r" "$comm" 65528 | row $w "perf dwarf 64K"
                perf_run $w "$w-perf8-$r" "$comm" 8192 | row $w "perf dwarf 8K"
        done
done >"$tmp/table"
echo "per run: workload, unwinder, % of samples reaching the thread root, samples, mean depth"
awk -F'\t' '{ printf "  %-7s %-15s %6.2f%% %7d %6.2f\n", $1, $2, $3, $4, $5 }' "$tmp/table"
echo
echo "medians, flightrec auto against perf --call-graph dwarf (8 KiB, perf's default, and 64 KiB"
echo "stack copies; perf's better run is the reference: 8 KiB cuts sqlite3's stack short, 64 KiB"
echo "copies lose samples' stacks under load):"
for w in sqlite zstd; do
        for v in "perf dwarf 8K" "perf dwarf 64K"; do
                awk -F'\t' -v w=$w -v v="$v" '
                        function med(v, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
                                                         return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }
                        $1 == w && $2 == "flightrec auto" { ar[++na] = $3; ad[na] = $5 }
                        $1 == w && $2 == v { pr[++np] = $3; pd[np] = $5 }
                        END { ma = med(ad, na); mp = med(pd, np)
                              printf "  %-7s vs %-15s reach root %6.2f%% vs %6.2f%%; mean depth %.2f vs %.2f: ratio %.3f\n", w, v, med(ar, na), med(pr, np), ma, mp, mp ? ma / mp : 0 }' "$tmp/table"
        done
done
echo
echo "handler time by depth (flightrec auto, all runs; ns):"
for w in sqlite zstd; do
        echo "  $w:"
        cat "$tmp"/$w-auto-*.log | awk '/handler time/ { sub(/^flightrec: handler time, /, ""); print "    " $0 }'
done
