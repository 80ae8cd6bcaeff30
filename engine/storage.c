/*
 * storage.c — reference-counted float buffers, with a cache of freed large ones.
 *
 * A training loop allocates the same big buffers every step.  glibc serves
 * blocks over its mmap threshold with fresh pages and returns them on free,
 * so each such tensor costs a page fault per 4 KiB touched (for a 40 MB
 * output, more time than the arithmetic).  Freed buffers of 256 KiB and more
 * are therefore kept in a small cache in the context and handed back to the
 * next request of exactly the same size.  Small buffers go to malloc, which
 * recycles them quickly by itself — once told not to give the top of its heap
 * back to the kernel whenever 128 KiB of it are free: by default it does, and
 * a step that frees a few dozen activations and then allocates them again
 * paid a brk call and two page faults per 8 KiB tensor (an 8 KiB add: 6-8 us
 * instead of 1.3 us).  So the first storage sets glibc's trim threshold to
 * 64 MiB; that also fixes its mmap threshold, which we set to the 32 MiB its
 * dynamic rule would reach anyway.  This tunes the process's malloc, as
 * MALLOC_TRIM_THRESHOLD_ in the environment would; one setting, made once.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

enum { CACHE_MIN_BYTES = 256 * 1024 };

int64_t gl_storage_max_numel(void)
{
    /* Refuse what cannot fit in physical memory instead of letting the kernel's
     * overcommit hand out pages that kill the process when touched. */
    long pages = sysconf(_SC_PHYS_PAGES);
    long page_size = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page_size <= 0) return INT64_MAX / 8;
    return (int64_t)pages * page_size / (int64_t)sizeof(float);
}

static pthread_once_t malloc_tuned = PTHREAD_ONCE_INIT;

static void tune_malloc(void)
{
#ifdef M_TRIM_THRESHOLD
    mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
#endif
}

static void *buffer_alloc(size_t bytes)
{
    pthread_once(&malloc_tuned, tune_malloc);
    if (bytes < CACHE_MIN_BYTES) return malloc(bytes);   /* 16-byte aligned: enough for SIMD loads */
    void *data = gl_context_cache_take(bytes);
    if (data) return data;
    if (posix_memalign(&data, 64, bytes) != 0) {
        /* Memory may be held by the cache: give it back and try once more. */
        gl_context_cache_clear();
        if (posix_memalign(&data, 64, bytes) != 0) return NULL;
    }
    return data;
}

static void buffer_free(void *data, size_t bytes)
{
    if (bytes >= CACHE_MIN_BYTES && gl_context_cache_put(data, bytes)) return;
    free(data);
}

gl_status gl_storage_new(int64_t numel, gl_storage **out, gl_error *err)
{
    *out = NULL;
    /* Ask the kernel for the memory size only for big requests: sysinfo is a
     * system call, too slow for every small tensor. */
    if (numel < 0 || (numel > (INT64_C(1) << 26) && numel > gl_storage_max_numel()))
        return gl_error_set(err, GL_ENOMEM, 0,
                            "cannot allocate %lld elements (%.3g GiB): more than this machine's memory",
                            (long long)numel, (double)numel * 4.0 / (1024.0 * 1024.0 * 1024.0));
    gl_storage *storage = gl_context_object_take(GL_POOL_STORAGE);
    if (!storage) storage = malloc(sizeof *storage);
    size_t bytes = (size_t)(numel > 0 ? numel : 1) * sizeof(float);
    bytes = (bytes + 63) & ~(size_t)63;
    void *data = storage ? buffer_alloc(bytes) : NULL;
    if (!data) {
        if (storage && !gl_context_object_put(GL_POOL_STORAGE, storage)) free(storage);
        return gl_error_set(err, GL_ENOMEM, 0, "cannot allocate %lld elements (%.3g GiB)",
                            (long long)numel, (double)numel * 4.0 / (1024.0 * 1024.0 * 1024.0));
    }
    storage->data = data;
    storage->numel = numel;
    storage->bytes = bytes;
    storage->refcount = 1;
    storage->version = 0;
    gl_context_note_allocation(bytes);
    *out = storage;
    return GL_OK;
}

void gl_storage_retain(gl_storage *storage) { storage->refcount++; }

void gl_storage_release(gl_storage *storage)
{
    if (!storage || --storage->refcount > 0) return;
    gl_context_note_free(storage->bytes);
    buffer_free(storage->data, storage->bytes);
    if (!gl_context_object_put(GL_POOL_STORAGE, storage)) free(storage);
}
