/*
 * ops_reduce.c — sum, mean, max, min over all elements or one dimension, and
 * the L2 norm.  Sums accumulate in double so long reductions stay accurate
 * and independent of blocking.
 */
#include <math.h>
#include <stdlib.h>

#include "autograd.h"

static const char *const reduce_names[] = {"sum", "mean", "max", "min"};

/* Sum and mean spread the gradient evenly; max and min give it to the
 * extreme elements, shared equally among ties (as PyTorch does).
 * params[0] = op; saved (max/min): x, out. */
static gl_status reduce_all_backward(gl_node *node, gl_tensor *g, gl_tensor **grads, gl_error *err)
{
    const gl_node_input *in = &node->inputs[0];
    float gv = gl_tensor_data(g)[0];
    int64_t n = 1;
    for (int d = 0; d < in->ndim; d++) n *= in->shape[d];
    gl_reduce_op op = (gl_reduce_op)node->params[0];
    if (op == GL_REDUCE_SUM) return gl_tensor_full(in->ndim, in->shape, gv, &grads[0], err);
    if (op == GL_REDUCE_MEAN) return gl_tensor_full(in->ndim, in->shape, gv / (float)n, &grads[0], err);
    gl_tensor *mask = NULL;
    gl_status status = gl_tensor_binary(GL_OP_EQ, node->saved[0], node->saved[1], &mask, err);
    if (status) return status;
    float *m = gl_tensor_data(mask);
    int64_t ties = 0;
    for (int64_t i = 0; i < n; i++) ties += m[i] != 0.0f;
    float share = ties ? gv / (float)ties : 0.0f;
    for (int64_t i = 0; i < n; i++) m[i] *= share;
    grads[0] = mask;
    return GL_OK;
}

gl_status gl_tensor_reduce_all(gl_reduce_op op, const gl_tensor *t, gl_tensor **out,
                               gl_error *err)
{
    gl_tensor *dense = NULL;
    *out = NULL;
    int64_t n = gl_tensor_numel(t);
    if (n == 0 && (op == GL_REDUCE_MAX || op == GL_REDUCE_MIN))
        return gl_error_set(err, GL_EARG, 1, "%s: the tensor is empty (0 elements)", reduce_names[op]);
    gl_status status = gl_tensor_contiguous_untracked(t, &dense, err);
    if (status) return status;
    const float *x = gl_tensor_data(dense);
    double result;
    if (op == GL_REDUCE_SUM || op == GL_REDUCE_MEAN) {
        double total = 0.0;
        for (int64_t i = 0; i < n; i++) total += x[i];
        result = op == GL_REDUCE_MEAN ? (n ? total / (double)n : NAN) : total;
    } else {
        float best = x[0];
        for (int64_t i = 1; i < n && !isnan(best); i++)
            if (isnan(x[i]) || (op == GL_REDUCE_MAX ? x[i] > best : x[i] < best)) best = x[i];
        result = best;
    }
    gl_tensor_release(dense);
    gl_status status_out = gl_tensor_scalar((float)result, out, err);
    if (status_out) return status_out;
    const gl_tensor *inputs[1] = {t};
    gl_node *node = NULL;
    status = gl_op_finish(reduce_names[op], *out, 1, inputs, reduce_all_backward, &node, err);
    if (!status && node) {
        node->params[0] = op;
        if (op == GL_REDUCE_MAX || op == GL_REDUCE_MIN) {
            status = gl_node_save(node, t, err);
            if (!status) status = gl_node_save(node, *out, err);
        }
    }
    if (status) {
        gl_tensor_release(*out);
        *out = NULL;
    }
    return status;
}

/* params: op, dim (0-based, wrapped), keepdim.  Saved (max/min): the
 * 0-based indices of the winners. */
static gl_status reduce_dim_backward(gl_node *node, gl_tensor *g, gl_tensor **grads, gl_error *err)
{
    const gl_node_input *in = &node->inputs[0];
    gl_reduce_op op = (gl_reduce_op)node->params[0];
    int d = (int)node->params[1];
    int64_t reduce = in->shape[d], outer = 1, inner = 1;
    for (int k = 0; k < d; k++) outer *= in->shape[k];
    for (int k = d + 1; k < in->ndim; k++) inner *= in->shape[k];
    gl_tensor *dense_g = NULL, *full = NULL;
    gl_status status = gl_tensor_contiguous_untracked(g, &dense_g, err);
    if (!status) status = gl_tensor_zeros(in->ndim, in->shape, &full, err);
    if (status) {
        gl_tensor_release(dense_g);
        return status;
    }
    const float *gv = gl_tensor_data(dense_g);
    float *o = gl_tensor_data(full);
    if (op == GL_REDUCE_SUM || op == GL_REDUCE_MEAN) {
        float scale = op == GL_REDUCE_MEAN && reduce > 0 ? 1.0f / (float)reduce : 1.0f;
        for (int64_t p = 0; p < outer; p++)
            for (int64_t r = 0; r < reduce; r++)
                for (int64_t i = 0; i < inner; i++)
                    o[(p * reduce + r) * inner + i] = gv[p * inner + i] * scale;
    } else {
        const float *at = gl_tensor_data(node->saved[0]);
        for (int64_t p = 0; p < outer; p++)
            for (int64_t i = 0; i < inner; i++)
                o[(p * reduce + (int64_t)at[p * inner + i]) * inner + i] = gv[p * inner + i];
    }
    gl_tensor_release(dense_g);
    grads[0] = full;
    return GL_OK;
}

gl_status gl_tensor_reduce_dim(gl_reduce_op op, const gl_tensor *t, int dim, bool keepdim,
                               gl_tensor **out, gl_tensor **indices, gl_error *err)
{
    char buffer[160];
    *out = NULL;
    if (indices) *indices = NULL;
    const char *name = reduce_names[op];
    int d = gl_dim_wrap(dim, t->ndim);
    if (d < 0)
        return gl_error_set(err, GL_EINDEX, 1, "%s: dimension %d is out of range for a %d-d tensor (shape %s)",
                            name, dim >= 0 ? dim + 1 : dim, t->ndim, GL_SHAPE_STR(t, buffer));
    int64_t reduce = t->shape[d], outer = 1, inner = 1;
    if (reduce == 0 && (op == GL_REDUCE_MAX || op == GL_REDUCE_MIN))
        return gl_error_set(err, GL_EARG, 1, "%s: dimension %d has size 0 (shape %s)", name, d + 1,
                            GL_SHAPE_STR(t, buffer));
    for (int k = 0; k < d; k++) outer *= t->shape[k];
    for (int k = d + 1; k < t->ndim; k++) inner *= t->shape[k];

    int64_t shape[GL_MAX_DIMS];
    int ndim = 0;
    for (int k = 0; k < t->ndim; k++) {
        if (k != d) shape[ndim++] = t->shape[k];
        else if (keepdim) shape[ndim++] = 1;
    }
    gl_tensor *dense = NULL, *positions = NULL;
    double *accumulator = NULL;
    bool extreme = op == GL_REDUCE_MAX || op == GL_REDUCE_MIN;
    gl_status status = gl_tensor_contiguous_untracked(t, &dense, err);
    if (!status) status = gl_tensor_empty(ndim, shape, out, err);
    if (!status && extreme) status = gl_tensor_empty(ndim, shape, &positions, err);
    if (!status && (op == GL_REDUCE_SUM || op == GL_REDUCE_MEAN)) {
        accumulator = malloc(sizeof(double) * (size_t)(inner ? inner : 1));
        if (!accumulator) status = gl_error_set(err, GL_ENOMEM, 0, "%s: out of memory", name);
    }
    if (status) {
        gl_tensor_release(dense);
        gl_tensor_release(positions);
        gl_tensor_release(*out);
        *out = NULL;
        return status;
    }
    const float *x = gl_tensor_data(dense);
    float *o = gl_tensor_data(*out);
    float *position = positions ? gl_tensor_data(positions) : NULL;
    for (int64_t p = 0; p < outer; p++) {
        const float *block = x + p * reduce * inner;
        float *row = o + p * inner;
        if (accumulator) {
            /* Walk the reduced dim outermost so the inner loop is contiguous. */
            for (int64_t i = 0; i < inner; i++) accumulator[i] = 0.0;
            for (int64_t r = 0; r < reduce; r++)
                for (int64_t i = 0; i < inner; i++) accumulator[i] += block[r * inner + i];
            double scale = op == GL_REDUCE_MEAN ? 1.0 / (double)reduce : 1.0;
            for (int64_t i = 0; i < inner; i++)
                row[i] = op == GL_REDUCE_MEAN && reduce == 0 ? NAN : (float)(accumulator[i] * scale);
        } else {
            for (int64_t i = 0; i < inner; i++) {
                float best = block[i];
                int64_t at = 0;
                for (int64_t r = 1; r < reduce && !isnan(best); r++) {
                    float v = block[r * inner + i];
                    if (isnan(v) || (op == GL_REDUCE_MAX ? v > best : v < best)) best = v, at = r;
                }
                row[i] = best;
                if (position) position[p * inner + i] = (float)at;
            }
        }
    }
    free(accumulator);
    gl_tensor_release(dense);
    const gl_tensor *inputs[1] = {t};
    gl_node *node = NULL;
    status = gl_op_finish(name, *out, 1, inputs, reduce_dim_backward, &node, err);
    if (!status && node) {
        node->params[0] = op;
        node->params[1] = d;
        node->params[2] = keepdim;
        if (extreme) status = gl_node_save(node, positions, err);
    }
    if (status) {
        gl_tensor_release(*out);
        *out = NULL;
        gl_tensor_release(positions);
        return status;
    }
    if (indices) *indices = positions;
    else gl_tensor_release(positions);
    return GL_OK;
}

/* d‖x‖ = g x / ‖x‖ (0 at x = 0, PyTorch's subgradient).  Saved: x, out. */
static gl_status norm_backward(gl_node *node, gl_tensor *g, gl_tensor **grads, gl_error *err)
{
    float norm = gl_tensor_data(node->saved[1])[0];
    float scale = norm > 0 ? gl_tensor_data(g)[0] / norm : 0.0f;
    return gl_tensor_binary_scalar(GL_OP_MUL, node->saved[0], scale, false, &grads[0], err);
}

gl_status gl_tensor_norm(const gl_tensor *t, gl_tensor **out, gl_error *err)
{
    gl_tensor *dense = NULL;
    *out = NULL;
    gl_status status = gl_tensor_contiguous_untracked(t, &dense, err);
    if (status) return status;
    const float *x = gl_tensor_data(dense);
    int64_t n = gl_tensor_numel(dense);
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) total += (double)x[i] * x[i];
    gl_tensor_release(dense);
    if ((status = gl_tensor_scalar((float)sqrt(total), out, err))) return status;
    const gl_tensor *inputs[1] = {t};
    gl_node *node = NULL;
    status = gl_op_finish("norm", *out, 1, inputs, norm_backward, &node, err);
    if (!status && node) {
        status = gl_node_save(node, t, err);
        if (!status) status = gl_node_save(node, *out, err);
    }
    if (status) {
        gl_tensor_release(*out);
        *out = NULL;
    }
    return status;
}
