/*
 * blas_threads.c — is OpenBLAS faster on 1 thread or on 2 for a product of
 * this size?  Times cblas_sgemm for a ladder of shapes (the ones gradlab's
 * layers make: Linear forward and both backward products), alternating the
 * thread counts so load changes hit both, and prints the median of each and
 * their ratio.  engine/blas.c's per-call thread choice comes from this table.
 *
 *   blas_threads [--quick]
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gradlab.h"

void openblas_set_num_threads(int threads);

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

typedef struct { int m, n, k; CBLAS_TRANSPOSE ta, tb; const char *what; } shape;

/* Seconds per call: calls are batched so one sample lasts >= 0.5 ms. */
static double time_call(const shape *s, const float *a, const float *b, float *c, int threads, int calls)
{
    openblas_set_num_threads(threads);
    int lda = s->ta == CblasNoTrans ? s->k : s->m, ldb = s->tb == CblasNoTrans ? s->n : s->k;
    double t0 = now();
    for (int i = 0; i < calls; i++)
        cblas_sgemm(CblasRowMajor, s->ta, s->tb, s->m, s->n, s->k, 1.0f, a, lda, b, ldb, 0.0f, c, s->n);
    return (now() - t0) / calls;
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    int samples = quick ? 3 : 41;
    static const shape shapes[] = {
        {32, 64, 64, CblasNoTrans, CblasTrans, "Linear(64) fwd b32"},
        {64, 64, 32, CblasTrans, CblasNoTrans, "Linear(64) dW b32"},
        {128, 64, 64, CblasNoTrans, CblasTrans, "Linear(64) fwd b128"},
        {32, 128, 128, CblasNoTrans, CblasTrans, "Linear(128) fwd b32"},
        {32, 256, 256, CblasNoTrans, CblasTrans, "Linear(256) fwd b32"},
        {32, 512, 160, CblasNoTrans, CblasTrans, "LSTM(32->128) gates b32"},
        {512, 160, 32, CblasTrans, CblasNoTrans, "LSTM gates dW b32"},
        {128, 256, 256, CblasNoTrans, CblasTrans, "Linear(256) fwd b128"},
        {1024, 128, 128, CblasNoTrans, CblasTrans, "Linear(128) fwd b1024"},
        {128, 512, 512, CblasNoTrans, CblasTrans, "Linear(512) fwd b128"},
        {16, 1152, 1024, CblasNoTrans, CblasNoTrans, "conv 16ch 3x3 32x32 img"},
        {128, 1024, 1024, CblasNoTrans, CblasTrans, "Linear(1024) fwd b128"},
        {1024, 1024, 128, CblasTrans, CblasNoTrans, "Linear(1024) dW b128"},
    };
    size_t count = sizeof shapes / sizeof shapes[0];
    size_t largest = 0;
    for (size_t i = 0; i < count; i++) {
        size_t sizes[3] = {(size_t)shapes[i].m * shapes[i].k, (size_t)shapes[i].k * shapes[i].n,
                           (size_t)shapes[i].m * shapes[i].n};
        for (int j = 0; j < 3; j++) if (sizes[j] > largest) largest = sizes[j];
    }
    float *a = malloc(largest * sizeof(float)), *b = malloc(largest * sizeof(float)),
          *c = malloc(largest * sizeof(float));
    double *one = malloc((size_t)samples * sizeof(double)), *two = malloc((size_t)samples * sizeof(double));
    if (!a || !b || !c || !one || !two) return 1;
    for (size_t i = 0; i < largest; i++) a[i] = (float)(i % 17) * 0.01f, b[i] = (float)(i % 13) * 0.01f;

    printf("OpenBLAS kernels %s; median of %d samples, 1 vs 2 threads\n", gl_blas_core_name(), samples);
    printf("%-26s %6s %6s %6s %12s %10s %10s %7s\n", "product", "m", "n", "k", "m*n*k", "1 thr us", "2 thr us",
           "2/1");
    for (size_t i = 0; i < count; i++) {
        const shape *s = &shapes[i];
        double flops = 2.0 * s->m * s->n * s->k;
        int calls = (int)(2e6 / flops) + 1;   /* ~0.5 ms per sample at 4 GFLOP/s */
        if (calls > 2000) calls = 2000;
        time_call(s, a, b, c, 1, calls);      /* warm up both settings */
        time_call(s, a, b, c, 2, calls);
        for (int r = 0; r < samples; r++) {
            one[r] = time_call(s, a, b, c, 1, calls);
            two[r] = time_call(s, a, b, c, 2, calls);
        }
        qsort(one, (size_t)samples, sizeof *one, compare);
        qsort(two, (size_t)samples, sizeof *two, compare);
        double t1 = one[samples / 2] * 1e6, t2 = two[samples / 2] * 1e6;
        printf("%-26s %6d %6d %6d %12.0f %10.2f %10.2f %7.2f\n", s->what, s->m, s->n, s->k,
               (double)s->m * s->n * s->k, t1, t2, t2 / t1);
    }
    free(a), free(b), free(c), free(one), free(two);
    return 0;
}
