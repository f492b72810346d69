#!/usr/bin/env bash
# tests/traffic/drain.sh - synroute status, show, drain and ready against the
# generated configuration in a real HAProxy, through its runtime API (the
# stats socket of runtime.socket).
#
# Deployment: tests/traffic/lib.bash with 3 sync workers whose stand-ins can
# hold a request (a /sync long poll), and synchrotron-2 also in a generic
# pool (checked there, tracked in sync).
#   status    the servers of each pool, their state, what they track, and the
#             request counts / weight shares HAProxy reports for a known mix
#   show      the server a user, room and origin is pinned to = the server
#             that answered them; a token only through --token-file
#   drain     a long poll in flight finishes on the drained worker; new
#             requests of the user pinned to it go elsewhere, and new users
#             never reach it; drain --wait returns once the poll is done
#   ready     the pinned user is back on its worker
#   refusals  a single writer and main are not drained without --force;
#             --force gives the writer's requests a Matrix 503 until ready
#   errors    unknown worker, unreachable socket (1), usage (2)
T=traffic/drain
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"
need_lua_socket

make_dep 3
sed -i "s/^pools:\$/pools:\\n  sync: [synchrotron-*]\\n  generic: [synchrotron-2]/" "$tmp/dep/synroute.yaml"
gen_cfg a
start_standins
for i in 1 2 3; do stop_standin "synchrotron-$i"; start_holding "synchrotron-$i"; done
start_standin typing-1
start_haproxy a
wait_state a typing typing-1 UP || { fail setup "typing-1 never came UP"; exit 1; }
export SYNROUTE_CONFIG=$tmp/dep/synroute.yaml
S=/_matrix/client/v3/sync

# --- known traffic: 30 users' syncs, counted per worker by what answered
mapfile -t toks < <(standin token $(seq -f 'user%02g' 30))
declare -A who=()
declare -A count=()
for i in "${!toks[@]}"; do
    u=$(printf 'user%02d' $((i + 1)))
    w=$(worker -H "Authorization: Bearer ${toks[$i]}" "$base$S?since=s1")
    who[$u]=$w; count[$w]=$(( ${count[$w]:-0} + 1 ))
done

syn status > "$tmp/status.out" 2>&1; rc=$?
pool() { awk -v p="pool $1 " 'index($0, p) == 1 { on = 1; next } on && /^$/ { exit } on' "$tmp/status.out"; }
row() { pool "$1" | awk -v s="$2" '$1 == s'; }
why=""
[ "$rc" = 0 ] || why="exit $rc: $(head -3 "$tmp/status.out")"
for s in synchrotron-1 synchrotron-2 synchrotron-3 main; do
    [ -n "$(row sync "$s")" ] || why="${why:+$why; }sync pool does not list $s"
done
[ "$(row sync synchrotron-1 | awk '{print $2}')" = UP ] || why="${why:+$why; }synchrotron-1 not UP: $(row sync synchrotron-1)"
[ "$(row typing typing-1 | awk '{print $2}')" = UP ] || why="${why:+$why; }typing-1 not UP: $(row typing typing-1)"
[ "$(row sync synchrotron-2 | awk '{print $4}')" = generic/synchrotron-2 ] ||
    why="${why:+$why; }sync/synchrotron-2 should track generic/synchrotron-2: $(row sync synchrotron-2)"
[ "$(row sync main | awk '{print $2, $5}')" = "(backup) main/main" ] ||
    why="${why:+$why; }sync/main should be a backup tracking main/main: $(row sync main)"
check status/servers-states-tracking "$why"

why=""
total=0
for w in synchrotron-1 synchrotron-2 synchrotron-3; do
    r=$(row sync "$w")
    got=$(awk '{print $(NF-1)}' <<<"$r"); share=$(awk '{print $NF}' <<<"$r" | tr -d '()%')
    want=${count[$w]:-0}; total=$((total + got))
    [ "$got" = "$want" ] || why="${why:+$why; }$w served $want syncs, status says $got"
    exp=$(( (want * 100 + 15) / 30 ))
    [ $(( share - exp )) -ge -1 ] && [ $(( share - exp )) -le 1 ] || why="${why:+$why; }$w share $share%, expected ~$exp%"
    [ "$(awk '{print $(NF-2)}' <<<"$r")" = 33% ] || why="${why:+$why; }$w weight share: $r"
done
[ "$total" = 30 ] || why="${why:+$why; }total $total"
check status/requests-and-shares "$why"

# --- show: the pin HAProxy keeps = the worker that answered
why=""
for u in user01 user02 user03 user04 user05; do
    got=$(syn show "@$u:example.org" | awk '$1 == "sync" {print $3}')
    [ "$got" = "${who[$u]}" ] || why="${why:+$why; }$u: show says '$got', answered by ${who[$u]}"
done
check show/user "$why"

why=""
for r in '!roomA:example.org' '!roomB:example.org' '!roomC:example.org'; do
    ws=$(worker -X PUT -H "Authorization: Bearer ${toks[0]}" "$base/_matrix/client/v3/rooms/$r/send/m.room.message/t$RANDOM")
    wm=$(worker -H "Authorization: Bearer ${toks[0]}" "$base/_matrix/client/v3/rooms/$r/messages?dir=b")
    out=$(syn show "$r")
    [ "$(awk '$1 == "event_send" {print $3}' <<<"$out")" = "$ws" ] || why="${why:+$why; }$r send by $ws: $out"
    [ "$(awk '$1 == "messages" {print $3}' <<<"$out")" = "$wm" ] || why="${why:+$why; }$r messages by $wm: $out"
done
check show/room "$why"

why=""
for o in a.example b.example c.example; do
    w=$(worker -X PUT -H "Authorization: X-Matrix origin=\"$o\",destination=\"example.org\",key=\"ed25519:a\",sig=\"c2ln\"" \
        "$base/_matrix/federation/v1/send/$RANDOM")
    out=$(syn show --kind origin "$o")
    [ "$(awk '$1 == "federation_send" {print $3}' <<<"$out")" = "$w" ] || why="${why:+$why; }$o by $w: $out"
done
check show/origin "$why"

out=$(printf '%s\n' "${toks[0]}" | syn show --token-file - 2>&1); rc=$?
why=""
[ "$rc" = 0 ] || why="exit $rc"
[ "$(awk '$1 == "sync" {print $3}' <<<"$out")" = "${who[user01]}" ] || why="${why:+$why; }not ${who[user01]}: $out"
head -1 <<<"$out" | grep -q '^user user01 ' || why="${why:+$why; }first line: $(head -1 <<<"$out")"
grep -qF "${toks[0]}" <<<"$out" && why="${why:+$why; }the token is in the output"
check show/token-file "$why"
out=$(syn show "${toks[0]}" 2>&1); rc=$?
why=""
[ "$rc" = 2 ] || why="exit $rc (want 2)"
grep -qF "${toks[0]}" <<<"$out" && why="${why:+$why; }the token is echoed"
grep -q 'token-file' <<<"$out" || why="${why:+$why; }no hint: $(head -1 <<<"$out")"
check show/token-on-command-line-refused "$why"

# --- drain with a long poll in flight. The user pinned to synchrotron-2
# (tracked in sync, checked in generic) holds a /sync for 20 s (long enough for
# the checks below on a loaded machine before drain --wait is called).
X=synchrotron-2
U=""; for u in "${!who[@]}"; do [ "${who[$u]}" = $X ] && U=$u && break; done
[ -n "$U" ] || { fail drain/setup "no user pinned to $X"; exit 1; }
tokU=$(standin token "$U")
HOLD=20   # seconds the long poll is held
t_poll=$(date +%s.%N)
curl -s -o /dev/null -m 40 -w '%{http_code} %header{x-worker} %{time_total}\n' \
    -H "Authorization: Bearer $tokU" "$base$S?since=s2&timeout=30000&hold=${HOLD}000" > "$tmp/poll.out" &
poll=$!
sleep 0.5
out=$(syn drain $X 2>&1); rc=$?
check drain/accepted "$([ "$rc" = 0 ] && grep -q "drained $X in generic, sync" <<<"$out" || echo "exit $rc: $out")"

syn status > "$tmp/status.out" 2>&1
why=""
[ "$(row sync $X | awk '{print $2}')" = MAINT ] || why="sync: $(row sync $X)"
[ "$(row generic $X | awk '{print $2}')" = MAINT ] || why="${why:+$why; }generic: $(row generic $X)"
[ "$(row sync $X | awk '{print $5}')" = 1 ] || why="${why:+$why; }in flight should be 1: $(row sync $X)"
check drain/status-maint-and-in-flight "$why"

moved="" ; bad=""
for _ in 1 2 3 4 5; do
    r=$(curl -s -o /dev/null -m 5 -w '%{http_code} %header{x-worker}' -H "Authorization: Bearer $tokU" "$base$S?since=s3")
    [ "${r%% *}" = 200 ] || bad="$bad $r"
    [ "${r#* }" = $X ] && moved="$moved still-on-$X"
done
check drain/pinned-user-goes-elsewhere "${bad:+answers:$bad}${moved}"
n=0
for t in $(standin token $(seq -f 'fresh%02g' 20)); do
    [ "$(worker -H "Authorization: Bearer $t" "$base$S?since=s1")" = $X ] && n=$((n + 1))
done
check drain/new-users-never-reach-it "$([ "$n" = 0 ] || echo "$n of 20 new users went to $X")"
w=$(worker "$base/_matrix/client/v3/publicRooms")
check drain/tracked-pool-uses-backup "$([ "$w" = main ] || echo "generic pool answered by '$w', want main (its backup)")"
out=$(syn show "@$U:example.org")
check drain/show-keeps-pin "$(awk '$1 == "sync"' <<<"$out" | grep -q "$X (pinned.*MAINT" || echo "$out")"

t_call=$(date +%s.%N)
out=$(timeout 60 "$root/bin/synroute" drain $X --wait 40s 2>&1); rc=$?   # longer than syn's 20 s
t_ret=$(date +%s.%N)
wait "$poll"
read -r pcode pworker ptime < "$tmp/poll.out"
why=""
[ "$pcode" = 200 ] && [ "$pworker" = $X ] || why="long poll: $pcode from '$pworker'"
awk -v t="$ptime" -v h=$HOLD 'BEGIN { exit !(t >= h - 0.5) }' || why="${why:+$why; }long poll took only ${ptime}s"
check drain/long-poll-finishes-on-drained-worker "$why"
why=""
[ "$rc" = 0 ] || why="exit $rc: $out"
grep -q "$X: no request in flight" <<<"$out" || why="${why:+$why; }$out"
awk -v p="$t_poll" -v c="$t_call" -v r="$t_ret" -v h=$HOLD 'BEGIN { exit !(c < p + h - 1 && r >= p + h - 0.5) }' ||
    why="${why:+$why; }poll started $t_poll (held ${HOLD}s), drain --wait called $t_call, returned $t_ret"
check drain/wait-until-idle "$why"

# --- ready: the stick table kept the first assignment
out=$(syn ready $X 2>&1); rc=$?
back=""
for _ in $(seq 30); do
    back=$(worker -H "Authorization: Bearer $tokU" "$base$S?since=s4")
    [ "$back" = $X ] && break
    sleep 0.1
done
check ready/pinned-user-returns "$([ "$rc" = 0 ] && [ "$back" = $X ] || echo "exit $rc ($out); user answered by $back")"

# --- refusals
out=$(syn drain typing-1 2>&1); rc=$?
why=""
[ "$rc" = 1 ] || why="exit $rc"
grep -q "only server left in pool(s) typing" <<<"$out" || why="${why:+$why; }$out"
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer ${toks[0]}" \
    "$base/_matrix/client/v3/rooms/!roomA:example.org/typing/@user01:example.org")
[ "$code" = 200 ] || why="${why:+$why; }typing answered $code after the refusal"
check drain/single-writer-refused "$why"
out=$(syn drain main 2>&1); rc=$?
check drain/main-refused "$([ "$rc" = 1 ] && grep -q 'pool(s) main' <<<"$out" || echo "exit $rc: $out")"
out=$(syn drain typing-1 --force 2>&1); rc=$?
body=$(curl -s -w ' %{http_code}' -X PUT -H "Authorization: Bearer ${toks[0]}" \
    "$base/_matrix/client/v3/rooms/!roomA:example.org/typing/@user01:example.org")
syn ready typing-1 > /dev/null 2>&1
wait_state a typing typing-1 UP
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer ${toks[0]}" \
    "$base/_matrix/client/v3/rooms/!roomA:example.org/typing/@user01:example.org")
why=""
[ "$rc" = 0 ] && grep -q 'now have no server' <<<"$out" || why="exit $rc: $out"
[[ $body == *'"errcode"'*' 503' ]] || why="${why:+$why; }forced drain answered: $body"
[ "$code" = 200 ] || why="${why:+$why; }after ready: $code"
check drain/force-writer-503-then-ready "$why"

# --- errors and exit codes
syn drain no-such-worker > "$tmp/e.out" 2>&1; rc=$?
check errors/unknown-worker "$([ "$rc" = 1 ] && grep -q 'unknown worker "no-such-worker"' "$tmp/e.out" || echo "exit $rc: $(head -2 "$tmp/e.out")")"
syn status --socket "$tmp/nope.sock" > "$tmp/e.out" 2>&1; rc=$?
check errors/socket-unreachable "$([ "$rc" = 1 ] && grep -q "cannot connect to HAProxy's runtime API at $tmp/nope.sock" "$tmp/e.out" || echo "exit $rc: $(head -2 "$tmp/e.out")")"
why=""
for args in "drain" "status extra" "show" "drain $X --wait 5y" "ready a b" "status --force"; do
    # shellcheck disable=SC2086 # the words are the arguments
    syn $args > /dev/null 2>&1; rc=$?
    [ "$rc" = 2 ] || why="${why:+$why; }'synroute $args' exited $rc"
done
check errors/usage "$why"

exit $(( fails > 0 ))
