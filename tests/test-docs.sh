#!/bin/sh
# The man pages (man/*.md, their one source), the programs' --help and the
# README never disagree:
#  - flightrecd: the long options of --help are those of flightrecd(8) OPTIONS;
#  - flightrecctl: its options are those of flightrecctl(1) OPTIONS; its
#    commands (from --help) are the "## NAME" sections under COMMANDS; every
#    command answers --help and --version, and its options are those of its
#    section;
#  - every FLIGHTREC_* variable named in the sources (agent/, proto/, daemon/)
#    is documented in libflightrec(3) ENVIRONMENT and in the README table, and
#    they document no other;
#  - every flightrecctl command the README shows exists;
#  - every built page renders with groff -ww without a warning.
# A new option, command or variable therefore fails here until its page says
# what it does (the message names the file to edit).
# Usage: test-docs.sh SRCDIR FLIGHTRECD FLIGHTRECCTL MANBUILDDIR
set -eu
SRC=$1 D=$2 CTL=$3 MANB=$4
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

# longopts: the --long options in stdin, one per line, sorted.
longopts() { grep -o -- '--[a-z][a-z-]*' | sort -u; }
# section FILE HEADING: the lines of "# HEADING" (up to the next "# ").
section() { awk -v h="# $2" '$0 == h {on = 1; next} /^# / {on = 0} on' "$1"; }
# subsection FILE NAME: the lines of "## NAME" under COMMANDS.
subsection() { section "$1" COMMANDS | awk -v h="## $2" '$0 == h {on = 1; next} /^## / {on = 0} on'; }
# same WHAT WHERE A B: the two lists (one item a line) are equal.
same() {
        if [ "$3" = "$4" ]; then
                ok "$1: $(echo "$3" | tr '\n' ' ')"
        else
                fail "$1 differ; edit $2"
                echo "  in --help / the sources only: $(printf '%s\n' "$3" | grep -vxF -- "$4" | tr '\n' ' ')"
                echo "  in the documentation only:    $(printf '%s\n' "$4" | grep -vxF -- "$3" | tr '\n' ' ')"
        fi
}

# ---- flightrecd
"$D" --help >/dev/null || fail "flightrecd --help exits $?"
v=$("$D" --version) && [ -n "$v" ] && ok "flightrecd --version: $v" || fail "flightrecd --version"
same "flightrecd options" man/flightrecd.8.md "$("$D" --help | longopts)" \
        "$(section "$SRC/man/flightrecd.8.md" OPTIONS | longopts)"

# ---- flightrecctl
"$CTL" --help >"${TMPDIR:-/tmp}/fr-docs-help.$$"
help=$(cat "${TMPDIR:-/tmp}/fr-docs-help.$$")
rm -f "${TMPDIR:-/tmp}/fr-docs-help.$$"
v=$("$CTL" --version) && [ -n "$v" ] && ok "flightrecctl --version: $v" || fail "flightrecctl --version"
same "flightrecctl options" man/flightrecctl.1.md \
        "$(echo "$help" | awk '/^options:/ {on = 1; next} /^$/ {on = 0} on' | longopts)" \
        "$(section "$SRC/man/flightrecctl.1.md" OPTIONS | longopts)"
cmds=$(echo "$help" | awk '/^commands:/ {on = 1; next} /^$/ {on = 0} on && /^  [a-z]/ {print $1}' | sort)
same "flightrecctl commands" "man/flightrecctl.1.md (## NAME under # COMMANDS)" "$cmds" \
        "$(section "$SRC/man/flightrecctl.1.md" COMMANDS | awk '/^## / {print $2}' | sort)"
# Options every command has, or that belong to flightrecctl itself.
common='^--(help|version|socket)$'
for c in $cmds; do
        out=$("$CTL" "$c" --help 2>&1) || { fail "flightrecctl $c --help exits non-zero: $out"; continue; }
        echo "$out" | grep -q "flightrecctl.* $c" || fail "flightrecctl $c --help: no usage line: $out"
        v=$("$CTL" "$c" --version 2>&1) && [ "$v" = "$("$CTL" --version)" ] ||
                fail "flightrecctl $c --version: $v"
        same "flightrecctl $c options" "man/flightrecctl.1.md (## $c)" \
                "$(echo "$out" | longopts | grep -Ev "$common" || true)" \
                "$(subsection "$SRC/man/flightrecctl.1.md" "$c" | longopts | grep -Ev "$common" || true)"
done

# ---- environment variables
vars=$(cd "$SRC" && cat agent/*.c agent/*.h proto/*.c proto/*.h daemon/*.c daemon/*.h 2>/dev/null |
        grep -o '"FLIGHTREC_[A-Z0-9_][A-Z0-9_]*"' | tr -d '"' | sort -u)
same "FLIGHTREC_* variables, libflightrec(3)" "man/libflightrec.3.md (# ENVIRONMENT)" "$vars" \
        "$(section "$SRC/man/libflightrec.3.md" ENVIRONMENT | grep -o '^\*\*FLIGHTREC_[A-Z0-9_]*\*\*' | tr -d '*' | sort -u)"
same "FLIGHTREC_* variables, README" "the README's table of variables" "$vars" \
        "$(grep -o '^| `FLIGHTREC_[A-Z0-9_]*`' "$SRC/README.md" | tr -d '|` ' | sort -u)"

# ---- README commands
for c in $(grep -o 'flightrecctl \(\[[^]]*\] \)*[a-z][a-z]*' "$SRC/README.md" | awk '{print $NF}' | sort -u); do
        echo "$cmds" | grep -qx "$c" || fail "README shows 'flightrecctl $c', which is no command"
done
ok "every flightrecctl command the README shows exists"

# ---- rendering
n=0
for p in "$MANB"/*.[1-8]; do
        [ -f "$p" ] || continue
        warn=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings=w -l "$p" 2>&1 >/dev/null)
        [ -z "$warn" ] || fail "$(basename "$p"): $warn"
        n=$((n + 1))
done
[ $n -ge 5 ] && ok "$n man pages render without warnings" || fail "only $n man pages built in $MANB (pandoc?)"

[ $failures -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "documentation and programs agree"
