/*
 * norm_sums.h — double-precision sums along a contiguous run of floats, shared by
 * the normalizers (norm_batch.c, norm_group.c); private to the engine.
 *
 * Without -ffast-math the compiler may not reorder a reduction, so a loop with
 * one accumulator waits on every add in turn (~4 cycles each): a 1024-wide
 * layer-norm row spends most of its time there.  Eight independent
 * accumulators break the chain and let the loop vectorize.  The order of the
 * additions differs from a plain loop; the precision (double) does not.
 */
#ifndef GRADLAB_NORM_SUMS_H
#define GRADLAB_NORM_SUMS_H

#include <stdint.h>

enum { NORM_LANES = 8 };

static inline double norm_lanes_total(const double *acc)
{
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* sum x[i] */
static inline double norm_sum(const float *restrict x, int64_t n)
{
    double acc[NORM_LANES] = {0};
    int64_t i = 0;
    for (; i + NORM_LANES <= n; i += NORM_LANES)
        for (int k = 0; k < NORM_LANES; k++) acc[k] += x[i + k];
    for (; i < n; i++) acc[0] += x[i];
    return norm_lanes_total(acc);
}

/* sum (x[i] - m)^2 */
static inline double norm_sum_squares(const float *restrict x, int64_t n, double m)
{
    double acc[NORM_LANES] = {0};
    int64_t i = 0;
    for (; i + NORM_LANES <= n; i += NORM_LANES)
        for (int k = 0; k < NORM_LANES; k++) {
            double d = x[i + k] - m;
            acc[k] += d * d;
        }
    for (; i < n; i++) {
        double d = x[i] - m;
        acc[0] += d * d;
    }
    return norm_lanes_total(acc);
}

/* *s = sum h[i], *sx = sum h[i] (x[i] - m), with h = g w (w may be NULL: h = g). */
static inline void norm_sum_gradient(const float *restrict g, const float *restrict w,
                                     const float *restrict x, int64_t n, float m, double *s,
                                     double *sx)
{
    double a[NORM_LANES] = {0}, b[NORM_LANES] = {0};
    int64_t i = 0;
    if (w) {
        for (; i + NORM_LANES <= n; i += NORM_LANES)
            for (int k = 0; k < NORM_LANES; k++) {
                float h = g[i + k] * w[i + k];
                a[k] += h;
                b[k] += (double)h * (x[i + k] - m);
            }
        for (; i < n; i++) {
            float h = g[i] * w[i];
            a[0] += h;
            b[0] += (double)h * (x[i] - m);
        }
    } else {
        for (; i + NORM_LANES <= n; i += NORM_LANES)
            for (int k = 0; k < NORM_LANES; k++) {
                a[k] += g[i + k];
                b[k] += (double)g[i + k] * (x[i + k] - m);
            }
        for (; i < n; i++) {
            a[0] += g[i];
            b[0] += (double)g[i] * (x[i] - m);
        }
    }
    *s = norm_lanes_total(a);
    *sx = norm_lanes_total(b);
}

#endif
