/*
 * norm_group.c — normalizers whose statistics stay inside one sample: layer
 * norm, group norm (instance norm is groups == channels) and RMS norm, all
 * through one fused forward/backward pair.
 *
 *   x seen as (B, G, Cg, inner); row r = (b, g) holds M = Cg * inner values
 *   weight, bias: one value per channel ch = g * Cg + c (G * Cg of them), or NULL
 *   mean, rstd (B * G)        saved for backward (mean only when centred)
 *
 *     layer_norm  x (..., normalized_shape): B = prod(leading dims), G = 1,
 *                 Cg = prod(normalized_shape), inner = 1
 *     group_norm  x (B, C, *): G = groups, Cg = C / G, inner = prod(*)
 *     rms_norm    as layer_norm, but not centred (mean = 0) and no bias
 *
 *   forward:  mean = sum x / M,  rstd = 1 / sqrt(sum (x - mean)^2 / M + eps)
 *             y = (x - mean) rstd w[ch] + b[ch]
 *   backward: xhat = (x - mean) rstd,  h = g w[ch]
 *             dx = rstd (h - sum h / M - xhat sum (h xhat) / M)   (sum h / M dropped for rms)
 *             dw[ch] = sum over b, inner of g xhat,  db[ch] = sum g
 *
 * Row statistics and parameter sums accumulate in double; the centred
 * variance takes a second pass so a large mean does not cancel it away.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd.h"
#include "norm_sums.h"

typedef struct row_layout {
    int64_t outer, groups, group_channels, inner;
    bool centred;
} row_layout;

static int64_t row_length(row_layout l) { return l.group_channels * l.inner; }
static int64_t row_count(row_layout l) { return l.outer * l.groups; }

/* ---------------------------------------------------------------- kernels */

static void rows_forward(row_layout l, double eps, const float *restrict x, const float *restrict w,
                         const float *restrict b, float *restrict mean, float *restrict rstd,
                         float *restrict y)
{
    int64_t M = row_length(l), Cg = l.group_channels, inner = l.inner;
    for (int64_t r = 0; r < row_count(l); r++) {
        const float *xr = x + r * M;
        float *yr = y + r * M;
        double m = l.centred && M > 0 ? norm_sum(xr, M) / (double)M : 0.0;
        double v = M > 0 ? norm_sum_squares(xr, M, m) / (double)M : 0.0;
        float mf = (float)m, sf = (float)(1.0 / sqrt(v + eps));
        mean[r] = mf;
        rstd[r] = sf;
        int64_t ch0 = (r % l.groups) * Cg;
        if (inner == 1) {   /* layer and RMS norm: the affine runs along the row */
            if (w && b) for (int64_t j = 0; j < M; j++) yr[j] = (xr[j] - mf) * sf * w[ch0 + j] + b[ch0 + j];
            else if (w) for (int64_t j = 0; j < M; j++) yr[j] = (xr[j] - mf) * sf * w[ch0 + j];
            else for (int64_t j = 0; j < M; j++) yr[j] = (xr[j] - mf) * sf + (b ? b[ch0 + j] : 0.0f);
            continue;
        }
        for (int64_t c = 0; c < Cg; c++) {
            float k = sf * (w ? w[ch0 + c] : 1.0f), s = b ? b[ch0 + c] : 0.0f;
            const float *xp = xr + c * inner;
            float *yp = yr + c * inner;
            for (int64_t i = 0; i < inner; i++) yp[i] = (xp[i] - mf) * k + s;
        }
    }
}

/* dx (optional) and the double sums dw, db (optional, zeroed by the caller). */
static void rows_backward(row_layout l, const float *restrict g, const float *restrict x,
                          const float *restrict w, const float *restrict mean,
                          const float *restrict rstd, float *restrict dx, double *restrict dw,
                          double *restrict db)
{
    int64_t M = row_length(l), Cg = l.group_channels, inner = l.inner;
    for (int64_t r = 0; r < row_count(l); r++) {
        const float *gr = g + r * M, *xr = x + r * M;
        const float *wr = w ? w + (r % l.groups) * Cg : NULL;   /* this row's channels */
        double *dwr = dw ? dw + (r % l.groups) * Cg : NULL, *dbr = db ? db + (r % l.groups) * Cg : NULL;
        float mf = mean[r], sf = rstd[r];
        /* sh = sum h, shx = sum h (x - mean) with h = g w, for dx. */
        double sh = 0.0, shx = 0.0;
        if (inner == 1) {   /* layer and RMS norm: one parameter per element */
            if (dwr) for (int64_t j = 0; j < M; j++) dwr[j] += gr[j] * ((xr[j] - mf) * sf);
            if (dbr) for (int64_t j = 0; j < M; j++) dbr[j] += gr[j];
            if (dx) norm_sum_gradient(gr, wr, xr, M, mf, &sh, &shx);
        } else {            /* group norm: per channel, sum g and sum g (x - mean) serve all three */
            for (int64_t c = 0; c < Cg; c++) {
                double s, sx;
                norm_sum_gradient(gr + c * inner, NULL, xr + c * inner, inner, mf, &s, &sx);
                if (dwr) dwr[c] += sx * sf;
                if (dbr) dbr[c] += s;
                double wc = wr ? wr[c] : 1.0;
                sh += wc * s;
                shx += wc * sx;
            }
        }
        if (!dx) continue;
        float a = l.centred && M > 0 ? (float)(sh / (double)M) : 0.0f;
        float q = M > 0 ? (float)(shx * sf * sf / (double)M) : 0.0f;   /* mean(h xhat) rstd */
        float *dr = dx + r * M;
        if (inner == 1) {
            if (wr) for (int64_t j = 0; j < M; j++) dr[j] = sf * (gr[j] * wr[j] - a - (xr[j] - mf) * q);
            else for (int64_t j = 0; j < M; j++) dr[j] = sf * (gr[j] - a - (xr[j] - mf) * q);
            continue;
        }
        for (int64_t c = 0; c < Cg; c++) {
            float wc = wr ? wr[c] : 1.0f;
            const float *gp = gr + c * inner, *xp = xr + c * inner;
            float *dp = dr + c * inner;
            for (int64_t i = 0; i < inner; i++) dp[i] = sf * (gp[i] * wc - a - (xp[i] - mf) * q);
        }
    }
}

/* --------------------------------------------------------------- autograd */

/* Saved: x (contiguous), rstd, then mean when centred, then weight when present.
 * params: outer, groups, group_channels, inner, centred, slot of mean (-1),
 * slot of weight (-1).  Inputs: x, weight, bias (NULL where absent). */
static gl_status rows_node_backward(gl_node *node, gl_tensor *g, gl_tensor **grads, gl_error *err)
{
    row_layout l = {node->params[0], node->params[1], node->params[2], node->params[3],
                    node->params[4] != 0};
    const gl_tensor *x = node->saved[0], *rstd = node->saved[1];
    const float *mean = node->params[5] >= 0 ? gl_tensor_data(node->saved[node->params[5]]) : NULL;
    const float *w = node->params[6] >= 0 ? gl_tensor_data(node->saved[node->params[6]]) : NULL;
    int64_t channels = l.groups * l.group_channels;
    bool want_x = gl_node_input_needs_grad(node, 0), want_w = gl_node_input_needs_grad(node, 1),
         want_b = gl_node_input_needs_grad(node, 2);

    float *zeros = NULL;
    double *sums = NULL;
    gl_tensor *dense_g = NULL;
    gl_status status = gl_tensor_contiguous_untracked(g, &dense_g, err);
    if (status) return status;
    if (!mean) {   /* not centred: the kernel reads a mean of 0 */
        zeros = calloc((size_t)(row_count(l) > 0 ? row_count(l) : 1), sizeof *zeros);
        if (!zeros) status = gl_error_set(err, GL_ENOMEM, 0, "%s: out of memory in backward", node->name);
        mean = zeros;
    }
    if (!status && (want_w || want_b)) {
        sums = calloc((size_t)(channels > 0 ? 2 * channels : 1), sizeof *sums);
        if (!sums) status = gl_error_set(err, GL_ENOMEM, 0, "%s: out of memory in backward", node->name);
    }
    if (!status && want_x) status = gl_tensor_empty(x->ndim, x->shape, &grads[0], err);
    if (!status && want_w)
        status = gl_tensor_empty(node->inputs[1].ndim, node->inputs[1].shape, &grads[1], err);
    if (!status && want_b)
        status = gl_tensor_empty(node->inputs[2].ndim, node->inputs[2].shape, &grads[2], err);
    if (!status) {
        rows_backward(l, gl_tensor_data(dense_g), gl_tensor_data(x), w, mean, gl_tensor_data(rstd),
                      want_x ? gl_tensor_data(grads[0]) : NULL, want_w ? sums : NULL,
                      want_b ? sums + channels : NULL);
        if (want_w) {
            float *dw = gl_tensor_data(grads[1]);
            for (int64_t c = 0; c < channels; c++) dw[c] = (float)sums[c];
        }
        if (want_b) {
            float *db = gl_tensor_data(grads[2]);
            for (int64_t c = 0; c < channels; c++) db[c] = (float)sums[channels + c];
        }
    }
    free(zeros);
    free(sums);
    gl_tensor_release(dense_g);
    return status;
}

/* The shared op: checks are done; weight and bias hold G * Cg values in any shape. */
static gl_status rows_norm(const char *name, row_layout l, const gl_tensor *x,
                           const gl_tensor *weight, const gl_tensor *bias, double eps,
                           gl_tensor **out, gl_error *err)
{
    *out = NULL;
    int64_t rows_shape[1] = {row_count(l)};
    gl_tensor *dense = NULL, *dense_w = NULL, *dense_b = NULL, *mean = NULL, *rstd = NULL;
    gl_status status = gl_tensor_contiguous_untracked(x, &dense, err);
    if (!status && weight) status = gl_tensor_contiguous_untracked(weight, &dense_w, err);
    if (!status && bias) status = gl_tensor_contiguous_untracked(bias, &dense_b, err);
    if (!status) status = gl_tensor_empty(1, rows_shape, &mean, err);
    if (!status) status = gl_tensor_empty(1, rows_shape, &rstd, err);
    if (!status) status = gl_tensor_empty(x->ndim, x->shape, out, err);
    if (!status)
        rows_forward(l, eps, gl_tensor_data(dense), dense_w ? gl_tensor_data(dense_w) : NULL,
                     dense_b ? gl_tensor_data(dense_b) : NULL, gl_tensor_data(mean),
                     gl_tensor_data(rstd), gl_tensor_data(*out));
    if (!status) {
        const gl_tensor *inputs[3] = {x, weight, bias};
        gl_node *node = NULL;
        status = gl_op_finish(name, *out, 3, inputs, rows_node_backward, &node, err);
        if (!status && node) {
            node->params[0] = l.outer;
            node->params[1] = l.groups;
            node->params[2] = l.group_channels;
            node->params[3] = l.inner;
            node->params[4] = l.centred;
            node->params[5] = node->params[6] = -1;
            status = gl_node_save(node, dense, err);
            if (!status) status = gl_node_save(node, rstd, err);
            if (!status && l.centred) {
                node->params[5] = node->nsaved;
                status = gl_node_save(node, mean, err);
            }
            if (!status && dense_w) {
                node->params[6] = node->nsaved;
                status = gl_node_save(node, dense_w, err);
            }
        }
    }
    gl_tensor_release(dense);
    gl_tensor_release(dense_w);
    gl_tensor_release(dense_b);
    gl_tensor_release(mean);
    gl_tensor_release(rstd);
    if (status) {
        gl_tensor_release(*out);
        *out = NULL;
    }
    return status;
}

/* ---------------------------------------------------------------- checks */

static gl_status eps_check(const char *name, double eps, int position, gl_error *err)
{
    if (eps > 0.0 && isfinite(eps)) return GL_OK;
    return gl_error_set(err, GL_EARG, position, "%s: eps must be positive and finite, got %g", name, eps);
}

/* weight/bias of layer and RMS norm: NULL or exactly normalized_shape. */
static gl_status affine_shape_check(const char *name, const char *what, int position,
                                    const gl_tensor *v, int ndim, const int64_t *shape, gl_error *err)
{
    char vs[160], want[160];
    if (!v || gl_shape_equal(v->ndim, v->shape, ndim, shape)) return GL_OK;
    return gl_error_set(err, GL_ESHAPE, position, "%s: %s of shape %s does not match normalized_shape %s",
                        name, what, GL_SHAPE_STR(v, vs), gl_shape_format(ndim, shape, want, sizeof want));
}

/* Checks x against normalized_shape and returns its (rows, M) layout. */
static gl_status trailing_layout(const char *name, const gl_tensor *x, int ndim, const int64_t *shape,
                                 bool centred, row_layout *l, gl_error *err)
{
    char xs[160], ns[160];
    if (ndim < 1 || ndim > GL_MAX_DIMS)
        return gl_error_set(err, GL_EARG, 2, "%s: normalized_shape must have 1 to %d sizes, got %d", name,
                            GL_MAX_DIMS, ndim);
    bool fits = ndim <= x->ndim;
    for (int d = 0; fits && d < ndim; d++) fits = x->shape[x->ndim - ndim + d] == shape[d];
    if (!fits)
        return gl_error_set(err, GL_ESHAPE, 1,
                            "%s: input shape %s does not end with normalized_shape %s", name,
                            GL_SHAPE_STR(x, xs), gl_shape_format(ndim, shape, ns, sizeof ns));
    *l = (row_layout){1, 1, 1, 1, centred};
    for (int d = 0; d < x->ndim - ndim; d++) l->outer *= x->shape[d];
    for (int d = 0; d < ndim; d++) l->group_channels *= shape[d];
    return GL_OK;
}

/* ------------------------------------------------------------------- ops */

gl_status gl_layer_norm(const gl_tensor *x, int normalized_ndim, const int64_t *normalized_shape,
                        const gl_tensor *weight, const gl_tensor *bias, double eps,
                        gl_tensor **out, gl_error *err)
{
    *out = NULL;
    row_layout l = {0};
    gl_status status = trailing_layout("layer_norm", x, normalized_ndim, normalized_shape, true, &l, err);
    if (!status) status = affine_shape_check("layer_norm", "weight", 3, weight, normalized_ndim, normalized_shape, err);
    if (!status) status = affine_shape_check("layer_norm", "bias", 4, bias, normalized_ndim, normalized_shape, err);
    if (!status) status = eps_check("layer_norm", eps, 5, err);
    if (status) return status;
    return rows_norm("layer_norm", l, x, weight, bias, eps, out, err);
}

gl_status gl_rms_norm(const gl_tensor *x, int normalized_ndim, const int64_t *normalized_shape,
                      const gl_tensor *weight, double eps, gl_tensor **out, gl_error *err)
{
    *out = NULL;
    row_layout l = {0};
    gl_status status = trailing_layout("rms_norm", x, normalized_ndim, normalized_shape, false, &l, err);
    if (!status) status = affine_shape_check("rms_norm", "weight", 3, weight, normalized_ndim, normalized_shape, err);
    if (!status) status = eps_check("rms_norm", eps, 4, err);
    if (status) return status;
    return rows_norm("rms_norm", l, x, weight, NULL, eps, out, err);
}

gl_status gl_group_norm(const gl_tensor *x, int64_t groups, const gl_tensor *weight,
                        const gl_tensor *bias, double eps, gl_tensor **out, gl_error *err)
{
    char xs[160], vs[160];
    *out = NULL;
    if (x->ndim < 2)
        return gl_error_set(err, GL_ESHAPE, 1,
                            "group_norm: input must be (B, C, ...) with channels on dimension 2, got shape %s",
                            GL_SHAPE_STR(x, xs));
    int64_t C = x->shape[1];
    if (groups < 1)
        return gl_error_set(err, GL_EARG, 2, "group_norm: groups must be positive, got %lld", (long long)groups);
    /* Every group holds at least one channel (0 channels: one empty group);
     * this also keeps batch x groups from overflowing. */
    if (groups > (C > 0 ? C : 1))
        return gl_error_set(err, GL_EARG, 2, "group_norm: %lld groups for %lld channels (input shape %s)",
                            (long long)groups, (long long)C, GL_SHAPE_STR(x, xs));
    if (C % groups != 0)
        return gl_error_set(err, GL_EARG, 2,
                            "group_norm: %lld groups do not divide %lld channels (input shape %s)",
                            (long long)groups, (long long)C, GL_SHAPE_STR(x, xs));
    const gl_tensor *vectors[2] = {weight, bias};
    for (int i = 0; i < 2; i++) {
        const gl_tensor *v = vectors[i];
        if (v && !(v->ndim == 1 && v->shape[0] == C))
            return gl_error_set(err, GL_ESHAPE, 3 + i,
                                "group_norm: %s of shape %s does not match %lld channels (input shape %s)",
                                i ? "bias" : "weight", GL_SHAPE_STR(v, vs), (long long)C, GL_SHAPE_STR(x, xs));
    }
    gl_status status = eps_check("group_norm", eps, 5, err);
    if (status) return status;
    row_layout l = {x->shape[0], groups, C / groups, 1, true};
    for (int d = 2; d < x->ndim; d++) l.inner *= x->shape[d];
    return rows_norm("group_norm", l, x, weight, bias, eps, out, err);
}
