/*
 * embedding.c — table lookup with a scatter-add backward.
 *
 *   indices (...) integers stored as floats, counted from index_base
 *   weight  (n, d)
 *   out     (..., d)          out[p, :] = weight[indices[p] - base, :]
 *   backward: dweight[indices[p] - base, :] += g[p, :]   (rows of padding_idx skipped)
 *
 * The indices are validated and converted once in forward; backward re-reads
 * the saved (detached) index tensor, so an in-place edit of it between the
 * two is caught by autograd's version check instead of scattering wrongly.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd.h"

/* The naive oracle is the Lua loop in spec/embedding_spec.lua; this is a row copy. */
static void embedding_forward(const int64_t *rows, int64_t count, const float *restrict weight,
                              int64_t d, float *restrict out)
{
    for (int64_t p = 0; p < count; p++)
        memcpy(out + p * d, weight + rows[p] * d, sizeof(float) * (size_t)d);
}

/* dweight (n, d) must be zeroed; padding < 0 means none. */
static void embedding_backward(const float *indices, int64_t count, int index_base, int64_t padding,
                               const float *restrict g, int64_t d, float *restrict dweight)
{
    for (int64_t p = 0; p < count; p++) {
        int64_t row = (int64_t)indices[p] - index_base;
        if (row == padding) continue;
        float *target = dweight + row * d;
        const float *source = g + p * d;
        for (int64_t j = 0; j < d; j++) target[j] += source[j];
    }
}

/* Saved: indices (contiguous).  params: index_base, padding row (0-based, -1 none). */
static gl_status embedding_node_backward(gl_node *node, gl_tensor *g, gl_tensor **grads, gl_error *err)
{
    if (!gl_node_input_needs_grad(node, 1)) return GL_OK;
    const gl_tensor *indices = node->saved[0];
    gl_tensor *dense_g = NULL;
    gl_status status = gl_tensor_contiguous_untracked(g, &dense_g, err);
    if (!status) status = gl_tensor_zeros(2, node->inputs[1].shape, &grads[1], err);
    if (!status)
        embedding_backward(gl_tensor_data(indices), gl_tensor_numel(indices), (int)node->params[0],
                           node->params[1], gl_tensor_data(dense_g), node->inputs[1].shape[1],
                           gl_tensor_data(grads[1]));
    gl_tensor_release(dense_g);
    return status;
}

/* Writes the multi-index of flat position p of shape (counted from base) into buffer. */
static const char *position_format(int ndim, const int64_t *shape, int64_t p, int base, char *buffer,
                                   size_t size)
{
    int64_t index[GL_MAX_DIMS];
    for (int d = ndim - 1; d >= 0; d--) {
        index[d] = shape[d] > 0 ? p % shape[d] + base : base;
        p = shape[d] > 0 ? p / shape[d] : p;
    }
    return gl_shape_format(ndim, index, buffer, size);
}

gl_status gl_embedding(const gl_tensor *indices, const gl_tensor *weight, int index_base,
                       int64_t padding_idx, gl_tensor **out, gl_error *err)
{
    char is[160], ws[160], ps[160];
    *out = NULL;
    if (weight->ndim != 2)
        return gl_error_set(err, GL_ESHAPE, 2, "embedding: weight must be 2-d (num_embeddings, dim), got shape %s",
                            GL_SHAPE_STR(weight, ws));
    int64_t n = weight->shape[0], d = weight->shape[1];
    if (indices->ndim + 1 > GL_MAX_DIMS)
        return gl_error_set(err, GL_ESHAPE, 1, "embedding: indices of shape %s leave no room for the embedding dimension",
                            GL_SHAPE_STR(indices, is));
    int64_t padding = -1;
    if (padding_idx != GL_EMBEDDING_NO_PADDING) {
        if (padding_idx < index_base || padding_idx - index_base >= n)
            return gl_error_set(err, GL_EINDEX, 3, "embedding: padding_idx %lld is out of range %d..%lld (weight shape %s)",
                                (long long)padding_idx, index_base, (long long)(n - 1 + index_base),
                                GL_SHAPE_STR(weight, ws));
        padding = padding_idx - index_base;
    }
    int64_t count = gl_tensor_numel(indices);
    gl_tensor *dense_i = NULL, *dense_w = NULL;
    int64_t *rows = malloc(sizeof *rows * (size_t)(count > 0 ? count : 1));
    if (!rows) return gl_error_set(err, GL_ENOMEM, 0, "embedding: out of memory for %lld indices", (long long)count);
    gl_status status = gl_tensor_contiguous_untracked(indices, &dense_i, err);
    if (!status) {
        const float *iv = gl_tensor_data(dense_i);
        for (int64_t p = 0; p < count && !status; p++) {
            float value = iv[p];
            /* Compare in float before converting: NaN and huge values fail here, never overflow. */
            if (!(value >= (float)index_base && value < (float)n + (float)index_base) || value != floorf(value)) {
                status = gl_error_set(err, GL_EINDEX, 1,
                                      "embedding: index %g at position %s of indices (shape %s) is %s %d..%lld (weight shape %s)",
                                      (double)value,
                                      position_format(indices->ndim, indices->shape, p, index_base, ps, sizeof ps),
                                      GL_SHAPE_STR(indices, is),
                                      value == floorf(value) ? "out of range" : "not an integer in",
                                      index_base, (long long)(n - 1 + index_base), GL_SHAPE_STR(weight, ws));
            } else {
                rows[p] = (int64_t)value - index_base;
            }
        }
    }
    if (!status) status = gl_tensor_contiguous_untracked(weight, &dense_w, err);
    if (!status) {
        int64_t shape[GL_MAX_DIMS];
        memcpy(shape, indices->shape, sizeof(int64_t) * (size_t)indices->ndim);
        shape[indices->ndim] = d;
        status = gl_tensor_empty(indices->ndim + 1, shape, out, err);
    }
    if (!status) {
        embedding_forward(rows, count, gl_tensor_data(dense_w), d, gl_tensor_data(*out));
        const gl_tensor *inputs[2] = {indices, weight};
        gl_node *node = NULL;
        status = gl_op_finish("embedding", *out, 2, inputs, embedding_node_backward, &node, err);
        if (!status && node) {
            node->params[0] = index_base;
            node->params[1] = padding;
            status = gl_node_save(node, dense_i, err);
        }
    }
    free(rows);
    gl_tensor_release(dense_i);
    gl_tensor_release(dense_w);
    if (status) {
        gl_tensor_release(*out);
        *out = NULL;
    }
    return status;
}
