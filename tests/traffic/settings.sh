#!/usr/bin/env bash
# tests/traffic/settings.sh - the traffic-policy settings of synroute.yaml
# (limits, peers, mas) and --synapse-version: bad values are reported with
# file:line by `synroute check`; good ones give a configuration HAProxy accepts.
#   bad/<case>          the problem is reported, exit 1
#   all-features/haproxy-c   limits + per_user + peers + mas.resolve + nbthread:
#                       haproxy -c passes without a warning (also --test-headers)
#   log-none            log: none, admin_networks: []: no warning, no log-format
#   all-features/lines  the generated lines are there (server maxconn, timeout
#                       queue, rate tables, localpeer, peers on the tables, mas action
#                       right after the key)
#   synapse-version     --synapse-version overrides synapse_version (check and haproxy)
T=traffic/settings
source "$(dirname "$0")/lib.bash"
make_dep 2

bad() {   # name, yaml, expected message part
    make_dep 2 "$2"
    out=$(syn check "$tmp/dep/synroute.yaml" 2>&1); rc=$?
    if [ "$rc" = 1 ] && grep -qF -- "$3" <<<"$out" && grep -qE 'synroute.yaml:[0-9]+: ' <<<"$out"; then ok "bad/$1"
    else fail "bad/$1" "exit $rc, want a line with '$3': $(head -3 <<<"$out" | tr '\n' ' ')"; fi
}
bad limits-unknown-pool 'limits: { nopool: { maxconn: 1 } }' "limits: unknown pool 'nopool'"
bad limits-no-maxconn 'limits: { sync: { queue: 3 } }' 'limits.sync: maxconn is required'
bad limits-zero 'limits: { sync: { maxconn: 0 } }' 'limits.sync.maxconn: expected a whole number'
bad limits-unknown-key 'limits: { sync: { maxconn: 1, burst: 2 } }' "limits.sync: unknown setting 'burst'"
bad limits-queue-timeout 'limits: { sync: { maxconn: 1, queue_timeout: soon } }' 'limits.sync.queue_timeout: expected a duration'
bad per-user-class 'limits: { per_user: { client: 3/10s } }' "limits.per_user: 'client' is not a class with a per-user key"
bad per-user-rate 'limits: { per_user: { sync: lots } }' 'limits.per_user.sync: expected requests/period'
bad peers-no-nodes 'peers: { local: a }' 'peers.nodes: expected a mapping'
bad peers-addr 'peers: { nodes: { a: nowhere } }' 'peers.nodes.a: expected host:port'
bad peers-local 'peers: { local: c, nodes: { a: "127.0.0.1:22201" } }' "peers.local: 'c' is not one of peers.nodes"
bad mas-resolve 'mas: { resolve: yes-please }' 'mas.resolve: expected true or false'
bad mas-timeout 'mas: { timeout: soon }' 'mas.timeout: expected a duration'
bad mas-unknown 'mas: { url: x }' "mas: unknown setting 'url'"

make_dep 2 'limits:
  initial_sync: { maxconn: 2, queue: 10, queue_timeout: 20s }
  main: { maxconn: 50 }
  per_user:
    initial_sync: 3/10s
    event_send: 20/1m
peers:
  local: node2
  nodes: { node1: "127.0.0.1:22201", node2: "127.0.0.1:22202" }
mas: { resolve: true, cache_size: 100, timeout: 1s }
nbthread: 1'
gen_cfg all
# accepted without a warning, with and without the test headers
quiet() {   # name cfg
    local out rc
    out=$(timeout 20 haproxy -c -f "$2" 2>&1); rc=$?
    if [ "$rc" = 0 ] && ! grep -qE 'WARNING|ALERT' <<<"$out"; then ok "$1"
    else fail "$1" "exit $rc: $(grep -m2 -E 'WARNING|ALERT' <<<"$out" | tr '\n' ' ')"; fi
}
quiet all-features/haproxy-c "$tmp/all.cfg"
gen_cfg all-th --test-headers
quiet all-features/test-headers-haproxy-c "$tmp/all-th.cfg"
c=$tmp/all.cfg; why=""
need() { grep -qF -- "$1" "$c" || why="${why:+$why; }missing: $1"; }
need '    localpeer node2'
need '    peer node1 127.0.0.1:22201'
need 'expire 30m peers synroute'
need 'server initial-synchrotron-1 127.0.0.1:22121 id '
need ' maxconn 2 check'
need '    timeout queue 20s'
need 'if { queue ge 10 }'
need '    server main 127.0.0.1:22100 check maxconn 50'
need 'backend synroute_rate_initial_sync'
need 'store http_req_rate(10s)'
need 'store http_req_rate(1m)'
need 'http-request track-sc0 var(txn.synroute_key) table synroute_rate_event_send'
need 'hdr Retry-After 60 string'
need '"retry_after_ms":60000'
grep -A1 'set-var(txn.synroute_key)' "$c" | grep -q 'http-request lua.synroute_mas if' || why="${why:+$why; }the mas action is not right after the key"
check all-features/lines "$why"

# no logging at all (log: none) and nobody may reach the admin API
make_dep 2 'log: none
admin_networks: []'
gen_cfg quiet
quiet log-none/haproxy-c "$tmp/quiet.cfg"
grep -q 'log-format' "$tmp/quiet.cfg" && fail log-none/no-log-format "log-format without a log target" || ok log-none/no-log-format

make_dep 2
out=$(syn check --synapse-version 1.100 "$tmp/dep/synroute.yaml" 2>&1); rc1=$?
syn haproxy --synapse-version 1.100 "$tmp/dep/synroute.yaml" -o "$tmp/v.cfg" 2>/dev/null; rc2=$?
why=""
[ "$rc1" = 0 ] || why="check exit $rc1: $(head -2 <<<"$out" | tr '\n' ' ')"
[ "$rc2" = 0 ] && grep -q 'setenv SYNROUTE_SYNAPSE_VERSION "1.100"' "$tmp/v.cfg" || why="${why:+$why; }haproxy: exit $rc2 or no SYNROUTE_SYNAPSE_VERSION"
out=$(syn check --synapse-version nonsense "$tmp/dep/synroute.yaml" 2>&1) && why="${why:+$why; }a bad version was accepted"
check synapse-version "$why"
exit $(( fails > 0 ))
