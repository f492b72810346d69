-- synroute.check: `synroute check CONFIG [--synapse-version V | --probe [--probe-url URL]] [--quiet]`
-- Validates synroute.yaml and the Synapse files it names, prints EVERY
-- problem as "file:line: message", exit 0 (ok) or 1 (problems).
--
--   require("synroute.check").main({ "examples/full/synroute.yaml" }) -> 0

local api = require("synroute.api")
local cmdline = require("synroute.cmdline")
local config = require("synroute.config")
local routes = require("synroute.routes")
local values = require("synroute.values")

local M = {}

-- Where and how synapse_version was given.
local function version_source(dep, opts)
    local v = dep.synapse_version
    if opts and opts.synapse_version then
        return dep.file .. ":1", "--synapse-version " .. v
    end
    return dep.synapse_version_at, "synapse_version \"" .. v .. "\""
end

-- The first release whose workers serve requests of class `class`.
local function first_release(eng, class)
    local first
    for _, e in ipairs(eng.routes.routes or {}) do
        if (e.class == class or e.alt_class == class) and (not first or routes.compare_versions(e.since, first) < 0) then
            first = e.since
        end
    end
    return first
end

-- Pools no route reaches under release v (e.g. a writer newer than it).
local function unreachable_pools(dep, eng, v, where)
    local backends = {}
    for _, b in ipairs(eng.backends or {}) do backends[b] = true end
    for _, name in ipairs(values.sorted_keys(dep.pools or {})) do
        local first = not backends[name] and name ~= "appservice" and first_release(eng, name)
        if first and routes.compare_versions(first, v) > 0 then
            dep.warnings[#dep.warnings + 1] = where .. ": no request goes to pool " .. name .. " with Synapse " .. v ..
                " (workers serve " .. name .. " requests since " .. first .. ")"
        end
    end
end

-- synapse_version against the releases routes.yaml knows (the engine only
-- warns in the HAProxy log). Older than the oldest: a problem (no route
-- table describes it). Newer than the newest, or not a listed release: a
-- warning (the engine then routes as the newest known release before it).
-- Also warns about pools that no route reaches at this version.
local function check_version(dep, opts, problems, eng)
    local v = dep.synapse_version
    local list = v and eng and eng.routes.synapse_versions or {}
    local oldest, latest = list[1], list[#list]
    if not oldest or not routes.parse_version(v) then return end
    local where, what = version_source(dep, opts)
    if routes.compare_versions(v, oldest) < 0 then
        problems[#problems + 1] = where .. ": " .. what .. " is older than the oldest release synroute knows (" ..
            oldest .. "); the route table has nothing for it"
        return
    elseif routes.compare_versions(v, latest) > 0 then
        dep.warnings[#dep.warnings + 1] = where .. ": " .. what .. " is newer than the newest release synroute knows (" ..
            latest .. "): routing as " .. latest .. "; update synroute (or correct the version)"
        return
    end
    local known, before = false, oldest
    for _, k in ipairs(list) do
        if k == v then known = true end
        if routes.compare_versions(k, v) <= 0 then before = k end
    end
    if not known then
        dep.warnings[#dep.warnings + 1] = where .. ": " .. what .. " is not a release routes.yaml lists: routing as " .. before
    end
    unreachable_pools(dep, eng, v, where)
end

function M.run(path, opts)
    opts = opts or {}
    local dep, problems = config.load(path, { synapse_version = opts.synapse_version })
    if not dep then return nil, problems end
    local chosen, verr = require("synroute.version_choice").choose(dep, {
        synapse_version = opts.synapse_version, probe = opts.probe, probe_url = opts.probe_url, out = opts.out,
    })
    if not chosen then return nil, { dep.file .. ":1: " .. verr }, dep end
    local extra = {}
    local eng, err = api.new({ dep = dep })
    if not eng then extra[#extra + 1] = dep.file .. ":1: " .. tostring(err) end
    if eng then check_version(dep, opts, extra, eng) end
    -- what passes check also loads within the tune.lua.maxmem `synroute haproxy` writes
    if eng then
        local total, why = require("synroute.haproxy_gen").lua_maxmem(dep, eng.version)
        if not total then extra[#extra + 1] = dep.file .. ":1: " .. why end
    end
    if opts.probe then
        for _, p in ipairs(require("synroute.probe").health(dep)) do extra[#extra + 1] = p end
    end
    if #extra > 0 then return nil, extra, dep end
    return dep
end

-- The parser of `synroute check` (synroute.cmdline).
function M.parser()
    local p = cmdline.parser("check", "Check a deployment: synroute.yaml, the Synapse files it names and the " ..
        "routes for the Synapse release. Prints every problem as file:line: message.")
    cmdline.config_arg(p)
    cmdline.synapse_version(p)
    cmdline.probe(p)
    p:flag("-q --quiet", "Print problems and warnings only, no summary.")
    return p
end

-- The options shared by check and haproxy that cmdline cannot check alone.
-- -> o | nil, message
function M.check_version_options(o)
    if o.probe_url then
        if o.probe_url == "" or not o.probe_url:match("^https?://") then
            return nil, "--probe-url must be an http:// or https:// URL, not " .. string.format("%q", o.probe_url)
        end
        o.probe = true
    end
    if o.probe and o.synapse_version then
        return nil, "give either --probe or --synapse-version, not both"
    end
    return o
end

local function print_summary(cfg, dep)
    io.stdout:write("ok: ", cfg, "\n")
    io.stdout:write("  main ", values.server_addr(dep.main), dep.main.serves_media and " (serves media)" or "", "\n")
    for _, p in ipairs(values.sorted_keys(dep.pools)) do
        local names = {}
        for _, s in ipairs(dep.pools[p].servers) do
            names[#names + 1] = s.name .. (s.backup and " (backup)" or "")
        end
        io.stdout:write("  pool ", p, ": ", #names > 0 and table.concat(names, ", ") or "(empty)", "\n")
    end
    if #dep.as_tokens > 0 then
        io.stdout:write("  appservices: ", #dep.as_tokens, "\n")
    end
end

function M.main(argv)
    local opts, code = cmdline.read(M.parser(), argv, M.check_version_options)
    if not opts then return code end
    local cfg = opts.config
    opts.out = io.stdout
    local dep, problems, dep2 = M.run(cfg, opts)
    for _, w in ipairs((dep or dep2 or {}).warnings or {}) do io.stdout:write("warning: ", w, "\n") end
    if not dep then
        for _, pr in ipairs(problems) do io.stdout:write(pr, "\n") end
        io.stdout:write(#problems, " problem", #problems == 1 and "" or "s", " found in ", cfg, "\n")
        return 1
    end
    if not opts.quiet then print_summary(cfg, dep) end
    return 0
end

return M
