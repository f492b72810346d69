#!/usr/bin/env bash
# tests/traffic/spread.sh - how the consistent hash spreads users, and what
# the stick table keeps, measured through real HAProxy:
#   fair-share-4          1000 users over 4 sync workers: each within +-25% of 250
#   add-5th-moves-few     fresh HAProxy (no stick entries) with a 5th worker: at most
#                         25% of the users move, and only to the new worker
#   rolling-update-keeps-users  with the stick table: node B, configured with the
#                         5th worker, learns node A's table through peers; none
#                         of the users A knows moves
#   rolling-update-new-users-use-5th  users first seen on B do reach the 5th worker
T=traffic/spread
source "$(dirname "$0")/lib.bash"

N=1000
mapfile -t toks < <(standin token $(seq -f 'user%04g' $N))
[ "${#toks[@]}" -eq $N ] || { echo "FAIL $T/setup: got ${#toks[@]} tokens"; exit 1; }
S=/_matrix/client/v3/sync
for t in "${toks[@]}"; do echo "$base$S?since=s1&timeout=0&access_token=$t"; done | urls > "$tmp/users.K"
measure() { curl -s -K "$tmp/users.K" -w '%header{x-worker}\n' > "$1"; }

make_dep 4
gen_cfg a4
start_standins
start_haproxy a4
measure "$tmp/r4"
stop_pid "${hp_pid[a4]}"
sort "$tmp/r4" | uniq -c > "$tmp/r4.count"
why=""
[ "$(grep -c '^synchrotron-[1-4]$' "$tmp/r4")" -eq $N ] || why="not all $N answered by synchrotron-1..4"
while read -r n w; do
    [ "$n" -ge 188 ] && [ "$n" -le 312 ] || why="${why:+$why; }$w has $n users (fair share 250 +-25%)"
done < "$tmp/r4.count"
check fair-share-4 "$why${why:+ [$(tr -s ' \n' ' ' < "$tmp/r4.count")]}"

make_dep 5
gen_cfg a5
start_standin synchrotron-5
start_haproxy a5
measure "$tmp/r5"
stop_pid "${hp_pid[a5]}"
moved=$(paste "$tmp/r4" "$tmp/r5" | awk '$1 != $2' | wc -l)
elsewhere=$(paste "$tmp/r4" "$tmp/r5" | awk '$1 != $2 && $2 != "synchrotron-5"' | wc -l)
why=""
[ "$moved" -le $((N / 4)) ] || why="$moved of $N users moved (limit 25%)"
[ "$moved" -ge 1 ] || why="no user moved to the new worker"
[ "$elsewhere" -eq 0 ] || why="${why:+$why; }$elsewhere users moved between old workers"
check add-5th-moves-few "${why:+$why ($moved moved)}"

# with the stick table: a second node built for 5 workers learns node A's
# table through peers (a rolling update); users it knows stay where they are
PEERS='peers:
  local: NODE
  nodes:
    node1: 127.0.0.1:22201
    node2: 127.0.0.1:22202'
make_dep 4 "${PEERS/NODE/node1}"
gen_cfg pa
start_haproxy pa
measure "$tmp/pa"
learned=$(sock pa "show table sync" | grep -c 'key=')
LISTEN=127.0.0.1:22191; base=http://$LISTEN
make_dep 5 "${PEERS/NODE/node2}"
gen_cfg pb
HP_URL=$base start_haproxy pb
have=0
for _ in $(seq 50); do
    have=$(sock pb "show table sync" | grep -c 'key=')
    [ "$have" -ge "$learned" ] && break
    sleep 0.1
done
sed -i "s#127.0.0.1:22190#$LISTEN#" "$tmp/users.K"
measure "$tmp/pb"
moved=$(paste "$tmp/pa" "$tmp/pb" | awk '$1 != $2' | wc -l)
why=""
[ "$learned" -eq $N ] || why="node A's table learned $learned of $N users"
[ "$have" -eq "$learned" ] || why="${why:+$why; }node B got $have of $learned entries"
[ "$moved" -eq 0 ] || why="${why:+$why; }$moved known users moved"
check rolling-update-keeps-users "$why"
mapfile -t toks2 < <(standin token $(seq -f 'late%04g' 400))
for t in "${toks2[@]}"; do echo "$base$S?since=s1&timeout=0&access_token=$t"; done | urls > "$tmp/late.K"
n5=$(curl -s -K "$tmp/late.K" -w '%header{x-worker}\n' | grep -c '^synchrotron-5$')
if [ "$n5" -ge 40 ]; then ok rolling-update-new-users-use-5th; else fail rolling-update-new-users-use-5th "$n5 of 400 new users on synchrotron-5 (fair share 80)"; fi
exit $(( fails > 0 ))
