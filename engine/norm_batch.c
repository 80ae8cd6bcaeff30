/*
 * norm_batch.c — batch normalization as one fused forward/backward pair.
 *
 *   x (B, C, *)   weight, bias (C) or NULL   running_mean, running_var (C) or NULL
 *   -> y (B, C, *)            statistics per channel c over its N = B * prod(*) values
 *   mean, rstd (C)            saved for backward, as llm.c's layernorm saves them
 *
 *   train:    mean = sum x / N,  var = sum (x - mean)^2 / N  (biased: it normalizes)
 *             running_mean = (1 - m) running_mean + m mean
 *             running_var  = (1 - m) running_var  + m var N / (N - 1)   (unbiased, as PyTorch)
 *   evaluate: mean, var = running_mean, running_var
 *   forward:  rstd = 1 / sqrt(var + eps),  y = (x - mean) rstd w + b
 *   backward: xhat = (x - mean) rstd,  db = sum g,  dw = sum g xhat   (sums over b and *)
 *             train:    dx = w rstd (g - db / N - xhat dw / N)   (through the batch statistics)
 *             evaluate: dx = w rstd g                            (a plain affine map)
 *
 * Statistics and the parameter sums accumulate in double; two passes (mean,
 * then centred squares) keep the variance exact when |mean| >> std.  The naive
 * references live in spec/norm_spec.lua, where they serve as oracles: the
 * formulas in Lua doubles and in NumPy for values, and the same formulas
 * composed from primitive tensor ops, whose autograd the fused backward must
 * reproduce.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "autograd.h"
#include "internal.h"
#include "math_fast.h"
#include "norm_sums.h"

/* x (B, C, *) seen as (outer, channels, inner). */
typedef struct bn_layout {
    int64_t outer, channels, inner;
} bn_layout;

static bn_layout bn_layout_of(const gl_tensor *x)
{
    bn_layout l = {x->shape[0], x->shape[1], 1};
    for (int d = 2; d < x->ndim; d++) l.inner *= x->shape[d];
    return l;
}

/* Reads a 1-d tensor of any stride into a float array. */
static void vector_read(const gl_tensor *v, float *out)
{
    const float *p = gl_tensor_data(v);
    int64_t n = v->shape[0], s = v->stride[0];
    for (int64_t i = 0; i < n; i++) out[i] = p[i * s];
}

/* ------------------------------------------------------------ run sums */

/* Sums along one contiguous run (a channel's plane of one sample), in 16 double lanes:
 * element k of each block of 16 goes to lane k, the last block is padded with zeros, and
 * the lanes are added in a fixed tree.  GCC leaves the 8-lane loops of norm_sums.h scalar
 * here (float-to-double conversions), ~2.7 cycles a value, which made these sums most of
 * BatchNorm's time; the AVX-512 versions do the same additions lane for lane (multiply,
 * then add: no contraction), so both paths give the same bits. */
enum { RUN_LANES = 16 };

static double run_lanes_total(const double *a)
{
    double h[8];
    for (int k = 0; k < 8; k++) h[k] = a[k] + a[k + 8];
    return ((h[0] + h[4]) + (h[2] + h[6])) + ((h[1] + h[5]) + (h[3] + h[7]));
}

#if defined(__x86_64__) && defined(__GNUC__)
#define RUN_SUMS_AVX512 1
#include <immintrin.h>
#define RUN_TARGET __attribute__((target("avx512f")))

static bool run_sums_fast(void) { return __builtin_cpu_supports("avx512f"); }

/* The 16 floats of the block at i (zeros past n). */
RUN_TARGET static inline __m512 run_block(const float *p, int64_t i, int64_t n)
{
    int64_t left = n - i;
    return left >= RUN_LANES ? _mm512_loadu_ps(p + i)
                             : _mm512_maskz_loadu_ps((__mmask16)((1u << left) - 1u), p + i);
}

RUN_TARGET static inline void run_store(__m512d lo, __m512d hi, double *out)
{
    double a[RUN_LANES];
    _mm512_storeu_pd(a, lo);
    _mm512_storeu_pd(a + 8, hi);
    *out = run_lanes_total(a);
}

RUN_TARGET static double run_sum_avx512(const float *x, int64_t n, const float *next)
{
    __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
    for (int64_t i = 0; i < n; i += RUN_LANES) {
        if (next) _mm_prefetch((const char *)(next + i), _MM_HINT_T0);
        __m512 v = run_block(x, i, n);
        lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
        hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
    }
    double out;
    run_store(lo, hi, &out);
    return out;
}

RUN_TARGET static double run_sum_squares_avx512(const float *x, int64_t n, double m)
{
    __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd(), mv = _mm512_set1_pd(m);
    for (int64_t i = 0; i < n; i += RUN_LANES) {
        __m512 v = run_block(x, i, n);
        __m512d dl = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)), mv);
        __m512d dh = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))), mv);
        /* Zero padding adds m^2 to the padded lanes: mask those terms off instead. */
        if (n - i < RUN_LANES) {
            int64_t left = n - i;
            __mmask8 ml = (__mmask8)(left >= 8 ? 0xff : (1u << left) - 1u);
            __mmask8 mh = (__mmask8)(left <= 8 ? 0 : (1u << (left - 8)) - 1u);
            dl = _mm512_maskz_mov_pd(ml, dl);
            dh = _mm512_maskz_mov_pd(mh, dh);
        }
        lo = _mm512_add_pd(lo, _mm512_mul_pd(dl, dl));
        hi = _mm512_add_pd(hi, _mm512_mul_pd(dh, dh));
    }
    double out;
    run_store(lo, hi, &out);
    return out;
}

RUN_TARGET static void run_sum_gradient_avx512(const float *g, const float *x, int64_t n, float m, double *s,
                                               double *sx, const float *next_g, const float *next_x)
{
    __m512d al = _mm512_setzero_pd(), ah = _mm512_setzero_pd(), bl = _mm512_setzero_pd(), bh = _mm512_setzero_pd();
    __m512 mv = _mm512_set1_ps(m);
    for (int64_t i = 0; i < n; i += RUN_LANES) {
        if (next_g) {
            _mm_prefetch((const char *)(next_g + i), _MM_HINT_T0);
            _mm_prefetch((const char *)(next_x + i), _MM_HINT_T0);
        }
        __m512 gv = run_block(g, i, n), d = _mm512_sub_ps(run_block(x, i, n), mv);
        __m512d gl = _mm512_cvtps_pd(_mm512_castps512_ps256(gv));
        __m512d gh = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(gv), 1)));
        __m512d dl = _mm512_cvtps_pd(_mm512_castps512_ps256(d));
        __m512d dh = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(d), 1)));
        al = _mm512_add_pd(al, gl);
        ah = _mm512_add_pd(ah, gh);
        bl = _mm512_add_pd(bl, _mm512_mul_pd(gl, dl));
        bh = _mm512_add_pd(bh, _mm512_mul_pd(gh, dh));
    }
    run_store(al, ah, s);
    run_store(bl, bh, sx);
}
#else
#define RUN_SUMS_AVX512 0
static bool run_sums_fast(void) { return false; }
#endif

/* Where a channel's planes lie 64 KiB apart, each plane starts a new page and the hardware
 * prefetcher starts over: the sums that read a plane first (from memory) fetch the next one
 * (`next`, same length, or NULL) meanwhile. */

/* sum x[i] */
static double run_sum(const float *restrict x, int64_t n, const float *next)
{
#if RUN_SUMS_AVX512
    if (run_sums_fast()) return run_sum_avx512(x, n, next);
#endif
    (void)next;
    double a[RUN_LANES] = {0};
    for (int64_t i = 0; i < n; i += RUN_LANES)
        for (int k = 0; k < RUN_LANES; k++) a[k] += i + k < n ? (double)x[i + k] : 0.0;
    return run_lanes_total(a);
}

/* sum (x[i] - m)^2 */
static double run_sum_squares(const float *restrict x, int64_t n, double m)
{
#if RUN_SUMS_AVX512
    if (run_sums_fast()) return run_sum_squares_avx512(x, n, m);
#endif
    double a[RUN_LANES] = {0};
    for (int64_t i = 0; i < n; i += RUN_LANES)
        for (int k = 0; k < RUN_LANES; k++) {
            double d = i + k < n ? (double)x[i + k] - m : 0.0;
            a[k] += d * d;
        }
    return run_lanes_total(a);
}

/* *s = sum g[i], *sx = sum g[i] (x[i] - m), the difference in float. */
static void run_sum_gradient(const float *restrict g, const float *restrict x, int64_t n, float m, double *s,
                             double *sx, const float *next_g, const float *next_x)
{
#if RUN_SUMS_AVX512
    if (run_sums_fast()) {
        run_sum_gradient_avx512(g, x, n, m, s, sx, next_g, next_x);
        return;
    }
#endif
    (void)next_g, (void)next_x;
    double a[RUN_LANES] = {0}, b[RUN_LANES] = {0};
    for (int64_t i = 0; i < n; i += RUN_LANES)
        for (int k = 0; k < RUN_LANES; k++) {
            float gv = i + k < n ? g[i + k] : 0.0f, xv = i + k < n ? x[i + k] : 0.0f;
            a[k] += (double)gv;
            b[k] += (double)gv * (double)(xv - m);
        }
    *s = run_lanes_total(a);
    *sx = run_lanes_total(b);
}

/* ---------------------------------------------------------------- kernels */

/* Each kernel handles the channels [c0, c1).  Channels are independent and
 * each one's sums run in the same order whatever the range, so the parts of a
 * call may run on different threads without changing a bit.  With inner > 1
 * the kernels go channel by channel: a channel's B planes (128 KiB for a
 * 32 x 32 x 32 batch) are still in cache for its second pass. */

/* The plane after (b, c) in a pass over channels [.., c1) plane by plane, or NULL. */
static const float *next_plane(bn_layout l, int64_t b, int64_t c, int64_t c1, const float *x)
{
    if (b + 1 < l.outer) return x + ((b + 1) * l.channels + c) * l.inner;
    return c + 1 < c1 ? x + (c + 1) * l.inner : NULL;
}

/* mean[c] and the biased var[c] over (outer, inner), in double, two passes. */
GL_VECTOR_CLONES static void bn_statistics(bn_layout l, int64_t c0, int64_t c1, const float *restrict x,
                                           double *restrict mean, double *restrict var)
{
    int64_t C = l.channels, inner = l.inner;
    double count = (double)(l.outer * inner);
    for (int64_t c = c0; c < c1; c++) mean[c] = var[c] = 0.0;
    if (inner == 1) {   /* (B, F): sum down the columns, one contiguous row at a time */
        for (int64_t b = 0; b < l.outer; b++) {
            const float *row = x + b * C;
            for (int64_t c = c0; c < c1; c++) mean[c] += row[c];
        }
        for (int64_t c = c0; c < c1; c++) mean[c] /= count;
        for (int64_t b = 0; b < l.outer; b++) {
            const float *row = x + b * C;
            for (int64_t c = c0; c < c1; c++) {
                double d = row[c] - mean[c];
                var[c] += d * d;
            }
        }
    } else {
        for (int64_t c = c0; c < c1; c++) {
            for (int64_t b = 0; b < l.outer; b++)
                mean[c] += run_sum(x + (b * C + c) * inner, inner, next_plane(l, b, c, c1, x));
            mean[c] /= count;
            for (int64_t b = 0; b < l.outer; b++)
                var[c] += run_sum_squares(x + (b * C + c) * inner, inner, mean[c]);
        }
    }
    for (int64_t c = c0; c < c1; c++) var[c] /= count;
}

/* y = (x - mean) * scale + shift, where scale = rstd w and shift = b per channel. */
GL_VECTOR_CLONES static void bn_forward(bn_layout l, int64_t c0, int64_t c1, const float *restrict x,
                                        const float *restrict mean, const float *restrict scale,
                                        const float *restrict shift, float *restrict y)
{
    int64_t C = l.channels, inner = l.inner;
    if (inner == 1) {
        for (int64_t b = 0; b < l.outer; b++) {
            const float *xr = x + b * C;
            float *yr = y + b * C;
            for (int64_t c = c0; c < c1; c++) yr[c] = (xr[c] - mean[c]) * scale[c] + shift[c];
        }
        return;
    }
    for (int64_t c = c0; c < c1; c++)
        for (int64_t b = 0; b < l.outer; b++) {
            const float *xp = x + (b * C + c) * inner;
            float *yp = y + (b * C + c) * inner;
            float m = mean[c], k = scale[c], s = shift[c];
            for (int64_t i = 0; i < inner; i++) yp[i] = (xp[i] - m) * k + s;
        }
}

/* sum_g[c] = sum g,  sum_gx[c] = sum g xhat over (outer, inner), in double. */
GL_VECTOR_CLONES static void bn_gradient_sums(bn_layout l, int64_t c0, int64_t c1, const float *restrict g,
                                              const float *restrict x, const float *restrict mean,
                                              const float *restrict rstd, double *restrict sum_g,
                                              double *restrict sum_gx)
{
    int64_t C = l.channels, inner = l.inner;
    for (int64_t c = c0; c < c1; c++) sum_g[c] = sum_gx[c] = 0.0;
    if (inner == 1) {
        /* sum g (x - mean) first, times rstd once at the end. */
        for (int64_t b = 0; b < l.outer; b++) {
            const float *gr = g + b * C, *xr = x + b * C;
            for (int64_t c = c0; c < c1; c++) {
                sum_g[c] += gr[c];
                sum_gx[c] += (double)gr[c] * (xr[c] - mean[c]);
            }
        }
    } else {
        for (int64_t c = c0; c < c1; c++)
            for (int64_t b = 0; b < l.outer; b++) {
                int64_t at = (b * C + c) * inner;
                double s, sx;
                run_sum_gradient(g + at, x + at, inner, mean[c], &s, &sx, next_plane(l, b, c, c1, g),
                                 next_plane(l, b, c, c1, x));
                sum_g[c] += s;
                sum_gx[c] += sx;
            }
    }
    for (int64_t c = c0; c < c1; c++) sum_gx[c] *= rstd[c];
}

/* dx = k (g - a - (x - mean) q) per channel: with k = w rstd, a = sum_g / N
 * and q = rstd sum_gx / N in train mode; a = q = 0 in evaluate mode. */
GL_VECTOR_CLONES static void bn_backward_input(bn_layout l, int64_t c0, int64_t c1, const float *restrict g,
                                               const float *restrict x, const float *restrict mean,
                                               const float *restrict k, const float *restrict a,
                                               const float *restrict q, float *restrict dx)
{
    int64_t C = l.channels, inner = l.inner;
    if (inner == 1) {
        for (int64_t b = 0; b < l.outer; b++) {
            const float *gr = g + b * C, *xr = x + b * C;
            float *dr = dx + b * C;
            for (int64_t c = c0; c < c1; c++) dr[c] = k[c] * (gr[c] - a[c] - (xr[c] - mean[c]) * q[c]);
        }
        return;
    }
    for (int64_t c = c0; c < c1; c++)
        for (int64_t b = 0; b < l.outer; b++) {
            const float *gp = g + (b * C + c) * inner, *xp = x + (b * C + c) * inner;
            float *dp = dx + (b * C + c) * inner;
            float m = mean[c], kc = k[c], ac = a[c], qc = q[c];
            for (int64_t i = 0; i < inner; i++) dp[i] = kc * (gp[i] - ac - (xp[i] - m) * qc);
        }
}

/* ------------------------------------------------------------ the passes */

/* Elements per part before a call is split over threads: a part of 2^16
 * floats takes ~30 us, a few times what starting its thread costs. */
#define BN_MIN_PER_PART 65536.0

static int bn_parts(bn_layout l)
{
    return gl_parallel_parts((double)l.outer * (double)l.channels * (double)l.inner, BN_MIN_PER_PART,
                             l.channels);
}

/* Parts take channels from a shared counter, a few at a time, instead of fixed ranges: a part
 * on a slower core (another process there) takes fewer and the other does not wait for it.
 * Each channel's values do not depend on which part computes it.  (B, F) inputs, where a
 * range is a strip of every row, go in one range per part. */
typedef struct bn_queue {
    atomic_llong next;
    int64_t chunk, channels;
} bn_queue;

static void bn_queue_init(bn_queue *q, bn_layout l, int parts)
{
    atomic_init(&q->next, 0);
    q->channels = l.channels;
    q->chunk = l.inner > 1 ? l.channels / (4 * (int64_t)parts) : (l.channels + parts - 1) / parts;
    if (q->chunk < 1) q->chunk = 1;
}

static bool bn_claim(bn_queue *q, int64_t *c0, int64_t *c1)
{
    int64_t c = atomic_fetch_add(&q->next, q->chunk);
    if (c >= q->channels) return false;
    *c0 = c;
    *c1 = c + q->chunk < q->channels ? c + q->chunk : q->channels;
    return true;
}

/* The whole forward of a range of channels: statistics (train), then the per-channel
 * constants, then y. */
typedef struct bn_forward_job {
    bn_layout l;
    int parts;
    bn_queue *queue;
    bool training, has_bias;
    double eps;
    const float *x, *w;                       /* w may be NULL */
    double *mean, *var;                       /* in (evaluate) or out (train) */
    float *mean_f, *rstd_f, *scale, *shift;   /* shift: the bias on entry when has_bias */
    float *y;
} bn_forward_job;

static void bn_forward_part(void *arg, int part)
{
    const bn_forward_job *j = arg;
    (void)part;
    int64_t c0, c1;
    while (bn_claim(j->queue, &c0, &c1)) {
        if (j->training) bn_statistics(j->l, c0, c1, j->x, j->mean, j->var);
        for (int64_t c = c0; c < c1; c++) {
            j->mean_f[c] = (float)j->mean[c];
            j->rstd_f[c] = (float)(1.0 / sqrt(j->var[c] + j->eps));
            j->scale[c] = j->rstd_f[c] * (j->w ? j->w[c] : 1.0f);
            if (!j->has_bias) j->shift[c] = 0.0f;
        }
        bn_forward(j->l, c0, c1, j->x, j->mean_f, j->scale, j->shift, j->y);
    }
}

/* The backward of a range of channels: the gradient sums, then dx (when wanted). */
typedef struct bn_backward_job {
    bn_layout l;
    int parts;
    bn_queue *queue;
    bool training, sums, want_x;
    const float *g, *x, *mean, *rstd, *w;     /* w may be NULL */
    double *sum_g, *sum_gx;
    float *k, *a, *q, *dx;
} bn_backward_job;

static void bn_backward_part(void *arg, int part)
{
    const bn_backward_job *j = arg;
    (void)part;
    int64_t c0, c1;
    double count = (double)(j->l.outer * j->l.inner);
    while (bn_claim(j->queue, &c0, &c1)) {
        if (j->sums) bn_gradient_sums(j->l, c0, c1, j->g, j->x, j->mean, j->rstd, j->sum_g, j->sum_gx);
        if (!j->want_x) continue;
        for (int64_t c = c0; c < c1; c++) {
            j->k[c] = (j->w ? j->w[c] : 1.0f) * j->rstd[c];
            j->a[c] = j->training ? (float)(j->sum_g[c] / count) : 0.0f;
            j->q[c] = j->training ? (float)(j->rstd[c] * j->sum_gx[c] / count) : 0.0f;
        }
        bn_backward_input(j->l, c0, c1, j->g, j->x, j->mean, j->k, j->a, j->q, j->dx);
    }
}

/* --------------------------------------------------------------- autograd */

/* Saved: x (contiguous), mean, rstd, and weight (contiguous) when params[1].
 * params[0] = training.  Inputs: x, weight, bias (either may be NULL). */
static gl_status batch_norm_backward(gl_node *node, gl_tensor *g, gl_tensor **grads, gl_error *err)
{
    const gl_tensor *x = node->saved[0], *mean_t = node->saved[1], *rstd_t = node->saved[2];
    const gl_tensor *w_t = node->params[1] ? node->saved[3] : NULL;
    bool training = node->params[0] != 0;
    bn_layout l = bn_layout_of(x);
    int64_t C = l.channels;
    bool want_x = gl_node_input_needs_grad(node, 0), want_w = gl_node_input_needs_grad(node, 1),
         want_b = gl_node_input_needs_grad(node, 2);

    gl_tensor *dense_g = NULL;
    gl_status status = gl_tensor_contiguous_untracked(g, &dense_g, err);
    if (status) return status;
    /* One block: sum_g, sum_gx (double), then k, a, q (float). */
    size_t bytes = (size_t)(C > 0 ? C : 1) * (2 * sizeof(double) + 3 * sizeof(float));
    void *scratch = malloc(bytes);
    if (!scratch) {
        gl_tensor_release(dense_g);
        return gl_error_set(err, GL_ENOMEM, 0, "batch_norm: out of memory in backward (%lld channels)",
                            (long long)C);
    }
    double *sum_g = scratch, *sum_gx = sum_g + C;
    float *k = (float *)(sum_gx + C), *a = k + C, *q = a + C;
    const float *gv = gl_tensor_data(dense_g), *xv = gl_tensor_data(x);
    const float *mean = gl_tensor_data(mean_t), *rstd = gl_tensor_data(rstd_t);
    const float *w = w_t ? gl_tensor_data(w_t) : NULL;

    if (want_x) status = gl_tensor_empty(x->ndim, x->shape, &grads[0], err);
    if (!status) {
        bn_queue queue;
        bn_backward_job job = {.l = l, .parts = bn_parts(l), .queue = &queue, .training = training,
                               .sums = training || want_w || want_b, .want_x = want_x, .g = gv, .x = xv,
                               .mean = mean, .rstd = rstd, .w = w, .sum_g = sum_g, .sum_gx = sum_gx,
                               .k = k, .a = a, .q = q, .dx = want_x ? gl_tensor_data(grads[0]) : NULL};
        bn_queue_init(&queue, l, job.parts);
        gl_parallel_run(job.parts, bn_backward_part, &job);
    }
    if (!status && want_w) {
        status = gl_tensor_empty(node->inputs[1].ndim, node->inputs[1].shape, &grads[1], err);
        if (!status) {
            float *dw = gl_tensor_data(grads[1]);
            for (int64_t c = 0; c < C; c++) dw[c] = (float)sum_gx[c];
        }
    }
    if (!status && want_b) {
        status = gl_tensor_empty(node->inputs[2].ndim, node->inputs[2].shape, &grads[2], err);
        if (!status) {
            float *db = gl_tensor_data(grads[2]);
            for (int64_t c = 0; c < C; c++) db[c] = (float)sum_g[c];
        }
    }
    free(scratch);
    gl_tensor_release(dense_g);
    return status;
}

/* ---------------------------------------------------------------- checks */

/* A per-channel vector argument: NULL, or 1-d of length C. */
static gl_status check_vector(const gl_tensor *v, const char *what, int position, const gl_tensor *x,
                              int64_t C, gl_error *err)
{
    char vs[160], xs[160];
    if (!v || (v->ndim == 1 && v->shape[0] == C)) return GL_OK;
    return gl_error_set(err, GL_ESHAPE, position,
                        "batch_norm: %s of shape %s does not match %lld channels (input shape %s, channels on dimension 2)",
                        what, GL_SHAPE_STR(v, vs), (long long)C, GL_SHAPE_STR(x, xs));
}

static gl_status batch_norm_check(const gl_tensor *x, const gl_tensor *running_mean,
                                  const gl_tensor *running_var, const gl_tensor *weight,
                                  const gl_tensor *bias, bool training, double momentum, double eps,
                                  gl_error *err)
{
    char xs[160];
    if (x->ndim < 2)
        return gl_error_set(err, GL_ESHAPE, 1,
                            "batch_norm: input must be (B, C) or (B, C, ...) with channels on dimension 2, got shape %s",
                            GL_SHAPE_STR(x, xs));
    int64_t C = x->shape[1];
    gl_status status = check_vector(running_mean, "running_mean", 2, x, C, err);
    if (!status) status = check_vector(running_var, "running_var", 3, x, C, err);
    if (!status) status = check_vector(weight, "weight", 4, x, C, err);
    if (!status) status = check_vector(bias, "bias", 5, x, C, err);
    if (status) return status;
    if ((running_mean == NULL) != (running_var == NULL))
        return gl_error_set(err, GL_EARG, running_mean ? 3 : 2,
                            "batch_norm: running_mean and running_var go together; got only %s",
                            running_mean ? "running_mean" : "running_var");
    if (!training && !running_mean)
        return gl_error_set(err, GL_EARG, 2,
                            "batch_norm: evaluate mode (training = false) normalizes with running_mean and running_var; none were given");
    if (!(momentum >= 0.0 && momentum <= 1.0))
        return gl_error_set(err, GL_EARG, 7, "batch_norm: momentum must be in [0, 1], got %g", momentum);
    if (!(eps > 0.0) || !isfinite(eps))
        return gl_error_set(err, GL_EARG, 8, "batch_norm: eps must be positive and finite, got %g", eps);
    bn_layout l = bn_layout_of(x);
    if (training && l.outer * l.inner <= 1)
        return gl_error_set(err, GL_ESHAPE, 1,
                            "batch_norm: training needs more than one value per channel, got input shape %s",
                            GL_SHAPE_STR(x, xs));
    return GL_OK;
}

/* Running statistics, in place and outside autograd (they are buffers). */
static void update_running(gl_tensor *running, const double *batch, double momentum, double factor)
{
    float *p = gl_tensor_data(running);
    int64_t n = running->shape[0], s = running->stride[0];
    for (int64_t c = 0; c < n; c++)
        p[c * s] = (float)((1.0 - momentum) * p[c * s] + momentum * batch[c] * factor);
    running->storage->version++;
}

/* ------------------------------------------------------------------- op */

gl_status gl_batch_norm(const gl_tensor *x, gl_tensor *running_mean, gl_tensor *running_var,
                        const gl_tensor *weight, const gl_tensor *bias, bool training,
                        double momentum, double eps, gl_tensor **out, gl_error *err)
{
    *out = NULL;
    gl_status status = batch_norm_check(x, running_mean, running_var, weight, bias, training,
                                        momentum, eps, err);
    if (status) return status;
    bn_layout l = bn_layout_of(x);
    int64_t C = l.channels, shape_c[1] = {C};

    gl_tensor *dense = NULL, *dense_w = NULL, *mean_t = NULL, *rstd_t = NULL;
    size_t bytes = (size_t)(C > 0 ? C : 1) * (2 * sizeof(double) + 2 * sizeof(float));
    void *scratch = malloc(bytes);
    if (!scratch)
        return gl_error_set(err, GL_ENOMEM, 0, "batch_norm: out of memory (%lld channels)", (long long)C);
    double *mean = scratch, *var = mean + C;
    float *scale = (float *)(var + C), *shift = scale + C;

    status = gl_tensor_contiguous_untracked(x, &dense, err);
    if (!status && weight) status = gl_tensor_contiguous_untracked(weight, &dense_w, err);
    if (!status) status = gl_tensor_empty(1, shape_c, &mean_t, err);
    if (!status) status = gl_tensor_empty(1, shape_c, &rstd_t, err);
    if (!status) status = gl_tensor_empty(x->ndim, x->shape, out, err);
    if (!status) {
        if (!training) {
            float *buffer = scale;   /* scale and shift are free until below */
            vector_read(running_mean, buffer);
            for (int64_t c = 0; c < C; c++) mean[c] = buffer[c];
            vector_read(running_var, buffer);
            for (int64_t c = 0; c < C; c++) var[c] = buffer[c];
        }
        if (bias) vector_read(bias, shift);
        bn_queue queue;
        bn_forward_job job = {.l = l, .parts = bn_parts(l), .queue = &queue, .training = training, .has_bias = bias != NULL,
                              .eps = eps, .x = gl_tensor_data(dense),
                              .w = dense_w ? gl_tensor_data(dense_w) : NULL, .mean = mean, .var = var,
                              .mean_f = gl_tensor_data(mean_t), .rstd_f = gl_tensor_data(rstd_t),
                              .scale = scale, .shift = shift, .y = gl_tensor_data(*out)};
        bn_queue_init(&queue, l, job.parts);
        gl_parallel_run(job.parts, bn_forward_part, &job);
    }
    if (!status) {
        const gl_tensor *inputs[3] = {x, weight, bias};
        gl_node *node = NULL;
        status = gl_op_finish("batch_norm", *out, 3, inputs, batch_norm_backward, &node, err);
        if (!status && node) {
            node->params[0] = training;
            node->params[1] = dense_w != NULL;
            status = gl_node_save(node, dense, err);
            if (!status) status = gl_node_save(node, mean_t, err);
            if (!status) status = gl_node_save(node, rstd_t, err);
            if (!status && dense_w) status = gl_node_save(node, dense_w, err);
        }
    }
    /* Only once the output stands: a failed call leaves the buffers untouched. */
    if (!status && training && running_mean) {
        double count = (double)(l.outer * l.inner);
        update_running(running_mean, mean, momentum, 1.0);
        update_running(running_var, var, momentum, count / (count - 1.0));
    }
    free(scratch);
    gl_tensor_release(dense);
    gl_tensor_release(dense_w);
    gl_tensor_release(mean_t);
    gl_tensor_release(rstd_t);
    if (status) {
        gl_tensor_release(*out);
        *out = NULL;
    }
    return status;
}
