/* plot_histogram.c — histograms: shared bins, series overlaid translucent
 * or as stacked small multiples, linear or log axes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "axes.h"
#include "legend.h"
#include "palette.h"

typedef struct hist_data {
    int nseries, bins;
    double lo, hi;              /* bin range, log10 of it with logx */
    int64_t *counts;            /* nseries x bins */
    int64_t max_count;
    int64_t nonfinite, nonpositive;
    float *outline;             /* nseries x (2 * bins + 2) points, pixel xy */
} hist_data;

static bool value_ok(const gl_plot_histogram *p, double v, hist_data *d)
{
    if (!isfinite(v)) {
        d->nonfinite++;
        return false;
    }
    if (p->logx && v <= 0) {
        d->nonpositive++;
        return false;
    }
    return true;
}

static gl_plot_status hist_count(const gl_plot_histogram *p, hist_data *d, gl_plot_error *err)
{
    d->nseries = p->nseries;
    d->bins = p->bins > 0 ? p->bins : 50;
    double vmin = INFINITY, vmax = -INFINITY;
    for (int k = 0; k < p->nseries; k++) {
        const gl_plot_array *a = &p->series[k].values;
        for (int64_t i = 0; i < a->length; i++) {
            double v = gl_plot_array_get(a, i);
            if (!value_ok(p, v, d)) continue;
            v = p->logx ? log10(v) : v;
            vmin = fmin(vmin, v);
            vmax = fmax(vmax, v);
        }
    }
    if (!(vmin <= vmax)) {
        vmin = 0;
        vmax = 1;
    } else if (vmax - vmin <= 1e-12 * fmax(fabs(vmin), fabs(vmax)) || vmax == vmin) {
        /* One value: a bin range around it, as numpy does (+-0.5). */
        double half = p->logx ? 0.5 : (vmin == 0 ? 0.5 : fmax(0.5, fabs(vmin) * 0.05));
        vmin -= half;
        vmax += half;
    }
    d->lo = vmin;
    d->hi = vmax;
    d->counts = calloc((size_t)p->nseries * (size_t)d->bins, sizeof *d->counts);
    d->outline = malloc((size_t)p->nseries * (size_t)(2 * d->bins + 2) * 2 * sizeof *d->outline);
    if (!d->counts || !d->outline)
        return gl_plot_error_set(err, GL_PLOT_ENOMEM, "out of memory for a histogram");
    /* Second pass without recounting the skipped values. */
    int64_t nonfinite = d->nonfinite, nonpositive = d->nonpositive;
    for (int k = 0; k < p->nseries; k++) {
        const gl_plot_array *a = &p->series[k].values;
        int64_t *counts = d->counts + (size_t)k * (size_t)d->bins;
        for (int64_t i = 0; i < a->length; i++) {
            double v = gl_plot_array_get(a, i);
            if (!value_ok(p, v, d)) continue;
            v = p->logx ? log10(v) : v;
            int64_t b = (int64_t)((v - d->lo) / (d->hi - d->lo) * d->bins);
            if (b < 0) b = 0;
            if (b >= d->bins) b = d->bins - 1;   /* the last bin includes its right edge */
            counts[b]++;
        }
        for (int b = 0; b < d->bins; b++)
            if (counts[b] > d->max_count) d->max_count = counts[b];
    }
    d->nonfinite = nonfinite;
    d->nonpositive = nonpositive;
    return GL_PLOT_OK;
}

static double bin_edge(const gl_plot_histogram *p, const hist_data *d, int b)
{
    double t = d->lo + (d->hi - d->lo) * b / d->bins;
    return p->logx ? pow(10, t) : t;
}

static void fit_y(const gl_plot_histogram *p, const hist_data *d, scale *y)
{
    double top = d->max_count > 0 ? (double)d->max_count : 1;
    if (p->logy) {
        /* From half a count, so single counts show as short bars. */
        double a = log10(0.5), b = log10(top);
        y->log = true;
        y->lo = 0.5;
        y->hi = pow(10, b + (b - a) * 0.05);
    } else {
        y->log = false;
        y->lo = 0;   /* bars stand on zero, as in matplotlib */
        y->hi = top * 1.05;
    }
}

/* Bars of series k into the mask (translucent fill) and its outline into
 * d->outline; returns the outline's point count. */
static int64_t hist_series(const gl_plot_histogram *p, const hist_data *d, const axes *a, int k,
                           stroke_mask *mask)
{
    const int64_t *counts = d->counts + (size_t)k * (size_t)d->bins;
    float *xy = d->outline + (size_t)k * (size_t)(2 * d->bins + 2) * 2;
    float base = a->frame.y1 + 1;   /* just below the frame: no visible edge */
    int64_t n = 0;
    for (int b = 0; b < d->bins; b++) {
        float x0 = axes_px_x(a, bin_edge(p, d, b)), x1 = axes_px_x(a, bin_edge(p, d, b + 1));
        float y = counts[b] > 0 ? axes_px_y(a, (double)counts[b]) : base;
        if (counts[b] > 0) mask_fill_rect(mask, (box){x0, y, x1, base});
        if (b == 0) {
            xy[2 * n] = x0;
            xy[2 * n + 1] = base;
            n++;
        }
        xy[2 * n] = x0;
        xy[2 * n + 1] = y;
        xy[2 * n + 2] = x1;
        xy[2 * n + 3] = y;
        n += 2;
    }
    xy[2 * n] = xy[2 * n - 2];
    xy[2 * n + 1] = base;
    return n + 1;
}

static const char *series_label(const gl_plot_hist_series *s, int k, char *buffer, size_t size)
{
    if (s->name && *s->name) return s->name;
    snprintf(buffer, size, "series %d", k + 1);
    return buffer;
}

static uint32_t series_color(const gl_plot_hist_series *s, int k)
{
    return s->color == GL_PLOT_COLOR_AUTO ? palette_color(k) : s->color & 0xffffff;
}

/* Draws the bars and outlines of series [k0, k1) in axes a. */
static void draw_bars(plot_ctx *ctx, const gl_plot_histogram *p, const hist_data *d,
                      const axes *a, int k0, int k1, int64_t *npts, float alpha)
{
    stroke_mask mask;
    gl_plot_status status = mask_init(&mask, axes_clip(ctx, a), ctx->err);
    if (status) {
        ctx_fail(ctx, status);
        return;
    }
    float width = ctx_px(ctx, 1.0f);
    for (int k = k0; k < k1; k++) {
        uint32_t color = series_color(&p->series[k], k);
        npts[k] = hist_series(p, d, a, k, &mask);
        mask_composite(&mask, ctx->canvas, color, alpha);
        const float *xy = d->outline + (size_t)k * (size_t)(2 * d->bins + 2) * 2;
        float phase = 0;
        mask_polyline(&mask, xy, npts[k], width, NULL, &phase);
        mask_composite(&mask, ctx->canvas, color, 1.0f);
    }
    mask_free(&mask);
}

static void draw_overlaid(plot_ctx *ctx, const gl_plot_panel *panel, const hist_data *d,
                          box area, axes_spec *spec, axes *a, legend_entry *entries,
                          int64_t *npts, char (*names)[32])
{
    const gl_plot_histogram *p = &panel->histogram;
    int ns = p->nseries;
    float alpha = ns > 1 ? 0.45f : 0.75f;
    legend lg = {entries, ns, 1, 0, 0, 0, 0};
    bool show_legend = ns > 1, outside = false;
    if (show_legend) {
        for (int k = 0; k < ns; k++)
            entries[k] = (legend_entry){series_label(&p->series[k], k, names[k], sizeof names[k]),
                                        series_color(&p->series[k], k), LEGEND_PATCH,
                                        GL_PLOT_SOLID, GL_PLOT_MARKER_NONE, alpha};
        legend_measure(ctx, &lg);
        float est_h = (area.y1 - area.y0) * 0.75f;
        if (lg.height > 0.5f * est_h || lg.width > 0.35f * (area.x1 - area.x0)) {
            outside = true;
            legend_columns_for(ctx, &lg, est_h);
            spec->right_reserve = lg.width + ctx_px(ctx, STYLE_LEGEND_PT) * 0.5f;
        }
    }
    axes_layout(ctx, area, spec, a);
    ticks_integer(&a->y, &a->yt);   /* counts */
    axes_draw_grid(ctx, a, spec);
    draw_bars(ctx, p, d, a, 0, ns, npts, alpha);
    axes_draw_frame(ctx, a, spec, area);
    if (show_legend) {
        /* Without memory for the obstacle list the legend still goes in a
         * corner, only without looking at the bars. */
        const float **starts = malloc((size_t)(ns > 0 ? ns : 1) * sizeof *starts);
        for (int k = 0; starts && k < ns; k++)
            starts[k] = d->outline + (size_t)k * (size_t)(2 * d->bins + 2) * 2;
        legend_obstacles obstacles = {starts ? ns : 0, starts, npts};
        box at = outside ? legend_place_outside(ctx, &lg, a->frame)
                         : legend_place_inside(ctx, &lg, a->frame, &obstacles, NULL);
        free(starts);
        legend_draw(ctx, &lg, at);
    }
}

/* One small axes per series, stacked, sharing both axes' ranges so their
 * shapes compare at a glance. */
static void draw_multiples(plot_ctx *ctx, const gl_plot_panel *panel, const hist_data *d,
                           box area, axes_spec *spec, axes *a, legend_entry *entries,
                           int64_t *npts, char (*names)[32])
{
    const gl_plot_histogram *p = &panel->histogram;
    int ns = p->nseries;
    axes_layout(ctx, area, spec, a);
    float gap = ctx_text_height(ctx, STYLE_TICK_PT) * 1.3f;
    float total = a->frame.y1 - a->frame.y0;
    float each = (total - gap * (float)(ns - 1)) / (float)ns;
    if (each < 8) each = 8;
    float widest = 0;
    for (int k = 0; k < ns; k++) {
        axes sub = *a;
        float y0 = a->frame.y0 + (float)k * (each + gap);
        float spine = ctx_snap_width(ctx_px(ctx, STYLE_SPINE_PT));
        sub.frame.y0 = ctx_snap(y0, spine);
        sub.frame.y1 = ctx_snap(y0 + each, spine);
        ticks_make(&sub.y, ticks_fit_vertical(ctx, each), &sub.yt);
        ticks_integer(&sub.y, &sub.yt);
        widest = fmaxf(widest, ticks_label_width(ctx, &sub.yt));
        bool last = k == ns - 1;
        axes_spec s = {NULL, last ? spec->xlabel : NULL, NULL, last ? spec->note : NULL,
                       !last, true, true, spec->no_grid, 0};
        axes_draw_grid(ctx, &sub, &s);
        draw_bars(ctx, p, d, &sub, k, k + 1, npts, 0.75f);
        axes_draw_frame(ctx, &sub, &s, area);
        entries[k] = (legend_entry){series_label(&p->series[k], k, names[k], sizeof names[k]),
                                    series_color(&p->series[k], k), LEGEND_PATCH, GL_PLOT_SOLID,
                                    GL_PLOT_MARKER_NONE, 0.75f};
        legend lg = {&entries[k], 1, 1, 0, 0, 0, 0};
        legend_measure(ctx, &lg);
        const float *start = d->outline + (size_t)k * (size_t)(2 * d->bins + 2) * 2;
        legend_obstacles obstacles = {1, &start, &npts[k]};
        legend_draw(ctx, &lg, legend_place_inside(ctx, &lg, sub.frame, &obstacles, NULL));
    }
    if (spec->title && *spec->title)
        ctx_text(ctx, STYLE_TITLE_PT, spec->title, (a->frame.x0 + a->frame.x1) * 0.5f,
                 a->frame.y0 - ctx_px(ctx, 6), TEXT_CENTER, TEXT_BOTTOM, COLOR_TEXT);
    if (spec->ylabel && *spec->ylabel) {
        float cx = a->frame.x0 - ctx_px(ctx, STYLE_SPINE_PT * 0.5f + STYLE_TICK_LEN_PT) -
                   (widest > 0 ? widest + ctx_px(ctx, STYLE_TICK_PAD_PT) : 0) - ctx_px(ctx, 4) -
                   ctx_text_height(ctx, STYLE_LABEL_PT) * 0.5f;
        ctx_text_vertical(ctx, STYLE_LABEL_PT, spec->ylabel, cx,
                          (a->frame.y0 + a->frame.y1) * 0.5f, COLOR_TEXT);
    }
}

void plot_histogram_draw(plot_ctx *ctx, const gl_plot_panel *panel, box area)
{
    const gl_plot_histogram *p = &panel->histogram;
    int ns = p->nseries;
    hist_data d = {0};
    legend_entry *entries = calloc((size_t)(ns > 0 ? ns : 1), sizeof *entries);
    int64_t *npts = calloc((size_t)(ns > 0 ? ns : 1), sizeof *npts);
    char (*names)[32] = calloc((size_t)(ns > 0 ? ns : 1), sizeof *names);
    gl_plot_status status = entries && npts && names
                                ? hist_count(p, &d, ctx->err)
                                : gl_plot_error_set(ctx->err, GL_PLOT_ENOMEM,
                                                    "out of memory for a histogram");
    if (status) {
        ctx_fail(ctx, status);
        goto done;
    }
    axes a;
    scale_fit(&a.x, p->logx ? pow(10, d.lo) : d.lo, p->logx ? pow(10, d.hi) : d.hi, p->logx,
              0.05);
    fit_y(p, &d, &a.y);
    const char *ylabel = panel->ylabel ? panel->ylabel : "count";
    axes_spec spec = {panel->title, panel->xlabel, ylabel, NULL, false, false, false, false, 0};
    char note[160];
    spec.note = note_format(note, sizeof note, d.nonfinite, d.nonpositive, "value", "values");
    if (p->multiples && ns > 1)
        draw_multiples(ctx, panel, &d, area, &spec, &a, entries, npts, names);
    else
        draw_overlaid(ctx, panel, &d, area, &spec, &a, entries, npts, names);
done:
    free(d.counts);
    free(d.outline);
    free(entries);
    free(npts);
    free(names);
}
