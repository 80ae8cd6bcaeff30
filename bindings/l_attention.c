/*
 * l_attention.c — Embedding and attention for Lua (engine/embedding.c, engine/attention.c).
 *
 *   gl.embedding(indices, weight [, padding_idx])   indices: 1-based integers held as floats
 *   gl.attention(q, k, v, heads [, options])        -> out, weights
 *   gl.attention_packed(qkv, heads [, options])     -> out, weights   (self-attention, qkv = [Q|K|V])
 *
 * Layout is batch first with the heads packed in the feature dimension:
 * q (B, Tq, heads*dk), k (B, Tk, heads*dk), v (B, Tk, heads*dv) -> out (B, Tq, heads*dv);
 * weights (B, heads, Tq, Tk) are the softmax probabilities before dropout,
 * detached from the graph.  options: {mask = additive tensor broadcasting to
 * (B, heads, Tq, Tk), key_padding_mask = (B, Tk) with nonzero for keys to
 * ignore, causal = false, scale = 1/sqrt(dk), dropout = 0, training = true}.
 */
#include <math.h>
#include <string.h>

#include "bindings.h"

/* Known option names, so a typo such as {casual = true} is an error, not a silent default. */
static void options_check(lua_State *L, int options, const char *function, const char *const *known)
{
    lua_pushnil(L);
    while (lua_next(L, options)) {
        lua_pop(L, 1);
        const char *key = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        bool found = false;
        for (int i = 0; key && known[i] && !found; i++) found = strcmp(key, known[i]) == 0;
        if (!found) l_errorf(L, "%s: unknown option '%s'", function, key ? key : luaL_typename(L, -1));
    }
}

/* options[name] as a tensor, left on the stack so it stays alive; NULL when nil. */
static gl_tensor *field_tensor(lua_State *L, int options, const char *function, const char *name)
{
    lua_getfield(L, options, name);
    if (lua_isnil(L, -1)) return NULL;
    gl_tensor *t = l_tensor_test(L, -1);
    if (!t) l_errorf(L, "%s: option '%s' must be a tensor, got %s", function, name, luaL_typename(L, -1));
    return t;
}

static double field_number(lua_State *L, int options, const char *function, const char *name, double fallback)
{
    lua_getfield(L, options, name);
    double value = fallback;
    if (!lua_isnil(L, -1)) {
        int isnum = 0;
        value = (double)lua_tonumberx(L, -1, &isnum);
        if (!isnum) l_errorf(L, "%s: option '%s' must be a number, got %s", function, name, luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    return value;
}

static bool field_boolean(lua_State *L, int options, const char *function, const char *name, bool fallback)
{
    lua_getfield(L, options, name);
    bool value = fallback;
    if (!lua_isnil(L, -1)) {
        if (!lua_isboolean(L, -1))
            l_errorf(L, "%s: option '%s' must be a boolean, got %s", function, name, luaL_typename(L, -1));
        value = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
    return value;
}

/* gl.embedding(indices, weight [, padding_idx]) */
static int l_embedding(lua_State *L)
{
    gl_error err;
    gl_tensor *indices = l_tensor_check(L, 1), *weight = l_tensor_check(L, 2);
    int64_t padding = GL_EMBEDDING_NO_PADDING;
    if (!lua_isnoneornil(L, 3)) {
        int isint = 0;
        lua_Integer value = lua_tointegerx(L, 3, &isint);
        if (!isint)
            return l_errorf(L, "embedding: padding_idx must be an integer (1-based row), got %s",
                            luaL_tolstring(L, 3, NULL));
        padding = (int64_t)value;
    }
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_embedding(indices, weight, 1, padding, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

/* Reads heads (argument `index`) and the options table after it into o.  The
 * tensors stay on the Lua stack above `index + 1` for the duration of the call. */
static void attention_options(lua_State *L, int index, const char *function, gl_attention_options *o)
{
    memset(o, 0, sizeof *o);
    int isint = 0;
    lua_Integer heads = lua_tointegerx(L, index, &isint);
    if (!isint || heads < 1)
        l_errorf(L, "%s: bad argument #%d (heads must be a positive integer, got %s)", function, index,
                 luaL_tolstring(L, index, NULL));
    o->heads = (int64_t)heads;
    o->training = true;
    int options = index + 1;
    if (lua_isnoneornil(L, options)) return;
    if (!lua_istable(L, options))
        l_errorf(L, "%s: bad argument #%d (options table expected, got %s)", function, options,
                 luaL_typename(L, options));
    static const char *const known[] = {"mask", "key_padding_mask", "causal", "scale", "dropout", "training", NULL};
    options_check(L, options, function, known);
    o->mask = field_tensor(L, options, function, "mask");
    o->key_padding_mask = field_tensor(L, options, function, "key_padding_mask");
    o->causal = field_boolean(L, options, function, "causal", false);
    o->training = field_boolean(L, options, function, "training", true);
    /* 0 means "the default 1/sqrt(dk)" to the engine, so a given 0 is refused here. */
    bool scale_given = lua_getfield(L, options, "scale") != LUA_TNIL;
    lua_pop(L, 1);
    double scale = field_number(L, options, function, "scale", 0.0);
    if (scale_given && (!isfinite(scale) || scale == 0.0))
        l_errorf(L, "%s: option 'scale' must be a finite nonzero number, got %g", function, scale);
    o->scale = (float)scale;
    double dropout = field_number(L, options, function, "dropout", 0.0);
    if (!(dropout >= 0.0 && dropout < 1.0))
        l_errorf(L, "%s: option 'dropout' must be in [0, 1), got %g", function, dropout);
    o->dropout = (float)dropout;
}

/* Pushes out and weights (slots created before the engine call, so nothing leaks). */
static int attention_call(lua_State *L, const gl_tensor *q, const gl_tensor *k, const gl_tensor *v,
                          const gl_attention_options *o)
{
    gl_error err;
    gl_tensor **out = l_tensor_push_slot(L);
    gl_tensor **weights = l_tensor_push_slot(L);
    gl_status status = k ? gl_attention(q, k, v, o, out, weights, &err) : gl_attention_packed(q, o, out, weights, &err);
    if (status) return l_error_raise(L, &err);
    return 2;
}

/* gl.attention(q, k, v, heads [, options]) */
static int l_attention(lua_State *L)
{
    gl_tensor *q = l_tensor_check(L, 1), *k = l_tensor_check(L, 2), *v = l_tensor_check(L, 3);
    gl_attention_options o;
    attention_options(L, 4, "attention", &o);
    return attention_call(L, q, k, v, &o);
}

/* gl.attention_packed(qkv, heads [, options]) */
static int l_attention_packed(lua_State *L)
{
    gl_tensor *qkv = l_tensor_check(L, 1);
    gl_attention_options o;
    attention_options(L, 2, "attention_packed", &o);
    return attention_call(L, qkv, NULL, NULL, &o);
}

static const luaL_Reg functions[] = {
    {"embedding", l_embedding},
    {"attention", l_attention},
    {"attention_packed", l_attention_packed},
    {NULL, NULL},
};

void l_attention_register(lua_State *L)
{
    luaL_setfuncs(L, functions, 0);
}
