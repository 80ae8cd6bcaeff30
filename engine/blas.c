/*
 * blas.c — how the engine sets up OpenBLAS: its thread count and the choice of
 * kernels.
 *
 * OpenBLAS built with DYNAMIC_ARCH (Debian's) picks its kernels from the CPU
 * model when it loads.  A model newer than the library (0.3.21 does not know
 * Sapphire or Emerald Rapids) falls back to the generic Prescott (SSE3)
 * kernels, which run matrix products 5–15× slower than the AVX-512 ones the
 * CPU can run.  When that happened, the user did not ask for it
 * (OPENBLAS_CORETYPE unset) and the CPU and OS support wider vectors, we ask
 * OpenBLAS to choose again with the core type the features call for, through
 * its own dynamic-arch entry points.  Those are internal to OpenBLAS, so they
 * are weak references: with a build that lacks them nothing changes.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* OpenBLAS's public extensions (cblas.h declares them; kept here so the header
 * layout of other BLAS builds does not matter). */
void openblas_set_num_threads(int threads);
int openblas_get_num_threads(void);
char *openblas_get_corename(void);

/* OpenBLAS's dynamic-arch entry points: present only in DYNAMIC_ARCH builds. */
extern void gotoblas_dynamic_init(void) __attribute__((weak));
extern void gotoblas_dynamic_quit(void) __attribute__((weak));

/* Written once, while the library loads (before any thread of ours exists). */
static gl_blas_kernels_origin kernels_origin = GL_BLAS_KERNELS_OPENBLAS;

/* The core types OpenBLAS uses when it does not recognise the CPU. */
static bool is_generic_core(const char *name)
{
    static const char *const generic[] = {"Prescott", "Core2", "Nehalem", "Penryn", "Dunnington",
                                          "Katmai", "Coppermine", "Northwood", "Banias"};
    for (size_t i = 0; i < sizeof generic / sizeof generic[0]; i++)
        if (strcmp(name, generic[i]) == 0) return true;
    return false;
}

/* The best OpenBLAS core type for this CPU's features (the OS must save the
 * registers too: __builtin_cpu_supports checks XGETBV). */
static const char *core_for_features(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
    if (__builtin_cpu_supports("avx")) return "Sandybridge";
    return NULL;
}

/* Runs when the library is loaded, after OpenBLAS's own initialisation (it is
 * a dependency, so its constructors run first) and before any product. */
__attribute__((constructor)) static void choose_kernels(void)
{
    if (getenv("OPENBLAS_CORETYPE")) {
        kernels_origin = GL_BLAS_KERNELS_ENVIRONMENT;
        return;
    }
    if (getenv("GRADLAB_KEEP_BLAS_KERNELS")) return;
    if (!gotoblas_dynamic_init || !gotoblas_dynamic_quit) return;
    const char *current = openblas_get_corename();
    if (!current || !is_generic_core(current)) return;
    const char *better = core_for_features();
    if (!better) return;
    /* OpenBLAS reads its choice from the environment; the variable is removed
     * again so that programs the user starts do not inherit it. */
    if (setenv("OPENBLAS_CORETYPE", better, 1) != 0) return;
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
    unsetenv("OPENBLAS_CORETYPE");
    const char *now = openblas_get_corename();
    if (now && !is_generic_core(now)) kernels_origin = GL_BLAS_KERNELS_GRADLAB;
}

const char *gl_blas_core_name(void)
{
    const char *name = openblas_get_corename();
    return name ? name : "unknown";
}

gl_blas_kernels_origin gl_blas_kernels_chosen_by(void) { return kernels_origin; }

int gl_blas_get_threads(void) { return openblas_get_num_threads(); }

void gl_blas_set_threads(int threads) { openblas_set_num_threads(threads < 1 ? 1 : threads); }
