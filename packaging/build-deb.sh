#!/bin/sh
# Builds the Debian packages from this tree: flightrec_<version>_<arch>.deb
# and libflightrec-dev_<version>_<arch>.deb, with Debian's build flags
# (dpkg-buildflags, hardening=+all) and Debian's paths (/usr, /etc,
# /lib/systemd/system), by CPack from the tree's install rules.
# Usage: packaging/build-deb.sh [OUTDIR [BUILDDIR]]
#   OUTDIR defaults to build-deb/ in the tree, BUILDDIR to OUTDIR/build.
# Installs the Debian packages it needs first (.ci/deps.sh; FR_NO_DEPS=1
# skips that, as tests/test-deb.sh does).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
[ "${FR_NO_DEPS:-}" = 1 ] || bash "$src/.ci/deps.sh"
out=${1:-$src/build-deb}
build=${2:-$out/build}
mkdir -p "$out"
out=$(cd "$out" && pwd)
command -v pandoc >/dev/null || { echo "build-deb: pandoc is needed for the man pages" >&2; exit 1; }

eval "$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --export=sh)"
# CMake reads CFLAGS and LDFLAGS, not CPPFLAGS (-D_FORTIFY_SOURCE).
CFLAGS="$CFLAGS $CPPFLAGS" cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=None \
        -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_INSTALL_SYSCONFDIR=/etc \
        -DFLIGHTREC_SYSTEMD_UNITDIR=/lib/systemd/system \
        -DFLIGHTREC_DEB=ON -DBUILD_TESTING=OFF >"$build.cmake.log" 2>&1 ||
        { cat "$build.cmake.log" >&2; exit 1; }
cmake --build "$build" -j"$(nproc)" >"$build.build.log" 2>&1 ||
        { tail -40 "$build.build.log" >&2; exit 1; }
rm -f "$out"/*.deb
(cd "$build" && cpack -G DEB -B "$out" >"$build.cpack.log" 2>&1) ||
        { cat "$build.cpack.log" >&2; exit 1; }
rm -rf "$out/_CPack_Packages"
ls "$out"/*.deb
