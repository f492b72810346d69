-- tests/lua/test_mas.lua - unit tests of lua/synroute/mas.lua (MAS token
-- resolution) with an injected fetch function and clock, a fake txn
-- for the action, and a fake `core` for the glue's registration. Runs under
-- lua5.4 and lua5.3 (tests/lua/run.sh). Prints ok/FAIL lines.
-- usage: lua test_mas.lua [NAME_PREFIX]

local prefix = (arg and arg[1] or "lua") .. "/mas"
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local root = here .. "/../.."

local kit = dofile(here .. "/testkit.lua")(prefix)
local check, eq = kit.check, kit.eq

local mas = require("synroute.mas")
local api = require("synroute.api")
local synroute = require("synroute")

-- tokens: two rotating MAS tokens of one user, and a syt_ token of the same user
local MAT1 = "mat_gaKjIg8xNbe3nNyjOq9wMxEhh2FDEE_3kV79T"
local MAT2 = "mat_Q2vJ8sLr0PzX5mHkT1yWcA9bNdEe7f_2Yh5Ka"
local MAT_BAD = "mat_ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ_000000"
local SYT_ALICE = "syt_YWxpY2U_rXzmDkPBrbqQOXmJJMdg_0lW9Pa"
local WHOAMI_ALICE = '{"user_id":"@alice:hs.example","device_id":"DEV1","is_guest":false}'

---------------------------------------------------------------- helpers
eq("duration/s", mas.duration_ms("2s"), 2000)
eq("duration/ms", mas.duration_ms("500ms"), 500)
eq("duration/bare-is-ms", mas.duration_ms("750"), 750)
eq("duration/m", mas.duration_ms("1m"), 60000)
eq("duration/integer", mas.duration_ms(1500), 1500)
eq("duration/bad-unit", (mas.duration_ms("2x")), nil)
eq("duration/zero", (mas.duration_ms("0s")), nil)
eq("duration/negative", (mas.duration_ms(-1)), nil)
eq("duration/us-too-small", (mas.duration_ms("10us")), nil)

eq("localpart/plain", mas.localpart("@alice:hs.example"), "alice")
eq("localpart/port", mas.localpart("@bob.x=y:hs.example:8448"), "bob.x=y")
eq("localpart/no-at", mas.localpart("alice:hs.example"), nil)
eq("localpart/no-server", mas.localpart("@alice"), nil)
eq("localpart/empty", mas.localpart("@:hs.example"), nil)
eq("localpart/space", mas.localpart("@a b:hs.example"), nil)
eq("localpart/control", mas.localpart("@a\nb:hs.example"), nil)
eq("localpart/not-string", mas.localpart(42), nil)
eq("localpart/too-long", mas.localpart("@" .. string.rep("a", 256) .. ":hs"), nil)

check("token/mat", mas.is_access_token(MAT1))
check("token/not-syt", not mas.is_access_token(SYT_ALICE))
check("token/no-crlf", not mas.is_access_token("mat_abc\r\nX-Evil: 1"))
check("token/no-space", not mas.is_access_token("mat_abc def"))
check("token/not-bare-prefix", not mas.is_access_token("mat_"))
check("token/bounded", not mas.is_access_token("mat_" .. string.rep("a", 300)))
check("token/not-refresh", not mas.is_access_token("mar_gaKjIg8xNbe3nNyjOq9wMxEhh2FDEE_3kV79T"))

-- same precedence as the router (sr_token_find)
eq("token_from/header", mas.token_from("Bearer " .. MAT1, nil), MAT1)
eq("token_from/header-wins", mas.token_from("Bearer " .. SYT_ALICE, "access_token=" .. MAT1), SYT_ALICE)
eq("token_from/query", mas.token_from(nil, "since=1&access_token=" .. MAT1), MAT1)
eq("token_from/query-form-decoded", mas.token_from(nil, "access_token=mat%5Fabc%2Bd"), "mat_abc+d")
eq("token_from/bad-header-falls-to-query", mas.token_from("Bearer a b", "access_token=" .. MAT1), MAT1)
eq("token_from/scheme-case-sensitive", mas.token_from("bearer " .. MAT1, nil), nil)
eq("token_from/none", mas.token_from(nil, "since=1"), nil)
eq("token_from/empty-query-value", mas.token_from(nil, "access_token="), nil)

eq("scrub/removes", mas.scrub("x " .. MAT1 .. " y " .. MAT1, MAT1), "x <token> y <token>")
eq("scrub/one-line", mas.scrub("a\nb", MAT1), "a b")
eq("scrub/unknown-tokens", mas.scrub("x mat_abc1 syt_YWxp_x Bearer zz9 mar_q", nil),
    "x mat_<token> syt_<token> Bearer <token> mar_<token>")

---------------------------------------------------------------- cache
do
    local c = mas.cache(3)
    c:set("a", 1, 100); c:set("b", 2, 100); c:set("c", 3, 100)
    eq("cache/get", c:get("a", 0), 1)            -- a is now most recent
    c:set("d", 4, 100)                           -- evicts the least recent: b
    eq("cache/lru-evicts-least-recent", c:get("b", 0), nil)
    eq("cache/lru-keeps-used", c:get("a", 0), 1)
    eq("cache/bounded", c:count(), 3)
    eq("cache/evictions", c.evictions, 1)
    eq("cache/order", table.concat(c:keys(), ","), "a,d,c")
    eq("cache/expired", c:get("c", 100), nil)
    eq("cache/expired-removed", c:count(), 2)
    c:set("a", false, 200)
    eq("cache/false-kept", c:get("a", 150), false)
    eq("cache/update-no-growth", c:count(), 2)
    c:remove("d")
    eq("cache/remove", c:count(), 1)
    c:set("e", 5, 300); c:set("f", 6, 300)
    eq("cache/slots-reused", c.used, 3)
    eq("cache/order-after-reuse", table.concat(c:keys(), ","), "f,e,a")
    local ok = pcall(mas.cache, 0)
    check("cache/size-checked", not ok)

    -- against a naive model (a list, most recent first), random operations
    local model, mc, bad = {}, mas.cache(50), nil
    local function mfind(k) for i, e in ipairs(model) do if e.k == k then return i end end end
    local seed = 12345
    local function rnd(n) seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n end
    for step = 1, 20000 do
        local k, now = "k" .. rnd(120), step
        local op = rnd(10)
        if op < 5 then
            local got = mc:get(k, now)
            local i, want = mfind(k), nil
            if i then
                if now >= model[i].e then table.remove(model, i)
                else want = model[i].v; table.insert(model, 1, table.remove(model, i)) end
            end
            if got ~= want then bad = "step " .. step .. " get " .. k; break end
        elseif op < 9 then
            local v, e = (rnd(3) == 0) and false or ("v" .. step), now + rnd(400)
            mc:set(k, v, e)
            local i = mfind(k)
            if i then table.remove(model, i)
            elseif #model >= 50 then table.remove(model) end
            table.insert(model, 1, { k = k, v = v, e = e })
        else
            mc:remove(k)
            local i = mfind(k)
            if i then table.remove(model, i) end
        end
        if mc:count() ~= #model then bad = "step " .. step .. " count"; break end
    end
    if not bad then
        local keys = mc:keys()
        for i, e in ipairs(model) do if keys[i] ~= e.k then bad = "final order" end end
    end
    check("cache/matches-model", bad == nil, bad)

    -- O(1): 200k operations on a full cache of 1000 stay fast and bounded
    local big = mas.cache(1000)
    local t0 = os.clock()
    for i = 1, 200000 do
        big:set(i % 5000, i, 1e9)
        big:get((i * 7) % 5000, 0)
    end
    local dt = os.clock() - t0
    eq("cache/bounded-under-churn", big:count(), 1000)
    check("cache/fast", dt < 2, string.format("%.2f s for 400k operations", dt))
end

---------------------------------------------------------------- resolver
local eng = assert(api.new{ pools = "all" })
local router = eng.router

-- a stand-in main: answers per token; counts calls; remembers every token it saw
local function fake_main(answers)
    local m = { calls = 0, seen = {} }
    m.fetch = function(token)
        m.calls = m.calls + 1
        m.seen[#m.seen + 1] = token
        local a = answers[token]
        if a == nil then return 401, '{"errcode":"M_UNKNOWN_TOKEN"}' end
        if type(a) == "function" then return a(token) end
        return a[1], a[2]
    end
    return m
end

local function new_resolver(main, clock, extra)
    local o = {
        fetch = main.fetch,
        now = function() return clock.t end,
        cache_key = function(tok) return router:hkey("token-hash", tok) end,
    }
    for k, v in pairs(extra or {}) do o[k] = v end
    return mas.resolver(o)
end

do
    local clock = { t = 1000 }
    local main = fake_main{ [MAT1] = { 200, WHOAMI_ALICE }, [MAT2] = { 200, WHOAMI_ALICE } }
    local r = new_resolver(main, clock)
    eq("resolver/defaults-ttl", r.ttl, 300)
    eq("resolver/defaults-negative-ttl", r.negative_ttl, 10)
    eq("resolver/defaults-size", r.cache.size, 10000)

    local lp, how = r:resolve(MAT1)
    eq("resolver/miss-fetches", main.calls, 1)
    eq("resolver/miss-localpart", lp, "alice")
    eq("resolver/miss-how", how, "fetched")
    lp, how = r:resolve(MAT1)
    eq("resolver/hit-no-fetch", main.calls, 1)
    eq("resolver/hit-localpart", lp, "alice")
    eq("resolver/hit-how", how, "hit")

    clock.t = 1000 + 299
    r:resolve(MAT1)
    eq("resolver/hit-before-expiry", main.calls, 1)
    clock.t = 1000 + 300
    lp = r:resolve(MAT1)
    eq("resolver/expiry-refetches", main.calls, 2)
    eq("resolver/expiry-localpart", lp, "alice")

    -- the rotated token of the same user resolves to the same user
    eq("resolver/rotated-same-user", (r:resolve(MAT2)), "alice")

    -- never the raw token in the cache, keys or values
    local leak = false
    local entries = r.cache:entries()
    for _, e in ipairs(entries) do
        local k, v = tostring(e[1]), tostring(e[2])
        if k:find("mat_", 1, true) or v:find("mat_", 1, true) then leak = true end
        if not k:match("^[0-9a-f]+$") or #k ~= 16 then leak = true end
    end
    for _, list in ipairs{ r.cache.key, r.cache.val } do
        for _, s in pairs(list) do
            if tostring(s):find("mat_", 1, true) then leak = true end
        end
    end
    check("resolver/entries-listed", #entries == 2, #entries)
    check("resolver/no-raw-token-stored", not leak, "a cache key or value holds a token")

    -- not a MAS token: no request
    local n = main.calls
    eq("resolver/syt-not-resolved", (r:resolve(SYT_ALICE)), nil)
    eq("resolver/syt-no-fetch", main.calls, n)
end

do -- negative cache: a 401 is retried only after 10 s
    local clock = { t = 0 }
    local main = fake_main{}
    local r = new_resolver(main, clock)
    local lp, why, fetched = r:resolve(MAT_BAD)
    eq("negative/first-fails", lp, nil)
    eq("negative/first-reason", why, "whoami: HTTP 401")
    eq("negative/first-fetched", fetched, true)
    clock.t = 9.9
    lp, why, fetched = r:resolve(MAT_BAD)
    eq("negative/cached", main.calls, 1)
    eq("negative/cached-not-fetched", fetched, nil)
    clock.t = 10
    r:resolve(MAT_BAD)
    eq("negative/retried-after-ttl", main.calls, 2)
    -- a 401 does not stop other lookups
    r.fetch = fake_main{ [MAT1] = { 200, WHOAMI_ALICE } }.fetch
    eq("negative/401-no-backoff", (r:resolve(MAT1)), "alice")
end

do -- bad answers are failures (negative), never raise
    local clock = { t = 0 }
    local cases = {
        { "bad-json", 200, "{not json" },
        { "not-object", 200, '"@alice:hs"' },
        { "no-user-id", 200, '{"device_id":"D"}' },
        { "user-id-number", 200, '{"user_id":5}' },
        { "bad-user-id", 200, '{"user_id":"alice"}' },
        { "no-body", 200, nil },
        { "huge-body", 200, string.rep(" ", 70000) .. "{}" },
        { "403", 403, WHOAMI_ALICE },
        { "429", 429, '{"errcode":"M_LIMIT_EXCEEDED"}' },
    }
    for _, c in ipairs(cases) do
        local main = fake_main{ [MAT1] = { c[2], c[3] } }
        local r = new_resolver(main, clock)
        local ok, lp, why = pcall(r.resolve, r, MAT1)
        check("bad-answer/" .. c[1], ok and lp == nil and type(why) == "string"
            and r.cache:get(router:hkey("token-hash", MAT1), 0) == false,
            tostring(ok) .. " " .. tostring(lp) .. " " .. tostring(why))
    end
end

do -- main down / 5xx / fetch raising: back off for negative_ttl, then retry
    local clock = { t = 0 }
    local main = fake_main{ [MAT1] = { nil, "connection refused" }, [MAT2] = { 200, WHOAMI_ALICE } }
    local r = new_resolver(main, clock)
    local lp, why, fetched = r:resolve(MAT1)
    check("down/fails", lp == nil and fetched == true and why:find("no answer", 1, true) ~= nil, why)
    clock.t = 5
    lp, why = r:resolve(MAT2)
    eq("down/backoff-no-fetch", main.calls, 1)
    check("down/backoff-reason", lp == nil and why:find("not asking", 1, true) ~= nil, why)
    clock.t = 10
    eq("down/retried-after-backoff", (r:resolve(MAT2)), "alice")

    local main5 = fake_main{ [MAT1] = { 502, "bad gateway" }, [MAT2] = { 200, WHOAMI_ALICE } }
    local r5 = new_resolver(main5, { t = 0 })
    r5:resolve(MAT1)
    r5:resolve(MAT2)
    eq("down/5xx-backs-off", main5.calls, 1)

    local mainx = fake_main{ [MAT1] = function(tok) error("boom with " .. tok) end }
    local rx = new_resolver(mainx, { t = 0 })
    local ok, lp2, why2 = pcall(rx.resolve, rx, MAT1)
    check("down/fetch-raises-no-raise", ok and lp2 == nil, tostring(lp2))
    check("down/fetch-error-scrubbed", ok and type(why2) == "string" and not why2:find(MAT1, 1, true)
        and why2:find("<token>", 1, true) ~= nil, why2)
end

do -- bounded size
    local clock = { t = 0 }
    local answers = {}
    local toks = {}
    for i = 1, 5 do
        toks[i] = string.format("mat_%030d_ABCDEF", i)
        answers[toks[i]] = { 200, '{"user_id":"@u' .. i .. ':hs"}' }
    end
    local main = fake_main(answers)
    local r = new_resolver(main, clock, { cache_size = 3 })
    for i = 1, 5 do r:resolve(toks[i]) end
    eq("bounded/count", r.cache:count(), 3)
    eq("bounded/evictions", r.cache.evictions, 2)
    r:resolve(toks[5])
    eq("bounded/recent-kept", main.calls, 5)
    r:resolve(toks[1])
    eq("bounded/oldest-evicted-refetched", main.calls, 6)
end

do -- too many lookups in flight: fall back, do not queue
    local main = fake_main{ [MAT1] = { 200, WHOAMI_ALICE } }
    local r = new_resolver(main, { t = 0 }, { max_inflight = 2 })
    r.inflight = 2
    local lp, why = r:resolve(MAT1)
    check("inflight/limit", lp == nil and main.calls == 0, why)
    r.inflight = 0
    eq("inflight/after", (r:resolve(MAT1)), "alice")
    local re = fake_main{ [MAT1] = function() error("x") end }
    local r2 = new_resolver(re, { t = 0 })
    r2:resolve(MAT1)
    eq("inflight/released-on-error", r2.inflight, 0)
end

do -- resolver options are checked
    check("options/need-fetch", not pcall(mas.resolver, { now = os.time, cache_key = tostring }))
    check("options/bad-size", not pcall(mas.resolver, { fetch = print, now = os.time, cache_key = tostring, cache_size = 0 }))
    check("options/bad-ttl", not pcall(mas.resolver, { fetch = print, now = os.time, cache_key = tostring, ttl = -1 }))
end

---------------------------------------------------------------- action (fake txn)
local function fake_txn(auth, query, key)
    local t = { vars = { ["txn.synroute_key"] = key } }
    t.f = {
        req_fhdr = function(_, name) assert(name == "authorization"); return auth end,
        query = function() return query end,
    }
    function t:set_var(name, v) self.vars[name] = v end
    return t
end

do
    local clock = { t = 0 }
    local main = fake_main{ [MAT1] = { 200, WHOAMI_ALICE }, [MAT2] = { 200, WHOAMI_ALICE } }
    local r = new_resolver(main, clock)
    local logs = {}
    local act = mas.action(r, router, function(_, msg) logs[#logs + 1] = msg end)

    local syt_hash = eng:explain{ method = "GET", target = "/_matrix/client/v3/sync?since=s",
        headers = { "Authorization: Bearer " .. SYT_ALICE } }.hash
    local mat_hash = eng:explain{ method = "GET", target = "/_matrix/client/v3/sync?since=s",
        headers = { "Authorization: Bearer " .. MAT1 } }.hash
    check("action/precondition-hashes-differ", syt_hash ~= mat_hash)

    local t1 = fake_txn("Bearer " .. MAT1, "since=s", mat_hash)
    act(t1)
    eq("action/header-key-is-user-key", t1.vars["txn.synroute_key"], syt_hash)
    eq("action/header-state", t1.vars["txn.synroute_mas"], "user")

    local t2 = fake_txn(nil, "since=s&access_token=" .. MAT2, "x")
    act(t2)
    eq("action/query-key-is-user-key", t2.vars["txn.synroute_key"], syt_hash)
    local t3 = fake_txn("Bearer " .. MAT1, "since=t", "x")
    act(t3)
    eq("action/cached-state", t3.vars["txn.synroute_mas"], "cached")
    eq("action/cached-key", t3.vars["txn.synroute_key"], syt_hash)

    -- the router's token is a syt_ token: nothing to do
    local t4 = fake_txn("Bearer " .. SYT_ALICE, "access_token=" .. MAT1, "keep")
    act(t4)
    eq("action/syt-header-wins", t4.vars["txn.synroute_key"], "keep")
    eq("action/syt-skipped", t4.vars["txn.synroute_mas"], "skipped")

    -- failure: key unchanged, logged once without the token
    local t5 = fake_txn("Bearer " .. MAT_BAD, nil, "keep")
    act(t5)
    eq("action/failure-key-unchanged", t5.vars["txn.synroute_key"], "keep")
    eq("action/failure-state", t5.vars["txn.synroute_mas"], "token-hash")
    eq("action/failure-logged", #logs, 1)
    act(fake_txn("Bearer " .. MAT_BAD, nil, "keep"))
    eq("action/negative-hit-not-logged", #logs, 1)
    local leaked = false
    for _, l in ipairs(logs) do if l:find(MAT_BAD, 1, true) then leaked = true end end
    check("action/log-without-token", not leaked, logs[1])

    -- a broken txn, a raising fetch, a raising logger: the action never raises
    local broken = { f = setmetatable({}, { __index = function() error("no fetches " .. MAT1) end }) }
    local ok = pcall(act, broken)
    check("action/broken-txn-no-raise", ok)
    check("action/broken-txn-logged-scrubbed", #logs == 2 and not logs[#logs]:find(MAT1, 1, true), logs[#logs])
    local rr = new_resolver(fake_main{ [MAT1] = function() error("fail") end }, clock)
    local act2 = mas.action(rr, router, function() error("logger down") end)
    local t6 = fake_txn("Bearer " .. MAT1, nil, "keep")
    ok = pcall(act2, t6)
    check("action/raising-fetch-and-logger-no-raise", ok)
    eq("action/raising-fetch-key-unchanged", t6.vars["txn.synroute_key"], "keep")
    local t7 = fake_txn("Bearer " .. MAT1, nil, "keep")
    t7.set_var = function(self, name, v)
        if name == "txn.synroute_mas" then error("set_var failed") end
        self.vars[name] = v
    end
    ok = pcall(act2, t7)
    check("action/raising-set-var-no-raise", ok)
end

---------------------------------------------------------------- wiring
do
    local t = mas.whoami_target{ host = "127.0.0.1", port = 8008 }
    eq("target/tcp", t.url, "http://127.0.0.1:8008/_matrix/client/v3/account/whoami")
    eq("target/tcp-no-dst", t.dst, nil)
    eq("target/ipv6", mas.whoami_target{ host = "::1", port = 8008 }.url,
        "http://[::1]:8008/_matrix/client/v3/account/whoami")
    local u = mas.whoami_target{ path = "/run/synapse/main.sock" }
    eq("target/unix-dst", u.dst, "unix@/run/synapse/main.sock")
    eq("target/unix-url", u.url, "http://localhost/_matrix/client/v3/account/whoami")
    eq("target/none", (mas.whoami_target{ name = "main" }), nil)
end

do -- httpclient_fetch with a fake core: header, url, per-attempt timeout
    local sent
    local core = { httpclient = function()
        return { get = function(_, req) sent = req; return { status = 200, body = WHOAMI_ALICE } end }
    end }
    local f = mas.httpclient_fetch(core, { url = "http://h:1/x", dst = "unix@/s" }, 2000)
    local st, body = f(MAT1)
    eq("httpclient/status", st, 200)
    eq("httpclient/body", body, WHOAMI_ALICE)
    eq("httpclient/url", sent.url, "http://h:1/x")
    eq("httpclient/dst", sent.dst, "unix@/s")
    eq("httpclient/auth", sent.headers.authorization[1], "Bearer " .. MAT1)
    eq("httpclient/timeout-per-attempt", sent.timeout, 500)
    local core2 = { httpclient = function() return { get = function() return nil end } end }
    eq("httpclient/no-response", (mas.httpclient_fetch(core2, { url = "u" }, 100)(MAT1)), nil)
end

-- The glue (lua/synroute/haproxy.lua) with a fake `core`: the action is
-- registered only when the deployment has mas.resolve = true. The deployment
-- comes from a wrapper around synroute.config (so this does not depend on
-- config.lua knowing the `mas` key).
local function load_glue(mas_conf)
    local registered = {}
    local fake_core = {
        register_converters = function(name) registered[#registered + 1] = "converter:" .. name end,
        register_action = function(name, kinds, fn, nargs)
            registered[#registered + 1] = "action:" .. name .. ":" .. table.concat(kinds, ",") ..
                ":" .. tostring(nargs) .. ":" .. type(fn)
        end,
        register_fetches = function(name) registered[#registered + 1] = "fetch:" .. name end,
        register_service = function(name) registered[#registered + 1] = "service:" .. name end,
        register_task = function() registered[#registered + 1] = "task" end,
        Info = function() end, Warning = function() end, Alert = function() end,
        now = function() return { sec = 0, usec = 0 } end,
    }
    local real_config = require("synroute.config")
    local saved_getenv, saved_core = os.getenv, _ENV.core
    local conf_path = root .. "/tests/vtc/conf/basic/synroute.yaml"
    package.loaded["synroute.config"] = {
        load = function(p)
            local dep, problems = real_config.load(p)
            if dep then dep.mas = mas_conf end
            return dep, problems
        end,
    }
    os.getenv = function(k)
        if k == "SYNROUTE_CONFIG" then return conf_path end
        return saved_getenv(k)
    end
    _ENV.core = fake_core
    local ok, err = pcall(dofile, root .. "/lua/synroute/haproxy.lua")
    _ENV.core = saved_core
    os.getenv = saved_getenv
    package.loaded["synroute.config"] = real_config
    return ok, err, table.concat(registered, " ")
end

do
    local ok, err, reg = load_glue(nil)
    check("glue/off-loads", ok, err)
    eq("glue/off-no-action", reg, "converter:synroute")
    ok, err, reg = load_glue({ resolve = false, cache_size = 5 })
    eq("glue/resolve-false-no-action", reg, "converter:synroute")
    ok, err, reg = load_glue({ resolve = true, cache_size = 50, timeout = "2s" })
    check("glue/on-loads", ok, err)
    eq("glue/on-registers-action", reg, "converter:synroute action:synroute_mas:http-req:0:function")
    local res = package.loaded["synroute.haproxy.mas_resolver"]
    eq("glue/on-cache-size", res and res.cache.size, 50)
    ok, err = load_glue({ resolve = true, timeout = "2 parsecs" })
    check("glue/bad-timeout-refused", not ok and tostring(err):find("mas.timeout", 1, true) ~= nil, err)
end

---------------------------------------------------------------- lint
do
    local file = root .. "/lua/synroute/mas.lua"
    for _, v in ipairs{ "5.4", "5.3" } do
        if not os.execute("command -v luac" .. v .. " >/dev/null 2>&1") then
            -- (Debian 13 has no Lua 5.3: its HAProxy embeds 5.4)
            print("skip " .. prefix .. "/lint/compiles-" .. v .. ": luac" .. v .. " is not installed here")
        else
            local p = io.popen("luac" .. v .. " -p '" .. file .. "' 2>&1; echo rc=$?")
            local out = p:read("a") or ""
            p:close()
            check("lint/compiles-" .. v, out:find("rc=0", 1, true) ~= nil, out)
        end
    end
    local p = io.popen("luac5.4 -l -l -p '" .. file .. "' 2>&1")
    local listing = p:read("a") or ""
    p:close()
    local g = listing:match("[^\n]*SETTABUP[^\n]*_ENV[^\n]*")
    check("lint/no-globals", listing ~= "" and g == nil, g or "no listing")
end

kit.finish()
