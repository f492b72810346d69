-- synroute.cli - the `synroute` command (bin/synroute runs this file with lua5.4).
--
--   synroute explain [--config FILE] [--version V] METHOD TARGET [-H 'Name: value']... [--src ADDR]
--   synroute check CONFIG [--probe [--probe-url URL]]                (synroute.check)
--   synroute haproxy CONFIG [-o FILE] [--probe [--probe-url URL]]    (synroute.haproxy_gen)
--   synroute replay [--config FILE] [options] ACCESS_LOG              (synroute.replay)
--   synroute routes --explain-table [--version V] [--routes FILE]
--   synroute status | drain WORKER | ready WORKER | show KEY   (synroute.ops)
--   synroute --help | help [COMMAND] | --version
--
-- Exit codes: 0 ok, 1 data error (bad config, bad routes.yaml, ...), 2 usage error.
-- Errors go to stderr. `explain` never prints a raw token: the key is the
-- router's readable key (a localpart, a room, an origin or "th:<hash>").

local cmdline = require("synroute.cmdline")

local M = {}

local USAGE = [[
usage: synroute <command> [options]

commands:
  explain [--config FILE] [--version V] METHOD TARGET [-H 'Name: value']... [--src ADDR]
        print, as one JSON object, the decision HAProxy would make for a request:
        class, backend, key_kind, key, hash, route, answer and reason (if any;
        answer: the status HAProxy answers itself, 400/403/404/405, before routing).
        Builds the same "METHOD SRC PATHQ AUTH" string HAProxy builds and calls
        the same router. The key is never a raw token.
        --config FILE   synroute.yaml of the deployment (default: $SYNROUTE_CONFIG,
                        else /etc/synroute/synroute.yaml if it exists, else none)
        --no-config     no deployment: everything to main (blocked stays blocked)
        --pools LIST    synthetic deployment: "all" or comma-separated pool names
        --version V     Synapse version (default: the config's, else the newest known)
        --routes FILE   routes.yaml to use (default: the installed one)
        -H 'Name: value'  a request header (repeatable; the last Authorization wins)
        --src ADDR      client address (default 127.0.0.1)
  check CONFIG [--probe] [--synapse-version V]
        check a deployment; prints every problem with file:line
  haproxy CONFIG [-o FILE] [--portable] [--snippet] [--probe] [--synapse-version V]
          [--haproxy-version V --lua-version V | --haproxy-bin PATH]
        generate the HAProxy configuration for a deployment, for the HAProxy
        (and the Lua inside it) that `haproxy -vv` names: the one in PATH, or
        $SYNROUTE_HAPROXY_BIN. To generate for another machine, set
        haproxy: { version: "3.0", lua: "5.4" } in synroute.yaml, or:
        --haproxy-version V  the target HAProxy release (2.6 or later)
        --lua-version V      the Lua version it embeds (5.3 or 5.4)
        --haproxy-bin PATH   ask this HAProxy binary (overrides the setting)
        --portable       repository mode: paths relative to "${SYNROUTE_ROOT}"
                         (a checkout), as the examples are
        --snippet        only the global lines, frontend rules and backends, for
                         an existing (e.g. TLS) frontend
        --synapse-version V  route for Synapse V instead of synapse_version
        --probe          ask the running main process which Synapse it is
                         (GET /_matrix/federation/v1/version, no auth), warn
                         if that differs from synapse_version, and use it;
                         also sends GET /health to every server
        --probe-url URL  probe this URL instead of main's listener (implies --probe)
  replay [--config FILE] [--synapse-version V] [--format auto|nginx|haproxy]
         [--map FROM=PROCESS]... [--all] ACCESS_LOG
        replay an nginx "combined" or HAProxy httplog access log (- for stdin):
        the class and backend synroute would pick per request, a table per class,
        and the requests whose recorded upstream is not a server of that backend
        (synroute replay --help for details)
  routes --explain-table [--version V] [--routes FILE]
        print how every route pattern compiled in the router's regex set:
        literal prefixes in the trie, what remains, and how that is verified
        (literal, tail, glob, regex with quick rejects, or full regex), memo
        --version V     Synapse version (default: the newest known)
        --routes FILE   routes.yaml to use (default: the installed one)
  status | drain WORKER | ready WORKER | show KEY-OR-USER   [--config FILE] [--socket PATH]
        talk to the running HAProxy through its runtime API (synroute status --help):
        per-pool server states and shares; take a Synapse process out of every pool
        for an upgrade (long polls finish, pinned users move) and back; which server
        a user, room or origin is pinned to
  help [COMMAND]
        this text

exit status: 0 ok, 1 data error, 2 usage error
]]

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
local function check_explain(o, pos)
    if #pos ~= 2 then return nil, "expected METHOD TARGET" end
    o.method, o.target = pos[1], pos[2]
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
    return o
end

local EXPLAIN_OPTIONS = {
    ["--config"] = { "config", value = true }, ["-c"] = { "config", value = true },
    ["--no-config"] = { "no_config" },
    ["--pools"] = { "pools", value = true },
    ["--version"] = { "version", value = true },
    ["--routes"] = { "routes", value = true },
    ["--src"] = { "src", value = true },
    ["-H"] = { "headers", value = true, list = true, check = header_arg, attached = true },
    ["--header"] = { "headers", value = true, list = true, check = header_arg },
}

-- Parse explain's arguments. Returns opts | nil, message.
local function parse_explain_args(argv)
    local o, pos = cmdline.parse(argv, EXPLAIN_OPTIONS)
    if not o then return nil, "explain: " .. pos end
    o.headers = o.headers or {}
    local ok, why = check_explain(o, pos)
    if not ok then return nil, "explain: " .. why end
    return o
end

function M.explain(args)
    local o, err = parse_explain_args(args)
    if not o then
        return usage_error(err)
    end
    local api = require("synroute.api")
    local json = require("synroute.json")
    local new_opts = { version = o.version, routes = o.routes }
    if o.pools then
        if o.pools == "all" then
            new_opts.pools = "all"
        else
            local list = {}
            for p in o.pools:gmatch("[^,%s]+") do list[#list + 1] = p end
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

-- Run the main function of the module that implements a command.
local function delegate(modname, args)
    return require(modname).main(args)
end

-- The module of check / haproxy: its OPTIONS say which options take a
-- value (so that a value is not mistaken for the CONFIG argument).
local MODULES = { check = "synroute.check", haproxy = "synroute.haproxy_gen" }

-- Split off --probe / --probe-url. Returns { probe=, url=, cfg=, version=, rest= } | nil, err.
-- `rest` keeps --probe (the module then also checks /health of every server)
-- and drops --probe-url.
function M.parse_probe_args(cmd, args)
    local o = { rest = {} }
    local spec = MODULES[cmd] and require(MODULES[cmd]).OPTIONS or {}
    local i = 1
    while i <= #args do
        local a = args[i]
        local url = a:match("^%-%-probe%-url=(.*)$")
        if url then
            o.probe, o.url = true, url
        elseif a == "--probe-url" then
            o.url = args[i + 1]
            if not o.url then return nil, cmd .. ": --probe-url needs a URL" end
            o.probe = true
            i = i + 1
        elseif a == "--probe" then
            o.probe = true
            o.rest[#o.rest + 1] = a
        elseif spec[a] and spec[a].value then
            o.rest[#o.rest + 1] = a
            if args[i + 1] ~= nil then
                o.rest[#o.rest + 1] = args[i + 1]
                if a == "--synapse-version" then o.version = args[i + 1] end
                i = i + 1
            end
        else
            if a:sub(1, 1) ~= "-" or a == "-" then o.cfg = o.cfg or a end
            o.rest[#o.rest + 1] = a
        end
        i = i + 1
    end
    if o.url and (o.url == "" or not o.url:match("^https?://")) then
        return nil, cmd .. ": --probe-url must be an http:// or https:// URL, not " .. string.format("%q", o.url)
    end
    if o.url then
        -- --probe-url alone still means --probe
        local has = false
        for _, a in ipairs(o.rest) do if a == "--probe" then has = true end end
        if not has then o.rest[#o.rest + 1] = "--probe" end
    end
    if o.probe and o.version then
        return nil, cmd .. ": give either --probe or --synapse-version, not both"
    end
    return o
end

-- `check` / `haproxy` with --probe: read the version from the running main,
-- report how it compares with synapse_version, then run the command with
-- `--synapse-version <probed>`. Reports go to stdout for check (like its
-- other warnings) and to stderr for haproxy (stdout may be the config).
local function with_probe(cmd, modname, args)
    local o, err = M.parse_probe_args(cmd, args)
    if not o then
        return usage_error(err)
    end
    if not o.probe or not o.cfg then
        return delegate(modname, o.probe and o.rest or args)
    end
    local config = require("synroute.config")
    local dep = config.load(o.cfg)
    if not dep then
        -- the command itself prints every problem of the config
        return delegate(modname, o.rest)
    end
    local probe = require("synroute.probe")
    local out = cmd == "check" and io.stdout or io.stderr
    local got, perr = probe.version(dep, o.url)
    if not got then
        say(io.stderr, "synroute: " .. cmd .. " --probe: " .. perr)
        return 1
    end
    local doc, rerr = require("synroute.routes").load(require("synroute.paths").routes_file)
    if not doc then
        say(io.stderr, "synroute: " .. tostring(rerr))
        return 1
    end
    local use, note = probe.choose(doc, got.release)
    if not use then
        say(io.stderr, "synroute: " .. cmd .. " --probe: " .. got.url .. " reports Synapse " .. got.raw .. ": " .. note)
        return 1
    end
    say(out, "probe: " .. got.url .. " reports " .. (got.server or "Synapse") .. " " .. got.raw ..
        " (routes of " .. use .. ")")
    if note then
        say(out, "warning: probe: " .. note)
    end
    local configured = dep.synapse_version
    local where = require("synroute.yamlfile").where(dep.file, "synapse_version")
    if configured == nil then
        say(out, "warning: " .. where .. ": synapse_version is not set; the running Synapse is " ..
            got.raw .. ": using " .. use)
    elseif configured ~= got.release then
        say(out, "warning: " .. where .. ": synapse_version is " .. configured ..
            " but the running Synapse (" .. got.url .. ") is " .. got.raw ..
            ": using " .. use .. "; set synapse_version: \"" .. got.release .. "\" in " .. dep.file)
    end
    local rest = {}
    for _, a in ipairs(o.rest) do rest[#rest + 1] = a end
    rest[#rest + 1] = "--synapse-version"
    rest[#rest + 1] = use
    return delegate(modname, rest)
end

-- `routes --explain-table`: the router's regex set as set:dump() shows it,
-- built from the same entries (patterns, methods, ids, in order).
local ROUTES_OPTIONS = {
    ["--explain-table"] = { "explain_table" },
    ["--version"] = { "version", value = true },
    ["--routes"] = { "routes", value = true },
}

function M.routes(argv)
    local o, words = cmdline.parse(argv, ROUTES_OPTIONS)
    if not o then return usage_error("routes: " .. words) end
    if #words > 0 then return usage_error("routes: unknown argument " .. words[1]) end
    if not o.explain_table then return usage_error("routes: give --explain-table") end
    local eng, err = require("synroute.api").new({ version = o.version, routes = o.routes })
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
    check = function(args) return with_probe("check", MODULES.check, args) end,
    haproxy = function(args) return with_probe("haproxy", MODULES.haproxy, args) end,
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
    if cmd == "--help" or cmd == "-h" or cmd == "help" then
        io.stdout:write(USAGE)
        return 0
    end
    if cmd == "--version" then
        io.stdout:write("synroute ", require("synroute").version, "\n")
        return 0
    end
    local fn = COMMANDS[cmd]
    if not fn then
        return usage_error("unknown command " .. string.format("%q", cmd))
    end
    local rest = {}
    for i = 2, #args do rest[#rest + 1] = args[i] end
    if cmd == "explain" and (rest[1] == "--help" or rest[1] == "-h") then
        io.stdout:write(USAGE)
        return 0
    end
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
