/*
 * monitor.c — the statistics the gradient monitor records, each in one pass.
 *
 *   gl_tensor_statistics  sum, sum of squares, max |x|, zeros, non-finite and
 *                         saturated counts of any tensor (weights, gradients,
 *                         activations)
 *   gl_tensor_watch_grad  marks an op's output so backward takes the same
 *                         statistics of the gradient passing through it: the
 *                         backward signal ‖∂L/∂h‖ of a layer, with no copy kept
 */
#include <math.h>

#include "autograd.h"

/* Sums, squares and max |x| of finite data: in blocks of 1024, float lanes
 * the simd pragma (honoured with -fopenmp-simd) may split the reduction
 * across; double totals across blocks, so long tensors keep their precision.
 * A NaN or Inf anywhere makes the totals non-finite, which is how the caller
 * learns it must take the careful path. */
static void sums_fast(const float *x, int64_t n, double *total, double *total_squares, float *top)
{
    double s = 0, q = 0;
    float m = 0;
    for (int64_t start = 0; start < n; start += 1024) {
        int count = (int)(n - start < 1024 ? n - start : 1024);
        const float *block = x + start;
        float sum = 0, squares = 0, block_top = 0;
#pragma omp simd reduction(+ : sum, squares) reduction(max : block_top)
        for (int i = 0; i < count; i++) {
            float v = block[i];
            sum += v;
            squares += v * v;
            float magnitude = fabsf(v);
            block_top = magnitude > block_top ? magnitude : block_top;   /* not fmaxf: a libm call */
        }
        s += sum;
        q += squares;
        m = block_top > m ? block_top : m;
    }
    *total = s, *total_squares = q, *top = m;
}

/* The careful pass: every count, non-finite values left out of the sums. */
static void statistics_careful(const float *x, int64_t n, float low, float high, gl_tensor_stats *s)
{
    double sum = 0, squares = 0;
    float top = 0;
    int64_t bad = 0, zeros = 0, saturated = 0;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        zeros += v == 0.0f;
        if (!isfinite(v)) {
            bad++;
            continue;
        }
        sum += v;
        squares += (double)v * v;
        if (fabsf(v) > top) top = fabsf(v);
        saturated += v < low || v > high;
    }
    s->sum = sum, s->sum_squares = squares, s->max_abs = top;
    s->nonfinite = bad, s->zeros = zeros, s->saturated = saturated;
}

/* Zero and saturation counts (for activations), float-lane counters per block. */
static void counts_fast(const float *x, int64_t n, float low, float high, gl_tensor_stats *s)
{
    int64_t zeros = 0, saturated = 0;
    for (int64_t start = 0; start < n; start += 1024) {
        int count = (int)(n - start < 1024 ? n - start : 1024);
        const float *block = x + start;
        float block_zeros = 0, block_saturated = 0;
#pragma omp simd reduction(+ : block_zeros, block_saturated)
        for (int i = 0; i < count; i++) {
            float v = block[i];
            block_zeros += (float)(v == 0.0f);
            block_saturated += (float)((v < low) | (v > high));
        }
        zeros += (int64_t)block_zeros;
        saturated += (int64_t)block_saturated;
    }
    s->zeros = zeros, s->saturated = saturated;
}

static void statistics_contiguous(const float *x, int64_t n, float low, float high, gl_tensor_stats *s)
{
    double sum, squares;
    float top;
    sums_fast(x, n, &sum, &squares, &top);
    /* Float squares underflow below ~1e-19 and overflow above ~1e19: the
     * vanishing and exploding regimes the monitor exists for, so those take
     * the careful pass, which squares in double. */
    if (!isfinite(sum) || !isfinite(squares) || !isfinite(top) || top < 1e-18f || top > 1e18f) {
        statistics_careful(x, n, low, high, s);
        return;
    }
    s->sum = sum, s->sum_squares = squares, s->max_abs = top;
    s->nonfinite = 0;
    counts_fast(x, n, low, high, s);
}

void gl_tensor_statistics(const gl_tensor *t, float low, float high, gl_tensor_stats *stats)
{
    *stats = (gl_tensor_stats){0};
    stats->count = gl_tensor_numel(t);
    if (stats->count == 0) return;
    if (gl_tensor_is_contiguous(t)) {
        statistics_contiguous(gl_tensor_data(t), stats->count, low, high, stats);
        return;
    }
    gl_tensor *dense = NULL;
    if (gl_tensor_clone_untracked(t, &dense, NULL)) return;   /* out of memory: report zeros */
    statistics_contiguous(gl_tensor_data(dense), stats->count, low, high, stats);
    gl_tensor_release(dense);
}

gl_status gl_tensor_watch_grad(gl_tensor *t, gl_error *err)
{
    if (!t->grad_fn)
        return gl_error_set(err, GL_EARG, 1,
                            "watch_grad: only the output of an op recorded in a graph can be watched");
    t->grad_fn->watch = true;
    t->grad_fn->watch_seen = false;
    return GL_OK;
}

bool gl_tensor_watched_grad(const gl_tensor *t, gl_tensor_stats *stats)
{
    if (!t->grad_fn || !t->grad_fn->watch_seen) return false;
    *stats = t->grad_fn->watch_stats;
    return true;
}
