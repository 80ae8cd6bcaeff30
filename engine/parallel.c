/*
 * parallel.c — runs the parts of one kernel call on the engine's threads.
 *
 * A kernel cuts its work into `count` disjoint parts (channels, samples) and
 * hands them here: part 0 runs on the calling thread, part k on worker k of a
 * small pool of threads started on first use and kept, and the call returns
 * when all parts are done.  Callers ask gl_parallel_parts for as many parts as
 * the work pays for.  Which thread runs a part never changes its result.
 *
 * Cost: starting and joining a thread per call took 25-45 us here.  A worker
 * that has just finished a part watches for the next job for 50 us before it
 * sleeps (a training step posts jobs in bursts a few microseconds apart, and
 * a sleeping worker takes ~8 us to wake), and a job is handed over through a
 * few atomics in separate cache lines, without a lock: ~1-2 us per call.
 *
 * A worker that cannot start leaves its part to the caller: slower, never
 * wrong; so does a call made while the pool is busy (from inside a part, or
 * from another thread of the program).  While the parts of
 * gl_parallel_run_blas run, OpenBLAS is held to one thread, so products inside
 * a part do not start threads of their own on the cores the parts already use.
 * gl_parallel_run leaves OpenBLAS alone: setting its thread count back after
 * every call wakes its idle threads, which then spin in sched_yield on the
 * cores the next parts need (~20 % of a core with conv calls alone).  The pool is the engine's only state of
 * this kind (the thread settings of context.c decide how many parts there
 * are).  After fork() the child has no workers and starts its own on first use.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "internal.h"

typedef void (*part_function)(void *arg, int part);

/* Fields written by different threads live in different cache lines. */
static struct {
    /* The job, written by the caller.  `sequence` is a sequence lock: odd
     * while the fields change, even when a job is posted (2 per job). */
    _Alignas(64) atomic_ulong sequence;
    _Atomic(part_function) fn;
    _Atomic(void *) arg;
    atomic_int count;
    /* Completion: worker parts not done yet, and whether the caller sleeps. */
    _Alignas(64) atomic_int remaining;
    atomic_int caller_sleeping;
    /* Sleeping, starting and exclusion: the slow paths. */
    _Alignas(64) atomic_int sleepers;
    pthread_mutex_t lock;         /* with the condition variables */
    pthread_cond_t wake;          /* workers: a job was posted */
    pthread_cond_t finished;      /* caller: the last worker part is done */
    pthread_mutex_t busy;         /* held by the caller of a job: one job at a time */
    int workers;                  /* started workers: indices 1..workers (under busy) */
} pool = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .finished = PTHREAD_COND_INITIALIZER,
    .busy = PTHREAD_MUTEX_INITIALIZER,
};

static pthread_once_t fork_handler_once = PTHREAD_ONCE_INIT;

#ifndef WORKER_SPIN_SECONDS
#define WORKER_SPIN_SECONDS 50e-6
#endif
#ifndef CALLER_SPIN_SECONDS
#define CALLER_SPIN_SECONDS 200e-6
#endif

static inline void spin_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static double seconds_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

/* The child of a fork has only the thread that forked: no workers. */
static void pool_after_fork_in_child(void)
{
    pthread_mutex_init(&pool.lock, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pthread_cond_init(&pool.finished, NULL);
    pthread_mutex_init(&pool.busy, NULL);
    atomic_store(&pool.sleepers, 0);
    atomic_store(&pool.caller_sleeping, 0);
    pool.workers = 0;
}

static void register_fork_handler(void) { pthread_atfork(NULL, NULL, pool_after_fork_in_child); }

/* A posted job (even sequence) other than `seen`. */
static bool job_posted_after(unsigned long seen, unsigned long *sequence)
{
    *sequence = atomic_load(&pool.sequence);
    return *sequence != seen && *sequence % 2 == 0;
}

/* Waits for the job after `seen`: spins a while, then sleeps.  Returns its sequence. */
static unsigned long wait_for_job(unsigned long seen)
{
    unsigned long sequence;
    double until = seconds_now() + WORKER_SPIN_SECONDS;
    for (int spin = 1; !job_posted_after(seen, &sequence); spin++) {
        spin_pause();
        if (spin % 64 == 0 && seconds_now() > until) break;
    }
    if (job_posted_after(seen, &sequence)) return sequence;
    pthread_mutex_lock(&pool.lock);
    atomic_fetch_add(&pool.sleepers, 1);   /* before the check: see gl_parallel_run */
    while (!job_posted_after(seen, &sequence)) pthread_cond_wait(&pool.wake, &pool.lock);
    atomic_fetch_sub(&pool.sleepers, 1);
    pthread_mutex_unlock(&pool.lock);
    return sequence;
}

static void *worker_main(void *p)
{
    int index = (int)(intptr_t)p;
    unsigned long seen = 0;   /* a new worker runs the job being posted (sequence >= 2) */
    for (;;) {
        unsigned long sequence = wait_for_job(seen);
        part_function fn = atomic_load(&pool.fn);
        void *arg = atomic_load(&pool.arg);
        int count = atomic_load(&pool.count);
        /* A job this worker has no part in may be replaced while it reads:
         * read again then.  One it has a part in waits for this part. */
        if (atomic_load(&pool.sequence) != sequence) continue;
        seen = sequence;
        if (index >= count) continue;
        fn(arg, index);
        if (atomic_fetch_sub(&pool.remaining, 1) == 1 && atomic_load(&pool.caller_sleeping)) {
            pthread_mutex_lock(&pool.lock);
            pthread_cond_signal(&pool.finished);
            pthread_mutex_unlock(&pool.lock);
        }
    }
    return NULL;
}

/* Starts workers up to `wanted` (called holding pool.busy); returns how many exist. */
static int pool_grow(int wanted)
{
    pthread_once(&fork_handler_once, register_fork_handler);
    while (pool.workers < wanted) {
        pthread_t id;
        pthread_attr_t attributes;
        if (pthread_attr_init(&attributes) != 0) break;
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        int started = pthread_create(&id, &attributes, worker_main, (void *)(intptr_t)(pool.workers + 1));
        pthread_attr_destroy(&attributes);
        if (started != 0) break;
        pool.workers++;
    }
    return pool.workers;
}

int gl_parallel_parts(double work, double min_per_part, int64_t max_parts)
{
    int64_t n = gl_get_num_threads();
    if (n > max_parts) n = max_parts;
    if (n > GL_PARALLEL_MAX) n = GL_PARALLEL_MAX;
    if ((double)n > work / min_per_part) n = (int64_t)(work / min_per_part);
    return n < 1 ? 1 : (int)n;
}

static void run_parts(int count, void (*fn)(void *arg, int part), void *arg, bool blas)
{
    if (count > GL_PARALLEL_MAX) count = GL_PARALLEL_MAX;
    if (count <= 1) {
        fn(arg, 0);
        return;
    }
    if (pthread_mutex_trylock(&pool.busy) != 0) {   /* nested, or another thread's job */
        for (int i = 0; i < count; i++) fn(arg, i);
        return;
    }
    if (blas) gl_blas_set_threads(1);
    int helpers = pool_grow(count - 1);
    if (helpers > count - 1) helpers = count - 1;
    if (helpers > 0) {
        atomic_store(&pool.remaining, helpers);
        atomic_fetch_add(&pool.sequence, 1);   /* odd: the fields change */
        atomic_store(&pool.fn, fn);
        atomic_store(&pool.arg, arg);
        atomic_store(&pool.count, helpers + 1);   /* parts past the workers run here */
        atomic_fetch_add(&pool.sequence, 1);   /* even: posted */
        /* A worker counts itself a sleeper before it checks for a job, and we
         * post before we read the count: one of us sees the other. */
        if (atomic_load(&pool.sleepers) > 0) {
            pthread_mutex_lock(&pool.lock);
            pthread_cond_broadcast(&pool.wake);
            pthread_mutex_unlock(&pool.lock);
        }
    }

    fn(arg, 0);
    for (int i = helpers + 1; i < count; i++) fn(arg, i);

    double until = seconds_now() + CALLER_SPIN_SECONDS;
    for (int spin = 1; atomic_load(&pool.remaining) > 0; spin++) {
        spin_pause();
        if (spin % 64 == 0 && seconds_now() > until) break;
    }
    if (atomic_load(&pool.remaining) > 0) {
        pthread_mutex_lock(&pool.lock);
        atomic_store(&pool.caller_sleeping, 1);   /* before the check, as the workers' sleepers */
        while (atomic_load(&pool.remaining) > 0) pthread_cond_wait(&pool.finished, &pool.lock);
        atomic_store(&pool.caller_sleeping, 0);
        pthread_mutex_unlock(&pool.lock);
    }
    if (blas) gl_blas_set_threads(gl_get_num_threads());
    pthread_mutex_unlock(&pool.busy);
}

void gl_parallel_run(int count, void (*fn)(void *arg, int part), void *arg) { run_parts(count, fn, arg, false); }

void gl_parallel_run_blas(int count, void (*fn)(void *arg, int part), void *arg) { run_parts(count, fn, arg, true); }
