-- synroute.check: `synroute check CONFIG [--probe] [--quiet]`
-- Validates synroute.yaml and the Synapse files it names, prints EVERY
-- problem as "file:line: message", exit 0 (ok) or 1 (problems).
--
--   require("synroute.check").main({ "examples/full/synroute.yaml" }) -> 0

local config = require("synroute.config")

local M = {}

local USAGE = "usage: synroute check CONFIG [--probe] [--quiet] [--synapse-version V]"

local function addr(s)
  if s.path then return s.path end
  local h = s.host
  if h and h:find(":", 1, true) then h = "[" .. h .. "]" end
  return tostring(h) .. ":" .. tostring(s.port)
end

-- --probe: GET /health on every server (curl, 2 s each).
function M.probe(dep, problems)
  local targets = { { name = "main", s = dep.main, pool = "main" } }
  local pools = {}
  for k in pairs(dep.pools) do pools[#pools + 1] = k end
  table.sort(pools)
  local seen = { [addr(dep.main)] = true }
  for _, pool in ipairs(pools) do
    for _, s in ipairs(dep.pools[pool].servers) do
      if not seen[addr(s)] and not s.path then
        seen[addr(s)] = true
        targets[#targets + 1] = { name = s.name, s = s, pool = pool }
      end
    end
  end
  for _, t in ipairs(targets) do
    if not t.s.path then
      local url = "http://" .. addr(t.s) .. "/health"
      local f = io.popen("curl -s -o /dev/null -m 2 -w '%{http_code}' '" .. url .. "' 2>/dev/null")
      local code = f and f:read("a") or ""
      if f then f:close() end
      if code ~= "200" then
        problems[#problems + 1] = (t.s.where or dep.file) .. ": probe: " .. t.name .. " at " .. addr(t.s) ..
          " did not answer GET /health with 200 (got " .. (code == "000" and "no answer" or code) .. ")"
      end
    end
  end
end

-- synapse_version against the releases routes.yaml knows (the engine only
-- warns in the HAProxy log). Older than the oldest: a problem (no route
-- table describes it). Newer than the newest, or not a listed release: a
-- warning (the engine then routes as the newest known release before it).
-- Also warns about pools that no route reaches at this version.
function M.check_version(dep, opts, problems, eng)
  local v = dep.synapse_version
  if not v or not eng or type(eng.routes) ~= "table" then return end
  local routes = require("synroute.routes")
  local list = eng.routes.synapse_versions or {}
  local oldest, latest = list[1], list[#list]
  if not oldest or not routes.parse_version(v) then return end
  local where, what
  if opts and opts.synapse_version then
    where, what = dep.file .. ":1", "--synapse-version " .. v
  else
    where, what = require("synroute.probe").where(dep.file, "synapse_version"), "synapse_version \"" .. v .. "\""
  end
  dep.warnings = dep.warnings or {}
  if routes.compare_versions(v, oldest) < 0 then
    problems[#problems + 1] = where .. ": " .. what .. " is older than the oldest release synroute knows (" ..
      oldest .. "); the route table has nothing for it"
    return
  elseif routes.compare_versions(v, latest) > 0 then
    dep.warnings[#dep.warnings + 1] = where .. ": " .. what .. " is newer than the newest release synroute knows (" ..
      latest .. "): routing as " .. latest .. "; update synroute (or correct the version)"
    return
  end
  local known, before = false, oldest
  for _, k in ipairs(list) do
    if k == v then known = true end
    if routes.compare_versions(k, v) <= 0 then before = k end
  end
  if not known then
    dep.warnings[#dep.warnings + 1] = where .. ": " .. what .. " is not a release routes.yaml lists: routing as " .. before
  end
  -- pools no route reaches under this version (e.g. a writer that is newer than it)
  local used = {}
  for _, b in ipairs(eng.backends or {}) do used[b] = true end
  local names = {}
  for name in pairs(dep.pools or {}) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    if not used[name] and name ~= "appservice" then
      local first
      for _, e in ipairs(eng.routes.routes or {}) do
        if (e.class == name or e.alt_class == name) and (not first or routes.compare_versions(e.since, first) < 0) then
          first = e.since
        end
      end
      if first and routes.compare_versions(first, v) > 0 then
        dep.warnings[#dep.warnings + 1] = where .. ": no request goes to pool " .. name .. " with Synapse " .. v ..
          " (workers serve " .. name .. " requests since " .. first .. ")"
      end
    end
  end
end

function M.run(path, opts)
  opts = opts or {}
  local dep, problems = config.load(path, { synapse_version = opts.synapse_version })
  if not dep then return nil, problems end
  local extra = {}
  local ok_api, api = pcall(require, "synroute.api")
  if ok_api and type(api) == "table" and api.new then
    local eng, err = api.new({ dep = dep })
    if not eng then extra[#extra + 1] = dep.file .. ":1: " .. tostring(err) end
    if eng then M.check_version(dep, opts, extra, eng) end
  end
  if opts.probe then M.probe(dep, extra) end
  if #extra > 0 then return nil, extra, dep end
  return dep
end

function M.main(args)
  local cfg
  local opts = {}
  local skip = false
  for i, a in ipairs(args) do
    if skip then skip = false
    elseif a == "--synapse-version" then
      opts.synapse_version = args[i + 1]; skip = true
      if not opts.synapse_version then io.stderr:write(USAGE, "\n"); return 2 end
    elseif a == "--probe" then opts.probe = true
    elseif a == "--quiet" or a == "-q" then opts.quiet = true
    elseif a == "-h" or a == "--help" then print(USAGE); return 0
    elseif a:sub(1, 1) == "-" then io.stderr:write("unknown option ", a, "\n", USAGE, "\n"); return 2
    elseif cfg then io.stderr:write(USAGE, "\n"); return 2
    else cfg = a end
  end
  if not cfg then io.stderr:write(USAGE, "\n"); return 2 end
  local dep, problems, dep2 = M.run(cfg, opts)
  local d = dep or dep2
  if d then
    for _, w in ipairs(d.warnings or {}) do io.stdout:write("warning: ", w, "\n") end
  end
  if not dep then
    for _, p in ipairs(problems) do io.stdout:write(p, "\n") end
    io.stdout:write(#problems, " problem", #problems == 1 and "" or "s", " found in ", cfg, "\n")
    return 1
  end
  if not opts.quiet then
    io.stdout:write("ok: ", cfg, "\n")
    io.stdout:write("  main ", addr(dep.main), dep.main.serves_media and " (serves media)" or "", "\n")
    local pools = {}
    for k in pairs(dep.pools) do pools[#pools + 1] = k end
    table.sort(pools)
    for _, p in ipairs(pools) do
      local names = {}
      for _, s in ipairs(dep.pools[p].servers) do
        names[#names + 1] = s.name .. (s.backup and " (backup)" or "")
      end
      io.stdout:write("  pool ", p, ": ", #names > 0 and table.concat(names, ", ") or "(empty)", "\n")
    end
    if #dep.as_tokens > 0 then
      io.stdout:write("  appservices: ", #dep.as_tokens, "\n")
    end
  end
  return 0
end

return M
