-- tests/routes/test_routes.lua - checks routes/routes.yaml against Synapse's
-- documented worker routes and runs request cases through the Lua API.
--
-- Run from the repository root:   lua5.4 tests/routes/test_routes.lua
--
-- Prints "ok routes/<name>" or "FAIL routes/<name>: why" per check, and exits
-- 1 if anything failed.
--
--   (1) the table itself: top-level keys, synapse_versions, unique ids,
--       fields, version ranges;
--   (2) per tests/routes/docs-<version>.txt: the set of patterns that the table
--       makes active at that version (for entries taken from docs/workers.md)
--       equals the docs' set, after the documented differences in
--       docs-allowances.txt; and each documented regex has the right kind of
--       entry (any method / GET only / writer / media / sso / messages);
--   (3) tests/routes/version_cases.txt through
--       require("synroute.api").new{ pools = "all", version = V }.

local kit = dofile((arg[0]:match("^(.*)tests/") or "") .. "tests/lua/testkit.lua")("routes")
package.path = kit.root .. "/lua/?.lua;" .. package.path
package.cpath = kit.root .. "/build/5.4/?.so;" .. package.cpath
local ok, fail, check = kit.ok, kit.fail, kit.check

local DIR = kit.root .. "/tests/routes/"
local ROUTES = kit.root .. "/routes/routes.yaml"

local synroute = require("synroute")
local api = require("synroute.api")

---------------------------------------------------------------------------
-- helpers

local function vnum(s)
    local a, b = tostring(s):match("^(%d+)%.(%d+)$")
    if not a then return nil end
    return tonumber(a) * 1000 + tonumber(b)
end

local function read_lines(path)
    local f, err = io.open(path, "r")
    if not f then return nil, err end
    local out = {}
    for line in f:lines() do out[#out + 1] = line end
    f:close()
    return out
end

local function split_tabs(line)
    local out = {}
    for field in (line .. "\t"):gmatch("([^\t]*)\t") do out[#out + 1] = field end
    return out
end

local function is_null(v) return v == nil or v == synroute.null end

local WRITERS = {
    typing = true, to_device = true, account_data = true, receipts = true,
    presence = true, push_rules = true, device_lists = true, thread_subscriptions = true,
}
local CLASSES = {
    sync = true, initial_sync = true, federation = true, federation_send = true,
    client = true, encryption = true, login = true, event_send = true, messages = true,
    user_directory = true, sso = true, media = true, admin = true, blocked = true, main = true,
}
for w in pairs(WRITERS) do CLASSES[w] = true end
local FIELDS = {
    id = true, class = true, pattern = true, methods = true, refine = true,
    alt_class = true, key = true, generic = true, since = true, ["until"] = true, source = true,
}

---------------------------------------------------------------------------
-- (1) the table

local doc, err = synroute.yaml_load(ROUTES)
if not doc then
    fail("load", err)
    os.exit(1)
end
ok("load")

check("version", doc.version == 1 or doc.version == "1", "top-level version must be 1, got " .. tostring(doc.version))

do
    local vs = doc.synapse_versions
    local want, good, why = {}, type(vs) == "table", "synapse_versions is not a list"
    for n = 60, 157 do want[#want + 1] = "1." .. n end
    if good and #vs ~= #want then good, why = false, ("%d versions, want %d"):format(#vs, #want) end
    if good then
        for i, v in ipairs(want) do
            if vs[i] ~= v then good, why = false, ("item %d is %s, want %s"):format(i, tostring(vs[i]), v) break end
        end
    end
    check("synapse_versions", good, why)
end

local entries = type(doc.routes) == "table" and doc.routes or {}
check("routes_count", #entries >= 100, "only " .. #entries .. " routes")

local function generic_of(e)
    local g = e.generic
    if is_null(g) then return WRITERS[e.class] and "none" or "all" end
    if type(g) == "table" then
        local s = {}
        for _, m in ipairs(g) do s[m] = true end
        return s
    end
    return g
end

local function methods_of(e)
    if is_null(e.methods) then return nil end
    local s = {}
    for _, m in ipairs(e.methods) do s[m] = true end
    return s
end

do
    local problems, ids = {}, {}
    for i, e in ipairs(entries) do
        local name = type(e) == "table" and tostring(e.id) or ("#" .. i)
        if type(e) ~= "table" then
            problems[#problems + 1] = name .. ": not a map"
        else
            for k in pairs(e) do
                if not FIELDS[k] then problems[#problems + 1] = name .. ": unknown field " .. tostring(k) end
            end
            if type(e.id) ~= "string" or not e.id:match("^[a-z0-9_]+$") then
                problems[#problems + 1] = name .. ": bad id"
            elseif ids[e.id] then
                problems[#problems + 1] = name .. ": duplicate id"
            end
            ids[e.id or i] = true
            if not CLASSES[e.class] then problems[#problems + 1] = name .. ": unknown class " .. tostring(e.class) end
            if type(e.pattern) ~= "string" or e.pattern:sub(1, 1) ~= "^" then
                problems[#problems + 1] = name .. ": pattern must start with '^'"
            end
            if type(e.source) ~= "string" or e.source == "" then
                problems[#problems + 1] = name .. ": no source"
            end
            local s, u = e.since, e["until"]
            if not is_null(s) and not vnum(s) then problems[#problems + 1] = name .. ": bad since" end
            if not is_null(u) and not vnum(u) then problems[#problems + 1] = name .. ": bad until" end
            if vnum(s) and (vnum(s) < 1060 or vnum(s) > 1157) then problems[#problems + 1] = name .. ": since outside 1.60-1.157" end
            if vnum(u) and (vnum(u) < 1060 or vnum(u) > 1157) then problems[#problems + 1] = name .. ": until outside 1.60-1.157" end
            if vnum(s) and vnum(u) and vnum(s) > vnum(u) then problems[#problems + 1] = name .. ": since after until" end
            if not is_null(e.refine) and not (e.refine == "since" or e.refine == "pos") then
                problems[#problems + 1] = name .. ": bad refine"
            end
            if not is_null(e.refine) and not CLASSES[e.alt_class] then
                problems[#problems + 1] = name .. ": refine without a valid alt_class"
            end
        end
    end
    check("entries_wellformed", #problems == 0, table.concat(problems, "; "))
end

do -- every pattern compiles as PCRE2 (the set the router builds)
    local pats = {}
    for _, e in ipairs(entries) do pats[#pats + 1] = e.pattern end
    local set, serr = synroute.regex_set(pats)
    check("patterns_compile", set ~= nil, serr)
end

local function active(e, v)
    local s = is_null(e.since) and 1060 or vnum(e.since)
    local u = is_null(e["until"]) and 1157 or vnum(e["until"])
    return s <= v and v <= u
end

---------------------------------------------------------------------------
-- (2) the docs fixtures

local allowances = { map = {}, skip = {}, extra = {}, strict = {}, class = {} }
do
    local lines, lerr = read_lines(DIR .. "docs-allowances.txt")
    if not lines then
        fail("allowances", lerr)
    else
        local bad = {}
        for n, line in ipairs(lines) do
            if line ~= "" and not line:match("^#") then
                local f = split_tabs(line)
                local kind = f[1]
                local function range(r)
                    local a, b = (r or ""):match("^(%d+%.%d+)%-(%d+%.%d+)$")
                    if not a then bad[#bad + 1] = "line " .. n .. ": bad range" return 0, -1 end
                    return vnum(a), vnum(b)
                end
                if kind == "map" then
                    local a, b = range(f[2])
                    table.insert(allowances.map, { from = a, to = b, docs = f[3], ours = f[4] })
                elseif kind == "skip" then
                    local a, b = range(f[2])
                    table.insert(allowances.skip, { from = a, to = b, docs = f[3] })
                elseif kind == "extra" then
                    local a, b = range(f[2])
                    table.insert(allowances.extra, { from = a, to = b, ours = f[3] })
                elseif kind == "strict" then
                    local a, b = range(f[2])
                    table.insert(allowances.strict, { from = a, to = b, docs = f[3] })
                elseif kind == "class" then
                    allowances.class[f[2]] = f[3]
                else
                    bad[#bad + 1] = "line " .. n .. ": unknown kind " .. tostring(kind)
                end
            end
        end
        check("allowances", #bad == 0, table.concat(bad, "; "))
    end
end

local function docs_entries_at(v)
    -- active entries taken from docs/workers.md, by pattern
    local by_pat = {}
    for _, e in ipairs(entries) do
        if active(e, v) then
            by_pat[e.pattern] = by_pat[e.pattern] or {}
            table.insert(by_pat[e.pattern], e)
        end
    end
    return by_pat
end

local function sorted_keys(t)
    local out = {}
    for k in pairs(t) do out[#out + 1] = k end
    table.sort(out)
    return out
end

-- what kind of handling the documented section asks for
local function serves_any_method_on_generic(e)
    if WRITERS[e.class] then return generic_of(e) == "all" end
    return methods_of(e) == nil and e.class ~= "sso" and e.class ~= "admin"
        and e.class ~= "blocked" and e.class ~= "main"
end
local function serves_get_only_on_generic(e)
    if WRITERS[e.class] then
        local g = generic_of(e)
        return type(g) == "table" and g.GET == true and not g.PUT and not g.POST and not g.DELETE
    end
    local m = methods_of(e)
    return m ~= nil and m.GET == true and not m.PUT and not m.POST and not m.DELETE
end

local function check_fixture(file, version)
    local v = vnum(version)
    local lines, lerr = read_lines(DIR .. file)
    if not lines then fail("docs/" .. version .. "/read", lerr) return end
    local docs_set, by_section = {}, {}
    for _, line in ipairs(lines) do
        if line ~= "" and not line:match("^#") then
            local f = split_tabs(line)
            local sec, rx = f[1], f[2]
            if sec == "media_prefix" then rx = "^" .. rx end
            local skipped = false
            for _, a in ipairs(allowances.map) do
                if a.from <= v and v <= a.to and a.docs == rx then rx = a.ours end
            end
            for _, a in ipairs(allowances.skip) do
                if a.from <= v and v <= a.to and a.docs == rx then skipped = true end
            end
            if not skipped then
                docs_set[rx] = true
                table.insert(by_section, { sec = sec, rx = rx })
            end
        end
    end
    local ours = {}
    for _, e in ipairs(entries) do
        if active(e, v) and type(e.source) == "string" and e.source:find("docs/workers.md", 1, true) then
            ours[e.pattern] = true
        end
    end
    for _, a in ipairs(allowances.extra) do
        if a.from <= v and v <= a.to then ours[a.ours] = nil end
    end
    local missing, extra = {}, {}
    for _, p in ipairs(sorted_keys(docs_set)) do if not ours[p] then missing[#missing + 1] = p end end
    for _, p in ipairs(sorted_keys(ours)) do if not docs_set[p] then extra[#extra + 1] = p end end
    check("docs/" .. version .. "/pattern_set", #missing == 0 and #extra == 0,
        ("not active in routes.yaml: [%s]; active but not in the docs: [%s]")
            :format(table.concat(missing, " "), table.concat(extra, " ")))

    -- kind of handling per documented section
    local by_pat = docs_entries_at(v)
    local wrong = {}
    local generic_any, generic_get = {}, {}
    for _, item in ipairs(by_section) do
        local es = by_pat[item.rx] or {}
        local function any(pred)
            for _, e in ipairs(es) do if pred(e) then return true end end
            return false
        end
        local sec = item.sec
        local good
        local strict = false
        for _, a in ipairs(allowances.strict) do
            if a.from <= v and v <= a.to and a.docs == item.rx then strict = true end
        end
        if (sec == "generic" or sec == "frontend_proxy") and strict then
            -- a docs error: the table keeps the route for its writer only
            good = not any(serves_any_method_on_generic) and any(function(e) return WRITERS[e.class] end)
        elseif sec == "generic" or sec == "frontend_proxy" then
            generic_any[item.rx] = true
            good = any(serves_any_method_on_generic)
        elseif sec == "generic_get" then
            generic_get[item.rx] = true
            good = any(serves_get_only_on_generic) and not any(serves_any_method_on_generic)
        elseif sec == "messages" or sec == "sso" then
            good = any(function(e) return e.class == sec end)
        elseif sec == "media_prefix" or sec == "media_admin" then
            good = any(function(e) return e.class == "media" end)
        elseif sec:match("^writer:") then
            local stream = sec:sub(8)
            local cls = allowances.class[stream] or stream
            good = any(function(e) return e.class == cls end)
        else
            good = false
        end
        if not good then wrong[#wrong + 1] = sec .. " " .. item.rx end
    end
    -- writer entries must not let generic workers take more than the docs allow
    for _, e in ipairs(entries) do
        if active(e, v) and WRITERS[e.class] and type(e.source) == "string"
            and e.source:find("docs/workers.md", 1, true) then
            local g = generic_of(e)
            if g == "all" and not generic_any[e.pattern] then
                wrong[#wrong + 1] = e.id .. ": generic all, docs do not list it for any method"
            elseif type(g) == "table" and not generic_get[e.pattern] then
                wrong[#wrong + 1] = e.id .. ": generic GET, docs have no GET-only rule"
            elseif g == "none" and generic_any[e.pattern] then
                wrong[#wrong + 1] = e.id .. ": generic none, but the docs let generic workers serve it"
            elseif g == "none" and generic_get[e.pattern] then
                -- fine when a separate GET-only entry (e.g. pushrules_get) covers the reads
                local covered = false
                for _, o in ipairs(by_pat[e.pattern] or {}) do
                    if not WRITERS[o.class] and serves_get_only_on_generic(o) then covered = true end
                end
                if not covered then
                    wrong[#wrong + 1] = e.id .. ": generic none, but the docs let generic workers serve GET"
                end
            end
        end
    end
    check("docs/" .. version .. "/sections", #wrong == 0, table.concat(wrong, "; "))
end

do
    local fixtures = {}
    for _, path in ipairs(synroute.glob(DIR .. "docs-*.txt") or {}) do
        local ver = path:match("/docs%-(%d+%.%d+)%.txt$")
        if ver then fixtures[#fixtures + 1] = ver end
    end
    table.sort(fixtures, function(a, b) return vnum(a) < vnum(b) end)
    local early, mid, latest = false, false, false
    for _, ver in ipairs(fixtures) do
        local n = vnum(ver)
        if n >= 1060 and n <= 1070 then early = true end
        if n >= 1095 and n <= 1105 then mid = true end
        if n == 1157 then latest = true end
    end
    check("docs/fixtures_present", early and mid and latest,
        "need docs fixtures in 1.60-1.70, around 1.100 and for 1.157; have: " .. table.concat(fixtures, " "))
    for _, ver in ipairs(fixtures) do check_fixture("docs-" .. ver .. ".txt", ver) end
end

---------------------------------------------------------------------------
-- (3) request cases through the Lua API

do
    local lines, lerr = read_lines(DIR .. "version_cases.txt")
    if not lines then
        fail("cases/read", lerr)
    else
        local engines = {}
        local count = 0
        for n, line in ipairs(lines) do
            if line ~= "" and not line:match("^#") then
                count = count + 1
                local f = split_tabs(line)
                local ver, method, target, want_class, want_backend = f[1], f[2], f[3], f[4], f[5]
                local name = ("case/%s %s %s"):format(ver, method, target)
                if not (ver and method and target and want_class and want_backend) or #f ~= 5 then
                    fail(name, "line " .. n .. " does not have 5 tab-separated fields")
                else
                    local eng = engines[ver]
                    if eng == nil then
                        local e, eerr = api.new{ pools = "all", version = ver }
                        engines[ver] = e or false
                        if not e then fail("engine/" .. ver, eerr) end
                        eng = engines[ver]
                    end
                    if eng then
                        local okx, r = pcall(eng.explain, eng, { method = method, target = target, src = "192.0.2.1" })
                        if not okx then
                            fail(name, "explain raised: " .. tostring(r))
                        elseif type(r) ~= "table" then
                            fail(name, "explain returned " .. tostring(r))
                        else
                            check(name, r.class == want_class and r.backend == want_backend,
                                ("want %s -> %s, got %s -> %s (route %s%s)"):format(want_class, want_backend,
                                    tostring(r.class), tostring(r.backend), tostring(r.route),
                                    r.reason and (", " .. tostring(r.reason)) or ""))
                        end
                    else
                        fail(name, "no engine for version " .. ver)
                    end
                end
            end
        end
        check("cases/count", count >= 60, "only " .. count .. " cases")
    end
end

kit.finish()
