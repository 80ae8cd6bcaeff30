/* fuzz_monitor_csv.c — libFuzzer target for `gradlab plot run.csv`: the
 * monitor CSV reader gl.monitor_from_csv (Lua, bindings/gradlab/monitor.lua)
 * and the figures drawn from what it read (Lua + the C plots/ code).
 *
 * The reader is Lua, so this target embeds Lua 5.4 with the gradlab core
 * linked in (as the gradlab program does) and the Lua modules of the fuzz
 * build.  Each input is written to a temp file and handed to the same calls
 * `gradlab plot` makes.  Lua errors are expected for bad files, but they must
 * be the reader's own, naming it ("monitor_from_csv: ..." or "plot: ..."):
 * any other error (e.g. "attempt to index a nil value", "table index is NaN")
 * is a bug in the reader and aborts, as does any memory error in the C code.
 *
 * The Lua directory is GRADLAB_FUZZ_LUA from the environment, else the
 * GRADLAB_LUA_DIR the Makefile compiles in. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "bindings.h"

#ifndef GRADLAB_LUA_DIR
#define GRADLAB_LUA_DIR "build-fuzz/lua"
#endif

static lua_State *L;
static int driver_ref = LUA_NOREF;
static char csv_path[256], png_path[256];

/* The calls `gradlab plot` makes (cli.lua), at a small figure size so that
 * rendering does not dominate.  Returns nil, or a string describing a bug. */
static const char DRIVER[] =
    "local gl, csv, png = ...\n"
    "local function own(message, name)\n"
    "  message = tostring(message)\n"
    "  return message:find('^' .. name .. ': ') or message:find('^[^\\n]-:%d+: ' .. name .. ': ')\n"
    "end\n"
    "return function(draw)\n"
    "  local ok, mon = pcall(gl.monitor_from_csv, csv)\n"
    "  if not ok then\n"
    "    if own(mon, 'monitor_from_csv') then return nil end\n"
    "    return 'monitor_from_csv raised a foreign error: ' .. tostring(mon)\n"
    "  end\n"
    "  if #mon.records == 0 then return nil end\n"
    "  local ok2, e = pcall(function() return tostring(mon) .. tostring(mon:summary()) end)\n"
    "  if not ok2 then return 'summary failed: ' .. tostring(e) end\n"
    "  for _, p in ipairs(mon.params) do\n"
    "    local ok3, e3 = pcall(mon.series, mon, p[1], 'grad_norm')\n"
    "    if not ok3 then return 'series failed: ' .. tostring(e3) end\n"
    "  end\n"
    "  if not draw then return nil end\n"
    "  local ok4, e4 = pcall(mon.plot, mon, png, { kind = 'dashboard', width = 240, height = 180 })\n"
    "  if not ok4 and not own(e4, 'plot') then return 'plot raised a foreign error: ' .. tostring(e4) end\n"
    "  return nil\n"
    "end\n";

static void remove_temp_files(void)
{
    unlink(csv_path);
    unlink(png_path);
}

static void die(const char *what)
{
    fprintf(stderr, "fuzz_monitor_csv: %s: %s\n", what, L ? lua_tostring(L, -1) : "");
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *dir = getenv("GRADLAB_FUZZ_LUA");
    if (!dir) dir = GRADLAB_LUA_DIR;
    const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(csv_path, sizeof csv_path, "%s/gradlab-fuzz-%d.csv", tmp, (int)getpid());
    snprintf(png_path, sizeof png_path, "%s/gradlab-fuzz-%d.png", tmp, (int)getpid());

    atexit(remove_temp_files);

    L = luaL_newstate();
    if (!L) die("luaL_newstate");
    luaL_openlibs(L);
    /* package.path = dir/?.lua;dir/?/init.lua, and the core from this binary. */
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", dir, dir);
    lua_setfield(L, -2, "path");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_gradlab_core);
    lua_setfield(L, -2, "gradlab.core");
    lua_pop(L, 2);
    lua_getglobal(L, "require");
    lua_pushstring(L, "gradlab");
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) die("require 'gradlab'");
    if (luaL_loadbuffer(L, DRIVER, sizeof DRIVER - 1, "=driver") != LUA_OK) die("driver");
    lua_insert(L, -2);
    lua_pushstring(L, csv_path);
    lua_pushstring(L, png_path);
    if (lua_pcall(L, 3, 1, 0) != LUA_OK) die("driver setup");
    driver_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(csv_path, "wb");
    if (!f) die("cannot write the temp CSV");
    if (size && fwrite(data, 1, size, f) != size) die("short write");
    fclose(f);
    lua_rawgeti(L, LUA_REGISTRYINDEX, driver_ref);
    /* Drawing costs ~50x parsing: one input in four (chosen by its bytes, so
     * a reproducer replays the same way) goes on to the figure. */
    unsigned sum = 0;
    for (size_t i = 0; i < size; i++) sum += data[i];
    lua_pushboolean(L, sum % 4 == 0);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) die("driver raised");
    if (!lua_isnil(L, -1)) die("reader bug");
    lua_pop(L, 1);
    return 0;
}
