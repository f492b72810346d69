-- synroute HAProxy glue: loaded by HAProxy, runs at load time only.
--
--   global
--       setenv SYNROUTE_CONFIG /etc/synroute/synroute.yaml
--       lua-load-per-thread <path of this file>
--
-- `synroute haproxy` writes these lines (docs/deployment.md); no
-- lua-prepend-path is needed. This file finds itself (debug.getinfo gives
-- the path lua-load / lua-load-per-thread was given) and loads paths.lua next
-- to it (synroute.paths):
--   * repository mode (a checkout): it puts <root>/lua/?.lua on package.path
--     and <root>/build/<Lua of this HAProxy>/?.so on package.cpath, and stops
--     with the name of the missing file if the module was not built for the
--     Lua this HAProxy embeds;
--   * installed mode: the Lua files are next to this one, the module is in
--     Lua's own C-module directory (<LIBDIR>/lua/<5.x>/synroute.so).
--
-- The deployment is read from $SYNROUTE_CONFIG, else /etc/synroute/synroute.yaml
-- if that file exists, else there is none (every request goes to main, blocked
-- paths stay blocked). Then the router's C converter is registered as
-- `synroute`, used as `var(txn.synroute_in),lua.synroute` (docs/design.md
-- "Per-request flow"). No Lua code of ours runs per request.
--
-- Any problem raises here, at load time, so HAProxy refuses to start and
-- prints the message (also with `haproxy -c`).

local function fail(msg) error("synroute: " .. msg, 0) end

-- 1. Where am I, which layout, which Lua.
local src = debug.getinfo(1, "S").source
if type(src) ~= "string" or src:sub(1, 1) ~= "@" then
    fail("cannot tell where haproxy.lua was loaded from; load it by its path with lua-load-per-thread")
end
local dir = src:sub(2):match("^(.*)/[^/]*$") or "."
local paths_chunk, perr = loadfile(dir .. "/paths.lua")
if not paths_chunk then
    fail("cannot load paths.lua next to the glue: " .. tostring(perr))
end
local paths = paths_chunk("synroute.paths")
package.loaded["synroute.paths"] = paths
local luav = paths.lua_version()

-- 2. Lua and C module search paths.
if paths.mode == "repository" then
    if not paths.root then
        fail("cannot find the synroute checkout above " .. tostring(paths.file))
    end
    local so = paths.module_file(luav)
    local f = io.open(so, "rb")
    if not f then
        fail(so .. " is missing: this HAProxy embeds Lua " .. luav ..
            "; build the module for it (make build/" .. luav .. "/synroute.so in " .. paths.root .. ")")
    end
    f:close()
    package.path = paths.root .. "/lua/?.lua;" .. package.path
    package.cpath = paths.root .. "/build/" .. luav .. "/?.so;" .. package.cpath
else
    -- <PREFIX>/share/lua/<v>/synroute/haproxy.lua: its siblings first
    local share = paths.dir and paths.dir:match("^(.*)/synroute$")
    if share then package.path = share .. "/?.lua;" .. package.path end
    if not package.searchpath("synroute", package.cpath) then
        fail("the C module synroute.so for Lua " .. luav .. " is not installed: it is not on package.cpath (" ..
            package.cpath .. "); install synroute's module for Lua " .. luav)
    end
end

-- 3. The engine.
local api = require("synroute.api")

local DEFAULT_CONFIG = "/etc/synroute/synroute.yaml"

local function config_path()
    local env = os.getenv("SYNROUTE_CONFIG")
    if env ~= nil and env ~= "" then
        return env
    end
    local f = io.open(DEFAULT_CONFIG, "r")
    if f ~= nil then
        f:close()
        return DEFAULT_CONFIG
    end
    return nil
end

local path = config_path()
-- `synroute haproxy` always writes `setenv SYNROUTE_SYNAPSE_VERSION V`: the
-- release the config was generated for (from --synapse-version, synroute.yaml
-- or the running main), or "conservative" when none was known. The Lua side
-- routes for exactly that. A hand-written config without it routes for
-- synroute.yaml's synapse_version, else conservatively (synroute.api):
-- never for a release nobody named.
local version = os.getenv("SYNROUTE_SYNAPSE_VERSION")
if version == "" then version = nil end
local eng, err = api.new{ config = path, version = version }
if not eng then
    fail("cannot load " .. (path or "(no config)") .. ":\n" .. tostring(err))
end
local configured = eng.dep and eng.dep.synapse_version
if version and configured and configured ~= version then
    eng.warnings[#eng.warnings + 1] = path .. ": synapse_version is " .. configured .. " but this HAProxy " ..
        "configuration was generated for " .. version .. " (SYNROUTE_SYNAPSE_VERSION): routing for " ..
        version .. "; regenerate it (synroute haproxy) after changing synapse_version"
end
local routes_for = eng.version == require("synroute.routes").CONSERVATIVE
    and "Synapse release unknown (only routes every release serves on workers)"
    or ("Synapse " .. tostring(eng.version))

-- 4. Drift: haproxy.cfg records the backend set it was written for
-- (SYNROUTE_GENERATED, synroute.pools.record); derived again from today's
-- files, it must be the same, or this HAProxy would route to backends that
-- no longer match the deployment (a new typing writer, say, whose traffic
-- would go to main). `setenv SYNROUTE_DRIFT ignore` (by hand, for configs
-- edited by hand) turns the check off; a config without the record (from
-- an older synroute) is only warned about, at start.
local recorded = os.getenv("SYNROUTE_GENERATED")
local drift_warning
if os.getenv("SYNROUTE_DRIFT") == "ignore" then
    drift_warning = "SYNROUTE_DRIFT is ignore: haproxy.cfg is not compared with the deployment"
elseif recorded and recorded ~= "" and eng.dep then
    local pools = require("synroute.pools")
    local now = pools.record(eng.dep, recorded:match("^v=") and eng.version or nil)
    local diffs = pools.drift(recorded, now)
    if #diffs > 0 then
        local regen = os.getenv("SYNROUTE_REGENERATE")
        fail("haproxy.cfg was generated for another deployment than " .. path .. " describes now:\n  " ..
            table.concat(diffs, "\n  ") .. "\nregenerate it: " ..
            ((regen and regen ~= "") and regen or "synroute haproxy " .. path .. " -o <this haproxy.cfg>") ..
            "\n(or add 'setenv SYNROUTE_DRIFT ignore' to its global section if you edit it by hand)")
    end
elseif eng.dep then
    drift_warning = "haproxy.cfg records no deployment (SYNROUTE_GENERATED): it was not generated by this " ..
        "synroute, so changes of the Synapse files go unnoticed; regenerate it"
end

-- The C converter holds its router; keeping the engine reachable from
-- package.loaded as well makes its lifetime obvious.
package.loaded["synroute.haproxy.engine"] = eng

core.register_converters("synroute", eng.router:converter())

-- MAS tokens: optional action `lua.synroute_mas` that resolves `mat_` tokens
-- to a user via core.httpclient (GET /_matrix/client/v3/account/whoami on
-- main, cached per token hash until the token expires) and sets
-- txn.synroute_key = eng.router:hkey("user", localpart); see
-- lua/synroute/mas.lua. Opt-in: registered only when the deployment says
-- `mas: { resolve: true }` (the generated config then loads this file once,
-- with lua-load, so that all threads share one cache), and the generated
-- frontend calls it only for sync requests carrying a mat_ token; without it
-- no Lua of ours runs per request.
local mas_conf = eng.dep and eng.dep.mas
local mas_what
if type(mas_conf) == "table" and mas_conf.resolve == true then
    local action, what = require("synroute.mas").setup(core, eng)
    core.register_action("synroute_mas", { "http-req" }, action, 0)
    mas_what = what
end

-- Metrics: the service `lua.synroute_metrics` renders the per-class counters
-- (a stick table HAProxy fills per request) in Prometheus' text format.
-- Registered only when the deployment has a metrics section; it runs per
-- scrape, never per request (lua/synroute/metrics.lua).
if type(eng.dep) == "table" and type(eng.dep.metrics) == "table" then
    local metrics = require("synroute.metrics")
    core.register_service(metrics.SERVICE, "http", metrics.service(core, {
        version = require("synroute").version, synapse = tostring(eng.version) }))
end

-- What HAProxy logs at start: the deployment's warnings and one line naming
-- the deployment and the Synapse release it routes for. Said from an init
-- function: HAProxy 3.0 drops messages logged while it parses the
-- configuration when a global logger is set (2.6 prints them); init
-- functions run once the loggers work, on both. Each Lua state runs this
-- file (one per thread with lua-load-per-thread), so only the first says it.
-- (`haproxy -c` runs no init function: `synroute check` shows the warnings.)
local function say()
    if (core.thread or 0) > 1 then return end
    for _, w in ipairs(eng.warnings) do
        core.Warning("synroute: " .. w)
    end
    if drift_warning then core.Warning("synroute: " .. drift_warning) end
    if mas_what then core.Info("synroute: " .. mas_what) end
    core.Info(string.format("synroute %s (%s mode, Lua %s): %s, %s, %d routes, backends: %s",
        require("synroute").version, paths.mode, luav, path or "no config (everything to main)",
        routes_for, #eng.spec.entries, table.concat(eng.backends, " ")))
end
if core.register_init then core.register_init(say) else say() end
