/* png_write.c — encodes an image as PNG in memory with libpng.
 *
 * libpng reports errors by longjmp; the one setjmp of the plot library is
 * in gl_plot_png_encode below, and it never spans anything but libpng calls
 * (no Lua frame, no other allocation).  Everything that must survive the
 * jump lives in a heap block whose pointer is fixed before setjmp. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "plot.h"

typedef struct png_sink {
    unsigned char *data;
    size_t size, capacity;
    char message[256];           /* libpng's error text */
} png_sink;

static void on_error(png_structp png, png_const_charp message)
{
    png_sink *sink = png_get_error_ptr(png);
    snprintf(sink->message, sizeof sink->message, "%s", message);
    png_longjmp(png, 1);
}

/* Warnings would go to stderr by default; the library never prints. */
static void on_warning(png_structp png, png_const_charp message)
{
    (void)png;
    (void)message;
}

static void on_write(png_structp png, png_bytep data, size_t length)
{
    png_sink *sink = png_get_io_ptr(png);
    if (length > sink->capacity - sink->size) {
        size_t capacity = sink->capacity ? sink->capacity : 1 << 16;
        while (length > capacity - sink->size) {
            if (capacity > ((size_t)-1) / 2) png_error(png, "out of memory");
            capacity *= 2;
        }
        unsigned char *grown = realloc(sink->data, capacity);
        if (!grown) png_error(png, "out of memory");
        sink->data = grown;
        sink->capacity = capacity;
    }
    memcpy(sink->data + sink->size, data, length);
    sink->size += length;
}

static void on_flush(png_structp png) { (void)png; }

gl_plot_status gl_plot_png_encode(const gl_plot_image *image, unsigned char **bytes,
                                  size_t *size, gl_plot_error *err)
{
    *bytes = NULL;
    *size = 0;
    if (image->width <= 0 || image->height <= 0 || !image->rgba)
        return gl_plot_error_set(err, GL_PLOT_EARG, "cannot encode an empty image");
    png_sink *sink = calloc(1, sizeof *sink);
    png_bytep *rows = malloc((size_t)image->height * sizeof *rows);
    if (!sink || !rows) {
        free(sink);
        free(rows);
        return gl_plot_error_set(err, GL_PLOT_ENOMEM, "out of memory encoding the PNG");
    }
    for (int y = 0; y < image->height; y++)
        rows[y] = image->rgba + (size_t)y * (size_t)image->width * 4;

    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, sink, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        free(sink);
        free(rows);
        return gl_plot_error_set(err, GL_PLOT_ENOMEM, "out of memory encoding the PNG");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        gl_plot_status status = strstr(sink->message, "out of memory")
                                    ? GL_PLOT_ENOMEM : GL_PLOT_EIO;
        gl_plot_error_set(err, status, "PNG encoding failed: %s", sink->message);
        free(sink->data);
        free(sink);
        free(rows);
        return status;
    }
    png_set_write_fn(png, sink, on_write, on_flush);
    png_set_IHDR(png, info, (png_uint_32)image->width, (png_uint_32)image->height, 8,
                 PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    /* Figures are flat colour and anti-aliased edges, which compress best
     * unfiltered (smaller than with adaptive filtering, measured on line
     * plots, heatmaps and grids); zlib level 3 is within ~2 % of level 6
     * in size at half the time. */
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_NONE);
    png_set_compression_level(png, 3);
    /* 100 dots per inch, so viewers show the intended physical size. */
    png_set_pHYs(png, info, 3937, 3937, PNG_RESOLUTION_METER);
    png_text text = {0};
    text.compression = PNG_TEXT_COMPRESSION_NONE;
    text.key = (png_charp) "Software";
    text.text = (png_charp) "gradlab";
    png_set_text(png, info, &text, 1);
    png_write_info(png, info);
    png_set_filler(png, 0, PNG_FILLER_AFTER);   /* drop the alpha byte: figures are opaque */
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    *bytes = sink->data;
    *size = sink->size;
    free(sink);
    free(rows);
    return GL_PLOT_OK;
}
