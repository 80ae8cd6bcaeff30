/*
 * tensor.c — tensor headers, creation, element access and views.
 *
 * A tensor is (shape, stride, offset) over a refcounted storage.  Views share
 * the storage and retain it; the last release frees it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd.h"

gl_tensor *gl_tensor_header_new(void)
{
    gl_tensor *t = gl_context_object_take(GL_POOL_TENSOR);
    if (t) memset(t, 0, sizeof *t);
    else t = calloc(1, sizeof *t);
    if (t) t->refcount = 1;
    return t;
}

void gl_tensor_retain(gl_tensor *t) { t->refcount++; }

void gl_tensor_release(gl_tensor *t)
{
    if (!t || --t->refcount > 0) return;
    if (t->grad_fn && t->grad_fn->retained == t) t->grad_fn->retained = NULL;
    gl_node_release(t->grad_fn);
    gl_storage_release(t->storage);
    gl_tensor_release(t->grad);
    free(t->name);
    if (!gl_context_object_put(GL_POOL_TENSOR, t)) free(t);
}

int64_t gl_tensor_numel(const gl_tensor *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

void gl_strides_contiguous(int ndim, const int64_t *shape, int64_t *stride)
{
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        stride[d] = s;
        s *= shape[d] > 1 ? shape[d] : 1;
    }
}

bool gl_tensor_is_contiguous(const gl_tensor *t)
{
    int64_t expected = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] == 1) continue;   /* the stride of a size-1 dim never matters */
        if (t->shape[d] == 0) return true;
        if (t->stride[d] != expected) return false;
        expected *= t->shape[d];
    }
    return true;
}

bool gl_shape_equal(int ndim_a, const int64_t *a, int ndim_b, const int64_t *b)
{
    if (ndim_a != ndim_b) return false;
    for (int d = 0; d < ndim_a; d++)
        if (a[d] != b[d]) return false;
    return true;
}

int gl_dim_wrap(int dim, int ndim)
{
    if (dim < 0) dim += ndim;
    return dim >= 0 && dim < ndim ? dim : -1;
}

gl_status gl_shape_check(const char *op, int ndim, const int64_t *shape, int64_t *numel,
                         gl_error *err)
{
    char buffer[160];
    if (ndim < 0 || ndim > GL_MAX_DIMS)
        return gl_error_set(err, GL_EARG, 1, "%s: a tensor has at most %d dimensions, got %d", op,
                            GL_MAX_DIMS, ndim);
    int64_t n = 1, nonzero = 1;
    bool overflow = false;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0)
            return gl_error_set(err, GL_EARG, 1, "%s: size %lld of dimension %d is negative (shape %s)",
                                op, (long long)shape[d], d + 1,
                                gl_shape_format(ndim, shape, buffer, sizeof buffer));
        if (!overflow && __builtin_mul_overflow(n, shape[d], &n)) overflow = true;
        /* A size 0 makes numel 0, but the strides multiply the other sizes:
         * {0, 2^62, 4} must fail too (NumPy refuses it as well). */
        if (shape[d] > 0 && !overflow && __builtin_mul_overflow(nonzero, shape[d], &nonzero))
            overflow = true;
    }
    /* Physical memory is asked (a system call) only for requests that could exceed it.  An
     * empty tensor is held to it too: kernels loop over its other dimensions. */
    if (overflow || (nonzero > (INT64_C(1) << 26) && nonzero > gl_storage_max_numel()))
        return gl_error_set(err, GL_ENOMEM, 1,
                            "%s: cannot allocate a tensor of shape %s: more elements than this machine's memory holds",
                            op, gl_shape_format(ndim, shape, buffer, sizeof buffer));
    if (numel) *numel = n;
    return GL_OK;
}

gl_status gl_tensor_view_of(gl_storage *storage, int ndim, const int64_t *shape,
                            const int64_t *stride, int64_t offset, gl_tensor **out,
                            gl_error *err)
{
    *out = NULL;
    gl_tensor *t = gl_tensor_header_new();
    if (!t) return gl_error_set(err, GL_ENOMEM, 0, "cannot allocate a tensor header");
    t->ndim = ndim;
    if (ndim > 0) memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);   /* 0-d: shape may be NULL */
    if (stride && ndim > 0) memcpy(t->stride, stride, sizeof(int64_t) * (size_t)ndim);
    else gl_strides_contiguous(ndim, shape, t->stride);
    t->offset = offset;
    t->storage = storage;
    gl_storage_retain(storage);
    *out = t;
    return GL_OK;
}

/* gl_tensor_empty with the caller's name in messages. */
static gl_status empty_named(const char *op, int ndim, const int64_t *shape, gl_tensor **out,
                             gl_error *err)
{
    int64_t numel;
    gl_storage *storage;
    *out = NULL;
    gl_status status = gl_shape_check(op, ndim, shape, &numel, err);
    if (status) return status;
    if ((status = gl_storage_new(numel, &storage, err))) return status;
    status = gl_tensor_view_of(storage, ndim, shape, NULL, 0, out, err);
    gl_storage_release(storage);
    return status;
}

gl_status gl_tensor_empty(int ndim, const int64_t *shape, gl_tensor **out, gl_error *err)
{
    return empty_named("empty", ndim, shape, out, err);
}

static gl_status full_named(const char *op, int ndim, const int64_t *shape, float value,
                            gl_tensor **out, gl_error *err)
{
    gl_status status = empty_named(op, ndim, shape, out, err);
    if (status) return status;
    float *restrict data = gl_tensor_data(*out);
    int64_t n = gl_tensor_numel(*out);
    for (int64_t i = 0; i < n; i++) data[i] = value;
    return GL_OK;
}

gl_status gl_tensor_full(int ndim, const int64_t *shape, float value, gl_tensor **out,
                         gl_error *err)
{
    return full_named("full", ndim, shape, value, out, err);
}

gl_status gl_tensor_zeros(int ndim, const int64_t *shape, gl_tensor **out, gl_error *err)
{
    return full_named("zeros", ndim, shape, 0.0f, out, err);
}

gl_status gl_tensor_ones(int ndim, const int64_t *shape, gl_tensor **out, gl_error *err)
{
    return full_named("ones", ndim, shape, 1.0f, out, err);
}

gl_status gl_tensor_scalar(float value, gl_tensor **out, gl_error *err)
{
    return gl_tensor_full(0, NULL, value, out, err);
}

gl_status gl_tensor_eye(int64_t n, gl_tensor **out, gl_error *err)
{
    int64_t shape[2] = {n, n};
    gl_status status = gl_tensor_zeros(2, shape, out, err);
    if (status) return status;
    float *data = gl_tensor_data(*out);
    for (int64_t i = 0; i < n; i++) data[i * n + i] = 1.0f;
    return GL_OK;
}

gl_status gl_tensor_arange(double start, double end, double step, gl_tensor **out,
                           gl_error *err)
{
    *out = NULL;
    if (step == 0 || !isfinite(step) || !isfinite(start) || !isfinite(end))
        return gl_error_set(err, GL_EARG, 3, "arange: step must be a finite non-zero number, and the bounds finite");
    double count = ceil((end - start) / step);
    if (count < 0) count = 0;
    if (count > (double)gl_storage_max_numel())
        return gl_error_set(err, GL_ENOMEM, 0, "arange: cannot allocate %.0f elements", count);
    int64_t shape[1] = {(int64_t)count};
    gl_status status = gl_tensor_empty(1, shape, out, err);
    if (status) return status;
    float *data = gl_tensor_data(*out);
    for (int64_t i = 0; i < shape[0]; i++) data[i] = (float)(start + (double)i * step);
    return GL_OK;
}

gl_status gl_tensor_rand(int ndim, const int64_t *shape, gl_tensor **out, gl_error *err)
{
    gl_status status = empty_named("rand", ndim, shape, out, err);
    if (status) return status;
    float *data = gl_tensor_data(*out);
    int64_t n = gl_tensor_numel(*out);
    /* 24 random bits: every float32 value in [0, 1) that is a multiple of 2^-24. */
    for (int64_t i = 0; i < n; i++) data[i] = (float)(gl_random_u64() >> 40) * 0x1.0p-24f;
    return GL_OK;
}

gl_status gl_tensor_randn(int ndim, const int64_t *shape, gl_tensor **out, gl_error *err)
{
    gl_status status = empty_named("randn", ndim, shape, out, err);
    if (status) return status;
    float *data = gl_tensor_data(*out);
    int64_t n = gl_tensor_numel(*out);
    for (int64_t i = 0; i < n; i++) data[i] = (float)gl_random_normal();
    return GL_OK;
}

gl_status gl_tensor_randint(int64_t low, int64_t high, int ndim, const int64_t *shape,
                            gl_tensor **out, gl_error *err)
{
    *out = NULL;
    if (high < low)
        return gl_error_set(err, GL_EARG, 2, "randint: high (%lld) is below low (%lld)",
                            (long long)high, (long long)low);
    gl_status status = empty_named("randint", ndim, shape, out, err);
    if (status) return status;
    float *data = gl_tensor_data(*out);
    int64_t n = gl_tensor_numel(*out);
    uint64_t range = (uint64_t)(high - low) + 1;
    for (int64_t i = 0; i < n; i++) data[i] = (float)(low + (int64_t)gl_random_below(range));
    return GL_OK;
}

/* ------------------------------------------------------------ element access */

static gl_status element_offset(const char *op, const gl_tensor *t, int nindex,
                                const int64_t *index, int64_t *offset, gl_error *err)
{
    char buffer[160];
    if (nindex != t->ndim)
        return gl_error_set(err, GL_EARG, 1, "%s: a tensor of shape %s needs %d indices, got %d", op,
                            GL_SHAPE_STR(t, buffer), t->ndim, nindex);
    int64_t at = t->offset;
    for (int d = 0; d < t->ndim; d++) {
        if (index[d] < 0 || index[d] >= t->shape[d])
            return gl_error_set(err, GL_EINDEX, d + 1,
                                "%s: index %lld is out of range for dimension %d of size %lld (shape %s)",
                                op, (long long)index[d] + 1, d + 1, (long long)t->shape[d],
                                GL_SHAPE_STR(t, buffer));
        at += index[d] * t->stride[d];
    }
    *offset = at;
    return GL_OK;
}

gl_status gl_tensor_get(const gl_tensor *t, int nindex, const int64_t *index, float *value,
                        gl_error *err)
{
    int64_t at = 0;
    gl_status status = element_offset("get", t, nindex, index, &at, err);
    if (status == GL_OK) *value = t->storage->data[at];
    return status;
}

gl_status gl_tensor_set(gl_tensor *t, int nindex, const int64_t *index, float value,
                        gl_error *err)
{
    int64_t at = 0;
    gl_status status = element_offset("set", t, nindex, index, &at, err);
    if (status == GL_OK) {
        t->storage->data[at] = value;
        t->storage->version++;
    }
    return status;
}

int gl_layout_coalesce(int ndim, const int64_t *shape, int count, const int64_t *const *strides,
                       int64_t *out_shape, int64_t (*out_strides)[GL_MAX_DIMS])
{
    int n = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 1) continue;   /* size-1 dims contribute nothing */
        bool merge = n > 0;
        for (int k = 0; k < count && merge; k++)
            merge = out_strides[k][n - 1] == strides[k][d] * shape[d];
        if (merge) {
            out_shape[n - 1] *= shape[d];
            for (int k = 0; k < count; k++) out_strides[k][n - 1] = strides[k][d];
        } else {
            out_shape[n] = shape[d];
            for (int k = 0; k < count; k++) out_strides[k][n] = strides[k][d];
            n++;
        }
    }
    if (n == 0) {   /* a scalar or all-ones shape: one row of one element */
        out_shape[0] = 1;
        for (int k = 0; k < count; k++) out_strides[k][0] = 1;
        n = 1;
    }
    return n;
}

void gl_tensor_gather_to(const gl_tensor *t, float *buffer)
{
    int64_t shape[GL_MAX_DIMS], strides[1][GL_MAX_DIMS];
    const int64_t *in_strides[1] = {t->stride};
    if (gl_tensor_numel(t) == 0) return;
    int ndim = gl_layout_coalesce(t->ndim, t->shape, 1, in_strides, shape, strides);
    const float *src = gl_tensor_data(t);
    int64_t inner = shape[ndim - 1], step = strides[0][ndim - 1];
    int64_t index[GL_MAX_DIMS] = {0};
    for (;;) {
        int64_t at = 0;
        for (int d = 0; d < ndim - 1; d++) at += index[d] * strides[0][d];
        const float *row = src + at;
        if (step == 1) memcpy(buffer, row, sizeof(float) * (size_t)inner);
        else for (int64_t i = 0; i < inner; i++) buffer[i] = row[i * step];
        buffer += inner;
        int d = ndim - 2;
        while (d >= 0 && ++index[d] == shape[d]) index[d--] = 0;
        if (d < 0) break;
    }
}

/* ------------------------------------------------------------------- views */

static gl_status new_view(gl_tensor *t, int ndim, const int64_t *shape, const int64_t *stride,
                          int64_t offset, gl_tensor **out, gl_error *err)
{
    return gl_tensor_view_of(t->storage, ndim, shape, stride, offset, out, err);
}

/* Records the node of a view op; on failure releases *out. */
static gl_status view_finish(const char *name, gl_tensor *t, gl_tensor **out, gl_backward_fn backward,
                             int nparams, const int64_t *params, gl_error *err)
{
    const gl_tensor *inputs[1] = {t};
    gl_node *node = NULL;
    gl_status status = gl_op_finish(name, *out, 1, inputs, backward, &node, err);
    if (!status && node)
        for (int i = 0; i < nparams; i++) node->params[i] = params[i];
    if (status) {
        gl_tensor_release(*out);
        *out = NULL;
    }
    return status;
}

/* view, reshape, squeeze, unsqueeze: the gradient takes the input's shape back. */
static gl_status reshape_backward(gl_node *node, gl_tensor *g, gl_tensor **grads, gl_error *err)
{
    return gl_tensor_reshape(g, node->inputs[0].ndim, node->inputs[0].shape, &grads[0], err);
}

static gl_status transpose_backward(gl_node *node, gl_tensor *g, gl_tensor **grads, gl_error *err)
{
    return gl_tensor_transpose(g, (int)node->params[0], (int)node->params[1], &grads[0], err);
}

/* params: the permutation; the gradient applies its inverse. */
static gl_status permute_backward(gl_node *node, gl_tensor *g, gl_tensor **grads, gl_error *err)
{
    int inverse[GL_MAX_DIMS];
    for (int d = 0; d < g->ndim; d++) inverse[node->params[d]] = d;
    return gl_tensor_permute(g, g->ndim, inverse, &grads[0], err);
}

/* narrow (params: dim, start) and select (params: dim, index, -1): the
 * gradient is zero outside the slice. */
static gl_status slice_backward(gl_node *node, gl_tensor *g, gl_tensor **grads, gl_error *err)
{
    gl_tensor *full = NULL, *slot = NULL;
    gl_status status = gl_tensor_zeros(node->inputs[0].ndim, node->inputs[0].shape, &full, err);
    int dim = (int)node->params[0];
    if (!status) {
        status = node->params[2] < 0 ? gl_tensor_select(full, dim, node->params[1], &slot, err)
                                     : gl_tensor_narrow(full, dim, node->params[1], g->shape[dim], &slot, err);
    }
    if (!status) status = gl_tensor_copy_from(slot, g, err);
    gl_tensor_release(slot);
    if (status) {
        gl_tensor_release(full);
        return status;
    }
    grads[0] = full;
    return GL_OK;
}

static gl_status expand_backward(gl_node *node, gl_tensor *g, gl_tensor **grads, gl_error *err)
{
    return gl_grad_reduce_to(g, node->inputs[0].ndim, node->inputs[0].shape, &grads[0], err);
}

static gl_status identity_backward(gl_node *node, gl_tensor *g, gl_tensor **grads, gl_error *err)
{
    gl_tensor_retain(g);
    grads[0] = g;
    return GL_OK;
}

/* Resolves one -1 in a requested shape against numel. */
/* Whether the product of the non-zero sizes overflows int64: such a shape
 * has no valid strides (or numel), even when a size 0 leaves it empty.  An
 * empty shape must also fit memory as gl_shape_check asks, since kernels loop
 * over its other dimensions ({2^62, 0} would keep softmax busy for ever). */
static bool sizes_overflow(int ndim, const int64_t *shape)
{
    int64_t product = 1;
    bool empty = false;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 0) empty = true;
        if (shape[d] > 0 && __builtin_mul_overflow(product, shape[d], &product)) return true;
    }
    return empty && product > (INT64_C(1) << 26) && product > gl_storage_max_numel();
}

static gl_status infer_shape(const char *op, const gl_tensor *t, int ndim, const int64_t *shape,
                             int64_t *resolved, gl_error *err)
{
    char want[160], have[160];
    int64_t known = 1, numel = gl_tensor_numel(t);
    int infer_at = -1;
    if (ndim < 0 || ndim > GL_MAX_DIMS)
        return gl_error_set(err, GL_EARG, 1, "%s: a tensor has at most %d dimensions, got %d", op,
                            GL_MAX_DIMS, ndim);
    for (int d = 0; d < ndim; d++) {
        resolved[d] = shape[d];
        if (shape[d] == -1) {
            if (infer_at >= 0)
                return gl_error_set(err, GL_EARG, 1, "%s: only one size may be -1 (shape %s)", op,
                                    gl_shape_format(ndim, shape, want, sizeof want));
            infer_at = d;
        } else if (shape[d] < 0) {
            return gl_error_set(err, GL_EARG, 1, "%s: size %lld is negative (shape %s)", op,
                                (long long)shape[d], gl_shape_format(ndim, shape, want, sizeof want));
        } else if (__builtin_mul_overflow(known, shape[d], &known)) {
            known = -1;
            break;
        }
    }
    if (infer_at >= 0 && known > 0 && numel % known == 0) resolved[infer_at] = numel / known;
    int64_t total = 1;
    for (int d = 0; d < ndim && total >= 0; d++)
        if (__builtin_mul_overflow(total, resolved[d], &total)) total = -1;
    if (total != numel || (infer_at >= 0 && known == 0) || sizes_overflow(ndim, resolved))
        return gl_error_set(err, GL_ESHAPE, 1, "%s: cannot view a tensor of shape %s (%lld elements) as %s",
                            op, GL_SHAPE_STR(t, have), (long long)numel,
                            gl_shape_format(ndim, shape, want, sizeof want));
    return GL_OK;
}

/* Strides that view `t`'s memory as `shape`, if they exist (PyTorch's rule). */
static bool view_strides(const gl_tensor *t, int ndim, const int64_t *shape, int64_t *stride)
{
    if (gl_tensor_numel(t) == 0 || t->ndim == 0) {
        gl_strides_contiguous(ndim, shape, stride);
        return true;
    }
    int view_d = ndim - 1;
    int64_t chunk_base_stride = t->stride[t->ndim - 1];
    int64_t tensor_numel = 1, view_numel = 1;
    for (int tensor_d = t->ndim - 1; tensor_d >= 0; tensor_d--) {
        tensor_numel *= t->shape[tensor_d];
        if (tensor_d == 0 || (t->shape[tensor_d - 1] != 1 &&
                              t->stride[tensor_d - 1] != tensor_numel * chunk_base_stride)) {
            while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
                stride[view_d] = view_numel * chunk_base_stride;
                view_numel *= shape[view_d];
                view_d--;
            }
            if (view_numel != tensor_numel) return false;
            if (tensor_d > 0) {
                chunk_base_stride = t->stride[tensor_d - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    return view_d == -1;
}

gl_status gl_tensor_view(gl_tensor *t, int ndim, const int64_t *shape, gl_tensor **out,
                         gl_error *err)
{
    int64_t resolved[GL_MAX_DIMS], stride[GL_MAX_DIMS];
    char have[160];
    *out = NULL;
    gl_status status = infer_shape("view", t, ndim, shape, resolved, err);
    if (status) return status;
    if (!view_strides(t, ndim, resolved, stride))
        return gl_error_set(err, GL_ESHAPE, 1,
                            "view: the strides of this tensor (shape %s, a transposed or sliced view) do not allow this shape; use reshape, which copies",
                            GL_SHAPE_STR(t, have));
    if ((status = new_view(t, ndim, resolved, stride, t->offset, out, err))) return status;
    return view_finish("view", t, out, reshape_backward, 0, NULL, err);
}

gl_status gl_tensor_reshape(gl_tensor *t, int ndim, const int64_t *shape, gl_tensor **out,
                            gl_error *err)
{
    int64_t resolved[GL_MAX_DIMS], stride[GL_MAX_DIMS];
    *out = NULL;
    gl_status status = infer_shape("reshape", t, ndim, shape, resolved, err);
    if (status) return status;
    if (view_strides(t, ndim, resolved, stride)) {
        status = new_view(t, ndim, resolved, stride, t->offset, out, err);
    } else {
        gl_tensor *copy;
        if ((status = gl_tensor_clone_untracked(t, &copy, err))) return status;
        status = new_view(copy, ndim, resolved, NULL, 0, out, err);
        gl_tensor_release(copy);
    }
    if (status) return status;
    return view_finish("reshape", t, out, reshape_backward, 0, NULL, err);
}

static gl_status check_dim(const char *op, const gl_tensor *t, int dim, int argument, int *wrapped,
                           gl_error *err)
{
    char buffer[160];
    *wrapped = gl_dim_wrap(dim, t->ndim);
    if (*wrapped < 0)
        return gl_error_set(err, GL_EINDEX, argument,
                            "%s: dimension %d is out of range for a %d-d tensor (shape %s)", op,
                            dim >= 0 ? dim + 1 : dim, t->ndim, GL_SHAPE_STR(t, buffer));
    return GL_OK;
}

gl_status gl_tensor_transpose(gl_tensor *t, int dim0, int dim1, gl_tensor **out, gl_error *err)
{
    int a, b;
    *out = NULL;
    gl_status status = check_dim("transpose", t, dim0, 1, &a, err);
    if (status || (status = check_dim("transpose", t, dim1, 2, &b, err))) return status;
    int64_t shape[GL_MAX_DIMS], stride[GL_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    memcpy(stride, t->stride, sizeof stride);
    shape[a] = t->shape[b], shape[b] = t->shape[a];
    stride[a] = t->stride[b], stride[b] = t->stride[a];
    if ((status = new_view(t, t->ndim, shape, stride, t->offset, out, err))) return status;
    int64_t params[2] = {a, b};
    return view_finish("transpose", t, out, transpose_backward, 2, params, err);
}

gl_status gl_tensor_permute(gl_tensor *t, int ndim, const int *order, gl_tensor **out,
                            gl_error *err)
{
    char buffer[160];
    bool seen[GL_MAX_DIMS] = {false};
    int64_t shape[GL_MAX_DIMS], stride[GL_MAX_DIMS], params[GL_MAX_DIMS];
    *out = NULL;
    if (ndim != t->ndim)
        return gl_error_set(err, GL_EARG, 1, "permute: a %d-d tensor (shape %s) needs %d dimensions, got %d",
                            t->ndim, GL_SHAPE_STR(t, buffer), t->ndim, ndim);
    for (int d = 0; d < ndim; d++) {
        int from = gl_dim_wrap(order[d], ndim);
        if (from < 0 || seen[from])
            return gl_error_set(err, GL_EARG, d + 1,
                                "permute: the order must name each of the %d dimensions once", ndim);
        seen[from] = true;
        shape[d] = t->shape[from];
        stride[d] = t->stride[from];
        params[d] = from;
    }
    gl_status status = new_view(t, ndim, shape, stride, t->offset, out, err);
    if (status) return status;
    return view_finish("permute", t, out, permute_backward, ndim, params, err);
}

gl_status gl_tensor_narrow(gl_tensor *t, int dim, int64_t start, int64_t length,
                           gl_tensor **out, gl_error *err)
{
    char buffer[160];
    int d;
    *out = NULL;
    if (check_dim("narrow", t, dim, 1, &d, err)) return GL_EINDEX;
    if (start < 0 || length < 0 || start > t->shape[d] || length > t->shape[d] - start)
        return gl_error_set(err, GL_EINDEX, 2,
                            "narrow: start %lld with length %lld does not fit in dimension %d of size %lld (shape %s)",
                            (long long)start + 1, (long long)length, d + 1, (long long)t->shape[d],
                            GL_SHAPE_STR(t, buffer));
    int64_t shape[GL_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    shape[d] = length;
    gl_status status = new_view(t, t->ndim, shape, t->stride, t->offset + start * t->stride[d], out, err);
    if (status) return status;
    int64_t params[3] = {d, start, 0};
    return view_finish("narrow", t, out, slice_backward, 3, params, err);
}

gl_status gl_tensor_select(gl_tensor *t, int dim, int64_t index, gl_tensor **out, gl_error *err)
{
    char buffer[160];
    int d;
    *out = NULL;
    if (t->ndim == 0)
        return gl_error_set(err, GL_EINDEX, 1, "select: cannot select from a 0-d tensor");
    if (check_dim("select", t, dim, 1, &d, err)) return GL_EINDEX;
    if (index < 0 || index >= t->shape[d])
        return gl_error_set(err, GL_EINDEX, 2,
                            "select: index %lld is out of range for dimension %d of size %lld (shape %s)",
                            (long long)index + 1, d + 1, (long long)t->shape[d],
                            GL_SHAPE_STR(t, buffer));
    int64_t shape[GL_MAX_DIMS], stride[GL_MAX_DIMS];
    int n = 0;
    for (int k = 0; k < t->ndim; k++)
        if (k != d) shape[n] = t->shape[k], stride[n++] = t->stride[k];
    gl_status status = new_view(t, n, shape, stride, t->offset + index * t->stride[d], out, err);
    if (status) return status;
    int64_t params[3] = {d, index, -1};
    return view_finish("select", t, out, slice_backward, 3, params, err);
}

gl_status gl_tensor_unsqueeze(gl_tensor *t, int dim, gl_tensor **out, gl_error *err)
{
    char buffer[160];
    *out = NULL;
    if (dim < 0) dim += t->ndim + 1;
    if (dim < 0 || dim > t->ndim || t->ndim >= GL_MAX_DIMS)
        return gl_error_set(err, GL_EINDEX, 1, "unsqueeze: dimension %d is out of range for shape %s",
                            dim + 1, GL_SHAPE_STR(t, buffer));
    int64_t shape[GL_MAX_DIMS], stride[GL_MAX_DIMS];
    for (int k = 0, n = 0; k <= t->ndim; k++) {
        if (k == dim) {
            shape[k] = 1;
            stride[k] = k < t->ndim ? t->stride[n] * t->shape[n] : 1;
        } else {
            shape[k] = t->shape[n], stride[k] = t->stride[n];
            n++;
        }
    }
    gl_status status = new_view(t, t->ndim + 1, shape, stride, t->offset, out, err);
    if (status) return status;
    return view_finish("unsqueeze", t, out, reshape_backward, 0, NULL, err);
}

gl_status gl_tensor_squeeze(gl_tensor *t, int dim, gl_tensor **out, gl_error *err)
{
    int64_t shape[GL_MAX_DIMS], stride[GL_MAX_DIMS];
    int n = 0, only = -1;
    *out = NULL;
    if (dim != GL_SQUEEZE_ALL) {
        gl_status status = check_dim("squeeze", t, dim, 1, &only, err);
        if (status) return status;
    }
    for (int k = 0; k < t->ndim; k++) {
        bool drop = t->shape[k] == 1 && (only < 0 || only == k);
        if (!drop) shape[n] = t->shape[k], stride[n++] = t->stride[k];
    }
    gl_status status = new_view(t, n, shape, stride, t->offset, out, err);
    if (status) return status;
    return view_finish("squeeze", t, out, reshape_backward, 0, NULL, err);
}

gl_status gl_tensor_expand(gl_tensor *t, int ndim, const int64_t *shape, gl_tensor **out,
                           gl_error *err)
{
    char have[160], want[160];
    int64_t stride[GL_MAX_DIMS];
    *out = NULL;
    if (ndim < t->ndim || ndim > GL_MAX_DIMS)
        return gl_error_set(err, GL_ESHAPE, 1, "expand: cannot expand shape %s to %s",
                            GL_SHAPE_STR(t, have), gl_shape_format(ndim, shape, want, sizeof want));
    if (sizes_overflow(ndim, shape))
        return gl_error_set(err, GL_ENOMEM, 1,
                            "expand: shape %s is too large: its sizes overflow int64, or it is empty with more rows than memory holds (from %s)",
                            gl_shape_format(ndim, shape, want, sizeof want), GL_SHAPE_STR(t, have));
    int lead = ndim - t->ndim;
    for (int d = 0; d < ndim; d++) {
        int64_t from = d >= lead ? t->shape[d - lead] : 1;
        if (from == shape[d]) stride[d] = d >= lead ? t->stride[d - lead] : 0;
        else if (from == 1 && shape[d] >= 0) stride[d] = 0;
        else
            return gl_error_set(err, GL_ESHAPE, 1, "expand: cannot expand shape %s to %s",
                                GL_SHAPE_STR(t, have),
                                gl_shape_format(ndim, shape, want, sizeof want));
    }
    gl_status status = new_view(t, ndim, shape, stride, t->offset, out, err);
    if (status) return status;
    return view_finish("expand", t, out, expand_backward, 0, NULL, err);
}

gl_status gl_tensor_clone(const gl_tensor *t, gl_tensor **out, gl_error *err)
{
    gl_status status = gl_tensor_clone_untracked(t, out, err);
    if (status) return status;
    return view_finish("clone", (gl_tensor *)t, out, identity_backward, 0, NULL, err);
}

gl_status gl_tensor_contiguous(gl_tensor *t, gl_tensor **out, gl_error *err)
{
    if (gl_tensor_is_contiguous(t)) {
        gl_tensor_retain(t);
        *out = t;
        return GL_OK;
    }
    return gl_tensor_clone(t, out, err);
}
