#!/bin/sh
# syscall-set.sh GROUP: the system calls of a systemd syscall-filter group
# (e.g. @system-service), its included groups expanded, one a line, sorted.
# Uses systemd-analyze, the reference for what SystemCallFilter= allows.
set -eu
expand() {
        systemd-analyze syscall-filter "$1" | sed -n '2,$p' | sed 's/^[[:space:]]*//' |
                grep -v '^#' | grep -v '^$' | while read -r s; do
                case "$s" in
                @*) expand "$s" ;;
                *) echo "$s" ;;
                esac
        done
}
expand "$1" | sort -u
