/* error.c — the engine's error record and shape formatting. */
#include <stdarg.h>
#include <stdio.h>

#include "gradlab.h"

static const char *const status_names[GL_STATUS_COUNT] = {
    [GL_OK] = "ok",           [GL_EARG] = "bad argument", [GL_ESHAPE] = "shape mismatch",
    [GL_EINDEX] = "index out of range", [GL_ENOMEM] = "out of memory",
    [GL_EIO] = "i/o error",   [GL_EFORMAT] = "bad format", [GL_ESTATE] = "bad state",
};
_Static_assert(sizeof status_names / sizeof status_names[0] == GL_STATUS_COUNT,
               "one name per status");

const char *gl_status_name(gl_status code)
{
    return code >= 0 && code < GL_STATUS_COUNT ? status_names[code] : "unknown status";
}

gl_status gl_error_set(gl_error *err, gl_status code, int argument, const char *format, ...)
{
    if (err) {
        va_list args;
        va_start(args, format);
        vsnprintf(err->message, sizeof err->message, format, args);
        va_end(args);
        err->code = code;
        err->argument = argument;
    }
    return code;
}

const char *gl_shape_format(int ndim, const int64_t *shape, char *buffer, size_t size)
{
    size_t used = 0;
    if (size == 0) return buffer;
    buffer[0] = '\0';
    used += (size_t)snprintf(buffer + used, size - used, "{");
    for (int d = 0; d < ndim && used < size; d++)
        used += (size_t)snprintf(buffer + used, size - used, d ? ", %lld" : "%lld",
                                 (long long)shape[d]);
    if (used < size) snprintf(buffer + used, size - used, "}");
    return buffer;
}
