-- synroute.haproxy_gen: `synroute haproxy CONFIG [-o FILE] [--portable] [--snippet] ...`
-- writes an HAProxy configuration for the deployment described by CONFIG,
-- for the target HAProxy (2.6 or later) and the Lua it embeds (synroute.target).
--
--   local gen = require("synroute.haproxy_gen")
--   local text = gen.generate(dep, { target = { haproxy = "3.0", lua = "5.4" } })
--   gen.main(args) -> exit code
--
-- Where the output points HAProxy at (synroute.paths):
--   installed mode   <PREFIX>/share/lua/<target Lua>/synroute/haproxy.lua and
--                    <DATADIR>/haproxy/errors
--   repository mode  <root>/lua/synroute/haproxy.lua and <root>/haproxy/errors
--   --portable       the same with <root> = "${SYNROUTE_ROOT}"
-- None needs lua-prepend-path: the glue sets up its own search paths.
--
-- The output is deterministic: pools and servers are sorted, nothing depends
-- on the time or the machine (with --portable not even on the install path
-- or the target: no directive differs between the supported versions, see
-- docs/deployment.md "HAProxy versions").

local config = require("synroute.config")
local paths = require("synroute.paths")
local target_mod = require("synroute.target")

local M = {}

local MATRIX_404 = [['{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}']]
local MATRIX_403_ADMIN = [['{"errcode":"M_FORBIDDEN","error":"The admin API is not reachable from this network"}']]

-- Pools whose routes main can serve (main is their `backup` server).
local function main_backup_ok(dep, pool)
  local p = dep.pools[pool]
  if p and p.writer then return false end          -- a configured writer never falls back to main
  if config.WRITER_CLASS[pool] then return false end
  if pool == "media" and not dep.main.serves_media then return false end
  return true
end
M.main_backup_ok = main_backup_ok

local function sorted_pools(dep)
  local ks = {}
  for k in pairs(dep.pools) do ks[#ks + 1] = k end
  table.sort(ks)
  return ks
end

local function addr(s)
  if s.path then return s.path end
  local h = s.host
  if h:find(":", 1, true) then h = "[" .. h .. "]" end
  return h .. ":" .. tostring(s.port)
end
M.addr = addr

local function srvname(n)
  return (n:gsub("[^%w%._:%-]", "_"))
end

local function q(s) return '"' .. s .. '"' end

-- opts.glue: path of the HAProxy glue as written into the config
-- opts.config: string used for SYNROUTE_CONFIG
local function global_section(dep, opts, out)
  out[#out + 1] = "global"
  if dep.log ~= "none" then
    out[#out + 1] = "    log " .. (dep.log or "stdout format raw local0 info")
  end
  if dep.nbthread then out[#out + 1] = "    nbthread " .. dep.nbthread end
  if dep.peers and dep.peers["local"] then
    out[#out + 1] = "    # this node's name in the peers section (haproxy -L <name> overrides it)"
    out[#out + 1] = "    localpeer " .. dep.peers["local"]
  end
  -- the runtime API (synroute.runtime); --snippet leaves it to the existing global section
  local stats = require("synroute.runtime").global_line(dep)
  if stats and not opts.snippet then
    out[#out + 1] = "    # the runtime API: synroute status, drain, ready and show (level admin)"
    out[#out + 1] = "    " .. stats
  end
  local boot = require("synroute.runtime").boot_line(dep)
  if boot then
    out[#out + 1] = "    # start time: no new stick-table pin in the first seconds, while the tables"
    out[#out + 1] = "    # arrive from the old process or the peers (synroute.runtime.HANDOVER_GRACE_MS)"
    out[#out + 1] = "    " .. boot
  end
  out[#out + 1] = "    # normalize-uri is experimental in HAProxy 2.6 and 3.0"
  out[#out + 1] = "    expose-experimental-directives"
  out[#out + 1] = "    tune.lua.maxmem 64"
  out[#out + 1] = "    # the deployment the Lua side loads (it must be set before lua-load)"
  out[#out + 1] = "    setenv SYNROUTE_CONFIG " .. q(opts.config)
  if opts.synapse_version then
    out[#out + 1] = "    # generated with --synapse-version: the Lua side routes for the same release"
    out[#out + 1] = "    setenv SYNROUTE_SYNAPSE_VERSION " .. q(dep.synapse_version)
  end
  if dep.mas and dep.mas.resolve then
    out[#out + 1] = "    # one Lua state for all threads: MAS resolution shares one token cache"
    out[#out + 1] = "    lua-load " .. q(opts.glue)
  else
    out[#out + 1] = "    # one Lua state (and router) per thread: converter calls never wait for"
    out[#out + 1] = "    # the global Lua lock; the module keeps no shared state, so this is safe"
    out[#out + 1] = "    lua-load-per-thread " .. q(opts.glue)
  end
  out[#out + 1] = ""
end

local function defaults_section(dep, opts, out)
  local t = dep.timeouts
  out[#out + 1] = "defaults"
  out[#out + 1] = "    mode http"
  out[#out + 1] = "    log global"
  out[#out + 1] = "    option dontlognull"
  out[#out + 1] = "    option redispatch"
  out[#out + 1] = "    retries 2"
  out[#out + 1] = "    http-reuse safe"
  out[#out + 1] = "    timeout connect " .. t.connect
  out[#out + 1] = "    timeout http-request " .. t.http_request
  out[#out + 1] = "    timeout http-keep-alive " .. t.http_keep_alive
  out[#out + 1] = "    timeout queue " .. t.queue
  out[#out + 1] = "    # Synapse holds /sync up to the client's timeout (typically 30 s); initial"
  out[#out + 1] = "    # syncs of big accounts take minutes. Keep both sides open long enough."
  out[#out + 1] = "    timeout client " .. t.client
  out[#out + 1] = "    timeout server " .. t.server
  out[#out + 1] = "    timeout tunnel " .. t.tunnel
  out[#out + 1] = "    timeout check " .. t.check
  if t.check_interval ~= "2s" then
    out[#out + 1] = "    default-server inter " .. t.check_interval
  end
  out[#out + 1] = "    # Matrix JSON bodies for the errors HAProxy itself produces"
  for _, code in ipairs({ 400, 403, 404, 408, 429, 500, 502, 503, 504 }) do
    out[#out + 1] = "    errorfile " .. code .. " " .. q(opts.errors_dir .. "/" .. code .. ".http")
  end
  out[#out + 1] = ""
end

-- Does any bind line of the frontend terminate TLS?
local function has_tls(dep)
  for _, a in ipairs(dep.listen or {}) do
    if (" " .. a .. " "):find("%sssl%s") then return true end
  end
  return false
end

-- The per-request rules, shared by the full frontend and --snippet.
local function frontend_rules(dep, opts, out, indent)
  local I = indent or "    "
  local function L(s) out[#out + 1] = (s == "" and "" or I .. s) end
  L("# 1. Normalise the path before anything looks at it (never decodes reserved characters).")
  L("#    One substring test decides whether any rule can change something: \"//\",")
  L("#    \"/.\" or \"%\" anywhere. Most requests have none and skip all five rewrites, which")
  L("#    are no-ops on targets without them. Invalid percent-encoding is answered 400")
  L("#    (strict). (HAProxy 2.6 and 3.0 ignore the condition of path-strip-dotdot and")
  L("#    percent-* unless their option is given, hence full/strict.)")
  L("acl synroute_odd_target url -m sub // /. %")
  L("http-request set-var(txn.synroute_norm) bool(1) if synroute_odd_target")
  L("http-request normalize-uri path-merge-slashes if { var(txn.synroute_norm) -m bool }")
  L("http-request normalize-uri path-strip-dot if { var(txn.synroute_norm) -m bool }")
  L("http-request normalize-uri path-strip-dotdot full if { var(txn.synroute_norm) -m bool }")
  L("http-request normalize-uri percent-decode-unreserved strict if { var(txn.synroute_norm) -m bool }")
  L("http-request normalize-uri percent-to-uppercase strict if { var(txn.synroute_norm) -m bool }")
  L("# 2. Client-supplied X-Forwarded-For is replaced, never trusted")
  L("http-request set-header X-Forwarded-For %[src]")
  if opts.snippet or has_tls(dep) then
    L("http-request set-header X-Forwarded-Proto https if { ssl_fc }")
    L("http-request set-header X-Forwarded-Proto http if !{ ssl_fc }")
  else
    L("http-request set-header X-Forwarded-Proto http")
  end
  L("# 3. Replication and MAS-internal paths are never public (works without Lua)")
  L("# (no trailing slash: also catches /_synapse/replication%2F..., which no public path starts with)")
  L("acl synroute_internal path_beg /_synapse/replication /_synapse/mas")
  L("http-request return status 404 content-type application/json string " .. MATRIX_404 .. " if synroute_internal")
  if #dep.admin_networks > 0 then
    L("# 4. The admin API only from admin_networks")
    L("acl synroute_admin_net src " .. table.concat(dep.admin_networks, " "))
    L("http-request return status 403 content-type application/json string " .. MATRIX_403_ADMIN ..
      " if { path_beg /_synapse/admin/ } !synroute_admin_net")
  else
    L("# 4. admin_networks is empty: the admin API is not reachable through the proxy")
    L("http-request return status 403 content-type application/json string " .. MATRIX_403_ADMIN ..
      " if { path_beg /_synapse/admin/ }")
  end
  L("# 5. One Lua converter decides backend|class|hkey (docs/design.md)")
  if dep.mas and dep.mas.resolve then
    L("#    (mas.resolve: the action after the key replaces a mat_ token's key by its user's)")
  end
  L('http-request set-var-fmt(txn.synroute_in) "%[method] %[src] %[pathq] %[req.fhdr(authorization)]"')
  L("http-request set-var(txn.synroute) var(txn.synroute_in),lua.synroute")
  L("http-request unset-var(txn.synroute_in)")
  L("http-request set-var(txn.synroute_backend) var(txn.synroute),field(1,|)")
  L("http-request set-var(txn.synroute_class)   var(txn.synroute),field(2,|)")
  L("http-request set-var(txn.synroute_key)     var(txn.synroute),field(3,|) if !{ var(txn.synroute) -m end | }")
  if dep.mas and dep.mas.resolve then
    L("http-request lua.synroute_mas if { var(txn.synroute_class) -m str sync initial_sync } { req.fhdr(authorization) -m beg \"Bearer mat_\" } || { var(txn.synroute_class) -m str sync initial_sync } { url_param(access_token) -m beg mat_ }")
  end
  L("http-request return status 404 content-type application/json string " .. MATRIX_404 ..
    " if { var(txn.synroute_class) -m str blocked }")
  local per = dep.limits and dep.limits.per_user or {}
  local classes = {}
  for c in pairs(per) do classes[#classes + 1] = c end
  table.sort(classes)
  if #classes > 0 then
    L("# limits.per_user: requests per key (hashed user/room/origin) and period, counted in")
    L("# one table per class; over the limit: Matrix 429 with Retry-After")
    for _, c in ipairs(classes) do
      local r = per[c]
      local cond = "{ var(txn.synroute_class) -m str " .. c .. " } { var(txn.synroute_key) -m found }"
      L("http-request track-sc0 var(txn.synroute_key) table " .. M.rate_table(c) .. " if " .. cond)
      L("http-request return status 429 content-type application/json hdr Retry-After " .. r.secs ..
        " string '" .. M.limit_body("Too many " .. c .. " requests, try again later", r.secs) .. "' if " .. cond ..
        " { sc_http_req_rate(0) gt " .. r.count .. " }")
    end
  end
  if opts.test_headers then
    L("# test mode only: tell the client which backend served it")
    L("http-response set-header X-Synroute-Backend %[var(txn.synroute_backend)]")
    L("http-response set-header X-Synroute-Class %[var(txn.synroute_class)]")
  end
  L("# an absent or unknown backend name falls through to default_backend (main)")
  L("use_backend %[var(txn.synroute_backend)]")
end

local LOG_FORMAT = '"%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %HM %HPO class=%[var(txn.synroute_class)] backend=%[var(txn.synroute_backend)]"'

local function frontend_section(dep, opts, out)
  out[#out + 1] = "frontend synapse"
  for _, a in ipairs(dep.listen) do out[#out + 1] = "    bind " .. a end
  if dep.log ~= "none" then
    out[#out + 1] = "    # never logs the query string (access_token) or Authorization"
    out[#out + 1] = "    log-format " .. LOG_FORMAT
  end
  frontend_rules(dep, opts, out)
  out[#out + 1] = "    default_backend main"
  out[#out + 1] = ""
end

local function check_lines(out)
  out[#out + 1] = "    option httpchk GET /health"
  out[#out + 1] = "    http-check expect status 200"
end

local function main_server(dep, backup)
  if backup then
    -- one health check for main (in backend main), tracked everywhere else
    return "    server main " .. addr(dep.main) .. " backup track main/main"
  end
  return "    server main " .. addr(dep.main) .. " check"
end

-- Body of a Matrix 429.
function M.limit_body(msg, secs)
  return '{"errcode":"M_LIMIT_EXCEEDED","error":"' .. msg .. '","retry_after_ms":' .. math.floor(secs * 1000) .. '}'
end
function M.rate_table(class) return "synroute_rate_" .. class end
-- Retry-After (seconds) of a full pool queue; also in haproxy/errors/429-queue.http
M.QUEUE_RETRY_AFTER = 5

-- A stable server id from the name: consistent hashing places a server on the
-- ring by its id, so ids must not shift when a server is added in the middle of
-- the sorted list (that would move most keys).
local function name_id(name, used)
  local h = 2166136261
  for i = 1, #name do
    h = ((h ~ name:byte(i)) * 16777619) & 0xffffffff
  end
  local id = h % 999983 + 1
  while used[id] do id = id % 999983 + 1 end
  used[id] = true
  return id
end
M.name_id = name_id

local function peers_section(dep, out)
  if not dep.peers then return end
  if dep.peers.implicit then
    out[#out + 1] = "# only this node: a reload hands the stick tables to the new process (users stay put)"
  else
    out[#out + 1] = "# HAProxy nodes that share their stick tables (peers in synroute.yaml)"
  end
  out[#out + 1] = "peers " .. dep.peers.name
  for _, n in ipairs(dep.peers.nodes) do
    out[#out + 1] = "    peer " .. n.name .. " " .. n.addr
  end
  out[#out + 1] = ""
end

local function backends(dep, opts, out, used)
  -- a backend the router may name but no pool provides: empty, so it answers 503
  local extra = {}
  for _, b in ipairs(used or {}) do
    if b ~= "main" and b ~= "blocked" and not dep.pools[b] and b:match("^[%w_]+$") then extra[#extra + 1] = b end
  end
  table.sort(extra)
  local limits = dep.limits and dep.limits.pools or {}
  local function limit_lines(pool)
    local l = limits[pool]
    if not l then return end
    out[#out + 1] = "    # limits." .. pool .. ": " .. l.maxconn .. " request(s) per server at once, at most " .. l.queue ..
      " waiting; past that a Matrix 429"
    out[#out + 1] = "    http-request return status 503 content-type application/json string " ..
      "'{\"errcode\":\"M_UNKNOWN\",\"error\":\"No homeserver process is available for this request, try again later\"}' if { nbsrv eq 0 }"
    out[#out + 1] = "    http-request return status 429 content-type application/json hdr Retry-After " .. M.QUEUE_RETRY_AFTER ..
      " string '" .. M.limit_body("Too many requests of this kind, try again later", M.QUEUE_RETRY_AFTER) .. "' if { queue ge " .. l.queue .. " }"
    if l.queue_timeout then out[#out + 1] = "    timeout queue " .. l.queue_timeout end
    out[#out + 1] = "    # a request that waited the whole 'timeout queue' gets HAProxy's 503: answer it as a 429"
    out[#out + 1] = "    errorfile 503 " .. q(opts.errors_dir .. "/429-queue.http")
  end
  local function maxconn(pool) return limits[pool] and (" maxconn " .. limits[pool].maxconn) or "" end
  out[#out + 1] = "backend main"
  check_lines(out)
  limit_lines("main")
  out[#out + 1] = main_server(dep, false) .. maxconn("main")
  out[#out + 1] = ""
  -- a worker in several pools is checked once (first backend in sorted order)
  -- and tracked in the others
  local checked = {}
  local function server_line(pool, s, backup, extra)
    local key = s.name .. " " .. addr(s)
    local line = "    server " .. srvname(s.name) .. " " .. addr(s) .. (extra or "")
    if checked[key] then
      line = line .. (backup and " backup" or "") .. " track " .. checked[key] .. "/" .. srvname(s.name)
    else
      checked[key] = pool
      line = line .. " check" .. (backup and " backup" or "")
    end
    return line
  end
  for _, pool in ipairs(sorted_pools(dep)) do
    local p = dep.pools[pool]
    local actives, backups = {}, {}
    for _, s in ipairs(p.servers) do
      if s.backup then backups[#backups + 1] = s else actives[#actives + 1] = s end
    end
    out[#out + 1] = "backend " .. pool
    if #p.servers == 0 then
      out[#out + 1] = "    # no usable server: requests get a Matrix JSON 503"
    end
    check_lines(out)
    limit_lines(pool)
    local hashed = #actives > 1
    local ids = {}
    local function extra(s, backup)
      local e = ""
      if hashed then
        e = " id " .. name_id(s.name, ids)
        if not backup then e = e .. " weight 100" end
      end
      return e .. maxconn(pool)
    end
    if hashed then
      out[#out + 1] = "    # sticky by the key the router derived (user, room or origin, hashed);"
      out[#out + 1] = "    # requests without a key are balanced round robin. Ids come from the"
      out[#out + 1] = "    # server names (a new server moves only its share of keys); weight 100"
      out[#out + 1] = "    # gives each server enough points on the hash ring for an even spread."
      out[#out + 1] = "    balance hash var(txn.synroute_key)"
      out[#out + 1] = "    hash-type consistent"
      out[#out + 1] = "    stick-table type string len 16 size " .. dep.stick.size .. " expire " .. dep.stick.expire ..
        (dep.peers and (" peers " .. dep.peers.name) or "")
      out[#out + 1] = "    stick match var(txn.synroute_key)"
      out[#out + 1] = "    stick store-request var(txn.synroute_key) if !{ var(txn.synroute_key),in_table(" .. pool .. ") }" ..
        require("synroute.runtime").store_guard(dep)
    end
    for _, s in ipairs(actives) do out[#out + 1] = server_line(pool, s, false, extra(s, false)) end
    for _, s in ipairs(backups) do out[#out + 1] = server_line(pool, s, true, extra(s, true)) end
    if main_backup_ok(dep, pool) then
      local line = main_server(dep, true)
      if hashed then line = line:gsub("^(    server main %S+)", "%1 id " .. name_id("main", ids)) end
      out[#out + 1] = line
    end
    out[#out + 1] = ""
  end
  for _, b in ipairs(extra) do
    out[#out + 1] = "backend " .. b
    out[#out + 1] = "    # named by the router but no worker serves it: Matrix JSON 503"
    out[#out + 1] = ""
  end
  local per = dep.limits and dep.limits.per_user or {}
  local classes = {}
  for c in pairs(per) do classes[#classes + 1] = c end
  table.sort(classes)
  for _, c in ipairs(classes) do
    out[#out + 1] = "# limits.per_user." .. c .. ": " .. per[c].count .. " request(s) per " .. per[c].period ..
      " per key (this node's count)"
    out[#out + 1] = "backend " .. M.rate_table(c)
    out[#out + 1] = "    stick-table type string len 16 size " .. dep.stick.size .. " expire " .. per[c].period ..
      " store http_req_rate(" .. per[c].period .. ")"
    out[#out + 1] = ""
  end
end

-- opts: target = { haproxy = "3.0", lua = "5.4", source = ... } (synroute.target),
-- glue / errors_dir (as written into the config; default: synroute.paths for
-- the target's Lua), config (SYNROUTE_CONFIG; default dep.file), portable,
-- snippet, test_headers, synapse_version, cmd (recorded in the header),
-- backends (names the router may produce).
function M.generate(dep, opts)
  opts = opts or {}
  dep = require("synroute.runtime").without_idle_peers(dep)   -- no stick table: no local peers section
  local t = opts.target or {}
  opts.config = opts.config or dep.file
  if not opts.glue then
    opts.glue = assert(paths.glue(t.lua or paths.lua_version()))
  end
  opts.errors_dir = opts.errors_dir or assert(paths.errors_dir, "synroute.paths: no data directory")
  local out = {}
  out[#out + 1] = "# Generated by synroute - do not edit; regenerate instead:"
  out[#out + 1] = "#   " .. (opts.cmd or "synroute haproxy synroute.yaml")
  if opts.portable then
    out[#out + 1] = "# Target: HAProxy " .. target_mod.MIN_HAPROXY .. " or later with Lua " ..
      table.concat(target_mod.LUAS, " or ") .. ". This repository-mode file is the same"
    out[#out + 1] = "# for every version: the glue loads build/<the Lua HAProxy embeds>/synroute.so."
    out[#out + 1] = "# Start HAProxy with SYNROUTE_ROOT set to the synroute checkout:"
    out[#out + 1] = "#   SYNROUTE_ROOT=/path/to/synroute haproxy -f haproxy.cfg"
  elseif t.haproxy then
    out[#out + 1] = "# Target: HAProxy " .. t.haproxy .. " with Lua " .. t.lua ..
      (t.source and (" (" .. t.source .. ")") or "")
  end
  out[#out + 1] = ""
  if opts.snippet then
    out[#out + 1] = "# Snippet for an existing frontend (e.g. your TLS one)."
    out[#out + 1] = "# (a) add to your global section:"
    local g = {}
    global_section(dep, opts, g)
    for i = 2, #g do
      local line = g[i]:gsub("^%s+", "")
      if line ~= "" and line:sub(1, 1) ~= "#" and not line:match("^log ") then out[#out + 1] = "#     " .. line end
    end
    local stats = require("synroute.runtime").global_line(dep)
    if stats then
      out[#out + 1] = "#     and a runtime API socket at level admin for synroute status/drain/ready/show"
      out[#out + 1] = "#     (Debian's haproxy.cfg has one; runtime.socket in synroute.yaml names it):"
      out[#out + 1] = "#     " .. stats
    end
    out[#out + 1] = "# (b) add to your defaults: the errorfile lines and timeouts (client " .. dep.timeouts.client ..
      ", server " .. dep.timeouts.server .. ", tunnel " .. dep.timeouts.tunnel .. ") of the full output"
    out[#out + 1] = "# (c) paste these rules into your frontend, before any use_backend, and set"
    out[#out + 1] = "#     'default_backend main' there:"
    frontend_rules(dep, opts, out)
    out[#out + 1] = ""
    if dep.peers then
      out[#out + 1] = "# (d0) the peers section:"
      peers_section(dep, out)
    end
    out[#out + 1] = "# (d) the backends:"
    out[#out + 1] = ""
    backends(dep, opts, out, opts.backends)
  else
    global_section(dep, opts, out)
    peers_section(dep, out)
    defaults_section(dep, opts, out)
    frontend_section(dep, opts, out)
    backends(dep, opts, out, opts.backends)
  end
  while out[#out] == "" do out[#out] = nil end
  return table.concat(out, "\n") .. "\n"
end

local USAGE = "usage: synroute haproxy CONFIG [-o FILE] [--portable] [--snippet] [--root DIR] [--test-headers] " ..
  "[--synapse-version V] [--haproxy-version V] [--lua-version V] [--haproxy-bin PATH]"

-- Path of `p` relative to `root` if it is inside it.
local function relative_to(root, p)
  if p:sub(1, #root + 1) == root .. "/" then return p:sub(#root + 2) end
  return nil
end

local VALUE_OPTS = {
  ["-o"] = "outfile", ["--output"] = "outfile", ["--synapse-version"] = "synapse_version",
  ["--root"] = "root", ["--haproxy-version"] = "haproxy_version", ["--lua-version"] = "lua_version",
  ["--haproxy-bin"] = "haproxy_bin",
}

function M.main(args)
  local cfg, outfile
  local opts = {}
  local words = {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if VALUE_OPTS[a] then
      local v = args[i + 1]; i = i + 1
      if not v then io.stderr:write(a, " needs a value\n", USAGE, "\n"); return 2 end
      opts[VALUE_OPTS[a]] = v
    elseif a == "--snippet" then opts.snippet = true
    elseif a == "--portable" then opts.portable = true
    elseif a == "--test-headers" then opts.test_headers = true
    elseif a == "--probe" then opts.probe = true
    elseif a == "-h" or a == "--help" then print(USAGE); return 0
    elseif a:sub(1, 1) == "-" and a ~= "-" then io.stderr:write("unknown option ", a, "\n", USAGE, "\n"); return 2
    else cfg = cfg or a; words[#words + 1] = a end
    i = i + 1
  end
  outfile = opts.outfile
  if not cfg or #words > 1 then io.stderr:write(USAGE, "\n"); return 2 end
  if opts.portable and opts.root then io.stderr:write("give either --portable or --root, not both\n"); return 2 end

  local dep, problems = config.load(cfg, { synapse_version = opts.synapse_version })
  if not dep then
    for _, p in ipairs(problems) do io.stderr:write(p, "\n") end
    io.stderr:write(#problems, " problem", #problems == 1 and "" or "s", " in ", cfg, "; no HAProxy config written\n")
    return 1
  end
  local env_bin = os.getenv("SYNROUTE_HAPROXY_BIN")
  if env_bin == "" then env_bin = nil end
  local tgt, terr = target_mod.resolve{
    haproxy_version = opts.haproxy_version, lua_version = opts.lua_version,
    bin = opts.haproxy_bin or env_bin, bin_explicit = opts.haproxy_bin ~= nil,
    setting = dep.haproxy,
  }
  if not tgt then io.stderr:write("synroute haproxy: ", terr, "\n"); return 1 end
  opts.target = tgt
  if not target_mod.tested(tgt.haproxy) then
    io.stderr:write("warning: HAProxy ", tgt.haproxy, " is not one of the versions synroute is tested with (",
      table.concat(target_mod.TESTED, ", "), ")\n")
  end
  local local_target = tgt.source:find(" -vv", 1, true) ~= nil
  local cmd = { "synroute haproxy" }
  if opts.portable then
    if paths.mode ~= "repository" or not paths.root then
      io.stderr:write("--portable: only for a synroute checkout (repository mode); this synroute is installed\n")
      return 2
    end
    local rel = relative_to(paths.root, dep.file)
    if not rel then
      io.stderr:write("--portable: ", dep.file, " is not inside ", paths.root, "\n")
      return 2
    end
    opts.config = "${SYNROUTE_ROOT}/" .. rel
    opts.glue = "${SYNROUTE_ROOT}/lua/synroute/haproxy.lua"
    opts.errors_dir = "${SYNROUTE_ROOT}/haproxy/errors"
    cmd[#cmd + 1] = "--portable"
    cmd[#cmd + 1] = rel
  else
    if opts.root then
      local r = paths.abspath(opts.root)
      opts.glue = r .. "/lua/synroute/haproxy.lua"
      opts.errors_dir = r .. "/haproxy/errors"
    else
      local glue, gerr = paths.glue(tgt.lua)
      if not glue then io.stderr:write("synroute haproxy: ", gerr, "\n"); return 1 end
      opts.glue, opts.errors_dir = glue, paths.errors_dir
      if local_target then
        -- generating for this machine: what the config will load must be here
        local need = paths.mode == "installed" and glue or paths.module_file(tgt.lua)
        local f = io.open(need, "rb")
        if f then f:close()
        elseif paths.mode == "installed" then
          io.stderr:write("synroute haproxy: ", need, " is missing: the target HAProxy ", tgt.haproxy,
            " embeds Lua ", tgt.lua, "; install synroute for Lua ", tgt.lua, "\n")
          return 1
        else
          io.stderr:write("warning: ", need, " is missing: HAProxy ", tgt.haproxy, " embeds Lua ", tgt.lua,
            "; build it (make build/", tgt.lua, "/synroute.so) before starting HAProxy\n")
        end
      end
    end
    opts.config = dep.file
    cmd[#cmd + 1] = dep.file
    for _, o in ipairs{ { "--haproxy-version", "haproxy_version" }, { "--lua-version", "lua_version" },
                        { "--haproxy-bin", "haproxy_bin" } } do
      if opts[o[2]] then cmd[#cmd + 1] = o[1]; cmd[#cmd + 1] = opts[o[2]] end
    end
  end
  if opts.snippet then cmd[#cmd + 1] = "--snippet" end
  if opts.test_headers then cmd[#cmd + 1] = "--test-headers" end
  if opts.portable then
    -- recorded as the canonical command so that regenerating anywhere gives the same bytes
    cmd[#cmd + 1] = "-o"
    -- synroute.yaml -> haproxy.cfg; any other name (node1.yaml) -> haproxy-node1.cfg
    local stem = (cmd[3]:match("([^/]*)$") or ""):gsub("%.ya?ml$", "")
    cmd[#cmd + 1] = (cmd[3]:match("^(.*)/[^/]*$") or ".") .. "/haproxy" .. (stem ~= "synroute" and ("-" .. stem) or "") ..
      (opts.snippet and "-snippet" or "") .. ".cfg"
  elseif outfile then
    cmd[#cmd + 1] = "-o"
    cmd[#cmd + 1] = outfile
  end
  opts.cmd = table.concat(cmd, " ")
  -- The router must build for this deployment too (same check HAProxy does at start).
  local ok_api, api = pcall(require, "synroute.api")
  if ok_api and type(api) == "table" and api.new then
    local eng, err = api.new({ dep = dep })
    if not eng then
      io.stderr:write(tostring(err), "\n")
      return 1
    end
    opts.backends = eng.backends
  end
  for _, w in ipairs(dep.warnings) do io.stderr:write("warning: ", w, "\n") end
  if opts.probe then
    local down = {}
    require("synroute.check").probe(dep, down)
    for _, p in ipairs(down) do io.stderr:write("warning: ", p, "\n") end
  end
  local text = M.generate(dep, opts)
  if outfile and outfile ~= "-" then
    local f, err = io.open(outfile, "w")
    if not f then io.stderr:write("cannot write ", outfile, ": ", tostring(err), "\n"); return 1 end
    f:write(text); f:close()
  else
    io.write(text)
  end
  return 0
end

return M
