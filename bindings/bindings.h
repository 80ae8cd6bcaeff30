/*
 * bindings.h — shared helpers of the Lua bindings (the only C that includes lua.h).
 *
 * Each bindings/l_<concept>.c file exports one `l_<concept>_register(L)` that adds its
 * functions to the module table at the top of the stack; l_core.c calls them all from
 * luaopen_gradlab_core.
 */
#ifndef GRADLAB_BINDINGS_H
#define GRADLAB_BINDINGS_H

#include <lauxlib.h>
#include <lua.h>

#include "gradlab.h"

#define L_TENSOR_METATABLE "gradlab.Tensor"

/* Returns the tensor at `index` (borrowed) or raises "bad argument #index to 'fn'". */
gl_tensor *l_tensor_check(lua_State *L, int index);
/* Returns the tensor at `index` or NULL when it is not a tensor. */
gl_tensor *l_tensor_test(lua_State *L, int index);
/* Pushes a userdata that takes over the caller's reference to `t`. */
void l_tensor_push(lua_State *L, gl_tensor *t);
/* Pushes an empty tensor userdata and returns its slot: pass the slot as an
 * engine call's `out`, so a failure or a Lua memory error never leaks. */
gl_tensor **l_tensor_push_slot(lua_State *L);
/* Converts a 1-based (or negative, from the end) Lua dimension to 0-based;
 * raises "bad argument" for 0 or a non-integer. */
int l_dim_check(lua_State *L, int index);
/* Pushes the methods table of tensors (the metatable's __index). */
void l_tensor_push_methods(lua_State *L);
/* luaL_error with the C library's printf (so %lld, %g work); never returns. */
int l_errorf(lua_State *L, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* Raises a Lua error carrying err->message (which names the op already). */
int l_error_raise(lua_State *L, const gl_error *err);
/* Reads a shape given as a table {d1, d2, ...} or as integer arguments from `index` on. */
int l_shape_check(lua_State *L, int index, const char *function, int64_t *shape);

/* The monitor recorder and parameter index of the parameter tap at `index`
 * (l_monitor.c), for the optimizers; false when it is not one. */
bool l_monitor_param_tap(lua_State *L, int index, gl_monitor **monitor, int64_t *param);
/* Hands the tensor at `output` (anything else is ignored) to every module tap
 * in the table at `taps` (a non-table is ignored). */
void l_monitor_observe_taps(lua_State *L, int taps, int output);

/* Registration of each binding file's functions into the table at the stack top. */
void l_tensor_register(lua_State *L);        /* first: creates the metatable */
void l_tensor_math_register(lua_State *L);
void l_autograd_register(lua_State *L);
void l_nn_register(lua_State *L);
void l_norm_register(lua_State *L);
void l_conv_register(lua_State *L);
void l_rnn_register(lua_State *L);
void l_attention_register(lua_State *L);
void l_graph_register(lua_State *L);          /* gl.batch_norm, layer_norm, group_norm, rms_norm */
void l_optim_register(lua_State *L);
void l_monitor_register(lua_State *L);
void l_files_register(lua_State *L);
void l_plot_register(lua_State *L);          /* gl.plot: figures as PNG */

int luaopen_gradlab_core(lua_State *L);

#endif
