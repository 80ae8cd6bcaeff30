/* fuzz_csv.c — libFuzzer target for the numeric CSV reader behind
 * gl.data.csv (gl_csv_parse in engine/csv.c).
 *
 * The first byte chooses `header` (its low bit); the rest is the file.
 * Contract checked: a failure leaves *out NULL and a message starting
 * "csv: "; a success is a contiguous 2-d tensor with no more elements than
 * the input has bytes (each number takes at least one), printable. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradlab.h"

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "fuzz_csv: contract broken: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                          \
        }                                                                     \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    bool header = data[0] & 1;
    data++;
    size--;
    gl_error err;
    memset(&err, 0, sizeof err);
    gl_tensor *t = (gl_tensor *)&err;
    gl_status status = gl_csv_parse(data, size, header, &t, &err);
    if (status != GL_OK) {
        CHECK(t == NULL);
        CHECK(status == err.code && status < GL_STATUS_COUNT);
        CHECK(memchr(err.message, '\0', sizeof err.message) != NULL);
        CHECK(strncmp(err.message, "csv: ", 5) == 0);
        return 0;
    }
    CHECK(t != NULL && t->ndim == 2 && gl_tensor_is_contiguous(t));
    CHECK(t->shape[0] >= 0 && t->shape[1] >= 0);
    CHECK((t->shape[0] == 0) == (t->shape[1] == 0));
    CHECK((uint64_t)gl_tensor_numel(t) <= (uint64_t)size);
    char *text = gl_tensor_format(t, 64);
    CHECK(text != NULL);
    free(text);
    gl_tensor_release(t);
    return 0;
}
