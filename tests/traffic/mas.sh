#!/usr/bin/env bash
# tests/traffic/mas.sh - MAS token resolution through real HAProxy
# with the GENERATED configuration (`synroute haproxy`, mas: {resolve: true}):
#   gen-action-line           the generated frontend calls lua.synroute_mas only with resolve on
#   off-rotation-moves        resolution off: alice's rotating mat_ tokens reach several sync workers
#   on-rotation-one-worker    resolution on: all of them reach one worker, alice's (her syt_ token's)
#   on-whoami-once-per-token  main is asked once per token, later requests come from the cache
#   on-query-token            the token as ?access_token= (percent-encoded): cached, same worker
#   revoked-token-falls-back  whoami 401: the key stays the token hash (the worker resolution off picks)
#   revoked-token-negative    ... and main is not asked again for it right away
#   main-down-falls-back      main stopped: a new token routes by its hash, still served
#   main-down-backoff         ... the next new token does not wait for main again
#   main-down-cached-user     ... a cached token still reaches alice's worker
#   no-token-in-log           HAProxy's output never contains a token
# Ports: 127.0.0.1:22900 (main stand-in), 22911-22914 (sync stand-ins),
# 22990 (synroute, resolution on), 22991 (synroute, resolution off).
set -u
T=traffic/mas
# shared set-up: paths, lock, tmp dir, ok/fail/check, stop_pid, cleanup trap
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"

# alice's access tokens, one per 5-minute refresh; a revoked one; a Synapse token of alice
A=(mat_aL1cEr0tAt1on0000000000000001_Xq7Lp2 mat_aL1cEr0tAt1on0000000000000002_Bz4Nk8
   mat_aL1cEr0tAt1on0000000000000003_Hc9Wd1 mat_aL1cEr0tAt1on0000000000000004_Tm3Fs6
   mat_aL1cEr0tAt1on0000000000000005_Qv5Ry0 mat_aL1cEr0tAt1on0000000000000006_Jg2Ue7
   mat_aL1cEr0tAt1on0000000000000007_Pw8Ka3 mat_aL1cEr0tAt1on0000000000000008_Yd6Mc9
   mat_aL1cEr0tAt1on0000000000000009_Fn3Gv5 mat_aL1cEr0tAt1on0000000000000010_Ls7Xb2
   mat_aL1cEr0tAt1on0000000000000011_Ce4Hq8 mat_aL1cEr0tAt1on0000000000000012_Wr1Tj6)
# (tokens 1-6 rotate while main is up; the others are new when main is down)
REVOKED=mat_r3v0k3dT0k3n000000000000000000_Zz9Zz9
SYT_ALICE=$(timeout 20 lua5.4 examples/standin/standin.lua token alice)

# --- the deployment: main + 4 synchrotrons
mkdir -p "$tmp/dep/workers"
cat > "$tmp/dep/homeserver.yaml" <<EOF
server_name: "example.org"
listeners:
  - port: 22900
    type: http
    x_forwarded: true
    bind_addresses: ['127.0.0.1']
    resources:
      - names: [client, federation]
macaroon_secret_key: "mas-test-not-a-secret"
EOF
for i in 1 2 3 4; do cat > "$tmp/dep/workers/synchrotron-$i.yaml" <<EOF
worker_app: synapse.app.generic_worker
worker_name: synchrotron-$i
worker_listeners:
  - type: http
    port: $((22910 + i))
    bind_addresses: ['127.0.0.1']
    x_forwarded: true
    resources:
      - names: [client]
EOF
done
dep_yaml() {   # listen resolve
    cat <<EOF
synapse:
  homeserver: homeserver.yaml
  workers: workers/*.yaml
synapse_version: "1.157"
listen: $1
hash_secret: "mas-traffic-secret"
runtime:
  socket: $tmp/admin-${1##*:}.sock
# two of these run at once: no local peers section (its port would be shared)
peers: false
timeouts:
  check_interval: 300ms
mas:
  resolve: $2
  cache_size: 1000
  timeout: 1s
EOF
}
dep_yaml 127.0.0.1:22990 true > "$tmp/dep/on.yaml"
dep_yaml 127.0.0.1:22991 false > "$tmp/dep/off.yaml"
for n in on off; do
    timeout 20 bin/synroute haproxy "$tmp/dep/$n.yaml" -o "$tmp/$n.cfg" 2>"$tmp/$n.gen.err" || {
        echo "FAIL $T/setup: synroute haproxy $n: $(head -3 "$tmp/$n.gen.err" | tr '\n' ' ')"; exit 1; }
done
why=""
grep -q '^ *http-request lua.synroute_mas if ' "$tmp/on.cfg" || why="no lua.synroute_mas line with resolve: true"
grep -q 'synroute_mas' "$tmp/off.cfg" && why="$why; lua.synroute_mas in the config with resolve: false"
check gen-action-line "$why"

# --- stand-ins: main answers whoami for alice's tokens (401 otherwise) and
# logs each request; the synchrotrons answer with their name.
alice_acl=""
for t in "${A[@]}"; do alice_acl="$alice_acl \"Bearer $t\""; done
{
    cat <<EOF
global
    nbthread 1
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend main
    bind 127.0.0.1:22900
    log stdout format raw local0 info
    log-format "req %HU %ST"
    acl whoami path /_matrix/client/v3/account/whoami
    acl alice req.hdr(authorization) -m str $alice_acl
    http-request return status 200 content-type text/plain string ok if { path /health }
    http-request return status 200 content-type application/json string '{"user_id":"@alice:example.org","device_id":"DEVA","is_guest":false}' if whoami alice
    http-request return status 401 content-type application/json string '{"errcode":"M_UNKNOWN_TOKEN","error":"Invalid access token passed."}' if whoami
    http-request return status 200 content-type application/json hdr X-Worker main string '{"worker":"main"}'
EOF
} > "$tmp/main.cfg"
{
    printf 'global\n    nbthread 1\ndefaults\n    mode http\n    timeout connect 2s\n    timeout client 5s\n    timeout server 5s\n'
    for i in 1 2 3 4; do
        printf 'frontend synchrotron_%s\n    bind 127.0.0.1:%s\n' "$i" $((22910 + i))
        printf '    http-request return status 200 content-type application/json hdr X-Worker synchrotron-%s string {}\n' "$i"
    done
} > "$tmp/sync.cfg"
haproxy -db -f "$tmp/main.cfg" > "$tmp/main.log" 2>&1 & main_pid=$!; pids+=($main_pid)
haproxy -db -f "$tmp/sync.cfg" > "$tmp/sync.log" 2>&1 & pids+=($!)
for n in on off; do
    haproxy -db -f "$tmp/$n.cfg" > "$tmp/$n.log" 2>&1 & pids+=($!)
done
up=0
for _ in $(seq 50); do
    if curl -fs -o /dev/null http://127.0.0.1:22900/health && curl -fs -o /dev/null http://127.0.0.1:22914/ &&
       curl -s -o /dev/null http://127.0.0.1:22990/_matrix/client/versions &&
       curl -s -o /dev/null http://127.0.0.1:22991/_matrix/client/versions; then up=1; break; fi
    sleep 0.1
done
if [ $up = 0 ]; then
    echo "FAIL $T/setup: processes did not start: $(cat "$tmp"/*.log | grep -m3 ALERT | tr '\n' ' ')"; exit 1
fi
sleep 0.7   # first health checks (check_interval 300ms)

S=/_matrix/client/v3/sync
sync_worker() {   # port token [extra query]
    curl -s -o /dev/null -m 10 -w '%header{x-worker}' -H "Authorization: Bearer $2" \
        "http://127.0.0.1:$1$S?since=s1&timeout=0${3:-}"
}
whoamis() { grep -c '^req /_matrix/client/v3/account/whoami ' "$tmp/main.log"; }

# --- resolution off: the key is the token hash, so rotation moves alice
: > "$tmp/off.w"
for t in "${A[@]}"; do sync_worker 22991 "$t" >> "$tmp/off.w"; echo >> "$tmp/off.w"; done
n_off=$(sort -u "$tmp/off.w" | grep -c '^synchrotron-')
why=""
[ "$(grep -c '^synchrotron-' "$tmp/off.w")" -eq ${#A[@]} ] || why="not every answer from a sync worker: $(tr '\n' ' ' < "$tmp/off.w")"
[ -z "$why" ] && [ "$n_off" -lt 2 ] && why="all ${#A[@]} tokens on one worker even without resolution (pick other tokens)"
check off-rotation-moves "$why"

# --- resolution on: tokens 1-6 as they rotate, each used 3 times
alice_w=$(sync_worker 22990 "$SYT_ALICE")
: > "$tmp/on.w"
for t in "${A[@]:0:6}"; do
    for _ in 1 2 3; do sync_worker 22990 "$t" >> "$tmp/on.w"; echo >> "$tmp/on.w"; done
done
why=""
case $alice_w in synchrotron-*) ;; *) why="alice's syt_ token answered by '$alice_w'" ;; esac
[ -z "$why" ] && [ "$(grep -c "^$alice_w\$" "$tmp/on.w")" -ne 18 ] &&
    why="alice ($alice_w) answered by: $(sort "$tmp/on.w" | uniq -c | tr -s ' \n' ' ')"
check on-rotation-one-worker "$why"
w=$(whoamis)
check on-whoami-once-per-token "$([ "$w" -eq 6 ] || echo "main saw $w whoami requests for 6 tokens")"

# a cached token whose own hash picks another worker than alice's
qi=""
for i in 0 1 2 3 4 5; do [ "$(sed -n "$((i + 1))p" "$tmp/off.w")" != "$alice_w" ] && { qi=$i; break; }; done
q=${A[${qi:-0}]//_/%5F}   # every '_' percent-encoded, "mat_" included
got=$(curl -s -o /dev/null -m 10 -w '%header{x-worker}' "http://127.0.0.1:22990$S?since=s2&timeout=0&access_token=$q")
why=""
[ "$got" = "$alice_w" ] || why="query token answered by '$got', alice is on $alice_w"
[ -n "$qi" ] || why="$why; (not meaningful: every rotating token's hash also picks $alice_w)"
[ "$(whoamis)" -eq 6 ] || why="$why; main asked again ($(whoamis) whoami requests)"
check on-query-token "$why"

# --- a revoked token: whoami 401 -> the token hash, as without resolution
want=$(sync_worker 22991 "$REVOKED")
got=$(sync_worker 22990 "$REVOKED")
why=""
case $got in synchrotron-*) ;; *) why="answered by '$got'" ;; esac
[ -z "$why" ] && [ "$got" != "$want" ] && why="went to $got, the token hash picks $want"
[ "$(whoamis)" -eq 7 ] || why="$why; $(whoamis) whoami requests, want 7"
check revoked-token-falls-back "$why"
got=$(sync_worker 22990 "$REVOKED")
why=""
[ "$got" = "$want" ] || why="second request went to '$got', want $want"
[ "$(whoamis)" -eq 7 ] || why="$why; main asked again ($(whoamis) whoami requests)"
check revoked-token-negative "$why"

# --- main down: new tokens fall back to their hash, cached users stay
# A new token whose hash picks another worker than alice's shows the fallback
# (where a hash lands depends on HAProxy's hash ring, which differs between
# 2.6 and 3.0); the next new token shows the backoff.
down="" next=""
for i in $(seq 6 $((${#A[@]} - 1))); do
    w=$(sed -n "$((i + 1))p" "$tmp/off.w")
    if [ -z "$down" ] && [ "$w" != "$alice_w" ]; then down=$i
    elif [ -z "$next" ]; then next=$i; fi
done
stop_pid "$main_pid"
if [ -z "$down" ] || [ -z "$next" ]; then
    fail main-down-falls-back "every new token's hash picks alice's worker $alice_w (add tokens to A)"
else
    t0=$(date +%s%N)
    got=$(sync_worker 22990 "${A[$down]}")
    t1=$(date +%s%N)
    want=$(sed -n "$((down + 1))p" "$tmp/off.w")
    why=""
    [ "$got" = "$want" ] || why="answered by '$got', the token hash picks $want"
    ms=$(( (t1 - t0) / 1000000 ))
    [ "$ms" -lt 6000 ] || why="$why; took $ms ms"
    check main-down-falls-back "$why"
    t0=$(date +%s%N)
    got=$(sync_worker 22990 "${A[$next]}")
    t1=$(date +%s%N)
    ms=$(( (t1 - t0) / 1000000 ))
    want=$(sed -n "$((next + 1))p" "$tmp/off.w")
    why=""
    [ "$got" = "$want" ] || why="answered by '$got', the token hash picks $want"
    [ "$ms" -lt 500 ] || why="$why; took $ms ms (no backoff?)"
    check main-down-backoff "$why"
fi
got=$(sync_worker 22990 "${A[0]}")
check main-down-cached-user "$([ "$got" = "$alice_w" ] || echo "answered by '$got', alice is on $alice_w")"

# --- logs
sleep 0.2
why=""
grep -q 'MAS token not resolved' "$tmp/on.log" || why="no warning logged for the failures"
grep -l 'mat_[A-Za-z0-9]' "$tmp/on.log" "$tmp/off.log" >/dev/null 2>&1 &&
    why="$why; a token in: $(grep -l 'mat_[A-Za-z0-9]' "$tmp/on.log" "$tmp/off.log" | tr '\n' ' ')"
grep -q "$SYT_ALICE" "$tmp/on.log" && why="$why; the syt_ token in on.log"
check no-token-in-log "$why"

echo "$T: $fails failed" >&2
[ "$fails" -eq 0 ]
