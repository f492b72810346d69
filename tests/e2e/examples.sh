#!/usr/bin/env bash
# tests/e2e/examples.sh - the examples, end to end, on loopback.
#
# Every generated file that is checked in (examples/regenerate.sh writes them):
#   regenerate/<file>  the command recorded in its header, run again, gives the
#                      same bytes (on any HAProxy: --portable output is the same
#                      for every target)
#   quiet/<file>       `haproxy -c` accepts it and prints no warning
#   any-target         --portable output for HAProxy 2.6/Lua 5.3 == for 3.0/Lua 5.4
# For each of examples/{monolith,small,full,debian} (debian: the small
# deployment in Debian's homeserver.yaml + conf.d/*.yaml layout, same answers):
#   live         stand-ins (examples/standin) + HAProxy with synroute; for every
#                request below: `synroute explain` names the expected backend,
#                and the worker that answered (X-Worker) is an active server of
#                that backend's pool (or main / a 404 for blocked paths)
#   sticky       the same user's syncs and the same room's sends land on one worker
# Prints "ok e2e/<example>/<what>" or "FAIL e2e/<example>/<what>: why".
# Every process is started here and stopped by PID (also on Ctrl-C).
T=e2e
. "$(dirname -- "$0")/../lib.bash"   # root, tmp, pids, ok/fail, stop_all, syn, standin

alice=$(standin token alice); bob=$(standin token bob)
AS='Bearer example-as-token-not-a-secret'
XM='X-Matrix origin="remote.example",destination="example.org",key="ed25519:a1",sig="c2ln"'

# name | method | target | Authorization | full | small | monolith   ("-": whatever explain says, 404: blocked)
CASES="
sync|GET|/_matrix/client/v3/sync?since=s1_2&timeout=30000|Bearer $alice|sync|generic|main
sync_query_token|GET|/_matrix/client/v3/sync?since=s1&access_token=$bob||sync|generic|main
initial_sync|GET|/_matrix/client/v3/sync|Bearer $alice|initial_sync|generic|main
event_send|PUT|/_matrix/client/v3/rooms/!r1:example.org/send/m.room.message/t1|Bearer $alice|event_send|generic|main
messages|GET|/_matrix/client/v3/rooms/!r1:example.org/messages?dir=b|Bearer $alice|messages|generic|main
federation_send|PUT|/_matrix/federation/v1/send/1700000000001|$XM|federation_send|generic|main
federation|GET|/_matrix/federation/v1/event/\$ev1|$XM|federation|generic|main
client|GET|/_matrix/client/versions||client|generic|main
encryption|POST|/_matrix/client/v3/keys/query|Bearer $alice|encryption|generic|main
login|POST|/_matrix/client/v3/login||login|generic|main
user_directory|POST|/_matrix/client/v3/user_directory/search|Bearer $alice|user_directory|generic|main
sso|GET|/_matrix/client/v3/login/sso/redirect?redirectUrl=https://x.example||sso|main|main
media|GET|/_matrix/client/v1/media/download/example.org/abc|Bearer $alice|media|media|main
media_legacy|GET|/_matrix/media/v3/download/example.org/abc||media|media|main
typing|PUT|/_matrix/client/v3/rooms/!r1:example.org/typing/@alice:example.org|Bearer $alice|typing|main|main
to_device|PUT|/_matrix/client/v3/sendToDevice/m.room.encrypted/t2|Bearer $alice|to_device|-|main
account_data|PUT|/_matrix/client/v3/user/@alice:example.org/account_data/x|Bearer $alice|account_data|main|main
receipts|POST|/_matrix/client/v3/rooms/!r1:example.org/receipt/m.read/\$ev1|Bearer $alice|receipts|-|main
presence|PUT|/_matrix/client/v3/presence/@alice:example.org/status|Bearer $alice|presence|main|main
push_rules|PUT|/_matrix/client/v3/pushrules/global/override/x|Bearer $alice|push_rules|main|main
push_rules_get|GET|/_matrix/client/v3/pushrules/|Bearer $alice|client|generic|main
device_lists|POST|/_matrix/client/v3/keys/upload|Bearer $alice|device_lists|generic|main
thread_subscriptions|PUT|/_matrix/client/unstable/io.element.msc4306/rooms/!r1:example.org/thread/\$ev1/subscription|Bearer $alice|thread_subscriptions|-|main
appservice|PUT|/_matrix/client/v3/rooms/!r1:example.org/send/m.room.message/t3|$AS|appservice|generic|main
admin|GET|/_synapse/admin/v1/server_version||main|main|main
sync_merged_slashes|GET|//_matrix//client/v3/sync?since=s1|Bearer $alice|sync|generic|main
sync_dot_segments|GET|/_matrix/client/./v3/../v3/sync?since=s1|Bearer $alice|sync|generic|main
sync_encoded_unreserved|GET|/_matrix/client/v3/%73ync?since=s1|Bearer $alice|sync|generic|main
replication|POST|/_synapse/replication/send_event/x||404|404|404
replication_dotted|POST|//_synapse/./replication/send_event/x||404|404|404
mas|POST|/_synapse/mas/sync_devices||404|404|404
replication_encoded_underscore|POST|/%5Fsynapse/replication/send_event/x||404|404|404
replication_encoded_slash|POST|/_synapse/replication%2Fsend_event/x||404|404|404
replication_bare|GET|/_synapse/replication||404|404|404
"


for f in examples/*/haproxy*.cfg; do
    name=${f#examples/}
    cmd=$(sed -n '2s/^#   synroute haproxy //p' "$f")
    # the recorded command, writing to a scratch file instead
    read -r -a words <<<"$cmd"
    args=(); skip=0
    for w in "${words[@]}"; do
        if [ "$skip" = 1 ]; then skip=0; continue; fi
        if [ "$w" = -o ]; then skip=1; continue; fi
        args+=("$w")
    done
    if [ -z "$cmd" ]; then fail "regenerate/$name" "no recorded command in line 2"
    elif syn haproxy "${args[@]}" -o "$tmp/regen.cfg" 2>"$tmp/regen.err" && cmp -s "$f" "$tmp/regen.cfg"; then
        ok "regenerate/$name"
    else
        fail "regenerate/$name" "'synroute haproxy $cmd' no longer gives this file (examples/regenerate.sh): $(head -2 "$tmp/regen.err" | tr '\n' ' ')$(diff "$f" "$tmp/regen.cfg" 2>/dev/null | sed -n 2,4p | tr '\n' ' ')"
    fi
    case $name in *-snippet.cfg) continue ;; esac
    out=$(timeout 20 haproxy -c -f "$f" 2>&1); rc=$?
    if [ "$rc" = 0 ] && ! grep -qE 'WARNING|ALERT' <<<"$out"; then ok "quiet/$name"
    else fail "quiet/$name" "exit $rc: $(grep -m2 -E 'WARNING|ALERT' <<<"$out" | tr '\n' ' ')"; fi
done
a=$(syn haproxy --portable examples/full/synroute.yaml --haproxy-version 2.6 --lua-version 5.3 2>&1)
b=$(syn haproxy --portable examples/full/synroute.yaml --haproxy-version 3.0 --lua-version 5.4 2>&1)
if [ -n "$a" ] && [ "$a" = "$b" ] && [ "$a" = "$(cat examples/full/haproxy.cfg)" ]; then ok "any-target"
else fail "any-target" "--portable output differs between HAProxy 2.6/Lua 5.3 and 3.0/Lua 5.4: $(diff <(echo "$a") <(echo "$b") | head -3 | tr '\n' ' ')"; fi

# --snippet: the static template haproxy/frontend-rules.cfg holds the same
# rules; pasted into a frontend of the full config (in place of its own rules)
# they pass haproxy -c without a warning.
rules() { sed -n '/^    # 0\. Client-supplied/,/^    use_backend/p' "$1"; }
if diff <(rules haproxy/frontend-rules.cfg) <(syn haproxy --snippet examples/monolith/synroute.yaml 2>/dev/null | sed -n '/^    # 0\. Client-supplied/,/^    use_backend/p') >/dev/null; then
    ok "snippet/template"
else fail "snippet/template" "haproxy/frontend-rules.cfg no longer matches the generator's rules"; fi
{ sed -n '1,/^frontend synapse/p' examples/full/haproxy.cfg
  echo "    bind 127.0.0.1:24099"
  rules examples/full/haproxy-snippet.cfg
  echo "    default_backend main"
  echo
  sed -n '/^backend main/,$p' examples/full/haproxy.cfg; } > "$tmp/pasted.cfg"
if out=$(timeout 20 haproxy -c -f "$tmp/pasted.cfg" 2>&1) && ! grep -qE 'WARNING|ALERT' <<<"$out"; then ok "snippet/haproxy-c"
else fail "snippet/haproxy-c" "$(grep -m2 -E 'WARNING|ALERT' <<<"$out" | tr '\n' ' ')"; fi

for ex in full small monolith debian; do
    case $ex in full) col=5;; small|debian) col=6;; monolith) col=7;; esac
    dir=examples/$ex
    # 2. haproxy -c (regenerate/ and quiet/ above cover the file itself)
    if out=$(timeout 20 haproxy -c -f "$dir/haproxy.cfg" 2>&1); then ok "$ex/haproxy-c"
    else fail "$ex/haproxy-c" "$(grep -m2 ALERT <<<"$out" | tr '\n' ' ')"; continue; fi

    # 3. live
    port=$(sed -n 's/^ *bind [^ ]*:\([0-9]*\)$/\1/p' "$dir/haproxy.cfg" | head -1)
    busy=$(ss -Hltn 2>/dev/null | awk '{print $4}' | grep -E ":($port|240[0-9][0-9])\$" | head -3 | tr '\n' ' ')
    if [ -n "$busy" ]; then fail "$ex/live" "ports busy: $busy"; continue; fi
    standin config "$dir/synroute.yaml" > "$tmp/$ex.standin.cfg"
    standin servers "$dir/synroute.yaml" > "$tmp/$ex.servers"
    mainport=$(sed -n 's/^ *server main [^ ]*:\([0-9]*\) check$/\1/p' "$dir/haproxy.cfg" | head -1)
    # a port of ours may briefly be the local end of someone's outgoing
    # connection (it is inside the ephemeral range): retry the bind
    for attempt in 1 2 3 4 5; do
        haproxy -db -f "$tmp/$ex.standin.cfg" > "$tmp/$ex.standin.log" 2>&1 &
        spid=$!
        for _ in $(seq 30); do curl -fs -o /dev/null "http://127.0.0.1:$mainport/health" && break; kill -0 $spid 2>/dev/null || break; sleep 0.1; done
        kill -0 $spid 2>/dev/null && break
        sleep 1
    done
    pids+=($spid)
    haproxy -db -f "$dir/haproxy.cfg" > "$tmp/$ex.haproxy.log" 2>&1 &
    pids+=($!)
    base=http://127.0.0.1:$port
    for _ in $(seq 50); do curl -s -o /dev/null "$base/_matrix/client/versions" && break; sleep 0.1; done
    if ! curl -s -o /dev/null "$base/_matrix/client/versions"; then
        fail "$ex/live" "HAProxy did not start: $(grep -m3 -E 'ALERT|error' "$tmp/$ex.haproxy.log" | tr '\n' ' ')"
        stop_all; continue
    fi
    while IFS='|' read -r name method target auth e_full e_small e_mono; do
        [ -z "$name" ] && continue
        case $col in 5) want=$e_full;; 6) want=$e_small;; 7) want=$e_mono;; esac
        hargs=(); [ -n "$auth" ] && hargs=(-H "Authorization: $auth")
        exp=$(syn explain --config "$dir/synroute.yaml" "$method" "$target" "${hargs[@]}" 2>&1)
        eb=$(json_field backend <<<"$exp"); ec=$(json_field class <<<"$exp")
        res=$(curl -s -o "$tmp/body" -w '%{http_code} %header{x-worker}' -X "$method" --path-as-is "${hargs[@]}" "$base$target")
        code=${res%% *}; worker=${res#* }
        why=""
        if [ "$want" = 404 ]; then
            [ "$code" = 404 ] || why="status $code, want 404"
            [ -z "$worker" ] || why="${why:+$why; }reached worker $worker"
            grep -q M_UNRECOGNIZED "$tmp/body" || why="${why:+$why; }no Matrix JSON body"
        else
            if [ "$want" != - ] && [ "$eb" != "$want" ]; then why="explain says backend '$eb' (class $ec), want '$want'"; fi
            [ "$code" = 200 ] || why="${why:+$why; }status $code"
            if [ "$eb" = main ]; then
                [ "$worker" = main ] || why="${why:+$why; }answered by '$worker', want main"
            elif ! awk -F'\t' -v p="$eb" -v w="$worker" '$1==p && $2==w && $3!="backup" {f=1} END {exit !f}' "$tmp/$ex.servers"; then
                why="${why:+$why; }answered by '$worker', not an active server of pool '$eb'"
            fi
        fi
        if [ -z "$why" ]; then ok "$ex/$name"; else fail "$ex/$name" "$why"; fi
    done <<<"$CASES"

    # 4. stickiness: same user -> same sync worker, same room -> same event worker
    first=""; same=1
    for i in 1 2 3 4 5 6; do
        w=$(curl -s -o /dev/null -w '%header{x-worker}' -H "Authorization: Bearer $alice" "$base/_matrix/client/v3/sync?since=s$i")
        [ -z "$first" ] && first=$w
        [ "$w" = "$first" ] || same=0
    done
    for i in 1 2 3 4 5 6; do
        w=$(curl -s -o /dev/null -w '%header{x-worker}' -X PUT -H "Authorization: Bearer $bob" "$base/_matrix/client/v3/rooms/%21r2%3Aexample.org/send/m.room.message/s$i")
        [ $i = 1 ] && rfirst=$w
        [ "$w" = "$rfirst" ] || same=0
    done
    if [ $same = 1 ]; then ok "$ex/sticky"; else fail "$ex/sticky" "a user's syncs or a room's sends moved between workers"; fi

    # 4b. a client-supplied X-Forwarded-For is replaced, X-Forwarded-Proto set
    res=$(curl -s -o /dev/null -w '%header{x-seen-xff}|%header{x-seen-proto}' -H 'X-Forwarded-For: 6.6.6.6' -H 'X-Forwarded-Proto: https' "$base/_matrix/client/versions")
    if [ "$res" = "127.0.0.1|http" ]; then ok "$ex/x-forwarded"; else fail "$ex/x-forwarded" "worker saw XFF|proto '$res', want '127.0.0.1|http'"; fi

    # 5. the access log never holds tokens or query strings
    sleep 0.2
    if grep -qE 'syt_|access_token|example-as-token|X-Matrix|since=' "$tmp/$ex.haproxy.log"; then
        fail "$ex/log-clean" "access log contains a token or query string"
    else
        ok "$ex/log-clean"
    fi
    stop_all
done
# 6. failover (full): with client-reader-*, typing-1 and media-repository-1
# gone, the client pool falls back to main (its backup), while the typing
# writer pool and media (enable_media_repo: false) answer a Matrix JSON 503.
ex=full; dir=examples/full
port=$(sed -n 's/^ *bind [^ ]*:\([0-9]*\)$/\1/p' "$dir/haproxy.cfg" | head -1)
base=http://127.0.0.1:$port
standin config "$dir/synroute.yaml" | awk '
    /^frontend / { skip = ($2 ~ /^(client_reader_[12]|typing_1|media_repository_1)_/) }
    !skip' > "$tmp/failover.standin.cfg"
haproxy -db -f "$tmp/failover.standin.cfg" > "$tmp/failover.standin.log" 2>&1 &
pids+=($!)
for _ in $(seq 30); do curl -fs -o /dev/null http://127.0.0.1:24020/health && break; sleep 0.1; done
haproxy -db -f "$dir/haproxy.cfg" > "$tmp/failover.haproxy.log" 2>&1 &
pids+=($!)
# wait (bounded) until health checks have marked the missing servers down
w=""
for _ in $(seq 100); do
    w=$(curl -s -o /dev/null -w '%header{x-worker}' "$base/_matrix/client/versions")
    [ "$w" = main ] && break
    sleep 0.2
done
if [ "$w" = main ]; then ok "failover/client-to-main-backup"; else fail "failover/client-to-main-backup" "answered by '$w', want main"; fi
for c in "typing|PUT|/_matrix/client/v3/rooms/!r1:example.org/typing/@alice:example.org" \
         "media|GET|/_matrix/client/v1/media/download/example.org/abc"; do
    IFS='|' read -r name method target <<<"$c"
    res=$(curl -s -o "$tmp/body" -w '%{http_code} %header{x-worker} %header{content-type}' -X "$method" -H "Authorization: Bearer $alice" "$base$target")
    if [ "${res%% *}" = 503 ] && grep -q '"errcode":"M_UNKNOWN"' "$tmp/body" && [[ $res == *application/json* ]]; then
        ok "failover/$name-503-json"
    else
        fail "failover/$name-503-json" "got '$res' $(head -c 80 "$tmp/body")"
    fi
done
stop_all
exit $(( fails > 0 ))
