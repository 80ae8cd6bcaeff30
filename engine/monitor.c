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

/* The pass over contiguous memory; blocks of float partial sums keep the
 * loop vectorizable, and each block's total goes to double. */
static void statistics_contiguous(const float *x, int64_t n, float low, float high, gl_tensor_stats *s)
{
    enum { BLOCK = 4096 };
    for (int64_t start = 0; start < n; start += BLOCK) {
        int64_t end = start + BLOCK < n ? start + BLOCK : n;
        float sum = 0, squares = 0, top = 0;
        int64_t bad = 0, zeros = 0, saturated = 0;
        for (int64_t i = start; i < end; i++) {
            float v = x[i];
            bool finite = isfinite(v);
            bad += !finite;
            float w = finite ? v : 0.0f;
            sum += w;
            squares += w * w;
            top = fmaxf(top, fabsf(w));
            zeros += v == 0.0f;
            saturated += finite && (v < low || v > high);
        }
        s->sum += sum;
        s->sum_squares += squares;
        if (top > s->max_abs) s->max_abs = top;
        s->nonfinite += bad;
        s->zeros += zeros;
        s->saturated += saturated;
    }
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
