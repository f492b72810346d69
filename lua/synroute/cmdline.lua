-- synroute.cmdline - the one command-line grammar of every synroute command,
-- on lua-argparse (Debian package lua-argparse). Each command module builds
-- its parser with cmdline.parser and declares its options and arguments with
-- argparse's own calls; the shared options are declared here so that their
-- names and help are the same everywhere.
--
--   local cmdline = require("synroute.cmdline")
--   local p = cmdline.parser("check", "Check a deployment.")
--   cmdline.config_arg(p)            -- CONFIG (positional)
--   cmdline.synapse_version(p)       -- --synapse-version V
--   local o, err = cmdline.parse(p, argv)
--     o           the options (argparse's result table); o.help: -h/--help was given
--     nil, err    a usage error: cmdline.usage_error(p, err) prints it, returns 2
--   local o, code = cmdline.read(p, argv [, check])   -- all of that at once:
--     o           the options, checked by check(o) -> o | nil, message
--     nil, code   help was printed (0) or a usage error (2)
--
-- Forms: "--name VALUE", "--name=VALUE", "-xVALUE", "-x VALUE", flags, and
-- "--" after which everything is an argument. -h/--help anywhere before
-- "--" asks for help, even when required arguments are missing.
-- Exit codes of every command: 0 ok, 1 problems found, 2 usage error.

local argparse = require("argparse")

local M = {}

M.EXIT_OK, M.EXIT_PROBLEMS, M.EXIT_USAGE = 0, 1, 2

local EPILOG = "Exit status: 0 ok, 1 problems found (bad config, unreachable HAProxy, ...), 2 usage error."

-- A parser for `synroute <command>`; help is handled by cmdline.parse.
function M.parser(command, description, epilog)
    local p = argparse("synroute " .. command, description, (epilog and (epilog .. "\n\n") or "") .. EPILOG)
    p:add_help(false)
    p._synroute_name = "synroute " .. command
    p:flag("-h --help", "Show this help and exit.")
    p:help_max_width(79)
    return p
end

-- Shared options: one name and one meaning in every command.
function M.config_arg(p, what)
    return p:argument("CONFIG", what or "synroute.yaml of the deployment."):target("config")
end

function M.config_option(p, what)
    return p:option("-c --config", what or
        "synroute.yaml of the deployment (default: $SYNROUTE_CONFIG, else /etc/synroute/synroute.yaml if it exists)."):argname("FILE")
end

function M.synapse_version(p, what)
    p:option("--synapse-version", what or
        "Route for Synapse release V (e.g. 1.121) instead of synapse_version in synroute.yaml."):argname("V")
    -- the older spelling of explain and routes, kept working
    p:option("--version"):target("synapse_version"):argname("V"):hidden(true)
end

function M.socket(p)
    return p:option("--socket", "HAProxy's runtime API socket (default: runtime.socket of the config)."):argname("PATH")
end

function M.probe(p)
    p:flag("--probe", "Ask the running main process which Synapse it is (GET /_matrix/federation/v1/version, " ..
        "no auth) and use it even when synapse_version is set; warn if they differ; fail if main cannot be asked. " ..
        "Also sends GET /health to every server.")
    p:option("--probe-url", "Probe this URL instead of main's listener (implies --probe)."):argname("URL")
end

-- Was help asked for (before any "--")?
local function wants_help(argv)
    for _, a in ipairs(argv) do
        if a == "--" then return false end
        if a == "-h" or a == "--help" then return true end
    end
    return false
end

function M.parse(p, argv)
    if wants_help(argv) then return { help = true } end
    local ok, res = p:pparse(argv)
    if not ok then return nil, res end
    return res
end

-- A usage error on stderr: the message, the usage, where to find help. -> 2
function M.usage_error(p, msg)
    local name = p._synroute_name
    io.stderr:write(name, ": ", msg, "\n", p:get_usage(), "\n", "Try '", name, " --help'.\n")
    return M.EXIT_USAGE
end

function M.help(p)
    io.stdout:write(p:get_help(), "\n")
    return M.EXIT_OK
end

-- A command's options, or what to exit with: parse, answer -h/--help, run
-- check(o) -> o | nil, message (checks across options; optional), and
-- print a usage error. -> o | nil, exit code (0 after help, 2 on misuse)
function M.read(p, argv, check)
    local o, err = M.parse(p, argv or {})
    if o and o.help then return nil, M.help(p) end
    if o and check then o, err = check(o) end
    if not o then return nil, M.usage_error(p, err) end
    return o
end

return M
