#!/bin/sh
# Named triggers end to end (issue 15): a daemon with [trigger NAME]
# sections, an unmodified program under LD_PRELOAD and one calling
# fr_trigger. Checks: `after = 2s` at T gives a snapshot whose data start
# before T and whose last generation ends at T + 2 s or later; a trigger during
# the delay joins (same files, one snapshot); status shows the pending trigger
# and the recent ones; a flood of 1000 triggers with max_per_hour = 10 gives at
# most 10 snapshots and every refusal is answered; cooldown; scope = caller
# and comm:PATTERN; reload applies new triggers and refuses a bad section
# keeping the old configuration; fr_trigger from the program; the built-in
# default (SIGUSR1, plain trigger) unchanged.
# Usage: test-triggers.sh FLIGHTRECD FLIGHTRECCTL LIBFLIGHTREC E2E_BURN TRIGGER_APP WORKDIR
set -u
export FLIGHTREC_START_DELAY_MS=0
D=$1 CTL=$2 LIB=$3 BURN=$4 APP=$5 W=$6
. "$(dirname "$0")/daemon-lib.sh"
daemon_setup local

write_conf() {
        cat >"$CONF" <<EOF
[daemon]
snapshot_timeout = 20s
[retention]
max_files = 100000
[trigger slo]
after = 2s
[trigger flood]
max_per_hour = 10
[trigger cool]
cooldown = 1h
[trigger mine]
scope = caller
[trigger burners]
scope = comm:e2e-b*
[trigger nobody]
scope = comm:no-such-comm
[trigger app]
after = 1s
EOF
}
write_conf
start_daemon

FLIGHTREC_SOCKET=$SOCK FLIGHTREC_DIR=$W/local LD_PRELOAD=$PRELOAD "$BURN" 300 &
BURN_PID=$!
PIDS="$PIDS $BURN_PID"
wait_for 10 agent_up "$BURN_PID" && ok "agent $BURN_PID connected" || fail "agent never listed by status"
sleep 3 # data well before T
ntraces() { ls "$OUT" | grep -c -- "-$BURN_PID-.*\.trace\.lz4\$"; }

say "after = 2s: data before T, the last generation ends at T + 2 s or later; a trigger in the delay joins"
T=$(date +%s.%N)
"$CTL" --socket "$SOCK" trigger --name slo --reason "slo breached" >"$W/slo1.out" 2>&1 &
C1=$!
sleep 0.5
"$CTL" --socket "$SOCK" status >"$W/status-pending.out" 2>&1
"$CTL" --socket "$SOCK" trigger --name slo --reason "second alarm" >"$W/slo2.out" 2>&1 &
C2=$!
wait $C1; rc1=$?
wait $C2; rc2=$?
T1=$(date +%s.%N)
[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && ok "both triggers answered with files" ||
        { fail "trigger slo: rc $rc1 / $rc2"; cat "$W/slo1.out" "$W/slo2.out"; }
grep -q "^pending slo: snapshot in [0-9]* ms (slo breached)" "$W/status-pending.out" &&
        ok "status shows the pending trigger" || { fail "status shows no pending slo"; cat "$W/status-pending.out"; }
grep -q "^recent .* slo from flightrecctl .* taken: snapshot in 2000 ms" "$W/status-pending.out" &&
        ok "status shows the recent trigger" || fail "status shows no recent slo"
TR=$(head -1 "$W/slo1.out")
[ -n "$TR" ] && [ "$TR" = "$(head -1 "$W/slo2.out")" ] && ok "the joined trigger got the same snapshot" ||
        fail "the two slo triggers got different files"
[ "$(ntraces)" -eq 1 ] && ok "one snapshot for two triggers" || fail "$(ntraces) snapshots for two slo triggers"
if [ -f "$TR" ]; then
        "$CTL" dump "$TR" >"$W/slo.dump" 2>&1
        # The first generation's wall start, the last one's end (wall + span).
        python3 - "$W/slo.dump" "$T" <<'EOF' >"$W/slo.check" 2>&1
import re, sys, datetime
t = float(sys.argv[2])
gens = []
for line in open(sys.argv[1]):
    m = re.match(r'gen \d+ start \S+ span (\S+) wall (\S+)Z', line)
    if m:
        w = m.group(2)
        base, frac = w.split('.')
        s = datetime.datetime.strptime(base, '%Y-%m-%dT%H:%M:%S').replace(tzinfo=datetime.timezone.utc).timestamp()
        s += float('0.' + frac)
        gens.append((s, s + float(m.group(1))))
if not gens:
    print('no generations'); sys.exit(1)
first, last = gens[0][0], gens[-1][1]
print('data from T%+.3f s to T%+.3f s' % (first - t, last - t))
sys.exit(0 if first < t and last >= t + 2.0 else 1)
EOF
        if [ $? -eq 0 ]; then ok "after = 2s: $(cat "$W/slo.check")"; else fail "after = 2s: $(cat "$W/slo.check")"; fi
        grep -q 'reason "slo breached"' "$W/slo.dump" && ok "the first trigger's reason in the header" ||
                fail "the trace header does not name the reason"
else
        fail "no trace from trigger slo"
fi

say "a flood of 1000 triggers, max_per_hour = 10"
before=$(ntraces)
seq 1000 | xargs -P 40 -I{} sh -c '"$1" --socket "$2" trigger --name flood --reason "flood {}" >"$3/flood-{}.out" 2>&1; echo "$?" >"$3/flood-{}.rc"' sh "$CTL" "$SOCK" "$W"
taken=0 refused=0 other=0
for i in $(seq 1000); do
        rc=$(cat "$W/flood-$i.rc" 2>/dev/null)
        if [ "$rc" = 0 ]; then taken=$((taken + 1))
        elif grep -q "max_per_hour = 10 reached" "$W/flood-$i.out"; then refused=$((refused + 1))
        else other=$((other + 1)); [ $other -le 3 ] && cat "$W/flood-$i.out"
        fi
done
made=$(($(ntraces) - before))
[ $other -eq 0 ] && ok "1000 answered: $taken with files, $refused refused with the reason" ||
        fail "$other of 1000 flood triggers got no answer or another error ($taken taken, $refused refused)"
[ $made -ge 1 ] && [ $made -le 10 ] && ok "$made snapshots from the flood (<= 10)" || fail "$made snapshots from the flood"
grep -q "trigger refused: trigger flood: max_per_hour = 10 reached" "$LOG" && ok "the log says why" ||
        fail "no refusal in the log"

say "cooldown, scope"
"$CTL" --socket "$SOCK" trigger --name cool >/dev/null 2>&1 || fail "the first cool trigger failed"
"$CTL" --socket "$SOCK" trigger --name cool >"$W/cool.out" 2>&1
[ $? -eq 1 ] && grep -q "cooldown, [0-9]* ms left" "$W/cool.out" && ok "cooldown refuses: $(cat "$W/cool.out")" ||
        { fail "cooldown did not refuse"; cat "$W/cool.out"; }
"$CTL" --socket "$SOCK" trigger --name mine >"$W/mine.out" 2>&1
[ $? -eq 1 ] && grep -q "scope = caller" "$W/mine.out" && ok "scope = caller without --pid refused" ||
        fail "scope = caller without a pid: $(cat "$W/mine.out")"
"$CTL" --socket "$SOCK" trigger --name mine --pid "$BURN_PID" >"$W/mine2.out" 2>&1 &&
        grep -q -- "-$BURN_PID-" "$W/mine2.out" && ok "scope = caller with --pid" || fail "scope = caller --pid: $(cat "$W/mine2.out")"
"$CTL" --socket "$SOCK" trigger --name burners >"$W/burners.out" 2>&1 &&
        grep -q -- "-$BURN_PID-" "$W/burners.out" && ok "scope = comm:e2e-b* takes e2e-burn" || fail "scope comm: $(cat "$W/burners.out")"
"$CTL" --socket "$SOCK" trigger --name nobody >"$W/nobody.out" 2>&1
[ $? -eq 1 ] && grep -q "no agent is connected whose comm matches" "$W/nobody.out" && ok "scope = comm:no-such-comm: none" ||
        fail "scope comm without a match: $(cat "$W/nobody.out")"
"$CTL" --socket "$SOCK" trigger --name missing >"$W/missing.out" 2>&1
[ $? -eq 1 ] && grep -q "no trigger named 'missing'" "$W/missing.out" && ok "an unknown name is refused" ||
        fail "unknown trigger: $(cat "$W/missing.out")"
"$CTL" --socket "$SOCK" trigger --name slo --after 500ms --reason quick >"$W/quick.out" 2>&1 &&
        ok "--after overrides the section's delay" || fail "--after: $(cat "$W/quick.out")"

say "reload: a new trigger applies, a bad section is refused"
write_conf
printf '[trigger fresh]\nafter = 100ms\n' >>"$CONF"
kill -HUP "$DPID"
wait_for 5 grep -q "configuration reloaded" "$LOG" || fail "no reload"
"$CTL" --socket "$SOCK" trigger --name fresh >"$W/fresh.out" 2>&1 && ok "a trigger added by reload works" ||
        fail "trigger fresh after reload: $(cat "$W/fresh.out")"
printf '[trigger broken]\nafter = forever\n' >>"$CONF"
kill -HUP "$DPID"
wait_for 5 grep -q "reload refused.*trigger broken" "$LOG" && ok "a bad trigger section refuses the reload" ||
        fail "the bad section was not refused"
"$CTL" --socket "$SOCK" trigger --name fresh >/dev/null 2>&1 && ok "the old configuration stays (fresh)" ||
        fail "trigger fresh lost after a refused reload"
"$CTL" --socket "$SOCK" trigger --name broken >/dev/null 2>&1 && fail "the bad trigger is in force" ||
        ok "the bad trigger is not in force"

say "fr_trigger from the program"
FLIGHTREC_SOCKET=$SOCK FLIGHTREC_DIR=$W/local FLIGHTREC_HZ=100 "$APP" app "latency SLO" 2 3 >"$W/app.out" 2>&1 &
APP_PID=$!
PIDS="$PIDS $APP_PID"
wait_exit 60 $APP_PID
[ $? -ne 124 ] || fail "$APP $APP_PID hung"
grep -q "fr_trigger: 0" "$W/app.out" && ok "fr_trigger returned 0" || fail "fr_trigger: $(cat "$W/app.out")"
wait_for 10 sh -c "ls '$OUT' | grep -q -- '-$APP_PID-.*\.pb\.gz\$'" && ok "the program's trigger gave its snapshot" ||
        fail "no snapshot for the fr_trigger of $APP_PID"
grep -q "agent trigger-app\[$APP_PID\]: trigger app taken, snapshot in 1000 ms (latency SLO)" "$LOG" &&
        ok "the log names the program's trigger" || fail "the log does not name fr_trigger's trigger"

say "the built-in default: SIGUSR1 and a plain trigger, as before"
before=$(ntraces)
kill -USR1 "$DPID"
wait_for 10 sh -c "[ \$(ls '$OUT' | grep -c -- '-$BURN_PID-.*\.pb\.gz\$') -gt $before ]" && ok "SIGUSR1 snapshot" || fail "no SIGUSR1 snapshot"
"$CTL" --socket "$SOCK" trigger --pid "$BURN_PID" >"$W/plain.out" 2>&1 && grep -q -- "-$BURN_PID-" "$W/plain.out" &&
        ok "plain flightrecctl trigger" || fail "plain trigger: $(cat "$W/plain.out")"
"$CTL" --socket "$SOCK" status | grep -q "^trigger default: after 0 ms, max_per_hour 0" && ok "status lists the default" ||
        fail "status without the default trigger"

clean_stop

finish "trigger"
