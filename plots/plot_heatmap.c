/* plot_heatmap.c — rows x steps heatmaps in viridis with a colour bar. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "axes.h"
#include "legend.h"
#include "palette.h"

#define COLOR_BAD 0xd0d0d0U     /* cells with no drawable value; viridis has no grey */

/* Copies `label` into out, cut in the middle with an ellipsis until it is
 * at most max_width pixels wide (long parameter names keep both ends). */
static void label_fit(plot_ctx *ctx, const char *label, float max_width, char *out, size_t size)
{
    size_t n = strlen(label);
    if (n < size) {
        snprintf(out, size, "%s", label);
        if (ctx_text_width(ctx, STYLE_TICK_PT, out) <= max_width) return;
    }
    for (size_t keep = n > size - 8 ? size - 8 : n; keep > 2; keep--) {
        size_t head = (keep + 1) / 2, tail = keep - head;
        /* Move the cuts to UTF-8 character boundaries. */
        while (head > 0 && ((unsigned char)label[head] & 0xC0) == 0x80) head--;
        while (tail > 0 && ((unsigned char)label[n - tail] & 0xC0) == 0x80) tail--;
        snprintf(out, size, "%.*s\xe2\x80\xa6%s", (int)head, label, label + n - tail);
        if (ctx_text_width(ctx, STYLE_TICK_PT, out) <= max_width) return;
    }
}

/* Pixel i of a frame [x0, x0 + w] divided in n cells: the cells it shows.
 * Cells at least a pixel wide are sampled at the pixel centre (crisp
 * edges); narrower ones are averaged over the pixel. */
static void cells_of_pixel(int i, float x0, float w, int64_t n, int64_t *lo, int64_t *hi)
{
    double per_px = (double)n / (double)w;
    double a = ((double)i - x0) * per_px, b = ((double)i + 1 - x0) * per_px;
    if (per_px <= 1) {
        *lo = *hi = (int64_t)floor(((double)i + 0.5 - x0) * per_px);
    } else {
        *lo = (int64_t)floor(a);
        *hi = (int64_t)ceil(b) - 1;
    }
    if (*lo < 0) *lo = 0;
    if (*hi > n - 1) *hi = n - 1;
    if (*hi < *lo) *hi = *lo;
}

void plot_heatmap_draw(plot_ctx *ctx, const gl_plot_panel *panel, box area)
{
    const gl_plot_heatmap *h = &panel->heatmap;
    const gl_plot_matrix *m = &h->values;
    int64_t rows = m->rows, cols = m->cols;
    bool logscale = !h->linear, colorbar = !h->no_colorbar;

    /* Colour range over the drawable cells, in the colour scale's space. */
    double vmin = INFINITY, vmax = -INFINITY;
    int64_t nonfinite = 0, nonpositive = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            double v = gl_plot_matrix_get(m, r, c);
            if (!isfinite(v)) {
                nonfinite++;
            } else if (logscale && v <= 0) {
                nonpositive++;
            } else {
                vmin = fmin(vmin, v);
                vmax = fmax(vmax, v);
            }
        }
    scale cs;
    scale_fit(&cs, vmin, vmax, logscale, 0);

    const char *xlabel = panel->xlabel ? panel->xlabel : "step";
    axes_spec spec = {panel->title, xlabel, panel->ylabel, NULL, false, false, true, true, 0};
    char note[160];
    spec.note = note_format(note, sizeof note, nonfinite, nonpositive, "cell", "cells");

    axes a;
    a.x = (scale){0.5, (double)cols + 0.5, false};
    a.y = (scale){(double)rows + 0.5, 0.5, false};   /* row 1 at the top */

    /* Row labels: all of them when they fit, else row 1 and every k-th row
     * for a 1-2-5 step k, so they never overlap; cut to at most a quarter of
     * the panel width. */
    float est_h = (area.y1 - area.y0) * 0.8f;
    float row_text = ctx_text_height(ctx, STYLE_TICK_PT) * 1.3f;
    double need = (double)rows * row_text / est_h;
    int64_t every = 1;
    for (int64_t mag = 1; every < need; mag *= 10) {
        if (mag >= need) every = mag;
        else if (2 * mag >= need) every = 2 * mag;
        else if (5 * mag >= need) every = 5 * mag;
        else every = 10 * mag;
    }
    a.yt.n = 0;
    a.yt.multiplier[0] = '\0';
    for (int64_t r = 0; r < rows; r++) {
        if (every > 1 && r > 0 && (r + 1) % every != 0) continue;
        if (every > 1 && r == 0 && every <= 2) continue;   /* row 2 follows at once */
        char text[TICK_LABEL_MAX];
        if (h->nrow_labels == rows && h->row_labels[r])
            label_fit(ctx, h->row_labels[r], (area.x1 - area.x0) * 0.25f, text, sizeof text);
        else
            snprintf(text, sizeof text, "%lld", (long long)(r + 1));
        ticks_add(&a.yt, (double)(r + 1), true, text);
    }

    /* The colour bar's room: gap, bar, ticks and their labels. */
    float bar_gap = ctx_px(ctx, 10), bar_w = 0, bar_labels = 0;
    tick_list *cticks = NULL;
    tick_list cticks_store;
    if (colorbar) {
        bar_w = fmaxf(ctx_px(ctx, 8), fminf(ctx_px(ctx, 14), est_h / 20));
        ticks_make(&cs, ticks_fit_vertical(ctx, est_h), &cticks_store);
        cticks = &cticks_store;
        bar_labels = ctx_px(ctx, STYLE_TICK_LEN_PT + STYLE_TICK_PAD_PT) +
                     ticks_label_width(ctx, cticks);
        spec.right_reserve = bar_gap + bar_w + bar_labels;
    }
    axes_layout(ctx, area, &spec, &a);
    /* Step ticks only at whole steps inside the data. */
    ticks_integer(&a.x, &a.xt);
    int kept = 0;
    for (int i = 0; i < a.xt.n; i++) {
        double v = a.xt.items[i].value;
        if (v >= 1 && v <= (double)cols) a.xt.items[kept++] = a.xt.items[i];
    }
    a.xt.n = kept;

    /* The cells, pixel by pixel. */
    clip_rect clip = axes_clip(ctx, &a);
    float fw = a.frame.x1 - a.frame.x0, fh = a.frame.y1 - a.frame.y0;
    for (int j = clip.y0; j < clip.y1; j++) {
        int64_t r0, r1;
        cells_of_pixel(j, a.frame.y0, fh, rows, &r0, &r1);
        for (int i = clip.x0; i < clip.x1; i++) {
            int64_t c0, c1;
            cells_of_pixel(i, a.frame.x0, fw, cols, &c0, &c1);
            /* Averages in the colour scale's space (log10 on a log scale). */
            double sum = 0;
            int64_t count = 0;
            for (int64_t r = r0; r <= r1; r++)
                for (int64_t c = c0; c <= c1; c++) {
                    double v = gl_plot_matrix_get(m, r, c);
                    if (!isfinite(v) || (logscale && v <= 0)) continue;
                    sum += logscale ? log10(v) : v;
                    count++;
                }
            uint32_t color = COLOR_BAD;
            if (count > 0) {
                double mean = sum / (double)count;
                color = viridis(scale_unit(&cs, logscale ? pow(10, mean) : mean));
            }
            canvas_blend(ctx->canvas, i, j, color, 1.0f);
        }
    }
    /* Marked columns: a cross in the top row's band, centred on the column. */
    float mark_size = fminf(ctx_px(ctx, 7), fh / (float)(2 * rows + 2));
    for (int64_t k = 0; k < h->nmarks; k++) {
        int64_t c = h->marks[k];
        if (c < 0 || c >= cols) continue;
        float x = a.frame.x0 + ((float)c + 0.5f) * fw / (float)cols;
        marker_draw(ctx, clip, GL_PLOT_CROSS, x, a.frame.y0 + mark_size, mark_size, GL_PLOT_RGB(0xd62728));
    }
    axes_draw_frame(ctx, &a, &spec, area);

    if (colorbar) {
        float spine = ctx_snap_width(ctx_px(ctx, STYLE_SPINE_PT));
        box bar = {ctx_snap(a.frame.x1 + bar_gap, spine), a.frame.y0,
                   ctx_snap(a.frame.x1 + bar_gap + bar_w, spine), a.frame.y1};
        clip_rect bclip = clip_of_box(bar, ctx->clip);
        for (int j = bclip.y0; j < bclip.y1; j++) {
            double t = (bar.y1 - ((float)j + 0.5f)) / (bar.y1 - bar.y0);
            uint32_t color = viridis(t);
            for (int i = bclip.x0; i < bclip.x1; i++) canvas_blend(ctx->canvas, i, j, color, 1.0f);
        }
        float half = spine * 0.5f;
        ctx_hline(ctx, ctx->clip, bar.x0 - half, bar.x1 + half, bar.y0, spine, COLOR_SPINE);
        ctx_hline(ctx, ctx->clip, bar.x0 - half, bar.x1 + half, bar.y1, spine, COLOR_SPINE);
        ctx_vline(ctx, ctx->clip, bar.x0, bar.y0, bar.y1, spine, COLOR_SPINE);
        ctx_vline(ctx, ctx->clip, bar.x1, bar.y0, bar.y1, spine, COLOR_SPINE);
        /* Ticks recomputed for the bar's final height. */
        ticks_make(&cs, ticks_fit_vertical(ctx, bar.y1 - bar.y0), cticks);
        axes_draw_vticks(ctx, cticks, &cs, bar.x1, bar.y0, bar.y1, true);
    }
}
