#!/usr/bin/env bash
# tests/traffic/failover.sh - health checks and failover through real HAProxy:
#   health-check-path           a worker whose GET /health fails (other paths
#                               still 200) is taken out: checks use /health
#   worker-down-only-its-users-move  200 users on 4 sync workers; one worker stops:
#                               exactly its users move, everyone else stays
#   worker-back-users-return    when it is back, its users return to it
#   redispatch-stuck-dead       health checks off, the worker dead: its users are
#                               still served (option redispatch: another server
#                               on the last retry, about 2 s), none blackholed
#   generic-falls-back-to-main  every sync worker down: syncs are served by main
#   writer-never-falls-back     the typing writer down: Matrix JSON 503, not main
T=traffic/failover
source "$(dirname "$0")/lib.bash"
make_dep 4
gen_cfg a
start_standins
start_haproxy a
S=/_matrix/client/v3/sync

# /health is what is checked
stop_standin synchrotron-4
standin_part '^synchrotron_4_[0-9]+$' | awk '/^    bind / { print; print "    http-request return status 503 if { path /health }"; next } 1' > "$tmp/sick.cfg"
haproxy -db -f "$tmp/sick.cfg" > "$tmp/sick.log" 2>&1 9>&- & sick=$!; pids+=($sick)
# until it listens (bounded): a fixed pause lost the race on a loaded machine
for _ in $(seq 50); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:22114/health)" = 503 ] && break
    sleep 0.1
done
code=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:22114/_matrix/client/v3/sync)
if wait_state a sync synchrotron-4 DOWN && [ "$code" = 200 ]; then ok health-check-path
else fail health-check-path "synchrotron-4 answering 503 on /health only (sync: $code) was not marked down"; fi
stop_pid "$sick"; start_standin synchrotron-4
wait_state a sync synchrotron-4 UP || echo "# synchrotron-4 did not come back"

N=200
mapfile -t toks < <(standin token $(seq -f 'fo%03g' $N))
for t in "${toks[@]}"; do echo "$base$S?since=s1&timeout=0&access_token=$t"; done | urls > "$tmp/users.K"
measure() { curl -s -K "$tmp/users.K" -w '%header{x-worker}\n' > "$1"; }
measure "$tmp/r0"
victim=$(sort "$tmp/r0" | uniq -c | sort -rn | awk 'NR==1 {print $2}')
nv=$(grep -cx "$victim" "$tmp/r0")
stop_standin "$victim"
wait_state a sync "$victim" DOWN || echo "# $victim not marked down"
measure "$tmp/r1"
why=""
bad=$(paste "$tmp/r0" "$tmp/r1" | awk -v v="$victim" '($1 != v && $1 != $2) || ($1 == v && ($2 == v || $2 !~ /^synchrotron-/))' | wc -l)
[ "$bad" -eq 0 ] || why="$bad users wrong after $victim went down (others must stay, its $nv users move to other sync workers)"
[ "$(grep -c . "$tmp/r1")" -eq $N ] || why="${why:+$why; }$(grep -c . "$tmp/r1") of $N answered"
check worker-down-only-its-users-move "$why"
start_standin "$victim"
wait_state a sync "$victim" UP || echo "# $victim not marked up"
measure "$tmp/r2"
moved=$(paste "$tmp/r0" "$tmp/r2" | awk '$1 != $2' | wc -l)
check worker-back-users-return "$([ "$moved" -eq 0 ] || echo "$moved users not on their first worker")"

# stuck but dead: HAProxy still thinks it is up
sock a "disable health sync/$victim" >/dev/null
stop_standin "$victim"
sleep 0.5
st=$(sock a "show servers state sync" | awk -v s="$victim" '$4==s {print $6}')
# 6 of its users (each costs the retries' 1 s turn-around, 2 s in all)
paste -d ' ' "$tmp/r0" <(printf '%s\n' "${toks[@]}") | awk -v v="$victim" '$1 == v {print $2}' | head -6 |
    while read -r t; do echo "$base$S?since=s2&timeout=0&access_token=$t"; done | urls > "$tmp/vic.K"
t0=$SECONDS
curl -s -K "$tmp/vic.K" -w '%{http_code} %header{x-worker}\n' > "$tmp/r3"
why=""
[ "$st" = 2 ] || why="(setup: $victim state $st, want 2 = up)"
n=$(grep -c '^200 synchrotron-' "$tmp/r3"); nvic=$(grep -c " $victim\$" "$tmp/r3")
[ "$n" -eq 6 ] && [ "$nvic" -eq 0 ] || why="${why:+$why; }$n of 6 of its users served by sync workers, $nvic by the dead $victim"
[ $((SECONDS - t0)) -le 20 ] || why="${why:+$why; }took $((SECONDS - t0)) s"
check redispatch-stuck-dead "$why"
sock a "enable health sync/$victim" >/dev/null

# every sync worker down: main (the backup) serves syncs
for i in 1 2 3 4; do [ "synchrotron-$i" = "$victim" ] || stop_standin "synchrotron-$i"; done
for i in 1 2 3 4; do wait_state a sync "synchrotron-$i" DOWN; done
res=$(curl -s -o "$tmp/b" -w '%{http_code} %header{x-worker}' "$base$S?since=s9&access_token=${toks[0]}")
check generic-falls-back-to-main "$([ "$res" = "200 main" ] || echo "got '$res'")"

# writer pool empty (typing-1 has no stand-in): Matrix JSON 503, never main
wait_state a typing typing-1 DOWN
res=$(curl -s -o "$tmp/b" -w '%{http_code} %header{x-worker} %header{content-type}' -X PUT -H "Authorization: Bearer ${toks[0]}" \
      "$base/_matrix/client/v3/rooms/!r:example.org/typing/@fo001:example.org")
why=""
[[ $res == "503  application/json"* ]] || why="got '$res'"
grep -q '"errcode":"M_UNKNOWN"' "$tmp/b" || why="${why:+$why; }body $(head -c 80 "$tmp/b")"
check writer-never-falls-back "$why"
exit $(( fails > 0 ))
