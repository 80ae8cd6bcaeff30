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

/* The pass over contiguous memory.  Eight independent double accumulators:
 * exact enough for sums of millions of floats, and free of the serial
 * dependency that would make the loop latency-bound. */
static void statistics_contiguous(const float *x, int64_t n, float low, float high, gl_tensor_stats *s)
{
    enum { LANES = 8 };
    double sum[LANES] = {0}, squares[LANES] = {0};
    float top = 0;
    int64_t bad = 0, zeros = 0, saturated = 0;
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++) {
            float v = x[i + k];
            bool finite = isfinite(v);
            double w = finite ? v : 0.0;
            sum[k] += w;
            squares[k] += w * w;
            top = fmaxf(top, finite ? fabsf(v) : 0.0f);
            bad += !finite;
            zeros += v == 0.0f;
            saturated += finite && (v < low || v > high);
        }
    for (; i < n; i++) {
        float v = x[i];
        bool finite = isfinite(v);
        double w = finite ? v : 0.0;
        sum[0] += w;
        squares[0] += w * w;
        top = fmaxf(top, finite ? fabsf(v) : 0.0f);
        bad += !finite;
        zeros += v == 0.0f;
        saturated += finite && (v < low || v > high);
    }
    for (int k = 0; k < LANES; k++) {
        s->sum += sum[k];
        s->sum_squares += squares[k];
    }
    s->max_abs = top;
    s->nonfinite = bad;
    s->zeros = zeros;
    s->saturated = saturated;
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
