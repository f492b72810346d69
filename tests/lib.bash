# tests/lib.bash - the shell test harness of every test script (sourced, not
# run). Set T (the name prefix) first. The working directory is the repository.
#
#   root, SYNROUTE_ROOT, LUA_PATH/LUA_CPATH   the repository, for bin/synroute and lua5.4
#   tmp                   a scratch directory, removed on exit
#   pids                  processes to stop on exit (append "$!")
#   ok / fail / check     print "ok $T/<name>" or "FAIL $T/<name>: why"; $fails counts
#   skip NAME WHY         print "skip $T/<name>: why" (counts as neither)
#   stop_pid PID          TERM, wait (bounded), KILL
#   stop_all              stop every pid in $pids and forget them
#   atexit CMD...         run CMD on exit too (before the scratch directory goes)
#   need_pkg PKG...       install the Debian packages that are missing (said on stderr)
#   haproxy_lua           the Lua version the installed HAProxy embeds (5.3, 5.4; empty: none)
#   port_busy PORT        true if something listens on 127.0.0.1:PORT
#   syn ARGS / standin ARGS / json_field NAME   bin/synroute, examples/standin, a JSON string field
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
skip() { echo "skip $T/$1: $2"; }

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
exit_cmds=()
atexit() { exit_cmds+=("$(printf '%q ' "$@")"); }
cleanup() {
    local c
    stop_all
    for c in "${exit_cmds[@]}"; do eval "$c"; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

syn() { timeout 20 "$root/bin/synroute" "$@"; }
standin() { timeout 20 lua5.4 "$root/examples/standin/standin.lua" "$@"; }
json_field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p"; }

need_pkg() {
    local missing="" p sudo_=
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
    [ -z "$missing" ] && return 0
    [ "$(id -u)" = 0 ] || sudo_=sudo
    echo "$T: installing:$missing" >&2
    $sudo_ apt-get update -qq >&2 &&
        DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq $missing >&2
}
haproxy_lua() { haproxy -vv 2>/dev/null | sed -n 's/^Built with Lua version : Lua \([0-9]*\.[0-9]*\).*/\1/p'; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
