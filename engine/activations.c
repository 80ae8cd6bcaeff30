/*
 * activations.c — activation functions as fused forward/backward kernels.
 *
 *   forward:  y[i] = f(x[i])               x, y: any shape, y contiguous
 *   backward: dx[i] = g[i] * f'(x[i])      f' from x or y in the same pass
 *
 * Each backward reads whichever of x and y gives the derivative cheapest
 * (sigmoid and tanh from y, the rest from x), so one pass suffices.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "autograd.h"
#include "math_fast.h"

static const char *const activation_names[GL_ACTIVATION_COUNT] = {
    [GL_ACT_SIGMOID] = "sigmoid", [GL_ACT_TANH] = "tanh", [GL_ACT_RELU] = "relu",
    [GL_ACT_LEAKY_RELU] = "leaky_relu", [GL_ACT_ELU] = "elu", [GL_ACT_GELU] = "gelu",
    [GL_ACT_SOFTPLUS] = "softplus",
};
_Static_assert(sizeof activation_names / sizeof activation_names[0] == GL_ACTIVATION_COUNT,
               "one name per activation");

const char *gl_activation_name(gl_activation kind)
{
    return kind < GL_ACTIVATION_COUNT ? activation_names[kind] : "?";
}

/* erf by Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7; 5e-7 with the exp
 * below), the formula of PyTorch's Vectorized<float>::erf, written so that
 * GCC vectorizes the GELU loops (glibc's erff is an opaque scalar call). */
static inline int32_t gelu_bits(float x) { int32_t b; memcpy(&b, &x, sizeof b); return b; }
static inline float gelu_float(int32_t b) { float x; memcpy(&x, &b, sizeof x); return x; }
/* e^x for GELU, whose argument is -x^2 (or -0.5 x^2): x >= +0 and a NaN with
 * the sign bit clear (erf of NaN gets here) are evaluated at 0, so the int
 * conversion inside stays in range (a NaN input still gives NaN through the
 * caller's polynomial). */
static inline float gelu_exp_nonpositive(float x)
{
    uint32_t above = -(uint32_t)(gelu_bits(x) >= 0);
    return exp_nonpositive_float(bits_float(float_bits(x) & ~above));
}
static inline float erf_float(float x)
{
    int32_t bits = gelu_bits(x);
    float a = gelu_float(bits & 0x7FFFFFFF);
    float t = 1.0f / (1.0f + 0.3275911f * a);
    float poly = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
    float e = 1.0f - poly * gelu_exp_nonpositive(-a * a);
    return gelu_float(gelu_bits(e) | (bits & (int32_t)0x80000000));
}

/* tanh and sigmoid come from math_fast.h (vectorizable, <= 2.5 ulp); both
 * kernels are compiled per vector width (GL_VECTOR_CLONES). */
GL_VECTOR_CLONES static void activation_forward(gl_activation kind, float parameter, int64_t n,
                               const float *restrict x, float *restrict y)
{
    switch (kind) {
    case GL_ACT_SIGMOID: for (int64_t i = 0; i < n; i++) y[i] = sigmoid_float(x[i]); break;
    case GL_ACT_TANH: for (int64_t i = 0; i < n; i++) y[i] = tanh_float(x[i]); break;
    case GL_ACT_RELU: for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0.0f; break;
    case GL_ACT_LEAKY_RELU:
        for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : parameter * x[i];
        break;
    case GL_ACT_ELU:
        for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : parameter * expm1f(x[i]);
        break;
    case GL_ACT_GELU:
        for (int64_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erf_float(x[i] * (float)M_SQRT1_2));
        break;
    case GL_ACT_SOFTPLUS:
        for (int64_t i = 0; i < n; i++) y[i] = fmaxf(x[i], 0.0f) + log1pf(expf(-fabsf(x[i])));
        break;
    default: break;
    }
}

/* The backward loops; with `squares` (a constant in each caller) they also
 * add up g^2 in float lanes, for a watched backward signal (autograd.h): the
 * loops are bound by their loads and stores, so the multiply-add rides free. */
static inline __attribute__((always_inline)) float backward_body(gl_activation kind, float parameter, int64_t n,
                                                                 const float *restrict g, const float *restrict x,
                                                                 const float *restrict y, float *restrict dx,
                                                                 const bool squares)
{
    float q = 0;
    switch (kind) {
    case GL_ACT_SIGMOID:
#pragma omp simd reduction(+ : q)
        for (int64_t i = 0; i < n; i++) {
            float gi = g[i];
            dx[i] = gi * y[i] * (1.0f - y[i]);
            if (squares) q += gi * gi;
        }
        break;
    case GL_ACT_TANH:
#pragma omp simd reduction(+ : q)
        for (int64_t i = 0; i < n; i++) {
            float gi = g[i];
            dx[i] = gi * (1.0f - y[i] * y[i]);
            if (squares) q += gi * gi;
        }
        break;
    /* Both sides are loaded before the select, so the compiler emits a blend
     * instead of a branch that mispredicts on every other element. */
    case GL_ACT_RELU:
#pragma omp simd reduction(+ : q)
        for (int64_t i = 0; i < n; i++) {
            float gi = g[i];
            dx[i] = x[i] > 0 ? gi : 0.0f;
            if (squares) q += gi * gi;
        }
        break;
    case GL_ACT_LEAKY_RELU:
#pragma omp simd reduction(+ : q)
        for (int64_t i = 0; i < n; i++) {
            float gi = g[i];
            dx[i] = x[i] > 0 ? gi : parameter * gi;
            if (squares) q += gi * gi;
        }
        break;
    case GL_ACT_ELU:
#pragma omp simd reduction(+ : q)
        for (int64_t i = 0; i < n; i++) {
            float gi = g[i], negative = gi * (y[i] + parameter);
            dx[i] = x[i] > 0 ? gi : negative;
            if (squares) q += gi * gi;
        }
        break;
    case GL_ACT_GELU: {
        const float inverse_sqrt_2pi = 0.3989422804014327f;
#pragma omp simd reduction(+ : q)
        for (int64_t i = 0; i < n; i++) {
            float cdf = 0.5f * (1.0f + erf_float(x[i] * (float)M_SQRT1_2));
            float pdf = inverse_sqrt_2pi * gelu_exp_nonpositive(-0.5f * x[i] * x[i]);
            dx[i] = g[i] * (cdf + x[i] * pdf);
            if (squares) q += g[i] * g[i];
        }
        break;
    }
    case GL_ACT_SOFTPLUS:
#pragma omp simd reduction(+ : q)
        for (int64_t i = 0; i < n; i++) {
            float v = x[i];
            float s = v >= 0 ? 1.0f / (1.0f + expf(-v)) : expf(v) / (1.0f + expf(v));
            dx[i] = g[i] * s;
            if (squares) q += g[i] * g[i];
        }
        break;
    default: break;
    }
    return q;
}

GL_VECTOR_CLONES static void activation_backward(gl_activation kind, float parameter, int64_t n,
                                                 const float *restrict g, const float *restrict x,
                                                 const float *restrict y, float *restrict dx)
{
    backward_body(kind, parameter, n, g, x, y, dx, false);
}

/* The same, returning sum g^2: float within blocks of SQUARES_BLOCK, double
 * across them (monitor.c's fast pass does the same). */
enum { SQUARES_BLOCK = 512 };

GL_VECTOR_CLONES static double activation_backward_squares(gl_activation kind, float parameter, int64_t n,
                                                           const float *restrict g, const float *restrict x,
                                                           const float *restrict y, float *restrict dx)
{
    double total = 0;
    for (int64_t i = 0; i < n; i += SQUARES_BLOCK) {
        int64_t m = n - i < SQUARES_BLOCK ? n - i : SQUARES_BLOCK;
        total += backward_body(kind, parameter, m, g + i, x + i, y + i, dx + i, true);
    }
    return total;
}

/* Big tensors go in contiguous slices over the engine's threads (parallel.c):
 * each element's result depends only on that element, so the slices change no
 * bit.  2^17 floats per slice take ~40 us even for ReLU, worth a thread. */
#define ACTIVATION_MIN_PER_PART 131072.0

typedef struct activation_job {
    gl_activation kind;
    float parameter;
    int64_t n;
    int parts;
    const float *g, *x, *y;   /* g NULL: forward (x -> y); else backward into dx */
    float *out;
    bool squares;             /* backward: also sum g^2 per part (a watched signal) */
    double part_squares[GL_PARALLEL_MAX];
} activation_job;

static void activation_part(void *arg, int part)
{
    activation_job *j = arg;
    int64_t i0 = j->n * part / j->parts, i1 = j->n * (part + 1) / j->parts;
    if (j->g && j->squares)
        j->part_squares[part] =
            activation_backward_squares(j->kind, j->parameter, i1 - i0, j->g + i0, j->x + i0, j->y + i0, j->out + i0);
    else if (j->g)
        activation_backward(j->kind, j->parameter, i1 - i0, j->g + i0, j->x + i0, j->y + i0, j->out + i0);
    else
        activation_forward(j->kind, j->parameter, i1 - i0, j->x + i0, j->out + i0);
}

static void activation_run(activation_job *job)
{
    job->parts = gl_parallel_parts((double)job->n, ACTIVATION_MIN_PER_PART, job->n);
    gl_parallel_run(job->parts, activation_part, job);
}

/* Saved: x, y (contiguous).  params[0] = kind; scalars[0] = parameter. */
static gl_status activation_node_backward(gl_node *node, gl_tensor *g, gl_tensor **grads, gl_error *err)
{
    gl_tensor *dense_g = NULL;
    gl_status status = gl_tensor_contiguous_untracked(g, &dense_g, err);
    if (!status) status = gl_tensor_empty(g->ndim, g->shape, &grads[0], err);
    if (!status) {
        activation_job job = {.kind = (gl_activation)node->params[0], .parameter = (float)node->scalars[0],
                              .n = gl_tensor_numel(g), .g = gl_tensor_data(dense_g),
                              .x = gl_tensor_data(node->saved[0]), .y = gl_tensor_data(node->saved[1]),
                              .out = gl_tensor_data(grads[0]), .squares = gl_node_watch_sink(node) != NULL};
        activation_run(&job);
        if (job.squares) {
            double squares = 0;
            for (int part = 0; part < job.parts; part++) squares += job.part_squares[part];   /* fixed order */
            gl_node_watch_done(node, squares, job.n);
        }
    }
    gl_tensor_release(dense_g);
    return status;
}

gl_status gl_tensor_activation(gl_activation kind, const gl_tensor *x, float parameter,
                               gl_tensor **out, gl_error *err)
{
    *out = NULL;
    if (kind >= GL_ACTIVATION_COUNT) return gl_error_set(err, GL_EARG, 0, "activation: unknown kind");
    if (!isfinite(parameter))
        return gl_error_set(err, GL_EARG, 2, "%s: the parameter must be finite, got %g",
                            activation_names[kind], (double)parameter);
    gl_tensor *dense = NULL;
    gl_status status = gl_tensor_contiguous_untracked(x, &dense, err);
    if (!status) status = gl_tensor_empty(x->ndim, x->shape, out, err);
    if (!status) {
        activation_job job = {.kind = kind, .parameter = parameter, .n = gl_tensor_numel(x),
                              .x = gl_tensor_data(dense), .out = gl_tensor_data(*out)};
        activation_run(&job);
        const gl_tensor *inputs[1] = {x};
        gl_node *node = NULL;
        status = gl_op_finish(activation_names[kind], *out, 1, inputs, activation_node_backward, &node, err);
        if (!status && node) {
            node->params[0] = kind;
            node->scalars[0] = parameter;
            node->watch_fused = true;
            status = gl_node_save(node, dense, err);
            if (!status) status = gl_node_save(node, *out, err);
        }
    }
    gl_tensor_release(dense);
    if (status) {
        gl_tensor_release(*out);
        *out = NULL;
    }
    return status;
}

/* ------------------------------------------------------------------ PReLU */

/* Layout of x for a per-channel weight: outer (batch), channels, inner. */
static void channel_layout(const gl_tensor *x, int64_t count, int64_t *outer, int64_t *channels,
                           int64_t *inner)
{
    *outer = 1, *channels = 1, *inner = 1;
    if (count == 1) {
        *inner = gl_tensor_numel(x);
        return;
    }
    if (x->ndim == 1) {   /* a single sample (C) */
        *channels = x->shape[0];
        return;
    }
    *outer = x->shape[0];
    *channels = x->shape[1];
    for (int d = 2; d < x->ndim; d++) *inner *= x->shape[d];
}

/* Saved: x (contiguous), weight (contiguous). */
static gl_status prelu_backward(gl_node *node, gl_tensor *g, gl_tensor **grads, gl_error *err)
{
    const gl_tensor *x = node->saved[0], *w = node->saved[1];
    gl_tensor *dense_g = NULL;
    gl_status status = gl_tensor_contiguous_untracked(g, &dense_g, err);
    if (status) return status;
    int64_t outer, channels, inner, count = gl_tensor_numel(w);
    channel_layout(x, count, &outer, &channels, &inner);
    const float *gv = gl_tensor_data(dense_g), *xv = gl_tensor_data(x), *wv = gl_tensor_data(w);
    bool want_x = gl_node_input_needs_grad(node, 0), want_w = gl_node_input_needs_grad(node, 1);
    if (want_x) status = gl_tensor_empty(x->ndim, x->shape, &grads[0], err);
    if (!status && want_w) status = gl_tensor_zeros(w->ndim, w->shape, &grads[1], err);
    if (!status) {
        float *dx = want_x ? gl_tensor_data(grads[0]) : NULL;
        float *dw = want_w ? gl_tensor_data(grads[1]) : NULL;
        for (int64_t p = 0; p < outer; p++)
            for (int64_t c = 0; c < channels; c++) {
                float slope = wv[count == 1 ? 0 : c];
                double sum = 0.0;
                for (int64_t i = 0; i < inner; i++) {
                    int64_t at = (p * channels + c) * inner + i;
                    bool positive = xv[at] > 0;
                    if (dx) dx[at] = positive ? gv[at] : slope * gv[at];
                    if (!positive) sum += (double)gv[at] * xv[at];
                }
                if (dw) dw[count == 1 ? 0 : c] += (float)sum;
            }
    }
    gl_tensor_release(dense_g);
    return status;
}

gl_status gl_tensor_prelu(const gl_tensor *x, const gl_tensor *weight, gl_tensor **out,
                          gl_error *err)
{
    char xs[160], ws[160];
    *out = NULL;
    int64_t count = gl_tensor_numel(weight);
    int64_t channels = x->ndim >= 2 ? x->shape[1] : (x->ndim == 1 ? x->shape[0] : 1);
    if (weight->ndim != 1 || (count != 1 && count != channels))
        return gl_error_set(err, GL_ESHAPE, 2,
                            "prelu: weight of shape %s must hold 1 slope or one per channel (%lld for input shape %s)",
                            GL_SHAPE_STR(weight, ws), (long long)channels, GL_SHAPE_STR(x, xs));
    gl_tensor *dense = NULL, *dense_w = NULL;
    gl_status status = gl_tensor_contiguous_untracked(x, &dense, err);
    if (!status) status = gl_tensor_contiguous_untracked(weight, &dense_w, err);
    if (!status) status = gl_tensor_empty(x->ndim, x->shape, out, err);
    if (!status) {
        int64_t outer, ch, inner;
        channel_layout(x, count, &outer, &ch, &inner);
        const float *xv = gl_tensor_data(dense), *wv = gl_tensor_data(dense_w);
        float *y = gl_tensor_data(*out);
        for (int64_t p = 0; p < outer; p++)
            for (int64_t c = 0; c < ch; c++) {
                float slope = wv[count == 1 ? 0 : c];
                int64_t base = (p * ch + c) * inner;
                for (int64_t i = 0; i < inner; i++)
                    y[base + i] = xv[base + i] > 0 ? xv[base + i] : slope * xv[base + i];
            }
        const gl_tensor *inputs[2] = {x, weight};
        gl_node *node = NULL;
        status = gl_op_finish("prelu", *out, 2, inputs, prelu_backward, &node, err);
        if (!status && node) {
            status = gl_node_save(node, dense, err);
            if (!status) status = gl_node_save(node, dense_w, err);
        }
    }
    gl_tensor_release(dense);
    gl_tensor_release(dense_w);
    if (status) {
        gl_tensor_release(*out);
        *out = NULL;
    }
    return status;
}

/* ---------------------------------------------------------------- softmax */

/* Softmax over the middle axis of (outer, n, inner); log gives log-softmax. */
static void softmax_forward(const float *x, float *y, int64_t outer, int64_t n, int64_t inner, bool log_space)
{
    for (int64_t p = 0; p < outer; p++)
        for (int64_t i = 0; i < inner; i++) {
            const float *row = x + p * n * inner + i;
            float *out = y + p * n * inner + i;
            float top = -INFINITY;
            for (int64_t k = 0; k < n; k++) top = fmaxf(top, row[k * inner]);
            if (isinf(top) && top < 0) top = 0;   /* all -inf: keep NaN-free arithmetic */
            double total = 0.0;
            for (int64_t k = 0; k < n; k++) total += expf(row[k * inner] - top);
            float log_total = (float)log(total);
            for (int64_t k = 0; k < n; k++) {
                float shifted = row[k * inner] - top;
                out[k * inner] = log_space ? shifted - log_total : expf(shifted - log_total);
            }
        }
}

/* Saved: y.  params: outer, n, inner, log.
 * softmax:     dx = y * (g - sum(g * y))
 * log_softmax: dx = g - exp(y) * sum(g) */
static gl_status softmax_backward(gl_node *node, gl_tensor *g, gl_tensor **grads, gl_error *err)
{
    int64_t outer = node->params[0], n = node->params[1], inner = node->params[2];
    bool log = node->params[3];
    gl_tensor *dense_g = NULL;
    gl_status status = gl_tensor_contiguous_untracked(g, &dense_g, err);
    if (!status) status = gl_tensor_empty(g->ndim, g->shape, &grads[0], err);
    if (status) {
        gl_tensor_release(dense_g);
        return status;
    }
    const float *gv = gl_tensor_data(dense_g), *y = gl_tensor_data(node->saved[0]);
    float *dx = gl_tensor_data(grads[0]);
    for (int64_t p = 0; p < outer; p++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = p * n * inner + i;
            double dot = 0.0;
            for (int64_t k = 0; k < n; k++)
                dot += log ? gv[base + k * inner] : (double)gv[base + k * inner] * y[base + k * inner];
            for (int64_t k = 0; k < n; k++) {
                int64_t at = base + k * inner;
                dx[at] = log ? gv[at] - expf(y[at]) * (float)dot : y[at] * (gv[at] - (float)dot);
            }
        }
    gl_tensor_release(dense_g);
    return GL_OK;
}

gl_status gl_tensor_softmax(const gl_tensor *x, int dim, bool log, gl_tensor **out, gl_error *err)
{
    char buffer[160];
    const char *name = log ? "log_softmax" : "softmax";
    *out = NULL;
    int d = gl_dim_wrap(dim, x->ndim);
    if (d < 0)
        return gl_error_set(err, GL_EINDEX, 2, "%s: dimension %d is out of range for shape %s", name,
                            dim >= 0 ? dim + 1 : dim, GL_SHAPE_STR(x, buffer));
    int64_t outer = 1, inner = 1, n = x->shape[d];
    for (int k = 0; k < d; k++) outer *= x->shape[k];
    for (int k = d + 1; k < x->ndim; k++) inner *= x->shape[k];
    gl_tensor *dense = NULL;
    gl_status status = gl_tensor_contiguous_untracked(x, &dense, err);
    if (!status) status = gl_tensor_empty(x->ndim, x->shape, out, err);
    if (!status) {
        softmax_forward(gl_tensor_data(dense), gl_tensor_data(*out), outer, n, inner, log);
        const gl_tensor *inputs[1] = {x};
        gl_node *node = NULL;
        status = gl_op_finish(name, *out, 1, inputs, softmax_backward, &node, err);
        if (!status && node) {
            node->params[0] = outer, node->params[1] = n, node->params[2] = inner, node->params[3] = log;
            status = gl_node_save(node, *out, err);
        }
    }
    gl_tensor_release(dense);
    if (status) {
        gl_tensor_release(*out);
        *out = NULL;
    }
    return status;
}
