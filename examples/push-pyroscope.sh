#!/bin/sh
# An on_snapshot hook for flightrecd: push each snapshot's CPU profile to a
# Grafana Pyroscope server, POST /ingest?name=APP{pid=..,host=..,trigger=..}
# &from=&until=&format=pprof with the gzip'd pprof as the body (Pyroscope's
# HTTP ingest API). In /etc/flightrec/flightrecd.conf, [daemon]:
#     on_snapshot = /usr/share/doc/flightrec/examples/push-pyroscope.sh
# Environment: PYROSCOPE_URL (default http://localhost:4040), PYROSCOPE_APP
# (default: the process's comm), PYROSCOPE_CURL_OPTS (e.g. auth: -u user:key,
# or -H "X-Scope-OrgID: tenant"). flightrecd gives FLIGHTREC_SNAPSHOT_TRACE,
# _PPROF, _PID, _COMM, _REASON, _TRIGGER (and the same as arguments).
# The profile's span (from, until) is the trace's, read with flightrecctl dump.
set -eu
PPROF=${FLIGHTREC_SNAPSHOT_PPROF:-${2:-}}
TRACE=${FLIGHTREC_SNAPSHOT_TRACE:-${1:-}}
PID=${FLIGHTREC_SNAPSHOT_PID:-${3:-0}}
COMM=${FLIGHTREC_SNAPSHOT_COMM:-${4:-unknown}}
TRIGGER=${FLIGHTREC_SNAPSHOT_TRIGGER:-${5:-default}}
URL=${PYROSCOPE_URL:-http://localhost:4040}
CTL=${FLIGHTRECCTL:-flightrecctl}
[ -n "$PPROF" ] && [ -f "$PPROF" ] || { echo "push-pyroscope: no pprof file ($PPROF)" >&2; exit 1; }

# A label value Pyroscope takes: [A-Za-z0-9_.-], the rest as '_'.
label() { printf %s "$1" | tr -c 'A-Za-z0-9_.-' '_'; }
# Percent-encode a query value.
urlencode() {
        printf %s "$1" | od -An -v -tx1 | tr -s ' \n' '  ' | {
                read -r hex || true
                for h in $hex; do
                        case $h in
                        3[0-9] | 4[1-9a-f] | 5[0-9a] | 6[1-9a-f] | 7[0-9a] | 2d | 2e | 5f) printf "\\$(printf %03o 0x"$h")" ;;
                        *) printf %%%s "$h" ;;
                        esac
                done
        }
}

APP=$(label "${PYROSCOPE_APP:-$COMM}")
HOST=$(label "$(hostname 2>/dev/null || cat /proc/sys/kernel/hostname)")
NAME="$APP{pid=$(label "$PID"),host=$HOST,trigger=$(label "$TRIGGER")}"

# from: the first generation's start, until: the last one's end (UNIX s).
span=$("$CTL" dump "$TRACE" 2>/dev/null | awk '
        /^gen / { for (i = 1; i < NF; i++) { if ($i == "span") s = $(i + 1); if ($i == "wall") w = $(i + 1) }
                  if (!first) first = w; last = w; lastspan = s }
        END { if (first) print first, last, lastspan }') || span=""
if [ -n "$span" ]; then
        set -- $span
        FROM=$(date -u -d "$1" +%s)
        UNTIL=$(( $(date -u -d "$2" +%s) + ${3%%.*} + 1 ))
else
        UNTIL=$(date -u -r "$PPROF" +%s)
        FROM=$((UNTIL - 10))
fi

# shellcheck disable=SC2086 # PYROSCOPE_CURL_OPTS is a list of options
exec curl -fsS --max-time 20 ${PYROSCOPE_CURL_OPTS:-} -X POST \
        -H 'Content-Type: application/octet-stream' --data-binary "@$PPROF" \
        "$URL/ingest?name=$(urlencode "$NAME")&from=$FROM&until=$UNTIL&format=pprof&spyName=flightrec"
