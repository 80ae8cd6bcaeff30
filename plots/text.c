/* text.c — text layout and rendering with FreeType or the built-in font. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <ft2build.h>
#include FT_FREETYPE_H
#include FT_ADVANCES_H

#include "font_fallback.h"
#include "text.h"

struct plot_font {
    bool fallback;
    FT_Library library;
    FT_Face face;
    float size;             /* the size last set on the face, to skip resets */
};

/* Where Debian, Fedora, Arch and macOS (Homebrew/MacPorts) put DejaVu Sans. */
static const char *const font_paths[] = {
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/local/share/fonts/DejaVuSans.ttf",
    "/opt/homebrew/share/fonts/DejaVuSans.ttf",
    "/opt/local/share/fonts/dejavu-fonts/DejaVuSans.ttf",
};

static bool font_try(plot_font *font, const char *path)
{
    if (!path || !*path) return false;
    if (FT_New_Face(font->library, path, 0, &font->face)) {
        font->face = NULL;
        return false;
    }
    if (!FT_IS_SCALABLE(font->face)) {
        FT_Done_Face(font->face);
        font->face = NULL;
        return false;
    }
    return true;
}

gl_plot_status font_open(plot_font **out, gl_plot_error *err)
{
    plot_font *font = calloc(1, sizeof *font);
    *out = NULL;
    if (!font) return gl_plot_error_set(err, GL_PLOT_ENOMEM, "out of memory for a font");
    font->fallback = true;
    if (FT_Init_FreeType(&font->library) == 0) {
        const char *env = getenv("GRADLAB_FONT");
        bool found = false;
        if (env && *env) {
            /* An explicit choice is honoured or refused, never second-guessed. */
            found = font_try(font, env);
        } else {
            for (size_t i = 0; i < sizeof font_paths / sizeof *font_paths && !found; i++)
                found = font_try(font, font_paths[i]);
        }
        if (found) {
            font->fallback = false;
        } else {
            FT_Done_FreeType(font->library);
            font->library = NULL;
        }
    } else {
        font->library = NULL;
    }
    *out = font;
    return GL_PLOT_OK;
}

void font_close(plot_font *font)
{
    if (!font) return;
    if (font->face) FT_Done_Face(font->face);
    if (font->library) FT_Done_FreeType(font->library);
    free(font);
}

bool font_is_fallback(const plot_font *font) { return font->fallback; }

/* The fallback font's integer scale for a size: its capitals are 7 cells
 * high, DejaVu's are 0.73 em.  Rounded generously: a bitmap font needs a
 * little more size than an outline font to read as easily. */
static int fallback_scale(float size)
{
    int k = (int)lroundf(size * 0.73f / FALLBACK_CAP_ROWS + 0.25f);
    return k < 1 ? 1 : k;
}

float font_ascent(const plot_font *font, float size)
{
    if (font->fallback) return (float)(fallback_scale(size) * (FALLBACK_CAP_ROWS + 1));
    return 0.76f * size;   /* DejaVu Sans: ascender of 'l', 'd' (0.76 em) */
}

float font_descent(const plot_font *font, float size)
{
    if (font->fallback) return (float)(fallback_scale(size) * (FALLBACK_ROWS - FALLBACK_CAP_ROWS));
    return 0.24f * size;   /* DejaVu Sans descender (0.236 em) */
}

/* Next codepoint of a UTF-8 string; malformed bytes give U+FFFD, control
 * characters a space (labels are single lines). */
static uint32_t utf8_next(const unsigned char **p)
{
    const unsigned char *s = *p;
    uint32_t c = s[0];
    int extra = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2
              : (c & 0xF8) == 0xF0 ? 3 : -1;
    if (extra < 0) {
        *p = s + 1;
        return 0xFFFD;
    }
    c = extra == 0 ? c : extra == 1 ? c & 0x1F : extra == 2 ? c & 0x0F : c & 0x07;
    for (int i = 1; i <= extra; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *p = s + i;
            return 0xFFFD;
        }
        c = (c << 6) | (s[i] & 0x3F);
    }
    *p = s + extra + 1;
    return c < 32 || c == 127 ? ' ' : c;
}

static void face_size(plot_font *font, float size)
{
    if (font->size != size) {
        FT_Set_Char_Size(font->face, 0, (FT_F26Dot6)lroundf(size * 64), 72, 72);
        font->size = size;
    }
}

/* Pen advance of one glyph (pixels), plus kerning against the previous one. */
static float ft_advance(plot_font *font, FT_UInt previous, FT_UInt glyph)
{
    FT_Fixed advance = 0;
    FT_Get_Advance(font->face, glyph, FT_LOAD_NO_HINTING, &advance);
    float x = (float)advance / 65536.0f;
    if (previous && FT_HAS_KERNING(font->face)) {
        FT_Vector kern;
        if (FT_Get_Kerning(font->face, previous, glyph, FT_KERNING_UNFITTED, &kern) == 0)
            x += (float)kern.x / 64.0f;
    }
    return x;
}

float text_width(plot_font *font, float size, const char *utf8)
{
    const unsigned char *p = (const unsigned char *)utf8;
    float width = 0;
    if (font->fallback) {
        int k = fallback_scale(size), cols = 0;
        while (*p) {
            int first, end;
            fallback_glyph_span(fallback_glyph(utf8_next(&p)), &first, &end);
            cols += end - first + 1;
        }
        return (float)(k * (cols > 0 ? cols - 1 : 0));
    }
    face_size(font, size);
    FT_UInt previous = 0;
    while (*p) {
        FT_UInt glyph = FT_Get_Char_Index(font->face, utf8_next(&p));
        width += ft_advance(font, previous, glyph);
        previous = glyph;
    }
    return width;
}

/* A rendered line of text: an 8-bit coverage bitmap whose pen origin (the
 * start of the baseline) is at (origin_x, baseline). */
typedef struct text_bitmap {
    int width, height;
    uint8_t *alpha;
    int origin_x, baseline;
} text_bitmap;

/* Renders `utf8` with the pen starting `frac` pixels right of origin_x, so
 * text lands on sub-pixel positions as laid out. */
static gl_plot_status text_render(plot_font *font, float size, const char *utf8, float frac,
                                  text_bitmap *out, gl_plot_error *err)
{
    memset(out, 0, sizeof *out);
    float width = text_width(font, size, utf8);
    int pad = (int)ceilf(size * 0.35f) + 2;
    int above = (int)ceilf(font->fallback ? font_ascent(font, size) : size * 1.0f) + 1;
    int below = (int)ceilf(font->fallback ? font_descent(font, size) : size * 0.3f) + 1;
    out->width = (int)ceilf(width + frac) + 2 * pad;
    out->height = above + below;
    out->origin_x = pad;
    out->baseline = above;
    out->alpha = calloc((size_t)out->width * (size_t)out->height, 1);
    if (!out->alpha) return gl_plot_error_set(err, GL_PLOT_ENOMEM, "out of memory for text");

    const unsigned char *p = (const unsigned char *)utf8;
    if (font->fallback) {
        int k = fallback_scale(size), pen = out->origin_x + (int)lroundf(frac);
        int top = out->baseline - k * FALLBACK_CAP_ROWS;
        while (*p) {
            const uint8_t *rows = fallback_glyph(utf8_next(&p));
            int first, end;
            fallback_glyph_span(rows, &first, &end);
            for (int r = 0; r < FALLBACK_ROWS; r++)
                for (int col = first; col < end; col++) {
                    if (!(rows[r] & (0x10 >> col))) continue;
                    for (int dy = 0; dy < k; dy++) {
                        int y = top + r * k + dy;
                        if (y < 0 || y >= out->height) continue;
                        for (int dx = 0; dx < k; dx++) {
                            int x = pen + (col - first) * k + dx;
                            if (x >= 0 && x < out->width)
                                out->alpha[(size_t)y * (size_t)out->width + (size_t)x] = 255;
                        }
                    }
                }
            pen += (end - first + 1) * k;
        }
        return GL_PLOT_OK;
    }

    face_size(font, size);
    FT_UInt previous = 0;
    float pen = (float)out->origin_x + frac;
    while (*p) {
        FT_UInt glyph = FT_Get_Char_Index(font->face, utf8_next(&p));
        float advance = ft_advance(font, previous, glyph);
        /* Kerning moves this glyph; its own advance moves the next one. */
        float kern = previous ? advance - ft_advance(font, 0, glyph) : 0;
        float x = pen + kern;
        int ix = (int)floorf(x);
        FT_Vector delta = {(FT_Pos)lroundf((x - (float)ix) * 64), 0};
        FT_Set_Transform(font->face, NULL, &delta);
        /* Light hinting snaps only vertically: crisp baselines and x-heights
         * while keeping the true, sub-pixel horizontal layout. */
        if (FT_Load_Glyph(font->face, glyph, FT_LOAD_TARGET_LIGHT | FT_LOAD_RENDER) == 0) {
            FT_GlyphSlot slot = font->face->glyph;
            FT_Bitmap *bm = &slot->bitmap;
            if (bm->pixel_mode == FT_PIXEL_MODE_GRAY) {
                int gx = ix + slot->bitmap_left, gy = out->baseline - slot->bitmap_top;
                for (unsigned r = 0; r < bm->rows; r++) {
                    int y = gy + (int)r;
                    if (y < 0 || y >= out->height) continue;
                    const uint8_t *src = bm->buffer + (ptrdiff_t)r * bm->pitch;
                    uint8_t *dst = out->alpha + (size_t)y * (size_t)out->width;
                    for (unsigned col = 0; col < bm->width; col++) {
                        int x2 = gx + (int)col;
                        if (x2 < 0 || x2 >= out->width) continue;
                        unsigned v = dst[x2] + src[col];
                        dst[x2] = (uint8_t)(v > 255 ? 255 : v);
                    }
                }
            }
        }
        pen += advance;
        previous = glyph;
    }
    FT_Set_Transform(font->face, NULL, NULL);
    return GL_PLOT_OK;
}

gl_plot_status text_draw(canvas *c, clip_rect clip, plot_font *font, float size,
                         const char *utf8, float x, float y, text_halign ha, text_valign va,
                         uint32_t color, gl_plot_error *err)
{
    if (!utf8 || !*utf8 || !(size > 0)) return GL_PLOT_OK;
    float width = text_width(font, size, utf8);
    float left = ha == TEXT_LEFT ? x : ha == TEXT_CENTER ? x - width * 0.5f : x - width;
    float asc = font_ascent(font, size), desc = font_descent(font, size);
    float base = va == TEXT_TOP ? y + asc : va == TEXT_BOTTOM ? y - desc
               : va == TEXT_MIDDLE ? y + (asc - desc) * 0.5f : y;
    int ileft = (int)floorf(left), ibase = (int)lroundf(base);
    text_bitmap bm;
    gl_plot_status status = text_render(font, size, utf8, left - (float)ileft, &bm, err);
    if (status) return status;
    canvas_blit_alpha(c, clip, ileft - bm.origin_x, ibase - bm.baseline, bm.alpha, bm.width,
                      bm.height, bm.width, color, 1.0f);
    free(bm.alpha);
    return GL_PLOT_OK;
}

gl_plot_status text_draw_vertical(canvas *c, clip_rect clip, plot_font *font, float size,
                                  const char *utf8, float cx, float cy, uint32_t color,
                                  gl_plot_error *err)
{
    if (!utf8 || !*utf8 || !(size > 0)) return GL_PLOT_OK;
    float width = text_width(font, size, utf8);
    float asc = font_ascent(font, size), desc = font_descent(font, size);
    /* After the turn the text runs upwards from y = cy + width/2, and the
     * baseline is the column right of the box centre by (asc - desc)/2. */
    float start = cy + width * 0.5f;
    int istart = (int)ceilf(start);
    int ibase = (int)lroundf(cx + (asc - desc) * 0.5f);
    text_bitmap bm;
    gl_plot_status status = text_render(font, size, utf8, (float)istart - start, &bm, err);
    if (status) return status;
    /* Turn counter-clockwise: source (i, j) goes to (j, width - 1 - i). */
    uint8_t *turned = malloc((size_t)bm.width * (size_t)bm.height);
    if (!turned) {
        free(bm.alpha);
        return gl_plot_error_set(err, GL_PLOT_ENOMEM, "out of memory for text");
    }
    for (int j = 0; j < bm.height; j++)
        for (int i = 0; i < bm.width; i++)
            turned[(size_t)(bm.width - 1 - i) * (size_t)bm.height + (size_t)j] =
                bm.alpha[(size_t)j * (size_t)bm.width + (size_t)i];
    /* Source edge coordinates (u, v) become (v, width - u): the pen origin
     * (origin_x + frac, baseline) lands on (ibase, start). */
    int x = ibase - bm.baseline;
    int y = istart - (bm.width - bm.origin_x);
    canvas_blit_alpha(c, clip, x, y, turned, bm.height, bm.width, bm.height, color, 1.0f);
    free(turned);
    free(bm.alpha);
    return GL_PLOT_OK;
}
