/*
 * l_tensor.c — the gradlab.Tensor userdata: creation, inspection and views.
 *
 * The userdata holds one reference to a gl_tensor (or NULL after __close);
 * __gc and __close share one idempotent release.  Engine calls write into a
 * slot pushed before the call, so an error midway never leaks.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bindings.h"

/* ------------------------------------------------------------------ basics */

int l_errorf(lua_State *L, const char *format, ...)
{
    char message[512];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    return luaL_error(L, "%s", message);
}

int l_error_raise(lua_State *L, const gl_error *err)
{
    /* An op's output that does not fit in memory fails inside the engine's own
     * allocator, whose message says "empty: cannot allocate ...": name the
     * function the user called instead (x:contiguous(), a + b, gl.eye). */
    static const char *const allocators[] = {"empty: ", "zeros: ", "full: "};
    lua_Debug ar;
    if (err->code == GL_ENOMEM && lua_getstack(L, 0, &ar) && lua_getinfo(L, "n", &ar) && ar.name) {
        const char *name = ar.name;
        if (strncmp(name, "__", 2) == 0) name += 2;   /* __add -> add */
        for (size_t i = 0; i < sizeof allocators / sizeof allocators[0]; i++) {
            size_t n = strlen(allocators[i]);
            if (strncmp(err->message, allocators[i], n) == 0
                && strncmp(name, allocators[i], n - 2) != 0)
                return luaL_error(L, "%s: %s", name, err->message + n);
        }
    }
    return luaL_error(L, "%s", err->message);
}

/* Lua's collector sees only the small userdata, not the C buffers behind it,
 * so a loop that makes big tensors would let memory grow far before a cycle
 * runs.  Each new tensor therefore checks how many bytes the engine allocated
 * since the last check, and every 256 KiB the collector does a share of a
 * cycle: sized so that one whole cycle (work proportional to Lua's own heap)
 * completes per `budget` bytes of engine allocation, budget being the engine's
 * live bytes or 32 MiB, whichever is more — Lua's own rule (collect when
 * memory has doubled) applied to tensor memory, with a floor.  Pacing every
 * 256 KiB as if it were Lua allocation instead ran a whole cycle every ~1 MiB
 * of small tensors: ~100 us per step of a 32-layer net. */
static void account_engine_memory(lua_State *L)
{
    static const char key = 0;   /* address used as a registry key, never written */
    uint64_t now = gl_allocated_bytes_total();
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key);
    uint64_t last = (uint64_t)lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (now - last < 256 * 1024) return;
    lua_pushinteger(L, (lua_Integer)now);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key);
    double budget = (double)gl_live_bytes();
    if (budget < 32.0 * 1024 * 1024) budget = 32.0 * 1024 * 1024;
    double heap_kb = (double)lua_gc(L, LUA_GCCOUNT, 0) + 1.0;
    double step_kb = heap_kb * (double)(now - last) / budget;
    if (step_kb > 1 << 30) step_kb = 1 << 30;
    lua_gc(L, LUA_GCSTEP, step_kb < 1 ? 1 : (int)step_kb);
}

/* The metatable is also kept in the registry under this address: lookups by a
 * light userdata key skip the string interning (and its strcmp) that
 * luaL_testudata and luaL_setmetatable do on every call. */
static const char metatable_key = 0;

gl_tensor **l_tensor_push_slot(lua_State *L)
{
    account_engine_memory(L);
    gl_tensor **slot = lua_newuserdatauv(L, sizeof(gl_tensor *), 1);
    *slot = NULL;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &metatable_key);
    lua_setmetatable(L, -2);
    return slot;
}

void l_tensor_push(lua_State *L, gl_tensor *t)
{
    gl_tensor **slot = l_tensor_push_slot(L);
    *slot = t;
}

/* The userdata slot at index when it is a tensor, else NULL. */
static gl_tensor **tensor_slot(lua_State *L, int index)
{
    gl_tensor **slot = lua_touserdata(L, index);
    if (!slot || !lua_getmetatable(L, index)) return NULL;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &metatable_key);
    bool is_tensor = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return is_tensor ? slot : NULL;
}

gl_tensor *l_tensor_test(lua_State *L, int index)
{
    gl_tensor **slot = tensor_slot(L, index);
    return slot ? *slot : NULL;
}

gl_tensor *l_tensor_check(lua_State *L, int index)
{
    gl_tensor **slot = tensor_slot(L, index);
    if (!slot) {
        const char *got = luaL_typename(L, index);
        luaL_argerror(L, index, lua_pushfstring(L, "tensor expected, got %s", got));
    }
    if (!*slot) luaL_argerror(L, index, "tensor was closed (released)");
    return *slot;
}

void l_tensor_push_methods(lua_State *L)
{
    luaL_getmetatable(L, L_TENSOR_METATABLE);
    lua_getfield(L, -1, "__methods");
    lua_remove(L, -2);
}

int l_dim_check(lua_State *L, int index)
{
    int isnum;
    lua_Integer d = lua_tointegerx(L, index, &isnum);
    if (!isnum) luaL_argerror(L, index, "dimension must be an integer (1-based, or negative from the end)");
    if (d == 0) luaL_argerror(L, index, "dimension 0 does not exist: dimensions are 1-based");
    if (d > GL_MAX_DIMS || d < -GL_MAX_DIMS) luaL_argerror(L, index, "dimension out of range");
    return d > 0 ? (int)d - 1 : (int)d;
}

static int64_t size_check(lua_State *L, int index, const char *function, int position)
{
    int isnum;
    lua_Integer v = lua_tointegerx(L, index, &isnum);
    if (!isnum) {
        if (lua_type(L, index) == LUA_TNUMBER)
            return l_errorf(L, "%s: size %s at position %d is not an integer", function,
                              lua_tostring(L, index), position);
        return l_errorf(L, "%s: the shape must hold integers, got a %s at position %d", function,
                          luaL_typename(L, index), position);
    }
    return (int64_t)v;
}

int l_shape_check(lua_State *L, int index, const char *function, int64_t *shape)
{
    int ndim;
    if (lua_istable(L, index)) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, index);
        if (n > GL_MAX_DIMS)
            return l_errorf(L, "%s: a tensor has at most %d dimensions, the shape has %d", function,
                              GL_MAX_DIMS, (int)n);
        ndim = (int)n;
        for (int d = 0; d < ndim; d++) {
            lua_rawgeti(L, index, d + 1);
            shape[d] = size_check(L, -1, function, d + 1);
            lua_pop(L, 1);
        }
    } else if (lua_isnumber(L, index)) {
        int top = lua_gettop(L);
        ndim = top - index + 1;
        if (ndim > GL_MAX_DIMS)
            return l_errorf(L, "%s: a tensor has at most %d dimensions", function, GL_MAX_DIMS);
        for (int d = 0; d < ndim; d++) shape[d] = size_check(L, index + d, function, d + 1);
    } else {
        return l_errorf(L, "%s: the shape must be a table of sizes such as {2, 3}, got %s", function,
                          luaL_typename(L, index));
    }
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 0)
            return l_errorf(L, "%s: size %d of the shape is negative (%lld)", function, d + 1,
                              (long long)shape[d]);
    return ndim;
}

static int l_tensor_gc(lua_State *L)
{
    gl_tensor **slot = luaL_checkudata(L, 1, L_TENSOR_METATABLE);
    gl_tensor_release(*slot);
    *slot = NULL;
    return 0;
}

static int l_tensor_tostring(lua_State *L)
{
    gl_tensor *t = l_tensor_check(L, 1);
    char *s = gl_tensor_format(t, 1000);
    if (!s) return l_errorf(L, "tostring: out of memory");
    lua_pushstring(L, s);
    free(s);
    return 1;
}

/* ---------------------------------------------------------------- creation */

/* Walks a nested table once to find its shape, checking it is rectangular. */
static void nested_shape(lua_State *L, int index, int depth, int *ndim, int64_t *shape)
{
    if (lua_type(L, index) == LUA_TNUMBER) {
        *ndim = depth;
        return;
    }
    if (!lua_istable(L, index))
        l_errorf(L, "tensor: expected numbers or nested tables of numbers, got a %s",
                   luaL_typename(L, index));
    if (depth >= GL_MAX_DIMS) l_errorf(L, "tensor: more than %d levels of nesting", GL_MAX_DIMS);
    shape[depth] = (int64_t)lua_rawlen(L, index);
    if (shape[depth] == 0) {
        *ndim = depth + 1;
        return;
    }
    lua_rawgeti(L, index, 1);
    nested_shape(L, lua_gettop(L), depth + 1, ndim, shape);
    lua_pop(L, 1);
}

static float *nested_fill(lua_State *L, int index, int depth, int ndim, const int64_t *shape,
                          float *out)
{
    if (depth == ndim) {
        int isnum;
        lua_Number v = lua_tonumberx(L, index, &isnum);
        if (!isnum)
            l_errorf(L, "tensor: ragged nesting: expected a number at depth %d, got a %s", depth + 1,
                       luaL_typename(L, index));
        *out = (float)v;
        return out + 1;
    }
    if (!lua_istable(L, index) || (int64_t)lua_rawlen(L, index) != shape[depth])
        l_errorf(L, "tensor: ragged nesting: expected a table of %lld items at depth %d, got %s",
                   (long long)shape[depth], depth + 1,
                   lua_istable(L, index) ? lua_pushfstring(L, "%d items", (int)lua_rawlen(L, index))
                                         : luaL_typename(L, index));
    for (int64_t i = 0; i < shape[depth]; i++) {
        lua_rawgeti(L, index, (lua_Integer)i + 1);
        out = nested_fill(L, lua_gettop(L), depth + 1, ndim, shape, out);
        lua_pop(L, 1);
    }
    return out;
}

static int l_tensor_new(lua_State *L)
{
    gl_error err;
    gl_tensor *source = l_tensor_test(L, 1);
    if (source) {   /* gl.tensor(t): a copy, as torch.tensor(t) does */
        gl_tensor **slot = l_tensor_push_slot(L);
        if (gl_tensor_clone(source, slot, &err)) return l_error_raise(L, &err);
        return 1;
    }
    if (lua_type(L, 1) == LUA_TNUMBER) {
        gl_tensor **slot = l_tensor_push_slot(L);
        if (gl_tensor_scalar((float)lua_tonumber(L, 1), slot, &err)) return l_error_raise(L, &err);
        return 1;
    }
    if (!lua_istable(L, 1))
        return luaL_argerror(L, 1, lua_pushfstring(L, "number or nested table of numbers expected, got %s",
                                                  luaL_typename(L, 1)));
    int64_t shape[GL_MAX_DIMS];
    int ndim = 0;
    nested_shape(L, 1, 0, &ndim, shape);
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_tensor_empty(ndim, shape, slot, &err)) return l_error_raise(L, &err);
    if (gl_tensor_numel(*slot) > 0) nested_fill(L, 1, 0, ndim, shape, gl_tensor_data(*slot));
    return 1;
}

typedef gl_status (*shape_constructor)(int, const int64_t *, gl_tensor **, gl_error *);

static int construct(lua_State *L, const char *name, shape_constructor make)
{
    int64_t shape[GL_MAX_DIMS];
    gl_error err;
    int ndim = l_shape_check(L, 1, name, shape);
    gl_tensor **slot = l_tensor_push_slot(L);
    if (make(ndim, shape, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static int l_zeros(lua_State *L) { return construct(L, "zeros", gl_tensor_zeros); }
static int l_ones(lua_State *L) { return construct(L, "ones", gl_tensor_ones); }
static int l_empty(lua_State *L) { return construct(L, "empty", gl_tensor_empty); }
static int l_randn(lua_State *L) { return construct(L, "randn", gl_tensor_randn); }
static int l_rand(lua_State *L) { return construct(L, "rand", gl_tensor_rand); }

static int l_full(lua_State *L)
{
    int64_t shape[GL_MAX_DIMS];
    gl_error err;
    int top = lua_gettop(L);
    float value = (float)luaL_checknumber(L, lua_istable(L, 1) ? 2 : top);
    if (!lua_istable(L, 1)) lua_settop(L, top - 1);   /* full(2, 3, v): sizes, then the value */
    int ndim = l_shape_check(L, 1, "full", shape);
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_tensor_full(ndim, shape, value, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static int l_randint(lua_State *L)
{
    int64_t shape[GL_MAX_DIMS];
    gl_error err;
    lua_Integer low = luaL_checkinteger(L, 1), high = luaL_checkinteger(L, 2);
    int ndim = l_shape_check(L, 3, "randint", shape);
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_tensor_randint(low, high, ndim, shape, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static int l_eye(lua_State *L)
{
    gl_error err;
    lua_Integer n = luaL_checkinteger(L, 1);
    if (n < 0) return luaL_argerror(L, 1, "size must be non-negative");
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_tensor_eye(n, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static int l_arange(lua_State *L)
{
    gl_error err;
    double start = luaL_checknumber(L, 1);
    double end = luaL_optnumber(L, 2, start), step = luaL_optnumber(L, 3, 1.0);
    if (lua_isnoneornil(L, 2)) start = 0.0;   /* arange(n) = 0, 1, ..., n-1 as in PyTorch */
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_tensor_arange(start, end, step, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static int l_manual_seed(lua_State *L)
{
    gl_manual_seed((uint64_t)luaL_checkinteger(L, 1));
    return 0;
}

static int l_set_num_threads(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    if (n < 1 || n > 1024) return luaL_argerror(L, 1, "thread count must be between 1 and 1024");
    gl_set_num_threads((int)n);
    return 0;
}

static int l_get_num_threads(lua_State *L)
{
    lua_pushinteger(L, gl_get_num_threads());
    return 1;
}

static int l_is_tensor(lua_State *L)
{
    lua_pushboolean(L, l_tensor_test(L, 1) != NULL);
    return 1;
}

/* -------------------------------------------------------------- inspection */

static int l_shape(lua_State *L)
{
    gl_tensor *t = l_tensor_check(L, 1);
    lua_createtable(L, t->ndim, 0);
    for (int d = 0; d < t->ndim; d++) {
        lua_pushinteger(L, t->shape[d]);
        lua_rawseti(L, -2, d + 1);
    }
    return 1;
}

static int l_stride(lua_State *L)
{
    gl_tensor *t = l_tensor_check(L, 1);
    lua_createtable(L, t->ndim, 0);
    for (int d = 0; d < t->ndim; d++) {
        lua_pushinteger(L, t->stride[d]);
        lua_rawseti(L, -2, d + 1);
    }
    return 1;
}

static int l_size(lua_State *L)
{
    gl_tensor *t = l_tensor_check(L, 1);
    if (lua_isnoneornil(L, 2)) return l_shape(L);
    int d = l_dim_check(L, 2);
    int wrapped = d < 0 ? d + t->ndim : d;
    if (wrapped < 0 || wrapped >= t->ndim)
        return luaL_argerror(L, 2, lua_pushfstring(L, "dimension %d out of range for a %d-d tensor",
                                                   (int)lua_tointeger(L, 2), t->ndim));
    lua_pushinteger(L, t->shape[wrapped]);
    return 1;
}

static int l_len(lua_State *L)
{
    gl_tensor *t = l_tensor_check(L, 1);
    if (t->ndim == 0) return l_errorf(L, "#: a 0-d tensor has no length; use :item()");
    lua_pushinteger(L, t->shape[0]);
    return 1;
}

static int l_dim(lua_State *L)
{
    lua_pushinteger(L, l_tensor_check(L, 1)->ndim);
    return 1;
}

static int l_numel(lua_State *L)
{
    lua_pushinteger(L, gl_tensor_numel(l_tensor_check(L, 1)));
    return 1;
}

static int l_is_contiguous(lua_State *L)
{
    lua_pushboolean(L, gl_tensor_is_contiguous(l_tensor_check(L, 1)));
    return 1;
}

static int l_item(lua_State *L)
{
    char buffer[160];
    gl_tensor *t = l_tensor_check(L, 1);
    if (gl_tensor_numel(t) != 1)
        return l_errorf(L, "item: the tensor has %lld elements (shape %s); item needs exactly 1",
                          (long long)gl_tensor_numel(t), gl_shape_format(t->ndim, t->shape, buffer, sizeof buffer));
    int64_t at = t->offset;   /* all dims have size 1: the element sits at the offset */
    lua_pushnumber(L, t->storage->data[at]);
    return 1;
}

static int read_indices(lua_State *L, int first, int64_t *index, const char *function)
{
    int count = lua_gettop(L) - first + 1;
    if (count > GL_MAX_DIMS) return l_errorf(L, "%s: too many indices (%d)", function, count);
    for (int k = 0; k < count; k++) {
        int isnum;
        lua_Integer i = lua_tointegerx(L, first + k, &isnum);
        if (!isnum)
            luaL_argerror(L, first + k, lua_pushfstring(L, "integer index expected, got %s",
                                                       luaL_typename(L, first + k)));
        if (i == 0) luaL_argerror(L, first + k, "index 0 does not exist: indices are 1-based");
        index[k] = i > 0 ? i - 1 : i;   /* negative counts from the end; wrapped below */
    }
    return count;
}

static void wrap_indices(const gl_tensor *t, int count, int64_t *index)
{
    for (int k = 0; k < count && k < t->ndim; k++)
        if (index[k] < 0) index[k] += t->shape[k];
}

static int l_get(lua_State *L)
{
    gl_error err;
    int64_t index[GL_MAX_DIMS];
    float value;
    gl_tensor *t = l_tensor_check(L, 1);
    int count = read_indices(L, 2, index, "get");
    wrap_indices(t, count, index);
    if (gl_tensor_get(t, count, index, &value, &err)) return l_error_raise(L, &err);
    lua_pushnumber(L, value);
    return 1;
}

static int l_set(lua_State *L)
{
    gl_error err;
    int64_t index[GL_MAX_DIMS];
    gl_tensor *t = l_tensor_check(L, 1);
    float value = (float)luaL_checknumber(L, 2);
    int count = read_indices(L, 3, index, "set");
    wrap_indices(t, count, index);
    if (gl_tensor_set(t, count, index, value, &err)) return l_error_raise(L, &err);
    lua_settop(L, 1);
    return 1;
}

static void push_nested(lua_State *L, const gl_tensor *t, int dim, int64_t offset)
{
    if (dim == t->ndim) {
        lua_pushnumber(L, t->storage->data[offset]);
        return;
    }
    luaL_checkstack(L, 4, "totable");
    lua_createtable(L, (int)t->shape[dim], 0);
    for (int64_t i = 0; i < t->shape[dim]; i++) {
        push_nested(L, t, dim + 1, offset + i * t->stride[dim]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

static int l_totable(lua_State *L)
{
    gl_tensor *t = l_tensor_check(L, 1);
    push_nested(L, t, 0, t->offset);
    return 1;
}

/* ------------------------------------------------------------------- views */

static int l_view_like(lua_State *L, const char *name,
                       gl_status (*fn)(gl_tensor *, int, const int64_t *, gl_tensor **, gl_error *))
{
    gl_error err;
    int64_t shape[GL_MAX_DIMS];
    gl_tensor *t = l_tensor_check(L, 1);
    int ndim;
    if (lua_istable(L, 2)) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
        if (n > GL_MAX_DIMS) return l_errorf(L, "%s: at most %d dimensions", name, GL_MAX_DIMS);
        ndim = (int)n;
        for (int d = 0; d < ndim; d++) {
            lua_rawgeti(L, 2, d + 1);
            shape[d] = size_check(L, -1, name, d + 1);
            lua_pop(L, 1);
        }
    } else {
        ndim = lua_gettop(L) - 1;
        if (ndim > GL_MAX_DIMS) return l_errorf(L, "%s: at most %d dimensions", name, GL_MAX_DIMS);
        for (int d = 0; d < ndim; d++) shape[d] = size_check(L, d + 2, name, d + 1);
    }
    gl_tensor **slot = l_tensor_push_slot(L);
    if (fn(t, ndim, shape, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static int l_view(lua_State *L) { return l_view_like(L, "view", gl_tensor_view); }
static int l_reshape(lua_State *L) { return l_view_like(L, "reshape", gl_tensor_reshape); }
static int l_expand(lua_State *L) { return l_view_like(L, "expand", gl_tensor_expand); }

static int l_transpose(lua_State *L)
{
    gl_error err;
    gl_tensor *t = l_tensor_check(L, 1);
    int a = l_dim_check(L, 2), b = l_dim_check(L, 3);
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_tensor_transpose(t, a, b, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static int l_t(lua_State *L)
{
    char buffer[160];
    gl_error err;
    gl_tensor *t = l_tensor_check(L, 1);
    if (t->ndim != 2)
        return l_errorf(L, "t: expects a 2-d tensor, got shape %s; use transpose(d1, d2)",
                          gl_shape_format(t->ndim, t->shape, buffer, sizeof buffer));
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_tensor_transpose(t, 0, 1, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static int l_permute(lua_State *L)
{
    gl_error err;
    int order[GL_MAX_DIMS];
    gl_tensor *t = l_tensor_check(L, 1);
    int n;
    if (lua_istable(L, 2)) {
        n = (int)lua_rawlen(L, 2);
        if (n > GL_MAX_DIMS) return luaL_argerror(L, 2, "too many dimensions");
        for (int k = 0; k < n; k++) {
            lua_rawgeti(L, 2, k + 1);
            order[k] = l_dim_check(L, -1);
            lua_pop(L, 1);
        }
    } else {
        n = lua_gettop(L) - 1;
        if (n > GL_MAX_DIMS) return luaL_argerror(L, 2, "too many dimensions");
        for (int k = 0; k < n; k++) order[k] = l_dim_check(L, k + 2);
    }
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_tensor_permute(t, n, order, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static int l_narrow(lua_State *L)
{
    gl_error err;
    gl_tensor *t = l_tensor_check(L, 1);
    int d = l_dim_check(L, 2);
    lua_Integer start = luaL_checkinteger(L, 3), length = luaL_checkinteger(L, 4);
    if (start < 1) return luaL_argerror(L, 3, "start must be >= 1 (indices are 1-based)");
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_tensor_narrow(t, d, start - 1, length, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static int l_select(lua_State *L)
{
    gl_error err;
    gl_tensor *t = l_tensor_check(L, 1);
    int d = l_dim_check(L, 2);
    lua_Integer i = luaL_checkinteger(L, 3);
    if (i == 0) return luaL_argerror(L, 3, "index 0 does not exist: indices are 1-based");
    int wrapped = d < 0 ? d + t->ndim : d;
    if (i < 0 && wrapped >= 0 && wrapped < t->ndim) i += t->shape[wrapped] + 1;
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_tensor_select(t, d, i - 1, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static int l_unsqueeze(lua_State *L)
{
    gl_error err;
    gl_tensor *t = l_tensor_check(L, 1);
    lua_Integer d = luaL_checkinteger(L, 2);
    if (d == 0) return luaL_argerror(L, 2, "dimension 0 does not exist: dimensions are 1-based");
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_tensor_unsqueeze(t, d > 0 ? (int)d - 1 : (int)d, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static int l_squeeze(lua_State *L)
{
    gl_error err;
    gl_tensor *t = l_tensor_check(L, 1);
    int d = lua_isnoneornil(L, 2) ? GL_SQUEEZE_ALL : l_dim_check(L, 2);
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_tensor_squeeze(t, d, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static int l_contiguous(lua_State *L)
{
    gl_error err;
    gl_tensor *t = l_tensor_check(L, 1);
    if (gl_tensor_is_contiguous(t)) {   /* the same object back, as PyTorch does */
        lua_settop(L, 1);
        return 1;
    }
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_tensor_clone(t, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static int l_clone(lua_State *L)
{
    gl_error err;
    gl_tensor *t = l_tensor_check(L, 1);
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_tensor_clone(t, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static const luaL_Reg module_functions[] = {
    {"tensor", l_tensor_new},
    {"zeros", l_zeros},
    {"ones", l_ones},
    {"full", l_full},
    {"empty", l_empty},
    {"randn", l_randn},
    {"rand", l_rand},
    {"randint", l_randint},
    {"eye", l_eye},
    {"arange", l_arange},
    {"manual_seed", l_manual_seed},
    {"set_num_threads", l_set_num_threads},
    {"get_num_threads", l_get_num_threads},
    {"is_tensor", l_is_tensor},
    {NULL, NULL},
};

static const luaL_Reg methods[] = {
    {"shape", l_shape},
    {"size", l_size},
    {"stride", l_stride},
    {"dim", l_dim},
    {"numel", l_numel},
    {"is_contiguous", l_is_contiguous},
    {"item", l_item},
    {"get", l_get},
    {"set", l_set},
    {"totable", l_totable},
    {"view", l_view},
    {"reshape", l_reshape},
    {"expand", l_expand},
    {"transpose", l_transpose},
    {"t", l_t},
    {"permute", l_permute},
    {"narrow", l_narrow},
    {"select", l_select},
    {"unsqueeze", l_unsqueeze},
    {"squeeze", l_squeeze},
    {"contiguous", l_contiguous},
    {"clone", l_clone},
    {NULL, NULL},
};

static const luaL_Reg metamethods[] = {
    {"__gc", l_tensor_gc},
    {"__close", l_tensor_gc},
    {"__tostring", l_tensor_tostring},
    {"__len", l_len},
    {NULL, NULL},
};

/* t.key: a method, or the field `grad` (the gradient tensor, or nil).  The
 * grad's userdata is cached in the tensor's user value so t.grad is the same
 * Lua object on every access while the gradient tensor stays the same. */
static int l_tensor_index(lua_State *L)
{
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
    const char *key = lua_tostring(L, 2);
    if (!key || strcmp(key, "grad") != 0) return 1;   /* nil */
    gl_tensor *t = l_tensor_check(L, 1);
    if (!t->grad) return 1;
    if (lua_getiuservalue(L, 1, 1) == LUA_TUSERDATA && l_tensor_test(L, -1) == t->grad) return 1;
    gl_tensor_retain(t->grad);
    l_tensor_push(L, t->grad);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, 1, 1);
    return 1;
}

/* t.grad = tensor | nil; any other field is an error. */
static int l_tensor_newindex(lua_State *L)
{
    char want[160], have[160];
    gl_tensor *t = l_tensor_check(L, 1);
    const char *key = lua_tostring(L, 2);
    if (!key || strcmp(key, "grad") != 0)
        return l_errorf(L, "tensor: cannot set field '%s' (tensors have only methods and the field 'grad')",
                        key ? key : luaL_typename(L, 2));
    if (lua_isnil(L, 3)) {
        gl_tensor_zero_grad(t);
        return 0;
    }
    gl_tensor *g = l_tensor_check(L, 3);
    if (!gl_shape_equal(g->ndim, g->shape, t->ndim, t->shape))
        return l_errorf(L, "tensor.grad: the gradient has shape %s, the tensor %s",
                        gl_shape_format(g->ndim, g->shape, have, sizeof have),
                        gl_shape_format(t->ndim, t->shape, want, sizeof want));
    gl_tensor_retain(g);
    gl_tensor_zero_grad(t);
    t->grad = g;
    return 0;
}

void l_tensor_register(lua_State *L)
{
    luaL_newmetatable(L, L_TENSOR_METATABLE);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &metatable_key);
    luaL_setfuncs(L, metamethods, 0);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "__methods");
    lua_pushcclosure(L, l_tensor_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_tensor_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushliteral(L, "gradlab.Tensor");
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);
    luaL_setfuncs(L, module_functions, 0);
}
