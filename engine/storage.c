/* storage.c — reference-counted, 64-byte aligned float buffers. */
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

int64_t gl_storage_max_numel(void)
{
    /* Refuse what cannot fit in physical memory instead of letting the kernel's
     * overcommit hand out pages that kill the process when touched. */
    long pages = sysconf(_SC_PHYS_PAGES);
    long page_size = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page_size <= 0) return INT64_MAX / 8;
    return (int64_t)pages * page_size / (int64_t)sizeof(float);
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
    gl_storage *storage = malloc(sizeof *storage);
    void *data = NULL;
    size_t bytes = (size_t)(numel > 0 ? numel : 1) * sizeof(float);
    bytes = (bytes + 63) & ~(size_t)63;
    if (!storage || posix_memalign(&data, 64, bytes) != 0) {
        free(storage);
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
    free(storage->data);
    free(storage);
}
