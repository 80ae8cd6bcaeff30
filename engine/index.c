/*
 * index.c — selecting slices by index, and random permutations.
 *
 *   index_select: t (..., n, ...) along dim, indices (k) -> (..., k, ...)
 *   backward:     the gradient slices are added back to the rows they came
 *                 from (a row picked twice gets both)
 */
#include <math.h>
#include <string.h>

#include "autograd.h"

/* Checks the indices and returns them 0-based as int64 in a new buffer tensor's
 * storage (reinterpreted: one int64 per two floats would be wrong, so we keep
 * floats and validate exactness instead). */
static gl_status check_indices(const char *op, const gl_tensor *indices, int64_t limit, int base,
                               gl_tensor **positions, gl_error *err)
{
    char buffer[160];
    if (indices->ndim != 1)
        return gl_error_set(err, GL_ESHAPE, 3, "%s: indices must be a 1-d tensor, got shape %s", op,
                            GL_SHAPE_STR(indices, buffer));
    gl_status status = gl_tensor_clone_untracked(indices, positions, err);
    if (status) return status;
    float *p = gl_tensor_data(*positions);
    int64_t n = gl_tensor_numel(indices);
    for (int64_t i = 0; i < n; i++) {
        float v = p[i];
        if (v != floorf(v) || v < (float)base || v >= (float)(base + limit)) {
            gl_tensor_release(*positions);
            *positions = NULL;
            return gl_error_set(err, GL_EINDEX, 3, "%s: index %g at position %lld is out of range %d..%lld",
                                op, (double)v, (long long)i + 1, base, (long long)(base + limit - 1));
        }
        p[i] = v - (float)base;
    }
    return GL_OK;
}

/* Layout (outer, n, inner) of a contiguous tensor around dim. */
static void split_at(const gl_tensor *t, int d, int64_t *outer, int64_t *inner)
{
    *outer = 1, *inner = 1;
    for (int k = 0; k < d; k++) *outer *= t->shape[k];
    for (int k = d + 1; k < t->ndim; k++) *inner *= t->shape[k];
}

/* Saved: positions (0-based).  params[0] = dim. */
static gl_status index_select_backward(gl_node *node, gl_tensor *g, gl_tensor **grads, gl_error *err)
{
    const gl_node_input *in = &node->inputs[0];
    int d = (int)node->params[0];
    gl_tensor *dense_g = NULL;
    gl_status status = gl_tensor_contiguous_untracked(g, &dense_g, err);
    if (!status) status = gl_tensor_zeros(in->ndim, in->shape, &grads[0], err);
    if (status) {
        gl_tensor_release(dense_g);
        return status;
    }
    int64_t outer, inner, n = in->shape[d], k = g->shape[d];
    split_at(grads[0], d, &outer, &inner);
    const float *pos = gl_tensor_data(node->saved[0]), *gv = gl_tensor_data(dense_g);
    float *out = gl_tensor_data(grads[0]);
    for (int64_t p = 0; p < outer; p++)
        for (int64_t j = 0; j < k; j++) {
            float *row = out + (p * n + (int64_t)pos[j]) * inner;
            const float *src = gv + (p * k + j) * inner;
            for (int64_t i = 0; i < inner; i++) row[i] += src[i];
        }
    gl_tensor_release(dense_g);
    return GL_OK;
}

gl_status gl_tensor_index_select(const gl_tensor *t, int dim, const gl_tensor *indices,
                                 int index_base, gl_tensor **out, gl_error *err)
{
    char buffer[160];
    *out = NULL;
    int d = gl_dim_wrap(dim, t->ndim);
    if (d < 0)
        return gl_error_set(err, GL_EINDEX, 2, "index_select: dimension %d is out of range for shape %s",
                            dim >= 0 ? dim + 1 : dim, GL_SHAPE_STR(t, buffer));
    gl_tensor *positions = NULL, *dense = NULL;
    gl_status status = check_indices("index_select", indices, t->shape[d], index_base, &positions, err);
    if (!status) status = gl_tensor_contiguous_untracked(t, &dense, err);
    int64_t shape[GL_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    int64_t k = gl_tensor_numel(indices);
    shape[d] = k;
    if (!status) status = gl_tensor_empty(t->ndim, shape, out, err);
    if (!status) {
        int64_t outer, inner, n = t->shape[d];
        split_at(t, d, &outer, &inner);
        const float *pos = gl_tensor_data(positions), *x = gl_tensor_data(dense);
        float *o = gl_tensor_data(*out);
        for (int64_t p = 0; p < outer; p++)
            for (int64_t j = 0; j < k; j++)
                memcpy(o + (p * k + j) * inner, x + (p * n + (int64_t)pos[j]) * inner,
                       sizeof(float) * (size_t)inner);
        const gl_tensor *inputs[1] = {t};
        gl_node *node = NULL;
        status = gl_op_finish("index_select", *out, 1, inputs, index_select_backward, &node, err);
        if (!status && node) {
            node->params[0] = d;
            status = gl_node_save(node, positions, err);
        }
        if (status) {
            gl_tensor_release(*out);
            *out = NULL;
        }
    }
    gl_tensor_release(positions);
    gl_tensor_release(dense);
    return status;
}

gl_status gl_tensor_randperm(int64_t n, int index_base, gl_tensor **out, gl_error *err)
{
    *out = NULL;
    if (n < 0) return gl_error_set(err, GL_EARG, 1, "randperm: n must be >= 0, got %lld", (long long)n);
    if (n > (INT64_C(1) << 24))
        return gl_error_set(err, GL_EARG, 1, "randperm: n = %lld is beyond 2^24, where float32 stops holding every index",
                            (long long)n);
    int64_t shape[1] = {n};
    gl_status status = gl_tensor_empty(1, shape, out, err);
    if (status) return status;
    float *p = gl_tensor_data(*out);
    for (int64_t i = 0; i < n; i++) p[i] = (float)(i + index_base);
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)gl_random_below((uint64_t)i + 1);
        float swap = p[i];
        p[i] = p[j];
        p[j] = swap;
    }
    return GL_OK;
}
