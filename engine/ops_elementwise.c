/*
 * ops_elementwise.c — broadcasting binary ops, unary ops, where, and the
 * in-place updates, all on strided views.
 *
 * One driver walks every operand through a coalesced layout and hands rows to
 * a per-op kernel; the contiguous case (all strides 1) is a plain loop the
 * compiler vectorizes.
 */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "autograd.h"
#include "internal.h"
#include "math_fast.h"

/* Internal ops of the driver beyond the public binary ops. */
enum { OP_COPY = GL_BINARY_OP_COUNT, OP_ADD_SCALED };

static const char *const binary_names[GL_BINARY_OP_COUNT] = {
    [GL_OP_ADD] = "add", [GL_OP_SUB] = "sub", [GL_OP_MUL] = "mul", [GL_OP_DIV] = "div",
    [GL_OP_POW] = "pow", [GL_OP_MAXIMUM] = "maximum", [GL_OP_MINIMUM] = "minimum",
    [GL_OP_EQ] = "eq", [GL_OP_NE] = "ne", [GL_OP_LT] = "lt", [GL_OP_LE] = "le",
    [GL_OP_GT] = "gt", [GL_OP_GE] = "ge",
};
_Static_assert(sizeof binary_names / sizeof binary_names[0] == GL_BINARY_OP_COUNT,
               "one name per binary op");

static const char *const unary_names[GL_UNARY_OP_COUNT] = {
    [GL_OP_NEG] = "neg", [GL_OP_EXP] = "exp", [GL_OP_LOG] = "log", [GL_OP_SQRT] = "sqrt",
    [GL_OP_ABS] = "abs", [GL_OP_SIGN] = "sign", [GL_OP_HALF] = "half",
    [GL_OP_BFLOAT16] = "bfloat16",
};
_Static_assert(sizeof unary_names / sizeof unary_names[0] == GL_UNARY_OP_COUNT,
               "one name per unary op");

const char *gl_binary_op_name(gl_binary_op op)
{
    return op < GL_BINARY_OP_COUNT ? binary_names[op] : "?";
}

const char *gl_unary_op_name(gl_unary_op op)
{
    return op < GL_UNARY_OP_COUNT ? unary_names[op] : "?";
}

/* ------------------------------------------------------------ broadcasting */

gl_status gl_broadcast_shape(const char *op, int ndim_a, const int64_t *a, int ndim_b,
                             const int64_t *b, int *ndim_out, int64_t *out, gl_error *err)
{
    char sa[160], sb[160];
    int ndim = ndim_a > ndim_b ? ndim_a : ndim_b;
    for (int d = 0; d < ndim; d++) {
        int da = d - (ndim - ndim_a), db = d - (ndim - ndim_b);
        int64_t x = da >= 0 ? a[da] : 1, y = db >= 0 ? b[db] : 1;
        if (x != y && x != 1 && y != 1)
            return gl_error_set(err, GL_ESHAPE, 2,
                                "%s: shapes %s and %s cannot be broadcast together (dimension %d: %lld vs %lld)",
                                op, gl_shape_format(ndim_a, a, sa, sizeof sa),
                                gl_shape_format(ndim_b, b, sb, sizeof sb), d + 1, (long long)x,
                                (long long)y);
        out[d] = x == 1 ? y : x;
    }
    *ndim_out = ndim;
    return GL_OK;
}

/* Strides of `t` seen through the broadcast shape (0 where it is expanded). */
static void broadcast_strides(const gl_tensor *t, int ndim, const int64_t *shape, int64_t *stride)
{
    int lead = ndim - t->ndim;
    for (int d = 0; d < ndim; d++) {
        if (d < lead) stride[d] = 0;
        else stride[d] = t->shape[d - lead] == 1 && shape[d] != 1 ? 0 : t->stride[d - lead];
    }
}

/* ------------------------------------------------------------------ kernels */

static inline float apply_binary(int op, float x, float y, float alpha)
{
    switch (op) {
    case GL_OP_ADD: return x + y;
    case GL_OP_SUB: return x - y;
    case GL_OP_MUL: return x * y;
    case GL_OP_DIV: return x / y;
    case GL_OP_POW: return powf(x, y);
    case GL_OP_MAXIMUM: return x > y || isnan(x) ? x : y;
    case GL_OP_MINIMUM: return x < y || isnan(x) ? x : y;
    case GL_OP_EQ: return x == y;
    case GL_OP_NE: return x != y;
    case GL_OP_LT: return x < y;
    case GL_OP_LE: return x <= y;
    case GL_OP_GT: return x > y;
    case GL_OP_GE: return x >= y;
    case OP_COPY: return y;
    case OP_ADD_SCALED: return x + alpha * y;
    default: return NAN;
    }
}

/* Expands to a loop specialized for one op and one stride pattern; the switch
 * over ops sits outside the loop so each body vectorizes. */
#define ROW_LOOP(OP, out_index, a_index, b_index)                                          \
    for (int64_t i = 0; i < n; i++)                                                        \
        o[out_index] = apply_binary(OP, a[a_index], b[b_index], alpha);

#define ROW_CASE(OP)                                                                       \
    case OP:                                                                               \
        if (so == 1 && sa == 1 && sb == 1) { ROW_LOOP(OP, i, i, i) }                       \
        else if (so == 1 && sa == 1 && sb == 0) { ROW_LOOP(OP, i, i, 0) }                  \
        else if (so == 1 && sa == 0 && sb == 1) { ROW_LOOP(OP, i, 0, i) }                  \
        else { ROW_LOOP(OP, i * so, i * sa, i * sb) }                                      \
        break;

GL_VECTOR_CLONES static void binary_row(int op, float alpha, int64_t n, float *o, int64_t so, const float *a,
                                        int64_t sa, const float *b, int64_t sb)
{
    switch (op) {
        ROW_CASE(GL_OP_ADD)
        ROW_CASE(GL_OP_SUB)
        ROW_CASE(GL_OP_MUL)
        ROW_CASE(GL_OP_DIV)
        ROW_CASE(GL_OP_POW)
        ROW_CASE(GL_OP_MAXIMUM)
        ROW_CASE(GL_OP_MINIMUM)
        ROW_CASE(GL_OP_EQ)
        ROW_CASE(GL_OP_NE)
        ROW_CASE(GL_OP_LT)
        ROW_CASE(GL_OP_LE)
        ROW_CASE(GL_OP_GT)
        ROW_CASE(GL_OP_GE)
        ROW_CASE(OP_COPY)
        ROW_CASE(OP_ADD_SCALED)
    }
}
#undef ROW_CASE
#undef ROW_LOOP

/* One long run (a whole contiguous tensor: a residual add, a gradient summed in place) goes
 * in slices over the engine's threads; each element is computed alone, so the slices give
 * the same bits as one pass. */
#define BINARY_MIN_PER_PART 65536.0

typedef struct binary_job {
    int op, parts;
    float alpha;
    int64_t n, so, sa, sb;
    float *o;
    const float *a, *b;
    atomic_llong next;   /* slices are handed out from here: a slower core takes fewer */
    int64_t slice;
} binary_job;

/* Whether a run of n floats at p with stride s and one at o (stride so) are the same run or
 * share no memory: otherwise (an operand overlapping the output shifted) the serial order
 * decides the result, and the run stays in one piece. */
static bool runs_separate(const float *o, int64_t so, const float *p, int64_t s, int64_t n)
{
    if (p == o && s == so) return true;
    uintptr_t o_lo = (uintptr_t)o, o_hi = (uintptr_t)(o + (n - 1) * so) + sizeof(float);
    uintptr_t p_lo = (uintptr_t)p, p_hi = (uintptr_t)(p + (n - 1) * s) + sizeof(float);
    if (so < 0 || s < 0) return false;
    return p_hi <= o_lo || o_hi <= p_lo;
}

static void binary_part(void *arg, int part)
{
    binary_job *j = arg;
    (void)part;
    for (;;) {
        int64_t lo = atomic_fetch_add(&j->next, j->slice);
        if (lo >= j->n) break;
        int64_t hi = lo + j->slice < j->n ? lo + j->slice : j->n;
        binary_row(j->op, j->alpha, hi - lo, j->o + lo * j->so, j->so, j->a + lo * j->sa, j->sa, j->b + lo * j->sb,
                   j->sb);
    }
}

/* Runs `op` over three views of one shape: out[i] = a[i] op b[i].  `a` and `b`
 * carry strides already broadcast to `shape`. */
static void binary_drive(int op, float alpha, int ndim, const int64_t *shape, float *out,
                         const int64_t *out_stride, const float *a, const int64_t *a_stride,
                         const float *b, const int64_t *b_stride)
{
    int64_t cshape[GL_MAX_DIMS], cstride[3][GL_MAX_DIMS];
    const int64_t *strides[3] = {out_stride, a_stride, b_stride};
    for (int d = 0; d < ndim; d++)
        if (shape[d] == 0) return;
    int n = gl_layout_coalesce(ndim, shape, 3, strides, cshape, cstride);
    int64_t index[GL_MAX_DIMS] = {0};
    int64_t inner = cshape[n - 1];
    if (n == 1) {
        binary_job job = {op, gl_parallel_parts((double)inner, BINARY_MIN_PER_PART, inner), alpha, inner,
                          cstride[0][0], cstride[1][0], cstride[2][0], out, a, b, 0, 0};
        if (job.parts > 1 && runs_separate(out, job.so, a, job.sa, inner) && runs_separate(out, job.so, b, job.sb, inner)) {
            atomic_init(&job.next, 0);
            job.slice = (inner / (4 * (int64_t)job.parts) + 15) / 16 * 16;   /* whole vectors */
            gl_parallel_run(job.parts, binary_part, &job);
            return;
        }
    }
    for (;;) {
        int64_t at_o = 0, at_a = 0, at_b = 0;
        for (int d = 0; d < n - 1; d++) {
            at_o += index[d] * cstride[0][d];
            at_a += index[d] * cstride[1][d];
            at_b += index[d] * cstride[2][d];
        }
        binary_row(op, alpha, inner, out + at_o, cstride[0][n - 1], a + at_a, cstride[1][n - 1],
                   b + at_b, cstride[2][n - 1]);
        int d = n - 2;
        while (d >= 0 && ++index[d] == cshape[d]) index[d--] = 0;
        if (d < 0) break;
    }
}

static bool op_is_comparison(int op) { return op >= GL_OP_EQ && op <= GL_OP_GE; }

/* Gradients of a op b for both operands, as full-size tensors before
 * broadcasting is undone.  x/y are the operands, out the forward result. */
static gl_status binary_local_grads(int op, gl_tensor *g, const gl_tensor *x, const gl_tensor *y,
                                    const gl_tensor *out, bool want_x, bool want_y, gl_tensor **gx,
                                    gl_tensor **gy, gl_error *err)
{
    gl_status status = GL_OK;
    gl_tensor *t1 = NULL, *t2 = NULL;
    switch (op) {
    case GL_OP_ADD:
        if (want_x) gl_tensor_retain(g), *gx = g;
        if (want_y) gl_tensor_retain(g), *gy = g;
        break;
    case GL_OP_SUB:
        if (want_x) gl_tensor_retain(g), *gx = g;
        if (want_y) status = gl_tensor_unary(GL_OP_NEG, g, gy, err);
        break;
    case GL_OP_MUL:
        if (want_x) status = gl_tensor_binary(GL_OP_MUL, g, y, gx, err);
        if (!status && want_y) status = gl_tensor_binary(GL_OP_MUL, g, x, gy, err);
        break;
    case GL_OP_DIV:   /* d(x/y) = g/y, -g*out/y */
        if (want_x) status = gl_tensor_binary(GL_OP_DIV, g, y, gx, err);
        if (!status && want_y) {
            status = gl_tensor_binary(GL_OP_MUL, g, out, &t1, err);
            if (!status) status = gl_tensor_binary(GL_OP_DIV, t1, y, &t2, err);
            if (!status) status = gl_tensor_unary(GL_OP_NEG, t2, gy, err);
        }
        break;
    case GL_OP_POW:   /* d(x^y) = g*y*x^(y-1), g*out*log(x) */
        if (want_x) {
            status = gl_tensor_binary_scalar(GL_OP_SUB, y, 1.0f, false, &t1, err);
            if (!status) status = gl_tensor_binary(GL_OP_POW, x, t1, &t2, err);
            gl_tensor_release(t1), t1 = NULL;
            if (!status) status = gl_tensor_binary(GL_OP_MUL, t2, y, &t1, err);
            gl_tensor_release(t2), t2 = NULL;
            if (!status) status = gl_tensor_binary(GL_OP_MUL, g, t1, gx, err);
            gl_tensor_release(t1), t1 = NULL;
        }
        if (!status && want_y) {
            status = gl_tensor_unary(GL_OP_LOG, x, &t1, err);
            if (!status) status = gl_tensor_binary(GL_OP_MUL, t1, out, &t2, err);
            if (!status) status = gl_tensor_binary(GL_OP_MUL, g, t2, gy, err);
        }
        break;
    case GL_OP_MAXIMUM:
    case GL_OP_MINIMUM: {
        /* The winner takes the gradient; a tie splits it, as PyTorch does. */
        gl_tensor *wins = NULL, *ties = NULL, *share = NULL;
        status = gl_tensor_binary(op == GL_OP_MAXIMUM ? GL_OP_GT : GL_OP_LT, x, y, &wins, err);
        if (!status) status = gl_tensor_binary(GL_OP_EQ, x, y, &ties, err);
        if (!status) status = gl_tensor_binary_scalar(GL_OP_MUL, ties, 0.5f, false, &t1, err);
        if (!status) status = gl_tensor_binary(GL_OP_ADD, wins, t1, &share, err);   /* x's share */
        if (!status && want_x) status = gl_tensor_binary(GL_OP_MUL, g, share, gx, err);
        if (!status && want_y) {
            status = gl_tensor_binary_scalar(GL_OP_SUB, share, 1.0f, true, &t2, err);
            if (!status) status = gl_tensor_binary(GL_OP_MUL, g, t2, gy, err);
        }
        gl_tensor_release(wins);
        gl_tensor_release(ties);
        gl_tensor_release(share);
        break;
    }
    default:
        break;
    }
    gl_tensor_release(t1);
    gl_tensor_release(t2);
    return status;
}

/* Saved: x, y, out (aliases).  params[0] = op. */
static gl_status binary_backward(gl_node *node, gl_tensor *g, gl_tensor **grads, gl_error *err)
{
    gl_tensor *gx = NULL, *gy = NULL;
    bool want_x = gl_node_input_needs_grad(node, 0), want_y = gl_node_input_needs_grad(node, 1);
    gl_status status = binary_local_grads((int)node->params[0], g, node->saved[0], node->saved[1],
                                          node->saved[2], want_x, want_y, &gx, &gy, err);
    if (!status && gx) status = gl_grad_reduce_to(gx, node->inputs[0].ndim, node->inputs[0].shape, &grads[0], err);
    if (!status && gy) status = gl_grad_reduce_to(gy, node->inputs[1].ndim, node->inputs[1].shape, &grads[1], err);
    gl_tensor_release(gx);
    gl_tensor_release(gy);
    return status;
}

/* Records the node of a binary op whose operands are x and y (either may be a
 * 0-d tensor standing for a number). */
static gl_status binary_finish(int op, gl_tensor *out, const gl_tensor *x, const gl_tensor *y,
                               gl_error *err)
{
    const gl_tensor *inputs[2] = {x, y};
    gl_node *node = NULL;
    gl_status status = gl_op_finish(binary_names[op], out, 2, inputs,
                                    op_is_comparison(op) ? NULL : binary_backward, &node, err);
    if (!status && node) {
        node->params[0] = op;
        status = gl_node_save(node, x, err);
        if (!status) status = gl_node_save(node, y, err);
        if (!status) status = gl_node_save(node, out, err);
    }
    return status;
}

gl_status gl_tensor_binary(gl_binary_op op, const gl_tensor *a, const gl_tensor *b,
                           gl_tensor **out, gl_error *err)
{
    int64_t shape[GL_MAX_DIMS], sa[GL_MAX_DIMS], sb[GL_MAX_DIMS];
    int ndim;
    *out = NULL;
    if (op >= GL_BINARY_OP_COUNT) return gl_error_set(err, GL_EARG, 0, "binary: unknown op");
    gl_status status = gl_broadcast_shape(binary_names[op], a->ndim, a->shape, b->ndim, b->shape,
                                          &ndim, shape, err);
    if (status || (status = gl_tensor_empty(ndim, shape, out, err))) return status;
    broadcast_strides(a, ndim, shape, sa);
    broadcast_strides(b, ndim, shape, sb);
    binary_drive(op, 0.0f, ndim, shape, gl_tensor_data(*out), (*out)->stride, gl_tensor_data(a), sa,
                 gl_tensor_data(b), sb);
    if ((status = binary_finish(op, *out, a, b, err))) {
        gl_tensor_release(*out);
        *out = NULL;
    }
    return status;
}

gl_status gl_tensor_binary_scalar(gl_binary_op op, const gl_tensor *a, float s,
                                  bool scalar_first, gl_tensor **out, gl_error *err)
{
    int64_t sa[GL_MAX_DIMS], zero[GL_MAX_DIMS] = {0};
    *out = NULL;
    if (op >= GL_BINARY_OP_COUNT) return gl_error_set(err, GL_EARG, 0, "binary: unknown op");
    gl_status status = gl_tensor_empty(a->ndim, a->shape, out, err);
    if (status) return status;
    memcpy(sa, a->stride, sizeof sa);
    float *o = gl_tensor_data(*out);
    if (scalar_first)
        binary_drive(op, 0.0f, a->ndim, a->shape, o, (*out)->stride, &s, zero, gl_tensor_data(a), sa);
    else
        binary_drive(op, 0.0f, a->ndim, a->shape, o, (*out)->stride, gl_tensor_data(a), sa, &s, zero);
    if (gl_grad_enabled() && gl_tensor_tracks_grad(a) && !op_is_comparison(op)) {
        /* The number becomes a 0-d constant so one backward serves both forms. */
        gl_tensor *constant = NULL;
        status = gl_tensor_scalar(s, &constant, err);
        if (!status)
            status = scalar_first ? binary_finish(op, *out, constant, a, err)
                                  : binary_finish(op, *out, a, constant, err);
        gl_tensor_release(constant);
    } else {
        status = gl_op_finish(binary_names[op], *out, 0, NULL, NULL, NULL, err);
    }
    if (status) {
        gl_tensor_release(*out);
        *out = NULL;
    }
    return status;
}

/* ------------------------------------------------------------------- unary */

float gl_round_half(float x)
{
    /* Round to the nearest IEEE binary16 value (ties to even), then widen back. */
    if (isnan(x)) return x;
    float magnitude = fabsf(x);
    if (magnitude >= 65520.0f) return copysignf(INFINITY, x);   /* rounds past 65504 */
    if (magnitude < 0x1.0p-14f) {
        /* Subnormal half: a fixed grid of 2^-24; rintf rounds ties to even. */
        return copysignf(rintf(magnitude * 0x1.0p24f) * 0x1.0p-24f, x);
    }
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    /* Keep 10 of float32's 23 mantissa bits, rounding to nearest even. */
    uint32_t lsb = (bits >> 13) & 1u;
    bits += 0x0fffu + lsb;
    bits &= ~0x1fffu;
    float y;
    memcpy(&y, &bits, sizeof y);
    return y;
}

float gl_round_bfloat16(float x)
{
    if (isnan(x)) return x;
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    uint32_t lsb = (bits >> 16) & 1u;
    bits += 0x7fffu + lsb;   /* overflow past the largest bfloat16 carries into inf, as it should */
    bits &= 0xffff0000u;
    float y;
    memcpy(&y, &bits, sizeof y);
    return y;
}

static void unary_row(gl_unary_op op, int64_t n, float *restrict o, const float *restrict a)
{
    switch (op) {
    case GL_OP_NEG: for (int64_t i = 0; i < n; i++) o[i] = -a[i]; break;
    case GL_OP_EXP: for (int64_t i = 0; i < n; i++) o[i] = expf(a[i]); break;
    case GL_OP_LOG: for (int64_t i = 0; i < n; i++) o[i] = logf(a[i]); break;
    case GL_OP_SQRT: for (int64_t i = 0; i < n; i++) o[i] = sqrtf(a[i]); break;
    case GL_OP_ABS: for (int64_t i = 0; i < n; i++) o[i] = fabsf(a[i]); break;
    case GL_OP_SIGN:
        for (int64_t i = 0; i < n; i++) o[i] = (float)((a[i] > 0) - (a[i] < 0));
        break;
    case GL_OP_HALF: for (int64_t i = 0; i < n; i++) o[i] = gl_round_half(a[i]); break;
    case GL_OP_BFLOAT16: for (int64_t i = 0; i < n; i++) o[i] = gl_round_bfloat16(a[i]); break;
    default: break;
    }
}

/* New contiguous tensor holding `a`'s values, ready for a pass in place. */
static gl_status unary_prepare(const gl_tensor *a, gl_tensor **out, const float **source,
                               gl_error *err)
{
    gl_status status = gl_tensor_empty(a->ndim, a->shape, out, err);
    if (status) return status;
    if (gl_tensor_is_contiguous(a)) {
        *source = gl_tensor_data(a);
    } else {
        gl_tensor_gather_to(a, gl_tensor_data(*out));
        *source = gl_tensor_data(*out);
    }
    return GL_OK;
}

/* Saved: x, out.  params[0] = op. */
static gl_status unary_backward(gl_node *node, gl_tensor *g, gl_tensor **grads, gl_error *err)
{
    const gl_tensor *x = node->saved[0], *out = node->saved[1];
    gl_tensor *t = NULL;
    gl_status status = GL_OK;
    switch ((gl_unary_op)node->params[0]) {
    case GL_OP_NEG: return gl_tensor_unary(GL_OP_NEG, g, &grads[0], err);
    case GL_OP_EXP: return gl_tensor_binary(GL_OP_MUL, g, out, &grads[0], err);
    case GL_OP_LOG: return gl_tensor_binary(GL_OP_DIV, g, x, &grads[0], err);
    case GL_OP_SQRT:   /* g / (2 sqrt x) */
        status = gl_tensor_binary_scalar(GL_OP_MUL, out, 2.0f, false, &t, err);
        if (!status) status = gl_tensor_binary(GL_OP_DIV, g, t, &grads[0], err);
        break;
    case GL_OP_ABS:
        status = gl_tensor_unary(GL_OP_SIGN, x, &t, err);
        if (!status) status = gl_tensor_binary(GL_OP_MUL, g, t, &grads[0], err);
        break;
    case GL_OP_SIGN: return gl_tensor_zeros(x->ndim, x->shape, &grads[0], err);
    case GL_OP_HALF:
    case GL_OP_BFLOAT16:
        /* A value stored in a reduced format receives its gradient in that
         * format too, as in real mixed precision: the gradient is rounded the
         * same way (so tiny gradients underflow, which loss scaling is for). */
        return gl_tensor_unary((gl_unary_op)node->params[0], g, &grads[0], err);
    default: break;
    }
    gl_tensor_release(t);
    return status;
}

static gl_status unary_finish(const char *name, int op, gl_tensor *out, const gl_tensor *a,
                              gl_backward_fn backward, gl_error *err)
{
    const gl_tensor *inputs[1] = {a};
    gl_node *node = NULL;
    gl_status status = gl_op_finish(name, out, 1, inputs, backward, &node, err);
    if (!status && node) {
        node->params[0] = op;
        status = gl_node_save(node, a, err);
        if (!status) status = gl_node_save(node, out, err);
    }
    return status;
}

gl_status gl_tensor_unary(gl_unary_op op, const gl_tensor *a, gl_tensor **out, gl_error *err)
{
    const float *source;
    *out = NULL;
    if (op >= GL_UNARY_OP_COUNT) return gl_error_set(err, GL_EARG, 0, "unary: unknown op");
    gl_status status = unary_prepare(a, out, &source, err);
    if (status) return status;
    float *o = gl_tensor_data(*out);
    int64_t n = gl_tensor_numel(a);
    if (source == o) {
        /* In place over the gathered copy: run in blocks through a small buffer
         * so the restrict promise of unary_row holds. */
        float block[1024];
        for (int64_t i = 0; i < n; i += 1024) {
            int64_t m = n - i < 1024 ? n - i : 1024;
            memcpy(block, o + i, sizeof(float) * (size_t)m);
            unary_row(op, m, o + i, block);
        }
    } else {
        unary_row(op, n, o, source);
    }
    if ((status = unary_finish(unary_names[op], op, *out, a, unary_backward, err))) {
        gl_tensor_release(*out);
        *out = NULL;
    }
    return status;
}

/* Saved: x.  scalars: low, high.  The gradient passes where low <= x <= high. */
static gl_status clamp_backward(gl_node *node, gl_tensor *g, gl_tensor **grads, gl_error *err)
{
    const gl_tensor *x = node->saved[0];
    float low = (float)node->scalars[0], high = (float)node->scalars[1];
    gl_tensor *dense = NULL;
    gl_status status = gl_tensor_clone_untracked(x, &dense, err);
    if (status) return status;
    float *m = gl_tensor_data(dense);
    int64_t n = gl_tensor_numel(dense);
    for (int64_t i = 0; i < n; i++) m[i] = m[i] >= low && m[i] <= high ? 1.0f : 0.0f;
    status = gl_tensor_binary(GL_OP_MUL, g, dense, &grads[0], err);
    gl_tensor_release(dense);
    return status;
}

gl_status gl_tensor_clamp(const gl_tensor *a, float low, float high, gl_tensor **out,
                          gl_error *err)
{
    const float *source;
    *out = NULL;
    if (isnan(low) || isnan(high) || low > high)
        return gl_error_set(err, GL_EARG, 2, "clamp: low (%g) must not exceed high (%g)",
                            (double)low, (double)high);
    gl_status status = unary_prepare(a, out, &source, err);
    if (status) return status;
    float *o = gl_tensor_data(*out);
    int64_t n = gl_tensor_numel(a);
    for (int64_t i = 0; i < n; i++) {
        float x = source[i];
        o[i] = x < low ? low : x > high ? high : x;   /* NaN passes through */
    }
    const gl_tensor *inputs[1] = {a};
    gl_node *node = NULL;
    status = gl_op_finish("clamp", *out, 1, inputs, clamp_backward, &node, err);
    if (!status && node) {
        node->scalars[0] = low;
        node->scalars[1] = high;
        status = gl_node_save(node, a, err);
    }
    if (status) {
        gl_tensor_release(*out);
        *out = NULL;
    }
    return status;
}

/* Inputs: a, b (the mask takes no gradient).  Saved: mask. */
static gl_status where_backward(gl_node *node, gl_tensor *g, gl_tensor **grads, gl_error *err)
{
    gl_tensor *zero = NULL, *full = NULL;
    gl_status status = gl_tensor_scalar(0.0f, &zero, err);
    for (int i = 0; i < 2 && !status; i++) {
        if (!gl_node_input_needs_grad(node, i)) continue;
        status = i == 0 ? gl_tensor_where(node->saved[0], g, zero, &full, err)
                        : gl_tensor_where(node->saved[0], zero, g, &full, err);
        if (!status) status = gl_grad_reduce_to(full, node->inputs[i].ndim, node->inputs[i].shape, &grads[i], err);
        gl_tensor_release(full), full = NULL;
    }
    gl_tensor_release(zero);
    return status;
}

gl_status gl_tensor_where(const gl_tensor *mask, const gl_tensor *a, const gl_tensor *b,
                          gl_tensor **out, gl_error *err)
{
    int64_t shape_ab[GL_MAX_DIMS], shape[GL_MAX_DIMS];
    int ndim_ab, ndim;
    *out = NULL;
    gl_status status = gl_broadcast_shape("where", a->ndim, a->shape, b->ndim, b->shape, &ndim_ab,
                                          shape_ab, err);
    if (status || (status = gl_broadcast_shape("where", mask->ndim, mask->shape, ndim_ab, shape_ab,
                                               &ndim, shape, err)))
        return status;
    gl_tensor *views[3] = {NULL, NULL, NULL}, *dense[3] = {NULL, NULL, NULL};
    const gl_tensor *operands[3] = {mask, a, b};
    for (int k = 0; k < 3 && !status; k++) {
        /* A detached alias, so expanding it records nothing. */
        gl_tensor *alias = NULL;
        status = gl_tensor_view_of(operands[k]->storage, operands[k]->ndim, operands[k]->shape,
                                   operands[k]->stride, operands[k]->offset, &alias, err);
        if (!status) status = gl_tensor_expand(alias, ndim, shape, &views[k], err);
        gl_tensor_release(alias);
        if (!status) status = gl_tensor_contiguous_untracked(views[k], &dense[k], err);
    }
    if (!status) status = gl_tensor_empty(ndim, shape, out, err);
    if (!status) {
        const float *m = gl_tensor_data(dense[0]), *x = gl_tensor_data(dense[1]),
                    *y = gl_tensor_data(dense[2]);
        float *o = gl_tensor_data(*out);
        int64_t n = gl_tensor_numel(*out);
        for (int64_t i = 0; i < n; i++) o[i] = m[i] != 0.0f ? x[i] : y[i];
        const gl_tensor *inputs[2] = {a, b};
        gl_node *node = NULL;
        status = gl_op_finish("where", *out, 2, inputs, where_backward, &node, err);
        if (!status && node) status = gl_node_save(node, mask, err);
        if (status) {
            gl_tensor_release(*out);
            *out = NULL;
        }
    }
    for (int k = 0; k < 3; k++) {
        gl_tensor_release(views[k]);
        gl_tensor_release(dense[k]);
    }
    return status;
}

/* ---------------------------------------------------------------- in place */

/* Writing through a view where several elements share one memory slot would
 * give order-dependent results, so it is refused. */
static gl_status check_writable(const char *op, const gl_tensor *dst, gl_error *err)
{
    char buffer[160];
    for (int d = 0; d < dst->ndim; d++)
        if (dst->stride[d] == 0 && dst->shape[d] > 1)
            return gl_error_set(err, GL_EARG, 1,
                                "%s: cannot write into an expanded view (shape %s): several elements share memory; clone it first",
                                op, GL_SHAPE_STR(dst, buffer));
    return GL_OK;
}

/* dst = dst (op) src, src broadcast to dst's shape; src is copied first when it
 * shares dst's storage so overlapping views read the old values. */
static gl_status inplace_update(const char *op_name, int op, float alpha, gl_tensor *dst,
                                const gl_tensor *src, gl_error *err)
{
    char have[160], want[160];
    int64_t shape[GL_MAX_DIMS], sb[GL_MAX_DIMS];
    int ndim;
    gl_status status = check_writable(op_name, dst, err);
    if (status) return status;
    if (gl_broadcast_shape(op_name, dst->ndim, dst->shape, src->ndim, src->shape, &ndim, shape, err)
        || !gl_shape_equal(ndim, shape, dst->ndim, dst->shape))
        return gl_error_set(err, GL_ESHAPE, 2, "%s: source of shape %s does not broadcast to the destination's shape %s",
                            op_name, GL_SHAPE_STR(src, have), GL_SHAPE_STR(dst, want));
    gl_tensor *copy = NULL;
    if (src->storage == dst->storage) {
        if ((status = gl_tensor_clone_untracked(src, &copy, err))) return status;
        src = copy;
    }
    broadcast_strides(src, dst->ndim, dst->shape, sb);
    float *d = gl_tensor_data(dst);
    binary_drive(op, alpha, dst->ndim, dst->shape, d, dst->stride, d, dst->stride,
                 gl_tensor_data(src), sb);
    dst->storage->version++;
    gl_tensor_release(copy);
    return GL_OK;
}

gl_status gl_tensor_copy_from(gl_tensor *dst, const gl_tensor *src, gl_error *err)
{
    return inplace_update("copy", OP_COPY, 0.0f, dst, src, err);
}

gl_status gl_tensor_add_inplace(gl_tensor *dst, const gl_tensor *other, float alpha,
                                gl_error *err)
{
    return inplace_update("add_", OP_ADD_SCALED, alpha, dst, other, err);
}

gl_status gl_tensor_fill(gl_tensor *dst, float value, gl_error *err)
{
    int64_t zero[GL_MAX_DIMS] = {0};
    gl_status status = check_writable("fill", dst, err);
    if (status) return status;
    float *d = gl_tensor_data(dst);
    binary_drive(OP_COPY, 0.0f, dst->ndim, dst->shape, d, dst->stride, d, dst->stride, &value, zero);
    dst->storage->version++;
    return GL_OK;
}

gl_status gl_tensor_mul_scalar_inplace(gl_tensor *dst, float s, gl_error *err)
{
    int64_t zero[GL_MAX_DIMS] = {0};
    gl_status status = check_writable("mul_", dst, err);
    if (status) return status;
    float *d = gl_tensor_data(dst);
    binary_drive(GL_OP_MUL, 0.0f, dst->ndim, dst->shape, d, dst->stride, d, dst->stride, &s, zero);
    dst->storage->version++;
    return GL_OK;
}
