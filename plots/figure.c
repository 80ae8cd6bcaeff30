/* figure.c — a figure: the canvas, the grid of panels, rendering and saving. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "figure.h"

#define SUPTITLE_PT 14.0f

void ctx_fail(plot_ctx *ctx, gl_plot_status status)
{
    if (ctx->status == GL_PLOT_OK) ctx->status = status;
}

float ctx_text_width(plot_ctx *ctx, float size_pt, const char *text)
{
    return text ? text_width(ctx->font, ctx_px(ctx, size_pt), text) : 0;
}

float ctx_text_height(const plot_ctx *ctx, float size_pt)
{
    float size = ctx_px(ctx, size_pt);
    return font_ascent(ctx->font, size) + font_descent(ctx->font, size);
}

void ctx_text_clipped(plot_ctx *ctx, clip_rect clip, float size_pt, const char *text, float x,
                      float y, text_halign ha, text_valign va, uint32_t color)
{
    if (!ctx_ok(ctx)) return;
    ctx_fail(ctx, text_draw(ctx->canvas, clip, ctx->font, ctx_px(ctx, size_pt), text, x, y, ha,
                            va, color, ctx->err));
}

void ctx_text(plot_ctx *ctx, float size_pt, const char *text, float x, float y, text_halign ha,
              text_valign va, uint32_t color)
{
    ctx_text_clipped(ctx, ctx->clip, size_pt, text, x, y, ha, va, color);
}

void ctx_text_vertical(plot_ctx *ctx, float size_pt, const char *text, float cx, float cy,
                       uint32_t color)
{
    if (!ctx_ok(ctx)) return;
    ctx_fail(ctx, text_draw_vertical(ctx->canvas, ctx->clip, ctx->font, ctx_px(ctx, size_pt), text,
                                     cx, cy, color, ctx->err));
}

float ctx_snap_width(float width)
{
    float w = roundf(width);
    return w < 1 ? 1 : w;
}

float ctx_snap(float v, float width)
{
    /* An odd width is crisp centred on a pixel centre, an even one on an edge. */
    return ((int)width % 2 == 1) ? floorf(v) + 0.5f : roundf(v);
}

void ctx_hline(plot_ctx *ctx, clip_rect clip, float x0, float x1, float y, float width,
               uint32_t color)
{
    box b = {x0, y - width * 0.5f, x1, y + width * 0.5f};
    canvas_fill_rect(ctx->canvas, clip, b, color, 1.0f);
}

void ctx_vline(plot_ctx *ctx, clip_rect clip, float x, float y0, float y1, float width,
               uint32_t color)
{
    box b = {x - width * 0.5f, y0, x + width * 0.5f, y1};
    canvas_fill_rect(ctx->canvas, clip, b, color, 1.0f);
}

const char *note_format(char *buffer, size_t size, int64_t nonfinite, int64_t nonpositive,
                        const char *one, const char *many)
{
    const char *what = nonfinite + nonpositive == 1 ? one : many;
    if (nonfinite > 0 && nonpositive > 0)
        snprintf(buffer, size, "%lld non-finite and %lld non-positive (log scale) %s skipped",
                 (long long)nonfinite, (long long)nonpositive, what);
    else if (nonfinite > 0)
        snprintf(buffer, size, "%lld non-finite %s skipped", (long long)nonfinite, what);
    else if (nonpositive > 0)
        snprintf(buffer, size, "%lld non-positive %s skipped (log scale)", (long long)nonpositive,
                 what);
    else
        return NULL;
    return buffer;
}

/* ------------------------------------------------------------- figure */

static void figure_size(const gl_plot_figure *f, int rows, int cols, int *width, int *height)
{
    bool grid = f->npanels > 1 || f->is_grid;
    int title = grid && f->title && *f->title ? 40 : 0;
    *width = f->width ? f->width : grid ? (cols <= 2 ? 1200 : 600 * cols) : 1200;
    *height = f->height ? f->height : grid ? 480 * rows + title : 700;
    if (*width > GL_PLOT_MAX_SIZE) *width = GL_PLOT_MAX_SIZE;
    if (*height > GL_PLOT_MAX_SIZE) *height = GL_PLOT_MAX_SIZE;
}

/* Pixels per point.  A 1200 x 700 plot gets 1.4 (about matplotlib at
 * 100 dpi, text a little larger); a grid panel of 640 x 480 gets the same,
 * as in a matplotlib figure of subplots; bigger figures scale up so a
 * poster-size render does not have tiny text, smaller ones scale down only
 * a little, text staying readable. */
static float figure_pt(const gl_plot_figure *f, int width, int height, int rows, int cols)
{
    bool grid = f->npanels > 1 || f->is_grid;
    float k = grid ? fminf((float)width / (float)cols / 640.0f, (float)height / (float)rows / 480.0f)
                   : fminf((float)width / 1200.0f, (float)height / 700.0f);
    if (k < 0.85f) k = 0.85f;
    if (k > 8) k = 8;
    return 1.4f * k;
}

gl_plot_status gl_plot_render(const gl_plot_figure *f, gl_plot_image *out, gl_plot_error *err)
{
    out->width = out->height = 0;
    out->rgba = NULL;
    gl_plot_status status = gl_plot_validate(f, err);
    if (status) return status;

    int cols = f->cols > 0 ? f->cols : (f->npanels < 2 ? f->npanels : 2);
    if (cols > f->npanels) cols = f->npanels;
    int rows = (f->npanels + cols - 1) / cols;
    int width, height;
    figure_size(f, rows, cols, &width, &height);

    canvas c;
    status = canvas_init(&c, width, height, COLOR_WHITE, err);
    if (status) return status;
    plot_font *font;
    status = font_open(&font, err);
    if (status) {
        canvas_free(&c);
        return status;
    }
    plot_ctx ctx = {&c, canvas_clip_all(&c), font, figure_pt(f, width, height, rows, cols),
                    GL_PLOT_OK, err};

    float top = 0;
    bool grid = f->npanels > 1 || f->is_grid;
    if (grid && f->title && *f->title) {
        float pad = ctx_px(&ctx, STYLE_PAD_PT);
        ctx_text(&ctx, SUPTITLE_PT, f->title, (float)width * 0.5f, pad, TEXT_CENTER, TEXT_TOP,
                 COLOR_TEXT);
        top = pad + ctx_text_height(&ctx, SUPTITLE_PT) + ctx_px(&ctx, 2);
    }
    float cell_w = (float)width / (float)cols, cell_h = ((float)height - top) / (float)rows;
    for (int i = 0; i < f->npanels && ctx_ok(&ctx); i++) {
        int r = i / cols, col = i % cols;
        box area = {cell_w * (float)col, top + cell_h * (float)r, cell_w * (float)(col + 1),
                    top + cell_h * (float)(r + 1)};
        const gl_plot_panel *p = &f->panels[i];
        switch (p->kind) {
        case GL_PLOT_LINES: plot_lines_draw(&ctx, p, area); break;
        case GL_PLOT_HEATMAP: plot_heatmap_draw(&ctx, p, area); break;
        case GL_PLOT_HISTOGRAM: plot_histogram_draw(&ctx, p, area); break;
        }
    }
    font_close(font);
    if (ctx.status) {
        canvas_free(&c);
        return ctx.status;
    }
    out->width = width;
    out->height = height;
    out->rgba = c.rgba;
    return GL_PLOT_OK;
}

gl_plot_status gl_plot_save(const char *path, const gl_plot_figure *figure, gl_plot_error *err)
{
    if (!path || !*path) return gl_plot_error_set(err, GL_PLOT_EARG, "path is empty");
    gl_plot_image image;
    gl_plot_status status = gl_plot_render(figure, &image, err);
    if (status) return status;
    unsigned char *bytes = NULL;
    size_t size = 0;
    status = gl_plot_png_encode(&image, &bytes, &size, err);
    gl_plot_image_free(&image);
    if (status) return status;
    status = gl_plot_file_write_atomic(path, bytes, size, err);
    free(bytes);
    return status;
}
