-- synroute.writecfg - put a generated HAProxy configuration in place safely,
-- and reload the HAProxy that runs it (`synroute haproxy -o FILE [--reload]`).
--
--   local w = require("synroute.writecfg")
--   w.write(text, file, { check = true, bin = "haproxy", env = { SYNROUTE_ROOT = "/src" } })
--       -> true, note | nil, message
--     writes FILE.tmp in FILE's directory, runs `<bin> -c -f FILE.tmp` on it
--     (check = false: not run), and only then renames it to FILE; on any
--     failure FILE is untouched, FILE.tmp removed, and the message carries
--     HAProxy's ALERT lines.
--   w.reload{ master_socket = PATH | nil, systemd_unit = "haproxy" }
--       -> true, how | nil, message
--     the master CLI socket's `reload` when a socket is given; else
--     `systemctl reload <unit>` when systemd runs that unit; else an error.
--     Success means a new worker process took over (`show proc` on the
--     master socket) or systemctl said so.

local exec = require("synroute.exec")

local M = {}

-- Debian's unit starts HAProxy with `-S /run/haproxy-master.sock`.
M.DEBIAN_MASTER_SOCKET = "/run/haproxy-master.sock"
M.RELOAD_WAIT = 10   -- seconds for a new worker to appear
M.MASTER_TIMEOUT = 10   -- seconds for one master CLI answer

-- The lines of HAProxy's output worth showing: ALERTs (and the lines that
-- continue them), else everything.
local function alerts(text)
    local keep, on = {}, false
    for line in text:gmatch("[^\n]+") do
        if line:find("%[ALERT%]") then on = true
        elseif line:find("^%[%u+%]") then on = false end
        if on then keep[#keep + 1] = "  " .. line end
    end
    if #keep == 0 then
        for line in text:gmatch("[^\n]+") do keep[#keep + 1] = "  " .. line end
    end
    return table.concat(keep, "\n")
end

-- `<bin> -c -f file` -> true | nil, message
function M.check(file, bin, env)
    local path, why = exec.find(bin or "haproxy")
    if not path then
        return nil, "cannot check the configuration: " .. why ..
            " (give --haproxy-bin PATH, or --no-check to write it unchecked)"
    end
    local argv = { "env" }
    for _, k in ipairs(env and require("synroute.values").sorted_keys(env) or {}) do
        argv[#argv + 1] = k .. "=" .. env[k]
    end
    for _, a in ipairs({ path, "-c", "-f", file }) do argv[#argv + 1] = a end
    local out, rc, errs = exec.run(argv)
    if rc ~= 0 then
        return nil, path .. " -c rejects the configuration (exit " .. rc .. "):\n" .. alerts(errs .. out)
    end
    return true
end

function M.write(text, file, opts)
    opts = opts or {}
    local tmp = file .. ".tmp"
    local f, err = io.open(tmp, "w")
    if not f then return nil, "cannot write " .. tmp .. ": " .. tostring(err) end
    local ok, werr = f:write(text)
    local cok, cerr = f:close()
    if not ok or not cok then
        os.remove(tmp)
        return nil, "cannot write " .. tmp .. ": " .. tostring(werr or cerr)
    end
    if opts.check then
        local good, why = M.check(tmp, opts.bin, opts.env)
        if not good then
            os.remove(tmp)
            return nil, why .. "\n" .. file .. " is unchanged"
        end
    end
    local rok, rerr = os.rename(tmp, file)
    if not rok then
        os.remove(tmp)
        return nil, "cannot rename " .. tmp .. " to " .. file .. ": " .. tostring(rerr)
    end
    return true, opts.check and "checked with haproxy -c" or "not checked (--no-check)"
end

-- The PIDs of the current workers in `show proc` output (2.6 and 3.0:
-- "<PID> worker <reloads> <uptime> <version>" before "# old workers").
function M.current_workers(text)
    local pids = {}
    for line in (text or ""):gmatch("[^\n]*") do
        if line:match("^#%s*old") then break end
        local pid = line:match("^(%d+)%s+worker%s")
        if pid then pids[#pids + 1] = pid end
    end
    return pids
end

-- One master CLI command. 2.6 keeps a non-interactive master CLI
-- connection open after the answer: ";quit" closes it (3.0 accepts it too).
local function master_cmd(path, cmd)
    return require("synroute.runtime").client(path, M.MASTER_TIMEOUT):cmd(cmd .. ";quit")
end

local function reload_master(path)
    local before, err = master_cmd(path, "show proc")
    if not before then return nil, "master socket " .. path .. ": " .. tostring(err) end
    local old = {}
    for _, pid in ipairs(M.current_workers(before)) do old[pid] = true end
    -- 3.0 answers "Success=0|1" and the new process's startup messages; 2.6
    -- re-executes the master and closes the connection without a word
    local ans = master_cmd(path, "reload")
    if ans and ans:find("Success=0", 1, true) then
        return nil, "master socket " .. path .. ": HAProxy refused the new configuration:\n" .. alerts(ans)
    end
    local rt = require("synroute.runtime")
    local deadline = rt.now() + M.RELOAD_WAIT
    repeat
        rt.sleep(0.2)
        local now = master_cmd(path, "show proc")
        for _, pid in ipairs(M.current_workers(now)) do
            if not old[pid] then return true, "reloaded through the master socket " .. path .. " (new worker " .. pid .. ")" end
        end
    until rt.now() > deadline
    return nil, "master socket " .. path .. ": no new worker after " .. M.RELOAD_WAIT ..
        " s; the new configuration was probably refused (see HAProxy's log); the old one keeps running"
end

local function reload_systemd(unit)
    local sc = exec.find("systemctl")
    if not sc then return nil end
    local _, active = exec.run({ sc, "is-active", "--quiet", unit })
    if active ~= 0 then return nil end
    local _, rc, errs = exec.run({ sc, "reload", unit })
    if rc ~= 0 then
        return false, "systemctl reload " .. unit .. " failed (exit " .. rc .. "): " .. errs:gsub("%s+$", "")
    end
    return true, "reloaded with systemctl reload " .. unit
end

function M.reload(opts)
    opts = opts or {}
    if opts.master_socket then return reload_master(opts.master_socket) end
    local ok, how = reload_systemd(opts.systemd_unit or "haproxy")
    if ok == true then return true, how end
    if ok == false then return nil, how end
    local _, is_socket = exec.run({ "test", "-S", M.DEBIAN_MASTER_SOCKET })
    if is_socket == 0 then return reload_master(M.DEBIAN_MASTER_SOCKET) end
    return nil, "cannot reload: systemd does not run " .. (opts.systemd_unit or "haproxy") ..
        " and there is no master socket at " .. M.DEBIAN_MASTER_SOCKET .. "; give --master-socket PATH"
end

return M
