# Shell helpers shared by the end-to-end test scripts, sourced as
# "$(dirname "$0")/daemon-lib.sh". The checks' output and count (say, fail,
# ok, skip, wait_for, exit_if_failed) serve every one of them, the CLI scripts
# too (test-dump-cli, test-pprof-cli, test-perfetto-cli); the rest serves those
# that run a private flightrecd (test-daemon, test-daemon-faults,
# test-triggers, test-hook, test-hangs, test-crash, test-browser,
# test-daemon-timeline): its work directory, start, clean stop, clean-up and
# verdict. daemon_setup needs W (the work directory) and LIB
# (libflightrec.so) set first, start_daemon D (flightrecd), agent_up CTL.
failures=0

# say TEXT: a section heading.
say() { echo "--- $*"; }
# fail TEXT: report a failed check and count it.
fail() {
        echo "FAIL: $*"
        failures=$((failures + 1))
}
# ok TEXT: report a passed check.
ok() { echo "ok: $*"; }
# skip TEXT: report a check not run, and why.
skip() { echo "skip: $*"; }

# wait_for SECONDS COMMAND...: poll every 0.1 s until COMMAND succeeds.
wait_for() {
        n=$(($1 * 10))
        shift
        while [ $n -gt 0 ]; do
                if "$@" >/dev/null 2>&1; then return 0; fi
                sleep 0.1
                n=$((n - 1))
        done
        return 1
}

# show_stacks PID: every thread of PID and of its children, with its kernel
# wait channel and, where gdb is installed, its user stack: what a test prints
# of a process that did not end in time.
show_stacks() {
        for sp in "$1" $(pgrep -P "$1" 2>/dev/null); do # (sh has no locals: not wait_exit's p)
                [ -d "/proc/$sp" ] || continue
                echo "--- stacks of $sp: $(tr '\0' ' ' <"/proc/$sp/cmdline" 2>/dev/null)"
                for t in /proc/"$sp"/task/*; do
                        echo "  thread ${t##*/} $(cat "$t/comm" 2>/dev/null): wchan $(cat "$t/wchan" 2>/dev/null)"
                done
                command -v gdb >/dev/null &&
                        timeout 60 gdb -p "$sp" -batch -ex 'thread apply all bt 30' 2>&1 | grep -E '^(Thread|#)' | head -300
        done
}

# tsan_self_deadlock FILE: FILE (show_stacks' output) has a thread stuck on
# one of TSan's own locks (__sanitizer::FutexWait under a __tsan:: frame) in
# a signal handler that TSan called: GCC 12's TSan deadlocks on itself there,
# whatever the program does (docs/agent-design.md "Sanitizer builds"). A
# program's own deadlock waits in libc (__lll_lock_wait, futex), not there.
tsan_self_deadlock() {
        [ "${FR_SANITIZER:-}" = thread ] || return 1
        awk 'function verdict() { if (lock && handler && tsan) f = 1; lock = handler = tsan = n = 0 }
             /^Thread / { verdict() }
             /^#[0-9]/ && n++ < 6 && /__sanitizer::(FutexWait|Semaphore::Wait)/ { lock = 1 }
             /CallUserSignalHandler/ { handler = 1 }
             /__tsan::/ { tsan = 1 }
             END { verdict(); exit !f }' "$1"
}

# wait_exit SECONDS PID...: wait for the PIDs (children of this shell) to
# end, SECONDS at most in all; the exit status of the last one. One still
# running then has its stacks shown and is killed, and the status is 124 (a
# hung program is a failed check with its stacks, not a test timeout), or
# 125 with a "skip:" line when the stacks show TSan's own deadlock.
wait_exit() {
        n=$(($1 * 10))
        shift
        rc=0
        hung=0
        for p in "$@"; do
                while kill -0 "$p" 2>/dev/null && [ $n -gt 0 ]; do
                        sleep 0.1
                        n=$((n - 1))
                done
                if kill -0 "$p" 2>/dev/null; then
                        echo "pid $p did not end in time"
                        show_stacks "$p" >"$W/stacks-$p.txt" 2>&1
                        cat "$W/stacks-$p.txt"
                        kill -KILL "$p" $(pgrep -P "$p" 2>/dev/null) 2>/dev/null
                        wait "$p" 2>/dev/null
                        if tsan_self_deadlock "$W/stacks-$p.txt"; then
                                skip "pid $p deadlocked on a lock of TSan's own, in a handler TSan called (a runtime defect, not this program's)"
                                [ $hung -eq 124 ] || hung=125
                        else
                                hung=124
                        fi
                else
                        wait "$p" 2>/dev/null
                        rc=$?
                fi
        done
        [ $hung -eq 0 ] || return $hung
        return $rc
}

# exit_if_failed: after any failed check, the count on stderr and exit 1.
exit_if_failed() {
        if [ "$failures" -ne 0 ]; then
                echo "$failures failure(s)" >&2
                exit 1
        fi
}

# daemon_setup [SUBDIR...]: a fresh $W with out/ and the SUBDIRs, the paths
# (SOCK, OUT, LOG, CONF), no processes yet (PIDS, DPID), the agent's
# LD_PRELOAD (PRELOAD; a sanitizer's runtime, FR_PRELOAD_FIRST, comes first)
# and the traps that run cleanup.
daemon_setup() {
        rm -rf "$W"
        mkdir -p "$W/out"
        for sub in "$@"; do mkdir -p "$W/$sub"; done
        SOCK=$W/agent.sock
        OUT=$W/out
        LOG=$W/daemon.log
        CONF=$W/flightrecd.conf
        PIDS=""
        DPID=""
        # shellcheck disable=SC2034 # used by the scripts
        PRELOAD="${FR_PRELOAD_FIRST:+$FR_PRELOAD_FIRST }$LIB"
        # TSan: the agent restarts its threads in a fork child (the shell's
        # children here); TSan's default kills such a child, and the death
        # of a child of a multi-threaded process can hang inside TSan (the
        # 900 s CI timeout of test-daemon: sh waiting for such a child).
        [ "${FR_SANITIZER:-}" = thread ] && export TSAN_OPTIONS="die_after_fork=0 ${TSAN_OPTIONS:-}"
        trap cleanup EXIT
        trap 'cleanup; exit 1' INT TERM HUP
}

# kill_all: SIGKILL to the daemon and every process in PIDS, then reap them.
kill_all() {
        for p in $PIDS $DPID; do kill -KILL "$p" 2>/dev/null; done
        wait 2>/dev/null
}

# cleanup: run at exit and by finish; a script with more to undo redefines it.
cleanup() { kill_all; }

# listening N: the daemon log has more than N "listening on" lines.
listening() { [ "$(grep -c "listening on" "$LOG")" -gt "$1" ]; }

# start_daemon [OUTPUT_DIR]: flightrecd in the background on $SOCK (pid in
# DPID), with $CONF when it exists, writing to OUTPUT_DIR (default $OUT);
# exits the script when the daemon does not start.
start_daemon() {
        # Wait for its own "listening" line: a daemon killed before left its
        # socket file behind.
        n_listen=$(grep -c "listening on" "$LOG" 2>/dev/null)
        if [ -f "$CONF" ]; then
                set -- --config "$CONF" --output-dir "${1:-$OUT}"
        else
                set -- --output-dir "${1:-$OUT}"
        fi
        "$D" "$@" --socket "$SOCK" >>"$LOG" 2>&1 &
        DPID=$!
        wait_for 5 listening "${n_listen:-0}" ||
                { fail "daemon did not start listening on $SOCK"; cat "$LOG"; exit 1; }
}

# clean_stop: SIGTERM to the daemon; it must exit 0 with no sanitizer report.
clean_stop() {
        say "a clean stop (a sanitizer build checks for leaks here)"
        kill -TERM "$DPID"
        wait "$DPID"
        rc=$?
        DPID=""
        [ $rc -eq 0 ] && ok "daemon exited 0 after SIGTERM" || fail "daemon exited with $rc after SIGTERM"
        grep -q "Sanitizer" "$LOG" && fail "sanitizer report in the daemon log" || ok "no sanitizer report"
}

# agent_up PID: flightrecctl status lists the process.
agent_up() { "$CTL" --socket "$SOCK" status | awk -v p="$1" '$1 == p {f=1} END {exit !f}'; }

# finish WHAT: clean up, then the verdict (the daemon log's tail on failure).
finish() {
        cleanup
        trap - EXIT
        if [ $failures -ne 0 ]; then
                echo "$failures failure(s); daemon log: $LOG"
                tail -30 "$LOG"
                exit 1
        fi
        echo "all daemon $1 checks passed"
}
