/*
 * monitor.h — the statistics passes of the gradient monitor (internal).
 *
 * gl_stats_scan takes, in one pass over a tensor, the sum of squares, the
 * element and non-finite counts, and whichever of the sum, max |x|, zero and
 * saturation counts `what` asks for: the monitor asks each buffer only for
 * what it records (a weight gradient: sum, squares, max; an activation: sum,
 * squares, zeros and, after tanh or sigmoid, saturation; the backward signal:
 * squares alone).  Fields not asked for are left 0.
 */
#ifndef GRADLAB_MONITOR_H
#define GRADLAB_MONITOR_H

#include "gradlab.h"

enum {
    GL_STATS_SUM = 1,     /* stats->sum */
    GL_STATS_TOP = 2,     /* stats->max_abs */
    GL_STATS_ZEROS = 4,   /* stats->zeros */
    GL_STATS_BAND = 8,    /* stats->saturated: finite values below low or above high */
    GL_STATS_ALL = 15,
};

void gl_stats_scan(const gl_tensor *t, unsigned what, float low, float high, gl_tensor_stats *stats);

/* Kernels compiled once per instruction set and picked at load time (glibc
 * ifunc), so an -O3 build without -march still runs AVX-512 where there is
 * AVX-512, and the binary stays portable. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define GL_MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define GL_MULTIVERSION
#endif

#endif
