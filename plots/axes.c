/* axes.c — layout and decoration of one plot area. */
#include <math.h>

#include "axes.h"

float ticks_label_width(plot_ctx *ctx, const tick_list *ticks)
{
    float w = 0;
    for (int i = 0; i < ticks->n; i++)
        if (ticks->items[i].major && ticks->items[i].label[0])
            w = fmaxf(w, ctx_text_width(ctx, STYLE_TICK_PT, ticks->items[i].label));
    return w;
}

int ticks_fit_vertical(const plot_ctx *ctx, float length)
{
    /* About three text heights per label, as matplotlib's "auto" bins,
     * and never more than ten. */
    int n = (int)(length / (ctx_text_height(ctx, STYLE_TICK_PT) * 2.6f)) + 1;
    return n < 2 ? 2 : n > 10 ? 10 : n;
}

/* x ticks whose labels do not crowd: fewer until they fit with a gap of
 * about one em between neighbours. */
static void x_ticks_fit(plot_ctx *ctx, axes *a, float width)
{
    float em = ctx_px(ctx, STYLE_TICK_PT);
    int max_labels = (int)(width / (em * 4.5f)) + 1;
    if (max_labels > 10) max_labels = 10;
    if (max_labels < 2) max_labels = 2;
    for (;;) {
        ticks_make(&a->x, max_labels, &a->xt);
        int majors = 0;
        for (int i = 0; i < a->xt.n; i++) majors += a->xt.items[i].major;
        float need = (float)majors * (ticks_label_width(ctx, &a->xt) + em * 2.0f);
        if (need <= width || max_labels <= 2) return;
        max_labels--;
    }
}

void axes_layout(plot_ctx *ctx, box panel, const axes_spec *spec, axes *a)
{
    float pad = ctx_px(ctx, STYLE_PAD_PT);
    float tick_h = ctx_text_height(ctx, STYLE_TICK_PT);
    float ticklen = ctx_px(ctx, STYLE_TICK_LEN_PT), tickpad = ctx_px(ctx, STYLE_TICK_PAD_PT);
    float label_h = ctx_text_height(ctx, STYLE_LABEL_PT);

    float top = panel.y0 + pad;
    if (spec->title && *spec->title)
        top += ctx_text_height(ctx, STYLE_TITLE_PT) + ctx_px(ctx, 6);
    else if (!a->y.log && ticks_need_multiplier(a->y.lo, a->y.hi) && !spec->y_ticks_given)
        top += tick_h + ctx_px(ctx, 3);   /* the y multiplier ("1e7") over the axis */
    else
        top += tick_h * 0.5f;   /* room for the top y label, centred on the edge */
    float bottom = panel.y1 - pad;
    if (spec->note) bottom -= ctx_text_height(ctx, STYLE_NOTE_PT) + ctx_px(ctx, 3);
    bool x_multiplier = !a->x.log && !spec->x_ticks_given && !spec->no_x_labels &&
                        ticks_need_multiplier(a->x.lo, a->x.hi);
    /* The x multiplier shares the x label's line, or needs one of its own. */
    if ((spec->xlabel && *spec->xlabel) || x_multiplier) bottom -= label_h + ctx_px(ctx, 4);
    bottom -= ticklen + (spec->no_x_labels ? 0 : tickpad + tick_h);
    if (bottom < top + 10) bottom = top + 10;

    if (!spec->y_ticks_given) ticks_make(&a->y, ticks_fit_vertical(ctx, bottom - top), &a->yt);
    float ylab_w = ticks_label_width(ctx, &a->yt);
    float left = panel.x0 + pad + ticklen + (ylab_w > 0 ? ylab_w + tickpad : 0);
    if (spec->ylabel && *spec->ylabel) left += label_h + ctx_px(ctx, 4);
    float right = panel.x1 - pad - spec->right_reserve;
    if (right < left + 10) right = left + 10;

    if (!spec->x_ticks_given) x_ticks_fit(ctx, a, right - left);
    /* A label on the right edge sticks out by half its width. */
    if (spec->right_reserve <= 0 && !spec->no_x_labels) {
        for (int i = a->xt.n - 1; i >= 0; i--) {
            const tick *t = &a->xt.items[i];
            if (!t->major || !t->label[0]) continue;
            double u = scale_unit(&a->x, t->value);
            float half = ctx_text_width(ctx, STYLE_TICK_PT, t->label) * 0.5f;
            float overhang = half - (float)(1 - u) * (right - left) - pad * 0.5f;
            if (overhang > 0) right -= overhang;
            break;
        }
    }
    /* Frame edges where the spines are crisp (pixel centres for odd widths). */
    float spine = ctx_snap_width(ctx_px(ctx, STYLE_SPINE_PT));
    a->frame.x0 = ctx_snap(left, spine);
    a->frame.x1 = ctx_snap(right, spine);
    a->frame.y0 = ctx_snap(top, spine);
    a->frame.y1 = ctx_snap(bottom, spine);
}

clip_rect axes_clip(const plot_ctx *ctx, const axes *a)
{
    clip_rect r = {(int)ceilf(a->frame.x0), (int)ceilf(a->frame.y0), (int)floorf(a->frame.x1),
                   (int)floorf(a->frame.y1)};
    r.x0 = r.x0 < ctx->clip.x0 ? ctx->clip.x0 : r.x0;
    r.y0 = r.y0 < ctx->clip.y0 ? ctx->clip.y0 : r.y0;
    r.x1 = r.x1 > ctx->clip.x1 ? ctx->clip.x1 : r.x1;
    r.y1 = r.y1 > ctx->clip.y1 ? ctx->clip.y1 : r.y1;
    if (r.x1 < r.x0) r.x1 = r.x0;
    if (r.y1 < r.y0) r.y1 = r.y0;
    return r;
}

void axes_draw_grid(plot_ctx *ctx, const axes *a, const axes_spec *spec)
{
    if (spec->no_grid) return;
    clip_rect clip = axes_clip(ctx, a);
    float w = ctx_snap_width(ctx_px(ctx, 0.7f));
    /* Minor gridlines (log axes whose decades are far apart) first, so
     * majors stay on top; on dense log axes they would only add noise. */
    float fw = a->frame.x1 - a->frame.x0, fh = a->frame.y1 - a->frame.y0;
    bool minor_x = a->x.log && fw / fabs(log10(a->x.hi / a->x.lo)) >= 250;
    bool minor_y = a->y.log && fh / fabs(log10(a->y.hi / a->y.lo)) >= 250;
    for (int pass = 0; pass < 2; pass++) {
        bool major = pass == 1;
        for (int i = 0; i < a->xt.n; i++) {
            const tick *t = &a->xt.items[i];
            if (t->major != major || (!major && !minor_x)) continue;
            float x = ctx_snap(axes_px_x(a, t->value), w);
            ctx_vline(ctx, clip, x, a->frame.y0, a->frame.y1, w,
                      major ? COLOR_GRID : COLOR_GRID_MINOR);
        }
        for (int i = 0; i < a->yt.n; i++) {
            const tick *t = &a->yt.items[i];
            if (t->major != major || (!major && !minor_y)) continue;
            float y = ctx_snap(axes_px_y(a, t->value), w);
            ctx_hline(ctx, clip, a->frame.x0, a->frame.x1, y, w,
                      major ? COLOR_GRID : COLOR_GRID_MINOR);
        }
    }
}

float axes_draw_vticks(plot_ctx *ctx, const tick_list *ticks, const scale *s, float x, float y0,
                       float y1, bool right_side)
{
    float w = ctx_snap_width(ctx_px(ctx, STYLE_SPINE_PT));
    float ticklen = ctx_px(ctx, STYLE_TICK_LEN_PT), minorlen = ctx_px(ctx, STYLE_MINOR_LEN_PT);
    float tickpad = ctx_px(ctx, STYLE_TICK_PAD_PT), widest = 0;
    float dir = right_side ? 1.0f : -1.0f;
    for (int i = 0; i < ticks->n; i++) {
        const tick *t = &ticks->items[i];
        double u = scale_unit(s, t->value);
        if (!(u >= -1e-6 && u <= 1 + 1e-6)) continue;
        float y = ctx_snap(y1 - (float)u * (y1 - y0), w);
        float len = t->major ? ticklen : minorlen;
        float xa = x + dir * w * 0.5f, xb = xa + dir * len;
        ctx_hline(ctx, ctx->clip, fminf(xa, xb), fmaxf(xa, xb), y, w, COLOR_SPINE);
        if (t->major && t->label[0]) {
            ctx_text(ctx, STYLE_TICK_PT, t->label, xb + dir * tickpad, y, right_side ? TEXT_LEFT : TEXT_RIGHT,
                     TEXT_MIDDLE, COLOR_TEXT);
            widest = fmaxf(widest, ctx_text_width(ctx, STYLE_TICK_PT, t->label));
        }
    }
    if (ticks->multiplier[0])
        ctx_text(ctx, STYLE_TICK_PT, ticks->multiplier, x, y0 - ctx_px(ctx, 3),
                 TEXT_LEFT, TEXT_BOTTOM, COLOR_TEXT);
    return widest;
}

void axes_draw_frame(plot_ctx *ctx, const axes *a, const axes_spec *spec, box panel)
{
    const box *f = &a->frame;
    float w = ctx_snap_width(ctx_px(ctx, STYLE_SPINE_PT));
    float ticklen = ctx_px(ctx, STYLE_TICK_LEN_PT), minorlen = ctx_px(ctx, STYLE_MINOR_LEN_PT);
    float tickpad = ctx_px(ctx, STYLE_TICK_PAD_PT);
    float half = w * 0.5f;

    /* Spines: the four sides, overlapping at the corners. */
    ctx_hline(ctx, ctx->clip, f->x0 - half, f->x1 + half, f->y0, w, COLOR_SPINE);
    ctx_hline(ctx, ctx->clip, f->x0 - half, f->x1 + half, f->y1, w, COLOR_SPINE);
    ctx_vline(ctx, ctx->clip, f->x0, f->y0 - half, f->y1 + half, w, COLOR_SPINE);
    ctx_vline(ctx, ctx->clip, f->x1, f->y0 - half, f->y1 + half, w, COLOR_SPINE);

    /* x ticks point down out of the frame, labels under them. */
    for (int i = 0; i < a->xt.n; i++) {
        const tick *t = &a->xt.items[i];
        double u = scale_unit(&a->x, t->value);
        if (!(u >= -1e-6 && u <= 1 + 1e-6)) continue;
        float x = ctx_snap(axes_px_x(a, t->value), w);
        ctx_vline(ctx, ctx->clip, x, f->y1 + half, f->y1 + half + (t->major ? ticklen : minorlen),
                  w, COLOR_SPINE);
        if (t->major && t->label[0] && !spec->no_x_labels)
            ctx_text(ctx, STYLE_TICK_PT, t->label, x, f->y1 + half + ticklen + tickpad, TEXT_CENTER,
                     TEXT_TOP, COLOR_TEXT);
    }
    float ylab_w = axes_draw_vticks(ctx, &a->yt, &a->y, f->x0, f->y0, f->y1, false);

    if (spec->title && *spec->title)
        ctx_text(ctx, STYLE_TITLE_PT, spec->title, (f->x0 + f->x1) * 0.5f,
                 f->y0 - ctx_px(ctx, 6), TEXT_CENTER, TEXT_BOTTOM, COLOR_TEXT);
    float below = f->y1 + half + ticklen;
    if (!spec->no_x_labels) below += tickpad + ctx_text_height(ctx, STYLE_TICK_PT);
    if (spec->xlabel && *spec->xlabel) {
        ctx_text(ctx, STYLE_LABEL_PT, spec->xlabel, (f->x0 + f->x1) * 0.5f,
                 below + ctx_px(ctx, 4), TEXT_CENTER, TEXT_TOP, COLOR_TEXT);
    }
    if (a->xt.multiplier[0] && !spec->no_x_labels)
        ctx_text(ctx, STYLE_TICK_PT, a->xt.multiplier, f->x1, below + ctx_px(ctx, 4), TEXT_RIGHT,
                 TEXT_TOP, COLOR_TEXT);
    if (spec->ylabel && *spec->ylabel) {
        float label_h = ctx_text_height(ctx, STYLE_LABEL_PT);
        float cx = f->x0 - half - ticklen - (ylab_w > 0 ? ylab_w + tickpad : 0) - ctx_px(ctx, 4) -
                   label_h * 0.5f;
        ctx_text_vertical(ctx, STYLE_LABEL_PT, spec->ylabel, cx, (f->y0 + f->y1) * 0.5f,
                          COLOR_TEXT);
    }
    if (spec->note)
        ctx_text(ctx, STYLE_NOTE_PT, spec->note, f->x1,
                 panel.y1 - ctx_px(ctx, STYLE_PAD_PT), TEXT_RIGHT, TEXT_BOTTOM, COLOR_NOTE);
}
