#!/bin/sh
# Host-wide recording, as /etc/ld.so.preload does it, without touching the
# real /etc: in a private mount namespace (unshare -m), /etc gets an overlay
# whose ld.so.preload names the agent and whose flightrec/agent.conf chooses
# one program; /tmp and /var/tmp get private tmpfs. Then:
#  1. a shell loop of short commands (and a chosen program that lives less
#     than start_delay_ms) under strace: no connect, no memfd_create at all;
#     an excluded long-running program: no socket, no memfd, no thread of
#     ours; the chosen long-running one connects (its strace shows it, the
#     positive control) and is the only agent, and SIGUSR1 snapshots it;
#  2. setuid: a setuid-root copy of a program, run as nobody with
#     FLIGHTREC_DIR=/tmp/evil and FLIGHTREC_SOCKET=/tmp/evil.sock (a real
#     flightrecd listens there): nothing connects there or is written, with
#     the default policy (off) and with `setuid = record`, which connects to
#     agent.conf's socket only.
# Needs root, unshare, overlayfs, strace, setpriv; skipped (with the reason)
# otherwise, and in sanitizer builds (their runtime would have to be in
# ld.so.preload before the agent, for every process of the namespace).
# Usage: test-hostwide.sh FLIGHTRECD FLIGHTRECCTL LIBFLIGHTREC E2E_BURN FR_DEMO LZ4 WORKDIR
set -u
if [ -z "${FR_IN_NAMESPACE:-}" ]; then
        for t in unshare strace setpriv; do
                command -v $t >/dev/null || { echo "skip: no $t"; exit 0; }
        done
        [ "$(id -u)" = 0 ] || { echo "skip: needs root (mount namespace)"; exit 0; }
        [ -z "${FR_SANITIZER:-}" ] || { echo "skip: sanitizer build ($FR_SANITIZER)"; exit 0; }
        FR_IN_NAMESPACE=1 exec unshare -m --propagation private sh "$0" "$@"
fi
D=$1 CTL=$2 LIB=$3 BURN=$4 DEMO=$5 LZ4=$6 LOGDIR=$7
rm -rf "$LOGDIR"
mkdir -p "$LOGDIR"
# Private /tmp and /var/tmp: /tmp/evil is really /tmp/evil, and nothing of
# this test is left on the host. A tree under /tmp that the test runs from
# (a fresh clone there) is bound back into the private /tmp, at its path.
keep=""
for p in "$D" "$CTL" "$LIB" "$BURN" "$DEMO" "$0" "$LOGDIR"; do
        case "$p" in /tmp/?*)
                top=${p#/tmp/}
                top=${top%%/*}
                case " $keep " in *" $top "*) ;; *) keep="$keep $top" ;; esac
        esac
done
orig=""
if [ -n "$keep" ]; then
        orig=$(mktemp -d /dev/shm/fr-hostwide-tmp.XXXXXX) && mount --bind /tmp "$orig" ||
                { echo "skip: cannot bind /tmp elsewhere"; exit 0; }
fi
mount -t tmpfs -o mode=1777 fr-test-tmp /tmp || { echo "skip: cannot mount tmpfs"; exit 0; }
for top in $keep; do
        mkdir -p "/tmp/$top" && mount --bind "$orig/$top" "/tmp/$top" || { echo "FAIL: cannot bind /tmp/$top back"; exit 1; }
done
[ -z "$orig" ] || { umount "$orig" && rmdir "$orig"; }
mount -t tmpfs -o mode=1777 fr-test-vartmp /var/tmp
W=/tmp/fr-hostwide
mkdir -p "$W/up" "$W/work" "$W/bin" "$W/out" "$W/evil-out"
chmod 755 "$W" "$W/bin"
if ! mount -t overlay overlay -o "lowerdir=/etc,upperdir=$W/up,workdir=$W/work" /etc; then
        echo "skip: no overlayfs for a private /etc"
        exit 0
fi
SOCK=$W/agent.sock
LOG=$LOGDIR/daemon.log
PIDS=""
DPID=""
cleanup() {
        for p in $PIDS $DPID; do kill -KILL "$p" 2>/dev/null; done
        wait 2>/dev/null
        cp "$W"/*.strace "$W"/*.log "$LOGDIR"/ 2>/dev/null
}
trap cleanup EXIT
trap 'cleanup; exit 1' INT TERM HUP
. "$(dirname "$0")/daemon-lib.sh"

# Copies that nobody can read and run (the build tree may not be).
cp "$LIB" "$W/bin/libflightrec.so.0"
cp "$BURN" "$W/bin/fr-chosen"
cp "$BURN" "$W/bin/fr-excluded"
cp "$BURN" "$W/bin/fr-suid"
cp "$DEMO" "$W/bin/fr-demo-suid"
chmod 755 "$W/bin"/*
chmod 4755 "$W/bin/fr-suid" "$W/bin/fr-demo-suid"
mkdir -p /etc/flightrec
write_conf() {
        cat >/etc/flightrec/agent.conf <<EOF
# written by tests/test-hostwide.sh
[agent]
include = fr-chosen fr-excl* $1
exclude = fr-excluded
socket = $SOCK
$2
EOF
}
write_conf "" ""
echo "$W/bin/libflightrec.so.0" >/etc/ld.so.preload

printf '[daemon]\nsnapshot_timeout = 20s\n' >"$W/d.conf"
"$D" --config "$W/d.conf" --socket "$SOCK" --output-dir "$W/out" >>"$LOG" 2>&1 &
DPID=$!
wait_for 5 test -S "$SOCK" || { fail "daemon did not create $SOCK"; exit 1; }
n_agents() { "$CTL" --socket "$1" status | sed -n 's/.*: \([0-9]*\) agents\{0,1\} connected.*/\1/p'; }

say "1. host-wide: a shell loop of short commands"
# The loop's shell, every command, and fr-chosen living 0.2 s (less than
# start_delay_ms): chosen or not, none of them connects or makes a memfd.
strace -f -qq -o "$W/loop.strace" -e trace=connect,memfd_create,clone,clone3 sh -c '
        i=0
        while [ $i -lt 100 ]; do /bin/true; echo x >/dev/null; cat /dev/null; i=$((i + 1)); done
        '"$W"'/bin/fr-chosen 0.2 idle' || fail "the loop failed"
n=$(grep -c -E 'connect\(|memfd_create\(' "$W/loop.strace")
[ "$n" = 0 ] && ok "300 short commands + a short chosen one: no connect, no memfd_create" ||
        fail "$n connect/memfd_create calls in the loop: $(grep -E 'connect\(|memfd_create\(' "$W/loop.strace" | head -3)"
# One clone per process that was chosen (its deferred start): fr-chosen only.
n=$(grep -c -E 'clone3?\(.*CLONE_THREAD' "$W/loop.strace")
[ "$n" = 1 ] && ok "one thread created, by the chosen short program" ||
        fail "$n threads created in the loop (expected 1)"

say "1b. an excluded long-running program, and a chosen one"
strace -f -qq -o "$W/excluded.strace" -e trace=connect,memfd_create "$W/bin/fr-excluded" 600 idle \
        >/dev/null 2>&1 &
PIDS="$PIDS $!"
strace -f -qq -o "$W/chosen.strace" -e trace=connect,memfd_create "$W/bin/fr-chosen" 600 idle \
        >/dev/null 2>&1 &
PIDS="$PIDS $!"
sleep 0.5
CHPID=$(pgrep -n -f "^$W/bin/fr-chosen 600") XPID=$(pgrep -n -f "^$W/bin/fr-excluded 600")
PIDS="$PIDS $CHPID $XPID" # the tracees go on when strace is killed
wait_for 10 agent_up "$CHPID" && ok "the chosen program connected" || fail "fr-chosen ($CHPID) did not connect"
sleep 1.5 # the excluded one has lived past start_delay_ms too
[ "$(n_agents "$SOCK")" = 1 ] && ok "it is the only agent (the daemon, strace, the shell: not chosen)" ||
        fail "$(n_agents "$SOCK") agents connected, expected 1: $("$CTL" --socket "$SOCK" status)"
grep -q "connect(.*$SOCK" "$W/chosen.strace" && grep -q memfd_create "$W/chosen.strace" &&
        ok "strace sees the chosen program's connect and memfd_create" ||
        fail "strace did not see the chosen program connect: $(cat "$W/chosen.strace")"
n=$(grep -c -E 'connect\(|memfd_create\(' "$W/excluded.strace")
[ "$n" = 0 ] && ok "excluded program: no connect, no memfd_create" || fail "excluded: $(cat "$W/excluded.strace")"
socks=$(ls -l /proc/"$XPID"/fd 2>/dev/null | grep -c -E 'socket:|memfd:')
ours=$(cat /proc/"$XPID"/task/*/comm | grep -c flightrec)
[ "$socks" = 0 ] && [ "$ours" = 0 ] && ok "excluded program: no socket, no memfd, no thread of ours" ||
        fail "excluded program has $socks sockets/memfds, $ours flightrec threads"
before=$(ls "$W/out" | grep -v '\.offcpu\.pb\.gz$' | grep -c '\.pb\.gz$')
kill -USR1 $DPID
wait_for 20 sh -c "ls '$W/out' | grep -q 'fr-chosen-$CHPID-.*\\.pb\\.gz'" &&
        ok "SIGUSR1: the chosen program is snapshotted" || fail "no snapshot of fr-chosen"
sleep 1
after=$(ls "$W/out" | grep -v '\.offcpu\.pb\.gz$' | grep -c '\.pb\.gz$')
[ $((after - before)) = 1 ] && ok "and only it ($(ls "$W/out" | grep -c '\.trace\.lz4$') trace)" ||
        fail "$((after - before)) profiles written for one chosen process: $(ls "$W/out")"
for f in "$W/out"/*.trace.lz4; do "$LZ4" -tq "$f" || fail "$f fails lz4 -t"; done

say "2. setuid: a setuid-root copy run as nobody, with FLIGHTREC_DIR and FLIGHTREC_SOCKET pointing elsewhere"
mkdir -m 1777 /tmp/evil
"$D" --config "$W/d.conf" --socket /tmp/evil.sock --output-dir "$W/evil-out" >"$W/evil-daemon.log" 2>&1 &
EVIL=$!
PIDS="$PIDS $EVIL"
wait_for 5 test -S /tmp/evil.sock || fail "no evil daemon"
chmod 666 /tmp/evil.sock
as_nobody() {
        setpriv --reuid=nobody --regid=nogroup --clear-groups env FLIGHTREC_DIR=/tmp/evil \
                FLIGHTREC_SOCKET=/tmp/evil.sock FLIGHTREC_AUTOSTART=1 FLIGHTREC_INCLUDE='*' \
                FLIGHTREC_START_DELAY_MS=0 FLIGHTREC_AGENT_CONF=/tmp/evil/agent.conf FLIGHTREC_DEBUG=1 "$@"
}
printf '[agent]\ninclude = *\nsetuid = record\nsocket = /tmp/evil.sock\n' >/tmp/evil/agent.conf
# a) the default policy: setuid programs are not recorded at all.
as_nobody "$W/bin/fr-suid" 1.5 idle >"$W/suid-a.log" 2>&1 &
SPID=$!
PIDS="$PIDS $SPID"
sleep 0.5
grep -q "^Uid:.*[[:space:]]0[[:space:]]" /proc/$SPID/status && ok "it runs set-user-ID root" ||
        fail "not setuid root: $(grep Uid /proc/$SPID/status)"
wait $SPID && ok "it runs unchanged (exit 0)" || fail "setuid program failed: $(cat "$W/suid-a.log")"
# fr-demo links the agent and calls fr_start(NULL), then fr_snapshot():
# with no daemon at the configured socket, it writes no local file.
as_nobody "$W/bin/fr-demo-suid" 1.5 >"$W/suid-demo.log" 2>&1
[ "$(n_agents /tmp/evil.sock)" = 0 ] && ! grep -q "connected (uid" "$W/evil-daemon.log" &&
        ok "nothing connected to /tmp/evil.sock" || fail "a connection reached /tmp/evil.sock: $(cat "$W/evil-daemon.log")"
[ -z "$(ls /tmp/evil | grep -v '^agent.conf$')" ] && [ -z "$(ls /var/tmp)" ] &&
        ok "nothing written in /tmp/evil or /var/tmp" || fail "written: $(ls -la /tmp/evil /var/tmp)"
[ "$(n_agents "$SOCK")" = 1 ] && ok "default policy: no connection to the configured socket either" ||
        fail "a setuid process connected with setuid = off"
grep -q "flightrec" "$W/suid-a.log" && fail "FLIGHTREC_DEBUG was obeyed: $(cat "$W/suid-a.log")" ||
        ok "FLIGHTREC_DEBUG ignored too"
# b) setuid = record: agent.conf's socket only, environment ignored.
write_conf "fr-suid" "setuid = record
start_delay_ms = 0"
as_nobody "$W/bin/fr-suid" 600 idle >"$W/suid-b.log" 2>&1 &
PIDS="$PIDS $!"
sleep 0.3
SPID=$(pgrep -n -f "^$W/bin/fr-suid 600")
wait_for 10 agent_up "$SPID" && ok "setuid = record: it connects to agent.conf's socket" ||
        fail "setuid = record: fr-suid ($SPID) not connected: $(cat "$W/suid-b.log")"
# What a setuid program passes on: a setuid-root copy of env prints it.
cp "$(command -v env)" "$W/bin/fr-env-suid"
chmod 4755 "$W/bin/fr-env-suid"
as_nobody "$W/bin/fr-env-suid" >"$W/suid-env.log" 2>&1
grep -q '^PATH=' "$W/suid-env.log" && ! grep -q '^FLIGHTREC_' "$W/suid-env.log" &&
        ok "FLIGHTREC_* removed from a setuid program's environment" ||
        fail "setuid env printed: $(grep FLIGHTREC "$W/suid-env.log")"
as_nobody "$W/bin/fr-demo-suid" 1.5 >"$W/suid-demo-b.log" 2>&1
[ "$(n_agents /tmp/evil.sock)" = 0 ] && ! grep -q "connected (uid" "$W/evil-daemon.log" &&
        ok "still nothing at /tmp/evil.sock" || fail "a connection reached /tmp/evil.sock: $(cat "$W/evil-daemon.log")"
[ -z "$(ls /tmp/evil | grep -v '^agent.conf$')" ] && [ -z "$(ls /var/tmp)" ] &&
        ok "still nothing written in /tmp/evil or /var/tmp" || fail "written: $(ls -la /tmp/evil /var/tmp)"
wait_for 20 sh -c "ls '$W/out' | grep -q 'fr-demo-suid-.*\.pb\.gz'" && ok "fr-demo-suid's fr_snapshot() went to the configured daemon" ||
        fail "no snapshot of fr-demo-suid at the configured daemon: $(cat "$W/suid-demo-b.log")"
finish "host-wide"
