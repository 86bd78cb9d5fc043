#!/usr/bin/env bash
# Installs the Debian 12 packages flightrec builds, tests and benchmarks with.
# Idempotent: skips apt when everything is already there.
set -euo pipefail
pkgs=(build-essential cmake pkg-config git
      libevent-dev libprotobuf-c-dev protobuf-c-compiler liblz4-dev lz4 libsystemd-dev
      libcmocka-dev libdw-dev libelf-dev zlib1g-dev libinih-dev golang-go bc
      lttng-tools liblttng-ust-dev libgoogle-perftools4
      libc6-dbg # names for libc's start_thread and clone3 in crash stacks (test-crash)
      systemd)  # systemd: systemd-analyze and systemd-socket-activate for the daemon tests
missing=()
for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
        echo "installing: ${missing[*]}"
        SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
