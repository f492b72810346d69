#!/bin/bash
# tests/platform/deb-check.sh DIR - runs INSIDE a clean chroot where the
# synroute package (and what apt pulled in for it) is installed, nothing else
# of synroute. deb-install.sh prepares DIR:
#   DIR/deployment/synroute.yaml   a deployment (examples/small) and its Synapse files
#   DIR/standin.cfg                HAProxy standing in for its Synapse processes
#                                  (every listener answers with X-Worker: <name>)
#   DIR/token                      an access token of user alice
#   DIR/monolith.yaml              a homeserver.yaml, for the shipped sample configuration
# Uses only what the package depends on (bash, lua5.4, haproxy): requests
# go over bash's /dev/tcp. Works with any HAProxy (2.6 with Lua 5.3, 3.0 with
# Lua 5.4). Prints ok/FAIL lines. The one test script without tests/lib.bash:
# no checkout is there, so its few helpers are its own.
set -u
T=deb-install
dir=$1
dep=$dir/deployment/synroute.yaml
fails=0
pids=()
ok() { echo "ok $T/$1"; }
fail() { echo "FAIL $T/$1: $(tr '\n' ' ' <<<"$2")"; fails=$((fails + 1)); }
check() { if [ -z "$2" ]; then ok "$1"; else fail "$1" "$2"; fi; }
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; }
trap cleanup EXIT

# request PORT METHOD PATH [HEADER...]: the response head, CRs removed
request() {
    local port=$1 method=$2 path=$3 h; shift 3
    exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
    {
        printf '%s %s HTTP/1.1\r\nHost: matrix.example.org\r\nConnection: close\r\n' "$method" "$path"
        for h in "$@"; do printf '%s\r\n' "$h"; done
        printf '\r\n'
    } >&3
    timeout 10 cat <&3 | tr -d '\r' | sed '/^$/q'
    exec 3<&-
}
wait_port() {   # PORT: until something answers on it (5 s)
    local i
    for i in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
header() { sed -n "s/^$1: *//Ip" | head -1; }

# == the package is installed where Lua and HAProxy look =======================
check installed-cli "$([ "$(command -v synroute)" = /usr/bin/synroute ] || echo "synroute is not /usr/bin/synroute: $(command -v synroute)")"
for v in 5.3 5.4; do
    found=$(lua$v -e 'print(package.searchpath("synroute", package.cpath) or "")' 2>/dev/null)
    if command -v lua$v >/dev/null; then
        check "lua$v-finds-module" "$([ -n "$found" ] || echo "lua$v does not find synroute.so in its default cpath")"
    fi
done
check lua5.4-loads-module "$(lua5.4 -e 'local s = require "synroute"; assert(s.version)' 2>&1)"
check conffile "$(dpkg-query -W -f='${Conffiles}' synroute | grep -q '^ /etc/synroute/synroute.yaml ' || echo "/etc/synroute/synroute.yaml is not a conffile")"
check man-page "$([ -f /usr/share/man/man1/synroute.1.gz ] || echo "no /usr/share/man/man1/synroute.1.gz")"
check no-repository "$([ -z "${SYNROUTE_ROOT:-}" ] && [ ! -e /usr/share/synroute/build ] || echo "SYNROUTE_ROOT is set or a build/ tree is installed")"
hv=$(haproxy -v | head -1)
hl=$(haproxy -vv | sed -n 's/^Built with Lua version : //p')
lv=$(sed -n 's/^Lua \([0-9]\.[0-9]\).*/\1/p' <<<"$hl")   # the Lua this HAProxy embeds
echo "# $hv; $hl; $(lua5.4 -v 2>&1)"

# == synroute check ==============================================================
out=$(synroute check "$dep" 2>&1); rc=$?
check check-deployment "$([ $rc = 0 ] || echo "exit $rc: $out")"
# the shipped sample, pointed at a Synapse homeserver.yaml where Debian's
# matrix-synapse keeps it
mkdir -p /etc/matrix-synapse
cp "$dir/monolith.yaml" /etc/matrix-synapse/homeserver.yaml
out=$(synroute check /etc/synroute/synroute.yaml 2>&1); rc=$?
check check-sample-config "$([ $rc = 0 ] || echo "exit $rc: $out")"
out=$(synroute explain --config /etc/synroute/synroute.yaml GET /_matrix/client/versions 2>&1)
check explain-default-config "$(grep -q '"backend"' <<<"$out" || echo "$out")"

# == synroute haproxy, haproxy -c ===================================================
cfg=$dir/haproxy.cfg
out=$(synroute haproxy "$dep" -o "$cfg" 2>&1); rc=$?
check generate "$([ $rc = 0 ] && [ -s "$cfg" ] || echo "exit $rc: $out")"
if [ -s "$cfg" ]; then
    check generate-no-prepend-path "$(grep -n 'lua-prepend-path' "$cfg" | head -3)"
    check generate-loads-installed-glue "$(grep -qE "^\s*lua-load(-per-thread)? +\"?/usr/share/lua/$lv/synroute/haproxy\.lua" "$cfg" || echo "HAProxy embeds Lua '$lv' but the config does not load /usr/share/lua/$lv/synroute/haproxy.lua: $(grep -m2 'lua-load' "$cfg")")"
else
    fail generate-output "no configuration was generated"
fi
out=$(haproxy -c -f "$cfg" 2>&1); rc=$?
check haproxy-c "$([ $rc = 0 ] || echo "exit $rc: $(tail -5 <<<"$out")")"
check haproxy-c-no-warnings "$(grep -E 'WARNING|ALERT' <<<"$out" | head -3)"

# == requests through this release's HAProxy with the packaged files ================
listen=$(sed -n 's/^listen: *//p' "$dep" | head -1)
port=${listen##*:}
haproxy -db -f "$dir/standin.cfg" >"$dir/standin.log" 2>&1 &
pids+=($!)
haproxy -db -f "$cfg" >"$dir/haproxy.log" 2>&1 &
pids+=($!)
if ! wait_port "$port"; then
    fail route-media "HAProxy did not start: $(tail -3 "$dir/haproxy.log")"
else
    sleep 0.5   # first health checks
    token=$(cat "$dir/token")
    # media: one media worker in this deployment
    path=/_matrix/client/v1/media/download/example.org/abcdef
    want=$(synroute explain --config "$dep" GET "$path" -H "Authorization: Bearer $token")
    backend=$(sed -n 's/.*"backend":"\([^"]*\)".*/\1/p' <<<"$want")
    servers=$(awk -v b="$backend" '$1 == "backend" { inb = ($2 == b) } inb && $1 == "server" { print $2 }' "$cfg")
    got=$(request "$port" GET "$path" "Authorization: Bearer $token" | header x-worker)
    check route-media "$([ -n "$backend" ] && [ "$(wc -w <<<"$servers")" = 1 ] && [ "$got" = "$servers" ] ||
        echo "explain: backend '$backend' (servers: $servers); X-Worker: '$got'; $(tail -2 "$dir/haproxy.log")")"
    # sync of alice: the explained pool, never main
    path='/_matrix/client/v3/sync?since=s1_2&timeout=0'
    want=$(synroute explain --config "$dep" GET "$path" -H "Authorization: Bearer $token")
    backend=$(sed -n 's/.*"backend":"\([^"]*\)".*/\1/p' <<<"$want")
    servers=$(awk -v b="$backend" '$1 == "backend" { inb = ($2 == b) } inb && $1 == "server" { print $2 }' "$cfg")
    got=$(request "$port" GET "$path" "Authorization: Bearer $token" | header x-worker)
    check route-sync "$([ -n "$got" ] && [ "$got" != main ] && grep -qxF "$got" <<<"$servers" ||
        echo "explain: backend '$backend' (servers: $(echo $servers)); X-Worker: '$got'")"
    echo "# media -> $(request "$port" GET /_matrix/client/v1/media/download/example.org/abcdef | header x-worker), sync -> $got ($backend)"
fi
[ "$fails" = 0 ]
