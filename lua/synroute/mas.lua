-- synroute.mas - optional resolution of MAS (Matrix Authentication Service)
-- access tokens to a user, so that a user whose `mat_` token rotates (every
-- 5 minutes by default) keeps one sync worker.
--
-- A `mat_` token carries no user; without resolution the router keys such a
-- request by a hash of the token (key kind token-hash), which changes on every
-- refresh. With resolution on, an HTTP action asks main who the token belongs
-- to (GET /_matrix/client/v3/account/whoami), caches the answer per token hash
-- and sets txn.synroute_key = router:hkey("user", localpart): the same key a
-- `syt_` token of that user gets.
--
-- Everything here runs without HAProxy: the resolver takes a fetch function and
-- a clock, the action takes a txn-like object (tests/lua/test_mas.lua).
--
--   local mas = require("synroute.mas")
--   mas.is_access_token(tok)           -> bool (a plausible `mat_` token)
--   mas.cache(size)                    -> LRU cache with per-entry expiry
--       c:get(key, now) -> value | nil ; c:set(key, value, expires) ; c:count()
--   mas.resolver{ fetch=, now=, cache_key=, cache_size=, ttl=, negative_ttl=, max_inflight= }
--       fetch(token)  -> status, body | nil, err   (may raise; may yield)
--       now()         -> seconds (any monotonic-enough number)
--       cache_key(tk) -> keyed hash of the token (never the token)
--       r:resolve(token) -> localpart, "hit"|"fetched"
--                         | nil, reason, fetched (fetched: a request to main failed now)
--   mas.action(resolver, router, log) -> function(txn)  (the HAProxy action body)
--   mas.whoami_target(dep.main)        -> { url=, dst=nil|"unix@path" } | nil, err
--   mas.httpclient_fetch(core, target, timeout_ms) -> fetch function using core.httpclient
--   mas.setup(core, eng) -> action function, description   (used by haproxy.lua)
--
-- Which token a request carries and the localpart of a user ID follow the
-- router's own rules: synroute.token and synroute.localpart (the C module).
-- The whoami answer is decoded by lua-cjson.
--
-- Failure of any kind (main down, 401, bad JSON, timeout, a bug) leaves
-- txn.synroute_key as the converter set it (the token hash): the request is
-- still routed, only not by user. Failures are cached for negative_ttl
-- (10 s) so a bad token does not hit main on every request, and a transport
-- failure or 5xx from main pauses all lookups for negative_ttl (so a main
-- that is down costs at most one timeout per negative_ttl, not one per
-- request). The raw token is never stored, logged or put in a variable: the
-- cache is keyed by a keyed hash, log lines never contain it.
--
-- A cached user lives `ttl` (300 s) from the first lookup of that token, i.e.
-- no longer than a MAS access token; a revoked token may keep its user key
-- until then, which only affects routing (Synapse still authenticates every
-- request). Two requests with a new token at the same moment may both ask
-- main (no coalescing; max_inflight bounds the concurrent lookups).

local cjson = require("cjson.safe")
local synroute = require("synroute")
local values = require("synroute.values")

local M = {}

M.DEFAULT_CACHE_SIZE = 10000
M.DEFAULT_TTL = 300            -- seconds: MAS access tokens live 5 minutes by default
M.DEFAULT_NEGATIVE_TTL = 10    -- seconds: failures are retried soon
M.DEFAULT_TIMEOUT_MS = 2000
M.DEFAULT_MAX_INFLIGHT = 64    -- concurrent whoami requests; more fall back to the token hash
M.WHOAMI_PATH = "/_matrix/client/v3/account/whoami"
local MAX_TOKEN = 255
local MAX_BODY = 65536

--------------------------------------------------------------------------
-- small pure helpers

-- A `mat_` access token we are willing to send in a header: bounded length,
-- token68 characters only (MAS uses letters, digits and '_').
function M.is_access_token(tok)
    return type(tok) == "string" and #tok > 4 and #tok <= MAX_TOKEN
        and tok:sub(1, 4) == "mat_" and tok:find("^mat_[%w%-%._~%+/]+=*$") ~= nil
end

-- Remove every occurrence of secret from msg (for log lines built from
-- error messages we do not control).
local function scrub(msg, secret)
    msg = tostring(msg)
    if type(secret) == "string" and #secret > 0 then
        local i = msg:find(secret, 1, true)
        while i do
            msg = msg:sub(1, i - 1) .. "<token>" .. msg:sub(i + #secret)
            i = msg:find(secret, i + 7, true)
        end
    end
    -- anything that looks like a Synapse or MAS token, known or not
    msg = msg:gsub("%f[%w](m[aecp][trt])_[%w%-%._~%+/]+", "%1_<token>")
    msg = msg:gsub("%f[%w](sy[tr])_[%w%-%._~%+/]+", "%1_<token>")
    msg = msg:gsub("(Bearer )[^%s]+", "%1<token>")
    -- one line, bounded
    msg = msg:gsub("[%c]", " ")
    if #msg > 200 then msg = msg:sub(1, 200) .. "..." end
    return msg
end
M.scrub = scrub

--------------------------------------------------------------------------
-- LRU cache with expiry: a hash map key -> slot, and a doubly linked list of
-- slots (most recently used first) kept in parallel arrays (about 250 bytes
-- an entry instead of a table per entry). Slot 0 is the list's sentinel.
-- get, set, remove and eviction are O(1).

local Cache = {}
Cache.__index = Cache

function M.cache(size)
    if math.type(size) ~= "integer" or size < 1 then
        error("mas.cache: size must be a positive integer", 2)
    end
    return setmetatable({
        size = size, count_ = 0, used = 0, evictions = 0,
        map = {},                 -- key -> slot
        key = {}, val = {}, exp = {},
        prv = { [0] = 0 }, nxt = { [0] = 0 },
        free = {},                -- slots given back by remove()
    }, Cache)
end

local function unlink(c, i)
    local p, n = c.prv[i], c.nxt[i]
    c.nxt[p] = n
    c.prv[n] = p
end

local function push_front(c, i)
    local first = c.nxt[0]
    c.nxt[i] = first
    c.prv[i] = 0
    c.prv[first] = i
    c.nxt[0] = i
end

local function drop(c, i)
    unlink(c, i)
    c.map[c.key[i]] = nil
    c.key[i], c.val[i] = false, false
    c.count_ = c.count_ - 1
end

function Cache:remove(key)
    local i = self.map[key]
    if i then
        drop(self, i)
        self.free[#self.free + 1] = i
    end
end

-- value (may be false) if present and not expired, else nil
function Cache:get(key, now)
    local i = self.map[key]
    if not i then return nil end
    if now >= self.exp[i] then
        self:remove(key)
        return nil
    end
    if self.nxt[0] ~= i then
        unlink(self, i)
        push_front(self, i)
    end
    return self.val[i]
end

function Cache:set(key, val, expires)
    local i = self.map[key]
    if i then
        self.val[i], self.exp[i] = val, expires
        if self.nxt[0] ~= i then
            unlink(self, i)
            push_front(self, i)
        end
        return
    end
    if self.count_ >= self.size then
        i = self.prv[0]                   -- least recently used
        drop(self, i)
        self.evictions = self.evictions + 1
    elseif #self.free > 0 then
        i = self.free[#self.free]
        self.free[#self.free] = nil
    else
        self.used = self.used + 1
        i = self.used
    end
    self.key[i], self.val[i], self.exp[i] = key, val, expires
    push_front(self, i)
    self.map[key] = i
    self.count_ = self.count_ + 1
end

function Cache:count()
    return self.count_
end

-- keys from most to least recently used (tests)
function Cache:keys()
    local out, i = {}, self.nxt[0]
    while i ~= 0 do
        out[#out + 1] = self.key[i]
        i = self.nxt[i]
    end
    return out
end

-- every stored key and value (tests: nothing raw is stored)
function Cache:entries()
    local out = {}
    for k, i in pairs(self.map) do
        out[#out + 1] = { k, self.val[i] }
    end
    return out
end

--------------------------------------------------------------------------
-- resolver

local Resolver = {}
Resolver.__index = Resolver

local function positive_number(v, name, default)
    if v == nil then return default end
    if type(v) ~= "number" or v <= 0 then
        error("mas.resolver: " .. name .. " must be a positive number", 3)
    end
    return v
end

function M.resolver(opts)
    if type(opts) ~= "table" or type(opts.fetch) ~= "function"
            or type(opts.now) ~= "function" or type(opts.cache_key) ~= "function" then
        error("mas.resolver: needs fetch, now and cache_key functions", 2)
    end
    local size = opts.cache_size or M.DEFAULT_CACHE_SIZE
    if math.type(size) ~= "integer" or size < 1 then
        error("mas.resolver: cache_size must be a positive integer", 2)
    end
    return setmetatable({
        fetch = opts.fetch,
        now = opts.now,
        cache_key = opts.cache_key,
        ttl = positive_number(opts.ttl, "ttl", M.DEFAULT_TTL),
        negative_ttl = positive_number(opts.negative_ttl, "negative_ttl", M.DEFAULT_NEGATIVE_TTL),
        max_inflight = positive_number(opts.max_inflight, "max_inflight", M.DEFAULT_MAX_INFLIGHT),
        cache = M.cache(size),
        inflight = 0,
        down_until = nil,
        stats = { hits = 0, negative_hits = 0, fetches = 0, resolved = 0, failures = 0,
                  backoff = 0, busy = 0 },
    }, Resolver)
end

-- status, body -> localpart | nil, reason, main_unavailable
local function interpret(status, body)
    if math.type(status) ~= "integer" and type(status) == "number" then
        status = math.tointeger(status)
    end
    if type(status) ~= "number" or status <= 0 then
        return nil, "no answer from main", true
    end
    if status >= 500 then
        return nil, "whoami: HTTP " .. status, true
    end
    if status ~= 200 then
        return nil, "whoami: HTTP " .. status
    end
    if type(body) ~= "string" or #body > MAX_BODY then
        return nil, "whoami: no usable body"
    end
    local doc = cjson.decode(body)
    if type(doc) ~= "table" then
        return nil, "whoami: body is not a JSON object"
    end
    local lp = type(doc.user_id) == "string" and synroute.localpart(doc.user_id)
    if not lp then
        return nil, "whoami: no usable user_id"
    end
    return lp
end

function Resolver:resolve(token)
    if not M.is_access_token(token) then
        return nil, "not a MAS access token"
    end
    local st = self.stats
    local key = self.cache_key(token)
    local now = self.now()
    local v = self.cache:get(key, now)
    if v then
        st.hits = st.hits + 1
        return v, "hit"
    elseif v == false then
        st.negative_hits = st.negative_hits + 1
        return nil, "failed recently (cached)"
    end
    if self.down_until and now < self.down_until then
        st.backoff = st.backoff + 1
        return nil, "main unavailable recently, not asking"
    end
    if self.inflight >= self.max_inflight then
        st.busy = st.busy + 1
        return nil, "too many whoami requests in flight"
    end
    st.fetches = st.fetches + 1
    self.inflight = self.inflight + 1
    local ok, status, body = pcall(self.fetch, token)
    self.inflight = self.inflight - 1
    now = self.now()
    local lp, why, down
    if ok then
        if status == nil then
            why, down = "no answer from main: " .. scrub(body, token), true
        else
            lp, why, down = interpret(status, body)
        end
    else
        why, down = "whoami request failed: " .. scrub(status, token), true
    end
    if lp then
        st.resolved = st.resolved + 1
        self.cache:set(key, lp, now + self.ttl)
        return lp, "fetched"
    end
    st.failures = st.failures + 1
    self.cache:set(key, false, now + self.negative_ttl)
    if down then
        self.down_until = now + self.negative_ttl
    end
    return nil, why, true
end

--------------------------------------------------------------------------
-- the HAProxy action body. txn needs: txn.f:req_fhdr(name), txn.f:query(),
-- txn:set_var(name, value). Never raises; leaves txn.synroute_key alone
-- unless the user is known. Sets txn.synroute_mas to what happened:
-- user (resolved now) | cached (from the cache) | token-hash (not resolved) |
-- skipped (the router's token is not a mat_ token).

function M.action(resolver, router, log)
    log = log or function() end
    return function(txn)
        local token
        local ok, err = pcall(function()
            local auth = txn.f:req_fhdr("authorization")
            local query = txn.f:query()
            token = synroute.token(auth, query)
            if not M.is_access_token(token) then
                txn:set_var("txn.synroute_mas", "skipped")
                return
            end
            local lp, how, fetched = resolver:resolve(token)
            if lp then
                txn:set_var("txn.synroute_key", router:hkey("user", lp))
                txn:set_var("txn.synroute_mas", how == "hit" and "cached" or "user")
            else
                txn:set_var("txn.synroute_mas", "token-hash")
                if fetched then
                    pcall(log, txn, "synroute: MAS token not resolved (key stays the token hash): " .. scrub(how, token))
                end
            end
        end)
        if not ok then
            pcall(log, txn, "synroute: MAS resolution error (key unchanged): " .. scrub(err, token))
        end
    end
end

--------------------------------------------------------------------------
-- HAProxy wiring

-- HAProxy 2.6's httpclient retries a request 3 times (4 attempts), each
-- with `timeout` as its server timeout, and 2.6 has no setting to change
-- that (measured with 2.6.12: a whoami that never answers took 4 x timeout).
-- So each attempt gets a quarter of the configured budget: a slow main costs
-- a lookup at most `timeout`. A main that refuses connections costs about
-- 3 s (HAProxy waits about 1 s before each retry), paid by one request per
-- negative_ttl thanks to the backoff.
M.HTTPCLIENT_ATTEMPTS = 4

-- fetch(token) over core.httpclient (HAProxy >= 2.5; yields while waiting).
-- target = { url =, dst = nil | "unix@/path" }
function M.httpclient_fetch(core, target, timeout_ms)
    local per_attempt = math.max(1, timeout_ms // M.HTTPCLIENT_ATTEMPTS)
    local url, dst = target.url, target.dst
    return function(token)
        local hc = core.httpclient()
        local res = hc:get{
            url = url,
            dst = dst,
            headers = { ["authorization"] = { "Bearer " .. token } },
            timeout = per_attempt,
        }
        if type(res) ~= "table" then
            return nil, "no response"
        end
        return res.status, res.body
    end
end

-- Where to ask whoami, from dep.main: { url =, dst = } (dst for a unix socket).
function M.whoami_target(main)
    if type(main) ~= "table" then return nil, "no main in the deployment" end
    if type(main.path) == "string" and main.path ~= "" then
        return { url = "http://localhost" .. M.WHOAMI_PATH, dst = "unix@" .. main.path }
    end
    local h, port = main.host, math.tointeger(tonumber(main.port))
    if type(h) ~= "string" or h == "" or not port then
        return nil, "main has no address (host and port, or path) to ask whoami"
    end
    return { url = "http://" .. values.host_port(h, port) .. M.WHOAMI_PATH }
end

-- eng = synroute.api engine with eng.dep.mas.resolve true. Returns the action
-- function and a one-line description, or raises (load time) on a bad setting.
function M.setup(core, eng)
    local dep = eng.dep
    local conf = dep.mas
    local target, terr0 = M.whoami_target(dep.main)
    if not target then
        error("synroute: mas.resolve: " .. terr0, 0)
    end
    local secs = values.duration(conf.timeout or (M.DEFAULT_TIMEOUT_MS .. "ms"))
    local timeout_ms = secs and math.floor(secs * 1000)
    if not timeout_ms or timeout_ms < 1 then
        error("synroute: mas.timeout: expected a duration like 2s", 0)
    end
    local router = eng.router
    local resolver = M.resolver{
        fetch = M.httpclient_fetch(core, target, timeout_ms),
        now = function()
            local t = core.now()
            return t.sec + t.usec / 1e6
        end,
        cache_key = function(token) return router:hkey("token-hash", token) end,
        cache_size = conf.cache_size,
    }
    local function log(txn, msg)
        if not pcall(txn.Warning, txn, msg) then
            core.Warning(msg)
        end
    end
    package.loaded["synroute.haproxy.mas_resolver"] = resolver
    return M.action(resolver, router, log),
        string.format("MAS token resolution via %s%s (timeout %d ms, cache %d entries, ttl %g s)",
            target.url, target.dst and (" at " .. target.dst) or "", timeout_ms,
            resolver.cache.size, resolver.ttl)
end

return M
