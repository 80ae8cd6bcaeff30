/*
 * l_autograd.c — autograd for Lua: marking parameters, backward, no_grad,
 * detach, retain_grad and anomaly mode.
 */
#include <string.h>

#include "bindings.h"

/* t:requires_grad([flag = true]) marks a leaf and returns it. */
static int l_requires_grad(lua_State *L)
{
    gl_error err;
    gl_tensor *t = l_tensor_check(L, 1);
    bool flag = lua_isnoneornil(L, 2) ? true : lua_toboolean(L, 2);
    if (gl_tensor_set_requires_grad(t, flag, &err)) return l_error_raise(L, &err);
    lua_settop(L, 1);
    return 1;
}

/* gl.param(t): t itself marked as a parameter; a non-leaf is detached first. */
static int l_param(lua_State *L)
{
    gl_error err;
    gl_tensor *t = l_tensor_check(L, 1);
    if (t->grad_fn) {
        gl_tensor **slot = l_tensor_push_slot(L);
        if (gl_tensor_detach(t, slot, &err)) return l_error_raise(L, &err);
        t = *slot;
    } else {
        lua_settop(L, 1);
    }
    t->requires_grad = true;
    return 1;
}

/* t:backward([grad] [, {retain_graph = false}]) */
static int l_backward(lua_State *L)
{
    gl_error err;
    gl_tensor *t = l_tensor_check(L, 1);
    gl_tensor *grad = NULL;
    int options = 0;
    if (lua_istable(L, 2)) options = 2;
    else if (!lua_isnoneornil(L, 2)) grad = l_tensor_check(L, 2);
    if (!options && lua_istable(L, 3)) options = 3;
    bool retain = false;
    if (options) {
        lua_getfield(L, options, "retain_graph");
        retain = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    if (gl_tensor_backward(t, grad, retain, &err)) return l_error_raise(L, &err);
    return 0;
}

static int l_detach(lua_State *L)
{
    gl_error err;
    gl_tensor *t = l_tensor_check(L, 1);
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_tensor_detach(t, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static int l_retain_grad(lua_State *L)
{
    gl_error err;
    gl_tensor *t = l_tensor_check(L, 1);
    if (gl_tensor_retain_grad(t, &err)) return l_error_raise(L, &err);
    lua_settop(L, 1);
    return 1;
}

static int l_zero_grad(lua_State *L)
{
    gl_tensor *t = l_tensor_check(L, 1);
    gl_tensor_zero_grad(t);
    lua_settop(L, 1);
    return 1;
}

static int l_is_leaf(lua_State *L)
{
    lua_pushboolean(L, l_tensor_check(L, 1)->grad_fn == NULL);
    return 1;
}

static int l_tracks_grad(lua_State *L)
{
    lua_pushboolean(L, gl_tensor_tracks_grad(l_tensor_check(L, 1)));
    return 1;
}

/* t:grad_fn() → the name of the op that made t, or nil for a leaf. */
static int l_grad_fn(lua_State *L)
{
    gl_tensor *t = l_tensor_check(L, 1);
    if (!t->grad_fn) return 0;
    lua_pushstring(L, gl_node_name(t->grad_fn));
    return 1;
}

/* t:set_name(name): the name anomaly messages and the monitor use. */
static int l_set_name(lua_State *L)
{
    gl_error err;
    gl_tensor *t = l_tensor_check(L, 1);
    const char *name = luaL_optstring(L, 2, NULL);
    if (gl_tensor_set_name(t, name, &err)) return l_error_raise(L, &err);
    lua_settop(L, 1);
    return 1;
}

static int l_name(lua_State *L)
{
    gl_tensor *t = l_tensor_check(L, 1);
    if (!t->name) return 0;
    lua_pushstring(L, t->name);
    return 1;
}

/* gl.no_grad(fn, ...) runs fn with recording off and returns its results;
 * grad mode is restored even when fn raises. */
static int l_no_grad(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    bool previous = gl_grad_enabled();
    gl_set_grad_enabled(false);
    int base = lua_gettop(L);
    int status = lua_pcall(L, base - 1, LUA_MULTRET, 0);
    gl_set_grad_enabled(previous);
    if (status != LUA_OK) return lua_error(L);
    return lua_gettop(L);
}

static int l_set_grad_enabled(lua_State *L)
{
    luaL_checkany(L, 1);
    gl_set_grad_enabled(lua_toboolean(L, 1));
    return 0;
}

static int l_is_grad_enabled(lua_State *L)
{
    lua_pushboolean(L, gl_grad_enabled());
    return 1;
}

/* gl.detect_anomaly(flag) → the previous setting. */
static int l_detect_anomaly(lua_State *L)
{
    bool previous = gl_detect_anomaly_enabled();
    if (!lua_isnone(L, 1)) gl_set_detect_anomaly(lua_toboolean(L, 1));
    lua_pushboolean(L, previous);
    return 1;
}

/* gl._module_path([path]) → the previous path; modules set it around forward
 * so the graph and anomaly messages know which module ran an op. */
static int l_module_path(lua_State *L)
{
    lua_pushstring(L, gl_module_path());
    if (!lua_isnone(L, 1)) gl_set_module_path(luaL_optstring(L, 1, ""));
    return 1;
}

/* gl._module_done(previous, output, taps|nil): ends a module's forward: the
 * path back to `previous`, and the output to the module's monitor taps. */
static int l_module_done(lua_State *L)
{
    gl_set_module_path(luaL_optstring(L, 1, ""));
    l_monitor_observe_taps(L, 3, 2);
    return 0;
}

static const luaL_Reg module_functions[] = {
    {"param", l_param},
    {"no_grad", l_no_grad},
    {"set_grad_enabled", l_set_grad_enabled},
    {"is_grad_enabled", l_is_grad_enabled},
    {"detect_anomaly", l_detect_anomaly},
    {"_module_path", l_module_path},
    {"_module_done", l_module_done},
    {NULL, NULL},
};

static const luaL_Reg methods[] = {
    {"requires_grad", l_requires_grad},
    {"backward", l_backward},
    {"detach", l_detach},
    {"retain_grad", l_retain_grad},
    {"zero_grad", l_zero_grad},
    {"is_leaf", l_is_leaf},
    {"tracks_grad", l_tracks_grad},
    {"grad_fn", l_grad_fn},
    {"set_name", l_set_name},
    {"name", l_name},
    {NULL, NULL},
};

void l_autograd_register(lua_State *L)
{
    l_tensor_push_methods(L);
    luaL_setfuncs(L, methods, 0);
    lua_pop(L, 1);
    luaL_setfuncs(L, module_functions, 0);
}
