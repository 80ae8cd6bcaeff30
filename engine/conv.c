/*
 * conv.c — 2-d convolution (cross-correlation, as PyTorch) by im2col + sgemm.
 *
 *   x (B, Cin, H, W)   W (Cout, Cin/G, kh, kw)   b (Cout) or NULL   ->   y (B, Cout, OH, OW)
 *   per sample and group g, with K = Cin/G kh kw rows and P = OH OW columns:
 *   forward:  col (K, P) = im2col(x_g)           y_g (Cout/G, P) = W_g (Cout/G, K) col + b
 *   backward: dW_g += dy_g (Cout/G, P) col^T     db += row sums of dy (in double)
 *             dx: stride 1   dx = conv(dy, W flipped in space, channel axes swapped,
 *                                      padding d (k - 1) - p)     im2col of dy + sgemm
 *                 otherwise  dcol (K, P) = W_g^T dy_g,  dx_g = col2im(dcol)
 *
 * The columns of all groups are built at once (channel is their outermost
 * index, so group g owns rows [g K, (g + 1) K)).  A sample goes in one block
 * unless its columns pass CONV_BLOCK_FLOATS; bigger images are cut into
 * blocks of whole output rows, so the image size does not set the scratch
 * memory.  A 1x1 kernel with stride 1 and no padding has col == x and skips
 * im2col.  Backward rebuilds the columns instead of saving them: they are
 * kh kw times the input, and rebuilding costs a fraction of the products.
 * Where the CPU has AVX-512 (g->direct), the forward, dW and dx go to
 * conv_direct.c instead, which reads one zero-padded copy of x per sample (its
 * columns split by phase at a horizontal stride above 1) instead of kh kw
 * copies: with 16-32 channels, the copies of im2col and of OpenBLAS's packing
 * cost more than the products (2x per layer).  dx at stride 1 is a forward as
 * below; otherwise the direct kernels take it phase by phase of dx instead of
 * col2im.
 * gl_conv2d_reference, the naive loop summing in double, is the oracle the
 * specs compare with.
 */
#include <cblas.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "autograd.h"
#include "conv_kernels.h"
#include "norm_sums.h"

/* Target size of one block of columns (floats): 4 MiB.  sgemm wants wide blocks (at
 * 64 x 576 x N, N = 352 runs ~25 % slower than N = 1024), so a 32x32 image goes whole;
 * only big images are cut, to bound the scratch memory. */
enum { CONV_BLOCK_FLOATS = 1 << 20 };


gl_conv2d_options gl_conv2d_defaults(void)
{
    return (gl_conv2d_options){{1, 1}, {0, 0}, {1, 1}, 1, GL_CONV2D_AUTO};
}

/* floor(a / b) for b > 0 and any sign of a. */
static int64_t div_floor(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* ---------------------------------------------------------------- checks */

static gl_status conv_check(const gl_tensor *x, const gl_tensor *weight, const gl_tensor *bias,
                            const gl_conv2d_options *o, conv_geometry *g, gl_error *err)
{
    char xs[160], ws[160], bs[160];
    if (x->ndim != 4 && x->ndim != 3)
        return gl_error_set(err, GL_ESHAPE, 1,
                            "conv2d: input must be (B, C, H, W) or (C, H, W), got shape %s",
                            GL_SHAPE_STR(x, xs));
    if (weight->ndim != 4)
        return gl_error_set(err, GL_ESHAPE, 2,
                            "conv2d: weight must be 4-d (out_channels, in_channels / groups, kh, kw), got shape %s",
                            GL_SHAPE_STR(weight, ws));
    for (int d = 0; d < 4; d++)
        if (weight->shape[d] < 1)
            return gl_error_set(err, GL_ESHAPE, 2, "conv2d: weight shape %s has an empty dimension",
                                GL_SHAPE_STR(weight, ws));
    if (o->groups < 1)
        return gl_error_set(err, GL_EARG, 4, "conv2d: groups must be positive, got %lld",
                            (long long)o->groups);
    if (o->algorithm != GL_CONV2D_AUTO && o->algorithm != GL_CONV2D_IM2COL)
        return gl_error_set(err, GL_EARG, 4, "conv2d: unknown algorithm %d", (int)o->algorithm);
    for (int d = 0; d < 2; d++) {
        if (o->stride[d] < 1)
            return gl_error_set(err, GL_EARG, 4, "conv2d: stride must be positive, got (%lld, %lld)",
                                (long long)o->stride[0], (long long)o->stride[1]);
        if (o->padding[d] < 0)
            return gl_error_set(err, GL_EARG, 4, "conv2d: padding must be non-negative, got (%lld, %lld)",
                                (long long)o->padding[0], (long long)o->padding[1]);
        if (o->dilation[d] < 1)
            return gl_error_set(err, GL_EARG, 4, "conv2d: dilation must be positive, got (%lld, %lld)",
                                (long long)o->dilation[0], (long long)o->dilation[1]);
    }
    int lead = x->ndim - 3;
    g->batched = x->ndim == 4;
    g->batch = lead ? x->shape[0] : 1;
    g->cin = x->shape[lead];
    g->h = x->shape[lead + 1];
    g->w = x->shape[lead + 2];
    g->cout = weight->shape[0];
    g->cin_g = weight->shape[1];
    g->kh = weight->shape[2];
    g->kw = weight->shape[3];
    g->groups = o->groups;
    if (g->cout % g->groups != 0)
        return gl_error_set(err, GL_ESHAPE, 2,
                            "conv2d: weight has %lld output channels, which groups = %lld does not divide (weight shape %s)",
                            (long long)g->cout, (long long)g->groups, GL_SHAPE_STR(weight, ws));
    if (g->cin != g->cin_g * g->groups) {
        if (g->groups == 1)
            return gl_error_set(err, GL_ESHAPE, 1,
                                "conv2d: input has %lld channels, weight expects %lld (input shape %s, weight shape %s)",
                                (long long)g->cin, (long long)g->cin_g, GL_SHAPE_STR(x, xs),
                                GL_SHAPE_STR(weight, ws));
        return gl_error_set(err, GL_ESHAPE, 1,
                            "conv2d: input has %lld channels, weight expects %lld (%lld per group x %lld groups; input shape %s, weight shape %s)",
                            (long long)g->cin, (long long)(g->cin_g * g->groups), (long long)g->cin_g,
                            (long long)g->groups, GL_SHAPE_STR(x, xs), GL_SHAPE_STR(weight, ws));
    }
    if (bias && (bias->ndim != 1 || bias->shape[0] != g->cout))
        return gl_error_set(err, GL_ESHAPE, 3,
                            "conv2d: bias of shape %s does not match %lld output channels (weight shape %s)",
                            GL_SHAPE_STR(bias, bs), (long long)g->cout, GL_SHAPE_STR(weight, ws));
    g->sh = o->stride[0], g->sw = o->stride[1];
    g->ph = o->padding[0], g->pw = o->padding[1];
    g->dh = o->dilation[0], g->dw = o->dilation[1];
    /* Extents in int64: sizes are bounded by memory, options by the caller only. */
    if (g->kh > INT32_MAX || g->kw > INT32_MAX || g->dh > INT32_MAX || g->dw > INT32_MAX
        || g->ph > INT32_MAX || g->pw > INT32_MAX)
        return gl_error_set(err, GL_EARG, 4, "conv2d: kernel, padding or dilation too large");
    int64_t extent_h = g->dh * (g->kh - 1) + 1, extent_w = g->dw * (g->kw - 1) + 1;
    int64_t padded_h = g->h + 2 * g->ph, padded_w = g->w + 2 * g->pw;
    if (padded_h < extent_h || padded_w < extent_w)
        return gl_error_set(err, GL_ESHAPE, 1,
                            "conv2d: input too small: %lldx%lld padded by (%lld, %lld) is %lldx%lld, less than the kernel's extent %lldx%lld (kernel %lldx%lld, dilation (%lld, %lld); input shape %s, weight shape %s)",
                            (long long)g->h, (long long)g->w, (long long)g->ph, (long long)g->pw,
                            (long long)padded_h, (long long)padded_w, (long long)extent_h, (long long)extent_w,
                            (long long)g->kh, (long long)g->kw, (long long)g->dh, (long long)g->dw,
                            GL_SHAPE_STR(x, xs), GL_SHAPE_STR(weight, ws));
    g->oh = (padded_h - extent_h) / g->sh + 1;
    g->ow = (padded_w - extent_w) / g->sw + 1;
    g->cout_g = g->cout / g->groups;
    g->k = g->cin_g * g->kh * g->kw;
    g->p = g->oh * g->ow;
    g->pointwise = g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0;
    g->direct = o->algorithm == GL_CONV2D_AUTO && conv_direct_suits(g);
    if (g->k > INT_MAX || g->p > INT_MAX || g->h * g->w > INT_MAX || g->cout > INT_MAX
        || g->cin * g->kh * g->kw > INT_MAX || g->cout * g->kh * g->kw > INT_MAX)
        return gl_error_set(err, GL_ESHAPE, 1, "conv2d: sizes exceed BLAS's int range (input shape %s, weight shape %s)",
                            GL_SHAPE_STR(x, xs), GL_SHAPE_STR(weight, ws));
    return GL_OK;
}

/* Output rows per block: enough for ~CONV_BLOCK_FLOATS of columns, at least one. */
static int64_t rows_per_block(const conv_geometry *g)
{
    int64_t per_row = g->k * g->groups * g->ow;
    int64_t rows = clamp64(per_row > 0 ? CONV_BLOCK_FLOATS / per_row : g->oh, 1, g->oh > 0 ? g->oh : 1);
    /* Even blocks: 32 rows by at most 14 go as 11 + 11 + 10, not 14 + 14 + 4 (a thin last sgemm). */
    int64_t blocks = (g->oh + rows - 1) / rows;
    return blocks > 0 ? (g->oh + blocks - 1) / blocks : 1;
}

/* --------------------------------------------------------------- im2col */

/* Columns of output rows [oh0, oh1) of one sample: col (Cin kh kw, (oh1 - oh0) OW),
 * row (c, i, j) holding x[c, oh sh - ph + i dh, ow sw - pw + j dw], 0 outside. */
static void im2col(const conv_geometry *g, const float *restrict x, int64_t oh0, int64_t oh1,
                   float *restrict col)
{
    int64_t ow_n = g->ow, cols = (oh1 - oh0) * ow_n;
    for (int64_t c = 0; c < g->cin; c++) {
        const float *plane = x + c * g->h * g->w;
        for (int64_t i = 0; i < g->kh; i++) {
            for (int64_t j = 0; j < g->kw; j++) {
                float *row = col + ((c * g->kh + i) * g->kw + j) * cols;
                int64_t off_w = j * g->dw - g->pw;
                /* ow whose iw = ow sw + off_w lands inside [0, W) */
                int64_t lo = clamp64(-div_floor(off_w, g->sw), 0, ow_n);
                int64_t hi = clamp64(div_floor(g->w - 1 - off_w, g->sw) + 1, lo, ow_n);
                for (int64_t oh = oh0; oh < oh1; oh++) {
                    float *restrict dst = row + (oh - oh0) * ow_n;
                    int64_t ih = oh * g->sh - g->ph + i * g->dh;
                    if (ih < 0 || ih >= g->h) {
                        memset(dst, 0, sizeof(float) * (size_t)ow_n);
                        continue;
                    }
                    const float *restrict src = plane + ih * g->w + off_w;
                    for (int64_t ow = 0; ow < lo; ow++) dst[ow] = 0.0f;
                    if (g->sw == 1)
                        for (int64_t ow = lo; ow < hi; ow++) dst[ow] = src[ow];
                    else
                        for (int64_t ow = lo; ow < hi; ow++) dst[ow] = src[ow * g->sw];
                    for (int64_t ow = hi; ow < ow_n; ow++) dst[ow] = 0.0f;
                }
            }
        }
    }
}

/* The adjoint of im2col: dx[c, ih, iw] += col[(c, i, j), (oh, ow)] for in-range positions. */
static void col2im(const conv_geometry *g, const float *restrict col, int64_t oh0, int64_t oh1,
                   float *restrict dx)
{
    int64_t ow_n = g->ow, cols = (oh1 - oh0) * ow_n;
    for (int64_t c = 0; c < g->cin; c++) {
        float *plane = dx + c * g->h * g->w;
        for (int64_t i = 0; i < g->kh; i++) {
            for (int64_t j = 0; j < g->kw; j++) {
                const float *row = col + ((c * g->kh + i) * g->kw + j) * cols;
                int64_t off_w = j * g->dw - g->pw;
                int64_t lo = clamp64(-div_floor(off_w, g->sw), 0, ow_n);
                int64_t hi = clamp64(div_floor(g->w - 1 - off_w, g->sw) + 1, lo, ow_n);
                for (int64_t oh = oh0; oh < oh1; oh++) {
                    int64_t ih = oh * g->sh - g->ph + i * g->dh;
                    if (ih < 0 || ih >= g->h) continue;
                    const float *restrict src = row + (oh - oh0) * ow_n;
                    float *restrict dst = plane + ih * g->w + off_w;
                    if (g->sw == 1)
                        for (int64_t ow = lo; ow < hi; ow++) dst[ow] += src[ow];
                    else
                        for (int64_t ow = lo; ow < hi; ow++) dst[ow * g->sw] += src[ow];
                }
            }
        }
    }
}

/* ----------------------------------------------------------- the kernels */

/* y (B, Cout, P) = conv(x) + b.  col: scratch of Cin kh kw x block columns (unused when pointwise),
 * or conv_direct_scratch_floats when direct.  w: packed by conv_direct_pack_weight when direct. */
static void conv_forward(const conv_geometry *g, const float *x, const float *w, const float *bias,
                         float *y, float *col, const float *ahead)
{
    if (g->direct) {
        conv_direct_forward(g, x, w, bias, y, col, ahead);
        return;
    }
    int64_t in_size = g->cin * g->h * g->w, out_size = g->cout * g->p;
    int64_t block = rows_per_block(g);
    for (int64_t b = 0; b < g->batch; b++) {
        const float *xb = x + b * in_size;
        float *yb = y + b * out_size;
        if (bias)
            for (int64_t c = 0; c < g->cout; c++)
                for (int64_t q = 0; q < g->p; q++) yb[c * g->p + q] = bias[c];
        for (int64_t oh0 = 0; oh0 < g->oh; oh0 += block) {
            int64_t oh1 = oh0 + block < g->oh ? oh0 + block : g->oh;
            int64_t cols = (oh1 - oh0) * g->ow;
            const float *source = xb;
            int64_t ld = g->p;
            if (!g->pointwise) {
                im2col(g, xb, oh0, oh1, col);
                source = col;
                ld = cols;
            }
            for (int64_t gi = 0; gi < g->groups; gi++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)g->cout_g, (int)cols, (int)g->k,
                            1.0f, w + gi * g->cout_g * g->k, (int)g->k,
                            source + gi * g->k * ld + (g->pointwise ? oh0 * g->ow : 0), (int)ld,
                            bias ? 1.0f : 0.0f, yb + gi * g->cout_g * g->p + oh0 * g->ow, (int)g->p);
        }
    }
}

/* dw += sum over samples of dy_g col_g^T, db += row sums of dy (either may be NULL). */
static void conv_backward_weight(const conv_geometry *g, const float *dy, const float *x, float *dw,
                                 double *db, float *col)
{
    int64_t in_size = g->cin * g->h * g->w, out_size = g->cout * g->p;
    int64_t block = rows_per_block(g);
    if (g->direct && dw) {
        conv_direct_weight(g, dy, x, dw, col);
        dw = NULL;
    }
    for (int64_t b = 0; b < g->batch; b++) {
        const float *xb = x + b * in_size, *gb = dy + b * out_size;
        if (db)
            for (int64_t c = 0; c < g->cout; c++) db[c] += norm_sum(gb + c * g->p, g->p);
        for (int64_t oh0 = 0; oh0 < g->oh && dw; oh0 += block) {
            int64_t oh1 = oh0 + block < g->oh ? oh0 + block : g->oh;
            int64_t cols = (oh1 - oh0) * g->ow, first = oh0 * g->ow;
            const float *source = xb + first;
            int64_t ld = g->p;
            if (!g->pointwise) {
                im2col(g, xb, oh0, oh1, col);
                source = col;
                ld = cols;
            }
            for (int64_t gi = 0; gi < g->groups; gi++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)g->cout_g, (int)g->k, (int)cols,
                            1.0f, gb + gi * g->cout_g * g->p + first, (int)g->p, source + gi * g->k * ld,
                            (int)ld, 1.0f, dw + gi * g->cout_g * g->k, (int)g->k);
        }
    }
}

/* dx = col2im(W_g^T dy_g), for any stride: dcol block by block, folded into dx. */
static void conv_backward_input_col2im(const conv_geometry *g, const float *dy, const float *w, float *dx,
                                       float *col)
{
    int64_t in_size = g->cin * g->h * g->w, out_size = g->cout * g->p;
    int64_t block = rows_per_block(g);
    memset(dx, 0, sizeof(float) * (size_t)(g->batch * in_size));
    for (int64_t b = 0; b < g->batch; b++) {
        const float *gb = dy + b * out_size;
        for (int64_t oh0 = 0; oh0 < g->oh; oh0 += block) {
            int64_t oh1 = oh0 + block < g->oh ? oh0 + block : g->oh;
            int64_t cols = (oh1 - oh0) * g->ow, first = oh0 * g->ow;
            for (int64_t gi = 0; gi < g->groups; gi++)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)g->k, (int)cols, (int)g->cout_g,
                            1.0f, w + gi * g->cout_g * g->k, (int)g->k, gb + gi * g->cout_g * g->p + first,
                            (int)g->p, 0.0f, col + gi * g->k * cols, (int)cols);
            col2im(g, col, oh0, oh1, dx + b * in_size);
        }
    }
}

/* With stride 1, dx is itself a convolution: of dy, padded by d (k - 1) - p, with the
 * kernel flipped and its two channel axes swapped (per group).  That gathers with im2col
 * and lets sgemm write dx, instead of scattering columns with col2im, which costs about
 * twice as much.  Needs p <= d (k - 1), so that the new padding is not negative. */
static bool input_grad_is_convolution(const conv_geometry *g)
{
    return g->sh == 1 && g->sw == 1 && g->ph <= g->dh * (g->kh - 1) && g->pw <= g->dw * (g->kw - 1);
}

static conv_geometry transposed_geometry(const conv_geometry *g)
{
    conv_geometry t = *g;
    t.cin = g->cout, t.h = g->oh, t.w = g->ow;
    t.cout = g->cin, t.cin_g = g->cout_g, t.cout_g = g->cin_g;
    t.ph = g->dh * (g->kh - 1) - g->ph;
    t.pw = g->dw * (g->kw - 1) - g->pw;
    t.oh = g->h, t.ow = g->w;
    t.k = t.cin_g * t.kh * t.kw;
    t.p = t.oh * t.ow;
    t.pointwise = t.kh == 1 && t.kw == 1 && t.ph == 0 && t.pw == 0;
    t.direct = g->direct && conv_direct_suits(&t);
    return t;
}

/* wt (Cin, Cout/G, kh, kw): wt[g Cin/G + ci, co, i, j] = w[g Cout/G + co, ci, kh-1-i, kw-1-j]. */
static void transposed_weight(const conv_geometry *g, const float *restrict w, float *restrict wt)
{
    int64_t area = g->kh * g->kw;
    for (int64_t gi = 0; gi < g->groups; gi++)
        for (int64_t co = 0; co < g->cout_g; co++)
            for (int64_t ci = 0; ci < g->cin_g; ci++) {
                const float *src = w + ((gi * g->cout_g + co) * g->cin_g + ci) * area;
                float *dst = wt + ((gi * g->cin_g + ci) * g->cout_g + co) * area;
                for (int64_t a = 0; a < area; a++) dst[a] = src[area - 1 - a];
            }
}

/* ------------------------------------------------------------ threading */

/* A pass over the batch runs as parts on disjoint samples, one per worker
 * thread, each with its own columns, while BLAS runs single-threaded inside
 * each part.  That parallelizes im2col and col2im too, which OpenBLAS's own
 * threads, splitting each sample's small product, leave on one core.  Each
 * worker must get 2^23 multiply-adds or more, some 8 times what starting a
 * thread costs, so small layers stay on the calling thread. */
#define CONV_MIN_WORK_PER_WORKER 8388608.0

typedef enum { PASS_FORWARD, PASS_WEIGHT, PASS_INPUT_COL2IM, PASS_INPUT_DIRECT } conv_pass;

/* Passes whose samples are independent (forward, dx) hand out chunks of samples from a shared
 * counter instead of fixed halves: a part whose core is slower (another process there, its
 * data in the other core's cache) takes fewer, and no part waits long for the other.  Which
 * part computes a sample never changes its values. */
typedef struct conv_queue {
    atomic_llong next;      /* first sample not handed out */
    int64_t batch, chunk;
    int64_t in_size, out_size;   /* floats per sample of the part's x and out */
} conv_queue;

typedef struct conv_part {
    conv_pass pass;
    conv_queue *queue;    /* or NULL: the part's own samples, as in g */
    conv_geometry g;      /* batch: this part's samples */
    const float *x;       /* this part's first input sample: x, or dy for PASS_INPUT_* */
    const float *dy;      /* PASS_WEIGHT: this part's first output gradient */
    const float *w, *bias;
    float *out;           /* this part's first y or dx sample, or its own dW (PASS_WEIGHT) */
    double *db;           /* PASS_WEIGHT: its own bias sums, or NULL */
    float *col;           /* its own columns */
    const float *ahead;   /* PASS_FORWARD: the sample of x after this part's, to prefetch, or NULL */
} conv_part;

static void conv_part_run_samples(conv_part *p)
{
    switch (p->pass) {
    case PASS_FORWARD: conv_forward(&p->g, p->x, p->w, p->bias, p->out, p->col, p->ahead); break;
    case PASS_WEIGHT: conv_backward_weight(&p->g, p->dy, p->x, p->out, p->db, p->col); break;
    case PASS_INPUT_COL2IM: conv_backward_input_col2im(&p->g, p->x, p->w, p->out, p->col); break;
    case PASS_INPUT_DIRECT: conv_direct_input(&p->g, p->x, p->w, p->out, p->col); break;
    }
}

static void conv_part_run(conv_part *p)
{
    conv_queue *q = p->queue;
    if (!q) {
        conv_part_run_samples(p);
        return;
    }
    /* The next chunk is claimed before this one runs, so that its first sample can be fetched
     * into cache meanwhile. */
    int64_t b0 = atomic_fetch_add(&q->next, q->chunk);
    while (b0 < q->batch) {
        int64_t next = atomic_fetch_add(&q->next, q->chunk);
        conv_part piece = *p;
        piece.g.batch = q->batch - b0 < q->chunk ? q->batch - b0 : q->chunk;
        piece.x = p->x + b0 * q->in_size;
        piece.out = p->out + b0 * q->out_size;
        piece.ahead = next < q->batch ? p->x + next * q->in_size : NULL;
        conv_part_run_samples(&piece);
        b0 = next;
    }
}

/* A queue over g's batch for `count` parts: chunks of a quarter of a part's share or more. */
static void conv_queue_init(conv_queue *q, const conv_geometry *g, int count, int64_t in_size, int64_t out_size)
{
    atomic_init(&q->next, 0);
    q->batch = g->batch;
    q->chunk = g->batch / (4 * (int64_t)count);
    if (q->chunk < 1) q->chunk = 1;
    q->in_size = in_size;
    q->out_size = out_size;
}

/* Workers for passes over g's batch: the thread count, bounded by the samples and the work. */
static int conv_workers(const conv_geometry *g)
{
    /* Multiply-adds of one product, in double: the int64 product of four sizes may overflow. */
    double work = (double)g->batch * (double)g->cout * (double)g->p * (double)g->k;
    return gl_parallel_parts(work, CONV_MIN_WORK_PER_WORKER, g->batch);
}

/* Part i of `count` gets samples [batch i / count, batch (i + 1) / count); returns its first. */
static int64_t conv_part_init(conv_part *part, conv_pass pass, const conv_geometry *g, int i, int count,
                              float *col)
{
    int64_t b0 = g->batch * i / count, b1 = g->batch * (i + 1) / count;
    *part = (conv_part){.pass = pass, .g = *g, .col = col};
    part->g.batch = b1 - b0;
    return b0;
}

/* Worker i's columns in one allocation for all (none when pointwise). */
static float *part_col(float *col, int i, size_t floats) { return col ? col + (size_t)i * floats : NULL; }

static void conv_part_of(void *parts, int i) { conv_part_run((conv_part *)parts + i); }

/* Runs the parts together on the engine's threads (parallel.c), OpenBLAS held to one thread
 * when they call it (all but the direct kernels do). */
static void conv_run(conv_part *parts, int count)
{
    bool blas = !parts[0].g.direct || parts[0].pass == PASS_INPUT_COL2IM;
    (blas ? gl_parallel_run_blas : gl_parallel_run)(count, conv_part_of, parts);
}

/* y = conv(x) + b over the batch, in parts (weights repacked first for the direct kernels). */
static gl_status conv_forward_parallel(const conv_geometry *g, const float *x, const float *w, const float *bias,
                                       float *y, float *col, size_t col_floats, int count, gl_error *err)
{
    float *packed = NULL;
    if (g->direct) {
        packed = malloc(sizeof(float) * (size_t)conv_direct_packed_floats(g));
        if (!packed) return gl_error_set(err, GL_ENOMEM, 0, "conv2d: out of memory for packed weights");
        conv_direct_pack_weight(g, w, packed);
        w = packed;
    }
    conv_part parts[GL_PARALLEL_MAX];
    conv_queue queue;
    conv_queue_init(&queue, g, count, g->cin * g->h * g->w, g->cout * g->p);
    for (int i = 0; i < count; i++) {
        conv_part_init(&parts[i], PASS_FORWARD, g, i, count, part_col(col, i, col_floats));
        parts[i].queue = count > 1 ? &queue : NULL;
        parts[i].x = x;
        parts[i].w = w;
        parts[i].bias = bias;
        parts[i].out = y;
    }
    conv_run(parts, count);
    free(packed);
    return GL_OK;
}

/* ------------------------------------------------------------- autograd */

static gl_conv2d_options options_from_node(const gl_node *node)
{
    gl_conv2d_options o;
    for (int d = 0; d < 2; d++) {
        o.stride[d] = node->params[d];
        o.padding[d] = node->params[2 + d];
        o.dilation[d] = node->params[4 + d];
    }
    o.groups = node->params[6];
    o.algorithm = (gl_conv2d_algorithm)node->params[7];
    return o;
}

/* Floats of im2col columns one block of g needs (0 when pointwise). */
static size_t columns_floats(const conv_geometry *g)
{
    if (g->pointwise || g->batch == 0) return 0;
    return (size_t)(g->k * g->groups) * (size_t)(rows_per_block(g) * g->ow);
}

/* Floats of scratch one part of a forward or weight pass over g needs. */
static size_t scratch_floats(const conv_geometry *g, bool weight)
{
    if (g->batch == 0) return 0;
    return g->direct ? (size_t)conv_direct_scratch_floats(g, weight) : columns_floats(g);
}

static gl_status scratch_new(size_t floats, float **col, gl_error *err)
{
    *col = NULL;
    if (floats == 0) return GL_OK;
    *col = malloc(sizeof(float) * floats);
    if (!*col)
        return gl_error_set(err, GL_ENOMEM, 0, "conv2d: out of memory for %zu bytes of im2col columns",
                            sizeof(float) * floats);
    return GL_OK;
}

/* Saved: x and weight, contiguous.  params: stride, padding, dilation (pairs), groups.
 * Inputs: x, weight, bias (when given). */
static gl_status conv2d_backward(gl_node *node, gl_tensor *grad, gl_tensor **grads, gl_error *err)
{
    const gl_tensor *x = node->saved[0], *w = node->saved[1];
    gl_conv2d_options o = options_from_node(node);
    conv_geometry g;
    gl_status status = conv_check(x, w, NULL, &o, &g, err);
    if (status) return status;
    bool want_x = gl_node_input_needs_grad(node, 0), want_w = gl_node_input_needs_grad(node, 1),
         want_b = node->ninputs > 2 && gl_node_input_needs_grad(node, 2);
    bool as_conv = input_grad_is_convolution(&g);
    conv_geometry t = transposed_geometry(&g);
    int count = conv_workers(&g);
    size_t floats = want_w ? scratch_floats(&g, true) : 0;
    if (want_x) {
        size_t need = as_conv     ? scratch_floats(&t, false)
                      : g.direct  ? (size_t)conv_direct_input_scratch_floats(&g)
                                  : columns_floats(&g);
        if (need > floats) floats = need;
    }
    int64_t wn = gl_tensor_numel(w);
    gl_tensor *dense_g = NULL;
    float *col = NULL, *wt = NULL, *dw_parts = NULL;
    double *db = NULL;
    status = gl_tensor_contiguous_untracked(grad, &dense_g, err);
    if (!status) status = scratch_new(floats * (size_t)count, &col, err);
    /* Bias sums of every part, then dW of parts 1.. (part 0 writes the result). */
    if (!status && want_b && !(db = calloc((size_t)(g.cout * count), sizeof *db)))
        status = gl_error_set(err, GL_ENOMEM, 0, "conv2d: out of memory in backward");
    if (!status && want_w && count > 1 && !(dw_parts = calloc((size_t)(wn * (count - 1)), sizeof *dw_parts)))
        status = gl_error_set(err, GL_ENOMEM, 0, "conv2d: out of memory in backward");
    size_t wt_floats = !want_x ? 0 : as_conv ? (size_t)wn : g.direct ? (size_t)conv_direct_packed_floats(&g) : 0;
    if (!status && wt_floats && !(wt = malloc(sizeof(float) * wt_floats)))
        status = gl_error_set(err, GL_ENOMEM, 0, "conv2d: out of memory in backward");
    if (!status && want_x) status = gl_tensor_empty(node->inputs[0].ndim, node->inputs[0].shape, &grads[0], err);
    if (!status && want_w) status = gl_tensor_zeros(4, w->shape, &grads[1], err);
    if (!status && want_b) status = gl_tensor_empty(1, &g.cout, &grads[2], err);
    if (!status) {
        const float *dy = gl_tensor_data(dense_g), *xv = gl_tensor_data(x), *wv = gl_tensor_data(w);
        int64_t in_size = g.cin * g.h * g.w, out_size = g.cout * g.p;
        conv_part parts[GL_PARALLEL_MAX];
        if (want_w || want_b) {
            float *dw = want_w ? gl_tensor_data(grads[1]) : NULL;
            for (int i = 0; i < count; i++) {
                int64_t b0 = conv_part_init(&parts[i], PASS_WEIGHT, &g, i, count, part_col(col, i, floats));
                parts[i].x = xv + b0 * in_size;
                parts[i].dy = dy + b0 * out_size;
                parts[i].out = !dw ? NULL : i == 0 ? dw : dw_parts + (i - 1) * wn;
                parts[i].db = db ? db + i * g.cout : NULL;
            }
            conv_run(parts, count);
            /* In part order, so a thread count always gives the same bits. */
            for (int i = 1; i < count && dw; i++)
                for (int64_t k = 0; k < wn; k++) dw[k] += dw_parts[(i - 1) * wn + k];
        }
        if (want_b) {
            float *out = gl_tensor_data(grads[2]);
            for (int64_t c = 0; c < g.cout; c++) {
                double sum = 0.0;
                for (int i = 0; i < count; i++) sum += db[i * g.cout + c];
                out[c] = (float)sum;
            }
        }
        if (want_x && as_conv) {
            transposed_weight(&g, wv, wt);
            status = conv_forward_parallel(&t, dy, wt, NULL, gl_tensor_data(grads[0]), col, floats, count, err);
        } else if (want_x) {
            float *dx = gl_tensor_data(grads[0]);
            if (g.direct) conv_direct_pack_weight_input(&g, wv, wt);
            conv_queue queue;
            conv_queue_init(&queue, &g, count, out_size, in_size);
            for (int i = 0; i < count; i++) {
                conv_part_init(&parts[i], g.direct ? PASS_INPUT_DIRECT : PASS_INPUT_COL2IM, &g, i, count,
                               part_col(col, i, floats));
                parts[i].queue = count > 1 ? &queue : NULL;
                parts[i].x = dy;
                parts[i].w = g.direct ? wt : wv;
                parts[i].out = dx;
            }
            conv_run(parts, count);
        }
    }
    free(col);
    free(wt);
    free(dw_parts);
    free(db);
    gl_tensor_release(dense_g);
    return status;
}

static void output_shape(const conv_geometry *g, int64_t channels, int64_t oh, int64_t ow, int64_t *shape)
{
    int d = 0;
    if (g->batched) shape[d++] = g->batch;
    shape[d++] = channels;
    shape[d++] = oh;
    shape[d] = ow;
}

gl_status gl_conv2d(const gl_tensor *x, const gl_tensor *weight, const gl_tensor *bias,
                    const gl_conv2d_options *options, gl_tensor **out, gl_error *err)
{
    *out = NULL;
    gl_conv2d_options o = options ? *options : gl_conv2d_defaults();
    conv_geometry g;
    gl_status status = conv_check(x, weight, bias, &o, &g, err);
    if (status) return status;
    int64_t shape[4];
    output_shape(&g, g.cout, g.oh, g.ow, shape);

    gl_tensor *dense_x = NULL, *dense_w = NULL, *dense_b = NULL;
    float *col = NULL;
    status = gl_tensor_contiguous_untracked(x, &dense_x, err);
    if (!status) status = gl_tensor_contiguous_untracked(weight, &dense_w, err);
    if (!status && bias) status = gl_tensor_contiguous_untracked(bias, &dense_b, err);
    int count = conv_workers(&g);
    size_t floats = scratch_floats(&g, false);
    if (!status) status = scratch_new(floats * (size_t)count, &col, err);
    if (!status) status = gl_tensor_empty(x->ndim, shape, out, err);
    if (!status)
        status = conv_forward_parallel(&g, gl_tensor_data(dense_x), gl_tensor_data(dense_w),
                                       dense_b ? gl_tensor_data(dense_b) : NULL, gl_tensor_data(*out), col,
                                       floats, count, err);
    free(col);
    if (!status) {
        const gl_tensor *inputs[3] = {x, weight, bias};
        gl_node *node = NULL;
        status = gl_op_finish("conv2d", *out, bias ? 3 : 2, inputs, conv2d_backward, &node, err);
        if (!status && node) {
            for (int d = 0; d < 2; d++) {
                node->params[d] = o.stride[d];
                node->params[2 + d] = o.padding[d];
                node->params[4 + d] = o.dilation[d];
            }
            node->params[6] = o.groups;
            node->params[7] = o.algorithm;
            status = gl_node_save(node, dense_x, err);
            if (!status) status = gl_node_save(node, dense_w, err);
        }
    }
    gl_tensor_release(dense_x);
    gl_tensor_release(dense_w);
    gl_tensor_release(dense_b);
    if (status) {
        gl_tensor_release(*out);
        *out = NULL;
    }
    return status;
}

/* ------------------------------------------------------------ reference */

/* y[b, co, oh, ow] = bias[co] + sum over ci, i, j of
 * x[b, group(co) Cin/G + ci, oh sh - ph + i dh, ow sw - pw + j dw] w[co, ci, i, j], in double. */
gl_status gl_conv2d_reference(const gl_tensor *x, const gl_tensor *weight, const gl_tensor *bias,
                              const gl_conv2d_options *options, gl_tensor **out, gl_error *err)
{
    *out = NULL;
    gl_conv2d_options o = options ? *options : gl_conv2d_defaults();
    conv_geometry g;
    gl_status status = conv_check(x, weight, bias, &o, &g, err);
    if (status) return status;
    int64_t shape[4];
    output_shape(&g, g.cout, g.oh, g.ow, shape);
    gl_tensor *dx = NULL, *dw = NULL, *dbias = NULL;
    status = gl_tensor_clone_untracked(x, &dx, err);
    if (!status) status = gl_tensor_clone_untracked(weight, &dw, err);
    if (!status && bias) status = gl_tensor_clone_untracked(bias, &dbias, err);
    if (!status) status = gl_tensor_empty(x->ndim, shape, out, err);
    if (!status) {
        const float *xv = gl_tensor_data(dx), *wv = gl_tensor_data(dw);
        const float *bv = dbias ? gl_tensor_data(dbias) : NULL;
        float *y = gl_tensor_data(*out);
        for (int64_t b = 0; b < g.batch; b++)
            for (int64_t co = 0; co < g.cout; co++) {
                int64_t c0 = co / g.cout_g * g.cin_g;
                for (int64_t oh = 0; oh < g.oh; oh++)
                    for (int64_t ow = 0; ow < g.ow; ow++) {
                        double acc = bv ? bv[co] : 0.0;
                        for (int64_t ci = 0; ci < g.cin_g; ci++)
                            for (int64_t i = 0; i < g.kh; i++)
                                for (int64_t j = 0; j < g.kw; j++) {
                                    int64_t ih = oh * g.sh - g.ph + i * g.dh, iw = ow * g.sw - g.pw + j * g.dw;
                                    if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
                                    acc += (double)xv[((b * g.cin + c0 + ci) * g.h + ih) * g.w + iw]
                                           * wv[((co * g.cin_g + ci) * g.kh + i) * g.kw + j];
                                }
                        y[((b * g.cout + co) * g.oh + oh) * g.ow + ow] = (float)acc;
                    }
            }
    }
    gl_tensor_release(dx);
    gl_tensor_release(dw);
    gl_tensor_release(dbias);
    if (status) {
        gl_tensor_release(*out);
        *out = NULL;
    }
    return status;
}
