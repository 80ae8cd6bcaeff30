/*
 * gradlab.h — the public C interface of the gradlab engine.
 *
 * A quick tour:
 *   - A gl_tensor is an N-d float32 view (shape, strides in elements, offset)
 *     onto a reference-counted gl_storage.  Views share storage; every function
 *     that returns a tensor through an `out` pointer hands the caller a NEW
 *     reference, which the caller drops with gl_tensor_release().  Arguments
 *     are BORROWED unless the comment says otherwise.
 *   - Every fallible function returns a gl_status and, on failure, fills the
 *     caller-owned gl_error with the op name, the argument position and a
 *     message naming both shapes.  The engine never prints, exits or aborts.
 *   - Dimensions and indices are 0-based here; the Lua bindings convert from
 *     the 1-based indices users write.
 *   - Elementwise ops broadcast NumPy-style.  Matrix products go to cblas_sgemm.
 *   - Mutable global state is limited to gl_context (RNG, thread count,
 *     grad mode), reached only through its small API in context.c.
 *
 *   gl_error err;
 *   gl_tensor *a = NULL, *b = NULL, *c = NULL;
 *   int64_t shape[2] = {2, 3};
 *   if (gl_tensor_randn(2, shape, &a, &err) || gl_tensor_ones(2, shape, &b, &err)
 *       || gl_tensor_binary(GL_OP_ADD, a, b, &c, &err)) puts(err.message);
 *   gl_tensor_release(a); gl_tensor_release(b); gl_tensor_release(c);
 */
#ifndef GRADLAB_H
#define GRADLAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GL_MAX_DIMS 8

/* ---------------------------------------------------------------- errors */

typedef enum gl_status {
    GL_OK = 0,
    GL_EARG,       /* a bad argument value or type */
    GL_ESHAPE,     /* shapes that do not fit together */
    GL_EINDEX,     /* an index or dimension out of range */
    GL_ENOMEM,     /* an allocation failed or would overflow */
    GL_EIO,        /* a file could not be read or written */
    GL_EFORMAT,    /* a file is not in the expected format */
    GL_ESTATE,     /* an operation not allowed in the current state */
    GL_STATUS_COUNT
} gl_status;

typedef struct gl_error {
    gl_status code;
    int argument;        /* 1-based position of the faulty argument, 0 if none */
    char message[512];
} gl_error;

/* Fills `err` (which may be NULL) and returns `code`.  printf-style. */
gl_status gl_error_set(gl_error *err, gl_status code, int argument, const char *format, ...)
    __attribute__((format(printf, 4, 5)));
const char *gl_status_name(gl_status code);

/* Writes "{2, 3}" for a shape into buffer (always NUL-terminated). */
const char *gl_shape_format(int ndim, const int64_t *shape, char *buffer, size_t size);

/* --------------------------------------------------------------- storage */

typedef struct gl_storage {
    float *data;
    int64_t numel;
    int refcount;
    uint64_t version;   /* bumped by every in-place write; autograd checks it */
    size_t bytes;       /* allocated size, for memory accounting */
} gl_storage;

gl_status gl_storage_new(int64_t numel, gl_storage **out, gl_error *err);
void gl_storage_retain(gl_storage *storage);
void gl_storage_release(gl_storage *storage);   /* NULL is a no-op */

/* Largest element count one storage may hold (bounded by physical memory). */
int64_t gl_storage_max_numel(void);

/* ---------------------------------------------------------------- tensor */

typedef struct gl_tensor {
    int refcount;
    int ndim;
    int64_t shape[GL_MAX_DIMS];
    int64_t stride[GL_MAX_DIMS];   /* in elements; may be 0 (expanded) */
    int64_t offset;                /* in elements, into storage->data */
    gl_storage *storage;
    /* Autograd (autograd.c). */
    struct gl_tensor *grad;        /* accumulated gradient, or NULL */
    struct gl_node *grad_fn;       /* the op that made this tensor, or NULL for leaves */
    bool requires_grad;            /* a leaf whose gradient is wanted */
    bool retains_grad;             /* a non-leaf that keeps .grad after backward */
    char *name;                    /* optional, owned: parameter name for messages */
} gl_tensor;

void gl_tensor_retain(gl_tensor *t);
void gl_tensor_release(gl_tensor *t);           /* NULL is a no-op */

static inline float *gl_tensor_data(const gl_tensor *t) { return t->storage->data + t->offset; }
int64_t gl_tensor_numel(const gl_tensor *t);
bool gl_tensor_is_contiguous(const gl_tensor *t);
bool gl_shape_equal(int ndim_a, const int64_t *a, int ndim_b, const int64_t *b);

/* Checks a shape (each size >= 0, product fits memory) and returns numel. */
gl_status gl_shape_check(const char *op, int ndim, const int64_t *shape, int64_t *numel,
                         gl_error *err);

/* Creation.  All return a new, contiguous tensor. */
gl_status gl_tensor_empty(int ndim, const int64_t *shape, gl_tensor **out, gl_error *err);
gl_status gl_tensor_zeros(int ndim, const int64_t *shape, gl_tensor **out, gl_error *err);
gl_status gl_tensor_ones(int ndim, const int64_t *shape, gl_tensor **out, gl_error *err);
gl_status gl_tensor_full(int ndim, const int64_t *shape, float value, gl_tensor **out,
                         gl_error *err);
gl_status gl_tensor_scalar(float value, gl_tensor **out, gl_error *err);  /* 0-d */
gl_status gl_tensor_eye(int64_t n, gl_tensor **out, gl_error *err);
/* [start, end) by step, like torch.arange; step may be negative, never 0. */
gl_status gl_tensor_arange(double start, double end, double step, gl_tensor **out,
                           gl_error *err);
/* Wraps an existing storage (retained) as a view. */
gl_status gl_tensor_view_of(gl_storage *storage, int ndim, const int64_t *shape,
                            const int64_t *stride, int64_t offset, gl_tensor **out,
                            gl_error *err);

/* Random tensors from the context RNG. */
gl_status gl_tensor_rand(int ndim, const int64_t *shape, gl_tensor **out, gl_error *err);
gl_status gl_tensor_randn(int ndim, const int64_t *shape, gl_tensor **out, gl_error *err);
gl_status gl_tensor_randint(int64_t low, int64_t high, int ndim, const int64_t *shape,
                            gl_tensor **out, gl_error *err);   /* low..high inclusive */

/* Element access by 0-based multi-index (ndim indices). */
gl_status gl_tensor_get(const gl_tensor *t, int nindex, const int64_t *index, float *value,
                        gl_error *err);
gl_status gl_tensor_set(gl_tensor *t, int nindex, const int64_t *index, float value,
                        gl_error *err);
/* Copies all elements in row-major order into `buffer` (numel floats). */
void gl_tensor_gather_to(const gl_tensor *t, float *buffer);

/* ------------------------------------------------------------------ views */
/* Views share storage with `t` and return a new reference. */

/* Reshape without copying; fails (GL_ESHAPE) if strides make that impossible.
 * One size may be -1 and is inferred. */
gl_status gl_tensor_view(gl_tensor *t, int ndim, const int64_t *shape, gl_tensor **out,
                         gl_error *err);
/* Like view, but copies when a view is impossible. */
gl_status gl_tensor_reshape(gl_tensor *t, int ndim, const int64_t *shape, gl_tensor **out,
                            gl_error *err);
gl_status gl_tensor_transpose(gl_tensor *t, int dim0, int dim1, gl_tensor **out, gl_error *err);
gl_status gl_tensor_permute(gl_tensor *t, int ndim, const int *order, gl_tensor **out,
                            gl_error *err);
gl_status gl_tensor_narrow(gl_tensor *t, int dim, int64_t start, int64_t length,
                           gl_tensor **out, gl_error *err);
gl_status gl_tensor_select(gl_tensor *t, int dim, int64_t index, gl_tensor **out,
                           gl_error *err);
gl_status gl_tensor_unsqueeze(gl_tensor *t, int dim, gl_tensor **out, gl_error *err);
/* Removes dimension `dim` if its size is 1, or every size-1 dimension when
 * dim is GL_SQUEEZE_ALL. */
#define GL_SQUEEZE_ALL (-1000)
gl_status gl_tensor_squeeze(gl_tensor *t, int dim, gl_tensor **out, gl_error *err);
/* Broadcast view to `shape` (stride 0 on expanded dims). */
gl_status gl_tensor_expand(gl_tensor *t, int ndim, const int64_t *shape, gl_tensor **out,
                           gl_error *err);
/* Returns `t` itself (retained) when already contiguous, else a copy. */
gl_status gl_tensor_contiguous(gl_tensor *t, gl_tensor **out, gl_error *err);
gl_status gl_tensor_clone(const gl_tensor *t, gl_tensor **out, gl_error *err);

/* -------------------------------------------------------------- elementwise */

typedef enum gl_binary_op {
    GL_OP_ADD, GL_OP_SUB, GL_OP_MUL, GL_OP_DIV, GL_OP_POW,
    GL_OP_MAXIMUM, GL_OP_MINIMUM,
    GL_OP_EQ, GL_OP_NE, GL_OP_LT, GL_OP_LE, GL_OP_GT, GL_OP_GE,
    GL_BINARY_OP_COUNT
} gl_binary_op;

typedef enum gl_unary_op {
    GL_OP_NEG, GL_OP_EXP, GL_OP_LOG, GL_OP_SQRT, GL_OP_ABS,
    GL_OP_SIGN, GL_OP_HALF, GL_OP_BFLOAT16,
    GL_UNARY_OP_COUNT
} gl_unary_op;

const char *gl_binary_op_name(gl_binary_op op);
const char *gl_unary_op_name(gl_unary_op op);

/* Broadcasting shape of a and b (NumPy rules). */
gl_status gl_broadcast_shape(const char *op, int ndim_a, const int64_t *a, int ndim_b,
                             const int64_t *b, int *ndim_out, int64_t *out, gl_error *err);

gl_status gl_tensor_binary(gl_binary_op op, const gl_tensor *a, const gl_tensor *b,
                           gl_tensor **out, gl_error *err);
/* a op s, or s op a when scalar_first. */
gl_status gl_tensor_binary_scalar(gl_binary_op op, const gl_tensor *a, float s,
                                  bool scalar_first, gl_tensor **out, gl_error *err);
gl_status gl_tensor_unary(gl_unary_op op, const gl_tensor *a, gl_tensor **out, gl_error *err);
gl_status gl_tensor_clamp(const gl_tensor *a, float low, float high, gl_tensor **out,
                          gl_error *err);
/* mask != 0 ? a : b, all three broadcast together. */
gl_status gl_tensor_where(const gl_tensor *mask, const gl_tensor *a, const gl_tensor *b,
                          gl_tensor **out, gl_error *err);

/* IEEE half / bfloat16 round trip of one value (round to nearest even). */
float gl_round_half(float x);
float gl_round_bfloat16(float x);

/* ----------------------------------------------------------------- in place */
/* No autograd tracking.  `src`/`other` broadcast to dst's shape. */
gl_status gl_tensor_fill(gl_tensor *dst, float value, gl_error *err);
gl_status gl_tensor_copy_from(gl_tensor *dst, const gl_tensor *src, gl_error *err);
/* dst += alpha * other */
gl_status gl_tensor_add_inplace(gl_tensor *dst, const gl_tensor *other, float alpha,
                                gl_error *err);
gl_status gl_tensor_mul_scalar_inplace(gl_tensor *dst, float s, gl_error *err);

/* --------------------------------------------------------------- reductions */

typedef enum gl_reduce_op { GL_REDUCE_SUM, GL_REDUCE_MEAN, GL_REDUCE_MAX, GL_REDUCE_MIN } gl_reduce_op;

/* Over all elements: a 0-d tensor.  Sums accumulate in double. */
gl_status gl_tensor_reduce_all(gl_reduce_op op, const gl_tensor *t, gl_tensor **out,
                               gl_error *err);
/* Over one dimension.  For MAX/MIN, `indices` (if non-NULL) receives the
 * 0-based position of the first extreme element. */
gl_status gl_tensor_reduce_dim(gl_reduce_op op, const gl_tensor *t, int dim, bool keepdim,
                               gl_tensor **out, gl_tensor **indices, gl_error *err);
/* L2 norm of all elements, a 0-d tensor. */
gl_status gl_tensor_norm(const gl_tensor *t, gl_tensor **out, gl_error *err);

/* ------------------------------------------------------------------ matmul */

/* (n,k)x(k,m) -> (n,m); (b,n,k)x(b,k,m) -> (b,n,m); a 2-D operand broadcasts
 * over the batch of a 3-D one; 1-D operands act as a row / column vector and
 * that dimension is dropped from the result, as in NumPy. */
gl_status gl_tensor_matmul(const gl_tensor *a, const gl_tensor *b, gl_tensor **out,
                           gl_error *err);

/* ------------------------------------------------------------- join / split */

gl_status gl_tensor_cat(int count, gl_tensor *const *tensors, int dim, gl_tensor **out,
                        gl_error *err);
gl_status gl_tensor_stack(int count, gl_tensor *const *tensors, int dim, gl_tensor **out,
                          gl_error *err);

/* Rows (slices along `dim`) picked by `indices`, a 1-d tensor of whole
 * numbers counted from index_base; differentiable (index.c). */
gl_status gl_tensor_index_select(const gl_tensor *t, int dim, const gl_tensor *indices,
                                 int index_base, gl_tensor **out, gl_error *err);
/* A random permutation of index_base .. index_base + n - 1 (Fisher-Yates). */
gl_status gl_tensor_randperm(int64_t n, int index_base, gl_tensor **out, gl_error *err);

/* ------------------------------------------------------------------ format */

/* A new malloc'ed string like PyTorch prints: values (elided past
 * `threshold` elements), then the shape.  NULL on allocation failure. */
char *gl_tensor_format(const gl_tensor *t, int64_t threshold);

/* ------------------------------------------------------------ context: RNG */

/* xoshiro256** seeded through splitmix64; normals by the Box–Muller transform. */
void gl_manual_seed(uint64_t seed);
uint64_t gl_random_u64(void);
double gl_random_uniform(void);            /* [0, 1) with 53 random bits */
double gl_random_normal(void);             /* N(0, 1) */
/* Draws an integer in [0, n) without modulo bias. */
uint64_t gl_random_below(uint64_t n);

int gl_get_num_threads(void);
void gl_set_num_threads(int threads);       /* also sets OpenBLAS's thread count */

/* OpenBLAS's kernels: the core type in use and who chose it.  When OpenBLAS
 * does not know the CPU and falls back to generic kernels, gradlab asks it for
 * the ones the CPU's features allow (engine/blas.c); OPENBLAS_CORETYPE or
 * GRADLAB_KEEP_BLAS_KERNELS in the environment leave the choice alone. */
typedef enum {
    GL_BLAS_KERNELS_OPENBLAS,      /* OpenBLAS's own detection */
    GL_BLAS_KERNELS_ENVIRONMENT,   /* OPENBLAS_CORETYPE was set */
    GL_BLAS_KERNELS_GRADLAB,       /* gradlab replaced a generic fallback */
} gl_blas_kernels_origin;
const char *gl_blas_core_name(void);
gl_blas_kernels_origin gl_blas_kernels_chosen_by(void);
bool gl_grad_enabled(void);
void gl_set_grad_enabled(bool enabled);

/* ------------------------------------------------------------- activations */
/* Fused forward/backward kernels (activations.c).  All differentiate. */

typedef enum gl_activation {
    GL_ACT_SIGMOID, GL_ACT_TANH, GL_ACT_RELU,
    GL_ACT_LEAKY_RELU,   /* parameter: negative slope */
    GL_ACT_ELU,          /* parameter: alpha */
    GL_ACT_GELU,         /* exact, with erf (PyTorch's default) */
    GL_ACT_SOFTPLUS,
    GL_ACTIVATION_COUNT
} gl_activation;

const char *gl_activation_name(gl_activation kind);
gl_status gl_tensor_activation(gl_activation kind, const gl_tensor *x, float parameter,
                               gl_tensor **out, gl_error *err);
/* PReLU: weight holds 1 slope or one per channel (dimension 2 of x, as in PyTorch). */
gl_status gl_tensor_prelu(const gl_tensor *x, const gl_tensor *weight, gl_tensor **out,
                          gl_error *err);
/* Softmax and log-softmax along `dim` (0-based, may be negative), max-shifted. */
gl_status gl_tensor_softmax(const gl_tensor *x, int dim, bool log, gl_tensor **out, gl_error *err);

/* ---------------------------------------------------------------- layers */

/* y = x W^T + b for x (..., in), W (out, in), b (out) or NULL: one sgemm with
 * the bias folded in forward, two in backward (linear.c). */
gl_status gl_linear(const gl_tensor *x, const gl_tensor *weight, const gl_tensor *bias,
                    gl_tensor **out, gl_error *err);
/* Inverted dropout: zeroes each element with probability p and scales the rest
 * by 1/(1-p); the identity when !training or p == 0 (dropout.c). */
gl_status gl_dropout(const gl_tensor *x, float p, bool training, gl_tensor **out, gl_error *err);

/* Fills t (at least 2-d; trailing dims flattened) with a (semi-)orthogonal
 * matrix times gain, as torch.nn.init.orthogonal_ does: QR of a normal
 * matrix with the signs of R's diagonal folded into Q (init.c). */
gl_status gl_init_orthogonal(gl_tensor *t, float gain, gl_error *err);

/* ------------------------------------------------------------- normalizers */
/* Fused forward/backward kernels; all differentiate w.r.t. x, weight and bias.
 * weight and bias may be NULL (no affine); eps must be > 0.  Statistics
 * accumulate in double (norm_batch.c, norm_group.c). */

/* Batch norm of x (B, C, ...) per channel (dimension 2, 0-based 1), over the
 * batch and any trailing dims; weight, bias, running_mean, running_var are
 * (C) or NULL.  training: normalizes with the batch mean and biased variance,
 * and when running stats are given updates them IN PLACE (no autograd):
 * running = (1 - momentum) running + momentum batch, with the UNBIASED batch
 * variance, as PyTorch; needs more than one value per channel.  !training:
 * normalizes with the running stats (required), backward is a plain affine
 * map.  momentum in [0, 1].  Argument positions in errors follow this order. */
gl_status gl_batch_norm(const gl_tensor *x, gl_tensor *running_mean, gl_tensor *running_var,
                        const gl_tensor *weight, const gl_tensor *bias, bool training,
                        double momentum, double eps, gl_tensor **out, gl_error *err);
/* Layer norm over the trailing dims of x equal to normalized_shape (ndim sizes);
 * weight and bias have shape normalized_shape. */
gl_status gl_layer_norm(const gl_tensor *x, int normalized_ndim, const int64_t *normalized_shape,
                        const gl_tensor *weight, const gl_tensor *bias, double eps,
                        gl_tensor **out, gl_error *err);
/* Group norm of x (B, C, ...): statistics per sample over each of `groups`
 * blocks of C / groups channels (and the trailing dims); weight, bias (C).
 * groups == C is instance norm, groups == 1 layer norm over (C, ...). */
gl_status gl_group_norm(const gl_tensor *x, int64_t groups, const gl_tensor *weight,
                        const gl_tensor *bias, double eps, gl_tensor **out, gl_error *err);
/* RMS norm, y = x / sqrt(mean(x^2) + eps) * weight over the trailing dims
 * equal to normalized_shape; weight has that shape.  PyTorch's default eps is
 * FLT_EPSILON (torch.finfo(float32).eps). */
gl_status gl_rms_norm(const gl_tensor *x, int normalized_ndim, const int64_t *normalized_shape,
                      const gl_tensor *weight, double eps, gl_tensor **out, gl_error *err);

/* ------------------------------------------------------------ convolution */
/* (conv.c, pool.c) */
/* NCHW throughout: x is (B, C, H, W), or (C, H, W) for one unbatched sample,
 * in which case the output drops the batch dimension too.  Pairs are
 * (height, width).  All ops differentiate w.r.t. every tensor argument. */

/* How gl_conv2d computes (the results agree to rounding): AUTO takes the
 * direct AVX-512 kernels where the CPU has them and the horizontal stride is
 * 1, else im2col + sgemm; IM2COL always takes the latter (for tests and
 * benchmarks). */
typedef enum { GL_CONV2D_AUTO = 0, GL_CONV2D_IM2COL = 1 } gl_conv2d_algorithm;

typedef struct gl_conv2d_options {
    int64_t stride[2];     /* >= 1 */
    int64_t padding[2];    /* >= 0, zeros added on both sides */
    int64_t dilation[2];   /* >= 1 */
    int64_t groups;        /* >= 1, divides both channel counts */
    gl_conv2d_algorithm algorithm;
} gl_conv2d_options;

/* Defaults: stride 1, padding 0, dilation 1, groups 1, AUTO (what NULL options mean). */
gl_conv2d_options gl_conv2d_defaults(void);

/* 2-d cross-correlation, as torch.nn.functional.conv2d: weight (cout,
 * cin / groups, kh, kw) in PyTorch's layout, bias (cout) or NULL, output
 * (B, cout, OH, OW) with OH = (H + 2 ph - dh (kh - 1) - 1) / sh + 1.  Direct
 * kernels where they apply (see gl_conv2d_algorithm), else im2col and one
 * sgemm per sample and group (big images in blocks of output rows); a 1x1
 * kernel with stride 1 and no padding multiplies x directly.  Backward: dW
 * directly or by sgemm on the rebuilt columns, db by row sums, dx as a
 * convolution of the output gradient at stride 1, else by sgemm and col2im.
 * Samples are split over the engine's threads. */
gl_status gl_conv2d(const gl_tensor *x, const gl_tensor *weight, const gl_tensor *bias,
                    const gl_conv2d_options *options, gl_tensor **out, gl_error *err);
/* The same forward as a naive loop summing in double, no autograd: the test
 * oracle for gl_conv2d (checks and messages are shared). */
gl_status gl_conv2d_reference(const gl_tensor *x, const gl_tensor *weight, const gl_tensor *bias,
                              const gl_conv2d_options *options, gl_tensor **out, gl_error *err);

typedef struct gl_pool2d_options {
    int64_t kernel[2];     /* >= 1 */
    int64_t stride[2];     /* >= 1 (PyTorch's default is the kernel size) */
    int64_t padding[2];    /* 0 <= padding <= kernel / 2 */
    int64_t dilation[2];   /* >= 1; max pooling only (must be 1 for average) */
    bool ceil_mode;        /* round the output size up (a last window may start in the padding) */
    bool count_include_pad;   /* average: divide by the window size padding included */
} gl_pool2d_options;

/* Kernel k, stride k, no padding, dilation 1, floor mode, count_include_pad. */
gl_pool2d_options gl_pool2d_defaults(int64_t kh, int64_t kw);

/* Max pooling; padding never wins (it acts as -inf) and NaN propagates.
 * Backward routes each output's gradient to its argmax, saved in forward.
 * `indices` (may be NULL) receives a new tensor shaped like the output with
 * the position of each maximum within its input plane (ih * W + iw), counted
 * from index_base (1 from Lua, 0 from C).  Planes are limited to 2^24
 * positions, where float32 still holds every index exactly. */
gl_status gl_max_pool2d(const gl_tensor *x, const gl_pool2d_options *options, gl_tensor **out,
                        gl_tensor **indices, int index_base, gl_error *err);
/* Average pooling with PyTorch's divisor: the window clipped to the padded
 * input, or to the input itself when !count_include_pad. */
gl_status gl_avg_pool2d(const gl_tensor *x, const gl_pool2d_options *options, gl_tensor **out,
                        gl_error *err);
/* Mean over H and W: (B, C, H, W) -> (B, C), or (B, C, 1, 1) with keepdim;
 * (C, H, W) -> (C) or (C, 1, 1).  Sums in double. */
gl_status gl_global_avg_pool2d(const gl_tensor *x, bool keepdim, gl_tensor **out, gl_error *err);

/* -------------------------------------------------------------- recurrent */
/* (rnn.c) */
/* Elman RNN, LSTM and GRU with PyTorch's layout, gate order and equations:
 *   x (T, B, in) for a sequence or (B, in) for one cell step; state h, c (B, H);
 *   w_ih (G*H, in), w_hh (G*H, H), b_ih, b_hh (G*H) or NULL (no bias), with
 *   G = 1 (RNN), 4 (LSTM, gates i, f, g, o), 3 (GRU, gates r, z, n):
 *   RNN   h' = act(W_ih x + b_ih + W_hh h + b_hh), act = tanh or relu
 *   LSTM  i, f, o = sigmoid(...), g = tanh(W_ig x + b_ig + W_hg h + b_hg)
 *         c' = f * c + i * g,  h' = o * tanh(c')
 *   GRU   r, z = sigmoid(W_i* x + b_i* + W_h* h + b_h*)
 *         n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),  h' = (1 - z) * n + z * h
 * A sequence call is one graph node with a fused forward (one sgemm for the
 * input projection of all steps, one per step for W_hh, one pass for the
 * gates) and a fused backward through time; all inputs differentiate.  h0 and
 * c0 may be NULL (zeros); c0 and c_n are for LSTM only. */
typedef enum gl_rnn_kind { GL_RNN_TANH, GL_RNN_RELU, GL_RNN_LSTM, GL_RNN_GRU, GL_RNN_KIND_COUNT } gl_rnn_kind;

/* 1, 1, 4 or 3: the row blocks of w_ih and w_hh. */
int gl_rnn_gate_count(gl_rnn_kind kind);
/* One layer over a sequence: y (T, B, H) holds h_1 .. h_T; h_n (B, H) is h_T
 * and c_n (B, H) the last LSTM cell state (c_n may be NULL to skip it; it is
 * set to NULL for the other kinds).  All three are new references (views of
 * one result; backward through any of them works).  T must be >= 1.  Error
 * argument positions: x 1, h0 2, then (LSTM) c0 3, then w_ih, w_hh, b_ih, b_hh. */
gl_status gl_rnn_sequence(gl_rnn_kind kind, const gl_tensor *x, const gl_tensor *h0,
                          const gl_tensor *c0, const gl_tensor *w_ih, const gl_tensor *w_hh,
                          const gl_tensor *b_ih, const gl_tensor *b_hh, gl_tensor **y,
                          gl_tensor **h_n, gl_tensor **c_n, gl_error *err);
/* One step on x (B, in): h_out (B, H), and c_out (B, H) for LSTM (may be NULL
 * to skip; set to NULL for the other kinds).  The same kernels as a sequence
 * of length 1. */
gl_status gl_rnn_cell(gl_rnn_kind kind, const gl_tensor *x, const gl_tensor *h, const gl_tensor *c,
                      const gl_tensor *w_ih, const gl_tensor *w_hh, const gl_tensor *b_ih,
                      const gl_tensor *b_hh, gl_tensor **h_out, gl_tensor **c_out, gl_error *err);

/* ---------------------------------------------------- embedding, attention */
/* (embedding.c, attention.c) */

/* Marks "no padding row" for gl_embedding. */
#define GL_EMBEDDING_NO_PADDING INT64_MIN

/* y = weight[indices]: indices of any shape hold integers counted from
 * `index_base` (1 from Lua, 0 from C) stored as floats; weight (n, d);
 * y (indices..., d).  An index that is not an integer in base..base+n-1 fails
 * with GL_EINDEX naming its position.  Rows equal to padding_idx (same base,
 * or GL_EMBEDDING_NO_PADDING) receive no gradient.  Differentiates w.r.t.
 * weight only, by a scatter-add of the output gradient rows (embedding.c). */
gl_status gl_embedding(const gl_tensor *indices, const gl_tensor *weight, int index_base,
                       int64_t padding_idx, gl_tensor **out, gl_error *err);

/* Options of scaled dot-product attention; zero-initialise, then set heads. */
typedef struct gl_attention_options {
    int64_t heads;                       /* >= 1, divides the feature dims of q, k, v */
    const gl_tensor *mask;               /* additive, broadcast to (B, heads, Tq, Tk), or NULL;
                                            differentiable (a learned bias works) */
    const gl_tensor *key_padding_mask;   /* (B, Tk): nonzero drops that key, or NULL */
    bool causal;                         /* query i sees keys j <= i (top-left aligned) */
    float scale;                         /* 0 means 1 / sqrt(head_dim) */
    float dropout;                       /* on the weights, in [0, 1), when training */
    bool training;
} gl_attention_options;

/* Multi-head scaled dot-product attention, batch first, heads packed in the
 * feature dimension (the layout of a Linear's output, no transposes needed):
 *   q (B, Tq, H*dk), k (B, Tk, H*dk), v (B, Tk, H*dv)  ->  out (B, Tq, H*dv)
 *   per batch b and head h:  P = softmax(scale * Q K^T + mask),  O = P V
 * Rows of q, k, v may be strided (e.g. narrow views); the last dim is read in
 * place when its stride is 1.  A query row whose keys are all masked gets
 * zero weights and a zero output rather than NaN.  `weights`, if non-NULL,
 * receives the (B, H, Tq, Tk) attention probabilities before dropout, outside
 * the graph.  One fused node: batched sgemm for Q K^T, P V and their
 * backward, softmax and its backward in between (attention.c). */
gl_status gl_attention(const gl_tensor *q, const gl_tensor *k, const gl_tensor *v,
                       const gl_attention_options *options, gl_tensor **out, gl_tensor **weights,
                       gl_error *err);
/* Self-attention on the packed projection qkv (B, T, 3 E) = [Q | K | V], as one
 * Linear with PyTorch's in_proj_weight (3E, E) produces it: out (B, T, E).
 * The gradient of qkv is written in one piece, with no narrow/cat nodes. */
gl_status gl_attention_packed(const gl_tensor *qkv, const gl_attention_options *options,
                              gl_tensor **out, gl_tensor **weights, gl_error *err);

/* ------------------------------------------------------------------ graph */
/* (graph.c) */

typedef enum gl_graph_norm {
    GL_GRAPH_SUM,         /* y_i = sum_j a_ij x_j */
    GL_GRAPH_MEAN,        /* y_i = sum_j a_ij x_j / sum_j a_ij  (0 for a node with no neighbours) */
    GL_GRAPH_SYMMETRIC,   /* y_i = sum_j a_ij x_j / sqrt(d_i d_j), d = row sums (GCN) */
    GL_GRAPH_NORM_COUNT
} gl_graph_norm;

/* A graph: a dense (N, N) adjacency, y = A x (row i lists node i's
 * in-neighbours, weights allowed), or an edge list (E, 2) of rows {source,
 * target} counted from index_base (message source -> target, as PyTorch
 * Geometric's edge_index) with optional edge_weight (E) or NULL (all 1).
 * self_loops adds A + I before normalizing. */
typedef struct gl_graph {
    const gl_tensor *adjacency;     /* (N, N) when !edge_list, else (E, 2) */
    const gl_tensor *edge_weight;   /* edge lists only, or NULL */
    bool edge_list;
    bool self_loops;
    int index_base;
} gl_graph;

/* Neighbourhood aggregation of node features x (N, F) -> (N, F), normalized
 * as `norm` says; differentiates w.r.t. x (the graph is a constant: an
 * adjacency or edge weight that tracks grad is refused).  Dense graphs go
 * through sgemm, edge lists through a scatter-add over the edges (graph.c). */
gl_status gl_graph_aggregate(const gl_tensor *x, const gl_graph *graph, gl_graph_norm norm,
                             gl_tensor **out, gl_error *err);

/* ---------------------------------------------------------------- losses */

typedef enum gl_reduction { GL_REDUCTION_MEAN, GL_REDUCTION_SUM, GL_REDUCTION_NONE } gl_reduction;

/* All in loss.c.  Labels are class indices stored as floats, counted from
 * `label_base` (1 from Lua, 0 from C). */
gl_status gl_loss_mse(const gl_tensor *prediction, const gl_tensor *target, gl_reduction reduction,
                      gl_tensor **out, gl_error *err);
gl_status gl_loss_cross_entropy(const gl_tensor *logits, const gl_tensor *labels, int label_base,
                                gl_reduction reduction, gl_tensor **out, gl_error *err);
gl_status gl_loss_nll(const gl_tensor *log_probabilities, const gl_tensor *labels, int label_base,
                      gl_reduction reduction, gl_tensor **out, gl_error *err);
gl_status gl_loss_bce(const gl_tensor *probabilities, const gl_tensor *target,
                      gl_reduction reduction, gl_tensor **out, gl_error *err);
gl_status gl_loss_bce_with_logits(const gl_tensor *logits, const gl_tensor *target,
                                  gl_reduction reduction, gl_tensor **out, gl_error *err);

/* -------------------------------------------------------------- optimizers */
/* Fused update kernels, one pass over each parameter (optim.c).  Every tensor
 * must be contiguous with the parameter's shape; state buffers are updated in
 * place.  `step` counts from 1.  `l1` adds l1 * sign(p) to the gradient and
 * `weight_decay` adds weight_decay * p (coupled, L2), before the update. */

typedef struct gl_sgd_options {
    float lr, momentum, dampening, weight_decay, l1;
    bool nesterov;
} gl_sgd_options;

typedef struct gl_adam_options {
    float lr, beta1, beta2, eps, weight_decay, l1;
    bool decoupled;   /* AdamW: p *= 1 - lr * weight_decay instead of L2 */
    bool amsgrad;
} gl_adam_options;

typedef struct gl_rmsprop_options {
    float lr, alpha, eps, weight_decay, momentum, l1;
    bool centered;
} gl_rmsprop_options;

typedef struct gl_adagrad_options {
    float lr, lr_decay, eps, weight_decay, l1;
} gl_adagrad_options;

/* Update norms an optimizer kernel can report: sum over elements of
 * (p_new - p_old)^2 and of p_old^2, in double.  Pass NULL when not needed. */
typedef struct gl_update_norms {
    double update_squares, param_squares;
} gl_update_norms;

/* momentum_buffer may be NULL when momentum == 0. */
gl_status gl_optim_sgd(gl_tensor *param, const gl_tensor *grad, gl_tensor *momentum_buffer,
                       int64_t step, const gl_sgd_options *options, gl_update_norms *norms,
                       gl_error *err);
/* max_exp_avg_sq only with amsgrad. */
gl_status gl_optim_adam(gl_tensor *param, const gl_tensor *grad, gl_tensor *exp_avg,
                        gl_tensor *exp_avg_sq, gl_tensor *max_exp_avg_sq, int64_t step,
                        const gl_adam_options *options, gl_update_norms *norms, gl_error *err);
/* momentum_buffer with momentum > 0, grad_avg when centered; else NULL. */
gl_status gl_optim_rmsprop(gl_tensor *param, const gl_tensor *grad, gl_tensor *square_avg,
                           gl_tensor *momentum_buffer, gl_tensor *grad_avg, int64_t step,
                           const gl_rmsprop_options *options, gl_update_norms *norms,
                           gl_error *err);
gl_status gl_optim_adagrad(gl_tensor *param, const gl_tensor *grad, gl_tensor *sum, int64_t step,
                           const gl_adagrad_options *options, gl_update_norms *norms,
                           gl_error *err);

/* ----------------------------------------------------------------- monitor */
/* One-pass statistics for clipping, loss scaling and the gradient monitor
 * (monitor.c).  Non-finite values are counted and left out of the sums;
 * `saturated` counts finite values below `low` or above `high` (pass
 * -INFINITY, INFINITY for none). */
typedef struct gl_tensor_stats {
    double sum, sum_squares, max_abs;
    int64_t count, nonfinite, zeros, saturated;
} gl_tensor_stats;
void gl_tensor_statistics(const gl_tensor *t, float low, float high, gl_tensor_stats *stats);

/* Asks backward to take the statistics of the gradient reaching t (an op's
 * output) as it passes: the backward signal, without keeping the gradient. */
gl_status gl_tensor_watch_grad(gl_tensor *t, gl_error *err);
/* Fills stats and returns true once a backward has passed t's node. */
bool gl_tensor_watched_grad(const gl_tensor *t, gl_tensor_stats *stats);

/* The recorder behind gl.monitor (monitor_record.c): it owns the watched
 * parameters and module slots and keeps every recorded value in growable
 * column arrays of doubles, so recording makes no per-step objects.
 *
 *   gl_monitor *m;  gl_monitor_new(1e-7, 1e3, &m, &err);
 *   gl_monitor_add_param(m, weight, &p, &err);   gl_monitor_add_module(m, true, -0.99f, 0.99f, &s, &err);
 *   each step: forward, gl_monitor_observe(m, s, output) for each module output,
 *              backward, gl_monitor_record(m, step, 1, &loss, &recorded, &warnings, &err),
 *              the optimizer step with gl_monitor_note_update(m, p, &norms) per parameter
 *   read back with gl_monitor_value / gl_monitor_step_info / gl_monitor_warning_get;
 *   gl_monitor_release(m).
 *
 * Record r (0-based) holds, per parameter, the fields of gl_monitor_param_field
 * (absent when the parameter had no gradient, update_ratio until the optimizer
 * steps) and, per module, those of gl_monitor_module_field (absent when the
 * module's output was not seen in forward; act_sat_frac only for modules with
 * a band; grad_out_norm once backward has passed the output). */
typedef struct gl_monitor gl_monitor;

typedef enum {
    GL_MONITOR_GRAD_NORM, GL_MONITOR_GRAD_MEAN, GL_MONITOR_GRAD_MAX, GL_MONITOR_UPDATE_RATIO,
    GL_MONITOR_PARAM_FIELDS
} gl_monitor_param_field;

typedef enum {
    GL_MONITOR_ACT_MEAN, GL_MONITOR_ACT_STD, GL_MONITOR_ACT_ZERO_FRAC, GL_MONITOR_ACT_SAT_FRAC,
    GL_MONITOR_GRAD_OUT_NORM, GL_MONITOR_MODULE_FIELDS
} gl_monitor_module_field;

typedef enum { GL_MONITOR_VANISHING, GL_MONITOR_EXPLODING, GL_MONITOR_NONFINITE } gl_monitor_warning_kind;
typedef enum { GL_MONITOR_UNDIRECTED, GL_MONITOR_FORWARD, GL_MONITOR_BACKWARD } gl_monitor_direction;

/* The first time each kind of trouble shows on a parameter or module. */
typedef struct gl_monitor_warning {
    gl_monitor_warning_kind kind;
    gl_monitor_direction direction;
    bool module;        /* index is a module slot, else a parameter */
    int64_t index;
    double step, value; /* value: the gradient norm, NaN when non-finite */
} gl_monitor_warning;

typedef struct gl_monitor_step_info {
    double step, loss, clip_pre, clip_post;
    bool has_loss, has_clip;
} gl_monitor_step_info;

/* A new recorder (refcount 1): gradient norms under `vanish` or over `explode`
 * warn.  Released with gl_monitor_release; retained by whoever holds on. */
gl_status gl_monitor_new(double vanish, double explode, gl_monitor **out, gl_error *err);
void gl_monitor_retain(gl_monitor *m);
void gl_monitor_release(gl_monitor *m);   /* NULL is a no-op */

/* Watched parameters and module slots, numbered from 0 in the order added;
 * both only before the first record.  add_param retains the parameter.  A
 * module with a band counts the share of its outputs below low or above high. */
gl_status gl_monitor_add_param(gl_monitor *m, gl_tensor *param, int64_t *index, gl_error *err);
gl_status gl_monitor_add_module(gl_monitor *m, bool band, float low, float high, int64_t *index,
                                gl_error *err);
int64_t gl_monitor_param_count(const gl_monitor *m);
int64_t gl_monitor_module_count(const gl_monitor *m);

/* A module's output seen in forward: on a step that will be recorded, takes
 * its activation statistics now (the data is hot) and asks backward for the
 * norm of the gradient reaching it.  The last output of a step wins.  Borrows
 * `output`; a module index out of range is ignored. */
void gl_monitor_observe(gl_monitor *m, int64_t module, gl_tensor *output);

/* Call after backward.  Keeps steps with step % every == 0 (*recorded tells),
 * taking every parameter's gradient statistics and every observed module's;
 * *new_warnings counts the warnings this record raised.  `loss` may be NULL.
 * GL_EARG for every < 1 or a non-finite step, GL_ENOMEM when the columns
 * cannot grow (nothing is recorded then). */
gl_status gl_monitor_record(gl_monitor *m, double step, int64_t every, const double *loss,
                            bool *recorded, int64_t *new_warnings, gl_error *err);

/* The optimizer's step of a watched parameter (norms from its fused pass):
 * the first step after a record sets that record's update ratio ‖Δp‖/‖p‖. */
void gl_monitor_note_update(gl_monitor *m, int64_t param, const gl_update_norms *norms);
/* clip_grad_norm's total norm before and after: on the last record when it
 * has not stepped yet, else on the next record. */
void gl_monitor_note_clip(gl_monitor *m, double pre, double post);
/* Stops observing for good and drops what is held for the next record. */
void gl_monitor_detach(gl_monitor *m);

/* Queries.  Records are numbered from 0; out-of-range indices return false. */
int64_t gl_monitor_record_count(const gl_monitor *m);
/* Bumped whenever a stored value changes (new record, update ratio, clip). */
uint64_t gl_monitor_version(const gl_monitor *m);
bool gl_monitor_step_info_get(const gl_monitor *m, int64_t record, gl_monitor_step_info *info);
/* False when the value is absent (or an index is out of range). */
bool gl_monitor_param_value(const gl_monitor *m, int64_t record, int64_t param, gl_monitor_param_field field,
                            double *value);
bool gl_monitor_module_value(const gl_monitor *m, int64_t record, int64_t module,
                             gl_monitor_module_field field, double *value);
int64_t gl_monitor_warning_count(const gl_monitor *m);
bool gl_monitor_warning_get(const gl_monitor *m, int64_t index, gl_monitor_warning *warning);
/* Bytes the recorder holds: its columns (allocated ahead by doubling), slots
 * and warnings. */
size_t gl_monitor_bytes(const gl_monitor *m);


/* ---------------------------------------------------------------- autograd */
/*
 * Ops on tensors that require grad record a graph of gl_node (one per op
 * output) while gl_grad_enabled().  gl_tensor_backward walks it in reverse
 * topological order, accumulates into the .grad of leaves, and frees what the
 * nodes saved unless asked to retain the graph.
 */
typedef struct gl_node gl_node;

/* A tensor takes part in autograd when it is a leaf with requires_grad or
 * was made by a recorded op. */
static inline bool gl_tensor_tracks_grad(const gl_tensor *t)
{
    return t->requires_grad || t->grad_fn != NULL;
}
/* Marks a leaf; refuses non-leaves (use detach first). */
gl_status gl_tensor_set_requires_grad(gl_tensor *t, bool requires_grad, gl_error *err);
/* A new tensor sharing t's storage, outside any graph. */
gl_status gl_tensor_detach(gl_tensor *t, gl_tensor **out, gl_error *err);
gl_status gl_tensor_retain_grad(gl_tensor *t, gl_error *err);
/* Drops t->grad. */
void gl_tensor_zero_grad(gl_tensor *t);
/* Sets t's name (copied) — used in anomaly and monitor messages. */
gl_status gl_tensor_set_name(gl_tensor *t, const char *name, gl_error *err);
/* Back-propagates from `root`; `grad` may be NULL for a 1-element root. */
gl_status gl_tensor_backward(gl_tensor *root, const gl_tensor *grad, bool retain_graph,
                             gl_error *err);
const char *gl_node_name(const gl_node *node);

/* Anomaly mode: ops whose forward or backward produce NaN/Inf fail, naming
 * the op and the current module path. */
void gl_set_detect_anomaly(bool enabled);
bool gl_detect_anomaly_enabled(void);
/* The module path that ops record for messages ("encoder.2"); copied. */
void gl_set_module_path(const char *path);
const char *gl_module_path(void);

/* Memory the engine has allocated since start (bytes, monotonic): lets the
 * Lua bindings tell the garbage collector how fast C memory is consumed. */
uint64_t gl_allocated_bytes_total(void);
/* Bytes of tensor storage alive now. */
uint64_t gl_live_bytes(void);
/* Freed buffers the engine keeps for reuse (bytes), and a way to return them
 * to the system. */
size_t gl_cached_bytes(void);
void gl_release_cached_memory(void);

/* ------------------------------------------------------------------- files */

typedef struct gl_named_tensor {
    char *name;          /* owned */
    gl_tensor *tensor;   /* owned reference */
} gl_named_tensor;

/* .npy: writes float32 little-endian, C order, atomically (temp + rename). */
gl_status gl_npy_save(const char *path, const gl_tensor *t, gl_error *err);
/* Reads float32/float64/int32/int64/uint8 (and bool), either byte order,
 * C or Fortran order, into a new float32 tensor. */
gl_status gl_npy_load(const char *path, gl_tensor **out, gl_error *err);
/* Same parsers on an in-memory buffer (used by .npz and by the fuzzers). */
gl_status gl_npy_parse(const unsigned char *bytes, size_t size, gl_tensor **out,
                       gl_error *err);

/* The .npy bytes gl_npy_save writes (version 1.0 header padded to 64 bytes,
 * float32 little-endian, C order): gl_npy_encoded_size() bytes, written by
 * gl_npy_encode into a caller-provided buffer at least that large.  Used by
 * gl_npz_save to place members straight into the archive. */
size_t gl_npy_encoded_size(const gl_tensor *t);
void gl_npy_encode(const gl_tensor *t, unsigned char *buffer);

/* .npz: an uncompressed zip of .npy members, written atomically. */
gl_status gl_npz_save(const char *path, int count, const gl_named_tensor *entries,
                      gl_error *err);
/* On success *entries is a malloc'ed array of *count items: free it with
 * gl_named_tensors_free. */
gl_status gl_npz_load(const char *path, gl_named_tensor **entries, int *count, gl_error *err);
gl_status gl_npz_parse(const unsigned char *bytes, size_t size, gl_named_tensor **entries,
                       int *count, gl_error *err);
void gl_named_tensors_free(gl_named_tensor *entries, int count);

/* Numeric CSV (csv.c): cells separated by ',', ';' or tab, one row per line,
 * every row as long as the first; the first line is skipped when `header`;
 * blank lines are skipped.  A new (rows, columns) tensor, (0, 0) when there
 * is no row.  Messages start "csv: " and name the line and the cell. */
gl_status gl_csv_parse(const unsigned char *bytes, size_t size, bool header, gl_tensor **out,
                       gl_error *err);
gl_status gl_csv_load(const char *path, bool header, gl_tensor **out, gl_error *err);

/* Writes `size` bytes to `path` through a temp file in the same folder,
 * fsync and rename, so `path` is never left half written.  The messages of
 * these two name the path and strerror but no op: callers prepend theirs. */
gl_status gl_file_write_atomic(const char *path, const void *bytes, size_t size,
                               gl_error *err);
/* Reads a whole file into a new malloc'ed buffer. */
gl_status gl_file_read_all(const char *path, unsigned char **bytes, size_t *size,
                           gl_error *err);

#ifdef __cplusplus
}
#endif
#endif
