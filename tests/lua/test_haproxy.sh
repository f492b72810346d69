#!/usr/bin/env bash
# tests/lua/test_haproxy.sh - the HAProxy glue (lua/synroute/haproxy.lua):
#  * `haproxy -c` accepts a config that loads it (no deployment);
#  * a bad SYNROUTE_CONFIG makes HAProxy refuse to start, with a message;
#  * live: the converter's decision for real requests equals what
#    `synroute explain --no-config` prints for the same request (same class,
#    backend and hash), i.e. HAProxy builds the input string the way api.input does.
# Prints ok/FAIL lines. Needs haproxy (2.6, Lua 5.3) and curl.
set -u
here=$(cd "$(dirname "$0")" && pwd -P)
root=$(cd "$here/../.." && pwd -P)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/synroute-glue.XXXXXX")
hpid=
cleanup() {
    [ -n "$hpid" ] && kill "$hpid" 2>/dev/null && wait "$hpid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
pass=0 fail=0
ok() { echo "ok lua/glue/$1"; pass=$((pass + 1)); }
bad() { echo "FAIL lua/glue/$1: $2"; fail=$((fail + 1)); }

if ! command -v haproxy >/dev/null 2>&1; then
    bad haproxy-present "haproxy is not installed"; exit 1
fi
if [ ! -f "$root/build/5.3/synroute.so" ]; then
    bad module-built "build/5.3/synroute.so is missing"; exit 1
fi

# a free port
port=
for p in 29471 29473 29477 29479 29483 29489; do
    if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then port=$p; break; fi
done 2>/dev/null
[ -n "$port" ] || port=29491

# One backend per possible name: each answers directly with what it got.
backends=""
for b in main blocked sync initial_sync federation federation_send client encryption login \
         event_send messages user_directory sso media typing to_device account_data receipts \
         presence push_rules device_lists thread_subscriptions admin generic appservice; do
    backends="$backends
backend $b
    http-request return status 200 content-type text/plain lf-string \"$b|%[var(txn.synroute_class)]|%[var(txn.synroute_key)]\\n\""
done

cat >"$tmp/h.cfg" <<EOF
global
    nbthread 1
    lua-prepend-path $root/lua/?.lua
    lua-prepend-path $root/build/5.3/?.so cpath
    lua-load $root/lua/synroute/haproxy.lua
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend f
    bind 127.0.0.1:$port
    http-request set-var-fmt(txn.synroute_in) "%[method] %[src] %[pathq] %[req.fhdr(authorization)]"
    http-request set-var(txn.synroute) var(txn.synroute_in),lua.synroute
    http-request unset-var(txn.synroute_in)
    http-request set-var(txn.synroute_backend) var(txn.synroute),field(1,|)
    http-request set-var(txn.synroute_class)   var(txn.synroute),field(2,|)
    http-request set-var(txn.synroute_key)     var(txn.synroute),field(3,|) if !{ var(txn.synroute) -m end | }
    use_backend %[var(txn.synroute_backend)] if { var(txn.synroute_backend) -m found }
    default_backend main
$backends
EOF

# 1. haproxy -c with no deployment
if [ -f /etc/synroute/synroute.yaml ]; then
    echo "skip lua/glue/check-valid: /etc/synroute/synroute.yaml exists (not counted)"
else
    out=$(env -u SYNROUTE_CONFIG haproxy -c -f "$tmp/h.cfg" 2>&1); rc=$?
    if [ $rc -eq 0 ]; then ok check-valid; else bad check-valid "rc=$rc: $out"; fi
fi

# 2. a missing / broken deployment makes HAProxy refuse to start
out=$(SYNROUTE_CONFIG=/nonexistent/synroute.yaml haproxy -c -f "$tmp/h.cfg" 2>&1); rc=$?
if [ $rc -ne 0 ] && printf '%s' "$out" | grep -q 'synroute: cannot load /nonexistent/synroute.yaml'; then
    ok check-bad-config-refused
else
    bad check-bad-config-refused "rc=$rc: $out"
fi
printf 'this: [is not valid yaml\n' >"$tmp/broken.yaml"
out=$(SYNROUTE_CONFIG="$tmp/broken.yaml" haproxy -c -f "$tmp/h.cfg" 2>&1); rc=$?
if [ $rc -ne 0 ] && printf '%s' "$out" | grep -q "synroute: cannot load $tmp/broken.yaml"; then
    ok check-broken-config-refused
else
    bad check-broken-config-refused "rc=$rc: $out"
fi
# and a glue that cannot find its module says so
sed "s#$root/build/5.3/?.so#$tmp/nowhere/?.so#" "$tmp/h.cfg" >"$tmp/nomod.cfg"
out=$(env -u SYNROUTE_CONFIG haproxy -c -f "$tmp/nomod.cfg" 2>&1); rc=$?
if [ $rc -ne 0 ] && printf '%s' "$out" | grep -q "module 'synroute' not found"; then
    ok check-missing-module-refused
else
    bad check-missing-module-refused "rc=$rc: $out"
fi

# 3. live requests
if [ -f /etc/synroute/synroute.yaml ]; then
    echo "skip lua/glue/live: /etc/synroute/synroute.yaml exists (not counted)"
    echo; echo "glue: $pass passed, $fail failed" >&2; [ $fail -eq 0 ]; exit
fi
env -u SYNROUTE_CONFIG haproxy -db -f "$tmp/h.cfg" >"$tmp/h.log" 2>&1 &
hpid=$!
i=0
until curl -s -o /dev/null "http://127.0.0.1:$port/"; do
    i=$((i + 1))
    if [ $i -gt 50 ] || ! kill -0 $hpid 2>/dev/null; then
        bad live-start "haproxy did not start: $(cat "$tmp/h.log")"; exit 1
    fi
    sleep 0.1
done
ok live-start

ALICE=syt_YWxpY2U_ujzPdeIgxLdGncfBAepf_45EzU1
THORN=syt_YcO+_ujzPdeIgxLdGncfBAepf_4EsSy2
MAT=mat_gaKjIg8xNbe3nNyjOq9wMxEhh2FDEE_3kV79T
XM='X-Matrix origin="remote.example",key="ed25519:a1",sig="c2ln"'
n=0
# live METHOD TARGET [AUTH_VALUE]  (AUTH_VALUE sent as-is, may have spaces around)
live() {
    n=$((n + 1))
    m=$1 t=$2
    if [ $# -ge 3 ]; then
        got=$(curl -s -X "$m" -H "Authorization: $3" "http://127.0.0.1:$port$t")
        want=$("$root/bin/synroute" explain --no-config "$m" "$t" -H "Authorization: $3" 2>&1)
    else
        got=$(curl -s -X "$m" "http://127.0.0.1:$port$t")
        want=$("$root/bin/synroute" explain --no-config "$m" "$t" 2>&1)
    fi
    wb=$(printf '%s' "$want" | sed -n 's/.*"backend":"\([^"]*\)".*/\1/p')
    wc=$(printf '%s' "$want" | sed -n 's/.*"class":"\([^"]*\)".*/\1/p')
    wh=$(printf '%s' "$want" | sed -n 's/.*"hash":"\([^"]*\)".*/\1/p')
    if [ "$got" = "$wb|$wc|$wh" ]; then
        ok "live-$n $m $t"
    else
        bad "live-$n $m $t" "haproxy said '$got', explain said '$want'"
    fi
}
live GET "/_matrix/client/v3/sync?since=s1" "Bearer $ALICE"
live GET "/_matrix/client/v3/sync" "Bearer $ALICE"
live GET "/_matrix/client/v3/sync?since=s1&access_token=$(printf '%s' "$THORN" | sed 's/+/%2B/')"
live GET "/_matrix/client/v3/sync?since=s1" "Bearer $THORN"
live GET "/_matrix/client/v3/sync?since=s1" "Bearer $MAT"
live GET "/_matrix/client/v3/sync?since=s1" "  Bearer $ALICE  "
live PUT "/_matrix/federation/v1/send/t1" "$XM"
live PUT "/_matrix/federation/v1/send/t1"
live PUT "/_matrix/client/v3/rooms/%21abc%3Aexample.org/send/m.room.message/t1" "Bearer $ALICE"
live GET "/_matrix/client/v3/profile/%40alice%3Ahs.example/displayname"
live POST "/_synapse/replication/send_event/x"
live POST "/_synapse/mas/sync_device"
live GET "/elsewhere?x=1"

# two Authorization headers: HAProxy's req.fhdr takes the last one
n=$((n + 1))
got=$(curl -s -H "Authorization: Bearer $MAT" -H "Authorization: Bearer $ALICE" "http://127.0.0.1:$port/_matrix/client/v3/sync?since=s1")
want=$("$root/bin/synroute" explain --no-config GET "/_matrix/client/v3/sync?since=s1" -H "Authorization: Bearer $MAT" -H "Authorization: Bearer $ALICE")
wh=$(printf '%s' "$want" | sed -n 's/.*"hash":"\([^"]*\)".*/\1/p')
case $want in *'"key":"alice"'*) k=1 ;; *) k=0 ;; esac
if [ "$got" = "main|sync|$wh" ] && [ $k = 1 ]; then ok "live-$n last-authorization"; else bad "live-$n last-authorization" "$got vs $want"; fi

# no raw token in HAProxy's output either
if grep -q "$ALICE\|$MAT" "$tmp/h.log"; then bad no-token-in-log "token in haproxy log"; else ok no-token-in-log; fi

echo "glue: $pass passed, $fail failed" >&2
[ $fail -eq 0 ]
