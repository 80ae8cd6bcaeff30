/* canvas.c — RGBA canvas, anti-aliased fills and coverage-mask stroking. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "canvas.h"

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }
static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

gl_plot_status canvas_init(canvas *c, int width, int height, uint32_t background,
                           gl_plot_error *err)
{
    c->width = width;
    c->height = height;
    c->rgba = malloc((size_t)width * (size_t)height * 4);
    if (!c->rgba)
        return gl_plot_error_set(err, GL_PLOT_ENOMEM, "out of memory for a %dx%d image", width,
                                 height);
    uint8_t px[4] = {(uint8_t)(background >> 16), (uint8_t)(background >> 8),
                     (uint8_t)background, 255};
    size_t row = (size_t)width * 4;
    for (int x = 0; x < width; x++) memcpy(c->rgba + (size_t)x * 4, px, 4);
    for (int y = 1; y < height; y++) memcpy(c->rgba + (size_t)y * row, c->rgba, row);
    return GL_PLOT_OK;
}

void canvas_free(canvas *c)
{
    if (!c) return;
    free(c->rgba);
    c->rgba = NULL;
}

clip_rect canvas_clip_all(const canvas *c)
{
    clip_rect r = {0, 0, c->width, c->height};
    return r;
}

clip_rect clip_intersect(clip_rect a, clip_rect b)
{
    clip_rect r = {imax(a.x0, b.x0), imax(a.y0, b.y0), imin(a.x1, b.x1), imin(a.y1, b.y1)};
    if (r.x1 < r.x0) r.x1 = r.x0;
    if (r.y1 < r.y0) r.y1 = r.y0;
    return r;
}

clip_rect clip_of_box(box b, clip_rect outer)
{
    clip_rect r;
    r.x0 = imax(outer.x0, (int)ceilf(b.x0 - 0.5f));
    r.y0 = imax(outer.y0, (int)ceilf(b.y0 - 0.5f));
    r.x1 = imin(outer.x1, (int)floorf(b.x1 - 0.5f) + 1);
    r.y1 = imin(outer.y1, (int)floorf(b.y1 - 0.5f) + 1);
    if (r.x1 < r.x0) r.x1 = r.x0;
    if (r.y1 < r.y0) r.y1 = r.y0;
    return r;
}

/* Pixel range [*i0, *i1) touched by the span [lo, hi), clipped to [c0, c1). */
static void span_pixels(float lo, float hi, int c0, int c1, int *i0, int *i1)
{
    *i0 = imax(c0, (int)floorf(lo));
    *i1 = imin(c1, (int)ceilf(hi));
}

void canvas_fill_rect(canvas *c, clip_rect clip, box b, uint32_t color, float alpha)
{
    if (!(b.x1 > b.x0 && b.y1 > b.y0)) return;
    int x0, x1, y0, y1;
    span_pixels(b.x0, b.x1, clip.x0, clip.x1, &x0, &x1);
    span_pixels(b.y0, b.y1, clip.y0, clip.y1, &y0, &y1);
    for (int y = y0; y < y1; y++) {
        float cy = fminf(b.y1, (float)y + 1) - fmaxf(b.y0, (float)y);
        if (cy <= 0) continue;
        for (int x = x0; x < x1; x++) {
            float cx = fminf(b.x1, (float)x + 1) - fmaxf(b.x0, (float)x);
            if (cx <= 0) continue;
            canvas_blend(c, x, y, color, alpha * cx * cy);
        }
    }
}

void canvas_fill_circle(canvas *c, clip_rect clip, float cx, float cy, float r, uint32_t color,
                        float alpha)
{
    if (!(r > 0)) return;
    int x0, x1, y0, y1;
    span_pixels(cx - r - 1, cx + r + 1, clip.x0, clip.x1, &x0, &x1);
    span_pixels(cy - r - 1, cy + r + 1, clip.y0, clip.y1, &y0, &y1);
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            float dx = (float)x + 0.5f - cx, dy = (float)y + 0.5f - cy;
            float cov = clampf(r + 0.5f - sqrtf(dx * dx + dy * dy), 0, 1);
            /* A disc smaller than a pixel keeps its area, not its full opacity. */
            if (r < 0.5f) cov *= 2 * r;
            if (cov > 0) canvas_blend(c, x, y, color, alpha * cov);
        }
}

void canvas_fill_convex(canvas *c, clip_rect clip, const float *xy, int n, uint32_t color,
                        float alpha)
{
    if (n < 3 || n > 16) return;
    float nx[16], ny[16], off[16];
    float area = 0, minx = xy[0], maxx = xy[0], miny = xy[1], maxy = xy[1];
    for (int i = 0; i < n; i++) {
        int j = (i + 1) % n;
        area += xy[2 * i] * xy[2 * j + 1] - xy[2 * j] * xy[2 * i + 1];
        minx = fminf(minx, xy[2 * i]);
        maxx = fmaxf(maxx, xy[2 * i]);
        miny = fminf(miny, xy[2 * i + 1]);
        maxy = fmaxf(maxy, xy[2 * i + 1]);
    }
    if (area == 0) return;
    /* Outward unit normals, so a pixel's signed distance to the polygon is
     * the largest of its distances to the edge lines (exact away from corners). */
    float sign = area > 0 ? 1.0f : -1.0f;
    for (int i = 0; i < n; i++) {
        int j = (i + 1) % n;
        float ex = xy[2 * j] - xy[2 * i], ey = xy[2 * j + 1] - xy[2 * i + 1];
        float len = sqrtf(ex * ex + ey * ey);
        if (len == 0) len = 1;
        nx[i] = sign * ey / len;
        ny[i] = -sign * ex / len;
        off[i] = nx[i] * xy[2 * i] + ny[i] * xy[2 * i + 1];
    }
    int x0, x1, y0, y1;
    span_pixels(minx - 1, maxx + 1, clip.x0, clip.x1, &x0, &x1);
    span_pixels(miny - 1, maxy + 1, clip.y0, clip.y1, &y0, &y1);
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            float px = (float)x + 0.5f, py = (float)y + 0.5f, sd = -1e30f;
            for (int i = 0; i < n; i++) sd = fmaxf(sd, nx[i] * px + ny[i] * py - off[i]);
            float cov = clampf(0.5f - sd, 0, 1);
            if (cov > 0) canvas_blend(c, x, y, color, alpha * cov);
        }
}

void canvas_round_rect(canvas *c, clip_rect clip, box b, float radius, float line_width,
                       uint32_t color, float alpha)
{
    float hx = (b.x1 - b.x0) * 0.5f, hy = (b.y1 - b.y0) * 0.5f;
    if (!(hx > 0 && hy > 0)) return;
    float cx = b.x0 + hx, cy = b.y0 + hy;
    radius = clampf(radius, 0, fminf(hx, hy));
    float pad = line_width + 1;
    int x0, x1, y0, y1;
    span_pixels(b.x0 - pad, b.x1 + pad, clip.x0, clip.x1, &x0, &x1);
    span_pixels(b.y0 - pad, b.y1 + pad, clip.y0, clip.y1, &y0, &y1);
    /* Pixels deeper inside than the edge's reach are fully covered (fill)
     * or untouched (outline): handled without the distance function. */
    float inset = (line_width > 0 ? line_width * 0.5f : 0) + 1;
    for (int y = y0; y < y1; y++) {
        bool mid_row = fabsf((float)y + 0.5f - cy) < hy - inset;
        int skip0 = (int)ceilf(cx - (hx - inset)), skip1 = (int)floorf(cx + (hx - inset));
        for (int x = x0; x < x1; x++) {
            if (mid_row && x >= skip0 && x < skip1) {
                int end = skip1 < x1 ? skip1 : x1;
                if (line_width <= 0)
                    for (; x < end; x++) canvas_blend(c, x, y, color, alpha);
                x = end - 1;
                continue;
            }
            /* Signed distance to a rounded box (negative inside). */
            float qx = fabsf((float)x + 0.5f - cx) - (hx - radius);
            float qy = fabsf((float)y + 0.5f - cy) - (hy - radius);
            float ox = fmaxf(qx, 0), oy = fmaxf(qy, 0);
            float sd = sqrtf(ox * ox + oy * oy) + fminf(fmaxf(qx, qy), 0) - radius;
            float cov = line_width > 0 ? clampf(line_width * 0.5f + 0.5f - fabsf(sd), 0, 1)
                                       : clampf(0.5f - sd, 0, 1);
            if (line_width > 0 && line_width < 1) cov *= line_width;
            if (cov > 0) canvas_blend(c, x, y, color, alpha * cov);
        }
    }
}

void canvas_blit_alpha(canvas *c, clip_rect clip, int x, int y, const uint8_t *alpha, int w,
                       int h, int stride, uint32_t color, float opacity)
{
    int j0 = imax(0, clip.y0 - y), j1 = imin(h, clip.y1 - y);
    int i0 = imax(0, clip.x0 - x), i1 = imin(w, clip.x1 - x);
    for (int j = j0; j < j1; j++) {
        const uint8_t *row = alpha + (size_t)j * (size_t)stride;
        for (int i = i0; i < i1; i++)
            if (row[i]) canvas_blend(c, x + i, y + j, color, opacity * (float)row[i] * (1.0f / 255));
    }
}

/* -------------------------------------------------------------- masks */

gl_plot_status mask_init(stroke_mask *m, clip_rect area, gl_plot_error *err)
{
    memset(m, 0, sizeof *m);
    m->area = area;
    m->w = imax(0, area.x1 - area.x0);
    m->h = imax(0, area.y1 - area.y0);
    m->cov = calloc((size_t)m->w * (size_t)m->h + 1, 1);
    if (!m->cov) return gl_plot_error_set(err, GL_PLOT_ENOMEM, "out of memory for a line mask");
    m->dx0 = m->w;
    m->dy0 = m->h;
    return GL_PLOT_OK;
}

void mask_free(stroke_mask *m)
{
    if (!m) return;
    free(m->cov);
    m->cov = NULL;
}

/* Branchy min/max and floor/ceil: fminf/fmaxf honour NaN, and floorf and
 * ceilf are library calls on baseline x86-64; this is the hottest loop of
 * the library.  The arguments here are finite and well inside int range. */
static inline float minf(float a, float b) { return a < b ? a : b; }
static inline float maxf(float a, float b) { return a > b ? a : b; }
static inline int ifloor(float v)
{
    int i = (int)v;
    return i - (v < (float)i);
}
static inline int iceil(float v)
{
    int i = (int)v;
    return i + (v > (float)i);
}

void mask_segment(stroke_mask *m, float ax, float ay, float bx, float by, float width)
{
    if (!(isfinite(ax) && isfinite(ay) && isfinite(bx) && isfinite(by)) || !(width > 0)) return;
    float r = width * 0.5f, R = r + 0.5f;
    ax -= (float)m->area.x0;
    bx -= (float)m->area.x0;
    ay -= (float)m->area.y0;
    by -= (float)m->area.y0;
    float minx = minf(ax, bx) - R, maxx = maxf(ax, bx) + R;
    float miny = minf(ay, by) - R, maxy = maxf(ay, by) + R;
    if (maxx < 0 || maxy < 0 || minx > (float)m->w || miny > (float)m->h) return;

    /* Coverage is that of a unit box filter across a band of half-width r:
     * 1 within r - 0.5 of the centre line, 0 beyond r + 0.5, linear between
     * (for r < 0.5 the band never covers a pixel fully). */
    float outer2 = R * R, inner = r - 0.5f, inner2 = inner > 0 ? inner * inner : -1;
    float thin = r < 0.5f ? 2 * r : 1;
    float dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy, len = sqrtf(len2);
    float inv_len2 = len2 > 0 ? 1.0f / len2 : 0;
    /* Unit normal: between the end caps the distance to the segment is the
     * distance to its line, linear along a row, so most pixels need no sqrt. */
    float nx = len > 0 ? -dy / len : 0, ny = len > 0 ? dx / len : 0;
    bool steep = dy > 1e-6f * len || dy < -1e-6f * len;
    float inv_dy = steep ? 1.0f / dy : 0;
    float dt = dx * inv_len2;   /* per-pixel steps of t and of the line distance */
    int y0 = ifloor(maxf(miny, -1)), y1 = iceil(minf(maxy, (float)m->h + 1));
    y0 = y0 < 0 ? 0 : y0;
    y1 = y1 > m->h ? m->h : y1;
    int touched_x0 = m->w, touched_x1 = 0;
    for (int j = y0; j < y1; j++) {
        float py = (float)j + 0.5f;
        float xa = minx, xb = maxx;
        /* Only pixels within R of the infinite line can be covered, which
         * keeps long diagonal segments from scanning their whole bounding box. */
        if (steep) {
            float c0 = dx * (py - ay), u0 = (c0 - R * len) * inv_dy, u1 = (c0 + R * len) * inv_dy;
            if (u0 > u1) {
                float t = u0;
                u0 = u1;
                u1 = t;
            }
            xa = maxf(xa, ax + u0);
            xb = minf(xb, ax + u1);
        }
        xa = maxf(xa, -1);
        xb = minf(xb, (float)m->w + 1);
        if (!(xa <= xb)) continue;
        int i0 = ifloor(xa - 0.5f), i1 = iceil(xb + 0.5f);
        i0 = i0 < 0 ? 0 : i0;
        i1 = i1 > m->w ? m->w : i1;
        if (i0 >= i1) continue;
        uint8_t *row = m->cov + (size_t)j * (size_t)m->w;
        float ry = py - ay;
        float rx0 = (float)i0 + 0.5f - ax;
        float t = (rx0 * dx + ry * dy) * inv_len2, e = rx0 * nx + ry * ny;
        for (int i = i0; i < i1; i++, t += dt, e += nx) {
            float rx = (float)i + 0.5f - ax, d;
            if (len2 > 0 && t >= 0 && t <= 1) {
                d = e < 0 ? -e : e;
                if (d >= R) continue;
            } else {
                float d2 = t > 1 ? (rx - dx) * (rx - dx) + (ry - dy) * (ry - dy)
                                 : rx * rx + ry * ry;
                if (d2 >= outer2) continue;
                d = d2 <= inner2 ? 0 : sqrtf(d2);
            }
            float cov = minf(R - d, thin);
            uint8_t v = (uint8_t)(cov * 255 + 0.5f);
            if (v > row[i]) row[i] = v;
        }
        touched_x0 = i0 < touched_x0 ? i0 : touched_x0;
        touched_x1 = i1 > touched_x1 ? i1 : touched_x1;
    }
    if (touched_x0 < touched_x1) {
        m->dx0 = imin(m->dx0, touched_x0);
        m->dx1 = imax(m->dx1, touched_x1);
        m->dy0 = imin(m->dy0, y0);
        m->dy1 = imax(m->dy1, y1);
    }
}

void mask_polyline(stroke_mask *m, const float *xy, int64_t n, float width,
                   const dash_pattern *dash, float *phase)
{
    if (n <= 0) return;
    if (n == 1 || !dash || dash->n == 0) {
        if (n == 1) mask_segment(m, xy[0], xy[1], xy[0], xy[1], width);
        for (int64_t i = 0; i + 1 < n; i++)
            mask_segment(m, xy[2 * i], xy[2 * i + 1], xy[2 * i + 2], xy[2 * i + 3], width);
        return;
    }
    /* Round caps add width/2 at each end of a dash, so the drawn "on" parts
     * are shortened by one width and the gaps lengthened by one; a dotted
     * pattern becomes round dots. */
    float piece[4], period = 0;
    for (int k = 0; k < dash->n; k++) {
        float len = dash->len[k] * width;
        piece[k] = k % 2 == 0 ? fmaxf(0, len - width) : len + width;
        period += piece[k];
    }
    if (period < 1) return;
    /* Find the piece and the distance left in it for the carried phase. */
    float pos = fmodf(*phase, period);
    int k = 0;
    while (pos > piece[k]) {   /* terminates: pos < period */
        pos -= piece[k];
        k = (k + 1) % dash->n;
    }
    float left = piece[k] - pos;
    bool dot_pending = k % 2 == 0;   /* a zero-length "on" piece still draws a dot */
    float travelled = 0;
    for (int64_t i = 0; i + 1 < n; i++) {
        float ax = xy[2 * i], ay = xy[2 * i + 1], bx = xy[2 * i + 2], by = xy[2 * i + 3];
        float sx = bx - ax, sy = by - ay, L = sqrtf(sx * sx + sy * sy);
        if (!(L > 0) || !isfinite(L)) continue;
        float t = 0;
        while (t < L) {
            float step = fminf(left, L - t);
            if (k % 2 == 0 && (step > 0 || dot_pending)) {
                float t1 = t + step;
                mask_segment(m, ax + sx * t / L, ay + sy * t / L, ax + sx * t1 / L,
                             ay + sy * t1 / L, width);
                dot_pending = false;
            }
            t += step;
            left -= step;
            if (left <= 1e-6f) {
                k = (k + 1) % dash->n;
                left = piece[k];
                dot_pending = k % 2 == 0;
            }
        }
        travelled += L;
    }
    *phase += travelled;
}

void mask_fill_rect(stroke_mask *m, box b)
{
    b.x0 -= (float)m->area.x0;
    b.x1 -= (float)m->area.x0;
    b.y0 -= (float)m->area.y0;
    b.y1 -= (float)m->area.y0;
    if (!(b.x1 > b.x0 && b.y1 > b.y0)) return;
    int x0, x1, y0, y1;
    span_pixels(b.x0, b.x1, 0, m->w, &x0, &x1);
    span_pixels(b.y0, b.y1, 0, m->h, &y0, &y1);
    if (x0 >= x1 || y0 >= y1) return;
    for (int y = y0; y < y1; y++) {
        float cy = fminf(b.y1, (float)y + 1) - fmaxf(b.y0, (float)y);
        uint8_t *row = m->cov + (size_t)y * (size_t)m->w;
        for (int x = x0; x < x1; x++) {
            float cx = fminf(b.x1, (float)x + 1) - fmaxf(b.x0, (float)x);
            int v = row[x] + (int)(cx * cy * 255 + 0.5f);
            row[x] = (uint8_t)(v > 255 ? 255 : v);
        }
    }
    m->dx0 = imin(m->dx0, x0);
    m->dx1 = imax(m->dx1, x1);
    m->dy0 = imin(m->dy0, y0);
    m->dy1 = imax(m->dy1, y1);
}

void mask_composite(stroke_mask *m, canvas *c, uint32_t color, float alpha)
{
    if (m->dx0 >= m->dx1 || m->dy0 >= m->dy1) return;
    for (int j = m->dy0; j < m->dy1; j++) {
        uint8_t *row = m->cov + (size_t)j * (size_t)m->w;
        int y = m->area.y0 + j;
        for (int i = m->dx0; i < m->dx1; i++) {
            /* Masks are mostly empty: skip zero bytes eight at a time. */
            if ((i & 7) == 0 && i + 8 <= m->dx1) {
                uint64_t word;
                memcpy(&word, row + i, 8);
                if (!word) {
                    i += 7;
                    continue;
                }
            }
            if (row[i]) {
                canvas_blend(c, m->area.x0 + i, y, color, alpha * (float)row[i] * (1.0f / 255));
                row[i] = 0;
            }
        }
    }
    m->dx0 = m->w;
    m->dy0 = m->h;
    m->dx1 = m->dy1 = 0;
}
