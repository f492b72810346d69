#!/usr/bin/env bash
# tests/platform/legs.sh test|bench - `make test` and `make bench` on both
# platforms synroute supports:
#
#   host     this machine (Debian 12: HAProxy 2.6 with Lua 5.3)
#   trixie   a Debian 13 chroot (HAProxy 3.0 with Lua 5.4), built here with
#            debootstrap from the archive apt uses (chroot.bash) and cached in
#            build/chroot/trixie
#
# test: each leg builds and runs tests/run.sh, every line prefixed with the
#   leg's name, then installs the package it built into a clean chroot of its
#   Debian release (deb-install.sh). The last line counts both legs:
#   "N passed, N failed".
# bench: tests/bench/bench.sh in each leg.
#
# Each leg runs in network and PID namespaces of its own (loopback only), so
# its fixed ports cannot clash with anything else on the machine and no
# process outlives it. The trixie leg works on a copy of the checkout (and of
# the benchmark directory) made for each run, never on the checkout itself.
#
# Env: LEGS (default "host trixie"), BENCH_DIR (the shared benchmark),
# CHROOT_PKGS (the chroot's packages; default: `make chroot-pkgs`).
# FUZZ_SECONDS, VTC_JOBS, BENCH_ROUNDS and CI reach the chroot too.
set -u
mode=${1:-test}
case $mode in test|bench) ;; *) echo "usage: $0 test|bench" >&2; exit 2 ;; esac
root=$(cd -- "$(dirname -- "$0")/../.." && pwd)
cd "$root" || exit 2
legs=${LEGS:-host trixie}
suite=trixie
bench_dir=${BENCH_DIR:-}
if [ "$mode" = bench ] && [ ! -d "$bench_dir" ]; then
    echo "legs: BENCH_DIR '$bench_dir' is not a directory (make bench sets it)" >&2; exit 2
fi
inside=/srv/synroute-test
logs=$root/build/legs
mkdir -p "$logs"
export CHROOT_PASS_ENV="FUZZ_SECONDS VTC_JOBS VTC_TIMEOUT BENCH_ROUNDS CI"
total_pass=0 total_fail=0 summary=()

label() { sed -u "s/^/$1 | /"; }

# the leg's counts: the last "N passed, N failed" of its log (none: 1 failure)
count_log() {   # LEG LOG EXTRA_OK EXTRA_FAIL SECONDS
    local leg=$1 log=$2 p f
    read -r p f < <(sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1 \2/p' "$log" | tail -1)
    if [ -z "${p:-}" ]; then p=0 f=1; fi
    p=$((p + $3)) f=$((f + $4))
    total_pass=$((total_pass + p)) total_fail=$((total_fail + f))
    summary+=("$(printf '%-7s %6d passed, %d failed (%d s)' "$leg" "$p" "$f" "$5")")
    echo "==== leg $leg: $p passed, $f failed ($5 s; log $log)"
}

# run CMD in a private network + PID namespace with loopback up, if we can
# (a shell is the namespace's PID 1 and CMD its child, which gets signals as usual)
isolated() {
    if [ "$(id -u)" = 0 ] && unshare --net --pid --fork --kill-child --mount-proc true 2>/dev/null; then
        unshare --net --pid --fork --kill-child --mount-proc /bin/sh -c 'ip link set lo up && "$@"' isolated "$@"
    else
        "$@"
    fi
}

platform_info() {   # printed by the leg itself (host or chroot)
    echo 'echo "$(. /etc/os-release; echo "$PRETTY_NAME"), $(haproxy -v 2>/dev/null | head -1 | cut -d" " -f1-3),' \
         '$(haproxy -vv 2>/dev/null | sed -n "s/^Built with Lua version : //p")"'
}

# deb_install LABEL SUITE TREE LOG: the package the package suite left in
# TREE/build/deb, installed into a clean chroot of SUITE (deb-install.sh);
# sets deb_ok / deb_fail
deb_install() {
    local label=$1 suite=$2 tree=$3 log=$4 deb dlog=$logs/$2-deb-install.log
    deb=$(ls "$tree"/build/deb/synroute_*.deb 2>/dev/null | head -1)
    if [ -z "$deb" ]; then
        echo "FAIL deb-install/setup: the package suite built no package" >"$dlog"
    elif [ "$(id -u)" != 0 ]; then
        echo "FAIL deb-install/setup: installing into a clean chroot needs root" >"$dlog"
    else
        bash tests/platform/deb-install.sh "$suite" "$deb" >"$dlog" 2>&1
        [ $? = 0 ] || grep -q '^FAIL' "$dlog" || echo "FAIL deb-install/suite: exited non-zero without a FAIL line" >>"$dlog"
    fi
    label "$label" <"$dlog"
    cat "$dlog" >>"$log"
    deb_ok=$(grep -c '^ok ' "$dlog") deb_fail=$(grep -c '^FAIL' "$dlog")
}

leg_host() {
    local t0=$SECONDS log=$logs/host-$mode.log
    echo "==== leg host: $(sh -c "$(platform_info)")"
    if [ "$mode" = test ]; then
        isolated bash tests/run.sh 2>&1 | tee "$log" | label "host  "
        # this release's package, into a clean chroot of this release
        deb_install "host  " "$(. /etc/os-release; echo "$VERSION_CODENAME")" "$root" "$log"
        count_log host "$log" "$deb_ok" "$deb_fail" $((SECONDS - t0))
    else
        BENCH_DIR=$bench_dir isolated bash tests/bench/bench.sh 2>&1 | tee "$log" | label "host  "
    fi
}

leg_trixie() {
    local t0=$SECONDS log=$logs/$suite-$mode.log chroot=$root/build/chroot/$suite
    echo "==== leg $suite: Debian $suite chroot $chroot"
    : >"$log"
    if [ "$(id -u)" != 0 ]; then
        echo "FAIL $suite/setup: the chroot leg needs root (run make test as root)" | tee -a "$log" | label "$suite"
        count_log "$suite" "$log" 0 0 0; return
    fi
    (
        . tests/platform/chroot.bash
        pkgs=${CHROOT_PKGS:-$(make -s --no-print-directory chroot-pkgs)}
        # shellcheck disable=SC2086
        chroot_ensure "$chroot" "$suite" $pkgs || exit 1
        rm -rf "$chroot$inside"
        mkdir -p "$chroot$inside"
        copy_checkout "$root" "$chroot$inside/synroute" || exit 1
        if [ -n "$bench_dir" ] && [ -d "$bench_dir" ]; then
            shared=$(cd "$bench_dir/.." && pwd)
            cp -a "$shared" "$chroot$inside/shared"
        fi
    ) 2>&1 | tee -a "$log" | label "$suite"
    if [ "${PIPESTATUS[0]}" != 0 ]; then
        echo "FAIL $suite/setup: cannot prepare the $suite chroot (see above)" | tee -a "$log" | label "$suite"
        count_log "$suite" "$log" 0 0 $((SECONDS - t0)); return
    fi
    . tests/platform/chroot.bash
    local bench_in=$inside/shared/${bench_dir##*/}
    # logs stay in the chroot until the next run: $chroot$inside/tmp
    local script="cd $inside/synroute && mkdir -p build $inside/tmp && export TMPDIR=$inside/tmp SYNROUTE_LEG=$suite
$(platform_info)
if ! make all >build/leg-make.log 2>&1; then
    echo \"FAIL $suite/make: make all failed: \$(grep -m3 -E 'error|Error' build/leg-make.log)\"; tail -20 build/leg-make.log; exit 1
fi"
    if [ "$mode" = test ]; then
        script="$script
exec bash tests/run.sh"
        chroot_run "$chroot" lo bash -c "$script" 2>&1 | tee -a "$log" | label "$suite"
        # the package the package suite built in the chroot, into a clean chroot
        deb_install "$suite" "$suite" "$chroot$inside/synroute" "$log"
        count_log "$suite" "$log" "$deb_ok" "$deb_fail" $((SECONDS - t0))
    else
        script="$script
BENCH_DIR=$bench_in exec bash tests/bench/bench.sh"
        chroot_run "$chroot" lo bash -c "$script" 2>&1 | tee -a "$log" | label "$suite"
    fi
}

trap 'echo; echo "legs: interrupted"; exit 130' INT TERM
for leg in $legs; do
    case $leg in
        host) leg_host ;;
        "$suite") leg_trixie ;;
        *) echo "legs: unknown leg '$leg' (host, $suite)" >&2; exit 2 ;;
    esac
done
[ "$mode" = test ] || exit 0
echo
# the failures again, next to the totals: a CI log is often read from its end
for leg in $legs; do
    [ -f "$logs/$leg-test.log" ] && grep '^FAIL' "$logs/$leg-test.log" | cut -c1-300 | head -20 | sed "s/^/==== $leg /"
done
for s in "${summary[@]}"; do echo "==== $s"; done
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
