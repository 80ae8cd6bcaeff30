/*
 * plot.h — gradlab's plot library: figures drawn in C and saved as PNG.
 *
 * A quick tour:
 *   - A gl_plot_figure is a grid of panels; each panel is a line plot, a
 *     heatmap or a histogram.  A single plot is a figure with one panel.
 *   - Data come as plain arrays with explicit lengths and strides, float or
 *     double (gl_plot_array, gl_plot_matrix), like stb_image_write takes
 *     pixels and a stride.  This library knows nothing of tensors or Lua and
 *     never keeps a pointer to the caller's data past the call.
 *   - Every fallible function returns a gl_plot_status and fills the
 *     caller-owned gl_plot_error.  Messages name the part of the spec at
 *     fault ("series 2 'relu': x has 10 values, y has 9") but no function:
 *     callers prepend theirs ("lines: ").  Nothing here prints, exits,
 *     aborts or longjmps out of a call.
 *   - Text is DejaVu Sans through FreeType, found at run time
 *     (GRADLAB_FONT overrides the path); if the font cannot be loaded the
 *     built-in bitmap font is used, so a figure is always drawn.  An
 *     explicitly set GRADLAB_FONT naming a missing file means "fallback".
 *   - Non-finite values (and values <= 0 on a log axis) are skipped and
 *     counted in a small note drawn on the figure.
 *
 *   gl_plot_series s = {.name = "loss", .y = gl_plot_f64(values, n)};
 *   gl_plot_panel p = {.kind = GL_PLOT_LINES, .title = "Training loss",
 *                      .lines = {.nseries = 1, .series = &s, .logy = true}};
 *   gl_plot_figure f = {.width = 1200, .height = 700, .npanels = 1, .panels = &p};
 *   gl_plot_error err;
 *   if (gl_plot_save("out/loss.png", &f, &err)) fprintf(stderr, "%s\n", err.message);
 */
#ifndef GRADLAB_PLOT_H
#define GRADLAB_PLOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- errors */

typedef enum gl_plot_status {
    GL_PLOT_OK = 0,
    GL_PLOT_EARG,      /* a bad spec: empty data, mismatched lengths, bad size */
    GL_PLOT_ENOMEM,    /* an allocation failed */
    GL_PLOT_EIO,       /* a file could not be written or read */
    GL_PLOT_EFORMAT    /* a file is not a PNG libpng can read */
} gl_plot_status;

typedef struct gl_plot_error {
    gl_plot_status code;
    char message[512];
} gl_plot_error;

/* Fills `err` (which may be NULL) and returns `code`.  printf-style. */
gl_plot_status gl_plot_error_set(gl_plot_error *err, gl_plot_status code, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* ----------------------------------------------------------------- data */

typedef enum gl_plot_dtype { GL_PLOT_F64 = 0, GL_PLOT_F32 } gl_plot_dtype;

/* `length` values at data[0], data[stride], ... (stride in elements, may be
 * negative).  Borrowed for the duration of a call. */
typedef struct gl_plot_array {
    const void *data;
    gl_plot_dtype dtype;
    int64_t length;
    int64_t stride;
} gl_plot_array;

/* A rows x cols matrix: element (i, j) at data[i * row_stride + j * col_stride]. */
typedef struct gl_plot_matrix {
    const void *data;
    gl_plot_dtype dtype;
    int64_t rows, cols;
    int64_t row_stride, col_stride;
} gl_plot_matrix;

static inline gl_plot_array gl_plot_f64(const double *data, int64_t length)
{
    gl_plot_array a = {data, GL_PLOT_F64, length, 1};
    return a;
}

static inline gl_plot_array gl_plot_f32(const float *data, int64_t length)
{
    gl_plot_array a = {data, GL_PLOT_F32, length, 1};
    return a;
}

/* Element i of an array (no bounds check). */
static inline double gl_plot_array_get(const gl_plot_array *a, int64_t i)
{
    return a->dtype == GL_PLOT_F32 ? (double)((const float *)a->data)[i * a->stride]
                                   : ((const double *)a->data)[i * a->stride];
}

static inline double gl_plot_matrix_get(const gl_plot_matrix *m, int64_t i, int64_t j)
{
    int64_t k = i * m->row_stride + j * m->col_stride;
    return m->dtype == GL_PLOT_F32 ? (double)((const float *)m->data)[k]
                                   : ((const double *)m->data)[k];
}

/* ------------------------------------------------------------- the spec */

/* Colours: 0 means "the next palette colour", so a zeroed spec is valid;
 * an explicit colour is GL_PLOT_RGB(0xRRGGBB). */
#define GL_PLOT_COLOR_AUTO 0u
#define GL_PLOT_RGB(hex) (0xFF000000u | (uint32_t)(hex))
#define GL_PLOT_MIN_SIZE 100             /* figure width/height bounds, pixels */
#define GL_PLOT_MAX_SIZE 10000
#define GL_PLOT_MAX_BINS 100000

typedef enum gl_plot_style {
    GL_PLOT_STYLE_AUTO = 0,   /* solid for the first 10 series, then cycles */
    GL_PLOT_SOLID, GL_PLOT_DASHED, GL_PLOT_DOTTED, GL_PLOT_DASHDOT,
    GL_PLOT_NO_LINE           /* markers only (e.g. events on a curve) */
} gl_plot_style;

typedef enum gl_plot_marker {
    GL_PLOT_MARKER_NONE = 0, GL_PLOT_MARKER_AUTO,
    GL_PLOT_CIRCLE, GL_PLOT_SQUARE, GL_PLOT_TRIANGLE, GL_PLOT_DIAMOND, GL_PLOT_CROSS, GL_PLOT_PLUS
} gl_plot_marker;

typedef struct gl_plot_series {
    const char *name;         /* legend label; NULL means "series N" */
    gl_plot_array x;          /* x.data NULL: x = 1, 2, ..., y.length */
    gl_plot_array y;
    uint32_t color;           /* GL_PLOT_RGB(0xRRGGBB), or 0 for the palette */
    gl_plot_style style;
    gl_plot_marker marker;    /* NONE, or AUTO to follow gl_plot_lines.markers */
} gl_plot_series;

typedef struct gl_plot_lines {
    int nseries;
    const gl_plot_series *series;
    bool logx, logy;
    bool markers;             /* draw a marker at every point (sparse data) */
    int legend;               /* 0: when 2..40 series (default); 1 always; -1 never */
} gl_plot_lines;

/* values: rows x steps, drawn with row 0 at the top. */
typedef struct gl_plot_heatmap {
    gl_plot_matrix values;
    int nrow_labels;          /* 0, or values.rows */
    const char *const *row_labels;
    bool linear;              /* linear colour scale; by default log10, skipping values <= 0 */
    bool no_colorbar;
    int64_t nmarks;           /* columns (0-based) marked by a red cross along the top edge, */
    const int64_t *marks;     /* e.g. the steps where gradients were clipped */
} gl_plot_heatmap;

typedef struct gl_plot_hist_series {
    const char *name;
    gl_plot_array values;
    uint32_t color;           /* GL_PLOT_RGB(0xRRGGBB), or 0 for the palette */
} gl_plot_hist_series;

typedef struct gl_plot_histogram {
    int nseries;
    const gl_plot_hist_series *series;
    int bins;                 /* 0 means 50 */
    bool logy;                /* log count axis */
    bool logx;                /* log-spaced bins over the positive values */
    bool multiples;           /* one small panel per series instead of overlaid */
} gl_plot_histogram;

typedef enum gl_plot_kind { GL_PLOT_LINES, GL_PLOT_HEATMAP, GL_PLOT_HISTOGRAM } gl_plot_kind;

typedef struct gl_plot_panel {
    gl_plot_kind kind;
    const char *title, *xlabel, *ylabel;   /* NULL: none (heatmap/histogram give defaults) */
    union {
        gl_plot_lines lines;
        gl_plot_heatmap heatmap;
        gl_plot_histogram histogram;
    };
} gl_plot_panel;

typedef struct gl_plot_figure {
    int width, height;        /* pixels, GL_PLOT_MIN_SIZE..GL_PLOT_MAX_SIZE; 0 for the
                                 default: 1200 x 700 for one panel, grids by their size */
    const char *title;        /* a title over the whole grid; NULL for none */
    int cols;                 /* panels per row; 0 means min(npanels, 2) */
    int npanels;
    const gl_plot_panel *panels;
    bool is_grid;             /* name panels in messages ("panel 2 (lines): ...") */
} gl_plot_figure;

/* ------------------------------------------------------------ rendering */

/* An RGBA image, 8 bits per channel, rows of width*4 bytes, owned. */
typedef struct gl_plot_image {
    int width, height;
    uint8_t *rgba;
} gl_plot_image;

void gl_plot_image_free(gl_plot_image *image);   /* frees rgba; NULL is a no-op */

/* Checks a figure spec without drawing (gl_plot_render calls it first). */
gl_plot_status gl_plot_validate(const gl_plot_figure *figure, gl_plot_error *err);

/* Draws `figure` into a new image (*out is overwritten; free it with
 * gl_plot_image_free). */
gl_plot_status gl_plot_render(const gl_plot_figure *figure, gl_plot_image *out,
                              gl_plot_error *err);

/* Renders and writes a PNG to `path` atomically: the file is either the old
 * one or the complete new one, never half written, and no temp file is left. */
gl_plot_status gl_plot_save(const char *path, const gl_plot_figure *figure, gl_plot_error *err);

/* The series palette (Tableau 10, cycling) and the viridis colormap at t in
 * [0, 1], as 0xRRGGBB: for legends drawn elsewhere and for tests. */
uint32_t gl_plot_palette_color(int index);
uint32_t gl_plot_viridis(double t);

/* ------------------------------------------------------------------ PNG */

/* Encodes an image as an 8-bit RGB PNG (alpha is dropped: figures are
 * opaque) into a new malloc'ed buffer. */
gl_plot_status gl_plot_png_encode(const gl_plot_image *image, unsigned char **bytes,
                                  size_t *size, gl_plot_error *err);
/* Decodes any PNG libpng reads into 8-bit RGBA (*out is overwritten). */
gl_plot_status gl_plot_png_read(const char *path, gl_plot_image *out, gl_plot_error *err);

/* Writes `size` bytes through a temp file in the same folder, fsync and
 * rename.  Messages: "cannot write 'path': strerror". */
gl_plot_status gl_plot_file_write_atomic(const char *path, const void *bytes, size_t size,
                                         gl_plot_error *err);

#ifdef __cplusplus
}
#endif
#endif
