/*
 * rnn.c — recurrent layers: Elman RNN (tanh, relu), LSTM, GRU.  A whole
 * sequence is one graph node with a fused forward and a fused backward
 * through time; a single step (cell) is the same node with T = 1.
 *
 *   x (T, B, In)   h0, c0 (B, H)   w_ih (G*H, In)   w_hh (G*H, H)   b_ih, b_hh (G*H)
 *   G = 1 (RNN), 4 (LSTM: i, f, g, o), 3 (GRU: r, z, n): PyTorch's row blocks
 *
 *   forward:  A = x W_ih^T                   one sgemm for all T*B rows at once
 *             per step t: A_t += h_{t-1} W_hh^T       one sgemm, all gates, whole batch
 *                         gates, c_t, h_t from A_t + bias   one fused pass
 *   backward: per step t = T-1 .. 0:
 *                         dA_t from dh_t (+ dc_t)     one fused pass
 *                         dh_{t-1} = dA_t W_hh        one sgemm
 *             dW_ih = dA^T x, dW_hh = dA^T [h_0 .. h_{T-1}], dx = dA W_ih,
 *             db = column sums of dA          one sgemm each, over all steps
 *
 * For RNN and LSTM both biases enter only as b_ih + b_hh, so they are summed
 * once and share one gradient; the fused pass adds them (rather than a copy
 * into A before the sgemm: one pass less over the largest buffer).  GRU needs
 * W_hn h + b_hn on its own (r gates it), so its h-side products go to a
 * separate (B, 3H) buffer per step, and the backward keeps two gradients: dA
 * for the x side and dAh for the h side, which differ only in the n block
 * (dAh_n = dA_n * r).
 *
 * The node's output is one "packed" tensor that the public functions hand out
 * through views: (T, B, H) = h_1 .. h_T for RNN/GRU, and (T + 1, B, H) for
 * LSTM whose last row is c_T.  So y, h_n and c_n are all differentiable with
 * single-output nodes, and their gradients meet in the packed one.
 */
#include <cblas.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "autograd.h"
#include "math_fast.h"

/* Sizes are T, B, In, H, G: never a bare I, which <complex.h> (pulled in by
 * cblas.h) defines as the imaginary unit. */

/* Inputs of the node, in the order of the public functions' arguments. */
enum { IN_X, IN_H0, IN_C0, IN_W_IH, IN_W_HH, IN_B_IH, IN_B_HH, IN_COUNT };

static const char *const sequence_names[GL_RNN_KIND_COUNT] = {
    [GL_RNN_TANH] = "rnn", [GL_RNN_RELU] = "rnn", [GL_RNN_LSTM] = "lstm", [GL_RNN_GRU] = "gru",
};
static const char *const cell_names[GL_RNN_KIND_COUNT] = {
    [GL_RNN_TANH] = "rnn_cell", [GL_RNN_RELU] = "rnn_cell", [GL_RNN_LSTM] = "lstm_cell",
    [GL_RNN_GRU] = "gru_cell",
};
/* Node names say the nonlinearity too, for anomaly messages. */
static const char *const node_names[2][GL_RNN_KIND_COUNT] = {
    {"rnn_tanh", "rnn_relu", "lstm", "gru"},
    {"rnn_tanh_cell", "rnn_relu_cell", "lstm_cell", "gru_cell"},
};
_Static_assert(sizeof sequence_names / sizeof sequence_names[0] == GL_RNN_KIND_COUNT, "one name per kind");

int gl_rnn_gate_count(gl_rnn_kind kind)
{
    switch (kind) {
    case GL_RNN_LSTM: return 4;
    case GL_RNN_GRU: return 3;
    default: return 1;
    }
}

typedef struct rnn_shape {
    gl_rnn_kind kind;
    int64_t T, B, In, H, G;   /* steps, batch, input features, hidden, gates */
} rnn_shape;

/* The forward's record, one allocation (saved for backward):
 *   hs     (T + 1, B, H)   h_0 .. h_T
 *   gates  (T, B, G*H)     pre-activations, overwritten by the activations
 *                          (RNN keeps the pre-activation: backward uses h)
 *   cs     (T + 1, B, H)   LSTM: c_0 .. c_T
 *   tanh_c (T, B, H)       LSTM: tanh(c_1) .. tanh(c_T)
 *   hn     (T, B, H)       GRU: W_hn h_{t-1} + b_hn */
typedef struct rnn_record {
    float *hs, *gates, *cs, *tanh_c, *hn;
} rnn_record;

static int64_t record_layout(const rnn_shape *s, float *base, rnn_record *r)
{
    int64_t state = s->B * s->H, at = 0;
    int64_t hs = at;
    at += (s->T + 1) * state;
    int64_t gates = at;
    at += s->T * s->B * s->G * s->H;
    int64_t cs = at, tanh_c = at, hn = at;
    if (s->kind == GL_RNN_LSTM) {
        at += (s->T + 1) * state;
        tanh_c = at;
        at += s->T * state;
    } else if (s->kind == GL_RNN_GRU) {
        at += s->T * state;
    }
    if (base && r) {
        r->hs = base + hs;
        r->gates = base + gates;
        r->cs = s->kind == GL_RNN_LSTM ? base + cs : NULL;
        r->tanh_c = s->kind == GL_RNN_LSTM ? base + tanh_c : NULL;
        r->hn = s->kind == GL_RNN_GRU ? base + hn : NULL;
    }
    return at;
}

/* C (m, n) = op(A) op(B) + beta C, row-major, with every size allowed to be 0
 * (BLAS rejects leading dimensions of 0, and k = 0 must still apply beta). */
static void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float *a,
                 int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    if (m == 0 || n == 0) return;
    if (k == 0) {
        if (beta == 0.0f)
            for (int64_t i = 0; i < m; i++) memset(c + i * ldc, 0, sizeof(float) * (size_t)n);
        return;   /* beta is 0 or 1 here */
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, 1.0f, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

/* Column sums of a (rows, n) matrix added into out (n). */
static void column_sums(int64_t rows, int64_t n, const float *restrict a, float *restrict out)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < n; j++) out[j] += a[r * n + j];
}

/* ------------------------------------------------------------ cell passes */
/* One batch row of H units per call; the loops vectorize (math_fast.h), with
 * AVX2 where the CPU has it (GL_VECTOR_CLONES). */

GL_VECTOR_CLONES static void rnn_row_forward(int64_t H, bool relu, const float *restrict a, const float *restrict bias,
                            float *restrict h)
{
    if (relu)
        for (int64_t j = 0; j < H; j++) {
            float v = a[j] + bias[j];
            h[j] = v > 0 ? v : 0.0f;
        }
    else
        for (int64_t j = 0; j < H; j++) h[j] = tanh_float(a[j] + bias[j]);
}

/* da = (dy + dh) * act'(.) with act' read from h; dh is the carry from t+1. */
GL_VECTOR_CLONES static void rnn_row_backward(int64_t H, bool relu, const float *restrict h, const float *restrict dy,
                             const float *restrict dh, float *restrict da)
{
    if (relu)   /* a mask, not a float ternary, so the loop vectorizes (math_fast.h) */
        for (int64_t j = 0; j < H; j++) da[j] = select_float(positive_mask(h[j]), dy[j] + dh[j], 0.0f);
    else
        for (int64_t j = 0; j < H; j++) da[j] = (dy[j] + dh[j]) * (1.0f - h[j] * h[j]);
}

/* a: the gates' pre-activations without bias (i, f, g, o blocks of H),
 * overwritten by the activations; bias: b_ih + b_hh (4H). */
GL_VECTOR_CLONES static void lstm_row_forward(int64_t H, float *restrict a, const float *restrict bias,
                             const float *restrict c_prev, float *restrict c, float *restrict tc,
                             float *restrict h)
{
    float *restrict ai = a, *restrict af = a + H, *restrict ag = a + 2 * H, *restrict ao = a + 3 * H;
    for (int64_t j = 0; j < H; j++) {
        float i = sigmoid_float(ai[j] + bias[j]), f = sigmoid_float(af[j] + bias[H + j]);
        float g = tanh_float(ag[j] + bias[2 * H + j]), o = sigmoid_float(ao[j] + bias[3 * H + j]);
        float cell = f * c_prev[j] + i * g;
        float t = tanh_float(cell);
        ai[j] = i, af[j] = f, ag[j] = g, ao[j] = o;
        c[j] = cell, tc[j] = t, h[j] = o * t;
    }
}

/* dh = dy + carry; dc = carry_c + dh o (1 - tanh(c)^2); then the four gate
 * pre-activation gradients, and the carry dc_{t-1} = dc f (in place). */
GL_VECTOR_CLONES static void lstm_row_backward(int64_t H, const float *restrict i, const float *restrict f,
                              const float *restrict g, const float *restrict o,
                              const float *restrict c_prev, const float *restrict tc,
                              const float *restrict dy, const float *restrict dh_carry,
                              float *restrict dc, float *restrict dai, float *restrict daf,
                              float *restrict dag, float *restrict dao)
{
    for (int64_t j = 0; j < H; j++) {
        float dh = dy[j] + dh_carry[j];
        float t = tc[j];
        float dcell = dc[j] + dh * o[j] * (1.0f - t * t);
        dai[j] = dcell * g[j] * i[j] * (1.0f - i[j]);
        daf[j] = dcell * c_prev[j] * f[j] * (1.0f - f[j]);
        dag[j] = dcell * i[j] * (1.0f - g[j] * g[j]);
        dao[j] = dh * t * o[j] * (1.0f - o[j]);
        dc[j] = dcell * f[j];
    }
}

/* a: x side W_ih x (r, z, n blocks), overwritten by r, z, n; hh: h side
 * W_hh h; bx, bh: b_ih, b_hh (3H).  W_hn h + b_hn is kept for backward. */
GL_VECTOR_CLONES static void gru_row_forward(int64_t H, float *restrict a, const float *restrict hh,
                            const float *restrict bx, const float *restrict bh,
                            const float *restrict h_prev, float *restrict h, float *restrict hn_saved)
{
    float *restrict ar = a, *restrict az = a + H, *restrict an = a + 2 * H;
    for (int64_t j = 0; j < H; j++) {
        float r = sigmoid_float(ar[j] + hh[j] + (bx[j] + bh[j]));
        float z = sigmoid_float(az[j] + hh[H + j] + (bx[H + j] + bh[H + j]));
        float hn = hh[2 * H + j] + bh[2 * H + j];
        float n = tanh_float(an[j] + bx[2 * H + j] + r * hn);
        h[j] = (1.0f - z) * n + z * h_prev[j];
        ar[j] = r, az[j] = z, an[j] = n;
        hn_saved[j] = hn;
    }
}

/* dh = dy + carry; the carry becomes dh z (the direct path), to which the
 * caller adds dAh W_hh. */
GL_VECTOR_CLONES static void gru_row_backward(int64_t H, const float *restrict r, const float *restrict z,
                             const float *restrict n, const float *restrict hn,
                             const float *restrict h_prev, const float *restrict dy,
                             float *restrict dh_carry, float *restrict dar, float *restrict daz,
                             float *restrict dan, float *restrict dhr, float *restrict dhz,
                             float *restrict dhn)
{
    for (int64_t j = 0; j < H; j++) {
        float dh = dy[j] + dh_carry[j];
        float d_an = dh * (1.0f - z[j]) * (1.0f - n[j] * n[j]);
        float d_ar = d_an * hn[j] * r[j] * (1.0f - r[j]);
        float d_az = dh * (h_prev[j] - n[j]) * z[j] * (1.0f - z[j]);
        dar[j] = d_ar, daz[j] = d_az, dan[j] = d_an;
        dhr[j] = d_ar, dhz[j] = d_az, dhn[j] = d_an * r[j];
        dh_carry[j] = dh * z[j];
    }
}

/* ---------------------------------------------------------------- forward */

/* Runs the recurrence, filling the record.  bias_x (G*H) is b_ih + b_hh for
 * RNN/LSTM and b_ih for GRU, bias_h b_hh for GRU (zeros for an absent bias).
 * h0, c0 NULL mean zeros.  gru_h: (B, 3H) scratch for GRU. */
static void rnn_forward_kernel(const rnn_shape *s, const float *x, const float *h0, const float *c0,
                               const float *w_ih, const float *w_hh, const float *bias_x,
                               const float *bias_h, const rnn_record *rec, float *gru_h)
{
    int64_t T = s->T, B = s->B, In = s->In, H = s->H, GH = s->G * s->H, state = B * H;
    bool relu = s->kind == GL_RNN_RELU;
    float *A = rec->gates;
    gemm(false, true, T * B, GH, In, x, In, w_ih, In, 0.0f, A, GH);
    if (h0) memcpy(rec->hs, h0, sizeof(float) * (size_t)state);
    else memset(rec->hs, 0, sizeof(float) * (size_t)state);
    if (s->kind == GL_RNN_LSTM) {
        if (c0) memcpy(rec->cs, c0, sizeof(float) * (size_t)state);
        else memset(rec->cs, 0, sizeof(float) * (size_t)state);
    }
    for (int64_t t = 0; t < T; t++) {
        float *At = A + t * B * GH;
        const float *h_prev = rec->hs + t * state;
        float *h = rec->hs + (t + 1) * state;
        bool zero_state = t == 0 && !h0;   /* h_{-1} W_hh^T is 0: skip the product */
        if (s->kind == GL_RNN_GRU) {
            if (!zero_state) gemm(false, true, B, GH, H, h_prev, H, w_hh, H, 0.0f, gru_h, GH);
            else memset(gru_h, 0, sizeof(float) * (size_t)(B * GH));
            for (int64_t b = 0; b < B; b++)
                gru_row_forward(H, At + b * GH, gru_h + b * GH, bias_x, bias_h, h_prev + b * H, h + b * H,
                                rec->hn + t * state + b * H);
            continue;
        }
        if (!zero_state) gemm(false, true, B, GH, H, h_prev, H, w_hh, H, 1.0f, At, GH);
        if (s->kind == GL_RNN_LSTM) {
            for (int64_t b = 0; b < B; b++) {
                int64_t at = b * H;
                lstm_row_forward(H, At + b * GH, bias_x, rec->cs + t * state + at, rec->cs + (t + 1) * state + at,
                                 rec->tanh_c + t * state + at, h + at);
            }
        } else {
            for (int64_t b = 0; b < B; b++) rnn_row_forward(H, relu, At + b * GH, bias_x, h + b * H);
        }
    }
}

/* --------------------------------------------------------------- backward */

/* Saved: x (rows, In), w_ih, w_hh (contiguous), the record.  params: kind, T,
 * B, In, H.  g is shaped like the packed output. */
static gl_status rnn_backward(gl_node *node, gl_tensor *g, gl_tensor **grads, gl_error *err)
{
    rnn_shape s = {(gl_rnn_kind)node->params[0], node->params[1], node->params[2], node->params[3],
                   node->params[4], 0};
    s.G = gl_rnn_gate_count(s.kind);
    int64_t T = s.T, B = s.B, In = s.In, H = s.H, GH = s.G * s.H, state = B * H, rows = T * B;
    bool relu = s.kind == GL_RNN_RELU, lstm = s.kind == GL_RNN_LSTM, gru = s.kind == GL_RNN_GRU;
    const float *x = gl_tensor_data(node->saved[0]);
    const float *w_ih = gl_tensor_data(node->saved[1]), *w_hh = gl_tensor_data(node->saved[2]);
    rnn_record rec;
    record_layout(&s, gl_tensor_data(node->saved[3]), &rec);

    /* Scratch: dA (rows, GH), GRU's dAh (rows, GH), the carries dh and dc (B, H). */
    int64_t scratch_size = rows * GH * (gru ? 2 : 1) + 2 * state;
    gl_tensor *dense_g = NULL, *scratch = NULL;
    gl_status status = gl_tensor_contiguous_untracked(g, &dense_g, err);
    if (!status) status = gl_tensor_empty(1, &scratch_size, &scratch, err);
    if (status) {
        gl_tensor_release(dense_g);
        return status;
    }
    const float *dy = gl_tensor_data(dense_g);
    float *dA = gl_tensor_data(scratch);
    float *dAh = gru ? dA + rows * GH : dA;   /* h-side gradient; the same as dA but for GRU */
    float *dh = dA + rows * GH * (gru ? 2 : 1), *dc = dh + state;
    memset(dh, 0, sizeof(float) * (size_t)state);
    if (lstm) memcpy(dc, dy + T * state, sizeof(float) * (size_t)state);   /* from c_n */
    bool want_h0 = gl_node_input_needs_grad(node, IN_H0);

    for (int64_t t = T - 1; t >= 0; t--) {
        const float *dyt = dy + t * state, *h_prev = rec.hs + t * state;
        float *dAt = dA + t * B * GH, *dAht = dAh + t * B * GH;
        const float *gt = rec.gates + t * B * GH;
        for (int64_t b = 0; b < B; b++) {
            int64_t at = b * H;
            const float *gb = gt + b * GH;
            float *da = dAt + b * GH;
            if (lstm) {
                lstm_row_backward(H, gb, gb + H, gb + 2 * H, gb + 3 * H, rec.cs + t * state + at,
                                  rec.tanh_c + t * state + at, dyt + at, dh + at, dc + at, da, da + H,
                                  da + 2 * H, da + 3 * H);
            } else if (gru) {
                float *dah = dAht + b * GH;
                gru_row_backward(H, gb, gb + H, gb + 2 * H, rec.hn + t * state + at, h_prev + at, dyt + at,
                                 dh + at, da, da + H, da + 2 * H, dah, dah + H, dah + 2 * H);
            } else {
                rnn_row_backward(H, relu, rec.hs + (t + 1) * state + at, dyt + at, dh + at, da);
            }
        }
        /* The carry into step t-1; at t = 0 it is dh0, wanted only for h0. */
        if (t > 0 || want_h0) gemm(false, false, B, H, GH, dAht, GH, w_hh, H, gru ? 1.0f : 0.0f, dh, H);
    }

    for (int i = 0; i < IN_COUNT && !status; i++) {
        if (!gl_node_input_needs_grad(node, i)) continue;
        status = gl_tensor_empty(node->inputs[i].ndim, node->inputs[i].shape, &grads[i], err);
        if (status) break;
        float *out = gl_tensor_data(grads[i]);
        switch (i) {
        case IN_X: gemm(false, false, rows, In, GH, dA, GH, w_ih, In, 0.0f, out, In); break;
        case IN_H0: memcpy(out, dh, sizeof(float) * (size_t)state); break;
        case IN_C0: memcpy(out, dc, sizeof(float) * (size_t)state); break;
        case IN_W_IH: gemm(true, false, GH, In, rows, dA, GH, x, In, 0.0f, out, In); break;
        case IN_W_HH: gemm(true, false, GH, H, rows, dAh, GH, rec.hs, H, 0.0f, out, H); break;
        case IN_B_IH:
        case IN_B_HH:
            memset(out, 0, sizeof(float) * (size_t)GH);
            column_sums(rows, GH, i == IN_B_IH ? dA : dAh, out);
            break;
        default: break;
        }
    }
    gl_tensor_release(scratch);
    gl_tensor_release(dense_g);
    return status;
}

/* ------------------------------------------------------------ validation */

/* Error argument position of an input: c0 exists only in LSTM's signature. */
static int argument_position(gl_rnn_kind kind, int input)
{
    if (kind == GL_RNN_LSTM || input <= IN_H0) return input + 1;
    return input;
}

static gl_status rnn_check(gl_rnn_kind kind, bool cell, const gl_tensor *x, const gl_tensor *h0,
                           const gl_tensor *c0, const gl_tensor *w_ih, const gl_tensor *w_hh,
                           const gl_tensor *b_ih, const gl_tensor *b_hh, rnn_shape *s, gl_error *err)
{
    char xs[160], as[160], bs[160];
    if ((unsigned)kind >= GL_RNN_KIND_COUNT)
        return gl_error_set(err, GL_EARG, 0, "rnn: unknown kind %d", (int)kind);
    const char *op = cell ? cell_names[kind] : sequence_names[kind];
    const char *h_name = cell ? "h" : "h0", *c_name = cell ? "c" : "c0";
    int G = gl_rnn_gate_count(kind);
    if (!x || !w_ih || !w_hh)
        return gl_error_set(err, GL_EARG, !x ? 1 : argument_position(kind, !w_ih ? IN_W_IH : IN_W_HH),
                            "%s: input, weight_ih and weight_hh are required", op);
    if (cell && x->ndim != 2)
        return gl_error_set(err, GL_ESHAPE, 1, "%s: input must be 2-d (batch, input_size), got shape %s", op,
                            GL_SHAPE_STR(x, xs));
    if (!cell && x->ndim != 3)
        return gl_error_set(err, GL_ESHAPE, 1,
                            "%s: input must be 3-d (seq_len, batch, input_size), got shape %s", op,
                            GL_SHAPE_STR(x, xs));
    if (w_hh->ndim != 2 || w_hh->shape[0] != G * w_hh->shape[1])
        return gl_error_set(err, GL_ESHAPE, argument_position(kind, IN_W_HH),
                            "%s: weight_hh must be (%s, hidden), got shape %s", op,
                            G == 1 ? "hidden" : G == 3 ? "3*hidden" : "4*hidden", GL_SHAPE_STR(w_hh, as));
    int64_t H = w_hh->shape[1];
    if (w_ih->ndim != 2 || w_ih->shape[0] != G * H)
        return gl_error_set(err, GL_ESHAPE, argument_position(kind, IN_W_IH),
                            "%s: weight_ih must be (%lld, input_size) to match weight_hh of shape %s, got shape %s",
                            op, (long long)(G * H), GL_SHAPE_STR(w_hh, bs), GL_SHAPE_STR(w_ih, as));
    int64_t In = w_ih->shape[1];
    if (x->shape[x->ndim - 1] != In)
        return gl_error_set(err, GL_ESHAPE, 1,
                            "%s: input has %lld features, weight_ih expects %lld (input shape %s, weight_ih shape %s)",
                            op, (long long)x->shape[x->ndim - 1], (long long)In, GL_SHAPE_STR(x, xs),
                            GL_SHAPE_STR(w_ih, as));
    const gl_tensor *biases[2] = {b_ih, b_hh};
    for (int k = 0; k < 2; k++)
        if (biases[k] && (biases[k]->ndim != 1 || biases[k]->shape[0] != G * H))
            return gl_error_set(err, GL_ESHAPE, argument_position(kind, IN_B_IH + k),
                                "%s: %s must be (%lld) for hidden size %lld, got shape %s", op,
                                k ? "bias_hh" : "bias_ih", (long long)(G * H), (long long)H,
                                GL_SHAPE_STR(biases[k], as));
    int64_t T = cell ? 1 : x->shape[0], B = x->shape[x->ndim - 2];
    if (T == 0)
        return gl_error_set(err, GL_ESHAPE, 1, "%s: the sequence is empty (input shape %s)", op,
                            GL_SHAPE_STR(x, xs));
    if (c0 && kind != GL_RNN_LSTM)
        return gl_error_set(err, GL_EARG, 3, "%s: a cell state %s is only for LSTM", op, c_name);
    const gl_tensor *states[2] = {h0, c0};
    for (int k = 0; k < 2; k++) {
        const gl_tensor *st = states[k];
        if (st && (st->ndim != 2 || st->shape[0] != B || st->shape[1] != H))
            return gl_error_set(err, GL_ESHAPE, k + 2,
                                "%s: %s has shape %s, expected {%lld, %lld} (batch %lld of input shape %s, hidden size %lld)",
                                op, k ? c_name : h_name, GL_SHAPE_STR(st, as), (long long)B, (long long)H,
                                (long long)B, GL_SHAPE_STR(x, xs), (long long)H);
    }
    /* Every BLAS size and leading dimension must fit an int; the record must
     * stay far from int64 overflow. */
    if (T > INT_MAX || B > INT_MAX || In > INT_MAX || G * H > INT_MAX || T * B > INT_MAX
        || (double)(T + 1) * (double)B * (double)(G + 4) * (double)H > 0x1p60)
        return gl_error_set(err, GL_ESHAPE, 1, "%s: sizes exceed BLAS's int range (input shape %s, weight_hh shape %s)",
                            op, GL_SHAPE_STR(x, xs), GL_SHAPE_STR(w_hh, as));
    *s = (rnn_shape){kind, T, B, In, H, G};
    return GL_OK;
}

/* ------------------------------------------------------------ the op */

/* A contiguous float copy of bias (n) added into out, or nothing for NULL. */
static void bias_add(const gl_tensor *bias, int64_t n, float *out, float *tmp)
{
    if (!bias) return;
    gl_tensor_gather_to(bias, tmp);
    for (int64_t j = 0; j < n; j++) out[j] += tmp[j];
}

/* Runs the layer and returns the packed output (see the top comment):
 * (T + 1, B, H) for LSTM, else (T, B, H); for a cell (2, B, H) and (B, H). */
static gl_status rnn_run(gl_rnn_kind kind, bool cell, const gl_tensor *x, const gl_tensor *h0,
                         const gl_tensor *c0, const gl_tensor *w_ih, const gl_tensor *w_hh,
                         const gl_tensor *b_ih, const gl_tensor *b_hh, gl_tensor **packed, gl_error *err)
{
    rnn_shape s = {0};
    *packed = NULL;
    gl_status status = rnn_check(kind, cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh, &s, err);
    if (status) return status;
    const char *op = cell ? cell_names[kind] : sequence_names[kind];
    int64_t GH = s.G * s.H, state = s.B * s.H;
    bool gru = kind == GL_RNN_GRU, lstm = kind == GL_RNN_LSTM;

    gl_tensor *dense_x = NULL, *dense_wi = NULL, *dense_wh = NULL, *dense_h = NULL, *dense_c = NULL;
    gl_tensor *record = NULL, *matrix_x = NULL;
    float *biases = NULL;   /* bias_x, bias_h, a gather buffer: GH each (zeros without biases) */
    status = gl_tensor_contiguous_untracked(x, &dense_x, err);
    if (!status) status = gl_tensor_contiguous_untracked(w_ih, &dense_wi, err);
    if (!status) status = gl_tensor_contiguous_untracked(w_hh, &dense_wh, err);
    if (!status && h0) status = gl_tensor_contiguous_untracked(h0, &dense_h, err);
    if (!status && c0) status = gl_tensor_contiguous_untracked(c0, &dense_c, err);
    if (!status) {
        biases = calloc((size_t)(3 * GH + 1), sizeof *biases);
        if (!biases) status = gl_error_set(err, GL_ENOMEM, 0, "%s: out of memory", op);
    }
    int64_t record_size = record_layout(&s, NULL, NULL) + (gru ? s.B * GH : 0);
    if (!status) status = gl_tensor_empty(1, &record_size, &record, err);
    if (!status) {
        int64_t shape[3] = {lstm ? s.T + 1 : s.T, s.B, s.H};
        if (cell) status = lstm ? gl_tensor_empty(3, shape, packed, err) : gl_tensor_empty(2, shape + 1, packed, err);
        else status = gl_tensor_empty(3, shape, packed, err);
    }
    if (status) goto done;

    float *bias_x = biases, *bias_h = biases + GH, *tmp = biases + 2 * GH;
    bias_add(b_ih, GH, bias_x, tmp);
    bias_add(b_hh, GH, gru ? bias_h : bias_x, tmp);
    rnn_record rec;
    float *gru_h = gl_tensor_data(record) + record_layout(&s, gl_tensor_data(record), &rec);
    rnn_forward_kernel(&s, gl_tensor_data(dense_x), h0 ? gl_tensor_data(dense_h) : NULL,
                       c0 ? gl_tensor_data(dense_c) : NULL, gl_tensor_data(dense_wi), gl_tensor_data(dense_wh),
                       bias_x, bias_h, &rec, gru_h);
    float *out = gl_tensor_data(*packed);
    memcpy(out, rec.hs + state, sizeof(float) * (size_t)(s.T * state));
    if (lstm) memcpy(out + s.T * state, rec.cs + s.T * state, sizeof(float) * (size_t)state);

    const gl_tensor *inputs[IN_COUNT] = {x, h0, c0, w_ih, w_hh, b_ih, b_hh};
    gl_node *node = NULL;
    status = gl_op_finish(node_names[cell][kind], *packed, IN_COUNT, inputs, rnn_backward, &node, err);
    if (!status && node) {
        node->params[0] = kind, node->params[1] = s.T, node->params[2] = s.B;
        node->params[3] = s.In, node->params[4] = s.H;
        int64_t matrix_shape[2] = {s.T * s.B, s.In};
        status = gl_tensor_view_of(dense_x->storage, 2, matrix_shape, NULL, dense_x->offset, &matrix_x, err);
        if (!status) status = gl_node_save(node, matrix_x, err);
        if (!status) status = gl_node_save(node, dense_wi, err);
        if (!status) status = gl_node_save(node, dense_wh, err);
        if (!status) status = gl_node_save(node, record, err);
    }
done:
    free(biases);
    gl_tensor_release(matrix_x);
    gl_tensor_release(record);
    gl_tensor_release(dense_c);
    gl_tensor_release(dense_h);
    gl_tensor_release(dense_wh);
    gl_tensor_release(dense_wi);
    gl_tensor_release(dense_x);
    if (status) {
        gl_tensor_release(*packed);
        *packed = NULL;
    }
    return status;
}

gl_status gl_rnn_sequence(gl_rnn_kind kind, const gl_tensor *x, const gl_tensor *h0,
                          const gl_tensor *c0, const gl_tensor *w_ih, const gl_tensor *w_hh,
                          const gl_tensor *b_ih, const gl_tensor *b_hh, gl_tensor **y,
                          gl_tensor **h_n, gl_tensor **c_n, gl_error *err)
{
    gl_tensor *packed = NULL;
    *y = NULL, *h_n = NULL;
    if (c_n) *c_n = NULL;
    gl_status status = rnn_run(kind, false, x, h0, c0, w_ih, w_hh, b_ih, b_hh, &packed, err);
    if (status) return status;
    int64_t T = kind == GL_RNN_LSTM ? packed->shape[0] - 1 : packed->shape[0];
    if (kind == GL_RNN_LSTM) {
        status = gl_tensor_narrow(packed, 0, 0, T, y, err);
        if (!status && c_n) status = gl_tensor_select(packed, 0, T, c_n, err);
    } else {
        gl_tensor_retain(packed);
        *y = packed;
    }
    if (!status) status = gl_tensor_select(packed, 0, T - 1, h_n, err);
    gl_tensor_release(packed);
    if (status) {
        gl_tensor_release(*y);
        gl_tensor_release(*h_n);
        *y = NULL, *h_n = NULL;
        if (c_n) {
            gl_tensor_release(*c_n);
            *c_n = NULL;
        }
    }
    return status;
}

gl_status gl_rnn_cell(gl_rnn_kind kind, const gl_tensor *x, const gl_tensor *h, const gl_tensor *c,
                      const gl_tensor *w_ih, const gl_tensor *w_hh, const gl_tensor *b_ih,
                      const gl_tensor *b_hh, gl_tensor **h_out, gl_tensor **c_out, gl_error *err)
{
    gl_tensor *packed = NULL;
    *h_out = NULL;
    if (c_out) *c_out = NULL;
    gl_status status = rnn_run(kind, true, x, h, c, w_ih, w_hh, b_ih, b_hh, &packed, err);
    if (status) return status;
    if (kind != GL_RNN_LSTM) {
        *h_out = packed;
        return GL_OK;
    }
    status = gl_tensor_select(packed, 0, 0, h_out, err);
    if (!status && c_out) status = gl_tensor_select(packed, 0, 1, c_out, err);
    gl_tensor_release(packed);
    if (status) {
        gl_tensor_release(*h_out);
        *h_out = NULL;
        if (c_out) {
            gl_tensor_release(*c_out);
            *c_out = NULL;
        }
    }
    return status;
}
