#!/usr/bin/env bash
# tests/e2e/normalize.sh - `synroute explain` agrees with HAProxy on what the
# frontend does before routing. Takes steps 0-2 of the generated
# examples/full/haproxy.cfg (methods, path normalisation, X-Forwarded, the
# /_synapse/ list; everything before the Lua converter but the native fast
# paths), runs them in a real
# HAProxy that answers with the normalised target, sends every target below
# from an admin address (127.0.0.1) and a non-admin one (127.0.0.2), and
# compares each answer with api.answer (the status HAProxy answers itself,
# what explain reports) and api.normalize (the target explain routes on).
T=normalize
. "$(dirname -- "$0")/../lib.bash"   # root, tmp, pids, ok/fail, port_busy
port=22790
if port_busy $port; then fail port "127.0.0.1:$port is busy"; exit 1; fi
{
    printf 'global\n    expose-experimental-directives\ndefaults\n    mode http\n'
    printf '    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n'
    printf 'frontend f\n    bind 127.0.0.1:%s\n' "$port"
    # steps 0 to 2 without the fast paths (0b: they decide and skip the rest)
    sed -n '/^    # 0\. Client-supplied/,/^    # 3\. /p' examples/full/haproxy.cfg | sed '$d' |
        sed '/^    # 0b\./,/^    # 1\. Normalise/{/^    # 1\. Normalise/!d;}'
    printf '    http-request return status 200 content-type text/plain lf-string "%%[pathq]"\n'
} > "$tmp/n.cfg"
[ "$(grep -c normalize-uri "$tmp/n.cfg")" -ge 5 ] || { fail rules "no normalize-uri lines in examples/full/haproxy.cfg"; exit 1; }
grep -q 'synroute_admin_net' "$tmp/n.cfg" || { fail rules "no admin_networks ACL in steps 0-2 of examples/full/haproxy.cfg"; exit 1; }
haproxy -db -f "$tmp/n.cfg" >"$tmp/h.log" 2>&1 & pids+=($!)
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
# METHOD TARGET (the target byte-exact; an absolute-form one is sent as such)
cat > "$tmp/targets" <<'P'
GET /_matrix/client/v3/sync?since=s1
GET //_matrix//client///v3/sync?since=a//b
GET /_matrix/client/./v3/sync
GET /_matrix/client/v3/.
GET /_matrix/client/v3/..
GET /_matrix/client/v3/../v3/sync
GET /../_matrix/client/v3/sync
GET /a/b/../../../c
GET /a/./../b
GET /.
GET /..
GET /a/.b/..c/...
GET /_matrix/client/v3/%73ync
GET /_matrix/client/v3/rooms/%21abc%3aexample.org/send/m.room.message/1
GET /_matrix/client/v3/rooms/%21abc%3Aexample.org/send/m.room.message/1
GET /_matrix/client/v3/rooms/%21abc%3Aexample.org/%2e%2e/%2e%2e/%2e%2e/%2e%2e/_synapse/admin/v1/rooms
GET /_matrix/client/v3/rooms/%21abc%3Aexample.org/%ZZ
GET /_matrix/client/v3/rooms/%21abc%3Aexample.org%2F..%2F/messages
GET /_matrix/client/v3/profile/%40a%3Ahs%24%23/%61vatar_url
GET /_matrix/%2e%2e/x
GET /_matrix/%2E/x
GET /x/%7e%2d%5F%41%7a%30
GET /x/%zz%4
GET /x/%2f%2F
GET /a//./..//b
GET /a/b/./
GET /a/b/../
GET /a/b?x=%7e%2f&y=%zz
GET /_synapse/./replication/x
GET //_synapse//mas/x
GET /_matrix/client/v3/sync?access_token=syt_YWxpY2U_abc%2bdef_123456&since=%73
GET /_matrix/client/v3/sync?since=s1&x=%g1
GET /_matrix/client/v3/sync?since=1%ZZ
GET //_matrix/client/v3/sync?since=1%ZZ
GET /_matrix/client/v3/rooms/%21r%3Ahs/send/m.room.message/%
GET /_matrix/%2e%2e/_synapse/admin/v1/rooms
GET /_matrix/%2E%2E/_synapse/admin/v1/rooms
GET /_matrix/%2e%2E/_synapse/admin/v1/rooms
GET /_matrix/.%2e/_synapse/admin/v1/rooms
GET /_matrix/%252e%252e/_synapse/admin/v1/rooms
GET /_matrix/%c0%ae%c0%ae/_synapse/admin/v1/rooms
GET /_matrix/%e0%80%ae/_synapse/admin/v1/rooms
GET /_matrix/..\_synapse\admin/v1/rooms
GET /_synapse\admin/v1/rooms
GET /_synapse%5cadmin/v1/rooms
GET /_matrix/..%5c_synapse%5cadmin/v1/rooms
GET /_matrix/..%2f_synapse%2fadmin/v1/rooms
GET /_synapse/admin;x=1/v1/rooms
GET /_synapse;x/admin/v1/rooms
GET //_synapse//admin/v1/rooms
GET /_synapse/./admin/v1/rooms
GET /_matrix/../_synapse/admin/v1/rooms
GET /_synapse/%61dmin/v1/rooms
GET /_synapse/admin
GET /_synapse/admin/v1/rooms
GET /_synapse/%6d%61s/query_user
GET /_synapse/metrics
GET /_synapse/replication/send_event/x
GET /_matrix/%2e%2e/_synapse/replication/send_event/x
GET /_synapse/x
GET /_synapse
GET /_SYNAPSE/admin/v1/rooms
GET /_synapse/client/oidc/callback?code=x
GET /_synapse/client
GET /_matrix/client/v3/directory/room/%23a%2Fb%3Aexample.org
GET http://example.org/_synapse/admin/v1/rooms
GET http://example.org/_matrix/%2e%2e/_synapse/replication/x
GET http://example.org/_matrix/client/v3/%73ync?since=1%ZZ
TRACE /_matrix/client/versions
CONNECT example.org:443
P
: > "$tmp/haproxy.out"
while read -r method target; do
    for src in 127.0.0.1 127.0.0.2; do
        opts=(--path-as-is -X "$method")
        case $target in
            http://*) host=${target#http://}; host=${host%%/*}
                      opts+=(-H "Host: $host" --request-target "$target"); url="http://127.0.0.1:$port/" ;;
            /*) url="http://127.0.0.1:$port$target" ;;
            *) opts+=(-H "Host: $target" --request-target "$target"); url="http://127.0.0.1:$port/" ;;
        esac
        printf '%s\t%s\t%s\t%s\n' "$method" "$target" "$src" \
            "$(curl -s --max-time 5 --interface "$src" "${opts[@]}" -w '\t%{http_code}' "$url" | tr -d '\n')" >> "$tmp/haproxy.out"
    done
done < "$tmp/targets"
lua5.4 - "$tmp/haproxy.out" <<'LUA'
local kit = dofile("tests/lua/testkit.lua")("normalize")
local api = require("synroute.api")
local dep = assert(require("synroute.config").load("examples/full/synroute.yaml"))
local n = 0
for line in io.lines(arg[1]) do
    n = n + 1
    local method, raw, src, body, status = line:match("^(%S+)\t([^\t]*)\t([^\t]*)\t(.*)\t(%d+)$")
    local name = n .. " " .. method .. " " .. (raw or line) .. " from " .. (src or "?")
    if not status then
        kit.fail(name, "no answer from HAProxy: " .. line)
    else
        local want = api.answer(dep, method, raw, src)
        local got = api.normalize(api.pathq(raw))
        if status ~= "200" then
            kit.check(name, tostring(want) == status,
                "HAProxy answers " .. status .. ", explain says " .. tostring(want or "routed on " .. got))
        elseif want then
            kit.fail(name, "explain says HAProxy answers " .. want .. ", HAProxy routes on " .. body)
        else
            kit.check(name, got == body, "explain sees " .. got .. ", HAProxy routes on " .. body)
        end
    end
end
kit.finish()
LUA
