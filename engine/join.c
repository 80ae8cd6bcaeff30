/* join.c — cat and stack: copy several tensors into one along a dimension. */
#include <stdlib.h>

#include "autograd.h"

/* Each input takes back its own slice of the gradient.  params[0] = dim. */
static gl_status cat_backward(gl_node *node, gl_tensor *g, gl_tensor **grads, gl_error *err)
{
    int d = (int)node->params[0];
    int64_t at = 0;
    gl_status status = GL_OK;
    for (int i = 0; i < node->ninputs && !status; i++) {
        int64_t length = node->inputs[i].shape[d];
        if (gl_node_input_needs_grad(node, i)) status = gl_tensor_narrow(g, d, at, length, &grads[i], err);
        at += length;
    }
    return status;
}

gl_status gl_tensor_cat(int count, gl_tensor *const *tensors, int dim, gl_tensor **out,
                        gl_error *err)
{
    char first[160], other[160];
    *out = NULL;
    if (count < 1) return gl_error_set(err, GL_EARG, 1, "cat: the list of tensors is empty");
    const gl_tensor *t0 = tensors[0];
    if (t0->ndim == 0)
        return gl_error_set(err, GL_EARG, 1, "cat: cannot concatenate 0-d tensors; use stack");
    int d = gl_dim_wrap(dim, t0->ndim);
    if (d < 0)
        return gl_error_set(err, GL_EINDEX, 2, "cat: dimension %d is out of range for %d-d tensors (shape %s)",
                            dim >= 0 ? dim + 1 : dim, t0->ndim, GL_SHAPE_STR(t0, first));
    int64_t shape[GL_MAX_DIMS];
    for (int k = 0; k < t0->ndim; k++) shape[k] = t0->shape[k];
    shape[d] = 0;
    for (int i = 0; i < count; i++) {
        const gl_tensor *t = tensors[i];
        bool fits = t->ndim == t0->ndim;
        for (int k = 0; k < t0->ndim && fits; k++) fits = k == d || t->shape[k] == t0->shape[k];
        if (!fits)
            return gl_error_set(err, GL_ESHAPE, 1,
                                "cat: tensor %d has shape %s, tensor 1 has %s; all must match except in dimension %d",
                                i + 1, GL_SHAPE_STR(t, other), GL_SHAPE_STR(t0, first), d + 1);
        /* Expanded views can be huge without memory: the sum may overflow. */
        if (__builtin_add_overflow(shape[d], t->shape[d], &shape[d]))
            return gl_error_set(err, GL_ENOMEM, 1,
                                "cat: the result would have more than %lld elements in dimension %d",
                                (long long)INT64_MAX, d + 1);
    }
    gl_status status = gl_shape_check("cat", t0->ndim, shape, NULL, err);
    if (status) return status;
    status = gl_tensor_empty(t0->ndim, shape, out, err);
    if (status) return status;
    int64_t at = 0;
    for (int i = 0; i < count && !status; i++) {
        gl_tensor *slot = NULL;
        status = gl_tensor_narrow(*out, d, at, tensors[i]->shape[d], &slot, err);
        if (!status) status = gl_tensor_copy_from(slot, tensors[i], err);
        gl_tensor_release(slot);
        at += tensors[i]->shape[d];
    }
    if (!status) {
        gl_node *node = NULL;
        status = gl_op_finish("cat", *out, count, (const gl_tensor *const *)tensors, cat_backward, &node, err);
        if (!status && node) node->params[0] = d;
    }
    if (status) {
        gl_tensor_release(*out);
        *out = NULL;
    }
    return status;
}

gl_status gl_tensor_stack(int count, gl_tensor *const *tensors, int dim, gl_tensor **out,
                          gl_error *err)
{
    char first[160], other[160];
    *out = NULL;
    if (count < 1) return gl_error_set(err, GL_EARG, 1, "stack: the list of tensors is empty");
    const gl_tensor *t0 = tensors[0];
    int ndim = t0->ndim + 1;
    int d = dim < 0 ? dim + ndim : dim;
    if (d < 0 || d >= ndim || ndim > GL_MAX_DIMS)
        return gl_error_set(err, GL_EINDEX, 2, "stack: dimension %d is out of range for %d-d tensors (shape %s)",
                            dim >= 0 ? dim + 1 : dim, t0->ndim, GL_SHAPE_STR(t0, first));
    for (int i = 1; i < count; i++)
        if (!gl_shape_equal(tensors[i]->ndim, tensors[i]->shape, t0->ndim, t0->shape))
            return gl_error_set(err, GL_ESHAPE, 1, "stack: tensor %d has shape %s, tensor 1 has %s; all must be equal",
                                i + 1, GL_SHAPE_STR(tensors[i], other), GL_SHAPE_STR(t0, first));
    gl_tensor **expanded = calloc((size_t)count, sizeof *expanded);
    if (!expanded) return gl_error_set(err, GL_ENOMEM, 0, "stack: out of memory");
    gl_status status = GL_OK;
    for (int i = 0; i < count && !status; i++)
        status = gl_tensor_unsqueeze(tensors[i], d, &expanded[i], err);
    if (!status) status = gl_tensor_cat(count, expanded, d, out, err);
    for (int i = 0; i < count; i++) gl_tensor_release(expanded[i]);
    free(expanded);
    return status;
}
