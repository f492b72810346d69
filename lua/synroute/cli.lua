-- synroute.cli - the `synroute` command (bin/synroute runs this file with lua5.4).
--
--   synroute explain [--config FILE] [--synapse-version V] METHOD TARGET [-H 'Name: value']... [--src ADDR]
--   synroute check CONFIG [--synapse-version V | --probe [--probe-url URL]]   (synroute.check)
--   synroute haproxy CONFIG [-o FILE [--no-check] [--reload]] [...]           (synroute.haproxy_gen)
--   synroute replay [--config FILE] [options] ACCESS_LOG                      (synroute.replay)
--   synroute routes --explain-table [--synapse-version V] [--routes FILE]
--   synroute status | drain WORKER | ready WORKER | show KEY   (synroute.ops)
--   synroute --help | help [COMMAND] | COMMAND --help | --version
--
-- Every command parses its arguments with lua-argparse (synroute.cmdline):
-- the same option names everywhere, per-command help, short usage errors.
-- Exit codes: 0 ok, 1 problems found (bad config, bad routes.yaml, HAProxy
-- unreachable, ...), 2 usage error. Errors go to stderr. `explain` never
-- prints a raw token: the key is the router's readable key (a localpart, a
-- room, an origin or "th:<hash>").

local cmdline = require("synroute.cmdline")

local M = {}

local USAGE = [==[
usage: synroute <command> [options]      synroute <command> --help: the command's options

commands:
  explain METHOD TARGET [--config FILE] [--synapse-version V] [-H 'Name: value']...
        print, as one JSON object, the decision HAProxy would make for a request
  check CONFIG [--synapse-version V | --probe]
        check a deployment; prints every problem with file:line
  haproxy CONFIG [-o FILE [--no-check] [--reload]] [--portable] [--snippet] ...
        generate the HAProxy configuration for a deployment; with -o, check it
        with `haproxy -c` before it replaces FILE; --reload then reloads HAProxy
  replay ACCESS_LOG [--config FILE] [--synapse-version V] ...
        replay an nginx or HAProxy access log: what synroute would do per request
  routes --explain-table [--synapse-version V] [--routes FILE]
        print how every route pattern compiled in the router's regex set
  status | drain WORKER | ready WORKER | show KEY-OR-USER   [--config FILE] [--socket PATH]
        talk to the running HAProxy through its runtime API
  help [COMMAND]
        this text, or the command's help

The Synapse release: --synapse-version V, else synapse_version in synroute.yaml,
else (check, haproxy) the running main process is asked; if it cannot be
asked, only what every release serves on workers goes to workers.

exit status: 0 ok, 1 problems found, 2 usage error
]==]
M.USAGE = USAGE

local function say(stream, s)
    stream:write(s)
    if s:sub(-1) ~= "\n" then stream:write("\n") end
end

local function usage_error(msg)
    if msg then say(io.stderr, "synroute: " .. msg) end
    io.stderr:write(USAGE)
    return 2
end

local function default_config()
    local env = os.getenv("SYNROUTE_CONFIG")
    if env and env ~= "" then
        return env
    end
    local f = io.open("/etc/synroute/synroute.yaml", "r")
    if f then
        f:close()
        return "/etc/synroute/synroute.yaml"
    end
    return nil
end
M.default_config = default_config

-- A header value as -H gives it | nil, why. HTTP field values cannot carry
-- CR, LF or NUL: HAProxy rejects such a request, so explain refuses it
-- rather than guess.
local function header_arg(v)
    if v:find("[\r\n%z]") then
        return nil, "header value contains CR, LF or NUL: " .. (v:match("^[^:]*") or "")
    end
    if not v:find(":", 1, true) then
        return nil, "header " .. string.format("%q", v) .. " is not 'Name: value'"
    end
    return v
end

-- What explain was given, checked. -> o | nil, why
local function check_explain(o)
    if not o.method:match("^[!#$%%&'*+.^_`|~%w-]+$") then
        return nil, "bad method " .. string.format("%q", o.method)
    end
    if o.target:find("[%s%c]") then
        return nil, "the target must not contain spaces or control characters (percent-encode them)"
    end
    if o.src and (o.src == "" or o.src:find("[%s%c]")) then
        return nil, "bad --src " .. string.format("%q", o.src)
    end
    if (o.config and 1 or 0) + (o.no_config and 1 or 0) + (o.pools and 1 or 0) > 1 then
        return nil, "give at most one of --config, --no-config and --pools"
    end
    for _, h in ipairs(o.headers) do
        local ok, why = header_arg(h)
        if not ok then return nil, why end
    end
    return o
end

function M.explain_parser()
    local p = cmdline.parser("explain", "Print, as one JSON object, the decision HAProxy would make for a " ..
        "request: class, backend, key_kind, key, hash, route, answer and reason (if any; answer: the status " ..
        "HAProxy answers itself, 400/403/404/405, before routing). Builds the same " ..
        "\"METHOD SRC PATHQ AUTH\" string HAProxy builds and calls the same router. The key is never a raw token.")
    p:argument("METHOD", "The request method."):target("method")
    p:argument("TARGET", "The request target (path and query)."):target("target")
    cmdline.config_option(p)
    p:flag("--no-config", "No deployment: everything to main (blocked stays blocked).")
    p:option("--pools", "Synthetic deployment: \"all\" or comma-separated pool names."):argname("LIST")
    cmdline.synapse_version(p, "Route for Synapse release V (default: the config's synapse_version; for a " ..
        "config without one only what every release serves on workers; without a config the newest known).")
    p:option("--routes", "routes.yaml to use (default: the installed one)."):argname("FILE")
    p:option("-H --header", "A request header (repeatable; the last Authorization wins)."):argname("'Name: value'")
        :count("*"):target("headers")
    p:option("--src", "Client address (default 127.0.0.1)."):argname("ADDR")
    return p
end

function M.explain(args)
    local o, code = cmdline.read(M.explain_parser(), args, check_explain)
    if not o then return code end
    local api = require("synroute.api")
    local json = require("synroute.json")
    local new_opts = { version = o.synapse_version, routes = o.routes }
    if o.pools then
        if o.pools == "all" then
            new_opts.pools = "all"
        else
            local list = {}
            for name in o.pools:gmatch("[^,%s]+") do list[#list + 1] = name end
            new_opts.pools = list
        end
    elseif not o.no_config then
        new_opts.config = o.config or default_config()
    end
    local eng, eerr = api.new(new_opts)
    if not eng then
        say(io.stderr, "synroute: " .. tostring(eerr))
        return 1
    end
    local d = eng:explain{ method = o.method, target = o.target, headers = o.headers, src = o.src }
    io.stdout:write(json.encode(d, { order = api.EXPLAIN_ORDER }), "\n")
    return 0
end

-- `routes --explain-table`: the router's regex set as set:dump() shows it,
-- built from the same entries (patterns, methods, ids, in order).
function M.routes_parser()
    local p = cmdline.parser("routes", "Print how every route pattern compiled in the router's regex set: " ..
        "literal prefixes in the trie, what remains, and how that is verified (literal, tail, glob, regex " ..
        "with quick rejects, or full regex), memo.")
    p:flag("--explain-table", "Print the table (required).")
    cmdline.synapse_version(p, "Synapse release (default: the newest known).")
    p:option("--routes", "routes.yaml to use (default: the installed one)."):argname("FILE")
    return p
end

function M.routes(argv)
    local o, code = cmdline.read(M.routes_parser(), argv, function(x)
        if not x.explain_table then return nil, "give --explain-table" end
        return x
    end)
    if not o then return code end
    local eng, err = require("synroute.api").new({ version = o.synapse_version, routes = o.routes })
    local set
    if eng then
        local pats, methods, ids = {}, {}, {}
        for n, e in ipairs(eng.spec.entries) do
            pats[n], methods[n], ids[n] = e.pattern, e.methods or false, e.id
        end
        set, err = require("synroute").regex_set(pats, methods, ids)
    end
    if not set then
        say(io.stderr, "synroute: " .. tostring(err))
        return 1
    end
    io.stdout:write("routes: ", eng.routes_file, " for Synapse ", tostring(eng.version), "\n", set:dump())
    return 0
end

local COMMANDS = {
    explain = M.explain,
    routes = M.routes,
    check = function(args) return require("synroute.check").main(args) end,
    haproxy = function(args) return require("synroute.haproxy_gen").main(args) end,
    replay = function(args)
        return require("synroute.replay").main(args, { default_config = default_config() })
    end,
}
-- status, drain, ready, show: HAProxy's runtime API (synroute.ops)
for _, c in ipairs({ "status", "drain", "ready", "show" }) do
    COMMANDS[c] = function(args) return require("synroute.ops").main(c, args, { default_config = default_config() }) end
end

function M.main(args)
    args = args or {}
    local cmd = args[1]
    if cmd == nil then
        return usage_error("no command given")
    end
    if cmd == "--help" or cmd == "-h" or (cmd == "help" and not args[2]) then
        io.stdout:write(USAGE)
        return 0
    end
    if cmd == "--version" then
        io.stdout:write("synroute ", require("synroute").version, "\n")
        return 0
    end
    if cmd == "help" then
        if not COMMANDS[args[2]] then return usage_error("help: unknown command " .. string.format("%q", args[2])) end
        return COMMANDS[args[2]]({ "--help" })
    end
    local fn = COMMANDS[cmd]
    if not fn then
        return usage_error("unknown command " .. string.format("%q", cmd))
    end
    local rest = {}
    for i = 2, #args do rest[#rest + 1] = args[i] end
    return fn(rest)
end

-- Run as a script (bin/synroute): `...` are the command-line arguments;
-- when required as a module, `...` is the module name.
local first = ...
if first ~= "synroute.cli" and type(arg) == "table" then
    local args = {}
    for i = 1, #arg do args[i] = arg[i] end
    local ok, rc = xpcall(M.main, debug.traceback, args)
    io.stdout:flush()
    if not ok then
        io.stderr:write("synroute: internal error: ", tostring(rc), "\n")
        os.exit(70)
    end
    os.exit(rc)
end

return M
