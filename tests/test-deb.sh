#!/bin/sh
# The Debian packages, built as the README says (packaging/build-deb.sh), then:
#  - lintian: no error, no warning that packaging/lintian-overrides does not
#    justify;
#  - every path, mode and owner in the packages against packaging/files.txt;
#  - installed with `dpkg --root` into a throw-away root: an overlay of / whose
#    writable layer is a tmpfs, in a private mount namespace, so that the
#    machine's own / is never written and the packages' dependencies are
#    checked against the machine's real package database. There, without a
#    booted systemd: the user, group and directories the maintainer scripts
#    make; the socket unit enabled, the service not; `systemd-analyze verify`
#    on the installed units (man: links included); every man page opens by
#    name and renders without warnings; --help and --version; the bash
#    completion; programs built with libflightrec-dev (shared and static);
#    the installed daemon run as the units run it (socket passed, user
#    flightrec) serving an agent under LD_PRELOAD and writing a snapshot;
#  - reinstalled over itself: an edited configuration and a disabled socket
#    stay as the administrator left them;
#  - removed: the configuration, the recordings and the user stay;
#  - purged: nothing of flightrec is left in the root.
# Usage: test-deb.sh SRCDIR WORKDIR [SANITIZER]
# Skips (77) in sanitizer builds (the package is built without), where dpkg,
# cpack or mount namespaces are missing, or when not root.
set -eu

if [ "${1:-}" = --inside ]; then
        shift
        INSIDE=1
else
        INSIDE=
fi
SRC=$1 W=$2 SAN=${3:-}
. "$SRC/tests/daemon-lib.sh"
LOG=$W/daemon.log

if [ -z "$INSIDE" ]; then
        [ -z "$SAN" ] || { echo "skip: the package is built and tested in the normal build ($SAN build)"; exit 77; }
        for t in dpkg dpkg-deb dpkg-buildflags dpkg-shlibdeps cpack; do
                command -v $t >/dev/null 2>&1 || { echo "skip: no $t (not a Debian system?)"; exit 77; }
        done
        [ "$(id -u)" = 0 ] || { echo "skip: not root (the throw-away root needs a mount namespace)"; exit 77; }
        unshare --mount true 2>/dev/null || { echo "skip: no mount namespaces here"; exit 77; }
        for t in lintian pandoc; do
                command -v $t >/dev/null 2>&1 || { echo "FAIL: no $t: run .ci/deps.sh"; exit 1; }
        done
        rm -rf "$W"
        mkdir -p "$W"
        say "building the packages: packaging/build-deb.sh"
        t0=$(date +%s)
        FR_NO_DEPS=1 "$SRC/packaging/build-deb.sh" "$W/out" "$W/build"
        echo "built in $(($(date +%s) - t0)) s"
        DEB=$(ls "$W"/out/flightrec_*.deb)
        DEV=$(ls "$W"/out/libflightrec-dev_*.deb)
        VERSION=$(dpkg-deb -f "$DEB" Version)
        ARCH=$(dpkg --print-architecture)
        MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
        [ "$(basename "$DEB")" = "flightrec_${VERSION}_$ARCH.deb" ] && ok "file name $(basename "$DEB")" ||
                fail "file name $(basename "$DEB")"

        say "lintian"
        t0=$(date +%s)
        # With --show-overrides, lintian's status counts overridden tags too
        # (2): the verdict is "no E: or W: line"; 1 is lintian's own failure.
        lrc=0
        lintian --fail-on error,warning --show-overrides "$DEB" "$DEV" >"$W/lintian.txt" 2>&1 || lrc=$?
        if [ $lrc -ne 1 ] && ! grep -q '^[EW]:' "$W/lintian.txt"; then
                ok "lintian: no error, no warning ($(grep -c '^O:' "$W/lintian.txt" || true) overridden, with reasons; $(($(date +%s) - t0)) s)"
        else
                fail "lintian (status $lrc):"
        fi
        grep -v '^running with root' "$W/lintian.txt" || true

        say "paths, modes and owners against packaging/files.txt"
        for pkg in "$DEB" "$DEV"; do
                name=$(dpkg-deb -f "$pkg" Package)
                awk -v p="$name" '/^= / {on = ($2 == p); next} on && !/^#/' "$SRC/packaging/files.txt" |
                        sed -e "s|@MULTIARCH@|$MULTIARCH|g" -e "s|@VERSION@|$VERSION|g" | sort -k3 >"$W/$name.expected"
                dpkg-deb --fsys-tarfile "$pkg" | tar -tvf - |
                        awk '{ l = $1 " " $2; for (i = 6; i <= NF; i++) l = l " " $i; print l }' | sort -k3 >"$W/$name.files"
                if diff -u "$W/$name.expected" "$W/$name.files" >"$W/$name.diff"; then
                        ok "$name: $(wc -l <"$W/$name.files") paths as listed"
                else
                        fail "$name: contents differ from packaging/files.txt (- listed, + in the package):"
                        cat "$W/$name.diff"
                fi
        done
        dpkg-deb -f "$DEB" Depends | grep -q 'libevent-core' && ok "Depends computed: $(dpkg-deb -f "$DEB" Depends)" ||
                fail "Depends lacks the libraries: $(dpkg-deb -f "$DEB" Depends)"
        dpkg-deb --ctrl-tarfile "$DEB" | tar -xOf - ./shlibs | grep -q "^libflightrec 0 flightrec" &&
                ok "shlibs: $(dpkg-deb --ctrl-tarfile "$DEB" | tar -xOf - ./shlibs)" || fail "no shlibs entry"
        dpkg-deb --ctrl-tarfile "$DEB" | tar -xOf - ./conffiles | grep -qx /etc/flightrec/flightrecd.conf &&
                ok "conffile /etc/flightrec/flightrecd.conf" || fail "the configuration is not a conffile"

        # The rest in a private mount namespace (its mounts vanish with it).
        rc=0
        unshare --mount --propagation private sh "$0" --inside "$SRC" "$W" "$DEB" "$DEV" || rc=$?
        [ $failures -eq 0 ] || rc=1
        [ $rc -eq 0 ] && echo "all package checks passed"
        exit $rc
fi

# ---- inside the mount namespace --------------------------------------------
DEB=$3 DEV=$4
VERSION=$(dpkg-deb -f "$DEB" Version)
R=$W/root        # the throw-away root
U=$W/layer/upper # everything written to it
mkdir -p "$W/layer" "$R"
mount -t tmpfs fr-deb-layer "$W/layer"
mkdir "$U" "$W/layer/work"
mount -t overlay fr-deb-root -o "lowerdir=/,upperdir=$U,workdir=$W/layer/work" "$R"
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
mount --rbind /sys "$R/sys"
# No /run/systemd/system: the scripts see no booted systemd, as in a chroot.
mount -t tmpfs fr-deb-run "$R/run"
mount -t tmpfs fr-deb-tmp "$R/tmp"
in_root() { chroot "$R" "$@"; }
DPKG="dpkg --root=$R --force-unsafe-io"
PIDS=
cleanup() {
        for p in $PIDS; do kill "$p" 2>/dev/null || true; done
        for p in $PIDS; do wait "$p" 2>/dev/null || true; done
        PIDS=
}
trap cleanup EXIT
# st PATH: mode owner group of PATH in the root.
st() { chroot "$R" stat -c '%a %U %G' "$1" 2>/dev/null || echo missing; }

# Whatever an earlier run or the machine left: the test needs a root without us.
if $DPKG -s flightrec >/dev/null 2>&1; then
        $DPKG -P libflightrec-dev flightrec >/dev/null 2>&1 || true
fi

say "dpkg --root -i"
if $DPKG -i "$DEB" "$DEV" >"$W/install.txt" 2>&1; then
        ok "installed (dependencies satisfied by the machine's packages)"
else
        fail "dpkg -i:"; cat "$W/install.txt"
fi
grep -iE 'warning|error' "$W/install.txt" && fail "dpkg printed warnings or errors" || true
$DPKG -s flightrec | grep -q '^Status: install ok installed' && ok "flightrec: install ok installed" || fail "not installed"
$DPKG -s flightrec | sed -n '/^Conffiles:/,/^[A-Z]/p' | grep -q ' /etc/flightrec/flightrecd.conf ' &&
        ok "dpkg knows /etc/flightrec/flightrecd.conf as a conffile" || fail "no conffile registered"

say "installed files: paths, modes, owners"
n=0
for name in flightrec libflightrec-dev; do
        while read -r perm owner path rest; do
                p=${path#.}
                [ "$p" = / ] && continue
                got=$(stat -c '%A %U/%G' "$R$p" 2>/dev/null || echo missing)
                if [ -d "$R$p" ] && [ ! -L "$R$p" ]; then
                        # Directories may pre-exist (/usr/bin): only ours are checked.
                        case $p in *flightrec*) ;; *) continue ;; esac
                fi
                [ "$got" = "$perm $owner" ] || fail "$p: $got, want $perm $owner"
                n=$((n + 1))
        done <"$W/$name.files"
done
ok "$n installed paths have the packages' modes and owners"

say "maintainer scripts: user, group, directories, units"
pw=$(in_root getent passwd flightrec || true)
case $pw in
flightrec:x:*:*:*:/var/lib/flightrec:/usr/sbin/nologin) ok "system user: $pw" ;;
*) fail "user flightrec: '$pw'" ;;
esac
uid=$(echo "$pw" | cut -d: -f3)
[ -n "$uid" ] && [ "$uid" -lt 1000 ] && ok "uid $uid is a system uid" || fail "uid '$uid'"
in_root getent group flightrec >/dev/null && ok "group flightrec" || fail "no group flightrec"
[ "$(st /var/lib/flightrec)" = "750 flightrec flightrec" ] && ok "/var/lib/flightrec 0750 flightrec:flightrec" ||
        fail "/var/lib/flightrec: $(st /var/lib/flightrec)"
[ "$(st /run/flightrec)" = "755 root root" ] && ok "/run/flightrec 0755 root:root" || fail "/run/flightrec: $(st /run/flightrec)"
[ "$(st /var/tmp/flightrec)" = "1777 root root" ] && ok "/var/tmp/flightrec 1777 root:root" ||
        fail "/var/tmp/flightrec: $(st /var/tmp/flightrec)"
[ "$(readlink "$R/etc/systemd/system/sockets.target.wants/flightrecd.socket")" = /lib/systemd/system/flightrecd.socket ] &&
        ok "flightrecd.socket enabled (sockets.target.wants)" || fail "flightrecd.socket not enabled"
[ ! -e "$R/etc/systemd/system/multi-user.target.wants/flightrecd.service" ] && ok "flightrecd.service not enabled (the socket starts it)" ||
        fail "flightrecd.service enabled"
out=$(in_root systemd-analyze verify /lib/systemd/system/flightrecd.socket /lib/systemd/system/flightrecd.service 2>&1) &&
        [ -z "$out" ] && ok "systemd-analyze verify on the installed units: clean (man: links open)" ||
        fail "systemd-analyze verify: $out"

say "man pages, --help, --version, completion"
for page in flightrecd.8 flightrecctl.1 libflightrec.3 flightrecd.conf.5 flightrec-trace.5; do
        name=${page%.*} sec=${page##*.}
        f=$(in_root man -w "$sec" "$name" 2>/dev/null || true)
        [ "$f" = "/usr/share/man/man$sec/$page.gz" ] || { fail "man $sec $name: '$f'"; continue; }
        warn=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings=w -l "$R$f" 2>&1 >/dev/null)
        [ -z "$warn" ] && ok "man $sec $name opens and renders without warnings" || fail "man $sec $name: $warn"
done
f=$(in_root man -w 3 fr_snapshot 2>/dev/null || true)
[ "$(readlink -f "$R$f")" = "$R/usr/share/man/man3/libflightrec.3.gz" ] && ok "man fr_snapshot opens libflightrec(3)" ||
        fail "man 3 fr_snapshot: '$f'"
for cmd in flightrecd flightrecctl; do
        v=$(in_root $cmd --version 2>&1) && [ "$v" = "$cmd $VERSION" ] &&
                ok "$cmd --version: $v" || fail "$cmd --version: '$v'"
        in_root $cmd --help >/dev/null 2>&1 && ok "$cmd --help" || fail "$cmd --help"
done
cmds=$(in_root bash -c '. /usr/share/bash-completion/bash_completion
        . /usr/share/bash-completion/completions/flightrecctl
        COMP_WORDS=(flightrecctl ""); COMP_CWORD=1; COMP_LINE="flightrecctl "; COMP_POINT=${#COMP_LINE}
        _flightrecctl flightrecctl "" flightrecctl; echo "${COMPREPLY[*]}"' 2>&1)
want=$(in_root flightrecctl --help | awk '/^commands:/ {c = 1; next} /^$/ {c = 0} c && /^  [a-z]/ {printf "%s%s", s, $1; s = " "}')
[ -n "$want" ] && [ "$(echo "$cmds" | tr ' ' '\n' | sort | tr '\n' ' ')" = "$(echo "$want" | tr ' ' '\n' | sort | tr '\n' ' ')" ] &&
        ok "completion of 'flightrecctl ': $cmds" || fail "completion of commands: '$cmds', want '$want'"
opts=$(in_root bash -c '. /usr/share/bash-completion/bash_completion
        . /usr/share/bash-completion/completions/flightrecctl
        COMP_WORDS=(flightrecctl trigger --); COMP_CWORD=2; COMP_LINE="flightrecctl trigger --"; COMP_POINT=${#COMP_LINE}
        _flightrecctl flightrecctl -- trigger; echo "${COMPREPLY[*]}"' 2>&1)
case " $opts " in
*" --pid "*"--reason "*"--timeout "*) ok "completion of 'flightrecctl trigger --': $opts" ;;
*) fail "completion of trigger options: '$opts'" ;;
esac

say "libflightrec-dev: a program built with pkg-config"
cat >"$R/tmp/use.c" <<'EOF'
#include <flightrec.h>
#include <stdio.h>
int main(void) {
        struct fr_config c = {.sampling_off = 1, .dir = "/tmp"};
        int r = fr_start(&c);
        uint64_t t = fr_task_begin(0, "packaged");
        fr_task_end(t);
        fr_stop();
        printf("%d\n", r);
        return r != 0;
}
EOF
if in_root sh -c 'cc -o /tmp/use /tmp/use.c $(pkg-config --cflags --libs flightrec)' >"$W/cc.txt" 2>&1 &&
        [ "$(in_root /tmp/use 2>&1)" = 0 ]; then
        ok "built with pkg-config --cflags --libs flightrec, linked to $(in_root ldd /tmp/use | awk '/libflightrec/ {print $3}')"
else
        fail "program against libflightrec-dev:"; cat "$W/cc.txt"
fi
if in_root sh -c 'cc -o /tmp/use-static /tmp/use.c $(pkg-config --cflags flightrec) -l:libflightrec.a \
                $(pkg-config --static --libs flightrec | sed "s/-lflightrec//")' >"$W/cc.txt" 2>&1 &&
        [ "$(in_root /tmp/use-static 2>&1)" = 0 ] && ! in_root ldd /tmp/use-static | grep -q libflightrec; then
        ok "built with libflightrec.a and pkg-config --static --libs flightrec"
else
        fail "static link against libflightrec.a:"; cat "$W/cc.txt"
fi

say "the installed daemon, run as its units run it"
# flightrecd.socket: the socket at its path, passed; flightrecd.service:
# User=flightrec, the default configuration, output in /var/lib/flightrec.
# Both under timeout(1), whose pid we know and which passes our SIGTERM on:
# nothing outlives the test.
chroot "$R" timeout 300 systemd-socket-activate -l /run/flightrec/agent.sock \
        setpriv --reuid=flightrec --regid=flightrec --init-groups /usr/bin/flightrecd >"$LOG" 2>&1 &
PIDS="$PIDS $!"
wait_for 10 test -S "$R/run/flightrec/agent.sock" || fail "nothing listens on /run/flightrec/agent.sock"
chroot "$R" timeout 300 env LD_PRELOAD=libflightrec.so.0 FLIGHTREC_PERIOD_MS=200 \
        sh -c 'echo $$ >/tmp/agent.pid; while :; do :; done' &
PIDS="$! $PIDS"
wait_for 5 test -s "$R/tmp/agent.pid" || fail "the agent did not start"
APID=$(cat "$R/tmp/agent.pid")
printf '#!/bin/sh\nexec chroot "%s" flightrecctl "$@"\n' "$R" >"$W/ctl"
chmod +x "$W/ctl"
CTL=$W/ctl SOCK=/run/flightrec/agent.sock
wait_for 15 agent_up "$APID" && ok "agent under LD_PRELOAD=libflightrec.so.0 connected" ||
        fail "agent $APID not connected: $($CTL status 2>&1)"
sleep 0.5
if $CTL trigger --pid "$APID" --reason "package test" >"$W/trigger.txt" 2>&1; then
        trace=$(sed -n 1p "$W/trigger.txt") prof=$(sed -n 2p "$W/trigger.txt")
        ok "trigger: $trace, $prof"
        for f in "$trace" "$prof"; do
                case $f in /var/lib/flightrec/*) ;; *) fail "$f: not in /var/lib/flightrec" ;; esac
                [ "$(st "$f")" = "640 flightrec flightrec" ] && ok "$(basename "$f"): 0640 flightrec:flightrec" ||
                        fail "$f: $(st "$f")"
        done
        $CTL dump "$trace" | grep -q 'package test' && ok "flightrecctl dump reads the trace" || fail "dump $trace"
else
        fail "trigger: $(cat "$W/trigger.txt")"
fi
cleanup
sleep 0.2

say "upgrade (the package over itself): the administrator's choices stay"
echo "# edited by the administrator" >>"$R/etc/flightrec/flightrecd.conf"
in_root deb-systemd-helper disable flightrecd.socket >/dev/null 2>&1 || true
if $DPKG -i "$DEB" >"$W/upgrade.txt" 2>&1; then
        ok "reinstalled (postinst configure with the installed version)"
else
        fail "dpkg -i over the installed package:"; cat "$W/upgrade.txt"
fi
grep -q '^# edited by the administrator' "$R/etc/flightrec/flightrecd.conf" &&
        ok "the edited configuration is kept" || fail "the administrator's configuration was replaced"
[ ! -e "$R/etc/systemd/system/sockets.target.wants/flightrecd.socket" ] &&
        ok "the socket the administrator disabled stays disabled" || fail "the upgrade enabled the socket again"
in_root getent passwd flightrec >/dev/null && [ "$(st /var/lib/flightrec)" = "750 flightrec flightrec" ] &&
        ok "user and /var/lib/flightrec unchanged" || fail "user or state directory changed by the upgrade"

say "dpkg -r: configuration, recordings and user stay"
$DPKG -r libflightrec-dev flightrec >"$W/remove.txt" 2>&1 && ok "removed" || { fail "dpkg -r:"; cat "$W/remove.txt"; }
$DPKG -s flightrec 2>/dev/null | grep -q '^Status: deinstall ok config-files' && ok "status: config-files" ||
        fail "status after remove: $($DPKG -s flightrec 2>&1 | grep Status)"
[ -f "$R/etc/flightrec/flightrecd.conf" ] && ok "/etc/flightrec/flightrecd.conf stays" || fail "the configuration is gone"
[ ! -e "$R/usr/bin/flightrecd" ] && ! ls "$R"/usr/lib/*/libflightrec.so.0 >/dev/null 2>&1 &&
        ok "binaries and library gone" || fail "files left after remove"
ls "$R/var/lib/flightrec/"*.trace.lz4 >/dev/null 2>&1 && ok "recordings in /var/lib/flightrec stay" ||
        fail "recordings gone after remove"
in_root getent passwd flightrec >/dev/null && ok "user flightrec stays" || fail "user gone after remove"

say "dpkg -P: nothing of flightrec is left"
$DPKG -P flightrec libflightrec-dev >"$W/purge.txt" 2>&1 && ok "purged" || { fail "dpkg -P:"; cat "$W/purge.txt"; }
$DPKG -s flightrec >/dev/null 2>&1 && fail "dpkg still knows flightrec" || ok "dpkg no longer knows flightrec"
in_root getent passwd flightrec >/dev/null && fail "user flightrec left" || ok "user flightrec removed"
in_root getent group flightrec >/dev/null && fail "group flightrec left" || ok "group flightrec removed"
# Everything written to the root is in the overlay's upper layer: nothing
# there may be named after us (dpkg's own records and logs aside). Character
# devices are the overlay's marks of deleted lower files.
# man-db's cache of formatted pages is man-db's (made when a page is shown:
# systemd-analyze verify shows the units' man: pages; man-db expires it).
left=$(cd "$U" && find . ! -type c -name '*flightrec*' \
        ! -path './var/lib/dpkg/*' ! -path './var/log/*' ! -path './var/cache/man/*' | sort)
[ -z "$left" ] && ok "no path named after flightrec left in the root" || fail "left after purge: $left"
for f in /etc/passwd /etc/group /etc/shadow /etc/gshadow; do
        ! grep -q '^flightrec:' "$R$f" 2>/dev/null || fail "$f still names flightrec"
done
for d in /etc/flightrec /var/lib/flightrec /var/tmp/flightrec /run/flightrec /usr/share/doc/flightrec; do
        [ ! -e "$R$d" ] || fail "$d left after purge"
done
ok "no /etc/flightrec, /var/lib/flightrec, /var/tmp/flightrec, /run/flightrec, doc dir"
trap - EXIT
[ $failures -eq 0 ] || { echo "$failures failure(s)"; [ -s "$LOG" ] && tail -20 "$LOG"; exit 1; }
exit 0
