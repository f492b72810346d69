#!/usr/bin/env bash
# examples/demo.sh - bring up examples/full on loopback and show the routing.
#
#   make demo                 (builds first; installs the Debian packages it needs)
#   DEMO_ONESHOT=1 bash examples/demo.sh    run the requests, then stop everything
#
# Starts ONE HAProxy standing in for all Synapse processes of examples/full
# (examples/standin: every listener answers 200 with `X-Worker: <name>`), then
# HAProxy + synroute with the checked-in examples/full/haproxy.cfg on
# 127.0.0.1:24082, sends a few requests and prints which worker answered.
# Ctrl-C stops both HAProxies (by PID) and removes the scratch directory.
set -u
shopt -s extglob

root=${SYNROUTE_ROOT:-$(cd -- "$(dirname -- "$0")/.." && pwd)}
export SYNROUTE_ROOT=$root
ex=$root/examples/full
port=24082
base=http://127.0.0.1:$port
export LUA_PATH="$root/lua/?.lua;;"
export LUA_CPATH="$root/build/5.4/?.so;;"

die() { echo "demo: $*" >&2; exit 1; }
command -v haproxy >/dev/null || die "haproxy is not installed (run: make demo)"
command -v curl >/dev/null || die "curl is not installed (run: make demo)"
# the CLI runs lua5.4; HAProxy loads the module for the Lua it embeds
hlua=$(haproxy -vv 2>/dev/null | sed -n 's/^Built with Lua version : Lua \([0-9]*\.[0-9]*\).*/\1/p')
[ -n "$hlua" ] || die "this haproxy is not built with Lua"
for v in 5.4 "$hlua"; do
    [ -f "$root/build/$v/synroute.so" ] || die "$root/build/$v/synroute.so is missing (run: make)"
done

synroute() { "$root/bin/synroute" "$@"; }
standin() { lua5.4 "$root/examples/standin/standin.lua" "$@"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/synroute-demo.XXXXXX")
export SYNROUTE_RUN_DIR=$tmp   # examples/full's runtime API socket: synroute status --config examples/full/synroute.yaml
pids=()
cleanup() {
    trap - EXIT INT TERM
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        alive=0
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.5
    done
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo; echo "demo: stopping"; exit 0' INT TERM

# ports must be free
busy=$(ss -Hltn 2>/dev/null | awk '{print $4}' | grep -E ':(240[0-9][0-9])$' | head -3)
[ -z "$busy" ] || die "ports already in use: $busy (another demo or test running?)"

echo "== synroute check examples/full/synroute.yaml"
synroute check --quiet "$ex/synroute.yaml" || die "check failed"
echo "ok"

echo "== regenerate examples/full/haproxy.cfg and compare with the checked-in file"
(cd "$root" && synroute haproxy --portable examples/full/synroute.yaml -o "$tmp/haproxy.cfg") 2>/dev/null \
    || die "haproxy generation failed"
if cmp -s "$tmp/haproxy.cfg" "$ex/haproxy.cfg"; then echo "identical"; else echo "DIFFERS (using the checked-in file anyway)"; fi

echo "== starting stand-in Synapse processes (main + $(standin servers "$ex/synroute.yaml" | cut -f2 | sort -u | wc -l) processes)"
standin config "$ex/synroute.yaml" > "$tmp/standin.cfg" || die "stand-in config failed"
# a port may briefly be the local end of an outgoing connection (it is inside
# the kernel's ephemeral range): retry the bind a few times
for attempt in 1 2 3 4 5; do
    haproxy -db -f "$tmp/standin.cfg" > "$tmp/standin.log" 2>&1 &
    spid=$!
    for _ in $(seq 30); do curl -fs -o /dev/null http://127.0.0.1:24020/health && break; kill -0 $spid 2>/dev/null || break; sleep 0.1; done
    kill -0 $spid 2>/dev/null && break
    sleep 1
done
pids+=($spid)
curl -fs -o /dev/null http://127.0.0.1:24020/health || die "stand-ins did not start: $(tail -3 "$tmp/standin.log")"

echo "== starting HAProxy + synroute on $base"
haproxy -db -f "$ex/haproxy.cfg" > "$tmp/haproxy.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do curl -s -o /dev/null "$base/health" && break; sleep 0.1; done
curl -s -o /dev/null "$base/health" || die "HAProxy did not start: $(tail -5 "$tmp/haproxy.log")"
grep -m1 'synroute 0' "$tmp/haproxy.log" | sed 's/^\[[^]]*\] [^:]*: /   /'

alice=$(standin token alice); dave=$(standin token dave); carol=$(standin token carol)

# show DESCRIPTION METHOD PATH [curl args...]
show() {
    local desc=$1 method=$2 path=$3; shift 3
    local out
    out=$(curl -s -o "$tmp/body" -w '%{http_code} %header{x-worker}' -X "$method" --path-as-is "$@" "$base$path")
    local code=${out%% *} worker=${out#* }
    if [ -z "$worker" ]; then worker="(no worker) $(head -c 90 "$tmp/body")"; fi
    printf '  %-34s %-6s %-62s -> %s %s\n' "$desc" "$method" "${path//syt_*([^&])/<token>}" "$code" "$worker"
}

echo
echo "== requests (curl -X METHOD $base/PATH ...; the answer's X-Worker header)"
show "sync, alice"                 GET "/_matrix/client/v3/sync?since=s72_1&timeout=30000" -H "Authorization: Bearer $alice"
show "sync, alice again (sticky)"  GET "/_matrix/client/v3/sync?since=s72_2&timeout=30000" -H "Authorization: Bearer $alice"
show "sync, dave"                  GET "/_matrix/client/v3/sync?since=s9_1" -H "Authorization: Bearer $dave"
show "sync, dave again (sticky)"   GET "/_matrix/client/v3/sync?since=s9_2" -H "Authorization: Bearer $dave"
show "sync, carol (query token)"   GET "/_matrix/client/v3/sync?since=s9_1&access_token=$carol"
show "initial sync (no since)"     GET "/_matrix/client/v3/sync" -H "Authorization: Bearer $alice"
show "send event, room A (alice)"  PUT "/_matrix/client/v3/rooms/!roomA:example.org/send/m.room.message/t1" -H "Authorization: Bearer $alice"
show "send event, room A (dave)"   PUT "/_matrix/client/v3/rooms/%21roomA%3Aexample.org/send/m.room.message/t2" -H "Authorization: Bearer $dave"
show "send event, room D"          PUT "/_matrix/client/v3/rooms/!roomD:example.org/send/m.room.message/t3" -H "Authorization: Bearer $alice"
show "/messages, room A"           GET "/_matrix/client/v3/rooms/!roomA:example.org/messages?dir=b" -H "Authorization: Bearer $alice"
show "/messages, room D"           GET "/_matrix/client/v3/rooms/!roomD:example.org/messages?dir=b" -H "Authorization: Bearer $alice"
show "federation send, a.example"  PUT "/_matrix/federation/v1/send/1700000000001" -H 'Authorization: X-Matrix origin="a.example",destination="example.org",key="ed25519:a1",sig="c2ln"'
show "federation send, b.example"  PUT "/_matrix/federation/v1/send/1700000000002" -H 'Authorization: X-Matrix origin="b.example",destination="example.org",key="ed25519:a1",sig="c2ln"'
show "federation read"             GET "/_matrix/federation/v1/event/\$ev1"
show "writer: typing"              PUT "/_matrix/client/v3/rooms/!roomA:example.org/typing/@alice:example.org" -H "Authorization: Bearer $alice"
show "writer: receipts"            POST "/_matrix/client/v3/rooms/!roomA:example.org/receipt/m.read/\$ev1" -H "Authorization: Bearer $alice"
show "writer: to_device"           PUT "/_matrix/client/v3/sendToDevice/m.room.encrypted/t4" -H "Authorization: Bearer $alice"
show "keys/query (encryption)"     POST "/_matrix/client/v3/keys/query" -H "Authorization: Bearer $alice"
show "login"                       POST "/_matrix/client/v3/login"
show "SSO redirect"                GET "/_matrix/client/v3/login/sso/redirect?redirectUrl=https://app.example"
show "media download"              GET "/_matrix/client/v1/media/download/example.org/abcdef" -H "Authorization: Bearer $alice"
show "replication (blocked)"       POST "/_synapse/replication/send_event/x"
show "replication, sneaky path"    POST "//_synapse/./replication/send_event/x"
show "admin API from loopback"     GET "/_synapse/admin/v1/server_version"

echo
echo "== synroute explain (the same decision, offline)"
echo "   synroute explain --config examples/full/synroute.yaml GET '/_matrix/client/v3/sync?since=s72_1' -H 'Authorization: Bearer <alice>'"
synroute explain --config "$ex/synroute.yaml" GET '/_matrix/client/v3/sync?since=s72_1' -H "Authorization: Bearer $alice" | sed 's/^/   /'

echo
echo "== access log (no query strings, no tokens)"
grep -E ' class=' "$tmp/haproxy.log" | tail -4 | sed 's/^/   /'

if [ "${DEMO_ONESHOT:-0}" = 1 ]; then
    echo
    echo "demo: done (DEMO_ONESHOT=1)"
    exit 0
fi
echo
echo "Running. Try for yourself, e.g.:"
echo "  curl -si $base/_matrix/client/versions | grep -i x-worker"
echo "  curl -si -H 'Authorization: Bearer $alice' '$base/_matrix/client/v3/sync?since=s1' | grep -i x-worker"
echo "Ctrl-C stops everything."
while :; do
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || die "a process exited: $(tail -3 "$tmp/haproxy.log")"; done
    sleep 1
done
