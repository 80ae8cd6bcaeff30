/*
 * font_fallback.h — the built-in bitmap font, used when no TrueType font can
 * be loaded, so a figure always has legible text.
 *
 * Printable ASCII (32..126) on a 5-column grid of 9 rows: rows 0..6 stand on
 * the baseline (row 6 is the bottom of a capital), rows 7..8 hold
 * descenders.  Drawn at an integer scale, so it stays crisp.
 */
#ifndef GRADLAB_PLOT_FONT_FALLBACK_H
#define GRADLAB_PLOT_FONT_FALLBACK_H

#include <stdint.h>

/* Internal to plots/: hidden from the symbol tables of the shared objects,
 * which export only gl_plot_*. */
#pragma GCC visibility push(hidden)

#define FALLBACK_COLS 5
#define FALLBACK_ROWS 9
#define FALLBACK_CAP_ROWS 7

/* The 9 row bitmaps of a codepoint (bit 4 is the leftmost column).  The
 * minus sign U+2212 maps to '-', anything else outside ASCII to '?'. */
const uint8_t *fallback_glyph(uint32_t codepoint);

/* Columns [*first, *end) holding ink; a blank glyph (space) gives 0, 2 so
 * proportional spacing still leaves a gap. */
void fallback_glyph_span(const uint8_t *rows, int *first, int *end);

#pragma GCC visibility pop

#endif
