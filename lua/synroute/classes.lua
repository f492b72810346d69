-- synroute.classes - the names synroute routes by, and the facts about them,
-- in one place (docs/design.md "Classes, pools and backends"):
--
--   class    what kind of request it is, decided by the route table
--            (sync, federation, typing, ..., admin, blocked, main)
--   pool     the Synapse processes that serve a class, derived from the
--            Synapse files; named after the class, plus `generic` (generic
--            workers serving every generic route) and `appservice`
--   backend  an HAProxy backend: `main`, and one per pool
--
--   classes.LIST          every class, in the route table's order of kinds
--   classes.IS            set of LIST
--   classes.WRITERS       set of the writer classes: each is a stream of
--                         Synapse's stream_writers with the same name
--   classes.DEFAULT_KEY   class -> key kind its requests are hashed by (the
--                         classes with a per-user key); others: none
--   classes.NAMED_POOLS   pools an admin may name in `pools:` (writer pools
--                         come from stream_writers)
--   classes.POOLS         every pool a deployment may have
--   classes.set(list)     list -> set

local M = {}

function M.set(list)
    local s = {}
    for _, v in ipairs(list) do s[v] = true end
    return s
end

M.LIST = {
    "sync", "initial_sync", "federation", "federation_send", "client", "encryption",
    "login", "event_send", "messages", "user_directory", "sso", "media", "typing",
    "to_device", "account_data", "receipts", "presence", "push_rules", "device_lists",
    "thread_subscriptions", "admin", "blocked", "main",
}
M.IS = M.set(M.LIST)

M.WRITERS = M.set({
    "typing", "to_device", "account_data", "receipts", "presence", "push_rules",
    "device_lists", "thread_subscriptions",
})

M.DEFAULT_KEY = {
    sync = "user", initial_sync = "user", federation_send = "origin",
    event_send = "room", messages = "room",
}

M.NAMED_POOLS = {
    "sync", "initial_sync", "federation", "federation_send", "client", "encryption",
    "login", "event_send", "messages", "user_directory", "sso", "media",
    "generic", "appservice",
}

-- every class that can have a pool (all but main and blocked), generic, appservice
M.POOLS = {}
for _, c in ipairs(M.LIST) do
    if c ~= "main" and c ~= "blocked" then M.POOLS[#M.POOLS + 1] = c end
end
M.POOLS[#M.POOLS + 1] = "generic"
M.POOLS[#M.POOLS + 1] = "appservice"

return M
