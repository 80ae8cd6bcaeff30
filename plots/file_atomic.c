/* file_atomic.c — writing a file so that readers see the old file or the
 * complete new one, never a part: a temp file in the same folder (so the
 * rename stays on one file system), fsync, rename. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "plot.h"

static gl_plot_status fail(gl_plot_error *err, const char *path, int code)
{
    return gl_plot_error_set(err, GL_PLOT_EIO, "cannot write '%s': %s", path, strerror(code));
}

/* Opens a new temp file "<dir>/.<name>.<pid>-<n>.tmp" next to `path`; the
 * hidden name keeps it out of globs like *.png should we ever crash. */
static int open_temp(const char *path, char **temp_out)
{
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    const char *name = path + dir_len;
    size_t size = strlen(path) + 64;
    char *temp = malloc(size);
    if (!temp) {
        errno = ENOMEM;
        return -1;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    for (unsigned attempt = 0; attempt < 100; attempt++) {
        snprintf(temp, size, "%.*s.%s.%ld-%lx.tmp", (int)dir_len, path, name, (long)getpid(),
                 (unsigned long)now.tv_nsec + attempt);
        int fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            *temp_out = temp;
            return fd;
        }
        if (errno != EEXIST) break;
    }
    int saved = errno;
    free(temp);
    errno = saved;
    return -1;
}

gl_plot_status gl_plot_file_write_atomic(const char *path, const void *bytes, size_t size,
                                         gl_plot_error *err)
{
    size_t len = strlen(path);
    if (len == 0) return gl_plot_error_set(err, GL_PLOT_EARG, "path is empty");
    if (path[len - 1] == '/') return fail(err, path, EISDIR);
    char *temp = NULL;
    int fd = open_temp(path, &temp);
    if (fd < 0) return fail(err, path, errno);
    const unsigned char *p = bytes;
    size_t left = size;
    int code = 0;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            code = errno;
            break;
        }
        p += n;
        left -= (size_t)n;
    }
    if (!code && fsync(fd) != 0) code = errno;
    if (close(fd) != 0 && !code) code = errno;
    if (!code && rename(temp, path) != 0) code = errno;
    if (code) unlink(temp);
    free(temp);
    return code ? fail(err, path, code) : GL_PLOT_OK;
}
