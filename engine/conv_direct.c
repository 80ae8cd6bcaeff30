/*
 * conv_direct.c — direct convolution kernels (AVX-512F) for rows read at
 * stride 1: no im2col columns, no BLAS packing.
 *
 *   x (B, Cin, H, W)   wp: packed weights (conv_kernels.h)   dy, y (B, Cout, OH, OW)
 *   forward:  y[co, oh, ow]  = sum over ci, tap (i, j) of wp[tap, ci, co] x[ci, ih, iw]
 *   weight:   dw[co, ci, tap] += sum over b, oh, ow of dy[co, oh, ow] x[ci, ih, iw]
 *   with ih = oh sh - ph + i dh, iw = ow - pw + j dw, x = 0 outside the image.
 *
 * Why: with few channels (16, 32) a convolution is a thin product, Cout rows by
 * Cin kh kw, over many columns.  im2col writes kh kw copies of the input and
 * OpenBLAS then copies them again into its packed layout, so the copies cost
 * more than the multiply-adds.  Here a row segment of up to 16 outputs is one
 * register; for each tap its 16 inputs are one masked load straight from x (the
 * mask zeroes the padding), shared by a block of output channels whose weights
 * are broadcast.  The weight gradient does the converse: a block of 4 output
 * channels by 2 input channels by 3 taps accumulates 24 registers over the
 * image, then sums their lanes.
 *
 * Compiled for AVX-512F through function attributes, so the library still runs
 * on any x86-64: conv_direct_suits() says no where the CPU lacks it, and
 * conv.c keeps im2col + sgemm.  Elsewhere (not x86-64) the kernels are absent.
 * The sums run in float, in a fixed order that depends on no thread count.
 */
#include <string.h>

#include "conv_kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define CONV_DIRECT_BUILT 1
#include <immintrin.h>
#define TARGET __attribute__((target("avx512f")))
#define INLINE static inline __attribute__((always_inline))
#else
#define CONV_DIRECT_BUILT 0
#endif

enum {
    LANES = 16,        /* floats per register */
    SEGS = 3,          /* forward: row segments per tile */
    ROWS = 8,          /* forward: output channels per tile (SEGS x ROWS accumulators) */
    WCO_MAX = 4,       /* weight gradient: output channels per block */
    WCI_MAX = 6,       /* weight gradient: input channels per block, at most */
    WJ_MAX = 3,        /* weight gradient: taps of a kernel row per block, at most */
};

static int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

bool conv_direct_suits(const conv_geometry *g)
{
#if CONV_DIRECT_BUILT
    return g->sw == 1 && g->kh * g->kw <= CONV_DIRECT_MAX_TAPS && __builtin_cpu_supports("avx512f");
#else
    (void)g;
    return false;
#endif
}

int64_t conv_direct_packed_floats(const conv_geometry *g)
{
    return g->groups * g->kh * g->kw * g->cin_g * round_up(g->cout_g, ROWS);
}

void conv_direct_pack_weight(const conv_geometry *g, const float *w, float *wp)
{
    int64_t taps = g->kh * g->kw, pad = round_up(g->cout_g, ROWS);
    memset(wp, 0, sizeof(float) * (size_t)conv_direct_packed_floats(g));
    for (int64_t gi = 0; gi < g->groups; gi++)
        for (int64_t co = 0; co < g->cout_g; co++)
            for (int64_t ci = 0; ci < g->cin_g; ci++)
                for (int64_t t = 0; t < taps; t++)
                    wp[((gi * taps + t) * g->cin_g + ci) * pad + co] =
                        w[((gi * g->cout_g + co) * g->cin_g + ci) * taps + t];
}

#if CONV_DIRECT_BUILT

/* p + off floats, through integers: off may point before p where the mask hides those lanes. */
static inline const float *shifted(const float *p, int64_t off)
{
    return (const float *)((uintptr_t)p + (uintptr_t)(off * (int64_t)sizeof(float)));
}

/* Lanes l < width whose input column iw0 + l lies in [0, W). */
static inline __mmask16 column_mask(int64_t iw0, int64_t width, int64_t w)
{
    int64_t lo = iw0 < 0 ? -iw0 : 0, hi = w - iw0 < width ? w - iw0 : width;
    if (hi <= lo) return 0;
    uint32_t bits = ((1u << (hi - lo)) - 1u) << lo;
    return (__mmask16)bits;
}

static inline __mmask16 width_mask(int64_t width) { return (__mmask16)((1u << width) - 1u); }

/* One forward tile: ROWS output channels (co0..) by SEGS row segments.  off/mask: per tap
 * and segment, the offset in an input plane and the lanes to load. */
TARGET INLINE void forward_tile(const conv_geometry *g, const float *xg, const float *wt, int64_t taps,
                                const int64_t *off, const __mmask16 *mask, float *y, const int64_t *out_off,
                                const __mmask16 *out_mask, int64_t rows, const float *bias)
{
    int64_t plane = g->h * g->w, pad = round_up(g->cout_g, ROWS);
    __m512 acc[ROWS][SEGS];
    _Pragma("GCC unroll 16")
    for (int c = 0; c < ROWS; c++)
        _Pragma("GCC unroll 16")
        for (int s = 0; s < SEGS; s++) acc[c][s] = _mm512_setzero_ps();
    for (int64_t t = 0; t < taps; t++) {
        const int64_t *o = off + t * SEGS;
        const __mmask16 *m = mask + t * SEGS;
        if (!(m[0] | m[1] | m[2])) continue;
        const float *xc = xg, *wc = wt + t * g->cin_g * pad;
        for (int64_t ci = 0; ci < g->cin_g; ci++, xc += plane, wc += pad) {
            __m512 v[SEGS];
            _Pragma("GCC unroll 16")
            for (int s = 0; s < SEGS; s++) v[s] = _mm512_maskz_loadu_ps(m[s], shifted(xc, o[s]));
            _Pragma("GCC unroll 16")
            for (int c = 0; c < ROWS; c++) {
                __m512 k = _mm512_set1_ps(wc[c]);
                _Pragma("GCC unroll 16")
                for (int s = 0; s < SEGS; s++) acc[c][s] = _mm512_fmadd_ps(k, v[s], acc[c][s]);
            }
        }
    }
    _Pragma("GCC unroll 16")
    for (int c = 0; c < ROWS; c++) {
        if (c >= rows) continue;
        __m512 b = _mm512_set1_ps(bias ? bias[c] : 0.0f);
        _Pragma("GCC unroll 16")
        for (int s = 0; s < SEGS; s++)
            if (out_mask[s]) _mm512_mask_storeu_ps(y + c * g->p + out_off[s], out_mask[s], _mm512_add_ps(acc[c][s], b));
    }
}

TARGET static void forward_avx512(const conv_geometry *g, const float *x, const float *wp, const float *bias,
                                  float *y)
{
    int64_t taps = g->kh * g->kw, plane = g->h * g->w, pad = round_up(g->cout_g, ROWS);
    int64_t nseg = (g->ow + LANES - 1) / LANES, tiles = g->oh * nseg;
    int64_t off[CONV_DIRECT_MAX_TAPS * SEGS], out_off[SEGS];
    __mmask16 mask[CONV_DIRECT_MAX_TAPS * SEGS], out_mask[SEGS];
    for (int64_t b = 0; b < g->batch; b++)
        for (int64_t gi = 0; gi < g->groups; gi++) {
            const float *xg = x + (b * g->cin + gi * g->cin_g) * plane;
            const float *wg = wp + gi * taps * g->cin_g * pad;
            float *yg = y + (b * g->cout + gi * g->cout_g) * g->p;
            for (int64_t t0 = 0; t0 < tiles; t0 += SEGS) {
                int64_t seg_oh[SEGS], seg_ow[SEGS], seg_width[SEGS];
                _Pragma("GCC unroll 16")
                for (int s = 0; s < SEGS; s++) {
                    int64_t t = t0 + s;
                    seg_oh[s] = t < tiles ? t / nseg : 0;
                    seg_ow[s] = t < tiles ? t % nseg * LANES : 0;
                    seg_width[s] = t < tiles ? (g->ow - seg_ow[s] < LANES ? g->ow - seg_ow[s] : LANES) : 0;
                    out_off[s] = seg_oh[s] * g->ow + seg_ow[s];
                    out_mask[s] = seg_width[s] ? width_mask(seg_width[s]) : 0;
                }
                for (int64_t i = 0, t = 0; i < g->kh; i++)
                    for (int64_t j = 0; j < g->kw; j++, t++)
                        _Pragma("GCC unroll 16")
                        for (int s = 0; s < SEGS; s++) {
                            int64_t ih = seg_oh[s] * g->sh - g->ph + i * g->dh;
                            int64_t iw0 = seg_ow[s] - g->pw + j * g->dw;
                            bool inside = seg_width[s] && ih >= 0 && ih < g->h;
                            mask[t * SEGS + s] = inside ? column_mask(iw0, seg_width[s], g->w) : 0;
                            off[t * SEGS + s] = mask[t * SEGS + s] ? ih * g->w + iw0 : 0;
                        }
                for (int64_t co0 = 0; co0 < g->cout_g; co0 += ROWS)
                    forward_tile(g, xg, wg + co0, taps, off, mask, yg + co0 * g->p, out_off, out_mask,
                                 g->cout_g - co0, bias ? bias + gi * g->cout_g + co0 : NULL);
            }
        }
}

/* dw[co0 + c, ci0 + k, (i, j0 + jj)] += sum of dy[co0 + c] x[ci0 + k] shifted by the tap, over
 * samples [0, nb) (dyb, xb: the first one's group), for c < CO, k < CI, jj < J: CO x CI x J
 * accumulators, each a register of partial sums whose lanes are added at the end.  The J taps of
 * a row share the loads of dy.  Rows beyond nco / nci and taps beyond kw are computed but not
 * written. */
TARGET INLINE void weight_block(const conv_geometry *g, const float *dyb, const float *xb, int64_t nb,
                                int64_t co0, int64_t nco, int64_t ci0, int64_t nci, int64_t i, int64_t j0,
                                float *dw, const int CO, const int CI, const int J)
{
    int64_t plane = g->h * g->w, taps = g->kh * g->kw;
    int64_t x_sample = g->cin * plane, dy_sample = g->cout * g->p;
    __m512 acc[WCO_MAX][WCI_MAX * WJ_MAX];
    _Pragma("GCC unroll 32")
    for (int c = 0; c < CO; c++)
        _Pragma("GCC unroll 32")
        for (int k = 0; k < CI * J; k++) acc[c][k] = _mm512_setzero_ps();
    const float *dyc[WCO_MAX], *xc[WCI_MAX];
    _Pragma("GCC unroll 32")
    for (int c = 0; c < CO; c++) dyc[c] = dyb + (co0 + (c < nco ? c : 0)) * g->p;
    _Pragma("GCC unroll 32")
    for (int k = 0; k < CI; k++) xc[k] = xb + (ci0 + (k < nci ? k : 0)) * plane;
    /* Output rows whose input row oh sh - ph + i dh lies in [0, H). */
    int64_t first = g->ph - i * g->dh, last = g->h - 1 + g->ph - i * g->dh;
    int64_t oh_lo = first <= 0 ? 0 : (first + g->sh - 1) / g->sh;
    int64_t oh_hi = last < 0 ? 0 : last / g->sh + 1;
    if (oh_hi > g->oh) oh_hi = g->oh;
    for (int64_t ow0 = 0; ow0 < g->ow; ow0 += LANES) {
        int64_t width = g->ow - ow0 < LANES ? g->ow - ow0 : LANES;
        /* Channels past nco / nci read channel 0 again: their sums are dropped. */
        __mmask16 dm = width_mask(width), xm[WJ_MAX];
        int64_t xo[WJ_MAX];
        _Pragma("GCC unroll 32")
        for (int jj = 0; jj < J; jj++) {
            int64_t iw0 = ow0 - g->pw + (j0 + jj) * g->dw;
            xm[jj] = j0 + jj < g->kw ? column_mask(iw0, width, g->w) : 0;
            xo[jj] = xm[jj] ? iw0 : 0;
        }
        for (int64_t b = 0; b < nb; b++)
        for (int64_t oh = oh_lo; oh < oh_hi; oh++) {
            int64_t yo = b * dy_sample + oh * g->ow + ow0;
            int64_t row = b * x_sample + (oh * g->sh - g->ph + i * g->dh) * g->w;
            __m512 d[WCO_MAX];
            _Pragma("GCC unroll 32")
            for (int c = 0; c < CO; c++) d[c] = _mm512_maskz_loadu_ps(dm, dyc[c] + yo);
            _Pragma("GCC unroll 32")
            for (int k = 0; k < CI; k++)
                _Pragma("GCC unroll 32")
                for (int jj = 0; jj < J; jj++) {
                    __m512 v = _mm512_maskz_loadu_ps(xm[jj], shifted(xc[k], row + xo[jj]));
                    _Pragma("GCC unroll 32")
                    for (int c = 0; c < CO; c++) acc[c][k * J + jj] = _mm512_fmadd_ps(d[c], v, acc[c][k * J + jj]);
                }
        }
    }
    _Pragma("GCC unroll 32")
    for (int c = 0; c < CO; c++)
        _Pragma("GCC unroll 32")
        for (int k = 0; k < CI; k++)
            _Pragma("GCC unroll 32")
            for (int jj = 0; jj < J; jj++)
                if (c < nco && k < nci && j0 + jj < g->kw)
                    dw[((co0 + c) * g->cin_g + ci0 + k) * taps + i * g->kw + j0 + jj] +=
                        _mm512_reduce_add_ps(acc[c][k * J + jj]);
}

TARGET static void weight_avx512(const conv_geometry *g, const float *dy, const float *x, float *dw)
{
    int64_t plane = g->h * g->w;
    /* Three taps of a kernel row per block (3x3 kernels), else one tap and more channels. */
    bool rows_of_three = g->kw % 3 == 0;
    int ci_step = rows_of_three ? 2 : 6, j_step = rows_of_three ? 3 : 1;
    /* Samples per pass: a block's planes of x and dy (2 + 4, or 6 + 4, per sample) stay in L1
     * (~32 KiB) across its taps, and the lanes are summed once per pass, not once per sample. */
    int64_t block_bytes = (ci_step + WCO_MAX) * (plane > g->p ? plane : g->p) * (int64_t)sizeof(float);
    int64_t chunk = block_bytes > 0 ? (32 << 10) / block_bytes : 1;
    if (chunk < 1) chunk = 1;
    for (int64_t b0 = 0; b0 < g->batch; b0 += chunk) {
        int64_t nb = g->batch - b0 < chunk ? g->batch - b0 : chunk;
        for (int64_t gi = 0; gi < g->groups; gi++) {
            const float *xb = x + (b0 * g->cin + gi * g->cin_g) * plane;
            const float *dyb = dy + (b0 * g->cout + gi * g->cout_g) * g->p;
            float *dwg = dw + gi * g->cout_g * g->cin_g * g->kh * g->kw;
            for (int64_t ci0 = 0; ci0 < g->cin_g; ci0 += ci_step)
                for (int64_t co0 = 0; co0 < g->cout_g; co0 += WCO_MAX)
                    for (int64_t i = 0; i < g->kh; i++)
                        for (int64_t j0 = 0; j0 < g->kw; j0 += j_step) {
                            if (rows_of_three)
                                weight_block(g, dyb, xb, nb, co0, g->cout_g - co0, ci0, g->cin_g - ci0, i, j0,
                                             dwg, WCO_MAX, 2, 3);
                            else
                                weight_block(g, dyb, xb, nb, co0, g->cout_g - co0, ci0, g->cin_g - ci0, i, j0,
                                             dwg, WCO_MAX, 6, 1);
                        }
        }
    }
}

void conv_direct_forward(const conv_geometry *g, const float *x, const float *wp, const float *bias, float *y)
{
    forward_avx512(g, x, wp, bias, y);
}

void conv_direct_weight(const conv_geometry *g, const float *dy, const float *x, float *dw)
{
    weight_avx512(g, dy, x, dw);
}

#else

void conv_direct_forward(const conv_geometry *g, const float *x, const float *wp, const float *bias, float *y)
{
    (void)g, (void)x, (void)wp, (void)bias, (void)y;
}

void conv_direct_weight(const conv_geometry *g, const float *dy, const float *x, float *dw)
{
    (void)g, (void)dy, (void)x, (void)dw;
}

#endif
