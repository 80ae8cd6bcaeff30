/*
 * text.h — anti-aliased text: DejaVu Sans through FreeType, or the built-in
 * bitmap font when no font file can be loaded.
 *
 * A plot_font is opened once per figure and closed with it (no global
 * FreeType state).  Sizes are in pixels per em.  Layout uses a fixed text
 * box per size — font_ascent() above the baseline, font_descent() below —
 * so labels align the same way whatever their letters.
 */
#ifndef GRADLAB_PLOT_TEXT_H
#define GRADLAB_PLOT_TEXT_H

#include <stdbool.h>

#include "canvas.h"

/* Internal to plots/: hidden from the symbol tables of the shared objects,
 * which export only gl_plot_*. */
#pragma GCC visibility push(hidden)

typedef struct plot_font plot_font;

/* Opens the font named by $GRADLAB_FONT when set (the built-in font when that
 * file cannot be loaded), else the first DejaVu Sans found in the usual
 * places, else the built-in font.  Fails only for lack of memory. */
gl_plot_status font_open(plot_font **out, gl_plot_error *err);
void font_close(plot_font *font);   /* NULL is a no-op */
bool font_is_fallback(const plot_font *font);

float font_ascent(const plot_font *font, float size);
float font_descent(const plot_font *font, float size);
float text_width(plot_font *font, float size, const char *utf8);

typedef enum text_halign { TEXT_LEFT, TEXT_CENTER, TEXT_RIGHT } text_halign;
typedef enum text_valign { TEXT_TOP, TEXT_MIDDLE, TEXT_BASELINE, TEXT_BOTTOM } text_valign;

/* Draws one line of UTF-8 text anchored at (x, y). */
gl_plot_status text_draw(canvas *c, clip_rect clip, plot_font *font, float size,
                         const char *utf8, float x, float y, text_halign ha, text_valign va,
                         uint32_t color, gl_plot_error *err);
/* Draws text turned 90 degrees counter-clockwise (reading upwards), its
 * text box centred on (cx, cy). */
gl_plot_status text_draw_vertical(canvas *c, clip_rect clip, plot_font *font, float size,
                                  const char *utf8, float cx, float cy, uint32_t color,
                                  gl_plot_error *err);

#pragma GCC visibility pop

#endif
