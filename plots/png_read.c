/* png_read.c — decodes a PNG to RGBA with libpng's simplified API (which
 * keeps libpng's longjmp inside libpng). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "plot.h"

/* Larger images are refused rather than risking a huge allocation. */
#define MAX_PIXELS ((size_t)1 << 28)

gl_plot_status gl_plot_png_read(const char *path, gl_plot_image *out, gl_plot_error *err)
{
    out->width = out->height = 0;
    out->rgba = NULL;
    FILE *file = fopen(path, "rb");
    if (!file)
        return gl_plot_error_set(err, GL_PLOT_EIO, "cannot read '%s': %s", path, strerror(errno));
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_stdio(&image, file)) {
        fclose(file);
        gl_plot_error_set(err, GL_PLOT_EFORMAT, "'%s' is not a readable PNG: %s", path,
                          image.message);
        png_image_free(&image);
        return GL_PLOT_EFORMAT;
    }
    if ((size_t)image.width * (size_t)image.height > MAX_PIXELS) {
        png_image_free(&image);
        fclose(file);
        return gl_plot_error_set(err, GL_PLOT_EFORMAT, "'%s' is too large (%ux%u)", path,
                                 image.width, image.height);
    }
    image.format = PNG_FORMAT_RGBA;
    uint8_t *pixels = malloc(PNG_IMAGE_SIZE(image));
    if (!pixels) {
        png_image_free(&image);
        fclose(file);
        return gl_plot_error_set(err, GL_PLOT_ENOMEM, "out of memory reading '%s'", path);
    }
    if (!png_image_finish_read(&image, NULL, pixels, 0, NULL)) {
        gl_plot_error_set(err, GL_PLOT_EFORMAT, "'%s' is not a readable PNG: %s", path,
                          image.message);
        png_image_free(&image);
        free(pixels);
        fclose(file);
        return GL_PLOT_EFORMAT;
    }
    fclose(file);
    out->width = (int)image.width;
    out->height = (int)image.height;
    out->rgba = pixels;
    return GL_PLOT_OK;
}
