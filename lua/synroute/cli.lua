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

local M = {}

local USAGE = [[
usage: synroute <command> [options]

commands:
  explain [--config FILE] [--version V] METHOD TARGET [-H 'Name: value']... [--src ADDR]
        print, as one JSON object, the decision HAProxy would make for a request:
        class, backend, key_kind, key, hash, route, reason (if any).
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
        the class and pool synroute would pick per request, a table per class,
        and the requests whose recorded upstream is not in that pool
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

-- Parse explain's arguments. Returns opts | nil, message.
function M.parse_explain_args(args)
    local o = { headers = {} }
    local pos = {}
    local i = 1
    local function value(name)
        local v = args[i + 1]
        if v == nil then
            return nil, name .. " needs a value"
        end
        i = i + 1
        return v
    end
    while i <= #args do
        local a = args[i]
        local name, inline = a:match("^(%-%-[%w-]+)=(.*)$")
        if name then
            a = name
        end
        local function val(n)
            if inline then
                local v = inline
                inline = nil
                return v
            end
            return value(n)
        end
        local v, err
        if a == "--config" or a == "-c" then
            v, err = val(a); o.config = v
        elseif a == "--no-config" then
            o.no_config = true
        elseif a == "--pools" then
            v, err = val(a); o.pools = v
        elseif a == "--version" then
            v, err = val(a); o.version = v
        elseif a == "--routes" then
            v, err = val(a); o.routes = v
        elseif a == "-H" or a == "--header" or (a:match("^%-H.") and not name) then
            if a:match("^%-H.") then v = a:sub(3) else v, err = val(a) end
            -- HTTP field values cannot carry CR, LF or NUL: HAProxy rejects
            -- such a request, so explain refuses it rather than guess
            if v and v:find("[\r\n%z]") then
                v, err = nil, "header value contains CR, LF or NUL: " .. (v:match("^[^:]*") or "")
            end
            if v then o.headers[#o.headers + 1] = v end
        elseif a == "--src" then
            v, err = val(a); o.src = v
        elseif a == "--" then
            for j = i + 1, #args do pos[#pos + 1] = args[j] end
            break
        elseif a:sub(1, 1) == "-" and a ~= "-" then
            return nil, "explain: unknown option " .. a
        else
            pos[#pos + 1] = args[i]
        end
        if err then
            return nil, "explain: " .. err
        end
        i = i + 1
    end
    if #pos ~= 2 then
        return nil, "explain: expected METHOD TARGET"
    end
    o.method, o.target = pos[1], pos[2]
    if not o.method:match("^[!#$%%&'*+.^_`|~%w-]+$") then
        return nil, "explain: bad method " .. string.format("%q", o.method)
    end
    if o.target:find("[%s%c]") then
        return nil, "explain: the target must not contain spaces or control characters (percent-encode them)"
    end
    if o.src and (o.src == "" or o.src:find("[%s%c]")) then
        return nil, "explain: bad --src " .. string.format("%q", o.src)
    end
    local n = (o.config and 1 or 0) + (o.no_config and 1 or 0) + (o.pools and 1 or 0)
    if n > 1 then
        return nil, "explain: give at most one of --config, --no-config and --pools"
    end
    for _, h in ipairs(o.headers) do
        if not h:find(":", 1, true) then
            return nil, "explain: header " .. string.format("%q", h) .. " is not 'Name: value'"
        end
    end
    return o
end

function M.explain(args)
    local o, err = M.parse_explain_args(args)
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

local function delegate(modname, what, args)
    if not package.searchpath(modname, package.path) then
        say(io.stderr, "synroute: " .. what .. " is not available (module " .. modname .. " is missing)")
        return 2
    end
    local mod = require(modname)
    if type(mod) ~= "table" or type(mod.main) ~= "function" then
        say(io.stderr, "synroute: module " .. modname .. " has no main function")
        return 2
    end
    local rc = mod.main(args)
    if rc == nil or rc == true then
        return 0
    elseif rc == false then
        return 1
    end
    return math.tointeger(rc) or 1
end

-- Options of check / haproxy that take a value (so their value is not
-- mistaken for the CONFIG argument).
local VALUE_OPTS = {
    check = { ["--synapse-version"] = true },
    haproxy = { ["-o"] = true, ["--output"] = true, ["--root"] = true, ["--synapse-version"] = true,
                ["--haproxy-version"] = true, ["--lua-version"] = true, ["--haproxy-bin"] = true },
}

-- Split off --probe / --probe-url. Returns { probe=, url=, cfg=, version=, rest= } | nil, err.
-- `rest` keeps --probe (the module then also checks /health of every server)
-- and drops --probe-url.
function M.parse_probe_args(cmd, args)
    local o = { rest = {} }
    local values = VALUE_OPTS[cmd] or {}
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
        elseif values[a] then
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
        return delegate(modname, cmd, o.probe and o.rest or args)
    end
    local config = require("synroute.config")
    local dep = config.load(o.cfg)
    if not dep then
        -- the command itself prints every problem of the config
        return delegate(modname, cmd, o.rest)
    end
    local probe = require("synroute.probe")
    local out = cmd == "check" and io.stdout or io.stderr
    local got, perr = probe.version(dep, o.url)
    if not got then
        say(io.stderr, "synroute: " .. cmd .. " --probe: " .. perr)
        return 1
    end
    local api = require("synroute.api")
    local doc, rerr = require("synroute.routes").load(api.default_routes_path() or "routes/routes.yaml")
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
    local where = probe.where(dep.file, "synapse_version")
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
    return delegate(modname, cmd, rest)
end

-- `routes --explain-table`: the router's regex set as set:dump() shows it,
-- built from the same entries (patterns, methods, ids, in order).
function M.routes(args)
    local o, i = {}, 1
    while i <= #args do
        local a = args[i]
        if a == "--explain-table" then
            o.explain_table = true
        elseif a == "--version" or a == "--routes" then
            if args[i + 1] == nil then return usage_error("routes: " .. a .. " needs a value") end
            o[a:sub(3)] = args[i + 1]
            i = i + 1
        else
            return usage_error("routes: unknown argument " .. a)
        end
        i = i + 1
    end
    if not o.explain_table then return usage_error("routes: give --explain-table") end
    local eng, err = require("synroute.api").new({ version = o.version, routes = o.routes })
    local pats, methods, ids = {}, {}, {}
    for n, e in ipairs(eng and eng.spec.entries or {}) do
        pats[n], methods[n], ids[n] = e.pattern, e.methods or false, e.id
    end
    local set, serr = eng and require("synroute").regex_set(pats, methods, ids)
    if not set then
        say(io.stderr, "synroute: " .. tostring(err or serr))
        return 1
    end
    io.stdout:write("routes: ", eng.routes_file, " for Synapse ", tostring(eng.version), "\n", set:dump())
    return 0
end

local COMMANDS = {
    explain = M.explain,
    routes = M.routes,
    check = function(args) return with_probe("check", "synroute.check", args) end,
    haproxy = function(args) return with_probe("haproxy", "synroute.haproxy_gen", args) end,
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
        local ok, synroute = pcall(require, "synroute")
        io.stdout:write("synroute ", ok and tostring(synroute.version) or "(module not built)", "\n")
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
