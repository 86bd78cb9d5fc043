#!/bin/sh
# test-daemon-timeline.sh FLIGHTREQD FLIGHTRECCTL LIBFLIGHTREC FR_DEMO PROTOC PROTO_DIR WORKDIR
# flightrecd writes <stem>.pftrace with every snapshot, live and post-mortem:
# beside the trace and the profile, mode 0640, decoded by the real
# `protoc --decode` against proto/perfetto.proto with the demo's regions,
# tasks and threads in it, and the same timeline as `flightrecctl perfetto`
# of the trace; `timeline = no` (by SIGHUP reload) stops it; no temporary left.
set -u
D=$1 CTL=$2 LIB=$3 DEMO=$4 PROTOC=$5 PROTODIR=$6 W=$7
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/daemon-lib.sh"
daemon_setup local
printf '[daemon]\nsnapshot_timeout = 30s\n' >"$CONF"
start_daemon
demo() { # demo SECONDS: fr-demo in the background under the agent, pid in APP
        env FLIGHTREC_SOCKET="$SOCK" FLIGHTREC_HZ=200 FLIGHTREC_DIR="$W/local" LD_PRELOAD="$PRELOAD" \
                "$DEMO" "$1" >>"$W/demo.log" 2>&1 &
        APP=$!
        PIDS="$PIDS $APP"
        wait_for 10 agent_up "$APP" || fail "fr-demo $APP did not connect"
}
decode() { # decode FILE: protoc's text of a .pftrace
        "$PROTOC" --decode=flightrec.perfetto.Trace -I "$PROTODIR" "$PROTODIR/perfetto.proto" <"$1"
}

say "a live snapshot writes the .pftrace"
demo 8
sleep 1.5
"$CTL" --socket "$SOCK" trigger --pid "$APP" --reason timeline >"$W/trigger.out" 2>&1 ||
        fail "trigger: $(cat "$W/trigger.out")"
trace=$(head -1 "$W/trigger.out")
pf=${trace%.trace.lz4}.pftrace
if [ -s "$pf" ]; then
        ok "$(basename "$pf") beside $(basename "$trace")"
        [ "$(stat -c %a "$pf")" = 640 ] || fail "mode of $pf is not 640"
        if decode "$pf" >"$W/live.txt" 2>"$W/protoc.err"; then
                ok "protoc --decode reads it ($(grep -c '^packet {' "$W/live.txt") packets)"
        else
                fail "protoc --decode: $(cat "$W/protoc.err")"
        fi
        for n in render compress request worker-0 worker-1 render_page; do
                grep -q "\"$n\"" "$W/live.txt" || fail "\"$n\" not in the daemon's .pftrace"
        done
        "$CTL" perfetto "$trace" -o "$W/ctl.pftrace" 2>/dev/null || fail "flightrecctl perfetto $trace"
        decode "$W/ctl.pftrace" >"$W/ctl.txt" 2>/dev/null
        cmp -s "$W/live.txt" "$W/ctl.txt" && ok "the same timeline as flightrecctl perfetto" ||
                fail "the daemon's .pftrace differs from flightrecctl perfetto's"
else
        fail "no $pf after a trigger"; ls -la "$OUT"; tail -5 "$LOG"
fi
grep -q "timeline of fr-demo\[$APP\]: $pf" "$LOG" && ok "logged" || fail "no log line for the timeline"
wait_exit 120 "$APP"
[ $? -ne 124 ] || fail "fr-demo $APP hung"

say "post-mortem: kill -9 writes the .pftrace too"
demo 30
sleep 2.5
# Slow under a sanitizer on a loaded machine: wait until the agent reports
# generations (its ring must hold a complete one for a post-mortem).
gens_at_least() { "$CTL" --socket "$SOCK" status --pid "$1" | awk -v p="$1" -v n="$2" '$1 == p && $4 >= n {f=1} END {exit !f}'; }
wait_for 15 gens_at_least "$APP" 2 || echo "note: fr-demo $APP reports fewer than 2 generations"
kill -KILL "$APP"
if wait_for 15 sh -c "ls '$OUT' | grep -q -- '-$APP-.*\.pftrace\$'"; then
        pm=$(ls "$OUT"/*-"$APP"-*.pftrace | head -1)
        decode "$pm" >"$W/pm.txt" 2>/dev/null && grep -q '"render"' "$W/pm.txt" &&
                ok "post-mortem $(basename "$pm") decodes, with the regions" ||
                fail "post-mortem $pm does not decode or lacks the regions"
else
        fail "no post-mortem .pftrace for $APP"; ls -la "$OUT"; tail -5 "$LOG"
fi

say "timeline = no (SIGHUP reload): no .pftrace"
printf '[daemon]\nsnapshot_timeout = 30s\ntimeline = no\n' >"$CONF"
kill -HUP "$DPID"
wait_for 5 grep -q 'reload' "$LOG"
sleep 0.5
demo 8
sleep 1.5
"$CTL" --socket "$SOCK" trigger --pid "$APP" --reason off >"$W/trigger2.out" 2>&1 ||
        fail "trigger: $(cat "$W/trigger2.out")"
t2=$(head -1 "$W/trigger2.out")
[ -s "$t2" ] || fail "no trace with timeline = no"
[ -e "${t2%.trace.lz4}.pftrace" ] && fail "a .pftrace with timeline = no" || ok "no .pftrace with timeline = no"
wait_exit 120 "$APP"
[ $? -ne 124 ] || fail "fr-demo $APP hung"
# fr-demo's own snapshot at its exit may still be on its way.
wait_for 30 sh -c "! ls -a '$OUT' | grep -q '\.tmp\$'" ||
        fail "temporary files left: $(ls -a "$OUT" | grep '\.tmp$')"
finish "timeline"
