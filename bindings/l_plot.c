/*
 * l_plot.c — gl.plot: lines / heatmap / histogram / grid figures saved as
 * PNG, and read_png to look at them again.
 *
 * The spec tables are turned into plots/'s plain C spec.  Every buffer the
 * C spec points to (numbers copied out of Lua tables, panel and series
 * arrays) is a userdata anchored in one "keep" table on the stack, and
 * tensors and strings are anchored there too, so a Lua error raised halfway
 * through parsing leaks nothing.  Rendering and writing run after parsing,
 * in C only, and report a status that becomes the Lua error.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bindings.h"
#include "plot.h"

typedef struct l_parse {
    lua_State *L;
    const char *fn;          /* "lines", "grid", ... for messages */
    int keep;                /* stack index of the anchor table */
    int nkeep;
    char where[64];          /* "panel 2 (lines): " inside a grid */
} l_parse;

static int l_parse_error(l_parse *P, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* Raises "<fn>: <where><message>". */
static int l_parse_error(l_parse *P, const char *format, ...)
{
    char message[400];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    return luaL_error(P->L, "%s: %s%s", P->fn, P->where, message);
}

/* Anchors the value at the stack top in the keep table and pops it. */
static void keep_pop(l_parse *P)
{
    lua_rawseti(P->L, P->keep, ++P->nkeep);
}

/* A zeroed buffer of `size` bytes that lives as long as the call. */
static void *keep_alloc(l_parse *P, size_t size)
{
    void *p = lua_newuserdatauv(P->L, size ? size : 1, 0);
    memset(p, 0, size ? size : 1);
    keep_pop(P);
    return p;
}

/* ------------------------------------------------------------- fields */

/* Rejects keys the kind does not know, so a typo ("titel", "logY") is an
 * error rather than a silently ignored option. */
static void check_fields(l_parse *P, int table, const char *const *allowed, const char *what)
{
    lua_State *L = P->L;
    lua_pushnil(L);
    while (lua_next(L, table)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            const char *key = luaL_tolstring(L, -1, NULL);
            l_parse_error(P, "%sunexpected entry [%s]: fields are named (path=, title=, ...)", what,
                          key);
        }
        const char *key = lua_tostring(L, -1);
        bool known = false;
        for (const char *const *a = allowed; *a && !known; a++) known = strcmp(*a, key) == 0;
        if (!known) l_parse_error(P, "%sunknown field '%s'", what, key);
    }
}

/* Optional string field (numbers are accepted and converted); NULL if nil. */
static const char *opt_string(l_parse *P, int table, const char *field, const char *what)
{
    lua_State *L = P->L;
    int type = lua_getfield(L, table, field);
    if (type == LUA_TNIL) {
        lua_pop(L, 1);
        return NULL;
    }
    if (type != LUA_TSTRING && type != LUA_TNUMBER)
        l_parse_error(P, "%s%s must be a string, got %s", what, field, luaL_typename(L, -1));
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if (strlen(s) != len) l_parse_error(P, "%s%s contains a NUL byte", what, field);
    keep_pop(P);
    return s;
}

static bool opt_bool(l_parse *P, int table, const char *field, bool fallback)
{
    lua_State *L = P->L;
    int type = lua_getfield(L, table, field);
    bool value = fallback;
    if (type == LUA_TBOOLEAN)
        value = lua_toboolean(L, -1);
    else if (type != LUA_TNIL)
        l_parse_error(P, "%s must be true or false, got %s", field, luaL_typename(L, -1));
    lua_pop(L, 1);
    return value;
}

static int opt_int(l_parse *P, int table, const char *field, int fallback, int lo, int hi)
{
    lua_State *L = P->L;
    int type = lua_getfield(L, table, field);
    if (type == LUA_TNIL) {
        lua_pop(L, 1);
        return fallback;
    }
    int isint;
    lua_Integer v = lua_tointegerx(L, -1, &isint);
    if (type != LUA_TNUMBER || !isint)
        l_parse_error(P, "%s must be an integer between %d and %d, got %s", field, lo, hi,
                      luaL_tolstring(L, -1, NULL));
    if (v < lo || v > hi)
        l_parse_error(P, "%s must be between %d and %d, got %lld", field, lo, hi, (long long)v);
    lua_pop(L, 1);
    return (int)v;
}

/* --------------------------------------------------------------- data */

/* Reads the value at the stack top as numbers: a 1-d tensor (borrowed,
 * anchored) or a table of numbers (copied).  Pops it. */
static void read_array_top(l_parse *P, const char *what, const char *field, gl_plot_array *out)
{
    lua_State *L = P->L;
    gl_tensor **slot = luaL_testudata(L, -1, L_TENSOR_METATABLE);
    if (slot) {
        gl_tensor *t = *slot;
        if (!t) l_parse_error(P, "%s%s is a closed tensor", what, field);
        if (t->ndim != 1) {
            char shape[96];
            gl_shape_format(t->ndim, t->shape, shape, sizeof shape);
            l_parse_error(P, "%s%s must be a 1-d tensor, got shape %s", what, field, shape);
        }
        *out = (gl_plot_array){gl_tensor_data(t), GL_PLOT_F32, t->shape[0], t->stride[0]};
        keep_pop(P);
        return;
    }
    if (!lua_istable(L, -1))
        l_parse_error(P, "%s%s must be a table of numbers or a 1-d tensor, got %s", what, field,
                      luaL_typename(L, -1));
    int64_t n = (int64_t)lua_rawlen(L, -1);
    double *data = keep_alloc(P, (size_t)n * sizeof *data);
    for (int64_t i = 0; i < n; i++) {
        if (lua_rawgeti(L, -1, (lua_Integer)i + 1) != LUA_TNUMBER)
            l_parse_error(P, "%s%s[%lld] is a %s, expected a number", what, field,
                          (long long)i + 1, luaL_typename(L, -1));
        data[i] = (double)lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    *out = gl_plot_f64(data, n);
    lua_pop(L, 1);
}

/* Field `field` of the table at `table` as numbers; returns false when
 * absent (and not required). */
static bool read_array(l_parse *P, int table, const char *field, const char *what, bool required,
                       gl_plot_array *out)
{
    if (lua_getfield(P->L, table, field) == LUA_TNIL) {
        lua_pop(P->L, 1);
        if (required) l_parse_error(P, "%smissing field '%s'", what, field);
        memset(out, 0, sizeof *out);
        return false;
    }
    read_array_top(P, what, field, out);
    return true;
}

/* Heatmap values: a 2-d tensor (borrowed) or a table of rows, each a table
 * of numbers or a 1-d tensor (copied into one matrix). */
static void read_matrix(l_parse *P, int table, gl_plot_matrix *out)
{
    lua_State *L = P->L;
    if (lua_getfield(L, table, "values") == LUA_TNIL) l_parse_error(P, "missing field 'values'");
    gl_tensor **slot = luaL_testudata(L, -1, L_TENSOR_METATABLE);
    if (slot) {
        gl_tensor *t = *slot;
        if (!t) l_parse_error(P, "values is a closed tensor");
        if (t->ndim != 2) {
            char shape[96];
            gl_shape_format(t->ndim, t->shape, shape, sizeof shape);
            l_parse_error(P, "values must be a 2-d tensor (rows x steps), got shape %s", shape);
        }
        *out = (gl_plot_matrix){gl_tensor_data(t), GL_PLOT_F32, t->shape[0], t->shape[1],
                                t->stride[0], t->stride[1]};
        keep_pop(P);
        return;
    }
    if (!lua_istable(L, -1))
        l_parse_error(P, "values must be a table of rows or a 2-d tensor, got %s",
                      luaL_typename(L, -1));
    int values = lua_gettop(L);
    int64_t rows = (int64_t)lua_rawlen(L, values), cols = 0;
    gl_plot_array *row_arrays = keep_alloc(P, (size_t)rows * sizeof *row_arrays);
    for (int64_t r = 0; r < rows; r++) {
        char field[32];
        snprintf(field, sizeof field, "values[%lld]", (long long)r + 1);
        int type = lua_rawgeti(L, values, (lua_Integer)r + 1);
        if (type == LUA_TNUMBER)
            l_parse_error(P, "values must be a table of rows (tables of numbers), got a number "
                             "at values[%lld]", (long long)r + 1);
        read_array_top(P, "", field, &row_arrays[r]);
        if (r == 0) cols = row_arrays[0].length;
        if (row_arrays[r].length != cols)
            l_parse_error(P, "values row %lld has %lld values, row 1 has %lld", (long long)r + 1,
                          (long long)row_arrays[r].length, (long long)cols);
    }
    double *data = keep_alloc(P, (size_t)(rows * cols) * sizeof *data);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            data[r * cols + c] = gl_plot_array_get(&row_arrays[r], c);
    *out = (gl_plot_matrix){data, GL_PLOT_F64, rows, cols, cols, 1};
    lua_pop(L, 1);
}

/* ------------------------------------------------------------ styling */

static uint32_t read_color(l_parse *P, int table, const char *what)
{
    const char *s = opt_string(P, table, "color", what);
    if (!s) return GL_PLOT_COLOR_AUTO;
    unsigned r, g, b;
    char tail;
    size_t len = strlen(s);
    if (len == 7 && sscanf(s, "#%2x%2x%2x%c", &r, &g, &b, &tail) == 3)
        return GL_PLOT_RGB(r << 16 | g << 8 | b);
    if (len == 4 && sscanf(s, "#%1x%1x%1x%c", &r, &g, &b, &tail) == 3)
        return GL_PLOT_RGB((r * 17) << 16 | (g * 17) << 8 | (b * 17));
    l_parse_error(P, "%scolor must be '#rrggbb', got '%s'", what, s);
    return 0;
}

static gl_plot_style read_style(l_parse *P, int table, const char *what)
{
    static const struct { const char *name; gl_plot_style style; } names[] = {
        {"solid", GL_PLOT_SOLID},   {"-", GL_PLOT_SOLID},    {"dashed", GL_PLOT_DASHED},
        {"--", GL_PLOT_DASHED},     {"dotted", GL_PLOT_DOTTED}, {":", GL_PLOT_DOTTED},
        {"dashdot", GL_PLOT_DASHDOT}, {"-.", GL_PLOT_DASHDOT}, {"none", GL_PLOT_NO_LINE}};
    const char *s = opt_string(P, table, "style", what);
    if (!s) return GL_PLOT_STYLE_AUTO;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcmp(names[i].name, s) == 0) return names[i].style;
    l_parse_error(P, "%sstyle must be 'solid', 'dashed', 'dotted', 'dashdot' or 'none', got '%s'", what, s);
    return GL_PLOT_STYLE_AUTO;
}

static gl_plot_marker read_marker(l_parse *P, int table, const char *what)
{
    static const struct { const char *name; gl_plot_marker marker; } names[] = {
        {"o", GL_PLOT_CIRCLE},   {"s", GL_PLOT_SQUARE}, {"^", GL_PLOT_TRIANGLE},
        {"D", GL_PLOT_DIAMOND},  {"x", GL_PLOT_CROSS},  {"+", GL_PLOT_PLUS}};
    lua_State *L = P->L;
    int type = lua_getfield(L, table, "marker");
    if (type == LUA_TNIL || type == LUA_TBOOLEAN) {
        gl_plot_marker m = lua_toboolean(L, -1) ? GL_PLOT_MARKER_AUTO : GL_PLOT_MARKER_NONE;
        lua_pop(L, 1);
        return m;
    }
    lua_pop(L, 1);
    const char *s = opt_string(P, table, "marker", what);
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcmp(names[i].name, s) == 0) return names[i].marker;
    l_parse_error(P, "%smarker must be true or one of 'o', 's', '^', 'D', 'x', '+', got '%s'",
                  what, s);
    return GL_PLOT_MARKER_NONE;
}

/* ------------------------------------------------------------- panels */

static const char *const lines_fields[] = {"path", "kind", "title", "xlabel", "ylabel", "logx",
                                           "logy", "width", "height", "series", "markers",
                                           "legend", NULL};
static const char *const heatmap_fields[] = {"path", "kind", "title", "xlabel", "ylabel", "rows",
                                             "values", "log", "colorbar", "marks", "width", "height",
                                             NULL};
static const char *const histogram_fields[] = {"path", "kind", "title", "xlabel", "ylabel",
                                               "series", "bins", "logx", "logy", "multiples",
                                               "width", "height", NULL};
static const char *const line_series_fields[] = {"name", "x", "y", "color", "style", "marker",
                                                 NULL};
static const char *const hist_series_fields[] = {"name", "values", "color", NULL};

/* The `series` list of a panel: returns its length, each element checked
 * to be a table and left for the caller at index `first + i`. */
static int series_list(l_parse *P, int table)
{
    lua_State *L = P->L;
    int type = lua_getfield(L, table, "series");
    if (type == LUA_TNIL) l_parse_error(P, "missing field 'series' (a list of {name=, ...})");
    if (type != LUA_TTABLE) l_parse_error(P, "series must be a list of tables, got %s",
                                          luaL_typename(L, -1));
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    if (n > 100000) l_parse_error(P, "series has %lld entries; at most 100000", (long long)n);
    keep_pop(P);
    return (int)n;
}

/* Pushes series i (1-based) of the panel's series list. */
static void series_push(l_parse *P, int table, int i)
{
    lua_State *L = P->L;
    lua_getfield(L, table, "series");
    if (lua_rawgeti(L, -1, i) != LUA_TTABLE)
        l_parse_error(P, "series %d must be a table {name=, ...}, got %s", i, luaL_typename(L, -1));
    lua_remove(L, -2);
}

static void series_what(l_parse *P, int index, const char *name, char *out, size_t size)
{
    (void)P;
    if (name)
        snprintf(out, size, "series %d '%s': ", index, name);
    else
        snprintf(out, size, "series %d: ", index);
}

static void parse_lines(l_parse *P, int table, gl_plot_panel *panel)
{
    lua_State *L = P->L;
    gl_plot_lines *p = &panel->lines;
    int n = series_list(P, table);
    gl_plot_series *series = keep_alloc(P, (size_t)n * sizeof *series);
    for (int i = 0; i < n; i++) {
        series_push(P, table, i + 1);
        int s = lua_gettop(L);
        char what[160];
        series_what(P, i + 1, NULL, what, sizeof what);
        const char *name = opt_string(P, s, "name", what);
        series_what(P, i + 1, name, what, sizeof what);
        check_fields(P, s, line_series_fields, what);
        series[i].name = name;
        read_array(P, s, "y", what, true, &series[i].y);
        read_array(P, s, "x", what, false, &series[i].x);
        series[i].color = read_color(P, s, what);
        series[i].style = read_style(P, s, what);
        series[i].marker = read_marker(P, s, what);
        lua_pop(L, 1);
    }
    p->nseries = n;
    p->series = series;
    p->logx = opt_bool(P, table, "logx", false);
    p->logy = opt_bool(P, table, "logy", false);
    p->markers = opt_bool(P, table, "markers", false);
    lua_getfield(L, table, "legend");
    p->legend = lua_isnil(L, -1) ? 0 : lua_toboolean(L, -1) ? 1 : -1;
    if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
        l_parse_error(P, "legend must be true or false, got %s", luaL_typename(L, -1));
    lua_pop(L, 1);
}

static void parse_heatmap(l_parse *P, int table, gl_plot_panel *panel)
{
    lua_State *L = P->L;
    gl_plot_heatmap *h = &panel->heatmap;
    read_matrix(P, table, &h->values);
    int type = lua_getfield(L, table, "rows");
    if (type == LUA_TTABLE) {
        int rows = lua_gettop(L);
        lua_Integer n = (lua_Integer)lua_rawlen(L, rows);
        if (n > 1000000) l_parse_error(P, "rows has %lld labels; at most 1000000", (long long)n);
        const char **labels = keep_alloc(P, (size_t)n * sizeof *labels);
        for (lua_Integer i = 0; i < n; i++) {
            int t = lua_rawgeti(L, rows, i + 1);
            if (t != LUA_TSTRING && t != LUA_TNUMBER)
                l_parse_error(P, "rows[%lld] must be a string, got %s", (long long)i + 1,
                              luaL_typename(L, -1));
            labels[i] = lua_tostring(L, -1);
            keep_pop(P);
        }
        h->nrow_labels = (int)n;
        h->row_labels = labels;
    } else if (type != LUA_TNIL) {
        l_parse_error(P, "rows must be a list of names, got %s", luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    h->linear = !opt_bool(P, table, "log", true);
    h->no_colorbar = !opt_bool(P, table, "colorbar", true);
    /* marks = {column, ...}: 1-based columns to mark along the top edge. */
    type = lua_getfield(L, table, "marks");
    if (type == LUA_TTABLE) {
        int list = lua_gettop(L);
        lua_Integer n = (lua_Integer)lua_rawlen(L, list);
        if (n > 10000000) l_parse_error(P, "marks has %lld entries; at most 10000000", (long long)n);
        int64_t *marks = keep_alloc(P, (size_t)n * sizeof *marks);
        for (lua_Integer i = 0; i < n; i++) {
            lua_rawgeti(L, list, i + 1);
            int isnum;
            lua_Integer c = lua_tointegerx(L, -1, &isnum);
            if (!isnum) l_parse_error(P, "marks[%lld] must be a column number", (long long)i + 1);
            marks[i] = c - 1;
            lua_pop(L, 1);
        }
        h->nmarks = n;
        h->marks = marks;
    } else if (type != LUA_TNIL) {
        l_parse_error(P, "marks must be a list of column numbers, got %s", luaL_typename(L, -1));
    }
    lua_pop(L, 1);
}

static void parse_histogram(l_parse *P, int table, gl_plot_panel *panel)
{
    lua_State *L = P->L;
    gl_plot_histogram *p = &panel->histogram;
    int n = series_list(P, table);
    gl_plot_hist_series *series = keep_alloc(P, (size_t)n * sizeof *series);
    for (int i = 0; i < n; i++) {
        series_push(P, table, i + 1);
        int s = lua_gettop(L);
        char what[160];
        series_what(P, i + 1, NULL, what, sizeof what);
        const char *name = opt_string(P, s, "name", what);
        series_what(P, i + 1, name, what, sizeof what);
        check_fields(P, s, hist_series_fields, what);
        series[i].name = name;
        read_array(P, s, "values", what, true, &series[i].values);
        series[i].color = read_color(P, s, what);
        lua_pop(L, 1);
    }
    p->nseries = n;
    p->series = series;
    p->bins = opt_int(P, table, "bins", 50, 1, GL_PLOT_MAX_BINS);
    p->logx = opt_bool(P, table, "logx", false);
    p->logy = opt_bool(P, table, "logy", false);
    p->multiples = opt_bool(P, table, "multiples", false);
}

static void parse_panel(l_parse *P, int table, gl_plot_kind kind, gl_plot_panel *panel,
                        bool in_grid)
{
    const char *const *fields = kind == GL_PLOT_LINES ? lines_fields
                              : kind == GL_PLOT_HEATMAP ? heatmap_fields : histogram_fields;
    check_fields(P, table, fields, "");
    if (in_grid) {
        /* Files and sizes belong to the grid, not to its panels. */
        static const char *const figure_only[] = {"path", "width", "height"};
        for (int i = 0; i < 3; i++) {
            if (lua_getfield(P->L, table, figure_only[i]) != LUA_TNIL)
                l_parse_error(P, "'%s' belongs to the grid spec, not to a panel", figure_only[i]);
            lua_pop(P->L, 1);
        }
    }
    panel->kind = kind;
    panel->title = opt_string(P, table, "title", "");
    panel->xlabel = opt_string(P, table, "xlabel", "");
    panel->ylabel = opt_string(P, table, "ylabel", "");
    switch (kind) {
    case GL_PLOT_LINES: parse_lines(P, table, panel); break;
    case GL_PLOT_HEATMAP: parse_heatmap(P, table, panel); break;
    case GL_PLOT_HISTOGRAM: parse_histogram(P, table, panel); break;
    }
}

/* ------------------------------------------------------------ figures */

static const char *read_path(l_parse *P, int table)
{
    lua_State *L = P->L;
    int type = lua_getfield(L, table, "path");
    if (type == LUA_TNIL) l_parse_error(P, "missing field 'path' (where to write the PNG)");
    if (type != LUA_TSTRING) l_parse_error(P, "path must be a string, got %s", luaL_typename(L, -1));
    size_t len;
    const char *path = lua_tolstring(L, -1, &len);
    if (len == 0) l_parse_error(P, "path is empty");
    if (strlen(path) != len) l_parse_error(P, "path contains a NUL byte");
    keep_pop(P);
    return path;
}

/* Sets up the parse: the spec table at 1, the keep table at 2. */
static l_parse parse_begin(lua_State *L, const char *fn)
{
    if (!lua_istable(L, 1))
        luaL_error(L, "%s: expected a spec table {path=, ...}, got %s", fn, luaL_typename(L, 1));
    lua_settop(L, 1);
    lua_newtable(L);
    l_parse P = {L, fn, 2, 0, ""};
    return P;
}

static int save(l_parse *P, const char *path, const gl_plot_figure *figure)
{
    gl_plot_error err;
    if (gl_plot_save(path, figure, &err)) return luaL_error(P->L, "%s: %s", P->fn, err.message);
    return 0;
}

static int l_plot_single(lua_State *L, const char *fn, gl_plot_kind kind)
{
    l_parse P = parse_begin(L, fn);
    check_fields(&P, 1, kind == GL_PLOT_LINES ? lines_fields
                        : kind == GL_PLOT_HEATMAP ? heatmap_fields : histogram_fields, "");
    const char *path = read_path(&P, 1);
    /* A panel spec may be passed as is; its kind must then be this one. */
    const char *kind_name = opt_string(&P, 1, "kind", "");
    if (kind_name && strcmp(kind_name, fn) != 0)
        l_parse_error(&P, "kind is '%s'; draw it with gl.plot.%s or in gl.plot.grid", kind_name,
                      kind_name);
    gl_plot_panel *panel = keep_alloc(&P, sizeof *panel);
    parse_panel(&P, 1, kind, panel, false);
    gl_plot_figure figure = {0};
    figure.width = opt_int(&P, 1, "width", 1200, GL_PLOT_MIN_SIZE, GL_PLOT_MAX_SIZE);
    figure.height = opt_int(&P, 1, "height", 700, GL_PLOT_MIN_SIZE, GL_PLOT_MAX_SIZE);
    figure.npanels = 1;
    figure.panels = panel;
    return save(&P, path, &figure);
}

/* gl.plot.lines{path=, title=, xlabel=, ylabel=, logx=, logy=, width=, height=,
 *               markers=, legend=, series = {{name=, x=, y=, color=, style=, marker=}, ...}} */
static int l_plot_lines(lua_State *L) { return l_plot_single(L, "lines", GL_PLOT_LINES); }

/* gl.plot.heatmap{path=, title=, xlabel=, ylabel=, rows = {...}, values =, log = true,
 *                 colorbar = true, width=, height=} */
static int l_plot_heatmap(lua_State *L) { return l_plot_single(L, "heatmap", GL_PLOT_HEATMAP); }

/* gl.plot.histogram{path=, title=, xlabel=, ylabel=, bins = 50, logy=, logx=, multiples=,
 *                   series = {{name=, values=, color=}, ...}, width=, height=} */
static int l_plot_histogram(lua_State *L)
{
    return l_plot_single(L, "histogram", GL_PLOT_HISTOGRAM);
}

/* gl.plot.grid{path=, title=, cols = 2, width=, height=, panels = {{kind = "lines", ...}, ...}} */
static int l_plot_grid(lua_State *L)
{
    static const char *const grid_fields[] = {"path", "title", "cols", "panels", "width",
                                              "height", NULL};
    l_parse P = parse_begin(L, "grid");
    check_fields(&P, 1, grid_fields, "");
    const char *path = read_path(&P, 1);
    int type = lua_getfield(L, 1, "panels");
    if (type == LUA_TNIL) l_parse_error(&P, "missing field 'panels' (a list of {kind=, ...})");
    if (type != LUA_TTABLE) l_parse_error(&P, "panels must be a list of tables, got %s",
                                          luaL_typename(L, -1));
    int panels_index = lua_gettop(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, panels_index);
    if (n == 0) l_parse_error(&P, "panels is empty");
    if (n > 1000) l_parse_error(&P, "panels has %lld entries; at most 1000", (long long)n);
    gl_plot_panel *panels = keep_alloc(&P, (size_t)n * sizeof *panels);
    for (lua_Integer i = 0; i < n; i++) {
        if (lua_rawgeti(L, panels_index, i + 1) != LUA_TTABLE)
            l_parse_error(&P, "panel %lld must be a table {kind=, ...}, got %s", (long long)i + 1,
                          luaL_typename(L, -1));
        int table = lua_gettop(L);
        lua_getfield(L, table, "kind");
        const char *kind_name = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        if (!kind_name)
            l_parse_error(&P, "panel %lld: kind must be 'lines', 'heatmap' or 'histogram', got %s",
                          (long long)i + 1, luaL_typename(L, -1));
        gl_plot_kind kind;
        if (strcmp(kind_name, "lines") == 0)
            kind = GL_PLOT_LINES;
        else if (strcmp(kind_name, "heatmap") == 0)
            kind = GL_PLOT_HEATMAP;
        else if (strcmp(kind_name, "histogram") == 0)
            kind = GL_PLOT_HISTOGRAM;
        else
            return l_parse_error(&P, "panel %lld: unknown kind '%s' (lines, heatmap or histogram)",
                                 (long long)i + 1, kind_name);
        lua_pop(L, 1);
        snprintf(P.where, sizeof P.where, "panel %lld (%s): ", (long long)i + 1, kind_name);
        parse_panel(&P, table, kind, &panels[i], true);
        P.where[0] = '\0';
        lua_pop(L, 1);
    }
    gl_plot_figure figure = {0};
    figure.title = opt_string(&P, 1, "title", "");
    figure.cols = opt_int(&P, 1, "cols", n < 2 ? 1 : 2, 1, 100);
    figure.width = opt_int(&P, 1, "width", 0, GL_PLOT_MIN_SIZE, GL_PLOT_MAX_SIZE);
    figure.height = opt_int(&P, 1, "height", 0, GL_PLOT_MIN_SIZE, GL_PLOT_MAX_SIZE);
    figure.npanels = (int)n;
    figure.panels = panels;
    figure.is_grid = true;
    return save(&P, path, &figure);
}

/* gl.plot.read_png(path) -> tensor {height, width, 4} of 0..255 (RGBA). */
static int l_plot_read_png(lua_State *L)
{
    size_t len;
    const char *path = luaL_checklstring(L, 1, &len);
    if (strlen(path) != len) luaL_argerror(L, 1, "path contains a NUL byte");
    gl_tensor **slot = l_tensor_push_slot(L);
    gl_plot_image image;
    gl_plot_error perr;
    if (gl_plot_png_read(path, &image, &perr)) return luaL_error(L, "read_png: %s", perr.message);
    /* No Lua call until the image is freed. */
    int64_t shape[3] = {image.height, image.width, 4};
    gl_error err;
    if (gl_tensor_empty(3, shape, slot, &err)) {
        gl_plot_image_free(&image);
        return l_error_raise(L, &err);
    }
    float *data = gl_tensor_data(*slot);
    size_t n = (size_t)image.width * (size_t)image.height * 4;
    for (size_t i = 0; i < n; i++) data[i] = (float)image.rgba[i];
    gl_plot_image_free(&image);
    return 1;
}

/* gl.plot.palette(i) -> "#rrggbb", the i-th series colour (1-based, cycling). */
static int l_plot_palette(lua_State *L)
{
    lua_Integer i = luaL_checkinteger(L, 1);
    if (i < 1) luaL_argerror(L, 1, "index must be >= 1");
    uint32_t c = gl_plot_palette_color((int)((i - 1) % 1000000));
    char hex[8];
    snprintf(hex, sizeof hex, "#%06x", (unsigned)(c & 0xffffff));
    lua_pushstring(L, hex);
    return 1;
}

/* gl.plot.viridis(t) -> r, g, b (0..255) of the heatmap colormap at t in [0, 1]. */
static int l_plot_viridis(lua_State *L)
{
    uint32_t c = gl_plot_viridis((double)luaL_checknumber(L, 1));
    lua_pushinteger(L, (c >> 16) & 0xff);
    lua_pushinteger(L, (c >> 8) & 0xff);
    lua_pushinteger(L, c & 0xff);
    return 3;
}

void l_plot_register(lua_State *L)
{
    static const luaL_Reg functions[] = {
        {"lines", l_plot_lines},       {"heatmap", l_plot_heatmap},
        {"histogram", l_plot_histogram}, {"grid", l_plot_grid},
        {"read_png", l_plot_read_png}, {"palette", l_plot_palette},
        {"viridis", l_plot_viridis},   {NULL, NULL}};
    luaL_newlib(L, functions);
    lua_setfield(L, -2, "plot");
}
