/*
 * ops_reduce.c — sum, mean, max, min over all elements or one dimension, and
 * the L2 norm.  Sums accumulate in double so long reductions stay accurate
 * and independent of blocking.
 */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

static const char *const reduce_names[] = {"sum", "mean", "max", "min"};

gl_status gl_tensor_reduce_all(gl_reduce_op op, const gl_tensor *t, gl_tensor **out,
                               gl_error *err)
{
    gl_tensor *dense = NULL;
    *out = NULL;
    int64_t n = gl_tensor_numel(t);
    if (n == 0 && (op == GL_REDUCE_MAX || op == GL_REDUCE_MIN))
        return gl_error_set(err, GL_EARG, 1, "%s: the tensor is empty (0 elements)", reduce_names[op]);
    gl_status status = gl_tensor_contiguous((gl_tensor *)t, &dense, err);
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
    return gl_tensor_scalar((float)result, out, err);
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
    gl_tensor *dense = NULL;
    double *accumulator = NULL;
    gl_status status = gl_tensor_contiguous((gl_tensor *)t, &dense, err);
    if (!status) status = gl_tensor_empty(ndim, shape, out, err);
    if (!status && indices) status = gl_tensor_empty(ndim, shape, indices, err);
    if (!status && (op == GL_REDUCE_SUM || op == GL_REDUCE_MEAN)) {
        accumulator = malloc(sizeof(double) * (size_t)(inner ? inner : 1));
        if (!accumulator) status = gl_error_set(err, GL_ENOMEM, 0, "%s: out of memory", name);
    }
    if (status) {
        gl_tensor_release(dense);
        gl_tensor_release(*out);
        *out = NULL;
        if (indices) gl_tensor_release(*indices), *indices = NULL;
        return status;
    }
    const float *x = gl_tensor_data(dense);
    float *o = gl_tensor_data(*out);
    float *position = indices ? gl_tensor_data(*indices) : NULL;
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
    return GL_OK;
}

gl_status gl_tensor_norm(const gl_tensor *t, gl_tensor **out, gl_error *err)
{
    gl_tensor *dense = NULL;
    *out = NULL;
    gl_status status = gl_tensor_contiguous((gl_tensor *)t, &dense, err);
    if (status) return status;
    const float *x = gl_tensor_data(dense);
    int64_t n = gl_tensor_numel(dense);
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) total += (double)x[i] * x[i];
    gl_tensor_release(dense);
    return gl_tensor_scalar((float)sqrt(total), out, err);
}
