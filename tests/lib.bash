# tests/lib.bash - the shell test harness shared by tests/e2e, tests/version
# and tests/traffic (sourced, not run). Set T (the name prefix) first.
#
#   root, SYNROUTE_ROOT, LUA_PATH/LUA_CPATH   the repository, for bin/synroute and lua5.4
#   tmp                   a scratch directory, removed on exit
#   pids                  processes to stop on exit (append "$!")
#   ok / fail / check     print "ok $T/<name>" or "FAIL $T/<name>: why"; $fails counts
#   stop_pid PID          TERM, wait (bounded), KILL
#   stop_all              stop every pid in $pids and forget them
#   syn ARGS / standin ARGS / json_field NAME   bin/synroute, tests/standin, a JSON string field
set -u
root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 2
export SYNROUTE_ROOT=$root
export LUA_PATH="$root/lua/?.lua;;"
export LUA_CPATH="$root/build/5.4/?.so;;"
unset SYNROUTE_CONFIG
T=${T:-test}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/synroute-${T//\//-}.XXXXXX")
# the checked-in examples and fixtures put their runtime API socket here
export SYNROUTE_RUN_DIR=$tmp
pids=()
fails=0
ok() { echo "ok $T/$1"; }
fail() { echo "FAIL $T/$1: $2"; fails=$((fails + 1)); }
check() { if [ -z "$2" ]; then ok "$1"; else fail "$1" "$2"; fi; }

stop_pid() {
    local p=$1
    kill -TERM "$p" 2>/dev/null || return 0
    for _ in $(seq 30); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
}
stop_all() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do stop_pid "$p"; done
    pids=()
}
cleanup() { stop_all; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

syn() { timeout 20 "$root/bin/synroute" "$@"; }
standin() { timeout 20 lua5.4 "$root/tests/standin/standin.lua" "$@"; }
json_field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p"; }
