/* l_graph.c — GraphConv for Lua (to be written). */
#include "bindings.h"

void l_graph_register(lua_State *L)
{
    (void)L;
}
