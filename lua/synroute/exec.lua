-- synroute.exec - the one place synroute runs another program (curl for
-- --probe, `haproxy -vv` for the target). Lua can start a program only
-- through the shell (io.popen), so every word is quoted here and nowhere
-- else; a program is found in PATH without asking the shell.
--
--   exec.quote(s)            -> s as one shell word
--   exec.find(name)          -> path | nil, why   (a name with '/' is used as is)
--   exec.run(argv)           -> stdout, exit code, stderr
--                               (code 127: the program could not be started)

local M = {}

function M.quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function is_file(p)
    local f = io.open(p, "rb")
    if not f then return false end
    f:close()
    return true
end

function M.find(name)
    if name:find("/", 1, true) then
        if is_file(name) then return name end
        return nil, name .. " does not exist"
    end
    for dir in (os.getenv("PATH") or "/usr/local/bin:/usr/bin:/bin"):gmatch("[^:]+") do
        local p = dir .. "/" .. name
        if is_file(p) then return p end
    end
    return nil, "no `" .. name .. "` in PATH"
end

local function slurp(path)
    local f = io.open(path, "rb")
    local s = f and f:read("a") or ""
    if f then f:close() end
    os.remove(path)
    return s
end

function M.run(argv)
    local words = {}
    for i, a in ipairs(argv) do words[i] = M.quote(a) end
    local err_file = os.tmpname()
    local p = io.popen(table.concat(words, " ") .. " 2>" .. M.quote(err_file), "r")
    if not p then
        os.remove(err_file)
        return "", 127, "cannot start " .. tostring(argv[1])
    end
    local out = p:read("a") or ""
    local _, how, code = p:close()
    if how ~= "exit" then code = 128 + (code or 0) end
    return out, code or 0, slurp(err_file)
end

return M
