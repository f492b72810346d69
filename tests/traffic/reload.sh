#!/usr/bin/env bash
# tests/traffic/reload.sh - a reload keeps every user, room and origin on its
# server, with no failed request, through the local-only peers section the
# generated configuration has when synroute.yaml names no peers.
#
# Two ways to reload, as Debian's systemd unit and a plain init script do:
#   master-worker  haproxy -W (the unit runs -Ws): `haproxy -c`, then SIGUSR2
#                  to the master; the master hands the listeners to the new
#                  worker (-x over its socket pair)
#   -sf            a new haproxy -sf <old pid>
# Under load (parallel curl loops over known users' syncs, rooms' sends and
# /messages, origins' federation sends), each way reloads twice in a row. Before
# the first reload the test waits until `synroute status` reports the
# stick tables in sync: HAProxy 2.6 (before the upstream fix, see
# docs/operations.md) hands its tables over only once its own resync is done,
# 5 s after a cold start. Checked: no request failed, every key is answered
# by the server it had before, and the new process's tables hold every key.
T=traffic/reload
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"
need_lua_socket

make_dep 4
gen_cfg a
grep -q '^peers synroute$' "$tmp/a.cfg" && grep -q '^    localpeer local$' "$tmp/a.cfg" ||
    { fail setup "the generated configuration has no local peers section"; exit 1; }
start_standins
export SYNROUTE_CONFIG=$tmp/dep/synroute.yaml
S=/_matrix/client/v3/sync
NU=40 NR=20 NO=20
mapfile -t toks < <(standin token $(seq -f 'ru%02g' $NU))
tok=$(standin token alice)

# one curl config per key kind: "next"-separated requests, each printing
# "<kind> <key> <code> <worker>"
{
    for i in $(seq $NU); do
        printf 'url = "%s%s?since=s1"\nheader = "Authorization: Bearer %s"\noutput = "/dev/null"\nwrite-out = "user %d %%{http_code} %%header{x-worker}\\n"\nnext\n' \
            "$base" "$S" "${toks[$((i - 1))]}" "$i"
    done
    for i in $(seq $NR); do
        printf 'url = "%s/_matrix/client/v3/rooms/!room%d:example.org/send/m.room.message/t%d"\nrequest = "PUT"\nheader = "Authorization: Bearer %s"\noutput = "/dev/null"\nwrite-out = "room %d %%{http_code} %%header{x-worker}\\n"\nnext\n' \
            "$base" "$i" "$i" "$tok" "$i"
        printf 'url = "%s/_matrix/client/v3/rooms/!room%d:example.org/messages?dir=b"\nheader = "Authorization: Bearer %s"\noutput = "/dev/null"\nwrite-out = "msgs %d %%{http_code} %%header{x-worker}\\n"\nnext\n' \
            "$base" "$i" "$tok" "$i"
    done
    for i in $(seq $NO); do
        printf 'url = "%s/_matrix/federation/v1/send/%d"\nrequest = "PUT"\nheader = "Authorization: X-Matrix origin=\\"o%d.example\\",destination=\\"example.org\\",key=\\"ed25519:a\\",sig=\\"c2ln\\""\noutput = "/dev/null"\nwrite-out = "origin %d %%{http_code} %%header{x-worker}\\n"\nnext\n' \
            "$base" "$i" "$i" "$i"
    done
} > "$tmp/all.K"
NKEYS=$((NU + 2 * NR + NO))

pass() { curl -s -m 10 -K "$tmp/all.K" 2>/dev/null; }
# load LOG: passes in 3 parallel loops until $tmp/stop exists
loaders=()
load() {
    local j
    loaders=()
    for j in 1 2 3; do
        ( while [ ! -e "$tmp/stop" ]; do pass; done >> "$1.$j" ) 9>&- &
        pids+=($!); loaders+=($!)
    done
}
table_count() {   # entries of one table; "?" when the socket gave no table
    local out
    for _ in 1 2 3; do
        out=$(sock a "show table $1")
        grep -q '^# table: ' <<<"$out" && { grep -c 'key=' <<<"$out"; return; }
        sleep 0.2
    done
    echo "?"
}
PINNED="synchrotron-1 event-creator-1 federation-inbound-1"
synced() {   # wait (bounded) until synroute status reports the tables in sync
    for _ in $(seq 100); do
        syn status 2>/dev/null | grep -q '^stick tables: .*: in sync' && return 0
        sleep 0.1
    done
    return 1
}
# the worker pids of a master (its children), and the newest one
workers() { ps -o pid= --ppid "$1" | tr -d ' ' | sort -n; }
wait_one_worker() {   # master: wait until the old worker has left
    for _ in $(seq 100); do [ "$(workers "$1" | wc -l)" = 1 ] && return 0; sleep 0.1; done
    return 1
}

# the keys of a pass whose server differs from $tmp/before
moved_keys() { awk 'NR == FNR { w[$1 " " $2] = $4; next } w[$1 " " $2] != $4 { print $1, $2, w[$1 " " $2], "->", $4 }' "$tmp/before" -; }

run_case() {   # name: "mw" (master-worker, SIGUSR2) or "sf" (-sf)
    local how=$1 master="" cur new
    rm -f "$tmp/stop" "$tmp/load-$how".*
    if [ "$how" = mw ]; then
        haproxy -W -db -f "$tmp/a.cfg" -f "$tmp/a.stats.cfg" > "$tmp/a-$how.log" 2>&1 9>&- &
        master=$!; pids+=($master)
    else
        haproxy -db -f "$tmp/a.cfg" -f "$tmp/a.stats.cfg" > "$tmp/a-$how.log" 2>&1 9>&- &
        cur=$!; pids+=($cur)
    fi
    local t0
    t0=$(date +%s%N)
    for _ in $(seq 50); do curl -s -o /dev/null "$base/_matrix/client/versions" && break; sleep 0.1; done
    wait_state a sync synchrotron-4 UP || { fail "$how/setup" "HAProxy did not come up: $(grep -m2 ALERT "$tmp/a-$how.log")"; return; }
    past_grace a "$t0"
    # Pins that consistent hashing alone would not give: the first pass runs
    # with one server of each keyed pool drained, then they are back. A
    # process that starts with empty tables sends some keys to them again.
    local w
    for w in $PINNED; do syn drain "$w" > /dev/null || { fail "$how/setup" "drain $w failed"; return; }; done
    pass > "$tmp/first"
    for w in $PINNED; do syn ready "$w" > /dev/null; done
    wait_state a sync synchrotron-1 UP; wait_state a event_send event-creator-1 UP
    wait_state a federation_send federation-inbound-1 UP
    pass > "$tmp/before"
    local n0
    n0=$(awk '$3 == 200' "$tmp/before" | wc -l)
    [ "$n0" = $NKEYS ] || { fail "$how/setup" "first pass: $n0 of $NKEYS answered 200"; return; }
    check "$how/pins-hold-after-ready" "$(cmp -s "$tmp/first" "$tmp/before" || echo "keys moved when the drained servers came back: $(diff "$tmp/first" "$tmp/before" | head -3 | tr '\n' ' ')")"
    check "$how/tables-in-sync-before-reload" "$(synced || echo "synroute status never reported the stick tables in sync: $(syn status 2>&1 | tail -1)")"
    local t_sync t_fe t_ev t_fo
    t_sync=$(table_count sync); t_ev=$(table_count event_send); t_fe=$(table_count federation_send)
    load "$tmp/load-$how"
    sleep 1
    local r
    for r in 1 2; do
        if [ "$how" = mw ]; then
            local old
            old=$(workers "$master" | tail -1)
            haproxy -c -q -f "$tmp/a.cfg" -f "$tmp/a.stats.cfg" || { fail "$how/reload-$r" "haproxy -c failed"; break; }
            kill -USR2 "$master"
            for _ in $(seq 100); do
                new=$(workers "$master" | tail -1)
                [ -n "$new" ] && [ "$new" != "$old" ] && break
                sleep 0.05
            done
            wait_one_worker "$master" || { fail "$how/reload-$r" "the old worker did not leave"; break; }
        else
            # -x: the listening sockets from the old process (expose-fd listeners)
            haproxy -db -f "$tmp/a.cfg" -f "$tmp/a.stats.cfg" -x "$tmp/admin.sock" -sf "$cur" >> "$tmp/a-$how.log" 2>&1 9>&- &
            new=$!; pids+=($new)
            for _ in $(seq 100); do kill -0 "$cur" 2>/dev/null || break; sleep 0.05; done
            kill -0 "$cur" 2>/dev/null && { fail "$how/reload-$r" "the old process did not leave"; break; }
            cur=$new
        fi
        local got moved
        got="$(table_count sync) $(table_count event_send) $(table_count federation_send)"
        check "$how/reload-$r-tables-carried" "$([ "$got" = "$t_sync $t_ev $t_fe" ] ||
            echo "entries sync/event_send/federation_send after the reload: $got, before: $t_sync $t_ev $t_fe")"
        moved=$(pass | moved_keys | head -5 | tr '\n' ';')
        check "$how/reload-$r-every-key-keeps-its-server" "${moved:+moved: $moved}"
        sleep 1
    done
    touch "$tmp/stop"
    wait_loops
    local n bad
    n=$(cat "$tmp/load-$how".* | wc -l)
    bad=$(cat "$tmp/load-$how".* | awk '$3 != 200' | sort | uniq -c | sort -rn | head -3 | tr '\n' ';')
    check "$how/no-failed-request-under-load" "$([ "$n" -ge $((NKEYS * 2)) ] || echo "only $n requests"; [ -z "$bad" ] || echo "failed: $bad")"
    # requests that reached the new process before the old one had handed its
    # tables over are placed by hashing (the handover then restores the pins)
    echo "info $T/$how: $(cat "$tmp/load-$how".* | moved_keys | wc -l) of $n requests under load answered elsewhere during a handover"
    # control: without the tables, keys do move (else this test proves nothing)
    local tb moved
    for tb in sync event_send federation_send; do sock a "clear table $tb" > /dev/null; done
    moved=$(pass | awk 'NR == FNR { w[$1 " " $2] = $4; next } w[$1 " " $2] != $4' "$tmp/before" - | wc -l)
    check "$how/control-empty-tables-move-keys" "$([ "$moved" -gt 0 ] || echo "no key moved with empty tables: the pins equal the hash placement")"
    if [ -n "$master" ]; then stop_pid "$master"; else stop_pid "$cur"; fi
}
wait_loops() { local p; for p in "${loaders[@]}"; do wait "$p"; done; }

run_case mw
run_case sf
exit $(( fails > 0 ))
