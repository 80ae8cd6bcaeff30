/*
 * graph.c — neighbourhood aggregation for graph layers.
 *
 *   x (N, F)  ->  y (N, F),   y_i = sum_j c_ij x_j
 *   graph: dense adjacency A (N, N) (row i = node i's in-neighbours, weighted), or
 *          an edge list (E, 2) of {source, target} rows with weights w (E) or 1
 *   Ã = A + I with self_loops;  d_i = sum_j Ã_ij (in-degree, weights summed)
 *   c_ij:  sum        Ã_ij
 *          mean       Ã_ij / d_i                      (0 when d_i == 0)
 *          symmetric  Ã_ij / sqrt(d_i d_j)  (GCN)     (0 when d_i or d_j <= 0)
 *   backward: dx_j = sum_i c_ij g_i
 *
 * Dense graphs build C (N, N) once and use sgemm both ways.  Edge lists keep
 * one coefficient per edge plus one per node for the self loop, and run a
 * scatter-add over the edges (forward by target, backward by source): O(E F)
 * with no N x N matrix, so high-degree hubs and large sparse graphs are cheap.
 * Degree sums accumulate in double.  A node with no neighbours gets zeros,
 * never 0/0.
 */
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd.h"

/* The factor a degree contributes: 1/d for mean, 1/sqrt(d) for symmetric, and
 * 0 where that is undefined (no neighbours; negative weights for sqrt). */
static double degree_scale(gl_graph_norm norm, double d)
{
    if (norm == GL_GRAPH_MEAN) return d != 0.0 ? 1.0 / d : 0.0;
    return d > 0.0 ? 1.0 / sqrt(d) : 0.0;
}

/* ------------------------------------------------------------------ dense */

/* Turns c (N, N), a copy of A, into the coefficients in place. */
static gl_status dense_coefficients(float *c, int64_t N, bool self_loops, gl_graph_norm norm, gl_error *err)
{
    if (self_loops)
        for (int64_t i = 0; i < N; i++) c[i * N + i] += 1.0f;
    if (norm == GL_GRAPH_SUM) return GL_OK;
    double *scale = malloc(sizeof *scale * (size_t)(N > 0 ? N : 1));
    if (!scale) return gl_error_set(err, GL_ENOMEM, 0, "graph_aggregate: out of memory for %lld degrees", (long long)N);
    for (int64_t i = 0; i < N; i++) {
        double d = 0.0;
        for (int64_t j = 0; j < N; j++) d += c[i * N + j];
        scale[i] = degree_scale(norm, d);
    }
    for (int64_t i = 0; i < N; i++) {
        float *row = c + i * N;
        if (norm == GL_GRAPH_MEAN)
            for (int64_t j = 0; j < N; j++) row[j] = (float)(row[j] * scale[i]);
        else
            for (int64_t j = 0; j < N; j++) row[j] = (float)(row[j] * scale[i] * scale[j]);
    }
    free(scale);
    return GL_OK;
}

/* y (N, F) = op(C) x with C (N, N): the forward (C) and the backward (C^T). */
static void dense_apply(const float *c, bool transpose, const float *x, int64_t N, int64_t F, float *y)
{
    if (N == 0 || F == 0) return;
    cblas_sgemm(CblasRowMajor, transpose ? CblasTrans : CblasNoTrans, CblasNoTrans, (int)N, (int)F, (int)N, 1.0f,
                c, (int)N, x, (int)F, 0.0f, y, (int)F);
}

/* -------------------------------------------------------------- edge list */

/* coefficients: E per-edge values, then N self-loop values.  edges holds
 * 0-based {source, target} pairs. */
static gl_status edge_coefficients(const int64_t *edges, const float *weight, int64_t E, int64_t N,
                                   bool self_loops, gl_graph_norm norm, float *coefficients, gl_error *err)
{
    float *self = coefficients + E;
    for (int64_t e = 0; e < E; e++) coefficients[e] = weight ? weight[e] : 1.0f;
    for (int64_t i = 0; i < N; i++) self[i] = self_loops ? 1.0f : 0.0f;
    if (norm == GL_GRAPH_SUM) return GL_OK;
    double *scale = calloc((size_t)(N > 0 ? N : 1), sizeof *scale);
    if (!scale) return gl_error_set(err, GL_ENOMEM, 0, "graph_aggregate: out of memory for %lld degrees", (long long)N);
    for (int64_t e = 0; e < E; e++) scale[edges[2 * e + 1]] += coefficients[e];
    for (int64_t i = 0; i < N; i++) scale[i] = degree_scale(norm, scale[i] + self[i]);
    for (int64_t e = 0; e < E; e++) {
        int64_t s = edges[2 * e], t = edges[2 * e + 1];
        double factor = norm == GL_GRAPH_MEAN ? scale[t] : scale[t] * scale[s];
        coefficients[e] = (float)(coefficients[e] * factor);
    }
    for (int64_t i = 0; i < N; i++)
        self[i] = (float)(self[i] * (norm == GL_GRAPH_MEAN ? scale[i] : scale[i] * scale[i]));
    free(scale);
    return GL_OK;
}

/* Forward (reverse = false): y_t += c_e x_s over edges, y_i += self_i x_i.
 * Backward (reverse = true): the same with source and target swapped. */
static void edge_apply(const float *edge_values, int64_t E, int64_t N, int64_t F, int index_base,
                       const float *coefficients, bool reverse, const float *restrict x, float *restrict y)
{
    const float *self = coefficients + E;
    for (int64_t i = 0; i < N; i++) {
        float c = self[i];
        for (int64_t f = 0; f < F; f++) y[i * F + f] = c * x[i * F + f];
    }
    for (int64_t e = 0; e < E; e++) {
        int64_t s = (int64_t)edge_values[2 * e] - index_base, t = (int64_t)edge_values[2 * e + 1] - index_base;
        if (reverse) {
            int64_t swap = s;
            s = t, t = swap;
        }
        float c = coefficients[e];
        const float *from = x + s * F;
        float *to = y + t * F;
        for (int64_t f = 0; f < F; f++) to[f] += c * from[f];
    }
}

/* ---------------------------------------------------------------- backward */

/* Saved: dense: C (N, N).  Edge list: edges (E, 2) as floats, coefficients (E + N).
 * params: edge_list, index_base. */
static gl_status graph_node_backward(gl_node *node, gl_tensor *g, gl_tensor **grads, gl_error *err)
{
    if (!gl_node_input_needs_grad(node, 0)) return GL_OK;
    gl_tensor *dense_g = NULL;
    gl_status status = gl_tensor_contiguous_untracked(g, &dense_g, err);
    if (!status) status = gl_tensor_empty(2, node->inputs[0].shape, &grads[0], err);
    if (!status) {
        int64_t N = node->inputs[0].shape[0], F = node->inputs[0].shape[1];
        if (node->params[0]) {
            const gl_tensor *edges = node->saved[0];
            edge_apply(gl_tensor_data(edges), edges->shape[0], N, F, (int)node->params[1],
                       gl_tensor_data(node->saved[1]), true, gl_tensor_data(dense_g), gl_tensor_data(grads[0]));
        } else {
            dense_apply(gl_tensor_data(node->saved[0]), true, gl_tensor_data(dense_g), N, F, gl_tensor_data(grads[0]));
        }
    }
    gl_tensor_release(dense_g);
    return status;
}

/* ------------------------------------------------------------------- entry */

/* Reads and checks the edge list: 0-based pairs into *pairs (malloc'ed). */
static gl_status edge_pairs(const gl_tensor *edges_dense, const gl_tensor *edges, int64_t N, int index_base,
                            int64_t **pairs, gl_error *err)
{
    char es[160];
    int64_t E = edges->shape[0];
    *pairs = malloc(sizeof **pairs * (size_t)(2 * E > 0 ? 2 * E : 1));
    if (!*pairs) return gl_error_set(err, GL_ENOMEM, 0, "graph_aggregate: out of memory for %lld edges", (long long)E);
    const float *v = gl_tensor_data(edges_dense);
    for (int64_t i = 0; i < 2 * E; i++) {
        float value = v[i];
        /* Compared as floats first: NaN and huge values fail here, never overflow. */
        if (!(value >= (float)index_base && value < (float)N + (float)index_base) || value != floorf(value)) {
            int64_t e = i / 2;
            free(*pairs);
            *pairs = NULL;
            return gl_error_set(err, GL_EINDEX, 2,
                                "graph_aggregate: edge %lld = {%g, %g} has %s node %g %s %d..%lld (x has %lld nodes; edge list shape %s)",
                                (long long)(e + index_base), (double)v[2 * e], (double)v[2 * e + 1],
                                i % 2 ? "target" : "source", (double)value,
                                value == floorf(value) ? "out of range" : "that is not an integer in", index_base,
                                (long long)(N - 1 + index_base), (long long)N, GL_SHAPE_STR(edges, es));
        }
        (*pairs)[i] = (int64_t)value - index_base;
    }
    return GL_OK;
}

static gl_status check_graph(const gl_tensor *x, const gl_graph *graph, gl_graph_norm norm, gl_error *err)
{
    char xs[160], as[160], ws[160];
    const char *op = "graph_aggregate";
    if (norm >= GL_GRAPH_NORM_COUNT) return gl_error_set(err, GL_EARG, 3, "%s: unknown normalization", op);
    if (x->ndim != 2)
        return gl_error_set(err, GL_ESHAPE, 1, "%s: node features must be 2-d (nodes, features), got shape %s", op,
                            GL_SHAPE_STR(x, xs));
    const gl_tensor *a = graph->adjacency, *w = graph->edge_weight;
    int64_t N = x->shape[0];
    if ((a && gl_tensor_tracks_grad(a)) || (w && gl_tensor_tracks_grad(w)))
        return gl_error_set(err, GL_EARG, 2,
                            "%s: the %s takes part in autograd, but gradients w.r.t. the graph are not supported (pass it detached)",
                            op, a && gl_tensor_tracks_grad(a) ? "adjacency" : "edge weight");
    if (!graph->edge_list) {
        if (a->ndim != 2 || a->shape[0] != N || a->shape[1] != N)
            return gl_error_set(err, GL_ESHAPE, 2,
                                "%s: adjacency of shape %s does not match x with %lld nodes (x shape %s): a dense adjacency is (N, N), an edge list (E, 2)",
                                op, GL_SHAPE_STR(a, as), (long long)N, GL_SHAPE_STR(x, xs));
        if (w)
            return gl_error_set(err, GL_EARG, 2,
                                "%s: edge weights go with an edge list; a dense adjacency holds its weights itself", op);
        if (N > INT_MAX || x->shape[1] > INT_MAX)
            return gl_error_set(err, GL_ESHAPE, 1, "%s: sizes exceed BLAS's int range (x shape %s)", op, GL_SHAPE_STR(x, xs));
        return GL_OK;
    }
    if (a->ndim != 2 || a->shape[1] != 2)
        return gl_error_set(err, GL_ESHAPE, 2, "%s: an edge list must be (E, 2) rows of {source, target}, got shape %s",
                            op, GL_SHAPE_STR(a, as));
    if (w && (w->ndim != 1 || w->shape[0] != a->shape[0]))
        return gl_error_set(err, GL_ESHAPE, 2, "%s: edge weights of shape %s do not match %lld edges (edge list shape %s)",
                            op, GL_SHAPE_STR(w, ws), (long long)a->shape[0], GL_SHAPE_STR(a, as));
    return GL_OK;
}

gl_status gl_graph_aggregate(const gl_tensor *x, const gl_graph *graph, gl_graph_norm norm,
                             gl_tensor **out, gl_error *err)
{
    *out = NULL;
    gl_status status = check_graph(x, graph, norm, err);
    if (status) return status;
    int64_t N = x->shape[0], F = x->shape[1];
    gl_tensor *dense_x = NULL, *dense_a = NULL, *dense_w = NULL, *coefficients = NULL;
    int64_t *pairs = NULL;
    status = gl_tensor_contiguous_untracked(x, &dense_x, err);
    if (!status) status = gl_tensor_empty(2, x->shape, out, err);
    if (!graph->edge_list) {
        /* The coefficient matrix is a fresh copy unless A serves as it is. */
        bool as_is = norm == GL_GRAPH_SUM && !graph->self_loops;
        if (!status) status = as_is ? gl_tensor_contiguous_untracked(graph->adjacency, &coefficients, err)
                                    : gl_tensor_clone_untracked(graph->adjacency, &coefficients, err);
        if (!status && !as_is)
            status = dense_coefficients(gl_tensor_data(coefficients), N, graph->self_loops, norm, err);
        if (!status) dense_apply(gl_tensor_data(coefficients), false, gl_tensor_data(dense_x), N, F, gl_tensor_data(*out));
    } else {
        int64_t E = graph->adjacency->shape[0];
        int64_t shape[1] = {E + N};
        if (!status) status = gl_tensor_contiguous_untracked(graph->adjacency, &dense_a, err);
        if (!status && graph->edge_weight) status = gl_tensor_contiguous_untracked(graph->edge_weight, &dense_w, err);
        if (!status) status = edge_pairs(dense_a, graph->adjacency, N, graph->index_base, &pairs, err);
        if (!status) status = gl_tensor_empty(1, shape, &coefficients, err);
        if (!status)
            status = edge_coefficients(pairs, dense_w ? gl_tensor_data(dense_w) : NULL, E, N, graph->self_loops, norm,
                                       gl_tensor_data(coefficients), err);
        if (!status)
            edge_apply(gl_tensor_data(dense_a), E, N, F, graph->index_base, gl_tensor_data(coefficients), false,
                       gl_tensor_data(dense_x), gl_tensor_data(*out));
    }
    if (!status) {
        const gl_tensor *inputs[1] = {x};
        gl_node *node = NULL;
        status = gl_op_finish("graph_aggregate", *out, 1, inputs, graph_node_backward, &node, err);
        if (!status && node) {
            node->params[0] = graph->edge_list;
            node->params[1] = graph->index_base;
            if (graph->edge_list) status = gl_node_save(node, dense_a, err);
            if (!status) status = gl_node_save(node, coefficients, err);
        }
    }
    free(pairs);
    gl_tensor_release(dense_x);
    gl_tensor_release(dense_a);
    gl_tensor_release(dense_w);
    gl_tensor_release(coefficients);
    if (status) {
        gl_tensor_release(*out);
        *out = NULL;
    }
    return status;
}
