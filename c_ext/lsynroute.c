/*
 * lsynroute.c - the Lua module `synroute` (docs/design.md "Lua module
 * synroute"). The only file that knows lua_State. Built once for Lua 5.3
 * (HAProxy) and once for Lua 5.4 (CLI, tests); every version difference is
 * in compat.h.
 *
 * Conventions: data errors return nil, msg; only wrong argument types raise
 * (luaL_check*). Indices in messages are 1-based, as Lua users count. Objects
 * (regex sets, routers) are full userdata with named metatables and __gc; a
 * router or set belongs to the Lua state that built it and is used by one
 * caller at a time (HAProxy's Lua lock serializes converter calls).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "sr_core.h"

#define SR_VERSION   "0.1.0"
#define MT_RSET      "synroute.rset"
#define MT_ROUTER    "synroute.router"
#define ERRLEN       512
#define PACKED_MAX   600   /* backend (<=255) | class (<=255) | hkey (16)  */

/* The YAML null sentinel: a light userdata holding the address of an
 * immutable object. Module functions get it as upvalue 1 (push_null). */
static const char sr_null_tag = 0;
#define push_null(L) lua_pushvalue((L), lua_upvalueindex(1))

typedef struct { sr_rset *s; } l_rset;
typedef struct { sr_router *r; } l_router;

/* Rewrite a leading "<word> N" (0-based, from the C core) to 1-based, then
 * push nil, msg. Always returns 2. */
static int push_err(lua_State *L, const char *msg)
{
    static const char *const words[] = { "entry ", "target ", "as_token " };
    lua_pushnil(L);
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t wl = strlen(words[i]);
        if (strncmp(msg, words[i], wl) == 0 && msg[wl] >= '0' && msg[wl] <= '9') {
            char *end;
            unsigned long long v = strtoull(msg + wl, &end, 10);
            lua_pushfstring(L, "%s%I%s", words[i], (lua_Integer)(v + 1), end);
            return 2;
        }
    }
    lua_pushstring(L, msg);
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
            if (lua_rawgeti(L, idx, i) != LUA_TSTRING) { lua_pop(L, 1); return -1; }
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

static l_rset *check_rset(lua_State *L)
{
    l_rset *u = luaL_checkudata(L, 1, MT_RSET);
    if (!u->s) luaL_argerror(L, 1, "regex set already freed");
    return u;
}

/* synroute.regex_set(patterns, masks?, names?) -> set | nil, err */
static int l_regex_set(lua_State *L)
{
    size_t n;
    const char **pats, **names;
    unsigned *masks;
    char err[ERRLEN];
    l_rset *u;
    int have_names;

    luaL_checktype(L, 1, LUA_TTABLE);
    if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
    have_names = lua_istable(L, 3);
    n = lua_rawlen(L, 1);
    lua_settop(L, 3);
    /* scratch arrays as userdata: collected even if something raises */
    pats = sr_newuserdata(L, (n ? n : 1) * sizeof *pats);
    names = sr_newuserdata(L, (n ? n : 1) * sizeof *names);
    masks = sr_newuserdata(L, (n ? n : 1) * sizeof *masks);
    for (size_t i = 0; i < n; i++) {
        size_t pl;
        lua_Integer li = (lua_Integer)i + 1;
        if (lua_rawgeti(L, 1, li) != LUA_TSTRING) {
            lua_pushnil(L);
            lua_pushfstring(L, "entry %I: pattern must be a string", li);
            return 2;
        }
        pats[i] = lua_tolstring(L, -1, &pl);   /* anchored in the table */
        lua_pop(L, 1);
        if (strlen(pats[i]) != pl) {
            lua_pushnil(L);
            lua_pushfstring(L, "entry %I: pattern contains a NUL byte", li);
            return 2;
        }
        names[i] = NULL;
        if (have_names) {
            if (lua_rawgeti(L, 3, li) == LUA_TSTRING) names[i] = lua_tostring(L, -1);
            lua_pop(L, 1);
        }
        masks[i] = 0;
        if (lua_istable(L, 2)) {
            long m;
            lua_rawgeti(L, 2, li);
            m = to_mask(L, -1);
            lua_pop(L, 1);
            if (m < 0) {
                lua_pushnil(L);
                lua_pushfstring(L, "entry %I: bad method mask", li);
                return 2;
            }
            masks[i] = (unsigned)m;
        }
    }
    u = sr_newuserdata(L, sizeof *u);
    u->s = NULL;
    luaL_setmetatable(L, MT_RSET);
    u->s = sr_rset_new(pats, masks, names, n, err, sizeof err);
    if (!u->s) return push_err(L, err);
    return 1;
}

/* set:match / set:match_loop (subject, method?) -> 1-based index | nil. */
static int rset_match_common(lua_State *L, int loop)
{
    l_rset *u = check_rset(L);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    unsigned m = opt_method(L, 3);
    int r = loop ? sr_rset_match_loop(u->s, s, len, m) : sr_rset_match(u->s, s, len, m);
    if (r < 0) lua_pushnil(L);
    else lua_pushinteger(L, (lua_Integer)r + 1);
    return 1;
}

static int l_rset_match(lua_State *L) { return rset_match_common(L, 0); }
static int l_rset_match_loop(lua_State *L) { return rset_match_common(L, 1); }

/* set:jit() -> boolean. */
static int l_rset_jit(lua_State *L)
{
    lua_pushboolean(L, sr_rset_jit(check_rset(L)->s));
    return 1;
}

/* #set -> number of entries. */
static int l_rset_len(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)sr_rset_size(check_rset(L)->s));
    return 1;
}

/* __gc: frees the set once (idempotent). */
static int l_rset_gc(lua_State *L)
{
    l_rset *u = luaL_checkudata(L, 1, MT_RSET);
    sr_rset_free(u->s);
    u->s = NULL;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Routers.                                                                  */

static l_router *check_router(lua_State *L)
{
    l_router *u = luaL_checkudata(L, 1, MT_ROUTER);
    if (!u->r) luaL_argerror(L, 1, "router already freed");
    return u;
}

/* Field `k` of the table at idx as a string (NULL when nil). Sets *bad when
 * present but not a string. Leaves the value on the stack (anchors it). */
static const char *field_str(lua_State *L, int idx, const char *k, int *bad)
{
    int t = lua_getfield(L, idx, k);
    if (t == LUA_TNIL) return NULL;
    if (t != LUA_TSTRING) { *bad = 1; return NULL; }
    {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        if (strlen(s) != n) { *bad = 1; return NULL; }
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

#define SPEC_ERR(...) do { lua_pushnil(L); lua_pushfstring(L, __VA_ARGS__); return 2; } while (0)

/* synroute.router(spec) -> router | nil, err */
static int l_router_new(lua_State *L)
{
    sr_router_spec sp;
    sr_entry *ents;
    sr_target *tgs;
    const char **astok, **assnd;
    size_t ne, nt, nas = 0;
    int bad = 0, spec_i, ents_i, tgs_i, as_i;
    char err[ERRLEN];
    l_router *u;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    spec_i = 1;
    memset(&sp, 0, sizeof sp);

    sp.secret = field_str(L, spec_i, "secret", &bad);
    if (bad || !sp.secret) SPEC_ERR("spec.secret: string expected");
    sp.secret_len = lua_rawlen(L, -1);

    if (lua_getfield(L, spec_i, "entries") != LUA_TTABLE) SPEC_ERR("spec.entries: table expected");
    ents_i = lua_gettop(L);
    if (lua_getfield(L, spec_i, "targets") != LUA_TTABLE) SPEC_ERR("spec.targets: table expected");
    tgs_i = lua_gettop(L);
    ne = lua_rawlen(L, ents_i);
    nt = lua_rawlen(L, tgs_i);
    if (nt == 0) SPEC_ERR("spec.targets: empty");
    ents = sr_newuserdata(L, (ne ? ne : 1) * sizeof *ents);
    tgs = sr_newuserdata(L, nt * sizeof *tgs);
    memset(ents, 0, (ne ? ne : 1) * sizeof *ents);
    memset(tgs, 0, nt * sizeof *tgs);

    for (size_t i = 0; i < nt; i++) {
        lua_Integer li = (lua_Integer)i + 1;
        int ti, t;
        const char *key;
        sr_target *tg = &tgs[i];
        if (lua_rawgeti(L, tgs_i, li) != LUA_TTABLE) SPEC_ERR("target %I: table expected", li);
        ti = lua_gettop(L);
        tg->cls = field_str(L, ti, "class", &bad);
        if (bad || !tg->cls) SPEC_ERR("target %I: class: string expected", li);
        tg->be_a = field_str(L, ti, "be_a", &bad);
        if (bad || !tg->be_a) SPEC_ERR("target %I: be_a: string expected", li);
        tg->be_b = field_str(L, ti, "be_b", &bad);
        if (bad) SPEC_ERR("target %I: be_b: string expected", li);
        tg->reason = field_str(L, ti, "reason", &bad);
        if (bad) SPEC_ERR("target %I: reason: string expected", li);
        key = field_str(L, ti, "key", &bad);
        if (bad) SPEC_ERR("target %I: key: string expected", li);
        if (!key || strcmp(key, "none") == 0) tg->key = SR_KEY_NONE;
        else if (strcmp(key, "user") == 0) tg->key = SR_KEY_USER;
        else if (strcmp(key, "room") == 0) tg->key = SR_KEY_ROOM;
        else if (strcmp(key, "origin") == 0) tg->key = SR_KEY_ORIGIN;
        else if (strcmp(key, "path_user") == 0) tg->key = SR_KEY_PATH_USER;
        else SPEC_ERR("target %I: unknown key '%s'", li, key);
        t = lua_getfield(L, ti, "as_ok");
        if (t != LUA_TNIL && t != LUA_TBOOLEAN) SPEC_ERR("target %I: as_ok: boolean expected", li);
        tg->as_ok = lua_toboolean(L, -1);
        lua_pop(L, 1);
        t = lua_getfield(L, ti, "mask_a");
        if (t == LUA_TTABLE && lua_rawlen(L, -1) == 0) {
            /* an empty list: no method gets be_a */
            tg->mask_a = SR_M_ALL;
            tg->be_a = tg->be_b ? tg->be_b : tg->be_a;
        } else {
            long m = to_mask(L, lua_gettop(L));
            if (m < 0) SPEC_ERR("target %I: mask_a: list of methods expected", li);
            tg->mask_a = (unsigned)m;
        }
        lua_pop(L, 1);
        /* the strings stay referenced by the spec table (arg 1) */
        lua_settop(L, ti - 1);
    }

    for (size_t i = 0; i < ne; i++) {
        lua_Integer li = (lua_Integer)i + 1;
        int ei, t;
        const char *refine;
        sr_entry *en = &ents[i];
        if (lua_rawgeti(L, ents_i, li) != LUA_TTABLE) SPEC_ERR("entry %I: table expected", li);
        ei = lua_gettop(L);
        en->id = field_str(L, ei, "id", &bad);
        if (bad || !en->id) SPEC_ERR("entry %I: id: string expected", li);
        en->pattern = field_str(L, ei, "pattern", &bad);
        if (bad || !en->pattern) SPEC_ERR("entry %I (%s): pattern: string expected", li, en->id);
        t = lua_getfield(L, ei, "methods");
        if (t == LUA_TTABLE && lua_rawlen(L, -1) == 0)
            SPEC_ERR("entry %I (%s): methods: empty list", li, en->id);
        {
            long m = to_mask(L, lua_gettop(L));
            if (m < 0) SPEC_ERR("entry %I (%s): methods: list of methods expected", li, en->id);
            en->methods = (unsigned)m;
        }
        lua_pop(L, 1);
        en->target = field_index(L, ei, "target", nt);
        if (en->target < 0) SPEC_ERR("entry %I (%s): target: index 1..%I expected", li, en->id, (lua_Integer)nt);
        refine = field_str(L, ei, "refine", &bad);
        if (bad) SPEC_ERR("entry %I (%s): refine: string expected", li, en->id);
        if (!refine) en->refine = SR_REFINE_NONE;
        else if (strcmp(refine, "since") == 0) en->refine = SR_REFINE_SINCE;
        else if (strcmp(refine, "pos") == 0) en->refine = SR_REFINE_POS;
        else SPEC_ERR("entry %I (%s): unknown refine '%s'", li, en->id, refine);
        en->alt_target = en->target;
        if (en->refine != SR_REFINE_NONE) {
            en->alt_target = field_index(L, ei, "alt_target", nt);
            if (en->alt_target < 0)
                SPEC_ERR("entry %I (%s): alt_target: index 1..%I expected", li, en->id, (lua_Integer)nt);
        }
        lua_settop(L, ei - 1);
    }

    sp.fallback_target = field_index(L, spec_i, "fallback_target", nt);
    if (sp.fallback_target < 0) SPEC_ERR("spec.fallback_target: index 1..%I expected", (lua_Integer)nt);
    sp.as_backend = field_str(L, spec_i, "as_backend", &bad);
    if (bad) SPEC_ERR("spec.as_backend: string expected");

    {
        int t = lua_getfield(L, spec_i, "as_tokens");
        if (t != LUA_TNIL && t != LUA_TTABLE) SPEC_ERR("spec.as_tokens: table expected");
        as_i = lua_gettop(L);
        if (t == LUA_TTABLE) nas = lua_rawlen(L, as_i);
    }
    astok = sr_newuserdata(L, (nas ? nas : 1) * sizeof *astok);
    assnd = sr_newuserdata(L, (nas ? nas : 1) * sizeof *assnd);
    for (size_t i = 0; i < nas; i++) {
        lua_Integer li = (lua_Integer)i + 1;
        int ai;
        if (lua_rawgeti(L, as_i, li) != LUA_TTABLE) SPEC_ERR("as_token %I: table expected", li);
        ai = lua_gettop(L);
        astok[i] = field_str(L, ai, "token", &bad);
        if (bad || !astok[i] || !astok[i][0]) SPEC_ERR("as_token %I: token: non-empty string expected", li);
        assnd[i] = field_str(L, ai, "sender", &bad);
        if (bad) SPEC_ERR("as_token %I: sender: string expected", li);
        lua_settop(L, ai - 1);
    }

    sp.entries = ents; sp.n_entries = ne;
    sp.targets = tgs; sp.n_targets = nt;
    sp.as_tokens = astok; sp.as_senders = assnd; sp.n_as_tokens = nas;

    u = sr_newuserdata(L, sizeof *u);
    u->r = NULL;
    luaL_setmetatable(L, MT_ROUTER);
    u->r = sr_router_new(&sp, err, sizeof err);
    if (!u->r) return push_err(L, err);
    return 1;
}

/* router:route(input) -> "backend|class|hkey". Raises only on a non-string. */
static int l_router_route(lua_State *L)
{
    l_router *u = check_router(L);
    size_t len;
    const char *in = luaL_checklstring(L, 2, &len);
    char out[PACKED_MAX];
    size_t n = sr_route_packed(u->r, in, len, out, sizeof out);
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
    l_router *u = check_router(L);
    size_t len;
    const char *in = luaL_checklstring(L, 2, &len);
    sr_decision d;
    sr_route(u->r, in, len, &d);
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
    l_router *u = lua_touserdata(L, lua_upvalueindex(1));
    const char *in = NULL;
    size_t len = 0;
    char out[PACKED_MAX];
    size_t n;
    if (lua_type(L, 1) == LUA_TSTRING) in = lua_tolstring(L, 1, &len);
    n = sr_route_packed(u ? u->r : NULL, in, len, out, sizeof out);
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
    l_router *u = check_router(L);
    size_t kl;
    const char *kind = luaL_checkstring(L, 2);
    const char *key = luaL_checklstring(L, 3, &kl);
    char out[17];
    sr_router_hkey(u->r, kind, key, kl, out);
    lua_pushstring(L, out);
    return 1;
}

/* __gc: frees the router once (idempotent). */
static int l_router_gc(lua_State *L)
{
    l_router *u = luaL_checkudata(L, 1, MT_ROUTER);
    sr_router_free(u->r);
    u->r = NULL;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Parsers and hash.                                                         */

/* synroute.parse_token(auth?, query?) -> kind, localpart|nil. Never returns
 * the token itself. "-" as auth means absent, like HAProxy's log-format. */
static int l_parse_token(lua_State *L)
{
    size_t alen = 0, qlen = 0, toklen = 0, kl = 0;
    const char *auth = luaL_optlstring(L, 1, NULL, &alen);
    const char *query = luaL_optlstring(L, 2, NULL, &qlen);
    const char *tok = NULL;
    char tokbuf[4096], key[512];
    static const char *const kinds[] = { "none", "syt", "macaroon", "mas", "opaque" };
    sr_tok_kind k;
    if (auth && alen == 1 && auth[0] == '-') { auth = NULL; alen = 0; }
    if (sr_token_find(auth, alen, query, qlen, tokbuf, sizeof tokbuf, &tok, &toklen) != 1) {
        lua_pushstring(L, "none");
        return 1;
    }
    k = sr_token_classify(tok, toklen, key, sizeof key - 1, &kl);
    if ((unsigned)k > SR_TOK_OPAQUE) k = SR_TOK_OPAQUE;
    lua_pushstring(L, kinds[k]);
    if ((k == SR_TOK_SYT || k == SR_TOK_MACAROON) && kl > 0) {
        lua_pushlstring(L, key, kl);
        return 2;
    }
    return 1;
}

/* synroute.xmatrix_origin(header) -> origin | nil, err. */
static int l_xmatrix_origin(lua_State *L)
{
    size_t len;
    const char *h = luaL_checklstring(L, 1, &len);
    char dst[1024];
    long r = sr_xmatrix_origin(h, len, dst, sizeof dst);
    if (r > 0) { lua_pushlstring(L, dst, (size_t)r); return 1; }
    lua_pushnil(L);
    lua_pushstring(L, r == 0 ? "not an X-Matrix header" : "malformed X-Matrix header or no origin");
    return 2;
}

/* synroute.room_from_path(path) -> decoded room ID/alias | nil. */
static int l_room_from_path(lua_State *L)
{
    size_t len;
    const char *p = luaL_checklstring(L, 1, &len);
    char dst[1024];
    long r = sr_room_from_path(p, len, dst, sizeof dst);
    if (r > 0) lua_pushlstring(L, dst, (size_t)r);
    else lua_pushnil(L);
    return 1;
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
    if (r < 0) { lua_pushnil(L); return 1; }
    luaL_pushresultsize(&b, (size_t)r);
    return 1;
}

/* synroute.hash(secret, s) -> 16 hex digits of SipHash(key(secret), s). */
static int l_hash(lua_State *L)
{
    size_t sl, dl;
    const char *secret = luaL_checklstring(L, 1, &sl);
    const char *s = luaL_checklstring(L, 2, &dl);
    sr_hkey k = sr_hkey_from_secret(secret, sl);
    char out[17];
    sr_hex64(sr_siphash(&k, s, dl), out);
    lua_pushstring(L, out);
    return 1;
}

/* ------------------------------------------------------------------------ */
/* YAML -> Lua.                                                              */

typedef struct {
    const char *name;   /* file name / chunk name for messages            */
    int cache;          /* stack index: node lightuserdata -> Lua value   */
    int pos;            /* stack index: the pos side table                */
    char err[ERRLEN];
} yconv;

/* Plain decimal integer of at most 18 digits (fits lua_Integer)? */
static int is_int_text(const char *s, size_t n)
{
    size_t i = 0;
    if (n && (s[0] == '-' || s[0] == '+')) i = 1;
    if (i == n || n - i > 18) return 0;     /* fits in 64 bits for sure */
    for (; i < n; i++) if (s[i] < '0' || s[i] > '9') return 0;
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
            !strcmp(s, "NULL")) { push_null(L); return; }
        if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
            lua_pushboolean(L, 1); return;
        }
        if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
            lua_pushboolean(L, 0); return;
        }
        if (is_int_text(s, len)) {
            lua_pushinteger(L, (lua_Integer)strtoll(s, NULL, 10));
            return;
        }
    }
    lua_pushlstring(L, s, len);
}

/* Push the Lua value of node n. 0 on error (message in c->err). */
static int push_node(lua_State *L, const sr_ynode *n, yconv *c, int depth)
{
    int tbl, ptab, keys, items;
    if (depth > 512) {
        snprintf(c->err, sizeof c->err, "%s:%d:%d: nesting too deep", c->name, n->line, n->col);
        return 0;
    }
    luaL_checkstack(L, 10, "yaml nesting");
    if (n->type == SR_Y_NULL) { push_null(L); return 1; }
    if (n->type == SR_Y_SCALAR) { push_scalar(L, n); return 1; }
    /* shared (aliased) nodes become the same table */
    lua_pushlightuserdata(L, (void *)n);
    if (lua_rawget(L, c->cache) != LUA_TNIL) return 1;
    lua_pop(L, 1);

    lua_createtable(L, n->type == SR_Y_SEQ ? (int)n->n : 0, n->type == SR_Y_MAP ? (int)n->n : 0);
    tbl = lua_gettop(L);
    lua_pushlightuserdata(L, (void *)n);
    lua_pushvalue(L, tbl);
    lua_rawset(L, c->cache);
    /* pos[tbl] = { line=, col=, keys={}, items={} } */
    lua_createtable(L, 0, 4);
    ptab = lua_gettop(L);
    lua_pushinteger(L, n->line); lua_setfield(L, ptab, "line");
    lua_pushinteger(L, n->col); lua_setfield(L, ptab, "col");
    lua_newtable(L); keys = lua_gettop(L);
    lua_pushvalue(L, keys); lua_setfield(L, ptab, "keys");
    lua_newtable(L); items = lua_gettop(L);
    lua_pushvalue(L, items); lua_setfield(L, ptab, "items");
    lua_pushvalue(L, tbl);
    lua_pushvalue(L, ptab);
    lua_rawset(L, c->pos);

    if (n->type == SR_Y_SEQ) {
        for (size_t i = 0; i < n->n; i++) {
            const sr_ynode *it = n->items[i];
            if (!push_node(L, it, c, depth + 1)) return 0;
            lua_rawseti(L, tbl, (lua_Integer)i + 1);
            lua_pushinteger(L, it->line);
            lua_rawseti(L, items, (lua_Integer)i + 1);
        }
    } else {
        for (size_t i = 0; i < n->n; i++) {
            const sr_ynode *k = n->items[2 * i], *v = n->items[2 * i + 1];
            const char *ks;
            size_t kl;
            if (k->type == SR_Y_SCALAR) { ks = k->str ? k->str : ""; kl = k->str ? k->len : 0; }
            else if (k->type == SR_Y_NULL) { ks = ""; kl = 0; }
            else {
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
    }
    lua_settop(L, tbl);
    return 1;
}

/* The doc is owned by a userdata with __gc while it is converted, so a
 * memory error raised by Lua cannot leak it. Returns 2: doc, pos or nil, err. */
typedef struct { sr_ydoc *d; } l_ydoc;

/* __gc of the temporary doc owner. */
static int l_ydoc_gc(lua_State *L)
{
    l_ydoc *u = lua_touserdata(L, 1);
    if (u && u->d) { sr_ydoc_free(u->d); u->d = NULL; }
    return 0;
}

/* Convert doc d (or report err when d is NULL); frees d on every path. */
static int finish_yaml(lua_State *L, sr_ydoc *d, const char *err, const char *name)
{
    l_ydoc *u;
    yconv c;
    const sr_ynode *root;
    int top;
    if (!d) { lua_pushnil(L); lua_pushstring(L, err); return 2; }
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
    lua_newtable(L); c.cache = lua_gettop(L);
    lua_newtable(L); c.pos = lua_gettop(L);
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
    lua_pushvalue(L, c.pos);     /* ... value pos */
    return 2;
}

/* synroute.yaml_load(path) -> doc, pos | nil, "path:line:col: msg". */
static int l_yaml_load(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    char err[ERRLEN];
    sr_ydoc *d = sr_yaml_load_file(path, err, sizeof err);
    return finish_yaml(L, d, err, path);
}

/* synroute.yaml_parse(str, name?) -> doc, pos | nil, err. */
static int l_yaml_parse(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    const char *name = luaL_optstring(L, 2, "<string>");
    char err[ERRLEN];
    sr_ydoc *d = sr_yaml_load_string(s, len, name, err, sizeof err);
    return finish_yaml(L, d, err, name);
}

/* ------------------------------------------------------------------------ */

static const luaL_Reg rset_methods[] = {
    { "match", l_rset_match },
    { "match_loop", l_rset_match_loop },
    { "jit", l_rset_jit },
    { NULL, NULL }
};

static const luaL_Reg router_methods[] = {
    { "route", l_router_route },
    { "explain", l_router_explain },
    { "converter", l_router_converter },
    { "hkey", l_router_hkey },
    { NULL, NULL }
};

static const luaL_Reg module_funcs[] = {
    { "yaml_load", l_yaml_load },
    { "yaml_parse", l_yaml_parse },
    { "regex_set", l_regex_set },
    { "router", l_router_new },
    { "parse_token", l_parse_token },
    { "xmatrix_origin", l_xmatrix_origin },
    { "room_from_path", l_room_from_path },
    { "query_param", l_query_param },
    { "hash", l_hash },
    { NULL, NULL }
};

/* Create (or refresh) the named metatable mt with methods, __gc, __len. */
static void new_class(lua_State *L, const char *mt, const luaL_Reg *methods,
                      lua_CFunction gc, lua_CFunction len)
{
    luaL_newmetatable(L, mt);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
    if (len) { lua_pushcfunction(L, len); lua_setfield(L, -2, "__len"); }
    lua_pushstring(L, mt);
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);
}

/* The module entry point (require "synroute"). */
int luaopen_synroute(lua_State *L);
int luaopen_synroute(lua_State *L)
{
    new_class(L, MT_RSET, rset_methods, l_rset_gc, l_rset_len);
    new_class(L, MT_ROUTER, router_methods, l_router_gc, NULL);
    luaL_newlibtable(L, module_funcs);
    lua_pushlightuserdata(L, (void *)&sr_null_tag);
    luaL_setfuncs(L, module_funcs, 1);   /* upvalue 1: the null sentinel */
    lua_pushliteral(L, SR_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushlightuserdata(L, (void *)&sr_null_tag);
    lua_setfield(L, -2, "null");
    return 1;
}
