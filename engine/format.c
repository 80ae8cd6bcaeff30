/*
 * format.c — tensors as text, in the spirit of PyTorch's printer:
 *
 *   tensor({{ 1.0000, -2.5000},
 *           { 0.1250,  3.0000}}, shape={2, 2})
 *
 * One number format for the whole tensor (integers as "3.", fixed with 4
 * decimals, or scientific when magnitudes span too much), columns aligned,
 * rows wrapped at 80 characters, and past `threshold` elements only the first
 * and last 3 entries of each dimension, with "..." between.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum { EDGE_ITEMS = 3, LINE_WIDTH = 80 };

typedef struct text {
    char *data;
    size_t length, capacity;
    bool failed;
} text;

static void text_append(text *s, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void text_append(text *s, const char *format, ...)
{
    if (s->failed) return;
    for (;;) {
        va_list args;
        va_start(args, format);
        /* NULL + 0 is undefined in C (UBSan flags it): before the first
         * allocation, only measure. */
        int n = vsnprintf(s->data ? s->data + s->length : NULL, s->capacity - s->length, format,
                          args);
        va_end(args);
        if (n < 0) {
            s->failed = true;
            return;
        }
        if (s->length + (size_t)n < s->capacity) {
            s->length += (size_t)n;
            return;
        }
        size_t capacity = (s->capacity + (size_t)n + 1) * 2;
        char *grown = realloc(s->data, capacity);
        if (!grown) {
            s->failed = true;
            return;
        }
        s->data = grown;
        s->capacity = capacity;
    }
}

typedef enum { STYLE_INTEGER, STYLE_FIXED, STYLE_SCIENTIFIC } number_style;

typedef struct stats {
    bool all_integer, any_finite;
    double max_abs, min_abs;
} stats;

typedef struct printer {
    const gl_tensor *t;
    bool summarize;
    stats scan;
    number_style style;
    int width;
    text out;
} printer;

static int format_number(char *buffer, size_t size, float v, number_style style)
{
    if (isnan(v)) return snprintf(buffer, size, "nan");
    if (isinf(v)) return snprintf(buffer, size, v > 0 ? "inf" : "-inf");
    switch (style) {
    case STYLE_INTEGER: return snprintf(buffer, size, "%.0f.", (double)v);
    case STYLE_FIXED: return snprintf(buffer, size, "%.4f", (double)v);
    default: return snprintf(buffer, size, "%.4e", (double)v);
    }
}

/* Visits the displayed elements (all, or the edges when summarizing). */
typedef void (*visit_fn)(printer *p, float v);

static void visit(printer *p, int dim, int64_t offset, visit_fn fn)
{
    const gl_tensor *t = p->t;
    if (dim == t->ndim) {
        fn(p, t->storage->data[offset]);
        return;
    }
    int64_t n = t->shape[dim];
    for (int64_t i = 0; i < n; i++) {
        if (p->summarize && n > 2 * EDGE_ITEMS && i == EDGE_ITEMS) i = n - EDGE_ITEMS;
        visit(p, dim + 1, offset + i * t->stride[dim], fn);
    }
}

static void scan_value(printer *p, float v)
{
    stats *scan = &p->scan;
    if (!isfinite(v)) return;
    double a = fabs((double)v);
    if (v != truncf(v)) scan->all_integer = false;
    if (!scan->any_finite || a > scan->max_abs) scan->max_abs = a;
    if (a != 0 && (scan->min_abs == 0 || a < scan->min_abs)) scan->min_abs = a;
    scan->any_finite = true;
}

static void measure_value(printer *p, float v)
{
    char buffer[64];
    int n = format_number(buffer, sizeof buffer, v, p->style);
    if (n > p->width) p->width = n;
}

static void choose_style(printer *p)
{
    p->scan = (stats){.all_integer = true};
    visit(p, 0, p->t->offset, scan_value);
    const stats *scan = &p->scan;
    if (scan->all_integer && scan->max_abs < 1e8) p->style = STYLE_INTEGER;
    else if (scan->max_abs >= 1e8 || (scan->min_abs > 0 && (scan->min_abs < 1e-4 ||
                                                              scan->max_abs / scan->min_abs > 1e3)))
        p->style = STYLE_SCIENTIFIC;
    else p->style = STYLE_FIXED;
    p->width = 1;
    visit(p, 0, p->t->offset, measure_value);
}

static void print_dim(printer *p, int dim, int64_t offset, int indent)
{
    const gl_tensor *t = p->t;
    int64_t n = t->shape[dim];
    text_append(&p->out, "{");
    if (dim == t->ndim - 1) {
        int column = indent + 1;
        for (int64_t i = 0; i < n; i++) {
            char buffer[64];
            bool skip = p->summarize && n > 2 * EDGE_ITEMS && i == EDGE_ITEMS;
            if (skip) i = n - EDGE_ITEMS;
            format_number(buffer, sizeof buffer, t->storage->data[offset + i * t->stride[dim]],
                          p->style);
            int item = p->width + 2 + (skip ? 5 : 0);
            if (i > 0 && column + item > LINE_WIDTH) {
                text_append(&p->out, "\n%*s", indent + 1, "");
                column = indent + 1;
            }
            if (skip) text_append(&p->out, "..., ");
            text_append(&p->out, "%*s%s", p->width, buffer, i + 1 < n ? ", " : "");
            column += item;
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            bool skip = p->summarize && n > 2 * EDGE_ITEMS && i == EDGE_ITEMS;
            if (skip) {
                i = n - EDGE_ITEMS;
                text_append(&p->out, "...,\n%*s", indent + 1, "");
            }
            print_dim(p, dim + 1, offset + i * t->stride[dim], indent + 1);
            if (i + 1 < n) {
                /* Blank lines between blocks of 3-d and higher, as PyTorch does. */
                text_append(&p->out, ",\n");
                for (int k = dim; k < t->ndim - 2; k++) text_append(&p->out, "\n");
                text_append(&p->out, "%*s", indent + 1, "");
            }
        }
    }
    text_append(&p->out, "}");
}

char *gl_tensor_format(const gl_tensor *t, int64_t threshold)
{
    char shape[160];
    printer p = {.t = t, .summarize = gl_tensor_numel(t) > threshold};
    const char *prefix = "tensor(";
    int indent = (int)strlen(prefix);
    text_append(&p.out, "%s", prefix);
    if (gl_tensor_numel(t) == 0) {
        for (int d = 0; d < (t->ndim ? 1 : 0); d++) text_append(&p.out, "{}");
    } else {
        choose_style(&p);
        if (t->ndim == 0) {
            char buffer[64];
            format_number(buffer, sizeof buffer, gl_tensor_data(t)[0], p.style);
            text_append(&p.out, "%s", buffer);
        } else {
            print_dim(&p, 0, t->offset, indent);
        }
    }
    if (t->ndim > 0) text_append(&p.out, ", shape=%s", GL_SHAPE_STR(t, shape));
    text_append(&p.out, ")");
    if (p.out.failed) {
        free(p.out.data);
        return NULL;
    }
    return p.out.data;
}
