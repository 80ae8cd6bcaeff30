/*
 * canvas.h — the rasterizer: an opaque RGBA canvas, anti-aliased shapes
 * with alpha blending, and coverage masks for stroking polylines.
 *
 * Coordinates are float pixels, y down; pixel (i, j) covers [i, i+1) x
 * [j, j+1), so its centre is (i + 0.5, j + 0.5).  Every drawing call takes a
 * clip rectangle and never writes outside it.  Colours are 0xRRGGBB with a
 * separate opacity in 0..1.
 */
#ifndef GRADLAB_PLOT_CANVAS_H
#define GRADLAB_PLOT_CANVAS_H

#include <stdint.h>

#include "plot.h"

/* Internal to plots/: hidden from the symbol tables of the shared objects,
 * which export only gl_plot_*. */
#pragma GCC visibility push(hidden)

typedef struct canvas {
    int width, height;
    uint8_t *rgba;          /* width * height * 4 bytes, always opaque */
} canvas;

/* A half-open rectangle of whole pixels. */
typedef struct clip_rect {
    int x0, y0, x1, y1;
} clip_rect;

/* A rectangle in float pixel coordinates. */
typedef struct box {
    float x0, y0, x1, y1;
} box;

gl_plot_status canvas_init(canvas *c, int width, int height, uint32_t background,
                           gl_plot_error *err);
void canvas_free(canvas *c);
clip_rect canvas_clip_all(const canvas *c);
clip_rect clip_intersect(clip_rect a, clip_rect b);
/* The pixels whose centres lie inside `b`, intersected with `outer`. */
clip_rect clip_of_box(box b, clip_rect outer);

/* Blends `color` at opacity `alpha` (0..1) over pixel (x, y); no bounds check. */
static inline void canvas_blend(canvas *c, int x, int y, uint32_t color, float alpha)
{
    uint8_t *p = c->rgba + ((size_t)y * (size_t)c->width + (size_t)x) * 4;
    float r = (float)((color >> 16) & 0xff), g = (float)((color >> 8) & 0xff),
          b = (float)(color & 0xff);
    p[0] = (uint8_t)(p[0] + (r - p[0]) * alpha + 0.5f);
    p[1] = (uint8_t)(p[1] + (g - p[1]) * alpha + 0.5f);
    p[2] = (uint8_t)(p[2] + (b - p[2]) * alpha + 0.5f);
}

/* Axis-aligned rectangle; fractional edges get partial coverage. */
void canvas_fill_rect(canvas *c, clip_rect clip, box b, uint32_t color, float alpha);
/* Disc of radius r (anti-aliased edge). */
void canvas_fill_circle(canvas *c, clip_rect clip, float cx, float cy, float r, uint32_t color,
                        float alpha);
/* Convex polygon given as n (x, y) pairs, either orientation. */
void canvas_fill_convex(canvas *c, clip_rect clip, const float *xy, int n, uint32_t color,
                        float alpha);
/* Rounded rectangle: filled, or only its outline of `line_width` when
 * line_width > 0. */
void canvas_round_rect(canvas *c, clip_rect clip, box b, float radius, float line_width,
                       uint32_t color, float alpha);
/* Blends an 8-bit coverage bitmap (w x h, `stride` bytes per row) with its
 * top-left pixel at (x, y). */
void canvas_blit_alpha(canvas *c, clip_rect clip, int x, int y, const uint8_t *alpha, int w,
                       int h, int stride, uint32_t color, float opacity);

/* ----------------------------------------------------------- stroking */

/*
 * Lines are stroked into a coverage mask (the max of every segment's
 * coverage) and the mask is blended once.  Taking the max rather than
 * blending each segment keeps joints and overlapping dashes from darkening,
 * and lets a translucent line look uniform.
 */
typedef struct stroke_mask {
    clip_rect area;             /* canvas pixels the mask covers */
    int w, h;
    uint8_t *cov;
    int dx0, dy0, dx1, dy1;     /* dirty rectangle in mask pixels, empty when dx0 >= dx1 */
} stroke_mask;

gl_plot_status mask_init(stroke_mask *m, clip_rect area, gl_plot_error *err);
void mask_free(stroke_mask *m);
/* A segment with round caps, `width` pixels wide (canvas coordinates). */
void mask_segment(stroke_mask *m, float ax, float ay, float bx, float by, float width);

/* Dash patterns in units of the line width, as on/off lengths. */
typedef struct dash_pattern {
    int n;                  /* 0: solid */
    float len[4];
} dash_pattern;

/* A polyline of n points (xy pairs).  Dashes are measured along the
 * polyline; `phase` carries the dash position across calls (start at 0). */
void mask_polyline(stroke_mask *m, const float *xy, int64_t n, float width,
                   const dash_pattern *dash, float *phase);
/* Adds a rectangle's coverage (saturating), so rectangles sharing an edge
 * fill it exactly once: bars of one histogram series. */
void mask_fill_rect(stroke_mask *m, box b);
/* Blends the mask in `color` at `alpha` and clears it for reuse. */
void mask_composite(stroke_mask *m, canvas *c, uint32_t color, float alpha);

#pragma GCC visibility pop

#endif
