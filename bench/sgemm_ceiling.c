/*
 * sgemm_ceiling.c — the raw cblas_sgemm throughput for one shape, the ceiling
 * the end-to-end cases are measured against (bench/compare.lua).  Linked with
 * the engine so OpenBLAS runs the same kernels gradlab chose (engine/blas.c).
 *
 *   sgemm_ceiling M N K [reps]   -> prints "gflops=<median GFLOP/s> core=<kernels>"
 */
#include <cblas.h>

#include "gradlab.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: sgemm_ceiling M N K [reps]\n");
        return 2;
    }
    int m = atoi(argv[1]), n = atoi(argv[2]), k = atoi(argv[3]);
    int reps = argc > 4 ? atoi(argv[4]) : 30;
    if (m < 1 || n < 1 || k < 1 || reps < 1 || reps > 100000) {
        fprintf(stderr, "sgemm_ceiling: sizes and reps must be positive\n");
        return 2;
    }
    float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * (size_t)k * n);
    float *c = malloc(sizeof(float) * (size_t)m * n);
    double *times = malloc(sizeof(double) * (size_t)reps);
    if (!a || !b || !c || !times) return 1;
    for (size_t i = 0; i < (size_t)m * k; i++) a[i] = (float)(i % 17) * 0.01f;
    for (size_t i = 0; i < (size_t)k * n; i++) b[i] = (float)(i % 13) * 0.01f;
    for (int r = -3; r < reps; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
        if (r >= 0) times[r] = now() - t0;
    }
    qsort(times, (size_t)reps, sizeof *times, compare);
    printf("gflops=%.3f core=%s\n", 2.0 * m * n * k / times[reps / 2] * 1e-9, gl_blas_core_name());
    free(a), free(b), free(c), free(times);
    return 0;
}
