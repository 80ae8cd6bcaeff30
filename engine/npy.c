/* npy.c — NumPy's .npy format: a float32 writer and a tolerant, fuzz-safe reader.
 *
 * Layout (numpy/lib/format.py): the magic "\x93NUMPY", a major and a minor
 * version byte, a little-endian header length (2 bytes in version 1.0, 4 in
 * 2.0 and 3.0), then a Python dict literal such as
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * padded with spaces and a final '\n' so the data starts on a 64-byte
 * boundary, then the raw elements.
 *
 * The reader treats every byte as hostile: it checks each length against the
 * buffer before reading, bounds the element count before allocating, and
 * never trusts the header's shape to match the data that follows. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradlab.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_ALIGN 64

static bool host_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

/* Prepends "op: " to a message written by a helper that does not know which
 * user-facing function it serves. */
static gl_status prefix_op(gl_error *err, const char *op, gl_status code)
{
    char message[sizeof err->message];
    memcpy(message, err->message, sizeof message);
    return gl_error_set(err, code, err->argument, "%s: %s", op, message);
}

/* ---------------------------------------------------------------- writing */

/* The header dict exactly as numpy.save writes it; returns its length. */
static int header_dict(const gl_tensor *t, char *buffer, size_t size)
{
    char shape[GL_MAX_DIMS * 24 + 8];
    size_t used = 0;
    shape[used++] = '(';
    for (int d = 0; d < t->ndim; d++)
        used += (size_t)snprintf(shape + used, sizeof shape - used, d ? ", %lld" : "%lld",
                                 (long long)t->shape[d]);
    /* Python spells a 1-tuple "(n,)". */
    if (t->ndim == 1) shape[used++] = ',';
    shape[used++] = ')';
    shape[used] = '\0';
    return snprintf(buffer, size, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }",
                    shape);
}

/* Preamble + dict + padding + '\n', a multiple of NPY_ALIGN. */
static size_t header_total(int dict_len)
{
    size_t total = NPY_MAGIC_LEN + 4 + (size_t)dict_len + 1;
    return (total + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
}

size_t gl_npy_encoded_size(const gl_tensor *t)
{
    char dict[512];
    int dict_len = header_dict(t, dict, sizeof dict);
    return header_total(dict_len) + (size_t)gl_tensor_numel(t) * 4;
}

/* Copies the elements in row-major order as little-endian float32.  Written
 * byte-wise rather than through gl_tensor_gather_to because `dst` may sit at
 * any alignment inside a zip archive, and the host may be big-endian. */
static void write_elements(const gl_tensor *t, unsigned char *dst)
{
    int64_t n = gl_tensor_numel(t);
    if (n == 0) return;
    const float *base = gl_tensor_data(t);
    if (host_little_endian() && gl_tensor_is_contiguous(t)) {
        memcpy(dst, base, (size_t)n * 4);
        return;
    }
    int64_t index[GL_MAX_DIMS] = {0};
    int64_t pos = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, base + pos, 4);
        dst[0] = (unsigned char)bits;
        dst[1] = (unsigned char)(bits >> 8);
        dst[2] = (unsigned char)(bits >> 16);
        dst[3] = (unsigned char)(bits >> 24);
        dst += 4;
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++index[d] < t->shape[d]) {
                pos += t->stride[d];
                break;
            }
            pos -= t->stride[d] * (t->shape[d] - 1);
            index[d] = 0;
        }
    }
}

void gl_npy_encode(const gl_tensor *t, unsigned char *buffer)
{
    char dict[512];
    int dict_len = header_dict(t, dict, sizeof dict);
    size_t total = header_total(dict_len);
    size_t header_len = total - NPY_MAGIC_LEN - 4;
    memcpy(buffer, NPY_MAGIC, NPY_MAGIC_LEN);
    buffer[6] = 1; /* version 1.0: the dict is far below 64 KiB */
    buffer[7] = 0;
    buffer[8] = (unsigned char)(header_len & 0xff);
    buffer[9] = (unsigned char)(header_len >> 8);
    memcpy(buffer + 10, dict, (size_t)dict_len);
    memset(buffer + 10 + dict_len, ' ', total - 10 - (size_t)dict_len - 1);
    buffer[total - 1] = '\n';
    write_elements(t, buffer + total);
}

gl_status gl_npy_save(const char *path, const gl_tensor *t, gl_error *err)
{
    gl_error local;
    if (!err) err = &local;
    if (!path) return gl_error_set(err, GL_EARG, 1, "save: path is NULL");
    if (!t) return gl_error_set(err, GL_EARG, 2, "save: tensor is NULL");
    size_t size = gl_npy_encoded_size(t);
    unsigned char *bytes = malloc(size);
    if (!bytes)
        return gl_error_set(err, GL_ENOMEM, 2, "save: cannot allocate %zu bytes for '%s'", size,
                            path);
    gl_npy_encode(t, bytes);
    gl_status status = gl_file_write_atomic(path, bytes, size, err);
    free(bytes);
    return status ? prefix_op(err, "save", status) : GL_OK;
}

/* ---------------------------------------------------------------- reading */

typedef struct npy_reader {
    const char *path;   /* named in messages; NULL for an anonymous buffer */
    gl_error *err;
} npy_reader;

static gl_status fail(const npy_reader *r, gl_status code, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static gl_status fail(const npy_reader *r, gl_status code, const char *format, ...)
{
    char detail[sizeof r->err->message];
    va_list args;
    va_start(args, format);
    vsnprintf(detail, sizeof detail, format, args);
    va_end(args);
    if (r->path) return gl_error_set(r->err, code, 1, "load: '%s': %s", r->path, detail);
    return gl_error_set(r->err, code, 1, "load: %s", detail);
}

/* A cursor over the header text, which is never NUL-terminated. */
typedef struct cursor {
    const unsigned char *p, *end;
} cursor;

static void skip_space(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static bool accept(cursor *c, char ch)
{
    skip_space(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

static bool accept_word(cursor *c, const char *word)
{
    size_t n = strlen(word);
    skip_space(c);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0) return false;
    c->p += n;
    return true;
}

/* A quoted Python string without escapes, at most cap-1 bytes long. */
static bool parse_string(cursor *c, char *out, size_t cap)
{
    skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return false;
    unsigned char quote = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != quote) {
        if (*c->p == '\\' || *c->p == '\0' || n + 1 >= cap) return false;
        out[n++] = (char)*c->p++;
    }
    if (c->p >= c->end) return false;
    c->p++;
    out[n] = '\0';
    return true;
}

typedef enum shape_result {
    SHAPE_OK, SHAPE_SYNTAX, SHAPE_TOO_MANY_DIMS, SHAPE_TOO_BIG
} shape_result;

/* A tuple of non-negative integers: "()", "(3,)", "(2, 3)"; Python 2's "3L" too. */
static shape_result parse_shape(cursor *c, int *ndim, int64_t *shape)
{
    *ndim = 0;
    if (!accept(c, '(')) return SHAPE_SYNTAX;
    for (;;) {
        if (accept(c, ')')) return SHAPE_OK;
        skip_space(c);
        if (c->p >= c->end || *c->p < '0' || *c->p > '9') return SHAPE_SYNTAX;
        int64_t value = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            int digit = *c->p++ - '0';
            if (value > (INT64_MAX - digit) / 10) return SHAPE_TOO_BIG;
            value = value * 10 + digit;
        }
        if (c->p < c->end && *c->p == 'L') c->p++;
        if (*ndim == GL_MAX_DIMS) return SHAPE_TOO_MANY_DIMS;
        shape[(*ndim)++] = value;
        if (!accept(c, ',')) return accept(c, ')') ? SHAPE_OK : SHAPE_SYNTAX;
    }
}

/* How the elements are stored. */
typedef struct npy_dtype {
    char kind;     /* 'f', 'i', 'u' or 'b' */
    int size;      /* bytes per element */
    bool big;      /* big-endian bytes */
} npy_dtype;

/* Accepts a byte order ('<', '>', '|' for single bytes, '=' native), a kind
 * and a size among the types float32 can represent or round to. */
static bool parse_descr(const char *descr, npy_dtype *dt)
{
    char order = descr[0];
    if (order != '<' && order != '>' && order != '|' && order != '=') return false;
    if (descr[1] == '\0' || descr[2] < '1' || descr[2] > '8' || descr[3] != '\0') return false;
    dt->kind = descr[1];
    dt->size = descr[2] - '0';
    dt->big = order == '>' || (order == '=' && !host_little_endian());
    if (order == '|' && dt->size != 1) return false;
    switch (dt->kind) {
    case 'f': return dt->size == 2 || dt->size == 4 || dt->size == 8;
    case 'i':
    case 'u': return dt->size == 1 || dt->size == 2 || dt->size == 4 || dt->size == 8;
    case 'b': return dt->size == 1;
    default: return false;
    }
}

static float half_to_float(uint16_t h)
{
    int exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
    float value;
    if (exponent == 0) value = ldexpf((float)mantissa, -24);
    else if (exponent == 31) value = mantissa ? NAN : INFINITY;
    else value = ldexpf((float)(mantissa + 1024), exponent - 25);
    return (h & 0x8000) ? -value : value;
}

static float convert_one(const unsigned char *p, const npy_dtype *dt)
{
    uint64_t bits = 0;
    if (dt->big)
        for (int i = 0; i < dt->size; i++) bits = bits << 8 | p[i];
    else
        for (int i = dt->size - 1; i >= 0; i--) bits = bits << 8 | p[i];
    switch (dt->kind) {
    case 'f':
        if (dt->size == 2) return half_to_float((uint16_t)bits);
        if (dt->size == 4) {
            uint32_t b32 = (uint32_t)bits;
            float f;
            memcpy(&f, &b32, 4);
            return f;
        } else {
            double d;
            memcpy(&d, &bits, 8);
            return (float)d;
        }
    case 'i': {
        /* Sign-extend, then reinterpret: a cast of a large uint64 to int64
         * would be implementation-defined. */
        if (dt->size < 8 && (bits >> (8 * dt->size - 1)) & 1)
            bits |= ~(uint64_t)0 << (8 * dt->size);
        int64_t v;
        memcpy(&v, &bits, 8);
        return (float)v;
    }
    case 'u': return (float)bits;
    default: return bits != 0 ? 1.0f : 0.0f;   /* 'b' */
    }
}

/* Fills `dst` (C order) from the raw elements; Fortran-order data is read with
 * column-major strides so the tensor always comes out row-major. */
static void convert_all(const unsigned char *src, const npy_dtype *dt, bool fortran, int ndim,
                        const int64_t *shape, int64_t numel, float *dst)
{
    if (numel == 0) return;
    if (ndim <= 1) fortran = false;
    if (!fortran && dt->kind == 'f' && dt->size == 4 && dt->big != host_little_endian()) {
        memcpy(dst, src, (size_t)numel * 4);
        return;
    }
    size_t item = (size_t)dt->size;
    if (!fortran) {
        for (int64_t i = 0; i < numel; i++) dst[i] = convert_one(src + (size_t)i * item, dt);
        return;
    }
    int64_t stride[GL_MAX_DIMS], index[GL_MAX_DIMS] = {0};
    stride[0] = 1;
    for (int d = 1; d < ndim; d++) stride[d] = stride[d - 1] * shape[d - 1];
    int64_t pos = 0;
    for (int64_t i = 0; i < numel; i++) {
        dst[i] = convert_one(src + (size_t)pos * item, dt);
        for (int d = ndim - 1; d >= 0; d--) {
            if (++index[d] < shape[d]) {
                pos += stride[d];
                break;
            }
            pos -= stride[d] * (shape[d] - 1);
            index[d] = 0;
        }
    }
}

/* The header dict: the three keys numpy writes, in any order, nothing else. */
static gl_status parse_header(const npy_reader *r, cursor *c, npy_dtype *dt, bool *fortran,
                              int *ndim, int64_t *shape)
{
    bool have_descr = false, have_order = false, have_shape = false;
    if (!accept(c, '{')) return fail(r, GL_EFORMAT, "bad .npy header (no dict)");
    while (!accept(c, '}')) {
        char key[32];
        if (!parse_string(c, key, sizeof key) || !accept(c, ':'))
            return fail(r, GL_EFORMAT, "bad .npy header (expected a quoted key and ':')");
        if (strcmp(key, "descr") == 0) {
            char descr[32];
            skip_space(c);
            if (c->p < c->end && *c->p == '[')
                return fail(r, GL_EFORMAT, "unsupported dtype (a structured array)");
            if (!parse_string(c, descr, sizeof descr))
                return fail(r, GL_EFORMAT, "bad .npy header (descr is not a short string)");
            if (!parse_descr(descr, dt))
                return fail(r, GL_EFORMAT,
                            "unsupported dtype '%s' (gradlab loads float16/32/64, "
                            "int8/16/32/64, uint8/16/32/64 and bool)", descr);
            have_descr = true;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (accept_word(c, "True")) *fortran = true;
            else if (accept_word(c, "False")) *fortran = false;
            else return fail(r, GL_EFORMAT, "bad .npy header (fortran_order is not True/False)");
            have_order = true;
        } else if (strcmp(key, "shape") == 0) {
            switch (parse_shape(c, ndim, shape)) {
            case SHAPE_OK: break;
            case SHAPE_TOO_MANY_DIMS:
                return fail(r, GL_EFORMAT, "the array has more than %d dimensions", GL_MAX_DIMS);
            case SHAPE_TOO_BIG: return fail(r, GL_EFORMAT, "a dimension in the shape is too large");
            default: return fail(r, GL_EFORMAT, "bad .npy header (shape is not a tuple of sizes)");
            }
            have_shape = true;
        } else {
            return fail(r, GL_EFORMAT, "bad .npy header (unexpected key '%s')", key);
        }
        if (!accept(c, ',')) {
            if (!accept(c, '}'))
                return fail(r, GL_EFORMAT, "bad .npy header (expected ',' or '}')");
            break;
        }
    }
    skip_space(c);
    if (c->p != c->end) return fail(r, GL_EFORMAT, "bad .npy header (text after the dict)");
    if (!have_descr || !have_order || !have_shape)
        return fail(r, GL_EFORMAT, "bad .npy header (missing '%s')",
                    !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
    return GL_OK;
}

static gl_status npy_read(const npy_reader *r, const unsigned char *bytes, size_t size,
                          gl_tensor **out)
{
    *out = NULL;
    if (size == 0) return fail(r, GL_EFORMAT, "not a .npy file (it is empty)");
    if (size < NPY_MAGIC_LEN || memcmp(bytes, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        return fail(r, GL_EFORMAT, "not a .npy file (bad magic)");
    if (size < 10)
        return fail(r, GL_EFORMAT, "truncated header: file has only %zu bytes", size);
    int major = bytes[6], minor = bytes[7];
    if (major < 1 || major > 3 || minor != 0)
        return fail(r, GL_EFORMAT,
                    "unsupported .npy format version %d.%d (gradlab reads 1.0, 2.0, 3.0)",
                    major, minor);
    size_t start = major == 1 ? 10 : 12, header_len;
    if (size < start) return fail(r, GL_EFORMAT, "truncated header: file has only %zu bytes", size);
    if (major == 1)
        header_len = (size_t)bytes[8] | (size_t)bytes[9] << 8;
    else
        header_len = (size_t)bytes[8] | (size_t)bytes[9] << 8 | (size_t)bytes[10] << 16
                     | (size_t)bytes[11] << 24;
    if (header_len > size - start)
        return fail(r, GL_EFORMAT, "truncated header: header says %zu bytes, file has %zu",
                    header_len, size - start);

    npy_dtype dt = {0};
    bool fortran = false;
    int ndim = 0;
    int64_t shape[GL_MAX_DIMS];
    cursor c = {bytes + start, bytes + start + header_len};
    gl_status status = parse_header(r, &c, &dt, &fortran, &ndim, shape);
    if (status) return status;

    /* Bound the product of the non-zero sizes, as NumPy does: a shape such as
     * (0, 2^40, 2^40) holds no element but its strides would overflow. */
    char shape_text[200];
    int64_t limit = gl_storage_max_numel(), product = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 0) continue;
        if (product > limit / shape[d])
            return fail(r, GL_ENOMEM, "shape %s is larger than this machine's memory",
                        gl_shape_format(ndim, shape, shape_text, sizeof shape_text));
        product *= shape[d];
    }
    gl_error inner;
    int64_t numel;
    if (gl_shape_check("load", ndim, shape, &numel, &inner))
        return fail(r, inner.code, "%s", inner.message + strlen("load: "));

    /* Checked before allocating, so a lying header cannot cost memory. */
    size_t data_start = start + header_len, available = size - data_start;
    uint64_t needed = (uint64_t)numel * (uint64_t)dt.size;
    if (needed > available)
        return fail(r, GL_EFORMAT, "truncated data: header says %llu bytes, file has %zu",
                    (unsigned long long)needed, available);

    gl_tensor *t;
    if (gl_tensor_empty(ndim, shape, &t, &inner)) return fail(r, inner.code, "%s", inner.message);
    convert_all(bytes + data_start, &dt, fortran, ndim, shape, numel, gl_tensor_data(t));
    *out = t;
    return GL_OK;
}

gl_status gl_npy_parse(const unsigned char *bytes, size_t size, gl_tensor **out, gl_error *err)
{
    gl_error local;
    npy_reader r = {NULL, err ? err : &local};
    if (!bytes && size > 0) {
        *out = NULL;
        return gl_error_set(r.err, GL_EARG, 1, "load: NULL buffer");
    }
    return npy_read(&r, bytes ? bytes : (const unsigned char *)"", size, out);
}

gl_status gl_npy_load(const char *path, gl_tensor **out, gl_error *err)
{
    gl_error local;
    if (!err) err = &local;
    *out = NULL;
    if (!path) return gl_error_set(err, GL_EARG, 1, "load: path is NULL");
    unsigned char *bytes;
    size_t size;
    gl_status status = gl_file_read_all(path, &bytes, &size, err);
    if (status) return prefix_op(err, "load", status);
    npy_reader r = {path, err};
    status = npy_read(&r, bytes, size, out);
    free(bytes);
    return status;
}
