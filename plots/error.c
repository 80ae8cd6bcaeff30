/* error.c — the plot library's error record and image release. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "plot.h"

gl_plot_status gl_plot_error_set(gl_plot_error *err, gl_plot_status code, const char *format, ...)
{
    if (err) {
        va_list args;
        va_start(args, format);
        err->code = code;
        vsnprintf(err->message, sizeof err->message, format, args);
        va_end(args);
    }
    return code;
}

void gl_plot_image_free(gl_plot_image *image)
{
    if (!image) return;
    free(image->rgba);
    image->rgba = NULL;
    image->width = image->height = 0;
}
