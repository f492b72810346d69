-- tests/lua/test_cli.lua - bin/synroute: explain equals eng:explain, never a
-- raw token, exit codes and usage. Run with lua5.4 from the repository root.

local prefix = "lua/cli"
local kit = dofile((arg[0]:match("^(.*)tests/") or "") .. "tests/lua/testkit.lua")(prefix)
local check = kit.check
local root = kit.root

local api = require("synroute.api")
local json = require("synroute.json")
local cjson = require("cjson.safe")


local function q(s)
    return "'" .. s:gsub("'", "'\\''") .. "'"
end

local tmp = os.tmpname()
local function run(args, env)
    local cmd = (env or "") .. " " .. q(root .. "/bin/synroute")
    for _, a in ipairs(args) do cmd = cmd .. " " .. q(a) end
    cmd = cmd .. " 2>" .. q(tmp)
    local p = io.popen(cmd, "r")
    local out = p:read("a")
    local _, _, code = p:close()
    local f = io.open(tmp, "r")
    local err = f and f:read("a") or ""
    if f then f:close() end
    return out, err, code
end

local ALICE = "syt_YWxpY2U_ujzPdeIgxLdGncfBAepf_45EzU1"
local THORN = "syt_YcO+_ujzPdeIgxLdGncfBAepf_4EsSy2"
local MAT = "mat_gaKjIg8xNbe3nNyjOq9wMxEhh2FDEE_3kV79T"
local MAC = "MDAxOGxvY2F0aW9uIGhzLmV4YW1wbGUKMDAxM2lkZW50aWZpZXIga2V5CjAwMTBjaWQgZ2VuID0gMQowMDI2Y2lkIHVzZXJfaWQgPSBAbWFsbG9yeTpocy5leGFtcGxlCjAwMTZjaWQgdHlwZSA9IGFjY2VzcwowMDE3Y2lkIG5vbmNlID0gYWJjMTIzCjAwMmZzaWduYXR1cmUgAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8K"
local XM = 'X-Matrix origin="remote.example",key="ed25519:a1",sig="c2ln"'

local cases = {
    { "GET", "/_matrix/client/v3/sync?since=s1", { "Authorization: Bearer " .. ALICE } },
    { "GET", "/_matrix/client/v3/sync", { "Authorization: Bearer " .. ALICE } },
    { "GET", "/_matrix/client/v3/sync?since=s1&access_token=" .. THORN:gsub("%+", "%%2B") },
    { "GET", "/_matrix/client/v3/sync?since=s1&access_token=" .. THORN },
    { "GET", "/_matrix/client/v3/sync?since=s1", { "Authorization: Bearer " .. MAT } },
    { "GET", "/_matrix/client/v3/sync?since=s1", { "Authorization: Bearer " .. MAC } },
    { "PUT", "/_matrix/federation/v1/send/t1", { "Authorization: " .. XM } },
    { "PUT", "/_matrix/federation/v1/send/t1", {}, "2001:db8::7" },
    { "PUT", "/_matrix/client/v3/rooms/%21abc%3Aexample.org/send/m.room.message/t1", { "Authorization: Bearer " .. ALICE } },
    { "GET", "/_matrix/client/v3/profile/%40alice%3Ahs.example/displayname" },
    { "POST", "/_synapse/replication/send_event/x" },
    { "GET", "/nowhere" },
    { "GET", "/_matrix/client/v3/user/@a:hs/account_data/m.direct", { "Authorization: Bearer " .. ALICE } },
}

local function explain_args(c, extra)
    local args = { "explain" }
    for _, a in ipairs(extra) do args[#args + 1] = a end
    args[#args + 1] = c[1]
    args[#args + 1] = c[2]
    for _, h in ipairs(c[3] or {}) do
        args[#args + 1] = "-H"
        args[#args + 1] = h
    end
    if c[4] then
        args[#args + 1] = "--src"
        args[#args + 1] = c[4]
    end
    return args
end

local secrets = { ALICE, THORN, MAT, MAC, (THORN:gsub("%+", "%%2B")), (THORN:gsub("%+", " ")) }

local DEPLOYMENTS = {
    { name = "all", cli = { "--pools", "all" }, opts = { pools = "all" } },
    { name = "partial", cli = { "--pools", "generic,sync,media" }, opts = { pools = { "generic", "sync", "media" } } },
    { name = "none", cli = { "--no-config" }, opts = {} },
    { name = "old", cli = { "--pools", "all", "--version", "1.60" }, opts = { pools = "all", version = "1.60" } },
}

for _, dep in ipairs(DEPLOYMENTS) do
    local eng, err = api.new(dep.opts)
    if not eng then
        check(dep.name .. "/engine", false, err)
        goto next
    end
    for i, c in ipairs(cases) do
        local name = string.format("%s/%d %s %s", dep.name, i, c[1], c[2])
        local out, errout, code = run(explain_args(c, dep.cli))
        local want = eng:explain{ method = c[1], target = c[2], headers = c[3], src = c[4] }
        local want_text = json.encode(want, { order = api.EXPLAIN_ORDER }) .. "\n"
        local got = cjson.decode(out)
        local problems = {}
        if code ~= 0 then problems[#problems + 1] = "exit " .. tostring(code) .. ": " .. errout end
        if out ~= want_text then problems[#problems + 1] = "output " .. out .. " want " .. want_text end
        if not got then
            problems[#problems + 1] = "not JSON"
        else
            for _, k in ipairs({ "class", "backend", "key_kind", "key", "hash", "route" }) do
                if got[k] ~= want[k] then problems[#problems + 1] = k .. " differs" end
            end
            for k in pairs(got) do
                if want[k] == nil then problems[#problems + 1] = "extra field " .. k end
            end
        end
        for _, s in ipairs(secrets) do
            if out:find(s, 1, true) or errout:find(s, 1, true) then
                problems[#problems + 1] = "raw token in output"
            end
        end
        check(name, #problems == 0, table.concat(problems, "; "))
    end
    ::next::
end

-- order of the fields
do
    local out = run({ "explain", "--pools", "all", "GET", "/_matrix/client/v3/sync", "-H", "Authorization: Bearer " .. ALICE })
    check("field-order", out:match('^{"class":"initial_sync","backend":"initial_sync","key_kind":"user","key":"alice","hash":"%x+","route":"[^"]+"}\n$'), out)
    local out2 = run({ "explain", "--pools", "all", "--synapse-version", "1.60", "POST",
        "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync?pos=1" })
    check("reason-last", out2:match('"route":"[^"]+","reason":"served by workers since [%d.]+"}\n$'), out2)
end

-- answer: what HAProxy answers itself, after route and before reason
do
    local cfg = "examples/full/synroute.yaml"
    local function answer(args)
        local out = run(args)
        return out:match('"route":"[^"]+","answer":(%d+),"reason":"[^"]+"}\n$'), out
    end
    local a, out = answer({ "explain", "--config", cfg, "--src", "192.0.2.1", "GET",
        "/_matrix/%2e%2e/_synapse/admin/v1/rooms" })
    check("answer-403-admin", a == "403", out)
    a, out = answer({ "explain", "--config", cfg, "--src", "127.0.0.1", "GET", "/_matrix/%2e%2e/_synapse/admin/v1/rooms" })
    check("answer-none-from-admin-network", a == nil and not out:find('"answer"', 1, true), out)
    a, out = answer({ "explain", "--config", cfg, "GET", "/_synapse/metrics" })
    check("answer-404-metrics", a == "404", out)
    a, out = answer({ "explain", "--config", cfg, "GET", "/_matrix/%252e%252e/x" })
    check("answer-400-double-encoded", a == "400", out)
    a, out = answer({ "explain", "--config", cfg, "TRACE", "/_matrix/client/versions" })
    check("answer-405-trace", a == "405", out)
    out = run({ "explain", "--config", cfg, "GET", "/_matrix/client/v3/sync?since=1%ZZ" })
    check("answer-none-query-escape", not out:find('"answer"', 1, true), out)
end

-- option forms and usage
do
    local a = run({ "explain", "--pools=all", "GET", "/_matrix/client/v3/sync", "-HAuthorization: Bearer " .. ALICE })
    local b = run({ "explain", "--pools", "all", "GET", "/_matrix/client/v3/sync", "--header", "Authorization: Bearer " .. ALICE })
    check("option-forms", a ~= "" and a == b, a .. " vs " .. b)
    local c = run({ "explain", "--no-config", "GET", "/x" }, "SYNROUTE_CONFIG=/nonexistent/synroute.yaml")
    check("no-config-flag", c:find('"backend":"main"', 1, true), c)

    local out, err, code = run({ "--help" })
    check("help", code == 0 and out:find("usage: synroute", 1, true) and err == "", code)
    out, err, code = run({})
    check("no-command", code == 2 and out == "" and err:find("usage: synroute", 1, true), code)
    out, err, code = run({ "frobnicate" })
    check("unknown-command", code == 2 and out == "" and err:find("unknown command", 1, true)
        and err:find("usage:", 1, true), tostring(code) .. " " .. err)
    out, err, code = run({ "explain", "--no-config", "GET" })
    check("explain-missing-target", code == 2 and out == "" and err:find("missing argument 'TARGET'", 1, true)
        and err:find("<METHOD> <TARGET>", 1, true), tostring(code) .. " " .. err)
    out, err, code = run({ "explain", "--frob", "GET", "/x" })
    check("explain-bad-option", code == 2 and out == "" and err:find("--frob", 1, true), tostring(code) .. " " .. err)
    out, err, code = run({ "explain", "--no-config", "GET", "/x", "-H", "NoColon" })
    check("explain-bad-header", code == 2 and out == "", tostring(code) .. " " .. err)
    out, err, code = run({ "explain", "--pools", "all", "--no-config", "GET", "/x" })
    check("explain-conflict", code == 2 and out == "", tostring(code) .. " " .. err)
    out, err, code = run({ "explain", "--pools", "all", "--synapse-version", "banana", "GET", "/x" })
    check("explain-bad-version", code == 1 and out == "" and err:find("banana", 1, true), tostring(code) .. " " .. err)
    out, err, code = run({ "explain", "--pools", "nosuch", "GET", "/x" })
    check("explain-bad-pool", code == 1 and out == "" and err:find("nosuch", 1, true), tostring(code) .. " " .. err)
    out, err, code = run({ "explain", "--routes", "/nonexistent/routes.yaml", "--no-config", "GET", "/x" })
    check("explain-missing-routes", code == 1 and out == "" and err:find("/nonexistent/routes.yaml", 1, true), tostring(code) .. " " .. err)
    out, err, code = run({ "explain", "--config", "/nonexistent/synroute.yaml", "GET", "/x" })
    check("explain-missing-config", code == 1 and out == "" and err ~= "", tostring(code) .. " " .. err)
end

-- routes --explain-table: one line per entry of the router's set, in order
do
    local eng = assert(api.new({}))
    local out, err, code = run({ "routes", "--explain-table" })
    local rows, ids_ok = 0, true
    for n, id in out:gmatch("\n +(%d+)  (%S+) ") do
        rows = rows + 1
        if tonumber(n) ~= rows or id ~= eng.spec.entries[rows].id then ids_ok = false end
    end
    check("routes-explain-table", code == 0 and err == "" and out:match("^routes: [^\n]+ for Synapse " ..
        eng.version:gsub("%.", "%%.") .. "\nregex set: " .. #eng.spec.entries .. " entries") ~= nil,
        tostring(code) .. " " .. err .. out:sub(1, 200))
    check("routes-explain-table-rows", rows == #eng.spec.entries and ids_ok, rows .. " rows")
    local old = assert(api.new({ version = "1.60" }))
    out, err, code = run({ "routes", "--explain-table", "--synapse-version", "1.60" })
    check("routes-explain-table-version", code == 0 and err == "" and
        out:find("\nregex set: " .. #old.spec.entries .. " entries", 1, true) ~= nil, out:sub(1, 200))
    out, err, code = run({ "routes" })
    check("routes-needs-explain-table", code == 2 and out == "" and err:find("--explain-table", 1, true), tostring(code) .. " " .. err)
    out, err, code = run({ "routes", "--explain-table", "--frob" })
    check("routes-bad-option", code == 2 and out == "" and err:find("--frob", 1, true), tostring(code) .. " " .. err)
    out, err, code = run({ "routes", "--explain-table", "--routes", "/nonexistent/routes.yaml" })
    check("routes-missing-routes", code == 1 and out == "" and err:find("/nonexistent/routes.yaml", 1, true),
        tostring(code) .. " " .. err)
end

-- one grammar (lua-argparse): per-command help, short usage errors without a
-- Lua file:line, the same option names everywhere, exit codes 0/1/2
do
    local cmds = { "explain", "check", "haproxy", "replay", "routes", "status", "drain", "ready", "show" }
    for _, c in ipairs(cmds) do
        local out, err, code = run({ c, "--help" })
        check("help/" .. c, code == 0 and err == "" and out:find("^Usage: synroute " .. c .. " ")
            and out:find("Exit status: 0 ok, 1 problems found", 1, true), tostring(code) .. " " .. err .. out:sub(1, 80))
        local out2, _, code2 = run({ "help", c })
        check("help-command/" .. c, code2 == 0 and out2 == out, tostring(code2))
        local o3, e3, c3 = run({ c, "--no-such-option" })
        check("usage/" .. c, c3 == 2 and o3 == "" and e3:find("^synroute " .. c .. ": unknown option '%-%-no%-such%-option'\n")
            and not e3:find("%.lua:%d") and e3:find("Try 'synroute " .. c .. " --help'", 1, true) and #e3 < 800,
            tostring(c3) .. " " .. e3)
    end
    -- --synapse-version is the name everywhere (explain/routes keep --version working)
    for _, c in ipairs(cmds) do
        local out = run({ c, "--help" })
        local has = out:find("--synapse-version", 1, true) ~= nil
        local want = c == "explain" or c == "check" or c == "haproxy" or c == "replay" or c == "routes"
        check("synapse-version-name/" .. c, has == want and not out:find("\n%s*%-%-version"), c)
    end
    local a = run({ "explain", "--pools", "all", "--synapse-version", "1.60", "GET", "/_matrix/client/v1/rooms/!r:x/relations/$e" })
    local b = run({ "explain", "--pools", "all", "--version", "1.60", "GET", "/_matrix/client/v1/rooms/!r:x/relations/$e" })
    check("synapse-version-alias", a ~= "" and a == b and a:find('"backend":"main"', 1, true), a .. " vs " .. b)
    local _, err, code = run({ "check" })
    check("check-missing-config", code == 2 and err:find("missing argument 'CONFIG'", 1, true), tostring(code) .. " " .. err)
    _, err, code = run({ "haproxy", "x.yaml", "--reload" })
    check("haproxy-reload-needs-o", code == 2 and err:find("need -o FILE", 1, true), tostring(code) .. " " .. err)
    _, err, code = run({ "check", "x.yaml", "--probe", "--synapse-version", "1.98" })
    check("probe-conflict", code == 2 and err:find("either --probe or --synapse-version", 1, true), tostring(code) .. " " .. err)
    _, err, code = run({ "help", "frob" })
    check("help-unknown", code == 2 and err:find("unknown command", 1, true), tostring(code) .. " " .. err)
end

-- the launcher through a symlink in another directory
do
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. q(dir) .. " && ln -s " .. q(root .. "/bin/synroute") .. " " .. q(dir .. "/sr"))
    local p = io.popen("cd / && " .. q(dir .. "/sr") .. " explain --no-config GET /_synapse/mas/x 2>&1")
    local out = p:read("a")
    p:close()
    os.execute("rm -rf " .. q(dir))
    check("symlink-launch", out:find('"class":"blocked"', 1, true), out)
end

os.remove(tmp)
kit.finish()
