#!/usr/bin/env bash
# tests/e2e/replay.sh - `synroute replay` against examples/full.
#
#   unit/*      parsers, masking, admin_networks (tests/e2e/replay/units.lua)
#   nginx/*     tests/e2e/replay/nginx-upstream.log (combined + $upstream_addr):
#               the class table, what moves where, lines not replayed, no token
#               in the output; nginx-combined.log (the same requests, no
#               upstream) gives the same table; stdin; --synapse-version
#   haproxy/*   tests/e2e/replay/haproxy-httplog.log (syslog prefix, server
#               names of another config): unmapped servers, --map
#   errors/*    exit codes 1 (data) and 2 (usage)
#   live/*      a real HAProxy running examples/full logs a known request mix in
#               synroute's log-format, and again in `option httplog` with a
#               syslog prefix; replay must agree with the class and backend
#               HAProxy logged, and find no move except what a log cannot show
#   nginx-live/*  a real nginx (combined + $upstream_addr) routes the same kind
#               of mix the old way; replay names exactly the requests that move
# Prints "ok replay/<name>" or "FAIL replay/<name>: why".
T=replay
. "$(dirname -- "$0")/../lib.bash"   # root, tmp, pids, ok/fail, stop_all, syn, standin
logs=tests/e2e/replay
cfg=examples/full/synroute.yaml

# every secret the sample logs and the live mix carry (or a distinctive part of it)
SECRETS="cpWfMlWDsdSPAxqnkxeL cliDchWzgpyPAZGPQpqr kpmXEJyPgpejclaXQBKr gaKjIg8xNbe3nNyjOq9wMxEhh2FDEE
QWxBpRtzfoYjPbFtwLzS MDAxOGxvY2F0aW9u example-as-token-not-a-secret Zq81bd0aXk"
leaks() {   # file... -> the secrets found in them
    local s
    for s in $SECRETS ${extra_secrets:-}; do grep -qF -- "$s" "$@" && printf '%s ' "$s"; done
}
table() { sed -n '/^class  *requests/,/^total/p' "$1"; }
moves() { sed -n '/^  from process/,/^$/p' "$1" | sed 1d | sed '/^$/d' | sed 's/  */ /g; s/^ //'; }
moved_lines() { sed -n '/^requests that move:/,/^$/p' "$1" | sed -n 's/^  line \([0-9]*\) .*/\1/p' | tr '\n' ' '; }

# ---------------------------------------------------------------- unit
timeout 20 lua5.4 "$logs/units.lua" || fails=$((fails + 1))

# ---------------------------------------------------------------- nginx sample
syn replay --config "$cfg" --all "$logs/nginx-upstream.log" > "$tmp/nu.out" 2> "$tmp/nu.err"; rc=$?
check nginx/exit-0 "$([ $rc = 0 ] || echo "exit $rc: $(head -3 "$tmp/nu.err")")"
want_table='class                  requests   share  backend
client                        5   15.6%  client
event_send                    3    9.4%  event_send
federation                    3    9.4%  federation
media                         3    9.4%  media
sync                          3    9.4%  sync
blocked                       2    6.2%  blocked (404)
initial_sync                  2    6.2%  initial_sync
admin                         1    3.1%  forbidden (403, admin_networks)
encryption                    1    3.1%  encryption
event_send                    1    3.1%  appservice
federation_send               1    3.1%  federation_send
login                         1    3.1%  login
messages                      1    3.1%  messages
push_rules                    1    3.1%  push_rules
sso                           1    3.1%  sso
to_device                     1    3.1%  to_device
typing                        1    3.1%  typing
user_directory                1    3.1%  user_directory
total                        32  100.0%'
d=$(diff <(echo "$want_table") <(table "$tmp/nu.out") | head -6 | tr '\n' ' ')
check nginx/class-table "$d"
want_moves='client-reader-1 -> messages 1
client-reader-1 -> sso 1
client-reader-1 -> user_directory 1
client-reader-2 -> encryption 1
client-reader-2 -> login 1
event-creator-2 -> appservice 1
main -> blocked (404) 1
main -> client 1
main -> forbidden (403, admin_networks) 1
main -> push_rules 1
main -> to_device 1
main -> typing 1
synchrotron-1 -> initial_sync 1
synchrotron-2 -> initial_sync 1'
d=$(diff <(echo "$want_moves") <(moves "$tmp/nu.out") | head -6 | tr '\n' ' ')
check nginx/moves-by-pair "$d"
got=$(moved_lines "$tmp/nu.out")
check nginx/moved-lines "$([ "$got" = "3 4 7 15 16 17 19 20 23 24 25 28 30 33 " ] || echo "moved lines '$got'")"
grep -q '^moved: 14 of 30 requests with a known upstream' "$tmp/nu.out" \
    && grep -q 'no Synapse process of the deployment (--map FROM=PROCESS): 10.9.9.9:8008 (1)' "$tmp/nu.out" \
    && grep -q '1 request was answered by the proxy itself' "$tmp/nu.out"
check nginx/counts "$([ $? = 0 ] || grep -A3 '^moved' "$tmp/nu.out" | tr '\n' ' ')"
grep -q '^not replayed (no HTTP request in the line): line 13$' "$tmp/nu.out" \
    && grep -q '^not replayed (not an access-log line): line 22, 35$' "$tmp/nu.out" \
    && grep -q '^32 requests (nginx 32); 3 lines not replayed$' "$tmp/nu.out"
check nginx/not-replayed-by-number "$([ $? = 0 ] || grep -E 'not replayed|^32' "$tmp/nu.out" | tr '\n' ' ')"
# --all: one line per request, with the masked target
n=$(sed -n '/^requests:/,/^$/p' "$tmp/nu.out" | grep -c '^  line ')
if grep -q '^  line 2 .*sync?since=s72_2&timeout=30000&access_token=\*\*\*  from synchrotron-2$' "$tmp/nu.out"; then m=1; else m=0; fi
check nginx/all "$([ "$n" = 32 ] && [ $m = 1 ] || echo "$n request lines (want 32), line 2 masked as expected: $m")"
grep -q 'no Authorization header' "$tmp/nu.out" && grep -q 'stickiness needs the token' "$tmp/nu.out"
check nginx/says-what-is-not-replayed "$([ $? = 0 ] || echo "no note about the missing Authorization header")"
l=$(leaks "$tmp/nu.out" "$tmp/nu.err")
check nginx/no-token-in-output "$([ -z "$l" ] || echo "output contains: $l")"
# the same requests without an upstream field: the same decisions
syn replay --config "$cfg" "$logs/nginx-combined.log" > "$tmp/nc.out" 2>&1
d=$(diff <(table "$tmp/nu.out") <(table "$tmp/nc.out") | head -4 | tr '\n' ' ')
grep -q '^moved: 0 of 0 ' "$tmp/nc.out" && grep -q '32 requests have no upstream in the log' "$tmp/nc.out" || d="$d no-upstream summary missing"
check nginx/combined-without-upstream "$d"
l=$(leaks "$tmp/nc.out")
check nginx/combined-no-token "$([ -z "$l" ] || echo "output contains: $l")"
# standard input
syn replay --config "$cfg" --all - < "$logs/nginx-upstream.log" > "$tmp/stdin.out" 2>&1
d=$(diff <(sed 1d "$tmp/nu.out") <(sed 1d "$tmp/stdin.out") | head -4 | tr '\n' ' ')
check nginx/stdin "$d"
# an older release: routes its workers could not serve yet stay on main, so
# e.g. the filter and sso/login requests go back to main
syn replay --config "$cfg" --synapse-version 1.67 --all "$logs/nginx-upstream.log" > "$tmp/v167.out" 2>&1
grep -q '(Synapse 1.67, --synapse-version)' "$tmp/v167.out" \
    && grep -q '^  line 29 .* client-reader-2 -> main  GET /_matrix/client/v3/user/%40alice%3Aexample.org/filter/1' "$tmp/v167.out" \
    && ! grep -q '^  line 29 ' <(sed -n '/^requests that move:/,/^$/p' "$tmp/nu.out")
check nginx/synapse-version "$([ $? = 0 ] || grep -E 'Synapse|line 29 ' "$tmp/v167.out" | head -3 | tr '\n' ' ')"

# extra quoted fields before $upstream_addr (X-Forwarded-For, host, a label);
# container addresses that no Synapse file names: matched by their unique
# port, or by --map (localhost spelling aside)
syn replay --config "$cfg" "$logs/nginx-routing-debug.log" > "$tmp/rd.out" 2>&1
d=$(diff <(echo 'synchrotron-1 -> initial_sync 1') <(moves "$tmp/rd.out") | tr '\n' ' ')
grep -q '^  matched by port only (no listener has that host; --map to override): 172.18.0.9:24022 = synchrotron-1, 172.18.0.9:24023 = synchrotron-2$' "$tmp/rd.out" \
    && grep -q '(--map FROM=PROCESS): 172.18.0.2:8008 (1)$' "$tmp/rd.out" \
    && grep -q '1 request was answered by the proxy itself' "$tmp/rd.out" || d="$d $(grep -A3 '^moved' "$tmp/rd.out" | tr '\n' ' ')"
check nginx/upstream-after-other-fields "$d"
syn replay --config "$cfg" --map '172.18.0.2:8008=main' "$logs/nginx-routing-debug.log" > "$tmp/rdm.out" 2>&1
d=$(diff <(printf '%s\n' 'main -> encryption 1' 'synchrotron-1 -> initial_sync 1') <(moves "$tmp/rdm.out") | tr '\n' ' ')
grep -q '^moved: 2 of 3 ' "$tmp/rdm.out" || d="$d $(grep '^moved' "$tmp/rdm.out")"
check nginx/map-address "$d"

# ---------------------------------------------------------------- HAProxy httplog sample
syn replay --config "$cfg" --all "$logs/haproxy-httplog.log" > "$tmp/hl.out" 2>&1; rc=$?
want_table='class                  requests   share  backend
event_send                    2   14.3%  event_send
sync                          2   14.3%  sync
admin                         1    7.1%  main
blocked                       1    7.1%  blocked (404)
client                        1    7.1%  client
device_lists                  1    7.1%  device_lists
encryption                    1    7.1%  encryption
federation                    1    7.1%  federation
federation_send               1    7.1%  federation_send
initial_sync                  1    7.1%  initial_sync
media                         1    7.1%  media
receipts                      1    7.1%  receipts
total                        14  100.0%'
d=$(diff <(echo "$want_table") <(table "$tmp/hl.out") | head -6 | tr '\n' ' ')
[ $rc = 0 ] || d="exit $rc $d"
check haproxy/class-table "$d"
grep -q '^not replayed (not an access-log line): line 1, 9$' "$tmp/hl.out" \
    && grep -q '^not replayed (no HTTP request in the line): line 15$' "$tmp/hl.out"
check haproxy/syslog-messages-not-replayed "$([ $? = 0 ] || grep 'not replayed' "$tmp/hl.out" | tr '\n' ' ')"
# worker-named servers map by themselves (event_creator_1 = event-creator-1), the rest need --map
grep -q '^moved: 3 of 9 ' "$tmp/hl.out" \
    && grep -q '(--map FROM=PROCESS): federation_inbound/fed_in_a (1), initial_sync/initial_sync (1), sync/sync_1 (1), sync/sync_2 (1)$' "$tmp/hl.out"
check haproxy/unmapped-servers "$([ $? = 0 ] || grep -E '^moved|--map' "$tmp/hl.out" | tr '\n' ' ')"
want_moves='client-reader-1 -> encryption 1
main -> device_lists 1
main -> receipts 1'
d=$(diff <(echo "$want_moves") <(moves "$tmp/hl.out") | tr '\n' ' ')
check haproxy/moves "$d"
syn replay --config "$cfg" --map 'sync/sync_*=synchrotron-*' --map fed_in_a=federation-inbound-2 \
    --map 'initial_sync/*=synchrotron-1' "$logs/haproxy-httplog.log" > "$tmp/hm.out" 2>&1
want_moves='client-reader-1 -> encryption 1
main -> device_lists 1
main -> receipts 1
synchrotron-1 -> initial_sync 1'
d=$(diff <(echo "$want_moves") <(moves "$tmp/hm.out") | tr '\n' ' ')
grep -q '^moved: 4 of 13 ' "$tmp/hm.out" && ! grep -q 'no Synapse process' "$tmp/hm.out" || d="$d $(grep '^moved' "$tmp/hm.out")"
check haproxy/map "$d"
l=$(leaks "$tmp/hl.out" "$tmp/hm.out")
check haproxy/no-token-in-output "$([ -z "$l" ] || echo "output contains: $l")"
# a captured Authorization header in the log is never echoed
check haproxy/captured-header-not-echoed "$(grep -F '{Bearer' "$tmp/hl.out")"

# ---------------------------------------------------------------- errors
expect_exit() {   # name code args...
    local name=$1 code=$2; shift 2
    syn "$@" > "$tmp/e.out" 2> "$tmp/e.err"; local rc=$?
    local why=""
    [ "$rc" = "$code" ] || why="exit $rc, want $code"
    [ -s "$tmp/e.err" ] || [ "$code" = 0 ] || why="${why:+$why; }nothing on stderr"
    l=$(leaks "$tmp/e.out" "$tmp/e.err"); [ -z "$l" ] || why="${why:+$why; }leaks $l"
    check "errors/$name" "$why"
}
expect_exit missing-log 1 replay --config "$cfg" "$tmp/no-such.log"
grep -q "no-such.log" "$tmp/e.err" || fail errors/missing-log-named "stderr does not name the file: $(head -1 "$tmp/e.err")"
expect_exit directory 1 replay --config "$cfg" "$tmp"
: > "$tmp/empty.log"
expect_exit empty-log 1 replay --config "$cfg" "$tmp/empty.log"
grep -v 'HTTP/' "$logs/haproxy-httplog.log" > "$tmp/none.log"
printf 'this is not a log syt_YWxpY2U_cpWfMlWDsdSPAxqnkxeL_2ShcHE\n' >> "$tmp/none.log"
expect_exit no-request-line 1 replay --config "$cfg" "$tmp/none.log"
expect_exit wrong-format-nginx 1 replay --config "$cfg" --format nginx "$logs/haproxy-httplog.log"
expect_exit wrong-format-haproxy 1 replay --config "$cfg" --format haproxy "$logs/nginx-upstream.log"
mkdir -p "$tmp/bad"; printf 'synapse:\n  homeserver: nope.yaml\nbogus: 1\n' > "$tmp/bad/synroute.yaml"
expect_exit bad-config 1 replay --config "$tmp/bad/synroute.yaml" "$logs/nginx-upstream.log"
grep -q 'synroute.yaml:3' "$tmp/e.err" || fail errors/bad-config-file-line "no file:line in: $(head -2 "$tmp/e.err" | tr '\n' ' ')"
expect_exit bad-version 1 replay --config "$cfg" --synapse-version banana "$logs/nginx-upstream.log"
expect_exit no-args 2 replay
expect_exit two-logs 2 replay --config "$cfg" "$logs/nginx-upstream.log" "$logs/nginx-combined.log"
expect_exit unknown-option 2 replay --config "$cfg" --frobnicate "$logs/nginx-upstream.log"
expect_exit bad-format 2 replay --config "$cfg" --format apache "$logs/nginx-upstream.log"
expect_exit map-without-equals 2 replay --config "$cfg" --map sync1 "$logs/nginx-upstream.log"
expect_exit map-unknown-process 2 replay --config "$cfg" --map sync1=no-such-worker "$logs/nginx-upstream.log"
expect_exit config-needs-value 2 replay "$logs/nginx-upstream.log" --config
expect_exit no-config 2 replay "$logs/nginx-upstream.log"
expect_exit help 0 replay --help
grep -q '^Usage: synroute replay' "$tmp/e.out" || fail errors/help-text "replay --help printed no usage"
syn --help | grep -q '^  replay ' || fail errors/main-help "synroute --help does not list replay"

# ---------------------------------------------------------------- live: HAProxy running examples/full
alice=$(standin token alice); bob=$(standin token bob)
extra_secrets="${alice#syt_} ${bob#syt_}"
AS=example-as-token-not-a-secret
XM='X-Matrix origin="remote.example",destination="example.org",key="ed25519:a1",sig="c2ln"'
# method | target | Authorization | curl extra
MIX="GET|/_matrix/client/v3/sync?since=s1&timeout=0|Bearer $alice|
GET|/_matrix/client/v3/sync?since=s2&access_token=$bob||
GET|/_matrix/client/v3/sync?timeout=0|Bearer $bob|
GET|/_matrix/client/r0/sync?since=s3&full_state=true|Bearer $alice|
POST|/_matrix/client/unstable/org.matrix.simplified_msc3575/sync?pos=p1|Bearer $alice|
POST|/_matrix/client/unstable/org.matrix.simplified_msc3575/sync|Bearer $alice|
PUT|/_matrix/client/v3/rooms/%21abc%3Aexample.org/send/m.room.message/t1|Bearer $alice|
PUT|/_matrix/client/v3/rooms/!abc:example.org/state/m.room.topic/|Bearer $alice|
GET|/_matrix/client/v3/rooms/%21abc%3Aexample.org/messages?dir=b|Bearer $bob|
PUT|/_matrix/federation/v1/send/1700000000001|$XM|
GET|/_matrix/federation/v1/event/%24ev1|$XM|
GET|/_matrix/client/v1/media/download/example.org/abc|Bearer $alice|
GET|/_matrix/media/v3/download/example.org/abc?access_token=$alice||
PUT|/_matrix/client/v3/rooms/%21abc%3Aexample.org/typing/%40alice%3Aexample.org|Bearer $alice|
PUT|/_matrix/client/v3/sendToDevice/m.room.encrypted/t2|Bearer $alice|
POST|/_matrix/client/v3/keys/query|Bearer $alice|
POST|/_matrix/client/v3/keys/upload|Bearer $alice|
POST|/_matrix/client/v3/login||
GET|/_matrix/client/v3/login/sso/redirect?redirectUrl=https%3A%2F%2Fapp.example%2F||
GET|/_matrix/client/v3/pushrules/|Bearer $alice|
PUT|/_matrix/client/v3/pushrules/global/override/x|Bearer $alice|
POST|/_matrix/client/v3/user_directory/search|Bearer $alice|
GET|/_matrix/client/versions||
GET|/_synapse/admin/v1/server_version?access_token=$alice||
GET|/_synapse/admin/v1/server_version||--interface 127.0.0.2
POST|/_synapse/replication/send_event/%24ev2/x||
POST|/_synapse/mas/sync_devices||
GET|/_matrix/client/v3/%zz||
PUT|/_matrix/client/v3/rooms/%21bridge%3Aexample.org/send/m.room.message/b1?user_id=%40irc_dan%3Aexample.org|Bearer $AS|
PUT|/_matrix/client/v3/rooms/%21bridge%3Aexample.org/send/m.room.message/b2?access_token=$AS||"
nmix=$(grep -c . <<<"$MIX")

port=24082
busy=$(ss -Hltn 2>/dev/null | awk '{print $4}' | grep -E ":($port|240[0-9][0-9])\$" | head -3 | tr '\n' ' ')
live=1
if [ -n "$busy" ]; then fail live/ports "ports busy: $busy"; live=0; fi
start_standins() {
    standin config "$cfg" > "$tmp/standin.cfg"
    haproxy -db -f "$tmp/standin.cfg" > "$tmp/standin.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 30); do curl -fs -o /dev/null http://127.0.0.1:24020/health && return 0; sleep 0.1; done
    return 1
}
run_mix() {   # haproxy.cfg log
    haproxy -db -f "$1" > "$2" 2>&1 &
    local hp=$!
    # wait for the port without a request (an HTTP probe would be logged;
    # a connection that sends nothing is not: option dontlognull)
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    : > "$2.workers"
    while IFS='|' read -r method target auth extra; do
        [ -z "$method" ] && continue
        local h=(); [ -n "$auth" ] && h=(-H "Authorization: $auth")
        # shellcheck disable=SC2086
        curl -s -o /dev/null -w '%header{x-worker}\n' -X "$method" --path-as-is $extra "${h[@]}" \
            "http://127.0.0.1:$port$target" >> "$2.workers"
    done <<<"$MIX"
    sleep 0.3
    stop_pid "$hp"
}
if [ $live = 1 ] && ! start_standins; then fail live/standins "stand-ins did not start"; live=0; fi

if [ $live = 1 ]; then
    # 1. synroute's own log-format (path only, class= and backend=)
    SYNROUTE_ROOT=$root run_mix examples/full/haproxy.cfg "$tmp/live.log"
    n=$(grep -c ' class=' "$tmp/live.log")
    check live/logged "$([ "$n" = "$nmix" ] || echo "HAProxy logged $n of $nmix requests: $(grep -m2 -E 'ALERT|error' "$tmp/live.log" | tr '\n' ' ')")"
    syn replay --config "$cfg" --all "$tmp/live.log" > "$tmp/live.out" 2>&1; rc=$?
    check live/exit-0 "$([ $rc = 0 ] || head -3 "$tmp/live.out" | tr '\n' ' ')"
    grep -q "^$nmix requests (synroute $nmix); " "$tmp/live.out"
    check live/every-request-read "$([ $? = 0 ] || sed -n 2p "$tmp/live.out")"
    # independently of replay's own comparison: each logged class/backend
    # against replay's decision for that line ("-": the frontend answered
    # before routing: replication/MAS 404, admin 403, bad escape 400)
    bad=""
    while read -r ln lc lb; do
        got=$(sed -n '/^requests:/,/^$/p' "$tmp/live.out" | awk -v l="$ln" '$1 == "line" && $2 == l { print $3 " " $4; exit }')
        if [ "$lc" = - ]; then
            case ${got#* } in blocked|forbidden|rejected) ;; *) bad="$bad line $ln: logged -, replay '$got';" ;; esac
        elif [ "$got" != "$lc $lb" ]; then
            bad="$bad line $ln: logged '$lc $lb', replay '$got';"
        fi
    done < <(awk '/ class=/ { c = ""; b = ""; for (i = 1; i <= NF; i++) { if ($i ~ /^class=/) c = substr($i, 7); if ($i ~ /^backend=/) b = substr($i, 9) } print NR, c, b }' "$tmp/live.log")
    # what a log cannot show: both appservice requests (the token is in the
    # header or the query, neither is logged) are replayed as event_send
    want_bad=" line $(grep -n 'm.room.message/b1 class' "$tmp/live.log" | cut -d: -f1): logged 'event_send appservice', replay 'event_send event_send'; line $(grep -n 'm.room.message/b2 class' "$tmp/live.log" | cut -d: -f1): logged 'event_send appservice', replay 'event_send event_send';"
    check live/agrees-with-haproxy "$([ "$bad" = "$want_bad" ] || echo "${bad:-no difference at all (want the two appservice requests)}")"
    k=$((nmix - 2))
    grep -q "^synroute's own log: $k of $nmix requests get the class and backend it logged$" "$tmp/live.out"
    check live/replay-own-comparison "$([ $? = 0 ] || grep "own log" "$tmp/live.out")"
    # recorded servers are members of the pools replay picks (no move but the two appservice requests)
    want_moves='appservice-client-1 -> event_send 2'
    d=$(diff <(echo "$want_moves") <(moves "$tmp/live.out") | tr '\n' ' ')
    grep -q 'no Synapse process' "$tmp/live.out" && d="$d unmapped: $(grep 'no Synapse process' "$tmp/live.out")"
    check live/no-move "$d"
    l=$(leaks "$tmp/live.out" "$tmp/live.log")
    check live/no-token "$([ -z "$l" ] || echo "contains: $l")"

    # 2. `option httplog` with a syslog (RFC 3164) prefix: the query is logged
    sed -e 's/^\(    log stdout format\) raw /\1 rfc3164 /' -e 's/^    log-format .*/    option httplog/' \
        examples/full/haproxy.cfg > "$tmp/httplog.cfg"
    SYNROUTE_ROOT=$root run_mix "$tmp/httplog.cfg" "$tmp/httplog.log"
    n=$(grep -c 'haproxy\[[0-9]*\]: .* "[A-Z]* /' "$tmp/httplog.log")
    check live/httplog-logged "$([ "$n" = "$nmix" ] || echo "HAProxy logged $n httplog lines of $nmix: $(grep -m2 -E 'ALERT|error' "$tmp/httplog.log" | tr '\n' ' ')")"
    syn replay --config "$cfg" --format haproxy --all "$tmp/httplog.log" > "$tmp/httplog.out" 2>&1
    grep -q "^$nmix requests (haproxy $nmix); " "$tmp/httplog.out"
    check live/httplog-every-request-read "$([ $? = 0 ] || sed -n 2p "$tmp/httplog.out")"
    # the query token of b2 is read: only b1 (token in the header) seems to move
    want_moves='appservice-client-1 -> event_send 1'
    d=$(diff <(echo "$want_moves") <(moves "$tmp/httplog.out") | tr '\n' ' ')
    grep -q 'no Synapse process' "$tmp/httplog.out" && d="$d unmapped: $(grep 'no Synapse process' "$tmp/httplog.out")"
    grep -q '^  line [0-9]* .*m.room.message/b1?user_id=%40irc_dan%3Aexample.org  (class event_send)$' "$tmp/httplog.out" || d="$d b1 not listed as moving"
    check live/httplog-no-move "$d"
    # same classes as synroute logged (httplog sees the query: sync vs initial_sync from `since`)
    d=$(diff <(awk '/ class=[a-z]/ { for (i = 1; i <= NF; i++) if ($i ~ /^class=/) print substr($i, 7) }' "$tmp/live.log" | sort | uniq -c) \
             <(sed -n '/^requests:/,/^$/p' "$tmp/httplog.out" | awk '$1 == "line" && $4 !~ /^(blocked|forbidden|rejected)$/ { print $3 }' | sort | uniq -c) | tr '\n' ' ')
    check live/httplog-classes-as-logged "$d"
    grep -q 'access_token=' "$tmp/httplog.log" || fail live/httplog-has-tokens "the httplog run logged no query token (the masking test tests nothing)"
    l=$(leaks "$tmp/httplog.out")
    check live/httplog-no-token "$([ -z "$l" ] || echo "replay output contains: $l")"
fi

# ---------------------------------------------------------------- live: nginx, routed the old way
if [ $live = 1 ] && command -v nginx >/dev/null; then
    mkdir -p "$tmp/nginx"
    cat > "$tmp/nginx/nginx.conf" <<EOF
# the old set-up: sync workers and media by location, the rest on main
daemon off;
master_process off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 64; }
http {
    log_format upstream '\$remote_addr - \$remote_user [\$time_local] "\$request" \$status \$body_bytes_sent '
                        '"\$http_referer" "\$http_user_agent" \$upstream_addr';
    access_log $tmp/nginx/access.log upstream;
    client_body_temp_path $tmp/nginx/body; proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fcgi; uwsgi_temp_path $tmp/nginx/uwsgi; scgi_temp_path $tmp/nginx/scgi;
    upstream main { server 127.0.0.1:24020; }
    upstream sync { server 127.0.0.1:24022; server 127.0.0.1:24023; }
    upstream media { server 127.0.0.1:24040; }
    server {
        listen 127.0.0.1:24095;
        location / { proxy_pass http://main; }
        location ~ ^/_matrix/client/(r0|v3)/sync\$ { proxy_pass http://sync; }
        location ^~ /_matrix/media/ { proxy_pass http://media; }
        location ^~ /_matrix/client/v1/media/ { proxy_pass http://media; }
        location ~ ^/_synapse/replication/ { return 404; }
    }
}
EOF
    nginx -e "$tmp/nginx/error.log" -p "$tmp/nginx/" -c "$tmp/nginx/nginx.conf" &
    ngx=$!; pids+=($ngx)
    for _ in $(seq 30); do (exec 3<>/dev/tcp/127.0.0.1/24095) 2>/dev/null && break; sleep 0.1; done
    NMIX="GET /_matrix/client/v3/sync?since=s1&access_token=$alice
GET /_matrix/client/v3/sync?access_token=$bob
GET /_matrix/client/v1/media/download/example.org/abc
GET /_matrix/media/v3/thumbnail/example.org/abc?width=8&height=8&access_token=$alice
POST /_matrix/client/v3/keys/query?access_token=$alice
PUT /_matrix/client/v3/rooms/%21abc%3Aexample.org/send/m.room.message/n1?access_token=$alice
GET /_matrix/client/versions
POST /_synapse/replication/send_event/x
GET /_synapse/admin/v1/server_version"
    while read -r m t; do curl -s -o /dev/null -X "$m" "http://127.0.0.1:24095$t"; done <<<"$NMIX"
    sleep 0.2
    stop_pid "$ngx"
    n=$(grep -c . "$tmp/nginx/access.log" 2>/dev/null)
    check nginx-live/logged "$([ "$n" = 9 ] || echo "nginx logged ${n:-no} lines of 9: $(head -3 "$tmp/nginx/error.log" | tr '\n' ' ')")"
    syn replay --config "$cfg" --format nginx "$tmp/nginx/access.log" > "$tmp/ngx.out" 2>&1
    want_moves='main -> client 1
main -> encryption 1
main -> event_send 1
synchrotron-1 -> initial_sync 1'
    # the initial sync may have gone to either sync server: accept both names
    d=$(diff <(echo "$want_moves") <(moves "$tmp/ngx.out" | sed 's/^synchrotron-2 /synchrotron-1 /') | tr '\n' ' ')
    grep -q '^moved: 4 of 8 requests with a known upstream' "$tmp/ngx.out" \
        && grep -q '1 request was answered by the proxy itself' "$tmp/ngx.out" || d="$d $(grep -A2 '^moved' "$tmp/ngx.out" | tr '\n' ' ')"
    check nginx-live/moves "$d"
    l=$(leaks "$tmp/ngx.out")
    check nginx-live/no-token "$([ -z "$l" ] || echo "replay output contains: $l")"
elif [ $live = 1 ]; then
    fail nginx-live/nginx "nginx is not installed (make test installs nginx-light)"
fi
stop_all
exit $(( fails > 0 ))
