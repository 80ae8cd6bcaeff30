/* l_attention.c — Embedding, attention for Lua (to be written). */
#include "bindings.h"

void l_attention_register(lua_State *L)
{
    (void)L;
}
