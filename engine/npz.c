/* npz.c — NumPy .npz archives: a ZIP file whose members are "<name>.npy".
 *
 * We write the simplest ZIP that numpy.load and unzip accept: every member
 * STORED (method 0), a local file header before each member's bytes, then the
 * central directory and the end-of-central-directory record (PKWARE
 * APPNOTE.TXT, sections 4.3.7, 4.3.12 and 4.3.16).  Timestamps are fixed at
 * the DOS epoch so the same tensors always give the same bytes.
 *
 * The reader walks the central directory, the authoritative index: numpy
 * (through Python's zipfile) writes local headers whose sizes are 0xFFFFFFFF
 * placeholders with a zip64 extra field, so local headers are only used to
 * find where a member's bytes start.  Zip64 end records and extra fields are
 * understood; DEFLATE is not (that would need zlib), and says so. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradlab.h"

#define ZIP_LOCAL_SIG 0x04034b50u
#define ZIP_CENTRAL_SIG 0x02014b50u
#define ZIP_END_SIG 0x06054b50u
#define ZIP64_END_SIG 0x06064b50u
#define ZIP64_LOCATOR_SIG 0x07064b50u
#define ZIP_LOCAL_SIZE 30
#define ZIP_CENTRAL_SIZE 46
#define ZIP_END_SIZE 22
#define ZIP64_LOCATOR_SIZE 20
#define ZIP64_END_SIZE 56
#define ZIP_VERSION 20          /* 2.0: what a stored member needs */
#define ZIP_DOS_DATE 0x0021     /* 1980-01-01 */
#define ZIP_MAX32 0xffffffffu

/* ------------------------------------------------------------------ bytes */

static void put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
    put16(p, v & 0xffff);
    put16(p + 2, v >> 16);
}

static unsigned get16(const unsigned char *p) { return (unsigned)p[0] | (unsigned)p[1] << 8; }

static uint32_t get32(const unsigned char *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }

static uint64_t get64(const unsigned char *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

/* CRC-32 as zip and zlib compute it (reflected polynomial 0xEDB88320).  The
 * 1 KiB table is built on the caller's stack once per archive: cheaper than
 * 256 literal constants to review, and no global to initialise. */
static void crc32_table(uint32_t table[256])
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
}

static uint32_t crc32_compute(const uint32_t table[256], const unsigned char *p, size_t n)
{
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < n; i++) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return crc ^ 0xffffffffu;
}

/* Prepends "op: " to a message from gl_file_* (which knows no op name). */
static gl_status prefix_op(gl_error *err, const char *op, gl_status code)
{
    char message[sizeof err->message];
    memcpy(message, err->message, sizeof message);
    return gl_error_set(err, code, err->argument, "%s: %s", op, message);
}

/* ----------------------------------------------------------------- saving */

static gl_status check_entries(int count, const gl_named_tensor *entries, gl_error *err)
{
    if (count < 0 || (count > 0 && !entries))
        return gl_error_set(err, GL_EARG, 2, "save_state: bad entry list (count %d)", count);
    if (count > 0xffff)
        return gl_error_set(err, GL_EARG, 2,
                            "save_state: %d tensors; gradlab writes at most 65535 per archive",
                            count);
    for (int i = 0; i < count; i++) {
        const char *name = entries[i].name;
        if (!name || !*name)
            return gl_error_set(err, GL_EARG, 2, "save_state: entry %d has an empty name", i + 1);
        if (strlen(name) > 0xffff - 4)
            return gl_error_set(err, GL_EARG, 2, "save_state: name of entry %d is too long", i + 1);
        if (!entries[i].tensor)
            return gl_error_set(err, GL_EARG, 2, "save_state: entry '%s' has no tensor", name);
        for (int j = 0; j < i; j++)
            if (strcmp(entries[j].name, name) == 0)
                return gl_error_set(err, GL_EARG, 2, "save_state: duplicate name '%s'", name);
    }
    return GL_OK;
}

/* Writes one local header + member, returns the bytes written. */
static size_t write_member(unsigned char *p, const gl_named_tensor *entry,
                           const uint32_t table[256])
{
    size_t name_len = strlen(entry->name) + 4;
    size_t data_size = gl_npy_encoded_size(entry->tensor);
    unsigned char *name = p + ZIP_LOCAL_SIZE, *data = name + name_len;
    memcpy(name, entry->name, name_len - 4);
    memcpy(name + name_len - 4, ".npy", 4);
    gl_npy_encode(entry->tensor, data);
    put32(p, ZIP_LOCAL_SIG);
    put16(p + 4, ZIP_VERSION);
    put16(p + 6, 0);                 /* flags */
    put16(p + 8, 0);                 /* method: stored */
    put16(p + 10, 0);                /* time 00:00:00 */
    put16(p + 12, ZIP_DOS_DATE);
    put32(p + 14, crc32_compute(table, data, data_size));
    put32(p + 18, (uint32_t)data_size);
    put32(p + 22, (uint32_t)data_size);
    put16(p + 26, (unsigned)name_len);
    put16(p + 28, 0);                /* extra field length */
    return ZIP_LOCAL_SIZE + name_len + data_size;
}

/* Writes the central directory entry of the member whose local header is at
 * `local` (offset `offset`), copying its CRC and sizes. */
static size_t write_central(unsigned char *p, const unsigned char *local, uint32_t offset)
{
    unsigned name_len = get16(local + 26);
    put32(p, ZIP_CENTRAL_SIG);
    put16(p + 4, 3 << 8 | ZIP_VERSION);  /* made by Unix, so the mode below applies */
    put16(p + 6, ZIP_VERSION);
    memcpy(p + 8, local + 6, 20);         /* flags .. sizes, same as the local header */
    put16(p + 28, name_len);
    put16(p + 30, 0);                     /* extra */
    put16(p + 32, 0);                     /* comment */
    put16(p + 34, 0);                     /* disk */
    put16(p + 36, 0);                     /* internal attributes */
    put32(p + 38, (uint32_t)0100644 << 16);  /* a regular file, rw-r--r-- when unzipped */
    put32(p + 42, offset);
    memcpy(p + ZIP_CENTRAL_SIZE, local + ZIP_LOCAL_SIZE, name_len);
    return ZIP_CENTRAL_SIZE + name_len;
}

gl_status gl_npz_save(const char *path, int count, const gl_named_tensor *entries, gl_error *err)
{
    gl_error local_err;
    if (!err) err = &local_err;
    if (!path) return gl_error_set(err, GL_EARG, 1, "save_state: path is NULL");
    gl_status status = check_entries(count, entries, err);
    if (status) return status;

    /* Sizes first, so the archive is one allocation and one atomic write. */
    uint64_t members = 0, directory = 0;
    for (int i = 0; i < count; i++) {
        uint64_t name_len = strlen(entries[i].name) + 4;
        members += ZIP_LOCAL_SIZE + name_len + gl_npy_encoded_size(entries[i].tensor);
        directory += ZIP_CENTRAL_SIZE + name_len;
    }
    /* Without zip64 every offset and size must fit 32 bits. */
    if (members >= ZIP_MAX32 || directory >= ZIP_MAX32)
        return gl_error_set(err, GL_EARG, 2,
                            "save_state: the archive for '%s' would take %.2f GiB; gradlab "
                            "writes .npz files below 4 GiB (no zip64)",
                            path, (double)(members + directory) / (1024.0 * 1024.0 * 1024.0));
    size_t total = (size_t)(members + directory) + ZIP_END_SIZE;
    unsigned char *bytes = malloc(total);
    if (!bytes)
        return gl_error_set(err, GL_ENOMEM, 2, "save_state: cannot allocate %zu bytes for '%s'",
                            total, path);

    uint32_t table[256];
    crc32_table(table);
    size_t pos = 0;
    for (int i = 0; i < count; i++) pos += write_member(bytes + pos, &entries[i], table);
    size_t local_pos = 0;
    for (int i = 0; i < count; i++) {
        const unsigned char *local = bytes + local_pos;
        pos += write_central(bytes + pos, local, (uint32_t)local_pos);
        local_pos += ZIP_LOCAL_SIZE + get16(local + 26) + get32(local + 22);
    }
    unsigned char *end = bytes + pos;
    put32(end, ZIP_END_SIG);
    put16(end + 4, 0);                      /* this disk */
    put16(end + 6, 0);                      /* disk holding the directory */
    put16(end + 8, (unsigned)count);
    put16(end + 10, (unsigned)count);
    put32(end + 12, (uint32_t)directory);
    put32(end + 16, (uint32_t)members);
    put16(end + 20, 0);                     /* comment length */

    status = gl_file_write_atomic(path, bytes, total, err);
    free(bytes);
    return status ? prefix_op(err, "save_state", status) : GL_OK;
}

/* ---------------------------------------------------------------- loading */

void gl_named_tensors_free(gl_named_tensor *entries, int count)
{
    if (!entries) return;
    for (int i = 0; i < count; i++) {
        free(entries[i].name);
        gl_tensor_release(entries[i].tensor);
    }
    free(entries);
}

typedef struct npz_reader {
    const char *path;   /* named in messages; NULL for an anonymous buffer */
    gl_error *err;
} npz_reader;

static gl_status fail(const npz_reader *r, gl_status code, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static gl_status fail(const npz_reader *r, gl_status code, const char *format, ...)
{
    char detail[sizeof r->err->message];
    va_list args;
    va_start(args, format);
    vsnprintf(detail, sizeof detail, format, args);
    va_end(args);
    if (r->path) return gl_error_set(r->err, code, 1, "load_state: '%s': %s", r->path, detail);
    return gl_error_set(r->err, code, 1, "load_state: %s", detail);
}

/* Where the central directory is and how many entries it holds. */
typedef struct zip_directory {
    uint64_t count, size, offset;
} zip_directory;

static gl_status find_directory(const npz_reader *r, const unsigned char *bytes, size_t size,
                                zip_directory *dir)
{
    if (size >= 6 && memcmp(bytes, "\x93NUMPY", 6) == 0)
        return fail(r, GL_EFORMAT, "this is a .npy file, not an .npz archive (use load)");
    if (size < ZIP_END_SIZE)
        return fail(r, GL_EFORMAT, "not a .npz file (too short for a zip archive)");

    /* The end record is the last 22 bytes plus a comment of up to 64 KiB. */
    size_t end = size - ZIP_END_SIZE;
    for (;;) {
        if (get32(bytes + end) == ZIP_END_SIG
            && get16(bytes + end + 20) <= size - end - ZIP_END_SIZE)
            break;
        if (end == 0 || size - ZIP_END_SIZE - end >= 0xffff)
            return fail(r, GL_EFORMAT, "not a .npz file (no zip end-of-archive record)");
        end--;
    }
    const unsigned char *e = bytes + end;
    uint32_t disk = get16(e + 4), directory_disk = get16(e + 6);
    dir->count = get16(e + 10);
    dir->size = get32(e + 12);
    dir->offset = get32(e + 16);

    /* Fields saturated at 0xFFFF / 0xFFFFFFFF mean "see the zip64 end record". */
    if ((dir->count == 0xffff || dir->size == ZIP_MAX32 || dir->offset == ZIP_MAX32)
        && end >= ZIP64_LOCATOR_SIZE && get32(e - ZIP64_LOCATOR_SIZE) == ZIP64_LOCATOR_SIG) {
        uint64_t z = get64(e - ZIP64_LOCATOR_SIZE + 8);
        if (z > size || size - z < ZIP64_END_SIZE || get32(bytes + z) != ZIP64_END_SIG)
            return fail(r, GL_EFORMAT, "corrupt zip archive (bad zip64 end record)");
        const unsigned char *z64 = bytes + z;
        disk = get32(z64 + 16);
        directory_disk = get32(z64 + 20);
        dir->count = get64(z64 + 32);
        dir->size = get64(z64 + 40);
        dir->offset = get64(z64 + 48);
    }
    if (disk != 0 || directory_disk != 0)
        return fail(r, GL_EFORMAT, "multi-part zip archives are not supported");
    if (dir->offset > size || dir->size > size - dir->offset)
        return fail(r, GL_EFORMAT, "corrupt zip archive (central directory outside the file)");
    /* Each entry takes at least 46 bytes: this bounds the allocation below. */
    if (dir->count > dir->size / ZIP_CENTRAL_SIZE || dir->count > INT_MAX)
        return fail(r, GL_EFORMAT,
                    "corrupt zip archive (%llu entries cannot fit a %llu-byte directory)",
                    (unsigned long long)dir->count, (unsigned long long)dir->size);
    return GL_OK;
}

/* One central directory entry, sizes widened by its zip64 extra field. */
typedef struct zip_entry {
    unsigned flags, method;
    uint32_t crc;
    uint64_t compressed, uncompressed, local;
    const unsigned char *name;
    size_t name_len, record_len;
} zip_entry;

static bool read_entry(const unsigned char *p, size_t avail, zip_entry *z)
{
    if (avail < ZIP_CENTRAL_SIZE || get32(p) != ZIP_CENTRAL_SIG) return false;
    z->flags = get16(p + 8);
    z->method = get16(p + 10);
    z->crc = get32(p + 16);
    z->compressed = get32(p + 20);
    z->uncompressed = get32(p + 24);
    z->name_len = get16(p + 28);
    size_t extra_len = get16(p + 30), comment_len = get16(p + 32);
    z->local = get32(p + 42);
    z->record_len = ZIP_CENTRAL_SIZE + z->name_len + extra_len + comment_len;
    if (z->record_len > avail) return false;
    z->name = p + ZIP_CENTRAL_SIZE;

    /* Zip64 extra field (ID 1): 8-byte values for exactly the fields that are
     * saturated, in the order uncompressed, compressed, local offset. */
    const unsigned char *x = z->name + z->name_len, *x_end = x + extra_len;
    while (x_end - x >= 4) {
        unsigned id = get16(x), len = get16(x + 2);
        const unsigned char *field = x + 4, *field_end = field + len;
        if (len > x_end - field) return false;
        if (id == 1) {
            uint64_t *slots[3] = {&z->uncompressed, &z->compressed, &z->local};
            for (int k = 0; k < 3; k++) {
                if (*slots[k] != ZIP_MAX32) continue;
                if (field_end - field < 8) return false;
                *slots[k] = get64(field);
                field += 8;
            }
        }
        x = field_end;
    }
    return true;
}

static gl_status npz_read(const npz_reader *r, const unsigned char *bytes, size_t size,
                          gl_named_tensor **entries_out, int *count_out)
{
    *entries_out = NULL;
    *count_out = 0;
    zip_directory dir = {0, 0, 0};
    gl_status status = find_directory(r, bytes, size, &dir);
    if (status) return status;

    gl_named_tensor *entries = calloc(dir.count ? dir.count : 1, sizeof *entries);
    if (!entries) return fail(r, GL_ENOMEM, "out of memory for %llu entries",
                              (unsigned long long)dir.count);
    uint32_t table[256];
    crc32_table(table);
    int filled = 0;
    size_t pos = (size_t)dir.offset, end = (size_t)(dir.offset + dir.size);
    for (uint64_t i = 0; i < dir.count; i++) {
        zip_entry z;
        if (!read_entry(bytes + pos, end - pos, &z)) {
            status = fail(r, GL_EFORMAT, "corrupt zip archive (bad directory entry %llu)",
                          (unsigned long long)i + 1);
            goto fail;
        }
        pos += z.record_len;
        /* For messages: the name as stored, shortened. */
        int shown = z.name_len > 200 ? 200 : (int)z.name_len;
        const char *name = (const char *)z.name;

        if (memchr(z.name, '\0', z.name_len)) {
            status = fail(r, GL_EFORMAT, "member name %llu contains a NUL byte",
                          (unsigned long long)i + 1);
            goto fail;
        }
        if (z.name_len < 4 || memcmp(z.name + z.name_len - 4, ".npy", 4) != 0) {
            status = fail(r, GL_EFORMAT, "member '%.*s' is not a .npy array", shown, name);
            goto fail;
        }
        if (z.flags & 1) {
            status = fail(r, GL_EFORMAT, "member '%.*s' is encrypted", shown, name);
            goto fail;
        }
        if (z.method == 8) {
            status = fail(r, GL_EFORMAT,
                          "member '%.*s' is compressed (deflate); save with numpy.savez, "
                          "not savez_compressed", shown, name);
            goto fail;
        }
        if (z.method != 0 || z.compressed != z.uncompressed) {
            status = fail(r, GL_EFORMAT,
                          "member '%.*s' uses compression method %u; gradlab reads only "
                          "stored (uncompressed) members", shown, name, z.method);
            goto fail;
        }

        /* The local header repeats the name and may carry a different extra
         * field; only its two lengths matter, to find the member's bytes. */
        if (z.local > size || size - z.local < ZIP_LOCAL_SIZE
            || get32(bytes + z.local) != ZIP_LOCAL_SIG) {
            status = fail(r, GL_EFORMAT, "corrupt zip archive (bad local header of '%.*s')",
                          shown, name);
            goto fail;
        }
        const unsigned char *local = bytes + z.local;
        uint64_t data = z.local + ZIP_LOCAL_SIZE + get16(local + 26) + get16(local + 28);
        if (data > size || z.uncompressed > size - data) {
            status = fail(r, GL_EFORMAT, "truncated member '%.*s': needs %llu bytes, file has %llu",
                          shown, name, (unsigned long long)z.uncompressed,
                          (unsigned long long)(data > size ? 0 : size - data));
            goto fail;
        }
        if (crc32_compute(table, bytes + data, (size_t)z.uncompressed) != z.crc) {
            status = fail(r, GL_EFORMAT, "member '%.*s' is corrupt (CRC-32 mismatch)", shown, name);
            goto fail;
        }

        gl_error inner;
        gl_tensor *t;
        if (gl_npy_parse(bytes + data, (size_t)z.uncompressed, &t, &inner)) {
            /* gl_npy_parse says "load: <detail>"; re-attribute it. */
            const char *detail = strncmp(inner.message, "load: ", 6) == 0 ? inner.message + 6
                                                                          : inner.message;
            status = fail(r, inner.code, "member '%.*s': %s", shown, name, detail);
            goto fail;
        }
        entries[filled].tensor = t;
        entries[filled].name = strndup(name, z.name_len - 4);
        filled++;
        if (!entries[filled - 1].name) {
            status = fail(r, GL_ENOMEM, "out of memory");
            goto fail;
        }
    }
    *entries_out = entries;
    *count_out = filled;
    return GL_OK;

fail:
    gl_named_tensors_free(entries, filled);
    return status;
}

gl_status gl_npz_parse(const unsigned char *bytes, size_t size, gl_named_tensor **entries,
                       int *count, gl_error *err)
{
    gl_error local;
    npz_reader r = {NULL, err ? err : &local};
    if (!bytes && size > 0) {
        *entries = NULL;
        *count = 0;
        return gl_error_set(r.err, GL_EARG, 1, "load_state: NULL buffer");
    }
    return npz_read(&r, bytes ? bytes : (const unsigned char *)"", size, entries, count);
}

gl_status gl_npz_load(const char *path, gl_named_tensor **entries, int *count, gl_error *err)
{
    gl_error local;
    if (!err) err = &local;
    *entries = NULL;
    *count = 0;
    if (!path) return gl_error_set(err, GL_EARG, 1, "load_state: path is NULL");
    unsigned char *bytes;
    size_t size;
    gl_status status = gl_file_read_all(path, &bytes, &size, err);
    if (status) return prefix_op(err, "load_state", status);
    npz_reader r = {path, err};
    status = npz_read(&r, bytes, size, entries, count);
    free(bytes);
    return status;
}
