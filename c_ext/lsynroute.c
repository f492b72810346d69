/*
 * lsynroute.c - the Lua module `synroute` (docs/design.md "Lua module
 * synroute"). The only file that knows lua_State. Built once for Lua 5.3
 * (HAProxy) and once for Lua 5.4 (CLI, tests); every version difference is
 * in compat.h.
 *
 * Conventions: data errors return nil, msg (push_err is the one place that
 * turns a core error into a message); only wrong argument types raise
 * (luaL_check*). Indices in messages are 1-based, as Lua users count.
 * Objects (regex sets, routers) are full userdata with named metatables and
 * __gc; a router or set belongs to the Lua state that built it and is used
 * by one caller at a time (in HAProxy every thread has its own Lua state).
 * Module functions share one upvalue: the YAML null sentinel.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"
#include "sr_core.h"

#define SR_VERSION "0.1.0"
#define MT_RSET    "synroute.rset"
#define MT_ROUTER  "synroute.router"
#define ERRLEN     512
#define PACKED_MAX 600 /* backend (<=255) | class (<=255) | hkey (16)  */

/* The YAML null sentinel: a light userdata holding the address of an
 * immutable object. Module functions get it as upvalue 1 (push_null). */
static const char sr_null_tag = 0;
#define push_null(L) lua_pushvalue((L), lua_upvalueindex(1))

/* The userdata of a regex set or a router: it owns one core object (the
 * metatable says which; the other pointer stays NULL). */
typedef struct {
    sr_rset *set;
    sr_router *router;
} l_obj;

/* A new userdata owning nothing yet, with metatable mt. */
static l_obj *new_obj(lua_State *L, const char *mt)
{
    l_obj *u = sr_newuserdata(L, sizeof *u);
    u->set = NULL;
    u->router = NULL;
    luaL_setmetatable(L, mt);
    return u;
}

/* __gc of both classes: frees the object once (idempotent). */
static int l_obj_gc(lua_State *L)
{
    l_obj *u = lua_touserdata(L, 1);
    if (!u) return 0;
    sr_rset_free(u->set);
    sr_router_free(u->router);
    u->set = NULL;
    u->router = NULL;
    return 0;
}

/* nil, msg for a core error: "<item> <1-based index> (\"<name>\"): <what>",
 * or just <what> when it concerns the input as a whole. Returns 2. */
static int push_err(lua_State *L, const sr_error *e)
{
    static const char *const item[] = { "", "entry", "target", "as_token" };
    lua_pushnil(L);
    if (e->at == SR_AT_INPUT || (size_t)e->at >= sizeof item / sizeof item[0])
        lua_pushstring(L, e->msg);
    else if (e->name)
        lua_pushfstring(L, "%s %I (\"%s\"): %s", item[e->at], (lua_Integer)e->index + 1,
                        e->name, e->msg);
    else
        lua_pushfstring(L, "%s %I: %s", item[e->at], (lua_Integer)e->index + 1, e->msg);
    return 2;
}

/* ------------------------------------------------------------------------ */
/* Method helpers.                                                           */

/* Value at idx -> method mask: nil/false = 0 (any), integer = bits, string =
 * one method, table = list of method names. Returns -1 on a bad value. */
static long to_mask(lua_State *L, int idx)
{
    int t = lua_type(L, idx);
    long m = 0;
    if (t == LUA_TNIL || (t == LUA_TBOOLEAN && !lua_toboolean(L, idx))) return 0;
    if (t == LUA_TNUMBER && lua_isinteger(L, idx)) {
        lua_Integer v = lua_tointeger(L, idx);
        return (v < 0 || v > SR_M_ALL) ? -1 : (long)v;
    }
    if (t == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        return (long)sr_method_bit(s, n);
    }
    if (t == LUA_TTABLE) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
        for (lua_Integer i = 1; i <= n; i++) {
            size_t sl;
            const char *s;
            if (lua_rawgeti(L, idx, i) != LUA_TSTRING) {
                lua_pop(L, 1);
                return -1;
            }
            s = lua_tolstring(L, -1, &sl);
            m |= (long)sr_method_bit(s, sl);
            lua_pop(L, 1);
        }
        return m;
    }
    return -1;
}

/* Optional method name at idx -> bit (nil: 0 = any). Raises on a non-string. */
static unsigned opt_method(lua_State *L, int idx)
{
    size_t n;
    const char *m;
    if (lua_isnoneornil(L, idx)) return 0;
    m = luaL_checklstring(L, idx, &n);
    return sr_method_bit(m, n);
}

/* ------------------------------------------------------------------------ */
/* Regex sets.                                                               */

/* The set at argument 1; raises if it is not one. */
static sr_rset *check_rset(lua_State *L)
{
    l_obj *u = luaL_checkudata(L, 1, MT_RSET);
    if (!u->set) luaL_argerror(L, 1, "regex set already freed");
    return u->set;
}

/* nil, "entry <li>: <what>" for a bad argument entry. Returns 2. */
static int push_entry_err(lua_State *L, lua_Integer li, const char *what)
{
    lua_pushnil(L);
    lua_pushfstring(L, "entry %I: %s", li, what);
    return 2;
}

/* Entry i of regex_set's arguments (at stack 1, 2, 3) into the arrays;
 * strings stay anchored in the argument tables. NULL, or what is wrong. */
static const char *read_set_entry(lua_State *L, size_t i, const char **pats,
                                  const char **names, unsigned *masks)
{
    lua_Integer li = (lua_Integer)i + 1;
    size_t pl;
    long m = 0;
    if (lua_rawgeti(L, 1, li) != LUA_TSTRING) return "pattern must be a string";
    pats[i] = lua_tolstring(L, -1, &pl);
    lua_pop(L, 1);
    if (strlen(pats[i]) != pl) return "pattern contains a NUL byte";
    names[i] = NULL;
    if (lua_istable(L, 3)) {
        if (lua_rawgeti(L, 3, li) == LUA_TSTRING) names[i] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    if (lua_istable(L, 2)) {
        lua_rawgeti(L, 2, li);
        m = to_mask(L, -1);
        lua_pop(L, 1);
    }
    if (m < 0) return "bad method mask";
    masks[i] = (unsigned)m;
    return NULL;
}

/* synroute.regex_set(patterns, masks?, names?) -> set | nil, err */
static int l_regex_set(lua_State *L)
{
    size_t n;
    const char **pats, **names;
    unsigned *masks;
    sr_error err;
    l_obj *u;

    luaL_checktype(L, 1, LUA_TTABLE);
    if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
    n = lua_rawlen(L, 1);
    lua_settop(L, 3);
    /* scratch arrays as userdata: collected even if something raises */
    pats = sr_newuserdata(L, (n ? n : 1) * sizeof *pats);
    names = sr_newuserdata(L, (n ? n : 1) * sizeof *names);
    masks = sr_newuserdata(L, (n ? n : 1) * sizeof *masks);
    for (size_t i = 0; i < n; i++) {
        const char *bad = read_set_entry(L, i, pats, names, masks);
        if (bad) return push_entry_err(L, (lua_Integer)i + 1, bad);
    }
    u = new_obj(L, MT_RSET);
    u->set = sr_rset_new(pats, masks, names, n, &err);
    if (!u->set) return push_err(L, &err);
    return 1;
}

/* set:match / set:match_loop (subject, method?) -> 1-based index | nil. */
static int rset_match_common(lua_State *L, int loop)
{
    sr_rset *set = check_rset(L);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    unsigned m = opt_method(L, 3);
    int r = loop ? sr_rset_match_loop(set, s, len, m) : sr_rset_match(set, s, len, m);
    if (r < 0) lua_pushnil(L);
    else lua_pushinteger(L, (lua_Integer)r + 1);
    return 1;
}

static int l_rset_match(lua_State *L) { return rset_match_common(L, 0); }
static int l_rset_match_loop(lua_State *L) { return rset_match_common(L, 1); }

/* set:dump() -> the text table of how each entry compiled (sr_rset_dump). */
static int l_rset_dump(lua_State *L)
{
    sr_rset *set = check_rset(L);
    size_t n = sr_rset_dump(set, NULL, 0);
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, n + 1);
    sr_rset_dump(set, out, n + 1);
    luaL_pushresultsize(&b, n);
    return 1;
}

/* #set -> number of entries. */
static int l_rset_len(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)sr_rset_size(check_rset(L)));
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Routers.                                                                  */

/* The router at argument 1; raises if it is not one. */
static sr_router *check_router(lua_State *L)
{
    l_obj *u = luaL_checkudata(L, 1, MT_ROUTER);
    if (!u->router) luaL_argerror(L, 1, "router already freed");
    return u->router;
}

/* Field `k` of the table at idx as a string (NULL when nil). Sets *bad when
 * present but not a string. Leaves the value on the stack (anchors it). */
static const char *field_str(lua_State *L, int idx, const char *k, int *bad)
{
    int t = lua_getfield(L, idx, k);
    if (t == LUA_TNIL) return NULL;
    if (t != LUA_TSTRING) {
        *bad = 1;
        return NULL;
    }
    {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        if (strlen(s) != n) {
            *bad = 1;
            return NULL;
        }
        return s;
    }
}

/* Field `k` as a 1-based index in [1, max]; returns 0-based or -1. */
static int field_index(lua_State *L, int idx, const char *k, size_t max)
{
    lua_Integer v;
    int isnum = 0;
    lua_getfield(L, idx, k);
    v = lua_tointegerx(L, -1, &isnum);
    lua_pop(L, 1);
    if (!isnum || v < 1 || (lua_Unsigned)v > (lua_Unsigned)max) return -1;
    return (int)(v - 1);
}

/* What a spec reader found wrong: the message is on the Lua stack (the
 * reader pushed it); readers return SPEC_BAD after pushing it. */
#define SPEC_OK  0
#define SPEC_BAD 1
#define SPEC_FAIL(...) \
    do { \
        lua_pushfstring(L, __VA_ARGS__); \
        return SPEC_BAD; \
    } while (0)

/* The spec being read: the core's spec plus writable views of its arrays
 * (userdata on the Lua stack). */
typedef struct {
    sr_router_spec sp;
    sr_target *tgs;
    sr_entry *ents;
    const char **astok, **assnd;
} spec_rd;

/* A reader of element i (1-based li, a table at stack index el). */
typedef int (*read_fn)(lua_State *L, int el, lua_Integer li, spec_rd *rd, size_t i);

/* Read the n elements of the list at list_i with fn; each must be a table
 * (`what` names it in messages). The stack top is restored after each. */
static int read_each(lua_State *L, int list_i, size_t n, const char *what, read_fn fn,
                     spec_rd *rd)
{
    for (size_t i = 0; i < n; i++) {
        lua_Integer li = (lua_Integer)i + 1;
        int top = lua_gettop(L);
        if (lua_rawgeti(L, list_i, li) != LUA_TTABLE) SPEC_FAIL("%s %I: table expected", what, li);
        if (fn(L, lua_gettop(L), li, rd, i) != SPEC_OK) return SPEC_BAD;
        lua_settop(L, top);
    }
    return SPEC_OK;
}

/* Key source names of the spec ("none" when absent). 0 if unknown. */
static int key_source(const char *key, sr_key_src *out)
{
    static const char *const names[] = { "none", "user", "room", "origin", "path_user" };
    static const sr_key_src srcs[] = { SR_KEY_NONE, SR_KEY_USER, SR_KEY_ROOM,
                                       SR_KEY_ORIGIN, SR_KEY_PATH_USER };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!key || strcmp(key, names[i]) == 0) {
            *out = key ? srcs[i] : SR_KEY_NONE;
            return 1;
        }
    return 0;
}

/* generic_methods of the target table at ti into tg: a method list (an
 * empty list: no method gets generic_backend). */
static int read_generic_methods(lua_State *L, int ti, lua_Integer li, sr_target *tg)
{
    long m;
    int t = lua_getfield(L, ti, "generic_methods");
    if (t == LUA_TTABLE && lua_rawlen(L, -1) == 0) {
        tg->generic_methods = SR_M_ALL;
        tg->generic_backend = tg->other_backend ? tg->other_backend : tg->generic_backend;
        lua_pop(L, 1);
        return SPEC_OK;
    }
    m = to_mask(L, lua_gettop(L));
    lua_pop(L, 1);
    if (m < 0) SPEC_FAIL("target %I: generic_methods: list of methods expected", li);
    tg->generic_methods = (unsigned)m;
    return SPEC_OK;
}

/* Target li; its strings stay referenced by the spec table. */
static int read_target(lua_State *L, int ti, lua_Integer li, spec_rd *rd, size_t i)
{
    sr_target *tg = &rd->tgs[i];
    int bad = 0, t;
    const char *key;
    tg->cls = field_str(L, ti, "class", &bad);
    if (bad || !tg->cls) SPEC_FAIL("target %I: class: string expected", li);
    tg->generic_backend = field_str(L, ti, "generic_backend", &bad);
    if (bad || !tg->generic_backend) SPEC_FAIL("target %I: generic_backend: string expected", li);
    tg->other_backend = field_str(L, ti, "other_backend", &bad);
    if (bad) SPEC_FAIL("target %I: other_backend: string expected", li);
    tg->reason = field_str(L, ti, "reason", &bad);
    if (bad) SPEC_FAIL("target %I: reason: string expected", li);
    key = field_str(L, ti, "key", &bad);
    if (bad) SPEC_FAIL("target %I: key: string expected", li);
    if (!key_source(key, &tg->key)) SPEC_FAIL("target %I: unknown key '%s'", li, key);
    t = lua_getfield(L, ti, "as_ok");
    if (t != LUA_TNIL && t != LUA_TBOOLEAN) SPEC_FAIL("target %I: as_ok: boolean expected", li);
    tg->as_ok = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return read_generic_methods(L, ti, li, tg);
}

/* The method filter of the entry table at ei (an empty list is an error). */
static int read_entry_methods(lua_State *L, int ei, lua_Integer li, sr_entry *en)
{
    long m;
    int t = lua_getfield(L, ei, "methods");
    if (t == LUA_TTABLE && lua_rawlen(L, -1) == 0)
        SPEC_FAIL("entry %I (%s): methods: empty list", li, en->id);
    m = to_mask(L, lua_gettop(L));
    lua_pop(L, 1);
    if (m < 0) SPEC_FAIL("entry %I (%s): methods: list of methods expected", li, en->id);
    en->methods = (unsigned)m;
    return SPEC_OK;
}

/* refine and alt_target of the entry table at ei; nt targets exist. */
static int read_entry_refine(lua_State *L, int ei, lua_Integer li, size_t nt, sr_entry *en)
{
    int bad = 0;
    const char *refine = field_str(L, ei, "refine", &bad);
    if (bad) SPEC_FAIL("entry %I (%s): refine: string expected", li, en->id);
    if (!refine) en->refine = SR_REFINE_NONE;
    else if (strcmp(refine, "since") == 0) en->refine = SR_REFINE_SINCE;
    else if (strcmp(refine, "pos") == 0) en->refine = SR_REFINE_POS;
    else SPEC_FAIL("entry %I (%s): unknown refine '%s'", li, en->id, refine);
    en->alt_target = en->target;
    if (en->refine == SR_REFINE_NONE) return SPEC_OK;
    en->alt_target = field_index(L, ei, "alt_target", nt);
    if (en->alt_target < 0)
        SPEC_FAIL("entry %I (%s): alt_target: index 1..%I expected", li, en->id, (lua_Integer)nt);
    return SPEC_OK;
}

/* Entry li: id, pattern, methods, target, refine. */
static int read_entry(lua_State *L, int ei, lua_Integer li, spec_rd *rd, size_t i)
{
    sr_entry *en = &rd->ents[i];
    size_t nt = rd->sp.n_targets;
    int bad = 0;
    en->id = field_str(L, ei, "id", &bad);
    if (bad || !en->id) SPEC_FAIL("entry %I: id: string expected", li);
    en->pattern = field_str(L, ei, "pattern", &bad);
    if (bad || !en->pattern) SPEC_FAIL("entry %I (%s): pattern: string expected", li, en->id);
    if (read_entry_methods(L, ei, li, en) != SPEC_OK) return SPEC_BAD;
    en->target = field_index(L, ei, "target", nt);
    if (en->target < 0)
        SPEC_FAIL("entry %I (%s): target: index 1..%I expected", li, en->id, (lua_Integer)nt);
    return read_entry_refine(L, ei, li, nt, en);
}

/* Appservice token li: token and sender. */
static int read_as_token(lua_State *L, int ai, lua_Integer li, spec_rd *rd, size_t i)
{
    int bad = 0;
    rd->astok[i] = field_str(L, ai, "token", &bad);
    if (bad || !rd->astok[i] || !rd->astok[i][0])
        SPEC_FAIL("as_token %I: token: non-empty string expected", li);
    rd->assnd[i] = field_str(L, ai, "sender", &bad);
    if (bad) SPEC_FAIL("as_token %I: sender: string expected", li);
    return SPEC_OK;
}

/* A zeroed userdata array of n (at least 1) elements of size sz. */
static void *new_array(lua_State *L, size_t n, size_t sz)
{
    size_t bytes = (n ? n : 1) * sz;
    return memset(sr_newuserdata(L, bytes), 0, bytes);
}

/* spec.as_tokens (optional). */
static int read_as_tokens(lua_State *L, spec_rd *rd)
{
    size_t nas = 0;
    int t = lua_getfield(L, 1, "as_tokens"), as_i = lua_gettop(L);
    if (t != LUA_TNIL && t != LUA_TTABLE) SPEC_FAIL("spec.as_tokens: table expected");
    if (t == LUA_TTABLE) nas = lua_rawlen(L, as_i);
    rd->astok = new_array(L, nas, sizeof *rd->astok);
    rd->assnd = new_array(L, nas, sizeof *rd->assnd);
    if (read_each(L, as_i, nas, "as_token", read_as_token, rd) != SPEC_OK) return SPEC_BAD;
    rd->sp.as_tokens = rd->astok;
    rd->sp.as_senders = rd->assnd;
    rd->sp.n_as_tokens = nas;
    return SPEC_OK;
}

/* The spec table at stack index 1 into rd. Everything read stays
 * referenced from the Lua stack (the spec table, userdata arrays). */
static int read_spec(lua_State *L, spec_rd *rd)
{
    sr_router_spec *sp = &rd->sp;
    int bad = 0, ents_i, tgs_i;
    sp->secret = field_str(L, 1, "secret", &bad);
    if (bad || !sp->secret) SPEC_FAIL("spec.secret: string expected");
    sp->secret_len = lua_rawlen(L, -1);
    if (lua_getfield(L, 1, "entries") != LUA_TTABLE) SPEC_FAIL("spec.entries: table expected");
    ents_i = lua_gettop(L);
    if (lua_getfield(L, 1, "targets") != LUA_TTABLE) SPEC_FAIL("spec.targets: table expected");
    tgs_i = lua_gettop(L);
    sp->n_entries = lua_rawlen(L, ents_i);
    sp->n_targets = lua_rawlen(L, tgs_i);
    if (sp->n_targets == 0) SPEC_FAIL("spec.targets: empty");
    sp->entries = rd->ents = new_array(L, sp->n_entries, sizeof *rd->ents);
    sp->targets = rd->tgs = new_array(L, sp->n_targets, sizeof *rd->tgs);
    if (read_each(L, tgs_i, sp->n_targets, "target", read_target, rd) != SPEC_OK ||
        read_each(L, ents_i, sp->n_entries, "entry", read_entry, rd) != SPEC_OK)
        return SPEC_BAD;
    sp->fallback_target = field_index(L, 1, "fallback_target", sp->n_targets);
    if (sp->fallback_target < 0)
        SPEC_FAIL("spec.fallback_target: index 1..%I expected", (lua_Integer)sp->n_targets);
    sp->as_backend = field_str(L, 1, "as_backend", &bad);
    if (bad) SPEC_FAIL("spec.as_backend: string expected");
    return read_as_tokens(L, rd);
}

/* synroute.router(spec) -> router | nil, err */
static int l_router_new(lua_State *L)
{
    spec_rd rd;
    sr_error err;
    l_obj *u;
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    memset(&rd, 0, sizeof rd);
    if (read_spec(L, &rd) != SPEC_OK) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    u = new_obj(L, MT_ROUTER);
    u->router = sr_router_new(&rd.sp, &err);
    if (!u->router) return push_err(L, &err);
    return 1;
}

/* router:route(input) -> "backend|class|hkey". Raises only on a non-string. */
static int l_router_route(lua_State *L)
{
    sr_router *r = check_router(L);
    size_t len;
    const char *in = luaL_checklstring(L, 2, &len);
    char out[PACKED_MAX];
    size_t n = sr_route_packed(r, in, len, out, sizeof out);
    lua_pushlstring(L, out, n);
    return 1;
}

/* t[k] = v (nil when v is NULL) on the table at the top. */
static void set_str(lua_State *L, const char *k, const char *v)
{
    if (v) lua_pushstring(L, v);
    else lua_pushnil(L);
    lua_setfield(L, -2, k);
}

/* router:explain(input) -> { class, backend, key_kind, key, hash, route,
 * reason (nil if none), appservice (boolean) }. */
static int l_router_explain(lua_State *L)
{
    sr_router *r = check_router(L);
    size_t len;
    const char *in = luaL_checklstring(L, 2, &len);
    sr_decision d;
    sr_route(r, in, len, &d);
    lua_createtable(L, 0, 8);
    set_str(L, "class", d.cls);
    set_str(L, "backend", d.backend);
    set_str(L, "key_kind", d.key_kind);
    set_str(L, "key", d.key);
    set_str(L, "hash", d.hkey);
    set_str(L, "route", d.route_id);
    set_str(L, "reason", d.reason);
    lua_pushboolean(L, d.appservice);
    lua_setfield(L, -2, "appservice");
    return 1;
}

/* The converter: upvalue 1 is the router userdata. Never raises on its
 * input: a non-string sample is routed as an empty (malformed) request. */
static int l_converter_call(lua_State *L)
{
    l_obj *u = lua_touserdata(L, lua_upvalueindex(1));
    const char *in = NULL;
    size_t len = 0;
    char out[PACKED_MAX];
    size_t n;
    if (lua_type(L, 1) == LUA_TSTRING) in = lua_tolstring(L, 1, &len);
    n = sr_route_packed(u ? u->router : NULL, in, len, out, sizeof out);
    lua_pushlstring(L, out, n);
    return 1;
}

/* router:converter() -> C closure over the router (see l_converter_call). */
static int l_router_converter(lua_State *L)
{
    check_router(L);
    lua_settop(L, 1);
    lua_pushcclosure(L, l_converter_call, 1);
    return 1;
}

/* router:hkey(kind, key) -> 16 hex digits, as sr_route computes them. */
static int l_router_hkey(lua_State *L)
{
    sr_router *r = check_router(L);
    size_t kl;
    const char *kind = luaL_checkstring(L, 2);
    const char *key = luaL_checklstring(L, 3, &kl);
    char out[17];
    sr_router_hkey(r, kind, key, kl, out);
    lua_pushstring(L, out);
    return 1;
}

/* router:hkey_seed(kind) -> the XXH64 seed of kind's hkeys, as a decimal
 * string (what `synroute haproxy` writes into xxh64(<seed>)). */
static int l_router_hkey_seed(lua_State *L)
{
    sr_router *r = check_router(L);
    const char *kind = luaL_checkstring(L, 2);
    char out[24];
    snprintf(out, sizeof out, "%llu", (unsigned long long)sr_router_hkey_seed(r, kind));
    lua_pushstring(L, out);
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Parsers and files.                                                        */

/* A parser's result: dst[0..r) when r > 0, else nil (and `why` when it
 * is not NULL). Returns the number of values pushed. */
static int push_parsed(lua_State *L, const char *dst, long r, const char *why)
{
    if (r > 0) {
        lua_pushlstring(L, dst, (size_t)r);
        return 1;
    }
    lua_pushnil(L);
    if (!why) return 1;
    lua_pushstring(L, why);
    return 2;
}

/* A parser of the core: string -> dst, length (> 0), 0 (nothing found) or
 * -1 (malformed). */
typedef long (*parse_fn)(const char *s, size_t len, char *dst, size_t cap);

/* The binding of a parser: fn(argument 1) -> result | nil [, why], where
 * why is why_none for 0 and why_bad for -1 (NULL: nil alone). */
static int parse_arg(lua_State *L, parse_fn fn, const char *why_none, const char *why_bad)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    char dst[1024];
    long r = fn(s, len, dst, sizeof dst);
    return push_parsed(L, dst, r, r == 0 ? why_none : why_bad);
}

/* synroute.xmatrix_origin(header) -> origin | nil, err. */
static int l_xmatrix_origin(lua_State *L)
{
    return parse_arg(L, sr_xmatrix_origin, "not an X-Matrix header",
                     "malformed X-Matrix header or no origin");
}

/* synroute.room_from_path(path) -> decoded room ID/alias | nil. */
static int l_room_from_path(lua_State *L)
{
    return parse_arg(L, sr_room_from_path, NULL, NULL);
}

/* synroute.localpart(user_id) -> localpart | nil, msg: the localpart of a
 * whole user ID ("@alice:hs" -> "alice") by the router's rule for user IDs
 * inside tokens (sr_user_localpart). */
static int l_localpart(lua_State *L)
{
    const char *why = "not a user ID with a usable localpart";
    return parse_arg(L, sr_user_localpart, why, why);
}

/* synroute.query_param(query, name) -> form-decoded value | nil. */
static int l_query_param(lua_State *L)
{
    size_t qlen;
    const char *q = luaL_checklstring(L, 1, &qlen);
    const char *name = luaL_checkstring(L, 2);
    luaL_Buffer b;
    char *dst = luaL_buffinitsize(L, &b, qlen + 1);
    long r = sr_query_param(q, qlen, name, dst, qlen + 1);
    if (r < 0) {
        lua_pushnil(L);
        return 1;
    }
    luaL_pushresultsize(&b, (size_t)r);
    return 1;
}

/* synroute.token(auth, query) -> token, kind | nil | nil, msg: the access
 * token the router keys on (sr_token_find: "Bearer <one word>" in auth, else
 * the form-decoded access_token of query; either may be nil) and its kind
 * (sr_token_classify): "syt", "macaroon", "mas" or "opaque". nil when the
 * request has none; nil, msg when access_token does not decode. */
static int l_token(lua_State *L)
{
    static const char *const kinds[] = { "none", "syt", "macaroon", "mas", "opaque" };
    size_t alen = 0, qlen = 0, toklen, keylen;
    const char *auth = luaL_optlstring(L, 1, NULL, &alen);
    const char *query = luaL_optlstring(L, 2, NULL, &qlen);
    const char *tok;
    char *buf = sr_newuserdata(L, qlen + 1), key[512];
    int r = sr_token_find(auth, alen, query, qlen, buf, qlen + 1, &tok, &toklen);
    sr_tok_kind k;
    if (r < 0) return push_parsed(L, NULL, -1, "access_token does not decode");
    if (r == 0 || toklen == 0) return push_parsed(L, NULL, 0, NULL);
    k = sr_token_classify(tok, toklen, key, sizeof key, &keylen);
    lua_pushlstring(L, tok, toklen);
    lua_pushstring(L, kinds[k]);
    return 2;
}

/* synroute.name_match(pattern, name) -> boolean: shell pattern matching of
 * names that are not paths (sr_name_match, fnmatch(3)). */
static int l_name_match(lua_State *L)
{
    size_t plen, nlen;
    const char *pat = luaL_checklstring(L, 1, &plen);
    const char *name = luaL_checklstring(L, 2, &nlen);
    lua_pushboolean(L, strlen(pat) == plen && strlen(name) == nlen && sr_name_match(pat, name));
    return 1;
}

/* synroute.getcwd() -> absolute path of the working directory | nil, msg
 * (getcwd(3)). */
static int l_getcwd(lua_State *L)
{
    size_t cap = 256;
    for (;;) {
        char *buf = sr_newuserdata(L, cap);
        if (getcwd(buf, cap)) {
            lua_pushstring(L, buf);
            return 1;
        }
        if (errno != ERANGE || cap > 65536) {
            lua_pushnil(L);
            lua_pushfstring(L, "getcwd: %s", strerror(errno));
            return 2;
        }
        lua_pop(L, 1);
        cap *= 4;
    }
}

/* synroute.glob(pattern) -> sorted list of paths ({} when nothing matches)
 * | nil, msg when a directory cannot be read (flags: sr_glob.c). */
static int l_glob(lua_State *L)
{
    size_t len;
    const char *pat = luaL_checklstring(L, 1, &len);
    char err[ERRLEN];
    sr_paths p;
    if (strlen(pat) != len) {
        lua_pushnil(L);
        lua_pushliteral(L, "glob: pattern contains a NUL byte");
        return 2;
    }
    if (sr_glob(pat, &p, err, sizeof err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_createtable(L, (int)(p.n < 0x7fffffff ? p.n : 0), 0);
    for (size_t i = 0; i < p.n; i++) {
        lua_pushstring(L, p.path[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    sr_paths_free(&p);
    return 1;
}

/* ------------------------------------------------------------------------ */
/* YAML -> Lua.                                                              */

typedef struct {
    const char *name; /* file name / chunk name for messages            */
    int cache;        /* stack index: node lightuserdata -> Lua value   */
    int pos;          /* stack index: the pos side table                */
    char err[ERRLEN];
} yconv;

/* Plain decimal integer of at most 18 digits (fits lua_Integer)? */
static int is_int_text(const char *s, size_t n)
{
    size_t i = 0;
    if (n && (s[0] == '-' || s[0] == '+')) i = 1;
    if (i == n || n - i > 18) return 0; /* fits in 64 bits for sure */
    for (; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

/* YAML 1.2 core schema subset: plain true/True/TRUE/false/False/FALSE ->
 * boolean, null/Null/NULL/~/empty -> synroute.null, decimal ints -> integer;
 * everything else (and every quoted scalar) -> string. Floats stay strings
 * ("1.60" must not become 1.6). */
static void push_scalar(lua_State *L, const sr_ynode *n)
{
    const char *s = n->str ? n->str : "";
    size_t len = n->str ? n->len : 0;
    if (n->plain) {
        if (len == 0 || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
            !strcmp(s, "NULL")) {
            push_null(L);
            return;
        }
        if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
            lua_pushboolean(L, 1);
            return;
        }
        if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
            lua_pushboolean(L, 0);
            return;
        }
        if (is_int_text(s, len)) {
            lua_pushinteger(L, (lua_Integer)strtoll(s, NULL, 10));
            return;
        }
    }
    lua_pushlstring(L, s, len);
}

static int push_node(lua_State *L, const sr_ynode *n, yconv *c, int depth);

/* A table size hint for n items (0 when too large to be a useful hint). */
static int size_hint(size_t n)
{
    return n < ((size_t)1 << 24) ? (int)n : 0;
}

/* A new table for container n (remembered in the alias cache when an alias
 * names n), with its side table pos[tbl] = { line=, col=, keys = {} } for a
 * non-empty map, { line=, col=, items = {} } for a non-empty sequence, and
 * just { line=, col= } when empty: a table per container is all a document
 * costs, and aliases cost nothing. Leaves tbl and the keys or items table
 * (nil when empty) on the stack; returns tbl's index. */
static int new_container(lua_State *L, const sr_ynode *n, yconv *c)
{
    int tbl, ptab, seq = n->type == SR_Y_SEQ;
    lua_createtable(L, seq ? size_hint(n->n) : 0, seq ? 0 : size_hint(n->n));
    tbl = lua_gettop(L);
    if (n->shared) {
        lua_pushlightuserdata(L, (void *)n);
        lua_pushvalue(L, tbl);
        lua_rawset(L, c->cache);
    }
    lua_createtable(L, 0, n->n ? 3 : 2);
    ptab = lua_gettop(L);
    lua_pushinteger(L, n->line);
    lua_setfield(L, ptab, "line");
    lua_pushinteger(L, n->col);
    lua_setfield(L, ptab, "col");
    lua_pushvalue(L, tbl);
    lua_pushvalue(L, ptab);
    lua_rawset(L, c->pos);
    if (n->n) {
        lua_createtable(L, seq ? size_hint(n->n) : 0, seq ? 0 : size_hint(n->n));
        lua_pushvalue(L, -1);
        lua_setfield(L, ptab, seq ? "items" : "keys");
    } else {
        lua_pushnil(L);
    }
    lua_remove(L, ptab); /* ... tbl keys-or-items */
    return tbl;
}

/* The items of sequence n into tbl, their lines into items. */
static int fill_seq(lua_State *L, const sr_ynode *n, yconv *c, int depth, int tbl, int items)
{
    for (size_t i = 0; i < n->n; i++) {
        const sr_ynode *it = n->items[i];
        if (!push_node(L, it, c, depth + 1)) return 0;
        lua_rawseti(L, tbl, (lua_Integer)i + 1);
        lua_pushinteger(L, it->line);
        lua_rawseti(L, items, (lua_Integer)i + 1);
    }
    return 1;
}

/* The pairs of mapping n into tbl, the keys' lines into keys. Keys must be
 * scalars (null is ""), each once. */
static int fill_map(lua_State *L, const sr_ynode *n, yconv *c, int depth, int tbl, int keys)
{
    for (size_t i = 0; i < n->n; i++) {
        const sr_ynode *k = n->items[2 * i], *v = n->items[2 * i + 1];
        const char *ks = k->type == SR_Y_SCALAR && k->str ? k->str : "";
        size_t kl = k->type == SR_Y_SCALAR && k->str ? k->len : 0;
        if (k->type != SR_Y_SCALAR && k->type != SR_Y_NULL) {
            snprintf(c->err, sizeof c->err, "%s:%d:%d: mapping key must be a scalar",
                     c->name, k->line, k->col);
            return 0;
        }
        lua_pushlstring(L, ks, kl);
        if (lua_rawget(L, tbl) != LUA_TNIL) {
            snprintf(c->err, sizeof c->err, "%s:%d:%d: duplicate key '%.*s'",
                     c->name, k->line, k->col, (int)(kl > 200 ? 200 : kl), ks);
            return 0;
        }
        lua_pop(L, 1);
        lua_pushlstring(L, ks, kl);
        if (!push_node(L, v, c, depth + 1)) return 0;
        lua_rawset(L, tbl);
        lua_pushlstring(L, ks, kl);
        lua_pushinteger(L, k->line);
        lua_rawset(L, keys);
    }
    return 1;
}

/* Aliased scalars longer than this are converted once (Lua interns shorter
 * strings itself). */
#define LONG_SCALAR 40

/* Push the Lua value of node n. 0 on error (message in c->err). */
static int push_node(lua_State *L, const sr_ynode *n, yconv *c, int depth)
{
    int tbl, ok;
    if (depth > 512) {
        snprintf(c->err, sizeof c->err, "%s:%d:%d: nesting too deep", c->name, n->line, n->col);
        return 0;
    }
    luaL_checkstack(L, 10, "yaml nesting");
    if (n->type == SR_Y_NULL) {
        push_null(L);
        return 1;
    }
    if (n->type == SR_Y_SCALAR && (n->len <= LONG_SCALAR || !n->shared)) {
        push_scalar(L, n);
        return 1;
    }
    /* a node an alias names becomes one table, or one string, however
     * often it occurs: the expansion of aliases never costs memory */
    if (n->shared) {
        lua_pushlightuserdata(L, (void *)n);
        if (lua_rawget(L, c->cache) != LUA_TNIL) return 1;
        lua_pop(L, 1);
    }
    if (n->type == SR_Y_SCALAR) {
        push_scalar(L, n);
        lua_pushlightuserdata(L, (void *)n);
        lua_pushvalue(L, -2);
        lua_rawset(L, c->cache);
        return 1;
    }
    tbl = new_container(L, n, c);
    ok = n->type == SR_Y_SEQ ? fill_seq(L, n, c, depth, tbl, tbl + 1)
                             : fill_map(L, n, c, depth, tbl, tbl + 1);
    lua_settop(L, tbl);
    return ok;
}

/* The doc is owned by a userdata with __gc while it is converted, so a
 * memory error raised by Lua cannot leak it. Returns 2: doc, pos or nil, err. */
typedef struct {
    sr_ydoc *d;
} l_ydoc;

/* __gc of the temporary doc owner. */
static int l_ydoc_gc(lua_State *L)
{
    l_ydoc *u = lua_touserdata(L, 1);
    if (u && u->d) {
        sr_ydoc_free(u->d);
        u->d = NULL;
    }
    return 0;
}

/* Convert doc d (or report err when d is NULL); frees d on every path. */
static int finish_yaml(lua_State *L, sr_ydoc *d, const char *err, const char *name)
{
    l_ydoc *u;
    yconv c;
    const sr_ynode *root;
    int top;
    if (!d) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    u = sr_newuserdata(L, sizeof *u);
    u->d = d;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, l_ydoc_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    top = lua_gettop(L);
    root = sr_ydoc_root(d);
    c.name = name;
    c.err[0] = '\0';
    lua_newtable(L);
    c.cache = lua_gettop(L);
    lua_newtable(L);
    c.pos = lua_gettop(L);
    if (!root) push_null(L);
    else if (!push_node(L, root, &c, 0)) {
        sr_ydoc_free(u->d);
        u->d = NULL;
        lua_settop(L, top);
        lua_pushnil(L);
        lua_pushstring(L, c.err);
        return 2;
    }
    sr_ydoc_free(u->d);
    u->d = NULL;
    lua_pushvalue(L, c.pos); /* ... value pos */
    return 2;
}

/* The limits table at arg (nil or absent: the defaults) into *lim:
 * { max_bytes =, max_nodes =, max_text = }, each a positive integer.
 * Raises on anything else (a wrong argument is a programming error). */
static void check_limits(lua_State *L, int arg, sr_yaml_limits *lim)
{
    static const char *const names[] = { "max_bytes", "max_nodes", "max_text" };
    size_t *fields[] = { &lim->max_bytes, &lim->max_nodes, &lim->max_text };
    memset(lim, 0, sizeof *lim);
    if (lua_isnoneornil(L, arg)) return;
    luaL_checktype(L, arg, LUA_TTABLE);
    for (size_t i = 0; i < 3; i++) {
        int isint = 0;
        lua_Integer v;
        if (lua_getfield(L, arg, names[i]) != LUA_TNIL) {
            v = lua_tointegerx(L, -1, &isint);
            if (!isint || v < 1)
                luaL_argerror(L, arg, lua_pushfstring(L, "%s: positive integer expected", names[i]));
            *fields[i] = (uint64_t)v > SIZE_MAX ? SIZE_MAX : (size_t)v;
        }
        lua_pop(L, 1);
    }
    lua_pushnil(L);
    while (lua_next(L, arg)) {
        int known = lua_type(L, -2) == LUA_TSTRING &&
                    (!strcmp(lua_tostring(L, -2), names[0]) || !strcmp(lua_tostring(L, -2), names[1]) ||
                     !strcmp(lua_tostring(L, -2), names[2]));
        if (!known) luaL_argerror(L, arg, "unknown limit (max_bytes, max_nodes, max_text)");
        lua_pop(L, 1);
    }
}

/* synroute.yaml_load(path, limits?) -> doc, pos | nil, "path: msg" (the
 * file as a whole) or "path:line:col: msg" (sr_yaml_load_file). Raises
 * only on wrong argument types. */
static int l_yaml_load(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    char err[ERRLEN];
    sr_yaml_limits lim;
    sr_ydoc *d;
    check_limits(L, 2, &lim);
    d = sr_yaml_load_file(path, &lim, err, sizeof err);
    return finish_yaml(L, d, err, path);
}

/* synroute.yaml_parse(str, name?, limits?) -> doc, pos | nil, err. */
static int l_yaml_parse(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    const char *name = luaL_optstring(L, 2, "<string>");
    char err[ERRLEN];
    sr_yaml_limits lim;
    sr_ydoc *d;
    check_limits(L, 3, &lim);
    d = sr_yaml_load_string(s, len, name, &lim, err, sizeof err);
    return finish_yaml(L, d, err, name);
}

/* ------------------------------------------------------------------------ */

static const luaL_Reg rset_methods[] = {
    { "match", l_rset_match },
    { "match_loop", l_rset_match_loop },
    { "dump", l_rset_dump },
    { NULL, NULL }
};

static const luaL_Reg router_methods[] = {
    { "route", l_router_route },
    { "explain", l_router_explain },
    { "converter", l_router_converter },
    { "hkey", l_router_hkey },
    { "hkey_seed", l_router_hkey_seed },
    { NULL, NULL }
};

static const luaL_Reg module_funcs[] = {
    { "yaml_load", l_yaml_load },
    { "yaml_parse", l_yaml_parse },
    { "regex_set", l_regex_set },
    { "router", l_router_new },
    { "xmatrix_origin", l_xmatrix_origin },
    { "room_from_path", l_room_from_path },
    { "query_param", l_query_param },
    { "glob", l_glob },
    { "name_match", l_name_match },
    { "getcwd", l_getcwd },
    { "token", l_token },
    { "localpart", l_localpart },
    { NULL, NULL }
};

/* Create (or refresh) the named metatable mt with methods, __gc, __len. */
static void new_class(lua_State *L, const char *mt, const luaL_Reg *methods, lua_CFunction len)
{
    luaL_newmetatable(L, mt);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_obj_gc);
    lua_setfield(L, -2, "__gc");
    if (len) {
        lua_pushcfunction(L, len);
        lua_setfield(L, -2, "__len");
    }
    lua_pushstring(L, mt);
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);
}


int luaopen_synroute(lua_State *L); /* no header declares it */

/* The module entry point (require "synroute"): returns the module table.
 * Raises only when Lua runs out of memory. */
int luaopen_synroute(lua_State *L)
{
    new_class(L, MT_RSET, rset_methods, l_rset_len);
    new_class(L, MT_ROUTER, router_methods, NULL);
    luaL_newlibtable(L, module_funcs);
    lua_pushlightuserdata(L, (void *)&sr_null_tag);
    luaL_setfuncs(L, module_funcs, 1); /* upvalue 1: the null sentinel */
    lua_pushliteral(L, SR_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushlightuserdata(L, (void *)&sr_null_tag);
    lua_setfield(L, -2, "null");
    return 1;
}
