/*
 * conv_kernels.h — what conv.c shares with its direct kernels (conv_direct.c);
 * private to the engine.
 */
#ifndef GRADLAB_CONV_KERNELS_H
#define GRADLAB_CONV_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

/* One convolution's sizes, checked by conv.c's conv_check. */
typedef struct conv_geometry {
    bool batched;                       /* 4-d input; else (C, H, W) as one sample */
    int64_t batch, cin, h, w;
    int64_t cout, kh, kw, groups;
    int64_t sh, sw, ph, pw, dh, dw;
    int64_t oh, ow;
    int64_t cin_g, cout_g, k, p;        /* per group: input channels, outputs, col rows; P = OH OW */
    bool pointwise;                     /* col == x */
    bool direct;                        /* run by conv_direct.c instead of im2col + sgemm */
} conv_geometry;

/* True when this CPU runs the direct kernels (AVX-512F) and g suits them:
 * at most CONV_DIRECT_MAX_TAPS kernel positions.  A horizontal stride above 1
 * takes a scratch copy of x with its columns split by phase. */
enum { CONV_DIRECT_MAX_TAPS = 256 };
bool conv_direct_suits(const conv_geometry *g);

/* Floats of the direct kernels' weight layouts (the larger of the two), and the
 * repackings into them, for the forward (output channels padded to a whole
 * register block) and for dx (input channels padded):
 *   wp[((group taps + tap) cin_g + ci) cout_pad + co] = w[group cout_g + co, ci, tap]
 *   wp[((group taps + tap) cout_g + co) cin_pad + ci] = w[group cout_g + co, ci, tap]. */
int64_t conv_direct_packed_floats(const conv_geometry *g);
void conv_direct_pack_weight(const conv_geometry *g, const float *w, float *wp);
void conv_direct_pack_weight_input(const conv_geometry *g, const float *w, float *wp);

/* Floats of scratch conv_direct_forward (weight false) or conv_direct_weight
 * (weight true) needs: at horizontal stride above 1, a phase-split copy of one or
 * a few samples of x; for the weight, also 16 partial sums per weight. */
int64_t conv_direct_scratch_floats(const conv_geometry *g, bool weight);

/* y (B, Cout, OH, OW) = conv(x) (+ bias, or NULL), from the packed weights.  ahead:
 * the sample of x to fetch into cache while the last one computes (the caller's next), or NULL. */
void conv_direct_forward(const conv_geometry *g, const float *x, const float *wp, const float *bias,
                         float *y, float *scratch, const float *ahead);

/* dw (Cout, Cin/G, kh, kw) += sum over the batch of dy (*) x. */
void conv_direct_weight(const conv_geometry *g, const float *dy, const float *x, float *dw, float *scratch);

/* dx (B, Cin, H, W) = the adjoint of the convolution applied to dy, for any stride
 * and padding, from the weights packed by conv_direct_pack_weight_input; scratch:
 * conv_direct_input_scratch_floats (one sample's dx, split by phase). */
int64_t conv_direct_input_scratch_floats(const conv_geometry *g);
void conv_direct_input(const conv_geometry *g, const float *dy, const float *wp, float *dx, float *scratch);

#endif
