/*
 * l_tensor_math.c — tensor arithmetic for Lua: operators, math methods,
 * reductions, matmul, cat/stack/where and the in-place updates.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bindings.h"

/* a op b where either side may be a number. */
static int binary(lua_State *L, gl_binary_op op)
{
    gl_error err;
    gl_tensor *a = l_tensor_test(L, 1), *b = l_tensor_test(L, 2);
    if (a && b) {
        gl_tensor **slot = l_tensor_push_slot(L);
        if (gl_tensor_binary(op, a, b, slot, &err)) return l_error_raise(L, &err);
        return 1;
    }
    if (a && lua_type(L, 2) == LUA_TNUMBER) {
        gl_tensor **slot = l_tensor_push_slot(L);
        if (gl_tensor_binary_scalar(op, a, (float)lua_tonumber(L, 2), false, slot, &err))
            return l_error_raise(L, &err);
        return 1;
    }
    if (b && lua_type(L, 1) == LUA_TNUMBER) {
        gl_tensor **slot = l_tensor_push_slot(L);
        if (gl_tensor_binary_scalar(op, b, (float)lua_tonumber(L, 1), true, slot, &err))
            return l_error_raise(L, &err);
        return 1;
    }
    return l_errorf(L, "%s: expects tensors or numbers, got %s and %s", gl_binary_op_name(op),
                      luaL_typename(L, 1), luaL_typename(L, 2));
}

static int l_add(lua_State *L) { return binary(L, GL_OP_ADD); }
static int l_sub(lua_State *L) { return binary(L, GL_OP_SUB); }
static int l_mul(lua_State *L) { return binary(L, GL_OP_MUL); }
static int l_div(lua_State *L) { return binary(L, GL_OP_DIV); }
static int l_pow(lua_State *L) { return binary(L, GL_OP_POW); }
static int l_maximum(lua_State *L) { return binary(L, GL_OP_MAXIMUM); }
static int l_minimum(lua_State *L) { return binary(L, GL_OP_MINIMUM); }
static int l_eq(lua_State *L) { return binary(L, GL_OP_EQ); }
static int l_ne(lua_State *L) { return binary(L, GL_OP_NE); }
static int l_lt(lua_State *L) { return binary(L, GL_OP_LT); }
static int l_le(lua_State *L) { return binary(L, GL_OP_LE); }
static int l_gt(lua_State *L) { return binary(L, GL_OP_GT); }
static int l_ge(lua_State *L) { return binary(L, GL_OP_GE); }

static int unary(lua_State *L, gl_unary_op op)
{
    gl_error err;
    gl_tensor *t = l_tensor_check(L, 1);
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_tensor_unary(op, t, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static int l_neg(lua_State *L) { return unary(L, GL_OP_NEG); }
static int l_exp(lua_State *L) { return unary(L, GL_OP_EXP); }
static int l_log(lua_State *L) { return unary(L, GL_OP_LOG); }
static int l_sqrt(lua_State *L) { return unary(L, GL_OP_SQRT); }
static int l_abs(lua_State *L) { return unary(L, GL_OP_ABS); }
static int l_sign(lua_State *L) { return unary(L, GL_OP_SIGN); }
static int l_half(lua_State *L) { return unary(L, GL_OP_HALF); }
static int l_bfloat16(lua_State *L) { return unary(L, GL_OP_BFLOAT16); }

static int l_clamp(lua_State *L)
{
    gl_error err;
    gl_tensor *t = l_tensor_check(L, 1);
    float low = (float)luaL_optnumber(L, 2, -INFINITY), high = (float)luaL_optnumber(L, 3, INFINITY);
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_tensor_clamp(t, low, high, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static int l_matmul(lua_State *L)
{
    gl_error err;
    gl_tensor *a = l_tensor_check(L, 1), *b = l_tensor_check(L, 2);
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_tensor_matmul(a, b, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

/* ------------------------------------------------------------- reductions */

/* t:sum(), t:sum(d [, keepdim]); max/min over a dim also return 1-based indices. */
static int reduce(lua_State *L, gl_reduce_op op, bool with_indices)
{
    gl_error err;
    gl_tensor *t = l_tensor_check(L, 1);
    if (lua_isnoneornil(L, 2)) {
        gl_tensor **slot = l_tensor_push_slot(L);
        if (gl_tensor_reduce_all(op, t, slot, &err)) return l_error_raise(L, &err);
        return 1;
    }
    int d = l_dim_check(L, 2);
    bool keepdim = lua_toboolean(L, 3);
    gl_tensor **slot = l_tensor_push_slot(L);
    gl_tensor *positions = NULL;
    if (gl_tensor_reduce_dim(op, t, d, keepdim, slot, with_indices ? &positions : NULL, &err))
        return l_error_raise(L, &err);
    if (!with_indices) return 1;
    /* 1-based indices in a new tensor: the 0-based ones are saved for backward. */
    gl_tensor **index_slot = l_tensor_push_slot(L);
    gl_status status = gl_tensor_binary_scalar(GL_OP_ADD, positions, 1.0f, false, index_slot, &err);
    gl_tensor_release(positions);
    if (status) return l_error_raise(L, &err);
    return 2;
}

static int l_sum(lua_State *L) { return reduce(L, GL_REDUCE_SUM, false); }
static int l_mean(lua_State *L) { return reduce(L, GL_REDUCE_MEAN, false); }
static int l_max(lua_State *L) { return reduce(L, GL_REDUCE_MAX, true); }
static int l_min(lua_State *L) { return reduce(L, GL_REDUCE_MIN, true); }

static int arg_extreme(lua_State *L, gl_reduce_op op)
{
    gl_error err;
    gl_tensor *t = l_tensor_check(L, 1);
    gl_tensor *flat = NULL, *values = NULL;
    int d;
    if (lua_isnoneornil(L, 2)) {   /* over all elements: a 1-based flat index */
        int64_t all = -1;
        if (gl_tensor_reshape(t, 1, &all, &flat, &err)) return l_error_raise(L, &err);
        t = flat;
        d = 0;
    } else {
        d = l_dim_check(L, 2);
    }
    bool keepdim = lua_toboolean(L, 3);
    gl_tensor *positions = NULL;
    gl_status status = gl_tensor_reduce_dim(op, t, d, keepdim, &values, &positions, &err);
    gl_tensor_release(values);
    gl_tensor_release(flat);
    if (status) {
        /* The engine's message names its op, "max" or "min": the user called argmax/argmin. */
        gl_error renamed = err;
        snprintf(renamed.message, sizeof renamed.message, "arg%.508s", err.message);
        return l_error_raise(L, &renamed);
    }
    gl_tensor **slot = l_tensor_push_slot(L);
    status = gl_tensor_binary_scalar(GL_OP_ADD, positions, 1.0f, false, slot, &err);
    gl_tensor_release(positions);
    if (status) return l_error_raise(L, &err);
    return 1;
}

static int l_argmax(lua_State *L) { return arg_extreme(L, GL_REDUCE_MAX); }
static int l_argmin(lua_State *L) { return arg_extreme(L, GL_REDUCE_MIN); }

static int l_norm(lua_State *L)
{
    gl_error err;
    gl_tensor *t = l_tensor_check(L, 1);
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_tensor_norm(t, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

/* ---------------------------------------------------------- join, where */

/* Reads a Lua list of tensors into a malloc'ed array stored in a userdata so
 * it is freed by the GC even when an error is raised. */
static gl_tensor **tensor_list(lua_State *L, int index, const char *function, int *count)
{
    luaL_checktype(L, index, LUA_TTABLE);
    lua_Integer n = (lua_Integer)lua_rawlen(L, index);
    if (n < 1) luaL_argerror(L, index, "the list of tensors is empty");
    if (n > 1 << 20) luaL_argerror(L, index, "too many tensors");
    gl_tensor **list = lua_newuserdatauv(L, sizeof(gl_tensor *) * (size_t)n, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, index, i);
        list[i - 1] = l_tensor_test(L, -1);
        if (!list[i - 1])
            l_errorf(L, "%s: item %d of the list is a %s, not a tensor", function, (int)i,
                       luaL_typename(L, -1));
        lua_pop(L, 1);
    }
    *count = (int)n;
    return list;
}

static int l_cat(lua_State *L)
{
    gl_error err;
    int count;
    int d = lua_isnoneornil(L, 2) ? 0 : l_dim_check(L, 2);
    gl_tensor **list = tensor_list(L, 1, "cat", &count);
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_tensor_cat(count, list, d, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static int l_stack(lua_State *L)
{
    gl_error err;
    int count;
    int d = lua_isnoneornil(L, 2) ? 0 : l_dim_check(L, 2);
    gl_tensor **list = tensor_list(L, 1, "stack", &count);
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_tensor_stack(count, list, d, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

/* A tensor argument, or a number turned into a 0-d tensor kept on the stack. */
static gl_tensor *tensor_or_number(lua_State *L, int index, const char *function)
{
    gl_error err;
    gl_tensor *t = l_tensor_test(L, index);
    if (t) return t;
    if (lua_type(L, index) != LUA_TNUMBER)
        luaL_argerror(L, index, lua_pushfstring(L, "tensor or number expected, got %s",
                                               luaL_typename(L, index)));
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_tensor_scalar((float)lua_tonumber(L, index), slot, &err)) l_error_raise(L, &err);
    lua_replace(L, index);
    return *slot;
}

static int l_where(lua_State *L)
{
    gl_error err;
    gl_tensor *mask = l_tensor_check(L, 1);
    gl_tensor *a = tensor_or_number(L, 2, "where"), *b = tensor_or_number(L, 3, "where");
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_tensor_where(mask, a, b, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

/* t:index_select(d, indices): slices along d at the given 1-based indices. */
static int l_index_select(lua_State *L)
{
    gl_error err;
    gl_tensor *t = l_tensor_check(L, 1);
    int d = l_dim_check(L, 2);
    gl_tensor *indices = l_tensor_check(L, 3);
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_tensor_index_select(t, d, indices, 1, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

/* gl.randperm(n): a random permutation of 1..n from the engine's generator. */
static int l_randperm(lua_State *L)
{
    gl_error err;
    lua_Integer n = luaL_checkinteger(L, 1);
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_tensor_randperm(n, 1, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

/* --------------------------------------------------------------- in place */

static int l_fill(lua_State *L)
{
    gl_error err;
    gl_tensor *t = l_tensor_check(L, 1);
    if (gl_tensor_fill(t, (float)luaL_checknumber(L, 2), &err)) return l_error_raise(L, &err);
    lua_settop(L, 1);
    return 1;
}

static int l_zero(lua_State *L)
{
    gl_error err;
    gl_tensor *t = l_tensor_check(L, 1);
    if (gl_tensor_fill(t, 0.0f, &err)) return l_error_raise(L, &err);
    lua_settop(L, 1);
    return 1;
}

static int l_copy(lua_State *L)
{
    gl_error err;
    gl_tensor *t = l_tensor_check(L, 1);
    gl_tensor *source = tensor_or_number(L, 2, "copy");
    if (gl_tensor_copy_from(t, source, &err)) return l_error_raise(L, &err);
    lua_settop(L, 1);
    return 1;
}

static int l_add_inplace(lua_State *L)
{
    gl_error err;
    gl_tensor *t = l_tensor_check(L, 1);
    gl_tensor *other = tensor_or_number(L, 2, "add_");
    float alpha = (float)luaL_optnumber(L, 3, 1.0);
    if (gl_tensor_add_inplace(t, other, alpha, &err)) return l_error_raise(L, &err);
    lua_settop(L, 1);
    return 1;
}

static int l_mul_inplace(lua_State *L)
{
    gl_error err;
    gl_tensor *t = l_tensor_check(L, 1);
    if (gl_tensor_mul_scalar_inplace(t, (float)luaL_checknumber(L, 2), &err))
        return l_error_raise(L, &err);
    lua_settop(L, 1);
    return 1;
}

static const luaL_Reg module_functions[] = {
    {"cat", l_cat},
    {"stack", l_stack},
    {"where", l_where},
    {"maximum", l_maximum},
    {"minimum", l_minimum},
    {"matmul", l_matmul},
    {"randperm", l_randperm},
    {"index_select", l_index_select},
    {NULL, NULL},
};

static const luaL_Reg methods[] = {
    {"add", l_add}, {"sub", l_sub}, {"mul", l_mul}, {"div", l_div}, {"pow", l_pow},
    {"maximum", l_maximum}, {"minimum", l_minimum},
    {"eq", l_eq}, {"ne", l_ne}, {"lt", l_lt}, {"le", l_le}, {"gt", l_gt}, {"ge", l_ge},
    {"neg", l_neg}, {"exp", l_exp}, {"log", l_log}, {"sqrt", l_sqrt}, {"abs", l_abs},
    {"sign", l_sign}, {"half", l_half}, {"bfloat16", l_bfloat16}, {"clamp", l_clamp},
    {"matmul", l_matmul},
    {"sum", l_sum}, {"mean", l_mean}, {"max", l_max}, {"min", l_min},
    {"argmax", l_argmax}, {"argmin", l_argmin}, {"norm", l_norm},
    {"fill", l_fill}, {"zero", l_zero}, {"copy", l_copy}, {"add_", l_add_inplace},
    {"mul_", l_mul_inplace}, {"index_select", l_index_select},
    {NULL, NULL},
};

static const luaL_Reg metamethods[] = {
    {"__add", l_add}, {"__sub", l_sub}, {"__mul", l_mul}, {"__div", l_div},
    {"__pow", l_pow}, {"__unm", l_neg},
    {NULL, NULL},
};

void l_tensor_math_register(lua_State *L)
{
    luaL_getmetatable(L, L_TENSOR_METATABLE);
    luaL_setfuncs(L, metamethods, 0);
    lua_getfield(L, -1, "__methods");
    luaL_setfuncs(L, methods, 0);
    lua_pop(L, 2);
    luaL_setfuncs(L, module_functions, 0);
}
