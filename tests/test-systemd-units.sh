#!/bin/sh
# systemd units: `systemd-analyze verify` clean and `systemd-analyze security`
# exposure <= 2.0, without a running systemd (--offline, --man=no).
# The service is checked with ExecStart pointing at the freshly built binary
# (verify wants an executable there) and the socket beside it.
# Usage: test-systemd-units.sh SRCDIR FLIGHTRECD WORKDIR
set -eu
SRC=$1 D=$2 W=$3
command -v systemd-analyze >/dev/null 2>&1 || { echo "skip: no systemd-analyze"; exit 77; }
rm -rf "$W"
mkdir -p "$W"
sed -e "s|@CMAKE_INSTALL_FULL_BINDIR@/flightrecd|$D|" \
    -e "s|@CMAKE_INSTALL_FULL_DOCDIR@|/usr/share/doc/flightrec|" \
    "$SRC/systemd/flightrecd.service.in" >"$W/flightrecd.service"
cp "$SRC/systemd/flightrecd.socket" "$W/"
out=$(systemd-analyze verify --man=no "$W/flightrecd.service" "$W/flightrecd.socket" 2>&1) || {
        echo "FAIL: systemd-analyze verify:"; echo "$out"; exit 1; }
[ -z "$out" ] || { echo "FAIL: systemd-analyze verify is not clean:"; echo "$out"; exit 1; }
echo "ok: systemd-analyze verify clean"
if ! systemd-analyze security --offline=true "$W/flightrecd.service" >"$W/security.txt" 2>&1; then
        echo "skip: this systemd-analyze has no security --offline"; cat "$W/security.txt"; exit 77
fi
grep "Overall exposure" "$W/security.txt"
# --threshold is on the 0..100 scale: 20 is an exposure of 2.0.
systemd-analyze security --offline=true --threshold=20 "$W/flightrecd.service" >/dev/null 2>&1 || {
        echo "FAIL: exposure above 2.0"; grep "✗" "$W/security.txt"; exit 1; }
echo "ok: exposure <= 2.0"
