/*
 * init.c — initializers that need more than elementwise random fills.
 *
 * Orthogonal initialization (Saxe et al., 2014): draw a normal matrix, take
 * its QR decomposition by Householder reflections (in double), and multiply
 * Q's columns by the signs of R's diagonal so the result is uniformly
 * distributed over orthogonal matrices — the recipe of torch.nn.init.orthogonal_.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Thin Q (m x n, m >= n, row-major) of the row-major matrix a, sign-corrected. */
static void householder_q(double *a, int64_t m, int64_t n, double *q, double *v)
{
    double *diag = v + m;   /* scratch after the reflector */
    double *reflectors = v + m + n;
    for (int64_t k = 0; k < n; k++) {
        double norm = 0.0;
        for (int64_t i = k; i < m; i++) norm += a[i * n + k] * a[i * n + k];
        norm = sqrt(norm);
        double alpha = a[k * n + k] > 0 ? -norm : norm;
        double *vk = reflectors + k * m;
        memset(vk, 0, sizeof(double) * (size_t)m);
        for (int64_t i = k; i < m; i++) vk[i] = a[i * n + k];
        vk[k] -= alpha;
        double vnorm = 0.0;
        for (int64_t i = k; i < m; i++) vnorm += vk[i] * vk[i];
        vnorm = sqrt(vnorm);
        if (vnorm > 0)
            for (int64_t i = k; i < m; i++) vk[i] /= vnorm;
        /* A[k:, k:] -= 2 v (v^T A[k:, k:]) */
        for (int64_t j = k; j < n; j++) {
            double dot = 0.0;
            for (int64_t i = k; i < m; i++) dot += vk[i] * a[i * n + j];
            for (int64_t i = k; i < m; i++) a[i * n + j] -= 2.0 * vk[i] * dot;
        }
        diag[k] = a[k * n + k];
    }
    /* Q = H_0 ... H_{n-1} applied to the first n columns of the identity. */
    memset(q, 0, sizeof(double) * (size_t)(m * n));
    for (int64_t i = 0; i < n; i++) q[i * n + i] = 1.0;
    for (int64_t k = n - 1; k >= 0; k--) {
        const double *vk = reflectors + k * m;
        for (int64_t j = 0; j < n; j++) {
            double dot = 0.0;
            for (int64_t i = k; i < m; i++) dot += vk[i] * q[i * n + j];
            for (int64_t i = k; i < m; i++) q[i * n + j] -= 2.0 * vk[i] * dot;
        }
    }
    for (int64_t j = 0; j < n; j++)
        if (diag[j] < 0)
            for (int64_t i = 0; i < m; i++) q[i * n + j] = -q[i * n + j];
}

gl_status gl_init_orthogonal(gl_tensor *t, float gain, gl_error *err)
{
    char buffer[160];
    if (t->ndim < 2)
        return gl_error_set(err, GL_EARG, 1, "orthogonal: needs a tensor of at least 2 dimensions, got shape %s",
                            gl_shape_format(t->ndim, t->shape, buffer, sizeof buffer));
    int64_t rows = t->shape[0], cols = gl_tensor_numel(t) / (rows ? rows : 1);
    if (rows == 0 || cols == 0) return GL_OK;
    int64_t m = rows > cols ? rows : cols, n = rows > cols ? cols : rows;
    if (m > 16384 || n > 4096)
        return gl_error_set(err, GL_EARG, 1, "orthogonal: shape %s is too large for an orthogonal initialization",
                            gl_shape_format(t->ndim, t->shape, buffer, sizeof buffer));
    double *a = malloc(sizeof(double) * (size_t)(m * n));
    double *q = malloc(sizeof(double) * (size_t)(m * n));
    double *scratch = malloc(sizeof(double) * (size_t)(m + n + n * m));
    float *values = malloc(sizeof(float) * (size_t)(rows * cols));
    gl_status status = GL_OK;
    if (!a || !q || !scratch || !values) {
        status = gl_error_set(err, GL_ENOMEM, 0, "orthogonal: out of memory");
    } else {
        /* Draw (rows x cols); QR wants a tall matrix, so work on the transpose of a wide one. */
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++) {
                double z = gl_random_normal();
                if (rows >= cols) a[i * n + j] = z;
                else a[j * n + i] = z;
            }
        householder_q(a, m, n, q, scratch);
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++)
                values[i * cols + j] = (float)(gain * (rows >= cols ? q[i * n + j] : q[j * n + i]));
        /* Write through t's strides, in logical order. */
        gl_tensor *source = NULL;
        gl_storage *storage = NULL;
        status = gl_storage_new(rows * cols, &storage, err);
        if (!status) {
            memcpy(storage->data, values, sizeof(float) * (size_t)(rows * cols));
            status = gl_tensor_view_of(storage, t->ndim, t->shape, NULL, 0, &source, err);
            gl_storage_release(storage);
            if (!status) status = gl_tensor_copy_from(t, source, err);
            gl_tensor_release(source);
        }
    }
    free(a);
    free(q);
    free(scratch);
    free(values);
    return status;
}
