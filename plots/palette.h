/*
 * palette.h — colours and line styles: the categorical palette for series,
 * the style cycle past it, and the viridis colormap for heatmaps.
 */
#ifndef GRADLAB_PLOT_PALETTE_H
#define GRADLAB_PLOT_PALETTE_H

#include <stdint.h>

#include "canvas.h"

/* Internal to plots/: hidden from the symbol tables of the shared objects,
 * which export only gl_plot_*. */
#pragma GCC visibility push(hidden)

#define PALETTE_SIZE 10

/* Tableau 10 (2016), chosen for legibility under colour-vision deficiency;
 * index cycles.  Series 11-20 reuse the colours dashed, then dotted, then
 * dash-dot, so up to 40 series stay distinguishable. */
uint32_t palette_color(int index);
gl_plot_style palette_style(int index);
gl_plot_marker palette_marker(int index);
/* The dash pattern of a style (solid is n = 0), in units of line width. */
dash_pattern style_dashes(gl_plot_style style);

/* viridis at t in [0, 1] (clamped), interpolated from its 256-entry table. */
uint32_t viridis(double t);

/* Mixes two colours: t = 0 gives a, t = 1 gives b. */
uint32_t color_mix(uint32_t a, uint32_t b, float t);

#pragma GCC visibility pop

#endif
