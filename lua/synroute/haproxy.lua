-- synroute HAProxy glue: loaded once with `lua-load`, runs at load time only.
--
-- HAProxy 2.6 (Lua 5.3) configuration:
--   global
--       lua-prepend-path <root>/lua/?.lua
--       lua-prepend-path <root>/build/5.3/?.so cpath
--       lua-load <root>/lua/synroute/haproxy.lua
-- (2.6's lua-load takes no arguments, and `setenv` does not reach package.cpath,
-- hence the two lua-prepend-path lines.)
--
-- The deployment is read from $SYNROUTE_CONFIG, else /etc/synroute/synroute.yaml
-- if that file exists, else there is none (every request goes to main, blocked
-- paths stay blocked). Then the router's C converter is registered as
-- `synroute`, used as `var(txn.synroute_in),lua.synroute` (docs/design.md
-- "Per-request flow"). No Lua code of ours runs per request.
--
-- Any problem raises here, at load time, so HAProxy refuses to start and
-- prints the message (also with `haproxy -c`).

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
-- `synroute haproxy --synapse-version V` (and --probe) write
-- `setenv SYNROUTE_SYNAPSE_VERSION V` so that the Lua side routes for the
-- same release the config was generated for.
local version = os.getenv("SYNROUTE_SYNAPSE_VERSION")
if version == "" then version = nil end
local eng, err = api.new{ config = path, version = version }
if not eng then
    error("synroute: cannot load " .. (path or "(no config)") .. ":\n" .. tostring(err), 0)
end

for _, w in ipairs(eng.warnings) do
    core.Warning("synroute: " .. w)
end

-- The C converter holds its router; keeping the engine reachable from
-- package.loaded as well makes its lifetime obvious.
package.loaded["synroute.haproxy.engine"] = eng

core.register_converters("synroute", eng.router:converter())

-- Issue 4 (MAS tokens): optional action `lua.synroute_mas` that resolves
-- `mat_` tokens to a user via core.httpclient (GET
-- /_matrix/client/v3/account/whoami on main, cached per token hash until the
-- token expires) and sets txn.synroute_key = eng.router:hkey("user", localpart);
-- see lua/synroute/mas.lua. Opt-in: registered only when the deployment says
-- `mas: { resolve: true }`, and the generated frontend calls it only for sync
-- requests carrying a mat_ token; without it no Lua of ours runs per request.
local mas_conf = eng.dep and eng.dep.mas
if type(mas_conf) == "table" and mas_conf.resolve == true then
    local action, what = require("synroute.mas").setup(core, eng)
    core.register_action("synroute_mas", { "http-req" }, action, 0)
    core.Info("synroute: " .. what)
end

core.Info(string.format("synroute %s: %s, Synapse %s, %d routes, backends: %s",
    require("synroute").version, path or "no config (everything to main)",
    tostring(eng.version), #eng.spec.entries, table.concat(eng.backends, " ")))
