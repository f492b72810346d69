-- synroute.config: derive the deployment model `dep` (docs/design.md) from
-- synroute.yaml and the Synapse YAML files it names.
--
--   local config = require("synroute.config")
--   local dep, problems = config.load("synroute.yaml")
--     -> dep | nil, { "file:line: message", ... }
--
-- Every problem found is reported (the load does not stop at the first one).
-- Nothing here prints; tokens and secrets are never part of any message.

local M = {}

local DEFAULT_SECRET = "synroute-default-hash-secret-change-me"
M.DEFAULT_SECRET = DEFAULT_SECRET

-- Stream writer streams that have public routes, -> class (= pool) name.
local WRITER_CLASS = {
  typing = "typing", to_device = "to_device", account_data = "account_data",
  receipts = "receipts", presence = "presence", push_rules = "push_rules",
  device_lists = "device_lists", thread_subscriptions = "thread_subscriptions",
}
M.WRITER_CLASS = WRITER_CLASS
-- Streams that allow several writers (events is sharded inside Synapse and is
-- never routed by the proxy).
local MULTI_WRITER = { events = true, receipts = true, device_lists = true }
-- Streams synroute knows but does not route.
local UNROUTED_STREAM = { events = true, quarantined_media_changes = true }

-- Pools an admin may name in `pools:` (writer pools come from stream_writers).
local POOL_NAMES = {
  "sync", "initial_sync", "federation", "federation_send", "client", "encryption",
  "login", "event_send", "messages", "user_directory", "sso", "media",
  "generic", "appservice",
}
local IS_POOL = {}
for _, p in ipairs(POOL_NAMES) do IS_POOL[p] = true end
M.POOL_NAMES = POOL_NAMES

-- The listener resource a pool's members must serve.
local function needed_resource(pool)
  if pool == "federation" or pool == "federation_send" then return "federation" end
  if pool == "media" then return "media" end
  return "client"
end
M.needed_resource = needed_resource

-- Convention: historical worker_app names -> pools.
local APP_POOLS = {
  ["synapse.app.synchrotron"] = { "sync" },
  ["synapse.app.client_reader"] = { "client" },
  ["synapse.app.federation_reader"] = { "federation" },
  ["synapse.app.event_creator"] = { "event_send" },
  ["synapse.app.frontend_proxy"] = { "encryption" },
  ["synapse.app.user_dir"] = { "user_directory" },
  ["synapse.app.media_repository"] = { "media" },
}
-- Convention: worker names (after stripping a deployment prefix and an
-- instance number) -> pools. Names from Synapse's docs, element-hq/ess-helm
-- and matrix-docker-ansible-deploy; see docs/deployment.md.
local NAME_POOLS = {
  synchrotron = { "sync" }, sync = { "sync" }, sync_worker = { "sync" },
  sliding_sync = { "sync" },
  initial_synchrotron = { "initial_sync" }, initial_sync = { "initial_sync" },
  client_reader = { "client" },
  federation_reader = { "federation" },
  federation_inbound = { "federation_send" },
  event_creator = { "event_send" },
  room_worker = { "event_send", "messages" }, room = { "event_send", "messages" },
  sso_login = { "sso" }, sso = { "sso" },
  encryption = { "encryption" }, frontend_proxy = { "encryption" },
  login = { "login" },
  user_dir = { "user_directory" }, user_directory = { "user_directory" },
  media_repository = { "media" }, media = { "media" },
  generic_worker = { "generic" }, generic = { "generic" },
}
M.APP_POOLS, M.NAME_POOLS = APP_POOLS, NAME_POOLS

local GENERIC_APPS = {
  ["synapse.app.generic_worker"] = true, ["synapse.app.client_reader"] = true,
  ["synapse.app.event_creator"] = true, ["synapse.app.federation_reader"] = true,
  ["synapse.app.federation_sender"] = true, ["synapse.app.frontend_proxy"] = true,
  ["synapse.app.pusher"] = true, ["synapse.app.synchrotron"] = true,
  ["synapse.app.user_dir"] = true, ["synapse.app.appservice"] = true,
  ["synapse.app.media_repository"] = true,
}

local TOP_KEYS = {
  synapse = true, synapse_version = true, listen = true, admin_networks = true,
  hash_secret = true, pools = true, stick = true, timeouts = true, log = true,
  nbthread = true, limits = true, peers = true, mas = true, haproxy = true,
  runtime = true,
}
local TIMEOUT_KEYS = {
  connect = "5s", client = "180s", server = "180s", tunnel = "1h",
  http_request = "10s", http_keep_alive = "60s", queue = "30s", check_interval = "2s",
  check = "5s",
}
M.TIMEOUT_DEFAULTS = TIMEOUT_KEYS

-- Classes whose requests carry a stickiness key: the only ones limits.per_user
-- can count (the counter is keyed by that hashed key).
local KEYED_CLASSES = { sync = true, initial_sync = true, federation_send = true, event_send = true, messages = true }
M.KEYED_CLASSES = KEYED_CLASSES

-- HAProxy duration -> seconds (nil if malformed)
local function duration_secs(v)
  local n, u = tostring(v):match("^(%d+)(%a*)$")
  if not n then return nil end
  local mul = ({ [""] = 0.001, us = 0.000001, ms = 0.001, s = 1, m = 60, h = 3600, d = 86400 })[u]
  if not mul then return nil end
  return tonumber(n) * mul
end
M.duration_secs = duration_secs

---------------------------------------------------------------------------
-- small helpers

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks, function(a, b) return tostring(a) < tostring(b) end)
  return ks
end

-- Natural order: "w-2" before "w-10".
local function natural_key(s)
  return (s:gsub("%d+", function(d) return string.format("%012d", tonumber(d) or 0) end))
end
local function natural_less(a, b)
  local ka, kb = natural_key(a), natural_key(b)
  if ka ~= kb then return ka < kb end
  return a < b
end
M.natural_less = natural_less

local function dirname(p)
  local d = p:match("^(.*)/[^/]*$")
  if d == nil then return "." end
  if d == "" then return "/" end
  return d
end

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

local function normpath(p)
  local abs = p:sub(1, 1) == "/"
  local out = {}
  for seg in p:gmatch("[^/]+") do
    if seg == ".." and #out > 0 and out[#out] ~= ".." then
      out[#out] = nil
    elseif seg ~= "." then
      out[#out + 1] = seg
    end
  end
  local s = table.concat(out, "/")
  if abs then return "/" .. s end
  if s == "" then return "." end
  return s
end

local function join(base, p)
  if p:sub(1, 1) == "/" then return normpath(p) end
  return normpath(base .. "/" .. p)
end

local function abspath(p)
  if p:sub(1, 1) == "/" then return normpath(p) end
  return normpath(cwd() .. "/" .. p)
end
M.abspath = abspath

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function has_glob(s) return s:find("[%*%?%[]") ~= nil end

local function glob_to_pattern(g)
  local out = { "^" }
  local i = 1
  while i <= #g do
    local c = g:sub(i, i)
    if c == "*" then out[#out + 1] = ".*"
    elseif c == "?" then out[#out + 1] = "."
    elseif c == "[" then
      local j = g:find("]", i + 1, true)
      if j then
        local body = g:sub(i + 1, j - 1):gsub("^!", "^"):gsub("%%", "%%%%")
        out[#out + 1] = "[" .. body .. "]"
        i = j
      else
        out[#out + 1] = "%["
      end
    elseif c:match("[%^%$%(%)%%%.%+%-%]]") then out[#out + 1] = "%" .. c
    else out[#out + 1] = c end
    i = i + 1
  end
  out[#out + 1] = "$"
  return table.concat(out)
end
M.glob_to_pattern = glob_to_pattern

-- Name patterns in `pools:` (no '/' inside names).
local function name_matches(pat, name)
  if not has_glob(pat) then return pat == name end
  return name:match(glob_to_pattern(pat)) ~= nil
end

-- Expand a file glob; wildcards only in the last path component.
local function expand_glob(path)
  if not has_glob(path) then return { path } end
  local dir, base = path:match("^(.*)/([^/]*)$")
  if not dir then dir, base = ".", path end
  if has_glob(dir) then return nil, "wildcards are only allowed in the file name" end
  local f = io.popen("ls -1A " .. shell_quote(dir == "" and "/" or dir) .. " 2>/dev/null")
  local out = {}
  if f then
    local pat = glob_to_pattern(base)
    for line in f:lines() do
      if line:match(pat) and not (line:sub(1, 1) == "." and base:sub(1, 1) ~= ".") then
        out[#out + 1] = dir .. "/" .. line
      end
    end
    f:close()
  end
  table.sort(out)
  return out
end

local function is_null(v, null) return v == nil or v == null end

---------------------------------------------------------------------------
-- the loader

-- ctx: problems, warnings, synroute module, yaml cache
local function new_ctx()
  local ok, sr = pcall(require, "synroute")
  if not ok then return nil, "cannot load the synroute module: " .. tostring(sr) end
  return { problems = {}, warnings = {}, sr = sr, null = sr.null }
end

local function problem(ctx, where, msg)
  ctx.problems[#ctx.problems + 1] = where .. ": " .. msg
end
local function warn(ctx, where, msg)
  ctx.warnings[#ctx.warnings + 1] = where .. ": " .. msg
end

-- "file:line" for key `k` of table `t` (or the table itself).
local function at(file, pos, t, k)
  local p = pos and t and pos[t]
  local line = 1
  if p then
    if k ~= nil and type(k) == "number" and p.items and p.items[k] then line = p.items[k]
    elseif k ~= nil and p.keys and p.keys[k] then line = p.keys[k]
    elseif p.line then line = p.line end
  end
  return file .. ":" .. line
end

-- Load one YAML file. ref: "file:line" of whoever named it (nil for the file
-- given on the command line); what: what the file is, for messages. Only a
-- regular file within the module's limits is read (ctx.yaml_limits, nil: the
-- defaults); a FIFO or a device is refused without being read. Problems with
-- the file as a whole lead with the reference:
--   "homeserver.yaml:19: appservice registration /dev/zero is not a regular file (a character device)"
-- problems inside it lead with their own place and say where it was named:
--   "as/bomb.yaml:3:9: alias *a expands ... (referenced at homeserver.yaml:19)"
local function load_yaml(ctx, path, ref, what)
  what = what or "file"
  local doc, pos = ctx.sr.yaml_load(path, ctx.yaml_limits)
  if doc == nil then
    local msg = tostring(pos)
    local head = msg:sub(1, #path + 1) == path .. ":" and msg:sub(#path + 2, #path + 2)
    if head and head:match("%d") then
      -- "path:line:col: problem"
      ctx.problems[#ctx.problems + 1] = msg .. (ref and (" (referenced at " .. ref .. ")") or "")
    else
      -- "path: problem" with the file as a whole
      local why = head and msg:sub(#path + 3) or msg
      local where = ref and (ref .. ": ") or ""
      if why:sub(1, 3) == "is " then
        ctx.problems[#ctx.problems + 1] = where .. what .. " " .. path .. " " .. why
      else
        ctx.problems[#ctx.problems + 1] = where .. "cannot read " .. what .. " " .. path .. ": " ..
          why:gsub("^cannot open: ", "")
      end
    end
    return nil
  end
  if doc == ctx.null then doc = {} ; pos = pos or {} end
  if type(doc) ~= "table" then
    problem(ctx, path .. ":1", "expected a YAML mapping at the top level")
    return nil
  end
  return doc, pos
end

-- string or list of strings -> list, with the line of each item
local function str_list(ctx, file, pos, parent, key, what)
  local v = parent[key]
  if is_null(v, ctx.null) then return {} end
  if type(v) == "string" then return { { v, at(file, pos, parent, key) } } end
  if type(v) == "table" and #v >= 0 and next(v) == nil then return {} end
  if type(v) == "table" and v[1] ~= nil then
    local out = {}
    for i, s in ipairs(v) do
      if type(s) ~= "string" then
        problem(ctx, at(file, pos, v, i), what .. ": expected a string")
      else
        out[#out + 1] = { s, at(file, pos, v, i) }
      end
    end
    return out
  end
  problem(ctx, at(file, pos, parent, key), what .. ": expected a string or a list of strings")
  return {}
end

local WILDCARD = { ["0.0.0.0"] = true, ["::"] = true, [""] = true, ["*"] = true, ["[::]"] = true }

-- Parse a Synapse listener. Returns a record or nil (not HTTP / broken).
local function parse_listener(ctx, file, pos, l, idx, list)
  local where = at(file, pos, list, idx)
  if type(l) ~= "table" then
    problem(ctx, where, "listener: expected a mapping")
    return nil
  end
  local rec = { file = file, where = where, names = {}, type = l.type }
  if is_null(l.type, ctx.null) then rec.type = "http" end
  if math.type(l.port) == "integer" then
    rec.port = l.port
  elseif type(l.port) == "string" and l.port:match("^%d+$") then
    rec.port = tonumber(l.port)
  elseif type(l.path) == "string" then
    rec.path = l.path
  else
    problem(ctx, where, "listener has neither a port nor a path")
    return nil
  end
  if rec.port and (rec.port < 1 or rec.port > 65535) then
    problem(ctx, at(file, pos, l, "port"), "listener port " .. rec.port .. " is out of range")
    return nil
  end
  local binds = {}
  if type(l.bind_addresses) == "table" then
    for _, b in ipairs(l.bind_addresses) do if type(b) == "string" then binds[#binds + 1] = b end end
  elseif type(l.bind_address) == "string" then
    binds[1] = l.bind_address
  end
  for _, b in ipairs(binds) do
    if not WILDCARD[b] then rec.bind = b; break end
  end
  if type(l.resources) == "table" then
    for _, r in ipairs(l.resources) do
      if type(r) == "table" and type(r.names) == "table" then
        for _, n in ipairs(r.names) do
          if type(n) == "string" then rec.names[n] = true end
        end
      end
    end
  end
  rec.x_forwarded = l.x_forwarded == true
  rec.public = rec.type == "http" and (rec.names.client or rec.names.federation or rec.names.media) and true or false
  rec.replication = rec.type == "http" and rec.names.replication or false
  return rec
end

local function parse_listeners(ctx, file, pos, doc, key)
  local out = {}
  local list = doc[key]
  if is_null(list, ctx.null) then return out end
  if type(list) ~= "table" or (next(list) ~= nil and list[1] == nil) then
    problem(ctx, at(file, pos, doc, key), key .. ": expected a list of listeners")
    return out
  end
  for i, l in ipairs(list) do
    local rec = parse_listener(ctx, file, pos, l, i, list)
    if rec then out[#out + 1] = rec end
  end
  return out
end

-- The address the proxy uses for a listener of process `name`.
local function resolve_host(rec, imap)
  if rec.bind then return rec.bind end
  if imap and type(imap.host) == "string" and imap.host ~= "" then return imap.host end
  return "127.0.0.1"
end

local function endpoint_key(host, port, path)
  if path then return "unix:" .. path end
  local h = host
  if h == "localhost" then h = "127.0.0.1" end
  return h .. ":" .. tostring(port)
end

-- A process's public listener serving `res` (client/federation/media).
local function listener_for(proc, res)
  for _, l in ipairs(proc.listeners) do
    if l.public and l.names[res] then return l end
  end
  return nil
end

local function first_public(proc)
  for _, l in ipairs(proc.listeners) do if l.public then return l end end
  return nil
end

local function server_of(proc, l, backup)
  return { name = proc.name, host = l.host, port = l.port, path = l.path, backup = backup or nil, where = l.where }
end

local function parse_addr(s)
  local h, p = s:match("^%[([%x:]+)%]:(%d+)$")
  if not h then h, p = s:match("^([^:]*):(%d+)$") end
  if not p then return nil end
  p = tonumber(p)
  if p < 1 or p > 65535 then return nil end
  return h, p
end
M.parse_addr = parse_addr

local function valid_cidr(s)
  local ip, bits = s:match("^([%d%.]+)/(%d+)$")
  if ip then
    local n = tonumber(bits)
    if n > 32 then return false end
  else
    ip = s:match("^([%d%.]+)$")
  end
  if ip then
    local parts = 0
    for o in ip:gmatch("[^%.]+") do
      local v = tonumber(o)
      if not v or v > 255 or not o:match("^%d+$") then return false end
      parts = parts + 1
    end
    return parts == 4
  end
  local ip6, b6 = s:match("^([%x:]+)/(%d+)$")
  if ip6 then return tonumber(b6) <= 128 and ip6:find(":") ~= nil end
  return s:match("^[%x:]+$") ~= nil and s:find(":") ~= nil
end

---------------------------------------------------------------------------

function M.load(path, opts)
  opts = opts or {}
  local ctx, err = new_ctx()
  if not ctx then return nil, { path .. ":1: " .. err } end
  local null = ctx.null
  local file = path
  local root, rpos = load_yaml(ctx, file, nil, "synroute config")
  if not root then return nil, ctx.problems end
  local base = dirname(file)

  local dep = {
    file = abspath(file),
    listen = {}, admin_networks = {}, pools = {}, as_tokens = {},
    stick = { size = "100k", expire = "30m" }, timeouts = {}, warnings = ctx.warnings,
    workers = {}, processes = {},
  }

  for _, k in ipairs(sorted_keys(root)) do
    if not TOP_KEYS[k] then problem(ctx, at(file, rpos, root, k), "unknown setting '" .. tostring(k) .. "'") end
  end

  -- synapse_version
  local sv = root.synapse_version
  if not is_null(sv, null) then
    if math.type(sv) == "integer" then sv = tostring(sv) end
    if type(sv) ~= "string" or not sv:match("^v?%d+%.%d+") then
      problem(ctx, at(file, rpos, root, "synapse_version"), "synapse_version: expected a release like \"1.157\"")
    else
      dep.synapse_version = sv:gsub("^v", ""):match("^(%d+%.%d+)")
    end
  end

  -- listen
  local listen = str_list(ctx, file, rpos, root, "listen", "listen")
  if root.listen == nil then listen = { { "127.0.0.1:8080", file .. ":1" } } end
  for _, it in ipairs(listen) do
    local h, p = parse_addr(it[1])
    if not h then
      problem(ctx, it[2], "listen: '" .. it[1] .. "' is not host:port")
    else
      dep.listen[#dep.listen + 1] = it[1]
    end
  end

  -- admin_networks
  if root.admin_networks == nil then
    dep.admin_networks = { "127.0.0.1/32", "::1/128" }
  else
    for _, it in ipairs(str_list(ctx, file, rpos, root, "admin_networks", "admin_networks")) do
      if valid_cidr(it[1]) then dep.admin_networks[#dep.admin_networks + 1] = it[1]
      else problem(ctx, it[2], "admin_networks: '" .. it[1] .. "' is not an address or CIDR network") end
    end
  end

  -- stick
  if not is_null(root.stick, null) then
    local s = root.stick
    if type(s) ~= "table" then
      problem(ctx, at(file, rpos, root, "stick"), "stick: expected a mapping with size and expire")
    else
      for _, k in ipairs(sorted_keys(s)) do
        local v = s[k]
        if math.type(v) == "integer" then v = tostring(v) end
        if k == "size" then
          if type(v) == "string" and v:match("^%d+[kmg]?$") then dep.stick.size = v
          else problem(ctx, at(file, rpos, s, k), "stick.size: expected a number of entries like 100k") end
        elseif k == "expire" then
          if type(v) == "string" and v:match("^%d+[smhd]?$") then dep.stick.expire = v
          else problem(ctx, at(file, rpos, s, k), "stick.expire: expected a duration like 30m") end
        else
          problem(ctx, at(file, rpos, s, k), "stick: unknown setting '" .. tostring(k) .. "'")
        end
      end
    end
  end

  -- timeouts
  for k, v in pairs(TIMEOUT_KEYS) do dep.timeouts[k] = v end
  if not is_null(root.timeouts, null) then
    local t = root.timeouts
    if type(t) ~= "table" then
      problem(ctx, at(file, rpos, root, "timeouts"), "timeouts: expected a mapping")
    else
      for _, k in ipairs(sorted_keys(t)) do
        local v = t[k]
        if math.type(v) == "integer" then v = tostring(v) end
        if not TIMEOUT_KEYS[k] then
          problem(ctx, at(file, rpos, t, k), "timeouts: unknown timeout '" .. tostring(k) .. "'")
        elseif type(v) ~= "string" or not ({ [""] = true, us = true, ms = true, s = true, m = true, h = true, d = true })[v:match("^%d+(%a*)$") or "x"] then
          problem(ctx, at(file, rpos, t, k), "timeouts." .. k .. ": expected a duration like 90s")
        else
          dep.timeouts[k] = v
        end
      end
      local srv = dep.timeouts.server
      local n, u = srv:match("^(%d+)(%a*)$")
      local secs = tonumber(n or 0) * (u == "m" and 60 or u == "h" and 3600 or u == "d" and 86400 or
        u == "ms" and 0.001 or u == "us" and 0.000001 or u == "" and 0.001 or 1)
      if secs < 90 then
        warn(ctx, at(file, rpos, t, "server"), "timeouts.server is below 90s: long-polling /sync requests (30 s and more) may be cut")
      end
    end
  end

  -- log
  if math.type(root.nbthread) == "integer" and root.nbthread >= 1 and root.nbthread <= 64 then
    dep.nbthread = root.nbthread
  elseif not is_null(root.nbthread, null) then
    problem(ctx, at(file, rpos, root, "nbthread"), "nbthread: expected a whole number from 1 to 64")
  end
  if type(root.log) == "string" then dep.log = root.log
  elseif not is_null(root.log, null) then problem(ctx, at(file, rpos, root, "log"), "log: expected an HAProxy log target string") end

  -- limits: per pool (server maxconn + bounded queue) and per key (request rate)
  dep.limits = { pools = {}, per_user = {} }
  local limits_where = {}
  if not is_null(root.limits, null) then
    local lim = root.limits
    if type(lim) ~= "table" or lim[1] ~= nil then
      problem(ctx, at(file, rpos, root, "limits"), "limits: expected a mapping of pool name to { maxconn, queue } (and per_user)")
    else
      for _, k in ipairs(sorted_keys(lim)) do
        local v, where = lim[k], at(file, rpos, lim, k)
        if k == "per_user" then
          if type(v) ~= "table" or v[1] ~= nil then
            problem(ctx, where, "limits.per_user: expected a mapping of class to a rate like 3/10s")
          else
            for _, c in ipairs(sorted_keys(v)) do
              local r, cw = v[c], at(file, rpos, v, c)
              local n, per
              if type(r) == "string" then n, per = r:match("^%s*(%d+)%s*/%s*(%d+[smhd]?)%s*$") end
              if not KEYED_CLASSES[c] then
                local ks = sorted_keys(KEYED_CLASSES)
                problem(ctx, cw, "limits.per_user: '" .. tostring(c) .. "' is not a class with a per-user key (" .. table.concat(ks, ", ") .. ")")
              elseif not n or tonumber(n) < 1 or (duration_secs(per) or 0) < 1 then
                problem(ctx, cw, "limits.per_user." .. c .. ": expected requests/period like 3/10s (at least 1 request, period at least 1s)")
              else
                if per:match("^%d+$") then per = per .. "s" end
                dep.limits.per_user[c] = { count = tonumber(n), period = per, secs = math.floor(duration_secs(per)) }
              end
            end
          end
        elseif not (IS_POOL[k] or WRITER_CLASS[k] or k == "main") then
          problem(ctx, where, "limits: unknown pool '" .. tostring(k) .. "' (a pool name, main or per_user)")
        elseif type(v) ~= "table" or v[1] ~= nil then
          problem(ctx, where, "limits." .. k .. ": expected a mapping with maxconn and queue")
        else
          local rec, bad = {}, false
          for _, kk in ipairs(sorted_keys(v)) do
            local x = v[kk]
            if kk == "maxconn" or kk == "queue" then
              if math.type(x) ~= "integer" or x < 1 or x > 100000 then
                problem(ctx, at(file, rpos, v, kk), "limits." .. k .. "." .. kk .. ": expected a whole number from 1 to 100000")
                bad = true
              else rec[kk] = x end
            elseif kk == "queue_timeout" then
              if math.type(x) == "integer" then x = tostring(x) end
              if type(x) ~= "string" or not duration_secs(x) then
                problem(ctx, at(file, rpos, v, kk), "limits." .. k .. ".queue_timeout: expected a duration like 10s")
                bad = true
              else rec.queue_timeout = x end
            else
              problem(ctx, at(file, rpos, v, kk), "limits." .. k .. ": unknown setting '" .. tostring(kk) .. "' (maxconn, queue, queue_timeout)")
              bad = true
            end
          end
          if not bad and not rec.maxconn then
            problem(ctx, where, "limits." .. k .. ": maxconn is required (requests one server handles at once)")
          elseif not bad then
            rec.queue = rec.queue or 100
            dep.limits.pools[k] = rec
            limits_where[k] = where
          end
        end
      end
    end
  end

  -- peers: several HAProxy nodes share their stick tables
  if root.peers == false then
    dep.peers = nil   -- no peers section at all: a reload starts with empty stick tables
  elseif not is_null(root.peers, null) then
    local pr, pwhere = root.peers, at(file, rpos, root, "peers")
    if type(pr) ~= "table" or pr[1] ~= nil then
      problem(ctx, pwhere, "peers: expected a mapping with nodes (and optionally local)")
    else
      local rec = { name = "synroute", nodes = {} }
      for _, k in ipairs(sorted_keys(pr)) do
        if k ~= "local" and k ~= "nodes" then
          problem(ctx, at(file, rpos, pr, k), "peers: unknown setting '" .. tostring(k) .. "' (local, nodes)")
        end
      end
      local nodes = pr.nodes
      if type(nodes) ~= "table" or nodes[1] ~= nil or next(nodes) == nil then
        problem(ctx, at(file, rpos, pr, "nodes"), "peers.nodes: expected a mapping of node name to host:port (its peer address)")
      else
        for _, n in ipairs(sorted_keys(nodes)) do
          local a, nw = nodes[n], at(file, rpos, nodes, n)
          if type(n) ~= "string" or not n:match("^[%w][%w%._%-]*$") then
            problem(ctx, nw, "peers.nodes: '" .. tostring(n) .. "' is not a valid peer name (letters, digits, . _ -)")
          elseif type(a) ~= "string" or not parse_addr(a) then
            problem(ctx, nw, "peers.nodes." .. n .. ": expected host:port")
          else
            rec.nodes[#rec.nodes + 1] = { name = n, addr = a }
          end
        end
      end
      if not is_null(pr["local"], null) then
        local l = pr["local"]
        if type(l) ~= "string" or type(nodes) ~= "table" or nodes[l] == nil then
          problem(ctx, at(file, rpos, pr, "local"), "peers.local: '" .. tostring(l) .. "' is not one of peers.nodes")
        else
          rec["local"] = l
        end
      end
      dep.peers = rec
    end
  end

  -- no peers setting: a local-only peers section, so that a reload hands the
  -- stick tables to the new process (synroute.runtime.default_peers)
  if is_null(root.peers, null) then dep.peers = require("synroute.runtime").default_peers() end
  local lpw = require("synroute.runtime").local_peer_warning(dep.peers)
  if lpw then warn(ctx, at(file, rpos, root, "peers"), lpw) end

  -- runtime: the admin stats socket of the generated global section (synroute.runtime)
  dep.runtime = require("synroute.runtime").settings(root.runtime, null, function(k, msg)
    local t = type(root.runtime) == "table" and k and root.runtime or root
    problem(ctx, at(file, rpos, t, k or "runtime"), msg)
  end)

  -- mas: resolve MAS (mat_) tokens to users for sync stickiness
  dep.mas = { resolve = false, cache_size = 10000, timeout = "2s" }
  if not is_null(root.mas, null) then
    local m = root.mas
    if type(m) ~= "table" or m[1] ~= nil then
      problem(ctx, at(file, rpos, root, "mas"), "mas: expected a mapping with resolve, cache_size, timeout")
    else
      for _, k in ipairs(sorted_keys(m)) do
        local v, w = m[k], at(file, rpos, m, k)
        if k == "resolve" then
          if type(v) ~= "boolean" then problem(ctx, w, "mas.resolve: expected true or false")
          else dep.mas.resolve = v end
        elseif k == "cache_size" then
          if math.type(v) ~= "integer" or v < 1 then problem(ctx, w, "mas.cache_size: expected a whole number of entries (at least 1)")
          else dep.mas.cache_size = v end
        elseif k == "timeout" then
          if math.type(v) == "integer" then v = tostring(v) end
          if type(v) ~= "string" or not duration_secs(v) then problem(ctx, w, "mas.timeout: expected a duration like 2s")
          else dep.mas.timeout = v end
        else
          problem(ctx, w, "mas: unknown setting '" .. tostring(k) .. "' (resolve, cache_size, timeout)")
        end
      end
    end
  end

  -- haproxy: the target HAProxy when it is not the one `synroute haproxy`
  -- finds in PATH (generating for another machine); see synroute.target
  if not is_null(root.haproxy, null) then
    local h = root.haproxy
    if type(h) ~= "table" or h[1] ~= nil then
      problem(ctx, at(file, rpos, root, "haproxy"), "haproxy: expected a mapping with version and lua, like { version: \"3.0\", lua: \"5.4\" }")
    else
      local target = require("synroute.target")
      local rec = {}
      for _, k in ipairs(sorted_keys(h)) do
        local v, w = h[k], at(file, rpos, h, k)
        if k == "version" then
          local ok, err = target.check_haproxy(v)
          if ok then rec.version = ok else problem(ctx, w, "haproxy.version: " .. err) end
        elseif k == "lua" then
          local ok, err = target.check_lua(v)
          if ok then rec.lua = ok else problem(ctx, w, "haproxy.lua: " .. err) end
        else
          problem(ctx, w, "haproxy: unknown setting '" .. tostring(k) .. "' (version, lua)")
        end
      end
      dep.haproxy = rec
    end
  end

  ---------------------------------------------------------------------
  -- Synapse files
  local syn = root.synapse
  local hs_files, worker_globs = {}, {}
  if type(syn) ~= "table" then
    problem(ctx, at(file, rpos, root, "synapse"),
      "synapse: expected a mapping with 'homeserver' (and optionally 'workers')")
  else
    for _, k in ipairs(sorted_keys(syn)) do
      if k ~= "homeserver" and k ~= "workers" then
        problem(ctx, at(file, rpos, syn, k), "synapse: unknown setting '" .. tostring(k) .. "'")
      end
    end
    hs_files = str_list(ctx, file, rpos, syn, "homeserver", "synapse.homeserver")
    if #hs_files == 0 then problem(ctx, at(file, rpos, syn), "synapse.homeserver: no homeserver.yaml given") end
    worker_globs = str_list(ctx, file, rpos, syn, "workers", "synapse.workers")
  end

  -- homeserver (several files: later top-level keys override earlier ones)
  local hs, hs_where = {}, {}   -- key -> value / "file:line"
  local hs_pos = {}             -- key -> { file=, pos= }
  local hs_dir = base
  local hs_failed = #hs_files == 0
  for i, it in ipairs(hs_files) do
    local p = join(base, it[1])
    if i == 1 then hs_dir = dirname(p) end
    local doc, pos = load_yaml(ctx, p, it[2], "homeserver config")
    if not doc then hs_failed = true end
    if doc then
      for k, v in pairs(doc) do
        hs[k] = v; hs_where[k] = at(p, pos, doc, k); hs_pos[k] = { file = p, pos = pos }
      end
      hs_where[""] = hs_where[""] or (p .. ":1")
    end
  end
  local hs_file1 = hs_files[1] and join(base, hs_files[1][1]) or file
  local function hsat(k) return hs_where[k] or (hs_file1 .. ":1") end

  -- instance_map
  local imap = {}
  if type(hs.instance_map) == "table" then
    for name, v in pairs(hs.instance_map) do
      if type(v) == "table" then imap[name] = v end
    end
  end

  -- secret
  local secret_src
  if type(root.hash_secret) == "string" and root.hash_secret ~= "" then
    dep.hash_secret = root.hash_secret
  elseif not is_null(root.hash_secret, null) then
    problem(ctx, at(file, rpos, root, "hash_secret"), "hash_secret: expected a non-empty string")
  else
    for _, k in ipairs({ "macaroon_secret_key", "form_secret", "registration_shared_secret" }) do
      if type(hs[k]) == "string" and hs[k] ~= "" then
        dep.hash_secret = "synroute:" .. hs[k]; secret_src = k; break
      end
    end
    if not dep.hash_secret then
      dep.hash_secret = DEFAULT_SECRET
      warn(ctx, file .. ":1", "no hash_secret and no macaroon_secret_key/form_secret/registration_shared_secret: using the built-in constant (stickiness keys are predictable)")
    end
  end
  dep.hash_secret_source = secret_src or (dep.hash_secret == DEFAULT_SECRET and "default" or "synroute.yaml")

  -- main process
  local main_listeners = {}
  if hs.listeners ~= nil then
    local lp = hs_pos.listeners
    main_listeners = parse_listeners(ctx, lp.file, lp.pos, hs, "listeners")
  end
  local main = { name = "main", listeners = main_listeners, file = hs_file1 }
  for _, l in ipairs(main_listeners) do
    l.host = resolve_host(l, imap.main); l.owner = "main"
  end
  local enable_media = hs.enable_media_repo
  local serves_media = not (enable_media == false or enable_media == "false")
  dep.main = { name = "main", serves_media = serves_media, file = hs_file1 }

  local procs_by_name = { main = main }
  local workers = {}

  -- worker files
  local seen_files = {}
  for _, it in ipairs(worker_globs) do
    local pattern = join(base, it[1])
    local files, gerr = expand_glob(pattern)
    if not files then
      problem(ctx, it[2], "synapse.workers: " .. gerr)
    elseif #files == 0 then
      problem(ctx, it[2], "synapse.workers: '" .. it[1] .. "' matches no file")
    else
      for _, wf in ipairs(files) do
        if not seen_files[wf] then
          seen_files[wf] = true
          local doc, pos = load_yaml(ctx, wf, it[2], "worker config")
          if doc then
            local name = doc.worker_name
            local app = doc.worker_app
            if is_null(app, null) then app = "synapse.app.generic_worker" end
            if type(name) ~= "string" or name == "" then
              problem(ctx, wf .. ":1", "worker config has no worker_name")
            elseif procs_by_name[name] then
              problem(ctx, at(wf, pos, doc, "worker_name"), "worker name '" .. name ..
                "' is used twice (also " .. (procs_by_name[name].where or "main") .. ")")
            else
              local w = { name = name, app = app, file = wf, where = at(wf, pos, doc, "worker_name") }
              if type(app) ~= "string" then
                problem(ctx, at(wf, pos, doc, "worker_app"), "worker_app: expected a string")
                w.app = "synapse.app.generic_worker"
              elseif not GENERIC_APPS[app] then
                problem(ctx, at(wf, pos, doc, "worker_app"), "unknown worker_app '" .. app .. "'")
              end
              w.listeners = parse_listeners(ctx, wf, pos, doc, "worker_listeners")
              w.enable_media_repo = doc.enable_media_repo
              w.doc_where = function(k) return at(wf, pos, doc, k) end
              if doc.listeners ~= nil and doc.worker_listeners == nil then
                warn(ctx, at(wf, pos, doc, "listeners"), "workers read worker_listeners, not listeners")
              end
              for _, l in ipairs(w.listeners) do l.host = resolve_host(l, imap[name]); l.owner = name end
              procs_by_name[name] = w
              workers[#workers + 1] = w
            end
          end
        end
      end
    end
  end
  table.sort(workers, function(a, b) return natural_less(a.name, b.name) end)

  -- listeners mixing replication with public resources
  local function check_mixed(proc)
    for _, l in ipairs(proc.listeners) do
      if l.public and l.replication then
        problem(ctx, l.where, (proc.name == "main" and "main" or ("worker '" .. proc.name .. "'")) ..
          ": listener on port " .. tostring(l.port or l.path) ..
          " serves replication together with client/federation/media: public traffic would reach replication; split it into two listeners")
      end
    end
  end
  check_mixed(main)
  for _, w in ipairs(workers) do check_mixed(w) end

  -- main's public listener
  local ml = nil
  for _, l in ipairs(main_listeners) do
    if l.public and l.names.client and l.names.federation then ml = l; break end
  end
  if not ml then ml = listener_for(main, "client") or first_public(main) end
  if not ml and hs_failed then
    -- already reported: the homeserver config could not be read
  elseif not ml then
    local reps = {}
    for _, l in ipairs(main_listeners) do
      if l.replication then reps[#reps + 1] = tostring(l.port or l.path) end
    end
    if #reps > 0 then
      problem(ctx, hsat("listeners"), "main has no HTTP listener with client or federation resources, only replication (port " ..
        table.concat(reps, ", ") .. "); public traffic must never be sent to a replication listener")
    else
      problem(ctx, hsat("listeners"), "main has no HTTP listener with client or federation resources")
    end
  else
    dep.main.host, dep.main.port, dep.main.path = ml.host, ml.port, ml.path
    if not ml.x_forwarded then
      warn(ctx, ml.where, "main's listener on port " .. tostring(ml.port or ml.path) ..
        " has no 'x_forwarded: true': Synapse will see the proxy's address instead of the client's")
    end
    dep.main.where = ml.where
    if not ml.names.federation and listener_for(main, "federation") then
      local fl = listener_for(main, "federation")
      warn(ctx, fl.where, "main serves federation on a separate listener (port " .. tostring(fl.port) ..
        "); synroute sends all of main's traffic to port " .. tostring(ml.port))
    end
  end

  ---------------------------------------------------------------------
  -- pools
  local members = {}      -- pool -> list of { proc=, backup=, where= }
  local in_pool = {}      -- pool -> name -> true
  local assigned = {}     -- worker name -> true (explicit, writer or convention)
  local explicit = {}     -- worker name -> true
  local function add_member(pool, proc, backup, where, why)
    members[pool] = members[pool] or {}
    in_pool[pool] = in_pool[pool] or {}
    if in_pool[pool][proc.name] then return end
    in_pool[pool][proc.name] = true
    members[pool][#members[pool] + 1] = { proc = proc, backup = backup, where = where, why = why }
  end

  -- explicit pools
  local pools_cfg = root.pools
  if not is_null(pools_cfg, null) then
    if type(pools_cfg) ~= "table" or (next(pools_cfg) ~= nil and pools_cfg[1] ~= nil) then
      problem(ctx, at(file, rpos, root, "pools"), "pools: expected a mapping of pool name to worker names")
    else
      for _, pool in ipairs(sorted_keys(pools_cfg)) do
        local v = pools_cfg[pool]
        local pwhere = at(file, rpos, pools_cfg, pool)
        if WRITER_CLASS[pool] then
          problem(ctx, pwhere, "pools." .. pool .. ": writer pools come from stream_writers in the Synapse config, not from pools")
        elseif not IS_POOL[pool] then
          problem(ctx, pwhere, "pools: unknown pool '" .. tostring(pool) .. "' (known: " .. table.concat(POOL_NAMES, ", ") .. ")")
        else
          local actives, backups = {}, {}
          if type(v) == "table" and v[1] == nil and next(v) ~= nil then
            for _, k in ipairs(sorted_keys(v)) do
              if k ~= "servers" and k ~= "backup" then
                problem(ctx, at(file, rpos, v, k), "pools." .. pool .. ": unknown setting '" .. tostring(k) .. "' (servers, backup)")
              end
            end
            actives = str_list(ctx, file, rpos, v, "servers", "pools." .. pool .. ".servers")
            backups = str_list(ctx, file, rpos, v, "backup", "pools." .. pool .. ".backup")
          else
            actives = str_list(ctx, file, rpos, pools_cfg, pool, "pools." .. pool)
          end
          local function resolve(list, backup)
            for _, it in ipairs(list) do
              local pat, where = it[1], it[2]
              local found = 0
              for _, w in ipairs(workers) do
                if name_matches(pat, w.name) then
                  found = found + 1
                  explicit[w.name] = true; assigned[w.name] = true
                  add_member(pool, w, backup, where, "pools")
                end
              end
              if pat == "main" then
                problem(ctx, where, "pools." .. pool .. ": 'main' is not a worker (main is every pool's fallback already)")
              elseif found == 0 then
                if has_glob(pat) then
                  problem(ctx, where, "pools." .. pool .. ": '" .. pat .. "' matches no worker")
                else
                  problem(ctx, where, "pools." .. pool .. ": unknown worker '" .. pat .. "'")
                end
              end
            end
          end
          resolve(actives, false)
          resolve(backups, true)
        end
      end
    end
  end

  -- stream writers
  local writer_of = {}   -- worker name -> { stream, ... }
  local sw = hs.stream_writers
  if not is_null(sw, null) then
    local swp = hs_pos.stream_writers
    local swfile, swpos = swp.file, swp.pos
    if type(sw) ~= "table" then
      problem(ctx, hsat("stream_writers"), "stream_writers: expected a mapping")
    else
      for _, stream in ipairs(sorted_keys(sw)) do
        local names = str_list(ctx, swfile, swpos, sw, stream, "stream_writers." .. stream)
        local class = WRITER_CLASS[stream]
        if not class and not UNROUTED_STREAM[stream] then
          warn(ctx, at(swfile, swpos, sw, stream), "stream_writers: unknown stream '" .. tostring(stream) .. "' (not routed)")
        end
        if #names > 1 and not MULTI_WRITER[stream] then
          problem(ctx, at(swfile, swpos, sw, stream), "stream_writers." .. stream ..
            ": Synapse allows only one writer for this stream (" .. #names .. " given)")
        end
        for _, it in ipairs(names) do
          local wname, where = it[1], it[2]
          if wname ~= "main" then
            local w = procs_by_name[wname]
            if not w then
              problem(ctx, where, "stream_writers." .. stream .. ": unknown worker '" .. wname .. "'")
            else
              if not imap[wname] then
                warn(ctx, where, "stream writer '" .. wname .. "' is not in instance_map (Synapse requires it)")
              end
              writer_of[wname] = writer_of[wname] or {}
              table.insert(writer_of[wname], stream)
              if class then
                assigned[wname] = true
                if not listener_for(w, "client") then
                  local only_rep = #w.listeners > 0 and not first_public(w)
                  problem(ctx, w.where, "stream writer '" .. wname .. "' (" .. stream ..
                    ") has no HTTP listener with the client resource" ..
                    (only_rep and " (only replication; public traffic must never reach it)" or "") ..
                    ", so its " .. stream .. " routes cannot reach it")
                  members[class] = members[class] or {}
                  in_pool[class] = in_pool[class] or {}
                else
                  add_member(class, w, false, where, "stream_writers")
                end
              end
            end
          end
        end
      end
    end
  end

  -- media workers
  for _, w in ipairs(workers) do
    -- Synapse loads the media repository in a worker only if it is a
    -- media_repository worker or enable_media_repo is not false for it
    local ml_ = listener_for(w, "media")
    if ml_ and w.app ~= "synapse.app.media_repository" then
      local em = w.enable_media_repo
      if em == nil then em = enable_media end
      if em == false then
        problem(ctx, ml_.where, "worker '" .. w.name .. "' has a media listener, but enable_media_repo is false for it " ..
          "(set enable_media_repo: true in its worker file, or make it a synapse.app.media_repository worker)")
      end
    end
  end
  for _, w in ipairs(workers) do
    if not explicit[w.name] and (w.app == "synapse.app.media_repository" or listener_for(w, "media")) then
      assigned[w.name] = true
      add_member("media", w, false, w.where, "media")
      if w.app == "synapse.app.media_repository" and not listener_for(w, "media") then
        -- reported by the member check below
      end
    end
  end

  -- convention
  local function strip_name(n)
    local s = n:lower():gsub("%-", "_")
    s = s:gsub("^matrix_synapse_worker_", ""):gsub("^synapse_worker_", ""):gsub("^synapse_", "")
    s = s:gsub("[_%.]?%d+$", "")
    s = s:gsub("_$", "")
    return s
  end
  M.strip_name = strip_name
  for _, w in ipairs(workers) do
    if not assigned[w.name] then
      local pools = APP_POOLS[w.app] or NAME_POOLS[strip_name(w.name)]
      if pools then
        for _, p in ipairs(pools) do
          add_member(p, w, false, w.where, "convention")
        end
        assigned[w.name] = true
      end
    end
  end

  -- generic: unassigned workers serving client or federation
  for _, w in ipairs(workers) do
    if not assigned[w.name] and (listener_for(w, "client") or listener_for(w, "federation")) then
      add_member("generic", w, false, w.where, "generic")
      assigned[w.name] = true
    end
  end

  -- member checks and server records
  for _, pool in ipairs(sorted_keys(members)) do
    local res = needed_resource(pool)
    local servers, actives = {}, 0
    for _, m in ipairs(members[pool]) do
      local w = m.proc
      local l = listener_for(w, res)
      if not l then
        local any = first_public(w)
        local rep = false
        for _, x in ipairs(w.listeners) do if x.replication then rep = true end end
        if not any then
          problem(ctx, m.where, "pool " .. pool .. ": worker '" .. w.name .. "' (" .. w.where ..
            ") has no HTTP listener with client, federation or media resources" ..
            (rep and "; its only HTTP listener is replication, and public traffic must never be sent there" or ""))
        else
          problem(ctx, m.where, "pool " .. pool .. ": worker '" .. w.name .. "' (" .. w.where ..
            ") has no HTTP listener with the " .. res .. " resource")
        end
      else
        if pool == "generic" and not listener_for(w, "federation") then
          warn(ctx, w.where, "generic worker '" .. w.name .. "' has no federation listener; federation requests routed to the generic pool may fail")
        end
        if not l.x_forwarded and not l.warned_xff then
          l.warned_xff = true
          warn(ctx, l.where, "worker '" .. w.name .. "': listener on port " .. tostring(l.port or l.path) ..
            " has no 'x_forwarded: true': Synapse will see the proxy's address instead of the client's")
        end
        servers[#servers + 1] = server_of(w, l, m.backup)
        if not m.backup then actives = actives + 1 end
      end
    end
    local act, bak = {}, {}
    for _, s in ipairs(servers) do
      if s.backup then bak[#bak + 1] = s else act[#act + 1] = s end
    end
    table.sort(act, function(a, b) return natural_less(a.name, b.name) end)
    for _, s in ipairs(bak) do act[#act + 1] = s end
    dep.pools[pool] = { servers = act, writer = WRITER_CLASS[pool] and true or nil }
    if pool == "sso" and actives > 1 then
      local names = {}
      for _, s in ipairs(servers) do if not s.backup then names[#names + 1] = s.name end end
      problem(ctx, members[pool][1].where, "more than one active SSO process (" .. table.concat(names, ", ") ..
        "): every SSO step must reach the same process; keep one and list the others under pools.sso.backup")
    end
    if pool == "media" and res == "media" and #members[pool] == 0 then dep.pools[pool] = nil end
  end
  -- writer pools whose writer is configured exist even when empty
  for pool, _ in pairs(members) do
    if not dep.pools[pool] then dep.pools[pool] = { servers = {}, writer = WRITER_CLASS[pool] and true or nil } end
  end

  -- media handled nowhere
  local media_servers = dep.pools.media and #dep.pools.media.servers or 0
  if not serves_media and media_servers == 0 then
    problem(ctx, hsat("enable_media_repo"), "media is handled nowhere: enable_media_repo is false and no media_repository worker (or listener with the media resource) is configured")
  elseif serves_media and media_servers > 0 and enable_media == nil then
    warn(ctx, hs_file1 .. ":1", "media workers are configured but enable_media_repo is not set to false: main also runs the media repository")
  end

  ---------------------------------------------------------------------
  -- host:port used twice
  local seen = {}
  local function claim(key, what, where, public, replication)
    local prev = seen[key]
    if prev then
      local extra = ""
      if (public and prev.replication) or (replication and prev.public) then
        extra = "; public traffic would reach a replication listener"
      end
      problem(ctx, where, key .. " is used twice: " .. what .. " and " .. prev.what .. " (" .. prev.where .. ")" .. extra)
    else
      seen[key] = { what = what, where = where, public = public, replication = replication }
    end
  end
  local function claim_proc(proc)
    for _, l in ipairs(proc.listeners) do
      local label = (proc.name == "main" and "main" or ("worker '" .. proc.name .. "'")) ..
        " " .. (l.replication and "replication" or (l.public and "http") or l.type or "http") .. " listener"
      claim(endpoint_key(l.host, l.port, l.path), label, l.where, l.public, l.replication)
    end
  end
  claim_proc(main)
  for _, w in ipairs(workers) do claim_proc(w) end
  for i, a in ipairs(dep.listen) do
    local h, p = parse_addr(a)
    local where = listen[i] and listen[i][2] or file .. ":1"
    if WILDCARD[h] or h == "" then
      for key, prev in pairs(seen) do
        local kh, kp = key:match("^(.*):(%d+)$")
        if kp and tonumber(kp) == p and (kh:match("^127%.") or kh == "::1") then
          problem(ctx, where, "listen " .. a .. " clashes with " .. prev.what .. " on " .. key .. " (" .. prev.where .. ")")
        end
      end
    else
      claim(endpoint_key(h, p), "synroute listen address", where, false, false)
    end
  end

  ---------------------------------------------------------------------
  -- appservices
  local asf = hs.app_service_config_files
  if not is_null(asf, null) then
    local ap = hs_pos.app_service_config_files
    for _, it in ipairs(str_list(ctx, ap.file, ap.pos, hs, "app_service_config_files", "app_service_config_files")) do
      local p = join(hs_dir, it[1])
      local doc, pos = load_yaml(ctx, p, it[2], "appservice registration")
      if doc then
        if type(doc.as_token) ~= "string" or doc.as_token == "" then
          problem(ctx, at(p, pos, doc, "as_token"), "appservice registration has no as_token")
        else
          local sender = doc.sender_localpart
          if type(sender) ~= "string" then
            problem(ctx, at(p, pos, doc, "sender_localpart"), "appservice registration has no sender_localpart")
          else
            dep.as_tokens[#dep.as_tokens + 1] = { token = doc.as_token, sender = sender,
              id = type(doc.id) == "string" and doc.id or nil }
          end
        end
      end
    end
  end
  if dep.pools.appservice and #dep.as_tokens == 0 then
    warn(ctx, at(file, rpos, pools_cfg, "appservice"), "pools.appservice is set but no appservice registration is configured")
  end

  ---------------------------------------------------------------------
  -- summary records (stand-ins, check output)
  for _, w in ipairs(workers) do
    local rec = { name = w.name, app = w.app, where = w.where, pools = {}, streams = writer_of[w.name] or {},
      public = {}, replication = {} }
    for _, l in ipairs(w.listeners) do
      if l.public then rec.public[#rec.public + 1] = { host = l.host, port = l.port, path = l.path }
      elseif l.replication then rec.replication[#rec.replication + 1] = { host = l.host, port = l.port, path = l.path } end
    end
    for _, pool in ipairs(sorted_keys(in_pool)) do
      if in_pool[pool][w.name] then rec.pools[#rec.pools + 1] = pool end
    end
    dep.workers[#dep.workers + 1] = rec
  end
  if dep.main.port or dep.main.path then
    dep.processes[#dep.processes + 1] = { name = "main", host = dep.main.host, port = dep.main.port, path = dep.main.path }
    for _, l in ipairs(main_listeners) do
      if l.public and l ~= ml then
        dep.processes[#dep.processes + 1] = { name = "main", host = l.host, port = l.port, path = l.path }
      end
    end
  end
  for _, w in ipairs(dep.workers) do
    for _, l in ipairs(w.public) do
      dep.processes[#dep.processes + 1] = { name = w.name, host = l.host, port = l.port, path = l.path }
    end
  end

  for _, k in ipairs(sorted_keys(dep.limits.pools)) do
    if k ~= "main" and not dep.pools[k] then
      warn(ctx, limits_where[k], "limits." .. k .. ": this deployment has no " .. k .. " pool (the limit applies to nothing)")
      dep.limits.pools[k] = nil
    end
  end

  if opts.synapse_version then
    local v = tostring(opts.synapse_version):gsub("^v", ""):match("^(%d+%.%d+)")
    if not v then
      problem(ctx, file .. ":1", "--synapse-version: expected a release like 1.157")
    else
      dep.synapse_version = v
    end
  end
  if not dep.synapse_version then
    warn(ctx, file .. ":1", "synapse_version is not set: assuming the newest release synroute knows")
  end

  if #ctx.problems > 0 then return nil, ctx.problems end
  return dep
end

-- One string for api.new / the HAProxy glue to raise with.
function M.format_problems(problems)
  if type(problems) == "string" then return problems end
  local out = {}
  for _, p in ipairs(problems or {}) do out[#out + 1] = p end
  return table.concat(out, "\n")
end

return M
