/*
 * matmul.c — matrix products through cblas_sgemm.
 *
 * Shapes: (n,k)x(k,m) -> (n,m); (B,n,k)x(B,k,m) -> (B,n,m), a batch of 1 or a
 * 2-D operand broadcasting over the other's batch; a 1-D operand is a row
 * (left) or column (right) vector whose dimension is dropped from the result.
 * Transposed views go to BLAS as CblasTrans with their leading dimension, so
 * `a:t():matmul(b)` copies nothing.
 */
#include <cblas.h>
#include <limits.h>
#include <string.h>

#include "autograd.h"

/* How BLAS can read one (rows, cols) matrix view in place, if it can. */
typedef struct blas_matrix {
    const float *data;
    CBLAS_TRANSPOSE transpose;
    int64_t leading;        /* lda */
    int64_t batch_stride;   /* elements between matrices of a batch, 0 if shared */
} blas_matrix;

static bool blas_view(int64_t rows, int64_t cols, int64_t row_stride, int64_t col_stride,
                      blas_matrix *m)
{
    /* A size-1 dim's stride is arbitrary; pick the value that makes the view valid. */
    if (cols == 1) col_stride = 1;
    if (rows == 1) row_stride = cols > 1 ? cols * col_stride : 1;
    if (col_stride == 1 && row_stride >= (cols > 1 ? cols : 1)) {
        m->transpose = CblasNoTrans;
        m->leading = row_stride;
        return true;
    }
    if (rows == 1 && col_stride >= 1) {   /* a strided row is a column of a transposed matrix */
        m->transpose = CblasTrans;
        m->leading = col_stride;
        return col_stride >= 1;
    }
    if (row_stride == 1 && col_stride >= (rows > 1 ? rows : 1)) {
        m->transpose = CblasTrans;
        m->leading = col_stride;
        return true;
    }
    return false;
}

/* Returns a tensor (new reference) whose last two dims BLAS can read, copying
 * only when the strides leave no other way. */
static gl_status prepare_operand(const gl_tensor *t, gl_tensor **usable, blas_matrix *m,
                                 gl_error *err)
{
    int nd = t->ndim;
    int64_t rows = t->shape[nd - 2], cols = t->shape[nd - 1];
    if (blas_view(rows, cols, t->stride[nd - 2], t->stride[nd - 1], m)) {
        gl_tensor_retain((gl_tensor *)t);
        *usable = (gl_tensor *)t;
    } else {
        gl_status status = gl_tensor_clone_untracked(t, usable, err);
        if (status) return status;
        blas_view(rows, cols, (*usable)->stride[nd - 2], (*usable)->stride[nd - 1], m);
    }
    m->data = gl_tensor_data(*usable);
    m->batch_stride = nd == 3 && t->shape[0] > 1 ? (*usable)->stride[0] : 0;
    return GL_OK;
}

/* C = A B  =>  dA = dC B^T, dB = A^T dC, each summed over any batch the
 * operand was broadcast across.  Saved: A, B (the 2-d/3-d operands). */
static gl_status matmul_backward(gl_node *node, gl_tensor *g, gl_tensor **grads, gl_error *err)
{
    gl_status status = GL_OK;
    for (int i = 0; i < 2 && !status; i++) {
        if (!gl_node_input_needs_grad(node, i)) continue;
        gl_tensor *other = node->saved[1 - i], *other_t = NULL, *full = NULL;
        status = gl_tensor_transpose(other, other->ndim - 2, other->ndim - 1, &other_t, err);
        if (!status) status = i == 0 ? gl_tensor_matmul(g, other_t, &full, err)
                                     : gl_tensor_matmul(other_t, g, &full, err);
        if (!status) status = gl_grad_reduce_to(full, node->inputs[i].ndim, node->inputs[i].shape, &grads[i], err);
        gl_tensor_release(other_t);
        gl_tensor_release(full);
    }
    return status;
}

gl_status gl_tensor_matmul(const gl_tensor *a, const gl_tensor *b, gl_tensor **out,
                           gl_error *err)
{
    char sa[160], sb[160];
    *out = NULL;
    if (a->ndim < 1 || a->ndim > 3 || b->ndim < 1 || b->ndim > 3)
        return gl_error_set(err, GL_ESHAPE, a->ndim < 1 || a->ndim > 3 ? 1 : 2,
                            "matmul: operands must be 1-d, 2-d or 3-d (batched); got shapes %s and %s",
                            GL_SHAPE_STR(a, sa), GL_SHAPE_STR(b, sb));
    /* Promote vectors to matrices through views, remembering what to drop. */
    gl_tensor *left = NULL, *right = NULL, *result = NULL;
    gl_status status = a->ndim == 1 ? gl_tensor_unsqueeze((gl_tensor *)a, 0, &left, err)
                                    : (gl_tensor_retain((gl_tensor *)a), left = (gl_tensor *)a, GL_OK);
    if (status) return status;
    status = b->ndim == 1 ? gl_tensor_unsqueeze((gl_tensor *)b, 1, &right, err)
                          : (gl_tensor_retain((gl_tensor *)b), right = (gl_tensor *)b, GL_OK);
    if (status) {
        gl_tensor_release(left);
        return status;
    }
    int64_t n = left->shape[left->ndim - 2], k = left->shape[left->ndim - 1];
    int64_t k2 = right->shape[right->ndim - 2], m = right->shape[right->ndim - 1];
    int64_t batch_a = left->ndim == 3 ? left->shape[0] : 1;
    int64_t batch_b = right->ndim == 3 ? right->shape[0] : 1;
    int batched = left->ndim == 3 || right->ndim == 3;
    if (k != k2) {
        status = gl_error_set(err, GL_ESHAPE, 2,
                              "matmul: inner dimensions differ: %s has %lld columns, %s has %lld rows",
                              GL_SHAPE_STR(a, sa), (long long)k, GL_SHAPE_STR(b, sb), (long long)k2);
    } else if (batch_a != batch_b && batch_a != 1 && batch_b != 1) {
        status = gl_error_set(err, GL_ESHAPE, 2, "matmul: batch sizes differ: %s and %s",
                              GL_SHAPE_STR(a, sa), GL_SHAPE_STR(b, sb));
    } else if (n > INT_MAX || k > INT_MAX || m > INT_MAX) {
        status = gl_error_set(err, GL_ESHAPE, 1, "matmul: a matrix dimension exceeds BLAS's int range (%s, %s)",
                              GL_SHAPE_STR(a, sa), GL_SHAPE_STR(b, sb));
    }
    int64_t batch = batch_a > batch_b ? batch_a : batch_b;
    int64_t shape[3] = {batch, n, m};
    if (!status) {
        status = batched ? gl_tensor_empty(3, shape, &result, err)
                         : gl_tensor_empty(2, shape + 1, &result, err);
    }
    gl_tensor *left_usable = NULL, *right_usable = NULL;
    blas_matrix ma, mb;
    if (!status) status = prepare_operand(left, &left_usable, &ma, err);
    if (!status) status = prepare_operand(right, &right_usable, &mb, err);
    if (!status && n > 0 && m > 0) {
        float *c = gl_tensor_data(result);
        if (k == 0) {
            memset(c, 0, sizeof(float) * (size_t)(batch * n * m));
        } else if (batch > 1 && mb.batch_stride == 0 && ma.transpose == CblasNoTrans &&
                   ma.batch_stride == n * ma.leading && ma.leading == k) {
            /* A dense batch times one shared matrix is a single tall product. */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, mb.transpose, (int)(batch * n), (int)m, (int)k,
                        1.0f, ma.data, (int)ma.leading, mb.data, (int)mb.leading, 0.0f, c, (int)m);
        } else {
            for (int64_t i = 0; i < batch; i++)
                cblas_sgemm(CblasRowMajor, ma.transpose, mb.transpose, (int)n, (int)m, (int)k, 1.0f,
                            ma.data + i * ma.batch_stride, (int)ma.leading,
                            mb.data + i * mb.batch_stride, (int)mb.leading, 0.0f,
                            c + i * n * m, (int)m);
        }
    }
    gl_tensor_release(left_usable);
    gl_tensor_release(right_usable);
    if (!status) {
        const gl_tensor *inputs[2] = {left, right};
        gl_node *node = NULL;
        status = gl_op_finish("matmul", result, 2, inputs, matmul_backward, &node, err);
        if (!status && node) status = gl_node_save(node, left, err);
        if (!status && node) status = gl_node_save(node, right, err);
    }
    gl_tensor_release(left);
    gl_tensor_release(right);
    if (status) {
        gl_tensor_release(result);
        return status;
    }
    /* Drop the dimensions that the vector promotion added. */
    if (a->ndim == 1 || b->ndim == 1) {
        gl_tensor *squeezed = result;
        if (a->ndim == 1) status = gl_tensor_squeeze(result, result->ndim - 2, &squeezed, err);
        if (!status && b->ndim == 1) {
            gl_tensor *previous = squeezed;
            status = gl_tensor_squeeze(previous, previous->ndim - 1, &squeezed, err);
            if (previous != result) gl_tensor_release(previous);
        }
        gl_tensor_release(result);
        result = status ? NULL : squeezed;
    }
    *out = result;
    return status;
}
