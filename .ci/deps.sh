#!/usr/bin/env bash
# Installs the Debian 12 packages flightrec builds, tests and benchmarks with.
# Idempotent: skips apt when everything is already there.
set -euo pipefail
pkgs=(build-essential cmake pkg-config git
      libevent-dev libprotobuf-c-dev protobuf-c-compiler liblz4-dev lz4 libsystemd-dev
      libcmocka-dev libdw-dev libelf-dev zlib1g-dev libinih-dev golang-go bc
      lttng-tools liblttng-ust-dev libgoogle-perftools4
      libc6-dbg  # libc's debug symbols: bench/run-daemon.sh's rings with samples, root frames' names
      libseccomp-dev strace  # the agent's seccomp check (test-guest) and the syscall list (test-syscalls)
      procps gdb  # a hung program's threads and stacks (show_stacks, tests/daemon-lib.sh)
      systemd   # systemd: systemd-analyze and systemd-socket-activate for the daemon tests
      pandoc man-db  # the man pages (man/): pandoc builds them, man/groff check them
      dpkg-dev lintian bash-completion  # the Debian package and its test (packaging/, tests/test-deb.sh)
      protobuf-compiler  # protoc --decode of the .pftrace export
      chromium fonts-dejavu-core)  # the browser test (speedscope in headless chromium)
# node and npm for the browser test's tools; a node installed otherwise is fine.
command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)
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

# The browser test's tools, pinned by tests/browser/package-lock.json, into
# tests/browser/node_modules (project-local, not committed).
browser="$(dirname "$0")/../tests/browser"
if ! [ -d "$browser/node_modules/speedscope/dist/release" ] ||
   ! [ -f "$browser/node_modules/playwright-core/package.json" ]; then
        echo "npm ci in tests/browser (speedscope, playwright-core)"
        (cd "$browser" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
