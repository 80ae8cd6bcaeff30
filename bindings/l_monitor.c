/*
 * l_monitor.c — the monitor's C half for Lua: one-pass tensor statistics and
 * watching the gradient that reaches an op's output during backward.
 */
#include <math.h>

#include "bindings.h"

static void push_stats(lua_State *L, const gl_tensor_stats *s)
{
    double finite = (double)(s->count - s->nonfinite);
    double mean = finite > 0 ? s->sum / finite : 0.0 / 0.0;
    double variance = finite > 0 ? s->sum_squares / finite - mean * mean : 0.0 / 0.0;
    lua_createtable(L, 0, 11);
    lua_pushnumber(L, s->sum);
    lua_setfield(L, -2, "sum");
    lua_pushnumber(L, s->sum_squares);
    lua_setfield(L, -2, "sum_squares");
    lua_pushnumber(L, sqrt(s->sum_squares));
    lua_setfield(L, -2, "norm");
    lua_pushnumber(L, mean);
    lua_setfield(L, -2, "mean");
    lua_pushnumber(L, variance > 0 ? sqrt(variance) : 0.0);
    lua_setfield(L, -2, "std");
    lua_pushnumber(L, s->max_abs);
    lua_setfield(L, -2, "max_abs");
    lua_pushinteger(L, s->count);
    lua_setfield(L, -2, "count");
    lua_pushinteger(L, s->nonfinite);
    lua_setfield(L, -2, "nonfinite");
    lua_pushinteger(L, s->zeros);
    lua_setfield(L, -2, "zeros");
    lua_pushinteger(L, s->saturated);
    lua_setfield(L, -2, "saturated");
}

/* t:stats([low, high]) → {sum, sum_squares, norm, mean, std, max_abs, count,
 * nonfinite, zeros, saturated}; non-finite values are counted and left out of
 * the sums; `saturated` counts values outside [low, high]. */
static int l_stats(lua_State *L)
{
    gl_tensor *t = l_tensor_check(L, 1);
    float low = (float)luaL_optnumber(L, 2, -INFINITY), high = (float)luaL_optnumber(L, 3, INFINITY);
    gl_tensor_stats s;
    gl_tensor_statistics(t, low, high, &s);
    push_stats(L, &s);
    return 1;
}

/* t:watch_grad() → t; false when t is not the output of a recorded op (no graph). */
static int l_watch_grad(lua_State *L)
{
    gl_tensor *t = l_tensor_check(L, 1);
    if (gl_tensor_watch_grad(t, NULL)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_settop(L, 1);
    return 1;
}

/* t:watched_grad() → the statistics table of the gradient that reached t in the
 * last backward, or nil. */
static int l_watched_grad(lua_State *L)
{
    gl_tensor *t = l_tensor_check(L, 1);
    gl_tensor_stats s;
    if (!gl_tensor_watched_grad(t, &s)) return 0;
    push_stats(L, &s);
    return 1;
}

static const luaL_Reg methods[] = {
    {"stats", l_stats},
    {"watch_grad", l_watch_grad},
    {"watched_grad", l_watched_grad},
    {NULL, NULL},
};

void l_monitor_register(lua_State *L)
{
    l_tensor_push_methods(L);
    luaL_setfuncs(L, methods, 0);
    lua_pop(L, 1);
}
