/*
 * l_optim.c — the optimizers' fused kernels for Lua (gradlab.optim wires them),
 *
 * Kernels take (param, grad, state tensors..., step, group [, norms]) where
 * group is the parameter group's table of hyper-parameters.  With `norms`
 * true they return ‖Δp‖ and ‖p‖ (before the step), computed in the same pass,
 * for the monitor's update ratio; with a monitor's parameter tap instead they
 * write its update ratio themselves.
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

/* The kernels' optional last argument: `true` asks for ‖Δp‖ and ‖p‖ back; a
 * monitor's parameter tap has them written straight into its recorder (no Lua
 * call per parameter). */
typedef struct norms_request {
    gl_update_norms norms;
    gl_monitor *monitor;
    int64_t param;
    bool wanted;
} norms_request;

static gl_update_norms *norms_wanted(lua_State *L, int index, norms_request *r)
{
    r->monitor = NULL;
    r->wanted = lua_type(L, index) == LUA_TUSERDATA ? l_monitor_param_tap(L, index, &r->monitor, &r->param)
                                                    : lua_toboolean(L, index);
    return r->wanted ? &r->norms : NULL;
}

/* Hands the norms over; returns the result count. */
static int norms_finish(lua_State *L, const norms_request *r)
{
    if (!r->wanted) return 0;
    if (r->monitor) {
        gl_monitor_note_update(r->monitor, r->param, &r->norms);
        return 0;
    }
    lua_pushnumber(L, sqrt(r->norms.update_squares));
    lua_pushnumber(L, sqrt(r->norms.param_squares));
    return 2;
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
    norms_request request;
    gl_update_norms *want = norms_wanted(L, 6, &request);
    if (gl_optim_sgd(p, g, b, step, &o, want, &err)) return l_error_raise(L, &err);
    return norms_finish(L, &request);
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
    norms_request request;
    gl_update_norms *want = norms_wanted(L, 9, &request);
    if (gl_optim_adam(p, g, m, v, vmax, step, &o, want, &err)) return l_error_raise(L, &err);
    return norms_finish(L, &request);
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
    norms_request request;
    gl_update_norms *want = norms_wanted(L, 8, &request);
    if (gl_optim_rmsprop(p, g, v, b, a, step, &o, want, &err)) return l_error_raise(L, &err);
    return norms_finish(L, &request);
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
    norms_request request;
    gl_update_norms *want = norms_wanted(L, 6, &request);
    if (gl_optim_adagrad(p, g, s, step, &o, want, &err)) return l_error_raise(L, &err);
    return norms_finish(L, &request);
}

static const luaL_Reg functions[] = {
    {"_optim_sgd", l_sgd}, {"_optim_adam", l_adam}, {"_optim_rmsprop", l_rmsprop},
    {"_optim_adagrad", l_adagrad},
    {NULL, NULL},
};

void l_optim_register(lua_State *L)
{
    luaL_setfuncs(L, functions, 0);
}
