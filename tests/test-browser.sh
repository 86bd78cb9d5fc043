#!/bin/sh
# test-browser.sh FLIGHTRECD FLIGHTRECCTL LIBFLIGHTREC FR_DEMO WORKDIR [SCREENSHOT]
# Our exports in a real browser: an end-to-end snapshot (flightrecd, fr-demo
# under LD_PRELOAD at 1000 Hz, flightrecctl trigger), its timeline exported
# with `flightrecctl perfetto --json` and its .pb.gz, each opened in
# speedscope (npm, release folder from a file: URL) in Debian's headless
# chromium, driven by playwright-core (tests/browser/check.js): the JSON
# must show the demo's named regions, the profile its hot functions.
# Installs the npm tools (npm ci in tests/browser) when they are missing;
# skips (77) with the reason when chromium, npm or the tools are still
# missing; .ci/deps.sh installs chromium and the tools, so CI runs it. SCREENSHOT: also keep a picture
# of the timeline (docs/timeline.png is made so).
set -u
D=$1 CTL=$2 LIB=$3 DEMO=$4 W=$5 SHOT=${6:-}
HERE=$(cd "$(dirname "$0")" && pwd)
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if ! [ -x "$CHROMIUM" ]; then
        echo "skip: no chromium at $CHROMIUM (apt-get install chromium; .ci/deps.sh does)"
        exit 77
fi
tools_there() {
        [ -d "$HERE/browser/node_modules/speedscope/dist/release" ] &&
                [ -f "$HERE/browser/node_modules/playwright-core/package.json" ]
}
# The npm tools, pinned by tests/browser/package-lock.json: installed here
# when missing (as .ci/deps.sh does), into tests/browser/node_modules.
if ! tools_there && command -v npm >/dev/null; then
        echo "npm ci in $HERE/browser (speedscope, playwright-core)"
        (cd "$HERE/browser" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
                echo "npm ci failed"
fi
if ! command -v node >/dev/null || ! tools_there; then
        echo "skip: speedscope / playwright-core not installed in tests/browser (npm ci there; bash .ci/deps.sh does)"
        exit 77
fi
export CHROMIUM

. "$HERE/daemon-lib.sh"
daemon_setup local
printf '[daemon]\nsnapshot_timeout = 30s\n' >"$CONF"
start_daemon

say "fr-demo under LD_PRELOAD, a snapshot while it runs"
env FLIGHTREC_SOCKET="$SOCK" FLIGHTREC_HZ=1000 FLIGHTREC_DIR="$W/local" \
        LD_PRELOAD="$PRELOAD" "$DEMO" 10 >"$W/demo.log" 2>&1 &
APP=$!
PIDS=$APP
wait_for 10 agent_up "$APP" || fail "fr-demo did not connect"
sleep 2
"$CTL" --socket "$SOCK" trigger --pid "$APP" --reason browser-test >"$W/trigger.out" 2>&1 ||
        fail "trigger: $(cat "$W/trigger.out")"
trace=$(ls "$OUT"/*-"$APP"-*.trace.lz4 2>/dev/null | head -1)
[ -n "$trace" ] || { fail "no trace written"; finish "browser"; }
profile=${trace%.trace.lz4}.pb.gz

say "flightrecctl perfetto --json $(basename "$trace")"
"$CTL" perfetto --json "$trace" -o "$W/timeline.json" 2>"$W/perfetto.err" ||
        fail "perfetto --json: $(cat "$W/perfetto.err")"
cat "$W/perfetto.err"

say "speedscope shows the regions of the JSON timeline"
if node "$HERE/browser/check.js" "$W/timeline.json" render,compress ${SHOT:+"$SHOT"} >"$W/check-json.out" 2>&1; then
        ok "$(cat "$W/check-json.out")"
else
        fail "JSON in speedscope: $(cat "$W/check-json.out")"
fi

say "speedscope shows the hot functions of the .pb.gz"
if node "$HERE/browser/check.js" "$profile" render_page,compress_reply >"$W/check-pprof.out" 2>&1; then
        ok "$(cat "$W/check-pprof.out")"
else
        fail "pprof in speedscope: $(cat "$W/check-pprof.out")"
fi
finish "browser"
