/* l_rnn.c — RNN, LSTM, GRU for Lua (to be written). */
#include "bindings.h"

void l_rnn_register(lua_State *L)
{
    (void)L;
}
