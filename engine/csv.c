/* csv.c — a numeric CSV reader for gl.data.csv: one tensor row per line.
 *
 * Cells are separated by ',', ';' or tab; a line holding only blanks is
 * skipped; "\r\n" line ends and a UTF-8 byte-order mark are accepted.  A cell
 * is a number as strtod reads it in the "C" locale (decimal, exponent, hex,
 * "nan", "inf", "-inf"), with blanks around it allowed and nothing else: an
 * empty cell, a quoted cell or trailing text is an error naming the line and
 * the cell.  Every line must hold as many cells as the first.
 *
 * The parser is written for hostile bytes (spec/fuzz/fuzz_csv.c feeds it):
 * it never reads past `size`, needs no NUL terminator, and bounds every
 * allocation by the input size (each cell takes at least one byte). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradlab.h"

/* Longest cell text read as a number (longer ones are refused): far more
 * digits than a double can use, and a bound for the stack copy. */
enum { CSV_CELL_MAX = 128 };

typedef struct csv_reader {
    const char *path;   /* named in messages; NULL for an anonymous buffer */
    gl_error *err;
} csv_reader;

static gl_status fail(const csv_reader *r, gl_status code, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static gl_status fail(const csv_reader *r, gl_status code, const char *format, ...)
{
    char detail[sizeof r->err->message];
    va_list args;
    va_start(args, format);
    vsnprintf(detail, sizeof detail, format, args);
    va_end(args);
    if (r->path) return gl_error_set(r->err, code, 1, "csv: '%s' %s", r->path, detail);
    return gl_error_set(r->err, code, 1, "csv: %s", detail);
}

static bool is_blank(unsigned char c) { return c == ' ' || c == '\r' || c == '\v' || c == '\f'; }

static bool is_separator(unsigned char c) { return c == ',' || c == ';' || c == '\t'; }

/* The cell for a message: at most 40 bytes, unprintable bytes as '?'. */
static void cell_text(const unsigned char *p, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 < cap; i++) {
        if (i == 40) {
            memcpy(out + k, "...", 3);
            k += 3;
            break;
        }
        out[k++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
    }
    out[k] = '\0';
}

/* Reads one trimmed cell as a double; false when it is not a number. */
static bool parse_number(const unsigned char *p, size_t n, double *value)
{
    char text[CSV_CELL_MAX + 1];
    if (n == 0 || n > CSV_CELL_MAX) return false;
    memcpy(text, p, n);
    text[n] = '\0';
    /* strtod would skip leading white space and accept "0x" prefixes on its
     * own; blanks were trimmed already, so a leading space here means a NUL
     * or other byte strtod treats as space: refuse it. */
    if (text[0] == ' ' || (unsigned char)text[0] < 0x20) return false;
    char *end;
    *value = strtod(text, &end);
    return end == text + n;
}

/* A growing array of floats. */
typedef struct csv_values {
    float *data;
    size_t count, capacity;
} csv_values;

static bool push_value(csv_values *v, float x)
{
    if (v->count == v->capacity) {
        size_t capacity = v->capacity ? v->capacity * 2 : 256;
        float *grown = realloc(v->data, capacity * sizeof *grown);
        if (!grown) return false;
        v->data = grown;
        v->capacity = capacity;
    }
    v->data[v->count++] = x;
    return true;
}

static gl_status csv_read(const csv_reader *r, const unsigned char *bytes, size_t size,
                          bool header, gl_tensor **out)
{
    *out = NULL;
    csv_values values = {NULL, 0, 0};
    int64_t rows = 0, width = -1, line = 0;
    size_t pos = 0;
    gl_status status = GL_OK;
    if (size >= 3 && memcmp(bytes, "\xef\xbb\xbf", 3) == 0) pos = 3;

    while (pos < size) {
        size_t line_start = pos, line_end = pos;
        while (line_end < size && bytes[line_end] != '\n') line_end++;
        pos = line_end < size ? line_end + 1 : line_end;
        line++;
        if (header && line == 1) continue;
        bool blank = true;
        for (size_t i = line_start; i < line_end && blank; i++)
            blank = is_blank(bytes[i]) || bytes[i] == '\t';
        if (blank) continue;

        int64_t cells = 0;
        size_t cell_start = line_start;
        for (;;) {
            size_t cell_end = cell_start;
            while (cell_end < line_end && !is_separator(bytes[cell_end])) cell_end++;
            size_t a = cell_start, b = cell_end;
            while (a < b && is_blank(bytes[a])) a++;
            while (b > a && is_blank(bytes[b - 1])) b--;
            double v;
            if (!parse_number(bytes + a, b - a, &v)) {
                char shown[64];
                cell_text(bytes + a, b - a, shown, sizeof shown);
                status = fail(r, GL_EFORMAT, "line %lld: '%s' is not a number", (long long)line,
                              shown);
                goto done;
            }
            if (!push_value(&values, (float)v)) {
                status = fail(r, GL_ENOMEM, "line %lld: out of memory", (long long)line);
                goto done;
            }
            cells++;
            if (cell_end >= line_end) break;
            cell_start = cell_end + 1;
        }
        if (width >= 0 && cells != width) {
            status = fail(r, GL_EFORMAT, "line %lld has %lld values, earlier lines %lld",
                          (long long)line, (long long)cells, (long long)width);
            goto done;
        }
        width = cells;
        rows++;
    }

    int64_t shape[2] = {rows, width < 0 ? 0 : width};
    gl_error inner;
    if (gl_tensor_empty(2, shape, out, &inner)) {
        status = fail(r, inner.code, "%s", inner.message);
        goto done;
    }
    if (values.count) memcpy(gl_tensor_data(*out), values.data, values.count * sizeof(float));

done:
    free(values.data);
    return status;
}

gl_status gl_csv_parse(const unsigned char *bytes, size_t size, bool header, gl_tensor **out,
                       gl_error *err)
{
    gl_error local;
    csv_reader r = {NULL, err ? err : &local};
    if (!bytes && size > 0) {
        *out = NULL;
        return gl_error_set(r.err, GL_EARG, 1, "csv: NULL buffer");
    }
    return csv_read(&r, bytes ? bytes : (const unsigned char *)"", size, header, out);
}

gl_status gl_csv_load(const char *path, bool header, gl_tensor **out, gl_error *err)
{
    gl_error local;
    if (!err) err = &local;
    *out = NULL;
    if (!path) return gl_error_set(err, GL_EARG, 1, "csv: path is NULL");
    unsigned char *bytes;
    size_t size;
    gl_status status = gl_file_read_all(path, &bytes, &size, err);
    if (status) {
        char message[sizeof err->message];
        memcpy(message, err->message, sizeof message);
        return gl_error_set(err, status, 1, "csv: %s", message);
    }
    csv_reader r = {path, err};
    status = csv_read(&r, bytes, size, header, out);
    free(bytes);
    return status;
}
