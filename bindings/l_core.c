/* l_core.c — luaopen_gradlab_core: the C half of `require "gradlab"`. */
#include "bindings.h"

int luaopen_gradlab_core(lua_State *L)
{
    lua_newtable(L);
    l_tensor_register(L);
    l_tensor_math_register(L);
    l_files_register(L);
    return 1;
}
