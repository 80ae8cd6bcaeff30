/*
 * parallel.c — runs the parts of one kernel call on the engine's threads.
 *
 * A kernel cuts its work into `count` disjoint parts (channels, samples) and
 * hands them here: part 0 runs on the calling thread, parts 1.. on threads
 * started for the call and joined before it returns.  Starting a thread costs
 * some 10-30 us, so callers ask gl_parallel_parts for as many parts as the
 * work pays for.  A thread that cannot start leaves its part to the caller:
 * slower, never wrong.  Which thread runs a part never changes its result.
 * While parts run, OpenBLAS is held to one thread, so products inside a part
 * do not start threads of their own on the cores the parts already use.
 */
#include <pthread.h>

#include "internal.h"

typedef struct parallel_part {
    void (*fn)(void *arg, int part);
    void *arg;
    int part;
} parallel_part;

static void *parallel_part_run(void *p)
{
    parallel_part *part = p;
    part->fn(part->arg, part->part);
    return NULL;
}

int gl_parallel_parts(double work, double min_per_part, int64_t max_parts)
{
    int64_t n = gl_get_num_threads();
    if (n > max_parts) n = max_parts;
    if (n > GL_PARALLEL_MAX) n = GL_PARALLEL_MAX;
    if ((double)n > work / min_per_part) n = (int64_t)(work / min_per_part);
    return n < 1 ? 1 : (int)n;
}

void gl_parallel_run(int count, void (*fn)(void *arg, int part), void *arg)
{
    if (count > GL_PARALLEL_MAX) count = GL_PARALLEL_MAX;
    if (count <= 1) {
        fn(arg, 0);
        return;
    }
    pthread_t ids[GL_PARALLEL_MAX];
    parallel_part parts[GL_PARALLEL_MAX];
    bool started[GL_PARALLEL_MAX] = {false};
    gl_blas_set_threads(1);
    for (int i = 1; i < count; i++) {
        parts[i] = (parallel_part){fn, arg, i};
        started[i] = pthread_create(&ids[i], NULL, parallel_part_run, &parts[i]) == 0;
    }
    fn(arg, 0);
    for (int i = 1; i < count; i++) {
        if (started[i]) pthread_join(ids[i], NULL);
        else fn(arg, i);
    }
    gl_blas_set_threads(gl_get_num_threads());
}
