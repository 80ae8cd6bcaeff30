/*
 * autograd.h — the graph recorded by differentiable ops (internal).
 *
 * Every op ends with gl_op_finish(): in anomaly mode it checks the output for
 * NaN/Inf, and when an input takes part in autograd (and grad mode is on) it
 * records a gl_node on the output.  The op's backward function, kept beside
 * its forward, receives the gradient of the output and returns one gradient
 * per input (NULL where the input needs none), each shaped like that input.
 */
#ifndef GRADLAB_AUTOGRAD_H
#define GRADLAB_AUTOGRAD_H

#include "internal.h"

enum { GL_NODE_MAX_SAVED = 4, GL_NODE_MAX_PARAMS = 2 * GL_MAX_DIMS, GL_NODE_INLINE_INPUTS = 3 };

typedef gl_status (*gl_backward_fn)(gl_node *node, gl_tensor *grad_output, gl_tensor **grad_inputs,
                                    gl_error *err);

typedef struct gl_node_input {
    gl_node *node;      /* producer of this input (strong), or NULL */
    gl_tensor *leaf;    /* the input itself when it is a leaf that wants grad (strong) */
    int ndim;
    int64_t shape[GL_MAX_DIMS];
} gl_node_input;

struct gl_node {
    int refcount;
    const char *name;              /* op name, static */
    gl_backward_fn backward;
    int ninputs;
    gl_node_input *inputs;         /* `inline_inputs`, or malloc'ed past GL_NODE_INLINE_INPUTS */
    gl_node_input inline_inputs[GL_NODE_INLINE_INPUTS];
    gl_tensor *saved[GL_NODE_MAX_SAVED];   /* detached aliases of what backward reads */
    uint64_t saved_version[GL_NODE_MAX_SAVED];
    int nsaved;
    double scalars[4];
    int64_t params[GL_NODE_MAX_PARAMS];
    int out_ndim;
    int64_t out_shape[GL_MAX_DIMS];
    gl_tensor *retained;           /* weak: the output, when it asked retain_grad */
    char module_path[64];          /* the module path current at record time (may be cut) */
    bool freed;                    /* saved tensors dropped by a backward */
    bool watch;                    /* take statistics of the gradient passing (monitor.c) */
    unsigned char watch_what;      /* which statistics (GL_STATS_* of monitor.h) */
    bool watch_seen;
    bool watch_fused;              /* the op's backward takes the squares itself (gl_node_watch_sink) */
    gl_tensor_stats watch_stats;
    /* Scratch of one backward pass. */
    bool visited;
    int pending;
    gl_tensor *grad;
};

/* Anomaly check and recording; see the header comment.  `inputs` may hold
 * NULL for arguments that are not tensors.  On success *node (if non-NULL)
 * receives the new node, or NULL when nothing was recorded. */
gl_status gl_op_finish(const char *name, gl_tensor *out, int count, const gl_tensor *const *inputs,
                       gl_backward_fn backward, gl_node **node, gl_error *err);
/* Saves a detached alias of t for backward (checked against in-place edits). */
gl_status gl_node_save(gl_node *node, const gl_tensor *t, gl_error *err);
/* Whether input i of the node needs a gradient. */
bool gl_node_input_needs_grad(const gl_node *node, int i);
void gl_node_release(gl_node *node);

/* The backward signal, fused: an op whose backward reads its whole output
 * gradient in a loop of its own sets node->watch_fused when it records the
 * node; backward then skips its separate pass over that gradient, and the
 * op's backward adds up the squares in its loop when this returns a sink
 * (the squares alone are asked for) and hands them to gl_stats_squares_done
 * (monitor.h).  A backward that does not, or whose float sums cannot be
 * trusted, leaves the sink alone and backward takes the separate pass after
 * it.  NULL: nobody watches, or more than the squares is wanted. */
static inline gl_tensor_stats *gl_node_watch_sink(gl_node *node)
{
    return node->watch && node->watch_fused && node->watch_what == 0 ? &node->watch_stats : NULL;
}

/* Hands a fused backward's sum of squares over `count` gradient values to
 * the node's watcher (monitor.c); a sum the float lanes may have under- or
 * overflowed (or a non-finite one) is left for backward's careful pass. */
void gl_node_watch_done(gl_node *node, double squares, int64_t count);

/* Sums `grad` down to `shape` (undoing broadcasting). */
gl_status gl_grad_reduce_to(gl_tensor *grad, int ndim, const int64_t *shape, gl_tensor **out,
                            gl_error *err);
/* Returns t itself (retained) if contiguous, else an untracked copy. */
gl_status gl_tensor_contiguous_untracked(const gl_tensor *t, gl_tensor **out, gl_error *err);
gl_status gl_tensor_clone_untracked(const gl_tensor *t, gl_tensor **out, gl_error *err);
/* True when every element is finite. */
bool gl_tensor_all_finite(const gl_tensor *t);

#endif
