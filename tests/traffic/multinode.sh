#!/usr/bin/env bash
# tests/traffic/multinode.sh - examples/multinode: two HAProxy nodes sharing
# their stick tables through a `peers` section generated from synroute.yaml.
#   regenerate / haproxy-c      the checked-in haproxy-node{1,2}.cfg are what
#                               `synroute haproxy --portable` writes; haproxy -c passes
#   unseen-keys-same-worker     300 users node B has routed, then (B gone, its
#                               table with it) a fresh node A: A picks the same
#                               worker for every one of them (the consistent hash
#                               only depends on the shared config)
#   learned-on-a-same-on-b      node A with synchrotron-X in maintenance (on A only)
#                               assigns X's users elsewhere; node B, started
#                               afterwards with X up, learns A's table through
#                               peers and routes every one of them like A did
#                               (not to X, its hash choice)
#   learned-on-b-same-on-a      and the other way round (X in maintenance on B
#                               only), while both run
#   tables-hashed               the peers-shared tables hold 16-hex keys only
T=traffic/multinode
source "$(dirname "$0")/lib.bash"
ex=examples/multinode
for n in 1 2; do
    if syn haproxy --portable "$ex/node$n.yaml" -o "$tmp/node$n.gen.cfg" 2>"$tmp/gen.err" &&
       diff -q "$ex/haproxy-node$n.cfg" "$tmp/node$n.gen.cfg" >/dev/null; then ok "node$n/regenerate"
    else fail "node$n/regenerate" "$ex/haproxy-node$n.cfg differs from --portable output $(head -2 "$tmp/gen.err" | tr '\n' ' ')"; fi
    if out=$(timeout 20 haproxy -c -f "$ex/haproxy-node$n.cfg" 2>&1); then ok "node$n/haproxy-c"
    else fail "node$n/haproxy-c" "$(grep -m2 ALERT <<<"$out" | tr '\n' ' ')"; fi
    cp "$ex/haproxy-node$n.cfg" "$tmp/node$n.cfg"
    printf 'global\n    noreuseport\n    stats socket %s level admin\n' "$tmp/node$n.sock" > "$tmp/node$n.stats.cfg"
done
wait_ports_free '228[0-9][0-9]'

standin config "$ex/node1.yaml" > "$tmp/standin.cfg"
haproxy -db -f "$tmp/standin.cfg" > "$tmp/standin.log" 2>&1 9>&- & pids+=($!)
for _ in $(seq 50); do curl -fs -o /dev/null http://127.0.0.1:22813/health && break; sleep 0.1; done
A=http://127.0.0.1:22881 B=http://127.0.0.1:22882
S=/_matrix/client/v3/sync
mapfile -t toks < <(standin token $(seq -f 'mn%03g' 300))
for t in "${toks[@]}"; do echo "/_matrix/client/v3/sync?since=s1&timeout=0&access_token=$t"; done > "$tmp/paths"
measure() {   # base file [first last]
    sed -n "${3:-1},${4:-300}p" "$tmp/paths" | sed "s#^#$1#" | urls > "$tmp/m.K"
    curl -s -K "$tmp/m.K" -w '%header{x-worker}\n' > "$2"
}
entries() { sock "$1" "show table sync" | grep -c 'key='; }

# 1. B alone routes 300 users, then goes away with its table
HP_URL=$B start_haproxy node2
measure "$B" "$tmp/b0"
stop_pid "${hp_pid[node2]}"
# 2. a fresh A alone: the same choices
HP_URL=$A start_haproxy node1
measure "$A" "$tmp/a0" 1 150
diff=$(paste <(head -150 "$tmp/b0") "$tmp/a0" | awk '$1 != $2 || $1 !~ /^synchrotron-/' | wc -l)
check unseen-keys-same-worker "$([ "$diff" -eq 0 ] && [ "$(grep -c . "$tmp/a0")" -eq 150 ] || echo "$diff of 150 users differ between the nodes")"

# 3. on A only, X (the hash choice of most of users 151-300) is in maintenance
X=$(sed -n '151,300p' "$tmp/b0" | sort | uniq -c | sort -rn | awk 'NR==1 {print $2}')
sock node1 "set server sync/$X state maint" >/dev/null
measure "$A" "$tmp/a1" 151 300
# 4. B starts (X up there) and learns A's table
HP_URL=$B start_haproxy node2
have=0
for _ in $(seq 50); do have=$(entries node2); [ "$have" -ge 300 ] && break; sleep 0.1; done
measure "$B" "$tmp/b1" 151 300
nx=$(sed -n '151,300p' "$tmp/b0" | grep -cx "$X")
diff=$(paste "$tmp/a1" "$tmp/b1" | awk '$1 != $2' | wc -l)
onx=$(grep -cx "$X" "$tmp/b1")
why=""
[ "$have" -ge 300 ] || why="node B learned $have of 300 entries"
[ "$nx" -ge 1 ] || why="${why:+$why; }(setup: no user hashes to $X)"
[ "$diff" -eq 0 ] || why="${why:+$why; }$diff of 150 users routed differently on B"
[ "$onx" -eq 0 ] || why="${why:+$why; }$onx users on $X on B although A assigned them elsewhere"
check learned-on-a-same-on-b "${why:+$why ($nx users hash to $X)}"

# 5. the other way round: X back on A, in maintenance on B; new users
#    learned on B (none on X) are routed by A exactly like B did, although X is
#    up on A and would be the hash choice of about a third of them
sock node1 "set server sync/$X state ready" >/dev/null
wait_state node1 sync "$X" UP
sock node2 "set server sync/$X state maint" >/dev/null
mapfile -t toks2 < <(standin token $(seq -f 'mb%03g' 100))
for t in "${toks2[@]}"; do echo "/_matrix/client/v3/sync?since=s1&timeout=0&access_token=$t"; done > "$tmp/paths"
measure "$B" "$tmp/b2" 1 100
for _ in $(seq 50); do [ "$(entries node1)" -ge 400 ] && break; sleep 0.1; done
measure "$A" "$tmp/a2" 1 100
diff=$(paste "$tmp/b2" "$tmp/a2" | awk '$1 != $2' | wc -l)
why=""
[ "$(grep -c '^synchrotron-' "$tmp/a2")" -eq 100 ] || why="$(grep -c '^synchrotron-' "$tmp/a2") of 100 answered by sync workers on A"
[ "$diff" -eq 0 ] || why="${why:+$why; }$diff of 100 users routed differently on A"
grep -qx "$X" "$tmp/a2" && why="${why:+$why; }A sent users to $X"
check learned-on-b-same-on-a "$why"

dump=$( { sock node1 "show table sync"; sock node2 "show table sync"; } | grep 'key=')
n=$(printf '%s\n' "$dump" | grep -c 'key=')
bad=$(printf '%s\n' "$dump" | grep 'key=' | grep -vcE 'key=[0-9a-f]{16} ')
check tables-hashed "$( if [ "$n" -eq 0 ]; then echo "the table dumps hold no entries (dump failed?)";
                        elif [ "$bad" -ne 0 ]; then echo "$bad entries are not 16-hex keys"; fi )"
exit $(( fails > 0 ))
