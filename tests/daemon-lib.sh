# Shell helpers shared by the daemon's end-to-end scripts (test-daemon.sh,
# test-daemon-faults.sh). Sourced; the caller sets CTL, SOCK, LOG, PIDS and
# DPID, and defines its own cleanup.
failures=0

say() { echo "--- $*"; }
fail() {
        echo "FAIL: $*"
        failures=$((failures + 1))
}
ok() { echo "ok: $*"; }
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
