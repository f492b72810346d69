-- synroute.paths - where synroute's files are, in the two layouts.
--
-- Repository mode (a checkout; the demo, the tests, `--portable`): one root
-- holds lua/synroute/*.lua, build/<5.3|5.4>/synroute.so, routes/ and
-- haproxy/. The root is the directory above lua/synroute/, found from this
-- file's own location.
--
-- Installed mode (`make install`, the Debian package): `make install` writes
-- the data directory into the line below (it starts with "@" only in a
-- checkout). Then
--   <PREFIX>/share/lua/<5.x>/synroute/*.lua      this file and the glue
--   <LIBDIR>/lua/<5.x>/synroute.so               found on Lua's cpath
--   <DATADIR>/routes/routes.yaml, <DATADIR>/haproxy/errors/*.http
--
--   local paths = require("synroute.paths")
--   paths.mode                  "repository" | "installed"
--   paths.root                  the checkout (repository mode), else nil
--   paths.datadir               <root> or <DATADIR>
--   paths.routes_file           routes.yaml
--   paths.errors_dir            the Matrix JSON error files for HAProxy
--   paths.glue(v)               the HAProxy glue for Lua v ("5.3", "5.4") | nil, why
--   paths.module_file(v)        repository mode: <root>/build/<v>/synroute.so
--   paths.lua_version()         "5.3" / "5.4": the Lua running this code
--   paths.abspath(p)            p made absolute against $PWD, normalised
-- No function here raises; a layout problem is a `nil, message` return.

local INSTALLED_DATADIR = "@SYNROUTE_DATADIR@"

local M = {}

local function cwd()
    local p = os.getenv("PWD")
    if p and p:sub(1, 1) == "/" then return p end
    local f = io.popen("pwd 2>/dev/null")
    if f then
        p = f:read("l"); f:close()
        if p and p ~= "" then return p end
    end
    return "."
end

-- "/a/./b/../c" -> "/a/c"; relative paths are made absolute against $PWD.
local function abspath(p)
    if p:sub(1, 1) ~= "/" then p = cwd() .. "/" .. p end
    local out = {}
    for seg in p:gmatch("[^/]+") do
        if seg == ".." then
            if #out > 0 then out[#out] = nil end
        elseif seg ~= "." then
            out[#out + 1] = seg
        end
    end
    return "/" .. table.concat(out, "/")
end
M.abspath = abspath

-- This file's absolute path: from the chunk name ("@path", as lua, lua-load
-- and dofile give it), else from a search of package.path.
local function self_file()
    local src = debug.getinfo(1, "S").source
    if type(src) == "string" and src:sub(1, 1) == "@" then
        return abspath(src:sub(2))
    end
    local p = package.searchpath("synroute.paths", package.path)
    if p then return abspath(p) end
    return nil
end

function M.lua_version()
    return _VERSION:match("(%d+%.%d+)") or _VERSION
end

M.file = self_file()
M.dir = M.file and M.file:match("^(.*)/[^/]*$") or nil   -- .../synroute

if INSTALLED_DATADIR:sub(1, 1) ~= "@" then
    M.mode = "installed"
    M.datadir = INSTALLED_DATADIR
    -- <PREFIX>/share/lua/<v>/synroute/paths.lua -> <PREFIX>/share/lua
    M.share_lua = M.dir and M.dir:match("^(.*)/%d+%.%d+/synroute$") or nil
else
    M.mode = "repository"
    M.root = M.dir and M.dir:match("^(.*)/lua/synroute$") or nil
    if M.root == "" then M.root = "/" end
    M.datadir = M.root
end

if M.datadir then
    M.routes_file = M.datadir .. "/routes/routes.yaml"
    M.errors_dir = M.datadir .. "/haproxy/errors"
end

-- The HAProxy glue for the Lua version `v` of the target HAProxy.
function M.glue(v)
    if M.mode == "repository" then
        if not M.root then return nil, "cannot find the synroute checkout from " .. tostring(M.file) end
        return M.root .. "/lua/synroute/haproxy.lua"
    end
    if not M.share_lua then
        return nil, "cannot tell the Lua directory from " .. tostring(M.file) ..
            " (expected <PREFIX>/share/lua/<version>/synroute/paths.lua)"
    end
    return M.share_lua .. "/" .. v .. "/synroute/haproxy.lua"
end

-- Repository mode: the C module built for Lua `v`.
function M.module_file(v)
    if M.mode ~= "repository" or not M.root then return nil end
    return M.root .. "/build/" .. v .. "/synroute.so"
end

return M
