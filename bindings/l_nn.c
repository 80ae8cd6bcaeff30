/*
 * l_nn.c — the functional layer ops for Lua: activations, softmax, linear,
 * dropout (module functions and tensor methods) and the losses (gl.loss).
 */
#include <string.h>

#include "bindings.h"

static int activation(lua_State *L, gl_activation kind, float default_parameter)
{
    gl_error err;
    gl_tensor *x = l_tensor_check(L, 1);
    float parameter = (float)luaL_optnumber(L, 2, default_parameter);
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_tensor_activation(kind, x, parameter, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static int l_sigmoid(lua_State *L) { return activation(L, GL_ACT_SIGMOID, 0); }
static int l_tanh(lua_State *L) { return activation(L, GL_ACT_TANH, 0); }
static int l_relu(lua_State *L) { return activation(L, GL_ACT_RELU, 0); }
static int l_leaky_relu(lua_State *L) { return activation(L, GL_ACT_LEAKY_RELU, 0.01f); }
static int l_elu(lua_State *L) { return activation(L, GL_ACT_ELU, 1.0f); }
static int l_gelu(lua_State *L) { return activation(L, GL_ACT_GELU, 0); }
static int l_softplus(lua_State *L) { return activation(L, GL_ACT_SOFTPLUS, 0); }

static int l_prelu(lua_State *L)
{
    gl_error err;
    gl_tensor *x = l_tensor_check(L, 1), *w = l_tensor_check(L, 2);
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_tensor_prelu(x, w, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static int softmax(lua_State *L, bool log)
{
    gl_error err;
    gl_tensor *x = l_tensor_check(L, 1);
    int d = lua_isnoneornil(L, 2) ? -1 : l_dim_check(L, 2);
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_tensor_softmax(x, d, log, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static int l_softmax(lua_State *L) { return softmax(L, false); }
static int l_log_softmax(lua_State *L) { return softmax(L, true); }

/* gl.linear(x, weight [, bias]) */
static int l_linear(lua_State *L)
{
    gl_error err;
    gl_tensor *x = l_tensor_check(L, 1), *w = l_tensor_check(L, 2);
    gl_tensor *b = lua_isnoneornil(L, 3) ? NULL : l_tensor_check(L, 3);
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_linear(x, w, b, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

/* gl.dropout(x, p [, training = true]) */
static int l_dropout(lua_State *L)
{
    gl_error err;
    gl_tensor *x = l_tensor_check(L, 1);
    float p = (float)luaL_checknumber(L, 2);
    bool training = lua_isnoneornil(L, 3) ? true : lua_toboolean(L, 3);
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_dropout(x, p, training, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

/* The reduction from argument 3: "mean" | "sum" | "none", or {reduction = ...}. */
static gl_reduction reduction_check(lua_State *L, const char *function)
{
    const char *name = "mean";
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "reduction");
        if (!lua_isnil(L, -1)) name = lua_tostring(L, -1);
        if (!name) l_errorf(L, "%s: reduction must be \"mean\", \"sum\" or \"none\"", function);
    } else if (!lua_isnoneornil(L, 3)) {
        name = lua_tostring(L, 3);
        if (!name) l_errorf(L, "%s: reduction must be \"mean\", \"sum\" or \"none\"", function);
    }
    if (strcmp(name, "mean") == 0) return GL_REDUCTION_MEAN;
    if (strcmp(name, "sum") == 0) return GL_REDUCTION_SUM;
    if (strcmp(name, "none") == 0) return GL_REDUCTION_NONE;
    l_errorf(L, "%s: reduction must be \"mean\", \"sum\" or \"none\", got \"%s\"", function, name);
    return GL_REDUCTION_MEAN;
}

typedef gl_status (*pair_loss)(const gl_tensor *, const gl_tensor *, gl_reduction, gl_tensor **, gl_error *);
typedef gl_status (*label_loss)(const gl_tensor *, const gl_tensor *, int, gl_reduction, gl_tensor **, gl_error *);

static int run_pair_loss(lua_State *L, const char *name, pair_loss fn)
{
    gl_error err;
    gl_tensor *a = l_tensor_check(L, 1), *b = l_tensor_check(L, 2);
    gl_reduction reduction = reduction_check(L, name);
    gl_tensor **slot = l_tensor_push_slot(L);
    if (fn(a, b, reduction, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static int run_label_loss(lua_State *L, const char *name, label_loss fn)
{
    gl_error err;
    gl_tensor *a = l_tensor_check(L, 1), *labels = l_tensor_check(L, 2);
    gl_reduction reduction = reduction_check(L, name);
    gl_tensor **slot = l_tensor_push_slot(L);
    if (fn(a, labels, 1, reduction, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static int l_mse(lua_State *L) { return run_pair_loss(L, "mse", gl_loss_mse); }
static int l_bce(lua_State *L) { return run_pair_loss(L, "bce", gl_loss_bce); }
static int l_bce_with_logits(lua_State *L) { return run_pair_loss(L, "bce_with_logits", gl_loss_bce_with_logits); }
static int l_cross_entropy(lua_State *L) { return run_label_loss(L, "cross_entropy", gl_loss_cross_entropy); }
static int l_nll(lua_State *L) { return run_label_loss(L, "nll", gl_loss_nll); }

/* gl._init_orthogonal(t, gain): the engine's QR-based fill (gl.init.orthogonal wraps it). */
static int l_init_orthogonal(lua_State *L)
{
    gl_error err;
    gl_tensor *t = l_tensor_check(L, 1);
    float gain = (float)luaL_optnumber(L, 2, 1.0);
    if (gl_init_orthogonal(t, gain, &err)) return l_error_raise(L, &err);
    lua_settop(L, 1);
    return 1;
}

static const luaL_Reg functions[] = {
    {"sigmoid", l_sigmoid}, {"tanh", l_tanh}, {"relu", l_relu}, {"leaky_relu", l_leaky_relu},
    {"elu", l_elu}, {"gelu", l_gelu}, {"softplus", l_softplus}, {"prelu", l_prelu},
    {"softmax", l_softmax}, {"log_softmax", l_log_softmax}, {"linear", l_linear},
    {"dropout", l_dropout},
    {NULL, NULL},
};

static const luaL_Reg losses[] = {
    {"mse", l_mse}, {"bce", l_bce}, {"bce_with_logits", l_bce_with_logits},
    {"cross_entropy", l_cross_entropy}, {"nll", l_nll},
    {NULL, NULL},
};

void l_nn_register(lua_State *L)
{
    luaL_setfuncs(L, functions, 0);
    lua_pushcfunction(L, l_init_orthogonal);
    lua_setfield(L, -2, "_init_orthogonal");
    luaL_newlib(L, losses);
    lua_setfield(L, -2, "loss");
    /* The same functions as tensor methods: x:relu(), x:softmax(2). */
    l_tensor_push_methods(L);
    luaL_setfuncs(L, functions, 0);
    lua_pop(L, 1);
}
