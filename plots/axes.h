/*
 * axes.h — one plot area inside a panel: its layout (margins sized from the
 * text actually drawn around it), the data-to-pixel mapping, gridlines,
 * spines, ticks, tick labels, axis labels, title and the skipped-points note.
 */
#ifndef GRADLAB_PLOT_AXES_H
#define GRADLAB_PLOT_AXES_H

#include "figure.h"
#include "ticks.h"

/* Internal to plots/: hidden from the symbol tables of the shared objects,
 * which export only gl_plot_*. */
#pragma GCC visibility push(hidden)

typedef struct axes_spec {
    const char *title, *xlabel, *ylabel;
    const char *note;             /* drawn small under the axes; NULL for none */
    bool no_x_labels;             /* ticks without labels (stacked small multiples) */
    bool x_ticks_given;           /* the caller filled xt / yt (e.g. heatmap rows) */
    bool y_ticks_given;
    bool no_grid;
    float right_reserve;          /* pixels kept free right of the frame */
} axes_spec;

typedef struct axes {
    box frame;                    /* the plot area; edges on pixel centres */
    scale x, y;
    tick_list xt, yt;
} axes;

/* Sizes the frame inside `panel` around the text it will carry and
 * computes the ticks (unless given).  The scales must be set. */
void axes_layout(plot_ctx *ctx, box panel, const axes_spec *spec, axes *a);

static inline float axes_px_x(const axes *a, double v)
{
    return a->frame.x0 + (float)(scale_unit(&a->x, v) * (double)(a->frame.x1 - a->frame.x0));
}

static inline float axes_px_y(const axes *a, double v)
{
    return a->frame.y1 - (float)(scale_unit(&a->y, v) * (double)(a->frame.y1 - a->frame.y0));
}

/* The pixels inside the frame: data are clipped to it. */
clip_rect axes_clip(const plot_ctx *ctx, const axes *a);

/* Gridlines, drawn before the data. */
void axes_draw_grid(plot_ctx *ctx, const axes *a, const axes_spec *spec);
/* Spines, ticks, labels, title and note, drawn over the data. */
void axes_draw_frame(plot_ctx *ctx, const axes *a, const axes_spec *spec, box panel);

/* Ticks along a vertical edge at x from y0 (top, scale hi) to y1 (bottom,
 * scale lo), pointing right with labels right of them (colour bars), or
 * left; returns the widest label's width. */
float axes_draw_vticks(plot_ctx *ctx, const tick_list *ticks, const scale *s, float x, float y0,
                       float y1, bool right_side);
/* Widest major label of a tick list, in pixels. */
float ticks_label_width(plot_ctx *ctx, const tick_list *ticks);
/* How many labels fit along a vertical axis of `length` pixels. */
int ticks_fit_vertical(const plot_ctx *ctx, float length);

#pragma GCC visibility pop

#endif
