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
local metrics = require("synroute.metrics")
local paths = require("synroute.paths")
local pools = require("synroute.pools")
local runtime = require("synroute.runtime")
local target_mod = require("synroute.target")
local values = require("synroute.values")

local M = {}

local MATRIX_404 = [['{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}']]
local MATRIX_403_ADMIN = [['{"errcode":"M_FORBIDDEN","error":"The admin API is not reachable from this network"}']]
local MATRIX_403_METRICS = [['{"errcode":"M_FORBIDDEN","error":"Metrics are not reachable from this network"}']]
local MATRIX_400 = [['{"errcode":"M_UNRECOGNIZED","error":"Invalid request path"}']]
local MATRIX_405 = [['{"errcode":"M_UNRECOGNIZED","error":"Method not allowed"}']]

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


-- Defence in depth: every value from the deployment is checked when it is
-- read (synroute.synapse, synroute.settings); the generator still refuses to
-- write one that is not a single clean word (or, quoted, one that could end
-- the string or the line). -> v, or raises "synroute haproxy: ..."
local function word(v, what)
    if not values.token(v) then
        error("synroute haproxy: refusing to write " .. what .. " '" .. values.show(v) ..
            "' into haproxy.cfg: it is not one clean word", 0)
    end
    return v
end

local function addr(s)
    return word(values.server_addr(s), "the address of " .. values.show(s.name or "main"))
end

-- A worker's server name (values.server_name makes it a clean word); a name
-- check would refuse (a space, a control character) is refused here too.
local function srvname(n)
    if n:find("[%c%s]") then word(n, "the worker name") end
    return values.server_name(n)
end

local function q(s)
    if type(s) ~= "string" or s:find('[%c"\\]') then
        error("synroute haproxy: refusing to write '" .. values.show(s) .. "' into haproxy.cfg (a quote, " ..
            "backslash or control character)", 0)
    end
    return '"' .. s .. '"'
end

-- Append lines to out.
local function add(out, ...)
    for i = 1, select("#", ...) do out[#out + 1] = select(i, ...) end
end

-- The runtime API's stats socket line with its comment: for the global
-- section, or (snippet) as advice in the snippet's header.
local function runtime_lines(dep, snippet)
    local stats = runtime.global_line(dep)
    if not stats then return {} end
    if snippet then
        return { "#     and a runtime API socket at level admin for synroute status/drain/ready/show",
                 "#     (Debian's haproxy.cfg has one; runtime.socket in synroute.yaml names it):",
                 "#     " .. stats }
    end
    return { "    # the runtime API: synroute status, drain, ready and show (level admin)", "    " .. stats }
end

---------------------------------------------------------------------------
-- tune.lua.maxmem. HAProxy counts it per process, over all its Lua states:
-- with lua-load-per-thread each thread loads the deployment into its own
-- state (haproxy -c loads only the first, a start loads them all). The
-- need of one state is measured here, by loading the deployment as the glue
-- does with the collector stopped (so every byte allocated counts: an upper
-- bound of the peak), plus the modules; doubled, plus room for requests,
-- and rounded up to 8 MiB. Threads: nbthread, else HAProxy's default
-- maximum (64); one state with lua-load (mas.resolve).

local MODULES_MIB, RUNTIME_MIB, MAX_STATE_MIB, DEFAULT_THREADS = 1, 4, 256, 64

-- -> MiB of one Lua state's share | nil, error
local function state_need(dep, version)
    collectgarbage("collect")
    collectgarbage("stop")
    local before = collectgarbage("count")
    local ok, eng, err = pcall(api.new, { config = dep.file, version = version })
    local kib = collectgarbage("count") - before
    collectgarbage("restart")
    collectgarbage("collect")
    if not ok or not eng then return nil, tostring(ok and err or eng) end
    local mib = 2 * (kib / 1024 + MODULES_MIB) + RUNTIME_MIB
    if dep.mas and dep.mas.resolve then mib = mib + dep.mas.cache_size * 512 / 1048576 end
    return 8 * math.ceil(mib / 8)
end

-- -> maxmem (MiB), per state (MiB), states | nil, message (the deployment
-- needs more than MAX_STATE_MIB in one state)
function M.lua_maxmem(dep, version)
    local per, err = state_need(dep, version)
    if not per then return nil, err end
    if per > MAX_STATE_MIB then
        return nil, string.format("loading this deployment takes up to %d MiB of Lua memory in each of HAProxy's " ..
            "Lua states (the limit synroute sizes tune.lua.maxmem for is %d MiB per state): the Synapse files " ..
            "are too large or too many", per, MAX_STATE_MIB)
    end
    local states = (dep.mas and dep.mas.resolve) and 1 or (dep.nbthread or DEFAULT_THREADS)
    return math.max(64, per * states), per, states
end

local function maxmem_lines(opts, out)
    if not opts.maxmem then
        out[#out + 1] = "    tune.lua.maxmem 64"
        return
    end
    local m = opts.maxmem
    add(out,
        "    # Lua memory, per process: " .. m.per .. " MiB for each of " .. m.states .. " Lua state(s), sized from",
        "    # this deployment (docs/deployment.md \"Lua memory\")",
        "    tune.lua.maxmem " .. m.total)
end

-- What this file is written for (synroute.pools.record): the glue derives it
-- again at every start and refuses to start on a difference.
local function drift_lines(dep, opts, out)
    add(out,
        "    # the backend set this file was written for: at every start (and haproxy -c) the",
        "    # Lua side derives it again from the files and refuses to start if it changed",
        "    setenv SYNROUTE_GENERATED " .. q(pools.record(dep, opts.version)))
    if opts.cmd then
        out[#out + 1] = "    setenv SYNROUTE_REGENERATE " .. q(opts.cmd)
    end
end

-- opts.glue: path of the HAProxy glue as written into the config
-- opts.config: string used for SYNROUTE_CONFIG
-- An installed synroute generating for this machine (opts.system) keeps
-- Debian's conventions: its haproxy.cfg logs to the journal's /dev/log and
-- drops root for user and group haproxy once the configuration (and with it
-- the Lua glue, synroute.yaml and the Synapse files) is loaded, and chroots.
M.CHROOT = "/var/lib/haproxy"

local function system_lines(opts, out)
    if not opts.system or opts.snippet then return end
    add(out,
        "    # Debian's conventions (its haproxy.cfg): root only while loading",
        "    user haproxy",
        "    group haproxy")
    -- HAProxy 2.6 and 3.0 run every lua-load and lua-load-per-thread (the
    -- glue reads synroute.yaml, the Synapse files and the module then) before
    -- they chroot; Debian's unit mounts /dev/log inside the chroot
    add(out, "    chroot " .. M.CHROOT)
end

-- Where the log goes: synroute.yaml's `log`, else Debian's /dev/log for an
-- installed synroute, else standard output (repository mode, tests, demo).
local function log_target(dep, opts)
    if dep.log then return dep.log end
    if opts.system then return "/dev/log local0" end
    return "stdout format raw local0 info"
end

-- The release the Lua side routes for: always written, so that HAProxy
-- routes for exactly the release this file was generated for.
local function version_lines(dep, out)
    local v = dep.synapse_version or require("synroute.routes").CONSERVATIVE
    local src = dep.synapse_version_source or (dep.synapse_version and "given" or "conservative: unknown")
    add(out,
        "    # the Synapse release the Lua side routes for: " .. src,
        "    setenv SYNROUTE_SYNAPSE_VERSION " .. q(v))
end

local function global_section(dep, opts, out)
    out[#out + 1] = "global"
    if dep.log ~= "none" then
        out[#out + 1] = "    log " .. log_target(dep, opts)
    end
    system_lines(opts, out)
    if dep.nbthread then out[#out + 1] = "    nbthread " .. dep.nbthread end
    if dep.peers and dep.peers["local"] then
        add(out,
            "    # this node's name in the peers section (haproxy -L <name> overrides it)",
            "    localpeer " .. dep.peers["local"])
    end
    -- the runtime API; --snippet leaves it to the existing global section
    if not opts.snippet then add(out, table.unpack(runtime_lines(dep, false))) end
    local boot = runtime.boot_line(dep)
    if boot then
        add(out,
            "    # start time: no new stick-table pin in the first seconds, while the tables",
            "    # arrive from the old process or the peers (synroute.runtime.HANDOVER_GRACE_MS)",
            "    " .. boot)
    end
    add(out,
        "    # normalize-uri is experimental in HAProxy 2.6 and 3.0",
        "    expose-experimental-directives")
    maxmem_lines(opts, out)
    add(out,
        "    # the deployment the Lua side loads (it must be set before lua-load)",
        "    setenv SYNROUTE_CONFIG " .. q(opts.config))
    version_lines(dep, out)
    drift_lines(dep, opts, out)
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
        local cond = "{ var(txn.synroute),field(2,|) -m str " .. c .. " } { var(txn.synroute_key) -m found }"
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
-- and http-request lines (without the shared `allow` after them), and the
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
    L("http-request allow if { var(txn.synroute) -m found }")
end

-- The per-request rules, shared by the full frontend and --snippet.
-- Steps 1 and 3 are answered by HAProxy alone; synroute.api.answer says the
-- same for explain (docs/request-targets.md has the table).
local function method_rules(L)
    L("# 0a. No homeserver serves CONNECT or TRACE: Matrix 405.")
    L("http-request return status 405 content-type application/json string " .. MATRIX_405 ..
        " if METH_CONNECT || METH_TRACE")
end

-- Path normalisation, gated by a test on the path.
local function normalise_rules(L)
    L("# 1. Normalise the request before anything looks at it (docs/request-targets.md).")
    L("#    The path only: \"//\", \"/.\", a backslash, or a \"%\" escape other than %21 %23 %24")
    L("#    %3A %40 (! # $ : @ of Matrix IDs, which no rule below changes) decides whether any")
    L("#    rule can change it; most requests have none and skip the rest.")
    L("acl synroute_odd_target path -m sub // /. \\\\")
    L("acl synroute_odd_target path -m reg %(?!21|23|24|3A|40)")
    L("http-request set-var(txn.synroute_norm) bool(1) if synroute_odd_target")
    L("#    The strict rules must not see the query (Synapse accepts a bad escape there):")
    L("#    it is set aside and put back. Escapes of unreserved characters are decoded")
    L("#    BEFORE dot segments are removed (\"%2e%2e\" is \"..\"); a bad escape in the path")
    L("#    is a 400. %2F and %5C stay encoded: data, never a separator (Synapse agrees).")
    L("#    (HAProxy 2.6 and 3.0 ignore the condition of percent-* and path-strip-dotdot")
    L("#    unless their option is given, hence strict/full.)")
    L("http-request set-var(txn.synroute_q) query if { var(txn.synroute_norm) -m bool }")
    L("http-request set-query %[var(txn.synroute_none)] if { var(txn.synroute_q) -m found }")
    for _, r in ipairs({ "percent-decode-unreserved strict", "percent-to-uppercase strict", "path-merge-slashes",
                         "path-strip-dot", "path-strip-dotdot full" }) do
        L("http-request normalize-uri " .. r .. " if { var(txn.synroute_norm) -m bool }")
    end
    L("http-request set-query %[var(txn.synroute_q)] if { var(txn.synroute_q) -m found }")
    L("#    Refused (400): a raw backslash, a dot segment left over, a double-encoded dot,")
    L("#    \"..\" next to an encoded separator, an overlong UTF-8 sequence (never valid)")
    L("acl synroute_bad_path path -m sub \\\\ /./ /../ ..%2F %2F.. ..%5C %5C.. %C0 %C1 %E0%8 %E0%9 %F0%8")
    L("acl synroute_bad_path path -m end /. /..")
    L("acl synroute_bad_path path -m sub -i %252e")
    L("http-request return status 400 content-type application/json string " .. MATRIX_400 ..
        " if { var(txn.synroute_norm) -m bool } synroute_bad_path")
end

-- What Synapse mounts under /_synapse/, one list, plain ACLs (no Lua).
local function internal_rules(dep, L)
    L("# 2. /_synapse/, plain ACLs on the normalised path (this holds without Lua):")
    L("#    client/ is public; admin only from admin_networks (403);")
    if dep.admin_metrics then L("#    metrics likewise (admin_metrics: true);") end
    L("#    everything else (replication, mas, " .. (dep.admin_metrics and "" or "metrics, ") ..
        "any other) is never public: 404.")
    L("acl synroute_internal path_beg -i /_synapse")
    L("acl synroute_public_synapse path_beg /_synapse/client/")
    L("acl synroute_admin_path path /_synapse/admin")
    L("acl synroute_admin_path path_beg /_synapse/admin/")
    local allow = "!synroute_public_synapse !synroute_admin_path"
    if dep.admin_metrics then
        L("acl synroute_metrics_path path /_synapse/metrics")
        allow = allow .. " !synroute_metrics_path"
    end
    L("http-request return status 404 content-type application/json string " .. MATRIX_404 ..
        " if synroute_internal " .. allow)
    local guard = ""
    local acl = values.admin_net_acl(dep)
    if acl then
        L(acl)
        guard = " !synroute_admin_net"
    else
        L("#    (admin_networks is empty: nobody reaches them through the proxy)")
    end
    L("http-request return status 403 content-type application/json string " .. MATRIX_403_ADMIN ..
        " if synroute_admin_path" .. guard)
    if dep.admin_metrics then
        L("http-request return status 403 content-type application/json string " .. MATRIX_403_METRICS ..
            " if synroute_metrics_path" .. guard)
    end
end

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
    method_rules(L)
    fast_path_rules(dep, opts, L)
    normalise_rules(L)
    internal_rules(dep, L)
    L("# 3. One Lua converter decides backend|class|hkey (docs/design.md); the rules after it")
    L("#    read the backend and the class as fields of txn.synroute, the key from a var of its own")
    if dep.mas and dep.mas.resolve then
        L("#    (mas.resolve: the action after the key replaces a mat_ token's key by its user's)")
        L("acl synroute_mat req.fhdr(authorization) -m beg \"Bearer mat_\"")
        L("acl synroute_mat url_param(access_token),url_dec -m beg mat_")
    end
    L('http-request set-var-fmt(txn.synroute_in) "%[method] %[req.fhdr(x-forwarded-for)] %[pathq] %[req.fhdr(authorization)]"')
    L("http-request set-var(txn.synroute) var(txn.synroute_in),lua.synroute")
    L("http-request unset-var(txn.synroute_in)")
    L("http-request set-var(txn.synroute_key)     var(txn.synroute),field(3,|) if !{ var(txn.synroute) -m end | }")
    if dep.mas and dep.mas.resolve then
        L("http-request lua.synroute_mas if { var(txn.synroute),field(2,|) -m str sync initial_sync } synroute_mat")
    end
    L("http-request return status 404 content-type application/json string " .. MATRIX_404 ..
        " if { var(txn.synroute),field(2,|) -m str blocked }")
    per_user_rules(dep, L)
    if opts.test_headers then
        L("# test mode only: tell the client which backend served it")
        L("http-response set-header X-Synroute-Backend %[var(txn.synroute),field(1,|)]")
        L("http-response set-header X-Synroute-Class %[var(txn.synroute),field(2,|)]")
    end
    L("# an absent or unknown backend name falls through to default_backend (main)")
    L("use_backend %[var(txn.synroute),field(1,|)]")
end

local LOG_FORMAT = '"%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %HM %HPO class=%[var(txn.synroute),field(2,|)] backend=%[var(txn.synroute),field(1,|)]"'

local function frontend_section(dep, opts, out)
    out[#out + 1] = "frontend synapse"
    for _, a in ipairs(dep.listen) do out[#out + 1] = "    bind " .. a end
    if dep.log ~= "none" then
        add(out, "    # never logs the query string (access_token) or Authorization", "    log-format " .. LOG_FORMAT)
    end
    frontend_rules(dep, opts, out)
    add(out, "    default_backend main", "")
end

-- metrics: every backend counts its requests per class (synroute.metrics)
local function metrics_track(dep, out)
    if dep.metrics then
        for _, l in ipairs(metrics.TRACK_LINES) do out[#out + 1] = "    " .. l end
    end
end

-- metrics: the frontend that serves them and the counters' table
local function metrics_section(dep, out)
    if not dep.metrics then return end
    for _, l in ipairs(metrics.frontend_lines(dep)) do out[#out + 1] = l end
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
    local id = values.fnv1a(name) % 999983 + 1
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
    out[#out + 1] = "backend " .. word(pool, "the pool name")
    metrics_track(dep, out)
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
    metrics_track(dep, out)
    check_lines(out)
    limit_lines(dep, opts, "main", out)
    add(out, main_server(dep, false) .. maxconn(dep, "main"), "")
    local checked = {}
    for _, pool in ipairs(values.sorted_keys(dep.pools)) do
        pool_backend(dep, opts, pool, checked, out)
    end
    for _, b in ipairs(empty_backends(dep, used)) do
        out[#out + 1] = "backend " .. b
        metrics_track(dep, out)
        add(out, "    # named by the router but no worker serves it: Matrix JSON 503", "")
    end
    rate_backends(dep, out)
end

-- The header's account of the release: "1.67 (probed from http://...)",
-- "conservative: unknown (...)".
function M.version_comment(dep)
    local v, src = dep.synapse_version, dep.synapse_version_source
    if v == require("synroute.routes").CONSERVATIVE or not v then
        return "routes that every release serves on workers (" .. (src or "conservative: unknown") .. ")"
    end
    return v .. " (" .. (src or "given") .. ")"
end

-- opts: target = { haproxy = "3.0", lua = "5.4", source = ... } (synroute.target),
-- glue / errors_dir (as written into the config; default: synroute.paths for
-- the target's Lua), config (SYNROUTE_CONFIG; default dep.file), portable,
-- snippet, test_headers, synapse_version, cmd (recorded in the header and as
-- SYNROUTE_REGENERATE), version (the release the router routes for: recorded),
-- maxmem = { total=, per=, states= } (M.lua_maxmem; absent: 64),
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
    out[#out + 1] = "# Synapse: " .. M.version_comment(dep)
    out[#out + 1] = ""
    if opts.snippet then
        add(out, "# Snippet for an existing frontend (e.g. your TLS one).", "# (a) add to your global section:")
        local g = {}
        global_section(dep, opts, g)
        for i = 2, #g do
            local line = g[i]:gsub("^%s+", "")
            if line ~= "" and line:sub(1, 1) ~= "#" and not line:match("^log ") then out[#out + 1] = "#     " .. line end
        end
        add(out, table.unpack(runtime_lines(dep, true)))
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
        metrics_section(dep, out)
    else
        global_section(dep, opts, out)
        peers_section(dep, out)
        defaults_section(dep, opts, out)
        frontend_section(dep, opts, out)
        backends(dep, opts, out, opts.backends)
        metrics_section(dep, out)
    end
    while out[#out] == "" do out[#out] = nil end
    return table.concat(out, "\n") .. "\n"
end

-- The parser of `synroute haproxy` (synroute.cmdline).
function M.parser()
    local p = cmdline.parser("haproxy", "Generate the HAProxy configuration for a deployment, for the HAProxy " ..
        "(and the Lua inside it) that `haproxy -vv` names: the one in PATH, or $SYNROUTE_HAPROXY_BIN. To generate " ..
        "for another machine, set haproxy: { version: \"3.0\", lua: \"5.4\" } in synroute.yaml or pass " ..
        "--haproxy-version and --lua-version.",
        "The Synapse release comes from --synapse-version, else synapse_version in synroute.yaml, else the " ..
        "running main process; if main cannot be asked, only the routes every release serves on workers go " ..
        "to workers (a warning lists what stays on main). The header of the output names the release and " ..
        "where it came from.")
    cmdline.config_arg(p)
    p:option("-o --output", "Write FILE (- for standard output, the default): FILE.tmp is written next to it, " ..
        "checked with `haproxy -c`, and only then renamed to FILE; on failure FILE is untouched."):argname("FILE")
        :target("outfile")
    p:flag("--no-check", "With -o: do not run `haproxy -c` on the result (e.g. no HAProxy on this machine).")
    p:flag("--reload", "With -o: then reload HAProxy: through its master socket (--master-socket), else with " ..
        "`systemctl reload haproxy` when systemd runs it, else through Debian's /run/haproxy-master.sock.")
    p:option("--master-socket", "The master CLI socket to reload through (haproxy -S PATH).")
        :argname("PATH")
    p:flag("--portable", "Repository mode: paths relative to \"${SYNROUTE_ROOT}\" (a checkout), as the " ..
        "examples are.")
    p:flag("--snippet", "Only the global lines, frontend rules and backends, for an existing (e.g. TLS) frontend.")
    p:option("--root", "Point HAProxy at this synroute checkout."):argname("DIR")
    p:flag("--test-headers", "Add X-Synroute-Backend/-Class response headers (tests only).")
    cmdline.synapse_version(p)
    cmdline.probe(p)
    p:option("--haproxy-version", "The target HAProxy release (2.6 or later)."):argname("V")
    p:option("--lua-version", "The Lua version it embeds (5.3 or 5.4)."):argname("V")
    p:option("--haproxy-bin", "Ask this HAProxy binary (and check the output with it)."):argname("PATH")
    return p
end

-- The options that go together. -> opts | nil, message
local function check_options(opts)
    local err
    opts, err = require("synroute.check").check_version_options(opts)
    if not opts then return nil, err end
    if opts.portable and opts.root then return nil, "give either --portable or --root, not both" end
    if (opts.reload or opts.master_socket) and (not opts.outfile or opts.outfile == "-") then
        return nil, "--reload and --master-socket need -o FILE"
    end
    if opts.master_socket then opts.reload = true end
    return opts
end

-- argv -> opts | nil, exit code (the message is written)
local function parse_args(argv)
    return cmdline.read(M.parser(), argv, check_options)
end

-- The haproxy binary to ask and to check with: --haproxy-bin, else
-- SYNROUTE_HAPROXY_BIN, else nil (the one in PATH)
local function haproxy_bin(opts)
    local env_bin = os.getenv("SYNROUTE_HAPROXY_BIN")
    return opts.haproxy_bin or (env_bin ~= "" and env_bin or nil)
end

-- The target HAProxy and its Lua (synroute.target) | nil (the message is written).
local function resolve_target(dep, opts)
    local tgt, terr = target_mod.resolve{
        haproxy_version = opts.haproxy_version, lua_version = opts.lua_version,
        bin = haproxy_bin(opts), bin_explicit = opts.haproxy_bin ~= nil,
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

-- Standard output, or FILE safely (synroute.writecfg), then --reload.
local function write_output(text, opts)
    local outfile = opts.outfile
    if not outfile or outfile == "-" then
        io.write(text)
        return 0
    end
    local writecfg = require("synroute.writecfg")
    local env = opts.portable and { SYNROUTE_ROOT = paths.root } or nil
    local check = not opts.no_check and not opts.snippet
    local ok, note = writecfg.write(text, outfile, {
        check = check, env = env,
        bin = haproxy_bin(opts),
    })
    if not ok then io.stderr:write("synroute haproxy: ", note, "\n"); return 1 end
    if opts.snippet and not opts.no_check then note = "not checked: a snippet is not a whole configuration" end
    io.stderr:write("wrote ", outfile, " (", note, ")\n")
    if not opts.reload then return 0 end
    local rok, how = writecfg.reload{ master_socket = opts.master_socket }
    if not rok then io.stderr:write("synroute haproxy: ", how, "\n"); return 1 end
    io.stderr:write(how, "\n")
    return 0
end

-- The deployment with its Synapse release chosen. -> dep | nil (written)
local function load_deployment(opts)
    local dep, problems = config.load(opts.config, { synapse_version = opts.synapse_version })
    if not dep then
        for _, p in ipairs(problems) do io.stderr:write(p, "\n") end
        io.stderr:write(#problems, " problem", #problems == 1 and "" or "s", " in ", opts.config,
            "; no HAProxy config written\n")
        return nil
    end
    local ok, verr = require("synroute.version_choice").choose(dep, {
        synapse_version = opts.synapse_version, probe = opts.probe, probe_url = opts.probe_url, out = io.stderr,
    })
    if not ok then
        io.stderr:write("synroute haproxy: ", verr, "; no HAProxy config written\n")
        return nil
    end
    return dep
end

function M.main(argv)
    local opts, code = parse_args(argv or {})
    if not opts then return code end
    local dep = load_deployment(opts)
    if not dep then return 1 end
    opts.target = resolve_target(dep, opts)
    if not opts.target then return 1 end
    local cmd = { "synroute haproxy" }
    local ok, rc
    if opts.portable then ok, rc = portable_paths(dep, opts, cmd)
    else ok, rc = local_paths(dep, opts, opts.target, cmd) end
    if not ok then return rc end
    opts.cmd = recorded_cmd(opts, cmd)
    opts.system = paths.mode == "installed" and not opts.portable and not opts.root
    -- The router must build for this deployment too (same check HAProxy does at start).
    local eng, err = api.new({ dep = dep })
    if not eng then io.stderr:write(tostring(err), "\n"); return 1 end
    opts.backends, opts.version, opts.engine = eng.backends, eng.version, eng
    local total, per, states = M.lua_maxmem(dep, eng.version)
    if not total then io.stderr:write(dep.file, ":1: ", per, "\n"); return 1 end
    opts.maxmem = { total = total, per = per, states = states }
    for _, w in ipairs(dep.warnings) do io.stderr:write("warning: ", w, "\n") end
    if opts.probe then
        for _, p in ipairs(require("synroute.probe").health(dep)) do io.stderr:write("warning: ", p, "\n") end
    end
    local gok, text = pcall(M.generate, dep, opts)
    if not gok then io.stderr:write(tostring(text), "\n"); return 1 end
    return write_output(text, opts)
end

return M
