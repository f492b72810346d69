-- tests/e2e/replay/units.lua - synroute.replay's parsers, masking and
-- network test, line by line. Run with lua5.4 (LUA_PATH/LUA_CPATH set up
-- by tests/lib.bash). Prints "ok replay/unit/<name>" or "FAIL ...".

local replay = require("synroute.replay")

local kit = dofile((arg[0]:match("^(.*)tests/") or "") .. "tests/lua/testkit.lua")("replay/unit")
local check = kit.check

-- field by field: rec must have every key of want with that value
local function has(name, rec, want, why)
    if not rec then
        check(name, false, "not parsed: " .. tostring(why))
        return
    end
    for k, v in pairs(want) do
        if rec[k] ~= v then
            check(name, false, k .. " = " .. tostring(rec[k]) .. ", want " .. tostring(v))
            return
        end
    end
    check(name, true)
end

local C = '198.51.100.10 - - [22/Nov/2026:10:00:01 +0000] "GET /_matrix/client/v3/sync?since=s1 HTTP/1.1" 200 512 "-" "Element/1.11"'

-- nginx combined, and the ways an upstream field is written after it
has("nginx/combined", replay.parse_line(C), { format = "nginx", src = "198.51.100.10", method = "GET",
    target = "/_matrix/client/v3/sync?since=s1", status = 200, upstream = nil })
has("nginx/upstream-bare", replay.parse_line(C .. " 127.0.0.1:8083"), { upstream = "127.0.0.1:8083" })
has("nginx/upstream-quoted", replay.parse_line(C .. ' "127.0.0.1:8083"'), { upstream = "127.0.0.1:8083" })
has("nginx/upstream-keyed", replay.parse_line(C .. " rt=0.004 upstream=10.0.0.7:8008 urt=0.003"),
    { upstream = "10.0.0.7:8008" })
has("nginx/upstream-keyed-quoted", replay.parse_line(C .. ' upstream_addr="10.0.0.7:8008" host="matrix.example.org:443"'),
    { upstream = "10.0.0.7:8008" })
has("nginx/upstream-after-time", replay.parse_line(C .. " 0.004 127.0.0.1:8083 0.003"), { upstream = "127.0.0.1:8083" })
has("nginx/upstream-retries-last", replay.parse_line(C .. " 127.0.0.1:8083, 127.0.0.1:8084 0.010"),
    { upstream = "127.0.0.1:8084" })
has("nginx/upstream-redirect-last", replay.parse_line(C .. ' "127.0.0.1:8083 : 127.0.0.1:8085"'),
    { upstream = "127.0.0.1:8085" })
has("nginx/upstream-ipv6", replay.parse_line(C .. " [::1]:8083"), { upstream = "::1:8083" })
has("nginx/upstream-localhost", replay.parse_line(C .. " localhost:8083"), { upstream = "127.0.0.1:8083" })
has("nginx/upstream-unix", replay.parse_line(C .. " unix:/run/synapse/main.sock"),
    { upstream = "unix:/run/synapse/main.sock" })
has("nginx/upstream-dash", replay.parse_line(C .. " - 0.000"), { upstream = nil, upstream_none = true })
has("nginx/upstream-dash-quoted", replay.parse_line(C .. ' "-"'), { upstream = nil, upstream_none = true })
has("nginx/upstream-after-dash-field", replay.parse_line(C .. ' "-" "matrix.example.org" "sync_up" "172.18.0.9:8008" "200"'),
    { upstream = "172.18.0.9:8008" })
has("nginx/no-address-field", replay.parse_line(C .. " 0.004 matrix.example.org"), { upstream = nil, upstream_none = nil })
has("nginx/escaped-quote", replay.parse_line(
    '::1 - - [22/Nov/2026:10:00:01 +0000] "GET /x?f=\\x22a\\x22 HTTP/1.1" 200 5 "-" "a \\"b\\""'),
    { target = '/x?f="a"', src = "::1" })
has("nginx/user-and-http2", replay.parse_line(
    '198.51.100.10 - admin [22/Nov/2026:10:00:01 +0000] "HEAD /_matrix/client/versions HTTP/2.0" 200 0 "-" "curl"'),
    { method = "HEAD", target = "/_matrix/client/versions" })

local rec, why = replay.parse_line('198.51.100.10 - - [22/Nov/2026:10:00:01 +0000] "\\x16\\x03\\x01" 400 157 "-" "-"')
check("nginx/tls-junk-not-a-request", rec == nil and why == "no HTTP request in the line", why)
rec, why = replay.parse_line('198.51.100.10 - - [22/Nov/2026:10:00:01 +0000] "GET /x HTTP/1.1" 200 5')
check("nginx/common-not-combined", rec == nil and why:find("combined", 1, true), why)
rec, why = replay.parse_line('198.51.100.10 - - [22/Nov/2026:10:00:01 +0000] "GET /_matrix/client/v3/sync?access_token=syt_YWxp')
check("nginx/torn-line", rec == nil, why)
rec = replay.parse_line(C, "haproxy")
check("nginx/not-with-format-haproxy", rec == nil)

-- HAProxy httplog (raw, syslog rfc3164, rfc5424), and synroute's log-format
local HL = '10.0.1.2:33317 [22/Nov/2026:12:14:14.655] synapse~ sync/synchrotron-1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 "GET /_matrix/client/v3/sync?since=x HTTP/1.1"'
has("haproxy/httplog", replay.parse_line(HL), { format = "haproxy", src = "10.0.1.2", method = "GET",
    target = "/_matrix/client/v3/sync?since=x", upstream = "sync/synchrotron-1", status = 200 })
has("haproxy/syslog-3164", replay.parse_line("Nov 22 12:14:14 hs1 haproxy[14389]: " .. HL),
    { format = "haproxy", upstream = "sync/synchrotron-1" })
has("haproxy/syslog-5424", replay.parse_line("<134>1 2026-11-22T12:14:14.655+00:00 hs1 haproxy 14389 - - " .. HL),
    { format = "haproxy", upstream = "sync/synchrotron-1" })
has("haproxy/captures-and-6-timers", replay.parse_line(
    '[::1]:4000 [22/Nov/2026:12:14:14.655] in be/s1 0/1/0/0/1/2 200 10 - - ---- 1/1/1/1/0 0/0 {h|Bearer syt_x} {} "PUT /a#22b HTTP/1.1"'),
    { target = '/a"b', method = "PUT", upstream = "be/s1" })
has("haproxy/ipv6-client", replay.parse_line(
    '2001:db8::7:4000 [22/Nov/2026:12:14:14.655] in be/s1 0/0/0/0/1 200 10 - - ---- 1/1/1/1/0 0/0 "GET / HTTP/1.1"'),
    { src = "2001:db8::7" })
has("haproxy/nosrv", replay.parse_line(
    '10.0.1.2:1 [22/Nov/2026:12:14:14.655] synapse synapse/<NOSRV> 0/-1/-1/-1/0 403 169 - - LR-- 1/1/0/0/0 0/0 "GET /_synapse/admin/v1/x HTTP/1.1"'),
    { upstream = nil, upstream_none = true, status = 403 })
has("haproxy/h2-absolute", replay.parse_line(
    '10.0.1.2:1 [22/Nov/2026:12:14:14.655] fe~ be/s 0/0/0/0/1 200 1 - - ---- 1/1/0/0/0 0/0 "GET https://matrix.example.org/_matrix/client/versions HTTP/2.0"'),
    { target = "https://matrix.example.org/_matrix/client/versions" })
rec, why = replay.parse_line('10.0.1.2:1 [22/Nov/2026:12:14:14.655] fe fe/<NOSRV> -1/-1/-1/-1/0 400 0 - - PR-- 1/1/0/0/0 0/0 "<BADREQ>"')
check("haproxy/badreq", rec == nil and why == "no HTTP request in the line", why)
rec, why = replay.parse_line("Nov 22 12:14:14 hs1 haproxy[14389]: Server sync/s1 is DOWN, reason: Layer4 timeout")
check("haproxy/server-message", rec == nil and why == "not an access-log line", why)

local SL = '127.0.0.1:44252 [01/Dec/2026:22:22:59.446] synapse sync/synchrotron-2 0/0/0/1/1 200 160 ---- 1/1/0/0/0 0/0 GET /_matrix/client/v3/sync class=sync backend=sync'
has("synroute/log-format", replay.parse_line(SL), { format = "synroute", method = "GET", target = "/_matrix/client/v3/sync",
    no_query = true, logged_class = "sync", logged_backend = "sync", upstream = "sync/synchrotron-2" })
has("synroute/unset-vars", replay.parse_line(
    '127.0.0.1:1 [01/Dec/2026:22:22:59.648] synapse synapse/<NOSRV> 0/-1/-1/-1/0 404 144 LR-- 1/1/0/0/0 0/0 POST /_synapse/replication/x class=- backend=-'),
    { logged_class = nil, logged_backend = nil, upstream_none = true })

-- masking
local function masked(name, input, want)
    local got = replay.mask(input)
    check("mask/" .. name, got == want, got)
end
masked("access_token", "/s?since=1&access_token=syt_YWxp_abc_1&timeout=3", "/s?since=1&access_token=***&timeout=3")
masked("access_token-any-value", "/s?access_token=example-as-token", "/s?access_token=***")
masked("encoded-name", "/s?access%5Ftoken=x", "/s?access%5Ftoken=***")
masked("encoded-value", "/s?a=syt%5FYWxp%5Fabc%5F1", "/s?a=***")
masked("double-encoded-value", "/s?a=syt%255FYWxp%255Fabc", "/s?a=***")
masked("macaroon", "/s?m=MDAxOGxvY2F0aW9uIGhz", "/s?m=***")
masked("mas", "/s?x=1&t=mat_gaKjIg8xNbe3nNyjOq9wMxEhh2FDEE_3kV79T", "/s?x=1&t=***")
masked("refresh", "/s?r=syr_Y2Fyb2w_QWxB_0GpZ", "/s?r=***")
masked("nested-url", "/sso?redirectUrl=https%3A%2F%2Fapp%2F%3FloginToken%3Dsyt_abc", "/sso?redirectUrl=***")
masked("login-token-name", "/sso?loginToken=abcdef", "/sso?loginToken=***")
masked("oidc-code", "/cb?code=Zq81&state=R3", "/cb?code=***&state=R3")
masked("bare-token-param", "/s?syt_YWxp_abc_1", "/s?***")
masked("semicolon", "/s?a=1;access_token=x", "/s?a=1;access_token=***")
masked("plain-query-kept", "/m?dir=b&from=t1_2&limit=20", "/m?dir=b&from=t1_2&limit=20")
masked("path-scrubbed", "/x/syt_YWxp_abc_1/y", "/x/syt_***")  -- a token may hold "/": mask to the end
masked("no-query", "/_matrix/client/versions", "/_matrix/client/versions")
check("scrub/anywhere", not replay.scrub("a syt_YWxp_b mat_abc MDAxOGxv syt%5Fq c"):find("YWxp", 1, true)
    and not replay.scrub("mat_abcdef"):find("abcdef", 1, true) and not replay.scrub("x syt%5FYWxp"):find("YWxp", 1, true))

-- admin_networks
local nets = {
    { "127.0.0.1", "127.0.0.1/32", true }, { "127.0.0.2", "127.0.0.1/32", false },
    { "10.1.2.3", "10.0.0.0/8", true }, { "11.1.2.3", "10.0.0.0/8", false },
    { "192.168.1.77", "192.168.1.64/26", true }, { "192.168.1.128", "192.168.1.64/26", false },
    { "::1", "::1/128", true }, { "::2", "::1/128", false }, { "127.0.0.1", "::1/128", false },
    { "2001:db8::5", "2001:db8::/32", true }, { "2001:db9::5", "2001:db8::/32", false },
    { "::ffff:10.0.0.1", "10.0.0.0/8", true }, { "10.0.0.1", "10.0.0.1", true },
}
local bad = {}
for _, t in ipairs(nets) do
    if require("synroute.values").in_network(t[1], t[2]) ~= t[3] then bad[#bad + 1] = t[1] .. " in " .. t[2] end
end
check("admin-networks", #bad == 0, table.concat(bad, ", "))

kit.finish()
