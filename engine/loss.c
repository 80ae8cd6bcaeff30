/*
 * loss.c — losses with fused forward/backward kernels.
 *
 * Each loss computes one value per sample (or element), then reduces:
 * "none" keeps them, "sum" adds them, "mean" averages them (sums in double).
 * Backward turns the output gradient into a per-value factor (g, g/n or g[i])
 * and applies the loss's own derivative in one pass.
 *
 *   mse               pred, target: same shape           (pred - target)^2
 *   cross_entropy     logits (N, C) or (C); labels (N)   logsumexp(z) - z[y]
 *   nll               log-probs (N, C) or (C); labels     -logp[y]
 *   bce               probabilities, targets: same shape  -(t log p + (1-t) log(1-p)), logs >= -100
 *   bce_with_logits   logits, targets: same shape         max(x,0) - x t + log(1 + e^-|x|)
 */
#include <math.h>
#include <stdio.h>

#include "autograd.h"

typedef enum { LOSS_MSE, LOSS_CROSS_ENTROPY, LOSS_NLL, LOSS_BCE, LOSS_BCE_LOGITS } loss_kind;
static const char *const loss_names[] = {"mse", "cross_entropy", "nll", "bce", "bce_with_logits"};

/* Reduces per-sample values into *out as asked. */
static gl_status reduce_values(gl_tensor *values, gl_reduction reduction, gl_tensor **out, gl_error *err)
{
    if (reduction == GL_REDUCTION_NONE) {
        gl_tensor_retain(values);
        *out = values;
        return GL_OK;
    }
    const float *v = gl_tensor_data(values);
    int64_t n = gl_tensor_numel(values);
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) total += v[i];
    if (reduction == GL_REDUCTION_MEAN) total = n ? total / (double)n : NAN;
    return gl_tensor_scalar((float)total, out, err);
}

/* The factor by which value i's derivative is scaled, from the output gradient. */
static inline float value_factor(const float *g, gl_reduction reduction, int64_t n, int64_t i)
{
    if (reduction == GL_REDUCTION_NONE) return g[i];
    return reduction == GL_REDUCTION_MEAN ? g[0] / (float)n : g[0];
}

static gl_status check_same_shape(const char *name, const gl_tensor *a, const gl_tensor *b, gl_error *err)
{
    char as[160], bs[160];
    if (!gl_shape_equal(a->ndim, a->shape, b->ndim, b->shape))
        return gl_error_set(err, GL_ESHAPE, 2, "%s: input has shape %s but target has shape %s; they must match",
                            name, GL_SHAPE_STR(a, as), GL_SHAPE_STR(b, bs));
    return GL_OK;
}

/* Checks labels against (N, C) scores and returns them 0-based in a new tensor. */
static gl_status check_labels(const char *name, const gl_tensor *scores, const gl_tensor *labels, int base,
                              int64_t *samples, int64_t *classes, gl_tensor **positions, gl_error *err)
{
    char ss[160], ls[160];
    *positions = NULL;
    if (scores->ndim != 1 && scores->ndim != 2)
        return gl_error_set(err, GL_ESHAPE, 1, "%s: input must be (batch, classes) or (classes), got shape %s",
                            name, GL_SHAPE_STR(scores, ss));
    *samples = scores->ndim == 2 ? scores->shape[0] : 1;
    *classes = scores->shape[scores->ndim - 1];
    if (gl_tensor_numel(labels) != *samples || (scores->ndim == 2 && labels->ndim != 1) || labels->ndim > 1)
        return gl_error_set(err, GL_ESHAPE, 2, "%s: labels of shape %s do not match input of shape %s (want one label per row)",
                            name, GL_SHAPE_STR(labels, ls), GL_SHAPE_STR(scores, ss));
    gl_status status = gl_tensor_clone_untracked(labels, positions, err);
    if (status) return status;
    float *p = gl_tensor_data(*positions);
    for (int64_t i = 0; i < *samples; i++) {
        float y = p[i];
        if (y != floorf(y) || y < (float)base || y >= (float)(base + *classes)) {
            gl_tensor_release(*positions);
            *positions = NULL;
            return gl_error_set(err, GL_EINDEX, 2,
                                "%s: label %g at position %lld is not a class index in %d..%lld (%lld classes)",
                                name, (double)y, (long long)i + 1, base, (long long)(base + *classes - 1),
                                (long long)*classes);
        }
        p[i] = y - (float)base;
    }
    return GL_OK;
}

/* params: kind, reduction.  Saved per kind:
 *   mse: pred, target            cross_entropy: softmax (N, C), positions
 *   nll: input, positions        bce: p, target        bce_with_logits: x, target */
static gl_status loss_backward(gl_node *node, gl_tensor *g, gl_tensor **grads, gl_error *err)
{
    loss_kind kind = (loss_kind)node->params[0];
    gl_reduction reduction = (gl_reduction)node->params[1];
    gl_tensor *dense_g = NULL;
    gl_status status = gl_tensor_contiguous_untracked(g, &dense_g, err);
    if (status) return status;
    const float *gv = gl_tensor_data(dense_g);
    const gl_tensor *a = node->saved[0], *b = node->saved[1];
    const float *av = gl_tensor_data(a), *bv = gl_tensor_data(b);
    bool want_a = gl_node_input_needs_grad(node, 0), want_b = gl_node_input_needs_grad(node, 1);
    if (want_a) status = gl_tensor_zeros(node->inputs[0].ndim, node->inputs[0].shape, &grads[0], err);
    if (!status && want_b && (kind == LOSS_MSE || kind == LOSS_BCE || kind == LOSS_BCE_LOGITS))
        status = gl_tensor_zeros(node->inputs[1].ndim, node->inputs[1].shape, &grads[1], err);
    if (status) {
        gl_tensor_release(dense_g);
        return status;
    }
    float *da = want_a ? gl_tensor_data(grads[0]) : NULL;
    float *db = node->ninputs > 1 && grads[1] ? gl_tensor_data(grads[1]) : NULL;
    if (kind == LOSS_CROSS_ENTROPY || kind == LOSS_NLL) {
        int64_t samples = gl_tensor_numel(b), classes = gl_tensor_numel(a) / (samples ? samples : 1);
        for (int64_t i = 0; i < samples && da; i++) {
            float f = value_factor(gv, reduction, samples, i);
            int64_t y = (int64_t)bv[i];
            if (kind == LOSS_CROSS_ENTROPY)
                for (int64_t c = 0; c < classes; c++) da[i * classes + c] = f * av[i * classes + c];
            da[i * classes + y] -= f;
        }
    } else {
        int64_t n = gl_tensor_numel(a);
        for (int64_t i = 0; i < n; i++) {
            float f = value_factor(gv, reduction, n, i), x = av[i], t = bv[i];
            float dx = 0, dt = 0;
            switch (kind) {
            case LOSS_MSE: dx = 2.0f * (x - t), dt = -dx; break;
            case LOSS_BCE:
                dx = (x - t) / fmaxf(x * (1.0f - x), 1e-12f);
                dt = fmaxf(logf(1.0f - x), -100.0f) - fmaxf(logf(x), -100.0f);
                break;
            default: {   /* with logits */
                float s = x >= 0 ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x));
                dx = s - t, dt = -x;
                break;
            }
            }
            if (da) da[i] = f * dx;
            if (db) db[i] = f * dt;
        }
    }
    gl_tensor_release(dense_g);
    return GL_OK;
}

/* Shared tail: reduce, record, save. */
static gl_status loss_finish(loss_kind kind, gl_reduction reduction, gl_tensor *values, const gl_tensor *input,
                             const gl_tensor *target, gl_tensor *save_a, gl_tensor *save_b, gl_tensor **out,
                             gl_error *err)
{
    gl_status status = reduce_values(values, reduction, out, err);
    if (status) return status;
    const gl_tensor *inputs[2] = {input, target};
    bool labels = kind == LOSS_CROSS_ENTROPY || kind == LOSS_NLL;
    gl_node *node = NULL;
    status = gl_op_finish(loss_names[kind], *out, labels ? 1 : 2, inputs, loss_backward, &node, err);
    if (!status && node) {
        node->params[0] = kind;
        node->params[1] = reduction;
        status = gl_node_save(node, save_a, err);
        if (!status) status = gl_node_save(node, save_b, err);
    }
    if (status) {
        gl_tensor_release(*out);
        *out = NULL;
    }
    return status;
}

static gl_status check_reduction(const char *name, gl_reduction reduction, gl_error *err)
{
    if (reduction < GL_REDUCTION_MEAN || reduction > GL_REDUCTION_NONE)
        return gl_error_set(err, GL_EARG, 3, "%s: reduction must be mean, sum or none", name);
    return GL_OK;
}

/* mse, bce and bce_with_logits: elementwise over two tensors of one shape. */
static gl_status elementwise_loss(loss_kind kind, const gl_tensor *input, const gl_tensor *target,
                                  gl_reduction reduction, gl_tensor **out, gl_error *err)
{
    const char *name = loss_names[kind];
    *out = NULL;
    gl_status status = check_reduction(name, reduction, err);
    if (!status) status = check_same_shape(name, input, target, err);
    if (status) return status;
    gl_tensor *x = NULL, *t = NULL, *values = NULL;
    status = gl_tensor_contiguous_untracked(input, &x, err);
    if (!status) status = gl_tensor_contiguous_untracked(target, &t, err);
    if (!status) status = gl_tensor_empty(input->ndim, input->shape, &values, err);
    if (!status) {
        const float *xv = gl_tensor_data(x), *tv = gl_tensor_data(t);
        float *v = gl_tensor_data(values);
        int64_t n = gl_tensor_numel(x);
        for (int64_t i = 0; i < n && !status; i++) {
            float p = xv[i], y = tv[i];
            switch (kind) {
            case LOSS_MSE: v[i] = (p - y) * (p - y); break;
            case LOSS_BCE:
                if (!(p >= 0.0f && p <= 1.0f))
                    status = gl_error_set(err, GL_EARG, 1,
                                          "bce: input must hold probabilities in [0, 1], got %g at position %lld (use bce_with_logits for raw scores)",
                                          (double)p, (long long)i + 1);
                v[i] = -(y * fmaxf(logf(p), -100.0f) + (1.0f - y) * fmaxf(logf(1.0f - p), -100.0f));
                break;
            default: v[i] = fmaxf(p, 0.0f) - p * y + log1pf(expf(-fabsf(p))); break;
            }
        }
    }
    if (!status) status = loss_finish(kind, reduction, values, input, target, x, t, out, err);
    gl_tensor_release(x);
    gl_tensor_release(t);
    gl_tensor_release(values);
    return status;
}

gl_status gl_loss_mse(const gl_tensor *prediction, const gl_tensor *target, gl_reduction reduction,
                      gl_tensor **out, gl_error *err)
{
    return elementwise_loss(LOSS_MSE, prediction, target, reduction, out, err);
}

gl_status gl_loss_bce(const gl_tensor *probabilities, const gl_tensor *target, gl_reduction reduction,
                      gl_tensor **out, gl_error *err)
{
    return elementwise_loss(LOSS_BCE, probabilities, target, reduction, out, err);
}

gl_status gl_loss_bce_with_logits(const gl_tensor *logits, const gl_tensor *target,
                                  gl_reduction reduction, gl_tensor **out, gl_error *err)
{
    return elementwise_loss(LOSS_BCE_LOGITS, logits, target, reduction, out, err);
}

/* cross_entropy and nll: one value per row of (N, C) scores. */
static gl_status label_loss(loss_kind kind, const gl_tensor *input, const gl_tensor *labels, int base,
                            gl_reduction reduction, gl_tensor **out, gl_error *err)
{
    const char *name = loss_names[kind];
    int64_t samples = 0, classes = 0;
    gl_tensor *positions = NULL, *x = NULL, *values = NULL, *saved = NULL;
    *out = NULL;
    gl_status status = check_reduction(name, reduction, err);
    if (!status) status = check_labels(name, input, labels, base, &samples, &classes, &positions, err);
    if (!status) status = gl_tensor_contiguous_untracked(input, &x, err);
    int64_t shape[1] = {samples};
    if (!status) status = gl_tensor_empty(input->ndim == 2 ? 1 : 0, shape, &values, err);
    if (!status && kind == LOSS_CROSS_ENTROPY)
        status = gl_tensor_empty(input->ndim, input->shape, &saved, err);
    if (!status) {
        const float *xv = gl_tensor_data(x), *yv = gl_tensor_data(positions);
        float *v = gl_tensor_data(values);
        for (int64_t i = 0; i < samples; i++) {
            const float *row = xv + i * classes;
            int64_t y = (int64_t)yv[i];
            if (kind == LOSS_NLL) {
                v[i] = -row[y];
                continue;
            }
            /* log-softmax, max-shifted: exp never overflows. */
            float top = -INFINITY;
            for (int64_t c = 0; c < classes; c++) top = fmaxf(top, row[c]);
            double total = 0.0;
            for (int64_t c = 0; c < classes; c++) total += exp((double)(row[c] - top));
            double log_total = log(total);
            v[i] = (float)(log_total - (double)(row[y] - top));
            float *probabilities = gl_tensor_data(saved) + i * classes;
            for (int64_t c = 0; c < classes; c++)
                probabilities[c] = (float)exp((double)(row[c] - top) - log_total);
        }
        status = loss_finish(kind, reduction, values, input, labels, kind == LOSS_NLL ? x : saved, positions,
                             out, err);
    }
    gl_tensor_release(positions);
    gl_tensor_release(x);
    gl_tensor_release(values);
    gl_tensor_release(saved);
    return status;
}

gl_status gl_loss_cross_entropy(const gl_tensor *logits, const gl_tensor *labels, int label_base,
                                gl_reduction reduction, gl_tensor **out, gl_error *err)
{
    return label_loss(LOSS_CROSS_ENTROPY, logits, labels, label_base, reduction, out, err);
}

gl_status gl_loss_nll(const gl_tensor *log_probabilities, const gl_tensor *labels, int label_base,
                      gl_reduction reduction, gl_tensor **out, gl_error *err)
{
    return label_loss(LOSS_NLL, log_probabilities, labels, label_base, reduction, out, err);
}
