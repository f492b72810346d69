-- tests/version/test_probe.lua - synroute.probe and the CLI's --probe argument
-- handling, without a network (run by tests/version/run.sh with LUA_PATH and
-- LUA_CPATH set for synroute). Prints "ok version/unit/<name>" or "FAIL ...".
local probe = require("synroute.probe")
local routes = require("synroute.routes")

local kit = dofile((arg[0]:match("^(.*)tests/") or "") .. "tests/lua/testkit.lua")("version/unit")
local check = kit.check

-- version strings Synapse reports -> release
local REL = {
    { "1.121.1", "1.121" }, { "1.98.0rc1", "1.98" }, { "v1.157.0", "1.157" },
    { "1.157.0 (b=matrix-org-hotfixes,abc1234)", "1.157" }, { " 1.60.0", "1.60" },
    { "1.100.0", "1.100" }, { "2.0.0", "2.0" }, { "01.099.0", "1.99" },
    { "Synapse/1.121.1", nil }, { "", nil }, { "1", nil }, { "x.y", nil },
}
for _, c in ipairs(REL) do
    local got = probe.release(c[1])
    check("release " .. string.format("%q", c[1]), got == c[2], tostring(got) .. ", want " .. tostring(c[2]))
end
check("release non-string", probe.release(nil) == nil and probe.release(121) == nil, "")

-- which routes.yaml release to use
local doc = assert(routes.load(require("synroute.paths").routes_file))
local function choose(v) local a, b = probe.choose(doc, v); return tostring(a) .. "|" .. tostring(b) end
check("choose known", choose("1.98") == "1.98|nil", choose("1.98"))
check("choose oldest", choose("1.60") == "1.60|nil", choose("1.60"))
check("choose newer", choose("1.160"):match("^1%.157|Synapse 1%.160 is newer than the newest release synroute knows %(1%.157%)"), choose("1.160"))
check("choose 2.0", choose("2.0"):match("^1%.157|"), choose("2.0"))
check("choose older", choose("1.59"):match("^nil|Synapse 1%.59 is older than the oldest release synroute knows %(1%.60%)"), choose("1.59"))
local gap = { synapse_versions = { "1.60", "1.62" } }
local a, b = probe.choose(gap, "1.61")
check("choose gap", a == "1.60" and b and b:find("not in routes.yaml", 1, true), tostring(a) .. " " .. tostring(b))

-- main's URL from a deployment
local function url(m) local u, s = probe.main_url({ main = m }); return tostring(u) .. (s and (" " .. s) or "") end
check("main_url ipv4", url({ host = "127.0.0.1", port = 8008 }) == "http://127.0.0.1:8008", url({ host = "127.0.0.1", port = 8008 }))
check("main_url wildcard", url({ host = "0.0.0.0", port = 8008 }) == "http://127.0.0.1:8008", url({ host = "0.0.0.0", port = 8008 }))
check("main_url ipv6", url({ host = "::", port = 8008 }) == "http://[::1]:8008", url({ host = "::", port = 8008 }))
check("main_url unix", url({ path = "/run/synapse/main.sock" }) == "http://localhost /run/synapse/main.sock", url({ path = "/run/synapse/main.sock" }))
check("main_url none", probe.main_url({ main = {} }) == nil, "")

-- where synapse_version is, as config.load records it for messages
local cdep = assert(require("synroute.config").load(kit.root .. "/tests/version/conf-1.100/synroute.yaml"))
check("where", cdep.synapse_version_at:match("conf%-1%.100/synroute%.yaml:6$"), cdep.synapse_version_at)

-- get: refuses what is not an http(s) URL (nothing reaches the shell)
local body, err = probe.get("file:///etc/passwd")
check("get non-http", body == nil and err:find("not an http", 1, true), tostring(err))
body, err = probe.get("http://x/'; touch /tmp/pwned; '")
check("get spaces", body == nil, tostring(err))

-- CLI argument handling (synroute.cmdline + check.check_version_options)
local cmdline = require("synroute.cmdline")
local function args(cmd, t)
    local p = cmd == "check" and require("synroute.check").parser() or require("synroute.haproxy_gen").parser()
    local o, e = cmdline.parse(p, t)
    if o then o, e = require("synroute.check").check_version_options(o) end
    if not o then return "error: " .. e end
    return (o.probe and "probe " or "") .. (o.probe_url and ("url=" .. o.probe_url .. " ") or "") ..
        "cfg=" .. tostring(o.config) .. (o.synapse_version and (" v=" .. o.synapse_version) or "") ..
        (o.outfile and (" o=" .. o.outfile) or "")
end
local C = {
    { "check", { "a.yaml" }, "cfg=a.yaml" },
    { "check", { "a.yaml", "--probe" }, "probe cfg=a.yaml" },
    { "check", { "--probe-url", "http://h:1/v", "a.yaml" }, "probe url=http://h:1/v cfg=a.yaml" },
    { "check", { "--probe-url=http://h:1/v", "--probe", "a.yaml" }, "probe url=http://h:1/v cfg=a.yaml" },
    { "haproxy", { "-o", "out.cfg", "a.yaml", "--probe" }, "probe cfg=a.yaml o=out.cfg" },
    { "haproxy", { "--root", "/r", "--probe", "a.yaml", "--snippet" }, "probe cfg=a.yaml" },
    { "haproxy", { "a.yaml", "--synapse-version", "1.98" }, "cfg=a.yaml v=1.98" },
    { "haproxy", { "a.yaml", "--synapse-version", "1.98", "--probe" }, "error: give either --probe or --synapse-version, not both" },
    { "check", { "a.yaml", "--probe-url" }, "error: option '--probe-url' requires an argument" },
    { "check", { "a.yaml", "--probe-url", "ftp://x" }, "error: --probe-url must be an http:// or https:// URL, not \"ftp://x\"" },
}
for i, c in ipairs(C) do
    local got = args(c[1], c[2])
    check("args " .. i .. " " .. c[1] .. " " .. table.concat(c[2], " "), got == c[3], got .. "  want  " .. c[3])
end

-- the conservative set: what workers serve in every release
do
    local api = require("synroute.api")
    local cons = assert(api.new({ pools = "all", version = routes.CONSERVATIVE }))
    local old = assert(api.new({ pools = "all", version = doc.oldest }))
    local new = assert(api.new({ pools = "all", version = doc.latest }))
    local on_workers, differ = 0, {}
    for _, e in ipairs(doc.routes) do
        local since_ok = not e.since or routes.compare_versions(e.since, doc.oldest) <= 0
        local until_ok = not e["until"] or routes.compare_versions(e["until"], doc.latest) >= 0
        if since_ok and until_ok then on_workers = on_workers + 1 end
    end
    local n_reason = 0
    for _, e in ipairs(routes.active(doc, routes.CONSERVATIVE)) do
        if e.reason then n_reason = n_reason + 1 end
    end
    check("conservative entries", n_reason == #doc.routes - on_workers and n_reason > 0,
        n_reason .. " demoted, " .. on_workers .. " kept")
    -- a request on a worker in the conservative set is on the same worker at 1.60 and at the newest
    for _, r in ipairs({ { "GET", "/_matrix/client/v3/sync?since=s" }, { "PUT", "/_matrix/federation/v1/send/1" },
                         { "GET", "/_matrix/client/v3/devices" }, { "GET", "/_matrix/client/v3/capabilities" },
                         { "GET", "/_matrix/client/v1/rooms/!r:x/relations/$e" }, { "POST", "/_matrix/client/v3/keys/upload" } }) do
        local c, o, n = cons:explain{ method = r[1], target = r[2] }, old:explain{ method = r[1], target = r[2] },
            new:explain{ method = r[1], target = r[2] }
        local ok = c.backend == "main" or (c.backend == o.backend and c.backend == n.backend)
        differ[#differ + 1] = ok and nil or (r[2] .. ": " .. c.backend .. " vs " .. o.backend .. "/" .. n.backend)
        check("conservative " .. r[1] .. " " .. r[2], ok, table.concat(differ, "; "))
    end
    local d = cons:explain{ method = "GET", target = "/_matrix/client/v3/devices" }
    check("conservative until-entry to main", d.backend == "main" and d.reason:find("only until 1.134", 1, true), d.reason)
end

kit.finish()
