/* l_files.c — gl.save / gl.load (.npy) and gl.save_state / gl.load_state (.npz). */
#include <stdlib.h>
#include <string.h>

#include "bindings.h"

#define L_NAMED_BOX_METATABLE "gradlab.NamedTensors"

/* A path argument: a string without embedded NUL (the C side would silently
 * cut it there and write somewhere else). */
static const char *l_path_check(lua_State *L, int index)
{
    size_t len;
    /* A number would be converted to a file name ("5"): refuse it, as a
     * likely slip of the arguments' order. */
    if (lua_type(L, index) != LUA_TSTRING) luaL_typeerror(L, index, "string");
    const char *path = luaL_checklstring(L, index, &len);
    if (strlen(path) != len) luaL_argerror(L, index, "path contains a NUL byte");
    if (len == 0) luaL_argerror(L, index, "path is empty");
    return path;
}

/* gl.save(path, tensor) */
static int l_files_save(lua_State *L)
{
    const char *path = l_path_check(L, 1);
    gl_tensor *t = l_tensor_check(L, 2);
    gl_error err;
    if (gl_npy_save(path, t, &err)) return l_error_raise(L, &err);
    return 0;
}

/* gl.load(path) -> tensor */
static int l_files_load(lua_State *L)
{
    const char *path = l_path_check(L, 1);
    gl_error err;
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_npy_load(path, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static int l_named_compare(const void *a, const void *b)
{
    return strcmp(((const gl_named_tensor *)a)->name, ((const gl_named_tensor *)b)->name);
}

/* gl.save_state(path, {name = tensor, ...}); members are written sorted by
 * name so the same state always gives the same file. */
static int l_files_save_state(lua_State *L)
{
    const char *path = l_path_check(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);

    /* First pass: validate everything before touching the file. */
    int count = 0;
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            const char *key = luaL_tolstring(L, -2, NULL);
            return luaL_argerror(L, 2, lua_pushfstring(L, "key %s is a %s; names must be strings",
                                                       key, luaL_typename(L, -3)));
        }
        size_t len;
        const char *name = lua_tolstring(L, -2, &len);
        if (len == 0) return luaL_argerror(L, 2, "a name is the empty string");
        if (strlen(name) != len)
            return luaL_argerror(L, 2, lua_pushfstring(L, "name '%s' contains a NUL byte", name));
        if (!l_tensor_test(L, -1))
            return luaL_argerror(L, 2,
                                 lua_pushfstring(L, "value of '%s' is a %s, expected a tensor",
                                                 name, luaL_typename(L, -1)));
        count++;
        lua_pop(L, 1);
    }

    /* The array lives in a userdata, so an error below cannot leak it.  The
     * names point into the keys of table #2, which stays on the stack. */
    size_t bytes = sizeof(gl_named_tensor) * (size_t)(count ? count : 1);
    gl_named_tensor *entries = lua_newuserdatauv(L, bytes, 0);
    int i = 0;
    lua_pushnil(L);
    while (lua_next(L, 2) && i < count) {
        entries[i].name = (char *)lua_tostring(L, -2);
        entries[i].tensor = l_tensor_test(L, -1);
        i++;
        lua_pop(L, 1);
    }
    qsort(entries, (size_t)count, sizeof *entries, l_named_compare);

    gl_error err;
    if (gl_npz_save(path, count, entries, &err)) return l_error_raise(L, &err);
    return 0;
}

/* Owns what gl_npz_load returned until every tensor has moved to Lua. */
typedef struct l_named_box {
    gl_named_tensor *entries;
    int count;
} l_named_box;

static int l_named_box_gc(lua_State *L)
{
    l_named_box *box = luaL_checkudata(L, 1, L_NAMED_BOX_METATABLE);
    gl_named_tensors_free(box->entries, box->count);
    box->entries = NULL;
    box->count = 0;
    return 0;
}

/* gl.load_state(path) -> {name = tensor, ...} */
static int l_files_load_state(lua_State *L)
{
    const char *path = l_path_check(L, 1);
    /* Created before the tensors exist, as liolib creates its FILE* box. */
    l_named_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->entries = NULL;
    box->count = 0;
    luaL_setmetatable(L, L_NAMED_BOX_METATABLE);

    gl_error err;
    if (gl_npz_load(path, &box->entries, &box->count, &err)) return l_error_raise(L, &err);
    lua_createtable(L, 0, box->count);
    for (int i = 0; i < box->count; i++) {
        l_tensor_push(L, box->entries[i].tensor);
        box->entries[i].tensor = NULL;   /* now owned by the userdata */
        lua_setfield(L, -2, box->entries[i].name);
    }
    gl_named_tensors_free(box->entries, box->count);
    box->entries = NULL;
    box->count = 0;
    return 1;
}

/* gl._csv_load(path, header) -> (rows, columns) tensor; gl.data.csv wraps it. */
static int l_files_csv_load(lua_State *L)
{
    const char *path = l_path_check(L, 1);
    bool header = lua_isnone(L, 2) || lua_toboolean(L, 2);
    gl_error err;
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_csv_load(path, header, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

void l_files_register(lua_State *L)
{
    static const luaL_Reg functions[] = {
        {"_csv_load", l_files_csv_load},
        {"save", l_files_save},
        {"load", l_files_load},
        {"save_state", l_files_save_state},
        {"load_state", l_files_load_state},
        {NULL, NULL},
    };
    luaL_setfuncs(L, functions, 0);
    if (luaL_newmetatable(L, L_NAMED_BOX_METATABLE)) {
        lua_pushcfunction(L, l_named_box_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
}
