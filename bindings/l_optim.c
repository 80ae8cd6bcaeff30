/*
 * l_optim.c — the optimizers' fused kernels for Lua (gradlab.optim wires them).
 *
 * Optimizer:step calls _optim_step once per parameter group: the loop over
 * the parameters, their state tables and the kernels, in C.  The
 * per-parameter kernels are exposed too (_optim_sgd, ...), for tests and for
 * optimizers written in Lua; they take (param, grad, state tensors..., step,
 * group [, norms]) where
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

/* Hyper-parameters from a parameter group's table (at `group`). */
static gl_sgd_options sgd_options(lua_State *L, int group)
{
    return (gl_sgd_options){
        .lr = field_number(L, group, "lr", 0), .momentum = field_number(L, group, "momentum", 0),
        .dampening = field_number(L, group, "dampening", 0),
        .weight_decay = field_number(L, group, "weight_decay", 0), .l1 = field_number(L, group, "l1", 0),
        .nesterov = field_boolean(L, group, "nesterov"),
    };
}

static gl_adam_options adam_options(lua_State *L, int group, bool decoupled)
{
    lua_getfield(L, group, "betas");
    float beta1 = 0.9f, beta2 = 0.999f;
    if (lua_istable(L, -1)) {
        lua_rawgeti(L, -1, 1);
        lua_rawgeti(L, -2, 2);
        beta1 = (float)luaL_checknumber(L, -2);
        beta2 = (float)luaL_checknumber(L, -1);
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
    return (gl_adam_options){
        .lr = field_number(L, group, "lr", 1e-3f), .beta1 = beta1, .beta2 = beta2,
        .eps = field_number(L, group, "eps", 1e-8f), .weight_decay = field_number(L, group, "weight_decay", 0),
        .l1 = field_number(L, group, "l1", 0), .decoupled = decoupled, .amsgrad = field_boolean(L, group, "amsgrad"),
    };
}

static gl_rmsprop_options rmsprop_options(lua_State *L, int group)
{
    return (gl_rmsprop_options){
        .lr = field_number(L, group, "lr", 1e-2f), .alpha = field_number(L, group, "alpha", 0.99f),
        .eps = field_number(L, group, "eps", 1e-8f), .weight_decay = field_number(L, group, "weight_decay", 0),
        .momentum = field_number(L, group, "momentum", 0), .l1 = field_number(L, group, "l1", 0),
        .centered = field_boolean(L, group, "centered"),
    };
}

static gl_adagrad_options adagrad_options(lua_State *L, int group)
{
    return (gl_adagrad_options){
        .lr = field_number(L, group, "lr", 1e-2f), .lr_decay = field_number(L, group, "lr_decay", 0),
        .eps = field_number(L, group, "eps", 1e-10f), .weight_decay = field_number(L, group, "weight_decay", 0),
        .l1 = field_number(L, group, "l1", 0),
    };
}

/* _sgd(param, grad, momentum_buffer|nil, step, group) */
static int l_sgd(lua_State *L)
{
    gl_error err;
    gl_tensor *p = l_tensor_check(L, 1), *g = l_tensor_check(L, 2), *b = optional_tensor(L, 3);
    int64_t step = luaL_checkinteger(L, 4);
    luaL_checktype(L, 5, LUA_TTABLE);
    gl_sgd_options o = sgd_options(L, 5);
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
    gl_adam_options o = adam_options(L, 7, lua_toboolean(L, 8));
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
    gl_rmsprop_options o = rmsprop_options(L, 7);
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
    gl_adagrad_options o = adagrad_options(L, 5);
    norms_request request;
    gl_update_norms *want = norms_wanted(L, 6, &request);
    if (gl_optim_adagrad(p, g, s, step, &o, want, &err)) return l_error_raise(L, &err);
    return norms_finish(L, &request);
}

/* ------------------------------------------------------------ group step */

typedef enum { KIND_SGD, KIND_ADAM, KIND_RMSPROP, KIND_ADAGRAD } optimizer_kind;

typedef struct group_options {
    optimizer_kind kind;
    union {
        gl_sgd_options sgd;
        gl_adam_options adam;
        gl_rmsprop_options rmsprop;
        gl_adagrad_options adagrad;
    } o;
    float initial_accumulator;   /* Adagrad's sum starts here */
} group_options;

/* state[name] as a tensor; when missing and `create`, a new one filled with
 * `fill` in p's shape is stored there first.  NULL when missing and not created. */
static gl_tensor *state_buffer(lua_State *L, int state, const char *name, const gl_tensor *p, bool create,
                               float fill)
{
    lua_getfield(L, state, name);
    gl_tensor *t = l_tensor_test(L, -1);
    lua_pop(L, 1);
    if (t || !create) return t;
    gl_error err;
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_tensor_full(p->ndim, p->shape, fill, slot, &err)) l_error_raise(L, &err);
    t = *slot;
    lua_setfield(L, state, name);   /* the state table keeps the userdata alive */
    return t;
}

/* One parameter's update: its state's buffers, then the kernel. */
static gl_status update_parameter(lua_State *L, const group_options *g, gl_tensor *p, const gl_tensor *grad,
                                  int state, int64_t step, gl_update_norms *norms, gl_error *err)
{
    switch (g->kind) {
    case KIND_SGD: {
        gl_tensor *b = state_buffer(L, state, "momentum_buffer", p, g->o.sgd.momentum != 0, 0);
        return gl_optim_sgd(p, grad, b, step, &g->o.sgd, norms, err);
    }
    case KIND_ADAM: {
        /* The buffers appear together, on the first step (amsgrad's with them). */
        bool first = state_buffer(L, state, "exp_avg", p, false, 0) == NULL;
        gl_tensor *m = state_buffer(L, state, "exp_avg", p, true, 0);
        gl_tensor *v = state_buffer(L, state, "exp_avg_sq", p, true, 0);
        gl_tensor *vmax = state_buffer(L, state, "max_exp_avg_sq", p, first && g->o.adam.amsgrad, 0);
        return gl_optim_adam(p, grad, m, v, vmax, step, &g->o.adam, norms, err);
    }
    case KIND_RMSPROP: {
        bool first = state_buffer(L, state, "square_avg", p, false, 0) == NULL;
        gl_tensor *v = state_buffer(L, state, "square_avg", p, true, 0);
        gl_tensor *b = state_buffer(L, state, "momentum_buffer", p, first && g->o.rmsprop.momentum > 0, 0);
        gl_tensor *a = state_buffer(L, state, "grad_avg", p, first && g->o.rmsprop.centered, 0);
        return gl_optim_rmsprop(p, grad, v, b, a, step, &g->o.rmsprop, norms, err);
    }
    case KIND_ADAGRAD: {
        gl_tensor *sum = state_buffer(L, state, "sum", p, true, g->initial_accumulator);
        return gl_optim_adagrad(p, grad, sum, step, &g->o.adagrad, norms, err);
    }
    }
    return GL_OK;
}

/* _optim_step(kind, group, states, taps|nil, decoupled): one step of a built-in
 * optimizer over a parameter group — Optimizer:step's loop, in C.  Parameters
 * without a gradient are skipped, as PyTorch does; states[p] holds the step
 * count and the buffers (created on the first step, as PyTorch names them);
 * taps[p], a monitor's parameter tap, gets the update ratio from the kernel. */
static int l_optim_step(lua_State *L)
{
    static const char *const kinds[] = {"sgd", "adam", "rmsprop", "adagrad", NULL};
    group_options g = {.kind = (optimizer_kind)luaL_checkoption(L, 1, NULL, kinds)};
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    bool has_taps = lua_istable(L, 4);
    switch (g.kind) {
    case KIND_SGD: g.o.sgd = sgd_options(L, 2); break;
    case KIND_ADAM: g.o.adam = adam_options(L, 2, lua_toboolean(L, 5)); break;
    case KIND_RMSPROP: g.o.rmsprop = rmsprop_options(L, 2); break;
    case KIND_ADAGRAD:
        g.o.adagrad = adagrad_options(L, 2);
        g.initial_accumulator = field_number(L, 2, "initial_accumulator_value", 0);
        break;
    }
    lua_getfield(L, 2, "params");
    luaL_checktype(L, -1, LUA_TTABLE);
    int params = lua_gettop(L);
    lua_Integer count = luaL_len(L, params);
    for (lua_Integer i = 1; i <= count; i++) {
        lua_settop(L, params);
        lua_rawgeti(L, params, i);
        int param = lua_gettop(L);
        gl_tensor *p = l_tensor_check(L, param);
        if (!p->grad) continue;
        lua_pushvalue(L, param);
        if (lua_rawget(L, 3) != LUA_TTABLE) {   /* the first step of this parameter */
            lua_pop(L, 1);
            lua_createtable(L, 0, 4);
            lua_pushvalue(L, param);
            lua_pushvalue(L, -2);
            lua_rawset(L, 3);
        }
        int state = lua_gettop(L);
        lua_getfield(L, state, "step");
        lua_Integer step = lua_tointeger(L, -1) + 1;
        lua_pop(L, 1);
        lua_pushinteger(L, step);
        lua_setfield(L, state, "step");

        norms_request request = {.wanted = false};
        gl_update_norms *norms = NULL;
        if (has_taps) {
            lua_pushvalue(L, param);
            if (lua_rawget(L, 4) == LUA_TUSERDATA) norms = norms_wanted(L, -1, &request);
        }
        gl_error err;
        gl_tensor *dense_grad = NULL;
        gl_status status = gl_tensor_contiguous(p->grad, &dense_grad, &err);
        if (!status) status = update_parameter(L, &g, p, dense_grad, state, step, norms, &err);
        gl_tensor_release(dense_grad);
        if (status) return l_error_raise(L, &err);
        if (request.monitor) gl_monitor_note_update(request.monitor, request.param, &request.norms);
    }
    return 0;
}

static const luaL_Reg functions[] = {
    {"_optim_sgd", l_sgd}, {"_optim_adam", l_adam}, {"_optim_rmsprop", l_rmsprop},
    {"_optim_adagrad", l_adagrad}, {"_optim_step", l_optim_step},
    {NULL, NULL},
};

void l_optim_register(lua_State *L)
{
    luaL_setfuncs(L, functions, 0);
}
