/* l_core.c — luaopen_gradlab_core: the C half of `require "gradlab"`. */
#include <time.h>
#include <unistd.h>

#include "bindings.h"

/* gl.clock(): seconds on a monotonic wall clock, for timing experiments
 * (os.clock counts CPU time of all threads, which misleads with BLAS threads). */
static int l_clock(lua_State *L)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    lua_pushnumber(L, (lua_Number)now.tv_sec + (lua_Number)now.tv_nsec * 1e-9);
    return 1;
}

/* gl.memory() → bytes of tensor storage alive in the engine. */
static int l_memory(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)gl_live_bytes());
    return 1;
}

/* gl.release_memory() → bytes returned: frees the engine's cache of freed buffers. */
static int l_release_memory(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)gl_cached_bytes());
    gl_release_cached_memory();
    return 1;
}

/* gl.blas() → {core = "SkylakeX", chosen_by = "openblas" | "environment" | "gradlab",
 * threads = n}: which OpenBLAS kernels run the matrix products, and why. */
static int l_blas(lua_State *L)
{
    static const char *const origin[] = {
        [GL_BLAS_KERNELS_OPENBLAS] = "openblas",
        [GL_BLAS_KERNELS_ENVIRONMENT] = "environment",
        [GL_BLAS_KERNELS_GRADLAB] = "gradlab",
    };
    lua_createtable(L, 0, 3);
    lua_pushstring(L, gl_blas_core_name());
    lua_setfield(L, -2, "core");
    lua_pushstring(L, origin[gl_blas_kernels_chosen_by()]);
    lua_setfield(L, -2, "chosen_by");
    lua_pushinteger(L, gl_get_num_threads());
    lua_setfield(L, -2, "threads");
    return 1;
}

/* gl._isatty(fd) → whether file descriptor fd (2 = stderr) is a terminal. */
static int l_isatty(lua_State *L)
{
    lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
    return 1;
}

int luaopen_gradlab_core(lua_State *L)
{
    lua_newtable(L);
    l_tensor_register(L);
    l_tensor_math_register(L);
    l_autograd_register(L);
    l_nn_register(L);
    l_norm_register(L);
    l_conv_register(L);
    l_rnn_register(L);
    l_attention_register(L);
    l_graph_register(L);
    l_optim_register(L);
    l_monitor_register(L);
    l_files_register(L);
    l_plot_register(L);
    lua_pushcfunction(L, l_clock);
    lua_setfield(L, -2, "clock");
    lua_pushcfunction(L, l_memory);
    lua_setfield(L, -2, "memory");
    lua_pushcfunction(L, l_isatty);
    lua_setfield(L, -2, "_isatty");
    lua_pushcfunction(L, l_blas);
    lua_setfield(L, -2, "blas");
    lua_pushcfunction(L, l_release_memory);
    lua_setfield(L, -2, "release_memory");
    return 1;
}
