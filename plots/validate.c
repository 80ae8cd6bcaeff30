/* validate.c — checks a figure spec before anything is drawn, with
 * messages that name the panel, the series and the field at fault. */
#include <stdio.h>

#include "plot.h"

static const char *kind_name(gl_plot_kind kind)
{
    switch (kind) {
    case GL_PLOT_LINES: return "lines";
    case GL_PLOT_HEATMAP: return "heatmap";
    case GL_PLOT_HISTOGRAM: return "histogram";
    }
    return "?";
}

/* "series 2 'relu'" or "series 2". */
static void series_name(char *out, size_t size, int index, const char *name)
{
    if (name && *name)
        snprintf(out, size, "series %d '%s'", index + 1, name);
    else
        snprintf(out, size, "series %d", index + 1);
}

static gl_plot_status check_array(gl_plot_error *err, const char *where, const char *series,
                                  const char *field, const gl_plot_array *a)
{
    if (a->length <= 0)
        return gl_plot_error_set(err, GL_PLOT_EARG, "%s%s: %s is empty", where, series, field);
    if (!a->data)
        return gl_plot_error_set(err, GL_PLOT_EARG, "%s%s: %s has no data", where, series, field);
    return GL_PLOT_OK;
}

static gl_plot_status check_lines(const gl_plot_lines *p, const char *where, gl_plot_error *err)
{
    if (p->nseries <= 0 || !p->series)
        return gl_plot_error_set(err, GL_PLOT_EARG, "%sseries is empty", where);
    for (int i = 0; i < p->nseries; i++) {
        const gl_plot_series *s = &p->series[i];
        char name[160];
        series_name(name, sizeof name, i, s->name);
        gl_plot_status status = check_array(err, where, name, "y", &s->y);
        if (status) return status;
        if (s->x.data && s->x.length != s->y.length)
            return gl_plot_error_set(err, GL_PLOT_EARG, "%s%s: x has %lld values, y has %lld",
                                     where, name, (long long)s->x.length,
                                     (long long)s->y.length);
    }
    return GL_PLOT_OK;
}

static gl_plot_status check_heatmap(const gl_plot_heatmap *p, const char *where,
                                    gl_plot_error *err)
{
    const gl_plot_matrix *m = &p->values;
    if (m->rows <= 0 || m->cols <= 0 || !m->data)
        return gl_plot_error_set(err, GL_PLOT_EARG, "%svalues is empty", where);
    if (p->nrow_labels != 0 && p->nrow_labels != m->rows)
        return gl_plot_error_set(err, GL_PLOT_EARG, "%srows has %d label%s, values has %lld row%s",
                                 where, p->nrow_labels, p->nrow_labels == 1 ? "" : "s",
                                 (long long)m->rows, m->rows == 1 ? "" : "s");
    return GL_PLOT_OK;
}

static gl_plot_status check_histogram(const gl_plot_histogram *p, const char *where,
                                      gl_plot_error *err)
{
    if (p->nseries <= 0 || !p->series)
        return gl_plot_error_set(err, GL_PLOT_EARG, "%sseries is empty", where);
    if (p->bins < 0 || p->bins > GL_PLOT_MAX_BINS)
        return gl_plot_error_set(err, GL_PLOT_EARG, "%sbins must be between 1 and %d, got %d",
                                 where, GL_PLOT_MAX_BINS, p->bins);
    for (int i = 0; i < p->nseries; i++) {
        char name[160];
        series_name(name, sizeof name, i, p->series[i].name);
        gl_plot_status status = check_array(err, where, name, "values", &p->series[i].values);
        if (status) return status;
    }
    return GL_PLOT_OK;
}

gl_plot_status gl_plot_validate(const gl_plot_figure *f, gl_plot_error *err)
{
    if (f->width != 0 && (f->width < GL_PLOT_MIN_SIZE || f->width > GL_PLOT_MAX_SIZE))
        return gl_plot_error_set(err, GL_PLOT_EARG, "width must be between %d and %d, got %d",
                                 GL_PLOT_MIN_SIZE, GL_PLOT_MAX_SIZE, f->width);
    if (f->height != 0 && (f->height < GL_PLOT_MIN_SIZE || f->height > GL_PLOT_MAX_SIZE))
        return gl_plot_error_set(err, GL_PLOT_EARG, "height must be between %d and %d, got %d",
                                 GL_PLOT_MIN_SIZE, GL_PLOT_MAX_SIZE, f->height);
    if (f->npanels <= 0 || !f->panels)
        return gl_plot_error_set(err, GL_PLOT_EARG, "panels is empty");
    if (f->cols < 0 || f->cols > 100)
        return gl_plot_error_set(err, GL_PLOT_EARG, "cols must be between 1 and 100, got %d",
                                 f->cols);
    for (int i = 0; i < f->npanels; i++) {
        const gl_plot_panel *p = &f->panels[i];
        char where[64] = "";
        if (f->is_grid) snprintf(where, sizeof where, "panel %d (%s): ", i + 1, kind_name(p->kind));
        gl_plot_status status;
        switch (p->kind) {
        case GL_PLOT_LINES: status = check_lines(&p->lines, where, err); break;
        case GL_PLOT_HEATMAP: status = check_heatmap(&p->heatmap, where, err); break;
        case GL_PLOT_HISTOGRAM: status = check_histogram(&p->histogram, where, err); break;
        default:
            status = gl_plot_error_set(err, GL_PLOT_EARG, "panel %d: unknown kind %d", i + 1,
                                       (int)p->kind);
        }
        if (status) return status;
    }
    return GL_PLOT_OK;
}
