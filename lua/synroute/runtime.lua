-- synroute.runtime - HAProxy's runtime API (the admin stats socket), as the
-- CLI's `status`, `drain`, `ready` and `show` use it; plus the `runtime:`
-- settings of synroute.yaml and the stats socket line of the generated
-- global section. No second daemon: every command is one connection to the
-- socket, one command line, the answer read until HAProxy closes.
--
--   local rt = require("synroute.runtime")
--   rt.SCHEMA                          the `runtime:` entry of synroute.yaml's schema (synroute.settings)
--   rt.global_line(dep)                -> "stats socket ..." | nil      (the generated global section)
--   rt.default_peers()                 -> the local-only peers section (no `peers:` setting)
--   rt.expand(path)                    -> path with ${NAME} / ${NAME-default} expanded as HAProxy does
--   local c = rt.client(path [, timeout]) ; c:cmd("show stat") -> text | nil, err
--   rt.parse_csv(text), rt.parse_servers_state(text), rt.parse_table(text), rt.parse_peers(text)
--
-- The socket needs `level admin` (drain/ready change server states). The
-- client uses Debian's lua-socket (`socket.unix`).

local M = {}

-- Debian's conventions (its haproxy.cfg: `stats socket /run/haproxy/admin.sock
-- mode 660 level admin`, the haproxy group owning /run/haproxy).
M.DEFAULT_SOCKET = "/run/haproxy/admin.sock"
M.DEFAULT_MODE = "660"
M.DEFAULT_GROUP = "haproxy"
-- The local-only peers section that carries the stick tables across a reload
-- (docs/operations.md "Reloads"): its name, the local peer's name and address.
M.PEERS_NAME = "synroute"
M.LOCAL_PEER = "local"
M.LOCAL_PEER_ADDR = "127.0.0.1:10010"

---------------------------------------------------------------------------
-- settings

-- One token HAProxy and the CLI read the same way: an absolute path of
-- letters, digits and / . _ - + @ , : = (no space, quote, '#' or backslash),
-- where ${NAME} and ${NAME-default} stand for environment variables (HAProxy
-- expands them inside double quotes; so does rt.expand).
local PATH_CHARS = "^[%w/%._%-%+@,:=]*$"

local function check_path(s)
    if type(s) ~= "string" or s == "" then
        return nil, "expected an absolute path like /run/haproxy/admin.sock (or false for no socket)"
    end
    if s:find("[%s%c]") then
        return nil, "the path must be one token: no spaces, tabs or newlines"
    end
    local rest, bad = s:gsub("%${([%a_][%w_]*)}", ""), nil
    rest = rest:gsub("%${([%a_][%w_]*)%-([^{}$]*)}", function(_, default)
        if not default:match(PATH_CHARS) then bad = true end
        return ""
    end)
    if bad or not rest:match(PATH_CHARS) then
        return nil, "the path may hold only letters, digits, / . _ - + @ , : = and ${NAME} or ${NAME-default}"
    end
    if s:sub(1, 1) ~= "/" and s:sub(1, 2) ~= "${" then
        return nil, "expected an absolute path (starting with /, or with ${NAME})"
    end
    if not s:find("${", 1, true) and #s > 107 then
        return nil, "a UNIX socket path is at most 107 bytes long"
    end
    return s
end
M.check_path = check_path

-- 660, "660", "0660" -> "660"; nil, message otherwise.
local function check_mode(v)
    if math.type(v) == "integer" then v = tostring(v) end
    if type(v) ~= "string" or not v:match("^0?[0-7][0-7][0-7]$") then
        return nil, "expected an octal file mode like \"660\""
    end
    return (v:gsub("^0(%d%d%d)$", "%1"))
end

local function check_group(v)
    if v == false then return false end
    if type(v) ~= "string" or not v:match("^[%a_][%w_%.%-]*%$?$") or #v > 32 then
        return nil, "expected a group name like haproxy (or false to leave the group as it is)"
    end
    return v
end

local function check_socket(v)
    if v == false then return false end
    return check_path(v)
end

-- The `runtime:` entry of synroute.yaml's schema (synroute.settings); its
-- value is { socket = path | false, mode = "660", group = name | false }.
M.SCHEMA = { expect = "expected a mapping with socket, mode and group", keys = {
    socket = { check = check_socket, default = M.DEFAULT_SOCKET },
    mode = { check = check_mode, default = M.DEFAULT_MODE },
    group = { check = check_group, default = M.DEFAULT_GROUP },
} }

-- The settings when synroute.yaml has no `runtime:` (the schema's defaults).
M.DEFAULTS = {}
for k, e in pairs(M.SCHEMA.keys) do M.DEFAULTS[k] = e.default end

-- The peers setting when synroute.yaml has none: one local peer, so that a
-- reload hands the stick tables to the new process.
function M.default_peers()
    return {
        name = M.PEERS_NAME, ["local"] = M.LOCAL_PEER, implicit = true,
        nodes = { { name = M.LOCAL_PEER, addr = M.LOCAL_PEER_ADDR } },
    }
end

-- This host's name, as HAProxy's gethostname() gives it (nil if unknown).
function M.hostname()
    local f = io.open("/proc/sys/kernel/hostname", "r")
    local h = f and f:read("l")
    if f then f:close() end
    if h and h ~= "" then return h end
    return nil
end

-- Several nodes and no peers.local: HAProxy takes the local peer's name from
-- -L NAME, else the host name (Debian's systemd unit passes no -L). A warning
-- when this host's name is not one of the nodes; nil otherwise.
function M.local_peer_warning(peers, hostname)
    if not peers or peers.implicit or peers["local"] then return nil end
    hostname = hostname or M.hostname()
    if not hostname then return nil end
    for _, n in ipairs(peers.nodes or {}) do
        if n.name == hostname then return nil end
    end
    return "peers.local is not set and this host's name '" .. hostname .. "' is not one of peers.nodes: " ..
        "HAProxy names its local peer after -L NAME, else the host name (Debian's systemd unit passes no -L), " ..
        "and drops a peers section without its local peer; set peers.local on each node"
end

-- dep without its implicit (local-only) peers section when no pool has a
-- stick table (the generator gives one to each pool with more than one
-- active server): a peers listener with nothing to carry is left out.
function M.without_idle_peers(dep)
    if not (dep.peers and dep.peers.implicit) then return dep end
    for _, p in pairs(dep.pools or {}) do
        local active = 0
        for _, s in ipairs(p.servers or {}) do
            if not s.backup then active = active + 1 end
        end
        if active > 1 then return dep end
    end
    local copy = {}
    for k, v in pairs(dep) do copy[k] = v end
    copy.peers = nil
    return copy
end

-- The handover grace. A process that has just started (a reload, or a node
-- that learns from its peers) gets the stick tables from the old process or
-- the peers within milliseconds, while it already serves requests. A stick
-- store-request rule is written when the response comes, over whatever the
-- table holds by then: a request that missed the table before the handover
-- would overwrite the handed-over pin with the server hashing gave it. So for
-- its first HANDOVER_GRACE_MS a process stores no new pin (such keys are placed
-- by consistent hashing and pinned on a later request). The test is evaluated
-- only for keys not in the table (after the in_table ACL), so it costs
-- nothing on pinned keys.
M.HANDOVER_GRACE_MS = 3000

-- Global line: the process's start time (a reload parses the configuration again).
function M.boot_line(dep)
    if not dep.peers then return nil end
    return "set-var proc.synroute_boot date(0,ms)"
end

-- The extra condition of the stick store-request rules ("" without peers).
function M.store_guard(dep)
    if not dep.peers then return "" end
    return " { date(0,ms),sub(proc.synroute_boot) ge " .. M.HANDOVER_GRACE_MS .. " }"
end

-- The global section's stats socket line (nil: no socket).
function M.global_line(dep)
    local r = dep.runtime or M.DEFAULTS
    if not r.socket then return nil end
    local p = r.socket
    if p:find("${", 1, true) then p = '"' .. p .. '"' end
    local line = "stats socket " .. p .. " mode " .. r.mode .. " level admin expose-fd listeners"
    if r.group then line = line .. " group " .. r.group end
    return line
end

-- ${NAME} / ${NAME-default} as HAProxy expands them (an unset NAME: empty,
-- or the default).
function M.expand(s, getenv)
    getenv = getenv or os.getenv
    s = s:gsub("%${([%a_][%w_]*)%-([^{}$]*)}", function(name, default)
        local v = getenv(name)
        if v == nil then return default end
        return v
    end)
    return (s:gsub("%${([%a_][%w_]*)}", function(name) return getenv(name) or "" end))
end

---------------------------------------------------------------------------
-- the client

local Client = {}
Client.__index = Client

-- A client for the socket at `path` (not connected yet). timeout: seconds per
-- command (default 5).
function M.client(path, timeout)
    return setmetatable({ path = path, timeout = timeout or 5 }, Client)
end

local function socket_lib()
    local ok, unix = pcall(require, "socket.unix")
    if not ok then
        return nil, "the Lua socket library is missing (Debian: apt install lua-socket)"
    end
    return unix
end
M.socket_lib = socket_lib

-- One command -> HAProxy's answer (text) | nil, message. The message names the
-- socket and what to check; it never contains the command's arguments.
function Client:cmd(line)
    assert(not line:find("[\r\n]"), "runtime command with a newline")
    local unix, lerr = socket_lib()
    if not unix then return nil, lerr end
    local s = (type(unix) == "table" and unix.stream or unix)()
    s:settimeout(self.timeout)
    local ok, err = s:connect(self.path)
    if not ok then
        s:close()
        local hint = "is HAProxy running with this stats socket?"
        if tostring(err):find("ermission") then hint = "run as root or as a member of the socket's group" end
        return nil, "cannot connect to HAProxy's runtime API at " .. self.path .. ": " .. tostring(err) .. " (" .. hint .. ")"
    end
    ok, err = s:send(line .. "\n")
    if not ok then
        s:close()
        return nil, "runtime API at " .. self.path .. ": send failed: " .. tostring(err)
    end
    local parts = {}
    while true do
        local data, rerr, partial = s:receive(8192)
        if data then
            parts[#parts + 1] = data
        else
            if partial and partial ~= "" then parts[#parts + 1] = partial end
            if rerr ~= "closed" then
                s:close()
                return nil, "runtime API at " .. self.path .. ": " .. tostring(rerr)
            end
            break
        end
    end
    s:close()
    return table.concat(parts)
end

-- Sleep (seconds) without a busy loop.
function M.sleep(secs)
    local ok, socket = pcall(require, "socket")
    if ok and socket.sleep then socket.sleep(secs) else os.execute("sleep " .. tonumber(secs)) end
end

function M.now()
    local ok, socket = pcall(require, "socket")
    if ok and socket.gettime then return socket.gettime() end
    return os.time()
end

---------------------------------------------------------------------------
-- parsers (tolerant: unknown columns are ignored, missing ones are nil)

local function lines(text)
    local out = {}
    for l in (text .. "\n"):gmatch("([^\n]*)\n") do out[#out + 1] = l end
    return out
end

-- One CSV line -> fields. HAProxy quotes a field that holds a comma or a
-- quote ("a,b", "say ""x""").
local function csv_fields(l)
    local out, i, n = {}, 1, #l
    while i <= n + 1 do
        if l:sub(i, i) == '"' then
            local buf, j = {}, i + 1
            while j <= n do
                local c = l:sub(j, j)
                if c == '"' and l:sub(j + 1, j + 1) == '"' then buf[#buf + 1] = '"'; j = j + 2
                elseif c == '"' then j = j + 1; break
                else buf[#buf + 1] = c; j = j + 1 end
            end
            out[#out + 1] = table.concat(buf)
            i = (l:find(",", j, true) or n + 1) + 1
        else
            local e = l:find(",", i, true) or n + 1
            out[#out + 1] = l:sub(i, e - 1)
            i = e + 1
        end
    end
    return out
end
M.csv_fields = csv_fields

-- `show stat` CSV -> list of rows { pxname=, svname=, status=, ... }.
function M.parse_csv(text)
    local rows, names = {}, nil
    for _, l in ipairs(lines(text)) do
        if l:sub(1, 2) == "# " and not names then
            names = csv_fields(l:sub(3))
        elseif l ~= "" and names then
            local row = {}
            for i, f in ipairs(csv_fields(l)) do
                if names[i] and names[i] ~= "" then row[names[i]] = f end
            end
            if row.pxname and row.svname then rows[#rows + 1] = row end
        end
    end
    if not names then return nil, "no CSV header in the answer to show stat" end
    return rows
end

-- `show servers state` -> list of { be_name=, srv_name=, srv_id=, srv_op_state=, srv_admin_state=, ... }.
function M.parse_servers_state(text)
    local rows, names = {}, nil
    for _, l in ipairs(lines(text)) do
        if l:sub(1, 2) == "# " then
            names = {}
            for f in l:sub(3):gmatch("%S+") do names[#names + 1] = f end
        elseif l ~= "" and names and not l:match("^%d+$") then
            local row, i = {}, 0
            for f in l:gmatch("%S+") do
                i = i + 1
                if names[i] then row[names[i]] = f end
            end
            rows[#rows + 1] = row
        end
    end
    return rows
end

-- fn(line, capture) for every line of text that matches pat.
local function each_match(text, pat, fn)
    for _, l in ipairs(lines(text)) do
        local c = l:match(pat)
        if c then fn(l, c) end
    end
end

-- `show table NAME [key K]` -> list of { key=, server_id=, server_key=, exp= }.
function M.parse_table(text)
    local rows = {}
    each_match(text, "^0x%x+:", function(l)
        local row = {}
        for k, v in l:gmatch("([%w_%.%(%)]+)=(%S*)") do row[k] = v end
        rows[#rows + 1] = row
    end)
    return rows
end

-- `show table` (no name) -> set of table names.
function M.parse_tables(text)
    local names = {}
    each_match(text, "^# table: ([^,]+),", function(_, n) names[n] = true end)
    return names
end

-- `show peers` -> list of sections { id=, flags=, resync_timeout=, peers = { {id=, local=bool, status=} } }.
function M.parse_peers(text)
    local out, cur = {}, nil
    for _, l in ipairs(lines(text)) do
        local id = l:match("^0x%x+: %[[^%]]*%] id=(%S+)")
        if id then
            cur = { id = id, flags = l:match(" flags=(0x%x+)"), resync_timeout = l:match(" resync_timeout=(%S+)"),
                    peers = {} }
            out[#out + 1] = cur
        elseif cur then
            local pid, what = l:match("^%s+0x%x+: id=([^%(%s]+)%(([^%)]*)%)")
            if pid then
                cur.peers[#cur.peers + 1] = { id = pid, ["local"] = what:find("local", 1, true) ~= nil,
                    status = l:match(" last_status=(%S+)") }
            end
        end
    end
    return out
end

-- Has this peers section finished its own resync? HAProxy 2.6 and 3.0 keep
-- "resync from the local peer done" in bit 0x1 and "from the remote peers
-- done" in bit 0x2 of the section's flags; a process hands its stick tables
-- to the next one on a reload only once both are set (see docs/operations.md).
function M.peers_synced(section)
    local f = section and section.flags and tonumber(section.flags:sub(3), 16)
    if not f then return nil end
    return (f & 3) == 3
end

return M
