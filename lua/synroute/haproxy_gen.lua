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

local api = require("synroute.api")
local cmdline = require("synroute.cmdline")
local classes = require("synroute.classes")
local config = require("synroute.config")
local paths = require("synroute.paths")
local runtime = require("synroute.runtime")
local target_mod = require("synroute.target")
local values = require("synroute.values")

local M = {}

local MATRIX_404 = [['{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}']]
local MATRIX_403_ADMIN = [['{"errcode":"M_FORBIDDEN","error":"The admin API is not reachable from this network"}']]

-- Pools whose routes main can serve (main is their `backup` server); a
-- configured writer never falls back to main.
local function main_backup_ok(dep, pool)
    if classes.WRITERS[pool] then return false end
    if pool == "media" and not dep.main.serves_media then return false end
    return true
end

-- Body of a Matrix 429.
local function limit_body(msg, secs)
    return '{"errcode":"M_LIMIT_EXCEEDED","error":"' .. msg .. '","retry_after_ms":' .. math.floor(secs * 1000) .. '}'
end
local function rate_table(class) return "synroute_rate_" .. class end
-- Retry-After (seconds) of a full pool queue; also in haproxy/errors/429-queue.http
local QUEUE_RETRY_AFTER = 5

local addr = values.server_addr

local function srvname(n)
    return (n:gsub("[^%w%._:%-]", "_"))
end

local function q(s) return '"' .. s .. '"' end

-- Append lines to out.
local function add(out, ...)
    for i = 1, select("#", ...) do out[#out + 1] = select(i, ...) end
end

-- opts.glue: path of the HAProxy glue as written into the config
-- opts.config: string used for SYNROUTE_CONFIG
local function global_section(dep, opts, out)
    out[#out + 1] = "global"
    if dep.log ~= "none" then
        out[#out + 1] = "    log " .. (dep.log or "stdout format raw local0 info")
    end
    if dep.nbthread then out[#out + 1] = "    nbthread " .. dep.nbthread end
    if dep.peers and dep.peers["local"] then
        add(out,
            "    # this node's name in the peers section (haproxy -L <name> overrides it)",
            "    localpeer " .. dep.peers["local"])
    end
    -- the runtime API; --snippet leaves it to the existing global section
    local stats = runtime.global_line(dep)
    if stats and not opts.snippet then
        add(out, "    # the runtime API: synroute status, drain, ready and show (level admin)", "    " .. stats)
    end
    local boot = runtime.boot_line(dep)
    if boot then
        add(out,
            "    # start time: no new stick-table pin in the first seconds, while the tables",
            "    # arrive from the old process or the peers (synroute.runtime.HANDOVER_GRACE_MS)",
            "    " .. boot)
    end
    add(out,
        "    # normalize-uri is experimental in HAProxy 2.6 and 3.0",
        "    expose-experimental-directives",
        "    tune.lua.maxmem 64",
        "    # the deployment the Lua side loads (it must be set before lua-load)",
        "    setenv SYNROUTE_CONFIG " .. q(opts.config))
    if opts.synapse_version then
        add(out,
            "    # generated with --synapse-version: the Lua side routes for the same release",
            "    setenv SYNROUTE_SYNAPSE_VERSION " .. q(dep.synapse_version))
    end
    if dep.mas and dep.mas.resolve then
        add(out,
            "    # one Lua state for all threads: MAS resolution shares one token cache",
            "    lua-load " .. q(opts.glue))
    else
        add(out,
            "    # one Lua state (and router) per thread: converter calls never wait for",
            "    # the global Lua lock; the module keeps no shared state, so this is safe",
            "    lua-load-per-thread " .. q(opts.glue))
    end
    out[#out + 1] = ""
end

local function defaults_section(dep, opts, out)
    local t = dep.timeouts
    add(out,
        "defaults",
        "    mode http",
        "    log global",
        "    option dontlognull",
        "    option redispatch",
        "    retries 2",
        "    http-reuse safe",
        "    timeout connect " .. t.connect,
        "    timeout http-request " .. t.http_request,
        "    timeout http-keep-alive " .. t.http_keep_alive,
        "    timeout queue " .. t.queue,
        "    # Synapse holds /sync up to the client's timeout (typically 30 s); initial",
        "    # syncs of big accounts take minutes. Keep both sides open long enough.",
        "    timeout client " .. t.client,
        "    timeout server " .. t.server,
        "    timeout tunnel " .. t.tunnel,
        "    timeout check " .. t.check)
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

-- limits.per_user: a rate table per class, a 429 over the limit.
local function per_user_rules(dep, L)
    local per = dep.limits and dep.limits.per_user or {}
    local names = values.sorted_keys(per)
    if #names == 0 then return end
    L("# limits.per_user: requests per key (hashed user/room/origin) and period, counted in")
    L("# one table per class; over the limit: Matrix 429 with Retry-After")
    for _, c in ipairs(names) do
        local r = per[c]
        local cond = "{ var(txn.synroute_class) -m str " .. c .. " } { var(txn.synroute_key) -m found }"
        L("http-request track-sc0 var(txn.synroute_key) table " .. rate_table(c) .. " if " .. cond)
        L("http-request return status 429 content-type application/json hdr Retry-After " .. r.secs ..
            " string '" .. limit_body("Too many " .. c .. " requests, try again later", r.secs) .. "' if " .. cond ..
            " { sc_http_req_rate(0) gt " .. r.count .. " }")
    end
end

-- ------------------------------------------------------------------------
-- Native fast paths (docs/design.md "Cost"): the commonest requests are
-- decided by HAProxy alone, without the Lua converter, then allowed past the
-- rest of the rules. Each is derived from the deployment's own router (it
-- routes probe requests) and is left out when the router does not decide
-- it the way the rule would. A fast path only admits targets that the
-- normalisation cannot change and that are not internal: exact paths, or a
-- literal prefix plus segments of unreserved characters ([A-Za-z0-9._~-],
-- no "%", no empty and no "." or ".." segment). Its key is the hkey the
-- converter prints for the same request (sr_router_hkey): XXH64 under the
-- family's seed, lower-case hex.

local FAST_METHODS = { "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH" }
local FAST_SYNC_PATHS = { "/_matrix/client/v3/sync", "/_matrix/client/r0/sync" }
local FAST_SYT = "syt_cHJvYmU_probeRandom_0crc"     -- localpart "probe"
local FAST_SEG = "(?!\\.\\.?(?:/|$))[A-Za-z0-9._~-]+"  -- one segment normalisation leaves alone

-- The router's answer for a probe: class|backend|key kind.
local function fast_probe(eng, method, target, auth)
    local d = eng:explain{ method = method, target = target, src = "192.0.2.1",
                           headers = auth and { "Authorization: " .. auth } or nil }
    return d.class .. "|" .. d.backend .. "|" .. d.key_kind, d
end

-- The method condition under which every probe target gets `want`:
-- "" (any method), "METH_GET " (GET and HEAD) or "METH_PUT ", else nil.
local function fast_methods(eng, targets, auth, want, only)
    local same = {}
    for _, m in ipairs(FAST_METHODS) do
        same[m] = true
        for _, t in ipairs(targets) do
            if fast_probe(eng, m, t, auth) ~= want then same[m] = false end
        end
    end
    local all = true
    for _, m in ipairs(FAST_METHODS) do all = all and same[m] end
    if all then return "" end
    if only == "GET" and same.GET and same.HEAD then return "METH_GET " end
    if only == "PUT" and same.PUT then return "METH_PUT " end
    return nil
end

local function fast_ok_class(dep, d)
    local per = dep.limits and dep.limits.per_user or {}
    -- (main: a deployment without workers gains nothing worth a rule)
    return d.class ~= "blocked" and d.backend ~= "main" and d.backend:match("^[%w_]+$") and not per[d.class]
end

-- Incremental and initial sync with a syt_ token in the header. Off when an
-- appservice token could look like one (it must reach the converter).
local function fast_sync(dep, eng, R)
    for _, t in ipairs(dep.as_tokens or {}) do
        if tostring(t.token):sub(1, 4) == "syt_" then return end
    end
    local auth = "Bearer " .. FAST_SYT
    local inc, di = fast_probe(eng, "GET", FAST_SYNC_PATHS[1] .. "?since=s1", auth)
    local ini, dn = fast_probe(eng, "GET", FAST_SYNC_PATHS[1] .. "?timeout=0", auth)
    local seg = FAST_SYT:match("^syt_([^_]+)")
    if di.key_kind ~= "user" or dn.key_kind ~= "user" or inc == ini then return end
    if di.hash ~= eng.router:hkey("syt", seg) or not fast_ok_class(dep, di) or not fast_ok_class(dep, dn) then return end
    local incs, inis = {}, {}
    for _, p in ipairs(FAST_SYNC_PATHS) do
        incs[#incs + 1] = p .. "?since=s1"; inis[#inis + 1] = p
        inis[#inis + 1] = p .. "?since="; inis[#inis + 1] = p .. "?since=s1&full_state=true"
    end
    local m1, m2 = fast_methods(eng, incs, auth, inc, "GET"), fast_methods(eng, inis, auth, ini, "GET")
    if not m1 or m1 ~= m2 then return end
    -- (a segment of at most 400 bytes: the converter keeps keys up to 511)
    R.acl("synroute_fp_syt req.fhdr(authorization) -m reg \"^Bearer syt_[^_]{1,400}_[^_]\"")
    R.acl("synroute_fp_sync path " .. table.concat(FAST_SYNC_PATHS, " "))
    -- synroute_fp_query: a query the fast path leaves to the converter: one
    -- with escapes or full_state, or with an empty or bare `since` before
    -- another one (url_param skips those, Synapse takes the first)
    R.acl("synroute_fp_query query -m sub % since=& since& full_state")
    R.rule("set-var(txn.synroute) str(" .. di.backend .. "|" .. di.class .. "|) if " .. m1 ..
        "synroute_fp_sync synroute_fp_syt { url_param(since) -m len gt 0 } !synroute_fp_query")
    R.rule("set-var(txn.synroute) str(" .. dn.backend .. "|" .. dn.class .. "|) if !{ var(txn.synroute) -m found } " ..
        m1 .. "synroute_fp_sync synroute_fp_syt !{ url_param(since) -m len gt 0 } !synroute_fp_query")
    R.rule("set-var(txn.synroute_key) req.fhdr(authorization),field(2,_),xxh64(" .. eng.router:hkey_seed("user") ..
        "),hex,lower if { var(txn.synroute) -m str " .. di.backend .. "|" .. di.class .. "| " ..
        dn.backend .. "|" .. dn.class .. "| }")
end

-- Inbound federation transactions whose X-Matrix header starts with origin.
local function fast_fed_send(dep, eng, R)
    local prefix = "/_matrix/federation/v1/send/"
    local auth = 'X-Matrix origin="probe.example",destination="hs",key="ed25519:a",sig="x"'
    local want, d = fast_probe(eng, "PUT", prefix .. "1700000000011", auth)
    if d.key_kind ~= "origin" or d.hash ~= eng.router:hkey("origin", "probe.example") or not fast_ok_class(dep, d) then
        return
    end
    local m = fast_methods(eng, { prefix .. "1", prefix .. "a.b~c-d_e", prefix .. "..." }, auth, want, "PUT")
    if not m then return end
    local packed = d.backend .. "|" .. d.class .. "|"
    R.rule("set-var(txn.synroute) str(" .. packed .. ") if !{ var(txn.synroute) -m found } " .. m ..
        "{ path -m reg '^" .. prefix .. FAST_SEG .. "$' } { req.fhdr(authorization) -m reg '^X-Matrix origin=\"[^\"]{1,255}(?:\"|$)' }")
    R.rule("set-var(txn.synroute_key) req.fhdr(authorization),'field(2,\\\")',xxh64(" ..
        eng.router:hkey_seed("origin") .. "),hex,lower if { var(txn.synroute) -m str " .. packed .. " }")
end

-- Media downloads, thumbnails, uploads and config: no key.
local function fast_media(dep, eng, R)
    local prefixes = { "/_matrix/media", "/_matrix/client/v1/media", "/_matrix/federation/v1/media" }
    local want, d
    for _, p in ipairs(prefixes) do
        local targets = { p .. "/v3/download/hs.example/abcDEF123", p .. "/download/hs.example/a-b_c.d~e",
                          p .. "/v3/thumbnail/hs.example/abc", p .. "/config", p .. "/v3/upload", p .. "/x" }
        if p:find("federation", 1, true) then targets = { p .. "/download/abc", p .. "/thumbnail/abc" } end
        local w, dd = fast_probe(eng, "GET", targets[1])
        if (want and w ~= want) or dd.key_kind ~= "none" or not fast_ok_class(dep, dd) then return end
        want, d = w, dd
        if fast_methods(eng, targets, nil, want, "GET") ~= "" then return end
    end
    R.rule("set-var(txn.synroute) str(" .. d.backend .. "|" .. d.class .. "|) if !{ var(txn.synroute) -m found } " ..
        "{ path -m reg '^/_matrix/(?:media|client/v1/media|federation/v1/media)(?:/" .. FAST_SEG .. ")+$' }")
end

-- The fast paths of a deployment, probed against its engine: their acl
-- and http-request lines (without the shared tail that copies the decision
-- into txn.synroute_backend/_class and allows the request), and the
-- decisions they can set ("backend|class|"), for tests/e2e/agree.sh.
function M.fast_paths(dep, eng)
    local acls, rules, decided = {}, {}, {}
    if not eng or not dep or not dep.pools then return acls, rules, decided end
    local R = { acl = function(s) acls[#acls + 1] = "acl " .. s end,
                rule = function(s)
                    rules[#rules + 1] = "http-request " .. s
                    local packed = s:match("^set%-var%(txn%.synroute%) str%(([^)]*)%)")
                    if packed then decided[#decided + 1] = packed end
                end }
    fast_sync(dep, eng, R)
    fast_fed_send(dep, eng, R)
    fast_media(dep, eng, R)
    return acls, rules, decided
end

-- The fast paths' rules (after the X-Forwarded-* lines and any rule that
-- refuses a method, before normalisation and the internal-path rules).
local function fast_path_rules(dep, opts, L)
    local acls, rules = M.fast_paths(dep, opts.engine)
    if #rules == 0 then return end
    L("# 0b. Native fast paths, generated from the route table: these requests are decided here,")
    L("#    without Lua, and skip the remaining rules (their targets are never internal and")
    L("#    normalisation leaves them unchanged; docs/design.md \"Cost\")")
    for _, s in ipairs(acls) do L(s) end
    for _, s in ipairs(rules) do L(s) end
    L("http-request set-var(txn.synroute_backend) var(txn.synroute),field(1,|) if { var(txn.synroute) -m found }")
    L("http-request set-var(txn.synroute_class)   var(txn.synroute),field(2,|) if { var(txn.synroute) -m found }")
    L("http-request allow if { var(txn.synroute) -m found }")
end

-- The per-request rules, shared by the full frontend and --snippet.
local function frontend_rules(dep, opts, out)
    local function L(s) out[#out + 1] = (s == "" and "" or "    " .. s) end
    L("# 0. Client-supplied X-Forwarded-For is replaced, never trusted")
    L("http-request set-header X-Forwarded-For %[src]")
    if opts.snippet or has_tls(dep) then
        L("http-request set-header X-Forwarded-Proto https if { ssl_fc }")
        L("http-request set-header X-Forwarded-Proto http if !{ ssl_fc }")
    else
        L("http-request set-header X-Forwarded-Proto http")
    end
    fast_path_rules(dep, opts, L)
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
    per_user_rules(dep, L)
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
        add(out, "    # never logs the query string (access_token) or Authorization", "    log-format " .. LOG_FORMAT)
    end
    frontend_rules(dep, opts, out)
    add(out, "    default_backend main", "")
end

local function check_lines(out)
    add(out, "    option httpchk GET /health", "    http-check expect status 200")
end

local function main_server(dep, backup)
    if backup then
        -- one health check for main (in backend main), tracked everywhere else
        return "    server main " .. addr(dep.main) .. " backup track main/main"
    end
    return "    server main " .. addr(dep.main) .. " check"
end

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

-- Backends the router may name that no pool provides: empty, so they answer 503.
local function empty_backends(dep, used)
    local extra = {}
    for _, b in ipairs(used or {}) do
        if b ~= "main" and not dep.pools[b] and b:match("^[%w_]+$") then extra[#extra + 1] = b end
    end
    table.sort(extra)
    return extra
end

-- limits.<pool>: a 503 without servers, a 429 past the queue.
local function limit_lines(dep, opts, pool, out)
    local l = dep.limits and dep.limits.pools and dep.limits.pools[pool]
    if not l then return end
    out[#out + 1] = "    # limits." .. pool .. ": " .. l.maxconn .. " request(s) per server at once, at most " .. l.queue ..
        " waiting; past that a Matrix 429"
    out[#out + 1] = "    http-request return status 503 content-type application/json string " ..
        "'{\"errcode\":\"M_UNKNOWN\",\"error\":\"No homeserver process is available for this request, try again later\"}' if { nbsrv eq 0 }"
    out[#out + 1] = "    http-request return status 429 content-type application/json hdr Retry-After " .. QUEUE_RETRY_AFTER ..
        " string '" .. limit_body("Too many requests of this kind, try again later", QUEUE_RETRY_AFTER) .. "' if { queue ge " .. l.queue .. " }"
    if l.queue_timeout then out[#out + 1] = "    timeout queue " .. l.queue_timeout end
    add(out,
        "    # a request that waited the whole 'timeout queue' gets HAProxy's 503: answer it as a 429",
        "    errorfile 503 " .. q(opts.errors_dir .. "/429-queue.http"))
end

local function maxconn(dep, pool)
    local l = dep.limits and dep.limits.pools and dep.limits.pools[pool]
    return l and (" maxconn " .. l.maxconn) or ""
end

-- A server line. A worker in several pools is checked once (in the first
-- backend in sorted order) and tracked in the others: checked[key] = pool.
local function server_line(checked, pool, s, backup, extra)
    local key = s.name .. " " .. addr(s)
    local line = "    server " .. srvname(s.name) .. " " .. addr(s) .. (extra or "")
    if checked[key] then
        return line .. (backup and " backup" or "") .. " track " .. checked[key] .. "/" .. srvname(s.name)
    end
    checked[key] = pool
    return line .. " check" .. (backup and " backup" or "")
end

local function hash_lines(dep, pool, out)
    add(out,
        "    # sticky by the key the router derived (user, room or origin, hashed);",
        "    # requests without a key are balanced round robin. Ids come from the",
        "    # server names (a new server moves only its share of keys); weight 100",
        "    # gives each server enough points on the hash ring for an even spread.",
        "    balance hash var(txn.synroute_key)",
        "    hash-type consistent")
    out[#out + 1] = "    stick-table type string len 16 size " .. dep.stick.size .. " expire " .. dep.stick.expire ..
        (dep.peers and (" peers " .. dep.peers.name) or "")
    add(out,
        "    stick match var(txn.synroute_key)",
        "    stick store-request var(txn.synroute_key) if !{ var(txn.synroute_key),in_table(" .. pool .. ") }" ..
            runtime.store_guard(dep))
end

local function pool_backend(dep, opts, pool, checked, out)
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
    limit_lines(dep, opts, pool, out)
    local hashed, ids = #actives > 1, {}
    local function extra(s, backup)
        local e = hashed and (" id " .. name_id(s.name, ids) .. (backup and "" or " weight 100")) or ""
        return e .. maxconn(dep, pool)
    end
    if hashed then hash_lines(dep, pool, out) end
    for _, s in ipairs(actives) do out[#out + 1] = server_line(checked, pool, s, false, extra(s, false)) end
    for _, s in ipairs(backups) do out[#out + 1] = server_line(checked, pool, s, true, extra(s, true)) end
    if main_backup_ok(dep, pool) then
        local line = main_server(dep, true)
        if hashed then line = line:gsub("^(    server main %S+)", "%1 id " .. name_id("main", ids)) end
        out[#out + 1] = line
    end
    out[#out + 1] = ""
end

local function rate_backends(dep, out)
    local per = dep.limits and dep.limits.per_user or {}
    for _, c in ipairs(values.sorted_keys(per)) do
        out[#out + 1] = "# limits.per_user." .. c .. ": " .. per[c].count .. " request(s) per " .. per[c].period ..
            " per key (this node's count)"
        out[#out + 1] = "backend " .. rate_table(c)
        out[#out + 1] = "    stick-table type string len 16 size " .. dep.stick.size .. " expire " .. per[c].period ..
            " store http_req_rate(" .. per[c].period .. ")"
        out[#out + 1] = ""
    end
end

local function backends(dep, opts, out, used)
    out[#out + 1] = "backend main"
    check_lines(out)
    limit_lines(dep, opts, "main", out)
    add(out, main_server(dep, false) .. maxconn(dep, "main"), "")
    local checked = {}
    for _, pool in ipairs(values.sorted_keys(dep.pools)) do
        pool_backend(dep, opts, pool, checked, out)
    end
    for _, b in ipairs(empty_backends(dep, used)) do
        add(out,
            "backend " .. b,
            "    # named by the router but no worker serves it: Matrix JSON 503",
            "")
    end
    rate_backends(dep, out)
end

-- opts: target = { haproxy = "3.0", lua = "5.4", source = ... } (synroute.target),
-- glue / errors_dir (as written into the config; default: synroute.paths for
-- the target's Lua), config (SYNROUTE_CONFIG; default dep.file), portable,
-- snippet, test_headers, synapse_version, cmd (recorded in the header),
-- backends (names the router may produce).
function M.generate(dep, opts)
    opts = opts or {}
    dep = runtime.without_idle_peers(dep)   -- no stick table: no local peers section
    local t = opts.target or {}
    opts.config = opts.config or dep.file
    if not opts.glue then
        opts.glue = assert(paths.glue(t.lua or paths.lua_version()))
    end
    opts.errors_dir = opts.errors_dir or assert(paths.errors_dir, "synroute.paths: no data directory")
    -- the router of this deployment: the fast paths are probed against it
    opts.engine = opts.engine or api.new({ dep = dep })
    local out = {}
    add(out,
        "# Generated by synroute - do not edit; regenerate instead:",
        "#   " .. (opts.cmd or "synroute haproxy synroute.yaml"))
    if opts.portable then
        out[#out + 1] = "# Target: HAProxy " .. target_mod.MIN_HAPROXY .. " or later with Lua " ..
            table.concat(target_mod.LUAS, " or ") .. ". This repository-mode file is the same"
        add(out,
            "# for every version: the glue loads build/<the Lua HAProxy embeds>/synroute.so.",
            "# Start HAProxy with SYNROUTE_ROOT set to the synroute checkout:",
            "#   SYNROUTE_ROOT=/path/to/synroute haproxy -f haproxy.cfg")
    elseif t.haproxy then
        out[#out + 1] = "# Target: HAProxy " .. t.haproxy .. " with Lua " .. t.lua ..
            (t.source and (" (" .. t.source .. ")") or "")
    end
    out[#out + 1] = ""
    if opts.snippet then
        add(out, "# Snippet for an existing frontend (e.g. your TLS one).", "# (a) add to your global section:")
        local g = {}
        global_section(dep, opts, g)
        for i = 2, #g do
            local line = g[i]:gsub("^%s+", "")
            if line ~= "" and line:sub(1, 1) ~= "#" and not line:match("^log ") then out[#out + 1] = "#     " .. line end
        end
        local stats = runtime.global_line(dep)
        if stats then
            add(out,
                "#     and a runtime API socket at level admin for synroute status/drain/ready/show",
                "#     (Debian's haproxy.cfg has one; runtime.socket in synroute.yaml names it):",
                "#     " .. stats)
        end
        out[#out + 1] = "# (b) add to your defaults: the errorfile lines and timeouts (client " .. dep.timeouts.client ..
            ", server " .. dep.timeouts.server .. ", tunnel " .. dep.timeouts.tunnel .. ") of the full output"
        add(out,
            "# (c) paste these rules into your frontend, before any use_backend, and set",
            "#     'default_backend main' there:")
        frontend_rules(dep, opts, out)
        out[#out + 1] = ""
        if dep.peers then
            out[#out + 1] = "# (d0) the peers section:"
            peers_section(dep, out)
        end
        add(out, "# (d) the backends:", "")
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

local OPTIONS = {
    ["-o"] = { "outfile", value = true }, ["--output"] = { "outfile", value = true },
    ["--synapse-version"] = { "synapse_version", value = true },
    ["--root"] = { "root", value = true },
    ["--haproxy-version"] = { "haproxy_version", value = true },
    ["--lua-version"] = { "lua_version", value = true },
    ["--haproxy-bin"] = { "haproxy_bin", value = true },
    ["--snippet"] = { "snippet" }, ["--portable"] = { "portable" },
    ["--test-headers"] = { "test_headers" }, ["--probe"] = { "probe" },
    ["--help"] = { "help" }, ["-h"] = { "help" },
}

M.OPTIONS = OPTIONS

-- argv -> cfg, opts | nil, exit code (the message is written)
local function parse_args(argv)
    local opts, words = cmdline.parse(argv, OPTIONS)
    if not opts then io.stderr:write(words, "\n", USAGE, "\n"); return nil, 2 end
    if opts.help then print(USAGE); return nil, 0 end
    if #words ~= 1 then io.stderr:write(USAGE, "\n"); return nil, 2 end
    if opts.portable and opts.root then io.stderr:write("give either --portable or --root, not both\n"); return nil, 2 end
    return words[1], opts
end

-- The target HAProxy and its Lua (synroute.target) | nil (the message is written).
local function resolve_target(dep, opts)
    local env_bin = os.getenv("SYNROUTE_HAPROXY_BIN")
    local tgt, terr = target_mod.resolve{
        haproxy_version = opts.haproxy_version, lua_version = opts.lua_version,
        bin = opts.haproxy_bin or (env_bin ~= "" and env_bin or nil), bin_explicit = opts.haproxy_bin ~= nil,
        setting = dep.haproxy,
    }
    if not tgt then io.stderr:write("synroute haproxy: ", terr, "\n"); return nil end
    if not target_mod.tested(tgt.haproxy) then
        io.stderr:write("warning: HAProxy ", tgt.haproxy, " is not one of the versions synroute is tested with (",
            table.concat(target_mod.TESTED, ", "), ")\n")
    end
    return tgt
end

-- --portable: paths relative to "${SYNROUTE_ROOT}". -> true | nil, exit code
local function portable_paths(dep, opts, cmd)
    if paths.mode ~= "repository" or not paths.root then
        io.stderr:write("--portable: only for a synroute checkout (repository mode); this synroute is installed\n")
        return nil, 2
    end
    local rel = dep.file:sub(1, #paths.root + 1) == paths.root .. "/" and dep.file:sub(#paths.root + 2)
    if not rel then
        io.stderr:write("--portable: ", dep.file, " is not inside ", paths.root, "\n")
        return nil, 2
    end
    opts.config = "${SYNROUTE_ROOT}/" .. rel
    opts.glue = "${SYNROUTE_ROOT}/lua/synroute/haproxy.lua"
    opts.errors_dir = "${SYNROUTE_ROOT}/haproxy/errors"
    cmd[#cmd + 1] = "--portable"
    cmd[#cmd + 1] = rel
    return true
end

-- Generating for this machine: what the config will load must be here.
-- -> true | nil, exit code
local function check_local_files(tgt, glue)
    local need = paths.mode == "installed" and glue or paths.module_file(tgt.lua)
    local f = io.open(need, "rb")
    if f then f:close(); return true end
    if paths.mode == "installed" then
        io.stderr:write("synroute haproxy: ", need, " is missing: the target HAProxy ", tgt.haproxy,
            " embeds Lua ", tgt.lua, "; install synroute for Lua ", tgt.lua, "\n")
        return nil, 1
    end
    io.stderr:write("warning: ", need, " is missing: HAProxy ", tgt.haproxy, " embeds Lua ", tgt.lua,
        "; build it (make build/", tgt.lua, "/synroute.so) before starting HAProxy\n")
    return true
end

-- Installed or repository paths (or --root). -> true | nil, exit code
local function local_paths(dep, opts, tgt, cmd)
    if opts.root then
        local r = paths.abspath(opts.root)
        opts.glue, opts.errors_dir = r .. "/lua/synroute/haproxy.lua", r .. "/haproxy/errors"
    else
        local glue, gerr = paths.glue(tgt.lua)
        if not glue then io.stderr:write("synroute haproxy: ", gerr, "\n"); return nil, 1 end
        opts.glue, opts.errors_dir = glue, paths.errors_dir
        if tgt.source:find(" -vv", 1, true) then
            local ok, rc = check_local_files(tgt, glue)
            if not ok then return nil, rc end
        end
    end
    opts.config = dep.file
    cmd[#cmd + 1] = dep.file
    for _, o in ipairs{ { "--haproxy-version", "haproxy_version" }, { "--lua-version", "lua_version" },
                                            { "--haproxy-bin", "haproxy_bin" } } do
        if opts[o[2]] then cmd[#cmd + 1] = o[1]; cmd[#cmd + 1] = opts[o[2]] end
    end
    return true
end

-- The command recorded in the header: with --portable the canonical one, so
-- that regenerating anywhere gives the same bytes.
local function recorded_cmd(opts, cmd)
    if opts.snippet then cmd[#cmd + 1] = "--snippet" end
    if opts.test_headers then cmd[#cmd + 1] = "--test-headers" end
    if opts.portable then
        -- synroute.yaml -> haproxy.cfg; any other name (node1.yaml) -> haproxy-node1.cfg
        local stem = (cmd[3]:match("([^/]*)$") or ""):gsub("%.ya?ml$", "")
        cmd[#cmd + 1] = "-o"
        cmd[#cmd + 1] = (cmd[3]:match("^(.*)/[^/]*$") or ".") .. "/haproxy" .. (stem ~= "synroute" and ("-" .. stem) or "") ..
            (opts.snippet and "-snippet" or "") .. ".cfg"
    elseif opts.outfile then
        cmd[#cmd + 1] = "-o"
        cmd[#cmd + 1] = opts.outfile
    end
    return table.concat(cmd, " ")
end

local function write_output(text, outfile)
    if not outfile or outfile == "-" then
        io.write(text)
        return 0
    end
    local f, err = io.open(outfile, "w")
    if not f then io.stderr:write("cannot write ", outfile, ": ", tostring(err), "\n"); return 1 end
    f:write(text)
    f:close()
    return 0
end

function M.main(argv)
    local cfg, opts = parse_args(argv)
    if not cfg then return opts end
    local dep, problems = config.load(cfg, { synapse_version = opts.synapse_version })
    if not dep then
        for _, p in ipairs(problems) do io.stderr:write(p, "\n") end
        io.stderr:write(#problems, " problem", #problems == 1 and "" or "s", " in ", cfg, "; no HAProxy config written\n")
        return 1
    end
    opts.target = resolve_target(dep, opts)
    if not opts.target then return 1 end
    local cmd = { "synroute haproxy" }
    local ok, rc
    if opts.portable then ok, rc = portable_paths(dep, opts, cmd)
    else ok, rc = local_paths(dep, opts, opts.target, cmd) end
    if not ok then return rc end
    opts.cmd = recorded_cmd(opts, cmd)
    -- The router must build for this deployment too (same check HAProxy does at start).
    local eng, err = api.new({ dep = dep })
    if not eng then io.stderr:write(tostring(err), "\n"); return 1 end
    opts.backends = eng.backends
    opts.engine = eng
    for _, w in ipairs(dep.warnings) do io.stderr:write("warning: ", w, "\n") end
    if opts.probe then
        for _, p in ipairs(require("synroute.probe").health(dep)) do io.stderr:write("warning: ", p, "\n") end
    end
    return write_output(M.generate(dep, opts), opts.outfile)
end

return M
