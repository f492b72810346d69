#!/usr/bin/env bash
# tests/platform/deb-install.sh SUITE DEB - install the package DEB into a
# clean chroot of Debian SUITE (debootstrap minbase, nothing else), from a
# fresh copy of a cached pristine chroot, then run deb-check.sh in it:
# synroute check, synroute haproxy, haproxy -c and requests routed through
# the HAProxy of SUITE with the packaged files. Prints ok/FAIL lines.
#
# Caches under build/chroot: SUITE-clean (the pristine chroot) and
# SUITE-clean.debs (the packages apt downloaded for the install, so that a
# rerun needs no download).
suite=$1 deb=$2
T=deb-install
. "$(dirname -- "$0")/../lib.bash"   # root, ok/fail, atexit; LUA_PATH/LUA_CPATH for the checkout
. tests/platform/chroot.bash
pristine=$root/build/chroot/$suite-clean
debs=$pristine.debs
run=$root/build/chroot/$suite-deb-run
atexit chroot_remove "$run"

if ! chroot_ensure "$pristine" "$suite"; then
    fail setup "cannot build the clean $suite chroot"; exit 1
fi
chroot_remove "$run"
cp -a "$pristine" "$run"
mkdir -p "$debs" "$run/srv/deb-test/deployment"
cp "$debs"/*.deb "$run/var/cache/apt/archives/" 2>/dev/null
cp "$deb" "$run/srv/deb-test/"

# the deployment, its stand-ins and a token: made here, with the checkout
ex=examples/small
cp -r "$ex/synroute.yaml" "$ex/homeserver.yaml" "$ex/workers" "$run/srv/deb-test/deployment/"
cp examples/monolith/homeserver.yaml "$run/srv/deb-test/monolith.yaml"
if ! standin config "$ex/synroute.yaml" > "$run/srv/deb-test/standin.cfg" ||
   ! standin token alice > "$run/srv/deb-test/token"; then
    fail setup "examples/standin/standin.lua failed (is build/5.4/synroute.so built?)"; exit 1
fi
cp tests/platform/deb-check.sh "$run/srv/deb-test/"

# install: the package and whatever apt pulls in for it (Depends and Recommends)
log=$root/build/chroot/$suite-deb-install.log
install_deb() { chroot_run "$run" net apt-get install -y "/srv/deb-test/${deb##*/}" >>"$log" 2>&1; }
: >"$log"
# the pristine chroot's package lists may be older than the archive: update, retry
if install_deb || { chroot_run "$run" net apt-get update -qq >>"$log" 2>&1 && install_deb; }; then
    ok apt-install
    echo "# installed in the clean $suite chroot: $(chroot_run "$run" net dpkg-query -W -f='${Package} ${Version}\n' synroute haproxy lua5.4 2>/dev/null | tr '\n' ' ')"
else
    fail apt-install "apt-get install of ${deb##*/} failed (log: $log): $(tail -3 "$log" | tr '\n' ' ')"
    exit 1
fi
cp -n "$run"/var/cache/apt/archives/*.deb "$debs/" 2>/dev/null
rm -f "$debs/${deb##*/}"

chroot_run "$run" lo bash /srv/deb-test/deb-check.sh /srv/deb-test || fails=$((fails + 1))
[ "$fails" = 0 ]
