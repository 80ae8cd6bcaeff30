/*
 * linear.c — the fused Linear layer.
 *
 *   x (..., in)   W (out, in)   b (out) or NULL   ->   y (..., out)
 *   forward:  y = x W^T + b          one sgemm; b is copied into y's rows first
 *                                    and sgemm adds onto it (beta = 1)
 *   backward: dx = dy W              sgemm
 *             dW = dy^T x            sgemm
 *             db = column sums of dy      (and sum dy^2 when watched: autograd.h)
 */
#include <cblas.h>
#include <limits.h>
#include <string.h>

#include "autograd.h"

/* Saved: x as a contiguous (rows, in) matrix, W contiguous. */
static gl_status linear_backward(gl_node *node, gl_tensor *g, gl_tensor **grads, gl_error *err)
{
    const gl_tensor *x = node->saved[0], *w = node->saved[1];
    int64_t rows = x->shape[0], in = x->shape[1], out = w->shape[0];
    gl_tensor *dense_g = NULL;
    gl_status status = gl_tensor_contiguous_untracked(g, &dense_g, err);
    if (status) return status;
    const float *gv = gl_tensor_data(dense_g);
    if (gl_node_input_needs_grad(node, 0)) {
        status = gl_tensor_empty(node->inputs[0].ndim, node->inputs[0].shape, &grads[0], err);
        if (!status && rows > 0 && in > 0) {
            if (out == 0) memset(gl_tensor_data(grads[0]), 0, sizeof(float) * (size_t)(rows * in));
            else
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)in, (int)out, 1.0f,
                            gv, (int)out, gl_tensor_data(w), (int)in, 0.0f, gl_tensor_data(grads[0]), (int)in);
        }
    }
    if (!status && gl_node_input_needs_grad(node, 1)) {
        status = gl_tensor_empty(2, w->shape, &grads[1], err);
        if (!status && out > 0 && in > 0) {
            if (rows == 0) memset(gl_tensor_data(grads[1]), 0, sizeof(float) * (size_t)(out * in));
            else
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)in, (int)rows, 1.0f,
                            gv, (int)out, gl_tensor_data(x), (int)in, 0.0f, gl_tensor_data(grads[1]), (int)in);
        }
    }
    if (!status && node->ninputs > 2 && gl_node_input_needs_grad(node, 2)) {
        int64_t shape[1] = {out};
        status = gl_tensor_zeros(1, shape, &grads[2], err);
        if (!status) {
            float *restrict db = gl_tensor_data(grads[2]);
            if (gl_node_watch_sink(node)) {
                /* The watched backward signal (autograd.h): this loop reads
                 * all of dy, so its squares come along, a row at a time in
                 * float and summed across rows in double. */
                double squares = 0;
                for (int64_t r = 0; r < rows; r++) {
                    float q = 0;
#pragma omp simd reduction(+ : q)
                    for (int64_t j = 0; j < out; j++) {
                        float v = gv[r * out + j];
                        db[j] += v;
                        q += v * v;
                    }
                    squares += q;
                }
                gl_node_watch_done(node, squares, rows * out);
            } else {
                for (int64_t r = 0; r < rows; r++)
                    for (int64_t j = 0; j < out; j++) db[j] += gv[r * out + j];
            }
        }
    }
    gl_tensor_release(dense_g);
    return status;
}

gl_status gl_linear(const gl_tensor *x, const gl_tensor *weight, const gl_tensor *bias,
                    gl_tensor **out, gl_error *err)
{
    char xs[160], ws[160], bs[160];
    *out = NULL;
    if (weight->ndim != 2)
        return gl_error_set(err, GL_ESHAPE, 2, "linear: weight must be 2-d (out, in), got shape %s",
                            GL_SHAPE_STR(weight, ws));
    int64_t out_features = weight->shape[0], in_features = weight->shape[1];
    if (x->ndim < 1 || x->shape[x->ndim - 1] != in_features)
        return gl_error_set(err, GL_ESHAPE, 1,
                            "linear: input has %lld features, weight expects %lld (input shape %s, weight shape %s)",
                            (long long)(x->ndim ? x->shape[x->ndim - 1] : 0), (long long)in_features,
                            GL_SHAPE_STR(x, xs), GL_SHAPE_STR(weight, ws));
    if (bias && (bias->ndim != 1 || bias->shape[0] != out_features))
        return gl_error_set(err, GL_ESHAPE, 3, "linear: bias of shape %s does not match %lld outputs",
                            GL_SHAPE_STR(bias, bs), (long long)out_features);
    int64_t rows = gl_tensor_numel(x) / (in_features ? in_features : 1);
    if (in_features == 0) {
        rows = 1;
        for (int d = 0; d < x->ndim - 1; d++) rows *= x->shape[d];
    }
    if (rows > INT_MAX || in_features > INT_MAX || out_features > INT_MAX)
        return gl_error_set(err, GL_ESHAPE, 1, "linear: sizes exceed BLAS's int range (input shape %s)",
                            GL_SHAPE_STR(x, xs));
    int64_t out_shape[GL_MAX_DIMS];
    memcpy(out_shape, x->shape, sizeof out_shape);
    out_shape[x->ndim - 1] = out_features;

    gl_tensor *dense_x = NULL, *dense_w = NULL, *matrix_x = NULL;
    gl_status status = gl_tensor_contiguous_untracked(x, &dense_x, err);
    if (!status) status = gl_tensor_contiguous_untracked(weight, &dense_w, err);
    if (!status) status = gl_tensor_empty(x->ndim, out_shape, out, err);
    if (!status) {
        float *y = gl_tensor_data(*out);
        if (bias) {
            float b_local[256];
            const float *b = b_local;
            gl_tensor *dense_b = NULL;
            if (bias->stride[0] == 1) b = gl_tensor_data(bias);
            else if (out_features <= 256) gl_tensor_gather_to(bias, b_local);
            else if (!(status = gl_tensor_contiguous_untracked(bias, &dense_b, err))) b = gl_tensor_data(dense_b);
            for (int64_t r = 0; r < rows && !status; r++) memcpy(y + r * out_features, b, sizeof(float) * (size_t)out_features);
            gl_tensor_release(dense_b);
        }
        if (!status && rows > 0 && out_features > 0) {
            if (in_features == 0) {
                if (!bias) memset(y, 0, sizeof(float) * (size_t)(rows * out_features));
            } else {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)out_features,
                            (int)in_features, 1.0f, gl_tensor_data(dense_x), (int)in_features,
                            gl_tensor_data(dense_w), (int)in_features, bias ? 1.0f : 0.0f, y,
                            (int)out_features);
            }
        }
    }
    if (!status) {
        const gl_tensor *inputs[3] = {x, weight, bias};
        gl_node *node = NULL;
        status = gl_op_finish("linear", *out, bias ? 3 : 2, inputs, linear_backward, &node, err);
        if (!status && node) {
            node->watch_fused = bias != NULL;   /* the bias gradient's pass reads all of dy */
            int64_t matrix_shape[2] = {rows, in_features};
            status = gl_tensor_view_of(dense_x->storage, 2, matrix_shape, NULL, dense_x->offset, &matrix_x, err);
            if (!status) status = gl_node_save(node, matrix_x, err);
            if (!status) status = gl_node_save(node, dense_w, err);
        }
    }
    gl_tensor_release(matrix_x);
    gl_tensor_release(dense_x);
    gl_tensor_release(dense_w);
    if (status) {
        gl_tensor_release(*out);
        *out = NULL;
    }
    return status;
}
