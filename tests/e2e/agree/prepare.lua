-- tests/e2e/agree/prepare.lua - the explain side of tests/e2e/agree.sh.
--
--   lua5.4 tests/e2e/agree/prepare.lua ROOT CONFIG OUTDIR CASES.tsv...
--
-- Loads the deployment CONFIG with require("synroute.api") (the code path of
-- `synroute explain`) and, for every case of the case tables, writes:
--   OUTDIR/expected.tsv  n \t name \t class \t backend \t hash
--   OUTDIR/fast.txt      the decisions ("backend|class|") the deployment's native
--                        fast paths can set, one a line
--   OUTDIR/curl.cfg      one curl transfer per case (curl -K), in the same order
--   OUTDIR/skipped.txt   cases that cannot be sent as-is over HTTP/1.1
-- plus OUTDIR/haproxy.cfg: the design.md frontend rules in front of one
-- backend per pool of the deployment, each backend's server being a stand-in
-- frontend (in the same HAProxy) on that worker's own port that answers
-- "X-Worker: <pool>". main is served the same way.
--
-- Case tables: tab-separated, columns method, target, headers, src, and
-- optional expectations we ignore here (HAProxy is compared with explain on
-- THIS deployment, not with the table's). headers are "Name: value" items
-- separated by " ;; " (`\t` in a header stands for a tab), or "-" for none;
-- src "-" means 127.0.0.1. Lines that
-- are empty or start with '#', and a header line whose first field is
-- "method", are skipped.

local root, config, outdir = arg[1], arg[2], arg[3]
if not (root and config and outdir and arg[4]) then
    io.stderr:write("usage: prepare.lua ROOT CONFIG OUTDIR CASES.tsv...\n")
    os.exit(2)
end
package.path = root .. "/lua/?.lua;" .. package.path
package.cpath = root .. "/build/5.4/?.so;" .. package.cpath

local api = require("synroute.api")
local eng, err = api.new{ config = config }
if not eng then
    io.stderr:write("agree: cannot load " .. config .. ": " .. tostring(err) .. "\n")
    os.exit(2)
end
if not (eng.dep and eng.dep.main and eng.dep.pools) then
    io.stderr:write("agree: " .. config .. " has no main/pools (eng.dep)\n")
    os.exit(2)
end

local ROUTER_PORT = 23000   -- conf/all's listen address

local function split_tab(line)
    local t = {}
    for f in (line .. "\t"):gmatch("([^\t]*)\t") do t[#t + 1] = f end
    return t
end

local function split_headers(s)
    local hs = {}
    if s == nil or s == "" or s == "-" then return hs end
    local start = 1
    while true do
        local i, j = s.find(s, " ;; ", start, true)
        local item = s:sub(start, (i or 0) - 1)
        if i == nil then item = s:sub(start) end
        item = item:gsub("\\t", "\t")   -- the tables write a tab as \t
        if item ~= "" then hs[#hs + 1] = item end
        if i == nil then break end
        start = j + 1
    end
    return hs
end

-- curl config values: double-quoted, backslash escapes
local function cq(s)
    -- (curl 8 refuses a quoted value that spans lines: newlines are escaped too)
    return '"' .. s:gsub("\\", "\\\\"):gsub('"', '\\"'):gsub("\t", "\\t"):gsub("\n", "\\n") .. '"'
end

local function bad_for_http1(s)
    -- what an HTTP/1.1 request line or header cannot carry verbatim
    return s:find("[%c ]") ~= nil
end

local exp = assert(io.open(outdir .. "/expected.tsv", "w"))
local curl = assert(io.open(outdir .. "/curl.cfg", "w"))
local skipped = assert(io.open(outdir .. "/skipped.txt", "w"))

local n = 0
for ai = 4, #arg do
    local file = arg[ai]
    local fh = assert(io.open(file, "r"))
    local lineno = 0
    local short = file:match("([^/]+)$") or file
    for line in fh:lines() do
        lineno = lineno + 1
        line = line:gsub("\r$", "")
        local f = split_tab(line)
        if line ~= "" and line:sub(1, 1) ~= "#" and f[1] ~= "method" and #f >= 2 then
            local method, target = f[1], f[2]
            local headers = split_headers(f[3])
            local src = (f[4] == nil or f[4] == "" or f[4] == "-") and "127.0.0.1" or f[4]
            local name = string.format("%s:%d %s %s", short, lineno, method, target)
            if #name > 140 then name = name:sub(1, 137) .. "..." end
            local why
            if bad_for_http1(method) or bad_for_http1(target) or target == "" then
                why = "method/target not sendable verbatim"
            elseif not src:match("^[%x:.]+$") then
                why = "src is not an IP address"
            end
            for _, h in ipairs(headers) do
                if h:find("[\r\n%z]") or not h:find(":", 1, true) then why = "header not sendable" end
                local hn = h:match("^([^:]*):")
                if hn and hn:lower() == "x-agree-src" then why = "uses the test's own header" end
            end
            if why then
                skipped:write(name, "\t", why, "\n")
            else
                local d = eng:explain{ method = method, target = target, headers = headers, src = src }
                n = n + 1
                exp:write(table.concat({ n, name, d.class, d.backend, d.hash or "" }, "\t"), "\n")
                if n > 1 then curl:write("next\n") end
                curl:write("url = ", cq("http://127.0.0.1:" .. ROUTER_PORT .. "/"), "\n")
                curl:write("request-target = ", cq(target), "\n")
                if method == "HEAD" then
                    curl:write("head\n")
                else
                    curl:write("request = ", cq(method), "\n")
                end
                curl:write("header = ", cq("X-Agree-Src: " .. src), "\n")
                local has_host = false
                for _, h in ipairs(headers) do
                    curl:write("header = ", cq(h), "\n")
                    if h:lower():match("^%s*host%s*:") then has_host = true end
                end
                -- absolute-form target: HAProxy wants Host to match its authority
                local authority = target:match("^[%a][%w+.-]*://([^/?#]*)")
                if authority and not has_host then
                    curl:write("header = ", cq("Host: " .. authority), "\n")
                end
                curl:write("output = \"/dev/null\"\n")
                curl:write("write-out = ", cq(n .. "\t%{http_code}\t%header{x-worker}\t%header{x-synroute-class}\t" ..
                    "%header{x-synroute-backend}\t%header{x-synroute-key}\t%header{x-synroute-fast}\n"), "\n")
            end
        end
    end
    fh:close()
end
exp:close(); curl:close(); skipped:close()

-- The deployment's fast paths, as the generator writes them.
local gen = require("synroute.haproxy_gen")
local facls, frules, fdecided = gen.fast_paths(eng.dep, eng)
local flines = {}
for _, l in ipairs(facls) do flines[#flines + 1] = "    " .. l end
for _, l in ipairs(frules) do flines[#flines + 1] = "    " .. l end
local fast_lines = table.concat(flines, "\n")
local ff = assert(io.open(outdir .. "/fast.txt", "w"))
for _, d in ipairs(fdecided) do ff:write(d, "\n") end
ff:close()

-- HAProxy: the router frontend (design.md "Per-request flow"), then one
-- backend + stand-in per pool.
local h = assert(io.open(outdir .. "/haproxy.cfg", "w"))
h:write(string.format([[
# generated by tests/e2e/agree/prepare.lua for %s
global
    setenv SYNROUTE_CONFIG %s
    lua-load-per-thread %s/lua/synroute/haproxy.lua

defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s

frontend router
    bind 127.0.0.1:%d
    # the case's source address (HAProxy sees 127.0.0.1 otherwise)
    http-request set-src req.hdr(x-agree-src) if { req.hdr(x-agree-src) -m found }
    # step 0 of the generated frontend: the converter reads the address back from it
    http-request set-header X-Forwarded-For %%[src]
    # the native fast paths `synroute haproxy` generates for this deployment;
    # the converter decides only what they leave (X-Synroute-Fast names them)
%s
    http-request set-var(txn.agree_fast) var(txn.synroute) if { var(txn.synroute) -m found }
    http-request set-var-fmt(txn.synroute_in) "%%[method] %%[req.fhdr(x-forwarded-for)] %%[pathq] %%[req.fhdr(authorization)]" if !{ var(txn.agree_fast) -m found }
    http-request set-var(txn.synroute) var(txn.synroute_in),lua.synroute if !{ var(txn.agree_fast) -m found }
    http-request unset-var(txn.synroute_in)
    http-request set-var(txn.synroute_key)     var(txn.synroute),field(3,|) if !{ var(txn.synroute) -m end | }
    http-request deny deny_status 404 if { var(txn.synroute),field(2,|) -m str blocked }
    http-after-response set-header X-Synroute-Class %%[var(txn.synroute),field(2,|)]
    http-after-response set-header X-Synroute-Backend %%[var(txn.synroute),field(1,|)]
    http-after-response set-header X-Synroute-Key %%[var(txn.synroute_key)]
    http-after-response set-header X-Synroute-Fast %%[var(txn.agree_fast)] if { var(txn.agree_fast) -m found }
    use_backend %%[var(txn.synroute),field(1,|)]
    default_backend main
]], config, config, root, ROUTER_PORT, fast_lines))

local pools = { { "main", eng.dep.main.host or "127.0.0.1", eng.dep.main.port } }
local names = {}
for p in pairs(eng.dep.pools) do names[#names + 1] = p end
table.sort(names)
for _, p in ipairs(names) do
    local s = eng.dep.pools[p].servers[1]
    if s then pools[#pools + 1] = { p, s.host or "127.0.0.1", s.port } end
end
local ports = { ROUTER_PORT }
for _, p in ipairs(pools) do
    local pool, host, port = p[1], p[2], p[3]
    h:write(string.format([[

backend %s
    server w %s:%d

frontend standin_%s
    bind %s:%d
    http-request return status 200 hdr X-Worker %s
]], pool, host, port, pool, host, port, pool))
    ports[#ports + 1] = port
end
h:close()

local pf = assert(io.open(outdir .. "/ports.txt", "w"))
pf:write(table.concat(ports, " "), "\n")
pf:close()
print(n)
