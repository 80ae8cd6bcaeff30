/*
 * bench_tensor.c — gradlab's engine against raw BLAS and plain C loops, in one
 * process, on the same data, with the same thread count.
 *
 *   matmul       gl_tensor_matmul (allocates its output, as users see it) vs
 *                cblas_sgemm into a preallocated buffer; also with a
 *                transposed-view operand, which the engine hands to BLAS as
 *                CblasTrans (compared with raw sgemm given the same flags).
 *                Target: >= 95 % of raw GFLOP/s.
 *   elementwise  gl_tensor_binary add/mul and gl_tensor_unary exp on 10^7
 *                floats (each call allocates its output) vs a plain C loop
 *                into a preallocated output.  Target: >= 70 % of the loop's
 *                GB/s (bytes read + bytes written).  Info rows: the same loop
 *                into a freshly malloc'ed output each call (how much of a gap
 *                is page faults on fresh memory), the same with transparent
 *                huge pages, and gl_tensor_add_inplace (the engine's kernel
 *                without an allocation).
 *
 * Each case warms up, then runs rounds of one sample per contender back to
 * back (order reversed every other round); throughputs are medians and ratios
 * are medians of the per-round ratios.  Usage:
 *   bench_tensor [--quick] [--strict] [--only=matmul|--only=elementwise]
 *   --quick   tiny sizes, 2 repetitions, no targets judged (for tests)
 *   --strict  exit 1 when a target is missed
 * Environment: GRADLAB_THREADS (default 2) sets gl_set_num_threads, which
 * also sets OpenBLAS's thread count for the raw calls.
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

#include "gradlab.h"

/* ------------------------------------------------------------------ utils */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long minor_faults(void)
{
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_minflt;
}

static int compare_doubles(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double median(double *values, int count)
{
    qsort(values, (size_t)count, sizeof *values, compare_doubles);
    return count % 2 ? values[count / 2] : 0.5 * (values[count / 2 - 1] + values[count / 2]);
}

static void check(gl_status status, const gl_error *err, const char *what)
{
    if (status) {
        fprintf(stderr, "bench_tensor: %s failed: %s\n", what, err->message);
        exit(1);
    }
}

static float *buffer_new(int64_t numel)
{
    void *p = NULL;
    size_t bytes = ((size_t)numel * sizeof(float) + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) {
        fprintf(stderr, "bench_tensor: cannot allocate %lld floats\n", (long long)numel);
        exit(1);
    }
    return p;
}

static gl_tensor *randn_tensor(int ndim, const int64_t *shape)
{
    gl_error err;
    gl_tensor *t = NULL;
    check(gl_tensor_randn(ndim, shape, &t, &err), &err, "gl_tensor_randn");
    return t;
}

/* ----------------------------------------------------------- the contest */

/* One contender: run(context) performs one operation. */
typedef void (*bench_fn)(void *context);

enum { MAX_SAMPLES = 200, MAX_CONTENDERS = 5 };

typedef struct contest {
    int count;
    bench_fn run[MAX_CONTENDERS];
    void *context[MAX_CONTENDERS];
    double seconds[MAX_CONTENDERS];   /* median per operation */
    double faults[MAX_CONTENDERS];    /* minor page faults per operation */
    double ratio[MAX_CONTENDERS];     /* median over rounds of time[1] / time[k] */
    double warmup_faults[MAX_CONTENDERS];   /* minor page faults per warm-up call */
} contest;

typedef struct settings {
    bool quick;
    int samples;         /* wanted repetitions */
    int min_samples;     /* never fewer, whatever the time budget says */
    double min_sample;   /* seconds: batch small ops until a sample lasts this long */
    double budget;       /* seconds a case may take, roughly */
    int warmup_calls;    /* warm up for this many calls ... */
    double warmup_seconds;   /* ... or this long, whichever comes first */
} settings;

/* Warms up, picks a batch size so one sample lasts >= min_sample, then takes
 * rounds of one sample per contender, reversing the order every other round.
 * Contender 1 is the baseline: each contender's throughput ratio to it is the
 * median of the per-round ratios, which cancels drift that hits a whole round
 * (another process taking a core, clock changes) better than a ratio of medians. */
static void contest_run(contest *c, const settings *s)
{
    /* Warm-up: the thread pool, caches and the allocator's state.  The heap
     * takes a dozen calls or so to settle (see README), so warm up for
     * s->warmup_calls calls or s->warmup_seconds, whichever comes first. */
    double single = 0.0;
    for (int k = 0; k < c->count; k++) {
        long f0 = minor_faults();
        double begin = now_seconds();
        int calls = 0;
        do {
            c->run[k](c->context[k]);
            calls++;
        } while (calls < 2 || (!s->quick && calls < s->warmup_calls &&
                               now_seconds() - begin < s->warmup_seconds));
        c->warmup_faults[k] = (double)(minor_faults() - f0) / calls;
        double start = now_seconds();
        c->run[k](c->context[k]);
        double took = now_seconds() - start;
        if (took > single) single = took;
    }
    int batch = 1;
    if (!s->quick && single < s->min_sample)
        batch = (int)(s->min_sample / (single > 1e-9 ? single : 1e-9)) + 1;
    int samples = s->samples;
    double per_round = single * batch * c->count;
    if (!s->quick && per_round * samples > s->budget) {
        samples = (int)(s->budget / per_round);
        if (samples < s->min_samples) samples = s->min_samples;
    }
    if (samples > MAX_SAMPLES) samples = MAX_SAMPLES;
    double times[MAX_CONTENDERS][MAX_SAMPLES];
    long faults[MAX_CONTENDERS] = {0};
    for (int i = 0; i < samples; i++) {
        for (int j = 0; j < c->count; j++) {
            int k = i % 2 ? c->count - 1 - j : j;
            long f0 = minor_faults();
            double start = now_seconds();
            for (int b = 0; b < batch; b++) c->run[k](c->context[k]);
            times[k][i] = (now_seconds() - start) / batch;
            faults[k] += minor_faults() - f0;
        }
    }
    for (int k = 0; k < c->count; k++) {
        double ratios[MAX_SAMPLES];
        for (int i = 0; i < samples; i++) ratios[i] = times[1][i] / times[k][i];
        c->ratio[k] = median(ratios, samples);
    }
    for (int k = 0; k < c->count; k++) {
        c->seconds[k] = median(times[k], samples);
        c->faults[k] = (double)faults[k] / ((double)samples * batch);
    }
}

/* ------------------------------------------------------------------ table */

typedef struct row {
    char name[64];
    double mine, raw;        /* throughputs (medians) */
    double ratio;            /* median of per-round throughput ratios */
    const char *unit;
    double target;           /* minimum ratio, or 0 for an info row */
    char note[96];
} row;

enum { MAX_ROWS = 32 };
static row rows[MAX_ROWS];
static int row_count;

static row *row_add(const char *name, double mine, double raw, double ratio, const char *unit,
                    double target)
{
    if (row_count == MAX_ROWS) {
        fprintf(stderr, "bench_tensor: too many rows\n");
        exit(1);
    }
    row *r = &rows[row_count++];
    snprintf(r->name, sizeof r->name, "%s", name);
    r->mine = mine;
    r->raw = raw;
    r->ratio = ratio;
    r->unit = unit;
    r->target = target;
    r->note[0] = '\0';
    return r;
}

/* Prints the table; returns the number of missed targets. */
static int table_print(bool judge)
{
    int missed = 0, passed = 0;
    char rule[128];
    int width = printf("\n%-42s %9s %9s %-7s %6s %7s %-6s", "case", "gradlab", "raw", "unit",
                       "ratio", "target", "result") - 1;
    printf(" note\n");
    memset(rule, '-', sizeof rule);
    printf("%.*s\n", width < (int)sizeof rule ? width : (int)sizeof rule, rule);
    for (int i = 0; i < row_count; i++) {
        const row *r = &rows[i];
        char target[16] = "info", result[8] = "-";
        double ratio = r->ratio;
        if (r->target > 0) {
            snprintf(target, sizeof target, ">=%.2f", r->target);
            if (judge) {
                bool ok = ratio >= r->target;
                snprintf(result, sizeof result, "%s", ok ? "PASS" : "MISS");
                if (ok) passed++;
                else missed++;
            }
        }
        printf("%-42s %9.2f %9.2f %-7s %6.3f %7s %-6s %s\n", r->name, r->mine, r->raw, r->unit,
               ratio, target, result, r->note);
    }
    printf("gradlab, raw: medians; ratio: median over rounds of the per-round throughput ratio.\n"
           "[info] rows: the 'gradlab' column holds the variant the case names, against the same\n"
           "raw baseline (the C loop into a preallocated, already-touched output).\n");
    if (judge) printf("\n%d PASS, %d MISS\n", passed, missed);
    else printf("\n(--quick: sizes too small to judge; targets not checked)\n");
    return missed;
}

/* ----------------------------------------------------------------- matmul */

typedef struct matmul_case {
    int n, k, m;
    bool trans_a;           /* A is the transposed view of a contiguous (k, n) tensor */
    gl_tensor *a, *b;       /* a: (n, k) possibly a view; b: (k, m) */
    const float *a_data;    /* the raw buffer behind a */
    const float *b_data;
    float *c;               /* raw output, preallocated (n, m) */
} matmul_case;

static void run_sgemm(void *context)
{
    matmul_case *mc = context;
    cblas_sgemm(CblasRowMajor, mc->trans_a ? CblasTrans : CblasNoTrans, CblasNoTrans, mc->n, mc->m,
                mc->k, 1.0f, mc->a_data, mc->trans_a ? mc->n : mc->k, mc->b_data, mc->m, 0.0f,
                mc->c, mc->m);
}

static void run_gl_matmul(void *context)
{
    matmul_case *mc = context;
    gl_error err;
    gl_tensor *out = NULL;
    check(gl_tensor_matmul(mc->a, mc->b, &out, &err), &err, "gl_tensor_matmul");
    gl_tensor_release(out);
}

/* Largest |difference| between gradlab's product and raw sgemm's. */
static double matmul_check(matmul_case *mc)
{
    gl_error err;
    gl_tensor *out = NULL;
    run_sgemm(mc);
    check(gl_tensor_matmul(mc->a, mc->b, &out, &err), &err, "gl_tensor_matmul");
    const float *g = gl_tensor_data(out);
    double worst = 0.0;
    for (int64_t i = 0; i < (int64_t)mc->n * mc->m; i++) {
        double d = fabs((double)g[i] - (double)mc->c[i]);
        if (d > worst) worst = d;
    }
    gl_tensor_release(out);
    return worst;
}

static void bench_matmul(int n, int k, int m, bool trans_a, const settings *s)
{
    gl_error err;
    matmul_case mc = {.n = n, .k = k, .m = m, .trans_a = trans_a};
    int64_t shape_b[2] = {k, m};
    mc.b = randn_tensor(2, shape_b);
    if (trans_a) {
        int64_t shape_at[2] = {k, n};
        gl_tensor *at = randn_tensor(2, shape_at);
        check(gl_tensor_transpose(at, 0, 1, &mc.a, &err), &err, "gl_tensor_transpose");
        gl_tensor_release(at);   /* the view keeps the storage alive */
    } else {
        int64_t shape_a[2] = {n, k};
        mc.a = randn_tensor(2, shape_a);
    }
    mc.a_data = gl_tensor_data(mc.a);
    mc.b_data = gl_tensor_data(mc.b);
    mc.c = buffer_new((int64_t)n * m);
    memset(mc.c, 0, sizeof(float) * (size_t)n * (size_t)m);   /* fault the raw output in */

    double worst = matmul_check(&mc);
    contest c = {.count = 2, .run = {run_gl_matmul, run_sgemm}, .context = {&mc, &mc}};
    contest_run(&c, s);
    double flops = 2.0 * n * k * m;
    char name[64];
    snprintf(name, sizeof name, "matmul %dx%d * %dx%d%s", n, k, k, m,
             trans_a ? ", A=t() view" : "");
    row *r = row_add(name, flops / c.seconds[0] * 1e-9, flops / c.seconds[1] * 1e-9, c.ratio[0],
                     "GFLOP/s", 0.95);
    snprintf(r->note, sizeof r->note,
             "%.3g ms/call; faults/call %.0f vs %.0f (warm-up %.0f vs %.0f); max|diff| %.1e",
             c.seconds[0] * 1e3, c.faults[0], c.faults[1], c.warmup_faults[0], c.warmup_faults[1],
             worst);
    if (worst > 1e-3 * sqrt((double)k)) {
        fprintf(stderr, "bench_tensor: %s: gradlab and sgemm disagree by %g\n", name, worst);
        exit(1);
    }
    gl_tensor_release(mc.a);
    gl_tensor_release(mc.b);
    free(mc.c);
}

/* ------------------------------------------------------------ elementwise */

typedef enum { EW_ADD, EW_MUL, EW_EXP } ew_kind;

typedef struct ew_case {
    ew_kind kind;
    int64_t n;
    gl_tensor *a, *b;        /* inputs (b unused for exp) */
    const float *a_data, *b_data;
    float *out;              /* preallocated, already faulted in */
    gl_tensor *acc;          /* destination of add_ in place */
    double checksum;         /* keeps the fresh-output loop's work observable */
} ew_case;

/* The plain loops a C programmer would write; noinline so each is measured as
 * a whole, compiled with the engine's flags. */
__attribute__((noinline)) static void loop_add(int64_t n, float *restrict o,
                                               const float *restrict a, const float *restrict b)
{
    for (int64_t i = 0; i < n; i++) o[i] = a[i] + b[i];
}

__attribute__((noinline)) static void loop_mul(int64_t n, float *restrict o,
                                               const float *restrict a, const float *restrict b)
{
    for (int64_t i = 0; i < n; i++) o[i] = a[i] * b[i];
}

__attribute__((noinline)) static void loop_exp(int64_t n, float *restrict o,
                                               const float *restrict a)
{
    for (int64_t i = 0; i < n; i++) o[i] = expf(a[i]);
}

static void ew_loop(ew_case *e, float *o)
{
    switch (e->kind) {
    case EW_ADD: loop_add(e->n, o, e->a_data, e->b_data); break;
    case EW_MUL: loop_mul(e->n, o, e->a_data, e->b_data); break;
    case EW_EXP: loop_exp(e->n, o, e->a_data); break;
    }
}

static void run_loop_prealloc(void *context)
{
    ew_case *e = context;
    ew_loop(e, e->out);
}

static void run_loop_fresh(void *context)
{
    ew_case *e = context;
    float *o = buffer_new(e->n);
    ew_loop(e, o);
    e->checksum += o[e->n / 2];
    free(o);
}

/* The same, asking the kernel for transparent huge pages on the fresh output
 * (THP is often in "madvise" mode): one fault per 2 MiB instead of per 4 KiB. */
static void run_loop_fresh_huge(void *context)
{
    ew_case *e = context;
    const size_t huge = (size_t)2 << 20;
    size_t bytes = ((size_t)e->n * sizeof(float) + huge - 1) & ~(huge - 1);
    void *o = NULL;
    if (posix_memalign(&o, huge, bytes) != 0) {
        fprintf(stderr, "bench_tensor: cannot allocate %zu bytes\n", bytes);
        exit(1);
    }
    madvise(o, bytes, MADV_HUGEPAGE);   /* advisory: failure only means small pages */
    ew_loop(e, o);
    e->checksum += ((float *)o)[e->n / 2];
    free(o);
}

static gl_tensor *ew_gradlab(ew_case *e)
{
    gl_error err;
    gl_tensor *out = NULL;
    gl_status status = e->kind == EW_ADD   ? gl_tensor_binary(GL_OP_ADD, e->a, e->b, &out, &err)
                       : e->kind == EW_MUL ? gl_tensor_binary(GL_OP_MUL, e->a, e->b, &out, &err)
                                           : gl_tensor_unary(GL_OP_EXP, e->a, &out, &err);
    check(status, &err, "gl_tensor_binary/unary");
    return out;
}

static void run_gradlab(void *context) { gl_tensor_release(ew_gradlab(context)); }

static void run_add_inplace(void *context)
{
    ew_case *e = context;
    gl_error err;
    /* acc += 1e-30 * b: same traffic as add (read 2, write 1); the tiny alpha
     * keeps the values from drifting over thousands of calls. */
    check(gl_tensor_add_inplace(e->acc, e->b, 1e-30f, &err), &err, "gl_tensor_add_inplace");
}

static void bench_elementwise(ew_kind kind, int64_t n, const settings *s, gl_tensor *a,
                              gl_tensor *b)
{
    static const char *const names[] = {"add", "mul", "exp"};
    ew_case e = {.kind = kind, .n = n, .a = a, .b = b};
    e.a_data = gl_tensor_data(a);
    e.b_data = gl_tensor_data(b);
    e.out = buffer_new(n);
    memset(e.out, 0, sizeof(float) * (size_t)n);

    /* gradlab must compute exactly what the loop computes. */
    ew_loop(&e, e.out);
    gl_tensor *g = ew_gradlab(&e);
    if (memcmp(gl_tensor_data(g), e.out, sizeof(float) * (size_t)n) != 0) {
        fprintf(stderr, "bench_tensor: %s: gradlab's result differs from the C loop's\n",
                names[kind]);
        exit(1);
    }
    gl_tensor_release(g);

    double bytes = (double)n * sizeof(float) * (kind == EW_EXP ? 2.0 : 3.0);
    contest c = {.count = 4,
                 .run = {run_gradlab, run_loop_prealloc, run_loop_fresh, run_loop_fresh_huge},
                 .context = {&e, &e, &e, &e}};
    if (kind == EW_ADD) {
        gl_error err;
        check(gl_tensor_clone(a, &e.acc, &err), &err, "gl_tensor_clone");
        c.run[4] = run_add_inplace;
        c.context[4] = &e;
        c.count = 5;
    }
    contest_run(&c, s);
    double gb[MAX_CONTENDERS];
    for (int k = 0; k < c.count; k++) gb[k] = bytes / c.seconds[k] * 1e-9;

    char name[64];
    snprintf(name, sizeof name, "%s %.0e floats (gl allocates out)", names[kind], (double)n);
    row *r = row_add(name, gb[0], gb[1], c.ratio[0], "GB/s", 0.70);
    snprintf(r->note, sizeof r->note, "%.3g ms/call vs %.3g; faults/call %.0f vs %.0f",
             c.seconds[0] * 1e3, c.seconds[1] * 1e3, c.faults[0], c.faults[1]);
    snprintf(name, sizeof name, "  [info] %s: C loop, fresh malloc out", names[kind]);
    r = row_add(name, gb[2], gb[1], c.ratio[2], "GB/s", 0.0);
    snprintf(r->note, sizeof r->note, "%.3g ms/call; %.0f faults/call", c.seconds[2] * 1e3,
             c.faults[2]);
    snprintf(name, sizeof name, "  [info] %s: C loop, fresh out + THP", names[kind]);
    r = row_add(name, gb[3], gb[1], c.ratio[3], "GB/s", 0.0);
    snprintf(r->note, sizeof r->note, "%.3g ms/call; %.0f faults/call (madvise HUGEPAGE)",
             c.seconds[3] * 1e3, c.faults[3]);
    if (kind == EW_ADD) {
        r = row_add("  [info] add: gl add_ in place, no alloc", gb[4], gb[1], c.ratio[4], "GB/s",
                    0.0);
        snprintf(r->note, sizeof r->note, "%.3g ms/call; %.0f faults/call (no separate out)",
                 c.seconds[4] * 1e3, c.faults[4]);
        gl_tensor_release(e.acc);
    }
    free(e.out);
}

/* ------------------------------------------------------------------- main */

static void print_file_line(const char *label, const char *path)
{
    char line[256] = "?";
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(line, sizeof line, f)) snprintf(line, sizeof line, "?");
        fclose(f);
    }
    line[strcspn(line, "\n")] = '\0';
    printf("%-22s %s\n", label, line);
}

int main(int argc, char **argv)
{
    settings s = {.samples = 30, .min_samples = 10, .min_sample = 2e-3, .budget = 8.0,
                  .warmup_calls = 20, .warmup_seconds = 1.0};
    bool strict = false, do_matmul = true, do_elementwise = true;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) s.quick = true;
        else if (strcmp(argv[i], "--strict") == 0) strict = true;
        else if (strcmp(argv[i], "--only=matmul") == 0) do_elementwise = false;
        else if (strcmp(argv[i], "--only=elementwise") == 0) do_matmul = false;
        else {
            fprintf(stderr, "usage: %s [--quick] [--strict] [--only=matmul|--only=elementwise]\n",
                    argv[0]);
            return 2;
        }
    }
    if (s.quick) s.samples = s.min_samples = s.warmup_calls = 2;

    int threads = 2;
    const char *env = getenv("GRADLAB_THREADS");
    if (env && *env) {
        threads = atoi(env);
        if (threads < 1) {
            fprintf(stderr, "bench_tensor: GRADLAB_THREADS must be a positive integer, got '%s'\n",
                    env);
            return 2;
        }
    }
    gl_set_num_threads(threads);
    gl_manual_seed(42);
    const char *coretype = getenv("OPENBLAS_CORETYPE");

    printf("gradlab engine benchmark%s\n", s.quick ? " (--quick)" : "");
    printf("%-22s %d (gl_get_num_threads %d, openblas_get_num_threads %d)\n", "threads", threads,
           gl_get_num_threads(), openblas_get_num_threads());
    printf("%-22s %s\n", "OPENBLAS_CORETYPE", !coretype ? "(unset)" : *coretype ? coretype : "(empty)");
    printf("%-22s %s / core %s\n", "OpenBLAS", openblas_get_config(), openblas_get_corename());
    printf("%-22s cc %s, compiled as the engine is (-O3, no -march, no -ffast-math)\n", "compiler",
           __VERSION__);
    const char *core = openblas_get_corename();
    if ((__builtin_cpu_supports("avx2") || __builtin_cpu_supports("avx512f")) &&
        (strcmp(core, "Prescott") == 0 || strcmp(core, "Core2") == 0 ||
         strcmp(core, "Nehalem") == 0))
        printf("%-22s OpenBLAS did not recognise this AVX2/AVX-512 CPU and runs its generic %s\n"
               "%-22s kernels; OPENBLAS_CORETYPE=Cooperlake or SkylakeX (AVX-512) or Haswell\n"
               "%-22s (AVX2) is much faster (see bench/README.md)\n",
               "WARNING", core, "", "");
    print_file_line("transparent hugepages", "/sys/kernel/mm/transparent_hugepage/enabled");
    print_file_line("load average", "/proc/loadavg");
    printf("%-22s warm-up %d calls or %.1f s; %d rounds (>= %d when a case is slow), one sample\n"
           "%-22s per contender each, order reversed every other round\n",
           "method", s.warmup_calls, s.warmup_seconds, s.samples, s.min_samples, "");

    /* matmul: the three shapes from the issue, then the transposed-view variant. */
    static const int shapes[3][3] = {{1024, 1024, 1024}, {128, 1024, 1024}, {64, 256, 256}};
    static const int quick_shapes[3][3] = {{64, 64, 64}, {16, 64, 64}, {8, 32, 32}};
    for (int t = 0; t < 2 && do_matmul; t++)
        for (int i = 0; i < 3; i++) {
            const int *sh = s.quick ? quick_shapes[i] : shapes[i];
            bench_matmul(sh[0], sh[1], sh[2], t == 1, &s);
        }

    /* elementwise on 10^7 floats. */
    if (do_elementwise) {
        int64_t n = s.quick ? 10000 : 10000000;
        gl_tensor *a = randn_tensor(1, &n), *b = randn_tensor(1, &n);
        bench_elementwise(EW_ADD, n, &s, a, b);
        bench_elementwise(EW_MUL, n, &s, a, b);
        bench_elementwise(EW_EXP, n, &s, a, b);
        gl_tensor_release(a);
        gl_tensor_release(b);
    }

    int missed = table_print(!s.quick);
    return strict && missed ? 1 : 0;
}
