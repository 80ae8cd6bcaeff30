/*
 * l_rnn.c — the recurrent kernels for Lua (engine/rnn.c): whole sequences and
 * single steps of Elman RNN, LSTM and GRU.  The modules nn.RNN, nn.LSTM and
 * nn.GRU (bindings/gradlab/nn_recurrent.lua) are built on these.
 *
 *   gl.rnn(x, h0, w_ih, w_hh [, b_ih, b_hh [, nonlinearity = "tanh"]]) -> y, h_n
 *   gl.lstm(x, h0, c0, w_ih, w_hh [, b_ih, b_hh])                         -> y, h_n, c_n
 *   gl.gru(x, h0, w_ih, w_hh [, b_ih, b_hh])                              -> y, h_n
 *   gl.rnn_cell(x, h, w_ih, w_hh [, b_ih, b_hh [, nonlinearity]])         -> h'
 *   gl.lstm_cell(x, h, c, w_ih, w_hh [, b_ih, b_hh])                      -> h', c'
 *   gl.gru_cell(x, h, w_ih, w_hh [, b_ih, b_hh])                          -> h'
 *
 * x is (T, B, in) for the sequence functions and (B, in) for the cells; h0,
 * c0, h, c are (B, hidden) or nil (zeros); biases may be nil.
 */
#include <string.h>

#include "bindings.h"

/* A tensor or nil at `index`; anything else is a "bad argument" error. */
static gl_tensor *optional_tensor(lua_State *L, int index)
{
    if (lua_isnoneornil(L, index)) return NULL;
    return l_tensor_check(L, index);
}

static gl_rnn_kind nonlinearity_check(lua_State *L, int index, const char *function)
{
    if (lua_isnoneornil(L, index)) return GL_RNN_TANH;
    const char *name = lua_tostring(L, index);
    if (name && strcmp(name, "tanh") == 0) return GL_RNN_TANH;
    if (name && strcmp(name, "relu") == 0) return GL_RNN_RELU;
    return (gl_rnn_kind)l_errorf(L, "%s: bad argument #%d (nonlinearity must be \"tanh\" or \"relu\", got %s)",
                                 function, index, name ? name : luaL_typename(L, index));
}

/* The arguments after x and the state(s): w_ih, w_hh, b_ih, b_hh from `first`. */
typedef struct weights {
    gl_tensor *w_ih, *w_hh, *b_ih, *b_hh;
} weights;

static weights weights_check(lua_State *L, int first)
{
    weights w;
    w.w_ih = l_tensor_check(L, first);
    w.w_hh = l_tensor_check(L, first + 1);
    w.b_ih = optional_tensor(L, first + 2);
    w.b_hh = optional_tensor(L, first + 3);
    return w;
}

/* Sequences ------------------------------------------------------------- */

static int sequence(lua_State *L, gl_rnn_kind kind, gl_tensor *x, gl_tensor *h0, gl_tensor *c0,
                    const weights *w)
{
    gl_error err;
    gl_tensor **y = l_tensor_push_slot(L), **h_n = l_tensor_push_slot(L);
    gl_tensor **c_n = kind == GL_RNN_LSTM ? l_tensor_push_slot(L) : NULL;
    if (gl_rnn_sequence(kind, x, h0, c0, w->w_ih, w->w_hh, w->b_ih, w->b_hh, y, h_n, c_n, &err))
        return l_error_raise(L, &err);
    return c_n ? 3 : 2;
}

static int l_rnn(lua_State *L)
{
    gl_tensor *x = l_tensor_check(L, 1), *h0 = optional_tensor(L, 2);
    weights w = weights_check(L, 3);
    gl_rnn_kind kind = nonlinearity_check(L, 7, "rnn");
    return sequence(L, kind, x, h0, NULL, &w);
}

static int l_lstm(lua_State *L)
{
    gl_tensor *x = l_tensor_check(L, 1), *h0 = optional_tensor(L, 2), *c0 = optional_tensor(L, 3);
    weights w = weights_check(L, 4);
    return sequence(L, GL_RNN_LSTM, x, h0, c0, &w);
}

static int l_gru(lua_State *L)
{
    gl_tensor *x = l_tensor_check(L, 1), *h0 = optional_tensor(L, 2);
    weights w = weights_check(L, 3);
    return sequence(L, GL_RNN_GRU, x, h0, NULL, &w);
}

/* Cells ------------------------------------------------------------------- */

static int cell(lua_State *L, gl_rnn_kind kind, gl_tensor *x, gl_tensor *h, gl_tensor *c, const weights *w)
{
    gl_error err;
    gl_tensor **h_out = l_tensor_push_slot(L);
    gl_tensor **c_out = kind == GL_RNN_LSTM ? l_tensor_push_slot(L) : NULL;
    if (gl_rnn_cell(kind, x, h, c, w->w_ih, w->w_hh, w->b_ih, w->b_hh, h_out, c_out, &err))
        return l_error_raise(L, &err);
    return c_out ? 2 : 1;
}

static int l_rnn_cell(lua_State *L)
{
    gl_tensor *x = l_tensor_check(L, 1), *h = optional_tensor(L, 2);
    weights w = weights_check(L, 3);
    gl_rnn_kind kind = nonlinearity_check(L, 7, "rnn_cell");
    return cell(L, kind, x, h, NULL, &w);
}

static int l_lstm_cell(lua_State *L)
{
    gl_tensor *x = l_tensor_check(L, 1), *h = optional_tensor(L, 2), *c = optional_tensor(L, 3);
    weights w = weights_check(L, 4);
    return cell(L, GL_RNN_LSTM, x, h, c, &w);
}

static int l_gru_cell(lua_State *L)
{
    gl_tensor *x = l_tensor_check(L, 1), *h = optional_tensor(L, 2);
    weights w = weights_check(L, 3);
    return cell(L, GL_RNN_GRU, x, h, NULL, &w);
}

static const luaL_Reg functions[] = {
    {"rnn", l_rnn}, {"lstm", l_lstm}, {"gru", l_gru},
    {"rnn_cell", l_rnn_cell}, {"lstm_cell", l_lstm_cell}, {"gru_cell", l_gru_cell},
    {NULL, NULL},
};

void l_rnn_register(lua_State *L)
{
    luaL_setfuncs(L, functions, 0);
}
