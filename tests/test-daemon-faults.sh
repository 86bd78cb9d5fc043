#!/bin/sh
# flightrecd under faults and attack, tried for real:
#  - the daemon killed with SIGKILL in the middle of a snapshot, and an agent
#    killed while it streams one;
#  - the output disk full (ENOSPC on a small tmpfs), then space back;
#  - peers without permission (socket mode, allow-lists) and file modes;
#  - a comm of "../../etc/passwd", a thousand idle connections, a flood of
#    triggers.
# Parts that need root (mount, setpriv) are skipped, and said so, without it.
# Usage: test-daemon-faults.sh FLIGHTRECD FLIGHTRECCTL LIBFLIGHTREC E2E_BURN
#                              BENCH_FILL WIRE_PEER LZ4 WORKDIR
set -u
D=$1 CTL=$2 LIB=$3 BURN=$4 FILL=$5 PEER=$6 LZ4=$7 W=$8
if mountpoint -q "$W/small" 2>/dev/null; then umount "$W/small"; fi
. "$(dirname "$0")/daemon-lib.sh"
daemon_setup
# cleanup: the small tmpfs unmounted too.
cleanup() {
        kill_all
        if mountpoint -q "$W/small" 2>/dev/null; then umount "$W/small"; fi
}
# stop_daemon: SIGTERM, and reap it (its exit status is not checked here).
stop_daemon() {
        kill -TERM "$DPID"
        wait "$DPID"
        DPID=""
}
tmp_count() { ls -a "$1" | grep -c '\.tmp$'; }
# valid_files DIR: every complete file in DIR passes its format's own check.
valid_files() {
        for f in "$1"/*.trace.lz4; do [ -e "$f" ] || continue; "$LZ4" -q -t "$f" || return 1; done
        for f in "$1"/*.pb.gz; do [ -e "$f" ] || continue; gzip -t "$f" || return 1; done
        return 0
}

printf '[daemon]\nsnapshot_timeout = 30s\n[retention]\nmax_files = 100000\n' >"$CONF"

say "daemon killed with SIGKILL during a snapshot"
start_daemon "$OUT"
# A ring of about 40 MB (1 KiB messages, 20 MiB/s for 2 s).
FLIGHTREC_SOCKET=$SOCK FLIGHTREC_MAX_BYTES=64M FLIGHTREC_PERIOD_MS=100 FLIGHTREC_GENERATIONS=100000 \
        FLIGHTREC_HZ=0 LD_PRELOAD="${FR_PRELOAD_FIRST:-}" "$FILL" 2 20 >"$W/fill.txt" &
FP=$!
PIDS="$PIDS $FP"
wait_for 30 grep -q ready "$W/fill.txt" || fail "bench_fill never ready"
wait_for 10 agent_up "$FP" || fail "bench_fill not connected"
"$CTL" --socket "$SOCK" trigger --pid "$FP" >"$W/killed-trigger.txt" 2>&1 &
TRP=$!
# Kill as soon as the snapshot's temporary exists.
n=0
while [ "$(tmp_count "$OUT")" -eq 0 ] && [ $n -lt 20000 ]; do n=$((n + 1)); done
kill -KILL "$DPID"
wait "$DPID" 2>/dev/null
DPID=""
wait "$TRP" 2>/dev/null && fail "trigger reported success from a killed daemon"
tmps=$(tmp_count "$OUT")
complete=$(ls "$OUT" | grep -c -v '\.tmp$')
valid_files "$OUT" && ok "killed mid-write: $tmps temporaries, $complete complete files, all of them valid" || fail "a partial file is visible under a final name: $(ls "$OUT")"
kill -0 "$FP" 2>/dev/null && ok "the agent lives on" || fail "the agent died with the daemon"
start_daemon "$OUT"
[ "$(tmp_count "$OUT")" -eq 0 ] && ok "temporaries removed at the next start" || fail "temporaries left: $(ls "$OUT")"
wait_for 10 agent_up "$FP" && ok "the agent reconnected" || fail "agent did not reconnect"
if "$CTL" --socket "$SOCK" trigger --pid "$FP" >"$W/paths.txt" 2>&1; then
        valid_files "$OUT" && ok "next snapshot: $(grep -c . "$W/paths.txt") lines, files valid" || fail "files after restart invalid"
else
        fail "trigger after restart: $(cat "$W/paths.txt")"
fi

say "output disk full (ENOSPC), then space back"
if [ "$(id -u)" -eq 0 ] && mkdir -p "$W/small" && mount -t tmpfs -o size=256k,mode=0755 tmpfs "$W/small" 2>/dev/null; then
        stop_daemon
        start_daemon "$W/small"
        wait_for 10 agent_up "$FP" || fail "agent not connected to the second daemon"
        if "$CTL" --socket "$SOCK" trigger --pid "$FP" >"$W/enospc.txt" 2>&1; then
                fail "snapshot into a 256 KiB disk succeeded: $(cat "$W/enospc.txt")"
        else
                grep -q "No space left on device" "$W/enospc.txt" && ok "clear error: $(grep -o 'writing.*' "$W/enospc.txt" | head -1)" || fail "unclear ENOSPC error: $(cat "$W/enospc.txt")"
        fi
        left=$(ls -a "$W/small" | grep -c -v '^\.\.\?$')
        [ "$left" -eq 0 ] && ok "no file left on the full disk" || fail "left on the full disk: $(ls -a "$W/small")"
        kill -0 "$DPID" && agent_up "$FP" && ok "daemon serving, agent connected" || fail "daemon or agent gone after ENOSPC"
        mount -o remount,size=64m "$W/small"
        "$CTL" --socket "$SOCK" trigger --pid "$FP" >"$W/enospc2.txt" 2>&1 && valid_files "$W/small" && ok "space back: snapshot written ($(ls "$W/small" | tr '\n' ' '))" || fail "no recovery after space came back: $(cat "$W/enospc2.txt")"
        stop_daemon
        umount "$W/small"
        start_daemon "$OUT"
else
        skip "ENOSPC: needs root and a tmpfs mount"
fi

say "agent killed with SIGKILL while it streams a snapshot"
wait_for 10 agent_up "$FP" || fail "bench_fill not connected"
"$CTL" --socket "$SOCK" trigger --pid "$FP" >"$W/agent-killed.txt" 2>&1 &
TRP=$!
n=0
while [ "$(tmp_count "$OUT")" -eq 0 ] && [ $n -lt 20000 ]; do n=$((n + 1)); done
kill -KILL "$FP"
wait "$TRP" 2>/dev/null
wait_for 10 grep -q "post-mortem snapshot of bench_fill\[$FP\]" "$LOG" && ok "post-mortem of the killed agent written" || fail "no post-mortem of the killed agent"
sleep 0.5
[ "$(tmp_count "$OUT")" -eq 0 ] && valid_files "$OUT" && ok "interrupted stream: $(head -1 "$W/agent-killed.txt" | cut -c1-100); no temporaries, every file valid" || fail "half-written files after the agent died: $(ls "$OUT")"
kill -0 "$DPID" && ok "daemon still serving" || fail "daemon died with the agent"

say "hostile names, a thousand idle connections, a flood of triggers"
run_burn() {
        FLIGHTREC_SOCKET=$SOCK LD_PRELOAD=$PRELOAD "$BURN" "$@" &
        PIDS="$PIDS $!"
        LAST=$!
}
run_burn 120
B=$LAST
wait_for 10 agent_up "$B" || fail "agent not connected"
"$PEER" "$SOCK" evilcomm >"$W/evil.txt" &
EV=$!
PIDS="$PIDS $EV"
wait_for 5 grep -q welcome "$W/evil.txt" || fail "evilcomm peer not welcomed"
"$CTL" --socket "$SOCK" trigger --pid "$EV" >"$W/evil-paths.txt" 2>&1 || fail "trigger of evilcomm: $(cat "$W/evil-paths.txt")"
outside=$(grep -v "^$OUT/[^/]*$" "$W/evil-paths.txt" | grep -c /)
[ "$outside" -eq 0 ] && ok "comm '../../etc/passwd' -> $(grep -o "$OUT/[^ ]*trace.lz4" "$W/evil-paths.txt")" || fail "a path outside $OUT: $(cat "$W/evil-paths.txt")"
[ -e "$W/etc" ] && fail "something was written to $W/etc"
rss0=$(awk '/^VmRSS/ {print $2}' /proc/"$DPID"/status)
"$PEER" "$SOCK" many 1000 >"$W/many.txt" &
MP=$!
sleep 2
agent_up "$B" && ok "agent still listed under 1000 idle connections" || fail "status failed under 1000 idle connections"
"$CTL" --socket "$SOCK" trigger --pid "$B" >/dev/null 2>&1 && ok "snapshot under 1000 idle connections" || fail "trigger failed under 1000 idle connections"
rss1=$(awk '/^VmRSS/ {print $2}' /proc/"$DPID"/status)
wait "$MP"
grep -q "^1000 connected, 1000 closed" "$W/many.txt" && ok "$(cat "$W/many.txt") (hello timeout); daemon RSS $rss0 -> $rss1 kB" || fail "idle connections: $(cat "$W/many.txt")"
# 64 MB of growth at most (17 KB a peer at most; 12.5 measured); sanitizers'
# shadow memory takes about 4 times that.
bound=65536
[ -z "${FR_PRELOAD_FIRST:-}" ] || bound=$((4 * bound))
[ "$rss1" -lt $((rss0 + bound)) ] || fail "daemon memory grew by $((rss1 - rss0)) kB with 1000 idle peers"
before=$(ls "$OUT" | grep -c "\-$B-.*trace.lz4$")
i=0
TPIDS=""
while [ $i -lt 100 ]; do
        "$CTL" --socket "$SOCK" trigger --pid "$B" >/dev/null 2>&1 &
        TPIDS="$TPIDS $!"
        i=$((i + 1))
done
okc=0
for p in $TPIDS; do wait "$p" && okc=$((okc + 1)); done
after=$(ls "$OUT" | grep -c "\-$B-.*trace.lz4$")
kill -0 "$DPID" && agent_up "$B" && ok "100 triggers at once: $okc answered with files, $((after - before)) snapshots written (triggers close together share one), daemon and agent fine" || fail "trigger flood harmed the daemon"
[ "$(tmp_count "$OUT")" -eq 0 ] && valid_files "$OUT" || fail "trigger flood left temporaries or invalid files"

say "permissions: socket mode, allow-lists, file modes"
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
        stop_daemon
        # Programs and the library where the unprivileged user can reach them.
        mkdir -p "$W/bin"
        cp "$CTL" "$BURN" "$LIB" "$W/bin/"
        chmod 755 "$W" "$W/bin" "$W/bin"/*
        AS_NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"
        NCTL=$W/bin/$(basename "$CTL")
        printf '[daemon]\nsocket_mode = 0660\n[retention]\nmax_files = 100000\n' >"$CONF"
        start_daemon "$OUT"
        mode=$(stat -c %a "$SOCK")
        [ "$mode" = 660 ] && ok "socket mode 660 as configured" || fail "socket mode $mode"
        $AS_NOBODY "$NCTL" --socket "$SOCK" status >"$W/perm1.txt" 2>&1 && fail "nobody reached a 0660 root socket" || ok "nobody cannot connect: $(head -1 "$W/perm1.txt")"
        stop_daemon
        printf '[daemon]\nsocket_mode = 0666\n[access]\nagent_users = 0\ncontrol_users = 0\n[retention]\nmax_files = 100000\n' >"$CONF"
        start_daemon "$OUT"
        $AS_NOBODY "$NCTL" --socket "$SOCK" trigger >"$W/perm2.txt" 2>&1 && fail "nobody triggered a snapshot" || ok "nobody may not trigger: $(head -1 "$W/perm2.txt")"
        $AS_NOBODY env FLIGHTREC_SOCKET="$SOCK" LD_PRELOAD="${FR_PRELOAD_FIRST:+$FR_PRELOAD_FIRST }$W/bin/$(basename "$LIB")" FLIGHTREC_DIR="$W/nobody-local" "$W/bin/$(basename "$BURN")" 3 idle >/dev/null 2>&1 &
        PIDS="$PIDS $!"
        wait_for 10 grep -q "may not connect as an agent" "$LOG" && ok "nobody's agent refused: $(grep -o 'uid 65534.*' "$LOG" | tail -1)" || fail "agent of nobody not refused"
        f=$(ls "$OUT"/*.trace.lz4 | head -1)
        fmode=$(stat -c %a "$f")
        [ "$fmode" = 640 ] && ok "snapshot files are mode 640" || fail "snapshot file mode $fmode"
        $AS_NOBODY cat "$f" >/dev/null 2>&1 && fail "nobody can read $f" || ok "nobody cannot read the snapshots"
        stop_daemon
else
        skip "permissions: needs root and setpriv"
fi

finish "fault"
