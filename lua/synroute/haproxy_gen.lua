-- synroute.haproxy_gen: `synroute haproxy CONFIG [-o FILE] [--portable] [--snippet]`
-- writes an HAProxy 2.6 configuration for the deployment described by CONFIG.
--
--   local gen = require("synroute.haproxy_gen")
--   local text, err = gen.generate(dep, { root = "/usr/share/synroute", config = "/etc/synroute/synroute.yaml" })
--   gen.main(args) -> exit code
--
-- The output is deterministic: pools and servers are sorted, nothing depends
-- on the time or the machine (with --portable not even on the install path).

local config = require("synroute.config")

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

-- Where this file is: <root>/lua/synroute/haproxy_gen.lua
local function script_root()
  local src = debug.getinfo(1, "S").source
  if src:sub(1, 1) == "@" then
    local p = config.abspath(src:sub(2))
    local root = p:match("^(.*)/lua/synroute/[^/]*$")
    if root then return root end
  end
  return config.abspath(".")
end
M.script_root = script_root

local function q(s) return '"' .. s .. '"' end

-- opts.root: string used for the synroute root (absolute path or "${SYNROUTE_ROOT}")
-- opts.config: string used for SYNROUTE_CONFIG
-- opts.cmd: the regenerate command recorded in the header
local function global_section(dep, opts, out)
  local root = opts.root
  out[#out + 1] = "global"
  if dep.log ~= "none" then
    out[#out + 1] = "    log " .. (dep.log or "stdout format raw local0 info")
  end
  if dep.nbthread then out[#out + 1] = "    nbthread " .. dep.nbthread end
  if dep.peers and dep.peers["local"] then
    out[#out + 1] = "    # this node's name in the peers section (haproxy -L <name> overrides it)"
    out[#out + 1] = "    localpeer " .. dep.peers["local"]
  end
  out[#out + 1] = "    # normalize-uri is experimental in HAProxy 2.6"
  out[#out + 1] = "    expose-experimental-directives"
  out[#out + 1] = "    tune.lua.maxmem 64"
  if opts.portable then
    out[#out + 1] = "    # SYNROUTE_ROOT from the environment, else the `make install` location"
    out[#out + 1] = "    presetenv SYNROUTE_ROOT /usr/local/share/synroute"
  end
  out[#out + 1] = "    lua-prepend-path " .. q(root .. "/lua/?.lua")
  out[#out + 1] = "    lua-prepend-path " .. q(root .. "/build/5.3/?.so") .. " cpath"
  out[#out + 1] = "    # the deployment the Lua side loads (it must be set before lua-load)"
  out[#out + 1] = "    setenv SYNROUTE_CONFIG " .. q(opts.config)
  if opts.synapse_version then
    out[#out + 1] = "    # generated with --synapse-version: the Lua side routes for the same release"
    out[#out + 1] = "    setenv SYNROUTE_SYNAPSE_VERSION " .. q(dep.synapse_version)
  end
  if dep.mas and dep.mas.resolve then
    out[#out + 1] = "    # one Lua state for all threads: MAS resolution shares one token cache"
    out[#out + 1] = "    lua-load " .. q(root .. "/lua/synroute/haproxy.lua")
  else
    out[#out + 1] = "    # one Lua state (and router) per thread: converter calls never wait for"
    out[#out + 1] = "    # the global Lua lock; the module keeps no shared state, so this is safe"
    out[#out + 1] = "    lua-load-per-thread " .. q(root .. "/lua/synroute/haproxy.lua")
  end
  out[#out + 1] = ""
end

local function defaults_section(dep, opts, out)
  local t = dep.timeouts
  local root = opts.root
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
    out[#out + 1] = "    errorfile " .. code .. " " .. q(root .. "/haproxy/errors/" .. code .. ".http")
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
  L("#    (strict). (2.6 ignores the condition of path-strip-dotdot/percent-* unless")
  L("#    their option is given, hence full/strict.)")
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
  out[#out + 1] = "    # never logs the query string (access_token) or Authorization"
  out[#out + 1] = "    log-format " .. LOG_FORMAT
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
  out[#out + 1] = "# HAProxy nodes that share their stick tables (peers in synroute.yaml)"
  out[#out + 1] = "peers " .. dep.peers.name
  for _, n in ipairs(dep.peers.nodes) do
    out[#out + 1] = "    peer " .. n.name .. " " .. n.addr
  end
  out[#out + 1] = ""
end

local function backends(dep, out, used)
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
    out[#out + 1] = "    errorfile 503 " .. q(M.errors_dir .. "/429-queue.http")
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
      out[#out + 1] = "    stick store-request var(txn.synroute_key) if !{ var(txn.synroute_key),in_table(" .. pool .. ") }"
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

function M.generate(dep, opts)
  opts = opts or {}
  opts.root = opts.root or script_root()
  opts.config = opts.config or dep.file
  M.errors_dir = opts.root .. "/haproxy/errors"
  local out = {}
  out[#out + 1] = "# Generated by synroute - do not edit; regenerate instead:"
  out[#out + 1] = "#   " .. (opts.cmd or "synroute haproxy synroute.yaml")
  if opts.portable then
    out[#out + 1] = "# Start with SYNROUTE_ROOT set to the synroute install (or repository) directory:"
    out[#out + 1] = "#   SYNROUTE_ROOT=/usr/local/share/synroute haproxy -f haproxy.cfg"
  end
  out[#out + 1] = ""
  if opts.snippet then
    out[#out + 1] = "# Snippet for an existing frontend (e.g. your TLS one)."
    out[#out + 1] = "# (a) add to your global section:"
    local g = {}
    global_section(dep, opts, g)
    for i = 2, #g do
      local line = g[i]:gsub("^%s+", "")
      if line ~= "" and line:sub(1, 1) ~= "#" and not line:match("^log ") and not line:match("^presetenv ") then out[#out + 1] = "#     " .. line end
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
    backends(dep, out, opts.backends)
  else
    global_section(dep, opts, out)
    peers_section(dep, out)
    defaults_section(dep, opts, out)
    frontend_section(dep, opts, out)
    backends(dep, out, opts.backends)
  end
  while out[#out] == "" do out[#out] = nil end
  return table.concat(out, "\n") .. "\n"
end

local USAGE = "usage: synroute haproxy CONFIG [-o FILE] [--portable] [--snippet] [--root DIR] [--test-headers] [--synapse-version V]"

-- Path of `p` relative to `root` if it is inside it.
local function relative_to(root, p)
  if p:sub(1, #root + 1) == root .. "/" then return p:sub(#root + 2) end
  return nil
end

function M.main(args)
  local cfg, outfile
  local opts = {}
  local words = {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "-o" or a == "--output" then
      outfile = args[i + 1]; i = i + 1
      if not outfile then io.stderr:write(USAGE, "\n"); return 2 end
    elseif a == "--snippet" then opts.snippet = true
    elseif a == "--portable" then opts.portable = true
    elseif a == "--test-headers" then opts.test_headers = true
    elseif a == "--probe" then opts.probe = true
    elseif a == "--synapse-version" then opts.synapse_version = args[i + 1]; i = i + 1
      if not opts.synapse_version then io.stderr:write(USAGE, "\n"); return 2 end
    elseif a == "--root" then opts.root = args[i + 1]; i = i + 1
      if not opts.root then io.stderr:write(USAGE, "\n"); return 2 end
    elseif a == "-h" or a == "--help" then print(USAGE); return 0
    elseif a:sub(1, 1) == "-" and a ~= "-" then io.stderr:write("unknown option ", a, "\n", USAGE, "\n"); return 2
    else cfg = cfg or a; words[#words + 1] = a end
    i = i + 1
  end
  if not cfg or #words > 1 then io.stderr:write(USAGE, "\n"); return 2 end

  local dep, problems = config.load(cfg, { synapse_version = opts.synapse_version })
  if not dep then
    for _, p in ipairs(problems) do io.stderr:write(p, "\n") end
    io.stderr:write(#problems, " problem", #problems == 1 and "" or "s", " in ", cfg, "; no HAProxy config written\n")
    return 1
  end
  local real_root = script_root()
  local cmd = { "synroute haproxy" }
  if opts.portable then
    local rel = relative_to(real_root, dep.file)
    if not rel then
      io.stderr:write("--portable: ", dep.file, " is not inside ", real_root, "\n")
      return 2
    end
    opts.config = "${SYNROUTE_ROOT}/" .. rel
    opts.root = "${SYNROUTE_ROOT}"
    cmd[#cmd + 1] = "--portable"
    cmd[#cmd + 1] = rel
  else
    opts.root = opts.root or real_root
    opts.config = dep.file
    cmd[#cmd + 1] = dep.file
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
