-- synroute.values - the syntax of the values synroute reads and writes, in
-- one place: HAProxy durations, table sizes, request rates, host:port
-- addresses, IP networks; and the orders names are sorted in.
--
--   values.duration(v)        -> seconds | nil   ("90s", "500ms", "1h", or a whole
--                                number of milliseconds, as HAProxy reads a bare number)
--   values.size(v)            -> "100k" | nil    (entries: digits and k, m or g)
--   values.rate(v)            -> count, period, seconds | nil   ("3/10s")
--   values.addr(s)            -> host, port | nil ("host:port", "[v6]:port", ":port";
--                                host: values.host or a wildcard "*")
--   values.host(s)            -> true | nil      (IPv4, IPv6 or a DNS name: one token)
--   values.socket_path(s)     -> true | nil      (absolute, at most 107 bytes, only
--                                letters, digits and / . _ - + @ = , ~)
--   values.server_name(n)     -> HAProxy identifier for a process name: n itself when it
--                                is one, else a readable form plus "-" and 8 hex digits of
--                                a hash of n (two names never share one identifier)
--   values.token(s)           -> true | nil      (s is one clean haproxy.cfg word: no
--                                space, quote, comment or control character)
--   values.show(s)            -> s for a message, control characters as \ddd
--   values.suggest(w, list)   -> the word of list closest to w (a typo), or nil
--   values.host_port(h, p)    -> "h:p", "[v6]:p"
--   values.server_addr(s)     -> s.path, or host_port(s.host, s.port)
--   values.endpoint(h, p, path) -> "unix:<path>" | "h:p" (localhost = 127.0.0.1):
--                                one spelling per listening socket
--   values.network(s)         -> true | nil      ("10.0.0.0/8", "::1", "fd00::/8")
--   values.in_network(ip, net) -> boolean        (an IPv4 client may be ::ffff:a.b.c.d)
--   values.sorted_keys(t)     -> keys of t, sorted (as strings)
--   values.natural_less(a, b) -> "w-2" before "w-10"
-- Nothing here raises on bad input: a value that does not parse is nil.

local M = {}

-- Units of an HAProxy duration, in seconds; no unit: milliseconds.
local UNITS = { [""] = 0.001, us = 0.000001, ms = 0.001, s = 1, m = 60, h = 3600, d = 86400 }

function M.duration(v)
    if math.type(v) == "integer" then v = tostring(v) end
    if type(v) ~= "string" then return nil end
    local n, unit = v:match("^(%d+)(%a*)$")
    if not n or #n > 12 or not UNITS[unit] then return nil end
    return tonumber(n) * UNITS[unit]
end

function M.size(v)
    if math.type(v) == "integer" then v = tostring(v) end
    if type(v) ~= "string" or not v:match("^%d+[kmg]?$") then return nil end
    return v
end

-- "3/10s": at least one request per a period of at least one second.
function M.rate(v)
    if type(v) ~= "string" then return nil end
    local n, period = v:match("^%s*(%d+)%s*/%s*(%w+)%s*$")
    local secs = M.duration(period)
    if not n or tonumber(n) < 1 or not secs or secs < 1 then return nil end
    return tonumber(n), period, math.floor(secs)
end

function M.addr(s)
    if type(s) ~= "string" then return nil end
    local h, p = s:match("^%[([%x:%.]+)%]:(%d+)$")
    if not h then h, p = s:match("^([^:]*):(%d+)$") end
    if not p or #p > 5 then return nil end
    if h ~= "" and h ~= "*" and not M.host(h) then return nil end
    p = tonumber(p)
    if p < 1 or p > 65535 then return nil end
    return h, p
end

function M.host_port(h, p)
    h = tostring(h)
    if h:find(":", 1, true) and h:sub(1, 1) ~= "[" then h = "[" .. h .. "]" end
    return h .. ":" .. tostring(p)
end

function M.server_addr(s)
    return s.path or M.host_port(s.host, s.port)
end

function M.endpoint(host, port, path)
    if path then return "unix:" .. path end
    if host == "localhost" then host = "127.0.0.1" end
    return host .. ":" .. tostring(port)
end

---------------------------------------------------------------------------
-- IP addresses and networks

local function ip4_bytes(s)
    local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
    if not a then return nil end
    local t = { tonumber(a), tonumber(b), tonumber(c), tonumber(d) }
    for _, v in ipairs(t) do if v > 255 then return nil end end
    return t
end

-- "a:b::c" -> 16-bit groups, nil if malformed
local function ip6_groups(x)
    local g = {}
    if x == "" then return g end
    for h in (x .. ":"):gmatch("([^:]*):") do
        if not h:match("^%x%x?%x?%x?$") then return nil end
        g[#g + 1] = tonumber(h, 16)
    end
    return g
end

local function ip6_bytes(s)
    if not s:find(":", 1, true) then return nil end
    local v4tail = s:match(":(%d+%.%d+%.%d+%.%d+)$")
    local tail4 = v4tail and ip4_bytes(v4tail)
    if v4tail and not tail4 then return nil end
    if v4tail then s = s:sub(1, #s - #v4tail) .. "0:0" end
    local head, tail = s:match("^(.-)::(.*)$")
    local g
    if head then
        local hg, tg = ip6_groups(head), ip6_groups(tail)
        if not hg or not tg or #hg + #tg > 7 then return nil end
        g = hg
        for _ = 1, 8 - #hg - #tg do g[#g + 1] = 0 end
        for _, v in ipairs(tg) do g[#g + 1] = v end
    else
        g = ip6_groups(s)
        if not g or #g ~= 8 then return nil end
    end
    local t = {}
    for _, v in ipairs(g) do t[#t + 1] = v >> 8; t[#t + 1] = v & 255 end
    if tail4 then for i = 1, 4 do t[12 + i] = tail4[i] end end
    return t
end

local function ip_bytes(s)
    if type(s) ~= "string" then return nil end
    return ip4_bytes(s) or ip6_bytes(s)
end

-- net, prefix bits, address bytes | nil
local function split_network(s)
    if type(s) ~= "string" then return nil end
    local net, bits = s:match("^(.-)/(%d+)$")
    net = net or s
    local b = ip_bytes(net)
    if not b then return nil end
    bits = bits and tonumber(bits) or #b * 8
    if bits > #b * 8 then return nil end
    return b, bits
end

function M.network(s)
    return split_network(s) and true or nil
end

function M.in_network(ip, net)
    local a = ip_bytes(ip)
    local n, bits = split_network(net)
    if not a or not n then return false end
    if #a == 16 and #n == 4 then
        -- an IPv4 client seen as ::ffff:a.b.c.d
        for i = 1, 10 do if a[i] ~= 0 then return false end end
        if a[11] ~= 255 or a[12] ~= 255 then return false end
        a = { a[13], a[14], a[15], a[16] }
    end
    if #a ~= #n then return false end
    for i = 1, #n do
        local take = math.min(8, math.max(0, bits - (i - 1) * 8))
        if take == 0 then return true end
        local mask = (0xff << (8 - take)) & 0xff
        if (a[i] & mask) ~= (n[i] & mask) then return false end
    end
    return true
end

---------------------------------------------------------------------------
-- hosts, socket paths, names: what may be written into haproxy.cfg

-- a DNS name (labels of letters, digits, - and _, as container names have)
local function dns_name(s)
    if #s > 253 or s == "." then return false end
    for label in (s:gsub("%.$", "") .. "."):gmatch("([^.]*)%.") do
        if #label < 1 or #label > 63 or not label:match("^[%w_][%w_%-]*$") or label:sub(-1) == "-" then
            return false
        end
    end
    return true
end

function M.host(s)
    if type(s) ~= "string" or s == "" then return nil end
    if ip_bytes(s) then return true end
    if s:match("^[%d.]+$") then return nil end   -- 1.2.3 or 300.1.1.1: not an IPv4 address
    return dns_name(s) or nil
end

function M.socket_path(s)
    if type(s) ~= "string" or #s > 107 then return nil end
    return s:match("^/[%w%._%-/+@=,~]*$") and true or nil
end

-- 32-bit FNV-1a of s (server names here, server ids in haproxy_gen)
function M.fnv1a(s)
    local h = 2166136261
    for i = 1, #s do h = ((h ~ s:byte(i)) * 16777619) & 0xffffffff end
    return h
end

function M.server_name(n)
    if n:match("^[%w%._:%-]+$") then return n end
    return (n:gsub("[^%w%._:%-]+", "_")) .. string.format("-%08x", M.fnv1a(n))
end

-- The acl of the addresses that may reach the admin API and the metrics
-- (admin_networks) | nil when the list is empty (nobody may)
function M.admin_net_acl(dep)
    if #dep.admin_networks == 0 then return nil end
    return "acl synroute_admin_net src " .. table.concat(dep.admin_networks, " ")
end

function M.token(s)
    return type(s) == "string" and s:match("^[%w%._:%-/%[%]@+=,~*]+$") ~= nil or nil
end

function M.show(s)
    return (tostring(s):gsub("[%c\\]", function(c) return string.format("\\%03d", c:byte()) end))
end

-- Edit distance of a and b (short words): insertions, deletions,
-- substitutions and swaps of two neighbours count one each.
local function distance(a, b)
    local d = {}
    for i = 0, #a do d[i] = { [0] = i } end
    for j = 0, #b do d[0][j] = j end
    for i = 1, #a do
        for j = 1, #b do
            local cost = a:byte(i) == b:byte(j) and 0 or 1
            d[i][j] = math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
                d[i][j] = math.min(d[i][j], d[i - 2][j - 2] + 1)
            end
        end
    end
    return d[#a][#b]
end

function M.suggest(w, list)
    if type(w) ~= "string" or #w > 64 then return nil end
    local best, bd = nil, math.max(2, #w // 4) + 1
    for _, c in ipairs(list) do
        local d = distance(w:lower(), c)
        if d < bd then best, bd = c, d end
    end
    return best
end

---------------------------------------------------------------------------
-- orders

function M.sorted_keys(t)
    local ks = {}
    for k in pairs(t) do ks[#ks + 1] = k end
    table.sort(ks, function(a, b) return tostring(a) < tostring(b) end)
    return ks
end

local function natural_key(s)
    return (s:gsub("%d+", function(d) return string.format("%012d", tonumber(d) or 0) end))
end

function M.natural_less(a, b)
    local ka, kb = natural_key(a), natural_key(b)
    if ka ~= kb then return ka < kb end
    return a < b
end

return M
