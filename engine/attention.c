/*
 * attention.c — fused multi-head scaled dot-product attention.
 *
 *   q (B, Tq, H*dk)   k (B, Tk, H*dk)   v (B, Tk, H*dv)   batch first, heads packed
 *   mask: additive, broadcast to (B, H, Tq, Tk)     key_padding_mask (B, Tk), nonzero = drop
 *   P   (B, H, Tq, Tk)  softmax weights, saved     Pd: P with dropout applied, saved if used
 *   out (B, Tq, H*dv)                                  head h in columns h*dv .. h*dv+dv-1
 *
 *   per (b, h), Q = q[b, :, h*dk:(h+1)*dk] read in place with its row stride (likewise K, V, O):
 *   forward:  S = scale Q K^T + mask        sgemm
 *             P = softmax_rows(S)           masked / causal entries exactly 0
 *             O = Pd V                      sgemm, written into out's columns of head h
 *   backward: dV = Pd^T dO                  sgemm
 *             dPd = dO V^T                  sgemm;  dP = dPd * keep / (1 - p)
 *             dS = P * (dP - rowsum(P * dP))
 *             dQ = scale dS K,  dK = scale dS^T Q,  dmask = dS summed to the mask's shape
 *
 * The packed variant reads Q, K, V as three column blocks of one (B, T, 3E)
 * tensor (a Linear's output) and writes their gradients into one (B, T, 3E)
 * gradient, so self-attention costs no transposes, narrows or concatenations.
 *
 * Exact zeros for masked weights matter: the causal guarantee (output t never
 * depends on inputs after t, and their gradient is exactly 0) rests on them.
 * The naive oracle (matmul, softmax, per head) lives in spec/attention_spec.lua.
 */
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "autograd.h"
#include "math_fast.h"

/* One of q, k, v (or their gradients): the first element and element strides. */
typedef struct attn_operand {
    float *data;
    int64_t batch, row;
} attn_operand;

typedef struct attn_problem {
    int64_t B, H, Tq, Tk, dk, dv;
    float scale, dropout;
    bool causal;
    attn_operand q, k, v, out;
    const float *mask;          /* NULL, or read with mask_stride over (B, H, Tq, Tk) */
    int64_t mask_stride[4];
    const float *key_padding;   /* (B, Tk) contiguous, or NULL */
    float *P, *Pd;              /* Pd == P without dropout */
} attn_problem;

/* ------------------------------------------------------------------ kernels */

/* C (m, n; ldc) = alpha op(A) op(B), beta = 0.  Empty products zero C, which
 * BLAS would not do for k == 0, and nothing is called for empty results. */
static void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const float *a, int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc)
{
    if (m == 0 || n == 0) return;
    if (k == 0) {
        for (int64_t i = 0; i < m; i++) memset(c + i * ldc, 0, sizeof(float) * (size_t)n);
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, 0.0f, c, (int)ldc);
}

/* An integer that orders like the float (sign-magnitude to two's complement);
 * its own inverse. */
static inline int32_t order_key(int32_t bits) { return bits ^ ((bits >> 31) & 0x7FFFFFFF); }

/* Softmax of one score row in place over its first `limit` entries; the rest
 * are masked (set to 0).  A row with nothing left gets all zeros; a row with
 * a NaN becomes all NaN, so anomaly mode sees it. */
static void softmax_row(float *restrict s, int64_t n, int64_t limit)
{
    int32_t top_key = INT32_MIN, nan = 0;
    for (int64_t j = 0; j < limit; j++) {
        int32_t bits = (int32_t)float_bits(s[j]), key = order_key(bits);
        top_key = key > top_key ? key : top_key;
        nan |= (bits & 0x7FFFFFFF) > 0x7F800000;
    }
    float top = bits_float((uint32_t)order_key(top_key));
    if (limit > 0 && nan) {
        for (int64_t j = 0; j < n; j++) s[j] = NAN;
        return;
    }
    if (limit == 0 || top == -INFINITY) limit = 0;
    for (int64_t j = 0; j < limit; j++) s[j] = exp_nonpositive_float(s[j] - top);
    /* Four partial sums: a shorter dependency chain than one running total. */
    float partial[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    int64_t j = 0;
    for (; j + 4 <= limit; j += 4)
        for (int k = 0; k < 4; k++) partial[k] += s[j + k];
    float total = (partial[0] + partial[1]) + (partial[2] + partial[3]);
    for (; j < limit; j++) total += s[j];
    float inverse = 1.0f / total;
    for (j = 0; j < limit; j++) s[j] *= inverse;
    for (j = limit; j < n; j++) s[j] = 0.0f;
}

/* Scores and weights of heads [begin, end) of the B*H (batch, head) pairs. */
static void attention_weights(const attn_problem *p, int64_t begin, int64_t end)
{
    int64_t Tq = p->Tq, Tk = p->Tk, H = p->H;
    for (int64_t bh = begin; bh < end; bh++) {
        int64_t b = bh / H, h = bh % H;
        float *S = p->P + bh * Tq * Tk;
        gemm(false, true, Tq, Tk, p->dk, p->scale, p->q.data + b * p->q.batch + h * p->dk, p->q.row,
             p->k.data + b * p->k.batch + h * p->dk, p->k.row, S, Tk);
        for (int64_t i = 0; i < Tq; i++) {
            float *row = S + i * Tk;
            int64_t limit = p->causal ? (i + 1 < Tk ? i + 1 : Tk) : Tk;
            if (p->mask) {
                const float *m = p->mask + b * p->mask_stride[0] + h * p->mask_stride[1] + i * p->mask_stride[2];
                int64_t step = p->mask_stride[3];
                for (int64_t j = 0; j < limit; j++) row[j] += m[j * step];
            }
            if (p->key_padding) {
                const float *drop = p->key_padding + b * Tk;
                for (int64_t j = 0; j < limit; j++) row[j] = drop[j] != 0.0f ? -INFINITY : row[j];
            }
            softmax_row(row, Tk, limit);
        }
    }
}

/* O = Pd V for heads [begin, end). */
static void attention_values(const attn_problem *p, int64_t begin, int64_t end)
{
    int64_t Tq = p->Tq, Tk = p->Tk, H = p->H;
    for (int64_t bh = begin; bh < end; bh++) {
        int64_t b = bh / H, h = bh % H;
        gemm(false, false, Tq, p->dv, Tk, 1.0f, p->Pd + bh * Tq * Tk, Tk,
             p->v.data + b * p->v.batch + h * p->dv, p->v.row,
             p->out.data + b * p->out.batch + h * p->dv, p->out.row);
    }
}

/* Inverted dropout on the weights, drawn serially from the context RNG so a
 * seed gives the same mask whatever the loop order of the other phases. */
static void attention_dropout(const attn_problem *p)
{
    int64_t n = p->B * p->H * p->Tq * p->Tk;
    float keep_scale = 1.0f / (1.0f - p->dropout);
    /* 24 random bits compared with p, as dropout.c does. */
    uint32_t threshold = (uint32_t)llround((double)p->dropout * 16777216.0);
    for (int64_t i = 0; i < n; i++)
        p->Pd[i] = (uint32_t)(gl_random_u64() >> 40) >= threshold ? p->P[i] * keep_scale : 0.0f;
}

/* The gradients of heads [begin, end).  dO is p->out (contiguous gradient);
 * dq/dk/dv have the layout of p->q/k/v; any may have NULL data (not needed).
 * dS goes to dmask (B, H, Tq, Tk) when given, else to the scratch (Tq, Tk). */
static void attention_backward_heads(const attn_problem *p, attn_operand dq, attn_operand dk,
                                     attn_operand dv, float *dmask, float *scratch, int64_t begin,
                                     int64_t end)
{
    int64_t Tq = p->Tq, Tk = p->Tk, H = p->H;
    float keep_scale = p->Pd != p->P ? 1.0f / (1.0f - p->dropout) : 1.0f;
    for (int64_t bh = begin; bh < end; bh++) {
        int64_t b = bh / H, h = bh % H;
        const float *P = p->P + bh * Tq * Tk, *Pd = p->Pd + bh * Tq * Tk;
        const float *dO = p->out.data + b * p->out.batch + h * p->dv;
        const float *V = p->v.data + b * p->v.batch + h * p->dv;
        if (dv.data)
            gemm(true, false, Tk, p->dv, Tq, 1.0f, Pd, Tk, dO, p->out.row,
                 dv.data + b * dv.batch + h * p->dv, dv.row);
        if (!dq.data && !dk.data && !dmask) continue;
        float *dS = dmask ? dmask + bh * Tq * Tk : scratch;
        gemm(false, true, Tq, Tk, p->dv, 1.0f, dO, p->out.row, V, p->v.row, dS, Tk);
        for (int64_t i = 0; i < Tq; i++) {
            float *restrict d = dS + i * Tk;
            const float *restrict w = P + i * Tk, *restrict wd = Pd + i * Tk;
            if (Pd != P)   /* a dropped weight passes no gradient; kept ones were scaled */
                for (int64_t j = 0; j < Tk; j++) {
                    uint32_t kept = -(uint32_t)((float_bits(wd[j]) & 0x7FFFFFFFu) != 0);
                    d[j] = bits_float(float_bits(d[j] * keep_scale) & kept);
                }
            float partial[4] = {0.0f, 0.0f, 0.0f, 0.0f}, dot;
            int64_t j = 0;
            for (; j + 4 <= Tk; j += 4)
                for (int k = 0; k < 4; k++) partial[k] += w[j + k] * d[j + k];
            dot = (partial[0] + partial[1]) + (partial[2] + partial[3]);
            for (; j < Tk; j++) dot += w[j] * d[j];
            for (j = 0; j < Tk; j++) d[j] = w[j] * (d[j] - dot);
        }
        if (dq.data)
            gemm(false, false, Tq, p->dk, Tk, p->scale, dS, Tk, p->k.data + b * p->k.batch + h * p->dk,
                 p->k.row, dq.data + b * dq.batch + h * p->dk, dq.row);
        if (dk.data)
            gemm(true, false, Tk, p->dk, Tq, p->scale, dS, Tk, p->q.data + b * p->q.batch + h * p->dk,
                 p->q.row, dk.data + b * dk.batch + h * p->dk, dk.row);
    }
}

/* ----------------------------------------------------------------- workers */

/* The (batch, head) pairs are independent, so phases split them across the
 * engine's threads (parallel.c).  Each pair's small products run on one
 * thread (BLAS is held to one thread meanwhile); the split never changes any
 * value, so results do not depend on the thread count. */
/* Multiply-adds a worker must get before a thread pays for itself (~20 us). */
#define ATTN_MIN_WORK_PER_WORKER 1048576.0

/* PHASE_FORWARD does both halves of forward in one pass when no dropout mask
 * has to be drawn in between (one fork/join instead of two). */
typedef enum attn_phase { PHASE_FORWARD, PHASE_WEIGHTS, PHASE_VALUES, PHASE_BACKWARD } attn_phase;

typedef struct attn_task {
    const attn_problem *p;
    attn_phase phase;
    int64_t begin, end;
    attn_operand dq, dk, dv;   /* backward only */
    float *dmask, *scratch;
} attn_task;

static void attn_task_run(const attn_task *t)
{
    switch (t->phase) {
    case PHASE_FORWARD:
        attention_weights(t->p, t->begin, t->end);
        attention_values(t->p, t->begin, t->end);
        break;
    case PHASE_WEIGHTS: attention_weights(t->p, t->begin, t->end); break;
    case PHASE_VALUES: attention_values(t->p, t->begin, t->end); break;
    case PHASE_BACKWARD:
        attention_backward_heads(t->p, t->dq, t->dk, t->dv, t->dmask, t->scratch, t->begin, t->end);
        break;
    }
}

static int attn_workers(const attn_problem *p)
{
    double pairs = (double)p->B * (double)p->H;
    double work = pairs * (double)p->Tq * (double)p->Tk * (double)(p->dk + p->dv);
    return gl_parallel_parts(work, ATTN_MIN_WORK_PER_WORKER, p->B * p->H);
}

static void attn_task_of(void *tasks, int i) { attn_task_run((attn_task *)tasks + i); }

/* Runs `base` over all pairs in `count` contiguous parts on the engine's
 * threads (parallel.c).  scratch (backward) holds count * Tq * Tk floats. */
static void attn_run(const attn_task *base, int count, float *scratch)
{
    int64_t pairs = base->p->B * base->p->H, block = base->p->Tq * base->p->Tk;
    attn_task tasks[GL_PARALLEL_MAX];
    for (int i = 0; i < count; i++) {
        tasks[i] = *base;
        tasks[i].begin = pairs * i / count;
        tasks[i].end = pairs * (i + 1) / count;
        tasks[i].scratch = scratch ? scratch + (size_t)i * (size_t)block : NULL;
    }
    gl_parallel_run_blas(count, attn_task_of, tasks);
}

/* ------------------------------------------------------------------ layout */

/* node->params slots. */
enum { P_B, P_H, P_TQ, P_TK, P_DK, P_DV, P_CAUSAL, P_DROPOUT, P_PACKED, P_MASK_INPUT };

/* A (B, T, F) operand as BLAS reads it: unit column stride, row stride >= F. */
static attn_operand operand_of(const gl_tensor *t, int64_t column_offset)
{
    attn_operand o;
    o.data = gl_tensor_data(t) + column_offset;
    o.batch = t->stride[0];
    /* A size-1 dim's stride is arbitrary; BLAS still wants lda >= the row length. */
    o.row = t->shape[1] > 1 ? t->stride[1] : t->shape[2];
    if (o.row < 1) o.row = 1;
    return o;
}

static bool readable_in_place(const gl_tensor *t)
{
    int64_t F = t->shape[2];
    return (F <= 1 || t->stride[2] == 1) && (t->shape[1] <= 1 || t->stride[1] >= F) && t->stride[1] <= INT_MAX;
}

/* t itself (retained) when BLAS can read it in place, else a contiguous copy. */
static gl_status usable_operand(const gl_tensor *t, gl_tensor **out, gl_error *err)
{
    if (readable_in_place(t)) {
        gl_tensor_retain((gl_tensor *)t);
        *out = (gl_tensor *)t;
        return GL_OK;
    }
    return gl_tensor_clone_untracked(t, out, err);
}

/* Rebuilds the problem of a node's backward from its params and saved tensors. */
static void problem_from_node(const gl_node *node, attn_problem *p)
{
    memset(p, 0, sizeof *p);
    p->B = node->params[P_B], p->H = node->params[P_H];
    p->Tq = node->params[P_TQ], p->Tk = node->params[P_TK];
    p->dk = node->params[P_DK], p->dv = node->params[P_DV];
    p->causal = node->params[P_CAUSAL];
    p->scale = (float)node->scalars[0];
    p->dropout = (float)node->scalars[1];
    int weights_slot;
    if (node->params[P_PACKED]) {
        const gl_tensor *qkv = node->saved[0];
        int64_t E = p->H * p->dk;
        p->q = operand_of(qkv, 0), p->k = operand_of(qkv, E), p->v = operand_of(qkv, 2 * E);
        weights_slot = 1;
    } else {
        p->q = operand_of(node->saved[0], 0), p->k = operand_of(node->saved[1], 0);
        p->v = operand_of(node->saved[2], 0);
        weights_slot = 3;
    }
    p->P = gl_tensor_data(node->saved[weights_slot]);
    p->Pd = node->params[P_DROPOUT] ? p->P + p->B * p->H * p->Tq * p->Tk : p->P;
}

/* Saved: packed: qkv, weights; else q, k, v, weights.  weights is (B, H, Tq, Tk), or
 * (2, B, H, Tq, Tk) holding P then Pd with dropout.  dO arrives as g. */
static gl_status attention_node_backward(gl_node *node, gl_tensor *g, gl_tensor **grads, gl_error *err)
{
    attn_problem p;
    problem_from_node(node, &p);
    bool packed = node->params[P_PACKED];
    int mask_input = (int)node->params[P_MASK_INPUT];
    gl_tensor *dense_g = NULL, *dmask_full = NULL;
    float *scratch = NULL;
    gl_status status = gl_tensor_contiguous_untracked(g, &dense_g, err);
    if (status) return status;
    int64_t E_out = p.H * p.dv;
    p.out.data = gl_tensor_data(dense_g);
    p.out.batch = p.Tq * E_out;
    p.out.row = E_out > 0 ? E_out : 1;

    attn_operand dq = {0}, dk = {0}, dv = {0};
    if (packed) {
        if (gl_node_input_needs_grad(node, 0)) status = gl_tensor_empty(3, node->inputs[0].shape, &grads[0], err);
        if (!status && grads[0]) {
            int64_t E = p.H * p.dk, row = 3 * E > 0 ? 3 * E : 1;
            float *base = gl_tensor_data(grads[0]);
            dq = (attn_operand){base, p.Tq * 3 * E, row};
            dk = (attn_operand){base + E, p.Tq * 3 * E, row};
            dv = (attn_operand){base + 2 * E, p.Tq * 3 * E, row};
        }
    } else {
        attn_operand *slots[3] = {&dq, &dk, &dv};
        for (int i = 0; i < 3 && !status; i++) {
            if (!gl_node_input_needs_grad(node, i)) continue;
            status = gl_tensor_empty(3, node->inputs[i].shape, &grads[i], err);
            if (!status) {
                const int64_t *shape = node->inputs[i].shape;
                *slots[i] = (attn_operand){gl_tensor_data(grads[i]), shape[1] * shape[2],
                                           shape[2] > 0 ? shape[2] : 1};
            }
        }
    }
    bool mask_grad = mask_input > 0 && gl_node_input_needs_grad(node, mask_input);
    if (!status && mask_grad) {
        int64_t shape[4] = {p.B, p.H, p.Tq, p.Tk};
        status = gl_tensor_empty(4, shape, &dmask_full, err);
    }
    int workers = attn_workers(&p);
    if (!status && !mask_grad && (dq.data || dk.data)) {
        scratch = malloc(sizeof(float) * (size_t)workers * (size_t)(p.Tq * p.Tk > 0 ? p.Tq * p.Tk : 1));
        if (!scratch) status = gl_error_set(err, GL_ENOMEM, 0, "attention backward: out of memory");
    }
    if (!status) {
        attn_task task = {.p = &p, .phase = PHASE_BACKWARD, .dq = dq, .dk = dk, .dv = dv,
                          .dmask = dmask_full ? gl_tensor_data(dmask_full) : NULL};
        attn_run(&task, workers, scratch);
        if (mask_grad)
            status = gl_grad_reduce_to(dmask_full, node->inputs[mask_input].ndim, node->inputs[mask_input].shape,
                                       &grads[mask_input], err);
    }
    free(scratch);
    gl_tensor_release(dmask_full);
    gl_tensor_release(dense_g);
    return status;
}

/* ------------------------------------------------------------------ entry */

static gl_status check_options(const char *op, const gl_attention_options *o, gl_error *err)
{
    if (o->heads < 1)
        return gl_error_set(err, GL_EARG, 0, "%s: heads must be a positive integer, got %lld", op,
                            (long long)o->heads);
    if (!(o->dropout >= 0.0f && o->dropout < 1.0f))
        return gl_error_set(err, GL_EARG, 0, "%s: dropout must be in [0, 1), got %g", op, (double)o->dropout);
    if (!isfinite(o->scale))
        return gl_error_set(err, GL_EARG, 0, "%s: scale must be finite, got %g", op, (double)o->scale);
    return GL_OK;
}

/* Strides of mask broadcast (right-aligned, NumPy rules) to (B, H, Tq, Tk). */
static gl_status mask_layout(const char *op, const gl_tensor *mask, const int64_t *full, int argument,
                             int64_t *stride, gl_error *err)
{
    char ms[160], fs[160];
    bool fits = mask->ndim <= 4;
    int lead = 4 - mask->ndim;
    for (int d = 0; d < 4 && fits; d++) {
        if (d < lead) {
            stride[d] = 0;
            continue;
        }
        int64_t size = mask->shape[d - lead];
        if (size == full[d]) stride[d] = size == 1 ? 0 : mask->stride[d - lead];
        else if (size == 1) stride[d] = 0;
        else fits = false;
    }
    if (!fits)
        return gl_error_set(err, GL_ESHAPE, argument,
                            "%s: mask of shape %s does not broadcast to (batch, heads, queries, keys) = %s",
                            op, GL_SHAPE_STR(mask, ms), gl_shape_format(4, full, fs, sizeof fs));
    return GL_OK;
}

/* Everything shared by gl_attention and gl_attention_packed once q, k, v are
 * usable operands: masks, weights, forward phases, the node.  `inputs` are
 * the op's tensor inputs (count of them, the mask last if present); `saved`
 * the tensors backward reads besides the weights. */
static gl_status attention_run(const char *op, attn_problem *p, const gl_attention_options *o,
                               int count, const gl_tensor *const *inputs, int nsaved,
                               gl_tensor *const *saved, bool packed, gl_tensor **out, gl_tensor **weights,
                               gl_error *err)
{
    char ks[160];
    int64_t full[4] = {p->B, p->H, p->Tq, p->Tk};
    gl_tensor *dense_kpm = NULL, *buffer = NULL;
    gl_status status = GL_OK;
    int mask_argument = packed ? 2 : 4;
    if (o->mask) status = mask_layout(op, o->mask, full, mask_argument, p->mask_stride, err);
    if (!status && o->key_padding_mask) {
        const gl_tensor *kpm = o->key_padding_mask;
        if (kpm->ndim != 2 || kpm->shape[0] != p->B || kpm->shape[1] != p->Tk)
            status = gl_error_set(err, GL_ESHAPE, mask_argument,
                                  "%s: key_padding_mask of shape %s must be (batch, keys) = {%lld, %lld}", op,
                                  GL_SHAPE_STR(kpm, ks), (long long)p->B, (long long)p->Tk);
        if (!status) status = gl_tensor_contiguous_untracked(kpm, &dense_kpm, err);
        if (!status) p->key_padding = gl_tensor_data(dense_kpm);
    }
    bool dropout = o->training && o->dropout > 0.0f;
    if (!status) {
        int64_t shape[5] = {2, p->B, p->H, p->Tq, p->Tk};
        status = dropout ? gl_tensor_empty(5, shape, &buffer, err) : gl_tensor_empty(4, shape + 1, &buffer, err);
    }
    if (!status) {
        int64_t shape[3] = {p->B, p->Tq, p->H * p->dv};
        status = gl_tensor_empty(3, shape, out, err);
    }
    if (!status) {
        p->mask = o->mask ? gl_tensor_data(o->mask) : NULL;
        p->dropout = dropout ? o->dropout : 0.0f;
        p->P = gl_tensor_data(buffer);
        p->Pd = dropout ? p->P + p->B * p->H * p->Tq * p->Tk : p->P;
        p->out = (attn_operand){gl_tensor_data(*out), p->Tq * p->H * p->dv, p->H * p->dv > 0 ? p->H * p->dv : 1};
        int workers = attn_workers(p);
        attn_task task = {.p = p, .phase = dropout ? PHASE_WEIGHTS : PHASE_FORWARD};
        attn_run(&task, workers, NULL);
        if (dropout) {
            attention_dropout(p);
            task.phase = PHASE_VALUES;
            attn_run(&task, workers, NULL);
        }
    }
    if (!status) {
        gl_node *node = NULL;
        status = gl_op_finish(op, *out, count, inputs, attention_node_backward, &node, err);
        if (!status && node) {
            int64_t values[] = {[P_B] = p->B, [P_H] = p->H, [P_TQ] = p->Tq, [P_TK] = p->Tk, [P_DK] = p->dk,
                                [P_DV] = p->dv, [P_CAUSAL] = p->causal, [P_DROPOUT] = dropout,
                                [P_PACKED] = packed, [P_MASK_INPUT] = o->mask ? count - 1 : 0};
            memcpy(node->params, values, sizeof values);
            node->scalars[0] = p->scale;
            node->scalars[1] = p->dropout;
            for (int i = 0; i < nsaved && !status; i++) status = gl_node_save(node, saved[i], err);
            if (!status) status = gl_node_save(node, buffer, err);
        }
    }
    if (!status && weights) {
        /* The weights before dropout, detached: P is the first (B, H, Tq, Tk) block. */
        status = gl_tensor_view_of(buffer->storage, 4, full, NULL, buffer->offset, weights, err);
    }
    gl_tensor_release(buffer);
    gl_tensor_release(dense_kpm);
    if (status) {
        gl_tensor_release(*out);
        *out = NULL;
    }
    return status;
}

static gl_status size_check(const char *op, const attn_problem *p, gl_error *err)
{
    int64_t limits[] = {p->Tq, p->Tk, p->H * p->dk * 3, p->H * p->dv * 3};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++)
        if (limits[i] > INT_MAX)
            return gl_error_set(err, GL_ESHAPE, 1, "%s: sizes exceed BLAS's int range", op);
    return GL_OK;
}

gl_status gl_attention(const gl_tensor *q, const gl_tensor *k, const gl_tensor *v,
                       const gl_attention_options *options, gl_tensor **out, gl_tensor **weights,
                       gl_error *err)
{
    char qs[160], ks[160], vs[160];
    const char *op = "attention";
    *out = NULL;
    if (weights) *weights = NULL;
    gl_status status = check_options(op, options, err);
    if (status) return status;
    const gl_tensor *operands[3] = {q, k, v};
    for (int i = 0; i < 3; i++)
        if (operands[i]->ndim != 3)
            return gl_error_set(err, GL_ESHAPE, i + 1,
                                "%s: %s must be 3-d (batch, sequence, features), got shape %s", op,
                                i == 0 ? "query" : i == 1 ? "key" : "value", GL_SHAPE_STR(operands[i], qs));
    int64_t H = options->heads;
    if (k->shape[0] != q->shape[0] || v->shape[0] != q->shape[0])
        return gl_error_set(err, GL_ESHAPE, k->shape[0] != q->shape[0] ? 2 : 3,
                            "%s: batch sizes differ: query %s, key %s, value %s", op, GL_SHAPE_STR(q, qs),
                            GL_SHAPE_STR(k, ks), GL_SHAPE_STR(v, vs));
    if (v->shape[1] != k->shape[1])
        return gl_error_set(err, GL_ESHAPE, 3, "%s: key %s and value %s must have the same sequence length", op,
                            GL_SHAPE_STR(k, ks), GL_SHAPE_STR(v, vs));
    if (k->shape[2] != q->shape[2])
        return gl_error_set(err, GL_ESHAPE, 2, "%s: key has %lld features, query has %lld (query %s, key %s)", op,
                            (long long)k->shape[2], (long long)q->shape[2], GL_SHAPE_STR(q, qs), GL_SHAPE_STR(k, ks));
    for (int i = 0; i < 3; i += 2) {
        int64_t F = operands[i]->shape[2];
        const char *name = i == 0 ? "query" : "value";
        if (F < 1)
            return gl_error_set(err, GL_ESHAPE, i + 1, "%s: %s %s has no features", op, name, GL_SHAPE_STR(operands[i], qs));
        if (F % H != 0)
            return gl_error_set(err, GL_ESHAPE, i + 1, "%s: %lld head%s do not divide the %lld features of %s %s", op,
                                (long long)H, H == 1 ? "" : "s", (long long)F, name, GL_SHAPE_STR(operands[i], qs));
    }
    attn_problem p = {
        .B = q->shape[0], .H = H, .Tq = q->shape[1], .Tk = k->shape[1],
        .dk = q->shape[2] / H, .dv = v->shape[2] / H, .causal = options->causal,
    };
    p.scale = options->scale != 0.0f ? options->scale : 1.0f / sqrtf((float)p.dk);
    if ((status = size_check(op, &p, err))) return status;
    gl_tensor *usable[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3 && !status; i++) status = usable_operand(operands[i], &usable[i], err);
    if (!status) {
        p.q = operand_of(usable[0], 0), p.k = operand_of(usable[1], 0), p.v = operand_of(usable[2], 0);
        const gl_tensor *inputs[4] = {q, k, v, options->mask};
        status = attention_run(op, &p, options, options->mask ? 4 : 3, inputs, 3, usable, false, out, weights, err);
    }
    for (int i = 0; i < 3; i++) gl_tensor_release(usable[i]);
    return status;
}

gl_status gl_attention_packed(const gl_tensor *qkv, const gl_attention_options *options,
                              gl_tensor **out, gl_tensor **weights, gl_error *err)
{
    char xs[160];
    const char *op = "attention_packed";
    *out = NULL;
    if (weights) *weights = NULL;
    gl_status status = check_options(op, options, err);
    if (status) return status;
    if (qkv->ndim != 3 || qkv->shape[2] % 3 != 0 || qkv->shape[2] < 3)
        return gl_error_set(err, GL_ESHAPE, 1,
                            "%s: qkv must be (batch, sequence, 3 * features) = [Q | K | V], got shape %s", op,
                            GL_SHAPE_STR(qkv, xs));
    int64_t E = qkv->shape[2] / 3, H = options->heads;
    if (E % H != 0)
        return gl_error_set(err, GL_ESHAPE, 1, "%s: %lld heads do not divide the %lld features of qkv %s (3 x %lld)",
                            op, (long long)H, (long long)E, GL_SHAPE_STR(qkv, xs), (long long)E);
    attn_problem p = {
        .B = qkv->shape[0], .H = H, .Tq = qkv->shape[1], .Tk = qkv->shape[1],
        .dk = E / H, .dv = E / H, .causal = options->causal,
    };
    p.scale = options->scale != 0.0f ? options->scale : 1.0f / sqrtf((float)p.dk);
    if ((status = size_check(op, &p, err))) return status;
    gl_tensor *usable = NULL;
    status = usable_operand(qkv, &usable, err);
    if (!status) {
        p.q = operand_of(usable, 0), p.k = operand_of(usable, E), p.v = operand_of(usable, 2 * E);
        const gl_tensor *inputs[2] = {qkv, options->mask};
        status = attention_run(op, &p, options, options->mask ? 2 : 1, inputs, 1, &usable, true, out, weights, err);
    }
    gl_tensor_release(usable);
    return status;
}
