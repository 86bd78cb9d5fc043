#!/usr/bin/env bash
# Builds and runs every test: the normal build, then ASan+UBSan, then TSan.
# Usage: tests/run-all.sh   (from anywhere; installs missing packages first)
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/deps.sh
jobs=$(nproc)
for variant in normal address thread; do
        dir=build; [ $variant = normal ] || dir=build-$variant
        san=; [ $variant = normal ] || san=$variant
        echo "=== $variant build ($dir)"
        cmake -S . -B "$dir" -DBUILD_TESTING=ON -DFLIGHTREC_SANITIZE="$san" >/dev/null
        cmake --build "$dir" -j"$jobs" >/dev/null
        # TSan: the documented suppressions (tests/tsan.supp) for every
        # process a test starts, not only those whose test sets TSAN_OPTIONS.
        if [ $variant = thread ]; then
                TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp ${TSAN_OPTIONS:-}" \
                        ctest --test-dir "$dir" --output-on-failure
        else
                ctest --test-dir "$dir" --output-on-failure
        fi
done
