/*
 * internal.h — helpers shared by the engine's .c files; not installed.
 */
#ifndef GRADLAB_INTERNAL_H
#define GRADLAB_INTERNAL_H

#include "gradlab.h"

/* Writes "{2, 3}" into a stack buffer for messages. */
#define GL_SHAPE_STR(t, buffer) gl_shape_format((t)->ndim, (t)->shape, buffer, sizeof buffer)

/* A layout with dimensions merged where memory is contiguous across them, so
 * loops run over as few, as long, inner rows as possible. */
typedef struct gl_layout {
    int ndim;
    int64_t shape[GL_MAX_DIMS];
    int64_t stride[GL_MAX_DIMS];
} gl_layout;

/* Coalesces up to three operands sharing one shape (strides may be 0). */
int gl_layout_coalesce(int ndim, const int64_t *shape, int count, const int64_t *const *strides,
                       int64_t *out_shape, int64_t (*out_strides)[GL_MAX_DIMS]);

/* Allocates a tensor header with refcount 1 and no storage. */
gl_tensor *gl_tensor_header_new(void);
/* Contiguous strides for shape. */
void gl_strides_contiguous(int ndim, const int64_t *shape, int64_t *stride);
/* Normalizes a possibly negative 0-based dim against ndim; -1 when out of range. */
int gl_dim_wrap(int dim, int ndim);

/* Odometer over the outer dims of a layout (all but the last). */
typedef struct gl_counter {
    int ndim;
    int64_t index[GL_MAX_DIMS];
} gl_counter;

/* Parts of one kernel call on the engine's threads (parallel.c): fn(arg, i) for
 * i in [0, count), part 0 on the caller; gl_parallel_run_blas for parts that call
 * BLAS, which holds OpenBLAS to one thread meanwhile.  gl_parallel_parts: how many parts
 * `work` units pay for at `min_per_part` each, at most the thread count,
 * max_parts and GL_PARALLEL_MAX, at least 1. */
enum { GL_PARALLEL_MAX = 16 };
int gl_parallel_parts(double work, double min_per_part, int64_t max_parts);
void gl_parallel_run(int count, void (*fn)(void *arg, int part), void *arg);
void gl_parallel_run_blas(int count, void (*fn)(void *arg, int part), void *arg);

/* The cache of freed large buffers (context.c, used by storage.c). */
enum { GL_CACHE_ENTRIES = 64 };
#define GL_CACHE_MAX_BYTES ((size_t)512 << 20)
void *gl_context_cache_take(size_t bytes);          /* NULL when none of that size */
bool gl_context_cache_put(void *data, size_t bytes); /* false: caller frees */
void gl_context_cache_clear(void);

/* Free lists of the engine's small fixed-size objects (context.c): a training
 * step makes and drops hundreds of tensor headers, storages and graph nodes,
 * and reusing them spares malloc, free and zeroing. */
typedef enum { GL_POOL_TENSOR, GL_POOL_STORAGE, GL_POOL_NODE, GL_POOL_COUNT } gl_pool;
void *gl_context_object_take(gl_pool pool);          /* NULL when the list is empty */
bool gl_context_object_put(gl_pool pool, void *object);   /* false: caller frees */

/* OpenBLAS's own thread count (blas.c); the engine's count lives in context.c,
 * and kernels that split work over their own threads set BLAS's to 1 meanwhile. */
int gl_blas_get_threads(void);
void gl_blas_set_threads(int threads);

/* Counts bytes for gl_allocated_bytes_total (context.c). */
void gl_context_note_allocation(uint64_t bytes);
void gl_context_note_free(uint64_t bytes);

#endif
