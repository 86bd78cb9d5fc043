#!/bin/sh
# test-perfetto-cli.sh FLIGHTRECCTL GEN-PPROF-TRACE LZ4 PROTOC PROTO_DIR WORKDIR
# flightrecctl perfetto end to end: the .pftrace decodes with the real
# `protoc --decode` against our proto/perfetto.proto and holds the sampled
# functions by name; --json writes Chrome JSON; the lz4 form converts the
# same; default names, mode 0640; a damaged trace gives the reader's message,
# exit 1 and no file (not even a temporary one).
set -u
ctl=$1 gen=$2 lz4=$3 protoc=$4 protodir=$5 dir=$6
. "$(dirname "$0")/daemon-lib.sh"

rm -rf "$dir" && mkdir -p "$dir" || exit 1
"$gen" "$dir/app.trace" || exit 1

"$ctl" perfetto "$dir/app.trace" 2>"$dir/err" || fail "perfetto: $(cat "$dir/err")"
[ -s "$dir/app.pftrace" ] || fail "no $dir/app.pftrace"
grep -Eq "^flightrecctl: wrote $dir/app.pftrace \([0-9]+ bytes\): 2 generations, [0-9]+ threads, [0-9]+ slices, [0-9]+ instants, [0-9]+ flows, 240 samples$" \
        "$dir/err" || fail "unexpected summary: $(cat "$dir/err")"
grep -q "ui.perfetto.dev" "$dir/err" || fail "no hint to open it in ui.perfetto.dev"
[ "$(stat -c %a "$dir/app.pftrace")" = 640 ] || fail "mode of the .pftrace is not 640"

if [ -z "$protoc" ] || ! [ -x "$protoc" ]; then
        fail "protoc not found (.ci/deps.sh installs protobuf-compiler)"
else
        "$protoc" --decode=flightrec.perfetto.Trace -I "$protodir" "$protodir/perfetto.proto" \
                <"$dir/app.pftrace" >"$dir/decoded.txt" 2>"$dir/protoc.err" ||
                fail "protoc --decode: $(cat "$dir/protoc.err")"
        [ -s "$dir/protoc.err" ] && fail "protoc warned: $(cat "$dir/protoc.err")"
        for f in cpuHog otherWork; do
                grep -q "str: \"$f\"" "$dir/decoded.txt" || fail "function $f not in the decoded trace"
        done
        n=$(grep -c "perf_sample {" "$dir/decoded.txt")
        [ "$n" -eq 240 ] || fail "$n perf_sample packets, want 240"
        grep -q "process_name: \"" "$dir/decoded.txt" || fail "no process track"
fi

"$lz4" -q -f "$dir/app.trace" "$dir/lz.trace.lz4" || fail "lz4 failed"
"$ctl" perfetto "$dir/lz.trace.lz4" 2>"$dir/err.lz4" || fail "lz4 form: $(cat "$dir/err.lz4")"
cmp -s "$dir/app.pftrace" "$dir/lz.pftrace" || fail "the lz4 form converts differently"

"$ctl" perfetto --json "$dir/app.trace" 2>"$dir/err.json" || fail "--json: $(cat "$dir/err.json")"
[ -s "$dir/app.json" ] || fail "no $dir/app.json"
head -c 40 "$dir/app.json" | grep -q '^{"displayTimeUnit":"ms","traceEvents":\[' ||
        fail "not Chrome JSON: $(head -c 80 "$dir/app.json")"
grep -Eq '"ts":[0-9]+[eE.]' "$dir/app.json" && fail "a ts that is not an integer"
node -e 'JSON.parse(require("fs").readFileSync(process.argv[1]))' "$dir/app.json" 2>/dev/null ||
        { command -v node >/dev/null && fail "the JSON does not parse"; }

"$ctl" perfetto -o "$dir/out.pftrace" --max-events-per-s x "$dir/app.trace" 2>/dev/null
[ $? -eq 2 ] || fail "a bad limit is not a usage error"

# Damaged input: exit 1, the reader's message, nothing written.
head -c 300 "$dir/app.trace" >"$dir/cut.trace"
"$ctl" perfetto "$dir/cut.trace" 2>"$dir/err.cut"
rc=$?
[ "$rc" -eq 1 ] || fail "truncated trace: exit $rc, want 1"
grep -Eq "^flightrecctl: $dir/cut.trace: offset [0-9]+: " "$dir/err.cut" ||
        fail "unexpected message for a truncated trace: $(cat "$dir/err.cut")"
[ -e "$dir/cut.pftrace" ] && fail "a truncated trace left $dir/cut.pftrace"
"$ctl" perfetto --json "$dir/cut.trace" 2>/dev/null && fail "--json of a truncated trace succeeded"
[ -e "$dir/cut.json" ] && fail "a truncated trace left $dir/cut.json"
ls -a "$dir" | grep -q '^\.cut' && fail "a temporary file was left: $(ls -a "$dir")"
"$ctl" perfetto "$dir/app.trace" -o "$dir/app.trace" 2>/dev/null && fail "overwrote the input"

# A post-mortem of a crash (abort() in crash-app, from the fuzz corpus): the
# fatal signal is an instant on the crashing thread, in both formats.
crash="$(dirname "$0")/fuzz/corpus/reader/postmortem-crash.trace"
"$ctl" perfetto --json "$crash" -o "$dir/crash.json" 2>/dev/null || fail "--json of a crash post-mortem"
grep -q '"name":"crash: SIGABRT","args":{"si_code":"SI_TKILL"' "$dir/crash.json" ||
        fail "no crash instant in $dir/crash.json"
"$ctl" perfetto "$crash" -o "$dir/crash.pftrace" 2>/dev/null || fail "perfetto of a crash post-mortem"
grep -q 'crash: SIGABRT' "$dir/crash.pftrace" || fail "no crash instant in $dir/crash.pftrace"

exit_if_failed
echo "test-perfetto-cli: ok"
