#!/usr/bin/env bash
# tests/e2e/glue.sh - the HAProxy glue (lua/synroute/haproxy.lua), on the
# HAProxy installed here, whatever Lua it embeds:
#  * it registers nothing that runs Lua per request (the one exception, the
#    opt-in MAS action, is checked by tests/lua/test_mas.lua);
#  * `haproxy -c` accepts a config that loads it with lua-load-per-thread and
#    no lua-prepend-path (repository mode: the glue finds build/<its Lua>/);
#  * a fail SYNROUTE_CONFIG makes HAProxy refuse to start, with a message;
#  * a checkout without the module for HAProxy's Lua: refused, naming the file;
#  * installed mode: the layout `make install` writes (simulated under a
#    scratch prefix P: P/share/lua/<v>/synroute/*.lua with the data directory
#    written into paths.lua, P/lib/lua/<v>/synroute.so, P/share/synroute/):
#    the installed CLI generates a config without lua-prepend-path that loads
#    P/share/lua/<v>/synroute/haproxy.lua, and HAProxy accepts it;
#  * live: the converter's decision for real requests equals what
#    `synroute explain --no-config` prints for the same request (same class,
#    backend and hash), i.e. HAProxy builds the input string the way api.input does.
# Prints ok/FAIL lines. Needs haproxy (with Lua 5.3 or 5.4), lua5.4 and curl.
T=glue
. "$(dirname -- "$0")/../lib.bash"   # root, tmp, pids, ok/fail, haproxy_lua, port_busy

if ! command -v haproxy >/dev/null 2>&1; then
    fail haproxy-present "haproxy is not installed"; exit 1
fi
hlua=$(haproxy_lua)
if [ -z "$hlua" ]; then
    fail haproxy-lua "haproxy is not built with Lua"; exit 1
fi
if [ ! -f "$root/build/$hlua/synroute.so" ]; then
    fail module-built "build/$hlua/synroute.so is missing (HAProxy here embeds Lua $hlua)"; exit 1
fi

# the glue registers the converter, an action only for mas.resolve, and the
# metrics service (used by the metrics frontend only, once per scrape:
# tests/traffic/metrics.sh)
if grep -nE 'register_(action|fetches|service|task|filter)' lua/synroute/haproxy.lua | grep -v '^[0-9]*: *--' |
        grep -v 'register_action("synroute_mas"' | grep -v 'register_service(metrics.SERVICE, "http"'; then
    fail no-per-request-lua "haproxy.lua registers per-request Lua"
else
    ok no-per-request-lua
fi

# a free port
port=
for p in 29471 29473 29477 29479 29483 29489 29491; do
    port_busy $p || { port=$p; break; }
done
[ -n "$port" ] || { fail port "29471-29491 are all busy"; exit 1; }

# One backend per possible name: each answers directly with what it got.
backends=""
for b in main blocked sync initial_sync federation federation_send client encryption login \
         event_send messages user_directory sso media typing to_device account_data receipts \
         presence push_rules device_lists thread_subscriptions admin generic appservice; do
    backends="$backends
backend $b
    http-request return status 200 content-type text/plain lf-string \"$b|%[var(txn.synroute),field(2,|)]|%[var(txn.synroute_key)]\\n\""
done

glue_cfg() {   # path of the glue -> a config with the converter rules only
    cat <<CFG
global
    lua-load-per-thread $1
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
    http-request set-var(txn.synroute_key)     var(txn.synroute),field(3,|) if !{ var(txn.synroute) -m end | }
    use_backend %[var(txn.synroute),field(1,|)]
    default_backend main
$backends
CFG
}
glue_cfg "$root/lua/synroute/haproxy.lua" >"$tmp/h.cfg"
quiet() { [ "$1" = 0 ] && ! grep -qE 'WARNING|ALERT' <<<"$2"; }

# 1. haproxy -c with no deployment
if [ -f /etc/synroute/synroute.yaml ]; then
    skip check-valid "/etc/synroute/synroute.yaml exists"
else
    out=$(env -u SYNROUTE_CONFIG haproxy -c -f "$tmp/h.cfg" 2>&1); rc=$?
    if quiet $rc "$out"; then ok check-valid; else fail check-valid "rc=$rc: $out"; fi
fi

# 2. a missing / broken deployment makes HAProxy refuse to start
out=$(SYNROUTE_CONFIG=/nonexistent/synroute.yaml haproxy -c -f "$tmp/h.cfg" 2>&1); rc=$?
if [ $rc -ne 0 ] && printf '%s' "$out" | grep -q 'synroute: cannot load /nonexistent/synroute.yaml'; then
    ok check-bad-config-refused
else
    fail check-bad-config-refused "rc=$rc: $out"
fi
printf 'this: [is not valid yaml\n' >"$tmp/broken.yaml"
out=$(SYNROUTE_CONFIG="$tmp/broken.yaml" haproxy -c -f "$tmp/h.cfg" 2>&1); rc=$?
if [ $rc -ne 0 ] && printf '%s' "$out" | grep -q "synroute: cannot load $tmp/broken.yaml"; then
    ok check-broken-config-refused
else
    fail check-broken-config-refused "rc=$rc: $out"
fi
# a checkout whose module for this Lua was not built: the glue names the file
mkdir -p "$tmp/checkout/lua/synroute"
cp "$root"/lua/synroute/*.lua "$tmp/checkout/lua/synroute/"
glue_cfg "$tmp/checkout/lua/synroute/haproxy.lua" >"$tmp/nomod.cfg"
out=$(env -u SYNROUTE_CONFIG haproxy -c -f "$tmp/nomod.cfg" 2>&1); rc=$?
if [ $rc -ne 0 ] && grep -qF "synroute: $tmp/checkout/build/$hlua/synroute.so is missing: this HAProxy embeds Lua $hlua" <<<"$out"; then
    ok check-missing-module-refused
else
    fail check-missing-module-refused "rc=$rc: $out"
fi

# 2b. installed mode: the layout of `make install`, simulated under $P
P=$tmp/inst
for v in 5.4 "$hlua"; do
    mkdir -p "$P/share/lua/$v/synroute" "$P/lib/lua/$v"
    cp "$root"/lua/synroute/*.lua "$P/share/lua/$v/synroute/"
    sed -i "s|@SYNROUTE_DATADIR@|$P/share/synroute|" "$P/share/lua/$v/synroute/paths.lua"
    cp "$root/build/$v/synroute.so" "$P/lib/lua/$v/"
done
mkdir -p "$P/share/synroute/routes"
cp "$root/routes/routes.yaml" "$P/share/synroute/routes/"
cp -R "$root/haproxy" "$P/share/synroute/"
inst_syn() {   # the installed CLI: lua5.4, Lua's search paths pointing into $P only
    (cd "$tmp" && env -u SYNROUTE_ROOT LUA_PATH_5_4="$P/share/lua/5.4/?.lua;;" LUA_CPATH_5_4="$P/lib/lua/5.4/?.so;;" \
        timeout 20 lua5.4 "$P/share/lua/5.4/synroute/cli.lua" "$@")
}
dep=$root/tests/vtc/conf/basic/synroute.yaml
# --no-check: this simulated install is found by HAProxy's Lua only with
# LUA_CPATH set (below); a real install is in Lua's default paths
if inst_syn haproxy "$dep" -o "$tmp/inst.cfg" --no-check 2>"$tmp/inst.err"; then
    why=""
    grep -qF "lua-load-per-thread \"$P/share/lua/$hlua/synroute/haproxy.lua\"" "$tmp/inst.cfg" ||
        why="no lua-load-per-thread of the installed glue for Lua $hlua"
    grep -qF "errorfile 400 \"$P/share/synroute/haproxy/errors/400.http\"" "$tmp/inst.cfg" ||
        why="$why; the errorfiles are not in the data directory"
    grep -q 'lua-prepend-path' "$tmp/inst.cfg" && why="$why; lua-prepend-path in the output"
    grep -vF "$dep" "$tmp/inst.cfg" | grep -qF "$root/" && why="$why; it points into the checkout"
    grep -q "^# Target: HAProxy [0-9.]* with Lua $hlua (" "$tmp/inst.cfg" || why="$why; no target line for Lua $hlua"
    if [ -z "$why" ]; then ok installed-generate; else fail installed-generate "${why#; }"; fi
else
    fail installed-generate "$(head -3 "$tmp/inst.err" | tr '\n' ' ')"
fi
cpath_var=LUA_CPATH_${hlua/./_}
out=$(env -u SYNROUTE_CONFIG "$cpath_var=$P/lib/lua/$hlua/?.so;;" haproxy -c -f "$tmp/inst.cfg" 2>&1); rc=$?
if quiet $rc "$out"; then ok installed-haproxy-c
else fail installed-haproxy-c "rc=$rc: $(grep -m3 -E 'WARNING|ALERT' <<<"$out" | tr '\n' ' ')"; fi
out=$(env -u SYNROUTE_CONFIG "$cpath_var=$tmp/nowhere/?.so" haproxy -c -f "$tmp/inst.cfg" 2>&1); rc=$?
if [ $rc -ne 0 ] && grep -qF "synroute: the C module synroute.so for Lua $hlua is not installed" <<<"$out"; then
    ok installed-missing-module-refused
else
    fail installed-missing-module-refused "rc=$rc: $(head -c 300 <<<"$out")"
fi
# generating for another machine with the other Lua: that Lua's glue path
other=5.3; [ "$hlua" = 5.3 ] && other=5.4
if inst_syn haproxy "$dep" --haproxy-version 3.0 --lua-version "$other" 2>/dev/null |
        grep -qF "lua-load-per-thread \"$P/share/lua/$other/synroute/haproxy.lua\""; then
    ok installed-other-lua
else
    fail installed-other-lua "--lua-version $other does not load $P/share/lua/$other/synroute/haproxy.lua"
fi

# 3. live requests
if [ -f /etc/synroute/synroute.yaml ]; then
    skip live "/etc/synroute/synroute.yaml exists"
    exit $(( fails > 0 ))
fi
env -u SYNROUTE_CONFIG haproxy -db -f "$tmp/h.cfg" >"$tmp/h.log" 2>&1 &
hpid=$!
pids+=($hpid)
i=0
until curl -s -o /dev/null "http://127.0.0.1:$port/"; do
    i=$((i + 1))
    if [ $i -gt 50 ] || ! kill -0 $hpid 2>/dev/null; then
        fail live-start "haproxy did not start: $(cat "$tmp/h.log")"; exit 1
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
        fail "live-$n $m $t" "haproxy said '$got', explain said '$want'"
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
if [ "$got" = "main|sync|$wh" ] && [ $k = 1 ]; then ok "live-$n last-authorization"; else fail "live-$n last-authorization" "$got vs $want"; fi

# no raw token in HAProxy's output either
if grep -q "$ALICE\|$MAT" "$tmp/h.log"; then fail no-token-in-log "token in haproxy log"; else ok no-token-in-log; fi

exit $(( fails > 0 ))
