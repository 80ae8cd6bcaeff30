/*
 * dropout.c — inverted dropout.
 *
 *   forward:  y = x * mask,  mask[i] = 1/(1-p) with probability 1-p, else 0
 *   backward: dx = g * mask
 */
#include <math.h>

#include "autograd.h"

/* Saved: mask. */
static gl_status dropout_backward(gl_node *node, gl_tensor *g, gl_tensor **grads, gl_error *err)
{
    return gl_tensor_binary(GL_OP_MUL, g, node->saved[0], &grads[0], err);
}

gl_status gl_dropout(const gl_tensor *x, float p, bool training, gl_tensor **out, gl_error *err)
{
    *out = NULL;
    if (!(p >= 0.0f && p <= 1.0f))
        return gl_error_set(err, GL_EARG, 2, "dropout: p must be in [0, 1], got %g", (double)p);
    if (!training || p == 0.0f) {
        /* The identity, still a node so gradients flow and the graph is uniform. */
        gl_tensor *ones = NULL;
        gl_status status = gl_tensor_ones(0, NULL, &ones, err);
        if (!status) status = gl_tensor_binary(GL_OP_MUL, x, ones, out, err);
        gl_tensor_release(ones);
        return status;
    }
    gl_tensor *mask = NULL;
    gl_status status = gl_tensor_empty(x->ndim, x->shape, &mask, err);
    if (status) return status;
    float *m = gl_tensor_data(mask);
    int64_t n = gl_tensor_numel(mask);
    float keep_scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    /* 24 random bits per element compared with p: exact for p on a 2^-24 grid. */
    uint32_t threshold = (uint32_t)llround((double)p * 16777216.0);
    for (int64_t i = 0; i < n; i++) m[i] = (uint32_t)(gl_random_u64() >> 40) >= threshold ? keep_scale : 0.0f;
    bool grad_mode = gl_grad_enabled();
    gl_set_grad_enabled(false);   /* the product below is this op's forward, not a node of its own */
    status = gl_tensor_binary(GL_OP_MUL, x, mask, out, err);
    gl_set_grad_enabled(grad_mode);
    if (!status) {
        const gl_tensor *inputs[1] = {x};
        gl_node *node = NULL;
        status = gl_op_finish("dropout", *out, 1, inputs, dropout_backward, &node, err);
        if (!status && node) status = gl_node_save(node, mask, err);
    }
    gl_tensor_release(mask);
    if (status) {
        gl_tensor_release(*out);
        *out = NULL;
    }
    return status;
}
