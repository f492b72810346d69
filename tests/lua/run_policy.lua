-- tests/lua/run_policy.lua - table-driven policy tests (the cases*.tsv files).
-- usage: lua run_policy.lua [NAME_PREFIX]      (run by tests/lua/run.sh)
-- Prints "ok <prefix>/<n> <method> <target>" or "FAIL <prefix>/<n> ...: got X want Y".

local prefix = arg and arg[1] or "lua"
local kit = dofile((arg[0]:match("^(.*)tests/") or "") .. "tests/lua/testkit.lua")(prefix)
local here = kit.root .. "/tests/lua"

local api = require("synroute.api")

local AS_TOKEN = "as_token_bridge_0123456789abcdef"
local AS_DEP = {
    synapse_version = nil,
    hash_secret = "test secret for the appservice cases",
    main = { name = "main", serves_media = true },
    pools = {
        generic = { servers = {} }, appservice = { servers = {} }, client = { servers = {} },
        sync = { servers = {} }, event_send = { servers = {} },
    },
    as_tokens = { { token = AS_TOKEN, sender = "bridgebot" } },
    warnings = {},
}

local SUITES = {
    { file = "cases.tsv", name = "", opts = { pools = "all" } },
    { file = "cases_partial.tsv", name = "partial/", opts = { pools = { "generic", "sync", "media" } } },
    { file = "cases_none.tsv", name = "none/", opts = {} },
    { file = "cases_appservice.tsv", name = "as/", opts = { dep = AS_DEP } },
    { file = "cases_old.tsv", name = "old/", opts = { pools = { "generic", "sync", "media" }, version = "1.60" } },
}

local ok, fail = kit.ok, kit.fail

local function split(s, sep)
    local out, i = {}, 1
    while true do
        local a, b = s:find(sep, i, true)
        if not a then
            out[#out + 1] = s:sub(i)
            return out
        end
        out[#out + 1] = s:sub(i, a - 1)
        i = b + 1
    end
end

local function unescape(s)
    return (s:gsub("\\t", "\t"))
end

-- Every secret-looking string a request carries: the Bearer tokens and the
-- access_token query values (raw and decoded), so we can check that none of
-- them shows up in the output.
local function secrets_of(req)
    local list = {}
    for _, h in ipairs(req.headers) do
        local t = h:match("[Bb]earer%s+(%S+)")
        if t and #t >= 8 then list[#list + 1] = t end
    end
    local q = req.target:match("%?(.*)$")
    if q then
        for v in q:gmatch("access_token=([^&]*)") do
            if #v >= 8 then
                list[#list + 1] = v
                local dec = v:gsub("%+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
                list[#list + 1] = dec
            end
        end
    end
    return list
end

local function match_expect(want, got)
    if want == "*" then return true end
    if want:sub(-1) == "*" and #want > 1 then
        return type(got) == "string" and got:sub(1, #want - 1) == want:sub(1, -2)
    end
    return want == got
end

local total_cases = 0
for _, suite in ipairs(SUITES) do
    local path = here .. "/" .. suite.file
    local eng, err = api.new(suite.opts)
    if not eng then
        fail(suite.name .. "engine", tostring(err))
        goto next_suite
    end
    do
        local f = io.open(path, "r")
        if not f then
            fail(suite.name .. "file", "cannot open " .. path)
            goto next_suite
        end
        local n, lineno = 0, 0
        for line in f:lines() do
            lineno = lineno + 1
            if line ~= "" and line:sub(1, 1) ~= "#" then
                n = n + 1
                local c = split(line, "\t")
                local name = string.format("%s%d %s %s", suite.name, n, c[1] or "?", c[2] or "?")
                if #c < 8 or #c > 9 then
                    fail(name, string.format("%s:%d: expected 8 or 9 columns, got %d", path, lineno, #c))
                    goto next_case
                end
                do
                    local req = {
                        method = c[1], target = c[2], headers = {},
                        src = c[4] ~= "-" and c[4] or nil,
                    }
                    if c[3] ~= "-" then
                        for _, h in ipairs(split(c[3], " ;; ")) do
                            req.headers[#req.headers + 1] = unescape(h)
                        end
                    end
                    local want = {
                        class = c[5], backend = c[6], key_kind = c[7],
                        key = c[8] == "-" and "" or c[8], reason = c[9],
                    }
                    local d = eng:explain(req)
                    local problems = {}
                    local function expect(field, w, g)
                        if not match_expect(w, g) then
                            problems[#problems + 1] = string.format("%s: got %q want %q", field, tostring(g), w)
                        end
                    end
                    expect("class", want.class, d.class)
                    expect("backend", want.backend, d.backend)
                    expect("key_kind", want.key_kind, d.key_kind)
                    if want.key == "th:*" then
                        if not (type(d.key) == "string" and d.key:match("^th:%x+$") and #d.key == 19) then
                            problems[#problems + 1] = string.format("key: got %q want th:<16 hex>", tostring(d.key))
                        end
                    else
                        expect("key", want.key, d.key)
                    end
                    if want.reason == nil or want.reason == "-" then
                        if d.reason ~= nil then
                            problems[#problems + 1] = string.format("reason: got %q want none", d.reason)
                        end
                    else
                        expect("reason", want.reason, d.reason)
                    end
                    -- invariants
                    if d.key_kind == "none" then
                        if d.key ~= "" or d.hash ~= "" then
                            problems[#problems + 1] = "key_kind none but key/hash set"
                        end
                    else
                        if not (type(d.hash) == "string" and #d.hash == 16 and d.hash:match("^%x+$")) then
                            problems[#problems + 1] = string.format("hash %q is not 16 hex digits", tostring(d.hash))
                        else
                            local kind = d.key_kind
                            local h = eng.router:hkey(kind, d.key)
                            if h ~= d.hash then
                                problems[#problems + 1] = string.format("hash %s != router:hkey(%s, key) %s", d.hash, kind, h)
                            end
                        end
                    end
                    local packed = eng:route(req)
                    local want_packed = d.backend .. "|" .. d.class .. "|" .. d.hash
                    if packed ~= want_packed then
                        problems[#problems + 1] = string.format("route() %q != explain %q", packed, want_packed)
                    end
                    if type(d.route) ~= "string" or d.route == "" then
                        problems[#problems + 1] = "no route id"
                    end
                    for _, s in ipairs(secrets_of(req)) do
                        for field, v in pairs(d) do
                            if type(v) == "string" and v:find(s, 1, true) then
                                problems[#problems + 1] = "raw token in explain field " .. field
                            end
                        end
                    end
                    if #problems == 0 then
                        ok(name)
                    else
                        fail(name, table.concat(problems, "; "))
                    end
                end
                ::next_case::
            end
        end
        f:close()
        total_cases = total_cases + n
    end
    ::next_suite::
end

-- Same token in the header and in the query gives the same token-hash key;
-- different tokens give different keys.
do
    local eng = api.new{ pools = "all" }
    if eng then
        local S = "/_matrix/client/v3/sync?since=s1"
        local tok1 = "mat_gaKjIg8xNbe3nNyjOq9wMxEhh2FDEE_3kV79T"
        local tok2 = "mat_tfjgVvVqE1SkHbn88HxjSI6bWHtP3f_1vnLIw"
        local a = eng:explain{ target = S, headers = { "Authorization: Bearer " .. tok1 } }
        local b = eng:explain{ target = S .. "&access_token=" .. tok1 }
        local c = eng:explain{ target = S, headers = { "Authorization: Bearer " .. tok2 } }
        local name = "th-same-token-same-key"
        if a.key == b.key and a.hash == b.hash and a.key:match("^th:") then ok(name)
        else fail(name, string.format("header %s query %s", a.key, b.key)) end
        name = "th-other-token-other-key"
        if a.key ~= c.key and a.hash ~= c.hash then ok(name)
        else fail(name, "two tokens share key " .. tostring(a.key)) end
        -- the same user from syt_ in header and query, and from a macaroon: same key and hash
        local u1 = eng:explain{ target = S, headers = { "Authorization: Bearer syt_YWxpY2U_ujzPdeIgxLdGncfBAepf_45EzU1" } }
        local u2 = eng:explain{ target = S .. "&access_token=syt_YWxpY2U_ujzPdeIgxLdGncfBAepf_45EzU1" }
        name = "user-header-query-same-hash"
        if u1.hash == u2.hash and u1.key == "alice" then ok(name)
        else fail(name, string.format("%s/%s vs %s/%s", u1.key, u1.hash, u2.key, u2.hash)) end
        -- sync and initial sync of one user hash alike (stickiness survives the refine)
        local u3 = eng:explain{ target = "/_matrix/client/v3/sync", headers = { "Authorization: Bearer syt_YWxpY2U_ujzPdeIgxLdGncfBAepf_45EzU1" } }
        name = "sync-initial-same-hash"
        if u3.hash == u1.hash and u3.class == "initial_sync" then ok(name)
        else fail(name, string.format("%s %s vs %s", u3.class, u3.hash, u1.hash)) end
        -- a different secret gives a different hash for the same key
        local dep = { hash_secret = "another secret", main = { name = "main", serves_media = true },
                      pools = { sync = { servers = {} } }, as_tokens = {} }
        local e2 = api.new{ dep = dep }
        local u4 = e2 and e2:explain{ target = S, headers = { "Authorization: Bearer syt_YWxpY2U_ujzPdeIgxLdGncfBAepf_45EzU1" } }
        name = "secret-changes-hash"
        if u4 and u4.key == "alice" and u4.hash ~= u1.hash then ok(name)
        else fail(name, "hash did not change with the secret") end
    end
end

io.stderr:write(string.format("%s: %d table cases\n", prefix, total_cases))
kit.finish()
