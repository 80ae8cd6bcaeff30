/*
 * l_monitor.c — the monitor's C half for Lua: one-pass tensor statistics,
 * watching the gradient that reaches an op's output during backward, and the
 * recorder behind gl.monitor (engine/monitor_record.c).
 *
 *   gl._monitor_recorder(vanish, explode) → recorder
 *   recorder:add_param(p) → tap   recorder:add_module([low, high]) → tap
 *   recorder:record(step, loss|nil, every) → nil (skipped) | index, new warnings, loss
 *   queries: count, version, info, entries, series, row, steps, warnings, clips
 *
 * A module tap sits in its module's `_taps` list: Module.__call hands the
 * output to every tap there in the C call that ends the module's forward
 * (l_monitor_observe_taps), with no Lua call per tap.  Calling a tap as a
 * function (tap(module, output)) does the same, for hooks written by hand.  A parameter tap is what
 * the optimizers pass their fused kernels, which write ‖Δp‖, ‖p‖ straight in.
 * Taps hold a reference to the recorder, so either may be collected first.
 */
#include <math.h>
#include <string.h>

#include "bindings.h"

#define RECORDER_METATABLE "gradlab.MonitorRecorder"
#define TAP_METATABLE "gradlab.MonitorTap"

/* The taps' metatable is also kept under this key, so telling a tap costs a
 * pointer lookup rather than a lookup by name. */
static const char tap_key = 0;

static const char *const param_fields[] = {"grad_norm", "grad_mean", "grad_max", "update_ratio", NULL};
static const char *const module_fields[] = {"act_mean", "act_std", "act_zero_frac", "act_sat_frac",
                                            "grad_out_norm", NULL};

typedef struct tap {
    gl_monitor *monitor;   /* one reference; NULL after __gc */
    int64_t index;
    bool module;
} tap;

/* ------------------------------------------------------------ statistics */

static void push_stats(lua_State *L, const gl_tensor_stats *s)
{
    double finite = (double)(s->count - s->nonfinite);
    double mean = finite > 0 ? s->sum / finite : 0.0 / 0.0;
    double variance = finite > 0 ? s->sum_squares / finite - mean * mean : 0.0 / 0.0;
    lua_createtable(L, 0, 11);
    lua_pushnumber(L, s->sum);
    lua_setfield(L, -2, "sum");
    lua_pushnumber(L, s->sum_squares);
    lua_setfield(L, -2, "sum_squares");
    lua_pushnumber(L, sqrt(s->sum_squares));
    lua_setfield(L, -2, "norm");
    lua_pushnumber(L, mean);
    lua_setfield(L, -2, "mean");
    lua_pushnumber(L, variance > 0 ? sqrt(variance) : 0.0);
    lua_setfield(L, -2, "std");
    lua_pushnumber(L, s->max_abs);
    lua_setfield(L, -2, "max_abs");
    lua_pushinteger(L, s->count);
    lua_setfield(L, -2, "count");
    lua_pushinteger(L, s->nonfinite);
    lua_setfield(L, -2, "nonfinite");
    lua_pushinteger(L, s->zeros);
    lua_setfield(L, -2, "zeros");
    lua_pushinteger(L, s->saturated);
    lua_setfield(L, -2, "saturated");
}

/* t:stats([low, high]) → {sum, sum_squares, norm, mean, std, max_abs, count,
 * nonfinite, zeros, saturated}; non-finite values are counted and left out of
 * the sums; `saturated` counts values outside [low, high]. */
static int l_stats(lua_State *L)
{
    gl_tensor *t = l_tensor_check(L, 1);
    float low = (float)luaL_optnumber(L, 2, -INFINITY), high = (float)luaL_optnumber(L, 3, INFINITY);
    gl_tensor_stats s;
    gl_tensor_statistics(t, low, high, &s);
    push_stats(L, &s);
    return 1;
}

/* t:watch_grad() → t; false when t is not the output of a recorded op (no graph). */
static int l_watch_grad(lua_State *L)
{
    gl_tensor *t = l_tensor_check(L, 1);
    if (gl_tensor_watch_grad(t, NULL)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_settop(L, 1);
    return 1;
}

/* t:watched_grad() → the statistics table of the gradient that reached t in the
 * last backward, or nil. */
static int l_watched_grad(lua_State *L)
{
    gl_tensor *t = l_tensor_check(L, 1);
    gl_tensor_stats s;
    if (!gl_tensor_watched_grad(t, &s)) return 0;
    push_stats(L, &s);
    return 1;
}

/* -------------------------------------------------------------- recorder */

/* Steps go back as integers when they are whole, as they came in. */
static void push_step(lua_State *L, double step)
{
    if (step >= -9.0e15 && step <= 9.0e15 && step == (double)(lua_Integer)step) lua_pushinteger(L, (lua_Integer)step);
    else lua_pushnumber(L, step);
}

static gl_monitor *recorder_check(lua_State *L)
{
    gl_monitor **slot = luaL_checkudata(L, 1, RECORDER_METATABLE);
    if (!*slot) luaL_argerror(L, 1, "the recorder was released");
    return *slot;
}

/* _monitor_recorder(vanish, explode) */
static int l_recorder_new(lua_State *L)
{
    double vanish = luaL_checknumber(L, 1), explode = luaL_checknumber(L, 2);
    gl_monitor **slot = lua_newuserdatauv(L, sizeof *slot, 0);
    *slot = NULL;
    luaL_setmetatable(L, RECORDER_METATABLE);
    gl_error err;
    if (gl_monitor_new(vanish, explode, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static int l_recorder_gc(lua_State *L)
{
    gl_monitor **slot = luaL_checkudata(L, 1, RECORDER_METATABLE);
    gl_monitor_release(*slot);
    *slot = NULL;
    return 0;
}

static void push_tap(lua_State *L, gl_monitor *m, int64_t index, bool module)
{
    tap *t = lua_newuserdatauv(L, sizeof *t, 0);
    t->monitor = m;
    t->index = index;
    t->module = module;
    gl_monitor_retain(m);
    luaL_setmetatable(L, TAP_METATABLE);
}

/* recorder:add_param(p) → the tap the optimizers pass their kernels */
static int l_recorder_add_param(lua_State *L)
{
    gl_monitor *m = recorder_check(L);
    gl_tensor *p = l_tensor_check(L, 2);
    int64_t index;
    gl_error err;
    if (gl_monitor_add_param(m, p, &index, &err)) return l_error_raise(L, &err);
    push_tap(L, m, index, false);
    return 1;
}

/* recorder:add_module([low, high]) → the tap to register as a forward hook;
 * with low and high, the share of outputs outside [low, high] is recorded. */
static int l_recorder_add_module(lua_State *L)
{
    gl_monitor *m = recorder_check(L);
    bool band = !lua_isnoneornil(L, 2);
    float low = band ? (float)luaL_checknumber(L, 2) : 0, high = band ? (float)luaL_checknumber(L, 3) : 0;
    int64_t index;
    gl_error err;
    if (gl_monitor_add_module(m, band, low, high, &index, &err)) return l_error_raise(L, &err);
    push_tap(L, m, index, true);
    return 1;
}

/* The tap at `index`, or NULL when the value there is not one. */
static tap *tap_test(lua_State *L, int index)
{
    tap *t = lua_touserdata(L, index);
    if (!t || !lua_getmetatable(L, index)) return NULL;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &tap_key);
    bool is_tap = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return is_tap ? t : NULL;
}

static void tap_observe(const tap *t, gl_tensor *out)
{
    if (t->monitor && t->module) gl_monitor_observe(t->monitor, t->index, out);
}

/* tap(module, output, inputs...): a module tap called as a forward hook. */
static int l_tap_call(lua_State *L)
{
    tap *t = lua_touserdata(L, 1);   /* only reachable through this metatable (__metatable is locked) */
    gl_tensor *out = l_tensor_test(L, 3);
    if (t && out) tap_observe(t, out);
    return 0;
}

void l_monitor_observe_taps(lua_State *L, int taps, int output)
{
    if (lua_type(L, taps) != LUA_TTABLE) return;
    gl_tensor *out = l_tensor_test(L, output);
    if (!out) return;   /* a module that returns something else: nothing to observe */
    lua_Unsigned n = lua_rawlen(L, taps);
    for (lua_Unsigned i = 1; i <= n; i++) {
        lua_rawgeti(L, taps, (lua_Integer)i);
        tap *t = tap_test(L, -1);
        if (t) tap_observe(t, out);
        lua_pop(L, 1);
    }
}

static int l_tap_gc(lua_State *L)
{
    tap *t = luaL_checkudata(L, 1, TAP_METATABLE);
    gl_monitor_release(t->monitor);
    t->monitor = NULL;
    return 0;
}

bool l_monitor_param_tap(lua_State *L, int index, gl_monitor **monitor, int64_t *param)
{
    tap *t = tap_test(L, index);
    if (!t || !t->monitor || t->module) return false;
    *monitor = t->monitor;
    *param = t->index;
    return true;
}

/* _monitor_note_update(tap, update_norm, param_norm): for optimizers written
 * in Lua, which get the norms back instead of passing the tap down. */
static int l_note_update(lua_State *L)
{
    gl_monitor *m;
    int64_t param;
    if (!l_monitor_param_tap(L, 1, &m, &param)) return luaL_argerror(L, 1, "a monitor's parameter tap expected");
    double update = luaL_checknumber(L, 2), weight = luaL_checknumber(L, 3);
    gl_monitor_note_update(m, param, &(gl_update_norms){update * update, weight * weight});
    return 0;
}

/* recorder:record(step, loss, every) → nil when the step is not kept, else
 * the record's 1-based index, the count of new warnings and the loss. */
static int l_recorder_record(lua_State *L)
{
    gl_monitor *m = recorder_check(L);
    double step = luaL_checknumber(L, 2);
    lua_Integer every = luaL_checkinteger(L, 4);
    double loss, *want = NULL;
    if (!lua_isnoneornil(L, 3)) {
        gl_tensor *t = lua_type(L, 3) == LUA_TUSERDATA ? l_tensor_test(L, 3) : NULL;
        if (t) {
            if (gl_tensor_numel(t) != 1)
                return l_errorf(L, "record: bad argument #2 (loss must be a number or a one-element tensor, got a tensor of %lld elements)",
                                (long long)gl_tensor_numel(t));
            loss = gl_tensor_data(t)[0];
        } else if (lua_type(L, 3) == LUA_TNUMBER) {
            loss = lua_tonumber(L, 3);
        } else {
            return l_errorf(L, "record: bad argument #2 (loss must be a number or a one-element tensor, got %s)",
                            luaL_typename(L, 3));
        }
        want = &loss;
    }
    bool recorded;
    int64_t warnings;
    gl_error err;
    if (gl_monitor_record(m, step, (int64_t)every, want, &recorded, &warnings, &err)) return l_error_raise(L, &err);
    if (!recorded) return 0;
    lua_pushinteger(L, gl_monitor_record_count(m));
    lua_pushinteger(L, warnings);
    if (want) lua_pushnumber(L, loss);
    else lua_pushnil(L);
    return 3;
}

static int l_recorder_note_clip(lua_State *L)
{
    gl_monitor *m = recorder_check(L);
    gl_monitor_note_clip(m, luaL_checknumber(L, 2), luaL_checknumber(L, 3));
    return 0;
}

static int l_recorder_detach(lua_State *L)
{
    gl_monitor_detach(recorder_check(L));
    return 0;
}

static int l_recorder_count(lua_State *L)
{
    lua_pushinteger(L, gl_monitor_record_count(recorder_check(L)));
    return 1;
}

/* recorder:bytes() → the memory the recorder holds */
static int l_recorder_bytes(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)gl_monitor_bytes(recorder_check(L)));
    return 1;
}

static int l_recorder_version(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)gl_monitor_version(recorder_check(L)));
    return 1;
}

/* A 1-based record index at `arg`, checked against the count; 0-based back. */
static int64_t record_check(lua_State *L, gl_monitor *m, int arg)
{
    lua_Integer i = luaL_checkinteger(L, arg);
    if (i < 1 || i > gl_monitor_record_count(m))
        luaL_argerror(L, arg, lua_pushfstring(L, "record %I out of range 1..%I", i,
                                              (lua_Integer)gl_monitor_record_count(m)));
    return i - 1;
}

/* recorder:info(i) → step, loss|nil, clip_pre|nil, clip_post|nil */
static int l_recorder_info(lua_State *L)
{
    gl_monitor *m = recorder_check(L);
    gl_monitor_step_info info;
    gl_monitor_step_info_get(m, record_check(L, m, 2), &info);
    push_step(L, info.step);
    if (info.has_loss) lua_pushnumber(L, info.loss);
    else lua_pushnil(L);
    if (!info.has_clip) return 2;
    lua_pushnumber(L, info.clip_pre);
    lua_pushnumber(L, info.clip_post);
    return 4;
}

/* "param" or "module" at `arg` → true for module. */
static bool kind_check(lua_State *L, int arg)
{
    static const char *const kinds[] = {"param", "module", NULL};
    return luaL_checkoption(L, arg, NULL, kinds) == 1;
}

static bool value_of(const gl_monitor *m, bool module, int64_t record, int64_t index, int field, double *v)
{
    return module ? gl_monitor_module_value(m, record, index, (gl_monitor_module_field)field, v)
                  : gl_monitor_param_value(m, record, index, (gl_monitor_param_field)field, v);
}

/* recorder:entries(i, kind, names) → {[name] = {field = value, ...}} of record
 * i, for the parameters or modules present there; names[k] names slot k. */
static int l_recorder_entries(lua_State *L)
{
    gl_monitor *m = recorder_check(L);
    int64_t r = record_check(L, m, 2);
    bool module = kind_check(L, 3);
    luaL_checktype(L, 4, LUA_TTABLE);
    int64_t n = module ? gl_monitor_module_count(m) : gl_monitor_param_count(m);
    const char *const *fields = module ? module_fields : param_fields;
    lua_createtable(L, 0, (int)(n < 1 << 20 ? n : 1 << 20));
    for (int64_t k = 0; k < n; k++) {
        double v;
        if (!value_of(m, module, r, k, 0, &v)) continue;   /* the first field says whether it is present */
        lua_rawgeti(L, 4, k + 1);
        lua_createtable(L, 0, 5);
        for (int f = 0; fields[f]; f++) {
            if (!value_of(m, module, r, k, f, &v)) continue;
            lua_pushnumber(L, v);
            lua_setfield(L, -2, fields[f]);
        }
        lua_rawset(L, -3);
    }
    return 1;
}

static int field_check(lua_State *L, bool module, int arg)
{
    return luaL_checkoption(L, arg, NULL, module ? module_fields : param_fields);
}

static int64_t slot_check(lua_State *L, const gl_monitor *m, bool module, int arg)
{
    lua_Integer i = luaL_checkinteger(L, arg);
    int64_t n = module ? gl_monitor_module_count(m) : gl_monitor_param_count(m);
    if (i < 1 || i > n) luaL_argerror(L, arg, "no such parameter or module");
    return i - 1;
}

/* recorder:series(kind, k, field) → steps, values where present */
static int l_recorder_series(lua_State *L)
{
    gl_monitor *m = recorder_check(L);
    bool module = kind_check(L, 2);
    int64_t k = slot_check(L, m, module, 3);
    int field = field_check(L, module, 4);
    int64_t n = gl_monitor_record_count(m), count = 0;
    lua_createtable(L, (int)(n < 1 << 24 ? n : 1 << 24), 0);
    lua_createtable(L, (int)(n < 1 << 24 ? n : 1 << 24), 0);
    for (int64_t r = 0; r < n; r++) {
        double v;
        if (!value_of(m, module, r, k, field, &v)) continue;
        gl_monitor_step_info info;
        gl_monitor_step_info_get(m, r, &info);
        count++;
        push_step(L, info.step);
        lua_rawseti(L, -3, count);
        lua_pushnumber(L, v);
        lua_rawseti(L, -2, count);
    }
    return 2;
}

/* recorder:row(kind, k, field) → one value per record, NaN where absent */
static int l_recorder_row(lua_State *L)
{
    gl_monitor *m = recorder_check(L);
    bool module = kind_check(L, 2);
    int64_t k = slot_check(L, m, module, 3);
    int field = field_check(L, module, 4);
    int64_t n = gl_monitor_record_count(m);
    lua_createtable(L, (int)(n < 1 << 24 ? n : 1 << 24), 0);
    for (int64_t r = 0; r < n; r++) {
        double v;
        lua_pushnumber(L, value_of(m, module, r, k, field, &v) ? v : NAN);
        lua_rawseti(L, -2, r + 1);
    }
    return 1;
}

/* recorder:steps() → the step of every record */
static int l_recorder_steps(lua_State *L)
{
    gl_monitor *m = recorder_check(L);
    int64_t n = gl_monitor_record_count(m);
    lua_createtable(L, (int)(n < 1 << 24 ? n : 1 << 24), 0);
    for (int64_t r = 0; r < n; r++) {
        gl_monitor_step_info info;
        gl_monitor_step_info_get(m, r, &info);
        push_step(L, info.step);
        lua_rawseti(L, -2, r + 1);
    }
    return 1;
}

/* recorder:losses() → steps, losses of the records that have one */
static int l_recorder_losses(lua_State *L)
{
    gl_monitor *m = recorder_check(L);
    int64_t n = gl_monitor_record_count(m), count = 0;
    lua_newtable(L);
    lua_newtable(L);
    for (int64_t r = 0; r < n; r++) {
        gl_monitor_step_info info;
        gl_monitor_step_info_get(m, r, &info);
        if (!info.has_loss) continue;
        count++;
        push_step(L, info.step);
        lua_rawseti(L, -3, count);
        lua_pushnumber(L, info.loss);
        lua_rawseti(L, -2, count);
    }
    return 2;
}

/* recorder:clips() → records with a clip, of which clipped */
static int l_recorder_clips(lua_State *L)
{
    gl_monitor *m = recorder_check(L);
    int64_t n = gl_monitor_record_count(m), total = 0, clipped = 0;
    for (int64_t r = 0; r < n; r++) {
        gl_monitor_step_info info;
        gl_monitor_step_info_get(m, r, &info);
        total += info.has_clip;
        clipped += info.has_clip && info.clip_post < info.clip_pre;
    }
    lua_pushinteger(L, total);
    lua_pushinteger(L, clipped);
    return 2;
}

/* recorder:warnings(from) → the warnings from the 1-based index `from` on, as
 * {kind=, module=, index=, step=, value=, direction=} (index 1-based). */
static int l_recorder_warnings(lua_State *L)
{
    static const char *const kinds[] = {"vanishing", "exploding", "non-finite"};
    static const char *const directions[] = {NULL, "forward", "backward"};
    gl_monitor *m = recorder_check(L);
    lua_Integer from = luaL_optinteger(L, 2, 1);
    int64_t n = gl_monitor_warning_count(m);
    lua_newtable(L);
    int k = 0;
    for (int64_t i = from > 1 ? from - 1 : 0; i < n; i++) {
        gl_monitor_warning w;
        gl_monitor_warning_get(m, i, &w);
        lua_createtable(L, 0, 6);
        lua_pushstring(L, kinds[w.kind]);
        lua_setfield(L, -2, "kind");
        lua_pushboolean(L, w.module);
        lua_setfield(L, -2, "module");
        lua_pushinteger(L, w.index + 1);
        lua_setfield(L, -2, "index");
        push_step(L, w.step);
        lua_setfield(L, -2, "step");
        lua_pushnumber(L, w.value);
        lua_setfield(L, -2, "value");
        if (directions[w.direction]) {
            lua_pushstring(L, directions[w.direction]);
            lua_setfield(L, -2, "direction");
        }
        lua_rawseti(L, -2, ++k);
    }
    return 1;
}

static const luaL_Reg tensor_methods[] = {
    {"stats", l_stats},
    {"watch_grad", l_watch_grad},
    {"watched_grad", l_watched_grad},
    {NULL, NULL},
};

static const luaL_Reg recorder_methods[] = {
    {"add_param", l_recorder_add_param}, {"add_module", l_recorder_add_module},
    {"record", l_recorder_record},       {"note_clip", l_recorder_note_clip},
    {"detach", l_recorder_detach},       {"count", l_recorder_count},
    {"version", l_recorder_version},     {"info", l_recorder_info},
    {"entries", l_recorder_entries},     {"series", l_recorder_series},
    {"row", l_recorder_row},             {"steps", l_recorder_steps},
    {"clips", l_recorder_clips},         {"warnings", l_recorder_warnings},
    {"losses", l_recorder_losses},       {"bytes", l_recorder_bytes},
    {NULL, NULL},
};

static const luaL_Reg functions[] = {
    {"_monitor_recorder", l_recorder_new},
    {"_monitor_note_update", l_note_update},
    {NULL, NULL},
};

void l_monitor_register(lua_State *L)
{
    l_tensor_push_methods(L);
    luaL_setfuncs(L, tensor_methods, 0);
    lua_pop(L, 1);

    luaL_newmetatable(L, RECORDER_METATABLE);
    luaL_newlib(L, recorder_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_recorder_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);

    luaL_newmetatable(L, TAP_METATABLE);
    lua_pushcfunction(L, l_tap_call);
    lua_setfield(L, -2, "__call");
    lua_pushcfunction(L, l_tap_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &tap_key);

    luaL_setfuncs(L, functions, 0);
}
