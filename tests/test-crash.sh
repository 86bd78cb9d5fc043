#!/bin/sh
# Crashes end to end (issue 12): a daemon on a temporary socket, tests/crash-app
# under the agent. For each death: the process ends exactly as without the
# agent (raw wait status, core dump), and the post-mortem snapshot names the
# crash (reason, .crash.txt, flightrecctl crash) and holds the generation in
# progress up to the death.
# Usage: test-crash.sh FLIGHTRECD FLIGHTRECCTL LIBFLIGHTREC CRASH_APP WORKDIR
set -u
# TSan takes the fatal signals itself (it defers them to a safe point, and a
# report ends the process with status 66): neither the status nor the crash
# record can be as without the agent there. The normal and ASan builds run it.
if [ "${FR_SANITIZER:-}" = thread ]; then
        echo "SKIP: TSan owns the fatal signals"
        exit 77
fi
D=$1 CTL=$2 LIB=$3 APP=$4 W=$5
. "$(dirname "$0")/daemon-lib.sh"
daemon_setup cores
# cleanup: the core files too.
cleanup() {
        kill_all
        rm -f "$W"/cores/core*
}
start_daemon

# Under ASan its own fatal-signal handlers would take over from the agent's,
# and it turns core dumps off.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0:handle_abort=0:detect_leaks=0:disable_coredump=0"

# wstatus CMD...: run CMD in cores/ with core dumps on, print its raw wait
# status (signal number, plus 128 when a core was dumped) as waitpid gives it.
wstatus() {
        (cd "$W/cores" && ulimit -c unlimited 2>/dev/null; exec perl -e 'system(@ARGV); print $?, "\n"' -- "$@")
}
CORES=yes
case "$(cat /proc/sys/kernel/core_pattern)" in
"|"*) CORES=no ;; # piped to a collector: no file to look at
esac
cores() { ls "$W/cores" | grep -c '^core'; }

# run NAME ENV... -- ARGS: the app under the agent; its output in $W/NAME.*,
# its raw status in $W/NAME.status.
run() {
        name=$1
        shift
        rm -f "$W"/cores/core*
        wstatus env FLIGHTREC_SOCKET="$SOCK" "$@" >"$W/$name.status" 2>"$W/$name.err"
        NAME_PID=$(sed -n 's/^pid \([0-9]*\)$/\1/p' "$W/$name.err" | head -1)
}

files_for() { ls "$OUT" | grep -q -- "-$1-.*\.pb\.gz\$"; }
trace_of() { ls "$OUT"/*-"$1"-*.trace.lz4 2>/dev/null | head -1; }
reason_of() { "$CTL" dump "$1" | head -1 | sed 's/.* reason "\(.*\)" flags .*/\1/; s/\\"/"/g'; }

# The app prints its pid on stderr first (CRASH_APP_PID=1).
export CRASH_APP_PID=1

say "baseline: the same deaths without the agent"
base_segv=$(cd "$W/cores" && ulimit -c unlimited 2>/dev/null; perl -e 'system(@ARGV); print $?, "\n"' -- "$APP" segv 0.3 2>/dev/null | tail -1)
base_cores=$(cores)
rm -f "$W"/cores/core*
base_abort=$(cd "$W/cores" && ulimit -c unlimited 2>/dev/null; perl -e 'system(@ARGV); print $?, "\n"' -- "$APP" abort 0.3 2>/dev/null | tail -1)
rm -f "$W"/cores/core*
ok "without the agent: SIGSEGV gives raw status $base_segv, abort() $base_abort ($base_cores core file)"

say "SIGSEGV at 2.3 s in a worker, period 1 s"
run segv FLIGHTREC_HZ=1000 LD_PRELOAD="$PRELOAD" "$APP" segv 2.3
st=$(tail -1 "$W/segv.status")
[ "$st" = "$base_segv" ] && ok "raw wait status $st, as without the agent" || fail "raw wait status $st, without the agent $base_segv"
[ $((st & 127)) -eq 11 ] && [ $(( (st & 127) + 128 )) -eq 139 ] && ok "exit status 139 (SIGSEGV) in a shell" || fail "not killed by SIGSEGV: $st"
if [ "$CORES" = yes ]; then
        [ "$(cores)" -ge 1 ] && [ $((st & 128)) -eq 128 ] && ok "core dump written ($(ls "$W/cores"))" || fail "no core dump under ulimit -c unlimited"
else
        skip "core_pattern pipes to a collector: the core flag in the status is all we check ($((st & 128)))"
fi
P=$(sed -n 's/^pid \([0-9]*\)$/\1/p' "$W/segv.err")
if wait_for 10 files_for "$P"; then
        T=$(trace_of "$P")
        R=$(reason_of "$T")
        echo "  reason: $R"
        echo "$R" | grep -q '^crash: SIGSEGV (SEGV_MAPERR) at 0x10 in thread [0-9]* "worker": walk_list <- parser_thread <- start_thread' \
                && ok "reason names the signal, code, address, thread and stack" || fail "reason: $R"
        # (The log line and .crash.txt come just after the profile.)
        wait_for 10 grep -q "agent crash-app\[$P\] crash: SIGSEGV (SEGV_MAPERR) at 0x10" "$LOG" && ok "the log says it" || fail "no crash line in the log"
        PB=${T%.trace.lz4}.pb.gz
        if command -v go >/dev/null 2>&1; then
                go tool pprof -comments "$PB" 2>/dev/null | grep -q '^reason: crash: SIGSEGV (SEGV_MAPERR) at 0x10 in thread' \
                        && ok "go tool pprof -comments shows the reason" || fail "pprof comments: $(go tool pprof -comments "$PB" 2>&1 | head -3)"
        else
                gunzip -c "$PB" | grep -a -q 'reason: crash: SIGSEGV (SEGV_MAPERR) at 0x10' && ok "the profile's comments hold the reason" || fail "no reason in the profile's comments"
        fi
        C=${T%.trace.lz4}.crash.txt
        if wait_for 10 test -f "$C"; then
                grep -q 'walk_list (crash-app.c:[0-9]*)' "$C" && grep -q 'parser_thread (crash-app.c:[0-9]*)' "$C" \
                        && ok ".crash.txt: symbolized stack with file:line" || fail ".crash.txt stack: $(sed -n '/^Crashing/,/registers/p' "$C")"
                grep -q '^address:  0x10$' "$C" && grep -q '^signal:   SIGSEGV (SEGV_MAPERR)' "$C" && ok ".crash.txt: signal and address" || fail ".crash.txt header"
                grep -q '^Thread [0-9]* "crash-app":' "$C" && grep -q 'last sampled stack' "$C" && ok ".crash.txt: the other thread with its last stack" || fail ".crash.txt: no other thread"
                grep -q "crash-app $(printf '%s' "$(grep -o 'build id [0-9a-f]*' "$LOG" | head -1 | cut -d' ' -f3)")" "$C" && ok ".crash.txt: loaded objects with build ids" || fail ".crash.txt: loaded objects"
                "$CTL" crash "$T" >"$W/ctl-crash.txt" && cmp -s "$C" "$W/ctl-crash.txt" && ok "flightrecctl crash prints the same report" || fail "flightrecctl crash differs from $C"
        else
                fail "no $C"
        fi
        "$CTL" dump "$T" >"$W/segv-dump.txt" || fail "dump"
        grep '^gen ' "$W/segv-dump.txt" | tail -1 | grep -q 'partial' && ok "the last generation is the partial one" || fail "no partial last generation"
        crash_at=$(awk '/^  crash at / {print $3}' "$W/segv-dump.txt")
        tid=$(awk '/^  crash at / {print $9}' "$W/segv-dump.txt")
        last=$(sed -n 's/.*last log \(walk [0-9]*\)$/\1/p' "$W/segv.status")
        got=$(awk -v t="$tid" '$2 == t && / LOG / {m=$0} END {print m}' "$W/segv-dump.txt" | sed 's/.*message "\(.*\)"/\1/')
        [ -n "$last" ] && [ "$got" = "$last" ] && ok "the worker's last event is its last log before the death ($last)" || fail "last event '$got', the app's last log '$last'"
        ev=$(awk -v t="$tid" -v c="$crash_at" '$2 == t && / LOG / {e=$1} END {printf "%d", (c - e) * 1000}' "$W/segv-dump.txt")
        sm=$(awk -v t="$tid" -v c="$crash_at" '$2 == t && / SAMPLE / {e=$1} END {printf "%d", (c - e) * 1000}' "$W/segv-dump.txt")
        [ "$ev" -le 10 ] && ok "its last event $ev ms before the death" || fail "its last event $ev ms before the death"
        [ "$sm" -le 50 ] && ok "its last sample $sm ms before the death (1000 Hz)" || fail "its last sample $sm ms before the death"
else
        fail "no post-mortem for $P"
fi

say "abort()"
run abort LD_PRELOAD="$PRELOAD" "$APP" abort 1.5
st=$(tail -1 "$W/abort.status")
[ "$st" = "$base_abort" ] && ok "raw wait status $st, as without the agent" || fail "raw wait status $st, without the agent $base_abort"
P=$(sed -n 's/^pid \([0-9]*\)$/\1/p' "$W/abort.err")
if wait_for 10 files_for "$P"; then
        R=$(reason_of "$(trace_of "$P")")
        echo "  reason: $R"
        echo "$R" | grep -q '^crash: SIGABRT (SI_TKILL) in thread '"$P"' "crash-app":.* raise <- abort <- .*main' && ok "SIGABRT with its stack through abort" || fail "reason: $R"
else
        fail "no post-mortem for $P"
fi

say "infinite recursion"
run recurse LD_PRELOAD="$PRELOAD" "$APP" recurse 1.2
st=$(tail -1 "$W/recurse.status")
[ $((st & 127)) -eq 11 ] && ok "killed by SIGSEGV (status $st)" || fail "status $st"
P=$(sed -n 's/^pid \([0-9]*\)$/\1/p' "$W/recurse.err")
if wait_for 10 files_for "$P"; then
        R=$(reason_of "$(trace_of "$P")")
        echo "  reason: $R"
        if echo "$R" | grep -q '^crash: SIGSEGV (SEGV_[A-Z]*), stack overflow, at 0x[0-9a-f]* in thread [0-9]* "worker": recurse <- recurse'; then
                ok "caught on the alternate stack, reported as a stack overflow in recurse"
        else
                fail "reason: $R"
        fi
else
        fail "no post-mortem for $P"
fi

for when in before after; do
        say "the application's own SIGSEGV handler, installed $when the agent"
        if [ $when = before ]; then
                set -- CRASH_AGENT="$LIB" ${FR_PRELOAD_FIRST:+LD_PRELOAD=$FR_PRELOAD_FIRST}
        else
                set -- LD_PRELOAD="$PRELOAD"
        fi
        run "h-$when" "$@" "$APP" handler $when print 1.5
        st=$(tail -1 "$W/h-$when.status")
        grep -q 'own SIGSEGV handler ran' "$W/h-$when.err" && ok "its handler ran" || fail "its handler did not run: $(cat "$W/h-$when.err")"
        [ "$st" = "$base_segv" ] && ok "then the fault killed it: raw status $st as without the agent" || fail "raw status $st"
        P=$(sed -n 's/^pid \([0-9]*\)$/\1/p' "$W/h-$when.err")
        if wait_for 10 files_for "$P"; then
                R=$(reason_of "$(trace_of "$P")")
                echo "$R" | grep -q '^crash: SIGSEGV (SEGV_MAPERR) at 0x10 .*walk_list' && ok "the agent recorded the crash too" || fail "reason: $R"
        else
                fail "no post-mortem for $P"
        fi
        run "r-$when" "$@" "$APP" handler $when recover 1.2
        grep -q 'recovered 100 faults' "$W/r-$when.status" && ok "a handler that recovers with siglongjmp keeps the program alive (100 faults)" || fail "recovery: $(cat "$W/r-$when.status" "$W/r-$when.err")"
        P=$(sed -n 's/^pid \([0-9]*\)$/\1/p' "$W/r-$when.err")
        if wait_for 10 files_for "$P"; then
                R=$(reason_of "$(trace_of "$P")")
                [ "$R" = "died without a crash record (SIGKILL, the OOM killer, or a signal the agent cannot catch)" ] \
                        && ok "no crash recorded for the recovered faults (then SIGKILL: $R)" || fail "reason: $R"
                [ ! -e "$(dirname "$(trace_of "$P")")/$(basename "$(trace_of "$P")" .trace.lz4).crash.txt" ] || fail "a .crash.txt for recovered faults"
        else
                fail "no post-mortem for $P"
        fi
done

say "kill -9"
FLIGHTREC_SOCKET="$SOCK" LD_PRELOAD="$PRELOAD" "$APP" segv 600 >/dev/null 2>&1 &
K=$!
PIDS="$PIDS $K"
wait_for 10 agent_up "$K" || fail "agent $K not connected"
sleep 2.4
kill -KILL "$K"
if wait_for 10 files_for "$K"; then
        T=$(trace_of "$K")
        R=$(reason_of "$T")
        [ "$R" = "died without a crash record (SIGKILL, the OOM killer, or a signal the agent cannot catch)" ] && ok "reason: $R" || fail "reason: $R"
        "$CTL" dump "$T" | grep '^gen ' | tail -1 | grep -q partial && ok "the generation in progress is salvaged after kill -9 too" || fail "no partial generation after kill -9"
        "$CTL" crash "$T" >/dev/null 2>"$W/k9-crash.err"; rc=$?
        [ $rc -eq 1 ] && grep -q 'no crash record' "$W/k9-crash.err" && ok "flightrecctl crash: no crash record" || fail "flightrecctl crash on a kill -9 trace: $rc $(cat "$W/k9-crash.err")"
else
        fail "no post-mortem for $K"
fi

finish crash
