#!/usr/bin/env bash
# tests/e2e/normalize.sh - `synroute explain` sees the path HAProxy routes on.
# Takes the normalize-uri lines of the generated examples/full/haproxy.cfg,
# runs them in a real HAProxy that answers with the normalised target, and
# compares each answer with api.normalize (what explain and the CLI use).
T=normalize
. "$(dirname -- "$0")/../lib.bash"   # root, tmp, pids, ok/fail, port_busy
port=22790
if port_busy $port; then fail port "127.0.0.1:$port is busy"; exit 1; fi
{
    printf 'global\n    expose-experimental-directives\ndefaults\n    mode http\n'
    printf '    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n'
    printf 'frontend f\n    bind 127.0.0.1:%s\n' "$port"
    grep -E 'synroute_odd_target|synroute_norm|http-request normalize-uri' examples/full/haproxy.cfg
    printf '    http-request return status 200 content-type text/plain lf-string "%%[pathq]"\n'
} > "$tmp/n.cfg"
[ "$(grep -c normalize-uri "$tmp/n.cfg")" -ge 3 ] || { fail rules "no normalize-uri lines in examples/full/haproxy.cfg"; exit 1; }
haproxy -db -f "$tmp/n.cfg" >"$tmp/h.log" 2>&1 & pids+=($!)
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
cat > "$tmp/paths" <<'P'
/_matrix/client/v3/sync?since=s1
//_matrix//client///v3/sync?since=a//b
/_matrix/client/./v3/sync
/_matrix/client/v3/.
/_matrix/client/v3/..
/_matrix/client/v3/../v3/sync
/../_matrix/client/v3/sync
/a/b/../../../c
/a/./../b
/.
/..
/a/.b/..c/...
/_matrix/client/v3/%73ync
/_matrix/client/v3/rooms/%21abc%3aexample.org/send/m.room.message/1
/_matrix/%2e%2e/x
/_matrix/%2E/x
/x/%7e%2d%5F%41%7a%30
/x/%zz%4
/x/%2f%2F
/a//./..//b
/a/b/./
/a/b/../
/a/b?x=%7e%2f&y=%zz
/_synapse/./replication/x
//_synapse//mas/x
/_matrix/client/v3/sync?access_token=syt_YWxpY2U_abc%2bdef_123456&since=%73
/_matrix/client/v3/sync?since=s1&x=%g1
/_matrix/client/v3/rooms/%21r%3Ahs/send/m.room.message/%
P
: > "$tmp/haproxy.out"
while IFS= read -r p; do
    printf '%s\t%s\n' "$p" "$(curl -s --max-time 5 --path-as-is -w '\t%{http_code}' "http://127.0.0.1:$port$p" | tr -d '\n')" >> "$tmp/haproxy.out"
done < "$tmp/paths"
lua5.4 - "$tmp/haproxy.out" <<'LUA'
local kit = dofile("tests/lua/testkit.lua")("normalize")
local api = require("synroute.api")
local n = 0
for line in io.lines(arg[1]) do
    n = n + 1
    local raw, body, status = line:match("^([^\t]*)\t(.*)\t(%d+)$")
    local got, rejected = api.normalize(raw)
    local name = n .. " " .. raw
    if status == "400" then
        kit.check(name, rejected, "HAProxy answers 400, explain routes " .. got)
    elseif rejected then
        kit.fail(name, "explain says 400, HAProxy routes on " .. body)
    else
        kit.check(name, got == body, "explain sees " .. got .. ", HAProxy routes on " .. body)
    end
end
kit.finish()
LUA
