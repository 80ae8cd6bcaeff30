/*
 * optim.c — fused optimizer updates: one pass over each parameter, reading the
 * gradient and state and writing parameter and state in place.
 *
 * The rules are PyTorch's documented algorithms (torch.optim.SGD, Adam, AdamW,
 * RMSprop, Adagrad), written so the float operations happen in the same order,
 * which keeps results comparable with published ones.  For every element:
 *
 *   g = grad + weight_decay * p + l1 * sign(p)           (AdamW: no L2 term)
 *   SGD      b = momentum * b + (1 - dampening) * g  (b = g on step 1)
 *            g = nesterov ? g + momentum * b : b;  p -= lr * g
 *   Adam     m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2  (AMSGrad: v_max = max(v_max, v))
 *            p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *   AdamW    p *= 1 - lr * weight_decay, then Adam with g = grad (+ l1 term)
 *   RMSprop  v = alpha v + (1 - alpha) g^2;  centered: a = alpha a + (1 - alpha) g, v' = v - a^2
 *            d = sqrt(v') + eps;  momentum: b = momentum b + g / d, p -= lr b;  else p -= lr g / d
 *   Adagrad  s += g^2;  p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)
 */
#include <math.h>

#include "internal.h"
#include "monitor.h"   /* GL_MULTIVERSION */

/* Each kernel is compiled for AVX-512, AVX2 and baseline x86-64 and picked at
 * load time.  -std=c11 keeps a * b + c as two roundings (no contraction into
 * FMA), so every copy computes the same parameters bit for bit. */

static gl_status check_pair(const char *name, const gl_tensor *param, const gl_tensor *other,
                            const char *what, gl_error *err)
{
    char ps[160], os[160];
    if (!other) return gl_error_set(err, GL_EARG, 2, "%s: missing %s", name, what);
    if (!gl_shape_equal(param->ndim, param->shape, other->ndim, other->shape))
        return gl_error_set(err, GL_ESHAPE, 2, "%s: %s has shape %s but the parameter has %s", name, what,
                            GL_SHAPE_STR(other, os), GL_SHAPE_STR(param, ps));
    if (!gl_tensor_is_contiguous(other) || !gl_tensor_is_contiguous(param))
        return gl_error_set(err, GL_EARG, 1, "%s: the parameter and its %s must be contiguous tensors",
                            name, what);
    return GL_OK;
}

static inline float sign_of(float x) { return (float)((x > 0) - (x < 0)); }

/* The norms a monitor asks for, ‖p_new - p_old‖² and ‖p_old‖², nearly free:
 * each kernel runs in blocks of NORM_BLOCK elements; inside a block the
 * squares are added in float (vector lanes, reassociated by the simd
 * reduction, hidden behind the update's own arithmetic) and each block's sums
 * are folded into double.  The old values go to a stack buffer as they are
 * read, so a block whose float sums may have under- or overflowed (tiny
 * updates are the vanishing regime) is summed again in double. */
enum { NORM_BLOCK = 1024 };

typedef struct norm_sums {
    double update_squares, param_squares;
} norm_sums;

/* In an update loop over i in [start, end): saves old, adds the squares. */
#define NOTE_NORMS(old, new)                                           \
    do {                                                               \
        if (norms) {                                                   \
            float old_ = (old), delta_ = (new) - old_;                 \
            saved[i - start] = old_;                                   \
            block_update += delta_ * delta_;                           \
            block_param += old_ * old_;                                \
        }                                                              \
    } while (0)

static inline __attribute__((always_inline)) void fold_block(float update, float weight, const float *old,
                                                              const float *new, int64_t n, norm_sums *sums)
{
    /* Float squares lose values under ~1e-19 and overflow past ~1e19; 1e-28
     * keeps what is lost under 1e-7 of the sum.  Each sum that may have lost
     * something is redone in double.  (A zero update is recomputed too: it
     * may be all underflow; the common zero, no value moved at all, is told
     * by a comparison pass, cheaper than the sum: a vanishing gradient leaves
     * whole layers unchanged step after step.) */
    bool update_ok = isfinite(update) && update >= 1e-28f, weight_ok = isfinite(weight) && weight >= 1e-28f;
    if (!update_ok && update == 0) {
        int moved = 0;
#pragma omp simd reduction(| : moved)
        for (int64_t k = 0; k < n; k++) moved |= new[k] != old[k];
        update_ok = !moved;
    }
    if (update_ok && weight_ok) {
        sums->update_squares += update;
        sums->param_squares += weight;
        return;
    }
    double update_d = 0, weight_d = 0;
#pragma omp simd reduction(+ : update_d, weight_d)
    for (int64_t k = 0; k < n; k++) {
        double o = old[k], d = (double)new[k] - o;
        update_d += d * d;
        weight_d += o * o;
    }
    sums->update_squares += update_ok ? update : update_d;
    sums->param_squares += weight_ok ? weight : weight_d;
}

/* The kernels below update elements [begin, end) and add the norms' squares
 * to `sums` when it is not NULL.  Each is compiled per instruction set; the
 * public functions check the arguments once, then run one range, or (without
 * norms, on big tensors) several ranges on the engine's threads: updates are
 * elementwise, so the split changes no value. */

/* One SGD element: the new value of p (b updated in place when present).
 * `decay` (weight decay or L1 present) is a constant in every caller: without
 * decay terms the gradient is used as it is, as PyTorch skips them when they
 * are zero (adding 0 * p would also turn an infinite weight into NaN). */
static inline __attribute__((always_inline)) float sgd_element(float old, float grad, float *restrict b,
                                                                const float lr, const float momentum,
                                                                const float dampening, const float weight_decay,
                                                                const float l1, const bool nesterov,
                                                                const bool first, const bool decay)
{
    float d = decay ? grad + weight_decay * old + l1 * sign_of(old) : grad;
    if (b) {
        *b = first ? d : momentum * *b + (1.0f - dampening) * d;
        d = nesterov ? d + momentum * *b : *b;
    }
    return old - lr * d;
}

/* SGD's loops; `norms`, `decay` and `has_b` are constants in every call below,
 * so each copy keeps only its own work.  SGD has too little arithmetic to hide
 * the latency of one vector of float sums: with norms, a block adds its
 * squares in NORM_LANES independent lanes (summed in a fixed order, so the
 * result does not depend on the instruction set's vector width). */
enum { NORM_LANES = 64 };

static inline __attribute__((always_inline)) void sgd_loops(float *restrict p, const float *restrict g,
                                                             float *restrict b, int64_t step,
                                                             const gl_sgd_options *o, int64_t begin, int64_t end,
                                                             norm_sums *sums, const bool norms, const bool decay,
                                                             const bool has_b)
{
    /* Hyper-parameters in locals: the compiler cannot prove the float stores
     * below leave *o alone, and would reload them every element. */
    const float lr = o->lr, momentum = o->momentum, dampening = o->dampening;
    const float weight_decay = o->weight_decay, l1 = o->l1;
    const bool nesterov = o->nesterov, first = step == 1;
#define SGD_ELEMENT(i) \
    sgd_element(p[i], g[i], has_b ? b + (i) : NULL, lr, momentum, dampening, weight_decay, l1, nesterov, first, decay)
    if (!norms) {
        #pragma omp simd
        for (int64_t i = begin; i < end; i++) p[i] = SGD_ELEMENT(i);
        return;
    }
    float saved[NORM_BLOCK];
    for (int64_t start = begin; start < end; start += NORM_BLOCK) {
        int64_t stop = end - start > NORM_BLOCK ? start + NORM_BLOCK : end, i = start;
        float update_lanes[NORM_LANES] = {0}, param_lanes[NORM_LANES] = {0};
        for (; stop - i >= NORM_LANES; i += NORM_LANES) {
            for (int j = 0; j < NORM_LANES; j++) {
                float old = p[i + j], new = SGD_ELEMENT(i + j), delta = new - old;
                p[i + j] = new;
                saved[i + j - start] = old;
                update_lanes[j] += delta * delta;
                param_lanes[j] += old * old;
            }
        }
        for (int j = 0; i < stop; i++, j++) {
            float old = p[i], new = SGD_ELEMENT(i), delta = new - old;
            p[i] = new;
            saved[i - start] = old;
            update_lanes[j] += delta * delta;
            param_lanes[j] += old * old;
        }
        /* In halves, as a tree: the same order on every instruction set. */
        for (int half = NORM_LANES / 2; half > 0; half /= 2)
            for (int j = 0; j < half; j++) {
                update_lanes[j] += update_lanes[j + half];
                param_lanes[j] += param_lanes[j + half];
            }
        fold_block(update_lanes[0], param_lanes[0], saved, p + start, stop - start, sums);
    }
#undef SGD_ELEMENT
}

/* Plain SGD (no momentum, no decay terms) with norms, the monitor's usual
 * case, on AVX-512: the same update (multiply, then subtract: the same bits as
 * every other copy), the squares added with fused multiply-adds into four
 * register accumulators per sum.  GCC kept the lanes of the loop above in
 * memory and spent two instructions a square; this runs the monitored step's
 * norms ~1.5x faster.  The squares may differ from the portable loop's in the
 * last bits (like the statistics' FMA copies in monitor.c). */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SGD_NORMS_AVX512 1
static bool sgd_norms_fast(void) { return __builtin_cpu_supports("avx512f"); }

__attribute__((target("avx512f"))) static void sgd_plain_norms_avx512(float *restrict p, const float *restrict g,
                                                                       float lr, int64_t begin, int64_t end,
                                                                       norm_sums *sums)
{
    const __m512 rate = _mm512_set1_ps(lr);
    float saved[NORM_BLOCK];
    for (int64_t start = begin; start < end; start += NORM_BLOCK) {
        int64_t stop = end - start > NORM_BLOCK ? start + NORM_BLOCK : end, i = start;
        __m512 u0 = _mm512_setzero_ps(), u1 = u0, u2 = u0, u3 = u0, w0 = u0, w1 = u0, w2 = u0, w3 = u0;
#define SGD_STEP(k, u, w)                                                                  \
    do {                                                                                   \
        __m512 old = _mm512_loadu_ps(p + i + 16 * (k));                                    \
        __m512 new = _mm512_sub_ps(old, _mm512_mul_ps(rate, _mm512_loadu_ps(g + i + 16 * (k)))); \
        _mm512_storeu_ps(p + i + 16 * (k), new);                                           \
        _mm512_storeu_ps(saved + (i - start) + 16 * (k), old);                             \
        __m512 delta = _mm512_sub_ps(new, old);                                            \
        u = _mm512_fmadd_ps(delta, delta, u);                                              \
        w = _mm512_fmadd_ps(old, old, w);                                                  \
    } while (0)
        for (; stop - i >= 64; i += 64) {
            SGD_STEP(0, u0, w0);
            SGD_STEP(1, u1, w1);
            SGD_STEP(2, u2, w2);
            SGD_STEP(3, u3, w3);
        }
        for (; stop - i >= 16; i += 16) SGD_STEP(0, u0, w0);
#undef SGD_STEP
        if (i < stop) {   /* the last 1-15 values, masked: zeros add nothing */
            __mmask16 mask = (__mmask16)((1u << (stop - i)) - 1);
            __m512 old = _mm512_maskz_loadu_ps(mask, p + i);
            __m512 new = _mm512_sub_ps(old, _mm512_mul_ps(rate, _mm512_maskz_loadu_ps(mask, g + i)));
            _mm512_mask_storeu_ps(p + i, mask, new);
            _mm512_mask_storeu_ps(saved + (i - start), mask, old);
            __m512 delta = _mm512_sub_ps(new, old);
            u1 = _mm512_fmadd_ps(delta, delta, u1);
            w1 = _mm512_fmadd_ps(old, old, w1);
        }
        float update = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(u0, u1), _mm512_add_ps(u2, u3)));
        float weight = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(w0, w1), _mm512_add_ps(w2, w3)));
        fold_block(update, weight, saved, p + start, stop - start, sums);
    }
}
#endif

GL_MULTIVERSION static void sgd_range(float *restrict p, const float *restrict g, float *restrict b, int64_t step,
                                      const gl_sgd_options *o, int64_t begin, int64_t end, norm_sums *sums)
{
    bool decay = o->weight_decay != 0 || o->l1 != 0;
#ifdef SGD_NORMS_AVX512
    if (sums && !decay && !b && sgd_norms_fast()) {
        sgd_plain_norms_avx512(p, g, o->lr, begin, end, sums);
        return;
    }
#endif
    /* Momentum and norms are what SGD is used with; decay terms run the general copies. */
    if (decay) {
        if (sums) sgd_loops(p, g, b, step, o, begin, end, sums, true, true, b != NULL);
        else sgd_loops(p, g, b, step, o, begin, end, NULL, false, true, b != NULL);
    } else if (b) {
        if (sums) sgd_loops(p, g, b, step, o, begin, end, sums, true, false, true);
        else sgd_loops(p, g, b, step, o, begin, end, NULL, false, false, true);
    } else {
        if (sums) sgd_loops(p, g, b, step, o, begin, end, sums, true, false, false);
        else sgd_loops(p, g, b, step, o, begin, end, NULL, false, false, false);
    }
}

/* Adam over [begin, end).  `decay_terms` false skips the gradient's L2 and L1
 * terms (both zero: Adam without weight decay, AdamW), as PyTorch does —
 * sign_of alone cost a third of the loop; vmax is AMSGrad's running maximum
 * or NULL.  Inlined with constant arguments, so each caller gets its own loop. */
static inline __attribute__((always_inline)) void adam_loop(float *restrict p, const float *restrict g,
                                                            float *restrict m, float *restrict v,
                                                            float *restrict vmax, float decay, float l2, float l1,
                                                            float b1, float b2, float eps, float step_size,
                                                            float correction2_sqrt, int64_t begin, int64_t end,
                                                            norm_sums *sums, bool decay_terms)
{
    const bool norms = sums != NULL;
    float saved[NORM_BLOCK];
    for (int64_t start = begin; start < end; start += NORM_BLOCK) {
        int64_t stop = end - start > NORM_BLOCK ? start + NORM_BLOCK : end;
        float block_update = 0, block_param = 0;
        #pragma omp simd reduction(+ : block_update, block_param)
        for (int64_t i = start; i < stop; i++) {
            float old = p[i];
            float pi = old * decay;
            float d = decay_terms ? g[i] + l2 * pi + l1 * sign_of(pi) : g[i];
            float mi = b1 * m[i] + (1.0f - b1) * d;
            float vi = b2 * v[i] + (1.0f - b2) * d * d;
            m[i] = mi;
            v[i] = vi;
            if (vmax) vi = vmax[i] = fmaxf(vmax[i], vi);
            p[i] = pi - step_size * (mi / (sqrtf(vi) / correction2_sqrt + eps));
            NOTE_NORMS(old, p[i]);
        }
        if (norms) fold_block(block_update, block_param, saved, p + start, stop - start, sums);
    }
}

GL_MULTIVERSION static void adam_range(float *restrict p, const float *restrict g, float *restrict m,
                                       float *restrict v, float *restrict vmax, int64_t step,
                                       const gl_adam_options *o, int64_t begin, int64_t end, norm_sums *sums)
{
    /* Bias corrections in double, as PyTorch computes them on the host. */
    double correction1 = 1.0 - pow((double)o->beta1, (double)step);
    double correction2 = 1.0 - pow((double)o->beta2, (double)step);
    float step_size = (float)((double)o->lr / correction1);
    float c2 = (float)sqrt(correction2);
    float decay = o->decoupled ? 1.0f - o->lr * o->weight_decay : 1.0f;
    float l2 = o->decoupled ? 0.0f : o->weight_decay;
    const float b1 = o->beta1, b2 = o->beta2, eps = o->eps, l1 = o->l1;
    if (vmax)
        adam_loop(p, g, m, v, vmax, decay, l2, l1, b1, b2, eps, step_size, c2, begin, end, sums, true);
    else if (l2 == 0 && l1 == 0)
        adam_loop(p, g, m, v, NULL, decay, l2, l1, b1, b2, eps, step_size, c2, begin, end, sums, false);
    else
        adam_loop(p, g, m, v, NULL, decay, l2, l1, b1, b2, eps, step_size, c2, begin, end, sums, true);
}

GL_MULTIVERSION static void rmsprop_range(float *restrict p, const float *restrict g, float *restrict v,
                                          float *restrict b, float *restrict a, const gl_rmsprop_options *o,
                                          int64_t begin, int64_t end, norm_sums *sums)
{
    const float alpha = o->alpha, weight_decay = o->weight_decay, l1 = o->l1, eps = o->eps;
    const float lr = o->lr, momentum = o->momentum;
    const bool norms = sums != NULL;
    float saved[NORM_BLOCK];
    for (int64_t start = begin; start < end; start += NORM_BLOCK) {
        int64_t stop = end - start > NORM_BLOCK ? start + NORM_BLOCK : end;
        float block_update = 0, block_param = 0;
        #pragma omp simd reduction(+ : block_update, block_param)
        for (int64_t i = start; i < stop; i++) {
            float old = p[i];
            float d = g[i] + weight_decay * old + l1 * sign_of(old);
            v[i] = alpha * v[i] + (1.0f - alpha) * d * d;
            float variance = v[i];
            if (a) {
                a[i] = alpha * a[i] + (1.0f - alpha) * d;
                variance = v[i] - a[i] * a[i];
            }
            float denominator = sqrtf(variance) + eps;
            if (b) {
                b[i] = momentum * b[i] + d / denominator;
                p[i] = old - lr * b[i];
            } else {
                p[i] = old - lr * (d / denominator);
            }
            NOTE_NORMS(old, p[i]);
        }
        if (norms) fold_block(block_update, block_param, saved, p + start, stop - start, sums);
    }
}

GL_MULTIVERSION static void adagrad_range(float *restrict p, const float *restrict g, float *restrict s,
                                          int64_t step, const gl_adagrad_options *o, int64_t begin, int64_t end,
                                          norm_sums *sums)
{
    float clr = (float)((double)o->lr / (1.0 + (double)(step - 1) * o->lr_decay));
    const float weight_decay = o->weight_decay, l1 = o->l1, eps = o->eps;
    const bool norms = sums != NULL;
    float saved[NORM_BLOCK];
    for (int64_t start = begin; start < end; start += NORM_BLOCK) {
        int64_t stop = end - start > NORM_BLOCK ? start + NORM_BLOCK : end;
        float block_update = 0, block_param = 0;
        #pragma omp simd reduction(+ : block_update, block_param)
        for (int64_t i = start; i < stop; i++) {
            float old = p[i];
            float d = g[i] + weight_decay * old + l1 * sign_of(old);
            s[i] += d * d;
            p[i] = old - clr * (d / (sqrtf(s[i]) + eps));
            NOTE_NORMS(old, p[i]);
        }
        if (norms) fold_block(block_update, block_param, saved, p + start, stop - start, sums);
    }
}

/* ------------------------------------------------------------ drivers */

typedef enum { KIND_SGD, KIND_ADAM, KIND_RMSPROP, KIND_ADAGRAD } optim_kind;

/* One update: the kind, the data (state buffers in order, NULL when absent),
 * the options, and how it is split. */
typedef struct optim_job {
    optim_kind kind;
    float *p, *s1, *s2, *s3;
    const float *g;
    int64_t step, n;
    const void *options;
    int parts;
} optim_job;

static void optim_range(const optim_job *j, int64_t begin, int64_t end, norm_sums *sums)
{
    switch (j->kind) {
    case KIND_SGD: sgd_range(j->p, j->g, j->s1, j->step, j->options, begin, end, sums); break;
    case KIND_ADAM: adam_range(j->p, j->g, j->s1, j->s2, j->s3, j->step, j->options, begin, end, sums); break;
    case KIND_RMSPROP: rmsprop_range(j->p, j->g, j->s1, j->s2, j->s3, j->options, begin, end, sums); break;
    case KIND_ADAGRAD: adagrad_range(j->p, j->g, j->s1, j->step, j->options, begin, end, sums); break;
    }
}

/* Part k of the job: whole norm blocks, so parts never share a cache line. */
static void optim_part(void *arg, int part)
{
    const optim_job *j = arg;
    int64_t blocks = (j->n + NORM_BLOCK - 1) / NORM_BLOCK;
    int64_t begin = blocks * part / j->parts * NORM_BLOCK, end = blocks * (part + 1) / j->parts * NORM_BLOCK;
    optim_range(j, begin, end < j->n ? end : j->n, NULL);
}

/* An update is memory-bound: a part pays for a thread's wake-up (~5-10 us)
 * from some 2^17 elements (1.5 MB of traffic and more). */
#define OPTIM_MIN_PER_PART 131072.0

static void optim_run(optim_job *j, gl_update_norms *norms)
{
    if (norms) {   /* one range in a fixed order: the norms do not depend on threads */
        norm_sums sums = {0, 0};
        optim_range(j, 0, j->n, &sums);
        norms->update_squares = sums.update_squares;
        norms->param_squares = sums.param_squares;
        return;
    }
    j->parts = gl_parallel_parts((double)j->n, OPTIM_MIN_PER_PART, (j->n + NORM_BLOCK - 1) / NORM_BLOCK);
    gl_parallel_run(j->parts, optim_part, j);
}

static float *data_or_null(gl_tensor *t) { return t ? gl_tensor_data(t) : NULL; }

gl_status gl_optim_sgd(gl_tensor *param, const gl_tensor *grad, gl_tensor *momentum_buffer, int64_t step,
                       const gl_sgd_options *o, gl_update_norms *norms, gl_error *err)
{
    gl_status status = check_pair("SGD", param, grad, "gradient", err);
    if (!status && o->momentum != 0) status = check_pair("SGD", param, momentum_buffer, "momentum buffer", err);
    if (status) return status;
    gl_tensor *b = o->momentum != 0 ? momentum_buffer : NULL;
    optim_job j = {.kind = KIND_SGD, .p = gl_tensor_data(param), .g = gl_tensor_data(grad), .s1 = data_or_null(b),
                   .step = step, .n = gl_tensor_numel(param), .options = o};
    optim_run(&j, norms);
    param->storage->version++;
    if (b) b->storage->version++;
    return GL_OK;
}

gl_status gl_optim_adam(gl_tensor *param, const gl_tensor *grad, gl_tensor *exp_avg, gl_tensor *exp_avg_sq,
                        gl_tensor *max_exp_avg_sq, int64_t step, const gl_adam_options *o,
                        gl_update_norms *norms, gl_error *err)
{
    const char *name = o->decoupled ? "AdamW" : "Adam";
    gl_status status = check_pair(name, param, grad, "gradient", err);
    if (!status) status = check_pair(name, param, exp_avg, "exp_avg", err);
    if (!status) status = check_pair(name, param, exp_avg_sq, "exp_avg_sq", err);
    if (!status && o->amsgrad) status = check_pair(name, param, max_exp_avg_sq, "max_exp_avg_sq", err);
    if (status) return status;
    optim_job j = {.kind = KIND_ADAM, .p = gl_tensor_data(param), .g = gl_tensor_data(grad),
                   .s1 = gl_tensor_data(exp_avg), .s2 = gl_tensor_data(exp_avg_sq),
                   .s3 = o->amsgrad ? gl_tensor_data(max_exp_avg_sq) : NULL,
                   .step = step, .n = gl_tensor_numel(param), .options = o};
    optim_run(&j, norms);
    param->storage->version++;
    exp_avg->storage->version++;
    exp_avg_sq->storage->version++;
    if (o->amsgrad) max_exp_avg_sq->storage->version++;
    return GL_OK;
}

gl_status gl_optim_rmsprop(gl_tensor *param, const gl_tensor *grad, gl_tensor *square_avg,
                           gl_tensor *momentum_buffer, gl_tensor *grad_avg, int64_t step,
                           const gl_rmsprop_options *o, gl_update_norms *norms, gl_error *err)
{
    gl_status status = check_pair("RMSprop", param, grad, "gradient", err);
    if (!status) status = check_pair("RMSprop", param, square_avg, "square_avg", err);
    if (!status && o->momentum > 0) status = check_pair("RMSprop", param, momentum_buffer, "momentum buffer", err);
    if (!status && o->centered) status = check_pair("RMSprop", param, grad_avg, "grad_avg", err);
    if (status) return status;
    gl_tensor *b = o->momentum > 0 ? momentum_buffer : NULL, *a = o->centered ? grad_avg : NULL;
    optim_job j = {.kind = KIND_RMSPROP, .p = gl_tensor_data(param), .g = gl_tensor_data(grad),
                   .s1 = gl_tensor_data(square_avg), .s2 = data_or_null(b), .s3 = data_or_null(a),
                   .step = step, .n = gl_tensor_numel(param), .options = o};
    optim_run(&j, norms);
    param->storage->version++;
    square_avg->storage->version++;
    if (b) b->storage->version++;
    if (a) a->storage->version++;
    return GL_OK;
}

gl_status gl_optim_adagrad(gl_tensor *param, const gl_tensor *grad, gl_tensor *sum, int64_t step,
                           const gl_adagrad_options *o, gl_update_norms *norms, gl_error *err)
{
    gl_status status = check_pair("Adagrad", param, grad, "gradient", err);
    if (!status) status = check_pair("Adagrad", param, sum, "sum", err);
    if (status) return status;
    optim_job j = {.kind = KIND_ADAGRAD, .p = gl_tensor_data(param), .g = gl_tensor_data(grad),
                   .s1 = gl_tensor_data(sum), .step = step, .n = gl_tensor_numel(param), .options = o};
    optim_run(&j, norms);
    param->storage->version++;
    sum->storage->version++;
    return GL_OK;
}
