/*
 * l_optim.c — the optimizers' fused kernels for Lua (gradlab.optim wires them),
 * and t:stats(), the one-pass statistics clipping and the monitor use.
 *
 * Kernels take (param, grad, state tensors..., step, group) where group is the
 * parameter group's table of hyper-parameters.
 */
#include <math.h>

#include "bindings.h"

static float field_number(lua_State *L, int table, const char *name, float fallback)
{
    lua_getfield(L, table, name);
    float value = lua_isnil(L, -1) ? fallback : (float)luaL_checknumber(L, -1);
    lua_pop(L, 1);
    return value;
}

static bool field_boolean(lua_State *L, int table, const char *name)
{
    lua_getfield(L, table, name);
    bool value = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return value;
}

static gl_tensor *optional_tensor(lua_State *L, int index)
{
    return lua_isnoneornil(L, index) ? NULL : l_tensor_check(L, index);
}

/* _sgd(param, grad, momentum_buffer|nil, step, group) */
static int l_sgd(lua_State *L)
{
    gl_error err;
    gl_tensor *p = l_tensor_check(L, 1), *g = l_tensor_check(L, 2), *b = optional_tensor(L, 3);
    int64_t step = luaL_checkinteger(L, 4);
    luaL_checktype(L, 5, LUA_TTABLE);
    gl_sgd_options o = {
        .lr = field_number(L, 5, "lr", 0), .momentum = field_number(L, 5, "momentum", 0),
        .dampening = field_number(L, 5, "dampening", 0), .weight_decay = field_number(L, 5, "weight_decay", 0),
        .l1 = field_number(L, 5, "l1", 0), .nesterov = field_boolean(L, 5, "nesterov"),
    };
    if (gl_optim_sgd(p, g, b, step, &o, &err)) return l_error_raise(L, &err);
    return 0;
}

/* _adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq|nil, step, group, decoupled) */
static int l_adam(lua_State *L)
{
    gl_error err;
    gl_tensor *p = l_tensor_check(L, 1), *g = l_tensor_check(L, 2);
    gl_tensor *m = l_tensor_check(L, 3), *v = l_tensor_check(L, 4), *vmax = optional_tensor(L, 5);
    int64_t step = luaL_checkinteger(L, 6);
    luaL_checktype(L, 7, LUA_TTABLE);
    lua_getfield(L, 7, "betas");
    float beta1 = 0.9f, beta2 = 0.999f;
    if (lua_istable(L, -1)) {
        lua_rawgeti(L, -1, 1);
        lua_rawgeti(L, -2, 2);
        beta1 = (float)luaL_checknumber(L, -2);
        beta2 = (float)luaL_checknumber(L, -1);
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
    gl_adam_options o = {
        .lr = field_number(L, 7, "lr", 1e-3f), .beta1 = beta1, .beta2 = beta2,
        .eps = field_number(L, 7, "eps", 1e-8f), .weight_decay = field_number(L, 7, "weight_decay", 0),
        .l1 = field_number(L, 7, "l1", 0), .decoupled = lua_toboolean(L, 8),
        .amsgrad = field_boolean(L, 7, "amsgrad"),
    };
    if (gl_optim_adam(p, g, m, v, vmax, step, &o, &err)) return l_error_raise(L, &err);
    return 0;
}

/* _rmsprop(param, grad, square_avg, momentum_buffer|nil, grad_avg|nil, step, group) */
static int l_rmsprop(lua_State *L)
{
    gl_error err;
    gl_tensor *p = l_tensor_check(L, 1), *g = l_tensor_check(L, 2), *v = l_tensor_check(L, 3);
    gl_tensor *b = optional_tensor(L, 4), *a = optional_tensor(L, 5);
    int64_t step = luaL_checkinteger(L, 6);
    luaL_checktype(L, 7, LUA_TTABLE);
    gl_rmsprop_options o = {
        .lr = field_number(L, 7, "lr", 1e-2f), .alpha = field_number(L, 7, "alpha", 0.99f),
        .eps = field_number(L, 7, "eps", 1e-8f), .weight_decay = field_number(L, 7, "weight_decay", 0),
        .momentum = field_number(L, 7, "momentum", 0), .l1 = field_number(L, 7, "l1", 0),
        .centered = field_boolean(L, 7, "centered"),
    };
    if (gl_optim_rmsprop(p, g, v, b, a, step, &o, &err)) return l_error_raise(L, &err);
    return 0;
}

/* _adagrad(param, grad, sum, step, group) */
static int l_adagrad(lua_State *L)
{
    gl_error err;
    gl_tensor *p = l_tensor_check(L, 1), *g = l_tensor_check(L, 2), *s = l_tensor_check(L, 3);
    int64_t step = luaL_checkinteger(L, 4);
    luaL_checktype(L, 5, LUA_TTABLE);
    gl_adagrad_options o = {
        .lr = field_number(L, 5, "lr", 1e-2f), .lr_decay = field_number(L, 5, "lr_decay", 0),
        .eps = field_number(L, 5, "eps", 1e-10f), .weight_decay = field_number(L, 5, "weight_decay", 0),
        .l1 = field_number(L, 5, "l1", 0),
    };
    if (gl_optim_adagrad(p, g, s, step, &o, &err)) return l_error_raise(L, &err);
    return 0;
}

/* t:stats() → {sum, sum_squares, norm, mean, max_abs, count, nonfinite, zeros}; non-finite
 * values are counted and left out of the sums. */
static int l_stats(lua_State *L)
{
    gl_tensor *t = l_tensor_check(L, 1);
    gl_tensor_stats s;
    gl_tensor_statistics(t, &s);
    lua_createtable(L, 0, 8);
    lua_pushnumber(L, s.sum);
    lua_setfield(L, -2, "sum");
    lua_pushnumber(L, s.sum_squares);
    lua_setfield(L, -2, "sum_squares");
    lua_pushnumber(L, sqrt(s.sum_squares));
    lua_setfield(L, -2, "norm");
    lua_pushnumber(L, s.count > s.nonfinite ? s.sum / (double)(s.count - s.nonfinite) : 0.0 / 0.0);
    lua_setfield(L, -2, "mean");
    lua_pushnumber(L, s.max_abs);
    lua_setfield(L, -2, "max_abs");
    lua_pushinteger(L, s.count);
    lua_setfield(L, -2, "count");
    lua_pushinteger(L, s.nonfinite);
    lua_setfield(L, -2, "nonfinite");
    lua_pushinteger(L, s.zeros);
    lua_setfield(L, -2, "zeros");
    return 1;
}

static const luaL_Reg functions[] = {
    {"_optim_sgd", l_sgd}, {"_optim_adam", l_adam}, {"_optim_rmsprop", l_rmsprop},
    {"_optim_adagrad", l_adagrad},
    {NULL, NULL},
};

void l_optim_register(lua_State *L)
{
    luaL_setfuncs(L, functions, 0);
    l_tensor_push_methods(L);
    lua_pushcfunction(L, l_stats);
    lua_setfield(L, -2, "stats");
    lua_pop(L, 1);
}
