/*
 * legend.h — the legend box: measured like matplotlib's (sizes in ems of
 * the legend font), placed inside the axes where it hides the fewest data
 * or outside on the right when it is too big for that.
 */
#ifndef GRADLAB_PLOT_LEGEND_H
#define GRADLAB_PLOT_LEGEND_H

#include "figure.h"

/* Internal to plots/: hidden from the symbol tables of the shared objects,
 * which export only gl_plot_*. */
#pragma GCC visibility push(hidden)

typedef enum legend_handle { LEGEND_LINE, LEGEND_PATCH } legend_handle;

typedef struct legend_entry {
    const char *label;
    uint32_t color;
    legend_handle handle;
    gl_plot_style style;          /* LEGEND_LINE */
    gl_plot_marker marker;        /* LEGEND_LINE, NONE for none */
    float alpha;                  /* LEGEND_PATCH fill opacity */
} legend_entry;

typedef struct legend {
    const legend_entry *entries;
    int n;
    int ncols;
    float font_pt;                /* 0 for STYLE_LEGEND_PT */
    float width, height;          /* set by legend_measure */
    float label_width;            /* widest label, cached by legend_measure */
} legend;

void legend_measure(plot_ctx *ctx, legend *lg);

/* Data drawn in the axes, as pixel polylines, for choosing where the legend
 * hides least. */
typedef struct legend_obstacles {
    int count;
    const float *const *xy;       /* xy[i]: npts[i] (x, y) pairs */
    const int64_t *npts;
} legend_obstacles;

/* The best of matplotlib's inside locations for a measured legend: fewest
 * data vertices and segments under it (*hidden, if not NULL), upper right
 * on ties. */
box legend_place_inside(plot_ctx *ctx, const legend *lg, box frame,
                        const legend_obstacles *obstacles, int64_t *hidden);
/* The legend's box when placed outside, right of the frame, top-aligned. */
box legend_place_outside(plot_ctx *ctx, const legend *lg, box frame);
/* Number of columns so the legend fits `max_height` pixels. */
int legend_columns_for(plot_ctx *ctx, legend *lg, float max_height);

void legend_draw(plot_ctx *ctx, legend *lg, box at);

/* Draws a marker of diameter `size` centred at (x, y). */
void marker_draw(plot_ctx *ctx, clip_rect clip, gl_plot_marker marker, float x, float y,
                 float size, uint32_t color);

#pragma GCC visibility pop

#endif
