/*
 * l_norm.c — the normalizers for Lua (engine/norm_batch.c, engine/norm_group.c).
 *
 * Positional forms follow torch.nn.functional's argument order; nil skips an
 * optional tensor:
 *   gl.batch_norm(x, running_mean, running_var [, weight, bias, training = false,
 *                 momentum = 0.1, eps = 1e-5])
 *   gl.batch_norm(x, {running_mean =, running_var =, weight =, bias =, training = false,
 *                     momentum = 0.1, eps = 1e-5})            -- the same, by name
 *   gl.layer_norm(x, normalized_shape [, weight, bias, eps = 1e-5])
 *   gl.group_norm(x, groups [, weight, bias, eps = 1e-5])
 *   gl.rms_norm(x, normalized_shape [, weight, eps])
 * normalized_shape is a number (the last dimension) or a shape table {C, H, W}.
 * rms_norm's default eps is float32's machine epsilon (2^-23 ≈ 1.19e-7), what
 * PyTorch uses when eps is None.  batch_norm with training = true updates the
 * running tensors in place, as PyTorch does; training defaults to false as in
 * F.batch_norm, so evaluate mode is what a call without it gets.
 */
#include <float.h>
#include <string.h>

#include "bindings.h"

/* The tensor at `index`, or NULL for none/nil; anything else is a bad argument. */
static gl_tensor *optional_tensor(lua_State *L, int index, const char *what)
{
    if (lua_isnoneornil(L, index)) return NULL;
    gl_tensor *t = l_tensor_test(L, index);
    if (!t)
        luaL_argerror(L, index, lua_pushfstring(L, "%s: tensor or nil expected, got %s", what,
                                                luaL_typename(L, index)));
    return t;
}

/* Pushes options[name] (kept on the stack, so a tensor stays alive) and returns it as a tensor. */
static gl_tensor *field_tensor(lua_State *L, int options, const char *function, const char *name)
{
    lua_getfield(L, options, name);
    if (lua_isnil(L, -1)) return NULL;
    gl_tensor *t = l_tensor_test(L, -1);
    if (!t) l_errorf(L, "%s: option '%s' must be a tensor, got %s", function, name, luaL_typename(L, -1));
    return t;
}

static double field_number(lua_State *L, int options, const char *function, const char *name,
                           double fallback)
{
    lua_getfield(L, options, name);
    int isnum = 0;
    double value = lua_isnil(L, -1) ? fallback : (double)lua_tonumberx(L, -1, &isnum);
    if (!lua_isnil(L, -1) && !isnum)
        l_errorf(L, "%s: option '%s' must be a number, got %s", function, name, luaL_typename(L, -1));
    lua_pop(L, 1);
    return value;
}

/* Known option names, so a typo such as {momentun = 0.2} is an error, not a silent default. */
static void options_check(lua_State *L, int options, const char *function, const char *const *known)
{
    lua_pushnil(L);
    while (lua_next(L, options)) {
        lua_pop(L, 1);
        const char *key = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        bool found = false;
        for (int i = 0; key && known[i] && !found; i++) found = strcmp(key, known[i]) == 0;
        if (!found) {
            const char *shown = key ? key : luaL_typename(L, -1);
            l_errorf(L, "%s: unknown option '%s'", function, shown);
        }
    }
}

/* gl.batch_norm: see the file comment. */
static int l_batch_norm(lua_State *L)
{
    gl_error err;
    gl_tensor *x = l_tensor_check(L, 1);
    gl_tensor *running_mean, *running_var, *weight, *bias;
    bool training;
    double momentum, eps;
    if (lua_istable(L, 2)) {
        static const char *const known[] = {"running_mean", "running_var", "weight", "bias",
                                            "training", "momentum", "eps", NULL};
        options_check(L, 2, "batch_norm", known);
        running_mean = field_tensor(L, 2, "batch_norm", "running_mean");
        running_var = field_tensor(L, 2, "batch_norm", "running_var");
        weight = field_tensor(L, 2, "batch_norm", "weight");
        bias = field_tensor(L, 2, "batch_norm", "bias");
        lua_getfield(L, 2, "training");
        training = lua_toboolean(L, -1);
        lua_pop(L, 1);
        momentum = field_number(L, 2, "batch_norm", "momentum", 0.1);
        eps = field_number(L, 2, "batch_norm", "eps", 1e-5);
    } else {
        running_mean = optional_tensor(L, 2, "running_mean");
        running_var = optional_tensor(L, 3, "running_var");
        weight = optional_tensor(L, 4, "weight");
        bias = optional_tensor(L, 5, "bias");
        training = lua_toboolean(L, 6);
        momentum = (double)luaL_optnumber(L, 7, 0.1);
        eps = (double)luaL_optnumber(L, 8, 1e-5);
    }
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps, slot, &err))
        return l_error_raise(L, &err);
    return 1;
}

/* normalized_shape at `index`: a positive size or a table of them. */
static int normalized_shape_check(lua_State *L, int index, const char *function, int64_t *shape)
{
    if (lua_type(L, index) == LUA_TNUMBER) {
        int isint = 0;
        lua_Integer n = lua_tointegerx(L, index, &isint);
        if (!isint || n < 1)
            l_errorf(L, "%s: normalized_shape must be a positive integer or a shape table, got %s", function,
                     lua_tostring(L, index));
        shape[0] = n;
        return 1;
    }
    if (!lua_istable(L, index))
        return l_errorf(L, "%s: normalized_shape must be a size or a shape table such as {4, 8}, got %s",
                        function, luaL_typename(L, index));
    lua_Integer count = (lua_Integer)lua_rawlen(L, index);
    if (count < 1 || count > GL_MAX_DIMS)
        return l_errorf(L, "%s: normalized_shape must hold 1 to %d sizes, got %lld", function, GL_MAX_DIMS,
                        (long long)count);
    for (int d = 0; d < (int)count; d++) {
        lua_rawgeti(L, index, d + 1);
        int isint = 0;
        lua_Integer n = lua_tointegerx(L, -1, &isint);
        if (!isint || n < 1)
            l_errorf(L, "%s: size %d of normalized_shape must be a positive integer, got %s", function, d + 1,
                     luaL_tolstring(L, -1, NULL));
        shape[d] = n;
        lua_pop(L, 1);
    }
    return (int)count;
}

/* gl.layer_norm(x, normalized_shape [, weight, bias, eps = 1e-5]) */
static int l_layer_norm(lua_State *L)
{
    gl_error err;
    int64_t shape[GL_MAX_DIMS];
    gl_tensor *x = l_tensor_check(L, 1);
    int ndim = normalized_shape_check(L, 2, "layer_norm", shape);
    gl_tensor *weight = optional_tensor(L, 3, "weight"), *bias = optional_tensor(L, 4, "bias");
    double eps = (double)luaL_optnumber(L, 5, 1e-5);
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_layer_norm(x, ndim, shape, weight, bias, eps, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

/* gl.group_norm(x, groups [, weight, bias, eps = 1e-5]) */
static int l_group_norm(lua_State *L)
{
    gl_error err;
    gl_tensor *x = l_tensor_check(L, 1);
    lua_Integer groups = luaL_checkinteger(L, 2);
    gl_tensor *weight = optional_tensor(L, 3, "weight"), *bias = optional_tensor(L, 4, "bias");
    double eps = (double)luaL_optnumber(L, 5, 1e-5);
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_group_norm(x, (int64_t)groups, weight, bias, eps, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

/* gl.rms_norm(x, normalized_shape [, weight, eps = float32 epsilon]) */
static int l_rms_norm(lua_State *L)
{
    gl_error err;
    int64_t shape[GL_MAX_DIMS];
    gl_tensor *x = l_tensor_check(L, 1);
    int ndim = normalized_shape_check(L, 2, "rms_norm", shape);
    gl_tensor *weight = optional_tensor(L, 3, "weight");
    double eps = (double)luaL_optnumber(L, 4, FLT_EPSILON);
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_rms_norm(x, ndim, shape, weight, eps, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static const luaL_Reg functions[] = {
    {"batch_norm", l_batch_norm}, {"layer_norm", l_layer_norm},
    {"group_norm", l_group_norm}, {"rms_norm", l_rms_norm},
    {NULL, NULL},
};

void l_norm_register(lua_State *L)
{
    luaL_setfuncs(L, functions, 0);
}
