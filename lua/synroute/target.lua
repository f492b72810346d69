-- synroute.target - which HAProxy (and which Lua inside it) a generated
-- configuration is for.
--
--   local target = require("synroute.target")
--   target.parse_vv(text)        -> { haproxy = "2.6", lua = "5.3", full = "2.6.12-1" } | nil, why
--   target.detect(bin)           -> the same, from `<bin> -vv` | nil, why
--   target.check_haproxy(v)      -> "X.Y" | nil, why      (accepts "3.0", "3.0.11", 3.0)
--   target.check_lua(v)          -> "5.3" | "5.4" | nil, why
--   target.resolve(o)            -> { haproxy=, lua=, source= } | nil, why
--
-- resolve: each of the two versions comes from the first of
--   1. o.haproxy_version / o.lua_version      (--haproxy-version, --lua-version)
--   2. `o.bin -vv` when o.bin_explicit        (--haproxy-bin PATH)
--   3. o.setting = { version=, lua= }         (haproxy: in synroute.yaml)
--   4. `o.bin -vv`, o.bin defaulting to `haproxy` in PATH
-- (`source` says where they came from, for the generated header.)
-- Errors are return values; nothing here raises.

local M = {}

-- The oldest HAProxy synroute supports, and the branches it is tested on.
M.MIN_HAPROXY = "2.6"
M.TESTED = { "2.6", "3.0" }
-- The Lua versions the module is built for.
M.LUAS = { "5.3", "5.4" }

local function vnum(v)
    local a, b = v:match("^(%d+)%.(%d+)")
    return tonumber(a) * 1000 + tonumber(b)
end

function M.check_haproxy(v)
    if math.type(v) == "float" then v = string.format("%.1f", v) end
    if type(v) ~= "string" then return nil, "expected an HAProxy release like \"3.0\"" end
    local mm = v:match("^(%d+%.%d+)%.?%d*$")
    if not mm then return nil, "expected an HAProxy release like \"3.0\", not \"" .. v .. "\"" end
    mm = mm:gsub("^0+(%d)", "%1")
    if vnum(mm) < vnum(M.MIN_HAPROXY) then
        return nil, "HAProxy " .. mm .. " is too old: synroute needs HAProxy " .. M.MIN_HAPROXY .. " or later"
    end
    return mm
end

function M.check_lua(v)
    if math.type(v) == "float" then v = string.format("%.1f", v) end
    if type(v) == "string" then
        local mm = v:match("^(%d+%.%d+)%.?%d*$")
        for _, l in ipairs(M.LUAS) do
            if mm == l then return l end
        end
    end
    return nil, "expected the Lua version HAProxy embeds: " .. table.concat(M.LUAS, " or ") ..
        (type(v) == "string" and (", not \"" .. v .. "\"") or "")
end

-- Is `v` ("X.Y") one of the tested branches?
function M.tested(v)
    for _, t in ipairs(M.TESTED) do
        if t == v then return true end
    end
    return false
end

-- `haproxy -vv` output -> target.
--   HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/
--   Built with Lua version : Lua 5.3.6
function M.parse_vv(text)
    if type(text) ~= "string" then return nil, "no output" end
    local full = text:match("HAProxy version (%d+%.%d+[^%s]*)") or text:match("HA%-Proxy version (%d+%.%d+[^%s]*)")
    if not full then
        return nil, "no \"HAProxy version\" line in its -vv output"
    end
    local hv, herr = M.check_haproxy(full:match("^%d+%.%d+"))
    if not hv then return nil, herr end
    local lfull = text:match("Built with Lua version : Lua (%d+%.%d+[%.%d]*)")
    if not lfull then
        return nil, "HAProxy " .. full .. " is not built with Lua (no \"Built with Lua version\" line in its -vv output)"
    end
    local lv, lerr = M.check_lua(lfull:match("^%d+%.%d+"))
    if not lv then return nil, "HAProxy " .. full .. " embeds Lua " .. lfull .. ": " .. lerr end
    return { haproxy = hv, lua = lv, full = full, lua_full = lfull }
end

local function shell_quote(s)
    return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Run `<bin> -vv`. `bin` without a slash is looked up in PATH.
function M.detect(bin)
    bin = bin or "haproxy"
    local path = bin
    if not bin:find("/", 1, true) then
        local p = io.popen("command -v " .. shell_quote(bin) .. " 2>/dev/null")
        path = p and p:read("l") or nil
        if p then p:close() end
        if not path or path == "" then return nil, "no `" .. bin .. "` in PATH" end
    else
        local f = io.open(bin, "rb")
        if not f then return nil, bin .. " does not exist" end
        f:close()
    end
    local p = io.popen(shell_quote(path) .. " -vv 2>&1")
    if not p then return nil, "cannot run " .. path end
    local out = p:read("a")
    p:close()
    local t, err = M.parse_vv(out)
    if not t then return nil, path .. " -vv: " .. err end
    t.bin = path
    return t
end

M.HOW = "set it in synroute.yaml (haproxy: { version: \"3.0\", lua: \"5.4\" }), or pass " ..
    "--haproxy-version 3.0 --lua-version 5.4, or name the HAProxy binary to ask with " ..
    "--haproxy-bin PATH (or SYNROUTE_HAPROXY_BIN)"

-- o: haproxy_version, lua_version (strings or nil), bin, bin_explicit,
--    setting = { version=, lua= } (already checked by synroute.config)
function M.resolve(o)
    local t, hsrc, lsrc = {}, nil, nil
    local function take(h, l, from)
        if h and not t.haproxy then t.haproxy, hsrc = h, from end
        if l and not t.lua then t.lua, lsrc = l, from end
    end
    local h, l, err
    if o.haproxy_version then
        h, err = M.check_haproxy(o.haproxy_version)
        if not h then return nil, "--haproxy-version: " .. err end
    end
    if o.lua_version then
        l, err = M.check_lua(o.lua_version)
        if not l then return nil, "--lua-version: " .. err end
    end
    take(h, l, "command line")
    if (not t.haproxy or not t.lua) and o.bin and o.bin_explicit then
        local d, derr = M.detect(o.bin)
        if not d then return nil, "--haproxy-bin: " .. derr end
        take(d.haproxy, d.lua, d.bin .. " -vv")
    end
    if o.setting then take(o.setting.version, o.setting.lua, "synroute.yaml") end
    if not t.haproxy or not t.lua then
        local d, derr = M.detect(o.bin)
        if not d then
            local what = (not t.haproxy and not t.lua) and "the target HAProxy's version and Lua"
                or (not t.haproxy and "the target HAProxy's version" or "which Lua the target HAProxy embeds")
            return nil, "cannot tell " .. what .. " (" .. derr .. "): " .. M.HOW
        end
        take(d.haproxy, d.lua, d.bin .. " -vv")
    end
    t.source = hsrc == lsrc and hsrc or (hsrc .. "; Lua: " .. lsrc)
    return t
end

return M
