/* plot_lines.c — line plots: many series, linear or log axes, legend. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "axes.h"
#include "legend.h"
#include "palette.h"

/* A series' point i, or false when it cannot be drawn (non-finite, or not
 * positive on a log axis); the flags say why. */
static bool point_at(const gl_plot_lines *p, const gl_plot_series *s, int64_t i, double *x,
                     double *y, bool *nonfinite, bool *nonpositive)
{
    *x = s->x.data ? gl_plot_array_get(&s->x, i) : (double)(i + 1);
    *y = gl_plot_array_get(&s->y, i);
    *nonfinite = !isfinite(*x) || !isfinite(*y);
    *nonpositive = !*nonfinite && ((p->logx && *x <= 0) || (p->logy && *y <= 0));
    return !*nonfinite && !*nonpositive;
}

typedef struct series_look {
    uint32_t color;
    gl_plot_style style;
    gl_plot_marker marker;
    char fallback_name[32];
} series_look;

static void looks_resolve(const gl_plot_lines *p, series_look *looks)
{
    for (int i = 0; i < p->nseries; i++) {
        const gl_plot_series *s = &p->series[i];
        series_look *l = &looks[i];
        l->color = s->color == GL_PLOT_COLOR_AUTO ? palette_color(i) : s->color & 0xffffff;
        l->style = s->style == GL_PLOT_STYLE_AUTO ? palette_style(i) : s->style;
        l->marker = s->marker;
        if (l->marker == GL_PLOT_MARKER_AUTO || (l->marker == GL_PLOT_MARKER_NONE && p->markers))
            l->marker = palette_marker(i);
        snprintf(l->fallback_name, sizeof l->fallback_name, "series %d", i + 1);
    }
}

/* Pixel positions of points in axis space (pairs, log10 on log axes): a
 * linear map.  Undrawable points stay NaN, which breaks the line there as
 * matplotlib does. */
static void project(const axes *a, const double *data, int64_t n, float *xy)
{
    double tx0 = a->x.log ? log10(a->x.lo) : a->x.lo, tx1 = a->x.log ? log10(a->x.hi) : a->x.hi;
    double ty0 = a->y.log ? log10(a->y.lo) : a->y.lo, ty1 = a->y.log ? log10(a->y.hi) : a->y.hi;
    double sx = (a->frame.x1 - a->frame.x0) / (tx1 - tx0);
    double sy = (a->frame.y1 - a->frame.y0) / (ty1 - ty0);
    for (int64_t i = 0; i < n; i++) {
        xy[2 * i] = (float)(a->frame.x0 + (data[2 * i] - tx0) * sx);
        xy[2 * i + 1] = (float)(a->frame.y1 - (data[2 * i + 1] - ty0) * sy);
    }
}

/* M4 decimation of a dense run whose x never decreases: per pixel column
 * keep the first, lowest, highest and last point, in their order.  The
 * stroke through them covers the same pixels as the full polyline, and a
 * 100 000-step series costs what a few thousand points do.  Returns the
 * number of points written to out (room for n), or 0 when the run is not
 * dense or not monotonic in x, to draw as is. */
static int64_t decimate_m4(const float *xy, int64_t n, float *out)
{
    if (n < 64) return 0;
    for (int64_t i = 1; i < n; i++)
        if (xy[2 * i] < xy[2 * i - 2]) return 0;
    if ((double)n < 8.0 * ((double)xy[2 * n - 2] - (double)xy[0] + 1)) return 0;
    int64_t m = 0, i = 0;
    while (i < n) {
        float column = floorf(xy[2 * i]);
        int64_t first = i, lo = i, hi = i, last = i;
        for (; i < n && floorf(xy[2 * i]) == column; i++) {
            if (xy[2 * i + 1] < xy[2 * lo + 1]) lo = i;
            if (xy[2 * i + 1] > xy[2 * hi + 1]) hi = i;
            last = i;
        }
        int64_t keep[4] = {first, lo < hi ? lo : hi, lo < hi ? hi : lo, last};
        for (int k = 0; k < 4; k++) {
            if (k > 0 && keep[k] == keep[k - 1]) continue;
            out[2 * m] = xy[2 * keep[k]];
            out[2 * m + 1] = xy[2 * keep[k] + 1];
            m++;
        }
    }
    return m;
}

void plot_lines_draw(plot_ctx *ctx, const gl_plot_panel *panel, box area)
{
    const gl_plot_lines *p = &panel->lines;
    int ns = p->nseries;

    int64_t total = 0;
    for (int k = 0; k < ns; k++) total += p->series[k].y.length;
    series_look *looks = calloc((size_t)(ns > 0 ? ns : 1), sizeof *looks);
    legend_entry *entries = calloc((size_t)(ns > 0 ? ns : 1), sizeof *entries);
    double *data = malloc((size_t)(total > 0 ? total : 1) * 2 * sizeof *data);
    float *xy = malloc((size_t)(total > 0 ? total : 1) * 2 * sizeof *xy);
    float *thinned = malloc((size_t)(total > 0 ? total : 1) * 2 * sizeof *thinned);
    const float **starts = calloc((size_t)(ns > 0 ? ns : 1), sizeof *starts);
    int64_t *counts = calloc((size_t)(ns > 0 ? ns : 1), sizeof *counts);
    stroke_mask mask = {0};
    if (!looks || !entries || !data || !xy || !thinned || !starts || !counts) {
        ctx_fail(ctx, gl_plot_error_set(ctx->err, GL_PLOT_ENOMEM, "out of memory for a line plot"));
        goto done;
    }
    looks_resolve(p, looks);

    /* One pass over the data: each point in axis space (log10 on a log
     * axis, NaN when it cannot be drawn), the ranges, and what was skipped. */
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    int64_t nonfinite = 0, nonpositive = 0;
    double *t = data;
    for (int k = 0; k < ns; k++) {
        const gl_plot_series *s = &p->series[k];
        for (int64_t i = 0; i < s->y.length; i++, t += 2) {
            double x, y;
            bool nf, np;
            if (point_at(p, s, i, &x, &y, &nf, &np)) {
                xmin = fmin(xmin, x);
                xmax = fmax(xmax, x);
                ymin = fmin(ymin, y);
                ymax = fmax(ymax, y);
                t[0] = p->logx ? log10(x) : x;
                t[1] = p->logy ? log10(y) : y;
            } else {
                t[0] = t[1] = NAN;
            }
            nonfinite += nf;
            nonpositive += np;
        }
    }
    axes a;
    scale_fit(&a.x, xmin, xmax, p->logx, 0.05);
    scale_fit(&a.y, ymin, ymax, p->logy, 0.05);

    /* The legend goes inside the axes unless it would cover too much of
     * them; then outside on the right, in as many columns as it takes. */
    /* By default a legend for 2..40 series: past 40 the colour and style
     * pairs repeat, so a legend could no longer tell the series apart. */
    bool show_legend = p->legend > 0 || (p->legend == 0 && ns > 1 && ns <= 40);
    legend lg = {entries, ns, 1, 0, 0, 0, 0};
    bool outside = false;
    axes_spec spec = {panel->title, panel->xlabel, panel->ylabel, NULL, false, false, false,
                      false, 0};
    char note[160];
    spec.note = note_format(note, sizeof note, nonfinite, nonpositive, "point", "points");
    if (show_legend) {
        for (int k = 0; k < ns; k++) {
            const char *name = p->series[k].name;
            entries[k] = (legend_entry){name && *name ? name : looks[k].fallback_name,
                                        looks[k].color, LEGEND_LINE, looks[k].style,
                                        looks[k].marker, 1.0f};
        }
        legend_measure(ctx, &lg);
        axes probe = a;
        axes_layout(ctx, area, &spec, &probe);
        float frame_w = probe.frame.x1 - probe.frame.x0, frame_h = probe.frame.y1 - probe.frame.y0;
        if (lg.height > 0.5f * frame_h || lg.width > 0.4f * frame_w) {
            /* Many series: a smaller font, as many rows as the frame is high. */
            outside = true;
            if (ns > 20) {
                lg.font_pt = STYLE_LEGEND_PT * 0.85f;
                lg.label_width = 0;   /* measured again at the new size */
            }
            legend_columns_for(ctx, &lg, frame_h);
            spec.right_reserve = lg.width + ctx_px(ctx, STYLE_LEGEND_PT) * 0.5f;
        }
    }
    axes_layout(ctx, area, &spec, &a);
    project(&a, data, total, xy);
    int64_t offset = 0;
    for (int k = 0; k < ns; k++) {
        starts[k] = xy + 2 * offset;
        counts[k] = p->series[k].y.length;
        offset += counts[k];
    }
    legend_obstacles obstacles = {ns, (const float *const *)starts, counts};
    box legend_box = {0, 0, 0, 0};
    if (show_legend && !outside) {
        /* Inside where it hides least; but if even the best place would
         * hide more than a few of the data (0.25 %), outside on the right:
         * a figure in a report must not cover what it shows. */
        int64_t hidden;
        legend_box = legend_place_inside(ctx, &lg, a.frame, &obstacles, &hidden);
        if (hidden > total / 400) {
            outside = true;
            spec.right_reserve = lg.width + ctx_px(ctx, STYLE_LEGEND_PT) * 0.5f;
            axes_layout(ctx, area, &spec, &a);
            project(&a, data, total, xy);
        }
    }
    if (show_legend && outside) legend_box = legend_place_outside(ctx, &lg, a.frame);

    axes_draw_grid(ctx, &a, &spec);
    clip_rect clip = axes_clip(ctx, &a);
    gl_plot_status status = mask_init(&mask, clip, ctx->err);
    if (status) {
        ctx_fail(ctx, status);
        goto done;
    }
    float width = ctx_px(ctx, STYLE_LINE_PT), marker_size = ctx_px(ctx, STYLE_MARKER_PT);
    for (int k = 0; k < ns; k++) {
        const float *pts = starts[k];
        dash_pattern dash = style_dashes(looks[k].style);
        float phase = 0;
        int64_t run = 0;
        for (int64_t i = 0; i <= counts[k]; i++) {
            bool valid = i < counts[k] && !isnan(pts[2 * i]);
            if (valid) {
                run++;
                continue;
            }
            if (run > 1 && looks[k].style != GL_PLOT_NO_LINE) {
                const float *line = pts + 2 * (i - run);
                int64_t kept = decimate_m4(line, run, thinned);
                if (kept > 0)
                    mask_polyline(&mask, thinned, kept, width, &dash, &phase);
                else
                    mask_polyline(&mask, line, run, width, &dash, &phase);
            }
            run = 0;
        }
        mask_composite(&mask, ctx->canvas, looks[k].color, 1.0f);
        /* Markers where asked, and at isolated points, which have no line
         * to show them. */
        for (int64_t i = 0; i < counts[k]; i++) {
            if (isnan(pts[2 * i])) continue;
            bool alone = (i == 0 || isnan(pts[2 * i - 2])) &&
                         (i + 1 == counts[k] || isnan(pts[2 * i + 2]));
            gl_plot_marker m = looks[k].marker;
            if (m == GL_PLOT_MARKER_NONE && (alone || looks[k].style == GL_PLOT_NO_LINE)) m = GL_PLOT_CIRCLE;
            if (m != GL_PLOT_MARKER_NONE)
                marker_draw(ctx, clip, m, pts[2 * i], pts[2 * i + 1], marker_size, looks[k].color);
        }
    }
    axes_draw_frame(ctx, &a, &spec, area);

    if (show_legend) legend_draw(ctx, &lg, legend_box);

done:
    mask_free(&mask);
    free(looks);
    free(entries);
    free(data);
    free(xy);
    free(thinned);
    free(starts);
    free(counts);
}
