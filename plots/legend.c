/* legend.c — legend measuring, placement and drawing; series markers. */
#include <math.h>

#include "legend.h"
#include "palette.h"

/* matplotlib's legend geometry, in ems of the legend font. */
#define BORDER_PAD 0.4f
#define LABEL_SPACING 0.5f
#define HANDLE_LENGTH 2.0f
#define HANDLE_TEXT_PAD 0.8f
#define COLUMN_SPACING 2.0f
#define BORDER_AXES_PAD 0.5f

static float font_pt(const legend *lg) { return lg->font_pt > 0 ? lg->font_pt : STYLE_LEGEND_PT; }
static float legend_em(const plot_ctx *ctx, const legend *lg) { return ctx_px(ctx, font_pt(lg)); }

static float row_height(const plot_ctx *ctx, const legend *lg)
{
    return fmaxf(ctx_text_height(ctx, font_pt(lg)), ctx_px(ctx, STYLE_MARKER_PT));
}

static float widest_label(plot_ctx *ctx, legend *lg)
{
    if (lg->label_width <= 0)
        for (int i = 0; i < lg->n; i++)
            lg->label_width = fmaxf(lg->label_width,
                                    ctx_text_width(ctx, font_pt(lg), lg->entries[i].label));
    return lg->label_width;
}

void legend_measure(plot_ctx *ctx, legend *lg)
{
    float em = legend_em(ctx, lg);
    if (lg->ncols < 1) lg->ncols = 1;
    if (lg->ncols > lg->n) lg->ncols = lg->n > 0 ? lg->n : 1;
    int rows = (lg->n + lg->ncols - 1) / lg->ncols;
    float col_w = em * (HANDLE_LENGTH + HANDLE_TEXT_PAD) + widest_label(ctx, lg);
    lg->width = 2 * BORDER_PAD * em + (float)lg->ncols * col_w +
                (float)(lg->ncols - 1) * COLUMN_SPACING * em;
    lg->height = 2 * BORDER_PAD * em + (float)rows * row_height(ctx, lg) +
                 (float)(rows > 0 ? rows - 1 : 0) * LABEL_SPACING * em;
}

int legend_columns_for(plot_ctx *ctx, legend *lg, float max_height)
{
    float em = legend_em(ctx, lg), rh = row_height(ctx, lg);
    int rows = (int)((max_height - 2 * BORDER_PAD * em + LABEL_SPACING * em) /
                     (rh + LABEL_SPACING * em));
    if (rows < 1) rows = 1;
    lg->ncols = (lg->n + rows - 1) / rows;
    legend_measure(ctx, lg);
    return lg->ncols;
}

/* Does segment (ax, ay)-(bx, by) meet box b?  Liang-Barsky clipping. */
static bool segment_hits_box(float ax, float ay, float bx, float by, box b)
{
    float t0 = 0, t1 = 1, dx = bx - ax, dy = by - ay;
    const float p[4] = {-dx, dx, -dy, dy};
    const float q[4] = {ax - b.x0, b.x1 - ax, ay - b.y0, b.y1 - ay};
    for (int i = 0; i < 4; i++) {
        if (p[i] == 0) {
            if (q[i] < 0) return false;
        } else {
            float t = q[i] / p[i];
            if (p[i] < 0) {
                if (t > t1) return false;
                if (t > t0) t0 = t;
            } else {
                if (t < t0) return false;
                if (t < t1) t1 = t;
            }
        }
    }
    return true;
}

static int64_t badness(box b, const legend_obstacles *obstacles)
{
    int64_t bad = 0;
    for (int s = 0; s < obstacles->count; s++) {
        const float *xy = obstacles->xy[s];
        int64_t n = obstacles->npts[s];
        for (int64_t i = 0; i < n; i++) {
            float x = xy[2 * i], y = xy[2 * i + 1];
            if (!isfinite(x)) continue;
            if (x >= b.x0 && x <= b.x1 && y >= b.y0 && y <= b.y1) bad++;
            if (i + 1 < n && isfinite(xy[2 * i + 2])) {
                float x2 = xy[2 * i + 2], y2 = xy[2 * i + 3];
                /* Cheap rejection first: most segments are far away. */
                if ((x < b.x0 && x2 < b.x0) || (x > b.x1 && x2 > b.x1) ||
                    (y < b.y0 && y2 < b.y0) || (y > b.y1 && y2 > b.y1))
                    continue;
                if (segment_hits_box(x, y, x2, y2, b)) bad++;
            }
        }
    }
    return bad;
}

box legend_place_inside(plot_ctx *ctx, const legend *lg, box frame,
                        const legend_obstacles *obstacles, int64_t *hidden)
{
    float pad = BORDER_AXES_PAD * legend_em(ctx, lg);
    float l = frame.x0 + pad, r = frame.x1 - pad - lg->width;
    float t = frame.y0 + pad, btm = frame.y1 - pad - lg->height;
    float cx = (frame.x0 + frame.x1 - lg->width) * 0.5f;
    float cy = (frame.y0 + frame.y1 - lg->height) * 0.5f;
    /* matplotlib's order of preference for loc="best". */
    const float spots[10][2] = {{r, t},  {l, t},  {l, btm}, {r, btm}, {r, cy},
                                {l, cy}, {r, cy}, {cx, btm}, {cx, t}, {cx, cy}};
    box best = {r, t, r + lg->width, t + lg->height};
    int64_t best_bad = -1;
    for (int i = 0; i < 10; i++) {
        box b = {spots[i][0], spots[i][1], spots[i][0] + lg->width, spots[i][1] + lg->height};
        int64_t bad = badness(b, obstacles);
        if (best_bad < 0 || bad < best_bad) {
            best_bad = bad;
            best = b;
        }
        if (bad == 0) break;
    }
    if (hidden) *hidden = best_bad;
    return best;
}

box legend_place_outside(plot_ctx *ctx, const legend *lg, box frame)
{
    float gap = BORDER_AXES_PAD * legend_em(ctx, lg);
    box b = {frame.x1 + gap, frame.y0, frame.x1 + gap + lg->width, frame.y0 + lg->height};
    return b;
}

/* A bar of width w from (x0, y) to (x1, y) rotated about its centre:
 * the arms of the cross and plus markers. */
static void arm(plot_ctx *ctx, clip_rect clip, float cx, float cy, float half, float w,
                float angle, uint32_t color)
{
    float c = cosf(angle), s = sinf(angle), hw = w * 0.5f;
    float xy[8] = {cx - c * half - s * hw, cy - s * half + c * hw,
                   cx + c * half - s * hw, cy + s * half + c * hw,
                   cx + c * half + s * hw, cy + s * half - c * hw,
                   cx - c * half + s * hw, cy - s * half - c * hw};
    canvas_fill_convex(ctx->canvas, clip, xy, 4, color, 1.0f);
}

void marker_draw(plot_ctx *ctx, clip_rect clip, gl_plot_marker marker, float x, float y,
                 float size, uint32_t color)
{
    float r = size * 0.5f;
    switch (marker) {
    case GL_PLOT_SQUARE: {
        float h = r * 0.85f;
        canvas_fill_rect(ctx->canvas, clip, (box){x - h, y - h, x + h, y + h}, color, 1.0f);
        break;
    }
    case GL_PLOT_TRIANGLE: {
        float xy[6] = {x, y - r * 1.1f, x + r, y + r * 0.75f, x - r, y + r * 0.75f};
        canvas_fill_convex(ctx->canvas, clip, xy, 3, color, 1.0f);
        break;
    }
    case GL_PLOT_DIAMOND: {
        float xy[8] = {x, y - r * 1.1f, x + r * 0.8f, y, x, y + r * 1.1f, x - r * 0.8f, y};
        canvas_fill_convex(ctx->canvas, clip, xy, 4, color, 1.0f);
        break;
    }
    case GL_PLOT_CROSS:
    case GL_PLOT_PLUS: {
        float angle = marker == GL_PLOT_CROSS ? 0.785398f : 0.0f;
        float w = fmaxf(1.0f, size * 0.22f);
        arm(ctx, clip, x, y, r, w, angle, color);
        arm(ctx, clip, x, y, r, w, angle + 1.570796f, color);
        break;
    }
    default:
        canvas_fill_circle(ctx->canvas, clip, x, y, r, color, 1.0f);
        break;
    }
}

static void draw_handle(plot_ctx *ctx, const legend *lg, const legend_entry *e, float x, float cy,
                        float length)
{
    float em = legend_em(ctx, lg);
    if (e->handle == LEGEND_PATCH) {
        /* Edges on pixel centres: a crisp 1-px outline. */
        box b = {floorf(x) + 0.5f, floorf(cy - 0.35f * em) + 0.5f, floorf(x + length) + 0.5f,
                 floorf(cy + 0.35f * em) + 0.5f};
        canvas_fill_rect(ctx->canvas, ctx->clip, b, e->color, e->alpha);
        canvas_round_rect(ctx->canvas, ctx->clip, b, 0, 1.0f, e->color, 1.0f);
        return;
    }
    float width = ctx_px(ctx, STYLE_LINE_PT);
    clip_rect area = clip_intersect((clip_rect){(int)floorf(x - width), (int)floorf(cy - width - 1),
                                                (int)ceilf(x + length + width),
                                                (int)ceilf(cy + width + 1)},
                                    ctx->clip);
    stroke_mask m;
    gl_plot_status status = mask_init(&m, area, ctx->err);
    if (status) {
        ctx_fail(ctx, status);
        return;
    }
    float xy[4] = {x, cy, x + length, cy};
    dash_pattern dash = style_dashes(e->style);
    float phase = 0;
    if (e->style != GL_PLOT_NO_LINE) {
        mask_polyline(&m, xy, 2, width, &dash, &phase);
        mask_composite(&m, ctx->canvas, e->color, 1.0f);
    }
    mask_free(&m);
    if (e->marker != GL_PLOT_MARKER_NONE)
        marker_draw(ctx, ctx->clip, e->marker, x + length * 0.5f, cy,
                    ctx_px(ctx, STYLE_MARKER_PT), e->color);
}

void legend_draw(plot_ctx *ctx, legend *lg, box at)
{
    if (!ctx_ok(ctx) || lg->n == 0) return;
    float em = legend_em(ctx, lg);
    /* Edges on pixel centres keep the 1-px frame crisp. */
    at = (box){floorf(at.x0) + 0.5f, floorf(at.y0) + 0.5f, floorf(at.x1) + 0.5f,
               floorf(at.y1) + 0.5f};
    /* A translucent white box with a light frame, as matplotlib's. */
    canvas_round_rect(ctx->canvas, ctx->clip, at, 0.25f * em, 0, COLOR_WHITE, 0.85f);
    canvas_round_rect(ctx->canvas, ctx->clip, at, 0.25f * em, ctx_snap_width(ctx_px(ctx, 0.8f)),
                      0xcccccc, 1.0f);
    int rows = (lg->n + lg->ncols - 1) / lg->ncols;
    float col_w = em * (HANDLE_LENGTH + HANDLE_TEXT_PAD) + widest_label(ctx, lg);
    float rh = row_height(ctx, lg);
    for (int i = 0; i < lg->n; i++) {
        int col = i / rows, row = i % rows;   /* columns fill top to bottom */
        float x = at.x0 + BORDER_PAD * em + (float)col * (col_w + COLUMN_SPACING * em);
        float cy = at.y0 + BORDER_PAD * em + (float)row * (rh + LABEL_SPACING * em) + rh * 0.5f;
        draw_handle(ctx, lg, &lg->entries[i], x, cy, HANDLE_LENGTH * em);
        ctx_text(ctx, font_pt(lg), lg->entries[i].label,
                 x + (HANDLE_LENGTH + HANDLE_TEXT_PAD) * em, cy, TEXT_LEFT, TEXT_MIDDLE,
                 COLOR_TEXT);
    }
}
