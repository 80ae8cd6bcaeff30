/* fuzz_npy.c — libFuzzer target for the .npy reader (gl_npy_parse).
 *
 * Besides memory errors (ASan) and undefined behaviour (UBSan), it checks the
 * reader's contract on every input: a failure leaves *out NULL and a message
 * that starts "load: "; a success gives a tensor that survives the writer
 * (gl_npy_encode) and reads back bit for bit, and that the formatter prints.
 * Built and run by `make fuzz` (spec/fuzz/README.md). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradlab.h"

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "fuzz_npy: contract broken: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                          \
        }                                                                     \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gl_error err;
    memset(&err, 0, sizeof err);
    gl_tensor *t = (gl_tensor *)&err;   /* must be overwritten either way */
    gl_status status = gl_npy_parse(data, size, &t, &err);
    if (status != GL_OK) {
        CHECK(t == NULL);
        CHECK(status == err.code && status < GL_STATUS_COUNT);
        CHECK(memchr(err.message, '\0', sizeof err.message) != NULL);
        CHECK(strncmp(err.message, "load: ", 6) == 0);
        return 0;
    }
    CHECK(t != NULL && t->ndim >= 0 && t->ndim <= GL_MAX_DIMS);
    CHECK(gl_tensor_is_contiguous(t));
    int64_t numel = gl_tensor_numel(t);

    size_t encoded = gl_npy_encoded_size(t);
    unsigned char *bytes = malloc(encoded);
    CHECK(bytes != NULL);
    gl_npy_encode(t, bytes);
    gl_tensor *back = NULL;
    CHECK(gl_npy_parse(bytes, encoded, &back, &err) == GL_OK);
    CHECK(gl_shape_equal(t->ndim, t->shape, back->ndim, back->shape));
    if (numel > 0)
        CHECK(memcmp(gl_tensor_data(t), gl_tensor_data(back), (size_t)numel * sizeof(float)) == 0);
    free(bytes);

    char *text = gl_tensor_format(t, 64);
    CHECK(text != NULL);
    free(text);
    gl_tensor_release(back);
    gl_tensor_release(t);
    return 0;
}
