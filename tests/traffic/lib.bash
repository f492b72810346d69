# tests/traffic/lib.bash - shared helpers for the traffic-policy tests
# (sourced by tests/traffic/*.sh; not a test itself).
#
# A test deployment is written to $tmp/dep (homeserver.yaml, workers/*.yaml,
# an appservice registration, synroute.yaml); every port is on 127.0.0.1 in
# 22100-22299 (tests/traffic/multinode.sh uses the 228xx ports of
# examples/multinode). Stand-ins are HAProxy processes (examples/standin):
# one for most processes, one per sync worker and per SSO process (so a
# test can stop one), a Lua one (answers after $SLOW_MS) per initial-synchrotron;
# the typing writer (typing-1) has none unless a test starts it.
#
#   make_dep NSYNC [EXTRA_YAML]   write the deployment (NSYNC sync workers)
#   gen_cfg NAME [ARGS...]        synroute haproxy -> $tmp/NAME.cfg (+ a stats socket)
#   start_standins                start every stand-in, wait for them
#   start_standin NAME            (re)start the stand-in of one worker
#   stop_standin NAME             stop it
#   start_haproxy NAME            HAProxy with $tmp/NAME.cfg; pid in hp_pid[NAME]
#   stop_pid PID                  TERM, wait (bounded), KILL
#   sock NAME CMD                 a stats-socket command
#   worker ARGS...                curl; prints the X-Worker header
#   urls < list > file            URLs -> a `curl -K` file
#   need_lua_socket               install Debian's lua-socket when missing (the
#                                 CLI's runtime API commands use it)
#   start_holding NAME            a stand-in for NAME that holds requests with
#                                 hold=N (ms) in their query, like a long poll
T=${T:-traffic}
# root, tmp, pids, ok/fail/check, stop_pid, stop_all, cleanup trap, syn, standin
. "$(dirname -- "${BASH_SOURCE[0]}")/../lib.bash"
need_pkg lua-cjson || fail setup "lua-cjson (MAS resolution decodes JSON with it) could not be installed"
# One traffic test at a time on this machine (they share ports): another
# checkout or another user of this one may be running them right now.
exec 9>"${TMPDIR:-/tmp}/synroute-traffic.lock"
if ! flock -w 180 9; then echo "FAIL $T/setup: another traffic test held the lock for 180 s"; exit 1; fi
declare -A hp_pid=() st_pid=()
AS_TOKEN=traffic-as-token-0123456789abcdef
LISTEN=127.0.0.1:22190
base=http://$LISTEN

worker_yaml() {   # name port
    cat > "$tmp/dep/workers/$1.yaml" <<EOF
worker_app: synapse.app.generic_worker
worker_name: $1
worker_listeners:
  - type: http
    port: $2
    bind_addresses: ['127.0.0.1']
    x_forwarded: true
    resources:
      - names: [client, federation]
EOF
}

make_dep() {   # nsync [extra synroute.yaml text]
    rm -rf "$tmp/dep"; mkdir -p "$tmp/dep/workers"
    cat > "$tmp/dep/homeserver.yaml" <<EOF
server_name: "example.org"
listeners:
  - port: 22100
    type: http
    x_forwarded: true
    bind_addresses: ['127.0.0.1']
    resources:
      - names: [client, federation]
macaroon_secret_key: "traffic-test-not-a-secret"
instance_map:
  typing-1: { host: 127.0.0.1, port: 22182 }
stream_writers:
  typing: typing-1
app_service_config_files: [bridge.yaml]
EOF
    cat > "$tmp/dep/bridge.yaml" <<EOF
id: testbridge
url: http://127.0.0.1:22199
as_token: $AS_TOKEN
hs_token: traffic-hs-token
sender_localpart: bridgebot
namespaces:
  users: [{ exclusive: true, regex: "@bridge_.*:example.org" }]
EOF
    local i
    for i in $(seq "$1"); do worker_yaml "synchrotron-$i" $((22110 + i)); done
    worker_yaml initial-synchrotron-1 22121; worker_yaml initial-synchrotron-2 22122
    for i in 1 2 3; do
        worker_yaml "event-creator-$i" $((22130 + i))
        worker_yaml "messages-$i" $((22140 + i))
        worker_yaml "federation-inbound-$i" $((22150 + i))
    done
    worker_yaml sso-login-1 22161; worker_yaml sso-login-2 22162
    worker_yaml appservice-client-1 22171; worker_yaml appservice-client-2 22172
    worker_yaml typing-1 22181   # a writer; its stand-in is started only on demand
    cat > "$tmp/dep/synroute.yaml" <<EOF
synapse:
  homeserver: homeserver.yaml
  workers: workers/*.yaml
synapse_version: "1.157"
listen: $LISTEN
hash_secret: "traffic-test-secret"
runtime:
  socket: $tmp/admin.sock
timeouts:
  check_interval: 300ms
pools:
  messages: [messages-*]
  sso:
    servers: [sso-login-1]
    backup: [sso-login-2]
  appservice: [appservice-client-*]
${2:-}
EOF
}

gen_cfg() {   # name [synroute haproxy args]
    local name=$1; shift
    syn haproxy "$tmp/dep/synroute.yaml" "$@" -o "$tmp/$name.cfg" 2>"$tmp/$name.gen.err" || {
        echo "FAIL $T/setup: synroute haproxy: $(head -3 "$tmp/$name.gen.err" | tr '\n' ' ')"; exit 1; }
    # a stats socket for `show table` (a second global section is allowed)
    # noreuseport: a second run of this test elsewhere makes the bind fail
    # instead of silently sharing the port
    printf 'global\n    noreuseport\n    stats socket %s level admin\n' "$tmp/$name.sock" > "$tmp/$name.stats.cfg"
}

standin_part() {   # awk filter on frontend names -> config text
    standin config "$tmp/dep/synroute.yaml" | awk -v want="$1" '
        /^frontend / { keep = ($2 ~ want) }
        /^(global|defaults)/ { head = 1 } /^frontend / { head = 0 }
        head || keep'
}

start_standin() {   # worker name (or "rest")
    local n=$1 cfg=$tmp/standin-$1.cfg
    case $n in
        rest) standin_part '^(main|event_creator|messages|federation_inbound|appservice_client)_' > "$cfg" ;;
        initial-synchrotron-[12])   # answers after $SLOW_MS (default 0)
            standin slow "$n" "127.0.0.1:2212${n##*-}" "${SLOW_MS:-0}" "$tmp/slow-$n.lua" > "$cfg" ;;
        *) standin_part "^${n//-/_}_[0-9]+\$" > "$cfg" ;;
    esac
    haproxy -db -f "$cfg" > "$tmp/standin-$n.log" 2>&1 9>&- &
    st_pid[$n]=$!; pids+=($!)
}
stop_standin() { stop_pid "${st_pid[$1]}"; }

start_holding() {   # worker name: a Lua stand-in (no delay unless hold=N) on the worker's port
    local n=$1 port
    port=$(sed -n 's/^ *port: *\([0-9]*\).*/\1/p' "$tmp/dep/workers/$n.yaml" | head -1)
    standin slow "$n" "127.0.0.1:$port" 0 "$tmp/hold-$n.lua" > "$tmp/hold-$n.cfg"
    haproxy -db -f "$tmp/hold-$n.cfg" > "$tmp/hold-$n.log" 2>&1 9>&- &
    st_pid[$n]=$!; pids+=($!)
    for _ in $(seq 50); do curl -fs -o /dev/null "http://127.0.0.1:$port/health" && return 0; sleep 0.1; done
    echo "FAIL $T/setup: holding stand-in $n did not start: $(grep -m2 ALERT "$tmp/hold-$n.log")"; exit 1
}

need_lua_socket() {
    lua5.4 -e 'require("socket.unix")' 2>/dev/null && return 0
    echo "installing: lua-socket"
    local SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq lua-socket >/dev/null
    lua5.4 -e 'require("socket.unix")' 2>/dev/null ||
        { echo "FAIL $T/setup: lua-socket (socket.unix for Lua 5.4) is not installed"; exit 1; }
}

# Another run of the traffic tests (same ports) may be under way: wait for it
# (bounded), since two HAProxy processes would share a port (SO_REUSEPORT).
wait_ports_free() {   # regex of ports
    local busy=""
    for _ in $(seq 120); do
        busy=$(ss -Hltn 2>/dev/null | awk '{print $4}' | grep -E "^127\.0\.0\.1:($1)\$" | head -3 | tr '\n' ' ')
        [ -z "$busy" ] && return 0
        sleep 0.5
    done
    echo "FAIL $T/setup: ports busy for 60 s: $busy"; exit 1
}

start_standins() {
    local w
    wait_ports_free '22[12][0-9][0-9]'

    start_standin rest
    for w in $(ls "$tmp/dep/workers" | sed 's/\.yaml$//'); do
        case $w in synchrotron-*|initial-synchrotron-*|sso-login-*) start_standin "$w" ;; esac
    done
    for _ in $(seq 50); do
        curl -fs -o /dev/null http://127.0.0.1:22100/health && curl -fs -o /dev/null http://127.0.0.1:22111/health &&
            curl -fs -o /dev/null http://127.0.0.1:22121/health && return 0
        sleep 0.1
    done
    echo "FAIL $T/setup: stand-ins did not start: $(cat "$tmp"/standin-*.log | grep -m3 ALERT)"; exit 1
}

start_haproxy() {   # name [extra haproxy args]
    local name=$1; shift
    local t0
    t0=$(date +%s%N)
    haproxy -db -f "$tmp/$name.cfg" -f "$tmp/$name.stats.cfg" "$@" > "$tmp/$name.log" 2>&1 9>&- &
    hp_pid[$name]=$!; pids+=($!)
    local url=${HP_URL:-$base}
    for _ in $(seq 50); do
        if curl -s -o /dev/null "$url/_matrix/client/versions"; then
            sleep 0.2   # first checks done
            past_grace "$name" "$t0"
            return 0
        fi
        sleep 0.1
    done
    echo "FAIL $T/setup: HAProxy $name did not start: $(grep -m3 -E 'ALERT' "$tmp/$name.log" | tr '\n' ' ')"; exit 1
}

# A generated configuration with peers stores no stick-table pin in its
# first seconds (synroute.runtime.HANDOVER_GRACE_MS): tests that look at pins
# start after that.
past_grace() {   # name start-time-in-ns
    local ms
    ms=$(sed -n 's/.*sub(proc\.synroute_boot) ge \([0-9]*\).*/\1/p' "$tmp/$1.cfg" | head -1)
    [ -n "$ms" ] || return 0
    local left=$(( (${2} / 1000000 + ms + 200) - $(date +%s%N) / 1000000 ))
    [ "$left" -le 0 ] || sleep "$(printf '%d.%03d' $((left / 1000)) $((left % 1000)))"
}

sock() {   # no socat/nc on a minimal system: python3's socket module
    timeout 5 python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
out = b""
while True:
    d = s.recv(65536)
    if not d: break
    out += d
sys.stdout.write(out.decode("utf-8", "replace"))' "$tmp/$1.sock" "$2"
}

# URLs on stdin -> a curl -K file (one connection for all; -w once per URL)
urls() { while read -r u; do printf 'url = "%s"\noutput = "/dev/null"\n' "$u"; done; }

worker() { curl -s -o /dev/null -m 10 -w '%header{x-worker}' "$@"; }

# wait (bounded) until the server NAME in backend BE has state STATE (UP/DOWN)
wait_state() {   # haproxy-name backend server UP|DOWN
    local st=""
    for _ in $(seq 60); do
        st=$(sock "$1" "show servers state $2" | awk -v s="$3" '$4==s {print $6}')
        case $4 in UP) [ "$st" = 2 ] && return 0 ;; DOWN) [ "$st" = 0 ] && return 0 ;; esac
        sleep 0.1
    done
    return 1
}
