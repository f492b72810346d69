#!/usr/bin/env bash
# tests/traffic/stickiness.sh - inside a pool, traffic that must keep reaching
# one process does, through real HAProxy with the generated configuration:
#   sync-100-header / sync-100-query   100 of 100 syncs of one user -> one sync
#                                      worker, the token in the header or the query
#   initial-sync-user                  a user's initial syncs -> one initial_sync worker
#   event-send-room-encoding           !r%3Ahs and !r:hs -> the same event_send worker
#   event-send-rooms-spread            different rooms use more than one worker
#   messages-room                      /messages of one room (any user) -> one worker
#   federation-origin-any-source       /send from one origin over 8 source
#                                      addresses (127.0.0.2-9) -> one worker
#   federation-origins-one-source      several origins behind one address use
#                                      more than one worker
#   stick-table-hashed-keys            the sync stick table holds 16-hex keys only
T=traffic/stickiness
source "$(dirname "$0")/lib.bash"
make_dep 4
gen_cfg a
start_standins
start_haproxy a

alice=$(standin token alice); bob=$(standin token bob)
S=/_matrix/client/v3/sync

same_worker() {   # name, file of worker names (one per line), expected count
    local n u
    n=$(grep -c . "$2"); u=$(sort -u "$2" | grep -c .)
    if [ "$n" -ne "$3" ]; then echo "$n answers of $3"; elif [ "$u" -ne 1 ]; then echo "reached $u workers: $(sort "$2" | uniq -c | tr -s ' \n' ' ')"; fi
}

# sync: the token in the Authorization header, then in the query
for i in $(seq 100); do echo "$base$S?since=s$i&timeout=0"; done | urls > "$tmp/u.h"
curl -s -K "$tmp/u.h" -H "Authorization: Bearer $alice" -o /dev/null -w '%header{x-worker}\n' > "$tmp/w.h"
why=$(same_worker x "$tmp/w.h" 100)
[ -z "$why" ] && ! grep -q '^synchrotron-' "$tmp/w.h" && why="answered by $(head -1 "$tmp/w.h"), not a sync worker"
check sync-100-header "$why"
for i in $(seq 100); do echo "$base$S?since=s$i&access_token=$alice"; done | urls > "$tmp/u.q"
curl -s -K "$tmp/u.q" -o /dev/null -w '%header{x-worker}\n' > "$tmp/w.q"
why=$(same_worker x "$tmp/w.q" 100)
[ -z "$why" ] && [ "$(head -1 "$tmp/w.q")" != "$(head -1 "$tmp/w.h")" ] && why="query token reached $(head -1 "$tmp/w.q"), header token $(head -1 "$tmp/w.h")"
check sync-100-query "$why"

# initial sync (no since): its own pool, one worker per user
for i in $(seq 20); do echo "$base$S?access_token=$bob"; done | urls > "$tmp/u.i"
curl -s -K "$tmp/u.i" -o /dev/null -w '%header{x-worker}\n' > "$tmp/w.i"
why=$(same_worker x "$tmp/w.i" 20)
[ -z "$why" ] && ! grep -q '^initial-synchrotron-' "$tmp/w.i" && why="answered by $(head -1 "$tmp/w.i")"
check initial-sync-user "$why"

# event_send: the room ID percent-encoded or not is one key
: > "$tmp/w.r"
for i in $(seq 10); do
    worker -X PUT -H "Authorization: Bearer $alice" "$base/_matrix/client/v3/rooms/!r%3Ahs/send/m.room.message/a$i" >> "$tmp/w.r"; echo >> "$tmp/w.r"
    worker -X PUT -H "Authorization: Bearer $bob" "$base/_matrix/client/v3/rooms/!r:hs/send/m.room.message/b$i" >> "$tmp/w.r"; echo >> "$tmp/w.r"
done
why=$(same_worker x "$tmp/w.r" 20)
[ -z "$why" ] && ! grep -q '^event-creator-' "$tmp/w.r" && why="answered by $(head -1 "$tmp/w.r")"
check event-send-room-encoding "$why"
for i in $(seq 20); do echo "$base/_matrix/client/v3/rooms/!room$i:hs/send/m.room.message/t$i"; done | urls > "$tmp/u.rs"
curl -s -K "$tmp/u.rs" -X PUT -H "Authorization: Bearer $alice" -o /dev/null -w '%header{x-worker}\n' > "$tmp/w.rs"
u=$(sort -u "$tmp/w.rs" | grep -c '^event-creator-')
if [ "$u" -ge 2 ]; then ok event-send-rooms-spread; else fail event-send-rooms-spread "20 rooms used $u event_send worker(s)"; fi

# /messages: one room, any user, always one worker
: > "$tmp/w.m"
for i in $(seq 15); do
    for t in "$alice" "$bob"; do
        worker -H "Authorization: Bearer $t" "$base/_matrix/client/v3/rooms/!talk:example.org/messages?dir=b&from=t$i" >> "$tmp/w.m"; echo >> "$tmp/w.m"
    done
done
why=$(same_worker x "$tmp/w.m" 30)
[ -z "$why" ] && ! grep -q '^messages-' "$tmp/w.m" && why="answered by $(head -1 "$tmp/w.m")"
check messages-room "$why"

# federation /send: keyed by the X-Matrix origin, not by the source address
xm() { echo "Authorization: X-Matrix origin=\"$1\",destination=\"example.org\",key=\"ed25519:a1\",sig=\"c2ln\""; }
: > "$tmp/w.f"
for a in 2 3 4 5 6 7 8 9; do
    for i in 1 2; do
        worker --interface "127.0.0.$a" -X PUT -H "$(xm remote.example)" "$base/_matrix/federation/v1/send/$a$i" >> "$tmp/w.f"; echo >> "$tmp/w.f"
    done
done
why=$(same_worker x "$tmp/w.f" 16)
sleep 0.2
srcs=$(grep '/_matrix/federation/v1/send/' "$tmp/a.log" | grep -v origin | cut -d: -f1 | sort -u | grep -c '^127\.0\.0\.[2-9]$')
[ "$srcs" -eq 8 ] || why="${why:+$why; }HAProxy saw $srcs source addresses, want 8"
[ -z "$why" ] && ! grep -q '^federation-inbound-' "$tmp/w.f" && why="answered by $(head -1 "$tmp/w.f")"
check federation-origin-any-source "$why"
: > "$tmp/w.o"
for o in $(seq 12); do
    worker --interface 127.0.0.2 -X PUT -H "$(xm "origin$o.example")" "$base/_matrix/federation/v1/send/o$o" >> "$tmp/w.o"; echo >> "$tmp/w.o"
done
u=$(sort -u "$tmp/w.o" | grep -c '^federation-inbound-')
if [ "$u" -ge 2 ]; then ok federation-origins-one-source; else fail federation-origins-one-source "12 origins from one address used $u worker(s)"; fi

# the stick table holds hashed keys only
tbl=$(sock a "show table sync")
keys=$(grep -c 'key=' <<<"$tbl"); bad=$(grep 'key=' <<<"$tbl" | grep -vcE 'key=[0-9a-f]{16} ')
if [ "$keys" -ge 1 ] && [ "$bad" -eq 0 ] && ! grep -q 'syt_' <<<"$tbl"; then ok stick-table-hashed-keys
else fail stick-table-hashed-keys "$keys keys, $bad not 16 hex digits"; fi
exit $(( fails > 0 ))
