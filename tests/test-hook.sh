#!/bin/sh
# The on_snapshot hook end to end (issue 15): a hook sees the paths, pid,
# comm, reason and trigger in its environment and arguments, once per
# snapshot, after the files are in place; examples/push-pyroscope.sh pushes
# the pprof to a local HTTP receiver; a hanging hook is killed at its timeout
# while the daemon keeps answering.
# THE RECEIVER IS A STAND-IN, NOT PYROSCOPE: a python3 http.server that
# records the request and answers 200. It checks what the Pyroscope ingest
# API asks for (POST /ingest, name=APP{labels}, from, until, format=pprof) and
# that the body decodes as the same pprof as the snapshot's file
# (`go tool pprof -raw` of both; and byte equality).
# Usage: test-hook.sh FLIGHTRECD FLIGHTRECCTL LIBFLIGHTREC E2E_BURN PUSH_PYROSCOPE WORKDIR
set -u
export FLIGHTREC_START_DELAY_MS=0
D=$1 CTL=$2 LIB=$3 BURN=$4 PUSH=$5 W=$6
. "$(dirname "$0")/daemon-lib.sh"
daemon_setup local got recv

# A hook that records its environment and arguments.
cat >"$W/record.sh" <<'END_RECORD'
#!/bin/sh
n=$(ls "$HOOK_DIR" | grep -c '^call-')
f=$HOOK_DIR/call-$((n + 1))
{
        echo "TRACE=$FLIGHTREC_SNAPSHOT_TRACE"
        echo "PPROF=$FLIGHTREC_SNAPSHOT_PPROF"
        echo "PID=$FLIGHTREC_SNAPSHOT_PID"
        echo "COMM=$FLIGHTREC_SNAPSHOT_COMM"
        echo "REASON=$FLIGHTREC_SNAPSHOT_REASON"
        echo "TRIGGER=$FLIGHTREC_SNAPSHOT_TRIGGER"
        echo "ARGS=$1|$2|$3|$4|$5|$6"
        [ -s "$FLIGHTREC_SNAPSHOT_TRACE" ] && [ -s "$FLIGHTREC_SNAPSHOT_PPROF" ] && echo "FILES=present"
} >"$f.tmp"
mv "$f.tmp" "$f"
END_RECORD

# The stand-in receiver.
cat >"$W/receiver.py" <<'END_RECEIVER'
# A stand-in for a profile store's HTTP ingest, NOT a Pyroscope server: it
# records the request line and body of each POST and answers 200.
import http.server, sys, os
d = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get('Content-Length', 0))
        body = self.rfile.read(n)
        k = len([f for f in os.listdir(d) if f.startswith('req-')]) + 1
        open(os.path.join(d, 'body-%d' % k), 'wb').write(body)
        open(os.path.join(d, 'req-%d.tmp' % k), 'w').write(self.command + ' ' + self.path + '\n')
        os.rename(os.path.join(d, 'req-%d.tmp' % k), os.path.join(d, 'req-%d' % k))
        self.send_response(200); self.end_headers(); self.wfile.write(b'ok')
    def log_message(self, *a): pass
s = http.server.HTTPServer(('127.0.0.1', 0), H)
open(os.path.join(d, 'port.tmp'), 'w').write(str(s.server_address[1]))
os.rename(os.path.join(d, 'port.tmp'), os.path.join(d, 'port'))
s.serve_forever()
END_RECEIVER

printf '[daemon]\non_snapshot = sh "%s/record.sh"\n[trigger alarm]\nafter = 200ms\n' "$W" >"$CONF"
export HOOK_DIR="$W/got"
start_daemon
FLIGHTREC_SOCKET=$SOCK FLIGHTREC_DIR=$W/local LD_PRELOAD=$PRELOAD "$BURN" 300 &
BURN_PID=$!
PIDS="$PIDS $BURN_PID"
wait_for 10 agent_up "$BURN_PID" && ok "agent $BURN_PID connected" || fail "agent never listed by status"
sleep 2

say "the hook: once per snapshot, the right paths, environment and arguments"
"$CTL" --socket "$SOCK" trigger --name alarm --reason "p99 over 200 ms" >"$W/t1.out" 2>&1 || fail "trigger: $(cat "$W/t1.out")"
TR=$(sed -n 1p "$W/t1.out")
PB=$(sed -n 2p "$W/t1.out")
wait_for 10 test -f "$W/got/call-1" || fail "the hook never ran"
sleep 1
n=$(ls "$W/got" | grep -c '^call-[0-9]*$')
[ "$n" -eq 1 ] && ok "ran once" || fail "ran $n times"
c=$W/got/call-1
if [ -f "$c" ]; then
        grep -qx "TRACE=$TR" "$c" && grep -qx "PPROF=$PB" "$c" && ok "paths in the environment" || { fail "paths"; cat "$c"; }
        grep -qx "PID=$BURN_PID" "$c" && grep -qx "COMM=e2e-burn" "$c" && grep -qx "TRIGGER=alarm" "$c" &&
                grep -qx "REASON=p99 over 200 ms" "$c" && ok "pid, comm, trigger, reason" || { fail "pid/comm/trigger/reason"; cat "$c"; }
        grep -qx "ARGS=$TR|$PB|$BURN_PID|e2e-burn|alarm|p99 over 200 ms" "$c" && ok "the same as arguments" || { fail "arguments"; cat "$c"; }
        grep -qx "FILES=present" "$c" && ok "both files in place when it ran" || fail "files missing when the hook ran"
fi

say "examples/push-pyroscope.sh against a stand-in receiver (not Pyroscope)"
python3 "$W/receiver.py" "$W/recv" &
PIDS="$PIDS $!"
wait_for 5 test -s "$W/recv/port" || fail "the receiver did not start"
PORT=$(cat "$W/recv/port")
printf '[daemon]\non_snapshot = env PYROSCOPE_URL=http://127.0.0.1:%s FLIGHTRECCTL=%s %s\n[trigger alarm]\nafter = 200ms\n' \
        "$PORT" "$CTL" "$PUSH" >"$CONF"
kill -HUP "$DPID"
wait_for 5 grep -q 'configuration reloaded' "$LOG" || fail "no reload"
"$CTL" --socket "$SOCK" trigger --name alarm --reason push >"$W/t2.out" 2>&1 || fail "trigger: $(cat "$W/t2.out")"
PB=$(sed -n 2p "$W/t2.out")
wait_for 20 test -f "$W/recv/req-1" || { fail "nothing reached the receiver"; tail -5 "$LOG"; }
if [ -f "$W/recv/req-1" ]; then
        req=$(cat "$W/recv/req-1")
        echo "request: $req"
        if python3 - "$req" "$BURN_PID" "$(hostname)" <<'END_CHECK'; then
import sys, urllib.parse
req, pid, host = sys.argv[1], sys.argv[2], sys.argv[3]
method, path = req.split(' ', 1)
u = urllib.parse.urlsplit(path)
q = urllib.parse.parse_qs(u.query)
name = q['name'][0]
host = ''.join(c if c.isalnum() or c in '_.-' else '_' for c in host)
want = 'e2e-burn{pid=%s,host=%s,trigger=alarm}' % (pid, host)
assert method == 'POST' and u.path == '/ingest', (method, u.path)
assert name == want, (name, want)
assert q['format'] == ['pprof'], q
f, t = int(q['from'][0]), int(q['until'][0])
assert 0 < f < t and t - f < 120, (f, t)
END_CHECK
                ok "request line and labels"
        else
                fail "request line: $req"
        fi
        cmp -s "$W/recv/body-1" "$PB" && ok "the body is the snapshot's pprof, byte for byte" || fail "the body differs from $PB"
        if command -v go >/dev/null 2>&1; then
                cp "$W/recv/body-1" "$W/body.pb.gz"
                PPROF_BINARY_PATH=/nonexistent go tool pprof -raw -symbolize=none "$W/body.pb.gz" >"$W/body.raw" 2>/dev/null
                PPROF_BINARY_PATH=/nonexistent go tool pprof -raw -symbolize=none "$PB" >"$W/file.raw" 2>/dev/null
                [ -s "$W/body.raw" ] && cmp -s "$W/body.raw" "$W/file.raw" && grep -q "^Samples:" "$W/body.raw" &&
                        ok "the body decodes as the same pprof (go tool pprof -raw)" ||
                        fail "the body does not decode as the same pprof"
        else
                skip "no go: the decode comparison (the bytes were compared)"
        fi
fi

say "a hanging hook is killed at its timeout; the daemon serves meanwhile"
printf '[daemon]\non_snapshot = sh -c "sleep 600"\non_snapshot_timeout = 3s\n[trigger alarm]\nafter = 100ms\n' >"$CONF"
kill -HUP "$DPID"
wait_for 5 sh -c "[ \$(grep -c 'configuration reloaded' '$LOG') -ge 2 ]" || fail "no second reload"
"$CTL" --socket "$SOCK" trigger --name alarm --reason hang >/dev/null 2>&1 || fail "trigger under a hanging hook"
wait_for 5 grep -q "on_snapshot hook \[[0-9]*\] started for .*(trigger alarm)" "$LOG" || fail "the hanging hook did not start"
HPID=$(grep "on_snapshot hook \[[0-9]*\] started for .*(trigger alarm)" "$LOG" | tail -1 | sed 's/.*hook \[\([0-9]*\)\].*/\1/')
t0=$(date +%s%N)
"$CTL" --socket "$SOCK" status >"$W/st.out" 2>&1 && grep -q "on_snapshot hooks: .* [1-9] running" "$W/st.out" &&
        ok "status answered while the hook hangs: $(grep 'on_snapshot hooks' "$W/st.out")" || { fail "status while hanging"; cat "$W/st.out"; }
"$CTL" --socket "$SOCK" trigger --pid "$BURN_PID" --reason during >"$W/t3.out" 2>&1 &&
        ok "a trigger answered while the hook hangs" || fail "trigger while hanging: $(cat "$W/t3.out")"
t1=$(date +%s%N)
[ $(((t1 - t0) / 1000000)) -lt 2500 ] && ok "both in $(((t1 - t0) / 1000000)) ms" || fail "status + trigger took $(((t1 - t0) / 1000000)) ms"
wait_for 8 grep -q "on_snapshot hook \[$HPID\] .*killed" "$LOG" && ok "killed at the timeout" || fail "the hanging hook was not killed"
sleep 0.5
kill -0 "$HPID" 2>/dev/null && fail "hook $HPID still exists" || ok "hook $HPID gone (reaped)"
"$CTL" --socket "$SOCK" status | grep "on_snapshot hooks" | grep -q "[1-9][0-9]* failed" &&
        ok "counted as failed in status" || fail "status does not count the failure"

clean_stop

finish "hook"
