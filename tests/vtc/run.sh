#!/usr/bin/env bash
# tests/vtc/run.sh - run every VTest file in tests/vtc/ against the real HAProxy
# with the synroute Lua glue loaded.
#
#   bash tests/vtc/run.sh [file.vtc ...]
#
# Prints "ok vtc/<file>" or "FAIL vtc/<file>: <why>" per file ("skip vtc/<file>"
# when a `feature cmd` requirement of the file is not met), then the tail
# of each failing test's log. Exits non-zero if any file failed.
# Env: VTC_JOBS (parallel files, default 4), VTC_TIMEOUT (per test, default 30 s),
#      VTC_KEEP=1 keeps the logs directory.
set -u
cd "$(dirname "$0")/../.."
repo=$(pwd)

need_pkgs=""
command -v varnishtest >/dev/null 2>&1 || need_pkgs="$need_pkgs varnish"
command -v haproxy >/dev/null 2>&1 || need_pkgs="$need_pkgs haproxy"
if [ -n "$need_pkgs" ]; then
    echo "installing:$need_pkgs"
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need_pkgs >/dev/null
fi
for c in varnishtest haproxy; do
    command -v "$c" >/dev/null 2>&1 || { echo "FAIL vtc/setup: $c not installed"; exit 1; }
done
if ! haproxy -vv 2>/dev/null | grep -q 'Built with Lua version : Lua 5\.3'; then
    echo "FAIL vtc/setup: haproxy is not built with Lua 5.3"; exit 1
fi
if [ ! -f build/5.3/synroute.so ]; then
    make build/5.3/synroute.so >/dev/null 2>&1 || { echo "FAIL vtc/setup: make build/5.3/synroute.so failed"; exit 1; }
fi

if [ $# -gt 0 ]; then files=("$@"); else files=(tests/vtc/*.vtc); fi
[ -e "${files[0]}" ] || { echo "FAIL vtc/setup: no .vtc files"; exit 1; }

# The tests choose their deployment themselves (setenv in each config).
unset SYNROUTE_CONFIG

jobs=${VTC_JOBS:-4}
tmo=${VTC_TIMEOUT:-30}
logs=$(mktemp -d "${TMPDIR:-/tmp}/synroute-vtc.XXXXXX")
[ "${VTC_KEEP:-0}" = 1 ] || trap 'rm -rf "$logs"' EXIT

run_one() {   # file -> writes $logs/<name>.log and $logs/<name>.rc
    local f=$1 name rc
    name=$(basename "$f" .vtc)
    case $f in /*) ;; *) f="$repo/$f" ;; esac
    # The outer timeout is a backstop only: varnishtest enforces -t itself.
    timeout -k 5 $((tmo + 30)) varnishtest -b 16M -t "$tmo" "$f" >"$logs/$name.log" 2>&1
    rc=$?
    echo "$rc" >"$logs/$name.rc"
}

# Simple bounded parallelism: at most $jobs varnishtest processes at a time.
running=0
for f in "${files[@]}"; do
    run_one "$f" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n 2>/dev/null || true
        running=$((running - 1))
    fi
done
wait

failed=0
for f in "${files[@]}"; do
    name=$(basename "$f" .vtc)
    rc=$(cat "$logs/$name.rc" 2>/dev/null || echo 99)
    if [ "$rc" = 0 ]; then
        echo "ok vtc/$name"
    elif [ "$rc" = 77 ]; then
        # a `feature` line of the test is not met here: neither ok nor FAIL
        echo "skip vtc/$name: requirement not met: $(grep -h '^feature cmd' "$f" 2>/dev/null | head -1 | cut -c1-120)"
    else
        why="exit $rc"
        [ "$rc" = 124 ] && why="timed out"
        first=$(grep -m1 -E '^---- ' "$logs/$name.log" | sed 's/^[- ]*//' | cut -c1-200)
        echo "FAIL vtc/$name: $why${first:+: $first}"
        failed=$((failed + 1))
    fi
done
for f in "${files[@]}"; do
    name=$(basename "$f" .vtc)
    case $(cat "$logs/$name.rc" 2>/dev/null) in 0|77) continue ;; esac
    echo "---- log tail of vtc/$name"
    grep -E '^(----|\*\*\*\*|\*\*\*)' "$logs/$name.log" | tail -40 | sed 's/^/    /'
done
[ "$failed" -eq 0 ]
