/*
 * l_graph.c — neighbourhood aggregation for Lua (engine/graph.c).
 *
 *   gl.graph_aggregate(x, graph [, {norm = "sum" | "mean" | "symmetric", self_loops = false,
 *                                   edge_weight = (E) tensor}])  -> (N, F)
 *
 * x is (N, F).  graph is one of
 *   - a dense adjacency (N, N): y = A x, row i lists node i's in-neighbours (weights allowed);
 *   - an edge list (E, 2) of 1-based {source, target} rows (messages flow source -> target,
 *     as PyTorch Geometric's edge_index; list both directions for an undirected graph);
 *   - a table {edges = (E, 2) [, weight = (E)]}, an edge list said explicitly.
 * A bare (2, 2) tensor with N = 2 nodes counts as dense; say {edges = t} for an edge list.
 */
#include <string.h>

#include "bindings.h"

static const char *const norm_names[] = {"sum", "mean", "symmetric", NULL};

/* Fills graph->adjacency / edge_weight / edge_list from argument 2 (tensors stay on the stack). */
static void graph_check(lua_State *L, const gl_tensor *x, gl_graph *graph)
{
    gl_tensor *a = l_tensor_test(L, 2);
    if (a) {
        graph->adjacency = a;
        /* (N, N) with N = x's node count is dense; any other (E, 2) an edge list. */
        int64_t N = x->ndim >= 1 ? x->shape[0] : -1;
        bool square = a->ndim == 2 && a->shape[0] == N && a->shape[1] == N;
        graph->edge_list = !square && a->ndim == 2 && a->shape[1] == 2;
        return;
    }
    if (!lua_istable(L, 2))
        l_errorf(L, "graph_aggregate: bad argument #2 (adjacency (N, N), edge list (E, 2) or {edges = , weight = } expected, got %s)",
                 luaL_typename(L, 2));
    lua_getfield(L, 2, "edges");
    graph->adjacency = l_tensor_test(L, -1);
    if (!graph->adjacency)
        l_errorf(L, "graph_aggregate: bad argument #2 (the graph table needs edges = an (E, 2) tensor, got %s)",
                 luaL_typename(L, -1));
    graph->edge_list = true;
    lua_getfield(L, 2, "weight");
    if (!lua_isnil(L, -1)) {
        graph->edge_weight = l_tensor_test(L, -1);
        if (!graph->edge_weight)
            l_errorf(L, "graph_aggregate: bad argument #2 (weight must be an (E) tensor, got %s)", luaL_typename(L, -1));
    }
}

/* gl.graph_aggregate(x, graph [, options]) */
static int l_graph_aggregate(lua_State *L)
{
    gl_error err;
    gl_tensor *x = l_tensor_check(L, 1);
    gl_graph graph = {.index_base = 1};
    lua_settop(L, 3);   /* graph_check pushes the table's tensors above the arguments */
    gl_graph_norm norm = GL_GRAPH_SUM;
    graph_check(L, x, &graph);
    if (!lua_isnoneornil(L, 3)) {
        if (!lua_istable(L, 3))
            return l_errorf(L, "graph_aggregate: bad argument #3 (options table expected, got %s)", luaL_typename(L, 3));
        lua_pushnil(L);
        while (lua_next(L, 3)) {
            lua_pop(L, 1);
            const char *key = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
            if (!key || (strcmp(key, "norm") && strcmp(key, "self_loops") && strcmp(key, "edge_weight")))
                l_errorf(L, "graph_aggregate: unknown option '%s'", key ? key : luaL_typename(L, -1));
        }
        lua_getfield(L, 3, "norm");
        if (!lua_isnil(L, -1)) {
            const char *name = lua_tostring(L, -1);
            int found = -1;
            for (int i = 0; name && norm_names[i]; i++)
                if (strcmp(name, norm_names[i]) == 0) found = i;
            if (found < 0)
                return l_errorf(L, "graph_aggregate: option 'norm' must be \"sum\", \"mean\" or \"symmetric\", got %s",
                                luaL_tolstring(L, -1, NULL));
            norm = (gl_graph_norm)found;
        }
        lua_getfield(L, 3, "self_loops");
        if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
            return l_errorf(L, "graph_aggregate: option 'self_loops' must be a boolean, got %s", luaL_typename(L, -1));
        graph.self_loops = lua_toboolean(L, -1);
        lua_getfield(L, 3, "edge_weight");
        if (!lua_isnil(L, -1)) {
            if (graph.edge_weight)
                return l_errorf(L, "graph_aggregate: edge weights given twice (in the graph table and as option 'edge_weight')");
            graph.edge_weight = l_tensor_test(L, -1);
            if (!graph.edge_weight)
                return l_errorf(L, "graph_aggregate: option 'edge_weight' must be a tensor, got %s", luaL_typename(L, -1));
            /* Weights say the graph is an edge list, whatever its shape suggested. */
            if (graph.adjacency->ndim == 2 && graph.adjacency->shape[1] == 2) graph.edge_list = true;
        }
    }
    gl_tensor **slot = l_tensor_push_slot(L);
    if (gl_graph_aggregate(x, &graph, norm, slot, &err)) return l_error_raise(L, &err);
    return 1;
}

static const luaL_Reg functions[] = {
    {"graph_aggregate", l_graph_aggregate},
    {NULL, NULL},
};

void l_graph_register(lua_State *L)
{
    luaL_setfuncs(L, functions, 0);
}
