/*
 * context.c — the engine's only mutable global state: the random generator,
 * the thread count and the grad mode, kept together behind this small API.
 *
 * The generator is xoshiro256** (Blackman & Vigna, 2018), seeded by running
 * splitmix64 over the user's seed, as its authors recommend.  Normal variates
 * use the Box–Muller transform, caching the second value of each pair.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static struct {
    uint64_t rng[4];
    bool has_spare_normal;
    double spare_normal;
    int threads;
    bool grad_enabled;
    bool seeded;
    bool detect_anomaly;
    char module_path[256];
    uint64_t allocated_bytes;
    uint64_t freed_bytes;
    /* Freed large buffers kept for reuse (storage.c), newest last. */
    struct { void *data; size_t bytes; } cache[GL_CACHE_ENTRIES];
    int cache_count;
    size_t cache_bytes;
    /* Free lists of fixed-size objects, linked through their first word. */
    struct { void *head; int count; } pools[GL_POOL_COUNT];
} context = { .threads = 0, .grad_enabled = true };

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void gl_manual_seed(uint64_t seed)
{
    uint64_t state = seed;
    for (int i = 0; i < 4; i++) context.rng[i] = splitmix64(&state);
    context.has_spare_normal = false;
    context.seeded = true;
}

static inline uint64_t rotate_left(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t gl_random_u64(void)
{
    if (!context.seeded) gl_manual_seed(0x5eed);   /* a fixed default: runs are reproducible */
    uint64_t *s = context.rng;
    uint64_t result = rotate_left(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotate_left(s[3], 45);
    return result;
}

double gl_random_uniform(void) { return (double)(gl_random_u64() >> 11) * 0x1.0p-53; }

double gl_random_normal(void)
{
    if (context.has_spare_normal) {
        context.has_spare_normal = false;
        return context.spare_normal;
    }
    double u1 = 1.0 - gl_random_uniform();   /* (0, 1]: log never sees 0 */
    double u2 = gl_random_uniform();
    double radius = sqrt(-2.0 * log(u1));
    context.spare_normal = radius * sin(2.0 * M_PI * u2);
    context.has_spare_normal = true;
    return radius * cos(2.0 * M_PI * u2);
}

uint64_t gl_random_below(uint64_t n)
{
    if (n == 0) return 0;
    /* Rejection keeps every value equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = gl_random_u64(); while (x >= limit);
    return x % n;
}

int gl_get_num_threads(void)
{
    if (context.threads <= 0) context.threads = gl_blas_get_threads();
    return context.threads;
}

void gl_set_num_threads(int threads)
{
    if (threads < 1) threads = 1;
    context.threads = threads;
    gl_blas_set_threads(threads);
}

bool gl_grad_enabled(void) { return context.grad_enabled; }
void gl_set_grad_enabled(bool enabled) { context.grad_enabled = enabled; }

void gl_set_detect_anomaly(bool enabled) { context.detect_anomaly = enabled; }
bool gl_detect_anomaly_enabled(void) { return context.detect_anomaly; }

void gl_set_module_path(const char *path)
{
    /* Called around every module's forward: a plain bounded copy, no printf. */
    size_t length = path ? strlen(path) : 0;
    if (length >= sizeof context.module_path) length = sizeof context.module_path - 1;
    if (length) memcpy(context.module_path, path, length);
    context.module_path[length] = '\0';
}

const char *gl_module_path(void) { return context.module_path; }

uint64_t gl_allocated_bytes_total(void) { return context.allocated_bytes; }

void *gl_context_cache_take(size_t bytes)
{
    for (int i = context.cache_count - 1; i >= 0; i--) {
        if (context.cache[i].bytes != bytes) continue;
        void *data = context.cache[i].data;
        context.cache[i] = context.cache[--context.cache_count];
        context.cache_bytes -= bytes;
        return data;
    }
    return NULL;
}

bool gl_context_cache_put(void *data, size_t bytes)
{
    if (bytes > GL_CACHE_MAX_BYTES) return false;
    /* Make room by dropping the oldest entries: recent sizes are the ones a loop repeats. */
    while (context.cache_count > 0 &&
           (context.cache_count == GL_CACHE_ENTRIES || context.cache_bytes + bytes > GL_CACHE_MAX_BYTES)) {
        free(context.cache[0].data);
        context.cache_bytes -= context.cache[0].bytes;
        memmove(&context.cache[0], &context.cache[1], sizeof context.cache[0] * (size_t)(context.cache_count - 1));
        context.cache_count--;
    }
    context.cache[context.cache_count].data = data;
    context.cache[context.cache_count].bytes = bytes;
    context.cache_count++;
    context.cache_bytes += bytes;
    return true;
}

void gl_context_cache_clear(void)
{
    for (int i = 0; i < context.cache_count; i++) free(context.cache[i].data);
    context.cache_count = 0;
    context.cache_bytes = 0;
}

size_t gl_cached_bytes(void) { return context.cache_bytes; }

enum { POOL_LIMIT = 4096 };

void *gl_context_object_take(gl_pool pool)
{
    void *object = context.pools[pool].head;
    if (object) {
        memcpy(&context.pools[pool].head, object, sizeof(void *));
        context.pools[pool].count--;
    }
    return object;
}

bool gl_context_object_put(gl_pool pool, void *object)
{
    if (context.pools[pool].count >= POOL_LIMIT) return false;
    memcpy(object, &context.pools[pool].head, sizeof(void *));
    context.pools[pool].head = object;
    context.pools[pool].count++;
    return true;
}
void gl_release_cached_memory(void)
{
    gl_context_cache_clear();
    for (int p = 0; p < GL_POOL_COUNT; p++) {
        void *object;
        while ((object = gl_context_object_take((gl_pool)p))) free(object);
    }
}
void gl_context_note_allocation(uint64_t bytes) { context.allocated_bytes += bytes; }
void gl_context_note_free(uint64_t bytes) { context.freed_bytes += bytes; }
uint64_t gl_live_bytes(void) { return context.allocated_bytes - context.freed_bytes; }
