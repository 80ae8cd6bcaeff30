/* l_conv.c — Conv2d, pooling for Lua (to be written). */
#include "bindings.h"

void l_conv_register(lua_State *L)
{
    (void)L;
}
