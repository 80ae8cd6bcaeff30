/*
 * pool.c — max, average and global average pooling over the planes of NCHW tensors.
 *
 *   x (B, C, H, W) or (C, H, W), seen as B C planes of H x W   ->   y (B, C, OH, OW)
 *   window of output (oh, ow): rows oh sh - ph + i dh (i < kh), columns ow sw - pw + j dw (j < kw)
 *   OH = floor or ceil((H + 2 ph - dh (kh - 1) - 1) / sh) + 1, PyTorch's rule: in ceil mode a
 *        last window must start inside the input or its left padding.
 *   max:     y = max over the window's in-range positions (NaN wins), argmax saved
 *            dx[argmax] += dy
 *   average: y = sum over the in-range positions / divisor,  dx[window] += dy / divisor
 *            divisor = window clipped to the padded input (count_include_pad), or to the input
 *   global:  y (B, C) = mean over H W,  dx = dy / (H W)
 *
 * Pooling moves little data per output, so the kernels are direct loops; the
 * one trick is that max pooling keeps the argmax of every output (a float
 * tensor: plane positions below 2^24 are exact) so backward is a scatter.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd.h"
#include "norm_sums.h"

/* Largest plane whose positions float32 still holds exactly. */
#define POOL_MAX_PLANE ((int64_t)1 << 24)

typedef struct pool_geometry {
    int64_t planes, h, w, oh, ow;
} pool_geometry;

gl_pool2d_options gl_pool2d_defaults(int64_t kh, int64_t kw)
{
    return (gl_pool2d_options){{kh, kw}, {kh, kw}, {0, 0}, {1, 1}, false, true};
}

static int64_t div_floor(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

static int64_t pool_output_size(int64_t in, int64_t k, int64_t pad, int64_t stride, int64_t dilation,
                                bool ceil_mode)
{
    int64_t out = div_floor(in + 2 * pad - dilation * (k - 1) - 1 + (ceil_mode ? stride - 1 : 0), stride) + 1;
    if (ceil_mode && (out - 1) * stride >= in + pad) out--;
    return out;
}

/* Checks x's shape (ndim sizes) against the options; fills the geometry. */
static gl_status pool_check(const char *op, int ndim, const int64_t *shape, const gl_pool2d_options *o,
                            bool dilation_allowed, pool_geometry *g, gl_error *err)
{
    char xs[160];
    gl_shape_format(ndim, shape, xs, sizeof xs);
    if (ndim != 4 && ndim != 3)
        return gl_error_set(err, GL_ESHAPE, 1, "%s: input must be (B, C, H, W) or (C, H, W), got shape %s", op, xs);
    static const char *const names[] = {"kernel size", "stride", "dilation"};
    const int64_t *pairs[] = {o->kernel, o->stride, o->dilation};
    for (int k = 0; k < 3; k++)
        if (pairs[k][0] < 1 || pairs[k][1] < 1 || pairs[k][0] > INT32_MAX || pairs[k][1] > INT32_MAX)
            return gl_error_set(err, GL_EARG, 2, "%s: %s must be a positive integer, got (%lld, %lld)", op,
                                names[k], (long long)pairs[k][0], (long long)pairs[k][1]);
    if (!dilation_allowed && (o->dilation[0] != 1 || o->dilation[1] != 1))
        return gl_error_set(err, GL_EARG, 2, "%s: dilation is not supported (only max pooling dilates), got (%lld, %lld)",
                            op, (long long)o->dilation[0], (long long)o->dilation[1]);
    for (int d = 0; d < 2; d++)
        if (o->padding[d] < 0 || o->padding[d] > o->kernel[d] / 2)
            return gl_error_set(err, GL_EARG, 2,
                                "%s: padding must be between 0 and half the kernel size, got padding (%lld, %lld) for kernel (%lld, %lld)",
                                op, (long long)o->padding[0], (long long)o->padding[1], (long long)o->kernel[0],
                                (long long)o->kernel[1]);
    int lead = ndim - 3;
    g->planes = (lead ? shape[0] : 1) * shape[lead];
    g->h = shape[lead + 1];
    g->w = shape[lead + 2];
    g->oh = pool_output_size(g->h, o->kernel[0], o->padding[0], o->stride[0], o->dilation[0], o->ceil_mode);
    g->ow = pool_output_size(g->w, o->kernel[1], o->padding[1], o->stride[1], o->dilation[1], o->ceil_mode);
    if (g->oh < 1 || g->ow < 1)
        return gl_error_set(err, GL_ESHAPE, 1,
                            "%s: input too small: %lldx%lld with kernel (%lld, %lld), stride (%lld, %lld), padding (%lld, %lld), dilation (%lld, %lld) gives an output of %lldx%lld (input shape %s)",
                            op, (long long)g->h, (long long)g->w, (long long)o->kernel[0], (long long)o->kernel[1],
                            (long long)o->stride[0], (long long)o->stride[1], (long long)o->padding[0],
                            (long long)o->padding[1], (long long)o->dilation[0], (long long)o->dilation[1],
                            (long long)g->oh, (long long)g->ow, xs);
    return GL_OK;
}

static void output_shape(int ndim, const int64_t *in, const pool_geometry *g, int64_t *shape)
{
    memcpy(shape, in, sizeof(int64_t) * (size_t)ndim);
    shape[ndim - 2] = g->oh;
    shape[ndim - 1] = g->ow;
}

/* Options in node params [0, 10) and back: kernel, stride, padding, dilation pairs, flags. */
static void options_store(gl_node *node, const gl_pool2d_options *o)
{
    for (int d = 0; d < 2; d++) {
        node->params[d] = o->kernel[d];
        node->params[2 + d] = o->stride[d];
        node->params[4 + d] = o->padding[d];
        node->params[6 + d] = o->dilation[d];
    }
    node->params[8] = o->ceil_mode;
    node->params[9] = o->count_include_pad;
}

static gl_pool2d_options options_load(const gl_node *node)
{
    gl_pool2d_options o;
    for (int d = 0; d < 2; d++) {
        o.kernel[d] = node->params[d];
        o.stride[d] = node->params[2 + d];
        o.padding[d] = node->params[4 + d];
        o.dilation[d] = node->params[6 + d];
    }
    o.ceil_mode = node->params[8] != 0;
    o.count_include_pad = node->params[9] != 0;
    return o;
}

/* ------------------------------------------------------------ max pooling */

/* y and the argmax (plane position, -1 for a window wholly in padding) of every output. */
static void max_pool_forward(const pool_geometry *g, const gl_pool2d_options *o, const float *restrict x,
                             float *restrict y, float *restrict argmax)
{
    int64_t in_plane = g->h * g->w, out_plane = g->oh * g->ow;
    for (int64_t p = 0; p < g->planes; p++) {
        const float *plane = x + p * in_plane;
        float *yp = y + p * out_plane, *ap = argmax + p * out_plane;
        for (int64_t oh = 0; oh < g->oh; oh++) {
            int64_t h0 = oh * o->stride[0] - o->padding[0];
            for (int64_t ow = 0; ow < g->ow; ow++) {
                int64_t w0 = ow * o->stride[1] - o->padding[1];
                float best = -INFINITY;
                int64_t at = -1;
                for (int64_t i = 0; i < o->kernel[0]; i++) {
                    int64_t ih = h0 + i * o->dilation[0];
                    if (ih < 0 || ih >= g->h) continue;
                    for (int64_t j = 0; j < o->kernel[1]; j++) {
                        int64_t iw = w0 + j * o->dilation[1];
                        if (iw < 0 || iw >= g->w) continue;
                        float v = plane[ih * g->w + iw];
                        /* As PyTorch: the first maximum wins ties; a NaN wins over numbers. */
                        if (v > best || isnan(v) || at < 0) {
                            best = v;
                            at = ih * g->w + iw;
                        }
                    }
                }
                yp[oh * g->ow + ow] = best;
                ap[oh * g->ow + ow] = (float)at;
            }
        }
    }
}

/* dx (zeroed) [argmax] += dy */
static void max_pool_backward(const pool_geometry *g, const float *restrict dy, const float *restrict argmax,
                              float *restrict dx)
{
    int64_t in_plane = g->h * g->w, out_plane = g->oh * g->ow;
    for (int64_t p = 0; p < g->planes; p++) {
        const float *gp = dy + p * out_plane, *ap = argmax + p * out_plane;
        float *dp = dx + p * in_plane;
        for (int64_t q = 0; q < out_plane; q++)
            if (ap[q] >= 0) dp[(int64_t)ap[q]] += gp[q];
    }
}

/* Saved: the argmax (shaped like the output).  Options in params. */
static gl_status max_pool_node_backward(gl_node *node, gl_tensor *grad, gl_tensor **grads, gl_error *err)
{
    gl_pool2d_options o = options_load(node);
    pool_geometry g;
    gl_status status = pool_check("max_pool2d", node->inputs[0].ndim, node->inputs[0].shape, &o, true, &g, err);
    gl_tensor *dense_g = NULL;
    if (!status) status = gl_tensor_contiguous_untracked(grad, &dense_g, err);
    if (!status) status = gl_tensor_zeros(node->inputs[0].ndim, node->inputs[0].shape, &grads[0], err);
    if (!status)
        max_pool_backward(&g, gl_tensor_data(dense_g), gl_tensor_data(node->saved[0]), gl_tensor_data(grads[0]));
    gl_tensor_release(dense_g);
    return status;
}

gl_status gl_max_pool2d(const gl_tensor *x, const gl_pool2d_options *options, gl_tensor **out,
                        gl_tensor **indices, int index_base, gl_error *err)
{
    char xs[160];
    *out = NULL;
    if (indices) *indices = NULL;
    if (!options) return gl_error_set(err, GL_EARG, 2, "max_pool2d: options (the kernel size at least) are required");
    pool_geometry g;
    gl_status status = pool_check("max_pool2d", x->ndim, x->shape, options, true, &g, err);
    if (status) return status;
    if (g.h * g.w > POOL_MAX_PLANE)
        return gl_error_set(err, GL_ESHAPE, 1,
                            "max_pool2d: planes of %lldx%lld exceed 2^24 positions, beyond which float32 argmax indices are inexact (input shape %s)",
                            (long long)g.h, (long long)g.w, GL_SHAPE_STR(x, xs));
    int64_t shape[4];
    output_shape(x->ndim, x->shape, &g, shape);
    gl_tensor *dense = NULL, *argmax = NULL;
    status = gl_tensor_contiguous_untracked(x, &dense, err);
    if (!status) status = gl_tensor_empty(x->ndim, shape, &argmax, err);
    if (!status) status = gl_tensor_empty(x->ndim, shape, out, err);
    if (!status) {
        max_pool_forward(&g, options, gl_tensor_data(dense), gl_tensor_data(*out), gl_tensor_data(argmax));
        const gl_tensor *inputs[1] = {x};
        gl_node *node = NULL;
        status = gl_op_finish("max_pool2d", *out, 1, inputs, max_pool_node_backward, &node, err);
        if (!status && node) {
            options_store(node, options);
            status = gl_node_save(node, argmax, err);
        }
    }
    if (!status && indices) {
        if (index_base == 0) {
            gl_tensor_retain(argmax);
            *indices = argmax;
        } else if (!(status = gl_tensor_empty(x->ndim, shape, indices, err))) {
            /* A copy: the saved argmax stays 0-based for backward. */
            const float *a = gl_tensor_data(argmax);
            float *dst = gl_tensor_data(*indices);
            int64_t n = gl_tensor_numel(argmax);
            for (int64_t i = 0; i < n; i++) dst[i] = a[i] + (float)index_base;
        }
    }
    gl_tensor_release(dense);
    gl_tensor_release(argmax);
    if (status) {
        gl_tensor_release(*out);
        *out = NULL;
    }
    return status;
}

/* -------------------------------------------------------- average pooling */

/* The divisor of the window starting at (h0, w0), and its in-range bounds. */
typedef struct avg_window {
    int64_t h0, h1, w0, w1;
    float scale;   /* 1 / divisor */
} avg_window;

static avg_window avg_window_at(const pool_geometry *g, const gl_pool2d_options *o, int64_t oh, int64_t ow)
{
    avg_window a;
    int64_t hs = oh * o->stride[0] - o->padding[0], ws = ow * o->stride[1] - o->padding[1];
    int64_t he = hs + o->kernel[0], we = ws + o->kernel[1];
    if (he > g->h + o->padding[0]) he = g->h + o->padding[0];
    if (we > g->w + o->padding[1]) we = g->w + o->padding[1];
    int64_t padded = (he - hs) * (we - ws);
    a.h0 = hs < 0 ? 0 : hs;
    a.w0 = ws < 0 ? 0 : ws;
    a.h1 = he < g->h ? he : g->h;
    a.w1 = we < g->w ? we : g->w;
    int64_t inside = (a.h1 - a.h0) * (a.w1 - a.w0);
    int64_t divisor = o->count_include_pad ? padded : inside;
    a.scale = divisor > 0 ? 1.0f / (float)divisor : 0.0f;
    return a;
}

/* Plane by plane, so reads stay within one plane; the window is a few integer ops. */
static void avg_pool_forward(const pool_geometry *g, const gl_pool2d_options *o, const float *restrict x,
                             float *restrict y)
{
    int64_t in_plane = g->h * g->w, out_plane = g->oh * g->ow;
    for (int64_t p = 0; p < g->planes; p++) {
        const float *plane = x + p * in_plane;
        float *yp = y + p * out_plane;
        for (int64_t oh = 0; oh < g->oh; oh++)
            for (int64_t ow = 0; ow < g->ow; ow++) {
                avg_window a = avg_window_at(g, o, oh, ow);
                float s = 0.0f;
                for (int64_t ih = a.h0; ih < a.h1; ih++)
                    for (int64_t iw = a.w0; iw < a.w1; iw++) s += plane[ih * g->w + iw];
                yp[oh * g->ow + ow] = s * a.scale;
            }
    }
}

static void avg_pool_backward(const pool_geometry *g, const gl_pool2d_options *o, const float *restrict dy,
                              float *restrict dx)
{
    int64_t in_plane = g->h * g->w, out_plane = g->oh * g->ow;
    for (int64_t p = 0; p < g->planes; p++) {
        float *plane = dx + p * in_plane;
        const float *gp = dy + p * out_plane;
        for (int64_t oh = 0; oh < g->oh; oh++)
            for (int64_t ow = 0; ow < g->ow; ow++) {
                avg_window a = avg_window_at(g, o, oh, ow);
                float v = gp[oh * g->ow + ow] * a.scale;
                for (int64_t ih = a.h0; ih < a.h1; ih++)
                    for (int64_t iw = a.w0; iw < a.w1; iw++) plane[ih * g->w + iw] += v;
            }
    }
}

/* Nothing saved: the options in params and the input's shape say it all. */
static gl_status avg_pool_node_backward(gl_node *node, gl_tensor *grad, gl_tensor **grads, gl_error *err)
{
    gl_pool2d_options o = options_load(node);
    pool_geometry g;
    gl_status status = pool_check("avg_pool2d", node->inputs[0].ndim, node->inputs[0].shape, &o, false, &g, err);
    gl_tensor *dense_g = NULL;
    if (!status) status = gl_tensor_contiguous_untracked(grad, &dense_g, err);
    if (!status) status = gl_tensor_zeros(node->inputs[0].ndim, node->inputs[0].shape, &grads[0], err);
    if (!status) avg_pool_backward(&g, &o, gl_tensor_data(dense_g), gl_tensor_data(grads[0]));
    gl_tensor_release(dense_g);
    return status;
}

gl_status gl_avg_pool2d(const gl_tensor *x, const gl_pool2d_options *options, gl_tensor **out,
                        gl_error *err)
{
    *out = NULL;
    if (!options) return gl_error_set(err, GL_EARG, 2, "avg_pool2d: options (the kernel size at least) are required");
    pool_geometry g;
    gl_status status = pool_check("avg_pool2d", x->ndim, x->shape, options, false, &g, err);
    if (status) return status;
    int64_t shape[4];
    output_shape(x->ndim, x->shape, &g, shape);
    gl_tensor *dense = NULL;
    status = gl_tensor_contiguous_untracked(x, &dense, err);
    if (!status) status = gl_tensor_empty(x->ndim, shape, out, err);
    if (!status) {
        avg_pool_forward(&g, options, gl_tensor_data(dense), gl_tensor_data(*out));
        const gl_tensor *inputs[1] = {x};
        gl_node *node = NULL;
        status = gl_op_finish("avg_pool2d", *out, 1, inputs, avg_pool_node_backward, &node, err);
        if (!status && node) options_store(node, options);
    }
    gl_tensor_release(dense);
    if (status) {
        gl_tensor_release(*out);
        *out = NULL;
    }
    return status;
}

/* ------------------------------------------------- global average pooling */

/* params[0] = positions per plane (H W). */
static gl_status global_avg_pool_backward(gl_node *node, gl_tensor *grad, gl_tensor **grads, gl_error *err)
{
    int64_t inner = node->params[0];
    gl_tensor *dense_g = NULL;
    gl_status status = gl_tensor_contiguous_untracked(grad, &dense_g, err);
    if (!status) status = gl_tensor_empty(node->inputs[0].ndim, node->inputs[0].shape, &grads[0], err);
    if (!status) {
        const float *gv = gl_tensor_data(dense_g);
        float *dx = gl_tensor_data(grads[0]);
        int64_t planes = gl_tensor_numel(dense_g);
        float scale = 1.0f / (float)inner;
        for (int64_t p = 0; p < planes; p++) {
            float v = gv[p] * scale;
            for (int64_t i = 0; i < inner; i++) dx[p * inner + i] = v;
        }
    }
    gl_tensor_release(dense_g);
    return status;
}

gl_status gl_global_avg_pool2d(const gl_tensor *x, bool keepdim, gl_tensor **out, gl_error *err)
{
    char xs[160];
    *out = NULL;
    if (x->ndim != 4 && x->ndim != 3)
        return gl_error_set(err, GL_ESHAPE, 1, "global_avg_pool2d: input must be (B, C, H, W) or (C, H, W), got shape %s",
                            GL_SHAPE_STR(x, xs));
    int64_t inner = x->shape[x->ndim - 2] * x->shape[x->ndim - 1];
    if (inner == 0)
        return gl_error_set(err, GL_ESHAPE, 1, "global_avg_pool2d: input has no positions to average (input shape %s)",
                            GL_SHAPE_STR(x, xs));
    int64_t shape[4];
    memcpy(shape, x->shape, sizeof shape);
    int ndim = keepdim ? x->ndim : x->ndim - 2;
    if (keepdim) shape[x->ndim - 2] = shape[x->ndim - 1] = 1;
    gl_tensor *dense = NULL;
    gl_status status = gl_tensor_contiguous_untracked(x, &dense, err);
    if (!status) status = gl_tensor_empty(ndim, shape, out, err);
    if (!status) {
        const float *xv = gl_tensor_data(dense);
        float *y = gl_tensor_data(*out);
        int64_t planes = gl_tensor_numel(*out);
        for (int64_t p = 0; p < planes; p++) y[p] = (float)(norm_sum(xv + p * inner, inner) / (double)inner);
        const gl_tensor *inputs[1] = {x};
        gl_node *node = NULL;
        status = gl_op_finish("global_avg_pool2d", *out, 1, inputs, global_avg_pool_backward, &node, err);
        if (!status && node) node->params[0] = inner;
    }
    gl_tensor_release(dense);
    if (status) {
        gl_tensor_release(*out);
        *out = NULL;
    }
    return status;
}
