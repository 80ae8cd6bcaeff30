/*
 * monitor.c — the statistics the gradient monitor records, each in one pass.
 *
 *   gl_stats_scan         sum of squares and counts, plus what the caller asks
 *                         for (sum, max |x|, zeros, saturation): monitor.h
 *   gl_tensor_statistics  all of them, for t:stats(), clipping and loss scaling
 *   gl_tensor_watch_grad  marks an op's output so backward takes the same
 *                         statistics of the gradient passing through it: the
 *                         backward signal ‖∂L/∂h‖ of a layer, with no copy kept
 *
 * The fast pass sums in float lanes (blocks of BLOCK values, independent
 * accumulators so the adds do not wait on each other) and folds each block
 * into double lanes, so long tensors keep their precision.  It assumes finite,
 * moderate values; when the totals say otherwise (a NaN or Inf, or magnitudes
 * whose float squares would underflow or overflow: the vanishing and exploding
 * regimes the monitor exists for) the careful pass redoes everything in double
 * and leaves non-finite values out of the sums.
 */
#include <math.h>

#include "autograd.h"
#include "monitor.h"

/* Squares added with fused multiply-adds where the instruction set has them
 * (the AVX2 and AVX-512 copies): one instruction instead of two, and closer
 * to the exact value.  The statistics may then differ in the last bits
 * between machines, which a monitor can afford. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#endif

/* Lanes: independent float accumulators per quantity (the adds of one lane
 * wait on each other).  The squares-only pass has one operation per element
 * and wants more lanes; the wider passes are limited by their operations. */
enum { LANES = 64, SQUARE_LANES = 64, WIDE_LANES = 32, BLOCK = 1024 };

typedef struct partial {
    double sum, squares;
    float top;
    int64_t zeros, saturated;
} partial;

/* The fast pass; `what` is a constant in every caller below, so each copy
 * keeps only the work it was asked for.  Counts are written as conditional
 * increments (c = test ? c + 1 : c), which the AVX-512 copies turn into one
 * masked add each (c += test ? 1 : 0 cost a blend and an add); the band is
 * counted from the inside, low <= v <= high (two compares, the second masked
 * by the first, no mask OR), and turned around at the end: the fast pass only
 * stands when every value is finite, where inside and outside are exact
 * complements.  Only the lanes in use are cleared (a call on a bias is short). */
static inline __attribute__((always_inline)) void scan_fast(const float *restrict x, int64_t n, float low,
                                                             float high, unsigned what, const int lanes, partial *p)
{
    double sum_lanes[LANES], square_lanes[LANES];
    float top_lanes[LANES];
    int64_t zero_lanes[LANES], band_lanes[LANES];
    for (int j = 0; j < lanes; j++) {
        sum_lanes[j] = 0, square_lanes[j] = 0, top_lanes[j] = 0;
        zero_lanes[j] = 0, band_lanes[j] = 0;
    }
    int64_t i = 0;
    while (n - i >= lanes) {
        int64_t end = n - i > BLOCK ? i + BLOCK : i + (n - i) / lanes * lanes;
        float s[LANES], q[LANES], m[LANES];
        int32_t z[LANES], b[LANES];
        for (int j = 0; j < lanes; j++) s[j] = 0, q[j] = 0, m[j] = 0, z[j] = 0, b[j] = 0;
        for (; i < end; i += lanes) {
            const float *restrict row = x + i;
            for (int j = 0; j < lanes; j++) {
                float v = row[j];
                if (what & GL_STATS_SUM) s[j] += v;
                q[j] += v * v;
                if (what & GL_STATS_TOP) {
                    float a = fabsf(v);
                    m[j] = a > m[j] ? a : m[j];   /* not fmaxf: a libm call */
                }
                if (what & GL_STATS_ZEROS) z[j] = v == 0.0f ? z[j] + 1 : z[j];
                if (what & GL_STATS_BAND) b[j] = (v >= low) & (v <= high) ? b[j] + 1 : b[j];
            }
        }
        for (int j = 0; j < lanes; j++) {
            sum_lanes[j] += s[j];
            square_lanes[j] += q[j];
            top_lanes[j] = m[j] > top_lanes[j] ? m[j] : top_lanes[j];
            zero_lanes[j] += z[j];
            band_lanes[j] += b[j];
        }
    }
    double sum = 0, squares = 0;
    float top = 0;
    int64_t zeros = 0, inside = 0;
#pragma omp simd reduction(+ : sum, squares, zeros, inside) reduction(max : top)
    for (int j = 0; j < lanes; j++) {
        sum += sum_lanes[j];
        squares += square_lanes[j];
        top = top_lanes[j] > top ? top_lanes[j] : top;
        zeros += zero_lanes[j];
        inside += band_lanes[j];
    }
    for (; i < n; i++) {
        float v = x[i];
        sum += v;
        squares += v * v;
        top = fabsf(v) > top ? fabsf(v) : top;
        zeros += v == 0.0f;
        inside += (v >= low) & (v <= high);
    }
    p->sum = what & GL_STATS_SUM ? sum : 0;
    p->squares = squares;
    p->top = what & GL_STATS_TOP ? top : 0;
    p->zeros = what & GL_STATS_ZEROS ? zeros : 0;
    p->saturated = what & GL_STATS_BAND ? n - inside : 0;
}

/* One copy per combination the engine asks for (anything else takes all). */
GL_MULTIVERSION static void scan_squares(const float *x, int64_t n, partial *p)
{
    scan_fast(x, n, 0, 0, 0, SQUARE_LANES, p);
}

GL_MULTIVERSION static void scan_gradient(const float *x, int64_t n, partial *p)
{
    scan_fast(x, n, 0, 0, GL_STATS_SUM | GL_STATS_TOP, WIDE_LANES, p);
}

GL_MULTIVERSION static void scan_activation(const float *x, int64_t n, partial *p)
{
    scan_fast(x, n, 0, 0, GL_STATS_SUM | GL_STATS_ZEROS, WIDE_LANES, p);
}

GL_MULTIVERSION static void scan_activation_band(const float *x, int64_t n, float low, float high, partial *p)
{
    scan_fast(x, n, low, high, GL_STATS_SUM | GL_STATS_ZEROS | GL_STATS_BAND, WIDE_LANES, p);
}

GL_MULTIVERSION static void scan_unbanded(const float *x, int64_t n, partial *p)
{
    scan_fast(x, n, 0, 0, GL_STATS_SUM | GL_STATS_TOP | GL_STATS_ZEROS, WIDE_LANES, p);
}

GL_MULTIVERSION static void scan_all(const float *x, int64_t n, float low, float high, partial *p)
{
    scan_fast(x, n, low, high, GL_STATS_ALL, WIDE_LANES, p);
}

/* The careful pass: every count, squares in double, non-finite values left
 * out of the sums (selects rather than branches, so it vectorizes too). */
GL_MULTIVERSION static void statistics_careful(const float *x, int64_t n, float low, float high,
                                               gl_tensor_stats *s)
{
    double sum = 0, squares = 0;
    float top = 0;
    int64_t bad = 0, zeros = 0, saturated = 0;
#pragma omp simd reduction(+ : sum, squares, bad, zeros, saturated) reduction(max : top)
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        bool finite = fabsf(v) <= 3.40282347e38f;   /* false for NaN and +-Inf */
        float f = finite ? v : 0.0f;
        zeros += v == 0.0f;
        bad += !finite;
        sum += f;
        squares += (double)f * f;
        top = fabsf(f) > top ? fabsf(f) : top;
        saturated += finite & ((v < low) | (v > high));
    }
    s->sum = sum, s->sum_squares = squares, s->max_abs = top;
    s->nonfinite = bad, s->zeros = zeros, s->saturated = saturated;
}

/* Whether the fast pass's totals can be trusted (see the header comment). */
static bool fast_pass_holds(const partial *p, unsigned what, int64_t n)
{
    if (!isfinite(p->sum) || !isfinite(p->squares)) return false;
    if (what & GL_STATS_TOP) return isfinite(p->top) && !(p->top > 0 && p->top < 1e-18f) && p->top <= 1e18f;
    /* Without max |x|: float squares of values under ~1e-19 underflow, which
     * matters only when nothing larger dominates the sum; all zeros is exact. */
    if (p->squares >= 1e-28) return true;
    return p->squares == 0 && (what & GL_STATS_ZEROS) && p->zeros == n;
}

static void scan_contiguous(const float *x, int64_t n, unsigned what, float low, float high, gl_tensor_stats *s)
{
    partial p;
    switch (what) {
    case 0: scan_squares(x, n, &p); break;
    case GL_STATS_SUM | GL_STATS_TOP: scan_gradient(x, n, &p); break;
    case GL_STATS_SUM | GL_STATS_ZEROS: scan_activation(x, n, &p); break;
    case GL_STATS_SUM | GL_STATS_ZEROS | GL_STATS_BAND: scan_activation_band(x, n, low, high, &p); break;
    case GL_STATS_SUM | GL_STATS_TOP | GL_STATS_ZEROS: scan_unbanded(x, n, &p); break;
    default: what = GL_STATS_ALL; scan_all(x, n, low, high, &p); break;
    }
    if (!fast_pass_holds(&p, what, n)) {
        statistics_careful(x, n, low, high, s);
        return;
    }
    s->sum = p.sum, s->sum_squares = p.squares, s->max_abs = p.top;
    s->nonfinite = 0, s->zeros = p.zeros, s->saturated = p.saturated;
}

void gl_stats_scan(const gl_tensor *t, unsigned what, float low, float high, gl_tensor_stats *stats)
{
    *stats = (gl_tensor_stats){0};
    stats->count = gl_tensor_numel(t);
    if (stats->count == 0) return;
    /* An infinite band saturates nothing: skip its comparisons. */
    if ((what & GL_STATS_BAND) && low == -INFINITY && high == INFINITY) what &= ~(unsigned)GL_STATS_BAND;
    if (gl_tensor_is_contiguous(t)) {
        scan_contiguous(gl_tensor_data(t), stats->count, what, low, high, stats);
        return;
    }
    gl_tensor *dense = NULL;
    if (gl_tensor_clone_untracked(t, &dense, NULL)) return;   /* out of memory: report zeros */
    scan_contiguous(gl_tensor_data(dense), stats->count, what, low, high, stats);
    gl_tensor_release(dense);
}

void gl_tensor_statistics(const gl_tensor *t, float low, float high, gl_tensor_stats *stats)
{
    gl_stats_scan(t, GL_STATS_ALL, low, high, stats);
}

gl_status gl_tensor_watch_grad(gl_tensor *t, gl_error *err)
{
    if (!t->grad_fn)
        return gl_error_set(err, GL_EARG, 1,
                            "watch_grad: only the output of an op recorded in a graph can be watched");
    t->grad_fn->watch = true;
    t->grad_fn->watch_what |= GL_STATS_SUM | GL_STATS_TOP | GL_STATS_ZEROS;
    t->grad_fn->watch_seen = false;
    return GL_OK;
}

void gl_node_watch_done(gl_node *node, double squares, int64_t count)
{
    /* The squares-only fast pass's own test (fast_pass_holds with what = 0). */
    partial p = {.squares = squares};
    if (!fast_pass_holds(&p, 0, count)) return;
    node->watch_stats = (gl_tensor_stats){.sum_squares = squares, .count = count};
    node->watch_seen = true;
}

bool gl_tensor_watched_grad(const gl_tensor *t, gl_tensor_stats *stats)
{
    if (!t->grad_fn || !t->grad_fn->watch_seen) return false;
    *stats = t->grad_fn->watch_stats;
    return true;
}
