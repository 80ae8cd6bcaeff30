/* fuzz_npz.c — libFuzzer target for the .npz reader (gl_npz_parse): the zip
 * directory walk, zip64 records and extra fields, CRC checks, and the .npy
 * reader on every member.
 *
 * Contract checked on every input: a failure leaves no entries and a message
 * starting "load_state: "; a success gives `count` named tensors, each of
 * which re-encodes as .npy and reads back bit for bit. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradlab.h"

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "fuzz_npz: contract broken: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                          \
        }                                                                     \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gl_error err;
    memset(&err, 0, sizeof err);
    gl_named_tensor *entries = (gl_named_tensor *)&err;
    int count = -1;
    gl_status status = gl_npz_parse(data, size, &entries, &count, &err);
    if (status != GL_OK) {
        CHECK(entries == NULL && count == 0);
        CHECK(status == err.code && status < GL_STATUS_COUNT);
        CHECK(memchr(err.message, '\0', sizeof err.message) != NULL);
        CHECK(strncmp(err.message, "load_state: ", 12) == 0);
        return 0;
    }
    CHECK(count >= 0 && (count == 0 || entries != NULL));
    for (int i = 0; i < count; i++) {
        gl_tensor *t = entries[i].tensor;
        CHECK(entries[i].name != NULL && t != NULL);
        size_t encoded = gl_npy_encoded_size(t);
        unsigned char *bytes = malloc(encoded);
        CHECK(bytes != NULL);
        gl_npy_encode(t, bytes);
        gl_tensor *back = NULL;
        CHECK(gl_npy_parse(bytes, encoded, &back, &err) == GL_OK);
        CHECK(gl_shape_equal(t->ndim, t->shape, back->ndim, back->shape));
        int64_t numel = gl_tensor_numel(t);
        if (numel > 0)
            CHECK(memcmp(gl_tensor_data(t), gl_tensor_data(back), (size_t)numel * 4) == 0);
        gl_tensor_release(back);
        free(bytes);
    }
    gl_named_tensors_free(entries, count);
    return 0;
}
