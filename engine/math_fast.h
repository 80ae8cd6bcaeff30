/*
 * math_fast.h — exp, sigmoid and tanh in float that the compiler can
 * vectorize (internal, header-only).
 *
 * glibc's expf/tanhf are accurate but opaque calls, so a loop over them stays
 * scalar even with -fno-math-errno (libmvec needs -ffast-math).  These are
 * plain arithmetic on floats and their bits, so GCC vectorizes a loop of them
 * at -O3 with SSE2 already.  One trap to avoid: under the default
 * -ftrapping-math GCC sinks float arithmetic into the arm of a `c ? a : b`
 * that uses it and then may not speculate it back, so a float ternary turns
 * the loop body into control flow ("not vectorized: control flow in loop").
 * Every choice here is therefore made on the bits, with integer compares and
 * masks, which never trap.
 *
 * Accuracy (against double over a dense grid of [-20, 20]): exp_float < 1 ulp,
 * tanh_float < 1.3 ulp, sigmoid_float < 2.5 ulp.  NaN propagates; +-inf give
 * the limits.
 */
#ifndef GRADLAB_MATH_FAST_H
#define GRADLAB_MATH_FAST_H

#include <stdint.h>
#include <string.h>

/* GL_VECTOR_CLONES on a hot loop's function compiles it three times, for
 * AVX-512, AVX2 and the baseline (SSE2), and picks one at load time (an
 * ifunc), so the vectorizer works with 16 or 8 floats instead of 4 where the
 * CPU allows.  The
 * engine builds with -std=c11, which keeps floating-point contraction off, so
 * both clones round identically: the results are bitwise the same on any
 * x86-64.  Functions so marked are not inlined; give them a whole row or more. */
#if defined(__x86_64__) && defined(__linux__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define GL_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef GL_VECTOR_CLONES
#define GL_VECTOR_CLONES
#endif

static inline uint32_t float_bits(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits;
}

static inline float bits_float(uint32_t bits)
{
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

/* mask ? a : b for a mask of all ones or all zeros, without a branch. */
static inline float select_float(uint32_t mask, float a, float b)
{
    return bits_float((float_bits(a) & mask) | (float_bits(b) & ~mask));
}

/* All ones where x > 0 (false for -0 and for NaN, as the float compare). */
static inline uint32_t positive_mask(float x)
{
    int32_t bits = (int32_t)float_bits(x);
    return -(uint32_t)((bits > 0) & (bits <= 0x7f800000));
}

/* e^x: x = k ln2 + r with |r| <= ln2/2 (ln2 split in two so k ln2 is exact),
 * Cephes' degree-6 polynomial for e^r, and 2^k built in the exponent bits.
 * |x| is first clamped to 87.3 so 2^k stays a normal float: beyond it the
 * result saturates to ~7.4e37 or ~1.4e-38, which the callers below only ever
 * add 1 to or divide by. */
static inline float exp_float(float x)
{
    int32_t bits = (int32_t)float_bits(x), magnitude = bits & 0x7fffffff;
    const int32_t limit = 0x42ae999a;   /* 87.3f */
    magnitude = ((magnitude > limit) & (magnitude <= 0x7f800000)) ? limit : magnitude;   /* NaN stays */
    x = bits_float(((uint32_t)bits & 0x80000000u) | (uint32_t)magnitude);
    /* round(x / ln2) by adding 1.5 * 2^23: the sum's low mantissa bits then
     * hold k itself, exact in the default rounding mode; unlike rintf and a
     * float-to-int cast this vectorizes with plain SSE2 (and NaN stays defined). */
    float biased = x * 1.44269504088896341f + 12582912.0f;
    float k = biased - 12582912.0f;
    float r = x - k * 0.693359375f;
    r = r + k * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * (r * r) + r + 1.0f;
    uint32_t scale = (float_bits(biased) - 0x4B400000u + 127u) << 23;   /* 2^k in the exponent field */
    return y * bits_float(scale);
}

/* e^x for x <= 0, the range softmax needs after subtracting the row maximum
 * and GELU's Gaussian uses: Cephes' expf reduction and polynomial (1.3 ulp at
 * most, measured against exp in double), on integer selects only.  Below -88
 * the result would be subnormal and is flushed to 0, which also sends -inf (a
 * masked score) to exactly 0.  Positive x and NaN are the caller's to handle. */
static inline float exp_nonpositive_float(float x)
{
    const int32_t limit = (int32_t)0xC2B00000;   /* -88.0f */
    int32_t bits = (int32_t)float_bits(x);
    /* x < -88, or -inf: for negative floats a larger pattern is more negative. */
    int32_t below = -(int32_t)(bits < 0 && bits > limit);
    float c = bits_float((uint32_t)((bits & ~below) | (limit & below)));
    /* Round to nearest by the 1.5 * 2^23 trick: no floorf/rintf call needed. */
    float n = (c * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = c - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * r * r + r + 1.0f;
    /* n is in [-127, 0]: 2^n built in the exponent field (n = -127 gives +0). */
    float scale = bits_float((uint32_t)(((int32_t)n + 127) * (1 << 23)));
    return bits_float(float_bits(y * scale) & ~(uint32_t)below);
}

/* 1 / (1 + e^-x): no cancellation on either side, so one formula serves.
 * Below -87.3 the true value is subnormal (and 0 below -104): we return 0
 * there rather than exp_float's saturated 1.2e-38. */
static inline float sigmoid_float(float x)
{
    float y = 1.0f / (1.0f + exp_float(-x));
    uint32_t far_negative = -(uint32_t)(float_bits(x) > 0xc2ae999au && float_bits(x) <= 0xff800000u);
    return bits_float(float_bits(y) & ~far_negative);
}

/* tanh: an odd minimax polynomial near zero (fitted to tanh in double;
 * 0.78 ulp on |x| < 0.625), where 1 - 2/(e^{2|x|} + 1) would cancel, and that
 * formula beyond, with x's sign put back. */
static inline float tanh_float(float x)
{
    uint32_t bits = float_bits(x), sign = bits & 0x80000000u;
    float a = bits_float(bits & 0x7fffffffu);
    float x2 = x * x;
    float p = 0.0021489573748707472f;
    p = p * x2 - 0.008184633579138196f;
    p = p * x2 + 0.02170398952950338f;
    p = p * x2 - 0.05394745228499193f;
    p = p * x2 + 0.1333321248772914f;
    p = p * x2 - 0.33333331010048917f;
    float small = x + x * x2 * p;
    float big = bits_float(float_bits(1.0f - 2.0f / (exp_float(2.0f * a) + 1.0f)) | sign);
    uint32_t near_zero = -(uint32_t)((int32_t)(bits & 0x7fffffffu) < 0x3f200000);   /* |x| < 0.625 */
    return select_float(near_zero, small, big);
}

#endif
