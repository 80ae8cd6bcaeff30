/*
 * figure.h — what panels share while a figure is drawn: the canvas, the
 * font, the style sizes and a sticky error status.
 *
 * Drawing helpers record the first failure (only running out of memory can
 * fail) in the context and turn later calls into no-ops, so drawing code
 * reads straight through and the figure checks ctx->status once at the end.
 */
#ifndef GRADLAB_PLOT_FIGURE_H
#define GRADLAB_PLOT_FIGURE_H

#include "canvas.h"
#include "text.h"

/* Internal to plots/: hidden from the symbol tables of the shared objects,
 * which export only gl_plot_*. */
#pragma GCC visibility push(hidden)

typedef struct plot_ctx {
    canvas *canvas;
    clip_rect clip;           /* the whole canvas */
    plot_font *font;
    float pt;                 /* pixels per point: the figure's "dpi" / 72 */
    gl_plot_status status;    /* first failure, GL_PLOT_OK until then */
    gl_plot_error *err;
} plot_ctx;

/* Style sizes in points (matplotlib's defaults, text slightly larger for
 * figures that end up shrunk into a paper column). */
#define STYLE_TITLE_PT 13.0f
#define STYLE_LABEL_PT 11.0f
#define STYLE_TICK_PT 10.0f
#define STYLE_LEGEND_PT 10.0f
#define STYLE_NOTE_PT 8.5f
#define STYLE_LINE_PT 1.5f        /* data lines */
#define STYLE_SPINE_PT 0.8f
#define STYLE_TICK_LEN_PT 3.5f
#define STYLE_MINOR_LEN_PT 2.0f
#define STYLE_TICK_PAD_PT 3.5f
#define STYLE_PAD_PT 7.0f         /* around each panel */
#define STYLE_MARKER_PT 6.0f      /* marker diameter */

#define COLOR_TEXT 0x1a1a1aU
#define COLOR_SPINE 0x333333U
#define COLOR_GRID 0xe3e3e3U
#define COLOR_GRID_MINOR 0xf3f3f3U
#define COLOR_NOTE 0xa8332bU
#define COLOR_WHITE 0xffffffU

static inline float ctx_px(const plot_ctx *ctx, float points) { return points * ctx->pt; }
static inline bool ctx_ok(const plot_ctx *ctx) { return ctx->status == GL_PLOT_OK; }
/* Records a failure status (the first one wins). */
void ctx_fail(plot_ctx *ctx, gl_plot_status status);

float ctx_text_width(plot_ctx *ctx, float size_pt, const char *text);
float ctx_text_height(const plot_ctx *ctx, float size_pt);   /* ascent + descent, px */
void ctx_text(plot_ctx *ctx, float size_pt, const char *text, float x, float y, text_halign ha,
              text_valign va, uint32_t color);
void ctx_text_clipped(plot_ctx *ctx, clip_rect clip, float size_pt, const char *text, float x,
                      float y, text_halign ha, text_valign va, uint32_t color);
void ctx_text_vertical(plot_ctx *ctx, float size_pt, const char *text, float cx, float cy,
                       uint32_t color);
/* Crisp horizontal/vertical lines `width` px wide, centred on the pixel
 * grid so a 1 px line covers exactly one row or column. */
void ctx_hline(plot_ctx *ctx, clip_rect clip, float x0, float x1, float y, float width,
               uint32_t color);
void ctx_vline(plot_ctx *ctx, clip_rect clip, float x, float y0, float y1, float width,
               uint32_t color);
/* Rounds a line width to whole pixels (at least 1) and a coordinate to
 * where such a line is crisp. */
float ctx_snap_width(float width);
float ctx_snap(float v, float width);

/* Formats the skipped-points note ("3 non-finite points skipped") into
 * buffer; returns NULL when nothing was skipped. */
const char *note_format(char *buffer, size_t size, int64_t nonfinite, int64_t nonpositive,
                        const char *one, const char *many);

/* The panels, each drawn inside `area`. */
void plot_lines_draw(plot_ctx *ctx, const gl_plot_panel *panel, box area);
void plot_heatmap_draw(plot_ctx *ctx, const gl_plot_panel *panel, box area);
void plot_histogram_draw(plot_ctx *ctx, const gl_plot_panel *panel, box area);

#pragma GCC visibility pop

#endif
