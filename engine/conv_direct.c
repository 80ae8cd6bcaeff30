/*
 * conv_direct.c — direct convolution kernels (AVX-512F): no im2col columns,
 * no BLAS packing.
 *
 *   x (B, Cin, H, W)   wp: packed weights (conv_kernels.h)   dy, y (B, Cout, OH, OW)
 *   forward:  y[co, oh, ow]  = sum over ci, tap (i, j) of wp[tap, ci, co] x[ci, ih, iw]
 *   weight:   dw[co, ci, tap] += sum over b, oh, ow of dy[co, oh, ow] x[ci, ih, iw]
 *   input:    dx[ci, ih, iw]  = sum over co, tap of w[co, ci, tap] dy[co, oh, ow]
 *   with ih = oh sh - ph + i dh, iw = ow sw - pw + j dw, x = 0 outside the image.
 *
 * The forward and the weight gradient read rows at stride 1 from a copy of x
 * (one sample or a few) with zeros around each plane, so their loads need no
 * masks (a masked load also takes an FMA port).  At a horizontal stride sw > 1
 * the copy splits the columns by phase (split_columns): column ow sw + r is
 * column ow of phase plane r, so a strided row is a plain row of one plane.
 * dx goes the other way, phase by phase of its own rows and columns: each phase
 * is a stride-1 correlation of dy by the kernel positions that reach it
 * (input_avx512), and merge_phases interleaves the planes.
 *
 * Why: with few channels (16, 32) a convolution is a thin product, Cout rows by
 * Cin kh kw, over many columns.  im2col writes kh kw copies of the input and
 * OpenBLAS then copies them again into its packed layout, so the copies cost
 * more than the multiply-adds.  Here a row segment of up to 16 outputs is one
 * register; for each tap its 16 inputs are one load, shared by a block of
 * output channels whose weights are broadcast.  The weight gradient does the converse: a block of 4 output
 * channels by 2 input channels by 3 taps accumulates 24 registers over the
 * image, kept as 16-lane partial sums whose lanes are added once per pass.
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
    return g->kh * g->kw <= CONV_DIRECT_MAX_TAPS && __builtin_cpu_supports("avx512f");
#else
    (void)g;
    return false;
#endif
}

int64_t conv_direct_packed_floats(const conv_geometry *g)
{
    int64_t a = g->cin_g * round_up(g->cout_g, ROWS), b = g->cout_g * round_up(g->cin_g, ROWS);
    return g->groups * g->kh * g->kw * (a > b ? a : b);
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

void conv_direct_pack_weight_input(const conv_geometry *g, const float *w, float *wp)
{
    int64_t taps = g->kh * g->kw, pad = round_up(g->cin_g, ROWS);
    memset(wp, 0, sizeof(float) * (size_t)conv_direct_packed_floats(g));
    for (int64_t gi = 0; gi < g->groups; gi++)
        for (int64_t co = 0; co < g->cout_g; co++)
            for (int64_t ci = 0; ci < g->cin_g; ci++)
                for (int64_t t = 0; t < taps; t++)
                    wp[((gi * taps + t) * g->cout_g + co) * pad + ci] =
                        w[((gi * g->cout_g + co) * g->cin_g + ci) * taps + t];
}

/* Where the kernels read x.  With horizontal stride 1, x itself.  Otherwise a copy of x whose
 * columns are split by phase (split_columns): xs[c, r, h, left + w'] = x[c, h, sw w' + r], so
 * that a row read at stride sw is a row of one phase plane read at stride 1, and the kernels
 * stay the same.  The copy costs one pass over x, where im2col writes kh kw of them.  The
 * weight gradient always reads such a copy, with `left` and `right` columns of zeros around
 * each row, so that its loads of x need no masks (a masked load also takes an ALU port from the
 * FMAs: ~30 % of that kernel's time). */
typedef struct src_layout {
    int64_t sample, chan, phase, row;   /* floats between samples, channels, phase planes, rows */
    int64_t left, top;                  /* zero columns before each row, zero rows before row 0 */
} src_layout;

static int64_t phase_width(const conv_geometry *g) { return (g->w + g->sw - 1) / g->sw; }

static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

static src_layout padded_layout(const conv_geometry *g, int64_t left, int64_t right, int64_t top, int64_t bottom)
{
    int64_t row = left + phase_width(g) + right, rows = top + g->h + bottom;
    src_layout l = {0, g->sw * rows * row, rows * row, row, left, top};
    l.sample = g->cin * l.chan;
    return l;
}

static int64_t positive(int64_t v) { return v > 0 ? v : 0; }

/* Columns of zeros a padded copy needs so that every tap of every 16-wide segment (the last
 * one rounded up) reads inside its row. */
static void column_padding(const conv_geometry *g, int64_t *left, int64_t *right)
{
    int64_t lo = floor_div(-g->pw, g->sw), hi = floor_div((g->kw - 1) * g->dw - g->pw, g->sw);
    int64_t span = (g->ow + 15) / 16 * 16;
    *left = positive(-lo);
    *right = positive(span - 1 + hi - (phase_width(g) - 1));
}

/* The weight gradient's copy (it never reads rows outside the image). */
static src_layout weight_layout(const conv_geometry *g)
{
    int64_t left, right;
    column_padding(g, &left, &right);
    return padded_layout(g, left, right, 0, 0);
}

/* The forward's copy, one sample: also rows of zeros above and below for the rows of the
 * kernel that fall outside (plus one below: a ragged last segment reads on past its row). */
static src_layout forward_layout(const conv_geometry *g)
{
    int64_t left, right;
    column_padding(g, &left, &right);
    int64_t top = positive(g->ph), bottom = positive((g->oh - 1) * g->sh - g->ph + (g->kh - 1) * g->dh - (g->h - 1));
    return padded_layout(g, left, right, top, bottom + 1);
}

/* Weight gradient: input channels per block (3 taps of a kernel row per block for 3x3
 * kernels, else one tap and more channels). */
#define WEIGHT_CI_STEP(rows_of_three) ((rows_of_three) ? 2 : 6)

/* Weight gradient: samples per pass, so that a block's planes of x and dy (2 + 4, or 6 + 4,
 * per sample) stay in L1 (~32 KiB) across its taps. */
static int64_t weight_chunk(const conv_geometry *g)
{
    int64_t plane = weight_layout(g).chan, ci_step = WEIGHT_CI_STEP(g->kw % 3 == 0);
    int64_t block_bytes = (ci_step * plane + WCO_MAX * g->p) * (int64_t)sizeof(float);
    int64_t chunk = block_bytes > 0 ? (32 << 10) / block_bytes : 1;
    if (chunk > g->batch) chunk = g->batch;
    return chunk < 1 ? 1 : chunk;
}

int64_t conv_direct_scratch_floats(const conv_geometry *g, bool weight)
{
    if (!weight) return forward_layout(g).sample;
    int64_t lanes = g->cout * g->cin_g * g->kh * g->kw * LANES;
    return lanes + weight_chunk(g) * weight_layout(g).sample;
}

int64_t conv_direct_input_scratch_floats(const conv_geometry *g) { return g->cin * g->h * g->w; }

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

/* Kernel column j reads, for output column ow, column ow + shift of the phase plane at base,
 * which has `width` columns: sw (ow + shift) + r = ow sw - pw + j dw with 0 <= r < sw. */
typedef struct tap_column {
    int64_t base, shift, width;
} tap_column;

static tap_column tap_column_of(const conv_geometry *g, const src_layout *l, int64_t j)
{
    int64_t e = j * g->dw - g->pw;
    int64_t shift = floor_div(e, g->sw);
    int64_t r = e - shift * g->sw;
    return (tap_column){r * l->phase + l->left, shift, (g->w - r + g->sw - 1) / g->sw};
}

/* xs = the nb samples of x with their columns split by phase, in layout l.  Columns a phase
 * lacks (sw w' + r >= W) and the padding are written as zeros or not at all: the caller
 * zeroes them once when it reads them without masks. */
TARGET static void split_columns(const conv_geometry *g, const src_layout *l, const float *x, int64_t nb,
                                 float *xs)
{
    int64_t sw = g->sw, wp = phase_width(g), phase = l->phase, planes = nb * g->cin;
    __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    __m512i even = _mm512_add_epi32(iota, iota), odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for (int64_t pc = 0; pc < planes; pc++)
        for (int64_t h = 0; h < g->h; h++) {
            const float *src = x + (pc * g->h + h) * g->w;
            float *dst = xs + pc * sw * phase + (h + l->top) * l->row + l->left;
            if (sw == 1) {   /* rows of a few dozen floats: inline, not a call to memcpy each */
                int64_t w0 = 0;
                for (; w0 + LANES <= g->w; w0 += LANES) _mm512_storeu_ps(dst + w0, _mm512_loadu_ps(src + w0));
                if (w0 < g->w) {
                    __mmask16 m = width_mask(g->w - w0);
                    _mm512_mask_storeu_ps(dst + w0, m, _mm512_maskz_loadu_ps(m, src + w0));
                }
                continue;
            }
            if (sw == 2) {
                for (int64_t w0 = 0; w0 < wp; w0 += LANES) {
                    int64_t in = g->w - 2 * w0 < 2 * LANES ? g->w - 2 * w0 : 2 * LANES;
                    __m512 lo = _mm512_maskz_loadu_ps(width_mask(in < LANES ? in : LANES), src + 2 * w0);
                    __m512 hi = _mm512_maskz_loadu_ps(in > LANES ? width_mask(in - LANES) : 0, src + 2 * w0 + LANES);
                    __mmask16 out = width_mask(wp - w0 < LANES ? wp - w0 : LANES);
                    _mm512_mask_storeu_ps(dst + w0, out, _mm512_permutex2var_ps(lo, even, hi));
                    _mm512_mask_storeu_ps(dst + phase + w0, out, _mm512_permutex2var_ps(lo, odd, hi));
                }
                continue;
            }
            for (int64_t r = 0; r < sw; r++)
                for (int64_t c = 0; c * sw + r < g->w; c++) dst[r * phase + c] = src[c * sw + r];
        }
}

/* One pass of the forward kernel: a correlation given by an explicit list of taps, for one
 * sample and group, reading rows at stride 1 (or a phase plane of x, which is the same):
 *   out[co, oh, ow] = sum over taps t and ci of wp[t.w + ci pad + co] in[ci, r, c]
 *   with r = oh sh + t.row, c = ow + t.shift in the plane at t.base (t.width columns),
 *   in = 0 outside.
 * The forward is the list of all kernel positions; dx of a strided convolution is, for each
 * phase (q, r) of its rows and columns, the list of the positions that reach that phase
 * (input_avx512). */
typedef struct direct_tap {
    int64_t row;                  /* input row of output row oh: oh sh + row */
    int64_t base, shift, width;   /* input column of ow: ow + shift of the plane at base */
    int64_t w;                    /* this tap's packed weights: wp + w + ci pad + co */
} direct_tap;

typedef struct tap_conv {
    int64_t cin, cout, pad;       /* channels in and out; cout rounded up to ROWS */
    int64_t h, sh, oh, ow;        /* input rows, vertical stride; output rows and columns */
    int64_t chan, row;            /* input: floats between channels, between rows */
    int64_t top;                  /* padded input: zero rows above row 0 (else -1: masked loads) */
    const char *ahead;            /* bytes to prefetch meanwhile (the next sample), or NULL */
    int64_t ahead_bytes;
    int64_t ntaps;
    direct_tap tap[CONV_DIRECT_MAX_TAPS];
} tap_conv;

/* One tile: ROWS output channels (co0..) by SEGS row segments.  off/mask: per tap and
 * segment, the offset in an input channel and the lanes to load. */
TARGET INLINE void forward_tile(const tap_conv *tc, const float *in, const float *wt, const int64_t *off,
                                const __mmask16 *mask, float *out, const int64_t *out_off,
                                const __mmask16 *out_mask, int64_t rows, const float *bias, const bool padded,
                                const int S)
{
    int64_t p = tc->oh * tc->ow, pad = tc->pad, chan = tc->chan;
    __m512 acc[ROWS][SEGS];
    _Pragma("GCC unroll 16")
    for (int c = 0; c < ROWS; c++)
        _Pragma("GCC unroll 16")
        for (int s = 0; s < SEGS; s++) acc[c][s] = _mm512_setzero_ps();
    for (int64_t t = 0; t < tc->ntaps; t++) {
        const int64_t *o = off + t * SEGS;
        const __mmask16 *m = mask + t * SEGS;
        if (!(m[0] | m[1] | m[2])) continue;
        const float *xc = in, *wc = wt + tc->tap[t].w;
        __mmask16 m0 = m[0], m1 = m[1], m2 = m[2];
        int64_t o0 = o[0], o1 = o[1], o2 = o[2];
        if (padded) {   /* zeros around the image: no masks (they take an FMA port), three pointers */
            const float *x0 = in + o0, *x1 = in + o1, *x2 = in + o2, *end = wc + tc->cin * pad;
            /* S < SEGS: the last tile of a pass, its other segments empty (not computed). */
            for (; wc < end; x0 += chan, x1 += chan, x2 += chan, wc += pad) {
                __m512 v0 = _mm512_loadu_ps(x0);
                __m512 v1 = S > 1 ? _mm512_loadu_ps(x1) : v0, v2 = S > 2 ? _mm512_loadu_ps(x2) : v0;
                _Pragma("GCC unroll 16")
                for (int c = 0; c < ROWS; c++) {
                    __m512 k = _mm512_set1_ps(wc[c]);
                    acc[c][0] = _mm512_fmadd_ps(k, v0, acc[c][0]);
                    if (S > 1) acc[c][1] = _mm512_fmadd_ps(k, v1, acc[c][1]);
                    if (S > 2) acc[c][2] = _mm512_fmadd_ps(k, v2, acc[c][2]);
                }
            }
            continue;
        }
        for (int64_t ci = 0; ci < tc->cin; ci++, xc += chan, wc += pad) {
            __m512 v[SEGS];
            {
                v[0] = _mm512_maskz_loadu_ps(m0, shifted(xc, o0));
                v[1] = _mm512_maskz_loadu_ps(m1, shifted(xc, o1));
                v[2] = _mm512_maskz_loadu_ps(m2, shifted(xc, o2));
            }
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
            if (out_mask[s]) _mm512_mask_storeu_ps(out + c * p + out_off[s], out_mask[s], _mm512_add_ps(acc[c][s], b));
    }
}

/* out (cout, oh, ow) = the taps of tc over in (+ bias, or NULL). */
TARGET static void tap_conv_run(const tap_conv *tc, const float *in, const float *wp, const float *bias,
                                float *out)
{
    int64_t nseg = (tc->ow + LANES - 1) / LANES, tiles = tc->oh * nseg;
    int64_t off[CONV_DIRECT_MAX_TAPS * SEGS], out_off[SEGS];
    __mmask16 mask[CONV_DIRECT_MAX_TAPS * SEGS], out_mask[SEGS];
    /* The next sample's x comes from memory while this one computes: its copy then finds it
     * in L2 instead of stalling on every line (a pass copying x from memory took ~6 %). */
    int64_t groups = (tiles + SEGS - 1) / SEGS, lines = (tc->ahead_bytes + 63) / 64;
    int64_t per_tile = groups > 0 ? (lines + groups - 1) / groups : 0, line = 0;
    for (int64_t t0 = 0; t0 < tiles; t0 += SEGS) {
        for (int64_t k = 0; k < per_tile && line < lines; k++, line++)
            _mm_prefetch(tc->ahead + line * 64, _MM_HINT_T1);
        int64_t seg_oh[SEGS], seg_ow[SEGS], seg_width[SEGS];
        _Pragma("GCC unroll 16")
        for (int s = 0; s < SEGS; s++) {
            int64_t t = t0 + s;
            seg_oh[s] = t < tiles ? t / nseg : 0;
            seg_ow[s] = t < tiles ? t % nseg * LANES : 0;
            seg_width[s] = t < tiles ? (tc->ow - seg_ow[s] < LANES ? tc->ow - seg_ow[s] : LANES) : 0;
            out_off[s] = seg_oh[s] * tc->ow + seg_ow[s];
            out_mask[s] = seg_width[s] ? width_mask(seg_width[s]) : 0;
        }
        for (int64_t t = 0; t < tc->ntaps; t++) {
            const direct_tap *tp = &tc->tap[t];
            _Pragma("GCC unroll 16")
            for (int s = 0; s < SEGS; s++) {
                int64_t ih = seg_oh[s] * tc->sh + tp->row, iw0 = seg_ow[s] + tp->shift;
                bool inside = seg_width[s] && ih >= 0 && ih < tc->h;
                mask[t * SEGS + s] = inside ? column_mask(iw0, seg_width[s], tp->width) : 0;
                if (tc->top >= 0)   /* padded: the mask only says whether the segment reads any x */
                    off[t * SEGS + s] = tp->base + (ih + tc->top) * tc->row + iw0;
                else
                    off[t * SEGS + s] = mask[t * SEGS + s] ? tp->base + ih * tc->row + iw0 : 0;
            }
        }
        int64_t active = tiles - t0 < SEGS ? tiles - t0 : SEGS;
        for (int64_t co0 = 0; co0 < tc->cout; co0 += ROWS) {
            float *o = out + co0 * tc->oh * tc->ow;
            const float *b = bias ? bias + co0 : NULL;
            if (tc->top < 0)
                forward_tile(tc, in, wp + co0, off, mask, o, out_off, out_mask, tc->cout - co0, b, false, SEGS);
            else if (active == 3)
                forward_tile(tc, in, wp + co0, off, mask, o, out_off, out_mask, tc->cout - co0, b, true, 3);
            else if (active == 2)
                forward_tile(tc, in, wp + co0, off, mask, o, out_off, out_mask, tc->cout - co0, b, true, 2);
            else
                forward_tile(tc, in, wp + co0, off, mask, o, out_off, out_mask, tc->cout - co0, b, true, 1);
        }
    }
}

/* y of nb samples from x in layout l (the first sample at x). */
TARGET static void forward_avx512(const conv_geometry *g, const src_layout *l, const float *x, int64_t nb,
                                  const float *wp, const float *bias, float *y, const float *ahead,
                                  int64_t ahead_floats)
{
    int64_t taps = g->kh * g->kw, pad = round_up(g->cout_g, ROWS);
    tap_conv tc = {g->cin_g, g->cout_g, pad, g->h, g->sh, g->oh, g->ow, l->chan, l->row, l->top,
                   NULL, 0, taps, {{0}}};
    for (int64_t i = 0, t = 0; i < g->kh; i++)
        for (int64_t j = 0; j < g->kw; j++, t++) {
            tap_column c = tap_column_of(g, l, j);
            tc.tap[t] = (direct_tap){i * g->dh - g->ph, c.base, c.shift, c.width, t * g->cin_g * pad};
        }
    for (int64_t b = 0; b < nb; b++)
        for (int64_t gi = 0; gi < g->groups; gi++) {
            /* each group prefetches its share */
            int64_t share = ahead ? ahead_floats / g->groups : 0;
            tc.ahead = (const char *)(ahead + gi * share);
            tc.ahead_bytes = share * (int64_t)sizeof(float);
            tap_conv_run(&tc, x + b * l->sample + gi * g->cin_g * l->chan, wp + gi * taps * g->cin_g * pad,
                         bias ? bias + gi * g->cout_g : NULL, y + (b * g->cout + gi * g->cout_g) * g->p);
        }
}

/* a - b floor(a / b), for b > 0. */
static int64_t floor_mod(int64_t a, int64_t b) { return a - b * floor_div(a, b); }

/* dx (nb samples) of a convolution, phase by phase: the rows ih = sh h' + q and columns
 * iw = sw w' + r of dx take dy[oh, ow] w[i, j] from the kernel positions with
 * ih = oh sh - ph + i dh, i.e. oh = h' + (q + ph - i dh) / sh where that divides, and likewise
 * for the columns: a stride-1 correlation of dy by those taps.  Each phase goes to its plane
 * in scratch (cin x H x W floats in all), then merge_phases interleaves them into dx. */
TARGET static void merge_phases(const conv_geometry *g, const float *ps, float *dx);

TARGET static void input_avx512(const conv_geometry *g, const float *dy, const float *wp, float *dx, float *scratch)
{
    int64_t taps = g->kh * g->kw, pad = round_up(g->cin_g, ROWS);
    tap_conv tc;
    for (int64_t b = 0; b < g->batch; b++) {
        float *plane = scratch;
        for (int64_t q = 0; q < g->sh; q++)
            for (int64_t r = 0; r < g->sw; r++) {
                tc = (tap_conv){g->cout_g, g->cin_g, pad, g->oh, 1, (g->h - q + g->sh - 1) / g->sh,
                                (g->w - r + g->sw - 1) / g->sw, g->p, g->ow, -1, NULL, 0, 0, {{0}}};
                for (int64_t i = 0; i < g->kh; i++)
                    for (int64_t j = 0; j < g->kw; j++) {
                        int64_t a = q + g->ph - i * g->dh, c = r + g->pw - j * g->dw;
                        if (floor_mod(a, g->sh) || floor_mod(c, g->sw)) continue;
                        tc.tap[tc.ntaps++] = (direct_tap){floor_div(a, g->sh), 0, floor_div(c, g->sw), g->ow,
                                                          (i * g->kw + j) * g->cout_g * pad};
                    }
                int64_t phase = tc.oh * tc.ow;
                for (int64_t gi = 0; gi < g->groups; gi++)
                    tap_conv_run(&tc, dy + (b * g->cout + gi * g->cout_g) * g->p, wp + gi * taps * g->cout_g * pad,
                                 NULL, plane + gi * g->cin_g * phase);
                plane += g->cin * phase;
            }
        merge_phases(g, scratch, dx + b * g->cin * g->h * g->w);
    }
}

/* dx (cin, H, W) from its phase planes ps (input_avx512). */
TARGET static void merge_phases(const conv_geometry *g, const float *ps, float *dx)
{
    int64_t sh = g->sh, sw = g->sw;
    int64_t ow0 = (g->w + sw - 1) / sw;
    __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    /* lane 2k of lo takes even[k], lane 2k + 1 odd[k] (index 16 + k); hi the same from k = 8 */
    __m512i half = _mm512_srli_epi32(iota, 1), odd_lane = _mm512_and_si512(iota, _mm512_set1_epi32(1));
    __m512i lo_index = _mm512_add_epi32(half, _mm512_slli_epi32(odd_lane, 4));
    __m512i hi_index = _mm512_add_epi32(lo_index, _mm512_set1_epi32(8));
    for (int64_t q = 0; q < sh; q++) {
        int64_t rows = (g->h - q + sh - 1) / sh;
        for (int64_t r = 0; r < sw; r++) {
            int64_t cols = (g->w - r + sw - 1) / sw;
            /* The planes of phase (q, r): after those of the earlier phases, cin x rows x cols. */
            int64_t before = 0;
            for (int64_t qq = 0; qq < sh; qq++)
                for (int64_t rr = 0; rr < sw; rr++)
                    if (qq * sw + rr < q * sw + r)
                        before += ((g->h - qq + sh - 1) / sh) * ((g->w - rr + sw - 1) / sw);
            const float *src = ps + g->cin * before;
            if (sw == 2 && r == 1) continue;   /* merged with r = 0 below */
            for (int64_t c = 0; c < g->cin; c++)
                for (int64_t h = 0; h < rows; h++) {
                    const float *row = src + (c * rows + h) * cols;
                    float *out = dx + (c * g->h + h * sh + q) * g->w;
                    if (sw == 2) {
                        /* phase r = 1 follows r = 0 in ps, cin x rows x ow0 floats later */
                        int64_t odd_cols = g->w / 2;
                        const float *odd = src + g->cin * rows * ow0 + (c * rows + h) * odd_cols;
                        for (int64_t w0 = 0; w0 < ow0; w0 += LANES) {
                            __m512 e = _mm512_maskz_loadu_ps(width_mask(ow0 - w0 < LANES ? ow0 - w0 : LANES), row + w0);
                            __m512 o = _mm512_maskz_loadu_ps(odd_cols - w0 <= 0 ? 0
                                                             : width_mask(odd_cols - w0 < LANES ? odd_cols - w0 : LANES),
                                                             odd + (odd_cols > w0 ? w0 : 0));
                            int64_t n = g->w - 2 * w0;
                            _mm512_mask_storeu_ps(out + 2 * w0, width_mask(n < LANES ? n : LANES),
                                                  _mm512_permutex2var_ps(e, lo_index, o));
                            if (n > LANES)
                                _mm512_mask_storeu_ps(out + 2 * w0 + LANES, width_mask(n - LANES < LANES ? n - LANES : LANES),
                                                      _mm512_permutex2var_ps(e, hi_index, o));
                        }
                        continue;
                    }
                    for (int64_t w = 0; w < cols; w++) out[w * sw + r] = row[w];
                }
        }
    }
}

/* acc[c][k J + jj] += dy[c] x[k] shifted by tap jj, over `rows` output rows from dp and xp
 * (the block's first channels), channels dy_stride / x_stride apart; x read at xp + xu[jj]
 * without masks, dy with the mask dm unless full. */
TARGET INLINE void weight_rows(__m512 acc[WCO_MAX][WCI_MAX * WJ_MAX], const float *dp, const float *xp, int64_t rows,
                               int64_t dy_step, int64_t x_step, int64_t dy_stride, int64_t x_stride,
                               const int64_t *xu, __mmask16 dm, const bool full, const int CO, const int CI,
                               const int J)
{
    int64_t u0 = xu[0], u1 = J > 1 ? xu[1] : 0, u2 = J > 2 ? xu[2] : 0;
    for (int64_t r = 0; r < rows; r++, dp += dy_step, xp += x_step) {
        __m512 d[WCO_MAX];
        _Pragma("GCC unroll 32")
        for (int c = 0; c < CO; c++)
            d[c] = full ? _mm512_loadu_ps(dp + c * dy_stride) : _mm512_maskz_loadu_ps(dm, dp + c * dy_stride);
        _Pragma("GCC unroll 32")
        for (int k = 0; k < CI; k++)
            _Pragma("GCC unroll 32")
            for (int jj = 0; jj < J; jj++) {
                int64_t u = jj == 0 ? u0 : jj == 1 ? u1 : u2;
                __m512 v = _mm512_loadu_ps(shifted(xp + k * x_stride, u));
                _Pragma("GCC unroll 32")
                for (int c = 0; c < CO; c++) acc[c][k * J + jj] = _mm512_fmadd_ps(d[c], v, acc[c][k * J + jj]);
            }
    }
}

/* lanes[co0 + c, ci0 + k, (i, j0 + jj)] (16 floats each) += lane-wise sums of dy[co0 + c]
 * x[ci0 + k] shifted by the tap, over samples [0, nb) (dyb, xb: the first one's group; x in
 * layout l), for c < CO, k < CI, jj < J: CO x CI x J accumulators in registers.  Their lanes
 * are added once at the end of the whole pass (weight_avx512), not once per block: with 16
 * outputs a row and few rows, 24 horizontal sums per block cost a third of its time.  The J
 * taps of a row share the loads of dy.  Rows beyond nco / nci and taps beyond kw are computed
 * but not kept. */
TARGET INLINE void weight_block(const conv_geometry *g, const src_layout *l, const tap_column *cols,
                                const float *dyb, const float *xb, int64_t nb, int64_t co0, int64_t nco,
                                int64_t ci0, int64_t nci, int64_t i, int64_t j0, float *lanes, bool first_chunk,
                                const int CO, const int CI, const int J)
{
    int64_t taps = g->kh * g->kw, dy_sample = g->cout * g->p;
    __m512 acc[WCO_MAX][WCI_MAX * WJ_MAX];
    _Pragma("GCC unroll 32")
    for (int c = 0; c < CO; c++)
        _Pragma("GCC unroll 32")
        for (int k = 0; k < CI; k++)
            _Pragma("GCC unroll 32")
            for (int jj = 0; jj < J; jj++)
                acc[c][k * J + jj] = !first_chunk && c < nco && k < nci && j0 + jj < g->kw
                                         ? _mm512_loadu_ps(lanes + (((co0 + c) * g->cin_g + ci0 + k) * taps
                                                                    + i * g->kw + j0 + jj) * LANES)
                                         : _mm512_setzero_ps();
    const float *dyc[WCO_MAX], *xc[WCI_MAX];
    _Pragma("GCC unroll 32")
    for (int c = 0; c < CO; c++) dyc[c] = dyb + (co0 + (c < nco ? c : 0)) * g->p;
    _Pragma("GCC unroll 32")
    for (int k = 0; k < CI; k++) xc[k] = xb + (ci0 + (k < nci ? k : 0)) * l->chan;
    /* Channels a whole block apart (or a single one) have uniform strides. */
    bool uniform = (nco >= CO || nco == 1) && (nci >= CI || nci == 1);
    int64_t dy_stride = nco == 1 ? 0 : g->p, x_stride = nci == 1 ? 0 : l->chan;
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
            const tap_column *tc = &cols[j0 + jj < g->kw ? j0 + jj : 0];
            int64_t iw0 = ow0 + tc->shift;
            xm[jj] = j0 + jj < g->kw ? column_mask(iw0, width, tc->width) : 0;
            xo[jj] = xm[jj] ? tc->base + iw0 : 0;
        }
        if (uniform) {
            /* Two running pointers and two channel strides: few registers, no reloads; x
             * unmasked (padded copy), dy masked only in a ragged last segment. */
            int64_t xu[WJ_MAX];
            _Pragma("GCC unroll 32")
            for (int jj = 0; jj < J; jj++) {
                const tap_column *tc = &cols[j0 + jj < g->kw ? j0 + jj : 0];
                xu[jj] = tc->base + ow0 + tc->shift;
            }
            for (int64_t b = 0; b < nb && oh_lo < oh_hi; b++) {
                const float *dp = dyb + co0 * g->p + b * dy_sample + oh_lo * g->ow + ow0;
                const float *xp = xb + ci0 * l->chan + b * l->sample + (oh_lo * g->sh - g->ph + i * g->dh) * l->row;
                if (width == LANES)
                    weight_rows(acc, dp, xp, oh_hi - oh_lo, g->ow, g->sh * l->row, dy_stride, x_stride, xu, dm, true,
                                CO, CI, J);
                else
                    weight_rows(acc, dp, xp, oh_hi - oh_lo, g->ow, g->sh * l->row, dy_stride, x_stride, xu, dm, false,
                                CO, CI, J);
            }
            continue;
        }
        for (int64_t b = 0; b < nb; b++)
        for (int64_t oh = oh_lo; oh < oh_hi; oh++) {
            int64_t yo = b * dy_sample + oh * g->ow + ow0;
            int64_t row = b * l->sample + (oh * g->sh - g->ph + i * g->dh) * l->row;
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
                    _mm512_storeu_ps(lanes + (((co0 + c) * g->cin_g + ci0 + k) * taps + i * g->kw + j0 + jj) * LANES,
                                     acc[c][k * J + jj]);
}

TARGET static void weight_avx512(const conv_geometry *g, const float *dy, const float *x, float *dw,
                                 float *scratch)
{
    src_layout l = weight_layout(g);
    tap_column cols[CONV_DIRECT_MAX_TAPS];
    for (int64_t j = 0; j < g->kw; j++) cols[j] = tap_column_of(g, &l, j);
    bool rows_of_three = g->kw % 3 == 0;
    int64_t chunk = weight_chunk(g), taps = g->kh * g->kw, n = g->cout * g->cin_g * taps;
    float *lanes = scratch, *split = scratch + n * LANES;
    /* lanes: set by the first chunk's blocks (each stores every lane it owns), no memset */
    memset(split, 0, sizeof(float) * (size_t)(chunk * l.sample));   /* the padding, once */
    for (int64_t b0 = 0; b0 < g->batch; b0 += chunk) {
        int64_t nb = g->batch - b0 < chunk ? g->batch - b0 : chunk;
        const float *xs = split;
        split_columns(g, &l, x + b0 * g->cin * g->h * g->w, nb, split);
        /* The next chunk's x and dy come from memory meanwhile, a few lines per block. */
        int64_t next = b0 + nb < g->batch ? (g->batch - b0 - nb < chunk ? g->batch - b0 - nb : chunk) : 0;
        const char *ahead_x = (const char *)(x + (b0 + nb) * g->cin * g->h * g->w);
        const char *ahead_dy = (const char *)(dy + (b0 + nb) * g->cout * g->p);
        int64_t x_lines = next * g->cin * g->h * g->w / 16, dy_lines = next * g->cout * g->p / 16;
        int64_t blocks = g->groups * ((g->cin_g + 1) / 2) * ((g->cout_g + WCO_MAX - 1) / WCO_MAX) * g->kh;
        int64_t per_block = blocks > 0 ? (x_lines + dy_lines + blocks - 1) / blocks : 0, line = 0;
        for (int64_t gi = 0; gi < g->groups; gi++) {
            const float *xb = xs + gi * g->cin_g * l.chan;
            const float *dyb = dy + (b0 * g->cout + gi * g->cout_g) * g->p;
            float *dwg = lanes + gi * g->cout_g * g->cin_g * taps * LANES;
            for (int64_t ci0 = 0; ci0 < g->cin_g; ci0 += WEIGHT_CI_STEP(rows_of_three))
                for (int64_t co0 = 0; co0 < g->cout_g; co0 += WCO_MAX)
                    for (int64_t i = 0; i < g->kh; i++)
                        for (int64_t j0 = 0; j0 < g->kw; j0 += rows_of_three ? 3 : 1) {
                            for (int64_t k = 0; k < per_block && line < x_lines + dy_lines; k++, line++)
                                _mm_prefetch(line < x_lines ? ahead_x + line * 64 : ahead_dy + (line - x_lines) * 64,
                                             _MM_HINT_T1);
                            if (rows_of_three)
                                weight_block(g, &l, cols, dyb, xb, nb, co0, g->cout_g - co0, ci0, g->cin_g - ci0,
                                             i, j0, dwg, b0 == 0, WCO_MAX, 2, 3);
                            else
                                weight_block(g, &l, cols, dyb, xb, nb, co0, g->cout_g - co0, ci0, g->cin_g - ci0,
                                             i, j0, dwg, b0 == 0, WCO_MAX, 6, 1);
                        }
        }
    }
    for (int64_t k = 0; k < n; k++) dw[k] += _mm512_reduce_add_ps(_mm512_loadu_ps(lanes + k * LANES));
}

void conv_direct_forward(const conv_geometry *g, const float *x, const float *wp, const float *bias, float *y,
                         float *scratch, const float *ahead)
{
    if (g->batch == 0) return;   /* and no scratch */
    src_layout l = forward_layout(g);
    memset(scratch, 0, sizeof(float) * (size_t)l.sample);   /* the padding, once */
    int64_t in_size = g->cin * g->h * g->w;
    for (int64_t b = 0; b < g->batch; b++) {
        split_columns(g, &l, x + b * in_size, 1, scratch);
        forward_avx512(g, &l, scratch, 1, wp, bias, y + b * g->cout * g->p,
                       b + 1 < g->batch ? x + (b + 1) * in_size : ahead, in_size);
    }
}

void conv_direct_weight(const conv_geometry *g, const float *dy, const float *x, float *dw, float *scratch)
{
    if (g->batch == 0) return;   /* and no scratch */
    weight_avx512(g, dy, x, dw, scratch);
}

void conv_direct_input(const conv_geometry *g, const float *dy, const float *wp, float *dx, float *scratch)
{
    input_avx512(g, dy, wp, dx, scratch);
}

#else

void conv_direct_forward(const conv_geometry *g, const float *x, const float *wp, const float *bias, float *y,
                         float *scratch, const float *ahead)
{
    (void)g, (void)x, (void)wp, (void)bias, (void)y, (void)scratch, (void)ahead;
}

void conv_direct_weight(const conv_geometry *g, const float *dy, const float *x, float *dw, float *scratch)
{
    (void)g, (void)dy, (void)x, (void)dw, (void)scratch;
}

void conv_direct_input(const conv_geometry *g, const float *dy, const float *wp, float *dx, float *scratch)
{
    (void)g, (void)dy, (void)wp, (void)dx, (void)scratch;
}

#endif
