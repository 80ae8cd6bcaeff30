/*
 * l_conv.c — convolution and pooling for Lua (engine/conv.c, engine/pool.c).
 *
 *   gl.conv2d(x, weight [, bias] [, {stride = 1, padding = 0, dilation = 1, groups = 1,
 *                                     algorithm = "auto" | "im2col"}])
 *   gl.max_pool2d(x, kernel [, {stride = kernel, padding = 0, dilation = 1, ceil_mode = false,
 *                               return_indices = false}])   -> y [, indices]
 *   gl.avg_pool2d(x, kernel [, {stride = kernel, padding = 0, ceil_mode = false,
 *                               count_include_pad = true}])
 *   gl.global_avg_pool2d(x [, keepdim = false])              (B, C, H, W) -> (B, C)
 *   gl._conv2d_reference(...)   the naive forward of conv2d, for tests (no autograd)
 *
 * kernel, stride, padding and dilation take a number or a pair {h, w}.  A
 * bias may be nil, or skipped: a plain table in third position is the options.
 * max_pool2d's indices are 1-based positions within each input plane
 * ((ih - 1) W + iw), shaped like y, as PyTorch's return_indices but counted
 * from 1.  Option names are checked, so a typo raises instead of being ignored.
 */
#include <string.h>

#include "bindings.h"

/* Raises on keys of the options table at `index` that are not in `known`. */
static void options_check(lua_State *L, int index, const char *function, const char *const *known)
{
    lua_pushnil(L);
    while (lua_next(L, index)) {
        lua_pop(L, 1);
        const char *key = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        bool found = false;
        for (int i = 0; key && known[i] && !found; i++) found = strcmp(key, known[i]) == 0;
        if (!found) l_errorf(L, "%s: unknown option '%s'", function, key ? key : luaL_typename(L, -1));
    }
}

static int64_t integer_value(lua_State *L, int index, const char *function, const char *what)
{
    int isint = 0;
    lua_Integer v = lua_tointegerx(L, index, &isint);
    if (!isint)
        l_errorf(L, "%s: %s must be an integer or a pair {h, w} of integers, got %s", function, what,
                 lua_type(L, index) == LUA_TNUMBER ? lua_tostring(L, index) : luaL_typename(L, index));
    return (int64_t)v;
}

/* A number or a pair {h, w} at `index` into pair[2]; nil keeps pair as is. */
static void pair_value(lua_State *L, int index, const char *function, const char *what, int64_t *pair)
{
    index = lua_absindex(L, index);
    if (lua_isnil(L, index)) return;
    if (lua_istable(L, index)) {
        if (lua_rawlen(L, index) != 2)
            l_errorf(L, "%s: %s must be an integer or a pair {h, w}, got a table of %d values", function, what,
                     (int)lua_rawlen(L, index));
        for (int d = 0; d < 2; d++) {
            lua_rawgeti(L, index, d + 1);
            pair[d] = integer_value(L, -1, function, what);
            lua_pop(L, 1);
        }
        return;
    }
    pair[0] = pair[1] = integer_value(L, index, function, what);
}

static void pair_field(lua_State *L, int options, const char *function, const char *name, int64_t *pair)
{
    if (!options) return;
    lua_getfield(L, options, name);
    pair_value(L, -1, function, name, pair);
    lua_pop(L, 1);
}

static bool flag_field(lua_State *L, int options, const char *name, bool fallback)
{
    if (!options) return fallback;
    lua_getfield(L, options, name);
    bool value = lua_isnil(L, -1) ? fallback : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return value;
}

/* The options table at `index` (0 when none/nil); anything else is a bad argument. */
static int options_at(lua_State *L, int index)
{
    if (lua_isnoneornil(L, index)) return 0;
    if (!lua_istable(L, index)) luaL_typeerror(L, index, "options table");
    return index;
}

/* conv2d and its reference share the argument handling. */
typedef gl_status (*conv_fn)(const gl_tensor *, const gl_tensor *, const gl_tensor *,
                             const gl_conv2d_options *, gl_tensor **, gl_error *);

static int conv2d_call(lua_State *L, conv_fn fn)
{
    static const char *const known[] = {"stride", "padding", "dilation", "groups", "algorithm", NULL};
    static const char *const algorithms[] = {"auto", "im2col", NULL};
    gl_error err;
    gl_tensor *x = l_tensor_check(L, 1), *weight = l_tensor_check(L, 2), *bias = NULL;
    int options = 0;
    if (lua_istable(L, 3)) {   /* gl.conv2d(x, w, {stride = 2}): no bias */
        options = 3;
    } else {
        if (!lua_isnoneornil(L, 3) && !(bias = l_tensor_test(L, 3))) luaL_typeerror(L, 3, "bias tensor or nil");
        options = options_at(L, 4);
    }
    gl_conv2d_options o = gl_conv2d_defaults();
    if (options) {
        options_check(L, options, "conv2d", known);
        pair_field(L, options, "conv2d", "stride", o.stride);
        pair_field(L, options, "conv2d", "padding", o.padding);
        pair_field(L, options, "conv2d", "dilation", o.dilation);
        lua_getfield(L, options, "groups");
        if (!lua_isnil(L, -1)) {
            int isint = 0;
            o.groups = (int64_t)lua_tointegerx(L, -1, &isint);
            if (!isint) l_errorf(L, "conv2d: groups must be an integer, got %s", luaL_tolstring(L, -1, NULL));
        }
        lua_pop(L, 1);
        lua_getfield(L, options, "algorithm");
        if (!lua_isnil(L, -1)) {
            const char *name = lua_tostring(L, -1);
            int found = -1;
            for (int i = 0; name && algorithms[i] && found < 0; i++)
                if (strcmp(name, algorithms[i]) == 0) found = i;
            if (found < 0)
                l_errorf(L, "conv2d: algorithm must be \"auto\" or \"im2col\", got %s", luaL_tolstring(L, -1, NULL));
            o.algorithm = found == 1 ? GL_CONV2D_IM2COL : GL_CONV2D_AUTO;
        }
        lua_pop(L, 1);
    }
    gl_tensor **slot = l_tensor_push_slot(L);
    if (fn(x, weight, bias, &o, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static int l_conv2d(lua_State *L) { return conv2d_call(L, gl_conv2d); }
static int l_conv2d_reference(lua_State *L) { return conv2d_call(L, gl_conv2d_reference); }

/* The kernel (argument 2) and the options (argument 3) of a pooling call. */
static gl_pool2d_options pool_options(lua_State *L, const char *function, const char *const *known,
                                      bool *return_indices)
{
    int64_t kernel[2] = {0, 0};
    if (lua_isnoneornil(L, 2))
        l_errorf(L, "%s: bad argument #2 (kernel size expected: a number or a pair {h, w})", function);
    pair_value(L, 2, function, "kernel size", kernel);
    gl_pool2d_options o = gl_pool2d_defaults(kernel[0], kernel[1]);
    int options = options_at(L, 3);
    if (options) {
        options_check(L, options, function, known);
        pair_field(L, options, function, "stride", o.stride);
        pair_field(L, options, function, "padding", o.padding);
        pair_field(L, options, function, "dilation", o.dilation);
        o.ceil_mode = flag_field(L, options, "ceil_mode", false);
        o.count_include_pad = flag_field(L, options, "count_include_pad", true);
    }
    if (return_indices) *return_indices = flag_field(L, options, "return_indices", false);
    return o;
}

static int l_max_pool2d(lua_State *L)
{
    static const char *const known[] = {"stride", "padding", "dilation", "ceil_mode", "return_indices", NULL};
    gl_error err;
    gl_tensor *x = l_tensor_check(L, 1);
    bool return_indices = false;
    gl_pool2d_options o = pool_options(L, "max_pool2d", known, &return_indices);
    gl_tensor **slot = l_tensor_push_slot(L);
    gl_tensor **indices = return_indices ? l_tensor_push_slot(L) : NULL;
    if (gl_max_pool2d(x, &o, slot, indices, 1, &err)) return l_error_raise(L, &err);
    return return_indices ? 2 : 1;
}

static int l_avg_pool2d(lua_State *L)
{
    static const char *const known[] = {"stride", "padding", "ceil_mode", "count_include_pad", NULL};
    gl_error err;
    gl_tensor *x = l_tensor_check(L, 1);
    gl_pool2d_options o = pool_options(L, "avg_pool2d", known, NULL);
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_avg_pool2d(x, &o, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

/* gl.global_avg_pool2d(x [, keepdim]) or (x, {keepdim = true}) */
static int l_global_avg_pool2d(lua_State *L)
{
    static const char *const known[] = {"keepdim", NULL};
    gl_error err;
    gl_tensor *x = l_tensor_check(L, 1);
    bool keepdim;
    if (lua_istable(L, 2)) {
        options_check(L, 2, "global_avg_pool2d", known);
        keepdim = flag_field(L, 2, "keepdim", false);
    } else {
        keepdim = lua_toboolean(L, 2);
    }
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_global_avg_pool2d(x, keepdim, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static const luaL_Reg functions[] = {
    {"conv2d", l_conv2d},
    {"_conv2d_reference", l_conv2d_reference},
    {"max_pool2d", l_max_pool2d},
    {"avg_pool2d", l_avg_pool2d},
    {"global_avg_pool2d", l_global_avg_pool2d},
    {NULL, NULL},
};

void l_conv_register(lua_State *L)
{
    luaL_setfuncs(L, functions, 0);
}
