/*
 * compat.h - every difference between the Lua 5.3 and 5.4 C APIs that
 * lsynroute.c relies on, in one place. lsynroute.c is compiled once per Lua
 * version from the same source (-I/usr/include/lua5.3 or lua5.4); it never
 * links -llua: the host (lua5.x or HAProxy) provides the symbols.
 */
#ifndef SR_COMPAT_H
#define SR_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if !defined(LUA_VERSION_NUM) || LUA_VERSION_NUM < 503
#error "synroute needs Lua 5.3 or 5.4"
#endif

/* Full userdata without user values (5.4 added the count argument). */
#if LUA_VERSION_NUM >= 504
#define sr_newuserdata(L, sz) lua_newuserdatauv((L), (sz), 0)
#else
#define sr_newuserdata(L, sz) lua_newuserdata((L), (sz))
#endif

/* Both versions: lua_geti/lua_getfield return the value's type, luaL_len,
 * luaL_setfuncs with upvalues, luaL_newlibtable, lua_isinteger,
 * lua_stringtonumber and luaL_tolstring exist; nothing else differs for the
 * subset used here. */

#endif
