#!/usr/bin/env bash
# tests/traffic/limits.sh - limits past which the answer is a Matrix 429
# (M_LIMIT_EXCEEDED, retry_after_ms, Retry-After), never a hung connection:
#   per-user-initial-sync      limits.per_user.initial_sync 3/10s: the 4th initial
#                              sync of one user (header or query token) gets 429
#   per-user-other-user        another user is not limited by it
#   per-user-other-class       the same user's incremental syncs are not limited
#   per-user-table-hashed      the counter table holds 16-hex keys only
#   pool-queue-full-429        limits.initial_sync {maxconn 1, queue 2}: with the slots
#                              held by slow (2.5 s) stand-ins and the queue full,
#                              further initial syncs get an immediate 429
#   pool-queue-timeout-429     a queued request that waits queue_timeout (1 s)
#                              gets 429 (not HAProxy's 503)
#   pool-some-served           the requests that got a slot were served (200)
#   pool-other-pools-unaffected  syncs are served while initial_sync is full
T=traffic/limits
source "$(dirname "$0")/lib.bash"
make_dep 2 'limits:
  initial_sync: { maxconn: 1, queue: 2, queue_timeout: 1s }
  per_user:
    initial_sync: 3/10s'
gen_cfg a
start_standins
start_haproxy a
S=/_matrix/client/v3/sync
mapfile -t tk < <(standin token carol dave u1 u2 u3 u4 u5 u6)
carol=${tk[0]} dave=${tk[1]}

is429() {   # file with "code|retry-after" then body file -> why
    local res body
    res=$(cat "$1"); body=$(cat "$2")
    [ "${res%%|*}" = 429 ] || { echo "status ${res%%|*}"; return; }
    [ -n "${res#*|}" ] || echo "no Retry-After"
    grep -q '"errcode":"M_LIMIT_EXCEEDED"' <<<"$body" && grep -q '"retry_after_ms":[0-9]' <<<"$body" || echo "body $body"
}
req() {   # out-prefix curl-args...
    local o=$1; shift
    curl -s -m 15 -o "$o.body" -w '%{http_code}|%header{retry-after}|%{time_total}' "$@" > "$o.res"
}

# per user: 3 initial syncs per 10 s
codes=""
req "$tmp/c1" -H "Authorization: Bearer $carol" "$base$S"; codes="$codes $(cut -d'|' -f1 "$tmp/c1.res")"
req "$tmp/c2" "$base$S?access_token=$carol"; codes="$codes $(cut -d'|' -f1 "$tmp/c2.res")"
req "$tmp/c3" -H "Authorization: Bearer $carol" "$base$S?full_state=false"; codes="$codes $(cut -d'|' -f1 "$tmp/c3.res")"
req "$tmp/c4" "$base$S?access_token=$carol"
cut -d'|' -f1,2 "$tmp/c4.res" > "$tmp/c4.rc"
why=$(is429 "$tmp/c4.rc" "$tmp/c4.body")
[ "$codes" = " 200 200 200" ] || why="first three got$codes; ${why}"
[ -z "$why" ] && { grep -q '^429|10|' "$tmp/c4.res" && grep -q '"retry_after_ms":10000' "$tmp/c4.body" || why="Retry-After/retry_after_ms not 10 s: $(cat "$tmp/c4.res") $(cat "$tmp/c4.body")"; }
check per-user-initial-sync "$why"
req "$tmp/d1" -H "Authorization: Bearer $dave" "$base$S"
check per-user-other-user "$(grep -q '^200|' "$tmp/d1.res" || echo "dave got $(cat "$tmp/d1.res")")"
req "$tmp/c5" -H "Authorization: Bearer $carol" "$base$S?since=s1"
check per-user-other-class "$(grep -q '^200|' "$tmp/c5.res" || echo "carol's sync got $(cat "$tmp/c5.res")")"
tbl=$(sock a "show table synroute_rate_initial_sync")
n=$(grep -c 'key=' <<<"$tbl"); bad=$(grep 'key=' <<<"$tbl" | grep -vcE 'key=[0-9a-f]{16} ')
check per-user-table-hashed "$( { [ "$n" -eq 2 ] && [ "$bad" -eq 0 ] && ! grep -q syt_ <<<"$tbl"; } || echo "$n keys, $bad malformed")"

# pool limit: slow initial-synchrotrons hold the slots
stop_standin initial-synchrotron-1; stop_standin initial-synchrotron-2
SLOW_MS=2500 start_standin initial-synchrotron-1; SLOW_MS=2500 start_standin initial-synchrotron-2
for _ in $(seq 30); do curl -fs -o /dev/null http://127.0.0.1:22121/health && curl -fs -o /dev/null http://127.0.0.1:22122/health && break; sleep 0.1; done
wait_state a initial_sync initial-synchrotron-1 UP; wait_state a initial_sync initial-synchrotron-2 UP
bg=()
for i in 1 2 3 4 5 6; do
    req "$tmp/p$i" -H "Authorization: Bearer ${tk[$((i + 1))]}" "$base$S" &
    bg+=($!)
    sleep 0.1
done
req "$tmp/s1" -H "Authorization: Bearer $dave" "$base$S?since=s2"
s1=$(cut -d'|' -f1,3 "$tmp/s1.res")
for p in "${bg[@]}"; do wait "$p"; done
n200=0 fast=0 slow=0 other=""
for i in 1 2 3 4 5 6; do
    IFS='|' read -r code ra t < "$tmp/p$i.res"
    cut -d'|' -f1,2 "$tmp/p$i.res" > "$tmp/p$i.rc"
    if [ "$code" = 200 ]; then n200=$((n200 + 1))
    elif [ -z "$(is429 "$tmp/p$i.rc" "$tmp/p$i.body")" ]; then
        if awk -v t="$t" 'BEGIN { exit !(t < 0.5) }'; then fast=$((fast + 1))
        elif awk -v t="$t" 'BEGIN { exit !(t >= 0.9 && t < 2.4) }'; then slow=$((slow + 1))
        else other="$other #$i:429 after ${t}s"; fi
    else other="$other #$i:$code $(head -c 60 "$tmp/p$i.body")"; fi
done
summary="200:$n200 fast-429:$fast queue-timeout-429:$slow${other:+ other:$other}"
check pool-queue-full-429 "$([ "$fast" -ge 1 ] && [ -z "$other" ] || echo "$summary")"
check pool-queue-timeout-429 "$([ "$slow" -ge 1 ] && [ -z "$other" ] || echo "$summary")"
check pool-some-served "$([ "$n200" -ge 1 ] && [ $((n200 + fast + slow)) -eq 6 ] || echo "$summary")"
check pool-other-pools-unaffected "$(awk -F'|' '$1 == 200 && $2 < 1 {ok=1} END {exit !ok}' <<<"$s1" || echo "sync got $s1")"
exit $(( fails > 0 ))
