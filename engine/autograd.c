/*
 * autograd.c — recording the graph, and the backward pass over it.
 *
 * Ownership: an op's output holds the one strong reference to its node
 * (tensor->grad_fn); a node holds strong references to the nodes of its
 * inputs and to leaf inputs, and detached aliases of what its backward reads.
 * The graph is therefore a DAG of references with no cycles: when the last
 * tensor of a graph is collected, the graph goes with it.  A node never holds
 * its own output strongly (retain_grad keeps a weak pointer the output clears).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd.h"
#include "monitor.h"

const char *gl_node_name(const gl_node *node) { return node ? node->name : "leaf"; }

bool gl_tensor_all_finite(const gl_tensor *t)
{
    int64_t n = gl_tensor_numel(t);
    if (gl_tensor_is_contiguous(t)) {
        const float *x = gl_tensor_data(t);
        float acc = 0.0f;
        for (int64_t i = 0; i < n; i++) acc += x[i] * 0.0f;   /* NaN or Inf make it NaN */
        return acc == 0.0f;
    }
    gl_tensor *dense = NULL;
    if (gl_tensor_clone_untracked(t, &dense, NULL)) return true;   /* cannot check: don't claim */
    bool finite = gl_tensor_all_finite(dense);
    gl_tensor_release(dense);
    return finite;
}

gl_status gl_tensor_clone_untracked(const gl_tensor *t, gl_tensor **out, gl_error *err)
{
    gl_status status = gl_tensor_empty(t->ndim, t->shape, out, err);
    if (status) return status;
    gl_tensor_gather_to(t, gl_tensor_data(*out));
    return GL_OK;
}

gl_status gl_tensor_contiguous_untracked(const gl_tensor *t, gl_tensor **out, gl_error *err)
{
    if (gl_tensor_is_contiguous(t)) {
        gl_tensor_retain((gl_tensor *)t);
        *out = (gl_tensor *)t;
        return GL_OK;
    }
    return gl_tensor_clone_untracked(t, out, err);
}

/* ------------------------------------------------------------------ nodes */

void gl_node_release(gl_node *node)
{
    /* Iterative, so releasing the graph of a 10^5-step unrolled loop does not
     * recurse 10^5 deep. */
    gl_node *local[64];
    gl_node **stack = local;
    size_t count = 0, capacity = 64;
    if (node) stack[count++] = node;
    while (count > 0) {
        gl_node *n = stack[--count];
        if (--n->refcount > 0) continue;
        for (int i = 0; i < n->ninputs; i++) {
            gl_tensor_release(n->inputs[i].leaf);
            gl_node *child = n->inputs[i].node;
            if (!child) continue;
            if (count == capacity) {
                gl_node **grown = malloc(sizeof *grown * capacity * 2);
                if (!grown) {   /* out of memory while freeing: leak this branch, never crash */
                    continue;
                }
                memcpy(grown, stack, sizeof *grown * count);
                if (stack != local) free(stack);
                stack = grown;
                capacity *= 2;
            }
            stack[count++] = child;
        }
        for (int i = 0; i < n->nsaved; i++) gl_tensor_release(n->saved[i]);
        gl_tensor_release(n->grad);
        if (n->inputs != n->inline_inputs) free(n->inputs);
        if (!gl_context_object_put(GL_POOL_NODE, n)) free(n);
    }
    if (stack != local) free(stack);
}

bool gl_node_input_needs_grad(const gl_node *node, int i)
{
    return i < node->ninputs && (node->inputs[i].node || node->inputs[i].leaf);
}

static gl_status detached_alias(const gl_tensor *t, gl_tensor **out, gl_error *err)
{
    return gl_tensor_view_of(t->storage, t->ndim, t->shape, t->stride, t->offset, out, err);
}

gl_status gl_node_save(gl_node *node, const gl_tensor *t, gl_error *err)
{
    if (node->nsaved >= GL_NODE_MAX_SAVED)
        return gl_error_set(err, GL_ESTATE, 0, "%s: too many saved tensors", node->name);
    gl_status status = detached_alias(t, &node->saved[node->nsaved], err);
    if (status) return status;
    node->saved_version[node->nsaved] = t->storage->version;
    node->nsaved++;
    return GL_OK;
}

gl_status gl_op_finish(const char *name, gl_tensor *out, int count, const gl_tensor *const *inputs,
                       gl_backward_fn backward, gl_node **node_out, gl_error *err)
{
    if (node_out) *node_out = NULL;
    if (gl_detect_anomaly_enabled() && !gl_tensor_all_finite(out)) {
        const char *path = gl_module_path();
        return gl_error_set(err, GL_EARG, 0, "anomaly: %s produced NaN or Inf in its forward output%s%s%s",
                            name, *path ? " (module " : "", path, *path ? ")" : "");
    }
    if (!backward || !gl_grad_enabled()) return GL_OK;
    bool needed = false;
    for (int i = 0; i < count && !needed; i++) needed = inputs[i] && gl_tensor_tracks_grad(inputs[i]);
    if (!needed) return GL_OK;

    gl_node *node = gl_context_object_take(GL_POOL_NODE);
    if (node) memset(node, 0, sizeof *node);
    else node = calloc(1, sizeof *node);
    gl_node_input *slots = NULL;
    if (node) slots = count <= GL_NODE_INLINE_INPUTS ? node->inline_inputs : calloc((size_t)count, sizeof *slots);
    if (!node || !slots) {
        free(node);
        return gl_error_set(err, GL_ENOMEM, 0, "%s: out of memory recording the graph", name);
    }
    const char *path = gl_module_path();
    size_t length = strlen(path);
    if (length >= sizeof node->module_path) length = sizeof node->module_path - 1;
    memcpy(node->module_path, path, length);
    node->module_path[length] = '\0';
    node->refcount = 1;
    node->name = name;
    node->backward = backward;
    node->ninputs = count;
    node->inputs = slots;
    node->out_ndim = out->ndim;
    memcpy(node->out_shape, out->shape, sizeof node->out_shape);
    for (int i = 0; i < count; i++) {
        const gl_tensor *in = inputs[i];
        if (!in) continue;
        slots[i].ndim = in->ndim;
        memcpy(slots[i].shape, in->shape, sizeof slots[i].shape);
        if (in->grad_fn) {
            slots[i].node = in->grad_fn;
            in->grad_fn->refcount++;
        } else if (in->requires_grad) {
            slots[i].leaf = (gl_tensor *)in;
            gl_tensor_retain((gl_tensor *)in);
        }
    }
    gl_node_release(out->grad_fn);   /* an op's output is always fresh; be safe anyway */
    out->grad_fn = node;
    if (node_out) *node_out = node;
    return GL_OK;
}

/* -------------------------------------------------------------- tensors */

gl_status gl_tensor_set_requires_grad(gl_tensor *t, bool requires_grad, gl_error *err)
{
    if (t->grad_fn)
        return gl_error_set(err, GL_EARG, 1,
                            "requires_grad: only leaf tensors can be marked; this one was made by '%s' (use detach() first)",
                            t->grad_fn->name);
    t->requires_grad = requires_grad;
    return GL_OK;
}

gl_status gl_tensor_detach(gl_tensor *t, gl_tensor **out, gl_error *err)
{
    return detached_alias(t, out, err);
}

gl_status gl_tensor_retain_grad(gl_tensor *t, gl_error *err)
{
    if (!gl_tensor_tracks_grad(t))
        return gl_error_set(err, GL_EARG, 1,
                            "retain_grad: the tensor takes no part in autograd (no parameter led to it)");
    if (t->grad_fn) {
        t->grad_fn->retained = t;
        t->retains_grad = true;
    }
    return GL_OK;
}

void gl_tensor_zero_grad(gl_tensor *t)
{
    gl_tensor_release(t->grad);
    t->grad = NULL;
}

gl_status gl_tensor_set_name(gl_tensor *t, const char *name, gl_error *err)
{
    char *copy = name ? strdup(name) : NULL;
    if (name && !copy) return gl_error_set(err, GL_ENOMEM, 0, "set_name: out of memory");
    free(t->name);
    t->name = copy;
    return GL_OK;
}

/* ------------------------------------------------------------ backward */

/* target += g, where *target may be NULL; never writes into g, which the graph may share. */
static gl_status accumulate(gl_tensor **target, gl_tensor *g, bool may_take, gl_error *err)
{
    if (!*target) {
        if (may_take && g->refcount == 1 && gl_tensor_is_contiguous(g)) {
            gl_tensor_retain(g);
            *target = g;
            return GL_OK;
        }
        return gl_tensor_clone_untracked(g, target, err);
    }
    if ((*target)->refcount == 1 && (*target)->storage->refcount == 1)
        return gl_tensor_add_inplace(*target, g, 1.0f, err);
    gl_tensor *sum = NULL;
    gl_status status = gl_tensor_binary(GL_OP_ADD, *target, g, &sum, err);
    if (status) return status;
    gl_tensor_release(*target);
    *target = sum;
    return GL_OK;
}

static gl_status accumulate_leaf(gl_tensor *leaf, gl_tensor *g, gl_error *err)
{
    char want[160], have[160];
    if (!gl_shape_equal(leaf->ndim, leaf->shape, g->ndim, g->shape))
        return gl_error_set(err, GL_ESHAPE, 0, "backward: gradient of shape %s for a leaf of shape %s",
                            GL_SHAPE_STR(g, have), GL_SHAPE_STR(leaf, want));
    if (leaf->grad) {
        /* The user's .grad tensor: add in place so references they hold see it. */
        return gl_tensor_add_inplace(leaf->grad, g, 1.0f, err);
    }
    /* A gradient nothing else holds, in a buffer nothing else shares, becomes
     * .grad as it is (a weight's gradient: megabytes not copied every step). */
    if (g->refcount == 1 && g->storage->refcount == 1 && gl_tensor_is_contiguous(g) && g->offset == 0) {
        gl_tensor_retain(g);
        leaf->grad = g;
        return GL_OK;
    }
    return gl_tensor_clone_untracked(g, &leaf->grad, err);
}

static gl_status anomaly_in_backward(const gl_node *n, int input, gl_error *err)
{
    const char *path = n->module_path;
    const gl_tensor *leaf = n->inputs[input].leaf;
    return gl_error_set(err, GL_EARG, 0,
                        "anomaly: backward of %s produced NaN or Inf in the gradient of its input %d%s%s%s%s%s",
                        n->name, input + 1, *path ? " (module " : "", path, *path ? ")" : "",
                        leaf && leaf->name ? ", parameter " : "", leaf && leaf->name ? leaf->name : "");
}

typedef struct node_list {
    gl_node **items;
    size_t count, capacity;
} node_list;

static bool list_push(node_list *list, gl_node *n)
{
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 64;
        gl_node **grown = realloc(list->items, sizeof *grown * capacity);
        if (!grown) return false;
        list->items = grown;
        list->capacity = capacity;
    }
    list->items[list->count++] = n;
    return true;
}

static gl_status run_backward(gl_node *root_node, gl_tensor *seed, bool retain_graph, node_list *all,
                              gl_error *err)
{
    /* Collect the graph reachable from the root and count each node's consumers. */
    node_list stack = {0}, ready = {0};
    gl_status status = GL_OK;
    root_node->visited = true;
    if (!list_push(all, root_node) || !list_push(&stack, root_node))
        status = gl_error_set(err, GL_ENOMEM, 0, "backward: out of memory");
    while (!status && stack.count > 0) {
        gl_node *n = stack.items[--stack.count];
        for (int i = 0; i < n->ninputs; i++) {
            gl_node *child = n->inputs[i].node;
            if (!child) continue;
            child->pending++;
            if (!child->visited) {
                child->visited = true;
                if (!list_push(all, child) || !list_push(&stack, child))
                    status = gl_error_set(err, GL_ENOMEM, 0, "backward: out of memory");
            }
        }
    }
    free(stack.items);
    if (status) return status;

    gl_tensor_retain(seed);
    root_node->grad = seed;
    if (!list_push(&ready, root_node)) status = gl_error_set(err, GL_ENOMEM, 0, "backward: out of memory");
    gl_tensor *grads_local[8];
    while (!status && ready.count > 0) {
        gl_node *n = ready.items[--ready.count];
        gl_tensor *g = n->grad;
        if (n->freed) {
            status = gl_error_set(err, GL_ESTATE, 0,
                                  "backward: the graph through '%s' was already freed by an earlier backward; pass {retain_graph = true} to the first backward to call it twice",
                                  n->name);
            break;
        }
        for (int i = 0; i < n->nsaved && !status; i++)
            if (n->saved[i]->storage->version != n->saved_version[i])
                status = gl_error_set(err, GL_ESTATE, 0,
                                      "backward: a tensor that '%s' saved for its gradient was modified in place afterwards (copy/fill/add_/mul_/set); compute with a clone instead",
                                      n->name);
        if (status) break;
        if (n->retained) {
            status = accumulate(&n->retained->grad, g, false, err);
            if (status) break;
        }
        /* The backward signal: in the op's own backward loop when it can
         * (autograd.h), else in a pass of its own over g. */
        bool fused = gl_node_watch_sink(n) != NULL;
        if (n->watch && !fused) {
            gl_stats_scan(g, n->watch_what, -INFINITY, INFINITY, &n->watch_stats);
            n->watch_seen = true;
        }
        if (fused) n->watch_seen = false;
        gl_tensor **grads = n->ninputs <= 8 ? grads_local : calloc((size_t)n->ninputs, sizeof *grads);
        if (!grads) {
            status = gl_error_set(err, GL_ENOMEM, 0, "backward: out of memory");
            break;
        }
        memset(grads, 0, sizeof *grads * (size_t)n->ninputs);
        /* Backward's own ops are checked as gradients below, not as forwards. */
        bool anomaly = gl_detect_anomaly_enabled();
        gl_set_detect_anomaly(false);
        status = n->backward(n, g, grads, err);
        gl_set_detect_anomaly(anomaly);
        if (fused && !n->watch_seen) {   /* the op declined: g is still here, unchanged */
            gl_stats_scan(g, n->watch_what, -INFINITY, INFINITY, &n->watch_stats);
            n->watch_seen = true;
        }
        /* g is not read below: drop the node's hold on it now, so that the last input it goes
         * to may take it instead of a copy (an add passes g itself to both inputs). */
        gl_tensor_release(n->grad);
        n->grad = NULL;
        for (int i = 0; i < n->ninputs; i++) {
            gl_tensor *gi = grads[i];
            if (!gi) continue;
            if (!status && gl_detect_anomaly_enabled() && !gl_tensor_all_finite(gi))
                status = anomaly_in_backward(n, i, err);
            if (!status && !gl_shape_equal(gi->ndim, gi->shape, n->inputs[i].ndim, n->inputs[i].shape)) {
                char have[160], want[160];
                status = gl_error_set(err, GL_ESHAPE, 0,
                                      "backward of %s: internal error, gradient %s for input of shape %s",
                                      n->name, GL_SHAPE_STR(gi, have),
                                      gl_shape_format(n->inputs[i].ndim, n->inputs[i].shape, want, sizeof want));
            }
            if (!status && n->inputs[i].leaf) status = accumulate_leaf(n->inputs[i].leaf, gi, err);
            gl_node *child = n->inputs[i].node;
            if (!status && child) {
                status = accumulate(&child->grad, gi, true, err);
                if (!status && --child->pending == 0 && !list_push(&ready, child))
                    status = gl_error_set(err, GL_ENOMEM, 0, "backward: out of memory");
            }
            gl_tensor_release(gi);
        }
        if (grads != grads_local) free(grads);
        if (!retain_graph) {
            for (int i = 0; i < n->nsaved; i++) gl_tensor_release(n->saved[i]);
            n->nsaved = 0;
            n->freed = true;
        }
    }
    free(ready.items);
    return status;
}

gl_status gl_tensor_backward(gl_tensor *root, const gl_tensor *grad, bool retain_graph,
                             gl_error *err)
{
    char have[160], want[160];
    if (!gl_tensor_tracks_grad(root))
        return gl_error_set(err, GL_EARG, 1,
                            "backward: this tensor does not require grad: no parameter led to it (mark leaves with gl.param or requires_grad(true), and check gl.no_grad)");
    gl_tensor *seed = NULL;
    gl_status status;
    if (grad) {
        if (!gl_shape_equal(grad->ndim, grad->shape, root->ndim, root->shape))
            return gl_error_set(err, GL_ESHAPE, 1, "backward: grad has shape %s, the tensor has %s",
                                GL_SHAPE_STR(grad, have), GL_SHAPE_STR(root, want));
        status = gl_tensor_clone_untracked(grad, &seed, err);
    } else {
        if (gl_tensor_numel(root) != 1)
            return gl_error_set(err, GL_EARG, 1,
                                "backward: a gradient can be implied only for a 1-element output; this one has shape %s (pass grad, or reduce with sum/mean)",
                                GL_SHAPE_STR(root, have));
        status = gl_tensor_ones(root->ndim, root->shape, &seed, err);
    }
    if (status) return status;

    bool grad_mode = gl_grad_enabled();
    gl_set_grad_enabled(false);   /* backward computes plain tensors, records nothing */
    if (!root->grad_fn) {
        status = accumulate_leaf(root, seed, err);
    } else {
        node_list all = {0};
        status = run_backward(root->grad_fn, seed, retain_graph, &all, err);
        for (size_t i = 0; i < all.count; i++) {   /* leave no scratch behind, even on error */
            all.items[i]->visited = false;
            all.items[i]->pending = 0;
            gl_tensor_release(all.items[i]->grad);
            all.items[i]->grad = NULL;
        }
        free(all.items);
    }
    gl_set_grad_enabled(grad_mode);
    gl_tensor_release(seed);
    return status;
}

/* ------------------------------------------------------------ helpers */

gl_status gl_grad_reduce_to(gl_tensor *grad, int ndim, const int64_t *shape, gl_tensor **out,
                            gl_error *err)
{
    if (gl_shape_equal(grad->ndim, grad->shape, ndim, shape)) {
        gl_tensor_retain(grad);
        *out = grad;
        return GL_OK;
    }
    gl_tensor *current = grad;
    gl_tensor_retain(current);
    gl_status status = GL_OK;
    int lead = grad->ndim - ndim;
    /* Sum away leading dims, then dims that were broadcast from size 1. */
    for (int d = 0; d < lead && !status; d++) {
        gl_tensor *next = NULL;
        status = gl_tensor_reduce_dim(GL_REDUCE_SUM, current, 0, false, &next, NULL, err);
        gl_tensor_release(current);
        current = next;
    }
    for (int d = 0; d < ndim && !status; d++) {
        if (shape[d] == 1 && current->shape[d] != 1) {
            gl_tensor *next = NULL;
            status = gl_tensor_reduce_dim(GL_REDUCE_SUM, current, d, true, &next, NULL, err);
            gl_tensor_release(current);
            current = next;
        }
    }
    if (status) {
        gl_tensor_release(current);
        return status;
    }
    *out = current;
    return GL_OK;
}
